using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Net;
using System.Net.Sockets;
using System.Text.Json;
using GemsInjector.TestProcesses;
using Xunit;

namespace GemsInjector.Samples.Tests;

/// <summary>samples/OrleansCluster with three out-of-process silos on loopback.</summary>
public sealed class OrleansClusterTests
{
    private static readonly string AppFolder = ProcessRunner.Metadata("OrleansClusterOutput");

    [Fact]
    public void Three_silo_processes_report_their_own_status_and_a_silo_without_the_guard_is_disabled()
    {
        var report = Path.Combine(Path.GetTempPath(), $"gems-orleans-{Guid.NewGuid():N}.json");
        try
        {
            var result = Run(["--silos", "3", "--silo-env", "2:USE_FLAGGEMS=", "--prompts", "3", "--max-new-tokens", "6", "--report", report]);

            Assert.True(result.ExitCode == 0, result.ToString());
            using var document = JsonDocument.Parse(File.ReadAllText(report));
            var root = document.RootElement;
            Assert.Equal(3, root.GetProperty("membership").GetInt32());
            var silos = root.GetProperty("silos").EnumerateArray().ToArray();
            Assert.Equal(["Enabled", "Enabled", "Disabled"], silos.Select(s => s.GetProperty("status").GetProperty("State").GetString()!).ToArray());
            Assert.Equal("USE_FLAGGEMS is not set.", silos[2].GetProperty("status").GetProperty("Reason").GetString());
            // Both the grain and the engine's runner are [GemsWorker]: whichever start-up block ran last names itself.
            Assert.Contains(silos[0].GetProperty("status").GetProperty("Worker").GetString(), new[] { "OrleansCluster.LlamaWorkerGrain", "GemsLlm.LlamaModelRunner" });
            var pids = silos.Select(s => s.GetProperty("status").GetProperty("ProcessId").GetInt32()).ToArray();
            Assert.Equal(3, pids.Distinct().Count());
            Assert.DoesNotContain(Environment.ProcessId, pids);
            Assert.All(silos, s => Assert.Equal(6, s.GetProperty("Tokens")[0].GetArrayLength()));
            Assert.Contains("2 of 3 workers run GemsInjector's kernels.", result.StandardOutput, StringComparison.Ordinal);
            Assert.Contains("[silo0] info: GemsInjector: Patched RMSNorm.forward with GEMS rms_norm", result.StandardError, StringComparison.Ordinal);
        }
        finally
        {
            File.Delete(report);
        }
    }

    [Fact]
    public void Require_gems_fails_when_only_the_launcher_has_the_guard()
    {
        var result = Run(["--silos", "2", "--env-scope", "launcher", "--require-gems", "--prompts", "2", "--max-new-tokens", "4"]);

        Assert.True(result.ExitCode == 3, result.ToString());
        Assert.Contains("--require-gems: 2 of 2 silos are not running GemsInjector's kernels.", result.StandardOutput, StringComparison.Ordinal);
    }

    private static ProcessResult Run(string[] args)
    {
        // Free ports for this run: silo ports and gateway ports from two separate ranges.
        var basePort = FreePortBlock(3);
        var gatewayPort = FreePortBlock(3);
        return ProcessRunner.Run(
            "dotnet",
            [Path.Combine(AppFolder, "OrleansCluster.dll"), .. args, "--base-port", basePort.ToString(System.Globalization.CultureInfo.InvariantCulture), "--gateway-base-port", gatewayPort.ToString(System.Globalization.CultureInfo.InvariantCulture)],
            AppFolder,
            new Dictionary<string, string?>(),
            TimeSpan.FromMinutes(3));
    }

    internal static int FreePortBlock(int count)
    {
        for (var attempt = 0; attempt < 50; attempt++)
        {
            var start = Random.Shared.Next(20000, 60000);
            var listeners = new List<TcpListener>();
            try
            {
                for (var i = 0; i < count; i++)
                {
                    var listener = new TcpListener(IPAddress.Loopback, start + i);
                    listener.Start();
                    listeners.Add(listener);
                }

                return start;
            }
            catch (SocketException)
            {
                // Taken; try another block.
            }
            finally
            {
                listeners.ForEach(listener => listener.Stop());
            }
        }

        throw new InvalidOperationException("No free block of loopback ports.");
    }
}
