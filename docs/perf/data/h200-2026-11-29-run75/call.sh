#!/usr/bin/env bash
# Session 13, call B: (1) float32 product accuracy under GEMS_GEMV_F32_VARIANT=stream; (2) alternating processes, default
# (pipe) and stream, with the second-form read probe and copies in each.
set -uo pipefail
export LD_LIBRARY_PATH="/usr/local/nvidia/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
dir=/tmp/gh; mkdir -p $dir; tar -xJf .gpu/harness.tar.xz -C $dir; H=$dir/harness/GemsInjector.GpuHarness
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem --format=csv > $OUT/smi.txt
GEMS_GEMV_F32_VARIANT=stream timeout 150 $H --device cuda --suite accuracy --dtype f32 --filter 'mm|addmm|linear|bmm' --budget-s 120 --csv $OUT/acc.csv > $OUT/acc.log 2>&1; echo "acc rc=$?" >> $OUT/ab.log
grep -c ",PASS" $OUT/acc.csv >> $OUT/ab.log; grep -v ",PASS" $OUT/acc.csv | cut -c1-300 | head -20 >> $OUT/ab.log
F='mm_tb float32 1x4096x4096|mm_tb float32 2x4096x4096|mm_tb float32 4x4096x4096|mm_tb float32 8x4096x4096|mm_tb float32 16x11008x4096|mm float32 8x4096x4096|mm float32 16x11008x4096|read float32|copy float32|mm_tb bfloat16 2x4096x4096|sum bfloat16 4096x4096'
run() { local label=$1; shift; env "$@" timeout 100 $H --device cuda --suite bench --dtype f32,bf16 --filter "$F" --budget-s 80 --csv $OUT/b-$label.csv > $OUT/b-$label.log 2>&1; echo "$label rc=$?" >> $OUT/ab.log; }
for round in 1 2; do
  run default-$round GEMS_X=0
  run stream-$round GEMS_GEMV_F32_VARIANT=stream
done
cd $OUT && for f in b-*.csv; do echo "== $f"; grep "^bench" $f | awk -F, '{print $2, $3, $4, $5, $6, $9}'; done > summary.txt
tar czf logs.tgz *.log && rm -f b-*.log
