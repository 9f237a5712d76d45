#!/usr/bin/env bash
# Session 38, Run 228 (Attempt 23): the 9-16-row [K, N] small-M wgmma products with the weight staged through registers
# (GEMS_TC_SMALLM_STAGING=regs) against cp.async staging. Three rounds of two processes (unset, regs), each checking its cases first;
# then the accuracy suite's mm cases under regs.
set -uo pipefail
export LD_LIBRARY_PATH="/usr/local/nvidia/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
R=$OUT/run228; mkdir -p $R
dir=/tmp/gems-regs; rm -rf $dir; mkdir -p $dir; tar -xJf .gpu/harness.tar.xz -C $dir; H=$dir/harness/GemsInjector.GpuHarness
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,clocks.max.mem --format=csv > $R/smi.txt 2>&1
F='mm float16 16x11008x4096|mm float16 16x4096x11008|mm float16 12x11008x4096|mm float16 12x4096x11008|mm bfloat16 16x11008x4096|mm bfloat16 16x4096x11008|mm bfloat16 12x11008x4096|mm bfloat16 12x4096x11008|mm_tb float16 16x11008x4096|mm_tb bfloat16 16x4096x11008|mm float16 8x4096x4096|mm bfloat16 8x4096x4096|launch'
for i in 1 2 3; do
  for v in unset regs; do
    ( [ $v = regs ] && export GEMS_TC_SMALLM_STAGING=regs
      timeout 80 $H --device cuda --suite bench --budget-s 60 --dtype f16,bf16 --seed 228$i --filter "$F" \
        --csv $R/bench-$v-$i.csv > $R/bench-$v-$i.log 2>&1 )
    echo "$v $i exit $?" >> $R/exits.txt
  done
done
( export GEMS_TC_SMALLM_STAGING=regs
  timeout 150 $H --device cuda --suite accuracy --dtype f16,bf16 --seed 2289 --filter 'mm' --csv $R/accuracy-regs.csv > $R/accuracy-regs.log 2>&1 )
echo "accuracy exit $?" >> $R/exits.txt
python3 - $R > $R/summary.txt 2>&1 <<'PY'
import csv, glob, sys, statistics, collections
r = sys.argv[1]; t = collections.defaultdict(lambda: collections.defaultdict(list))
for f in sorted(glob.glob(r + '/bench-*.csv')):
    v = f.split('bench-')[1].split('-')[0]
    for row in csv.DictReader(open(f)):
        if row['suite'] == 'bench' and row['ms'] and row['status'] == 'PASS':
            t[row['op'] + ' ' + row['dtype'] + ' ' + row['shape']][v].append(float(row['ms']) * 1000)
for case, d in sorted(t.items()):
    med = {v: statistics.median(xs) for v, xs in d.items() if xs}
    line = f"{case:36}" + ''.join(f"  {v}: {med[v]:.2f} us ({min(d[v]):.2f}-{max(d[v]):.2f})" for v in ('unset', 'regs') if v in med)
    if 'unset' in med and 'regs' in med: line += f"  regs {100 * (med['unset'] / med['regs'] - 1):+.1f}%"
    print(line)
PY
grep -h "summary:\|kernels loaded" $R/*.log >> $R/summary.txt
grep -h "FAIL" $R/*.log | head -20 >> $R/summary.txt
gzip -9 $R/*.log
cat $R/exits.txt $R/summary.txt
cd $OUT && tar czf run228.tgz run228 && rm -rf run228; find $OUT -type f
