#!/usr/bin/env bash
# Session 34, Run 211: where the x 11008 products stand against the memory system: Nsight Compute's speed-of-light and
# memory-workload sections (DRAM, L2 and L1 throughput, hit rates) for one launch of each product and of the fastest
# plain reads of the same bytes, one process per case (the kernel picked by name).
set -uo pipefail
export LD_LIBRARY_PATH="/usr/local/nvidia/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
R=$OUT/run211; mkdir -p $R
dir=/tmp/gems-l2; rm -rf $dir; mkdir -p $dir; tar -xJf .gpu/harness.tar.xz -C $dir; H=$dir/harness/GemsInjector.GpuHarness
ncu_bin="$(command -v ncu || ls /usr/local/cuda/bin/ncu /opt/nvidia/nsight-compute/*/ncu 2>/dev/null | head -1)"
i=0
while IFS='|' read -r kernel filter; do
  i=$((i + 1))
  echo "$i|$kernel|$filter" >> $R/cases.txt
  timeout 120 $ncu_bin --clock-control none --section SpeedOfLight --section MemoryWorkloadAnalysis -k "regex:$kernel" \
    --launch-skip 2 --launch-count 1 $H --device cuda --suite bench --filter "$filter" --runs 3 --budget-s 30 > $R/ncu-$i.txt 2>&1
  echo "$i exit $?" >> $R/exits.txt
done <<'CASES'
Read|read float32 45088768:stride8x2
Read|read float32 45088768:chunk2x8
Read|read float32 22544384:stride8x2
GemvDmmaF32Ring|mm_tb float32 16x11008x4096
GemvDmmaF32Ring|mm_tb float32 16x4096x11008
GemvDmmaF32Prefetch|mm float32 16x11008x4096
SkinnyNk|mm_tb float16 16x11008x4096
SkinnyNk|mm_tb float16 16x4096x11008
Wgmma|mm float16 16x11008x4096
Wgmma|mm float16 16x4096x11008
CASES
python3 - $R > $R/summary.md 2>&1 <<'PY'
import re, sys
r = sys.argv[1]
print('| case | kernel | duration µs | DRAM % | L2 % | L1/TEX % | L2 hit % | L1 hit % |')
print('|---|---|---|---|---|---|---|---|')
for line in open(r + '/cases.txt'):
    i, kernel, f = line.strip().split('|', 2)
    t = open(f'{r}/ncu-{i}.txt', errors='replace').read()
    def g(name):
        m = re.search(r'^\s*' + re.escape(name) + r'\s+\S+\s+([\d.,]+)\s*$', t, re.M)
        return m.group(1) if m else '?'
    k = re.search(r'^\s*(Kernel_\w+)', t, re.M)
    print(f"| {f} | {k.group(1) if k else '?'} | {g('Duration')} | {g('DRAM Throughput')} | {g('L2 Cache Throughput')} | "
          f"{g('L1/TEX Cache Throughput')} | {g('L2 Hit Rate')} | {g('L1/TEX Hit Rate')} |")
PY
cd $OUT && tar czf run211.tgz run211 && rm -rf run211; find $OUT -type f
