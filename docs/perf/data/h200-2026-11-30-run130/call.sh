#!/usr/bin/env bash
# Session 22, Run 130: subgroups-const (TRanges = Const3 for the 12-warp plans) against main (561df21), six alternating
# process pairs on the 12-warp x4096x11008 rows and one 4-warp control.
set -uo pipefail
mkdir -p $OUT/r
AB_FILTER='mm_tb float32 16x4096x11008|mm_tb float32 12x4096x11008|mm float32 16x4096x11008|mm float32 12x4096x11008|mm_tb float32 16x11008x4096' \
AB_ROUNDS=6 OUT=$OUT/r bash tests/GemsInjector.GpuHarness/run-on-gpu.sh smi ab > $OUT/r/run.log 2>&1
cd $OUT && tar czf all.tgz r && rm -rf r; ls -la $OUT
