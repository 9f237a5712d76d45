using System.Runtime.CompilerServices;
using ILGPU;
using ILGPU.Runtime;
using ILGPU.Runtime.Cuda;

namespace GemsInjector.Kernels.Ilgpu;

/// <summary>
/// The warp-level operations of the tensor-core decode, so one body runs on the GPU through inline PTX
/// (<see cref="PtxDecodeTcOps"/>) and on ILGPU's CPU accelerator through a lane-exact emulation of ldmatrix and
/// mma.sync (<see cref="EmulatedDecodeTcOps"/>). Addresses are byte offsets into the kernel's dynamic shared memory.
/// </summary>
internal interface IDecodeTcOps
{
    /// <summary>First statement of the kernel: registers (PTX) or this thread's scratch (emulation).</summary>
    void Begin(int thread);

    /// <summary>Copies the 16-byte vector <paramref name="vector"/> of <paramref name="source"/> to shared byte <paramref name="sharedByte"/> (zeros when not valid).</summary>
    void Copy(ArrayView<float> shared, int sharedByte, ArrayView<Half8> source, long pointer, long vector, bool valid);

    /// <summary>Closes this thread's copies of one tile (cp.async.commit_group).</summary>
    void Commit();

    /// <summary>Waits until at most <see cref="AttentionDecodeTensorCoreKernels.Stages"/> - 2 committed tiles are in flight.</summary>
    void WaitStages();

    /// <summary>Waits until at most <see cref="AttentionDecodeTensorCoreKernels.Stages"/> - 1 committed tiles are in flight (the lean body's first tile).</summary>
    void WaitFirstStage();

    /// <summary>Waits until at most 6 committed tiles are in flight (the 8-warp kernel: three pairs of its <see cref="AttentionDecodeTensorCoreKernels.WideStages"/> buffers).</summary>
    void WaitWidePairs();

    /// <summary>Waits for every copy.</summary>
    void WaitAll();

    /// <summary>This lane's 16 Q fragment registers (k step s: registers 2s = a0, 2s + 1 = a2; rows g + 8 are zero).</summary>
    void LoadQ(uint q0, uint q1, uint q2, uint q3, uint q4, uint q5, uint q6, uint q7,
        uint q8, uint q9, uint q10, uint q11, uint q12, uint q13, uint q14, uint q15);

    /// <summary>The warp's scores of keys 8·warp .. 8·warp + 7 of the tile in stage byte <paramref name="slot"/>, times the scale, to the score row of head g (lanes g &lt; 4).</summary>
    void Scores(ArrayView<float> shared, int slot, int warp, int lane, int tile, float scale, int bf16);

    /// <summary>O^T += V^T · P^T for the warp's dims 32·warp .. +31 over the tile in <paramref name="slot"/>; the weights' high and low 16-bit parts as B fragments.</summary>
    void Accumulate(ArrayView<float> shared, int slot, int warp, int lane, uint hi0, uint hi1, uint hi2, uint hi3, uint lo0, uint lo1, uint lo2, uint lo3, int bf16);

    /// <summary>Writes the O accumulators to the sums area (floats [head][dim], rows of <see cref="AttentionDecodeTensorCoreKernels.D"/>).</summary>
    void StoreSums(ArrayView<float> shared, int warp, int lane);

    /// <summary><see cref="StoreSums"/> into the sums area that starts at shared byte <paramref name="baseByte"/> (the 8-warp body's second half).</summary>
    void StoreSumsAt(ArrayView<float> shared, int warp, int lane, int baseByte);
}

/// <summary>
/// Tensor-core flash-decoding (lq = 1, head size 128, float16 / bfloat16): the work split, K/V staging (cp.async,
/// <see cref="Stages"/> buffers of 32 keys), chunk softmax and merge of <see cref="AttentionDecodeWideKernels"/>'s
/// streaming kernel, but both products on mma.sync m16n8k16 (float32 accumulation) so that the per-key arithmetic no
/// longer competes with the copies:
/// <para>
/// S = Q·Kᵀ: A = the group's (up to 4) query heads as rows (rows 4-15 zero), B = K with keys as n and head dims as k,
/// read by ldmatrix (non-transposed: a K row is dim-contiguous). Warp w takes keys 8w..8w+7 of each tile, 8 mma per tile.
/// O = P·V is computed transposed, Oᵀ = Vᵀ·Pᵀ: A = Vᵀ (dims as m, keys as k) by ldmatrix.trans from the staged V rows,
/// B = Pᵀ (keys as k, heads as n: half of n real instead of a quarter of m). Warp w owns dims 32w..32w+31 (two m-tiles),
/// so no fold between warps. The weights go as a 16-bit high part and a 16-bit low part (two mma), as in the prefill
/// kernel: rounding them once failed the float64 check there.
/// </para>
/// Staged rows are 272 bytes (256 + 16 padding) so that the 8 row addresses of an ldmatrix hit distinct banks.
/// </summary>
internal static partial class AttentionDecodeTensorCoreKernels
{
    /// <summary>Head size of this kernel.</summary>
    public const int D = 128;

    /// <summary>Keys per staged tile.</summary>
    public const int TileKeys = 32;

    /// <summary>Staged row pitch in bytes (256 bytes of a row + 16 of padding).</summary>
    public const int RowBytes = 272;

    /// <summary>Bytes of one stage (a tile of K or V rows).</summary>
    public const int StageBytes = TileKeys * RowBytes;

    /// <summary>Staging buffers: one being read, the others' copies in flight.</summary>
    public const int Stages = 4;

    /// <summary>Threads per group (4 warps).</summary>
    public const int GroupSize = AttentionDecodeWideKernels.Warps * 32;

    /// <summary>
    /// Floats per head of the score rows: <see cref="AttentionDecodeWideKernels.MaxChunk"/> + 8, so that the 4 heads' rows
    /// start 8 banks apart (lanes of different heads read the same key columns).
    /// </summary>
    public const int ScoreStride = AttentionDecodeWideKernels.MaxChunk + 8;

    /// <summary>Byte offset of the chunk's score rows (one per head, <see cref="ScoreStride"/> floats).</summary>
    public const int ScoresByte = Stages * StageBytes;

    /// <summary>Byte offset of the heads' statistics (m, l) and the merge's flags.</summary>
    public const int StatsByte = ScoresByte + (AttentionDecodeWideKernels.HeadsPerGroup * ScoreStride * 4);

    /// <summary>Dynamic shared floats: stages, scores, statistics (43 KB).</summary>
    public const int SharedFloats = (StatsByte / 4) + (4 * AttentionDecodeWideKernels.HeadsPerGroup);

    /// <summary>Byte step between the ldmatrix.x4 of the score block (32 head dims).</summary>
    public const int KStepBytes = 64;

    /// <summary>Byte step between the two 16-dim m-tiles of a warp's V fragments.</summary>
    public const int VMTileBytes = 32;

    /// <summary>Byte step between the two 16-key k steps of a V tile.</summary>
    public const int VKStepBytes = 16 * RowBytes;

    /// <summary>Scratch floats per thread of the emulation: Q fragments, O accumulators, published weight fragments.</summary>
    public const int EmulationFloatsPerThread = 32;

    /// <summary>The kernel through inline PTX (CUDA, sm_80 and later).</summary>
    [IlgpuKernel]
    [IlgpuKernelVariant(typeof(Float16Storage))]
    [IlgpuKernelVariant(typeof(BFloat16Storage))]
    public static void DecodeTc16<TFormat>(ArrayView<Half8> q, ArrayView<Half8> k, ArrayView<Half8> v, ArrayView<float> mask,
        ArrayView<float> partO, ArrayView<float> partML, ArrayView<ushort> output, ArrayView<int> tickets, AttentionShape s, DecodePlan plan)
        where TFormat : struct, IKernelConstant
    {
        var ops = default(PtxDecodeTcOps);
        var merge = default(NoDecodeClusterMerge);
        Body<PtxDecodeTcOps, TFormat, Off, NoDecodeClusterMerge>(ref ops, ref merge, q, k, v, mask, partO, partML, output, tickets, s, plan);
    }

    /// <summary>
    /// <see cref="DecodeTc16"/> with the lean staging (the default <c>lean</c> decode variant): all <see cref="Stages"/> tiles
    /// in flight before the first is read (a chunk of 64 keys, batch 1's plan, is then one DRAM round trip instead of
    /// two) and each thread's four copies of a tile on one hoisted address (ncu, batch 1: 23% of the warp samples were in
    /// the copies' address arithmetic — a signed division per copy — before the first load left the SM).
    /// </summary>
    [IlgpuKernel]
    [IlgpuKernelVariant(typeof(Float16Storage))]
    [IlgpuKernelVariant(typeof(BFloat16Storage))]
    public static void DecodeTc16Lean<TFormat>(ArrayView<Half8> q, ArrayView<Half8> k, ArrayView<Half8> v, ArrayView<float> mask,
        ArrayView<float> partO, ArrayView<float> partML, ArrayView<ushort> output, ArrayView<int> tickets, AttentionShape s, DecodePlan plan)
        where TFormat : struct, IKernelConstant
    {
        var ops = default(PtxDecodeTcOps);
        var merge = default(NoDecodeClusterMerge);
        Body<PtxDecodeTcOps, TFormat, On, NoDecodeClusterMerge>(ref ops, ref merge, q, k, v, mask, partO, partML, output, tickets, s, plan);
    }

    /// <summary>
    /// <see cref="DecodeTc16Lean"/>'s body with the chunks of a head block merged in a thread-block cluster
    /// (<see cref="DecodeClusterMerge"/>, sm_90, <c>GEMS_DECODE_VARIANT=cluster</c>): Grid.X = exactly
    /// <see cref="DecodeClusterMerge.Size"/> chunks, one cluster; no partials, fence or ticket.
    /// </summary>
    [IlgpuKernel]
    [IlgpuKernelVariant(typeof(Float16Storage))]
    [IlgpuKernelVariant(typeof(BFloat16Storage))]
    public static void DecodeTc16Cluster<TFormat>(ArrayView<Half8> q, ArrayView<Half8> k, ArrayView<Half8> v, ArrayView<float> mask,
        ArrayView<ushort> output, AttentionShape s, DecodePlan plan)
        where TFormat : struct, IKernelConstant
    {
        var merge = PtxDecodeClusterMerge.Begin();
        var ops = default(PtxDecodeTcOps);
        Body<PtxDecodeTcOps, TFormat, On, PtxDecodeClusterMerge>(ref ops, ref merge, q, k, v, mask, default, default, output, default, s, plan);
    }

    /// <summary>Threads of a <see cref="DecodeTc16Lean8w"/> group (8 warps).</summary>
    public const int WideGroupSize = 2 * GroupSize;

    /// <summary>
    /// Staging buffers of the 8-warp kernel: a chunk of 128 keys (batch 1's plan at 2 groups per SM) has all its 4 K and
    /// 4 V tiles in flight from the prologue on, one DRAM round trip as in the 4-warp kernel's 64-key chunk; with
    /// <see cref="Stages"/> the V tiles would leave only after the first K pair was read.
    /// </summary>
    public const int WideStages = 8;

    /// <summary>Byte offset of buffers <see cref="Stages"/> .. <see cref="WideStages"/> − 1, past the statistics (the other offsets stay those of the 4-warp layout).</summary>
    public const int WideStagesByte = ((SharedFloats * 4) + 15) & ~15;

    /// <summary>Dynamic shared floats of the 8-warp kernel (78 KB: over the default 48 KB, so its PTX asks for the opt-in limit).</summary>
    public const int WideSharedFloats = (WideStagesByte + ((WideStages - Stages) * StageBytes)) / 4;

    /// <summary>Bytes of one half's sums area (4 heads × <see cref="D"/> floats); the second half's follows the first's.</summary>
    public const int SumsBytes = AttentionDecodeWideKernels.HeadsPerGroup * D * 4;

    /// <summary>
    /// <see cref="DecodeTc16Lean"/> with 8 warps per group (<c>GEMS_DECODE_VARIANT=lean8w</c>): the two halves of 4 warps
    /// take the two tiles of a pair side by side, so a group's walk over its chunk is half as many steps per key (Run 93:
    /// at batch 1 a group is limited by its own tile-after-tile walk, not by bytes in flight). The 4-warp layout plus
    /// buffers 4 .. <see cref="WideStages"/> − 1 past the statistics: one pair being read, three in flight.
    /// </summary>
    [IlgpuKernel]
    [IlgpuKernelVariant(typeof(Float16Storage))]
    [IlgpuKernelVariant(typeof(BFloat16Storage))]
    public static void DecodeTc16Lean8w<TFormat>(ArrayView<Half8> q, ArrayView<Half8> k, ArrayView<Half8> v, ArrayView<float> mask,
        ArrayView<float> partO, ArrayView<float> partML, ArrayView<ushort> output, ArrayView<int> tickets, AttentionShape s, DecodePlan plan)
        where TFormat : struct, IKernelConstant
    {
        CudaAsm.Emit(Sm90aPtx.OptInSharedMarker);
        var ops = default(PtxDecodeTcOps);
        WideBody<PtxDecodeTcOps, TFormat>(ref ops, q, k, v, mask, partO, partML, output, tickets, s, plan);
    }

    /// <summary><see cref="DecodeTc16Lean8w"/> with ldmatrix and mma.sync emulated (<see cref="DecodeTc16Emulated"/>); groups of <see cref="WideGroupSize"/>.</summary>
    public static void DecodeTc16Lean8wEmulated<TFormat>(ArrayView<Half8> q, ArrayView<Half8> k, ArrayView<Half8> v, ArrayView<float> mask,
        ArrayView<float> partO, ArrayView<float> partML, ArrayView<ushort> output, ArrayView<int> tickets, AttentionShape s, DecodePlan plan,
        ArrayView<float> scratch)
        where TFormat : struct, IKernelConstant
    {
        var ops = new EmulatedDecodeTcOps { Scratch = scratch };
        WideBody<EmulatedDecodeTcOps, TFormat>(ref ops, q, k, v, mask, partO, partML, output, tickets, s, plan);
    }

    /// <summary>
    /// <see cref="Body"/>'s lean path for 8 warps: warp w does what warp w mod 4 does in the 4-warp body, on tile
    /// 2p + w / 4 of pair p. The K tiles are counted up to an even number (an odd chunk's last pair has an empty second
    /// tile) so that no pair holds both a K and a V tile: the softmax sits between the passes, at a pair edge. Each half
    /// accumulates its own tiles' O; the halves' sums are added once at the end.
    /// </summary>
    internal static void WideBody<TOps, TFormat>(ref TOps ops, ArrayView<Half8> q, ArrayView<Half8> k, ArrayView<Half8> v, ArrayView<float> mask,
        ArrayView<float> partO, ArrayView<float> partML, ArrayView<ushort> output, ArrayView<int> tickets, AttentionShape s, DecodePlan plan)
        where TOps : struct, IDecodeTcOps
        where TFormat : struct, IKernelConstant
    {
        const int HeadsPerGroup = AttentionDecodeWideKernels.HeadsPerGroup;
        int bf16 = default(TFormat).Value;
        var shared = SharedMemory.GetDynamic<float>();
        var scores = shared.SubView(ScoresByte / 4, HeadsPerGroup * ScoreStride);
        var stats = shared.SubView(StatsByte / 4, 4 * HeadsPerGroup);
        int tid = Group.IdxX;
        ops.Begin(tid);
        var group = DecodeGroup.Of(s, plan);
        int lane = tid & 31;
        int warp = tid >> 5;
        int quarter = warp & 3;
        int half = warp >> 2;
        int g = lane >> 2;
        int t = lane & 3;
        int j0 = group.Key0;
        int n = group.Keys > 0 ? group.Keys : 0;
        int kTiles = (n + TileKeys - 1) / TileKeys;
        int kSlots = (kTiles + 1) & ~1;
        long kBase = (((long)group.Batch * s.KvHeads) + group.KvHead) * s.Lk * D;
        long chunkVector = (kBase + ((long)j0 * D)) / 8;
        long headRow = ((long)group.Batch * s.Heads) + group.Head0;
        long maskBase = (group.Batch * s.MaskBatch) + (group.Head0 * s.MaskHead);

        // Every buffer in flight before q is read (written out, as in the 4-warp prologue).
        WideCopyTile(ref ops, shared, k, v, plan, 0, kTiles, kSlots, chunkVector, n, tid);
        WideCopyTile(ref ops, shared, k, v, plan, 1, kTiles, kSlots, chunkVector, n, tid);
        WideCopyTile(ref ops, shared, k, v, plan, 2, kTiles, kSlots, chunkVector, n, tid);
        WideCopyTile(ref ops, shared, k, v, plan, 3, kTiles, kSlots, chunkVector, n, tid);
        WideCopyTile(ref ops, shared, k, v, plan, 4, kTiles, kSlots, chunkVector, n, tid);
        WideCopyTile(ref ops, shared, k, v, plan, 5, kTiles, kSlots, chunkVector, n, tid);
        WideCopyTile(ref ops, shared, k, v, plan, 6, kTiles, kSlots, chunkVector, n, tid);
        WideCopyTile(ref ops, shared, k, v, plan, 7, kTiles, kSlots, chunkVector, n, tid);

        var q32 = q.Cast<uint>();
        long qWord = (((headRow + g) * D) + (2 * t)) / 2;
        bool qLive = g < group.Live;
        ops.LoadQ(
            QWord(q32, qWord, 0, qLive), QWord(q32, qWord, 4, qLive), QWord(q32, qWord, 8, qLive), QWord(q32, qWord, 12, qLive),
            QWord(q32, qWord, 16, qLive), QWord(q32, qWord, 20, qLive), QWord(q32, qWord, 24, qLive), QWord(q32, qWord, 28, qLive),
            QWord(q32, qWord, 32, qLive), QWord(q32, qWord, 36, qLive), QWord(q32, qWord, 40, qLive), QWord(q32, qWord, 44, qLive),
            QWord(q32, qWord, 48, qLive), QWord(q32, qWord, 52, qLive), QWord(q32, qWord, 56, qLive), QWord(q32, qWord, 60, qLive));

        for (int p = 0; p < kSlots; p += 2)
        {
            NextPair(ref ops, shared, k, v, plan, p, kTiles, kSlots, chunkVector, n, tid);
            int tile = p + half;
            if (tile < kTiles)
            {
                ops.Scores(shared, WideStageByte(tile), quarter, lane, tile, s.Scale, bf16);
            }
        }

        for (int p = kSlots; p < 2 * kSlots; p += 2)
        {
            NextPair(ref ops, shared, k, v, plan, p, kTiles, kSlots, chunkVector, n, tid);
            if (p == kSlots)
            {
                ChunkSoftmax(scores, stats, mask, s, maskBase, j0, group.Live, n, kTiles * TileKeys, lane, warp, bf16);
                Group.Barrier();
            }

            int tile = p + half - kSlots;
            if (tile < kTiles)
            {
                int at = ((g < group.Live ? g : 0) * ScoreStride) + (tile * TileKeys) + (2 * t);
                uint keep = g < group.Live ? 0xffffffffu : 0u;
                uint w0 = Interop.FloatAsInt(scores[at]) & keep;
                uint w1 = Interop.FloatAsInt(scores[at + 1]) & keep;
                uint w8 = Interop.FloatAsInt(scores[at + 8]) & keep;
                uint w9 = Interop.FloatAsInt(scores[at + 9]) & keep;
                uint w16 = Interop.FloatAsInt(scores[at + 16]) & keep;
                uint w17 = Interop.FloatAsInt(scores[at + 17]) & keep;
                uint w24 = Interop.FloatAsInt(scores[at + 24]) & keep;
                uint w25 = Interop.FloatAsInt(scores[at + 25]) & keep;
                uint hi0 = High(w0, w1), hi1 = High(w8, w9), hi2 = High(w16, w17), hi3 = High(w24, w25);
                uint lo0 = Low(w0, w1), lo1 = Low(w8, w9), lo2 = Low(w16, w17), lo3 = Low(w24, w25);
                ops.Accumulate(shared, WideStageByte(p + half), quarter, lane, hi0, hi1, hi2, hi3, lo0, lo1, lo2, lo3, bf16);
            }
        }

        if (kTiles == 0)
        {
            ChunkSoftmax(scores, stats, mask, s, maskBase, j0, group.Live, 0, 0, lane, warp, bf16);
        }

        ops.WaitAll();
        Group.Barrier();
        ops.StoreSumsAt(shared, quarter, lane, half * SumsBytes);
        Group.Barrier();
        var out16 = new DecodeOutput16 { Output = output, BFloat16 = bf16 };
        for (int e = tid; e < group.Live * D; e += WideGroupSize)
        {
            int i = e / D;
            int dim = e - (i * D);
            float o = shared[(i * D) + dim] + shared[(SumsBytes / 4) + (i * D) + dim];
            AttentionDecodeWideKernels.WriteSum(out16, partO, stats, headRow, i, dim, o, group.Split, group.Splits, D);
        }

        AttentionDecodeWideKernels.FinishChunk(out16, partO, partML, scores, stats, tickets, plan, headRow, group.Live, group.Split, group.Splits, group.Batch, D, tid, lane, warp, 32, default(NoDecodeTrace));
    }

    /// <summary>Stage byte of stream tile <paramref name="t"/>'s buffer (t mod <see cref="WideStages"/>).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static int WideStageByte(int t)
    {
        int buffer = t & (WideStages - 1);
        return buffer < Stages ? buffer * StageBytes : WideStagesByte + ((buffer - Stages) * StageBytes);
    }

    /// <summary>
    /// Waits for stream tiles <paramref name="p"/> and p + 1; from the second pair on, first refills the buffers of pair
    /// p − 2 (read by every warp before the leading barrier) with tiles p + 6 and p + 7, so that three pairs stay in
    /// flight while one is read.
    /// </summary>
    /// <remarks>
    /// Committed tile groups before the wait: 8 (prologue) + p − 2 + 2 = p + 8 for p ≥ 2, and 8 at p = 0; tiles 0 .. p + 1
    /// are needed, so 6 may stay in flight either way (<see cref="IDecodeTcOps.WaitWidePairs"/>).
    /// </remarks>
    private static void NextPair<TOps>(ref TOps ops, ArrayView<float> shared, ArrayView<Half8> k, ArrayView<Half8> v, DecodePlan plan,
        int p, int kTiles, int kSlots, long chunkVector, int n, int tid)
        where TOps : struct, IDecodeTcOps
    {
        if (p != 0)
        {
            Group.Barrier();
            WideCopyTile(ref ops, shared, k, v, plan, p + 6, kTiles, kSlots, chunkVector, n, tid);
            WideCopyTile(ref ops, shared, k, v, plan, p + 7, kTiles, kSlots, chunkVector, n, tid);
        }

        ops.WaitWidePairs();
        Group.Barrier();
    }

    /// <summary>
    /// Starts the copy of stream tile <paramref name="t"/> (K tiles 0 .. <paramref name="kSlots"/> − 1, then V tiles;
    /// the padding K tile and tiles past the end copy nothing but still commit, so the wait counts stay uniform) into
    /// <see cref="WideStageByte"/>: 256 threads, 2 copies each, rows tid / 16 and tid / 16 + 16.
    /// </summary>
    private static void WideCopyTile<TOps>(ref TOps ops, ArrayView<float> shared, ArrayView<Half8> k, ArrayView<Half8> v, DecodePlan plan,
        int t, int kTiles, int kSlots, long chunkVector, int n, int tid)
        where TOps : struct, IDecodeTcOps
    {
        const int RowVectors = D / 8;
        const int RowsPerStep = WideGroupSize / RowVectors;
        bool keys = t < kSlots;
        int tile = keys ? t : t - kSlots;
        if (tile < kTiles)
        {
            long first = chunkVector + ((long)tile * TileKeys * RowVectors);
            int room = ((n - (tile * TileKeys)) * RowVectors) - tid;
            int at = WideStageByte(t) + ((tid >> 4) * RowBytes) + ((tid & 15) * 16);
            long mine = first + tid;
            long pointer = keys ? plan.KPointer : plan.VPointer;
            var source = keys ? k : v;
            ops.Copy(shared, at, source, pointer, room > 0 ? mine : first, room > 0);
            ops.Copy(shared, at + (RowsPerStep * RowBytes), source, pointer, room > WideGroupSize ? mine + WideGroupSize : first, room > WideGroupSize);
        }

        ops.Commit();
    }

    /// <summary>A kernel constant 0 (<see cref="Body"/>'s default staging).</summary>
    internal readonly struct Off : IKernelConstant
    {
        public int Value => 0;
    }

    /// <summary>A kernel constant 1 (<see cref="Body"/>'s lean staging).</summary>
    internal readonly struct On : IKernelConstant
    {
        public int Value => 1;
    }

    /// <summary>
    /// The same body with ldmatrix and mma.sync emulated lane by lane (<see cref="EmulationFloatsPerThread"/> scratch
    /// floats per thread of every group): for ILGPU's CPU accelerator with 32-thread warps (tests). Not an [IlgpuKernel]:
    /// nothing ships or precompiles it for CUDA.
    /// </summary>
    public static void DecodeTc16Emulated<TFormat>(ArrayView<Half8> q, ArrayView<Half8> k, ArrayView<Half8> v, ArrayView<float> mask,
        ArrayView<float> partO, ArrayView<float> partML, ArrayView<ushort> output, ArrayView<int> tickets, AttentionShape s, DecodePlan plan,
        ArrayView<float> scratch)
        where TFormat : struct, IKernelConstant
    {
        var ops = new EmulatedDecodeTcOps { Scratch = scratch };
        var merge = default(NoDecodeClusterMerge);
        Body<EmulatedDecodeTcOps, TFormat, Off, NoDecodeClusterMerge>(ref ops, ref merge, q, k, v, mask, partO, partML, output, tickets, s, plan);
    }

    /// <summary><see cref="DecodeTc16Emulated"/> with the lean staging of <see cref="DecodeTc16Lean"/>.</summary>
    public static void DecodeTc16LeanEmulated<TFormat>(ArrayView<Half8> q, ArrayView<Half8> k, ArrayView<Half8> v, ArrayView<float> mask,
        ArrayView<float> partO, ArrayView<float> partML, ArrayView<ushort> output, ArrayView<int> tickets, AttentionShape s, DecodePlan plan,
        ArrayView<float> scratch)
        where TFormat : struct, IKernelConstant
    {
        var ops = new EmulatedDecodeTcOps { Scratch = scratch };
        var merge = default(NoDecodeClusterMerge);
        Body<EmulatedDecodeTcOps, TFormat, On, NoDecodeClusterMerge>(ref ops, ref merge, q, k, v, mask, partO, partML, output, tickets, s, plan);
    }

    /// <summary>
    /// <see cref="DecodeTc16Cluster"/> on ILGPU's CPU accelerator (32-lane warps): the lean body with its warp operations
    /// emulated (<see cref="DecodeTc16Emulated"/>) and the cluster merge through <paramref name="partO"/>,
    /// <paramref name="partML"/> and one ticket per head block (<see cref="EmulatedDecodeClusterMerge"/>). Grid.X =
    /// <see cref="DecodeClusterMerge.Size"/> chunks. Not an [IlgpuKernel], as its neighbours.
    /// </summary>
    public static void DecodeTc16ClusterEmulated<TFormat>(ArrayView<Half8> q, ArrayView<Half8> k, ArrayView<Half8> v, ArrayView<float> mask,
        ArrayView<float> partO, ArrayView<float> partML, ArrayView<ushort> output, ArrayView<int> tickets, AttentionShape s, DecodePlan plan,
        ArrayView<float> scratch)
        where TFormat : struct, IKernelConstant
    {
        var ops = new EmulatedDecodeTcOps { Scratch = scratch };
        var merge = new EmulatedDecodeClusterMerge { PartO = partO, PartML = partML, Tickets = tickets };
        Body<EmulatedDecodeTcOps, TFormat, On, EmulatedDecodeClusterMerge>(ref ops, ref merge, q, k, v, mask, default, default, output, default, s, plan);
    }

    /// <summary>This lane's ldmatrix row address (stage-relative) for K: key 8·warp + (lane mod 8), dims 8·(lane / 8).</summary>
    public static int KLaneByte(int warp, int lane) => (((8 * warp) + (lane & 7)) * RowBytes) + ((lane >> 3) * 16);

    /// <summary>
    /// This lane's ldmatrix.trans row address (stage-relative) for V: matrix i = lane / 8 covers keys 8·(i / 2) .. +7 and
    /// dims 32·warp + 8·(i mod 2) .. +7 (A-fragment order a0..a3 of Vᵀ).
    /// </summary>
    public static int VLaneByte(int warp, int lane) => ((((lane >> 4) * 8) + (lane & 7)) * RowBytes) + (((32 * warp) + (((lane >> 3) & 1) * 8)) * 2);

    /// <summary>Where lane (g, t) stores its two scores of a tile: head g, keys tile·32 + 8·warp + 2t, +1.</summary>
    public static int ScoreLaneByte(int warp, int lane, int tile) =>
        ScoresByte + (4 * (((lane >> 2) * ScoreStride) + (tile * TileKeys) + (8 * warp) + (2 * (lane & 3))));

    /// <summary>Where lane (g, t) stores its first accumulator: head 2t, dim 32·warp + g of the sums area (byte 0).</summary>
    public static int SumLaneByte(int warp, int lane) => 4 * ((2 * (lane & 3) * D) + (32 * warp) + (lane >> 2));

    /// <summary>
    /// One group's chunk: staging, scores, softmax, weights × values, then its tail: the partials and the ticket merge
    /// (<see cref="AttentionDecodeWideKernels.FinishChunk"/>), or with <typeparamref name="TMerge"/> enabled the cluster
    /// merge (<see cref="DecodeClusterMerge.Finish"/>) from the sums and statistics left in shared memory.
    /// </summary>
    internal static void Body<TOps, TFormat, TLean, TMerge>(ref TOps ops, ref TMerge merge, ArrayView<Half8> q, ArrayView<Half8> k, ArrayView<Half8> v, ArrayView<float> mask,
        ArrayView<float> partO, ArrayView<float> partML, ArrayView<ushort> output, ArrayView<int> tickets, AttentionShape s, DecodePlan plan)
        where TOps : struct, IDecodeTcOps
        where TFormat : struct, IKernelConstant
        where TLean : struct, IKernelConstant
        where TMerge : struct, IDecodeClusterMerge
    {
        const int HeadsPerGroup = AttentionDecodeWideKernels.HeadsPerGroup;
        bool lean = default(TLean).Value != 0;
        int bf16 = default(TFormat).Value;
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
        long chunkVector = (kBase + ((long)j0 * D)) / 8;
        long headRow = ((long)group.Batch * s.Heads) + group.Head0;
        long maskBase = (group.Batch * s.MaskBatch) + (group.Head0 * s.MaskHead);

        // The first Stages - 1 tiles (lean: Stages, every buffer) in flight before q is read.
        if (lean)
        {
            // Written out: as a loop, ptxas re-derived the group's indices (divisions) in every iteration.
            CopyTile(ref ops, shared, k, v, plan, 0, kTiles, chunkVector, n, tid, lean);
            CopyTile(ref ops, shared, k, v, plan, 1, kTiles, chunkVector, n, tid, lean);
            CopyTile(ref ops, shared, k, v, plan, 2, kTiles, chunkVector, n, tid, lean);
            CopyTile(ref ops, shared, k, v, plan, 3, kTiles, chunkVector, n, tid, lean);
        }
        else
        {
            for (int c = 0; c < Stages - 1; c++)
            {
                CopyTile(ref ops, shared, k, v, plan, c, kTiles, chunkVector, n, tid, lean);
            }
        }

        // Q fragments: lane (g, t) holds head g's dims 16s + 2t, +1 (a0) and 16s + 8 + 2t, +1 (a2) of k step s.
        var q32 = q.Cast<uint>();
        long qWord = (((headRow + g) * D) + (2 * t)) / 2;
        bool qLive = g < group.Live;
        ops.LoadQ(
            QWord(q32, qWord, 0, qLive), QWord(q32, qWord, 4, qLive), QWord(q32, qWord, 8, qLive), QWord(q32, qWord, 12, qLive),
            QWord(q32, qWord, 16, qLive), QWord(q32, qWord, 20, qLive), QWord(q32, qWord, 24, qLive), QWord(q32, qWord, 28, qLive),
            QWord(q32, qWord, 32, qLive), QWord(q32, qWord, 36, qLive), QWord(q32, qWord, 40, qLive), QWord(q32, qWord, 44, qLive),
            QWord(q32, qWord, 48, qLive), QWord(q32, qWord, 52, qLive), QWord(q32, qWord, 56, qLive), QWord(q32, qWord, 60, qLive));

        // Pass 1: scores of the K tiles.
        for (int tt = 0; tt < kTiles; tt++)
        {
            NextTile(ref ops, shared, k, v, plan, tt, kTiles, chunkVector, n, tid, lean);
            ops.Scores(shared, (tt % Stages) * StageBytes, warp, lane, tt, s.Scale, bf16);
        }

        // Pass 2: weights times the V tiles (their copies were issued during pass 1).
        for (int tt = kTiles; tt < 2 * kTiles; tt++)
        {
            NextTile(ref ops, shared, k, v, plan, tt, kTiles, chunkVector, n, tid, lean);
            if (tt == kTiles)
            {
                ChunkSoftmax(scores, stats, mask, s, maskBase, j0, group.Live, n, kTiles * TileKeys, lane, warp, bf16);
                Group.Barrier();
            }

            // The softmax left each weight as one word (16-bit high part | low part << 16); lanes of heads past the
            // group's read head 0's and use zeros.
            int tile = tt - kTiles;
            int at = ((g < group.Live ? g : 0) * ScoreStride) + (tile * TileKeys) + (2 * t);
            uint keep = g < group.Live ? 0xffffffffu : 0u;
            uint w0 = Interop.FloatAsInt(scores[at]) & keep;
            uint w1 = Interop.FloatAsInt(scores[at + 1]) & keep;
            uint w8 = Interop.FloatAsInt(scores[at + 8]) & keep;
            uint w9 = Interop.FloatAsInt(scores[at + 9]) & keep;
            uint w16 = Interop.FloatAsInt(scores[at + 16]) & keep;
            uint w17 = Interop.FloatAsInt(scores[at + 17]) & keep;
            uint w24 = Interop.FloatAsInt(scores[at + 24]) & keep;
            uint w25 = Interop.FloatAsInt(scores[at + 25]) & keep;
            uint hi0 = High(w0, w1), hi1 = High(w8, w9), hi2 = High(w16, w17), hi3 = High(w24, w25);
            uint lo0 = Low(w0, w1), lo1 = Low(w8, w9), lo2 = Low(w16, w17), lo3 = Low(w24, w25);
            ops.Accumulate(shared, (tt % Stages) * StageBytes, warp, lane, hi0, hi1, hi2, hi3, lo0, lo1, lo2, lo3, bf16);
        }

        if (kTiles == 0)
        {
            // No visible key in this chunk (only when the key end is 0): m = -inf, l = 0.
            ChunkSoftmax(scores, stats, mask, s, maskBase, j0, group.Live, 0, 0, lane, warp, bf16);
        }

        // The stages become the sums once every copy has landed and every warp has read the last tile.
        ops.WaitAll();
        Group.Barrier();
        ops.StoreSums(shared, warp, lane);
        Group.Barrier();
        var out16 = new DecodeOutput16 { Output = output, BFloat16 = bf16 };
        if (merge.Enabled)
        {
            DecodeClusterMerge.Finish(ref merge, shared, stats, out16, headRow, group.Live, group.Split, tid);
            return;
        }

        for (int e = tid; e < group.Live * D; e += GroupSize)
        {
            int i = e / D;
            int dim = e - (i * D);
            float o = shared[(i * D) + dim];
            AttentionDecodeWideKernels.WriteSum(out16, partO, stats, headRow, i, dim, o, group.Split, group.Splits, D);
        }

        AttentionDecodeWideKernels.FinishChunk(out16, partO, partML, scores, stats, tickets, plan, headRow, group.Live, group.Split, group.Splits, group.Batch, D, tid, lane, warp, 32, default(NoDecodeTrace));
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static uint QWord(ArrayView<uint> q32, long first, int offset, bool live) => live ? q32[first + offset] : 0u;

    /// <summary>The B-fragment register of two keys' high parts (lower key in the low half) from their weight words.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static uint High(uint first, uint second) => (first & 0xffffu) | (second << 16);

    /// <summary>The B-fragment register of two keys' low parts from their weight words.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static uint Low(uint first, uint second) => (first >> 16) | (second & 0xffff0000u);

    /// <summary>
    /// A weight as one word: its 16-bit rounding (high part) in the low half and the rounding of the rest (low part) in
    /// the high half, so that the 4 warps, which each read every weight, do not each convert it.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float WeightWord(float p, int bf16)
    {
        ushort high = GpuMath.Store16(p, bf16);
        ushort low = GpuMath.Store16(p - GpuMath.Load16(high, bf16), bf16);
        return Interop.IntAsFloat(high | ((uint)low << 16));
    }

    /// <summary>
    /// One warp per head: scores + mask (when there is one), the chunk's max m and l = Σ e^(s − m) into the statistics;
    /// the scores become the weights as <see cref="WeightWord"/>s, keys from n up to <paramref name="padded"/> (the
    /// tiles' tail) zero.
    /// </summary>
    private static void ChunkSoftmax(ArrayView<float> scores, ArrayView<float> stats, ArrayView<float> mask, AttentionShape s, long maskBase, int j0,
        int live, int n, int padded, int lane, int warp, int bf16)
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
                scores[row + j] = WeightWord(p, bf16);
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
    /// <remarks>
    /// Lean (<paramref name="lean"/>, a kernel constant): the prologue committed tiles 0 .. Stages − 1, so tile 0 may
    /// leave Stages − 1 groups in flight and no copy follows it (every buffer is full); from tile 1 on, tile t + Stages − 1
    /// goes into t − 1's buffer as by default, and tile t's group is followed by exactly Stages − 2 committed groups
    /// (Stages + t − 1 committed, tiles 0 .. t done), the same wait as by default.
    /// </remarks>
    private static void NextTile<TOps>(ref TOps ops, ArrayView<float> shared, ArrayView<Half8> k, ArrayView<Half8> v, DecodePlan plan,
        int t, int kTiles, long chunkVector, int n, int tid, bool lean)
        where TOps : struct, IDecodeTcOps
    {
        if (lean && t == 0)
        {
            ops.WaitFirstStage();
            Group.Barrier();
            return;
        }

        ops.WaitStages();
        Group.Barrier();
        CopyTile(ref ops, shared, k, v, plan, t + Stages - 1, kTiles, chunkVector, n, tid, lean);
    }

    /// <summary>
    /// Starts the copy of stream tile <paramref name="t"/> (K tiles, then V tiles; none past the end, but a commit all the
    /// same so that wait_group counts stay uniform) into buffer t mod <see cref="Stages"/>: 16-byte vector c of the tile
    /// goes to row c / 16, column c mod 16 of the padded stage; vectors past the chunk are zero-filled.
    /// </summary>
    /// <remarks>
    /// Lean: vector c = tid + <see cref="GroupSize"/>·u (u &lt; 4) is row tid / 16 + 8u, column tid mod 16, so the four
    /// copies are one shared and one global address plus constants (the default loop's <c>t % Stages</c> compiled to a
    /// signed division, and every copy recomputed its addresses).
    /// </remarks>
    private static void CopyTile<TOps>(ref TOps ops, ArrayView<float> shared, ArrayView<Half8> k, ArrayView<Half8> v, DecodePlan plan,
        int t, int kTiles, long chunkVector, int n, int tid, bool lean)
        where TOps : struct, IDecodeTcOps
    {
        const int RowVectors = D / 8;
        if (lean)
        {
            if (t < 2 * kTiles)
            {
                bool keys = t < kTiles;
                int tile = keys ? t : t - kTiles;
                long first = chunkVector + ((long)tile * TileKeys * RowVectors);
                int room = ((n - (tile * TileKeys)) * RowVectors) - tid;
                int at = ((t & (Stages - 1)) * StageBytes) + ((tid >> 4) * RowBytes) + ((tid & 15) * 16);
                long mine = first + tid;
                long pointer = keys ? plan.KPointer : plan.VPointer;
                var source = keys ? k : v;
                const int RowsPerStep = GroupSize / RowVectors;
                ops.Copy(shared, at, source, pointer, room > 0 ? mine : first, room > 0);
                ops.Copy(shared, at + (RowsPerStep * RowBytes), source, pointer, room > GroupSize ? mine + GroupSize : first, room > GroupSize);
                ops.Copy(shared, at + (2 * RowsPerStep * RowBytes), source, pointer, room > 2 * GroupSize ? mine + (2 * GroupSize) : first, room > 2 * GroupSize);
                ops.Copy(shared, at + (3 * RowsPerStep * RowBytes), source, pointer, room > 3 * GroupSize ? mine + (3 * GroupSize) : first, room > 3 * GroupSize);
            }

            ops.Commit();
            return;
        }

        if (t < 2 * kTiles)
        {
            bool keys = t < kTiles;
            int tile = keys ? t : t - kTiles;
            long first = chunkVector + ((long)tile * TileKeys * RowVectors);
            int validVectors = (n - (tile * TileKeys)) * RowVectors;
            int slot = (t % Stages) * StageBytes;
            long pointer = keys ? plan.KPointer : plan.VPointer;
            var source = keys ? k : v;
            for (int c = tid; c < TileKeys * RowVectors; c += GroupSize)
            {
                bool valid = c < validVectors;
                ops.Copy(shared, slot + ((c >> 4) * RowBytes) + ((c & 15) * 16), source, pointer, first + (valid ? c : 0), valid);
            }
        }

        ops.Commit();
    }
}

/// <summary>The tensor-core decode's operations as inline PTX (sm_80 and later); Q fragments and O accumulators are PTX registers.</summary>
internal struct PtxDecodeTcOps : IDecodeTcOps
{
    // Shared addresses go to the asm blocks as offsets; each block adds __dyn_shared_alloca itself (an asm output of the
    // base would pass through local memory).
    public readonly void Begin(int thread) =>
        // Emitted in the kernel's entry block, so the declarations precede every use in the PTX text.
        CudaAsm.Emit(AttentionDecodeTensorCoreKernels.DeclareRegisters);

    public readonly void Copy(ArrayView<float> shared, int sharedByte, ArrayView<Half8> source, long pointer, long vector, bool valid) =>
        CudaAsm.Emit("{\n\t.reg .u64 dtsrc;\n\t.reg .u32 dtdst;\n\tcvta.to.global.u64 dtsrc, %1;\n\tmov.u32 dtdst, __dyn_shared_alloca;\n\tadd.u32 dtdst, dtdst, %0;\n\tcp.async.cg.shared.global [dtdst], [dtsrc], 16, %2;\n\t}",
            (uint)sharedByte, pointer + (vector * 16), valid ? 16u : 0u);

    public readonly void Commit() => CudaAsm.Emit("cp.async.commit_group;");

    // Stages - 2 committed tiles may still be in flight (an immediate: Stages is 4).
    public readonly void WaitStages() => CudaAsm.Emit("cp.async.wait_group 2;");

    public readonly void WaitFirstStage() => CudaAsm.Emit("cp.async.wait_group 3;");

    public readonly void WaitWidePairs() => CudaAsm.Emit("cp.async.wait_group 6;");

    public readonly void WaitAll() => CudaAsm.Emit("cp.async.wait_group 0;");

    public readonly void LoadQ(uint q0, uint q1, uint q2, uint q3, uint q4, uint q5, uint q6, uint q7,
        uint q8, uint q9, uint q10, uint q11, uint q12, uint q13, uint q14, uint q15)
    {
        CudaAsm.Emit(AttentionDecodeTensorCoreKernels.LoadQ0, q0, q1, q2, q3);
        CudaAsm.Emit(AttentionDecodeTensorCoreKernels.LoadQ1, q4, q5, q6, q7);
        CudaAsm.Emit(AttentionDecodeTensorCoreKernels.LoadQ2, q8, q9, q10, q11);
        CudaAsm.Emit(AttentionDecodeTensorCoreKernels.LoadQ3, q12, q13, q14, q15);
    }

    public readonly void Scores(ArrayView<float> shared, int slot, int warp, int lane, int tile, float scale, int bf16)
    {
        // By-value operands: ILGPU binds them to registers.
        uint kRow = (uint)(slot + AttentionDecodeTensorCoreKernels.KLaneByte(warp, lane));
        uint at = (uint)AttentionDecodeTensorCoreKernels.ScoreLaneByte(warp, lane, tile);
        uint store = lane < 16 ? 1u : 0u;
        if (bf16 != 0)
        {
            CudaAsm.Emit(AttentionDecodeTensorCoreKernels.ScoresBf16, kRow, scale, at, store);
        }
        else
        {
            CudaAsm.Emit(AttentionDecodeTensorCoreKernels.ScoresF16, kRow, scale, at, store);
        }
    }

    public readonly void Accumulate(ArrayView<float> shared, int slot, int warp, int lane, uint hi0, uint hi1, uint hi2, uint hi3, uint lo0, uint lo1, uint lo2, uint lo3, int bf16)
    {
        uint vRow = (uint)(slot + AttentionDecodeTensorCoreKernels.VLaneByte(warp, lane));
        if (bf16 != 0)
        {
            CudaAsm.Emit(AttentionDecodeTensorCoreKernels.AccumulateBf16, vRow, hi0, hi1, hi2, hi3, lo0, lo1, lo2, lo3);
        }
        else
        {
            CudaAsm.Emit(AttentionDecodeTensorCoreKernels.AccumulateF16, vRow, hi0, hi1, hi2, hi3, lo0, lo1, lo2, lo3);
        }
    }

    public readonly void StoreSums(ArrayView<float> shared, int warp, int lane) =>
        CudaAsm.Emit(AttentionDecodeTensorCoreKernels.StoreSums, (uint)AttentionDecodeTensorCoreKernels.SumLaneByte(warp, lane), (lane & 3) < 2 ? 1u : 0u);

    public readonly void StoreSumsAt(ArrayView<float> shared, int warp, int lane, int baseByte) =>
        CudaAsm.Emit(AttentionDecodeTensorCoreKernels.StoreSums, (uint)(AttentionDecodeTensorCoreKernels.SumLaneByte(warp, lane) + baseByte), (lane & 3) < 2 ? 1u : 0u);
}

/// <summary>
/// ldmatrix and mma.sync m16n8k16 emulated from the PTX ISA's fragment tables: a lane's fragment element is read from
/// the shared row address the owning lane would give ldmatrix (the same address functions as the PTX path), or from
/// the owning lane's registers kept in <see cref="Scratch"/>; each lane sums its four (two for the scores) output
/// elements. Every lane runs it, as every lane runs the mma on the GPU.
/// </summary>
internal struct EmulatedDecodeTcOps : IDecodeTcOps
{
    private const int QSlot = 0;
    private const int OSlot = 16;
    private const int PSlot = 24;

    /// <summary><see cref="AttentionDecodeTensorCoreKernels.EmulationFloatsPerThread"/> floats for every thread of every group.</summary>
    public ArrayView<float> Scratch;

    private long scratchBase;
    private long warpBase;

    public void Begin(int thread)
    {
        const int Stride = AttentionDecodeTensorCoreKernels.EmulationFloatsPerThread;
        long group = ((((long)Grid.IdxZ * Grid.DimY) + Grid.IdxY) * Grid.DimX) + Grid.IdxX;

        // Group.DimX: the 8-warp body's groups are twice the 4-warp ones.
        scratchBase = ((group * Group.DimX) + thread) * Stride;
        warpBase = scratchBase - ((long)(thread & 31) * Stride);
        for (int i = 0; i < Stride; i++)
        {
            Scratch[scratchBase + i] = 0f;
        }
    }

    public readonly void Copy(ArrayView<float> shared, int sharedByte, ArrayView<Half8> source, long pointer, long vector, bool valid) =>
        shared.Cast<Half8>()[sharedByte >> 4] = valid ? source[vector] : default;

    public readonly void Commit()
    {
    }

    public readonly void WaitStages()
    {
    }

    public readonly void WaitFirstStage()
    {
    }

    public readonly void WaitWidePairs()
    {
    }

    public readonly void WaitAll()
    {
    }

    public readonly void LoadQ(uint q0, uint q1, uint q2, uint q3, uint q4, uint q5, uint q6, uint q7,
        uint q8, uint q9, uint q10, uint q11, uint q12, uint q13, uint q14, uint q15)
    {
        long at = scratchBase + QSlot;
        Scratch[at] = Interop.IntAsFloat(q0);
        Scratch[at + 1] = Interop.IntAsFloat(q1);
        Scratch[at + 2] = Interop.IntAsFloat(q2);
        Scratch[at + 3] = Interop.IntAsFloat(q3);
        Scratch[at + 4] = Interop.IntAsFloat(q4);
        Scratch[at + 5] = Interop.IntAsFloat(q5);
        Scratch[at + 6] = Interop.IntAsFloat(q6);
        Scratch[at + 7] = Interop.IntAsFloat(q7);
        Scratch[at + 8] = Interop.IntAsFloat(q8);
        Scratch[at + 9] = Interop.IntAsFloat(q9);
        Scratch[at + 10] = Interop.IntAsFloat(q10);
        Scratch[at + 11] = Interop.IntAsFloat(q11);
        Scratch[at + 12] = Interop.IntAsFloat(q12);
        Scratch[at + 13] = Interop.IntAsFloat(q13);
        Scratch[at + 14] = Interop.IntAsFloat(q14);
        Scratch[at + 15] = Interop.IntAsFloat(q15);

        // Every lane's fragments are in place before any lane gathers its neighbours'.
        Warp.Barrier();
    }

    public readonly void Scores(ArrayView<float> shared, int slot, int warp, int lane, int tile, float scale, int bf16)
    {
        var shared16 = shared.Cast<ushort>();
        int g = lane >> 2;
        int t = lane & 3;
        float c0 = 0f;
        float c1 = 0f;
        for (int s = 0; s < 8; s++)
        {
            for (int kk = 0; kk < 16; kk++)
            {
                // A (row g, k): register 2s (k < 8) or 2s + 1 of lane 4g + (k mod 8) / 2; half k mod 2.
                long holder = warpBase + ((long)((4 * g) + ((kk & 7) >> 1)) * AttentionDecodeTensorCoreKernels.EmulationFloatsPerThread);
                float a = Half(Interop.FloatAsInt(Scratch[holder + QSlot + (2 * s) + (kk >> 3)]), kk & 1, bf16);

                // B (k, column n): ldmatrix.x4 number s / 2, matrix 2·(s mod 2) + k / 8, whose row n's address comes from
                // lane 8·matrix + n; the element is at 2·(k mod 8) bytes into the row.
                int matrix = (2 * (s & 1)) + (kk >> 3);
                int offset = slot + (AttentionDecodeTensorCoreKernels.KStepBytes * (s >> 1)) + (2 * (kk & 7));
                float b0 = GpuMath.Load16(shared16[(offset + AttentionDecodeTensorCoreKernels.KLaneByte(warp, (8 * matrix) + (2 * t))) >> 1], bf16);
                float b1 = GpuMath.Load16(shared16[(offset + AttentionDecodeTensorCoreKernels.KLaneByte(warp, (8 * matrix) + (2 * t) + 1)) >> 1], bf16);
                c0 += a * b0;
                c1 += a * b1;
            }
        }

        if (g < 4)
        {
            int at = AttentionDecodeTensorCoreKernels.ScoreLaneByte(warp, lane, tile) >> 2;
            shared[at] = c0 * scale;
            shared[at + 1] = c1 * scale;
        }
    }

    public readonly void Accumulate(ArrayView<float> shared, int slot, int warp, int lane, uint hi0, uint hi1, uint hi2, uint hi3, uint lo0, uint lo1, uint lo2, uint lo3, int bf16)
    {
        const int Stride = AttentionDecodeTensorCoreKernels.EmulationFloatsPerThread;
        var shared16 = shared.Cast<ushort>();
        long mine = scratchBase + PSlot;
        Scratch[mine] = Interop.IntAsFloat(hi0);
        Scratch[mine + 1] = Interop.IntAsFloat(hi1);
        Scratch[mine + 2] = Interop.IntAsFloat(hi2);
        Scratch[mine + 3] = Interop.IntAsFloat(hi3);
        Scratch[mine + 4] = Interop.IntAsFloat(lo0);
        Scratch[mine + 5] = Interop.IntAsFloat(lo1);
        Scratch[mine + 6] = Interop.IntAsFloat(lo2);
        Scratch[mine + 7] = Interop.IntAsFloat(lo3);
        Warp.Barrier();
        int g = lane >> 2;
        int t = lane & 3;
        for (int mt = 0; mt < 2; mt++)
        {
            for (int r = 0; r < 4; r++)
            {
                int m = g + ((r >> 1) * 8);
                int col = (2 * t) + (r & 1);
                float sum = 0f;
                for (int s = 0; s < 2; s++)
                {
                    for (int kk = 0; kk < 16; kk++)
                    {
                        // A (m, k) of Vᵀ: register m / 8 + 2·(k / 8) of ldmatrix.trans (s, mt); transposed, its element is
                        // column m mod 8 of stored row k mod 8, whose address comes from lane 8·register + k mod 8.
                        int register = (m >> 3) + (2 * (kk >> 3));
                        int rowByte = slot + AttentionDecodeTensorCoreKernels.VLaneByte(warp, (8 * register) + (kk & 7))
                            + (s * AttentionDecodeTensorCoreKernels.VKStepBytes) + (mt * AttentionDecodeTensorCoreKernels.VMTileBytes);
                        float a = GpuMath.Load16(shared16[(rowByte >> 1) + (m & 7)], bf16);

                        // B (k, column n): register 2s + k / 8 (high) or 4 + that (low) of lane 4n + (k mod 8) / 2; half k mod 2.
                        long holder = warpBase + ((long)((4 * col) + ((kk & 7) >> 1)) * Stride) + PSlot + (2 * s) + (kk >> 3);
                        float high = Half(Interop.FloatAsInt(Scratch[holder]), kk & 1, bf16);
                        float low = Half(Interop.FloatAsInt(Scratch[holder + 4]), kk & 1, bf16);
                        sum += (a * high) + (a * low);
                    }
                }

                Scratch[scratchBase + OSlot + (4 * mt) + r] += sum;
            }
        }

        // The next tile's weights overwrite the published ones only after every lane has read them.
        Warp.Barrier();
    }

    public readonly void StoreSums(ArrayView<float> shared, int warp, int lane) => StoreSumsAt(shared, warp, lane, 0);

    public readonly void StoreSumsAt(ArrayView<float> shared, int warp, int lane, int baseByte)
    {
        if ((lane & 3) >= 2)
        {
            return;
        }

        int at = (AttentionDecodeTensorCoreKernels.SumLaneByte(warp, lane) + baseByte) >> 2;
        for (int mt = 0; mt < 2; mt++)
        {
            for (int r = 0; r < 4; r++)
            {
                shared[at + (mt * 16) + ((r >> 1) * 8) + ((r & 1) * AttentionDecodeTensorCoreKernels.D)] = Scratch[scratchBase + OSlot + (4 * mt) + r];
            }
        }
    }

    private static float Half(uint word, int high, int bf16) => GpuMath.Load16((ushort)(high != 0 ? word >> 16 : word & 0xffffu), bf16);
}
