#!/usr/bin/env bash
# Session 30, Run 190: the final build of the session (16-bit few-query calls at head size 64 on the split register
# prefill above the pair limits). Carries .gpu: this build and as harness-old-overlay.tar.xz the kernel assembly of
# 8ac6544 (the session's start). Two alternating process pairs over the d 64 few-query and chunk rows; start-up
# (Gems.Enable, first calls in fresh processes) and the whole accuracy suite; then PyTorch's attention rows and this
# build's attention bench beside them (compare.md) and ptxas -v over the kernels the bench ran.
set -uo pipefail
export LD_LIBRARY_PATH="/usr/local/nvidia/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
AB_FILTER='x16x4096x64|x64x4096x64|x256x4096x64' AB_ROUNDS=2 AB_BUDGET_S=30 \
  HARNESS_ARGS='--seed 190' OUT=$OUT/ab bash tests/GemsInjector.GpuHarness/run-on-gpu.sh ab > $OUT/ab-run.log 2>&1
ACCURACY_BUDGET_S=250 HARNESS_ARGS='--seed 1901' OUT=$OUT/acc bash tests/GemsInjector.GpuHarness/run-on-gpu.sh smi startup accuracy > $OUT/acc-run.log 2>&1
HARNESS_ARGS='--seed 1902 --filter sdpa|copy|launch' OUT=$OUT/run \
  bash tests/GemsInjector.GpuHarness/run-on-gpu.sh torch-extra bench resources compare > $OUT/run.log 2>&1
grep -i "attention\|kernel,reg" $OUT/run/resources.csv > $OUT/run/resources-attention.csv 2>/dev/null
cd $OUT && tar czf all.tgz ab acc run ab-run.log acc-run.log run.log && rm -rf ab acc run ab-run.log acc-run.log run.log; find $OUT -type f
