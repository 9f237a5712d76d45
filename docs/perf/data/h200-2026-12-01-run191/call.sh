#!/usr/bin/env bash
# Session 31, Run 191: Run 190's A/B again with an overlay of the old kernel assemblies only (8ac6544's GemsInjector.dll,
# GemsInjector.Kernels.dll and shipped PTX under this build's harness: Run 190's overlay also held the old harness,
# which has no d 64 few-query or chunk rows, so its old side was empty). Then Nsight Compute over the 16-bit d 64
# causal prefill (the register variant, 0.39x PyTorch) to see what bounds it.
set -uo pipefail
export LD_LIBRARY_PATH="/usr/local/nvidia/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
AB_FILTER='x16x4096x64|x64x4096x64|x256x4096x64' AB_ROUNDS=2 AB_BUDGET_S=30 \
  HARNESS_ARGS='--seed 191' OUT=$OUT/ab bash tests/GemsInjector.GpuHarness/run-on-gpu.sh ab > $OUT/ab-run.log 2>&1
PROFILE_FILTERS='sdpa_causal float16 1x32/8x4096x4096x64' PROFILE_LAUNCHES=2 HARNESS_ARGS='--seed 1911' \
  OUT=$OUT/prof bash tests/GemsInjector.GpuHarness/run-on-gpu.sh smi profile > $OUT/prof-run.log 2>&1
cd $OUT && tar czf all.tgz ab prof ab-run.log prof-run.log && rm -rf ab prof ab-run.log prof-run.log; find $OUT -type f
