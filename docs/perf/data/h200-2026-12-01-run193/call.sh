#!/usr/bin/env bash
# Session 31, Run 193: the mma.sync prefills' lane addresses computed once (an asm move in Begin). Carries .gpu: this
# build and as harness-old-overlay.tar.xz the kernel assemblies of Run 192's build. Two alternating process pairs over
# the 16-bit d 64 rows; the attention accuracy cases, the attention bench and ptxas -v over the kernels it ran.
set -uo pipefail
export LD_LIBRARY_PATH="/usr/local/nvidia/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
AB_FILTER='float16 1x32/8x4096x4096x64|bfloat16 1x32/8x4096x4096x64|16 1x32/8x256x4096x64|16 1x32/8x16x4096x64' AB_ROUNDS=2 AB_BUDGET_S=30 \
  HARNESS_ARGS='--seed 193' OUT=$OUT/ab bash tests/GemsInjector.GpuHarness/run-on-gpu.sh ab > $OUT/ab-run.log 2>&1
HARNESS_ARGS='--seed 1931 --filter sdpa|copy|launch' OUT=$OUT/run \
  bash tests/GemsInjector.GpuHarness/run-on-gpu.sh smi accuracy bench resources > $OUT/run.log 2>&1
grep -i "attention\|kernel,reg" $OUT/run/resources.csv > $OUT/run/resources-attention.csv 2>/dev/null
cd $OUT && tar czf all.tgz ab run ab-run.log run.log && rm -rf ab run *.log; find $OUT -type f
