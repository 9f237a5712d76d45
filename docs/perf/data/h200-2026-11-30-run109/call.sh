#!/usr/bin/env bash
# Session 18, call H: Attempt 10 (warm-up over the shared host paths) against the previous warm-up: the previous build's
# three assemblies swapped into a second copy; one first process per variant, then second processes alternating twice.
set -uo pipefail
export LD_LIBRARY_PATH="/usr/local/nvidia/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
st=$OUT/st; mkdir -p $st /tmp/h-new /tmp/h-old
tar -xJf .gpu/harness.tar.xz -C /tmp/h-new; tar -xJf .gpu/harness.tar.xz -C /tmp/h-old; tar -xJf .gpu/warmup-old-dlls.tar.xz -C /tmp/h-old/harness
one() { local v=$1 p=$2; GEMS_STARTUP_PROCESS=$v-$p GEMS_KERNEL_CACHE=/tmp/c-$v/kernels CUDA_CACHE_PATH=/tmp/c-$v/driver GEMS_SHIPPED_KERNELS=off \
  timeout 60 /tmp/h-$v/harness/GemsInjector.GpuHarness --device cuda --suite startup --csv $st/$v-$p.csv > $st/$v-$p.log 2>&1; echo "$v $p rc=$?" >> $st/runs.log; }
rm -rf /tmp/c-old /tmp/c-new
one old first; one new first
one old second-1; one new second-1; one old second-2; one new second-2
cd $OUT && tar czf st.tgz st && rm -rf st; find $OUT -type f
