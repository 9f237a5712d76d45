using System;
using System.Linq;
using System.Reflection;
using ILGPU;
using ILGPU.Runtime;

namespace GemsInjector.Kernels.Ilgpu;

public sealed partial class IlgpuKernels
{
    // The function and 16-bit format types of the generic vector kernels, indexed by the facade's op numbers
    // (HalfKernels.Activate's for activations, 0 add / 1 mul / 2 div for binary ops) and by bf16 (0 float16, 1 bfloat16).
    internal static readonly Type[] ActivationTypes =
    [
        typeof(SiluActivation), typeof(GeluActivation), typeof(GeluTanhActivation), typeof(ReluActivation), typeof(SigmoidActivation),
        typeof(TanhActivation), typeof(ExpActivation), typeof(NegActivation), typeof(RsqrtActivation),
    ];

    internal static readonly Type[] BinaryOpTypes = [typeof(AddOp), typeof(MulOp), typeof(DivOp)];
    internal static readonly Type[] StorageTypes = [typeof(Float16Storage), typeof(BFloat16Storage)];

    private Action<KernelConfig, ArrayView<Float4>, ArrayView<Float4>, ArrayView<Float4>, ArrayView<float>, ArrayView<float>, ArrayView<float>, float, int, int>? binaryF32x4;
    private readonly Action<KernelConfig, ArrayView<Float4>, ArrayView<Float4>, ArrayView<float>, ArrayView<float>, int>?[] unaryF32x4 =
        new Action<KernelConfig, ArrayView<Float4>, ArrayView<Float4>, ArrayView<float>, ArrayView<float>, int>?[ActivationTypes.Length];
    private readonly Action<KernelConfig, ArrayView<Float4>, ArrayView<Float4>, int, int>?[] gatedF32x4 =
        new Action<KernelConfig, ArrayView<Float4>, ArrayView<Float4>, int, int>?[3];
    private readonly Action<KernelConfig, ArrayView<Half8>, ArrayView<Half8>, ArrayView<Half8>, ArrayView<ushort>, ArrayView<ushort>, ArrayView<ushort>, float, int>?[] binary16x8 =
        new Action<KernelConfig, ArrayView<Half8>, ArrayView<Half8>, ArrayView<Half8>, ArrayView<ushort>, ArrayView<ushort>, ArrayView<ushort>, float, int>?[BinaryOpTypes.Length * 2];
    private readonly Action<KernelConfig, ArrayView<Half8>, ArrayView<Half8>, ArrayView<ushort>, ArrayView<ushort>, int>?[] unary16x8 =
        new Action<KernelConfig, ArrayView<Half8>, ArrayView<Half8>, ArrayView<ushort>, ArrayView<ushort>, int>?[ActivationTypes.Length * 2];
    private readonly Action<KernelConfig, ArrayView<Half8>, ArrayView<Half8>, int, int>?[] gated16x8 =
        new Action<KernelConfig, ArrayView<Half8>, ArrayView<Half8>, int, int>?[3 * 2];
    private Action<KernelConfig, ArrayView<ushort>, ArrayView<ushort>, ArrayView<ushort>, int, int>? div16;
    private Action<KernelConfig, ArrayView<ushort>, ArrayView<long>, ArrayView<ushort>, int, int, int, int>? embedding16;

    /// <summary>
    /// Whether the element-wise operators may take the vectorised kernels (<see cref="VectorKernels"/>) when their views
    /// are aligned; false forces the scalar kernels (tests compare both).
    /// </summary>
    internal bool Vectorize { get; set; } = true;

    /// <summary>Whether the view's first element lies at an address that is a multiple of <paramref name="bytes"/> (an empty view is).</summary>
    internal static bool IsAligned<T>(ArrayView<T> view, int bytes)
        where T : unmanaged
    {
        if (view.Length == 0)
        {
            return true;
        }

        // ArrayView<T>'s own Buffer / Index are internal in ILGPU 1.5.3; the interfaces expose them.
        var contiguous = (IContiguousArrayView)view;
        long address = contiguous.Buffer.NativePtr.ToInt64() + contiguous.IndexInBytes;
        return address % bytes == 0;
    }

    /// <summary>
    /// Loads the instantiation of the generic vector kernel <paramref name="kernel"/> for <paramref name="types"/> into
    /// <paramref name="slot"/> (compile-log name e.g. <c>Unary16x8&lt;SiluActivation,BFloat16Storage&gt;</c>). Callers
    /// read the slot first, so the reflection runs once per instantiation, not per call.
    /// </summary>
    private TLauncher LoadVariant<TKernel, TLauncher>(ref TLauncher? slot, Func<IlgpuKernelLoader, TKernel, TLauncher> load, string kernel, params Type[] types)
        where TKernel : Delegate
        where TLauncher : class
    {
        var method = typeof(VectorKernels).GetMethod(kernel, BindingFlags.Public | BindingFlags.Static)!.MakeGenericMethod(types);
        var instance = method.CreateDelegate<TKernel>();
        return device.Load(ref slot, $"{kernel}<{string.Join(",", types.Select(t => t.Name))}>", loader => load(loader, instance));
    }

    /// <summary>
    /// The vectorised float32 binary launch (op 0 a + alpha·b, 1 a·b, 2 a / b) when n ≥ 4 and a, b, y start 16-byte
    /// aligned; false (nothing launched) otherwise, for the scalar kernel. Lengths are checked by the caller.
    /// </summary>
    private bool TryBinaryF32x4(ArrayView<float> a, ArrayView<float> b, ArrayView<float> y, float alpha, int n, int op)
    {
        if (!Vectorize || n < 4 || !IsAligned(a, 16) || !IsAligned(b, 16) || !IsAligned(y, 16))
        {
            return false;
        }

        long packed = n & ~3L;
        device.Load(ref binaryF32x4, nameof(VectorKernels.BinaryF32x4),
            acc => acc.LoadStreamKernel<ArrayView<Float4>, ArrayView<Float4>, ArrayView<Float4>, ArrayView<float>, ArrayView<float>, ArrayView<float>, float, int, int>(VectorKernels.BinaryF32x4))(
            Elementwise(n / 4), a.SubView(0, packed).Cast<Float4>(), b.SubView(0, packed).Cast<Float4>(), y.SubView(0, packed).Cast<Float4>(), a, b, y, alpha, n, op);
        return true;
    }

    /// <summary>The vectorised float32 unary launch (op as <see cref="HalfKernels.Activate"/>), or false for the scalar kernel.</summary>
    private bool TryUnaryF32x4(ArrayView<float> x, ArrayView<float> y, int n, int op)
    {
        if (!Vectorize || n < 4 || !IsAligned(x, 16) || !IsAligned(y, 16))
        {
            return false;
        }

        long packed = n & ~3L;
        var launch = unaryF32x4[op] ?? LoadVariant(ref unaryF32x4[op],
            static (IlgpuKernelLoader loader, Action<ArrayView<Float4>, ArrayView<Float4>, ArrayView<float>, ArrayView<float>, int> kernel) => loader.LoadStreamKernel(kernel),
            nameof(VectorKernels.UnaryF32x4), ActivationTypes[op]);
        launch(Elementwise(n / 4), x.SubView(0, packed).Cast<Float4>(), y.SubView(0, packed).Cast<Float4>(), x, y, n);
        return true;
    }

    /// <summary>The vectorised 16-bit binary launch (eight elements per 16-byte load) when n ≥ 8 and a, b, y start 16-byte aligned.</summary>
    private bool TryBinary16x8(ArrayView<ushort> a, ArrayView<ushort> b, ArrayView<ushort> y, float alpha, int n, int op, int bf16)
    {
        if (!Vectorize || n < 8 || !IsAligned(a, 16) || !IsAligned(b, 16) || !IsAligned(y, 16))
        {
            return false;
        }

        long packed = n & ~7L;
        int slot = (op * 2) + bf16;
        var launch = binary16x8[slot] ?? LoadVariant(ref binary16x8[slot],
            static (IlgpuKernelLoader loader, Action<ArrayView<Half8>, ArrayView<Half8>, ArrayView<Half8>, ArrayView<ushort>, ArrayView<ushort>, ArrayView<ushort>, float, int> kernel) =>
                loader.LoadStreamKernel(kernel),
            nameof(VectorKernels.Binary16x8), BinaryOpTypes[op], StorageTypes[bf16]);
        launch(Elementwise(n / 8), a.SubView(0, packed).Cast<Half8>(), b.SubView(0, packed).Cast<Half8>(), y.SubView(0, packed).Cast<Half8>(), a, b, y, alpha, n);
        return true;
    }

    /// <summary>The vectorised 16-bit unary launch when n ≥ 8 and x, y start 16-byte aligned.</summary>
    private bool TryUnary16x8(ArrayView<ushort> x, ArrayView<ushort> y, int n, int op, int bf16)
    {
        if (!Vectorize || n < 8 || !IsAligned(x, 16) || !IsAligned(y, 16))
        {
            return false;
        }

        long packed = n & ~7L;
        int slot = (op * 2) + bf16;
        var launch = unary16x8[slot] ?? LoadVariant(ref unary16x8[slot],
            static (IlgpuKernelLoader loader, Action<ArrayView<Half8>, ArrayView<Half8>, ArrayView<ushort>, ArrayView<ushort>, int> kernel) => loader.LoadStreamKernel(kernel),
            nameof(VectorKernels.Unary16x8), ActivationTypes[op], StorageTypes[bf16]);
        launch(Elementwise(n / 8), x.SubView(0, packed).Cast<Half8>(), y.SubView(0, packed).Cast<Half8>(), x, y, n);
        return true;
    }

    /// <summary>
    /// The vectorised float32 gated product (op 0 silu, 1 gelu, 2 gelu-tanh) when d is a multiple of 4, 2·rows·d &lt; 2^31
    /// and x, y start 16-byte aligned; false otherwise (the scalar kernel). Shapes are checked by the caller.
    /// </summary>
    private bool TryGatedF32x4(ArrayView<float> x, ArrayView<float> y, int rows, int d, int op)
    {
        if (!Vectorize || d % 4 != 0 || 2L * rows * d > int.MaxValue || !IsAligned(x, 16) || !IsAligned(y, 16))
        {
            return false;
        }

        var launch = gatedF32x4[op] ?? LoadVariant(ref gatedF32x4[op],
            static (IlgpuKernelLoader loader, Action<ArrayView<Float4>, ArrayView<Float4>, int, int> kernel) => loader.LoadStreamKernel(kernel),
            nameof(VectorKernels.GatedF32x4), ActivationTypes[op]);
        launch(Elementwise((long)rows * d / 4), x.Cast<Float4>(), y.Cast<Float4>(), rows, d / 4);
        return true;
    }

    /// <summary>The vectorised 16-bit gated product when d is a multiple of 8 and x, y start 16-byte aligned.</summary>
    private bool TryGated16x8(ArrayView<ushort> x, ArrayView<ushort> y, int rows, int d, int op, int bf16)
    {
        if (!Vectorize || d % 8 != 0 || 2L * rows * d > int.MaxValue || !IsAligned(x, 16) || !IsAligned(y, 16))
        {
            return false;
        }

        int slot = (op * 2) + bf16;
        var launch = gated16x8[slot] ?? LoadVariant(ref gated16x8[slot],
            static (IlgpuKernelLoader loader, Action<ArrayView<Half8>, ArrayView<Half8>, int, int> kernel) => loader.LoadStreamKernel(kernel),
            nameof(VectorKernels.Gated16x8), ActivationTypes[op], StorageTypes[bf16]);
        launch(Elementwise((long)rows * d / 8), x.Cast<Half8>(), y.Cast<Half8>(), rows, d / 8);
        return true;
    }

    /// <summary>16-bit <c>sub</c>: y = a - alpha·b, computed in float32, rounded to nearest even.</summary>
    /// <param name="a">Minuend.</param>
    /// <param name="b">Subtrahend.</param>
    /// <param name="alpha">Factor on <paramref name="b"/>.</param>
    /// <param name="y">Output.</param>
    /// <param name="format">Storage format of all views.</param>
    public void Sub(ArrayView<ushort> a, ArrayView<ushort> b, float alpha, ArrayView<ushort> y, HalfFormat format) => Add(a, b, -alpha, y, format);

    /// <summary>16-bit <c>div</c>: y = a / b (true division), computed in float32, rounded to nearest even.</summary>
    /// <param name="a">Dividend.</param>
    /// <param name="b">Divisor.</param>
    /// <param name="y">Output.</param>
    /// <param name="format">Storage format of all views.</param>
    public void Div(ArrayView<ushort> a, ArrayView<ushort> b, ArrayView<ushort> y, HalfFormat format)
    {
        int n = CheckInt(a.Length, nameof(a));
        CheckLength(b, n, nameof(b));
        CheckLength(y, n, nameof(y));
        if (n == 0 || TryBinary16x8(a, b, y, 1f, n, 2, Bf(format)))
        {
            return;
        }

        device.Load(ref div16, nameof(HalfElementwiseKernels.Div16), acc => acc.LoadStreamKernel<ArrayView<ushort>, ArrayView<ushort>, ArrayView<ushort>, int, int>(HalfElementwiseKernels.Div16))(
            Elementwise(n), a, b, y, n, Bf(format));
    }

    /// <summary>16-bit <c>rsqrt</c>: y = 1/√x.</summary>
    /// <param name="x">Input.</param>
    /// <param name="y">Output (may be <paramref name="x"/>).</param>
    /// <param name="format">Storage format.</param>
    public void Rsqrt(ArrayView<ushort> x, ArrayView<ushort> y, HalfFormat format) => Activation(x, y, HalfActivation.Rsqrt, format);

    /// <summary><c>aten::embedding</c> over a 16-bit table: output[i, :] = weight[indices[i], :]; an out-of-range index gives a NaN row.</summary>
    /// <param name="weight">The table, vocab·dim elements.</param>
    /// <param name="indices">Token ids.</param>
    /// <param name="output">indices.Length·dim elements.</param>
    /// <param name="dim">Row length of the table.</param>
    /// <param name="format">Storage format of the table and the output.</param>
    public void Embedding(ArrayView<ushort> weight, ArrayView<long> indices, ArrayView<ushort> output, int dim, HalfFormat format)
    {
        if (dim <= 0)
        {
            throw new ArgumentOutOfRangeException(nameof(dim), dim, "Must be positive.");
        }

        if (weight.Length % dim != 0)
        {
            throw new ArgumentException($"'weight' has {weight.Length} elements, not a multiple of dim {dim}.", nameof(weight));
        }

        int count = CheckInt(indices.Length, nameof(indices));
        CheckLength(output, (long)count * dim, nameof(output));
        if (count == 0)
        {
            return;
        }

        device.Load(ref embedding16, nameof(HalfElementwiseKernels.Embedding16),
            acc => acc.LoadStreamKernel<ArrayView<ushort>, ArrayView<long>, ArrayView<ushort>, int, int, int, int>(HalfElementwiseKernels.Embedding16))(
                Elementwise((long)count * dim), weight, indices, output, count, dim, CheckInt(weight.Length / dim, nameof(weight)), Bf(format));
    }
}
