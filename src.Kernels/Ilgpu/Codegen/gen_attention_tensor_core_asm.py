#!/usr/bin/env python3
"""Generates src.Kernels/Ilgpu/AttentionTensorCoreKernels.g.cs: the inline-PTX strings of the tensor-core attention.

CudaAsm takes compile-time constant strings only. One key tile of a warp is 16 ldmatrix + 32 mma.sync for S = Q.K^T
(the Q fragments stay in 32 registers) and 20 ldmatrix + 64 mma.sync for O += P.V over 64 output accumulators (the
weights split into a 16-bit high part and a 16-bit low part, each multiplied by V, so P carries ~22 (f16) / ~16 (bf16)
significant bits into the float32 accumulators instead of 11 / 8): written
out here with the layout constants they depend on (the C# kernel and its CPU emulation read the same constants from
the generated file).
Run: python3 src.Kernels/Ilgpu/Codegen/gen_attention_tensor_core_asm.py
"""
import os

from attention_ptx import cs_string, mma, rescale_rows, softmax_rows, split_pair, split_weights, store_lines, store_normalized, store_partial

D = 128                 # head size of the shared-memory variant, and the register variant's larger one
REGISTER_HEAD_SIZES = (128, 64)   # head sizes of the register variant (its strings for 64 carry a D64 suffix)
BQ = 64                 # queries per group: 4 warps x 16 rows
BK = 32                 # keys per tile
WARPS = BQ // 16
ROW_PAD = 8             # Q, K, V tile rows are d + 8 elements (272 / 144 bytes: 8 ldmatrix rows hit 8 distinct bank quads)


def ld(d):
    """Row stride in elements of the staged Q, K and V tiles at head size d."""
    return d + ROW_PAD


def stage_bytes(d):
    """Bytes of one key-tile stage (K then V) at head size d."""
    return 2 * BK * ld(d) * 2


LD = ld(D)
S_LD = BK + 8           # float32 score row stride of a warp's score area
P_LD = BK + 8           # 16-bit weight row stride (80 bytes), the weights overwrite the warp's score area
P_LO = 16 * P_LD * 2    # byte offset of the low parts of the weights (P - round16(P), rounded) after the high parts
STATS = 4                     # floats per row of a warp's row statistics: max, sum of the tile's weights, rescale factor, (pad)
WARP_AREA = 16 * S_LD * 4 + 16 * STATS * 4 + 16 * 4   # scores (weights alias them), row statistics, 1/l of its 16 rows
STAGE_BYTES = stage_bytes(D)  # one key tile: K then V; two stages (the next tile's copy runs during this one's math)
Q_OFFSET = 0                  # the Q tile is staged once in stage 0, before its fragments move to registers
K_OFFSET = 0                  # within a stage
W_OFFSET = 2 * STAGE_BYTES
SHARED = W_OFFSET + WARPS * WARP_AREA
Q_REGS = (D // 16) * 4        # A-fragment registers of the warp's 16 Q rows
NB_S = BK // 8          # score n-blocks per warp
NB_O = D // 8           # output n-blocks per warp
ACC = NB_O * 4          # output accumulators per thread

assert SHARED <= 48 * 1024, SHARED
assert P_LO + 16 * P_LD * 2 <= 16 * S_LD * 4
assert all(BQ * ld(d) * 2 <= stage_bytes(d) for d in REGISTER_HEAD_SIZES)   # the Q tile fits in stage 0
assert 2 * 64 * LD * 2 == 2 * STAGE_BYTES   # the split variant's K and V buffers take the register variant's two stages

out = []
w = out.append


def score_mmas(dtype, sr, nb_s, k_op, d=D):
    """Lines of S += Q.K^T for nb_s 8-key blocks into C fragments sr0.. (Q fragments in atq; k_op: lane's K ldmatrix row
    address; d: head size). Needs atk<4>."""
    lines = []
    for ks in range(d // 16):
        a = ",".join(f"atq{ks * 4 + j}" for j in range(4))
        for np in range(nb_s // 2):
            lines.append(f"ldmatrix.sync.aligned.m8n8.x4.shared.b16 {{atk0,atk1,atk2,atk3}}, [{k_op}+{np * 16 * ld(d) * 2 + ks * 32}];")
            for half in range(2):
                nb = 2 * np + half
                c = ",".join(f"{sr}{nb * 4 + i}" for i in range(4))
                lines.append(mma(dtype, c, a, f"atk{2 * half},atk{2 * half + 1}"))
    return lines


def scores(dtype):
    """S = Q.K^T for the warp's 16 rows (fragments in atq) and the 32 keys. %0: lane's K ldmatrix row address, %1: score store."""
    lines = ["{", ".reg .b32 atk<4>;", f".reg .f32 ats<{NB_S * 4}>;"]
    lines += [f"mov.f32 ats{i}, 0f00000000;" for i in range(NB_S * 4)]
    lines += score_mmas(dtype, "ats", NB_S, "%0")
    for nb in range(NB_S):
        lines.append(f"st.shared.v2.f32 [%1+{nb * 32}], {{ats{nb * 4}, ats{nb * 4 + 1}}};")
        lines.append(f"st.shared.v2.f32 [%1+{8 * S_LD * 4 + nb * 32}], {{ats{nb * 4 + 2}, ats{nb * 4 + 3}}};")
    lines.append("}")
    return cs_string(lines)


def accumulate(dtype):
    """O += P.V for the warp's 16 rows, P = high + low parts. %0: lane's P (high) ldmatrix row address, %1: lane's V
    (.trans) row address. Each V fragment feeds the high then the low mma of both its n-blocks."""
    lines = ["{", ".reg .b32 atp<4>;", ".reg .b32 atl<4>;", ".reg .b32 atv<4>;"]
    a = ",".join(f"atp{j}" for j in range(4))
    lo = ",".join(f"atl{j}" for j in range(4))
    for ks in range(BK // 16):
        lines.append(f"ldmatrix.sync.aligned.m8n8.x4.shared.b16 {{{a}}}, [%0+{ks * 32}];")
        lines.append(f"ldmatrix.sync.aligned.m8n8.x4.shared.b16 {{{lo}}}, [%0+{P_LO + ks * 32}];")
        for np in range(NB_O // 2):
            lines.append(f"ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {{atv0,atv1,atv2,atv3}}, [%1+{ks * 16 * LD * 2 + np * 32}];")
            for part in (a, lo):
                for half in range(2):
                    nb = 2 * np + half
                    c = ",".join(f"ato{nb * 4 + i}" for i in range(4))
                    lines.append(mma(dtype, c, part, f"atv{2 * half},atv{2 * half + 1}"))
    lines.append("}")
    return cs_string(lines)


def softmax(cvt, bf16):
    """Online-softmax step of one lane (half of row r: 16 consecutive scores). %0: the lane's scores (shared), %1: its
    16-bit weights, high parts (the low parts P - high, rounded, follow P_LO bytes later; both overwrite the warp's
    scores), %2: the row's statistics (max, weight sum, rescale factor), %3: the row's running max, %4: factor on the
    stored scores (the scale, or 1 when they were scaled and masked)."""
    lines = ["{", ".reg .f32 sw<16>;", ".reg .f32 smx, smt, smn, sms, ssum, salpha, sfa, sfb;", ".reg .b32 swp<8>;", ".reg .b32 swl<8>;",
             ".reg .b32 sba, sbb;", ".reg .b16 sha, shb;", ".reg .pred sinf, ssame;"]
    for i in range(4):
        lines.append(f"ld.shared.v4.f32 {{sw{4 * i},sw{4 * i + 1},sw{4 * i + 2},sw{4 * i + 3}}}, [%0+{16 * i}];")
    lines += [f"mul.f32 sw{i}, sw{i}, %4;" for i in range(16)]
    lines.append("max.NaN.f32 smx, sw0, sw1;")
    lines += [f"max.NaN.f32 smx, smx, sw{i};" for i in range(2, 16)]
    lines += ["shfl.sync.bfly.b32 smt, smx, 1, 31, 0xffffffff;", "max.NaN.f32 smx, smx, smt;", "max.NaN.f32 smn, smx, %3;",
              # A row with no visible key yet keeps max -inf: its weights and its factor use 0 in place of the max.
              "setp.eq.f32 sinf, smn, 0fFF800000;", "mul.f32 sms, smn, 0f3FB8AA3B;", "selp.f32 sms, 0f00000000, sms, sinf;",
              "neg.f32 sms, sms;", "fma.rn.f32 salpha, %3, 0f3FB8AA3B, sms;", "ex2.approx.ftz.f32 salpha, salpha;",
              "selp.f32 salpha, 0f3F800000, salpha, sinf;",
              # An unchanged max gives exactly 1, so the caller can skip rescaling the accumulators.
              "setp.eq.f32 ssame, smn, %3;", "selp.f32 salpha, 0f3F800000, salpha, ssame;",
              # Every lane has its scores in registers before the weights overwrite the score area.
              "bar.warp.sync 0xffffffff;"]
    for i in range(16):
        lines.append(f"fma.rn.f32 sw{i}, sw{i}, 0f3FB8AA3B, sms;")
        lines.append(f"ex2.approx.ftz.f32 sw{i}, sw{i};")
    lines.append("add.f32 ssum, sw0, sw1;")
    lines += [f"add.f32 ssum, ssum, sw{i};" for i in range(2, 16)]
    lines += ["shfl.sync.bfly.b32 smt, ssum, 1, 31, 0xffffffff;", "add.f32 ssum, ssum, smt;"]
    for i in range(8):
        # Each pair's high parts, widened back to float32 (exact), then its rounded remainders (sfb: weight 2i, the low
        # half; sfa: 2i + 1), pair by pair so the float32 weights die as they go.
        lines += split_pair(cvt, bf16, f"swp{i}", f"swl{i}", f"sw{2 * i + 1}", f"sw{2 * i}", ("sba", "sbb", "sfa", "sfb", "sha", "shb"))
    lines += ["st.shared.v4.b32 [%1], {swp0,swp1,swp2,swp3};", "st.shared.v4.b32 [%1+16], {swp4,swp5,swp6,swp7};",
              f"st.shared.v4.b32 [%1+{P_LO}], {{swl0,swl1,swl2,swl3}};", f"st.shared.v4.b32 [%1+{P_LO + 16}], {{swl4,swl5,swl6,swl7}};",
              "st.shared.v4.f32 [%2], {smn, ssum, salpha, salpha};", "}"]
    return cs_string(lines)


def rescale():
    """O rows g (registers 0, 1 of each n-block) times %0, rows g + 8 (registers 2, 3) times %1."""
    lines = []
    for nb in range(NB_O):
        for i in range(4):
            lines.append(f"mul.f32 ato{nb * 4 + i}, ato{nb * 4 + i}, %{i >> 1};")
    return cs_string(lines)


def store(cvt):
    """Rounds O times %2 (row g) / %3 (row g + 8) to 16 bits; stores pairs at byte addresses %0 / %1 (0: row skipped)."""
    return cs_string(store_lines(cvt, "ato", NB_O, "at", "%2", "%3"))


# Register variant (GEMS_PREFILL_VARIANT=registers): S, the softmax and P never leave registers. Function-scope
# registers add the running row maxima (log2 units) and the lane's partial row sums of rows g and g + 8.


TEMPS = [".reg .b32 atk<4>;", ".reg .f32 xm<2>;", ".reg .f32 xn<2>;", ".reg .f32 xh<2>;", ".reg .f32 xa<2>;", ".reg .f32 xr<2>;",
         ".reg .f32 xt;", ".reg .f32 xf;", ".reg .f32 xg;", ".reg .b32 xb;", ".reg .b32 xc;", ".reg .b16 xha;", ".reg .b16 xhb;",
         ".reg .pred xp;", ".reg .pred xq;"]


def scores_softmax(dtype, cvt, bf16, masked, keys, sr, hr, lr, k_op, scale_op, limit_ops, d=D):
    """Lines of S = Q.K^T for `keys` keys into C fragments sr0.. (k_op: lane's K ldmatrix row address), times scale_op
    (scale * log2 e), [masked: key offsets c >= limit_ops[0] (row g) / [1] (row g + 8) from the lane's first key
    hidden], row max over the quad, weights 2^(s - m), partial row sums, rescale of the accumulators (skipped, warp-
    uniformly, when every factor is exactly 1), and the weights as A fragments: high parts hr0.., low parts lr0.. (the C
    layout of two n-blocks is the A layout of one k step; d: head size). Needs TEMPS declared."""
    nb_s = keys // 8
    lines = [f"mov.f32 {sr}{i}, 0f00000000;" for i in range(nb_s * 4)]
    lines += score_mmas(dtype, sr, nb_s, k_op, d)
    lines += softmax_rows(sr, nb_s * 4, scale_op, limit_ops if masked else None, "atmax", "atsum")
    # neu: a NaN factor rescales too (NaN propagates).
    lines += ["setp.neu.f32 xp, xa0, 0f3F800000;", "setp.neu.f32 xq, xa1, 0f3F800000;", "or.pred xp, xp, xq;",
              # Warp-uniform branch (mma.sync.aligned follows): rescale when any lane's rows need it (the others' factors are 1).
              "vote.sync.any.pred xp, xp, 0xffffffff;", "@!xp bra.uni ATSKIPRESCALE;"]
    lines += rescale_rows("ato", d // 2)
    lines.append("ATSKIPRESCALE:")
    lines += split_weights(cvt, bf16, keys, sr, hr, lr)
    return lines


def weights_times_values(dtype, keys, hr, lr, v_op, d=D):
    """Lines of O += P.V over `keys` keys, P = high (hr..) + low (lr..) A fragments; v_op: lane's V (.trans) row address;
    d: head size. Needs atv<4>."""
    lines = []
    for ks in range(keys // 16):
        hi = ",".join(f"{hr}{ks * 4 + j}" for j in range(4))
        lo = ",".join(f"{lr}{ks * 4 + j}" for j in range(4))
        for np in range(d // 16):
            lines.append(f"ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {{atv0,atv1,atv2,atv3}}, [{v_op}+{ks * 16 * ld(d) * 2 + np * 32}];")
            for part in (hi, lo):
                for half in range(2):
                    nb = 2 * np + half
                    c = ",".join(f"ato{nb * 4 + i}" for i in range(4))
                    lines.append(mma(dtype, c, part, f"atv{2 * half},atv{2 * half + 1}"))
    return lines


def step(dtype, cvt, bf16, masked, d):
    """One 32-key tile of a warp at head size d, all in registers (scores_softmax, then weights_times_values). %0: lane's
    K ldmatrix row address, %1: lane's V (.trans) row address, %2: scale * log2 e, masked: %3 / %4 the rows' key limits."""
    lines = ["{", ".reg .b32 atv<4>;", f".reg .f32 ats<{NB_S * 4}>;", f".reg .b32 atph<{NB_S * 2}>;", f".reg .b32 atpl<{NB_S * 2}>;"] + TEMPS
    lines += scores_softmax(dtype, cvt, bf16, masked, BK, "ats", "atph", "atpl", "%0", "%2", ("%3", "%4"), d)
    lines += weights_times_values(dtype, BK, "atph", "atpl", "%1", d)
    lines.append("}")
    return cs_string(lines)


def store_normalized_text(cvt, d):
    """Sums the quad's partial row sums, then stores O / l (0 where l = 0) rounded to 16 bits at %0 (row g) / %1 (row g + 8), 0: skipped."""
    return cs_string(store_normalized(cvt, "ato", d // 8, "at", "atsum"))


def declare(d):
    """Function-scope registers at head size d: output accumulators (zeroed), Q fragments, row maxima and sums."""
    return cs_string([f".reg .f32 ato<{d // 2}>;", f".reg .b32 atq<{d // 4}>;", ".reg .f32 atmax<2>;", ".reg .f32 atsum<2>;"]
                     + [f"mov.f32 ato{i}, 0f00000000;" for i in range(d // 2)]
                     + ["mov.f32 atmax0, 0fFF800000;", "mov.f32 atmax1, 0fFF800000;", "mov.f32 atsum0, 0f00000000;", "mov.f32 atsum1, 0f00000000;"])


def load_q(d):
    """The warp's Q fragments of every k step at head size d into atq."""
    return cs_string([f"ldmatrix.sync.aligned.m8n8.x4.shared.b16 {{{','.join(f'atq{ks * 4 + j}' for j in range(4))}}}, [%0+{ks * 32}];"
                      for ks in range(d // 16)])


def suffix(d):
    """Name suffix of the register variant's strings at head size d: none at D, D64 at 64."""
    return "" if d == D else f"D{d}"

w("// <auto-generated/> by src.Kernels/Ilgpu/Codegen/gen_attention_tensor_core_asm.py: edit the generator, not this file.")
w("namespace GemsInjector.Kernels.Ilgpu;")
w("")
w("internal static partial class AttentionTensorCoreKernels")
w("{")
consts = [
    ("D", D, "Head size of the shared-memory variant; the larger of the register variant's two (64 and 128)."),
    ("BlockQ", BQ, "Queries per group (16 rows per warp)."),
    ("BlockK", BK, "Keys per tile."),
    ("Warps", WARPS, "Warps per group."),
    ("RowPadding", ROW_PAD, "Elements by which a row of the staged Q, K and V tiles is longer than the head size."),
    ("SLd", S_LD, "Row stride (floats) of a warp's scores."),
    ("PLd", P_LD, "Row stride (elements) of a warp's 16-bit weights (they overwrite its scores)."),
    ("WeightLowOffset", P_LO, "Byte offset of a warp's low weight parts (P - high part, rounded to 16 bits) from its high parts."),
    ("QOffset", Q_OFFSET, "Byte offset of the Q tile in dynamic shared memory (it occupies stage 0 until its fragments are loaded)."),
    ("KOffset", K_OFFSET, "Byte offset of the K tile within a stage."),
    ("QRegisters", Q_REGS, "A-fragment registers of a warp's Q rows per thread at head size D."),
    ("WarpAreaOffset", W_OFFSET, "Byte offset of the first warp's area (scores / weights, rescale factors, 1/l)."),
    ("WarpAreaBytes", WARP_AREA, "Bytes of one warp's area."),
    ("StatsFloats", STATS, "Floats per row of a warp's row statistics (max, weight sum, rescale factor, pad)."),
    ("SharedBytes", SHARED, "Dynamic shared bytes of a group of the shared-memory variant."),
    ("ScoreBlocks", NB_S, "8-key mma tiles of a warp's scores."),
    ("Accumulators", ACC, "float32 output accumulators per thread at head size D."),
]
for name, value, doc in consts:
    w(f"    /// <summary>{doc}</summary>")
    w(f"    public const int {name} = {value};")
    w("")
for d in REGISTER_HEAD_SIZES:
    w(f"    /// <summary>Register variant, head size {d}: a split's partial (unnormalized outputs as float32 at %0 / %1, (m, l) at %2 / %3, m in natural-log units; 0 skips a store).</summary>")
    w(f"    public const string StorePartial{suffix(d)} = {cs_string(store_partial('ato', d // 8, 'atmax', 'atsum'))};")
    w("")
    w(f"    /// <summary>Head size {d}: declares the output accumulators and the Q fragment registers (function scope); zeroes the accumulators.</summary>")
    w(f"    public const string DeclareRegisters{suffix(d)} = {declare(d)};")
    w("")
    w(f"    /// <summary>Head size {d}: loads the warp's Q fragments (all k steps) into atq; %0: this lane's ldmatrix row address at k step 0.</summary>")
    w(f"    public const string LoadQ{suffix(d)} = {load_q(d)};")
    w("")
for dtype, name in (("bf16", "Bf16"), ("f16", "F16")):
    w(f"    /// <summary>S = Q·Kᵀ of the warp's rows and the key tile ({dtype}), stored as float32 to the warp's score area.</summary>")
    w(f"    public const string Scores{name} = {scores(dtype)};")
    w("")
    w(f"    /// <summary>O += P·V of the warp's rows and the key tile ({dtype}), P as its high and low 16-bit parts.</summary>")
    w(f"    public const string Accumulate{name} = {accumulate(dtype)};")
    w("")
w("    /// <summary>Multiplies the output rows of this lane by their online-softmax rescale factors.</summary>")
w(f"    public const string Rescale = {rescale()};")
w("")
for cvt, name in (("cvt.rn.bf16x2.f32", "Bf16"), ("cvt.rn.f16x2.f32", "F16")):
    w(f"    /// <summary>One lane's online-softmax step: row max, weights e^(s - m) as high + low 16-bit parts (each rounded to nearest even), row sum, rescale factor.</summary>")
    w(f"    public const string Softmax{name} = {softmax(cvt, name == 'Bf16')};")
    w("")
    w(f"    /// <summary>Writes this lane's output elements, scaled by 1/l and rounded to nearest even.</summary>")
    w(f"    public const string Store{name} = {store(cvt)};")
    w("")
    dtype = "bf16" if name == "Bf16" else "f16"
    for d in REGISTER_HEAD_SIZES:
        for masked, kind, what in ((False, "", "every key visible"), (True, "Masked", "keys at offsets ≥ %3 / %4 hidden")):
            w(f"    /// <summary>Register variant, head size {d}: one key tile of a warp ({dtype}, {what}): S, softmax, P·V without leaving registers.</summary>")
            w(f"    public const string Step{kind}{suffix(d)}{name} = {step(dtype, cvt, name == 'Bf16', masked, d)};")
            w("")
        w(f"    /// <summary>Register variant, head size {d}: the quad's row sums, then this lane's output elements times 1/l, rounded to nearest even.</summary>")
        w(f"    public const string StoreNormalized{suffix(d)}{name} = {store_normalized_text(cvt, d)};")
        w("")
out[-1] = "}"

path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "AttentionTensorCoreKernels.g.cs")
with open(path, "w") as f:
    f.write("\n".join(out) + "\n")
