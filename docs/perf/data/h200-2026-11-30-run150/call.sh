#!/usr/bin/env bash
# Session 24, Run 150: per-SM active cycles (ncu, one metric pass, every SM's value) of the GEMVs of Run 145, the
# element-wise baseline of Run 148 and the float32 batch-1 decode: how the SMs' busy times spread within one launch.
# GEMV and element-wise kernels as main (the tarball is branch merge-ahead, which changes only the decode merge).
set -uo pipefail
export LD_LIBRARY_PATH="/usr/local/nvidia/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
dir=/tmp/gems-sm-spread && rm -rf $dir && mkdir -p $dir && tar -xJf .gpu/harness.tar.xz -C $dir
bin=$dir/harness/GemsInjector.GpuHarness
ncu_bin="$(command -v ncu || ls /usr/local/cuda/bin/ncu /opt/nvidia/nsight-compute/*/ncu 2>/dev/null | head -1)"
mkdir -p $OUT/spread && export GEMS_KERNEL_CACHE=$dir/cache
i=0
while IFS= read -r f; do
  i=$((i + 1)); echo "$f" > $OUT/spread/case$i.txt
  timeout 120 $bin --device cuda --suite bench --filter "$f" --runs 3 --budget-s 30 >> $OUT/spread/harness.log 2>&1
  timeout 200 "$ncu_bin" --clock-control none --metrics sm__cycles_active.avg,sm__cycles_elapsed.avg,gpu__time_duration.sum \
    --print-metric-instances values --launch-skip 1 --launch-count 2 --csv \
    $bin --device cuda --suite bench --filter "$f" --runs 3 --budget-s 60 > $OUT/spread/ncu$i.csv 2>> $OUT/spread/harness.log
done <<'CASES'
mm_tb float16 12x11008x4096
mm_tb float16 16x4096x11008
mm float16 16x11008x4096
mm_tb float32 1x4096x4096
mm float32 1x4096x4096
mm_tb float32 16x11008x4096
mm float32 8x4096x4096
silu float16 20497291
sdpa float32 1x32/8x1x4096x128
CASES
cd $OUT && tar czf all.tgz spread && rm -rf spread; find $OUT -type f
