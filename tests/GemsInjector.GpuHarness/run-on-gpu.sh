#!/usr/bin/env bash
# Runs the GPU harness and the PyTorch reference on the GPU machine, from the repository root of the copied tree.
# Needs (made by publish.sh on the dev machine; carry the ignored .gpu folder with the device call):
#   .gpu/harness.tar.xz            the self-contained published harness
#   .gpu/torch_reference_bench.py  the PyTorch / FlagGems reference script
# Usage:
#   tests/GemsInjector.GpuHarness/run-on-gpu.sh [STEP ...]
#   steps: smi torch torch-extra startup accuracy bench resources compare profile ab trace   (default: smi torch startup
#   accuracy bench compare, in that order; torch-extra, resources, profile, ab and trace only when named)
#   torch-extra: torch_decode_reference.py (decode GEMVs, small-M products, attention) -> torch-extra.csv
#   resources:   ptxas -v (Triton's copy) over every kernel the bench compiled -> resources.csv (registers, spills,
#                shared memory per kernel); needs the bench step in the same call
#   profile:     Nsight Compute (`ncu --set full`) over the bench cases of each filter in PROFILE_FILTERS (';'-separated),
#                PROFILE_LAUNCHES launches each after the first (default 4) -> profile.md (ncu_summary.py: per kernel the
#                duration, DRAM rate, occupancy, stall reasons, opcode mix and hottest basic blocks) and profile.tar.xz
#                (the details pages and per-instruction source CSVs). Run it in a call of its own: it adds two files.
#   ab:          two builds in alternating processes: "new" is .gpu/harness.tar.xz, "old" the same with AB_OLD_OVERLAY
#                (default .gpu/harness-old-overlay.tar.xz: the other build's differing files, e.g. harness/GemsInjector.dll,
#                GemsInjector.Kernels.dll, GemsInjector.Kernels.ptx.zip, GemsInjector.GpuHarness.dll) laid over it;
#                AB_OLD_OVERLAY=none runs the same build on both sides (two settings through AB_ENV_OLD / AB_ENV_NEW).
#                AB_ROUNDS rounds (default 4) of an old then a new process, each --suite AB_SUITES (default accuracy,bench;
#                "bench" alone checks each case once, before timing it, instead of twice: Run 194's float64 checks of
#                4096-token d 128 cases spent the whole budget) over AB_FILTER
#                (required; harness filter) with AB_BUDGET_S (default 35); AB_ENV_OLD / AB_ENV_NEW add VAR=VALUE words to
#                that build's processes -> ab.csv (every row, with its process) and ab.md (ab_summary.py: accuracy counts,
#                per case and build the median and range of the processes, the speed change, and a note where a build's
#                processes fall into two modes). Some rows are bimodal per process (Run 129): use six rounds or more.
#                Run it in a call of its own: it adds two files.
#   trace:       --decode-trace over TRACE_LAUNCHES launches (default 200): the float32 batch-1 decode with every group's
#                timeline stamped by the GPU's timer -> trace.md (where the time goes) and trace.csv (the stamps).
#                Run it in a call of its own (or beside ab): it adds two files.
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
        smi|torch|torch-extra|startup|accuracy|bench|resources|compare|profile|ab|trace) ;;
        *) echo "run-on-gpu: unknown step '$s' (steps: smi torch torch-extra startup accuracy bench resources compare profile ab trace)" >&2; exit 2 ;;
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

# run_harness NAME TIMEOUT ARGS...: runs one suite in its own process (startup needs a fresh process), log appended;
# run_env (VAR=VALUE words) is that process's extra environment.
run_env=()
run_harness() {
    local name="$1" limit="$2"
    shift 2
    unpack
    echo "== run-on-gpu: $name (limit ${limit} s): GemsInjector.GpuHarness $*" | tee -a "$log"
    set +e
    timeout --kill-after=10 "$limit" env "${run_env[@]}" "$harness_bin" "$@" "${extra[@]}" 2>&1 | tee -a "$log"
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
    # Fresh processes, all rows in startup.csv; GEMS_STARTUP_PROCESS tags each process's rows (note column:
    # "process=NAME from-disk-cache=N from-shipped=N driver-cache=on|off"). Each process gets the CUDA driver's compute
    # cache (CUDA_CACHE_PATH) it should see, so "cold" does not depend on what ran on this machine before.
    #   first         node's first process, as before the shipped archive: ILGPU compiles every kernel (IL -> PTX), the
    #                 driver JIT-compiles it (PTX -> SASS) into an empty compute cache; writes the kernel cache
    #   second        next process on the node: kernel cache and driver cache both warm (the <= 10 ms target)
    #   driver-jit    reads the kernel cache the first one wrote, driver cache off (CUDA_CACHE_DISABLE=1): its first
    #                 calls are the driver's PTX -> SASS JIT and module load alone; first minus driver-jit = ILGPU's part
    #   shipped       node's first process with the fix: empty kernel cache, empty driver cache, kernels read from the
    #                 archive shipped beside the kernel assembly (GemsInjector.Kernels.ptx.zip, made by publish.sh)
    # The first three run with GEMS_SHIPPED_KERNELS=off so they measure what they did before the archive existed.
    startup_root="${TMPDIR:-/tmp}/gems-startup-$$"
    rm -rf "$startup_root"
    mkdir -p "$startup_root"
    # startup_process NAME KERNEL_CACHE DRIVER_CACHE SHIPPED [VAR=VALUE ...]: one startup process, rows into startup.csv.
    startup_process() {
        local name="$1" kernel_cache="$2" driver_cache="$3" shipped="$4"
        shift 4
        local csv="$OUT/startup-$name.tmp"
        [[ "$name" == first ]] && csv="$OUT/startup.csv"
        run_env=(GEMS_STARTUP_PROCESS="$name" GEMS_KERNEL_CACHE="$kernel_cache" CUDA_CACHE_PATH="$driver_cache" GEMS_SHIPPED_KERNELS="$shipped" "$@")
        run_harness "startup-$name" "$STARTUP_TIMEOUT_S" --device "$HARNESS_DEVICE" --suite startup --csv "$csv"
        run_env=()
        if [[ "$csv" != "$OUT/startup.csv" && -f "$csv" ]]; then
            tail -n +2 "$csv" >>"$OUT/startup.csv"
            rm -f "$csv"
        fi
    }
    startup_process first "$startup_root/kernels" "$startup_root/driver-cache" off
    startup_process second "$startup_root/kernels" "$startup_root/driver-cache" off
    startup_process driver-jit "$startup_root/kernels" "$startup_root/driver-cache-unused" off CUDA_CACHE_DISABLE=1
    startup_process shipped "$startup_root/kernels-shipped" "$startup_root/driver-cache-shipped" on
    # As shipped, but small shapes on the large-shape kernels (GEMS_SMALL_SHAPE_KERNELS=off): the JIT the small-shape
    # dispatch saves, in the same run.
    startup_process shipped-large "$startup_root/kernels-shipped-large" "$startup_root/driver-cache-shipped-large" on GEMS_SMALL_SHAPE_KERNELS=off
    # Gems.Enable itself, in a fresh process: what a worker's start-up block costs (target <= 100 ms).
    run_env=(GEMS_KERNEL_CACHE="$startup_root/kernels")
    run_harness enable-probe "$STARTUP_TIMEOUT_S" --device "$HARNESS_DEVICE" --enable-probe --csv "$OUT/enable-probe.tmp"
    run_env=()
    if [[ -f "$OUT/enable-probe.tmp" ]]; then
        tail -n +2 "$OUT/enable-probe.tmp" >>"$OUT/startup.csv"
        rm -f "$OUT/enable-probe.tmp"
    fi
    echo "kernel cache: $(ls "$startup_root/kernels" 2>/dev/null | wc -l) files written by the first process;" \
        "$(ls "$startup_root/kernels-shipped" 2>/dev/null | wc -l) by the shipped one (kernels not in the archive);" \
        "driver cache after first: $(du -sk "$startup_root/driver-cache" 2>/dev/null | cut -f1) KiB, after shipped: $(du -sk "$startup_root/driver-cache-shipped" 2>/dev/null | cut -f1) KiB" | tee -a "$log"
fi

if want accuracy; then
    run_harness selftest 60 --device "$HARNESS_DEVICE" --selftest
    run_harness accuracy $(( ACCURACY_BUDGET_S + 120 )) --device "$HARNESS_DEVICE" --suite accuracy --budget-s "$ACCURACY_BUDGET_S" --csv "$OUT/accuracy.csv"
fi

if want bench; then
    # Its own kernel cache, so the resources step can read the PTX of exactly the kernels this bench ran (compiled
    # here, not read from the shipped archive, which is never copied into a cache).
    bench_cache="${TMPDIR:-/tmp}/gems-bench-cache-$$"
    rm -rf "$bench_cache"
    export GEMS_KERNEL_CACHE="$bench_cache" GEMS_SHIPPED_KERNELS=off
    run_harness bench $(( BENCH_BUDGET_S + 120 )) --device "$HARNESS_DEVICE" --suite bench --budget-s "$BENCH_BUDGET_S" --csv "$OUT/bench.csv"
    unset GEMS_KERNEL_CACHE GEMS_SHIPPED_KERNELS
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

if want profile; then
    ncu_bin="$(command -v ncu || ls /usr/local/cuda/bin/ncu /opt/nvidia/nsight-compute/*/ncu 2>/dev/null | head -1 || true)"
    if [[ -x "$ncu_bin" && -n "${PROFILE_FILTERS:-}" ]]; then
        unpack
        work="${TMPDIR:-/tmp}/gems-profile-$$"
        rm -rf "$work" && mkdir -p "$work/profile"
        export GEMS_KERNEL_CACHE="$work/cache"
        rc[profile]=0
        IFS=';' read -r -a filters <<<"$PROFILE_FILTERS"
        i=0
        for f in "${filters[@]}"; do
            i=$((i + 1))
            echo "$f" >"$work/profile/case$i.txt"
            echo "== run-on-gpu: profile $i: $f" | tee -a "$log"
            # One unprofiled process first, so the profiled one reads its kernels from the cache instead of compiling.
            timeout 180 "$harness_bin" --device cuda --suite bench --filter "$f" --runs 3 --budget-s 30 >>"$log" 2>&1 || true
            # The clocks stay as they are (the device tool's METHOD.md); each launch is replayed per metric group.
            if timeout 300 "$ncu_bin" --clock-control none --set full --import-source no --launch-skip 1 \
                --launch-count "${PROFILE_LAUNCHES:-4}" -o "$work/r$i" -f \
                "$harness_bin" --device cuda --suite bench --filter "$f" --runs 3 --budget-s 60 >>"$log" 2>&1; then
                "$ncu_bin" --import "$work/r$i.ncu-rep" --page details >"$work/profile/details$i.txt" 2>&1
                "$ncu_bin" --import "$work/r$i.ncu-rep" --page source --csv --print-source sass >"$work/profile/source$i.csv" 2>&1
            else
                echo "run-on-gpu: profile $i failed (log: harness.log)"
                rc[profile]=1
            fi
        done
        python3 "$here/ncu_summary.py" "$work/profile" >"$OUT/profile.md" || rc[profile]=1
        tar -C "$work" -cJf "$OUT/profile.tar.xz" profile
        rm -rf "$work"
        echo "profile: $i case(s) -> profile.md, profile.tar.xz"
    else
        echo "run-on-gpu: profile needs ncu ('$ncu_bin') and PROFILE_FILTERS (harness filters separated by ';')"
        rc[profile]=1
    fi
fi

if want ab; then
    AB_ROUNDS="${AB_ROUNDS:-4}"
    AB_BUDGET_S="${AB_BUDGET_S:-35}"
    AB_SUITES="${AB_SUITES:-accuracy,bench}"
    overlay="${AB_OLD_OVERLAY:-$root/.gpu/harness-old-overlay.tar.xz}"
    if [[ -z "${AB_FILTER:-}" || ( "$overlay" != none && ! -f "$overlay" ) ]]; then
        echo "run-on-gpu: ab needs AB_FILTER (a harness filter) and the old build's overlay '$overlay'" | tee -a "$log"
        rc[ab]=2
    else
        unpack
        old_dir="${TMPDIR:-/tmp}/gems-gpu-harness-old"
        rm -rf "$old_dir" && mkdir -p "$old_dir"
        tar -xJf "$root/.gpu/harness.tar.xz" -C "$old_dir"
        [[ "$overlay" == none ]] || tar -xJf "$overlay" -C "$old_dir"
        work="${TMPDIR:-/tmp}/gems-ab-$$"
        rm -rf "$work" && mkdir -p "$work"
        read -r -a env_old <<<"${AB_ENV_OLD:-}"
        read -r -a env_new <<<"${AB_ENV_NEW:-}"
        rc[ab]=0
        for (( round = 1; round <= AB_ROUNDS; round++ )); do
            for build in old new; do
                if [[ $build == old ]]; then bin="$old_dir/harness/GemsInjector.GpuHarness"; envs=("${env_old[@]}"); else bin="$harness_bin"; envs=("${env_new[@]}"); fi
                echo "== run-on-gpu: ab $build-$round: ${envs[*]} GemsInjector.GpuHarness --suite $AB_SUITES --filter '$AB_FILTER'" | tee -a "$log"
                set +e
                timeout --kill-after=10 $(( AB_BUDGET_S + 60 )) env "${envs[@]}" "$bin" --device "$HARNESS_DEVICE" --suite "$AB_SUITES" \
                    --filter "$AB_FILTER" --budget-s "$AB_BUDGET_S" --csv "$work/$build-$round.csv" "${extra[@]}" >>"$log" 2>&1
                code=$?
                set -e
                echo "== run-on-gpu: ab $build-$round exit $code" | tee -a "$log"
                (( code == 0 )) || rc[ab]=1
            done
        done
        python3 "$here/ab_summary.py" "$work" "$OUT/ab.csv" >"$OUT/ab.md" || rc[ab]=1
        cat "$OUT/ab.md"
    fi
fi

if want trace; then
    unpack
    set +e
    timeout --kill-after=10 300 "$harness_bin" --device "$HARNESS_DEVICE" --decode-trace "${TRACE_LAUNCHES:-200}" --csv "$OUT/trace.csv" \
        "${extra[@]}" >"$OUT/trace.md" 2>&1
    rc[trace]=$?
    set -e
    cat "$OUT/trace.md"
fi

# Short summary: per suite PASS / FAIL / SKIP counts (status is column 9 of the harness CSVs), exit codes, files.
echo
echo "== run-on-gpu summary ($(( $(date +%s) - start )) s, $(date -u +%Y-%m-%dT%H:%MZ))"
sed -n 2p "$OUT/nvidia-smi.txt" 2>/dev/null | sed 's/^/card: /' || true
for s in smi torch torch-extra startup-first startup-second startup-driver-jit startup-shipped enable-probe selftest accuracy bench resources compare profile ab trace; do
    [[ -n "${rc[$s]:-}" ]] || continue
    f="$OUT/$s.csv"
    if [[ -f "$f" && $s != ab ]]; then
        counts=$(awk -F, 'NR > 1 { n[$9]++ } END { printf "PASS %d  FAIL %d  SKIP %d", n["PASS"], n["FAIL"], n["SKIP"] }' "$f")
        echo "$s: exit ${rc[$s]}; $counts"
        awk -F, 'NR > 1 && $9 == "FAIL" { printf "   FAIL %s %s %s\n", $2, $3, $4 }' "$f" | head -20
    else
        echo "$s: exit ${rc[$s]}"
    fi
done
if [[ -f "$OUT/startup.csv" ]]; then
    # First calls per startup process: how many exceed the 150 ms target, the slowest, the median.
    python3 - "$OUT/startup.csv" <<'PY' || true
import csv, statistics, sys
by = {}
for r in csv.DictReader(open(sys.argv[1])):
    if r["category"] and r["ms"]:
        tag = next((w[8:] for w in r["note"].split() if w.startswith("process=")), "?")
        by.setdefault(tag, []).append((float(r["ms"]), r["op"] + " " + r["dtype"]))
for tag, rows in by.items():
    worst = max(rows)
    print(f"startup {tag}: {len(rows)} first calls, {sum(ms > 150 for ms, _ in rows)} over 150 ms, median {statistics.median(ms for ms, _ in rows):.1f} ms, max {worst[0]:.1f} ms ({worst[1]})")
PY
fi
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
