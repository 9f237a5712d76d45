#!/usr/bin/env bash
# Session 32, Run 201: start-up of the final build (Attempt 12's warm-up) as run-on-gpu.sh measures it: Gems.Enable,
# every operator's first call in a first process, a second one over its disk cache, without the driver cache, with the
# shipped kernels, and the shipped kernels on large shapes.
set -uo pipefail
export LD_LIBRARY_PATH="/usr/local/nvidia/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
HARNESS_ARGS='--seed 201' OUT=$OUT/run bash tests/GemsInjector.GpuHarness/run-on-gpu.sh smi startup > $OUT/run.log 2>&1
cd $OUT && tar czf all.tgz run run.log && rm -rf run run.log; find $OUT -type f
