#!/usr/bin/env bash
# Session 24, Run 143: the group ticket fenced by one thread with fence.acq_rel.gpu (branch ticket-release) against
# main's build (every thread's membar.gl), alternating processes: the 16-bit down projections that sum in their launch
# and the decode rows whose last group merges (batch 1 all formats, batch 16 bf16 / f32); then ncu of float32 batch-1
# decode on the branch.
set -uo pipefail
export LD_LIBRARY_PATH="/usr/local/nvidia/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
AB_FILTER='mm float16 16x4096x11008|mm bfloat16 16x4096x11008|mm float16 12x4096x11008|mm bfloat16 12x4096x11008|sdpa float32 1x32/8x1x4096x128|sdpa float16 1x32/8x1x4096x128|sdpa bfloat16 1x32/8x1x4096x128|sdpa bfloat16 16x32/8x1x4096x128|sdpa float32 16x32/8x1x4096x128|mm float16 16x11008x4096' \
  AB_ROUNDS=5 OUT=$OUT/ab bash tests/GemsInjector.GpuHarness/run-on-gpu.sh smi ab > $OUT/ab-run.log 2>&1
PROFILE_FILTERS='sdpa float32 1x32/8x1x4096x128;sdpa bfloat16 1x32/8x1x4096x128' PROFILE_LAUNCHES=2 OUT=$OUT/prof \
  bash tests/GemsInjector.GpuHarness/run-on-gpu.sh profile > $OUT/prof.log 2>&1
cd $OUT && tar czf all.tgz ab prof ab-run.log prof.log && rm -rf ab prof ab-run.log prof.log; find $OUT -type f
