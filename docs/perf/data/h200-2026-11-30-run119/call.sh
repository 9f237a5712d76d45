#!/usr/bin/env bash
# Session 20, Run 119: the DMMA ring with A two passes ahead in registers, 8-warp one-group plan (harness.tar.xz, branch ring-a2) against
# the ring with A loaded one pass ahead (harness.tar.xz with harness-old-overlay.tar.xz over it: Run 115's build), GEMS_GEMV_F32_DMMA=ring in both,
# processes alternating three times; then ncu of the new ring at 16 x 4096 x 11008 and 16 x 11008 x 4096.
set -uo pipefail
export LD_LIBRARY_PATH="/usr/local/nvidia/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
ab=$OUT/ab; mkdir -p $ab
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem --format=csv > $ab/smi.txt
ptxas="$(python3 -c 'import os, triton; print(os.path.join(os.path.dirname(triton.__file__), "backends", "nvidia", "bin", "ptxas"))' 2>/dev/null)"
for f in .gpu/ringptx/*.ptx; do
  sed 's/^\.version .*/.version 8.0/' $f > /tmp/r.ptx
  echo "== $(basename $f)" >> $ab/ptxas.txt
  "$ptxas" -arch=sm_90a -O3 -v /tmp/r.ptx -o /tmp/r.cubin >> $ab/ptxas.txt 2>&1; echo "rc=$?" >> $ab/ptxas.txt
done
for v in new old; do
  d=/tmp/gh-$v; mkdir -p $d
  tar -xJf .gpu/harness.tar.xz -C $d
  # The old build differs from the new in these four files only (harness-old-overlay.tar.xz).
  if [ $v = old ]; then tar -xJf .gpu/harness-old-overlay.tar.xz -C $d; fi
done
F='mm_tb float32 12x4096x11008|mm_tb float32 16x4096x11008|mm_tb float32 12x11008x4096|mm_tb float32 16x11008x4096'
run() { local v=$1 label=$2; shift 2; local t0=$(date +%s); env "$@" timeout 75 /tmp/gh-$v/harness/GemsInjector.GpuHarness --device cuda --suite accuracy,bench --dtype f32 --filter "$F" --budget-s 40 --csv $ab/b-$label.csv > $ab/b-$label.log 2>&1; echo "$label rc=$? $(( $(date +%s) - t0 ))s" >> $ab/ab.log; }
for round in 1 2 3; do
  run old old-$round GEMS_GEMV_F32_DMMA=ring
  run new new-$round GEMS_GEMV_F32_DMMA=ring
done
grep -h "summary\|FAIL" $ab/b-*.log >> $ab/ab.log
PROFILE_FILTERS='mm_tb float32 16x4096x11008;mm_tb float32 16x11008x4096' PROFILE_LAUNCHES=2 OUT=$ab/prof \
  bash tests/GemsInjector.GpuHarness/run-on-gpu.sh profile > $ab/prof.log 2>&1
cd $OUT && tar czf all.tgz ab && rm -rf ab; find $OUT -type f
