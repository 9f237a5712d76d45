using System;
using System.Linq;
using GemsInjector.Kernels.Ilgpu;
using ILGPU;
using ILGPU.Runtime;
using Xunit;

namespace GemsInjector.Kernels.Ilgpu.Tests;

/// <summary>
/// The vectorised row kernels on the CPU simulator (groups of 16, so the 16-bit register kernels take rows up to
/// 4 × 8 × 16 = 512 words): 16-bit rms_norm / fused_add_rms_norm / layer_norm / softmax / log_softmax in registers, the
/// streaming softmax (float32 and 16-bit) at every start offset within 16 bytes, the 16-bit rotary in 64-bit words, and
/// the scalar fallbacks (odd widths, misaligned views). Every output element against float64, NaN-poisoned outputs.
/// </summary>
[Collection(SimulatorCollection.Name)]
public sealed class RowVectorTests : Half16TestBase
{
    public RowVectorTests(SimulatorFixture fixture)
        : base(fixture)
    {
    }

    /// <summary>Vector multiples (8 … 512: one to four vectors per thread, partial groups), and widths that fall back.</summary>
    public static TheoryData<bool, int, int> NormShapes()
    {
        var data = new TheoryData<bool, int, int>();
        foreach (bool bf16 in new[] { false, true })
        {
            foreach (var (rows, cols) in new[] { (1, 8), (3, 16), (2, 40), (5, 128), (3, 296), (2, 512), (2, 520), (3, 37), (1, 1) })
            {
                data.Add(bf16, rows, cols);
            }
        }

        return data;
    }

    private static double[] PerRow(float[] x, int cols, Func<double[], double[]> f) =>
        Enumerable.Range(0, x.Length / cols).SelectMany(r => f(x.Skip(r * cols).Take(cols).Select(v => (double)v).ToArray())).ToArray();

    private static double[] Rms(double[] row, float[] w, double eps)
    {
        double inv = 1 / Math.Sqrt(row.Average(v => v * v) + eps);
        return row.Select((v, c) => v * inv * w[c]).ToArray();
    }

    private static double[] Layer(double[] row, float[]? w, float[]? b)
    {
        double mean = row.Average();
        double inv = 1 / Math.Sqrt(row.Average(v => (v - mean) * (v - mean)) + 1e-5);
        return row.Select((v, c) => (v - mean) * inv * (w?[c] ?? 1) + (b?[c] ?? 0)).ToArray();
    }

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

    private static double[] LogSoftmax(double[] row) => Softmax(row).Select(v => Math.Log(v)).ToArray();

    [Theory]
    [MemberData(nameof(NormShapes))]
    public void Norms16(bool bf16, int rows, int cols)
    {
        int seed = 21000 + rows * 1000 + cols + (bf16 ? 1 : 0);
        var (x, xv) = Random16(seed, rows * cols, bf16);
        var (r, rv) = Random16(seed + 1, rows * cols, bf16);
        var (w, wv) = Random16(seed + 2, cols, bf16, 0.5f, 1.5f);
        var (b, bv) = Random16(seed + 3, cols, bf16);
        var dx = Upload(x);
        var dw = Upload(w);

        var o = Poisoned16(x.Length, bf16);
        K.RmsNorm(dx, dw, o, cols, 1e-6f, F(bf16));
        Check16(o, PerRow(xv, cols, row => Rms(row, wv, 1e-6)), bf16, "rms_norm", seed);

        o = Poisoned16(x.Length, bf16);
        K.LayerNorm(dx, dw, Upload(b), o, cols, 1e-5f, F(bf16));
        Check16(o, PerRow(xv, cols, row => Layer(row, wv, bv)), bf16, "layer_norm", seed);
        o = Poisoned16(x.Length, bf16);
        K.LayerNorm(dx, ArrayView<ushort>.Empty, ArrayView<ushort>.Empty, o, cols, 1e-5f, F(bf16));
        Check16(o, PerRow(xv, cols, row => Layer(row, null, null)), bf16, "layer_norm (no affine)", seed);
        o = Poisoned16(x.Length, bf16);
        K.LayerNorm(dx, ArrayView<ushort>.Empty, Upload(b), o, cols, 1e-5f, F(bf16));
        Check16(o, PerRow(xv, cols, row => Layer(row, null, bv)), bf16, "layer_norm (bias only)", seed);

        // fused_add_rms_norm: residual = round(x + r); the variance from the float32 sum, the output from the rounded one.
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

    [Fact]
    public void MisalignedNorms16FallBackAndStayCorrect()
    {
        const int rows = 3, cols = 64;
        foreach (bool bf16 in new[] { false, true })
        {
            int seed = 22000 + (bf16 ? 1 : 0);
            var (x, xv) = Random16(seed, rows * cols, bf16);
            var (w, wv) = Random16(seed + 1, cols, bf16, 0.5f, 1.5f);
            for (int offset = 1; offset < 8; offset += 3)
            {
                var o = UploadAt(Enumerable.Repeat(NaN16(bf16), x.Length).ToArray(), offset, NaN16(bf16));
                K.RmsNorm(UploadAt(x, offset, (ushort)0), Upload(w), o, cols, 1e-6f, F(bf16));
                Check16(o, PerRow(xv, cols, row => Rms(row, wv, 1e-6)), bf16, $"rms_norm offset {offset}", seed);
                o = UploadAt(Enumerable.Repeat(NaN16(bf16), x.Length).ToArray(), offset, NaN16(bf16));
                K.LayerNorm(Upload(x), UploadAt(w, offset, (ushort)0), ArrayView<ushort>.Empty, o, cols, 1e-5f, F(bf16));
                Check16(o, PerRow(xv, cols, row => Layer(row, wv, null)), bf16, $"layer_norm offset {offset}", seed);
            }
        }
    }

    /// <summary>
    /// Register path (multiples of 8 up to 512 on the simulator), row-resident path (aligned multiples of 8 up to 1024,
    /// partly filled last vectors of a thread), streaming path (longer, odd or unaligned rows, any common offset), scalar
    /// path (offsets differ).
    /// </summary>
    public static TheoryData<bool, int, int, int, int> Softmax16Shapes()
    {
        var data = new TheoryData<bool, int, int, int, int>();
        foreach (bool bf16 in new[] { false, true })
        {
            foreach (var (rows, cols, xOffset, yOffset) in new[]
            {
                (1, 8, 0, 0), (3, 40, 0, 0), (2, 512, 0, 0), (2, 520, 0, 0), (3, 37, 0, 0), (2, 1000, 0, 0), (1, 4097, 0, 0),
                (3, 1024, 0, 0), (2, 1032, 0, 0), (2, 600, 8, 8), (2, 600, 8, 0),
                (3, 37, 5, 5), (2, 300, 1, 1), (3, 64, 7, 7), (2, 29, 3, 3), (2, 1, 0, 0), (4, 3, 2, 2), (3, 40, 1, 2),
            })
            {
                data.Add(bf16, rows, cols, xOffset, yOffset);
            }
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(Softmax16Shapes))]
    public void Softmax16(bool bf16, int rows, int cols, int xOffset, int yOffset)
    {
        int seed = 23000 + rows * 1000 + cols + xOffset * 7 + yOffset + (bf16 ? 1 : 0);
        var (x, xv) = Random16(seed, rows * cols, bf16, -8f, 8f);
        var dx = UploadAt(x, xOffset, (ushort)0);
        var o = UploadAt(Enumerable.Repeat(NaN16(bf16), x.Length).ToArray(), yOffset, NaN16(bf16));
        K.Softmax(dx, o, cols, F(bf16));
        Check16(o, PerRow(xv, cols, Softmax), bf16, "softmax", seed);
        o = UploadAt(Enumerable.Repeat(NaN16(bf16), x.Length).ToArray(), yOffset, NaN16(bf16));
        K.Softmax(dx, o, cols, F(bf16), log: true);
        Check16(o, PerRow(xv, cols, LogSoftmax), bf16, "log_softmax", seed);
    }

    /// <summary>NaN, -∞ masks, all -∞ and +∞ in the leading scalars, the vectors and the trailing scalars of a row.</summary>
    [Theory]
    [InlineData(false, 64, 0)]
    [InlineData(true, 64, 0)]
    [InlineData(false, 203, 3)]
    [InlineData(true, 203, 3)]
    [InlineData(true, 1000, 0)]
    [InlineData(false, 1000, 0)]
    public void Softmax16SpecialValues(bool bf16, int cols, int offset)
    {
        const int rows = 6;
        int seed = 24000 + cols + (bf16 ? 1 : 0);
        var values = Random(seed, rows * cols, -5f, 5f);
        values[0 * cols + 1] = float.NaN; // a leading element (scalar at offset 3)
        values[1 * cols + cols / 2] = float.NaN; // inside the vectors
        values[2 * cols + cols - 1] = float.NaN; // the last element (scalar tail for odd widths)
        for (int c = 0; c < cols; c += 3)
        {
            values[3 * cols + c] = float.NegativeInfinity; // masked entries → 0
        }

        Array.Fill(values, float.NegativeInfinity, 4 * cols, cols); // all masked → NaN
        values[5 * cols + 7] = float.PositiveInfinity; // e^(∞ - ∞) → NaN
        var bits = To16(values, bf16);
        var xv = ToFloat(bits, bf16);
        var dx = UploadAt(bits, offset, (ushort)0);
        var o = UploadAt(Enumerable.Repeat(NaN16(bf16), bits.Length).ToArray(), offset, NaN16(bf16));
        K.Softmax(dx, o, cols, F(bf16));
        Check16(o, PerRow(xv, cols, Softmax), bf16, "softmax special", seed);
        o = UploadAt(Enumerable.Repeat(NaN16(bf16), bits.Length).ToArray(), offset, NaN16(bf16));
        K.Softmax(dx, o, cols, F(bf16), log: true);
        Check16(o, PerRow(xv, cols, LogSoftmax), bf16, "log_softmax special", seed);
    }

    /// <summary>float32 NaN, -∞ masks, all -∞ and +∞ rows: row-resident (400), streaming (1000), streaming with scalar head and tail (203 at 3).</summary>
    [Theory]
    [InlineData(400, 0)]
    [InlineData(1000, 0)]
    [InlineData(203, 3)]
    public void SoftmaxF32SpecialValues(int cols, int offset)
    {
        const int rows = 6;
        int seed = 24500 + cols + offset;
        var x = Random(seed, rows * cols, -5f, 5f);
        x[0 * cols + 1] = float.NaN;
        x[1 * cols + cols / 2] = float.NaN;
        x[2 * cols + cols - 1] = float.NaN;
        for (int c = 0; c < cols; c += 3)
        {
            x[3 * cols + c] = float.NegativeInfinity;
        }

        Array.Fill(x, float.NegativeInfinity, 4 * cols, cols);
        x[5 * cols + 7] = float.PositiveInfinity;
        var dx = UploadAt(x, offset, 0f);
        var o = UploadAt(Enumerable.Repeat(float.NaN, x.Length).ToArray(), offset, float.NaN);
        K.Softmax(dx, o, cols);
        AssertClose(Download(o), PerRow(x, cols, Softmax), RtolF32, Atol, "softmax special", seed);
        o = UploadAt(Enumerable.Repeat(float.NaN, x.Length).ToArray(), offset, float.NaN);
        K.LogSoftmax(dx, o, cols);
        AssertClose(Download(o), PerRow(x, cols, LogSoftmax), RtolF32, Atol, "log_softmax special", seed);
    }

    /// <summary>
    /// float32 rows past the register kernel (128 floats on the simulator): aligned multiples of 4 up to 512 are held in
    /// registers, the rest stream at every offset; x and y offsets that differ take the scalar kernel.
    /// </summary>
    [Theory]
    [InlineData(2, 129, 0, 0)]
    [InlineData(3, 1000, 1, 1)]
    [InlineData(2, 1027, 2, 2)]
    [InlineData(1, 4097, 3, 3)]
    [InlineData(3, 130, 1, 3)]
    [InlineData(5, 131, 3, 3)]
    [InlineData(3, 132, 0, 0)]
    [InlineData(2, 512, 4, 4)]
    [InlineData(2, 300, 4, 0)]
    [InlineData(2, 516, 0, 0)]
    public void StreamingSoftmaxF32(int rows, int cols, int xOffset, int yOffset)
    {
        int seed = 25000 + rows * 1000 + cols + xOffset;
        var x = Random(seed, rows * cols, -20f, 20f);
        x[cols / 3] = float.NaN;
        var dx = UploadAt(x, xOffset, 0f);
        var o = UploadAt(Enumerable.Repeat(float.NaN, x.Length).ToArray(), yOffset, float.NaN);
        K.Softmax(dx, o, cols);
        AssertClose(Download(o), PerRow(x, cols, Softmax), RtolF32, Atol, "softmax", seed);
        o = UploadAt(Enumerable.Repeat(float.NaN, x.Length).ToArray(), yOffset, float.NaN);
        K.LogSoftmax(dx, o, cols);
        AssertClose(Download(o), PerRow(x, cols, LogSoftmax), RtolF32, Atol, "log_softmax", seed);
    }

    /// <summary>
    /// Rows whose max is far below -88 with a masked (-∞) start: the streaming kernels keep the first step's
    /// exponentials relative to that step's max, and a step of only -∞ must give zeros, not 0·e^(+∞).
    /// </summary>
    [Theory]
    [InlineData(null, 1000)]
    [InlineData(false, 1000)]
    [InlineData(true, 1000)]
    [InlineData(true, 4000)]
    [InlineData(null, 400)]
    public void StreamingSoftmaxVeryNegativeRowsWithMaskedStart(bool? bf16, int cols)
    {
        const int rows = 2;
        int seed = 28000 + cols + (bf16 is null ? 0 : bf16.Value ? 1 : 2);
        var values = Random(seed, rows * cols, -230f, -200f);
        Array.Fill(values, float.NegativeInfinity, 0, cols * 3 / 5); // row 0: the first 60% masked
        for (int c = 0; c < cols; c += 2)
        {
            values[cols + c] = float.NegativeInfinity; // row 1: every other one masked
        }

        if (bf16 is null)
        {
            var o = Poisoned(values.Length);
            K.Softmax(Upload(values), o, cols);
            AssertClose(Download(o), PerRow(values, cols, Softmax), RtolF32, Atol, "softmax", seed);
            o = Poisoned(values.Length);
            K.LogSoftmax(Upload(values), o, cols);
            AssertClose(Download(o), PerRow(values, cols, LogSoftmax), RtolF32, Atol, "log_softmax", seed);
            return;
        }

        bool b16 = bf16.Value;
        var bits = To16(values, b16);
        var xv = ToFloat(bits, b16);
        var h = Poisoned16(bits.Length, b16);
        K.Softmax(Upload(bits), h, cols, F(b16));
        Check16(h, PerRow(xv, cols, Softmax), b16, "softmax", seed);
        h = Poisoned16(bits.Length, b16);
        K.Softmax(Upload(bits), h, cols, F(b16), log: true);
        Check16(h, PerRow(xv, cols, LogSoftmax), b16, "log_softmax", seed);
    }

    /// <summary>With the row-resident kernels switched off (the measuring knob), aligned rows they would take stream and stay correct.</summary>
    [Fact]
    public void SoftmaxWithoutResidentRowsStreams()
    {
        const int seed = 29500;
        K.SoftmaxResident = false;
        try
        {
            var x = Random(seed, 2 * 400, -20f, 20f);
            var o = Poisoned(x.Length);
            K.Softmax(Upload(x), o, 400);
            AssertClose(Download(o), PerRow(x, 400, Softmax), RtolF32, Atol, "softmax", seed);
            foreach (bool bf16 in new[] { false, true })
            {
                var (h, hv) = Random16(seed + 1, 2 * 600, bf16, -8f, 8f);
                var oh = Poisoned16(h.Length, bf16);
                K.Softmax(Upload(h), oh, 600, F(bf16), log: true);
                Check16(oh, PerRow(hv, 600, LogSoftmax), bf16, "log_softmax", seed);
            }
        }
        finally
        {
            K.SoftmaxResident = true;
        }
    }

    /// <summary>In place (y = x): every kernel reads an element before the same thread writes it.</summary>
    [Theory]
    [InlineData(64, 0)]
    [InlineData(400, 0)]
    [InlineData(1000, 0)]
    [InlineData(1003, 3)]
    public void InPlaceRows(int cols, int offset)
    {
        const int rows = 3;
        int seed = 29000 + cols + offset;
        var x = Random(seed, rows * cols, -10f, 10f);
        var d = UploadAt(x, offset, 0f);
        K.Softmax(d, d, cols);
        AssertClose(Download(d), PerRow(x, cols, Softmax), RtolF32, Atol, "softmax in place", seed);
        d = UploadAt(x, offset, 0f);
        K.LogSoftmax(d, d, cols);
        AssertClose(Download(d), PerRow(x, cols, LogSoftmax), RtolF32, Atol, "log_softmax in place", seed);
        foreach (bool bf16 in new[] { false, true })
        {
            var (h, hv) = Random16(seed + 1, rows * cols, bf16, -10f, 10f);
            var dh = UploadAt(h, offset, (ushort)0);
            K.Softmax(dh, dh, cols, F(bf16));
            Check16(dh, PerRow(hv, cols, Softmax), bf16, "softmax in place", seed);
            dh = UploadAt(h, offset, (ushort)0);
            K.Softmax(dh, dh, cols, F(bf16), log: true);
            Check16(dh, PerRow(hv, cols, LogSoftmax), bf16, "log_softmax in place", seed);
            var (w, wv) = Random16(seed + 2, cols, bf16, 0.5f, 1.5f);
            dh = UploadAt(h, offset, (ushort)0);
            K.RmsNorm(dh, Upload(w), dh, cols, 1e-6f, F(bf16));
            Check16(dh, PerRow(hv, cols, row => Rms(row, wv, 1e-6)), bf16, "rms_norm in place", seed);
            dh = UploadAt(h, offset, (ushort)0);
            K.LayerNorm(dh, Upload(w), ArrayView<ushort>.Empty, dh, cols, 1e-5f, F(bf16));
            Check16(dh, PerRow(hv, cols, row => Layer(row, wv, null)), bf16, "layer_norm in place", seed);
        }
    }

    /// <summary>float32 layer_norm: vector path (cols % 4 = 0, ≤ 16 × 16 = 256 on the simulator, aligned), scalar paths otherwise.</summary>
    [Theory]
    [InlineData(1, 4, 0)]
    [InlineData(3, 12, 0)]
    [InlineData(2, 64, 0)]
    [InlineData(5, 100, 0)]
    [InlineData(2, 256, 0)]
    [InlineData(2, 260, 0)]
    [InlineData(3, 64, 1)]
    [InlineData(3, 30, 0)]
    public void LayerNormF32(int rows, int cols, int offset)
    {
        int seed = 27000 + rows * 1000 + cols + offset;
        var x = Random(seed, rows * cols, 2f, 6f);
        var w = Random(seed + 1, cols, 0.5f, 1.5f);
        var b = Random(seed + 2, cols);
        var dx = UploadAt(x, offset, 0f);
        var o = UploadAt(Enumerable.Repeat(float.NaN, x.Length).ToArray(), offset, float.NaN);
        K.LayerNorm(dx, Upload(w), Upload(b), o, cols, 1e-5f);
        AssertClose(Download(o), PerRow(x, cols, row => Layer(row, w, b)), RtolF32, Atol, "layer_norm", seed);
        o = UploadAt(Enumerable.Repeat(float.NaN, x.Length).ToArray(), offset, float.NaN);
        K.LayerNorm(dx, Upload(w), ArrayView<float>.Empty, o, cols, 1e-5f);
        AssertClose(Download(o), PerRow(x, cols, row => Layer(row, w, null)), RtolF32, Atol, "layer_norm (weight only)", seed);
        o = UploadAt(Enumerable.Repeat(float.NaN, x.Length).ToArray(), offset, float.NaN);
        K.LayerNorm(dx, ArrayView<float>.Empty, ArrayView<float>.Empty, o, cols, 1e-5f);
        AssertClose(Download(o), PerRow(x, cols, row => Layer(row, null, null)), RtolF32, Atol, "layer_norm (plain)", seed);
    }

    [Theory]
    [InlineData(false, true, 16, 0)]
    [InlineData(true, true, 16, 0)]
    [InlineData(true, false, 16, 0)]
    [InlineData(false, false, 8, 0)]
    [InlineData(true, true, 8, 0)]
    [InlineData(true, true, 16, 1)]
    public void Rotary16(bool bf16, bool neox, int rotDim, int offset)
    {
        const int tokens = 5, heads = 3, kvHeads = 2, headSize = 20, maxPos = 9;
        int seed = 26000 + (bf16 ? 1 : 0) + (neox ? 2 : 0) + rotDim + offset;
        var (q, qv) = Random16(seed, tokens * heads * headSize, bf16);
        var (k, kv) = Random16(seed + 1, tokens * kvHeads * headSize, bf16);
        var (cs, csv) = Random16(seed + 2, maxPos * rotDim, bf16, -1f, 1f);
        var pos = new long[] { 0, 8, 3, 3, 5 };
        var dq = UploadAt(q, offset, (ushort)0);
        var dk = UploadAt(k, offset, (ushort)0);
        K.RotaryEmbedding(Upload(pos), dq, dk, Upload(cs), headSize, rotDim, neox, F(bf16));
        Check16(dq, Reference(qv, heads), bf16, "rotary q", seed);
        Check16(dk, Reference(kv, kvHeads), bf16, "rotary k", seed);

        // Query only.
        var dq2 = Upload(q.ToArray());
        K.RotaryEmbedding(Upload(pos), dq2, ArrayView<ushort>.Empty, Upload(cs), headSize, rotDim, neox, F(bf16));
        Check16(dq2, Reference(qv, heads), bf16, "rotary q only", seed);

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

    [Fact]
    public void AlignedCallsReachTheVectorKernels()
    {
        foreach (bool bf16 in new[] { false, true })
        {
            var x = Upload(To16(Random(1, 2 * 64), bf16));
            var w = Upload(To16(Random(2, 64, 0.5f, 1.5f), bf16));
            K.RmsNorm(x, w, Poisoned16(2 * 64, bf16), 64, 1e-6f, F(bf16));
            K.FusedAddRmsNorm(Upload(To16(Random(3, 2 * 64), bf16)), Upload(To16(Random(4, 2 * 64), bf16)), w, 64, 1e-6f, F(bf16));
            K.LayerNorm(x, w, w, Poisoned16(2 * 64, bf16), 64, 1e-5f, F(bf16));
            K.Softmax(x, Poisoned16(2 * 64, bf16), 64, F(bf16));
            K.Softmax(Upload(To16(Random(5, 2 * 600), bf16)), Poisoned16(2 * 600, bf16), 600, F(bf16));
            K.Softmax(Upload(To16(Random(15, 2 * 1100), bf16)), Poisoned16(2 * 1100, bf16), 1100, F(bf16));
            var odd = Upload(To16(Random(11, 2 * 37), bf16));
            var oddW = Upload(To16(Random(12, 37, 0.5f, 1.5f), bf16));
            K.RmsNorm(odd, oddW, Poisoned16(2 * 37, bf16), 37, 1e-6f, F(bf16));
            K.FusedAddRmsNorm(Upload(To16(Random(13, 2 * 37), bf16)), Upload(To16(Random(14, 2 * 37), bf16)), oddW, 37, 1e-6f, F(bf16));
            K.LayerNorm(odd, oddW, oddW, Poisoned16(2 * 37, bf16), 37, 1e-5f, F(bf16));
            K.RotaryEmbedding(Upload(new long[] { 0 }), Upload(To16(Random(6, 16), bf16)), ArrayView<ushort>.Empty, Upload(To16(Random(7, 16), bf16)), 16, 16, true, F(bf16));
        }

        K.Softmax(Upload(Random(8, 2 * 600)), Poisoned(2 * 600), 600);
        K.Softmax(Upload(Random(16, 2 * 400)), Poisoned(2 * 400), 400);
        K.LayerNorm(Upload(Random(9, 2 * 64)), Upload(Random(10, 64)), ArrayView<float>.Empty, Poisoned(2 * 64), 64, 1e-5f);
        Device.Synchronize();
        foreach (string format in new[] { "<f16>", "<bf16>" })
        {
            foreach (string kernel in new[] { "RowVector16Kernels.RmsNorm16", "RowVector16Kernels.FusedAddRmsNorm16", "RowVector16Kernels.LayerNorm16", "RowVector16Kernels.Softmax16", "SoftmaxRow16", "SoftmaxStream16", "Rotary16x4",
                "RmsNormWide16", "FusedAddRmsNormWide16", "LayerNormWide16" })
            {
                Assert.True(Device.HasCompiled(kernel + format), $"{kernel + format} was never compiled");
            }
        }

        Assert.True(Device.HasCompiled(nameof(RowStreamKernels.SoftmaxStreamF32)));
        Assert.True(Device.HasCompiled(nameof(RowStreamKernels.SoftmaxRowF32)));
        Assert.True(Device.HasCompiled(nameof(RowVectorF32Kernels.LayerNormF32x4)));
    }

    /// <summary>
    /// The row-resident softmax and the 16-bit layer_norm compile under the launch bounds the host passes (16-bit softmax:
    /// two groups per SM) without local memory and without an L2 prefetch of a later row (on the H200 it slowed the softmax
    /// kernels down, Run 14, and made no difference to layer_norm, Run 18). The softmax exponential is <c>ex2.approx</c>.
    /// </summary>
    [Theory]
    [InlineData("RowStreamKernels.SoftmaxRowF32", 1024, 0)]
    [InlineData("RowStreamKernels.SoftmaxRow16", 512, 2)]
    [InlineData("RowVector16Kernels.LayerNorm16", 512, 0)]
    public void RowResidentPtxKeepsItsBoundsWithoutPrefetch(string kernel, int maxThreads, int minGroups)
    {
        var methods = PtxCompileTests.KernelMethods().Where(m => m.DeclaringType!.Name + "." + m.Name == kernel).ToArray();
        Assert.NotEmpty(methods);
        foreach (var method in methods)
        {
            string ptx = Sm90Ptx.Of(method, new KernelSpecialization(maxThreads, minGroups > 0 ? minGroups : null));
            Assert.Contains($".maxntid {maxThreads}, 1, 1", ptx, StringComparison.Ordinal);
            Assert.Equal(minGroups > 0, ptx.Contains($".minnctapersm {minGroups}", StringComparison.Ordinal));
            Assert.DoesNotContain("prefetch.global", ptx, StringComparison.Ordinal);
            Assert.True(!kernel.Contains("Softmax", StringComparison.Ordinal) || ptx.Contains("ex2.approx", StringComparison.Ordinal), $"{kernel}: no ex2.approx");
            PtxLocalSlots.AssertNone(ptx, kernel);
        }
    }

    /// <summary>
    /// The PTX of the 16-bit row kernels and the streaming softmax moves 16 bytes per load and store, the rotary kernel 8;
    /// none spills to local memory under its launch bounds.
    /// </summary>
    [Theory]
    [InlineData("RowVector16Kernels.RmsNorm16", 512, 16)]
    [InlineData("RowVector16Kernels.FusedAddRmsNorm16", 512, 16)]
    [InlineData("RowVector16Kernels.LayerNorm16", 512, 16)]
    [InlineData("RowVector16Kernels.Softmax16", 512, 16)]
    [InlineData("RowStreamKernels.SoftmaxStream16", 512, 16)]
    [InlineData("RowStreamKernels.SoftmaxStreamF32", 1024, 16)]
    [InlineData("RowStreamKernels.SoftmaxRowF32", 1024, 16)]
    [InlineData("RowStreamKernels.SoftmaxRow16", 512, 16)]
    [InlineData("RowVectorF32Kernels.LayerNormF32x4", 512, 16)]
    [InlineData("RotaryKernels.Rotary16x4", 0, 8)]
    public void PtxUsesWideAccessesWithoutLocalMemory(string kernel, int maxThreads, int bytes)
    {
        var methods = PtxCompileTests.KernelMethods().Where(m => m.DeclaringType!.Name + "." + m.Name == kernel).ToArray();
        Assert.NotEmpty(methods);
        foreach (var method in methods)
        {
            var spec = maxThreads > 0 ? new KernelSpecialization(maxThreads, null) : default;
            string ptx = Sm90Ptx.Of(method, spec);
            string load = bytes == 16 ? "ld.global.v4." : "ld.global.u64";
            string store = bytes == 16 ? "st.global.v4." : "st.global.u64";
            Assert.True(ptx.Contains(load, StringComparison.Ordinal) || (bytes == 8 && ptx.Contains("ld.global.b64", StringComparison.Ordinal)), $"{kernel}: no {bytes}-byte load");
            Assert.True(ptx.Contains(store, StringComparison.Ordinal) || (bytes == 8 && ptx.Contains("st.global.b64", StringComparison.Ordinal)), $"{kernel}: no {bytes}-byte store");
            PtxLocalSlots.AssertNone(ptx, kernel);
        }
    }
}
