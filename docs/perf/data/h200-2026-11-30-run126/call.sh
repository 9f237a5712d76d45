#!/usr/bin/env bash
# Session 21, Run 126: ncu of the remaining float32 misses on the defaults with adjacent DMMA steps (for the next attempt).
set -uo pipefail
export LD_LIBRARY_PATH="/usr/local/nvidia/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
ab=$OUT/ab; mkdir -p $ab
PROFILE_FILTERS='mm_tb float32 16x4096x11008;mm float32 8x4096x4096;mm_tb float32 8x4096x4096;mm float32 16x4096x11008' PROFILE_LAUNCHES=2 OUT=$ab/prof \
  bash tests/GemsInjector.GpuHarness/run-on-gpu.sh profile > $ab/prof.log 2>&1
cd $OUT && tar czf all.tgz ab && rm -rf ab; find $OUT -type f
