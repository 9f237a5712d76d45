#!/usr/bin/env bash
# Session 20, Run 116: the 12-warp DMMA ring below 9 rows ([N, K] 1-8 x 4096^2) against the FFMA kernels and the build's
# default, processes alternating twice; then ncu (profile step) of the ring at 16 x 4096 x 11008 and 16 x 11008 x 4096
# and of prefetch at mm 16 x 4096 x 11008.
set -uo pipefail
export LD_LIBRARY_PATH="/usr/local/nvidia/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
ab=$OUT/ab; mkdir -p $ab
dir=/tmp/gh; mkdir -p $dir; tar -xJf .gpu/harness.tar.xz -C $dir; H=$dir/harness/GemsInjector.GpuHarness
F='mm_tb float32 1x4096x4096|mm_tb float32 2x4096x4096|mm_tb float32 4x4096x4096|mm_tb float32 8x4096x4096|mm_tb float32 16x4096x11008|mm_tb float32 16x11008x4096'
run() { local label=$1; shift; local t0=$(date +%s); env "$@" timeout 75 $H --device cuda --suite accuracy,bench --dtype f32 --filter "$F" --budget-s 40 --csv $ab/b-$label.csv > $ab/b-$label.log 2>&1; echo "$label rc=$? $(( $(date +%s) - t0 ))s" >> $ab/ab.log; }
for round in 1 2; do
  run off-$round GEMS_GEMV_F32_DMMA=off
  run default-$round GEMS_X=0
  run ring-$round GEMS_GEMV_F32_DMMA=ring
done
grep -h "summary\|FAIL" $ab/b-*.log >> $ab/ab.log
GEMS_GEMV_F32_DMMA=ring PROFILE_FILTERS='mm_tb float32 16x4096x11008;mm_tb float32 16x11008x4096' PROFILE_LAUNCHES=2 OUT=$ab/prof-ring \
  bash tests/GemsInjector.GpuHarness/run-on-gpu.sh profile > $ab/prof-ring.log 2>&1
PROFILE_FILTERS='mm float32 16x4096x11008' PROFILE_LAUNCHES=2 OUT=$ab/prof-prefetch \
  bash tests/GemsInjector.GpuHarness/run-on-gpu.sh profile > $ab/prof-prefetch.log 2>&1
cd $OUT && tar czf all.tgz ab && rm -rf ab; find $OUT -type f
