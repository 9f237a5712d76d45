#!/usr/bin/env bash
# Session 12, call B: does a process that has launched the cluster-reduce kernels run the 64-row products slower?
# Two passes over the same cases in each process (pass 1: the 64-row cases run before any cluster kernel; pass 2: after).
set -uo pipefail
export LD_LIBRARY_PATH="/usr/local/nvidia/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
dir=/tmp/gh; mkdir -p $dir; tar -xJf .gpu/harness.tar.xz -C $dir; H=$dir/harness/GemsInjector.GpuHarness
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem --format=csv > $OUT/smi.txt
F='mm bfloat16 2x4096x4096|mm bfloat16 8x4096x4096|mm float16 8x4096x4096|mm bfloat16 64x4096x4096|mm_tb bfloat16 64x4096x4096|mm float16 64x4096x4096|mm_tb float16 64x4096x4096|mm_tb bfloat16 2x4096x4096'
run() { local label=$1; shift; env "$@" timeout 150 $H --device cuda --suite bench --filter "$F" --passes 2 --budget-s 120 --csv $OUT/b-$label.csv > $OUT/b-$label.log 2>&1; echo "$label rc=$?" >> $OUT/ab.log; }
for round in 1 2; do
  run launch-$round GEMS_SPLITK_REDUCE=launch
  run cluster-$round GEMS_SPLITK_REDUCE=cluster
done
cd $OUT && for f in b-*.csv; do echo "== $f"; grep "^bench" $f | awk -F, '{print $2, $3, $4, $5, $6, $NF}'; done > summary.txt
cat b-*.csv > all.csv; tar czf logs.tgz *.log && rm -f b-*.log b-*.csv
