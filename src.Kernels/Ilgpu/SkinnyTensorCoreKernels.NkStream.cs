using ILGPU;

namespace GemsInjector.Kernels.Ilgpu;

/// <summary>
/// One 32-element block of the streamed [N, K] body for one lane: its vector t of weight rows g and g + 8 (the mma's A
/// rows) and of activation rows g and g + 8 (the B columns of the first and second n8 tile; the second unused with one tile).
/// </summary>
internal struct NkStreamBlock
{
    public Half8 Low;
    public Half8 High;
    public Half8 X0;
    public Half8 X1;
}

/// <summary>Four consecutive 32-element blocks of one lane (vectors v, v + 4, v + 8, v + 12 of its rows): the unit a batch is made of.</summary>
internal struct NkStreamQuad
{
    public NkStreamBlock B0, B1, B2, B3;
}

/// <summary>
/// The [N, K] kernel's streamed body (<see cref="Gemm16SkinnyNkStream{TFormat, TRowTiles}"/>, the default of Runs 70–132, and
/// with two batches in flight <see cref="Gemm16SkinnyNkAhead{TFormat, TRowTiles}"/>, the default since Run 133;
/// <c>GEMS_SKINNY_NK_VARIANT=stream</c>, <c>narrow</c> or <c>wide</c> picks the others): 1–16 rows, any N, no split-K and no second launch.
/// <para>
/// Why: the narrow and wide bodies split K over Grid.Y, so every warp-level 16-byte load touches 8 weight rows × 64
/// bytes and the next 64 bytes of those rows come one memory round trip later; across the grid that is requests of 64
/// bytes at every row × every split. The one-row GEMV asks for 512 contiguous bytes of one row per instruction and
/// reaches ~2320 GB/s on the same weight, the [N, K] mma bodies ~1800–1880. The hypothesis under test is DRAM
/// row-buffer locality: this body asks for long contiguous runs of few rows at a time.
/// </para>
/// <para>
/// Roles as in the wide [N, K] body: each mma.sync m16n8k16 is Cᵀ = W·xᵀ, A = 16 weight rows (lane (g, t): rows
/// n0 + g and n0 + g + 8), B = activation rows (lane's row g; a second n8 tile, rows g + 8, for 9–16 rows). K is
/// renumbered inside each 32-element block as in the class notes, identically for both operands, so one 16-byte vector
/// per row feeds two k16 steps.
/// </para>
/// <para>
/// A batch is <see cref="NkStreamBatchBlocks"/> blocks: lane t loads vectors t, t + 4, … of its rows, every load of the
/// batch issued before its first mma, so each weight row is asked for 32 · blocks · 2 contiguous bytes by a warp in one
/// burst (512 with one n8 tile; 256 with two, whose batch is halved to keep the loads at 64 registers: 8 blocks × 4
/// vectors would be 128). A group is W warps (W = Group.DimX / 32, 4 or 8 by the launch plan: read from the launch so it
/// cannot disagree with it, and a runtime value so one compiled kernel serves both) over the same 16 columns; warp w takes
/// batches w, w + W, … so the group's warps together read W consecutive batches of each of its 16 rows at a time. Their
/// sums meet in shared memory behind one barrier and are added in warp order (deterministic), and the group stores its
/// M × 16 outputs through the skinny kernels' epilogue (<see cref="Store"/>). Grid = ⌈N / 16⌉ groups.
/// </para>
/// <para>
/// Edges: weight rows past N read row N − 1 and activation rows past M row M − 1 (their sums are never stored); K % 8 = 0
/// (the dispatch's rule), and a last batch past K zeroes whole vectors at or past K in both operands (a stale weight
/// times a zero activation could be Inf · 0) and never reads past a row's end.
/// </para>
/// </summary>
internal static partial class SkinnyTensorCoreKernels
{
    /// <summary>Columns of C (weight rows) per group of the streamed [N, K] body: one m16.</summary>
    public const int NkStreamBlockN = 16;

    /// <summary>Most warps per group of the streamed [N, K] body.</summary>
    public const int NkStreamMaxWarps = 8;

    /// <summary>
    /// Most warps per group of the body with two batches in flight: with two tiles it needs more than 128 registers, so an
    /// 8-warp group would hold an SM alone (256 groups at N = 4096: two waves on 132 SMs).
    /// </summary>
    public const int NkAheadMaxWarps = 4;

    /// <summary>Most activation rows of the streamed [N, K] body (two n8 tiles).</summary>
    public const int NkStreamMaxRows = 16;

    /// <summary>Sums per lane of the streamed [N, K] body at most: 4 per n8 tile.</summary>
    private const int NkStreamLaneSums = 8;

    /// <summary>
    /// 32-element blocks per batch: 8 (512 bytes of each weight row per warp) with one n8 tile, 4 with two (the activation
    /// vectors double, so the batch halves to keep 64 registers of loads; see the class notes).
    /// </summary>
    public static int NkStreamBatchBlocks(int rowTiles) => rowTiles > 1 ? 4 : 8;

    /// <summary>
    /// The streamed [N, K] kernel through inline PTX (CUDA only): float16 or bfloat16, <typeparamref name="TRowTiles"/> n8
    /// tiles of activation rows (1: up to 8 rows, 2: up to 16). Launched with 2, 4 or 8 warps per group; <paramref name="partial"/>
    /// and <paramref name="tickets"/> are unused (no split-K), kept so its delegate matches the other [N, K] bodies'.
    /// Variants heaviest last: one tile (122 registers offline) after two (98).
    /// </summary>
    [IlgpuKernel]
    [IlgpuKernelVariant(typeof(Float16Storage), typeof(Const2))]
    [IlgpuKernelVariant(typeof(BFloat16Storage), typeof(Const2))]
    [IlgpuKernelVariant(typeof(Float16Storage), typeof(Const1))]
    [IlgpuKernelVariant(typeof(BFloat16Storage), typeof(Const1))]
    public static void Gemm16SkinnyNkStream<TFormat, TRowTiles>(ArrayView<Half8> a8, ArrayView<Half8> b8, ArrayView<ushort> bias, ArrayView<ushort> c,
        ArrayView<float> partial, ArrayView<int> tickets, TensorCoreShape s)
        where TFormat : struct, IStorage16, IKernelConstant
        where TRowTiles : struct, IKernelConstant
    {
        var ops = default(PtxSkinnyOps);
        BodyNkStream<PtxSkinnyOps, TFormat, TRowTiles, Const1>(ref ops, a8, b8, bias, c, s);
    }

    /// <summary>The streamed [N, K] body with mma.sync emulated lane by lane (see <see cref="Gemm16SkinnyEmulated{TMTiles, TFormat, TStepsInFlight}"/>; scratch per thread of the launched group size).</summary>
    [IlgpuKernel(SimulatorOnly = true)]
    [IlgpuKernelVariant(typeof(Float16Storage), typeof(Const1))]
    [IlgpuKernelVariant(typeof(BFloat16Storage), typeof(Const1))]
    [IlgpuKernelVariant(typeof(Float16Storage), typeof(Const2))]
    [IlgpuKernelVariant(typeof(BFloat16Storage), typeof(Const2))]
    public static void Gemm16SkinnyNkStreamEmulated<TFormat, TRowTiles>(ArrayView<Half8> a8, ArrayView<Half8> b8, ArrayView<ushort> bias, ArrayView<ushort> c,
        ArrayView<float> partial, ArrayView<int> tickets, ArrayView<float> scratch, TensorCoreShape s)
        where TFormat : struct, IStorage16, IKernelConstant
        where TRowTiles : struct, IKernelConstant
    {
        var ops = new EmulatedSkinnyOps { Scratch = scratch };
        BodyNkStream<EmulatedSkinnyOps, TFormat, TRowTiles, Const1>(ref ops, a8, b8, bias, c, s);
    }

    /// <summary>
    /// The streamed [N, K] body with two batches in flight per warp (the default; H200 Run 133: +2.1 to +2.9% at 12–16 ×
    /// 11008 × 4096, +0.1 to +1.5% at 8 × 4096² and 12–16 × 4096 × 11008 over one batch in flight): a batch is one
    /// quad of blocks (256 bytes of each weight row per warp) for either tile count, and the loads of a warp's next batch
    /// are issued before the mma of this one, so a warp is never without weight bytes in flight between batches. Twice the
    /// one-batch body's load registers with two tiles (128), the same with one; groups of 2 or 4 warps
    /// (<see cref="SkinnyTensorCoreLaunch.PlanNkStream"/>), since 8-warp groups of this size would fit one per SM.
    /// </summary>
    [IlgpuKernel]
    [IlgpuKernelVariant(typeof(Float16Storage), typeof(Const2))]
    [IlgpuKernelVariant(typeof(BFloat16Storage), typeof(Const2))]
    [IlgpuKernelVariant(typeof(Float16Storage), typeof(Const1))]
    [IlgpuKernelVariant(typeof(BFloat16Storage), typeof(Const1))]
    public static void Gemm16SkinnyNkAhead<TFormat, TRowTiles>(ArrayView<Half8> a8, ArrayView<Half8> b8, ArrayView<ushort> bias, ArrayView<ushort> c,
        ArrayView<float> partial, ArrayView<int> tickets, TensorCoreShape s)
        where TFormat : struct, IStorage16, IKernelConstant
        where TRowTiles : struct, IKernelConstant
    {
        var ops = default(PtxSkinnyOps);
        BodyNkStream<PtxSkinnyOps, TFormat, TRowTiles, Const2>(ref ops, a8, b8, bias, c, s);
    }

    /// <summary>The two-batches-in-flight body with mma.sync emulated lane by lane (the simulator's twin of <see cref="Gemm16SkinnyNkAhead{TFormat, TRowTiles}"/>).</summary>
    [IlgpuKernel(SimulatorOnly = true)]
    [IlgpuKernelVariant(typeof(Float16Storage), typeof(Const1))]
    [IlgpuKernelVariant(typeof(BFloat16Storage), typeof(Const1))]
    [IlgpuKernelVariant(typeof(Float16Storage), typeof(Const2))]
    [IlgpuKernelVariant(typeof(BFloat16Storage), typeof(Const2))]
    public static void Gemm16SkinnyNkAheadEmulated<TFormat, TRowTiles>(ArrayView<Half8> a8, ArrayView<Half8> b8, ArrayView<ushort> bias, ArrayView<ushort> c,
        ArrayView<float> partial, ArrayView<int> tickets, ArrayView<float> scratch, TensorCoreShape s)
        where TFormat : struct, IStorage16, IKernelConstant
        where TRowTiles : struct, IKernelConstant
    {
        var ops = new EmulatedSkinnyOps { Scratch = scratch };
        BodyNkStream<EmulatedSkinnyOps, TFormat, TRowTiles, Const2>(ref ops, a8, b8, bias, c, s);
    }

    /// <summary>The streamed [N, K] kernel body shared by the PTX and emulated operations, with 1 or 2 batches in flight per warp.</summary>
    internal static void BodyNkStream<TOps, TFormat, TRowTiles, TBatchesInFlight>(ref TOps ops, ArrayView<Half8> a8, ArrayView<Half8> b8, ArrayView<ushort> bias,
        ArrayView<ushort> c, TensorCoreShape s)
        where TOps : struct, ISkinnyOps
        where TFormat : struct, IStorage16, IKernelConstant
        where TRowTiles : struct, IKernelConstant
        where TBatchesInFlight : struct, IKernelConstant
    {
        bool bf16 = default(TFormat).Value != 0;
        int rowTiles = default(TRowTiles).Value;
        int thread = Group.IdxX;

        // Tiles 0 (activation rows 0–7) and 1 (rows 8–15) of the one-m-tile declaration.
        ops.Begin(1, thread);
        int lane = thread & 31;
        int warp = thread >> 5;
        int warps = Group.DimX >> 5;
        int g = lane >> 2;
        int t = lane & 3;
        int n0 = Grid.IdxX * NkStreamBlockN;
        int rowVectors = s.K >> 3;

        // Views from each row's start: a lane's vector is one 32-bit offset from them.
        var low = b8.SubView(Clamp(n0 + g, s.N) * rowVectors);
        var high = b8.SubView(Clamp(n0 + g + 8, s.N) * rowVectors);
        var x0 = a8.SubView(Clamp(g, s.M) * rowVectors);
        var x1 = rowTiles > 1 ? a8.SubView(Clamp(g + 8, s.M) * rowVectors) : default;

        if (default(TBatchesInFlight).Value > 1)
        {
            QuadsAhead(ref ops, bf16, rowTiles, low, high, x0, x1, warp * QuadVectors, warps * QuadVectors, t, rowVectors);
        }
        else
        {
            int batchVectors = NkStreamBatchBlocks(rowTiles) * 4;
            int stride = warps * batchVectors;
            int start = warp * batchVectors;
            for (; start + batchVectors <= rowVectors; start += stride)
            {
                BatchNkStream(ref ops, bf16, rowTiles, low, high, x0, x1, start + t, rowVectors, guarded: false);
            }

            if (start < rowVectors)
            {
                BatchNkStream(ref ops, bf16, rowTiles, low, high, x0, x1, start + t, rowVectors, guarded: true);
            }
        }

        StoreNkStreamGroupSums(ref ops, bias, c, s, rowTiles, warp, warps, lane, thread, n0);
    }

    /// <summary>
    /// One batch from the lane's vector <paramref name="v"/>: every load first (one quad of blocks with two n8 tiles, two with
    /// one), then the mma. <paramref name="guarded"/> (the last batch only) zeroes vectors at or past <paramref name="rowVectors"/>.
    /// <para>
    /// The warp barrier between them is a scheduling fence: without it ptxas (CUDA 11.8, offline, sm_90, <c>.maxntid 256</c>) moved the
    /// first block's mma up after 10 of the 24 loads (the one-tile batch; 6 of 16 with two tiles) and reused their registers
    /// for the rest, so every batch took two memory round trips and the row's bytes were asked for in two pieces. With it
    /// all loads issue back to back (122 / 96 registers instead of 94 / 80, no spills), at the cost of a WARPSYNC per batch.
    /// </para>
    /// </summary>
    private static void BatchNkStream<TOps>(ref TOps ops, bool bf16, int rowTiles, ArrayView<Half8> low, ArrayView<Half8> high, ArrayView<Half8> x0,
        ArrayView<Half8> x1, int v, int rowVectors, bool guarded)
        where TOps : struct, ISkinnyOps
    {
        // A whole batch lies inside its rows: views from the lane's vector make every load a constant offset (the load
        // instruction's immediate) instead of a 64-bit address product per load. The guarded batch may start past a short
        // row's end (lane t of K = 8), so it indexes from the rows' starts.
        int at = v;
        int limit = rowVectors;
        if (!guarded)
        {
            low = low.SubView(v);
            high = high.SubView(v);
            x0 = x0.SubView(v);
            x1 = rowTiles > 1 ? x1.SubView(v) : default;
            at = 0;
            limit = rowVectors - v;
        }

        var first = LoadQuadNkStream(rowTiles, low, high, x0, x1, at, limit, guarded);
        if (rowTiles > 1)
        {
            Warp.Barrier();
            MultiplyQuadNkStream(ref ops, bf16, rowTiles, first);
        }
        else
        {
            var second = LoadQuadNkStream(rowTiles, low, high, x0, x1, at + 16, limit, guarded);
            Warp.Barrier();
            MultiplyQuadNkStream(ref ops, bf16, rowTiles, first);
            MultiplyQuadNkStream(ref ops, bf16, rowTiles, second);
        }
    }

    /// <summary>16-byte vectors of each row that one quad of blocks covers (4 lanes × 4 vectors).</summary>
    private const int QuadVectors = 16;

    /// <summary>
    /// The two-batches-in-flight K loop: the warp's quads from vector <paramref name="start"/> every <paramref name="stride"/>
    /// vectors; each whole quad's loads are issued, then the warp barrier (the fence of <see cref="BatchNkStream"/>), then the
    /// previous quad's mma. The loop is unrolled by two so that the quads alternate between two register sets: a single set
    /// handed to the next iteration (current = ahead) compiled to 64 register moves per quad that waited for the loads just
    /// issued (H200 Run 132: no faster than one batch in flight). A last quad that reaches past K runs guarded on its own.
    /// </summary>
    private static void QuadsAhead<TOps>(ref TOps ops, bool bf16, int rowTiles, ArrayView<Half8> low, ArrayView<Half8> high, ArrayView<Half8> x0,
        ArrayView<Half8> x1, int start, int stride, int t, int rowVectors)
        where TOps : struct, ISkinnyOps
    {
        if (start + QuadVectors <= rowVectors)
        {
            var even = LoadWholeQuadNkStream(rowTiles, low, high, x0, x1, start + t, rowVectors);
            while (true)
            {
                start += stride;
                if (start + QuadVectors > rowVectors)
                {
                    Warp.Barrier();
                    MultiplyQuadNkStream(ref ops, bf16, rowTiles, even);
                    break;
                }

                var odd = LoadWholeQuadNkStream(rowTiles, low, high, x0, x1, start + t, rowVectors);
                Warp.Barrier();
                MultiplyQuadNkStream(ref ops, bf16, rowTiles, even);

                start += stride;
                if (start + QuadVectors > rowVectors)
                {
                    Warp.Barrier();
                    MultiplyQuadNkStream(ref ops, bf16, rowTiles, odd);
                    break;
                }

                even = LoadWholeQuadNkStream(rowTiles, low, high, x0, x1, start + t, rowVectors);
                Warp.Barrier();
                MultiplyQuadNkStream(ref ops, bf16, rowTiles, odd);
            }
        }

        if (start < rowVectors)
        {
            var last = LoadQuadNkStream(rowTiles, low, high, x0, x1, start + t, rowVectors, guarded: true);
            Warp.Barrier();
            MultiplyQuadNkStream(ref ops, bf16, rowTiles, last);
        }
    }

    /// <summary>A quad that lies inside its rows from the lane's vector <paramref name="v"/>: views from it, so each load is a constant offset.</summary>
    private static NkStreamQuad LoadWholeQuadNkStream(int rowTiles, ArrayView<Half8> low, ArrayView<Half8> high, ArrayView<Half8> x0, ArrayView<Half8> x1,
        int v, int rowVectors) =>
        LoadQuadNkStream(rowTiles, low.SubView(v), high.SubView(v), x0.SubView(v), rowTiles > 1 ? x1.SubView(v) : default, 0, rowVectors - v, guarded: false);

    /// <summary>Vectors <paramref name="at"/>, +4, +8, +12 of the four rows; <paramref name="guarded"/> zeroes those at or past <paramref name="limit"/>.</summary>
    private static NkStreamQuad LoadQuadNkStream(int rowTiles, ArrayView<Half8> low, ArrayView<Half8> high, ArrayView<Half8> x0, ArrayView<Half8> x1,
        int at, int limit, bool guarded) => new()
    {
        B0 = LoadBlockNkStream(rowTiles, low, high, x0, x1, at, !guarded || at < limit),
        B1 = LoadBlockNkStream(rowTiles, low, high, x0, x1, at + 4, !guarded || at + 4 < limit),
        B2 = LoadBlockNkStream(rowTiles, low, high, x0, x1, at + 8, !guarded || at + 8 < limit),
        B3 = LoadBlockNkStream(rowTiles, low, high, x0, x1, at + 12, !guarded || at + 12 < limit),
    };

    private static NkStreamBlock LoadBlockNkStream(int rowTiles, ArrayView<Half8> low, ArrayView<Half8> high, ArrayView<Half8> x0, ArrayView<Half8> x1, int v, bool valid) => new()
    {
        Low = valid ? low[v] : default,
        High = valid ? high[v] : default,
        X0 = valid ? x0[v] : default,
        X1 = rowTiles > 1 && valid ? x1[v] : default,
    };

    private static void MultiplyQuadNkStream<TOps>(ref TOps ops, bool bf16, int rowTiles, NkStreamQuad q)
        where TOps : struct, ISkinnyOps
    {
        MultiplyBlockNkStream(ref ops, bf16, rowTiles, q.B0);
        MultiplyBlockNkStream(ref ops, bf16, rowTiles, q.B1);
        MultiplyBlockNkStream(ref ops, bf16, rowTiles, q.B2);
        MultiplyBlockNkStream(ref ops, bf16, rowTiles, q.B3);
    }

    /// <summary>One block's two k16 steps per n8 tile: A rows g and g + 8 are the weight vectors' words X, Y (step 0) and Z, W (step 1), B the activation vector's same words.</summary>
    private static void MultiplyBlockNkStream<TOps>(ref TOps ops, bool bf16, int rowTiles, NkStreamBlock b)
        where TOps : struct, ISkinnyOps
    {
        ops.Mma<SkinnyTile0>(bf16, b.Low.X, b.High.X, b.Low.Y, b.High.Y, b.X0.X, b.X0.Y);
        ops.Mma<SkinnyTile0>(bf16, b.Low.Z, b.High.Z, b.Low.W, b.High.W, b.X0.Z, b.X0.W);
        if (rowTiles > 1)
        {
            ops.Mma<SkinnyTile1>(bf16, b.Low.X, b.High.X, b.Low.Y, b.High.Y, b.X1.X, b.X1.Y);
            ops.Mma<SkinnyTile1>(bf16, b.Low.Z, b.High.Z, b.Low.W, b.High.W, b.X1.Z, b.X1.W);
        }
    }

    /// <summary>
    /// Adds the group's warps' sums through shared memory (one barrier, warp order) and stores them. Lane (g, t)'s
    /// accumulator i of tile j is weight row g + 8 (i ≥ 2) of the group (column n0 + …) and activation row 8j + 2t + (i &amp; 1);
    /// sum v = 4j + i of a lane sits in shared slot (warp · 8 + v) · 32 + lane.
    /// </summary>
    private static void StoreNkStreamGroupSums<TOps>(ref TOps ops, ArrayView<ushort> bias, ArrayView<ushort> c, TensorCoreShape s, int rowTiles,
        int warp, int warps, int lane, int thread, int n0)
        where TOps : struct, ISkinnyOps
    {
        var sums = SharedMemory.Allocate<float>(NkStreamMaxWarps * NkStreamLaneSums * 32);
        int mine = warp * NkStreamLaneSums * 32;
        PublishQuadNkStream(sums, mine + lane, ops.Read<SkinnyTile0>());
        if (rowTiles > 1)
        {
            PublishQuadNkStream(sums, mine + (4 * 32) + lane, ops.Read<SkinnyTile1>());
        }

        Group.Barrier();
        int count = rowTiles * 4 * 32;
        for (int e = thread; e < count; e += Group.DimX)
        {
            float sum = 0f;
            for (int w = 0; w < warps; w++)
            {
                sum += sums[(w * NkStreamLaneSums * 32) + e];
            }

            int v = e >> 5;
            int l = e & 31;
            int row = (8 * (v >> 2)) + (2 * (l & 3)) + (v & 1);
            int col = n0 + (l >> 2) + ((v & 2) << 2);
            Store(bias, c, default, s, 0, row, col, sum);
        }
    }

    private static void PublishQuadNkStream(ArrayView<float> sums, int at, SkinnyQuad quad)
    {
        sums[at] = quad.C0;
        sums[at + 32] = quad.C1;
        sums[at + 64] = quad.C2;
        sums[at + 96] = quad.C3;
    }
}
