#!/usr/bin/env bash
# Session 31, Run 194: the register prefill's key tiles in three stages, one group barrier per tile. Carries .gpu: this
# build and as harness-old-overlay.tar.xz the kernel assemblies of Run 192's build (4bea113). Two alternating process
# pairs over the 16-bit d 64 rows and, with GEMS_PREFILL_VARIANT=registers in both builds, the d 128 causal and chunk
# rows on the register variant (its three stages pass 48 KB: the opt-in marker); the attention accuracy cases with the
# default variant and with the register variant forced; ptxas -v over the kernels the bench ran.
set -uo pipefail
export LD_LIBRARY_PATH="/usr/local/nvidia/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
AB_FILTER='16 1x32/8x4096x4096x64|16 1x32/8x256x4096x64|16 1x32/8x16x4096x64|16 1x32/8x4096x4096x128|16 1x32/8x256x4096x128' \
  AB_ENV_OLD='GEMS_PREFILL_VARIANT=registers' AB_ENV_NEW='GEMS_PREFILL_VARIANT=registers' AB_ROUNDS=2 AB_BUDGET_S=30 \
  HARNESS_ARGS='--seed 194' OUT=$OUT/ab bash tests/GemsInjector.GpuHarness/run-on-gpu.sh ab > $OUT/ab-run.log 2>&1
HARNESS_ARGS='--seed 1941 --filter sdpa|copy|launch' OUT=$OUT/run \
  bash tests/GemsInjector.GpuHarness/run-on-gpu.sh smi accuracy bench resources > $OUT/run.log 2>&1
grep -i "attention\|kernel,reg" $OUT/run/resources.csv > $OUT/run/resources-attention.csv 2>/dev/null
GEMS_PREFILL_VARIANT=registers HARNESS_ARGS='--seed 1942 --filter sdpa' OUT=$OUT/acc-registers \
  bash tests/GemsInjector.GpuHarness/run-on-gpu.sh accuracy > $OUT/acc-registers.log 2>&1
cd $OUT && tar czf all.tgz ab run acc-registers *.log && rm -rf ab run acc-registers *.log; find $OUT -type f
