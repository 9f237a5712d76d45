#!/usr/bin/env python3
"""Generates src.Kernels/Ilgpu/GemmFastKernels.GemvNkStaged.g.cs: the float32 [N, K] GEMV for 9-16 rows with the
activations staged in shared memory (the default under the stream setting; GEMS_GEMV_F32_WIDE=stream turns it off). A group owns 16 weight rows
(output columns) and all of K; its 4 warps take 4 weight rows each, and a lane (h, j) multiplies activation rows
8h .. 8h + 7 by vector j of its warp's weight rows, so a lane holds 32 sums. The activations cross L2 -> SM once per
group and chunk of K (cp.async into two shared stages), not once per 4 weight rows. Every operand and sum is its own
variable (constant names: nothing indexed at run time, nothing in local memory). Launch plan and notes:
IlgpuKernels.GemvNkStagedF32.cs. Run: python3 src.Kernels/Ilgpu/Codegen/gen_gemv_nk_staged_f32.py"""
from gemv_codegen import halve, write

COLUMNS = 16          # weight rows (output columns) per group
WARPS = 4             # warps per group; warp w owns weight rows 4w .. 4w + 3
WARP_COLUMNS = COLUMNS // WARPS
HALF_ROWS = 8         # activation rows per lane half: rows 8h .. 8h + 7
ROWS = 2 * HALF_ROWS  # activation rows staged per chunk (the most the kernel takes)
CHUNK_VECTORS = 64    # 16-byte vectors of K per staged chunk (256 floats): 16 KB per stage at 16 rows
STAGES = 2
# Batches per burst (the kernel's type argument): a batch is one 16-byte vector per lane of each of the warp's weight
# rows (a warp reads half a warp of vectors, both lane halves the same ones); a burst requests this many batches at once
# before its products. Offline ptxas 11.8 (sm_90, 128 threads): 1 batch is 80 registers (6 groups per SM: 24 warps,
# 1 KB of weight each in flight); 2 batches are 118 (4 groups: 16 warps of 2 KB) and spill at 5 groups. Run 78 lost
# by trading warps for a deeper queue per warp, but there the warps also hid L2 activation reads that are now shared
# loads: both forms are built, `staged` (1) and `staged2` (2), for the GPU to decide.
BURSTS = [1, 2]
BURST = 1
SHUFFLE_OFFSETS = [1, 2, 4, 8, 16]
SHARED_FLOATS = STAGES * ROWS * CHUNK_VECTORS * 4
out = []
w = out.append


def sums(wc=WARP_COLUMNS):
    return [f"s{m}_{c}" for m in range(HALF_ROWS) for c in range(wc)]


def weight_loads(guard, indent):
    p = " " * indent
    for s in range(BURST):
        at = "v" if s == 0 else f"v + {s} * half" if s > 1 else "v + half"
        for c in range(WARP_COLUMNS):
            src = f"wBase[wRow{c} + {at}]"
            if guard:
                w(f"{p}Float4 w{s}_{c} = {at} < k4 ? {src} : default;")
            else:
                w(f"{p}Float4 w{s}_{c} = {src};")


def products(indent):
    p = " " * indent
    w(f"{p}// One view per batch, so a row's offset is a constant byte offset of its address (indexing the stage with")
    w(f"{p}// xAt + constant made a 32-bit add, a widening product and an address register per load).")
    for s in range(BURST):
        at = "xAt" if s == 0 else f"xAt + ({s} * half)" if s > 1 else "xAt + half"
        w(f"{p}// Batch {s} of the burst: this lane's 8 activation rows at its vector, from the staged chunk.")
        w(f"{p}var xs{s} = stage.SubView({at});")
        for m in range(HALF_ROWS):
            w(f"{p}Float4 x{s}_{m} = xs{s}[{m * CHUNK_VECTORS}];")
        for m in range(HALF_ROWS):
            for c in range(WARP_COLUMNS):
                for f in "XYZW":
                    w(f"{p}s{m}_{c} += x{s}_{m}.{f} * w{s}_{c}.{f};")


def burst(guard, indent):
    p = " " * indent
    weight_loads(guard, indent)
    w(f"{p}// As in the streamed kernel: an empty inline-PTX use of each weight vector keeps ILGPU from placing its load next")
    w(f"{p}// to its first product, and the warp barrier (it orders memory) keeps ptxas from sinking any below it: the")
    w(f"{p}// burst's weight requests leave together, ahead of the chunk barrier and the shared loads.")
    w(f"{p}if (CudaAsm.IsSupported)")
    w(f"{p}{{")
    for s in range(BURST):
        for c in range(WARP_COLUMNS):
            w(f"{p}    CudaAsm.Emit(\"// w %0\", w{s}_{c}.X);")
    w(f"{p}}}")
    w("")
    w(f"{p}Warp.Barrier();")
    w(f"{p}if (left == 0)")
    w(f"{p}{{")
    w(f"{p}    // A new chunk: its copies have landed (this thread's by the wait, the others' by the barrier), and every warp")
    w(f"{p}    // is done with the previous chunk, whose stage the copy of the next chunk now overwrites while this one is")
    w(f"{p}    // read. The burst's weight loads are already in flight across the barrier.")
    w(f"{p}    if (asyncCopy)")
    w(f"{p}    {{")
    w(f"{p}        CudaAsm.Emit(\"cp.async.wait_group 0;\");")
    w(f"{p}    }}")
    w("")
    w(f"{p}    Group.Barrier();")
    w(f"{p}    if (chunk + 1 < chunks)")
    w(f"{p}    {{")
    w(f"{p}        GemvNkStagedCopy(a4, stage, aPointer, asyncCopy, chunk + 1, k4, staged, tid, threads);")
    w(f"{p}    }}")
    w("")
    w(f"{p}    xAt = ((chunk & 1) * {ROWS * CHUNK_VECTORS}) + xRow;")
    w(f"{p}    chunk++;")
    w(f"{p}    left = burstsPerChunk;")
    w(f"{p}}}")
    w("")
    w(f"{p}left--;")
    products(indent)
    w(f"{p}xAt += step;")


def entry():
    w("    /// <summary>")
    w("    /// float32 decode GEMV for 9–16 rows, weight [N, K], with the activations staged in shared memory")
    w("    /// (the default; <c>GEMS_GEMV_F32_WIDE=staged2</c> the two-batch burst; notes and launch plan in <see cref=\"GemvNkStagedLaunch\"/>): a")
    w(f"    /// group owns {COLUMNS} weight rows (output columns) and all of K, warp w the weight rows {WARP_COLUMNS}w .. {WARP_COLUMNS}w + {WARP_COLUMNS - 1}; lane (h, j)")
    w(f"    /// of a warp multiplies activation rows {HALF_ROWS}h .. {HALF_ROWS}h + {HALF_ROWS - 1} by 16-byte vector j of a batch of those weight rows")
    w(f"    /// ({HALF_ROWS * WARP_COLUMNS} sums per lane), <typeparamref name=\"TBurst\"/> batches requested at once. The group copies A in chunks of")
    w(f"    /// {CHUNK_VECTORS * 4} floats per row into {STAGES} shared stages (cp.async on CUDA, <paramref name=\"aPointer\"/> the device address of")
    w("    /// a4[0]; 0 copies synchronously), one chunk ahead of the one read. One launch, no split-K; K a multiple of 4, both")
    w("    /// views 16-byte aligned, M of 1–16 (rows past M are neither staged nor stored), groups of 4 warps of an even warp")
    w(f"    /// size that divides {CHUNK_VECTORS}, with <see cref=\"GemvNkStagedSharedFloats\"/> floats of dynamic shared memory.")
    w("    /// </summary>")
    w("    [IlgpuKernel]")
    for b in BURSTS:
        w(f"    [IlgpuKernelVariant(typeof(Const{b}))]")
    w("    public static void GemvNkStagedF32<TBurst>(ArrayView<Float4> a4, ArrayView<Float4> b4, ArrayView<float> bias, ArrayView<float> c, GemvShape g, long aPointer)")
    w("        where TBurst : struct, IKernelConstant")
    w("    {")
    w("        int burst = default(TBurst).Value;")
    for i, b in enumerate(BURSTS):
        w(f"        {'if' if i == 0 else 'else if'} (burst == {b})")
        w("        {")
        w(f"            GemvNkStagedBody{b}(a4, b4, bias, c, g, aPointer);")
        w("        }")
    w("    }")


def kernel():
    n = HALF_ROWS * WARP_COLUMNS
    w("")
    w(f"    /// <summary>The staged [N, K] body requesting {BURST} batch{'es' if BURST > 1 else ''} of weight vectors at once.</summary>")
    w("    [MethodImpl(MethodImplOptions.AggressiveInlining)]")
    w(f"    private static void GemvNkStagedBody{BURST}(ArrayView<Float4> a4, ArrayView<Float4> b4, ArrayView<float> bias, ArrayView<float> c, GemvShape g, long aPointer)")
    w("    {")
    w("        var stage = SharedMemory.GetDynamic<float>().Cast<Float4>().AsAligned(16);")
    w("        bool asyncCopy = CudaAsm.IsSupported && aPointer != 0;")
    w("        int ws = Warp.WarpSize;")
    w("        int lane = Warp.LaneIdx;")
    w("        int warp = Warp.WarpIdx;")
    w("        int tid = Group.IdxX;")
    w("        int threads = Group.DimX;")
    w("        // Lane (h, j): h picks the half of the activation rows, j the vector of a batch. Both halves load the same")
    w("        // weight vectors (one address per pair of lanes in one instruction: no extra DRAM or L2 traffic).")
    w("        int half = ws >> 1;")
    w("        int h = lane >= half ? 1 : 0;")
    w("        int j = lane - (h * half);")
    w(f"        int n0 = Grid.IdxX * {COLUMNS};")
    w("        int k4 = g.K >> 2;")
    w(f"        int chunks = (k4 + {CHUNK_VECTORS - 1}) / {CHUNK_VECTORS};")
    w(f"        int burstsPerChunk = {CHUNK_VECTORS} / ({BURST} * half);")
    w(f"        int staged = g.M * {CHUNK_VECTORS};")
    w("        if (CudaAsm.IsSupported)")
    w("        {")
    w("            // Computed here, not at the chunk's entry in the loop, where ILGPU would place them (a division each chunk).")
    w("            CudaAsm.Emit(\"// chunks %0\", chunks);")
    w("            CudaAsm.Emit(\"// bursts %0\", burstsPerChunk);")
    w("        }")
    w("")
    w("        // Weight rows past N read row N - 1 (never stored); int offsets from the group's first row (at most 15 rows of")
    w("        // K), pinned ahead of the loop by an empty inline-PTX use as in the streamed kernel.")
    w("        var wBase = b4.SubView((long)n0 * k4);")
    w("        int wLast = g.N - 1 - n0;")
    for c in range(WARP_COLUMNS):
        w(f"        int wRow{c} = ((warp * {WARP_COLUMNS}) + {c} < wLast ? (warp * {WARP_COLUMNS}) + {c} : wLast) * k4;")
    w("        if (CudaAsm.IsSupported)")
    w("        {")
    for c in range(WARP_COLUMNS):
        w(f"            CudaAsm.Emit(\"// row %0\", wRow{c});")
    w("        }")
    w("")
    w(f"        // A stage holds {ROWS} rows of {CHUNK_VECTORS} vectors; this lane reads rows {HALF_ROWS}h + m at vector j of its batch.")
    w(f"        int xRow = (h * {HALF_ROWS * CHUNK_VECTORS}) + j;")
    w("        int xAt = xRow;")
    w("        int chunk = 0;")
    w("        int left = 0;")
    w("        GemvNkStagedCopy(a4, stage, aPointer, asyncCopy, 0, k4, staged, tid, threads);")
    for m in range(HALF_ROWS):
        w("        float " + ", ".join(f"s{m}_{c} = 0f" for c in range(WARP_COLUMNS)) + ";")
    w("")
    w(f"        // A burst is {BURST} batches of half a warp of vectors: the warp asks for {BURST} * 8 * ws contiguous bytes of each")
    w("        // of its weight rows at once. Chunks are whole bursts (the warp size divides the chunk).")
    w(f"        int step = {BURST} * half;")
    w("        int v = j;")
    w("        for (; v - j + step <= k4; v += step)")
    w("        {")
    burst(False, 12)
    w("        }")
    w("")
    w("        if (v - j < k4)")
    w("        {")
    w("            // The last, partial burst: weight vectors past K load as zero and the copy zero-filled the stage there, so a")
    w("            // padded product is 0 * 0, never a stale value times zero (Inf * 0 would be NaN).")
    burst(True, 12)
    w("        }")
    lane_sum_and_store()
    w("    }")


def lane_sum_and_store(wc=WARP_COLUMNS):
    """The end of every kernel here: the lane sum by halving over j, then each lane stores the totals it holds (`wc` weight
    rows per lane: 4, or 8 in the wide ring)."""
    n = HALF_ROWS * wc
    w("")
    w("        // Sum over the j lanes by halving (as the streamed kernel): at each offset below half a lane keeps one half of")
    w(f"        // its sums and adds its partner's copy of that half, so 16 lanes reduce {n} sums in {n // 2} + {n // 4} + {n // 8} + {n // 16}")
    w("        // shuffles. Afterwards the lane holds the totals of sums first .. first + held - 1 of its half's rows.")
    w("        int first = 0;")
    w(f"        int held = {n};")
    cur = sums(wc)
    for o in SHUFFLE_OFFSETS:
        if len(cur) < 2:
            break
        w(f"        if (half > {o})")
        w("        {")
        cur = halve(w, cur, o, "j")
        w("        }")
        w("")
    every = sums(wc)
    w(f"        // Sum e of a half is activation row e / {wc} of the half and weight row e % {wc} of the warp.")
    for i in range(n):
        cond = "" if i == 0 else f"held > {i}"
        if cond:
            w(f"        if ({cond})")
            w("        {")
            ind = "            "
        else:
            w("        {")
            ind = "            "
        w(f"{ind}int e = first + {i};")
        w(f"{ind}int row = (h * {HALF_ROWS}) + (e >> {wc.bit_length() - 1});")
        w(f"{ind}int col = n0 + (warp * {wc}) + (e & {wc - 1});")
        w(f"{ind}if (row < g.M && col < g.N)")
        w(f"{ind}{{")
        w(f"{ind}    c[((long)row * g.N) + col] = GemvEpilogue(bias, g, row, col, {every[i]});")
        w(f"{ind}}}")
        w("        }")
        w("")
    out.pop()


def copy():
    w("")
    w("    /// <summary>")
    w(f"    /// Copies chunk <paramref name=\"chunk\"/> of A's first M rows ({CHUNK_VECTORS} vectors each) into stage chunk % {STAGES}: vector e")
    w(f"    /// of the chunk (row e / {CHUNK_VECTORS}) to stage slot e, zeros past K; one commit group per chunk.")
    w("    /// </summary>")
    w("    [MethodImpl(MethodImplOptions.AggressiveInlining)]")
    w("    private static void GemvNkStagedCopy(ArrayView<Float4> a4, ArrayView<Float4> stage, long aPointer, bool asyncCopy, int chunk, int k4, int staged, int tid, int threads)")
    w("    {")
    w(f"        int slot = (chunk & 1) * {ROWS * CHUNK_VECTORS};")
    w(f"        int v0 = chunk * {CHUNK_VECTORS};")
    w("        for (int e = tid; e < staged; e += threads)")
    w("        {")
    w(f"            int v = v0 + (e & {CHUNK_VECTORS - 1});")
    w("            bool valid = v < k4;")
    w(f"            long src = ((long)(e >> {CHUNK_VECTORS.bit_length() - 1}) * k4) + (valid ? v : 0);")
    w("            if (asyncCopy)")
    w("            {")
    w("                // The stages start the dynamic shared memory; its symbol's address is taken inside the asm (an Output")
    w("                // operand would go through local memory). A source size of 0 zero-fills the vector past K.")
    w("                CudaAsm.Emit(\"{\\n\\t.reg .u64 gsrc;\\n\\t.reg .u32 sdst;\\n\\tcvta.to.global.u64 gsrc, %1;\\n\\tmov.u32 sdst, __dyn_shared_alloca;\\n\\tadd.u32 sdst, sdst, %0;\\n\\tcp.async.cg.shared.global [sdst], [gsrc], 16, %2;\\n\\t}\",")
    w("                    (uint)((slot + e) * 16), aPointer + (src * 16), valid ? 16u : 0u);")
    w("            }")
    w("            else")
    w("            {")
    w("                stage[slot + e] = valid ? a4[src] : default;")
    w("            }")
    w("        }")
    w("")
    w("        if (asyncCopy)")
    w("        {")
    w("            CudaAsm.Emit(\"cp.async.commit_group;\");")
    w("        }")
    w("    }")


# --- The ring variant (GEMS_GEMV_F32_WIDE=ring / ring3): the weight also goes through cp.async, into a per-warp ring of
# RING_STAGES stages in shared memory issued S - 1 bursts ahead, so weight bytes are in flight without registers while the
# warp multiplies an earlier burst. Same lane layout, sums and lane sum as the staged kernel.
RING_CHUNK = 32            # vectors of K per activation chunk (128 floats): 8 KB per stage at 16 rows, 2 stages
RING_ROW_VECTORS = 16      # a ring stage's row pitch: half a CUDA warp of 16-byte vectors (smaller warps use a prefix)
RING_STAGE_VECTORS = WARP_COLUMNS * RING_ROW_VECTORS   # 1 KB: one burst of the warp's 4 weight rows
A_STAGE_VECTORS = ROWS * RING_CHUNK
A_VECTORS = STAGES * A_STAGE_VECTORS
RING_STAGES = [3, 4]
RING_TYPES = {3: "GemvNkRingStages3", 4: "Const4"}
CUDA_CHUNK_BURSTS = RING_CHUNK // 16   # bursts per chunk at the CUDA warp size (32 lanes: halves of 16 vectors)


def ring_shared_bytes(stages):
    return 16 * (A_VECTORS + WARPS * stages * RING_STAGE_VECTORS)


def ring_entry():
    w("")
    w("    /// <summary>")
    w("    /// float32 decode GEMV for 9–16 rows, weight [N, K], with the activations staged in shared memory and the weight")
    w("    /// streamed through a per-warp ring of <typeparamref name=\"TStages\"/> shared stages by cp.async (<c>GEMS_GEMV_F32_WIDE=ring</c>:")
    w(f"    /// 4 stages, <c>ring3</c>: 3; notes and launch plan in <see cref=\"GemvNkRingLaunch\"/>). The lane layout, sums and lane sum")
    w("    /// are <see cref=\"GemvNkStagedF32{TBurst}\"/>'s; a warp keeps S − 1 bursts of its weight in flight in shared memory instead")
    w(f"    /// of one in registers. A in chunks of {RING_CHUNK * 4} floats per row, two stages. <paramref name=\"aPointer\"/> and")
    w("    /// <paramref name=\"bPointer\"/> are the device addresses of a4[0] and b4[0], required on CUDA (the simulator copies synchronously and ignores them). K a")
    w(f"    /// multiple of 4, both views 16-byte aligned, M of 1–16, groups of 4 warps of an even warp size of at most 32 that divides")
    w(f"    /// {RING_CHUNK}, with <see cref=\"GemvNkRingSharedFloats\"/> floats of dynamic shared memory.")
    w("    /// </summary>")
    w("    [IlgpuKernel]")
    for s in RING_STAGES:
        w(f"    [IlgpuKernelVariant(typeof({RING_TYPES[s]}))]")
    w("    public static void GemvNkRingF32<TStages>(ArrayView<Float4> a4, ArrayView<Float4> b4, ArrayView<float> bias, ArrayView<float> c, GemvShape g, long aPointer, long bPointer)")
    w("        where TStages : struct, IKernelConstant")
    w("    {")
    w("        int stages = default(TStages).Value;")
    for i, s in enumerate(RING_STAGES):
        w(f"        {'if' if i == 0 else 'else if'} (stages == {s})")
        w("        {")
        w(f"            GemvNkRingBody{s}(a4, b4, bias, c, g, aPointer, bPointer);")
        w("        }")
    w("    }")
    w("")
    w("    /// <summary>Dynamic shared memory of <see cref=\"GemvNkRingF32{TStages}\"/> in floats for <paramref name=\"stages\"/> ring stages.</summary>")
    w("    /// <param name=\"stages\">Ring stages per warp (3 or 4).</param>")
    w(f"    public static int GemvNkRingSharedFloats(int stages) => 4 * ({A_VECTORS} + ({WARPS} * stages * {RING_STAGE_VECTORS}));")


def ring_products(indent):
    p = " " * indent
    w(f"{p}// The burst's 8 activation and 4 weight vectors through one view each, so that a row's offset (A row m at + {RING_CHUNK} m")
    w(f"{p}// vectors, weight row c at + {RING_ROW_VECTORS} c) is a constant added to one 64-bit address, which ptxas folds into the")
    w(f"{p}// LDS immediate (indexing the whole view with base + constant made an add and a shift per load: the 32-bit sum could")
    w(f"{p}// wrap before the widening multiply). Inline-PTX loads would return their values through ILGPU's local output slots.")
    w(f"{p}var xs = shared.SubView(xAt);")
    w(f"{p}var wv = shared.SubView(wIn + slot);")
    for m in range(HALF_ROWS):
        w(f"{p}Float4 x{m} = xs[{m * RING_CHUNK}];")
    for c in range(WARP_COLUMNS):
        w(f"{p}Float4 w{c} = wv[{c * RING_ROW_VECTORS}];")
    for m in range(HALF_ROWS):
        for c in range(WARP_COLUMNS):
            for f in "XYZW":
                w(f"{p}s{m}_{c} += x{m}.{f} * w{c}.{f};")


def ring_prologue(columns):
    """The ring kernels' lane geometry and burst counts (a group covers `columns` weight rows)."""
    w("        int ws = Warp.WarpSize;")
    w("        int lane = Warp.LaneIdx;")
    w("        int warp = Warp.WarpIdx;")
    w("        int tid = Group.IdxX;")
    w("        int threads = Group.DimX;")
    w("        int half = ws >> 1;")
    w("        int h = lane >= half ? 1 : 0;")
    w("        int j = lane - (h * half);")
    w(f"        int n0 = Grid.IdxX * {columns};")
    w("        int k4 = g.K >> 2;")
    w("        int bursts = (k4 + half - 1) / half;")
    w(f"        int chunks = (k4 + {RING_CHUNK - 1}) / {RING_CHUNK};")
    w(f"        int chunkBursts = {RING_CHUNK} / half;")
    w(f"        int staged = g.M * {RING_CHUNK};")
    w("        if (CudaAsm.IsSupported)")
    w("        {")
    w("            // Computed here, ahead of the loop (ILGPU would otherwise place the divisions where they are first used).")
    w("            CudaAsm.Emit(\"// bursts %0\", bursts);")
    w("            CudaAsm.Emit(\"// chunks %0\", chunks);")
    w("            CudaAsm.Emit(\"// chunk bursts %0\", chunkBursts);")
    w("        }")


def ring_prologue_copies(S, stage_vectors, copy_w, rows, columns):
    """The ring kernels' first copies (chunk 0 of A, weight bursts 0 .. S - 2, one commit group each) and their sums."""
    w("        GemvNkRingCopyA(a4, shared, aPointer, asyncCopy, 0, k4, g.M, staged, tid, threads);")
    for t in range(S - 1):
        w(f"        {copy_w}(b4, shared, asyncCopy, {t}, wOut + {t * stage_vectors}, {rows}, half, j, k4);")
        w("        GemvNkRingCommit(asyncCopy);")
    for m in range(HALF_ROWS):
        w("        float " + ", ".join(f"s{m}_{c} = 0f" for c in range(columns)) + ";")


def ring_burst_loop(S, chunk_wait, stage_vectors, copy_w, rows, products):
    """The ring kernels' burst loop and closing wait: `copy_w` names the weight copy, `rows` its row arguments, and
    `products` emits one burst's FMAs."""
    w("        int slot = 0;")
    w("        int xAt = 0;")
    w("        int left = 0;")
    w("        int chunk = 0;")
    w("        for (int b = 0; b < bursts; b++)")
    w("        {")
    w("            if (left == 0)")
    w("            {")
    w("                // A chunk's first burst: this thread's copies of the chunk landed (they were committed with the burst")
    w(f"                // {CUDA_CHUNK_BURSTS} iterations back at 32 lanes, so at most {chunk_wait} newer group may stay pending), the group barrier makes")
    w("                // every thread's copies visible and frees the previous chunk's stage, which the next chunk now fills.")
    w("                if (asyncCopy)")
    w("                {")
    w(f"                    CudaAsm.Emit(\"cp.async.wait_group {chunk_wait};\");")
    w("                }")
    w("")
    w("                Group.Barrier();")
    w("                if (chunk + 1 < chunks)")
    w("                {")
    w("                    GemvNkRingCopyA(a4, shared, aPointer, asyncCopy, chunk + 1, k4, g.M, staged, tid, threads);")
    w("                }")
    w("")
    w(f"                xAt = ((chunk & 1) * {A_STAGE_VECTORS}) + xIn;")
    w("                chunk++;")
    w("                left = chunkBursts;")
    w("            }")
    w("            else")
    w("            {")
    w("                // Every lane is done reading burst b - 1's slot before the copy below overwrites it.")
    w("                Warp.Barrier();")
    w("            }")
    w("")
    w(f"            {copy_w}(b4, shared, asyncCopy, b + {S - 1}, wOut + (slot == 0 ? {(S - 1) * stage_vectors} : slot - {stage_vectors}), {rows}, half, j, k4);")
    w("            GemvNkRingCommit(asyncCopy);")
    w("            if (asyncCopy)")
    w("            {")
    w(f"                CudaAsm.Emit(\"cp.async.wait_group {S - 1};\");")
    w("            }")
    w("")
    w("            // Burst b's vectors, copied by every lane of the warp, are visible to all of them.")
    w("            Warp.Barrier();")
    w("            left--;")
    products(12)
    w("            xAt += half;")
    w(f"            slot = slot == {(S - 1) * stage_vectors} ? 0 : slot + {stage_vectors};")
    w("        }")
    w("")
    w("        // The prologue's copies past the last burst (zero-filled, never read) must land before the group's shared")
    w("        // memory is released.")
    w("        if (asyncCopy)")
    w("        {")
    w("            CudaAsm.Emit(\"cp.async.wait_all;\");")
    w("        }")


def ring_kernel(S):
    n = HALF_ROWS * WARP_COLUMNS
    chunk_wait = min(S - 1, CUDA_CHUNK_BURSTS - 1)
    w("")
    w(f"    /// <summary>The ring [N, K] body with {S} weight stages per warp ({S - 1} bursts in flight ahead of the one multiplied).</summary>")
    w("    [MethodImpl(MethodImplOptions.AggressiveInlining)]")
    w(f"    private static void GemvNkRingBody{S}(ArrayView<Float4> a4, ArrayView<Float4> b4, ArrayView<float> bias, ArrayView<float> c, GemvShape g, long aPointer, long bPointer)")
    w("    {")
    w("        var shared = SharedMemory.GetDynamic<float>().Cast<Float4>().AsAligned(16);")
    w("        // On CUDA the copies are always cp.async (the facade always passes both device addresses), so the PTX holds no")
    w("        // synchronous copy path and no run-time test of it in the loop; the simulator copies synchronously at the same places.")
    w("        bool asyncCopy = CudaAsm.IsSupported;")
    ring_prologue(COLUMNS)
    w("")
    w(f"        // This lane copies vector j of the warp's weight rows h and h + 2 into each ring stage (64 copies of 16 bytes per")
    w("        // burst at 32 lanes: two per lane, each instruction 2 × 256 contiguous bytes). Rows past N copy row N - 1 (never stored).")
    w("        int wLast = g.N - 1 - n0;")
    w(f"        int r0 = (warp * {WARP_COLUMNS}) + h;")
    w("        int r1 = r0 + 2;")
    w("        long wRow0 = (long)(n0 + (r0 < wLast ? r0 : wLast)) * k4;")
    w("        long wRow1 = (long)(n0 + (r1 < wLast ? r1 : wLast)) * k4;")
    w("        long wSrc0 = bPointer + (wRow0 * 16);")
    w("        long wSrc1 = bPointer + (wRow1 * 16);")
    w("")
    w(f"        // Shared memory in 16-byte vectors: A's two stages ({A_STAGE_VECTORS} each: {ROWS} rows × {RING_CHUNK}), then each warp's ring of")
    w(f"        // {S} stages of {RING_STAGE_VECTORS} ({WARP_COLUMNS} weight rows × {RING_ROW_VECTORS}). Every index below counts vectors from the dynamic base.")
    w(f"        int ring = {A_VECTORS} + (warp * {S * RING_STAGE_VECTORS});")
    w(f"        int wOut = ring + (h * {RING_ROW_VECTORS}) + j;")
    w("        int wIn = ring + j;")
    w(f"        int xIn = (h * {HALF_ROWS * RING_CHUNK}) + j;")
    w("")
    w(f"        // Prologue: chunk 0 of A with burst 0 in the first commit group, bursts 1 .. {S - 2} in one group each.")
    ring_prologue_copies(S, RING_STAGE_VECTORS, "GemvNkRingCopyW", "wRow0, wRow1, wSrc0, wSrc1", WARP_COLUMNS)
    w("")
    w("        // Iteration b multiplies burst b from ring slot `slot` and first sends burst b + " + f"{S - 1}" + " into the slot burst b - 1 used.")
    w("        // Commit group S - 1 + b holds that copy (and, at a chunk's first burst, the next chunk of A), so after the")
    w(f"        // iteration's commit, `wait_group {S - 1}` leaves bursts b + 1 .. b + {S - 1} in flight and burst b landed. A partial")
    w("        // last burst needs no other path: vectors past K are zero-filled in both the ring and the A stage (0 · 0).")
    ring_burst_loop(S, chunk_wait, RING_STAGE_VECTORS, "GemvNkRingCopyW", "wRow0, wRow1, wSrc0, wSrc1", ring_products)
    lane_sum_and_store()
    w("    }")


def ring_copies():
    w("")
    w("    /// <summary>")
    w(f"    /// Copies chunk <paramref name=\"chunk\"/> of A's first M rows ({RING_CHUNK} vectors each) into A stage chunk % 2 of the ring kernel:")
    w(f"    /// vector e of the chunk (row e / {RING_CHUNK}) to stage byte 16 e, zeros past K. No commit: the caller's next commit")
    w("    /// takes these copies into its group.")
    w("    /// </summary>")
    w("    [MethodImpl(MethodImplOptions.AggressiveInlining)]")
    w("    private static void GemvNkRingCopyA(ArrayView<Float4> a4, ArrayView<Float4> shared, long aPointer, bool asyncCopy, int chunk, int k4, int m, int staged, int tid, int threads)")
    w("    {")
    w(f"        int slot = (chunk & 1) * {A_STAGE_VECTORS};")
    w(f"        int v0 = chunk * {RING_CHUNK};")
    passes = ROWS * RING_CHUNK // (WARPS * 32)
    rows_per_pass = WARPS * 32 // RING_CHUNK
    w(f"        if (threads == {WARPS * 32})")
    w("        {")
    w(f"            // The CUDA group ({WARPS} warps of 32): thread t copies vector t % {RING_CHUNK} of rows t / {RING_CHUNK} + {rows_per_pass} i to stage vector")
    w(f"            // t + {WARPS * 32} i, i = 0 .. {passes - 1}: one validity test, one source, and constant shared offsets, instead of the")
    w(f"            // general loop's index arithmetic per vector. Rows past M are zero-filled (their sums are never stored).")
    w(f"            int row = tid >> {RING_CHUNK.bit_length() - 1};")
    w(f"            int v = v0 + (tid & {RING_CHUNK - 1});")
    w("            bool inside = v < k4;")
    w("            long src = ((long)row * k4) + (inside ? v : 0);")
    w(f"            long rowStep = {rows_per_pass}L * k4;")
    w("            int dst = slot + tid;")
    for i in range(passes):
        w(f"            bool copy{i} = inside && row + {i * rows_per_pass} < m;")
        w(f"            long src{i} = copy{i} ? src + ({i} * rowStep) : 0;")
    w("            if (asyncCopy)")
    w("            {")
    for i in range(passes):
        off = f"+{i * WARPS * 32 * 16}" if i else ""
        w(f"                CudaAsm.Emit(\"{{\\n\\t.reg .u64 gsrc;\\n\\t.reg .u32 sdst;\\n\\tcvta.to.global.u64 gsrc, %1;\\n\\tmov.u32 sdst, __dyn_shared_alloca;\\n\\tadd.u32 sdst, sdst, %0;\\n\\tcp.async.cg.shared.global [sdst{off}], [gsrc], 16, %2;\\n\\t}}\", (uint)(dst * 16), aPointer + (src{i} * 16), copy{i} ? 16u : 0u);")
    w("            }")
    w("            else")
    w("            {")
    for i in range(passes):
        w(f"                shared[dst + {i * WARPS * 32}] = copy{i} ? a4[src{i}] : default;")
    w("            }")
    w("")
    w("            return;")
    w("        }")
    w("")
    w("        // Other group sizes (the simulators' small warps): vector e of the chunk from row e / 32, rows past M not copied.")
    w("        for (int e = tid; e < staged; e += threads)")
    w("        {")
    w(f"            int v = v0 + (e & {RING_CHUNK - 1});")
    w("            bool valid = v < k4;")
    w(f"            long src = ((long)(e >> {RING_CHUNK.bit_length() - 1}) * k4) + (valid ? v : 0);")
    w("            int dst = slot + e;")
    w("            if (asyncCopy)")
    w("            {")
    w("                // As in the staged kernel: the shared symbol's address is taken inside the asm (an Output operand would go")
    w("                // through local memory); a source size of 0 zero-fills the vector past K.")
    w("                CudaAsm.Emit(\"{\\n\\t.reg .u64 gsrc;\\n\\t.reg .u32 sdst;\\n\\tcvta.to.global.u64 gsrc, %1;\\n\\tmov.u32 sdst, __dyn_shared_alloca;\\n\\tadd.u32 sdst, sdst, %0;\\n\\tcp.async.cg.shared.global [sdst], [gsrc], 16, %2;\\n\\t}\",")
    w("                    (uint)(dst * 16), aPointer + (src * 16), valid ? 16u : 0u);")
    w("            }")
    w("            else")
    w("            {")
    w("                shared[dst] = valid ? a4[src] : default;")
    w("            }")
    w("        }")
    w("    }")
    w("")
    w("    /// <summary>")
    w("    /// Copies burst <paramref name=\"burst\"/> of this lane's two weight rows (vector burst · half + j of rows h and h + 2 of the")
    w(f"    /// warp) to shared vectors <paramref name=\"dst\"/> and dst + {2 * RING_ROW_VECTORS}; zeros past K, the source clamped to the row's")
    w("    /// first vector there (a burst past the last one is all zeros and never read).")
    w("    /// </summary>")
    w("    [MethodImpl(MethodImplOptions.AggressiveInlining)]")
    w("    private static void GemvNkRingCopyW(ArrayView<Float4> b4, ArrayView<Float4> shared, bool asyncCopy, int burst, int dst, long wRow0, long wRow1, long wSrc0, long wSrc1, int half, int j, int k4)")
    w("    {")
    w("        int v = (burst * half) + j;")
    w("        bool valid = v < k4;")
    w("        int at = valid ? v : 0;")
    w("        if (asyncCopy)")
    w("        {")
    w(f"            CudaAsm.Emit(\"{{\\n\\t.reg .u64 g0, g1;\\n\\t.reg .u32 sdst;\\n\\tcvta.to.global.u64 g0, %1;\\n\\tcvta.to.global.u64 g1, %2;\\n\\tmov.u32 sdst, __dyn_shared_alloca;\\n\\tadd.u32 sdst, sdst, %0;\\n\\tcp.async.cg.shared.global [sdst], [g0], 16, %3;\\n\\tcp.async.cg.shared.global [sdst+{2 * RING_ROW_VECTORS * 16}], [g1], 16, %3;\\n\\t}}\",")
    w("                (uint)(dst * 16), wSrc0 + ((long)at * 16), wSrc1 + ((long)at * 16), valid ? 16u : 0u);")
    w("        }")
    w("        else")
    w("        {")
    w("            shared[dst] = valid ? b4[wRow0 + at] : default;")
    w(f"            shared[dst + {2 * RING_ROW_VECTORS}] = valid ? b4[wRow1 + at] : default;")
    w("        }")
    w("    }")
    w("")
    w("    /// <summary>Closes this thread's cp.async group (nothing on the simulator, whose copies are synchronous).</summary>")
    w("    [MethodImpl(MethodImplOptions.AggressiveInlining)]")
    w("    private static void GemvNkRingCommit(bool asyncCopy)")
    w("    {")
    w("        if (asyncCopy)")
    w("        {")
    w("            CudaAsm.Emit(\"cp.async.commit_group;\");")
    w("        }")
    w("    }")


# --- The wide ring (GEMS_GEMV_F32_WIDE=ring3w): ring3's activation stages, commit groups, waits and barriers, but each lane
# covers 8 weight rows instead of 4 (a warp 8, a group 32), so one LDS.128 of an activation vector feeds 32 FFMA instead
# of 16, a burst is 256 FFMA per lane against ring3's 128, and the per-burst and per-chunk overhead (waits, barriers,
# commit, slot arithmetic, the A chunk's copy) is spread over twice the weight. Run 88 read ring3 as issue-limited
# (41.5 M warp instructions, FFMA 54%).
WIDE_WARP_COLUMNS = 8                                   # weight rows per lane (and per warp)
WIDE_COLUMNS = WARPS * WIDE_WARP_COLUMNS                # 32 weight rows per group
WIDE_STAGE_VECTORS = WIDE_WARP_COLUMNS * RING_ROW_VECTORS   # 2 KB: one burst of the warp's 8 weight rows
WIDE_STAGES = [3]
WIDE_COPIES = WIDE_WARP_COLUMNS // 2                    # weight vectors a lane copies per burst: rows h, h + 2, h + 4, h + 6


def wide_entry():
    w("")
    w("    /// <summary>")
    w("    /// float32 decode GEMV for 9–16 rows, weight [N, K]: <see cref=\"GemvNkRingF32{TStages}\"/>'s cp.async weight ring and activation")
    w(f"    /// stages, with each lane covering {WIDE_WARP_COLUMNS} weight rows (<c>GEMS_GEMV_F32_WIDE=ring3w</c>; notes and launch plan in")
    w(f"    /// <see cref=\"GemvNkRingWideLaunch\"/>). A group owns {WIDE_COLUMNS} weight rows and all of K, warp w the rows {WIDE_WARP_COLUMNS}w .. {WIDE_WARP_COLUMNS}w + {WIDE_WARP_COLUMNS - 1};")
    w(f"    /// lane (h, j) multiplies activation rows {HALF_ROWS}h .. {HALF_ROWS}h + {HALF_ROWS - 1} by vector j of a burst of them ({HALF_ROWS * WIDE_WARP_COLUMNS} sums per lane), so")
    w(f"    /// each shared activation vector feeds {4 * WIDE_WARP_COLUMNS} FMAs. Each warp's ring holds <typeparamref name=\"TStages\"/> stages of {WIDE_STAGE_VECTORS * 16 // 1024} KB.")
    w("    /// <paramref name=\"aPointer\"/> and <paramref name=\"bPointer\"/> are the device addresses of a4[0] and b4[0], required on CUDA")
    w("    /// (the simulator copies synchronously and ignores them). K a multiple of 4, both views 16-byte aligned, M of 1–16, groups")
    w(f"    /// of {WARPS} warps of an even warp size of at most 32 that divides {RING_CHUNK}, with <see cref=\"GemvNkRingWideSharedFloats\"/> floats")
    w("    /// of dynamic shared memory.")
    w("    /// </summary>")
    w("    [IlgpuKernel]")
    for s in WIDE_STAGES:
        w(f"    [IlgpuKernelVariant(typeof({RING_TYPES[s]}))]")
    w("    public static void GemvNkRingWideF32<TStages>(ArrayView<Float4> a4, ArrayView<Float4> b4, ArrayView<float> bias, ArrayView<float> c, GemvShape g, long aPointer, long bPointer)")
    w("        where TStages : struct, IKernelConstant")
    w("    {")
    w("        int stages = default(TStages).Value;")
    for i, s in enumerate(WIDE_STAGES):
        w(f"        {'if' if i == 0 else 'else if'} (stages == {s})")
        w("        {")
        w(f"            GemvNkRingWideBody{s}(a4, b4, bias, c, g, aPointer, bPointer);")
        w("        }")
    w("    }")
    w("")
    w(f"    /// <summary>Weight rows (output columns) per group of <see cref=\"GemvNkRingWideF32{{TStages}}\"/>.</summary>")
    w(f"    public const int GemvNkRingWideColumns = {WIDE_COLUMNS};")
    w("")
    w("    /// <summary>Dynamic shared memory of <see cref=\"GemvNkRingWideF32{TStages}\"/> in floats for <paramref name=\"stages\"/> ring stages.</summary>")
    w("    /// <param name=\"stages\">Ring stages per warp (3).</param>")
    w(f"    public static int GemvNkRingWideSharedFloats(int stages) => 4 * ({A_VECTORS} + ({WARPS} * stages * {WIDE_STAGE_VECTORS}));")


def wide_products(indent):
    p = " " * indent
    wc = WIDE_WARP_COLUMNS
    w(f"{p}// One view each for the burst's weight and activation vectors (immediate LDS offsets, as in ring3). The {wc} weight")
    w(f"{p}// vectors stay in registers for the burst; each activation vector is loaded once and meets all {wc} of them.")
    w(f"{p}var xs = shared.SubView(xAt);")
    w(f"{p}var wv = shared.SubView(wIn + slot);")
    for c in range(wc):
        w(f"{p}Float4 w{c} = wv[{c * RING_ROW_VECTORS}];")
    for m in range(HALF_ROWS):
        w(f"{p}Float4 x{m} = xs[{m * RING_CHUNK}];")
        for c in range(wc):
            for f in "XYZW":
                w(f"{p}s{m}_{c} += x{m}.{f} * w{c}.{f};")


def wide_kernel(S):
    wc = WIDE_WARP_COLUMNS
    chunk_wait = min(S - 1, CUDA_CHUNK_BURSTS - 1)
    w("")
    w(f"    /// <summary>The wide ring [N, K] body with {S} weight stages per warp ({S - 1} bursts of {WIDE_STAGE_VECTORS * 16 // 1024} KB in flight ahead of the one multiplied).</summary>")
    w("    [MethodImpl(MethodImplOptions.AggressiveInlining)]")
    w(f"    private static void GemvNkRingWideBody{S}(ArrayView<Float4> a4, ArrayView<Float4> b4, ArrayView<float> bias, ArrayView<float> c, GemvShape g, long aPointer, long bPointer)")
    w("    {")
    w("        var shared = SharedMemory.GetDynamic<float>().Cast<Float4>().AsAligned(16);")
    w("        // As in ring3: on CUDA the copies are always cp.async, the simulator copies synchronously at the same places.")
    w("        bool asyncCopy = CudaAsm.IsSupported;")
    ring_prologue(WIDE_COLUMNS)
    w("")
    w(f"        // This lane copies vector j of the warp's weight rows h, h + 2, h + 4 and h + 6 into each ring stage ({WIDE_COPIES} copies of")
    w(f"        // 16 bytes per lane and burst; each warp instruction moves 2 × 256 contiguous bytes). Rows past N copy row N - 1 (never stored).")
    w("        int wLast = g.N - 1 - n0;")
    w(f"        int r0 = (warp * {wc}) + h;")
    for i in range(1, WIDE_COPIES):
        w(f"        int r{i} = r0 + {2 * i};")
    for i in range(WIDE_COPIES):
        w(f"        long wRow{i} = (long)(n0 + (r{i} < wLast ? r{i} : wLast)) * k4;")
    for i in range(WIDE_COPIES):
        w(f"        long wSrc{i} = bPointer + (wRow{i} * 16);")
    w("")
    w(f"        // Shared memory in 16-byte vectors: A's two stages ({A_STAGE_VECTORS} each: {ROWS} rows × {RING_CHUNK}), then each warp's ring of")
    w(f"        // {S} stages of {WIDE_STAGE_VECTORS} ({wc} weight rows × {RING_ROW_VECTORS}). Every index below counts vectors from the dynamic base.")
    w(f"        int ring = {A_VECTORS} + (warp * {S * WIDE_STAGE_VECTORS});")
    w(f"        int wOut = ring + (h * {RING_ROW_VECTORS}) + j;")
    w("        int wIn = ring + j;")
    w(f"        int xIn = (h * {HALF_ROWS * RING_CHUNK}) + j;")
    w("")
    copy_args = ", ".join(f"wRow{i}" for i in range(WIDE_COPIES)) + ", " + ", ".join(f"wSrc{i}" for i in range(WIDE_COPIES))
    w(f"        // Prologue (ring3's): chunk 0 of A with burst 0 in the first commit group, bursts 1 .. {S - 2} in one group each.")
    ring_prologue_copies(S, WIDE_STAGE_VECTORS, "GemvNkRingWideCopyW", copy_args, wc)
    w("")
    w(f"        // Ring3's schedule: iteration b sends burst b + {S - 1} into the slot burst b - 1 used, commits one group, waits until")
    w(f"        // burst b landed (`wait_group {S - 1}`), then multiplies it. Vectors past K are zero-filled in the ring and the A stage.")
    ring_burst_loop(S, chunk_wait, WIDE_STAGE_VECTORS, "GemvNkRingWideCopyW", copy_args, wide_products)
    lane_sum_and_store(wc)
    w("    }")


def wide_copy():
    rows = ", ".join(f"long wRow{i}" for i in range(WIDE_COPIES))
    srcs = ", ".join(f"long wSrc{i}" for i in range(WIDE_COPIES))
    pitch = 2 * RING_ROW_VECTORS
    w("")
    w("    /// <summary>")
    w(f"    /// Copies burst <paramref name=\"burst\"/> of this lane's {WIDE_COPIES} weight rows of the wide ring (vector burst · half + j of rows")
    w(f"    /// h, h + 2, h + 4, h + 6 of the warp) to shared vectors <paramref name=\"dst\"/> + {pitch} i; zeros past K, the source clamped")
    w("    /// to the row's first vector there (a burst past the last one is all zeros and never read).")
    w("    /// </summary>")
    w("    [MethodImpl(MethodImplOptions.AggressiveInlining)]")
    w(f"    private static void GemvNkRingWideCopyW(ArrayView<Float4> b4, ArrayView<Float4> shared, bool asyncCopy, int burst, int dst, {rows}, {srcs}, int half, int j, int k4)")
    w("    {")
    w("        int v = (burst * half) + j;")
    w("        bool valid = v < k4;")
    w("        long at = (valid ? v : 0) * 16L;")
    w("        if (asyncCopy)")
    w("        {")
    w("            // One asm block: one shared address (the symbol's, taken inside the asm as in ring3) and immediate offsets for the rows.")
    regs = ", ".join(f"g{i}" for i in range(WIDE_COPIES))
    body = f"{{\\n\\t.reg .u64 {regs};\\n\\t.reg .u32 sdst;\\n\\t"
    for i in range(WIDE_COPIES):
        body += f"cvta.to.global.u64 g{i}, %{i + 1};\\n\\t"
    body += "mov.u32 sdst, __dyn_shared_alloca;\\n\\tadd.u32 sdst, sdst, %0;\\n\\t"
    for i in range(WIDE_COPIES):
        off = f"+{i * pitch * 16}" if i else ""
        body += f"cp.async.cg.shared.global [sdst{off}], [g{i}], 16, %{WIDE_COPIES + 1};\\n\\t"
    body += "}"
    args = ", ".join(f"wSrc{i} + at" for i in range(WIDE_COPIES))
    w(f"            CudaAsm.Emit(\"{body}\",")
    w(f"                (uint)(dst * 16), {args}, valid ? 16u : 0u);")
    w("        }")
    w("        else")
    w("        {")
    w("            int vi = valid ? v : 0;")
    for i in range(WIDE_COPIES):
        off = f" + {i * pitch}" if i else ""
        w(f"            shared[dst{off}] = valid ? b4[wRow{i} + vi] : default;")
    w("        }")
    w("    }")


w("// <auto-generated/> by src.Kernels/Ilgpu/Codegen/gen_gemv_nk_staged_f32.py: edit the generator, not this file.")
w("using System.Runtime.CompilerServices;")
w("using ILGPU;")
w("using ILGPU.Runtime;")
w("using ILGPU.Runtime.Cuda;")
w("")
w("namespace GemsInjector.Kernels.Ilgpu;")
w("")
w("internal static partial class GemmFastKernels")
w("{")
w("    /// <summary>Weight rows (output columns) per group of <see cref=\"GemvNkStagedF32{TBurst}\"/>.</summary>")
w(f"    public const int GemvNkStagedColumns = {COLUMNS};")
w("")
w(f"    /// <summary>Warps per group of <see cref=\"GemvNkStagedF32{{TBurst}}\"/> (each owns {WARP_COLUMNS} of the group's weight rows).</summary>")
w(f"    public const int GemvNkStagedWarps = {WARPS};")
w("")
w(f"    /// <summary>Most activation rows of <see cref=\"GemvNkStagedF32{{TBurst}}\"/> (two lane halves of {HALF_ROWS}).</summary>")
w(f"    public const int GemvNkStagedMaxRows = {ROWS};")
w("")
w(f"    /// <summary>16-byte vectors of K per staged chunk of <see cref=\"GemvNkStagedF32{{TBurst}}\"/> (a warp size must divide it).</summary>")
w(f"    public const int GemvNkStagedChunkVectors = {CHUNK_VECTORS};")
w("")
w(f"    /// <summary>Dynamic shared memory of <see cref=\"GemvNkStagedF32{{TBurst}}\"/> in floats: {STAGES} stages of {ROWS} rows × {CHUNK_VECTORS * 4} floats ({SHARED_FLOATS * 4 // 1024} KB).</summary>")
w(f"    public const int GemvNkStagedSharedFloats = {SHARED_FLOATS};")
w("")
entry()
for BURST in BURSTS:
    kernel()
copy()
ring_entry()
for S in RING_STAGES:
    ring_kernel(S)
ring_copies()
wide_entry()
for S in WIDE_STAGES:
    wide_kernel(S)
wide_copy()
w("}")

write(out, "GemmFastKernels.GemvNkStaged.g.cs")
