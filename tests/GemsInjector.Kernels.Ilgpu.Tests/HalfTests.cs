using System;
using System.Linq;
using ILGPU;
using Xunit;

namespace GemsInjector.Kernels.Ilgpu.Tests;

[Collection(SimulatorCollection.Name)]
public sealed class HalfTests : KernelTestBase
{
    public HalfTests(SimulatorFixture fixture)
        : base(fixture)
    {
    }

    private static HalfFormat F(bool bf16) => bf16 ? HalfFormat.BFloat16 : HalfFormat.Float16;

    private static double Rtol(bool bf16) => bf16 ? RtolBF16 : RtolF16;

    /// <summary>Random values already representable in the 16-bit format (so the reference sees what the kernel sees).</summary>
    private (ushort[] Bits, float[] Values) Random16(int seed, int n, bool bf16, float lo = -3f, float hi = 3f)
    {
        var bits = To16(Random(seed, n, lo, hi), bf16);
        return (bits, ToFloat(bits, bf16));
    }

    private void Check16(ArrayView<ushort> output, double[] expected, bool bf16, string what, int seed, double atol = Atol) =>
        AssertClose(ToFloat(Download(output), bf16), expected, Rtol(bf16), atol, $"{what} ({F(bf16)})", seed);

    [Fact]
    public void ConversionsMatchSystemHalfAndBf16RoundToNearestEven()
    {
        for (int h = 0; h < 65536; h++)
        {
            float expected = (float)BitConverter.UInt16BitsToHalf((ushort)h);
            float got = GpuMath.HalfToFloat((ushort)h);
            Assert.True(BitConverter.SingleToInt32Bits(expected) == BitConverter.SingleToInt32Bits(got) || (float.IsNaN(expected) && float.IsNaN(got)), $"half 0x{h:X4}");
            Assert.Equal(BitConverter.Int32BitsToSingle(h << 16), GpuMath.BFloat16ToFloat((ushort)h));
        }

        var rng = new Random(7);
        var specials = new[] { 0f, -0f, 65504f, 65519.99f, 65520f, 1e-8f, 2.98e-8f, 2.99e-8f, 6.1e-5f, 5.96e-8f, float.PositiveInfinity, float.NegativeInfinity, float.NaN, 1.00048828125f, 1.000732421875f };
        foreach (var f in specials.Concat(Enumerable.Range(0, 20000).Select(_ => BitConverter.Int32BitsToSingle(rng.Next()) * (rng.Next(2) == 0 ? 1 : -1))))
        {
            ushort expected = BitConverter.HalfToUInt16Bits((System.Half)f);
            ushort got = GpuMath.FloatToHalf(f);
            Assert.True(expected == got || (float.IsNaN(f) && (got & 0x7c00) == 0x7c00 && (got & 0x3ff) != 0), $"float {f:R}: half 0x{got:X4}, expected 0x{expected:X4}");
            Assert.Equal(Bf16(f), GpuMath.FloatToBFloat16(f));
        }
    }

    [Theory]
    [InlineData(false, 17)]
    [InlineData(true, 17)]
    [InlineData(false, 300)]
    [InlineData(true, 300)]
    public void ElementwiseAndActivations(bool bf16, int n)
    {
        int seed = 5000 + n + (bf16 ? 1 : 0);
        var (a, av) = Random16(seed, n, bf16);
        var (b, bv) = Random16(seed + 1, n, bf16);
        a[2] = bf16 ? (ushort)0x7FC0 : (ushort)0x7E00; // NaN
        av[2] = float.NaN;
        var da = Upload(a);
        var db = Upload(b);
        var o = Poisoned16(n, bf16);
        K.Add(da, db, 0.5f, o, F(bf16));
        Check16(o, av.Zip(bv, (x, y) => x + 0.5 * y).ToArray(), bf16, "add", seed);
        o = Poisoned16(n, bf16);
        K.Mul(da, db, o, F(bf16));
        Check16(o, av.Zip(bv, (x, y) => (double)x * y).ToArray(), bf16, "mul", seed);

        var refs = new (HalfActivation Op, Func<double, double> F)[]
        {
            (HalfActivation.Silu, v => v / (1 + Math.Exp(-v))),
            (HalfActivation.Gelu, v => 0.5 * v * (1 + ElementwiseTests.Erf(v / Math.Sqrt(2)))),
            (HalfActivation.GeluTanh, v => 0.5 * v * (1 + Math.Tanh(Math.Sqrt(2 / Math.PI) * (v + 0.044715 * v * v * v)))),
            (HalfActivation.Relu, v => double.IsNaN(v) ? v : Math.Max(v, 0)),
            (HalfActivation.Sigmoid, v => 1 / (1 + Math.Exp(-v))),
            (HalfActivation.Tanh, Math.Tanh),
            (HalfActivation.Exp, Math.Exp),
            (HalfActivation.Neg, v => -v),
        };
        foreach (var (op, f) in refs)
        {
            o = Poisoned16(n, bf16);
            K.Activation(da, o, op, F(bf16));
            Check16(o, av.Select(v => f(v)).ToArray(), bf16, op.ToString(), seed);
        }

        int rows = 3, d = n / 6 + 1;
        var (g, gv) = Random16(seed + 2, 2 * rows * d, bf16);
        var dg = Upload(g);
        foreach (var (op, f) in refs.Take(3))
        {
            o = Poisoned16(rows * d, bf16);
            K.GatedAndMul(dg, o, rows, d, op, F(bf16));
            var expected = Enumerable.Range(0, rows * d).Select(i => f(gv[i / d * 2 * d + i % d]) * gv[i / d * 2 * d + d + i % d]).ToArray();
            Check16(o, expected, bf16, op + "_and_mul", seed);
        }
    }

    [Theory]
    [InlineData(false, 3, 17)]
    [InlineData(true, 3, 17)]
    [InlineData(false, 4, 300)]
    [InlineData(true, 4, 300)]
    [InlineData(true, 1, 1)]
    public void RowOps(bool bf16, int rows, int cols)
    {
        int seed = 6000 + rows * 1000 + cols + (bf16 ? 1 : 0);
        var (x, xv) = Random16(seed, rows * cols, bf16);
        var (r, rv) = Random16(seed + 1, rows * cols, bf16);
        var (w, wv) = Random16(seed + 2, cols, bf16, 0.5f, 1.5f);
        var (b, bv) = Random16(seed + 3, cols, bf16);
        var dx = Upload(x);
        var dw = Upload(w);

        var o = Poisoned16(x.Length, bf16);
        K.RmsNorm(dx, dw, o, cols, 1e-6f, F(bf16));
        Check16(o, PerRow(xv, cols, row => { double inv = 1 / Math.Sqrt(row.Average(v => v * v) + 1e-6); return row.Select((v, c) => v * inv * wv[c]).ToArray(); }), bf16, "rms_norm", seed);

        o = Poisoned16(x.Length, bf16);
        K.LayerNorm(dx, dw, Upload(b), o, cols, 1e-5f, F(bf16));
        Check16(o, PerRow(xv, cols, row =>
        {
            double mean = row.Average();
            double inv = 1 / Math.Sqrt(row.Average(v => (v - mean) * (v - mean)) + 1e-5);
            return row.Select((v, c) => (v - mean) * inv * wv[c] + bv[c]).ToArray();
        }), bf16, "layer_norm", seed);

        o = Poisoned16(x.Length, bf16);
        K.Softmax(dx, o, cols, F(bf16));
        Check16(o, PerRow(xv, cols, Softmax), bf16, "softmax", seed);
        o = Poisoned16(x.Length, bf16);
        K.Softmax(dx, o, cols, F(bf16), log: true);
        Check16(o, PerRow(xv, cols, row => Softmax(row).Select(v => Math.Log(v)).ToArray()), bf16, "log_softmax", seed);

        // fused_add_rms_norm: residual = round(x + r); output from the rounded residual.
        var dxi = Upload(x.ToArray());
        var dr = Upload(r);
        K.FusedAddRmsNorm(dxi, dr, dw, cols, 1e-5f, F(bf16));
        var sum = xv.Zip(rv, (p, q) => (double)p + q).ToArray();
        Check16(dr, sum, bf16, "fused_add_rms_norm residual", seed);
        var rounded = ToFloat(To16(sum.Select(v => (float)v).ToArray(), bf16), bf16);
        var expected = new double[sum.Length];
        for (int i = 0; i < rows; i++)
        {
            double inv = 1 / Math.Sqrt(sum.Skip(i * cols).Take(cols).Average(v => v * v) + 1e-5);
            for (int c = 0; c < cols; c++)
            {
                expected[i * cols + c] = rounded[i * cols + c] * inv * wv[c];
            }
        }

        Check16(dxi, expected, bf16, "fused_add_rms_norm", seed);
    }

    [Theory]
    [InlineData(false, true)]
    [InlineData(true, true)]
    [InlineData(true, false)]
    public void Rotary(bool bf16, bool neox)
    {
        const int tokens = 5, heads = 3, kvHeads = 1, headSize = 16, rotDim = 12, maxPos = 9;
        int seed = 7000 + (bf16 ? 1 : 0) + (neox ? 2 : 0);
        var (q, qv) = Random16(seed, tokens * heads * headSize, bf16);
        var (k, kv) = Random16(seed + 1, tokens * kvHeads * headSize, bf16);
        var (cs, csv) = Random16(seed + 2, maxPos * rotDim, bf16, -1f, 1f);
        var pos = new long[] { 0, 8, 3, 3, 5 };
        var dq = Upload(q);
        var dk = Upload(k);
        K.RotaryEmbedding(Upload(pos), dq, dk, Upload(cs), headSize, rotDim, neox, F(bf16));
        Check16(dq, Reference(qv, heads), bf16, "rotary q", seed);
        Check16(dk, Reference(kv, kvHeads), bf16, "rotary k", seed);

        double[] Reference(float[] x, int h)
        {
            var res = x.Select(v => (double)v).ToArray();
            for (int t = 0; t < tokens; t++)
            {
                for (int hh = 0; hh < h; hh++)
                {
                    int b = (t * h + hh) * headSize;
                    for (int i = 0; i < rotDim / 2; i++)
                    {
                        double cos = csv[pos[t] * rotDim + i], sin = csv[pos[t] * rotDim + rotDim / 2 + i];
                        int i1 = neox ? i : 2 * i, i2 = neox ? i + rotDim / 2 : 2 * i + 1;
                        res[b + i1] = x[b + i1] * cos - x[b + i2] * sin;
                        res[b + i2] = x[b + i2] * cos + x[b + i1] * sin;
                    }
                }
            }

            return res;
        }
    }

    private static double[] PerRow(float[] x, int cols, Func<double[], double[]> f) =>
        Enumerable.Range(0, x.Length / cols).SelectMany(r => f(x.Skip(r * cols).Take(cols).Select(v => (double)v).ToArray())).ToArray();

    private static double[] Softmax(double[] row)
    {
        double m = row.Max();
        var e = row.Select(v => Math.Exp(v - m)).ToArray();
        double s = e.Sum();
        return e.Select(v => v / s).ToArray();
    }
}
