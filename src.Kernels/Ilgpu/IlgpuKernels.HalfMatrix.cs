using System;
using ILGPU;
using ILGPU.Runtime;

namespace GemsInjector.Kernels.Ilgpu;

public sealed partial class IlgpuKernels
{
    private Action<KernelConfig, ArrayView<ushort>, ArrayView<ushort>, ArrayView<ushort>, ArrayView<ushort>, GemmShape, int>? gemm16;
    private Action<KernelConfig, ArrayView<ushort>, ArrayView<ushort>, ArrayView<ushort>, ArrayView<float>, ArrayView<ushort>, AttentionShape, int>? attention16;

    /// <summary>16-bit <c>aten::mm</c>: c[M, N] = a[M, K] · b[K, N] (b as [N, K] when <paramref name="transposeB"/>), float32 accumulation.</summary>
    /// <param name="a">[M, K].</param>
    /// <param name="b">[K, N], or [N, K] when transposed.</param>
    /// <param name="c">[M, N] output.</param>
    /// <param name="m">Rows of a and c.</param>
    /// <param name="k">Inner dimension.</param>
    /// <param name="n">Columns of c.</param>
    /// <param name="format">Storage format of a, b, c.</param>
    /// <param name="transposeB">Whether b is stored [N, K].</param>
    public void Mm(ArrayView<ushort> a, ArrayView<ushort> b, ArrayView<ushort> c, int m, int k, int n, HalfFormat format, bool transposeB = false) =>
        Gemm16(a, b, default, c, 1, m, k, n, transposeB, 1f, 0f, biasIsMatrix: false, format);

    /// <summary>16-bit <c>aten::bmm</c>: c[i] = a[i] · b[i] for a [batch, M, K], b [batch, K, N] (or [batch, N, K] when transposed).</summary>
    /// <param name="a">[batch, M, K].</param>
    /// <param name="b">[batch, K, N] or [batch, N, K].</param>
    /// <param name="c">[batch, M, N] output.</param>
    /// <param name="batch">Batch count.</param>
    /// <param name="m">Rows.</param>
    /// <param name="k">Inner dimension.</param>
    /// <param name="n">Columns.</param>
    /// <param name="format">Storage format of a, b, c.</param>
    /// <param name="transposeB">Whether b is stored [batch, N, K].</param>
    public void Bmm(ArrayView<ushort> a, ArrayView<ushort> b, ArrayView<ushort> c, int batch, int m, int k, int n, HalfFormat format, bool transposeB = false) =>
        Gemm16(a, b, default, c, batch, m, k, n, transposeB, 1f, 0f, biasIsMatrix: false, format);

    /// <summary>
    /// 16-bit <c>aten::addmm</c>: c = beta·bias + alpha·(a · b) in float32, rounded once; bias [N] (broadcast over rows) or
    /// [M, N] in the same format. With beta = 0 the bias is not read.
    /// </summary>
    /// <param name="bias">[N] or [M, N].</param>
    /// <param name="a">[M, K].</param>
    /// <param name="b">[K, N], or [N, K] when transposed.</param>
    /// <param name="c">[M, N] output.</param>
    /// <param name="m">Rows.</param>
    /// <param name="k">Inner dimension.</param>
    /// <param name="n">Columns.</param>
    /// <param name="format">Storage format of every view.</param>
    /// <param name="beta">Factor on the bias.</param>
    /// <param name="alpha">Factor on the product.</param>
    /// <param name="transposeB">Whether b is stored [N, K].</param>
    public void Addmm(ArrayView<ushort> bias, ArrayView<ushort> a, ArrayView<ushort> b, ArrayView<ushort> c, int m, int k, int n, HalfFormat format,
        float beta = 1f, float alpha = 1f, bool transposeB = false)
    {
        bool matrix = bias.Length == (long)m * n && m != 1;
        if (!matrix)
        {
            CheckLength(bias, n, nameof(bias));
        }

        Gemm16(a, b, bias, c, 1, m, k, n, transposeB, alpha, beta, matrix, format);
    }

    private void Gemm16(ArrayView<ushort> a, ArrayView<ushort> b, ArrayView<ushort> bias, ArrayView<ushort> c, int batch, int m, int k, int n,
        bool transposeB, float alpha, float beta, bool biasIsMatrix, HalfFormat format)
    {
        CheckPositive(batch, nameof(batch));
        CheckPositive(m, nameof(m));
        CheckPositive(k, nameof(k));
        CheckPositive(n, nameof(n));
        CheckLength(a, (long)batch * m * k, nameof(a));
        CheckLength(b, (long)batch * k * n, nameof(b));
        CheckLength(c, (long)batch * m * n, nameof(c));
        if ((long)batch * m * n == 0)
        {
            return;
        }

        if (TryHalfGemv(a, b, bias, c, batch, m, k, n, transposeB, alpha, beta, biasIsMatrix, format))
        {
            return;
        }

        if (TryTensorCoreGemm16(a, b, bias, c, batch, m, k, n, transposeB, alpha, beta, biasIsMatrix, format))
        {
            return;
        }

        int tile = Math.Min(GemmKernels.MaxTile, (int)Math.Sqrt(device.MaxGroupSize));
        var shape = new GemmShape
        {
            M = m,
            N = n,
            K = k,
            StrideAm = k,
            StrideAk = 1,
            StrideBk = transposeB ? 1 : n,
            StrideBn = transposeB ? k : 1,
            BatchA = (long)m * k,
            BatchB = (long)k * n,
            BatchC = (long)m * n,
            BatchBias = 0,
            StrideBiasM = biasIsMatrix ? n : 0,
            StrideBiasN = 1,
            Alpha = alpha,
            Beta = beta,
            HasBias = bias.Length != 0 ? 1 : 0,
        };
        var config = new KernelConfig(new Index3D((n + tile - 1) / tile, (m + tile - 1) / tile, batch), new Index3D(tile, tile, 1));
        device.Load(ref gemm16, nameof(HalfMatrixKernels.Gemm16),
            acc => acc.LoadStreamKernel<ArrayView<ushort>, ArrayView<ushort>, ArrayView<ushort>, ArrayView<ushort>, GemmShape, int>(HalfMatrixKernels.Gemm16))(
            config, a, b, bias, c, shape, Bf(format));
    }

    /// <summary>
    /// 16-bit <c>aten::scaled_dot_product_attention</c> (no dropout): q, k, v and output in <paramref name="format"/>,
    /// scores, softmax and the output accumulator in float32 (see the float32 overload for shapes, causal and masking).
    /// The additive mask is float32 ([lq, lk], [batch, lq, lk] or [batch, heads, lq, lk]) or empty. One query row (decode),
    /// or a few unmasked non-causal ones as a head each (<see cref="QueriesRunAsHeads"/>), with 16-byte aligned views and
    /// a head size that is a multiple of 8 (≤ 256 on CUDA) takes flash-decoding
    /// (<see cref="AttentionDecodeWideKernels"/>); on CUDA, head size 128 with aligned views, or 64 without a mask, takes
    /// the tensor cores (<see cref="AttentionTensorCoreKernels"/>), head sizes 64 and 128 where the tensor cores do not take
    /// them the register-tiled kernel (<see cref="AttentionTiledKernels"/>); other shapes the flash-style
    /// <see cref="HalfMatrixKernels.Attention16"/>.
    /// </summary>
    /// <param name="q">Queries [batch, heads, lq, d].</param>
    /// <param name="k">Keys [batch, kvHeads, lk, d].</param>
    /// <param name="v">Values [batch, kvHeads, lk, d].</param>
    /// <param name="output">Output, shaped as q.</param>
    /// <param name="batch">Batch size.</param>
    /// <param name="heads">Query heads.</param>
    /// <param name="kvHeads">Key / value heads.</param>
    /// <param name="lq">Query length.</param>
    /// <param name="lk">Key length.</param>
    /// <param name="headDim">Head dimension.</param>
    /// <param name="format">Storage format of q, k, v and output.</param>
    /// <param name="causal">Top-left causal masking.</param>
    /// <param name="mask">Additive float32 mask, or an empty view.</param>
    /// <param name="scale">Score scale; 1/√headDim when null.</param>
    public void ScaledDotProductAttention(ArrayView<ushort> q, ArrayView<ushort> k, ArrayView<ushort> v, ArrayView<ushort> output,
        int batch, int heads, int kvHeads, int lq, int lk, int headDim, HalfFormat format, bool causal = false, ArrayView<float> mask = default, float? scale = null)
    {
        var (maskBatch, maskHead) = CheckAttention(q, k, v, output, batch, heads, kvHeads, lq, lk, headDim, mask);

        if (batch * (long)lq == 0)
        {
            return;
        }

        // A decode over a few keys takes the general kernel (one key block; IlgpuKernels.SmallShapes.cs).
        bool shortDecode = IsShortDecode(lq, lk);
        bool queriesAsHeads = QueriesRunAsHeads(batch, heads, lq, causal, mask.Length != 0, long.MaxValue)
            && (long)batch * heads * lq <= DecodePairsBeforePrefill(q, k, v, output, batch, heads, lq, lk, headDim);
        if ((lq == 1 || queriesAsHeads) && !IsShortDecode(1, lk))
        {
            int decodeHeads = queriesAsHeads ? heads * lq : heads;
            var decode = new AttentionShape
            {
                Heads = decodeHeads,
                KvHeads = kvHeads,
                Lq = 1,
                Lk = lk,
                D = headDim,
                Scale = scale ?? 1f / MathF.Sqrt(headDim),
                Causal = causal ? 1 : 0,
                HasMask = mask.Length != 0 ? 1 : 0,
                MaskBatch = maskBatch,
                MaskHead = maskHead,
                MaskRow = lk,
            };
            if (TryWideDecode16(q, k, v, mask, output, batch, causal ? Math.Min(1, lk) : lk, decode, format))
            {
                return;
            }
        }

        var (blockQ, blockK, sharedFloats) = AttentionBlocks(headDim);
        var shape = new AttentionShape
        {
            Heads = heads,
            KvHeads = kvHeads,
            Lq = lq,
            Lk = lk,
            D = headDim,
            Scale = scale ?? 1f / MathF.Sqrt(headDim),
            Causal = causal ? 1 : 0,
            HasMask = mask.Length != 0 ? 1 : 0,
            MaskBatch = maskBatch,
            MaskHead = maskHead,
            MaskRow = lk,
            BlockQ = blockQ,
            BlockK = blockK,
        };
        if (!shortDecode && (TryTensorCoreAttention16(q, k, v, mask, output, batch, shape, format) || TryTiledAttention16(q, k, v, mask, output, batch, shape, format)))
        {
            return;
        }

        int group = Math.Min(device.MaxGroupSize, 128);
        var config = new KernelConfig(new Index3D((lq + blockQ - 1) / blockQ, heads, batch), new Index3D(group, 1, 1),
            SharedMemoryConfig.RequestDynamic<float>(sharedFloats));
        device.Load(ref attention16, nameof(HalfMatrixKernels.Attention16),
            acc => acc.LoadStreamKernel<ArrayView<ushort>, ArrayView<ushort>, ArrayView<ushort>, ArrayView<float>, ArrayView<ushort>, AttentionShape, int>(HalfMatrixKernels.Attention16))(
            config, q, k, v, mask, output, shape, Bf(format));
    }

    /// <summary>
    /// The most (batch × head × query) pairs a 16-bit call of a few queries runs as decode heads rather than on the prefill
    /// kernel that would take it: no limit for the CUDA-core prefill, <see cref="SplitPrefillQueryPairs"/> where the
    /// tensor-core prefill (wgmma, or the register variant) splits the keys, else <see cref="TensorCorePrefillQueryPairs"/>.
    /// </summary>
    private long DecodePairsBeforePrefill(ArrayView<ushort> q, ArrayView<ushort> k, ArrayView<ushort> v, ArrayView<ushort> output, int batch, int heads, int lq, int lk, int headDim)
    {
        if (!UsesTensorCoreAttention(q, k, v, output, headDim, masked: false))
        {
            return long.MaxValue;
        }

        var shape = new AttentionShape { Heads = heads, Lq = lq, Lk = lk, D = headDim };
        var (ranges, _) = UsesWgmmaPrefill(headDim)
            ? WgmmaPrefillRanges(batch, shape, device.MultiprocessorCount)
            : RegisterPrefillRanges(batch, shape, device.MultiprocessorCount);
        return ranges > 1 ? SplitPrefillQueryPairs : TensorCorePrefillQueryPairs;
    }

    /// <summary>Query and key block sizes of the general attention kernels and their shared floats (at most 48 KB).</summary>
    private (int BlockQ, int BlockK, int SharedFloats) AttentionBlocks(int headDim)
    {
        bool simulator = device.Kind == IlgpuDeviceKind.CpuSimulator;
        int blockQ = simulator ? 4 : 32;
        int blockK = simulator ? 8 : 32;
        while (AttentionKernels.SharedFloats(blockQ, blockK, headDim) * sizeof(float) > 48 * 1024 && blockQ + blockK > 2)
        {
            if (blockK >= blockQ && blockK > 1)
            {
                blockK /= 2;
            }
            else
            {
                blockQ /= 2;
            }
        }

        int sharedFloats = AttentionKernels.SharedFloats(blockQ, blockK, headDim);
        if (sharedFloats * sizeof(float) > 48 * 1024)
        {
            throw new ArgumentOutOfRangeException(nameof(headDim), headDim, "Head dimension too large for 48 KB of shared memory.");
        }

        return (blockQ, blockK, sharedFloats);
    }
}
