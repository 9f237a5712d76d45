#!/usr/bin/env python3
"""Generates src.Kernels/Ilgpu/GemmFastKernels.GemvKnStream.g.cs: the streamed float32 [K, N] GEMV for 1-8 rows
(the default, GEMS_GEMV_F32_VARIANT unset or stream). One straight-line body per row cap, every operand and sum its
own variable (constant names, so nothing is indexed at run time and nothing lands in local memory); the kernel picks
the body from its row-cap type argument, which folds the others away. Launch plan and notes: IlgpuKernels.GemvKnStreamF32.cs.
Run: python3 src.Kernels/Ilgpu/Codegen/gen_gemv_kn_stream_f32.py"""
from gemv_codegen import KN_STREAM_MAX_HOLDERS, KN_STREAM_MAX_THREADS, batch_loop, cap_entry, file_header, \
    halving_sums, plan_constants, slab_offsets, slot_indices, store_sums, \
    sum_names, write, zero_sums

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
SHUFFLE_OFFSETS = [8, 16]
XYZW = "XYZW"
out = []
w = out.append


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
    slot_indices(w, COLUMN_LANES)
    w("        int n4 = g.N >> 2;")
    w("        int k4 = g.K >> 2;")
    w("        // The ragged last slab: column vectors past N read the row's last vector; their sums are never stored. Activation")
    w("        // rows past M read row M - 1, likewise. Row offsets are int offsets from one view per batch (weight) or per")
    w("        // operand (activations), so a load is an add and one address product; ILGPU would compute them inside the loop,")
    w("        // next to their first use (and ptxas then redid them every batch): an empty inline-PTX use of each here keeps")
    w("        // them in registers ahead of the loop.")
    slab_offsets(w, COLUMN_LANES, rows, cap, "n4", "k4")
    zero_sums(w, cap, 4)
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
    batch_loop(
        w, "b4", lambda: weight_loads(rows, False, 12), [f"w{r}.X" for r in range(rows)],
        ["ILGPU places a load next to its first use, which would put the weight loads behind the fence among the",
         "products: an empty inline-PTX use of each vector keeps it ahead. The warp barrier orders memory, so ptxas",
         "can sink no weight load below it and hoist no activation load above it: the batch's weight vectors are all",
         "requested in one burst (the DRAM round trip), then the activations (L1 / L2 hits), then the products."],
        lambda: activation_loads(cap, quads, False, 12), [f"x{m}_{i}.X" for m in range(cap) for i in range(quads)],
        ["The activations in one burst too: left to itself ptxas issues one row's load per group of products, so a",
         "batch would wait for its activation rows one after another."],
        lambda: products(cap, rows, 12))
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
    halving_sums(w, sum_names(cap, 4), SHUFFLE_OFFSETS)
    store_sums(w, "GemvKnStreamMaxHolders", sum_names(cap, 4), COLUMNS, COLUMN_LANES,
               "GemvEpilogue(bias, g, row, col, sum)")
    w("    }")


file_header(w, "gen_gemv_kn_stream_f32.py", "GemmFastKernels")
plan_constants(
    w,
    [("Output columns per group of <see cref=\"GemvKnStreamF32{TRowsCap}\"/>: 8 column lanes of 4 columns, a 128-byte line per row of K.",
      "GemvKnStreamColumns", COLUMNS),
     (["Most sum holders per group of <see cref=\"GemvKnStreamF32{TRowsCap}\"/> (the size of its shared sum buffer): a warp",
       "holds its row slots' sums, or an 8-thread row slot where warps are narrower."],
      "GemvKnStreamMaxHolders", KN_STREAM_MAX_HOLDERS),
     ("Most threads per group of <see cref=\"GemvKnStreamF32{TRowsCap}\"/> (its launch bound).", "GemvKnStreamMaxThreads", KN_STREAM_MAX_THREADS)],
    "GemvKnStreamRowsPerThread",
    "Rows of K per thread and batch of <see cref=\"GemvKnStreamF32{TRowsCap}\"/> for a row cap of 1, 2, 4 or 8.",
    CAPS, "Streamed [K, N] GEMV row caps are 1, 2, 4 or 8.")
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
