using ILGPU;

namespace GemsInjector.Kernels.Ilgpu;

/// <summary>
/// Flash-decoding for one query row (lq = 1): the keys of each (batch, head) are split into chunks of
/// <c>chunk</c> keys, one group per (chunk, head, batch) computes the chunk's scores (a warp per key, four keys per
/// warp iteration, lanes over the head dimension, shuffle sums), its max m, its Σ p = l and its unnormalised output
/// Σ p·v (threads split into head-dim × key slices, four keys per iteration in flight); <see cref="DecodeCombineF32"/>
/// rescales the chunks by e^(m - M) and divides by L. Masking, scale, grouped-query heads and the fully-masked-row zero
/// follow <see cref="AttentionKernels.AttentionF32"/>. Needs headDim ≤ group size and ≤ <see cref="MaxD"/>.
/// </summary>
internal static class AttentionDecodeKernels
{
    /// <summary>Largest head dimension of the decode path.</summary>
    public const int MaxD = 256;

    /// <summary>Largest number of keys per chunk.</summary>
    public const int MaxChunk = 256;

    /// <summary>Largest group (the key-slice reduction buffer is sized for it).</summary>
    public const int MaxGroup = 256;

    [IlgpuKernel]
    public static void DecodeSplitF32(ArrayView<float> q, ArrayView<float> k, ArrayView<float> v, ArrayView<float> mask,
        ArrayView<float> partO, ArrayView<float> partML, AttentionShape s, int chunk, int kEnd)
    {
        var sQ = SharedMemory.Allocate<float>(MaxD);
        var sS = SharedMemory.Allocate<float>(MaxChunk);
        var sR = SharedMemory.Allocate<float>(MaxGroup);
        var scratch = SharedMemory.Allocate<float>(32);
        int split = Grid.IdxX;
        int h = Grid.IdxY;
        int batch = Grid.IdxZ;
        int splits = Grid.DimX;
        int d = s.D;
        int tid = Group.IdxX;
        int g = Group.DimX;
        int ws = Warp.WarpSize;
        int lane = Warp.LaneIdx;
        int wi = Warp.WarpIdx;
        int nw = g / ws;
        int kvh = h / (s.Heads / s.KvHeads);
        long qBase = ((long)batch * s.Heads + h) * d;
        long kBase = ((long)batch * s.KvHeads + kvh) * s.Lk * d;
        long maskBase = batch * s.MaskBatch + h * s.MaskHead;
        int j0 = split * chunk;
        int j1 = j0 + chunk < kEnd ? j0 + chunk : kEnd;
        int n = j1 - j0;
        for (int t = tid; t < d; t += g)
        {
            sQ[t] = q[qBase + t];
        }

        Group.Barrier();
        for (int ja = wi; ja < n; ja += 4 * nw)
        {
            int jb = ja + nw;
            int jc = ja + 2 * nw;
            int jd = ja + 3 * nw;
            bool hb = jb < n;
            bool hc = jc < n;
            bool hd = jd < n;
            long oa = kBase + (long)(j0 + ja) * d;
            long ob = hb ? kBase + (long)(j0 + jb) * d : oa;
            long oc = hc ? kBase + (long)(j0 + jc) * d : oa;
            long od = hd ? kBase + (long)(j0 + jd) * d : oa;
            float da = 0f, db = 0f, dc = 0f, dd = 0f;
            for (int t = lane; t < d; t += ws)
            {
                float qt = sQ[t];
                da += qt * k[oa + t];
                db += qt * k[ob + t];
                dc += qt * k[oc + t];
                dd += qt * k[od + t];
            }

            da = GpuMath.WarpSum(da);
            db = GpuMath.WarpSum(db);
            dc = GpuMath.WarpSum(dc);
            dd = GpuMath.WarpSum(dd);
            if (lane == 0)
            {
                sS[ja] = Score(da, mask, s, maskBase, j0 + ja);
                if (hb)
                {
                    sS[jb] = Score(db, mask, s, maskBase, j0 + jb);
                }

                if (hc)
                {
                    sS[jc] = Score(dc, mask, s, maskBase, j0 + jc);
                }

                if (hd)
                {
                    sS[jd] = Score(dd, mask, s, maskBase, j0 + jd);
                }
            }
        }

        Group.Barrier();
        float m = GpuMath.NegInf;
        for (int j = tid; j < n; j += g)
        {
            m = GpuMath.MaxNaN(m, sS[j]);
        }

        m = GpuMath.GroupMax(m, scratch);
        float l = 0f;
        for (int j = tid; j < n; j += g)
        {
            float p = m == GpuMath.NegInf ? 0f : GpuMath.Exp(sS[j] - m);
            sS[j] = p;
            l += p;
        }

        l = GpuMath.GroupSum(l, scratch);

        // Output: thread = (key slice, dim); slices = g / d; four keys of the slice per iteration.
        int slices = g / d;
        int sl = tid / d;
        int dim = tid - sl * d;
        float acc = 0f;
        if (sl < slices)
        {
            long vb = kBase + (long)j0 * d + dim;
            for (int j = sl; j < n; j += 4 * slices)
            {
                int j2 = j + slices;
                int j3 = j + 2 * slices;
                int j4 = j + 3 * slices;
                float v1 = v[vb + (long)j * d];
                float v2 = j2 < n ? v[vb + (long)j2 * d] : 0f;
                float v3 = j3 < n ? v[vb + (long)j3 * d] : 0f;
                float v4 = j4 < n ? v[vb + (long)j4 * d] : 0f;
                acc += sS[j] * v1;
                acc += j2 < n ? sS[j2] * v2 : 0f;
                acc += j3 < n ? sS[j3] * v3 : 0f;
                acc += j4 < n ? sS[j4] * v4 : 0f;
            }

            sR[tid] = acc;
        }

        Group.Barrier();
        long part = ((long)batch * s.Heads + h) * splits + split;
        if (tid < d)
        {
            float o = 0f;
            for (int r = 0; r < slices; r++)
            {
                o += sR[r * d + tid];
            }

            partO[part * d + tid] = o;
        }

        if (tid == 0)
        {
            partML[2 * part] = m;
            partML[2 * part + 1] = l;
        }
    }

    private static float Score(float dot, ArrayView<float> mask, AttentionShape s, long maskBase, int j)
    {
        float score = dot * s.Scale;
        return s.HasMask != 0 ? score + mask[maskBase + j] : score;
    }

    /// <summary>output = Σ_c e^(m_c - M)·O_c / Σ_c e^(m_c - M)·l_c (0 when every key is masked); grid (heads, batch).</summary>
    [IlgpuKernel]
    public static void DecodeCombineF32(ArrayView<float> partO, ArrayView<float> partML, ArrayView<float> output, AttentionShape s, int splits)
    {
        int h = Grid.IdxX;
        int batch = Grid.IdxY;
        int d = s.D;
        long p0 = ((long)batch * s.Heads + h) * splits;
        float mMax = GpuMath.NegInf;
        for (int c = 0; c < splits; c++)
        {
            mMax = GpuMath.MaxNaN(mMax, partML[2 * (p0 + c)]);
        }

        float total = 0f;
        for (int c = 0; c < splits; c++)
        {
            float mc = partML[2 * (p0 + c)];
            float wc = mc == GpuMath.NegInf ? 0f : GpuMath.Exp(mc - mMax);
            total += wc * partML[2 * (p0 + c) + 1];
        }

        long oBase = ((long)batch * s.Heads + h) * d;
        for (int t = Group.IdxX; t < d; t += Group.DimX)
        {
            float o = 0f;
            for (int c = 0; c < splits; c++)
            {
                float mc = partML[2 * (p0 + c)];
                float wc = mc == GpuMath.NegInf ? 0f : GpuMath.Exp(mc - mMax);
                o += wc * partO[(p0 + c) * d + t];
            }

            output[oBase + t] = total == 0f ? 0f : o / total;
        }
    }
}
