#!/usr/bin/env bash
# Session 27, Run 174: the staging probe after the CPU attention kernel's loops were made to compile optimised from the
# first call and the probe warms each call up for 0.25 s: 16 and 8 CPU threads (the routing's refit), then 16 threads
# with tiered compilation off (every method optimised from its first call: does the 8-row CPU GEMM's slow reading go?).
set -uo pipefail
export LD_LIBRARY_PATH="/usr/local/nvidia/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
mkdir -p $OUT/staging /tmp/h && tar -xJf .gpu/harness.tar.xz -C /tmp/h
probe() {
    local name=$1 limit=$2; shift 2
    local start=$(date +%s)
    env "$@" timeout $limit /tmp/h/harness/GemsInjector.GpuHarness --device cuda --staging-probe --seed 174 --csv $OUT/staging/$name.csv > $OUT/staging/$name.log 2>&1
    echo "exit $? after $(( $(date +%s) - start )) s" >> $OUT/staging/$name.log
}
probe staging 200 -u LOCAL_WORLD_SIZE
probe staging-2workers 170 LOCAL_WORLD_SIZE=2
probe staging-tc0 170 DOTNET_TieredCompilation=0
cd $OUT && tar czf all.tgz staging && rm -rf staging; find $OUT -type f
