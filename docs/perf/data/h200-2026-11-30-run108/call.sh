#!/usr/bin/env bash
# Session 18, call G: what a second process's first operator still compiles under the direct launch (names per first
# call, GEMS_STARTUP_JIT_NAMES=1), after a first process filled fresh caches.
set -uo pipefail
export LD_LIBRARY_PATH="/usr/local/nvidia/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
st=$OUT/st; mkdir -p $st
dir=/tmp/gh; mkdir -p $dir; tar -xJf .gpu/harness.tar.xz -C $dir; H=$dir/harness/GemsInjector.GpuHarness
c=/tmp/stg; rm -rf $c; mkdir -p $c
GEMS_STARTUP_PROCESS=first GEMS_KERNEL_CACHE=$c/kernels CUDA_CACHE_PATH=$c/driver GEMS_SHIPPED_KERNELS=off timeout 60 $H --device cuda --suite startup --csv $st/first.csv > $st/first.log 2>&1
GEMS_STARTUP_PROCESS=second-names GEMS_STARTUP_JIT_NAMES=1 GEMS_KERNEL_CACHE=$c/kernels CUDA_CACHE_PATH=$c/driver GEMS_SHIPPED_KERNELS=off timeout 60 $H --device cuda --suite startup --csv $st/second-names.csv > $st/second-names.log 2>&1
cd $OUT && tar czf st.tgz st && rm -rf st; find $OUT -type f
