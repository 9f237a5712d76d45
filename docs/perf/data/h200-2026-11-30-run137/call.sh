#!/usr/bin/env bash
# Session 23, Run 137: the full bench beside PyTorch (kernels as Run 134, main 2d2db13) with the launch floor row and the
# memory peak in the device note, so compare.md marks the decode targets one launch cannot reach; start-up as before.
set -uo pipefail
export LD_LIBRARY_PATH="/usr/local/nvidia/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
BENCH_BUDGET_S=380 OUT=$OUT/bench bash tests/GemsInjector.GpuHarness/run-on-gpu.sh smi torch torch-extra bench compare > $OUT/bench-run.log 2>&1
STARTUP_TIMEOUT_S=60 OUT=$OUT/st bash tests/GemsInjector.GpuHarness/run-on-gpu.sh startup > $OUT/st-run.log 2>&1
cd $OUT && tar czf all.tgz bench st bench-run.log st-run.log && rm -rf bench st bench-run.log st-run.log; find $OUT -type f
# --- afterwards, on this machine: compare.md regenerated with the peak Run 138 reports ---
# python3 tests/GemsInjector.GpuHarness/compare.py --bench bench.csv --torch anchor.csv --torch-log torch.txt --torch-extra torch-extra.csv --gems-fallback .gpu/flaggems_fallback.csv --memory-peak-gbps 4814 --out compare.md
