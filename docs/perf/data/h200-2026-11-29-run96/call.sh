#!/usr/bin/env bash
# Session 17, call A: the start-up step alone on a fresh lease (is the second process's slowness the host?), then
# GEMS_SPLITK_REDUCE unset (auto) against cluster, alternating processes twice, accuracy then bench.
set -uo pipefail
export LD_LIBRARY_PATH="/usr/local/nvidia/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
root=$(pwd); ab=$OUT/ab; mkdir -p $ab
STARTUP_TIMEOUT_S=60 OUT=$OUT/st bash tests/GemsInjector.GpuHarness/run-on-gpu.sh smi startup > $OUT/st-run.log 2>&1
dir=/tmp/gh; mkdir -p $dir; tar -xJf .gpu/harness.tar.xz -C $dir; H=$dir/harness/GemsInjector.GpuHarness
run() { local label=$1 f=$2; shift 2; local t0=$(date +%s); env "$@" timeout 80 $H --device cuda --suite accuracy,bench --dtype f32,f16,bf16 --filter "$f" --budget-s 55 --csv $ab/b-$label.csv > $ab/b-$label.log 2>&1; echo "$label rc=$? $(( $(date +%s) - t0 ))s" >> $ab/ab.log; }
F='mm float16 1x4096x4096|mm bfloat16 1x4096x4096|mm float16 2x4096x4096|mm bfloat16 2x4096x4096|mm float16 4x4096x4096|mm bfloat16 4x4096x4096|mm float16 8x4096x4096|mm bfloat16 8x4096x4096|mm bfloat16 64x4096x4096|mm_tb bfloat16 64x4096x4096|mm bfloat16 16x11008x4096|mm float32 8x4096x4096|mm float32 16x11008x4096'
for round in 1 2; do
  run auto-$round "$F" GEMS_X=0
  run cluster-$round "$F" GEMS_SPLITK_REDUCE=cluster
done
cd $ab && for f in b-*.csv; do echo "== $f"; grep -v "^suite" $f | awk -F, '{print $1, $2, $3, $4, $5, $6, $9, $13}'; done > summary.txt
grep -h "summary" b-*.log >> ab.log; grep -h -i "cluster\|error\|fail" b-*.log | sort | uniq -c | head -40 >> ab.log
cat b-*.csv > all.csv; tar czf $OUT/ab.tgz *.txt *.log *.csv; cd $root; rm -rf $ab
cd $OUT && tar czf logs.tgz st-run.log st/nvidia-smi.txt && rm -f st-run.log st/nvidia-smi.txt; find $OUT -type f | sort
