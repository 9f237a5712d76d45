using System.Runtime.CompilerServices;
using ILGPU;
using ILGPU.Runtime.Cuda;

namespace GemsInjector.Kernels.Ilgpu;

/// <summary>Shape, strides and device addresses of a 16-bit tensor-core GEMM: C[b] = alpha·A[b]·B[b] + beta·bias.</summary>
internal struct TensorCoreShape
{
    public int M;
    public int N;
    public int K;

    /// <summary>Non-zero when b is stored [N, K] (C = A·Bᵀ); else b is [K, N].</summary>
    public int TransposeB;

    /// <summary>Non-zero for bfloat16 operands, else float16.</summary>
    public int Bf16;

    /// <summary>
    /// Non-zero when every 8-element chunk the kernel stages starts on a 16-byte boundary (K, and N for a [K, N] b, are
    /// multiples of 8 and both base addresses 16-byte aligned): chunks then go global → shared by <c>cp.async</c>.
    /// Zero: each thread loads its chunks element by element (any K, any N; the CPU emulation always does).
    /// </summary>
    public int AsyncCopy;

    /// <summary>Device addresses of a[0] and b[0] (cp.async needs raw global addresses; 0 when not copying asynchronously).</summary>
    public long APointer;
    public long BPointer;

    /// <summary>Per-batch element offsets of A, B, C and the bias.</summary>
    public long BatchA;
    public long BatchB;
    public long BatchC;
    public long BatchBias;

    /// <summary>Bias strides (0 to broadcast a row).</summary>
    public long StrideBiasM;
    public long StrideBiasN;
    public float Alpha;
    public float Beta;
    public int HasBias;

    /// <summary>
    /// Split-K: more than 1 when Grid.Z takes chunks of K of one matrix (batch 1) instead of the batch; each group then
    /// writes its float32 sums (no alpha, no bias) to partial[split, M, N] and <see cref="HalfGemvKernels.GemvReduce16"/>
    /// applies the epilogue. 1: Grid.Z is the batch and the kernel writes C itself.
    /// </summary>
    public int SplitK;

    /// <summary>K per split, a multiple of <see cref="TensorCoreGemmKernels.BlockK"/> (so only the last chunk has a K edge); K when not split.</summary>
    public int KChunk;

    /// <summary>
    /// Non-zero when N is even and C starts on a 4-byte boundary: the epilogue then stores each thread's two adjacent
    /// columns as one 32-bit word of C (or 8 bytes of float32 partials, whose scratch buffer is always aligned).
    /// </summary>
    public int PairStores;

    /// <summary>Device address of c[0], for epilogues that store from inline PTX (the wgmma kernel's <c>wgmma-pe</c>); 0 where unused.</summary>
    public long CPointer;
}

/// <summary>Two float32 lanes: one 8-byte store when the element index is even and the view 8-byte aligned.</summary>
internal struct Float2
{
    public float X;
    public float Y;
}

/// <summary>
/// Where one thread's 8-element chunk of one operand goes in every stage and comes from in every k16 tile: the tile's
/// chunk is at <see cref="Element"/> + tile · <see cref="TileStride"/>, its K index is <see cref="K"/> + tile · 16.
/// </summary>
internal struct ChunkPlan
{
    /// <summary>Byte offset within a stage (swizzled).</summary>
    public int SharedByte;

    /// <summary>Element index in the source at the group's first k16 tile.</summary>
    public long Element;

    /// <summary>Elements from one k16 tile's chunk to the next: 16 along a k-contiguous row, 16 · N down a [K, N] b.</summary>
    public long TileStride;

    /// <summary>K index of the chunk's first element at the first tile.</summary>
    public int K;

    /// <summary>
    /// Non-zero when the chunk runs along K (A, b stored [N, K]): then <see cref="Count"/> is 8 for a row inside M (or N)
    /// and the K edge cuts it; zero for b stored [K, N]: then <see cref="Count"/> is the columns left before N and a K
    /// index past K empties it.
    /// </summary>
    public int AlongK;

    /// <summary>See <see cref="AlongK"/>.</summary>
    public int Count;
}

/// <summary>Sixteen accumulators: four n-blocks of one 16-row m-block of a warp tile (4 per 8-column n-block, PTX C-fragment order).</summary>
internal struct AccumulatorBlock
{
    public float V0, V1, V2, V3, V4, V5, V6, V7, V8, V9, V10, V11, V12, V13, V14, V15;

    public readonly float Get(int i) => i switch
    {
        0 => V0, 1 => V1, 2 => V2, 3 => V3, 4 => V4, 5 => V5, 6 => V6, 7 => V7,
        8 => V8, 9 => V9, 10 => V10, 11 => V11, 12 => V12, 13 => V13, 14 => V14, _ => V15,
    };
}

/// <summary>
/// A tile configuration of the tensor-core GEMM, as a type argument (each is its own compiled kernel in which both values
/// are constants): <see cref="NBlocks"/> 8-column n-blocks per warp (warp tile 64 × 8·NBlocks) and
/// <see cref="WarpColumns"/> warps along N (two along M), so a group of 64·WarpColumns threads computes 128 × 8·NBlocks·WarpColumns of C.
/// </summary>
internal interface ITensorCoreTile
{
    /// <summary>8-column mma tiles per warp: 4 or 8.</summary>
    int NBlocks { get; }

    /// <summary>Warps along N: 2 or 4.</summary>
    int WarpColumns { get; }
}

/// <summary>128 × 128 group tiles of 8 warps (2 × 4), 64 × 32 per warp, 64 accumulators per thread.</summary>
internal readonly struct SquareTile : ITensorCoreTile
{
    /// <inheritdoc/>
    public int NBlocks => 4;

    /// <inheritdoc/>
    public int WarpColumns => 4;
}

/// <summary>128 × 128 group tiles of 4 warps (2 × 2), 64 × 64 per warp, 128 accumulators per thread.</summary>
internal readonly struct QuadTile : ITensorCoreTile
{
    /// <inheritdoc/>
    public int NBlocks => 8;

    /// <inheritdoc/>
    public int WarpColumns => 2;
}

/// <summary>128 × 256 group tiles of 8 warps (2 × 4), 64 × 64 per warp, 128 accumulators per thread.</summary>
internal readonly struct WideTile : ITensorCoreTile
{
    /// <inheritdoc/>
    public int NBlocks => 8;

    /// <inheritdoc/>
    public int WarpColumns => 4;
}

/// <summary>
/// The warp-level operations of the tensor-core GEMM, so one kernel body (tiling, staging, addressing, edges, epilogue)
/// runs on the GPU through inline PTX (<see cref="PtxTensorCoreOps"/>) and on ILGPU's CPU accelerator through an exact
/// emulation of ldmatrix and mma.sync register ownership (<see cref="EmulatedTensorCoreOps"/>). The tile-dependent
/// operations take the tile configuration (<see cref="ITensorCoreTile"/>) as a type argument, constant in each compiled kernel.
/// </summary>
internal interface ITensorCoreOps
{
    /// <summary>Zeroes this thread's accumulators (first statement of the kernel).</summary>
    void Begin<TTile>(int thread)
        where TTile : struct, ITensorCoreTile;

    /// <summary>
    /// Copies one 8-element chunk to shared memory at <paramref name="sharedByte"/>: the first <paramref name="valid"/>
    /// elements from <paramref name="source"/>[<paramref name="sourceElement"/>..], zeros for the rest.
    /// </summary>
    void CopyChunk(ArrayView<ushort> shared, int sharedByte, ArrayView<ushort> source, long sourceElement, long sourcePointer, int valid, int asyncCopy);

    /// <summary>Closes the group of asynchronous copies issued so far.</summary>
    void Commit();

    /// <summary>Waits until at most <paramref name="pending"/> (0, 1 or 2) committed copy groups are still in flight.</summary>
    void Wait(int pending);

    /// <summary>One k16 step of the warp tile: fragments from the given shared stage, 4 · n-blocks mma.sync into the accumulators.</summary>
    void Step<TTile>(ArrayView<ushort> shared, int stage, int warpRow, int warpCol, int lane, int transposeB, int bf16)
        where TTile : struct, ITensorCoreTile;

    /// <summary>Accumulators 16 · <paramref name="part"/> .. 16 · <paramref name="part"/> + 15 (m-block part / (n-blocks / 4), four of its n-blocks).</summary>
    void Read<TTile>(int part, ref AccumulatorBlock block)
        where TTile : struct, ITensorCoreTile;
}

/// <summary>
/// 16-bit GEMM on tensor cores (mma.sync m16n8k16, float32 accumulation), for sm_80 PTX (what ILGPU emits; runs on
/// the H100 / H200). A group of 2 × warp-columns warps computes a 128 × (8 · n-blocks · warp-columns) tile of C, each
/// warp 64 × (8 · n-blocks) as 4 × n-blocks m16n8 tiles (<see cref="ITensorCoreTile"/>): SquareTile 8 warps of 64 × 32
/// (128 × 128, 64 accumulators per thread), QuadTile 4 warps of 64 × 64 (128 × 128, 128 accumulators), WideTile 8 warps
/// of 64 × 64 (128 × 256; half the ldmatrix per mma of 64 × 32, twice the mma per barrier). Accumulators are
/// PTX registers declared once at the top of the kernel so they stay in registers across the K loop instead of
/// round-tripping through ILGPU's local-memory operand slots.
/// K goes in tiles of 16 (one k16 step) through four shared stages (32 or 48 KB of dynamic shared memory): while the
/// tensor cores work on one, cp.async fills the three ahead. Stage rows are unpadded and their 16-byte chunks XOR-swizzled
/// (<see cref="KRowByte"/>, <see cref="NRowByte"/>), so the eight 16-byte rows of every ldmatrix land in distinct bank
/// quads. Edges: chunks past M, N or K are zero-filled (cp.async with a short source size), and the epilogue stores only
/// rows &lt; M and columns &lt; N, rounding once to 16 bits (round to nearest even) after alpha and beta·bias in float32,
/// like <see cref="HalfMatrixKernels.Gemm16"/>.
/// Grid: (⌈N/BlockN⌉, ⌈M/128⌉, batch), or (⌈N/BlockN⌉, ⌈M/128⌉, splits) with split-K (<see cref="TensorCoreShape.SplitK"/>),
/// when one matrix has too few tiles to fill the SMs.
/// </summary>
internal static partial class TensorCoreGemmKernels
{
    /// <summary>Threads per group: 2 warp rows × <paramref name="warpColumns"/> warps of 32.</summary>
    public static int GroupSize(int warpColumns) => WarpRows * warpColumns * 32;

    /// <summary>Columns of C per warp.</summary>
    public static int WarpN(int nBlocks) => nBlocks * 8;

    /// <summary>Columns of C per group.</summary>
    public static int BlockN(int nBlocks, int warpColumns) => warpColumns * nBlocks * 8;

    /// <summary>Bytes of one B stage ([BlockN][16] or [16][BlockN], unpadded).</summary>
    public static int BStageBytes(int nBlocks, int warpColumns) => BlockN(nBlocks, warpColumns) * BlockK * 2;

    /// <summary>Dynamic shared bytes: the A stages, then the B stages.</summary>
    public static int SharedBytes(int nBlocks, int warpColumns) => Stages * (AStageBytes + BStageBytes(nBlocks, warpColumns));

    /// <summary>8-element chunks of A each thread stages per k16 tile (BlockM · 2 chunks over the group).</summary>
    public static int AChunksPerThread(int warpColumns) => BlockM * 2 / GroupSize(warpColumns);

    /// <summary>8-element chunks of B each thread stages per k16 tile (BlockN · 2 chunks over the group).</summary>
    public static int BChunksPerThread(int nBlocks, int warpColumns) => BlockN(nBlocks, warpColumns) * 2 / GroupSize(warpColumns);

    /// <summary>float32 accumulators per thread.</summary>
    public static int Accumulators(int nBlocks) => MBlocks * nBlocks * 4;

    /// <summary>The tensor-core GEMM through inline PTX (CUDA only), warp tiles of <typeparamref name="TTile"/> n-blocks.</summary>
    [IlgpuKernel]
    [IlgpuKernelVariant(typeof(SquareTile))]
    [IlgpuKernelVariant(typeof(QuadTile))]
    [IlgpuKernelVariant(typeof(WideTile))]
    public static void Gemm16TensorCore<TTile>(ArrayView<ushort> a, ArrayView<ushort> b, ArrayView<ushort> bias, ArrayView<ushort> c, ArrayView<float> partial,
        TensorCoreShape s)
        where TTile : struct, ITensorCoreTile
    {
        var ops = default(PtxTensorCoreOps);
        Body<PtxTensorCoreOps, TTile>(ref ops, a, b, bias, c, partial, s);
    }

    /// <summary>
    /// The same kernel body with ldmatrix and mma.sync emulated lane by lane (accumulators in <paramref name="scratch"/>,
    /// <see cref="Accumulators"/> floats per thread of every group): for ILGPU's CPU accelerator with 32-thread warps.
    /// </summary>
    [IlgpuKernel(SimulatorOnly = true)]
    [IlgpuKernelVariant(typeof(SquareTile))]
    [IlgpuKernelVariant(typeof(QuadTile))]
    [IlgpuKernelVariant(typeof(WideTile))]
    public static void Gemm16TensorCoreEmulated<TTile>(ArrayView<ushort> a, ArrayView<ushort> b, ArrayView<ushort> bias, ArrayView<ushort> c,
        ArrayView<float> partial, ArrayView<float> scratch, TensorCoreShape s)
        where TTile : struct, ITensorCoreTile
    {
        var ops = new EmulatedTensorCoreOps { Scratch = scratch };
        Body<EmulatedTensorCoreOps, TTile>(ref ops, a, b, bias, c, partial, s);
    }

    /// <summary>Byte offset (in dynamic shared memory) of A stage <paramref name="stage"/>.</summary>
    public static int AStageOffset(int stage) => stage * AStageBytes;

    /// <summary>Byte offset of B stage <paramref name="stage"/>.</summary>
    public static int BStageOffset(int stage, int nBlocks, int warpColumns) => (Stages * AStageBytes) + (stage * BStageBytes(nBlocks, warpColumns));

    /// <summary>
    /// Byte offset of 16-byte chunk <paramref name="chunk"/> (0 or 1) of row <paramref name="row"/> of a k-contiguous
    /// stage (A, or b stored [N, K]): rows are 32 bytes, so rows r and r + 4 would share bank quads; flipping the chunk
    /// of rows 4-7 (mod 8) gives the eight rows of an ldmatrix quads 0, 2, 4, 6 and 1, 3, 5, 7. Adding 16 rows keeps the
    /// flip, so the m-blocks of a warp are fixed offsets (<see cref="AmBlockStrideBytes"/>).
    /// </summary>
    public static int KRowByte(int row, int chunk) => (row * KRowBytes) + ((chunk ^ ((row >> 2) & 1)) * 16);

    /// <summary>
    /// Byte offset of 16-byte chunk <paramref name="chunk"/> of k-row <paramref name="k"/> of an n-contiguous B stage
    /// (b stored [K, N]): rows are a multiple of 128 bytes, so the eight k-rows of an ldmatrix.trans at one chunk would share
    /// one bank quad; XOR-ing the chunk with k mod 8 spreads them over all eight.
    /// </summary>
    public static int NRowByte(int k, int chunk, int nBlocks, int warpColumns) => (k * BlockN(nBlocks, warpColumns) * 2) + ((chunk ^ (k & 7)) * 16);

    /// <summary>
    /// The shared address lane <paramref name="lane"/> gives ldmatrix.x4 for m-block 0 of A: lanes 0-7 rows 0-7 at k 0,
    /// 8-15 rows 8-15 at k 0, 16-23 rows 0-7 at k 8, 24-31 rows 8-15 at k 8, so registers 0-3 are the PTX A fragment
    /// a0-a3. Later m-blocks are <see cref="AmBlockStrideBytes"/> further.
    /// </summary>
    public static int ALaneByte(int stage, int warpRow, int lane) =>
        AStageOffset(stage) + KRowByte((warpRow * WarpM) + (lane & 7) + (((lane >> 3) & 1) * 8), lane >> 4);

    /// <summary>
    /// The shared address lane <paramref name="lane"/> gives ldmatrix.x4 for n-pair <paramref name="pair"/> (16 columns)
    /// of B, so that registers 0-3 are b0, b1 of the pair's first n-block and b0, b1 of its second. B stored [n][k] (plain
    /// ldmatrix): lanes 0-7 n 0-7 at k 0, 8-15 n 0-7 at k 8, 16-23 n 8-15 at k 0, 24-31 n 8-15 at k 8. B stored [k][n]
    /// (ldmatrix.trans): lanes 0-7 k 0-7 at n 0, 8-15 k 8-15 at n 0, 16-23 k 0-7 at n 8, 24-31 k 8-15 at n 8.
    /// </summary>
    public static int BLaneByte(int stage, int warpCol, int pair, int lane, int transposeB, int nBlocks, int warpColumns)
    {
        int n = (warpCol * WarpN(nBlocks)) + (pair * 16);
        return transposeB != 0
            ? BStageOffset(stage, nBlocks, warpColumns) + KRowByte(n + (lane & 7) + ((lane >> 4) * 8), (lane >> 3) & 1)
            : BStageOffset(stage, nBlocks, warpColumns) + NRowByte((lane & 7) + (((lane >> 3) & 1) * 8), (n / 8) + (lane >> 4), nBlocks, warpColumns);
    }

    /// <summary>The kernel body shared by the PTX and emulated operations.</summary>
    internal static void Body<TOps, TTile>(ref TOps ops, ArrayView<ushort> a, ArrayView<ushort> b, ArrayView<ushort> bias, ArrayView<ushort> c, ArrayView<float> partial,
        TensorCoreShape s)
        where TOps : struct, ITensorCoreOps
        where TTile : struct, ITensorCoreTile
    {
        int nBlocks = default(TTile).NBlocks;
        int warpColumns = default(TTile).WarpColumns;
        int groupSize = GroupSize(warpColumns);
        int thread = Group.IdxX;
        ops.Begin<TTile>(thread);
        var shared = SharedMemory.GetDynamic<ushort>();
        int lane = thread & 31;
        int warp = thread >> 5;
        int warpRow = warp / warpColumns;
        int warpCol = warp % warpColumns;
        int m0 = Grid.IdxY * BlockM;
        int n0 = Grid.IdxX * BlockN(nBlocks, warpColumns);

        // A warp whose rows all lie past M (the second warp row when M ≤ 64, or in the last row tile), or whose columns
        // all lie past N (in the last column tile), stages and waits like the others but issues no ldmatrix / mma: its
        // sub-partition's tensor core is left to the warps with outputs (the branch is uniform per warp, as ldmatrix and
        // mma.sync require).
        bool warpHasOutputs = m0 + (warpRow * WarpM) < s.M && n0 + (warpCol * WarpN(nBlocks)) < s.N;
        bool split = s.SplitK > 1;
        long batch = split ? 0 : Grid.IdxZ;
        int kSplit = split ? Grid.IdxZ : 0;

        // This group's K range: chunk boundaries are multiples of BlockK, so every tile but the very last of K is full
        // and the chunks' "K - k" edge test stays the only one needed.
        int kStart = kSplit * s.KChunk;
        int kLength = s.K - kStart < s.KChunk ? s.K - kStart : s.KChunk;
        int tiles = (kLength + BlockK - 1) / BlockK;

        // Each thread stages one or two chunks of A and one or two of B per tile (the group's chunks over its threads);
        // where they go and come from is fixed for the whole K loop but for a stride per tile.
        bool twoA = AChunksPerThread(warpColumns) > 1;
        bool twoB = BChunksPerThread(nBlocks, warpColumns) > 1;
        var aPlan0 = APlan(s, thread, m0, kStart, batch * s.BatchA);
        var aPlan1 = twoA ? APlan(s, thread + groupSize, m0, kStart, batch * s.BatchA) : aPlan0;
        var bPlan0 = BPlan(s, thread, n0, kStart, batch * s.BatchB, nBlocks, warpColumns);
        var bPlan1 = twoB ? BPlan(s, thread + groupSize, n0, kStart, batch * s.BatchB, nBlocks, warpColumns) : bPlan0;

        // Pipeline of Stages shared stages (a power of two): tiles 0 .. Stages - 2 are requested up front, and every
        // iteration requests the tile Stages - 1 ahead, so Stages - 1 tiles are in flight while one is multiplied. One
        // commit group per tile, empty past the last tile, so "all but the newest Stages - 2 groups" is always this tile.
        for (int ahead = 0; ahead < Stages - 1; ahead++)
        {
            if (ahead < tiles)
            {
                LoadStage(ref ops, shared, a, b, s, ahead, ahead, aPlan0, aPlan1, bPlan0, bPlan1, nBlocks, warpColumns, s.AsyncCopy);
            }

            ops.Commit();
        }

        if (s.AsyncCopy != 0)
        {
            // The hot loop: staging through cp.async only (the constant 1 removes the element-wise branch of every copy).
            for (int tile = 0; tile < tiles; tile++)
            {
                ops.Wait(Stages - 2);
                Group.Barrier();

                // The stage refilled here held tile - 1, which every warp finished before the barrier above.
                int next = tile + Stages - 1;
                if (next < tiles)
                {
                    LoadStage(ref ops, shared, a, b, s, next & (Stages - 1), next, aPlan0, aPlan1, bPlan0, bPlan1, nBlocks, warpColumns, 1);
                }

                ops.Commit();
                if (warpHasOutputs)
                {
                    ops.Step<TTile>(shared, tile & (Stages - 1), warpRow, warpCol, lane, s.TransposeB, s.Bf16);
                }
            }
        }
        else
        {
            // Element-wise staging, two iterations deep in registers: the chunks of tile `next` are loaded here and
            // stored two iterations later (their stage was free from this barrier on; the store still precedes the
            // barrier before its step), so each load has two k16 steps of mma to arrive. Tiles below Stages - 1 came
            // from the prologue.
            Half8 aOld0 = default, aOld1 = default, bOld0 = default, bOld1 = default;
            Half8 aOlder0 = default, aOlder1 = default, bOlder0 = default, bOlder1 = default;
            for (int tile = 0; tile < tiles; tile++)
            {
                Group.Barrier();
                int next = tile + Stages - 1;
                bool refill = next < tiles;
                int due = tile + Stages - 3;
                if (tile >= Stages - 2 && due < tiles)
                {
                    int aStage = AStageOffset(due & (Stages - 1));
                    int bStage = BStageOffset(due & (Stages - 1), nBlocks, warpColumns);
                    Put(shared, aStage + aPlan0.SharedByte, aOlder0);
                    Put(shared, bStage + bPlan0.SharedByte, bOlder0);
                    if (twoA)
                    {
                        Put(shared, aStage + aPlan1.SharedByte, aOlder1);
                    }

                    if (twoB)
                    {
                        Put(shared, bStage + bPlan1.SharedByte, bOlder1);
                    }
                }

                aOlder0 = aOld0;
                aOlder1 = aOld1;
                bOlder0 = bOld0;
                bOlder1 = bOld1;
                aOld0 = refill ? Fetch(a, aPlan0, s.K, next) : default;
                aOld1 = refill && twoA ? Fetch(a, aPlan1, s.K, next) : default;
                bOld0 = refill ? Fetch(b, bPlan0, s.K, next) : default;
                bOld1 = refill && twoB ? Fetch(b, bPlan1, s.K, next) : default;
                if (warpHasOutputs)
                {
                    ops.Step<TTile>(shared, tile & (Stages - 1), warpRow, warpCol, lane, s.TransposeB, s.Bf16);
                }
            }
        }

        // C fragment: register i of n-block nb holds row g (+8 for i >= 2), column 2t + (i & 1) of the m16n8 tile.
        int g = lane >> 2;
        int t = lane & 3;
        long cBase = batch * s.BatchC;
        int quarters = nBlocks / 4;
        var block = default(AccumulatorBlock);
        for (int part = 0; part < MBlocks * quarters; part++)
        {
            ops.Read<TTile>(part, ref block);
            int mb = part / quarters;
            int nbFirst = (part % quarters) * 4;
            for (int half = 0; half < 2; half++)
            {
                int row = m0 + (warpRow * WarpM) + (mb * 16) + g + (half * 8);
                if (row >= s.M)
                {
                    continue;
                }

                for (int nb = 0; nb < 4; nb++)
                {
                    // Each thread holds two adjacent columns (2t, 2t + 1) of the row: one 32-bit store of C (8 bytes
                    // of a partial) when both exist and the pair is aligned (PairStores), else one element at a time.
                    int col = n0 + (warpCol * WarpN(nBlocks)) + ((nbFirst + nb) * 8) + (2 * t);
                    StorePair(c, partial, bias, s, batch, cBase, split, kSplit, row, col, block.Get((nb * 4) + (half * 2)), block.Get((nb * 4) + (half * 2) + 1));
                }
            }
        }
    }

    /// <summary>
    /// Stores a thread's two adjacent outputs (row, col) and (row, col + 1) of a tile, either as a split's raw float32 sums
    /// (GemvReduce16 then adds the splits and applies alpha, beta·bias and the rounding) or through <see cref="Epilogue"/>
    /// into the 16-bit C: one 32-bit store of C (8 bytes of a partial) when both columns exist and the pair is aligned
    /// (PairStores), else the columns that exist one at a time. Shared by the mma.sync and both wgmma kernels.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static void StorePair(ArrayView<ushort> c, ArrayView<float> partial, ArrayView<ushort> bias, TensorCoreShape s, long batch, long cBase,
        bool split, int kSplit, int row, int col, float v0, float v1)
    {
        bool pair = s.PairStores != 0 && col + 1 < s.N;
        if (split)
        {
            long at = ((((long)kSplit * s.M) + row) * s.N) + col;
            if (pair)
            {
                partial.Cast<Float2>()[at >> 1] = new Float2 { X = v0, Y = v1 };
            }
            else
            {
                StoreSum(partial, at, col, s.N, v0, v1);
            }
        }
        else
        {
            ushort h0 = Epilogue(bias, s, batch, row, col, v0);
            ushort h1 = Epilogue(bias, s, batch, row, col + 1, v1);
            long at = cBase + ((long)row * s.N) + col;
            if (pair)
            {
                c.Cast<uint>()[at >> 1] = h0 | ((uint)h1 << 16);
            }
            else
            {
                StoreHalf(c, at, col, s.N, h0, h1);
            }
        }
    }

    /// <summary>alpha·sum + beta·bias at (row, col), rounded once to 16 bits (the bias is read only where it is used and exists).</summary>
    internal static ushort Epilogue(ArrayView<ushort> bias, TensorCoreShape s, long batch, int row, int col, float sum)
    {
        float v = s.Alpha * sum;
        if (s.HasBias != 0 && s.Beta != 0f && col < s.N)
        {
            v += s.Beta * GpuMath.Load16(bias[(batch * s.BatchBias) + (row * s.StrideBiasM) + (col * s.StrideBiasN)], s.Bf16);
        }

        return GpuMath.Store16(v, s.Bf16);
    }

    /// <summary>Stores the columns of a pair that exist, one element at a time (float32 partials).</summary>
    private static void StoreSum(ArrayView<float> target, long at, int col, int n, float v0, float v1)
    {
        if (col < n)
        {
            target[at] = v0;
        }

        if (col + 1 < n)
        {
            target[at + 1] = v1;
        }
    }

    /// <summary>Stores the columns of a pair that exist, one element at a time (16-bit C).</summary>
    private static void StoreHalf(ArrayView<ushort> target, long at, int col, int n, ushort h0, ushort h1)
    {
        if (col < n)
        {
            target[at] = h0;
        }

        if (col + 1 < n)
        {
            target[at + 1] = h1;
        }
    }

    /// <summary>
    /// Requests k16 tile <paramref name="tile"/> of the group's K range into shared stage <paramref name="stage"/>
    /// (through cp.async when <paramref name="asyncCopy"/> is non-zero, else element by element).
    /// </summary>
    private static void LoadStage<TOps>(ref TOps ops, ArrayView<ushort> shared, ArrayView<ushort> a, ArrayView<ushort> b, TensorCoreShape s,
        int stage, int tile, ChunkPlan aPlan0, ChunkPlan aPlan1, ChunkPlan bPlan0, ChunkPlan bPlan1, int nBlocks, int warpColumns, int asyncCopy)
        where TOps : struct, ITensorCoreOps
    {
        int aStage = AStageOffset(stage);
        int bStage = BStageOffset(stage, nBlocks, warpColumns);
        CopyPlanned(ref ops, shared, aStage, a, s.APointer, aPlan0, s.K, tile, asyncCopy);
        CopyPlanned(ref ops, shared, bStage, b, s.BPointer, bPlan0, s.K, tile, asyncCopy);
        if (AChunksPerThread(warpColumns) > 1)
        {
            CopyPlanned(ref ops, shared, aStage, a, s.APointer, aPlan1, s.K, tile, asyncCopy);
        }

        if (BChunksPerThread(nBlocks, warpColumns) > 1)
        {
            CopyPlanned(ref ops, shared, bStage, b, s.BPointer, bPlan1, s.K, tile, asyncCopy);
        }
    }

    /// <summary>Copies a planned chunk's tile <paramref name="tile"/> into the stage at <paramref name="stageByte"/>.</summary>
    private static void CopyPlanned<TOps>(ref TOps ops, ArrayView<ushort> shared, int stageByte, ArrayView<ushort> source, long sourcePointer, ChunkPlan plan,
        int k, int tile, int asyncCopy)
        where TOps : struct, ITensorCoreOps
    {
        int valid = Valid(plan, k, tile);
        ops.CopyChunk(shared, stageByte + plan.SharedByte, source, valid > 0 ? plan.Element + (tile * plan.TileStride) : 0, sourcePointer, valid, asyncCopy);
    }

    /// <summary>Elements of the chunk that exist at tile <paramref name="tile"/> (0 to 8; the rest is zero-filled).</summary>
    private static int Valid(ChunkPlan plan, int k, int tile)
    {
        int kAt = plan.K + (tile * BlockK);
        return plan.AlongK != 0
            ? (plan.Count != 0 ? Clamp8(k - kAt) : 0)
            : (kAt < k ? plan.Count : 0);
    }

    /// <summary>The 8-element chunk <paramref name="chunk"/> of an A stage (BlockM rows of two chunks).</summary>
    private static ChunkPlan APlan(TensorCoreShape s, int chunk, int m0, int kStart, long aBase) =>
        KRowPlan(chunk, m0, s.M, s.K, kStart, aBase);

    /// <summary>
    /// The 8-element chunk <paramref name="chunk"/> of a stage whose rows run along K (A, and B stored [N, K]): rows
    /// <paramref name="first"/>.. of <paramref name="rows"/>, two chunks per row; rows past the end load nothing.
    /// </summary>
    private static ChunkPlan KRowPlan(int chunk, int first, int rows, int k, int kStart, long basePointer)
    {
        int row = chunk >> 1;
        int kc = chunk & 1;
        int r = first + row;
        return new ChunkPlan
        {
            SharedByte = KRowByte(row, kc),
            Element = basePointer + ((long)(r < rows ? r : rows - 1) * k) + kStart + (kc * 8),
            TileStride = BlockK,
            K = kStart + (kc * 8),
            AlongK = 1,
            Count = r < rows ? 8 : 0,
        };
    }

    /// <summary>The 8-element chunk <paramref name="chunk"/> of a B stage (BlockN · 2 chunks), either layout.</summary>
    private static ChunkPlan BPlan(TensorCoreShape s, int chunk, int n0, int kStart, long bBase, int nBlocks, int warpColumns)
    {
        if (s.TransposeB != 0)
        {
            return KRowPlan(chunk, n0, s.N, s.K, kStart, bBase);
        }

        int chunksPerRow = BlockN(nBlocks, warpColumns) / 8;
        int kRow = chunk / chunksPerRow;
        int nc = chunk % chunksPerRow;
        int col = n0 + (nc * 8);
        return new ChunkPlan
        {
            SharedByte = NRowByte(kRow, nc, nBlocks, warpColumns),
            Element = bBase + ((long)(kStart + kRow) * s.N) + (col < s.N ? col : 0),
            TileStride = (long)BlockK * s.N,
            K = kStart + kRow,
            AlongK = 0,
            Count = Clamp8(s.N - col),
        };
    }

    /// <summary>The chunk's elements at tile <paramref name="tile"/> (zeros past its valid count), two per word.</summary>
    private static Half8 Fetch(ArrayView<ushort> source, ChunkPlan plan, int k, int tile)
    {
        int valid = Valid(plan, k, tile);
        long element = valid > 0 ? plan.Element + (tile * plan.TileStride) : 0;
        return new Half8
        {
            X = Pair(source, element, valid, 0),
            Y = Pair(source, element, valid, 2),
            Z = Pair(source, element, valid, 4),
            W = Pair(source, element, valid, 6),
        };
    }

    private static uint Pair(ArrayView<ushort> source, long element, int valid, int j) =>
        (j < valid ? source[element + j] : 0u) | ((j + 1 < valid ? (uint)source[element + j + 1] : 0u) << 16);

    /// <summary>Stores a fetched chunk at its shared byte offset (16-byte aligned: one 16-byte store).</summary>
    private static void Put(ArrayView<ushort> shared, int sharedByte, Half8 values) => shared.Cast<Half8>()[sharedByte >> 4] = values;

    private static int Clamp8(int remaining) => remaining <= 0 ? 0 : remaining >= 8 ? 8 : remaining;

    /// <summary>Element-by-element chunk copy with zero fill (the synchronous path of both operation sets).</summary>
    internal static void CopyChunkScalar(ArrayView<ushort> shared, int sharedByte, ArrayView<ushort> source, long sourceElement, int valid)
    {
        int index = sharedByte >> 1;
        for (int j = 0; j < 8; j++)
        {
            shared[index + j] = j < valid ? source[sourceElement + j] : (ushort)0;
        }
    }
}

/// <summary>The warp operations as inline PTX: ldmatrix, mma.sync, cp.async (sm_80 and later).</summary>
internal struct PtxTensorCoreOps : ITensorCoreOps
{
    private uint sharedBase;

    public void Begin<TTile>(int thread)
        where TTile : struct, ITensorCoreTile
    {
        // Emitted in the kernel's entry block, so the declaration precedes every use in the PTX text.
        if (default(TTile).NBlocks == 8)
        {
            CudaAsm.Emit(TensorCoreGemmKernels.DeclareAccumulatorsN8);
        }
        else
        {
            CudaAsm.Emit(TensorCoreGemmKernels.DeclareAccumulatorsN4);
        }

        Output<uint> baseAddress = default;
        CudaAsm.EmitRef("mov.u32 %0, __dyn_shared_alloca;", ref baseAddress);
        sharedBase = baseAddress.Value;
    }

    public readonly void CopyChunk(ArrayView<ushort> shared, int sharedByte, ArrayView<ushort> source, long sourceElement, long sourcePointer, int valid, int asyncCopy)
    {
        if (asyncCopy != 0)
        {
            // By-value operands: ILGPU binds them to registers (EmitRef's Input<T> slots go through .local memory).
            CudaAsm.Emit("{\n\t.reg .u64 tcsrc;\n\tcvta.to.global.u64 tcsrc, %1;\n\tcp.async.cg.shared.global [%0], [tcsrc], 16, %2;\n\t}",
                sharedBase + (uint)sharedByte, sourcePointer + (sourceElement * 2), (uint)(valid * 2));
        }
        else
        {
            TensorCoreGemmKernels.CopyChunkScalar(shared, sharedByte, source, sourceElement, valid);
        }
    }

    public readonly void Commit() => CudaAsm.Emit("cp.async.commit_group;");

    public readonly void Wait(int pending)
    {
        // wait_group takes an immediate: one asm string per count (pending is a constant at every call site).
        if (pending >= 2)
        {
            CudaAsm.Emit("cp.async.wait_group 2;");
        }
        else if (pending == 1)
        {
            CudaAsm.Emit("cp.async.wait_group 1;");
        }
        else
        {
            CudaAsm.Emit("cp.async.wait_group 0;");
        }
    }

    public readonly void Step<TTile>(ArrayView<ushort> shared, int stage, int warpRow, int warpCol, int lane, int transposeB, int bf16)
        where TTile : struct, ITensorCoreTile
    {
        // By-value operands: ILGPU binds them to registers (EmitRef's Input<T> slots go through .local memory). One
        // B address per n-pair: the swizzle of a [K, N] stage makes them more than fixed offsets of one another.
        int nBlocks = default(TTile).NBlocks;
        int warpColumns = default(TTile).WarpColumns;
        uint aRow = sharedBase + (uint)TensorCoreGemmKernels.ALaneByte(stage, warpRow, lane);
        uint b0 = sharedBase + (uint)TensorCoreGemmKernels.BLaneByte(stage, warpCol, 0, lane, transposeB, nBlocks, warpColumns);
        uint b1 = sharedBase + (uint)TensorCoreGemmKernels.BLaneByte(stage, warpCol, 1, lane, transposeB, nBlocks, warpColumns);
        if (nBlocks == 8)
        {
            uint b2 = sharedBase + (uint)TensorCoreGemmKernels.BLaneByte(stage, warpCol, 2, lane, transposeB, nBlocks, warpColumns);
            uint b3 = sharedBase + (uint)TensorCoreGemmKernels.BLaneByte(stage, warpCol, 3, lane, transposeB, nBlocks, warpColumns);
            if (bf16 != 0)
            {
                if (transposeB != 0)
                {
                    CudaAsm.Emit(TensorCoreGemmKernels.StepBf16BTransposedN8, aRow, b0, b1, b2, b3);
                }
                else
                {
                    CudaAsm.Emit(TensorCoreGemmKernels.StepBf16BRowMajorN8, aRow, b0, b1, b2, b3);
                }
            }
            else if (transposeB != 0)
            {
                CudaAsm.Emit(TensorCoreGemmKernels.StepF16BTransposedN8, aRow, b0, b1, b2, b3);
            }
            else
            {
                CudaAsm.Emit(TensorCoreGemmKernels.StepF16BRowMajorN8, aRow, b0, b1, b2, b3);
            }
        }
        else if (bf16 != 0)
        {
            if (transposeB != 0)
            {
                CudaAsm.Emit(TensorCoreGemmKernels.StepBf16BTransposedN4, aRow, b0, b1);
            }
            else
            {
                CudaAsm.Emit(TensorCoreGemmKernels.StepBf16BRowMajorN4, aRow, b0, b1);
            }
        }
        else if (transposeB != 0)
        {
            CudaAsm.Emit(TensorCoreGemmKernels.StepF16BTransposedN4, aRow, b0, b1);
        }
        else
        {
            CudaAsm.Emit(TensorCoreGemmKernels.StepF16BRowMajorN4, aRow, b0, b1);
        }
    }

    public readonly void Read<TTile>(int part, ref AccumulatorBlock block)
        where TTile : struct, ITensorCoreTile
    {
        Output<float> v0 = default, v1 = default, v2 = default, v3 = default, v4 = default, v5 = default, v6 = default, v7 = default;
        Output<float> v8 = default, v9 = default, v10 = default, v11 = default, v12 = default, v13 = default, v14 = default, v15 = default;
        if (default(TTile).NBlocks == 8)
        {
            switch (part)
            {
                case 0:
                    CudaAsm.EmitRef(TensorCoreGemmKernels.ReadAccumulatorsN8Part0, ref v0, ref v1, ref v2, ref v3, ref v4, ref v5, ref v6, ref v7, ref v8, ref v9, ref v10, ref v11, ref v12, ref v13, ref v14, ref v15);
                    break;
                case 1:
                    CudaAsm.EmitRef(TensorCoreGemmKernels.ReadAccumulatorsN8Part1, ref v0, ref v1, ref v2, ref v3, ref v4, ref v5, ref v6, ref v7, ref v8, ref v9, ref v10, ref v11, ref v12, ref v13, ref v14, ref v15);
                    break;
                case 2:
                    CudaAsm.EmitRef(TensorCoreGemmKernels.ReadAccumulatorsN8Part2, ref v0, ref v1, ref v2, ref v3, ref v4, ref v5, ref v6, ref v7, ref v8, ref v9, ref v10, ref v11, ref v12, ref v13, ref v14, ref v15);
                    break;
                case 3:
                    CudaAsm.EmitRef(TensorCoreGemmKernels.ReadAccumulatorsN8Part3, ref v0, ref v1, ref v2, ref v3, ref v4, ref v5, ref v6, ref v7, ref v8, ref v9, ref v10, ref v11, ref v12, ref v13, ref v14, ref v15);
                    break;
                case 4:
                    CudaAsm.EmitRef(TensorCoreGemmKernels.ReadAccumulatorsN8Part4, ref v0, ref v1, ref v2, ref v3, ref v4, ref v5, ref v6, ref v7, ref v8, ref v9, ref v10, ref v11, ref v12, ref v13, ref v14, ref v15);
                    break;
                case 5:
                    CudaAsm.EmitRef(TensorCoreGemmKernels.ReadAccumulatorsN8Part5, ref v0, ref v1, ref v2, ref v3, ref v4, ref v5, ref v6, ref v7, ref v8, ref v9, ref v10, ref v11, ref v12, ref v13, ref v14, ref v15);
                    break;
                case 6:
                    CudaAsm.EmitRef(TensorCoreGemmKernels.ReadAccumulatorsN8Part6, ref v0, ref v1, ref v2, ref v3, ref v4, ref v5, ref v6, ref v7, ref v8, ref v9, ref v10, ref v11, ref v12, ref v13, ref v14, ref v15);
                    break;
                default:
                    CudaAsm.EmitRef(TensorCoreGemmKernels.ReadAccumulatorsN8Part7, ref v0, ref v1, ref v2, ref v3, ref v4, ref v5, ref v6, ref v7, ref v8, ref v9, ref v10, ref v11, ref v12, ref v13, ref v14, ref v15);
                    break;
            }
        }
        else
        {
            switch (part)
            {
                case 0:
                    CudaAsm.EmitRef(TensorCoreGemmKernels.ReadAccumulatorsN4Part0, ref v0, ref v1, ref v2, ref v3, ref v4, ref v5, ref v6, ref v7, ref v8, ref v9, ref v10, ref v11, ref v12, ref v13, ref v14, ref v15);
                    break;
                case 1:
                    CudaAsm.EmitRef(TensorCoreGemmKernels.ReadAccumulatorsN4Part1, ref v0, ref v1, ref v2, ref v3, ref v4, ref v5, ref v6, ref v7, ref v8, ref v9, ref v10, ref v11, ref v12, ref v13, ref v14, ref v15);
                    break;
                case 2:
                    CudaAsm.EmitRef(TensorCoreGemmKernels.ReadAccumulatorsN4Part2, ref v0, ref v1, ref v2, ref v3, ref v4, ref v5, ref v6, ref v7, ref v8, ref v9, ref v10, ref v11, ref v12, ref v13, ref v14, ref v15);
                    break;
                default:
                    CudaAsm.EmitRef(TensorCoreGemmKernels.ReadAccumulatorsN4Part3, ref v0, ref v1, ref v2, ref v3, ref v4, ref v5, ref v6, ref v7, ref v8, ref v9, ref v10, ref v11, ref v12, ref v13, ref v14, ref v15);
                    break;
            }
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
/// The warp operations emulated from the PTX ISA's definitions, one lane at a time, with no cross-lane traffic: a lane
/// recomputes the row address any other lane gives ldmatrix (<see cref="TensorCoreGemmKernels.ALaneByte"/> is a pure
/// function of the lane), so it can rebuild exactly the fragment registers that mma.sync would gather from the warp.
/// ldmatrix.x4: lane L receives, in register j, the 32-bit word at byte 4·(L mod 4) of the row whose address lane
/// 8j + L/4 gave; with .trans it receives the column-L/4 elements of rows 2·(L mod 4) and 2·(L mod 4) + 1.
/// mma.m16n8k16 (row.col): A register j of lane L holds row L/4 (+8 for j odd) and columns 2·(L mod 4) + {0, 1}
/// (+8 for j ≥ 2); B register j holds rows (k) 2·(L mod 4) + {0, 1} (+8 for j = 1) of column L/4; C register i holds
/// row L/4 (+8 for i ≥ 2), column 2·(L mod 4) + (i mod 2). Accumulators live in <see cref="Scratch"/>.
/// </summary>
internal struct EmulatedTensorCoreOps : ITensorCoreOps
{
    /// <summary><see cref="TensorCoreGemmKernels.Accumulators"/> floats for every thread of every group.</summary>
    public ArrayView<float> Scratch;

    private long scratchBase;

    public void Begin<TTile>(int thread)
        where TTile : struct, ITensorCoreTile
    {
        int count = TensorCoreGemmKernels.Accumulators(default(TTile).NBlocks);
        long group = ((((long)Grid.IdxZ * Grid.DimY) + Grid.IdxY) * Grid.DimX) + Grid.IdxX;
        scratchBase = ((group * TensorCoreGemmKernels.GroupSize(default(TTile).WarpColumns)) + thread) * count;
        for (int i = 0; i < count; i++)
        {
            Scratch[scratchBase + i] = 0f;
        }
    }

    public readonly void CopyChunk(ArrayView<ushort> shared, int sharedByte, ArrayView<ushort> source, long sourceElement, long sourcePointer, int valid, int asyncCopy) =>
        TensorCoreGemmKernels.CopyChunkScalar(shared, sharedByte, source, sourceElement, valid);

    public readonly void Commit()
    {
    }

    public readonly void Wait(int pending)
    {
    }

    public readonly void Step<TTile>(ArrayView<ushort> shared, int stage, int warpRow, int warpCol, int lane, int transposeB, int bf16)
        where TTile : struct, ITensorCoreTile
    {
        int nBlocks = default(TTile).NBlocks;
        int warpColumns = default(TTile).WarpColumns;
        int g = lane >> 2;
        int t = lane & 3;
        for (int mb = 0; mb < TensorCoreGemmKernels.MBlocks; mb++)
        {
            for (int nb = 0; nb < nBlocks; nb++)
            {
                for (int i = 0; i < 4; i++)
                {
                    int row = g + ((i >> 1) * 8);
                    int col = (2 * t) + (i & 1);
                    float sum = 0f;
                    for (int k = 0; k < 16; k++)
                    {
                        float av = GpuMath.Load16(AElement(shared, stage, warpRow, mb, row, k), bf16);
                        float bv = GpuMath.Load16(BElement(shared, stage, warpCol, nb, k, col, transposeB, nBlocks, warpColumns), bf16);
                        sum += av * bv;
                    }

                    Scratch[scratchBase + (((mb * nBlocks) + nb) * 4) + i] += sum;
                }
            }
        }
    }

    public readonly void Read<TTile>(int part, ref AccumulatorBlock block)
        where TTile : struct, ITensorCoreTile
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

    /// <summary>Element (row, k) of the m16k16 A operand as mma.sync reads it from the lanes' a0-a3 registers.</summary>
    private static ushort AElement(ArrayView<ushort> shared, int stage, int warpRow, int mb, int row, int k)
    {
        int holder = ((row & 7) * 4) + ((k & 7) >> 1);
        int register = (row >> 3) + ((k >> 3) * 2);

        // ldmatrix (no .trans): register j of lane L is word L mod 4 of the row given by lane 8j + L/4.
        int rowAddress = TensorCoreGemmKernels.ALaneByte(stage, warpRow, (8 * register) + (holder >> 2)) + (mb * TensorCoreGemmKernels.AmBlockStrideBytes);
        return shared[((rowAddress + (4 * (holder & 3))) >> 1) + (k & 1)];
    }

    /// <summary>Element (k, col) of the k16n8 B operand of n-block <paramref name="nb"/> as mma.sync reads it from b0, b1.</summary>
    private static ushort BElement(ArrayView<ushort> shared, int stage, int warpCol, int nb, int k, int col, int transposeB, int nBlocks, int warpColumns)
    {
        int holder = (col * 4) + ((k & 7) >> 1);
        int register = ((nb & 1) * 2) + (k >> 3);
        int half = k & 1;
        if (transposeB != 0)
        {
            int rowAddress = TensorCoreGemmKernels.BLaneByte(stage, warpCol, nb >> 1, (8 * register) + (holder >> 2), transposeB, nBlocks, warpColumns);
            return shared[((rowAddress + (4 * (holder & 3))) >> 1) + half];
        }

        // ldmatrix.trans: register j of lane L holds column L/4 of rows 2(L mod 4) and 2(L mod 4) + 1 of matrix j.
        int transposedRow = TensorCoreGemmKernels.BLaneByte(stage, warpCol, nb >> 1, (8 * register) + (2 * (holder & 3)) + half, transposeB, nBlocks, warpColumns);
        return shared[(transposedRow >> 1) + (holder >> 2)];
    }
}
