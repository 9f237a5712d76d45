using System;
using System.Linq;
using ILGPU;
using Xunit;

namespace GemsInjector.Kernels.Ilgpu.Tests;

[Collection(SimulatorCollection.Name)]
public sealed class ElementwiseTests : KernelTestBase
{
    public ElementwiseTests(SimulatorFixture fixture)
        : base(fixture)
    {
    }

    public static TheoryData<int> Sizes => new() { 0, 1, 3, 17, 300, 1500 };

    [Theory]
    [MemberData(nameof(Sizes))]
    public void BinaryOps(int n)
    {
        int seed = 100 + n;
        var a = Random(seed, n);
        var b = Random(seed + 1, n, 0.5f, 4f);
        if (n > 2)
        {
            a[1] = float.NaN;
        }

        var da = Upload(a);
        var db = Upload(b);
        Check("add", (x, y, o) => K.Add(x, y, 0.75f, o), (x, y) => x + 0.75 * (double)y);
        Check("sub", (x, y, o) => K.Sub(x, y, -2f, o), (x, y) => x - (-2.0 * y));
        Check("mul", (x, y, o) => K.Mul(x, y, o), (x, y) => (double)x * y);
        Check("div", (x, y, o) => K.Div(x, y, o), (x, y) => (double)x / y);

        void Check(string name, Action<ArrayView<float>, ArrayView<float>, ArrayView<float>> run, Func<float, float, double> reference)
        {
            var o = Poisoned(n);
            run(da, db, o);
            AssertClose(Download(o), a.Zip(b, reference).ToArray(), RtolF32, Atol, $"{name}[{n}]", seed);
        }
    }

    [Theory]
    [MemberData(nameof(Sizes))]
    public void UnaryOps(int n)
    {
        int seed = 200 + n;
        var x = Random(seed, n, -12f, 12f);
        if (n >= 17)
        {
            x[2] = float.NaN;
            x[3] = 0f;
            x[4] = 1e-4f;
            x[5] = -95f;
            x[6] = 95f;
            x[7] = float.PositiveInfinity;
            x[8] = float.NegativeInfinity;
            x[9] = -7e-3f;
        }

        var dx = Upload(x);
        Check("silu", K.Silu, v => v / (1 + Math.Exp(-v)));
        Check("gelu", (i, o) => K.Gelu(i, o), v => 0.5 * v * (1 + Erf(v / Math.Sqrt(2))));
        Check("gelu_tanh", (i, o) => K.Gelu(i, o, GeluApproximation.Tanh), v => 0.5 * v * (1 + Math.Tanh(Math.Sqrt(2 / Math.PI) * (v + 0.044715 * v * v * v))));
        Check("relu", K.Relu, v => double.IsNaN(v) ? v : Math.Max(v, 0));
        Check("sigmoid", K.Sigmoid, v => 1 / (1 + Math.Exp(-v)));
        Check("tanh", K.Tanh, Math.Tanh);
        Check("exp", K.Exp, Math.Exp, rtolScale: 2);
        Check("neg", K.Neg, v => -v);

        var positive = x.Select(v => float.IsNaN(v) ? v : Math.Abs(v) + 0.01f).ToArray();
        var dp = Upload(positive);
        var o2 = Poisoned(n);
        K.Rsqrt(dp, o2);
        AssertClose(Download(o2), positive.Select(v => 1 / Math.Sqrt(v)).ToArray(), RtolF32, 0, $"rsqrt[{n}]", seed);

        void Check(string name, Action<ArrayView<float>, ArrayView<float>> run, Func<double, double> reference, double rtolScale = 1)
        {
            var o = Poisoned(n);
            run(dx, o);
            AssertClose(Download(o), x.Select(v => reference(v)).ToArray(), RtolF32 * rtolScale, Atol, $"{name}[{n}]", seed);
        }
    }

    [Theory]
    [InlineData(1, 1)]
    [InlineData(3, 17)]
    [InlineData(8, 150)]
    [InlineData(0, 5)]
    public void GatedActivations(int rows, int d)
    {
        int seed = 300 + rows * 1000 + d;
        var x = Random(seed, 2 * rows * d, -6f, 6f);
        var dx = Upload(x);
        var o = Poisoned((long)rows * d);
        K.SiluAndMul(dx, o, rows, d);
        AssertClose(Download(o), Gated(v => v / (1 + Math.Exp(-v))), RtolF32, Atol, "silu_and_mul", seed);
        o = Poisoned((long)rows * d);
        K.GeluAndMul(dx, o, rows, d);
        AssertClose(Download(o), Gated(v => 0.5 * v * (1 + Erf(v / Math.Sqrt(2)))), RtolF32, Atol, "gelu_and_mul", seed);
        o = Poisoned((long)rows * d);
        K.GeluAndMul(dx, o, rows, d, GeluApproximation.Tanh);
        AssertClose(Download(o), Gated(v => 0.5 * v * (1 + Math.Tanh(Math.Sqrt(2 / Math.PI) * (v + 0.044715 * v * v * v)))), RtolF32, Atol, "gelu_tanh_and_mul", seed);

        double[] Gated(Func<double, double> act)
        {
            var r = new double[rows * d];
            for (int i = 0; i < rows; i++)
            {
                for (int c = 0; c < d; c++)
                {
                    r[i * d + c] = act(x[i * 2 * d + c]) * x[i * 2 * d + d + c];
                }
            }

            return r;
        }
    }

    [Fact]
    public void Embedding()
    {
        const int seed = 400, vocab = 11, dim = 7;
        var w = Random(seed, vocab * dim);
        long[] ids = { 3, 0, 10, 3, -1, 11, 5 };
        var o = Poisoned(ids.Length * dim);
        K.Embedding(Upload(w), Upload(ids), o, dim);
        var expected = ids.SelectMany(t => Enumerable.Range(0, dim).Select(c => t >= 0 && t < vocab ? (double)w[t * dim + c] : double.NaN)).ToArray();
        AssertClose(Download(o), expected, 0, 0, "embedding", seed);
    }

    [Fact]
    public void LengthMismatchThrows()
    {
        var a = Upload(new float[4]);
        var b = Upload(new float[5]);
        var ex = Assert.Throws<ArgumentException>(() => K.Add(a, b, 1f, Poisoned(4)));
        Assert.Contains("'b'", ex.Message, StringComparison.Ordinal);
    }

    /// <summary>erf in double (Abramowitz–Stegun 7.1.26 is too coarse; this series/continued fraction is ~1e-15).</summary>
    internal static double Erf(double x)
    {
        if (double.IsNaN(x))
        {
            return x;
        }

        double ax = Math.Abs(x);
        double r;
        if (ax < 2.5)
        {
            // Maclaurin series.
            double sum = ax, term = ax, x2 = ax * ax;
            for (int k = 1; k < 200; k++)
            {
                term *= -x2 / k;
                double add = term / (2 * k + 1);
                sum += add;
                if (Math.Abs(add) < 1e-17 * Math.Abs(sum))
                {
                    break;
                }
            }

            r = 2 / Math.Sqrt(Math.PI) * sum;
        }
        else if (ax > 30)
        {
            r = 1;
        }
        else
        {
            // erfc by continued fraction (Lentz).
            double f = ax, c = ax, d = 0;
            for (int k = 1; k < 500; k++)
            {
                double an = k / 2.0;
                d = ax + an * d;
                d = 1 / d;
                c = ax + an / c;
                double delta = c * d;
                f *= delta;
                if (Math.Abs(delta - 1) < 1e-16)
                {
                    break;
                }
            }

            r = 1 - Math.Exp(-ax * ax) / Math.Sqrt(Math.PI) / f;
        }

        return x < 0 ? -r : r;
    }
}
