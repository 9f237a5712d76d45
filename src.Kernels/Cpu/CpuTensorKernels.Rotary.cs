using System;
using System.Runtime.Intrinsics;
using GemsInjector.Kernels.Numerics;
using TorchSharp;

namespace GemsInjector.Kernels.Cpu;

/// <summary>vLLM's <c>_C::rotary_embedding</c>, in place.</summary>
public static unsafe partial class CpuTensorKernels
{
    private const string RotaryName = "_C::rotary_embedding";

    /// <summary>
    /// <c>_C::rotary_embedding(positions, query, key?, head_size, cos_sin_cache, is_neox)</c>, in place as vLLM: for each token t and
    /// head, the first rotDim dimensions of the head are rotated by the angle row <c>cosSinCache[positions[t]]</c> (cos in its first
    /// rotDim/2 columns, sin in the rest); the remaining headSize - rotDim dimensions are left alone. Neox style rotates the pairs
    /// (i, i + rotDim/2); GPT-J (interleaved) style rotates (2i, 2i + 1): x1' = x1·cos - x2·sin, x2' = x2·cos + x1·sin, in float32.
    /// </summary>
    /// <param name="positions">int64 or int32 CPU tensor [tokens] (any shape with that many elements); each in [0, maxPosition).</param>
    /// <param name="query">Contiguous CPU tensor [tokens, heads * headSize] or [tokens, heads, headSize]: float32, float16 or bfloat16.</param>
    /// <param name="key">Optional contiguous tensor of the same layout rules and dtype as <paramref name="query"/> (its own head count).</param>
    /// <param name="headSize">The size of one head.</param>
    /// <param name="cosSinCache">CPU tensor [maxPosition, rotDim] of <paramref name="query"/>'s dtype; rotDim even and ≤ headSize.</param>
    /// <param name="isNeox">True for neox style, false for GPT-J (interleaved).</param>
    /// <exception cref="ArgumentNullException">A required argument is null.</exception>
    /// <exception cref="ArgumentException">Wrong device or dtype, mismatched dtypes, non-contiguous query/key (in place needs contiguous memory),
    /// shapes that do not fit, or a position out of range.</exception>
    public static void RotaryEmbedding(torch.Tensor positions, torch.Tensor query, torch.Tensor? key, long headSize, torch.Tensor cosSinCache, bool isNeox)
    {
        KernelDType kind = KernelArguments.Floating(RotaryName, query, nameof(query));
        bool wide = KernelArguments.IndexTensor(RotaryName, positions, nameof(positions));
        KernelArguments.SameDType(RotaryName, query, nameof(query), cosSinCache, nameof(cosSinCache));
        if (key is not null)
        {
            KernelArguments.SameDType(RotaryName, query, nameof(query), key, nameof(key));
        }

        long tokens = positions.numel();
        long[] cacheShape = MatrixShape(RotaryName, cosSinCache, nameof(cosSinCache), 2);
        long maxPosition = cacheShape[0], rotaryDim = cacheShape[1];
        if (headSize <= 0 || rotaryDim % 2 != 0 || rotaryDim > headSize || rotaryDim > int.MaxValue)
        {
            throw new ArgumentException(
                $"{RotaryName}: 'cosSinCache' has shape {KernelArguments.Format(cacheShape)}; its rotary dimension ({rotaryDim}) must be even, at most " +
                $"'headSize' ({headSize}), which must be positive, and at most {int.MaxValue}.",
                nameof(cosSinCache));
        }

        long queryHeads = Heads(query, nameof(query), tokens, headSize);
        long keyHeads = key is null ? 0 : Heads(key, nameof(key), tokens, headSize);
        if (key is not null && KernelArguments.Overlap(query, key))
        {
            // Both are rotated in place: a shared element would be rotated twice (query == key) or read after it was written.
            throw new ArgumentException(
                $"{RotaryName}: arguments 'query' (shape {KernelArguments.Format(KernelArguments.Shape(query))}) and 'key' (shape " +
                $"{KernelArguments.Format(KernelArguments.Shape(key))}) overlap in memory; they must be separate tensors (pass key = null to rotate only the query).",
                nameof(key));
        }

        torch.Tensor? positionCopy = positions.is_contiguous() ? null : positions.contiguous();
        torch.Tensor? cacheCopy = cosSinCache.is_contiguous() ? null : cosSinCache.contiguous();
        try
        {
            void* pos = KernelArguments.Data(positionCopy ?? positions);
            for (long t = 0; t < tokens; t++)
            {
                long p = wide ? ((long*)pos)[t] : ((int*)pos)[t];
                if ((ulong)p >= (ulong)maxPosition)
                {
                    throw new ArgumentException(
                        $"{RotaryName}: position {p} of token {t} in 'positions' is out of range for 'cosSinCache' of shape {KernelArguments.Format(cacheShape)} " +
                        $"({maxPosition} positions).",
                        nameof(positions));
                }
            }

            if (tokens == 0)
            {
                return;
            }

            void* cache = KernelArguments.Data(cacheCopy ?? cosSinCache);
            void* q = KernelArguments.Data(query);
            void* k = key is null ? null : KernelArguments.Data(key);
            switch (kind)
            {
                case KernelDType.Float16:
                    Rotate(new RotaryJob<Float16Lanes>(pos, wide, cache, (int)rotaryDim, headSize, isNeox, q, queryHeads, k, keyHeads), tokens);
                    break;
                case KernelDType.BFloat16:
                    Rotate(new RotaryJob<BFloat16Lanes>(pos, wide, cache, (int)rotaryDim, headSize, isNeox, q, queryHeads, k, keyHeads), tokens);
                    break;
                default:
                    Rotate(new RotaryJob<Float32Lanes>(pos, wide, cache, (int)rotaryDim, headSize, isNeox, q, queryHeads, k, keyHeads), tokens);
                    break;
            }

            GC.KeepAlive(query);
            GC.KeepAlive(key);
        }
        finally
        {
            positionCopy?.Dispose();
            cacheCopy?.Dispose();
        }
    }

    private static long Heads(torch.Tensor tensor, string name, long tokens, long headSize)
    {
        long[] shape = KernelArguments.Shape(tensor);
        bool fits = shape.Length is 2 or 3 && shape[0] == tokens && (shape.Length == 2 ? shape[1] % Math.Max(headSize, 1) == 0 : shape[2] == headSize);
        if (!fits)
        {
            throw new ArgumentException(
                $"{RotaryName}: argument '{name}' has shape {KernelArguments.Format(shape)}, but it must be [tokens, heads * headSize] or " +
                $"[tokens, heads, headSize] with tokens = {tokens} (the elements of 'positions') and headSize = {headSize}.",
                name);
        }

        if (!tensor.is_contiguous())
        {
            throw new ArgumentException(
                $"{RotaryName}: argument '{name}' of shape {KernelArguments.Format(shape)} is not contiguous; the rotation is in place and needs contiguous memory.",
                name);
        }

        return shape.Length == 2 ? shape[1] / headSize : shape[1];
    }

    private static void Rotate<T>(RotaryJob<T> job, long tokens)
        where T : struct, IFloatLanes =>
        CpuRowKernels.Run(job, tokens, tokens * job.ElementsPerToken);
}

/// <summary>
/// rotary_embedding over tokens, query and key heads together (one angle row per token, widened to float32 once).
/// Neox: 16-lane fused multiply-adds over the two halves of each head. GPT-J (interleaved): per token, cos duplicated
/// per pair (c0 c0 c1 c1 ...) and sin with alternating sign (-s0 s0 -s1 s1 ...), so each 16 lanes of a head are
/// x·cos2 + swap_pairs(x)·sin±, one in-register shuffle.
/// </summary>
internal readonly unsafe struct RotaryJob<T> : IRowJob
    where T : struct, IFloatLanes
{
    private const int Lanes = FloatLanes.Count;
    private readonly void* positions;
    private readonly bool widePositions;
    private readonly byte* cache;
    private readonly int rotaryDim;
    private readonly long headSize;
    private readonly bool neox;
    private readonly byte* query;
    private readonly long queryHeads;
    private readonly byte* key;
    private readonly long keyHeads;

    public RotaryJob(void* positions, bool widePositions, void* cache, int rotaryDim, long headSize, bool neox, void* query, long queryHeads, void* key, long keyHeads)
    {
        this.positions = positions;
        this.widePositions = widePositions;
        this.cache = (byte*)cache;
        this.rotaryDim = rotaryDim;
        this.headSize = headSize;
        this.neox = neox;
        this.query = (byte*)query;
        this.queryHeads = queryHeads;
        this.key = (byte*)key;
        this.keyHeads = key == null ? 0 : keyHeads;
    }

    /// <summary>Rotated elements per token (the work measure for threading).</summary>
    public long ElementsPerToken => (queryHeads + keyHeads) * rotaryDim;

    public void Run(long first, long end)
    {
        int half = rotaryDim / 2;
        if (half == 0 || queryHeads + keyHeads == 0)
        {
            return;
        }

        // Neox: cos in [0, half), sin in [half, rotDim). GPT-J: cos2 in [0, rotDim), sin± in [rotDim, 2 rotDim).
        float* angles = KernelScratch.Floats(KernelScratch.SlotRow, 2L * rotaryDim);
        Vector512<int> swapPairs = Vector512.Create(1, 0, 3, 2, 5, 4, 7, 6, 9, 8, 11, 10, 13, 12, 15, 14);
        for (long t = first; t < end; t++)
        {
            long p = widePositions ? ((long*)positions)[t] : ((int*)positions)[t];
            byte* row = cache + p * rotaryDim * T.Size;
            float* cs;
            if (neox)
            {
                if (typeof(T) == typeof(Float32Lanes))
                {
                    cs = (float*)row;
                }
                else
                {
                    T.Widen(row, angles, rotaryDim);
                    cs = angles;
                }

                RotateNeox(query + t * queryHeads * headSize * T.Size, queryHeads, cs, half);
                RotateNeox(key + t * keyHeads * headSize * T.Size, keyHeads, cs, half);
            }
            else
            {
                for (int i = 0; i < half; i++)
                {
                    float c = T.LoadScalar(row + i * T.Size), sn = T.LoadScalar(row + (half + i) * T.Size);
                    angles[2 * i] = c;
                    angles[2 * i + 1] = c;
                    angles[rotaryDim + 2 * i] = -sn;
                    angles[rotaryDim + 2 * i + 1] = sn;
                }

                RotateInterleaved(query + t * queryHeads * headSize * T.Size, queryHeads, angles, swapPairs);
                RotateInterleaved(key + t * keyHeads * headSize * T.Size, keyHeads, angles, swapPairs);
            }
        }
    }

    /// <summary>x1' = x1·cos - x2·sin, x2' = x2·cos + x1·sin over pairs (i, i + half) of each head.</summary>
    private void RotateNeox(byte* heads, long count, float* cs, int half)
    {
        for (long h = 0; h < count; h++)
        {
            byte* x1p = heads + h * headSize * T.Size;
            byte* x2p = x1p + half * T.Size;
            int i = 0;
            for (; i <= half - Lanes; i += Lanes)
            {
                Vector512<float> c = Vector512.Load(cs + i), sn = Vector512.Load(cs + half + i);
                Vector512<float> x1 = T.Load(x1p + i * T.Size), x2 = T.Load(x2p + i * T.Size);
                T.Store(Vector512.FusedMultiplyAdd(x1, c, -(x2 * sn)), x1p + i * T.Size);
                T.Store(Vector512.FusedMultiplyAdd(x2, c, x1 * sn), x2p + i * T.Size);
            }

            if (i < half)
            {
                int rest = half - i;
                Vector512<float> c = FloatLanes.LoadPartial<Float32Lanes>((byte*)(cs + i), rest, 0f);
                Vector512<float> sn = FloatLanes.LoadPartial<Float32Lanes>((byte*)(cs + half + i), rest, 0f);
                Vector512<float> x1 = FloatLanes.LoadPartial<T>(x1p + i * T.Size, rest, 0f), x2 = FloatLanes.LoadPartial<T>(x2p + i * T.Size, rest, 0f);
                FloatLanes.StorePartial<T>(Vector512.FusedMultiplyAdd(x1, c, -(x2 * sn)), x1p + i * T.Size, rest);
                FloatLanes.StorePartial<T>(Vector512.FusedMultiplyAdd(x2, c, x1 * sn), x2p + i * T.Size, rest);
            }
        }
    }

    /// <summary>x' = x·cos2 + swap_pairs(x)·sin± over the first rotDim elements of each head.</summary>
    private void RotateInterleaved(byte* heads, long count, float* angles, Vector512<int> swapPairs)
    {
        float* sn = angles + rotaryDim;
        for (long h = 0; h < count; h++)
        {
            byte* xp = heads + h * headSize * T.Size;
            int j = 0;
            for (; j <= rotaryDim - Lanes; j += Lanes)
            {
                Vector512<float> x = T.Load(xp + j * T.Size);
                Vector512<float> swapped = Vector512.Shuffle(x, swapPairs);
                T.Store(Vector512.FusedMultiplyAdd(x, Vector512.Load(angles + j), swapped * Vector512.Load(sn + j)), xp + j * T.Size);
            }

            if (j < rotaryDim)
            {
                int rest = rotaryDim - j;
                Vector512<float> x = FloatLanes.LoadPartial<T>(xp + j * T.Size, rest, 0f);
                Vector512<float> swapped = Vector512.Shuffle(x, swapPairs);
                Vector512<float> c = FloatLanes.LoadPartial<Float32Lanes>((byte*)(angles + j), rest, 0f);
                Vector512<float> s = FloatLanes.LoadPartial<Float32Lanes>((byte*)(sn + j), rest, 0f);
                FloatLanes.StorePartial<T>(Vector512.FusedMultiplyAdd(x, c, swapped * s), xp + j * T.Size, rest);
            }
        }
    }
}
