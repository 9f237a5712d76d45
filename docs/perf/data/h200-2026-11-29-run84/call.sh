#!/usr/bin/env bash
# Session 14, call E: the streamed 16-bit [K, N] GEMV (GEMS_GEMV16_KN=stream) against the default, alternating twice,
# accuracy then bench of the same cases in each process.
set -uo pipefail
export LD_LIBRARY_PATH="/usr/local/nvidia/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
dir=/tmp/gh; mkdir -p $dir; tar -xJf .gpu/harness.tar.xz -C $dir; H=$dir/harness/GemsInjector.GpuHarness
F='mm float16 1x4096x4096|mm float16 2x4096x4096|mm float16 4x4096x4096|mm float16 8x4096x4096|mm bfloat16 1x4096x4096|mm bfloat16 2x4096x4096|mm bfloat16 4x4096x4096|mm bfloat16 8x4096x4096|mm bfloat16 16x11008x4096|mm_tb bfloat16 2x4096x4096|addmm|linear'
run() { local label=$1; shift; env "$@" timeout 110 $H --device cuda --suite accuracy,bench --dtype f16,bf16 --filter "$F" --budget-s 90 --csv $OUT/b-$label.csv > $OUT/b-$label.log 2>&1; echo "$label rc=$?" >> $OUT/ab.log; }
for round in 1 2; do
  run default-$round GEMS_X=0
  run kn16-$round GEMS_GEMV16_KN=stream
done
cd $OUT && for f in b-*.csv; do echo "== $f"; grep -v "^suite" $f | awk -F, '{print $1, $2, $3, $4, $5, $6, $9, $13}'; done > summary.txt
cat b-*.csv > all.csv; grep -h "summary" b-*.log >> ab.log; tar czf logs.tgz *.log && rm -f b-*.log b-*.csv
