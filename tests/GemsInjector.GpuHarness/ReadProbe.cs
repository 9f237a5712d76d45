using System;
using System.Runtime.CompilerServices;
using ILGPU;
using ILGPU.Runtime;

namespace GemsInjector.GpuHarness;

/// <summary>Four float32 lanes of the read probe: one 16-byte load from a 16-byte aligned view.</summary>
public struct ProbeQuad
{
    /// <summary>Lane 0.</summary>
    public float X;

    /// <summary>Lane 1.</summary>
    public float Y;

    /// <summary>Lane 2.</summary>
    public float Z;

    /// <summary>Lane 3.</summary>
    public float W;
}

/// <summary>
/// A kernel that only reads: the fastest this card reads a buffer of a given size in one launch, which is what a decode
/// GEMV (its weight) or decode attention (its K and V cache) must do at the least. compare.py sets each such row beside
/// the probe of its bytes: a target above the probe's rate at that size is out of reach for a single-launch kernel.
/// <para>
/// Shape: a fixed grid of <see cref="Groups"/> groups (one full wave of 256-thread groups at 2048 threads per SM on 132
/// SMs) sweeping the buffer together in a grid stride of 16-byte vectors, <see cref="LoadsInFlight"/> loads issued per
/// thread before any of them is summed. The loads past the end are clamped to the last vector (issued unconditionally:
/// a predicated load could make the compiler wait for one before the next) and count zero. Each group writes the sum of
/// what it read. The inputs are small integers, so every float32 partial sum is exact and the check is exact whatever
/// the order. Run 74 measured a first form (contiguous chunk per group, four loads): slower than our own GEMV.
/// </para>
/// </summary>
internal static class ReadProbe
{
    /// <summary>Threads per group on GPUs (the CPU simulator's groups are smaller).</summary>
    public const int GroupSize = 256;

    /// <summary>Groups in the grid.</summary>
    public const int Groups = 132 * 8;

    /// <summary>16-byte loads each thread issues before it sums them.</summary>
    public const int LoadsInFlight = 8;

    private static readonly ConditionalWeakTable<Accelerator, Action<KernelConfig, ArrayView<ProbeQuad>, ArrayView<float>>> Loaded = new();

    /// <summary>
    /// Threads per group of the last launch. The harness checks a case after launching it, so the reference reads the
    /// group size the launch chose for this device.
    /// </summary>
    public static int LaunchedGroupSize { get; private set; } = GroupSize;

    /// <summary>The group that reads the vector at this index (the kernel's grid stride, as the reference sees it).</summary>
    public static int GroupOf(long vector) => (int)(vector % ((long)Groups * LaunchedGroupSize) / LaunchedGroupSize);

    /// <summary>A launch of the probe over <paramref name="data"/> (a whole number of vectors) into one sum per group.</summary>
    public static Action Launch(Accelerator accelerator, ArrayView<float> data, ArrayView<float> groupSums)
    {
        if (data.Length % 4 != 0 || data.Length == 0 || groupSums.Length != Groups)
        {
            throw new ArgumentException($"The read probe needs a positive multiple of 4 floats and {Groups} sums; got {data.Length} and {groupSums.Length}.");
        }

        var kernel = Loaded.GetValue(accelerator, acc => acc.LoadStreamKernel<ArrayView<ProbeQuad>, ArrayView<float>>(Kernel));
        var quads = data.Cast<ProbeQuad>();
        LaunchedGroupSize = Math.Min(GroupSize, accelerator.MaxNumThreadsPerGroup);
        var config = new KernelConfig(Groups, LaunchedGroupSize, new SharedMemoryConfig());
        return () => kernel(config, quads, groupSums);
    }

    private static float Sum(ProbeQuad q, bool inside) => inside ? (q.X + q.Y) + (q.Z + q.W) : 0f;

    private static void Kernel(ArrayView<ProbeQuad> data, ArrayView<float> groupSums)
    {
        long stride = (long)Grid.DimX * Group.DimX;
        long n = data.Length;
        long last = n - 1;
        float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
        for (long i = (long)Grid.IdxX * Group.DimX + Group.IdxX; i < n; i += LoadsInFlight * stride)
        {
            long i1 = i + stride, i2 = i + 2 * stride, i3 = i + 3 * stride, i4 = i + 4 * stride, i5 = i + 5 * stride, i6 = i + 6 * stride, i7 = i + 7 * stride;
            var a0 = data[i];
            var a1 = data[i1 < n ? i1 : last];
            var a2 = data[i2 < n ? i2 : last];
            var a3 = data[i3 < n ? i3 : last];
            var a4 = data[i4 < n ? i4 : last];
            var a5 = data[i5 < n ? i5 : last];
            var a6 = data[i6 < n ? i6 : last];
            var a7 = data[i7 < n ? i7 : last];
            s0 += Sum(a0, true) + Sum(a4, i4 < n);
            s1 += Sum(a1, i1 < n) + Sum(a5, i5 < n);
            s2 += Sum(a2, i2 < n) + Sum(a6, i6 < n);
            s3 += Sum(a3, i3 < n) + Sum(a7, i7 < n);
        }

        float sum = (s0 + s1) + (s2 + s3);
        for (int offset = Warp.WarpSize / 2; offset > 0; offset /= 2)
        {
            sum += Warp.ShuffleDown(sum, offset);
        }

        // Sized for the smallest warp (the CPU simulator's), not for 32 lanes.
        var warpSums = SharedMemory.Allocate<float>(GroupSize);
        if (Warp.IsFirstLane)
        {
            warpSums[Warp.WarpIdx] = sum;
        }

        Group.Barrier();
        if (Group.IdxX == 0)
        {
            float total = 0;
            for (int w = 0; w < Group.DimX / Warp.WarpSize; w++)
            {
                total += warpSums[w];
            }

            groupSums[Grid.IdxX] = total;
        }
    }
}
