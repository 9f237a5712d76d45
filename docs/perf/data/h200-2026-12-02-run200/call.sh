#!/usr/bin/env bash
# Session 32, Run 200: Attempt 12 (h100-notes-startup.md) - a warm-up kernel shaped like the operators' kernels (generic,
# launch bounds, a scalar, four view types). Carries .gpu: the new build (harness.tar.xz) and as startup-old-dlls.tar.xz
# Attempt 11's GemsInjector.Kernels.dll, GemsInjector.dll and PTX archive. Per variant one first process on fresh caches (shipped kernels off),
# then second processes on those caches alternating old / new three times, then one new second process naming the
# methods the JIT compiles per first call (GEMS_STARTUP_JIT_NAMES=1).
set -uo pipefail
export LD_LIBRARY_PATH="/usr/local/nvidia/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
st=$OUT/st; mkdir -p $st /tmp/h-new /tmp/h-old
tar -xJf .gpu/harness.tar.xz -C /tmp/h-new; tar -xJf .gpu/harness.tar.xz -C /tmp/h-old; tar -xJf .gpu/startup-old-dlls.tar.xz -C /tmp/h-old/harness
one() { local v=$1 p=$2; shift 2; env "$@" GEMS_STARTUP_PROCESS=$v-$p GEMS_KERNEL_CACHE=/tmp/c-$v/kernels CUDA_CACHE_PATH=/tmp/c-$v/driver GEMS_SHIPPED_KERNELS=off \
  timeout 60 /tmp/h-$v/harness/GemsInjector.GpuHarness --device cuda --suite startup --seed 200 --csv $st/$v-$p.csv > $st/$v-$p.log 2>&1; echo "$v $p rc=$?" >> $st/runs.log; }
rm -rf /tmp/c-old /tmp/c-new
one old first; one new first
for i in 1 2 3; do one old second-$i; one new second-$i; done
one new second-names GEMS_STARTUP_JIT_NAMES=1
for f in $st/*-second-*.csv; do echo "$(basename $f .csv) $(grep ',sum,float32,' $f | cut -d, -f5,26)"; done > $st/first-operator.txt
cd $OUT && tar czf all.tgz st && rm -rf st; find $OUT -type f
