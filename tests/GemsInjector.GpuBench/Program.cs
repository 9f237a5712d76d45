using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Linq;
using GemsInjector.Kernels;
using GemsInjector.Kernels.Ilgpu;
using ILGPU;
using ILGPU.Runtime;

// Runs every kernel on CUDA and on the CPU simulator with the same inputs and compares the outputs; then times a few
// memory-bound kernels on CUDA. Usage: GemsInjector.GpuBench [--no-bench]
var best = IlgpuDevice.DetectBest();
Console.WriteLine($"DetectBest: {best?.ToString() ?? "none"}");
using var sim = IlgpuDevice.Create(IlgpuDeviceKind.CpuSimulator);
IlgpuDevice gpu;
try
{
    gpu = IlgpuDevice.Create(IlgpuDeviceKind.Cuda);
}
catch (IlgpuDeviceException ex)
{
    Console.WriteLine(ex.Message);
    return 2;
}

Console.WriteLine($"Device: {gpu}");
int failures = 0;
var rng = new Random(42);
float[] Rand(int n, float lo = -3, float hi = 3) => Enumerable.Range(0, n).Select(_ => lo + (float)rng.NextDouble() * (hi - lo)).ToArray();

void Compare(string name, Func<IlgpuDevice, float[]> run, double rtol = 2e-6, double atol = 1e-4)
{
    float[] a, b;
    var sw = Stopwatch.StartNew();
    try
    {
        a = run(gpu);
        b = run(sim);
    }
    catch (Exception ex)
    {
        failures++;
        Console.WriteLine($"FAIL {name}: {ex.GetType().Name}: {ex.Message}");
        return;
    }

    int bad = 0;
    double worst = 0;
    for (int i = 0; i < a.Length; i++)
    {
        double d = Math.Abs((double)a[i] - b[i]);
        bool ok = (float.IsNaN(a[i]) && float.IsNaN(b[i])) || a[i] == b[i] || d <= atol + rtol * Math.Abs(b[i]);
        if (!ok)
        {
            bad++;
        }

        if (!double.IsNaN(d))
        {
            worst = Math.Max(worst, d);
        }
    }

    if (bad > 0)
    {
        failures++;
    }

    Console.WriteLine($"{(bad == 0 ? "ok  " : "FAIL")} {name}: {a.Length} elements, {bad} off, max |diff| {worst:E2} ({sw.ElapsedMilliseconds} ms)");
}

float[] Run(IlgpuDevice d, float[][] inputs, int outLength, Action<IlgpuKernels, ArrayView<float>[], ArrayView<float>> op)
{
    var bufs = inputs.Select(x => d.Accelerator.Allocate1D(x)).ToArray();
    using var o = d.Accelerator.Allocate1D(Enumerable.Repeat(float.NaN, outLength).ToArray());
    op(d.Kernels, bufs.Select(b => (ArrayView<float>)b.View).ToArray(), o.View);
    d.Synchronize();
    var r = o.GetAsArray1D();
    foreach (var b in bufs)
    {
        b.Dispose();
    }

    return r;
}

float[] Run16(IlgpuDevice d, ushort[][] inputs, int outLength, Action<IlgpuKernels, ArrayView<ushort>[], ArrayView<ushort>> op)
{
    var bufs = inputs.Select(x => d.Accelerator.Allocate1D(x)).ToArray();
    using var o = d.Accelerator.Allocate1D(new ushort[outLength]);
    op(d.Kernels, bufs.Select(b => (ArrayView<ushort>)b.View).ToArray(), o.View);
    d.Synchronize();
    var r = o.GetAsArray1D().Select(h => (float)BitConverter.UInt16BitsToHalf(h)).ToArray();
    foreach (var b in bufs)
    {
        b.Dispose();
    }

    return r;
}

int n = 5000;
var x = Rand(n);
var y = Rand(n, 0.5f, 3f);
Compare("add", d => Run(d, new[] { x, y }, n, (k, i, o) => k.Add(i[0], i[1], 0.5f, o)));
Compare("div", d => Run(d, new[] { x, y }, n, (k, i, o) => k.Div(i[0], i[1], o)));
Compare("silu", d => Run(d, new[] { x }, n, (k, i, o) => k.Silu(i[0], o)));
Compare("gelu", d => Run(d, new[] { x }, n, (k, i, o) => k.Gelu(i[0], o)));
Compare("gelu_tanh", d => Run(d, new[] { x }, n, (k, i, o) => k.Gelu(i[0], o, GeluApproximation.Tanh)));
Compare("tanh", d => Run(d, new[] { x }, n, (k, i, o) => k.Tanh(i[0], o)));
Compare("exp", d => Run(d, new[] { x }, n, (k, i, o) => k.Exp(i[0], o)));
Compare("rsqrt", d => Run(d, new[] { y }, n, (k, i, o) => k.Rsqrt(i[0], o)));
Compare("silu_and_mul", d => Run(d, new[] { x }, n / 2, (k, i, o) => k.SiluAndMul(i[0], o, 10, n / 20)));
int rows = 7, cols = 3000;
var m = Rand(rows * cols);
var r2 = Rand(rows * cols);
var w = Rand(cols, 0.5f, 1.5f);
Compare("rms_norm", d => Run(d, new[] { m, w }, m.Length, (k, i, o) => k.RmsNorm(i[0], i[1], o, cols, 1e-6f)));
Compare("fused_add_rms_norm", d => Run(d, new[] { m, r2, w }, m.Length, (k, i, o) => { k.FusedAddRmsNorm(i[0], i[1], i[2], cols, 1e-6f); i[0].CopyTo(o); }));
Compare("layer_norm", d => Run(d, new[] { m, w, w }, m.Length, (k, i, o) => k.LayerNorm(i[0], i[1], i[2], o, cols, 1e-5f)));
Compare("softmax", d => Run(d, new[] { m }, m.Length, (k, i, o) => k.Softmax(i[0], o, cols)));
Compare("log_softmax", d => Run(d, new[] { m }, m.Length, (k, i, o) => k.LogSoftmax(i[0], o, cols)));
Compare("sum", d => Run(d, new[] { m }, rows, (k, i, o) => k.Sum(i[0], o, cols)), atol: 1e-4 * cols);
Compare("amax", d => Run(d, new[] { m }, rows, (k, i, o) => k.Amax(i[0], o, cols)));
Compare("topk(values)", d => Run(d, new[] { m }, rows * 5, (k, i, o) =>
{
    using var idx = d.Accelerator.Allocate1D<long>(rows * 5);
    k.TopK(i[0], o, idx.View, cols, 5);
    d.Synchronize();
}));
Compare("argmax", d => Run(d, new[] { m }, rows, (k, i, o) =>
{
    using var idx = d.Accelerator.Allocate1D<long>(rows);
    k.Argmax(i[0], idx.View, cols);
    d.Synchronize();
    var h = idx.GetAsArray1D().Select(v => (float)v).ToArray();
    o.CopyFromCPU(h);
}));
var cache = Rand(64 * 64, -1, 1);
var pos = Enumerable.Range(0, 9).Select(i => (long)(i * 7 % 64)).ToArray();
var rq = Rand(9 * 4 * 64);
Compare("rotary", d => Run(d, new[] { rq, cache }, 9 * 4 * 64, (k, i, o) =>
{
    using var p = d.Accelerator.Allocate1D(pos);
    k.RotaryEmbedding(p.View, i[0], ArrayView<float>.Empty, i[1], 64, 64, true);
    d.Synchronize();
    i[0].CopyTo(o);
}));
int mm = 33, kk = 70, nn = 45;
var a = Rand(mm * kk);
var b = Rand(kk * nn);
Compare("mm", d => Run(d, new[] { a, b }, mm * nn, (k, i, o) => k.Mm(i[0], i[1], o, mm, kk, nn)), atol: 1e-4 * kk);
var bias = Rand(nn);
Compare("addmm", d => Run(d, new[] { bias, a, b }, mm * nn, (k, i, o) => k.Addmm(i[0], i[1], i[2], o, mm, kk, nn, 0.5f, 2f)), atol: 1e-4 * kk);
int heads = 4, kvh = 2, lq = 40, lk = 70, hd = 64;
var q = Rand(heads * lq * hd, -1, 1);
var kv = Rand(kvh * lk * hd, -1, 1);
var vv = Rand(kvh * lk * hd);
Compare("sdpa", d => Run(d, new[] { q, kv, vv }, q.Length, (k, i, o) => k.ScaledDotProductAttention(i[0], i[1], i[2], o, 1, heads, kvh, lq, lk, hd)), atol: 1e-4 * 4);
Compare("sdpa causal", d => Run(d, new[] { q, kv, vv }, q.Length, (k, i, o) => k.ScaledDotProductAttention(i[0], i[1], i[2], o, 1, heads, kvh, lq, lk, hd, causal: true)), atol: 1e-4 * 4);
var h16 = m.Select(v => BitConverter.HalfToUInt16Bits((System.Half)v)).ToArray();
var w16 = w.Select(v => BitConverter.HalfToUInt16Bits((System.Half)v)).ToArray();
Compare("rms_norm f16", d => Run16(d, new[] { h16, w16 }, h16.Length, (k, i, o) => k.RmsNorm(i[0], i[1], o, cols, 1e-6f, HalfFormat.Float16)), rtol: 1e-3);
Compare("softmax f16", d => Run16(d, new[] { h16 }, h16.Length, (k, i, o) => k.Softmax(i[0], o, cols, HalfFormat.Float16)), rtol: 1e-3);

Console.WriteLine($"compare: {failures} failed");
Console.WriteLine("compile times (first call, CUDA): " + string.Join(", ", gpu.CompileTimes.OrderBy(p => p.Key).Select(p => $"{p.Key} {p.Value.TotalMilliseconds:F0} ms")));

if (!args.Contains("--no-bench"))
{
    var acc = gpu.Accelerator;
    void Time(string name, double bytes, Action run)
    {
        run();
        gpu.Synchronize();
        // Host stopwatch around 10 launches + synchronize (ILGPU profiling markers need a profiling context).
        var times = new List<double>();
        for (int i = 0; i < 7; i++)
        {
            var sw = Stopwatch.StartNew();
            for (int j = 0; j < 10; j++)
            {
                run();
            }

            gpu.Synchronize();
            times.Add(sw.Elapsed.TotalMilliseconds / 10);
        }

        times.Sort();
        double med = times[times.Count / 2];
        Console.WriteLine($"bench {name}: median {med:F3} ms, {bytes / (med * 1e-3) / 1e9:F0} GB/s");
    }

    const int big = 64 << 20;
    using var ba = acc.Allocate1D<float>(big);
    using var bb = acc.Allocate1D<float>(big);
    using var bc = acc.Allocate1D<float>(big);
    ba.MemSetToZero();
    bb.MemSetToZero();
    Time("add 64M f32", 3.0 * 4 * big, () => gpu.Kernels.Add(ba.View, bb.View, 1f, bc.View));
    int r = 4096, c = 4096;
    var sub = ba.View.SubView(0, (long)r * c);
    var subo = bc.View.SubView(0, (long)r * c);
    Time("softmax 4096x4096 f32", 2.0 * 4 * r * c, () => gpu.Kernels.Softmax(sub, subo, c));
    Time("rms_norm 4096x4096 f32", 2.0 * 4 * r * c, () => gpu.Kernels.RmsNorm(sub, bb.View.SubView(0, c), subo, c, 1e-6f));
    Time("silu_and_mul 4096x(2x4096) f32", 3.0 * 4 * r * c, () => gpu.Kernels.SiluAndMul(ba.View.SubView(0, 2L * r * c), subo, r, c));
    int gm = 1024;
    Time("mm 1024^3 f32 (GFLOP/s shown as GB/s column x1)", 2.0 * gm * gm * gm, () => gpu.Kernels.Mm(ba.View.SubView(0, gm * gm), bb.View.SubView(0, gm * gm), subo.SubView(0, gm * gm), gm, gm, gm));
}

gpu.Dispose();
return failures == 0 ? 0 : 1;
