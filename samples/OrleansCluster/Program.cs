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
        builder.Logging.ClearProviders().AddConsole(console => console.LogToStandardErrorThreshold = LogLevel.Trace).SetMinimumLevel(LogLevel.Warning).AddFilter("Orleans", LogLevel.Error).AddFilter("Polly", LogLevel.Error);
        builder.Services.AddSingleton(new SiloInfo(options.SiloIndex, options.Checkpoint!));
        builder.UseOrleans(silo =>
        {
            var primary = new IPEndPoint(IPAddress.Loopback, options.BasePort);
            silo.UseLocalhostClustering(options.BasePort + options.SiloIndex, options.GatewayBasePort + options.SiloIndex, primary, ServiceId, ClusterId);
            silo.Configure<SiloOptions>(o => o.SiloName = $"silo{options.SiloIndex}");
            if (options.FastMembership)
            {
                // A killed silo's peers notice in seconds, not Orleans' production pace: probe every second and
                // suspect after two misses. Both survivors of a 3-silo cluster must still vote (the default two
                // votes), so one slow probe on a busy machine does not evict a healthy silo.
                silo.Configure<ClusterMembershipOptions>(o =>
                {
                    o.ProbeTimeout = TimeSpan.FromSeconds(1);
                    o.NumMissedProbesLimit = 2;
                    o.TableRefreshTimeout = TimeSpan.FromSeconds(2);
                });
            }
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
        builder.Logging.ClearProviders().AddConsole(console => console.LogToStandardErrorThreshold = LogLevel.Trace).SetMinimumLevel(LogLevel.Warning).AddFilter("Orleans", LogLevel.Error).AddFilter("Polly", LogLevel.Error);
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
        for (var i = 0; i < replies.Length; i++)
        {
            var mine = prompts.Where((_, p) => p % options.Silos == i).ToArray();
            for (var p = 0; p < mine.Length; p++)
            {
                Console.WriteLine($"  [silo{replies[i].Index}, {replies[i].Kernels} kernels] {mine[p]} => {replies[i].Texts[p]}");
            }
        }

        var exitCode = 0;
        var notEnabled = statuses.Where(s => s.State != GemsState.Enabled).ToArray();
        if (options.RequireGems && notEnabled.Length > 0)
        {
            Console.WriteLine($"--require-gems: {notEnabled.Length} of {statuses.Length} silos are not running GemsInjector's kernels.");
            exitCode = 3;
        }

        Failover? failover = null;
        if (options.KillSilo is { } victim)
        {
            failover = await KillSiloAndFailOver(options, silos[victim], reports[victim], grains);
            if (failover.After is null)
            {
                exitCode = ExitFailoverFailed;
            }
            else if (options.RequireGems && failover.State != GemsState.Enabled && exitCode == 0)
            {
                Console.WriteLine($"--require-gems: grain {victim} came back on silo{failover.After.Index}, which is not running GemsInjector's kernels.");
                exitCode = 3;
            }
        }

        if (options.ReportPath is { } path)
        {
            File.WriteAllText(path, JsonSerializer.Serialize(new
            {
                exitCode,
                failover = failover is null ? null : new
                {
                    failover.KilledSilo,
                    failover.KilledPid,
                    failover.KilledExitCode,
                    before = failover.Before.SiloAddress,
                    after = failover.After?.SiloAddress,
                    afterSilo = failover.After?.Index,
                    status = failover.After is null ? (JsonElement?)null : JsonDocument.Parse(failover.After.StatusJson).RootElement,
                    failover.SecondsToReactivation,
                    failover.Attempts,
                    failover.FirstError,
                    failover.Kernels,
                    failover.Tokens,
                    failover.MembershipAfter,
                },
                membership = hosts.Count,
                silos = reports.Select((r, i) => new { r.Index, r.SiloAddress, status = JsonDocument.Parse(r.StatusJson).RootElement, replies[i].Tokens, replies[i].TokensPerSecond, replies[i].Kernels }),
            }));
        }

        await host.StopAsync();
        Console.WriteLine($"Done in {clock.Elapsed.TotalSeconds:F1} s, exit code {exitCode}.");
        return exitCode;
    }

    /// <summary>The exit code when a killed silo's grain did not come back within --failover-timeout.</summary>
    private const int ExitFailoverFailed = 5;

    /// <summary>
    /// Kills one silo process with SIGKILL (no graceful leave: its peers must find out by probing it), then calls its
    /// worker grain until Orleans re-activates it on a surviving silo, and asks that silo what its GemsInjector says.
    /// </summary>
    private static async Task<Failover> KillSiloAndFailOver(ClusterOptions options, SiloProcess victim, SiloReport before, IClusterClient grains)
    {
        victim.Quiet = true;
        var pid = victim.ProcessId;
        victim.Kill();
        var clock = Stopwatch.StartNew();
        var exitCode = await victim.WaitForExitCode();
        Console.WriteLine();
        Console.WriteLine($"Killed silo{victim.Index} (pid {pid}) with SIGKILL (its exit code: {exitCode}); calling worker grain {victim.Index} until it comes back on a surviving silo.");

        var grain = grains.GetGrain<ILlamaWorkerGrain>(victim.Index);
        var deadline = TimeSpan.FromSeconds(options.FailoverTimeoutSeconds);
        var attempts = 0;
        string? firstError = null;
        SiloReport? after = null;
        while (clock.Elapsed < deadline)
        {
            attempts++;
            try
            {
                // Each call is bounded on its own: until the dead silo is declared dead, a call may wait on it.
                var report = await grain.GetStatus().WaitAsync(TimeSpan.FromSeconds(3));
                if (report.SiloAddress != before.SiloAddress)
                {
                    after = report;
                    break;
                }
            }
            catch (Exception ex) when (ex is not OutOfMemoryException)
            {
                firstError ??= $"{ex.GetType().Name}: {ex.Message.Split('\n')[0]}";
            }

            await Task.Delay(TimeSpan.FromMilliseconds(250));
        }

        var seconds = clock.Elapsed.TotalSeconds;
        if (after is null)
        {
            Console.WriteLine($"Fail-over failed: worker grain {victim.Index} did not come back within --failover-timeout {options.FailoverTimeoutSeconds} s ({attempts} calls; first error: {firstError ?? "none"}).");
            return new Failover(victim.Index, pid, exitCode, before, null, null, seconds, attempts, firstError, null, 0, 0);
        }

        var status = GemsStatus.FromJson(after.StatusJson);
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"Worker grain {after.GrainKey} re-activated on silo{after.Index} ({after.SiloAddress}) {seconds:F1} s after the kill ({attempts} calls{(firstError is null ? "" : $"; the first failed with {firstError}")})."));
        Console.WriteLine($"silo{after.Index} reports GemsInjector {status.State.ToString().ToLowerInvariant()}: {status.Reason}");

        var reply = await grain.Generate([BuiltInPrompts[0]], options.MaxNewTokens);
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  [grain {after.GrainKey} on silo{reply.Index}, {reply.Kernels} kernels] {BuiltInPrompts[0]} => {reply.Texts[0]} ({reply.TokensPerSecond:F1} tokens/s)"));

        // The grain may come back before every silo has agreed the dead one is gone; wait for that too, as a bounded check.
        var management = grains.GetGrain<IManagementGrain>(0);
        var hosts = await management.GetHosts(onlyActive: true);
        while (hosts.Keys.Any(host => host.ToString() == before.SiloAddress) && clock.Elapsed < deadline)
        {
            await Task.Delay(TimeSpan.FromMilliseconds(250));
            hosts = await management.GetHosts(onlyActive: true);
        }

        var declaredDead = hosts.Keys.All(host => host.ToString() != before.SiloAddress);
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"Cluster membership {clock.Elapsed.TotalSeconds:F1} s after the kill: {hosts.Count} active silos; silo{victim.Index} {(declaredDead ? "declared dead" : "STILL LISTED as active")}."));
        return new Failover(victim.Index, pid, exitCode, before, after, status.State, seconds, attempts, firstError, reply.Kernels, reply.Tokens[0].Length, hosts.Count);
    }

    /// <summary>What happened when a silo was killed: where its grain came back (null: it did not), how fast, and on what.</summary>
    private sealed record Failover(
        int KilledSilo, int KilledPid, int KilledExitCode, SiloReport Before, SiloReport? After, GemsState? State,
        double SecondsToReactivation, int Attempts, string? FirstError, string? Kernels, int Tokens, int MembershipAfter);

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

            if (options.FastMembership)
            {
                start.ArgumentList.Add("--fast-membership");
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

        public int ProcessId => _process.Id;

        /// <summary>Kills the silo process with SIGKILL (Process.Kill on Unix): it gets no chance to leave the cluster.</summary>
        public void Kill() => _process.Kill(entireProcessTree: false);

        public async Task<int> WaitForExitCode()
        {
            await _process.WaitForExitAsync();
            return _process.ExitCode;
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
