#!/usr/bin/env bash
# Session 28, Run 178: 16-bit attention of 2-64 unmasked non-causal queries as decode heads. Carries .gpu (this build's
# harness, and session 27's kernel assembly as harness-old-overlay.tar.xz). Alternating processes old / new over every
# sdpa case (accuracy and bench), then PyTorch's extra rows and this build's sdpa bench beside them (compare.md).
set -uo pipefail
export LD_LIBRARY_PATH="/usr/local/nvidia/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
AB_FILTER='sdpa' AB_ROUNDS=3 AB_BUDGET_S=45 HARNESS_ARGS='--seed 178' OUT=$OUT/ab \
  bash tests/GemsInjector.GpuHarness/run-on-gpu.sh smi ab > $OUT/ab-run.log 2>&1
HARNESS_ARGS='--seed 1781 --filter sdpa|copy|launch' OUT=$OUT/bench \
  bash tests/GemsInjector.GpuHarness/run-on-gpu.sh torch-extra bench compare > $OUT/bench-run.log 2>&1
cd $OUT && tar czf all.tgz ab bench ab-run.log bench-run.log && rm -rf ab bench ab-run.log bench-run.log; find $OUT -type f
