#!/usr/bin/env python3
"""Generates src.Kernels/Ilgpu/GemmFastKernels.GemvKnStream.g.cs: the streamed float32 [K, N] GEMV for 1-8 rows
(the default, GEMS_GEMV_F32_VARIANT unset or stream). One straight-line body per row cap, every operand and sum its
own variable (constant names, so nothing is indexed at run time and nothing lands in local memory); the kernel picks
the body from its row-cap type argument, which folds the others away. Launch plan and notes: IlgpuKernels.GemvKnStreamF32.cs.
Run: python3 src.Kernels/Ilgpu/Codegen/gen_gemv_kn_stream_f32.py"""
from gemv_codegen import cap_entry, halve, write

# Row cap -> rows of K per thread and batch (a multiple of 4: one 16-byte activation vector per row of A and quad of K).
# Per thread a batch holds R weight vectors (4R floats), cap x R / 4 activation vectors (cap x R floats) and 4 x cap
# sums. 8 rows double the weight bytes each warp has in flight where the registers allow it (1-4 rows: 44-80 floats);
# at 8 rows 8 would be 32 + 32 + 64 = 128 floats before addresses. No 16-row body: at R = 4 it held 144 floats (ptxas
# issued half the activation loads among the products) and ran 4% behind the flat SGEMM tile (H200 Run 81: 2336 against
# 2430 GB/s for 16 x 11008 x 4096), which keeps 9-16 rows.
CAPS = {1: 8, 2: 8, 4: 8, 8: 4}
# Output columns per group: 8 column lanes of one 16-byte vector (4 columns) each, so one row of the group's slab is a
# 128-byte line and one warp load instruction (4 row slots of 8 lanes) reads 4 whole lines.
COLUMN_LANES = 8
COLUMNS = COLUMN_LANES * 4
# Most sum holders (warps, or 8-thread row slots on warps narrower than 8) per group: the shared sum buffer's size.
MAX_HOLDERS = 16
# Largest group: 16 warps of 32 (the launch bound, .maxntid 512, which also holds every cap to 128 registers).
MAX_THREADS = 512
SHUFFLE_OFFSETS = [8, 16]
XYZW = "XYZW"
out = []
w = out.append


def sums(cap):
    return [f"s{m}_{j}" for m in range(cap) for j in range(4)]


def weight_loads(rows, guarded, indent):
    p = " " * indent
    for r in range(rows):
        src = f"wBatch[wRow{r}]"
        quad = r // 4
        if guarded and quad > 0:
            w(f"{p}Float4 w{r} = valid{quad} ? {src} : default;")
        else:
            w(f"{p}Float4 w{r} = {src};")


def activation_loads(cap, quads, guarded, indent):
    p = " " * indent
    for m in range(cap):
        for i in range(quads):
            src = f"a4[xRow{m} + q + {i}]" if i else f"a4[xRow{m} + q]"
            if guarded and i > 0:
                w(f"{p}Float4 x{m}_{i} = valid{i} ? {src} : default;")
            else:
                w(f"{p}Float4 x{m}_{i} = {src};")


def products(cap, rows, indent):
    p = " " * indent
    for m in range(cap):
        for r in range(rows):
            for j in XYZW:
                w(f"{p}s{m}_{XYZW.index(j)} += x{m}_{r // 4}.{XYZW[r % 4]} * w{r}.{j};")


def body(cap, rows):
    quads = rows // 4
    n = 4 * cap
    w(f"    /// <summary>The streamed [K, N] body for up to {cap} row(s): {rows} rows of K per thread and batch, {n} sums per thread.</summary>")
    w("    [MethodImpl(MethodImplOptions.AggressiveInlining)]")
    w(f"    private static void GemvKnStreamRows{cap}(ArrayView<Float4> a4, ArrayView<Float4> b4, ArrayView<float> bias, ArrayView<float> c, GemvShape g)")
    w("    {")
    w("        int ws = Warp.WarpSize;")
    w("        int lane = Warp.LaneIdx;")
    w("        int warp = Warp.WarpIdx;")
    w("        int t = Group.IdxX;")
    w(f"        int colLane = t & {COLUMN_LANES - 1};")
    w("        int slot = t >> 3;")
    w("        int slots = Group.DimX >> 3;")
    w("        int n4 = g.N >> 2;")
    w("        int k4 = g.K >> 2;")
    w("        // The ragged last slab: column vectors past N read the row's last vector; their sums are never stored. Activation")
    w("        // rows past M read row M - 1, likewise. Row offsets are int offsets from one view per batch (weight) or per")
    w("        // operand (activations), so a load is an add and one address product; ILGPU would compute them inside the loop,")
    w("        // next to their first use (and ptxas then redid them every batch): an empty inline-PTX use of each here keeps")
    w("        // them in registers ahead of the loop.")
    w(f"        int colVec = (Grid.IdxX * {COLUMN_LANES}) + colLane;")
    w("        int wCol = colVec < n4 ? colVec : n4 - 1;")
    w("        int wRow0 = 0;")
    for r in range(1, rows):
        w(f"        int wRow{r} = {r} * n4;")
    w("        int xRow0 = 0;")
    for m in range(1, cap):
        w(f"        int xRow{m} = ({m} < g.M ? {m} : g.M - 1) * k4;")
    if rows > 1 or cap > 1:
        w("        if (CudaAsm.IsSupported)")
        w("        {")
        for r in range(1, rows):
            w(f"            CudaAsm.Emit(\"// row %0\", wRow{r});")
        for m in range(1, cap):
            w(f"            CudaAsm.Emit(\"// row %0\", xRow{m});")
        w("        }")
        w("")
    for m in range(cap):
        w(f"        float s{m}_0 = 0f, s{m}_1 = 0f, s{m}_2 = 0f, s{m}_3 = 0f;")
    w(f"        // Row slot s takes quads of K (4 rows each) (b * slots + s) * {quads} onward for batches b = 0, 1, ...: the 4 slots of a")
    w(f"        // 32-lane warp read {4 * rows} consecutive rows of the slab, each weight load instruction 4 whole 128-byte lines. A")
    w("        // batch is whole for the warp while its last slot's quads are inside K; the loop bound is therefore the same for")
    w("        // all of the warp's lanes, so its barriers never diverge.")
    w("        int lastSlot = (((warp + 1) * ws) - 1) >> 3;")
    w(f"        int q = slot * {quads};")
    w(f"        int step = slots * {quads};")
    w(f"        int qWhole = k4 - ((lastSlot + 1 - slot) * {quads});")
    w("        long wAt = ((long)q * 4 * n4) + wCol;")
    w("        long wStep = (long)step * 4 * n4;")
    w("        // Pinned ahead of the loop like the row offsets: ILGPU computed the bound (a division by the warp size among it)")
    w("        // and the weight step inside the loop, next to their use, every batch.")
    w("        if (CudaAsm.IsSupported)")
    w("        {")
    w("            CudaAsm.Emit(\"// step %0\", step);")
    w("            CudaAsm.Emit(\"// bound %0\", qWhole);")
    w("            CudaAsm.Emit(\"// weight step %0\", wStep);")
    w("        }")
    w("")
    w("        for (; q <= qWhole; q += step)")
    w("        {")
    w("            var wBatch = b4.SubView(wAt);")
    weight_loads(rows, False, 12)
    w("            // ILGPU places a load next to its first use, which would put the weight loads behind the fence among the")
    w("            // products: an empty inline-PTX use of each vector keeps it ahead. The warp barrier orders memory, so ptxas")
    w("            // can sink no weight load below it and hoist no activation load above it: the batch's weight vectors are all")
    w("            // requested in one burst (the DRAM round trip), then the activations (L1 / L2 hits), then the products.")
    w("            if (CudaAsm.IsSupported)")
    w("            {")
    for r in range(rows):
        w(f"                CudaAsm.Emit(\"// w %0\", w{r}.X);")
    w("            }")
    w("")
    w("            Warp.Barrier();")
    w("")
    activation_loads(cap, quads, False, 12)
    w("            if (CudaAsm.IsSupported)")
    w("            {")
    for m in range(cap):
        for i in range(quads):
            w(f"                CudaAsm.Emit(\"// x %0\", x{m}_{i}.X);")
    w("            }")
    w("")
    w("            // The activations in one burst too: left to itself ptxas issues one row's load per group of products, so a")
    w("            // batch would wait for its activation rows one after another.")
    w("            Warp.Barrier();")
    products(cap, rows, 12)
    w("            wAt += wStep;")
    w("        }")
    w("")
    w("        if (q < k4)")
    w("        {")
    if quads > 1:
        w("            // The warp's last, partial batch: this thread's first quad is inside K, a later one may not be. Both operands")
        w("            // of a quad past K are zero, so its products are 0 * 0, never a stale value times zero (Inf * 0 would be NaN).")
        for i in range(1, quads):
            w(f"            bool valid{i} = q + {i} < k4;")
    else:
        w("            // The warp's last, partial batch: slots whose quad is inside K take it, the others have no rows left.")
    w("            var wBatch = b4.SubView(wAt);")
    weight_loads(rows, True, 12)
    activation_loads(cap, quads, True, 12)
    products(cap, rows, 12)
    w("        }")
    w("")
    w("        // Sum over the warp's row slots (lanes 8 and 16 apart hold the same columns) by halving: at each offset a lane")
    w("        // keeps one half of its sums and adds its partner's copy of that half, so 4 row slots reduce n sums in n / 2 + n / 4")
    w("        // shuffles instead of 2 n. Afterwards the lane holds the warp totals of its columns' sums first .. first + held - 1")
    w("        // (sum e is row e / 4, column 4 colLane + e % 4). Warps narrower than 8 lanes hold a row slot in several warps and")
    w("        // skip the shuffles.")
    w("        int first = 0;")
    w(f"        int held = {n};")
    cur = sums(cap)
    for o in SHUFFLE_OFFSETS:
        w(f"        if (ws > {o})")
        w("        {")
        cur = halve(w, cur, o, "lane")
        w("        }")
        w("")
    out_n = cap * COLUMNS
    w(f"        var red = SharedMemory.Allocate<float>(GemvKnStreamMaxHolders * {out_n});")
    w("        int holderThreads = ws > 8 ? ws : 8;")
    w(f"        int at = (t / holderThreads * {out_n}) + (colLane << 2);")
    # Each halving keeps a prefix of the sums' variables, and a narrower warp stops halving earlier: the lane's held sums
    # are the first `held` variables of the full list.
    every = sums(cap)
    w(f"        red[at + ((first >> 2) << 5) + (first & 3)] = {every[0]};")
    for i in range(1, n):
        w(f"        if (held > {i})")
        w("        {")
        w(f"            red[at + (((first + {i}) >> 2) << 5) + ((first + {i}) & 3)] = {every[i]};")
        w("        }")
        w("")
    w("        Group.Barrier();")
    w("        int holders = Group.DimX / holderThreads;")
    w(f"        for (int e = t; e < {out_n}; e += Group.DimX)")
    w("        {")
    w("            int row = e >> 5;")
    w(f"            int col = (Grid.IdxX * {COLUMNS}) + (e & {COLUMNS - 1});")
    w("            if (row < g.M && col < g.N)")
    w("            {")
    w("                // Holder order, so the result does not depend on timing.")
    w("                float sum = red[e];")
    w("                for (int other = 1; other < holders; other++)")
    w("                {")
    w(f"                    sum += red[(other * {out_n}) + e];")
    w("                }")
    w("")
    w("                c[((long)row * g.N) + col] = GemvEpilogue(bias, g, row, col, sum);")
    w("            }")
    w("        }")
    w("    }")


w("// <auto-generated/> by src.Kernels/Ilgpu/Codegen/gen_gemv_kn_stream_f32.py: edit the generator, not this file.")
w("using System.Runtime.CompilerServices;")
w("using ILGPU;")
w("using ILGPU.Runtime.Cuda;")
w("")
w("namespace GemsInjector.Kernels.Ilgpu;")
w("")
w("internal static partial class GemmFastKernels")
w("{")
w("    /// <summary>Output columns per group of <see cref=\"GemvKnStreamF32{TRowsCap}\"/>: 8 column lanes of 4 columns, a 128-byte line per row of K.</summary>")
w(f"    public const int GemvKnStreamColumns = {COLUMNS};")
w("")
w("    /// <summary>")
w("    /// Most sum holders per group of <see cref=\"GemvKnStreamF32{TRowsCap}\"/> (the size of its shared sum buffer): a warp")
w("    /// holds its row slots' sums, or an 8-thread row slot where warps are narrower.")
w("    /// </summary>")
w(f"    public const int GemvKnStreamMaxHolders = {MAX_HOLDERS};")
w("")
w("    /// <summary>Most threads per group of <see cref=\"GemvKnStreamF32{TRowsCap}\"/> (its launch bound).</summary>")
w(f"    public const int GemvKnStreamMaxThreads = {MAX_THREADS};")
w("")
w("    /// <summary>Rows of K per thread and batch of <see cref=\"GemvKnStreamF32{TRowsCap}\"/> for a row cap of 1, 2, 4 or 8.</summary>")
w("    public static int GemvKnStreamRowsPerThread(int rowsCap) => rowsCap switch")
w("    {")
for cap, rows in CAPS.items():
    w(f"        {cap} => {rows},")
w("        _ => throw new System.ArgumentOutOfRangeException(nameof(rowsCap), rowsCap, \"Streamed [K, N] GEMV row caps are 1, 2, 4 or 8.\"),")
w("    };")
w("")
w("    /// <summary>")
w("    /// Streamed float32 decode GEMV for 1-8 rows, weight [K, N] (the default; <c>GEMS_GEMV_F32_VARIANT=pipe</c> or")
w("    /// <c>vec</c> picks the split-K kernels; notes and launch plan in <see cref=\"GemvKnStreamLaunch\"/>): a group owns a")
w("    /// slab of 32 output columns and all of K, no split-K and no second launch. K and N multiples of 4, both views 16-byte")
w("    /// aligned; the group size (a multiple of 8 threads) is read from the launch.")
w("    /// </summary>")
cap_entry(w, "GemvKnStreamF32", CAPS, "ArrayView<Float4> a4, ArrayView<Float4> b4, ArrayView<float> bias, ArrayView<float> c, GemvShape g",
          "a4, b4, bias, c, g", "GemvKnStreamRows")
for cap, rows in CAPS.items():
    w("")
    body(cap, rows)
w("}")

write(out, "GemmFastKernels.GemvKnStream.g.cs")
