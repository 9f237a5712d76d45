#!/usr/bin/env bash
# Session 23, Runs 140-141: the branch wg-tickets with the in-launch sum as the default for the 6-split plans, against
# main's build (four files laid over the tarball), alternating processes; then the full bench beside PyTorch on the branch.
set -uo pipefail
export LD_LIBRARY_PATH="/usr/local/nvidia/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
AB_FILTER='mm float16 16x4096x11008|mm bfloat16 16x4096x11008|mm float16 12x4096x11008|mm bfloat16 12x4096x11008|mm float16 16x11008x4096|mm bfloat16 64x4096x4096|mm_tb float16 16x4096x11008' \
  AB_ROUNDS=4 OUT=$OUT/ab bash tests/GemsInjector.GpuHarness/run-on-gpu.sh smi ab > $OUT/ab-run.log 2>&1
BENCH_BUDGET_S=380 OUT=$OUT/bench bash tests/GemsInjector.GpuHarness/run-on-gpu.sh torch torch-extra bench compare > $OUT/bench-run.log 2>&1
cd $OUT && tar czf all.tgz ab bench ab-run.log bench-run.log && rm -rf ab bench ab-run.log bench-run.log; find $OUT -type f
