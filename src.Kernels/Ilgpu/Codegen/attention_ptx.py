"""PTX-emitting pieces shared by the attention generators (gen_attention_tensor_core_asm.py, gen_attention_wgmma_asm.py).

Both keep a warp's (or warpgroup's) scores in the mma C-fragment layout: register j of 8-key block j // 4 holds key
offset 8 (j // 4) + 2t + (j mod 2) of row g (j mod 4 < 2) or g + 8, so the online softmax, the split of the weights
into high and low 16-bit A fragments and the normalized store are the same text over different register names. Each
function takes those names as arguments and returns a list of PTX lines; callers join them with cs_string.
Not run on its own: imported by the generators (which run from this folder).
"""


def cs_string(lines):
    """A C# string literal of the PTX lines (newline + tab between them, as CudaAsm.Emit prints them)."""
    return '"' + "\\n\\t".join(lines) + '"'


def row_of(j):
    """Row of C-fragment register j: g (0) or g + 8 (1)."""
    return (j >> 1) & 1


def mma(dtype, c, a, b):
    return (f"mma.sync.aligned.m16n8k16.row.col.f32.{dtype}.{dtype}.f32 {{{c}}}, {{{a}}}, {{{b}}}, {{{c}}};")


def softmax_rows(sr, count, scale_op, limit_ops, row_max, row_sum):
    """The online-softmax step on `count` score registers sr0..: times scale_op (scale * log2 e); with limit_ops, key
    offsets >= limit_ops[0] (row g) / [1] (row g + 8) from the lane's first key hidden; per row the max over the quad
    (row_max, log2 units), the rescale factor xa<r> (exactly 1 for an unchanged max), weights 2^(s - m) in place and the
    partial sum folded into row_sum. Needs xm, xn, xh, xa, xr <2>, xt and the predicate xp declared."""
    lines = [f"mul.f32 {sr}{j}, {sr}{j}, {scale_op};" for j in range(count)]
    if limit_ops is not None:
        for j in range(count):
            # Register j holds key offset 8 (j / 4) + (j mod 2) from the lane's first key.
            lines.append(f"setp.gt.s32 xp, {limit_ops[row_of(j)]}, {(j >> 2) * 8 + (j & 1)};")
            lines.append(f"selp.f32 {sr}{j}, {sr}{j}, 0fFF800000, xp;")
    for r in range(2):
        js = [j for j in range(count) if row_of(j) == r]
        lines.append(f"max.NaN.f32 xm{r}, {sr}{js[0]}, {sr}{js[1]};")
        lines += [f"max.NaN.f32 xm{r}, xm{r}, {sr}{j};" for j in js[2:]]
        for mask_lane in (1, 2):
            lines += [f"shfl.sync.bfly.b32 xt, xm{r}, {mask_lane}, 31, 0xffffffff;", f"max.NaN.f32 xm{r}, xm{r}, xt;"]
        lines += [f"max.NaN.f32 xn{r}, xm{r}, {row_max}{r};",
                  # A row with no visible key yet keeps max -inf: its weights use 0 in place of the max.
                  f"setp.eq.f32 xp, xn{r}, 0fFF800000;", f"selp.f32 xh{r}, 0f00000000, xn{r}, xp;",
                  f"sub.f32 xa{r}, {row_max}{r}, xh{r};", f"ex2.approx.ftz.f32 xa{r}, xa{r};",
                  # An unchanged max gives exactly 1, so a caller may skip the rescale.
                  f"setp.eq.f32 xp, xn{r}, {row_max}{r};", f"selp.f32 xa{r}, 0f3F800000, xa{r}, xp;", f"mov.f32 {row_max}{r}, xn{r};"]
        for j in js:
            lines += [f"sub.f32 {sr}{j}, {sr}{j}, xh{r};", f"ex2.approx.ftz.f32 {sr}{j}, {sr}{j};"]
        lines.append(f"add.f32 xr{r}, {sr}{js[0]}, {sr}{js[1]};")
        lines += [f"add.f32 xr{r}, xr{r}, {sr}{j};" for j in js[2:]]
        lines.append(f"fma.rn.f32 {row_sum}{r}, {row_sum}{r}, xa{r}, xr{r};")
    return lines


def rescale_rows(acc, count):
    """Output accumulators acc0.. (count of them) times their row's factor xa0 (row g) / xa1 (row g + 8)."""
    return [f"mul.f32 {acc}{i}, {acc}{i}, xa{row_of(i)};" for i in range(count)]


def split_pair(cvt, bf16, high, low, odd, even, temps=("xb", "xc", "xf", "xg", "xha", "xhb")):
    """Weights `even` (low half) and `odd` (high half) as one 32-bit register of 16-bit high parts (`high`, rounded to
    nearest even by cvt), widened back to float32 (exact), and one of the rounded remainders (`low`). temps: the
    .b32 pair, the .f32 pair and the .b16 pair it needs."""
    b0, b1, f0, f1, h0, h1 = temps
    lines = [f"{cvt} {high}, {odd}, {even};"]
    if bf16:
        lines += [f"and.b32 {b0}, {high}, -65536;", f"shl.b32 {b1}, {high}, 16;", f"mov.b32 {f0}, {b0};", f"mov.b32 {f1}, {b1};"]
    else:
        lines += [f"mov.b32 {{{h1}, {h0}}}, {high};", f"cvt.f32.f16 {f0}, {h0};", f"cvt.f32.f16 {f1}, {h1};"]
    return lines + [f"sub.f32 {f0}, {odd}, {f0};", f"sub.f32 {f1}, {even}, {f1};", f"{cvt} {low}, {f0}, {f1};"]


def split_weights(cvt, bf16, keys, sr, hr, lr):
    """The weights sr0.. of `keys` keys as A fragments: high parts hr0.., low parts lr0.. (split_pair; the C layout of
    two 8-key blocks is the A layout of one k16 step). Needs xf, xg, xb, xc (.b32), xha, xhb."""
    lines = []
    for ks in range(keys // 16):
        for r in range(4):
            # A register r of k step ks: rows g (r even) / g + 8 (r odd), keys 2t.. of n-block 2 ks + r / 2.
            j0 = (2 * ks + (r >> 1)) * 4 + (r & 1) * 2
            idx = ks * 4 + r
            lines += split_pair(cvt, bf16, f"{hr}{idx}", f"{lr}{idx}", f"{sr}{j0 + 1}", f"{sr}{j0}")
    return lines


def store_lines(cvt, acc, blocks, p, scale_lo, scale_hi):
    """Rounds acc (blocks 8-column blocks) times scale_lo (row g) / scale_hi (row g + 8) to 16 bits; stores pairs at byte
    addresses %0 / %1 (0: row skipped). Temporaries are named with prefix p."""
    lines = ["{", f".reg .pred {p}lo, {p}hi;", f".reg .f32 {p}x, {p}y;", f".reg .b32 {p}pk;", f".reg .u64 {p}alo, {p}ahi;",
             f"setp.ne.u64 {p}lo, %0, 0;", f"setp.ne.u64 {p}hi, %1, 0;",
             f"cvta.to.global.u64 {p}alo, %0;", f"cvta.to.global.u64 {p}ahi, %1;"]
    for nb in range(blocks):
        for half, (pred, addr, scale) in enumerate(((f"{p}lo", f"{p}alo", scale_lo), (f"{p}hi", f"{p}ahi", scale_hi))):
            lines.append(f"mul.f32 {p}x, {acc}{nb * 4 + 2 * half}, {scale};")
            lines.append(f"mul.f32 {p}y, {acc}{nb * 4 + 2 * half + 1}, {scale};")
            lines.append(f"{cvt} {p}pk, {p}y, {p}x;")
            lines.append(f"@{pred} st.global.b32 [{addr}+{nb * 16}], {p}pk;")
    lines.append("}")
    return lines


def store_normalized(cvt, acc, blocks, p, row_sum, store_declarations_first=True):
    """Sums the quad's partial row sums (row_sum0 / 1), then stores O / l (0 where l = 0) as store_lines does. The
    declaration order (the store's temporaries before or after the sums') only keeps each generated text as it was."""
    lines = ["{", ".reg .f32 xl<2>;", ".reg .f32 xi<2>;", ".reg .f32 xt;", ".reg .pred xz;"]
    for r in range(2):
        lines += [f"mov.f32 xl{r}, {row_sum}{r};"]
        for mask_lane in (1, 2):
            lines += [f"shfl.sync.bfly.b32 xt, xl{r}, {mask_lane}, 31, 0xffffffff;", f"add.f32 xl{r}, xl{r}, xt;"]
        lines += [f"setp.eq.f32 xz, xl{r}, 0f00000000;", f"div.rn.f32 xi{r}, 0f3F800000, xl{r};", f"selp.f32 xi{r}, 0f00000000, xi{r}, xz;"]
    body = store_lines(cvt, acc, blocks, p, "xi0", "xi1")[1:]
    # Declarations first, then the sums, then the stores.
    decls = [b for b in body if b.startswith(".reg")]
    sum_decls = lines[1:5]
    head = lines[:1] + (decls + sum_decls if store_declarations_first else sum_decls + decls)
    return head + lines[5:] + [b for b in body if not b.startswith(".reg")]


def store_partial(acc, blocks, row_max, row_sum):
    """A split's partial for the decode combine (AttentionDecodeKernels.DecodeCombine16): sums the quad's partial row
    sums (row_sum0 / 1), then stores the unnormalized outputs acc (blocks 8-column blocks) as float32 pairs at byte
    addresses %0 (row g) / %1 (row g + 8) and (m, l) at %2 / %3, m in natural-log units (row_max is in log2 units);
    0: that store is skipped."""
    lines = ["{", ".reg .f32 xl<2>;", ".reg .f32 xm<2>;", ".reg .f32 xt;", ".reg .pred xlo, xhi, xslo, xshi;",
             ".reg .u64 xalo, xahi, xblo, xbhi;"]
    for r in range(2):
        lines.append(f"mov.f32 xl{r}, {row_sum}{r};")
        for mask_lane in (1, 2):
            lines += [f"shfl.sync.bfly.b32 xt, xl{r}, {mask_lane}, 31, 0xffffffff;", f"add.f32 xl{r}, xl{r}, xt;"]
        lines.append(f"mul.f32 xm{r}, {row_max}{r}, 0f3F317218;")
    for i, (pred, addr) in enumerate((("xlo", "xalo"), ("xhi", "xahi"), ("xslo", "xblo"), ("xshi", "xbhi"))):
        lines += [f"setp.ne.u64 {pred}, %{i}, 0;", f"cvta.to.global.u64 {addr}, %{i};"]
    for nb in range(blocks):
        for half, (pred, addr) in enumerate((("xlo", "xalo"), ("xhi", "xahi"))):
            lines.append(f"@{pred} st.global.v2.f32 [{addr}+{nb * 32}], {{{acc}{nb * 4 + 2 * half}, {acc}{nb * 4 + 2 * half + 1}}};")
    lines += ["@xslo st.global.v2.f32 [xblo], {xm0, xl0};", "@xshi st.global.v2.f32 [xbhi], {xm1, xl1};", "}"]
    return lines
