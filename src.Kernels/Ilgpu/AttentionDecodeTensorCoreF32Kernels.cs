using System.Runtime.CompilerServices;
using ILGPU;
using ILGPU.Runtime;
using ILGPU.Runtime.Cuda;

namespace GemsInjector.Kernels.Ilgpu;

/// <summary>
/// The warp-level operations of the float32 tensor-core decode, so one body runs on the GPU through inline PTX
/// (<see cref="PtxDecodeTcF32Ops"/>) and on ILGPU's CPU accelerator through a lane-exact emulation of ldmatrix, the
/// TF32 splits and mma.sync m16n8k8 (<see cref="EmulatedDecodeTcF32Ops"/>). Addresses are byte offsets into the
/// kernel's dynamic shared memory.
/// </summary>
internal interface IDecodeTcF32Ops
{
    /// <summary>First statement of the kernel: registers (PTX) or this thread's scratch (emulation).</summary>
    void Begin(int thread);

    /// <summary>
    /// This thread's 8 copies of a tile: vectors c = <paramref name="thread"/> + 128·i of the tile (starting at vector
    /// <paramref name="first"/> of <paramref name="source"/>, device address <paramref name="pointer"/>) to shared byte
    /// <paramref name="sharedByte"/> + 2112·i (zeros where c ≥ <paramref name="validVectors"/>).
    /// </summary>
    void CopyTile(ArrayView<float> shared, int sharedByte, ArrayView<Float4> source, long pointer, long first, int thread, int validVectors);

    /// <summary>Closes this thread's copies of one tile (cp.async.commit_group).</summary>
    void Commit();

    /// <summary>Waits until at most <see cref="AttentionDecodeTensorCoreF32Kernels.Stages"/> - 2 committed tiles are in flight.</summary>
    void WaitStages();

    /// <summary>Waits for every copy.</summary>
    void WaitAll();

    /// <summary>Stores the Q values of k steps 4·<paramref name="part"/> .. +3 (a0, a2 per step: head g, dims 8s + t and 8s + t + 4), split into TF32 parts.</summary>
    void LoadQ(int part, float a0, float a1, float a2, float a3, float a4, float a5, float a6, float a7);

    /// <summary>The warp's scores of keys 8·warp .. 8·warp + 7 of the tile in stage byte <paramref name="slot"/>, times the scale, to the score row of head g (lanes g &lt; 4).</summary>
    void Scores(ArrayView<float> shared, int slot, int warp, int lane, int tile, float scale);

    /// <summary>O^T += V^T · P^T for the warp's dims 32·warp .. +31 over the tile in <paramref name="slot"/>; w(2s), w(2s+1) = head g's weights of keys 8s + 2t, +1.</summary>
    void Accumulate(ArrayView<float> shared, int slot, int warp, int lane, float w0, float w1, float w2, float w3, float w4, float w5, float w6, float w7);

    /// <summary>Writes the O accumulators to the sums area (floats [head][dim], rows of <see cref="AttentionDecodeTensorCoreF32Kernels.D"/>).</summary>
    void StoreSums(ArrayView<float> shared, int warp, int lane);
}

/// <summary>
/// Tensor-core flash-decoding for float32 (lq = 1, head size 128): the structure of
/// <see cref="AttentionDecodeTensorCoreKernels"/> (same work split, tickets and one-launch merge, K then V of the chunk
/// as 32-key tiles through <see cref="Stages"/> cp.async buffers) with both products on mma.sync m16n8k8 TF32 and the
/// 3xTF32 split for float32 accuracy: x = big + small, big = cvt.rna.tf32(x), small = cvt.rna.tf32(x − big), a·b ≈
/// big·big + big·small + small·big (small·small dropped), for S = q·Kᵀ (q and K split) and Oᵀ += Vᵀ·Pᵀ (V and P split).
/// <para>
/// A float32 tile is 16 KB (rows of 512 bytes, twice the 16-bit tile), so a group holds 66 KB of stages and three groups
/// share an SM. Rows are padded to 528 bytes (132 words, 4 mod 32): the 8 row addresses of an ldmatrix (K, one 32-bit
/// element per lane, which is the TF32 B-fragment layout) hit distinct banks, and the V A-fragments, read by scalar
/// ld.shared with k position t = key 2t and t + 4 = key 2t + 1 (a permutation of k that the weights' B-fragments follow),
/// fall on banks 8t + g, all distinct.
/// </para>
/// </summary>
internal static partial class AttentionDecodeTensorCoreF32Kernels
{
    /// <summary>Head size of this kernel.</summary>
    public const int D = 128;

    /// <summary>Keys per staged tile.</summary>
    public const int TileKeys = 32;

    /// <summary>Staged row pitch in bytes (512 bytes of a row + 16 of padding).</summary>
    public const int RowBytes = 528;

    /// <summary>Bytes of one stage (a tile of K or V rows).</summary>
    public const int StageBytes = TileKeys * RowBytes;

    /// <summary>Staging buffers: one being read, the others' copies in flight.</summary>
    public const int Stages = 4;

    /// <summary>Resident groups per SM (launch bounds and plan): 4 × 66 KB of stages + scores fit three times in 228 KB.</summary>
    public const int GroupsPerSm = 3;

    /// <summary>Threads per group (4 warps).</summary>
    public const int GroupSize = AttentionDecodeWideKernels.Warps * 32;

    /// <summary>Floats per head of the score rows (the heads' rows start 8 banks apart).</summary>
    public const int ScoreStride = AttentionDecodeWideKernels.MaxChunk + 8;

    /// <summary>Byte offset of the chunk's score rows.</summary>
    public const int ScoresByte = Stages * StageBytes;

    /// <summary>Byte offset of the heads' statistics (m, l) and the merge's flags.</summary>
    public const int StatsByte = ScoresByte + (AttentionDecodeWideKernels.HeadsPerGroup * ScoreStride * 4);

    /// <summary>Dynamic shared floats: stages, scores, statistics (74 KB).</summary>
    public const int SharedFloats = (StatsByte / 4) + (4 * AttentionDecodeWideKernels.HeadsPerGroup);

    /// <summary>Scratch floats per thread of the emulation: Q values (32), O accumulators (8), published weights (8).</summary>
    public const int EmulationFloatsPerThread = 64;

    /// <summary>The kernel through inline PTX (CUDA, sm_80 and later), operands split by cvt.rna.tf32.f32.</summary>
    [IlgpuKernel]
    public static void DecodeTcF32(ArrayView<Float4> q, ArrayView<Float4> k, ArrayView<Float4> v, ArrayView<float> mask,
        ArrayView<float> partO, ArrayView<float> partML, ArrayView<float> output, ArrayView<int> tickets, AttentionShape s, DecodePlan plan)
    {
        var ops = default(PtxDecodeTcF32Ops);
        Body(ref ops, q, k, v, mask, partO, partML, output, tickets, s, plan);
    }

    /// <summary>
    /// The kernel with the cheap split: big = x with its 13 low bits cleared (one and), small = x − big passed unrounded
    /// (mma.sync reads a TF32 operand's top 19 bits): 2 instructions per value instead of cvt.rna's ~7 in SASS; each
    /// product's error below 2^-20 of |a·b| instead of 2^-22.
    /// </summary>
    [IlgpuKernel]
    public static void DecodeTcF32Fast(ArrayView<Float4> q, ArrayView<Float4> k, ArrayView<Float4> v, ArrayView<float> mask,
        ArrayView<float> partO, ArrayView<float> partML, ArrayView<float> output, ArrayView<int> tickets, AttentionShape s, DecodePlan plan)
    {
        var ops = new PtxDecodeTcF32Ops { Fast = 1 };
        Body(ref ops, q, k, v, mask, partO, partML, output, tickets, s, plan);
    }

    /// <summary>
    /// The same body with ldmatrix, the TF32 splits and mma.sync emulated lane by lane (<see cref="EmulationFloatsPerThread"/>
    /// scratch floats per thread of every group): for ILGPU's CPU accelerator with 32-thread warps (tests). Not an
    /// [IlgpuKernel]: nothing ships or precompiles it for CUDA.
    /// </summary>
    public static void DecodeTcF32Emulated(ArrayView<Float4> q, ArrayView<Float4> k, ArrayView<Float4> v, ArrayView<float> mask,
        ArrayView<float> partO, ArrayView<float> partML, ArrayView<float> output, ArrayView<int> tickets, AttentionShape s, DecodePlan plan,
        ArrayView<float> scratch, int fast)
    {
        var ops = new EmulatedDecodeTcF32Ops { Scratch = scratch, Fast = fast };
        Body(ref ops, q, k, v, mask, partO, partML, output, tickets, s, plan);
    }

    /// <summary>This lane's ldmatrix row address (stage-relative) for K: key 8·warp + (lane mod 8), dims 4·(lane / 8) (x4 j adds 64·j bytes).</summary>
    public static int KLaneByte(int warp, int lane) => (((8 * warp) + (lane & 7)) * RowBytes) + ((lane >> 3) * 16);

    /// <summary>This lane's V address (stage-relative): key 2t, dim 32·warp + g (the A-fragment element a0 of k step 0, m-tile 0).</summary>
    public static int VLaneByte(int warp, int lane) => (2 * (lane & 3) * RowBytes) + (((32 * warp) + (lane >> 2)) * 4);

    /// <summary>Where lane (g, t) stores its two scores of a tile: head g, keys tile·32 + 8·warp + 2t, +1.</summary>
    public static int ScoreLaneByte(int warp, int lane, int tile) =>
        ScoresByte + (4 * (((lane >> 2) * ScoreStride) + (tile * TileKeys) + (8 * warp) + (2 * (lane & 3))));

    /// <summary>Where lane (g, t) stores its first accumulator: head 2t, dim 32·warp + g of the sums area (byte 0).</summary>
    public static int SumLaneByte(int warp, int lane) => 4 * ((2 * (lane & 3) * D) + (32 * warp) + (lane >> 2));

    /// <summary>The TF32 rounding of cvt.rna.tf32.f32 (nearest, ties away from zero, 13 low bits dropped) on finite values; NaN and infinities pass.</summary>
    public static float Tf32(float x)
    {
        uint bits = Interop.FloatAsInt(x);
        if ((bits & 0x7f800000u) == 0x7f800000u)
        {
            return x;
        }

        return Interop.IntAsFloat((bits + 0x1000u) & 0xffffe000u);
    }

    /// <summary>x with its 13 low bits cleared: the fast split's big part, and how mma.sync reads an unrounded TF32 operand.</summary>
    public static float Tf32Truncate(float x) => Interop.IntAsFloat(Interop.FloatAsInt(x) & 0xffffe000u);

    /// <summary>The big and small parts of x as the PTX of the split (<paramref name="fast"/> non-zero: the and + sub split) hands them to mma.sync.</summary>
    public static void Split(float x, int fast, out float big, out float small)
    {
        if (fast != 0)
        {
            big = Tf32Truncate(x);
            small = Tf32Truncate(x - big);
        }
        else
        {
            big = Tf32(x);
            small = Tf32(x - big);
        }
    }

    internal static void Body<TOps>(ref TOps ops, ArrayView<Float4> q, ArrayView<Float4> k, ArrayView<Float4> v, ArrayView<float> mask,
        ArrayView<float> partO, ArrayView<float> partML, ArrayView<float> output, ArrayView<int> tickets, AttentionShape s, DecodePlan plan)
        where TOps : struct, IDecodeTcF32Ops
    {
        const int HeadsPerGroup = AttentionDecodeWideKernels.HeadsPerGroup;
        var shared = SharedMemory.GetDynamic<float>();
        var scores = shared.SubView(ScoresByte / 4, HeadsPerGroup * ScoreStride);
        var stats = shared.SubView(StatsByte / 4, 4 * HeadsPerGroup);
        int tid = Group.IdxX;
        ops.Begin(tid);
        var group = DecodeGroup.Of(s, plan);
        int lane = tid & 31;
        int warp = tid >> 5;
        int g = lane >> 2;
        int t = lane & 3;
        int j0 = group.Key0;
        int n = group.Keys > 0 ? group.Keys : 0;
        int kTiles = (n + TileKeys - 1) / TileKeys;
        long kBase = (((long)group.Batch * s.KvHeads) + group.KvHead) * s.Lk * D;
        long chunkVector = (kBase + ((long)j0 * D)) / 4;
        long headRow = ((long)group.Batch * s.Heads) + group.Head0;
        long maskBase = (group.Batch * s.MaskBatch) + (group.Head0 * s.MaskHead);

        for (int c = 0; c < Stages - 1; c++)
        {
            CopyTile(ref ops, shared, k, v, plan, c, kTiles, chunkVector, n, tid);
        }

        // Q fragments: lane (g, t) holds head g's dims 8s + t (a0) and 8s + t + 4 (a2) of k step s.
        var q1 = q.Cast<float>();
        long qAt = ((headRow + g) * D) + t;
        bool qLive = g < group.Live;
        for (int part = 0; part < 4; part++)
        {
            long at = qAt + (32 * part);
            ops.LoadQ(part, QValue(q1, at, qLive), QValue(q1, at + 4, qLive), QValue(q1, at + 8, qLive), QValue(q1, at + 12, qLive),
                QValue(q1, at + 16, qLive), QValue(q1, at + 20, qLive), QValue(q1, at + 24, qLive), QValue(q1, at + 28, qLive));
        }

        for (int tt = 0; tt < kTiles; tt++)
        {
            NextTile(ref ops, shared, k, v, plan, tt, kTiles, chunkVector, n, tid);
            ops.Scores(shared, (tt % Stages) * StageBytes, warp, lane, tt, s.Scale);
        }

        for (int tt = kTiles; tt < 2 * kTiles; tt++)
        {
            NextTile(ref ops, shared, k, v, plan, tt, kTiles, chunkVector, n, tid);
            if (tt == kTiles)
            {
                ChunkSoftmax(scores, stats, mask, s, maskBase, j0, group.Live, n, kTiles * TileKeys, lane, warp);
                Group.Barrier();
            }

            // Lanes of heads past the group's read head 0's row and use zeros.
            int tile = tt - kTiles;
            bool live = g < group.Live;
            int at = ((live ? g : 0) * ScoreStride) + (tile * TileKeys) + (2 * t);
            ops.Accumulate(shared, (tt % Stages) * StageBytes, warp, lane,
                live ? scores[at] : 0f, live ? scores[at + 1] : 0f, live ? scores[at + 8] : 0f, live ? scores[at + 9] : 0f,
                live ? scores[at + 16] : 0f, live ? scores[at + 17] : 0f, live ? scores[at + 24] : 0f, live ? scores[at + 25] : 0f);
        }

        if (kTiles == 0)
        {
            ChunkSoftmax(scores, stats, mask, s, maskBase, j0, group.Live, 0, 0, lane, warp);
        }

        // The stages become the sums once every copy has landed and every warp has read the last tile.
        ops.WaitAll();
        Group.Barrier();
        ops.StoreSums(shared, warp, lane);
        Group.Barrier();
        var out32 = new DecodeOutputF32 { Output = output };
        for (int e = tid; e < group.Live * D; e += GroupSize)
        {
            int i = e / D;
            int dim = e - (i * D);
            AttentionDecodeWideKernels.WriteSum(out32, partO, stats, headRow, i, dim, shared[(i * D) + dim], group.Split, group.Splits, D);
        }

        AttentionDecodeWideKernels.FinishChunk(out32, partO, partML, scores, stats, tickets, plan, headRow, group.Live, group.Split, group.Splits, group.Batch, D, tid, lane, warp, 32);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float QValue(ArrayView<float> q, long at, bool live) => live ? q[at] : 0f;

    /// <summary>One warp per head: scores + mask, the chunk's max m and l = Σ e^(s − m); the scores become the weights, the tiles' tail zero.</summary>
    private static void ChunkSoftmax(ArrayView<float> scores, ArrayView<float> stats, ArrayView<float> mask, AttentionShape s, long maskBase, int j0,
        int live, int n, int padded, int lane, int warp)
    {
        for (int i = warp; i < live; i += AttentionDecodeWideKernels.Warps)
        {
            int row = i * ScoreStride;
            float m = GpuMath.NegInf;
            for (int j = lane; j < n; j += 32)
            {
                float x = scores[row + j];
                if (s.HasMask != 0)
                {
                    x += mask[maskBase + (i * s.MaskHead) + j0 + j];
                    scores[row + j] = x;
                }

                m = GpuMath.MaxNaN(m, x);
            }

            m = GpuMath.WarpMax(m);
            float l = 0f;
            for (int j = lane; j < n; j += 32)
            {
                float p = m == GpuMath.NegInf ? 0f : GpuMath.Exp(scores[row + j] - m);
                scores[row + j] = p;
                l += p;
            }

            for (int j = n + lane; j < padded; j += 32)
            {
                scores[row + j] = 0f;
            }

            l = GpuMath.WarpSum(l);
            if (lane == 0)
            {
                stats[2 * i] = m;
                stats[(2 * i) + 1] = l;
            }
        }
    }

    /// <summary>Waits for tile <paramref name="t"/> (and every thread's reads of t − 1), then starts tile t + <see cref="Stages"/> − 1 into t − 1's buffer.</summary>
    private static void NextTile<TOps>(ref TOps ops, ArrayView<float> shared, ArrayView<Float4> k, ArrayView<Float4> v, DecodePlan plan,
        int t, int kTiles, long chunkVector, int n, int tid)
        where TOps : struct, IDecodeTcF32Ops
    {
        ops.WaitStages();
        Group.Barrier();
        CopyTile(ref ops, shared, k, v, plan, t + Stages - 1, kTiles, chunkVector, n, tid);
    }

    /// <summary>
    /// Starts the copy of stream tile <paramref name="t"/> (K tiles, then V tiles; past the end only a commit, so that
    /// wait_group counts stay uniform) into buffer t mod <see cref="Stages"/>: 16-byte vector c of the tile goes to row
    /// c / 32, column c mod 32 of the padded stage; vectors past the chunk are zero-filled.
    /// </summary>
    private static void CopyTile<TOps>(ref TOps ops, ArrayView<float> shared, ArrayView<Float4> k, ArrayView<Float4> v, DecodePlan plan,
        int t, int kTiles, long chunkVector, int n, int tid)
        where TOps : struct, IDecodeTcF32Ops
    {
        const int RowVectors = D / 4;
        if (t < 2 * kTiles)
        {
            bool keys = t < kTiles;
            int tile = keys ? t : t - kTiles;
            long first = chunkVector + ((long)tile * TileKeys * RowVectors);
            int validVectors = (n - (tile * TileKeys)) * RowVectors;
            int slot = (t % Stages) * StageBytes;
            long pointer = keys ? plan.KPointer : plan.VPointer;
            ops.CopyTile(shared, slot + ((tid >> 5) * RowBytes) + ((tid & 31) * 16), keys ? k : v, pointer, first, tid, validVectors);
        }

        ops.Commit();
    }
}

/// <summary>The float32 tensor-core decode's operations as inline PTX (sm_80 and later); Q fragments and O accumulators are PTX registers.</summary>
internal struct PtxDecodeTcF32Ops : IDecodeTcF32Ops
{
    /// <summary>Non-zero: the and + sub split (<see cref="AttentionDecodeTensorCoreF32Kernels.DecodeTcF32Fast"/>), else cvt.rna.</summary>
    public int Fast;

    public readonly void Begin(int thread) => CudaAsm.Emit(AttentionDecodeTensorCoreF32Kernels.DeclareRegisters);

    public readonly void CopyTile(ArrayView<float> shared, int sharedByte, ArrayView<Float4> source, long pointer, long first, int thread, int validVectors) =>
        CudaAsm.Emit(AttentionDecodeTensorCoreF32Kernels.CopyTileAsm, (uint)sharedByte, pointer + ((first + thread) * 16), validVectors - thread, pointer + (first * 16));

    public readonly void Commit() => CudaAsm.Emit("cp.async.commit_group;");

    // Stages - 2 committed tiles may still be in flight (an immediate: Stages is 4).
    public readonly void WaitStages() => CudaAsm.Emit("cp.async.wait_group 2;");

    public readonly void WaitAll() => CudaAsm.Emit("cp.async.wait_group 0;");

    public readonly void LoadQ(int part, float a0, float a1, float a2, float a3, float a4, float a5, float a6, float a7)
    {
        // part is a loop constant after unrolling; each branch names its own registers (asm text must be a literal).
        if (Fast == 0 && part == 0)
        {
            CudaAsm.Emit(AttentionDecodeTensorCoreF32Kernels.LoadQ0, a0, a1, a2, a3, a4, a5, a6, a7);
        }
        else if (Fast == 0 && part == 1)
        {
            CudaAsm.Emit(AttentionDecodeTensorCoreF32Kernels.LoadQ1, a0, a1, a2, a3, a4, a5, a6, a7);
        }
        else if (Fast == 0 && part == 2)
        {
            CudaAsm.Emit(AttentionDecodeTensorCoreF32Kernels.LoadQ2, a0, a1, a2, a3, a4, a5, a6, a7);
        }
        else if (Fast == 0 && part == 3)
        {
            CudaAsm.Emit(AttentionDecodeTensorCoreF32Kernels.LoadQ3, a0, a1, a2, a3, a4, a5, a6, a7);
        }
        else if (Fast != 0 && part == 0)
        {
            CudaAsm.Emit(AttentionDecodeTensorCoreF32Kernels.LoadQ0Fast, a0, a1, a2, a3, a4, a5, a6, a7);
        }
        else if (Fast != 0 && part == 1)
        {
            CudaAsm.Emit(AttentionDecodeTensorCoreF32Kernels.LoadQ1Fast, a0, a1, a2, a3, a4, a5, a6, a7);
        }
        else if (Fast != 0 && part == 2)
        {
            CudaAsm.Emit(AttentionDecodeTensorCoreF32Kernels.LoadQ2Fast, a0, a1, a2, a3, a4, a5, a6, a7);
        }
        else if (Fast != 0 && part == 3)
        {
            CudaAsm.Emit(AttentionDecodeTensorCoreF32Kernels.LoadQ3Fast, a0, a1, a2, a3, a4, a5, a6, a7);
        }
    }

    public readonly void Scores(ArrayView<float> shared, int slot, int warp, int lane, int tile, float scale)
    {
        uint kRow = (uint)(slot + AttentionDecodeTensorCoreF32Kernels.KLaneByte(warp, lane));
        uint at = (uint)AttentionDecodeTensorCoreF32Kernels.ScoreLaneByte(warp, lane, tile);
        uint store = lane < 16 ? 1u : 0u;
        if (Fast != 0)
        {
            CudaAsm.Emit(AttentionDecodeTensorCoreF32Kernels.ScoresFast, kRow, scale, at, store);
        }
        else
        {
            CudaAsm.Emit(AttentionDecodeTensorCoreF32Kernels.Scores, kRow, scale, at, store);
        }
    }

    public readonly void Accumulate(ArrayView<float> shared, int slot, int warp, int lane, float w0, float w1, float w2, float w3, float w4, float w5, float w6, float w7)
    {
        uint vRow = (uint)(slot + AttentionDecodeTensorCoreF32Kernels.VLaneByte(warp, lane));
        if (Fast != 0)
        {
            CudaAsm.Emit(AttentionDecodeTensorCoreF32Kernels.AccumulateFast, vRow, w0, w1, w2, w3, w4, w5, w6, w7);
        }
        else
        {
            CudaAsm.Emit(AttentionDecodeTensorCoreF32Kernels.Accumulate, vRow, w0, w1, w2, w3, w4, w5, w6, w7);
        }
    }

    public readonly void StoreSums(ArrayView<float> shared, int warp, int lane) =>
        CudaAsm.Emit(AttentionDecodeTensorCoreF32Kernels.StoreSums, (uint)AttentionDecodeTensorCoreF32Kernels.SumLaneByte(warp, lane), (lane & 3) < 2 ? 1u : 0u);
}

/// <summary>
/// ldmatrix (one 32-bit element per lane), cvt.rna.tf32.f32 and mma.sync m16n8k8 TF32 emulated from the PTX ISA's
/// fragment tables: a lane's fragment element is read from the shared address the owning lane would use (the same
/// address functions as the PTX path), or from the owning lane's registers kept in <see cref="Scratch"/>; every operand
/// is split into big and small TF32 parts exactly as the PTX does, and each lane sums big·big + big·small + small·big
/// of its own output elements, a k step's product at a time in the PTX's order (scores: big·big and the corrections on
/// two chains; weights × values: one accumulator, big·small, small·big, then big·big).
/// </summary>
internal struct EmulatedDecodeTcF32Ops : IDecodeTcF32Ops
{
    private const int QSlot = 0;
    private const int OSlot = 32;
    private const int PSlot = 48;

    /// <summary><see cref="AttentionDecodeTensorCoreF32Kernels.EmulationFloatsPerThread"/> floats for every thread of every group.</summary>
    public ArrayView<float> Scratch;

    /// <summary>Non-zero: emulate the and + sub split (<see cref="AttentionDecodeTensorCoreF32Kernels.DecodeTcF32Fast"/>).</summary>
    public int Fast;

    private long scratchBase;
    private long warpBase;

    public void Begin(int thread)
    {
        const int Stride = AttentionDecodeTensorCoreF32Kernels.EmulationFloatsPerThread;
        long group = ((((long)Grid.IdxZ * Grid.DimY) + Grid.IdxY) * Grid.DimX) + Grid.IdxX;
        scratchBase = ((group * AttentionDecodeTensorCoreF32Kernels.GroupSize) + thread) * Stride;
        warpBase = scratchBase - ((long)(thread & 31) * Stride);
        for (int i = 0; i < Stride; i++)
        {
            Scratch[scratchBase + i] = 0f;
        }
    }

    public readonly void CopyTile(ArrayView<float> shared, int sharedByte, ArrayView<Float4> source, long pointer, long first, int thread, int validVectors)
    {
        var stage = shared.Cast<Float4>();
        for (int i = 0; i < 8; i++)
        {
            int c = thread + (128 * i);
            stage[(sharedByte + (4 * AttentionDecodeTensorCoreF32Kernels.RowBytes * i)) >> 4] = c < validVectors ? source[first + c] : default;
        }
    }

    public readonly void Commit()
    {
    }

    public readonly void WaitStages()
    {
    }

    public readonly void WaitAll()
    {
    }

    public readonly void LoadQ(int part, float a0, float a1, float a2, float a3, float a4, float a5, float a6, float a7)
    {
        long at = scratchBase + QSlot + (8 * part);
        Scratch[at] = a0;
        Scratch[at + 1] = a1;
        Scratch[at + 2] = a2;
        Scratch[at + 3] = a3;
        Scratch[at + 4] = a4;
        Scratch[at + 5] = a5;
        Scratch[at + 6] = a6;
        Scratch[at + 7] = a7;
        if (part == 3)
        {
            // Every lane's fragments are in place before any lane gathers its neighbours'.
            Warp.Barrier();
        }
    }

    public readonly void Scores(ArrayView<float> shared, int slot, int warp, int lane, int tile, float scale)
    {
        const int Stride = AttentionDecodeTensorCoreF32Kernels.EmulationFloatsPerThread;
        int g = lane >> 2;
        int t = lane & 3;
        float main0 = 0f, main1 = 0f, corr0 = 0f, corr1 = 0f;
        for (int s = 0; s < 16; s++)
        {
            for (int kk = 0; kk < 8; kk++)
            {
                // A (row g, k): a0 (k < 4) or a2 of step s, held by lane 4g + k mod 4.
                long holder = warpBase + ((long)((4 * g) + (kk & 3)) * Stride);
                float a = Scratch[holder + QSlot + (2 * s) + (kk >> 2)];

                // B (k, column n): register 2·(s mod 2) + k / 4 of ldmatrix.x4 number s / 2, i.e. matrix i of it, whose
                // row n's address comes from lane 8i + n; the lane's 32-bit element is word k mod 4 of that row.
                int matrix = (2 * (s & 1)) + (kk >> 2);
                int offset = slot + (64 * (s >> 1)) + (4 * (kk & 3));
                float b0 = shared[(offset + AttentionDecodeTensorCoreF32Kernels.KLaneByte(warp, (8 * matrix) + (2 * t))) >> 2];
                float b1 = shared[(offset + AttentionDecodeTensorCoreF32Kernels.KLaneByte(warp, (8 * matrix) + (2 * t) + 1)) >> 2];
                Products(a, b0, Fast, ref main0, ref corr0);
                Products(a, b1, Fast, ref main1, ref corr1);
            }
        }

        if (g < 4)
        {
            int at = AttentionDecodeTensorCoreF32Kernels.ScoreLaneByte(warp, lane, tile) >> 2;
            shared[at] = (main0 + corr0) * scale;
            shared[at + 1] = (main1 + corr1) * scale;
        }
    }

    public readonly void Accumulate(ArrayView<float> shared, int slot, int warp, int lane, float w0, float w1, float w2, float w3, float w4, float w5, float w6, float w7)
    {
        const int Stride = AttentionDecodeTensorCoreF32Kernels.EmulationFloatsPerThread;
        const int RowBytes = AttentionDecodeTensorCoreF32Kernels.RowBytes;
        long mine = scratchBase + PSlot;
        Scratch[mine] = w0;
        Scratch[mine + 1] = w1;
        Scratch[mine + 2] = w2;
        Scratch[mine + 3] = w3;
        Scratch[mine + 4] = w4;
        Scratch[mine + 5] = w5;
        Scratch[mine + 6] = w6;
        Scratch[mine + 7] = w7;
        Warp.Barrier();
        int g = lane >> 2;
        int t = lane & 3;
        for (int mt = 0; mt < 2; mt++)
        {
            for (int r = 0; r < 4; r++)
            {
                int m = g + ((r >> 1) * 8);
                int col = (2 * t) + (r & 1);
                float o = Scratch[scratchBase + OSlot + (4 * mt) + r];
                for (int ks = 0; ks < 4; ks++)
                {
                    float bigBig = 0f, bigSmall = 0f, smallBig = 0f;
                    for (int kk = 0; kk < 8; kk++)
                    {
                        // A (m, k) of Vᵀ: register m / 8 + 2·(k / 4) of lane 4·(m mod 8) + k mod 4, loaded from that lane's
                        // V address + the register's offset (dim + 8: 32 bytes; key + 1: a row).
                        int register = (m >> 3) + (2 * (kk >> 2));
                        int holderLane = (4 * (m & 7)) + (kk & 3);
                        int rowByte = slot + AttentionDecodeTensorCoreF32Kernels.VLaneByte(warp, holderLane) + (ks * 8 * RowBytes) + (mt * 64)
                            + ((register & 1) * 32) + ((register >> 1) * RowBytes);
                        float a = shared[rowByte >> 2];

                        // B (k, column n): register b0 (k < 4) or b1 of step ks, held by lane 4n + k mod 4.
                        float b = Scratch[warpBase + ((long)((4 * col) + (kk & 3)) * Stride) + PSlot + (2 * ks) + (kk >> 2)];
                        AttentionDecodeTensorCoreF32Kernels.Split(a, Fast, out float aBig, out float aSmall);
                        AttentionDecodeTensorCoreF32Kernels.Split(b, Fast, out float bBig, out float bSmall);
                        bigBig += aBig * bBig;
                        bigSmall += aBig * bSmall;
                        smallBig += aSmall * bBig;
                    }

                    o = ((o + bigSmall) + smallBig) + bigBig;
                }

                Scratch[scratchBase + OSlot + (4 * mt) + r] = o;
            }
        }

        // The next tile's weights overwrite the published ones only after every lane has read them.
        Warp.Barrier();
    }

    public readonly void StoreSums(ArrayView<float> shared, int warp, int lane)
    {
        if ((lane & 3) >= 2)
        {
            return;
        }

        int at = AttentionDecodeTensorCoreF32Kernels.SumLaneByte(warp, lane) >> 2;
        for (int mt = 0; mt < 2; mt++)
        {
            for (int r = 0; r < 4; r++)
            {
                shared[at + (mt * 16) + ((r >> 1) * 8) + ((r & 1) * AttentionDecodeTensorCoreF32Kernels.D)] = Scratch[scratchBase + OSlot + (4 * mt) + r];
            }
        }
    }

    /// <summary>big(a)·big(b) into <paramref name="main"/>, big(a)·small(b) + small(a)·big(b) into <paramref name="corr"/> (TF32 products are exact in float32).</summary>
    private static void Products(float a, float b, int fast, ref float main, ref float corr)
    {
        AttentionDecodeTensorCoreF32Kernels.Split(a, fast, out float aBig, out float aSmall);
        AttentionDecodeTensorCoreF32Kernels.Split(b, fast, out float bBig, out float bSmall);
        main += aBig * bBig;
        corr += (aBig * bSmall) + (aSmall * bBig);
    }
}
