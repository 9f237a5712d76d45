#!/usr/bin/env bash
# Session 29, Run 186: the tiled prefill over 16-bit tensors (head size 64) and the split of a 256-query chunk. Carries
# .gpu: this build and as harness-old-overlay.tar.xz the kernel assembly of 31a1d0a (the session's start: general
# kernels at head size 64 and for float32 everywhere). Two alternating process pairs over the new bench rows (causal
# d 64 and the 256-query chunk, every format); then the attention accuracy cases, PyTorch's attention rows and this
# build's attention bench beside them (compare.md), and ptxas -v over the kernels the bench ran.
set -uo pipefail
export LD_LIBRARY_PATH="/usr/local/nvidia/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
AB_FILTER='4096x4096x64|1x32/8x256x4096x128' AB_ROUNDS=2 AB_BUDGET_S=40 \
  HARNESS_ARGS='--seed 186' OUT=$OUT/ab bash tests/GemsInjector.GpuHarness/run-on-gpu.sh ab > $OUT/ab-run.log 2>&1
HARNESS_ARGS='--seed 1861 --filter sdpa|copy|launch' OUT=$OUT/run \
  bash tests/GemsInjector.GpuHarness/run-on-gpu.sh smi torch-extra accuracy bench resources compare > $OUT/run.log 2>&1
grep -i "attention\|kernel,reg" $OUT/run/resources.csv > $OUT/run/resources-attention.csv 2>/dev/null
cd $OUT && tar czf all.tgz ab run ab-run.log run.log && rm -rf ab run ab-run.log run.log; find $OUT -type f
