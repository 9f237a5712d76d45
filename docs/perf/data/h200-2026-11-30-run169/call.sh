#!/usr/bin/env bash
# Session 26, Run 169: the whole accuracy suite on the final build (TensorCoreLaunch.DeviceAddress now generic: every
# dispatch's alignment check and pointer argument goes through it).
set -uo pipefail
export LD_LIBRARY_PATH="/usr/local/nvidia/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
ACCURACY_BUDGET_S=300 HARNESS_ARGS='--seed 169' OUT=$OUT/acc bash tests/GemsInjector.GpuHarness/run-on-gpu.sh smi accuracy > $OUT/acc-run.log 2>&1
cd $OUT && tar czf all.tgz acc acc-run.log && rm -rf acc acc-run.log; find $OUT -type f
