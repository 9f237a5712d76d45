#!/usr/bin/env bash
# Session 23, Run 142: the whole accuracy suite on the merged defaults (the 6-split plans summing in their launch).
set -uo pipefail
export LD_LIBRARY_PATH="/usr/local/nvidia/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
ACCURACY_BUDGET_S=240 OUT=$OUT/acc bash tests/GemsInjector.GpuHarness/run-on-gpu.sh accuracy > $OUT/acc-run.log 2>&1
cd $OUT && tar czf all.tgz acc acc-run.log && rm -rf acc acc-run.log; find $OUT -type f
