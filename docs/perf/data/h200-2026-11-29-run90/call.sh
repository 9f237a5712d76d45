#!/usr/bin/env bash
# Session 15, call C: the leaner ring body (GEMS_GEMV_F32_WIDE=ring3b) against ring3 (the default), and forced split
# counts of the small-M cluster products (GEMS_TC_SMALLM_SPLITS=2/4/8) against the plan. Alternating processes; accuracy
# then bench of the same cases in each.
set -uo pipefail
export LD_LIBRARY_PATH="/usr/local/nvidia/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
dir=/tmp/gh; mkdir -p $dir; tar -xJf .gpu/harness.tar.xz -C $dir; H=$dir/harness/GemsInjector.GpuHarness
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem --format=csv > $OUT/smi.txt
run() { local label=$1 dt=$2 f=$3; shift 3; local t0=$(date +%s); env "$@" timeout 70 $H --device cuda --suite accuracy,bench --dtype $dt --filter "$f" --budget-s 45 --csv $OUT/b-$label.csv > $OUT/b-$label.log 2>&1; echo "$label rc=$? $(( $(date +%s) - t0 ))s" >> $OUT/ab.log; }
F32='mm_tb float32 16x11008x4096|mm_tb float32 8x4096x4096'
FWG='mm bfloat16 64x4096x4096|mm_tb bfloat16 64x4096x4096|mm bfloat16 16x11008x4096|mm float16 64x4096x4096'
for round in 1 2; do
  run ring3-$round f32 "$F32" GEMS_X=0
  run ring3b-$round f32 "$F32" GEMS_GEMV_F32_WIDE=ring3b
  run splits-plan-$round f16,bf16 "$FWG" GEMS_X=0
  run splits-8-$round f16,bf16 "$FWG" GEMS_TC_SMALLM_SPLITS=8
  run splits-4-$round f16,bf16 "$FWG" GEMS_TC_SMALLM_SPLITS=4
  run splits-2-$round f16,bf16 "$FWG" GEMS_TC_SMALLM_SPLITS=2
done
cd $OUT && for f in b-*.csv; do echo "== $f"; grep -v "^suite" $f | awk -F, '{print $1, $2, $3, $4, $5, $6, $9, $13}'; done > summary.txt
cat b-*.csv > all.csv; grep -h "summary" b-*.log >> ab.log; grep -h -i "cluster kernel\|error\|fail" b-*.log | sort | uniq -c | head -20 >> ab.log; tar czf logs.tgz *.log && rm -f b-*.log b-*.csv
