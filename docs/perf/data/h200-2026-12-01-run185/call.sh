#!/usr/bin/env bash
# Session 29, Run 185: the tiled float32 prefill split into key ranges (few-query and short-block calls). Carries .gpu (this build). The float32
# attention cases of the accuracy suite, then PyTorch's attention rows and this build's float32 attention bench beside
# them (compare.md), and ptxas -v over the kernels the bench ran (resources.csv: registers, spills).
set -uo pipefail
export LD_LIBRARY_PATH="/usr/local/nvidia/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
HARNESS_ARGS='--seed 185 --dtype f32 --filter sdpa|copy|launch' OUT=$OUT/run \
  bash tests/GemsInjector.GpuHarness/run-on-gpu.sh smi torch-extra accuracy bench resources compare > $OUT/run.log 2>&1
grep -i "attention\|kernel,reg" $OUT/run/resources.csv > $OUT/run/resources-attention.csv 2>/dev/null
cd $OUT && tar czf all.tgz run run.log && rm -rf run run.log; find $OUT -type f
