#!/usr/bin/env bash
# Session 26, Run 171: the staging probe with the CPU attention kernel splitting a group's query heads over tasks
# when the groups alone would leave CPU threads idle (a decode step on 16 threads), on 16 and 8 CPU threads.
set -uo pipefail
export LD_LIBRARY_PATH="/usr/local/nvidia/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
mkdir -p $OUT/staging /tmp/h && tar -xJf .gpu/harness.tar.xz -C /tmp/h
{ lscpu; echo; free -g; echo; nvidia-smi --query-gpu=name,driver_version,pcie.link.gen.current,pcie.link.width.current --format=csv; } > $OUT/staging/host.txt 2>&1
timeout 420 /tmp/h/harness/GemsInjector.GpuHarness --device cuda --staging-probe --seed 171 --csv $OUT/staging/staging.csv > $OUT/staging/staging.log 2>&1
echo "exit $?" >> $OUT/staging/staging.log
# Two workers on the node: each gets half the CPU threads (LOCAL_WORLD_SIZE), so the CPU side is slower and more goes to the GPU.
LOCAL_WORLD_SIZE=2 timeout 300 /tmp/h/harness/GemsInjector.GpuHarness --device cuda --staging-probe --seed 171 --csv $OUT/staging/staging-2workers.csv > $OUT/staging/staging-2workers.log 2>&1
echo "exit $?" >> $OUT/staging/staging-2workers.log
cd $OUT && tar czf all.tgz staging && rm -rf staging; find $OUT -type f
