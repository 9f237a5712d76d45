using ILGPU;
using ILGPU.Runtime;
using ILGPU.Runtime.Cuda;

namespace GemsInjector.Kernels.Ilgpu;

/// <summary>
/// The warpgroup operations of the wgmma prefill attention, so one kernel body runs on an H100 / H200 through inline
/// PTX (<see cref="PtxAttentionWgmmaOps"/>) and on ILGPU's CPU accelerator through an emulation in which each thread
/// computes its own accumulator elements from shared memory (through the descriptors) and from the A-fragment registers
/// of its warp's lanes (<see cref="EmulatedAttentionWgmmaOps"/>).
/// </summary>
internal interface IAttentionWgmmaOps
{
    /// <summary>Declares and initializes this thread's registers and finds the 1024-byte aligned shared base (first statement of the kernel).</summary>
    void Begin(int thread);

    /// <summary>The shared-window address of the aligned byte 0 (0 in the emulation).</summary>
    uint SharedBase();

    /// <summary>Copies one 16-byte chunk (8 elements from <paramref name="sourceElement"/>, or zeros when <paramref name="valid"/> is 0) to shared byte <paramref name="sharedByte"/>.</summary>
    void CopyChunk(ArrayView<ushort> shared, int sharedByte, ArrayView<ushort> source, long sourceElement, long sourcePointer, int valid);

    /// <summary>Closes the group of copies issued so far.</summary>
    void CommitCopies();

    /// <summary>Waits until every committed copy group has landed.</summary>
    void WaitCopies();

    /// <summary>Orders this thread's completed shared-memory writes before later reads by the async proxy (wgmma).</summary>
    void FenceProxy();

    /// <summary>S = Q·Kᵀ for the warpgroup's 64 rows and the key tile (eight k16 wgmma, one commit group).</summary>
    void Scores(ArrayView<ushort> shared, long qDescriptor, long kDescriptor, int bf16, int thread);

    /// <summary>Waits until no wgmma group of this warpgroup is pending.</summary>
    void WaitMultiplies();

    /// <summary>
    /// The online-softmax step on this thread's scores: times <paramref name="scaleLog2"/>, key offsets ≥
    /// <paramref name="limitLo"/> (row g) / <paramref name="limitHi"/> (row g + 8) from the lane's first key hidden, row
    /// maxima and partial sums, rescale of the outputs, weights as high + low 16-bit A fragments.
    /// </summary>
    void Softmax(float scaleLog2, int limitLo, int limitHi, int bf16, int thread);

    /// <summary>O += P·V (P from the weight registers, high and low parts; V MN-major in shared memory), one commit group.</summary>
    void Accumulate(ArrayView<ushort> shared, long vDescriptor, int bf16, int thread);

    /// <summary>Thread 0 initializes the warp-specialized kernel's mbarriers at shared address <paramref name="barriers"/>.</summary>
    void InitBarriers(uint barriers, int thread);

    /// <summary>A consumer waits for the phase of parity <paramref name="parity"/> of the "full" mbarrier at <paramref name="barrier"/>.</summary>
    void WaitFull(uint barrier, int parity);

    /// <summary>The producer waits for the phase of parity <paramref name="parity"/> of the "empty" mbarrier at <paramref name="barrier"/>.</summary>
    void WaitEmpty(uint barrier, int parity);

    /// <summary>A producer thread arrives on the "full" mbarrier at <paramref name="barrier"/>.</summary>
    void ArriveFull(uint barrier);

    /// <summary>A producer thread passes a tile another producer warp copies (nothing on the GPU; the emulation's per-tile group barrier).</summary>
    void OtherProducersTile();

    /// <summary>A consumer warp (its lane 0) arrives on the "empty" mbarrier at <paramref name="barrier"/>.</summary>
    void ArriveEmpty(uint barrier, int lane);

    /// <summary>Waits at named barrier <paramref name="id"/> until the other consumer warpgroup has arrived on it (256 threads: ping-pong order).</summary>
    void SyncOrder(int id);

    /// <summary>Arrives on named barrier <paramref name="id"/> (the other consumer warpgroup's turn) without waiting.</summary>
    void ArriveOrder(int id);

    /// <summary>Sums the quad's row sums and stores O / l rounded to 16 bits at elements <paramref name="elementLo"/> (row g) and <paramref name="elementHi"/> (row g + 8); -1 skips a row.</summary>
    void Store(ArrayView<ushort> output, long outputPointer, long elementLo, long elementHi, int bf16);
}

/// <summary>The 16-bit format of one compiled wgmma prefill kernel, as a type argument (one wgmma format per instantiation).</summary>
internal interface IPrefillFormat
{
    /// <summary>Non-zero for bfloat16, zero for float16.</summary>
    int Bf16 { get; }
}

/// <summary>bfloat16 q, k, v.</summary>
internal readonly struct PrefillBf16 : IPrefillFormat
{
    /// <inheritdoc/>
    public int Bf16 => 1;
}

/// <summary>float16 q, k, v.</summary>
internal readonly struct PrefillF16 : IPrefillFormat
{
    /// <inheritdoc/>
    public int Bf16 => 0;
}

/// <summary>
/// FlashAttention-3-like prefill on Hopper's warpgroup tensor-core instruction (<c>wgmma.mma_async</c>, sm_90a; float32
/// accumulation) for 16-bit q, k, v of head size <see cref="D"/>, no additive mask. A group of two warpgroups takes
/// <see cref="BlockQ"/> queries of one head (64 rows per warpgroup). The Q tile is staged once; key tiles of
/// <see cref="BlockK"/> go by cp.async into three stages, one tile ahead. Per tile each warpgroup issues S = Q·Kᵀ as
/// eight m64n64k16 from shared memory (Q and K K-major, 128-byte swizzled, both stored as two 64-column halves of the
/// head dimension), waits, runs the online softmax on its 32 score accumulators per thread (the m64nN accumulator is
/// the mma.sync C fragment per 8-column block, so the register variant's softmax carries over), rescales its 64 output
/// accumulators and issues O += P·V as eight m64n128k16 with A = P from registers (the C layout of two score blocks is
/// the A layout of one k16 step) as high and low 16-bit parts (<see cref="AttentionTensorCoreKernels"/> says why two),
/// B = V MN-major in <see cref="WgmmaGemmKernels"/>' MN-major stage layout. The P·V group is not waited for: it runs
/// while the next tile's barrier passes and its S is issued, and the wait after that S covers both. Every wgmma and
/// every branch around one is uniform over the group (it depends on the block index and the shape only); the masking
/// (Lk edge, causal diagonal) is a per-element select, never a branch, and a warpgroup whose rows are all above a tile's
/// diagonal still multiplies it (its weights are 0; one tile in 2 · (query block + 1)).
/// Causal is top-left, longest query blocks first; grouped-query heads read kv head h / (Heads / KvHeads); a row with no
/// visible key gives zeros; NaN propagates. Grid: (⌈Lq / 128⌉, heads, batch).
/// </summary>
/// <remarks>
/// Stages: tile t + 1 is requested into stage (t + 1) mod 3 right after iteration t's barrier. That stage last held tile
/// t - 2, whose P·V both warpgroups waited for (after S of tile t - 1) before reaching the barrier; tile t's copies were
/// waited for and fenced to the async proxy by every thread before it. Two stages would not do: the refilled stage
/// would be the one P·V of tile t - 1 may still be reading.
/// </remarks>
internal static partial class AttentionWgmmaKernels
{
    /// <summary>log2 e: scores and row maxima are kept in log2 units (one multiply folds in the scale).</summary>
    private const float Log2E = 1.44269504088896341f;

    /// <summary>Bytes of one 128-byte-swizzle row (64 elements).</summary>
    private const int RowBytes = WgmmaGemmKernels.RowBytes;

    /// <summary>Bytes between 8-row atoms (the descriptors' stride byte offset).</summary>
    private const int AtomBytes = WgmmaGemmKernels.AtomBytes;

    /// <summary>The wgmma prefill through inline PTX for one format (CUDA, compute capability 9.0: loaded as sm_90a by <see cref="Sm90aPtx"/>).</summary>
    [IlgpuKernel]
    [IlgpuKernelVariant(typeof(PrefillBf16))]
    [IlgpuKernelVariant(typeof(PrefillF16))]
    public static void Attention16Wgmma<TFormat>(ArrayView<ushort> q, ArrayView<ushort> k, ArrayView<ushort> v, ArrayView<ushort> output,
        AttentionShape s, TensorCoreAttentionPointers pointers)
        where TFormat : struct, IPrefillFormat
    {
        var ops = default(PtxAttentionWgmmaOps);
        Body(ref ops, q, k, v, output, s, pointers, default(TFormat).Bf16);
    }

    /// <summary>The body with wgmma emulated thread by thread (registers in <paramref name="scratch"/>), for the CPU accelerator with 32-thread warps.</summary>
    [IlgpuKernel(SimulatorOnly = true)]
    public static void Attention16WgmmaEmulated(ArrayView<ushort> q, ArrayView<ushort> k, ArrayView<ushort> v, ArrayView<ushort> output,
        ArrayView<float> scratch, AttentionShape s, int bf16)
    {
        var ops = new EmulatedAttentionWgmmaOps { Scratch = scratch };
        Body(ref ops, q, k, v, output, s, default, bf16);
    }

    /// <summary>The warp-specialized prefill (<see cref="WsBody{TOps}"/>) through inline PTX (CUDA, compute capability 9.0, sm_90a).</summary>
    [IlgpuKernel]
    [IlgpuKernelVariant(typeof(PrefillBf16))]
    [IlgpuKernelVariant(typeof(PrefillF16))]
    public static void Attention16WgmmaWs<TFormat>(ArrayView<ushort> q, ArrayView<ushort> k, ArrayView<ushort> v, ArrayView<ushort> output,
        AttentionShape s, TensorCoreAttentionPointers pointers)
        where TFormat : struct, IPrefillFormat
    {
        var ops = default(PtxAttentionWgmmaOps);
        WsBody(ref ops, q, k, v, output, s, pointers, default(TFormat).Bf16, 0);
    }

    /// <summary>The warp-specialized prefill with the consumers' wgmma issue in ping-pong order (<c>wgmma-wsp</c>, <see cref="WsBody{TOps}"/>).</summary>
    [IlgpuKernel]
    [IlgpuKernelVariant(typeof(PrefillBf16))]
    [IlgpuKernelVariant(typeof(PrefillF16))]
    public static void Attention16WgmmaWsp<TFormat>(ArrayView<ushort> q, ArrayView<ushort> k, ArrayView<ushort> v, ArrayView<ushort> output,
        AttentionShape s, TensorCoreAttentionPointers pointers)
        where TFormat : struct, IPrefillFormat
    {
        var ops = default(PtxAttentionWgmmaOps);
        WsBody(ref ops, q, k, v, output, s, pointers, default(TFormat).Bf16, 1);
    }

    /// <summary>
    /// The warp-specialized body with wgmma emulated and the mbarrier protocol replaced by group barriers (one per key
    /// tile: the producer's "full" arrival and the consumers' "full" wait) and the ping-pong order dropped (it orders
    /// issue, not results), for the CPU accelerator with 32-thread warps and groups of <see cref="WsGroupSize"/>.
    /// </summary>
    [IlgpuKernel(SimulatorOnly = true)]
    public static void Attention16WgmmaWsEmulated(ArrayView<ushort> q, ArrayView<ushort> k, ArrayView<ushort> v, ArrayView<ushort> output,
        ArrayView<float> scratch, AttentionShape s, int bf16, int pingPong)
    {
        var ops = new EmulatedAttentionWgmmaOps { Scratch = scratch };
        WsBody(ref ops, q, k, v, output, s, default, bf16, pingPong);
    }

    /// <summary>Launch shape of the warp-specialized kernel: the same grid as <see cref="Config"/>, <see cref="WsGroupSize"/> threads, <see cref="WsSharedBytes"/>.</summary>
    public static KernelConfig WsConfig(int batch, int heads, int lq) => new(
        new Index3D((lq + BlockQ - 1) / BlockQ, heads, batch),
        new Index3D(WsGroupSize, 1, 1),
        SharedMemoryConfig.RequestDynamic<ushort>(WsSharedBytes / sizeof(ushort)));

    /// <summary>Floats of scratch the emulated warp-specialized kernel needs for <paramref name="groups"/> groups.</summary>
    public static long WsEmulationScratch(long groups) => groups * WsGroupSize * EmulatedAttentionWgmmaOps.FloatsPerThread;

    /// <summary>
    /// Launch shape: (⌈lq / <see cref="BlockQ"/>⌉, heads, batch) groups of <see cref="GroupSize"/> threads with
    /// <see cref="SharedBytes"/> of dynamic shared memory.
    /// </summary>
    public static KernelConfig Config(int batch, int heads, int lq) => new(
        new Index3D((lq + BlockQ - 1) / BlockQ, heads, batch),
        new Index3D(GroupSize, 1, 1),
        SharedMemoryConfig.RequestDynamic<ushort>(SharedBytes / sizeof(ushort)));

    /// <summary>Floats of scratch the emulated kernel needs for <paramref name="groups"/> groups.</summary>
    public static long EmulationScratch(long groups) => groups * GroupSize * EmulatedAttentionWgmmaOps.FloatsPerThread;

    /// <summary>Byte of 16-byte chunk <paramref name="chunk"/> (0-15, head-dimension columns 8·chunk..) of row <paramref name="row"/> of the Q tile.</summary>
    public static int QByte(int row, int chunk) => ((chunk >> 3) * QHalfBytes) + WgmmaGemmKernels.KRowByte(row, chunk & 7);

    /// <summary>Byte of chunk <paramref name="chunk"/> of key <paramref name="key"/> of the K tile in <paramref name="stage"/>.</summary>
    public static int KByte(int stage, int key, int chunk) => StageOffset(stage) + ((chunk >> 3) * KvHalfBytes) + WgmmaGemmKernels.KRowByte(key, chunk & 7);

    /// <summary>Byte of chunk <paramref name="chunk"/> of key <paramref name="key"/> of the V tile in <paramref name="stage"/> (the GEMM's MN-major layout).</summary>
    public static int VByte(int stage, int key, int chunk) => StageOffset(stage) + KBytes + WgmmaGemmKernels.MnByte(key, chunk);

    /// <summary>Byte offset of stage <paramref name="stage"/>.</summary>
    public static int StageOffset(int stage) => QBytes + (stage * StageBytes);

    /// <summary>Descriptor units (16 bytes) of Q's k16 step <paramref name="step"/> (0-7) of the head dimension from step 0.</summary>
    public static long QAdvance(int step) => (((step >> 2) * QHalfBytes) + ((step & 3) * 32)) >> 4;

    /// <summary>Descriptor units of K's k16 step <paramref name="step"/> from step 0.</summary>
    public static long KAdvance(int step) => (((step >> 2) * KvHalfBytes) + ((step & 3) * 32)) >> 4;

    /// <summary>The stage of key tile <paramref name="tile"/> in the warp-specialized kernel's ring.</summary>
    public static int WsStage(int tile) => tile % WsStages;

    /// <summary>The producer warp (0-3 of the producer warpgroup) that copies key tile <paramref name="tile"/>.</summary>
    public static int WsProducerWarp(int tile) => tile & (WsProducerWarps - 1);

    /// <summary>The parity a consumer waits for on tile <paramref name="tile"/>'s "full" mbarrier (its stage's use tile / WsStages completes that phase).</summary>
    public static int WsFullParity(int tile) => (tile / WsStages) & 1;

    /// <summary>The parity the producer waits for on tile <paramref name="tile"/>'s "empty" mbarrier: the previous use's phase (1 on a fresh barrier, which passes at once).</summary>
    public static int WsEmptyParity(int tile) => ((tile / WsStages) & 1) ^ 1;

    /// <summary>The Q descriptor (K-major) of warpgroup <paramref name="warpgroup"/>'s 64 rows, step 0.</summary>
    public static long QDescriptor(uint sharedBase, int warpgroup) => WgmmaGemmKernels.Descriptor(sharedBase + (uint)(warpgroup * 64 * RowBytes), 16, AtomBytes);

    /// <summary>The K descriptor (K-major, keys as N) of <paramref name="stage"/>, step 0.</summary>
    public static long KDescriptor(uint sharedBase, int stage) => WgmmaGemmKernels.Descriptor(sharedBase + (uint)StageOffset(stage), 16, AtomBytes);

    /// <summary>The V descriptor (MN-major: 64-column blocks <see cref="KvHalfBytes"/> apart, 8-key groups one atom apart) of <paramref name="stage"/>, step 0.</summary>
    public static long VDescriptor(uint sharedBase, int stage) => WgmmaGemmKernels.Descriptor(sharedBase + (uint)(StageOffset(stage) + KBytes), KvHalfBytes, AtomBytes);

    internal static void Body<TOps>(ref TOps ops, ArrayView<ushort> q, ArrayView<ushort> k, ArrayView<ushort> v, ArrayView<ushort> output,
        AttentionShape s, TensorCoreAttentionPointers pointers, int bf16)
        where TOps : struct, IAttentionWgmmaOps
    {
        int thread = Group.IdxX;
        ops.Begin(thread);
        var shared = SharedMemory.GetDynamic<ushort>();
        uint sharedBase = ops.SharedBase();
        int warpgroup = thread >> 7;
        int lane = thread & 31;
        int g = lane >> 2;
        int t = lane & 3;
        int qBlock = s.Causal != 0 ? Grid.DimX - 1 - Grid.IdxX : Grid.IdxX;
        int q0 = qBlock * BlockQ;
        int h = Grid.IdxY;
        int batch = Grid.IdxZ;
        int kvh = h / (s.Heads / s.KvHeads);
        long qRow0 = ((((long)batch * s.Heads) + h) * s.Lq) + q0;
        long kRow0 = (((long)batch * s.KvHeads) + kvh) * s.Lk;
        int kEnd = s.Causal != 0 && q0 + BlockQ < s.Lk ? q0 + BlockQ : s.Lk;
        int tiles = (kEnd + BlockK - 1) / BlockK;

        // Q (8 chunks per thread, zeros past Lq) and key tile 0 in one copy group.
        const int Chunks = D / 8;
        for (int i = 0; i < BlockQ * Chunks / GroupSize; i++)
        {
            int c = thread + (i * GroupSize);
            int row = c / Chunks;
            int chunk = c - (row * Chunks);
            bool inside = row < s.Lq - q0;
            ops.CopyChunk(shared, QByte(row, chunk), q, inside ? ((qRow0 + row) * D) + (chunk * 8) : 0, pointers.Q, inside ? 8 : 0);
        }

        if (tiles > 0)
        {
            CopyTile(ref ops, shared, k, v, pointers, kRow0, s.Lk, 0, 0, thread, GroupSize);
        }

        ops.CommitCopies();

        int queryLo = q0 + (warpgroup * 64) + (((thread >> 5) & 3) * 16) + g;
        int limitLo = s.Causal != 0 && queryLo + 1 < s.Lk ? queryLo + 1 : s.Lk;
        int limitHi = s.Causal != 0 && queryLo + 9 < s.Lk ? queryLo + 9 : s.Lk;
        float scaleLog2 = s.Scale * Log2E;
        long qDescriptor = QDescriptor(sharedBase, warpgroup);
        for (int tile = 0; tile < tiles; tile++)
        {
            ops.WaitCopies();
            ops.FenceProxy();
            Group.Barrier();
            if (tile + 1 < tiles)
            {
                CopyTile(ref ops, shared, k, v, pointers, kRow0, s.Lk, tile + 1, (tile + 1) % Stages, thread, GroupSize);
            }

            ops.CommitCopies();
            int stage = tile % Stages;
            ops.Scores(shared, qDescriptor, KDescriptor(sharedBase, stage), bf16, thread);
            ops.WaitMultiplies();
            int key0 = (tile * BlockK) + (2 * t);
            ops.Softmax(scaleLog2, limitLo - key0, limitHi - key0, bf16, thread);
            ops.Accumulate(shared, VDescriptor(sharedBase, stage), bf16, thread);
        }

        ops.WaitMultiplies();
        long elementLo = queryLo < s.Lq ? ((qRow0 - q0 + queryLo) * D) + (2 * t) : -1;
        long elementHi = queryLo + 8 < s.Lq ? ((qRow0 - q0 + queryLo + 8) * D) + (2 * t) : -1;
        ops.Store(output, pointers.Output, elementLo, elementHi, bf16);
    }

    /// <summary>
    /// The warp-specialized form of <see cref="Body{TOps}"/> (<c>GEMS_PREFILL_VARIANT=wgmma-ws</c>): warpgroups 0 and 1
    /// consume (the same per-tile arithmetic, rows, masks and store as the lockstep body), warpgroup 2 produces: its four
    /// warps take turns copying whole key tiles (warp 0 also Q) into a ring of <see cref="WsStages"/> stages, and the two
    /// sides meet only at shared-memory mbarriers, full[stage] and empty[stage], never at a group barrier, so the consumer
    /// warpgroups drift apart and one's softmax can overlap the other's wgmma (with <paramref name="pingPong"/>, in a fixed
    /// alternation).
    /// </summary>
    /// <remarks>
    /// <para>Protocol. Tile t lives in stage t mod <see cref="WsStages"/> and is that stage's use n = t / WsStages. An
    /// mbarrier starts in phase 0 and completes a phase when its pending arrivals reach zero (full: 32, one per lane of
    /// the producer warp that owns the tile, <see cref="WsProducerWarp"/>; empty: 8, one per consumer warp), then counts
    /// again. <c>try_wait.parity p</c> returns once the phase of parity p has completed, and for a fresh barrier it
    /// returns at once for p = 1 (the phase "before" phase 0).</para>
    /// <para>Full: the owning warp's 32 arrivals for tile t complete phase n of full[stage] (a later use of the stage,
    /// by another warp, first waits for empty of this one, which needs the consumers past this phase), so a consumer
    /// waits for parity n &amp; 1. Empty: the consumers' arrivals after they finished tile t complete phase n of
    /// empty[stage]; before writing tile t the producer needs use n − 1 released, parity (n − 1) &amp; 1 = (n &amp; 1) ^ 1,
    /// which for n = 0 is the fresh barrier's 1: no branch for the first round. Parity cannot alias a phase two ahead: the producer arrives on full[stage] for use n + 1 only after waiting
    /// on empty[stage] for use n, which needs every consumer warp's arrival after tile t, which each made after its own
    /// wait on full[stage] for use n; symmetrically for empty. So every wait sees its barrier at most one phase ahead.</para>
    /// <para>Data. A producer thread makes its copies of tile t visible before arriving: cp.async.wait_group 0 (its
    /// only group in flight), fence.proxy.async (its generic-proxy writes ordered before the async proxy's wgmma reads),
    /// then the arrive (release); a consumer's try_wait acquires. The four producer warps keep four tiles in flight. A
    /// consumer arrives on empty[stage of t − 1] only after the wgmma wait that follows its S of tile t, which retires its
    /// P·V of tile t − 1 (the last reader of that stage: S reads K, P·V reads V). The last tile's stage is never released
    /// (nothing waits).</para>
    /// <para>Deadlock freedom: the producer warp of tile t writes it after empty for t − WsStages, which the consumers
    /// release in their iteration t − WsStages + 1 (after the wait that follows S of that tile), which needs full for
    /// tiles up to t − WsStages + 1 &lt; t, each published by its warp without waiting on anything later. With five
    /// stages the consumers hold at most two (the tile they compute, the one whose P·V retires) and the producers fill
    /// three ahead.</para>
    /// <para>Every wgmma sits under <c>warpgroup &lt; 2</c>, uniform over each warpgroup; every branch inside depends on
    /// the block index, the shape and <paramref name="pingPong"/> (a constant per kernel) only, as in
    /// <see cref="Body{TOps}"/>. The producer warpgroup ends after its last arrival; no group barrier follows the one after
    /// the mbarrier initialization.</para>
    /// <para>Ping-pong (<paramref name="pingPong"/> ≠ 0, FlashAttention-3's order): a consumer issues its tensor work of
    /// one step, P·V of tile t − 1 then S of tile t, between <c>bar.sync</c> on its own named barrier (1 + warpgroup) and
    /// <c>bar.arrive</c> on the other's, so the warpgroups take turns: one runs its softmax while the tensor cores run the
    /// other's step. Each named barrier completes with 256 threads: the owner's 128 waiting plus the other's 128 arriving.
    /// Warpgroup 1 arrives once on barrier 1 before its first step, so warpgroup 0 goes first. The turns alternate
    /// strictly (warpgroup 1's k-th arrival on barrier 1 follows its (k − 1)-th wait on barrier 2, which follows warpgroup
    /// 0's (k − 1)-th arrival there, made after its (k − 1)-th wait on barrier 1 returned), so no barrier ever sees two
    /// arrivals of one warpgroup in one generation. Counts balance: each consumer waits tiles + 1 times (the last step is
    /// P·V alone); warpgroup 0 arrives tiles + 1 times, warpgroup 1 once ahead and then tiles times (it skips the arrival
    /// after its last step), so no barrier is left half-arrived at exit. No tile, no turn.</para>
    /// <para>The simulator runs this body with the handshakes as group barriers; the protocol itself (these steps, with
    /// <see cref="WsStage"/>, <see cref="WsProducerWarp"/>, <see cref="WsFullParity"/>, <see cref="WsEmptyParity"/>) is
    /// checked by a model under random interleavings in the tests (AttentionWgmmaWsProtocolTests).</para>
    /// </remarks>
    internal static void WsBody<TOps>(ref TOps ops, ArrayView<ushort> q, ArrayView<ushort> k, ArrayView<ushort> v, ArrayView<ushort> output,
        AttentionShape s, TensorCoreAttentionPointers pointers, int bf16, int pingPong)
        where TOps : struct, IAttentionWgmmaOps
    {
        int thread = Group.IdxX;
        ops.Begin(thread);
        var shared = SharedMemory.GetDynamic<ushort>();
        uint sharedBase = ops.SharedBase();
        uint full = sharedBase + WsBarrierBytes;
        uint empty = full + (WsStages * 8);
        int warpgroup = thread >> 7;
        int lane = thread & 31;
        int qBlock = s.Causal != 0 ? Grid.DimX - 1 - Grid.IdxX : Grid.IdxX;
        int q0 = qBlock * BlockQ;
        int h = Grid.IdxY;
        int batch = Grid.IdxZ;
        int kvh = h / (s.Heads / s.KvHeads);
        long qRow0 = ((((long)batch * s.Heads) + h) * s.Lq) + q0;
        long kRow0 = (((long)batch * s.KvHeads) + kvh) * s.Lk;
        int kEnd = s.Causal != 0 && q0 + BlockQ < s.Lk ? q0 + BlockQ : s.Lk;
        int tiles = (kEnd + BlockK - 1) / BlockK;

        // Every thread sees initialized barriers before the first wait or arrival.
        ops.InitBarriers(full, thread);
        Group.Barrier();

        if (warpgroup == WsConsumers / 128)
        {
            // Producer: each warp owns every WsProducerWarps-th tile and copies it whole, so it can wait for its own
            // copies (wait_group 0) before the proxy fence: the fence never waits behind another tile in flight, and
            // WsProducerWarps tiles are in flight at once. Warp 0 copies Q (64 chunks per lane, zeros past Lq) with
            // tile 0, so full[0]'s first phase covers both.
            const int Chunks = D / 8;
            int producerWarp = (thread - WsConsumers) >> 5;
            if (producerWarp == 0)
            {
                for (int i = 0; i < BlockQ * Chunks / 32; i++)
                {
                    int c = lane + (i * 32);
                    int row = c / Chunks;
                    int chunk = c - (row * Chunks);
                    bool inside = row < s.Lq - q0;
                    ops.CopyChunk(shared, QByte(row, chunk), q, inside ? ((qRow0 + row) * D) + (chunk * 8) : 0, pointers.Q, inside ? 8 : 0);
                }
            }

            for (int tile = 0; tile < tiles; tile++)
            {
                if (WsProducerWarp(tile) == producerWarp)
                {
                    int stage = WsStage(tile);
                    ops.WaitEmpty(empty + (uint)(stage * 8), WsEmptyParity(tile));
                    CopyTile(ref ops, shared, k, v, pointers, kRow0, s.Lk, tile, stage, lane, 32);
                    ops.CommitCopies();
                    ops.WaitCopies();
                    ops.FenceProxy();
                    ops.ArriveFull(full + (uint)(stage * 8));
                }
                else
                {
                    ops.OtherProducersTile();
                }
            }
        }
        else
        {
            int g = lane >> 2;
            int t = lane & 3;
            int queryLo = q0 + (warpgroup * 64) + (((thread >> 5) & 3) * 16) + g;
            int limitLo = s.Causal != 0 && queryLo + 1 < s.Lk ? queryLo + 1 : s.Lk;
            int limitHi = s.Causal != 0 && queryLo + 9 < s.Lk ? queryLo + 9 : s.Lk;
            float scaleLog2 = s.Scale * Log2E;
            long qDescriptor = QDescriptor(sharedBase, warpgroup);
            if (pingPong == 0)
            {
                for (int tile = 0; tile < tiles; tile++)
                {
                    int stage = WsStage(tile);
                    ops.WaitFull(full + (uint)(stage * 8), WsFullParity(tile));
                    ops.Scores(shared, qDescriptor, KDescriptor(sharedBase, stage), bf16, thread);
                    ops.WaitMultiplies();
                    if (tile > 0)
                    {
                        // The wait above retired P·V of tile t − 1: its stage may be refilled.
                        ops.ArriveEmpty(empty + (uint)(WsStage(tile - 1) * 8), lane);
                    }

                    int key0 = (tile * BlockK) + (2 * t);
                    ops.Softmax(scaleLog2, limitLo - key0, limitHi - key0, bf16, thread);
                    ops.Accumulate(shared, VDescriptor(sharedBase, stage), bf16, thread);
                }
            }
            else
            {
                int own = 1 + warpgroup;
                int other = 2 - warpgroup;
                if (warpgroup == 1 && tiles > 0)
                {
                    ops.ArriveOrder(other);
                }

                for (int tile = 0; tile < tiles; tile++)
                {
                    int stage = WsStage(tile);
                    ops.WaitFull(full + (uint)(stage * 8), WsFullParity(tile));
                    ops.SyncOrder(own);
                    if (tile > 0)
                    {
                        // The weights of tile t − 1 stayed in registers since its softmax (the previous iteration).
                        ops.Accumulate(shared, VDescriptor(sharedBase, WsStage(tile - 1)), bf16, thread);
                    }

                    ops.Scores(shared, qDescriptor, KDescriptor(sharedBase, stage), bf16, thread);
                    ops.ArriveOrder(other);
                    ops.WaitMultiplies();
                    if (tile > 0)
                    {
                        // The wait above retired P·V of tile t − 1: its stage may be refilled.
                        ops.ArriveEmpty(empty + (uint)(WsStage(tile - 1) * 8), lane);
                    }

                    int key0 = (tile * BlockK) + (2 * t);
                    ops.Softmax(scaleLog2, limitLo - key0, limitHi - key0, bf16, thread);
                }

                if (tiles > 0)
                {
                    ops.SyncOrder(own);
                    ops.Accumulate(shared, VDescriptor(sharedBase, WsStage(tiles - 1)), bf16, thread);
                    if (warpgroup == 0)
                    {
                        ops.ArriveOrder(other);
                    }
                }
            }

            ops.WaitMultiplies();
            long elementLo = queryLo < s.Lq ? ((qRow0 - q0 + queryLo) * D) + (2 * t) : -1;
            long elementHi = queryLo + 8 < s.Lq ? ((qRow0 - q0 + queryLo + 8) * D) + (2 * t) : -1;
            ops.Store(output, pointers.Output, elementLo, elementHi, bf16);
        }
    }

    /// <summary>
    /// Requests K and V of key tile <paramref name="tile"/> (zeros past Lk) into <paramref name="stage"/>, spread over
    /// <paramref name="threads"/> threads (a constant at each call: 4 + 4 chunks per thread for the group of 256, 32 + 32 for
    /// one producer warp).
    /// </summary>
    private static void CopyTile<TOps>(ref TOps ops, ArrayView<ushort> shared, ArrayView<ushort> k, ArrayView<ushort> v, TensorCoreAttentionPointers pointers,
        long kRow0, int lk, int tile, int stage, int thread, int threads)
        where TOps : struct, IAttentionWgmmaOps
    {
        const int Chunks = D / 8;
        int k0 = tile * BlockK;
        for (int i = 0; i < BlockK * Chunks / threads; i++)
        {
            int c = thread + (i * threads);
            int key = c / Chunks;
            int chunk = c - (key * Chunks);
            bool inside = key < lk - k0;
            long element = inside ? ((kRow0 + k0 + key) * D) + (chunk * 8) : 0;
            ops.CopyChunk(shared, KByte(stage, key, chunk), k, element, pointers.K, inside ? 8 : 0);
            ops.CopyChunk(shared, VByte(stage, key, chunk), v, element, pointers.V, inside ? 8 : 0);
        }
    }
}

/// <summary>The warpgroup operations as inline PTX: cp.async, fence.proxy.async, wgmma (sm_90a).</summary>
internal struct PtxAttentionWgmmaOps : IAttentionWgmmaOps
{
    private uint sharedBase;

    public void Begin(int thread)
    {
        // Emitted in the kernel's entry block, so the declarations precede every use in the PTX text.
        CudaAsm.Emit(AttentionWgmmaKernels.DeclareRegisters);
        Output<uint> raw = default;
        CudaAsm.EmitRef("mov.u32 %0, __dyn_shared_alloca;", ref raw);

        // The 128-byte swizzle applies to absolute addresses: the launch requests 1 KB more to align the base up.
        sharedBase = (raw.Value + (WgmmaGemmKernels.SwizzleAlignment - 1)) & ~(uint)(WgmmaGemmKernels.SwizzleAlignment - 1);
    }

    public readonly uint SharedBase() => sharedBase;

    public readonly void CopyChunk(ArrayView<ushort> shared, int sharedByte, ArrayView<ushort> source, long sourceElement, long sourcePointer, int valid) =>
        // The GEMM's cp.async helper adds its own (zero) shared base to the absolute shared address given here.
        default(PtxTensorCoreOps).CopyChunk(shared, (int)(sharedBase + (uint)sharedByte), default, sourceElement, sourcePointer, valid, 1);

    public readonly void CommitCopies() => default(PtxTensorCoreOps).Commit();

    public readonly void WaitCopies() => default(PtxTensorCoreOps).Wait(0);

    public readonly void FenceProxy() => CudaAsm.Emit("fence.proxy.async.shared::cta;");

    public readonly void InitBarriers(uint barriers, int thread) => CudaAsm.Emit(AttentionWgmmaKernels.InitBarriers, barriers, thread);

    public readonly void WaitFull(uint barrier, int parity) => CudaAsm.Emit(AttentionWgmmaKernels.WaitBarrier, barrier, parity);

    public readonly void WaitEmpty(uint barrier, int parity) => CudaAsm.Emit(AttentionWgmmaKernels.WaitBarrier, barrier, parity);

    public readonly void ArriveFull(uint barrier) => CudaAsm.Emit(AttentionWgmmaKernels.ArriveBarrier, barrier);

    public readonly void OtherProducersTile()
    {
    }

    public readonly void ArriveEmpty(uint barrier, int lane) => CudaAsm.Emit(AttentionWgmmaKernels.ArriveBarrierLane0, barrier, lane);

    public readonly void SyncOrder(int id) => CudaAsm.Emit("bar.sync %0, 256;", id);

    public readonly void ArriveOrder(int id) => CudaAsm.Emit("bar.arrive %0, 256;", id);

    public readonly void Scores(ArrayView<ushort> shared, long qDescriptor, long kDescriptor, int bf16, int thread)
    {
        if (bf16 != 0)
        {
            CudaAsm.Emit(AttentionWgmmaKernels.ScoresBf16, qDescriptor, kDescriptor);
        }
        else
        {
            CudaAsm.Emit(AttentionWgmmaKernels.ScoresF16, qDescriptor, kDescriptor);
        }
    }

    public readonly void WaitMultiplies() => CudaAsm.Emit(AttentionWgmmaKernels.WaitAll);

    public readonly void Softmax(float scaleLog2, int limitLo, int limitHi, int bf16, int thread)
    {
        if (bf16 != 0)
        {
            CudaAsm.Emit(AttentionWgmmaKernels.SoftmaxBf16, scaleLog2, limitLo, limitHi);
        }
        else
        {
            CudaAsm.Emit(AttentionWgmmaKernels.SoftmaxF16, scaleLog2, limitLo, limitHi);
        }
    }

    public readonly void Accumulate(ArrayView<ushort> shared, long vDescriptor, int bf16, int thread)
    {
        if (bf16 != 0)
        {
            CudaAsm.Emit(AttentionWgmmaKernels.AccumulateBf16, vDescriptor);
        }
        else
        {
            CudaAsm.Emit(AttentionWgmmaKernels.AccumulateF16, vDescriptor);
        }
    }

    public readonly void Store(ArrayView<ushort> output, long outputPointer, long elementLo, long elementHi, int bf16)
    {
        long lo = elementLo >= 0 ? outputPointer + (elementLo * 2) : 0;
        long hi = elementHi >= 0 ? outputPointer + (elementHi * 2) : 0;
        if (bf16 != 0)
        {
            CudaAsm.Emit(AttentionWgmmaKernels.StoreBf16, lo, hi);
        }
        else
        {
            CudaAsm.Emit(AttentionWgmmaKernels.StoreF16, lo, hi);
        }
    }
}

/// <summary>
/// The warpgroup operations emulated one thread at a time from the PTX ISA's definitions: a thread computes exactly the
/// accumulator elements it owns (row 16 · warp + lane / 4 (+8), column 8 · block + 2 · (lane mod 4) (+1)); the shared
/// operands through <see cref="EmulatedWgmmaOps"/>' descriptor decoding (the GEMM's), the register A operand of P·V
/// from the scratch of the lane of its warp that holds each A-fragment element. Copies are synchronous, waits no-ops.
/// </summary>
internal struct EmulatedAttentionWgmmaOps : IAttentionWgmmaOps
{
    /// <summary>Floats of scratch per thread: outputs, scores, weight high and low parts, row maxima and sums.</summary>
    public const int FloatsPerThread = RowSlot + 4;

    private const int ScoreSlot = AttentionWgmmaKernels.OutputAccumulators;
    private const int HighSlot = ScoreSlot + AttentionWgmmaKernels.ScoreAccumulators;
    private const int LowSlot = HighSlot + AttentionWgmmaKernels.ScoreAccumulators;
    private const int RowSlot = LowSlot + AttentionWgmmaKernels.ScoreAccumulators;

    /// <summary><see cref="FloatsPerThread"/> floats for every thread of every group.</summary>
    public ArrayView<float> Scratch;

    private long groupBase;
    private long scratchBase;

    public void Begin(int thread)
    {
        long group = ((((long)Grid.IdxZ * Grid.DimY) + Grid.IdxY) * Grid.DimX) + Grid.IdxX;
        groupBase = group * Group.DimX * FloatsPerThread;
        scratchBase = groupBase + ((long)thread * FloatsPerThread);
        EmulatedAttentionSoftmax.Begin(Scratch, scratchBase, AttentionWgmmaKernels.OutputAccumulators, scratchBase + RowSlot);
    }

    public readonly uint SharedBase() => 0;

    public readonly void CopyChunk(ArrayView<ushort> shared, int sharedByte, ArrayView<ushort> source, long sourceElement, long sourcePointer, int valid) =>
        TensorCoreGemmKernels.CopyChunkScalar(shared, sharedByte, source, sourceElement, valid);

    public readonly void CommitCopies()
    {
    }

    public readonly void WaitCopies()
    {
    }

    public readonly void FenceProxy()
    {
    }

    public readonly void InitBarriers(uint barriers, int thread)
    {
    }

    /// <summary>
    /// The simulator's group threads may not spin on shared memory safely, so the "full" handshake is a group barrier
    /// on both sides, one per tile for every thread: the owning producer warp's arrival for tile t (the other producer
    /// warps' <see cref="OtherProducersTile"/>) and the consumers' wait for it. Copies are synchronous, so between two of
    /// these barriers the producer writes tile t + 1 while the consumers read tile t (and, in ping-pong order, V of tile
    /// t − 1): different stages, and "empty" needs no wait.
    /// </summary>
    public readonly void WaitFull(uint barrier, int parity) => Group.Barrier();

    public readonly void WaitEmpty(uint barrier, int parity)
    {
    }

    public readonly void ArriveFull(uint barrier) => Group.Barrier();

    public readonly void OtherProducersTile() => Group.Barrier();

    public readonly void ArriveEmpty(uint barrier, int lane)
    {
    }

    public readonly void SyncOrder(int id)
    {
    }

    public readonly void ArriveOrder(int id)
    {
    }

    public readonly void Scores(ArrayView<ushort> shared, long qDescriptor, long kDescriptor, int bf16, int thread)
    {
        int lane = thread & 31;
        int rowBase = (((thread >> 5) & 3) * 16) + (lane >> 2);
        for (int r = 0; r < AttentionWgmmaKernels.ScoreAccumulators; r++)
        {
            int row = rowBase + (((r >> 1) & 1) * 8);
            int col = ((r >> 2) * 8) + (2 * (lane & 3)) + (r & 1);
            float sum = 0f;
            for (int step = 0; step < AttentionWgmmaKernels.D / 16; step++)
            {
                long qd = qDescriptor + AttentionWgmmaKernels.QAdvance(step);
                long kd = kDescriptor + AttentionWgmmaKernels.KAdvance(step);
                for (int kk = 0; kk < 16; kk++)
                {
                    sum += GpuMath.Load16(shared[EmulatedWgmmaOps.KMajorByte(qd, row, kk) >> 1], bf16) * GpuMath.Load16(shared[EmulatedWgmmaOps.KMajorByte(kd, col, kk) >> 1], bf16);
                }
            }

            Scratch[scratchBase + ScoreSlot + r] = sum;
        }
    }

    public readonly void WaitMultiplies()
    {
    }

    public readonly void Softmax(float scaleLog2, int limitLo, int limitHi, int bf16, int thread)
    {
        long s = scratchBase + ScoreSlot;
        Mask(s, scaleLog2, limitLo, limitHi);
        float alphaLo = EmulatedAttentionSoftmax.RowUpdate(Scratch, s, scratchBase + RowSlot, 0, AttentionWgmmaKernels.ScoreAccumulators);
        float alphaHi = EmulatedAttentionSoftmax.RowUpdate(Scratch, s, scratchBase + RowSlot, 1, AttentionWgmmaKernels.ScoreAccumulators);
        EmulatedAttentionSoftmax.Rescale(Scratch, scratchBase, AttentionWgmmaKernels.OutputAccumulators, alphaLo, alphaHi);
        EmulatedAttentionSoftmax.SplitWeights(Scratch, s, scratchBase + HighSlot, scratchBase + LowSlot, AttentionWgmmaKernels.ScoreAccumulators, bf16);

        // Every lane's weights are in place before the warp's other lanes gather their A fragments.
        Warp.Barrier();
    }

    /// <summary>Scores at <paramref name="s"/> times <paramref name="scaleLog2"/>, -∞ at key offsets at or past the row's limit.</summary>
    private readonly void Mask(long s, float scaleLog2, int limitLo, int limitHi)
    {
        for (int j = 0; j < AttentionWgmmaKernels.ScoreAccumulators; j++)
        {
            int limit = ((j >> 1) & 1) == 0 ? limitLo : limitHi;
            float x = Scratch[s + j] * scaleLog2;
            Scratch[s + j] = limit > ((j >> 2) * 8) + (j & 1) ? x : GpuMath.NegInf;
        }
    }

    public readonly void Accumulate(ArrayView<ushort> shared, long vDescriptor, int bf16, int thread)
    {
        int lane = thread & 31;
        long warpBase = groupBase + ((long)(thread & ~31) * FloatsPerThread);
        for (int r = 0; r < AttentionWgmmaKernels.OutputAccumulators; r++)
        {
            int row = (lane >> 2) + (((r >> 1) & 1) * 8);
            int col = ((r >> 2) * 8) + (2 * (lane & 3)) + (r & 1);
            float sum = 0f;
            for (int step = 0; step < AttentionWgmmaKernels.BlockK / 16; step++)
            {
                long vd = vDescriptor + (step * AttentionWgmmaKernels.VAdvance);
                for (int kk = 0; kk < 16; kk++)
                {
                    int j = EmulatedAttentionSoftmax.WeightFragment(row, kk, step);
                    long at = warpBase + ((long)EmulatedAttentionSoftmax.WeightHolder(row, kk) * FloatsPerThread);
                    float high = GpuMath.Load16((ushort)Scratch[at + HighSlot + j], bf16);
                    float low = GpuMath.Load16((ushort)Scratch[at + LowSlot + j], bf16);
                    float bv = GpuMath.Load16(shared[EmulatedWgmmaOps.MnMajorByte(vd, kk, col) >> 1], bf16);
                    sum += (high * bv) + (low * bv);
                }
            }

            Scratch[scratchBase + r] += sum;
        }

        // The next tile's weights overwrite these only after every lane has read them.
        Warp.Barrier();
    }

    public readonly void Store(ArrayView<ushort> output, long outputPointer, long elementLo, long elementHi, int bf16) =>
        EmulatedAttentionSoftmax.StoreNormalized(Scratch, scratchBase, scratchBase + RowSlot, AttentionWgmmaKernels.D / 8, output, elementLo, elementHi, bf16);
}
