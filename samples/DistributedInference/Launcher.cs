using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Globalization;
using System.IO;
using System.Linq;
using System.Text.Json;
using System.Threading;
using System.Threading.Tasks;
using GemsInjector;
using GemsLlm;

namespace DistributedInference;

/// <summary>
/// Starts the workers (separate processes of this program, as torchrun starts them), gives each RANK, LOCAL_RANK,
/// WORLD_SIZE and LOCAL_WORLD_SIZE and a share of the prompts, collects what they report and prints the fleet table.
/// </summary>
internal static class Launcher
{
    public const string Guard = "USE_FLAGGEMS";
    public const int ExitWorkerFailed = 1;
    public const int ExitUsage = 2;
    public const int ExitGemsRequired = 3;
    public const int ExitMismatch = 4;

    /// <summary>A worker died before it sent its result (killed, crashed, or exited without a word): the run is stopped.</summary>
    public const int ExitWorkerLost = 5;

    /// <summary>A worker stopped answering (no heartbeat within --heartbeat-timeout), or the run passed --timeout.</summary>
    public const int ExitWorkerHung = 6;

    /// <summary>How long the launcher waits for the workers it kills to be gone before it says which are not.</summary>
    private static readonly TimeSpan StopWait = TimeSpan.FromSeconds(5);

    public static readonly string[] BuiltInPrompts =
    [
        "once upon a time there lived a king",
        "the workers of the cluster start the job",
        "every node must run the fast kernels",
        "what does the model say about the sea",
        "the launcher tells each worker what to do",
        "a small model runs on the cpu",
        "the cat and the dog see the moon",
        "how do the tokens make a story",
        "first the attention layer then the cache",
        "the river goes to the sea at night",
        "we learn to read and write the language",
        "the queen asks the king for the book",
    ];

    private const string LogLevelVariable = "GEMS_LOG_LEVEL";
    private static readonly object ConsoleLock = new();

    /// <summary>GEMS_LOG_LEVEL as the launcher found it; workers get this one, not the launcher's quieter setting.</summary>
    public static string? OriginalLogLevel { get; private set; }

    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.NoInlining)]
    public static int Run(Options options)
    {
        var clock = Stopwatch.StartNew();

        // Touching the engine runs its runner's start-up block in this process too: the launcher enables GemsInjector
        // when its own environment says so, which tells nothing about the workers.
        var launcherStatus = LlamaModelRunner.Start();
        Say($"Launcher (pid {Environment.ProcessId}): USE_FLAGGEMS={Environment.GetEnvironmentVariable(Guard) ?? "<unset>"}, GemsInjector {launcherStatus.State.ToString().ToLowerInvariant()}; env scope '{options.Scope.ToString().ToLowerInvariant()}'.");

        var checkpoint = Path.GetFullPath(options.Checkpoint ?? LlamaCheckpoint.DefaultPath);
        var existed = File.Exists(checkpoint);
        LlamaCheckpoint.EnsureCreated(checkpoint);
        Say(existed ? $"Checkpoint: {checkpoint}" : $"Checkpoint: wrote seeded weights to {checkpoint}");

        var prompts = options.Prompts.Count > 0 ? options.Prompts.ToArray() : Enumerable.Range(0, options.PromptCount).Select(i => BuiltInPrompts[i % BuiltInPrompts.Length]).ToArray();
        var shares = Enumerable.Range(0, options.Workers).Select(rank => prompts.Where((_, index) => index % options.Workers == rank).ToArray()).ToArray();
        var threads = Math.Max(1, Environment.ProcessorCount / options.Workers);
        Say($"Starting {options.Workers} workers: {prompts.Length} prompts, {options.MaxNewTokens} new tokens each{(options.Compare ? ", then again on the other kernels to compare" : "")}.");

        var workers = Enumerable.Range(0, options.Workers)
            .Select(rank => new WorkerProcess(rank, options, new WorkRequest(checkpoint, shares[rank], options.MaxNewTokens, options.Compare, threads)
            {
                Fault = options.Faults.GetValueOrDefault(rank),
                ExitWhenInputCloses = true,
            }))
            .ToArray();
        foreach (var worker in workers)
        {
            worker.Start();
        }

        var failure = Supervise(workers, options, clock);
        if (failure is not null)
        {
            StopTheOthers(workers, failure);
        }

        var rows = workers.Select(worker => new FleetRow(worker.Rank.ToString(CultureInfo.InvariantCulture), worker.Status ?? Unreported(worker), worker.Result?.TokensPerSecond)).ToArray();
        Console.WriteLine();
        Console.WriteLine("Fleet:");
        Console.Write(FleetTable.Format(rows));

        var exitCode = failure?.ExitCode ?? 0;
        foreach (var worker in workers.Where(worker => worker.Result is null))
        {
            Console.WriteLine($"Worker {worker.Rank} failed: {worker.Error ?? "no result"} ({DescribeExit(worker.ExitCode)}).");
            exitCode = exitCode == 0 ? ExitWorkerFailed : exitCode;
        }

        PrintOutputs(workers);
        if (options.Compare)
        {
            var mismatch = PrintComparison(workers);
            if (mismatch && exitCode == 0)
            {
                exitCode = ExitMismatch;
            }
        }

        var notEnabled = rows.Where(row => row.Status.State != GemsState.Enabled).ToArray();
        if (options.RequireGems && notEnabled.Length > 0)
        {
            Console.WriteLine($"--require-gems: {notEnabled.Length} of {rows.Length} workers are not running GemsInjector's kernels (ranks {string.Join(", ", notEnabled.Select(row => row.Rank))}).");
            exitCode = exitCode == 0 ? ExitGemsRequired : exitCode;
        }

        if (options.ReportPath is { } reportPath)
        {
            WriteReport(reportPath, launcherStatus, workers, exitCode, failure);
        }

        if (failure is not null)
        {
            // Last, so that it is the line a reader (or a CI log's tail) sees.
            SayError($"Fleet failed: {failure.Message}");
        }

        Console.WriteLine($"Done in {clock.Elapsed.TotalSeconds:F1} s, exit code {exitCode}.");
        return exitCode;
    }

    /// <summary>
    /// Waits for the workers as torchrun's elastic agent does: the first worker that ends without its result, stops
    /// answering, or outlives the run's deadline fails the whole run at once (the others' work is useless without its
    /// share). Returns null when every worker finished.
    /// </summary>
    private static FleetFailure? Supervise(IReadOnlyList<WorkerProcess> workers, Options options, Stopwatch clock)
    {
        var heartbeatTimeout = TimeSpan.FromSeconds(options.HeartbeatTimeoutSeconds);
        var deadline = TimeSpan.FromSeconds(options.TimeoutSeconds);
        while (true)
        {
            if (workers.FirstOrDefault(worker => worker.Completion.IsCompleted && worker.Result is null) is { } ended)
            {
                // A worker that said what went wrong failed; one that went without a word was lost.
                var code = ended.ReportedError ? ExitWorkerFailed : ExitWorkerLost;
                var what = ended.ReportedError ? $"failed ({ended.Error})" : "was lost";
                return new FleetFailure(ended, code, $"rank {ended.Rank} (pid {ended.ProcessId}) {what}: {DescribeExit(ended.ExitCode)}; last heard {ended.SilentFor.TotalSeconds:F1} s before, while {ended.Doing}.")
                {
                    StopReason = $"stopped by the launcher: rank {ended.Rank} {(ended.ReportedError ? "failed" : "was lost")}",
                };
            }

            var running = workers.Where(worker => !worker.Completion.IsCompleted).ToArray();
            if (running.Length == 0)
            {
                return null;
            }

            if (running.FirstOrDefault(worker => worker.SilentFor > heartbeatTimeout) is { } silent)
            {
                var message = $"rank {silent.Rank} (pid {silent.ProcessId}) stopped answering: nothing from it for {silent.SilentFor.TotalSeconds:F1} s (--heartbeat-timeout {options.HeartbeatTimeoutSeconds}); last it was {silent.Doing}.";
                silent.Kill($"stopped answering for {silent.SilentFor.TotalSeconds:F1} s while {silent.Doing}");
                return new FleetFailure(silent, ExitWorkerHung, message) { StopReason = $"stopped by the launcher: rank {silent.Rank} stopped answering" };
            }

            if (clock.Elapsed > deadline)
            {
                var slow = running[0];
                return new FleetFailure(slow, ExitWorkerHung, $"{running.Length} workers did not finish within --timeout {options.TimeoutSeconds} s (rank {slow.Rank}, pid {slow.ProcessId}, was {slow.Doing}).")
                {
                    StopReason = $"did not finish within --timeout {options.TimeoutSeconds} s",
                };
            }

            // Wake on any worker's end, or often enough to see a silent one soon after its timeout.
            Task.WaitAny([.. running.Select(worker => worker.Completion), Task.Delay(TimeSpan.FromMilliseconds(200))]);
        }
    }

    /// <summary>Kills every worker still running after a failure and checks that each is gone, so none is left orphaned.</summary>
    private static void StopTheOthers(IReadOnlyList<WorkerProcess> workers, FleetFailure failure)
    {
        SayError($"Fleet failure: {failure.Message}");
        var running = workers.Where(worker => !worker.Completion.IsCompleted).ToArray();
        foreach (var worker in running)
        {
            worker.Kill(failure.StopReason);
        }

        Task.WaitAll(running.Select(worker => worker.Completion).ToArray(), StopWait);
        foreach (var worker in running)
        {
            var state = worker.HasExited ? "stopped" : $"STILL RUNNING {StopWait.TotalSeconds:F0} s after it was killed";
            var was = worker.Result is null ? $"it was {worker.Doing}" : "it had already sent its result";
            SayError($"Rank {worker.Rank} (pid {worker.ProcessId}): {state}; {was}.");
        }
    }

    /// <summary>
    /// An exit code in words. On Unix, .NET reports a process ended by signal N as 128 + N, as shells do; a process that
    /// called exit(137) itself reads the same, which is why the signal is given as what the code means, not as a fact.
    /// </summary>
    internal static string DescribeExit(int? exitCode)
    {
        if (exitCode is not { } code)
        {
            return "still running";
        }

        if (!OperatingSystem.IsWindows() && code is > 128 and <= 128 + 31)
        {
            var signal = code - 128;
            var name = signal switch { 9 => "SIGKILL", 15 => "SIGTERM", 6 => "SIGABRT", 11 => "SIGSEGV", 2 => "SIGINT", 7 => "SIGBUS", 4 => "SIGILL", 8 => "SIGFPE", _ => $"signal {signal}" };
            return $"exit code {code} = 128 + {signal}, killed by {name}";
        }

        return code == InjectedFault.ExitCode ? $"exit code {code} (the injected 'exit' fault)" : $"exit code {code}";
    }

    /// <summary>
    /// Sets the launcher's own guard for the scope. Must run before any method that mentions the engine's types is
    /// compiled: the engine's start-up block runs when its assembly is first touched, and reads the variable then.
    /// </summary>
    public static void ConfigureOwnGuard(EnvScope scope, bool verbose)
    {
        // The launcher's own start-up lines would bury the fleet's: keep only its warnings unless asked.
        OriginalLogLevel = Environment.GetEnvironmentVariable(LogLevelVariable);
        if (!verbose && OriginalLogLevel is null)
        {
            Environment.SetEnvironmentVariable(LogLevelVariable, "Warning");
        }

        if (scope == EnvScope.None)
        {
            Environment.SetEnvironmentVariable(Guard, null);
        }
        else if (string.IsNullOrEmpty(Environment.GetEnvironmentVariable(Guard)))
        {
            Environment.SetEnvironmentVariable(Guard, "1");
        }
    }

    private static GemsStatus Unreported(WorkerProcess worker) => GemsStatus.FromJson(JsonSerializer.Serialize(new
    {
        State = "Fallback",
        Reason = $"The worker reported no status: {worker.Error ?? "it exited early"}",
        ProcessId = worker.ProcessId,
        HostName = Environment.MachineName,
        Rank = worker.Rank,
    }));

    private static void PrintOutputs(IEnumerable<WorkerProcess> workers)
    {
        Console.WriteLine();
        Console.WriteLine("Generated (greedy):");
        foreach (var worker in workers.Where(worker => worker.Result is not null))
        {
            foreach (var output in worker.Result!.Outputs)
            {
                Console.WriteLine($"  [rank {worker.Rank}] {output.Prompt} => {output.Text}");
            }
        }
    }

    private static bool PrintComparison(IEnumerable<WorkerProcess> workers)
    {
        Console.WriteLine();
        Console.WriteLine("GemsInjector vs default kernels, same prompts in each worker:");
        var mismatch = false;
        foreach (var worker in workers.Where(worker => worker.Result?.Comparison is not null))
        {
            var comparison = worker.Result!.Comparison!;
            if (comparison.Unavailable is not null)
            {
                Console.WriteLine($"  rank {worker.Rank}: default {comparison.DefaultTokensPerSecond:F1} tokens/s; no GemsInjector run ({comparison.Unavailable})");
                continue;
            }

            var ok = comparison.TokensIdentical && comparison.LogitsWithinTolerance;
            mismatch |= !ok;
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"  rank {worker.Rank}: GemsInjector {comparison.GemsTokensPerSecond:F1} tokens/s, default {comparison.DefaultTokensPerSecond:F1} tokens/s (fastest of {comparison.Passes} alternating passes); tokens {(comparison.TokensIdentical ? "identical" : "DIFFER")}; max |logit difference| {comparison.MaxLogitDifference:E2} ({(comparison.LogitsWithinTolerance ? "within" : "OUTSIDE")} tolerance {comparison.Tolerance:E0} + {comparison.Tolerance:E0}*|logit|)"));
        }

        return mismatch;
    }

    private static void WriteReport(string path, GemsStatus launcher, IEnumerable<WorkerProcess> workers, int exitCode, FleetFailure? failure)
    {
        var report = new
        {
            Launcher = JsonDocument.Parse(launcher.ToJson()).RootElement,
            ExitCode = exitCode,
            Failure = failure is null ? null : new { failure.Worker.Rank, failure.Message },
            Workers = workers.Select(worker => new
            {
                worker.Rank,
                worker.ProcessId,
                worker.ExitCode,
                worker.Error,
                worker.Doing,
                Status = worker.Status is null ? (JsonElement?)null : JsonDocument.Parse(worker.Status.ToJson()).RootElement,
                worker.Result,
                worker.LogLines,
            }).ToArray(),
        };
        File.WriteAllText(path, JsonSerializer.Serialize(report, new JsonSerializerOptions(Protocol.Json) { WriteIndented = true }));
    }

    internal static void Say(string line)
    {
        lock (ConsoleLock)
        {
            Console.WriteLine(line);
        }
    }

    internal static void SayError(string line)
    {
        lock (ConsoleLock)
        {
            Console.Error.WriteLine(line);
        }
    }
}

/// <summary>One worker process and what it has reported.</summary>
internal sealed class WorkerProcess(int rank, Options options, WorkRequest request)
{
    private const string OverrideLinePrefix = "Overriding a previously registered kernel";
    private readonly TaskCompletionSource _completion = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly List<string> _logLines = [];
    private Process? _process;
    private int _overrideLines;
    private long _lastHeard = Stopwatch.GetTimestamp();
    private long? _exitedAt;
    private volatile string _doing = "starting";

    public int Rank { get; } = rank;

    public int? ProcessId { get; private set; }

    public int? ExitCode { get; private set; }

    public GemsStatus? Status { get; private set; }

    public WorkerResult? Result { get; private set; }

    public string? Error { get; private set; }

    /// <summary>Whether the worker itself sent an <c>error</c> message (it failed, as opposed to being lost).</summary>
    public bool ReportedError { get; private set; }

    /// <summary>What the worker last said it was doing (from its heartbeats and progress).</summary>
    public string Doing => _doing;

    /// <summary>How long the worker has said nothing (on either stream); for an exited worker, how long before its exit.</summary>
    public TimeSpan SilentFor => Stopwatch.GetElapsedTime(Interlocked.Read(ref _lastHeard), _exitedAt ?? Stopwatch.GetTimestamp());

    public bool HasExited
    {
        get
        {
            try
            {
                return _process?.HasExited ?? true;
            }
            catch (InvalidOperationException)
            {
                return true;
            }
        }
    }

    public IReadOnlyList<string> LogLines
    {
        get
        {
            lock (_logLines)
            {
                return [.. _logLines];
            }
        }
    }

    public Task Completion => _completion.Task;

    public void Start()
    {
        var app = options.WorkerApps.TryGetValue(Rank, out var other) ? Path.GetFullPath(other) : Path.Combine(AppContext.BaseDirectory, "DistributedInference.dll");
        // A launcher started through its own executable (as a self-contained publish is, on a machine with no
        // dotnet) starts its workers the same way; a worker from another folder runs through the dotnet host.
        var self = Environment.ProcessPath;
        var viaExecutable = !options.WorkerApps.ContainsKey(Rank) && self is not null && Path.GetFileNameWithoutExtension(self) != "dotnet";
        var start = new ProcessStartInfo(viaExecutable ? self! : DotnetHost())
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = Path.GetDirectoryName(app)!,
        };
        if (!viaExecutable)
        {
            start.ArgumentList.Add(app);
        }

        start.ArgumentList.Add("--worker");
        start.Environment["RANK"] = Rank.ToString(CultureInfo.InvariantCulture);
        start.Environment["LOCAL_RANK"] = Rank.ToString(CultureInfo.InvariantCulture);
        start.Environment["WORLD_SIZE"] = options.Workers.ToString(CultureInfo.InvariantCulture);

        // All workers run on this node, as torchrun's LOCAL_WORLD_SIZE says; the CPU kernels share the cores by it.
        start.Environment["LOCAL_WORLD_SIZE"] = options.Workers.ToString(CultureInfo.InvariantCulture);
        if (options.Scope != EnvScope.All)
        {
            start.Environment.Remove(Launcher.Guard);
        }

        start.Environment.Remove("GEMS_LOG_LEVEL");
        if (Launcher.OriginalLogLevel is { } level)
        {
            start.Environment["GEMS_LOG_LEVEL"] = level;
        }

        if (options.WorkerEnvironment.TryGetValue(Rank, out var variables))
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

        var process = new Process { StartInfo = start, EnableRaisingEvents = true };
        var outputDone = new TaskCompletionSource();
        var errorDone = new TaskCompletionSource();
        process.OutputDataReceived += (_, e) => { if (e.Data is null) { outputDone.TrySetResult(); } else { OnOutput(e.Data); } };
        process.ErrorDataReceived += (_, e) => { if (e.Data is null) { errorDone.TrySetResult(); } else { OnError(e.Data); } };
        process.Start();
        _process = process;
        ProcessId = process.Id;
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        // Standard input stays open (the request says so): the worker exits when it closes, that is, when this
        // launcher exits or is killed, so no worker outlives its launcher.
        process.StandardInput.WriteLine(JsonSerializer.Serialize(request, Protocol.Json));
        process.StandardInput.Flush();
        Launcher.Say($"[rank {Rank}] started pid {process.Id}{(options.WorkerApps.ContainsKey(Rank) ? $" from {app}" : "")}");
        _ = Task.Run(async () =>
        {
            await process.WaitForExitAsync().ConfigureAwait(false);
            _exitedAt = Stopwatch.GetTimestamp();
            try
            {
                await Task.WhenAll(outputDone.Task, errorDone.Task).WaitAsync(TimeSpan.FromSeconds(10)).ConfigureAwait(false);
            }
            catch (TimeoutException)
            {
                // Something the worker started still holds its pipes; what it wrote so far is all there is.
            }

            ExitCode = process.ExitCode;
            if (_overrideLines > 0 && !options.Verbose)
            {
                Launcher.SayError($"[rank {Rank}] ({_overrideLines} '{OverrideLinePrefix} ...' lines; --verbose shows them)");
            }

            if (Result is null && Error is null)
            {
                Error = "exited without a result";
            }

            _completion.TrySetResult();
        });
    }

    public void Kill(string why)
    {
        Error ??= why;
        try
        {
            _process?.Kill(entireProcessTree: true);
        }
        catch (InvalidOperationException)
        {
            // Already gone.
        }
    }

    private void OnOutput(string line)
    {
        Interlocked.Exchange(ref _lastHeard, Stopwatch.GetTimestamp());
        if (!line.StartsWith(Protocol.Prefix, StringComparison.Ordinal))
        {
            Launcher.Say($"[rank {Rank}] {line}");
            return;
        }

        WorkerMessage? message;
        try
        {
            message = JsonSerializer.Deserialize<WorkerMessage>(line[Protocol.Prefix.Length..], Protocol.Json);
        }
        catch (JsonException ex)
        {
            Error = $"sent an unreadable message: {ex.Message}";
            return;
        }

        switch (message?.Kind)
        {
            case "heartbeat":
                _doing = message.Message ?? _doing;
                break;
            case "status":
                Status = GemsStatus.FromJson(message.Status!);
                Launcher.Say($"[rank {Rank}] GemsInjector {Status.State.ToString().ToLowerInvariant()}: {Status.Reason}");
                break;
            case "progress":
                _doing = $"done with {message.Done} of {message.Total} prompts ({message.Message} kernels)";
                Launcher.Say($"[rank {Rank}] {message.Done}/{message.Total} prompts done ({message.Message} kernels)");
                break;
            case "result":
                Result = message.Result;
                Launcher.Say(string.Create(CultureInfo.InvariantCulture, $"[rank {Rank}] finished: {Result!.NewTokens} tokens at {Result.TokensPerSecond:F1} tokens/s"));
                break;
            case "error":
                Error = message.Message;
                ReportedError = true;
                Launcher.SayError($"[rank {Rank}] error: {message.Message}");
                break;
        }
    }

    private void OnError(string line)
    {
        Interlocked.Exchange(ref _lastHeard, Stopwatch.GetTimestamp());
        lock (_logLines)
        {
            _logLines.Add(line);
        }

        if (line.Contains(OverrideLinePrefix, StringComparison.Ordinal) && !options.Verbose)
        {
            Interlocked.Increment(ref _overrideLines);
            return;
        }

        Launcher.SayError($"[rank {Rank}] {line}");
    }

    private static string DotnetHost()
    {
        var self = Environment.ProcessPath;
        if (self is not null && Path.GetFileNameWithoutExtension(self) == "dotnet")
        {
            return self;
        }

        return Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } host ? host : "dotnet";
    }
}

/// <summary>Why the launcher stopped the run: the worker to blame, the exit code the launcher returns, and what to say.</summary>
internal sealed record FleetFailure(WorkerProcess Worker, int ExitCode, string Message)
{
    /// <summary>The error recorded for each worker the launcher kills because of this failure.</summary>
    public required string StopReason { get; init; }
}
