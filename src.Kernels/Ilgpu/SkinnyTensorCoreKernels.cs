using System.Runtime.CompilerServices;
using ILGPU;
using ILGPU.Runtime.Cuda;

namespace GemsInjector.Kernels.Ilgpu;

/// <summary>The four float32 accumulators one lane holds of one m16n8 tile (PTX C-fragment order).</summary>
internal struct SkinnyQuad
{
    public float C0;
    public float C1;
    public float C2;
    public float C3;
}

/// <summary>One lane's eight weight vectors of one step: block (0: K 0–31, 1: K 32–63 of the step) × n-block.</summary>
internal struct SkinnyWeights
{
    public Half8 B00, B01, B02, B03, B10, B11, B12, B13;
}

/// <summary>Where one lane reads its activation vectors in one step (rows clamped into M, vectors past K zeroed).</summary>
internal struct SkinnyARows
{
    public ArrayView<Half8> View;
    public int Rows;
    public long RowVectors;
    public int G;
    public long V0;
    public long V1;
    public bool Valid0;
    public bool Valid1;
}

/// <summary>
/// The warp-level operations of the skinny tensor-core kernel, so one body runs on the GPU through inline PTX
/// (<see cref="PtxSkinnyOps"/>) and on ILGPU's CPU accelerator through a lane-exact emulation of mma.sync
/// (<see cref="EmulatedSkinnyOps"/>).
/// </summary>
internal interface ISkinnyOps
{
    /// <summary>Zeroes this thread's accumulators of <paramref name="mTiles"/> m-tiles (first statement of the kernel).</summary>
    void Begin(int mTiles, int thread);

    /// <summary>mma.sync m16n8k16 into tile <typeparamref name="TTile"/> (m-tile · n-blocks + n-block) with this lane's A and B fragments.</summary>
    void Mma<TTile>(bool bf16, uint a0, uint a1, uint a2, uint a3, uint b0, uint b1)
        where TTile : struct, IKernelConstant;

    /// <summary>
    /// mma.sync m16n8k16 into tile <typeparamref name="TTile"/> (0–3) with the A fragment paired from four row words:
    /// a0 / a1 = the low / high halves of <paramref name="w0"/> (low) and <paramref name="w1"/> (high), a2 / a3 the same of
    /// <paramref name="w2"/> and <paramref name="w3"/> (see <see cref="SkinnyTensorCoreKernels.Pair"/>).
    /// </summary>
    void MmaPairedA<TTile>(bool bf16, uint w0, uint w1, uint w2, uint w3, uint b0, uint b1)
        where TTile : struct, IKernelConstant;

    /// <summary>This lane's four accumulators of tile <typeparamref name="TTile"/>.</summary>
    SkinnyQuad Read<TTile>()
        where TTile : struct, IKernelConstant;
}

/// <summary>
/// 16-bit products with few rows (decode and batched decode: 2–64 rows per group, more through Grid.Z) against a
/// weight stored [N, K] (linear / mm_tb), on tensor cores (mma.sync m16n8k16, float32 accumulation). Memory-bound: the
/// weight is streamed once, straight from global memory into mma fragments in 16-byte loads, without shared memory.
/// <para>
/// Fragments without ldmatrix: a lane (g = lane / 4, t = lane mod 4) of an m16n8k16 holds, of B, column g at k = 2t, 2t+1
/// (b0) and 2t+8, 2t+9 (b1); of A, rows g and g+8 at the same k. The sum over k does not care in which order K is
/// visited, so within each 32-element block of K the kernel renumbers: lane t's 16-byte vector of elements 8t..8t+7
/// serves two k16 steps, elements 8t+4s..8t+4s+1 as its "2t, 2t+1" and 8t+4s+2..8t+4s+3 as its "2t+8, 2t+9" of step s.
/// A is read with the same renumbering (rows g and g+8, the same 16 bytes of K), so every product pairs the right
/// elements. One 16-byte load of the weight per n-block per lane feeds two mma.
/// </para>
/// <para>
/// Groups of <see cref="Warps"/> warps; each warp owns 8 · <see cref="NBlocks"/> = 32 columns and all of the group's
/// 16 · TMTiles rows; K goes in steps of <see cref="KStep"/> (two 32-element blocks: 8 weight vectors of 16 bytes in
/// flight per lane, issued before any mma waits on them). Grid (⌈N / BlockN⌉, splits, ⌈M / (16 · TMTiles)⌉): split-K
/// chunks of <see cref="TensorCoreShape.KChunk"/> (a multiple of KStep) in Grid.Y write float32 partials
/// [split, M, N] that <see cref="HalfGemvKernels.GemvReduce16"/> sums, or, given tickets (<c>GEMS_SPLITK_REDUCE</c>), the
/// last group of each tile (<see cref="SplitKReduction.FinishTile"/>); one chunk writes C itself. Rows past M and columns
/// past N read a clamped (valid) row and are never stored; the K tail (K a multiple of 8, not of 64) zeroes whole
/// vectors past K in both operands.
/// </para>
/// Accumulators are PTX registers declared once in the entry block (ILGPU would pass them through local memory as asm
/// operands); fragments are by-value operands, which ILGPU binds to registers.
/// </summary>
internal static partial class SkinnyTensorCoreKernels
{
    /// <summary>Warps per group.</summary>
    public const int Warps = 4;

    /// <summary>Threads per group.</summary>
    public const int GroupSize = Warps * 32;

    /// <summary>Columns of C per warp.</summary>
    public const int WarpN = NBlocks * 8;

    /// <summary>Columns of C per group.</summary>
    public const int BlockN = Warps * WarpN;

    /// <summary>Elements of K per loop iteration: two 32-element blocks.</summary>
    public const int KStep = 64;

    /// <summary>Most rows one group covers (four m-tiles).</summary>
    public const int MaxGroupRows = MaxMTiles * 16;

    /// <summary>float32 accumulators per thread at most.</summary>
    public const int MaxAccumulators = MaxMTiles * NBlocks * 4;

    /// <summary>The emulation's scratch per thread: its accumulators, then its six fragment registers (as float bits), padded.</summary>
    public const int EmulationFloatsPerThread = MaxAccumulators + 8;

    /// <summary>
    /// The kernel through inline PTX (CUDA only): <typeparamref name="TMTiles"/> 16-row m-tiles (1, 2 or 4), float16 or
    /// bfloat16, <typeparamref name="TStepsInFlight"/> K steps of weight vectors in flight per warp (1, or 2: the next
    /// step's vectors are issued before this step's mma wait on theirs).
    /// </summary>
    [IlgpuKernel]
    [IlgpuKernelVariant(typeof(Const1), typeof(Float16Storage), typeof(Const1))]
    [IlgpuKernelVariant(typeof(Const2), typeof(Float16Storage), typeof(Const1))]
    [IlgpuKernelVariant(typeof(Const4), typeof(Float16Storage), typeof(Const1))]
    [IlgpuKernelVariant(typeof(Const1), typeof(BFloat16Storage), typeof(Const1))]
    [IlgpuKernelVariant(typeof(Const2), typeof(BFloat16Storage), typeof(Const1))]
    [IlgpuKernelVariant(typeof(Const4), typeof(BFloat16Storage), typeof(Const1))]
    [IlgpuKernelVariant(typeof(Const1), typeof(Float16Storage), typeof(Const2))]
    [IlgpuKernelVariant(typeof(Const2), typeof(Float16Storage), typeof(Const2))]
    [IlgpuKernelVariant(typeof(Const4), typeof(Float16Storage), typeof(Const2))]
    [IlgpuKernelVariant(typeof(Const1), typeof(BFloat16Storage), typeof(Const2))]
    [IlgpuKernelVariant(typeof(Const2), typeof(BFloat16Storage), typeof(Const2))]
    [IlgpuKernelVariant(typeof(Const4), typeof(BFloat16Storage), typeof(Const2))]
    public static void Gemm16Skinny<TMTiles, TFormat, TStepsInFlight>(ArrayView<Half8> a8, ArrayView<Half8> b8, ArrayView<ushort> bias, ArrayView<ushort> c,
        ArrayView<float> partial, ArrayView<int> tickets, TensorCoreShape s)
        where TMTiles : struct, IKernelConstant
        where TFormat : struct, IStorage16, IKernelConstant
        where TStepsInFlight : struct, IKernelConstant
    {
        var ops = default(PtxSkinnyOps);
        Body<PtxSkinnyOps, TMTiles, TFormat, TStepsInFlight>(ref ops, a8, b8, bias, c, partial, tickets, s);
    }

    /// <summary>
    /// The same body with mma.sync emulated lane by lane (accumulators and fragment exchange in <paramref name="scratch"/>,
    /// <see cref="EmulationFloatsPerThread"/> floats per thread of every group): for ILGPU's CPU accelerator with 32-thread warps.
    /// </summary>
    [IlgpuKernel(SimulatorOnly = true)]
    [IlgpuKernelVariant(typeof(Const1), typeof(Float16Storage), typeof(Const1))]
    [IlgpuKernelVariant(typeof(Const4), typeof(BFloat16Storage), typeof(Const2))]
    public static void Gemm16SkinnyEmulated<TMTiles, TFormat, TStepsInFlight>(ArrayView<Half8> a8, ArrayView<Half8> b8, ArrayView<ushort> bias, ArrayView<ushort> c,
        ArrayView<float> partial, ArrayView<int> tickets, ArrayView<float> scratch, TensorCoreShape s)
        where TMTiles : struct, IKernelConstant
        where TFormat : struct, IStorage16, IKernelConstant
        where TStepsInFlight : struct, IKernelConstant
    {
        var ops = new EmulatedSkinnyOps { Scratch = scratch };
        Body<EmulatedSkinnyOps, TMTiles, TFormat, TStepsInFlight>(ref ops, a8, b8, bias, c, partial, tickets, s);
    }

    /// <summary>
    /// The kernel body shared by the PTX and emulated operations. With splits, a non-empty <paramref name="tickets"/> (one
    /// per group of a split: Grid.Z · Grid.X) makes the last split of each tile sum the partials into C (<see cref="SplitKReduction.FinishTile"/>).
    /// </summary>
    internal static void Body<TOps, TMTiles, TFormat, TStepsInFlight>(ref TOps ops, ArrayView<Half8> a8, ArrayView<Half8> b8, ArrayView<ushort> bias, ArrayView<ushort> c,
        ArrayView<float> partial, ArrayView<int> tickets, TensorCoreShape s)
        where TOps : struct, ISkinnyOps
        where TMTiles : struct, IKernelConstant
        where TFormat : struct, IStorage16, IKernelConstant
        where TStepsInFlight : struct, IKernelConstant
    {
        int mTiles = default(TMTiles).Value;
        bool bf16 = default(TFormat).Value != 0;
        int thread = Group.IdxX;
        ops.Begin(mTiles, thread);
        int lane = thread & 31;
        int g = lane >> 2;
        int t = lane & 3;
        int n0 = (Grid.IdxX * BlockN) + ((thread >> 5) * WarpN);
        int m0 = Grid.IdxZ * mTiles * 16;
        int split = Grid.IdxY;
        int kStart = split * s.KChunk;
        int kEnd = s.K - kStart < s.KChunk ? s.K : kStart + s.KChunk;
        long rowVectors = s.K / 8;

        // This lane's weight rows (column g of each n-block), clamped into N: a clamped column's sums are never stored.
        long w0 = Clamp(n0 + g, s.N) * rowVectors;
        long w1 = Clamp(n0 + 8 + g, s.N) * rowVectors;
        long w2 = Clamp(n0 + 16 + g, s.N) * rowVectors;
        long w3 = Clamp(n0 + 24 + g, s.N) * rowVectors;

        int kb = kStart;
        if (default(TStepsInFlight).Value > 1)
        {
            // Two steps in flight: the next whole step's weight vectors are issued before this step's mma wait on theirs.
            if (kb + KStep <= kEnd)
            {
                var current = LoadWeights(b8, w0, w1, w2, w3, kb, kEnd, t, guarded: false);
                while (true)
                {
                    int next = kb + KStep;
                    bool more = next + KStep <= kEnd;
                    var ahead = more ? LoadWeights(b8, w0, w1, w2, w3, next, kEnd, t, guarded: false) : default;
                    Multiply(ref ops, a8, s, mTiles, bf16, m0, g, t, rowVectors, current, kb, kEnd, guarded: false);
                    kb = next;
                    if (!more)
                    {
                        break;
                    }

                    current = ahead;
                }
            }
        }
        else
        {
            for (; kb + KStep <= kEnd; kb += KStep)
            {
                Multiply(ref ops, a8, s, mTiles, bf16, m0, g, t, rowVectors, LoadWeights(b8, w0, w1, w2, w3, kb, kEnd, t, guarded: false), kb, kEnd, guarded: false);
            }
        }

        if (kb < kEnd)
        {
            Multiply(ref ops, a8, s, mTiles, bf16, m0, g, t, rowVectors, LoadWeights(b8, w0, w1, w2, w3, kb, kEnd, t, guarded: true), kb, kEnd, guarded: true);
        }

        // Tiles are type arguments (constants: each mma and read names its PTX registers); m-tiles past the variant's fold away.
        StoreMTile<TOps, SkinnyTile0, SkinnyTile1, SkinnyTile2, SkinnyTile3>(ref ops, bias, c, partial, s, split, m0, n0, g, t);
        if (mTiles > 1)
        {
            StoreMTile<TOps, SkinnyTile4, SkinnyTile5, SkinnyTile6, SkinnyTile7>(ref ops, bias, c, partial, s, split, m0 + 16, n0, g, t);
        }

        if (mTiles > 2)
        {
            StoreMTile<TOps, SkinnyTile8, SkinnyTile9, SkinnyTile10, SkinnyTile11>(ref ops, bias, c, partial, s, split, m0 + 32, n0, g, t);
            StoreMTile<TOps, SkinnyTile12, SkinnyTile13, SkinnyTile14, SkinnyTile15>(ref ops, bias, c, partial, s, split, m0 + 48, n0, g, t);
        }

        if (s.SplitK > 1 && tickets.Length != 0)
        {
            SplitKReduction.FinishTile(tickets, (Grid.IdxZ * Grid.DimX) + Grid.IdxX, partial, bias, c, TensorCoreLaunch.ReduceShape(s),
                m0, mTiles * 16, Grid.IdxX * BlockN, BlockN, s.Bf16);
        }
    }

    /// <summary>Stores the four n-blocks of one m-tile starting at row <paramref name="row0"/>.</summary>
    private static void StoreMTile<TOps, T0, T1, T2, T3>(ref TOps ops, ArrayView<ushort> bias, ArrayView<ushort> c, ArrayView<float> partial, TensorCoreShape s,
        int split, int row0, int n0, int g, int t)
        where TOps : struct, ISkinnyOps
        where T0 : struct, IKernelConstant
        where T1 : struct, IKernelConstant
        where T2 : struct, IKernelConstant
        where T3 : struct, IKernelConstant
    {
        StoreTile(bias, c, partial, s, split, row0 + g, n0 + (2 * t), ops.Read<T0>());
        StoreTile(bias, c, partial, s, split, row0 + g, n0 + 8 + (2 * t), ops.Read<T1>());
        StoreTile(bias, c, partial, s, split, row0 + g, n0 + 16 + (2 * t), ops.Read<T2>());
        StoreTile(bias, c, partial, s, split, row0 + g, n0 + 24 + (2 * t), ops.Read<T3>());
    }

    /// <summary>C fragment: accumulator i of a tile holds row g (+8 for i ≥ 2), column 2t + (i &amp; 1) of its m16n8 block.</summary>
    private static void StoreTile(ArrayView<ushort> bias, ArrayView<ushort> c, ArrayView<float> partial, TensorCoreShape s, int split, int row, int col, SkinnyQuad quad)
    {
        Store(bias, c, partial, s, split, row, col, quad.C0);
        Store(bias, c, partial, s, split, row, col + 1, quad.C1);
        Store(bias, c, partial, s, split, row + 8, col, quad.C2);
        Store(bias, c, partial, s, split, row + 8, col + 1, quad.C3);
    }

    /// <summary>
    /// The eight weight vectors of one <see cref="KStep"/> from <paramref name="kb"/> (two blocks × four n-blocks).
    /// <paramref name="guarded"/> (the last, partial step only) zeroes vectors at or past <paramref name="kEnd"/> (so a NaN
    /// past K cannot leak in; the activations are zeroed the same way).
    /// </summary>
    private static SkinnyWeights LoadWeights(ArrayView<Half8> b8, long w0, long w1, long w2, long w3, int kb, int kEnd, int t, bool guarded)
    {
        bool valid0 = !guarded || kb + (8 * t) < kEnd;
        bool valid1 = !guarded || kb + 32 + (8 * t) < kEnd;
        long v0 = (kb / 8) + t;
        long v1 = v0 + 4;
        return new SkinnyWeights
        {
            B00 = Fetch(b8, w0 + v0, valid0),
            B01 = Fetch(b8, w1 + v0, valid0),
            B02 = Fetch(b8, w2 + v0, valid0),
            B03 = Fetch(b8, w3 + v0, valid0),
            B10 = Fetch(b8, w0 + v1, valid1),
            B11 = Fetch(b8, w1 + v1, valid1),
            B12 = Fetch(b8, w2 + v1, valid1),
            B13 = Fetch(b8, w3 + v1, valid1),
        };
    }

    /// <summary>One <see cref="KStep"/> of K from <paramref name="kb"/> with its weight vectors: per m-tile its four activation vectors and 16 mma.</summary>
    private static void Multiply<TOps>(ref TOps ops, ArrayView<Half8> a8, TensorCoreShape s, int mTiles, bool bf16, int m0, int g, int t,
        long rowVectors, SkinnyWeights w, int kb, int kEnd, bool guarded)
        where TOps : struct, ISkinnyOps
    {
        long v0 = (kb / 8) + t;
        var a = new SkinnyARows
        {
            View = a8, Rows = s.M, RowVectors = rowVectors, G = g, V0 = v0, V1 = v0 + 4,
            Valid0 = !guarded || kb + (8 * t) < kEnd,
            Valid1 = !guarded || kb + 32 + (8 * t) < kEnd,
        };
        MTile<TOps, SkinnyTile0, SkinnyTile1, SkinnyTile2, SkinnyTile3>(ref ops, a, m0, bf16, w);
        if (mTiles > 1)
        {
            MTile<TOps, SkinnyTile4, SkinnyTile5, SkinnyTile6, SkinnyTile7>(ref ops, a, m0 + 16, bf16, w);
        }

        if (mTiles > 2)
        {
            MTile<TOps, SkinnyTile8, SkinnyTile9, SkinnyTile10, SkinnyTile11>(ref ops, a, m0 + 32, bf16, w);
            MTile<TOps, SkinnyTile12, SkinnyTile13, SkinnyTile14, SkinnyTile15>(ref ops, a, m0 + 48, bf16, w);
        }
    }

    /// <summary>One m-tile (rows <paramref name="row0"/> .. +15) over one step: its four activation vectors, then 16 mma.</summary>
    private static void MTile<TOps, T0, T1, T2, T3>(ref TOps ops, SkinnyARows a, int row0, bool bf16, SkinnyWeights w)
        where TOps : struct, ISkinnyOps
        where T0 : struct, IKernelConstant
        where T1 : struct, IKernelConstant
        where T2 : struct, IKernelConstant
        where T3 : struct, IKernelConstant
    {
        long lo = Clamp(row0 + a.G, a.Rows) * a.RowVectors;
        long hi = Clamp(row0 + a.G + 8, a.Rows) * a.RowVectors;
        var lo0 = Fetch(a.View, lo + a.V0, a.Valid0);
        var hi0 = Fetch(a.View, hi + a.V0, a.Valid0);
        var lo1 = Fetch(a.View, lo + a.V1, a.Valid1);
        var hi1 = Fetch(a.View, hi + a.V1, a.Valid1);
        Block<TOps, T0, T1, T2, T3>(ref ops, bf16, lo0, hi0, w.B00, w.B01, w.B02, w.B03);
        Block<TOps, T0, T1, T2, T3>(ref ops, bf16, lo1, hi1, w.B10, w.B11, w.B12, w.B13);
    }

    /// <summary>The two k16 steps of one 32-element block for one m-tile and four n-blocks (see the class notes for the renumbering).</summary>
    private static void Block<TOps, T0, T1, T2, T3>(ref TOps ops, bool bf16, Half8 lo, Half8 hi, Half8 w0, Half8 w1, Half8 w2, Half8 w3)
        where TOps : struct, ISkinnyOps
        where T0 : struct, IKernelConstant
        where T1 : struct, IKernelConstant
        where T2 : struct, IKernelConstant
        where T3 : struct, IKernelConstant
    {
        ops.Mma<T0>(bf16, lo.X, hi.X, lo.Y, hi.Y, w0.X, w0.Y);
        ops.Mma<T1>(bf16, lo.X, hi.X, lo.Y, hi.Y, w1.X, w1.Y);
        ops.Mma<T2>(bf16, lo.X, hi.X, lo.Y, hi.Y, w2.X, w2.Y);
        ops.Mma<T3>(bf16, lo.X, hi.X, lo.Y, hi.Y, w3.X, w3.Y);
        ops.Mma<T0>(bf16, lo.Z, hi.Z, lo.W, hi.W, w0.Z, w0.W);
        ops.Mma<T1>(bf16, lo.Z, hi.Z, lo.W, hi.W, w1.Z, w1.W);
        ops.Mma<T2>(bf16, lo.Z, hi.Z, lo.W, hi.W, w2.Z, w2.W);
        ops.Mma<T3>(bf16, lo.Z, hi.Z, lo.W, hi.W, w3.Z, w3.W);
    }

    private static Half8 Fetch(ArrayView<Half8> source, long index, bool valid) => valid ? source[index] : default;

    private static long Clamp(int index, int count) => index < count ? index : count - 1;

    /// <summary>One sum: a split's raw float32 partial, or C after alpha, beta·bias and one rounding; nothing outside M × N.</summary>
    private static void Store(ArrayView<ushort> bias, ArrayView<ushort> c, ArrayView<float> partial, TensorCoreShape s, int split, int row, int col, float sum)
    {
        if (row >= s.M || col >= s.N)
        {
            return;
        }

        if (s.SplitK > 1)
        {
            partial[((((long)split * s.M) + row) * s.N) + col] = sum;
        }
        else
        {
            c[((long)row * s.N) + col] = TensorCoreGemmKernels.Epilogue(bias, s, 0, row, col, sum);
        }
    }
}

/// <summary>The skinny kernel's operations through inline PTX: accumulators in PTX registers, fragments by value.</summary>
internal struct PtxSkinnyOps : ISkinnyOps
{
    public readonly void Begin(int mTiles, int thread)
    {
        // Emitted in the kernel's entry block, so the declaration precedes every use in the PTX text.
        if (mTiles == 4)
        {
            CudaAsm.Emit(SkinnyTensorCoreKernels.DeclareAccumulatorsM4);
        }
        else if (mTiles == 2)
        {
            CudaAsm.Emit(SkinnyTensorCoreKernels.DeclareAccumulatorsM2);
        }
        else
        {
            CudaAsm.Emit(SkinnyTensorCoreKernels.DeclareAccumulatorsM1);
        }
    }

    public readonly void Mma<TTile>(bool bf16, uint a0, uint a1, uint a2, uint a3, uint b0, uint b1)
        where TTile : struct, IKernelConstant =>
        SkinnyTensorCoreKernels.EmitMma(default(TTile).Value, bf16, a0, a1, a2, a3, b0, b1);

    /// <summary>The pairing as four prmt inside the mma's asm (in C# ptxas leaves each pair two ALU instructions).</summary>
    public readonly void MmaPairedA<TTile>(bool bf16, uint w0, uint w1, uint w2, uint w3, uint b0, uint b1)
        where TTile : struct, IKernelConstant =>
        SkinnyTensorCoreKernels.EmitMmaPaired(default(TTile).Value, bf16, w0, w1, w2, w3, b0, b1);

    public readonly SkinnyQuad Read<TTile>()
        where TTile : struct, IKernelConstant => SkinnyTensorCoreKernels.ReadTile(default(TTile).Value);
}

/// <summary>
/// mma.sync m16n8k16 emulated from the PTX ISA's fragment tables: each lane gathers, through its warp's fragment slots
/// in <see cref="Scratch"/>, the A elements of its two rows and the B elements of its two columns from the lanes that own
/// them, and adds the 16-term products to its four accumulators (also in Scratch). Every lane runs it, as every lane runs
/// the mma on the GPU.
/// </summary>
internal struct EmulatedSkinnyOps : ISkinnyOps
{
    /// <summary><see cref="SkinnyTensorCoreKernels.EmulationFloatsPerThread"/> floats per thread of every group (of its launched size).</summary>
    public ArrayView<float> Scratch;

    private long scratchBase;

    public void Begin(int mTiles, int thread)
    {
        long group = ((((long)Grid.IdxZ * Grid.DimY) + Grid.IdxY) * Grid.DimX) + Grid.IdxX;
        // The launched group size (GroupSize for every body but the streamed [N, K] one, which launches 4 or 8 warps).
        scratchBase = ((group * Group.DimX) + thread) * SkinnyTensorCoreKernels.EmulationFloatsPerThread;
        for (int i = 0; i < SkinnyTensorCoreKernels.MaxAccumulators; i++)
        {
            Scratch[scratchBase + i] = 0f;
        }
    }

    public readonly void Mma<TTile>(bool bf16, uint a0, uint a1, uint a2, uint a3, uint b0, uint b1)
        where TTile : struct, IKernelConstant
    {
        // Each lane publishes its six fragment registers (as float bits) in its slots, the warp meets, every lane
        // gathers what it needs, the warp meets again before the slots are reused (two barriers per mma instead of one
        // shuffle per register read: the simulator's barriers are the cost).
        const int Stride = SkinnyTensorCoreKernels.EmulationFloatsPerThread;
        const int Slots = SkinnyTensorCoreKernels.MaxAccumulators;
        int lane = Group.IdxX & 31;
        int g = lane >> 2;
        int t = lane & 3;
        int format = bf16 ? 1 : 0;
        long warpBase = scratchBase - ((long)lane * Stride) + Slots;
        long mine = warpBase + ((long)lane * Stride);
        Scratch[mine] = Interop.IntAsFloat(a0);
        Scratch[mine + 1] = Interop.IntAsFloat(a1);
        Scratch[mine + 2] = Interop.IntAsFloat(a2);
        Scratch[mine + 3] = Interop.IntAsFloat(a3);
        Scratch[mine + 4] = Interop.IntAsFloat(b0);
        Scratch[mine + 5] = Interop.IntAsFloat(b1);
        Warp.Barrier();
        float c0 = 0f, c1 = 0f, c2 = 0f, c3 = 0f;

        // k pair p (k = 2p, 2p + 1): A row r's pair is in lane 4 (r mod 8) + (p mod 4), register a0 / a1 (rows < 8 / ≥ 8)
        // for p < 4, a2 / a3 for p ≥ 4; B column n's pair is in lane 4n + (p mod 4), register b0 for p < 4, b1 for p ≥ 4.
        for (int p = 0; p < 8; p++)
        {
            int high = p < 4 ? 0 : 1;
            long aLane = warpBase + ((long)((4 * g) + (p & 3)) * Stride);
            uint rowLo = Interop.FloatAsInt(Scratch[aLane + (2 * high)]);
            uint rowHi = Interop.FloatAsInt(Scratch[aLane + (2 * high) + 1]);
            uint col0 = Interop.FloatAsInt(Scratch[warpBase + ((long)((8 * t) + (p & 3)) * Stride) + 4 + high]);
            uint col1 = Interop.FloatAsInt(Scratch[warpBase + ((long)((8 * t) + 4 + (p & 3)) * Stride) + 4 + high]);
            c0 += Dot(rowLo, col0, format);
            c1 += Dot(rowLo, col1, format);
            c2 += Dot(rowHi, col0, format);
            c3 += Dot(rowHi, col1, format);
        }

        Warp.Barrier();
        long at = scratchBase + (default(TTile).Value * 4);
        Scratch[at] += c0;
        Scratch[at + 1] += c1;
        Scratch[at + 2] += c2;
        Scratch[at + 3] += c3;
    }

    public readonly void MmaPairedA<TTile>(bool bf16, uint w0, uint w1, uint w2, uint w3, uint b0, uint b1)
        where TTile : struct, IKernelConstant =>
        Mma<TTile>(bf16, SkinnyTensorCoreKernels.Pair(w0, w1, odd: false), SkinnyTensorCoreKernels.Pair(w0, w1, odd: true),
            SkinnyTensorCoreKernels.Pair(w2, w3, odd: false), SkinnyTensorCoreKernels.Pair(w2, w3, odd: true), b0, b1);

    public readonly SkinnyQuad Read<TTile>()
        where TTile : struct, IKernelConstant
    {
        long at = scratchBase + (default(TTile).Value * 4);
        return new SkinnyQuad { C0 = Scratch[at], C1 = Scratch[at + 1], C2 = Scratch[at + 2], C3 = Scratch[at + 3] };
    }

    private static float Dot(uint x, uint y, int format) =>
        (GpuMath.Load16((ushort)x, format) * GpuMath.Load16((ushort)y, format)) + (GpuMath.Load16((ushort)(x >> 16), format) * GpuMath.Load16((ushort)(y >> 16), format));
}

/// <summary>
/// One lane's weight words of one step for a weight stored [K, N]: of each 32-element block of K (0: R0x, 1: R1x) the
/// rows 8t .. 8t+7, four columns each (low word: the lane's columns 4g, 4g+1; high word: 4g+2, 4g+3).
/// </summary>
internal struct SkinnyKnWeights
{
    public ulong R00, R01, R02, R03, R04, R05, R06, R07, R10, R11, R12, R13, R14, R15, R16, R17;
}

/// <summary>Where one lane reads its weight words: 8-byte quads or 4-byte pairs along N, already clamped into N.</summary>
internal struct SkinnyKnColumns
{
    public ArrayView<uint> Pairs;
    public ArrayView<ulong> Quads;
    public bool Wide;
    public long RowPairs;
    public long RowQuads;
    public long Pair0;
    public long Pair1;
    public long Quad;
}

/// <summary>
/// The same skinny tensor-core kernel for a weight stored [K, N] (mm, N contiguous).
/// <para>
/// B fragments from row-major words (PTX ISA, mma.m16n8k16 .f16/.bf16 fragment layout): lane (g, t) holds b0 = {B[2t, n=g],
/// B[2t+1, g]} and b1 = {B[2t+8, g], B[2t+9, g]}, lower k in the low half. With b stored [K, N] one 8-byte load of row k
/// at columns 4g .. 4g+3 gives that row's element of four columns; pairing the words of two rows by halves gives the
/// fragments of four n-blocks in which this lane's n = g stands for real column 4g + q of n-block q (q = 0..3). mma does
/// not care which real column an n index means, so the warp's 32 columns are n-block q ↔ columns {4g + q}; a C fragment
/// (n = 2t, 2t+1 of n-block q) is then real column 8t + q and 8t + 4 + q: thread t ends with columns 8t .. 8t+7.
/// K is renumbered exactly as in the [N, K] kernel (lane t's "2t, 2t+1 | 2t+8, 2t+9" of k16 step s of a 32-element block
/// are real 8t+4s, +1 | 8t+4s+2, +3), so the activations are the same 16-byte vectors and lane t reads the eight rows
/// 8t .. 8t+7 of each block. Across a warp the 8 lanes of one t read 64 contiguous bytes of one row: two full sectors,
/// no shared memory.
/// </para>
/// <para>
/// Layout flags (<see cref="KnVectorActivations"/>, <see cref="KnWideWeights"/>): activations as 16-byte vectors when K % 8
/// = 0 and a is 16-byte aligned, else element by element; weights as 8-byte quads when N % 4 = 0 and b is 8-byte aligned,
/// else two 4-byte pairs (N even, b 4-byte aligned: the dispatch's floor). Rows past K are zeroed in both operands.
/// </para>
/// </summary>
internal static partial class SkinnyTensorCoreKernels
{
    /// <summary>Layout flag: activation rows are read as 16-byte vectors (K % 8 = 0, a 16-byte aligned).</summary>
    public const int KnVectorActivations = 1;

    /// <summary>Layout flag: weight rows are read as 8-byte quads (N % 4 = 0, b 8-byte aligned); else 4-byte pairs.</summary>
    public const int KnWideWeights = 2;

    /// <summary>
    /// The [K, N] kernel through inline PTX (CUDA only); type arguments as <see cref="Gemm16Skinny{TMTiles, TFormat, TStepsInFlight}"/>.
    /// <paramref name="a8"/> and <paramref name="b4"/> are read only under their layout flags (may be empty otherwise).
    /// </summary>
    [IlgpuKernel]
    [IlgpuKernelVariant(typeof(Const1), typeof(Float16Storage), typeof(Const1))]
    [IlgpuKernelVariant(typeof(Const2), typeof(Float16Storage), typeof(Const1))]
    [IlgpuKernelVariant(typeof(Const4), typeof(Float16Storage), typeof(Const1))]
    [IlgpuKernelVariant(typeof(Const1), typeof(BFloat16Storage), typeof(Const1))]
    [IlgpuKernelVariant(typeof(Const2), typeof(BFloat16Storage), typeof(Const1))]
    [IlgpuKernelVariant(typeof(Const4), typeof(BFloat16Storage), typeof(Const1))]
    [IlgpuKernelVariant(typeof(Const1), typeof(Float16Storage), typeof(Const2))]
    [IlgpuKernelVariant(typeof(Const2), typeof(Float16Storage), typeof(Const2))]
    [IlgpuKernelVariant(typeof(Const4), typeof(Float16Storage), typeof(Const2))]
    [IlgpuKernelVariant(typeof(Const1), typeof(BFloat16Storage), typeof(Const2))]
    [IlgpuKernelVariant(typeof(Const2), typeof(BFloat16Storage), typeof(Const2))]
    [IlgpuKernelVariant(typeof(Const4), typeof(BFloat16Storage), typeof(Const2))]
    public static void Gemm16SkinnyKn<TMTiles, TFormat, TStepsInFlight>(ArrayView<ushort> a, ArrayView<Half8> a8, ArrayView<uint> b2, ArrayView<ulong> b4,
        ArrayView<ushort> bias, ArrayView<ushort> c, ArrayView<float> partial, TensorCoreShape s, int layout)
        where TMTiles : struct, IKernelConstant
        where TFormat : struct, IStorage16, IKernelConstant
        where TStepsInFlight : struct, IKernelConstant
    {
        var ops = default(PtxSkinnyOps);
        BodyKn<PtxSkinnyOps, TMTiles, TFormat, TStepsInFlight>(ref ops, a, a8, b2, b4, bias, c, partial, s, layout);
    }

    /// <summary>The [K, N] body with mma.sync emulated lane by lane (see <see cref="Gemm16SkinnyEmulated{TMTiles, TFormat, TStepsInFlight}"/>).</summary>
    [IlgpuKernel(SimulatorOnly = true)]
    [IlgpuKernelVariant(typeof(Const1), typeof(Float16Storage), typeof(Const1))]
    [IlgpuKernelVariant(typeof(Const4), typeof(BFloat16Storage), typeof(Const2))]
    public static void Gemm16SkinnyKnEmulated<TMTiles, TFormat, TStepsInFlight>(ArrayView<ushort> a, ArrayView<Half8> a8, ArrayView<uint> b2, ArrayView<ulong> b4,
        ArrayView<ushort> bias, ArrayView<ushort> c, ArrayView<float> partial, ArrayView<float> scratch, TensorCoreShape s, int layout)
        where TMTiles : struct, IKernelConstant
        where TFormat : struct, IStorage16, IKernelConstant
        where TStepsInFlight : struct, IKernelConstant
    {
        var ops = new EmulatedSkinnyOps { Scratch = scratch };
        BodyKn<EmulatedSkinnyOps, TMTiles, TFormat, TStepsInFlight>(ref ops, a, a8, b2, b4, bias, c, partial, s, layout);
    }

    /// <summary>The [K, N] kernel body shared by the PTX and emulated operations.</summary>
    internal static void BodyKn<TOps, TMTiles, TFormat, TStepsInFlight>(ref TOps ops, ArrayView<ushort> a, ArrayView<Half8> a8, ArrayView<uint> b2, ArrayView<ulong> b4,
        ArrayView<ushort> bias, ArrayView<ushort> c, ArrayView<float> partial, TensorCoreShape s, int layout)
        where TOps : struct, ISkinnyOps
        where TMTiles : struct, IKernelConstant
        where TFormat : struct, IStorage16, IKernelConstant
        where TStepsInFlight : struct, IKernelConstant
    {
        int mTiles = default(TMTiles).Value;
        bool bf16 = default(TFormat).Value != 0;
        int thread = Group.IdxX;
        ops.Begin(mTiles, thread);
        int lane = thread & 31;
        int g = lane >> 2;
        int t = lane & 3;
        int n0 = (Grid.IdxX * BlockN) + ((thread >> 5) * WarpN);
        int m0 = Grid.IdxZ * mTiles * 16;
        int split = Grid.IdxY;
        int kStart = split * s.KChunk;
        int kEnd = s.K - kStart < s.KChunk ? s.K : kStart + s.KChunk;
        bool vectors = (layout & KnVectorActivations) != 0;

        // This lane's four columns n0 + 4g .. +3, clamped into N (whole quads or pairs): clamped columns are never stored.
        int firstPair = (n0 + (4 * g)) >> 1;
        int lastPair = (s.N >> 1) - 1;
        var w = new SkinnyKnColumns
        {
            Pairs = b2,
            Quads = b4,
            Wide = (layout & KnWideWeights) != 0,
            RowPairs = s.N >> 1,
            RowQuads = s.N >> 2,
            Pair0 = firstPair < lastPair ? firstPair : lastPair,
            Pair1 = firstPair + 1 < lastPair ? firstPair + 1 : lastPair,
            Quad = Clamp((n0 + (4 * g)) >> 2, s.N >> 2),
        };

        int kb = kStart;
        if (default(TStepsInFlight).Value > 1)
        {
            if (kb + KStep <= kEnd)
            {
                var current = LoadWeightsKn(w, kb, kEnd, t, guarded: false);
                while (true)
                {
                    int next = kb + KStep;
                    bool more = next + KStep <= kEnd;
                    var ahead = more ? LoadWeightsKn(w, next, kEnd, t, guarded: false) : default;
                    MultiplyKn(ref ops, a, a8, s, mTiles, bf16, vectors, m0, g, t, Fragments(current), kb, kEnd, guarded: false);
                    kb = next;
                    if (!more)
                    {
                        break;
                    }

                    current = ahead;
                }
            }
        }
        else
        {
            for (; kb + KStep <= kEnd; kb += KStep)
            {
                MultiplyKn(ref ops, a, a8, s, mTiles, bf16, vectors, m0, g, t, Fragments(LoadWeightsKn(w, kb, kEnd, t, guarded: false)), kb, kEnd, guarded: false);
            }
        }

        if (kb < kEnd)
        {
            MultiplyKn(ref ops, a, a8, s, mTiles, bf16, vectors, m0, g, t, Fragments(LoadWeightsKn(w, kb, kEnd, t, guarded: true)), kb, kEnd, guarded: true);
        }

        StoreMTileKn<TOps, SkinnyTile0, SkinnyTile1, SkinnyTile2, SkinnyTile3>(ref ops, bias, c, partial, s, split, m0, n0, g, t);
        if (mTiles > 1)
        {
            StoreMTileKn<TOps, SkinnyTile4, SkinnyTile5, SkinnyTile6, SkinnyTile7>(ref ops, bias, c, partial, s, split, m0 + 16, n0, g, t);
        }

        if (mTiles > 2)
        {
            StoreMTileKn<TOps, SkinnyTile8, SkinnyTile9, SkinnyTile10, SkinnyTile11>(ref ops, bias, c, partial, s, split, m0 + 32, n0, g, t);
            StoreMTileKn<TOps, SkinnyTile12, SkinnyTile13, SkinnyTile14, SkinnyTile15>(ref ops, bias, c, partial, s, split, m0 + 48, n0, g, t);
        }
    }

    /// <summary>
    /// The 16 weight rows of one <see cref="KStep"/> from <paramref name="kb"/> (per block rows 8t .. 8t+7);
    /// <paramref name="guarded"/> (the last, partial step only) zeroes rows at or past <paramref name="kEnd"/>.
    /// </summary>
    private static SkinnyKnWeights LoadWeightsKn(SkinnyKnColumns w, int kb, int kEnd, int t, bool guarded)
    {
        // One uniform branch per step, not per row: the 16 loads of either path issue back to back.
        int r0 = kb + (8 * t);
        return w.Wide ? LoadQuads(w, r0, kEnd, guarded) : LoadPairs(w, r0, kEnd, guarded);
    }

    private static SkinnyKnWeights LoadQuads(SkinnyKnColumns w, int r0, int kEnd, bool guarded) => new()
    {
        R00 = Quad(w, r0, kEnd, guarded),
        R01 = Quad(w, r0 + 1, kEnd, guarded),
        R02 = Quad(w, r0 + 2, kEnd, guarded),
        R03 = Quad(w, r0 + 3, kEnd, guarded),
        R04 = Quad(w, r0 + 4, kEnd, guarded),
        R05 = Quad(w, r0 + 5, kEnd, guarded),
        R06 = Quad(w, r0 + 6, kEnd, guarded),
        R07 = Quad(w, r0 + 7, kEnd, guarded),
        R10 = Quad(w, r0 + 32, kEnd, guarded),
        R11 = Quad(w, r0 + 33, kEnd, guarded),
        R12 = Quad(w, r0 + 34, kEnd, guarded),
        R13 = Quad(w, r0 + 35, kEnd, guarded),
        R14 = Quad(w, r0 + 36, kEnd, guarded),
        R15 = Quad(w, r0 + 37, kEnd, guarded),
        R16 = Quad(w, r0 + 38, kEnd, guarded),
        R17 = Quad(w, r0 + 39, kEnd, guarded),
    };

    private static SkinnyKnWeights LoadPairs(SkinnyKnColumns w, int r0, int kEnd, bool guarded) => new()
    {
        R00 = Pairs(w, r0, kEnd, guarded),
        R01 = Pairs(w, r0 + 1, kEnd, guarded),
        R02 = Pairs(w, r0 + 2, kEnd, guarded),
        R03 = Pairs(w, r0 + 3, kEnd, guarded),
        R04 = Pairs(w, r0 + 4, kEnd, guarded),
        R05 = Pairs(w, r0 + 5, kEnd, guarded),
        R06 = Pairs(w, r0 + 6, kEnd, guarded),
        R07 = Pairs(w, r0 + 7, kEnd, guarded),
        R10 = Pairs(w, r0 + 32, kEnd, guarded),
        R11 = Pairs(w, r0 + 33, kEnd, guarded),
        R12 = Pairs(w, r0 + 34, kEnd, guarded),
        R13 = Pairs(w, r0 + 35, kEnd, guarded),
        R14 = Pairs(w, r0 + 36, kEnd, guarded),
        R15 = Pairs(w, r0 + 37, kEnd, guarded),
        R16 = Pairs(w, r0 + 38, kEnd, guarded),
        R17 = Pairs(w, r0 + 39, kEnd, guarded),
    };

    /// <summary>Row <paramref name="k"/>'s four columns of this lane in one 8-byte load, zero past K.</summary>
    private static ulong Quad(SkinnyKnColumns w, int k, int kEnd, bool guarded) =>
        guarded && k >= kEnd ? 0UL : w.Quads[(k * w.RowQuads) + w.Quad];

    /// <summary>Row <paramref name="k"/>'s four columns of this lane in two 4-byte loads (N % 4 = 2), zero past K.</summary>
    private static ulong Pairs(SkinnyKnColumns w, int k, int kEnd, bool guarded) =>
        guarded && k >= kEnd ? 0UL : w.Pairs[(k * w.RowPairs) + w.Pair0] | ((ulong)w.Pairs[(k * w.RowPairs) + w.Pair1] << 32);

    /// <summary>The B fragments of one step (block × n-block, as the [N, K] kernel's weight vectors) from its 16 rows.</summary>
    private static SkinnyWeights Fragments(SkinnyKnWeights r) => new()
    {
        B00 = NBlock(r.R00, r.R01, r.R02, r.R03, r.R04, r.R05, r.R06, r.R07, high: false, odd: false),
        B01 = NBlock(r.R00, r.R01, r.R02, r.R03, r.R04, r.R05, r.R06, r.R07, high: false, odd: true),
        B02 = NBlock(r.R00, r.R01, r.R02, r.R03, r.R04, r.R05, r.R06, r.R07, high: true, odd: false),
        B03 = NBlock(r.R00, r.R01, r.R02, r.R03, r.R04, r.R05, r.R06, r.R07, high: true, odd: true),
        B10 = NBlock(r.R10, r.R11, r.R12, r.R13, r.R14, r.R15, r.R16, r.R17, high: false, odd: false),
        B11 = NBlock(r.R10, r.R11, r.R12, r.R13, r.R14, r.R15, r.R16, r.R17, high: false, odd: true),
        B12 = NBlock(r.R10, r.R11, r.R12, r.R13, r.R14, r.R15, r.R16, r.R17, high: true, odd: false),
        B13 = NBlock(r.R10, r.R11, r.R12, r.R13, r.R14, r.R15, r.R16, r.R17, high: true, odd: true),
    };

    /// <summary>
    /// n-block q = 2 · <paramref name="high"/> + <paramref name="odd"/> of one block: X, Y = b0, b1 of k16 step 0 (rows 0, 1 |
    /// 2, 3), Z, W = step 1 (rows 4, 5 | 6, 7), each pairing column 4g + q of two consecutive rows (lower row in the low half).
    /// </summary>
    private static Half8 NBlock(ulong r0, ulong r1, ulong r2, ulong r3, ulong r4, ulong r5, ulong r6, ulong r7, bool high, bool odd) => new()
    {
        X = Pair(Word(r0, high), Word(r1, high), odd),
        Y = Pair(Word(r2, high), Word(r3, high), odd),
        Z = Pair(Word(r4, high), Word(r5, high), odd),
        W = Pair(Word(r6, high), Word(r7, high), odd),
    };

    private static uint Word(ulong row, bool high) => high ? (uint)(row >> 32) : (uint)row;

    /// <summary>
    /// {lower[col], upper[col]} of two rows' words: the even column (low halves, prmt selector 0x5410) or the odd column
    /// (high halves, 0x7632). Written as shifts and masks, which ptxas folds into one PRMT (CudaAsm outputs go through
    /// local memory in ILGPU, which the K loop must not touch).
    /// </summary>
    internal static uint Pair(uint lower, uint upper, bool odd) =>
        odd ? (lower >> 16) | (upper & 0xFFFF0000u) : (lower & 0xFFFFu) | (upper << 16);

    /// <summary>One <see cref="KStep"/> of K from <paramref name="kb"/>: per m-tile its activation vectors and 16 mma.</summary>
    private static void MultiplyKn<TOps>(ref TOps ops, ArrayView<ushort> a, ArrayView<Half8> a8, TensorCoreShape s, int mTiles, bool bf16, bool vectors,
        int m0, int g, int t, SkinnyWeights w, int kb, int kEnd, bool guarded)
        where TOps : struct, ISkinnyOps
    {
        int k0 = kb + (8 * t);
        MTileKn<TOps, SkinnyTile0, SkinnyTile1, SkinnyTile2, SkinnyTile3>(ref ops, a, a8, s, vectors, m0 + g, k0, kEnd, guarded, bf16, w);
        if (mTiles > 1)
        {
            MTileKn<TOps, SkinnyTile4, SkinnyTile5, SkinnyTile6, SkinnyTile7>(ref ops, a, a8, s, vectors, m0 + 16 + g, k0, kEnd, guarded, bf16, w);
        }

        if (mTiles > 2)
        {
            MTileKn<TOps, SkinnyTile8, SkinnyTile9, SkinnyTile10, SkinnyTile11>(ref ops, a, a8, s, vectors, m0 + 32 + g, k0, kEnd, guarded, bf16, w);
            MTileKn<TOps, SkinnyTile12, SkinnyTile13, SkinnyTile14, SkinnyTile15>(ref ops, a, a8, s, vectors, m0 + 48 + g, k0, kEnd, guarded, bf16, w);
        }
    }

    /// <summary>One m-tile (this lane's rows <paramref name="row"/> and +8) over one step: four activation vectors, then 16 mma.</summary>
    private static void MTileKn<TOps, T0, T1, T2, T3>(ref TOps ops, ArrayView<ushort> a, ArrayView<Half8> a8, TensorCoreShape s, bool vectors, int row, int k0,
        int kEnd, bool guarded, bool bf16, SkinnyWeights w)
        where TOps : struct, ISkinnyOps
        where T0 : struct, IKernelConstant
        where T1 : struct, IKernelConstant
        where T2 : struct, IKernelConstant
        where T3 : struct, IKernelConstant
    {
        long lo = Clamp(row, s.M) * s.K;
        long hi = Clamp(row + 8, s.M) * s.K;
        Half8 lo0, hi0, lo1, hi1;
        if (vectors)
        {
            bool valid0 = !guarded || k0 < kEnd;
            bool valid1 = !guarded || k0 + 32 < kEnd;
            lo0 = Fetch(a8, (lo + k0) >> 3, valid0);
            hi0 = Fetch(a8, (hi + k0) >> 3, valid0);
            lo1 = Fetch(a8, (lo + k0 + 32) >> 3, valid1);
            hi1 = Fetch(a8, (hi + k0 + 32) >> 3, valid1);
        }
        else
        {
            lo0 = Elements(a, lo, k0, kEnd);
            hi0 = Elements(a, hi, k0, kEnd);
            lo1 = Elements(a, lo, k0 + 32, kEnd);
            hi1 = Elements(a, hi, k0 + 32, kEnd);
        }

        Block<TOps, T0, T1, T2, T3>(ref ops, bf16, lo0, hi0, w.B00, w.B01, w.B02, w.B03);
        Block<TOps, T0, T1, T2, T3>(ref ops, bf16, lo1, hi1, w.B10, w.B11, w.B12, w.B13);
    }

    /// <summary>Elements k .. k+7 of one activation row, one at a time (any K, any alignment), zero at or past <paramref name="kEnd"/>.</summary>
    private static Half8 Elements(ArrayView<ushort> a, long row, int k, int kEnd) => new()
    {
        X = Element(a, row, k, kEnd) | (Element(a, row, k + 1, kEnd) << 16),
        Y = Element(a, row, k + 2, kEnd) | (Element(a, row, k + 3, kEnd) << 16),
        Z = Element(a, row, k + 4, kEnd) | (Element(a, row, k + 5, kEnd) << 16),
        W = Element(a, row, k + 6, kEnd) | (Element(a, row, k + 7, kEnd) << 16),
    };

    private static uint Element(ArrayView<ushort> a, long row, int k, int kEnd) => k < kEnd ? a[row + k] : 0u;

    /// <summary>Stores the four n-blocks of one m-tile: n-block q's C fragment is real columns 8t + q and 8t + 4 + q.</summary>
    private static void StoreMTileKn<TOps, T0, T1, T2, T3>(ref TOps ops, ArrayView<ushort> bias, ArrayView<ushort> c, ArrayView<float> partial, TensorCoreShape s,
        int split, int row0, int n0, int g, int t)
        where TOps : struct, ISkinnyOps
        where T0 : struct, IKernelConstant
        where T1 : struct, IKernelConstant
        where T2 : struct, IKernelConstant
        where T3 : struct, IKernelConstant
    {
        int col = n0 + (8 * t);
        StoreTileKn(bias, c, partial, s, split, row0 + g, col, ops.Read<T0>());
        StoreTileKn(bias, c, partial, s, split, row0 + g, col + 1, ops.Read<T1>());
        StoreTileKn(bias, c, partial, s, split, row0 + g, col + 2, ops.Read<T2>());
        StoreTileKn(bias, c, partial, s, split, row0 + g, col + 3, ops.Read<T3>());
    }

    /// <summary>C fragment of a [K, N] tile: accumulators 0, 2 (rows g, g+8) at <paramref name="col"/>, 1, 3 at <paramref name="col"/> + 4.</summary>
    private static void StoreTileKn(ArrayView<ushort> bias, ArrayView<ushort> c, ArrayView<float> partial, TensorCoreShape s, int split, int row, int col, SkinnyQuad quad)
    {
        Store(bias, c, partial, s, split, row, col, quad.C0);
        Store(bias, c, partial, s, split, row, col + 4, quad.C1);
        Store(bias, c, partial, s, split, row + 8, col, quad.C2);
        Store(bias, c, partial, s, split, row + 8, col + 4, quad.C3);
    }
}

/// <summary>One lane's eight 16-byte weight vectors of one <see cref="SkinnyTensorCoreKernels.WideKStep"/>: rows 8t .. 8t+7 of the step, columns 8g .. 8g+7 of each.</summary>
internal struct SkinnyKnRows
{
    public Half8 R0, R1, R2, R3, R4, R5, R6, R7;
}

/// <summary>
/// The copy plan of one lane's weight rows, computed once: a view that starts at the lane's 16-byte column vector of the
/// group's chunk's first row, and the 32-bit element offsets of rows 1 .. 7 from any row (so a load is one 32-bit add and one
/// wide multiply-add, not a 64-bit product of row and row length).
/// </summary>
internal struct SkinnyKnRowPlan
{
    public ArrayView<Half8> Lane;
    public int Row1, Row2, Row3, Row4, Row5, Row6, Row7;

    /// <summary>The plan of a lane starting at <paramref name="lane"/> whose rows lie <paramref name="rowVectors"/> vectors apart.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static SkinnyKnRowPlan Spaced(ArrayView<Half8> lane, int rowVectors) => new()
    {
        Lane = lane,
        Row1 = rowVectors,
        Row2 = 2 * rowVectors,
        Row3 = 3 * rowVectors,
        Row4 = 4 * rowVectors,
        Row5 = 5 * rowVectors,
        Row6 = 6 * rowVectors,
        Row7 = 7 * rowVectors,
    };
}

/// <summary>Where one lane of the wide [K, N] body reads its activations (see <see cref="SkinnyTensorCoreKernels.BodyKnWide{TOps, TCluster, TFormat, TStepsInFlight}"/>).</summary>
internal struct SkinnyKnActivations
{
    public ArrayView<ushort> Elements;
    public ArrayView<Half8> Row;
    public long RowStart;
    public bool Vectors;
    public int Lane;
}

/// <summary>
/// The [K, N] kernel with 16-byte weight loads and the weight as the A operand (<see cref="Gemm16SkinnyKnWide{TFormat, TStepsInFlight}"/>),
/// for up to 8 rows, N % 8 = 0 and b 16-byte aligned.
/// <para>
/// Roles swapped: the warp computes Cᵀ = Wᵀ·xᵀ, 16 weight columns (m) × 8 activation rows (n) per m16n8k16, so the 8 rows
/// fill n8 with nothing wasted (the [N, K] kernel's m16 is half empty at 8 rows). Each lane reads 8 columns of a weight
/// row (8g .. 8g+7 of its warp's 64) in one 16-byte load; m-tile j (0..3) gives A row g column 8g + 2j and A row g + 8
/// column 8g + 2j + 1, each register pairing one column of two K rows (prmt-like halves of word j). B is activation row g:
/// lane t's 16-byte vector of it is {b0, b1} of both k16 steps as loaded, with K renumbered as in the [N, K] kernel
/// (lane t's rows 8t .. 8t+7 of a 32-row step: k16 step 0 rows 0–3, step 1 rows 4–7). A step is 8 weight loads and
/// 8 mma per lane. C: lane (g, t) ends with columns 8g .. 8g+7 of activation rows 2t and 2t + 1.
/// </para>
/// <para>
/// A group is the four warps of one warp's 64 columns: they split the group's K chunk in whole steps and add their sums
/// through shared memory at the end (in warp order), so a column range needs a quarter of the split-K partials that
/// four 64-column warps of their own would.
/// </para>
/// <para>
/// Addresses follow a copy plan (<see cref="SkinnyKnRowPlan"/>): the lane's base view once, a running 32-bit offset per
/// step, constant row offsets; only the last, partial step tests rows against K.
/// </para>
/// </summary>
internal static partial class SkinnyTensorCoreKernels
{
    /// <summary>Rows of K per step of the wide [K, N] body (8 per lane).</summary>
    public const int WideKStep = 32;

    /// <summary>Most activation rows of the wide [K, N] body (the mma's n8).</summary>
    public const int WideMaxRows = 8;

    /// <summary>m-tiles (16 weight columns each) per warp of the wide [K, N] body.</summary>
    public const int WideMTiles = 4;

    /// <summary>Columns of C per warp of the wide [K, N] body.</summary>
    public const int WideWarpN = WideMTiles * 16;

    /// <summary>
    /// Columns of C per group of the wide [K, N] body: its warps share one warp's 64 columns and split the group's K chunk
    /// (summed through shared memory), so 64-column groups need no more split-K partials than the [N, K] kernel's.
    /// </summary>
    public const int WideBlockN = WideWarpN;

    /// <summary>Sums per lane of the wide [K, N] body: 2 activation rows × 8 columns.</summary>
    public const int WideLaneSums = 16;

    /// <summary>
    /// The wide [K, N] kernel through inline PTX (CUDA only): float16 or bfloat16, one or two steps of weight vectors in
    /// flight. <paramref name="a8"/> is read only under <see cref="KnVectorActivations"/> (may be empty otherwise).
    /// </summary>
    [IlgpuKernel]
    [IlgpuKernelVariant(typeof(Float16Storage), typeof(Const1))]
    [IlgpuKernelVariant(typeof(BFloat16Storage), typeof(Const1))]
    [IlgpuKernelVariant(typeof(Float16Storage), typeof(Const2))]
    [IlgpuKernelVariant(typeof(BFloat16Storage), typeof(Const2))]
    public static void Gemm16SkinnyKnWide<TFormat, TStepsInFlight>(ArrayView<ushort> a, ArrayView<Half8> a8, ArrayView<Half8> b8,
        ArrayView<ushort> bias, ArrayView<ushort> c, ArrayView<float> partial, ArrayView<int> tickets, TensorCoreShape s, int layout)
        where TFormat : struct, IStorage16, IKernelConstant
        where TStepsInFlight : struct, IKernelConstant
    {
        var ops = default(PtxSkinnyOps);
        var cluster = default(NoClusterReduce);
        BodyKnWide<PtxSkinnyOps, NoClusterReduce, TFormat, TStepsInFlight>(ref ops, ref cluster, a, a8, b8, bias, c, partial, tickets, s, layout);
    }

    /// <summary>The wide [K, N] body with mma.sync emulated lane by lane (see <see cref="Gemm16SkinnyEmulated{TMTiles, TFormat, TStepsInFlight}"/>).</summary>
    [IlgpuKernel(SimulatorOnly = true)]
    [IlgpuKernelVariant(typeof(Float16Storage), typeof(Const1))]
    [IlgpuKernelVariant(typeof(BFloat16Storage), typeof(Const2))]
    public static void Gemm16SkinnyKnWideEmulated<TFormat, TStepsInFlight>(ArrayView<ushort> a, ArrayView<Half8> a8, ArrayView<Half8> b8,
        ArrayView<ushort> bias, ArrayView<ushort> c, ArrayView<float> partial, ArrayView<int> tickets, ArrayView<float> scratch, TensorCoreShape s, int layout)
        where TFormat : struct, IStorage16, IKernelConstant
        where TStepsInFlight : struct, IKernelConstant
    {
        var ops = new EmulatedSkinnyOps { Scratch = scratch };
        var cluster = default(NoClusterReduce);
        BodyKnWide<EmulatedSkinnyOps, NoClusterReduce, TFormat, TStepsInFlight>(ref ops, ref cluster, a, a8, b8, bias, c, partial, tickets, s, layout);
    }

    /// <summary>
    /// The wide [K, N] kernel with its splits summed in a thread-block cluster (<see cref="ClusterReduction"/>): Grid.Y =
    /// <typeparamref name="TClusterSize"/> splits, one step of weight vectors in flight (the wide body's default), the
    /// group's tile (8 rows × 64 columns of float32) in <see cref="ClusterTileBytes"/> of dynamic shared memory.
    /// </summary>
    [IlgpuKernel]
    [IlgpuKernelVariant(typeof(Float16Storage), typeof(Const2))]
    [IlgpuKernelVariant(typeof(BFloat16Storage), typeof(Const2))]
    [IlgpuKernelVariant(typeof(Float16Storage), typeof(Const4))]
    [IlgpuKernelVariant(typeof(BFloat16Storage), typeof(Const4))]
    [IlgpuKernelVariant(typeof(Float16Storage), typeof(Const8))]
    [IlgpuKernelVariant(typeof(BFloat16Storage), typeof(Const8))]
    public static void Gemm16SkinnyKnWideCluster<TFormat, TClusterSize>(ArrayView<ushort> a, ArrayView<Half8> a8, ArrayView<Half8> b8,
        ArrayView<ushort> bias, ArrayView<ushort> c, TensorCoreShape s, int layout)
        where TFormat : struct, IStorage16, IKernelConstant
        where TClusterSize : struct, IKernelConstant
    {
        var ops = default(PtxSkinnyOps);
        var cluster = PtxClusterReduce<TClusterSize>.Begin();
        BodyKnWide<PtxSkinnyOps, PtxClusterReduce<TClusterSize>, TFormat, Const1>(ref ops, ref cluster, a, a8, b8, bias, c, default, default, s, layout);
    }

    /// <summary>
    /// The cluster form of the wide [K, N] body on ILGPU's CPU accelerator (<see cref="EmulatedClusterReduce"/>: the tile
    /// through <paramref name="partial"/> and one ticket per column group, the last group summing every rank's slice).
    /// </summary>
    [IlgpuKernel(SimulatorOnly = true)]
    [IlgpuKernelVariant(typeof(Float16Storage))]
    [IlgpuKernelVariant(typeof(BFloat16Storage))]
    public static void Gemm16SkinnyKnWideClusterEmulated<TFormat>(ArrayView<ushort> a, ArrayView<Half8> a8, ArrayView<Half8> b8,
        ArrayView<ushort> bias, ArrayView<ushort> c, ArrayView<float> partial, ArrayView<int> tickets, ArrayView<float> scratch, TensorCoreShape s, int layout)
        where TFormat : struct, IStorage16, IKernelConstant
    {
        var ops = new EmulatedSkinnyOps { Scratch = scratch };
        var cluster = new EmulatedClusterReduce { Partial = partial, Tickets = tickets, Ticket = Grid.IdxX, M = s.M, N = s.N, Splits = s.SplitK };
        BodyKnWide<EmulatedSkinnyOps, EmulatedClusterReduce, TFormat, Const1>(ref ops, ref cluster, a, a8, b8, bias, c, default, default, s, layout);
    }

    /// <summary>Dynamic shared bytes of <see cref="Gemm16SkinnyKnWideCluster{TFormat, TClusterSize}"/>: its group's tile of float32 sums.</summary>
    public const int ClusterTileBytes = WideMaxRows * WideBlockN * sizeof(float);

    /// <summary>
    /// The wide [K, N] kernel body shared by the PTX and emulated operations. With splits, the splits of a column group
    /// are summed in their cluster when <typeparamref name="TCluster"/> is enabled; else a non-empty
    /// <paramref name="tickets"/> (one per column group) makes the last split of each column group sum the partials into C.
    /// </summary>
    internal static void BodyKnWide<TOps, TCluster, TFormat, TStepsInFlight>(ref TOps ops, ref TCluster cluster, ArrayView<ushort> a, ArrayView<Half8> a8,
        ArrayView<Half8> b8, ArrayView<ushort> bias, ArrayView<ushort> c, ArrayView<float> partial, ArrayView<int> tickets, TensorCoreShape s, int layout)
        where TOps : struct, ISkinnyOps
        where TCluster : struct, IClusterReduce
        where TFormat : struct, IStorage16, IKernelConstant
        where TStepsInFlight : struct, IKernelConstant
    {
        bool bf16 = default(TFormat).Value != 0;
        int thread = Group.IdxX;

        // Four m-tiles of one n8 tile: the 16 accumulators the one-m-tile kernel declares.
        ops.Begin(1, thread);
        int lane = thread & 31;
        int g = lane >> 2;
        int t = lane & 3;
        int warp = thread >> 5;
        int n0 = Grid.IdxX * WideBlockN;
        int split = Grid.IdxY;

        var range = WideWarpRange.Of(s, split, warp);
        int chunkStart = range.ChunkStart;
        int kStart = range.Start;
        int kEnd = range.End;
        int rowVectors = s.N >> 3;

        // The lane's column vector, clamped into N (a clamped column's sums are never stored).
        int column = n0 + (8 * g) < s.N ? (n0 + (8 * g)) >> 3 : rowVectors - 1;
        var plan = SkinnyKnRowPlan.Spaced(b8.SubView(column + ((long)chunkStart * rowVectors)), rowVectors);
        int stepOffset = WideKStep * rowVectors;
        int offset = (kStart - chunkStart + (8 * t)) * rowVectors;

        // Activation row g, clamped into M (its sums are never stored).
        long rowStart = Clamp(g, s.M) * s.K;
        bool vectors = (layout & KnVectorActivations) != 0;
        var x = new SkinnyKnActivations
        {
            Elements = a,
            Row = vectors ? a8.SubView((rowStart + chunkStart) >> 3) : default,
            RowStart = rowStart,
            Vectors = vectors,
            Lane = t,
        };

        int kb = kStart;
        if (default(TStepsInFlight).Value > 1)
        {
            // Two buffers in turn (the loop body is two steps), so no step copies its rows into the other's registers.
            if (kb + WideKStep <= kEnd)
            {
                var even = LoadRowsKn(plan, offset, 0, 0, guarded: false);
                while (true)
                {
                    bool more = kb + (2 * WideKStep) <= kEnd;
                    offset += stepOffset;
                    var odd = more ? LoadRowsKn(plan, offset, 0, 0, guarded: false) : default;
                    StepKnWide(ref ops, bf16, x, even, kb - chunkStart, kb + (8 * t), kEnd, guarded: false);
                    kb += WideKStep;
                    if (!more)
                    {
                        break;
                    }

                    more = kb + (2 * WideKStep) <= kEnd;
                    offset += stepOffset;
                    even = more ? LoadRowsKn(plan, offset, 0, 0, guarded: false) : default;
                    StepKnWide(ref ops, bf16, x, odd, kb - chunkStart, kb + (8 * t), kEnd, guarded: false);
                    kb += WideKStep;
                    if (!more)
                    {
                        break;
                    }
                }
            }
        }
        else
        {
            for (; kb + WideKStep <= kEnd; kb += WideKStep, offset += stepOffset)
            {
                StepKnWide(ref ops, bf16, x, LoadRowsKn(plan, offset, 0, 0, guarded: false), kb - chunkStart, kb + (8 * t), kEnd, guarded: false);
            }
        }

        if (kb < kEnd)
        {
            int k0 = kb + (8 * t);
            StepKnWide(ref ops, bf16, x, LoadRowsKn(plan, offset, k0, kEnd, guarded: true), kb - chunkStart, k0, kEnd, guarded: true);
        }

        var sums = SharedMemory.Allocate<float>(WideLaneSums * Warps * 32);
        StoreWideGroupSums<TOps, TCluster, SkinnyTile0, SkinnyTile1, SkinnyTile2, SkinnyTile3>(ref ops, ref cluster, sums, bias, c, partial, tickets, s, split, warp, lane,
            n0, 0, WideMaxRows);
    }

    /// <summary>
    /// Adds the group's four warps' sums of one 8-row n tile (tiles <typeparamref name="T0"/> .. <typeparamref name="T3"/>,
    /// rows <paramref name="row0"/> .. +7) through <paramref name="sums"/> and stores them: a split's partials as 16-byte
    /// stores (N % 8 = 0), then, given <paramref name="tickets"/>, the in-place reduce of the column group's first
    /// <paramref name="tileRows"/> rows if this split is the last; or, with <typeparamref name="TCluster"/> enabled, the
    /// split's sums to its cluster and its slice of the column group's first <paramref name="tileRows"/> rows summed there;
    /// or C. The caller separates two uses of <paramref name="sums"/> by a barrier.
    /// </summary>
    private static void StoreWideGroupSums<TOps, TCluster, T0, T1, T2, T3>(ref TOps ops, ref TCluster cluster, ArrayView<float> sums, ArrayView<ushort> bias,
        ArrayView<ushort> c, ArrayView<float> partial, ArrayView<int> tickets, TensorCoreShape s, int split, int warp, int lane, int n0, int row0, int tileRows)
        where TOps : struct, ISkinnyOps
        where TCluster : struct, IClusterReduce
        where T0 : struct, IKernelConstant
        where T1 : struct, IKernelConstant
        where T2 : struct, IKernelConstant
        where T3 : struct, IKernelConstant
    {
        int g = lane >> 2;
        int t = lane & 3;

        // C: lane (g, t) holds columns 8g .. 8g+7 of activation rows 2t and 2t + 1; m-tile j's accumulators 0, 1 are
        // column 8g + 2j (rows 2t, 2t + 1), 2, 3 column 8g + 2j + 1. Sum v = 8r + c (row 2t + r, column 8g + c) goes to
        // shared slot (v · Warps + warp) · 32 + lane (consecutive lanes, consecutive banks).
        int slot = (warp * 32) + lane;
        PublishMTileKnWide(sums, slot, 0, ops.Read<T0>());
        PublishMTileKnWide(sums, slot, 2, ops.Read<T1>());
        PublishMTileKnWide(sums, slot, 4, ops.Read<T2>());
        PublishMTileKnWide(sums, slot, 6, ops.Read<T3>());
        Group.Barrier();

        // Thread (warp w, lane l) adds up the four warps' sums of lane l's row 2t + (w >> 1), columns 4 (w & 1) .. +3.
        int r = warp >> 1;
        int c0 = (warp & 1) * 4;
        float v0 = GroupSumKnWide(sums, (r * 8) + c0, lane);
        float v1 = GroupSumKnWide(sums, (r * 8) + c0 + 1, lane);
        float v2 = GroupSumKnWide(sums, (r * 8) + c0 + 2, lane);
        float v3 = GroupSumKnWide(sums, (r * 8) + c0 + 3, lane);
        int row = row0 + (2 * t) + r;
        int col = n0 + (8 * g) + c0;
        if (cluster.Enabled)
        {
            // Launched with Grid.Y = the cluster's splits (2 or more). Tile vector (row - row0) · 16 + column vector: every thread publishes, rows past M included (never summed).
            cluster.Publish((((row - row0) * WideBlockN) + (col - n0)) >> 2, row, col, new Float4 { X = v0, Y = v1, Z = v2, W = v3 });
            ClusterReduction.Finish16(ref cluster, bias, c, TensorCoreLaunch.ReduceShape(s), row0, tileRows, n0, WideBlockN, s.Bf16);
        }
        else if (s.SplitK > 1)
        {
            // A split's partials as one 16-byte store (N % 8 = 0: the 4 columns are all in N or all out).
            if (row < s.M && col < s.N)
            {
                partial.Cast<Half8>()[((((long)split * s.M) + row) * s.N + col) >> 2] = new Half8
                {
                    X = Interop.FloatAsInt(v0), Y = Interop.FloatAsInt(v1), Z = Interop.FloatAsInt(v2), W = Interop.FloatAsInt(v3),
                };
            }

            if (tickets.Length != 0)
            {
                SplitKReduction.FinishTile(tickets, Grid.IdxX, partial, bias, c, TensorCoreLaunch.ReduceShape(s), 0, tileRows, n0, WideBlockN, s.Bf16);
            }
        }
        else
        {
            Store(bias, c, partial, s, split, row, col, v0);
            Store(bias, c, partial, s, split, row, col + 1, v1);
            Store(bias, c, partial, s, split, row, col + 2, v2);
            Store(bias, c, partial, s, split, row, col + 3, v3);
        }
    }

    /// <summary>Publishes m-tile j's four sums (columns <paramref name="c"/> = 2j and 2j + 1 of rows 2t, 2t + 1) in this thread's shared slots.</summary>
    private static void PublishMTileKnWide(ArrayView<float> sums, int slot, int c, SkinnyQuad quad)
    {
        const int Stride = Warps * 32;
        sums[(c * Stride) + slot] = quad.C0;
        sums[((8 + c) * Stride) + slot] = quad.C1;
        sums[((c + 1) * Stride) + slot] = quad.C2;
        sums[((8 + c + 1) * Stride) + slot] = quad.C3;
    }

    /// <summary>Sum <paramref name="v"/> of lane <paramref name="lane"/> added over the group's warps (in warp order).</summary>
    private static float GroupSumKnWide(ArrayView<float> sums, int v, int lane)
    {
        int at = (v * Warps * 32) + lane;
        return sums[at] + sums[at + 32] + sums[at + 64] + sums[at + 96];
    }

    /// <summary>
    /// The lane's eight weight rows of one step at <paramref name="offset"/> (elements from the plan's view);
    /// <paramref name="guarded"/> (the last, partial step only) zeroes rows <paramref name="k0"/> + j at or past <paramref name="kEnd"/>.
    /// </summary>
    private static SkinnyKnRows LoadRowsKn(SkinnyKnRowPlan p, int offset, int k0, int kEnd, bool guarded) => new()
    {
        R0 = RowKn(p.Lane, offset, !guarded || k0 < kEnd),
        R1 = RowKn(p.Lane, offset + p.Row1, !guarded || k0 + 1 < kEnd),
        R2 = RowKn(p.Lane, offset + p.Row2, !guarded || k0 + 2 < kEnd),
        R3 = RowKn(p.Lane, offset + p.Row3, !guarded || k0 + 3 < kEnd),
        R4 = RowKn(p.Lane, offset + p.Row4, !guarded || k0 + 4 < kEnd),
        R5 = RowKn(p.Lane, offset + p.Row5, !guarded || k0 + 5 < kEnd),
        R6 = RowKn(p.Lane, offset + p.Row6, !guarded || k0 + 6 < kEnd),
        R7 = RowKn(p.Lane, offset + p.Row7, !guarded || k0 + 7 < kEnd),
    };

    private static Half8 RowKn(ArrayView<Half8> lane, int offset, bool valid) => valid ? lane[offset] : default;

    /// <summary>
    /// One <see cref="WideKStep"/>: the lane's activation vector (row g, elements <paramref name="k0"/> .. +7, step offset
    /// <paramref name="kOffset"/> from the chunk), then 4 m-tiles × 2 k16 steps of mma (step 0: weight rows 0–3 of the lane's
    /// eight with activation words X, Y; step 1: rows 4–7 with Z, W).
    /// </summary>
    private static void StepKnWide<TOps>(ref TOps ops, bool bf16, SkinnyKnActivations x, SkinnyKnRows r, int kOffset, int k0, int kEnd, bool guarded)
        where TOps : struct, ISkinnyOps
    {
        Half8 v;
        if (x.Vectors)
        {
            v = !guarded || k0 < kEnd ? x.Row[(kOffset >> 3) + x.Lane] : default;
        }
        else
        {
            v = Elements(x.Elements, x.RowStart, k0, kEnd);
        }

        MTileKnWide<TOps, SkinnyTile0>(ref ops, bf16, r.R0.X, r.R1.X, r.R2.X, r.R3.X, v.X, v.Y);
        MTileKnWide<TOps, SkinnyTile1>(ref ops, bf16, r.R0.Y, r.R1.Y, r.R2.Y, r.R3.Y, v.X, v.Y);
        MTileKnWide<TOps, SkinnyTile2>(ref ops, bf16, r.R0.Z, r.R1.Z, r.R2.Z, r.R3.Z, v.X, v.Y);
        MTileKnWide<TOps, SkinnyTile3>(ref ops, bf16, r.R0.W, r.R1.W, r.R2.W, r.R3.W, v.X, v.Y);
        MTileKnWide<TOps, SkinnyTile0>(ref ops, bf16, r.R4.X, r.R5.X, r.R6.X, r.R7.X, v.Z, v.W);
        MTileKnWide<TOps, SkinnyTile1>(ref ops, bf16, r.R4.Y, r.R5.Y, r.R6.Y, r.R7.Y, v.Z, v.W);
        MTileKnWide<TOps, SkinnyTile2>(ref ops, bf16, r.R4.Z, r.R5.Z, r.R6.Z, r.R7.Z, v.Z, v.W);
        MTileKnWide<TOps, SkinnyTile3>(ref ops, bf16, r.R4.W, r.R5.W, r.R6.W, r.R7.W, v.Z, v.W);
    }

    /// <summary>
    /// One k16 step of m-tile j: A rows g and g + 8 are the even and odd column of word j of the lane's four weight rows
    /// <paramref name="w0"/> .. <paramref name="w3"/> (a0, a1: rows 0, 1; a2, a3: rows 2, 3); B is the activation pair.
    /// </summary>
    private static void MTileKnWide<TOps, TTile>(ref TOps ops, bool bf16, uint w0, uint w1, uint w2, uint w3, uint b0, uint b1)
        where TOps : struct, ISkinnyOps
        where TTile : struct, IKernelConstant => ops.MmaPairedA<TTile>(bf16, w0, w1, w2, w3, b0, b1);
}
