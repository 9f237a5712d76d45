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
/// and the first of those equal to T in index order (a group-wide prefix count per round of the row when T has more
/// copies than are taken), and each of the k candidates is placed by counting the candidates before it. Values are
/// copied from the input bits.
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

    /// <summary>The order-preserving key of element <paramref name="index"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static uint Key(ArrayView<uint> x32, ArrayView<ushort> x16, long index, int format)
    {
        if (format == ReductionKernels.Float32Format)
        {
            uint u = x32[index];
            return (u & 0x7fffffffu) > 0x7f800000u ? 0xffffffffu : u == 0x80000000u ? 0x80000000u : (u & 0x80000000u) != 0 ? ~u : u | 0x80000000u;
        }

        uint h = x16[index];
        uint infinity = format != 0 ? 0x7f80u : 0x7c00u;
        return (h & 0x7fffu) > infinity ? 0xffffu : h == 0x8000u ? 0x8000u : (h & 0x8000u) != 0 ? ~h & 0xffffu : h | 0x8000u;
    }

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

    /// <summary>Exclusive prefix sum of <paramref name="value"/> over the group in thread order; <paramref name="sum"/> gets the group's total.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static int GroupExclusiveSum(int value, ArrayView<int> warpSums, out int sum)
    {
        int lane = Warp.LaneIdx;
        int inclusive = value;
        for (int o = 1; o < Warp.WarpSize; o <<= 1)
        {
            bool inside = lane >= o;
            int v = Warp.Shuffle(inclusive, inside ? lane - o : lane);
            inclusive += inside ? v : 0;
        }

        if (lane == Warp.WarpSize - 1)
        {
            warpSums[Warp.WarpIdx] = inclusive;
        }

        Group.Barrier();
        int warps = Group.DimX / Warp.WarpSize;
        int offset = 0;
        sum = 0;
        for (int w = 0; w < warps; w++)
        {
            int s = warpSums[w];
            offset += w < Warp.WarpIdx ? s : 0;
            sum += s;
        }

        Group.Barrier();
        return offset + inclusive - value;
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
            for (int c = t; c < cols; c += g)
            {
                uint key = Key(x32, x16, start + c, format);
                if (first || (key >> high) == (threshold >> high))
                {
                    Atomic.Add(ref hist[Warp.WarpIdx * Bins + (int)((key >> shift) & 0xffu)], 1);
                }
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

        // threshold is the k-th largest key; `remaining` of its `equal` copies are taken, the first in index order.
        if (t == 0)
        {
            state[2] = 0;
        }

        Group.Barrier();
        if (equal == remaining)
        {
            for (int c = t; c < cols; c += g)
            {
                uint key = Key(x32, x16, start + c, format);
                if (key >= threshold)
                {
                    int slot = Atomic.Add(ref state[2], 1);
                    candidateKey[slot] = key;
                    candidateIndex[slot] = c;
                }
            }
        }
        else
        {
            int taken = 0;
            for (int round = 0; round < cols; round += g)
            {
                int c = round + t;
                uint key = c < cols ? Key(x32, x16, start + c, format) : 0u;
                bool take = c < cols && key > threshold;
                int tie = c < cols && key == threshold ? 1 : 0;
                int before = GroupExclusiveSum(tie, warpSums, out int ties);
                take |= tie != 0 && taken + before < remaining;
                taken += ties;
                if (take)
                {
                    int slot = Atomic.Add(ref state[2], 1);
                    candidateKey[slot] = key;
                    candidateIndex[slot] = c;
                }
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
