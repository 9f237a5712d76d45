#!/usr/bin/env python3
"""Generates src.Kernels/Ilgpu/HalfGemvKernels.NkStream.g.cs: the streamed 16-bit (float16 / bfloat16) [N, K] GEMV for
1-8 rows (GEMS_GEMV16_NK unset or stream: 1-4 rows, the default since H200 Run 86; stream8: 1-8 rows). The float32 counterpart is
gen_gemv_stream_f32.py, whose layout this keeps: a group owns C weight rows and all of K, one straight-line body per row
cap, every operand and sum its own variable (constant names, so nothing is indexed at run time and nothing lands in
local memory); the kernel picks the body from its row-cap type argument, which folds the others away. Launch plan and
notes: IlgpuKernels.HalfGemvNkStream.cs.
Run: python3 src.Kernels/Ilgpu/Codegen/gen_gemv_nk16_stream.py"""
from gemv_codegen import nk_stream_prologue, warp_sums_to_columns, write

# Row cap -> weight rows (output columns) per group. A batch is one 16-byte vector (8 values) per lane of each weight row
# and of each activation row: C x 16 bytes of weight per lane (4 KB per warp at C = 8, the float32 kernel's burst), 4C
# packed weight words, 4 x cap packed activation words and C x cap float sums. The products go value by value (all
# weight rows' and activation rows' value j converted, then their C x cap FFMA), so besides the packed words only C + cap
# converted values are live: 1 / 2 / 4 rows at C = 8 hold 32 + 4 cap + 8 cap + 8 + cap words (~50 / 70 / 100 with
# addresses); 8 rows at C = 8 would be 32 + 32 + 64 + 16 = 144 (fewer than 16 warps per SM), so 8 rows take C = 4
# (16 + 32 + 32 + 12), as the float32 kernel does.
CAPS = {1: 8, 2: 8, 4: 8, 8: 4}
# Most warps per group: 8 (256 threads, the launch bound; also the shared sum buffer's size).
MAX_WARPS = 8
SHUFFLE_OFFSETS = [1, 2, 4, 8, 16]
WORDS = "XYZW"
out = []
w = out.append


def sums(cap, cols):
    return [f"s{m}_{c}" for m in range(cap) for c in range(cols)]


def half(word_expr, upper):
    return f"{'High' if upper else 'Low'}({word_expr}, bf16)"


def weight_loads(cols, guard, indent):
    p = " " * indent
    for c in range(cols):
        src = f"wBase[wRow{c} + v]"
        w(f"{p}Half8 w{c} = {'valid ? ' + src + ' : default' if guard else src};")


def activation_loads(cap, guard, indent):
    p = " " * indent
    for m in range(cap):
        src = f"a8[xRow{m} + v]"
        w(f"{p}Half8 x{m} = {'valid ? ' + src + ' : default' if guard else src};")


def products(cap, cols, indent):
    # Value j of the vector (K index 8v + j): each weight row's and each activation row's value converted once, then every
    # product its own FFMA into its sum, values in K order (so the sums do not depend on timing).
    p = " " * indent
    for j in range(8):
        word = WORDS[j // 2]
        for c in range(cols):
            w(f"{p}float v{c}_{j} = {half(f'w{c}.{word}', j % 2 == 1)};")
        for m in range(cap):
            w(f"{p}float a{m}_{j} = {half(f'x{m}.{word}', j % 2 == 1)};")
        for m in range(cap):
            for c in range(cols):
                w(f"{p}s{m}_{c} += a{m}_{j} * v{c}_{j};")


def body(cap, cols):
    n = cap * cols
    w(f"    /// <summary>The streamed 16-bit [N, K] body for up to {cap} row(s): {cols} weight rows per group, {n} sums per lane.</summary>")
    w("    [MethodImpl(MethodImplOptions.AggressiveInlining)]")
    w(f"    private static void GemvNk16StreamRows{cap}(ArrayView<Half8> a8, ArrayView<Half8> b8, ArrayView<ushort> bias, ArrayView<ushort> c, HalfGemvShape g, int bf16)")
    w("    {")
    nk_stream_prologue(w, cap, cols, "b8", "k8", 3, 7, [
        "        // asks for 16 * ws contiguous bytes of each of its weight rows at once. A batch is whole for the warp while its",
        "        // last lane's vector is inside K; the loop bound is therefore the same for all of the warp's lanes, so its",
        "        // barriers never diverge."])
    w("        for (; v - lane + ws <= k8; v += stride)")
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
    w("            // The activations in one burst too, so a batch does not wait for its activation rows one after another.")
    activation_loads(cap, False, 12)
    w("            if (CudaAsm.IsSupported)")
    w("            {")
    for m in range(cap):
        w(f"                CudaAsm.Emit(\"// x %0\", x{m}.X);")
    w("            }")
    w("")
    w("            Warp.Barrier();")
    products(cap, cols, 12)
    w("        }")
    w("")
    w("        if (v - lane < k8)")
    w("        {")
    w("            // The warp's last, partial batch: lanes past K load zero for both operands (K is a multiple of 8, so a")
    w("            // vector is all inside K or all past it), so a padded product is 0 * 0, never a stale value times zero")
    w("            // (Inf * 0 would be NaN).")
    w("            bool valid = v < k8;")
    weight_loads(cols, True, 12)
    activation_loads(cap, True, 12)
    products(cap, cols, 12)
    w("        }")
    w("")
    warp_sums_to_columns(w, sums(cap, cols), cols, SHUFFLE_OFFSETS, "GemvNk16StreamMaxWarps", "Epilogue(bias, g, row, col, sum, bf16)")
    w("    }")


w("// <auto-generated/> by src.Kernels/Ilgpu/Codegen/gen_gemv_nk16_stream.py: edit the generator, not this file.")
w("using System.Runtime.CompilerServices;")
w("using ILGPU;")
w("using ILGPU.Runtime.Cuda;")
w("")
w("namespace GemsInjector.Kernels.Ilgpu;")
w("")
w("internal static partial class HalfGemvKernels")
w("{")
w("    /// <summary>Most warps per group of <see cref=\"GemvNk16Stream{TRowsCap, TFormat}\"/> (its launch bound and the size of its shared sum buffer).</summary>")
w(f"    public const int GemvNk16StreamMaxWarps = {MAX_WARPS};")
w("")
w("    /// <summary>Weight rows (output columns) per group of <see cref=\"GemvNk16Stream{TRowsCap, TFormat}\"/> for a row cap of 1, 2, 4 or 8.</summary>")
w("    public static int GemvNk16StreamColumns(int rowsCap) => rowsCap switch")
w("    {")
for cap, cols in CAPS.items():
    w(f"        {cap} => {cols},")
w("        _ => throw new System.ArgumentOutOfRangeException(nameof(rowsCap), rowsCap, \"Streamed 16-bit [N, K] GEMV row caps are 1, 2, 4 or 8.\"),")
w("    };")
w("")
w("    /// <summary>")
w("    /// Streamed 16-bit decode GEMV for 1-8 rows, weight [N, K] (<c>GEMS_GEMV16_NK=stream</c> or <c>stream8</c>; notes and")
w("    /// launch plan in <see cref=\"HalfGemvNkStreamLaunch\"/>): a group owns a few weight rows (output columns) and all of")
w("    /// K, no split-K and no second launch; products and sums in float32 (FMA, no tensor cores), the output rounded once")
w("    /// with the 16-bit GEMV's epilogue. K a multiple of 8, A and the weight 16-byte aligned; the group size (whole warps)")
w("    /// is read from the launch.")
w("    /// </summary>")
w("    /// <param name=\"a8\">A [M, K] as 16-byte vectors.</param>")
w("    /// <param name=\"b8\">The weight [N, K] as 16-byte vectors.</param>")
w("    /// <param name=\"bias\">The bias ([N] or [M, N], per <see cref=\"HalfGemvShape.BiasStrideM\"/>), read when HasBias and Beta ≠ 0.</param>")
w("    /// <param name=\"c\">C [M, N].</param>")
w("    /// <param name=\"g\">The shape (M, N, K, Alpha, Beta, HasBias, BiasStrideM; the split-K fields are not read).</param>")
w("    [IlgpuKernel]")
for fmt in ("Float16Storage", "BFloat16Storage"):
    for cap in CAPS:
        w(f"    [IlgpuKernelVariant(typeof(Const{cap}), typeof({fmt}))]")
w("    public static void GemvNk16Stream<TRowsCap, TFormat>(ArrayView<Half8> a8, ArrayView<Half8> b8, ArrayView<ushort> bias, ArrayView<ushort> c, HalfGemvShape g)")
w("        where TRowsCap : struct, IKernelConstant")
w("        where TFormat : struct, IKernelConstant")
w("    {")
w("        int cap = default(TRowsCap).Value;")
w("        int bf16 = default(TFormat).Value;")
for i, cap in enumerate(CAPS):
    w(f"        {'if' if i == 0 else 'else if'} (cap == {cap})")
    w("        {")
    w(f"            GemvNk16StreamRows{cap}(a8, b8, bias, c, g, bf16);")
    w("        }")
w("    }")
for cap, cols in CAPS.items():
    w("")
    body(cap, cols)
w("}")

write(out, "HalfGemvKernels.NkStream.g.cs")
