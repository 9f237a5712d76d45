using ILGPU;
using ILGPU.Runtime;
using ILGPU.Runtime.Cuda;

namespace GemsInjector.Kernels.Ilgpu;

/// <summary>
/// The streamed [N, K] body with the weight through a per-warp ring of shared stages filled by cp.async
/// (<see cref="Gemm16SkinnyNkRing{TFormat, TRowTiles}"/>, <c>GEMS_SKINNY_NK_VARIANT=ring</c>).
/// <para>
/// Why: the body with two batches in flight (<see cref="Gemm16SkinnyNkAhead{TFormat, TRowTiles}"/>) holds its weight bytes
/// in flight in registers (162 per thread with two n8 tiles: 12 warps per SM at most) and spends 77% of its warp states
/// waiting on them (ncu, Run 133); the × 11008 products run at 88–91% of the fastest read of their weight (Run 213) and
/// are neither DRAM- nor L2-bound (Run 211). A cp.async copy holds no register while in flight, so each warp keeps
/// <see cref="NkRingStages"/> − 1 quads (12 KB) of its weight on the way at every moment, about 1.5 times the registers' bytes,
/// with fewer registers. The float32 [N, K] products gained 16% from the same change (the cp.async weight ring, Run 86).
/// </para>
/// <para>
/// Everything but where the weight vectors come from is the streamed body's: groups of W warps over 16 weight rows, warp
/// w's quads w, w + W, …, the same fragments and mma, the activations through L1, the sums met in warp order. A stage is
/// one quad of the 16 rows (16 vectors of 16 bytes each, 4 KB). Stage layout: row r's vector v at
/// 32 (r / 2) + 4 (r mod 2) + (v mod 4) + 8 (v / 4) — a reading lane (g, t) finds block b of its rows at a fixed offset
/// 8 b from its own base (the loads' immediates), and the 8 lanes of each quarter-warp (rows g and g + 1) cover all 32
/// banks; the copying lane l writes vector 32 i + l of its stage for i = 0..7, rows 2 i + (l / 4 mod 2), vectors
/// (l mod 4) + 4 (l / 8) of them, so each copy instruction is 2 × 256 contiguous bytes of global memory.
/// </para>
/// <para>
/// Edges: weight vectors at or past K are zero-filled (a source size of 0) and rows past N copy row N − 1, activation
/// vectors past K are zeroed and activation rows past M clamp to row M − 1 (sums of rows past N or M are never stored).
/// </para>
/// </summary>
internal static partial class SkinnyTensorCoreKernels
{
    /// <summary>Stages of each warp's ring: one multiplied while the other three are in flight.</summary>
    public const int NkRingStages = 4;

    /// <summary>Most warps per group of the ring body (the streamed plan's sizes 2 and 4; 64 KB of stages at 4).</summary>
    public const int NkRingMaxWarps = 4;

    /// <summary>16-byte vectors of one stage: one quad of each of the group's 16 weight rows.</summary>
    public const int NkRingStageVectors = NkStreamBlockN * QuadVectors;

    /// <summary>Dynamic shared memory of the ring body in 16-byte vectors for groups of <paramref name="warps"/> warps.</summary>
    public static int NkRingSharedVectors(int warps) => warps * NkRingStages * NkRingStageVectors;

    /// <summary>
    /// The ring [N, K] kernel through inline PTX (CUDA only): float16 or bfloat16, <typeparamref name="TRowTiles"/> n8 tiles of
    /// activation rows. <paramref name="bPointer"/> is b8[0]'s device address (the cp.async source); groups of 2 or 4 warps
    /// with <see cref="NkRingSharedVectors"/> vectors of dynamic shared memory.
    /// </summary>
    [IlgpuKernel]
    [IlgpuKernelVariant(typeof(Float16Storage), typeof(Const2))]
    [IlgpuKernelVariant(typeof(BFloat16Storage), typeof(Const2))]
    [IlgpuKernelVariant(typeof(Float16Storage), typeof(Const1))]
    [IlgpuKernelVariant(typeof(BFloat16Storage), typeof(Const1))]
    public static void Gemm16SkinnyNkRing<TFormat, TRowTiles>(ArrayView<Half8> a8, ArrayView<Half8> b8, ArrayView<ushort> bias, ArrayView<ushort> c,
        TensorCoreShape s, long bPointer)
        where TFormat : struct, IStorage16, IKernelConstant
        where TRowTiles : struct, IKernelConstant
    {
        // Four-warp groups take 64 KB of stages, past the 48 KB a launch gets without the kernel's opt-in.
        CudaAsm.Emit(Sm90aPtx.OptInSharedMarker);
        var ops = default(PtxSkinnyOps);
        BodyNkRing<PtxSkinnyOps, TFormat, TRowTiles>(ref ops, a8, b8, bias, c, s, bPointer);
    }

    /// <summary>The ring body with mma.sync emulated lane by lane and the copies made synchronously (the simulator's twin of <see cref="Gemm16SkinnyNkRing{TFormat, TRowTiles}"/>).</summary>
    [IlgpuKernel(SimulatorOnly = true)]
    [IlgpuKernelVariant(typeof(Float16Storage), typeof(Const1))]
    [IlgpuKernelVariant(typeof(BFloat16Storage), typeof(Const1))]
    [IlgpuKernelVariant(typeof(Float16Storage), typeof(Const2))]
    [IlgpuKernelVariant(typeof(BFloat16Storage), typeof(Const2))]
    public static void Gemm16SkinnyNkRingEmulated<TFormat, TRowTiles>(ArrayView<Half8> a8, ArrayView<Half8> b8, ArrayView<ushort> bias, ArrayView<ushort> c,
        ArrayView<float> scratch, TensorCoreShape s, long bPointer)
        where TFormat : struct, IStorage16, IKernelConstant
        where TRowTiles : struct, IKernelConstant
    {
        var ops = new EmulatedSkinnyOps { Scratch = scratch };
        BodyNkRing<EmulatedSkinnyOps, TFormat, TRowTiles>(ref ops, a8, b8, bias, c, s, bPointer);
    }

    /// <summary>The ring body shared by the PTX and emulated operations.</summary>
    internal static void BodyNkRing<TOps, TFormat, TRowTiles>(ref TOps ops, ArrayView<Half8> a8, ArrayView<Half8> b8, ArrayView<ushort> bias,
        ArrayView<ushort> c, TensorCoreShape s, long bPointer)
        where TOps : struct, ISkinnyOps
        where TFormat : struct, IStorage16, IKernelConstant
        where TRowTiles : struct, IKernelConstant
    {
        bool bf16 = default(TFormat).Value != 0;
        int rowTiles = default(TRowTiles).Value;
        int thread = Group.IdxX;
        ops.Begin(1, thread);

        // On CUDA the copies are always cp.async, so the PTX holds no synchronous copy path; the simulator copies at the same places.
        bool asyncCopy = CudaAsm.IsSupported;
        var shared = SharedMemory.GetDynamic<float>().Cast<Half8>().AsAligned(16);
        int lane = thread & 31;
        int warp = thread >> 5;
        int warps = Group.DimX >> 5;
        int g = lane >> 2;
        int t = lane & 3;
        int n0 = Grid.IdxX * NkStreamBlockN;
        int rowVectors = s.K >> 3;
        int ring = warp * NkRingStages * NkRingStageVectors;


        // This lane's copies: vector 32 i + lane of a stage is row 2 i + copyRow, vector copyVector of the quad. Rows past
        // N copy row N − 1 (their sums are never stored), so each copy's source is a fixed byte offset from the quad's.
        int copyRow = n0 + ((lane >> 2) & 1);
        int copyVector = (lane & 3) + ((lane >> 3) << 2);
        var rows = new NkRingRows
        {
            R0 = RowOffsetNkRing(copyRow, s.N, rowVectors, copyVector),
            R1 = RowOffsetNkRing(copyRow + 2, s.N, rowVectors, copyVector),
            R2 = RowOffsetNkRing(copyRow + 4, s.N, rowVectors, copyVector),
            R3 = RowOffsetNkRing(copyRow + 6, s.N, rowVectors, copyVector),
            R4 = RowOffsetNkRing(copyRow + 8, s.N, rowVectors, copyVector),
            R5 = RowOffsetNkRing(copyRow + 10, s.N, rowVectors, copyVector),
            R6 = RowOffsetNkRing(copyRow + 12, s.N, rowVectors, copyVector),
            R7 = RowOffsetNkRing(copyRow + 14, s.N, rowVectors, copyVector),
        };
        int copyAt = ring + lane;

        // This lane's reads: block b of weight row g at readAt + 8 b, of row g + 8 at readAt + 128 + 8 b.
        int readAt = ring + (32 * (g >> 1)) + (4 * (g & 1)) + t;
        var x0 = a8.SubView(Clamp(g, s.M) * rowVectors);
        var x1 = rowTiles > 1 ? a8.SubView(Clamp(g + 8, s.M) * rowVectors) : default;

        int quads = (rowVectors + QuadVectors - 1) / QuadVectors;
        int mine = warp < quads ? (quads - warp + warps - 1) / warps : 0;
        int step = warps * QuadVectors;

        // Prologue: the first S − 1 quads, one commit group each (empty past the warp's last quad, so that every
        // iteration's wait counts the same groups).
        int copyQuad = warp * QuadVectors;
        for (int first = 0; first < NkRingStages - 1; first++)
        {
            if (first < mine)
            {
                CopyQuadNkRing(shared, b8, bPointer, asyncCopy, copyAt + (first * NkRingStageVectors), copyQuad, copyVector, rowVectors, rows);
            }

            CommitNkRing(asyncCopy);
            copyQuad += step;
        }

        // The warp's quads inside K come first (its quads ascend); only the last quad of all may reach past K. Each
        // whole quad's activations are loaded one quad ahead, into two register sets in turn (the loop unrolled by two):
        // loaded in the quad they serve, their round trip through L2 set each quad's time (Run 215).
        int wholeQuads = rowVectors / QuadVectors;
        int mineWhole = warp < wholeQuads ? (wholeQuads - warp + warps - 1) / warps : 0;
        int readQuad = warp * QuadVectors;
        var even = mineWhole > 0 ? LoadActivationsNkRing(rowTiles, x0.SubView(readQuad + t), rowTiles > 1 ? x1.SubView(readQuad + t) : default) : default;
        int k = 0;
        while (k < mineWhole)
        {
            RefillNkRing(shared, b8, bPointer, asyncCopy, k, mine, copyAt, copyQuad, copyVector, rowVectors, rows);
            copyQuad += step;
            readQuad += step;
            var odd = k + 1 < mineWhole ? LoadActivationsNkRing(rowTiles, x0.SubView(readQuad + t), rowTiles > 1 ? x1.SubView(readQuad + t) : default) : default;
            MultiplyStageNkRing(ref ops, shared, asyncCopy, readAt + ((k & (NkRingStages - 1)) * NkRingStageVectors), bf16, rowTiles, even);
            k++;
            if (k >= mineWhole)
            {
                break;
            }

            RefillNkRing(shared, b8, bPointer, asyncCopy, k, mine, copyAt, copyQuad, copyVector, rowVectors, rows);
            copyQuad += step;
            readQuad += step;
            even = k + 1 < mineWhole ? LoadActivationsNkRing(rowTiles, x0.SubView(readQuad + t), rowTiles > 1 ? x1.SubView(readQuad + t) : default) : default;
            MultiplyStageNkRing(ref ops, shared, asyncCopy, readAt + ((k & (NkRingStages - 1)) * NkRingStageVectors), bf16, rowTiles, odd);
            k++;
        }

        if (k < mine)
        {
            RefillNkRing(shared, b8, bPointer, asyncCopy, k, mine, copyAt, copyQuad, copyVector, rowVectors, rows);
            var last = LoadLastActivationsNkRing(rowTiles, x0, x1, readQuad + t, rowVectors);
            MultiplyStageNkRing(ref ops, shared, asyncCopy, readAt + ((k & (NkRingStages - 1)) * NkRingStageVectors), bf16, rowTiles, last);
        }

        if (asyncCopy)
        {
            CudaAsm.Emit("cp.async.wait_all;");
        }

        // The warp's own stages hold its sums: no other warp reads or writes them any more.
        Warp.Barrier();
        StoreNkStreamGroupSums(ref ops, shared.Cast<float>(), NkRingStages * NkRingStageVectors * 4, bias, c, s, rowTiles, warp, warps, lane, thread, n0);
    }

    /// <summary>
    /// The start of quad <paramref name="k"/>'s turn: once every lane is done reading the stage quad k − 1 used, quad
    /// k + S − 1 (at vector <paramref name="copyQuad"/>) is copied into it, and a commit group closes (empty past the warp's
    /// <paramref name="mine"/> quads, so that every wait counts the same groups).
    /// </summary>
    private static void RefillNkRing(ArrayView<Half8> shared, ArrayView<Half8> b8, long bPointer, bool asyncCopy, int k, int mine, int copyAt, int copyQuad,
        int copyVector, int rowVectors, NkRingRows rows)
    {
        Warp.Barrier();
        if (k + NkRingStages - 1 < mine)
        {
            CopyQuadNkRing(shared, b8, bPointer, asyncCopy, copyAt + (((k + NkRingStages - 1) & (NkRingStages - 1)) * NkRingStageVectors), copyQuad,
                copyVector, rowVectors, rows);
        }

        CommitNkRing(asyncCopy);
    }

    /// <summary>
    /// Quad k's products: once its commit group has landed (at most S − 1 newer ones pending) and the warp has met (every
    /// lane's copies visible to all), the lane's weight vectors from the stage at <paramref name="readAt"/> into
    /// <paramref name="quad"/> beside its activations, then the mma.
    /// </summary>
    private static void MultiplyStageNkRing<TOps>(ref TOps ops, ArrayView<Half8> shared, bool asyncCopy, int readAt, bool bf16, int rowTiles, NkStreamQuad quad)
        where TOps : struct, ISkinnyOps
    {
        if (asyncCopy)
        {
            CudaAsm.Emit("cp.async.wait_group 3;");
        }

        Warp.Barrier();
        var stage = shared.SubView(readAt);
        quad.B0.Low = stage[0];
        quad.B0.High = stage[128];
        quad.B1.Low = stage[8];
        quad.B1.High = stage[136];
        quad.B2.Low = stage[16];
        quad.B2.High = stage[144];
        quad.B3.Low = stage[24];
        quad.B3.High = stage[152];
        MultiplyQuadNkStream(ref ops, bf16, rowTiles, quad);
    }

    /// <summary>Byte offset from b8[0] of vector <paramref name="copyVector"/> of weight row <paramref name="row"/> (row N − 1 past N).</summary>
    private static long RowOffsetNkRing(int row, int n, int rowVectors, int copyVector) => (((long)Clamp(row, n) * rowVectors) + copyVector) * 16;

    /// <summary>
    /// This lane's 8 copies of the quad at vector <paramref name="quadVector"/> of the group's 16 rows into the stage vectors
    /// <paramref name="at"/> + 32 i (row 2 i + the lane's copy row, vector the lane's copy vector of the quad); zeros past K.
    /// </summary>
    private static void CopyQuadNkRing(ArrayView<Half8> shared, ArrayView<Half8> b8, long bPointer, bool asyncCopy, int at, int quadVector, int copyVector,
        int rowVectors, NkRingRows rows)
    {
        // A lane's eight vectors share their place in the quad, so one test covers them; past K the copy reads the rows'
        // first vectors with a source size of 0, which zero-fills.
        bool valid = quadVector + copyVector < rowVectors;
        long quad = valid ? (long)quadVector * 16 : 0;
        if (asyncCopy)
        {
            // One asm block: the stages start the dynamic shared memory, whose symbol's address is taken inside (an Output
            // operand would go through local memory), and the eight copies are 512 bytes apart there (the immediates).
            long from = bPointer + quad;
            CudaAsm.Emit(
                "{\n\t.reg .u32 rd;\n\t.reg .u64 rs;\n\tmov.u32 rd, __dyn_shared_alloca;\n\tadd.u32 rd, rd, %0;\n\t"
                + "cvta.to.global.u64 rs, %1;\n\tcp.async.cg.shared.global [rd], [rs], 16, %9;\n\t"
                + "cvta.to.global.u64 rs, %2;\n\tcp.async.cg.shared.global [rd+512], [rs], 16, %9;\n\t"
                + "cvta.to.global.u64 rs, %3;\n\tcp.async.cg.shared.global [rd+1024], [rs], 16, %9;\n\t"
                + "cvta.to.global.u64 rs, %4;\n\tcp.async.cg.shared.global [rd+1536], [rs], 16, %9;\n\t"
                + "cvta.to.global.u64 rs, %5;\n\tcp.async.cg.shared.global [rd+2048], [rs], 16, %9;\n\t"
                + "cvta.to.global.u64 rs, %6;\n\tcp.async.cg.shared.global [rd+2560], [rs], 16, %9;\n\t"
                + "cvta.to.global.u64 rs, %7;\n\tcp.async.cg.shared.global [rd+3072], [rs], 16, %9;\n\t"
                + "cvta.to.global.u64 rs, %8;\n\tcp.async.cg.shared.global [rd+3584], [rs], 16, %9;\n\t}",
                (uint)(at * 16), from + rows.R0, from + rows.R1, from + rows.R2, from + rows.R3, from + rows.R4, from + rows.R5, from + rows.R6, from + rows.R7,
                valid ? 16u : 0u);
        }

        else
        {
            long first = quad / 16;
            shared[at] = valid ? b8[first + (rows.R0 / 16)] : default;
            shared[at + 32] = valid ? b8[first + (rows.R1 / 16)] : default;
            shared[at + 64] = valid ? b8[first + (rows.R2 / 16)] : default;
            shared[at + 96] = valid ? b8[first + (rows.R3 / 16)] : default;
            shared[at + 128] = valid ? b8[first + (rows.R4 / 16)] : default;
            shared[at + 160] = valid ? b8[first + (rows.R5 / 16)] : default;
            shared[at + 192] = valid ? b8[first + (rows.R6 / 16)] : default;
            shared[at + 224] = valid ? b8[first + (rows.R7 / 16)] : default;
        }
    }

    /// <summary>A whole quad's activation vectors 0, 4, 8, 12 of views at this lane's first vector (constant offsets); its weight vectors left zero.</summary>
    private static NkStreamQuad LoadActivationsNkRing(int rowTiles, ArrayView<Half8> x0, ArrayView<Half8> x1) => new()
    {
        B0 = new NkStreamBlock { X0 = x0[0], X1 = rowTiles > 1 ? x1[0] : default },
        B1 = new NkStreamBlock { X0 = x0[4], X1 = rowTiles > 1 ? x1[4] : default },
        B2 = new NkStreamBlock { X0 = x0[8], X1 = rowTiles > 1 ? x1[8] : default },
        B3 = new NkStreamBlock { X0 = x0[12], X1 = rowTiles > 1 ? x1[12] : default },
    };

    /// <summary>The last quad's activation vectors <paramref name="v"/>, +4, +8, +12, zeros at or past <paramref name="rowVectors"/>.</summary>
    private static NkStreamQuad LoadLastActivationsNkRing(int rowTiles, ArrayView<Half8> x0, ArrayView<Half8> x1, int v, int rowVectors) => new()
    {
        B0 = LoadActivationBlockNkRing(rowTiles, x0, x1, v, v < rowVectors),
        B1 = LoadActivationBlockNkRing(rowTiles, x0, x1, v + 4, v + 4 < rowVectors),
        B2 = LoadActivationBlockNkRing(rowTiles, x0, x1, v + 8, v + 8 < rowVectors),
        B3 = LoadActivationBlockNkRing(rowTiles, x0, x1, v + 12, v + 12 < rowVectors),
    };

    private static NkStreamBlock LoadActivationBlockNkRing(int rowTiles, ArrayView<Half8> x0, ArrayView<Half8> x1, int at, bool valid) => new()
    {
        X0 = valid ? x0[at] : default,
        X1 = rowTiles > 1 && valid ? x1[at] : default,
    };

    private static void CommitNkRing(bool asyncCopy)
    {
        if (asyncCopy)
        {
            CudaAsm.Emit("cp.async.commit_group;");
        }
    }
}

/// <summary>Byte offsets from b8[0] of a lane's eight copy sources in the ring body's quad 0 (rows 2 i + its copy row, its copy vector).</summary>
internal struct NkRingRows
{
    public long R0, R1, R2, R3, R4, R5, R6, R7;
}
