#!/usr/bin/env bash
# Session 14, call F: the whole accuracy suite with this session's final defaults, then the 16-bit [K, N] products under
# the new default beside the split-K setting (one process each).
set -uo pipefail
export LD_LIBRARY_PATH="/usr/local/nvidia/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
ACCURACY_BUDGET_S=240 bash tests/GemsInjector.GpuHarness/run-on-gpu.sh smi accuracy > $OUT/run.log 2>&1; echo "accuracy rc=$?" >> $OUT/ab.log
grep "== summary" $OUT/run.log >> $OUT/ab.log
dir=/tmp/gh; mkdir -p $dir; tar -xJf .gpu/harness.tar.xz -C $dir; H=$dir/harness/GemsInjector.GpuHarness
F='mm float16 1x4096x4096|mm float16 2x4096x4096|mm float16 4x4096x4096|mm bfloat16 1x4096x4096|mm bfloat16 2x4096x4096|mm bfloat16 4x4096x4096'
for label in default split; do
  env GEMS_GEMV16_KN=$([ $label = split ] && echo split || echo "") timeout 80 $H --device cuda --suite bench --dtype f16,bf16 --filter "$F" --budget-s 60 --csv $OUT/b-$label.csv > $OUT/b-$label.log 2>&1; echo "$label rc=$?" >> $OUT/ab.log
done
cd $OUT && for f in b-*.csv; do echo "== $f"; grep "^bench" $f | awk -F, '{print $2, $3, $4, $5, $6}'; done > summary.txt
rm -f b-*.log
