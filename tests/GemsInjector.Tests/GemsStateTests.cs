using System;
using System.IO;
using System.Linq;
using System.Text.RegularExpressions;
using System.Threading;
using System.Threading.Tasks;
using GemsInjector.Operators;
using Microsoft.Extensions.Logging;
using GemsInjector.TestSupport;
using TorchSharp;
using Xunit;

namespace GemsInjector.Tests;

[Collection(GemsStateCollection.Name)]
public sealed class GemsStateTests : IDisposable
{
    private readonly EnvironmentScope _environment = new EnvironmentScope()
        .Set("GEMS_INCLUDE", null).Set("GEMS_EXCLUDE", null).Set("GEMS_RECORD", null).Set("GEMS_RECORD_ONCE", null).Set("GEMS_DEVICE", null);

    public GemsStateTests()
    {
        Gems.Disable();
    }

    public void Dispose()
    {
        Gems.Disable();
        _environment.Dispose();
    }

    [Fact]
    public void Enable_overrides_every_operator_and_logs_the_seed_line_for_each()
    {
        var log = new ListLogger();
        var defaults = OperatorTable.All.ToDictionary(op => op.Name, op => op.Current);

        var status = Gems.Enable(new GemsOptions { Logger = log });

        Assert.Equal(GemsState.Enabled, status.State);
        Assert.Equal("cpu", status.Device);
        var withKernels = GemsKernelCatalog.ForCpu().Select(pair => pair.Operator.Name).ToArray();
        Assert.Equal(withKernels, status.OverriddenOperators);
        Assert.Equal(Environment.ProcessId, status.ProcessId);
        var pattern = new Regex(
            "^Overriding a previously registered kernel for the same operator and the same dispatch key "
            + @"operator: (?<schema>.+) registered at GemsInjector\.Operators\.OperatorTable \(GemsInjector\) "
            + "dispatch key: CPU "
            + @"previous kernel: registered at (?<previous>GemsInjector\.Operators\.TorchSharpKernels\.\w+ \(GemsInjector [0-9.]+\)) "
            + @"new kernel: registered at (?<new>GemsInjector\.Kernels\.Cpu\.CpuTensorKernels\.\w+ \(GemsInjector\.Kernels [0-9.]+\))$");
        var lines = log.Entries.Where(entry => entry.Message.StartsWith("Overriding", StringComparison.Ordinal)).ToArray();
        Assert.Equal(withKernels.Length, lines.Length);
        foreach (var op in OperatorTable.All.Where(op => withKernels.Contains(op.Name)))
        {
            Assert.True(op.IsOverridden, op.Name);
            var line = Assert.Single(lines, entry => entry.Message.Contains(op.Schema, StringComparison.Ordinal));
            Assert.Equal(LogLevel.Information, line.Level);
            var match = pattern.Match(line.Message);
            Assert.True(match.Success, line.Message);
            Assert.Equal(defaults[op.Name].RegisteredAt, match.Groups["previous"].Value);
            Assert.Equal(op.Current.RegisteredAt, match.Groups["new"].Value);
        }
    }

    [Fact]
    public void Disable_puts_back_exactly_the_kernels_that_were_there()
    {
        var before = OperatorTable.All.Select(op => op.Current).ToArray();
        var addKernel = OperatorTable.Add.Kernel;

        Gems.Enable(new GemsOptions { Logger = new ListLogger() });
        Assert.NotSame(addKernel, OperatorTable.Add.Kernel);
        Gems.Disable();

        Assert.Equal(before, OperatorTable.All.Select(op => op.Current).ToArray());
        Assert.Same(addKernel, OperatorTable.Add.Kernel);
        Assert.All(OperatorTable.All, op => Assert.False(op.IsOverridden, op.Name));
        Assert.Equal(GemsState.Disabled, Gems.Status.State);
        Assert.Empty(Gems.Status.OverriddenOperators);
    }

    [Fact]
    public void Enable_with_the_same_settings_twice_changes_and_logs_nothing_the_second_time()
    {
        var log = new ListLogger();
        var first = Gems.Enable(new GemsOptions { Logger = log });
        var kernels = OperatorTable.All.Select(op => op.Current).ToArray();
        var logged = log.Entries.Count;

        var second = Gems.Enable(new GemsOptions { Logger = log });

        Assert.Same(first, second);
        Assert.Equal(kernels, OperatorTable.All.Select(op => op.Current).ToArray());
        Assert.Equal(logged, log.Entries.Count);
    }

    [Fact]
    public void Include_and_exclude_choose_the_overridden_operators()
    {
        Gems.Enable(new GemsOptions { Include = ["silu", "add"], Logger = new ListLogger() });
        Assert.Equal(["add", "silu"], OverriddenNames());
        Assert.Equal(["add", "silu"], Gems.Status.OverriddenOperators);

        Gems.Enable(new GemsOptions { Exclude = ["add"], Logger = new ListLogger() });
        Assert.Equal(WithCpuKernels().Except(["add"]), OverriddenNames());
    }

    [Fact]
    public void Include_and_exclude_are_read_from_the_environment()
    {
        _environment.Set("GEMS_EXCLUDE", " rms_norm , mul ");
        Gems.Enable(new GemsOptions { Logger = new ListLogger() });
        Assert.Equal(WithCpuKernels().Except(["rms_norm", "mul"]), OverriddenNames());
    }

    [Fact]
    public void An_unknown_operator_is_an_error_that_lists_the_nearest_names_and_changes_nothing()
    {
        var before = OperatorTable.All.Select(op => op.Current).ToArray();

        var error = Assert.Throws<GemsConfigurationException>(() => Gems.Enable(new GemsOptions { Exclude = ["slu"] }));

        Assert.Contains("'slu'", error.Message, StringComparison.Ordinal);
        Assert.Contains("GemsOptions.Exclude", error.Message, StringComparison.Ordinal);
        Assert.Contains("Did you mean silu", error.Message, StringComparison.Ordinal);
        Assert.Equal(before, OperatorTable.All.Select(op => op.Current).ToArray());
        Assert.Equal(GemsState.Disabled, Gems.Status.State);
    }

    [Fact]
    public void Include_and_exclude_both_set_in_the_environment_is_a_configuration_error()
    {
        _environment.Set("GEMS_INCLUDE", "add").Set("GEMS_EXCLUDE", "mul");

        var error = Assert.Throws<GemsConfigurationException>(() => Gems.Enable());

        Assert.Contains("GEMS_INCLUDE", error.Message, StringComparison.Ordinal);
        Assert.Contains("GEMS_EXCLUDE", error.Message, StringComparison.Ordinal);
        Assert.All(OperatorTable.All, op => Assert.False(op.IsOverridden, op.Name));
    }

    [Fact]
    public void An_unknown_device_is_a_configuration_error_that_lists_the_devices()
    {
        _environment.Set("GEMS_DEVICE", "gpu");
        var error = Assert.Throws<GemsConfigurationException>(() => Gems.Enable());
        Assert.Contains("Unknown device 'gpu' in GEMS_DEVICE", error.Message, StringComparison.Ordinal);
        Assert.Contains("auto, cuda, opencl, cpu, ilgpu-cpu", error.Message, StringComparison.Ordinal);
        Assert.All(OperatorTable.All, op => Assert.False(op.IsOverridden, op.Name));
    }

    [SkippableFact]
    public void A_gpu_that_is_not_there_falls_back_to_the_cpu_path_with_the_reason_logged_and_recorded()
    {
        Skip.If(File.Exists("/dev/nvidiactl"), "This machine has an NVIDIA GPU; the fallback needs a machine without one.");
        _environment.Set("GEMS_DEVICE", "cuda");
        var log = new ListLogger();

        var status = Gems.Enable(new GemsOptions { Logger = log });

        Assert.Equal(GemsState.Enabled, status.State);
        Assert.Equal("cpu", status.Device);
        Assert.Contains("Device 'cuda' is not available", status.Reason, StringComparison.Ordinal);
        var warning = Assert.Single(log.Entries, entry => entry.Level == LogLevel.Warning);
        Assert.Contains("using the CPU kernels instead", warning.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void The_gpu_simulator_device_runs_every_operator_through_the_ilgpu_kernels()
    {
        _environment.Set("GEMS_DEVICE", "ilgpu-cpu");
        using var scope = torch.NewDisposeScope();
        var x = torch.tensor(new[] { 1f, -2f, 3f, 0.5f }).reshape(2, 2);

        var status = Gems.Enable(new GemsOptions { Logger = new ListLogger() });
        var product = Ops.Mm(x, x);
        var silu = Ops.Silu(x);

        Assert.StartsWith("ilgpu-cpu (", status.Device, StringComparison.Ordinal);
        Assert.All(OperatorTable.All, op => Assert.StartsWith("GemsInjector.Kernels.Staging.IlgpuTensorKernels.", op.Current.RegisteredAt, StringComparison.Ordinal));
        Assert.Equal(new[] { 1f * 1 + -2f * 3, 1f * -2 + -2f * 0.5f, 3f * 1 + 0.5f * 3, 3f * -2 + 0.5f * 0.5f }, product.data<float>().ToArray());
        var expected = x.data<float>().ToArray().Select(v => (float)(v / (1 + Math.Exp(-v)))).ToArray();
        var actual = silu.data<float>().ToArray();
        for (var i = 0; i < expected.Length; i++)
        {
            Assert.True(Math.Abs(expected[i] - actual[i]) <= 1e-6f * (1 + Math.Abs(expected[i])), $"silu[{i}]: {actual[i]} vs {expected[i]}");
        }
    }

    [Fact]
    public void Use_scopes_nest_and_each_end_restores_what_was_there()
    {
        Gems.Enable(new GemsOptions { Exclude = ["rms_norm"], Logger = new ListLogger() });
        var outer = OperatorTable.All.Select(op => op.Current).ToArray();
        var outerStatus = Gems.Status;

        using (Gems.Use(new GemsOptions { Include = ["add"], Logger = new ListLogger() }))
        {
            Assert.Equal(["add"], OverriddenNames());
            using (Gems.Use(new GemsOptions { Logger = new ListLogger() }))
            {
                Assert.Equal(WithCpuKernels(), OverriddenNames());
            }

            Assert.Equal(["add"], OverriddenNames());
        }

        Assert.Equal(outer, OperatorTable.All.Select(op => op.Current).ToArray());
        Assert.Same(outerStatus, Gems.Status);
        Gems.Disable();
        Assert.Empty(OverriddenNames());
    }

    [Fact]
    public void Use_from_disabled_returns_to_disabled_and_disposing_twice_is_harmless()
    {
        var scope = Gems.Use(new GemsOptions { Logger = new ListLogger() });
        Assert.True(Gems.IsEnabled);
        scope.Dispose();
        Assert.False(Gems.IsEnabled);
        Assert.Empty(OverriddenNames());
        Gems.Enable(new GemsOptions { Include = ["mul"], Logger = new ListLogger() });
        scope.Dispose();
        Assert.Equal(["mul"], OverriddenNames());
    }

    [Fact]
    public void Calls_through_Ops_reach_the_kernel_the_table_holds()
    {
        using var scope = torch.NewDisposeScope();
        var self = torch.tensor(new[] { 1f, -2f, 3.5f });
        var other = torch.tensor(new[] { 0.5f, 4f, -1f });
        float[] expected = [1f + 2 * 0.5f, -2f + 2 * 4f, 3.5f + 2 * -1f];

        Assert.Equal(expected, Ops.Add(self, other, alpha: 2).data<float>().ToArray());
        using (Gems.Use(new GemsOptions { Logger = new ListLogger() }))
        {
            Assert.Equal(expected, Ops.Add(self, other, alpha: 2).data<float>().ToArray());
        }
    }

    [Fact]
    public void Record_writes_one_line_per_call_to_a_file_named_by_pid()
    {
        var folder = Directory.CreateTempSubdirectory("gems-record-");
        try
        {
            var template = Path.Combine(folder.FullName, "calls-{pid}.log");
            using var scope = torch.NewDisposeScope();
            var x = torch.ones(4);
            using (Gems.Use(new GemsOptions { RecordPath = template, Logger = new ListLogger() }))
            {
                Ops.Add(x, x);
                Ops.Add(x, x);
                Ops.Silu(x);
            }

            Ops.Add(x, x);
            var lines = File.ReadAllLines(Path.Combine(folder.FullName, $"calls-{Environment.ProcessId}.log"));
            Assert.Equal(["GEMS add", "GEMS add", "GEMS silu"], lines.Select(line => line[(line.IndexOf(' ', StringComparison.Ordinal) + 1)..]).ToArray());
        }
        finally
        {
            folder.Delete(recursive: true);
        }
    }

    [Fact]
    public void Record_once_writes_each_operator_once()
    {
        var folder = Directory.CreateTempSubdirectory("gems-record-");
        try
        {
            var path = Path.Combine(folder.FullName, "once.log");
            using var scope = torch.NewDisposeScope();
            var x = torch.ones(4);
            using (Gems.Use(new GemsOptions { RecordPath = path, RecordOnce = true, Logger = new ListLogger() }))
            {
                for (var i = 0; i < 5; i++)
                {
                    Ops.Mul(x, x);
                }

                Ops.Silu(x);
            }

            Assert.Equal(2, File.ReadAllLines(path).Length);
        }
        finally
        {
            folder.Delete(recursive: true);
        }
    }

    [Fact]
    public void A_record_file_that_cannot_be_opened_is_a_configuration_error_naming_the_path()
    {
        var blocker = Path.GetTempFileName();
        try
        {
            var path = Path.Combine(blocker, "calls.log");
            var error = Assert.Throws<GemsConfigurationException>(() => Gems.Enable(new GemsOptions { RecordPath = path }));
            Assert.Contains(path, error.Message, StringComparison.Ordinal);
            Assert.False(Gems.IsEnabled);
        }
        finally
        {
            File.Delete(blocker);
        }
    }

    [Theory]
    [InlineData("log-{pid}-{rank}.txt", 42, 3, "log-42-3.txt")]
    [InlineData("log-{rank}.txt", 42, null, "log-norank.txt")]
    [InlineData("plain.txt", 42, 1, "plain.txt")]
    public void Record_paths_expand_pid_and_rank(string template, int pid, int? rank, string expected)
    {
        Assert.Equal(expected, CallRecorder.ExpandPath(template, pid, rank));
    }

    [Fact]
    public void Patches_apply_once_log_their_line_and_revert_on_disable()
    {
        var log = new ListLogger();
        var applied = 0;
        var layer = $"RMSNorm{Guid.NewGuid():N}";
        using var registration = Gems.RegisterPatch(new GemsPatch(layer, "forward", "rms_norm", () => applied++, () => applied--));
        Gems.Enable(new GemsOptions { Logger = log });

        var lines = Gems.ApplyPatches(verbose: true);

        Assert.Contains($"Patched {layer}.forward with GEMS rms_norm", lines);
        Assert.Contains(log.Entries, entry => entry.Level == LogLevel.Information && entry.Message == $"Patched {layer}.forward with GEMS rms_norm");
        Assert.Equal(1, applied);
        Assert.Empty(Gems.ApplyPatches(verbose: true));
        Assert.Equal(1, applied);
        Gems.Disable();
        Assert.Equal(0, applied);
        Gems.ApplyPatches();
        Assert.Equal(1, applied);
        registration.Dispose();
        Assert.Equal(0, applied);
        Assert.Empty(Gems.ApplyPatches());
    }

    [Fact]
    public void A_failing_patch_reverts_the_patches_applied_with_it_and_names_itself()
    {
        var good = 0;
        var name = Guid.NewGuid().ToString("N");
        using var goodPatch = Gems.RegisterPatch(new GemsPatch($"Good{name}", "forward", "silu", () => good++, () => good--));
        using var badPatch = Gems.RegisterPatch(new GemsPatch($"Bad{name}", "forward", "mul", () => throw new InvalidOperationException("layer is sealed"), () => { }));

        var error = Assert.Throws<InvalidOperationException>(() => Gems.ApplyPatches());

        Assert.Contains($"Bad{name}.forward", error.Message, StringComparison.Ordinal);
        Assert.Contains("layer is sealed", error.Message, StringComparison.Ordinal);
        Assert.Equal(0, good);
    }

    [Fact]
    public void Registering_the_same_layer_method_twice_is_refused()
    {
        var layer = $"Dup{Guid.NewGuid():N}";
        using var first = Gems.RegisterPatch(new GemsPatch(layer, "forward", "silu", () => { }, () => { }));
        var error = Assert.Throws<ArgumentException>(() => Gems.RegisterPatch(new GemsPatch(layer, "forward", "mul", () => { }, () => { })));
        Assert.Contains($"{layer}.forward", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Status_survives_a_json_round_trip()
    {
        var status = Gems.Enable(new GemsOptions { Logger = new ListLogger() }) with { Worker = "Contoso.ModelRunner", Rank = 3 };

        var json = status.ToJson();

        Assert.Equal(status, GemsStatus.FromJson(json));
        Assert.Contains("\"State\":\"Enabled\"", json, StringComparison.Ordinal);
        var error = Assert.Throws<ArgumentException>(() => GemsStatus.FromJson("{not json"));
        Assert.Equal("json", error.ParamName);
    }

    [Fact]
    public async Task Concurrent_toggling_never_tears_the_table_or_loses_the_restore()
    {
        // Callers read a kernel while other threads switch the table; every call must be correct and the final
        // Disable must put back every default kernel.
        var defaults = OperatorTable.All.Select(op => op.Current).ToArray();
        using var stop = new CancellationTokenSource(TimeSpan.FromSeconds(2));
        var failures = 0;
        var calls = 0;
        var togglers = Enumerable.Range(0, 2).Select(t => Task.Run(() =>
        {
            while (!stop.IsCancellationRequested)
            {
                using (Gems.Use(new GemsOptions { Include = t == 0 ? ["add"] : null, Logger = new ListLogger() }))
                {
                    Thread.Yield();
                }

                Gems.Enable(new GemsOptions { Logger = new ListLogger() });
                Gems.Disable();
            }
        })).ToArray();
        var callers = Enumerable.Range(0, 2).Select(_ => Task.Run(() =>
        {
            using var scope = torch.NewDisposeScope();
            var x = torch.arange(HeldScalars.Of(0), HeldScalars.Of(64), dtype: torch.float32);
            while (!stop.IsCancellationRequested)
            {
                using var inner = torch.NewDisposeScope();
                var sum = Ops.Add(x, x).sum().item<float>();
                Interlocked.Increment(ref calls);
                if (sum != 2 * 2016f)
                {
                    Interlocked.Increment(ref failures);
                }
            }
        })).ToArray();

        await Task.WhenAll([.. togglers, .. callers]);
        Gems.Disable();

        Assert.Equal(0, failures);
        Assert.True(calls > 0);
        Assert.Equal(defaults, OperatorTable.All.Select(op => op.Current).ToArray());
    }

    private static string[] WithCpuKernels() => GemsKernelCatalog.ForCpu().Select(pair => pair.Operator.Name).Order(StringComparer.Ordinal).ToArray();

    private static string[] OverriddenNames() => OperatorTable.All.Where(op => op.IsOverridden).Select(op => op.Name).Order(StringComparer.Ordinal).ToArray();
}
