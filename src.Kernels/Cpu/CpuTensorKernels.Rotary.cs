using System;
using System.Threading.Tasks;
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
        if (headSize <= 0 || rotaryDim % 2 != 0 || rotaryDim > headSize)
        {
            throw new ArgumentException(
                $"{RotaryName}: 'cosSinCache' has shape {KernelArguments.Format(cacheShape)}; its rotary dimension ({rotaryDim}) must be even and at most " +
                $"'headSize' ({headSize}), which must be positive.",
                nameof(cosSinCache));
        }

        long queryHeads = Heads(query, nameof(query), tokens, headSize);
        long keyHeads = key is null ? 0 : Heads(key, nameof(key), tokens, headSize);
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

            var work = new RotaryWork
            {
                Positions = pos,
                WidePositions = wide,
                Cache = KernelArguments.Data(cacheCopy ?? cosSinCache),
                RotaryDim = (int)rotaryDim,
                HeadSize = headSize,
                Neox = isNeox,
            };
            switch (kind)
            {
                case KernelDType.Float16:
                    Rotate<Float16Lanes>(work, KernelArguments.Data(query), queryHeads, tokens);
                    if (key is not null)
                    {
                        Rotate<Float16Lanes>(work, KernelArguments.Data(key), keyHeads, tokens);
                    }

                    break;
                case KernelDType.BFloat16:
                    Rotate<BFloat16Lanes>(work, KernelArguments.Data(query), queryHeads, tokens);
                    if (key is not null)
                    {
                        Rotate<BFloat16Lanes>(work, KernelArguments.Data(key), keyHeads, tokens);
                    }

                    break;
                default:
                    Rotate<Float32Lanes>(work, KernelArguments.Data(query), queryHeads, tokens);
                    if (key is not null)
                    {
                        Rotate<Float32Lanes>(work, KernelArguments.Data(key), keyHeads, tokens);
                    }

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

    private struct RotaryWork
    {
        public void* Positions;
        public bool WidePositions;
        public void* Cache;
        public int RotaryDim;
        public long HeadSize;
        public bool Neox;
    }

    private static void Rotate<T>(RotaryWork work, void* data, long heads, long tokens)
        where T : struct, IFloatLanes
    {
        if (heads == 0)
        {
            return;
        }

        nint x = (nint)data;
        void Token(long t)
        {
            long p = work.WidePositions ? ((long*)work.Positions)[t] : ((int*)work.Positions)[t];
            int half = work.RotaryDim / 2;
            long row = p * work.RotaryDim;
            for (long h = 0; h < heads; h++)
            {
                long head = (t * heads + h) * work.HeadSize;
                for (int i = 0; i < half; i++)
                {
                    float cos = FloatLanes.LoadAt<T>(work.Cache, row + i);
                    float sin = FloatLanes.LoadAt<T>(work.Cache, row + half + i);
                    long i1 = head + (work.Neox ? i : 2 * i);
                    long i2 = head + (work.Neox ? i + half : 2 * i + 1);
                    float x1 = FloatLanes.LoadAt<T>((void*)x, i1);
                    float x2 = FloatLanes.LoadAt<T>((void*)x, i2);
                    FloatLanes.StoreAt<T>((void*)x, i1, x1 * cos - x2 * sin);
                    FloatLanes.StoreAt<T>((void*)x, i2, x2 * cos + x1 * sin);
                }
            }
        }

        if (tokens * heads * work.RotaryDim < ReductionParallelElements || tokens < 2)
        {
            for (long t = 0; t < tokens; t++)
            {
                Token(t);
            }
        }
        else
        {
            Parallel.For(0L, tokens, Token);
        }
    }
}
