#!/usr/bin/env bash
# Session 26, Run 167: the README's main sample (DistributedInference, 2 workers) on the H200 node, TorchSharp on the
# node's own PyTorch libraries (the sample's libtorch CPU build is too large to carry): GemsInjector with the staging
# cost (GEMS_GPU_OFFLOAD unset), with every call staged (=always, the behaviour before), and on the CPU kernels.
set -uo pipefail
export LD_LIBRARY_PATH="/usr/local/nvidia/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
torch_lib=$(python3 -c 'import torch, os; print(os.path.join(os.path.dirname(torch.__file__), "lib"))')
export LD_LIBRARY_PATH="$torch_lib:$LD_LIBRARY_PATH"
mkdir -p $OUT/sample /tmp/s && tar -xJf .gpu-sample/sample.tar.xz -C /tmp/s
cd /tmp/s/sample-slim
{ nproc; python3 -c 'import torch; print(torch.__version__)'; } > $OUT/sample/host.txt 2>&1
run() {
    local name=$1; shift
    env "$@" timeout 280 ./DistributedInference --workers 2 --prompts 4 --max-new-tokens 16 --require-gems --report $OUT/sample/$name.json > $OUT/sample/$name.log 2>&1
    echo "exit $?" >> $OUT/sample/$name.log
}
run auto -u GEMS_GPU_OFFLOAD
run always GEMS_GPU_OFFLOAD=always
run cpu GEMS_DEVICE=cpu
run auto-again -u GEMS_GPU_OFFLOAD
cd $OUT && tar czf all.tgz sample && rm -rf sample; find $OUT -type f
