#!/usr/bin/env bash
# Session 15, call A: float32 9–16-row [N, K] on the cp.async weight ring (GEMS_GEMV_F32_WIDE=ring / ring3) against the
# default (staged); 16-bit [N, K] 1–8 rows on the streamed FMA GEMV (GEMS_GEMV16_NK=stream / stream8) against the
# default (skinny tensor-core stream). Alternating processes twice; accuracy then bench of the same cases in each.
set -uo pipefail
export LD_LIBRARY_PATH="/usr/local/nvidia/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
dir=/tmp/gh; mkdir -p $dir; tar -xJf .gpu/harness.tar.xz -C $dir; H=$dir/harness/GemsInjector.GpuHarness
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem --format=csv > $OUT/smi.txt
run() { local label=$1 dt=$2 f=$3; shift 3; local t0=$(date +%s); env "$@" timeout 60 $H --device cuda --suite accuracy,bench --dtype $dt --filter "$f" --budget-s 40 --csv $OUT/b-$label.csv > $OUT/b-$label.log 2>&1; echo "$label rc=$? $(( $(date +%s) - t0 ))s" >> $OUT/ab.log; }
F32='mm_tb float32 16x11008x4096|mm_tb float32 8x4096x4096'
F16='mm_tb bfloat16 1x4096x4096|mm_tb float16 1x4096x4096|mm_tb bfloat16 2x4096x4096|mm_tb bfloat16 4x4096x4096|mm_tb bfloat16 8x4096x4096|mm_tb float16 8x4096x4096|mm_tb bfloat16 16x11008x4096'
for round in 1 2; do
  run f32-staged-$round f32 "$F32" GEMS_X=0
  run f32-ring-$round f32 "$F32" GEMS_GEMV_F32_WIDE=ring
  run f32-ring3-$round f32 "$F32" GEMS_GEMV_F32_WIDE=ring3
  run nk16-default-$round f16,bf16 "$F16" GEMS_X=0
  run nk16-stream-$round f16,bf16 "$F16" GEMS_GEMV16_NK=stream
  run nk16-stream8-$round f16,bf16 "$F16" GEMS_GEMV16_NK=stream8
done
cd $OUT && for f in b-*.csv; do echo "== $f"; grep -v "^suite" $f | awk -F, '{print $1, $2, $3, $4, $5, $6, $9, $13}'; done > summary.txt
cat b-*.csv > all.csv; grep -h "summary" b-*.log >> ab.log; grep -h -i "error\|fail" b-*.log | sort | uniq -c | head -20 >> ab.log; tar czf logs.tgz *.log && rm -f b-*.log b-*.csv
