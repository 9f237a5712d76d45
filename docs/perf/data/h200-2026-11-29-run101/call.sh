#!/usr/bin/env bash
# Session 17, call E: GEMS_GEMV16_KN=split (1–2 rows on the split-K cluster form) against the default stream, alternating twice.
set -uo pipefail
export LD_LIBRARY_PATH="/usr/local/nvidia/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
ab=$OUT/ab; mkdir -p $ab
dir=/tmp/gh; mkdir -p $dir; tar -xJf .gpu/harness.tar.xz -C $dir; H=$dir/harness/GemsInjector.GpuHarness
run() { local label=$1 f=$2; shift 2; local t0=$(date +%s); env "$@" timeout 60 $H --device cuda --suite accuracy,bench --dtype f16,bf16 --filter "$f" --budget-s 40 --csv $ab/b-$label.csv > $ab/b-$label.log 2>&1; echo "$label rc=$? $(( $(date +%s) - t0 ))s" >> $ab/ab.log; }
F='mm float16 1x4096x4096|mm bfloat16 1x4096x4096|mm float16 2x4096x4096|mm bfloat16 2x4096x4096|mm bfloat16 4x4096x4096'
for round in 1 2; do
  run stream-$round "$F" GEMS_X=0
  run split-$round "$F" GEMS_GEMV16_KN=split
done
cd $ab && grep -h "summary\|FAILED\|loaded" b-*.log >> ab.log; cat b-*.csv > all.csv; tar czf $OUT/ab.tgz ab.log all.csv b-*.log; find $OUT -type f
