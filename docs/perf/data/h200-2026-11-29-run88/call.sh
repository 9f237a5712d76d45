#!/usr/bin/env bash
# Session 15, Run 88: start-up and the whole accuracy suite on the final defaults, then ncu of two new kernels.
export LD_LIBRARY_PATH=/usr/local/nvidia/lib64
ACCURACY_BUDGET_S=240 bash tests/GemsInjector.GpuHarness/run-on-gpu.sh smi startup accuracy > $OUT/acc-run.log 2>&1
PROFILE_FILTERS='mm_tb float32 16x11008x4096;mm bfloat16 64x4096x4096' PROFILE_LAUNCHES=2 OUT=$OUT/prof \
  bash tests/GemsInjector.GpuHarness/run-on-gpu.sh profile > $OUT/prof-run.log 2>&1
