#!/usr/bin/env bash
# Session 16, call D: the whole accuracy suite on the final defaults (lean8w for batch-1-sized 16-bit decodes, ring3w for
# float32 9–16-row [N, K]), then the decode cases' bench.
set -uo pipefail
export LD_LIBRARY_PATH="/usr/local/nvidia/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
ACCURACY_BUDGET_S=240 OUT=$OUT/acc bash tests/GemsInjector.GpuHarness/run-on-gpu.sh smi accuracy > $OUT/acc-run.log 2>&1
dir=/tmp/gh; H=$dir/harness/GemsInjector.GpuHarness; [[ -x $H ]] || { mkdir -p $dir; tar -xJf .gpu/harness.tar.xz -C $dir; }
timeout 90 $H --device cuda --suite accuracy,bench --dtype f16,bf16,f32 --filter 'sdpa bfloat16 1x32/8x1x4096x128|sdpa float16 1x32/8x1x4096x128|sdpa float32 1x32/8x1x4096x128|sdpa bfloat16 16x32/8x1x4096x128' --budget-s 60 --csv $OUT/dec.csv > $OUT/dec.log 2>&1
find $OUT -type f | sort
