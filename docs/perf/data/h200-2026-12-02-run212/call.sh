#!/usr/bin/env bash
# Session 34, Run 212: the DMMA ring's split form for [N, K] (GEMS_DMMA_RING_SPLIT=on: each warp its own 32 columns of a
# 128-column block, K split over groups, in-place sums) against the plain ring (unset), one build, four alternating
# process pairs over the float32 x 11008 [N, K] products, each process checking its cases first; the float32 mm_tb
# accuracy suite under on; then Nsight Compute (speed of light, memory workload, launch) of one split launch per shape.
set -uo pipefail
export LD_LIBRARY_PATH="/usr/local/nvidia/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
R=$OUT/run212; mkdir -p $R
OUT=$R bash tests/GemsInjector.GpuHarness/run-on-gpu.sh smi > /dev/null 2>&1
dir=/tmp/gems-split; rm -rf $dir; mkdir -p $dir; tar -xJf .gpu/harness.tar.xz -C $dir; H=$dir/harness/GemsInjector.GpuHarness
F='mm_tb float32 16x11008x4096|mm_tb float32 12x11008x4096|mm_tb float32 16x4096x11008|mm_tb float32 12x4096x11008|launch'
for i in 1 2 3 4; do
  for v in off on; do
    GEMS_DMMA_RING_SPLIT=$v timeout 120 $H --device cuda --suite bench --budget-s 60 --dtype f32 --seed 212$i --filter "$F" \
      --csv $R/bench-$v-$i.csv > $R/bench-$v-$i.log 2>&1
    echo "$v $i exit $?" >> $R/exits.txt
  done
done
GEMS_DMMA_RING_SPLIT=on timeout 200 $H --device cuda --suite accuracy --dtype f32 --seed 2125 --filter 'mm_tb' \
  --csv $R/accuracy-on.csv > $R/accuracy-on.log 2>&1
echo "accuracy on exit $?" >> $R/exits.txt
ncu_bin="$(command -v ncu || ls /usr/local/cuda/bin/ncu /opt/nvidia/nsight-compute/*/ncu 2>/dev/null | head -1)"
for shape in 16x11008x4096 16x4096x11008; do
  GEMS_DMMA_RING_SPLIT=on timeout 120 $ncu_bin --clock-control none --section SpeedOfLight --section MemoryWorkloadAnalysis \
    --section LaunchStats --section Occupancy -k regex:GemvDmmaF32RingSplit --launch-skip 2 --launch-count 1 \
    $H --device cuda --suite bench --filter "mm_tb float32 $shape" --runs 3 --budget-s 30 > $R/ncu-$shape.txt 2>&1
  echo "ncu $shape exit $?" >> $R/exits.txt
done
python3 - $R > $R/summary.txt 2>&1 <<'PY'
import csv, glob, sys, statistics, collections, re
r = sys.argv[1]; t = collections.defaultdict(lambda: collections.defaultdict(list))
for f in sorted(glob.glob(r + '/bench-*.csv')):
    v = f.split('bench-')[1].split('-')[0]
    for row in csv.DictReader(open(f)):
        if row['suite'] == 'bench' and row['op'] == 'mm_tb':
            t[row['shape']][v].append((float(row['ms']) * 1000, float(row['GB/s']), row['status']))
for shape, d in t.items():
    line = [shape]
    for v in ('off', 'on'):
        xs = [x for x, g, s in d[v]]
        gs = [g for x, g, s in d[v]]
        line.append(f"{v}: median {statistics.median(xs):.2f} us ({min(xs):.2f}-{max(xs):.2f}), {statistics.median(gs):.0f} GB/s {set(s for x, g, s in d[v])}")
    print('  '.join(line))
for f in sorted(glob.glob(r + '/ncu-*.txt')):
    s = open(f, errors='replace').read()
    def g(name):
        m = re.search(r'^\s*' + re.escape(name) + r'\s+\S+\s+([\d.,]+)\s*$', s, re.M)
        return m.group(1) if m else '?'
    print(f, 'duration', g('Duration'), 'DRAM', g('DRAM Throughput'), 'L2', g('L2 Cache Throughput'), 'L1', g('L1/TEX Cache Throughput'),
          'L2hit', g('L2 Hit Rate'), 'L1hit', g('L1/TEX Hit Rate'), 'regs', g('Registers Per Thread'), 'warps', g('Achieved Active Warps Per SM'))
PY
gzip -9 $R/*.log
cd $OUT && tar czf run212.tgz run212 && rm -rf run212; find $OUT -type f
