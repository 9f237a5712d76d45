#!/usr/bin/env bash
# Session 34, Run 210: why the spread ring (Run 209) ran 54% slower: Triton's ptxas -v over the spread and the plain
# 4-warp [N, K] ring PTX (registers, spills), then Nsight Compute's launch, occupancy, speed-of-light and warp-state
# sections for one launch of each at mm_tb float32 16x11008x4096 (GEMS_DMMA_RING_SPREAD unset / on).
set -uo pipefail
export LD_LIBRARY_PATH="/usr/local/nvidia/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
R=$OUT/run210; mkdir -p $R
bin=$(python3 -c 'import triton, os; print(os.path.join(os.path.dirname(triton.__file__), "backends", "nvidia", "bin"))' 2>/dev/null)
for f in .gpu/ptx/*.ptx; do n=$(basename $f .ptx); $bin/ptxas -arch=sm_90a -O3 -v $f -o /tmp/$n.cubin > $R/$n.ptxas.txt 2>&1; done
dir=/tmp/gems-spread; rm -rf $dir; mkdir -p $dir; tar -xJf .gpu/harness.tar.xz -C $dir; H=$dir/harness/GemsInjector.GpuHarness
ncu_bin="$(command -v ncu || ls /usr/local/cuda/bin/ncu /opt/nvidia/nsight-compute/*/ncu 2>/dev/null | head -1)"
for v in off on; do
  GEMS_DMMA_RING_SPREAD=$v timeout 200 $ncu_bin --clock-control none --section LaunchStats --section Occupancy --section SpeedOfLight \
    --section WarpStateStats --section SchedulerStats -k regex:GemvDmmaF32Ring --launch-skip 2 --launch-count 1 \
    $H --device cuda --suite bench --filter 'mm_tb float32 16x11008x4096' --runs 3 --budget-s 30 > $R/ncu-$v.txt 2>&1
  echo "$v exit $?" >> $R/exits.txt
done
cd $OUT && tar czf run210.tgz run210 && rm -rf run210; find $OUT -type f
