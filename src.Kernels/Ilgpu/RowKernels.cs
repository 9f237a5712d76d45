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

    /// <summary>Softmax over the last dim (log-softmax when <paramref name="log"/> ≠ 0): one online (max, sum) pass, one write pass.</summary>
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
                s = s * GpuMath.Exp(m - v) + 1f;
                m = v;
            }
            else if (v != GpuMath.NegInf)
            {
                // NaN or v ≤ m; NaN propagates through the sum; -∞ adds nothing.
                s += GpuMath.Exp(v - m);
            }
        }

        float rowMax = GpuMath.GroupMax(m, scratch);
        float part = s == 0f ? 0f : s * GpuMath.Exp(m - rowMax);
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
                y[b + c] = GpuMath.Exp(x[b + c] - rowMax) * inv;
            }
        }
    }

    /// <summary>Sum over the last dim (mean when <paramref name="mean"/> ≠ 0): out[row].</summary>
    [IlgpuKernel]
    public static void SumF32(ArrayView<float> x, ArrayView<float> output, int cols, int mean)
    {
        var scratch = SharedMemory.Allocate<float>(MaxWarps);
        long b = (long)Grid.IdxX * cols;
        float s = 0f;
        for (int c = Group.IdxX; c < cols; c += Group.DimX)
        {
            s += x[b + c];
        }

        s = GpuMath.GroupSum(s, scratch);
        if (Group.IdxX == 0)
        {
            output[Grid.IdxX] = mean != 0 ? s / cols : s;
        }
    }

    /// <summary>Max over the last dim (NaN propagates): out[row].</summary>
    [IlgpuKernel]
    public static void AmaxF32(ArrayView<float> x, ArrayView<float> output, int cols)
    {
        var scratch = SharedMemory.Allocate<float>(MaxWarps);
        long b = (long)Grid.IdxX * cols;
        float m = GpuMath.NegInf;
        for (int c = Group.IdxX; c < cols; c += Group.DimX)
        {
            m = GpuMath.MaxNaN(m, x[b + c]);
        }

        m = GpuMath.GroupMax(m, scratch);
        if (Group.IdxX == 0)
        {
            output[Grid.IdxX] = m;
        }
    }

    /// <summary>Arg-max over the last dim: first index of the maximum, or of the first NaN (as torch.argmax).</summary>
    [IlgpuKernel]
    public static void ArgmaxF32(ArrayView<float> x, ArrayView<long> output, int cols)
    {
        var sv = SharedMemory.Allocate<float>(MaxWarps);
        var si = SharedMemory.Allocate<int>(MaxWarps);
        long b = (long)Grid.IdxX * cols;
        float best = GpuMath.NegInf;
        int bi = -1;
        for (int c = Group.IdxX; c < cols; c += Group.DimX)
        {
            float v = x[b + c];
            if (GpuMath.Before(v, c, best, bi))
            {
                best = v;
                bi = c;
            }
        }

        GpuMath.GroupArgMax(ref best, ref bi, sv, si);
        if (Group.IdxX == 0)
        {
            output[Grid.IdxX] = bi;
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
                values[ob + j] = best;
                indices[ob + j] = bi;
            }

            prev = best;
            prevIndex = bi;
        }
    }
}
