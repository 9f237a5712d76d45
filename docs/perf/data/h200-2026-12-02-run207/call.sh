#!/usr/bin/env bash
# Session 34, Run 207: the read probe's third form (a step's adds chained from a zero read from shared memory after
# the step's warp barrier, so no add of a loaded value can move above it; 2, 4, 8 or 16 loads; 128 cases) beside the
# 1 x 4096^2 and x 11008 products (float32 and float16) in one process; first the probe's three kernels (PTX made by
# ILGPU on the dev machine) through Triton's ptxas for sm_90 and cuobjdump, to see whether a step's loads now all issue
# before its first add.
set -uo pipefail
export LD_LIBRARY_PATH="/usr/local/nvidia/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
R=$OUT/run207; mkdir -p $R/sass
bin=$(python3 -c 'import triton, os; print(os.path.join(os.path.dirname(triton.__file__), "backends", "nvidia", "bin"))' 2>/dev/null)
for f in .gpu/readptx/*.ptx; do
  n=$(basename $f .ptx)
  $bin/ptxas -arch=sm_90 -O3 -v $f -o /tmp/$n.cubin > $R/sass/$n.ptxas.txt 2>&1
  $bin/cuobjdump -sass /tmp/$n.cubin > $R/sass/$n.sass 2>&1
done
OUT=$R bash tests/GemsInjector.GpuHarness/run-on-gpu.sh smi > /dev/null 2>&1
dir=/tmp/gems-read-probe; rm -rf $dir; mkdir -p $dir; tar -xJf .gpu/harness.tar.xz -C $dir; H=$dir/harness/GemsInjector.GpuHarness
timeout 300 $H --device cuda --suite bench --budget-s 200 --seed 2071 --dtype f32,f16 \
  --filter 'read|launch|copy| 1x4096x4096|x11008x|x4096x11008' --csv $R/bench.csv > $R/harness.log 2>&1
echo "exit $?" >> $R/exits.txt
python3 tests/GemsInjector.GpuHarness/compare.py --bench $R/bench.csv --out $R/compare.md > /dev/null 2>&1
gzip -9 $R/harness.log
cd $OUT && tar czf run207.tgz run207 && rm -rf run207; find $OUT -type f
