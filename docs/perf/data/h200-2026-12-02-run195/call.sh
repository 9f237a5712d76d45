#!/usr/bin/env bash
# Session 32, Run 195: the A/B Run 194 could not make. Carries .gpu: this build (three key-tile stages at d 64) and as
# harness-old-overlay.tar.xz the kernel assemblies of Run 192's build (b14cb4d = 4bea113's kernels: two stages).
# Four alternating process pairs over the 16-bit d 64 rows, bench suite only (each case checked once, then timed);
# then the attention accuracy cases with the register variant forced (GEMS_PREFILL_VARIANT=registers: the variant an
# A100 runs at d 128, two stages there) and with the default variants.
set -uo pipefail
export LD_LIBRARY_PATH="/usr/local/nvidia/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
AB_FILTER='16 1x32/8x4096x4096x64|16 1x32/8x256x4096x64|16 1x32/8x16x4096x64|16 1x32/8x64x4096x64' \
  AB_SUITES=bench AB_ROUNDS=4 AB_BUDGET_S=40 \
  HARNESS_ARGS='--seed 195' OUT=$OUT/ab bash tests/GemsInjector.GpuHarness/run-on-gpu.sh ab > $OUT/ab-run.log 2>&1
GEMS_PREFILL_VARIANT=registers ACCURACY_BUDGET_S=200 HARNESS_ARGS='--seed 1951 --filter sdpa' OUT=$OUT/acc-registers \
  bash tests/GemsInjector.GpuHarness/run-on-gpu.sh smi accuracy > $OUT/acc-registers.log 2>&1
HARNESS_ARGS='--seed 1952 --filter sdpa' OUT=$OUT/acc \
  bash tests/GemsInjector.GpuHarness/run-on-gpu.sh accuracy > $OUT/acc.log 2>&1
cd $OUT && tar czf all.tgz ab acc-registers acc *.log && rm -rf ab acc-registers acc *.log; find $OUT -type f
