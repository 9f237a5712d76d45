#!/usr/bin/env bash
# Session 24, Run 145: ncu of the GEMVs nearest their targets, for the workload distribution over the SMs (how much of
# each launch is a tail that leaves SMs idle): 16-bit and float32 [N, K] and [K, N] products at x11008 and 4096^2.
# GEMV kernels as main (the tarball is branch decode-vprefetch, which changes only the float32 decode).
set -uo pipefail
export LD_LIBRARY_PATH="/usr/local/nvidia/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
PROFILE_FILTERS='mm_tb float16 12x11008x4096;mm_tb float16 16x4096x11008;mm float16 16x11008x4096;mm_tb float32 1x4096x4096;mm float32 1x4096x4096;mm_tb float32 16x11008x4096;mm float32 8x4096x4096' PROFILE_LAUNCHES=2 OUT=$OUT/prof \
  bash tests/GemsInjector.GpuHarness/run-on-gpu.sh profile > $OUT/prof.log 2>&1
cd $OUT && tar czf all.tgz prof prof.log && rm -rf prof prof.log; find $OUT -type f
