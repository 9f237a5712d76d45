#!/usr/bin/env bash
# Session 21, Run 129: Run 128 again with more processes (subgroups against Run 125's build, six rounds), on the 12-warp
# shapes and one 4-warp control (same code in both builds), because Run 128's control rows moved by up to 3.8%.
set -uo pipefail
export LD_LIBRARY_PATH="/usr/local/nvidia/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
ab=$OUT/ab; mkdir -p $ab
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem --format=csv > $ab/smi.txt
for v in new old; do
  d=/tmp/gh-$v; mkdir -p $d
  tar -xJf .gpu/harness.tar.xz -C $d
  if [ $v = old ]; then tar -xJf .gpu/harness-old-overlay.tar.xz -C $d; fi
done
run() { local v=$1 label=$2 filter=$3; shift 3; local t0=$(date +%s); env "$@" timeout 80 /tmp/gh-$v/harness/GemsInjector.GpuHarness --device cuda --suite accuracy,bench --dtype f32 --filter "$filter" --budget-s 35 --csv $ab/b-$label.csv > $ab/b-$label.log 2>&1; echo "$label rc=$? $(( $(date +%s) - t0 ))s" >> $ab/ab.log; }
F='mm_tb float32 16x4096x11008|mm_tb float32 12x4096x11008|mm float32 16x4096x11008|mm float32 12x4096x11008|mm_tb float32 16x11008x4096'
for round in 1 2 3 4 5 6; do
  run old def-old-$round "$F" GEMS_X=0
  run new def-new-$round "$F" GEMS_X=0
done
grep -h "summary\|FAIL" $ab/b-*.log >> $ab/ab.log
cd $OUT && tar czf all.tgz ab && rm -rf ab; find $OUT -type f
