#!/usr/bin/env bash
# Session 12, call C: (1) placement: the same build and settings with device memory padding before the cases;
# (2) the host's cost per call at tiny shapes (every op, f32 and bf16).
set -uo pipefail
export LD_LIBRARY_PATH="/usr/local/nvidia/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
dir=/tmp/gh; mkdir -p $dir; tar -xJf .gpu/harness.tar.xz -C $dir; H=$dir/harness/GemsInjector.GpuHarness
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem --format=csv > $OUT/smi.txt
F='mm bfloat16 2x4096x4096|mm bfloat16 8x4096x4096|mm float16 8x4096x4096|mm bfloat16 64x4096x4096|mm_tb bfloat16 64x4096x4096|mm float16 64x4096x4096|mm_tb float16 64x4096x4096|mm_tb bfloat16 2x4096x4096'
run() { local label=$1; shift; env GEMS_SPLITK_REDUCE=launch timeout 150 $H --device cuda --suite bench --filter "$F" --passes 2 --budget-s 120 "$@" --csv $OUT/b-$label.csv > $OUT/b-$label.log 2>&1; echo "$label rc=$?" >> $OUT/ab.log; }
for round in 1 2; do
  for pad in 0 2 34 66 130; do run pad$pad-$round --pad-mb $pad; done
done
timeout 200 $H --device cuda --suite bench --quick --runs 200 --dtype f32,bf16 --budget-s 150 --csv $OUT/host.csv > $OUT/host.log 2>&1; echo "host rc=$?" >> $OUT/ab.log
cd $OUT && for f in b-*.csv; do echo "== $f"; grep "^bench" $f | awk -F, '{print $2, $3, $4, $5, $6, $NF}'; done > summary.txt
grep "^bench" host.csv | awk -F, '{print $2, $3, $4, $5, $NF}' > host-summary.txt
cat b-*.csv > all.csv; tar czf logs.tgz *.log && rm -f b-*.log b-*.csv
