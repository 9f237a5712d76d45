#!/usr/bin/env bash
# Session 27, Run 176: memory-bound operators on the CPU of a GPU node. Two calls (the working tree and both tarballs
# exceed what one call carries): carrying .gpu runs the staging probe on 16 threads (now with silu and rms_norm rows);
# carrying .gpu-sample runs the README's main sample three ways, alternating: routing unset, GEMS_DEVICE=cpu, unset again.
set -uo pipefail
export LD_LIBRARY_PATH="/usr/local/nvidia/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
mkdir -p $OUT/staging $OUT/sample /tmp/h /tmp/s
if [[ -f .gpu/harness.tar.xz ]]; then
    tar -xJf .gpu/harness.tar.xz -C /tmp/h
    start=$(date +%s)
    timeout 200 /tmp/h/harness/GemsInjector.GpuHarness --device cuda --staging-probe --seed 176 --csv $OUT/staging/staging.csv > $OUT/staging/staging.log 2>&1
    echo "exit $? after $(( $(date +%s) - start )) s" >> $OUT/staging/staging.log
fi
if [[ -f .gpu-sample/sample.tar.xz ]]; then
    tar -xJf .gpu-sample/sample.tar.xz -C /tmp/s
    torch_lib=$(python3 -c 'import torch, os; print(os.path.join(os.path.dirname(torch.__file__), "lib"))')
    export LD_LIBRARY_PATH="$torch_lib:$LD_LIBRARY_PATH"
    cd /tmp/s/sample-slim
    run() {
        local name=$1; shift
        local start=$(date +%s)
        env "$@" timeout 100 ./DistributedInference --workers 2 --prompts 4 --max-new-tokens 16 --require-gems --report $OUT/sample/$name.json > $OUT/sample/$name.log 2>&1
        echo "exit $? after $(( $(date +%s) - start )) s" >> $OUT/sample/$name.log
    }
    run auto -u GEMS_DEVICE
    run cpu GEMS_DEVICE=cpu
    run auto-again -u GEMS_DEVICE
    run cpu-again GEMS_DEVICE=cpu
fi
cd $OUT && tar czf all.tgz staging sample && rm -rf staging sample; find $OUT -type f
