using System;
using System.Linq;
using System.Threading;
using System.Threading.Tasks;
using GemsInjector.Kernels.Ilgpu;
using GemsInjector.Operators;
using Microsoft.Extensions.Logging;
using TorchSharp;
using Xunit;

namespace GemsInjector.Tests;

/// <summary>
/// A GPU is created on a background thread so that <see cref="Gems.Enable(GemsOptions?)"/> does not wait for the
/// driver. CI has no GPU, so these tests put the GPU simulator on the same background path and hold its creation at a
/// gate (the device-creation fault point) to see every state in between.
/// </summary>
[Collection(GemsStateCollection.Name)]
public sealed class BackgroundDeviceStartTests : IDisposable
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(60);

    private readonly EnvironmentScope _environment = new EnvironmentScope()
        .Set("GEMS_INCLUDE", null).Set("GEMS_EXCLUDE", null).Set("GEMS_RECORD", null).Set("GEMS_RECORD_ONCE", null)
        .Set("GEMS_DEVICE", "ilgpu-cpu");

    private readonly ManualResetEventSlim _gate = new(initialState: false);

    public BackgroundDeviceStartTests()
    {
        Gems.Disable();
        IlgpuBackends.ForgetDevices();
        IlgpuBackends.StartsInBackground = _ => true;
    }

    public void Dispose()
    {
        _gate.Set();
        FaultInjection.Hook = null;
        Gems.Disable();
        IlgpuBackends.StartsInBackground = kind => kind is IlgpuDeviceKind.Cuda or IlgpuDeviceKind.OpenCL;
        IlgpuBackends.ForgetDevices();
        _environment.Dispose();
        _gate.Dispose();
    }

    [Fact]
    public async Task Enable_returns_while_the_device_starts_and_the_first_call_waits_for_the_device()
    {
        HoldDeviceCreation(thenThrow: null);
        var log = new ListLogger();
        using var scope = torch.NewDisposeScope();
        var x = torch.rand(5, 7);
        var w = torch.rand(7, 3);

        var status = Gems.Enable(new GemsOptions { Logger = log });

        Assert.Equal("ilgpu-cpu (starting)", status.Device);
        Assert.Contains($"Enabled: {OperatorTable.All.Count} operators on ilgpu-cpu (starting).", status.Reason, StringComparison.Ordinal);
        Assert.All(OperatorTable.All, op => Assert.StartsWith("GemsInjector.Kernels.Staging.IlgpuTensorKernels.", op.Current.RegisteredAt, StringComparison.Ordinal));
        var product = Task.Run(() => Ops.Mm(x, w));
        Assert.NotSame(product, await Task.WhenAny(product, Task.Delay(300)));
        Assert.Equal("ilgpu-cpu (starting)", Gems.WaitForDevice(TimeSpan.Zero).Device);

        _gate.Set();
        var result = await product.WaitAsync(Patience);
        status = Gems.WaitForDevice(Patience);

        AssertClose(Reference(x, w), result);
        Assert.StartsWith("ilgpu-cpu (", status.Device, StringComparison.Ordinal);
        Assert.DoesNotContain("starting", status.Device, StringComparison.Ordinal);
        Assert.Contains($"operators on {status.Device}.", status.Reason, StringComparison.Ordinal);
        Assert.Contains(log.Entries, entry => entry.Level == LogLevel.Information && entry.Message.Contains($"Device {status.Device} is up", StringComparison.Ordinal));
        Assert.DoesNotContain(log.Entries, entry => entry.Level >= LogLevel.Warning);
        TableState.AssertStatusAgreesWithTable();
    }

    [Fact]
    public void A_device_that_fails_in_the_background_leaves_its_operators_on_the_cpu_kernels_and_says_why_once()
    {
        var token = Guid.NewGuid().ToString("N");
        HoldDeviceCreation(thenThrow: () => new InvalidOperationException($"driver crashed {token}"));
        var log = new ListLogger();
        using var scope = torch.NewDisposeScope();
        var x = torch.rand(4, 9);
        var w = torch.rand(9, 6);

        Assert.Equal("ilgpu-cpu (starting)", Gems.Enable(new GemsOptions { Logger = log }).Device);
        _gate.Set();
        var first = Ops.Mm(x, w);
        var second = Ops.Mm(x, w);
        var status = Gems.WaitForDevice(Patience);

        AssertClose(Reference(x, w), first);
        AssertClose(Reference(x, w), second);
        Assert.Equal(GemsState.Enabled, status.State);
        Assert.Equal("cpu", status.Device);
        Assert.Contains($"operators on cpu. Device 'ilgpu-cpu' failed to initialize (InvalidOperationException: driver crashed {token}); using the CPU kernels instead.", status.Reason, StringComparison.Ordinal);
        var warning = Assert.Single(log.Entries, entry => entry.Level == LogLevel.Warning);
        Assert.Contains(token, warning.Message, StringComparison.Ordinal);
        TableState.AssertStatusAgreesWithTable();
    }

    [Fact]
    public void A_device_that_failed_is_tried_again_by_the_next_enable()
    {
        var attempts = 0;
        FaultInjection.Hook = (point, device) =>
        {
            if (point == FaultPoint.DeviceCreation && Interlocked.Increment(ref attempts) == 1)
            {
                throw new InvalidOperationException("first attempt fails");
            }
        };
        Assert.Equal("cpu", EnableAndWait(new GemsOptions { Logger = new ListLogger() }).Device);

        var status = EnableAndWait(new GemsOptions { Logger = new ListLogger(), Exclude = [OperatorNames.TopK] });

        Assert.Equal(2, attempts);
        Assert.StartsWith("ilgpu-cpu (", status.Device, StringComparison.Ordinal);
        Assert.DoesNotContain("starting", status.Device, StringComparison.Ordinal);
        TableState.AssertStatusAgreesWithTable();
    }

    [Fact]
    public void A_device_that_comes_up_after_gems_was_disabled_leaves_the_status_alone()
    {
        HoldDeviceCreation(thenThrow: null);
        Gems.Enable(new GemsOptions { Logger = new ListLogger() });

        Gems.Disable();
        _gate.Set();
        var status = EnableAndWait(new GemsOptions { Logger = new ListLogger(), Exclude = [OperatorNames.TopK] });
        Gems.Disable();
        Thread.Sleep(100);

        Assert.StartsWith("ilgpu-cpu (", status.Device, StringComparison.Ordinal);
        Assert.Equal(GemsState.Disabled, Gems.Status.State);
        Assert.Equal("", Gems.Status.Device);
        TableState.AssertStatusAgreesWithTable();
    }

    [Fact]
    public void Waiting_without_a_device_starting_returns_the_status_at_once_and_a_negative_timeout_is_refused()
    {
        _environment.Set("GEMS_DEVICE", "cpu");
        var status = Gems.Enable(new GemsOptions { Logger = new ListLogger() });

        Assert.Same(status, Gems.WaitForDevice(TimeSpan.Zero));
        var error = Assert.Throws<ArgumentOutOfRangeException>(() => Gems.WaitForDevice(TimeSpan.FromSeconds(-2)));
        Assert.Equal("timeout", error.ParamName);
    }

    private static GemsStatus EnableAndWait(GemsOptions options)
    {
        Gems.Enable(options);
        return Gems.WaitForDevice(Patience);
    }

    private void HoldDeviceCreation(Func<Exception>? thenThrow)
    {
        FaultInjection.Hook = (point, device) =>
        {
            if (point == FaultPoint.DeviceCreation)
            {
                _gate.Wait(Patience);
                if (thenThrow is not null)
                {
                    throw thenThrow();
                }
            }
        };
    }

    private static double[] Reference(torch.Tensor x, torch.Tensor w)
    {
        var (m, k, n) = ((int)x.shape[0], (int)x.shape[1], (int)w.shape[1]);
        var a = x.data<float>().ToArray();
        var b = w.data<float>().ToArray();
        var expected = new double[m * n];
        for (var i = 0; i < m; i++)
        {
            for (var j = 0; j < n; j++)
            {
                for (var p = 0; p < k; p++)
                {
                    expected[(i * n) + j] += (double)a[(i * k) + p] * b[(p * n) + j];
                }
            }
        }

        return expected;
    }

    private static void AssertClose(double[] expected, torch.Tensor actual)
    {
        var values = actual.data<float>().ToArray();
        Assert.Equal(expected.Length, values.Length);
        for (var i = 0; i < values.Length; i++)
        {
            Assert.True(Math.Abs(values[i] - expected[i]) <= 1e-4 + (1.3e-6 * Math.Abs(expected[i])), $"[{i}]: {values[i]} vs {expected[i]}");
        }
    }
}
