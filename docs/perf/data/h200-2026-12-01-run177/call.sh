#!/usr/bin/env bash
# Session 27, Run 177: float32 attention of 2-64 unmasked non-causal queries as a decode step (a head per (head, query)
# pair): the harness's attention accuracy cases (float32), then the staging probe on 16 threads (its 16 queries over
# 4096 keys row times the staged device call).
set -uo pipefail
export LD_LIBRARY_PATH="/usr/local/nvidia/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
mkdir -p $OUT/run /tmp/h && tar -xJf .gpu/harness.tar.xz -C /tmp/h
start=$(date +%s)
timeout 200 /tmp/h/harness/GemsInjector.GpuHarness --device cuda --suite accuracy --filter sdpa --dtype f32 --seed 177 --csv $OUT/run/accuracy.csv > $OUT/run/accuracy.log 2>&1
echo "exit $? after $(( $(date +%s) - start )) s" >> $OUT/run/accuracy.log
start=$(date +%s)
timeout 200 /tmp/h/harness/GemsInjector.GpuHarness --device cuda --staging-probe --seed 177 --csv $OUT/run/staging.csv > $OUT/run/staging.log 2>&1
echo "exit $? after $(( $(date +%s) - start )) s" >> $OUT/run/staging.log
cd $OUT && tar czf all.tgz run && rm -rf run; find $OUT -type f
