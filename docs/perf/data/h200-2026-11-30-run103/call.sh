#!/usr/bin/env bash
# Session 18, call B: (1) start-up with the JIT counted per first call: a first process fills fresh caches (shipped
# kernels off), then second processes alternating without / with the JIT-name listener (GEMS_STARTUP_JIT_NAMES=1), and a
# shipped process (empty caches, the archive) with names; (2) the whole accuracy suite on today's defaults.
set -uo pipefail
export LD_LIBRARY_PATH="/usr/local/nvidia/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
st=$OUT/st; mkdir -p $st
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem --format=csv > $st/smi.txt
dir=/tmp/gh; mkdir -p $dir; tar -xJf .gpu/harness.tar.xz -C $dir; H=$dir/harness/GemsInjector.GpuHarness
c=/tmp/stc; rm -rf $c; mkdir -p $c
one() { local label=$1; shift; env GEMS_STARTUP_PROCESS=$label "$@" timeout 60 $H --device cuda --suite startup --csv $st/$label.csv > $st/$label.log 2>&1; echo "$label rc=$?" >> $st/runs.log; }
one first GEMS_KERNEL_CACHE=$c/kernels CUDA_CACHE_PATH=$c/driver GEMS_SHIPPED_KERNELS=off
for r in 1 2; do
  one second-$r GEMS_KERNEL_CACHE=$c/kernels CUDA_CACHE_PATH=$c/driver GEMS_SHIPPED_KERNELS=off
  one second-names-$r GEMS_KERNEL_CACHE=$c/kernels CUDA_CACHE_PATH=$c/driver GEMS_SHIPPED_KERNELS=off GEMS_STARTUP_JIT_NAMES=1
done
one shipped-names GEMS_KERNEL_CACHE=$c/k2 CUDA_CACHE_PATH=$c/d2 GEMS_STARTUP_JIT_NAMES=1
cd $OUT && tar czf st.tgz st && rm -rf st; cd - >/dev/null
ACCURACY_BUDGET_S=240 OUT=$OUT/acc bash tests/GemsInjector.GpuHarness/run-on-gpu.sh smi accuracy > $OUT/acc-run.log 2>&1
find $OUT -type f | sort
