using System;
using Xunit;

namespace GemsInjector.Kernels.Ilgpu.Tests;

/// <summary>
/// A kernel that cannot be built fails its first call with <see cref="IlgpuKernelCompileException"/> naming the kernel
/// and the device, and every later call the same way without compiling again; the device's other kernels still load.
/// </summary>
public sealed class KernelLoadFailureTests : IDisposable
{
    private readonly IlgpuDevice device = IlgpuDevice.Create(IlgpuDeviceKind.CpuSimulator);

    [Fact]
    public void A_failed_kernel_is_reported_by_name_and_never_compiled_twice()
    {
        var attempts = 0;
        object? slot = null;
        object Failing(IlgpuKernelLoader loader)
        {
            attempts++;
            throw new NotSupportedException("an intrinsic this backend lacks");
        }

        var first = Assert.Throws<IlgpuKernelCompileException>(() => device.Load(ref slot, "BrokenKernel<Const4>", Failing));
        var second = Assert.Throws<IlgpuKernelCompileException>(() => device.Load(ref slot, "BrokenKernel<Const4>", Failing));

        Assert.Equal(1, attempts);
        Assert.Same(first, second);
        Assert.Equal("BrokenKernel<Const4>", first.Kernel);
        Assert.IsType<NotSupportedException>(first.InnerException);
        Assert.Contains($"The kernel BrokenKernel<Const4> could not be compiled for {device}: NotSupportedException: an intrinsic this backend lacks", first.Message, StringComparison.Ordinal);
        Assert.False(device.HasCompiled("BrokenKernel"));

        object? other = null;
        var loaded = device.Load(ref other, "WorkingKernel", _ => new object());
        Assert.Same(loaded, other);
        Assert.True(device.HasCompiled("WorkingKernel"));
    }

    public void Dispose() => device.Dispose();
}
