#!/usr/bin/env bash
# Session 25, Run 161: the float32 lean decode's slice sums with every load before the adds, against main's build (Run
# 159's shared-memory sums), alternating processes; its trace.
set -uo pipefail
export LD_LIBRARY_PATH="/usr/local/nvidia/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
AB_FILTER='sdpa float32 1x32/8x1x4096x128|sdpa float32 16x32/8x1x4096x128' \
  AB_ROUNDS=4 OUT=$OUT/ab bash tests/GemsInjector.GpuHarness/run-on-gpu.sh smi ab > $OUT/ab-run.log 2>&1
TRACE_LAUNCHES=400 HARNESS_ARGS='--seed 161' OUT=$OUT/trace bash tests/GemsInjector.GpuHarness/run-on-gpu.sh trace > $OUT/trace-run.log 2>&1
cd $OUT && tar czf all.tgz ab trace ab-run.log trace-run.log && rm -rf ab trace ab-run.log trace-run.log; find $OUT -type f
