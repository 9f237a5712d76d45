"""Pieces the generated streamed GEMVs share (gen_gemv_stream_f32.py, gen_gemv_kn_stream_f32.py,
gen_gemv_nk_staged_f32.py, gen_gemv_kn16_stream.py): the row-cap entry point, one step of the halving lane sum, and
writing the output file.
Not a generator itself (no gen_ prefix): the others import it."""
import os


def halve(w, held, offset, lane):
    """One step of the lane sum by halving: lanes `offset` apart swap halves of their sums, each keeping one half and
    adding its partner's copy of it (n / 2 shuffles instead of n). Emits the step's body; returns the names kept."""
    h = len(held) // 2
    w(f"            bool upper = ({lane} & {offset}) != 0;")
    for i in range(h):
        lo, hi = held[i], held[i + h]
        w(f"            float send{i} = upper ? {lo} : {hi};")
        w(f"            {lo} = (upper ? {hi} : {lo}) + Warp.ShuffleXor(send{i}, {offset});")
    w(f"            first += upper ? {h} : 0;")
    w("            held >>= 1;")
    return held[:h]


def cap_entry(w, name, caps, parameters, arguments, body):
    """The kernel's entry point, one [IlgpuKernelVariant] per row cap: each variant calls its cap's body (`body` + cap),
    picked by the row-cap type argument, which folds the other bodies away."""
    w("    [IlgpuKernel]")
    for cap in caps:
        w(f"    [IlgpuKernelVariant(typeof(Const{cap}))]")
    w(f"    public static void {name}<TRowsCap>({parameters})")
    w("        where TRowsCap : struct, IKernelConstant")
    w("    {")
    w("        int cap = default(TRowsCap).Value;")
    for i, cap in enumerate(caps):
        w(f"        {'if' if i == 0 else 'else if'} (cap == {cap})")
        w("        {")
        w(f"            {body}{cap}({arguments});")
        w("        }")
    w("    }")


def write(out, file_name):
    """Writes the generated lines to src.Kernels/Ilgpu/`file_name` (LF, a final newline: the same bytes on every run)."""
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", file_name)
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        f.write("\n".join(out) + "\n")
