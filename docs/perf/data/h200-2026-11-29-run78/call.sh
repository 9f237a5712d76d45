#!/usr/bin/env bash
# Session 13, call D: the 16-row float32 stream body: unset, pingpong, pingpongfenced, alternating twice, accuracy + bench.
set -uo pipefail
export LD_LIBRARY_PATH="/usr/local/nvidia/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
dir=/tmp/gh; mkdir -p $dir; tar -xJf .gpu/harness.tar.xz -C $dir; H=$dir/harness/GemsInjector.GpuHarness
F='mm_tb float32 16x11008x4096|mm_tb float32 8x4096x4096|mm float32 16x11008x4096'
run() { local label=$1; shift; env "$@" timeout 100 $H --device cuda --suite accuracy,bench --dtype f32 --filter "$F" --budget-s 80 --csv $OUT/b-$label.csv > $OUT/b-$label.log 2>&1; echo "$label rc=$?" >> $OUT/ab.log; }
for round in 1 2; do
  run default-$round GEMS_X=0
  run pingpong-$round GEMS_GEMV_F32_STREAM16=pingpong
  run fenced-$round GEMS_GEMV_F32_STREAM16=pingpongfenced
done
cd $OUT && for f in b-*.csv; do echo "== $f"; grep -v "^suite" $f | awk -F, '{print $1, $2, $3, $4, $5, $6, $9, $13}'; done > summary.txt
cat b-*.csv > all.csv; tar czf logs.tgz b-*.log && rm -f b-*.log b-*.csv
