using System;
using Xunit;

namespace GemsInjector.Kernels.Ilgpu.Tests;

/// <summary>
/// <see cref="IlgpuDevice.WarmUp"/> (run by the runtime's background device start) builds and launches its trivial kernel
/// once per device, and compiles nothing an operator uses.
/// </summary>
public sealed class WarmUpTests
{
    [Fact]
    public void Warming_up_compiles_the_trivial_kernel_once_and_nothing_else()
    {
        using var device = IlgpuDevice.Create(IlgpuDeviceKind.CpuSimulator);

        var first = device.WarmUp();
        var second = device.WarmUp();

        Assert.Equal([nameof(WarmUpKernels.Touch)], device.CompileTimes.Keys);
        Assert.True(first > TimeSpan.Zero);
        Assert.True(second > TimeSpan.Zero);
        Assert.True(device.HasCompiled(nameof(WarmUpKernels.Touch)));
    }

    [Fact]
    public void A_disposed_device_refuses_to_warm_up()
    {
        var device = IlgpuDevice.Create(IlgpuDeviceKind.CpuSimulator);
        device.Dispose();

        Assert.Throws<ObjectDisposedException>(() => device.WarmUp());
    }
}
