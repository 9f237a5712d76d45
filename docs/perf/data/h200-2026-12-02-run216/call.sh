#!/usr/bin/env bash
# Session 35, Run 216 (Attempt 19, third form): the skinny [N, K] ring body with whole quads' activations one quad ahead (GEMS_SKINNY_NK_VARIANT=ring: each warp's weight quads by
# cp.async into four shared stages) against the default two-quads-in-registers body (unset), one build, four alternating
# process pairs over the 16-bit mm_tb decode products, each process checking its cases first; the 16-bit mm_tb accuracy
# suite under ring; then Nsight Compute of one launch of each body at 16 x 11008 x 4096 (float16).
set -uo pipefail
export LD_LIBRARY_PATH="/usr/local/nvidia/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
R=$OUT/run216; mkdir -p $R
OUT=$R bash tests/GemsInjector.GpuHarness/run-on-gpu.sh smi > /dev/null 2>&1
dir=/tmp/gems-ring; rm -rf $dir; mkdir -p $dir; tar -xJf .gpu/harness.tar.xz -C $dir; H=$dir/harness/GemsInjector.GpuHarness
# SASS of both bodies' float16 two-tile kernels (ptxas from the machine's Triton), for the instructions per quad.
bin="$(python3 -c 'import os, triton; print(os.path.join(os.path.dirname(triton.__file__), "backends", "nvidia", "bin"))' 2>/dev/null)"
mkdir -p $R/sass; (cd $R/sass && python3 -c "import zipfile; z = zipfile.ZipFile('$dir/harness/GemsInjector.Kernels.ptx.zip'); [z.extract(n) for n in z.namelist() if 'Gemm16SkinnyNkRing.Float16Storage.Const2' in n or 'Gemm16SkinnyNkAhead.Float16Storage.Const2' in n]")
for f in $R/sass/*.ptx; do
  b=$(basename $f .ptx | cut -d. -f2); sed 's/^\.version .*/.version 8.0/' $f > /tmp/r.ptx
  "$bin/ptxas" -arch=sm_90a -O3 -v /tmp/r.ptx -o /tmp/$b.cubin >> $R/sass/ptxas.txt 2>&1; echo "$b rc=$?" >> $R/sass/ptxas.txt
  "$bin/cuobjdump" -sass /tmp/$b.cubin > $R/sass/$b.sass 2>&1; rm -f $f
done
F='mm_tb float16 16x11008x4096|mm_tb float16 12x11008x4096|mm_tb float16 16x4096x11008|mm_tb float16 12x4096x11008|mm_tb float16 1x4096x4096|mm_tb float16 8x4096x4096|mm_tb bfloat16 16x11008x4096|mm_tb bfloat16 12x11008x4096|mm_tb bfloat16 16x4096x11008|mm_tb bfloat16 12x4096x11008|mm_tb bfloat16 1x4096x4096|mm_tb bfloat16 8x4096x4096|launch'
for i in 1 2 3 4; do
  for v in ahead ring; do
    GEMS_SKINNY_NK_VARIANT=$v timeout 80 $H --device cuda --suite bench --budget-s 40 --dtype f16,bf16,f32 --seed 216$i --filter "$F" \
      --csv $R/bench-$v-$i.csv > $R/bench-$v-$i.log 2>&1
    echo "$v $i exit $?" >> $R/exits.txt
  done
done
GEMS_SKINNY_NK_VARIANT=ring timeout 150 $H --device cuda --suite accuracy --dtype f16,bf16 --seed 2165 --filter 'mm_tb' \
  --csv $R/accuracy-ring.csv > $R/accuracy-ring.log 2>&1
echo "accuracy ring exit $?" >> $R/exits.txt
ncu_bin="$(command -v ncu || ls /usr/local/cuda/bin/ncu /opt/nvidia/nsight-compute/*/ncu 2>/dev/null | head -1)"
for v in ring ahead; do
  GEMS_SKINNY_NK_VARIANT=$v timeout 100 $ncu_bin --clock-control none --section SpeedOfLight --section MemoryWorkloadAnalysis \
    --section LaunchStats --section Occupancy --section WarpStateStats -k regex:Gemm16SkinnyNk --launch-skip 2 --launch-count 1 \
    $H --device cuda --suite bench --dtype f16 --filter "mm_tb float16 16x11008x4096" --runs 3 --budget-s 30 > $R/ncu-$v.txt 2>&1
  echo "ncu $v exit $?" >> $R/exits.txt
done
python3 - $R > $R/summary.txt 2>&1 <<'PY'
import csv, glob, sys, statistics, collections, re
r = sys.argv[1]; t = collections.defaultdict(lambda: collections.defaultdict(list))
for f in sorted(glob.glob(r + '/bench-*.csv')):
    v = f.split('bench-')[1].split('-')[0]
    for row in csv.DictReader(open(f)):
        if row['suite'] == 'bench' and row['op'] == 'mm_tb' and row['ms']:
            t[row['dtype'] + ' ' + row['shape']][v].append((float(row['ms']) * 1000, float(row['GB/s'])))
for shape, d in sorted(t.items()):
    line = [f"{shape:28}"]
    med = {}
    for v in ('ahead', 'ring'):
        xs = [x for x, g in d[v]]; gs = [g for x, g in d[v]]
        if not xs: line.append(f"{v}: none"); continue
        med[v] = statistics.median(xs)
        line.append(f"{v}: {med[v]:.2f} us ({min(xs):.2f}-{max(xs):.2f}) {statistics.median(gs):.0f} GB/s")
    if len(med) == 2: line.append(f"ring {100 * (med['ahead'] / med['ring'] - 1):+.1f}%")
    print('  '.join(line))
for f in sorted(glob.glob(r + '/ncu-*.txt')):
    s = open(f, errors='replace').read()
    def g(name):
        m = re.search(r'^\s*' + re.escape(name) + r'\s+\S+\s+([\d.,]+)\s*$', s, re.M)
        return m.group(1) if m else '?'
    print(f.split('/')[-1], 'duration', g('Duration'), 'DRAM', g('DRAM Throughput'), 'L2', g('L2 Cache Throughput'), 'L1', g('L1/TEX Cache Throughput'),
          'L2hit', g('L2 Hit Rate'), 'L1hit', g('L1/TEX Hit Rate'), 'regs', g('Registers Per Thread'), 'warps', g('Achieved Active Warps Per SM'),
          'shared/block', g('Dynamic Shared Memory Per Block'))
PY
grep -h "summary:" $R/*.log >> $R/summary.txt
gzip -9 $R/*.log
cat $R/exits.txt $R/summary.txt
cd $OUT && tar czf run216.tgz run216 && rm -rf run216; find $OUT -type f
