#!/usr/bin/env bash
# Session 19, call C: the DMMA GEMV on by default (GEMS_GEMV_F32_DMMA unset = auto). 1) the whole accuracy suite on the
# defaults; 2) auto against off, alternating processes twice, over the 8/12/16-row float32 products (12 rows: new cases).
set -uo pipefail
export LD_LIBRARY_PATH="/usr/local/nvidia/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
root=$(pwd)
ACCURACY_BUDGET_S=240 OUT=$OUT/acc bash tests/GemsInjector.GpuHarness/run-on-gpu.sh smi accuracy > $OUT/acc-run.log 2>&1
ab=$OUT/ab; mkdir -p $ab
dir=/tmp/gh; mkdir -p $dir; tar -xJf .gpu/harness.tar.xz -C $dir; H=$dir/harness/GemsInjector.GpuHarness
F='mm float32 12x11008x4096|mm_tb float32 12x11008x4096|mm float32 12x4096x11008|mm_tb float32 12x4096x11008|mm float32 16x11008x4096|mm_tb float32 16x11008x4096|mm float32 16x4096x11008|mm_tb float32 16x4096x11008|mm float32 8x4096x4096|mm_tb float32 8x4096x4096|mm float32 4x4096x4096|mm_tb float32 1x4096x4096'
run() { local label=$1; shift; local t0=$(date +%s); env "$@" timeout 75 $H --device cuda --suite accuracy,bench --dtype f32 --filter "$F" --budget-s 40 --csv $ab/b-$label.csv > $ab/b-$label.log 2>&1; echo "$label rc=$? $(( $(date +%s) - t0 ))s" >> $ab/ab.log; }
for round in 1 2; do run auto-$round GEMS_X=0; run off-$round GEMS_GEMV_F32_DMMA=off; done
grep -h "summary\|FAIL" $ab/b-*.log >> $ab/ab.log
cd $OUT && tar czf all.tgz acc ab acc-run.log && rm -rf acc ab acc-run.log; find $OUT -type f
