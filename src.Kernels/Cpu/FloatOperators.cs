using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace GemsInjector.Kernels.Cpu;

/// <summary>A float32 unary elementwise operator on 16 lanes; the generic loops are specialized per operator.</summary>
internal interface IFloatOperator
{
    static abstract Vector512<float> Invoke(Vector512<float> x);
}

/// <summary>A float32 binary elementwise operator on 16 lanes, with a scalar factor (used by add/sub).</summary>
internal interface IBinaryFloatOperator
{
    static abstract Vector512<float> Invoke(Vector512<float> self, Vector512<float> other, Vector512<float> alpha);
}

/// <summary>self + alpha * other as one fused multiply-add (sub passes -alpha), like aten's vectorized kernel.</summary>
internal readonly struct AddScaledOperator : IBinaryFloatOperator
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> Invoke(Vector512<float> self, Vector512<float> other, Vector512<float> alpha) =>
        Vector512.FusedMultiplyAdd(other, alpha, self);
}

/// <summary>self * other.</summary>
internal readonly struct MulOperator : IBinaryFloatOperator
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> Invoke(Vector512<float> self, Vector512<float> other, Vector512<float> alpha) => self * other;
}

/// <summary>self / other (IEEE: x/0 = ±Inf, 0/0 = NaN).</summary>
internal readonly struct DivOperator : IBinaryFloatOperator
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> Invoke(Vector512<float> self, Vector512<float> other, Vector512<float> alpha) => self / other;
}

/// <summary>-x.</summary>
internal readonly struct NegOperator : IFloatOperator
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> Invoke(Vector512<float> x) => -x;
}

/// <summary>e^x (the inlinable polynomial of <see cref="VectorMath.Exp(Vector512{float})"/>).</summary>
internal readonly struct ExpOperator : IFloatOperator
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> Invoke(Vector512<float> x) => VectorMath.Exp(x);
}

/// <summary>1 / sqrt(x), correctly rounded square root then division (rsqrt(0) = +Inf, rsqrt(x &lt; 0) = NaN).</summary>
internal readonly struct RsqrtOperator : IFloatOperator
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> Invoke(Vector512<float> x) => Vector512<float>.One / Vector512.Sqrt(x);
}

/// <summary>max(x, 0) with NaN kept (as aten's relu).</summary>
internal readonly struct ReluOperator : IFloatOperator
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> Invoke(Vector512<float> x) =>
        Vector512.ConditionalSelect(Vector512.LessThan(x, Vector512<float>.Zero), Vector512<float>.Zero, x);
}

/// <summary>1 / (1 + e^-x): 0 at -Inf, 1 at +Inf.</summary>
internal readonly struct SigmoidOperator : IFloatOperator
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> Invoke(Vector512<float> x) => Vector512<float>.One / (Vector512<float>.One + VectorMath.Exp(-x));
}

/// <summary>tanh(x) (<see cref="VectorMath.Tanh(Vector512{float})"/>).</summary>
internal readonly struct TanhOperator : IFloatOperator
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> Invoke(Vector512<float> x) => VectorMath.Tanh(x);
}

/// <summary>Exact GELU, x * Φ(x) (<see cref="VectorMath.NormalCdf(Vector512{float})"/>).</summary>
internal readonly struct GeluErfOperator : IFloatOperator
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> Invoke(Vector512<float> x) => x * VectorMath.NormalCdf(x);
}

/// <summary>
/// Tanh GELU, 0.5x(1 + tanh(u)) with u = √(2/π)(x + 0.044715x³), computed as x / (1 + e^(-2u)) (the same function:
/// (1 + tanh u) / 2 = 1 / (1 + e^(-2u))) so no cancellation occurs for negative x.
/// </summary>
internal readonly struct GeluTanhOperator : IFloatOperator
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> Invoke(Vector512<float> x)
    {
        // -2u = -2√(2/π) x (1 + 0.044715 x²)
        Vector512<float> inner = Vector512.FusedMultiplyAdd(x * x, Vector512.Create(0.044715f), Vector512<float>.One);
        Vector512<float> minusTwoU = x * inner * Vector512.Create(-1.5957691216057308f);
        return x / (Vector512<float>.One + VectorMath.Exp(minusTwoU));
    }
}
