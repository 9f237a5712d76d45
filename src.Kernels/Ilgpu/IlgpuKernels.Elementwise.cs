using System;
using ILGPU;
using ILGPU.Runtime;

namespace GemsInjector.Kernels.Ilgpu;

public sealed partial class IlgpuKernels
{
    private Action<KernelConfig, ArrayView<float>, ArrayView<float>, float, ArrayView<float>, int>? addF32, subF32;
    private Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, int>? mulF32, divF32;
    private Action<KernelConfig, ArrayView<float>, ArrayView<float>, int>?[] unaryF32 = new Action<KernelConfig, ArrayView<float>, ArrayView<float>, int>?[12];
    private Action<KernelConfig, ArrayView<float>, ArrayView<float>, int, int>? siluAndMulF32;
    private Action<KernelConfig, ArrayView<float>, ArrayView<float>, int, int, int>? geluAndMulF32;
    private Action<KernelConfig, ArrayView<float>, ArrayView<long>, ArrayView<float>, int, int, int>? embeddingF32;

    /// <summary><c>aten::add.Tensor</c>: y = a + alpha·b (same lengths; y may be a or b).</summary>
    /// <param name="a">First addend.</param>
    /// <param name="b">Second addend.</param>
    /// <param name="alpha">Factor on <paramref name="b"/>.</param>
    /// <param name="y">Output.</param>
    public void Add(ArrayView<float> a, ArrayView<float> b, float alpha, ArrayView<float> y) =>
        Binary(ref addF32, nameof(ElementwiseKernels.AddF32), ElementwiseKernels.AddF32, a, b, alpha, y, alpha);

    /// <summary><c>aten::sub.Tensor</c>: y = a - alpha·b.</summary>
    /// <param name="a">Minuend.</param>
    /// <param name="b">Subtrahend.</param>
    /// <param name="alpha">Factor on <paramref name="b"/>.</param>
    /// <param name="y">Output.</param>
    public void Sub(ArrayView<float> a, ArrayView<float> b, float alpha, ArrayView<float> y) =>
        Binary(ref subF32, nameof(ElementwiseKernels.SubF32), ElementwiseKernels.SubF32, a, b, alpha, y, -alpha);

    /// <summary><c>aten::mul.Tensor</c>: y = a·b.</summary>
    /// <param name="a">First factor.</param>
    /// <param name="b">Second factor.</param>
    /// <param name="y">Output.</param>
    public void Mul(ArrayView<float> a, ArrayView<float> b, ArrayView<float> y) =>
        Binary(ref mulF32, nameof(ElementwiseKernels.MulF32), ElementwiseKernels.MulF32, a, b, y, 1);

    /// <summary><c>aten::div.Tensor</c>: y = a / b.</summary>
    /// <param name="a">Dividend.</param>
    /// <param name="b">Divisor.</param>
    /// <param name="y">Output.</param>
    public void Div(ArrayView<float> a, ArrayView<float> b, ArrayView<float> y) =>
        Binary(ref divF32, nameof(ElementwiseKernels.DivF32), ElementwiseKernels.DivF32, a, b, y, 2);

    /// <summary>y = silu(x) = x·sigmoid(x).</summary>
    /// <param name="x">Input.</param>
    /// <param name="y">Output (may be <paramref name="x"/>).</param>
    public void Silu(ArrayView<float> x, ArrayView<float> y) => Unary(0, nameof(ElementwiseKernels.SiluF32), ElementwiseKernels.SiluF32, x, y);

    /// <summary><c>aten::gelu</c> with <c>approximate</c> 'none' (erf) or 'tanh'.</summary>
    /// <param name="x">Input.</param>
    /// <param name="y">Output (may be <paramref name="x"/>).</param>
    /// <param name="approximation">The GELU form.</param>
    public void Gelu(ArrayView<float> x, ArrayView<float> y, GeluApproximation approximation = GeluApproximation.None)
    {
        if (approximation == GeluApproximation.Tanh)
        {
            Unary(2, nameof(ElementwiseKernels.GeluTanhF32), ElementwiseKernels.GeluTanhF32, x, y);
        }
        else
        {
            Unary(1, nameof(ElementwiseKernels.GeluF32), ElementwiseKernels.GeluF32, x, y);
        }
    }

    /// <summary>y = relu(x) (NaN stays NaN).</summary>
    /// <param name="x">Input.</param>
    /// <param name="y">Output (may be <paramref name="x"/>).</param>
    public void Relu(ArrayView<float> x, ArrayView<float> y) => Unary(3, nameof(ElementwiseKernels.ReluF32), ElementwiseKernels.ReluF32, x, y);

    /// <summary>y = sigmoid(x).</summary>
    /// <param name="x">Input.</param>
    /// <param name="y">Output (may be <paramref name="x"/>).</param>
    public void Sigmoid(ArrayView<float> x, ArrayView<float> y) => Unary(4, nameof(ElementwiseKernels.SigmoidF32), ElementwiseKernels.SigmoidF32, x, y);

    /// <summary>y = tanh(x).</summary>
    /// <param name="x">Input.</param>
    /// <param name="y">Output (may be <paramref name="x"/>).</param>
    public void Tanh(ArrayView<float> x, ArrayView<float> y) => Unary(5, nameof(ElementwiseKernels.TanhF32), ElementwiseKernels.TanhF32, x, y);

    /// <summary>y = e^x.</summary>
    /// <param name="x">Input.</param>
    /// <param name="y">Output (may be <paramref name="x"/>).</param>
    public void Exp(ArrayView<float> x, ArrayView<float> y) => Unary(6, nameof(ElementwiseKernels.ExpF32), ElementwiseKernels.ExpF32, x, y);

    /// <summary>y = -x.</summary>
    /// <param name="x">Input.</param>
    /// <param name="y">Output (may be <paramref name="x"/>).</param>
    public void Neg(ArrayView<float> x, ArrayView<float> y) => Unary(7, nameof(ElementwiseKernels.NegF32), ElementwiseKernels.NegF32, x, y);

    /// <summary>y = 1/√x.</summary>
    /// <param name="x">Input.</param>
    /// <param name="y">Output (may be <paramref name="x"/>).</param>
    public void Rsqrt(ArrayView<float> x, ArrayView<float> y) => Unary(8, nameof(ElementwiseKernels.RsqrtF32), ElementwiseKernels.RsqrtF32, x, y);

    /// <summary>vLLM <c>silu_and_mul</c>: x [rows, 2d] → y [rows, d], y = silu(x[:, :d]) · x[:, d:].</summary>
    /// <param name="x">Input, rows·2d elements.</param>
    /// <param name="y">Output, rows·d elements.</param>
    /// <param name="rows">Rows.</param>
    /// <param name="d">Half of the input row length.</param>
    public void SiluAndMul(ArrayView<float> x, ArrayView<float> y, int rows, int d)
    {
        CheckPositive(rows, nameof(rows));
        CheckPositive(d, nameof(d));
        CheckLength(x, 2L * rows * d, nameof(x));
        CheckLength(y, (long)rows * d, nameof(y));
        if ((long)rows * d == 0 || TryGatedF32x4(x, y, rows, d, 0))
        {
            return;
        }

        device.Load(ref siluAndMulF32, nameof(ElementwiseKernels.SiluAndMulF32),
            acc => acc.LoadStreamKernel<ArrayView<float>, ArrayView<float>, int, int>(ElementwiseKernels.SiluAndMulF32))(Elementwise((long)rows * d), x, y, rows, d);
    }

    /// <summary>vLLM <c>gelu_and_mul</c> (erf) / <c>gelu_tanh_and_mul</c>: y = gelu(x[:, :d]) · x[:, d:].</summary>
    /// <param name="x">Input, rows·2d elements.</param>
    /// <param name="y">Output, rows·d elements.</param>
    /// <param name="rows">Rows.</param>
    /// <param name="d">Half of the input row length.</param>
    /// <param name="approximation">The GELU form.</param>
    public void GeluAndMul(ArrayView<float> x, ArrayView<float> y, int rows, int d, GeluApproximation approximation = GeluApproximation.None)
    {
        CheckPositive(rows, nameof(rows));
        CheckPositive(d, nameof(d));
        CheckLength(x, 2L * rows * d, nameof(x));
        CheckLength(y, (long)rows * d, nameof(y));
        if ((long)rows * d == 0 || TryGatedF32x4(x, y, rows, d, approximation == GeluApproximation.Tanh ? 2 : 1))
        {
            return;
        }

        device.Load(ref geluAndMulF32, nameof(ElementwiseKernels.GeluAndMulF32),
            acc => acc.LoadStreamKernel<ArrayView<float>, ArrayView<float>, int, int, int>(ElementwiseKernels.GeluAndMulF32))(
                Elementwise((long)rows * d), x, y, rows, d, approximation == GeluApproximation.Tanh ? 1 : 0);
    }

    /// <summary><c>aten::embedding</c>: output[i, :] = weight[indices[i], :]; an out-of-range index gives a NaN row.</summary>
    /// <param name="weight">The table, vocab·dim elements.</param>
    /// <param name="indices">Token ids.</param>
    /// <param name="output">indices.Length·dim elements.</param>
    /// <param name="dim">Row length of the table.</param>
    public void Embedding(ArrayView<float> weight, ArrayView<long> indices, ArrayView<float> output, int dim)
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

        device.Load(ref embeddingF32, nameof(ElementwiseKernels.EmbeddingF32),
            acc => acc.LoadStreamKernel<ArrayView<float>, ArrayView<long>, ArrayView<float>, int, int, int>(ElementwiseKernels.EmbeddingF32))(
                Elementwise((long)count * dim), weight, indices, output, count, dim, CheckInt(weight.Length / dim, nameof(weight)));
    }

    private void Binary(ref Action<KernelConfig, ArrayView<float>, ArrayView<float>, float, ArrayView<float>, int>? slot, string name,
        Action<ArrayView<float>, ArrayView<float>, float, ArrayView<float>, int> kernel, ArrayView<float> a, ArrayView<float> b, float alpha, ArrayView<float> y,
        float vectorAlpha)
    {
        int n = CheckInt(a.Length, nameof(a));
        CheckLength(b, n, nameof(b));
        CheckLength(y, n, nameof(y));

        // Aligned views: the 16-byte kernel computes a + vectorAlpha·b (sub passes -alpha: the same float32 result).
        if (n == 0 || TryBinaryF32x4(a, b, y, vectorAlpha, n, 0))
        {
            return;
        }

        device.Load(ref slot, name, acc => acc.LoadStreamKernel(kernel))(Elementwise(n), a, b, alpha, y, n);
    }

    private void Binary(ref Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, int>? slot, string name,
        Action<ArrayView<float>, ArrayView<float>, ArrayView<float>, int> kernel, ArrayView<float> a, ArrayView<float> b, ArrayView<float> y, int vectorOp)
    {
        int n = CheckInt(a.Length, nameof(a));
        CheckLength(b, n, nameof(b));
        CheckLength(y, n, nameof(y));
        if (n == 0 || TryBinaryF32x4(a, b, y, 1f, n, vectorOp))
        {
            return;
        }

        device.Load(ref slot, name, acc => acc.LoadStreamKernel(kernel))(Elementwise(n), a, b, y, n);
    }

    private void Unary(int slot, string name, Action<ArrayView<float>, ArrayView<float>, int> kernel, ArrayView<float> x, ArrayView<float> y)
    {
        int n = CheckInt(x.Length, nameof(x));
        CheckLength(y, n, nameof(y));

        // The slots number the functions as HalfKernels.Activate does (0 silu ... 7 neg, 8 rsqrt).
        if (n == 0 || TryUnaryF32x4(x, y, n, slot))
        {
            return;
        }

        device.Load(ref unaryF32[slot], name, acc => acc.LoadStreamKernel(kernel))(Elementwise(n), x, y, n);
    }
}
