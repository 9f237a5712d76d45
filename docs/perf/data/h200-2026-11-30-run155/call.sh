#!/usr/bin/env bash
# Session 24, Run 155: the decode plan with the merge's cost per partial (branch decode-chunk: one float32 sequence of
# 4096 keys in 32 chunks of 128) against main's build, alternating processes; then the branch's accuracy on every sdpa
# case of the suite.
set -uo pipefail
export LD_LIBRARY_PATH="/usr/local/nvidia/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
AB_FILTER='sdpa float32 1x32/8x1x4096x128|sdpa float16 1x32/8x1x4096x128|sdpa bfloat16 1x32/8x1x4096x128|sdpa bfloat16 16x32/8x1x4096x128|sdpa float32 16x32/8x1x4096x128' \
  AB_ROUNDS=4 OUT=$OUT/ab bash tests/GemsInjector.GpuHarness/run-on-gpu.sh smi ab > $OUT/ab-run.log 2>&1
HARNESS_ARGS='--filter sdpa' ACCURACY_BUDGET_S=120 OUT=$OUT/acc bash tests/GemsInjector.GpuHarness/run-on-gpu.sh accuracy > $OUT/acc-run.log 2>&1
cd $OUT && tar czf all.tgz ab acc ab-run.log acc-run.log && rm -rf ab acc ab-run.log acc-run.log; find $OUT -type f
