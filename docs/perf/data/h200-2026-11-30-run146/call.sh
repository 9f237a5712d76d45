#!/usr/bin/env bash
# Session 24, Run 146: ncu of our device copy at the GEMVs' sizes (64 MB float32 as the 4096^2 float32 products, 90 MB
# float16 as the 16-bit x11008 ones): the SMs' active share of the elapsed cycles of a launch that does nothing but
# move those bytes, beside Run 145's GEMVs.
set -uo pipefail
export LD_LIBRARY_PATH="/usr/local/nvidia/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
PROFILE_FILTERS='copy float32 8388608;copy float16 22544384;copy float32 67108864' PROFILE_LAUNCHES=2 OUT=$OUT/prof \
  bash tests/GemsInjector.GpuHarness/run-on-gpu.sh profile > $OUT/prof.log 2>&1
cd $OUT && tar czf all.tgz prof prof.log && rm -rf prof prof.log; find $OUT -type f
