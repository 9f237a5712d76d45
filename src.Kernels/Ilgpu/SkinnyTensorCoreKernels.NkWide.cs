using ILGPU;

namespace GemsInjector.Kernels.Ilgpu;

/// <summary>
/// One warp's share of its group's split-K chunk in the wide bodies: the group's four warps split the chunk in whole
/// <see cref="SkinnyTensorCoreKernels.WideKStep"/> steps; a warp past the chunk's end gets an empty range (it adds zeros).
/// </summary>
internal struct WideWarpRange
{
    public int ChunkStart;
    public int Start;
    public int End;

    /// <summary>The range of warp <paramref name="warp"/> in split <paramref name="split"/>'s chunk.</summary>
    public static WideWarpRange Of(TensorCoreShape s, int split, int warp)
    {
        const int Warps = SkinnyTensorCoreKernels.Warps;
        const int WideKStep = SkinnyTensorCoreKernels.WideKStep;
        int chunkStart = split * s.KChunk;
        int chunkEnd = s.K - chunkStart < s.KChunk ? s.K : chunkStart + s.KChunk;
        int warpK = ((((chunkEnd - chunkStart) + (Warps * WideKStep) - 1) / (Warps * WideKStep)) * WideKStep);
        int start = chunkStart + (warp * warpK) < chunkEnd ? chunkStart + (warp * warpK) : chunkEnd;
        return new WideWarpRange
        {
            ChunkStart = chunkStart,
            Start = start,
            End = chunkEnd - start < warpK ? chunkEnd : start + warpK,
        };
    }
}

/// <summary>
/// The [N, K] kernel's wide body (<see cref="Gemm16SkinnyNkWide{TFormat, TRowTiles}"/>, <c>GEMS_SKINNY_NK_VARIANT=wide</c>):
/// the wide [K, N] body's roles and group shape for a weight stored [N, K], up to 16 rows, N % 8 = 0.
/// <para>
/// Roles swapped against <see cref="Gemm16Skinny{TMTiles, TFormat, TStepsInFlight}"/>: each mma computes Cᵀ = W·xᵀ, 16
/// weight rows (m16) × 8 activation rows (n8), so 2–8 rows fill n8 instead of leaving m16 half empty (there every mma
/// counts 16 rows, and rows g + 8 are reloaded clamped copies). An [N, K] weight row is already the A operand's layout:
/// lane (g, t) loads weight rows 8g .. 8g+7 of the warp's 64, each as its 16-byte vector t of a 32-element block (the K
/// renumbering of the class notes, shared with the activations), and m-tile j takes rows 8g + 2j (as A row g) and
/// 8g + 2j + 1 (as A row g + 8) as loaded: no pairing, no operand moves. So one weight vector per mma (the narrow body:
/// one per two mma), one activation vector per step for all four m-tiles (narrow: four), and the C fragment lands where
/// the wide [K, N] body's does, so both share its shared-memory warp sum and store.
/// </para>
/// <para>
/// A group is four warps over one warp's 64 columns splitting the group's K chunk (<see cref="WideWarpRange"/>), so a
/// column range needs half the split-K partials of the narrow body's 128-column groups at the same groups per SM.
/// 9–16 rows (two n8 row tiles) reuse each weight fragment for a second n8 tile (activation rows
/// g + 8, tiles 4–7).
/// </para>
/// </summary>
internal static partial class SkinnyTensorCoreKernels
{
    /// <summary>Most activation rows of the wide [N, K] body (two n8 tiles).</summary>
    public const int NkWideMaxRows = 2 * WideMaxRows;

    /// <summary>
    /// The wide [N, K] kernel through inline PTX (CUDA only): float16 or bfloat16, <typeparamref name="TRowTiles"/> n8 tiles
    /// of activation rows (1: up to 8 rows, 2: up to 16).
    /// </summary>
    [IlgpuKernel]
    [IlgpuKernelVariant(typeof(Float16Storage), typeof(Const1))]
    [IlgpuKernelVariant(typeof(BFloat16Storage), typeof(Const1))]
    [IlgpuKernelVariant(typeof(Float16Storage), typeof(Const2))]
    [IlgpuKernelVariant(typeof(BFloat16Storage), typeof(Const2))]
    public static void Gemm16SkinnyNkWide<TFormat, TRowTiles>(ArrayView<Half8> a8, ArrayView<Half8> b8, ArrayView<ushort> bias, ArrayView<ushort> c,
        ArrayView<float> partial, ArrayView<int> tickets, TensorCoreShape s)
        where TFormat : struct, IStorage16, IKernelConstant
        where TRowTiles : struct, IKernelConstant
    {
        var ops = default(PtxSkinnyOps);
        BodyNkWide<PtxSkinnyOps, TFormat, TRowTiles>(ref ops, a8, b8, bias, c, partial, tickets, s);
    }

    /// <summary>The wide [N, K] body with mma.sync emulated lane by lane (see <see cref="Gemm16SkinnyEmulated{TMTiles, TFormat, TStepsInFlight}"/>).</summary>
    [IlgpuKernel(SimulatorOnly = true)]
    [IlgpuKernelVariant(typeof(Float16Storage), typeof(Const1))]
    [IlgpuKernelVariant(typeof(BFloat16Storage), typeof(Const2))]
    public static void Gemm16SkinnyNkWideEmulated<TFormat, TRowTiles>(ArrayView<Half8> a8, ArrayView<Half8> b8, ArrayView<ushort> bias, ArrayView<ushort> c,
        ArrayView<float> partial, ArrayView<int> tickets, ArrayView<float> scratch, TensorCoreShape s)
        where TFormat : struct, IStorage16, IKernelConstant
        where TRowTiles : struct, IKernelConstant
    {
        var ops = new EmulatedSkinnyOps { Scratch = scratch };
        BodyNkWide<EmulatedSkinnyOps, TFormat, TRowTiles>(ref ops, a8, b8, bias, c, partial, tickets, s);
    }

    /// <summary>
    /// The wide [N, K] kernel body shared by the PTX and emulated operations. With splits, a non-empty
    /// <paramref name="tickets"/> (one per column group) makes the last split of each column group sum the partials into C.
    /// </summary>
    internal static void BodyNkWide<TOps, TFormat, TRowTiles>(ref TOps ops, ArrayView<Half8> a8, ArrayView<Half8> b8, ArrayView<ushort> bias, ArrayView<ushort> c,
        ArrayView<float> partial, ArrayView<int> tickets, TensorCoreShape s)
        where TOps : struct, ISkinnyOps
        where TFormat : struct, IStorage16, IKernelConstant
        where TRowTiles : struct, IKernelConstant
    {
        bool bf16 = default(TFormat).Value != 0;
        int rowTiles = default(TRowTiles).Value;
        int thread = Group.IdxX;
        int warp = thread >> 5;

        // Four m-tiles per n8 tile: the one-m-tile kernel's 16 accumulators per n8 tile.
        ops.Begin(rowTiles, thread);
        int lane = thread & 31;
        int g = lane >> 2;
        int t = lane & 3;
        int n0 = Grid.IdxX * WideBlockN;
        int split = Grid.IdxY;
        var range = WideWarpRange.Of(s, split, warp);
        int rowVectors = s.K >> 3;

        // The lane's eight weight rows, clamped into N as a whole (N % 8 = 0: all in or all out; out ones are never stored).
        int firstRow = n0 + (8 * g) < s.N ? n0 + (8 * g) : s.N - 8;
        long laneStart = ((long)firstRow * rowVectors) + (range.ChunkStart >> 3);
        var plan = SkinnyKnRowPlan.Spaced(b8.SubView(laneStart), rowVectors);

        // Activation rows g and g + 8 (the second n8 tile), clamped into M (their sums are never stored). The views start at
        // the chunk, the lane's vector t goes into the running offset (a view from it could pass the end of a short last row).
        long chunkVector = range.ChunkStart >> 3;
        var low = a8.SubView((Clamp(g, s.M) * rowVectors) + chunkVector);
        var high = rowTiles > 1 ? a8.SubView((Clamp(g + 8, s.M) * rowVectors) + chunkVector) : default;

        int offset = ((range.Start - range.ChunkStart) >> 3) + t;
        int kb = range.Start;
        for (; kb + WideKStep <= range.End; kb += WideKStep, offset += WideKStep / 8)
        {
            StepNkWide(ref ops, bf16, rowTiles, low, high, LoadRowsKn(plan, offset, 0, 0, guarded: false), offset, true);
        }

        if (kb < range.End)
        {
            // K % 8 = 0: a lane's vector (and so its eight weight vectors) is wholly in K or wholly past it.
            int k0 = kb + (8 * t);
            StepNkWide(ref ops, bf16, rowTiles, low, high, LoadRowsKn(plan, offset, k0, range.End, guarded: true), offset, k0 < range.End);
        }

        // With two row tiles the in-place reduce (tickets) waits for the second tile's partials.
        var sums = SharedMemory.Allocate<float>(WideLaneSums * Warps * 32);
        var noCluster = default(NoClusterReduce);
        StoreWideGroupSums<TOps, NoClusterReduce, SkinnyTile0, SkinnyTile1, SkinnyTile2, SkinnyTile3>(ref ops, ref noCluster, sums, bias, c, partial,
            rowTiles > 1 ? default : tickets, s, split, warp, lane, n0, 0, WideMaxRows);
        if (rowTiles > 1)
        {
            Group.Barrier();
            StoreWideGroupSums<TOps, NoClusterReduce, SkinnyTile4, SkinnyTile5, SkinnyTile6, SkinnyTile7>(ref ops, ref noCluster, sums, bias, c, partial, tickets, s,
                split, warp, lane, n0, WideMaxRows, NkWideMaxRows);
        }
    }

    /// <summary>
    /// One <see cref="WideKStep"/> of the wide [N, K] body: the lane's activation vector of each n8 tile (zero when not
    /// <paramref name="valid"/>), then per n8 tile 4 m-tiles × 2 k16 steps of mma on the lane's eight weight vectors.
    /// </summary>
    private static void StepNkWide<TOps>(ref TOps ops, bool bf16, int rowTiles, ArrayView<Half8> low, ArrayView<Half8> high, SkinnyKnRows r, int offset, bool valid)
        where TOps : struct, ISkinnyOps
    {
        MultiplyNkWide<TOps, SkinnyTile0, SkinnyTile1, SkinnyTile2, SkinnyTile3>(ref ops, bf16, r, valid ? low[offset] : default);
        if (rowTiles > 1)
        {
            MultiplyNkWide<TOps, SkinnyTile4, SkinnyTile5, SkinnyTile6, SkinnyTile7>(ref ops, bf16, r, valid ? high[offset] : default);
        }
    }

    /// <summary>
    /// One n8 tile over one step: m-tile j's A rows g and g + 8 are the lane's weight rows 2j and 2j + 1 (words X, Y for
    /// the first k16 step, Z, W for the second), B the activation vector's same words.
    /// </summary>
    private static void MultiplyNkWide<TOps, T0, T1, T2, T3>(ref TOps ops, bool bf16, SkinnyKnRows r, Half8 x)
        where TOps : struct, ISkinnyOps
        where T0 : struct, IKernelConstant
        where T1 : struct, IKernelConstant
        where T2 : struct, IKernelConstant
        where T3 : struct, IKernelConstant
    {
        ops.Mma<T0>(bf16, r.R0.X, r.R1.X, r.R0.Y, r.R1.Y, x.X, x.Y);
        ops.Mma<T1>(bf16, r.R2.X, r.R3.X, r.R2.Y, r.R3.Y, x.X, x.Y);
        ops.Mma<T2>(bf16, r.R4.X, r.R5.X, r.R4.Y, r.R5.Y, x.X, x.Y);
        ops.Mma<T3>(bf16, r.R6.X, r.R7.X, r.R6.Y, r.R7.Y, x.X, x.Y);
        ops.Mma<T0>(bf16, r.R0.Z, r.R1.Z, r.R0.W, r.R1.W, x.Z, x.W);
        ops.Mma<T1>(bf16, r.R2.Z, r.R3.Z, r.R2.W, r.R3.W, x.Z, x.W);
        ops.Mma<T2>(bf16, r.R4.Z, r.R5.Z, r.R4.W, r.R5.W, x.Z, x.W);
        ops.Mma<T3>(bf16, r.R6.Z, r.R7.Z, r.R6.W, r.R7.W, x.Z, x.W);
    }
}
