#!/usr/bin/env bash
# Session 24, Run 151: the SM clock while the bench repeats one product (nvidia-smi sampled every 20 ms): Run 150's
# ncu put the 16-bit tensor-core products at ~1.80 GHz and the float32 ones at ~1.95 GHz in the same call.
set -uo pipefail
export LD_LIBRARY_PATH="/usr/local/nvidia/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
dir=/tmp/gems-clock && rm -rf $dir && mkdir -p $dir && tar -xJf .gpu/harness.tar.xz -C $dir
bin=$dir/harness/GemsInjector.GpuHarness
mkdir -p $OUT/clock && export GEMS_KERNEL_CACHE=$dir/cache
i=0
while IFS= read -r f; do
  i=$((i + 1)); echo "$f" > $OUT/clock/case$i.txt
  timeout 120 $bin --device cuda --suite bench --filter "$f" --runs 3 --budget-s 30 >> $OUT/clock/harness.log 2>&1
  nvidia-smi --query-gpu=timestamp,clocks.sm,clocks.mem,power.draw,temperature.gpu,clocks_event_reasons.active --format=csv,noheader -lms 20 > $OUT/clock/smi$i.csv 2>&1 &
  smi=$!
  timeout 120 $bin --device cuda --suite bench --filter "$f" --passes 60 --budget-s 60 > $OUT/clock/bench$i.log 2>&1
  kill $smi; wait $smi 2>/dev/null
done <<'CASES'
mm_tb float16 12x11008x4096
mm float16 16x11008x4096
mm_tb float32 16x11008x4096
mm_tb float32 1x4096x4096
silu float16 20497291
mm_tb float16 1x4096x4096
CASES
cd $OUT && tar czf all.tgz clock && rm -rf clock; find $OUT -type f
