#!/usr/bin/env bash
# Session 25, Run 160: programmatic dependent launch probe (--launch-overlap): tiny PTX kernels launched back to back
# through cuLaunchKernelEx, plain, dependent (griddepcontrol) without and with the overlap attribute.
set -uo pipefail
export LD_LIBRARY_PATH="/usr/local/nvidia/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
mkdir -p /tmp/h && tar -xJf .gpu/harness.tar.xz -C /tmp/h
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem --format=csv > $OUT/nvidia-smi.txt 2>&1
/tmp/h/harness/GemsInjector.GpuHarness --device cuda --launch-overlap 2000 > $OUT/overlap.md 2>&1
echo "exit $?" >> $OUT/overlap.md
/tmp/h/harness/GemsInjector.GpuHarness --device cuda --launch-overlap 2000 > $OUT/overlap2.md 2>&1
echo "exit $?" >> $OUT/overlap2.md
cat $OUT/overlap.md $OUT/overlap2.md
