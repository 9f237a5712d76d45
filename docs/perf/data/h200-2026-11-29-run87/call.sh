#!/usr/bin/env bash
# Session 15, call B: 16-bit [K, N] 4–8 rows with one batch ahead (GEMS_GEMV16_KN=stream8) against the default; the
# small-M wgmma products with split-K summed in a cluster (GEMS_SPLITK_REDUCE=cluster) against the launched reduce.
# Alternating processes twice; accuracy then bench of the same cases in each.
set -uo pipefail
export LD_LIBRARY_PATH="/usr/local/nvidia/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
dir=/tmp/gh; mkdir -p $dir; tar -xJf .gpu/harness.tar.xz -C $dir; H=$dir/harness/GemsInjector.GpuHarness
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem --format=csv > $OUT/smi.txt
run() { local label=$1 f=$2; shift 2; local t0=$(date +%s); env "$@" timeout 70 $H --device cuda --suite accuracy,bench --dtype f16,bf16 --filter "$f" --budget-s 45 --csv $OUT/b-$label.csv > $OUT/b-$label.log 2>&1; echo "$label rc=$? $(( $(date +%s) - t0 ))s" >> $OUT/ab.log; }
FKN='mm bfloat16 4x4096x4096|mm bfloat16 8x4096x4096|mm float16 4x4096x4096|mm float16 8x4096x4096|mm bfloat16 1x4096x4096'
FWG='mm bfloat16 64x4096x4096|mm_tb bfloat16 64x4096x4096|mm float16 64x4096x4096|mm_tb float16 64x4096x4096|mm bfloat16 16x11008x4096|mm bfloat16 256x4096x4096'
for round in 1 2; do
  run kn-default-$round "$FKN" GEMS_X=0
  run kn-stream8-$round "$FKN" GEMS_GEMV16_KN=stream8
  run wg-launch-$round "$FWG" GEMS_SPLITK_REDUCE=launch
  run wg-cluster-$round "$FWG" GEMS_SPLITK_REDUCE=cluster
done
cd $OUT && for f in b-*.csv; do echo "== $f"; grep -v "^suite" $f | awk -F, '{print $1, $2, $3, $4, $5, $6, $9, $13}'; done > summary.txt
cat b-*.csv > all.csv; grep -h "summary" b-*.log >> ab.log; grep -h -i "cluster\|error\|fail" b-*.log | sort | uniq -c | head -30 >> ab.log; tar czf logs.tgz *.log && rm -f b-*.log b-*.csv
