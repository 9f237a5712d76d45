#!/usr/bin/env bash
# Session 34, Run 208: the read probe's bulk patterns (each group's slice through a ring of 16 KB shared-memory stages
# filled by the bulk copy engine, cp.async.bulk with mbarrier completion; 7 patterns per size) first alone under a short
# timeout (a wrong mbarrier phase would hang), then beside every register pattern and the 1 x 4096^2 and x 11008
# products (float32 and float16) in one process; the bulk kernel's PTX (made by ILGPU on the dev machine) through
# Triton's ptxas for sm_90 and cuobjdump.
set -uo pipefail
export LD_LIBRARY_PATH="/usr/local/nvidia/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
R=$OUT/run208; mkdir -p $R/sass
bin=$(python3 -c 'import triton, os; print(os.path.join(os.path.dirname(triton.__file__), "backends", "nvidia", "bin"))' 2>/dev/null)
for f in .gpu/readptx/*.ptx; do
  n=$(basename $f .ptx)
  sed -e "s/^\.target sm_80/.target sm_90a/" $f > /tmp/$n.ptx; $bin/ptxas -arch=sm_90a -O3 -v /tmp/$n.ptx -o /tmp/$n.cubin > $R/sass/$n.ptxas.txt 2>&1
  $bin/cuobjdump -sass /tmp/$n.cubin > $R/sass/$n.sass 2>&1
done
OUT=$R bash tests/GemsInjector.GpuHarness/run-on-gpu.sh smi > /dev/null 2>&1
dir=/tmp/gems-read-probe; rm -rf $dir; mkdir -p $dir; tar -xJf .gpu/harness.tar.xz -C $dir; H=$dir/harness/GemsInjector.GpuHarness
timeout 90 $H --device cuda --suite bench --budget-s 60 --seed 2080 --filter 'bulk|launch' --csv $R/bench-bulk.csv > $R/harness-bulk.log 2>&1
echo "bulk exit $?" >> $R/exits.txt
timeout 300 $H --device cuda --suite bench --budget-s 200 --seed 2081 --dtype f32,f16 \
  --filter 'read|launch|copy| 1x4096x4096|x11008x|x4096x11008' --csv $R/bench.csv > $R/harness.log 2>&1
echo "all exit $?" >> $R/exits.txt
python3 tests/GemsInjector.GpuHarness/compare.py --bench $R/bench.csv --out $R/compare.md > /dev/null 2>&1
gzip -9 $R/harness.log $R/harness-bulk.log
cd $OUT && tar czf run208.tgz run208 && rm -rf run208; find $OUT -type f
