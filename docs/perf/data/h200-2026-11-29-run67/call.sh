#!/usr/bin/env bash
# Session 12, call A: [N, K] 16-bit skinny baselines under each existing body / plan knob, and the host-queue columns
# (host enqueue us per run, device idle us per run) in every process, alternating settings.
set -uo pipefail
export LD_LIBRARY_PATH="/usr/local/nvidia/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
dir=/tmp/gh; mkdir -p $dir; tar -xJf .gpu/harness.tar.xz -C $dir; H=$dir/harness/GemsInjector.GpuHarness
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem --format=csv > $OUT/smi.txt
echo "tools: $(command -v ncu nsys 2>/dev/null | tr '\n' ' ') $(ls -d /usr/local/cuda*/bin/nsys /opt/nvidia/nsight-systems* 2>/dev/null | tr '\n' ' ')" >> $OUT/ab.log
F='mm_tb bfloat16 1x4096x4096|mm_tb bfloat16 2x4096x4096|mm_tb bfloat16 4x4096x4096|mm_tb bfloat16 8x4096x4096|mm_tb bfloat16 16x11008x4096|mm bfloat16 2x4096x4096|mm bfloat16 8x4096x4096|mm bfloat16 64x4096x4096|mm_tb bfloat16 64x4096x4096'
run() { local label=$1; shift; env "$@" timeout 120 $H --device cuda --suite bench --filter "$F" --budget-s 80 --csv $OUT/b-$label.csv > $OUT/b-$label.log 2>&1; echo "$label rc=$?" >> $OUT/ab.log; }
for round in 1 2; do
  run default-$round GEMS_X=0
  run tc0-$round GEMS_SKINNY_TC=0
  run wide-$round GEMS_SKINNY_NK_VARIANT=wide
  run gps2-$round GEMS_SKINNY_TC_GROUPS_PER_SM=2
  run cluster-$round GEMS_SPLITK_REDUCE=cluster
done
cd $OUT && for f in b-*.csv; do echo "== $f"; cut -d, -f2-6,25 $f | grep -v "^op" ; done > summary.txt
cat b-*.csv > all.csv; tar czf logs.tgz *.log && rm -f b-*.log b-*.csv
