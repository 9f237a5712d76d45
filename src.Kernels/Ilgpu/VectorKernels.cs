using System.Runtime.CompilerServices;
using ILGPU;
using ILGPU.Runtime;

namespace GemsInjector.Kernels.Ilgpu;

/// <summary>Four float32 lanes: one 16-byte load or store when the view is 16-byte aligned (<c>ld.global.v4.f32</c>).</summary>
internal struct Float4
{
    public float X;
    public float Y;
    public float Z;
    public float W;
}

/// <summary>
/// An element-wise function as a type, so each kernel instantiation folds it (no per-element switch, and the compiler
/// can interleave the independent elements of a thread).
/// </summary>
internal interface IActivation
{
    /// <summary>f(x) in float32.</summary>
    float Apply(float x);

    /// <summary>f(x) for a result rounded to float16 / bfloat16 (a cheaper form where one exists, see <see cref="GpuMath.GeluErf16"/>).</summary>
    float Apply16(float x);
}

/// <summary>x·sigmoid(x) (op 0).</summary>
internal readonly struct SiluActivation : IActivation
{
    public float Apply(float x) => GpuMath.Silu(x);

    public float Apply16(float x) => Apply(x);
}

/// <summary>GELU, erf form (op 1).</summary>
internal readonly struct GeluActivation : IActivation
{
    public float Apply(float x) => GpuMath.GeluErf(x);

    public float Apply16(float x) => GpuMath.GeluErf16(x);
}

/// <summary>GELU, tanh form (op 2).</summary>
internal readonly struct GeluTanhActivation : IActivation
{
    public float Apply(float x) => GpuMath.GeluTanh(x);

    public float Apply16(float x) => Apply(x);
}

/// <summary>max(x, 0), NaN stays NaN (op 3).</summary>
internal readonly struct ReluActivation : IActivation
{
    public float Apply(float x) => x < 0f ? 0f : x;

    public float Apply16(float x) => Apply(x);
}

/// <summary>1/(1+e^-x) (op 4).</summary>
internal readonly struct SigmoidActivation : IActivation
{
    public float Apply(float x) => GpuMath.Sigmoid(x);

    public float Apply16(float x) => Apply(x);
}

/// <summary>tanh(x) (op 5).</summary>
internal readonly struct TanhActivation : IActivation
{
    public float Apply(float x) => GpuMath.Tanh(x);

    public float Apply16(float x) => GpuMath.Tanh16(x);
}

/// <summary>e^x (op 6; range-reduced before the fast 2^x: its outputs span the whole float range).</summary>
internal readonly struct ExpActivation : IActivation
{
    public float Apply(float x) => GpuMath.ExpFast(x);

    public float Apply16(float x) => Apply(x);
}

/// <summary>-x (op 7).</summary>
internal readonly struct NegActivation : IActivation
{
    public float Apply(float x) => -x;

    public float Apply16(float x) => Apply(x);
}

/// <summary>1/√x (op 8).</summary>
internal readonly struct RsqrtActivation : IActivation
{
    public float Apply(float x) => 1f / IntrinsicMath.CPUOnly.Sqrt(x);

    public float Apply16(float x) => Apply(x);
}

/// <summary>A binary element-wise function as a type (see <see cref="IActivation"/>).</summary>
internal interface IBinaryOp
{
    /// <summary>a (op) b in float32; <paramref name="alpha"/> scales b where the op has it.</summary>
    float Apply(float a, float b, float alpha);
}

/// <summary>a + alpha·b (sub passes -alpha).</summary>
internal readonly struct AddOp : IBinaryOp
{
    public float Apply(float a, float b, float alpha) => a + alpha * b;
}

/// <summary>a·b.</summary>
internal readonly struct MulOp : IBinaryOp
{
    public float Apply(float a, float b, float alpha) => a * b;
}

/// <summary>a / b (IEEE division).</summary>
internal readonly struct DivOp : IBinaryOp
{
    public float Apply(float a, float b, float alpha) => a / b;
}

/// <summary>A 16-bit storage format as a type: element and pair conversions to and from float32 (round to nearest even).</summary>
internal interface IStorage16
{
    /// <summary>The element in bits 0-15 of <paramref name="pair"/>.</summary>
    float Low(uint pair);

    /// <summary>The element in bits 16-31 of <paramref name="pair"/>.</summary>
    float High(uint pair);

    /// <summary>Two values rounded into one word, <paramref name="low"/> in bits 0-15.</summary>
    uint Pack(float low, float high);

    /// <summary>One element.</summary>
    float Load(ushort bits);

    /// <summary>One value rounded to the format.</summary>
    ushort Store(float value);
}

/// <summary>IEEE float16 (as a kernel constant: 0, the value the 16-bit kernels' format arguments give float16).</summary>
internal readonly struct Float16Storage : IStorage16, IKernelConstant
{
    /// <inheritdoc/>
    public int Value => 0;

    public float Low(uint pair) => GpuMath.HalfToFloat((ushort)pair);

    public float High(uint pair) => GpuMath.HalfToFloat((ushort)(pair >> 16));

    public uint Pack(float low, float high) => GpuMath.PackHalf2(low, high);

    public float Load(ushort bits) => GpuMath.HalfToFloat(bits);

    public ushort Store(float value) => GpuMath.FloatToHalf(value);
}

/// <summary>bfloat16 (the upper half of a float32: loading is a shift or a mask; as a kernel constant: 1).</summary>
internal readonly struct BFloat16Storage : IStorage16, IKernelConstant
{
    /// <inheritdoc/>
    public int Value => 1;

    public float Low(uint pair) => Interop.IntAsFloat(pair << 16);

    public float High(uint pair) => Interop.IntAsFloat(pair & 0xffff0000u);

    public uint Pack(float low, float high) => GpuMath.PackBFloat162(low, high);

    public float Load(ushort bits) => GpuMath.BFloat16ToFloat(bits);

    public ushort Store(float value) => GpuMath.FloatToBFloat16(value);
}

/// <summary>
/// Vectorised element-wise kernels for the memory-bound operators: 16 bytes per load and store per thread and step
/// (four float32 in a <see cref="Float4"/>, eight 16-bit elements in a <see cref="Half8"/>). The function and the 16-bit
/// format are type arguments (<see cref="IActivation"/>, <see cref="IBinaryOp"/>, <see cref="IStorage16"/>), so every
/// instantiation is straight-line code over its elements. The host passes each operand twice: the packed view (its
/// leading ⌊n/w⌋·w elements, cast on the host; w = 4 or 8) and the element view, from which the threads with global id
/// below n mod w finish the trailing elements in the same launch. The host takes this path only when every view starts
/// 16-byte aligned (and n ≥ w); otherwise it launches the scalar kernels (<see cref="ElementwiseKernels"/>,
/// <see cref="HalfKernels"/>). Results match the scalar kernels: the same float32 functions per element (bit for bit on
/// the simulator, where the tests compare them). The unary kernels take two packed elements per thread and step.
/// </summary>
internal static class VectorKernels
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float Binary(float a, float b, float alpha, int op) => op == 0 ? a + alpha * b : op == 1 ? a * b : a / b;

    /// <summary>y = a (op) b over float32, 16-byte loads (op 0 a + alpha·b, 1 a·b, 2 a / b).</summary>
    [IlgpuKernel]
    public static void BinaryF32x4(ArrayView<Float4> a4, ArrayView<Float4> b4, ArrayView<Float4> y4,
        ArrayView<float> a, ArrayView<float> b, ArrayView<float> y, float alpha, int n, int op)
    {
        var pa = a4.AsAligned(16);
        var pb = b4.AsAligned(16);
        var py = y4.AsAligned(16);
        int n4 = n >> 2;
        int gid = Grid.IdxX * Group.DimX + Group.IdxX;
        int stride = Grid.DimX * Group.DimX;
        for (int i = gid; i < n4; i += stride)
        {
            Float4 u = pa[i];
            Float4 v = pb[i];
            Float4 r;
            if (op == 0)
            {
                r.X = u.X + alpha * v.X;
                r.Y = u.Y + alpha * v.Y;
                r.Z = u.Z + alpha * v.Z;
                r.W = u.W + alpha * v.W;
            }
            else if (op == 1)
            {
                r.X = u.X * v.X;
                r.Y = u.Y * v.Y;
                r.Z = u.Z * v.Z;
                r.W = u.W * v.W;
            }
            else
            {
                r.X = u.X / v.X;
                r.Y = u.Y / v.Y;
                r.Z = u.Z / v.Z;
                r.W = u.W / v.W;
            }

            py[i] = r;
        }

        int t = (n4 << 2) + gid;
        if (t < n)
        {
            y[t] = Binary(a[t], b[t], alpha, op);
        }
    }

    /// <summary>y = f(x) over float32, 16-byte loads.</summary>
    [IlgpuKernel]
    [IlgpuKernelVariant(typeof(SiluActivation))]
    [IlgpuKernelVariant(typeof(GeluTanhActivation))]
    [IlgpuKernelVariant(typeof(ReluActivation))]
    [IlgpuKernelVariant(typeof(SigmoidActivation))]
    [IlgpuKernelVariant(typeof(TanhActivation))]
    [IlgpuKernelVariant(typeof(ExpActivation))]
    [IlgpuKernelVariant(typeof(NegActivation))]
    [IlgpuKernelVariant(typeof(RsqrtActivation))]
    [IlgpuKernelVariant(typeof(GeluActivation))]
    public static void UnaryF32x4<TAct>(ArrayView<Float4> x4, ArrayView<Float4> y4, ArrayView<float> x, ArrayView<float> y, int n)
        where TAct : struct, IActivation
    {
        var px = x4.AsAligned(16);
        var py = y4.AsAligned(16);
        var f = default(TAct);
        int n4 = n >> 2;
        int gid = Grid.IdxX * Group.DimX + Group.IdxX;
        int stride = Grid.DimX * Group.DimX;
        // Two packed elements per thread and step, both loaded before either is used (32 bytes in flight per thread,
        // like the binary kernels' two operands); each load instruction stays coalesced across the warp.
        for (int i = gid; i < n4; i += 2 * stride)
        {
            int j = i + stride;
            bool second = j < n4;
            Float4 u = px[i];
            Float4 v = second ? px[j] : u;
            py[i] = Apply4(f, u);
            if (second)
            {
                py[j] = Apply4(f, v);
            }
        }

        int t = (n4 << 2) + gid;
        if (t < n)
        {
            y[t] = f.Apply(x[t]);
        }
    }

    /// <summary>
    /// Gated product y[r, c] = act(x[r, c]) · x[r, d + c] over float32, 16-byte loads: x is [rows, 2d] and y [rows, d] with
    /// d a multiple of 4, so every row half starts on a packed element; d4 = d / 4. The row index costs one 32-bit
    /// division per four elements (the host keeps 2·rows·d below 2^31).
    /// </summary>
    [IlgpuKernel]
    [IlgpuKernelVariant(typeof(SiluActivation))]
    [IlgpuKernelVariant(typeof(GeluTanhActivation))]
    [IlgpuKernelVariant(typeof(GeluActivation))]
    public static void GatedF32x4<TAct>(ArrayView<Float4> x4, ArrayView<Float4> y4, int rows, int d4)
        where TAct : struct, IActivation
    {
        var px = x4.AsAligned(16);
        var py = y4.AsAligned(16);
        var f = default(TAct);
        int n4 = rows * d4;
        int stride = Grid.DimX * Group.DimX;
        for (int i = Grid.IdxX * Group.DimX + Group.IdxX; i < n4; i += stride)
        {
            int r = i / d4;
            int c = i - r * d4;
            int b = r * 2 * d4 + c;
            Float4 g = px[b];
            Float4 u = px[b + d4];
            Float4 o;
            o.X = f.Apply(g.X) * u.X;
            o.Y = f.Apply(g.Y) * u.Y;
            o.Z = f.Apply(g.Z) * u.Z;
            o.W = f.Apply(g.W) * u.W;
            py[i] = o;
        }
    }

    /// <summary>f over four float32 lanes.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Float4 Apply4<TAct>(TAct f, Float4 u)
        where TAct : struct, IActivation
    {
        Float4 r;
        r.X = f.Apply(u.X);
        r.Y = f.Apply(u.Y);
        r.Z = f.Apply(u.Z);
        r.W = f.Apply(u.W);
        return r;
    }

    /// <summary>f over the eight 16-bit elements of four words.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Half8 Unary8<TAct, TStorage>(Half8 u)
        where TAct : struct, IActivation
        where TStorage : struct, IStorage16
    {
        Half8 r;
        r.X = Unary2<TAct, TStorage>(u.X);
        r.Y = Unary2<TAct, TStorage>(u.Y);
        r.Z = Unary2<TAct, TStorage>(u.Z);
        r.W = Unary2<TAct, TStorage>(u.W);
        return r;
    }

    /// <summary>f over the two elements of a word.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static uint Unary2<TAct, TStorage>(uint w)
        where TAct : struct, IActivation
        where TStorage : struct, IStorage16
    {
        var f = default(TAct);
        var s = default(TStorage);
        return s.Pack(f.Apply16(s.Low(w)), f.Apply16(s.High(w)));
    }

    /// <summary>op over the two element pairs of two words.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static uint Binary2<TOp, TStorage>(uint a, uint b, float alpha)
        where TOp : struct, IBinaryOp
        where TStorage : struct, IStorage16
    {
        var op = default(TOp);
        var s = default(TStorage);
        return s.Pack(op.Apply(s.Low(a), s.Low(b), alpha), op.Apply(s.High(a), s.High(b), alpha));
    }

    /// <summary>act(gate) · up over the two element pairs of two words.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static uint Gated2<TAct, TStorage>(uint gate, uint up)
        where TAct : struct, IActivation
        where TStorage : struct, IStorage16
    {
        var f = default(TAct);
        var s = default(TStorage);
        return s.Pack(f.Apply16(s.Low(gate)) * s.Low(up), f.Apply16(s.High(gate)) * s.High(up));
    }

    /// <summary>y = a (op) b over 16-bit elements, eight per 16-byte load; float32 inside, rounded to nearest even.</summary>
    [IlgpuKernel]
    [IlgpuKernelVariant(typeof(AddOp), typeof(Float16Storage))]
    [IlgpuKernelVariant(typeof(AddOp), typeof(BFloat16Storage))]
    [IlgpuKernelVariant(typeof(MulOp), typeof(Float16Storage))]
    [IlgpuKernelVariant(typeof(MulOp), typeof(BFloat16Storage))]
    [IlgpuKernelVariant(typeof(DivOp), typeof(BFloat16Storage))]
    [IlgpuKernelVariant(typeof(DivOp), typeof(Float16Storage))]
    public static void Binary16x8<TOp, TStorage>(ArrayView<Half8> a8, ArrayView<Half8> b8, ArrayView<Half8> y8,
        ArrayView<ushort> a, ArrayView<ushort> b, ArrayView<ushort> y, float alpha, int n)
        where TOp : struct, IBinaryOp
        where TStorage : struct, IStorage16
    {
        var pa = a8.AsAligned(16);
        var pb = b8.AsAligned(16);
        var py = y8.AsAligned(16);
        int n8 = n >> 3;
        int gid = Grid.IdxX * Group.DimX + Group.IdxX;
        int stride = Grid.DimX * Group.DimX;
        for (int i = gid; i < n8; i += stride)
        {
            Half8 u = pa[i];
            Half8 v = pb[i];
            Half8 r;
            r.X = Binary2<TOp, TStorage>(u.X, v.X, alpha);
            r.Y = Binary2<TOp, TStorage>(u.Y, v.Y, alpha);
            r.Z = Binary2<TOp, TStorage>(u.Z, v.Z, alpha);
            r.W = Binary2<TOp, TStorage>(u.W, v.W, alpha);
            py[i] = r;
        }

        int t = (n8 << 3) + gid;
        if (t < n)
        {
            var s = default(TStorage);
            y[t] = s.Store(default(TOp).Apply(s.Load(a[t]), s.Load(b[t]), alpha));
        }
    }

    /// <summary>y = f(x) over 16-bit elements, eight per 16-byte load.</summary>
    [IlgpuKernel]
    [IlgpuKernelVariant(typeof(SiluActivation), typeof(Float16Storage))]
    [IlgpuKernelVariant(typeof(SiluActivation), typeof(BFloat16Storage))]
    [IlgpuKernelVariant(typeof(GeluTanhActivation), typeof(Float16Storage))]
    [IlgpuKernelVariant(typeof(GeluTanhActivation), typeof(BFloat16Storage))]
    [IlgpuKernelVariant(typeof(ReluActivation), typeof(Float16Storage))]
    [IlgpuKernelVariant(typeof(ReluActivation), typeof(BFloat16Storage))]
    [IlgpuKernelVariant(typeof(SigmoidActivation), typeof(Float16Storage))]
    [IlgpuKernelVariant(typeof(SigmoidActivation), typeof(BFloat16Storage))]
    [IlgpuKernelVariant(typeof(TanhActivation), typeof(Float16Storage))]
    [IlgpuKernelVariant(typeof(TanhActivation), typeof(BFloat16Storage))]
    [IlgpuKernelVariant(typeof(ExpActivation), typeof(Float16Storage))]
    [IlgpuKernelVariant(typeof(ExpActivation), typeof(BFloat16Storage))]
    [IlgpuKernelVariant(typeof(NegActivation), typeof(Float16Storage))]
    [IlgpuKernelVariant(typeof(NegActivation), typeof(BFloat16Storage))]
    [IlgpuKernelVariant(typeof(RsqrtActivation), typeof(Float16Storage))]
    [IlgpuKernelVariant(typeof(RsqrtActivation), typeof(BFloat16Storage))]
    [IlgpuKernelVariant(typeof(GeluActivation), typeof(BFloat16Storage))]
    [IlgpuKernelVariant(typeof(GeluActivation), typeof(Float16Storage))]
    public static void Unary16x8<TAct, TStorage>(ArrayView<Half8> x8, ArrayView<Half8> y8, ArrayView<ushort> x, ArrayView<ushort> y, int n)
        where TAct : struct, IActivation
        where TStorage : struct, IStorage16
    {
        var px = x8.AsAligned(16);
        var py = y8.AsAligned(16);
        int n8 = n >> 3;
        int gid = Grid.IdxX * Group.DimX + Group.IdxX;
        int stride = Grid.DimX * Group.DimX;
        // Two packed elements per thread and step, as in UnaryF32x4.
        for (int i = gid; i < n8; i += 2 * stride)
        {
            int j = i + stride;
            bool second = j < n8;
            Half8 u = px[i];
            Half8 v = second ? px[j] : u;
            py[i] = Unary8<TAct, TStorage>(u);
            if (second)
            {
                py[j] = Unary8<TAct, TStorage>(v);
            }
        }

        int t = (n8 << 3) + gid;
        if (t < n)
        {
            var s = default(TStorage);
            y[t] = s.Store(default(TAct).Apply16(s.Load(x[t])));
        }
    }

    /// <summary>
    /// The gated product over 16-bit elements, eight per 16-byte load: d a multiple of 8, d8 = d / 8 (see
    /// <see cref="GatedF32x4{TAct}"/>).
    /// </summary>
    [IlgpuKernel]
    [IlgpuKernelVariant(typeof(SiluActivation), typeof(Float16Storage))]
    [IlgpuKernelVariant(typeof(SiluActivation), typeof(BFloat16Storage))]
    [IlgpuKernelVariant(typeof(GeluTanhActivation), typeof(Float16Storage))]
    [IlgpuKernelVariant(typeof(GeluTanhActivation), typeof(BFloat16Storage))]
    [IlgpuKernelVariant(typeof(GeluActivation), typeof(BFloat16Storage))]
    [IlgpuKernelVariant(typeof(GeluActivation), typeof(Float16Storage))]
    public static void Gated16x8<TAct, TStorage>(ArrayView<Half8> x8, ArrayView<Half8> y8, int rows, int d8)
        where TAct : struct, IActivation
        where TStorage : struct, IStorage16
    {
        var px = x8.AsAligned(16);
        var py = y8.AsAligned(16);
        int n8 = rows * d8;
        int stride = Grid.DimX * Group.DimX;
        for (int i = Grid.IdxX * Group.DimX + Group.IdxX; i < n8; i += stride)
        {
            int r = i / d8;
            int c = i - r * d8;
            int b = r * 2 * d8 + c;
            Half8 g = px[b];
            Half8 u = px[b + d8];
            Half8 o;
            o.X = Gated2<TAct, TStorage>(g.X, u.X);
            o.Y = Gated2<TAct, TStorage>(g.Y, u.Y);
            o.Z = Gated2<TAct, TStorage>(g.Z, u.Z);
            o.W = Gated2<TAct, TStorage>(g.W, u.W);
            py[i] = o;
        }
    }
}
