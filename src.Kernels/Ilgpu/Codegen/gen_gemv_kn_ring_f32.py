#!/usr/bin/env python3
"""Generates src.Kernels/Ilgpu/GemmFastKernels.GemvKnRing.g.cs: the float32 [K, N] GEMV for 9-16 rows with the weight and
the activations streamed through a per-row-slot ring of shared stages by cp.async (GEMS_GEMV_F32_KN_WIDE=ring3; unset keeps
the flat SGEMM tile). The streamed [K, N] kernel's lane layout (8 column lanes of one 16-byte column vector per row slot,
32 columns per group), but 64 sums per lane (16 rows of A x 4 columns) fed from shared memory, so no weight or
activation load sits in front of an FMA for a DRAM or L1 round trip. Every operand and sum is its own variable (constant
names: nothing indexed at run time, nothing in local memory). Launch plan and notes: IlgpuKernels.GemvKnRingF32.cs.
Run: python3 src.Kernels/Ilgpu/Codegen/gen_gemv_kn_ring_f32.py"""
from gemv_codegen import halving_sums, pin, store_sums, sum_names, write

ROWS = 16                  # rows of A (sums per column)
COLUMN_LANES = 8           # 16-byte column vectors side by side in a row slot: a 128-byte line of a weight row
COLUMNS = COLUMN_LANES * 4
QUAD = 4                   # rows of K per slot and batch: one activation vector per row of A
STAGES = 3
# A stage of one row slot in 16-byte vectors: its 4 weight rows x 8 column vectors, then its 16 activation vectors, padded
# by one vector so that the 4 slots of a 32-lane warp (stages 784 bytes apart) read their activation vectors from four
# different 16-byte bank groups instead of one (a 4-way conflict at 768 bytes).
W_VECTORS = QUAD * COLUMN_LANES
X_AT = W_VECTORS
PITCH = W_VECTORS + ROWS + 1
SHUFFLE_OFFSETS = [8, 16]
XYZW = "XYZW"
out = []
w = out.append


def copy_fn():
    w("")
    w("    /// <summary>")
    w(f"    /// Copies batch <paramref name=\"batch\"/> of this lane's part of its row slot's ring stage at shared vector <paramref name=\"at\"/>:")
    w(f"    /// its column vector of the quad's {QUAD} weight rows (to at + {COLUMN_LANES} r + colLane) and activation rows 2 colLane and")
    w(f"    /// 2 colLane + 1 at the quad (to at + {X_AT} + 2 colLane and the next vector). A quad past K, and rows of A past M, are")
    w("    /// zero-filled (source size 0, the source clamped to a valid address). No commit: the caller's next commit closes the group.")
    w("    /// </summary>")
    w("    [MethodImpl(MethodImplOptions.AggressiveInlining)]")
    w("    private static void GemvKnRingCopy(ArrayView<Float4> a4, ArrayView<Float4> b4, ArrayView<Float4> shared, bool asyncCopy, long aPointer, long bPointer,")
    w("        int batch, int at, int slots, int slot, int colLane, int k4, int n4, int wCol, long xRow0, long xRow1, bool has0, bool has1)")
    w("    {")
    w("        int q = (batch * slots) + slot;")
    w("        bool valid = q < k4;")
    w("        int qs = valid ? q : 0;")
    w(f"        long wSrc = ((long)qs * {QUAD} * n4) + wCol;")
    w("        bool x0 = valid && has0;")
    w("        bool x1 = valid && has1;")
    w("        long xSrc0 = xRow0 + qs;")
    w("        long xSrc1 = xRow1 + qs;")
    w("        int wAt = at + colLane;")
    w(f"        int xAt = at + {X_AT} + (colLane << 1);")
    w("        if (asyncCopy)")
    w("        {")
    w("            // One asm block per operand: one shared address (the dynamic symbol's, taken inside the asm: an output operand")
    w(f"            // would go through local memory) plus immediates, and the weight rows {QUAD * 4} floats x N apart from one source.")
    body = "{\\n\\t.reg .u64 g0, g1, g2, g3;\\n\\t.reg .u32 sdst;\\n\\tcvta.to.global.u64 g0, %1;\\n\\t"
    for r in range(1, QUAD):
        body += f"add.u64 g{r}, g{r - 1}, %2;\\n\\t"
    body += "mov.u32 sdst, __dyn_shared_alloca;\\n\\tadd.u32 sdst, sdst, %0;\\n\\t"
    for r in range(QUAD):
        off = f"+{r * COLUMN_LANES * 16}" if r else ""
        body += f"cp.async.cg.shared.global [sdst{off}], [g{r}], 16, %3;\\n\\t"
    body += "}"
    w(f"            CudaAsm.Emit(\"{body}\",")
    w("                (uint)(wAt * 16), bPointer + (wSrc * 16), (long)n4 * 16, valid ? 16u : 0u);")
    xbody = ("{\\n\\t.reg .u64 g0, g1;\\n\\t.reg .u32 sdst;\\n\\tcvta.to.global.u64 g0, %1;\\n\\tcvta.to.global.u64 g1, %2;\\n\\t"
             "mov.u32 sdst, __dyn_shared_alloca;\\n\\tadd.u32 sdst, sdst, %0;\\n\\t"
             "cp.async.cg.shared.global [sdst], [g0], 16, %3;\\n\\tcp.async.cg.shared.global [sdst+16], [g1], 16, %4;\\n\\t}")
    w(f"            CudaAsm.Emit(\"{xbody}\",")
    w("                (uint)(xAt * 16), aPointer + (xSrc0 * 16), aPointer + (xSrc1 * 16), x0 ? 16u : 0u, x1 ? 16u : 0u);")
    w("        }")
    w("        else")
    w("        {")
    for r in range(QUAD):
        src = f"b4[wSrc + ({r} * (long)n4)]" if r else "b4[wSrc]"
        off = f" + {r * COLUMN_LANES}" if r else ""
        w(f"            shared[wAt{off}] = valid ? {src} : default;")
    w("            shared[xAt] = x0 ? a4[xSrc0] : default;")
    w("            shared[xAt + 1] = x1 ? a4[xSrc1] : default;")
    w("        }")
    w("    }")
    w("")
    w("    /// <summary>Closes this thread's cp.async group (nothing on the simulator, whose copies are synchronous).</summary>")
    w("    [MethodImpl(MethodImplOptions.AggressiveInlining)]")
    w("    private static void GemvKnRingCommit(bool asyncCopy)")
    w("    {")
    w("        if (asyncCopy)")
    w("        {")
    w("            CudaAsm.Emit(\"cp.async.commit_group;\");")
    w("        }")
    w("    }")
    w("")
    w("    /// <summary>")
    w("    /// Orders the shared accesses of a row slot's 8 lanes: a warp barrier where a warp holds whole row slots (CUDA), a group")
    w("    /// barrier on the simulator's narrower warps (a slot spans warps there; every thread runs the same batches).")
    w("    /// </summary>")
    w("    [MethodImpl(MethodImplOptions.AggressiveInlining)]")
    w("    private static void GemvKnRingSlotBarrier(int ws)")
    w("    {")
    w(f"        if (ws >= {COLUMN_LANES})")
    w("        {")
    w("            Warp.Barrier();")
    w("        }")
    w("        else")
    w("        {")
    w("            Group.Barrier();")
    w("        }")
    w("    }")


def products(indent):
    p = " " * indent
    w(f"{p}// One view per operand, so every shared load is a base register plus an immediate (weight row r at + {COLUMN_LANES} r, row m")
    w(f"{p}// of A at + m vectors). The {QUAD} weight vectors stay in registers for the batch; each activation vector is loaded once")
    w(f"{p}// and meets all of them ({QUAD * 4} FMAs per shared load).")
    w(f"{p}var wv = shared.SubView(wIn + stage);")
    w(f"{p}var xs = shared.SubView(xIn + stage);")
    for r in range(QUAD):
        w(f"{p}Float4 w{r} = wv[{r * COLUMN_LANES}];")
    for m in range(ROWS):
        w(f"{p}Float4 x{m} = xs[{m}];")
        for r in range(QUAD):
            for j in range(4):
                w(f"{p}s{m}_{j} += x{m}.{XYZW[r]} * w{r}.{XYZW[j]};")


def kernel():
    w("    /// <summary>")
    w(f"    /// float32 decode GEMV for 9–{ROWS} rows, weight [K, N] (<c>GEMS_GEMV_F32_KN_WIDE=ring3</c>; notes and launch plan in")
    w(f"    /// <see cref=\"GemvKnRingLaunch\"/>): a group owns a slab of {COLUMNS} output columns and all of K; thread t is column lane")
    w(f"    /// t % {COLUMN_LANES} (4 columns) and row slot t / {COLUMN_LANES}, which takes quad b · slots + slot of K in batch b. Each slot streams its")
    w(f"    /// {QUAD} weight rows and {ROWS} activation vectors per batch through a ring of {STAGES} shared stages by cp.async, {STAGES - 1} batches ahead")
    w(f"    /// of the one multiplied; {ROWS * 4} sums per lane. <paramref name=\"aPointer\"/> and <paramref name=\"bPointer\"/> are the device addresses")
    w("    /// of a4[0] and b4[0], required on CUDA (the simulator copies synchronously and ignores them). K and N multiples of 4,")
    w(f"    /// both views 16-byte aligned, M of 1–{ROWS}, groups of whole {COLUMN_LANES}-thread row slots in whole warps of at most 32")
    w(f"    /// threads (a warp size that divides {COLUMN_LANES} or that {COLUMN_LANES} divides), with <see cref=\"GemvKnRingSharedFloats\"/> floats of")
    w("    /// dynamic shared memory.")
    w("    /// </summary>")
    w("    [IlgpuKernel]")
    w("    public static void GemvKnRingF32(ArrayView<Float4> a4, ArrayView<Float4> b4, ArrayView<float> bias, ArrayView<float> c, GemvShape g, long aPointer, long bPointer)")
    w("    {")
    w("        var dyn = SharedMemory.GetDynamic<float>();")
    w("        var shared = dyn.Cast<Float4>().AsAligned(16);")
    w("        // On CUDA the copies are always cp.async (the facade always passes both device addresses), so the PTX holds no")
    w("        // synchronous copy path; the simulator copies synchronously at the same places with the same indices.")
    w("        bool asyncCopy = CudaAsm.IsSupported;")
    w("        int ws = Warp.WarpSize;")
    w("        int lane = Warp.LaneIdx;")
    w("        int t = Group.IdxX;")
    w(f"        int colLane = t & {COLUMN_LANES - 1};")
    w(f"        int slot = t >> {COLUMN_LANES.bit_length() - 1};")
    w(f"        int slots = Group.DimX >> {COLUMN_LANES.bit_length() - 1};")
    w("        int n4 = g.N >> 2;")
    w("        int k4 = g.K >> 2;")
    w("        // The ragged last slab: column vectors past N copy the row's last vector; their sums are never stored. Rows of A")
    w("        // past M are zero-filled in the stage (their sums are never stored either).")
    w(f"        int colVec = (Grid.IdxX * {COLUMN_LANES}) + colLane;")
    w("        int wCol = colVec < n4 ? colVec : n4 - 1;")
    w("        int m0 = colLane << 1;")
    w("        bool has0 = m0 < g.M;")
    w("        bool has1 = m0 + 1 < g.M;")
    w("        long xRow0 = has0 ? (long)m0 * k4 : 0;")
    w("        long xRow1 = has1 ? (long)(m0 + 1) * k4 : 0;")
    w("        // Every thread of the group runs the same batches (quads past K are zero-filled), so the barriers never diverge.")
    w("        int batches = (k4 + slots - 1) / slots;")
    w(f"        int ring = slot * {STAGES * PITCH};")
    w("        int wIn = ring + colLane;")
    w(f"        int xIn = ring + {X_AT};")
    pin(w, [("batches", "batches"), ("a row", "xRow0"), ("a row", "xRow1")])
    w("")
    args = "slots, slot, colLane, k4, n4, wCol, xRow0, xRow1, has0, has1"
    w(f"        // Prologue: batches 0 .. {STAGES - 2}, one commit group each.")
    for s in range(STAGES - 1):
        w(f"        GemvKnRingCopy(a4, b4, shared, asyncCopy, aPointer, bPointer, {s}, ring + {s * PITCH}, {args});")
        w("        GemvKnRingCommit(asyncCopy);")
    for m in range(ROWS):
        w("        float " + ", ".join(f"s{m}_{j} = 0f" for j in range(4)) + ";")
    w("")
    w(f"        // Batch b multiplies stage `stage` (b % {STAGES}) after sending batch b + {STAGES - 1} into the stage batch b - 1 used: commit group")
    w(f"        // {STAGES - 1} + b holds that copy, so after its commit `wait_group {STAGES - 1}` leaves batches b + 1 .. b + {STAGES - 1} in flight and batch b landed.")
    w("        int stage = 0;")
    w("        for (int b = 0; b < batches; b++)")
    w("        {")
    w("            // The slot's lanes are done reading batch b - 1's stage (its activation vectors are shared) before it is refilled.")
    w("            GemvKnRingSlotBarrier(ws);")
    w(f"            GemvKnRingCopy(a4, b4, shared, asyncCopy, aPointer, bPointer, b + {STAGES - 1}, ring + (stage == 0 ? {(STAGES - 1) * PITCH} : stage - {PITCH}), {args});")
    w("            GemvKnRingCommit(asyncCopy);")
    w("            if (asyncCopy)")
    w("            {")
    w(f"                CudaAsm.Emit(\"cp.async.wait_group {STAGES - 1};\");")
    w("            }")
    w("")
    w("            // Batch b's activation vectors, copied by the slot's 8 lanes, are visible to all of them.")
    w("            GemvKnRingSlotBarrier(ws);")
    products(12)
    w(f"            stage = stage == {(STAGES - 1) * PITCH} ? 0 : stage + {PITCH};")
    w("        }")
    w("")
    w("        // The copies past the last batch (zero-filled, never read) land before the ring's memory takes the sums.")
    w("        if (asyncCopy)")
    w("        {")
    w("            CudaAsm.Emit(\"cp.async.wait_all;\");")
    w("        }")
    w("")
    w("        // Sum over the warp's row slots (lanes 8 and 16 apart hold the same columns) by halving, then over the holders (warps,")
    w("        // or 8-thread row slots on narrower warps) through the ring's memory, after every warp is done with its ring.")
    halving_sums(w, sum_names(ROWS, 4), SHUFFLE_OFFSETS)
    w("        Group.Barrier();")
    lines = []
    store_sums(lines.append, "GemvKnRingMaxHolders", sum_names(ROWS, 4), COLUMNS, COLUMN_LANES, "GemvEpilogue(bias, g, row, col, sum)")
    assert lines[0].lstrip().startswith("var red = SharedMemory.Allocate<float>(")
    w("        var red = dyn;")
    for line in lines[1:]:
        w(line)
    w("    }")
    w("")
    w(f"    /// <summary>Output columns per group of <see cref=\"GemvKnRingF32\"/>: {COLUMN_LANES} column lanes of 4 columns.</summary>")
    w(f"    public const int GemvKnRingColumns = {COLUMNS};")
    w("")
    w(f"    /// <summary>Ring stages per row slot of <see cref=\"GemvKnRingF32\"/> ({STAGES - 1} batches in flight ahead of the one multiplied).</summary>")
    w(f"    public const int GemvKnRingStages = {STAGES};")
    w("")
    w(f"    /// <summary>Most rows of A of <see cref=\"GemvKnRingF32\"/> (its sums per column).</summary>")
    w(f"    public const int GemvKnRingMaxRows = {ROWS};")
    w("")
    w("    /// <summary>")
    w(f"    /// Dynamic shared memory of <see cref=\"GemvKnRingF32\"/> in floats for a group of <paramref name=\"threads\"/>: per {COLUMN_LANES}-thread row slot")
    w(f"    /// {STAGES} stages of {PITCH} vectors ({W_VECTORS} weight, {ROWS} activation, 1 pad). The sums reuse it afterwards ({ROWS * COLUMNS} floats per holder, at most one")
    w("    /// holder per row slot, which is less).")
    w("    /// </summary>")
    w("    /// <param name=\"threads\">Threads per group (whole row slots).</param>")
    w(f"    public static int GemvKnRingSharedFloats(int threads) => (threads >> {COLUMN_LANES.bit_length() - 1}) * {STAGES * PITCH * 4};")


w("// <auto-generated/> by src.Kernels/Ilgpu/Codegen/gen_gemv_kn_ring_f32.py: edit the generator, not this file.")
w("using System.Runtime.CompilerServices;")
w("using ILGPU;")
w("using ILGPU.Runtime;")
w("using ILGPU.Runtime.Cuda;")
w("")
w("namespace GemsInjector.Kernels.Ilgpu;")
w("")
w("internal static partial class GemmFastKernels")
w("{")
kernel()
copy_fn()
w("}")

write(out, "GemmFastKernels.GemvKnRing.g.cs")
