#!/usr/bin/env bash
# Session 12, call E: (1) accuracy of the 16-bit products (stream default, 1-16 rows [N, K]) and of decode under
# GEMS_DECODE_VARIANT=cluster; (2) alternating processes: default, cluster decode, narrow [N, K] (the one-row GEMV).
set -uo pipefail
export LD_LIBRARY_PATH="/usr/local/nvidia/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
dir=/tmp/gh; mkdir -p $dir; tar -xJf .gpu/harness.tar.xz -C $dir; H=$dir/harness/GemsInjector.GpuHarness
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem --format=csv > $OUT/smi.txt
GEMS_DECODE_VARIANT=cluster timeout 220 $H --device cuda --suite accuracy --dtype f16,bf16 --filter 'sdpa|mm|addmm|bmm|linear' --budget-s 170 --csv $OUT/acc.csv > $OUT/acc.log 2>&1; echo "acc rc=$?" >> $OUT/ab.log
grep -c ",PASS" $OUT/acc.csv >> $OUT/ab.log; grep -v ",PASS" $OUT/acc.csv | cut -c1-300 | head -20 >> $OUT/ab.log; grep -i "cluster\|tensor-core" $OUT/acc.log | tail -3 >> $OUT/ab.log
F='sdpa bfloat16 1x32/8x1x4096x128|sdpa float16 1x32/8x1x4096x128|sdpa bfloat16 16x32/8x1x4096x128|mm_tb bfloat16 1x4096x4096|mm_tb float16 1x4096x4096|mm_tb bfloat16 2x4096x4096|mm_tb bfloat16 8x4096x4096|mm_tb bfloat16 16x11008x4096|mm_tb float16 16x11008x4096|mm bfloat16 8x4096x4096'
run() { local label=$1; shift; env "$@" timeout 120 $H --device cuda --suite bench --filter "$F" --budget-s 90 --csv $OUT/b-$label.csv > $OUT/b-$label.log 2>&1; echo "$label rc=$?" >> $OUT/ab.log; grep -i "cluster kernel\|tensor-core" $OUT/b-$label.log | tail -2 | cut -c1-400 >> $OUT/ab.log; }
for round in 1 2; do
  run default-$round GEMS_X=0
  run cluster-$round GEMS_DECODE_VARIANT=cluster
  run narrow-$round GEMS_SKINNY_NK_VARIANT=narrow
done
cd $OUT && for f in b-*.csv; do echo "== $f"; grep "^bench" $f | awk -F, '{print $2, $3, $4, $5, $6}'; done > summary.txt
cat b-*.csv > all.csv; tar czf logs.tgz *.log && rm -f b-*.log b-*.csv
