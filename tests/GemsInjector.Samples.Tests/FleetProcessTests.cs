using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Text.Json;
using System.Text.RegularExpressions;
using GemsInjector.TestProcesses;
using Xunit;

namespace GemsInjector.Samples.Tests;

/// <summary>
/// Starts samples/DistributedInference as a launcher that starts its workers as separate processes, and checks the
/// fleet each time: who enabled GemsInjector, who did not and why, and that the tokens do not depend on the kernels.
/// </summary>
public sealed class FleetProcessTests : IDisposable
{
    private static readonly string AppFolder = ProcessRunner.Metadata("DistributedInferenceOutput");
    private static readonly string[] PatchLines =
    [
        "info: GemsInjector: Patched RMSNorm.forward with GEMS rms_norm",
        "info: GemsInjector: Patched RotaryEmbedding.forward with GEMS rotary_embedding",
        "info: GemsInjector: Patched SiluAndMul.forward with GEMS silu_and_mul",
    ];

    private readonly DirectoryInfo _work = Directory.CreateTempSubdirectory("gems-fleet-test-");

    public void Dispose() => _work.Delete(recursive: true);

    [Fact]
    public void Three_workers_with_the_guard_for_all_enable_apply_the_patches_and_generate_the_same_tokens_as_the_default_kernels()
    {
        var (result, report) = Launch(["--workers", "3", "--require-gems", "--prompts", "3", "--max-new-tokens", "8"]);

        Assert.True(result.ExitCode == 0, result.ToString());
        var workers = report.GetProperty("workers").EnumerateArray().ToArray();
        Assert.Equal(3, workers.Length);
        var pids = new HashSet<int>();
        foreach (var worker in workers)
        {
            var rank = worker.GetProperty("rank").GetInt32();
            var status = worker.GetProperty("status");
            Assert.Equal("Enabled", status.GetProperty("State").GetString());
            Assert.Equal("cpu", status.GetProperty("Device").GetString());
            Assert.Equal(rank, status.GetProperty("Rank").GetInt32());
            Assert.Equal("GemsLlm.LlamaModelRunner", status.GetProperty("Worker").GetString());
            Assert.Contains("rms_norm", status.GetProperty("OverriddenOperators").EnumerateArray().Select(e => e.GetString()));
            Assert.True(pids.Add(status.GetProperty("ProcessId").GetInt32()), "each worker is its own process");

            var logs = worker.GetProperty("logLines").EnumerateArray().Select(e => e.GetString()).ToArray();
            foreach (var line in PatchLines)
            {
                Assert.Contains(line, logs);
            }

            Assert.Contains("info: GemsInjector: Successfully enabled GemsInjector as default ops implementation.", logs);
            var comparison = worker.GetProperty("result").GetProperty("comparison");
            Assert.True(comparison.GetProperty("tokensIdentical").GetBoolean(), worker.ToString());
            Assert.True(comparison.GetProperty("logitsWithinTolerance").GetBoolean(), worker.ToString());
            Assert.True(comparison.GetProperty("gemsTokensPerSecond").GetDouble() > 0);
            Assert.True(comparison.GetProperty("defaultTokensPerSecond").GetDouble() > 0);
            Assert.Equal(3, comparison.GetProperty("passes").GetInt32());
        }

        Assert.DoesNotContain(Environment.ProcessId, pids);
        Assert.Matches(new Regex(@"^2\s+\d+\s+\S+\s+cpu\s+enabled\s+Enabled: \d+ operators", RegexOptions.Multiline), result.StandardOutput);
        Assert.Contains("3 of 3 workers run GemsInjector's kernels.", result.StandardOutput, StringComparison.Ordinal);
        Assert.Contains("tokens identical", result.StandardOutput, StringComparison.Ordinal);
        Assert.Contains("tokens/s (fastest of 3 alternating passes); tokens identical", result.StandardOutput, StringComparison.Ordinal);
    }

    [Fact]
    public void A_fleet_with_the_guard_unset_on_one_worker_and_the_kernel_assembly_missing_on_another_says_so_per_worker()
    {
        var broken = ProcessRunner.CopyAppWithout(AppFolder, "GemsInjector.Kernels.dll", "checkpoints");
        try
        {
            // Every worker gets the same prompt, so enabled, disabled and fallen-back workers must agree on the tokens.
            const string Prompt = "the workers of the cluster start the job";
            string[] args =
            [
                "--workers", "3", "--prompt", Prompt, "--prompt", Prompt, "--prompt", Prompt, "--max-new-tokens", "8",
                "--worker-env", "1:USE_FLAGGEMS=", "--worker-app", $"2={Path.Combine(broken.FullName, "DistributedInference.dll")}",
            ];
            var (plain, report) = Launch(args);
            var (strict, _) = Launch([.. args, "--require-gems", "--no-compare"]);

            Assert.True(plain.ExitCode == 0, plain.ToString());
            var workers = report.GetProperty("workers").EnumerateArray().ToArray();
            var states = workers.Select(w => w.GetProperty("status").GetProperty("State").GetString()!).ToArray();
            Assert.Equal(["Enabled", "Disabled", "Fallback"], states);
            Assert.Equal("USE_FLAGGEMS is not set.", workers[1].GetProperty("status").GetProperty("Reason").GetString());
            Assert.Equal("Failed to import 'GemsInjector.Kernels', falling back to default implementation.", workers[2].GetProperty("status").GetProperty("Reason").GetString());
            Assert.Contains("warn: GemsInjector: Failed to import 'GemsInjector.Kernels', falling back to default implementation.", workers[2].GetProperty("logLines").EnumerateArray().Select(e => e.GetString()));
            Assert.DoesNotContain(workers[1].GetProperty("logLines").EnumerateArray(), line => line.GetString()!.StartsWith("warn:", StringComparison.Ordinal));

            var tokens = workers.Select(w => string.Join(",", w.GetProperty("result").GetProperty("outputs")[0].GetProperty("tokens").EnumerateArray().Select(t => t.GetInt32()))).ToArray();
            Assert.Equal(tokens[0], tokens[1]);
            Assert.Equal(tokens[0], tokens[2]);

            // The disabled worker can still compare by enabling in-process; the broken one cannot and says why.
            Assert.True(workers[1].GetProperty("result").GetProperty("comparison").GetProperty("tokensIdentical").GetBoolean());
            Assert.Contains("GemsInjector.Kernels", workers[2].GetProperty("result").GetProperty("comparison").GetProperty("unavailable").GetString(), StringComparison.Ordinal);

            Assert.Matches(new Regex(@"^1\s+\d+\s+\S+\s+-\s+disabled\s+USE_FLAGGEMS is not set\.\s+0\s", RegexOptions.Multiline), plain.StandardOutput);
            Assert.Matches(new Regex(@"^2\s+\d+\s+\S+\s+-\s+fallback\s+Failed to import 'GemsInjector\.Kernels', falling back to \.\.\.\s+0\s", RegexOptions.Multiline), plain.StandardOutput);
            Assert.Contains("1 of 3 workers run GemsInjector's kernels.", plain.StandardOutput, StringComparison.Ordinal);

            Assert.True(strict.ExitCode == 3, strict.ToString());
            Assert.Contains("--require-gems: 2 of 3 workers are not running GemsInjector's kernels (ranks 1, 2).", strict.StandardOutput, StringComparison.Ordinal);
        }
        finally
        {
            broken.Delete(recursive: true);
        }
    }

    [Fact]
    public void With_the_guard_in_the_launcher_only_the_workers_run_the_default_kernels_and_require_gems_fails()
    {
        var (result, report) = Launch(["--env-scope", "launcher", "--require-gems", "--no-compare", "--prompts", "2", "--max-new-tokens", "4"]);

        Assert.True(result.ExitCode == 3, result.ToString());
        Assert.Equal("Enabled", report.GetProperty("launcher").GetProperty("State").GetString());
        Assert.All(report.GetProperty("workers").EnumerateArray(), worker =>
        {
            Assert.Equal("Disabled", worker.GetProperty("status").GetProperty("State").GetString());
            Assert.Equal("default", worker.GetProperty("result").GetProperty("kernels").GetString());
        });
        Assert.Contains("GemsInjector enabled; env scope 'launcher'", result.StandardOutput, StringComparison.Ordinal);
        Assert.Contains("0 of 2 workers run GemsInjector's kernels.", result.StandardOutput, StringComparison.Ordinal);
    }

    [Fact]
    public void Require_gems_passes_when_every_worker_is_enabled_and_bad_arguments_are_a_usage_error()
    {
        var (ok, _) = Launch(["--require-gems", "--no-compare", "--prompts", "2", "--max-new-tokens", "4"]);
        var usage = Run(["--workers", "2", "--worker-env", "5:USE_FLAGGEMS=1"]);

        Assert.True(ok.ExitCode == 0, ok.ToString());
        Assert.Contains("2 of 2 workers run GemsInjector's kernels.", ok.StandardOutput, StringComparison.Ordinal);
        Assert.True(usage.ExitCode == 2, usage.ToString());
        Assert.Contains("Rank 5 is not one of the 2 workers", usage.StandardError, StringComparison.Ordinal);
    }

    private (ProcessResult Result, JsonElement Report) Launch(string[] args)
    {
        var reportPath = Path.Combine(_work.FullName, $"report-{Guid.NewGuid():N}.json");
        var result = Run([.. args, "--report", reportPath]);
        Assert.True(File.Exists(reportPath), result.ToString());
        using var document = JsonDocument.Parse(File.ReadAllText(reportPath));
        return (result, document.RootElement.Clone());
    }

    private static ProcessResult Run(string[] args) =>
        ProcessRunner.Run("dotnet", [Path.Combine(AppFolder, "DistributedInference.dll"), .. args], AppFolder, new Dictionary<string, string?>(), TimeSpan.FromMinutes(3));
}
