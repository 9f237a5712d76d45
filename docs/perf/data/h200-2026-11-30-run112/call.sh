#!/usr/bin/env bash
# Session 19, call B: the DMMA GEMV's forms (GEMS_GEMV_F32_DMMA=on / prefetch / ring, branch rel-dmma, harness from
# ab19 = rel-dmma + main) against the FFMA defaults: 1) accuracy of every float32 product case per form (own kernel
# caches); 2) ptxas -v (Triton's, .version lowered to 8.0, sm_90a) on each DMMA PTX; 3) A/B processes alternating
# off / on / prefetch / ring, three rounds; 4) PyTorch's decode products (torch-extra, now labelled M x N x K);
# 5) ncu of prefetch and ring at 16 x 11008 x 4096, both layouts.
set -uo pipefail
export LD_LIBRARY_PATH="/usr/local/nvidia/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
root=$(pwd); ab=$OUT/ab; mkdir -p $ab
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem --format=csv > $ab/smi.txt
dir=/tmp/gh; mkdir -p $dir; tar -xJf .gpu/harness.tar.xz -C $dir; H=$dir/harness/GemsInjector.GpuHarness
ptxas="$(python3 -c 'import os, triton; print(os.path.join(os.path.dirname(triton.__file__), "backends", "nvidia", "bin", "ptxas"))' 2>/dev/null)"
for v in on prefetch ring; do
  t0=$(date +%s)
  GEMS_GEMV_F32_DMMA=$v GEMS_KERNEL_CACHE=/tmp/kc-$v GEMS_SHIPPED_KERNELS=off timeout 150 $H --device cuda --suite accuracy --dtype f32 --filter 'mm' --csv $ab/acc-$v.csv > $ab/acc-$v.log 2>&1
  echo "acc $v rc=$? $(( $(date +%s) - t0 ))s" >> $ab/ab.log
  for f in $(grep -l "m16n8k8" -r /tmp/kc-$v 2>/dev/null); do
    sed -E -e 's/^\.version [0-9.]+/.version 8.0/' -e 's/^\.target sm_[0-9a-z]+/.target sm_90a/' "$f" > /tmp/dmma.ptx
    echo "== $v $(basename $f)" >> $ab/ptxas.txt
    "$ptxas" -arch=sm_90a -O3 -v /tmp/dmma.ptx -o /tmp/dmma.cubin >> $ab/ptxas.txt 2>&1; echo "rc=$?" >> $ab/ptxas.txt
  done
done
F='mm float32 16x11008x4096|mm_tb float32 16x11008x4096|mm float32 16x4096x11008|mm_tb float32 16x4096x11008|mm float32 8x4096x4096|mm_tb float32 8x4096x4096|mm float32 4x4096x4096|mm_tb float32 4x4096x4096|mm float32 1x4096x4096|mm_tb float32 1x4096x4096|mm_tb float32 64x4096x4096'
run() { local label=$1; shift; local t0=$(date +%s); env "$@" timeout 75 $H --device cuda --suite accuracy,bench --dtype f32 --filter "$F" --budget-s 40 --csv $ab/b-$label.csv > $ab/b-$label.log 2>&1; echo "$label rc=$? $(( $(date +%s) - t0 ))s" >> $ab/ab.log; }
for round in 1 2 3; do
  run off-$round GEMS_X=0; run on-$round GEMS_GEMV_F32_DMMA=on; run prefetch-$round GEMS_GEMV_F32_DMMA=prefetch; run ring-$round GEMS_GEMV_F32_DMMA=ring
done
cd $ab && for f in b-*.csv; do echo "== $f"; grep "^bench" $f | awk -F, '{print $2, $3, $4, $5, $6, $9}'; done > summary.txt
grep -h "summary\|FAIL" acc-*.log b-*.log >> ab.log; grep -h -i "loaded" b-*.log | sort | uniq -c >> ab.log
tar czf $OUT/ab.tgz *; cd $root; rm -rf $ab
OUT=$OUT/torch bash tests/GemsInjector.GpuHarness/run-on-gpu.sh torch-extra > $OUT/torch-run.log 2>&1
for v in prefetch ring; do
  GEMS_GEMV_F32_DMMA=$v PROFILE_FILTERS='mm_tb float32 16x11008x4096;mm float32 16x11008x4096' PROFILE_LAUNCHES=2 OUT=$OUT/prof-$v \
    bash tests/GemsInjector.GpuHarness/run-on-gpu.sh profile > $OUT/prof-$v-run.log 2>&1
done
find $OUT -type f | sort
