#!/usr/bin/env python3
"""Summary of an A/B run of two harness builds in alternating processes (run-on-gpu.sh ab).

Usage: ab_summary.py DIR OUT_CSV > ab.md
DIR holds one harness CSV per process, named BUILD-ROUND.csv (BUILD is old or new). OUT_CSV gets every row of them
with the process label in front. The markdown on stdout has the accuracy counts per build and, per bench case and
build, the lowest, median and highest time of the processes, the speed change of the medians, and a note where a
build's processes fall into two modes (Run 129 found rows whose every launch in a process runs in one of two modes,
so a change of medians over few processes can be a change of modes).
"""
import csv
import os
import re
import statistics
import sys

# Two modes: a gap between consecutive sorted process times larger than this fraction, with at least two processes on
# each side and each side narrower than the gap.
MODE_GAP = 0.03


def modes(times):
    """Returns (low side, high side) where the sorted times split into two modes, else None."""
    t = sorted(times)
    if len(t) < 4:
        return None
    gaps = [(t[i + 1] / t[i] - 1, i) for i in range(len(t) - 1)]
    gap, i = max(gaps)
    low, high = t[: i + 1], t[i + 1:]
    if gap < MODE_GAP or len(low) < 2 or len(high) < 2:
        return None
    if low[-1] / low[0] - 1 > gap / 2 or high[-1] / high[0] - 1 > gap / 2:
        return None
    return low, high


def main():
    folder, out_csv = sys.argv[1], sys.argv[2]
    files = sorted(f for f in os.listdir(folder) if re.fullmatch(r"(old|new)-\d+\.csv", f))
    if not files:
        print(f"ab_summary: no BUILD-ROUND.csv files in {folder}", file=sys.stderr)
        return 1

    header = None
    rows = []
    for name in files:
        with open(os.path.join(folder, name), newline="") as f:
            reader = csv.reader(f)
            file_header = next(reader, None)
            if file_header is None:
                continue
            header = header or file_header
            process = name[:-4]
            rows.extend([process] + r for r in reader)
    if header is None:
        print("ab_summary: every process CSV is empty", file=sys.stderr)
        return 1

    with open(out_csv, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["process"] + header)
        writer.writerows(rows)

    col = {name: i + 1 for i, name in enumerate(header)}
    accuracy = {"old": {}, "new": {}}
    times = {}
    order = []
    for r in rows:
        build = r[0].split("-")[0]
        suite, status = r[col["suite"]], r[col["status"]]
        case = f'{r[col["op"]]} {r[col["dtype"]]} {r[col["shape"]]}'
        if suite == "accuracy":
            accuracy[build][status] = accuracy[build].get(status, 0) + 1
            if status == "FAIL":
                accuracy[build].setdefault("failed", set()).add(case)
        elif suite == "bench" and status == "PASS" and r[col["ms"]]:
            if case not in times:
                times[case] = {"old": [], "new": []}
                order.append(case)
            times[case][build].append(float(r[col["ms"]]))

    processes = {b: sum(1 for f in files if f.startswith(b + "-")) for b in ("old", "new")}
    print("# A/B of two builds, alternating processes\n")
    print(f'Processes: old {processes["old"]}, new {processes["new"]}. Accuracy (every process checks its cases first):')
    for build in ("old", "new"):
        counts = accuracy[build]
        failed = ", ".join(sorted(counts.get("failed", ())))
        print(f'- {build}: PASS {counts.get("PASS", 0)}, FAIL {counts.get("FAIL", 0)}, SKIP {counts.get("SKIP", 0)}'
              + (f" (failed: {failed})" if failed else ""))
    print()
    print("| case | old ms, median (lowest–highest) | new ms, median (lowest–highest) | speed change of the medians | modes |")
    print("|---|---|---|---|---|")
    for case in order:
        old, new = times[case]["old"], times[case]["new"]
        cells = []
        for t in (old, new):
            cells.append(f"{statistics.median(t):.4f} ({min(t):.4f}–{max(t):.4f})" if t else "—")
        change = f"{(statistics.median(old) / statistics.median(new) - 1) * 100:+.1f}%" if old and new else "—"
        notes = []
        for build, t in (("old", old), ("new", new)):
            split = modes(t)
            if split:
                low, high = split
                notes.append(f"{build}: {len(low)} at {min(low):.4f}–{max(low):.4f}, {len(high)} at {min(high):.4f}–{max(high):.4f}")
        print(f"| {case} | {cells[0]} | {cells[1]} | {change} | {'; '.join(notes) or '—'} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
