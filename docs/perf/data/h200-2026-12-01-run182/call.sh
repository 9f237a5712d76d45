#!/usr/bin/env bash
# Session 28, Run 182: the split prefill's combine on 128-thread groups. Carries .gpu: this build and as
# harness-old-overlay.tar.xz the kernel assembly of 607080e (512-thread combine groups). Four alternating process pairs
# over the 16-bit few-query rows and the split accuracy case; then PyTorch's extra rows and this build's attention bench
# beside them (compare.md).
set -uo pipefail
export LD_LIBRARY_PATH="/usr/local/nvidia/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
AB_FILTER='16 1x32/8x4x4096x|16 1x32/8x16x4096x|16 1x32/8x64x4096x|1x8/2x100x1000x128' AB_ROUNDS=4 AB_BUDGET_S=30 \
  HARNESS_ARGS='--seed 182' OUT=$OUT/ab bash tests/GemsInjector.GpuHarness/run-on-gpu.sh ab > $OUT/ab-run.log 2>&1
HARNESS_ARGS='--seed 1821 --filter sdpa|copy|launch' OUT=$OUT/bench \
  bash tests/GemsInjector.GpuHarness/run-on-gpu.sh torch-extra bench compare > $OUT/bench-run.log 2>&1
cd $OUT && tar czf all.tgz ab bench ab-run.log bench-run.log && rm -rf ab bench ab-run.log bench-run.log; find $OUT -type f
