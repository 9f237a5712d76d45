#!/usr/bin/env bash
# Session 16, call A: four new variants against the defaults, alternating processes twice (accuracy then bench of the
# same cases in each): float32 9–16-row [N, K] with 8 weight rows per lane (GEMS_GEMV_F32_WIDE=ring3w); 16-bit [K, N]
# 3–8 rows with four columns per lane (GEMS_GEMV16_KN=stream8c4); the small-M cluster products with a 5- or 6-stage ring
# (GEMS_TC_SMALLM_STAGES); batch-1 decode on the cluster body with an 8- or 16-buffer ring (GEMS_DECODE_VARIANT=cluster8
# / cluster16). Then start-up (short-row topk) and the whole accuracy suite on the defaults.
set -uo pipefail
export LD_LIBRARY_PATH="/usr/local/nvidia/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
dir=/tmp/gh; mkdir -p $dir; tar -xJf .gpu/harness.tar.xz -C $dir; H=$dir/harness/GemsInjector.GpuHarness
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem --format=csv > $OUT/smi.txt
run() { local label=$1 dt=$2 f=$3; shift 3; local t0=$(date +%s); env "$@" timeout 70 $H --device cuda --suite accuracy,bench --dtype $dt --filter "$f" --budget-s 45 --csv $OUT/b-$label.csv > $OUT/b-$label.log 2>&1; echo "$label rc=$? $(( $(date +%s) - t0 ))s" >> $OUT/ab.log; }
F32='mm_tb float32 16x11008x4096|mm_tb float32 8x4096x4096'
FKN='mm bfloat16 4x4096x4096|mm bfloat16 8x4096x4096|mm float16 4x4096x4096|mm float16 8x4096x4096|mm bfloat16 2x4096x4096|mm bfloat16 1x4096x4096'
FWG='mm bfloat16 64x4096x4096|mm_tb bfloat16 64x4096x4096|mm float16 64x4096x4096|mm bfloat16 16x11008x4096'
for round in 1 2; do
  run f32-ring3-$round f32 "$F32" GEMS_X=0
  run f32-ring3w-$round f32 "$F32" GEMS_GEMV_F32_WIDE=ring3w
  run kn-default-$round f16,bf16 "$FKN" GEMS_X=0
  run kn-c4-$round f16,bf16 "$FKN" GEMS_GEMV16_KN=stream8c4
  run wg-4-$round f16,bf16 "$FWG" GEMS_X=0
  run wg-6-$round f16,bf16 "$FWG" GEMS_TC_SMALLM_STAGES=6
  run wg-5-$round f16,bf16 "$FWG" GEMS_TC_SMALLM_STAGES=5
done
cd $OUT && for f in b-*.csv; do echo "== $f"; grep -v "^suite" $f | awk -F, '{print $1, $2, $3, $4, $5, $6, $9, $13}'; done > summary.txt
cat b-*.csv > all.csv; grep -h "summary" b-*.log >> ab.log; grep -h -i "ring\|cluster\|c4\|error\|fail" b-*.log | sort | uniq -c | head -40 >> ab.log; tar czf b-logs.tgz b-*.log && rm -f b-*.log b-*.csv
cd - > /dev/null
ACCURACY_BUDGET_S=240 OUT=$OUT/acc bash tests/GemsInjector.GpuHarness/run-on-gpu.sh smi startup accuracy > $OUT/acc-run.log 2>&1
# At most 8 files come back: the small ones go into one archive.
cd $OUT && tar czf rest.tgz smi.txt b-logs.tgz acc-run.log acc/nvidia-smi.txt && rm -f smi.txt b-logs.tgz acc-run.log acc/nvidia-smi.txt; find $OUT -type f | sort
