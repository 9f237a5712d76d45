#!/usr/bin/env bash
# Session 24, Run 148: a baseline for Run 145's SM active share: ncu of our own element-wise and row kernels whose
# launches last as long as the GEMVs (20-60 us) and whose grids are many waves or grid-stride loops.
set -uo pipefail
export LD_LIBRARY_PATH="/usr/local/nvidia/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
PROFILE_FILTERS='rms_norm float16 4096x4096;silu float16 20497291;add float32 20497291' PROFILE_LAUNCHES=2 OUT=$OUT/prof \
  bash tests/GemsInjector.GpuHarness/run-on-gpu.sh profile > $OUT/prof.log 2>&1
cd $OUT && tar czf all.tgz prof prof.log && rm -rf prof prof.log; find $OUT -type f
