using System.Runtime.CompilerServices;
using ILGPU;

namespace GemsInjector.Kernels.Ilgpu;

/// <summary>
/// topk over the last dimension (largest first, sorted; ties by lower index; NaN counts as the largest, ±0 as equal, as
/// torch) by radix selection, one group per row, for k up to <see cref="MaxK"/>. Each element gets an unsigned key whose
/// order is the value order (sign-magnitude bits flipped; every NaN the top key, -0 the key of +0): 32 bits for float32,
/// 16 for the 16-bit formats. Each pass counts the row's keys that match the digits chosen so far into 256 bins of the
/// next 8 bits (one histogram per warp in shared memory, so that lanes of different warps do not contend), and picks the
/// bin holding the k-th largest key; after 4 (float32) or 2 passes over the row — instead of one pass per k — the k-th
/// largest key T and the number of elements equal to T still to take are known. A last pass gathers the keys above T
/// and the first of those equal to T in index order (when T has more copies than are taken, each warp's segment of the
/// row in order, after a prefix over the warps' counts of copies), and each of the k candidates is placed by counting
/// the candidates before it. Values are copied from the input bits.
/// </summary>
internal static class TopKReductionKernels
{
    /// <summary>Largest k (the candidates live in shared memory); larger k take <see cref="RowKernels.TopKF32"/> / <see cref="HalfRowKernels.TopK16"/>.</summary>
    public const int MaxK = 1024;

    /// <summary>Largest group (one 256-bin histogram per warp).</summary>
    public const int MaxGroup = 512;

    private const int Bins = 256;

    /// <summary>Warps of the largest group on CUDA (the simulator's groups of 16 have 4).</summary>
    public const int MaxWarps = MaxGroup / 32;

    /// <summary>The bits of element <paramref name="index"/> (16-bit formats zero-extended).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static uint Bits(ArrayView<uint> x32, ArrayView<ushort> x16, long index, int format) =>
        format == ReductionKernels.Float32Format ? x32[index] : x16[index];

    /// <summary>The order-preserving key of an element's <paramref name="bits"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static uint KeyOf(uint bits, int format)
    {
        if (format == ReductionKernels.Float32Format)
        {
            uint u = bits;
            return (u & 0x7fffffffu) > 0x7f800000u ? 0xffffffffu : u == 0x80000000u ? 0x80000000u : (u & 0x80000000u) != 0 ? ~u : u | 0x80000000u;
        }

        uint h = bits;
        uint infinity = format != 0 ? 0x7f80u : 0x7c00u;
        return (h & 0x7fffu) > infinity ? 0xffffu : h == 0x8000u ? 0x8000u : (h & 0x8000u) != 0 ? ~h & 0xffffu : h | 0x8000u;
    }

    /// <summary>The order-preserving key of element <paramref name="index"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static uint Key(ArrayView<uint> x32, ArrayView<ushort> x16, long index, int format) => KeyOf(Bits(x32, x16, index, format), format);

    /// <summary>
    /// In warp 0: the bin, from the top, in which the running count of <paramref name="total"/> reaches
    /// <paramref name="remaining"/>, into state[0], and how many of that bin are still to take into state[1].
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void SelectBin(ArrayView<int> total, int remaining, ArrayView<int> state)
    {
        int lane = Warp.LaneIdx;
        int width = Warp.WarpSize;
        int per = Bins / width;
        int own = 0;
        for (int j = 0; j < per; j++)
        {
            own += total[lane * per + j];
        }

        // From-the-top inclusive count: this lane's bins and every higher lane's.
        int upTo = own;
        for (int o = 1; o < width; o <<= 1)
        {
            // An explicit source lane kept inside the warp (the simulator rejects shuffles from outside it).
            bool inside = lane + o < width;
            int v = Warp.Shuffle(upTo, inside ? lane + o : lane);
            upTo += inside ? v : 0;
        }

        int above = upTo - own;
        if (above < remaining && remaining <= upTo)
        {
            int count = above;
            for (int j = per - 1; j >= 0; j--)
            {
                int n = total[lane * per + j];
                if (count + n >= remaining)
                {
                    state[0] = lane * per + j;
                    state[1] = remaining - count;
                    break;
                }

                count += n;
            }
        }
    }

    /// <summary>Counts <paramref name="key"/> into its warp's histogram when its digits above <paramref name="shift"/> + 8 match the threshold's.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Count(ArrayView<int> hist, uint key, bool first, int high, int shift, uint threshold)
    {
        if (first || (key >> high) == (threshold >> high))
        {
            Atomic.Add(ref hist[(Warp.WarpIdx * Bins) + (int)((key >> shift) & 0xffu)], 1);
        }
    }

    /// <summary>
    /// Takes a key above the threshold, and one equal to it when every copy is taken (<paramref name="someTies"/> false);
    /// returns 1 for a copy of the threshold (counted for the in-order walk), else 0.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static int Gather(ArrayView<uint> candidateKey, ArrayView<int> candidateIndex, ArrayView<int> state, uint key, int index, uint threshold, bool someTies)
    {
        if (key > threshold || (!someTies && key == threshold))
        {
            Take(candidateKey, candidateIndex, state, key, index);
        }

        return key == threshold ? 1 : 0;
    }

    /// <summary>
    /// One round of a warp's in-order walk over its segment: the lanes holding a copy of the threshold (index
    /// <paramref name="index"/> below <paramref name="end"/>) take it while fewer than <paramref name="remaining"/> are
    /// taken, in lane order; returns the copies counted so far, the same in every lane.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static int WalkRound(ArrayView<uint> candidateKey, ArrayView<int> candidateIndex, ArrayView<int> state, uint key, int index, int end, uint threshold, int remaining, int taken)
    {
        int lane = Warp.LaneIdx;
        int ws = Warp.WarpSize;
        int tie = index < end && key == threshold ? 1 : 0;
        int upTo = tie;
        for (int o = 1; o < ws; o <<= 1)
        {
            // An explicit source lane kept inside the warp (the simulator rejects shuffles from outside it).
            bool inside = lane >= o;
            int v = Warp.Shuffle(upTo, inside ? lane - o : lane);
            upTo += inside ? v : 0;
        }

        if (tie != 0 && taken + upTo - 1 < remaining)
        {
            Take(candidateKey, candidateIndex, state, key, index);
        }

        return taken + Warp.Shuffle(upTo, ws - 1);
    }

    /// <summary>Adds a candidate in the next free slot (the slots' order does not matter: each candidate is placed by rank).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Take(ArrayView<uint> candidateKey, ArrayView<int> candidateIndex, ArrayView<int> state, uint key, int index)
    {
        int slot = Atomic.Add(ref state[2], 1);
        candidateKey[slot] = key;
        candidateIndex[slot] = index;
    }

    /// <summary>
    /// topk of each row: values[row, 0..k) and indices[row, 0..k). <c>x32</c> / <c>v32</c> are the float32 input and
    /// values as bits, <c>x16</c> / <c>v16</c> the 16-bit ones (the views of the other format are not read). The group
    /// size must be a multiple of the warp, at most <see cref="MaxGroup"/>; 1 ≤ k ≤ min(cols, <see cref="MaxK"/>).
    /// </summary>
    [IlgpuKernel]
    [IlgpuKernelVariant(typeof(Float32Storage))]
    [IlgpuKernelVariant(typeof(Float16Storage))]
    [IlgpuKernelVariant(typeof(BFloat16Storage))]
    public static void TopKRows<TFormat>(ArrayView<uint> x32, ArrayView<ushort> x16, ArrayView<uint> v32, ArrayView<ushort> v16, ArrayView<long> indices, int cols, int k)
        where TFormat : struct, IKernelConstant
    {
        int format = default(TFormat).Value;
        var hist = SharedMemory.Allocate<int>(MaxWarps * Bins);
        var total = SharedMemory.Allocate<int>(Bins);
        var candidateKey = SharedMemory.Allocate<uint>(MaxK);
        var candidateIndex = SharedMemory.Allocate<int>(MaxK);
        var state = SharedMemory.Allocate<int>(4);
        var warpSums = SharedMemory.Allocate<int>(MaxWarps);
        int t = Group.IdxX;
        int g = Group.DimX;
        int warps = g / Warp.WarpSize;
        long start = (long)Grid.IdxX * cols;
        int bits = format == ReductionKernels.Float32Format ? 32 : 16;
        uint threshold = 0;
        int remaining = k;
        int equal = 0;
        for (int shift = bits - 8; shift >= 0; shift -= 8)
        {
            for (int i = t; i < warps * Bins; i += g)
            {
                hist[i] = 0;
            }

            Group.Barrier();
            bool first = shift + 8 >= bits;
            int high = first ? 0 : shift + 8;
            // Eight elements loaded before any key is formed: a key's NaN and sign cases are branches, and a load placed
            // after them (and after the previous count's shared atomic) waited its own L2 or DRAM round trip; with one
            // group per row that chain was the pass's time.
            int c = t;
            for (; c + (7 * g) < cols; c += 8 * g)
            {
                uint bits0 = Bits(x32, x16, start + c, format);
                uint bits1 = Bits(x32, x16, start + c + g, format);
                uint bits2 = Bits(x32, x16, start + c + (2 * g), format);
                uint bits3 = Bits(x32, x16, start + c + (3 * g), format);
                uint bits4 = Bits(x32, x16, start + c + (4 * g), format);
                uint bits5 = Bits(x32, x16, start + c + (5 * g), format);
                uint bits6 = Bits(x32, x16, start + c + (6 * g), format);
                uint bits7 = Bits(x32, x16, start + c + (7 * g), format);
                Count(hist, KeyOf(bits0, format), first, high, shift, threshold);
                Count(hist, KeyOf(bits1, format), first, high, shift, threshold);
                Count(hist, KeyOf(bits2, format), first, high, shift, threshold);
                Count(hist, KeyOf(bits3, format), first, high, shift, threshold);
                Count(hist, KeyOf(bits4, format), first, high, shift, threshold);
                Count(hist, KeyOf(bits5, format), first, high, shift, threshold);
                Count(hist, KeyOf(bits6, format), first, high, shift, threshold);
                Count(hist, KeyOf(bits7, format), first, high, shift, threshold);
            }

            for (; c < cols; c += g)
            {
                Count(hist, Key(x32, x16, start + c, format), first, high, shift, threshold);
            }

            Group.Barrier();
            for (int bin = t; bin < Bins; bin += g)
            {
                int s = 0;
                for (int w = 0; w < warps; w++)
                {
                    s += hist[w * Bins + bin];
                }

                total[bin] = s;
            }

            Group.Barrier();
            if (Warp.WarpIdx == 0)
            {
                SelectBin(total, remaining, state);
            }

            Group.Barrier();
            int chosen = state[0];
            remaining = state[1];
            equal = total[chosen];
            threshold |= (uint)chosen << shift;
            Group.Barrier();
        }

        // threshold is the k-th largest key; `remaining` of its `equal` copies are taken, the first in index order. Every
        // key above it is a candidate. When more copies of the threshold exist than are taken, the row is cut into one
        // segment per warp: each warp counts its segment's copies, and the warps whose copies start before `remaining`
        // (a prefix over the warps' counts) take theirs in index order with warp scans only. (A group-wide prefix per
        // round of the row cost two group barriers per round: a 32000-column row took 3.6 times as long as without ties.)
        if (t == 0)
        {
            state[2] = 0;
        }

        Group.Barrier();
        bool someTies = equal != remaining;
        int lane = Warp.LaneIdx;
        int ws = Warp.WarpSize;
        int segment = (((cols + warps - 1) / warps) + ws - 1) / ws * ws;
        int segmentStart = Warp.WarpIdx * segment;
        int segmentEnd = segmentStart + segment < cols ? segmentStart + segment : cols;
        int copies = 0;
        int at = segmentStart + lane;
        for (; at + (3 * ws) < segmentEnd; at += 4 * ws)
        {
            uint bits0 = Bits(x32, x16, start + at, format);
            uint bits1 = Bits(x32, x16, start + at + ws, format);
            uint bits2 = Bits(x32, x16, start + at + (2 * ws), format);
            uint bits3 = Bits(x32, x16, start + at + (3 * ws), format);
            copies += Gather(candidateKey, candidateIndex, state, KeyOf(bits0, format), at, threshold, someTies);
            copies += Gather(candidateKey, candidateIndex, state, KeyOf(bits1, format), at + ws, threshold, someTies);
            copies += Gather(candidateKey, candidateIndex, state, KeyOf(bits2, format), at + (2 * ws), threshold, someTies);
            copies += Gather(candidateKey, candidateIndex, state, KeyOf(bits3, format), at + (3 * ws), threshold, someTies);
        }

        for (; at < segmentEnd; at += ws)
        {
            copies += Gather(candidateKey, candidateIndex, state, Key(x32, x16, start + at, format), at, threshold, someTies);
        }

        if (someTies)
        {
            for (int o = 1; o < ws; o <<= 1)
            {
                copies += Warp.ShuffleXor(copies, o);
            }

            if (lane == 0)
            {
                warpSums[Warp.WarpIdx] = copies;
            }

            Group.Barrier();
            int taken = 0;
            for (int w = 0; w < Warp.WarpIdx; w++)
            {
                taken += warpSums[w];
            }

            // Four rounds' elements requested at once: a round's load would otherwise wait for the previous round's scan.
            // Past `remaining` a round takes nothing, so the rounds of a batch need no check between them.
            for (int round = segmentStart; round < segmentEnd && taken < remaining; round += 4 * ws)
            {
                int c = round + lane;
                // Past the segment's end a lane reads its segment's last element (never taken: WalkRound checks the
                // index), so that no load waits on a branch.
                int last = segmentEnd - 1;
                uint bits0 = Bits(x32, x16, start + (c < segmentEnd ? c : last), format);
                uint bits1 = Bits(x32, x16, start + (c + ws < segmentEnd ? c + ws : last), format);
                uint bits2 = Bits(x32, x16, start + (c + (2 * ws) < segmentEnd ? c + (2 * ws) : last), format);
                uint bits3 = Bits(x32, x16, start + (c + (3 * ws) < segmentEnd ? c + (3 * ws) : last), format);
                taken = WalkRound(candidateKey, candidateIndex, state, KeyOf(bits0, format), c, segmentEnd, threshold, remaining, taken);
                taken = WalkRound(candidateKey, candidateIndex, state, KeyOf(bits1, format), c + ws, segmentEnd, threshold, remaining, taken);
                taken = WalkRound(candidateKey, candidateIndex, state, KeyOf(bits2, format), c + (2 * ws), segmentEnd, threshold, remaining, taken);
                taken = WalkRound(candidateKey, candidateIndex, state, KeyOf(bits3, format), c + (3 * ws), segmentEnd, threshold, remaining, taken);
            }
        }

        Group.Barrier();
        long outStart = (long)Grid.IdxX * k;
        for (int i = t; i < k; i += g)
        {
            uint key = candidateKey[i];
            int index = candidateIndex[i];
            int rank = 0;
            for (int j = 0; j < k; j++)
            {
                uint other = candidateKey[j];
                rank += other > key || (other == key && candidateIndex[j] < index) ? 1 : 0;
            }

            indices[outStart + rank] = index;
            if (format == ReductionKernels.Float32Format)
            {
                v32[outStart + rank] = x32[start + index];
            }
            else
            {
                v16[outStart + rank] = x16[start + index];
            }
        }
    }
}
