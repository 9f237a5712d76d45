#!/usr/bin/env bash
# Session 34, Run 209: the DMMA ring's 4-warp [N, K] plans with their passes spread evenly over 3 groups per SM
# (GEMS_DMMA_RING_SPREAD=on, GemvDmmaF32RingSpread) against the plain ring (unset), one build, four alternating process
# pairs over the float32 x 11008 [N, K] products (16x4096x11008 is the one-group plan: a control the setting does not
# touch), each process checking its cases first; then the float32 accuracy suite of every mm_tb / linear case with the
# setting on.
set -uo pipefail
export LD_LIBRARY_PATH="/usr/local/nvidia/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
R=$OUT/run209; mkdir -p $R
OUT=$R bash tests/GemsInjector.GpuHarness/run-on-gpu.sh smi > /dev/null 2>&1
dir=/tmp/gems-spread; rm -rf $dir; mkdir -p $dir; tar -xJf .gpu/harness.tar.xz -C $dir; H=$dir/harness/GemsInjector.GpuHarness
F='mm_tb float32 16x11008x4096|mm_tb float32 12x11008x4096|mm_tb float32 16x4096x11008|launch'
for i in 1 2 3 4; do
  for v in off on; do
    GEMS_DMMA_RING_SPREAD=$v timeout 120 $H --device cuda --suite bench --budget-s 60 --dtype f32 --seed 209$i --filter "$F" \
      --csv $R/bench-$v-$i.csv > $R/bench-$v-$i.log 2>&1
    echo "$v $i exit $?" >> $R/exits.txt
  done
done
GEMS_DMMA_RING_SPREAD=on timeout 200 $H --device cuda --suite accuracy --dtype f32 --seed 2095 --filter 'mm_tb|linear' \
  --csv $R/accuracy-on.csv > $R/accuracy-on.log 2>&1
echo "accuracy on exit $?" >> $R/exits.txt
python3 - $R > $R/summary.txt 2>&1 <<'PY'
import csv, glob, sys, statistics, collections
r = sys.argv[1]; t = collections.defaultdict(lambda: collections.defaultdict(list))
for f in sorted(glob.glob(r + '/bench-*.csv')):
    v = f.split('bench-')[1].split('-')[0]
    for row in csv.DictReader(open(f)):
        if row['suite'] == 'bench' and row['op'] == 'mm_tb':
            t[row['shape']][v].append((float(row['ms']) * 1000, row['status']))
for shape, d in t.items():
    line = [shape]
    for v in ('off', 'on'):
        xs = [x for x, s in d[v]]
        line.append(f"{v}: median {statistics.median(xs):.2f} us ({min(xs):.2f}-{max(xs):.2f}) {set(s for x, s in d[v])}")
    print('  '.join(line))
PY
gzip -9 $R/*.log
cd $OUT && tar czf run209.tgz run209 && rm -rf run209; find $OUT -type f
