#!/usr/bin/env bash
# Session 33, Run 204 (no GPU work): the read probe's two kernels (ReadCeiling.Read<Const2>, <Const8>; PTX made by
# ILGPU on the dev machine) through Triton's ptxas for sm_90 and cuobjdump, to see whether the loads a thread issues
# before its adds are in flight together in the SASS.
set -uo pipefail
bin=$(python3 -c 'import triton, os; print(os.path.join(os.path.dirname(triton.__file__), "backends", "nvidia", "bin"))' 2>/dev/null)
mkdir -p $OUT/run204
for f in .gpu/readptx/*.ptx; do
  n=$(basename $f .ptx)
  sed -e 's/^\.version .*/.version 8.0/' $f > /tmp/$n.ptx
  $bin/ptxas -arch=sm_90 -O3 -v /tmp/$n.ptx -o /tmp/$n.cubin > $OUT/run204/$n.ptxas.txt 2>&1
  $bin/cuobjdump -sass /tmp/$n.cubin > $OUT/run204/$n.sass 2>&1
done
ls $bin >> $OUT/run204/tools.txt; cd $OUT && tar czf run204.tgz run204 && rm -rf run204; find $OUT -type f
