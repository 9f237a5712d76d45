#!/usr/bin/env bash
# Session 37, Run 224: does the driver's JIT take longer on PTX with the L2 prefetch qualifier (Attempt 20)? Run 221's
# large decode-attention first calls were 100-200 ms slower with it, while ptxas 12.8 was not (Run 220). Here the
# driver itself (cuModuleLoadDataEx, CUDA_CACHE_DISABLE=1 so nothing comes from its cache) loads each attention kernel of
# the shipped archive and six large GEMM kernels as ILGPU wrote them and with .L2::128B added as PtxL2Prefetch adds it,
# sm_90a where the loader would write it, three rounds, the two forms alternating in order; per-kernel medians.
set -uo pipefail
export LD_LIBRARY_PATH="/usr/local/nvidia/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export CUDA_CACHE_DISABLE=1
R=$OUT/run224; mkdir -p $R
dir=/tmp/gems-jit2; rm -rf $dir; mkdir -p $dir; tar -xJf .gpu/harness.tar.xz -C $dir harness/GemsInjector.Kernels.ptx.zip
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader > $R/gpu.txt
python3 - "$dir/harness/GemsInjector.Kernels.ptx.zip" > $R/summary.txt 2>&1 <<'PY'
import ctypes, zipfile, re, sys, time, statistics
z = zipfile.ZipFile(sys.argv[1])
cu = ctypes.CDLL('libcuda.so.1')
def ok(r, what):
    if r != 0: raise RuntimeError(f'{what}: CUresult {r}')
ok(cu.cuInit(0), 'cuInit'); dev = ctypes.c_int(); ok(cu.cuDeviceGet(ctypes.byref(dev), 0), 'cuDeviceGet')
ctx = ctypes.c_void_p(); ok(cu.cuDevicePrimaryCtxRetain(ctypes.byref(ctx), dev), 'retain'); ok(cu.cuCtxSetCurrent(ctx), 'set')
ver = ctypes.c_int(); cu.cuDriverGetVersion(ctypes.byref(ver)); print('driver CUDA version', ver.value)
load = re.compile(r'\bld\.global\.(?=(?:v[248]\.)?[bfsu](?:8|16|32|64)\b)')
copy = re.compile(r'\bcp\.async\.(c[ag])\.shared\.global(?=[ \t])')
def hinted(t): return copy.sub(r'cp.async.\1.shared.global.L2::128B', load.sub('ld.global.L2::128B.', t))
def sm90a(t):
    needs = any(k in t for k in ('wgmma.', 'cp.async.bulk.', 'm16n8k8.row.col.f64', 'reqnctapercluster', '// gems: cluster', 'setmaxnreg'))
    return re.sub(r'^\.target sm_\d+a?', '.target sm_90a', t, count=1, flags=re.M) if needs else t
def jit(text):
    mod = ctypes.c_void_p(); b = text.encode() + b'\0'
    s = time.perf_counter(); r = cu.cuModuleLoadDataEx(ctypes.byref(mod), b, 0, None, None); e = time.perf_counter() - s
    if r == 0: cu.cuModuleUnload(mod)
    return e * 1000, r
names = [n for n in z.namelist() if n.startswith('Attention')]
names += [n for n in z.namelist() if re.match(r'(WgmmaGemmKernels\.Gemm16Wgmma\.Bf16MnMajorB|GemvDmmaF32Kernels|SkinnyTensorCoreKernels\.Gemm16SkinnyNkAhead)', n)][:6]
rows = []
jit(sm90a(z.read(names[0]).decode()))  # warm the driver's compiler once
for n in names:
    t = sm90a(z.read(n).decode()); h = hinted(t)
    res = {'plain': [], 'hint': []}; err = None
    for i in range(3):
        for v in (('plain', 'hint') if i % 2 == 0 else ('hint', 'plain')):
            ms, r = jit(h if v == 'hint' else t)
            if r: err = f'{v} CUresult {r}'
            res[v].append(ms)
    p, q = statistics.median(res['plain']), statistics.median(res['hint'])
    rows.append((n.split('-')[0], len(t), t.count('ld.global'), p, q, err))
print(f"{'kernel':80} {'chars':>7} {'ld.global':>9} {'plain ms':>9} {'hint ms':>9} {'ratio':>6}")
for n, size, lds, p, q, err in sorted(rows, key=lambda r: -r[4]):
    print(f"{n:80} {size:7} {lds:9} {p:9.1f} {q:9.1f} {q / p:6.2f} {err or ''}")
tp = sum(r[3] for r in rows); th = sum(r[4] for r in rows)
print(f"sum over {len(rows)} kernels: plain {tp:.0f} ms, hint {th:.0f} ms, ratio {th / tp:.3f}")
PY
cat $R/gpu.txt $R/summary.txt
cd $OUT && tar czf run224.tgz run224 && rm -rf run224
