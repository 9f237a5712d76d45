using System;
using System.Linq;
using GemsInjector.Kernels.Cpu;
using GemsInjector.Kernels.Ilgpu;
using GemsInjector.Operators;
using TorchSharp;
using Xunit;

namespace GemsInjector.Tests;

/// <summary>
/// ILGPU compiles each kernel on its first call, so "a kernel fails to compile" happens in the middle of a worker's
/// work, not at enable. The operator then switches to its CPU kernel for good: the call that hit the failure still
/// returns the right result, the worker goes on, and the log and the status say which operator and why.
/// </summary>
[Collection(GemsStateCollection.Name)]
public sealed class KernelFallbackTests : IDisposable
{
    private readonly EnvironmentScope _environment = new EnvironmentScope()
        .Set("GEMS_INCLUDE", null).Set("GEMS_EXCLUDE", null).Set("GEMS_RECORD", null).Set("GEMS_RECORD_ONCE", null).Set("GEMS_DEVICE", "cpu");

    public KernelFallbackTests() => Gems.Disable();

    public void Dispose()
    {
        Gems.Disable();
        _environment.Dispose();
    }

    private static IlgpuKernelCompileException CompileFailure() =>
        new("Sgemm8x8F32<Const16,Const2>", "Cuda 'test GPU'", new InvalidOperationException("ptxas rejected the module"));

    [Fact]
    public void A_kernel_that_fails_to_compile_switches_its_operator_to_the_CPU_kernel_for_good_and_says_so()
    {
        var logger = new ListLogger();
        Gems.Enable(new GemsOptions { Logger = logger });
        var deviceCalls = 0;
        var failing = new KernelRegistration((BinaryKernel)((_, _) =>
        {
            deviceCalls++;
            throw CompileFailure();
        }), "CUDA");
        OperatorTable.Mm.Register(IlgpuBackends.WithCpuFallback(OperatorNames.Mm, failing, new KernelRegistration((BinaryKernel)CpuTensorKernels.Mm, "CPU")));

        using var a = torch.randn(5, 7);
        using var b = torch.randn(7, 3);
        using var expected = torch.mm(a, b);
        for (var call = 0; call < 3; call++)
        {
            using var result = Ops.Mm(a, b);
            Assert.True(result.allclose(expected, rtol: 1e-5, atol: 1e-5), $"call {call}: the CPU kernel's result was expected");
        }

        Assert.Equal(1, deviceCalls);
        var warning = Assert.Single(logger.Entries, entry => entry.Message.Contains("runs on the CPU kernels from now on", StringComparison.Ordinal));
        Assert.Equal(Microsoft.Extensions.Logging.LogLevel.Warning, warning.Level);
        Assert.Contains("mm: The kernel Sgemm8x8F32<Const16,Const2> could not be compiled for Cuda 'test GPU': InvalidOperationException: ptxas rejected the module", warning.Message, StringComparison.Ordinal);
        Assert.Equal(GemsState.Enabled, Gems.Status.State);
        Assert.Contains("mm: The kernel Sgemm8x8F32<Const16,Const2> could not be compiled", Gems.Status.Reason, StringComparison.Ordinal);
        Assert.Contains(OperatorNames.Mm, Gems.Status.OverriddenOperators);
    }

    [Fact]
    public void Other_exceptions_of_the_device_kernel_propagate_and_do_not_switch()
    {
        var deviceCalls = 0;
        var cpuCalls = 0;
        var wrapped = (UnaryKernel)FallbackKernel.Wrap<IlgpuKernelCompileException>(
            (UnaryKernel)(input =>
            {
                deviceCalls++;
                throw new ArgumentException("bad shape", nameof(input));
            }),
            (UnaryKernel)(input =>
            {
                cpuCalls++;
                return input;
            }),
            _ => throw new InvalidOperationException("must not switch"));

        using var x = torch.ones(2);
        Assert.Equal("input", Assert.Throws<ArgumentException>(() => wrapped(x)).ParamName);
        Assert.Throws<ArgumentException>(() => wrapped(x));
        Assert.Equal((2, 0), (deviceCalls, cpuCalls));
    }

    [Fact]
    public void A_void_in_place_kernel_is_wrapped_too_and_the_switch_is_reported_once()
    {
        var reports = 0;
        var cpuCalls = 0;
        var wrapped = (FusedAddNormKernel)FallbackKernel.Wrap<IlgpuKernelCompileException>(
            (FusedAddNormKernel)((_, _, _, _) => throw CompileFailure()),
            (FusedAddNormKernel)((_, _, _, _) => cpuCalls++),
            _ => reports++);

        using var x = torch.ones(2, 4);
        using var residual = torch.ones(2, 4);
        using var weight = torch.ones(4);
        for (var call = 0; call < 4; call++)
        {
            wrapped(x, residual, weight, 1e-6);
        }

        Assert.Equal((1, 4), (reports, cpuCalls));
    }

    [Fact]
    public void A_compile_failure_thrown_by_the_CPU_kernel_itself_propagates_instead_of_retrying()
    {
        var cpuCalls = 0;
        var wrapped = (UnaryKernel)FallbackKernel.Wrap<IlgpuKernelCompileException>(
            (UnaryKernel)(_ => throw CompileFailure()),
            (UnaryKernel)(_ =>
            {
                cpuCalls++;
                throw CompileFailure();
            }),
            _ => { });

        using var x = torch.ones(2);
        Assert.Throws<IlgpuKernelCompileException>(() => wrapped(x));
        Assert.Throws<IlgpuKernelCompileException>(() => wrapped(x));
        Assert.Equal(2, cpuCalls);
    }

    [Fact]
    public void Every_kernel_type_of_the_table_can_be_forwarded()
    {
        foreach (var (op, registration) in GemsKernelCatalog.ForCpu())
        {
            var forwarded = FallbackKernel.Wrap<IlgpuKernelCompileException>(registration.Kernel, registration.Kernel, _ => { });
            Assert.True(forwarded.GetType() == registration.Kernel.GetType(), op.Name);
        }
    }

    [Fact]
    public void Kernels_of_different_types_are_refused()
    {
        var error = Assert.Throws<ArgumentException>(() => FallbackKernel.Wrap<IlgpuKernelCompileException>(
            (UnaryKernel)(input => input), (BinaryKernel)((a, _) => a), _ => { }));
        Assert.Equal("cpu", error.ParamName);
    }
}
