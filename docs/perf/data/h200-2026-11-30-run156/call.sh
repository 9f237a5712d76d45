#!/usr/bin/env bash
# Session 25, Run 156: the 8-warp float32 decode (DecodeStreamF32Lean8w: two tiles per step, 8 stages, one sequence's
# plan unchanged at 32 chunks of 128) against main's build, alternating processes; the new build's accuracy on every
# sdpa case; its chunk at 256 and 192 against its plan; an ncu profile of the batch-1 case.
set -uo pipefail
export LD_LIBRARY_PATH="/usr/local/nvidia/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
AB_FILTER='sdpa float32 1x32/8x1x4096x128|sdpa bfloat16 1x32/8x1x4096x128|sdpa float32 16x32/8x1x4096x128' \
  AB_ROUNDS=4 OUT=$OUT/ab bash tests/GemsInjector.GpuHarness/run-on-gpu.sh smi ab > $OUT/ab-run.log 2>&1
HARNESS_ARGS='--filter sdpa' ACCURACY_BUDGET_S=120 OUT=$OUT/acc bash tests/GemsInjector.GpuHarness/run-on-gpu.sh accuracy > $OUT/acc-run.log 2>&1
for c in 256 192; do
  AB_FILTER='sdpa float32 1x32/8x1x4096x128' AB_ROUNDS=3 AB_OLD_OVERLAY=none \
    AB_ENV_NEW="GEMS_DECODE_CHUNK=$c" OUT=$OUT/ab$c bash tests/GemsInjector.GpuHarness/run-on-gpu.sh ab > $OUT/ab$c-run.log 2>&1
done
PROFILE_FILTERS='sdpa float32 1x32/8x1x4096x128' PROFILE_LAUNCHES=2 OUT=$OUT/prof bash tests/GemsInjector.GpuHarness/run-on-gpu.sh profile > $OUT/prof-run.log 2>&1
cd $OUT && tar czf all.tgz ab* acc* prof* && rm -rf ab* acc prof acc-run.log prof-run.log; find $OUT -type f
