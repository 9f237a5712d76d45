#!/usr/bin/env bash
# Session 15, call D: the streamed 16-bit [N, K] GEMV's warps per group forced (GEMS_GEMV16_NK_WARPS=2/4/8) against its
# plan (unset: 4 warps at 1–4 rows of 4096 columns). Alternating processes twice; accuracy then bench in each.
set -uo pipefail
export LD_LIBRARY_PATH="/usr/local/nvidia/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
dir=/tmp/gh; mkdir -p $dir; tar -xJf .gpu/harness.tar.xz -C $dir; H=$dir/harness/GemsInjector.GpuHarness
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem --format=csv > $OUT/smi.txt
run() { local label=$1; shift; local t0=$(date +%s); env "$@" timeout 70 $H --device cuda --suite accuracy,bench --dtype f16,bf16 --filter "$F" --budget-s 45 --csv $OUT/b-$label.csv > $OUT/b-$label.log 2>&1; echo "$label rc=$? $(( $(date +%s) - t0 ))s" >> $OUT/ab.log; }
F='mm_tb bfloat16 1x4096x4096|mm_tb float16 1x4096x4096|mm_tb bfloat16 2x4096x4096|mm_tb bfloat16 4x4096x4096'
for round in 1 2; do
  run plan-$round GEMS_X=0
  run w2-$round GEMS_GEMV16_NK_WARPS=2
  run w4-$round GEMS_GEMV16_NK_WARPS=4
  run w8-$round GEMS_GEMV16_NK_WARPS=8
done
cd $OUT && for f in b-*.csv; do echo "== $f"; grep -v "^suite" $f | awk -F, '{print $1, $2, $3, $4, $5, $6, $9, $13}'; done > summary.txt
cat b-*.csv > all.csv; grep -h "summary" b-*.log >> ab.log; tar czf logs.tgz *.log && rm -f b-*.log b-*.csv
