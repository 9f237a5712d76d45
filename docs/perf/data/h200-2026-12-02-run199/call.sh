#!/usr/bin/env bash
# Session 32, Run 199: main's final build (Attempt 11: the load path without reflection invokes; every launch's view
# addresses now take their element size from IArrayView): start-up as run-on-gpu.sh measures it and the whole
# accuracy suite, for the standing section of h100.md.
set -uo pipefail
export LD_LIBRARY_PATH="/usr/local/nvidia/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
ACCURACY_BUDGET_S=230 HARNESS_ARGS='--seed 199' OUT=$OUT/run \
  bash tests/GemsInjector.GpuHarness/run-on-gpu.sh smi startup accuracy > $OUT/run.log 2>&1
cd $OUT && tar czf all.tgz run run.log && rm -rf run run.log; find $OUT -type f
