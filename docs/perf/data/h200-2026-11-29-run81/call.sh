#!/usr/bin/env bash
# Session 14, call B: the streamed float32 [K, N] GEMV (default) against pipe; the staged 9-16-row [N, K] GEMV
# (GEMS_GEMV_F32_WIDE=staged / staged2) against the stream; topk's second form. Alternating processes twice, each
# with accuracy then bench of the same cases.
set -uo pipefail
export LD_LIBRARY_PATH="/usr/local/nvidia/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
dir=/tmp/gh; mkdir -p $dir; tar -xJf .gpu/harness.tar.xz -C $dir; H=$dir/harness/GemsInjector.GpuHarness
timeout 150 $H --device cuda --suite accuracy --dtype f32 --filter 'mm|addmm|linear|bmm' --budget-s 120 --csv $OUT/acc.csv > $OUT/acc.log 2>&1; echo "acc rc=$?" >> $OUT/ab.log
grep -c ",PASS" $OUT/acc.csv >> $OUT/ab.log; grep -v ",PASS" $OUT/acc.csv | cut -c1-300 | head -20 >> $OUT/ab.log
F='topk|mm float32 1x4096x4096|mm float32 2x4096x4096|mm float32 4x4096x4096|mm float32 8x4096x4096|mm float32 16x11008x4096|mm_tb float32 16x11008x4096|mm_tb float32 8x4096x4096|mm_tb float32 1x4096x4096'
run() { local label=$1; shift; env "$@" timeout 110 $H --device cuda --suite accuracy,bench --dtype f32,f16,bf16 --filter "$F" --budget-s 90 --csv $OUT/b-$label.csv > $OUT/b-$label.log 2>&1; echo "$label rc=$?" >> $OUT/ab.log; }
for round in 1 2; do
  run default-$round GEMS_X=0
  run pipe-$round GEMS_GEMV_F32_VARIANT=pipe
  run staged-$round GEMS_GEMV_F32_WIDE=staged
  run staged2-$round GEMS_GEMV_F32_WIDE=staged2
done
cd $OUT && for f in b-*.csv; do echo "== $f"; grep -v "^suite" $f | awk -F, '{print $1, $2, $3, $4, $5, $6, $9, $13}'; done > summary.txt
cat b-*.csv > all.csv; grep -h "cluster\|failed\|Error\|error" b-*.log | sort | uniq -c | head -20 > errors.txt; tar czf logs.tgz *.log && rm -f b-*.log b-*.csv
