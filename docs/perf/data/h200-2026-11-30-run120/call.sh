#!/usr/bin/env bash
# Session 20, Run 120: the WgmmaSkinny cluster form with clusters of 6 (harness.tar.xz: main + branch cluster6) against
# main without them (harness.tar.xz with harness-old-overlay.tar.xz over it), processes alternating three times over the
# 16-bit [K, N] products whose plan has 6 splits (12/16 x 4096 x 11008) and two controls; then ncu of the new build.
set -uo pipefail
export LD_LIBRARY_PATH="/usr/local/nvidia/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
ab=$OUT/ab; mkdir -p $ab
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem --format=csv > $ab/smi.txt
for v in new old; do
  d=/tmp/gh-$v; mkdir -p $d
  tar -xJf .gpu/harness.tar.xz -C $d
  # The old build differs from the new in these four files only (harness-old-overlay.tar.xz).
  if [ $v = old ]; then tar -xJf .gpu/harness-old-overlay.tar.xz -C $d; fi
done
F='mm float16 16x4096x11008|mm bfloat16 16x4096x11008|mm float16 12x4096x11008|mm bfloat16 12x4096x11008|mm float16 16x11008x4096|mm float16 64x4096x4096'
run() { local v=$1 label=$2; shift 2; local t0=$(date +%s); env "$@" timeout 75 /tmp/gh-$v/harness/GemsInjector.GpuHarness --device cuda --suite accuracy,bench --dtype f16,bf16 --filter "$F" --budget-s 40 --csv $ab/b-$label.csv > $ab/b-$label.log 2>&1; echo "$label rc=$? $(( $(date +%s) - t0 ))s" >> $ab/ab.log; }
for round in 1 2 3; do
  run old old-$round GEMS_X=0
  run new new-$round GEMS_X=0
done
grep -h "summary\|FAIL" $ab/b-*.log >> $ab/ab.log
PROFILE_FILTERS='mm float16 16x4096x11008' PROFILE_LAUNCHES=2 OUT=$ab/prof \
  bash tests/GemsInjector.GpuHarness/run-on-gpu.sh profile > $ab/prof.log 2>&1
cd $OUT && tar czf all.tgz ab && rm -rf ab; find $OUT -type f
