using System;
using System.Linq;
using ILGPU;
using ILGPU.Runtime;
using Xunit;

namespace GemsInjector.Kernels.Ilgpu.Tests;

/// <summary>
/// The fast paths and their edges on the simulator (warp 4, groups of 16): decode GEMV (m ≤ 16, both weight layouts,
/// split-K), register-tiled SGEMM (m > 16 or batched), register-resident row kernels (cols ≤ 8·group) and
/// flash-decoding attention (lq = 1), each against float64 references with NaN-poisoned outputs.
/// </summary>
[Collection(SimulatorCollection.Name)]
public sealed class FastPathTests : KernelTestBase
{
    public FastPathTests(SimulatorFixture fixture)
        : base(fixture)
    {
    }

    private static double[] MatMul(float[] a, float[] b, int batch, int m, int k, int n, bool transposeB)
    {
        var c = new double[batch * m * n];
        for (int z = 0; z < batch; z++)
        {
            for (int i = 0; i < m; i++)
            {
                for (int j = 0; j < n; j++)
                {
                    double s = 0;
                    for (int p = 0; p < k; p++)
                    {
                        s += (double)a[z * m * k + i * k + p] * b[z * k * n + (transposeB ? j * k + p : p * n + j)];
                    }

                    c[z * m * n + i * n + j] = s;
                }
            }
        }

        return c;
    }

    public static TheoryData<int, int, int, bool> GemvShapes()
    {
        var data = new TheoryData<int, int, int, bool>();
        foreach (bool t in new[] { false, true })
        {
            // m = 1 (decode), odd m, the largest GEMV m (16), one past it (17 → SGEMM); k one, small, split (> 256 rows
            // per chunk for m = 16), n below a warp, not a multiple of the group's columns.
            data.Add(1, 1, 1, t);
            data.Add(1, 300, 37, t);
            data.Add(2, 5, 70, t);
            data.Add(7, 1100, 19, t);
            data.Add(16, 600, 33, t);
            data.Add(16, 3, 3, t);
            data.Add(17, 41, 23, t);
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(GemvShapes))]
    public void MmDecodeShapes(int m, int k, int n, bool transposeB)
    {
        int seed = 7000 + m * 100 + k + n + (transposeB ? 1 : 0);
        var a = Random(seed, m * k);
        var b = Random(seed + 1, k * n);
        var c = Poisoned(m * n);
        K.Mm(Upload(a), Upload(b), c, m, k, n, transposeB);
        AssertClose(Download(c), MatMul(a, b, 1, m, k, n, transposeB), RtolF32, Atol * Math.Max(k, 1), $"mm {m}x{k}x{n} tB={transposeB}", seed);
    }

    [Theory]
    [InlineData(1, 300, 37, false, false)]
    [InlineData(1, 300, 37, true, false)]
    [InlineData(5, 700, 21, false, true)]
    [InlineData(5, 700, 21, true, true)]
    [InlineData(16, 9, 40, true, true)]
    [InlineData(30, 9, 40, false, true)]
    [InlineData(30, 200, 20, true, true)]
    [InlineData(17, 150, 30, false, false)]
    public void AddmmDecodeShapes(int m, int k, int n, bool transposeB, bool matrixBias)
    {
        int seed = 7100 + m * 100 + k + (transposeB ? 1 : 0) + (matrixBias ? 2 : 0);
        var a = Random(seed, m * k);
        var b = Random(seed + 1, k * n);
        var bias = Random(seed + 2, matrixBias ? m * n : n);
        var c = Poisoned(m * n);
        K.Addmm(Upload(bias), Upload(a), Upload(b), c, m, k, n, beta: 0.5f, alpha: -1.5f, transposeB: transposeB);
        var prod = MatMul(a, b, 1, m, k, n, transposeB);
        var expected = prod.Select((p, idx) => -1.5 * p + 0.5 * bias[matrixBias && m != 1 ? idx : idx % n]).ToArray();
        AssertClose(Download(c), expected, RtolF32, Atol * k, "addmm", seed);

        var nanBias = Enumerable.Repeat(float.NaN, bias.Length).ToArray();
        c = Poisoned(m * n);
        K.Addmm(Upload(nanBias), Upload(a), Upload(b), c, m, k, n, beta: 0f, alpha: 1f, transposeB: transposeB);
        AssertClose(Download(c), prod, RtolF32, Atol * k, "addmm beta=0", seed);
    }

    [Theory]
    [InlineData(3, 600, 9, false)]
    [InlineData(3, 600, 9, true)]
    [InlineData(20, 30, 9, false)]
    [InlineData(20, 30, 9, true)]
    public void MmNaNStaysInItsRowAndColumn(int m, int k, int n, bool transposeB)
    {
        var a = Random(11, m * k);
        var b = Random(12, k * n);
        a[1 * k + 7] = float.NaN; // row 1 of C
        int col = 4;
        b[transposeB ? col * k + k - 1 : (k - 1) * n + col] = float.NaN; // column 4 of C
        var c = Poisoned(m * n);
        K.Mm(Upload(a), Upload(b), c, m, k, n, transposeB);
        var got = Download(c);
        for (int i = 0; i < m * n; i++)
        {
            Assert.Equal(i / n == 1 || i % n == col, float.IsNaN(got[i]));
        }
    }

    [Theory]
    [InlineData(1, 33, 17, 65, false)]
    [InlineData(1, 64, 64, 64, true)]
    [InlineData(1, 100, 3, 1, false)]
    [InlineData(3, 5, 13, 70, false)]
    [InlineData(2, 40, 9, 31, true)]
    [InlineData(1, 40, 100, 20, false)]
    [InlineData(1, 17, 333, 9, true)]
    public void TiledGemmShapes(int batch, int m, int k, int n, bool transposeB)
    {
        int seed = 7200 + batch * 1000 + m * 10 + k + n;
        var a = Random(seed, batch * m * k);
        var b = Random(seed + 1, batch * k * n);
        var c = Poisoned(batch * m * n);
        K.Bmm(Upload(a), Upload(b), c, batch, m, k, n, transposeB);
        AssertClose(Download(c), MatMul(a, b, batch, m, k, n, transposeB), RtolF32, Atol * k, $"bmm {batch}x{m}x{k}x{n}", seed);
    }

    /// <summary>Short products through the SGEMM (GEMV off): half-height tiles (m ≤ 16 on the simulator), with split-K.</summary>
    [Theory]
    [InlineData(1, 1, 1, false)]
    [InlineData(5, 200, 37, false)]
    [InlineData(16, 150, 9, true)]
    [InlineData(9, 7, 70, true)]
    public void ShortProductsThroughTheTiledGemm(int m, int k, int n, bool transposeB)
    {
        int seed = 7600 + m * 100 + k + n;
        var a = Random(seed, m * k);
        var b = Random(seed + 1, k * n);
        var bias = Random(seed + 2, n);
        int saved = K.GemvMaxRows;
        K.GemvMaxRows = 0;
        try
        {
            var c = Poisoned(m * n);
            K.Addmm(Upload(bias), Upload(a), Upload(b), c, m, k, n, beta: 2f, alpha: 0.5f, transposeB: transposeB);
            var expected = MatMul(a, b, 1, m, k, n, transposeB).Select((p, idx) => 0.5 * p + 2.0 * bias[idx % n]).ToArray();
            AssertClose(Download(c), expected, RtolF32, Atol * k, $"addmm via sgemm {m}x{k}x{n}", seed);
        }
        finally
        {
            K.GemvMaxRows = saved;
        }
    }

    /// <summary>
    /// Row lengths at the register paths' edges on the simulator (groups of 16): 8 × 16 = 128 floats (register kernels),
    /// 32 × 16 = 512 (wide norms; softmax goes to 64 × 16 = 1024), 513 (norms fall back to the two-pass kernels).
    /// </summary>
    public static TheoryData<int, int> RowShapes => new() { { 1, 64 }, { 1, 65 }, { 70, 100 }, { 3, 128 }, { 2, 129 }, { 66, 5 }, { 3, 511 }, { 2, 512 }, { 2, 513 } };

    private static double[] PerRow(float[] x, int cols, Func<double[], double[]> f)
    {
        int rows = x.Length / cols;
        return Enumerable.Range(0, rows).SelectMany(r => f(x.Skip(r * cols).Take(cols).Select(v => (double)v).ToArray())).ToArray();
    }

    [Theory]
    [MemberData(nameof(RowShapes))]
    public void RowNormsAtRegisterEdges(int rows, int cols)
    {
        int seed = 7300 + rows * 1000 + cols;
        var x = Random(seed, rows * cols);
        var r = Random(seed + 1, rows * cols);
        var w = Random(seed + 2, cols);
        var bias = Random(seed + 3, cols);

        var o = Poisoned(x.Length);
        K.RmsNorm(Upload(x), Upload(w), o, cols, 1e-6f);
        AssertClose(Download(o), PerRow(x, cols, row => Rms(row, w, 1e-6)), RtolF32, Atol, "rms_norm", seed);

        var dx = Upload(x);
        var dr = Upload(r);
        K.FusedAddRmsNorm(dx, dr, Upload(w), cols, 1e-5f);
        var sum = x.Zip(r, (p, q) => p + q).ToArray();
        AssertClose(Download(dr), sum.Select(v => (double)v).ToArray(), 0, 0, "fused residual", seed);
        AssertClose(Download(dx), PerRow(sum, cols, row => Rms(row, w, 1e-5)), RtolF32, Atol, "fused_add_rms_norm", seed);

        o = Poisoned(x.Length);
        K.LayerNorm(Upload(x), Upload(w), Upload(bias), o, cols, 1e-5f);
        AssertClose(Download(o), PerRow(x, cols, row => Layer(row, w, bias)), RtolF32, Atol, "layer_norm", seed);
        o = Poisoned(x.Length);
        K.LayerNorm(Upload(x), ArrayView<float>.Empty, ArrayView<float>.Empty, o, cols, 1e-5f);
        AssertClose(Download(o), PerRow(x, cols, row => Layer(row, null, null)), RtolF32, Atol, "layer_norm plain", seed);

        var sx = Random(seed + 4, rows * cols, -20f, 20f);
        sx[0] = float.NegativeInfinity;
        o = Poisoned(x.Length);
        K.Softmax(Upload(sx), o, cols);
        AssertClose(Download(o), PerRow(sx, cols, Softmax), RtolF32, Atol, "softmax", seed);
        o = Poisoned(x.Length);
        K.LogSoftmax(Upload(sx), o, cols);
        AssertClose(Download(o), PerRow(sx, cols, row => Softmax(row).Select(v => Math.Log(v)).ToArray()), RtolF32, Atol, "log_softmax", seed);
    }

    /// <summary>Softmax rows past the register path: wide (≤ 64 × 16 = 1024 floats on the simulator) and the online fallback.</summary>
    [Theory]
    [InlineData(2, 129)]
    [InlineData(3, 1000)]
    [InlineData(1, 1024)]
    [InlineData(2, 1025)]
    public void LongSoftmaxRows(int rows, int cols)
    {
        int seed = 7500 + rows * 1000 + cols;
        var x = Random(seed, rows * cols, -30f, 30f);
        x[cols - 1] = float.NegativeInfinity;
        var o = Poisoned(x.Length);
        K.Softmax(Upload(x), o, cols);
        AssertClose(Download(o), PerRow(x, cols, Softmax), RtolF32, Atol, "softmax", seed);
        o = Poisoned(x.Length);
        K.LogSoftmax(Upload(x), o, cols);
        AssertClose(Download(o), PerRow(x, cols, row => Softmax(row).Select(v => Math.Log(v)).ToArray()), RtolF32, Atol, "log_softmax", seed);
        if (rows > 1)
        {
            x[cols + 5] = float.NaN;
            o = Poisoned(x.Length);
            K.Softmax(Upload(x), o, cols);
            var got = Download(o);
            for (int i = 0; i < x.Length; i++)
            {
                Assert.Equal(i / cols == 1, float.IsNaN(got[i]));
            }
        }
    }

    [Fact]
    public void RegisterRowsPropagateNaN()
    {
        const int rows = 3, cols = 40;
        var x = Random(9, rows * cols);
        x[cols + 39] = float.NaN; // row 1, last element
        var o = Poisoned(x.Length);
        K.RmsNorm(Upload(x), Upload(Random(10, cols)), o, cols, 1e-6f);
        var got = Download(o);
        for (int i = 0; i < x.Length; i++)
        {
            Assert.Equal(i / cols == 1, float.IsNaN(got[i]));
        }

        o = Poisoned(x.Length);
        K.Softmax(Upload(x), o, cols);
        got = Download(o);
        for (int i = 0; i < x.Length; i++)
        {
            Assert.Equal(i / cols == 1, float.IsNaN(got[i]));
        }
    }

    private static double[] Rms(double[] row, float[] w, double eps)
    {
        double inv = 1 / Math.Sqrt(row.Select(v => v * v).Average() + eps);
        return row.Select((v, i) => v * inv * w[i]).ToArray();
    }

    private static double[] Layer(double[] row, float[]? w, float[]? b)
    {
        double mean = row.Average();
        double inv = 1 / Math.Sqrt(row.Select(v => (v - mean) * (v - mean)).Average() + 1e-5);
        return row.Select((v, i) => (v - mean) * inv * (w?[i] ?? 1.0) + (b?[i] ?? 0.0)).ToArray();
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

    public static TheoryData<int, int, bool, int> DecodeCases => new()
    {
        // lk, d, causal, mask kind (0 none, 1 [1, lk], 2 [b, 1, lk], 3 [b, h, 1, lk])
        { 1, 16, false, 0 },
        { 5, 8, false, 0 },
        { 37, 16, false, 0 },
        { 37, 16, true, 0 },
        { 13, 8, false, 1 },
        { 22, 16, false, 2 },
        { 9, 12, false, 3 },
        { 0, 8, false, 0 },
    };

    [Theory]
    [MemberData(nameof(DecodeCases))]
    public void DecodeAttention(int lk, int d, bool causal, int maskKind)
    {
        const int batch = 2, heads = 4, kvHeads = 2, lq = 1;
        int seed = 7400 + lk * 100 + d + (causal ? 7 : 0) + maskKind;
        var q = Random(seed, batch * heads * d, -2f, 2f);
        var k = Random(seed + 1, batch * kvHeads * lk * d, -2f, 2f);
        var v = Random(seed + 2, batch * kvHeads * lk * d);
        float[] mask = maskKind switch
        {
            1 => Random(seed + 3, lk, -2f, 1f),
            2 => Random(seed + 3, batch * lk, -2f, 1f),
            3 => Random(seed + 3, batch * heads * lk, -2f, 1f),
            _ => Array.Empty<float>(),
        };
        if (maskKind != 0 && lk > 2)
        {
            mask[2] = float.NegativeInfinity;
        }

        var o = Poisoned(q.Length);
        K.ScaledDotProductAttention(Upload(q), Upload(k), Upload(v), o, batch, heads, kvHeads, lq, lk, d, causal,
            mask.Length == 0 ? default : Upload(mask), scale: 0.3f);
        var expected = new double[q.Length];
        for (int z = 0; z < batch; z++)
        {
            for (int h = 0; h < heads; h++)
            {
                int kh = z * kvHeads + h / (heads / kvHeads);
                int visible = causal ? Math.Min(1, lk) : lk;
                var s = new double[visible];
                for (int j = 0; j < visible; j++)
                {
                    double dot = 0;
                    for (int t = 0; t < d; t++)
                    {
                        dot += (double)q[(z * heads + h) * d + t] * k[(kh * lk + j) * d + t];
                    }

                    s[j] = dot * 0.3 + maskKind switch
                    {
                        1 => mask[j],
                        2 => mask[z * lk + j],
                        3 => mask[(z * heads + h) * lk + j],
                        _ => 0,
                    };
                }

                if (visible == 0)
                {
                    continue; // zeros
                }

                double m = s.Max();
                var p = s.Select(x => Math.Exp(x - m)).ToArray();
                double sum = p.Sum();
                for (int t = 0; t < d; t++)
                {
                    double acc = 0;
                    for (int j = 0; j < visible; j++)
                    {
                        acc += p[j] * v[(kh * lk + j) * d + t];
                    }

                    expected[(z * heads + h) * d + t] = acc / sum;
                }
            }
        }

        AssertClose(Download(o), expected, RtolF32, Atol, $"decode sdpa lk={lk} d={d} causal={causal} mask={maskKind}", seed);
    }

    [Fact]
    public void DecodeAttentionMaskedAndNaN()
    {
        const int heads = 2, lk = 11, d = 8;
        var q = Random(21, heads * d);
        var k = Random(22, lk * d);
        var v = Random(23, lk * d);
        var mask = new float[heads * lk];
        for (int j = 0; j < lk; j++)
        {
            mask[j] = float.NegativeInfinity; // head 0 sees nothing → zeros
        }

        var o = Poisoned(q.Length);
        K.ScaledDotProductAttention(Upload(q), Upload(k), Upload(v), o, 1, heads, 1, 1, lk, d, mask: Upload(mask));
        var got = Download(o);
        Assert.All(got.Take(d), x => Assert.Equal(0f, x));
        Assert.All(got.Skip(d), x => Assert.False(float.IsNaN(x)));

        k[9 * d + 3] = float.NaN; // key 9 (third chunk on the simulator) → NaN for head 1
        o = Poisoned(q.Length);
        K.ScaledDotProductAttention(Upload(q), Upload(k), Upload(v), o, 1, heads, 1, 1, lk, d, mask: Upload(mask));
        got = Download(o);
        Assert.All(got.Skip(d), x => Assert.True(float.IsNaN(x)));
    }

    /// <summary>
    /// The calls below reach the kernels listed, on a device of their own: on the shared device another test may have
    /// compiled a listed kernel already, and the check would pass whatever these calls reached.
    /// </summary>
    [Fact]
    public void TheFastKernelsAreTheOnesCalled()
    {
        using var device = IlgpuDevice.Create(IlgpuDeviceKind.CpuSimulator);
        var k = device.Kernels;
        var owned = new System.Collections.Generic.List<IDisposable>();
        try
        {
            ArrayView<float> Up(float[] data)
            {
                var buffer = device.Accelerator.Allocate1D(data);
                owned.Add(buffer);
                return buffer.View;
            }

            ArrayView<float> Nan(int n) => Up(Enumerable.Repeat(float.NaN, n).ToArray());

            var a = Random(31, 20 * 9);
            var b = Random(32, 9 * 7);
            var a2 = Random(30, 2 * 9);
            k.Mm(Up(a2), Up(b), Nan(2 * 7), 2, 9, 7);
            k.Mm(Up(a2), Up(b), Nan(2 * 7), 2, 9, 7, transposeB: true);
            var b8 = Random(41, 8 * 7);
            k.Mm(Up(Random(42, 2 * 8)), Up(b8), Nan(2 * 7), 2, 8, 7, transposeB: true);
            k.Mm(Up(Random(43, 8)), Up(b8), Nan(7), 1, 8, 7, transposeB: true);
            k.Mm(Up(Random(44, 2 * 7)), Up(Random(45, 7 * 8)), Nan(2 * 8), 2, 7, 8);
            k.Mm(Up(a), Up(b), Nan(20 * 7), 20, 9, 7);
            var x = Random(33, 2 * 40);
            k.RmsNorm(Up(x), Up(Random(34, 40)), Nan(x.Length), 40, 1e-6f);
            k.Softmax(Up(x), Nan(x.Length), 40);
            k.Softmax(Up(Random(38, 300)), Nan(300), 300);
            k.RmsNorm(Up(Random(39, 300)), Up(Random(40, 300)), Nan(300), 300, 1e-6f);
            k.ScaledDotProductAttention(Up(Random(35, 8)), Up(Random(36, 9 * 8)), Up(Random(37, 9 * 8)), Nan(8), 1, 1, 1, 1, 9, 8);
            k.ScaledDotProductAttention(Up(Random(35, 7)), Up(Random(36, 9 * 7)), Up(Random(37, 9 * 7)), Nan(7), 1, 1, 1, 1, 9, 7);
            device.Synchronize();
            string compiled = string.Join(", ", device.CompileTimes.Keys.Order(StringComparer.Ordinal));
            foreach (string kernel in new[] { "GemvKnF32", "GemvNkF32", "GemvNkStreamF32", "GemvKnPipeF32", "GemvReduceF32", "Sgemm8x8F32", "RegRmsNormF32", "RegSoftmaxF32", "SoftmaxRowF32", "RmsNormWideF32", "DecodeStreamF32", "DecodeSplitF32" })
            {
                Assert.True(device.HasCompiled(kernel), $"{kernel} was never compiled; these calls compiled: {compiled}");
            }
        }
        finally
        {
            owned.ForEach(buffer => buffer.Dispose());
        }
    }

    /// <summary>
    /// The CUDA launch bounds (KernelSpecialization) the host passes for the register-heavy kernels compile to PTX with
    /// .maxntid (and .minnctapersm for the SGEMM); the simulator itself runs them without bounds.
    /// </summary>
    [Theory]
    [InlineData("Sgemm8x8F32", 256, 2)]
    [InlineData("SgemmWarpF32", 256, 2)]
    [InlineData("SgemmWarpNkVecF32", 256, 2)]
    [InlineData("GemvKnF32", 256, 0)]
    [InlineData("GemvNkF32", 256, 0)]
    [InlineData("GemvNkVec1F32", 256, 0)]
    [InlineData("GemvNkVecF32", 256, 0)]
    [InlineData("GemvKnVecF32", 256, 0)]
    [InlineData("DecodeSplitF32", 256, 0)]
    [InlineData("SoftmaxStreamF32", 1024, 0)]
    [InlineData("LayerNormF32", 512, 0)]
    [InlineData("LayerNormWideF32", 512, 0)]
    [InlineData("FusedAddRmsNormWideF32", 512, 0)]
    public void LaunchBoundsCompileToPtx(string kernel, int maxThreads, int minGroups)
    {
        var method = PtxCompileTests.KernelMethods().Last(m => m.Name == kernel);
        var spec = new ILGPU.Runtime.KernelSpecialization(maxThreads, minGroups > 0 ? minGroups : null);
        var ptx = Sm90Ptx.Of(method, spec);
        Assert.Contains($".maxntid {maxThreads}, 1, 1", ptx, StringComparison.Ordinal);
        Assert.Equal(minGroups > 0, ptx.Contains(".minnctapersm", StringComparison.Ordinal));
        PtxLocalSlots.AssertNone(ptx);
    }
}
