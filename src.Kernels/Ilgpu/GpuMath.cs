using System.Runtime.CompilerServices;
using ILGPU;
using ILGPU.Runtime.Cuda;

namespace GemsInjector.Kernels.Ilgpu;

/// <summary>
/// float32 math for the kernels. <see cref="Exp"/>, <see cref="Log"/> and <see cref="Erfc"/> are built from adds,
/// multiplies and bit operations only (Cephes-style range reduction and polynomials, about 1-2 ulp), so they do not depend
/// on the back end (no libdevice, no ILGPU.Algorithms). The activations (<see cref="Silu"/>, <see cref="Sigmoid"/>,
/// <see cref="GeluErf"/>, <see cref="GeluTanh"/>, <see cref="Tanh"/> above 0.625) and the <c>exp</c> operator
/// (<see cref="ExpFast"/>) take the GPU's special-function unit through ILGPU's intrinsics (<see cref="Exp2Fast"/>:
/// <c>ex2.approx</c>; <see cref="Rcp"/>: <c>rcp.rn</c>), the exact functions on the CPU simulator; <see cref="GeluErf16"/>
/// and <see cref="Tanh16"/> are cheaper forms for results rounded to 16 bits, accurate to about 1e-5 relative / 1e-7
/// absolute (the 16-bit element-wise kernels are bound by instructions, not bytes). float16 conversions are
/// single <c>cvt</c> instructions on CUDA (ILGPU's <see cref="Half"/>; same bits as the software conversions, which the
/// simulator runs, except that a NaN comes out as the canonical NaN). No inline PTX: nothing here passes through local
/// memory. Also the warp / group reductions the row kernels share.
/// </summary>
internal static class GpuMath
{
    public const float NegInf = float.NegativeInfinity;

    /// <summary>log2(e): e^x = 2^(x·log2 e).</summary>
    private const float Log2E = 1.44269504088896341f;

    /// <summary>e^x (Cephes expf): NaN → NaN, overflow → +∞, underflow → 0 (through the subnormals).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Exp(float x)
    {
        if (float.IsNaN(x))
        {
            return x;
        }

        if (x > 88.72283905206835f)
        {
            return float.PositiveInfinity;
        }

        if (x < -103.97208f)
        {
            return 0f;
        }

        float t = 1.44269504088896341f * x + 0.5f;
        int n = (int)t;
        if (n > t)
        {
            n--;
        }

        float fn = n;
        float r = x - fn * 0.693359375f;
        r -= fn * -2.12194440e-4f;
        float z = r * r;
        float p = ((((1.9875691500E-4f * r + 1.3981999507E-3f) * r + 8.3334519073E-3f) * r + 4.1665795894E-2f) * r + 1.6666665459E-1f) * r + 5.0000001201E-1f;
        p = p * z + r + 1f;
        int n1 = n >> 1;
        int n2 = n - n1;
        return p * Pow2(n1) * Pow2(n2);
    }

    /// <summary>2^n for n in [-126, 127] as a float built from its bits.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float Pow2(int n) => Interop.IntAsFloat((uint)(n + 127) << 23);

    /// <summary>Natural logarithm (Cephes logf): x &lt; 0 or NaN → NaN, 0 → -∞, +∞ → +∞.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Log(float x)
    {
        if (!(x > 0f))
        {
            return x == 0f ? float.NegativeInfinity : float.NaN;
        }

        if (x == float.PositiveInfinity)
        {
            return x;
        }

        int e = 0;
        if (x < 1.17549435e-38f)
        {
            x *= 8388608f;
            e = -23;
        }

        uint bits = Interop.FloatAsInt(x);
        e += (int)((bits >> 23) & 0xff) - 126;
        float m = Interop.IntAsFloat((bits & 0x807fffffu) | 0x3f000000u);
        if (m < 0.707106781186547524f)
        {
            e -= 1;
            m = m + m - 1f;
        }
        else
        {
            m -= 1f;
        }

        float z = m * m;
        float y = ((((((((7.0376836292E-2f * m - 1.1514610310E-1f) * m + 1.1676998740E-1f) * m - 1.2420140846E-1f) * m
            + 1.4249322787E-1f) * m - 1.6668057665E-1f) * m + 2.0000714765E-1f) * m - 2.4999993993E-1f) * m + 3.3333331174E-1f) * m * z;
        float fe = e;
        y += -2.12194440e-4f * fe;
        y += -0.5f * z;
        return m + y + 0.693359375f * fe;
    }

    /// <summary>
    /// tanh: Cephes' polynomial for |x| ≤ 0.625, 1 - 2/(e^{2|x|}+1) elsewhere (through <see cref="Exp2Fast"/> and
    /// <see cref="Rcp"/>: e^{2|x|} = +∞ gives exactly 1).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Tanh(float x)
    {
        float a = x < 0f ? -x : x;
        if (a > 0.625f)
        {
            float r = 1f - 2f * Rcp(Exp2Fast(2f * Log2E * a) + 1f);
            return x < 0f ? -r : r;
        }

        float z = x * x;
        return ((((-5.70498872745E-3f * z + 2.06390887954E-2f) * z - 5.37397155531E-2f) * z + 1.33314422036E-1f) * z - 3.33332819422E-1f) * z * x + x;
    }

    /// <summary>
    /// 2^x through ILGPU's intrinsic: <c>ex2.approx.f32</c> on CUDA (at most 2 ulp, subnormals kept; NaN → NaN,
    /// +∞ → +∞, -∞ → 0), the exact function on the CPU simulator. Only for results that are scaled or rounded further
    /// (the activations), or after range reduction (<see cref="ExpFast"/>): e^x as 2^(x·log2 e) carries the rounding of
    /// x·log2 e (|x|·6e-8 relative).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Exp2Fast(float x) => IntrinsicMath.CPUOnly.Exp2(x);

    /// <summary>
    /// e^x for the <c>exp</c> operator: n = round(x·log2 e), r = x − n·ln 2 (Cody–Waite with two constants, as
    /// <see cref="Exp"/>), 2^(r·log2 e) by <see cref="Exp2Fast"/> (|r·log2 e| ≤ 0.5, so the argument's own rounding stays
    /// near 3e-8 relative), times 2^n in two steps (subnormal results kept): within about 3 ulp over the whole range on
    /// CUDA, half the instructions of the polynomial. NaN → NaN, overflow → +∞, x &lt; -103.97 → 0.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float ExpFast(float x)
    {
        if (x > 88.72283905206835f)
        {
            return float.PositiveInfinity;
        }

        if (x < -103.97208f)
        {
            return 0f;
        }

        // Round to nearest by the 1.5·2^23 shift (|x·log2 e| < 151 here). A NaN stays in r, so the result is NaN whatever
        // (int)NaN gives.
        float fn = (x * Log2E + 12582912f) - 12582912f;
        float r = x - fn * 0.693359375f;
        r -= fn * -2.12194440e-4f;
        int n = (int)fn;
        int n1 = n >> 1;
        return Exp2Fast(r * Log2E) * Pow2(n1) * Pow2(n - n1);
    }

    /// <summary>1/x through ILGPU's intrinsic (<c>rcp.rn.f32</c> on CUDA: correctly rounded, cheaper than a division).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Rcp(float x) => IntrinsicMath.CPUOnly.Rcp(x);

    /// <summary>
    /// The logistic function 1/(1+e^{-x}) (through <see cref="Exp2Fast"/> and <see cref="RcpAboveOne"/>, whose argument
    /// 1 + e^{-x} is never below 1: ≤ 1 in magnitude and within about 6e-7 relative, inside FlagGems' float32 rtol 1.3e-6,
    /// whose atol 1e-4 dominates below 77 anyway).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Sigmoid(float x) => RcpAboveOne(1f + Exp2Fast(-Log2E * x));

    /// <summary>The exponent correction of Numerical Recipes' erfc fit, in t = 1/(1 + |x|/2).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float ErfcPolynomial(float t) => -1.26551223f + t * (1.00002368f + t * (0.37409196f + t * (0.09678418f + t * (-0.18628806f
        + t * (0.27886807f + t * (-1.13520398f + t * (1.48851587f + t * (-0.82215223f + t * 0.17087277f))))))));

    /// <summary>erfc(x) through <see cref="Rcp"/> and <see cref="Exp2Fast"/>: the fit's 1.2e-7 plus a few ulp (Numerical Recipes' Chebyshev fit).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float ErfcFast(float x)
    {
        float z = x < 0f ? -x : x;
        float t = Rcp(1f + 0.5f * z);
        float poly = ErfcPolynomial(t);
        float r = t * Exp2Fast(Log2E * (poly - z * z));
        return x >= 0f ? r : 2f - r;
    }

    /// <summary>erfc(x) with fractional error below 1.2e-7 everywhere (Numerical Recipes' Chebyshev fit).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Erfc(float x)
    {
        float z = x < 0f ? -x : x;
        float t = 1f / (1f + 0.5f * z);
        float poly = ErfcPolynomial(t);
        float r = t * Exp(-z * z + poly);
        return x >= 0f ? r : 2f - r;
    }

    /// <summary>GELU, exact form: x/2 · erfc(-x/√2).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float GeluErf(float x) => 0.5f * x * ErfcFast(-0.70710678118654752f * x);

    /// <summary>
    /// GELU, tanh form: x/2 · (1 + tanh(u)) with u = √(2/π)(x + 0.044715x³), computed as x · sigmoid(2u) (the same
    /// function: 1 + tanh(u) = 2·sigmoid(2u)), which has no cancellation for negative x and needs one exp and one
    /// reciprocal.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float GeluTanh(float x)
    {
        float u = 0.7978845608028654f * (x + 0.044715f * x * x * x);
        return x * RcpAboveOne(1f + Exp2Fast(-2f * Log2E * u));
    }

    /// <summary>
    /// 1/x for x ≥ 1 (or +∞ → 0) as rsqrt(x)²: one special-function instruction (<c>rsqrt.approx.f32</c>, 2^-22.9
    /// relative) and a multiply, about 3e-7 relative, where <see cref="Rcp"/>'s correctly rounded <c>rcp.rn</c> is a
    /// sequence of several instructions with a slow path. Exact 1/√x on the CPU simulator.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float RcpAboveOne(float x)
    {
        float r = IntrinsicMath.CPUOnly.Rsqrt(x);
        return r * r;
    }

    /// <summary>log2(e)·P(t) with P(t) ≈ ln(erfc(z)/t) + z², t = 1/(1 + z/2), fitted on t ∈ [0.2, 1] (z ≤ 8): 7.7e-6 relative in erfc.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float ErfcExponent16(float t) =>
        -1.82722655f + t * (1.46862241f + t * (0.367284837f + t * (0.684230896f + t * (-1.02290381f + t * 0.330003192f))));

    /// <summary>
    /// GELU (erf form) for a result rounded to float16 / bfloat16: x·Φ(x) with Φ from erfc(|x|/√2) ≈ t·2^(Q(t) − log2(e)·x²/2)
    /// (<see cref="ErfcExponent16"/>, a degree-5 fit in place of the degree-9 one, and <see cref="RcpAboveOne"/> for t):
    /// about 1e-5 relative before rounding, well inside the 16-bit tolerances (float16 1e-3, bfloat16 1.6e-2 relative,
    /// 1e-4 absolute; below x ≈ -11, where the fit stops, |GELU| &lt; 1e-26). About half the instructions of
    /// <see cref="GeluErf"/>, which the float32 kernels keep.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float GeluErf16(float x)
    {
        float a = x < 0f ? -x : x;
        float t = RcpAboveOne(1f + 0.353553390593273762f * a);
        float r = t * Exp2Fast(ErfcExponent16(t) - 0.5f * Log2E * a * a);
        return x * (x >= 0f ? 1f - 0.5f * r : 0.5f * r);
    }

    /// <summary>
    /// tanh for a result rounded to float16 / bfloat16: 1 − 2/(e^{2|x|} + 1) everywhere (through <see cref="Exp2Fast"/> and
    /// <see cref="RcpAboveOne"/>), with no polynomial branch for small |x|: the absolute error stays near 1e-7, far below the
    /// 16-bit tolerances' 1e-4, though the relative error of tiny results is large (<see cref="Tanh"/>, which the float32
    /// kernels keep, is accurate there).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Tanh16(float x)
    {
        float a = x < 0f ? -x : x;
        float r = 1f - 2f * RcpAboveOne(Exp2Fast(2f * Log2E * a) + 1f);
        return x < 0f ? -r : r;
    }

    /// <summary>x · sigmoid(x), as x · 1/(1 + e^{-x}) (see <see cref="Sigmoid"/>).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Silu(float x) => x * RcpAboveOne(1f + Exp2Fast(-Log2E * x));

    /// <summary>max with NaN propagation (NaN wins, like torch.max).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float MaxNaN(float a, float b) => float.IsNaN(a) ? a : (float.IsNaN(b) ? b : (a > b ? a : b));

    // ---- 16-bit storage ----

    /// <summary>IEEE binary16 bits → float (exact).</summary>
    /// <remarks>
    /// One form for every device: ILGPU compiles the Half → float conversion to <c>cvt.f32.f16</c>, and on the CPU
    /// accelerator (which runs this IL as .NET code) its table conversion is exact too (bit for bit the IEEE widening,
    /// NaN payloads kept). A device branch here would leave its dead arm in every float16 kernel's PTX, which ILGPU does
    /// not fold and the driver's JIT then pays for.
    /// </remarks>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float HalfToFloat(ushort h) => Interop.IntAsFloat(h);

    /// <summary>float → IEEE binary16 bits, round to nearest even (overflow → ∞, NaN stays NaN).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ushort FloatToHalf(float value)
    {
        if (CudaAsm.IsSupported)
        {
            // cvt.rn.f16.f32 on CUDA; ILGPU's host-side float → Half truncates, hence the software path elsewhere.
            return Interop.FloatAsInt((Half)value);
        }

        uint f = Interop.FloatAsInt(value);
        uint sign = f & 0x80000000u;
        f ^= sign;
        uint o;
        if (f >= 0x47800000u)
        {
            o = f > 0x7f800000u ? 0x7e00u : 0x7c00u;
        }
        else if (f < 0x38800000u)
        {
            // Subnormal or zero: adding 0.5 lets the float adder round (to nearest even) at the half's last place.
            float s = Interop.IntAsFloat(f) + 0.5f;
            o = Interop.FloatAsInt(s) - 0x3f000000u;
        }
        else
        {
            uint odd = (f >> 13) & 1u;
            f += 0xc8000fffu + odd;
            o = f >> 13;
        }

        return (ushort)(o | (sign >> 16));
    }

    /// <summary>bfloat16 bits → float (exact).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float BFloat16ToFloat(ushort b) => Interop.IntAsFloat((uint)b << 16);

    /// <summary>float → bfloat16 bits, round to nearest even (NaN stays a quiet NaN).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ushort FloatToBFloat16(float value) => (ushort)(RoundToBFloat16Bits(value) >> 16);

    /// <summary>
    /// The float's bits rounded to nearest even at bit 16, so the upper half is the bfloat16 (the lower half is junk); a
    /// NaN gets its quiet bit set instead.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static uint RoundToBFloat16Bits(float value)
    {
        uint f = Interop.FloatAsInt(value);
        return (f & 0x7fffffffu) > 0x7f800000u ? f | 0x00400000u : f + 0x7fffu + ((f >> 16) & 1u);
    }

    /// <summary>Two floats → two float16 in one word (<paramref name="low"/> in bits 0-15), round to nearest even.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static uint PackHalf2(float low, float high)
    {
        return FloatToHalf(low) | ((uint)FloatToHalf(high) << 16);
    }

    /// <summary>Two floats → two bfloat16 in one word (<paramref name="low"/> in bits 0-15), round to nearest even.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static uint PackBFloat162(float low, float high)
    {
        if (CudaAsm.IsSupported)
        {
            return ConvertToBFloat162(low, high);
        }

        // The high element stays in place (a mask instead of a shift down and back up).
        return (RoundToBFloat16Bits(low) >> 16) | (RoundToBFloat16Bits(high) & 0xffff0000u);
    }

    /// <summary>
    /// Both roundings in one <c>cvt.rn.bf16x2.f32</c> (compute capability 8.0+, like the bfloat16 tensor-core kernels):
    /// the integer rounding above is about a dozen instructions per pair, which made the bfloat16 row kernels
    /// measurably slower than their float16 twins (one <c>cvt</c> per element) on the H200. NaN becomes the canonical
    /// quiet NaN. The first source goes to the upper half.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static uint ConvertToBFloat162(float low, float high)
    {
        CudaAsm.Emit("cvt.rn.bf16x2.f32 %0, %1, %2;", out Output<uint> packed, high, low);
        return packed.Value;
    }

    /// <summary>Loads a 16-bit element as float: bfloat16 when <paramref name="bf16"/> is non-zero, else float16.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Load16(ushort bits, int bf16) => bf16 != 0 ? BFloat16ToFloat(bits) : HalfToFloat(bits);

    /// <summary>Two floats rounded to the 16-bit format and packed, <paramref name="low"/> in bits 0-15 (bfloat16 when <paramref name="bf16"/> is non-zero).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static uint Store16Pair(float low, float high, int bf16) => bf16 != 0 ? PackBFloat162(low, high) : PackHalf2(low, high);

    /// <summary>Rounds a float to the 16-bit format (bfloat16 when <paramref name="bf16"/> is non-zero, else float16).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ushort Store16(float value, int bf16) => bf16 != 0 ? FloatToBFloat16(value) : FloatToHalf(value);

    // ---- reductions (all lanes of the warp / group get the result) ----

    /// <summary>Sum over the warp by butterfly shuffles.</summary>
    public static float WarpSum(float v)
    {
        for (int o = Warp.WarpSize / 2; o > 0; o >>= 1)
        {
            v += Warp.ShuffleXor(v, o);
        }

        return v;
    }

    /// <summary>NaN-propagating max over the warp.</summary>
    public static float WarpMax(float v)
    {
        for (int o = Warp.WarpSize / 2; o > 0; o >>= 1)
        {
            v = MaxNaN(v, Warp.ShuffleXor(v, o));
        }

        return v;
    }

    /// <summary>
    /// Sum over the group: warp shuffles, then one partial per warp in <paramref name="scratch"/> (shared, at least
    /// one slot per warp), reduced again by every warp. Ends with a barrier so the scratch can be reused.
    /// </summary>
    public static float GroupSum(float v, ArrayView<float> scratch)
    {
        v = WarpSum(v);
        if (Warp.LaneIdx == 0)
        {
            scratch[Warp.WarpIdx] = v;
        }

        Group.Barrier();
        int warps = (Group.DimX + Warp.WarpSize - 1) / Warp.WarpSize;
        v = Warp.LaneIdx < warps ? scratch[Warp.LaneIdx] : 0f;
        v = WarpSum(v);
        Group.Barrier();
        return v;
    }

    /// <summary>NaN-propagating max over the group (see <see cref="GroupSum"/>).</summary>
    public static float GroupMax(float v, ArrayView<float> scratch)
    {
        v = WarpMax(v);
        if (Warp.LaneIdx == 0)
        {
            scratch[Warp.WarpIdx] = v;
        }

        Group.Barrier();
        int warps = (Group.DimX + Warp.WarpSize - 1) / Warp.WarpSize;
        v = Warp.LaneIdx < warps ? scratch[Warp.LaneIdx] : NegInf;
        v = WarpMax(v);
        Group.Barrier();
        return v;
    }

    /// <summary>
    /// True when (a, ia) comes before (b, ib) in "largest first" order: NaN is the largest (as torch's max / topk),
    /// ties go to the lower index. An index below 0 marks an empty slot, which comes last.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static bool Before(float a, int ia, float b, int ib)
    {
        if (ib < 0)
        {
            return ia >= 0;
        }

        if (ia < 0)
        {
            return false;
        }

        bool an = float.IsNaN(a);
        bool bn = float.IsNaN(b);
        if (an || bn)
        {
            return an && (!bn || ia < ib);
        }

        return a > b || (a == b && ia < ib);
    }

    /// <summary>Group-wide arg-max in <see cref="Before"/> order; every thread gets the winning value and index.</summary>
    public static void GroupArgMax(ref float value, ref int index, ArrayView<float> scratchValue, ArrayView<int> scratchIndex)
    {
        for (int o = Warp.WarpSize / 2; o > 0; o >>= 1)
        {
            float ov = Warp.ShuffleXor(value, o);
            int oi = Warp.ShuffleXor(index, o);
            if (Before(ov, oi, value, index))
            {
                value = ov;
                index = oi;
            }
        }

        if (Warp.LaneIdx == 0)
        {
            scratchValue[Warp.WarpIdx] = value;
            scratchIndex[Warp.WarpIdx] = index;
        }

        Group.Barrier();
        int warps = (Group.DimX + Warp.WarpSize - 1) / Warp.WarpSize;
        if (Warp.LaneIdx < warps)
        {
            value = scratchValue[Warp.LaneIdx];
            index = scratchIndex[Warp.LaneIdx];
        }
        else
        {
            value = NegInf;
            index = -1;
        }

        for (int o = Warp.WarpSize / 2; o > 0; o >>= 1)
        {
            float ov = Warp.ShuffleXor(value, o);
            int oi = Warp.ShuffleXor(index, o);
            if (Before(ov, oi, value, index))
            {
                value = ov;
                index = oi;
            }
        }

        Group.Barrier();
    }
}
