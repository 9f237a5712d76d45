#!/usr/bin/env bash
# Session 27, Run 175: the final build (routing refit, CPU attention and GEMM loops optimised from the first call): the staging probe on 16 and 8 CPU threads (fresh data for the routing
# refit), then the README's main sample with every call staged (GEMS_GPU_OFFLOAD=always: the product's copies through the
# slots, end to end) and with the routing, on the node's PyTorch libraries (see run167/call.sh). Two calls (the working
# tree and both tarballs exceed what one call carries): carrying .gpu runs the probe, carrying .gpu-sample the sample.
set -uo pipefail
export LD_LIBRARY_PATH="/usr/local/nvidia/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
mkdir -p $OUT/staging $OUT/sample /tmp/h /tmp/s
if [[ -f .gpu/harness.tar.xz ]]; then
tar -xJf .gpu/harness.tar.xz -C /tmp/h
{ lscpu; echo; free -g; echo; nvidia-smi --query-gpu=name,driver_version,pcie.link.gen.current,pcie.link.width.current --format=csv; } > $OUT/staging/host.txt 2>&1
start=$(date +%s)
timeout 200 /tmp/h/harness/GemsInjector.GpuHarness --device cuda --staging-probe --seed 175 --csv $OUT/staging/staging.csv > $OUT/staging/staging.log 2>&1
echo "exit $? after $(( $(date +%s) - start )) s" >> $OUT/staging/staging.log
start=$(date +%s)
LOCAL_WORLD_SIZE=2 timeout 150 /tmp/h/harness/GemsInjector.GpuHarness --device cuda --staging-probe --seed 175 --csv $OUT/staging/staging-2workers.csv > $OUT/staging/staging-2workers.log 2>&1
echo "exit $? after $(( $(date +%s) - start )) s" >> $OUT/staging/staging-2workers.log
fi
if [[ -f .gpu-sample/sample.tar.xz ]]; then
tar -xJf .gpu-sample/sample.tar.xz -C /tmp/s
torch_lib=$(python3 -c 'import torch, os; print(os.path.join(os.path.dirname(torch.__file__), "lib"))')
export LD_LIBRARY_PATH="$torch_lib:$LD_LIBRARY_PATH"
cd /tmp/s/sample-slim
run() {
    local name=$1; shift
    start=$(date +%s)
    env "$@" timeout 100 ./DistributedInference --workers 2 --prompts 4 --max-new-tokens 16 --require-gems --report $OUT/sample/$name.json > $OUT/sample/$name.log 2>&1
    echo "exit $? after $(( $(date +%s) - start )) s" >> $OUT/sample/$name.log
}
run always GEMS_GPU_OFFLOAD=always
run auto -u GEMS_GPU_OFFLOAD
fi
cd $OUT && tar czf all.tgz staging sample && rm -rf staging sample; find $OUT -type f
