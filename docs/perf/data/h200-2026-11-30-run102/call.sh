#!/usr/bin/env bash
# Session 18, call A: one harness built from main + rel-nkring8rows + rel-nkcl16 (branch ab18).
# 1) GEMS_GEMV_F32_NK8=ring3: accuracy of every float32 mm_tb case, then alternating A/B twice.
# 2) GEMS_GEMV16_NK_CLUSTER=on: accuracy of every 16-bit mm_tb case, then alternating A/B twice.
# 3) Attempt 8: start-up, JIT harness against the same with ReadyToRun assemblies, first + second process, twice.
set -uo pipefail
export LD_LIBRARY_PATH="/usr/local/nvidia/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
ab=$OUT/ab; mkdir -p $ab
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem --format=csv > $ab/smi.txt
dir=/tmp/gh; mkdir -p $dir; tar -xJf .gpu/harness.tar.xz -C $dir; H=$dir/harness/GemsInjector.GpuHarness
acc() { local label=$1 d=$2 f=$3; shift 3; local t0=$(date +%s); env "$@" timeout 100 $H --device cuda --suite accuracy --dtype $d --filter "$f" --csv $ab/a-$label.csv > $ab/a-$label.log 2>&1; echo "acc $label rc=$? $(( $(date +%s) - t0 ))s" >> $ab/ab.log; }
run() { local label=$1 d=$2 f=$3; shift 3; local t0=$(date +%s); env "$@" timeout 60 $H --device cuda --suite accuracy,bench --dtype $d --filter "$f" --budget-s 40 --csv $ab/b-$label.csv > $ab/b-$label.log 2>&1; echo "$label rc=$? $(( $(date +%s) - t0 ))s" >> $ab/ab.log; }
F32='mm_tb float32 8x4096x4096|mm_tb float32 4x4096x4096|mm_tb float32 2x4096x4096|mm_tb float32 16x11008x4096'
F16='mm_tb float16 8x4096x4096|mm_tb bfloat16 8x4096x4096|mm_tb bfloat16 4x4096x4096|mm_tb bfloat16 16x11008x4096|mm_tb bfloat16 64x4096x4096|mm bfloat16 8x4096x4096'
acc ring3 f32 'mm_tb' GEMS_GEMV_F32_NK8=ring3
for round in 1 2; do run nk8def-$round f32 "$F32" GEMS_X=0; run ring3-$round f32 "$F32" GEMS_GEMV_F32_NK8=ring3; done
acc cl16 f16,bf16 'mm_tb' GEMS_GEMV16_NK_CLUSTER=on
for round in 1 2; do run cl16def-$round f16,bf16 "$F16" GEMS_X=0; run cl16-$round f16,bf16 "$F16" GEMS_GEMV16_NK_CLUSTER=on; done
cd $ab && grep -h "summary\|FAILED\|loaded" a-*.log b-*.log >> ab.log; cat b-*.csv > all.csv; cat a-*.csv > acc.csv; tar czf $OUT/ab.tgz smi.txt ab.log all.csv acc.csv a-*.log b-*.log; cd - >/dev/null; rm -rf $ab
bash .gpu/startup-r2r.sh > /dev/null 2>&1
find $OUT -type f

# ---- .gpu/startup-r2r.sh (run by the line above) ----
#!/usr/bin/env bash
# Start-up: today's published harness (JIT) against the same harness with ReadyToRun builds of our assemblies, ILGPU,
# System.Numerics.Tensors and the Extensions abstractions swapped in; per round a first process (fills a fresh kernel
# cache and driver cache) then a second one; alternating, twice each. Rows to $OUT/r2r/<variant>-<round>.csv.
set -uo pipefail
export LD_LIBRARY_PATH="/usr/local/nvidia/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
mkdir -p $OUT/r2r /tmp/h-jit /tmp/h-r2r
tar -xJf .gpu/harness.tar.xz -C /tmp/h-jit; tar -xJf .gpu/harness.tar.xz -C /tmp/h-r2r; tar -xJf .gpu/r2r-dlls.tar.xz -C /tmp/h-r2r/harness
for round in 1 2; do
  for v in jit r2r; do
    c=/tmp/st-$v-$round; rm -rf $c; mkdir -p $c
    for p in first second; do
      GEMS_STARTUP_PROCESS=$p GEMS_KERNEL_CACHE=$c/kernels CUDA_CACHE_PATH=$c/driver GEMS_SHIPPED_KERNELS=off \
        timeout 60 /tmp/h-$v/harness/GemsInjector.GpuHarness --device cuda --suite startup --csv $OUT/r2r/$v-$round-$p.csv > $OUT/r2r/$v-$round-$p.log 2>&1
      echo "$v $round $p rc=$?" >> $OUT/r2r/runs.log
    done
  done
done
cd $OUT && tar czf r2r.tgz r2r && rm -rf r2r; find $OUT -type f
