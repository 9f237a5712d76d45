using System;
using System.Collections.Concurrent;
using System.IO;
using System.Reflection;
using GemsInjector.Kernels.Ilgpu;
using ILGPU;
using ILGPU.Backends.EntryPoints;
using ILGPU.Backends.PTX;
using ILGPU.Runtime;
using ILGPU.Runtime.Cuda;

namespace GemsInjector.Kernels.Ilgpu.Tests;

/// <summary>
/// SM_90 PTX of explicitly grouped kernels as the kernel precompiler writes it (<see cref="IlgpuDevice.CudaOptimization"/>,
/// PTX ISA 8.0), through one ILGPU context for the whole test run, as <see cref="KernelPrecompiler"/> compiles the shipped
/// archive: the methods kernels share are imported once, and each kernel and launch-bound pair is compiled once however
/// many tests read it.
/// </summary>
internal static class Sm90Ptx
{
    private static readonly object CompileGate = new();
    private static readonly Context SharedContext = Context.Create(b => b.Optimize(IlgpuDevice.CudaOptimization));
    private static readonly PTXBackend Backend = new(SharedContext, new CudaCapabilityContext(CudaArchitecture.SM_90), CudaArchitecture.SM_90,
        CudaInstructionSet.ISA_80, nvvmAPI: null);

    private static readonly ConcurrentDictionary<(MethodInfo Kernel, int? MaxThreads, int? MinGroups), Lazy<string>> Compiled = new();

    /// <summary>
    /// The PTX of <paramref name="kernel"/> (a closed method) under <paramref name="bounds"/> (none by default). A failed
    /// compile throws, again on every later call. With <paramref name="dumpName"/> and GEMS_PTX_DUMP_DIR set, the PTX is
    /// also written there as <paramref name="dumpName"/>.ptx (for ptxas by hand).
    /// </summary>
    public static string Of(MethodInfo kernel, KernelSpecialization bounds = default, string? dumpName = null)
    {
        string ptx = Compiled.GetOrAdd((kernel, bounds.MaxNumThreadsPerGroup, bounds.MinNumGroupsPerMultiprocessor),
            key => new Lazy<string>(() => Compile(key.Kernel, bounds))).Value;
        string? dump = Environment.GetEnvironmentVariable("GEMS_PTX_DUMP_DIR");
        if (dumpName is not null && !string.IsNullOrEmpty(dump))
        {
            Directory.CreateDirectory(dump);
            File.WriteAllText(Path.Combine(dump, dumpName + ".ptx"), ptx);
        }

        return ptx;
    }

    private static string Compile(MethodInfo kernel, KernelSpecialization bounds)
    {
        // One context, one compile at a time: test classes of other collections run on other threads.
        lock (CompileGate)
        {
            return ((PTXCompiledKernel)Backend.Compile(EntryPointDescription.FromExplicitlyGroupedKernel(kernel), bounds)).PTXAssembly;
        }
    }
}
