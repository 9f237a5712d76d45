#!/usr/bin/env bash
# Session 28, Run 180: the final build (16-bit few-query attention as decode heads up to 768 pairs): start-up, the whole
# accuracy suite, and the attention bench rows (16 queries at 32 heads = 512 pairs: decode heads; 64 = 2048: the
# tensor-core prefill).
set -uo pipefail
export LD_LIBRARY_PATH="/usr/local/nvidia/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
ACCURACY_BUDGET_S=300 OUT=$OUT/acc bash tests/GemsInjector.GpuHarness/run-on-gpu.sh smi startup accuracy > $OUT/acc-run.log 2>&1
HARNESS_ARGS='--seed 180 --filter sdpa|copy|launch' OUT=$OUT/bench bash tests/GemsInjector.GpuHarness/run-on-gpu.sh bench > $OUT/bench-run.log 2>&1
cd $OUT && tar czf all.tgz acc bench acc-run.log bench-run.log && rm -rf acc bench acc-run.log bench-run.log; find $OUT -type f
