#!/usr/bin/env bash
# Session 19, call D: the full bench beside PyTorch on the final defaults (DMMA GEMV auto), compare.md, and start-up.
set -uo pipefail
export LD_LIBRARY_PATH="/usr/local/nvidia/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
BENCH_BUDGET_S=380 OUT=$OUT/bench bash tests/GemsInjector.GpuHarness/run-on-gpu.sh smi torch torch-extra bench compare > $OUT/bench-run.log 2>&1
STARTUP_TIMEOUT_S=60 OUT=$OUT/st bash tests/GemsInjector.GpuHarness/run-on-gpu.sh startup > $OUT/st-run.log 2>&1
cd $OUT && tar czf all.tgz bench st bench-run.log st-run.log && rm -rf bench st bench-run.log st-run.log; find $OUT -type f
