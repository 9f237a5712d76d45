using System;
using System.IO;
using System.Linq;
using GemsInjector.Hosting;
using GemsInjector.Logging;
using Microsoft.Extensions.Logging;
using Xunit;

namespace GemsInjector.Tests;

/// <summary>
/// Every variable a user sets, with the values a user plausibly types: casing, white space, quotes, separators,
/// synonyms, look-alike characters, empty and very long values. Each value has one expected outcome: accepted (with
/// what it means), ignored with a warning that names the variable and the value, or a configuration error that names
/// them (the start-up block then falls back to the default kernels).
/// </summary>
[Collection(GemsStateCollection.Name)]
public sealed class EnvironmentValueTests : IDisposable
{
    private const string Cyrillic_a = "\u0430";
    private const string Cyrillic_e = "\u0435";
    private const string Cyrillic_o = "\u043e";
    private const string Cyrillic_es = "\u0441";

    private readonly EnvironmentScope _environment = new EnvironmentScope()
        .Set("GEMS_INCLUDE", null).Set("GEMS_EXCLUDE", null).Set("GEMS_RECORD", null).Set("GEMS_RECORD_ONCE", null)
        .Set("GEMS_DEVICE", null).Set("GEMS_LOG_LEVEL", null);

    public EnvironmentValueTests()
    {
        Gems.Disable();
    }

    public void Dispose()
    {
        Gems.Disable();
        _environment.Dispose();
    }

    public enum Guard
    {
        Enable,
        Off,
        Warn,
    }

    public static TheoryData<string?, Guard> GuardValues => new()
    {
        { null, Guard.Off },
        { "", Guard.Off },
        { "   ", Guard.Off },
        { "0", Guard.Off },
        { "false", Guard.Off },
        { "False", Guard.Off },
        { "no", Guard.Off },
        { " NO\n", Guard.Off },
        { "1", Guard.Enable },
        { " 1 ", Guard.Enable },
        { "\t1\r\n", Guard.Enable },
        { "\u00a01\u00a0", Guard.Enable },
        { "true", Guard.Enable },
        { "TRUE", Guard.Enable },
        { "True", Guard.Enable },
        { "yes", Guard.Enable },
        { "Yes", Guard.Enable },
        { "on", Guard.Warn },
        { "ON", Guard.Warn },
        { "off", Guard.Warn },
        { "enabled", Guard.Warn },
        { "enable", Guard.Warn },
        { "disabled", Guard.Warn },
        { "2", Guard.Warn },
        { "-1", Guard.Warn },
        { "01", Guard.Warn },
        { "1.0", Guard.Warn },
        { "0x1", Guard.Warn },
        { "y", Guard.Warn },
        { "t", Guard.Warn },
        { "ok", Guard.Warn },
        { "ture", Guard.Warn },
        { "yes please", Guard.Warn },
        { "1,", Guard.Warn },
        { "true;", Guard.Warn },
        { "\"1\"", Guard.Warn },
        { "'true'", Guard.Warn },
        { "\uff11", Guard.Warn },
        { "tru" + Cyrillic_e, Guard.Warn },
        { "n" + Cyrillic_o, Guard.Warn },
        { "1\u200b", Guard.Warn },
        { "null", Guard.Warn },
        { "none", Guard.Warn },
        { new string('1', 10_000), Guard.Warn },
    };

    /// <summary>Accepted values list the operators overridden; rejected ones a fragment of the error.</summary>
    public static TheoryData<string, string?, string> IncludeValues => new()
    {
        { "add", "add", "" },
        { "add,mul", "add,mul", "" },
        { " add , mul ", "add,mul", "" },
        { "add,mul,", "add,mul", "" },
        { ",add", "add", "" },
        { "add,,mul", "add,mul", "" },
        { "add;mul", "add,mul", "" },
        { "add mul", "add,mul", "" },
        { "add\tmul\n", "add,mul", "" },
        { "add, mul; silu", "add,mul,silu", "" },
        { "add,add", "add", "" },
        { string.Concat(Enumerable.Repeat("add,", 5_000)), "add", "" },
        { "ADD", null, "Unknown operator 'ADD' in GEMS_INCLUDE='ADD'. Did you mean add" },
        { "Add,Mul", null, "Unknown operator 'Add'" },
        { "\"add,mul\"", null, "The quotes are part of the value" },
        { "'add'", null, "The quotes are part of the value" },
        { Cyrillic_a + "dd", null, "Did you mean add" },
        { "slu", null, "Did you mean silu" },
        { "rmsnorm", null, "Did you mean rms_norm" },
        { "rms-norm", null, "Did you mean rms_norm" },
        { "softmax,log_sofmax", null, "Unknown operator 'log_sofmax' in GEMS_INCLUDE='softmax,log_sofmax'. Did you mean log_softmax" },
        { "aten::add", null, "Unknown operator 'aten::add'" },
        { "*", null, "Unknown operator '*'" },
        { "all", null, "Unknown operator 'all'" },
        { ",", null, "GEMS_INCLUDE=',' names no operator" },
        { " , ; ", null, "names no operator" },
        { new string('x', 10_000), null, "(10000 characters)" },
    };

    public static TheoryData<string, string?, string> ExcludeValues => new()
    {
        { "mm", "-mm", "" },
        { "mm;bmm", "-mm,bmm", "" },
        { "mm bmm,", "-mm,bmm", "" },
        { "MM", null, "Unknown operator 'MM' in GEMS_EXCLUDE='MM'. Did you mean mm" },
        { "m m", null, "Unknown operator 'm'" },
        { ";", null, "GEMS_EXCLUDE=';' names no operator" },
    };

    public static TheoryData<string?, string?, string> DeviceValues => new()
    {
        { null, "auto", "" },
        { "", "auto", "" },
        { "  ", "auto", "" },
        { "auto", "auto", "" },
        { "AUTO", "auto", "" },
        { "cpu", "cpu", "" },
        { "CPU", "cpu", "" },
        { " Cpu\n", "cpu", "" },
        { "cuda", "cuda", "" },
        { "CUDA", "cuda", "" },
        { "Cuda ", "cuda", "" },
        { "opencl", "opencl", "" },
        { "OpenCL", "opencl", "" },
        { "ilgpu-cpu", "ilgpu-cpu", "" },
        { "ILGPU-CPU", "ilgpu-cpu", "" },
        { "gpu", null, "Unknown device 'gpu' in GEMS_DEVICE; Did you mean cuda?" },
        { "GPU", null, "Did you mean cuda?" },
        { "nvidia", null, "Did you mean cuda?" },
        { "cuda:0", null, "A device cannot be numbered: each worker takes the GPU of its LOCAL_RANK; set 'cuda'." },
        { "cuda:1", null, "A device cannot be numbered" },
        { "cpu:0", null, "set 'cpu'" },
        { "cdua", null, "Did you mean cpu, cuda?" },
        { "ilgpu", null, "Did you mean ilgpu-cpu?" },
        { "ilgpu_cpu", null, "Did you mean ilgpu-cpu?" },
        { Cyrillic_es + "pu", null, "Did you mean cpu" },
        { "\"cuda\"", null, "The quotes are part of the value" },
        { "cuda,cpu", null, "Unknown device 'cuda,cpu'" },
        { "0", null, "Unknown device '0'" },
        { "mps", null, "expected one of: auto, cuda, opencl, cpu, ilgpu-cpu" },
        { new string('g', 5_000), null, "(5000 characters)" },
    };

    public static TheoryData<string?, string?, string> RecordValues => new()
    {
        { null, null, "" },
        { "", null, "" },
        { "   ", null, "" },
        { "calls.log", "calls.log", "" },
        { "  logs/calls.log\t", "logs/calls.log", "" },
        { "calls-{pid}.log", "calls-{pid}.log", "" },
        { "calls-{pid}-{rank}.log", "calls-{pid}-{rank}.log", "" },
        { "calls-{PID}.log", null, "holds '{PID}'; a record path may hold only the placeholders {pid} and {rank}" },
        { "calls-{unknown}.log", null, "holds '{unknown}'" },
        { "calls-{local_rank}.log", null, "holds '{local_rank}'" },
        { "calls-{ pid }.log", null, "holds '{ pid }'" },
        { "calls-{{pid}}.log", null, "holds '{{pid}'" },
        { "calls-{pid.log", null, "holds '{pid.log'" },
        { "calls-pid}.log", null, "holds '}'" },
        { "\"calls.log\"", null, "starts or ends with a quote" },
        { "'calls.log'", null, "starts or ends with a quote" },
    };

    /// <summary>GEMS_RECORD_ONCE value, whether GEMS_RECORD is set, whether calls are recorded once, and a warning fragment.</summary>
    public static TheoryData<string?, bool, bool, string> RecordOnceValues => new()
    {
        { null, true, false, "" },
        { "", true, false, "" },
        { "1", true, true, "" },
        { "true", true, true, "" },
        { " YES ", true, true, "" },
        { "0", true, false, "" },
        { "no", true, false, "" },
        { "on", true, false, "Ignoring GEMS_RECORD_ONCE='on': expected 1, true or yes" },
        { "2", true, false, "Ignoring GEMS_RECORD_ONCE='2'" },
        { "once", true, false, "Ignoring GEMS_RECORD_ONCE='once'" },
        { "yes please", true, false, "Ignoring GEMS_RECORD_ONCE='yes please'" },
        { "\uff11", true, false, "Ignoring GEMS_RECORD_ONCE=" },
        { "1", false, false, "GEMS_RECORD_ONCE is set but GEMS_RECORD is not: nothing is recorded." },
        { "on", false, false, "Ignoring GEMS_RECORD_ONCE='on'" },
        { "0", false, false, "" },
    };

    /// <summary>GEMS_LOG_LEVEL value, the level used, whether it is warned about.</summary>
    public static TheoryData<string?, LogLevel, bool> LogLevelValues => new()
    {
        { null, LogLevel.Information, false },
        { "", LogLevel.Information, false },
        { "  ", LogLevel.Information, false },
        { "Trace", LogLevel.Trace, false },
        { "trce", LogLevel.Trace, false },
        { "debug", LogLevel.Debug, false },
        { "DBUG", LogLevel.Debug, false },
        { "Information", LogLevel.Information, false },
        { "info", LogLevel.Information, false },
        { "Warning", LogLevel.Warning, false },
        { "warning", LogLevel.Warning, false },
        { " WARN ", LogLevel.Warning, false },
        { "Error", LogLevel.Error, false },
        { "fail", LogLevel.Error, false },
        { "critical", LogLevel.Critical, false },
        { "crit", LogLevel.Critical, false },
        { "None", LogLevel.None, false },
        { "2", LogLevel.Information, true },
        { "-1", LogLevel.Information, true },
        { "99", LogLevel.Information, true },
        { "verbose", LogLevel.Information, true },
        { "warnings", LogLevel.Information, true },
        { "Warning,Error", LogLevel.Information, true },
        { "\"Warning\"", LogLevel.Information, true },
        { "W" + Cyrillic_a + "rning", LogLevel.Information, true },
        { "err", LogLevel.Information, true },
        { new string('w', 1_000), LogLevel.Information, true },
    };

    [Theory]
    [MemberData(nameof(GuardValues))]
    public void Each_guard_value_enables_stays_off_or_warns(string? value, Guard expected)
    {
        // A variable per case: the start-up block logs each distinct outcome once per process.
        var variable = $"GEMS_TEST_GUARD_{Guid.NewGuid():N}";
        _environment.Set(variable, value);
        var log = new ListLogger();

        var enabled = new WorkerStartup("Contoso.ModelRunner", variable).IsGuardEnabled(log);

        Assert.Equal(expected == Guard.Enable, enabled);
        if (expected == Guard.Warn)
        {
            var (level, message) = Assert.Single(log.Entries);
            Assert.Equal(LogLevel.Warning, level);
            Assert.StartsWith($"Ignoring {variable}='", message, StringComparison.Ordinal);
            Assert.Contains("GemsInjector stays disabled", message, StringComparison.Ordinal);
            Assert.DoesNotContain('\n', message);
            Assert.True(message.Length < 400, $"the message quotes a shortened value: {message.Length} characters");
            Assert.Equal(message, Gems.Status.Reason);
        }
        else
        {
            Assert.Empty(log.Entries);
        }

        if (expected != Guard.Enable)
        {
            Assert.Equal(GemsState.Disabled, Gems.Status.State);
            Assert.Contains(variable, Gems.Status.Reason, StringComparison.Ordinal);
            Assert.Empty(TableState.OverriddenNames());
        }
    }

    [Theory]
    [InlineData(null)]
    [InlineData("0")]
    [InlineData("on")]
    public void A_second_worker_whose_guard_says_off_leaves_the_first_workers_kernels_and_status(string? value)
    {
        var variable = $"GEMS_TEST_GUARD_{Guid.NewGuid():N}";
        _environment.Set(variable, value);
        Gems.Enable(new GemsOptions { Include = ["add"], Logger = new ListLogger() });
        var table = TableState.Snapshot();
        var status = Gems.Status;

        Assert.False(new WorkerStartup("Contoso.SecondRunner", variable).IsGuardEnabled(new ListLogger()));

        TableState.AssertUnchanged(table);
        Assert.Same(status, Gems.Status);
        TableState.AssertStatusAgreesWithTable();
    }

    [Theory]
    [MemberData(nameof(IncludeValues))]
    public void Each_include_value_selects_operators_or_is_an_error_naming_it(string value, string? expected, string error) =>
        CheckListValue("GEMS_INCLUDE", value, expected, error);

    [Theory]
    [MemberData(nameof(ExcludeValues))]
    public void Each_exclude_value_selects_operators_or_is_an_error_naming_it(string value, string? expected, string error) =>
        CheckListValue("GEMS_EXCLUDE", value, expected, error);

    [Theory]
    [InlineData("", "mm", "-mm")]
    [InlineData("  ", ",", null)]
    [InlineData("add", "", "add")]
    public void An_empty_list_counts_as_unset_so_the_other_one_applies(string include, string exclude, string? expected)
    {
        _environment.Set("GEMS_INCLUDE", include).Set("GEMS_EXCLUDE", exclude);
        if (expected is null)
        {
            Assert.Throws<GemsConfigurationException>(() => GemsSettings.Resolve(null));
            return;
        }

        Assert.Equal(ExpectedOperators(expected), GemsSettings.Resolve(null).Operators.Order(StringComparer.Ordinal));
    }

    [Theory]
    [MemberData(nameof(DeviceValues))]
    public void Each_device_value_is_a_device_or_an_error_with_a_hint(string? value, string? expected, string error)
    {
        _environment.Set("GEMS_DEVICE", value);
        if (expected is not null)
        {
            Assert.Equal(expected, GemsSettings.Resolve(null).Device);
            return;
        }

        var exception = Assert.Throws<GemsConfigurationException>(() => GemsSettings.Resolve(null));
        Assert.Contains("GEMS_DEVICE", exception.Message, StringComparison.Ordinal);
        Assert.Contains(error, exception.Message, StringComparison.Ordinal);
        AssertTheBlockFallsBackWith(error);
    }

    [Theory]
    [InlineData("CPU")]
    [InlineData(" cpu ")]
    public void A_device_in_another_case_enables_that_device(string value)
    {
        _environment.Set("GEMS_DEVICE", value);
        Assert.Equal("cpu", Gems.Enable(new GemsOptions { Logger = new ListLogger() }).Device);
        TableState.AssertStatusAgreesWithTable();
    }

    [Theory]
    [MemberData(nameof(RecordValues))]
    public void Each_record_path_is_used_ignored_when_blank_or_an_error_naming_it(string? value, string? expected, string error)
    {
        _environment.Set("GEMS_RECORD", value);
        if (error.Length == 0)
        {
            Assert.Equal(expected, GemsSettings.Resolve(null).RecordPath);
            return;
        }

        var exception = Assert.Throws<GemsConfigurationException>(() => GemsSettings.Resolve(null));
        Assert.StartsWith($"GEMS_RECORD='{value}'", exception.Message, StringComparison.Ordinal);
        Assert.Contains(error, exception.Message, StringComparison.Ordinal);
        AssertTheBlockFallsBackWith(error);
    }

    [Fact]
    public void An_ignored_gpu_offload_value_is_a_warning_quoting_it_as_every_setting_is()
    {
        Assert.Null(GemsInjector.Operators.GemsKernelCatalog.OffloadWarning(null));
        Assert.Equal(
            "GEMS_GPU_OFFLOAD='gpu' is neither auto nor always; it was ignored (auto: a GPU takes the calls whose work outweighs their copies).",
            GemsInjector.Operators.GemsKernelCatalog.OffloadWarning("gpu"));
        string pasted = "x\n" + new string('y', 200);
        string warning = GemsInjector.Operators.GemsKernelCatalog.OffloadWarning(pasted)!;
        Assert.Contains("GEMS_GPU_OFFLOAD='" + GemsSettings.Show(pasted) + "'", warning, StringComparison.Ordinal);
        Assert.DoesNotContain("\n", warning, StringComparison.Ordinal);
        Assert.Contains("(202 characters)", warning, StringComparison.Ordinal);
    }

    [Fact]
    public void A_record_path_with_pid_and_rank_writes_to_the_expanded_file()
    {
        var folder = Directory.CreateTempSubdirectory("gems-env-record-");
        try
        {
            _environment.Set("GEMS_RECORD", $"  {folder.FullName}/calls-{{pid}}-{{rank}}.log ");
            using (Gems.Use(new GemsOptions { Include = ["add"], Logger = new ListLogger() }))
            {
                using var scope = TorchSharp.torch.NewDisposeScope();
                var x = TorchSharp.torch.ones(2);
                Ops.Add(x, x);
            }

            var rank = Gems.Status.Rank?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "norank";
            var file = Path.Combine(folder.FullName, $"calls-{Environment.ProcessId}-{rank}.log");
            Assert.Single(File.ReadAllLines(file));
        }
        finally
        {
            folder.Delete(recursive: true);
        }
    }

    [Theory]
    [MemberData(nameof(RecordOnceValues))]
    public void Each_record_once_value_is_on_off_or_ignored_with_a_warning(string? value, bool withRecord, bool once, string warning)
    {
        _environment.Set("GEMS_RECORD_ONCE", value).Set("GEMS_RECORD", withRecord ? "calls.log" : null);

        var settings = GemsSettings.Resolve(null);

        Assert.Equal(once, settings.RecordOnce);
        if (warning.Length == 0)
        {
            Assert.Empty(settings.Warnings);
        }
        else
        {
            Assert.Single(settings.Warnings);
            Assert.Contains(warning, settings.Warnings[0], StringComparison.Ordinal);
            Assert.Contains("GEMS_RECORD_ONCE", settings.Warnings[0], StringComparison.Ordinal);
        }
    }

    [Fact]
    public void A_record_once_warning_is_logged_and_kept_in_the_status_while_enabling_goes_on()
    {
        _environment.Set("GEMS_RECORD_ONCE", "1");
        var log = new ListLogger();

        var status = Gems.Enable(new GemsOptions { Include = ["add"], Logger = log });

        Assert.Equal(GemsState.Enabled, status.State);
        Assert.Contains("GEMS_RECORD_ONCE is set but GEMS_RECORD is not", status.Reason, StringComparison.Ordinal);
        var warning = Assert.Single(log.Entries, entry => entry.Level == LogLevel.Warning);
        Assert.Contains("GEMS_RECORD_ONCE is set but GEMS_RECORD is not", warning.Message, StringComparison.Ordinal);
    }

    [Theory]
    [MemberData(nameof(LogLevelValues))]
    public void Each_log_level_value_is_a_level_or_information_with_a_warning(string? value, LogLevel expected, bool warned)
    {
        var (level, warning) = StandardErrorLogger.ParseLevel(value);

        Assert.Equal(expected, level);
        Assert.Equal(warned, warning is not null);
        if (warning is not null)
        {
            Assert.StartsWith("Ignoring GEMS_LOG_LEVEL='", warning, StringComparison.Ordinal);
            Assert.True(warning.Length < 400, $"the warning quotes a shortened value: {warning.Length} characters");
        }
    }

    [Fact]
    public void The_default_logger_says_when_it_ignores_the_log_level()
    {
        _environment.Set("GEMS_LOG_LEVEL", "2");
        var standardError = Console.Error;
        using var captured = new StringWriter();
        Console.SetError(captured);
        try
        {
            var logger = StandardErrorLogger.FromEnvironment("GemsInjector");
            Assert.True(logger.IsEnabled(LogLevel.Information));
            Assert.False(logger.IsEnabled(LogLevel.Debug));
        }
        finally
        {
            Console.SetError(standardError);
        }

        Assert.StartsWith("warn: GemsInjector: Ignoring GEMS_LOG_LEVEL='2': expected one of Trace", captured.ToString(), StringComparison.Ordinal);
    }

    private void CheckListValue(string variable, string value, string? expected, string error)
    {
        _environment.Set(variable, value);
        if (expected is not null)
        {
            Assert.Equal(ExpectedOperators(expected), GemsSettings.Resolve(null).Operators.Order(StringComparer.Ordinal));
            return;
        }

        var exception = Assert.Throws<GemsConfigurationException>(() => GemsSettings.Resolve(null));
        Assert.Contains(variable, exception.Message, StringComparison.Ordinal);
        Assert.Contains(error, exception.Message, StringComparison.Ordinal);
        Assert.True(exception.Message.Length < 1_000, $"the message quotes a shortened value: {exception.Message.Length} characters");
        AssertTheBlockFallsBackWith(error);
    }

    /// <summary>The same value in a worker's start-up block: the worker starts, on the default kernels, and the status says why.</summary>
    private void AssertTheBlockFallsBackWith(string error)
    {
        var guard = $"GEMS_TEST_GUARD_{Guid.NewGuid():N}";
        _environment.Set(guard, "1");
        var defaults = TableState.Snapshot();

        StartupBlock.Run(guard, new ListLogger());

        TableState.AssertUnchanged(defaults);
        Assert.Equal(GemsState.Fallback, Gems.Status.State);
        Assert.Contains(error, Gems.Status.Reason, StringComparison.Ordinal);
        TableState.AssertStatusAgreesWithTable();
    }

    /// <summary>"a,b" is those operators; "-a,b" is every operator but those.</summary>
    private static string[] ExpectedOperators(string expected) =>
        expected.StartsWith('-')
            ? GemsInjector.Operators.OperatorTable.Names.Except(expected[1..].Split(',')).Order(StringComparer.Ordinal).ToArray()
            : expected.Split(',').Order(StringComparer.Ordinal).ToArray();
}
