#!/usr/bin/env bash
# Session 16, call C: batch-1 decode with more warps per group (GEMS_DECODE_VARIANT=lean8w) against lean, and the small-M cluster
# products with the weight prefetched into L2 4 or 8 tiles past the ring (GEMS_TC_SMALLM_RING=l2ahead4 / l2ahead8) against the default, alternating processes twice,
# accuracy then bench; start-up (short-row argmax on the k-round topk kernel); ncu of the float32 wide ring (ring3w) and
# of the 16-bit [K, N] 8-row split-K default.
set -uo pipefail
export LD_LIBRARY_PATH="/usr/local/nvidia/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
root=$(pwd); ab=$OUT/ab; mkdir -p $ab
dir=/tmp/gh; mkdir -p $dir; tar -xJf .gpu/harness.tar.xz -C $dir; H=$dir/harness/GemsInjector.GpuHarness
run() { local label=$1 f=$2; shift 2; local t0=$(date +%s); env "$@" timeout 70 $H --device cuda --suite accuracy,bench --dtype f16,bf16 --filter "$f" --budget-s 45 --csv $ab/b-$label.csv > $ab/b-$label.log 2>&1; echo "$label rc=$? $(( $(date +%s) - t0 ))s" >> $ab/ab.log; }
FDEC='sdpa bfloat16 1x32/8x1x4096x128|sdpa float16 1x32/8x1x4096x128|sdpa bfloat16 16x32/8x1x4096x128'
FWG='mm bfloat16 64x4096x4096|mm_tb bfloat16 64x4096x4096|mm float16 64x4096x4096|mm bfloat16 16x11008x4096'
for round in 1 2; do
  run dec-lean-$round "$FDEC" GEMS_X=0
  run dec-lean8w-$round "$FDEC" GEMS_DECODE_VARIANT=lean8w
  run wg-default-$round "$FWG" GEMS_X=0
  run wg-ahead8-$round "$FWG" GEMS_TC_SMALLM_RING=l2ahead8
  run wg-ahead4-$round "$FWG" GEMS_TC_SMALLM_RING=l2ahead4
done
cd $ab && for f in b-*.csv; do echo "== $f"; grep -v "^suite" $f | awk -F, '{print $1, $2, $3, $4, $5, $6, $9, $13}'; done > summary.txt
grep -h "summary" b-*.log >> ab.log; grep -h -i "loaded\|error\|fail" b-*.log | sort | uniq -c | head -40 >> ab.log
cat b-*.csv > all.csv; tar czf $OUT/ab.tgz *.txt *.log *.csv; cd $root; rm -rf $ab
STARTUP_TIMEOUT_S=60 OUT=$OUT/st bash tests/GemsInjector.GpuHarness/run-on-gpu.sh smi startup > $OUT/st-run.log 2>&1
PROFILE_FILTERS='mm_tb float32 16x11008x4096;mm bfloat16 8x4096x4096' PROFILE_LAUNCHES=2 OUT=$OUT/prof \
  bash tests/GemsInjector.GpuHarness/run-on-gpu.sh profile > $OUT/prof-run.log 2>&1
cd $OUT && tar czf logs.tgz st-run.log prof-run.log st/nvidia-smi.txt && rm -f st-run.log prof-run.log st/nvidia-smi.txt; find $OUT -type f | sort
