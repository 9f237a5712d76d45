using ILGPU;

namespace GemsInjector.Kernels.Ilgpu;

/// <summary>
/// 16-bit topk over the last dimension of a contiguous [rows, cols] tensor, with the launch shape of the float32 row
/// kernels (<see cref="RowKernels"/>: one group per row). Elements are widened to float32 and come back exactly; <c>bf16</c>
/// ≠ 0 selects bfloat16. Indices are int64. The other 16-bit reductions are <see cref="ReductionKernels"/>.
/// </summary>
internal static class HalfRowKernels
{
    private const int MaxWarps = 32;

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
                // The input's bits rather than a round trip through float, so that a NaN keeps its payload, as in the radix kernel.
                values[ob + j] = x[b + bi];
                indices[ob + j] = bi;
            }

            prev = best;
            prevIndex = bi;
        }
    }
}
