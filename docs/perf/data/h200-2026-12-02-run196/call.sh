#!/usr/bin/env bash
# Session 32, Run 196: the full bench beside PyTorch on main's final kernels (the last full bench was Run 162; the
# attention kernels changed since: tiled CUDA-core prefill, tensor-core prefill at head size 64, its copy plan and
# three stages), for the standing table at the top of docs/perf/h100.md.
set -uo pipefail
export LD_LIBRARY_PATH="/usr/local/nvidia/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
BENCH_BUDGET_S=380 HARNESS_ARGS='--seed 196' OUT=$OUT/bench \
  bash tests/GemsInjector.GpuHarness/run-on-gpu.sh smi torch torch-extra bench compare > $OUT/bench-run.log 2>&1
cd $OUT && tar czf all.tgz bench bench-run.log && rm -rf bench bench-run.log; find $OUT -type f
