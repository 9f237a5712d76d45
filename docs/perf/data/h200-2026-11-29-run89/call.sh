#!/usr/bin/env bash
# Session 15, Run 89: the full bench beside PyTorch (with the extra decode shapes) and compare.md, final defaults.
export LD_LIBRARY_PATH=/usr/local/nvidia/lib64
BENCH_BUDGET_S=330 bash tests/GemsInjector.GpuHarness/run-on-gpu.sh smi torch torch-extra bench compare > $OUT/bench-run.log 2>&1
