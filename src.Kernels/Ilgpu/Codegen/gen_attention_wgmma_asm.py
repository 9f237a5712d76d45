#!/usr/bin/env python3
"""Generates src.Kernels/Ilgpu/AttentionWgmmaKernels.g.cs: the inline-PTX strings of the wgmma prefill attention.

CudaAsm takes compile-time constant strings only. Per 64-key tile a warpgroup (64 query rows) issues eight
wgmma.mma_async m64n64k16 for S = Q.K^T (A = Q, B = K, both K-major 128-byte-swizzled shared tiles) and eight
m64n128k16 for O += P.V (A = the weights from registers, high and low 16-bit parts, B = V MN-major, transpose-B 1).
The registers live at function scope (declared once in the entry block): fo (64 output accumulators), fs (32 score
accumulators), fph / fpl (16 + 16 A-fragment registers of the weights), fmax / fsum (rows g and g + 8).

Descriptor advances (units of 16 bytes): Q and K are stored as two 64-column halves of head dimension (each
[rows][64] with 128-byte rows), so k16 step j of the head dimension starts at half j / 4, +32 bytes per step inside a
half; V is stored as WgmmaGemmKernels' MN-major stage ([64-column block][key][64]), +16 keys = 2048 bytes per step.
Run: python3 src.Kernels/Ilgpu/Codegen/gen_attention_wgmma_asm.py
"""
import os

from attention_ptx import cs_string, rescale_rows, softmax_rows, split_weights, store_normalized, store_partial

D = 128
BQ = 128                      # queries per group: two warpgroups of 64 rows
BK = 64                       # keys per tile
GROUP = 256
STAGES = 3
ROW = 128                     # bytes of one swizzle row (64 16-bit elements)
Q_HALF = BQ * ROW             # bytes of one 64-column half of the Q tile
KV_HALF = BK * ROW            # bytes of one 64-column half of a K tile (also one V column block)
Q_BYTES = 2 * Q_HALF
K_BYTES = 2 * KV_HALF
V_BYTES = 2 * KV_HALF
STAGE = K_BYTES + V_BYTES
SHARED = Q_BYTES + STAGES * STAGE + 1024   # + room to align the base up to the swizzle's 1024 bytes
NB_S = BK // 8                # score n-blocks (8 keys)
NB_O = D // 8                 # output n-blocks
S_ACC = NB_S * 4
O_ACC = NB_O * 4
P_REGS = (BK // 16) * 4       # A-fragment registers per weight part
assert SHARED <= 227 * 1024


def q_adv(j):
    return ((j >> 2) * Q_HALF + (j & 3) * 32) >> 4


def k_adv(j):
    return ((j >> 2) * KV_HALF + (j & 3) * 32) >> 4


V_ADV = (16 * ROW) >> 4
ATOM = 8 * ROW                # stride byte offset of every descriptor here (between 8-row atoms)
DESC_HIGH = (ATOM >> 4) | (1 << 30)   # high word: stride offset / 16 (bits 32-45), 128-byte swizzle (bit 62)

out = []
w = out.append


def regs(name, lo, n):
    return "{" + ",".join(f"{name}{lo + i}" for i in range(n)) + "}"


def scores(dtype):
    """%0: low 32 bits of the Q descriptor of the warpgroup's rows, step 0; %1: of the K descriptor, step 0 (the high
    words are DESC_HIGH; a step never carries out of the 14-bit address field, as shared addresses stay below 256 KB).
    The first step overwrites fs (scale-d false: a register comparison that is never true, as Q's leading-offset bits
    are set), the others accumulate."""
    lines = ["{", ".reg .b64 fqd<8>;", ".reg .b64 fkd<8>;", ".reg .b32 fql<8>;", ".reg .b32 fkl<8>;", ".reg .b32 fdh;",
             ".reg .pred fp, fz;", "setp.ne.b32 fp, %0, 0;", "setp.eq.b32 fz, %0, 0;", f"mov.b32 fdh, {DESC_HIGH};",
             "mov.b64 fqd0, {%0, fdh};", "mov.b64 fkd0, {%1, fdh};"]
    for j in range(1, D // 16):
        lines += [f"add.u32 fql{j}, %0, {q_adv(j)};", f"add.u32 fkl{j}, %1, {k_adv(j)};",
                  f"mov.b64 fqd{j}, {{fql{j}, fdh}};", f"mov.b64 fkd{j}, {{fkl{j}, fdh}};"]
    lines.append("wgmma.fence.sync.aligned;")
    for j in range(D // 16):
        lines.append(f"wgmma.mma_async.sync.aligned.m64n{BK}k16.f32.{dtype}.{dtype} {regs('fs', 0, S_ACC)}, fqd{j}, fkd{j}, {'fz' if j == 0 else 'fp'}, 1, 1, 0, 0;")
    lines += ["wgmma.commit_group.sync.aligned;", "}"]
    return cs_string(lines)


def accumulate(dtype):
    """%0: low 32 bits of the V descriptor, step 0 (high word DESC_HIGH). O += P_hi.V + P_lo.V, A from registers (fph,
    fpl), B MN-major (transpose-B 1)."""
    lines = ["{", ".reg .b64 fvd<4>;", ".reg .b32 fvl<4>;", ".reg .b32 fdh;", ".reg .pred fp;", "setp.ne.b32 fp, %0, 0;",
             f"mov.b32 fdh, {DESC_HIGH};", "mov.b64 fvd0, {%0, fdh};"]
    for j in range(1, BK // 16):
        lines += [f"add.u32 fvl{j}, %0, {j * V_ADV};", f"mov.b64 fvd{j}, {{fvl{j}, fdh}};"]
    lines.append("wgmma.fence.sync.aligned;")
    for j in range(BK // 16):
        for part in ("fph", "fpl"):
            lines.append(f"wgmma.mma_async.sync.aligned.m64n{D}k16.f32.{dtype}.{dtype} {regs('fo', 0, O_ACC)}, {regs(part, 4 * j, 4)}, fvd{j}, fp, 1, 1, 1;")
    lines += ["wgmma.commit_group.sync.aligned;", "}"]
    return cs_string(lines)


def scale_scores(masked):
    """S times %0 (scale * log2 e); masked: then keys at offsets >= %1 (row g) / %2 (row g + 8) from the lane's first
    key hidden (-inf). The softmax's first lines, as a block of their own: the kernel skips the mask on the tiles that
    lie wholly below every row's limit (a group-uniform branch, taken after the scores' wait)."""
    rows = softmax_rows("fs", S_ACC, "%0", ("%1", "%2") if masked else None, "fmax", "fsum")
    n = S_ACC * (3 if masked else 1)
    assert all(line.startswith("mul.f32 fs") for line in rows[:S_ACC]) and not rows[n].startswith(("mul.f32 fs", "selp.f32 fs"))
    return cs_string(["{", ".reg .pred xp;"] + rows[:n] + ["}"])


def softmax(cvt, bf16):
    """After scale_scores: row maxima over the quad (fmax, log2 units), weights 2^(s - m), partial row sums (fsum), the
    unconditional rescale of fo (no branch: the warpgroup stays convergent around the wgmma), and the weights as A
    fragments: high parts fph, low parts fpl (the C layout of two n-blocks is the A layout of one k16 step)."""
    lines = ["{", ".reg .f32 xm<2>;", ".reg .f32 xn<2>;", ".reg .f32 xh<2>;", ".reg .f32 xa<2>;", ".reg .f32 xr<2>;",
             ".reg .f32 xt;", ".reg .f32 xf;", ".reg .f32 xg;", ".reg .b32 xb;", ".reg .b32 xc;", ".reg .b16 xha;", ".reg .b16 xhb;",
             ".reg .pred xp;"]
    lines += softmax_rows("fs", S_ACC, "%0", None, "fmax", "fsum")[S_ACC:]
    lines += rescale_rows("fo", O_ACC)
    lines += split_weights(cvt, bf16, BK, "fs", "fph", "fpl")
    lines.append("}")
    return cs_string(lines)


def store(cvt):
    """Sums the quad's partial row sums, then stores O / l (0 where l = 0) rounded to 16 bits at byte addresses %0 (row
    g) / %1 (row g + 8); 0: the row is skipped."""
    return cs_string(store_normalized(cvt, "fo", NB_O, "x", "fsum", store_declarations_first=False))


declare = ([f".reg .f32 fo<{O_ACC}>;", f".reg .f32 fs<{S_ACC}>;", f".reg .b32 fph<{P_REGS}>;", f".reg .b32 fpl<{P_REGS}>;",
            ".reg .f32 fmax<2>;", ".reg .f32 fsum<2>;"]
           + [f"mov.f32 fo{i}, 0f00000000;" for i in range(O_ACC)]
           + ["mov.f32 fmax0, 0fFF800000;", "mov.f32 fmax1, 0fFF800000;", "mov.f32 fsum0, 0f00000000;", "mov.f32 fsum1, 0f00000000;"])

w("// <auto-generated/> by src.Kernels/Ilgpu/Codegen/gen_attention_wgmma_asm.py: edit the generator, not this file.")
w("namespace GemsInjector.Kernels.Ilgpu;")
w("")
w("internal static partial class AttentionWgmmaKernels")
w("{")
consts = [
    ("D", D, "Head size of the kernel."),
    ("BlockQ", BQ, "Queries per group (two warpgroups of 64 rows)."),
    ("BlockK", BK, "Keys per tile."),
    ("GroupSize", GROUP, "Threads per group."),
    ("Stages", STAGES, "Key-tile stages in shared memory."),
    ("QHalfBytes", Q_HALF, "Bytes of one 64-column half of the Q tile ([128][64], 128-byte swizzled rows)."),
    ("KvHalfBytes", KV_HALF, "Bytes of one 64-column half of a K tile, and of one 64-column block of a V tile."),
    ("QBytes", Q_BYTES, "Bytes of the Q tile (at byte 0 of the aligned base)."),
    ("KBytes", K_BYTES, "Bytes of a K tile (at the start of its stage)."),
    ("StageBytes", STAGE, "Bytes of one stage: K, then V."),
    ("SharedBytes", SHARED, "Dynamic shared bytes a launch requests (Q, the stages, 1 KB to align the base up to 1024 bytes)."),
    ("ScoreAccumulators", S_ACC, "float32 score accumulators per thread (m64n64)."),
    ("OutputAccumulators", O_ACC, "float32 output accumulators per thread (m64n128)."),
    ("WeightRegisters", P_REGS, "32-bit A-fragment registers per thread of one weight part (high or low)."),
]
for name, value, doc in consts:
    w(f"    /// <summary>{doc}</summary>")
    w(f"    public const int {name} = {value};")
    w("")
w("    /// <summary>High 32 bits of every descriptor of this kernel (stride 1024 bytes, 128-byte swizzle): the asm takes the low words.</summary>")
w(f"    public const uint DescriptorHigh = 0x{DESC_HIGH:08X};")
w("")
w("    /// <summary>Descriptor units one k16 step (16 keys) advances down a V tile.</summary>")
w(f"    public const int VAdvance = {V_ADV};")
w("")
w("    /// <summary>Declares the function-scope registers (outputs, scores, weights, row maxima and sums) and initializes them.</summary>")
w(f"    public const string DeclareRegisters = {cs_string(declare)};")
w("")
w("    /// <summary>The scores times %0 (scale · log2 e), then key offsets ≥ %1 (row g) / %2 (row g + 8) from the lane's first key at -∞.</summary>")
w(f"    public const string ScaleMaskScores = {scale_scores(True)};")
w("")
w("    /// <summary>The scores times %0 (scale · log2 e): a tile below every row's limit.</summary>")
w(f"    public const string ScaleScores = {scale_scores(False)};")
w("")
w("    /// <summary>A split's partial: the quad's row sums, then the unnormalized outputs (float32) and (m, l), m in natural-log units.</summary>")
w(f"    public const string StorePartial = {cs_string(store_partial('fo', NB_O, 'fmax', 'fsum'))};")
w("")
w("    /// <summary>Waits until no wgmma group of this warpgroup is pending.</summary>")
w("    public const string WaitAll = \"wgmma.wait_group.sync.aligned 0;\";")
w("")
for dtype, name, cvt in (("bf16", "Bf16", "cvt.rn.bf16x2.f32"), ("f16", "F16", "cvt.rn.f16x2.f32")):
    w(f"    /// <summary>S = Q·Kᵀ of the warpgroup's 64 rows and the key tile ({dtype}): fence, eight m64n64k16, commit.</summary>")
    w(f"    public const string Scores{name} = {scores(dtype)};")
    w("")
    w(f"    /// <summary>O += P·V ({dtype}): fence, eight m64n128k16 with A from registers (high, low parts), commit.</summary>")
    w(f"    public const string Accumulate{name} = {accumulate(dtype)};")
    w("")
    w(f"    /// <summary>The online-softmax step on the scaled (and masked) score accumulators ({dtype} weights).</summary>")
    w(f"    public const string Softmax{name} = {softmax(cvt, name == 'Bf16')};")
    w("")
    w(f"    /// <summary>The quad's row sums, then this lane's outputs times 1/l, rounded to nearest even ({dtype}).</summary>")
    w(f"    public const string Store{name} = {store(cvt)};")
    w("")
out[-1] = "}"

path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "AttentionWgmmaKernels.g.cs")
with open(path, "w", encoding="utf-8", newline="\n") as f:
    f.write("\n".join(out) + "\n")
