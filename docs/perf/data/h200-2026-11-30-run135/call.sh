#!/usr/bin/env bash
# Session 22, Run 135: ncu of the float32 16 x 4096 x 11008 products on the session's defaults (three K ranges):
# mm_tb on the 12-warp ring (the nearest float32 miss), the same on the 12-warp prefetch form (GEMS_GEMV_F32_DMMA=prefetch,
# 12% slower in Run 132), and mm ([K, N], prefetch, met) for comparison; for the next attempt.
set -uo pipefail
r=$OUT/r; mkdir -p $r/ring $r/pf
PROFILE_FILTERS='mm_tb float32 16x4096x11008;mm float32 16x4096x11008' PROFILE_LAUNCHES=2 OUT=$r/ring \
  bash tests/GemsInjector.GpuHarness/run-on-gpu.sh profile > $r/ring/run.log 2>&1
GEMS_GEMV_F32_DMMA=prefetch PROFILE_FILTERS='mm_tb float32 16x4096x11008' PROFILE_LAUNCHES=2 OUT=$r/pf \
  bash tests/GemsInjector.GpuHarness/run-on-gpu.sh profile > $r/pf/run.log 2>&1
rm -f $r/*/profile.tar.xz
cd $OUT && tar czf all.tgz r && rm -rf r; ls -la $OUT
