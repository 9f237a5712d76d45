using System;
using System.Collections.Generic;
using System.Diagnostics;
using GemsInjector;

namespace GemsLlm;

/// <summary>
/// What every model runner of this engine is. Marked <see cref="GemsWorkerBaseAttribute"/>: a subclass that is not
/// <c>[GemsWorker]</c> would start without enabling GemsInjector, and the build says so (GEMS001).
/// </summary>
[GemsWorkerBase]
public abstract class ModelRunnerBase : IDisposable
{
    /// <summary>This process's GemsInjector status (what the runner's start-up block decided).</summary>
    public GemsStatus Status => Gems.Status;

    /// <summary>Generates greedily from <paramref name="prompt"/>.</summary>
    public abstract RunnerOutput Generate(string prompt, int maxNewTokens, bool keepLogits = false);

    /// <inheritdoc/>
    public abstract void Dispose();
}

/// <summary>One prompt's outcome: the new tokens, their text, each step's logits when kept, and the time it took.</summary>
public sealed record RunnerOutput(string Prompt, int[] PromptTokens, int[] Tokens, string Text, float[][] Logits, TimeSpan Elapsed);

/// <summary>
/// The engine's model runner: loads the checkpoint, tokenizes, generates. <c>[GemsWorker]</c>: the generator gives it a
/// module initializer that enables GemsInjector when <c>USE_FLAGGEMS</c> is set, before any code of this assembly
/// runs in the process, and applies the model's patches.
/// </summary>
[GemsWorker]
public partial class LlamaModelRunner : ModelRunnerBase
{
    private readonly LlamaModel _model;

    static LlamaModelRunner()
    {
        // The generated start-up block is a static method of this class, so this constructor runs just before it:
        // the patches are registered in time for its Gems.ApplyPatches(verbose: true) to print them.
        LlmPatches.EnsureRegistered();
    }

    /// <summary>Loads the checkpoint at <paramref name="checkpointPath"/>.</summary>
    public LlamaModelRunner(string checkpointPath)
    {
        _model = LlamaModel.Load(checkpointPath);
        Tokenizer = new WordTokenizer(_model.Config.VocabSize);
        if (Gems.IsEnabled)
        {
            // A no-op when the start-up block applied them; prints the lines when Gems was enabled some other way.
            Gems.ApplyPatches(verbose: true);
        }
    }

    /// <summary>The tokenizer matching the model's vocabulary.</summary>
    public WordTokenizer Tokenizer { get; }

    /// <summary>The model.</summary>
    public LlamaModel Model => _model;

    /// <summary>
    /// Touches the class so its start-up block has run; returns the resulting status once the device it started (a GPU
    /// comes up in the background) is up or has fallen back, so the report names the device that really runs.
    /// </summary>
    public static GemsStatus Start() => Gems.WaitForDevice(TimeSpan.FromSeconds(60));

    /// <inheritdoc/>
    public override RunnerOutput Generate(string prompt, int maxNewTokens, bool keepLogits = false)
    {
        var ids = Tokenizer.Encode(prompt);
        var clock = Stopwatch.StartNew();
        var result = _model.Generate(ids, maxNewTokens, keepLogits);
        clock.Stop();
        return new RunnerOutput(prompt, ids, result.Tokens, Tokenizer.Decode(result.Tokens), result.Logits, clock.Elapsed);
    }

    /// <summary>
    /// Runs <paramref name="prompts"/> on GemsInjector's kernels (<paramref name="gems"/>) or on the default ones, in
    /// this process, switching the operator table and the patches for the run and putting back what was there.
    /// </summary>
    /// <param name="warmUpTokens">Tokens generated (and not returned) before the timed prompts, on the same kernels.</param>
    /// <returns>The outputs, or null when GemsInjector cannot be enabled in this process (the reason is in <paramref name="unavailable"/>).</returns>
    public IReadOnlyList<RunnerOutput>? RunOnKernels(bool gems, IReadOnlyList<string> prompts, int maxNewTokens, int warmUpTokens, out string? unavailable)
    {
        ArgumentNullException.ThrowIfNull(prompts);
        unavailable = null;
        var wasEnabled = Gems.IsEnabled;
        if (gems == wasEnabled)
        {
            return Run(prompts, maxNewTokens, warmUpTokens);
        }

        if (wasEnabled)
        {
            Gems.Disable();
            try
            {
                return Run(prompts, maxNewTokens, warmUpTokens);
            }
            finally
            {
                Gems.Enable();
                Gems.ApplyPatches();
            }
        }

        try
        {
            EnableHere();
        }
        catch (Exception ex)
        {
            unavailable = $"GemsInjector cannot be enabled in this process: {ex.GetType().Name}: {ex.Message}";
            return null;
        }

        try
        {
            return Run(prompts, maxNewTokens, warmUpTokens);
        }
        finally
        {
            Gems.Disable();
        }
    }

    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.NoInlining)]
    private static void EnableHere()
    {
        Gems.Enable();
        Gems.ApplyPatches();
    }

    private List<RunnerOutput> Run(IReadOnlyList<string> prompts, int maxNewTokens, int warmUpTokens)
    {
        if (warmUpTokens > 0 && prompts.Count > 0)
        {
            Generate(prompts[0], warmUpTokens);
        }

        var outputs = new List<RunnerOutput>();
        foreach (var prompt in prompts)
        {
            outputs.Add(Generate(prompt, maxNewTokens, keepLogits: true));
        }

        return outputs;
    }

    /// <inheritdoc/>
    public override void Dispose()
    {
        _model.Dispose();
        GC.SuppressFinalize(this);
    }
}
