#!/usr/bin/env bash
# Session 24, Run 154: as Run 153 (branch decode-chunk, one build, alternating processes), chunks of 160, 192 and 256
# keys for the float32 batch-1 decode against the plan's 64 (Run 153: 128 keys +7.4%, 96 +2.8%, 32 -31%).
set -uo pipefail
export LD_LIBRARY_PATH="/usr/local/nvidia/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
for c in 160 192 256; do
  AB_FILTER='sdpa float32 1x32/8x1x4096x128' AB_ROUNDS=4 AB_OLD_OVERLAY=none \
    AB_ENV_NEW="GEMS_DECODE_CHUNK=$c" OUT=$OUT/ab$c bash tests/GemsInjector.GpuHarness/run-on-gpu.sh ab > $OUT/ab$c-run.log 2>&1
done
cd $OUT && tar czf all.tgz ab* && rm -rf ab*; find $OUT -type f
