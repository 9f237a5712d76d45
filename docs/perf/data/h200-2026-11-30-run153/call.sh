#!/usr/bin/env bash
# Session 24, Run 153: one build (branch decode-chunk), alternating processes: the float32 batch-1 decode planned with
# bigger or smaller chunks (GEMS_DECODE_CHUNK=128, 96, 32) against the plan's 64 keys (512 groups, 64 partials per
# kv head): fewer partials for the merging group against fewer warps walking; bf16 batch 1 (its own lean8w plan) as
# the control.
set -uo pipefail
export LD_LIBRARY_PATH="/usr/local/nvidia/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
for c in 128 96 32; do
  AB_FILTER='sdpa float32 1x32/8x1x4096x128|sdpa bfloat16 1x32/8x1x4096x128' AB_ROUNDS=4 AB_OLD_OVERLAY=none \
    AB_ENV_NEW="GEMS_DECODE_CHUNK=$c" OUT=$OUT/ab$c bash tests/GemsInjector.GpuHarness/run-on-gpu.sh ab > $OUT/ab$c-run.log 2>&1
done
cd $OUT && tar czf all.tgz ab* && rm -rf ab*; find $OUT -type f
