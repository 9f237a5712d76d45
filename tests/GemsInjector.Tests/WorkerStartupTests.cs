using System;
using System.IO;
using System.Linq;
using GemsInjector.Hosting;
using Microsoft.Extensions.Logging;
using Xunit;

namespace GemsInjector.Tests;

[Collection(GemsStateCollection.Name)]
public sealed class WorkerStartupTests : IDisposable
{
    private const string Guard = "GEMS_TEST_WORKER_GUARD";
    private readonly EnvironmentScope _environment = new EnvironmentScope().Set(Guard, null);

    public void Dispose()
    {
        Gems.Disable();
        _environment.Dispose();
    }

    [Theory]
    [InlineData("1")]
    [InlineData(" TRUE ")]
    [InlineData("yes")]
    public void An_enabling_value_lets_the_block_go_on_quietly(string value)
    {
        _environment.Set(Guard, value);
        var log = new ListLogger();

        Assert.True(new WorkerStartup("Contoso.ModelRunner", Guard).IsGuardEnabled(log));
        Assert.Empty(log.Entries);
    }

    [Theory]
    [InlineData(null, "GEMS_TEST_WORKER_GUARD is not set.")]
    [InlineData("0", "GEMS_TEST_WORKER_GUARD='0' turns GemsInjector off.")]
    [InlineData("no", "GEMS_TEST_WORKER_GUARD='no' turns GemsInjector off.")]
    public void A_skipping_value_records_why_and_logs_nothing(string? value, string reason)
    {
        _environment.Set(Guard, value);
        var log = new ListLogger();

        Assert.False(new WorkerStartup("Contoso.ModelRunner", Guard).IsGuardEnabled(log));

        Assert.Empty(log.Entries);
        Assert.Equal(GemsState.Disabled, Gems.Status.State);
        Assert.Equal(reason, Gems.Status.Reason);
        Assert.Equal("Contoso.ModelRunner", Gems.Status.Worker);
        Assert.Equal(Guard, Gems.Status.GuardVariable);
    }

    [Fact]
    public void A_typo_is_a_warning_that_names_the_variable_and_the_value()
    {
        _environment.Set(Guard, "ture");
        var log = new ListLogger();

        Assert.False(new WorkerStartup("Contoso.ModelRunner", Guard).IsGuardEnabled(log));

        var (level, message) = Assert.Single(log.Entries);
        Assert.Equal(LogLevel.Warning, level);
        Assert.StartsWith($"Ignoring {Guard}='ture'", message, StringComparison.Ordinal);
        Assert.Equal(message, Gems.Status.Reason);
    }

    [Fact]
    public void Several_workers_of_one_process_log_the_same_outcome_once()
    {
        var variable = $"GEMS_TEST_GUARD_{Guid.NewGuid():N}";
        _environment.Set(variable, "maybe");
        var log = new ListLogger();

        Assert.False(new WorkerStartup("Contoso.PrefillRunner", variable).IsGuardEnabled(log));
        Assert.False(new WorkerStartup("Contoso.DecodeRunner", variable).IsGuardEnabled(log));

        Assert.Single(log.Entries);
        Assert.Equal("Contoso.DecodeRunner", Gems.Status.Worker);
    }

    [Fact]
    public void A_fallback_is_logged_once_as_a_warning_and_recorded()
    {
        var log = new ListLogger();
        const string line = "Failed to enable GemsInjector: boom, falling back to default implementation.";

        new WorkerStartup("Contoso.ModelRunner", Guard).FellBack(log, line, new InvalidOperationException("boom"));

        Assert.Equal([(LogLevel.Warning, line)], log.Entries.Where(entry => entry.Level >= LogLevel.Information).ToArray());
        Assert.Equal(GemsState.Fallback, Gems.Status.State);
        Assert.Equal(line, Gems.Status.Reason);
    }

    [Fact]
    public void Success_names_the_worker_in_the_status()
    {
        var log = new ListLogger();
        Gems.Enable(new GemsOptions { Logger = log });

        new WorkerStartup("Contoso.ModelRunner", Guard).Succeeded(log, "Successfully enabled GemsInjector as default ops implementation.");

        Assert.Equal((LogLevel.Information, "Successfully enabled GemsInjector as default ops implementation."), log.Entries[^1]);
        Assert.Equal(GemsState.Enabled, Gems.Status.State);
        Assert.Equal("Contoso.ModelRunner", Gems.Status.Worker);
    }

    [Fact]
    public void A_broken_host_logger_never_makes_the_block_throw()
    {
        _environment.Set(Guard, "maybe");
        var startup = new WorkerStartup("Contoso.ModelRunner", Guard);
        var logger = new ThrowingLogger();

        Assert.False(startup.IsGuardEnabled(logger));
        startup.Succeeded(logger, "ok");
        startup.FellBack(logger, "failed", new InvalidOperationException());
        Assert.Equal(GemsState.Fallback, Gems.Status.State);
    }

    [Fact]
    public void Kernel_load_failures_are_told_apart_from_other_failures()
    {
        Assert.True(WorkerStartup.IsKernelLoadFailure(new FileNotFoundException("Could not load", "GemsInjector.Kernels, Version=0.1.0.0, Culture=neutral, PublicKeyToken=null")));
        Assert.True(WorkerStartup.IsKernelLoadFailure(new InvalidOperationException("outer", new FileLoadException("bad", "ILGPU, Version=1.5.3.0"))));
        Assert.True(WorkerStartup.IsKernelLoadFailure(new TypeLoadException("Could not load type 'GemsInjector.Kernels.Cpu.CpuTensorKernels' from assembly 'GemsInjector.Kernels'.")));
        Assert.False(WorkerStartup.IsKernelLoadFailure(new FileNotFoundException("Could not load", "Contoso.Weights.bin")));
        Assert.False(WorkerStartup.IsKernelLoadFailure(new GemsConfigurationException("GEMS_INCLUDE and GEMS_EXCLUDE")));
    }
}
