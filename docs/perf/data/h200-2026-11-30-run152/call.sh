#!/usr/bin/env bash
# Session 24, Run 152: the decode merge's first step staged by cp.async (branch merge-staged) against main's build,
# alternating processes (every process checks its decode cases first); the branch's accuracy on every sdpa case; then
# ncu of the branch's batch-1 decodes.
set -uo pipefail
export LD_LIBRARY_PATH="/usr/local/nvidia/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
AB_FILTER='sdpa float32 1x32/8x1x4096x128|sdpa float16 1x32/8x1x4096x128|sdpa bfloat16 1x32/8x1x4096x128|sdpa bfloat16 16x32/8x1x4096x128|sdpa float32 16x32/8x1x4096x128' \
  AB_ROUNDS=5 OUT=$OUT/ab bash tests/GemsInjector.GpuHarness/run-on-gpu.sh smi ab > $OUT/ab-run.log 2>&1
HARNESS_ARGS='--filter sdpa' ACCURACY_BUDGET_S=120 OUT=$OUT/acc bash tests/GemsInjector.GpuHarness/run-on-gpu.sh accuracy > $OUT/acc-run.log 2>&1
PROFILE_FILTERS='sdpa float32 1x32/8x1x4096x128;sdpa bfloat16 1x32/8x1x4096x128' PROFILE_LAUNCHES=2 OUT=$OUT/prof \
  bash tests/GemsInjector.GpuHarness/run-on-gpu.sh profile > $OUT/prof.log 2>&1
cd $OUT && tar czf all.tgz ab acc prof ab-run.log acc-run.log prof.log && rm -rf ab acc prof ab-run.log acc-run.log prof.log; find $OUT -type f
