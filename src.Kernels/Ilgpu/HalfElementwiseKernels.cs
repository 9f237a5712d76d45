using ILGPU;

namespace GemsInjector.Kernels.Ilgpu;

/// <summary>
/// 16-bit element-wise kernels the first 16-bit set (<see cref="HalfKernels"/>) lacked: true division (the scalar
/// fallback of <see cref="VectorKernels.Binary16x8{TOp, TStorage}"/>) and the embedding gather. 16-bit words in memory, float32
/// inside, round to nearest even; <c>bf16</c> ≠ 0 selects bfloat16.
/// </summary>
internal static class HalfElementwiseKernels
{
    /// <summary>y = a / b.</summary>
    [IlgpuKernel]
    public static void Div16(ArrayView<ushort> a, ArrayView<ushort> b, ArrayView<ushort> y, int n, int bf16)
    {
        int stride = Grid.DimX * Group.DimX;
        for (int i = Grid.IdxX * Group.DimX + Group.IdxX; i < n; i += stride)
        {
            y[i] = GpuMath.Store16(GpuMath.Load16(a[i], bf16) / GpuMath.Load16(b[i], bf16), bf16);
        }
    }

    /// <summary>
    /// <c>aten::embedding</c> over a 16-bit table: output[i, :] = weight[indices[i], :] (a copy of the words); an index
    /// outside [0, vocab) yields a row of NaN (0x7E00 float16, 0x7FC0 bfloat16).
    /// </summary>
    [IlgpuKernel]
    public static void Embedding16(ArrayView<ushort> weight, ArrayView<long> indices, ArrayView<ushort> output, int count, int dim, int vocab, int bf16)
    {
        long n = (long)count * dim;
        long stride = (long)Grid.DimX * Group.DimX;
        ushort nan = bf16 != 0 ? (ushort)0x7FC0 : (ushort)0x7E00;
        for (long i = (long)Grid.IdxX * Group.DimX + Group.IdxX; i < n; i += stride)
        {
            long r = i / dim;
            long c = i - r * dim;
            long token = indices[r];
            output[i] = token >= 0 && token < vocab ? weight[token * dim + c] : nan;
        }
    }
}
