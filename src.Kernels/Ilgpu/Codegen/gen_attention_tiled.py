#!/usr/bin/env python3
"""Generates src.Kernels/Ilgpu/AttentionTiledKernels.g.cs: the body of the register-tiled attention prefill for head sizes
64 and 128, shared by its float32 and 16-bit kernels, which differ only in how they read q, k, v into float32 shared
memory and write the output (the ITiledAttentionIo type argument; kernels, design, shared layout: AttentionTiledKernels.cs;
launch: IlgpuKernels.AttentionTiled.cs). Every score,
weight and output sum of a thread is its own variable (constant names, so nothing is indexed at run time and nothing
lands in local memory); the head size is the type argument TDimQuads (D / 32), and the statements of the upper half of
a row's dims sit under `if (quads > 2)`, which folds away for D = 64.
Run: python3 src.Kernels/Ilgpu/Codegen/gen_attention_tiled.py"""
from gemv_codegen import write

ROWS = 4            # query rows per thread: row group + 16 i
KEYS = 4            # keys per thread and tile: column lane + 8 j
MAX_QUADS = 4       # 16-byte vectors of a row's dims per thread at D = 128: column lane + 8 jq
XYZW = "XYZW"
out = []
w = out.append


def block(lines, guard, indent):
    """Emits `lines` at `indent`, inside `if (guard)` when a guard is given."""
    p = " " * indent
    if guard is None:
        for line in lines:
            w(p + line)
        return
    w(f"{p}if ({guard})")
    w(p + "{")
    for line in lines:
        w(p + "    " + line)
    w(p + "}")


def by_quads(lines_of, indent):
    """Emits lines_of(jq) for the lower half of a row's dims, then those of the upper half in one `if (quads > 2)`."""
    block([line for jq in range(2) for line in lines_of(jq)], None, indent)
    block([line for jq in range(2, MAX_QUADS) for line in lines_of(jq)], "quads > 2", indent)


def o(i, jq, x):
    return f"o{i}{jq}{x}"


def body():
    w("    /// <summary>")
    w("    /// The body of both tiled kernels (see the class summary): one group of <see cref=\"Threads\"/> per (head, block of")
    w("    /// <see cref=\"BlockQ\"/> queries, batch), the blocks of a head in reverse order so that a causal call's longest")
    w("    /// blocks start first. TDimQuads is D / 32 (2 or 4); TIo reads q, k, v (vectors of TVec) into float32 shared")
    w("    /// memory and writes the output (TOut). With <see cref=\"TiledSplit.Count\"/> above 1 the keys are split into")
    w("    /// ranges (the grid's third dimension is batch × ranges) and each group writes, per query row, its unnormalized")
    w("    /// outputs and (max, sum) in the decode partials' layout for the decode combine.")
    w("    /// </summary>")
    w("    private static void Body<TVec, TOut, TIo, TDimQuads>(ArrayView<TVec> q, ArrayView<TVec> k, ArrayView<TVec> v, ArrayView<float> mask, ArrayView<TOut> output,")
    w("        ArrayView<Float4> partO, ArrayView<float> partML, AttentionShape s, TiledSplit split)")
    w("        where TVec : unmanaged")
    w("        where TOut : unmanaged")
    w("        where TIo : struct, ITiledAttentionIo<TVec, TOut>")
    w("        where TDimQuads : struct, IKernelConstant")
    w("    {")
    w("        if (CudaAsm.IsSupported)")
    w("        {")
    w("            CudaAsm.Emit(Sm90aPtx.OptInSharedMarker);")
    w("        }")
    w("")
    w("        var io = default(TIo);")
    w("        var shared = SharedMemory.GetDynamic<Float4>().AsAligned(16);")
    w("        var sharedF = shared.Cast<float>();")
    w("        int quads = default(TDimQuads).Value;")
    w("        int rowVecs = 8 * quads;")
    w("        int stride = rowVecs + 1;")
    w("        int inputVecs = rowVecs / io.SharedVecsPerInput;")
    w("        int keyOffset = BlockQ * stride;")
    w("        int valueOffset = keyOffset + KeyOrWeightVecs(quads);")
    w("        int weightOffset = 4 * keyOffset;")
    w("        int tid = Group.IdxX;")
    w("        int lane = tid & (ColumnLanes - 1);")
    w("        int rowGroup = tid / ColumnLanes;")
    w("        int h = Grid.IdxX;")
    w("        int q0 = (Grid.DimY - 1 - Grid.IdxY) * BlockQ;")
    w("        int batch = Grid.IdxZ / split.Count;")
    w("        int range = Grid.IdxZ - (batch * split.Count);")
    w("        int kvh = h / (s.Heads / s.KvHeads);")
    w("        long qRow0 = (((long)batch * s.Heads) + h) * s.Lq + q0;")
    w("        long kRow0 = (((long)batch * s.KvHeads) + kvh) * s.Lk;")
    w("        long maskBase = (batch * s.MaskBatch) + (h * s.MaskHead);")
    w("        float scaleLog2 = s.Scale * Log2E;")
    w("")
    w("        for (int e = tid; e < BlockQ * inputVecs; e += Threads)")
    w("        {")
    w("            int row = e / inputVecs;")
    w("            int col = e - (row * inputVecs);")
    w("            bool inside = q0 + row < s.Lq;")
    w("            TVec value = q[((inside ? qRow0 + row : qRow0) * inputVecs) + col];")
    w("            io.Stage(shared, (row * stride) + (col * io.SharedVecsPerInput), inside ? value : default);")
    w("        }")
    w("")
    for i in range(ROWS):
        w(f"        float m{i} = GpuMath.NegInf;")
        w(f"        float l{i} = 0f;")
    for i in range(ROWS):
        for jq in range(MAX_QUADS):
            w("        " + " ".join(f"float {o(i, jq, x)} = 0f;" for x in XYZW))
    w("")
    w("        int kBegin = range * split.Keys;")
    w("        int kEnd = s.Causal != 0 && q0 + BlockQ < s.Lk ? q0 + BlockQ : s.Lk;")
    w("        kEnd = kBegin + split.Keys < kEnd ? kBegin + split.Keys : kEnd;")
    w("        for (int k0 = kBegin; k0 < kEnd; k0 += BlockK)")
    w("        {")
    w("            for (int e = tid; e < BlockK * inputVecs; e += Threads)")
    w("            {")
    w("                int row = e / inputVecs;")
    w("                int col = e - (row * inputVecs);")
    w("                bool inside = k0 + row < s.Lk;")
    w("                long source = ((inside ? kRow0 + k0 + row : kRow0) * inputVecs) + col;")
    w("                TVec key = k[source];")
    w("                TVec value = v[source];")
    w("                io.Stage(shared, keyOffset + (row * stride) + (col * io.SharedVecsPerInput), inside ? key : default);")
    w("                io.Stage(shared, valueOffset + (row * rowVecs) + (col * io.SharedVecsPerInput), inside ? value : default);")
    w("            }")
    w("")
    w("            Group.Barrier();")
    for i in range(ROWS):
        w("            " + " ".join(f"float s{i}{j} = 0f;" for j in range(KEYS)))
    w("            for (int t = 0; t < rowVecs; t++)")
    w("            {")
    for i in range(ROWS):
        w(f"                Float4 qr{i} = shared[((rowGroup + {16 * i}) * stride) + t];")
    for j in range(KEYS):
        w(f"                Float4 kc{j} = shared[keyOffset + ((lane + {8 * j}) * stride) + t];")
    for i in range(ROWS):
        for j in range(KEYS):
            w("                " + " ".join(f"s{i}{j} += qr{i}.{x} * kc{j}.{x};" for x in XYZW))
    w("            }")
    w("")
    w("            // Scores in log2 units (softmax is the same in base 2 with the scale times log2 e); a tile that crosses")
    w("            // the causal diagonal or the keys' end, or any masked call, checks each score.")
    w("            bool edge = s.HasMask != 0 || k0 + BlockK > s.Lk || (s.Causal != 0 && k0 + BlockK - 1 > q0);")
    for i in range(ROWS):
        w("            " + " ".join(f"float x{i}{j} = s{i}{j} * scaleLog2;" for j in range(KEYS)))
    w("            if (edge)")
    w("            {")
    for i in range(ROWS):
        for j in range(KEYS):
            w(f"                x{i}{j} = EdgeScore(s{i}{j}, x{i}{j}, mask, s, maskBase, q0 + rowGroup + {16 * i}, k0 + lane + {8 * j});")
    w("            }")
    w("")
    for i in range(ROWS):
        w(f"            float top{i} = RowMax(GpuMath.MaxNaN(GpuMath.MaxNaN(x{i}0, x{i}1), GpuMath.MaxNaN(x{i}2, x{i}3)));")
        w(f"            float next{i} = GpuMath.MaxNaN(m{i}, top{i});")
        w(f"            float alpha{i} = next{i} == GpuMath.NegInf ? 1f : GpuMath.Exp2Fast(m{i} - next{i});")
        for j in range(KEYS):
            w(f"            float p{i}{j} = next{i} == GpuMath.NegInf ? 0f : GpuMath.Exp2Fast(x{i}{j} - next{i});")
        w(f"            l{i} = (l{i} * alpha{i}) + ((p{i}0 + p{i}1) + (p{i}2 + p{i}3));")
        w(f"            m{i} = next{i};")
    by_quads(lambda jq: [" ".join(f"{o(i, jq, x)} *= alpha{i};" for x in XYZW) for i in range(ROWS)], 12)
    w("")
    w("            // The weights go where the key tile was: every thread is past its scores first.")
    w("            Group.Barrier();")
    for i in range(ROWS):
        for j in range(KEYS):
            w(f"            sharedF[weightOffset + ((rowGroup + {16 * i}) * WeightStride) + lane + {8 * j}] = p{i}{j};")
    w("            Group.Barrier();")
    w("            for (int kq = 0; kq < BlockK / 4; kq++)")
    w("            {")
    for i in range(ROWS):
        w(f"                Float4 w{i} = shared[keyOffset + ((rowGroup + {16 * i}) * (WeightStride / 4)) + kq];")
    for kk, x_key in enumerate(XYZW):
        w(f"                int value{kk} = valueOffset + ((4 * kq + {kk}) * rowVecs) + lane;")
        by_quads(lambda jq: [f"Float4 v{kk}{jq} = shared[value{kk} + {8 * jq}];"]
                 + [" ".join(f"{o(i, jq, x)} += w{i}.{x_key} * v{kk}{jq}.{x};" for x in XYZW) for i in range(ROWS)], 16)
    w("            }")
    w("")
    w("            Group.Barrier();")
    w("        }")
    w("")
    for i in range(ROWS):
        w(f"        float sum{i} = RowSum(l{i});")
    w("        if (split.Count > 1)")
    w("        {")
    for i in range(ROWS):
        w(f"            long part{i} = ((qRow0 + rowGroup + {16 * i}) * split.Count) + range;")
        w(f"            if (q0 + rowGroup + {16 * i} < s.Lq)")
        w("            {")
        by_quads(lambda jq: [f"partO[(part{i} * rowVecs) + lane + {8 * jq}] = new Float4 {{ X = {o(i, jq, 'X')}, Y = {o(i, jq, 'Y')}, Z = {o(i, jq, 'Z')}, W = {o(i, jq, 'W')} }};"], 16)
        w("                if (lane == 0)")
        w("                {")
        w(f"                    partML[2 * part{i}] = m{i} * Ln2;")
        w(f"                    partML[(2 * part{i}) + 1] = sum{i};")
        w("                }")
        w("            }")
        w("")
    out.pop()
    w("")
    w("            return;")
    w("        }")
    w("")
    for i in range(ROWS):
        w(f"        long out{i} = (qRow0 + rowGroup + {16 * i}) * rowVecs;")
        w(f"        if (q0 + rowGroup + {16 * i} < s.Lq)")
        w("        {")
        by_quads(lambda jq: [f"io.Store(output, out{i} + lane + {8 * jq}, Normalized({', '.join(o(i, jq, x) for x in XYZW)}, sum{i}));"], 12)
        w("        }")
        w("")
    out.pop()
    w("    }")


w("// <auto-generated/> by src.Kernels/Ilgpu/Codegen/gen_attention_tiled.py: edit the generator, not this file.")
w("using ILGPU;")
w("using ILGPU.Runtime;")
w("using ILGPU.Runtime.Cuda;")
w("")
w("namespace GemsInjector.Kernels.Ilgpu;")
w("")
w("internal static partial class AttentionTiledKernels")
w("{")
body()
w("}")
write(out, "AttentionTiledKernels.g.cs")
