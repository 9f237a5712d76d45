#!/usr/bin/env bash
# Session 21, Run 128 (branch subgroups): 8- and 12-warp DMMA groups split K into one contiguous range per subgroup
# of 4 warps, against Run 125's build (harness-old-overlay.tar.xz over the new tarball). 1) ptxas -v and SASS of both
# builds' PTX; 2) processes alternating twice on the default routing; 3) prefetch forced on the 1-8-row products,
# alternating twice; 4) ncu of the 12-warp ring at mm_tb 16 x 4096 x 11008.
set -uo pipefail
export LD_LIBRARY_PATH="/usr/local/nvidia/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
ab=$OUT/ab; mkdir -p $ab/sass
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem --format=csv > $ab/smi.txt
bin="$(python3 -c 'import os, triton; print(os.path.join(os.path.dirname(triton.__file__), "backends", "nvidia", "bin"))' 2>/dev/null)"
ls $bin > $ab/tritonbin.txt 2>&1
for f in .gpu/unrollptx/*.ptx; do
  b=$(basename $f .ptx)
  sed 's/^\.version .*/.version 8.0/' $f > /tmp/r.ptx
  echo "== $b" >> $ab/ptxas.txt
  "$bin/ptxas" -arch=sm_90a -O3 -v /tmp/r.ptx -o /tmp/$b.cubin >> $ab/ptxas.txt 2>&1; echo "rc=$?" >> $ab/ptxas.txt
  [ -x "$bin/cuobjdump" ] && "$bin/cuobjdump" -sass /tmp/$b.cubin > $ab/sass/$b.sass 2>&1
done
for v in new old; do
  d=/tmp/gh-$v; mkdir -p $d
  tar -xJf .gpu/harness.tar.xz -C $d
  if [ $v = old ]; then tar -xJf .gpu/harness-old-overlay.tar.xz -C $d; fi
done
run() { local v=$1 label=$2 filter=$3; shift 3; local t0=$(date +%s); env "$@" timeout 80 /tmp/gh-$v/harness/GemsInjector.GpuHarness --device cuda --suite accuracy,bench --dtype f32 --filter "$filter" --budget-s 35 --csv $ab/b-$label.csv > $ab/b-$label.log 2>&1; echo "$label rc=$? $(( $(date +%s) - t0 ))s" >> $ab/ab.log; }
F='mm float32 16x11008x4096|mm float32 16x4096x11008|mm float32 12x11008x4096|mm float32 12x4096x11008|mm float32 8x4096x4096|mm_tb float32 16x11008x4096|mm_tb float32 16x4096x11008|mm_tb float32 12x11008x4096|mm_tb float32 12x4096x11008'
G='mm float32 1x4096x4096|mm float32 4x4096x4096|mm_tb float32 8x4096x4096|mm_tb float32 1x4096x4096'
for round in 1 2; do
  run old def-old-$round "$F" GEMS_X=0
  run new def-new-$round "$F" GEMS_X=0
  run old pf-old-$round "$G" GEMS_GEMV_F32_DMMA=prefetch
  run new pf-new-$round "$G" GEMS_GEMV_F32_DMMA=prefetch
done
grep -h "summary\|FAIL" $ab/b-*.log >> $ab/ab.log
PROFILE_FILTERS="mm_tb float32 16x4096x11008" PROFILE_LAUNCHES=2 OUT=$ab/prof bash tests/GemsInjector.GpuHarness/run-on-gpu.sh profile > $ab/prof.log 2>&1
cd $OUT && tar czf all.tgz ab && rm -rf ab; find $OUT -type f
