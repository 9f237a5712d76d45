#!/usr/bin/env bash
# Publishes the GPU harness self-contained (linux-x64, untrimmed: trimming breaks ILGPU) and packs it for the GPU
# machine, which has no .NET SDK and no network. Run HERE, from anywhere inside the repository:
#   tests/GemsInjector.GpuHarness/publish.sh
# Produces (in the repository root, ignored through .git/info/exclude):
#   .gpu/harness.tar.xz              the published harness (must stay < 40 MB), with the kernels precompiled to PTX
#                                    (harness/GemsInjector.Kernels.ptx.zip, ~2 MB; GEMS_PRECOMPILE_KERNELS=0: without)
#   .gpu/precompile.log              each kernel's IL -> PTX time on this machine
#   .gpu/torch_reference_bench.py    the PyTorch / FlagGems reference script (from /work/shared/anchors)
#   .gpu/flaggems_fallback.csv       the 2026-11-28 H100 PyTorch/FlagGems figures (used, marked, only where FlagGems gives none)
# Then on the GPU machine, from the copied tree's root: tests/GemsInjector.GpuHarness/run-on-gpu.sh
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(git -C "$here" rev-parse --show-toplevel)"
anchor="${TORCH_REFERENCE_BENCH:-/work/shared/anchors/torch_reference_bench.py}"
limit_mb=40

cd "$root"
mkdir -p .gpu

# .gpu/ must never be committed; append the exclude line once.
exclude="$(git rev-parse --git-path info/exclude)"
if ! grep -qxF '.gpu/' "$exclude" 2>/dev/null; then
    echo '.gpu/' >>"$exclude"
    echo "publish: added .gpu/ to $exclude"
fi

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

echo "publish: dotnet publish (self-contained, linux-x64, untrimmed) ..."
if ! dotnet publish "$here/GemsInjector.GpuHarness.csproj" -c Release -r linux-x64 --self-contained \
    -p:PublishTrimmed=false -p:DebugType=none -p:GenerateDocumentationFile=false \
    -o "$tmp/harness" -nologo -v quiet; then
    echo "publish: ERROR: dotnet publish failed (see above; a file mid-edit or a build lock: retry in a minute)" >&2
    exit 1
fi

if [[ ! -x "$tmp/harness/GemsInjector.GpuHarness" ]]; then
    echo "publish: ERROR: $tmp/harness/GemsInjector.GpuHarness was not produced" >&2
    exit 1
fi

# The kernels precompiled to PTX beside the kernel assembly (the archive a node's first process reads instead of
# compiling; keyed by this exact build of GemsInjector.Kernels.dll). GEMS_PRECOMPILE_KERNELS=0 skips it (then every
# startup process compiles, as before the archive existed).
if [[ "${GEMS_PRECOMPILE_KERNELS:-1}" != 0 ]]; then
    echo "publish: precompiling the kernels (IL -> PTX for SM_90 on this CPU, about half a minute) ..."
    if ! "$tmp/harness/GemsInjector.GpuHarness" --precompile-kernels "$tmp/harness/GemsInjector.Kernels.ptx.zip" >"$tmp/precompile.log" 2>&1; then
        echo "publish: WARNING: some kernels did not precompile (they compile at run time as before):" >&2
        grep -E 'FAILED' "$tmp/precompile.log" >&2 || tail -5 "$tmp/precompile.log" >&2
    fi
    tail -1 "$tmp/precompile.log"
    cp -f "$tmp/precompile.log" .gpu/precompile.log
fi

# Not needed on the GPU machine: the CPU libtorch is never loaded by the harness (ILGPU only).
rm -f "$tmp/harness/"*.pdb "$tmp/harness/"*.xml

echo "publish: packing .gpu/harness.tar.xz ..."
XZ_OPT="-9 -T0" tar -C "$tmp" -cJf .gpu/harness.tar.xz harness

size=$(stat -c %s .gpu/harness.tar.xz)
size_mb=$(( (size + 1048575) / 1048576 ))
unpacked_mb=$(du -sm "$tmp/harness" | cut -f1)
echo "publish: .gpu/harness.tar.xz is ${size} bytes (~${size_mb} MB; ${unpacked_mb} MB unpacked)"
if (( size >= limit_mb * 1048576 )); then
    echo "publish: ERROR: the tarball must stay under ${limit_mb} MB" >&2
    exit 1
fi

fallback="$(dirname "$anchor")/h100_torch_flaggems_2026-11-28.csv"
if [[ -f "$fallback" ]]; then
    cp -f "$fallback" .gpu/flaggems_fallback.csv
    echo "publish: copied $fallback to .gpu/flaggems_fallback.csv (FlagGems figures if flag_gems does not import there)"
fi

if [[ -f "$anchor" ]]; then
    cp -f "$anchor" .gpu/torch_reference_bench.py
    echo "publish: copied $anchor to .gpu/torch_reference_bench.py"
else
    echo "publish: WARNING: $anchor not found; copy torch_reference_bench.py to .gpu/ yourself" >&2
fi

echo "publish: done. On the GPU machine (repository root of the copied tree):"
echo "    tests/GemsInjector.GpuHarness/run-on-gpu.sh            # all steps, outputs in \$OUT"
