using ILGPU;

namespace GemsInjector.Kernels.Ilgpu;

/// <summary>Shape of a scaled-dot-product attention call (q [B, Hq, Lq, D]; k, v [B, Hkv, Lk, D]; all contiguous).</summary>
internal struct AttentionShape
{
    public int Heads;
    public int KvHeads;
    public int Lq;
    public int Lk;
    public int D;
    public float Scale;
    public int Causal;
    public int HasMask;

    /// <summary>Additive mask strides per batch, head and query row (0 broadcasts); key stride is 1.</summary>
    public long MaskBatch;
    public long MaskHead;
    public long MaskRow;

    /// <summary>Queries per group and keys per tile (the dynamic shared memory is sized from them).</summary>
    public int BlockQ;
    public int BlockK;
}

/// <summary>
/// Flash-style attention: one group per (block of BlockQ queries, head, batch); key / value tiles of BlockK rows are
/// staged in dynamic shared memory, scores and the running (max, sum) per query row are kept there too, and the
/// output accumulator is rescaled per tile (online softmax). Causal is top-left (key j visible to query i when j ≤ i,
/// as PyTorch's is_causal); grouped-query attention maps head h to kv head h / (Heads / KvHeads). A fully masked row
/// gives zeros, as libtorch 2.10's math path (safe softmax) and the CPU kernels do; NaN inputs still give NaN.
/// Shared floats: 2·BlockQ·D (Q, O) + BlockK·(D | 1) (K, odd row stride) + BlockK·D (V) + BlockQ·BlockK (scores) +
/// 3·BlockQ (max, sum, rescale).
/// </summary>
internal static class AttentionKernels
{
    public static int SharedFloats(int blockQ, int blockK, int d) => 2 * blockQ * d + blockK * KeyStride(d) + blockK * d + blockQ * blockK + 3 * blockQ;

    /// <summary>
    /// Row stride of the staged key tile: odd, so that the 32 lanes of a warp (consecutive keys, same dim) read 32
    /// different banks in the score loop (a stride of d = 128 put them all on one bank).
    /// </summary>
    public static int KeyStride(int d) => d | 1;

    [IlgpuKernel]
    public static void AttentionF32(ArrayView<float> q, ArrayView<float> k, ArrayView<float> v, ArrayView<float> mask, ArrayView<float> output, AttentionShape s)
    {
        var shared = SharedMemory.GetDynamic<float>();
        int bq = s.BlockQ;
        int bk = s.BlockK;
        int d = s.D;
        var sq = shared.SubView(0, bq * d);
        var so = shared.SubView(bq * d, bq * d);
        int kStride = AttentionKernels.KeyStride(d);
        int tiles = 2 * bq * d + bk * kStride + bk * d;
        var sk = shared.SubView(2 * bq * d, bk * kStride);
        var sv = shared.SubView(2 * bq * d + bk * kStride, bk * d);
        var ss = shared.SubView(tiles, bq * bk);
        var sm = shared.SubView(tiles + bq * bk, bq);
        var sl = shared.SubView(tiles + bq * bk + bq, bq);
        var sa = shared.SubView(tiles + bq * bk + 2 * bq, bq);

        int tid = Group.IdxX;
        int g = Group.DimX;
        int q0 = Grid.IdxX * bq;
        int h = Grid.IdxY;
        int batch = Grid.IdxZ;
        int kvh = h / (s.Heads / s.KvHeads);
        long qBase = (((long)batch * s.Heads + h) * s.Lq + q0) * d;
        long kBase = ((long)batch * s.KvHeads + kvh) * s.Lk * d;
        long maskBase = batch * s.MaskBatch + h * s.MaskHead;

        for (int e = tid; e < bq * d; e += g)
        {
            int i = e / d;
            sq[e] = q0 + i < s.Lq ? q[qBase + e] : 0f;
            so[e] = 0f;
        }

        for (int i = tid; i < bq; i += g)
        {
            sm[i] = GpuMath.NegInf;
            sl[i] = 0f;
        }

        Group.Barrier();
        int kEnd = s.Lk;
        if (s.Causal != 0 && q0 + bq < kEnd)
        {
            kEnd = q0 + bq;
        }

        for (int k0 = 0; k0 < kEnd; k0 += bk)
        {
            for (int e = tid; e < bk * d; e += g)
            {
                int j = e / d;
                bool inside = k0 + j < s.Lk;
                sk[j * kStride + (e - j * d)] = inside ? k[kBase + (long)k0 * d + e] : 0f;
                sv[e] = inside ? v[kBase + (long)k0 * d + e] : 0f;
            }

            Group.Barrier();
            AttendToKeyTile(sq, sk, sv, ss, sm, sl, sa, so, mask, s, q0, k0, maskBase);
        }

        for (int e = tid; e < bq * d; e += g)
        {
            int i = e / d;
            if (q0 + i < s.Lq)
            {
                float l = sl[i];
                output[qBase + e] = l == 0f ? 0f : so[e] / l;
            }
        }
    }

    /// <summary>
    /// One key tile of the flash-style loop, shared by the float32 and 16-bit kernels (their tiles are float32 in shared
    /// memory either way): scores of the query tile against the staged key tile, the online-softmax update of each row's
    /// max and sum, and the value accumulation. Called by every thread of the group; ends with a barrier.
    /// </summary>
    internal static void AttendToKeyTile(
        ArrayView<float> sq, ArrayView<float> sk, ArrayView<float> sv, ArrayView<float> ss,
        ArrayView<float> sm, ArrayView<float> sl, ArrayView<float> sa, ArrayView<float> so,
        ArrayView<float> mask, AttentionShape s, int q0, int k0, long maskBase)
    {
        int tid = Group.IdxX;
        int g = Group.DimX;
        int bq = s.BlockQ;
        int bk = s.BlockK;
        int d = s.D;
        int kStride = KeyStride(d);
        for (int e = tid; e < bq * bk; e += g)
        {
            int i = e / bk;
            int j = e - i * bk;
            int gi = q0 + i;
            int gj = k0 + j;
            float score = GpuMath.NegInf;
            if (gi < s.Lq && gj < s.Lk && (s.Causal == 0 || gj <= gi))
            {
                float dot = 0f;
                for (int t = 0; t < d; t++)
                {
                    dot += sq[i * d + t] * sk[j * kStride + t];
                }

                score = dot * s.Scale;
                if (s.HasMask != 0)
                {
                    score += mask[maskBase + gi * s.MaskRow + gj];
                }
            }

            ss[e] = score;
        }

        Group.Barrier();

        // Online-softmax update, one warp per query row (lanes over the keys), so every warp works while the rows are
        // updated instead of one thread per row.
        int ws = Warp.WarpSize;
        int lane = Warp.LaneIdx;
        for (int i = Warp.WarpIdx; i < bq; i += g / ws)
        {
            float mOld = sm[i];
            float top = GpuMath.NegInf;
            for (int j = lane; j < bk; j += ws)
            {
                top = GpuMath.MaxNaN(top, ss[i * bk + j]);
            }

            float mNew = GpuMath.MaxNaN(mOld, GpuMath.WarpMax(top));
            float rowSum = 0f;
            for (int j = lane; j < bk; j += ws)
            {
                float p = mNew == GpuMath.NegInf ? 0f : GpuMath.Exp(ss[i * bk + j] - mNew);
                ss[i * bk + j] = p;
                rowSum += p;
            }

            rowSum = GpuMath.WarpSum(rowSum);
            if (lane == 0)
            {
                float alpha = mNew == GpuMath.NegInf ? 1f : GpuMath.Exp(mOld - mNew);
                sm[i] = mNew;
                sl[i] = sl[i] * alpha + rowSum;
                sa[i] = alpha;
            }
        }

        Group.Barrier();
        for (int e = tid; e < bq * d; e += g)
        {
            int i = e / d;
            int c = e - i * d;
            float acc = so[e] * sa[i];
            for (int j = 0; j < bk; j++)
            {
                acc += ss[i * bk + j] * sv[j * d + c];
            }

            so[e] = acc;
        }

        Group.Barrier();
    }
}
