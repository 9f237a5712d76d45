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
/// SMs). Group g reads the g-th contiguous chunk of 16-byte vectors, its threads side by side (coalesced), four loads
/// issued before their sums, and writes the sum of what it read. Chunks rather than a grid stride so that which vectors a
/// group sums does not depend on the group size (the CPU simulator's groups are smaller). The inputs are small integers,
/// so every float32 partial sum is exact and the check is exact whatever the order.
/// </para>
/// </summary>
internal static class ReadProbe
{
    /// <summary>Threads per group on GPUs.</summary>
    public const int GroupSize = 256;

    /// <summary>Groups in the grid.</summary>
    public const int Groups = 132 * 8;

    private static readonly ConditionalWeakTable<Accelerator, Action<KernelConfig, ArrayView<ProbeQuad>, ArrayView<float>, long>> Loaded = new();

    /// <summary>16-byte vectors per group's chunk for a buffer of this many vectors.</summary>
    public static long ChunkVectors(long vectors) => (vectors + Groups - 1) / Groups;

    /// <summary>A launch of the probe over <paramref name="data"/> (a whole number of vectors) into one sum per group.</summary>
    public static Action Launch(Accelerator accelerator, ArrayView<float> data, ArrayView<float> groupSums)
    {
        if (data.Length % 4 != 0 || groupSums.Length != Groups)
        {
            throw new ArgumentException($"The read probe needs a multiple of 4 floats and {Groups} sums; got {data.Length} and {groupSums.Length}.");
        }

        var kernel = Loaded.GetValue(accelerator, acc => acc.LoadStreamKernel<ArrayView<ProbeQuad>, ArrayView<float>, long>(Kernel));
        var quads = data.Cast<ProbeQuad>();
        long chunk = ChunkVectors(quads.Length);
        var config = new KernelConfig(Groups, Math.Min(GroupSize, accelerator.MaxNumThreadsPerGroup), new SharedMemoryConfig());
        return () => kernel(config, quads, groupSums, chunk);
    }

    private static void Kernel(ArrayView<ProbeQuad> data, ArrayView<float> groupSums, long chunk)
    {
        long stride = Group.DimX;
        long begin = Grid.IdxX * chunk;
        long end = begin + chunk < data.Length ? begin + chunk : data.Length;
        long i = begin + Group.IdxX;
        float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
        for (; i + 3 * stride < end; i += 4 * stride)
        {
            var a = data[i];
            var b = data[i + stride];
            var c = data[i + 2 * stride];
            var d = data[i + 3 * stride];
            s0 += (a.X + a.Y) + (a.Z + a.W);
            s1 += (b.X + b.Y) + (b.Z + b.W);
            s2 += (c.X + c.Y) + (c.Z + c.W);
            s3 += (d.X + d.Y) + (d.Z + d.W);
        }

        for (; i < end; i += stride)
        {
            var a = data[i];
            s0 += (a.X + a.Y) + (a.Z + a.W);
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
