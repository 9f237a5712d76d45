#!/usr/bin/env bash
# Session 22, Run 133: the ahead body unrolled by two (two register sets in turn, no copy of a loaded quad):
# (1) ptxas -v and SASS of the ahead and stream kernels' PTX (MOV counts); (2) GEMS_SKINNY_NK_VARIANT=ahead against the
# default streamed body, one build, four alternating process pairs; (3) ncu of the ahead kernel at 16 x 11008 x 4096.
set -uo pipefail
r=$OUT/r; mkdir -p $r/ahead $r/prof $r/sass
export LD_LIBRARY_PATH="/usr/local/nvidia/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
bin="$(python3 -c 'import os, triton; print(os.path.join(os.path.dirname(triton.__file__), "backends", "nvidia", "bin"))' 2>/dev/null)"
for f in .gpu/ptx-ahead/*.ptx; do
  b=$(basename $f .ptx)
  sed 's/^\.version .*/.version 8.0/' $f > /tmp/r.ptx
  echo "== $b" >> $r/ptxas.txt
  "$bin/ptxas" -arch=sm_90a -O3 -v /tmp/r.ptx -o /tmp/$b.cubin >> $r/ptxas.txt 2>&1; echo "rc=$?" >> $r/ptxas.txt
  "$bin/cuobjdump" -sass /tmp/$b.cubin > $r/sass/$b.sass 2>&1
  echo "$b: $(grep -cE '^\s+/\*[0-9a-f]+\*/\s+MOV ' $r/sass/$b.sass) MOV, $(grep -cE 'IMAD\.MOV' $r/sass/$b.sass) IMAD.MOV, $(grep -c HMMA $r/sass/$b.sass) HMMA, $(grep -c 'LDG' $r/sass/$b.sass) LDG" >> $r/sass-counts.txt
done
F='mm_tb float16 16x11008x4096|mm_tb bfloat16 16x11008x4096|mm_tb float16 12x11008x4096|mm_tb float16 16x4096x11008|mm_tb bfloat16 12x4096x11008|mm_tb float16 8x4096x4096|mm_tb bfloat16 8x4096x4096'
AB_FILTER="$F" AB_ROUNDS=4 AB_OLD_OVERLAY=none AB_ENV_NEW='GEMS_SKINNY_NK_VARIANT=ahead' OUT=$r/ahead \
  bash tests/GemsInjector.GpuHarness/run-on-gpu.sh smi ab > $r/ahead/run.log 2>&1
GEMS_SKINNY_NK_VARIANT=ahead PROFILE_FILTERS='mm_tb float16 16x11008x4096' PROFILE_LAUNCHES=2 OUT=$r/prof \
  bash tests/GemsInjector.GpuHarness/run-on-gpu.sh profile > $r/prof/run.log 2>&1
rm -f $r/prof/profile.tar.xz
cd $OUT && tar czf all.tgz r && rm -rf r; ls -la $OUT
