using System;
using System.Globalization;
using System.Runtime.CompilerServices;
using ILGPU;
using ILGPU.Runtime;
using ILGPU.Runtime.Cuda;

namespace GemsInjector.GpuHarness;

/// <summary>
/// The least time the bench's timer gives any launch on this device: one group of one warp in which one thread copies
/// one float (op <c>launch</c>, category <c>floor</c>). A decode GEMV or decode attention launch does at least that much
/// (the launch, a first load answered, a store, the kernel's end) and besides must move its bytes through memory, which
/// no kernel does faster than the memory's peak (<see cref="MemoryPeakNote"/>). compare.py adds the two: a target that
/// needs less time than this floor plus the row's bytes at the peak is out of reach for a single launch, whatever its code.
/// Measured with the same timer, queue filler and warm-up as every bench row, in the same process.
/// </summary>
internal static class LaunchFloor
{
    private static readonly ConditionalWeakTable<Accelerator, Action<KernelConfig, ArrayView<float>, ArrayView<float>>> Loaded = new();

    /// <summary>A launch of the floor kernel: <c>y[0] = a[0]</c> from one group of one warp.</summary>
    public static Action Launch(Accelerator accelerator, ArrayView<float> a, ArrayView<float> y)
    {
        if (a.Length != 1 || y.Length != 1)
        {
            throw new ArgumentException($"The launch floor copies one float; got a of {a.Length} and y of {y.Length}.");
        }

        var kernel = Loaded.GetValue(accelerator, acc => acc.LoadStreamKernel<ArrayView<float>, ArrayView<float>>(CopyOne));
        var config = new KernelConfig(1, accelerator.WarpSize);
        return () => kernel(config, a, y);
    }

    private static void CopyOne(ArrayView<float> a, ArrayView<float> y)
    {
        if (Grid.GlobalIndex.X == 0)
        {
            y[0] = a[0];
        }
    }

    /// <summary>
    /// <c> memory_peak_gbps=N (memory clock M MHz, B-bit bus)</c> for a CUDA device: twice the memory clock (double data
    /// rate) times the bus width in bytes, the most bytes per second its memory can move; empty where the device does not
    /// report both (the CPU simulator, or a driver that leaves them 0).
    /// </summary>
    public static string MemoryPeakNote(Accelerator accelerator)
    {
        if (accelerator is not CudaAccelerator cuda || cuda.MemoryClockRate <= 0 || cuda.MemoryBusWidth <= 0)
        {
            return string.Empty;
        }

        // ILGPU 1.5 gives the clock in MHz (the driver's kHz divided by 1000: 3201 on an H200, as nvidia-smi's maximum).
        double gbps = 2.0 * cuda.MemoryClockRate * 1e6 * cuda.MemoryBusWidth / 8 / 1e9;
        return string.Create(CultureInfo.InvariantCulture,
            $" memory_peak_gbps={gbps:F0} (memory clock {cuda.MemoryClockRate} MHz, {cuda.MemoryBusWidth}-bit bus)");
    }
}
