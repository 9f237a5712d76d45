#!/usr/bin/env bash
# Session 27, Run 172: the staging probe with page-locked slots (PinnedStaging) beside the driver-staged pageable
# copies, on 16 and 8 CPU threads: copy rates by size, slot sizes, every mm / attention shape on both kinds of staging.
set -uo pipefail
export LD_LIBRARY_PATH="/usr/local/nvidia/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
mkdir -p $OUT/staging /tmp/h && tar -xJf .gpu/harness.tar.xz -C /tmp/h
{ lscpu; echo; free -g; echo; ulimit -l; nvidia-smi --query-gpu=name,driver_version,pcie.link.gen.current,pcie.link.width.current --format=csv; } > $OUT/staging/host.txt 2>&1
start=$(date +%s)
timeout 290 /tmp/h/harness/GemsInjector.GpuHarness --device cuda --staging-probe --seed 172 --csv $OUT/staging/staging.csv > $OUT/staging/staging.log 2>&1
echo "exit $? after $(( $(date +%s) - start )) s" >> $OUT/staging/staging.log
start=$(date +%s)
LOCAL_WORLD_SIZE=2 timeout 250 /tmp/h/harness/GemsInjector.GpuHarness --device cuda --staging-probe --seed 172 --csv $OUT/staging/staging-2workers.csv > $OUT/staging/staging-2workers.log 2>&1
echo "exit $? after $(( $(date +%s) - start )) s" >> $OUT/staging/staging-2workers.log
cd $OUT && tar czf all.tgz staging && rm -rf staging; find $OUT -type f
