#!/usr/bin/env bash
# Session 30, Run 189: the register prefill split into key ranges. Carries .gpu: this build (1e7912e) and as
# harness-old-overlay.tar.xz the kernel assembly of 8ac6544 (the session's start: 16-bit d 64 prefills on the CUDA-core
# tiled kernel). Two alternating process pairs over the d 64 rows (causal 4096 and the new 256-query chunk, every format)
# and the d 128 256-query chunk; then the attention accuracy cases, PyTorch's attention rows and this build's attention
# bench beside them (compare.md), and ptxas -v over the kernels the bench ran.
set -uo pipefail
export LD_LIBRARY_PATH="/usr/local/nvidia/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
AB_FILTER='4096x4096x64|x256x4096x' AB_ROUNDS=2 AB_BUDGET_S=40 \
  HARNESS_ARGS='--seed 189' OUT=$OUT/ab bash tests/GemsInjector.GpuHarness/run-on-gpu.sh ab > $OUT/ab-run.log 2>&1
HARNESS_ARGS='--seed 1891 --filter sdpa|copy|launch' OUT=$OUT/run \
  bash tests/GemsInjector.GpuHarness/run-on-gpu.sh smi torch-extra accuracy bench resources compare > $OUT/run.log 2>&1
grep -i "attention\|kernel,reg" $OUT/run/resources.csv > $OUT/run/resources-attention.csv 2>/dev/null
cd $OUT && tar czf all.tgz ab run ab-run.log run.log && rm -rf ab run ab-run.log run.log; find $OUT -type f
