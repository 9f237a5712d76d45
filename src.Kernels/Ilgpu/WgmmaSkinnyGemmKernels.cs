using System;
using ILGPU;
using ILGPU.Runtime;
using ILGPU.Runtime.Cuda;

namespace GemsInjector.Kernels.Ilgpu;

/// <summary>
/// The warpgroup operations of the small-M wgmma GEMM (<see cref="WgmmaSkinnyGemmKernels"/>): inline PTX on an H100 /
/// H200 (<see cref="PtxWgmmaSkinnyOps"/>), an emulation from the descriptors on ILGPU's CPU accelerator (<see cref="EmulatedWgmmaSkinnyOps"/>).
/// </summary>
internal interface IWgmmaSkinnyOps
{
    /// <summary>Declares and zeroes the accumulators and finds the 1024-byte aligned shared base (first statement of the kernel).</summary>
    void Begin(int thread);

    /// <summary>The shared-window address of stage byte 0 (1024-byte aligned on the GPU; 0 in the emulation).</summary>
    uint SharedBase();

    /// <summary>
    /// When <paramref name="issue"/> is not 0, copies one 16-byte chunk to shared address <paramref name="sharedAddress"/>
    /// (<see cref="SharedBase"/> + byte): <paramref name="bytes"/> 16 reads it from global byte address
    /// <paramref name="address"/> of <paramref name="source"/> (whose element 0 lies at <paramref name="sourcePointer"/>),
    /// 0 writes zeros and reads nothing.
    /// </summary>
    void CopyChunk(ArrayView<ushort> shared, uint sharedAddress, ArrayView<ushort> source, long sourcePointer, long address, int bytes, int issue);

    /// <summary>Closes the group of asynchronous copies issued so far.</summary>
    void CommitCopies();

    /// <summary>Waits until at most <see cref="WgmmaSkinnyGemmKernels.Stages"/> − 2 committed copy groups are in flight.</summary>
    void WaitCopies();

    /// <summary>Orders this thread's completed shared-memory writes before later reads by the async proxy (wgmma).</summary>
    void FenceProxy();

    /// <summary>One 64-deep stage: four k16 wgmma m64n<paramref name="columns"/> (128 or 64) from the two descriptors, committed as one group.</summary>
    void Multiply(ArrayView<ushort> shared, long aDescriptor, long bDescriptor, int transposeB, int bf16, int columns, int thread);

    /// <summary>Waits until no committed wgmma group is in flight.</summary>
    void WaitMultiplies();

    /// <summary>
    /// After the last multiply and a group barrier: makes the accumulators readable by <see cref="Pair"/> (the GPU form
    /// stores them to the thread's own <see cref="WgmmaSkinnyGemmKernels.AccumulatorStrideOf"/> bytes of the idle ring).
    /// </summary>
    void StageAccumulators(ArrayView<ushort> shared, int thread, int columns);

    /// <summary>Accumulators <paramref name="register"/> and <paramref name="register"/> + 1 (<paramref name="register"/> even).</summary>
    Float2 Pair(ArrayView<ushort> shared, int thread, int register, int columns);
}

/// <summary>
/// 16-bit products with M ≤ 64 rows (decode and small prefill batches) on Hopper's <c>wgmma.mma_async</c> (sm_90a,
/// float32 accumulation). These are weight-read bound: the kernel's job is to keep enough weight bytes in flight on
/// every SM. A group is one warpgroup (128 threads) computing all M rows of a 128-column tile of C with one m64n128
/// accumulator set (64 float32 per thread); rows ≥ M of the A stage are zero-filled once per stage and never stored.
/// K goes through a ring of <see cref="Stages"/> 64-deep stages (A [64][64] 8 KB, B 16 KB, the big
/// kernel's 128-byte-swizzled canonical layouts and descriptors: <see cref="WgmmaGemmKernels.KRowByte"/>,
/// <see cref="WgmmaGemmKernels.MnByte"/>, <see cref="WgmmaGemmKernels.Descriptor"/>) filled by cp.async three
/// tiles ahead, two groups per SM. Grid: (⌈N/128⌉, 1, batch or splits); split-K only as far as fills the SMs
/// (<see cref="WgmmaSkinnyLaunch.PlanSplitK"/>), its float32 partials summed in a fixed chunk order by a second launch
/// (<see cref="HalfGemvKernels.GemvReduce16"/>). Run 23 on the H200 kept this form only: an eight-stage ring and
/// partials summed in the kernel by the last group of each column tile were both slower (docs/perf/h100-notes-tensor-core.md, Attempt 6).
/// By default (<c>GEMS_SPLITK_REDUCE</c> unset or <c>cluster</c>) the n64 plans of 2, 4 or 8 splits sum in a thread-block cluster instead
/// (<see cref="Gemm16WgmmaSkinnyN64Cluster{TOperands, TClusterSize}"/>, Attempt 9), and n64 plans of up to 16 rows with another
/// split count sum in their own launch (<see cref="Gemm16WgmmaSkinnyN64Tickets{TOperands}"/>, Attempt 17).
/// Same shape rules and epilogue as <see cref="WgmmaGemmKernels"/>: K % 8 == 0, 16-byte aligned a and b, N % 8 == 0
/// for a [K, N] b (<see cref="TensorCoreShape.AsyncCopy"/>); alpha · sum + beta · bias, one rounding.
/// </summary>
internal static partial class WgmmaSkinnyGemmKernels
{
    /// <summary>Rows of C per group (the wgmma's m64): every row of the products this kernel takes.</summary>
    public const int BlockM = 64;

    /// <summary>Columns of C per group (the wgmma's n128).</summary>
    public const int BlockN = 128;

    /// <summary>K per shared stage.</summary>
    public const int BlockK = WgmmaGemmKernels.BlockK;

    /// <summary>Threads per group: one warpgroup.</summary>
    public const int GroupSize = 128;

    /// <summary>Bytes of one stage row (64 elements).</summary>
    public const int RowBytes = WgmmaGemmKernels.RowBytes;

    /// <summary>Bytes of an A stage ([64][64]).</summary>
    public const int AStageBytes = BlockM * RowBytes;

    /// <summary>Bytes of a B stage ([128][64], or two MN-major [64][64] column blocks).</summary>
    public const int BStageBytes = BlockN * RowBytes;

    /// <summary>Bytes of one stage (A, then B): a multiple of the swizzle's 1024 bytes.</summary>
    public const int StageBytes = AStageBytes + BStageBytes;

    /// <summary>Shared stages: three K tiles are requested ahead of the one multiplied (97 KB, two groups per SM).</summary>
    public const int Stages = 4;

    /// <summary>Bytes between two threads' accumulators staged in shared for the epilogue (64 floats + 16: conflict-free 16-byte stores).</summary>
    public const int AccumulatorStride = (Accumulators * 4) + 16;

    /// <summary>Dynamic shared bytes a launch requests: the ring plus room to align the base up to 1024 bytes.</summary>
    public const int SharedBytes = (Stages * StageBytes) + WgmmaGemmKernels.SwizzleAlignment;

    /// <summary>
    /// Columns of C per group of the n64 variant (wgmma m64n64, the default): twice the column
    /// tiles of <see cref="BlockN"/> from the same weight, so more groups stream weight without more split-K partials.
    /// </summary>
    public const int BlockNNarrow = 64;

    /// <summary>Bytes of one stage of a <paramref name="columns"/>-column tile (A [64][64], then B [columns][64]).</summary>
    public static int StageBytesOf(int columns) => AStageBytes + (columns * RowBytes);

    /// <summary>float32 accumulators per thread of a <paramref name="columns"/>-column tile (m64 × columns over 128 threads).</summary>
    public static int AccumulatorsOf(int columns) => columns / 2;

    /// <summary>Bytes between two threads' staged accumulators: the thread's floats + 16 (an odd count of 16-byte units).</summary>
    public static int AccumulatorStrideOf(int columns) => (AccumulatorsOf(columns) * 4) + 16;

    /// <summary>Dynamic shared bytes of a <paramref name="columns"/>-column launch: the ring plus the alignment room.</summary>
    public static int SharedBytesOf(int columns) => (Stages * StageBytesOf(columns)) + WgmmaGemmKernels.SwizzleAlignment;

    /// <summary>
    /// The kernel through inline PTX for one format and B layout (<typeparamref name="TOperands"/>, matching the shape's
    /// Bf16 and TransposeB). CUDA, compute capability 9.0 only (sm_90a).
    /// </summary>
    [IlgpuKernel]
    [IlgpuKernelVariant(typeof(Bf16KMajorB))]
    [IlgpuKernelVariant(typeof(Bf16MnMajorB))]
    [IlgpuKernelVariant(typeof(F16KMajorB))]
    [IlgpuKernelVariant(typeof(F16MnMajorB))]
    public static void Gemm16WgmmaSkinny<TOperands>(ArrayView<ushort> a, ArrayView<ushort> b, ArrayView<ushort> bias, ArrayView<ushort> c, ArrayView<float> partial,
        TensorCoreShape s)
        where TOperands : struct, IWgmmaOperands
    {
        var ops = default(PtxWgmmaSkinnyOps);
        var cluster = default(NoClusterSum);
        Body(ref ops, ref cluster, a, b, bias, c, partial, s, default(TOperands).TransposeB, default(TOperands).Bf16, BlockN);
    }

    /// <summary>
    /// The n64 variant of <see cref="Gemm16WgmmaSkinny{TOperands}"/>: the same body with 64-column tiles (wgmma
    /// m64n64, 32 accumulators, a 64 KB ring): the default; <c>GEMS_TC_SMALLM_VARIANT=n128</c> selects the wide tiles.
    /// </summary>
    [IlgpuKernel]
    [IlgpuKernelVariant(typeof(Bf16KMajorB))]
    [IlgpuKernelVariant(typeof(Bf16MnMajorB))]
    [IlgpuKernelVariant(typeof(F16KMajorB))]
    [IlgpuKernelVariant(typeof(F16MnMajorB))]
    public static void Gemm16WgmmaSkinnyN64<TOperands>(ArrayView<ushort> a, ArrayView<ushort> b, ArrayView<ushort> bias, ArrayView<ushort> c, ArrayView<float> partial,
        TensorCoreShape s)
        where TOperands : struct, IWgmmaOperands
    {
        var ops = default(PtxWgmmaSkinnyOps);
        var cluster = default(NoClusterSum);
        Body(ref ops, ref cluster, a, b, bias, c, partial, s, default(TOperands).TransposeB, default(TOperands).Bf16, BlockNNarrow);
    }

    /// <summary>
    /// The n64 kernel with its splits summed in the same launch (<see cref="WgmmaSkinnyLaunch.SumsSplitsInLaunch"/>: by
    /// default plans of up to 16 rows whose split count is no cluster size, such as the 6 of the 16-bit down projection):
    /// every group writes its split's float32 partials as <see cref="Gemm16WgmmaSkinnyN64{TOperands}"/> does, then takes
    /// its column tile's ticket, and the group
    /// that takes the last one sums the tile (<see cref="SplitKReduction.FinishTileVectors"/>: every split of a 4-column
    /// vector requested before the first add) with the launched reduce's order and epilogue, so C has the bits of the
    /// kernel followed by <see cref="HalfGemvKernels.GemvReduce16"/>, without the second launch. Grid as the n64 kernel's
    /// split plans: (⌈N/64⌉, 1, splits); needs N % 4 = 0 and 16-byte aligned partials.
    /// </summary>
    [IlgpuKernel]
    [IlgpuKernelVariant(typeof(Bf16KMajorB))]
    [IlgpuKernelVariant(typeof(Bf16MnMajorB))]
    [IlgpuKernelVariant(typeof(F16KMajorB))]
    [IlgpuKernelVariant(typeof(F16MnMajorB))]
    public static void Gemm16WgmmaSkinnyN64Tickets<TOperands>(ArrayView<ushort> a, ArrayView<ushort> b, ArrayView<ushort> bias, ArrayView<ushort> c,
        ArrayView<float> partial, ArrayView<int> tickets, TensorCoreShape s)
        where TOperands : struct, IWgmmaOperands
    {
        var ops = default(PtxWgmmaSkinnyOps);
        var cluster = default(NoClusterSum);
        Body(ref ops, ref cluster, a, b, bias, c, partial, s, default(TOperands).TransposeB, default(TOperands).Bf16, BlockNNarrow);
        SplitKReduction.FinishTileVectors(tickets, Grid.IdxX, partial, bias, c, TensorCoreLaunch.ReduceShape(s), Grid.IdxX * BlockNNarrow, BlockNNarrow, s.Bf16);
    }

    /// <summary>
    /// The n64 kernel with its splits summed in a thread-block cluster (the default; <c>GEMS_SPLITK_REDUCE=launch</c> turns it off,
    /// <see cref="ClusterReduction"/>): grid (⌈N/64⌉, <typeparamref name="TClusterSize"/> splits, 1), clusters 1 ×
    /// splits × 1, so the splits of one column tile are the groups of one cluster (rank = Grid.IdxY = split). Each group
    /// writes its float32 tile (64 rows × 64 columns, rows padded by 16 bytes: <see cref="ClusterTileBytes"/>) into its own
    /// ring, past the accumulator staging, once the last stage is consumed (no extra shared memory: three groups per SM
    /// as the n64 kernel); after a cluster barrier each group sums its slice of the tile over every rank in split order
    /// with the launched reduce's epilogue (<see cref="ClusterReduction.Finish16Summed{TCluster}"/>), so C has the same bits as
    /// <see cref="Gemm16WgmmaSkinnyN64{TOperands}"/> + <see cref="HalfGemvKernels.GemvReduce16"/>; no partials, no second launch.
    /// Needs N % 4 = 0 (a tile vector all inside N or all outside).
    /// </summary>
    [IlgpuKernel]
    [IlgpuKernelVariant(typeof(Bf16KMajorB), typeof(Const2))]
    [IlgpuKernelVariant(typeof(Bf16MnMajorB), typeof(Const2))]
    [IlgpuKernelVariant(typeof(F16KMajorB), typeof(Const2))]
    [IlgpuKernelVariant(typeof(F16MnMajorB), typeof(Const2))]
    [IlgpuKernelVariant(typeof(Bf16KMajorB), typeof(Const4))]
    [IlgpuKernelVariant(typeof(Bf16MnMajorB), typeof(Const4))]
    [IlgpuKernelVariant(typeof(F16KMajorB), typeof(Const4))]
    [IlgpuKernelVariant(typeof(F16MnMajorB), typeof(Const4))]
    [IlgpuKernelVariant(typeof(Bf16KMajorB), typeof(Const8))]
    [IlgpuKernelVariant(typeof(Bf16MnMajorB), typeof(Const8))]
    [IlgpuKernelVariant(typeof(F16KMajorB), typeof(Const8))]
    [IlgpuKernelVariant(typeof(F16MnMajorB), typeof(Const8))]
    public static void Gemm16WgmmaSkinnyN64Cluster<TOperands, TClusterSize>(ArrayView<ushort> a, ArrayView<ushort> b, ArrayView<ushort> bias, ArrayView<ushort> c,
        TensorCoreShape s)
        where TOperands : struct, IWgmmaOperands
        where TClusterSize : struct, IKernelConstant
    {
        var ops = default(PtxWgmmaSkinnyOps);
        // The tile lies past every thread's accumulator staging in the aligned ring, so a thread may publish while its
        // neighbours still read back their own staged accumulators (no barrier between the two).
        var cluster = PtxClusterReducePadded<TClusterSize>.Begin(WgmmaGemmKernels.SwizzleAlignment, ClusterTileOffsetOf(BlockNNarrow), ClusterRowShiftOf(BlockNNarrow));
        Body(ref ops, ref cluster, a, b, bias, c, default, s, default(TOperands).TransposeB, default(TOperands).Bf16, BlockNNarrow);
    }

    /// <summary>
    /// The cluster form of the small-M body on ILGPU's CPU accelerator, which runs no clusters (<see cref="EmulatedClusterReduce"/>:
    /// the tile through <paramref name="partial"/> and one ticket per column tile, the last group of the tile summing every
    /// rank's slice with the code the GPU runs per rank); grid (⌈N/<paramref name="columns"/>⌉, splits, 1) as the PTX form.
    /// </summary>
    [IlgpuKernel(SimulatorOnly = true)]
    public static void Gemm16WgmmaSkinnyClusterEmulated(ArrayView<ushort> a, ArrayView<ushort> b, ArrayView<ushort> bias, ArrayView<ushort> c, ArrayView<float> partial,
        ArrayView<int> tickets, ArrayView<float> scratch, TensorCoreShape s, int columns)
    {
        var ops = new EmulatedWgmmaSkinnyOps { Scratch = scratch };
        var cluster = new EmulatedClusterSum
        {
            Inner = new EmulatedClusterReduce { Partial = partial, Tickets = tickets, Ticket = Grid.IdxX, M = s.M, N = s.N, Splits = s.SplitK },
        };
        Body(ref ops, ref cluster, a, b, bias, c, default, s, s.TransposeB, s.Bf16, columns);
    }

    /// <summary>
    /// <see cref="Gemm16WgmmaSkinnyN64Tickets{TOperands}"/> on ILGPU's CPU accelerator: the same body with wgmma emulated
    /// (<see cref="Gemm16WgmmaSkinnyEmulated"/>) and the same in-launch sum of the splits.
    /// </summary>
    [IlgpuKernel(SimulatorOnly = true)]
    public static void Gemm16WgmmaSkinnyTicketsEmulated(ArrayView<ushort> a, ArrayView<ushort> b, ArrayView<ushort> bias, ArrayView<ushort> c, ArrayView<float> partial,
        ArrayView<int> tickets, ArrayView<float> scratch, TensorCoreShape s, int columns)
    {
        var ops = new EmulatedWgmmaSkinnyOps { Scratch = scratch };
        var cluster = default(NoClusterSum);
        Body(ref ops, ref cluster, a, b, bias, c, partial, s, s.TransposeB, s.Bf16, columns);
        SplitKReduction.FinishTileVectors(tickets, Grid.IdxX, partial, bias, c, TensorCoreLaunch.ReduceShape(s), Grid.IdxX * columns, columns, s.Bf16);
    }

    /// <summary>
    /// Bytes of the cluster form's float32 tile at <paramref name="columns"/> columns: 64 rows of columns · 4 bytes plus a
    /// 16-byte pad each (<see cref="PtxClusterReducePadded{TSize}"/>).
    /// </summary>
    public static int ClusterTileBytesOf(int columns) => BlockM * ((columns * sizeof(float)) + 16);

    /// <summary>
    /// Byte offset of the cluster tile from the aligned ring base: past every thread's accumulator staging
    /// (<see cref="AccumulatorStrideOf"/>), so a thread may publish while others still read back their own staged accumulators.
    /// </summary>
    public static int ClusterTileOffsetOf(int columns) => GroupSize * AccumulatorStrideOf(columns);

    /// <summary>log2 of the cluster tile's 4-column vectors per row at <paramref name="columns"/> columns (64: 4, 128: 5).</summary>
    public static int ClusterRowShiftOf(int columns) => columns == BlockN ? 5 : 4;

    /// <summary>The n64 cluster tile's bytes (17 KB; with the 18 KB of staging it lies inside the 64 KB ring).</summary>
    public const int ClusterTileBytes = BlockM * ((BlockNNarrow * sizeof(float)) + 16);

    /// <summary>
    /// The same body with wgmma emulated thread by thread (<see cref="WgmmaSkinnyLaunch.EmulationScratch"/> floats of
    /// <paramref name="scratch"/>), for ILGPU's CPU accelerator with 32-thread warps; <paramref name="columns"/> is the tile width (<see cref="BlockN"/> or <see cref="BlockNNarrow"/>).
    /// </summary>
    [IlgpuKernel(SimulatorOnly = true)]
    public static void Gemm16WgmmaSkinnyEmulated(ArrayView<ushort> a, ArrayView<ushort> b, ArrayView<ushort> bias, ArrayView<ushort> c, ArrayView<float> partial,
        ArrayView<float> scratch, TensorCoreShape s, int columns)
    {
        var ops = new EmulatedWgmmaSkinnyOps { Scratch = scratch };
        var cluster = default(NoClusterSum);
        Body(ref ops, ref cluster, a, b, bias, c, partial, s, s.TransposeB, s.Bf16, columns);
    }

    /// <summary>Byte offset of stage <paramref name="stage"/>'s A tile (<paramref name="columns"/>-column tiles).</summary>
    public static int AStageOffset(int stage, int columns = BlockN) => stage * StageBytesOf(columns);

    /// <summary>Byte offset of stage <paramref name="stage"/>'s B tile (<paramref name="columns"/>-column tiles).</summary>
    public static int BStageOffset(int stage, int columns = BlockN) => (stage * StageBytesOf(columns)) + AStageBytes;

    /// <summary>The A descriptor at stage <paramref name="stage"/>, k16 step 0 (K-major, 8-row atoms 1024 bytes apart).</summary>
    public static long ADescriptor(uint sharedBase, int stage, int columns = BlockN) =>
        WgmmaGemmKernels.Descriptor(sharedBase + (uint)AStageOffset(stage, columns), 16, WgmmaGemmKernels.AtomBytes);

    /// <summary>
    /// The B descriptor at stage <paramref name="stage"/>, k16 step 0: K-major for a [N, K] b, MN-major (64-column blocks
    /// 8 KB apart; a 64-column tile is one block) for a [K, N] b.
    /// </summary>
    public static long BDescriptor(uint sharedBase, int stage, int transposeB, int columns = BlockN) =>
        WgmmaGemmKernels.Descriptor(sharedBase + (uint)BStageOffset(stage, columns), transposeB != 0 ? 16 : WgmmaGemmKernels.MnBlockBytes, WgmmaGemmKernels.AtomBytes);

    /// <summary>
    /// The kernel body shared by the PTX and emulated operations (<paramref name="transposeB"/> and <paramref name="bf16"/>
    /// are constants in each PTX instantiation). Split-K groups store float32 partials for
    /// <see cref="HalfGemvKernels.GemvReduce16"/>; otherwise the epilogue is applied here.
    /// </summary>
    /// <remarks>
    /// Staging: thread t copies 16-byte chunk t mod 8 of A rows t / 8 + 16 i (i &lt; 4) and, for a [N, K] b, of B rows
    /// t / 8 + 16 i (i &lt; 8); for a [K, N] b, columns 8 · (t mod 16) .. of k-rows t / 16 + 8 i. Chunks of rows ≥ M
    /// (A) or ≥ N (B) hold zeros in every stage from the prologue on and are never requested again, so a 2-row product
    /// issues 2 of A's 64 row copies per stage; chunks past K are zero-filled per tile (the stage held other data).
    /// Ring of S stages, tiles 0 .. S − 2 requested up front, one commit group per tile (empty past the last). Iteration
    /// t: cp.async.wait_group S − 2 (tile t landed for this thread), wgmma.wait_group 0 (tile t − 1's wgmma done),
    /// fence to the async proxy, barrier (both for every thread); then tile t + S − 1 is requested into stage
    /// (t − 1) mod S, which only tile t − 1's finished wgmma read; then tile t's wgmma are issued and left running over
    /// the next iteration's copy wait. The multiply is tiny next to a stage's bytes (64 × 128 × 64 per 24 KB), so the
    /// wait 0 costs nothing, and S − 1 tiles stay in flight: 3 × 16 KB of weight per group at four stages (two groups
    /// per SM).
    /// <paramref name="columns"/> (a constant in each PTX kernel) is the tile width: <see cref="BlockN"/>, or
    /// <see cref="BlockNNarrow"/> for the n64 variant, where B has 4 chunks per thread ([N, K]: rows t / 8 + 16 i;
    /// [K, N]: columns 8 · (t mod 8) .. of k-rows t / 8 + 16 i, one MN-major 64-column block), the stage is 16 KB and
    /// the accumulators 32 per thread.
    /// </remarks>
    internal static void Body<TOps, TCluster>(ref TOps ops, ref TCluster cluster, ArrayView<ushort> a, ArrayView<ushort> b, ArrayView<ushort> bias, ArrayView<ushort> c,
        ArrayView<float> partial, TensorCoreShape s, int transposeB, int bf16, int columns)
        where TOps : struct, IWgmmaSkinnyOps
        where TCluster : struct, IClusterSum
    {
        int thread = Group.IdxX;
        ops.Begin(thread);
        var shared = SharedMemory.GetDynamic<ushort>();
        uint sharedBase = ops.SharedBase();
        int n0 = Grid.IdxX * columns;
        int stageBytes = StageBytesOf(columns);
        int bChunks = columns == BlockN ? 8 : 4;
        bool split = s.SplitK > 1;
        long batch = split ? 0 : Grid.IdxZ;
        // The cluster form launches its splits on Grid.Y (the axis its cluster marker names), the others on Grid.Z.
        int kSplit = split ? (cluster.Enabled ? Grid.IdxY : Grid.IdxZ) : 0;
        int kStart = kSplit * s.KChunk;
        int kLength = s.K - kStart < s.KChunk ? s.K - kStart : s.KChunk;
        int tiles = (kLength + BlockK - 1) / BlockK;

        // The thread's chunks (see remarks), worked out once: shared byte, global byte address at tile 0, the byte steps
        // from chunk to chunk and from tile to tile, how many chunks lie inside M / N, and the k of chunk 0 (K edge).
        int row = thread >> 3;
        int chunk = thread & 7;
        var plan = default(ChunkPlan);
        plan.AShared = WgmmaGemmKernels.KRowByte(row, chunk);
        long aFrom = s.APointer + (((batch * s.BatchA) + ((long)row * s.K) + kStart + (chunk * 8)) * 2);
        plan.ARows = RowsInside(s.M - row, 16);
        plan.AStep = 16L * s.K * 2;
        plan.AK = kStart + (chunk * 8);
        long bFrom;
        long bTileStep;
        if (transposeB != 0)
        {
            plan.BShared = WgmmaGemmKernels.KRowByte(row, chunk);
            bFrom = s.BPointer + (((batch * s.BatchB) + ((long)(n0 + row) * s.K) + kStart + (chunk * 8)) * 2);
            int bRows = RowsInside(s.N - n0 - row, 16);
            plan.BRows = columns == BlockN || bRows < bChunks ? bRows : bChunks;
            plan.BStep = 16L * s.K * 2;
            bTileStep = BlockK * 2;
            plan.BK = kStart + (chunk * 8);
        }
        else
        {
            // 16 chunks of 8 columns per k-row (8 for n64): k-rows 8 (16) apart between a thread's chunks.
            int kRow = columns == BlockN ? thread >> 4 : thread >> 3;
            int nChunk = columns == BlockN ? thread & 15 : thread & 7;
            int col = n0 + (nChunk * 8);
            plan.BShared = WgmmaGemmKernels.MnByte(kRow, nChunk);
            bFrom = s.BPointer + (((batch * s.BatchB) + ((long)(kStart + kRow) * s.N) + (col < s.N ? col : 0)) * 2);
            plan.BRows = col < s.N ? bChunks : 0;
            plan.BStep = (columns == BlockN ? 8L : 16L) * s.N * 2;
            bTileStep = (long)BlockK * s.N * 2;
            plan.BK = kStart + kRow;
        }

        // Zeros, once, in every stage's chunks that no tile will request (rows ≥ M of A, rows or columns ≥ N of B);
        // they complete with the first commit group, before tile 0's wgmma.
        for (int stage = 0; stage < Stages; stage++)
        {
            ZeroStage(ref ops, shared, a, b, s, transposeB, columns, sharedBase + (uint)(stage * stageBytes), plan);
        }

        // Tiles whose 64 k all lie inside the group's K range take the copy without K tests; only the last (partial)
        // tile, if any, tests each chunk's k.
        int fullTiles = kLength / BlockK;
        long aNext = aFrom;
        long bNext = bFrom;
        for (int ahead = 0; ahead < Stages - 1; ahead++)
        {
            if (ahead < tiles)
            {
                uint stageAt = sharedBase + (uint)(ahead * stageBytes);
                if (ahead < fullTiles)
                {
                    LoadStage(ref ops, shared, a, b, s, transposeB, columns, true, false, stageAt, ahead * BlockK, plan, aNext, bNext);
                }
                else
                {
                    LoadStage(ref ops, shared, a, b, s, transposeB, columns, false, false, stageAt, ahead * BlockK, plan, aNext, bNext);
                }

                aNext += BlockK * 2;
                bNext += bTileStep;
            }

            ops.CommitCopies();
        }

        for (int tile = 0; tile < tiles; tile++)
        {
            ops.WaitCopies();
            ops.WaitMultiplies();
            ops.FenceProxy();
            Group.Barrier();
            int next = tile + Stages - 1;
            if (next < tiles)
            {
                uint stageAt = sharedBase + (uint)((next & (Stages - 1)) * stageBytes);
                if (next < fullTiles)
                {
                    // Threads whose eight B chunks all lie inside N (every thread when N is a multiple of 128) skip
                    // the eight issue tests: ptxas keeps no predicates across the loop, so each would cost an ISETP.
                    if (plan.BRows == bChunks)
                    {
                        LoadStage(ref ops, shared, a, b, s, transposeB, columns, true, true, stageAt, next * BlockK, plan, aNext, bNext);
                    }
                    else
                    {
                        LoadStage(ref ops, shared, a, b, s, transposeB, columns, true, false, stageAt, next * BlockK, plan, aNext, bNext);
                    }
                }
                else
                {
                    LoadStage(ref ops, shared, a, b, s, transposeB, columns, false, false, stageAt, next * BlockK, plan, aNext, bNext);
                }

                aNext += BlockK * 2;
                bNext += bTileStep;
            }

            ops.CommitCopies();
            int current = tile & (Stages - 1);
            ops.Multiply(shared, ADescriptor(sharedBase, current, columns), BDescriptor(sharedBase, current, transposeB, columns), transposeB, bf16, columns, thread);
        }

        ops.WaitMultiplies();

        // Every warp past its wgmma wait before any thread stages accumulators over the ring (StageAccumulators):
        // the last tile's stage may lie under another warp's slice.
        Group.Barrier();

        // D fragment of m64nNk16: register r holds row 16 · warp + lane / 4 (+8 when bit 1 of r is set), column
        // 8 · (r / 4) + 2 · (lane mod 4) + (r mod 2). The accumulators come back through shared, so the register index
        // may vary at run time (an asm output per register kept them in local memory) and the loop stays a loop.
        ops.StageAccumulators(shared, thread, columns);
        int lane = thread & 31;
        int warp = thread >> 5;
        int r0 = (warp * 16) + (lane >> 2);
        if (cluster.Enabled)
        {
            PublishToCluster(ref ops, ref cluster, shared, bias, c, s, thread, lane, r0, n0, columns);
            return;
        }

        int c0 = n0 + (2 * (lane & 3));
        long cBase = batch * s.BatchC;
        for (int half = 0; half < 2; half++)
        {
            int r = r0 + (half * 8);
            if (r >= s.M)
            {
                continue;
            }

            for (int block = 0; block < AccumulatorsOf(columns) / 4; block++)
            {
                int col = c0 + (block * 8);
                if (col < s.N)
                {
                    var v = ops.Pair(shared, thread, (block * 4) + (half * 2), columns);
                    TensorCoreGemmKernels.StorePair(c, partial, bias, s, batch, cBase, split, kSplit, r, col, v.X, v.Y);
                }
            }
        }
    }

    /// <summary>
    /// The cluster form's epilogue: the group's float32 tile published as row-major 4-column vectors, then its slice
    /// summed over the cluster (<see cref="ClusterReduction.Finish16Summed{TCluster}"/>). Each thread holds two adjacent columns
    /// of rows r0 and r0 + 8 per 8-column block (the D fragment); lanes 2j and 2j + 1 of a row group swap one pair, so the
    /// even lane owns columns 4j .. 4j + 3 of row r0 and the odd lane those of row r0 + 8: one 16-byte publish each per
    /// block. Rows past M are published too (the slices never read them), so every lane takes part in every shuffle.
    /// </summary>
    private static void PublishToCluster<TOps, TCluster>(ref TOps ops, ref TCluster cluster, ArrayView<ushort> shared, ArrayView<ushort> bias, ArrayView<ushort> c,
        TensorCoreShape s, int thread, int lane, int r0, int n0, int columns)
        where TOps : struct, IWgmmaSkinnyOps
        where TCluster : struct, IClusterSum
    {
        int rowVectors = columns >> 2;
        bool odd = (lane & 1) != 0;
        int row = r0 + (odd ? 8 : 0);
        int col = (((lane & 3) >> 1) * 4);
        for (int block = 0; block < AccumulatorsOf(columns) / 4; block++)
        {
            var top = ops.Pair(shared, thread, block * 4, columns);
            var bottom = ops.Pair(shared, thread, (block * 4) + 2, columns);

            // The even lane sends its row r0 + 8 pair and takes its partner's row r0 pair; the odd lane the other way round.
            var send = odd ? top : bottom;
            float x = Warp.ShuffleXor(send.X, 1);
            float y = Warp.ShuffleXor(send.Y, 1);
            var v = odd ? new Float4 { X = x, Y = y, Z = bottom.X, W = bottom.Y } : new Float4 { X = top.X, Y = top.Y, Z = x, W = y };
            int tileCol = (block * 8) + col;
            cluster.Publish((row * rowVectors) + (tileCol >> 2), row, n0 + tileCol, v);
        }

        ClusterReduction.Finish16Summed(ref cluster, bias, c, TensorCoreLaunch.ReduceShape(s), 0, BlockM, n0, columns, s.Bf16);
    }

    /// <summary>How many of the rows 0, step, 2 · step, .. are below <paramref name="remaining"/> (0 when none).</summary>
    private static int RowsInside(int remaining, int step) => remaining <= 0 ? 0 : (remaining + step - 1) / step;

    /// <summary>Zeros in one stage's chunks that no tile requests (A chunk i ≥ ARows, B chunk i ≥ BRows): no branch, the copy's predicate.</summary>
    private static void ZeroStage<TOps>(ref TOps ops, ArrayView<ushort> shared, ArrayView<ushort> a, ArrayView<ushort> b, TensorCoreShape s, int transposeB,
        int columns, uint stageAt, ChunkPlan plan)
        where TOps : struct, IWgmmaSkinnyOps
    {
        uint aAt = stageAt + (uint)plan.AShared;
        ops.CopyChunk(shared, aAt, a, s.APointer, s.APointer, 0, plan.ARows <= 0 ? 1 : 0);
        ops.CopyChunk(shared, aAt + (1 * ARowBytes), a, s.APointer, s.APointer, 0, plan.ARows <= 1 ? 1 : 0);
        ops.CopyChunk(shared, aAt + (2 * ARowBytes), a, s.APointer, s.APointer, 0, plan.ARows <= 2 ? 1 : 0);
        ops.CopyChunk(shared, aAt + (3 * ARowBytes), a, s.APointer, s.APointer, 0, plan.ARows <= 3 ? 1 : 0);
        uint bAt = stageAt + (uint)AStageBytes + (uint)plan.BShared;
        uint bRowBytes = transposeB != 0 || columns != BlockN ? BKRowBytes : BMnRowBytes;
        ops.CopyChunk(shared, bAt, b, s.BPointer, s.BPointer, 0, plan.BRows <= 0 ? 1 : 0);
        ops.CopyChunk(shared, bAt + (1 * bRowBytes), b, s.BPointer, s.BPointer, 0, plan.BRows <= 1 ? 1 : 0);
        ops.CopyChunk(shared, bAt + (2 * bRowBytes), b, s.BPointer, s.BPointer, 0, plan.BRows <= 2 ? 1 : 0);
        ops.CopyChunk(shared, bAt + (3 * bRowBytes), b, s.BPointer, s.BPointer, 0, plan.BRows <= 3 ? 1 : 0);
        if (columns != BlockN)
        {
            return;
        }

        ops.CopyChunk(shared, bAt + (4 * bRowBytes), b, s.BPointer, s.BPointer, 0, plan.BRows <= 4 ? 1 : 0);
        ops.CopyChunk(shared, bAt + (5 * bRowBytes), b, s.BPointer, s.BPointer, 0, plan.BRows <= 5 ? 1 : 0);
        ops.CopyChunk(shared, bAt + (6 * bRowBytes), b, s.BPointer, s.BPointer, 0, plan.BRows <= 6 ? 1 : 0);
        ops.CopyChunk(shared, bAt + (7 * bRowBytes), b, s.BPointer, s.BPointer, 0, plan.BRows <= 7 ? 1 : 0);
    }

    /// <summary>Shared bytes between A chunks i and i + 1 (16 rows).</summary>
    private const uint ARowBytes = 16 * RowBytes;

    /// <summary>Shared bytes between B chunks i and i + 1 of a [N, K] b (16 rows), or of a [K, N] b in a 64-column tile (16 k-rows).</summary>
    private const uint BKRowBytes = 16 * RowBytes;

    /// <summary>Shared bytes between B chunks i and i + 1 of a [K, N] b (8 k-rows).</summary>
    private const uint BMnRowBytes = 8 * RowBytes;

    /// <summary>
    /// Requests one K tile (k offset <paramref name="kOffset"/> in the group's range, global byte addresses
    /// <paramref name="aAt"/> / <paramref name="bAt"/> of the thread's chunk 0) into the stage at shared address
    /// <paramref name="stageAt"/>: the thread's chunks inside M and N, written out. <paramref name="full"/> is a constant
    /// at each call: true, every chunk lies inside K (no test); false, a chunk past K is zero-filled from a safe address.
    /// <paramref name="bAll"/> (a constant too): the thread's eight B chunks all lie inside N, issued without a test.
    /// </summary>
    private static void LoadStage<TOps>(ref TOps ops, ArrayView<ushort> shared, ArrayView<ushort> a, ArrayView<ushort> b, TensorCoreShape s, int transposeB, int columns, bool full,
        bool bAll, uint stageAt, int kOffset, ChunkPlan plan, long aAt, long bAt)
        where TOps : struct, IWgmmaSkinnyOps
    {
        // A: one k per thread for all four chunks.
        bool aInside = full | (plan.AK + kOffset < s.K);
        uint aShared = stageAt + (uint)plan.AShared;
        long a1 = aAt + plan.AStep;
        long a2 = a1 + plan.AStep;
        long a3 = a2 + plan.AStep;
        Chunk(ref ops, shared, a, s.APointer, aShared, aAt, aInside, plan.ARows > 0);
        Chunk(ref ops, shared, a, s.APointer, aShared + (1 * ARowBytes), a1, aInside, plan.ARows > 1);
        Chunk(ref ops, shared, a, s.APointer, aShared + (2 * ARowBytes), a2, aInside, plan.ARows > 2);
        Chunk(ref ops, shared, a, s.APointer, aShared + (3 * ARowBytes), a3, aInside, plan.ARows > 3);

        // B: [N, K] one k for all eight (four) chunks; [K, N] chunk i is k-row bK + 8 i (bK + 16 i in a 64-column tile).
        uint bShared = stageAt + (uint)AStageBytes + (uint)plan.BShared;
        uint bRowBytes = transposeB != 0 || columns != BlockN ? BKRowBytes : BMnRowBytes;
        int bk = plan.BK + kOffset;
        int kStep = transposeB != 0 ? 0 : columns == BlockN ? 8 : 16;
        long b1 = bAt + plan.BStep;
        long b2 = b1 + plan.BStep;
        long b3 = b2 + plan.BStep;
        Chunk(ref ops, shared, b, s.BPointer, bShared, bAt, full | (bk < s.K), bAll | (plan.BRows > 0));
        Chunk(ref ops, shared, b, s.BPointer, bShared + (1 * bRowBytes), b1, full | (bk + (1 * kStep) < s.K), bAll | (plan.BRows > 1));
        Chunk(ref ops, shared, b, s.BPointer, bShared + (2 * bRowBytes), b2, full | (bk + (2 * kStep) < s.K), bAll | (plan.BRows > 2));
        Chunk(ref ops, shared, b, s.BPointer, bShared + (3 * bRowBytes), b3, full | (bk + (3 * kStep) < s.K), bAll | (plan.BRows > 3));
        if (columns != BlockN)
        {
            return;
        }

        long b4 = b3 + plan.BStep;
        long b5 = b4 + plan.BStep;
        long b6 = b5 + plan.BStep;
        long b7 = b6 + plan.BStep;
        Chunk(ref ops, shared, b, s.BPointer, bShared + (4 * bRowBytes), b4, full | (bk + (4 * kStep) < s.K), bAll | (plan.BRows > 4));
        Chunk(ref ops, shared, b, s.BPointer, bShared + (5 * bRowBytes), b5, full | (bk + (5 * kStep) < s.K), bAll | (plan.BRows > 5));
        Chunk(ref ops, shared, b, s.BPointer, bShared + (6 * bRowBytes), b6, full | (bk + (6 * kStep) < s.K), bAll | (plan.BRows > 6));
        Chunk(ref ops, shared, b, s.BPointer, bShared + (7 * bRowBytes), b7, full | (bk + (7 * kStep) < s.K), bAll | (plan.BRows > 7));
    }

    /// <summary>One chunk of a tile: copied when <paramref name="issue"/>; zero-filled from the source's first element when not <paramref name="inside"/> K.</summary>
    private static void Chunk<TOps>(ref TOps ops, ArrayView<ushort> shared, ArrayView<ushort> source, long sourcePointer, uint sharedAddress, long address, bool inside, bool issue)
        where TOps : struct, IWgmmaSkinnyOps =>
        ops.CopyChunk(shared, sharedAddress, source, sourcePointer, inside ? address : sourcePointer, inside ? 16 : 0, issue ? 1 : 0);

    /// <summary>
    /// A thread's staging constants (see the remarks of <see cref="Body"/>): shared byte of chunk 0 in a stage, byte
    /// step between its global chunks, chunks inside M / N, k of chunk 0 at tile 0; A and B.
    /// </summary>
    private struct ChunkPlan
    {
        public int AShared;
        public int ARows;
        public long AStep;
        public int AK;
        public int BShared;
        public int BRows;
        public long BStep;
        public int BK;
    }
}

/// <summary>The small-M warpgroup operations as inline PTX: cp.async, fence.proxy.async, wgmma m64n128 (sm_90a).</summary>
internal struct PtxWgmmaSkinnyOps : IWgmmaSkinnyOps
{
    private uint sharedBase;

    // Bytes from the dynamic shared view's start to sharedBase.
    private int alignedOffset;

    public void Begin(int thread)
    {
        // Emitted in the kernel's entry block, so the declaration precedes every use in the PTX text.
        CudaAsm.Emit(WgmmaSkinnyGemmKernels.DeclareAccumulators);
        Output<uint> raw = default;
        CudaAsm.EmitRef("mov.u32 %0, __dyn_shared_alloca;", ref raw);
        sharedBase = (raw.Value + (WgmmaGemmKernels.SwizzleAlignment - 1)) & ~(uint)(WgmmaGemmKernels.SwizzleAlignment - 1);
        alignedOffset = (int)(sharedBase - raw.Value);
    }

    public readonly uint SharedBase() => sharedBase;

    // The issue test is the copy's own predicate, so a skipped chunk costs no branch (ptxas: one predicated LDGSTS).
    public readonly void CopyChunk(ArrayView<ushort> shared, uint sharedAddress, ArrayView<ushort> source, long sourcePointer, long address, int bytes, int issue) =>
        CudaAsm.Emit("{\n\t.reg .u64 wssrc;\n\t.reg .pred wsq;\n\tsetp.ne.s32 wsq, %3, 0;\n\tcvta.to.global.u64 wssrc, %1;\n\t@wsq cp.async.cg.shared.global [%0], [wssrc], 16, %2;\n\t}",
            sharedAddress, address, (uint)bytes, issue);

    public readonly void CommitCopies() => CudaAsm.Emit("cp.async.commit_group;");

    // The immediate is Stages − 2 (the test of the PTX checks it against the constant).
    public readonly void WaitCopies() => CudaAsm.Emit("cp.async.wait_group 2;");

    public readonly void FenceProxy() => CudaAsm.Emit("fence.proxy.async.shared::cta;");

    public readonly void Multiply(ArrayView<ushort> shared, long aDescriptor, long bDescriptor, int transposeB, int bf16, int columns, int thread)
    {
        if (columns != WgmmaSkinnyGemmKernels.BlockN)
        {
            MultiplyNarrow(aDescriptor, bDescriptor, transposeB, bf16);
        }
        else if (bf16 != 0)
        {
            if (transposeB != 0)
            {
                CudaAsm.Emit(WgmmaSkinnyGemmKernels.MultiplyBf16KMajorB, aDescriptor, bDescriptor);
            }
            else
            {
                CudaAsm.Emit(WgmmaSkinnyGemmKernels.MultiplyBf16MnMajorB, aDescriptor, bDescriptor);
            }
        }
        else if (transposeB != 0)
        {
            CudaAsm.Emit(WgmmaSkinnyGemmKernels.MultiplyF16KMajorB, aDescriptor, bDescriptor);
        }
        else
        {
            CudaAsm.Emit(WgmmaSkinnyGemmKernels.MultiplyF16MnMajorB, aDescriptor, bDescriptor);
        }
    }

    public readonly void WaitMultiplies() => CudaAsm.Emit("wgmma.wait_group.sync.aligned 0;");

    public readonly void StageAccumulators(ArrayView<ushort> shared, int thread, int columns)
    {
        uint at = sharedBase + (uint)(thread * WgmmaSkinnyGemmKernels.AccumulatorStrideOf(columns));
        if (columns != WgmmaSkinnyGemmKernels.BlockN)
        {
            CudaAsm.Emit(WgmmaSkinnyGemmKernels.StageAccumulatorsN64, at);
        }
        else
        {
            CudaAsm.Emit(WgmmaSkinnyGemmKernels.StageAccumulators, at);
        }
    }

    // The thread reads back only what it stored itself: program order, no barrier.
    public readonly Float2 Pair(ArrayView<ushort> shared, int thread, int register, int columns) =>
        shared.Cast<Float2>().AsAligned(8)[((alignedOffset + (thread * WgmmaSkinnyGemmKernels.AccumulatorStrideOf(columns))) >> 3) + (register >> 1)];

    // The n64 variant's stage: four k16 wgmma m64n64 over accumulators wsa0..wsa31.
    private static void MultiplyNarrow(long aDescriptor, long bDescriptor, int transposeB, int bf16)
    {
        if (bf16 != 0)
        {
            if (transposeB != 0)
            {
                CudaAsm.Emit(WgmmaSkinnyGemmKernels.MultiplyBf16KMajorBN64, aDescriptor, bDescriptor);
            }
            else
            {
                CudaAsm.Emit(WgmmaSkinnyGemmKernels.MultiplyBf16MnMajorBN64, aDescriptor, bDescriptor);
            }
        }
        else if (transposeB != 0)
        {
            CudaAsm.Emit(WgmmaSkinnyGemmKernels.MultiplyF16KMajorBN64, aDescriptor, bDescriptor);
        }
        else
        {
            CudaAsm.Emit(WgmmaSkinnyGemmKernels.MultiplyF16MnMajorBN64, aDescriptor, bDescriptor);
        }
    }
}

/// <summary>
/// The small-M warpgroup operations emulated one thread at a time from the PTX ISA's definitions: a thread computes the
/// m64n128 D-fragment elements it owns by decoding both descriptors with <see cref="EmulatedWgmmaOps.KMajorByte"/> and
/// <see cref="EmulatedWgmmaOps.MnMajorByte"/> (the large kernel's emulation). Copies are synchronous, waits and fences
/// no-ops; accumulators live in <see cref="Scratch"/>.
/// </summary>
internal struct EmulatedWgmmaSkinnyOps : IWgmmaSkinnyOps
{
    /// <summary><see cref="WgmmaSkinnyGemmKernels.Accumulators"/> floats for every thread of every group.</summary>
    public ArrayView<float> Scratch;

    private long scratchBase;

    public void Begin(int thread)
    {
        long group = ((((long)Grid.IdxZ * Grid.DimY) + Grid.IdxY) * Grid.DimX) + Grid.IdxX;
        scratchBase = ((group * WgmmaSkinnyGemmKernels.GroupSize) + thread) * WgmmaSkinnyGemmKernels.Accumulators;
        for (int i = 0; i < WgmmaSkinnyGemmKernels.Accumulators; i++)
        {
            Scratch[scratchBase + i] = 0f;
        }
    }

    public readonly uint SharedBase() => 0;

    public readonly void CopyChunk(ArrayView<ushort> shared, uint sharedAddress, ArrayView<ushort> source, long sourcePointer, long address, int bytes, int issue)
    {
        if (issue != 0)
        {
            TensorCoreGemmKernels.CopyChunkScalar(shared, (int)sharedAddress, source, (address - sourcePointer) >> 1, bytes >> 1);
        }
    }

    public readonly void CommitCopies()
    {
    }

    public readonly void WaitCopies()
    {
    }

    public readonly void FenceProxy()
    {
    }

    public readonly void Multiply(ArrayView<ushort> shared, long aDescriptor, long bDescriptor, int transposeB, int bf16, int columns, int thread)
    {
        int lane = thread & 31;
        int warp = (thread >> 5) & 3;
        int g = lane >> 2;
        int t = lane & 3;
        for (int step = 0; step < WgmmaGemmKernels.KSteps; step++)
        {
            long aStep = aDescriptor + (step * WgmmaGemmKernels.KMajorAdvance);
            long bStep = bDescriptor + (step * (transposeB != 0 ? WgmmaGemmKernels.KMajorAdvance : WgmmaGemmKernels.MnMajorAdvance));
            for (int r = 0; r < WgmmaSkinnyGemmKernels.AccumulatorsOf(columns); r++)
            {
                int row = (warp * 16) + g + (((r >> 1) & 1) * 8);
                int col = ((r >> 2) * 8) + (2 * t) + (r & 1);
                float sum = 0f;
                for (int k = 0; k < 16; k++)
                {
                    float av = GpuMath.Load16(shared[EmulatedWgmmaOps.KMajorByte(aStep, row, k) >> 1], bf16);
                    int bByte = transposeB != 0 ? EmulatedWgmmaOps.KMajorByte(bStep, col, k) : EmulatedWgmmaOps.MnMajorByte(bStep, k, col);
                    sum += av * GpuMath.Load16(shared[bByte >> 1], bf16);
                }

                Scratch[scratchBase + r] += sum;
            }
        }
    }

    public readonly void WaitMultiplies()
    {
    }

    public readonly void StageAccumulators(ArrayView<ushort> shared, int thread, int columns)
    {
    }

    public readonly Float2 Pair(ArrayView<ushort> shared, int thread, int register, int columns) =>
        new() { X = Scratch[scratchBase + register], Y = Scratch[scratchBase + register + 1] };
}

/// <summary>Launch shape, split-K plan, default rule and environment switch of <see cref="WgmmaSkinnyGemmKernels"/> (shared by the facade and the tests).</summary>
internal static class WgmmaSkinnyLaunch
{
    /// <summary>
    /// Environment variable for A/B runs: <c>off</c> keeps every product on the earlier dispatch; unset or any other
    /// value applies <see cref="TakesByDefault"/> (on 64-column tiles; <c>n128</c>: on 128-column tiles).
    /// </summary>
    public const string Variable = "GEMS_TC_SMALLM_VARIANT";

    /// <summary>Fewest rows the kernel handles on the device (one row stays on the GEMV).</summary>
    public const int MinRows = 2;

    /// <summary>Fewest K elements in one split-K chunk: enough to pay a chunk's ring prologue and partial tile.</summary>
    public const int MinSplitK = WgmmaSkinnyGemmKernels.Stages * WgmmaSkinnyGemmKernels.BlockK;

    /// <summary>Fewest rows of any product the default rule routes here.</summary>
    public const int MinRowsAnyLayout = 17;

    /// <summary>Fewest rows of a [K, N]-weight (mm) product the default rule routes here.</summary>
    public const int MinRowsKn = 9;

    /// <summary>The <see cref="Variable"/> value that routes the default rule's products to the 128-column tile kernel.</summary>
    public const string WideValue = "n128";

    private static readonly Lazy<bool> FromVariable = new(() => Parse(Environment.GetEnvironmentVariable(Variable)));

    private static readonly Lazy<bool> NarrowFromVariable = new(() => ParseNarrow(Environment.GetEnvironmentVariable(Variable)));

    /// <summary>Whether the environment leaves the default rule on (read once per process).</summary>
    public static bool FromEnvironment() => FromVariable.Value;

    /// <summary>Whether the environment leaves the 64-column tiles on (all but <c>n128</c>; read once per process).</summary>
    public static bool NarrowFromEnvironment() => NarrowFromVariable.Value;

    /// <summary>Whether a setting leaves the default rule on: everything but <c>off</c> (case and surrounding spaces ignored).</summary>
    public static bool Parse(string? setting) => setting?.Trim().ToLowerInvariant() != "off";

    /// <summary>
    /// Whether a setting selects the 64-column tiles: everything but <c>n128</c> (case and surrounding spaces ignored).
    /// They won every case of the H200 A/B (Run 33, alternated twice in one call): 64×4096×4096 1744 → 1890 GB/s (mm),
    /// 1680 → 1830 (mm_tb), 16×11008×4096 2737 → 2924, from two to three groups per SM on the same split-K partials.
    /// </summary>
    public static bool ParseNarrow(string? setting) => setting?.Trim().ToLowerInvariant() != WideValue;

    /// <summary>The tile width a setting of the switch selects: <see cref="WgmmaSkinnyGemmKernels.BlockN"/> for <c>n128</c>, else <see cref="WgmmaSkinnyGemmKernels.BlockNNarrow"/>.</summary>
    public static int Columns(bool narrow) => narrow ? WgmmaSkinnyGemmKernels.BlockNNarrow : WgmmaSkinnyGemmKernels.BlockN;

    /// <summary>
    /// The default rule, from Run 23 on the H200 (docs/perf/h100-notes-tensor-core.md, Attempt 6, Outcome): 16-bit
    /// products with 17–64 rows in either weight layout, and [K, N]-weight products (<paramref name="transposeB"/>
    /// false) with 9–16 rows, on a CUDA device of compute capability 9.0 (<paramref name="architecture"/>; null when
    /// the device is not CUDA). Where the kernel lost (up to 8 rows, [N, K] weights up to 16 rows) the earlier kernels stay.
    /// </summary>
    public static bool TakesByDefault(bool enabled, CudaArchitecture? architecture, int m, bool transposeB) =>
        enabled && architecture == CudaArchitecture.SM_90 && m <= WgmmaSkinnyGemmKernels.BlockM && m >= (transposeB ? MinRowsAnyLayout : MinRowsKn);

    /// <summary>Groups resident per SM (shared memory: the 97 KB ring fits twice in 227 KB).</summary>
    public static int GroupsPerSm => GroupsPerSmOf(WgmmaSkinnyGemmKernels.BlockN);

    /// <summary>Groups resident per SM with <paramref name="columns"/>-column tiles (shared memory: 2 of 97 KB at 128, 3 of 65 KB at 64).</summary>
    public static int GroupsPerSmOf(int columns) => Sm90aPtx.OptInSharedBytes / (WgmmaSkinnyGemmKernels.SharedBytesOf(columns) + 1024);

    /// <summary>Grid (⌈N/columns⌉, 1, z) of one-warpgroup groups with the ring's dynamic shared memory.</summary>
    public static KernelConfig Config(int z, int n, int columns = WgmmaSkinnyGemmKernels.BlockN) => new(
        new Index3D((n + columns - 1) / columns, 1, z),
        new Index3D(WgmmaSkinnyGemmKernels.GroupSize, 1, 1),
        SharedMemoryConfig.RequestDynamic<ushort>(WgmmaSkinnyGemmKernels.SharedBytesOf(columns) / sizeof(ushort)));

    /// <summary>Whether the kernel takes a product: 2 ≤ M ≤ 64 and every staged chunk whole and 16-byte aligned.</summary>
    public static bool Supports(TensorCoreShape shape) => shape.AsyncCopy != 0 && shape.M >= MinRows && shape.M <= WgmmaSkinnyGemmKernels.BlockM;

    /// <summary>
    /// Most M × splits: bounds the float32 partials written and read back by the reduce launch (M × splits rows of N
    /// floats); the plan Run 23 measured.
    /// </summary>
    public const int MaxPartialRows = 256;

    /// <summary>
    /// Split-K plan: for one matrix, as many K chunks (whole stages, at least <see cref="MinSplitK"/>) as keep
    /// column tiles × splits within the groups resident at once (SMs × <see cref="GroupsPerSm"/>): one wave, every SM
    /// streaming weight; and M × splits at most <see cref="MaxPartialRows"/>. (1, K) for batches, the simulator (no SM
    /// count), or when the tiles alone fill the SMs. <paramref name="columns"/>: the tile width, whose tile count and
    /// groups per SM (<see cref="GroupsPerSmOf"/>) the rule uses.
    /// </summary>
    public static (int Splits, int KChunk) PlanSplitK(int batch, int m, int k, int n, int multiprocessors, int columns = WgmmaSkinnyGemmKernels.BlockN)
    {
        int tiles = (n + columns - 1) / columns;
        if (batch != 1 || multiprocessors <= 0)
        {
            return (1, k);
        }

        int slots = multiprocessors * GroupsPerSmOf(columns);
        return WgmmaLaunch.ChunkK(k, Math.Min(Math.Min(slots / tiles, k / MinSplitK), MaxPartialRows / Math.Max(m, 1)));
    }

    /// <summary>
    /// Whether a split plan sums its splits in a thread-block cluster (<see cref="WgmmaSkinnyGemmKernels.Gemm16WgmmaSkinnyN64Cluster{TOperands, TClusterSize}"/>)
    /// instead of partials and the launched reduce: <c>GEMS_SPLITK_REDUCE</c> unset (<paramref name="mode"/> <see cref="SplitKReduce.Cluster"/>), the
    /// 64-column tiles (the default; <c>n128</c> keeps the launch), a plan of 2, 4 or 8 splits (<see cref="ClusterReduction.SizeFor"/>:
    /// the portable cluster sizes; one split, batches and other counts keep today's path) and N % 4 = 0 (the tile's
    /// 4-column vectors lie all inside N or all outside). The plan is <see cref="PlanSplitK"/>'s, unchanged, so both forms
    /// split K alike and give the same bits.
    /// </summary>
    public static bool TakesCluster(SplitKReduce mode, int columns, int splits, int n) =>
        mode == SplitKReduce.Cluster && columns == WgmmaSkinnyGemmKernels.BlockNNarrow && ClusterReduction.SizeFor(splits) != 0 && n % 4 == 0;

    /// <summary>
    /// Whether a split plan no cluster took sums its splits in its own launch
    /// (<see cref="WgmmaSkinnyGemmKernels.Gemm16WgmmaSkinnyN64Tickets{TOperands}"/>) instead of the launched reduce: 64-column
    /// tiles, N % 4 = 0, and under <c>GEMS_SPLITK_REDUCE</c> unset (<see cref="SplitKReduce.Cluster"/>) a split count that is
    /// no cluster size, or <see cref="SplitKReduce.Fused"/>, with a last group whose threads wait on at most
    /// <see cref="SplitKReduction.MaxFusedRounds"/> rounds of loads (M ≤ 16 at up to 8 splits); any such plan under
    /// <see cref="SplitKReduce.FusedAll"/>. H200 Run 139: the 6-split down projection (16 and 12 × 4096 × 11008) +4%
    /// float16, +1.2 to 1.6% bfloat16; in place of the cluster it lost 5% at 2 splits and 21% at 64 rows (8 rounds).
    /// </summary>
    public static bool SumsSplitsInLaunch(SplitKReduce mode, int columns, int splits, int m, int n)
    {
        if (splits <= 1 || columns != WgmmaSkinnyGemmKernels.BlockNNarrow || n % 4 != 0)
        {
            return false;
        }

        bool fewRounds = SplitKReduction.LastGroupVectorRounds(m, columns, WgmmaSkinnyGemmKernels.GroupSize, splits) <= SplitKReduction.MaxFusedRounds;
        return mode switch
        {
            SplitKReduce.FusedAll => true,
            SplitKReduce.Fused => fewRounds,
            SplitKReduce.Cluster => fewRounds && ClusterReduction.SizeFor(splits) == 0,
            _ => false,
        };
    }

    /// <summary>
    /// Grid (⌈N/columns⌉, <paramref name="splits"/>, 1) of the cluster form (clusters 1 × splits × 1 along Y, the axis of
    /// its marker) with the ring's dynamic shared memory: the same groups and bytes per group as <see cref="Config"/>.
    /// </summary>
    public static KernelConfig ClusterConfig(int splits, int n, int columns = WgmmaSkinnyGemmKernels.BlockNNarrow) => new(
        new Index3D((n + columns - 1) / columns, splits, 1),
        new Index3D(WgmmaSkinnyGemmKernels.GroupSize, 1, 1),
        SharedMemoryConfig.RequestDynamic<ushort>(WgmmaSkinnyGemmKernels.SharedBytesOf(columns) / sizeof(ushort)));

    /// <summary>Floats of scratch the emulated kernel needs for this launch.</summary>
    public static long EmulationScratch(int z, int n, int columns = WgmmaSkinnyGemmKernels.BlockN) =>
        (long)((n + columns - 1) / columns) * z * WgmmaSkinnyGemmKernels.GroupSize * WgmmaSkinnyGemmKernels.Accumulators;
}
