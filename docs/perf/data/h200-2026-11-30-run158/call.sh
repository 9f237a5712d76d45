#!/usr/bin/env bash
# Session 25, Run 158: the float32 batch-1 decode traced at twelve points per group (copies done, sums folded, the
# fence, the ticket and the merge's weights added to Run 157's seven), 400 launches back to back.
set -uo pipefail
export LD_LIBRARY_PATH="/usr/local/nvidia/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
TRACE_LAUNCHES=400 HARNESS_ARGS='--seed 158' OUT=$OUT/trace bash tests/GemsInjector.GpuHarness/run-on-gpu.sh smi trace > $OUT/trace-run.log 2>&1
cd $OUT && tar czf all.tgz trace trace-run.log && rm -rf trace trace-run.log; find $OUT -type f
