#!/usr/bin/env bash
# Session 33, Run 205: the read probe's second form (every load of a step issued before its adds, as the products do;
# 2, 4, 8 or 16 loads; 128 cases) in the full bench beside PyTorch, on main's kernels (those of Runs 196 and 203), for
# the standing table; first the probe's kernels (PTX made by ILGPU on the dev machine) through Triton's ptxas for sm_90
# and cuobjdump, to check that the loads of a step are in flight together.
set -uo pipefail
export LD_LIBRARY_PATH="/usr/local/nvidia/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
bin=$(python3 -c 'import triton, os; print(os.path.join(os.path.dirname(triton.__file__), "backends", "nvidia", "bin"))' 2>/dev/null)
mkdir -p $OUT/sass
for f in .gpu/readptx/*.ptx; do
  n=$(basename $f .ptx)
  $bin/ptxas -arch=sm_90 -O3 -v $f -o /tmp/$n.cubin > $OUT/sass/$n.ptxas.txt 2>&1
  $bin/cuobjdump -sass /tmp/$n.cubin > $OUT/sass/$n.sass 2>&1
done
BENCH_BUDGET_S=450 HARNESS_ARGS='--seed 205' OUT=$OUT/bench \
  bash tests/GemsInjector.GpuHarness/run-on-gpu.sh smi torch torch-extra bench compare > $OUT/bench-run.log 2>&1
cd $OUT && gzip -9 bench/harness.log bench-run.log && tar czf all.tgz sass bench bench-run.log.gz && rm -rf sass bench bench-run.log.gz; find $OUT -type f
