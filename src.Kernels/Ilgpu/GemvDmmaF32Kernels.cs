using System;
using System.Runtime.CompilerServices;
using ILGPU;
using ILGPU.Runtime;
using ILGPU.Runtime.Cuda;

namespace GemsInjector.Kernels.Ilgpu;

/// <summary>
/// float32 products of 1–16 rows (C[M, N] = alpha · A[M, K] · B + beta · bias) on the FP64 tensor cores: every float32 is
/// widened to float64 (exact), each product of two widened float32 is exact in float64, the sums are float64 (DMMA
/// <c>mma.sync.aligned.m16n8k8.row.col.f64.f64.f64.f64</c>, sm_90, PTX ISA 7.8), and the output is rounded once to
/// float32. Selected by <c>GEMS_GEMV_F32_DMMA=on</c> (<see cref="GemvDmmaLaunch"/>; notes: docs/perf/h100-notes-gemv.md,
/// "float32 1–16 rows on the FP64 tensor cores").
/// <para>
/// Fragments of m16n8k8 .f64 (PTX ISA, "Matrix Fragments for mma.m16n8k8", .f64 tables), lane L, g = L / 4, t = L mod 4:
/// A (16 × 8, row): a0 = (row g, k t), a1 = (g + 8, t), a2 = (g, t + 4), a3 = (g + 8, t + 4);
/// B (8 × 8, col): b0 = (k t, column g), b1 = (k t + 4, column g);
/// C / D (16 × 8): c0 = (g, 2t), c1 = (g, 2t + 1), c2 = (g + 8, 2t), c3 = (g + 8, 2t + 1).
/// </para>
/// <para>
/// The mapping used here. A warp's step covers 16 consecutive k (k0 .. k0 + 15) and 32 columns as 4 n-tiles of 8. Lane
/// (g, t) owns the 4 physical k = k0 + 4t .. k0 + 4t + 3: the step is two DMMA k8 halves h = 0, 1, and in half h the
/// logical k t and t + 4 are the physical k0 + 4t + 2h and k0 + 4t + 2h + 1 (a bijection of the 8 logical k onto 8 of the
/// 16 physical ones; the halves take the other 8). So the lane's A fragment of half h is components 2h, 2h + 1 of its two
/// 16-byte A vectors (rows g and g + 8 at k0 + 4t), and its B fragment of tile j is components 2h, 2h + 1 of a 4-vector
/// V_j of weights at those four k:
/// B [N, K] (mm_tb): V_j = W[n0 + 8j + g][k0 + 4t .. +3], one 16-byte load; tile j's column c is n0 + 8j + c.
/// B [K, N] (mm): the lane loads U_i = W[k0 + 4t + i][n0 + 4g .. +3] (i = 0..3, four 16-byte loads along N) and
/// V_j = (U_0[j], U_1[j], U_2[j], U_3[j]); tile j's column c is n0 + 4c + j.
/// Every weight load of a warp is 8 rows × 64 bytes ([N, K]) or 4 k-rows × 128 bytes ([K, N]): whole 32-byte sectors.
/// </para>
/// <para>
/// A group (4, 8 or 12 warps, <see cref="GemvDmmaLaunch"/>) owns 32 columns; its warps split K by pairs of adjacent
/// steps (warp w takes steps 2w, 2w + 1, then 2(w + warps), 2(w + warps) + 1, …, both steps' loads issued before their
/// DMMA: a warp reads whole 128-byte lines of an [N, K] row, and the group's warps one contiguous window of it), then
/// each warp writes its 16 accumulators per lane to shared memory and the group sums the warps in a fixed order
/// (deterministic), adds alpha / beta · bias in float64, and stores rows &lt; M, columns &lt; N. Lanes past M, N or K
/// read clamped in-range addresses: rows ≥ M of A hold row M − 1 (they feed only rows ≥ M of C, never stored), columns
/// past N are computed and dropped, and what a lane reads past K is zeroed by selects in the last passes only (the
/// others, wholly inside K, have no select).
/// </para>
/// </summary>
internal static class GemvDmmaF32Kernels
{
    /// <summary>Columns of C per group (4 n-tiles of 8).</summary>
    public const int Columns = 32;

    /// <summary>Most rows of A (one m16 tile).</summary>
    public const int MaxRows = 16;

    /// <summary>Accumulators (float64) per lane: 4 n-tiles × 4.</summary>
    public const int Accumulators = 16;

    /// <summary>float64 slots per warp in the shared reduction: 32 lanes × <see cref="Accumulators"/>.</summary>
    public const int WarpSlots = 32 * Accumulators;

    /// <summary>The PTX accumulator registers, declared and zeroed in the entry block.</summary>
    internal const string DeclareAccumulators = ".reg .f64 dm<16>;\n\tmov.f64 dm0, 0d0000000000000000;\n\tmov.f64 dm1, 0d0000000000000000;\n\tmov.f64 dm2, 0d0000000000000000;\n\tmov.f64 dm3, 0d0000000000000000;\n\tmov.f64 dm4, 0d0000000000000000;\n\tmov.f64 dm5, 0d0000000000000000;\n\tmov.f64 dm6, 0d0000000000000000;\n\tmov.f64 dm7, 0d0000000000000000;\n\tmov.f64 dm8, 0d0000000000000000;\n\tmov.f64 dm9, 0d0000000000000000;\n\tmov.f64 dm10, 0d0000000000000000;\n\tmov.f64 dm11, 0d0000000000000000;\n\tmov.f64 dm12, 0d0000000000000000;\n\tmov.f64 dm13, 0d0000000000000000;\n\tmov.f64 dm14, 0d0000000000000000;\n\tmov.f64 dm15, 0d0000000000000000;";

    /// <summary>DMMA into n-tile 0's accumulators; operands a0-a3, b0, b1.</summary>
    internal const string MmaTile0 = "mma.sync.aligned.m16n8k8.row.col.f64.f64.f64.f64 {dm0,dm1,dm2,dm3}, {%0,%1,%2,%3}, {%4,%5}, {dm0,dm1,dm2,dm3};";

    /// <summary>DMMA into n-tile 1's accumulators.</summary>
    internal const string MmaTile1 = "mma.sync.aligned.m16n8k8.row.col.f64.f64.f64.f64 {dm4,dm5,dm6,dm7}, {%0,%1,%2,%3}, {%4,%5}, {dm4,dm5,dm6,dm7};";

    /// <summary>DMMA into n-tile 2's accumulators.</summary>
    internal const string MmaTile2 = "mma.sync.aligned.m16n8k8.row.col.f64.f64.f64.f64 {dm8,dm9,dm10,dm11}, {%0,%1,%2,%3}, {%4,%5}, {dm8,dm9,dm10,dm11};";

    /// <summary>DMMA into n-tile 3's accumulators.</summary>
    internal const string MmaTile3 = "mma.sync.aligned.m16n8k8.row.col.f64.f64.f64.f64 {dm12,dm13,dm14,dm15}, {%0,%1,%2,%3}, {%4,%5}, {dm12,dm13,dm14,dm15};";

    /// <summary>The 16 accumulators to dynamic shared memory: accumulator r at byte %0 + 256 · r (slot r · 32 + lane of the warp's block).</summary>
    internal const string StoreAccumulators = "{\n\t.reg .u32 dsa;\n\tmov.u32 dsa, __dyn_shared_alloca;\n\tadd.u32 dsa, dsa, %0;\n\tst.shared.f64 [dsa+0], dm0;\n\tst.shared.f64 [dsa+256], dm1;\n\tst.shared.f64 [dsa+512], dm2;\n\tst.shared.f64 [dsa+768], dm3;\n\tst.shared.f64 [dsa+1024], dm4;\n\tst.shared.f64 [dsa+1280], dm5;\n\tst.shared.f64 [dsa+1536], dm6;\n\tst.shared.f64 [dsa+1792], dm7;\n\tst.shared.f64 [dsa+2048], dm8;\n\tst.shared.f64 [dsa+2304], dm9;\n\tst.shared.f64 [dsa+2560], dm10;\n\tst.shared.f64 [dsa+2816], dm11;\n\tst.shared.f64 [dsa+3072], dm12;\n\tst.shared.f64 [dsa+3328], dm13;\n\tst.shared.f64 [dsa+3584], dm14;\n\tst.shared.f64 [dsa+3840], dm15;\n\t}";

    /// <summary>The DMMA GEMV through inline PTX (CUDA, compute capability 9.0 only: loaded through <see cref="Sm90aPtx"/>).</summary>
    /// <typeparam name="TLayout"><see cref="GemvDmmaNk"/> for a weight stored [N, K], <see cref="GemvDmmaKn"/> for [K, N].</typeparam>
    [IlgpuKernel]
    [IlgpuKernelVariant(typeof(GemvDmmaKn))]
    [IlgpuKernelVariant(typeof(GemvDmmaNk))]
    public static void GemvDmmaF32<TLayout>(ArrayView<Float4> a, ArrayView<Float4> w, ArrayView<float> bias, ArrayView<float> c, GemvShape s)
        where TLayout : struct, IKernelConstant
    {
        var ops = default(PtxDmmaOps);
        Body<PtxDmmaOps, TLayout, Const1>(ref ops, a, w, bias, c, s);
    }

    /// <summary>
    /// The same body with the DMMA emulated lane by lane through warp shuffles (ILGPU's CPU accelerator, 32-lane warps),
    /// with the K ranges of <typeparamref name="TRanges"/> (the GPU's first form always has one), so that the other
    /// forms' multi-range plans have a bit-for-bit reference.
    /// </summary>
    /// <typeparam name="TLayout"><see cref="GemvDmmaNk"/> or <see cref="GemvDmmaKn"/>.</typeparam>
    /// <typeparam name="TRanges">Contiguous K ranges per group (<see cref="DmmaLane"/>).</typeparam>
    [IlgpuKernel(SimulatorOnly = true)]
    [IlgpuKernelVariant(typeof(GemvDmmaKn), typeof(Const1))]
    [IlgpuKernelVariant(typeof(GemvDmmaNk), typeof(Const1))]
    [IlgpuKernelVariant(typeof(GemvDmmaKn), typeof(Const2))]
    [IlgpuKernelVariant(typeof(GemvDmmaNk), typeof(Const2))]
    public static void GemvDmmaF32Emulated<TLayout, TRanges>(ArrayView<Float4> a, ArrayView<Float4> w, ArrayView<float> bias, ArrayView<float> c, GemvShape s)
        where TLayout : struct, IKernelConstant
        where TRanges : struct, IKernelConstant
    {
        var ops = default(EmulatedDmmaOps);
        Body<EmulatedDmmaOps, TLayout, TRanges>(ref ops, a, w, bias, c, s);
    }

    /// <summary>
    /// The <c>prefetch</c> form (<c>GEMS_GEMV_F32_DMMA=prefetch</c>): the same steps, halves and DMMA order per warp as
    /// <see cref="GemvDmmaF32{TLayout}"/> (so the same bits for the same warp count), software-pipelined in registers: a
    /// warp issues the loads of its next pass before the conversions and DMMA of this one, so one pass is always in flight.
    /// </summary>
    /// <typeparam name="TLayout"><see cref="GemvDmmaNk"/> or <see cref="GemvDmmaKn"/>.</typeparam>
    /// <typeparam name="TRanges">Contiguous K ranges per group: 1 for the 4-warp plan, 3 for the 12-warp one (<see cref="DmmaLane"/>).</typeparam>
    [IlgpuKernel]
    [IlgpuKernelVariant(typeof(GemvDmmaKn), typeof(Const1))]
    [IlgpuKernelVariant(typeof(GemvDmmaNk), typeof(Const1))]
    [IlgpuKernelVariant(typeof(GemvDmmaKn), typeof(Const3))]
    [IlgpuKernelVariant(typeof(GemvDmmaNk), typeof(Const3))]
    public static void GemvDmmaF32Prefetch<TLayout, TRanges>(ArrayView<Float4> a, ArrayView<Float4> w, ArrayView<float> bias, ArrayView<float> c, GemvShape s)
        where TLayout : struct, IKernelConstant
        where TRanges : struct, IKernelConstant
    {
        var ops = default(PtxDmmaOps);
        PrefetchBody<PtxDmmaOps, TLayout, TRanges>(ref ops, a, w, bias, c, s);
    }

    /// <summary>The <c>prefetch</c> body with the DMMA emulated (ILGPU's CPU accelerator, 32-lane warps).</summary>
    /// <typeparam name="TLayout"><see cref="GemvDmmaNk"/> or <see cref="GemvDmmaKn"/>.</typeparam>
    /// <typeparam name="TRanges">Contiguous K ranges per group (the simulator's 8-warp plan takes 2).</typeparam>
    [IlgpuKernel(SimulatorOnly = true)]
    [IlgpuKernelVariant(typeof(GemvDmmaKn), typeof(Const1))]
    [IlgpuKernelVariant(typeof(GemvDmmaNk), typeof(Const1))]
    [IlgpuKernelVariant(typeof(GemvDmmaKn), typeof(Const2))]
    [IlgpuKernelVariant(typeof(GemvDmmaNk), typeof(Const2))]
    public static void GemvDmmaF32PrefetchEmulated<TLayout, TRanges>(ArrayView<Float4> a, ArrayView<Float4> w, ArrayView<float> bias, ArrayView<float> c, GemvShape s)
        where TLayout : struct, IKernelConstant
        where TRanges : struct, IKernelConstant
    {
        var ops = default(EmulatedDmmaOps);
        PrefetchBody<EmulatedDmmaOps, TLayout, TRanges>(ref ops, a, w, bias, c, s);
    }

    /// <summary>
    /// The pipelined body: pass p of warp w covers steps 2q and 2q + 1, q = w + p · warps (as in <see cref="Body"/>).
    /// The loads of pass p + 1 are issued (when it exists) before pass p's conversions and DMMA: two register sets of
    /// 12 × 16 bytes per lane (the launch bounds of <see cref="GemvDmmaLaunch"/> leave room for them).
    /// </summary>
    internal static void PrefetchBody<TOps, TLayout, TRanges>(ref TOps ops, ArrayView<Float4> a, ArrayView<Float4> w, ArrayView<float> bias, ArrayView<float> c, GemvShape s)
        where TOps : struct, IDmmaOps
        where TLayout : struct, IKernelConstant
        where TRanges : struct, IKernelConstant
    {
        ops.Begin();
        bool nk = default(TLayout).Value != 0;
        var red = SharedMemory.GetDynamic<double>();
        var ln = DmmaLane.Of(s, nk, default(TRanges).Value);

        int step = ln.FirstStep;
        var cur = default(DmmaPass);
        if (step < ln.StepEnd)
        {
            cur = LoadPass(a, w, nk, ln, step);
        }

        while (step < ln.StepEnd)
        {
            int next = step + ln.Stride;
            var nxt = cur;
            if (next < ln.StepEnd)
            {
                nxt = LoadPass(a, w, nk, ln, next);
            }

            ComputePass(ref ops, nk, ln, step, cur.A, cur.W);

            cur = nxt;
            step = next;
        }

        ops.Store(red, (ln.Warp * WarpSlots) + ln.Lane);
        Group.Barrier();
        Reduce(red, bias, c, s, nk, ln.N0, ln.Thread, ln.Warps);
    }

    /// <summary>Stages of the <c>ring</c> form's per-warp weight ring (one pass, 8 × 16 bytes per lane, each).</summary>
    public const int RingStages = 3;

    /// <summary>Bytes of one ring stage of one warp: 8 weight vectors × 32 lanes × 16 bytes.</summary>
    public const int RingStageBytes = 8 * 32 * 16;

    /// <summary>
    /// The <c>ring</c> form (<c>GEMS_GEMV_F32_DMMA=ring</c>): the weight of each pass goes through a per-warp ring of
    /// <see cref="RingStages"/> stages in shared memory by cp.async (issued <see cref="RingStages"/> − 1 passes ahead),
    /// read back with 16-byte shared loads; A is prefetched one pass ahead in registers. Each lane reads back only the
    /// slots it copied itself, so its own <c>cp.async.wait_group</c> is the only synchronisation. Same steps, halves,
    /// DMMA order and sum over warps as <see cref="GemvDmmaF32{TLayout}"/>: the same bits for the same warp count.
    /// </summary>
    /// <typeparam name="TLayout"><see cref="GemvDmmaNk"/> or <see cref="GemvDmmaKn"/>.</typeparam>
    /// <typeparam name="TRanges">Contiguous K ranges per group: 1 for the 4-warp plan, 3 for the 12-warp one (<see cref="DmmaLane"/>).</typeparam>
    [IlgpuKernel]
    [IlgpuKernelVariant(typeof(GemvDmmaKn), typeof(Const1))]
    [IlgpuKernelVariant(typeof(GemvDmmaNk), typeof(Const1))]
    [IlgpuKernelVariant(typeof(GemvDmmaKn), typeof(Const3))]
    [IlgpuKernelVariant(typeof(GemvDmmaNk), typeof(Const3))]
    public static void GemvDmmaF32Ring<TLayout, TRanges>(ArrayView<Float4> a, ArrayView<Float4> w, ArrayView<float> bias, ArrayView<float> c, GemvShape s, long wPointer)
        where TLayout : struct, IKernelConstant
        where TRanges : struct, IKernelConstant
    {
        var ops = default(PtxDmmaOps);
        var ring = default(PtxDmmaRing);
        RingBody<PtxDmmaOps, PtxDmmaRing, TLayout, TRanges>(ref ops, ring, a, w, bias, c, s, wPointer);
    }

    /// <summary>The <c>ring</c> body with the DMMA emulated and plain copies for cp.async (ILGPU's CPU accelerator).</summary>
    /// <typeparam name="TLayout"><see cref="GemvDmmaNk"/> or <see cref="GemvDmmaKn"/>.</typeparam>
    /// <typeparam name="TRanges">Contiguous K ranges per group.</typeparam>
    [IlgpuKernel(SimulatorOnly = true)]
    [IlgpuKernelVariant(typeof(GemvDmmaKn), typeof(Const1))]
    [IlgpuKernelVariant(typeof(GemvDmmaNk), typeof(Const1))]
    [IlgpuKernelVariant(typeof(GemvDmmaKn), typeof(Const2))]
    [IlgpuKernelVariant(typeof(GemvDmmaNk), typeof(Const2))]
    public static void GemvDmmaF32RingEmulated<TLayout, TRanges>(ArrayView<Float4> a, ArrayView<Float4> w, ArrayView<float> bias, ArrayView<float> c, GemvShape s, long wPointer)
        where TLayout : struct, IKernelConstant
        where TRanges : struct, IKernelConstant
    {
        var ops = default(EmulatedDmmaOps);
        var ring = default(EmulatedDmmaRing);
        RingBody<EmulatedDmmaOps, EmulatedDmmaRing, TLayout, TRanges>(ref ops, ring, a, w, bias, c, s, wPointer);
    }

    /// <summary>
    /// The ring body. Shared memory: warp w's ring at byte w · <see cref="RingStages"/> · <see cref="RingStageBytes"/>; lane L's
    /// vector j of stage x at + (x · 8 + j) · 512 + 16 · L (consecutive lanes, consecutive 16 bytes). After the loop a barrier,
    /// then the accumulators over the rings (warp w's block at w · 4 KB), a barrier, the fixed-order sum.
    /// </summary>
    internal static void RingBody<TOps, TRing, TLayout, TRanges>(ref TOps ops, TRing ring, ArrayView<Float4> a, ArrayView<Float4> w, ArrayView<float> bias, ArrayView<float> c, GemvShape s, long wPointer)
        where TOps : struct, IDmmaOps
        where TRing : struct, IDmmaRing
        where TLayout : struct, IKernelConstant
        where TRanges : struct, IKernelConstant
    {
        ops.Begin();
        bool nk = default(TLayout).Value != 0;
        var red = SharedMemory.GetDynamic<double>();
        var shared4 = red.Cast<Float4>();
        var ln = DmmaLane.Of(s, nk, default(TRanges).Value);
        int ringByte = (ln.Warp * RingStages * RingStageBytes) + (16 * ln.Lane);
        int stride = ln.Stride;

        // Prologue: passes 0 .. stages − 2 into their stages, one commit group each (empty past the warp's passes).
        for (int x = 0; x < RingStages - 1; x++)
        {
            int st = ln.FirstStep + (x * stride);
            if (st < ln.StepEnd)
            {
                CopyPass(ring, shared4, w, wPointer, nk, ln, st, ringByte + (x * RingStageBytes));
            }

            ring.Commit();
        }

        int step = ln.FirstStep;
        var act = default(DmmaA);
        if (step < ln.StepEnd)
        {
            act = LoadA(a, ln, step);
        }

        int stage = 0;
        while (step < ln.StepEnd)
        {
            // The pass stages − 1 ahead into the stage read in the previous pass (its values already consumed).
            int ahead = step + ((RingStages - 1) * stride);
            int aheadStage = stage == 0 ? RingStages - 1 : stage - 1;
            if (ahead < ln.StepEnd)
            {
                CopyPass(ring, shared4, w, wPointer, nk, ln, ahead, ringByte + (aheadStage * RingStageBytes));
            }

            ring.Commit();

            // A of the next pass, one pass ahead in registers (Runs 117–119 tried more cover for it: no faster).
            int next = step + stride;
            var nextAct = act;
            if (next < ln.StepEnd)
            {
                nextAct = LoadA(a, ln, next);
            }

            // This pass's copies are complete once at most stages − 1 newer groups are pending.
            ring.WaitAllButNewest();
            int sb = (ringByte + (stage * RingStageBytes)) >> 4;
            var weights = new DmmaWeights(
                shared4[sb], shared4[sb + 32], shared4[sb + 64], shared4[sb + 96],
                shared4[sb + 128], shared4[sb + 160], shared4[sb + 192], shared4[sb + 224]);
            ComputePass(ref ops, nk, ln, step, act, weights);

            act = nextAct;
            stage = stage == RingStages - 1 ? 0 : stage + 1;
            step = next;
        }

        ring.WaitAll();
        Group.Barrier();
        ops.Store(red, (ln.Warp * WarpSlots) + ln.Lane);
        Group.Barrier();
        Reduce(red, bias, c, s, nk, ln.N0, ln.Thread, ln.Warps);
    }

    /// <summary>This lane's A vectors of one pass (steps <paramref name="step"/> and <paramref name="step"/> + 1), clamped into K.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static DmmaA LoadA(ArrayView<Float4> a, in DmmaLane ln, int step)
    {
        int at1 = ln.VectorAt(step);
        int at2 = ln.VectorAt(step + 1);
        return new DmmaA(a[ln.ALo + at1], a[ln.AHi + at1], a[ln.ALo + at2], a[ln.AHi + at2]);
    }

    /// <summary>The 8 weight vectors of one pass of this lane into its ring slots (cp.async on CUDA), clamped into K.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void CopyPass<TRing>(TRing ring, ArrayView<Float4> shared4, ArrayView<Float4> w, long wPointer, bool nk, in DmmaLane ln, int step, int sharedByte)
        where TRing : struct, IDmmaRing
    {
        int at1 = ln.VectorAt(step);
        int at2 = ln.VectorAt(step + 1);
        long w0 = ln.W0, w1 = ln.W1, w2 = ln.W2, w3 = ln.W3, nv = ln.Nv;
        if (nk)
        {
            ring.Copy(shared4, sharedByte, w, wPointer, w0 + at1);
            ring.Copy(shared4, sharedByte + 512, w, wPointer, w1 + at1);
            ring.Copy(shared4, sharedByte + 1024, w, wPointer, w2 + at1);
            ring.Copy(shared4, sharedByte + 1536, w, wPointer, w3 + at1);
            ring.Copy(shared4, sharedByte + 2048, w, wPointer, w0 + at2);
            ring.Copy(shared4, sharedByte + 2560, w, wPointer, w1 + at2);
            ring.Copy(shared4, sharedByte + 3072, w, wPointer, w2 + at2);
            ring.Copy(shared4, sharedByte + 3584, w, wPointer, w3 + at2);
        }
        else
        {
            long r1 = (at1 * ln.KStride) + ln.Column;
            long r2 = (at2 * ln.KStride) + ln.Column;
            ring.Copy(shared4, sharedByte, w, wPointer, r1);
            ring.Copy(shared4, sharedByte + 512, w, wPointer, r1 + nv);
            ring.Copy(shared4, sharedByte + 1024, w, wPointer, r1 + (2 * nv));
            ring.Copy(shared4, sharedByte + 1536, w, wPointer, r1 + (3 * nv));
            ring.Copy(shared4, sharedByte + 2048, w, wPointer, r2);
            ring.Copy(shared4, sharedByte + 2560, w, wPointer, r2 + nv);
            ring.Copy(shared4, sharedByte + 3072, w, wPointer, r2 + (2 * nv));
            ring.Copy(shared4, sharedByte + 3584, w, wPointer, r2 + (3 * nv));
        }
    }

    /// <summary>The loads of one pass (steps <paramref name="step"/> and <paramref name="step"/> + 1), clamped into K.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static DmmaPass LoadPass(ArrayView<Float4> a, ArrayView<Float4> w, bool nk, in DmmaLane ln, int step)
    {
        int at1 = ln.VectorAt(step);
        int at2 = ln.VectorAt(step + 1);
        var act = new DmmaA(a[ln.ALo + at1], a[ln.AHi + at1], a[ln.ALo + at2], a[ln.AHi + at2]);
        if (nk)
        {
            long w0 = ln.W0, w1 = ln.W1, w2 = ln.W2, w3 = ln.W3;
            return new DmmaPass(act, new DmmaWeights(w[w0 + at1], w[w1 + at1], w[w2 + at1], w[w3 + at1], w[w0 + at2], w[w1 + at2], w[w2 + at2], w[w3 + at2]));
        }

        long r1 = (at1 * ln.KStride) + ln.Column;
        long r2 = (at2 * ln.KStride) + ln.Column;
        long nv = ln.Nv;
        return new DmmaPass(act, new DmmaWeights(w[r1], w[r1 + nv], w[r1 + (2 * nv)], w[r1 + (3 * nv)], w[r2], w[r2 + nv], w[r2 + (2 * nv)], w[r2 + (3 * nv)]));
    }

    /// <summary>The fixed-order sum of the warps' accumulators, alpha / beta · bias in float64, the float32 stores.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Reduce(ArrayView<double> red, ArrayView<float> bias, ArrayView<float> c, GemvShape s, bool nk, int n0, int thread, int warps)
    {
        // Slot x of a warp's block: accumulator r = x / 32 (tile r / 4, register r mod 4) of lane x mod 32.
        for (int x = thread; x < WarpSlots; x += Group.DimX)
        {
            double sum = red[x];
            for (int other = 1; other < warps; other++)
            {
                sum += red[(other * WarpSlots) + x];
            }

            int owner = x & 31;
            int r = x >> 5;
            int tile = r >> 2;
            int row = (owner >> 2) + ((r & 2) * 4);
            int inTile = ((owner & 3) * 2) + (r & 1);
            int col = nk ? n0 + (8 * tile) + inTile : n0 + (4 * inTile) + tile;
            if (row < s.M && col < s.N)
            {
                double v = s.Alpha * sum;
                if (s.HasBias != 0 && s.Beta != 0f)
                {
                    v += (double)s.Beta * bias[((long)row * s.BiasStrideM) + col];
                }

                c[((long)row * s.N) + col] = (float)v;
            }
        }
    }

    /// <summary>The kernel body shared by the PTX and emulated operations.</summary>
    internal static void Body<TOps, TLayout, TRanges>(ref TOps ops, ArrayView<Float4> a, ArrayView<Float4> w, ArrayView<float> bias, ArrayView<float> c, GemvShape s)
        where TOps : struct, IDmmaOps
        where TLayout : struct, IKernelConstant
        where TRanges : struct, IKernelConstant
    {
        ops.Begin();
        bool nk = default(TLayout).Value != 0;
        var red = SharedMemory.GetDynamic<double>();
        var ln = DmmaLane.Of(s, nk, default(TRanges).Value);

        for (int step = ln.FirstStep; step < ln.StepEnd; step += ln.Stride)
        {
            // Both steps' loads first (12 × 16 bytes per lane in flight), then their 16 DMMA.
            var p = LoadPass(a, w, nk, ln, step);
            ComputePass(ref ops, nk, ln, step, p.A, p.W);
        }

        ops.Store(red, (ln.Warp * WarpSlots) + ln.Lane);
        Group.Barrier();
        Reduce(red, bias, c, s, nk, ln.N0, ln.Thread, ln.Warps);
    }

    /// <summary>The 16 DMMA of one pass (steps <paramref name="step"/> and <paramref name="step"/> + 1) from its A and weight vectors.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void ComputePass<TOps>(ref TOps ops, bool nk, in DmmaLane ln, int step, in DmmaA act, in DmmaWeights wt)
        where TOps : struct, IDmmaOps
    {
        int second = step + 1;

        // Warp-uniform: both steps inside K for every lane (all passes but the last ones), then no selects at all.
        if ((second * 4) + 4 <= ln.Kv)
        {
            Step(ref ops, nk, act.Lo1, act.Hi1, true, wt.P0, wt.P1, wt.P2, wt.P3);
            Step(ref ops, nk, act.Lo2, act.Hi2, true, wt.Q0, wt.Q1, wt.Q2, wt.Q3);
        }
        else
        {
            bool valid1 = (step * 4) + ln.T < ln.Kv;
            bool valid2 = (second * 4) + ln.T < ln.Kv;
            Step(ref ops, nk, valid1 ? act.Lo1 : default, valid1 ? act.Hi1 : default, valid1, wt.P0, wt.P1, wt.P2, wt.P3);
            Step(ref ops, nk, valid2 ? act.Lo2 : default, valid2 ? act.Hi2 : default, valid2, wt.Q0, wt.Q1, wt.Q2, wt.Q3);
        }
    }

    /// <summary>
    /// One k16 step: the lane's A vectors (rows g, g + 8; zero past M or K) and weight vectors (as loaded: [N, K] tile rows,
    /// or [K, N] k-rows to transpose), zeroed past K, into two DMMA halves of four n-tiles each.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Step<TOps>(ref TOps ops, bool nk, Float4 lo, Float4 hi, bool valid, Float4 p0, Float4 p1, Float4 p2, Float4 p3)
        where TOps : struct, IDmmaOps
    {
        Float4 v0, v1, v2, v3;
        if (nk)
        {
            v0 = p0;
            v1 = p1;
            v2 = p2;
            v3 = p3;
        }
        else
        {
            v0 = new Float4 { X = p0.X, Y = p1.X, Z = p2.X, W = p3.X };
            v1 = new Float4 { X = p0.Y, Y = p1.Y, Z = p2.Y, W = p3.Y };
            v2 = new Float4 { X = p0.Z, Y = p1.Z, Z = p2.Z, W = p3.Z };
            v3 = new Float4 { X = p0.W, Y = p1.W, Z = p2.W, W = p3.W };
        }

        // Past K the weights read (clamped addresses) are zeroed: selects, no branch before the DMMA.
        v0 = valid ? v0 : default;
        v1 = valid ? v1 : default;
        v2 = valid ? v2 : default;
        v3 = valid ? v3 : default;

        // Half 0: physical k 4t, 4t + 1 as logical t, t + 4.
        double a0 = lo.X, a1 = hi.X, a2 = lo.Y, a3 = hi.Y;
        ops.Mma<GemvDmmaTile0>(a0, a1, a2, a3, v0.X, v0.Y);
        ops.Mma<GemvDmmaTile1>(a0, a1, a2, a3, v1.X, v1.Y);
        ops.Mma<GemvDmmaTile2>(a0, a1, a2, a3, v2.X, v2.Y);
        ops.Mma<GemvDmmaTile3>(a0, a1, a2, a3, v3.X, v3.Y);

        // Half 1: physical k 4t + 2, 4t + 3.
        a0 = lo.Z;
        a1 = hi.Z;
        a2 = lo.W;
        a3 = hi.W;
        ops.Mma<GemvDmmaTile0>(a0, a1, a2, a3, v0.Z, v0.W);
        ops.Mma<GemvDmmaTile1>(a0, a1, a2, a3, v1.Z, v1.W);
        ops.Mma<GemvDmmaTile2>(a0, a1, a2, a3, v2.Z, v2.W);
        ops.Mma<GemvDmmaTile3>(a0, a1, a2, a3, v3.Z, v3.W);
    }
}

/// <summary>The warp operations of <see cref="GemvDmmaF32Kernels"/>: accumulators, one m16n8k8 f64 DMMA, the store to shared memory.</summary>
internal interface IDmmaOps
{
    /// <summary>Zeroes the lane's 16 accumulators (first statement of the kernel).</summary>
    void Begin();

    /// <summary>D = A · B + D for n-tile <typeparamref name="TTile"/> (0–3) from this lane's fragment registers.</summary>
    void Mma<TTile>(double a0, double a1, double a2, double a3, double b0, double b1)
        where TTile : struct, IKernelConstant;

    /// <summary>Writes accumulator r (= 4 · tile + register) to <paramref name="shared"/>[<paramref name="slot"/> + 32 · r].</summary>
    void Store(ArrayView<double> shared, int slot);
}

/// <summary>The DMMA operations as inline PTX (sm_90): accumulators in PTX registers, fragments by value.</summary>
internal struct PtxDmmaOps : IDmmaOps
{
    public readonly void Begin() => CudaAsm.Emit(GemvDmmaF32Kernels.DeclareAccumulators);

    public readonly void Mma<TTile>(double a0, double a1, double a2, double a3, double b0, double b1)
        where TTile : struct, IKernelConstant
    {
        // By-value operands: ILGPU binds them to .f64 registers.
        switch (default(TTile).Value)
        {
            case 0:
                CudaAsm.Emit(GemvDmmaF32Kernels.MmaTile0, a0, a1, a2, a3, b0, b1);
                break;
            case 1:
                CudaAsm.Emit(GemvDmmaF32Kernels.MmaTile1, a0, a1, a2, a3, b0, b1);
                break;
            case 2:
                CudaAsm.Emit(GemvDmmaF32Kernels.MmaTile2, a0, a1, a2, a3, b0, b1);
                break;
            default:
                CudaAsm.Emit(GemvDmmaF32Kernels.MmaTile3, a0, a1, a2, a3, b0, b1);
                break;
        }
    }

    // The base address inside the asm (an Output<uint> would round-trip through a local slot).
    public readonly void Store(ArrayView<double> shared, int slot) => CudaAsm.Emit(GemvDmmaF32Kernels.StoreAccumulators, (uint)slot * 8);
}

/// <summary>
/// m16n8k8 f64 emulated from the PTX ISA's fragment tables (see <see cref="GemvDmmaF32Kernels"/>): for each logical k,
/// every lane fetches through warp shuffles the A elements of its two rows (lane 4 · (row mod 8) + k mod 4, register a0 /
/// a1 for k &lt; 4, a2 / a3 above) and the B elements of its two columns (lane 4 · column + k mod 4, b0 for k &lt; 4, b1
/// above) and adds the exact products in float64. Every lane runs it, as every lane runs the DMMA on the GPU.
/// </summary>
internal struct EmulatedDmmaOps : IDmmaOps
{
    private double d0, d1, d2, d3, d4, d5, d6, d7, d8, d9, d10, d11, d12, d13, d14, d15;

    public void Begin()
    {
        d0 = d1 = d2 = d3 = d4 = d5 = d6 = d7 = 0;
        d8 = d9 = d10 = d11 = d12 = d13 = d14 = d15 = 0;
    }

    public void Mma<TTile>(double a0, double a1, double a2, double a3, double b0, double b1)
        where TTile : struct, IKernelConstant
    {
        int lane = Group.IdxX & 31;
        int g = lane >> 2;
        int t = lane & 3;
        double c0 = 0, c1 = 0, c2 = 0, c3 = 0;
        for (int k = 0; k < 8; k++)
        {
            int holder = k & 3;
            bool high = k >= 4;
            double rowLo = Warp.Shuffle(high ? a2 : a0, (4 * g) + holder);
            double rowHi = Warp.Shuffle(high ? a3 : a1, (4 * g) + holder);
            double col0 = Warp.Shuffle(high ? b1 : b0, (4 * (2 * t)) + holder);
            double col1 = Warp.Shuffle(high ? b1 : b0, (4 * ((2 * t) + 1)) + holder);
            c0 += rowLo * col0;
            c1 += rowLo * col1;
            c2 += rowHi * col0;
            c3 += rowHi * col1;
        }

        switch (default(TTile).Value)
        {
            case 0:
                d0 += c0;
                d1 += c1;
                d2 += c2;
                d3 += c3;
                break;
            case 1:
                d4 += c0;
                d5 += c1;
                d6 += c2;
                d7 += c3;
                break;
            case 2:
                d8 += c0;
                d9 += c1;
                d10 += c2;
                d11 += c3;
                break;
            default:
                d12 += c0;
                d13 += c1;
                d14 += c2;
                d15 += c3;
                break;
        }
    }

    public readonly void Store(ArrayView<double> shared, int slot)
    {
        shared[slot] = d0;
        shared[slot + 32] = d1;
        shared[slot + 64] = d2;
        shared[slot + 96] = d3;
        shared[slot + 128] = d4;
        shared[slot + 160] = d5;
        shared[slot + 192] = d6;
        shared[slot + 224] = d7;
        shared[slot + 256] = d8;
        shared[slot + 288] = d9;
        shared[slot + 320] = d10;
        shared[slot + 352] = d11;
        shared[slot + 384] = d12;
        shared[slot + 416] = d13;
        shared[slot + 448] = d14;
        shared[slot + 480] = d15;
    }
}

/// <summary>The copies of the <c>ring</c> form: 16 bytes global → shared, commit groups, waits.</summary>
internal interface IDmmaRing
{
    /// <summary>Copies <paramref name="source"/>[<paramref name="vector"/>] (device address <paramref name="pointer"/> + 16 · vector) to shared byte <paramref name="sharedByte"/>.</summary>
    void Copy(ArrayView<Float4> shared4, int sharedByte, ArrayView<Float4> source, long pointer, long vector);

    /// <summary>Closes this lane's group of copies.</summary>
    void Commit();

    /// <summary>Waits until at most <see cref="GemvDmmaF32Kernels.RingStages"/> − 1 of this lane's groups are pending.</summary>
    void WaitAllButNewest();

    /// <summary>Waits for all of this lane's copies.</summary>
    void WaitAll();
}

/// <summary>cp.async (sm_80+): the shared address as an offset, added to __dyn_shared_alloca inside the asm.</summary>
internal struct PtxDmmaRing : IDmmaRing
{
    public readonly void Copy(ArrayView<Float4> shared4, int sharedByte, ArrayView<Float4> source, long pointer, long vector) =>
        CudaAsm.Emit("{\n\t.reg .u64 dmsrc;\n\t.reg .u32 dmdst;\n\tcvta.to.global.u64 dmsrc, %1;\n\tmov.u32 dmdst, __dyn_shared_alloca;\n\tadd.u32 dmdst, dmdst, %0;\n\tcp.async.cg.shared.global [dmdst], [dmsrc], 16;\n\t}",
            (uint)sharedByte, pointer + (vector * 16));

    public readonly void Commit() => CudaAsm.Emit("cp.async.commit_group;");

    // RingStages − 1 = 2 (an immediate).
    public readonly void WaitAllButNewest() => CudaAsm.Emit("cp.async.wait_group 2;");

    public readonly void WaitAll() => CudaAsm.Emit("cp.async.wait_group 0;");
}

/// <summary>Plain copies on the simulator (each lane reads back only its own slots: no wait needed).</summary>
internal struct EmulatedDmmaRing : IDmmaRing
{
    public readonly void Copy(ArrayView<Float4> shared4, int sharedByte, ArrayView<Float4> source, long pointer, long vector) =>
        shared4[sharedByte >> 4] = source[vector];

    public readonly void Commit()
    {
    }

    public readonly void WaitAllButNewest()
    {
    }

    public readonly void WaitAll()
    {
    }
}

/// <summary>Layout constant of <see cref="GemvDmmaF32Kernels"/>: the weight stored [K, N] (mm).</summary>
internal readonly struct GemvDmmaKn : IKernelConstant
{
    /// <inheritdoc/>
    public int Value => 0;
}

/// <summary>Layout constant of <see cref="GemvDmmaF32Kernels"/>: the weight stored [N, K] (mm_tb, linear).</summary>
internal readonly struct GemvDmmaNk : IKernelConstant
{
    /// <inheritdoc/>
    public int Value => 1;
}

/// <summary>n-tile 0 of a DMMA warp step.</summary>
internal readonly struct GemvDmmaTile0 : IKernelConstant
{
    /// <inheritdoc/>
    public int Value => 0;
}

/// <summary>n-tile 1 of a DMMA warp step.</summary>
internal readonly struct GemvDmmaTile1 : IKernelConstant
{
    /// <inheritdoc/>
    public int Value => 1;
}

/// <summary>n-tile 2 of a DMMA warp step.</summary>
internal readonly struct GemvDmmaTile2 : IKernelConstant
{
    /// <inheritdoc/>
    public int Value => 2;
}

/// <summary>n-tile 3 of a DMMA warp step.</summary>
internal readonly struct GemvDmmaTile3 : IKernelConstant
{
    /// <inheritdoc/>
    public int Value => 3;
}

/// <summary>A lane's A vectors of one DMMA pass: rows g and g + 8 of the first and the second k16 step.</summary>
internal readonly struct DmmaA
{
    public readonly Float4 Lo1, Hi1, Lo2, Hi2;

    public DmmaA(Float4 lo1, Float4 hi1, Float4 lo2, Float4 hi2)
    {
        Lo1 = lo1;
        Hi1 = hi1;
        Lo2 = lo2;
        Hi2 = hi2;
    }
}

/// <summary>A lane's 8 weight vectors of one DMMA pass as loaded: P0–P3 for its first k16 step, Q0–Q3 for its second.</summary>
internal readonly struct DmmaWeights
{
    public readonly Float4 P0, P1, P2, P3, Q0, Q1, Q2, Q3;

    public DmmaWeights(Float4 p0, Float4 p1, Float4 p2, Float4 p3, Float4 q0, Float4 q1, Float4 q2, Float4 q3)
    {
        P0 = p0;
        P1 = p1;
        P2 = p2;
        P3 = p3;
        Q0 = q0;
        Q1 = q1;
        Q2 = q2;
        Q3 = q3;
    }
}

/// <summary>The registers of one DMMA pass (two k16 steps): the lane's A vectors and weight vectors as loaded.</summary>
internal readonly struct DmmaPass
{
    public readonly DmmaA A;
    public readonly DmmaWeights W;

    public DmmaPass(DmmaA a, DmmaWeights w)
    {
        A = a;
        W = w;
    }
}

/// <summary>
/// A lane's place in a DMMA GEMV group and the clamped offsets its loads start from, the same in every form of
/// <see cref="GemvDmmaF32Kernels"/>: thread, lane, warp, warps, fragment coordinates g and t, the group's first column,
/// the K extents, A's two rows and the weight's four rows ([N, K]) or column vector and k-row stride ([K, N]).
/// </summary>
internal readonly struct DmmaLane
{
    /// <summary>Index in the group, lane in the warp, warp in the group, warps in the group.</summary>
    public readonly int Thread, Lane, Warp, Warps;

    /// <summary>Fragment coordinates: g = lane / 4, t = lane mod 4.</summary>
    public readonly int G, T;

    /// <summary>The group's first column of C.</summary>
    public readonly int N0;

    /// <summary>
    /// The warp's first k16 step, the steps from one of its passes to the next, and the step its passes end before. A pass
    /// is two adjacent steps, so it reads 128 contiguous bytes of each [N, K] weight row it touches (a whole line). The
    /// group splits K into <c>ranges</c> contiguous ranges of pairs, one per subgroup of warps / ranges warps, whose
    /// warps walk their range side by side (warp v of a subgroup takes pairs lo + v, lo + v + warps / ranges, …): with
    /// one range, pair q = warp + p · warps. A subgroup of 4 reads one 512-byte window of each row at a time.
    /// </summary>
    public readonly int FirstStep, Stride, StepEnd;

    /// <summary>16-byte vectors per A row (and per [N, K] weight row); k16 steps.</summary>
    public readonly int Kv, Steps;

    /// <summary>Vector offsets of A's rows g and g + 8, clamped to row M − 1.</summary>
    public readonly long ALo, AHi;

    /// <summary>16-byte vectors per [K, N] weight row.</summary>
    public readonly long Nv;

    /// <summary>[N, K]: vector offsets of the weight rows n0 + g, + 8, + 16, + 24, clamped into N.</summary>
    public readonly long W0, W1, W2, W3;

    /// <summary>[K, N]: the lane's column vector, clamped into N (0 for [N, K]).</summary>
    public readonly long Column;

    /// <summary>Vectors from one k to the next: 1 for [N, K], 4 · <see cref="Nv"/> for [K, N].</summary>
    public readonly long KStride;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private DmmaLane(GemvShape s, bool nk, int ranges)
    {
        Thread = Group.IdxX;
        Lane = Thread & 31;
        Warp = Thread >> 5;
        Warps = Group.DimX >> 5;
        G = Lane >> 2;
        T = Lane & 3;
        N0 = Grid.IdxX * GemvDmmaF32Kernels.Columns;

        Kv = s.K >> 2;
        Steps = (s.K + 15) >> 4;

        // One range is the general form with subgroupWarps = Warps, written apart because Warps is read from the launch:
        // the general form's Warp / Warps and Warp % Warps would be run-time divisions in every 4-warp group.
        if (ranges == 1)
        {
            FirstStep = 2 * Warp;
            Stride = 2 * Warps;
            StepEnd = Steps;
        }
        else
        {
            int subgroupWarps = Warps / ranges;
            int pairs = (Steps + 1) >> 1;
            int perRange = (pairs + ranges - 1) / ranges;
            int lo = (Warp / subgroupWarps) * perRange;
            FirstStep = 2 * (lo + (Warp % subgroupWarps));
            Stride = 2 * subgroupWarps;
            StepEnd = Math.Min(Steps, 2 * Math.Min(pairs, lo + perRange));
        }

        // Rows ≥ M read row M − 1: a row of A feeds only the same row of C, and rows ≥ M of C are never stored.
        ALo = (long)Math.Min(G, s.M - 1) * Kv;
        AHi = (long)Math.Min(G + 8, s.M - 1) * Kv;

        // Columns past N read column N − 1: computed and dropped, never stored.
        Nv = s.N >> 2;
        W0 = (long)Math.Min(N0 + G, s.N - 1) * Kv;
        W1 = (long)Math.Min(N0 + 8 + G, s.N - 1) * Kv;
        W2 = (long)Math.Min(N0 + 16 + G, s.N - 1) * Kv;
        W3 = (long)Math.Min(N0 + 24 + G, s.N - 1) * Kv;
        Column = nk ? 0 : Math.Min((N0 >> 2) + G, (int)Nv - 1);

        // [N, K]: one index along K serves the four rows and A. [K, N]: the first k-row's index; the other three are + Nv.
        KStride = nk ? 1 : 4 * Nv;
    }

    /// <summary>This lane's 16-byte vector index along K in k16 step <paramref name="step"/>, clamped to the last vector (past K it is zeroed by selects).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public int VectorAt(int step) => Math.Min((step * 4) + T, Kv - 1);

    /// <summary>
    /// The calling lane's values for a product of shape <paramref name="s"/>, weight [N, K] when <paramref name="nk"/>,
    /// K split into <paramref name="ranges"/> contiguous ranges (a kernel constant that divides the group's warps).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static DmmaLane Of(GemvShape s, bool nk, int ranges) => new(s, nk, ranges);
}
