using System.Runtime.CompilerServices;
using ILGPU;

namespace GemsInjector.Kernels.Ilgpu;

/// <summary>Where a split-K reduce puts one finished sum: the launch's epilogue (bias, scale, rounding) and store.</summary>
internal interface ISplitKOutput
{
    /// <summary>Writes output element <paramref name="e"/> (row <paramref name="row"/>, column <paramref name="col"/>) from the sum of its partials.</summary>
    void Store(long e, int row, int col, float sum);
}

/// <summary>
/// The body of the split-K reduce launches (<c>GemvReduce16</c>, <c>GemvReduceF32</c>): out[e] = Σ_s partial[s · plane + e].
/// </summary>
internal static class SplitKReduction
{
    /// <summary>Most partials one lane requests before it adds the first (so a lane waits one memory round trip per four splits).</summary>
    private const int LoadsInFlight = 4;

    /// <summary>Most lanes that share one output element.</summary>
    private const int MaxLanesPerOutput = 8;

    /// <summary>
    /// Lanes that share one output element: enough that each requests at most <see cref="LoadsInFlight"/> partials (up to
    /// <see cref="MaxLanesPerOutput"/> and the warp). With one lane per element, 16 splits cost a lane four dependent
    /// round trips; the 1–8-row products (32 K outputs, too few threads to hide them) spent ~4.5 µs in the reduce (ncu,
    /// H200). The launch must have <c>outputs · LanesPerOutput</c> threads (<see cref="Threads"/>). A function of the split
    /// count alone, so the summation order, and with it the result's bits, depends only on the shape.
    /// </summary>
    public static int LanesPerOutput(int splits, int warpSize) => 1 << LanesPerOutputLog2(splits, warpSize);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static int LanesPerOutputLog2(int splits, int warpSize)
    {
        int log2 = 0;
        while ((1 << log2) < MaxLanesPerOutput && (2 << log2) <= warpSize && ((1 << log2) * LoadsInFlight) < splits)
        {
            log2++;
        }

        return log2;
    }

    /// <summary>Threads the reduce of <paramref name="outputs"/> elements wants: one per lane of each element.</summary>
    public static long Threads(long outputs, int splits, int warpSize) => outputs * LanesPerOutput(splits, warpSize);

    /// <summary>
    /// Grid-stride loop over the <paramref name="plane"/> output elements of an [M, <paramref name="n"/>] product. Lane
    /// <c>j</c> of an element's <c>L</c> lanes adds splits j, j + L, j + 2L, … in that order, then the lanes add their sums in
    /// a fixed butterfly, and the element's first lane stores the total. Whole warps stay in the loop until the last
    /// element (the butterfly's shuffles need every lane of the warp).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Reduce<TOutput>(ArrayView<float> partial, long plane, int n, int splits, ref TOutput output)
        where TOutput : struct, ISplitKOutput
    {
        int lanesLog2 = LanesPerOutputLog2(splits, Warp.WarpSize);
        int lanes = 1 << lanesLog2;
        long threads = plane << lanesLog2;
        long warpThreads = (threads + Warp.WarpSize - 1) / Warp.WarpSize * Warp.WarpSize;
        long stride = (long)Grid.DimX * Group.DimX;
        for (long t = Grid.GlobalIndex.X; t < warpThreads; t += stride)
        {
            long e = t >> lanesLog2;
            int first = (int)t & (lanes - 1);
            float sum = e < plane ? LaneSum(partial, plane, e, first, lanes, splits) : 0f;
            for (int mask = 1; mask < lanes; mask <<= 1)
            {
                sum += Warp.ShuffleXor(sum, mask);
            }

            if (first == 0 && e < plane)
            {
                int row = Row(e, plane, n);
                output.Store(e, row, (int)(e - ((long)row * n)), sum);
            }
        }
    }

    /// <summary>Σ partial[s · plane + e] for s = first, first + step, … below splits, in that order, four loads requested at a time.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float LaneSum(ArrayView<float> partial, long plane, long e, int first, int step, int splits)
    {
        float sum = 0f;
        long stepPlane = step * plane;
        int s = first;
        for (; s + ((LoadsInFlight - 1) * step) < splits; s += LoadsInFlight * step)
        {
            long at = (s * plane) + e;
            float p0 = partial[at];
            float p1 = partial[at + stepPlane];
            float p2 = partial[at + (2 * stepPlane)];
            float p3 = partial[at + (3 * stepPlane)];
            sum += p0;
            sum += p1;
            sum += p2;
            sum += p3;
        }

        for (; s < splits; s += step)
        {
            sum += partial[(s * plane) + e];
        }

        return sum;
    }

    /// <summary>Row of element <paramref name="e"/> of an [M, <paramref name="n"/>] plane: a 32-bit division when the plane fits (a 64-bit one is a long call sequence on the GPU).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static int Row(long e, long plane, int n) => plane <= int.MaxValue ? (int)e / n : (int)(e / n);
}
