#!/usr/bin/env bash
# Runs the GPU harness and the PyTorch reference on the GPU machine, from the repository root of the copied tree.
# Needs (made by publish.sh on the dev machine; carry the ignored .gpu folder with the device call):
#   .gpu/harness.tar.xz            the self-contained published harness
#   .gpu/torch_reference_bench.py  the PyTorch / FlagGems reference script
# Usage:
#   tests/GemsInjector.GpuHarness/run-on-gpu.sh [STEP ...]
#   steps: smi torch torch-extra startup accuracy bench resources compare   (default: smi torch startup accuracy bench
#   compare, in that order; torch-extra and resources only when named)
#   torch-extra: torch_decode_reference.py (decode GEMVs, small-M products, attention) -> torch-extra.csv
#   resources:   ptxas -v (Triton's copy) over every kernel the bench compiled -> resources.csv (registers, spills,
#                shared memory per kernel); needs the bench step in the same call
# Writes into $OUT (the device tool's output folder; at most 8 files come back, so exactly these):
#   nvidia-smi.txt  torch.txt  anchor.csv  harness.log  startup.csv  accuracy.csv  bench.csv  compare.md
# Budgets (seconds; the device tool allows 600 s per command): ACCURACY_BUDGET_S (default 150), BENCH_BUDGET_S (200):
# the harness starts no new case after its budget (the rest are SKIP rows); TORCH_TIMEOUT_S (150), STARTUP_TIMEOUT_S (60)
# kill a step that hangs. HARNESS_ARGS adds arguments to every harness call (e.g. "--dtype f32,bf16" or "--filter mm").
# HARNESS_DEVICE (default cuda): a dry run of this script without a GPU is HARNESS_DEVICE=cpu-sim HARNESS_ARGS=--quick.
# If everything does not fit one call, split it, keeping bench, torch and compare together (same card, same run):
#   run-on-gpu.sh smi torch bench compare      then      run-on-gpu.sh smi startup accuracy
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
cd "$root"

if [[ -z "${OUT:-}" ]]; then
    OUT="$root/.gpu/out"
    echo "run-on-gpu: OUT is not set; writing to $OUT"
fi
mkdir -p "$OUT"

steps=("$@")
if (( ${#steps[@]} == 0 )); then
    steps=(smi torch startup accuracy bench compare)
fi
for s in "${steps[@]}"; do
    case "$s" in
        smi|torch|torch-extra|startup|accuracy|bench|resources|compare) ;;
        *) echo "run-on-gpu: unknown step '$s' (steps: smi torch torch-extra startup accuracy bench resources compare)" >&2; exit 2 ;;
    esac
done

want() { local s; for s in "${steps[@]}"; do [[ "$s" == "$1" ]] && return 0; done; return 1; }

ACCURACY_BUDGET_S="${ACCURACY_BUDGET_S:-150}"
BENCH_BUDGET_S="${BENCH_BUDGET_S:-200}"
TORCH_TIMEOUT_S="${TORCH_TIMEOUT_S:-150}"
STARTUP_TIMEOUT_S="${STARTUP_TIMEOUT_S:-60}"
HARNESS_DEVICE="${HARNESS_DEVICE:-cuda}"
read -r -a extra <<<"${HARNESS_ARGS:-}"

# libcuda.so lives under /usr/local/nvidia/lib64 on the GPU machine; ILGPU looks it up by name.
export LD_LIBRARY_PATH="/usr/local/nvidia/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1

start=$(date +%s)
declare -A rc=()
log="$OUT/harness.log"

harness_bin=""
unpack() {
    [[ -n "$harness_bin" ]] && return 0
    local tarball="$root/.gpu/harness.tar.xz"
    if [[ ! -f "$tarball" ]]; then
        echo "run-on-gpu: ERROR: $tarball is missing: run tests/GemsInjector.GpuHarness/publish.sh on the dev machine and carry .gpu" >&2
        exit 3
    fi

    local dir="${TMPDIR:-/tmp}/gems-gpu-harness"
    rm -rf "$dir"
    mkdir -p "$dir"
    tar -xJf "$tarball" -C "$dir"
    harness_bin="$dir/harness/GemsInjector.GpuHarness"
    if [[ ! -x "$harness_bin" ]]; then
        echo "run-on-gpu: ERROR: $harness_bin not found in the tarball" >&2
        exit 3
    fi
    echo "run-on-gpu: harness unpacked to $dir ($(du -sm "$dir" | cut -f1) MB)"
}

# run_harness NAME TIMEOUT ARGS...: runs one suite in its own process (startup needs a fresh process), log appended.
run_harness() {
    local name="$1" limit="$2"
    shift 2
    unpack
    echo "== run-on-gpu: $name (limit ${limit} s): GemsInjector.GpuHarness $*" | tee -a "$log"
    set +e
    timeout --kill-after=10 "$limit" "$harness_bin" "$@" "${extra[@]}" 2>&1 | tee -a "$log"
    local code=${PIPESTATUS[0]}
    set -e
    rc[$name]=$code
    echo "== run-on-gpu: $name exit $code" | tee -a "$log"
}

if want smi; then
    echo "== nvidia-smi"
    if command -v nvidia-smi >/dev/null; then
        {
            nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm,clocks.max.mem,power.limit,temperature.gpu --format=csv || true
            echo
            nvidia-smi || true
        } >"$OUT/nvidia-smi.txt" 2>&1
        head -3 "$OUT/nvidia-smi.txt"
        rc[smi]=0
    else
        echo "run-on-gpu: nvidia-smi not found" | tee "$OUT/nvidia-smi.txt"
        rc[smi]=1
    fi
fi

if want torch; then
    script="$root/.gpu/torch_reference_bench.py"
    if [[ -f "$script" ]]; then
        echo "== torch_reference_bench.py (limit ${TORCH_TIMEOUT_S} s; rows also in \$OUT/anchor.csv)"
        set +e
        OUT="$OUT" timeout --kill-after=10 "$TORCH_TIMEOUT_S" python3 "$script" 2>&1 | tee "$OUT/torch.txt"
        rc[torch]=${PIPESTATUS[0]}
        set -e
    else
        echo "run-on-gpu: $script is missing (publish.sh copies it)" | tee "$OUT/torch.txt"
        rc[torch]=1
    fi
fi

if want torch-extra; then
    echo "== torch_decode_reference.py (limit ${TORCH_TIMEOUT_S} s; rows in \$OUT/torch-extra.csv)"
    set +e
    OUT="$OUT" timeout --kill-after=10 "$TORCH_TIMEOUT_S" python3 "$here/torch_decode_reference.py" 2>&1 | tee -a "$OUT/torch.txt"
    rc[torch-extra]=${PIPESTATUS[0]}
    set -e
fi

if want startup; then
    # Twice, in two processes over one fresh kernel cache: the first compiles every kernel and writes the cache, the
    # second is the next worker process on the node (its rows say from-disk-cache=1). Both land in startup.csv.
    export GEMS_KERNEL_CACHE="${TMPDIR:-/tmp}/gems-kernel-cache-$$"
    rm -rf "$GEMS_KERNEL_CACHE"
    run_harness startup "$STARTUP_TIMEOUT_S" --device "$HARNESS_DEVICE" --suite startup --csv "$OUT/startup.csv"
    run_harness startup-second-process "$STARTUP_TIMEOUT_S" --device "$HARNESS_DEVICE" --suite startup --csv "$OUT/startup-second.tmp"
    # Gems.Enable itself, in a third fresh process: what a worker's start-up block costs (target <= 100 ms).
    run_harness enable-probe "$STARTUP_TIMEOUT_S" --device "$HARNESS_DEVICE" --enable-probe --csv "$OUT/enable-probe.tmp"
    for part in startup-second enable-probe; do
        if [[ -f "$OUT/$part.tmp" ]]; then
            tail -n +2 "$OUT/$part.tmp" >>"$OUT/startup.csv"
            rm -f "$OUT/$part.tmp"
        fi
    done
    echo "kernel cache: $(ls "$GEMS_KERNEL_CACHE" 2>/dev/null | wc -l) files in $GEMS_KERNEL_CACHE" | tee -a "$log"
    unset GEMS_KERNEL_CACHE
fi

if want accuracy; then
    run_harness selftest 60 --device "$HARNESS_DEVICE" --selftest
    run_harness accuracy $(( ACCURACY_BUDGET_S + 120 )) --device "$HARNESS_DEVICE" --suite accuracy --budget-s "$ACCURACY_BUDGET_S" --csv "$OUT/accuracy.csv"
fi

if want bench; then
    # Its own kernel cache, so the resources step can read the PTX of exactly the kernels this bench ran.
    bench_cache="${TMPDIR:-/tmp}/gems-bench-cache-$$"
    rm -rf "$bench_cache"
    export GEMS_KERNEL_CACHE="$bench_cache"
    run_harness bench $(( BENCH_BUDGET_S + 120 )) --device "$HARNESS_DEVICE" --suite bench --budget-s "$BENCH_BUDGET_S" --csv "$OUT/bench.csv"
    unset GEMS_KERNEL_CACHE
fi

if want resources; then
    ptxas="$(python3 -c 'import os, triton; print(os.path.join(os.path.dirname(triton.__file__), "backends", "nvidia", "bin", "ptxas"))' 2>/dev/null || true)"
    if [[ -x "$ptxas" && -d "${bench_cache:-}" ]]; then
        echo "kernel,registers,stack_bytes,spill_store_bytes,spill_load_bytes,shared_bytes,ptxas_error" >"$OUT/resources.csv"
        # One ptxas per core: a bench compiles a few hundred kernels.
        export ptxas
        find "$bench_cache" -name '*.ptx' -print0 | xargs -0 -P "$(nproc)" -n 1 bash -c '
            # ILGPU writes the PTX ISA of the installed driver, which can be newer than Triton'"'"'s ptxas reads; the
            # kernels use nothing past ISA 8.0, so the copy checked here declares that. A ptxas error lands in a column.
            tmp="$(mktemp --suffix .ptx)"
            sed -E "s/^\.version [0-9.]+/.version 8.0/" "$0" >"$tmp"
            "$ptxas" -arch=sm_90 -v "$tmp" -o /dev/null 2>&1 | awk -v k="$(basename "$0" .ptx)" "
                /error/ && err == \"\" { err = \$0; gsub(/,/, \";\", err) }
                /bytes stack frame/ { stack = \$1; st = \$5; ld = \$9 }
                /Used [0-9]+ registers/ { for (i = 1; i <= NF; i++) { if (\$(i + 1) ~ /^registers/) r = \$i; if (\$(i + 1) ~ /^bytes\$/ && \$(i + 2) ~ /^smem/) sm = \$i } }
                END { printf \"%s,%s,%s,%s,%s,%s,%s\\n\", k, r, stack, st, ld, (sm == \"\" ? 0 : sm), err }"
            rm -f "$tmp"' | sort >>"$OUT/resources.csv"
        rc[resources]=0
        echo "resources: $(( $(wc -l <"$OUT/resources.csv") - 1 )) kernels; tools here: $(command -v ncu nsys cuobjdump nvdisasm 2>/dev/null | tr '\n' ' ')"
    else
        echo "run-on-gpu: resources needs Triton's ptxas ('$ptxas') and the bench step's kernel cache in the same call"
        rc[resources]=1
    fi
fi

if want compare; then
    if [[ -f "$OUT/bench.csv" ]]; then
        set +e
        fallback=()
        if [[ -f "$root/.gpu/flaggems_fallback.csv" ]]; then
            fallback=(--gems-fallback "$root/.gpu/flaggems_fallback.csv")
        fi
        python3 "$here/compare.py" --bench "$OUT/bench.csv" --torch "$OUT/anchor.csv" --torch-log "$OUT/torch.txt" \
            --torch-extra "$OUT/torch-extra.csv" "${fallback[@]}" --out "$OUT/compare.md"
        rc[compare]=$?
        set -e
    else
        echo "run-on-gpu: no $OUT/bench.csv to compare"
        rc[compare]=1
    fi
fi

# Short summary: per suite PASS / FAIL / SKIP counts (status is column 9 of the harness CSVs), exit codes, files.
echo
echo "== run-on-gpu summary ($(( $(date +%s) - start )) s, $(date -u +%Y-%m-%dT%H:%MZ))"
sed -n 2p "$OUT/nvidia-smi.txt" 2>/dev/null | sed 's/^/card: /' || true
for s in smi torch torch-extra startup startup-second-process enable-probe selftest accuracy bench resources compare; do
    [[ -n "${rc[$s]:-}" ]] || continue
    f="$OUT/$s.csv"
    if [[ -f "$f" ]]; then
        counts=$(awk -F, 'NR > 1 { n[$9]++ } END { printf "PASS %d  FAIL %d  SKIP %d", n["PASS"], n["FAIL"], n["SKIP"] }' "$f")
        echo "$s: exit ${rc[$s]}; $counts"
        awk -F, 'NR > 1 && $9 == "FAIL" { printf "   FAIL %s %s %s\n", $2, $3, $4 }' "$f" | head -20
    else
        echo "$s: exit ${rc[$s]}"
    fi
done
if [[ -f "$OUT/compare.md" ]]; then
    grep -E '^(Targets met|- MISS)' "$OUT/compare.md" | head -30 || true
fi
ls -la "$OUT"

status=0
for s in "${!rc[@]}"; do
    if [[ "${rc[$s]}" != 0 ]]; then
        status=1
    fi
done
exit "$status"
