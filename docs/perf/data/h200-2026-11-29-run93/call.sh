#!/usr/bin/env bash
# Session 16, call B: batch-1 decode on the cluster body with a deeper staging ring (GEMS_DECODE_VARIANT=cluster8 /
# cluster16) against lean (default) and cluster, alternating processes twice, accuracy then bench; then the full bench
# beside PyTorch on the session's defaults (ring3w for float32 9–16-row [N, K]).
set -uo pipefail
export LD_LIBRARY_PATH="/usr/local/nvidia/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
root=$(pwd); ab=$OUT/ab; mkdir -p $ab
dir=/tmp/gh; mkdir -p $dir; tar -xJf .gpu/harness.tar.xz -C $dir; H=$dir/harness/GemsInjector.GpuHarness
run() { local label=$1; shift; local t0=$(date +%s); env "$@" timeout 70 $H --device cuda --suite accuracy,bench --dtype f16,bf16 --filter "$F" --budget-s 45 --csv $ab/b-$label.csv > $ab/b-$label.log 2>&1; echo "$label rc=$? $(( $(date +%s) - t0 ))s" >> $ab/ab.log; }
F='sdpa bfloat16 1x32/8x1x4096x128|sdpa float16 1x32/8x1x4096x128|sdpa bfloat16 16x32/8x1x4096x128'
for round in 1 2; do
  run lean-$round GEMS_X=0
  run cluster-$round GEMS_DECODE_VARIANT=cluster
  run c8-$round GEMS_DECODE_VARIANT=cluster8
  run c16-$round GEMS_DECODE_VARIANT=cluster16
done
cd $ab && for f in b-*.csv; do echo "== $f"; grep -v "^suite" $f | awk -F, '{print $1, $2, $3, $4, $5, $6, $9, $13}'; done > summary.txt
grep -h "summary" b-*.log >> ab.log; grep -h -i "decode\|cluster\|error\|fail" b-*.log | sort | uniq -c | head -40 >> ab.log
cat b-*.csv > all.csv; tar czf $OUT/ab.tgz *.txt *.log *.csv; cd $root; rm -rf $ab
BENCH_BUDGET_S=330 OUT=$OUT/bench bash tests/GemsInjector.GpuHarness/run-on-gpu.sh smi torch torch-extra bench compare > $OUT/bench-run.log 2>&1
find $OUT -type f | sort
