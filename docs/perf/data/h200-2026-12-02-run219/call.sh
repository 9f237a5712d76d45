#!/usr/bin/env bash
# Session 36, Run 219: start-up as run-on-gpu.sh measures it (Gems.Enable, every operator's first call in a first process,
# a second one over its disk cache, without the driver cache, with the shipped kernels) and the whole accuracy suite, on
# the L2 prefetch default (Attempt 20), for the standing section of h100.md.
set -uo pipefail
export LD_LIBRARY_PATH="/usr/local/nvidia/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
ACCURACY_BUDGET_S=230 HARNESS_ARGS='--seed 219' OUT=$OUT/run \
  bash tests/GemsInjector.GpuHarness/run-on-gpu.sh smi startup accuracy > $OUT/run.log 2>&1
cd $OUT && gzip -9 run/harness.log run.log 2>/dev/null; tar czf all.tgz run run.log* && rm -rf run run.log*; find $OUT -type f
