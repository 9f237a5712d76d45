#!/usr/bin/env bash
# Session 28, Run 183: the final build (bc9afcd: 16-bit few-query calls as decode heads or the split wgmma prefill):
# start-up (Gems.Enable, first calls in fresh processes) and the whole accuracy suite.
set -uo pipefail
export LD_LIBRARY_PATH="/usr/local/nvidia/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
ACCURACY_BUDGET_S=280 HARNESS_ARGS='--seed 183' OUT=$OUT/acc bash tests/GemsInjector.GpuHarness/run-on-gpu.sh smi startup accuracy > $OUT/acc-run.log 2>&1
cd $OUT && tar czf all.tgz acc acc-run.log && rm -rf acc acc-run.log; find $OUT -type f
