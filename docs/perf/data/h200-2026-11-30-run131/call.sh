#!/usr/bin/env bash
# Session 22, Run 131: ncu of the 16-bit GEMVs, [K, N] against [N, K] at 1 and 4 rows of 4096^2, and the 16-row
# [N, K] stream at 16 x 11008 x 4096 (88-89% of a same-size copy).
set -uo pipefail
mkdir -p $OUT/r
PROFILE_FILTERS='mm float16 1x4096x4096;mm_tb float16 1x4096x4096;mm float16 4x4096x4096;mm_tb float16 4x4096x4096;mm_tb float16 16x11008x4096' \
PROFILE_LAUNCHES=2 OUT=$OUT/r bash tests/GemsInjector.GpuHarness/run-on-gpu.sh profile > $OUT/r/run.log 2>&1
cd $OUT && tar czf all.tgz r && rm -rf r; ls -la $OUT
