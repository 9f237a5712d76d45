#!/usr/bin/env bash
# Session 23, Run 139 (Attempt 17): same build (branch wg-tickets), alternating processes, unset against
# GEMS_SPLITK_REDUCE=fused-all: the 6-split down projection summing in its launch, and two cluster-plan bystanders.
set -uo pipefail
export LD_LIBRARY_PATH="/usr/local/nvidia/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
AB_FILTER='mm float16 16x4096x11008|mm bfloat16 16x4096x11008|mm float16 12x4096x11008|mm bfloat16 12x4096x11008|mm float16 16x11008x4096|mm bfloat16 64x4096x4096' \
  AB_ROUNDS=3 AB_OLD_OVERLAY=none AB_ENV_NEW='GEMS_SPLITK_REDUCE=fused-all' OUT=$OUT/ab bash tests/GemsInjector.GpuHarness/run-on-gpu.sh smi ab > $OUT/ab-run.log 2>&1
cd $OUT && tar czf all.tgz ab ab-run.log && rm -rf ab ab-run.log; find $OUT -type f
