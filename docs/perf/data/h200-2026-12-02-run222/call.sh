#!/usr/bin/env bash
# Session 36, Run 222: the L2 prefetch qualifier at 64 bytes against off and the default 128, three rounds of three
# processes (off, 64, unset), each checking its cases first: the x 11008 products (float32, float16), the 16-bit one-row
# product, a read of 90 MB, decode attention f16 at 16 queries and the odd-shape row kernels (4097 x 5003).
set -uo pipefail
export LD_LIBRARY_PATH="/usr/local/nvidia/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
R=$OUT/run222; mkdir -p $R
dir=/tmp/gems-l2b; rm -rf $dir; mkdir -p $dir; tar -xJf .gpu/harness.tar.xz -C $dir; H=$dir/harness/GemsInjector.GpuHarness
F='float32 16x11008x4096|float32 12x4096x11008|float32 16x4096x11008|float16 16x11008x4096|float16 16x4096x11008|mm float16 1x4096x4096|read float32 22544384:stride8x2|sdpa float16 16x32/8x1x4096x128|rms_norm float16 4097x5003|layer_norm float16 4097x5003|fused_add_rms_norm float16 4097x5003|rms_norm bfloat16 4097x5003|launch'
for i in 1 2 3; do
  for v in off 64 128; do
    ( [[ $v == 128 ]] && unset GEMS_PTX_L2_PREFETCH || export GEMS_PTX_L2_PREFETCH=$v
      timeout 70 $H --device cuda --suite bench --budget-s 60 --dtype f16,bf16,f32 --seed 222$i --filter "$F" \
        --csv $R/bench-$v-$i.csv > $R/bench-$v-$i.log 2>&1 )
    echo "$v $i exit $?" >> $R/exits.txt
  done
done
python3 - $R > $R/summary.txt 2>&1 <<'PY'
import csv, glob, sys, statistics, collections
r = sys.argv[1]; t = collections.defaultdict(lambda: collections.defaultdict(list))
for f in sorted(glob.glob(r + '/bench-*.csv')):
    v = f.split('bench-')[1].split('-')[0]
    for row in csv.DictReader(open(f)):
        if row['suite'] == 'bench' and row['ms'] and row['status'] == 'PASS':
            t[row['op'] + ' ' + row['dtype'] + ' ' + row['shape']][v].append((float(row['ms']) * 1000, float(row['GB/s'] or 0)))
for case, d in sorted(t.items()):
    line = [f"{case:44}"]; med = {}
    for v in ('off', '64', '128'):
        xs = [x for x, g in d[v]]; gs = [g for x, g in d[v]]
        if not xs: line.append(f"{v}: none"); continue
        med[v] = statistics.median(xs)
        line.append(f"{v}: {med[v]:.2f} us ({min(xs):.2f}-{max(xs):.2f}) {statistics.median(gs):.0f}")
    for v in ('64', '128'):
        if 'off' in med and v in med: line.append(f"{v} {100 * (med['off'] / med[v] - 1):+.1f}%")
    print('  '.join(line))
PY
grep -h "summary:" $R/*.log >> $R/summary.txt
gzip -9 $R/*.log
cat $R/exits.txt $R/summary.txt
cd $OUT && tar czf run222.tgz run222 && rm -rf run222; find $OUT -type f
