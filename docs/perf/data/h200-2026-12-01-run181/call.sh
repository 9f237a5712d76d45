#!/usr/bin/env bash
# Session 28, Run 181: the wgmma prefill split into key ranges. Carries .gpu: the measuring build (every 16-bit few-query
# call at d 128 to the prefill) and as harness-old-overlay.tar.xz the kernel assembly of 9806cd6 (decode heads up to 768
# pairs, whole-key prefill). Four alternating process pairs over the few-query rows, the split accuracy case and the
# bfloat16 causal prefill; then the whole attention accuracy suite of the new build.
set -uo pipefail
export LD_LIBRARY_PATH="/usr/local/nvidia/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
AB_FILTER='x32/8x4x4096x|x32/8x16x4096x|x32/8x64x4096x|1x8/2x100x1000x128|sdpa_causal bfloat16' AB_ROUNDS=4 AB_BUDGET_S=40 \
  HARNESS_ARGS='--seed 181' OUT=$OUT/ab bash tests/GemsInjector.GpuHarness/run-on-gpu.sh ab > $OUT/ab-run.log 2>&1
ACCURACY_BUDGET_S=120 HARNESS_ARGS='--seed 1811 --filter sdpa' OUT=$OUT/acc bash tests/GemsInjector.GpuHarness/run-on-gpu.sh accuracy > $OUT/acc-run.log 2>&1
cd $OUT && tar czf all.tgz ab acc ab-run.log acc-run.log && rm -rf ab acc ab-run.log acc-run.log; find $OUT -type f
