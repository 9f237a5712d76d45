#!/usr/bin/env bash
# Session 18, call D: DirectCudaLaunch with Write<T> (no writer delegates, no cleared block) (default) against ILGPU's launchers (GEMS_KERNEL_LAUNCHER=ilgpu).
# (1) start-up: per round and variant a first process (fresh caches, shipped off) then a second one; a shipped process
# per variant; rounds alternate. (2) the whole accuracy suite on the default (direct). (3) launch-bound bench cases
# alternating ilgpu / direct, twice.
set -uo pipefail
export LD_LIBRARY_PATH="/usr/local/nvidia/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
st=$OUT/st; mkdir -p $st
dir=/tmp/gh; mkdir -p $dir; tar -xJf .gpu/harness.tar.xz -C $dir; H=$dir/harness/GemsInjector.GpuHarness
one() { local label=$1; shift; env GEMS_STARTUP_PROCESS=$label "$@" timeout 60 $H --device cuda --suite startup --csv $st/$label.csv > $st/$label.log 2>&1; echo "$label rc=$?" >> $st/runs.log; }
for r in 1 2; do
  for v in ilgpu direct; do
    c=/tmp/st-$v-$r; rm -rf $c; mkdir -p $c
    one $v-first-$r GEMS_KERNEL_LAUNCHER=$v GEMS_KERNEL_CACHE=$c/kernels CUDA_CACHE_PATH=$c/driver GEMS_SHIPPED_KERNELS=off
    one $v-second-$r GEMS_KERNEL_LAUNCHER=$v GEMS_KERNEL_CACHE=$c/kernels CUDA_CACHE_PATH=$c/driver GEMS_SHIPPED_KERNELS=off
  done
done
for v in ilgpu direct; do c=/tmp/sh-$v; rm -rf $c; mkdir -p $c; one $v-shipped GEMS_KERNEL_LAUNCHER=$v GEMS_KERNEL_CACHE=$c/kernels CUDA_CACHE_PATH=$c/driver; done
cd $OUT && tar czf st.tgz st && rm -rf st; cd - >/dev/null
ab=$OUT/ab; mkdir -p $ab
run() { local label=$1; shift; env "$@" timeout 70 $H --device cuda --suite accuracy,bench --filter 'add float32 65536|add bfloat16 65536|embedding bfloat16 1x4096|sdpa bfloat16 1x32/8x1x4096x128|mm bfloat16 8x4096x4096|mm_tb float32 8x4096x4096|rms_norm bfloat16 1x4096' --budget-s 45 --csv $ab/b-$label.csv > $ab/b-$label.log 2>&1; echo "$label rc=$?" >> $ab/ab.log; }
for r in 1 2; do run ilgpu-$r GEMS_KERNEL_LAUNCHER=ilgpu; run direct-$r GEMS_X=0; done
cd $ab && grep -h "summary\|FAILED\|launched without" b-*.log >> ab.log; cat b-*.csv > all.csv; tar czf $OUT/ab.tgz ab.log all.csv b-*.log; cd - >/dev/null; rm -rf $ab
ACCURACY_BUDGET_S=240 OUT=$OUT/acc bash tests/GemsInjector.GpuHarness/run-on-gpu.sh smi accuracy > $OUT/acc-run.log 2>&1
find $OUT -type f | sort
