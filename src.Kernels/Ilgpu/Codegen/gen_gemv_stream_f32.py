#!/usr/bin/env python3
"""Generates src.Kernels/Ilgpu/GemmFastKernels.GemvStream.g.cs: the streamed float32 [N, K] GEMV for 1-16 rows
(the default, GEMS_GEMV_F32_VARIANT unset or stream). One straight-line body per row cap, every operand and sum its
own variable (constant names, so nothing is indexed at run time and nothing lands in local memory); the kernel picks
the body from its row-cap type argument, which folds the others away. Launch plan and notes: IlgpuKernels.GemvStreamF32.cs.
Run: python3 src.Kernels/Ilgpu/Codegen/gen_gemv_stream_f32.py"""
from gemv_codegen import cap_entry, warp_sums_to_columns, write

# Row cap -> weight rows (output columns) per group. Per lane a batch holds columns x 4 weight floats, cap x 4
# activation floats and cap x columns sums; 8 columns keep the activation re-reads at an eighth / a quarter / half of
# the weight's bytes for 1 / 2 / 4 rows, 4 columns keep 8 / 16 rows near 96 / 150 registers (8 columns at 16 rows would need 128 sums).
CAPS = {1: 8, 2: 8, 4: 8, 8: 4, 16: 4}
SHUFFLE_OFFSETS = [1, 2, 4, 8, 16]
# Most activation rows loaded in one fenced burst: 8 rows are 32 registers; all 16 at once put the 16-row body at 218
# registers (offline ptxas).
ROW_BURST = 8
out = []
w = out.append


def sums(cap, cols):
    return [f"s{m}_{c}" for m in range(cap) for c in range(cols)]


def loads(cap, cols, guard, indent):
    weight_loads(cols, guard, indent)
    activation_loads(range(cap), guard, indent)


def weight_loads(cols, guard, indent):
    p = " " * indent
    for c in range(cols):
        src = f"wBase[wRow{c} + v]"
        w(f"{p}Float4 w{c} = {'valid ? ' + src + ' : default' if guard else src};")


def activation_loads(rows, guard, indent):
    p = " " * indent
    for m in rows:
        src = f"a4[xRow{m} + v]"
        w(f"{p}Float4 x{m} = {'valid ? ' + src + ' : default' if guard else src};")


def products(rows, cols, indent):
    p = " " * indent
    for m in rows:
        for c in range(cols):
            for f in "XYZW":
                w(f"{p}s{m}_{c} += x{m}.{f} * w{c}.{f};")


def body(cap, cols):
    n = cap * cols
    w(f"    /// <summary>The streamed [N, K] body for up to {cap} rows: {cols} weight rows per group, {n} sums per lane.</summary>")
    w("    [MethodImpl(MethodImplOptions.AggressiveInlining)]")
    w(f"    private static void GemvNkStreamRows{cap}(ArrayView<Float4> a4, ArrayView<Float4> b4, ArrayView<float> bias, ArrayView<float> c, GemvShape g)")
    w("    {")
    w("        int ws = Warp.WarpSize;")
    w("        int lane = Warp.LaneIdx;")
    w("        int warp = Warp.WarpIdx;")
    w("        int warps = Group.DimX / ws;")
    w(f"        int n0 = Grid.IdxX * {cols};")
    w("        int k4 = g.K >> 2;")
    w("        // Weight rows past N read row N - 1 and activation rows past M row M - 1: their sums are never stored. Rows are")
    w("        // int offsets from one view per operand (at most 15 rows of K: small), so a load is an add and one address")
    w("        // product. ILGPU would compute the offsets inside the loop, next to their first use (and ptxas then redid them")
    w("        // every batch): an empty inline-PTX use of each here keeps them in registers ahead of the loop.")
    w("        var wBase = b4.SubView((long)n0 * k4);")
    w("        int wLast = g.N - 1 - n0;")
    w("        int wRow0 = 0;")
    for c in range(1, cols):
        w(f"        int wRow{c} = ({c} < wLast ? {c} : wLast) * k4;")
    w("        int xRow0 = 0;")
    for m in range(1, cap):
        w(f"        int xRow{m} = ({m} < g.M ? {m} : g.M - 1) * k4;")
    w("        if (CudaAsm.IsSupported)")
    w("        {")
    for c in range(1, cols):
        w(f"            CudaAsm.Emit(\"// row %0\", wRow{c});")
    for m in range(1, cap):
        w(f"            CudaAsm.Emit(\"// row %0\", xRow{m});")
    w("        }")
    w("")
    for m in range(cap):
        w("        float " + ", ".join(f"s{m}_{c} = 0f" for c in range(cols)) + ";")
    w("        // Warp w takes batches w, w + warps, ...: a batch is one 16-byte vector per lane of every row, so the warp")
    w("        // asks for 16 * ws contiguous bytes of each of its weight rows at once.")
    w("        int stride = warps * ws;")
    w("        int v = (warp * ws) + lane;")
    w("        if (CudaAsm.IsSupported)")
    w("        {")
    w("            CudaAsm.Emit(\"// stride %0\", stride);")
    w("        }")
    w("")
    w("        for (; v - lane + ws <= k4; v += stride)")
    w("        {")
    weight_loads(cols, False, 12)
    w("            // ILGPU places a load next to its first use, which would put the weight loads behind the fence among the")
    w("            // products: an empty inline-PTX use of each vector keeps it ahead. The warp barrier orders memory, so ptxas")
    w("            // can sink no weight load below it and hoist no activation load above it: the batch's weight vectors are all")
    w("            // requested in one burst (the DRAM round trip), then the activations (L1 / L2 hits), then the products.")
    w("            if (CudaAsm.IsSupported)")
    w("            {")
    for c in range(cols):
        w(f"                CudaAsm.Emit(\"// w %0\", w{c}.X);")
    w("            }")
    w("")
    w("            Warp.Barrier();")
    w("")
    w("            // The activations in one burst too: left to itself ptxas issued one row's load per group of products, so a")
    w("            // batch waited for its activation rows one after another.")
    activation_loads(range(cap), False, 12)
    w("            if (CudaAsm.IsSupported)")
    w("            {")
    for m in range(cap):
        w(f"                CudaAsm.Emit(\"// x %0\", x{m}.X);")
    w("            }")
    w("")
    if cap <= ROW_BURST:
        w("            Warp.Barrier();")
    else:
        w(f"            // No second fence above {ROW_BURST} rows: fenced, ptxas kept all 16 activation vectors live with the weights (218")
        w("            // registers offline, spills when held to 128); unfenced it issues about half of them at once and the rest as")
        w("            // the first rows' products free their registers.")
    products(range(cap), cols, 12)
    w("        }")
    w("")
    w("        if (v - lane < k4)")
    w("        {")
    w("            // The last, partial batch: both operands are zero past K, so a product there is 0 * 0, never a stale value")
    w("            // times zero (Inf * 0 would be NaN).")
    w("            bool valid = v < k4;")
    loads(cap, cols, True, 12)
    products(range(cap), cols, 12)
    w("        }")
    w("")
    warp_sums_to_columns(w, sums(cap, cols), cols, SHUFFLE_OFFSETS, "GemvNkStreamMaxWarps", "GemvEpilogue(bias, g, row, col, sum)")
    w("    }")


w("// <auto-generated/> by src.Kernels/Ilgpu/Codegen/gen_gemv_stream_f32.py: edit the generator, not this file.")
w("using System.Runtime.CompilerServices;")
w("using ILGPU;")
w("using ILGPU.Runtime.Cuda;")
w("")
w("namespace GemsInjector.Kernels.Ilgpu;")
w("")
w("internal static partial class GemmFastKernels")
w("{")
w("    /// <summary>Most warps per group of <see cref=\"GemvNkStreamF32{TRowsCap}\"/> (the size of its shared sum buffer).</summary>")
w("    public const int GemvNkStreamMaxWarps = 8;")
w("")
w("    /// <summary>Weight rows (output columns) per group of <see cref=\"GemvNkStreamF32{TRowsCap}\"/> for a row cap of 1, 2, 4, 8 or 16.</summary>")
w("    public static int GemvNkStreamColumns(int rowsCap) => rowsCap switch")
w("    {")
for cap, cols in CAPS.items():
    w(f"        {cap} => {cols},")
w("        _ => throw new System.ArgumentOutOfRangeException(nameof(rowsCap), rowsCap, \"Streamed [N, K] GEMV row caps are 1, 2, 4, 8 or 16.\"),")
w("    };")
w("")
w("    /// <summary>")
w("    /// Streamed float32 decode GEMV for 1-16 rows, weight [N, K] (the default; <c>GEMS_GEMV_F32_VARIANT=pipe</c> or")
w("    /// <c>vec</c> picks the others; notes and launch plan in <see cref=\"GemvNkStreamLaunch\"/>): a group owns a few weight")
w("    /// rows (output columns) and all of K, no split-K and no second launch. K a multiple of 4, both views 16-byte")
w("    /// aligned; the group size is read from the launch.")
w("    /// </summary>")
cap_entry(w, "GemvNkStreamF32", CAPS, "ArrayView<Float4> a4, ArrayView<Float4> b4, ArrayView<float> bias, ArrayView<float> c, GemvShape g",
          "a4, b4, bias, c, g", "GemvNkStreamRows")
for cap, cols in CAPS.items():
    w("")
    body(cap, cols)
w("}")

write(out, "GemmFastKernels.GemvStream.g.cs")
