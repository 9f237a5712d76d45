using System;
using System.Reflection;
using ILGPU;
using ILGPU.Backends;
using ILGPU.Backends.EntryPoints;
using ILGPU.Runtime;

namespace GemsInjector.Kernels.Ilgpu;

/// <summary>
/// Loads the kernels of one accelerator: through the <see cref="KernelDiskCache"/> when the device has one (CUDA), through
/// ILGPU's own loader otherwise. Kernels with <see cref="SpecializedValue{T}"/> parameters are compiled by ILGPU once per
/// value at launch, a path ILGPU keeps to itself, so they always take ILGPU's loader.
/// </summary>
internal sealed partial class IlgpuKernelLoader
{
    private readonly Accelerator accelerator;

    /// <summary>Creates the loader.</summary>
    /// <param name="accelerator">The accelerator the kernels run on.</param>
    /// <param name="diskCache">The on-disk cache of compiled kernels, or <see langword="null"/> for none.</param>
    public IlgpuKernelLoader(Accelerator accelerator, KernelDiskCache? diskCache)
    {
        this.accelerator = accelerator;
        DiskCache = diskCache;
    }

    /// <summary>The on-disk cache in use, or <see langword="null"/>.</summary>
    public KernelDiskCache? DiskCache { get; }

    /// <summary>
    /// Loads <paramref name="method"/> and returns ILGPU's launcher for it, or <see langword="null"/> with
    /// <paramref name="direct"/> set when the kernel launches through <see cref="DirectCudaLaunch"/> instead (then ILGPU's
    /// launcher is never compiled).
    /// </summary>
    private TLauncher? Load<TLauncher>(MethodInfo method, KernelSpecialization specialization, Type[] parameterTypes, out DirectCudaLaunch? direct)
        where TLauncher : Delegate
    {
        direct = null;
        var entry = EntryPointDescription.FromExplicitlyGroupedKernel(method);
        Func<CompiledKernel> compile = () => accelerator.CompileKernel(entry, specialization);
        if (DiskCache is null || entry.HasSpecializedParameters)
        {
            // Without a cache, a 9.0 device still compiles first so that an sm_90a kernel can be prepared (Sm90aPtx).
            return !entry.HasSpecializedParameters && Sm90aPtx.Supported(accelerator)
                ? LoadPrepared<TLauncher>(compile(), parameterTypes, out direct)
                : accelerator.LoadKernel<TLauncher>(method, specialization, out _);
        }

        var compiled = DiskCache.GetOrCompile(accelerator.Context, entry, specialization, compile, out var fromFile);
        try
        {
            return LoadPrepared<TLauncher>(compiled, parameterTypes, out direct);
        }
        catch (Exception ex) when (fromFile)
        {
            // PTX read from a file that the driver refuses (an entry built for something this driver lacks): the kernel
            // is compiled here as without the file, and the file in the cache directory is replaced.
            RejectedFileError ??= $"{method.DeclaringType?.Name}.{method.Name}: the driver refused the cached PTX ({ex.GetType().Name}: {ex.Message}); compiled instead";
            return LoadPrepared<TLauncher>(DiskCache.Recompile(entry, specialization, compile), parameterTypes, out direct);
        }
    }

    /// <summary>
    /// Loads a compiled kernel (ILGPU's output, from the compiler or a cache file) through <see cref="Sm90aPtx"/>, the one
    /// place where PTX that needs sm_90a gets its header rewritten and its shared-memory limit raised, and where on a 9.0
    /// device every kernel's loads take the L2 prefetch size (<see cref="PtxL2Prefetch"/>).
    /// </summary>
    private TLauncher? LoadPrepared<TLauncher>(CompiledKernel compiled, Type[] parameterTypes, out DirectCudaLaunch? direct)
        where TLauncher : Delegate
    {
        var prepared = Sm90aPtx.Prepare(accelerator, compiled);
        var kernel = accelerator.LoadKernel(prepared);
        Sm90aPtx.AfterLoad(kernel, prepared);
        direct = DirectCudaLaunch.TryCreate(kernel, prepared, parameterTypes, accelerator.DefaultStream);
        if (direct is null)
        {
            return kernel.CreateLauncherDelegate<TLauncher>();
        }

        DirectLaunches++;
        return null;
    }

    /// <summary>Kernels loaded to launch through <see cref="DirectCudaLaunch"/> rather than ILGPU's launcher.</summary>
    public int DirectLaunches { get; private set; }

    /// <summary>The first kernel file the driver refused to load (then compiled instead), or <see langword="null"/>.</summary>
    public string? RejectedFileError { get; private set; }
}
