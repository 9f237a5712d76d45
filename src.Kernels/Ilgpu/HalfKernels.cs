using ILGPU;

namespace GemsInjector.Kernels.Ilgpu;

/// <summary>
/// float16 / bfloat16 variants of the memory-bound kernels: 16-bit words in memory (ushort views), float32 inside,
/// rounded to nearest even on store. <c>bf16</c> ≠ 0 selects bfloat16, else IEEE float16 (a uniform branch).
/// Same launch shapes as the float32 kernels.
/// </summary>
internal static class HalfKernels
{
    private const int MaxWarps = 32;

    /// <summary>y = a + alpha·b.</summary>
    [IlgpuKernel]
    public static void Add16(ArrayView<ushort> a, ArrayView<ushort> b, float alpha, ArrayView<ushort> y, int n, int bf16)
    {
        int stride = Grid.DimX * Group.DimX;
        for (int i = Grid.IdxX * Group.DimX + Group.IdxX; i < n; i += stride)
        {
            y[i] = GpuMath.Store16(GpuMath.Load16(a[i], bf16) + alpha * GpuMath.Load16(b[i], bf16), bf16);
        }
    }

    /// <summary>y = a·b.</summary>
    [IlgpuKernel]
    public static void Mul16(ArrayView<ushort> a, ArrayView<ushort> b, ArrayView<ushort> y, int n, int bf16)
    {
        int stride = Grid.DimX * Group.DimX;
        for (int i = Grid.IdxX * Group.DimX + Group.IdxX; i < n; i += stride)
        {
            y[i] = GpuMath.Store16(GpuMath.Load16(a[i], bf16) * GpuMath.Load16(b[i], bf16), bf16);
        }
    }

    /// <summary>Applies activation <paramref name="op"/> (see <see cref="Activate"/>).</summary>
    [IlgpuKernel]
    public static void Activation16(ArrayView<ushort> x, ArrayView<ushort> y, int n, int op, int bf16)
    {
        int stride = Grid.DimX * Group.DimX;
        for (int i = Grid.IdxX * Group.DimX + Group.IdxX; i < n; i += stride)
        {
            y[i] = GpuMath.Store16(Activate(GpuMath.Load16(x[i], bf16), op), bf16);
        }
    }

    /// <summary>
    /// 0 silu, 1 gelu (erf), 2 gelu (tanh), 3 relu, 4 sigmoid, 5 tanh, 6 exp, 7 neg, 8 rsqrt: the functions of the
    /// vectorised kernels' <see cref="IActivation"/> types, so the scalar fallback computes the same bits.
    /// </summary>
    public static float Activate(float v, int op) => op switch
    {
        0 => default(SiluActivation).Apply16(v),
        1 => default(GeluActivation).Apply16(v),
        2 => default(GeluTanhActivation).Apply16(v),
        3 => default(ReluActivation).Apply16(v),
        4 => default(SigmoidActivation).Apply16(v),
        5 => default(TanhActivation).Apply16(v),
        6 => default(ExpActivation).Apply16(v),
        8 => default(RsqrtActivation).Apply16(v),
        _ => default(NegActivation).Apply16(v),
    };

    /// <summary>y[r, c] = act(x[r, c]) · x[r, d + c] with act 0 silu, 1 gelu, 2 gelu-tanh.</summary>
    [IlgpuKernel]
    public static void GatedAndMul16(ArrayView<ushort> x, ArrayView<ushort> y, int rows, int d, int op, int bf16)
    {
        long n = (long)rows * d;
        long stride = (long)Grid.DimX * Group.DimX;
        for (long i = (long)Grid.IdxX * Group.DimX + Group.IdxX; i < n; i += stride)
        {
            long r = i / d;
            long c = i - r * d;
            long b = r * 2 * d;
            y[i] = GpuMath.Store16(Activate(GpuMath.Load16(x[b + c], bf16), op) * GpuMath.Load16(x[b + d + c], bf16), bf16);
        }
    }

    /// <summary>RMS norm, 16-bit input / weight / output, scalar loads, the row read twice: only rows longer than 16384 (shorter ones take <see cref="RowVector16Kernels.RmsNorm16{TFormat}"/> or <see cref="RowWideKernels.RmsNormWide16{TFormat}"/>).</summary>
    [IlgpuKernel]
    public static void RmsNorm16(ArrayView<ushort> x, ArrayView<ushort> w, ArrayView<ushort> y, int cols, float eps, int bf16)
    {
        var scratch = SharedMemory.Allocate<float>(MaxWarps);
        long b = (long)Grid.IdxX * cols;
        float ss = 0f;
        for (int c = Group.IdxX; c < cols; c += Group.DimX)
        {
            float v = GpuMath.Load16(x[b + c], bf16);
            ss += v * v;
        }

        ss = GpuMath.GroupSum(ss, scratch);
        float inv = 1f / IntrinsicMath.CPUOnly.Sqrt(ss / cols + eps);
        for (int c = Group.IdxX; c < cols; c += Group.DimX)
        {
            y[b + c] = GpuMath.Store16(GpuMath.Load16(x[b + c], bf16) * inv * GpuMath.Load16(w[c], bf16), bf16);
        }
    }

    /// <summary>
    /// fused_add_rms_norm as vLLM's CUDA kernel: the sum x + residual in float32 feeds the variance; the rounded sum is
    /// stored into residual and read back for the normalized output. Scalar loads: only rows longer than
    /// 16384 (as <see cref="RmsNorm16"/>).
    /// </summary>
    [IlgpuKernel]
    public static void FusedAddRmsNorm16(ArrayView<ushort> x, ArrayView<ushort> residual, ArrayView<ushort> w, int cols, float eps, int bf16)
    {
        var scratch = SharedMemory.Allocate<float>(MaxWarps);
        long b = (long)Grid.IdxX * cols;
        float ss = 0f;
        for (int c = Group.IdxX; c < cols; c += Group.DimX)
        {
            float v = GpuMath.Load16(x[b + c], bf16) + GpuMath.Load16(residual[b + c], bf16);
            residual[b + c] = GpuMath.Store16(v, bf16);
            ss += v * v;
        }

        ss = GpuMath.GroupSum(ss, scratch);
        float inv = 1f / IntrinsicMath.CPUOnly.Sqrt(ss / cols + eps);
        for (int c = Group.IdxX; c < cols; c += Group.DimX)
        {
            x[b + c] = GpuMath.Store16(GpuMath.Load16(residual[b + c], bf16) * inv * GpuMath.Load16(w[c], bf16), bf16);
        }
    }

    /// <summary>layer_norm with 16-bit storage (weight / bias used when the flags are non-zero); only rows longer than 16384 (as <see cref="RmsNorm16"/>).</summary>
    [IlgpuKernel]
    public static void LayerNorm16(ArrayView<ushort> x, ArrayView<ushort> w, ArrayView<ushort> bias, ArrayView<ushort> y, int cols, float eps, int hasWeight, int hasBias, int bf16)
    {
        var scratch = SharedMemory.Allocate<float>(MaxWarps);
        long b = (long)Grid.IdxX * cols;
        float s = 0f;
        for (int c = Group.IdxX; c < cols; c += Group.DimX)
        {
            s += GpuMath.Load16(x[b + c], bf16);
        }

        float mean = GpuMath.GroupSum(s, scratch) / cols;
        float q = 0f;
        for (int c = Group.IdxX; c < cols; c += Group.DimX)
        {
            float dv = GpuMath.Load16(x[b + c], bf16) - mean;
            q += dv * dv;
        }

        float inv = 1f / IntrinsicMath.CPUOnly.Sqrt(GpuMath.GroupSum(q, scratch) / cols + eps);
        for (int c = Group.IdxX; c < cols; c += Group.DimX)
        {
            float v = (GpuMath.Load16(x[b + c], bf16) - mean) * inv;
            if (hasWeight != 0)
            {
                v *= GpuMath.Load16(w[c], bf16);
            }

            if (hasBias != 0)
            {
                v += GpuMath.Load16(bias[c], bf16);
            }

            y[b + c] = GpuMath.Store16(v, bf16);
        }
    }

    /// <summary>Softmax / log-softmax over the last dim with 16-bit storage, scalar loads: only when x and y start at different offsets within 16 bytes (otherwise <see cref="RowVector16Kernels"/> or <see cref="RowStreamKernels"/>).</summary>
    [IlgpuKernel]
    public static void Softmax16(ArrayView<ushort> x, ArrayView<ushort> y, int cols, int log, int bf16)
    {
        var scratch = SharedMemory.Allocate<float>(MaxWarps);
        long b = (long)Grid.IdxX * cols;
        float m = GpuMath.NegInf;
        float s = 0f;
        for (int c = Group.IdxX; c < cols; c += Group.DimX)
        {
            float v = GpuMath.Load16(x[b + c], bf16);
            if (v > m)
            {
                s = s * RowVectors.Exp(m - v) + 1f;
                m = v;
            }
            else if (v != GpuMath.NegInf)
            {
                s += RowVectors.Exp(v - m);
            }
        }

        float rowMax = GpuMath.GroupMax(m, scratch);
        float part = s == 0f ? 0f : s * RowVectors.Exp(m - rowMax);
        float sum = GpuMath.GroupSum(part, scratch);
        float shift = rowMax + GpuMath.Log(sum);
        float inv = 1f / sum;
        for (int c = Group.IdxX; c < cols; c += Group.DimX)
        {
            float v = GpuMath.Load16(x[b + c], bf16);
            y[b + c] = GpuMath.Store16(log != 0 ? v - shift : RowVectors.Exp(v - rowMax) * inv, bf16);
        }
    }

    /// <summary>Rotary embedding in place with 16-bit query / key / cache (see <see cref="RotaryKernels.RotaryF32"/>), one pair per thread: the fallback of <see cref="RotaryKernels.Rotary16x4{TFormat}"/>.</summary>
    [IlgpuKernel]
    public static void Rotary16(ArrayView<long> positions, ArrayView<ushort> query, ArrayView<ushort> key, ArrayView<ushort> cosSin,
        int numHeads, int numKvHeads, int headSize, int rotDim, int neox, int hasKey, int bf16)
    {
        long t = Grid.IdxX;
        int half = rotDim / 2;
        long cb = positions[t] * rotDim;
        int qPairs = numHeads * half;
        int total = qPairs + (hasKey != 0 ? numKvHeads * half : 0);
        for (int p = Group.IdxX; p < total; p += Group.DimX)
        {
            bool isQuery = p < qPairs;
            int pp = isQuery ? p : p - qPairs;
            int h = pp / half;
            int i = pp - h * half;
            float cos = GpuMath.Load16(cosSin[cb + i], bf16);
            float sin = GpuMath.Load16(cosSin[cb + half + i], bf16);
            int i1 = neox != 0 ? i : 2 * i;
            int i2 = neox != 0 ? i + half : 2 * i + 1;
            if (isQuery)
            {
                long b = (t * numHeads + h) * headSize;
                float x1 = GpuMath.Load16(query[b + i1], bf16);
                float x2 = GpuMath.Load16(query[b + i2], bf16);
                query[b + i1] = GpuMath.Store16(x1 * cos - x2 * sin, bf16);
                query[b + i2] = GpuMath.Store16(x2 * cos + x1 * sin, bf16);
            }
            else
            {
                long b = (t * numKvHeads + h) * headSize;
                float x1 = GpuMath.Load16(key[b + i1], bf16);
                float x2 = GpuMath.Load16(key[b + i2], bf16);
                key[b + i1] = GpuMath.Store16(x1 * cos - x2 * sin, bf16);
                key[b + i2] = GpuMath.Store16(x2 * cos + x1 * sin, bf16);
            }
        }
    }
}
