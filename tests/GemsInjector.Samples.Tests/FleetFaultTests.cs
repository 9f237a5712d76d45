using System;
using System.Diagnostics;
using System.Globalization;
using System.IO;
using System.Linq;
using System.Text.Json;
using System.Text.RegularExpressions;
using System.Threading;
using GemsInjector.TestProcesses;
using Xunit;
using Xunit.Abstractions;

namespace GemsInjector.Samples.Tests;

/// <summary>
/// samples/DistributedInference when a worker dies or hangs mid-run, and when the launcher itself dies: the launcher must
/// name the lost rank and exit 5 (lost) or 6 (stopped answering) within seconds, and no worker may outlive the run.
/// </summary>
public sealed class FleetFaultTests(ITestOutputHelper output) : IDisposable
{
    private const int ExitWorkerFailed = 1;
    private const int ExitWorkerLost = 5;
    private const int ExitWorkerHung = 6;

    /// <summary>From a worker's death to the launcher's exit: the issue's bound.</summary>
    private static readonly TimeSpan DeathToExit = TimeSpan.FromSeconds(10);
    private static readonly TimeSpan RunLimit = TimeSpan.FromSeconds(60);
    private static readonly string AppFolder = ProcessRunner.Metadata("DistributedInferenceOutput");

    // Far more work than a test waits for (minutes at a few hundred tokens/s): the fault, not the end of the work, ends
    // these runs; their time is bounded by DeathToExit after it.
    private static readonly string[] LongRun = ["--no-compare", "--prompts", "2400", "--max-new-tokens", "16"];

    private readonly DirectoryInfo _work = Directory.CreateTempSubdirectory("gems-fleet-fault-test-");

    public void Dispose() => _work.Delete(recursive: true);

    [Fact]
    public void A_worker_killed_with_SIGKILL_mid_run_fails_the_launcher_with_exit_5_naming_the_rank_pid_signal_and_step_and_no_worker_is_left()
    {
        using var launcher = Start(["--workers", "3", .. LongRun]);
        var pids = WorkerPids(launcher, 3);
        launcher.WaitForLine(new Regex(@"^\[rank 1\] 2/800 prompts done"), RunLimit);

        var clock = Stopwatch.StartNew();
        using (var victim = Process.GetProcessById(pids[1]))
        {
            victim.Kill();
        }

        var exitCode = launcher.WaitForExit(RunLimit);
        var killToExit = clock.Elapsed;
        output.WriteLine($"SIGKILL of rank 1 (pid {pids[1]}) to launcher exit: {killToExit.TotalSeconds:F2} s, exit code {exitCode}");
        output.WriteLine(launcher.StandardError.Split('\n').Where(line => line.StartsWith("Fleet", StringComparison.Ordinal) || line.StartsWith("Rank", StringComparison.Ordinal)).Aggregate("", (all, line) => all + line + "\n"));

        Assert.True(exitCode == ExitWorkerLost, launcher.ToString());
        Assert.True(killToExit < DeathToExit, $"{killToExit} from the kill to the launcher's exit\n{launcher}");
        Assert.Matches(new Regex($@"^Fleet failed: rank 1 \(pid {pids[1]}\) was lost: exit code 137 = 128 \+ 9, killed by SIGKILL; last heard \d+\.\d s before, while (generating prompt \d+ of 800|done with \d+ of 800 prompts) \(gems kernels\)\.", RegexOptions.Multiline), launcher.StandardError);
        Assert.Matches(new Regex($@"^Rank 0 \(pid {pids[0]}\): stopped; it was ", RegexOptions.Multiline), launcher.StandardError);
        Assert.Matches(new Regex($@"^Rank 2 \(pid {pids[2]}\): stopped; it was ", RegexOptions.Multiline), launcher.StandardError);
        Assert.Contains("Done in", launcher.StandardOutput, StringComparison.Ordinal);
        AssertAllGone(pids);
    }

    [Theory]
    [InlineData("kill", ExitWorkerLost, 137, "was lost: exit code 137 = 128 + 9, killed by SIGKILL", "exited without a result (exit code 137 = 128 + 9, killed by SIGKILL)")]
    [InlineData("exit", ExitWorkerLost, 99, "was lost: exit code 99 (the injected 'exit' fault)", "exited without a result (exit code 99 (the injected 'exit' fault))")]
    [InlineData("error", ExitWorkerFailed, 1, "failed (InvalidOperationException: Injected fault after 1 prompts (--inject-fault).): exit code 1", "InvalidOperationException: Injected fault after 1 prompts (--inject-fault). (exit code 1)")]
    public void A_worker_that_dies_or_fails_after_its_first_prompt_by_an_injected_fault_stops_the_fleet_with_a_distinct_exit_code(string mode, int launcherExitCode, int workerExitCode, string failure, string workerLine)
    {
        var report = Path.Combine(_work.FullName, "report.json");
        using var launcher = Start(["--workers", "2", "--inject-fault", $"1:{mode}:1", "--report", report, .. LongRun]);
        var pids = WorkerPids(launcher, 2);
        launcher.WaitForLine(new Regex(@"^\[rank 1\] 1/1200 prompts done"), RunLimit);
        var clock = Stopwatch.StartNew();

        var exitCode = launcher.WaitForExit(RunLimit);
        output.WriteLine($"--inject-fault 1:{mode}:1: from the rank's last progress line to launcher exit {clock.Elapsed.TotalSeconds:F2} s, exit code {exitCode}");

        Assert.True(exitCode == launcherExitCode, launcher.ToString());
        Assert.True(clock.Elapsed < DeathToExit, launcher.ToString());
        Assert.Contains($"Fleet failed: rank 1 (pid {pids[1]}) {failure}; last heard", launcher.StandardError, StringComparison.Ordinal);
        Assert.Contains("while done with 1 of 1200 prompts (gems kernels).", launcher.StandardError, StringComparison.Ordinal);
        Assert.Contains($"[rank 1] Injected fault: {mode} after 1 prompts (--inject-fault).", launcher.StandardError, StringComparison.Ordinal);
        Assert.Contains($"Rank 0 (pid {pids[0]}): stopped; it was ", launcher.StandardError, StringComparison.Ordinal);
        Assert.Contains($"Worker 1 failed: {workerLine}.", launcher.StandardOutput, StringComparison.Ordinal);
        Assert.Contains($"exit code {launcherExitCode}.", launcher.StandardOutput, StringComparison.Ordinal);

        using var document = JsonDocument.Parse(File.ReadAllText(report));
        Assert.Equal(launcherExitCode, document.RootElement.GetProperty("exitCode").GetInt32());
        Assert.Equal(1, document.RootElement.GetProperty("failure").GetProperty("rank").GetInt32());
        var lost = document.RootElement.GetProperty("workers")[1];
        Assert.Equal(workerExitCode, lost.GetProperty("exitCode").GetInt32());
        Assert.False(lost.TryGetProperty("result", out _), lost.ToString());
        AssertAllGone(pids);
    }

    [Theory]
    [InlineData("injected hang")]
    [InlineData("SIGSTOP")]
    public void A_worker_that_stops_answering_is_caught_by_the_heartbeat_timeout_and_the_launcher_exits_6(string how)
    {
        // Six heartbeats' worth: a healthy worker on a busy 2-core machine must not be taken for a hung one.
        const int HeartbeatTimeout = 3;
        string[] fault = how == "SIGSTOP" ? [] : ["--inject-fault", "1:hang:1"];
        using var launcher = Start(["--workers", "2", "--heartbeat-timeout", HeartbeatTimeout.ToString(CultureInfo.InvariantCulture), .. fault, .. LongRun]);
        var pids = WorkerPids(launcher, 2);
        launcher.WaitForLine(new Regex(@"^\[rank 1\] 1/1200 prompts done"), RunLimit);
        var clock = Stopwatch.StartNew();
        if (how == "SIGSTOP")
        {
            ProcessRunner.Signal(pids[1], "STOP");
        }

        var exitCode = launcher.WaitForExit(RunLimit);
        output.WriteLine($"{how} of rank 1 with --heartbeat-timeout {HeartbeatTimeout}: to launcher exit {clock.Elapsed.TotalSeconds:F2} s, exit code {exitCode}");

        Assert.True(exitCode == ExitWorkerHung, launcher.ToString());
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(HeartbeatTimeout) + DeathToExit, launcher.ToString());
        // The injected hang stops the worker at a known step; SIGSTOP lands wherever the worker got to after the test saw
        // its first prompt done (a few prompts later on a fast, quiet machine).
        var lastStep = how == "SIGSTOP" ? @"(done with \d+ of 1200 prompts|generating prompt \d+ of 1200)" : "(done with 1 of 1200 prompts|generating prompt 2 of 1200)";
        var failure = new Regex($@"^Fleet failed: rank 1 \(pid {pids[1]}\) stopped answering: nothing from it for (\d+\.\d) s \(--heartbeat-timeout 3\); last it was {lastStep} \(gems kernels\)\.", RegexOptions.Multiline).Match(launcher.StandardError);
        Assert.True(failure.Success, launcher.ToString());

        // The launcher's own count of the silence, not this test's clock: the test sees the progress line a little
        // after the launcher does, so its clock may start late.
        Assert.True(double.Parse(failure.Groups[1].Value, CultureInfo.InvariantCulture) >= HeartbeatTimeout, failure.Value);
        Assert.Contains($"Rank 0 (pid {pids[0]}): stopped; it was ", launcher.StandardError, StringComparison.Ordinal);
        AssertAllGone(pids);
    }

    [Fact]
    public void The_run_deadline_stops_every_worker_and_the_launcher_exits_6()
    {
        using var launcher = Start(["--workers", "2", "--timeout", "2", .. LongRun]);
        var pids = WorkerPids(launcher, 2);

        var exitCode = launcher.WaitForExit(RunLimit);

        Assert.True(exitCode == ExitWorkerHung, launcher.ToString());
        Assert.Matches(new Regex(@"^Fleet failed: 2 workers did not finish within --timeout 2 s \(rank 0, pid \d+, was .+\)\.$", RegexOptions.Multiline), launcher.StandardError);
        Assert.Contains("Worker 0 failed: did not finish within --timeout 2 s (exit code 137 = 128 + 9, killed by SIGKILL).", launcher.StandardOutput, StringComparison.Ordinal);
        Assert.Contains("Worker 1 failed: did not finish within --timeout 2 s (exit code 137 = 128 + 9, killed by SIGKILL).", launcher.StandardOutput, StringComparison.Ordinal);
        AssertAllGone(pids);
    }

    [Fact]
    public void Workers_exit_by_themselves_when_the_launcher_is_killed_with_SIGKILL()
    {
        using var launcher = Start(["--workers", "2", .. LongRun]);
        var pids = WorkerPids(launcher, 2);
        launcher.WaitForLine(new Regex(@"^\[rank 1\] 1/1200 prompts done"), RunLimit);

        var clock = Stopwatch.StartNew();
        launcher.Kill();
        while (pids.Any(ProcessRunner.IsRunning) && clock.Elapsed < DeathToExit)
        {
            Thread.Sleep(50);
        }

        output.WriteLine($"SIGKILL of the launcher to both workers gone: {clock.Elapsed.TotalSeconds:F2} s");
        try
        {
            AssertAllGone(pids);
        }
        finally
        {
            // Never leave a worker behind for the rest of the suite, even when the sample failed to stop it.
            foreach (var pid in pids.Where(ProcessRunner.IsRunning))
            {
                ProcessRunner.Signal(pid, "KILL");
            }
        }
    }

    [Fact]
    public void Bad_fault_options_are_usage_errors()
    {
        var mode = Run(["--inject-fault", "1:explode"]);
        var rank = Run(["--workers", "2", "--inject-fault", "2:kill:1"]);
        var timeout = Run(["--heartbeat-timeout", "0"]);

        Assert.True(mode.ExitCode == 2, mode.ToString());
        Assert.Contains("--inject-fault takes RANK:kill|exit|hang|error[:PROMPTS], not '1:explode'.", mode.StandardError, StringComparison.Ordinal);
        Assert.True(rank.ExitCode == 2, rank.ToString());
        Assert.Contains("Rank 2 is not one of the 2 workers", rank.StandardError, StringComparison.Ordinal);
        Assert.True(timeout.ExitCode == 2, timeout.ToString());
        Assert.Contains("--heartbeat-timeout needs an integer of at least 1, not '0'.", timeout.StandardError, StringComparison.Ordinal);
    }

    private static WatchedProcess Start(string[] args) =>
        ProcessRunner.Start("dotnet", [Path.Combine(AppFolder, "DistributedInference.dll"), .. args], AppFolder);

    private static ProcessResult Run(string[] args) =>
        ProcessRunner.Run("dotnet", [Path.Combine(AppFolder, "DistributedInference.dll"), .. args], AppFolder, new System.Collections.Generic.Dictionary<string, string?>(), TimeSpan.FromSeconds(30));

    /// <summary>The workers' pids, by rank, from the launcher's "[rank R] started pid P" lines.</summary>
    private static int[] WorkerPids(WatchedProcess launcher, int workers) =>
        Enumerable.Range(0, workers)
            .Select(rank => int.Parse(launcher.WaitForLine(new Regex($@"^\[rank {rank}\] started pid (\d+)$"), RunLimit).Groups[1].Value, CultureInfo.InvariantCulture))
            .ToArray();

    private static void AssertAllGone(int[] pids)
    {
        var running = pids.Where(ProcessRunner.IsRunning).ToArray();
        Assert.True(running.Length == 0, $"worker processes still running: {string.Join(", ", running)}");
    }
}
