#!/usr/bin/env bash
# Session 14, call A: one-row float32 [N, K] on the streamed GEMV (default) against pipe (GemvNkVec1F32), and the new
# topk gather, alternating processes twice; accuracy of topk (all dtypes) and float32 products first.
set -uo pipefail
export LD_LIBRARY_PATH="/usr/local/nvidia/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
dir=/tmp/gh; mkdir -p $dir; tar -xJf .gpu/harness.tar.xz -C $dir; H=$dir/harness/GemsInjector.GpuHarness
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem --format=csv > $OUT/smi.txt
timeout 150 $H --device cuda --suite accuracy --dtype f32,f16,bf16 --filter 'topk|mm_tb float32|mm float32|linear' --budget-s 120 --csv $OUT/acc.csv > $OUT/acc.log 2>&1; echo "acc rc=$?" >> $OUT/ab.log
grep -c ",PASS" $OUT/acc.csv >> $OUT/ab.log; grep -v ",PASS" $OUT/acc.csv | cut -c1-300 | head -20 >> $OUT/ab.log
F='topk|mm_tb float32 1x4096x4096|mm_tb float32 2x4096x4096|mm float32 1x4096x4096'
run() { local label=$1; shift; env "$@" timeout 90 $H --device cuda --suite bench --dtype f32,f16,bf16 --filter "$F" --budget-s 60 --csv $OUT/b-$label.csv > $OUT/b-$label.log 2>&1; echo "$label rc=$?" >> $OUT/ab.log; }
for round in 1 2; do
  run default-$round GEMS_X=0
  run pipe-$round GEMS_GEMV_F32_VARIANT=pipe
done
cd $OUT && for f in b-*.csv; do echo "== $f"; grep "^bench" $f | awk -F, '{print $2, $3, $4, $5, $6, $9, $23}'; done > summary.txt
tar czf logs.tgz *.log && rm -f b-*.log
