#!/usr/bin/env bash
# Session 12, call D: the streamed [N, K] skinny body (GEMS_SKINNY_NK_VARIANT=stream): product accuracy, then
# alternating processes against the narrow default, and the W knob.
set -uo pipefail
export LD_LIBRARY_PATH="/usr/local/nvidia/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
dir=/tmp/gh; mkdir -p $dir; tar -xJf .gpu/harness.tar.xz -C $dir; H=$dir/harness/GemsInjector.GpuHarness
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem --format=csv > $OUT/smi.txt
GEMS_SKINNY_NK_VARIANT=stream timeout 200 $H --device cuda --suite accuracy --dtype f16,bf16 --filter 'mm|addmm|bmm|linear' --budget-s 150 --csv $OUT/acc-stream.csv > $OUT/acc-stream.log 2>&1; echo "acc rc=$?" >> $OUT/ab.log
grep -c ",PASS" $OUT/acc-stream.csv >> $OUT/ab.log; grep -v ",PASS" $OUT/acc-stream.csv | head -20 >> $OUT/ab.log
F='mm_tb bfloat16 16x11008x4096|mm_tb float16 16x11008x4096|mm_tb bfloat16 2x4096x4096|mm_tb bfloat16 4x4096x4096|mm_tb bfloat16 8x4096x4096|mm_tb float16 2x4096x4096|mm_tb float16 8x4096x4096|mm_tb bfloat16 64x4096x4096|mm_tb bfloat16 1x4096x4096|mm bfloat16 8x4096x4096'
run() { local label=$1; shift; env "$@" timeout 120 $H --device cuda --suite bench --filter "$F" --budget-s 90 --csv $OUT/b-$label.csv > $OUT/b-$label.log 2>&1; echo "$label rc=$?" >> $OUT/ab.log; }
for round in 1 2; do
  run narrow-$round GEMS_X=0
  run stream-$round GEMS_SKINNY_NK_VARIANT=stream
done
run stream-w2 GEMS_SKINNY_NK_VARIANT=stream GEMS_SKINNY_NK_STREAM_WARPS=2
run stream-w4 GEMS_SKINNY_NK_VARIANT=stream GEMS_SKINNY_NK_STREAM_WARPS=4
run stream-w8 GEMS_SKINNY_NK_VARIANT=stream GEMS_SKINNY_NK_STREAM_WARPS=8
cd $OUT && for f in b-*.csv; do echo "== $f"; grep "^bench" $f | awk -F, '{print $2, $3, $4, $5, $6}'; done > summary.txt
cat b-*.csv > all.csv; tar czf logs.tgz *.log && rm -f b-*.log b-*.csv
