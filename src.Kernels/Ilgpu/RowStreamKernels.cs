using System.Runtime.CompilerServices;
using ILGPU;
using ILGPU.Runtime;
using ILGPU.Runtime.Cuda;

namespace GemsInjector.Kernels.Ilgpu;

/// <summary>
/// Softmax / log-softmax over long rows (a 32000-word vocabulary), float32 and 16-bit, one group per row streaming the row
/// with 16-byte loads: pass 1 keeps a running (max, Σ e^(v - max)) per thread, rescaled once per step of
/// <see cref="Unroll"/> vectors per thread; pass 2 reads the row again — from L2, since the rows in flight (one or two
/// groups per SM, ~17 MB in all) fit there — and writes it once. Only the first step stays in registers (its
/// exponentials, or its inputs for log-softmax), so pass 2 neither re-reads nor re-exponentiates it: with 1024 (float32)
/// / 512 (16-bit) threads that is half of a 32000-element row, 1.5 exponentials per element instead of 2. The rest of
/// the row is not held, which keeps registers low enough for the next row's loads to overlap this row's arithmetic (the
/// fully register-resident softmax for 32000 floats needed a whole SM per row and serialised load, compute and store).
/// <para>
/// Any row length and start: <c>x4</c> / <c>y4</c> are the views cast to 16-byte vectors from the first 16-byte-aligned
/// element a0 (which the host derives from <c>phase</c>, the view start's element offset within 16 bytes; x and y must
/// share it); each row's 0-7 leading and trailing elements outside whole vectors are read and written as scalars.
/// </para>
/// <para>
/// Rows up to 32768 elements that are whole aligned vectors take the row-resident kernels instead
/// (<see cref="SoftmaxRowF32"/>, <see cref="SoftmaxRow16{TFormat}"/>: the row in registers, read once); the streaming
/// kernels remain the path for longer rows, widths that are not a multiple of the vector and unaligned views.
/// </para>
/// </summary>
internal static class RowStreamKernels
{
    /// <summary>16-byte vectors per thread per step (independent loads in flight).</summary>
    public const int Unroll = 4;

    private const int MaxWarps = 32;

    /// <summary>Folds a step's values (largest <paramref name="stepMax"/>, NaN ignored) into the running max / sum: returns the shift for the step's exponentials.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float Rescale(ref float m, ref float sum, float stepMax)
    {
        float next = stepMax > m ? stepMax : m;

        // All -∞ so far: shift by 0 so that e^(-∞ - 0) = 0, not e^(-∞ + ∞) = NaN (a NaN sum stays NaN: NaN·0).
        float shift = next == GpuMath.NegInf ? 0f : next;
        sum *= RowVectors.Exp(m - shift);
        m = next;
        return shift;
    }

    /// <summary>The group's (max, Σ) from each thread's running pair; NaN anywhere in the row makes the sum NaN.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float RowSum(float m, float sum, float rowMax, ArrayView<float> scratch)
    {
        float part = sum == 0f ? 0f : sum * RowVectors.Exp((m == GpuMath.NegInf ? 0f : m) - rowMax);
        return GpuMath.GroupSum(part, scratch);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float Out(float v, float rowMax, float inv, float shift, int log) => log != 0 ? v - shift : RowVectors.Exp(v - rowMax) * inv;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float Max4(float m, Float4 v)
    {
        float a = v.X > v.Y ? v.X : v.Y;
        float b = v.Z > v.W ? v.Z : v.W;
        a = a > b ? a : b;
        return a > m ? a : m;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float ExpSum4(Float4 v, float shift) =>
        (RowVectors.Exp(v.X - shift) + RowVectors.Exp(v.Y - shift)) + (RowVectors.Exp(v.Z - shift) + RowVectors.Exp(v.W - shift));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Float4 Out4(Float4 v, float rowMax, float inv, float shift, int log)
    {
        Float4 r;
        r.X = Out(v.X, rowMax, inv, shift, log);
        r.Y = Out(v.Y, rowMax, inv, shift, log);
        r.Z = Out(v.Z, rowMax, inv, shift, log);
        r.W = Out(v.W, rowMax, inv, shift, log);
        return r;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Float4 Exp4(Float4 v, float shift)
    {
        v.X = RowVectors.Exp(v.X - shift);
        v.Y = RowVectors.Exp(v.Y - shift);
        v.Z = RowVectors.Exp(v.Z - shift);
        v.W = RowVectors.Exp(v.W - shift);
        return v;
    }

    /// <summary>(v - shift)·scale per lane.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Float4 Scale4(Float4 v, float shift, float scale)
    {
        v.X = (v.X - shift) * scale;
        v.Y = (v.Y - shift) * scale;
        v.Z = (v.Z - shift) * scale;
        v.W = (v.W - shift) * scale;
        return v;
    }

    private static Float4 NegInf4()
    {
        Float4 r;
        r.X = GpuMath.NegInf;
        r.Y = GpuMath.NegInf;
        r.Z = GpuMath.NegInf;
        r.W = GpuMath.NegInf;
        return r;
    }

    /// <summary>float32 softmax (log-softmax when <paramref name="log"/> ≠ 0) of one row per group; see the class summary.</summary>
    [IlgpuKernel]
    public static void SoftmaxStreamF32(ArrayView<Float4> x4, ArrayView<Float4> y4, ArrayView<float> x, ArrayView<float> y, int cols, int phase, int log)
    {
        var scratch = SharedMemory.Allocate<float>(MaxWarps);
        var px = x4.AsAligned(16);
        var py = y4.AsAligned(16);
        int t = Group.IdxX;
        int g = Group.DimX;
        long s = (long)Grid.IdxX * cols;
        int head = (int)(-(phase + s) & 3);
        head = head < cols ? head : cols;
        int nv = (cols - head) >> 2;
        int extra = cols - (nv << 2);
        long vs = (s + head - ((4 - phase) & 3)) >> 2;
        float m = GpuMath.NegInf;
        float sum = 0f;
        for (int e = t; e < extra; e += g)
        {
            float v = x[s + (e < head ? e : e + (nv << 2))];
            float shift = Rescale(ref m, ref sum, v);
            sum += RowVectors.Exp(v - shift);
        }

        // Step 0 stays in registers for pass 2: its exponentials (softmax) or its inputs (log-softmax), so pass 2
        // neither re-reads nor re-exponentiates it (half of a 32000-float row with 1024 threads).
        bool k0 = t < nv;
        bool k1 = t + g < nv;
        bool k2 = t + 2 * g < nv;
        bool k3 = t + 3 * g < nv;
        Float4 a0 = k0 ? px[vs + t] : NegInf4();
        Float4 b0 = k1 ? px[vs + t + g] : NegInf4();
        Float4 c0 = k2 ? px[vs + t + 2 * g] : NegInf4();
        Float4 d0 = k3 ? px[vs + t + 3 * g] : NegInf4();
        float shift0 = Rescale(ref m, ref sum, Max4(Max4(Max4(Max4(GpuMath.NegInf, a0), b0), c0), d0));
        bool none0 = m == GpuMath.NegInf;
        if (log != 0)
        {
            sum += (ExpSum4(a0, shift0) + ExpSum4(b0, shift0)) + (ExpSum4(c0, shift0) + ExpSum4(d0, shift0));
        }
        else
        {
            a0 = Exp4(a0, shift0);
            b0 = Exp4(b0, shift0);
            c0 = Exp4(c0, shift0);
            d0 = Exp4(d0, shift0);
            sum += (RowVectors.Sum(a0) + RowVectors.Sum(b0)) + (RowVectors.Sum(c0) + RowVectors.Sum(d0));
        }

        for (int i = t + Unroll * g; i < nv; i += Unroll * g)
        {
            Float4 a = px[vs + i];
            Float4 b = i + g < nv ? px[vs + i + g] : NegInf4();
            Float4 c = i + 2 * g < nv ? px[vs + i + 2 * g] : NegInf4();
            Float4 d = i + 3 * g < nv ? px[vs + i + 3 * g] : NegInf4();
            float shift = Rescale(ref m, ref sum, Max4(Max4(Max4(Max4(GpuMath.NegInf, a), b), c), d));
            sum += (ExpSum4(a, shift) + ExpSum4(b, shift)) + (ExpSum4(c, shift) + ExpSum4(d, shift));
        }

        float rowMax = GpuMath.GroupMax(m, scratch);
        float total = RowSum(m, sum, rowMax, scratch);
        float inv = 1f / total;
        float logShift = rowMax + GpuMath.Log(total);
        for (int e = t; e < extra; e += g)
        {
            long c = s + (e < head ? e : e + (nv << 2));
            y[c] = Out(x[c], rowMax, inv, logShift, log);
        }

        // Step 0's outputs: e^(v - shift0)·e^(shift0 - max)/Σ; a thread whose step held only -∞ has zeros (0·inv, which
        // is NaN for an all -∞ row as torch gives, instead of 0·e^(0 - max) overflowing for a very negative max).
        float scale0 = none0 ? inv * 0f : RowVectors.Exp(shift0 - rowMax) * inv;
        if (k0)
        {
            py[vs + t] = log != 0 ? Scale4(a0, logShift, 1f) : Scale4(a0, 0f, scale0);
        }

        if (k1)
        {
            py[vs + t + g] = log != 0 ? Scale4(b0, logShift, 1f) : Scale4(b0, 0f, scale0);
        }

        if (k2)
        {
            py[vs + t + 2 * g] = log != 0 ? Scale4(c0, logShift, 1f) : Scale4(c0, 0f, scale0);
        }

        if (k3)
        {
            py[vs + t + 3 * g] = log != 0 ? Scale4(d0, logShift, 1f) : Scale4(d0, 0f, scale0);
        }

        for (int i = t + Unroll * g; i < nv; i += Unroll * g)
        {
            Float4 a = px[vs + i];
            Float4 b = i + g < nv ? px[vs + i + g] : a;
            Float4 c = i + 2 * g < nv ? px[vs + i + 2 * g] : a;
            Float4 d = i + 3 * g < nv ? px[vs + i + 3 * g] : a;
            py[vs + i] = Out4(a, rowMax, inv, logShift, log);
            if (i + g < nv)
            {
                py[vs + i + g] = Out4(b, rowMax, inv, logShift, log);
            }

            if (i + 2 * g < nv)
            {
                py[vs + i + 2 * g] = Out4(c, rowMax, inv, logShift, log);
            }

            if (i + 3 * g < nv)
            {
                py[vs + i + 3 * g] = Out4(d, rowMax, inv, logShift, log);
            }
        }
    }

    /// <summary>16-bit softmax (log-softmax when <paramref name="log"/> ≠ 0), eight words per 16-byte vector; see the class summary.</summary>
    [IlgpuKernel]
    [IlgpuKernelVariant(typeof(Float16Storage))]
    [IlgpuKernelVariant(typeof(BFloat16Storage))]
    public static void SoftmaxStream16<TFormat>(ArrayView<Half8> x8, ArrayView<Half8> y8, ArrayView<ushort> x, ArrayView<ushort> y, int cols, int phase, int log)
        where TFormat : struct, IKernelConstant
    {
        int bf = default(TFormat).Value;
        var scratch = SharedMemory.Allocate<float>(MaxWarps);
        var px = x8.AsAligned(16);
        var py = y8.AsAligned(16);
        int t = Group.IdxX;
        int g = Group.DimX;
        long s = (long)Grid.IdxX * cols;
        int head = (int)(-(phase + s) & 7);
        head = head < cols ? head : cols;
        int nv = (cols - head) >> 3;
        int extra = cols - (nv << 3);
        long vs = (s + head - ((8 - phase) & 7)) >> 3;
        float m = GpuMath.NegInf;
        float sum = 0f;
        for (int e = t; e < extra; e += g)
        {
            float v = GpuMath.Load16(x[s + (e < head ? e : e + (nv << 3))], bf);
            float shift = Rescale(ref m, ref sum, v);
            sum += RowVectors.Exp(v - shift);
        }

        // Step 0 stays in registers for pass 2, as in the float32 kernel.
        var none = RowVectors.Fill(GpuMath.NegInf);
        bool k0 = t < nv;
        bool k1 = t + g < nv;
        bool k2 = t + 2 * g < nv;
        bool k3 = t + 3 * g < nv;
        Half8 w0 = k0 ? px[vs + t] : default;
        Half8 w1 = k1 ? px[vs + t + g] : default;
        Half8 w2 = k2 ? px[vs + t + 2 * g] : default;
        Half8 w3 = k3 ? px[vs + t + 3 * g] : default;
        Floats8 a0 = k0 ? RowVectors.Unpack(w0, bf) : none;
        Floats8 b0 = k1 ? RowVectors.Unpack(w1, bf) : none;
        Floats8 c0 = k2 ? RowVectors.Unpack(w2, bf) : none;
        Floats8 d0 = k3 ? RowVectors.Unpack(w3, bf) : none;
        float shift0 = Rescale(ref m, ref sum, RowVectors.Max(RowVectors.Max(RowVectors.Max(RowVectors.Max(GpuMath.NegInf, a0), b0), c0), d0));
        bool none0 = m == GpuMath.NegInf;
        if (log != 0)
        {
            sum += (RowVectors.Sum(RowVectors.Exp(a0, shift0)) + RowVectors.Sum(RowVectors.Exp(b0, shift0)))
                + (RowVectors.Sum(RowVectors.Exp(c0, shift0)) + RowVectors.Sum(RowVectors.Exp(d0, shift0)));
        }
        else
        {
            a0 = RowVectors.Exp(a0, shift0);
            b0 = RowVectors.Exp(b0, shift0);
            c0 = RowVectors.Exp(c0, shift0);
            d0 = RowVectors.Exp(d0, shift0);
            sum += (RowVectors.Sum(a0) + RowVectors.Sum(b0)) + (RowVectors.Sum(c0) + RowVectors.Sum(d0));
        }

        for (int i = t + Unroll * g; i < nv; i += Unroll * g)
        {
            Half8 wa = px[vs + i];
            Half8 wb = i + g < nv ? px[vs + i + g] : default;
            Half8 wc = i + 2 * g < nv ? px[vs + i + 2 * g] : default;
            Half8 wd = i + 3 * g < nv ? px[vs + i + 3 * g] : default;
            Floats8 a = RowVectors.Unpack(wa, bf);
            Floats8 b = i + g < nv ? RowVectors.Unpack(wb, bf) : none;
            Floats8 c = i + 2 * g < nv ? RowVectors.Unpack(wc, bf) : none;
            Floats8 d = i + 3 * g < nv ? RowVectors.Unpack(wd, bf) : none;
            float shift = Rescale(ref m, ref sum, RowVectors.Max(RowVectors.Max(RowVectors.Max(RowVectors.Max(GpuMath.NegInf, a), b), c), d));
            sum += (RowVectors.Sum(RowVectors.Exp(a, shift)) + RowVectors.Sum(RowVectors.Exp(b, shift)))
                + (RowVectors.Sum(RowVectors.Exp(c, shift)) + RowVectors.Sum(RowVectors.Exp(d, shift)));
        }

        float rowMax = GpuMath.GroupMax(m, scratch);
        float total = RowSum(m, sum, rowMax, scratch);
        float inv = 1f / total;
        float logShift = rowMax + GpuMath.Log(total);
        for (int e = t; e < extra; e += g)
        {
            long c = s + (e < head ? e : e + (nv << 3));
            y[c] = GpuMath.Store16(Out(GpuMath.Load16(x[c], bf), rowMax, inv, logShift, log), bf);
        }

        float scale0 = none0 ? inv * 0f : RowVectors.Exp(shift0 - rowMax) * inv;
        if (k0)
        {
            py[vs + t] = RowVectors.Pack(log != 0 ? RowVectors.ShiftScale(a0, logShift, 1f) : RowVectors.ShiftScale(a0, 0f, scale0), bf);
        }

        if (k1)
        {
            py[vs + t + g] = RowVectors.Pack(log != 0 ? RowVectors.ShiftScale(b0, logShift, 1f) : RowVectors.ShiftScale(b0, 0f, scale0), bf);
        }

        if (k2)
        {
            py[vs + t + 2 * g] = RowVectors.Pack(log != 0 ? RowVectors.ShiftScale(c0, logShift, 1f) : RowVectors.ShiftScale(c0, 0f, scale0), bf);
        }

        if (k3)
        {
            py[vs + t + 3 * g] = RowVectors.Pack(log != 0 ? RowVectors.ShiftScale(d0, logShift, 1f) : RowVectors.ShiftScale(d0, 0f, scale0), bf);
        }

        for (int i = t + Unroll * g; i < nv; i += Unroll * g)
        {
            Half8 wa = px[vs + i];
            Half8 wb = i + g < nv ? px[vs + i + g] : wa;
            Half8 wc = i + 2 * g < nv ? px[vs + i + 2 * g] : wa;
            Half8 wd = i + 3 * g < nv ? px[vs + i + 3 * g] : wa;
            py[vs + i] = RowVectors.Pack(RowVectors.SoftmaxOut(RowVectors.Unpack(wa, bf), rowMax, inv, logShift, log), bf);
            if (i + g < nv)
            {
                py[vs + i + g] = RowVectors.Pack(RowVectors.SoftmaxOut(RowVectors.Unpack(wb, bf), rowMax, inv, logShift, log), bf);
            }

            if (i + 2 * g < nv)
            {
                py[vs + i + 2 * g] = RowVectors.Pack(RowVectors.SoftmaxOut(RowVectors.Unpack(wc, bf), rowMax, inv, logShift, log), bf);
            }

            if (i + 3 * g < nv)
            {
                py[vs + i + 3 * g] = RowVectors.Pack(RowVectors.SoftmaxOut(RowVectors.Unpack(wd, bf), rowMax, inv, logShift, log), bf);
            }
        }
    }

    /// <summary>16-byte vectors per thread of the row-resident kernels (<see cref="SoftmaxRowF32"/>, <see cref="SoftmaxRow16{TFormat}"/>).</summary>
    public const int ResidentVectors = 8;

    /// <summary>
    /// float32 softmax (log-softmax when <paramref name="log"/> ≠ 0) of rows held whole in registers: cols a multiple of 4,
    /// at most <see cref="ResidentVectors"/> 16-byte vectors per thread (32768 floats with 1024 threads), the views
    /// 16-byte aligned. The row is read from memory once, with all eight loads of a thread in flight together (128 KB
    /// per SM for a 32000-float row), and the exponentials replace the inputs in place, so each element takes one
    /// exponential and one read: the streaming kernel needed two dependent DRAM round trips, an L2 re-read and 1.5
    /// exponentials per element, all serialised within the one group an SM holds.
    /// </summary>
    [IlgpuKernel]
    public static void SoftmaxRowF32(ArrayView<Float4> x, ArrayView<Float4> y, int cols, int log)
    {
        var scratch = SharedMemory.Allocate<float>(MaxWarps);
        var px = x.AsAligned(16);
        var py = y.AsAligned(16);
        int t = Group.IdxX;
        int g = Group.DimX;
        int nv = cols >> 2;
        long b = (long)Grid.IdxX * nv;
        bool k0 = t + 0 * g < nv;
        Float4 v0 = k0 ? px[b + t + 0 * g] : NegInf4();
        bool k1 = t + 1 * g < nv;
        Float4 v1 = k1 ? px[b + t + 1 * g] : NegInf4();
        bool k2 = t + 2 * g < nv;
        Float4 v2 = k2 ? px[b + t + 2 * g] : NegInf4();
        bool k3 = t + 3 * g < nv;
        Float4 v3 = k3 ? px[b + t + 3 * g] : NegInf4();
        bool k4 = t + 4 * g < nv;
        Float4 v4 = k4 ? px[b + t + 4 * g] : NegInf4();
        bool k5 = t + 5 * g < nv;
        Float4 v5 = k5 ? px[b + t + 5 * g] : NegInf4();
        bool k6 = t + 6 * g < nv;
        Float4 v6 = k6 ? px[b + t + 6 * g] : NegInf4();
        bool k7 = t + 7 * g < nv;
        Float4 v7 = k7 ? px[b + t + 7 * g] : NegInf4();
        float rowMax = GpuMath.GroupMax(Max4(Max4(Max4(Max4(Max4(Max4(Max4(Max4(GpuMath.NegInf, v0), v1), v2), v3), v4), v5), v6), v7), scratch);
        float shift;
        float scale;
        if (log != 0)
        {
            shift = rowMax + GpuMath.Log(GpuMath.GroupSum((ExpSum4(v0, rowMax) + ExpSum4(v1, rowMax)) + (ExpSum4(v2, rowMax) + ExpSum4(v3, rowMax)) + ((ExpSum4(v4, rowMax) + ExpSum4(v5, rowMax)) + (ExpSum4(v6, rowMax) + ExpSum4(v7, rowMax))), scratch));
            scale = 1f;
        }
        else
        {
            // All -∞: e^(-∞ + ∞) = NaN everywhere, as torch gives.
            v0 = Exp4(v0, rowMax);
            v1 = Exp4(v1, rowMax);
            v2 = Exp4(v2, rowMax);
            v3 = Exp4(v3, rowMax);
            v4 = Exp4(v4, rowMax);
            v5 = Exp4(v5, rowMax);
            v6 = Exp4(v6, rowMax);
            v7 = Exp4(v7, rowMax);
            shift = 0f;
            scale = 1f / GpuMath.GroupSum((RowVectors.Sum(v0) + RowVectors.Sum(v1)) + (RowVectors.Sum(v2) + RowVectors.Sum(v3)) + ((RowVectors.Sum(v4) + RowVectors.Sum(v5)) + (RowVectors.Sum(v6) + RowVectors.Sum(v7))), scratch);
        }

        if (k0)
        {
            py[b + t + 0 * g] = Scale4(v0, shift, scale);
        }

        if (k1)
        {
            py[b + t + 1 * g] = Scale4(v1, shift, scale);
        }

        if (k2)
        {
            py[b + t + 2 * g] = Scale4(v2, shift, scale);
        }

        if (k3)
        {
            py[b + t + 3 * g] = Scale4(v3, shift, scale);
        }

        if (k4)
        {
            py[b + t + 4 * g] = Scale4(v4, shift, scale);
        }

        if (k5)
        {
            py[b + t + 5 * g] = Scale4(v5, shift, scale);
        }

        if (k6)
        {
            py[b + t + 6 * g] = Scale4(v6, shift, scale);
        }

        if (k7)
        {
            py[b + t + 7 * g] = Scale4(v7, shift, scale);
        }
    }

    /// <summary>
    /// 16-bit softmax (log-softmax when <paramref name="log"/> ≠ 0) of rows held whole in registers as their 16-bit words
    /// (half the registers of float32): cols a multiple of 8, at most <see cref="ResidentVectors"/> vectors per thread
    /// (32768 words with 512 threads), the views 16-byte aligned. At most 64 registers per thread, so two groups — two
    /// rows — share an SM and one's loads overlap the other's arithmetic; one read of memory per element and two
    /// exponentials (sum, then output), each a multiply and an <c>ex2.approx</c>.
    /// </summary>
    [IlgpuKernel]
    [IlgpuKernelVariant(typeof(Float16Storage))]
    [IlgpuKernelVariant(typeof(BFloat16Storage))]
    public static void SoftmaxRow16<TFormat>(ArrayView<Half8> x, ArrayView<Half8> y, int cols, int log)
        where TFormat : struct, IKernelConstant
    {
        int bf = default(TFormat).Value;
        var scratch = SharedMemory.Allocate<float>(MaxWarps);
        var px = x.AsAligned(16);
        var py = y.AsAligned(16);
        int t = Group.IdxX;
        int g = Group.DimX;
        int nv = cols >> 3;
        long b = (long)Grid.IdxX * nv;
        bool k0 = t + 0 * g < nv;
        Half8 w0 = k0 ? px[b + t + 0 * g] : default;
        bool k1 = t + 1 * g < nv;
        Half8 w1 = k1 ? px[b + t + 1 * g] : default;
        bool k2 = t + 2 * g < nv;
        Half8 w2 = k2 ? px[b + t + 2 * g] : default;
        bool k3 = t + 3 * g < nv;
        Half8 w3 = k3 ? px[b + t + 3 * g] : default;
        bool k4 = t + 4 * g < nv;
        Half8 w4 = k4 ? px[b + t + 4 * g] : default;
        bool k5 = t + 5 * g < nv;
        Half8 w5 = k5 ? px[b + t + 5 * g] : default;
        bool k6 = t + 6 * g < nv;
        Half8 w6 = k6 ? px[b + t + 6 * g] : default;
        bool k7 = t + 7 * g < nv;
        Half8 w7 = k7 ? px[b + t + 7 * g] : default;
        float m = GpuMath.NegInf;
        m = k0 ? RowVectors.Max(m, RowVectors.Unpack(w0, bf)) : m;
        m = k1 ? RowVectors.Max(m, RowVectors.Unpack(w1, bf)) : m;
        m = k2 ? RowVectors.Max(m, RowVectors.Unpack(w2, bf)) : m;
        m = k3 ? RowVectors.Max(m, RowVectors.Unpack(w3, bf)) : m;
        m = k4 ? RowVectors.Max(m, RowVectors.Unpack(w4, bf)) : m;
        m = k5 ? RowVectors.Max(m, RowVectors.Unpack(w5, bf)) : m;
        m = k6 ? RowVectors.Max(m, RowVectors.Unpack(w6, bf)) : m;
        m = k7 ? RowVectors.Max(m, RowVectors.Unpack(w7, bf)) : m;
        float rowMax = GpuMath.GroupMax(m, scratch);
        float sum = 0f;
        sum += k0 ? RowVectors.Sum(RowVectors.Exp(RowVectors.Unpack(w0, bf), rowMax)) : 0f;
        sum += k1 ? RowVectors.Sum(RowVectors.Exp(RowVectors.Unpack(w1, bf), rowMax)) : 0f;
        sum += k2 ? RowVectors.Sum(RowVectors.Exp(RowVectors.Unpack(w2, bf), rowMax)) : 0f;
        sum += k3 ? RowVectors.Sum(RowVectors.Exp(RowVectors.Unpack(w3, bf), rowMax)) : 0f;
        sum += k4 ? RowVectors.Sum(RowVectors.Exp(RowVectors.Unpack(w4, bf), rowMax)) : 0f;
        sum += k5 ? RowVectors.Sum(RowVectors.Exp(RowVectors.Unpack(w5, bf), rowMax)) : 0f;
        sum += k6 ? RowVectors.Sum(RowVectors.Exp(RowVectors.Unpack(w6, bf), rowMax)) : 0f;
        sum += k7 ? RowVectors.Sum(RowVectors.Exp(RowVectors.Unpack(w7, bf), rowMax)) : 0f;
        float total = GpuMath.GroupSum(sum, scratch);
        float inv = 1f / total;
        float shift = rowMax + GpuMath.Log(total);
        if (k0)
        {
            py[b + t + 0 * g] = Out16(w0, rowMax, inv, shift, log, bf);
        }

        if (k1)
        {
            py[b + t + 1 * g] = Out16(w1, rowMax, inv, shift, log, bf);
        }

        if (k2)
        {
            py[b + t + 2 * g] = Out16(w2, rowMax, inv, shift, log, bf);
        }

        if (k3)
        {
            py[b + t + 3 * g] = Out16(w3, rowMax, inv, shift, log, bf);
        }

        if (k4)
        {
            py[b + t + 4 * g] = Out16(w4, rowMax, inv, shift, log, bf);
        }

        if (k5)
        {
            py[b + t + 5 * g] = Out16(w5, rowMax, inv, shift, log, bf);
        }

        if (k6)
        {
            py[b + t + 6 * g] = Out16(w6, rowMax, inv, shift, log, bf);
        }

        if (k7)
        {
            py[b + t + 7 * g] = Out16(w7, rowMax, inv, shift, log, bf);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Half8 Out16(Half8 w, float rowMax, float inv, float shift, int log, int bf) =>
        RowVectors.Pack(RowVectors.SoftmaxOut(RowVectors.Unpack(w, bf), rowMax, inv, shift, log), bf);
}
