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

    private TLauncher Load<TLauncher>(MethodInfo method, KernelSpecialization specialization)
        where TLauncher : Delegate
    {
        var entry = EntryPointDescription.FromExplicitlyGroupedKernel(method);
        if (DiskCache is null || entry.HasSpecializedParameters)
        {
            return accelerator.LoadKernel<TLauncher>(method, specialization, out _);
        }

        Func<CompiledKernel> compile = () => accelerator.CompileKernel(entry, specialization);
        var compiled = DiskCache.GetOrCompile(accelerator.Context, entry, specialization, compile, out var fromFile);
        try
        {
            return accelerator.LoadKernel(compiled).CreateLauncherDelegate<TLauncher>();
        }
        catch (Exception ex) when (fromFile)
        {
            // PTX read from a file that the driver refuses (an entry built for something this driver lacks): the kernel
            // is compiled here as without the file, and the file in the cache directory is replaced.
            RejectedFileError ??= $"{method.DeclaringType?.Name}.{method.Name}: the driver refused the cached PTX ({ex.GetType().Name}: {ex.Message}); compiled instead";
            return accelerator.LoadKernel(DiskCache.Recompile(entry, specialization, compile)).CreateLauncherDelegate<TLauncher>();
        }
    }

    /// <summary>The first kernel file the driver refused to load (then compiled instead), or <see langword="null"/>.</summary>
    public string? RejectedFileError { get; private set; }
}
