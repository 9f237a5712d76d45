#!/usr/bin/env bash
# Session 17, call C: GEMS_GEMV_F32_WIDE=ring3wk3 against the default after the loader fix, alternating processes three
# times, accuracy then bench; ncu of it; the whole accuracy suite with it set (everything else on the defaults).
set -uo pipefail
export LD_LIBRARY_PATH="/usr/local/nvidia/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
root=$(pwd); ab=$OUT/ab; mkdir -p $ab
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem --format=csv > $OUT/smi.txt
dir=/tmp/gh; mkdir -p $dir; tar -xJf .gpu/harness.tar.xz -C $dir; H=$dir/harness/GemsInjector.GpuHarness
run() { local label=$1 f=$2; shift 2; local t0=$(date +%s); env "$@" timeout 80 $H --device cuda --suite accuracy,bench --dtype f32,bf16 --filter "$f" --budget-s 55 --csv $ab/b-$label.csv > $ab/b-$label.log 2>&1; echo "$label rc=$? $(( $(date +%s) - t0 ))s" >> $ab/ab.log; }
F='mm_tb float32 16x11008x4096|mm float32 16x11008x4096|mm_tb float32 8x4096x4096|mm bfloat16 8x4096x4096|mm bfloat16 64x4096x4096'
for round in 1 2 3; do
  run default-$round "$F" GEMS_X=0
  run k3-$round "$F" GEMS_GEMV_F32_WIDE=ring3wk3
done
cd $ab && for f in b-*.csv; do echo "== $f"; grep -v "^suite" $f | awk -F, '{print $1, $2, $3, $4, $5, $6, $9, $13}'; done > summary.txt
grep -h "summary\|FAILED" b-*.log >> ab.log; grep -h -i "loaded\|error\|fail" b-*.log | sort | uniq -c | head -40 >> ab.log
cat b-*.csv > all.csv; tar czf $OUT/ab.tgz *.txt *.log *.csv; cd $root; rm -rf $ab
GEMS_GEMV_F32_WIDE=ring3wk3 PROFILE_FILTERS='mm_tb float32 16x11008x4096' PROFILE_LAUNCHES=2 OUT=$OUT/prof \
  bash tests/GemsInjector.GpuHarness/run-on-gpu.sh profile > $OUT/prof-run.log 2>&1
GEMS_GEMV_F32_WIDE=ring3wk3 ACCURACY_BUDGET_S=240 OUT=$OUT/acc bash tests/GemsInjector.GpuHarness/run-on-gpu.sh smi accuracy > $OUT/acc-run.log 2>&1
cd $OUT && tar czf logs.tgz smi.txt prof-run.log acc-run.log acc/nvidia-smi.txt prof/harness.log acc/harness.log 2>/dev/null; rm -f smi.txt prof-run.log acc-run.log acc/nvidia-smi.txt prof/harness.log acc/harness.log; rm -f prof/profile.tar.xz; find $OUT -type f | sort
