using System.Runtime.CompilerServices;
using ILGPU;

namespace GemsInjector.Kernels.Ilgpu;

/// <summary>Eight float32 values held in registers (the unpacked <see cref="Half8"/>, element order kept).</summary>
internal struct Floats8
{
    public float V0;
    public float V1;
    public float V2;
    public float V3;
    public float V4;
    public float V5;
    public float V6;
    public float V7;
}

/// <summary>
/// Register-side helpers of the vectorised row kernels: unpack eight 16-bit words to float32 and round them back
/// (through <see cref="GpuMath.Load16"/> / <see cref="GpuMath.Store16"/>), and the per-thread partial reductions.
/// </summary>
internal static class RowVectors
{
    /// <summary>Eight floats equal to <paramref name="value"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Floats8 Fill(float value)
    {
        Floats8 f;
        f.V0 = value;
        f.V1 = value;
        f.V2 = value;
        f.V3 = value;
        f.V4 = value;
        f.V5 = value;
        f.V6 = value;
        f.V7 = value;
        return f;
    }

    /// <summary>The eight elements of <paramref name="w"/> as float32 (bfloat16 when <paramref name="bf16"/> ≠ 0).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Floats8 Unpack(Half8 w, int bf16)
    {
        Floats8 f;
        f.V0 = Low(w.X, bf16);
        f.V1 = High(w.X, bf16);
        f.V2 = Low(w.Y, bf16);
        f.V3 = High(w.Y, bf16);
        f.V4 = Low(w.Z, bf16);
        f.V5 = High(w.Z, bf16);
        f.V6 = Low(w.W, bf16);
        f.V7 = High(w.W, bf16);
        return f;
    }

    /// <summary>The element in bits 0-15 of a word; a bfloat16 is one shift into place (no 16-bit intermediate).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float Low(uint word, int bf16) => bf16 != 0 ? Interop.IntAsFloat(word << 16) : GpuMath.HalfToFloat((ushort)word);

    /// <summary>The element in bits 16-31 of a word; a bfloat16 is one mask (it is already in place).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float High(uint word, int bf16) => bf16 != 0 ? Interop.IntAsFloat(word & 0xffff0000u) : GpuMath.HalfToFloat((ushort)(word >> 16));

    /// <summary>Eight float32 values rounded to the 16-bit format (nearest even) and packed.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Half8 Pack(Floats8 f, int bf16)
    {
        Half8 w;
        w.X = GpuMath.Store16Pair(f.V0, f.V1, bf16);
        w.Y = GpuMath.Store16Pair(f.V2, f.V3, bf16);
        w.Z = GpuMath.Store16Pair(f.V4, f.V5, bf16);
        w.W = GpuMath.Store16Pair(f.V6, f.V7, bf16);
        return w;
    }

    /// <summary>Element-wise a + b.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Floats8 Add(Floats8 a, Floats8 b)
    {
        a.V0 += b.V0;
        a.V1 += b.V1;
        a.V2 += b.V2;
        a.V3 += b.V3;
        a.V4 += b.V4;
        a.V5 += b.V5;
        a.V6 += b.V6;
        a.V7 += b.V7;
        return a;
    }

    /// <summary>Element-wise a·s·w (w the weight vector).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Floats8 ScaleBy(Floats8 a, float s, Floats8 w)
    {
        a.V0 = a.V0 * s * w.V0;
        a.V1 = a.V1 * s * w.V1;
        a.V2 = a.V2 * s * w.V2;
        a.V3 = a.V3 * s * w.V3;
        a.V4 = a.V4 * s * w.V4;
        a.V5 = a.V5 * s * w.V5;
        a.V6 = a.V6 * s * w.V6;
        a.V7 = a.V7 * s * w.V7;
        return a;
    }

    /// <summary>Element-wise (a - shift)·s.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Floats8 ShiftScale(Floats8 a, float shift, float s)
    {
        a.V0 = (a.V0 - shift) * s;
        a.V1 = (a.V1 - shift) * s;
        a.V2 = (a.V2 - shift) * s;
        a.V3 = (a.V3 - shift) * s;
        a.V4 = (a.V4 - shift) * s;
        a.V5 = (a.V5 - shift) * s;
        a.V6 = (a.V6 - shift) * s;
        a.V7 = (a.V7 - shift) * s;
        return a;
    }

    /// <summary>Element-wise a·w + b (layer_norm's affine step; <paramref name="hasWeight"/> / <paramref name="hasBias"/> = 0 skip a factor / term).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Floats8 Affine(Floats8 a, Floats8 w, Floats8 b, int hasWeight, int hasBias)
    {
        if (hasWeight != 0)
        {
            a.V0 *= w.V0;
            a.V1 *= w.V1;
            a.V2 *= w.V2;
            a.V3 *= w.V3;
            a.V4 *= w.V4;
            a.V5 *= w.V5;
            a.V6 *= w.V6;
            a.V7 *= w.V7;
        }

        if (hasBias != 0)
        {
            a = Add(a, b);
        }

        return a;
    }

    /// <summary>Σ v.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Sum(Floats8 f) => ((f.V0 + f.V1) + (f.V2 + f.V3)) + ((f.V4 + f.V5) + (f.V6 + f.V7));

    /// <summary>Σ v².</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float SumSquares(Floats8 f) =>
        ((f.V0 * f.V0 + f.V1 * f.V1) + (f.V2 * f.V2 + f.V3 * f.V3)) + ((f.V4 * f.V4 + f.V5 * f.V5) + (f.V6 * f.V6 + f.V7 * f.V7));

    /// <summary>Σ (v - mean)².</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float SumSquaredDeviations(Floats8 f, float mean) => SumSquares(ShiftScale(f, mean, 1f));

    /// <summary>
    /// The largest of <paramref name="m"/> and the eight values, NaN ignored (a NaN reaches the softmax result through
    /// its exponential, which makes the row's sum NaN).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Max(float m, Floats8 f)
    {
        float a = f.V0 > f.V1 ? f.V0 : f.V1;
        float b = f.V2 > f.V3 ? f.V2 : f.V3;
        float c = f.V4 > f.V5 ? f.V4 : f.V5;
        float d = f.V6 > f.V7 ? f.V6 : f.V7;
        a = a > b ? a : b;
        c = c > d ? c : d;
        a = a > c ? a : c;
        return a > m ? a : m;
    }

    /// <summary>log2(e): e^x = 2^(x·log2 e).</summary>
    private const float Log2E = 1.44269504088896341f;

    /// <summary>
    /// The exponential every softmax kernel of the row family uses: 2^(x·log2 e) through the device's <c>ex2.approx</c>
    /// (<see cref="GpuMath.Exp2Fast"/>), one multiply and one special-function instruction, where the range-reduced
    /// <see cref="GpuMath.ExpFast"/> took about twenty and made the long-row softmax instruction-bound. Its arguments
    /// are always v − max (≤ 0, or ±∞ / NaN, which 2^x maps to 0, +∞ and NaN as e^x does); rounding x·log2 e adds
    /// |x|·6e-8 relative error, the same order as the rounding of v − max itself, and for the elements that carry the
    /// sum (|x| of a few units) that stays near the float32 ulp.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Exp(float x) => GpuMath.Exp2Fast(x * Log2E);

    /// <summary>Element-wise e^(v - shift).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Floats8 Exp(Floats8 f, float shift)
    {
        f.V0 = Exp(f.V0 - shift);
        f.V1 = Exp(f.V1 - shift);
        f.V2 = Exp(f.V2 - shift);
        f.V3 = Exp(f.V3 - shift);
        f.V4 = Exp(f.V4 - shift);
        f.V5 = Exp(f.V5 - shift);
        f.V6 = Exp(f.V6 - shift);
        f.V7 = Exp(f.V7 - shift);
        return f;
    }

    /// <summary>
    /// The softmax output of eight inputs: e^(v - rowMax)·inv, or v - shift for log-softmax (<paramref name="log"/> ≠ 0).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Floats8 SoftmaxOut(Floats8 f, float rowMax, float inv, float shift, int log) =>
        log != 0 ? ShiftScale(f, shift, 1f) : ShiftScale(Exp(f, rowMax), 0f, inv);

    /// <summary>Σ of four float32 lanes.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Sum(Float4 v) => (v.X + v.Y) + (v.Z + v.W);

    /// <summary>Σ (v - mean)² of four float32 lanes.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float SumSquaredDeviations(Float4 v, float mean)
    {
        float a = v.X - mean;
        float b = v.Y - mean;
        float c = v.Z - mean;
        float d = v.W - mean;
        return (a * a + b * b) + (c * c + d * d);
    }

    /// <summary>layer_norm's output of four lanes: (v - mean)·inv, times w and plus b where the flags say so.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Float4 Normalize(Float4 v, float mean, float inv, Float4 w, Float4 b, int hasWeight, int hasBias)
    {
        v.X = (v.X - mean) * inv;
        v.Y = (v.Y - mean) * inv;
        v.Z = (v.Z - mean) * inv;
        v.W = (v.W - mean) * inv;
        if (hasWeight != 0)
        {
            v.X *= w.X;
            v.Y *= w.Y;
            v.Z *= w.Z;
            v.W *= w.W;
        }

        if (hasBias != 0)
        {
            v.X += b.X;
            v.Y += b.Y;
            v.Z += b.Z;
            v.W += b.W;
        }

        return v;
    }
}
