#!/usr/bin/env bash
# Session 38, Run 226: Run 225 again after the flat read walks were given back their own loop condition (Run 225 ran
# them 7-15% slower than Run 218 did): every read pattern at 90.2 MB, the strip walk among them, and the 16-bit 16-row
# x 11008 products, two rounds of one process each, every process checking its cases first.
set -uo pipefail
export LD_LIBRARY_PATH="/usr/local/nvidia/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
R=$OUT/run226; mkdir -p $R
dir=/tmp/gems-strip2; rm -rf $dir; mkdir -p $dir; tar -xJf .gpu/harness.tar.xz -C $dir; H=$dir/harness/GemsInjector.GpuHarness
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,clocks.max.mem --format=csv > $R/smi.txt 2>&1
F='read float32 22544384:|mm float16 16x11008x4096|mm float16 16x4096x11008|mm bfloat16 16x11008x4096|mm bfloat16 16x4096x11008|mm_tb float16 16x11008x4096|mm_tb float16 16x4096x11008|launch'
for i in 1 2; do
  timeout 240 $H --device cuda --suite bench --budget-s 200 --dtype f32,f16,bf16 --seed 226$i --filter "$F" \
    --csv $R/bench-$i.csv > $R/bench-$i.log 2>&1
  echo "round $i exit $?" >> $R/exits.txt
done
python3 - $R > $R/summary.txt 2>&1 <<'PY'
import csv, glob, sys, statistics, collections
r = sys.argv[1]; t = collections.defaultdict(list)
for f in sorted(glob.glob(r + '/bench-*.csv')):
    for row in csv.DictReader(open(f)):
        if row['suite'] == 'bench' and row['ms'] and row['status'] == 'PASS':
            t[row['op'] + ' ' + row['dtype'] + ' ' + row['shape']].append(float(row['ms']) * 1000)
best = min(statistics.median(v) for k, v in t.items() if k.startswith('read '))
for case, xs in sorted(t.items(), key=lambda kv: statistics.median(kv[1])):
    m = statistics.median(xs)
    print(f"{case:48} {m:7.2f} us  ({' / '.join(f'{x:.2f}' for x in xs)})  fastest read / this: {best / m:.3f}")
PY
grep -h "summary:\|kernels loaded" $R/*.log >> $R/summary.txt
grep -h "FAIL" $R/*.log | head -20 >> $R/summary.txt
gzip -9 $R/*.log
cat $R/exits.txt $R/summary.txt
cd $OUT && tar czf run226.tgz run226 && rm -rf run226; find $OUT -type f
