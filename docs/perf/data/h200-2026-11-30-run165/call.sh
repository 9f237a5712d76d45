#!/usr/bin/env bash
# Session 26, Run 165: what a product call of mm costs on host tensors — staged to the GPU (pageable copies, kernel,
# copy back) against the CPU kernel on the host's threads — and the host <-> device copy rates; the host's CPU.
set -uo pipefail
export LD_LIBRARY_PATH="/usr/local/nvidia/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
mkdir -p $OUT/staging /tmp/h && tar -xJf .gpu/harness.tar.xz -C /tmp/h
{ lscpu; echo; free -g; echo; nvidia-smi --query-gpu=name,driver_version,pcie.link.gen.current,pcie.link.width.current --format=csv; } > $OUT/staging/host.txt 2>&1
timeout 420 /tmp/h/harness/GemsInjector.GpuHarness --device cuda --staging-probe --seed 165 --csv $OUT/staging/staging.csv > $OUT/staging/staging.log 2>&1
echo "exit $?" >> $OUT/staging/staging.log
cd $OUT && tar czf all.tgz staging && rm -rf staging; find $OUT -type f
