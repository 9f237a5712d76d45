#!/usr/bin/env bash
# Session 19, call A: GEMS_GEMV_F32_DMMA=on (float32 1-16-row products on the FP64 tensor cores, branch rel-dmma).
# 1) accuracy of every float32 mm / mm_tb / addmm / bmm case with the switch on (own kernel cache, for ptxas);
# 2) ptxas -v (Triton's) on the DMMA kernels' PTX; 3) alternating A/B processes, twice each; 4) ncu of both layouts.
set -uo pipefail
export LD_LIBRARY_PATH="/usr/local/nvidia/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
root=$(pwd); ab=$OUT/ab; mkdir -p $ab
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem --format=csv > $ab/smi.txt
dir=/tmp/gh; mkdir -p $dir; tar -xJf .gpu/harness.tar.xz -C $dir; H=$dir/harness/GemsInjector.GpuHarness
t0=$(date +%s)
GEMS_GEMV_F32_DMMA=on GEMS_KERNEL_CACHE=/tmp/kc GEMS_SHIPPED_KERNELS=off timeout 150 $H --device cuda --suite accuracy --dtype f32 --filter 'mm' --csv $ab/acc-dmma.csv > $ab/acc-dmma.log 2>&1
echo "acc dmma rc=$? $(( $(date +%s) - t0 ))s" >> $ab/ab.log
ptxas="$(python3 -c 'import os, triton; print(os.path.join(os.path.dirname(triton.__file__), "backends", "nvidia", "bin", "ptxas"))' 2>/dev/null)"
for f in $(grep -l "m16n8k8" -r /tmp/kc 2>/dev/null); do
  echo "== $f" >> $ab/ptxas.txt; head -c 400 "$f" | grep -E "^\.(version|target)" >> $ab/ptxas.txt
  "$ptxas" -arch=sm_90a -O3 -v "$f" -o /tmp/dmma.cubin >> $ab/ptxas.txt 2>&1; echo "rc=$?" >> $ab/ptxas.txt
  cp "$f" $ab/ 2>/dev/null
done
F='mm float32 16x11008x4096|mm_tb float32 16x11008x4096|mm float32 8x4096x4096|mm_tb float32 8x4096x4096|mm float32 1x4096x4096|mm_tb float32 1x4096x4096|mm_tb float32 64x4096x4096'
run() { local label=$1; shift; local t0=$(date +%s); env "$@" timeout 75 $H --device cuda --suite accuracy,bench --dtype f32 --filter "$F" --budget-s 35 --csv $ab/b-$label.csv > $ab/b-$label.log 2>&1; echo "$label rc=$? $(( $(date +%s) - t0 ))s" >> $ab/ab.log; }
for round in 1 2; do run off-$round GEMS_X=0; run on-$round GEMS_GEMV_F32_DMMA=on; done
cd $ab && for f in b-*.csv; do echo "== $f"; grep -v "^suite" $f | awk -F, '{print $1, $2, $3, $4, $5, $6, $9, $13}'; done > summary.txt
grep -h "summary\|FAIL" acc-dmma.log b-*.log >> ab.log; grep -h -i "loaded" b-*.log | sort | uniq -c >> ab.log
tar czf $OUT/ab.tgz *; cd $root; rm -rf $ab
GEMS_GEMV_F32_DMMA=on PROFILE_FILTERS='mm_tb float32 16x11008x4096;mm float32 16x11008x4096' PROFILE_LAUNCHES=2 OUT=$OUT/prof \
  bash tests/GemsInjector.GpuHarness/run-on-gpu.sh profile > $OUT/prof-run.log 2>&1
find $OUT -type f | sort
