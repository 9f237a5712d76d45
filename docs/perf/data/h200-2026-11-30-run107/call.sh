#!/usr/bin/env bash
# Session 18, call F: the full bench beside PyTorch on the final defaults (kernels launched by DirectCudaLaunch),
# then start-up.
set -uo pipefail
BENCH_BUDGET_S=330 OUT=$OUT/bench bash tests/GemsInjector.GpuHarness/run-on-gpu.sh smi torch torch-extra bench compare > $OUT/bench-run.log 2>&1
STARTUP_TIMEOUT_S=60 OUT=$OUT/st bash tests/GemsInjector.GpuHarness/run-on-gpu.sh startup > $OUT/st-run.log 2>&1
cd $OUT && gzip -f bench/harness.log st/harness.log; tar czf small.tgz bench-run.log st-run.log bench/nvidia-smi.txt bench/torch.txt bench/anchor.csv bench/harness.log.gz st/harness.log.gz 2>/dev/null; rm -f bench-run.log st-run.log bench/nvidia-smi.txt bench/torch.txt bench/anchor.csv bench/harness.log.gz st/harness.log.gz; find $OUT -type f | sort
