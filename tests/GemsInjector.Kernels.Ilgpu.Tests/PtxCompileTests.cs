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

    [Fact]
    public void EveryKernelCompilesToPtxForSm90()
    {
        using var context = Context.Create(b => b.Optimize(OptimizationLevel.O2));
        using var backend = new PTXBackend(context, new CudaCapabilityContext(CudaArchitecture.SM_90),
            CudaArchitecture.SM_90, CudaInstructionSet.ISA_80, nvvmAPI: null);
        var failures = new List<string>();
        foreach (var method in KernelMethods())
        {
            try
            {
                var entry = EntryPointDescription.FromExplicitlyGroupedKernel(method);
                var compiled = (PTXCompiledKernel)backend.Compile(entry, default(KernelSpecialization));
                Assert.Contains(".entry", compiled.PTXAssembly, StringComparison.Ordinal);
            }
            catch (Exception ex)
            {
                failures.Add($"{method.DeclaringType!.Name}.{method.Name}: {ex.GetType().Name}: {ex.Message}");
            }
        }

        Assert.True(failures.Count == 0, string.Join(Environment.NewLine, failures));
    }
}
