#!/usr/bin/env bash
# Session 24, Run 147: one build, alternating processes: the 16-bit [N, K] x11008x4096 products on groups of 4 warps
# (GEMS_SKINNY_NK_STREAM_WARPS=4: 688 groups at 3 per SM, 1.7 waves handed out as slots free) against the plan's 2 warps
# (688 groups at 6 per SM, all resident); Run 145 had the SMs idle 4.0 us of the 26.5 us launch.
set -uo pipefail
export LD_LIBRARY_PATH="/usr/local/nvidia/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
AB_FILTER='mm_tb float16 12x11008x4096|mm_tb float16 16x11008x4096|mm_tb bfloat16 12x11008x4096|mm_tb bfloat16 16x11008x4096' \
  AB_ROUNDS=4 AB_OLD_OVERLAY=none AB_ENV_NEW='GEMS_SKINNY_NK_STREAM_WARPS=4' OUT=$OUT/ab bash tests/GemsInjector.GpuHarness/run-on-gpu.sh smi ab > $OUT/ab-run.log 2>&1
cd $OUT && tar czf all.tgz ab ab-run.log && rm -rf ab ab-run.log; find $OUT -type f
