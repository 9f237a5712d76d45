using ILGPU;

namespace GemsInjector.Kernels.Ilgpu;

/// <summary>
/// 16-bit GEMM and attention: the float32 kernels' algorithms (<see cref="GemmKernels"/>, <see cref="AttentionKernels"/>,
/// same launch shapes and shared-memory layouts) with 16-bit operands widened to float32 as they are staged into shared
/// memory, float32 accumulation, and one round-to-nearest-even store per output. <c>bf16</c> ≠ 0 selects bfloat16.
/// Simple and correct first: no tensor cores (<c>mma.sync</c> comes later).
/// </summary>
internal static class HalfMatrixKernels
{
    /// <summary>C = alpha·A·B (+ beta·bias when HasBias ≠ 0 and beta ≠ 0) over 16-bit A, B, bias, C; T×T tiles widened to float32 in shared memory.</summary>
    [IlgpuKernel]
    public static void Gemm16(ArrayView<ushort> a, ArrayView<ushort> b, ArrayView<ushort> bias, ArrayView<ushort> c, GemmShape s, int bf16)
    {
        var tileA = SharedMemory.Allocate<float>(GemmKernels.MaxTile * GemmKernels.MaxTile);
        var tileB = SharedMemory.Allocate<float>(GemmKernels.MaxTile * GemmKernels.MaxTile);
        int t = Group.DimX;
        int tx = Group.IdxX;
        int ty = Group.IdxY;
        int row = Grid.IdxY * t + ty;
        int col = Grid.IdxX * t + tx;
        long batch = Grid.IdxZ;
        long aBase = batch * s.BatchA;
        long bBase = batch * s.BatchB;
        float acc = 0f;
        for (int k0 = 0; k0 < s.K; k0 += t)
        {
            int ka = k0 + tx;
            tileA[ty * t + tx] = row < s.M && ka < s.K ? GpuMath.Load16(a[aBase + row * s.StrideAm + ka * s.StrideAk], bf16) : 0f;
            int kb = k0 + ty;
            tileB[ty * t + tx] = kb < s.K && col < s.N ? GpuMath.Load16(b[bBase + kb * s.StrideBk + col * s.StrideBn], bf16) : 0f;
            Group.Barrier();
            for (int kk = 0; kk < t; kk++)
            {
                acc += tileA[ty * t + kk] * tileB[kk * t + tx];
            }

            Group.Barrier();
        }

        if (row < s.M && col < s.N)
        {
            float v = s.Alpha * acc;
            if (s.HasBias != 0 && s.Beta != 0f)
            {
                v += s.Beta * GpuMath.Load16(bias[batch * s.BatchBias + row * s.StrideBiasM + col * s.StrideBiasN], bf16);
            }

            c[batch * s.BatchC + (long)row * s.N + col] = GpuMath.Store16(v, bf16);
        }
    }

    /// <summary>
    /// Flash-style attention over 16-bit q, k, v and output (float32 additive mask): the algorithm and shared layout of
    /// <see cref="AttentionKernels.AttentionF32"/>; q, k and v tiles are widened to float32 as they are staged.
    /// </summary>
    [IlgpuKernel]
    public static void Attention16(ArrayView<ushort> q, ArrayView<ushort> k, ArrayView<ushort> v, ArrayView<float> mask, ArrayView<ushort> output, AttentionShape s, int bf16)
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
            sq[e] = q0 + i < s.Lq ? GpuMath.Load16(q[qBase + e], bf16) : 0f;
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
                sk[j * kStride + (e - j * d)] = inside ? GpuMath.Load16(k[kBase + (long)k0 * d + e], bf16) : 0f;
                sv[e] = inside ? GpuMath.Load16(v[kBase + (long)k0 * d + e], bf16) : 0f;
            }

            Group.Barrier();
            AttentionKernels.AttendToKeyTile(sq, sk, sv, ss, sm, sl, sa, so, mask, s, q0, k0, maskBase);
        }

        for (int e = tid; e < bq * d; e += g)
        {
            int i = e / d;
            if (q0 + i < s.Lq)
            {
                float l = sl[i];
                output[qBase + e] = GpuMath.Store16(l == 0f ? 0f : so[e] / l, bf16);
            }
        }
    }
}
