#!/usr/bin/env bash
# Session 22, Run 132 (build: branch nk-ahead = main with subgroups-const + the ahead body):
# (1) GEMS_SKINNY_NK_VARIANT=ahead against the default streamed body, one build, four alternating process pairs on the
#     16-bit [N, K] rows it would take; (2) every 16-bit product accuracy case under ahead; (3) ncu of the ahead kernel at
#     16 x 11008 x 4096; (4) the f32 12-warp [N, K] rows on the prefetch form against the default ring.
set -uo pipefail
r=$OUT/r; mkdir -p $r/ahead $r/f32pf $r/prof
F='mm_tb float16 16x11008x4096|mm_tb bfloat16 16x11008x4096|mm_tb float16 12x11008x4096|mm_tb float16 16x4096x11008|mm_tb bfloat16 12x4096x11008|mm_tb float16 8x4096x4096|mm_tb bfloat16 8x4096x4096'
AB_FILTER="$F" AB_ROUNDS=4 AB_OLD_OVERLAY=none AB_ENV_NEW='GEMS_SKINNY_NK_VARIANT=ahead' OUT=$r/ahead \
  bash tests/GemsInjector.GpuHarness/run-on-gpu.sh smi ab > $r/ahead/run.log 2>&1
export LD_LIBRARY_PATH="/usr/local/nvidia/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
bin=/tmp/gems-gpu-harness/harness/GemsInjector.GpuHarness
GEMS_SKINNY_NK_VARIANT=ahead timeout 240 $bin --device cuda --suite accuracy --dtype f16,bf16 --filter 'mm' --csv $r/acc-ahead.csv > $r/acc-ahead.log 2>&1
echo "acc-ahead rc=$?" >> $r/acc-ahead.log
GEMS_SKINNY_NK_VARIANT=ahead PROFILE_FILTERS='mm_tb float16 16x11008x4096;mm_tb float16 16x4096x11008' PROFILE_LAUNCHES=2 OUT=$r/prof \
  bash tests/GemsInjector.GpuHarness/run-on-gpu.sh profile > $r/prof/run.log 2>&1
rm -f $r/prof/profile.tar.xz
AB_FILTER='mm_tb float32 16x4096x11008|mm_tb float32 12x4096x11008' AB_ROUNDS=3 AB_OLD_OVERLAY=none AB_ENV_NEW='GEMS_GEMV_F32_DMMA=prefetch' OUT=$r/f32pf \
  bash tests/GemsInjector.GpuHarness/run-on-gpu.sh ab > $r/f32pf/run.log 2>&1
cd $OUT && tar czf all.tgz r && rm -rf r; ls -la $OUT
