#!/usr/bin/env python3
"""Summarizes Nsight Compute exports of the `profile` step of run-on-gpu.sh as Markdown.

Input: a folder holding, per profiled case i, `case<i>.txt` (the case's harness filter on its first line),
`details<i>.txt` (`ncu --page details`) and `source<i>.csv` (`ncu --page source --csv --print-source sass`).
Per kernel (first launch of each name in a case): duration, DRAM throughput, occupancy, registers, the SMs' active share
of the elapsed cycles (and ncu's spread of them when its workload-distribution rule fires), the warp
instructions executed, the stall reasons' shares of the warp-state samples, the opcode mix, and the basic blocks that
take the most samples or instructions: where the issue slots and the waits of a kernel go.

Usage: ncu_summary.py FOLDER > profile.md
"""
import collections
import csv
import glob
import os
import re
import sys

DETAIL_METRICS = ("Duration", "DRAM Throughput", "Achieved Occupancy", "Theoretical Occupancy", "Registers Per Thread",
                  "Grid Size", "Block Size", "Dynamic Shared Memory Per Block", "Waves Per SM", "Average SM Active Cycles",
                  "Total SM Elapsed Cycles", "# SMs")
# ncu's workload-distribution rule, wrapped over several lines of the details page when it fires.
SM_SPREAD = re.compile(r"One or more SMs have a much higher number of active cycles than the average number of active "
                       r"cycles\. Maximum instance value is ([\d.]+)% above the average, while the minimum instance value "
                       r"is ([\d.]+)% below the average")


def details(path):
    """{kernel: {metric: 'value unit'}} from the first launch of each kernel name in a details page, with the SMs'
    active share of the elapsed cycles (the rest is an SM idle while others still run: start, tail, imbalance) and
    ncu's spread of the SMs' active cycles where its rule reports one."""
    kernels, texts, current = {}, {}, None
    for line in open(path, encoding="utf-8", errors="replace"):
        m = re.match(r"^  (\S+) \(\d+, \d+, \d+\)x\(\d+, \d+, \d+\)", line)
        if m:
            current = None if m.group(1) in kernels else m.group(1)
            if current:
                kernels[current], texts[current] = {}, []
            continue
        if current is None:
            continue
        texts[current].append(line.strip())
        for name in DETAIL_METRICS:
            m = re.match(rf"^\s+{re.escape(name)}\s+(\S+)?\s+([\d.,]+)\s*$", line)
            if m and name not in kernels[current]:
                kernels[current][name] = f"{m.group(2)} {m.group(1) or ''}".strip()
    for kernel, metrics in kernels.items():
        # Both in the SMs' own clock, per SM: the speed-of-light "Elapsed Cycles" is the slowest GPC's count, a different
        # clock and span (it read up to 5 points lower on the same launches, Run 145).
        active, total, sms = (number(metrics.pop(k, "0").split()[0].replace(",", "")) for k in
                              ("Average SM Active Cycles", "Total SM Elapsed Cycles", "# SMs"))
        if active and total and sms:
            metrics["SM Active"] = f"{active * sms / total:.0%} of the elapsed cycles"
        spread = SM_SPREAD.search(" ".join(texts[kernel]))
        if spread:
            metrics["SM Active Spread"] = f"busiest +{spread.group(1)}%, least -{spread.group(2)}% of the average"
    return kernels


def sources(path):
    """{kernel: (header, rows)} from the first launch of each kernel name in a source-page CSV."""
    out, current = {}, None
    with open(path, encoding="utf-8", errors="replace", newline="") as fh:
        for row in csv.reader(fh):
            if not row:
                continue
            if row[0] == "Kernel Name":
                current = None if row[1] in out else row[1]
                if current:
                    out[current] = [None, []]
            elif current and row[0] == "Address":
                out[current][0] = row
            elif current and out[current][0] is not None:
                out[current][1].append(row)
    return out


def number(text):
    try:
        return float(text)
    except ValueError:
        return 0.0


def opcode(sass):
    parts = sass.split()
    if parts and parts[0].startswith("@"):
        parts = parts[1:]
    return parts[0].split(".")[0] if parts else ""


def summarize(kernel, header, rows, metrics):
    col = {h: i for i, h in enumerate(header)}
    samples = [number(r[col["Warp Stall Sampling (All Samples)"]]) for r in rows]
    executed = [number(r[col["Instructions Executed"]]) for r in rows]
    total_samples, total_executed = sum(samples) or 1.0, sum(executed) or 1.0
    lines = [f"### `{kernel}`", ""]
    lines.append(", ".join(f"{k}: {v}" for k, v in metrics.items()) or "(no details page entry)")
    lines.append("")
    lines.append(f"{len(rows)} SASS instructions; {total_executed:,.0f} warp instructions executed; {total_samples:,.0f} warp-state samples.")
    stalls = [h for h in header if h.startswith("stall_") and "Not Issued" not in h]
    shares = sorted(((sum(number(r[col[h]]) for r in rows) / total_samples, h[6:]) for h in stalls), reverse=True)
    lines.append("Stalls: " + ", ".join(f"{name} {share:.0%}" for share, name in shares if share >= 0.02) + ".")
    mix = collections.Counter()
    for r, e in zip(rows, executed):
        mix[opcode(r[col["Source"]])] += e
    lines.append("Executed: " + ", ".join(f"{op} {n / total_executed:.0%}" for op, n in mix.most_common(12)) + ".")
    # Basic blocks: runs of instructions with one execution count, closed by a branch, exit or barrier.
    blocks, block = [], None
    for r, s, e in zip(rows, samples, executed):
        sass = r[col["Source"]].strip()
        if block is None or block["count"] != e or block["closed"]:
            block = {"first": r[0][-5:], "last": r[0][-5:], "count": e, "n": 0, "samples": 0.0, "ops": collections.Counter(), "closed": False}
            blocks.append(block)
        block["last"], block["n"], block["samples"] = r[0][-5:], block["n"] + 1, block["samples"] + s
        block["ops"][opcode(sass)] += 1
        block["closed"] = bool(re.search(r"\b(BRA|EXIT|BAR|RET)\b", sass))
    lines += ["", "| block (address low bits) | executions | size | instructions | samples | opcodes |", "|---|---|---|---|---|---|"]
    for b in sorted(blocks, key=lambda b: -max(b["samples"] / total_samples, b["count"] * b["n"] / total_executed))[:8]:
        ops = " ".join(op for op, _ in b["ops"].most_common(6))
        lines.append(f"| {b['first']}–{b['last']} | {b['count']:,.0f} | {b['n']} | {b['count'] * b['n'] / total_executed:.1%} | "
                     f"{b['samples'] / total_samples:.1%} | {ops} |")
    return lines + [""]


def main(folder):
    out = ["# Nsight Compute summary", ""]
    for case in sorted(glob.glob(os.path.join(folder, "case*.txt")), key=lambda p: int(re.sub(r"\D", "", os.path.basename(p)) or 0)):
        i = re.sub(r"\D", "", os.path.basename(case))
        out += [f"## Case {i}: `{open(case, encoding='utf-8').readline().strip()}`", ""]
        detail_path, source_path = os.path.join(folder, f"details{i}.txt"), os.path.join(folder, f"source{i}.csv")
        if not os.path.exists(source_path):
            out += ["(no profile: see the step's log)", ""]
            continue
        metrics = details(detail_path) if os.path.exists(detail_path) else {}
        for kernel, (header, rows) in sources(source_path).items():
            if header is not None and rows:
                out += summarize(kernel, header, rows, metrics.get(kernel, {}))
    print("\n".join(out))


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])
