using System;
using System.Collections.Generic;
using System.Linq;
using GemsInjector.Kernels.Ilgpu;
using ILGPU;
using ILGPU.Runtime;
using Xunit;

namespace GemsInjector.Kernels.Ilgpu.Tests;

/// <summary>
/// The small-shape dispatch (<c>IlgpuKernels.SmallShapes.cs</c>): with it on, short 16-bit rows, decodes over a few keys
/// and tiny float32 products take the plain kernels (cheap for the CUDA driver's JIT) and stay correct against float64;
/// one step past each limit keeps the large-shape kernel. Each case runs on a fresh simulator device, so that the
/// kernels it compiled are exactly the ones its calls chose.
/// </summary>
[Collection(SimulatorCollection.Name)]
public sealed class SmallShapeDispatchTests : Half16TestBase
{
    public SmallShapeDispatchTests(SimulatorFixture fixture)
        : base(fixture)
    {
    }

    /// <summary>A fresh simulator device with the small-shape rules forced on (they default to CUDA only).</summary>
    private sealed class Fresh : IDisposable
    {
        private readonly List<IDisposable> buffers = new();

        public Fresh(bool smallShapes = true)
        {
            Device = IlgpuDevice.Create(IlgpuDeviceKind.CpuSimulator);
            Device.Kernels.SmallShapeKernels = smallShapes;
        }

        public IlgpuDevice Device { get; }

        public IlgpuKernels K => Device.Kernels;

        public ArrayView<T> Up<T>(T[] data)
            where T : unmanaged
        {
            var b = Device.Accelerator.Allocate1D(data);
            buffers.Add(b);
            return b.View;
        }

        public T[] Down<T>(ArrayView<T> view)
            where T : unmanaged
        {
            Device.Synchronize();
            var host = new T[view.Length];
            view.CopyToCPU(host);
            return host;
        }

        /// <summary>The kernels compiled on this device so far, by name.</summary>
        public string[] Compiled => Device.CompileTimes.Keys.ToArray();

        public void Dispose()
        {
            Device.Synchronize();
            foreach (var b in buffers)
            {
                b.Dispose();
            }

            Device.Dispose();
        }
    }

    private static double[] PerRow(float[] x, int cols, Func<double[], double[]> f) =>
        Enumerable.Range(0, x.Length / cols).SelectMany(r => f(x.Skip(r * cols).Take(cols).Select(v => (double)v).ToArray())).ToArray();

    /// <summary>torch semantics: a NaN anywhere gives a NaN row; all -∞ (or a +∞) gives NaN through e^(∞ - ∞).</summary>
    private static double[] Softmax(double[] row)
    {
        if (row.Any(double.IsNaN))
        {
            return row.Select(_ => double.NaN).ToArray();
        }

        double m = row.Max();
        var e = row.Select(v => Math.Exp(v - m)).ToArray();
        double s = e.Sum();
        return e.Select(v => v / s).ToArray();
    }

    [Fact]
    public void OffByDefaultOnTheSimulatorAndTheSwitchParses()
    {
        Assert.False(K.SmallShapeKernels);
        Assert.True(SmallShapeChoice.Parse(null));
        Assert.True(SmallShapeChoice.Parse("on"));
        Assert.False(SmallShapeChoice.Parse(" OFF "));
        Assert.False(SmallShapeChoice.Parse("0"));
        Assert.False(SmallShapeChoice.Parse("false"));
    }

    /// <summary>Rows up to 128 that the vector kernels cannot take (odd widths, misaligned views), and one past the limit.</summary>
    public static TheoryData<bool, int, int, int> RowCases()
    {
        var data = new TheoryData<bool, int, int, int>();
        foreach (bool bf16 in new[] { false, true })
        {
            foreach (var (rows, cols, offset) in new[] { (3, 37, 0), (2, 1, 0), (4, 127, 0), (3, 128, 3), (2, 129, 0) })
            {
                data.Add(bf16, rows, cols, offset);
            }
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(RowCases))]
    public void ShortRows16TakeThePlainKernels(bool bf16, int rows, int cols, int offset)
    {
        int seed = 61000 + (rows * 1000) + cols + offset + (bf16 ? 1 : 0);
        var (x, xv) = Random16(seed, rows * cols, bf16);
        var (r, rv) = Random16(seed + 1, rows * cols, bf16);
        var (w, wv) = Random16(seed + 2, cols, bf16, 0.5f, 1.5f);
        var (b, bv) = Random16(seed + 3, cols, bf16);
        using var f = new Fresh();
        ArrayView<ushort> At(ushort[] data) => f.Up(Enumerable.Repeat((ushort)0, offset).Concat(data).ToArray()).SubView(offset, data.Length);
        ArrayView<ushort> Poison() => At(Enumerable.Repeat(NaN16(bf16), rows * cols).ToArray());
        void Check(ArrayView<ushort> o, double[] expected, string what) =>
            AssertClose(ToFloat(f.Down(o), bf16), expected, Rtol(bf16), Atol, $"{what} {rows}x{cols}+{offset} ({F(bf16)})", seed);

        var dx = At(x);
        var dw = At(w);
        var o = Poison();
        f.K.RmsNorm(dx, dw, o, cols, 1e-6f, F(bf16));
        Check(o, PerRow(xv, cols, row =>
        {
            double inv = 1 / Math.Sqrt(row.Average(v => v * v) + 1e-6);
            return row.Select((v, c) => v * inv * wv[c]).ToArray();
        }), "rms_norm");

        o = Poison();
        f.K.LayerNorm(dx, dw, At(b), o, cols, 1e-5f, F(bf16));
        Check(o, PerRow(xv, cols, row =>
        {
            double mean = row.Average();
            double inv = 1 / Math.Sqrt(row.Average(v => (v - mean) * (v - mean)) + 1e-5);
            return row.Select((v, c) => ((v - mean) * inv * wv[c]) + bv[c]).ToArray();
        }), "layer_norm");

        o = Poison();
        f.K.Softmax(dx, o, cols, F(bf16));
        Check(o, PerRow(xv, cols, Softmax), "softmax");
        o = Poison();
        f.K.Softmax(dx, o, cols, F(bf16), log: true);
        Check(o, PerRow(xv, cols, row => Softmax(row).Select(v => Math.Log(v)).ToArray()), "log_softmax");

        var dxi = At(x);
        var dr = At(r);
        f.K.FusedAddRmsNorm(dxi, dr, dw, cols, 1e-5f, F(bf16));
        var sum = xv.Zip(rv, (p, q) => (double)p + q).ToArray();
        Check(dr, sum, "fused_add_rms_norm residual");
        var rounded = ToFloat(To16(sum.Select(v => (float)v).ToArray(), bf16), bf16);
        var expected = new double[sum.Length];
        for (int i = 0; i < rows; i++)
        {
            double inv = 1 / Math.Sqrt(sum.Skip(i * cols).Take(cols).Average(v => v * v) + 1e-5);
            for (int c = 0; c < cols; c++)
            {
                expected[(i * cols) + c] = rounded[(i * cols) + c] * inv * wv[c];
            }
        }

        Check(dxi, expected, "fused_add_rms_norm");

        var plain = new[] { nameof(HalfKernels.RmsNorm16), nameof(HalfKernels.LayerNorm16), nameof(HalfKernels.Softmax16), nameof(HalfKernels.FusedAddRmsNorm16) };
        if (cols <= IlgpuKernels.ShortRowCols)
        {
            Assert.Equal(plain.OrderBy(s => s), f.Compiled.OrderBy(s => s));
        }
        else
        {
            Assert.Empty(f.Compiled.Intersect(plain));
            Assert.Contains(f.Compiled, name => name.StartsWith(nameof(RowWideKernels.RmsNormWide16), StringComparison.Ordinal));
            Assert.Contains(f.Compiled, name => name.StartsWith(nameof(RowStreamKernels.SoftmaxStream16), StringComparison.Ordinal));
        }
    }

    /// <summary>NaN, -∞ masks, an all -∞ row and a +∞ through the plain softmax that short rows now take.</summary>
    [Theory]
    [InlineData(false, 37)]
    [InlineData(true, 37)]
    [InlineData(false, 100)]
    [InlineData(true, 100)]
    public void ShortSoftmax16SpecialValues(bool bf16, int cols)
    {
        const int rows = 6;
        int seed = 65000 + cols + (bf16 ? 1 : 0);
        var values = Random(seed, rows * cols, -5f, 5f);
        values[1] = float.NaN;
        values[(1 * cols) + (cols / 2)] = float.NaN;
        values[(2 * cols) + cols - 1] = float.NaN;
        for (int c = 0; c < cols; c += 3)
        {
            values[(3 * cols) + c] = float.NegativeInfinity;
        }

        Array.Fill(values, float.NegativeInfinity, 4 * cols, cols);
        values[(5 * cols) + 7] = float.PositiveInfinity;
        var bits = To16(values, bf16);
        var xv = ToFloat(bits, bf16);
        using var f = new Fresh();
        var dx = f.Up(bits);
        var o = f.Up(Enumerable.Repeat(NaN16(bf16), bits.Length).ToArray());
        f.K.Softmax(dx, o, cols, F(bf16));
        AssertClose(ToFloat(f.Down(o), bf16), PerRow(xv, cols, Softmax), Rtol(bf16), Atol, "softmax special", seed);
        o = f.Up(Enumerable.Repeat(NaN16(bf16), bits.Length).ToArray());
        f.K.Softmax(dx, o, cols, F(bf16), log: true);
        AssertClose(ToFloat(f.Down(o), bf16), PerRow(xv, cols, row => Softmax(row).Select(v => Math.Log(v)).ToArray()), Rtol(bf16), Atol, "log_softmax special", seed);
        Assert.Equal(new[] { nameof(HalfKernels.Softmax16) }, f.Compiled);
    }

    [Fact]
    public void ShortRowsKeepTheLargeKernelsWhenOff()
    {
        using var f = new Fresh(smallShapes: false);
        var (x, _) = Random16(62000, 3 * 37, false);
        var (w, _) = Random16(62001, 37, false);
        f.K.RmsNorm(f.Up(x), f.Up(w), f.Up(new ushort[x.Length]), 37, 1e-6f, HalfFormat.Float16);
        f.K.Softmax(f.Up(x), f.Up(new ushort[x.Length]), 37, HalfFormat.Float16);
        f.Device.Synchronize();
        Assert.Equal(new[] { "RmsNormWide16<f16>", "SoftmaxStream16<f16>" }, f.Compiled.OrderBy(s => s));
    }

    /// <summary>mm, mm with b as [N, K], bmm and addmm (alpha, beta, a row bias) at the limits and one past each.</summary>
    public static TheoryData<int, int, int, int, bool> ProductCases() => new()
    {
        // batch, m, n, k, transposeB
        { 1, 5, 7, 9, false },
        { 1, 5, 7, 9, true },
        { 3, 5, 7, 9, false },
        { 2, 16, 16, 64, true },
        { 1, 1, 16, 64, false },
        { 1, 17, 16, 64, false },
        { 1, 16, 17, 64, false },
        { 2, 16, 16, 65, false },
    };

    [Theory]
    [MemberData(nameof(ProductCases))]
    public void TinyProductsTakeThePlainTile(int batch, int m, int n, int k, bool transposeB)
    {
        int seed = 63000 + (batch * 1000) + (m * 100) + n + k + (transposeB ? 7 : 0);
        var a = Random(seed, batch * m * k);
        var b = Random(seed + 1, batch * k * n);
        var bias = Random(seed + 2, n);
        double B(int i, int kk, int j) => transposeB ? b[(i * k * n) + (j * k) + kk] : b[(i * k * n) + (kk * n) + j];
        double[] Product(double alpha, double beta) => Enumerable.Range(0, batch * m * n).Select(e =>
        {
            int i = e / (m * n), row = e / n % m, col = e % n;
            double s = 0;
            for (int kk = 0; kk < k; kk++)
            {
                s += a[(i * m * k) + (row * k) + kk] * B(i, kk, col);
            }

            return (alpha * s) + (beta * bias[col]);
        }).ToArray();

        using var f = new Fresh();
        var c = f.Up(Enumerable.Repeat(float.NaN, batch * m * n).ToArray());
        if (batch == 1)
        {
            f.K.Mm(f.Up(a), f.Up(b), c, m, k, n, transposeB);
            AssertClose(f.Down(c), Product(1, 0), RtolF32, Atol * k, $"mm {m}x{n}x{k} tb={transposeB}", seed);
            c = f.Up(Enumerable.Repeat(float.NaN, m * n).ToArray());
            f.K.Addmm(f.Up(bias), f.Up(a), f.Up(b), c, m, k, n, beta: 0.5f, alpha: 2f, transposeB: transposeB);
            AssertClose(f.Down(c), Product(2, 0.5), RtolF32, Atol * k, $"addmm {m}x{n}x{k} tb={transposeB}", seed);
        }
        else
        {
            f.K.Bmm(f.Up(a), f.Up(b), c, batch, m, k, n, transposeB);
            AssertClose(f.Down(c), Product(1, 0), RtolF32, Atol * k, $"bmm {batch}x{m}x{n}x{k} tb={transposeB}", seed);
        }

        bool tiny = m <= IlgpuKernels.TinyProductEdge && n <= IlgpuKernels.TinyProductEdge && k <= IlgpuKernels.TinyProductK;
        if (tiny)
        {
            Assert.Equal(new[] { nameof(GemmKernels.GemmF32) }, f.Compiled);
        }
        else
        {
            Assert.DoesNotContain(nameof(GemmKernels.GemmF32), f.Compiled);
        }
    }

    /// <summary>
    /// topk of short rows with small k in each format (0 float32, 1 float16, 2 bfloat16), up to the limits and one step
    /// past each: rows with ties at the k-th value, NaN, ±∞ and ±0, as the radix kernel's cases.
    /// </summary>
    [Theory]
    [InlineData(0, 4, 37, 5)]
    [InlineData(1, 4, 37, 5)]
    [InlineData(2, 4, 37, 5)]
    [InlineData(0, 4, 128, 8)]
    [InlineData(2, 4, 128, 8)]
    [InlineData(1, 4, 6, 6)]
    [InlineData(0, 4, 129, 8)]
    [InlineData(1, 4, 128, 9)]
    public void ShortTopKTakesThePlainKernel(int format, int rows, int cols, int k)
    {
        using var f = new Fresh();
        TopKCheck.Run(f.Device, format, rows, cols, k, seed: 64000 + (format * 1000) + cols + k);
        string plain = format == 0 ? nameof(RowKernels.TopKF32) : nameof(HalfRowKernels.TopK16);
        if (cols <= IlgpuKernels.ShortRowCols && k <= IlgpuKernels.ShortTopK)
        {
            Assert.Equal(new[] { plain }, f.Compiled);
        }
        else
        {
            Assert.DoesNotContain(plain, f.Compiled);
        }
    }

    /// <summary>
    /// argmax of short rows takes the k-round topk kernel with k = 1 (rows of ties, NaN, ±∞ and ±0 as the topk cases);
    /// one column past the limit keeps <see cref="ReductionKernels.ArgmaxRows{TFormat}"/>. Output poisoned.
    /// </summary>
    [Theory]
    [InlineData(0, 5, 37)]
    [InlineData(1, 5, 37)]
    [InlineData(2, 5, 128)]
    [InlineData(0, 4, 1)]
    [InlineData(2, 4, 129)]
    public void ShortArgmaxTakesTheTopKRoundKernel(int format, int rows, int cols)
    {
        bool bf16 = format == 2;
        int seed = 64200 + (format * 1000) + cols;
        var values = TopKCheck.Rows(rows, cols, seed);
        using var f = new Fresh();
        var output = f.Up(Enumerable.Repeat(long.MinValue, rows).ToArray());
        if (format == 0)
        {
            f.K.Argmax(f.Up(values), output, cols);
        }
        else
        {
            var bits = To16(values, bf16);
            values = ToFloat(bits, bf16);
            f.K.Argmax(f.Up(bits), output, cols, F(bf16));
        }

        var got = f.Down(output);
        for (int r = 0; r < rows; r++)
        {
            long expected = TopKCheck.Expected(values.AsSpan(r * cols, cols), 1)[0];
            Assert.True(expected == got[r], $"argmax format {format} (seed {seed}) row {r}: {got[r]}, expected {expected}");
        }

        string plain = format == 0 ? nameof(RowKernels.TopKF32) : nameof(HalfRowKernels.TopK16);
        Assert.Equal(cols <= IlgpuKernels.ShortRowCols ? new[] { plain } : new[] { $"ArgmaxRows<{(format == 0 ? "f32" : bf16 ? "bf16" : "f16")}>" }, f.Compiled);
    }

    /// <summary>float16 and bfloat16 short topk load one kernel between them (the format is an argument), and off keeps the radix kernel.</summary>
    [Fact]
    public void ShortTopK16FormatsShareOneKernelAndOffKeepsTheRadixKernel()
    {
        using (var f = new Fresh())
        {
            TopKCheck.Run(f.Device, 1, 3, 37, 5, seed: 64100);
            TopKCheck.Run(f.Device, 2, 3, 37, 5, seed: 64101);
            Assert.Equal(new[] { nameof(HalfRowKernels.TopK16) }, f.Compiled);
        }

        using (var f = new Fresh(smallShapes: false))
        {
            TopKCheck.Run(f.Device, 0, 3, 37, 5, seed: 64102);
            Assert.Equal(new[] { "TopKRows<f32>" }, f.Compiled);
        }
    }

    /// <summary>Decodes over up to 32 keys (grouped-query, a mask, causal) and one past the limit, every format.</summary>
    public static TheoryData<int, int, int, int, int, int, bool, bool> DecodeCases() => new()
    {
        // format (0 f16, 1 bf16, 2 f32), batch, heads, kvHeads, lk, d, mask, causal
        { 2, 2, 4, 1, 13, 8, false, false },
        { 0, 2, 4, 1, 13, 8, false, false },
        { 1, 2, 4, 1, 13, 8, false, false },
        { 2, 1, 4, 2, 32, 16, true, false },
        { 1, 1, 4, 2, 32, 16, true, false },
        { 0, 1, 2, 2, 5, 8, false, true },
        { 2, 1, 4, 2, 33, 16, false, false },
        { 0, 1, 4, 2, 33, 16, false, false },
    };

    [Theory]
    [MemberData(nameof(DecodeCases))]
    public void ShortDecodesTakeTheGeneralKernel(int format, int batch, int heads, int kvHeads, int lk, int d, bool masked, bool causal)
    {
        int seed = 64000 + (format * 1000) + (batch * 100) + heads + lk + d + (masked ? 7 : 0);
        var q = Random(seed, batch * heads * d, -1.5f, 1.5f);
        var k = Random(seed + 1, batch * kvHeads * lk * d, -1.5f, 1.5f);
        var v = Random(seed + 2, batch * kvHeads * lk * d);
        var mask = masked ? Random(seed + 3, batch * heads * lk, -2f, 1f) : Array.Empty<float>();
        if (masked)
        {
            mask[2] = float.NegativeInfinity;
        }

        Func<int, int, int, int, double> lookup = masked ? (b, h, i, j) => mask[(((b * heads) + h) * lk) + j] : (b, h, i, j) => 0;
        using var f = new Fresh();
        var maskView = masked ? f.Up(mask) : default;
        string what = $"sdpa format={format} b={batch} {heads}/{kvHeads} lk={lk} d={d} mask={masked} causal={causal}";
        if (format == 2)
        {
            var o = f.Up(Enumerable.Repeat(float.NaN, q.Length).ToArray());
            f.K.ScaledDotProductAttention(f.Up(q), f.Up(k), f.Up(v), o, batch, heads, kvHeads, 1, lk, d, causal, maskView, scale: 0.3f);
            AssertClose(f.Down(o), AttentionTests.Reference(q, k, v, batch, heads, kvHeads, 1, lk, d, causal, lookup, 0.3), RtolF32, Atol, what, seed);
        }
        else
        {
            bool bf16 = format == 1;
            var q16 = To16(q, bf16);
            var k16 = To16(k, bf16);
            var v16 = To16(v, bf16);
            var o = f.Up(Enumerable.Repeat(NaN16(bf16), q.Length).ToArray());
            f.K.ScaledDotProductAttention(f.Up(q16), f.Up(k16), f.Up(v16), o, batch, heads, kvHeads, 1, lk, d, F(bf16), causal, maskView, scale: 0.3f);
            var expected = AttentionTests.Reference(ToFloat(q16, bf16), ToFloat(k16, bf16), ToFloat(v16, bf16), batch, heads, kvHeads, 1, lk, d, causal, lookup, 0.3);
            AssertClose(ToFloat(f.Down(o), bf16), expected, Rtol(bf16), Atol, what, seed);
        }

        string general = format == 2 ? nameof(AttentionKernels.AttentionF32) : nameof(HalfMatrixKernels.Attention16);
        if (lk <= IlgpuKernels.ShortDecodeKeys)
        {
            Assert.Equal(new[] { general }, f.Compiled);
        }
        else
        {
            Assert.DoesNotContain(general, f.Compiled);
        }
    }
}
