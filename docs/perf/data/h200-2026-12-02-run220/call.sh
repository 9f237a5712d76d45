#!/usr/bin/env bash
# Session 36, Run 220: does the L2 prefetch qualifier (Attempt 20) slow the driver's JIT? Run 219's start-up rows that JIT
# big kernels were 30-60% slower than Run 201's. Here: ptxas (the machine's Triton, -arch=sm_90, -O3 as the driver
# JIT) on every shipped kernel's PTX as ILGPU wrote it and with .L2::128B added as PtxL2Prefetch adds it, each pair back
# to back in alternating order, 8 workers; the sum and the largest ratios.
set -uo pipefail
R=$OUT/run220; mkdir -p $R
dir=/tmp/gems-jit; rm -rf $dir; mkdir -p $dir; tar -xJf .gpu/harness.tar.xz -C $dir
bin="$(python3 -c 'import os, triton; print(os.path.join(os.path.dirname(triton.__file__), "backends", "nvidia", "bin"))' 2>/dev/null)"
"$bin/ptxas" --version > $R/ptxas-version.txt 2>&1
python3 - "$dir/harness/GemsInjector.Kernels.ptx.zip" "$bin/ptxas" > $R/summary.txt 2>&1 <<'PY'
import zipfile, re, subprocess, sys, time, os, tempfile, concurrent.futures as cf
z = zipfile.ZipFile(sys.argv[1]); ptxas = sys.argv[2]
load = re.compile(r'\bld\.global\.(?=(?:v[248]\.)?[bfsu](?:8|16|32|64)\b)')
copy = re.compile(r'\bcp\.async\.(c[ag])\.shared\.global(?=[ \t])')
tmp = tempfile.mkdtemp()
def hinted(t): return copy.sub(r'cp.async.\1.shared.global.L2::128B', load.sub('ld.global.L2::128B.', t))
def sm90a(t): return t.replace('.target sm_80', '.target sm_90a') if ('wgmma.' in t or 'cp.async.bulk.' in t or 'm16n8k8.row.col.f64' in t or 'reqnctapercluster' in t or '// gems: cluster' in t) else t
def one(i, name):
    t = z.read(name).decode()
    t = re.sub(r'^\.version .*$', '.version 8.0', t, count=1, flags=re.M)
    t = sm90a(t)
    res = {}
    order = ('plain', 'hint') if i % 2 == 0 else ('hint', 'plain')
    for v in order:
        p = os.path.join(tmp, f'{i}-{v}.ptx'); open(p, 'w').write(hinted(t) if v == 'hint' else t)
        arch = 'sm_90a' if '.target sm_90a' in t else 'sm_90'
        s = time.perf_counter(); r = subprocess.run([ptxas, f'-arch={arch}', '-O3', p, '-o', p + '.cubin'], capture_output=True, text=True); e = time.perf_counter() - s
        res[v] = (e, r.returncode, r.stderr[-300:])
    return name, res
names = [n for n in z.namelist() if n.endswith('.ptx')]
with cf.ThreadPoolExecutor(8) as ex: out = list(ex.map(lambda a: one(*a), enumerate(names)))
tp = sum(r['plain'][0] for _, r in out); th = sum(r['hint'][0] for _, r in out)
fails = [(n, v, r[v][2]) for n, r in out for v in r if r[v][1] != 0]
print(f'{len(out)} kernels; ptxas seconds: plain {tp:.1f}, hinted {th:.1f} ({100 * (th / tp - 1):+.1f}%); failures: {len(fails)}')
for f in fails[:10]: print('FAIL', f)
rows = sorted(out, key=lambda x: -(x[1]['hint'][0] - x[1]['plain'][0]))
print('largest increases (s): name plain hinted')
for n, r in rows[:15]: print(f"  {n[:90]} {r['plain'][0]:.2f} {r['hint'][0]:.2f}")
print('largest plain (s):')
for n, r in sorted(out, key=lambda x: -x[1]['plain'][0])[:10]: print(f"  {n[:90]} {r['plain'][0]:.2f} {r['hint'][0]:.2f}")
PY
cat $R/ptxas-version.txt $R/summary.txt
