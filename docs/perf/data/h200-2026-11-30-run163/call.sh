#!/usr/bin/env bash
# Session 25, Run 163: the whole accuracy suite on main at the end of the session (the float32 lean decode of Runs 159
# and 161), and the decode trace once more on the final build.
set -uo pipefail
export LD_LIBRARY_PATH="/usr/local/nvidia/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
ACCURACY_BUDGET_S=300 OUT=$OUT/acc bash tests/GemsInjector.GpuHarness/run-on-gpu.sh smi accuracy > $OUT/acc-run.log 2>&1
TRACE_LAUNCHES=400 HARNESS_ARGS='--seed 163' OUT=$OUT/trace bash tests/GemsInjector.GpuHarness/run-on-gpu.sh trace > $OUT/trace-run.log 2>&1
cd $OUT && tar czf all.tgz acc trace acc-run.log trace-run.log && rm -rf acc trace acc-run.log trace-run.log; find $OUT -type f
