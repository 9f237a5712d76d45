#!/usr/bin/env python3
"""Side-by-side table of the GPU harness bench CSV against torch_reference_bench.py's figures (same card, same run).

Usage:
  compare.py --bench bench.csv [--torch anchor.csv] [--torch-log torch.txt] [--torch-extra torch-extra.csv]
             [--gems-fallback h100_torch_flaggems.csv] [--out compare.md] [--into docs/perf/h100.md --smi nvidia-smi.txt]

The reference figures come from anchor.csv (what torch_reference_bench.py writes to $OUT) or, failing that, from its
printed lines ("<op> <dtype> torch <ms> ms <rate> <unit> | gems <ms> ms <rate> <unit> | ..."). A harness row is matched
to a script row only on the script's own shape. Targets (from the issue):
  element-wise (add, mul, silu, ...)                        ours >= 0.97 x PyTorch
  silu_and_mul, rms_norm, fused_add_rms_norm, layer_norm,
  softmax, rotary_embedding                                  ours >= FlagGems
  mm (4096^3)                                                f32 >= 0.8 x PyTorch; f16/bf16 >= 0.6 x PyTorch
  decode GEMV (mm / mm_tb with M <= 64)                      >= 85% of the copy rate (our device copy, same dtype, same run)
  attention prefill (bfloat16)                               >= 0.5 x PyTorch (from --torch-extra; n/a without it)
  attention decode                                           >= 70% of the copy rate
A decode GEMV or decode attention target is marked out of reach ("MISS (bound)") when it needs less time than the
fastest any single launch can be here: the run's launch floor (op "launch", one thread copying one float, same timer)
plus the row's bytes at the memory's peak (memory_peak_gbps in the device_create row's note, or --memory-peak-gbps).
Where the run has read-probe rows (op "read", ReadCeiling.cs: a kernel that only reads a buffer, in several patterns),
each decode row is also set beside the fastest read of the bytes it must read at least (a read of 90-100% of its
bytes: its weight, or its K and V), and a miss whose target needs less time than that read is marked "MISS (read-bound)":
no kernel tried here reads those bytes that fast, let alone computes on them. The read rows themselves are summarized in
a table of their own (fastest and slowest pattern per size) instead of one row each.
--torch-extra (torch_decode_reference.py's CSV, keyed by the harness's own op / dtype / shape labels) adds PyTorch's
time for the products and attention cases the anchor script lacks; its PyTorch column is in our unit for that row
(our rate x our time / PyTorch's time). Rows without a target are listed with their figures. When FlagGems does not import on the GPU machine (its column is
nan), --gems-fallback takes FlagGems figures from an earlier run's CSV (same columns as anchor.csv); such figures and
the verdicts built on them are marked with a dagger: another run, indicative only. --into writes the same table into a
markdown file's standing-table block (docs/perf/h100.md's; the two marker lines STANDING_BEGIN / STANDING_END below),
headed by the card, driver and date from the run's nvidia-smi.txt (--smi). Standard library only.
"""
import argparse
import csv
import math
import os
import re
import sys

# torch_reference_bench.py's shapes, written as the harness labels them.
SCRIPT_SHAPES = {
    "copy": "67108864",
    "add": "67108864",
    "mul": "67108864",
    "silu": "67108864",
    "silu_and_mul": "4096x11008",
    "rms_norm": "4096x4096",
    "fused_add_rms_norm": "4096x4096",
    "layer_norm": "4096x4096",
    "softmax": "4096x32000",
    "rotary_embedding": "4096x32+8x128",
    "mm": "4096x4096x4096",
}
BEAT_GEMS = {"silu_and_mul", "rms_norm", "fused_add_rms_norm", "layer_norm", "softmax", "rotary_embedding"}
# The one prefill case the issue gives a target (>= 0.5x PyTorch in bfloat16).
PREFILL_TARGET_SHAPE = "1x32/8x4096x4096x128"
LINE = re.compile(
    r"^(?P<op>\S+)\s+(?P<dtype>\S+)\s+torch\s+(?P<tms>\S+)\s+ms\s+(?P<trate>\S+)\s+(?P<unit>GB/s|TFLOP/s)\s+\|\s+"
    r"gems\s+(?P<gms>\S+)\s+ms\s+(?P<grate>\S+)\s+(?:GB/s|TFLOP/s)")


def num(s):
    try:
        v = float(s)
        return v if math.isfinite(v) else None
    except (TypeError, ValueError):
        return None


def load_reference(anchor, log):
    ref = {}
    if anchor and os.path.isfile(anchor):
        with open(anchor, newline="") as fh:
            for r in csv.DictReader(fh):
                ref[(r["op"], r["dtype"])] = dict(torch=num(r.get("torch_rate")), gems=num(r.get("gems_rate")), unit=r.get("unit", ""))
    if not ref and log and os.path.isfile(log):
        with open(log) as fh:
            for line in fh:
                m = LINE.match(line.strip())
                if m:
                    ref[(m["op"], m["dtype"])] = dict(torch=num(m["trate"]), gems=num(m["grate"]), unit=m["unit"])
    return ref


def load_extra(path):
    extra = {}
    if path and os.path.isfile(path):
        with open(path, newline="") as fh:
            for r in csv.DictReader(fh):
                ms = num(r.get("torch_ms"))
                if ms:
                    extra[(r["op"], r["dtype"], r["shape"])] = ms
    return extra


def fmt(v, unit=""):
    if v is None:
        return "—"
    return f"{v:.1f}{(' ' + unit) if unit else ''}" if v >= 10 else f"{v:.3g}{(' ' + unit) if unit else ''}"


# The block of a markdown file that --into replaces: everything from the first line to the second, both kept.
STANDING_BEGIN = "<!-- compare.py --into: the standing table, generated from one run's files; edit compare.py, not this block -->"
STANDING_END = "<!-- compare.py --into: end of the standing table -->"
MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]


def card_heading(smi_path):
    """'<card>, driver <version>, <date> UTC' from run-on-gpu.sh's nvidia-smi.txt: its query line and the clock line
    nvidia-smi prints above its table. Missing or unreadable: an error naming the file (the heading is the table's claim
    of where it was measured)."""
    if not smi_path or not os.path.isfile(smi_path):
        sys.exit(f"compare.py: --into needs --smi, the run's nvidia-smi.txt (card, driver, date); got {smi_path!r}")
    with open(smi_path) as fh:
        lines = [ln.rstrip("\n") for ln in fh]
    card = driver = date = None
    for i, ln in enumerate(lines):
        if ln.startswith("name, driver_version") and i + 1 < len(lines):
            fields = [f.strip() for f in lines[i + 1].split(",")]
            card, driver = (fields + [None, None])[:2]
        m = re.match(r"^\w{3} (\w{3}) +(\d{1,2}) (\d\d:\d\d):\d\d (\d{4})$", ln.strip())
        if m and date is None and m.group(1) in MONTHS:
            date = f"{m.group(4)}-{MONTHS.index(m.group(1)) + 1:02d}-{int(m.group(2)):02d} {m.group(3)}"
    if not (card and driver and date):
        sys.exit(f"compare.py: {smi_path} lacks the card / driver query line or nvidia-smi's date line (run-on-gpu.sh's smi step writes both)")
    return f"{card}, driver {driver}, {date} UTC"


def write_into(path, text, heading):
    """Replaces the standing-table block of the markdown file at path with heading and text (its title line dropped).
    The file is rewritten whole through a temporary file, so an error leaves it as it was."""
    with open(path) as fh:
        doc = fh.read()
    begin, end = doc.find(STANDING_BEGIN), doc.find(STANDING_END)
    if begin < 0 or end < begin:
        sys.exit(f"compare.py: {path} has no standing-table block; put these two lines where the table goes:\n"
                 f"{STANDING_BEGIN}\n{STANDING_END}")
    body = text.split("\n", 1)[1].lstrip("\n")
    block = f"{STANDING_BEGIN}\n\n**Measured on {heading}.**\n\n{body}\n{STANDING_END}"
    tmp = path + ".tmp"
    with open(tmp, "w") as fh:
        fh.write(doc[:begin] + block + doc[end + len(STANDING_END):])
    os.replace(tmp, path)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bench", required=True, help="harness bench CSV (--suite bench --csv ...)")
    ap.add_argument("--torch", help="anchor.csv written by torch_reference_bench.py")
    ap.add_argument("--torch-log", help="stdout of torch_reference_bench.py (used when anchor.csv is missing)")
    ap.add_argument("--torch-extra", help="torch-extra.csv written by torch_decode_reference.py (same run)")
    ap.add_argument("--gems-fallback", help="anchor-style CSV of an earlier run, for FlagGems figures missing in this run (marked)")
    ap.add_argument("--out", help="markdown output (also printed)")
    ap.add_argument("--into", help="a markdown file whose standing-table block (between the two marker lines STANDING_BEGIN "
                                   "and STANDING_END of this script) is replaced by this table, headed by card, driver and "
                                   "date from --smi; the rest of the file is kept as it is")
    ap.add_argument("--smi", help="nvidia-smi.txt of the same run (run-on-gpu.sh's smi step), for --into's heading")
    ap.add_argument("--memory-peak-gbps", type=float,
                    help="the memory's peak in GB/s (default: memory_peak_gbps in the bench CSV's device_create note, which the "
                         "harness derives from the device's memory clock and bus width)")
    ap.add_argument("--fp32-peak-tflops", type=float, default=67.0,
                    help="the card's float32 FMA peak without tensor cores, TFLOP/s (H100 / H200 SXM: 132 SMs x 128 lanes x "
                         "2 FLOP x 1.98 GHz = 67); a float32 GEMV target that would need more is marked as bound")
    a = ap.parse_args()

    with open(a.bench, newline="") as fh:
        all_rows = list(csv.DictReader(fh))
    rows = [r for r in all_rows if r.get("suite") == "bench"]
    ref = load_reference(a.torch, a.torch_log)
    fallback = load_reference(a.gems_fallback, None) if a.gems_fallback else {}
    extra = load_extra(a.torch_extra)
    used_fallback = False

    copy_rate = {}
    for r in rows:
        if r["op"] == "copy" and r["status"] == "PASS" and num(r["GB/s"]) is not None:
            copy_rate[r["dtype"]] = max(copy_rate.get(r["dtype"], 0), num(r["GB/s"]))

    # Copies by dtype with the bytes they move, so a GEMV can be set beside a copy of its own size: small transfers do
    # not reach the large copy's rate (launch, ramp-up and the last wave), and a GEMV's weight is 32-90 MB.
    copies = {}
    for r in rows:
        if r["op"] == "copy" and r["status"] == "PASS" and num(r["GB/s"]) is not None and num(r.get("bytes")):
            copies.setdefault(r["dtype"], []).append((num(r["bytes"]), num(r["GB/s"])))

    # The fastest any single launch can be (LaunchFloor.cs): the launch floor of this run (one thread copying one float,
    # same timer) plus the row's bytes moved at the memory's peak (from the device's memory clock and bus width).
    floor_ms = min((num(r["ms"]) for r in rows if r["op"] == "launch" and r["status"] == "PASS" and num(r["ms"])), default=None)
    peak_gbps = a.memory_peak_gbps
    if peak_gbps is None:
        notes = (re.search(r"memory_peak_gbps=([0-9.]+)", r.get("note") or "") for r in all_rows if r.get("op") == "device_create")
        peak_gbps = next((float(m.group(1)) for m in notes if m), None)

    def fastest_ms(nbytes):
        """The least time one launch that moves nbytes can take here, else None (no floor or no peak in this run)."""
        return floor_ms + nbytes / (peak_gbps * 1e6) if floor_ms and peak_gbps and nbytes else None

    # The read probe's rows: bytes read, median ms, pattern (the shape's part after the colon).
    reads = [(num(r["bytes"]), num(r["ms"]), r["shape"].partition(":")[2]) for r in rows
             if r["op"] == "read" and r["status"] == "PASS" and num(r.get("bytes")) and num(r["ms"])]

    def fastest_read(nbytes):
        """(ms, pattern, bytes) of the fastest read of 90-100% of nbytes in this run, else None."""
        fit = [x for x in reads if nbytes and 0.9 * nbytes <= x[0] <= nbytes]
        return min(((ms, pattern, b) for b, ms, pattern in fit), default=None)

    def same_bytes_copy(dt, nbytes):
        """The rate of the copy of this dtype whose bytes are nearest (within 1.5x) to nbytes, else None."""
        best = None
        for b, rate in copies.get(dt, []):
            if nbytes and max(b, nbytes) / min(b, nbytes) <= 1.5 and (best is None or abs(b - nbytes) < abs(best[0] - nbytes)):
                best = (b, rate)
        return best[1] if best else None

    out = []
    out.append("# GemsInjector ILGPU kernels vs PyTorch / FlagGems (same card, same run)")
    out.append("")
    out.append(f"Harness CSV: `{a.bench}`; reference: `{a.torch if a.torch and os.path.isfile(a.torch) else a.torch_log}` "
               f"({len(ref)} rows{'' if ref else ': none found, ratios to PyTorch/FlagGems are n/a'}).")
    out.append("Rates: GB/s = bytes (inputs read once + outputs written once, as the script counts them) / median time; "
               "TFLOP/s for mm / attention. Copy rate (our device copy, same dtype): "
               + (", ".join(f"{k} {v:.0f} GB/s" for k, v in sorted(copy_rate.items())) or "not measured") + ".")
    out.append("Fastest one launch (decode GEMV and decode attention rows): "
               + (f"the launch floor {floor_ms * 1e3:.2f} µs (op `launch`: one thread copies one float, same timer) + the row's "
                  f"bytes at the memory's peak {peak_gbps:.0f} GB/s; a target that needs less time is out of reach for any kernel."
                  if floor_ms and peak_gbps else "not known in this run (no launch floor row or no memory peak)."))
    out.append("")
    out.append("| op | dtype | shape | ours | PyTorch | FlagGems | ratio | target | |")
    out.append("|---|---|---|---|---|---|---|---|---|")
    misses, met, unknown, bound_count, read_bound_count = [], 0, 0, 0, 0
    for r in rows:
        if r["status"] != "PASS" or r["op"] == "read":
            continue
        op, dt, shape, cat = r["op"], r["dtype"], r["shape"], r.get("category", "")
        gbps, tflops = num(r["GB/s"]), num(r["TFLOP/s"])
        flop_unit = tflops is not None
        ours = tflops if flop_unit else gbps
        unit = "TFLOP/s" if flop_unit else "GB/s"
        rf = ref.get((op, dt)) if SCRIPT_SHAPES.get(op) == shape else None
        pt = rf["torch"] if rf else None
        fg = rf["gems"] if rf else None
        ours_ms, extra_ms = num(r["ms"]), extra.get((op, dt, shape))
        # PyTorch's speed relative to ours, from the extra script: its column is then in our unit for the row.
        torch_speed = ours_ms / extra_ms if pt is None and extra_ms and ours_ms else None
        if torch_speed and ours is not None:
            pt = ours * torch_speed
        dagger = ""
        if fg is None and SCRIPT_SHAPES.get(op) == shape and (op, dt) in fallback and fallback[(op, dt)]["gems"] is not None:
            fg, dagger, used_fallback = fallback[(op, dt)]["gems"], "†", True
        ratio, target, bound, read_bound, needed_ratio = None, "", False, False, None
        if cat == "gemv" or cat == "attention-decode":
            need = 0.85 if cat == "gemv" else 0.70
            cr = copy_rate.get(dt)
            target = f">= {need:.0%} of copy"
            if cr and gbps is not None:
                ratio, needed_ratio = gbps / cr, need
            nbytes, nflops = num(r.get("bytes")), num(r.get("flops"))
            # The time the target allows this row.
            target_ms = nbytes / (need * cr * 1e6) if nbytes and cr else None
            small = same_bytes_copy(dt, nbytes)
            if small and gbps is not None:
                target += f" (a copy of these bytes: {small / cr:.0%} of copy; ours {gbps / small:.0%} of it)"
            # However good the kernel, it pays the launch floor and moves its bytes no faster than the memory's peak.
            least = fastest_ms(nbytes)
            if least and cr and gbps is not None:
                reachable = nbytes / (least * 1e6)
                target += f"; one launch of these bytes: at best {reachable / cr:.0%} of copy, ours {gbps / reachable:.0%} of that"
                if reachable / cr < need:
                    bound = True
                    target += (f" — out of reach: {need:.0%} of copy needs {target_ms * 1e3:.2f} µs, the launch floor "
                               f"{floor_ms * 1e3:.2f} µs + these bytes at the memory's peak {nbytes / (peak_gbps * 1e6) * 1e3:.2f} µs")
            # Without tensor cores a float32 product's FLOPs can cap its byte rate below the target.
            if dt == "float32" and cr and nbytes and nflops:
                needed = nflops * need * cr * 1e9 / nbytes / 1e12
                if needed > a.fp32_peak_tflops:
                    bound = True
                    target += (f"; out of reach: {need:.0%} of copy needs {needed:.0f} TFLOP/s of float32 FMA, "
                               f"above the card's {a.fp32_peak_tflops:.0f}")
            # Every such row reads its weight (or its K and V) at least, no faster than the fastest read of those bytes.
            read = fastest_read(nbytes)
            if read and cr and gbps is not None and ours_ms:
                read_ms, pattern, read_bytes = read
                target += (f"; the fastest read of its {read_bytes / 1e6:.1f} MB ({pattern}): {read_ms * 1e3:.2f} µs, "
                           f"ours {read_ms / ours_ms:.0%} of that speed")
                if target_ms < read_ms and not bound:
                    read_bound = True
                    target += f" — read-bound: {need:.0%} of copy needs {target_ms * 1e3:.2f} µs"
            ours, unit = gbps, "GB/s"
            if torch_speed and ours is not None:
                pt = ours * torch_speed
        elif cat == "attention-prefill":
            # The prefill target names one case (bfloat16, causal, 32 / 8 heads, 4096 tokens, head size 128); the
            # other formats and shapes get their ratio without a verdict.
            if extra_ms and ours_ms:
                ratio = extra_ms / ours_ms
            if dt == "bfloat16" and op == "sdpa_causal" and shape == PREFILL_TARGET_SHAPE:
                target = ">= 0.5x PyTorch" + ("" if extra_ms else " (no same-run figure)")
                needed_ratio = 0.5
        elif op == "mm" and shape == SCRIPT_SHAPES["mm"] and pt:
            need = 0.8 if dt == "float32" else 0.6
            target = f">= {need}x PyTorch"
            if pt:
                ratio, needed_ratio = ours / pt, need
        elif op in BEAT_GEMS and rf:
            target = ">= FlagGems" + dagger
            if fg:
                ratio, needed_ratio = ours / fg, 1.0
            else:
                target += " (no FlagGems figure)"
        elif cat == "elementwise" and rf:
            target = ">= 0.97x PyTorch"
            if pt:
                ratio, needed_ratio = ours / pt, 0.97
        elif op == "copy" and rf and pt:
            ratio = ours / pt
            target = "(ILGPU copy / torch copy)"
        # A row has a verdict where it has both its ratio and the ratio its target needs.
        ok = None if ratio is None or needed_ratio is None else ratio >= needed_ratio
        mark = "" if ok is None else ("ok" if ok else "**MISS** (bound)" if bound else "**MISS** (read-bound)" if read_bound else "**MISS**") + (dagger if op in BEAT_GEMS else "")
        # How much faster a missed row must run to meet its target.
        short = f"short by {needed_ratio / ratio - 1:.1%}" if ok is False else ""
        if short:
            mark += ", " + short
        if ok is True:
            met += 1
        elif ok is False:
            bound_count += bound
            read_bound_count += read_bound
            misses.append(f"{op} {dt} {shape}: {fmt(ours, unit)}, {ratio:.2f}, {short} ({target})")
        elif target.startswith(">="):
            unknown += 1
        out.append(f"| {op} | {dt} | {shape} | {fmt(ours, unit)} | {fmt(pt)} | {fmt(fg)}{dagger} | "
                   f"{'—' if ratio is None else f'{ratio:.2f}'} | {target} | {mark} |")
    out.append("")
    if used_fallback:
        out.append(f"† FlagGems figure from `{a.gems_fallback}` (another run, FlagGems did not give one here): not a "
                   "same-run comparison, indicative only.")
    if reads:
        out.append("Read probe (op `read`: a kernel that only reads, one sum per group; each pattern a row of the CSV; "
                   "stride = grid-stride walk, chunk = a contiguous slice per group, both in 16-byte loads, then groups per SM "
                   "x loads in flight per thread; bulk = the slice through the bulk copy engine into 16 KB shared-memory "
                   "stages, then groups per SM x stages):")
        out.append("")
        out.append("| bytes | patterns | fastest | µs | GB/s | of the memory's peak | slowest | µs |")
        out.append("|---|---|---|---|---|---|---|---|")
        for b in sorted({x[0] for x in reads}):
            at = sorted((ms, pattern) for nb, ms, pattern in reads if nb == b)
            peak = f"{b / (at[0][0] * 1e6) / peak_gbps:.0%}" if peak_gbps else "—"
            out.append(f"| {b / 1e6:.1f} MB | {len(at)} | {at[0][1]} | {at[0][0] * 1e3:.2f} | {b / (at[0][0] * 1e6):.0f} | {peak} "
                       f"| {at[-1][1]} | {at[-1][0] * 1e3:.2f} |")
        out.append("")
    out.append(f"Targets met: {met}; missed: {len(misses)} (out of reach for one launch: {bound_count}; read-bound: "
               f"{read_bound_count}); target without a same-run reference: {unknown}.")
    for m in misses:
        out.append(f"- MISS {m}")
    bad = [r for r in rows if r["status"] != "PASS"]
    if bad:
        out.append("")
        out.append("Not timed (FAIL or SKIP in the harness):")
        for r in bad:
            out.append(f"- {r['status']} {r['op']} {r['dtype']} {r['shape']}: {r.get('note', '')}")
    text = "\n".join(out) + "\n"
    if a.out:
        with open(a.out, "w") as fh:
            fh.write(text)
    if a.into:
        write_into(a.into, text, card_heading(a.smi))
    sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
