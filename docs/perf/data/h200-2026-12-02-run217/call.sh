#!/usr/bin/env bash
# Session 36, Run 217 (Attempt 20): the L2 prefetch size on every global load and cp.async copy (GEMS_PTX_L2_PREFETCH),
# one build, four rounds of three processes (unset, 128, 256) over the x 11008 and 4096^2 decode products (mm, mm_tb; 16-bit
# and float32), copies, reads of 90 and 180 MB and decode attention, each process checking its cases first; then the
# product accuracy suites under 256; ptxas of the Ahead body's PTX with the qualifier (the SASS form); Nsight Compute of
# one Ahead launch (f16 16 x 11008 x 4096) unset and under 128.
set -uo pipefail
export LD_LIBRARY_PATH="/usr/local/nvidia/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
R=$OUT/run217; mkdir -p $R
OUT=$R bash tests/GemsInjector.GpuHarness/run-on-gpu.sh smi > /dev/null 2>&1
dir=/tmp/gems-l2; rm -rf $dir; mkdir -p $dir; tar -xJf .gpu/harness.tar.xz -C $dir; H=$dir/harness/GemsInjector.GpuHarness
F='x11008x4096|x4096x11008|mm float16 1x4096x4096|mm_tb float16 1x4096x4096|mm float16 8x4096x4096|mm_tb float16 8x4096x4096|mm bfloat16 8x4096x4096|mm_tb bfloat16 8x4096x4096|mm float32 8x4096x4096|mm_tb float32 8x4096x4096|mm float32 1x4096x4096|mm_tb float32 1x4096x4096|copy float32|copy float16|read float32 22544384:stride8x2|read float32 22544384:chunk2x8|read float32 45088768:stride4x8|read float32 45088768:stride8x2|read float32 16777216:stride8x2|sdpa float16 16x32/8x1x4096x128|sdpa float32 1x32/8x1x4096x128|launch'
for i in 1 2 3 4; do
  for v in unset 128 256; do
    ( [[ $v == unset ]] && unset GEMS_PTX_L2_PREFETCH || export GEMS_PTX_L2_PREFETCH=$v
      timeout 70 $H --device cuda --suite bench --budget-s 60 --dtype f16,bf16,f32 --seed 217$i --filter "$F" \
        --csv $R/bench-$v-$i.csv > $R/bench-$v-$i.log 2>&1 )
    echo "$v $i exit $?" >> $R/exits.txt
  done
done
GEMS_PTX_L2_PREFETCH=256 timeout 150 $H --device cuda --suite accuracy --dtype f16,bf16,f32 --seed 2175 --filter 'mm' \
  --csv $R/accuracy-256.csv > $R/accuracy-256.log 2>&1
echo "accuracy 256 exit $?" >> $R/exits.txt
# SASS of the Ahead float16 two-tile kernel as loaded under 256 (the same text rewrite as PtxL2Prefetch), ptxas from the machine's Triton.
bin="$(python3 -c 'import os, triton; print(os.path.join(os.path.dirname(triton.__file__), "backends", "nvidia", "bin"))' 2>/dev/null)"
mkdir -p $R/sass; (cd $R/sass && python3 -c "import zipfile; z = zipfile.ZipFile('$dir/harness/GemsInjector.Kernels.ptx.zip'); [z.extract(n) for n in z.namelist() if 'Gemm16SkinnyNkAhead.Float16Storage.Const2' in n]")
for f in $R/sass/*.ptx; do
  sed -E 's/^\.version .*/.version 8.0/; s/\bld\.global\.((v[248]\.)?[bfsu](8|16|32|64))\b/ld.global.L2::256B.\1/g' $f > /tmp/l2.ptx
  grep -c 'ld.global.L2::256B' /tmp/l2.ptx >> $R/sass/ptxas.txt
  "$bin/ptxas" -arch=sm_90a -O3 -v /tmp/l2.ptx -o /tmp/l2.cubin >> $R/sass/ptxas.txt 2>&1; echo "ptxas rc=$?" >> $R/sass/ptxas.txt
  "$bin/cuobjdump" -sass /tmp/l2.cubin > $R/sass/Gemm16SkinnyNkAhead-L2-256B.sass 2>&1; rm -f $f
done
grep -o 'LDG[A-Z0-9._]*' $R/sass/*.sass | sort | uniq -c >> $R/sass/ptxas.txt
ncu_bin="$(command -v ncu || ls /usr/local/cuda/bin/ncu /opt/nvidia/nsight-compute/*/ncu 2>/dev/null | head -1)"
for v in unset 128; do
  ( [[ $v == unset ]] && unset GEMS_PTX_L2_PREFETCH || export GEMS_PTX_L2_PREFETCH=$v
    timeout 100 $ncu_bin --clock-control none --section SpeedOfLight --section MemoryWorkloadAnalysis \
      --section LaunchStats --section Occupancy --section WarpStateStats -k regex:Gemm16SkinnyNk --launch-skip 2 --launch-count 1 \
      $H --device cuda --suite bench --dtype f16 --filter "mm_tb float16 16x11008x4096" --runs 3 --budget-s 30 > $R/ncu-$v.txt 2>&1 )
  echo "ncu $v exit $?" >> $R/exits.txt
done
python3 - $R > $R/summary.txt 2>&1 <<'PY'
import csv, glob, sys, statistics, collections, re
r = sys.argv[1]; t = collections.defaultdict(lambda: collections.defaultdict(list))
for f in sorted(glob.glob(r + '/bench-*.csv')):
    v = f.split('bench-')[1].split('-')[0]
    for row in csv.DictReader(open(f)):
        if row['suite'] == 'bench' and row['ms'] and row['status'] == 'PASS':
            t[row['op'] + ' ' + row['dtype'] + ' ' + row['shape']][v].append((float(row['ms']) * 1000, float(row['GB/s'] or 0)))
for case, d in sorted(t.items()):
    line = [f"{case:44}"]
    med = {}
    for v in ('unset', '128', '256'):
        xs = [x for x, g in d[v]]; gs = [g for x, g in d[v]]
        if not xs: line.append(f"{v}: none"); continue
        med[v] = statistics.median(xs)
        line.append(f"{v}: {med[v]:.2f} us ({min(xs):.2f}-{max(xs):.2f}) {statistics.median(gs):.0f}")
    for v in ('128', '256'):
        if 'unset' in med and v in med: line.append(f"{v} {100 * (med['unset'] / med[v] - 1):+.1f}%")
    print('  '.join(line))
for f in sorted(glob.glob(r + '/ncu-*.txt')):
    s = open(f, errors='replace').read()
    def g(name):
        m = re.search(r'^\s*' + re.escape(name) + r'\s+\S+\s+([\d.,]+)\s*$', s, re.M)
        return m.group(1) if m else '?'
    print(f.split('/')[-1], 'duration', g('Duration'), 'DRAM', g('DRAM Throughput'), 'L2', g('L2 Cache Throughput'), 'L1', g('L1/TEX Cache Throughput'),
          'L2hit', g('L2 Hit Rate'), 'L1hit', g('L1/TEX Hit Rate'), 'regs', g('Registers Per Thread'), 'warps', g('Achieved Active Warps Per SM'))
PY
grep -h "summary:" $R/*.log >> $R/summary.txt
grep -h "FAIL\|refused\|rror" $R/*.log | head -20 >> $R/summary.txt
gzip -9 $R/*.log
cat $R/exits.txt $R/summary.txt $R/sass/ptxas.txt
cd $OUT && tar czf run217.tgz run217 && rm -rf run217; find $OUT -type f
