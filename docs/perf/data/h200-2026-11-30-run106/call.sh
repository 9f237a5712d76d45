#!/usr/bin/env bash
# Session 18, call E: host-bound launches, DirectCudaLaunch (unset) against ILGPU's launchers (GEMS_KERNEL_LAUNCHER=ilgpu),
# alternating processes four times each, the order swapped every round.
set -uo pipefail
export LD_LIBRARY_PATH="/usr/local/nvidia/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
ab=$OUT/ab; mkdir -p $ab
dir=/tmp/gh; mkdir -p $dir; tar -xJf .gpu/harness.tar.xz -C $dir; H=$dir/harness/GemsInjector.GpuHarness
run() { local label=$1; shift; env "$@" timeout 60 $H --device cuda --suite bench --filter 'add float32 65536|add bfloat16 65536|embedding bfloat16 1x4096|rms_norm bfloat16 1x4096|fused_add_rms_norm bfloat16 1x4096|silu_and_mul bfloat16 1x' --budget-s 30 --csv $ab/b-$label.csv > $ab/b-$label.log 2>&1; echo "$label rc=$?" >> $ab/ab.log; }
for r in 1 2 3 4; do
  if (( r % 2 )); then run ilgpu-$r GEMS_KERNEL_LAUNCHER=ilgpu; run direct-$r GEMS_X=0; else run direct-$r GEMS_X=0; run ilgpu-$r GEMS_KERNEL_LAUNCHER=ilgpu; fi
done
cd $ab && grep -h "summary\|launched without" b-*.log >> ab.log; cat b-*.csv > all.csv; tar czf $OUT/ab.tgz ab.log all.csv; find $OUT -type f
