#!/usr/bin/env bash
# Session 38, Run 229: where the small-M wgmma products' warps wait. Nsight Compute's speed-of-light, memory-workload,
# warp-state and scheduler sections for one launch of each product (cp.async ring and register staging) and of the strip
# reads of the same weight, one process per case (the kernel picked by name).
set -uo pipefail
export LD_LIBRARY_PATH="/usr/local/nvidia/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
R=$OUT/run229; mkdir -p $R
dir=/tmp/gems-ncu; rm -rf $dir; mkdir -p $dir; tar -xJf .gpu/harness.tar.xz -C $dir; H=$dir/harness/GemsInjector.GpuHarness
ncu_bin="$(command -v ncu || ls /usr/local/cuda/bin/ncu /opt/nvidia/nsight-compute/*/ncu 2>/dev/null | head -1)"
i=0
while IFS='|' read -r staging kernel filter; do
  i=$((i + 1))
  echo "$i|$staging|$kernel|$filter" >> $R/cases.txt
  ( [ "$staging" = regs ] && export GEMS_TC_SMALLM_STAGING=regs
    timeout 150 $ncu_bin --clock-control none --section SpeedOfLight --section MemoryWorkloadAnalysis --section WarpStateStats \
      --section SchedulerStats --section Occupancy --metrics "regex:smsp__average_warps_issue_stalled_.*_per_issue_active\.ratio" \
      -k "regex:$kernel" --launch-skip 2 --launch-count 1 \
      $H --device cuda --suite bench --filter "$filter" --runs 3 --budget-s 40 > $R/ncu-$i.txt 2>&1 )
  echo "$i exit $?" >> $R/exits.txt
done <<'CASES'
unset|Wgmma|mm float16 16x11008x4096
regs|Wgmma|mm float16 16x11008x4096
unset|Wgmma|mm float16 16x4096x11008
unset|SkinnyNk|mm_tb float16 16x11008x4096
unset|ReadStrips|read float32 22544384:strip128of22016x2x16
unset|ReadStrips|read float32 22544384:strip128of22016x2x8
CASES
python3 - $R > $R/summary.md 2>&1 <<'PY'
import re, sys
r = sys.argv[1]
for line in open(r + '/cases.txt'):
    i, staging, kernel, f = line.strip().split('|', 3)
    t = open(f'{r}/ncu-{i}.txt', errors='replace').read()
    print(f'## {i}: {f} ({staging}, kernel ~ {kernel})')
    keep = ('Duration', 'DRAM Throughput', 'L2 Cache Throughput', 'L1/TEX Cache Throughput', 'Memory Throughput',
            'Warp Cycles Per Issued Instruction', 'Issue Slots Busy', 'Issued Warp Per Scheduler', 'No Eligible',
            'Active Warps Per Scheduler', 'Eligible Warps Per Scheduler', 'Achieved Occupancy', 'Registers Per Thread',
            'Avg. Active Threads Per Warp', 'Theoretical Occupancy', 'Block Limit')
    for l in t.splitlines():
        if any(l.strip().startswith(k) for k in keep) or 'stall' in l.lower() or 'Kernel_' in l:
            print('    ' + l.strip()[:200])
PY
gzip -9 $R/ncu-*.txt
cat $R/exits.txt $R/summary.md | head -150
cd $OUT && tar czf run229.tgz run229 && rm -rf run229; find $OUT -type f
