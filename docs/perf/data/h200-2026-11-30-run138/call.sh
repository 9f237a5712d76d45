#!/usr/bin/env bash
# Session 23, Run 138: the full bench beside PyTorch with the launch floor and the memory peak read in MHz (the fix after
# Run 137), compare.md with the floor-plus-peak bound; then ncu of the 16-bit [K, N] against [N, K] down projection
# (16 x 4096 x 11008), the widest gap between the two layouts left.
set -uo pipefail
export LD_LIBRARY_PATH="/usr/local/nvidia/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
BENCH_BUDGET_S=380 OUT=$OUT/bench bash tests/GemsInjector.GpuHarness/run-on-gpu.sh smi torch torch-extra bench compare > $OUT/bench-run.log 2>&1
PROFILE_FILTERS='mm float16 16x4096x11008;mm_tb float16 16x4096x11008' PROFILE_LAUNCHES=2 OUT=$OUT/prof \
  bash tests/GemsInjector.GpuHarness/run-on-gpu.sh profile > $OUT/prof.log 2>&1
cd $OUT && tar czf all.tgz bench prof bench-run.log prof.log && rm -rf bench prof bench-run.log prof.log; find $OUT -type f
# --- afterwards, on this machine: compare.md regenerated from this run's CSVs with the session's final compare.py (adds "short by" to each miss; the figures are the device's) ---
# python3 tests/GemsInjector.GpuHarness/compare.py --bench bench.csv --torch anchor.csv --torch-log torch.txt --torch-extra torch-extra.csv --gems-fallback .gpu/flaggems_fallback.csv --out compare.md
