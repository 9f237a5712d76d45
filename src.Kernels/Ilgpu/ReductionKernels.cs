using System.Runtime.CompilerServices;
using ILGPU;
using ILGPU.Runtime;

namespace GemsInjector.Kernels.Ilgpu;

/// <summary>float32 elements, as a reduction kernel's format constant (2; the 16-bit formats are 0 and 1).</summary>
internal readonly struct Float32Storage : IKernelConstant
{
    /// <inheritdoc/>
    public int Value => ReductionKernels.Float32Format;
}

/// <summary>Reduction by sum (mean when the launch asks), as a kernel constant: 0.</summary>
internal readonly struct SumReduction : IKernelConstant
{
    /// <inheritdoc/>
    public int Value => 0;
}

/// <summary>Reduction by NaN-propagating max, as a kernel constant: 1.</summary>
internal readonly struct MaxReduction : IKernelConstant
{
    /// <inheritdoc/>
    public int Value => 1;
}

/// <summary>
/// sum / mean / amax / argmax over the last dimension of a contiguous [rows, cols] tensor (float32, float16, bfloat16),
/// read with 16-byte loads, <see cref="Unroll"/> of them in flight per thread. A row is split into <c>chunks</c>
/// consecutive pieces, one group each (grid = rows · chunks), so that a few long rows still fill the GPU; with more than
/// one chunk each group leaves its partial in <c>partials</c> and counts itself in <c>tickets[row]</c> (an atomic add
/// after a device-level fence), and the group that arrives last combines the row's partials in chunk order — so the
/// result does not depend on which group finishes first — writes the output and resets the ticket to 0 for the next
/// launch. The partials are read back with atomics, which are served by L2: a plain load could hit a line that this
/// SM's L1 cached for a neighbouring row before the other groups wrote theirs.
/// <para>
/// <c>xv</c> is the tensor as 16-byte vectors from its first 16-byte-aligned element on (the host derives that element
/// from <c>phase</c>, the view start's element offset within 16 bytes); each row's 0-7 elements before its first and
/// after its last whole vector are read as scalars from <c>xs</c>, the same tensor as 16-bit words (a float32 is two
/// words, low first). A float32 result is written as two words of <c>output</c> for the same reason. Accumulation is in
/// float32 and a 16-bit result is rounded once.
/// </para>
/// </summary>
internal static class ReductionKernels
{
    /// <summary>The format constant of float32 elements (float16 is 0, bfloat16 1, as the 16-bit kernels' flag).</summary>
    public const int Float32Format = 2;

    /// <summary>16-byte vectors per thread per step (independent loads in flight).</summary>
    public const int Unroll = 4;

    private const int MaxWarps = 32;

    /// <summary>Elements per 16-byte vector.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static int Width(int format) => format == Float32Format ? 4 : 8;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float Low(uint word, int format) => GpuMath.Load16((ushort)word, format);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float High(uint word, int format) =>
        format != 0 ? Interop.IntAsFloat(word & 0xffff0000u) : GpuMath.HalfToFloat((ushort)(word >> 16));

    /// <summary>Element <paramref name="j"/> (0 .. width-1) of a vector.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float Element(Half8 w, int j, int format)
    {
        if (format == Float32Format)
        {
            return Interop.IntAsFloat(j == 0 ? w.X : j == 1 ? w.Y : j == 2 ? w.Z : w.W);
        }

        int q = j >> 1;
        uint word = q == 0 ? w.X : q == 1 ? w.Y : q == 2 ? w.Z : w.W;
        return (j & 1) == 0 ? Low(word, format) : High(word, format);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float Sum(Half8 w, int format)
    {
        if (format == Float32Format)
        {
            return (Interop.IntAsFloat(w.X) + Interop.IntAsFloat(w.Y)) + (Interop.IntAsFloat(w.Z) + Interop.IntAsFloat(w.W));
        }

        return ((Low(w.X, format) + High(w.X, format)) + (Low(w.Y, format) + High(w.Y, format)))
            + ((Low(w.Z, format) + High(w.Z, format)) + (Low(w.W, format) + High(w.W, format)));
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float Max(Half8 w, int format)
    {
        if (format == Float32Format)
        {
            return GpuMath.MaxNaN(GpuMath.MaxNaN(Interop.IntAsFloat(w.X), Interop.IntAsFloat(w.Y)), GpuMath.MaxNaN(Interop.IntAsFloat(w.Z), Interop.IntAsFloat(w.W)));
        }

        float a = GpuMath.MaxNaN(Low(w.X, format), High(w.X, format));
        float b = GpuMath.MaxNaN(Low(w.Y, format), High(w.Y, format));
        float c = GpuMath.MaxNaN(Low(w.Z, format), High(w.Z, format));
        float d = GpuMath.MaxNaN(Low(w.W, format), High(w.W, format));
        return GpuMath.MaxNaN(GpuMath.MaxNaN(a, b), GpuMath.MaxNaN(c, d));
    }

    /// <summary>A vector of four equal words: 0 (+0 in every format) for sums, -∞ of the format for max.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Half8 Fill(int format, bool max)
    {
        uint word = !max ? 0u : format == Float32Format ? 0xff800000u : format != 0 ? 0xff80ff80u : 0xfc00fc00u;
        Half8 w;
        w.X = word;
        w.Y = word;
        w.Z = word;
        w.W = word;
        return w;
    }

    /// <summary>Element <paramref name="index"/> of the tensor from its 16-bit words.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float LoadScalar(ArrayView<ushort> xs, long index, int format)
    {
        if (format == Float32Format)
        {
            return Interop.IntAsFloat(xs[2 * index] | ((uint)xs[2 * index + 1] << 16));
        }

        return GpuMath.Load16(xs[index], format);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void StoreScalar(ArrayView<ushort> output, long index, float value, int format)
    {
        if (format == Float32Format)
        {
            uint bits = Interop.FloatAsInt(value);
            output[2 * index] = (ushort)bits;
            output[2 * index + 1] = (ushort)(bits >> 16);
        }
        else
        {
            output[index] = GpuMath.Store16(value, format);
        }
    }

    /// <summary>
    /// One row's layout: <paramref name="head"/> scalars before the first whole vector, <paramref name="vectors"/> whole
    /// vectors from <paramref name="first"/> (an index into the vector view), then the rest as scalars (<paramref name="scalars"/>
    /// in all).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void RowLayout(long start, int cols, int phase, int format, out int head, out int vectors, out int scalars, out long first)
    {
        int width = Width(format);
        int mask = width - 1;
        int shift = format == Float32Format ? 2 : 3;
        head = (int)(-(phase + start) & mask);
        head = head < cols ? head : cols;
        vectors = (cols - head) >> shift;
        scalars = cols - (vectors << shift);
        first = (start + head - ((width - phase) & mask)) >> shift;
    }

    /// <summary>
    /// After thread 0 left the group's partial: true in every thread of the group that completes the row (the last of its
    /// <paramref name="chunks"/> groups to arrive).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static bool ArrivesLast(ArrayView<int> tickets, int row, int chunks, ArrayView<int> flag)
    {
        if (Group.IdxX == 0)
        {
            MemoryFence.DeviceLevel();
            flag[0] = Atomic.Add(ref tickets[row], 1) == chunks - 1 ? 1 : 0;
            MemoryFence.DeviceLevel();
        }

        Group.Barrier();
        return flag[0] != 0;
    }

    /// <summary>A partial written by another group, read through L2 (see the class summary).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static int ReadShared(ArrayView<int> partials, long index) => Atomic.Or(ref partials[index], 0);

    /// <summary>Sum (mean when <paramref name="mean"/> ≠ 0) or NaN-propagating max of each row: output[row].</summary>
    [IlgpuKernel]
    [IlgpuKernelVariant(typeof(Float32Storage), typeof(SumReduction))]
    [IlgpuKernelVariant(typeof(Float32Storage), typeof(MaxReduction))]
    [IlgpuKernelVariant(typeof(Float16Storage), typeof(SumReduction))]
    [IlgpuKernelVariant(typeof(Float16Storage), typeof(MaxReduction))]
    [IlgpuKernelVariant(typeof(BFloat16Storage), typeof(SumReduction))]
    [IlgpuKernelVariant(typeof(BFloat16Storage), typeof(MaxReduction))]
    public static void ReduceRows<TFormat, TOp>(ArrayView<Half8> xv, ArrayView<ushort> xs, ArrayView<ushort> output, ArrayView<int> partials,
        ArrayView<int> tickets, int cols, int phase, int chunks, int mean)
        where TFormat : struct, IKernelConstant
        where TOp : struct, IKernelConstant
    {
        int format = default(TFormat).Value;
        bool max = default(TOp).Value != 0;
        var scratch = SharedMemory.Allocate<float>(MaxWarps);
        var flag = SharedMemory.Allocate<int>(1);
        var px = xv.AsAligned(16);
        int t = Group.IdxX;
        int g = Group.DimX;
        int row = Grid.IdxX / chunks;
        int chunk = Grid.IdxX - row * chunks;
        long start = (long)row * cols;
        RowLayout(start, cols, phase, format, out int head, out int vectors, out int scalars, out long first);
        int per = (vectors + chunks - 1) / chunks;
        int lo = chunk * per;
        int hi = vectors - lo < per ? vectors : lo + per;
        var none = Fill(format, max);
        float acc = max ? GpuMath.NegInf : 0f;
        for (int i = lo + t; i < hi; i += Unroll * g)
        {
            Half8 a = px[first + i];
            Half8 b = i + g < hi ? px[first + i + g] : none;
            Half8 c = i + 2 * g < hi ? px[first + i + 2 * g] : none;
            Half8 d = i + 3 * g < hi ? px[first + i + 3 * g] : none;
            acc = max
                ? GpuMath.MaxNaN(acc, GpuMath.MaxNaN(GpuMath.MaxNaN(Max(a, format), Max(b, format)), GpuMath.MaxNaN(Max(c, format), Max(d, format))))
                : acc + ((Sum(a, format) + Sum(b, format)) + (Sum(c, format) + Sum(d, format)));
        }

        if (chunk == 0)
        {
            int shift = format == Float32Format ? 2 : 3;
            for (int e = t; e < scalars; e += g)
            {
                float v = LoadScalar(xs, start + (e < head ? e : e + (vectors << shift)), format);
                acc = max ? GpuMath.MaxNaN(acc, v) : acc + v;
            }
        }

        acc = max ? GpuMath.GroupMax(acc, scratch) : GpuMath.GroupSum(acc, scratch);
        if (chunks > 1)
        {
            long slots = (long)row * chunks;
            if (t == 0)
            {
                partials[slots + chunk] = (int)Interop.FloatAsInt(acc);
            }

            if (!ArrivesLast(tickets, row, chunks, flag))
            {
                return;
            }

            float part = max ? GpuMath.NegInf : 0f;
            for (int k = t; k < chunks; k += g)
            {
                float p = Interop.IntAsFloat((uint)ReadShared(partials, slots + k));
                part = max ? GpuMath.MaxNaN(part, p) : part + p;
            }

            acc = max ? GpuMath.GroupMax(part, scratch) : GpuMath.GroupSum(part, scratch);
            if (t == 0)
            {
                tickets[row] = 0;
            }
        }

        if (t == 0)
        {
            StoreScalar(output, row, !max && mean != 0 ? acc / cols : acc, format);
        }
    }

    /// <summary>True when a step's largest value <paramref name="candidate"/> (later columns) beats <paramref name="best"/>: larger, or the first NaN.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static bool Beats(float candidate, float best) => !float.IsNaN(best) && (candidate > best || float.IsNaN(candidate));

    /// <summary>The first element of <paramref name="w"/> equal to <paramref name="target"/> (the first NaN when it is NaN), or -1.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static int FindFirst(Half8 w, float target, int format)
    {
        bool nan = float.IsNaN(target);
        int width = Width(format);
        for (int j = 0; j < width; j++)
        {
            float v = Element(w, j, format);
            if (nan ? float.IsNaN(v) : v == target)
            {
                return j;
            }
        }

        return -1;
    }

    /// <summary>
    /// Arg-max of each row: the first index of the maximum, or of the first NaN (as torch.argmax). Each thread compares a
    /// whole step's max with its best so far and looks for the column only when the step wins (rarely, after the first).
    /// </summary>
    [IlgpuKernel]
    [IlgpuKernelVariant(typeof(Float32Storage))]
    [IlgpuKernelVariant(typeof(Float16Storage))]
    [IlgpuKernelVariant(typeof(BFloat16Storage))]
    public static void ArgmaxRows<TFormat>(ArrayView<Half8> xv, ArrayView<ushort> xs, ArrayView<long> output, ArrayView<int> partials,
        ArrayView<int> tickets, int cols, int phase, int chunks)
        where TFormat : struct, IKernelConstant
    {
        int format = default(TFormat).Value;
        var sv = SharedMemory.Allocate<float>(MaxWarps);
        var si = SharedMemory.Allocate<int>(MaxWarps);
        var flag = SharedMemory.Allocate<int>(1);
        var px = xv.AsAligned(16);
        int t = Group.IdxX;
        int g = Group.DimX;
        int row = Grid.IdxX / chunks;
        int chunk = Grid.IdxX - row * chunks;
        long start = (long)row * cols;
        RowLayout(start, cols, phase, format, out int head, out int vectors, out int scalars, out long first);
        int shift = format == Float32Format ? 2 : 3;
        int per = (vectors + chunks - 1) / chunks;
        int lo = chunk * per;
        int hi = vectors - lo < per ? vectors : lo + per;
        var none = Fill(format, true);
        float best = GpuMath.NegInf;
        int bi = -1;
        for (int i = lo + t; i < hi; i += Unroll * g)
        {
            bool hasB = i + g < hi;
            bool hasC = i + 2 * g < hi;
            bool hasD = i + 3 * g < hi;
            Half8 a = px[first + i];
            Half8 b = hasB ? px[first + i + g] : none;
            Half8 c = hasC ? px[first + i + 2 * g] : none;
            Half8 d = hasD ? px[first + i + 3 * g] : none;
            float m = GpuMath.MaxNaN(GpuMath.MaxNaN(Max(a, format), Max(b, format)), GpuMath.MaxNaN(Max(c, format), Max(d, format)));
            if (bi < 0 || Beats(m, best))
            {
                // Vectors in column order; the filler of a missing one is never searched.
                int j = FindFirst(a, m, format);
                int at = i;
                if (j < 0 && hasB)
                {
                    j = FindFirst(b, m, format);
                    at = i + g;
                }

                if (j < 0 && hasC)
                {
                    j = FindFirst(c, m, format);
                    at = i + 2 * g;
                }

                if (j < 0 && hasD)
                {
                    j = FindFirst(d, m, format);
                    at = i + 3 * g;
                }

                best = m;
                bi = head + (at << shift) + j;
            }
        }

        if (chunk == 0)
        {
            // After the vectors: Before orders by index, and the head's columns come before theirs.
            for (int e = t; e < scalars; e += g)
            {
                int col = e < head ? e : e + (vectors << shift);
                float v = LoadScalar(xs, start + col, format);
                if (GpuMath.Before(v, col, best, bi))
                {
                    best = v;
                    bi = col;
                }
            }
        }

        GpuMath.GroupArgMax(ref best, ref bi, sv, si);
        if (chunks > 1)
        {
            long slots = 2L * row * chunks;
            if (t == 0)
            {
                partials[slots + 2 * chunk] = (int)Interop.FloatAsInt(best);
                partials[slots + 2 * chunk + 1] = bi;
            }

            if (!ArrivesLast(tickets, row, chunks, flag))
            {
                return;
            }

            best = GpuMath.NegInf;
            bi = -1;
            for (int k = t; k < chunks; k += g)
            {
                float v = Interop.IntAsFloat((uint)ReadShared(partials, slots + 2 * k));
                int index = ReadShared(partials, slots + 2 * k + 1);
                if (GpuMath.Before(v, index, best, bi))
                {
                    best = v;
                    bi = index;
                }
            }

            GpuMath.GroupArgMax(ref best, ref bi, sv, si);
            if (t == 0)
            {
                tickets[row] = 0;
            }
        }

        if (t == 0)
        {
            output[row] = bi;
        }
    }
}
