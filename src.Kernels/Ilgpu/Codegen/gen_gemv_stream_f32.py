#!/usr/bin/env python3
"""Generates src.Kernels/Ilgpu/GemmFastKernels.GemvStream.g.cs: the streamed float32 [N, K] GEMV for 2-16 rows
(GEMS_GEMV_F32_VARIANT=stream). One straight-line body per row cap, every operand and sum its own variable (constant
names, so nothing is indexed at run time and nothing lands in local memory); the kernel picks the body from its row-cap
type argument, which folds the others away. Launch plan and notes: IlgpuKernels.GemvStreamF32.cs.
Run: python3 src.Kernels/Ilgpu/Codegen/gen_gemv_stream_f32.py"""
import os

# Row cap -> weight rows (output columns) per group. Per lane a batch holds columns x 4 weight floats, cap x 4
# activation floats and cap x columns sums; 8 columns keep the activation re-reads at a quarter / half of the weight's
# bytes for 2 / 4 rows, 4 columns keep 8 / 16 rows near 96 / 150 registers (8 columns at 16 rows would need 128 sums).
CAPS = {2: 8, 4: 8, 8: 4, 16: 4}
SHUFFLE_OFFSETS = [1, 2, 4, 8, 16]
out = []
w = out.append


def sums(cap, cols):
    return [f"s{m}_{c}" for m in range(cap) for c in range(cols)]


def loads(cap, cols, guard, indent):
    p = " " * indent
    for c in range(cols):
        src = f"b4[wRow{c} + v]"
        w(f"{p}Float4 w{c} = {'valid ? ' + src + ' : default' if guard else src};")
    for m in range(cap):
        src = f"a4[xRow{m} + v]"
        w(f"{p}Float4 x{m} = {'valid ? ' + src + ' : default' if guard else src};")


def products(cap, cols, indent):
    p = " " * indent
    for m in range(cap):
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
    w("        // Weight rows past N read row N - 1 and activation rows past M row M - 1: their sums are never stored.")
    for c in range(cols):
        w(f"        long wRow{c} = (long)(n0 + {c} < g.N ? n0 + {c} : g.N - 1) * k4;")
    w("        long xRow0 = 0;")
    for m in range(1, cap):
        w(f"        long xRow{m} = (long)({m} < g.M ? {m} : g.M - 1) * k4;")
    for m in range(cap):
        w("        float " + ", ".join(f"s{m}_{c} = 0f" for c in range(cols)) + ";")
    w("        // Warp w takes batches w, w + warps, ...: a batch is one 16-byte vector per lane of every row, so the warp")
    w("        // asks for 16 * ws contiguous bytes of each of its weight rows at once.")
    w("        int stride = warps * ws;")
    w("        int v = (warp * ws) + lane;")
    w("        for (; v - lane + ws <= k4; v += stride)")
    w("        {")
    loads(cap, cols, False, 12)
    w("            // ILGPU places a load next to its first use, which would put them all behind the fence among the products:")
    w("            // an empty inline-PTX use of each vector keeps it ahead. The warp barrier is then the scheduling fence that")
    w("            // keeps ptxas from sinking the loads into the products: the whole batch is asked for in one burst.")
    w("            if (CudaAsm.IsSupported)")
    w("            {")
    for c in range(cols):
        w(f"                CudaAsm.Emit(\"// w %0\", w{c}.X);")
    for m in range(cap):
        w(f"                CudaAsm.Emit(\"// x %0\", x{m}.X);")
    w("            }")
    w("")
    w("            Warp.Barrier();")
    products(cap, cols, 12)
    w("        }")
    w("")
    w("        if (v - lane < k4)")
    w("        {")
    w("            // The last, partial batch: both operands are zero past K, so a product there is 0 * 0, never a stale value")
    w("            // times zero (Inf * 0 would be NaN).")
    w("            bool valid = v < k4;")
    loads(cap, cols, True, 12)
    products(cap, cols, 12)
    w("        }")
    w("")
    w("        // Sum over the warp's lanes by halving: at each offset a lane keeps one half of its sums and adds its partner's")
    w("        // copy of that half, so 32 lanes reduce n sums in n / 2 + n / 4 + ... shuffles instead of 5 n. Afterwards the")
    w("        // lane holds the warp totals of sums first .. first + held - 1; sums it shares with a lane of a lower bit")
    w("        // (when fewer than one per lane remain) are written by that lane only.")
    w("        int first = 0;")
    w(f"        int held = {n};")
    w("        bool writer = true;")
    cur = sums(cap, cols)
    for o in SHUFFLE_OFFSETS:
        w(f"        if (ws > {o})")
        w("        {")
        if len(cur) >= 2:
            h = len(cur) // 2
            w(f"            bool upper = (lane & {o}) != 0;")
            for i in range(h):
                lo, hi = cur[i], cur[i + h]
                w(f"            float send{i} = upper ? {lo} : {hi};")
                w(f"            {lo} = (upper ? {hi} : {lo}) + Warp.ShuffleXor(send{i}, {o});")
            w(f"            first += upper ? {h} : 0;")
            w("            held >>= 1;")
            cur = cur[:h]
        else:
            w(f"            {cur[0]} += Warp.ShuffleXor({cur[0]}, {o});")
            w(f"            writer &= (lane & {o}) == 0;")
        w("        }")
        w("")
    w(f"        var red = SharedMemory.Allocate<float>(GemvNkStreamMaxWarps * {n});")
    w("        if (writer)")
    w("        {")
    w(f"            int at = (warp * {n}) + first;")
    # Each halving keeps a prefix of the sums' variables, and a narrower warp stops halving earlier: the lane's held sums
    # are the first `held` variables of the full list.
    every = sums(cap, cols)
    w(f"            red[at] = {every[0]};")
    for i in range(1, n):
        w(f"            if (held > {i})")
        w("            {")
        w(f"                red[at + {i}] = {every[i]};")
        w("            }")
        w("")
    w("        }")
    w("")
    w("        Group.Barrier();")
    w(f"        for (int e = Group.IdxX; e < {n}; e += Group.DimX)")
    w("        {")
    w(f"            int row = e / {cols};")
    w(f"            int col = n0 + (e - (row * {cols}));")
    w("            if (row < g.M && col < g.N)")
    w("            {")
    w("                // Warp order, so the result does not depend on timing.")
    w("                float sum = red[e];")
    w("                for (int other = 1; other < warps; other++)")
    w("                {")
    w(f"                    sum += red[(other * {n}) + e];")
    w("                }")
    w("")
    w("                c[((long)row * g.N) + col] = GemvEpilogue(bias, g, row, col, sum);")
    w("            }")
    w("        }")
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
w("    /// <summary>")
w("    /// Streamed float32 decode GEMV for 2-16 rows, weight [N, K] (<c>GEMS_GEMV_F32_VARIANT=stream</c>; notes and launch")
w("    /// plan in <see cref=\"GemvNkStreamLaunch\"/>): a group owns a few weight rows (output columns) and all of K, no split-K")
w("    /// and no second launch. K a multiple of 4, both views 16-byte aligned; the group size is read from the launch.")
w("    /// </summary>")
w("    [IlgpuKernel]")
for cap in CAPS:
    w(f"    [IlgpuKernelVariant(typeof(Const{cap}))]")
w("    public static void GemvNkStreamF32<TRowsCap>(ArrayView<Float4> a4, ArrayView<Float4> b4, ArrayView<float> bias, ArrayView<float> c, GemvShape g)")
w("        where TRowsCap : struct, IKernelConstant")
w("    {")
w("        int cap = default(TRowsCap).Value;")
first_cap = True
for cap in CAPS:
    w(f"        {'if' if first_cap else 'else if'} (cap == {cap})")
    w("        {")
    w(f"            GemvNkStreamRows{cap}(a4, b4, bias, c, g);")
    w("        }")
    first_cap = False
w("    }")
for cap, cols in CAPS.items():
    w("")
    body(cap, cols)
w("}")

path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "GemmFastKernels.GemvStream.g.cs")
with open(path, "w", encoding="utf-8", newline="\n") as f:
    f.write("\n".join(out) + "\n")
