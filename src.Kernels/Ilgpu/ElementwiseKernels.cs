using ILGPU;

namespace GemsInjector.Kernels.Ilgpu;

/// <summary>
/// Element-wise float32 kernels: explicitly grouped, grid-stride loops (launch: <c>IlgpuKernels.Elementwise</c>, groups of
/// <c>min(256, max group)</c> threads, at most 32 groups per SM; the loop covers the rest). Contiguous views of equal length.
/// </summary>
internal static class ElementwiseKernels
{
    /// <summary>y = a + alpha·b.</summary>
    [IlgpuKernel]
    public static void AddF32(ArrayView<float> a, ArrayView<float> b, float alpha, ArrayView<float> y, int n)
    {
        int stride = Grid.DimX * Group.DimX;
        for (int i = Grid.IdxX * Group.DimX + Group.IdxX; i < n; i += stride)
        {
            y[i] = a[i] + alpha * b[i];
        }
    }

    /// <summary>y = a - alpha·b.</summary>
    [IlgpuKernel]
    public static void SubF32(ArrayView<float> a, ArrayView<float> b, float alpha, ArrayView<float> y, int n)
    {
        int stride = Grid.DimX * Group.DimX;
        for (int i = Grid.IdxX * Group.DimX + Group.IdxX; i < n; i += stride)
        {
            y[i] = a[i] - alpha * b[i];
        }
    }

    /// <summary>y = a·b.</summary>
    [IlgpuKernel]
    public static void MulF32(ArrayView<float> a, ArrayView<float> b, ArrayView<float> y, int n)
    {
        int stride = Grid.DimX * Group.DimX;
        for (int i = Grid.IdxX * Group.DimX + Group.IdxX; i < n; i += stride)
        {
            y[i] = a[i] * b[i];
        }
    }

    /// <summary>y = a / b (true division).</summary>
    [IlgpuKernel]
    public static void DivF32(ArrayView<float> a, ArrayView<float> b, ArrayView<float> y, int n)
    {
        int stride = Grid.DimX * Group.DimX;
        for (int i = Grid.IdxX * Group.DimX + Group.IdxX; i < n; i += stride)
        {
            y[i] = a[i] / b[i];
        }
    }

    /// <summary>y = silu(x).</summary>
    [IlgpuKernel]
    public static void SiluF32(ArrayView<float> x, ArrayView<float> y, int n)
    {
        int stride = Grid.DimX * Group.DimX;
        for (int i = Grid.IdxX * Group.DimX + Group.IdxX; i < n; i += stride)
        {
            y[i] = GpuMath.Silu(x[i]);
        }
    }

    /// <summary>y = gelu(x), exact (erf) form.</summary>
    [IlgpuKernel]
    public static void GeluF32(ArrayView<float> x, ArrayView<float> y, int n)
    {
        int stride = Grid.DimX * Group.DimX;
        for (int i = Grid.IdxX * Group.DimX + Group.IdxX; i < n; i += stride)
        {
            y[i] = GpuMath.GeluErf(x[i]);
        }
    }

    /// <summary>y = gelu(x), tanh approximation.</summary>
    [IlgpuKernel]
    public static void GeluTanhF32(ArrayView<float> x, ArrayView<float> y, int n)
    {
        int stride = Grid.DimX * Group.DimX;
        for (int i = Grid.IdxX * Group.DimX + Group.IdxX; i < n; i += stride)
        {
            y[i] = GpuMath.GeluTanh(x[i]);
        }
    }

    /// <summary>y = max(x, 0), NaN kept.</summary>
    [IlgpuKernel]
    public static void ReluF32(ArrayView<float> x, ArrayView<float> y, int n)
    {
        int stride = Grid.DimX * Group.DimX;
        for (int i = Grid.IdxX * Group.DimX + Group.IdxX; i < n; i += stride)
        {
            float v = x[i];
            y[i] = v < 0f ? 0f : v;
        }
    }

    /// <summary>y = sigmoid(x).</summary>
    [IlgpuKernel]
    public static void SigmoidF32(ArrayView<float> x, ArrayView<float> y, int n)
    {
        int stride = Grid.DimX * Group.DimX;
        for (int i = Grid.IdxX * Group.DimX + Group.IdxX; i < n; i += stride)
        {
            y[i] = GpuMath.Sigmoid(x[i]);
        }
    }

    /// <summary>y = tanh(x).</summary>
    [IlgpuKernel]
    public static void TanhF32(ArrayView<float> x, ArrayView<float> y, int n)
    {
        int stride = Grid.DimX * Group.DimX;
        for (int i = Grid.IdxX * Group.DimX + Group.IdxX; i < n; i += stride)
        {
            y[i] = GpuMath.Tanh(x[i]);
        }
    }

    /// <summary>y = e^x.</summary>
    [IlgpuKernel]
    public static void ExpF32(ArrayView<float> x, ArrayView<float> y, int n)
    {
        int stride = Grid.DimX * Group.DimX;
        for (int i = Grid.IdxX * Group.DimX + Group.IdxX; i < n; i += stride)
        {
            y[i] = GpuMath.ExpFast(x[i]);
        }
    }

    /// <summary>y = -x.</summary>
    [IlgpuKernel]
    public static void NegF32(ArrayView<float> x, ArrayView<float> y, int n)
    {
        int stride = Grid.DimX * Group.DimX;
        for (int i = Grid.IdxX * Group.DimX + Group.IdxX; i < n; i += stride)
        {
            y[i] = -x[i];
        }
    }

    /// <summary>y = 1/√x.</summary>
    [IlgpuKernel]
    public static void RsqrtF32(ArrayView<float> x, ArrayView<float> y, int n)
    {
        int stride = Grid.DimX * Group.DimX;
        for (int i = Grid.IdxX * Group.DimX + Group.IdxX; i < n; i += stride)
        {
            y[i] = 1f / IntrinsicMath.CPUOnly.Sqrt(x[i]);
        }
    }

    /// <summary>vLLM <c>silu_and_mul</c>: x is [rows, 2d]; y[r, c] = silu(x[r, c]) · x[r, d + c].</summary>
    [IlgpuKernel]
    public static void SiluAndMulF32(ArrayView<float> x, ArrayView<float> y, int rows, int d)
    {
        long n = (long)rows * d;
        long stride = (long)Grid.DimX * Group.DimX;
        for (long i = (long)Grid.IdxX * Group.DimX + Group.IdxX; i < n; i += stride)
        {
            long r = i / d;
            long c = i - r * d;
            long b = r * 2 * d;
            y[i] = GpuMath.Silu(x[b + c]) * x[b + d + c];
        }
    }

    /// <summary>vLLM <c>gelu_and_mul</c> / <c>gelu_tanh_and_mul</c>: y[r, c] = gelu(x[r, c]) · x[r, d + c]; tanh form when <paramref name="tanh"/> ≠ 0.</summary>
    [IlgpuKernel]
    public static void GeluAndMulF32(ArrayView<float> x, ArrayView<float> y, int rows, int d, int tanh)
    {
        long n = (long)rows * d;
        long stride = (long)Grid.DimX * Group.DimX;
        for (long i = (long)Grid.IdxX * Group.DimX + Group.IdxX; i < n; i += stride)
        {
            long r = i / d;
            long c = i - r * d;
            long b = r * 2 * d;
            float g = x[b + c];
            g = tanh != 0 ? GpuMath.GeluTanh(g) : GpuMath.GeluErf(g);
            y[i] = g * x[b + d + c];
        }
    }

    /// <summary>
    /// <c>aten::embedding</c>: output[i, :] = weight[indices[i], :] for weight [vocab, dim]; an index outside
    /// [0, vocab) yields a row of NaN (a GPU kernel cannot throw).
    /// </summary>
    [IlgpuKernel]
    public static void EmbeddingF32(ArrayView<float> weight, ArrayView<long> indices, ArrayView<float> output, int count, int dim, int vocab)
    {
        long n = (long)count * dim;
        long stride = (long)Grid.DimX * Group.DimX;
        for (long i = (long)Grid.IdxX * Group.DimX + Group.IdxX; i < n; i += stride)
        {
            long r = i / dim;
            long c = i - r * dim;
            long token = indices[r];
            output[i] = token >= 0 && token < vocab ? weight[token * dim + c] : float.NaN;
        }
    }
}
