using ILGPU;

namespace GemsInjector.Kernels.Ilgpu;

/// <summary>Rotary position embedding (vLLM <c>rotary_embedding</c>), in place; one group per token.</summary>
internal static class RotaryKernels
{
    /// <summary>
    /// query [tokens, numHeads·headSize] and key [tokens, numKvHeads·headSize] (when <paramref name="hasKey"/> ≠ 0)
    /// rotated in place by cos_sin_cache[positions[t], :] ([maxPos, rotDim]: cos in the first half, sin in the
    /// second) over the first rotDim entries of each head. neox pairs (i, i + rotDim/2); interleaved (GPT-J) pairs
    /// (2i, 2i + 1).
    /// </summary>
    [IlgpuKernel]
    public static void RotaryF32(ArrayView<long> positions, ArrayView<float> query, ArrayView<float> key, ArrayView<float> cosSin,
        int numHeads, int numKvHeads, int headSize, int rotDim, int neox, int hasKey)
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
            float cos = cosSin[cb + i];
            float sin = cosSin[cb + half + i];
            int i1 = neox != 0 ? i : 2 * i;
            int i2 = neox != 0 ? i + half : 2 * i + 1;
            if (isQuery)
            {
                long b = (t * numHeads + h) * headSize;
                float x1 = query[b + i1];
                float x2 = query[b + i2];
                query[b + i1] = x1 * cos - x2 * sin;
                query[b + i2] = x2 * cos + x1 * sin;
            }
            else
            {
                long b = (t * numKvHeads + h) * headSize;
                float x1 = key[b + i1];
                float x2 = key[b + i2];
                key[b + i1] = x1 * cos - x2 * sin;
                key[b + i2] = x2 * cos + x1 * sin;
            }
        }
    }
}
