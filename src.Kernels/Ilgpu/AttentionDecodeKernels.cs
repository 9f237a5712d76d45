using ILGPU;

namespace GemsInjector.Kernels.Ilgpu;

/// <summary>
/// Flash-decoding for one query row (lq = 1): the keys of each (batch, head) are split into chunks of
/// <c>chunk</c> keys, one group per (chunk, head, batch) computes the chunk's scores (a warp per key, four keys per
/// warp iteration, lanes over the head dimension, shuffle sums), its max m, its Σ p = l and its unnormalised output
/// Σ p·v (threads split into head-dim × key slices, four keys per iteration in flight); <see cref="DecodeCombineF32"/>
/// rescales the chunks by e^(m - M) and divides by L. Masking, scale, grouped-query heads and the fully-masked-row zero
/// follow <see cref="AttentionKernels.AttentionF32"/>. Needs headDim ≤ group size and ≤ <see cref="MaxD"/>. The float32
/// path only for shapes <see cref="AttentionDecodeWideKernels"/> does not take (head sizes that are not a multiple of 4
/// or above its limit, unaligned views); the combine kernels serve both.
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

    /// <summary>Most threads of a combine group (the slice sums are reduced through shared memory).</summary>
    public const int MaxCombineGroup = 512;

    /// <summary>
    /// output = Σ_c e^(m_c - M)·O_c / Σ_c e^(m_c - M)·l_c (0 when every key is masked); grid (heads, batch). The group's
    /// threads are (chunk slice, dim) pairs when it has at least two threads per dim, so that each thread walks only
    /// splits / slices chunks (at batch 1 there are 64).
    /// </summary>
    [IlgpuKernel]
    public static void DecodeCombineF32(ArrayView<float> partO, ArrayView<float> partML, ArrayView<float> output, AttentionShape s, int splits)
    {
        var scratch = SharedMemory.Allocate<float>(32);
        var slices = SharedMemory.Allocate<float>(MaxCombineGroup);
        long p0 = (((long)Grid.IdxY * s.Heads) + Grid.IdxX) * splits;
        float mMax = GpuMath.GroupMax(ChunkMax(partML, p0, splits), scratch);
        float total = GpuMath.GroupSum(WeightedSum(partML, p0, splits, mMax), scratch);
        long oBase = (((long)Grid.IdxY * s.Heads) + Grid.IdxX) * s.D;
        int count = Group.DimX / s.D;
        if (count >= 2)
        {
            float o = SliceCombined(partO, partML, slices, p0, splits, s.D, mMax, count);
            if (Group.IdxX < s.D)
            {
                output[oBase + Group.IdxX] = total == 0f ? 0f : o / total;
            }
        }
        else
        {
            for (int t = Group.IdxX; t < s.D; t += Group.DimX)
            {
                output[oBase + t] = total == 0f ? 0f : Combined(partO, partML, p0, splits, s.D, t, mMax, 0, 1) / total;
            }
        }
    }

    /// <summary><see cref="DecodeCombineF32"/> with the output rounded once to 16 bits (<paramref name="bf16"/> ≠ 0: bfloat16).</summary>
    [IlgpuKernel]
    public static void DecodeCombine16(ArrayView<float> partO, ArrayView<float> partML, ArrayView<ushort> output, AttentionShape s, int splits, int bf16)
    {
        var scratch = SharedMemory.Allocate<float>(32);
        var slices = SharedMemory.Allocate<float>(MaxCombineGroup);
        long p0 = (((long)Grid.IdxY * s.Heads) + Grid.IdxX) * splits;
        float mMax = GpuMath.GroupMax(ChunkMax(partML, p0, splits), scratch);
        float total = GpuMath.GroupSum(WeightedSum(partML, p0, splits, mMax), scratch);
        long oBase = (((long)Grid.IdxY * s.Heads) + Grid.IdxX) * s.D;
        int count = Group.DimX / s.D;
        if (count >= 2)
        {
            float o = SliceCombined(partO, partML, slices, p0, splits, s.D, mMax, count);
            if (Group.IdxX < s.D)
            {
                output[oBase + Group.IdxX] = GpuMath.Store16(total == 0f ? 0f : o / total, bf16);
            }
        }
        else
        {
            for (int t = Group.IdxX; t < s.D; t += Group.DimX)
            {
                output[oBase + t] = GpuMath.Store16(total == 0f ? 0f : Combined(partO, partML, p0, splits, s.D, t, mMax, 0, 1) / total, bf16);
            }
        }
    }

    /// <summary>
    /// Σ_c e^(m_c - M)·O_c[tid] for threads tid below d (others get 0): thread (slice, dim) sums chunks slice,
    /// slice + count, ... and the <paramref name="count"/> slices meet in shared memory. Called by the whole group.
    /// </summary>
    private static float SliceCombined(ArrayView<float> partO, ArrayView<float> partML, ArrayView<float> slices, long p0, int splits, int d, float mMax, int count)
    {
        int tid = Group.IdxX;
        int slice = tid / d;
        if (slice < count)
        {
            slices[tid] = Combined(partO, partML, p0, splits, d, tid - (slice * d), mMax, slice, count);
        }

        Group.Barrier();
        float o = 0f;
        if (tid < d)
        {
            for (int r = 0; r < count; r++)
            {
                o += slices[(r * d) + tid];
            }
        }

        return o;
    }

    /// <summary>This thread's share of max_c m_c (the group reduces it).</summary>
    private static float ChunkMax(ArrayView<float> partML, long p0, int splits)
    {
        float m = GpuMath.NegInf;
        for (int c = Group.IdxX; c < splits; c += Group.DimX)
        {
            m = GpuMath.MaxNaN(m, partML[2 * (p0 + c)]);
        }

        return m;
    }

    /// <summary>e^(m_c - M), 0 for a chunk with no visible key.</summary>
    private static float ChunkWeight(ArrayView<float> partML, long p0, int c, float mMax)
    {
        float mc = partML[2 * (p0 + c)];
        return mc == GpuMath.NegInf ? 0f : GpuMath.Exp(mc - mMax);
    }

    /// <summary>This thread's share of Σ_c e^(m_c - M)·l_c.</summary>
    private static float WeightedSum(ArrayView<float> partML, long p0, int splits, float mMax)
    {
        float total = 0f;
        for (int c = Group.IdxX; c < splits; c += Group.DimX)
        {
            total += ChunkWeight(partML, p0, c, mMax) * partML[(2 * (p0 + c)) + 1];
        }

        return total;
    }

    /// <summary>Σ e^(m_c - M)·O_c[t] over chunks c = first, first + step, ..., four per iteration so that their loads are in flight together.</summary>
    private static float Combined(ArrayView<float> partO, ArrayView<float> partML, long p0, int splits, int d, int t, float mMax, int first, int step)
    {
        float o0 = 0f, o1 = 0f, o2 = 0f, o3 = 0f;
        long at = (p0 * d) + t;
        int c = first;
        for (; c + (3 * step) < splits; c += 4 * step)
        {
            o0 += ChunkWeight(partML, p0, c, mMax) * partO[at + ((long)c * d)];
            o1 += ChunkWeight(partML, p0, c + step, mMax) * partO[at + ((long)(c + step) * d)];
            o2 += ChunkWeight(partML, p0, c + (2 * step), mMax) * partO[at + ((long)(c + (2 * step)) * d)];
            o3 += ChunkWeight(partML, p0, c + (3 * step), mMax) * partO[at + ((long)(c + (3 * step)) * d)];
        }

        for (; c < splits; c += step)
        {
            o0 += ChunkWeight(partML, p0, c, mMax) * partO[at + ((long)c * d)];
        }

        return (o0 + o1) + (o2 + o3);
    }
}
