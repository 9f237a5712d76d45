using System;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace GemsInjector.Kernels.Cpu;

/// <summary>
/// Inlinable float32 vector math. .NET's <c>Vector512.Exp</c> is not inlined inside loops; these are.
/// </summary>
internal static class VectorMath
{
    // Cody-Waite split of ln 2 and the Cephes expf polynomial (relative error about 1e-7 on [-ln2/2, ln2/2]).
    private const float Log2E = 1.44269504088896341f;
    private const float Ln2Hi = 0.693359375f;
    private const float Ln2Lo = -2.12194440e-4f;
    private const float P0 = 1.9875691500e-4f;
    private const float P1 = 1.3981999507e-3f;
    private const float P2 = 8.3334519073e-3f;
    private const float P3 = 4.1665795894e-2f;
    private const float P4 = 1.6666665459e-1f;
    private const float P5 = 5.0000001201e-1f;

    // Inputs are clamped here: above 89, e^x overflows to +Inf through the scaling; below -104 it underflows to 0.
    private const float ClampHigh = 89f;
    private const float ClampLow = -104f;

    /// <summary>e^x per lane; +Inf above ~88.72, 0 below ~-103.9, NaN stays NaN.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> Exp(Vector512<float> x)
    {
        Vector512<float> c = Vector512.MinNative(Vector512.MaxNative(x, Vector512.Create(ClampLow)), Vector512.Create(ClampHigh));
        if (Avx512F.IsSupported)
        {
            // vscalefps computes p·2^n in one instruction, rounding once (to +Inf above ~88.72, gradually to 0 below).
            return Vector512.ConditionalSelect(Vector512.Equals(x, x), Avx512F.Scale(ReducedExp(c, out Vector512<float> scaleN), scaleN), x);
        }

        Vector512<float> n = Vector512.Round(c * Vector512.Create(Log2E));
        Vector512<float> r = Vector512.FusedMultiplyAdd(n, Vector512.Create(-Ln2Hi), c);
        r = Vector512.FusedMultiplyAdd(n, Vector512.Create(-Ln2Lo), r);
        Vector512<float> p = Vector512.Create(P0);
        p = Vector512.FusedMultiplyAdd(p, r, Vector512.Create(P1));
        p = Vector512.FusedMultiplyAdd(p, r, Vector512.Create(P2));
        p = Vector512.FusedMultiplyAdd(p, r, Vector512.Create(P3));
        p = Vector512.FusedMultiplyAdd(p, r, Vector512.Create(P4));
        p = Vector512.FusedMultiplyAdd(p, r, Vector512.Create(P5));
        p = Vector512.FusedMultiplyAdd(p, r * r, r + Vector512<float>.One);
        // 2^n in two factors so that n in [-150, 129] never leaves the normal exponent range.
        Vector512<int> ni = Vector512.ConvertToInt32(n);
        Vector512<int> n1 = Vector512.ShiftRightArithmetic(ni, 1);
        Vector512<int> n2 = ni - n1;
        Vector512<float> s1 = Vector512.ShiftLeft(n1 + Vector512.Create(127), 23).AsSingle();
        Vector512<float> s2 = Vector512.ShiftLeft(n2 + Vector512.Create(127), 23).AsSingle();
        Vector512<float> result = p * s1 * s2;
        return Vector512.ConditionalSelect(Vector512.Equals(x, x), result, x);
    }

    /// <summary>log2(e), for callers that scale their argument themselves before <see cref="Exp2NonPositive"/>.</summary>
    public const float Log2OfE = Log2E;

    // 2^t = 2^n · 2^(k/32) · 2^f with t rounded to r = n + k/32 (k in [0, 31]) and |f| ≤ 1/64: a 32-entry table of 2^(k/32)
    // and a degree-2 minimax fit of 2^f (fitted here by a Remez exchange, relative error 5.3e-8 with the constant fixed
    // at 1). Worst relative error measured over [-126, 1]: 1.6e-7, with the table entries rounded to float32.
    private const float Exp2C1 = 0.6931573991252901f;
    private const float Exp2C2 = 0.24023181918969014f;

    // Adding 1.5·2^18 rounds t to a multiple of 1/32 (the float32 spacing there) and leaves 32·r in the low bits.
    private const float Exp2RoundTo32nds = 393216f;

    // Below -150, 2^t rounds to 0; the clamp also turns -Inf into a finite argument (so t - r is not NaN).
    private const float Exp2ClampLow = -150f;

    private static readonly Vector512<float> Exp2TableLow = Exp2Table(0);
    private static readonly Vector512<float> Exp2TableHigh = Exp2Table(16);

    /// <summary>
    /// 2^t per lane for t ≤ 1 or -Inf (softmax's (x - max)·log2 e; not NaN); relative error below 2e-7, results below
    /// 2^-126 rounded gradually to 0. Nine vector operations with AVX-512 (the table lookup is one two-register
    /// permute, 2^n one <c>vscalefps</c>), against fourteen for <see cref="Exp(Vector512{float})"/>: t arrives already
    /// scaled by log2 e, so there is no Cody-Waite split.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> Exp2NonPositive(Vector512<float> t)
    {
        Vector512<float> c = Vector512.MaxNative(t, Vector512.Create(Exp2ClampLow));
        Vector512<float> shifted = c + Vector512.Create(Exp2RoundTo32nds);
        Vector512<float> r = shifted - Vector512.Create(Exp2RoundTo32nds);
        Vector512<float> f = c - r;
        Vector512<int> k = shifted.AsInt32();
        Vector512<float> q = Vector512.FusedMultiplyAdd(Vector512.Create(Exp2C2), f, Vector512.Create(Exp2C1));
        if (Avx512F.IsSupported)
        {
            // The permute reads the low 5 bits of each index: k mod 32. vscalefps multiplies by 2^floor(r) = 2^n.
            Vector512<float> entry = Avx512F.PermuteVar16x32x2(Exp2TableLow, k, Exp2TableHigh);
            return Avx512F.Scale(Vector512.FusedMultiplyAdd(entry * f, q, entry), r);
        }

        Vector512<int> low = k & Vector512.Create(15);
        Vector512<float> tableEntry = Vector512.ConditionalSelect(
            Vector512.Equals(k & Vector512.Create(16), Vector512<int>.Zero).AsSingle(),
            Vector512.Shuffle(Exp2TableLow, low),
            Vector512.Shuffle(Exp2TableHigh, low));
        Vector512<float> p = Vector512.FusedMultiplyAdd(tableEntry * f, q, tableEntry);
        // 2^n in two factors so that n in [-150, 1] never leaves the normal exponent range.
        Vector512<int> n = Vector512.ConvertToInt32(Vector512.Floor(r));
        Vector512<int> n1 = Vector512.ShiftRightArithmetic(n, 1);
        Vector512<float> s1 = Vector512.ShiftLeft(n1 + Vector512.Create(127), 23).AsSingle();
        Vector512<float> s2 = Vector512.ShiftLeft(n - n1 + Vector512.Create(127), 23).AsSingle();
        return p * s1 * s2;
    }

    private static Vector512<float> Exp2Table(int first)
    {
        Span<float> entries = stackalloc float[Vector512<float>.Count];
        for (int i = 0; i < entries.Length; i++)
        {
            entries[i] = (float)Math.Pow(2, (first + i) / 32.0);
        }

        return Vector512.Create<float>(entries);
    }

    /// <summary>e^r for r = c - n·ln 2, with n = round(c·log2 e) returned; |r| ≤ ln2/2.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> ReducedExp(Vector512<float> c, out Vector512<float> n)
    {
        n = Vector512.Round(c * Vector512.Create(Log2E));
        Vector512<float> r = Vector512.FusedMultiplyAdd(n, Vector512.Create(-Ln2Hi), c);
        r = Vector512.FusedMultiplyAdd(n, Vector512.Create(-Ln2Lo), r);
        Vector512<float> p = Vector512.Create(P0);
        p = Vector512.FusedMultiplyAdd(p, r, Vector512.Create(P1));
        p = Vector512.FusedMultiplyAdd(p, r, Vector512.Create(P2));
        p = Vector512.FusedMultiplyAdd(p, r, Vector512.Create(P3));
        p = Vector512.FusedMultiplyAdd(p, r, Vector512.Create(P4));
        p = Vector512.FusedMultiplyAdd(p, r, Vector512.Create(P5));
        return Vector512.FusedMultiplyAdd(p, r * r, r + Vector512<float>.One);
    }

    /// <summary>e^x per lane; see <see cref="Exp(Vector512{float})"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Exp(Vector256<float> x)
    {
        Vector256<float> c = Vector256.MinNative(Vector256.MaxNative(x, Vector256.Create(ClampLow)), Vector256.Create(ClampHigh));
        Vector256<float> n = Vector256.Round(c * Vector256.Create(Log2E));
        Vector256<float> r = Vector256.FusedMultiplyAdd(n, Vector256.Create(-Ln2Hi), c);
        r = Vector256.FusedMultiplyAdd(n, Vector256.Create(-Ln2Lo), r);
        Vector256<float> p = Vector256.Create(P0);
        p = Vector256.FusedMultiplyAdd(p, r, Vector256.Create(P1));
        p = Vector256.FusedMultiplyAdd(p, r, Vector256.Create(P2));
        p = Vector256.FusedMultiplyAdd(p, r, Vector256.Create(P3));
        p = Vector256.FusedMultiplyAdd(p, r, Vector256.Create(P4));
        p = Vector256.FusedMultiplyAdd(p, r, Vector256.Create(P5));
        p = Vector256.FusedMultiplyAdd(p, r * r, r + Vector256<float>.One);
        Vector256<int> ni = Vector256.ConvertToInt32(n);
        Vector256<int> n1 = Vector256.ShiftRightArithmetic(ni, 1);
        Vector256<int> n2 = ni - n1;
        Vector256<float> s1 = Vector256.ShiftLeft(n1 + Vector256.Create(127), 23).AsSingle();
        Vector256<float> s2 = Vector256.ShiftLeft(n2 + Vector256.Create(127), 23).AsSingle();
        Vector256<float> result = p * s1 * s2;
        return Vector256.ConditionalSelect(Vector256.Equals(x, x), result, x);
    }

    /// <summary>e^x per lane; see <see cref="Exp(Vector512{float})"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<float> Exp(Vector128<float> x)
    {
        Vector128<float> c = Vector128.MinNative(Vector128.MaxNative(x, Vector128.Create(ClampLow)), Vector128.Create(ClampHigh));
        Vector128<float> n = Vector128.Round(c * Vector128.Create(Log2E));
        Vector128<float> r = Vector128.FusedMultiplyAdd(n, Vector128.Create(-Ln2Hi), c);
        r = Vector128.FusedMultiplyAdd(n, Vector128.Create(-Ln2Lo), r);
        Vector128<float> p = Vector128.Create(P0);
        p = Vector128.FusedMultiplyAdd(p, r, Vector128.Create(P1));
        p = Vector128.FusedMultiplyAdd(p, r, Vector128.Create(P2));
        p = Vector128.FusedMultiplyAdd(p, r, Vector128.Create(P3));
        p = Vector128.FusedMultiplyAdd(p, r, Vector128.Create(P4));
        p = Vector128.FusedMultiplyAdd(p, r, Vector128.Create(P5));
        p = Vector128.FusedMultiplyAdd(p, r * r, r + Vector128<float>.One);
        Vector128<int> ni = Vector128.ConvertToInt32(n);
        Vector128<int> n1 = Vector128.ShiftRightArithmetic(ni, 1);
        Vector128<int> n2 = ni - n1;
        Vector128<float> s1 = Vector128.ShiftLeft(n1 + Vector128.Create(127), 23).AsSingle();
        Vector128<float> s2 = Vector128.ShiftLeft(n2 + Vector128.Create(127), 23).AsSingle();
        Vector128<float> result = p * s1 * s2;
        return Vector128.ConditionalSelect(Vector128.Equals(x, x), result, x);
    }

    /// <summary>
    /// tanh(x) per lane: sign(x) * m / (m + 2) with m = e^(2|x|) - 1 computed without cancellation (the Exp polynomial
    /// gives e^r - 1 directly and m = 2^n (e^r - 1) + (2^n - 1) in one fused step), so small |x| keeps full relative
    /// accuracy. |x| is capped at 10 (tanh rounds to ±1 there); NaN stays NaN.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> Tanh(Vector512<float> x)
    {
        Vector512<float> magnitude = Vector512.Abs(x);
        Vector512<float> y = Vector512.MinNative(magnitude + magnitude, Vector512.Create(20f));
        Vector512<float> m = ExpM1NonNegative(y);
        Vector512<float> t = m / (m + Vector512.Create(2f));
        Vector512<float> signed = (t.AsUInt32() | (x.AsUInt32() & Vector512.Create(0x8000_0000u))).AsSingle();
        return Vector512.ConditionalSelect(Vector512.Equals(x, x), signed, x);
    }

    /// <summary>e^y - 1 for 0 &lt;= y &lt;= 20 (not NaN), accurate to a few ulp also near 0.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> ExpM1NonNegative(Vector512<float> y)
    {
        Vector512<float> n = Vector512.Round(y * Vector512.Create(Log2E));
        Vector512<float> r = Vector512.FusedMultiplyAdd(n, Vector512.Create(-Ln2Hi), y);
        r = Vector512.FusedMultiplyAdd(n, Vector512.Create(-Ln2Lo), r);
        Vector512<float> p = Vector512.Create(P0);
        p = Vector512.FusedMultiplyAdd(p, r, Vector512.Create(P1));
        p = Vector512.FusedMultiplyAdd(p, r, Vector512.Create(P2));
        p = Vector512.FusedMultiplyAdd(p, r, Vector512.Create(P3));
        p = Vector512.FusedMultiplyAdd(p, r, Vector512.Create(P4));
        p = Vector512.FusedMultiplyAdd(p, r, Vector512.Create(P5));
        Vector512<float> q = Vector512.FusedMultiplyAdd(p, r * r, r); // e^r - 1
        Vector512<float> s = Vector512.ShiftLeft(Vector512.ConvertToInt32(n) + Vector512.Create(127), 23).AsSingle(); // 2^n, n in [0, 29]
        return Vector512.FusedMultiplyAdd(s, q, s - Vector512<float>.One);
    }

    /// <summary>
    /// The normal CDF Φ(x) = erfc(-x/√2) / 2 per lane, with erfc from the Numerical Recipes Chebyshev fit
    /// (fractional error below 1.2e-7 for all arguments), so Φ keeps its relative accuracy far into the left tail.
    /// Φ(+Inf) = 1, Φ(-Inf) = 0, NaN stays NaN.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> NormalCdf(Vector512<float> x)
    {
        Vector512<float> z = Vector512.Abs(x) * Vector512.Create(0.70710678118654752f);
        Vector512<float> t = Vector512<float>.One / Vector512.FusedMultiplyAdd(z, Vector512.Create(0.5f), Vector512<float>.One);
        Vector512<float> p = Vector512.Create(0.17087277f);
        p = Vector512.FusedMultiplyAdd(p, t, Vector512.Create(-0.82215223f));
        p = Vector512.FusedMultiplyAdd(p, t, Vector512.Create(1.48851587f));
        p = Vector512.FusedMultiplyAdd(p, t, Vector512.Create(-1.13520398f));
        p = Vector512.FusedMultiplyAdd(p, t, Vector512.Create(0.27886807f));
        p = Vector512.FusedMultiplyAdd(p, t, Vector512.Create(-0.18628806f));
        p = Vector512.FusedMultiplyAdd(p, t, Vector512.Create(0.09678418f));
        p = Vector512.FusedMultiplyAdd(p, t, Vector512.Create(0.37409196f));
        p = Vector512.FusedMultiplyAdd(p, t, Vector512.Create(1.00002368f));
        p = Vector512.FusedMultiplyAdd(p, t, Vector512.Create(-1.26551223f));
        Vector512<float> halfErfc = Vector512.Create(0.5f) * t * Exp(Vector512.FusedMultiplyAdd(-z, z, p)); // erfc(|x|/√2) / 2
        Vector512<float> cdf = Vector512.ConditionalSelect(
            Vector512.LessThan(x, Vector512<float>.Zero), halfErfc, Vector512<float>.One - halfErfc);
        return Vector512.ConditionalSelect(Vector512.Equals(x, x), cdf, x);
    }
}
