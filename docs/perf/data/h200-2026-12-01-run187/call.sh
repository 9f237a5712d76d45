#!/usr/bin/env bash
# Session 29, Run 187: the final build (the tiled kernels as one generic body over float32 / 16-bit staging):
# start-up (Gems.Enable, first calls in fresh processes), the whole accuracy suite, then PyTorch's attention rows and
# this build's attention bench beside them (compare.md) and ptxas -v over the kernels the bench ran.
set -uo pipefail
export LD_LIBRARY_PATH="/usr/local/nvidia/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
ACCURACY_BUDGET_S=250 HARNESS_ARGS='--seed 187' OUT=$OUT/acc bash tests/GemsInjector.GpuHarness/run-on-gpu.sh smi startup accuracy > $OUT/acc-run.log 2>&1
HARNESS_ARGS='--seed 1871 --filter sdpa|copy|launch' OUT=$OUT/run \
  bash tests/GemsInjector.GpuHarness/run-on-gpu.sh torch-extra bench resources compare > $OUT/run.log 2>&1
grep -i "attention\|kernel,reg" $OUT/run/resources.csv > $OUT/run/resources-attention.csv 2>/dev/null
cd $OUT && tar czf all.tgz acc run acc-run.log run.log && rm -rf acc run acc-run.log run.log; find $OUT -type f
