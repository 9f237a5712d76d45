#!/usr/bin/env bash
# Session 28, Run 179: Run 178's A/B spent its budget on the float32 causal prefill. The few-query rows only (4, 16 and
# 64 queries over 4096 keys, every format), this build against session 27's kernel assembly (.gpu/harness-old-overlay.tar.xz),
# four alternating process pairs.
set -uo pipefail
export LD_LIBRARY_PATH="/usr/local/nvidia/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
AB_FILTER='x32/8x4x4096x|x32/8x16x4096x|x32/8x64x4096x' AB_ROUNDS=4 AB_BUDGET_S=40 HARNESS_ARGS='--seed 179' OUT=$OUT/ab \
  bash tests/GemsInjector.GpuHarness/run-on-gpu.sh ab > $OUT/ab-run.log 2>&1
cd $OUT && tar czf all.tgz ab ab-run.log && rm -rf ab ab-run.log; find $OUT -type f
