#!/usr/bin/env bash
# Session 33, Run 202: the read probe (ReadCeiling.cs: a kernel that only reads; 32 MiB, 64 MiB, 90 MB and 180 MB, each in
# 24 patterns) beside every reachable decode row (GEMVs of 1-64 rows, the x 11008 products, decode attention of 1-64
# queries), the copies and the launch floor, in one process (p1); then a second process (p2) over the 180 MB reads and
# the float32 x 11008 x 4096 products only, to see whether the per-process modes of those products (Run 129) show in a
# plain read of the same bytes. The harness is called directly: its filter terms need spaces (" 8x4096x4096" is the
# 8-row product, not the causal prefill 32/8x4096x4096).
set -uo pipefail
export LD_LIBRARY_PATH="/usr/local/nvidia/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
OUT=$OUT/run202 bash tests/GemsInjector.GpuHarness/run-on-gpu.sh smi > /dev/null 2>&1
dir=/tmp/gems-read-probe; rm -rf $dir; mkdir -p $dir; tar -xJf .gpu/harness.tar.xz -C $dir; H=$dir/harness/GemsInjector.GpuHarness
F='read|launch|copy| 1x4096x4096| 2x4096x4096| 4x4096x4096| 8x4096x4096| 64x4096x4096|x11008x|x4096x11008|32/8x1x4096|32/8x4x4096|32/8x16x4096|32/8x64x4096'
timeout 420 $H --device cuda --suite bench --budget-s 300 --seed 2021 --filter "$F" --csv $OUT/run202/bench.csv > $OUT/run202/harness.log 2>&1
echo "p1 exit $?" >> $OUT/run202/exits.txt
timeout 160 $H --device cuda --suite bench --budget-s 100 --seed 2022 --dtype f32 --filter '45088768|x11008x4096|launch' --csv $OUT/run202/bench-p2.csv > $OUT/run202/harness-p2.log 2>&1
echo "p2 exit $?" >> $OUT/run202/exits.txt
python3 tests/GemsInjector.GpuHarness/compare.py --bench $OUT/run202/bench.csv --out $OUT/run202/compare.md > /dev/null 2>&1
python3 tests/GemsInjector.GpuHarness/compare.py --bench $OUT/run202/bench-p2.csv --out $OUT/run202/compare-p2.md > /dev/null 2>&1
gzip -9 $OUT/run202/harness.log $OUT/run202/harness-p2.log
cd $OUT && tar czf run202.tgz run202 && rm -rf run202; find $OUT -type f
