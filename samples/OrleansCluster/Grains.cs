using System;
using System.Diagnostics;
using System.Linq;
using System.Threading.Tasks;
using GemsInjector;
using GemsLlm;
using Orleans;
using Orleans.Placement;

namespace OrleansCluster;

/// <summary>One silo's worker: its GemsInjector status and generation on the sample engine.</summary>
[Alias("OrleansCluster.ILlamaWorkerGrain")]
public interface ILlamaWorkerGrain : IGrainWithIntegerKey
{
    /// <summary>The silo process's status.</summary>
    [Alias("GetStatus")]
    Task<SiloReport> GetStatus();

    /// <summary>Generates greedily for each prompt.</summary>
    [Alias("Generate")]
    Task<GenerationReply> Generate(string[] prompts, int maxNewTokens);
}

/// <summary>Where a worker grain runs (<see cref="Index"/>: the hosting silo) and what its process's <see cref="Gems.Status"/> says (as its JSON).</summary>
[GenerateSerializer, Immutable, Alias("OrleansCluster.SiloReport")]
public sealed class SiloReport
{
    [Id(0)] public int Index { get; init; }

    [Id(1)] public string SiloAddress { get; init; } = "";

    [Id(2)] public string StatusJson { get; init; } = "";

    /// <summary>The grain's key: the silo it started on, which differs from <see cref="Index"/> after a fail-over.</summary>
    [Id(3)] public long GrainKey { get; init; }
}

/// <summary>Generated text per prompt and the speed.</summary>
[GenerateSerializer, Immutable, Alias("OrleansCluster.GenerationReply")]
public sealed class GenerationReply
{
    [Id(0)] public int Index { get; init; }

    [Id(1)] public string[] Texts { get; init; } = [];

    [Id(2)] public int[][] Tokens { get; init; } = [];

    [Id(3)] public double TokensPerSecond { get; init; }

    [Id(4)] public string Kernels { get; init; } = "";
}

/// <summary>This silo's place in the cluster, given on its command line.</summary>
public sealed record SiloInfo(int Index, string Checkpoint);

/// <summary>
/// The worker grain. <c>[GemsWorker]</c>: the generator gives this class a module initializer, so every silo process
/// that hosts it enables GemsInjector (or says why not) by its own USE_FLAGGEMS before Orleans starts. Placed on the
/// silo that first calls it (each silo calls its own at start-up), keyed by the silo's index. When that silo dies, the
/// next call re-activates the grain on a surviving silo: its reports then name the silo it runs on, not its key.
/// </summary>
[GemsWorker]
[PreferLocalPlacement]
public partial class LlamaWorkerGrain(SiloInfo silo, Orleans.Runtime.ILocalSiloDetails local) : Grain, ILlamaWorkerGrain
{
    private LlamaModelRunner? _runner;

    public override Task OnActivateAsync(System.Threading.CancellationToken cancellationToken)
    {
        _runner = new LlamaModelRunner(silo.Checkpoint);
        return Task.CompletedTask;
    }

    public async Task<SiloReport> GetStatus()
    {
        // A GPU comes up in the background after Enable; the report names the device that really runs (off the grain's thread).
        var status = await Task.Run(() => Gems.WaitForDevice(TimeSpan.FromSeconds(60)));
        return new SiloReport
        {
            Index = silo.Index,
            SiloAddress = local.SiloAddress.ToString(),
            StatusJson = status.ToJson(),
            GrainKey = this.GetPrimaryKeyLong(),
        };
    }

    public async Task<GenerationReply> Generate(string[] prompts, int maxNewTokens)
    {
        var runner = _runner ?? throw new InvalidOperationException("The grain is not activated.");

        // CPU-bound: run it off the grain scheduler's thread.
        return await Task.Run(() =>
        {
            runner.Generate(prompts.FirstOrDefault() ?? "warm up", 4);
            var clock = Stopwatch.StartNew();
            var outputs = prompts.Select(prompt => runner.Generate(prompt, maxNewTokens)).ToArray();
            var seconds = clock.Elapsed.TotalSeconds;
            return new GenerationReply
            {
                Index = silo.Index,
                Texts = outputs.Select(o => o.Text).ToArray(),
                Tokens = outputs.Select(o => o.Tokens).ToArray(),
                TokensPerSecond = seconds > 0 ? outputs.Sum(o => o.Tokens.Length) / seconds : 0,
                Kernels = Gems.IsEnabled ? "gems" : "default",
            };
        }).ConfigureAwait(true);
    }

    public override Task OnDeactivateAsync(DeactivationReason reason, System.Threading.CancellationToken cancellationToken)
    {
        _runner?.Dispose();
        return Task.CompletedTask;
    }
}
