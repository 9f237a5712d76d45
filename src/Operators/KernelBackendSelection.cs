using System;
using System.Collections.Generic;
using System.Linq;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace GemsInjector.Operators;

/// <summary>The kernels one <see cref="Gems.Enable(GemsOptions?)"/> puts in the table, and the device they run on.</summary>
/// <param name="Device">What the status reports: <c>cpu</c>, or <c>cuda (NVIDIA H100 ..., SM_90)</c>.</param>
/// <param name="Kernels">The kernel of each operator.</param>
/// <param name="FallbackReason">Why the device asked for is not the one used, or <see langword="null"/>.</param>
/// <param name="Starting">The device still being created, whose kernels wait for it on their first call; <see langword="null"/> when none.</param>
internal sealed record KernelBackend(string Device, IReadOnlyList<(Operator Operator, KernelRegistration Kernel)> Kernels, string? FallbackReason, DeviceStart? Starting = null);

/// <summary>
/// Turns the <c>GEMS_DEVICE</c> setting into kernels. ILGPU is touched only when a GPU device is asked for (or, for
/// <c>auto</c>, when a CUDA driver is installed), so enabling the CPU path costs no GPU probing.
/// </summary>
internal static class KernelBackendSelection
{
    public static KernelBackend Select(string device) => device switch
    {
        "cpu" => Cpu(fallbackReason: null),
        "auto" => CudaDriverIsInstalled() ? IlgpuBackends.AutoDetect() : Cpu(fallbackReason: null),

        // Said here, not from the background start: without a driver there is nothing to wait for.
        "cuda" when !CudaDriverIsInstalled() => Cpu("Device 'cuda' is not available (no CUDA driver: libcuda could not be loaded); using the CPU kernels instead."),
        _ => IlgpuBackends.Create(device),
    };

    internal static KernelBackend Cpu(string? fallbackReason)
    {
        FaultInjection.At(FaultPoint.CatalogBuild, GemsKernelCatalog.CpuBackend);
        return new(GemsKernelCatalog.CpuBackend, GemsKernelCatalog.ForCpu(), fallbackReason);
    }

    private static bool CudaDriverIsInstalled()
    {
        foreach (var name in new[] { "libcuda.so.1", "libcuda.so", "nvcuda.dll" })
        {
            if (NativeLibrary.TryLoad(name, out var handle))
            {
                NativeLibrary.Free(handle);
                return true;
            }
        }

        return false;
    }
}
