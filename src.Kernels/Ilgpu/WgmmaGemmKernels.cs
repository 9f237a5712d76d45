using System;
using ILGPU;
using ILGPU.Runtime.Cuda;

namespace GemsInjector.Kernels.Ilgpu;

/// <summary>
/// The warpgroup operations of the wgmma GEMM, so one kernel body (staging, pipeline, edges, epilogue) runs on an H100 /
/// H200 through inline PTX (<see cref="PtxWgmmaOps"/>) and on ILGPU's CPU accelerator through an emulation that reads
/// both operands from shared memory through the same descriptors (<see cref="EmulatedWgmmaOps"/>).
/// </summary>
internal interface IWgmmaOps
{
    /// <summary>Declares and zeroes this thread's accumulators, and finds the 1024-byte aligned shared base (first statement of the kernel).</summary>
    void Begin(int thread);

    /// <summary>The shared-window address of stage byte 0 (1024-byte aligned on the GPU; 0 in the emulation).</summary>
    uint SharedBase();

    /// <summary>
    /// Copies one 16-byte chunk to shared byte <paramref name="sharedByte"/> (relative to <see cref="SharedBase"/>): 8
    /// elements from <paramref name="source"/>[<paramref name="sourceElement"/>..] when <paramref name="valid"/> is 8, zeros when 0.
    /// </summary>
    void CopyChunk(ArrayView<ushort> shared, int sharedByte, ArrayView<ushort> source, long sourceElement, long sourcePointer, int valid);

    /// <summary>Zeroes this thread's accumulators again (a persistent group's next tile, after <see cref="WaitMultiplies"/>(0)).</summary>
    void ZeroAccumulators();

    /// <summary>Closes the group of asynchronous copies issued so far.</summary>
    void CommitCopies();

    /// <summary>Waits until at most <paramref name="pending"/> (1 or 2) committed copy groups are still in flight.</summary>
    void WaitCopies(int pending);

    /// <summary>Orders this thread's completed shared-memory writes before later reads by the async proxy (wgmma).</summary>
    void FenceProxy();

    /// <summary>
    /// One 64-deep stage of this thread's warpgroup: four k16 wgmma from the two descriptors, committed as one group;
    /// nothing when <paramref name="active"/> is zero (a warpgroup whose rows all lie past M; the same in all its threads).
    /// </summary>
    void Multiply(ArrayView<ushort> shared, long aDescriptor, long bDescriptor, int transposeB, int bf16, int thread, int active);

    /// <summary>Waits until at most <paramref name="pending"/> (0 or 1) committed wgmma groups of this warpgroup are in flight.</summary>
    void WaitMultiplies(int pending);

    /// <summary>
    /// Stores accumulators 16 · <paramref name="part"/> .. + 15 times <paramref name="alpha"/> as 16-bit pairs (round to
    /// nearest even) to <paramref name="c"/>: the thread's first row half at element <paramref name="element0"/> (its
    /// column 32 · part + 2 · (lane mod 4) of the tile), the second 8 rows further at <paramref name="element1"/>; n-block
    /// nb 8 elements further each. Whole tiles only (every pair inside C and 4-byte aligned); <paramref name="cPointer"/>
    /// is c[0]'s device address.
    /// </summary>
    void StorePart(int part, ArrayView<ushort> c, long element0, long element1, long cPointer, float alpha, int bf16);

    /// <summary>Accumulators 16 · <paramref name="part"/> .. 16 · <paramref name="part"/> + 15 (n-blocks 4 · part .. 4 · part + 3).</summary>
    void Read(int part, ref AccumulatorBlock block);
}

/// <summary>
/// The operand formats and B layout of one compiled wgmma kernel, as a type argument: each instantiation holds one
/// wgmma block (one format, one transpose-B immediate), so ptxas sees a single wgmma pipeline in the K loop.
/// </summary>
internal interface IWgmmaOperands
{
    /// <summary>Non-zero for bfloat16, zero for float16.</summary>
    int Bf16 { get; }

    /// <summary>Non-zero when b is stored [N, K] (K-major B, transpose-B 0); zero for [K, N] (MN-major, transpose-B 1).</summary>
    int TransposeB { get; }
}

/// <summary>bfloat16, b stored [N, K] (mm_tb, nn.Linear).</summary>
internal readonly struct Bf16KMajorB : IWgmmaOperands
{
    /// <inheritdoc/>
    public int Bf16 => 1;

    /// <inheritdoc/>
    public int TransposeB => 1;
}

/// <summary>bfloat16, b stored [K, N] (mm, bmm, addmm).</summary>
internal readonly struct Bf16MnMajorB : IWgmmaOperands
{
    /// <inheritdoc/>
    public int Bf16 => 1;

    /// <inheritdoc/>
    public int TransposeB => 0;
}

/// <summary>float16, b stored [N, K].</summary>
internal readonly struct F16KMajorB : IWgmmaOperands
{
    /// <inheritdoc/>
    public int Bf16 => 0;

    /// <inheritdoc/>
    public int TransposeB => 1;
}

/// <summary>float16, b stored [K, N].</summary>
internal readonly struct F16MnMajorB : IWgmmaOperands
{
    /// <inheritdoc/>
    public int Bf16 => 0;

    /// <inheritdoc/>
    public int TransposeB => 0;
}

/// <summary>
/// The K pipeline of one compiled wgmma kernel, as a type argument: how many 64-deep tiles are requested ahead of the
/// one being multiplied (<see cref="WgmmaGemmKernels.Body{TOps}"/> explains both orders).
/// </summary>
internal interface IWgmmaPipeline
{
    /// <summary>2 (one barrier per tile) or 3 (a second barrier per tile frees the stage of the tile before).</summary>
    int Lookahead { get; }

    /// <summary>
    /// 0: group (x, y) computes tile column x, tile row y (launch order walks all of N for one 128-row band of A);
    /// R &gt; 0: groups are renumbered so that launch order walks R tile rows down before moving one tile column right
    /// (<see cref="WgmmaGemmKernels.TileOf"/>).
    /// </summary>
    int RasterRows { get; }

    /// <summary>
    /// 0: one C tile per group. 1: a persistent grid (<see cref="WgmmaLaunch.PersistentConfig"/>) whose groups loop over
    /// the tiles, requesting the next tile's first stages before the current tile's epilogue.
    /// </summary>
    int Persistent { get; }

    /// <summary>
    /// 0: every tile's epilogue through <see cref="TensorCoreGemmKernels.Epilogue"/>. 1: a whole tile without split-K
    /// or bias (and with aligned pairs) converts and stores its accumulators inside the asm (<see cref="IWgmmaOps.StorePart"/>),
    /// without copying them out through ILGPU's local-memory operand slots first.
    /// </summary>
    int AsmEpilogue { get; }
}

/// <summary>Two tiles ahead, one barrier per tile (<c>GEMS_TC_GEMM_VARIANT=wgmma</c>).</summary>
internal readonly struct TwoAhead : IWgmmaPipeline
{
    /// <inheritdoc/>
    public int Lookahead => 2;

    /// <inheritdoc/>
    public int RasterRows => 0;

    /// <inheritdoc/>
    public int Persistent => 0;

    /// <inheritdoc/>
    public int AsmEpilogue => 0;
}

/// <summary>Three tiles ahead, two barriers per tile (<c>GEMS_TC_GEMM_VARIANT=wgmma3</c>).</summary>
internal readonly struct ThreeAhead : IWgmmaPipeline
{
    /// <inheritdoc/>
    public int Lookahead => 3;

    /// <inheritdoc/>
    public int RasterRows => 0;

    /// <inheritdoc/>
    public int Persistent => 0;

    /// <inheritdoc/>
    public int AsmEpilogue => 0;
}

/// <summary>
/// <see cref="TwoAhead"/> with tiles handed out in bands of 16 tile rows (<c>GEMS_TC_GEMM_VARIANT=wgmma-g</c>): the
/// groups resident at one time cover a squarer block of C (4096³ on 132 SMs: about 16 × 8 tiles, 2048 rows of A and
/// 2112 columns of B, instead of 8 × 16 tiles, 1056 rows and all 4096 columns), so fewer distinct operand bytes pass
/// through L2 per wave.
/// </summary>
internal readonly struct TwoAheadGrouped : IWgmmaPipeline
{
    /// <inheritdoc/>
    public int Lookahead => 2;

    /// <inheritdoc/>
    public int RasterRows => 16;

    /// <inheritdoc/>
    public int Persistent => 0;

    /// <inheritdoc/>
    public int AsmEpilogue => 0;
}

/// <summary>
/// <see cref="TwoAheadGrouped"/>'s order on a persistent grid (<c>GEMS_TC_GEMM_VARIANT=wgmma-p</c>): one group per SM
/// walks tiles id, id + grid, ..; after a tile's last wgmma (both warpgroups past wgmma.wait_group 0, then a barrier,
/// so no stage is still read) it requests the next tile's first two stages and only then runs the epilogue, so the
/// next tile's copy latency hides behind the 128 conversions and stores instead of following them.
/// </summary>
internal readonly struct PersistentGrouped : IWgmmaPipeline
{
    /// <inheritdoc/>
    public int Lookahead => 2;

    /// <inheritdoc/>
    public int RasterRows => 16;

    /// <inheritdoc/>
    public int Persistent => 1;

    /// <inheritdoc/>
    public int AsmEpilogue => 0;
}

/// <summary>
/// <see cref="PersistentGrouped"/> with whole tiles' epilogues inside the asm (<c>GEMS_TC_GEMM_VARIANT=wgmma-pe</c>):
/// alpha · accumulator, <c>cvt.rn</c> to a 16-bit pair, one 32-bit store, straight from the accumulator registers.
/// </summary>
internal readonly struct PersistentGroupedStores : IWgmmaPipeline
{
    /// <inheritdoc/>
    public int Lookahead => 2;

    /// <inheritdoc/>
    public int RasterRows => 16;

    /// <inheritdoc/>
    public int Persistent => 1;

    /// <inheritdoc/>
    public int AsmEpilogue => 1;
}

/// <summary>
/// 16-bit GEMM on Hopper's warpgroup tensor-core instruction (<c>wgmma.mma_async</c>, sm_90a; float32 accumulation).
/// A group of 256 threads (two warpgroups) computes a 128 × 256 tile of C, each warpgroup m64 × n256 with 128 float32
/// accumulators per thread held in PTX registers declared once (<c>wga0..wga127</c>). Both operands come from shared
/// memory through matrix descriptors: K goes in stages of 64 elements (one 128-byte row per M or N index) in the
/// canonical 128-byte-swizzled layouts: A and a b stored [N, K] K-major (row r at r · 128, 16-byte chunk c at
/// (c XOR r mod 8) · 16, 8-row atoms 1024 bytes apart), a b stored [K, N] MN-major (64-column blocks of 64 k-rows,
/// 8192 bytes apart, each k-row 128 bytes with the same XOR), read with the instruction's transpose-B immediate.
/// Four stages (192 KB of dynamic shared memory, plus 1 KB to align the base up to 1024 bytes, which the swizzle needs)
/// filled by cp.async two (or three: <see cref="IWgmmaPipeline"/>) tiles ahead of the one being multiplied, while the
/// tile before it may still be in the tensor cores (see <see cref="Body{TOps}"/> for why no stage is refilled while a
/// wgmma may read it).
/// Only for K % 8 == 0, 16-byte aligned a and b, and N % 8 == 0 for a [K, N] b (every chunk whole and aligned); edges
/// past M, N or K are zero-filled chunks, and the epilogue (alpha · sum + beta · bias, one rounding to 16 bits, rows
/// ≥ M and columns ≥ N skipped) is <see cref="TensorCoreGemmKernels.Epilogue"/>'s. Split-K as the mma.sync kernel:
/// float32 partials reduced by <see cref="HalfGemvKernels.GemvReduce16"/>.
/// Grid: (⌈N/256⌉, ⌈M/128⌉, batch or splits).
/// </summary>
internal static partial class WgmmaGemmKernels
{
    /// <summary>Rows of C per group.</summary>
    public const int BlockM = 128;

    /// <summary>Columns of C per group (the wgmma's n256).</summary>
    public const int BlockN = 256;

    /// <summary>K per shared stage: one 128-byte swizzle row of 16-bit elements.</summary>
    public const int BlockK = 64;

    /// <summary>Shared stages (a power of two).</summary>
    public const int Stages = 4;


    /// <summary>Threads per group: two warpgroups.</summary>
    public const int GroupSize = 256;

    /// <summary>Bytes of one stage row (64 elements).</summary>
    public const int RowBytes = BlockK * 2;

    /// <summary>Bytes between 8-row atoms of a K-major stage, and between 8-k-row groups of an MN-major one (the descriptor's stride byte offset).</summary>
    public const int AtomBytes = 8 * RowBytes;

    /// <summary>Bytes between the 64-column blocks of an MN-major B stage (the descriptor's leading byte offset).</summary>
    public const int MnBlockBytes = BlockK * RowBytes;

    /// <summary>Bytes of an A stage ([128][64]).</summary>
    public const int AStageBytes = BlockM * RowBytes;

    /// <summary>Bytes of a B stage ([256][64] or four [64][64] column blocks).</summary>
    public const int BStageBytes = BlockN * RowBytes;

    /// <summary>Bytes of one stage (A, then B).</summary>
    public const int StageBytes = AStageBytes + BStageBytes;

    /// <summary>Alignment of every stage: the 128-byte swizzle repeats every 8 rows of 128 bytes, and the hardware applies it to absolute addresses.</summary>
    public const int SwizzleAlignment = 1024;

    /// <summary>Dynamic shared bytes a launch requests: the stages, plus room to align the base up.</summary>
    public const int SharedBytes = (Stages * StageBytes) + SwizzleAlignment;

    /// <summary>Swizzle-mode field (bits 62-63) of a descriptor: 1 is the 128-byte swizzle.</summary>
    public const long Swizzle128 = 1L << 62;

    /// <summary>
    /// The wgmma GEMM through inline PTX for one format and B layout (<typeparamref name="TOperands"/>, which must match
    /// <see cref="TensorCoreShape.Bf16"/> and <see cref="TensorCoreShape.TransposeB"/>) and one K pipeline
    /// (<typeparamref name="TPipeline"/>). CUDA, compute capability 9.0 only: its PTX is loaded as sm_90a (<see cref="Sm90aPtx"/>).
    /// </summary>
    [IlgpuKernel]
    [IlgpuKernelVariant(typeof(Bf16KMajorB), typeof(TwoAhead))]
    [IlgpuKernelVariant(typeof(Bf16MnMajorB), typeof(TwoAhead))]
    [IlgpuKernelVariant(typeof(F16KMajorB), typeof(TwoAhead))]
    [IlgpuKernelVariant(typeof(F16MnMajorB), typeof(TwoAhead))]
    [IlgpuKernelVariant(typeof(Bf16KMajorB), typeof(ThreeAhead))]
    [IlgpuKernelVariant(typeof(Bf16MnMajorB), typeof(ThreeAhead))]
    [IlgpuKernelVariant(typeof(F16KMajorB), typeof(ThreeAhead))]
    [IlgpuKernelVariant(typeof(F16MnMajorB), typeof(ThreeAhead))]
    [IlgpuKernelVariant(typeof(Bf16KMajorB), typeof(TwoAheadGrouped))]
    [IlgpuKernelVariant(typeof(Bf16MnMajorB), typeof(TwoAheadGrouped))]
    [IlgpuKernelVariant(typeof(F16KMajorB), typeof(TwoAheadGrouped))]
    [IlgpuKernelVariant(typeof(F16MnMajorB), typeof(TwoAheadGrouped))]
    [IlgpuKernelVariant(typeof(Bf16KMajorB), typeof(PersistentGrouped))]
    [IlgpuKernelVariant(typeof(Bf16MnMajorB), typeof(PersistentGrouped))]
    [IlgpuKernelVariant(typeof(F16KMajorB), typeof(PersistentGrouped))]
    [IlgpuKernelVariant(typeof(F16MnMajorB), typeof(PersistentGrouped))]
    [IlgpuKernelVariant(typeof(Bf16KMajorB), typeof(PersistentGroupedStores))]
    [IlgpuKernelVariant(typeof(Bf16MnMajorB), typeof(PersistentGroupedStores))]
    [IlgpuKernelVariant(typeof(F16KMajorB), typeof(PersistentGroupedStores))]
    [IlgpuKernelVariant(typeof(F16MnMajorB), typeof(PersistentGroupedStores))]
    public static void Gemm16Wgmma<TOperands, TPipeline>(ArrayView<ushort> a, ArrayView<ushort> b, ArrayView<ushort> bias, ArrayView<ushort> c, ArrayView<float> partial,
        TensorCoreShape s)
        where TOperands : struct, IWgmmaOperands
        where TPipeline : struct, IWgmmaPipeline
    {
        var ops = default(PtxWgmmaOps);
        Body(ref ops, a, b, bias, c, partial, s, default(TOperands).TransposeB, default(TOperands).Bf16, default(TPipeline).Lookahead, default(TPipeline).RasterRows, default(TPipeline).Persistent,
            default(TPipeline).AsmEpilogue);
    }

    /// <summary>
    /// The same body with wgmma emulated thread by thread (accumulators in <paramref name="scratch"/>, 128 floats per
    /// thread of every group), for ILGPU's CPU accelerator with 32-thread warps and 256-thread groups.
    /// <paramref name="lookahead"/> (2 or 3), <paramref name="rasterRows"/>, <paramref name="persistent"/> and <paramref name="asmEpilogue"/> are the pipeline's; <paramref name="breakSwizzle"/> non-zero stores A's chunks one slot off their swizzled place (tests: a wrong XOR must fail).
    /// </summary>
    [IlgpuKernel(SimulatorOnly = true)]
    public static void Gemm16WgmmaEmulated(ArrayView<ushort> a, ArrayView<ushort> b, ArrayView<ushort> bias, ArrayView<ushort> c, ArrayView<float> partial,
        ArrayView<float> scratch, TensorCoreShape s, int lookahead, int rasterRows, int persistent, int asmEpilogue, int breakSwizzle)
    {
        var ops = new EmulatedWgmmaOps { Scratch = scratch, BreakSwizzle = breakSwizzle };
        Body(ref ops, a, b, bias, c, partial, s, s.TransposeB, s.Bf16, lookahead, rasterRows, persistent, asmEpilogue);
    }

    /// <summary>Byte offset of stage <paramref name="stage"/>'s A tile.</summary>
    public static int AStageOffset(int stage) => stage * StageBytes;

    /// <summary>Byte offset of stage <paramref name="stage"/>'s B tile.</summary>
    public static int BStageOffset(int stage) => (stage * StageBytes) + AStageBytes;

    /// <summary>
    /// Byte of 16-byte chunk <paramref name="chunk"/> (0-7) of row <paramref name="row"/> in a K-major stage (A, or b
    /// stored [N, K]): the 128-byte swizzle, chunk XOR row mod 8.
    /// </summary>
    public static int KRowByte(int row, int chunk) => (row * RowBytes) + ((chunk ^ (row & 7)) << 4);

    /// <summary>
    /// Byte of 16-byte chunk <paramref name="nChunk"/> (0-31: columns 8·nChunk..) of k-row <paramref name="kRow"/> in an
    /// MN-major B stage: column block nChunk / 8, then the k-row, then the chunk within the block XOR k-row mod 8.
    /// </summary>
    public static int MnByte(int kRow, int nChunk) => ((nChunk >> 3) * MnBlockBytes) + (kRow * RowBytes) + (((nChunk & 7) ^ (kRow & 7)) << 4);

    /// <summary>A 128-byte-swizzle matrix descriptor (PTX ISA matrix-descriptor format; base offset 0).</summary>
    /// <param name="address">Shared-window address of the operand's first row (16-byte aligned; 1024-byte aligned up to the k16 advance).</param>
    /// <param name="leadingBytes">Leading dimension byte offset (MN-major: between 64-column blocks; K-major: unused, 16).</param>
    /// <param name="strideBytes">Stride dimension byte offset (between 8-row atoms).</param>
    public static long Descriptor(uint address, int leadingBytes, int strideBytes) =>
        ((long)((address & 0x3FFFF) >> 4)) | ((long)((leadingBytes >> 4) & 0x3FFF) << 16) | ((long)((strideBytes >> 4) & 0x3FFF) << 32) | Swizzle128;

    /// <summary>The A descriptor of warpgroup <paramref name="warpgroup"/> (rows 64 · warpgroup ..) at stage <paramref name="stage"/>, k16 step 0.</summary>
    public static long ADescriptor(uint sharedBase, int stage, int warpgroup) =>
        Descriptor(sharedBase + (uint)(AStageOffset(stage) + (warpgroup * 64 * RowBytes)), 16, AtomBytes);

    /// <summary>The B descriptor at stage <paramref name="stage"/>, k16 step 0, for either layout.</summary>
    public static long BDescriptor(uint sharedBase, int stage, int transposeB) =>
        transposeB != 0
            ? Descriptor(sharedBase + (uint)BStageOffset(stage), 16, AtomBytes)
            : Descriptor(sharedBase + (uint)BStageOffset(stage), MnBlockBytes, AtomBytes);

    /// <summary>
    /// The C tile (column, row) that group <paramref name="x"/>, <paramref name="y"/> of a <paramref name="columns"/> ×
    /// <paramref name="rows"/> grid computes. <paramref name="rasterRows"/> 0: itself. R &gt; 0: the groups in launch
    /// order (x fastest) fill bands of R tile rows (the last band shorter) column by column, each column of a band top
    /// to bottom, so consecutive groups share B's tile column and the resident groups a squarer block of C. A bijection
    /// of the grid onto itself, so every tile is computed exactly once.
    /// </summary>
    public static (int Column, int Row) TileOf(int x, int y, int columns, int rows, int rasterRows)
    {
        if (rasterRows <= 0)
        {
            return (x, y);
        }

        int id = (y * columns) + x;
        int perBand = rasterRows * columns;
        int band = id / perBand;
        int inBand = id - (band * perBand);
        int firstRow = band * rasterRows;
        int bandRows = rows - firstRow < rasterRows ? rows - firstRow : rasterRows;
        return (inBand / bandRows, firstRow + (inBand % bandRows));
    }

    /// <summary>
    /// The kernel body shared by the PTX and emulated operations; <paramref name="transposeB"/> and <paramref name="bf16"/>
    /// are the shape's and <paramref name="lookahead"/> (2 or 3), <paramref name="rasterRows"/> (<see cref="TileOf"/>)
    /// <paramref name="persistent"/> and <paramref name="asmEpilogue"/> (<see cref="IWgmmaPipeline"/>) the pipeline's,
    /// constants in each PTX instantiation.
    /// </summary>
    /// <remarks>
    /// Pipeline of lookahead 2, and why no stage is overwritten while a wgmma may read it: tiles 0 and 1 are requested up front; iteration
    /// t waits for its own copies of tile t (cp.async.wait_group 1), fences them to the async proxy, and meets the group at
    /// a barrier, after which every thread's chunks of tile t are in shared memory; each warpgroup then issues tile t's four
    /// wgmma (one commit group), requests tile t + 2 into stage (t + 2) mod 4, and waits until at most one wgmma group is
    /// pending (wgmma.wait_group 1), i.e. until its tile t - 1 is done. Stage (t + 2) mod 4 last held tile t - 2, whose
    /// wgmma both warpgroups finished at their wait in iteration t - 1, before the barrier of iteration t that the refill
    /// follows. Tile t's stage is next refilled at iteration t + 2, after its barrier, which both warpgroups reach only
    /// past their wait of iteration t + 1, where tile t completed. So the refill is ordered after the completion of every
    /// wgmma that read the stage, and the multiply after every copy into it. The CPU emulation multiplies synchronously
    /// at issue and cannot see this asynchrony; on it, the same barriers keep a stage being multiplied from being
    /// refilled (it is refilled two barriers later).
    /// Lookahead 3: tiles 0-2 up front; iteration t waits for tile t (cp.async.wait_group 2), fences, meets the barrier,
    /// issues tile t's wgmma, waits until only it is pending (tile t - 1 done in this warpgroup), meets a second barrier
    /// (tile t - 1 done in both), and only then requests tile t + 3 into stage (t + 3) mod 4, which held tile t - 1. The
    /// second barrier costs a group-wide sync per tile while tile t is in the tensor cores; it buys one more tile of
    /// copies in flight.
    /// </remarks>
    internal static void Body<TOps>(ref TOps ops, ArrayView<ushort> a, ArrayView<ushort> b, ArrayView<ushort> bias, ArrayView<ushort> c, ArrayView<float> partial,
        TensorCoreShape s, int transposeB, int bf16, int lookahead, int rasterRows, int persistent, int asmEpilogue)
        where TOps : struct, IWgmmaOps
    {
        int thread = Group.IdxX;
        ops.Begin(thread);

        // Once per group: on ILGPU's CPU accelerator each GetDynamic call hands out a fresh view, which would lose the
        // stages a persistent group requested for its next tile.
        var shared = SharedMemory.GetDynamic<ushort>();
        if (persistent == 0)
        {
            var (tileColumn, tileRow) = TileOf(Grid.IdxX, Grid.IdxY, Grid.DimX, Grid.DimY, rasterRows);
            Tile(ref ops, shared, a, b, bias, c, partial, s, transposeB, bf16, lookahead, asmEpilogue, thread, tileColumn, tileRow, -1, -1, 0);
            return;
        }

        // Persistent: this group's tiles are jobs Grid.IdxX, + Grid.DimX, .. of the (columns × rows) grid of one z.
        int columns = (s.N + BlockN - 1) / BlockN;
        int rows = (s.M + BlockM - 1) / BlockM;
        int jobs = columns * rows;
        int prefetched = 0;
        for (int job = Grid.IdxX; job < jobs; job += Grid.DimX)
        {
            var (column, row) = TileOf(job % columns, job / columns, columns, rows, rasterRows);
            int nextJob = job + Grid.DimX;
            int nextColumn = -1;
            int nextRow = -1;
            if (nextJob < jobs)
            {
                (nextColumn, nextRow) = TileOf(nextJob % columns, nextJob / columns, columns, rows, rasterRows);
            }

            // Unconditional (the first tile's are already zero): a conditional write of the accumulators would put
            // them on a path ptxas must treat as divergent.
            ops.ZeroAccumulators();
            Tile(ref ops, shared, a, b, bias, c, partial, s, transposeB, bf16, lookahead, asmEpilogue, thread, column, row, nextColumn, nextRow, prefetched);
            prefetched = 1;
        }
    }

    /// <summary>
    /// One C tile (<paramref name="tileColumn"/>, <paramref name="tileRow"/>): its K loop, then its epilogue.
    /// <paramref name="prefetched"/> non-zero: its first stages were requested by the tile before; a next tile
    /// (<paramref name="nextRow"/> ≥ 0) gets its first stages requested here, after this tile's last wgmma and before
    /// the epilogue.
    /// </summary>
    private static void Tile<TOps>(ref TOps ops, ArrayView<ushort> shared, ArrayView<ushort> a, ArrayView<ushort> b, ArrayView<ushort> bias, ArrayView<ushort> c, ArrayView<float> partial,
        TensorCoreShape s, int transposeB, int bf16, int lookahead, int asmEpilogue, int thread, int tileColumn, int tileRow, int nextColumn, int nextRow, int prefetched)
        where TOps : struct, IWgmmaOps
    {
        uint sharedBase = ops.SharedBase();
        int warpgroup = thread >> 7;
        int m0 = tileRow * BlockM;
        int n0 = tileColumn * BlockN;

        // A warpgroup whose 64 rows all lie past M stages and waits like the other but issues no wgmma (uniform per
        // warpgroup, as the .sync.aligned wgmma instructions require). The skip is inside Multiply's asm (a bra.uni):
        // a C# `if` here becomes a divergent PTX branch around the wgmma, and ptxas then serializes every wgmma of the
        // kernel (C7518). The waits need no skip: with no group committed they return at once.
        int hasRows = m0 + (warpgroup * 64) < s.M ? 1 : 0;
        bool split = s.SplitK > 1;
        long batch = split ? 0 : Grid.IdxZ;
        int kSplit = split ? Grid.IdxZ : 0;
        int kStart = kSplit * s.KChunk;
        int kLength = s.K - kStart < s.KChunk ? s.K - kStart : s.KChunk;
        int tiles = (kLength + BlockK - 1) / BlockK;
        var plan = Plan(s, thread, m0, n0, kStart, batch, transposeB);
        if (prefetched == 0)
        {
            Prologue(ref ops, shared, a, b, s, plan, tiles, lookahead, transposeB);
        }

        for (int tile = 0; tile < tiles; tile++)
        {
            // One commit group per tile (empty past the last): all but the newest lookahead - 1 done is tile `tile`.
            ops.WaitCopies(lookahead - 1);
            ops.FenceProxy();
            Group.Barrier();
            int stage = tile & (Stages - 1);
            ops.Multiply(shared, ADescriptor(sharedBase, stage, warpgroup), BDescriptor(sharedBase, stage, transposeB), transposeB, bf16, thread, hasRows);

            int next = tile + lookahead;
            if (lookahead == 3)
            {
                // Tile t - 1 done in this warpgroup, then in both: its stage is the one refilled.
                ops.WaitMultiplies(1);

                Group.Barrier();
                if (next < tiles)
                {
                    LoadStage(ref ops, shared, a, b, s, plan, next & (Stages - 1), next, transposeB);
                }

                ops.CommitCopies();
            }
            else
            {
                if (next < tiles)
                {
                    LoadStage(ref ops, shared, a, b, s, plan, next & (Stages - 1), next, transposeB);
                }

                ops.CommitCopies();
                ops.WaitMultiplies(1);
            }
        }

        ops.WaitMultiplies(0);
        if (nextRow >= 0)
        {
            // Both warpgroups past their wait 0: no wgmma reads any stage, and every copy into one was waited for.
            Group.Barrier();
            Prologue(ref ops, shared, a, b, s, Plan(s, thread, nextRow * BlockM, nextColumn * BlockN, kStart, batch, transposeB), tiles, lookahead, transposeB);
        }

        // D fragment of m64nNk16: register r of a thread holds row 16 · (warp in warpgroup) + lane / 4 (+8 when bit 1 of
        // r is set), column 8 · (r / 4) + 2 · (lane mod 4) + (r mod 2): the mma.sync C fragment per 8-column n-block.
        int lane = thread & 31;
        int warpInGroup = (thread >> 5) & 3;
        int g = lane >> 2;
        int t = lane & 3;
        long cBase = batch * s.BatchC;
        if (asmEpilogue != 0 && !split && s.PairStores != 0 && (s.HasBias == 0 || s.Beta == 0f) && m0 + BlockM <= s.M && n0 + BlockN <= s.N)
        {
            // Every pair of the tile lies inside C: no per-element checks, no bias.
            long element0 = cBase + ((long)(m0 + (warpgroup * 64) + (warpInGroup * 16) + g) * s.N) + n0 + (2 * t);
            long element1 = element0 + (8L * s.N);
            for (int part = 0; part < Accumulators / 16; part++)
            {
                ops.StorePart(part, c, element0 + (part * 32), element1 + (part * 32), s.CPointer, s.Alpha, bf16);
            }

            return;
        }

        var block = default(AccumulatorBlock);
        for (int part = 0; part < Accumulators / 16; part++)
        {
            ops.Read(part, ref block);
            for (int half = 0; half < 2; half++)
            {
                int row = m0 + (warpgroup * 64) + (warpInGroup * 16) + g + (half * 8);
                if (row >= s.M)
                {
                    continue;
                }

                for (int nb = 0; nb < 4; nb++)
                {
                    int col = n0 + (((part * 4) + nb) * 8) + (2 * t);
                    if (col >= s.N)
                    {
                        continue;
                    }

                    TensorCoreGemmKernels.StorePair(c, partial, bias, s, batch, cBase, split, kSplit, row, col, block.Get((nb * 4) + (half * 2)), block.Get((nb * 4) + (half * 2) + 1));
                }
            }
        }
    }

    /// <summary>
    /// Where this thread's chunks go and come from, fixed for the whole K loop but for a per-tile stride: 4 chunks of A
    /// (rows thread / 8 + 32 i, 16-byte chunk thread mod 8; 8 consecutive threads read one row's 128 bytes) and 8 of B
    /// (the same rows of a [N, K] b; k-rows thread / 32 + 8 i and columns 8 · (thread mod 32) of a [K, N] b, 32 threads
    /// per 512-byte row segment). Row i of a K-major operand is i · 32 rows further (the swizzle's row mod 8 unchanged),
    /// k-row i of an MN-major B 8 k-rows further.
    /// </summary>
    private static WgmmaPlan Plan(TensorCoreShape s, int thread, int m0, int n0, int kStart, long batch, int transposeB)
    {
        int row = thread >> 3;
        int chunk = thread & 7;
        var plan = new WgmmaPlan
        {
            AShared = KRowByte(row, chunk),
            AElement = (batch * s.BatchA) + ((long)(m0 + row) * s.K) + kStart + (chunk * 8),
            ARows = RowsInside(s.M - m0 - row, 32),
            ARowStride = 32L * s.K,
            KChunk = kStart + (chunk * 8),
            BKRow = kStart + (chunk * 8),
        };
        if (transposeB != 0)
        {
            plan.BShared = KRowByte(row, chunk);
            plan.BElement = (batch * s.BatchB) + ((long)(n0 + row) * s.K) + kStart + (chunk * 8);
            plan.BRows = RowsInside(s.N - n0 - row, 32);
            plan.BRowStride = 32L * s.K;
            plan.BTileStride = BlockK;
        }
        else
        {
            int kRow = thread >> 5;
            int nChunk = thread & 31;
            int col = n0 + (nChunk * 8);
            plan.BShared = MnByte(kRow, nChunk);
            plan.BElement = (batch * s.BatchB) + ((long)(kStart + kRow) * s.N) + (col < s.N ? col : 0);
            plan.BRows = col < s.N ? 8 : 0;
            plan.BRowStride = 8L * s.N;
            plan.BTileStride = (long)BlockK * s.N;
            plan.BKRow = kStart + kRow;
        }

        return plan;
    }

    /// <summary>Requests K tiles 0 .. lookahead - 1 into stages 0 .. lookahead - 1, one commit group each (empty past the last tile).</summary>
    private static void Prologue<TOps>(ref TOps ops, ArrayView<ushort> shared, ArrayView<ushort> a, ArrayView<ushort> b, TensorCoreShape s, WgmmaPlan plan,
        int tiles, int lookahead, int transposeB)
        where TOps : struct, IWgmmaOps
    {
        for (int ahead = 0; ahead < lookahead; ahead++)
        {
            if (ahead < tiles)
            {
                LoadStage(ref ops, shared, a, b, s, plan, ahead, ahead, transposeB);
            }

            ops.CommitCopies();
        }
    }

    /// <summary>How many of the rows 0, step, 2 · step, .. are below <paramref name="remaining"/> (0 when none).</summary>
    private static int RowsInside(int remaining, int step) => remaining <= 0 ? 0 : (remaining + step - 1) / step;

    /// <summary>Requests K tile <paramref name="tile"/> of the group's range into stage <paramref name="stage"/> (12 chunks per thread; past M, N or K zero-filled).</summary>
    private static void LoadStage<TOps>(ref TOps ops, ArrayView<ushort> shared, ArrayView<ushort> a, ArrayView<ushort> b, TensorCoreShape s, WgmmaPlan plan,
        int stage, int tile, int transposeB)
        where TOps : struct, IWgmmaOps
    {
        int kOffset = tile * BlockK;
        int aStage = AStageOffset(stage) + plan.AShared;
        long aElement = plan.AElement + kOffset;
        int aRows = plan.KChunk + kOffset < s.K ? plan.ARows : 0;
        CopyRow(ref ops, shared, aStage, a, s.APointer, aElement, plan.ARowStride, aRows, 0, 32 * RowBytes);
        CopyRow(ref ops, shared, aStage, a, s.APointer, aElement, plan.ARowStride, aRows, 1, 32 * RowBytes);
        CopyRow(ref ops, shared, aStage, a, s.APointer, aElement, plan.ARowStride, aRows, 2, 32 * RowBytes);
        CopyRow(ref ops, shared, aStage, a, s.APointer, aElement, plan.ARowStride, aRows, 3, 32 * RowBytes);

        int bStage = BStageOffset(stage) + plan.BShared;
        long bElement = plan.BElement + (tile * plan.BTileStride);
        int bRows;
        int bRowBytes;
        if (transposeB != 0)
        {
            bRows = plan.BKRow + kOffset < s.K ? plan.BRows : 0;
            bRowBytes = 32 * RowBytes;
        }
        else
        {
            // k-row i is inside while BKRow + kOffset + 8 i < K.
            bRows = plan.BRows != 0 ? RowsInside(s.K - plan.BKRow - kOffset, 8) : 0;
            bRowBytes = 8 * RowBytes;
        }

        CopyRow(ref ops, shared, bStage, b, s.BPointer, bElement, plan.BRowStride, bRows, 0, bRowBytes);
        CopyRow(ref ops, shared, bStage, b, s.BPointer, bElement, plan.BRowStride, bRows, 1, bRowBytes);
        CopyRow(ref ops, shared, bStage, b, s.BPointer, bElement, plan.BRowStride, bRows, 2, bRowBytes);
        CopyRow(ref ops, shared, bStage, b, s.BPointer, bElement, plan.BRowStride, bRows, 3, bRowBytes);
        CopyRow(ref ops, shared, bStage, b, s.BPointer, bElement, plan.BRowStride, bRows, 4, bRowBytes);
        CopyRow(ref ops, shared, bStage, b, s.BPointer, bElement, plan.BRowStride, bRows, 5, bRowBytes);
        CopyRow(ref ops, shared, bStage, b, s.BPointer, bElement, plan.BRowStride, bRows, 6, bRowBytes);
        CopyRow(ref ops, shared, bStage, b, s.BPointer, bElement, plan.BRowStride, bRows, 7, bRowBytes);
    }

    /// <summary>Copies chunk <paramref name="i"/> of a plan (inside when i &lt; <paramref name="rows"/>, else zero-filled from a valid address).</summary>
    private static void CopyRow<TOps>(ref TOps ops, ArrayView<ushort> shared, int stageByte, ArrayView<ushort> source, long sourcePointer, long element, long rowStride,
        int rows, int i, int rowBytes)
        where TOps : struct, IWgmmaOps
    {
        bool inside = i < rows;
        ops.CopyChunk(shared, stageByte + (i * rowBytes), source, inside ? element + (i * rowStride) : 0, sourcePointer, inside ? 8 : 0);
    }
}

/// <summary>One thread's staging plan in <see cref="WgmmaGemmKernels"/> (see its Plan method).</summary>
internal struct WgmmaPlan
{
    /// <summary>Stage byte of the thread's first A chunk.</summary>
    public int AShared;

    /// <summary>Element of the first A chunk at tile 0.</summary>
    public long AElement;

    /// <summary>A chunks (of 4) whose rows lie inside M.</summary>
    public int ARows;

    /// <summary>Elements from one A chunk to the next (32 rows).</summary>
    public long ARowStride;

    /// <summary>K index of the A chunk's first element at tile 0.</summary>
    public int KChunk;

    /// <summary>K index of the B chunk at tile 0: its first element for a [N, K] b, its k-row for a [K, N] b.</summary>
    public int BKRow;

    /// <summary>Stage byte (within the B tile) of the first B chunk.</summary>
    public int BShared;

    /// <summary>Element of the first B chunk at tile 0.</summary>
    public long BElement;

    /// <summary>[N, K] b: B chunks (of 8) whose rows lie inside N; [K, N] b: 8 when the columns lie inside N, else 0.</summary>
    public int BRows;

    /// <summary>Elements from one B chunk to the next (32 rows of a [N, K] b, 8 k-rows of a [K, N] b).</summary>
    public long BRowStride;

    /// <summary>Elements from one K tile to the next in b.</summary>
    public long BTileStride;
}

/// <summary>The warpgroup operations as inline PTX: cp.async, fence.proxy.async, wgmma (sm_90a).</summary>
internal struct PtxWgmmaOps : IWgmmaOps
{
    private uint sharedBase;

    public void Begin(int thread)
    {
        // Emitted in the kernel's entry block, so the declaration precedes every use in the PTX text.
        CudaAsm.Emit(WgmmaGemmKernels.DeclareAccumulators);
        Output<uint> raw = default;
        CudaAsm.EmitRef("mov.u32 %0, __dyn_shared_alloca;", ref raw);

        // The driver aligns dynamic shared memory to less than the swizzle's 1024 bytes: the launch requests 1 KB more.
        sharedBase = (raw.Value + (WgmmaGemmKernels.SwizzleAlignment - 1)) & ~(uint)(WgmmaGemmKernels.SwizzleAlignment - 1);
    }

    public readonly uint SharedBase() => sharedBase;

    public readonly void ZeroAccumulators() => CudaAsm.Emit(WgmmaGemmKernels.ZeroAccumulators);

    public readonly void CopyChunk(ArrayView<ushort> shared, int sharedByte, ArrayView<ushort> source, long sourceElement, long sourcePointer, int valid) =>
        CudaAsm.Emit("{\n\t.reg .u64 wgsrc;\n\tcvta.to.global.u64 wgsrc, %1;\n\tcp.async.cg.shared.global [%0], [wgsrc], 16, %2;\n\t}",
            sharedBase + (uint)sharedByte, sourcePointer + (sourceElement * 2), (uint)(valid * 2));

    public readonly void CommitCopies() => CudaAsm.Emit("cp.async.commit_group;");

    public readonly void WaitCopies(int pending)
    {
        // wait_group takes an immediate: one asm string per count (pending is a constant in every instantiation).
        if (pending >= 2)
        {
            CudaAsm.Emit("cp.async.wait_group 2;");
        }
        else
        {
            CudaAsm.Emit("cp.async.wait_group 1;");
        }
    }

    public readonly void FenceProxy() => CudaAsm.Emit("fence.proxy.async.shared::cta;");

    public readonly void Multiply(ArrayView<ushort> shared, long aDescriptor, long bDescriptor, int transposeB, int bf16, int thread, int active)
    {
        // active goes into the asm (its bra.uni skips the block), never into a C# branch (WgmmaGemmKernels.Body says why).
        if (bf16 != 0)
        {
            if (transposeB != 0)
            {
                CudaAsm.Emit(WgmmaGemmKernels.MultiplyBf16KMajorB, aDescriptor, bDescriptor, (uint)active);
            }
            else
            {
                CudaAsm.Emit(WgmmaGemmKernels.MultiplyBf16MnMajorB, aDescriptor, bDescriptor, (uint)active);
            }
        }
        else if (transposeB != 0)
        {
            CudaAsm.Emit(WgmmaGemmKernels.MultiplyF16KMajorB, aDescriptor, bDescriptor, (uint)active);
        }
        else
        {
            CudaAsm.Emit(WgmmaGemmKernels.MultiplyF16MnMajorB, aDescriptor, bDescriptor, (uint)active);
        }
    }

    public readonly void WaitMultiplies(int pending)
    {
        // wait_group takes an immediate: one asm string per count (pending is a constant at every call site).
        if (pending >= 1)
        {
            CudaAsm.Emit("wgmma.wait_group.sync.aligned 1;");
        }
        else
        {
            CudaAsm.Emit("wgmma.wait_group.sync.aligned 0;");
        }
    }

    public readonly void StorePart(int part, ArrayView<ushort> c, long element0, long element1, long cPointer, float alpha, int bf16)
    {
        long at0 = cPointer + (element0 * 2);
        long at1 = cPointer + (element1 * 2);

        // One asm string per part and format (the accumulator names are part of the text); bf16 is a constant in
        // every instantiation, so only one format's strings remain.
        if (bf16 != 0)
        {
            switch (part)
            {
                case 0: CudaAsm.Emit(WgmmaGemmKernels.StoreBf16Part0, at0, at1, alpha); break;
                case 1: CudaAsm.Emit(WgmmaGemmKernels.StoreBf16Part1, at0, at1, alpha); break;
                case 2: CudaAsm.Emit(WgmmaGemmKernels.StoreBf16Part2, at0, at1, alpha); break;
                case 3: CudaAsm.Emit(WgmmaGemmKernels.StoreBf16Part3, at0, at1, alpha); break;
                case 4: CudaAsm.Emit(WgmmaGemmKernels.StoreBf16Part4, at0, at1, alpha); break;
                case 5: CudaAsm.Emit(WgmmaGemmKernels.StoreBf16Part5, at0, at1, alpha); break;
                case 6: CudaAsm.Emit(WgmmaGemmKernels.StoreBf16Part6, at0, at1, alpha); break;
                default: CudaAsm.Emit(WgmmaGemmKernels.StoreBf16Part7, at0, at1, alpha); break;
            }
        }
        else
        {
            switch (part)
            {
                case 0: CudaAsm.Emit(WgmmaGemmKernels.StoreF16Part0, at0, at1, alpha); break;
                case 1: CudaAsm.Emit(WgmmaGemmKernels.StoreF16Part1, at0, at1, alpha); break;
                case 2: CudaAsm.Emit(WgmmaGemmKernels.StoreF16Part2, at0, at1, alpha); break;
                case 3: CudaAsm.Emit(WgmmaGemmKernels.StoreF16Part3, at0, at1, alpha); break;
                case 4: CudaAsm.Emit(WgmmaGemmKernels.StoreF16Part4, at0, at1, alpha); break;
                case 5: CudaAsm.Emit(WgmmaGemmKernels.StoreF16Part5, at0, at1, alpha); break;
                case 6: CudaAsm.Emit(WgmmaGemmKernels.StoreF16Part6, at0, at1, alpha); break;
                default: CudaAsm.Emit(WgmmaGemmKernels.StoreF16Part7, at0, at1, alpha); break;
            }
        }
    }

    public readonly void Read(int part, ref AccumulatorBlock block)
    {
        Output<float> v0 = default, v1 = default, v2 = default, v3 = default, v4 = default, v5 = default, v6 = default, v7 = default;
        Output<float> v8 = default, v9 = default, v10 = default, v11 = default, v12 = default, v13 = default, v14 = default, v15 = default;
        switch (part)
        {
            case 0:
                CudaAsm.EmitRef(WgmmaGemmKernels.ReadAccumulatorsPart0, ref v0, ref v1, ref v2, ref v3, ref v4, ref v5, ref v6, ref v7, ref v8, ref v9, ref v10, ref v11, ref v12, ref v13, ref v14, ref v15);
                break;
            case 1:
                CudaAsm.EmitRef(WgmmaGemmKernels.ReadAccumulatorsPart1, ref v0, ref v1, ref v2, ref v3, ref v4, ref v5, ref v6, ref v7, ref v8, ref v9, ref v10, ref v11, ref v12, ref v13, ref v14, ref v15);
                break;
            case 2:
                CudaAsm.EmitRef(WgmmaGemmKernels.ReadAccumulatorsPart2, ref v0, ref v1, ref v2, ref v3, ref v4, ref v5, ref v6, ref v7, ref v8, ref v9, ref v10, ref v11, ref v12, ref v13, ref v14, ref v15);
                break;
            case 3:
                CudaAsm.EmitRef(WgmmaGemmKernels.ReadAccumulatorsPart3, ref v0, ref v1, ref v2, ref v3, ref v4, ref v5, ref v6, ref v7, ref v8, ref v9, ref v10, ref v11, ref v12, ref v13, ref v14, ref v15);
                break;
            case 4:
                CudaAsm.EmitRef(WgmmaGemmKernels.ReadAccumulatorsPart4, ref v0, ref v1, ref v2, ref v3, ref v4, ref v5, ref v6, ref v7, ref v8, ref v9, ref v10, ref v11, ref v12, ref v13, ref v14, ref v15);
                break;
            case 5:
                CudaAsm.EmitRef(WgmmaGemmKernels.ReadAccumulatorsPart5, ref v0, ref v1, ref v2, ref v3, ref v4, ref v5, ref v6, ref v7, ref v8, ref v9, ref v10, ref v11, ref v12, ref v13, ref v14, ref v15);
                break;
            case 6:
                CudaAsm.EmitRef(WgmmaGemmKernels.ReadAccumulatorsPart6, ref v0, ref v1, ref v2, ref v3, ref v4, ref v5, ref v6, ref v7, ref v8, ref v9, ref v10, ref v11, ref v12, ref v13, ref v14, ref v15);
                break;
            default:
                CudaAsm.EmitRef(WgmmaGemmKernels.ReadAccumulatorsPart7, ref v0, ref v1, ref v2, ref v3, ref v4, ref v5, ref v6, ref v7, ref v8, ref v9, ref v10, ref v11, ref v12, ref v13, ref v14, ref v15);
                break;
        }

        block.V0 = v0.Value;
        block.V1 = v1.Value;
        block.V2 = v2.Value;
        block.V3 = v3.Value;
        block.V4 = v4.Value;
        block.V5 = v5.Value;
        block.V6 = v6.Value;
        block.V7 = v7.Value;
        block.V8 = v8.Value;
        block.V9 = v9.Value;
        block.V10 = v10.Value;
        block.V11 = v11.Value;
        block.V12 = v12.Value;
        block.V13 = v13.Value;
        block.V14 = v14.Value;
        block.V15 = v15.Value;
    }
}

/// <summary>
/// The warpgroup operations emulated from the PTX ISA's definitions, one thread at a time: both wgmma operands are in
/// shared memory, so a thread computes exactly the D-fragment elements it owns by decoding the two descriptors (start
/// address, leading and stride byte offsets, 128-byte swizzle: byte-address bits 4-6 XOR bits 7-9) the way the tensor
/// core addresses the canonical layouts, with no cross-thread exchange. Only the 128-byte swizzle mode is modelled;
/// any other mode reads without the XOR (which the staging never matches). Copies are synchronous element-wise stores,
/// the waits and fences no-ops. Accumulators live in <see cref="Scratch"/>.
/// </summary>
internal struct EmulatedWgmmaOps : IWgmmaOps
{
    /// <summary><see cref="WgmmaGemmKernels.Accumulators"/> floats for every thread of every group.</summary>
    public ArrayView<float> Scratch;

    /// <summary>
    /// Non-zero: A's chunks are stored one 16-byte slot off their swizzled place (a deliberately wrong XOR, for tests;
    /// A only, since the same k permutation of both K-major operands would leave every dot product unchanged).
    /// </summary>
    public int BreakSwizzle;

    private long scratchBase;

    public void Begin(int thread)
    {
        long group = ((((long)Grid.IdxZ * Grid.DimY) + Grid.IdxY) * Grid.DimX) + Grid.IdxX;
        scratchBase = ((group * WgmmaGemmKernels.GroupSize) + thread) * WgmmaGemmKernels.Accumulators;
        for (int i = 0; i < WgmmaGemmKernels.Accumulators; i++)
        {
            Scratch[scratchBase + i] = 0f;
        }
    }

    public readonly uint SharedBase() => 0;

    public readonly void ZeroAccumulators()
    {
        for (int i = 0; i < WgmmaGemmKernels.Accumulators; i++)
        {
            Scratch[scratchBase + i] = 0f;
        }
    }

    public readonly void CopyChunk(ArrayView<ushort> shared, int sharedByte, ArrayView<ushort> source, long sourceElement, long sourcePointer, int valid) =>
        TensorCoreGemmKernels.CopyChunkScalar(shared, sharedByte ^ ((BreakSwizzle != 0 && sharedByte % WgmmaGemmKernels.StageBytes < WgmmaGemmKernels.AStageBytes ? 1 : 0) << 4), source, sourceElement, valid);

    public readonly void CommitCopies()
    {
    }

    public readonly void WaitCopies(int pending)
    {
    }

    public readonly void FenceProxy()
    {
    }

    public readonly void Multiply(ArrayView<ushort> shared, long aDescriptor, long bDescriptor, int transposeB, int bf16, int thread, int active)
    {
        if (active == 0)
        {
            return;
        }

        int lane = thread & 31;
        int warpInGroup = (thread >> 5) & 3;
        int g = lane >> 2;
        int t = lane & 3;
        for (int step = 0; step < WgmmaGemmKernels.KSteps; step++)
        {
            // The asm advances the step-0 descriptors by the same amounts (WgmmaGemmKernels.g.cs).
            long aStep = aDescriptor + (step * WgmmaGemmKernels.KMajorAdvance);
            long bStep = bDescriptor + (step * (transposeB != 0 ? WgmmaGemmKernels.KMajorAdvance : WgmmaGemmKernels.MnMajorAdvance));
            for (int r = 0; r < WgmmaGemmKernels.Accumulators; r++)
            {
                int row = (warpInGroup * 16) + g + (((r >> 1) & 1) * 8);
                int col = ((r >> 2) * 8) + (2 * t) + (r & 1);
                float sum = 0f;
                for (int k = 0; k < 16; k++)
                {
                    float av = GpuMath.Load16(shared[KMajorByte(aStep, row, k) >> 1], bf16);
                    int bByte = transposeB != 0 ? KMajorByte(bStep, col, k) : MnMajorByte(bStep, k, col);
                    sum += av * GpuMath.Load16(shared[bByte >> 1], bf16);
                }

                Scratch[scratchBase + r] += sum;
            }
        }
    }

    public readonly void WaitMultiplies(int pending)
    {
    }

    public readonly void StorePart(int part, ArrayView<ushort> c, long element0, long element1, long cPointer, float alpha, int bf16)
    {
        for (int i = 0; i < 16; i++)
        {
            // Register 16 · part + i: n-block i / 4, row half bit 1, column bit 0 (the asm's order).
            long at = (((i >> 1) & 1) != 0 ? element1 : element0) + ((i >> 2) * 8) + (i & 1);
            c[at] = GpuMath.Store16(alpha * Scratch[scratchBase + (part * 16) + i], bf16);
        }
    }

    public readonly void Read(int part, ref AccumulatorBlock block)
    {
        long at = scratchBase + (part * 16);
        block.V0 = Scratch[at];
        block.V1 = Scratch[at + 1];
        block.V2 = Scratch[at + 2];
        block.V3 = Scratch[at + 3];
        block.V4 = Scratch[at + 4];
        block.V5 = Scratch[at + 5];
        block.V6 = Scratch[at + 6];
        block.V7 = Scratch[at + 7];
        block.V8 = Scratch[at + 8];
        block.V9 = Scratch[at + 9];
        block.V10 = Scratch[at + 10];
        block.V11 = Scratch[at + 11];
        block.V12 = Scratch[at + 12];
        block.V13 = Scratch[at + 13];
        block.V14 = Scratch[at + 14];
        block.V15 = Scratch[at + 15];
    }

    /// <summary>
    /// Byte of element (<paramref name="mn"/>, <paramref name="k"/>) of a K-major operand of a k16 step: 8-row atoms
    /// at the stride byte offset, rows 128 bytes apart within one, k contiguous; then the swizzle.
    /// </summary>
    internal static int KMajorByte(long descriptor, int mn, int k)
    {
        var (start, _, stride, mode) = Decode(descriptor);
        return Swizzle(start + ((mn >> 3) * stride) + ((mn & 7) * WgmmaGemmKernels.RowBytes) + (k * 2), mode);
    }

    /// <summary>
    /// Byte of element (<paramref name="k"/>, <paramref name="n"/>) of an MN-major operand of a k16 step: 64-column
    /// blocks at the leading byte offset, 8-k-row groups at the stride byte offset, k-rows 128 bytes apart, n contiguous;
    /// then the swizzle.
    /// </summary>
    internal static int MnMajorByte(long descriptor, int k, int n)
    {
        var (start, leading, stride, mode) = Decode(descriptor);
        return Swizzle(start + ((n >> 6) * leading) + ((k >> 3) * stride) + ((k & 7) * WgmmaGemmKernels.RowBytes) + ((n & 63) * 2), mode);
    }

    private static (int Start, int Leading, int Stride, int Mode) Decode(long descriptor) =>
        ((int)(descriptor & 0x3FFF) << 4, (int)((descriptor >> 16) & 0x3FFF) << 4, (int)((descriptor >> 32) & 0x3FFF) << 4, (int)((descriptor >> 62) & 3));

    private static int Swizzle(int address, int mode) => mode == 1 ? address ^ (((address >> 7) & 7) << 4) : address;
}

/// <summary>Launch shape and split-K plan of <see cref="WgmmaGemmKernels"/> (shared by the facade and the tests).</summary>
internal static class WgmmaLaunch
{
    /// <summary>Fewest K elements in one split-K chunk (eight stages): enough wgmma work to pay a chunk's prologue and its float32 partial tile.</summary>
    public const int MinSplitK = 8 * WgmmaGemmKernels.BlockK;

    /// <summary>Grid (⌈N/256⌉, ⌈M/128⌉, z) of 256-thread groups with the stages' dynamic shared memory.</summary>
    public static KernelConfig Config(int z, int m, int n) => new(
        new Index3D((n + WgmmaGemmKernels.BlockN - 1) / WgmmaGemmKernels.BlockN, (m + WgmmaGemmKernels.BlockM - 1) / WgmmaGemmKernels.BlockM, z),
        new Index3D(WgmmaGemmKernels.GroupSize, 1, 1),
        SharedMemoryConfig.RequestDynamic<ushort>(WgmmaGemmKernels.SharedBytes / sizeof(ushort)));

    /// <summary>
    /// The persistent grid (<see cref="PersistentGrouped"/>): per z, as many groups as tiles but at most an even share of
    /// <paramref name="multiprocessors"/> (one group fits per SM); <paramref name="multiprocessors"/> ≤ 0 (the
    /// simulator): one group per tile.
    /// </summary>
    public static KernelConfig PersistentConfig(int z, int m, int n, int multiprocessors)
    {
        var grid = Config(z, m, n);
        int jobs = grid.GridDim.X * grid.GridDim.Y;
        int groups = multiprocessors > 0 ? Math.Min(jobs, Math.Max(1, multiprocessors / z)) : jobs;
        return new(new Index3D(groups, 1, z), grid.GroupDim, grid.SharedMemoryConfig);
    }

    /// <summary>
    /// Whether the kernel takes a product of this shape: every staged chunk whole and 16-byte aligned (what
    /// <see cref="TensorCoreLaunch.Shape"/> reports as <see cref="TensorCoreShape.AsyncCopy"/>).
    /// </summary>
    public static bool Supports(TensorCoreShape shape) => shape.AsyncCopy != 0;

    /// <summary>
    /// Split-K plan: (1, K) unless one matrix (batch 1) has at most half as many 128 × 256 tiles as the device has SMs
    /// (one group per SM: 193 KB of shared memory); then as many chunks of K (multiples of 64, at least
    /// <see cref="MinSplitK"/>) as keep tiles × splits within one wave. No SM count (the simulator): never.
    /// </summary>
    public static (int Splits, int KChunk) PlanSplitK(int batch, int m, int k, int n, int multiprocessors)
    {
        var grid = Config(1, m, n).GridDim;
        long tiles = (long)grid.X * grid.Y;
        if (batch != 1 || multiprocessors <= 0 || 2 * tiles > multiprocessors)
        {
            return (1, k);
        }

        return ChunkK(k, (int)Math.Min(multiprocessors / tiles, k / MinSplitK));
    }

    /// <summary>K cut into at most <paramref name="splits"/> chunks of whole 64-deep stages (the last one shorter); (1, K) below two.</summary>
    public static (int Splits, int KChunk) ChunkK(int k, int splits)
    {
        if (splits < 2)
        {
            return (1, k);
        }

        const int Tile = WgmmaGemmKernels.BlockK;
        int chunk = ((k + splits - 1) / splits + Tile - 1) / Tile * Tile;
        int used = (k + chunk - 1) / chunk;
        return used > 1 ? (used, chunk) : (1, k);
    }

    /// <summary>Floats of scratch the emulated kernel needs for this launch.</summary>
    public static long EmulationScratch(int z, int m, int n)
    {
        var grid = Config(z, m, n).GridDim;
        return (long)grid.X * grid.Y * grid.Z * WgmmaGemmKernels.GroupSize * WgmmaGemmKernels.Accumulators;
    }
}
