#!/usr/bin/env bash
# Session 13, call A: the read probe at every decode size beside copies, the decode GEMVs and batch-1 decode attention,
# in two processes.
set -uo pipefail
export LD_LIBRARY_PATH="/usr/local/nvidia/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
dir=/tmp/gh; mkdir -p $dir; tar -xJf .gpu/harness.tar.xz -C $dir; H=$dir/harness/GemsInjector.GpuHarness
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem --format=csv > $OUT/smi.txt
F='read float32|copy |x4096x4096|16x11008x4096|sdpa bfloat16 1x32/8x1x4096x128|sdpa float32 1x32/8x1x4096x128|sum |amax '
for round in 1 2; do
  timeout 200 $H --device cuda --suite bench --filter "$F" --budget-s 170 --csv $OUT/b-$round.csv > $OUT/b-$round.log 2>&1; echo "round $round rc=$?" >> $OUT/ab.log
done
cd $OUT && for f in b-*.csv; do echo "== $f"; grep "^bench" $f | awk -F, '{print $2, $3, $4, $5, $6, $14}'; done > summary.txt
tar czf logs.tgz b-*.log && rm -f b-*.log
