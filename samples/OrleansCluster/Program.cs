using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Globalization;
using System.IO;
using System.Linq;
using System.Net;
using System.Text.Json;
using System.Threading.Tasks;
using GemsInjector;
using GemsLlm;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Orleans;
using Orleans.Configuration;
using Orleans.Hosting;
using Orleans.Runtime;

namespace OrleansCluster;

/// <summary>
/// Without <c>--silo</c>: starts N silo processes of itself on loopback, connects as an Orleans client, asks every
/// silo's worker grain for its status, prints the fleet table and spreads generation across the silos.
/// With <c>--silo</c>: one silo (localhost clustering; silo 0 is the primary the others join).
/// </summary>
public static class Program
{
    private const string ServiceId = "gems-samples";
    private const string ClusterId = "gems-local";
    private const string ReadyLine = "@silo ready";

    public static async Task<int> Main(string[] args)
    {
        try
        {
            var options = ClusterOptions.Parse(args);
            if (options.Help)
            {
                Console.WriteLine(ClusterOptions.Usage);
                return 0;
            }

            return options.IsSilo ? await RunSilo(options) : await RunLauncher(options);
        }
        catch (ArgumentException ex)
        {
            Console.Error.WriteLine(ex.Message);
            Console.Error.WriteLine(ClusterOptions.Usage);
            return 2;
        }
    }

    private static async Task<int> RunSilo(ClusterOptions options)
    {
        var builder = Host.CreateApplicationBuilder();
        builder.Logging.ClearProviders().AddConsole(console => console.LogToStandardErrorThreshold = LogLevel.Trace).SetMinimumLevel(LogLevel.Warning).AddFilter("Orleans", LogLevel.Error);
        builder.Services.AddSingleton(new SiloInfo(options.SiloIndex, options.Checkpoint!));
        builder.UseOrleans(silo =>
        {
            var primary = new IPEndPoint(IPAddress.Loopback, options.BasePort);
            silo.UseLocalhostClustering(options.BasePort + options.SiloIndex, options.GatewayBasePort + options.SiloIndex, primary, ServiceId, ClusterId);
            silo.Configure<SiloOptions>(o => o.SiloName = $"silo{options.SiloIndex}");
        });
        using var host = builder.Build();
        await host.StartAsync();

        // Activate this silo's worker grain here (PreferLocalPlacement puts it on the calling silo), then say ready.
        var grains = host.Services.GetRequiredService<IGrainFactory>();
        await grains.GetGrain<ILlamaWorkerGrain>(options.SiloIndex).GetStatus();
        Console.WriteLine(ReadyLine);
        Console.Out.Flush();

        // The launcher closes standard input to stop the silo (or dies, which closes it too).
        await Task.Run(() => { while (Console.In.ReadLine() is not null) { } });
        await host.StopAsync(TimeSpan.FromSeconds(10));
        return 0;
    }

    private static async Task<int> RunLauncher(ClusterOptions options)
    {
        var clock = Stopwatch.StartNew();
        ConfigureOwnGuard(options.Scope);
        var checkpoint = Path.GetFullPath(options.Checkpoint ?? LlamaCheckpoint.DefaultPath);
        LlamaCheckpoint.EnsureCreated(checkpoint);
        Console.WriteLine($"Launcher (pid {Environment.ProcessId}): GemsInjector {Gems.Status.State.ToString().ToLowerInvariant()}; env scope '{options.Scope.ToString().ToLowerInvariant()}'; checkpoint {checkpoint}");

        var silos = new List<SiloProcess>();
        try
        {
            // The primary first: the others join it.
            silos.Add(SiloProcess.Start(0, options, checkpoint));
            await silos[0].Ready.WaitAsync(TimeSpan.FromSeconds(options.TimeoutSeconds));
            for (var i = 1; i < options.Silos; i++)
            {
                silos.Add(SiloProcess.Start(i, options, checkpoint));
            }

            await Task.WhenAll(silos.Select(s => s.Ready)).WaitAsync(TimeSpan.FromSeconds(options.TimeoutSeconds));
            Console.WriteLine($"{options.Silos} silos are up; connecting as a client.");
            return await RunClient(options, silos, clock);
        }
        catch (TimeoutException)
        {
            Console.WriteLine($"The silos did not all start within {options.TimeoutSeconds} s.");
            foreach (var silo in silos)
            {
                Console.WriteLine($"--- silo {silo.Index} ---\n{silo.Log}");
            }

            return 1;
        }
        finally
        {
            // Secondaries first, the primary last. Shutting a cluster down makes the silos log about each other's
            // departure; that is kept in each silo's log but not printed.
            foreach (var silo in silos)
            {
                silo.Quiet = true;
            }

            await Task.WhenAll(silos.Skip(1).Select(s => s.StopAsync()));
            if (silos.Count > 0)
            {
                await silos[0].StopAsync();
            }
        }
    }

    private static async Task<int> RunClient(ClusterOptions options, IReadOnlyList<SiloProcess> silos, Stopwatch clock)
    {
        var builder = Host.CreateApplicationBuilder();
        builder.Logging.ClearProviders().AddConsole(console => console.LogToStandardErrorThreshold = LogLevel.Trace).SetMinimumLevel(LogLevel.Warning).AddFilter("Orleans", LogLevel.Error);
        builder.UseOrleansClient(client => client.UseLocalhostClustering(
            Enumerable.Range(0, options.Silos).Select(i => options.GatewayBasePort + i).ToArray(), ServiceId, ClusterId));
        using var host = builder.Build();
        await host.StartAsync();
        var grains = host.Services.GetRequiredService<IClusterClient>();

        var hosts = await grains.GetGrain<IManagementGrain>(0).GetHosts(onlyActive: true);
        Console.WriteLine($"Cluster membership: {hosts.Count} active silos ({string.Join(", ", hosts.Keys.Select(k => k.ToString()).Order())}).");

        var reports = await Task.WhenAll(Enumerable.Range(0, options.Silos).Select(i => grains.GetGrain<ILlamaWorkerGrain>(i).GetStatus()));
        var prompts = Enumerable.Range(0, options.PromptCount).Select(i => BuiltInPrompts[i % BuiltInPrompts.Length]).ToArray();
        var replies = await Task.WhenAll(Enumerable.Range(0, options.Silos).Select(i =>
            grains.GetGrain<ILlamaWorkerGrain>(i).Generate(prompts.Where((_, p) => p % options.Silos == i).ToArray(), options.MaxNewTokens)));

        var statuses = reports.Select(r => GemsStatus.FromJson(r.StatusJson)).ToArray();
        var rows = reports.Select((r, i) => new FleetRow($"silo{r.Index}", statuses[i], replies[i].TokensPerSecond)).ToArray();
        Console.WriteLine();
        Console.WriteLine("Fleet (one worker grain per silo process):");
        Console.Write(FleetTable.Format(rows));
        foreach (var report in reports)
        {
            Console.WriteLine($"  silo{report.Index} at {report.SiloAddress}");
        }

        Console.WriteLine();
        Console.WriteLine("Generated across the silos (greedy):");
        foreach (var reply in replies)
        {
            var mine = prompts.Where((_, p) => p % options.Silos == reply.Index).ToArray();
            for (var p = 0; p < mine.Length; p++)
            {
                Console.WriteLine($"  [silo{reply.Index}, {reply.Kernels} kernels] {mine[p]} => {reply.Texts[p]}");
            }
        }

        var exitCode = 0;
        var notEnabled = statuses.Where(s => s.State != GemsState.Enabled).ToArray();
        if (options.RequireGems && notEnabled.Length > 0)
        {
            Console.WriteLine($"--require-gems: {notEnabled.Length} of {statuses.Length} silos are not running GemsInjector's kernels.");
            exitCode = 3;
        }

        if (options.ReportPath is { } path)
        {
            File.WriteAllText(path, JsonSerializer.Serialize(new
            {
                exitCode,
                membership = hosts.Count,
                silos = reports.Select((r, i) => new { r.Index, r.SiloAddress, status = JsonDocument.Parse(r.StatusJson).RootElement, replies[i].Tokens, replies[i].TokensPerSecond, replies[i].Kernels }),
            }));
        }

        await host.StopAsync();
        Console.WriteLine($"Done in {clock.Elapsed.TotalSeconds:F1} s, exit code {exitCode}.");
        return exitCode;
    }

    private static void ConfigureOwnGuard(EnvScope scope)
    {
        if (scope == EnvScope.None)
        {
            Environment.SetEnvironmentVariable("USE_FLAGGEMS", null);
        }
        else if (string.IsNullOrEmpty(Environment.GetEnvironmentVariable("USE_FLAGGEMS")))
        {
            Environment.SetEnvironmentVariable("USE_FLAGGEMS", "1");
        }
    }

    internal static readonly string[] BuiltInPrompts =
    [
        "once upon a time there lived a king",
        "the workers of the cluster start the job",
        "every node must run the fast kernels",
        "what does the model say about the sea",
        "the launcher tells each worker what to do",
        "a small model runs on the cpu",
    ];

    /// <summary>One silo process started by the launcher.</summary>
    private sealed class SiloProcess
    {
        private readonly TaskCompletionSource _ready = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private readonly System.Text.StringBuilder _log = new();
        private Process _process = null!;

        public int Index { get; private init; }

        public bool Quiet { get; set; }

        public Task Ready => _ready.Task;

        public string Log
        {
            get
            {
                lock (_log)
                {
                    return _log.ToString();
                }
            }
        }

        public static SiloProcess Start(int index, ClusterOptions options, string checkpoint)
        {
            var silo = new SiloProcess { Index = index };
            var self = Environment.ProcessPath!;
            var start = Path.GetFileNameWithoutExtension(self) == "dotnet"
                ? new ProcessStartInfo(self) { ArgumentList = { Path.Combine(AppContext.BaseDirectory, "OrleansCluster.dll") } }
                : new ProcessStartInfo(self);
            foreach (var argument in new[] { "--silo", index.ToString(CultureInfo.InvariantCulture), "--base-port", options.BasePort.ToString(CultureInfo.InvariantCulture), "--gateway-base-port", options.GatewayBasePort.ToString(CultureInfo.InvariantCulture), "--checkpoint", checkpoint })
            {
                start.ArgumentList.Add(argument);
            }

            start.RedirectStandardInput = true;
            start.RedirectStandardOutput = true;
            start.RedirectStandardError = true;
            start.UseShellExecute = false;
            start.Environment["RANK"] = index.ToString(CultureInfo.InvariantCulture);
            start.Environment["WORLD_SIZE"] = options.Silos.ToString(CultureInfo.InvariantCulture);
            if (options.Scope != EnvScope.All)
            {
                start.Environment.Remove("USE_FLAGGEMS");
            }

            if (options.SiloEnvironment.TryGetValue(index, out var variables))
            {
                foreach (var (name, value) in variables)
                {
                    if (value is null)
                    {
                        start.Environment.Remove(name);
                    }
                    else
                    {
                        start.Environment[name] = value;
                    }
                }
            }

            silo._process = Process.Start(start)!;
            silo._process.OutputDataReceived += (_, e) =>
            {
                if (e.Data == ReadyLine)
                {
                    silo._ready.TrySetResult();
                }
                else if (e.Data is not null)
                {
                    silo.Append(e.Data);
                }
            };
            silo._process.ErrorDataReceived += (_, e) =>
            {
                if (e.Data is null)
                {
                    return;
                }

                silo.Append(e.Data);
                if (!silo.Quiet && (!e.Data.Contains("Overriding a previously registered kernel", StringComparison.Ordinal) || options.Verbose))
                {
                    Console.Error.WriteLine($"[silo{index}] {e.Data}");
                }
            };
            silo._process.Exited += (_, _) => silo._ready.TrySetException(new InvalidOperationException($"Silo {index} exited before it was ready."));
            silo._process.EnableRaisingEvents = true;
            silo._process.BeginOutputReadLine();
            silo._process.BeginErrorReadLine();
            Console.WriteLine($"[silo{index}] started pid {silo._process.Id}");
            return silo;
        }

        public async Task StopAsync()
        {
            try
            {
                _process.StandardInput.Close();
                await _process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(20));
            }
            catch (Exception ex) when (ex is TimeoutException or InvalidOperationException or IOException)
            {
                try
                {
                    _process.Kill(entireProcessTree: true);
                }
                catch (InvalidOperationException)
                {
                    // Gone already.
                }
            }
        }

        private void Append(string line)
        {
            lock (_log)
            {
                _log.AppendLine(line);
            }
        }
    }
}
