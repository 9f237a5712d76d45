#!/usr/bin/env bash
# Session 37, Run 223 (Attempt 21): 9-16-row [K, N] products on the wide skinny body's two n8 tiles against the small-M
# wgmma kernel. Three rounds of four processes (unset, wide16, wide16 with 3 and with 6 groups per SM), each checking its
# cases first; then the accuracy suite's mm cases under wide16.
set -uo pipefail
export LD_LIBRARY_PATH="/usr/local/nvidia/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
R=$OUT/run223; mkdir -p $R
dir=/tmp/gems-w16; rm -rf $dir; mkdir -p $dir; tar -xJf .gpu/harness.tar.xz -C $dir; H=$dir/harness/GemsInjector.GpuHarness
F='mm float16 16x11008x4096|mm float16 16x4096x11008|mm float16 12x11008x4096|mm float16 12x4096x11008|mm bfloat16 16x11008x4096|mm bfloat16 16x4096x11008|mm bfloat16 12x11008x4096|mm bfloat16 12x4096x11008|mm_tb float16 16x11008x4096|mm_tb float16 16x4096x11008|mm_tb bfloat16 12x4096x11008|mm float16 8x4096x4096|mm bfloat16 8x4096x4096|launch'
for i in 1 2 3; do
  for v in unset wide16 g3 g6; do
    ( case $v in
        unset) ;;
        wide16) export GEMS_SKINNY_KN_VARIANT=wide16 ;;
        g3) export GEMS_SKINNY_KN_VARIANT=wide16 GEMS_SKINNY_TC_GROUPS_PER_SM=3 ;;
        g6) export GEMS_SKINNY_KN_VARIANT=wide16 GEMS_SKINNY_TC_GROUPS_PER_SM=6 ;;
      esac
      timeout 80 $H --device cuda --suite bench --budget-s 60 --dtype f16,bf16 --seed 223$i --filter "$F" \
        --csv $R/bench-$v-$i.csv > $R/bench-$v-$i.log 2>&1 )
    echo "$v $i exit $?" >> $R/exits.txt
  done
done
( export GEMS_SKINNY_KN_VARIANT=wide16
  timeout 120 $H --device cuda --suite accuracy --dtype f16,bf16 --seed 2239 --filter 'mm' --csv $R/accuracy-wide16.csv > $R/accuracy-wide16.log 2>&1 )
echo "accuracy exit $?" >> $R/exits.txt
python3 - $R > $R/summary.txt 2>&1 <<'PY'
import csv, glob, sys, statistics, collections
r = sys.argv[1]; t = collections.defaultdict(lambda: collections.defaultdict(list))
for f in sorted(glob.glob(r + '/bench-*.csv')):
    v = f.split('bench-')[1].split('-')[0]
    for row in csv.DictReader(open(f)):
        if row['suite'] == 'bench' and row['ms'] and row['status'] == 'PASS':
            t[row['op'] + ' ' + row['dtype'] + ' ' + row['shape']][v].append((float(row['ms']) * 1000, float(row['GB/s'] or 0)))
vs = ('unset', 'wide16', 'g3', 'g6')
for case, d in sorted(t.items()):
    line = [f"{case:36}"]; med = {}
    for v in vs:
        xs = [x for x, g in d[v]]; gs = [g for x, g in d[v]]
        if not xs: line.append(f"{v}: none"); continue
        med[v] = statistics.median(xs)
        line.append(f"{v}: {med[v]:.2f} us ({min(xs):.2f}-{max(xs):.2f}) {statistics.median(gs):.0f}")
    for v in vs[1:]:
        if 'unset' in med and v in med: line.append(f"{v} {100 * (med['unset'] / med[v] - 1):+.1f}%")
    print('  '.join(line))
PY
grep -h "summary:\|kernels loaded" $R/*.log >> $R/summary.txt
grep -h "FAIL" $R/*.log | head -20 >> $R/summary.txt
gzip -9 $R/*.log
cat $R/exits.txt $R/summary.txt
cd $OUT && tar czf run223.tgz run223 && rm -rf run223; find $OUT -type f
