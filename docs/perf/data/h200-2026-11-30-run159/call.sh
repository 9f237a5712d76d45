#!/usr/bin/env bash
# Session 25, Run 159: the float32 lean decode's sums added through shared memory (no shuffle fold) against main's
# build, alternating processes; the branch's accuracy on every sdpa case; its trace (Run 158's points).
set -uo pipefail
export LD_LIBRARY_PATH="/usr/local/nvidia/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
AB_FILTER='sdpa float32 1x32/8x1x4096x128|sdpa float32 16x32/8x1x4096x128|sdpa bfloat16 1x32/8x1x4096x128' \
  AB_ROUNDS=4 OUT=$OUT/ab bash tests/GemsInjector.GpuHarness/run-on-gpu.sh smi ab > $OUT/ab-run.log 2>&1
HARNESS_ARGS='--filter sdpa' ACCURACY_BUDGET_S=120 OUT=$OUT/acc bash tests/GemsInjector.GpuHarness/run-on-gpu.sh accuracy > $OUT/acc-run.log 2>&1
TRACE_LAUNCHES=400 HARNESS_ARGS='--seed 159' OUT=$OUT/trace bash tests/GemsInjector.GpuHarness/run-on-gpu.sh trace > $OUT/trace-run.log 2>&1
cd $OUT && tar czf all.tgz ab acc trace ab-run.log acc-run.log trace-run.log && rm -rf ab acc trace ab-run.log acc-run.log trace-run.log; find $OUT -type f
