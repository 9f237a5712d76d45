#!/usr/bin/env bash
# Session 22, Run 136: the ring's A in two register sets (branch ring-a2sets) against main (overlay), six alternating
# process pairs; ptxas -v of the new ring PTX (12-warp and 4-warp launch bounds).
set -uo pipefail
r=$OUT/r; mkdir -p $r
export LD_LIBRARY_PATH="/usr/local/nvidia/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
bin="$(python3 -c 'import os, triton; print(os.path.join(os.path.dirname(triton.__file__), "backends", "nvidia", "bin"))' 2>/dev/null)"
for f in .gpu/ptx-ring2/*.ptx; do
  b=$(basename $f .ptx); echo "== $b" >> $r/ptxas.txt
  "$bin/ptxas" -arch=sm_90a -O3 -v $f -o /tmp/$b.cubin >> $r/ptxas.txt 2>&1; echo "rc=$?" >> $r/ptxas.txt
done
AB_FILTER='mm_tb float32 16x4096x11008|mm_tb float32 12x4096x11008|mm_tb float32 16x11008x4096|mm_tb float32 12x11008x4096|mm float32 16x4096x11008' \
AB_ROUNDS=6 OUT=$r bash tests/GemsInjector.GpuHarness/run-on-gpu.sh smi ab > $r/run.log 2>&1
cd $OUT && tar czf all.tgz r && rm -rf r; ls -la $OUT
