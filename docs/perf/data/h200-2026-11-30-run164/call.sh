#!/usr/bin/env bash
# Session 25, Run 164: after the review (the harness's attention reference in one place, RefMath.Attention; the
# trace's check through Checker.Values): every sdpa accuracy case and the decode trace once more.
set -uo pipefail
export LD_LIBRARY_PATH="/usr/local/nvidia/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
HARNESS_ARGS='--filter sdpa' ACCURACY_BUDGET_S=150 OUT=$OUT/acc bash tests/GemsInjector.GpuHarness/run-on-gpu.sh smi accuracy > $OUT/acc-run.log 2>&1
TRACE_LAUNCHES=400 HARNESS_ARGS='--seed 164' OUT=$OUT/trace bash tests/GemsInjector.GpuHarness/run-on-gpu.sh trace > $OUT/trace-run.log 2>&1
cd $OUT && tar czf all.tgz acc trace acc-run.log trace-run.log && rm -rf acc trace acc-run.log trace-run.log; find $OUT -type f
