using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Globalization;
using System.IO;
using System.Linq;
using System.Text.Json;
using System.Text.RegularExpressions;
using GemsInjector.TestProcesses;
using Xunit;
using Xunit.Abstractions;

namespace GemsInjector.Samples.Tests;

/// <summary>
/// samples/OrleansCluster --kill-silo: one of three silo processes is killed with SIGKILL, and its worker grain must
/// come back on a surviving silo that reports GemsInjector enabled.
/// </summary>
public sealed class OrleansFailoverTests(ITestOutputHelper output)
{
    private static readonly string AppFolder = ProcessRunner.Metadata("OrleansClusterOutput");

    /// <summary>With --fast-membership the grain comes back in about a second or two; this leaves room for a busy CI machine.</summary>
    private static readonly TimeSpan ReactivationBound = TimeSpan.FromSeconds(20);

    [Fact]
    public void A_silo_killed_with_SIGKILL_has_its_worker_grain_reactivated_on_a_surviving_silo_that_reports_GemsInjector_enabled()
    {
        var report = Path.Combine(Path.GetTempPath(), $"gems-orleans-failover-{Guid.NewGuid():N}.json");
        try
        {
            var clock = Stopwatch.StartNew();
            var result = Run(["--silos", "3", "--kill-silo", "2", "--failover-timeout", "30", "--prompts", "3", "--max-new-tokens", "6", "--report", report]);
            output.WriteLine($"whole run: {clock.Elapsed.TotalSeconds:F1} s");
            output.WriteLine(string.Join('\n', result.StandardOutput.Split('\n').Where(line => line.StartsWith("Killed", StringComparison.Ordinal) || line.StartsWith("Worker grain", StringComparison.Ordinal) || line.Contains("reports GemsInjector", StringComparison.Ordinal) || line.StartsWith("Cluster membership", StringComparison.Ordinal))));

            Assert.True(result.ExitCode == 0, result.ToString());
            using var document = JsonDocument.Parse(File.ReadAllText(report));
            var root = document.RootElement;
            var silos = root.GetProperty("silos").EnumerateArray().ToArray();
            var pids = silos.Select(s => s.GetProperty("status").GetProperty("ProcessId").GetInt32()).ToArray();
            Assert.All(silos, s => Assert.Equal("Enabled", s.GetProperty("status").GetProperty("State").GetString()));

            var failover = root.GetProperty("failover");
            Assert.Equal(2, failover.GetProperty("KilledSilo").GetInt32());
            Assert.Equal(pids[2], failover.GetProperty("KilledPid").GetInt32());
            Assert.Equal(137, failover.GetProperty("KilledExitCode").GetInt32());
            Assert.Equal(silos[2].GetProperty("SiloAddress").GetString(), failover.GetProperty("before").GetString());

            // Back on a survivor: another silo index, address and process, and that process runs GemsInjector's kernels.
            var host = failover.GetProperty("afterSilo").GetInt32();
            Assert.Contains(host, new[] { 0, 1 });
            Assert.Equal(silos[host].GetProperty("SiloAddress").GetString(), failover.GetProperty("after").GetString());
            var status = failover.GetProperty("status");
            Assert.Equal("Enabled", status.GetProperty("State").GetString());
            Assert.Equal(pids[host], status.GetProperty("ProcessId").GetInt32());
            Assert.Equal("gems", failover.GetProperty("Kernels").GetString());
            Assert.Equal(6, failover.GetProperty("Tokens").GetInt32());
            Assert.Equal(2, failover.GetProperty("MembershipAfter").GetInt32());
            var seconds = failover.GetProperty("SecondsToReactivation").GetDouble();
            Assert.InRange(seconds, 0, ReactivationBound.TotalSeconds);

            Assert.Matches(new Regex($@"^Killed silo2 \(pid {pids[2]}\) with SIGKILL \(its exit code: 137\)", RegexOptions.Multiline), result.StandardOutput);
            Assert.Matches(new Regex($@"^Worker grain 2 re-activated on silo{host} \(S127\.0\.0\.1:\d+:\d+\) \d+\.\d s after the kill", RegexOptions.Multiline), result.StandardOutput);
            Assert.Contains($"silo{host} reports GemsInjector enabled: Enabled: 30 operators on cpu.", result.StandardOutput, StringComparison.Ordinal);
            Assert.Matches(new Regex(@"^Cluster membership \d+\.\d s after the kill: 2 active silos; silo2 declared dead\.", RegexOptions.Multiline), result.StandardOutput);
            Assert.False(ProcessRunner.IsRunning(pids[2]), "the killed silo is gone");
            Assert.DoesNotContain(pids, ProcessRunner.IsRunning);
        }
        finally
        {
            File.Delete(report);
        }
    }

    [Fact]
    public void Killing_the_primary_silo_or_one_that_does_not_exist_is_a_usage_error()
    {
        var primary = Run(["--silos", "3", "--kill-silo", "0"]);
        var missing = Run(["--silos", "2", "--kill-silo", "2"]);

        Assert.True(primary.ExitCode == 2, primary.ToString());
        Assert.Contains("--kill-silo 0: silo 0 holds the membership table in localhost clustering", primary.StandardError, StringComparison.Ordinal);
        Assert.True(missing.ExitCode == 2, missing.ToString());
        Assert.Contains("--kill-silo 2: there are only 2 silos (0..1).", missing.StandardError, StringComparison.Ordinal);
    }

    private static ProcessResult Run(string[] args)
    {
        var basePort = OrleansClusterTests.FreePortBlock(3);
        var gatewayPort = OrleansClusterTests.FreePortBlock(3);
        return ProcessRunner.Run(
            "dotnet",
            [Path.Combine(AppFolder, "OrleansCluster.dll"), .. args, "--base-port", basePort.ToString(CultureInfo.InvariantCulture), "--gateway-base-port", gatewayPort.ToString(CultureInfo.InvariantCulture)],
            AppFolder,
            new Dictionary<string, string?>(),
            TimeSpan.FromMinutes(2));
    }
}
