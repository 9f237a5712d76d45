using System;
using System.Runtime.CompilerServices;
using ILGPU;

namespace GemsInjector.Kernels.Ilgpu;

/// <summary>
/// The split-K reduce: its per-element part (shared by the reduce launches <c>GemvReduce16</c>, <c>GemvReduceF32</c>
/// and the products that reduce in place), and the in-place form (<see cref="SplitKReduce.Fused"/>): every group writes
/// its split's partials of one output tile, takes a ticket for the tile, and the group that takes the last one sums the
/// tile's partials in split order with the launched reduce's arithmetic (so C's bits do not depend on the form).
/// </summary>
internal static class SplitKReduction
{
    /// <summary>
    /// Σ_s partial[s · plane + e] for s = 0 .. splits − 1, added in that order (so the result does not depend on how the
    /// loads are grouped). Four loads are requested before the first of them is added: a reduce thread otherwise waits
    /// one memory round trip per split (ncu, H200: 59% of the reduce's samples on that wait).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Sum(ArrayView<float> partial, long plane, long e, int splits)
    {
        float sum = 0f;
        int s = 0;
        for (; s + 4 <= splits; s += 4)
        {
            long at = (s * plane) + e;
            float p0 = partial[at];
            float p1 = partial[at + plane];
            float p2 = partial[at + (2 * plane)];
            float p3 = partial[at + (3 * plane)];
            sum += p0;
            sum += p1;
            sum += p2;
            sum += p3;
        }

        for (; s < splits; s++)
        {
            sum += partial[(s * plane) + e];
        }

        return sum;
    }

    /// <summary>
    /// Σ_s partial4[s · plane4 + r] per component for s = 0 .. splits − 1, added in split order as <see cref="Sum"/> does
    /// (the same bits). A step writes its 8 loads before any add, the last step too, so a split count short of a multiple of
    /// 8 (5, 7, 13) costs one more step, not one round trip per split. (ptxas, local 13.0, issues 6 of them back to back and
    /// the last 2 after the first sum, at 44 registers.)
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Float4 SumRun(ArrayView<Float4> partial4, long plane4, long r, int splits)
    {
        var sum = default(Float4);
        for (int s = 0; s < splits; s += 8)
        {
            long at = (s * plane4) + r;
            int left = splits - s;

            // Every load is issued (a missing split's load reads the first split's vector again: an L1 hit) and only the
            // sums select; predicated loads into zeroed registers made ptxas reuse those registers and wait between loads.
            var p0 = partial4[at];
            var p1 = partial4[at + (left > 1 ? plane4 : 0)];
            var p2 = partial4[at + (left > 2 ? 2 * plane4 : 0)];
            var p3 = partial4[at + (left > 3 ? 3 * plane4 : 0)];
            var p4 = partial4[at + (left > 4 ? 4 * plane4 : 0)];
            var p5 = partial4[at + (left > 5 ? 5 * plane4 : 0)];
            var p6 = partial4[at + (left > 6 ? 6 * plane4 : 0)];
            var p7 = partial4[at + (left > 7 ? 7 * plane4 : 0)];
            sum = Plus(sum, p0);
            sum = left > 1 ? Plus(sum, p1) : sum;
            sum = left > 2 ? Plus(sum, p2) : sum;
            sum = left > 3 ? Plus(sum, p3) : sum;
            sum = left > 4 ? Plus(sum, p4) : sum;
            sum = left > 5 ? Plus(sum, p5) : sum;
            sum = left > 6 ? Plus(sum, p6) : sum;
            sum = left > 7 ? Plus(sum, p7) : sum;
        }

        return sum;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Float4 Plus(Float4 a, Float4 b) => new() { X = a.X + b.X, Y = a.Y + b.Y, Z = a.Z + b.Z, W = a.W + b.W };

    /// <summary>Row of element <paramref name="e"/> of an [M, <paramref name="n"/>] plane: a 32-bit division when the plane fits (a 64-bit one is a long call sequence on the GPU).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static int Row(long e, long plane, int n) => plane <= int.MaxValue ? (int)e / n : (int)(e / n);

    /// <summary>
    /// Most dependent L2 round trips a thread of a tile's last group may wait on for <see cref="SplitKReduce.Fused"/> to
    /// reduce in place; a bigger tile share keeps the launch. H200, same call as the launched reduce: at 2 rounds (the wide
    /// [K, N] body at 1 and 2 rows) the products ran 2–3% faster in place (Runs 41–42), at 4 rounds (4 rows) 3% slower
    /// (Run 42) and at 8 rounds (8 rows; the [N, K] kernel at 2 rows) 2–10% slower (Run 40): one SM's serial tail then
    /// outweighs the saved launch (~3 µs).
    /// </summary>
    public const int MaxFusedRounds = 2;

    /// <summary>
    /// Dependent L2 round trips of one thread of a tile's last group: its share of the tile's output elements inside M × N
    /// (<paramref name="tileElements"/> over <paramref name="groupSize"/> threads), each <see cref="Sum"/>'s rounds of four
    /// loads (the latency-bound part of the in-place reduce: one group sums what the launched reduce spreads over the GPU).
    /// </summary>
    public static long LastGroupRounds(long tileElements, int groupSize, int splits) =>
        ((tileElements + groupSize - 1) / groupSize) * ((splits + 3) / 4);

    /// <summary>
    /// Every thread of a group calls this once, after the group wrote its partials of the tile that
    /// <paramref name="ticket"/> counts: true in every thread of the group that arrives last of
    /// <paramref name="arrivals"/>, which has then reset the ticket to 0 (kernels on one stream run in order, so the next
    /// launch finds it zero) and may read every group's partials of the tile.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static bool ArriveLast(ArrayView<int> tickets, int ticket, int arrivals)
    {
        var last = SharedMemory.Allocate<int>(1);

        // Each thread's partial stores are visible device-wide before the group's ticket is taken.
        MemoryFence.DeviceLevel();
        Group.Barrier();
        if (Group.IdxX == 0)
        {
            bool isLast = Atomic.Add(ref tickets[ticket], 1) == arrivals - 1;
            if (isLast)
            {
                tickets[ticket] = 0;
            }

            last[0] = isLast ? 1 : 0;
        }

        Group.Barrier();
        bool arrivedLast = last[0] != 0;
        if (arrivedLast)
        {
            // Acquire: the other groups' partials, not lines this SM's L1 may hold from before.
            MemoryFence.DeviceLevel();
        }

        return arrivedLast;
    }

    /// <summary>
    /// The in-place reduce of a split-K 16-bit product (every thread of the group calls it after writing its partials):
    /// when this group arrives last at its tile (<see cref="ArriveLast"/>), its threads finish rows
    /// [<paramref name="row0"/>, <paramref name="row0"/> + <paramref name="tileRows"/>) × columns [<paramref name="col0"/>,
    /// <paramref name="col0"/> + <paramref name="tileCols"/>) inside M × N, consecutive threads on consecutive columns.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void FinishTile(ArrayView<int> tickets, int ticket, ArrayView<float> partial, ArrayView<ushort> bias, ArrayView<ushort> c, HalfGemvShape g,
        int row0, int tileRows, int col0, int tileCols, int bf16)
    {
        if (!ArriveLast(tickets, ticket, g.Splits))
        {
            return;
        }

        for (int i = Group.IdxX; i < tileRows * tileCols; i += Group.DimX)
        {
            int row = row0 + (i / tileCols);
            int col = col0 + (i % tileCols);
            if (row < g.M && col < g.N)
            {
                long e = ((long)row * g.N) + col;
                c[e] = HalfGemvKernels.Epilogue(bias, g, row, col, Sum(partial, (long)g.M * g.N, e, g.Splits), bf16);
            }
        }
    }

    /// <summary>
    /// Dependent L2 round trips of one thread of a tile's last group under <see cref="FinishTileVectors"/>: its share of the
    /// tile's M × <paramref name="tileCols"/> / 4 vectors, each <see cref="SumRun"/>'s steps of eight loads.
    /// </summary>
    public static long LastGroupVectorRounds(int m, int tileCols, int groupSize, int splits) =>
        ((((long)m * (tileCols >> 2)) + groupSize - 1) / groupSize) * ((splits + 7) / 8);

    /// <summary>
    /// The in-place reduce of a split-K 16-bit product whose tiles span all M rows (every thread of the group calls it
    /// after writing its partials): when this group arrives last at its tile, its threads finish rows [0, M) × columns
    /// [<paramref name="col0"/>, <paramref name="col0"/> + <paramref name="tileCols"/>) inside N as 4-column vectors,
    /// consecutive threads on consecutive vectors, each vector's splits requested before the first add
    /// (<see cref="SumRun"/>: the launched reduce's order, so its bits). Needs N % 4 = 0 and 16-byte aligned partials.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void FinishTileVectors(ArrayView<int> tickets, int ticket, ArrayView<float> partial, ArrayView<ushort> bias, ArrayView<ushort> c, HalfGemvShape g,
        int col0, int tileCols, int bf16)
    {
        if (!ArriveLast(tickets, ticket, g.Splits))
        {
            return;
        }

        int rowVectors = tileCols >> 2;
        var partial4 = partial.Cast<Float4>();
        long plane4 = ((long)g.M * g.N) >> 2;
        for (int v = Group.IdxX; v < g.M * rowVectors; v += Group.DimX)
        {
            int row = v / rowVectors;
            int col = col0 + ((v % rowVectors) << 2);
            if (col < g.N)
            {
                long e = ((long)row * g.N) + col;
                var sum = SumRun(partial4, plane4, e >> 2, g.Splits);
                c[e] = HalfGemvKernels.Epilogue(bias, g, row, col, sum.X, bf16);
                c[e + 1] = HalfGemvKernels.Epilogue(bias, g, row, col + 1, sum.Y, bf16);
                c[e + 2] = HalfGemvKernels.Epilogue(bias, g, row, col + 2, sum.Z, bf16);
                c[e + 3] = HalfGemvKernels.Epilogue(bias, g, row, col + 3, sum.W, bf16);
            }
        }
    }
}

/// <summary>
/// How a split-K 16-bit product sums its splits (<c>GEMS_SPLITK_REDUCE</c>, read once per process): a second launch
/// (<see cref="Launch"/>), the last group of each output tile in the product itself where that is cheap
/// (<see cref="Fused"/>), or — the default — the tile's thread-block cluster wherever the product has a cluster kernel
/// (<see cref="Cluster"/>). <see cref="Fused"/> is not the default: it gains on its own products while the other split
/// products of such a process, whose kernels are unchanged, measured 3–7% slower (H200 Runs 42–65; cause not found).
/// The cluster form showed that effect too while the 64-row products still launched their reduce; since they sum in
/// their own clusters it is gone (Run 96: every bystander within ±1%).
/// </summary>
internal enum SplitKReduce
{
    /// <summary><see cref="HalfGemvKernels.GemvReduce16"/> (or the small-M kernels' reduce) after the product (<c>launch</c>; the default before H200 Run 87).</summary>
    Launch,

    /// <summary>
    /// <c>fused</c>: in the product (tickets per output tile, the last group sums: <see cref="SplitKReduction.FinishTile"/>)
    /// where a last group's thread waits on at most <see cref="SplitKReduction.MaxFusedRounds"/> L2 round trips, else the
    /// launch.
    /// </summary>
    Fused,

    /// <summary><c>fused-all</c>: in the product whatever the tile share (to measure the round-trip limit of <see cref="Fused"/>).</summary>
    FusedAll,

    /// <summary>
    /// <c>cluster</c>, unset and any other value (the default): the splits of a tile run as one thread-block cluster and sum
    /// in distributed shared memory (<see cref="ClusterReduction"/>) where a product has a cluster kernel — the small-M
    /// wgmma kernel's 64-column tiles (17–64 rows, 9–16 of a [K, N] weight; default since H200 Run 87) and the wide [K, N]
    /// skinny body (3–8 rows; since Run 96: +8% bfloat16, +15% float16 at 4 and 8 × 4096²) — its plan's splits are a
    /// cluster size and the device is compute capability 9.0; small-M wgmma plans of up to 16 rows with another split count
    /// sum in their own launch (<see cref="WgmmaSkinnyLaunch.SumsSplitsInLaunch"/>, since Run 140); else the launch.
    /// </summary>
    Cluster,
}

/// <summary>The <c>GEMS_SPLITK_REDUCE</c> setting.</summary>
internal static class SplitKReduceSettings
{
    private static readonly Lazy<SplitKReduce> FromVariable = new(() => Parse(Environment.GetEnvironmentVariable("GEMS_SPLITK_REDUCE")));

    /// <summary>The form the environment names (read once per process).</summary>
    public static SplitKReduce FromEnvironment() => FromVariable.Value;

    /// <summary><c>launch</c> / <c>fused</c> / <c>fused-all</c> (any case, trimmed) select those forms; anything else, unset and <c>cluster</c> included, <see cref="SplitKReduce.Cluster"/>.</summary>
    public static SplitKReduce Parse(string? value) => value?.Trim().ToLowerInvariant() switch
    {
        "launch" => SplitKReduce.Launch,
        "fused" => SplitKReduce.Fused,
        "fused-all" => SplitKReduce.FusedAll,
        _ => SplitKReduce.Cluster,
    };
}
