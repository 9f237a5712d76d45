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
/// Vectorised element-wise kernels for the memory-bound operators: float32 in 16-byte <see cref="Float4"/> loads (four
/// elements per thread per step), 16-bit data four words per 64-bit <see cref="ulong"/> load. The host passes each
/// operand twice: the packed view (its leading ⌊n/4⌋·4 elements, cast on the host) and the element view, from which the
/// threads with global id below n mod 4 finish the 1–3 trailing elements in the same launch. The host takes this path
/// only when every view's start address is aligned (16 bytes float32, 8 bytes 16-bit) and n ≥ 4; otherwise it
/// launches the scalar kernels (<see cref="ElementwiseKernels"/>, <see cref="HalfKernels"/>). Results are bit-identical
/// to the scalar kernels (same float32 functions per element).
/// Binary ops: 0 add (a + alpha·b; sub passes -alpha), 1 mul, 2 div. Unary ops as <see cref="HalfKernels.Activate"/>
/// (0 silu … 7 neg, 8 rsqrt).
/// </summary>
internal static class VectorKernels
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float Binary(float a, float b, float alpha, int op) => op == 0 ? a + alpha * b : op == 1 ? a * b : a / b;

    /// <summary>y = a (op) b over float32, 16-byte loads.</summary>
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

    /// <summary>y = f(x) over float32, 16-byte loads (f as <see cref="HalfKernels.Activate"/>).</summary>
    [IlgpuKernel]
    public static void UnaryF32x4(ArrayView<Float4> x4, ArrayView<Float4> y4, ArrayView<float> x, ArrayView<float> y, int n, int op)
    {
        var px = x4.AsAligned(16);
        var py = y4.AsAligned(16);
        int n4 = n >> 2;
        int gid = Grid.IdxX * Group.DimX + Group.IdxX;
        int stride = Grid.DimX * Group.DimX;
        for (int i = gid; i < n4; i += stride)
        {
            Float4 u = px[i];
            Float4 r;
            r.X = HalfKernels.Activate(u.X, op);
            r.Y = HalfKernels.Activate(u.Y, op);
            r.Z = HalfKernels.Activate(u.Z, op);
            r.W = HalfKernels.Activate(u.W, op);
            py[i] = r;
        }

        int t = (n4 << 2) + gid;
        if (t < n)
        {
            y[t] = HalfKernels.Activate(x[t], op);
        }
    }

    /// <summary>
    /// Gated product y[r, c] = act(x[r, c]) · x[r, d + c] (act 0 silu, 1 gelu, 2 gelu-tanh) over float32, 16-byte loads:
    /// x is [rows, 2d] and y [rows, d] with d a multiple of 4, so every row half starts on a packed element; d4 = d / 4.
    /// The row index costs one 32-bit division per four elements (the host keeps 2·rows·d below 2^31).
    /// </summary>
    [IlgpuKernel]
    public static void GatedF32x4(ArrayView<Float4> x4, ArrayView<Float4> y4, int rows, int d4, int op)
    {
        var px = x4.AsAligned(16);
        var py = y4.AsAligned(16);
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
            o.X = HalfKernels.Activate(g.X, op) * u.X;
            o.Y = HalfKernels.Activate(g.Y, op) * u.Y;
            o.Z = HalfKernels.Activate(g.Z, op) * u.Z;
            o.W = HalfKernels.Activate(g.W, op) * u.W;
            py[i] = o;
        }
    }

    /// <summary>The gated product over 16-bit words, four per 64-bit load (d a multiple of 4; see <see cref="GatedF32x4"/>).</summary>
    [IlgpuKernel]
    public static void Gated16x4(ArrayView<ulong> x4, ArrayView<ulong> y4, int rows, int d4, int op, int bf16)
    {
        int n4 = rows * d4;
        int stride = Grid.DimX * Group.DimX;
        for (int i = Grid.IdxX * Group.DimX + Group.IdxX; i < n4; i += stride)
        {
            int r = i / d4;
            int c = i - r * d4;
            int b = r * 2 * d4 + c;
            ulong g = x4[b];
            ulong u = x4[b + d4];
            ulong o = 0;
            for (int lane = 0; lane < 64; lane += 16)
            {
                float gv = GpuMath.Load16((ushort)(g >> lane), bf16);
                float uv = GpuMath.Load16((ushort)(u >> lane), bf16);
                o |= (ulong)GpuMath.Store16(HalfKernels.Activate(gv, op) * uv, bf16) << lane;
            }

            y4[i] = o;
        }
    }

    /// <summary>y = a (op) b over 16-bit words, four per 64-bit load; float32 inside, rounded to nearest even.</summary>
    [IlgpuKernel]
    public static void Binary16x4(ArrayView<ulong> a4, ArrayView<ulong> b4, ArrayView<ulong> y4,
        ArrayView<ushort> a, ArrayView<ushort> b, ArrayView<ushort> y, float alpha, int n, int op, int bf16)
    {
        int n4 = n >> 2;
        int gid = Grid.IdxX * Group.DimX + Group.IdxX;
        int stride = Grid.DimX * Group.DimX;
        for (int i = gid; i < n4; i += stride)
        {
            ulong u = a4[i];
            ulong v = b4[i];
            ulong r = 0;
            for (int lane = 0; lane < 64; lane += 16)
            {
                float p = GpuMath.Load16((ushort)(u >> lane), bf16);
                float q = GpuMath.Load16((ushort)(v >> lane), bf16);
                r |= (ulong)GpuMath.Store16(Binary(p, q, alpha, op), bf16) << lane;
            }

            y4[i] = r;
        }

        int t = (n4 << 2) + gid;
        if (t < n)
        {
            y[t] = GpuMath.Store16(Binary(GpuMath.Load16(a[t], bf16), GpuMath.Load16(b[t], bf16), alpha, op), bf16);
        }
    }

    /// <summary>y = f(x) over 16-bit words, four per 64-bit load.</summary>
    [IlgpuKernel]
    public static void Unary16x4(ArrayView<ulong> x4, ArrayView<ulong> y4, ArrayView<ushort> x, ArrayView<ushort> y, int n, int op, int bf16)
    {
        int n4 = n >> 2;
        int gid = Grid.IdxX * Group.DimX + Group.IdxX;
        int stride = Grid.DimX * Group.DimX;
        for (int i = gid; i < n4; i += stride)
        {
            ulong u = x4[i];
            ulong r = 0;
            for (int lane = 0; lane < 64; lane += 16)
            {
                r |= (ulong)GpuMath.Store16(HalfKernels.Activate(GpuMath.Load16((ushort)(u >> lane), bf16), op), bf16) << lane;
            }

            y4[i] = r;
        }

        int t = (n4 << 2) + gid;
        if (t < n)
        {
            y[t] = GpuMath.Store16(HalfKernels.Activate(GpuMath.Load16(x[t], bf16), op), bf16);
        }
    }
}
