#!/usr/bin/env bash
# Session 25, Run 162: the full bench beside PyTorch on main after this session's decode changes (Runs 159 and 161).
set -uo pipefail
export LD_LIBRARY_PATH="/usr/local/nvidia/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
BENCH_BUDGET_S=380 OUT=$OUT/bench bash tests/GemsInjector.GpuHarness/run-on-gpu.sh smi torch torch-extra bench compare > $OUT/bench-run.log 2>&1
cd $OUT && tar czf all.tgz bench bench-run.log && rm -rf bench bench-run.log; find $OUT -type f
