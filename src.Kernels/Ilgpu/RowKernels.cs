using ILGPU;

namespace GemsInjector.Kernels.Ilgpu;

/// <summary>
/// Row kernels over the last dimension of a contiguous [rows, cols] tensor: one group per row (grid = rows), the
/// group's threads stride over the row, reductions by warp shuffles then one shared slot per warp
/// (<see cref="GpuMath.GroupSum"/>). Launch: <c>IlgpuKernels.Rows</c> (group size from the row length and the
/// accelerator: 16 on the simulator, 128-1024 on CUDA).
/// </summary>
internal static class RowKernels
{
    /// <summary>Shared slots for one partial per warp (1024 threads / 32 lanes).</summary>
    private const int MaxWarps = 32;

    /// <summary>y = x / √(mean(x²) + eps) · w.</summary>
    [IlgpuKernel]
    public static void RmsNormF32(ArrayView<float> x, ArrayView<float> w, ArrayView<float> y, int cols, float eps)
    {
        var scratch = SharedMemory.Allocate<float>(MaxWarps);
        long b = (long)Grid.IdxX * cols;
        float ss = 0f;
        for (int c = Group.IdxX; c < cols; c += Group.DimX)
        {
            float v = x[b + c];
            ss += v * v;
        }

        ss = GpuMath.GroupSum(ss, scratch);
        float inv = 1f / IntrinsicMath.CPUOnly.Sqrt(ss / cols + eps);
        for (int c = Group.IdxX; c < cols; c += Group.DimX)
        {
            y[b + c] = x[b + c] * inv * w[c];
        }
    }

    /// <summary>vLLM <c>fused_add_rms_norm</c>, in place: residual = x + residual; x = rms_norm(residual)·w.</summary>
    [IlgpuKernel]
    public static void FusedAddRmsNormF32(ArrayView<float> x, ArrayView<float> residual, ArrayView<float> w, int cols, float eps)
    {
        var scratch = SharedMemory.Allocate<float>(MaxWarps);
        long b = (long)Grid.IdxX * cols;
        float ss = 0f;
        for (int c = Group.IdxX; c < cols; c += Group.DimX)
        {
            float v = x[b + c] + residual[b + c];
            residual[b + c] = v;
            ss += v * v;
        }

        ss = GpuMath.GroupSum(ss, scratch);
        float inv = 1f / IntrinsicMath.CPUOnly.Sqrt(ss / cols + eps);
        for (int c = Group.IdxX; c < cols; c += Group.DimX)
        {
            x[b + c] = residual[b + c] * inv * w[c];
        }
    }

    /// <summary><c>aten::layer_norm</c> over the last dim (two-pass mean / variance); weight / bias used when the flags are non-zero.</summary>
    [IlgpuKernel]
    public static void LayerNormF32(ArrayView<float> x, ArrayView<float> w, ArrayView<float> bias, ArrayView<float> y, int cols, float eps, int hasWeight, int hasBias)
    {
        var scratch = SharedMemory.Allocate<float>(MaxWarps);
        long b = (long)Grid.IdxX * cols;
        float s = 0f;
        for (int c = Group.IdxX; c < cols; c += Group.DimX)
        {
            s += x[b + c];
        }

        float mean = GpuMath.GroupSum(s, scratch) / cols;
        float q = 0f;
        for (int c = Group.IdxX; c < cols; c += Group.DimX)
        {
            float d = x[b + c] - mean;
            q += d * d;
        }

        float inv = 1f / IntrinsicMath.CPUOnly.Sqrt(GpuMath.GroupSum(q, scratch) / cols + eps);
        for (int c = Group.IdxX; c < cols; c += Group.DimX)
        {
            float v = (x[b + c] - mean) * inv;
            if (hasWeight != 0)
            {
                v *= w[c];
            }

            if (hasBias != 0)
            {
                v += bias[c];
            }

            y[b + c] = v;
        }
    }

    /// <summary>
    /// Softmax over the last dim (log-softmax when <paramref name="log"/> ≠ 0): one online (max, sum) pass, one write pass,
    /// scalar loads. Only the path for rows longer than the register kernel whose x and y start at different offsets
    /// within 16 bytes (the rest stream through <see cref="RowStreamKernels.SoftmaxStreamF32"/>).
    /// </summary>
    [IlgpuKernel]
    public static void SoftmaxF32(ArrayView<float> x, ArrayView<float> y, int cols, int log)
    {
        var scratch = SharedMemory.Allocate<float>(MaxWarps);
        long b = (long)Grid.IdxX * cols;
        float m = GpuMath.NegInf;
        float s = 0f;
        for (int c = Group.IdxX; c < cols; c += Group.DimX)
        {
            float v = x[b + c];
            if (v > m)
            {
                s = s * RowVectors.Exp(m - v) + 1f;
                m = v;
            }
            else if (v != GpuMath.NegInf)
            {
                // NaN or v ≤ m; NaN propagates through the sum; -∞ adds nothing.
                s += RowVectors.Exp(v - m);
            }
        }

        float rowMax = GpuMath.GroupMax(m, scratch);
        float part = s == 0f ? 0f : s * RowVectors.Exp(m - rowMax);
        float sum = GpuMath.GroupSum(part, scratch);
        if (log != 0)
        {
            float shift = rowMax + GpuMath.Log(sum);
            for (int c = Group.IdxX; c < cols; c += Group.DimX)
            {
                y[b + c] = x[b + c] - shift;
            }
        }
        else
        {
            float inv = 1f / sum;
            for (int c = Group.IdxX; c < cols; c += Group.DimX)
            {
                y[b + c] = RowVectors.Exp(x[b + c] - rowMax) * inv;
            }
        }
    }

    /// <summary>
    /// topk (largest, sorted) over the last dim for small k: k rounds of a group arg-max, each over the elements that
    /// come after the previous winner in (value desc, index asc) order; NaN counts as largest, as in torch.
    /// </summary>
    [IlgpuKernel]
    public static void TopKF32(ArrayView<float> x, ArrayView<float> values, ArrayView<long> indices, int cols, int k)
    {
        var sv = SharedMemory.Allocate<float>(MaxWarps);
        var si = SharedMemory.Allocate<int>(MaxWarps);
        long b = (long)Grid.IdxX * cols;
        long ob = (long)Grid.IdxX * k;
        float prev = 0f;
        int prevIndex = -1;
        for (int j = 0; j < k; j++)
        {
            float best = GpuMath.NegInf;
            int bi = -1;
            for (int c = Group.IdxX; c < cols; c += Group.DimX)
            {
                float v = x[b + c];
                if ((prevIndex < 0 || GpuMath.Before(prev, prevIndex, v, c)) && GpuMath.Before(v, c, best, bi))
                {
                    best = v;
                    bi = c;
                }
            }

            GpuMath.GroupArgMax(ref best, ref bi, sv, si);
            if (Group.IdxX == 0)
            {
                values[ob + j] = x[b + bi];
                indices[ob + j] = bi;
            }

            prev = best;
            prevIndex = bi;
        }
    }
}

/// <summary>
/// Row kernels that keep the row in registers: each thread holds up to 8 elements (column tid + j·group), loaded once
/// with 8 independent coalesced loads, so global memory is read once and written once. Used when cols ≤ 8·group
/// (groups of at most 512 threads: 4096 floats = 512 threads × 8); longer rows go to <see cref="RowKernels"/>.
/// </summary>
internal static class RowRegisterKernels
{
    /// <summary>Elements per thread.</summary>
    public const int PerThread = 8;

    private const int MaxWarps = 32;

    private static Floats8 Load(ArrayView<float> x, long b, int cols, float fill)
    {
        int t = Group.IdxX;
        int g = Group.DimX;
        Floats8 r;
        r.V0 = t + 0 * g < cols ? x[b + t + 0 * g] : fill;
        r.V1 = t + 1 * g < cols ? x[b + t + 1 * g] : fill;
        r.V2 = t + 2 * g < cols ? x[b + t + 2 * g] : fill;
        r.V3 = t + 3 * g < cols ? x[b + t + 3 * g] : fill;
        r.V4 = t + 4 * g < cols ? x[b + t + 4 * g] : fill;
        r.V5 = t + 5 * g < cols ? x[b + t + 5 * g] : fill;
        r.V6 = t + 6 * g < cols ? x[b + t + 6 * g] : fill;
        r.V7 = t + 7 * g < cols ? x[b + t + 7 * g] : fill;
        return r;
    }

    private static float SumSquares(Floats8 r) =>
        r.V0 * r.V0 + r.V1 * r.V1 + r.V2 * r.V2 + r.V3 * r.V3 + r.V4 * r.V4 + r.V5 * r.V5 + r.V6 * r.V6 + r.V7 * r.V7;

    private static float Sum(Floats8 r) =>
        r.V0 + r.V1 + r.V2 + r.V3 + r.V4 + r.V5 + r.V6 + r.V7;

    private static float Max(Floats8 r) =>
        GpuMath.MaxNaN(GpuMath.MaxNaN(GpuMath.MaxNaN(GpuMath.MaxNaN(GpuMath.MaxNaN(GpuMath.MaxNaN(GpuMath.MaxNaN(r.V0, r.V1), r.V2), r.V3), r.V4), r.V5), r.V6), r.V7);

    /// <summary>Writes f(v_j)·w[c] (or f(v_j) when the weight is empty) for every column the thread holds.</summary>
    private static void StoreScaled(ArrayView<float> y, ArrayView<float> w, long b, int cols, Floats8 r, float scale)
    {
        int t = Group.IdxX;
        int g = Group.DimX;
        if (t + 0 * g < cols)
        {
            y[b + t + 0 * g] = r.V0 * scale * w[t + 0 * g];
        }

        if (t + 1 * g < cols)
        {
            y[b + t + 1 * g] = r.V1 * scale * w[t + 1 * g];
        }

        if (t + 2 * g < cols)
        {
            y[b + t + 2 * g] = r.V2 * scale * w[t + 2 * g];
        }

        if (t + 3 * g < cols)
        {
            y[b + t + 3 * g] = r.V3 * scale * w[t + 3 * g];
        }

        if (t + 4 * g < cols)
        {
            y[b + t + 4 * g] = r.V4 * scale * w[t + 4 * g];
        }

        if (t + 5 * g < cols)
        {
            y[b + t + 5 * g] = r.V5 * scale * w[t + 5 * g];
        }

        if (t + 6 * g < cols)
        {
            y[b + t + 6 * g] = r.V6 * scale * w[t + 6 * g];
        }

        if (t + 7 * g < cols)
        {
            y[b + t + 7 * g] = r.V7 * scale * w[t + 7 * g];
        }
    }

    /// <summary>y = x / √(mean(x²) + eps) · w.</summary>
    [IlgpuKernel]
    public static void RmsNormF32(ArrayView<float> x, ArrayView<float> w, ArrayView<float> y, int cols, float eps)
    {
        var scratch = SharedMemory.Allocate<float>(MaxWarps);
        long b = (long)Grid.IdxX * cols;
        var r = Load(x, b, cols, 0f);
        float ss = GpuMath.GroupSum(SumSquares(r), scratch);
        float inv = 1f / IntrinsicMath.CPUOnly.Sqrt(ss / cols + eps);
        StoreScaled(y, w, b, cols, r, inv);
    }

    /// <summary>vLLM <c>fused_add_rms_norm</c>, in place: residual = x + residual; x = rms_norm(residual)·w.</summary>
    [IlgpuKernel]
    public static void FusedAddRmsNormF32(ArrayView<float> x, ArrayView<float> residual, ArrayView<float> w, int cols, float eps)
    {
        var scratch = SharedMemory.Allocate<float>(MaxWarps);
        long b = (long)Grid.IdxX * cols;
        int t = Group.IdxX;
        int g = Group.DimX;
        var r = Load(x, b, cols, 0f);
        var q = Load(residual, b, cols, 0f);
        r.V0 += q.V0;
        r.V1 += q.V1;
        r.V2 += q.V2;
        r.V3 += q.V3;
        r.V4 += q.V4;
        r.V5 += q.V5;
        r.V6 += q.V6;
        r.V7 += q.V7;
        if (t + 0 * g < cols)
        {
            residual[b + t + 0 * g] = r.V0;
        }

        if (t + 1 * g < cols)
        {
            residual[b + t + 1 * g] = r.V1;
        }

        if (t + 2 * g < cols)
        {
            residual[b + t + 2 * g] = r.V2;
        }

        if (t + 3 * g < cols)
        {
            residual[b + t + 3 * g] = r.V3;
        }

        if (t + 4 * g < cols)
        {
            residual[b + t + 4 * g] = r.V4;
        }

        if (t + 5 * g < cols)
        {
            residual[b + t + 5 * g] = r.V5;
        }

        if (t + 6 * g < cols)
        {
            residual[b + t + 6 * g] = r.V6;
        }

        if (t + 7 * g < cols)
        {
            residual[b + t + 7 * g] = r.V7;
        }

        float ss = GpuMath.GroupSum(SumSquares(r), scratch);
        float inv = 1f / IntrinsicMath.CPUOnly.Sqrt(ss / cols + eps);
        StoreScaled(x, w, b, cols, r, inv);
    }

    /// <summary><c>aten::layer_norm</c> over the last dim (mean, then the variance from the registers).</summary>
    [IlgpuKernel]
    public static void LayerNormF32(ArrayView<float> x, ArrayView<float> w, ArrayView<float> bias, ArrayView<float> y, int cols, float eps, int hasWeight, int hasBias)
    {
        var scratch = SharedMemory.Allocate<float>(MaxWarps);
        long b = (long)Grid.IdxX * cols;
        int t = Group.IdxX;
        int g = Group.DimX;
        var r = Load(x, b, cols, 0f);
        float mean = GpuMath.GroupSum(Sum(r), scratch) / cols;
        r.V0 = t + 0 * g < cols ? r.V0 - mean : 0f;
        r.V1 = t + 1 * g < cols ? r.V1 - mean : 0f;
        r.V2 = t + 2 * g < cols ? r.V2 - mean : 0f;
        r.V3 = t + 3 * g < cols ? r.V3 - mean : 0f;
        r.V4 = t + 4 * g < cols ? r.V4 - mean : 0f;
        r.V5 = t + 5 * g < cols ? r.V5 - mean : 0f;
        r.V6 = t + 6 * g < cols ? r.V6 - mean : 0f;
        r.V7 = t + 7 * g < cols ? r.V7 - mean : 0f;
        float inv = 1f / IntrinsicMath.CPUOnly.Sqrt(GpuMath.GroupSum(SumSquares(r), scratch) / cols + eps);
        if (t + 0 * g < cols)
        {
            int c = t + 0 * g;
            float v = r.V0 * inv;
            v = hasWeight != 0 ? v * w[c] : v;
            y[b + c] = hasBias != 0 ? v + bias[c] : v;
        }

        if (t + 1 * g < cols)
        {
            int c = t + 1 * g;
            float v = r.V1 * inv;
            v = hasWeight != 0 ? v * w[c] : v;
            y[b + c] = hasBias != 0 ? v + bias[c] : v;
        }

        if (t + 2 * g < cols)
        {
            int c = t + 2 * g;
            float v = r.V2 * inv;
            v = hasWeight != 0 ? v * w[c] : v;
            y[b + c] = hasBias != 0 ? v + bias[c] : v;
        }

        if (t + 3 * g < cols)
        {
            int c = t + 3 * g;
            float v = r.V3 * inv;
            v = hasWeight != 0 ? v * w[c] : v;
            y[b + c] = hasBias != 0 ? v + bias[c] : v;
        }

        if (t + 4 * g < cols)
        {
            int c = t + 4 * g;
            float v = r.V4 * inv;
            v = hasWeight != 0 ? v * w[c] : v;
            y[b + c] = hasBias != 0 ? v + bias[c] : v;
        }

        if (t + 5 * g < cols)
        {
            int c = t + 5 * g;
            float v = r.V5 * inv;
            v = hasWeight != 0 ? v * w[c] : v;
            y[b + c] = hasBias != 0 ? v + bias[c] : v;
        }

        if (t + 6 * g < cols)
        {
            int c = t + 6 * g;
            float v = r.V6 * inv;
            v = hasWeight != 0 ? v * w[c] : v;
            y[b + c] = hasBias != 0 ? v + bias[c] : v;
        }

        if (t + 7 * g < cols)
        {
            int c = t + 7 * g;
            float v = r.V7 * inv;
            v = hasWeight != 0 ? v * w[c] : v;
            y[b + c] = hasBias != 0 ? v + bias[c] : v;
        }
    }

    /// <summary>Softmax over the last dim (log-softmax when <paramref name="log"/> ≠ 0): max, then Σ exp, from registers.</summary>
    [IlgpuKernel]
    public static void SoftmaxF32(ArrayView<float> x, ArrayView<float> y, int cols, int log)
    {
        var scratch = SharedMemory.Allocate<float>(MaxWarps);
        long b = (long)Grid.IdxX * cols;
        int t = Group.IdxX;
        int g = Group.DimX;
        var r = Load(x, b, cols, GpuMath.NegInf);
        float rowMax = GpuMath.GroupMax(Max(r), scratch);
        Floats8 e;
        e.V0 = t + 0 * g < cols ? RowVectors.Exp(r.V0 - rowMax) : 0f;
        e.V1 = t + 1 * g < cols ? RowVectors.Exp(r.V1 - rowMax) : 0f;
        e.V2 = t + 2 * g < cols ? RowVectors.Exp(r.V2 - rowMax) : 0f;
        e.V3 = t + 3 * g < cols ? RowVectors.Exp(r.V3 - rowMax) : 0f;
        e.V4 = t + 4 * g < cols ? RowVectors.Exp(r.V4 - rowMax) : 0f;
        e.V5 = t + 5 * g < cols ? RowVectors.Exp(r.V5 - rowMax) : 0f;
        e.V6 = t + 6 * g < cols ? RowVectors.Exp(r.V6 - rowMax) : 0f;
        e.V7 = t + 7 * g < cols ? RowVectors.Exp(r.V7 - rowMax) : 0f;
        float sum = GpuMath.GroupSum(Sum(e), scratch);
        float shift = rowMax + GpuMath.Log(sum);
        float inv = 1f / sum;
        if (t + 0 * g < cols)
        {
            y[b + t + 0 * g] = log != 0 ? r.V0 - shift : e.V0 * inv;
        }

        if (t + 1 * g < cols)
        {
            y[b + t + 1 * g] = log != 0 ? r.V1 - shift : e.V1 * inv;
        }

        if (t + 2 * g < cols)
        {
            y[b + t + 2 * g] = log != 0 ? r.V2 - shift : e.V2 * inv;
        }

        if (t + 3 * g < cols)
        {
            y[b + t + 3 * g] = log != 0 ? r.V3 - shift : e.V3 * inv;
        }

        if (t + 4 * g < cols)
        {
            y[b + t + 4 * g] = log != 0 ? r.V4 - shift : e.V4 * inv;
        }

        if (t + 5 * g < cols)
        {
            y[b + t + 5 * g] = log != 0 ? r.V5 - shift : e.V5 * inv;
        }

        if (t + 6 * g < cols)
        {
            y[b + t + 6 * g] = log != 0 ? r.V6 - shift : e.V6 * inv;
        }

        if (t + 7 * g < cols)
        {
            y[b + t + 7 * g] = log != 0 ? r.V7 - shift : e.V7 * inv;
        }
    }
}
