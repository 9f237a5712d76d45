using System;
using System.Runtime.CompilerServices;
using ILGPU;
using ILGPU.Runtime;
using ILGPU.Runtime.Cuda;

namespace GemsInjector.Kernels.Ilgpu;

/// <summary>
/// The warp-level matrix operations of the tensor-core attention, so one kernel body runs on the GPU through inline PTX
/// (<see cref="PtxAttentionOps{TDimQuads}"/>) and on ILGPU's CPU accelerator through an emulation of ldmatrix and mma.sync register
/// ownership (<see cref="EmulatedAttentionOps{TDimQuads}"/>), as <see cref="ITensorCoreOps"/> does for the GEMM.
/// </summary>
internal interface IAttentionMmaOps
{
    /// <summary>Zeroes this thread's output accumulators (first statement of the kernel).</summary>
    void Begin(int thread);

    /// <summary>
    /// Copies the 16-byte chunk <paramref name="chunk"/> of <paramref name="source"/> (device address
    /// <paramref name="sourcePointer"/> of element 0) to shared byte <paramref name="sharedByte"/>, or zeros when not
    /// <paramref name="valid"/>; asynchronously on the GPU (complete after <see cref="WaitForTile"/> and a barrier).
    /// </summary>
    void CopyChunk(ArrayView<ushort> shared, int sharedByte, ArrayView<Half8> source, long chunk, long sourcePointer, bool valid);

    /// <summary>Closes the group of copies issued so far (one group per key tile, possibly empty).</summary>
    void Commit();

    /// <summary>Waits until only the newest committed copy group may still be in flight.</summary>
    void WaitForTile();

    /// <summary>Waits until every committed copy group has landed.</summary>
    void WaitForAll();

    /// <summary>Moves the warp's Q fragments (all k steps) from the staged Q tile into registers.</summary>
    void LoadQ(ArrayView<ushort> shared, int warp, int lane);

    /// <summary>S = Q·Kᵀ for the warp's 16 query rows and the key tile in <paramref name="stage"/>, stored as float32 to the warp's score area.</summary>
    void Scores(ArrayView<ushort> shared, int warp, int lane, int stage, int bf16);

    /// <summary>
    /// One lane's online-softmax step over its 16 scores at shared byte <paramref name="scoreByte"/> (times
    /// <paramref name="factor"/>; the partner lane lane ^ 1 holds the row's other 16): the row max m = max(old max, scores),
    /// weights p = e^(s - m) as two 16-bit parts, hi = round16(p) at <paramref name="weightByte"/> and lo = round16(p - hi)
    /// <see cref="AttentionTensorCoreKernels.WeightLowOffset"/> bytes later (overwriting the warp's scores once every lane has read its own), and
    /// the row statistics (m, Σ weights, rescale factor e^(old max - m)) at <paramref name="statsByte"/>.
    /// A row whose max is still -∞ gets weights 0 and factor 1; an unchanged max gives factor exactly 1.
    /// </summary>
    void Softmax(ArrayView<ushort> shared, int scoreByte, int weightByte, int statsByte, float oldMax, float factor, int bf16);

    /// <summary>Multiplies this lane's output rows g (= lane / 4) by <paramref name="alphaLo"/> and g + 8 by <paramref name="alphaHi"/>.</summary>
    void Rescale(float alphaLo, float alphaHi);

    /// <summary>O += P·V for the warp's 16 rows: P = hi + lo from the warp's weight area (two mma per fragment), V the value tile in <paramref name="stage"/>.</summary>
    void Accumulate(ArrayView<ushort> shared, int warp, int lane, int stage, int bf16);

    /// <summary>
    /// Writes this lane's output elements of rows g and g + 8, times <paramref name="invLo"/> / <paramref name="invHi"/>,
    /// rounded to 16 bits: row g's columns 2·(lane mod 4) + {0, 1} of every 8-column block start at element
    /// <paramref name="elementLo"/> of <paramref name="output"/> (-1: row skipped), row g + 8's at <paramref name="elementHi"/>.
    /// </summary>
    void Store(ArrayView<ushort> output, long outputPointer, long elementLo, long elementHi, float invLo, float invHi, int bf16);

    /// <summary>
    /// Register variant: one key tile of the warp without leaving registers: S = Q·Kᵀ times <paramref name="scaleLog2"/>
    /// (scale · log2 e), when <paramref name="masked"/> the keys at offsets ≥ <paramref name="limitLo"/> (row g) /
    /// <paramref name="limitHi"/> (row g + 8) from the lane's first key 2·(lane mod 4) hidden, the online-softmax update of
    /// the row maxima (log2 units) and the lane's partial row sums, the rescale of the accumulators, and O += P·V with
    /// P as high + low 16-bit parts taken from the score fragments.
    /// </summary>
    void Step(ArrayView<ushort> shared, int warp, int lane, int stage, float scaleLog2, bool masked, int limitLo, int limitHi, int bf16);

    /// <summary>Register variant: sums the row sums over the lane's quad and stores as <see cref="Store"/> with 1/l (0 where l = 0).</summary>
    void StoreNormalized(ArrayView<ushort> output, long outputPointer, long elementLo, long elementHi, int bf16);

    /// <summary>
    /// Register variant over a key range: sums the row sums over the lane's quad and stores a split's partial of rows g
    /// (<paramref name="partLo"/>) and g + 8 (<paramref name="partHi"/>) in the decode combine's layout: the unnormalized
    /// outputs at partial · d + 2t, and from the lane with t = 0 (m, l) at 2 · partial, m in natural-log units; -1 skips a row.
    /// </summary>
    void StorePartial(ArrayView<float> partO, ArrayView<float> partML, PrefillSplit split, long partLo, long partHi, int t);
}

/// <summary>
/// FlashAttention-2-style attention on tensor cores (mma.sync m16n8k16, float32 accumulation) for 16-bit q, k, v with
/// head size <see cref="D"/>. A group of 4 warps takes <see cref="BlockQ"/> queries of one head (16 rows per warp; its
/// Q fragments are loaded into registers once) and walks the keys in tiles of <see cref="BlockK"/>: K and V go to
/// shared memory by cp.async into two stages, the next tile's copy in flight while this one is multiplied. Per tile a
/// warp computes its 16 × 32 scores on the tensor cores into its shared score area; lanes 2r and 2r + 1 take row r
/// (scale, mask and causality applied in place where a tile needs them), and one asm block per lane does the online
/// softmax step (row max, weights e^(s - m) through ex2, row sum, rescale factor) with no asm outputs; the output
/// accumulators (64 float32 per thread, PTX registers declared once) are rescaled by e^(m_old - m) and take P·V on the
/// tensor cores. The weights go to the tensor cores as two 16-bit parts, hi = round16(p) and lo = round16(p - hi), each
/// multiplied by V: one rounding of p to 16 bits (up to 2^-8 relative in bf16, 2^-11 in f16) times |v| is larger than
/// FlagGems' tolerance on rows with few keys (the outputs there are weighted means of a few v rows, often small by
/// cancellation), while hi + lo is within ~2^-16 (bf16) / ~2^-22 (f16) of p; the second P·V mma is half as much
/// tensor-core work again per tile (96 mma instead of 64). Causal is top-left: tiles wholly above the diagonal are skipped, and query blocks
/// run longest first. Grouped-query heads read kv head h / (Heads / KvHeads). A row with no visible key gives zeros;
/// NaN propagates. The output is rounded once (round to nearest even).
/// </summary>
internal static partial class AttentionTensorCoreKernels
{
    /// <summary>Threads per group.</summary>
    public const int GroupSize = Warps * 32;

    /// <summary>log2 e: the register variant keeps scores and row maxima in log2 units (one multiply folds in the scale).</summary>
    private const float Log2E = 1.44269504088896341f;

    /// <summary>Row stride (elements) of the staged Q, K and V tiles at head size <paramref name="d"/>.</summary>
    public static int Ld(int d) => d + RowPadding;

    /// <summary>Bytes of one key-tile stage (K, then V) at head size <paramref name="d"/>.</summary>
    public static int StageBytes(int d) => 4 * BlockK * Ld(d);

    /// <summary>Byte offset of the V tile within a stage at head size <paramref name="d"/>.</summary>
    public static int VOffset(int d) => 2 * BlockK * Ld(d);

    /// <summary>
    /// Key-tile stages of the register variant at head size <paramref name="d"/>: three at 64 (one group barrier per
    /// tile instead of two), two at 128, where a third would pass the 48 KB a group gets without opting in and, at 55 KB
    /// a group, fit only two of its three register-bound groups into an A100's 164 KB.
    /// </summary>
    public static int RegisterStages(int d) => d == 64 ? 3 : 2;

    /// <summary>Dynamic shared bytes of a group of the register variant at head size <paramref name="d"/> (its key-tile stages; no warp areas).</summary>
    public static int RegisterSharedBytes(int d) => RegisterStages(d) * StageBytes(d);

    /// <summary>The tensor-core attention through inline PTX (CUDA only; head size <see cref="D"/>).</summary>
    [IlgpuKernel]
    public static void Attention16TensorCore(ArrayView<Half8> q, ArrayView<Half8> k, ArrayView<Half8> v, ArrayView<float> mask, ArrayView<ushort> output,
        AttentionShape s, TensorCoreAttentionPointers pointers, int bf16)
    {
        var ops = default(PtxAttentionOps<Const4>);
        Body(ref ops, q, k, v, mask, output, s, pointers, bf16);
    }

    /// <summary>The same kernel body with ldmatrix and mma.sync emulated lane by lane (accumulators in <paramref name="scratch"/>).</summary>
    [IlgpuKernel(SimulatorOnly = true)]
    public static void Attention16TensorCoreEmulated(ArrayView<Half8> q, ArrayView<Half8> k, ArrayView<Half8> v, ArrayView<float> mask, ArrayView<ushort> output,
        ArrayView<float> scratch, AttentionShape s, int bf16)
    {
        var ops = new EmulatedAttentionOps<Const4> { Scratch = scratch };
        Body(ref ops, q, k, v, mask, output, s, default, bf16);
    }

    /// <summary>
    /// The register variant through inline PTX (CUDA only): scores, softmax and weights stay in registers (the C fragments
    /// of S become the A fragments of P), so a tile has no shared-memory round trip and no warp barrier; the row maxima
    /// are kept in log2 units (the scale folded into one multiply), each lane sums its own part of a row and the quad
    /// adds the parts once at the end, and a warp skips the causal tiles wholly past its own 16 rows. No additive mask.
    /// Groups of <see cref="Warps"/> warps take <see cref="BlockQ"/> queries; Q is staged in stage 0 while key tile 0's
    /// copy goes to stage 1, and the key tiles cycle through <see cref="RegisterStages"/> stages, one copy ahead. Head size
    /// 32 · <typeparamref name="TDimQuads"/> (64 or 128).
    /// </summary>
    [IlgpuKernel]
    [IlgpuKernelVariant(typeof(Const2))]
    [IlgpuKernelVariant(typeof(Const4))]
    public static void Attention16TensorCoreRegisters<TDimQuads>(ArrayView<Half8> q, ArrayView<Half8> k, ArrayView<Half8> v, ArrayView<ushort> output,
        AttentionShape s, TensorCoreAttentionPointers pointers, int bf16)
        where TDimQuads : struct, IKernelConstant
    {
        var ops = default(PtxAttentionOps<TDimQuads>);
        BodyInRegisters<PtxAttentionOps<TDimQuads>, TDimQuads>(ref ops, q, k, v, output, default, default, s, pointers, default, splitting: false, bf16);
    }

    /// <summary>The register variant's body with ldmatrix and mma.sync emulated lane by lane (fragments in <paramref name="scratch"/>).</summary>
    [IlgpuKernel(SimulatorOnly = true)]
    [IlgpuKernelVariant(typeof(Const2))]
    [IlgpuKernelVariant(typeof(Const4))]
    public static void Attention16TensorCoreRegistersEmulated<TDimQuads>(ArrayView<Half8> q, ArrayView<Half8> k, ArrayView<Half8> v, ArrayView<ushort> output,
        ArrayView<float> scratch, AttentionShape s, int bf16)
        where TDimQuads : struct, IKernelConstant
    {
        var ops = new EmulatedAttentionOps<TDimQuads> { Scratch = scratch };
        BodyInRegisters<EmulatedAttentionOps<TDimQuads>, TDimQuads>(ref ops, q, k, v, output, default, default, s, default, default, splitting: false, bf16);
    }

    /// <summary>
    /// The register variant over key ranges (non-causal, no mask): grid (⌈lq / <see cref="BlockQ"/>⌉ · ranges, heads,
    /// batch), each group one query block over one range of <paramref name="split"/>, writing a partial per query row
    /// (row (batch · heads + head) · lq + query, partial row · ranges + range) for the decode combine: for calls whose
    /// query blocks would leave most of the GPU's group slots empty, each group walking every key alone.
    /// </summary>
    [IlgpuKernel]
    [IlgpuKernelVariant(typeof(Const2))]
    [IlgpuKernelVariant(typeof(Const4))]
    public static void Attention16TensorCoreRegistersSplit<TDimQuads>(ArrayView<Half8> q, ArrayView<Half8> k, ArrayView<Half8> v,
        AttentionShape s, TensorCoreAttentionPointers pointers, PrefillSplit split, int bf16)
        where TDimQuads : struct, IKernelConstant
    {
        var ops = default(PtxAttentionOps<TDimQuads>);
        BodyInRegisters<PtxAttentionOps<TDimQuads>, TDimQuads>(ref ops, q, k, v, default, default, default, s, pointers, split, splitting: true, bf16);
    }

    /// <summary><see cref="Attention16TensorCoreRegistersSplit{TDimQuads}"/> emulated lane by lane; the partials in views.</summary>
    [IlgpuKernel(SimulatorOnly = true)]
    [IlgpuKernelVariant(typeof(Const2))]
    [IlgpuKernelVariant(typeof(Const4))]
    public static void Attention16TensorCoreRegistersSplitEmulated<TDimQuads>(ArrayView<Half8> q, ArrayView<Half8> k, ArrayView<Half8> v,
        ArrayView<float> partO, ArrayView<float> partML, ArrayView<float> scratch, AttentionShape s, PrefillSplit split, int bf16)
        where TDimQuads : struct, IKernelConstant
    {
        var ops = new EmulatedAttentionOps<TDimQuads> { Scratch = scratch };
        BodyInRegisters<EmulatedAttentionOps<TDimQuads>, TDimQuads>(ref ops, q, k, v, default, partO, partML, s, default, split, splitting: true, bf16);
    }

    /// <summary>Launch shape of <see cref="Attention16TensorCoreRegistersSplit{TDimQuads}"/>: <paramref name="ranges"/> groups per query block of the register variant's shape at head size <paramref name="d"/>.</summary>
    public static KernelConfig RegistersSplitConfig(int batch, int heads, int lq, int ranges, int d) => new(
        new Index3D(((lq + BlockQ - 1) / BlockQ) * ranges, heads, batch),
        new Index3D(GroupSize, 1, 1),
        SharedMemoryConfig.RequestDynamic<ushort>(RegisterSharedBytes(d) / sizeof(ushort)));

    /// <summary>Whether the register variant has a version for head size <paramref name="headDim"/>.</summary>
    public static bool RegistersHaveHeadSize(int headDim) => headDim == 64 || headDim == D;

    /// <summary>Float32 scratch the emulated kernel needs for a grid of <paramref name="groups"/> groups of <paramref name="threadsPerGroup"/> threads.</summary>
    public static long EmulationScratch(long groups, int threadsPerGroup = GroupSize) => groups * threadsPerGroup * EmulatedAttentionOps<Const4>.FloatsPerThread;

    /// <summary>ldmatrix row address of lane <paramref name="lane"/> for the A fragment (k step 0) of the warp's Q rows at head size <paramref name="d"/>.</summary>
    public static int QLaneByte(int warp, int lane, int d) =>
        QOffset + ((((warp * 16) + (lane & 7) + (((lane >> 3) & 1) * 8)) * Ld(d)) + ((lane >> 4) * 8)) * 2;

    /// <summary>ldmatrix row address for the B fragments (keys 0-15, k step 0) of Kᵀ: plain ldmatrix of K stored [key][d].</summary>
    public static int KLaneByte(int lane, int stage, int d) =>
        (stage * StageBytes(d)) + KOffset + ((((lane & 7) + ((lane >> 4) * 8)) * Ld(d)) + (((lane >> 3) & 1) * 8)) * 2;

    /// <summary>ldmatrix.trans row address for the B fragments (columns 0-15, keys 0-15) of V stored [key][d].</summary>
    public static int VLaneByte(int lane, int stage, int d) =>
        (stage * StageBytes(d)) + VOffset(d) + ((((lane & 7) + (((lane >> 3) & 1) * 8)) * Ld(d)) + ((lane >> 4) * 8)) * 2;

    /// <summary>The stage key tile <paramref name="tile"/> is copied to: tile 0 to stage 1 (stage 0 holds the Q tile then), alternating.</summary>
    public static int StageOf(int tile) => (tile + 1) & 1;

    /// <summary>Byte offset of warp <paramref name="warp"/>'s area: scores [16][SLd] float32, aliased by the weights' high parts [16][PLd] 16-bit, then their low parts.</summary>
    public static int WarpArea(int warp) => WarpAreaOffset + (warp * WarpAreaBytes);

    /// <summary>ldmatrix row address for the A fragment (k step 0) of the warp's weights.</summary>
    public static int PLaneByte(int warp, int lane) =>
        WarpArea(warp) + (((((lane & 7) + (((lane >> 3) & 1) * 8)) * PLd) + ((lane >> 4) * 8)) * 2);

    /// <summary>Where lane <paramref name="lane"/> stores its scores of row g, columns 2t, 2t + 1 of n-block 0.</summary>
    public static int ScoreLaneByte(int warp, int lane) => WarpArea(warp) + ((((lane >> 2) * SLd) + ((lane & 3) * 2)) * 4);

    /// <summary>Byte offset of the warp's row statistics (<see cref="StatsFloats"/> floats per row: max, weight sum, rescale factor); its 16 values of 1/l follow.</summary>
    private static int StatsByte(int warp) => WarpArea(warp) + (16 * SLd * 4);

    internal static void Body<TOps>(ref TOps ops, ArrayView<Half8> q, ArrayView<Half8> k, ArrayView<Half8> v, ArrayView<float> mask, ArrayView<ushort> output,
        AttentionShape s, TensorCoreAttentionPointers pointers, int bf16)
        where TOps : struct, IAttentionMmaOps
    {
        int thread = Group.IdxX;
        ops.Begin(thread);
        var shared = SharedMemory.GetDynamic<ushort>();
        var sharedF = shared.Cast<float>();
        int lane = thread & 31;
        int warp = thread >> 5;
        int qBlock = s.Causal != 0 ? Grid.DimX - 1 - Grid.IdxX : Grid.IdxX;
        int q0 = qBlock * BlockQ;
        int h = Grid.IdxY;
        int batch = Grid.IdxZ;
        int kvh = h / (s.Heads / s.KvHeads);
        long qRow0 = ((((long)batch * s.Heads) + h) * s.Lq) + q0;
        long kRow0 = (((long)batch * s.KvHeads) + kvh) * s.Lk;
        long maskBase = (batch * s.MaskBatch) + (h * s.MaskHead);
        int kEnd = s.Causal != 0 && q0 + BlockQ < s.Lk ? q0 + BlockQ : s.Lk;
        int tiles = (kEnd + BlockK - 1) / BlockK;

        var plan = new KeyTileCopy(thread, kRow0, D);
        LoadQAndRequestFirstTile(ref ops, shared, q, k, v, pointers, qRow0, s.Lq - q0, plan, s.Lk, tiles, thread, warp, lane, D);

        // Softmax role: lanes 2r and 2r + 1 own row r of the warp (keys 0-15 and 16-31 of each tile).
        int row = lane >> 1;
        int half = lane & 1;
        int query = q0 + (warp * 16) + row;
        int scoreByte = WarpArea(warp) + (((row * SLd) + (half * 16)) * 4);
        int weightByte = WarpArea(warp) + (((row * PLd) + (half * 16)) * 2);
        int stats = StatsByte(warp) >> 2;
        int inverses = stats + (16 * StatsFloats);
        float m = GpuMath.NegInf;
        float l = 0f;
        for (int tile = 0; tile < tiles; tile++)
        {
            // The stage the next tile goes to was last read by tile - 1 (or held Q): every warp is past it.
            Group.Barrier();
            if (tile + 1 < tiles)
            {
                CopyTile(ref ops, shared, k, v, pointers, plan, tile + 1, StageOf(tile + 1) * StageBytes(D), s.Lk, D);
            }

            ops.Commit();
            ops.WaitForTile();
            Group.Barrier();
            int stage = StageOf(tile);
            ops.Scores(shared, warp, lane, stage, bf16);
            Warp.Barrier();

            // Scores the softmax step may take as they are (times the scale): all 16 keys visible, no mask. Otherwise
            // they are scaled and masked in place first.
            int key = (tile * BlockK) + (half * 16);
            bool plain = s.HasMask == 0 && key + 16 <= s.Lk && query < s.Lq && (s.Causal == 0 || key + 15 <= query);
            float factor = s.Scale;
            if (!plain)
            {
                int at = scoreByte >> 2;
                Write8(sharedF, at, Prepare(Read8(sharedF, at), mask, s, maskBase, query, key));
                Write8(sharedF, at + 8, Prepare(Read8(sharedF, at + 8), mask, s, maskBase, query, key + 8));
                factor = 1f;
            }

            // The softmax step's shuffles and warp barrier need the whole warp back together after the branch above.
            Warp.Barrier();
            ops.Softmax(shared, scoreByte, weightByte, StatsByte(warp) + (row * StatsFloats * 4), m, factor, bf16);
            Warp.Barrier();
            m = sharedF[stats + (row * StatsFloats)];
            l = (l * sharedF[stats + (row * StatsFloats) + 2]) + sharedF[stats + (row * StatsFloats) + 1];
            // Once a row's max settles its factor is exactly 1: the 64 multiplies are skipped (per thread, no sync in them).
            int g = lane >> 2;
            float alphaLo = sharedF[stats + (g * StatsFloats) + 2];
            float alphaHi = sharedF[stats + ((g + 8) * StatsFloats) + 2];
            if (alphaLo != 1f || alphaHi != 1f)
            {
                ops.Rescale(alphaLo, alphaHi);
            }

            Warp.Barrier();
            ops.Accumulate(shared, warp, lane, stage, bf16);
        }

        if (half == 0)
        {
            sharedF[inverses + row] = l == 0f ? 0f : 1f / l;
        }

        Warp.Barrier();
        int rowLo = q0 + (warp * 16) + (lane >> 2);
        int column = 2 * (lane & 3);
        long elementLo = rowLo < s.Lq ? ((qRow0 - q0 + rowLo) * D) + column : -1;
        long elementHi = rowLo + 8 < s.Lq ? ((qRow0 - q0 + rowLo + 8) * D) + column : -1;
        ops.Store(output, pointers.Output, elementLo, elementHi, sharedF[inverses + (lane >> 2)], sharedF[inverses + 8 + (lane >> 2)], bf16);
    }

    /// <summary>
    /// The register variant's body. Without <paramref name="splitting"/> (a constant of each kernel, so the other path
    /// folds away) the group's query block walks every key and writes <paramref name="output"/>; with it, one range of
    /// <paramref name="split"/> (non-causal only) as a call whose keys start there, and writes partials.
    /// </summary>
    internal static void BodyInRegisters<TOps, TDimQuads>(ref TOps ops, ArrayView<Half8> q, ArrayView<Half8> k, ArrayView<Half8> v, ArrayView<ushort> output,
        ArrayView<float> partO, ArrayView<float> partML, AttentionShape s, TensorCoreAttentionPointers pointers, PrefillSplit split, bool splitting, int bf16)
        where TOps : struct, IAttentionMmaOps
        where TDimQuads : struct, IKernelConstant
    {
        int d = 32 * default(TDimQuads).Value;
        int thread = Group.IdxX;
        ops.Begin(thread);
        var shared = SharedMemory.GetDynamic<ushort>();
        int lane = thread & 31;
        int warp = thread >> 5;
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

        var plan = new KeyTileCopy(thread, kRow0, d);
        LoadQAndRequestFirstTile(ref ops, shared, q, k, v, pointers, qRow0, s.Lq - q0, plan, keys, tiles, thread, warp, lane, d);

        // Lane roles of the mma fragments: rows g and g + 8 of the warp, keys 2t, 2t + 1 of every 8-key block.
        int g = lane >> 2;
        int t = lane & 3;
        int warpFirst = q0 + (warp * 16);
        int queryLo = warpFirst + g;
        int limitLo = s.Causal != 0 && queryLo + 1 < keys ? queryLo + 1 : keys;
        int limitHi = s.Causal != 0 && queryLo + 9 < keys ? queryLo + 9 : keys;
        float scaleLog2 = s.Scale * Log2E;
        int stages = RegisterStages(d);
        int stage = StageOf(0);
        for (int tile = 0; tile < tiles; tile++)
        {
            // Three stages: tile + 1 goes to the stage tile - 2 was read from (tile 1 to the one Q never used), and every
            // warp finished that read before it reached iteration tile - 1's barrier. Two: it goes to the stage tile - 1
            // was read from (or Q's), so every warp must be past that first.
            if (stages == 2)
            {
                Group.Barrier();
            }

            int nextStage = stage == stages - 1 ? 0 : stage + 1;
            if (tile + 1 < tiles)
            {
                CopyTile(ref ops, shared, k, v, pointers, plan, tile + 1, nextStage * StageBytes(d), keys, d);
            }

            ops.Commit();
            ops.WaitForTile();
            Group.Barrier();
            int tileStage = stage;
            stage = nextStage;
            int k0 = tile * BlockK;
            if (s.Causal != 0 && k0 > warpFirst + 15)
            {
                // Every key of the tile is past the warp's last row (the group's later warps still need it).
                continue;
            }

            bool masked = k0 + BlockK > keys || (s.Causal != 0 && k0 + BlockK - 1 > warpFirst);
            int key0 = k0 + (2 * t);
            ops.Step(shared, warp, lane, tileStage, scaleLog2, masked, limitLo - key0, limitHi - key0, bf16);
        }

        long rowLo = qRow0 - q0 + queryLo;
        if (splitting)
        {
            long partLo = queryLo < s.Lq ? (rowLo * split.Count) + range : -1;
            long partHi = queryLo + 8 < s.Lq ? ((rowLo + 8) * split.Count) + range : -1;
            ops.StorePartial(partO, partML, split, partLo, partHi, t);
        }
        else
        {
            long elementLo = queryLo < s.Lq ? (rowLo * d) + (2 * t) : -1;
            long elementHi = queryLo + 8 < s.Lq ? ((rowLo + 8) * d) + (2 * t) : -1;
            ops.StoreNormalized(output, pointers.Output, elementLo, elementHi, bf16);
        }
    }

    /// <summary>
    /// The start of both bodies: the Q tile (stage 0) and key tile 0 (stage 1) are requested together; Q's copy group
    /// completes first and its fragments move to registers, after which stage 0 is free for the key tiles.
    /// </summary>
    private static void LoadQAndRequestFirstTile<TOps>(ref TOps ops, ArrayView<ushort> shared, ArrayView<Half8> q, ArrayView<Half8> k, ArrayView<Half8> v,
        TensorCoreAttentionPointers pointers, long qRow0, int qValid, KeyTileCopy plan, int keys, int tiles, int thread, int warp, int lane, int d)
        where TOps : struct, IAttentionMmaOps
    {
        CopyRows(ref ops, shared, QOffset, q, pointers.Q, qRow0, qValid, BlockQ, thread, GroupSize, d);
        ops.Commit();
        if (tiles > 0)
        {
            CopyTile(ref ops, shared, k, v, pointers, plan, 0, StageOf(0) * StageBytes(d), keys, d);
        }

        ops.Commit();
        ops.WaitForTile();
        Group.Barrier();
        ops.LoadQ(shared, warp, lane);
    }

    /// <summary>
    /// Requests this thread's chunks of a key tile (K and V; zeros for keys past the call's) into the stage at
    /// <paramref name="stageByte"/>. The copy plan of <see cref="KeyTileCopy"/>: chunk c = thread + 128·i of a tile is
    /// head-dimension chunk thread mod (d / 8) of key thread / (d / 8) + i · 1024 / d, so each pass i only moves the key
    /// (the source by 128 chunks, shared memory by a constant): unrolled by hand, as ILGPU neither unrolls the loop nor
    /// hoists its div, mod and 64-bit index math (Run 191: 28 instructions per chunk, a quarter of the kernel's).
    /// </summary>
    private static void CopyTile<TOps>(ref TOps ops, ArrayView<ushort> shared, ArrayView<Half8> k, ArrayView<Half8> v, TensorCoreAttentionPointers pointers,
        KeyTileCopy plan, int tile, int stageByte, int keys, int d)
        where TOps : struct, IAttentionMmaOps
    {
        int keysLeft = keys - (tile * BlockK) - plan.Key;
        long chunk = plan.Chunk + ((long)tile * BlockK * (d / 8));
        int sharedByte = stageByte + plan.SharedByte;
        int passKeys = GroupSize * 8 / d;
        int passBytes = passKeys * Ld(d) * 2;
        CopyKeyChunks(ref ops, shared, k, v, pointers, chunk, sharedByte, keysLeft > 0, d);
        CopyKeyChunks(ref ops, shared, k, v, pointers, chunk + GroupSize, sharedByte + passBytes, keysLeft > passKeys, d);
        if (d > 64)
        {
            // d / 32 passes: two of 16 keys at d 64, four of 8 at d 128.
            CopyKeyChunks(ref ops, shared, k, v, pointers, chunk + (2 * GroupSize), sharedByte + (2 * passBytes), keysLeft > 2 * passKeys, d);
            CopyKeyChunks(ref ops, shared, k, v, pointers, chunk + (3 * GroupSize), sharedByte + (3 * passBytes), keysLeft > 3 * passKeys, d);
        }
    }

    /// <summary>
    /// One thread's share of every key tile's copy, computed once per group: its first key in a tile, the chunk index (in
    /// K and V alike) of that key's chunk in tile 0, and the chunk's byte offset within a stage.
    /// </summary>
    private readonly struct KeyTileCopy
    {
        public KeyTileCopy(int thread, long kRow0, int d)
        {
            int chunks = d / 8;
            int column = thread & (chunks - 1);
            Key = thread / chunks;
            Chunk = ((kRow0 + Key) * chunks) + column;
            SharedByte = ((Key * Ld(d)) + (column * 8)) * 2;
        }

        /// <summary>The thread's key in pass 0 of a tile (from the tile's first key).</summary>
        public int Key { get; }

        /// <summary>The K / V chunk index of the thread's pass-0 chunk in key tile 0.</summary>
        public long Chunk { get; }

        /// <summary>Byte offset of that chunk within a stage (after K's or V's offset).</summary>
        public int SharedByte { get; }
    }

    /// <summary>One K and one V chunk of a key (its index <paramref name="chunk"/> in both tensors); zeros past the call's keys.</summary>
    private static void CopyKeyChunks<TOps>(ref TOps ops, ArrayView<ushort> shared, ArrayView<Half8> k, ArrayView<Half8> v, TensorCoreAttentionPointers pointers,
        long chunk, int sharedByte, bool inside, int d)
        where TOps : struct, IAttentionMmaOps
    {
        long at = inside ? chunk : 0;
        ops.CopyChunk(shared, sharedByte + KOffset, k, at, pointers.K, inside);
        ops.CopyChunk(shared, sharedByte + VOffset(d), v, at, pointers.V, inside);
    }

    /// <summary>Requests <paramref name="rows"/> rows of <paramref name="d"/> elements from row <paramref name="firstRow"/> (zeros from row <paramref name="valid"/> on), chunks spread over <paramref name="threads"/> threads.</summary>
    private static void CopyRows<TOps>(ref TOps ops, ArrayView<ushort> shared, int offsetBytes, ArrayView<Half8> source, long sourcePointer, long firstRow,
        int valid, int rows, int thread, int threads, int d)
        where TOps : struct, IAttentionMmaOps
    {
        int chunks = d / 8;
        int ld = Ld(d);
        for (int c = thread; c < rows * chunks; c += threads)
        {
            int r = c / chunks;
            int chunk = c - (r * chunks);
            bool inside = r < valid;
            ops.CopyChunk(shared, offsetBytes + (((r * ld) + (chunk * 8)) * 2), source, inside ? ((firstRow + r) * chunks) + chunk : 0, sourcePointer, inside);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Floats8 Read8(ArrayView<float> sharedF, int at) => new()
    {
        V0 = sharedF[at],
        V1 = sharedF[at + 1],
        V2 = sharedF[at + 2],
        V3 = sharedF[at + 3],
        V4 = sharedF[at + 4],
        V5 = sharedF[at + 5],
        V6 = sharedF[at + 6],
        V7 = sharedF[at + 7],
    };

    /// <summary>Scaled scores of keys <paramref name="key"/> .. + 7 for <paramref name="query"/>, -∞ where hidden (past Lk, causal, or the row is past Lq).</summary>
    private static Floats8 Prepare(Floats8 x, ArrayView<float> mask, AttentionShape s, long maskBase, int query, int key) => new()
    {
        V0 = Prepare(x.V0, mask, s, maskBase, query, key),
        V1 = Prepare(x.V1, mask, s, maskBase, query, key + 1),
        V2 = Prepare(x.V2, mask, s, maskBase, query, key + 2),
        V3 = Prepare(x.V3, mask, s, maskBase, query, key + 3),
        V4 = Prepare(x.V4, mask, s, maskBase, query, key + 4),
        V5 = Prepare(x.V5, mask, s, maskBase, query, key + 5),
        V6 = Prepare(x.V6, mask, s, maskBase, query, key + 6),
        V7 = Prepare(x.V7, mask, s, maskBase, query, key + 7),
    };

    private static float Prepare(float raw, ArrayView<float> mask, AttentionShape s, long maskBase, int query, int key)
    {
        if (key >= s.Lk || query >= s.Lq || (s.Causal != 0 && key > query))
        {
            return GpuMath.NegInf;
        }

        float score = raw * s.Scale;
        return s.HasMask != 0 ? score + mask[maskBase + (query * s.MaskRow) + key] : score;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Write8(ArrayView<float> sharedF, int at, Floats8 x)
    {
        sharedF[at] = x.V0;
        sharedF[at + 1] = x.V1;
        sharedF[at + 2] = x.V2;
        sharedF[at + 3] = x.V3;
        sharedF[at + 4] = x.V4;
        sharedF[at + 5] = x.V5;
        sharedF[at + 6] = x.V6;
        sharedF[at + 7] = x.V7;
    }
}

/// <summary>
/// The attention's warp operations as inline PTX (sm_80 and later) at head size 32 · <typeparamref name="TDimQuads"/>;
/// accumulators and Q fragments are PTX registers. The shared-memory variant's operations exist at
/// <see cref="AttentionTensorCoreKernels.D"/> only.
/// </summary>
internal struct PtxAttentionOps<TDimQuads> : IAttentionMmaOps
    where TDimQuads : struct, IKernelConstant
{
    private uint sharedBase;

    // The instantiation's head size: folds to a constant, so each kernel keeps only its own strings.
    private static int Dim => 32 * default(TDimQuads).Value;

    private static bool Narrow => Dim == 64;

    public void Begin(int thread)
    {
        // Emitted in the kernel's entry block, so the declarations precede every use in the PTX text.
        if (Narrow)
        {
            CudaAsm.Emit(AttentionTensorCoreKernels.DeclareRegistersD64);
        }
        else
        {
            CudaAsm.Emit(AttentionTensorCoreKernels.DeclareRegisters);
        }

        Output<uint> baseAddress = default;
        CudaAsm.EmitRef("mov.u32 %0, __dyn_shared_alloca;", ref baseAddress);
        sharedBase = baseAddress.Value;
    }

    public readonly void CopyChunk(ArrayView<ushort> shared, int sharedByte, ArrayView<Half8> source, long chunk, long sourcePointer, bool valid) =>
        // The GEMM's cp.async helper adds its own (zero) shared base to the absolute shared address given here.
        default(PtxTensorCoreOps).CopyChunk(shared, (int)(sharedBase + (uint)sharedByte), default, chunk * 8, sourcePointer, valid ? 8 : 0, 1);

    public readonly void Commit() => default(PtxTensorCoreOps).Commit();

    public readonly void WaitForTile() => default(PtxTensorCoreOps).Wait(1);

    public readonly void WaitForAll() => default(PtxTensorCoreOps).Wait(0);

    public readonly void LoadQ(ArrayView<ushort> shared, int warp, int lane)
    {
        uint qRow = sharedBase + (uint)AttentionTensorCoreKernels.QLaneByte(warp, lane, Dim);
        if (Narrow)
        {
            CudaAsm.Emit(AttentionTensorCoreKernels.LoadQD64, qRow);
        }
        else
        {
            CudaAsm.Emit(AttentionTensorCoreKernels.LoadQ, qRow);
        }
    }

    public readonly void Scores(ArrayView<ushort> shared, int warp, int lane, int stage, int bf16)
    {
        // By-value operands: ILGPU binds them to registers.
        uint kRow = sharedBase + (uint)AttentionTensorCoreKernels.KLaneByte(lane, stage, Dim);
        uint scoreAt = sharedBase + (uint)AttentionTensorCoreKernels.ScoreLaneByte(warp, lane);
        if (bf16 != 0)
        {
            CudaAsm.Emit(AttentionTensorCoreKernels.ScoresBf16, kRow, scoreAt);
        }
        else
        {
            CudaAsm.Emit(AttentionTensorCoreKernels.ScoresF16, kRow, scoreAt);
        }
    }

    public readonly void Softmax(ArrayView<ushort> shared, int scoreByte, int weightByte, int statsByte, float oldMax, float factor, int bf16)
    {
        uint scores = sharedBase + (uint)scoreByte;
        uint weights = sharedBase + (uint)weightByte;
        uint stats = sharedBase + (uint)statsByte;
        if (bf16 != 0)
        {
            CudaAsm.Emit(AttentionTensorCoreKernels.SoftmaxBf16, scores, weights, stats, oldMax, factor);
        }
        else
        {
            CudaAsm.Emit(AttentionTensorCoreKernels.SoftmaxF16, scores, weights, stats, oldMax, factor);
        }
    }

    public readonly void Rescale(float alphaLo, float alphaHi) => CudaAsm.Emit(AttentionTensorCoreKernels.Rescale, alphaLo, alphaHi);

    public readonly void Accumulate(ArrayView<ushort> shared, int warp, int lane, int stage, int bf16)
    {
        uint pRow = sharedBase + (uint)AttentionTensorCoreKernels.PLaneByte(warp, lane);
        uint vRow = sharedBase + (uint)AttentionTensorCoreKernels.VLaneByte(lane, stage, Dim);
        if (bf16 != 0)
        {
            CudaAsm.Emit(AttentionTensorCoreKernels.AccumulateBf16, pRow, vRow);
        }
        else
        {
            CudaAsm.Emit(AttentionTensorCoreKernels.AccumulateF16, pRow, vRow);
        }
    }

    public readonly void Store(ArrayView<ushort> output, long outputPointer, long elementLo, long elementHi, float invLo, float invHi, int bf16)
    {
        long lo = elementLo >= 0 ? outputPointer + (elementLo * 2) : 0;
        long hi = elementHi >= 0 ? outputPointer + (elementHi * 2) : 0;
        if (bf16 != 0)
        {
            CudaAsm.Emit(AttentionTensorCoreKernels.StoreBf16, lo, hi, invLo, invHi);
        }
        else
        {
            CudaAsm.Emit(AttentionTensorCoreKernels.StoreF16, lo, hi, invLo, invHi);
        }
    }

    public readonly void Step(ArrayView<ushort> shared, int warp, int lane, int stage, float scaleLog2, bool masked, int limitLo, int limitHi, int bf16)
    {
        uint kRow = sharedBase + (uint)AttentionTensorCoreKernels.KLaneByte(lane, stage, Dim);
        uint vRow = sharedBase + (uint)AttentionTensorCoreKernels.VLaneByte(lane, stage, Dim);
        if (Narrow)
        {
            StepD64(kRow, vRow, scaleLog2, masked, limitLo, limitHi, bf16);
        }
        else if (masked)
        {
            if (bf16 != 0)
            {
                CudaAsm.Emit(AttentionTensorCoreKernels.StepMaskedBf16, kRow, vRow, scaleLog2, limitLo, limitHi);
            }
            else
            {
                CudaAsm.Emit(AttentionTensorCoreKernels.StepMaskedF16, kRow, vRow, scaleLog2, limitLo, limitHi);
            }
        }
        else if (bf16 != 0)
        {
            CudaAsm.Emit(AttentionTensorCoreKernels.StepBf16, kRow, vRow, scaleLog2);
        }
        else
        {
            CudaAsm.Emit(AttentionTensorCoreKernels.StepF16, kRow, vRow, scaleLog2);
        }
    }

    public readonly void StoreNormalized(ArrayView<ushort> output, long outputPointer, long elementLo, long elementHi, int bf16)
    {
        long lo = elementLo >= 0 ? outputPointer + (elementLo * 2) : 0;
        long hi = elementHi >= 0 ? outputPointer + (elementHi * 2) : 0;
        if (Narrow)
        {
            if (bf16 != 0)
            {
                CudaAsm.Emit(AttentionTensorCoreKernels.StoreNormalizedD64Bf16, lo, hi);
            }
            else
            {
                CudaAsm.Emit(AttentionTensorCoreKernels.StoreNormalizedD64F16, lo, hi);
            }
        }
        else if (bf16 != 0)
        {
            CudaAsm.Emit(AttentionTensorCoreKernels.StoreNormalizedBf16, lo, hi);
        }
        else
        {
            CudaAsm.Emit(AttentionTensorCoreKernels.StoreNormalizedF16, lo, hi);
        }
    }

    public readonly void StorePartial(ArrayView<float> partO, ArrayView<float> partML, PrefillSplit split, long partLo, long partHi, int t)
    {
        long oLo = partLo >= 0 ? split.PartO + (((partLo * Dim) + (2 * t)) * sizeof(float)) : 0;
        long oHi = partHi >= 0 ? split.PartO + (((partHi * Dim) + (2 * t)) * sizeof(float)) : 0;
        long mlLo = partLo >= 0 && t == 0 ? split.PartML + (partLo * 2 * sizeof(float)) : 0;
        long mlHi = partHi >= 0 && t == 0 ? split.PartML + (partHi * 2 * sizeof(float)) : 0;
        if (Narrow)
        {
            CudaAsm.Emit(AttentionTensorCoreKernels.StorePartialD64, oLo, oHi, mlLo, mlHi);
        }
        else
        {
            CudaAsm.Emit(AttentionTensorCoreKernels.StorePartial, oLo, oHi, mlLo, mlHi);
        }
    }

    private static void StepD64(uint kRow, uint vRow, float scaleLog2, bool masked, int limitLo, int limitHi, int bf16)
    {
        if (masked)
        {
            if (bf16 != 0)
            {
                CudaAsm.Emit(AttentionTensorCoreKernels.StepMaskedD64Bf16, kRow, vRow, scaleLog2, limitLo, limitHi);
            }
            else
            {
                CudaAsm.Emit(AttentionTensorCoreKernels.StepMaskedD64F16, kRow, vRow, scaleLog2, limitLo, limitHi);
            }
        }
        else if (bf16 != 0)
        {
            CudaAsm.Emit(AttentionTensorCoreKernels.StepD64Bf16, kRow, vRow, scaleLog2);
        }
        else
        {
            CudaAsm.Emit(AttentionTensorCoreKernels.StepD64F16, kRow, vRow, scaleLog2);
        }
    }
}

/// <summary>
/// The attention's warp operations emulated from the PTX ISA's fragment definitions, one lane at a time (the rules are
/// spelled out on <see cref="EmulatedTensorCoreOps"/>): a lane rebuilds the fragment elements mma.sync would gather from
/// the other lanes, from those lanes' registers (the Q fragments each lane loaded) or by recomputing the row addresses
/// those lanes give ldmatrix, through the same address functions the PTX path uses. Copies are synchronous. Head size
/// 32 · <typeparamref name="TDimQuads"/>.
/// </summary>
internal struct EmulatedAttentionOps<TDimQuads> : IAttentionMmaOps
    where TDimQuads : struct, IKernelConstant
{
    /// <summary>
    /// Scratch floats per thread, laid out for the largest head size (<see cref="AttentionTensorCoreKernels.D"/>): the
    /// output accumulators, the Q fragment registers (two 16-bit values each), then the register variant's row maxima and
    /// partial sums (rows g, g + 8) and its weights' high and low parts (one 16-bit value per float, indexed like the
    /// score fragments).
    /// </summary>
    public const int FloatsPerThread = WeightSlot + (2 * ScoreFragments);

    // Score fragments per lane of a 32-key tile.
    private const int ScoreFragments = AttentionTensorCoreKernels.ScoreBlocks * 4;
    private const int RowSlot = AttentionTensorCoreKernels.Accumulators + (2 * AttentionTensorCoreKernels.QRegisters);
    private const int WeightSlot = RowSlot + 4;

    /// <summary><see cref="FloatsPerThread"/> floats for every thread of every group.</summary>
    public ArrayView<float> Scratch;

    private long groupBase;
    private long scratchBase;

    private static int Dim => 32 * default(TDimQuads).Value;

    private static int OutputBlocks => Dim / 8;

    public void Begin(int thread)
    {
        long group = ((((long)Grid.IdxZ * Grid.DimY) + Grid.IdxY) * Grid.DimX) + Grid.IdxX;
        groupBase = group * Group.DimX * FloatsPerThread;
        scratchBase = groupBase + ((long)thread * FloatsPerThread);
        EmulatedAttentionSoftmax.Begin(Scratch, scratchBase, OutputBlocks * 4, scratchBase + RowSlot);
    }

    public readonly void CopyChunk(ArrayView<ushort> shared, int sharedByte, ArrayView<Half8> source, long chunk, long sourcePointer, bool valid) =>
        shared.Cast<Half8>()[sharedByte >> 4] = valid ? source[chunk] : default;

    public readonly void Commit()
    {
    }

    public readonly void WaitForTile()
    {
    }

    public readonly void WaitForAll()
    {
    }

    public readonly void LoadQ(ArrayView<ushort> shared, int warp, int lane)
    {
        // ldmatrix.x4: register j of lane L is word L mod 4 of the row lane 8j + L/4 addressed.
        for (int ks = 0; ks < Dim / 16; ks++)
        {
            for (int j = 0; j < 4; j++)
            {
                int word = AttentionTensorCoreKernels.QLaneByte(warp, (8 * j) + (lane >> 2), Dim) + (ks * 32) + (4 * (lane & 3));
                long at = scratchBase + AttentionTensorCoreKernels.Accumulators + (((ks * 4) + j) * 2);
                Scratch[at] = shared[word >> 1];
                Scratch[at + 1] = shared[(word >> 1) + 1];
            }
        }
    }

    public readonly void Scores(ArrayView<ushort> shared, int warp, int lane, int stage, int bf16)
    {
        var sharedF = shared.Cast<float>();
        int g = lane >> 2;
        int t = lane & 3;
        for (int nb = 0; nb < AttentionTensorCoreKernels.ScoreBlocks; nb++)
        {
            for (int i = 0; i < 4; i++)
            {
                int at = AttentionTensorCoreKernels.ScoreLaneByte(warp, lane) + (nb * 32) + ((i >> 1) * 8 * AttentionTensorCoreKernels.SLd * 4) + ((i & 1) * 4);
                sharedF[at >> 2] = ScoreAt(shared, warp, stage * AttentionTensorCoreKernels.StageBytes(Dim), nb, g + ((i >> 1) * 8), (2 * t) + (i & 1), bf16);
            }
        }
    }

    /// <summary>
    /// Score (row, key col of n-block nb) of the warp's rows as mma.sync computes it from the Q fragments and the K tile
    /// <paramref name="kShift"/> bytes after stage 0's K tile.
    /// </summary>
    private readonly float ScoreAt(ArrayView<ushort> shared, int warp, int kShift, int nb, int row, int col, int bf16)
    {
        float sum = 0f;
        for (int ks = 0; ks < Dim / 16; ks++)
        {
            for (int kk = 0; kk < 16; kk++)
            {
                // A: element (row, k) sits in register row/8 + 2·(k/8), half k mod 2, of lane 4·(row mod 8) + (k mod 8)/2.
                int holder = ((row & 7) * 4) + ((kk & 7) >> 1);
                int aRegister = (row >> 3) + ((kk >> 3) * 2);
                long aAt = groupBase + (((long)(warp * 32) + holder) * FloatsPerThread) + AttentionTensorCoreKernels.Accumulators + (((ks * 4) + aRegister) * 2) + (kk & 1);
                float av = GpuMath.Load16((ushort)Scratch[aAt], bf16);

                // B (plain ldmatrix of K stored [key][d]): register (nb mod 2)·2 + k/8 of n-pair nb/2 holds, for column
                // col, word (k mod 8)/2 of the row that lane 8·register + col addressed.
                int register = ((nb & 1) * 2) + (kk >> 3);
                int kRow = AttentionTensorCoreKernels.KLaneByte((8 * register) + col, 0, Dim) + kShift + ((nb >> 1) * 16 * AttentionTensorCoreKernels.Ld(Dim) * 2) + (ks * 32);
                float bv = GpuMath.Load16(shared[(kRow >> 1) + (kk & 7)], bf16);
                sum += av * bv;
            }
        }

        return sum;
    }

    public readonly void Softmax(ArrayView<ushort> shared, int scoreByte, int weightByte, int statsByte, float oldMax, float factor, int bf16)
    {
        var sharedF = shared.Cast<float>();
        int at = scoreByte >> 2;
        float top = GpuMath.NegInf;
        for (int i = 0; i < 16; i++)
        {
            top = GpuMath.MaxNaN(top, sharedF[at + i] * factor);
        }

        top = GpuMath.MaxNaN(top, Warp.ShuffleXor(top, 1));
        float mNew = GpuMath.MaxNaN(top, oldMax);
        float shift = mNew == GpuMath.NegInf ? 0f : mNew;
        float alpha = mNew == GpuMath.NegInf || mNew == oldMax ? 1f : GpuMath.Exp(oldMax - shift);
        float sum = 0f;
        var p = default(Lane16);
        p.A = new Floats8
        {
            V0 = GpuMath.Exp((sharedF[at] * factor) - shift),
            V1 = GpuMath.Exp((sharedF[at + 1] * factor) - shift),
            V2 = GpuMath.Exp((sharedF[at + 2] * factor) - shift),
            V3 = GpuMath.Exp((sharedF[at + 3] * factor) - shift),
            V4 = GpuMath.Exp((sharedF[at + 4] * factor) - shift),
            V5 = GpuMath.Exp((sharedF[at + 5] * factor) - shift),
            V6 = GpuMath.Exp((sharedF[at + 6] * factor) - shift),
            V7 = GpuMath.Exp((sharedF[at + 7] * factor) - shift),
        };
        p.B = new Floats8
        {
            V0 = GpuMath.Exp((sharedF[at + 8] * factor) - shift),
            V1 = GpuMath.Exp((sharedF[at + 9] * factor) - shift),
            V2 = GpuMath.Exp((sharedF[at + 10] * factor) - shift),
            V3 = GpuMath.Exp((sharedF[at + 11] * factor) - shift),
            V4 = GpuMath.Exp((sharedF[at + 12] * factor) - shift),
            V5 = GpuMath.Exp((sharedF[at + 13] * factor) - shift),
            V6 = GpuMath.Exp((sharedF[at + 14] * factor) - shift),
            V7 = GpuMath.Exp((sharedF[at + 15] * factor) - shift),
        };
        sum += (p.A.V0 + p.A.V1 + p.A.V2 + p.A.V3) + (p.A.V4 + p.A.V5 + p.A.V6 + p.A.V7);
        sum += (p.B.V0 + p.B.V1 + p.B.V2 + p.B.V3) + (p.B.V4 + p.B.V5 + p.B.V6 + p.B.V7);
        sum += Warp.ShuffleXor(sum, 1);

        // Every lane has its scores before the weights overwrite the score area.
        Warp.Barrier();
        int w = weightByte >> 1;
        int low = (weightByte + AttentionTensorCoreKernels.WeightLowOffset) >> 1;
        StoreWeights(shared, w, low, p.A, bf16);
        StoreWeights(shared, w + 8, low + 8, p.B, bf16);
        int stats = statsByte >> 2;
        sharedF[stats] = mNew;
        sharedF[stats + 1] = sum;
        sharedF[stats + 2] = alpha;
    }

    private static void StoreWeights(ArrayView<ushort> shared, int high, int low, Floats8 p, int bf16)
    {
        StoreWeight(shared, high, low, p.V0, bf16);
        StoreWeight(shared, high + 1, low + 1, p.V1, bf16);
        StoreWeight(shared, high + 2, low + 2, p.V2, bf16);
        StoreWeight(shared, high + 3, low + 3, p.V3, bf16);
        StoreWeight(shared, high + 4, low + 4, p.V4, bf16);
        StoreWeight(shared, high + 5, low + 5, p.V5, bf16);
        StoreWeight(shared, high + 6, low + 6, p.V6, bf16);
        StoreWeight(shared, high + 7, low + 7, p.V7, bf16);
    }

    private static void StoreWeight(ArrayView<ushort> shared, int high, int low, float p, int bf16)
    {
        ushort hi = GpuMath.Store16(p, bf16);
        shared[high] = hi;
        shared[low] = GpuMath.Store16(p - GpuMath.Load16(hi, bf16), bf16);
    }

    public readonly void Rescale(float alphaLo, float alphaHi) =>
        EmulatedAttentionSoftmax.Rescale(Scratch, scratchBase, OutputBlocks * 4, alphaLo, alphaHi);

    public readonly void Accumulate(ArrayView<ushort> shared, int warp, int lane, int stage, int bf16)
    {
        int g = lane >> 2;
        int t = lane & 3;
        for (int nb = 0; nb < OutputBlocks; nb++)
        {
            for (int i = 0; i < 4; i++)
            {
                int row = g + ((i >> 1) * 8);
                int col = (2 * t) + (i & 1);
                float sum = 0f;
                for (int ks = 0; ks < AttentionTensorCoreKernels.BlockK / 16; ks++)
                {
                    for (int kk = 0; kk < 16; kk++)
                    {
                        int aLane = (8 * ((row >> 3) + ((kk >> 3) * 2))) + (row & 7);
                        int pAt = AttentionTensorCoreKernels.PLaneByte(warp, aLane) + (ks * 32);
                        float high = GpuMath.Load16(shared[(pAt >> 1) + (kk & 7)], bf16);
                        float low = GpuMath.Load16(shared[((pAt + AttentionTensorCoreKernels.WeightLowOffset) >> 1) + (kk & 7)], bf16);

                        float bv = ValueAt(shared, stage * AttentionTensorCoreKernels.StageBytes(Dim), nb, ks, kk, col, bf16);
                        sum += (high * bv) + (low * bv);
                    }
                }

                Scratch[scratchBase + (nb * 4) + i] += sum;
            }
        }
    }

    /// <summary>
    /// V element (key 16·ks + kk of the tile <paramref name="vShift"/> bytes after stage 0's V tile, column col of n-block
    /// nb) as the B fragment of ldmatrix.trans holds it.
    /// </summary>
    private static float ValueAt(ArrayView<ushort> shared, int vShift, int nb, int ks, int kk, int col, int bf16)
    {
        // Register (nb mod 2)·2 + k/8 holds column col of the rows lanes 8·register + (k mod 8) gave.
        int register = ((nb & 1) * 2) + (kk >> 3);
        int vRow = AttentionTensorCoreKernels.VLaneByte((8 * register) + (kk & 7), 0, Dim) + vShift + (ks * 16 * AttentionTensorCoreKernels.Ld(Dim) * 2) + ((nb >> 1) * 32);
        return GpuMath.Load16(shared[(vRow >> 1) + col], bf16);
    }

    public readonly void Step(ArrayView<ushort> shared, int warp, int lane, int stage, float scaleLog2, bool masked, int limitLo, int limitHi, int bf16)
    {
        int shift = stage * AttentionTensorCoreKernels.StageBytes(Dim);
        ScoresToWeights(shared, warp, lane, shift, ScoreFragments, scaleLog2, masked, limitLo, limitHi, bf16);
        WeightsTimesValues(shared, warp, lane, shift, AttentionTensorCoreKernels.BlockK, bf16);
    }

    /// <summary>
    /// The first half of a register-variant tile: <paramref name="fragments"/> scores per lane (K tile <paramref name="kShift"/>
    /// bytes after stage 0's), scaled and masked, the online-softmax update, the rescale, and the weights' high and low
    /// parts into this lane's scratch (where the quad's other lanes read them, as the A fragments gather them).
    /// </summary>
    private readonly void ScoresToWeights(ArrayView<ushort> shared, int warp, int lane, int kShift, int fragments, float scaleLog2, bool masked,
        int limitLo, int limitHi, int bf16)
    {
        int g = lane >> 2;
        int t = lane & 3;
        long s = scratchBase + WeightSlot;

        // Scores (scaled, masked) go to the high-part slots for now; the weights replace them below.
        for (int j = 0; j < fragments; j++)
        {
            int nb = j >> 2;
            int i = j & 3;
            float x = ScoreAt(shared, warp, kShift, nb, g + ((i >> 1) * 8), (2 * t) + (i & 1), bf16) * scaleLog2;
            int limit = (i & 2) == 0 ? limitLo : limitHi;
            Scratch[s + j] = masked && limit <= (nb * 8) + (i & 1) ? GpuMath.NegInf : x;
        }

        float alphaLo = EmulatedAttentionSoftmax.RowUpdate(Scratch, s, scratchBase + RowSlot, 0, fragments);
        float alphaHi = EmulatedAttentionSoftmax.RowUpdate(Scratch, s, scratchBase + RowSlot, 1, fragments);
        if (alphaLo != 1f || alphaHi != 1f)
        {
            Rescale(alphaLo, alphaHi);
        }

        EmulatedAttentionSoftmax.SplitWeights(Scratch, s, s, s + ScoreFragments, fragments, bf16);

        // Every lane's weights are in place before the quad neighbours' fragments are read.
        Warp.Barrier();
    }

    /// <summary>The second half: O += P·V over <paramref name="keys"/> keys, P from the lanes' scratch, V <paramref name="vShift"/> bytes after stage 0's V tile.</summary>
    private readonly void WeightsTimesValues(ArrayView<ushort> shared, int warp, int lane, int vShift, int keys, int bf16)
    {
        int g = lane >> 2;
        int t = lane & 3;
        for (int nb = 0; nb < OutputBlocks; nb++)
        {
            for (int i = 0; i < 4; i++)
            {
                int row = g + ((i >> 1) * 8);
                int col = (2 * t) + (i & 1);
                float sum = 0f;
                for (int ks = 0; ks < keys / 16; ks++)
                {
                    for (int kk = 0; kk < 16; kk++)
                    {
                        int holder = EmulatedAttentionSoftmax.WeightHolder(row, kk);
                        long at = groupBase + (((long)(warp * 32) + holder) * FloatsPerThread) + WeightSlot + EmulatedAttentionSoftmax.WeightFragment(row, kk, ks);
                        float high = GpuMath.Load16((ushort)Scratch[at], bf16);
                        float low = GpuMath.Load16((ushort)Scratch[at + ScoreFragments], bf16);
                        float bv = ValueAt(shared, vShift, nb, ks, kk, col, bf16);
                        sum += (high * bv) + (low * bv);
                    }
                }

                Scratch[scratchBase + (nb * 4) + i] += sum;
            }
        }

        // The next tile's weights overwrite these only after every lane has read them.
        Warp.Barrier();
    }

    public readonly void StoreNormalized(ArrayView<ushort> output, long outputPointer, long elementLo, long elementHi, int bf16) =>
        EmulatedAttentionSoftmax.StoreNormalized(Scratch, scratchBase, scratchBase + RowSlot, OutputBlocks, output, elementLo, elementHi, bf16);

    public readonly void Store(ArrayView<ushort> output, long outputPointer, long elementLo, long elementHi, float invLo, float invHi, int bf16) =>
        EmulatedAttentionSoftmax.Store(Scratch, scratchBase, OutputBlocks, output, elementLo, elementHi, invLo, invHi, bf16);

    public readonly void StorePartial(ArrayView<float> partO, ArrayView<float> partML, PrefillSplit split, long partLo, long partHi, int t) =>
        EmulatedAttentionSoftmax.StorePartial(Scratch, scratchBase, scratchBase + RowSlot, Dim, partO, partML, partLo, partHi, t);
}

/// <summary>Device addresses the tensor-core attention's cp.async copies and output stores use (0 in the emulation).</summary>
internal struct TensorCoreAttentionPointers
{
    public long Q;
    public long K;
    public long V;
    public long Output;
}
