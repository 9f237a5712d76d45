using System;
using System.IO;
using System.Linq;
using GemsInjector.Operators;
using Microsoft.Extensions.Logging;
using TorchSharp;
using Xunit;

namespace GemsInjector.Tests;

/// <summary>
/// Each fault of issue #6 is injected where it would really happen (the device, the kernel catalog, one operator's
/// registration, a patch, the record file, the host's logger). For each: the start-up block does not throw, the table
/// holds one whole configuration (the one before, or the CPU kernels when only the device failed), and the status and
/// the log say why. The missing kernel assembly is covered out of process by the integration tests
/// (QuickstartProcessTests.Without_the_kernel_assembly_the_worker_logs_the_import_warning_and_runs_on_the_default_kernels).
/// </summary>
[Collection(GemsStateCollection.Name)]
public sealed class FaultInjectionTests : IDisposable
{
    private const string Guard = "GEMS_TEST_FAULT_GUARD";

    private readonly EnvironmentScope _environment = new EnvironmentScope()
        .Set(Guard, "1").Set("GEMS_INCLUDE", null).Set("GEMS_EXCLUDE", null).Set("GEMS_RECORD", null)
        .Set("GEMS_RECORD_ONCE", null).Set("GEMS_DEVICE", null);

    public FaultInjectionTests()
    {
        FaultInjection.Hook = null;
        Gems.Disable();
    }

    public void Dispose()
    {
        FaultInjection.Hook = null;
        Gems.Disable();
        _environment.Dispose();
    }

    public static TheoryData<int> RegistrationFailurePoints => new() { 0, 1, 15, 29 };

    [SkippableFact]
    public void A_cuda_device_that_is_not_there_enables_the_cpu_kernels_and_says_why()
    {
        Skip.If(File.Exists("/dev/nvidiactl"), "This machine has an NVIDIA GPU; the fallback needs a machine without one.");
        _environment.Set("GEMS_DEVICE", "cuda");
        var log = new ListLogger();

        StartupBlock.Run(Guard, log);

        AssertOnCpuKernels(TableState.CpuKernelOperators());
        Assert.Equal(GemsState.Enabled, Gems.Status.State);
        Assert.Equal("cpu", Gems.Status.Device);
        Assert.Contains("Device 'cuda' is not available", Gems.Status.Reason, StringComparison.Ordinal);
        Assert.Contains(log.Entries, entry => entry.Level == LogLevel.Warning && entry.Message.Contains("Device 'cuda' is not available", StringComparison.Ordinal));
        TableState.AssertStatusAgreesWithTable();
    }

    [Theory]
    [InlineData("device-unavailable")]
    [InlineData("driver-crash")]
    public void A_device_whose_creation_throws_enables_the_cpu_kernels_with_the_reason(string fault)
    {
        _environment.Set("GEMS_DEVICE", "ilgpu-cpu");
        var token = Guid.NewGuid().ToString("N");
        Func<Exception> exception = fault == "device-unavailable"
            ? () => NewIlgpuDeviceException($"no device {token}")
            : () => new InvalidOperationException($"driver crashed {token}");
        var log = new ListLogger();
        var worker = $"Contoso.Runner{token}";

        using (var injected = new InjectedFault(FaultPoint.DeviceCreation, device => device == "ilgpu-cpu", exception))
        {
            StartupBlock.Run(Guard, log, worker: worker);
            Assert.Equal(1, injected.Thrown);
        }

        AssertOnCpuKernels(TableState.CpuKernelOperators());
        Assert.Equal(GemsState.Enabled, Gems.Status.State);
        Assert.Equal("cpu", Gems.Status.Device);
        Assert.Contains(token, Gems.Status.Reason, StringComparison.Ordinal);
        Assert.Contains("using the CPU kernels instead", Gems.Status.Reason, StringComparison.Ordinal);
        var warning = Assert.Single(log.Entries, entry => entry.Level == LogLevel.Warning);
        Assert.Contains(token, warning.Message, StringComparison.Ordinal);
        Assert.Equal(worker, Gems.Status.Worker);
        TableState.AssertStatusAgreesWithTable();
    }

    [Fact]
    public void A_gpu_kernel_catalog_that_throws_while_built_enables_the_cpu_kernels_with_the_reason()
    {
        _environment.Set("GEMS_DEVICE", "ilgpu-cpu");
        var token = Guid.NewGuid().ToString("N");

        using (new InjectedFault(FaultPoint.CatalogBuild, backend => backend == "ilgpu", () => new InvalidOperationException($"kernel does not compile {token}")))
        {
            StartupBlock.Run(Guard, new ListLogger());
        }

        AssertOnCpuKernels(TableState.CpuKernelOperators());
        Assert.Contains($"Device 'ilgpu-cpu' failed to initialize (InvalidOperationException: kernel does not compile {token})", Gems.Status.Reason, StringComparison.Ordinal);
        TableState.AssertStatusAgreesWithTable();
    }

    [Fact]
    public void A_cpu_kernel_catalog_that_throws_leaves_the_default_kernels_and_records_the_fallback()
    {
        var defaults = TableState.Snapshot();
        var token = Guid.NewGuid().ToString("N");
        var log = new ListLogger();

        using (new InjectedFault(FaultPoint.CatalogBuild, backend => backend == "cpu", () => new InvalidOperationException($"catalog broken {token}")))
        {
            StartupBlock.Run(Guard, log);
        }

        TableState.AssertUnchanged(defaults);
        Assert.Equal(GemsState.Fallback, Gems.Status.State);
        Assert.Contains($"catalog broken {token}", Gems.Status.Reason, StringComparison.Ordinal);
        var warning = Assert.Single(log.Entries, entry => entry.Level == LogLevel.Warning);
        Assert.Equal($"Failed to enable GemsInjector: catalog broken {token}, falling back to default implementation.", warning.Message);
        TableState.AssertStatusAgreesWithTable();
    }

    [Fact]
    public void A_kernel_assembly_that_fails_to_load_while_the_catalog_is_built_is_reported_as_the_import_failure()
    {
        var defaults = TableState.Snapshot();
        var log = new ListLogger();

        using (new InjectedFault(FaultPoint.CatalogBuild, _ => true, () => new FileNotFoundException("Could not load", "GemsInjector.Kernels, Version=0.1.0.0")))
        {
            StartupBlock.Run(Guard, log, worker: $"Contoso.Runner{Guid.NewGuid():N}");
        }

        TableState.AssertUnchanged(defaults);
        Assert.Equal(GemsState.Fallback, Gems.Status.State);
        Assert.Equal(StartupBlock.LoadFailureMessage, Gems.Status.Reason);
        TableState.AssertStatusAgreesWithTable();
    }

    [Theory]
    [MemberData(nameof(RegistrationFailurePoints))]
    public void A_registration_that_throws_part_way_from_disabled_leaves_every_default_kernel(int after)
    {
        var defaults = TableState.Snapshot();
        var statusBefore = Gems.Status;
        var token = Guid.NewGuid().ToString("N");

        using (var injected = InjectedFault.AtRegistration(after, () => new InvalidOperationException($"register failed {token}")))
        {
            var error = Assert.Throws<InvalidOperationException>(() => Gems.Enable(new GemsOptions { Logger = new ListLogger() }));
            Assert.Contains(token, error.Message, StringComparison.Ordinal);
            Assert.Equal(after + 1, injected.Reached);
        }

        TableState.AssertUnchanged(defaults);
        Assert.Same(statusBefore, Gems.Status);
        Assert.False(Gems.IsEnabled);
        TableState.AssertStatusAgreesWithTable();
    }

    [Theory]
    [MemberData(nameof(RegistrationFailurePoints))]
    public void A_failed_re_enable_from_an_enabled_state_keeps_the_previous_configuration_and_its_record_file(int after)
    {
        var folder = Directory.CreateTempSubdirectory("gems-fault-");
        try
        {
            var firstFile = Path.Combine(folder.FullName, "first.log");
            var secondFile = Path.Combine(folder.FullName, "second.log");
            Gems.Enable(new GemsOptions { Include = ["add", "mul"], RecordPath = firstFile, Logger = new ListLogger() });
            var enabled = TableState.Snapshot();
            var statusBefore = Gems.Status;

            using (InjectedFault.AtRegistration(after, () => new InvalidOperationException("register failed")))
            {
                Assert.Throws<InvalidOperationException>(() => Gems.Enable(new GemsOptions { RecordPath = secondFile, Logger = new ListLogger() }));
            }

            TableState.AssertUnchanged(enabled);
            Assert.Same(statusBefore, Gems.Status);
            Assert.True(Gems.IsEnabled);
            Assert.Equal(["add", "mul"], TableState.OverriddenNames());
            TableState.AssertStatusAgreesWithTable();

            // The kernels of the previous configuration still record to its file, which the failure did not close.
            using var scope = torch.NewDisposeScope();
            var x = torch.ones(3);
            Ops.Add(x, x);
            Assert.Single(File.ReadAllLines(firstFile), line => line.EndsWith(" GEMS add", StringComparison.Ordinal));
            Assert.Empty(File.ReadAllLines(secondFile));
        }
        finally
        {
            Gems.Disable();
            folder.Delete(recursive: true);
        }
    }

    [Fact]
    public void A_use_scope_whose_enable_throws_part_way_changes_nothing_and_returns_no_scope()
    {
        Gems.Enable(new GemsOptions { Include = ["silu"], Logger = new ListLogger() });
        var enabled = TableState.Snapshot();
        var statusBefore = Gems.Status;

        using (InjectedFault.AtRegistration(3, () => new InvalidOperationException("register failed")))
        {
            Assert.Throws<InvalidOperationException>(() => Gems.Use(new GemsOptions { Logger = new ListLogger() }));
        }

        TableState.AssertUnchanged(enabled);
        Assert.Same(statusBefore, Gems.Status);
        TableState.AssertStatusAgreesWithTable();
    }

    [Fact]
    public void A_start_up_block_whose_registration_throws_half_way_falls_back_to_the_default_kernels()
    {
        var defaults = TableState.Snapshot();
        var token = Guid.NewGuid().ToString("N");
        var log = new ListLogger();

        using (InjectedFault.AtRegistration(15, () => new InvalidOperationException($"register failed {token}")))
        {
            StartupBlock.Run(Guard, log);
        }

        TableState.AssertUnchanged(defaults);
        Assert.Equal(GemsState.Fallback, Gems.Status.State);
        Assert.Contains(token, Gems.Status.Reason, StringComparison.Ordinal);
        Assert.Contains(log.Entries, entry => entry.Level == LogLevel.Warning && entry.Message.Contains(token, StringComparison.Ordinal));
        Assert.DoesNotContain(log.Entries, entry => entry.Message.StartsWith("Overriding", StringComparison.Ordinal));
        TableState.AssertStatusAgreesWithTable();
    }

    [Fact]
    public void A_patch_that_throws_in_the_start_up_block_undoes_the_kernels_enabled_just_before()
    {
        var defaults = TableState.Snapshot();
        var token = Guid.NewGuid().ToString("N");
        var good = 0;
        using var goodPatch = Gems.RegisterPatch(new GemsPatch($"Good{token}", "forward", "silu", () => good++, () => good--));
        using var badPatch = Gems.RegisterPatch(new GemsPatch($"Bad{token}", "forward", "mul", () => throw new InvalidOperationException("layer is sealed"), () => { }));
        var log = new ListLogger();

        StartupBlock.Run(Guard, log);

        TableState.AssertUnchanged(defaults);
        Assert.Equal(0, good);
        Assert.False(Gems.IsEnabled);
        Assert.Equal(GemsState.Fallback, Gems.Status.State);
        Assert.Contains($"Bad{token}.forward", Gems.Status.Reason, StringComparison.Ordinal);
        Assert.Contains(log.Entries, entry => entry.Level == LogLevel.Warning && entry.Message.Contains($"Bad{token}.forward", StringComparison.Ordinal));
        TableState.AssertStatusAgreesWithTable();
    }

    [Fact]
    public void A_failing_block_after_another_worker_enabled_keeps_that_workers_configuration_and_says_so()
    {
        Gems.Enable(new GemsOptions { Include = ["rms_norm"], Logger = new ListLogger() });
        var enabled = TableState.Snapshot();
        var token = Guid.NewGuid().ToString("N");
        using var badPatch = Gems.RegisterPatch(new GemsPatch($"Bad{token}", "forward", "mul", () => throw new InvalidOperationException("layer is sealed"), () => { }));

        var log = new ListLogger();
        StartupBlock.Run(Guard, log, new GemsOptions { Include = ["add"] }, worker: "Contoso.SecondRunner");

        TableState.AssertUnchanged(enabled);
        Assert.Equal(GemsState.Enabled, Gems.Status.State);
        Assert.Equal(["rms_norm"], Gems.Status.OverriddenOperators);
        Assert.Equal("Contoso.SecondRunner", Gems.Status.Worker);
        Assert.Contains($"Bad{token}.forward", Gems.Status.Reason, StringComparison.Ordinal);
        Assert.Contains("stays enabled as it was before (1 operators on cpu)", Gems.Status.Reason, StringComparison.Ordinal);

        // The warning says the same as the status, not only "falling back to default implementation".
        var warning = Assert.Single(log.Entries, entry => entry.Level == LogLevel.Warning);
        Assert.Equal(Gems.Status.Reason, warning.Message);
        TableState.AssertStatusAgreesWithTable();
    }

    [Fact]
    public void A_patch_whose_revert_throws_cannot_keep_the_kernels_in_place_on_disable()
    {
        var token = Guid.NewGuid().ToString("N");
        var revertWorks = false;
        var applied = 0;
        var registration = Gems.RegisterPatch(new GemsPatch(
            $"Stuck{token}", "forward", "rms_norm", () => applied++, () => { if (!revertWorks) { throw new InvalidOperationException("cannot unpatch"); } applied--; }));
        try
        {
            var defaults = TableState.Snapshot();
            Gems.Enable(new GemsOptions { Logger = new ListLogger() });
            Gems.ApplyPatches();

            var error = Assert.Throws<InvalidOperationException>(Gems.Disable);

            Assert.Contains($"Stuck{token}.forward", error.Message, StringComparison.Ordinal);
            Assert.Contains("cannot unpatch", error.Message, StringComparison.Ordinal);
            TableState.AssertUnchanged(defaults);
            Assert.Equal(GemsState.Disabled, Gems.Status.State);
            Assert.Equal(error.Message, Gems.Status.Reason);
            TableState.AssertStatusAgreesWithTable();
            Assert.Equal(1, applied);

            // Still marked applied, so the next Disable tries again.
            revertWorks = true;
            Gems.Disable();
            Assert.Equal(0, applied);
        }
        finally
        {
            revertWorks = true;
            registration.Dispose();
        }
    }

    [Fact]
    public void A_revert_that_throws_while_undoing_a_failed_apply_is_named_too()
    {
        var token = Guid.NewGuid().ToString("N");
        var first = 0;
        using var stuck = new ResettablePatch($"Stuck{token}", () => first++, () => throw new InvalidOperationException("cannot unpatch"));
        using var bad = Gems.RegisterPatch(new GemsPatch($"Bad{token}", "forward", "mul", () => throw new InvalidOperationException("layer is sealed"), () => { }));

        var error = Assert.Throws<InvalidOperationException>(() => Gems.ApplyPatches());

        Assert.Contains($"Bad{token}.forward failed: layer is sealed", error.Message, StringComparison.Ordinal);
        Assert.Contains($"Stuck{token}.forward failed: cannot unpatch", error.Message, StringComparison.Ordinal);
        Assert.Equal(1, first);
    }

    [Theory]
    [InlineData("missing-directory")]
    [InlineData("parent-is-a-file")]
    [InlineData("path-is-a-directory")]
    [InlineData("read-only-location")]
    public void A_record_file_fault_leaves_the_table_as_it_was_and_the_status_names_the_path(string fault)
    {
        var folder = Directory.CreateTempSubdirectory("gems-record-fault-");
        try
        {
            var path = fault switch
            {
                "missing-directory" => Path.Combine(folder.FullName, "not", "yet", "calls.log"),
                "parent-is-a-file" => Path.Combine(CreateFile(folder, "blocker"), "calls.log"),
                "path-is-a-directory" => folder.FullName,
                _ => "/proc/gems-calls.log",
            };
            var log = new ListLogger();
            Gems.Enable(new GemsOptions { Include = ["add"], Logger = new ListLogger() });
            var enabled = TableState.Snapshot();

            var failure = Record.Exception(() => Gems.Enable(new GemsOptions { RecordPath = path, Logger = log }));

            if (fault == "missing-directory")
            {
                // A missing folder is created: the one record-file "fault" that is not one.
                Assert.Null(failure);
                Assert.True(File.Exists(path));
                Assert.Equal(TableState.CpuKernelOperators(), TableState.OverriddenNames());
                TableState.AssertStatusAgreesWithTable();
                return;
            }

            var error = Assert.IsType<GemsConfigurationException>(failure);
            Assert.Contains($"Cannot open the record file '{path}'", error.Message, StringComparison.Ordinal);
            TableState.AssertUnchanged(enabled);
            Assert.Equal(["add"], Gems.Status.OverriddenOperators);
            TableState.AssertStatusAgreesWithTable();

            // The same fault in a worker's start-up block, from disabled: the worker starts on the default kernels.
            Gems.Disable();
            var defaults = TableState.Snapshot();
            _environment.Set("GEMS_RECORD", path);
            StartupBlock.Run(Guard, log);
            TableState.AssertUnchanged(defaults);
            Assert.Equal(GemsState.Fallback, Gems.Status.State);
            Assert.Contains($"Cannot open the record file '{path}'", Gems.Status.Reason, StringComparison.Ordinal);
            Assert.Contains(log.Entries, entry => entry.Level == LogLevel.Warning && entry.Message.Contains($"Cannot open the record file '{path}'", StringComparison.Ordinal));
            TableState.AssertStatusAgreesWithTable();
        }
        finally
        {
            Gems.Disable();
            folder.Delete(recursive: true);
        }
    }

    [SkippableFact]
    public void A_record_file_that_fails_while_written_stops_recording_without_failing_the_call()
    {
        Skip.IfNot(File.Exists("/dev/full"), "Needs /dev/full, a file whose every write fails as on a full disk.");
        var standardError = Console.Error;
        using var captured = new StringWriter();
        Console.SetError(captured);
        try
        {
            Gems.Enable(new GemsOptions { Include = ["add"], RecordPath = "/dev/full", Logger = new ListLogger() });
            using var scope = torch.NewDisposeScope();
            var x = torch.tensor(new[] { 1f, 2f });

            Assert.Equal(new[] { 2f, 4f }, Ops.Add(x, x).data<float>().ToArray());
            Assert.Equal(new[] { 2f, 4f }, Ops.Add(x, x).data<float>().ToArray());

            Assert.Equal(["add"], TableState.OverriddenNames());
            TableState.AssertStatusAgreesWithTable();
            Gems.Disable();
        }
        finally
        {
            Console.SetError(standardError);
        }

        if (Gems.DefaultLogger.IsEnabled(LogLevel.Warning))
        {
            Assert.Single(captured.ToString().Split('\n'), line => line.Contains("Recording to '/dev/full' stopped", StringComparison.Ordinal));
        }
    }

    [Fact]
    public void A_host_logger_that_throws_cannot_leave_the_status_behind_the_table()
    {
        var standardError = Console.Error;
        using var captured = new StringWriter();
        Console.SetError(captured);
        try
        {
            var status = Gems.Enable(new GemsOptions { Include = ["add", "silu"], Logger = new ThrowingLogger() });

            Assert.Equal(GemsState.Enabled, status.State);
            Assert.Equal(["add", "silu"], TableState.OverriddenNames());
            TableState.AssertStatusAgreesWithTable();

            // The override lines the host logger refused went to standard error instead (if its level lets them).
            if (Gems.DefaultLogger.IsEnabled(LogLevel.Information))
            {
                Assert.Equal(2, captured.ToString().Split('\n').Count(line => line.Contains("Overriding a previously registered kernel", StringComparison.Ordinal)));
            }

            Gems.Disable();
            Assert.Empty(TableState.OverriddenNames());
            TableState.AssertStatusAgreesWithTable();
        }
        finally
        {
            Console.SetError(standardError);
        }
    }

    [Fact]
    public void The_fault_seam_is_unset_outside_these_tests()
    {
        // Nothing in the runtime sets the hook: a process that never loads these tests pays one null check per point.
        Assert.Null(FaultInjection.Hook);
    }

    /// <summary>The kernel assembly's "no such device" exception; this project does not reference that assembly, the runtime does.</summary>
    private static Exception NewIlgpuDeviceException(string message)
    {
        var type = Type.GetType("GemsInjector.Kernels.Ilgpu.IlgpuDeviceException, GemsInjector.Kernels", throwOnError: true)!;
        var kind = Enum.Parse(Type.GetType("GemsInjector.Kernels.Ilgpu.IlgpuDeviceKind, GemsInjector.Kernels", throwOnError: true)!, "CpuSimulator");
        return (Exception)Activator.CreateInstance(type, kind, message, null)!;
    }

    private static string CreateFile(DirectoryInfo folder, string name)
    {
        var path = Path.Combine(folder.FullName, name);
        File.WriteAllText(path, "");
        return path;
    }

    private static void AssertOnCpuKernels(string[] expectedOperators)
    {
        Assert.Equal(expectedOperators, TableState.OverriddenNames());
        Assert.All(OperatorTable.All.Where(op => op.IsOverridden), op =>
            Assert.StartsWith("GemsInjector.Kernels.Cpu.CpuTensorKernels.", op.Current.RegisteredAt, StringComparison.Ordinal));
    }

    /// <summary>A registered patch applied now, whose revert may throw; its registration is dropped without reverting.</summary>
    private sealed class ResettablePatch : IDisposable
    {
        private readonly IDisposable _registration;
        private bool _reverting = true;

        public ResettablePatch(string layer, Action apply, Action revert)
        {
            _registration = Gems.RegisterPatch(new GemsPatch(layer, "forward", "rms_norm", apply, () =>
            {
                if (_reverting)
                {
                    revert();
                }
            }));
        }

        public void Dispose()
        {
            _reverting = false;
            _registration.Dispose();
        }
    }
}
