using ILGPU;

namespace GemsInjector.Kernels.Ilgpu;

/// <summary>
/// 16-bit reductions over the last dimension of a contiguous [rows, cols] tensor, with the launch shape of the float32
/// row kernels (<see cref="RowKernels"/>: one group per row). Elements are widened to float32, accumulated in float32,
/// and a 16-bit result is rounded to nearest even once; <c>bf16</c> ≠ 0 selects bfloat16. Indices are int64.
/// </summary>
internal static class HalfRowKernels
{
    private const int MaxWarps = 32;

    /// <summary>Sum over the last dim (mean when <paramref name="mean"/> ≠ 0): out[row].</summary>
    [IlgpuKernel]
    public static void Sum16(ArrayView<ushort> x, ArrayView<ushort> output, int cols, int mean, int bf16)
    {
        var scratch = SharedMemory.Allocate<float>(MaxWarps);
        long b = (long)Grid.IdxX * cols;
        float s = 0f;
        for (int c = Group.IdxX; c < cols; c += Group.DimX)
        {
            s += GpuMath.Load16(x[b + c], bf16);
        }

        s = GpuMath.GroupSum(s, scratch);
        if (Group.IdxX == 0)
        {
            output[Grid.IdxX] = GpuMath.Store16(mean != 0 ? s / cols : s, bf16);
        }
    }

    /// <summary>Max over the last dim (NaN propagates): out[row] (exact: one of the inputs).</summary>
    [IlgpuKernel]
    public static void Amax16(ArrayView<ushort> x, ArrayView<ushort> output, int cols, int bf16)
    {
        var scratch = SharedMemory.Allocate<float>(MaxWarps);
        long b = (long)Grid.IdxX * cols;
        float m = GpuMath.NegInf;
        for (int c = Group.IdxX; c < cols; c += Group.DimX)
        {
            m = GpuMath.MaxNaN(m, GpuMath.Load16(x[b + c], bf16));
        }

        m = GpuMath.GroupMax(m, scratch);
        if (Group.IdxX == 0)
        {
            output[Grid.IdxX] = GpuMath.Store16(m, bf16);
        }
    }

    /// <summary>Arg-max over the last dim: first index of the maximum, or of the first NaN (as torch.argmax).</summary>
    [IlgpuKernel]
    public static void Argmax16(ArrayView<ushort> x, ArrayView<long> output, int cols, int bf16)
    {
        var sv = SharedMemory.Allocate<float>(MaxWarps);
        var si = SharedMemory.Allocate<int>(MaxWarps);
        long b = (long)Grid.IdxX * cols;
        float best = GpuMath.NegInf;
        int bi = -1;
        for (int c = Group.IdxX; c < cols; c += Group.DimX)
        {
            float v = GpuMath.Load16(x[b + c], bf16);
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

    /// <summary>topk (largest, sorted; ties by lower index; NaN largest) for small k, as <see cref="RowKernels.TopKF32"/>.</summary>
    [IlgpuKernel]
    public static void TopK16(ArrayView<ushort> x, ArrayView<ushort> values, ArrayView<long> indices, int cols, int k, int bf16)
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
                float v = GpuMath.Load16(x[b + c], bf16);
                if ((prevIndex < 0 || GpuMath.Before(prev, prevIndex, v, c)) && GpuMath.Before(v, c, best, bi))
                {
                    best = v;
                    bi = c;
                }
            }

            GpuMath.GroupArgMax(ref best, ref bi, sv, si);
            if (Group.IdxX == 0)
            {
                values[ob + j] = GpuMath.Store16(best, bf16);
                indices[ob + j] = bi;
            }

            prev = best;
            prevIndex = bi;
        }
    }
}
