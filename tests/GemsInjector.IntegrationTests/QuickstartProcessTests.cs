using System;
using System.Collections.Generic;
using System.Globalization;
using System.IO;
using System.Linq;
using System.Text.RegularExpressions;
using GemsInjector.TestProcesses;
using Xunit;

namespace GemsInjector.IntegrationTests;

/// <summary>
/// Starts samples/Quickstart as separate worker processes, the way a distributed job starts its workers, and checks
/// what each one logs and reports under each value of the guard variable.
/// </summary>
public sealed class QuickstartProcessTests
{
    private const string SuccessLine = "info: GemsInjector: Successfully enabled GemsInjector as default ops implementation.";
    private const string ImportFailureLine = "warn: GemsInjector: Failed to import 'GemsInjector.Kernels', falling back to default implementation.";
    private static readonly string QuickstartFolder = ProcessRunner.Metadata("QuickstartOutput");

    [Fact]
    public void With_the_guard_set_the_worker_enables_and_prints_an_override_line_per_operator()
    {
        var result = RunQuickstart(QuickstartFolder, new() { ["USE_FLAGGEMS"] = "1" });

        Assert.True(result.ExitCode == 0, result.ToString());
        Assert.Contains("GemsInjector state: Enabled", result.StandardOutput, StringComparison.Ordinal);
        Assert.Contains("Device: cpu", result.StandardOutput, StringComparison.Ordinal);
        var errorLines = Lines(result.StandardError);
        var overridden = Regex.Match(result.StandardOutput, "^Overridden operators: (?<names>.+)$", RegexOptions.Multiline).Groups["names"].Value.Split(", ");
        Assert.Contains("rms_norm", overridden);
        Assert.Equal(overridden.Length, errorLines.Count(line => line.StartsWith("info: GemsInjector: Overriding a previously registered kernel for the same operator and the same dispatch key operator: ", StringComparison.Ordinal)));
        Assert.Equal(1, errorLines.Count(line => line == SuccessLine));
        Assert.DoesNotContain(errorLines, line => line.StartsWith("warn:", StringComparison.Ordinal));
        Assert.Matches(new Regex(@"^Kernel add: GemsInjector\.Kernels\.Cpu\.CpuTensorKernels\.Add ", RegexOptions.Multiline), result.StandardOutput);
    }

    [Fact]
    public void With_the_guard_unset_the_worker_stays_on_the_default_kernels_without_a_warning()
    {
        var result = RunQuickstart(QuickstartFolder, new() { ["USE_FLAGGEMS"] = null });

        Assert.True(result.ExitCode == 0, result.ToString());
        Assert.Contains("GemsInjector state: Disabled", result.StandardOutput, StringComparison.Ordinal);
        Assert.Contains("Reason: USE_FLAGGEMS is not set.", result.StandardOutput, StringComparison.Ordinal);
        Assert.Equal("", result.StandardError.Trim());
        Assert.Matches(new Regex(@"^Kernel add: GemsInjector\.Operators\.TorchSharpKernels\.Add ", RegexOptions.Multiline), result.StandardOutput);
    }

    [Fact]
    public void With_a_typo_in_the_guard_the_worker_warns_naming_the_value_and_stays_disabled()
    {
        var result = RunQuickstart(QuickstartFolder, new() { ["USE_FLAGGEMS"] = "ture" });

        Assert.True(result.ExitCode == 0, result.ToString());
        Assert.Contains("GemsInjector state: Disabled", result.StandardOutput, StringComparison.Ordinal);
        var warning = Assert.Single(Lines(result.StandardError));
        Assert.StartsWith("warn: GemsInjector: Ignoring USE_FLAGGEMS='ture'", warning, StringComparison.Ordinal);
    }

    [Fact]
    public void A_mistyped_thread_budget_is_ignored_with_a_warning_naming_it_and_the_worker_enables()
    {
        var result = RunQuickstart(QuickstartFolder, new() { ["USE_FLAGGEMS"] = "1", ["GEMS_CPU_THREADS"] = "two" });

        Assert.True(result.ExitCode == 0, result.ToString());
        Assert.Contains("GemsInjector state: Enabled", result.StandardOutput, StringComparison.Ordinal);
        var warning = Assert.Single(Lines(result.StandardError), line => line.StartsWith("warn:", StringComparison.Ordinal));
        Assert.Equal("warn: GemsInjector: GEMS_CPU_THREADS='two' is not a positive integer; it was ignored.", warning);
    }

    [Fact]
    public void Contradictory_settings_fall_back_with_the_reason_and_the_worker_starts()
    {
        var result = RunQuickstart(QuickstartFolder, new() { ["USE_FLAGGEMS"] = "yes", ["GEMS_INCLUDE"] = "add", ["GEMS_EXCLUDE"] = "mul" });

        Assert.True(result.ExitCode == 0, result.ToString());
        Assert.Contains("GemsInjector state: Fallback", result.StandardOutput, StringComparison.Ordinal);
        var warning = Assert.Single(Lines(result.StandardError));
        Assert.Matches("^warn: GemsInjector: Failed to enable GemsInjector: Both GEMS_INCLUDE and GEMS_EXCLUDE are set.*, falling back to default implementation\\.$", warning);
    }

    [Fact]
    public void Without_the_kernel_assembly_the_worker_logs_the_import_warning_and_runs_on_the_default_kernels()
    {
        var folder = Directory.CreateTempSubdirectory("gems-quickstart-no-kernels-");
        try
        {
            // The host finds assemblies beside the real path of the app, so managed files are copied; native
            // libraries (libtorch is hundreds of MB) are linked. Only the kernel assembly is left out.
            foreach (var file in Directory.EnumerateFiles(QuickstartFolder, "*", SearchOption.AllDirectories))
            {
                var relative = Path.GetRelativePath(QuickstartFolder, file);
                if (relative == "GemsInjector.Kernels.dll")
                {
                    continue;
                }

                var target = Path.Combine(folder.FullName, relative);
                Directory.CreateDirectory(Path.GetDirectoryName(target)!);
                if (file.Contains(".so", StringComparison.Ordinal))
                {
                    File.CreateSymbolicLink(target, file);
                }
                else
                {
                    File.Copy(file, target);
                }
            }

            var withoutKernels = RunQuickstart(folder.FullName, new() { ["USE_FLAGGEMS"] = "1" });
            var reference = RunQuickstart(QuickstartFolder, new() { ["USE_FLAGGEMS"] = "0" });

            Assert.True(withoutKernels.ExitCode == 0, withoutKernels.ToString());
            Assert.Equal([ImportFailureLine], Lines(withoutKernels.StandardError));
            Assert.Contains("GemsInjector state: Fallback", withoutKernels.StandardOutput, StringComparison.Ordinal);
            Assert.Equal(Checksum(reference), Checksum(withoutKernels));
        }
        finally
        {
            folder.Delete(recursive: true);
        }
    }

    [Fact]
    public void Gems_and_default_kernels_agree_on_the_sample_computation()
    {
        var enabled = RunQuickstart(QuickstartFolder, new() { ["USE_FLAGGEMS"] = "1" });
        var disabled = RunQuickstart(QuickstartFolder, new() { ["USE_FLAGGEMS"] = null });

        var gems = Checksum(enabled);
        var torch = Checksum(disabled);
        Assert.True(Math.Abs(gems - torch) <= 1e-3 * Math.Max(1, Math.Abs(torch)), $"GemsInjector {gems} vs TorchSharp {torch}");
    }

    private static ProcessResult RunQuickstart(string folder, Dictionary<string, string?> environment) =>
        ProcessRunner.Run("dotnet", [Path.Combine(folder, "Quickstart.dll")], folder, environment, TimeSpan.FromMinutes(2));

    private static string[] Lines(string text) =>
        text.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);

    private static double Checksum(ProcessResult result)
    {
        var match = Regex.Match(result.StandardOutput, @"^Feed-forward checksum: (?<value>\S+)$", RegexOptions.Multiline);
        Assert.True(match.Success, result.ToString());
        return double.Parse(match.Groups["value"].Value, CultureInfo.InvariantCulture);
    }
}
