#!/usr/bin/env bash
# Session 31, Run 192: the mma.sync prefills' key-tile copy planned per thread (KeyTileCopy). Carries .gpu: this build
# and as harness-old-overlay.tar.xz the kernel assemblies of b767474 (the session's start). Two alternating process
# pairs over the d 64 rows and the 16-bit d 128 causal row; Nsight Compute over the d 64 causal kernel again (the
# instruction count against Run 191's); the whole accuracy suite; PyTorch's attention rows and this build's attention
# bench beside them (compare.md) and ptxas -v over the kernels the bench ran.
set -uo pipefail
export LD_LIBRARY_PATH="/usr/local/nvidia/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
AB_FILTER='4096x4096x64|x16x4096x64|x64x4096x64|x256x4096x64|sdpa_causal bfloat16 1x32/8x4096x4096x128' AB_ROUNDS=2 AB_BUDGET_S=40 \
  HARNESS_ARGS='--seed 192' OUT=$OUT/ab bash tests/GemsInjector.GpuHarness/run-on-gpu.sh ab > $OUT/ab-run.log 2>&1
PROFILE_FILTERS='sdpa_causal float16 1x32/8x4096x4096x64' PROFILE_LAUNCHES=2 HARNESS_ARGS='--seed 1921' \
  OUT=$OUT/prof bash tests/GemsInjector.GpuHarness/run-on-gpu.sh profile > $OUT/prof-run.log 2>&1
ACCURACY_BUDGET_S=220 HARNESS_ARGS='--seed 1922' OUT=$OUT/acc bash tests/GemsInjector.GpuHarness/run-on-gpu.sh smi accuracy > $OUT/acc-run.log 2>&1
HARNESS_ARGS='--seed 1923 --filter sdpa|copy|launch' OUT=$OUT/run \
  bash tests/GemsInjector.GpuHarness/run-on-gpu.sh torch-extra bench resources compare > $OUT/run.log 2>&1
grep -i "attention\|kernel,reg" $OUT/run/resources.csv > $OUT/run/resources-attention.csv 2>/dev/null
cd $OUT && tar czf all.tgz ab prof acc run ab-run.log prof-run.log acc-run.log run.log && rm -rf ab prof acc run *.log; find $OUT -type f
