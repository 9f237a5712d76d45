using System;
using System.Collections.Generic;
using System.Linq;
using System.Reflection;
using GemsInjector.Kernels.Ilgpu;
using ILGPU;
using ILGPU.Backends.EntryPoints;
using ILGPU.Backends.PTX;
using ILGPU.Runtime;
using ILGPU.Runtime.Cuda;
using Xunit;

namespace GemsInjector.Kernels.Ilgpu.Tests;

/// <summary>Every [IlgpuKernel] method compiles to PTX for SM_90 without a GPU.</summary>
public sealed class PtxCompileTests
{
    public static IEnumerable<object[]> Kernels() =>
        KernelMethods().Select(m => new object[] { KernelPrecompiler.DisplayName(m) });

    /// <summary>Every kernel, generic ones once per listed variant (in the listed order): what the precompiler ships.</summary>
    internal static IEnumerable<MethodInfo> KernelMethods() => KernelPrecompiler.KernelMethods();

    [Fact]
    public void EveryGenericKernelListsItsVariants()
    {
        var unlisted = typeof(IlgpuDevice).Assembly.GetTypes()
            .SelectMany(t => t.GetMethods(BindingFlags.Static | BindingFlags.Public | BindingFlags.NonPublic))
            .Where(m => m.GetCustomAttribute<IlgpuKernelAttribute>() is not null && m.IsGenericMethodDefinition)
            .Where(m => !m.GetCustomAttributes<IlgpuKernelVariantAttribute>().Any())
            .Select(m => m.DeclaringType!.Name + "." + m.Name)
            .ToList();
        Assert.True(unlisted.Count == 0, "generic kernels without [IlgpuKernelVariant]: " + string.Join(", ", unlisted));
    }

    [Fact]
    public void KernelsAreFound() => Assert.True(KernelMethods().Count() >= 15);

    /// <summary>Exactly the emulated tensor-core bodies are simulator-only: left out of the PTX checks and the shipped archive.</summary>
    [Fact]
    public void OnlyEmulatedKernelsAreSimulatorOnly()
    {
        var kernels = typeof(IlgpuDevice).Assembly.GetTypes()
            .SelectMany(t => t.GetMethods(BindingFlags.Static | BindingFlags.Public | BindingFlags.NonPublic))
            .Select(m => (Method: m, Attribute: m.GetCustomAttribute<IlgpuKernelAttribute>()))
            .Where(k => k.Attribute is not null)
            .ToList();
        var wrong = kernels
            .Where(k => k.Attribute!.SimulatorOnly != k.Method.Name.EndsWith("Emulated", StringComparison.Ordinal))
            .Select(k => k.Method.DeclaringType!.Name + "." + k.Method.Name)
            .ToList();
        Assert.True(wrong.Count == 0, "SimulatorOnly must mark exactly the *Emulated kernels: " + string.Join(", ", wrong));
        Assert.Contains(kernels, k => k.Attribute!.SimulatorOnly);
        Assert.DoesNotContain(KernelMethods(), m => m.Name.EndsWith("Emulated", StringComparison.Ordinal));
    }

    /// <summary>
    /// A float16 kernel's PTX stays close to its bfloat16 twin's. A conversion that branches on the device (ILGPU keeps
    /// both arms of <c>CudaAsm.IsSupported</c>) made float16 PTX up to 4x larger, and the driver's JIT compiled every
    /// dead arm on each node's first call. Loads now have one form on every device; stores keep theirs (the CPU
    /// accelerator's float → Half truncates, and a branch-free exact rounding would cost every store ten instructions on
    /// the GPU), which is why a store-heavy small kernel's PTX still reaches 2x its twin.
    /// </summary>
    [Fact]
    public void Float16KernelsCarryNoDeadConversionCode()
    {
        using var context = Context.Create(b => b.Optimize(OptimizationLevel.O2));
        using var backend = Sm90Backend(context);
        var twins = KernelMethods()
            .Where(m => m.IsGenericMethod && m.GetGenericArguments().Contains(typeof(Float16Storage)))
            .Select(m => (Half: m, BFloat: m.GetGenericMethodDefinition().MakeGenericMethod(
                m.GetGenericArguments().Select(t => t == typeof(Float16Storage) ? typeof(BFloat16Storage) : t).ToArray())))
            .ToList();
        Assert.True(twins.Count >= 20, $"only {twins.Count} float16 kernels found");

        long halfTotal = 0, bfloatTotal = 0;
        var outliers = new List<string>();
        foreach (var (half, bfloat) in twins)
        {
            int halfSize = PtxOf(backend, half).Length, bfloatSize = PtxOf(backend, bfloat).Length;
            halfTotal += halfSize;
            bfloatTotal += bfloatSize;
            if (halfSize > 2.5 * bfloatSize)
            {
                outliers.Add($"{KernelPrecompiler.DisplayName(half)}: {halfSize} vs {bfloatSize} characters");
            }
        }

        Assert.True(outliers.Count == 0, "float16 PTX over 2.5x its bfloat16 twin: " + string.Join("; ", outliers));
        Assert.True(halfTotal <= 1.35 * bfloatTotal, $"float16 PTX {halfTotal} characters against bfloat16 {bfloatTotal}");
    }

    /// <summary>
    /// On CUDA a bfloat16 store rounds with <c>cvt.rn.bf16x2.f32</c>, not the integer rounding the CPU accelerator runs:
    /// the integer form cost the bfloat16 row kernels ~15% against their float16 twins on the H200 (layer_norm 2262 vs
    /// 2682 GB/s). Every row-vector kernel stores its outputs through <c>RowVectors.Pack</c>.
    /// </summary>
    [Fact]
    public void BFloat16RowKernelsRoundWithTheConversionInstruction()
    {
        using var context = Context.Create(b => b.Optimize(OptimizationLevel.O2));
        using var backend = Sm90Backend(context);
        var kernels = KernelMethods()
            .Where(m => m.DeclaringType == typeof(RowVector16Kernels) && m.IsGenericMethod && m.GetGenericArguments().Contains(typeof(BFloat16Storage)))
            .ToList();
        Assert.True(kernels.Count >= 4, $"only {kernels.Count} bfloat16 row-vector kernels found");
        foreach (var kernel in kernels)
        {
            Assert.True(PtxOf(backend, kernel).Contains("cvt.rn.bf16x2.f32", StringComparison.Ordinal), KernelPrecompiler.DisplayName(kernel));
        }
    }

    private static PTXBackend Sm90Backend(Context context) =>
        new(context, new CudaCapabilityContext(CudaArchitecture.SM_90), CudaArchitecture.SM_90, CudaInstructionSet.ISA_80, nvvmAPI: null);

    private static string PtxOf(PTXBackend backend, MethodInfo method) =>
        ((PTXCompiledKernel)backend.Compile(EntryPointDescription.FromExplicitlyGroupedKernel(method), default(KernelSpecialization))).PTXAssembly;

    [Fact]
    public void EveryKernelCompilesToPtxForSm90()
    {
        using var context = Context.Create(b => b.Optimize(OptimizationLevel.O2));
        using var backend = Sm90Backend(context);
        var failures = new List<string>();
        foreach (var method in KernelMethods())
        {
            try
            {
                Assert.Contains(".entry", PtxOf(backend, method), StringComparison.Ordinal);
            }
            catch (Exception ex)
            {
                failures.Add($"{method.DeclaringType!.Name}.{method.Name}: {ex.GetType().Name}: {ex.Message}");
            }
        }

        Assert.True(failures.Count == 0, string.Join(Environment.NewLine, failures));
    }
}
