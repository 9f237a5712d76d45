#!/usr/bin/env bash
# Session 20, Run 115: the DMMA ring form with more warps per group where the groups fit one per SM. 1) ptxas -v on the
# ring PTX at 4, 8, 12 and 16 warps; 2) processes alternating twice: the default, ring with 8 / 12 / 16 warps
# (GEMS_DMMA_RING_WARPS, measurement build) over the float32 12/16-row products of both layouts.
set -uo pipefail
export LD_LIBRARY_PATH="/usr/local/nvidia/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
ab=$OUT/ab; mkdir -p $ab
ptxas="$(python3 -c 'import os, triton; print(os.path.join(os.path.dirname(triton.__file__), "backends", "nvidia", "bin", "ptxas"))' 2>/dev/null)"
for f in .gpu/ringptx/*.ptx; do
  sed 's/^\.version .*/.version 8.0/' $f > /tmp/r.ptx
  echo "== $(basename $f)" >> $ab/ptxas.txt
  "$ptxas" -arch=sm_90a -O3 -v /tmp/r.ptx -o /tmp/r.cubin >> $ab/ptxas.txt 2>&1; echo "rc=$?" >> $ab/ptxas.txt
done
dir=/tmp/gh; mkdir -p $dir; tar -xJf .gpu/harness.tar.xz -C $dir; H=$dir/harness/GemsInjector.GpuHarness
F='mm_tb float32 16x4096x11008|mm_tb float32 12x4096x11008|mm float32 16x4096x11008|mm float32 12x4096x11008|mm_tb float32 16x11008x4096|mm_tb float32 16x4096x4096|mm_tb float32 12x4096x4096'
run() { local label=$1; shift; local t0=$(date +%s); env "$@" timeout 75 $H --device cuda --suite accuracy,bench --dtype f32 --filter "$F" --budget-s 40 --csv $ab/b-$label.csv > $ab/b-$label.log 2>&1; echo "$label rc=$? $(( $(date +%s) - t0 ))s" >> $ab/ab.log; }
for round in 1 2; do
  run default-$round GEMS_X=0
  run ring12-$round GEMS_GEMV_F32_DMMA=ring GEMS_DMMA_RING_WARPS=12
  run ring8-$round GEMS_GEMV_F32_DMMA=ring GEMS_DMMA_RING_WARPS=8
  run ring16-$round GEMS_GEMV_F32_DMMA=ring GEMS_DMMA_RING_WARPS=16
done
grep -h "summary\|FAIL" $ab/b-*.log >> $ab/ab.log
cd $OUT && tar czf all.tgz ab && rm -rf ab; find $OUT -type f
