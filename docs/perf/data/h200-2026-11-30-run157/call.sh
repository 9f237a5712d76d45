#!/usr/bin/env bash
# Session 25, Run 157: where the float32 batch-1 decode's time goes, group by group (--decode-trace: the GPU's timer at
# seven points of every group, 200 launches back to back over rotating inputs); then the refactored kernel (the same
# body, generic over the trace, NoDecodeTrace) against main's build, alternating processes.
set -uo pipefail
export LD_LIBRARY_PATH="/usr/local/nvidia/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
TRACE_LAUNCHES=200 HARNESS_ARGS='--seed 157' OUT=$OUT/trace bash tests/GemsInjector.GpuHarness/run-on-gpu.sh smi trace > $OUT/trace-run.log 2>&1
AB_FILTER='sdpa float32 1x32/8x1x4096x128|sdpa float32 16x32/8x1x4096x128' \
  AB_ROUNDS=3 OUT=$OUT/ab bash tests/GemsInjector.GpuHarness/run-on-gpu.sh ab > $OUT/ab-run.log 2>&1
cd $OUT && tar czf all.tgz trace ab trace-run.log ab-run.log && rm -rf trace ab trace-run.log ab-run.log; find $OUT -type f
