#!/usr/bin/env bash
# Session 36, Run 218: the full bench beside PyTorch on the L2 prefetch default (Attempt 20: .L2::128B on every global load
# and cp.async copy of the PTX the driver loads), with the read probe's 156 cases in the same process, for the standing
# table in docs/perf/h100.md.
set -uo pipefail
export LD_LIBRARY_PATH="/usr/local/nvidia/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
BENCH_BUDGET_S=450 HARNESS_ARGS='--seed 218' OUT=$OUT/bench \
  bash tests/GemsInjector.GpuHarness/run-on-gpu.sh smi torch torch-extra bench compare > $OUT/bench-run.log 2>&1
cd $OUT && gzip -9 bench/harness.log bench-run.log && tar czf all.tgz bench bench-run.log.gz && rm -rf bench bench-run.log.gz; find $OUT -type f
