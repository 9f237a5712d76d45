using System;
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

    /// <summary>
    /// The running source operand of <see cref="CopyAt"/> for element <paramref name="sourceElement"/> of the tensor at
    /// <paramref name="sourcePointer"/>: its byte address on the GPU (cp.async takes raw addresses), the element index in
    /// the emulation. Steps through the tensor are <see cref="SourceUnit"/> times elements.
    /// </summary>
    long SourceAt(long sourcePointer, long sourceElement);

    /// <summary>Source units per element: 2 (bytes) on the GPU, 1 (elements) in the emulation.</summary>
    int SourceUnit { get; }

    /// <summary>
    /// Copies one 16-byte chunk from <paramref name="source"/> at <paramref name="sourceAt"/> (a <see cref="SourceAt"/>
    /// value) to the shared address <paramref name="sharedAddress"/> (<see cref="SharedBase"/> + byte).
    /// </summary>
    void CopyAt(ArrayView<ushort> shared, uint sharedAddress, ArrayView<ushort> source, long sourceAt);

    /// <summary>As <see cref="CopyAt"/>, or zeros when <paramref name="valid"/> is 0 (<paramref name="sourceAt"/> must then still be a safe address).</summary>
    void CopyAtOrZeros(ArrayView<ushort> shared, uint sharedAddress, ArrayView<ushort> source, long sourceAt, int valid);

    /// <summary>Closes the group of copies issued so far.</summary>
    void CommitCopies();

    /// <summary>Waits until every committed copy group has landed.</summary>
    void WaitCopies();

    /// <summary>Orders this thread's completed shared-memory writes before later reads by the async proxy (wgmma).</summary>
    void FenceProxy();

    /// <summary>
    /// S = Q·Kᵀ for the warpgroup's 64 rows and the key tile (eight k16 wgmma, one commit group); the descriptors as their
    /// low words (the high word is <see cref="AttentionWgmmaKernels.DescriptorHigh"/>).
    /// </summary>
    void Scores(ArrayView<ushort> shared, uint qDescriptor, uint kDescriptor, int bf16, int thread);

    /// <summary>Waits until no wgmma group of this warpgroup is pending.</summary>
    void WaitMultiplies();

    /// <summary>
    /// The online-softmax step on this thread's scores: times <paramref name="scaleLog2"/>, key offsets ≥
    /// <paramref name="limitLo"/> (row g) / <paramref name="limitHi"/> (row g + 8) from the lane's first key hidden
    /// (only when <paramref name="masked"/> is non-zero: the caller passes 0 for a tile below every row's limits), row
    /// maxima and partial sums, rescale of the outputs, weights as high + low 16-bit A fragments.
    /// </summary>
    void Softmax(float scaleLog2, int limitLo, int limitHi, int masked, int bf16, int thread);

    /// <summary>O += P·V (P from the weight registers, high and low parts; V MN-major in shared memory; the descriptor's low word), one commit group.</summary>
    void Accumulate(ArrayView<ushort> shared, uint vDescriptor, int bf16, int thread);

    /// <summary>Sums the quad's row sums and stores O / l rounded to 16 bits at elements <paramref name="elementLo"/> (row g) and <paramref name="elementHi"/> (row g + 8); -1 skips a row.</summary>
    void Store(ArrayView<ushort> output, long outputPointer, long elementLo, long elementHi, int bf16);

    /// <summary>
    /// Sums the quad's partial row sums and stores a split's partial of rows g (<paramref name="partLo"/>) and g + 8
    /// (<paramref name="partHi"/>) in the decode combine's layout: the unnormalized outputs at partial · D + 2t, and from
    /// the lane with t = 0 (m, l) at 2 · partial, m in natural-log units; -1 skips a row.
    /// </summary>
    void StorePartial(ArrayView<float> partO, ArrayView<float> partML, PrefillSplit split, long partLo, long partHi, int t);
}

/// <summary>
/// The key ranges of a split tensor-core prefill (<see cref="AttentionWgmmaKernels.Attention16WgmmaSplit{TFormat}"/>,
/// <see cref="AttentionTensorCoreKernels.Attention16TensorCoreRegistersSplit{TDimQuads}"/>): each group takes
/// <see cref="Keys"/> keys of one of <see cref="Count"/> ranges and writes a partial per query row for the decode combine.
/// </summary>
internal struct PrefillSplit
{
    /// <summary>Keys per range, a multiple of the kernel's key tile.</summary>
    public int Keys;

    /// <summary>Ranges per query block.</summary>
    public int Count;

    /// <summary>Device address of the partial outputs (float32, D per partial).</summary>
    public long PartO;

    /// <summary>Device address of the partial statistics (float32 (m, l) pairs).</summary>
    public long PartML;
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
/// (Lk edge, causal diagonal) is a per-element select, never a per-element branch (only tiles that reach some row's
/// limit run the selects: a group-uniform choice), and a warpgroup whose rows are all above a tile's diagonal still
/// multiplies it (its weights are 0; one tile in 2 · (query block + 1)).
/// Causal is top-left, longest query blocks first; grouped-query heads read kv head h / (Heads / KvHeads); a row with no
/// visible key gives zeros; NaN propagates. Grid: (⌈Lq / 128⌉, heads, batch). The split kernels
/// (<see cref="Attention16WgmmaSplit{TFormat}"/>) give each group one range of keys of a non-causal call and write a
/// partial per query row for the decode combine, for calls whose query blocks alone would leave SMs idle.
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

    /// <summary>Keys between a thread's consecutive chunks of one K / V tile (256 threads, 16 chunks per key).</summary>
    public const int ChunkKeys = GroupSize / (D / 8);

    /// <summary>Shared bytes between a thread's consecutive chunks (16 keys: same key mod 8, so the same swizzle) in K and in V.</summary>
    public const uint ChunkSharedStep = ChunkKeys * RowBytes;

    /// <summary>
    /// A stage's V descriptor low word minus its K descriptor's: V starts <see cref="KBytes"/> later, and its leading
    /// offset (between 64-column blocks) is <see cref="KvHalfBytes"/> where K-major's is 16 bytes.
    /// </summary>
    public const uint KToVDescriptor = (KBytes >> 4) + ((uint)((KvHalfBytes >> 4) - 1) << 16);

    /// <summary>The wgmma prefill through inline PTX for one format (CUDA, compute capability 9.0: loaded as sm_90a by <see cref="Sm90aPtx"/>).</summary>
    [IlgpuKernel]
    [IlgpuKernelVariant(typeof(PrefillBf16))]
    [IlgpuKernelVariant(typeof(PrefillF16))]
    public static void Attention16Wgmma<TFormat>(ArrayView<ushort> q, ArrayView<ushort> k, ArrayView<ushort> v, ArrayView<ushort> output,
        AttentionShape s, TensorCoreAttentionPointers pointers)
        where TFormat : struct, IPrefillFormat
    {
        var ops = default(PtxAttentionWgmmaOps);
        Body(ref ops, q, k, v, output, default, default, s, pointers, default, splitting: false, default(TFormat).Bf16);
    }

    /// <summary>The body with wgmma emulated thread by thread (registers in <paramref name="scratch"/>), for the CPU accelerator with 32-thread warps.</summary>
    [IlgpuKernel(SimulatorOnly = true)]
    public static void Attention16WgmmaEmulated(ArrayView<ushort> q, ArrayView<ushort> k, ArrayView<ushort> v, ArrayView<ushort> output,
        ArrayView<float> scratch, AttentionShape s, int bf16)
    {
        var ops = new EmulatedAttentionWgmmaOps { Scratch = scratch };
        Body(ref ops, q, k, v, output, default, default, s, default, default, splitting: false, bf16);
    }

    /// <summary>
    /// The wgmma prefill over key ranges (non-causal, no mask): grid (⌈lq / <see cref="BlockQ"/>⌉ · ranges, heads, batch),
    /// each group one query block over one range of <paramref name="split"/>, writing a partial per query row (row
    /// (batch · heads + head) · lq + query, partial row · ranges + range) for the decode combine. For calls with fewer query
    /// blocks than SMs, whose groups would each walk every key alone.
    /// </summary>
    [IlgpuKernel]
    [IlgpuKernelVariant(typeof(PrefillBf16))]
    [IlgpuKernelVariant(typeof(PrefillF16))]
    public static void Attention16WgmmaSplit<TFormat>(ArrayView<ushort> q, ArrayView<ushort> k, ArrayView<ushort> v,
        AttentionShape s, TensorCoreAttentionPointers pointers, PrefillSplit split)
        where TFormat : struct, IPrefillFormat
    {
        var ops = default(PtxAttentionWgmmaOps);
        Body(ref ops, q, k, v, default, default, default, s, pointers, split, splitting: true, default(TFormat).Bf16);
    }

    /// <summary><see cref="Attention16WgmmaSplit{TFormat}"/> with wgmma emulated (<see cref="Attention16WgmmaEmulated"/>); the partials in views.</summary>
    [IlgpuKernel(SimulatorOnly = true)]
    public static void Attention16WgmmaSplitEmulated(ArrayView<ushort> q, ArrayView<ushort> k, ArrayView<ushort> v, ArrayView<float> partO, ArrayView<float> partML,
        ArrayView<float> scratch, AttentionShape s, PrefillSplit split, int bf16)
    {
        var ops = new EmulatedAttentionWgmmaOps { Scratch = scratch };
        Body(ref ops, q, k, v, default, partO, partML, s, default, split, splitting: true, bf16);
    }

    /// <summary>
    /// Launch shape: (⌈lq / <see cref="BlockQ"/>⌉, heads, batch) groups of <see cref="GroupSize"/> threads with
    /// <see cref="SharedBytes"/> of dynamic shared memory.
    /// </summary>
    public static KernelConfig Config(int batch, int heads, int lq) => new(
        new Index3D((lq + BlockQ - 1) / BlockQ, heads, batch),
        new Index3D(GroupSize, 1, 1),
        SharedMemoryConfig.RequestDynamic<ushort>(SharedBytes / sizeof(ushort)));

    /// <summary>Launch shape of <see cref="Attention16WgmmaSplit{TFormat}"/>: <see cref="Config"/> with <paramref name="ranges"/> groups per query block.</summary>
    public static KernelConfig SplitConfig(int batch, int heads, int lq, int ranges) => new(
        new Index3D(((lq + BlockQ - 1) / BlockQ) * ranges, heads, batch),
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

    /// <summary>The Q descriptor (K-major) of warpgroup <paramref name="warpgroup"/>'s 64 rows, step 0.</summary>
    public static long QDescriptor(uint sharedBase, int warpgroup) => WgmmaGemmKernels.Descriptor(sharedBase + (uint)(warpgroup * 64 * RowBytes), 16, AtomBytes);

    /// <summary>The K descriptor (K-major, keys as N) of <paramref name="stage"/>, step 0.</summary>
    public static long KDescriptor(uint sharedBase, int stage) => WgmmaGemmKernels.Descriptor(sharedBase + (uint)StageOffset(stage), 16, AtomBytes);

    /// <summary>The V descriptor (MN-major: 64-column blocks <see cref="KvHalfBytes"/> apart, 8-key groups one atom apart) of <paramref name="stage"/>, step 0.</summary>
    public static long VDescriptor(uint sharedBase, int stage) => WgmmaGemmKernels.Descriptor(sharedBase + (uint)(StageOffset(stage) + KBytes), KvHalfBytes, AtomBytes);

    /// <summary>
    /// The kernel body. Without <paramref name="splitting"/> (a constant of each kernel, so the other path folds away) the
    /// group's query block walks every key and writes <paramref name="output"/>; with it, one range of
    /// <paramref name="split"/> (non-causal only) as a call whose keys start there, and writes partials.
    /// </summary>
    internal static void Body<TOps>(ref TOps ops, ArrayView<ushort> q, ArrayView<ushort> k, ArrayView<ushort> v, ArrayView<ushort> output,
        ArrayView<float> partO, ArrayView<float> partML, AttentionShape s, TensorCoreAttentionPointers pointers, PrefillSplit split, bool splitting, int bf16)
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
        int block = splitting ? Grid.IdxX / split.Count : Grid.IdxX;
        int range = splitting ? Grid.IdxX - (block * split.Count) : 0;
        int qBlock = s.Causal != 0 ? Grid.DimX - 1 - block : block;
        int q0 = qBlock * BlockQ;
        int h = Grid.IdxY;
        int batch = Grid.IdxZ;
        int kvh = h / (s.Heads / s.KvHeads);
        int kStart = range * split.Keys;
        int keys = splitting ? Math.Min(split.Keys, s.Lk - kStart) : s.Lk;
        long qRow0 = ((((long)batch * s.Heads) + h) * s.Lq) + q0;
        long kRow0 = ((((long)batch * s.KvHeads) + kvh) * s.Lk) + kStart;
        int kEnd = s.Causal != 0 && q0 + BlockQ < keys ? q0 + BlockQ : keys;
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

        // The copy plan: chunk c = thread + 256·i of a key tile is head-dimension chunk thread mod 16 of key thread / 16 + 16·i,
        // so i only moves the key by 16 (same key mod 8, so the same swizzle): every per-chunk and per-tile quantity is a
        // base computed here plus a constant (ILGPU keeps div, mod and the 64-bit index math inside the loop otherwise).
        int copyKey = thread >> 4;
        int copyChunk = thread & (Chunks - 1);
        long copyElement = ((kRow0 + copyKey) * D) + (copyChunk * 8);
        long kAt = ops.SourceAt(pointers.K, copyElement);
        long vAt = ops.SourceAt(pointers.V, copyElement);
        long kSafe = ops.SourceAt(pointers.K, 0);
        long vSafe = ops.SourceAt(pointers.V, 0);
        uint kShared = sharedBase + (uint)KByte(0, copyKey, copyChunk);
        uint vShared = sharedBase + (uint)VByte(0, copyKey, copyChunk);
        long tileStep = (long)ops.SourceUnit * BlockK * D;
        if (tiles > 0)
        {
            CopyTile(ref ops, shared, k, v, kAt, vAt, kSafe, vSafe, kShared, vShared, keys, copyKey);
        }

        ops.CommitCopies();

        int queryLo = q0 + (warpgroup * 64) + (((thread >> 5) & 3) * 16) + g;
        int limitLo = s.Causal != 0 && queryLo + 1 < keys ? queryLo + 1 : keys;
        int limitHi = s.Causal != 0 && queryLo + 9 < keys ? queryLo + 9 : keys;
        float scaleLog2 = s.Scale * Log2E;
        // Low words only: the high words are the same constant for every descriptor (the asm supplies it), so ptxas moves
        // 32-bit values and adds instead of 64-bit ones per k16 step.
        uint qDescriptor = (uint)QDescriptor(sharedBase, warpgroup);

        // Running values, all updated at the end of an iteration: ILGPU places a loop-invariant expression next to its use
        // (inside the loop) unless it is a loop-carried value, and (t + 1) mod 3 on a signed int costs a dozen
        // instructions per use. nextOffset: the stage of tile t + 1 (bytes from stage 0); kDescriptor: tile t's K
        // descriptor (a descriptor's address field is the address / 16 below 2^14, so a stage moves it by its offset / 16;
        // V's is K's plus a constant); maskLo / maskHi: the rows' key limits relative to the lane's first key of tile t.
        uint kDescriptor = (uint)KDescriptor(sharedBase, 0);
        int nextOffset = StageBytes;
        int maskLo = limitLo - (2 * t);
        int maskHi = limitHi - (2 * t);

        // Keys below every row's limit from tile t's first key on (the group's smallest limit is its first row's):
        // tiles wholly below it skip the mask (the branch is uniform over the group, after the scores' wait).
        int clearKeys = s.Causal != 0 && q0 + 1 < keys ? q0 + 1 : keys;
        int keysLeft = keys;
        for (int tile = 0; tile < tiles; tile++)
        {
            ops.WaitCopies();
            ops.FenceProxy();
            Group.Barrier();
            keysLeft -= BlockK;
            kAt += tileStep;
            vAt += tileStep;
            if (tile + 1 < tiles)
            {
                CopyTile(ref ops, shared, k, v, kAt, vAt, kSafe, vSafe, kShared + (uint)nextOffset, vShared + (uint)nextOffset, keysLeft, copyKey);
            }

            ops.CommitCopies();
            ops.Scores(shared, qDescriptor, kDescriptor, bf16, thread);
            ops.WaitMultiplies();
            ops.Softmax(scaleLog2, maskLo, maskHi, clearKeys < BlockK ? 1 : 0, bf16, thread);
            ops.Accumulate(shared, kDescriptor + KToVDescriptor, bf16, thread);
            kDescriptor = nextOffset == 0 ? kDescriptor - ((Stages - 1) * StageBytes >> 4) : kDescriptor + (StageBytes >> 4);
            nextOffset = nextOffset == (Stages - 1) * StageBytes ? 0 : nextOffset + StageBytes;
            maskLo -= BlockK;
            maskHi -= BlockK;
            clearKeys -= BlockK;
        }

        ops.WaitMultiplies();
        long rowLo = qRow0 - q0 + queryLo;
        if (splitting)
        {
            long partLo = queryLo < s.Lq ? (rowLo * split.Count) + range : -1;
            long partHi = queryLo + 8 < s.Lq ? ((rowLo + 8) * split.Count) + range : -1;
            ops.StorePartial(partO, partML, split, partLo, partHi, t);
        }
        else
        {
            long elementLo = queryLo < s.Lq ? (rowLo * D) + (2 * t) : -1;
            long elementHi = queryLo + 8 < s.Lq ? ((rowLo + 8) * D) + (2 * t) : -1;
            ops.Store(output, pointers.Output, elementLo, elementHi, bf16);
        }
    }

    /// <summary>
    /// Requests K and V of one key tile (zeros past Lk) from this thread's chunk-0 sources <paramref name="kAt"/> /
    /// <paramref name="vAt"/> to its chunk-0 shared addresses of the tile's stage: 4 + 4 chunks, 16 keys apart.
    /// <paramref name="keysLeft"/> is Lk minus the tile's first key (uniform over the group).
    /// </summary>
    private static void CopyTile<TOps>(ref TOps ops, ArrayView<ushort> shared, ArrayView<ushort> k, ArrayView<ushort> v, long kAt, long vAt, long kSafe, long vSafe,
        uint kShared, uint vShared, int keysLeft, int copyKey)
        where TOps : struct, IAttentionWgmmaOps
    {
        // Unrolled by hand: ILGPU does not unroll the loop, and its counter would keep the constant steps out of the shared
        // address immediates.
        long step = (long)ops.SourceUnit * ChunkKeys * D;
        if (keysLeft >= BlockK)
        {
            // Every key of the tile exists (all tiles but an Lk edge): no per-chunk select.
            ops.CopyAt(shared, kShared, k, kAt);
            ops.CopyAt(shared, vShared, v, vAt);
            ops.CopyAt(shared, kShared + ChunkSharedStep, k, kAt + step);
            ops.CopyAt(shared, vShared + ChunkSharedStep, v, vAt + step);
            ops.CopyAt(shared, kShared + (2 * ChunkSharedStep), k, kAt + (2 * step));
            ops.CopyAt(shared, vShared + (2 * ChunkSharedStep), v, vAt + (2 * step));
            ops.CopyAt(shared, kShared + (3 * ChunkSharedStep), k, kAt + (3 * step));
            ops.CopyAt(shared, vShared + (3 * ChunkSharedStep), v, vAt + (3 * step));
        }
        else
        {
            int left = keysLeft - copyKey;
            CopyKv(ref ops, shared, k, v, kAt, vAt, kSafe, vSafe, kShared, vShared, left > 0);
            CopyKv(ref ops, shared, k, v, kAt + step, vAt + step, kSafe, vSafe, kShared + ChunkSharedStep, vShared + ChunkSharedStep, left > ChunkKeys);
            CopyKv(ref ops, shared, k, v, kAt + (2 * step), vAt + (2 * step), kSafe, vSafe, kShared + (2 * ChunkSharedStep), vShared + (2 * ChunkSharedStep), left > 2 * ChunkKeys);
            CopyKv(ref ops, shared, k, v, kAt + (3 * step), vAt + (3 * step), kSafe, vSafe, kShared + (3 * ChunkSharedStep), vShared + (3 * ChunkSharedStep), left > 3 * ChunkKeys);
        }
    }

    /// <summary>One K and one V chunk; a key past Lk copies zeros from the tensors' first element (a safe address).</summary>
    private static void CopyKv<TOps>(ref TOps ops, ArrayView<ushort> shared, ArrayView<ushort> k, ArrayView<ushort> v, long kAt, long vAt, long kSafe, long vSafe,
        uint kShared, uint vShared, bool inside)
        where TOps : struct, IAttentionWgmmaOps
    {
        ops.CopyAtOrZeros(shared, kShared, k, inside ? kAt : kSafe, inside ? 8 : 0);
        ops.CopyAtOrZeros(shared, vShared, v, inside ? vAt : vSafe, inside ? 8 : 0);
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

    public readonly long SourceAt(long sourcePointer, long sourceElement) => sourcePointer + (sourceElement * 2);

    public readonly int SourceUnit => 2;

    public readonly void CopyAt(ArrayView<ushort> shared, uint sharedAddress, ArrayView<ushort> source, long sourceAt) =>
        // No source-size operand: ptxas emits the plain copy (no zero-fill predicate); constant shared steps become immediates.
        CudaAsm.Emit("{\n\t.reg .u64 tcsrc;\n\tcvta.to.global.u64 tcsrc, %1;\n\tcp.async.cg.shared.global [%0], [tcsrc], 16;\n\t}", sharedAddress, sourceAt);

    public readonly void CopyAtOrZeros(ArrayView<ushort> shared, uint sharedAddress, ArrayView<ushort> source, long sourceAt, int valid) =>
        CudaAsm.Emit("{\n\t.reg .u64 tcsrc;\n\tcvta.to.global.u64 tcsrc, %1;\n\tcp.async.cg.shared.global [%0], [tcsrc], 16, %2;\n\t}", sharedAddress, sourceAt, (uint)(valid * 2));

    public readonly void CommitCopies() => default(PtxTensorCoreOps).Commit();

    public readonly void WaitCopies() => default(PtxTensorCoreOps).Wait(0);

    public readonly void FenceProxy() => CudaAsm.Emit("fence.proxy.async.shared::cta;");

    public readonly void Scores(ArrayView<ushort> shared, uint qDescriptor, uint kDescriptor, int bf16, int thread)
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

    public readonly void Softmax(float scaleLog2, int limitLo, int limitHi, int masked, int bf16, int thread)
    {
        if (masked != 0)
        {
            CudaAsm.Emit(AttentionWgmmaKernels.ScaleMaskScores, scaleLog2, limitLo, limitHi);
        }
        else
        {
            CudaAsm.Emit(AttentionWgmmaKernels.ScaleScores, scaleLog2);
        }

        if (bf16 != 0)
        {
            CudaAsm.Emit(AttentionWgmmaKernels.SoftmaxBf16);
        }
        else
        {
            CudaAsm.Emit(AttentionWgmmaKernels.SoftmaxF16);
        }
    }

    public readonly void Accumulate(ArrayView<ushort> shared, uint vDescriptor, int bf16, int thread)
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

    public readonly void StorePartial(ArrayView<float> partO, ArrayView<float> partML, PrefillSplit split, long partLo, long partHi, int t)
    {
        long oLo = partLo >= 0 ? split.PartO + (((partLo * AttentionWgmmaKernels.D) + (2 * t)) * sizeof(float)) : 0;
        long oHi = partHi >= 0 ? split.PartO + (((partHi * AttentionWgmmaKernels.D) + (2 * t)) * sizeof(float)) : 0;
        long mlLo = partLo >= 0 && t == 0 ? split.PartML + (partLo * 2 * sizeof(float)) : 0;
        long mlHi = partHi >= 0 && t == 0 ? split.PartML + (partHi * 2 * sizeof(float)) : 0;
        CudaAsm.Emit(AttentionWgmmaKernels.StorePartial, oLo, oHi, mlLo, mlHi);
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
        groupBase = group * AttentionWgmmaKernels.GroupSize * FloatsPerThread;
        scratchBase = groupBase + ((long)thread * FloatsPerThread);
        EmulatedAttentionSoftmax.Begin(Scratch, scratchBase, AttentionWgmmaKernels.OutputAccumulators, scratchBase + RowSlot);
    }

    public readonly uint SharedBase() => 0;

    public readonly void CopyChunk(ArrayView<ushort> shared, int sharedByte, ArrayView<ushort> source, long sourceElement, long sourcePointer, int valid) =>
        TensorCoreGemmKernels.CopyChunkScalar(shared, sharedByte, source, sourceElement, valid);

    public readonly long SourceAt(long sourcePointer, long sourceElement) => sourceElement;

    public readonly int SourceUnit => 1;

    public readonly void CopyAt(ArrayView<ushort> shared, uint sharedAddress, ArrayView<ushort> source, long sourceAt) =>
        TensorCoreGemmKernels.CopyChunkScalar(shared, (int)sharedAddress, source, sourceAt, 8);

    public readonly void CopyAtOrZeros(ArrayView<ushort> shared, uint sharedAddress, ArrayView<ushort> source, long sourceAt, int valid) =>
        TensorCoreGemmKernels.CopyChunkScalar(shared, (int)sharedAddress, source, sourceAt, valid);

    public readonly void CommitCopies()
    {
    }

    public readonly void WaitCopies()
    {
    }

    public readonly void FenceProxy()
    {
    }

    public readonly void Scores(ArrayView<ushort> shared, uint qDescriptor, uint kDescriptor, int bf16, int thread)
    {
        long qFull = Full(qDescriptor);
        long kFull = Full(kDescriptor);
        int lane = thread & 31;
        int rowBase = (((thread >> 5) & 3) * 16) + (lane >> 2);
        for (int r = 0; r < AttentionWgmmaKernels.ScoreAccumulators; r++)
        {
            int row = rowBase + (((r >> 1) & 1) * 8);
            int col = ((r >> 2) * 8) + (2 * (lane & 3)) + (r & 1);
            float sum = 0f;
            for (int step = 0; step < AttentionWgmmaKernels.D / 16; step++)
            {
                long qd = qFull + AttentionWgmmaKernels.QAdvance(step);
                long kd = kFull + AttentionWgmmaKernels.KAdvance(step);
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

    public readonly void Softmax(float scaleLog2, int limitLo, int limitHi, int masked, int bf16, int thread)
    {
        long s = scratchBase + ScoreSlot;

        // An unmasked tile gets the scale only, as on the GPU: a wrong skip decision shows as a wrong output here.
        Mask(s, scaleLog2, masked != 0 ? limitLo : int.MaxValue, masked != 0 ? limitHi : int.MaxValue);
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

    public readonly void Accumulate(ArrayView<ushort> shared, uint vDescriptor, int bf16, int thread)
    {
        long vFull = Full(vDescriptor);
        int lane = thread & 31;
        long warpBase = groupBase + ((long)(thread & ~31) * FloatsPerThread);
        for (int r = 0; r < AttentionWgmmaKernels.OutputAccumulators; r++)
        {
            int row = (lane >> 2) + (((r >> 1) & 1) * 8);
            int col = ((r >> 2) * 8) + (2 * (lane & 3)) + (r & 1);
            float sum = 0f;
            for (int step = 0; step < AttentionWgmmaKernels.BlockK / 16; step++)
            {
                long vd = vFull + (step * AttentionWgmmaKernels.VAdvance);
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

    /// <summary>The whole descriptor from its low word, as the asm rebuilds it.</summary>
    private static long Full(uint low) => ((long)AttentionWgmmaKernels.DescriptorHigh << 32) | low;

    public readonly void Store(ArrayView<ushort> output, long outputPointer, long elementLo, long elementHi, int bf16) =>
        EmulatedAttentionSoftmax.StoreNormalized(Scratch, scratchBase, scratchBase + RowSlot, AttentionWgmmaKernels.D / 8, output, elementLo, elementHi, bf16);

    public readonly void StorePartial(ArrayView<float> partO, ArrayView<float> partML, PrefillSplit split, long partLo, long partHi, int t) =>
        EmulatedAttentionSoftmax.StorePartial(Scratch, scratchBase, scratchBase + RowSlot, AttentionWgmmaKernels.D, partO, partML, partLo, partHi, t);
}
