using System.Runtime.CompilerServices;
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

    /// <summary>
    /// 16-bit rotary, in place, four pairs per thread: query / key / cos_sin_cache are views of 64-bit words (four 16-bit
    /// elements each), so a neox quad is one 64-bit load of x1, one of x2, one of cos and one of sin (interleaved: two
    /// loads of four (x1, x2) pairs). The host takes this path when headSize is a multiple of 4, rotDim of 8 and every
    /// view starts 8-byte aligned; otherwise <see cref="HalfKernels.Rotary16"/>.
    /// </summary>
    [IlgpuKernel]
    [IlgpuKernelVariant(typeof(Float16Storage))]
    [IlgpuKernelVariant(typeof(BFloat16Storage))]
    public static void Rotary16x4<TFormat>(ArrayView<long> positions, ArrayView<ulong> query, ArrayView<ulong> key, ArrayView<ulong> cosSin,
        int numHeads, int numKvHeads, int headSize, int rotDim, int neox, int hasKey)
        where TFormat : struct, IKernelConstant
    {
        int bf = default(TFormat).Value;
        long t = Grid.IdxX;
        int quads = rotDim >> 3;
        int words = headSize >> 2;
        long cb = positions[t] * (rotDim >> 2);
        int qQuads = numHeads * quads;
        int total = qQuads + (hasKey != 0 ? numKvHeads * quads : 0);
        for (int p = Group.IdxX; p < total; p += Group.DimX)
        {
            bool isQuery = p < qQuads;
            int pp = isQuery ? p : p - qQuads;
            int h = pp / quads;
            int i = pp - h * quads;
            ulong cos = cosSin[cb + i];
            ulong sin = cosSin[cb + quads + i];
            if (isQuery)
            {
                RotateQuad(query, (t * numHeads + h) * words, i, quads, cos, sin, neox, bf);
            }
            else
            {
                RotateQuad(key, (t * numKvHeads + h) * words, i, quads, cos, sin, neox, bf);
            }
        }
    }

    /// <summary>Rotates pairs 4i..4i+3 of the head whose first word is <paramref name="b"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void RotateQuad(ArrayView<ulong> v, long b, int i, int quads, ulong cos, ulong sin, int neox, int bf)
    {
        // neox: x1 = elements 4i..4i+3, x2 = the same in the second half; interleaved: (x1, x2) pairs in words 2i, 2i+1.
        long w1 = neox != 0 ? b + i : b + 2 * i;
        long w2 = neox != 0 ? b + quads + i : b + 2 * i + 1;
        ulong u1 = v[w1];
        ulong u2 = v[w2];
        ulong r1 = 0;
        ulong r2 = 0;
        for (int k = 0; k < 4; k++)
        {
            float c = GpuMath.Load16((ushort)(cos >> (16 * k)), bf);
            float s = GpuMath.Load16((ushort)(sin >> (16 * k)), bf);
            int lo = neox != 0 ? 16 * k : 32 * (k & 1);
            ulong src1 = neox != 0 || k < 2 ? u1 : u2;
            ulong src2 = neox != 0 ? u2 : src1;
            int hi = neox != 0 ? lo : lo + 16;
            float x1 = GpuMath.Load16((ushort)(src1 >> lo), bf);
            float x2 = GpuMath.Load16((ushort)(src2 >> hi), bf);
            // One pair conversion (a single cvt.rn.bf16x2.f32 for bfloat16 on CUDA) for both rotated elements.
            uint pair = GpuMath.Store16Pair(x1 * c - x2 * s, x2 * c + x1 * s, bf);
            ulong o1 = pair & 0xffffu;
            ulong o2 = pair >> 16;
            if (neox != 0)
            {
                r1 |= o1 << lo;
                r2 |= o2 << lo;
            }
            else if (k < 2)
            {
                r1 |= (o1 << lo) | (o2 << hi);
            }
            else
            {
                r2 |= (o1 << lo) | (o2 << hi);
            }
        }

        v[w1] = r1;
        v[w2] = r2;
    }
}
