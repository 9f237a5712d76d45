using System;
using System.Linq;
using ILGPU;
using Xunit;

namespace GemsInjector.Kernels.Ilgpu.Tests;

[Collection(SimulatorCollection.Name)]
public sealed class RowTests : KernelTestBase
{
    public RowTests(SimulatorFixture fixture)
        : base(fixture)
    {
    }

    /// <summary>Odd sizes: one element, under a warp, not a multiple of the group (16), several loop trips.</summary>
    public static TheoryData<int, int> Shapes => new() { { 1, 1 }, { 3, 3 }, { 2, 17 }, { 5, 64 }, { 8, 300 }, { 0, 7 } };

    private static double[] PerRow(float[] x, int cols, Func<double[], double[]> f)
    {
        int rows = x.Length / cols;
        return Enumerable.Range(0, rows).SelectMany(r => f(x.Skip(r * cols).Take(cols).Select(v => (double)v).ToArray())).ToArray();
    }

    [Theory]
    [MemberData(nameof(Shapes))]
    public void RmsNorm(int rows, int cols)
    {
        int seed = 1000 + rows * 1000 + cols;
        var x = Random(seed, rows * cols);
        var w = Random(seed + 1, cols, 0.5f, 1.5f);
        var o = Poisoned(x.Length);
        K.RmsNorm(Upload(x), Upload(w), o, cols, 1e-6f);
        var expected = PerRow(x, cols, row =>
        {
            double inv = 1 / Math.Sqrt(row.Average(v => v * v) + 1e-6);
            return row.Select((v, c) => v * inv * w[c]).ToArray();
        });
        AssertClose(Download(o), expected, RtolF32, Atol, "rms_norm", seed);
    }

    [Theory]
    [MemberData(nameof(Shapes))]
    public void FusedAddRmsNorm(int rows, int cols)
    {
        int seed = 1100 + rows * 1000 + cols;
        var x = Random(seed, rows * cols);
        var r = Random(seed + 1, rows * cols);
        var w = Random(seed + 2, cols, 0.5f, 1.5f);
        var dx = Upload(x);
        var dr = Upload(r);
        K.FusedAddRmsNorm(dx, dr, Upload(w), cols, 1e-5f);
        var sum = x.Zip(r, (a, b) => a + b).ToArray();
        AssertClose(Download(dr), sum.Select(v => (double)v).ToArray(), 0, 0, "fused_add_rms_norm residual", seed);
        var expected = PerRow(sum, cols, row =>
        {
            double inv = 1 / Math.Sqrt(row.Average(v => v * v) + 1e-5);
            return row.Select((v, c) => v * inv * w[c]).ToArray();
        });
        AssertClose(Download(dx), expected, RtolF32, Atol, "fused_add_rms_norm", seed);
    }

    [Theory]
    [MemberData(nameof(Shapes))]
    public void LayerNorm(int rows, int cols)
    {
        int seed = 1200 + rows * 1000 + cols;
        var x = Random(seed, rows * cols, 2f, 6f);
        var w = Random(seed + 1, cols, 0.5f, 1.5f);
        var b = Random(seed + 2, cols);
        Func<double[], double[]> norm = row =>
        {
            double mean = row.Average();
            double inv = 1 / Math.Sqrt(row.Average(v => (v - mean) * (v - mean)) + 1e-5);
            return row.Select(v => (v - mean) * inv).ToArray();
        };
        var o = Poisoned(x.Length);
        K.LayerNorm(Upload(x), Upload(w), Upload(b), o, cols, 1e-5f);
        var expected = PerRow(x, cols, row => norm(row).Select((v, c) => v * w[c] + b[c]).ToArray());
        AssertClose(Download(o), expected, RtolF32, Atol, "layer_norm", seed);

        o = Poisoned(x.Length);
        K.LayerNorm(Upload(x), ArrayView<float>.Empty, ArrayView<float>.Empty, o, cols, 1e-5f);
        AssertClose(Download(o), PerRow(x, cols, norm), RtolF32, Atol, "layer_norm (no affine)", seed);
    }

    [Theory]
    [MemberData(nameof(Shapes))]
    public void SoftmaxAndLogSoftmax(int rows, int cols)
    {
        int seed = 1300 + rows * 1000 + cols;
        var x = Random(seed, rows * cols, -20f, 20f);
        var dx = Upload(x);
        var o = Poisoned(x.Length);
        K.Softmax(dx, o, cols);
        AssertClose(Download(o), PerRow(x, cols, Softmax), RtolF32, Atol, "softmax", seed);
        o = Poisoned(x.Length);
        K.LogSoftmax(dx, o, cols);
        AssertClose(Download(o), PerRow(x, cols, row => Softmax(row).Select(v => Math.Log(v)).ToArray()), RtolF32, Atol, "log_softmax", seed);
    }

    [Fact]
    public void SoftmaxSpecialValues()
    {
        const int cols = 5;
        var x = new[]
        {
            1f, float.NaN, 2f, 3f, 4f, // NaN → all NaN
            float.NegativeInfinity, 0f, float.NegativeInfinity, 1f, 2f, // masked entries → 0
            float.NegativeInfinity, float.NegativeInfinity, float.NegativeInfinity, float.NegativeInfinity, float.NegativeInfinity, // all masked → NaN
        };
        var o = Poisoned(x.Length);
        K.Softmax(Upload(x), o, cols);
        AssertClose(Download(o), PerRow(x, cols, Softmax), RtolF32, Atol, "softmax special", 0);
    }

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

    [Theory]
    [MemberData(nameof(Shapes))]
    public void Reductions(int rows, int cols)
    {
        int seed = 1400 + rows * 1000 + cols;
        var x = Random(seed, rows * cols);
        if (rows > 3)
        {
            x[1 * cols + cols / 2] = float.NaN; // row 1 propagates NaN
            x[2 * cols] = x[2 * cols + cols - 1] = 50f; // row 2: tie, first index wins
        }

        var dx = Upload(x);
        var o = Poisoned(rows);
        K.Sum(dx, o, cols);
        AssertClose(Download(o), PerRow(x, cols, r => new[] { r.Sum() }), RtolF32, Atol * cols, "sum", seed);
        o = Poisoned(rows);
        K.Mean(dx, o, cols);
        AssertClose(Download(o), PerRow(x, cols, r => new[] { r.Average() }), RtolF32, Atol * cols, "mean", seed);
        o = Poisoned(rows);
        K.Amax(dx, o, cols);
        AssertClose(Download(o), PerRow(x, cols, r => new[] { r.Any(double.IsNaN) ? double.NaN : r.Max() }), 0, 0, "amax", seed);
        var idx = PoisonedLong(rows);
        K.Argmax(dx, idx, cols);
        var expected = PerRow(x, cols, r => new[] { (double)ArgBest(r, Array.Empty<int>()) });
        Assert.Equal(expected.Select(v => (long)v), Download(idx));
    }

    [Theory]
    [InlineData(1, 1, 1)]
    [InlineData(3, 17, 4)]
    [InlineData(4, 40, 5)]
    [InlineData(2, 300, 8)]
    [InlineData(2, 6, 6)]
    public void TopK(int rows, int cols, int k)
    {
        int seed = 1500 + rows * 1000 + cols;
        var x = Random(seed, rows * cols);
        if (cols > 10)
        {
            x[3] = x[7] = x[9] = 2.5f; // ties, lower index first
            x[cols + 4] = float.NaN; // NaN counts as largest
        }

        var v = Poisoned(rows * k);
        var i = PoisonedLong(rows * k);
        K.TopK(Upload(x), v, i, cols, k);
        var gotV = Download(v);
        var gotI = Download(i);
        for (int r = 0; r < rows; r++)
        {
            var row = x.Skip(r * cols).Take(cols).Select(t => (double)t).ToArray();
            var taken = new System.Collections.Generic.List<int>();
            for (int j = 0; j < k; j++)
            {
                int best = ArgBest(row, taken);
                taken.Add(best);
                Assert.True(best == gotI[r * k + j], $"topk (seed {seed}) row {r} #{j}: index {gotI[r * k + j]}, expected {best}");
                Assert.Equal(row[best], gotV[r * k + j]);
            }
        }
    }

    /// <summary>The first index of the largest value among those not taken; NaN is largest.</summary>
    private static int ArgBest(double[] row, System.Collections.Generic.IReadOnlyCollection<int> taken)
    {
        int best = -1;
        for (int c = 0; c < row.Length; c++)
        {
            if (taken.Contains(c))
            {
                continue;
            }

            if (best < 0 || (double.IsNaN(row[c]) && !double.IsNaN(row[best])) || (!double.IsNaN(row[best]) && row[c] > row[best]))
            {
                best = c;
            }
        }

        return best;
    }
}
