#!/usr/bin/env python3
"""Generates src.Kernels/Ilgpu/HalfGemvKernels.KnStream.g.cs: the streamed 16-bit (float16 / bfloat16) [K, N] GEMV for
1-8 rows (GEMS_GEMV16_KN=stream; off by default). The float32 counterpart is gen_gemv_kn_stream_f32.py, whose structure
this follows: one straight-line body per row cap, every operand and sum its own variable (constant names, so nothing is
indexed at run time and nothing lands in local memory); the kernel picks the body from its row-cap type argument, which
folds the others away. Launch plan and notes: IlgpuKernels.HalfGemvKnStream.cs.
Run: python3 src.Kernels/Ilgpu/Codegen/gen_gemv_kn16_stream.py"""
from gemv_codegen import KN_STREAM_MAX_HOLDERS, KN_STREAM_MAX_THREADS, batch_loop, cap_entry, file_header, \
    halving_sums, plan_constants, slab_offsets, slot_indices, store_sums, \
    sum_names, write, zero_sums

# Row cap -> rows of K per thread and batch. A batch is also one activation vector per row of A (its R 16-bit values):
# a Half8 (16 bytes) at R = 8, a ulong (8 bytes) at R = 4. Per thread a batch holds R packed weight vectors (4R words),
# cap x R / 2 packed activation words and 8 x cap float sums: 1-4 rows 44-80 registers; at 8 rows R = 8 would be
# 32 + 32 + 64 = 128 before addresses (the launch bound's limit), so 8 rows take R = 4 (16 + 16 + 64), as the float32
# kernel does. R = 8 requests 128 bytes of weight per lane and batch, as many as the float32 kernel's R = 8.
CAPS = {1: 8, 2: 8, 4: 8, 8: 4}
# Output columns per group: 4 column lanes of one 16-byte vector (8 columns) each, 32 columns (a 64-byte piece of every
# weight row), so N = 4096 still gives 128 groups for 132 SMs (8 lanes of 8 columns would give 64); one warp load
# instruction (8 row slots of 4 lanes) reads 8 such pieces.
COLUMN_LANES = 4
COLUMNS = COLUMN_LANES * 8
SHUFFLE_OFFSETS = [4, 8, 16]
WORDS = "XYZW"
out = []
w = out.append


def half(word_expr, upper):
    return f"{'High' if upper else 'Low'}({word_expr}, bf16)"


def weight_word(r, j):
    return f"w{r}.{WORDS[j // 2]}"


def activation_word(m, r, rows):
    if rows == 8:
        return f"x{m}.{WORDS[r // 2]}"
    # A ulong of 4 values: words 0 (bits 0-31) and 1 (bits 32-63).
    return f"(uint)x{m}" if r < 2 else f"(uint)(x{m} >> 32)"


def weight_loads(rows, indent):
    p = " " * indent
    for r in range(rows):
        w(f"{p}Half8 w{r} = wBatch[wRow{r}];")


def activation_loads(cap, rows, indent):
    p = " " * indent
    kind = "Half8" if rows == 8 else "ulong"
    view = "a8" if rows == 8 else "a4"
    for m in range(cap):
        w(f"{p}{kind} x{m} = {view}[xRow{m} + q];")


def products(cap, rows, indent):
    # Row r of K: its 8 weight values converted once, then for every row of A its activation times each of them, every
    # product its own FFMA into the column's sum (rows of K in order, so the sums do not depend on timing).
    p = " " * indent
    for r in range(rows):
        for j in range(8):
            w(f"{p}float v{r}_{j} = {half(weight_word(r, j), j % 2 == 1)};")
        for m in range(cap):
            w(f"{p}float a{m}_{r} = {half(activation_word(m, r, rows), r % 2 == 1)};")
            for j in range(8):
                w(f"{p}s{m}_{j} += a{m}_{r} * v{r}_{j};")


def body(cap, rows):
    n = 8 * cap
    kind = "Half8" if rows == 8 else "ulong"
    w(f"    /// <summary>The streamed 16-bit [K, N] body for up to {cap} row(s): {rows} rows of K per thread and batch (one {kind} of activations per row of A), {n} sums per thread.</summary>")
    w("    [MethodImpl(MethodImplOptions.AggressiveInlining)]")
    w(f"    private static void GemvKn16StreamRows{cap}(ArrayView<Half8> a8, ArrayView<ulong> a4, ArrayView<Half8> b8, ArrayView<ushort> bias, ArrayView<ushort> c, HalfGemvShape g, int bf16)")
    w("    {")
    slot_indices(w, COLUMN_LANES)
    w("        int n8 = g.N >> 3;")
    w(f"        int kv = g.K / {rows};")
    w("        // The ragged last slab: column vectors past N read the row's last vector; their sums are never stored. Activation")
    w("        // rows past M read row M - 1, likewise. Row offsets are int offsets from one view per batch (weight) or per")
    w("        // operand (activations); an empty inline-PTX use of each keeps them in registers ahead of the loop (ILGPU would")
    w("        // compute them next to their first use, inside it).")
    slab_offsets(w, COLUMN_LANES, rows, cap, "n8", "kv")
    zero_sums(w, cap, 8)
    w(f"        // Row slot s takes activation vectors ({rows} rows of K each) b * slots + s for batches b = 0, 1, ...: the 8 slots of")
    w(f"        // a 32-lane warp read {8 * rows} consecutive rows of the slab, each weight load instruction 8 whole 64-byte pieces. A")
    w("        // batch is whole for the warp while its last slot's vector is inside K; the loop bound is therefore the same for")
    w("        // all of the warp's lanes, so its barriers never diverge.")
    w("        int lastSlot = (((warp + 1) * ws) - 1) >> 2;")
    w("        int q = slot;")
    w("        int step = slots;")
    w("        int qWhole = kv - (lastSlot + 1 - slot);")
    w(f"        long wAt = ((long)q * {rows} * n8) + wCol;")
    w(f"        long wStep = (long)step * {rows} * n8;")
    w("        // Pinned ahead of the loop like the row offsets (ILGPU computed them inside the loop, every batch).")
    batch_loop(
        w, "b8", lambda: weight_loads(rows, 12), [f"w{r}.X" for r in range(rows)],
        ["An empty inline-PTX use of each vector keeps its load ahead of the fence (ILGPU places a load next to its",
         "first use). The warp barrier orders memory, so ptxas sinks no weight load below it and hoists no activation",
         "load above it: the batch's weight vectors leave in one burst (the DRAM round trip), then the activations",
         "(L1 / L2 hits), then the products."],
        lambda: activation_loads(cap, rows, 12), [f"x{m}.X" if rows == 8 else f"x{m}" for m in range(cap)],
        ["The activations in one burst too, so a batch does not wait for its activation rows one after another."],
        lambda: products(cap, rows, 12))
    w("        if (q < kv)")
    w("        {")
    w("            // The warp's last, partial batch: slots whose vector is inside K take it (a vector is all inside K, since K is")
    w(f"            // a multiple of {rows}), the others have no rows left.")
    w("            var wBatch = b8.SubView(wAt);")
    weight_loads(rows, 12)
    activation_loads(cap, rows, 12)
    products(cap, rows, 12)
    w("        }")
    w("")
    w("        // Sum over the warp's row slots (lanes 4, 8 and 16 apart hold the same columns) by halving: at each offset a lane")
    w("        // keeps one half of its sums and adds its partner's copy of that half, so 8 row slots reduce n sums in")
    w("        // n / 2 + n / 4 + n / 8 shuffles instead of 3 n. Afterwards the lane holds the warp totals of its columns' sums")
    w("        // first .. first + held - 1 (sum e is row e / 8, column 8 colLane + e % 8). Warps narrower than 8 row slots stop")
    w("        // early; warps of at most 4 lanes (one row slot or part of one) skip the shuffles.")
    halving_sums(w, sum_names(cap, 8), SHUFFLE_OFFSETS)
    store_sums(w, "GemvKn16StreamMaxHolders", sum_names(cap, 8), COLUMNS, COLUMN_LANES,
               "Epilogue(bias, g, row, col, sum, bf16)")
    w("    }")


file_header(w, "gen_gemv_kn16_stream.py", "HalfGemvKernels")
KERNEL = "<see cref=\"GemvKn16Stream{TRowsCap, TFormat}\"/>"
plan_constants(
    w,
    [(f"Output columns per group of {KERNEL}: 4 column lanes of 8 columns, a 64-byte piece per row of K.",
      "GemvKn16StreamColumns", COLUMNS),
     (f"Column lanes (threads side by side along N, one 16-byte weight vector each) of {KERNEL}: a row slot's threads.",
      "GemvKn16StreamColumnLanes", COLUMN_LANES),
     ([f"Most sum holders per group of {KERNEL} (the size of its shared sum buffer):",
       "a warp holds its row slots' sums, or a 4-thread row slot where warps are narrower."],
      "GemvKn16StreamMaxHolders", KN_STREAM_MAX_HOLDERS),
     (f"Most threads per group of {KERNEL} (its launch bound).", "GemvKn16StreamMaxThreads", KN_STREAM_MAX_THREADS)],
    "GemvKn16StreamRowsPerThread",
    f"Rows of K per thread and batch of {KERNEL} for a row cap of 1, 2, 4 or 8 (K must be a multiple of it).",
    CAPS, "Streamed 16-bit [K, N] GEMV row caps are 1, 2, 4 or 8.")
w("    /// <summary>")
w("    /// Streamed 16-bit decode GEMV for 1-8 rows, weight [K, N] (<c>GEMS_GEMV16_KN=stream</c>; notes and launch plan in")
w("    /// <see cref=\"HalfGemvKnStreamLaunch\"/>): a group owns a slab of 32 output columns and all of K, no split-K and no")
w("    /// second launch; products and sums in float32 (FMA, no tensor cores), the output rounded once with the 16-bit GEMV's")
w("    /// epilogue. N a multiple of 8 and the weight 16-byte aligned; K a multiple of 8 and A 16-byte aligned. A is passed as")
w("    /// 16-byte (<paramref name=\"a8\"/>, row caps 1-4) and 8-byte (<paramref name=\"a4\"/>, row cap 8) vectors of the same")
w("    /// memory. The group size (a multiple of 4 threads) is read from the launch.")
w("    /// </summary>")
w("    /// <param name=\"a8\">A [M, K] as 16-byte vectors.</param>")
w("    /// <param name=\"a4\">A [M, K] as 8-byte vectors.</param>")
w("    /// <param name=\"b8\">The weight [K, N] as 16-byte vectors.</param>")
w("    /// <param name=\"bias\">The bias ([N] or [M, N], per <see cref=\"HalfGemvShape.BiasStrideM\"/>), read when HasBias and Beta ≠ 0.</param>")
w("    /// <param name=\"c\">C [M, N].</param>")
w("    /// <param name=\"g\">The shape (M, N, K, Alpha, Beta, HasBias, BiasStrideM; the split-K fields are not read).</param>")
cap_entry(w, "GemvKn16Stream", CAPS,
          "ArrayView<Half8> a8, ArrayView<ulong> a4, ArrayView<Half8> b8, ArrayView<ushort> bias, ArrayView<ushort> c, HalfGemvShape g",
          "a8, a4, b8, bias, c, g, bf16", "GemvKn16StreamRows", formats=("Float16Storage", "BFloat16Storage"))
for cap, rows in CAPS.items():
    w("")
    body(cap, rows)
w("}")

write(out, "HalfGemvKernels.KnStream.g.cs")
