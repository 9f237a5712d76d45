#!/usr/bin/env bash
# Session 22, Run 134 (call A): the whole accuracy suite on the session's defaults (12-warp DMMA plans in three K ranges,
# the skinny [N, K] body with two batches in flight; main c3aa631).
set -uo pipefail
export LD_LIBRARY_PATH="/usr/local/nvidia/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
ACCURACY_BUDGET_S=240 OUT=$OUT/acc bash tests/GemsInjector.GpuHarness/run-on-gpu.sh smi accuracy > $OUT/acc-run.log 2>&1
cd $OUT && tar czf all.tgz acc acc-run.log && rm -rf acc acc-run.log; find $OUT -type f
# --- call B ---
#!/usr/bin/env bash
# Session 22, Run 134 (call B): the full bench beside PyTorch on the session's defaults (main c3aa631), compare.md, start-up.
set -uo pipefail
export LD_LIBRARY_PATH="/usr/local/nvidia/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
BENCH_BUDGET_S=380 OUT=$OUT/bench bash tests/GemsInjector.GpuHarness/run-on-gpu.sh smi torch torch-extra bench compare > $OUT/bench-run.log 2>&1
STARTUP_TIMEOUT_S=60 OUT=$OUT/st bash tests/GemsInjector.GpuHarness/run-on-gpu.sh startup > $OUT/st-run.log 2>&1
cd $OUT && tar czf all.tgz bench st bench-run.log st-run.log && rm -rf bench st bench-run.log st-run.log; find $OUT -type f
