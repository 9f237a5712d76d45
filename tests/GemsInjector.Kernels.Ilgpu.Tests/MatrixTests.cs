using System;
using System.Linq;
using ILGPU;
using Xunit;

namespace GemsInjector.Kernels.Ilgpu.Tests;

[Collection(SimulatorCollection.Name)]
public sealed class MatrixTests : KernelTestBase
{
    public MatrixTests(SimulatorFixture fixture)
        : base(fixture)
    {
    }

    [Theory]
    [InlineData(3, 2, 1, 8, 8, true)]
    [InlineData(5, 4, 2, 16, 12, true)]
    [InlineData(5, 4, 2, 16, 12, false)]
    [InlineData(2, 3, 0, 10, 6, false)]
    [InlineData(1, 1, 1, 4, 4, true)]
    public void Rotary(int tokens, int heads, int kvHeads, int headSize, int rotDim, bool neox)
    {
        int seed = 2000 + tokens * 100 + heads * 10 + headSize + (neox ? 1 : 0);
        const int maxPos = 20;
        var q = Random(seed, tokens * heads * headSize);
        var k = Random(seed + 1, tokens * kvHeads * headSize);
        var cache = Random(seed + 2, maxPos * rotDim, -1f, 1f);
        var rng = new Random(seed);
        var pos = Enumerable.Range(0, tokens).Select(_ => (long)rng.Next(maxPos)).ToArray();
        var dq = Upload(q);
        var dk = Upload(k);
        K.RotaryEmbedding(Upload(pos), dq, dk, Upload(cache), headSize, rotDim, neox);
        AssertClose(Download(dq), Reference(q, heads), RtolF32, Atol, "rotary q", seed);
        if (kvHeads > 0)
        {
            AssertClose(Download(dk), Reference(k, kvHeads), RtolF32, Atol, "rotary k", seed);
        }

        double[] Reference(float[] x, int h)
        {
            var r = x.Select(v => (double)v).ToArray();
            int half = rotDim / 2;
            for (int t = 0; t < tokens; t++)
            {
                for (int hh = 0; hh < h; hh++)
                {
                    int b = (t * h + hh) * headSize;
                    for (int i = 0; i < half; i++)
                    {
                        double cos = cache[pos[t] * rotDim + i], sin = cache[pos[t] * rotDim + half + i];
                        int i1 = neox ? i : 2 * i, i2 = neox ? i + half : 2 * i + 1;
                        r[b + i1] = x[b + i1] * cos - x[b + i2] * sin;
                        r[b + i2] = x[b + i2] * cos + x[b + i1] * sin;
                    }
                }
            }

            return r;
        }
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

    [Theory]
    [InlineData(1, 1, 1, false)]
    [InlineData(33, 40, 37, false)]
    [InlineData(33, 40, 37, true)]
    [InlineData(5, 17, 3, false)]
    [InlineData(4, 0, 6, false)]
    public void Mm(int m, int k, int n, bool transposeB)
    {
        int seed = 3000 + m * 10000 + k * 100 + n;
        var a = Random(seed, m * k);
        var b = Random(seed + 1, k * n);
        var c = Poisoned(m * n);
        K.Mm(Upload(a), Upload(b), c, m, k, n, transposeB);
        AssertClose(Download(c), MatMul(a, b, 1, m, k, n, transposeB), RtolF32, Atol * Math.Max(k, 1), $"mm {m}x{k}x{n}", seed);
    }

    [Theory]
    [InlineData(3, 7, 9, 5, false)]
    [InlineData(2, 16, 20, 17, true)]
    public void Bmm(int batch, int m, int k, int n, bool transposeB)
    {
        int seed = 3100 + batch * 1000 + m;
        var a = Random(seed, batch * m * k);
        var b = Random(seed + 1, batch * k * n);
        var c = Poisoned(batch * m * n);
        K.Bmm(Upload(a), Upload(b), c, batch, m, k, n, transposeB);
        AssertClose(Download(c), MatMul(a, b, batch, m, k, n, transposeB), RtolF32, Atol * k, "bmm", seed);
    }

    [Theory]
    [InlineData(9, 13, 11, false)]
    [InlineData(9, 13, 11, true)]
    public void Addmm(int m, int k, int n, bool matrixBias)
    {
        int seed = 3200 + m + (matrixBias ? 1 : 0);
        var a = Random(seed, m * k);
        var b = Random(seed + 1, k * n);
        var bias = Random(seed + 2, matrixBias ? m * n : n);
        var c = Poisoned(m * n);
        K.Addmm(Upload(bias), Upload(a), Upload(b), c, m, k, n, beta: 0.5f, alpha: 2f);
        var prod = MatMul(a, b, 1, m, k, n, false);
        var expected = prod.Select((p, idx) => 2 * p + 0.5 * bias[matrixBias ? idx : idx % n]).ToArray();
        AssertClose(Download(c), expected, RtolF32, Atol * k, "addmm", seed);

        // beta = 0 ignores the bias, NaN included.
        var nanBias = Enumerable.Repeat(float.NaN, n).ToArray();
        c = Poisoned(m * n);
        K.Addmm(Upload(nanBias), Upload(a), Upload(b), c, m, k, n, beta: 0f, alpha: 1f);
        AssertClose(Download(c), prod, RtolF32, Atol * k, "addmm beta=0", seed);
    }

    [Fact]
    public void MmPropagatesNaN()
    {
        var a = Random(1, 4 * 5);
        a[7] = float.NaN; // row 1
        var b = Random(2, 5 * 3);
        var c = Poisoned(4 * 3);
        K.Mm(Upload(a), Upload(b), c, 4, 5, 3);
        var got = Download(c);
        for (int i = 0; i < 12; i++)
        {
            Assert.Equal(i / 3 == 1, float.IsNaN(got[i]));
        }
    }

    public static TheoryData<int, int, int, bool, int> AttentionCases => new()
    {
        // lq, lk, d, causal, mask kind (0 none, 1 [lq, lk], 2 [b, h, lq, lk])
        { 1, 1, 16, false, 0 },
        { 17, 17, 16, true, 0 },
        { 5, 17, 16, false, 0 },
        { 17, 9, 16, true, 0 },
        { 7, 13, 8, false, 1 },
        { 6, 11, 16, true, 2 },
    };

    [Theory]
    [MemberData(nameof(AttentionCases))]
    public void Attention(int lq, int lk, int d, bool causal, int maskKind)
    {
        const int batch = 1, heads = 4, kvHeads = 2;
        int seed = 4000 + lq * 1000 + lk * 10 + d + (causal ? 7 : 0) + maskKind;
        var q = Random(seed, batch * heads * lq * d, -2f, 2f);
        var k = Random(seed + 1, batch * kvHeads * lk * d, -2f, 2f);
        var v = Random(seed + 2, batch * kvHeads * lk * d);
        float[] mask = maskKind switch
        {
            1 => Random(seed + 3, lq * lk, -2f, 1f),
            2 => Random(seed + 3, batch * heads * lq * lk, -2f, 1f),
            _ => Array.Empty<float>(),
        };
        if (maskKind == 1)
        {
            mask[1] = float.NegativeInfinity;
        }

        var o = Poisoned(q.Length);
        K.ScaledDotProductAttention(Upload(q), Upload(k), Upload(v), o, batch, heads, kvHeads, lq, lk, d, causal, mask.Length == 0 ? default : Upload(mask));
        var expected = new double[q.Length];
        double scale = 1 / Math.Sqrt(d);
        for (int h = 0; h < heads; h++)
        {
            int kh = h / (heads / kvHeads);
            for (int i = 0; i < lq; i++)
            {
                var s = new double[lk];
                for (int j = 0; j < lk; j++)
                {
                    double dot = 0;
                    for (int t = 0; t < d; t++)
                    {
                        dot += (double)q[(h * lq + i) * d + t] * k[(kh * lk + j) * d + t];
                    }

                    s[j] = dot * scale + (maskKind == 1 ? mask[i * lk + j] : maskKind == 2 ? mask[(h * lq + i) * lk + j] : 0);
                    if (causal && j > i)
                    {
                        s[j] = double.NegativeInfinity;
                    }
                }

                double m = s.Max();
                var p = s.Select(x => Math.Exp(x - m)).ToArray();
                double sum = p.Sum();
                for (int t = 0; t < d; t++)
                {
                    double acc = 0;
                    for (int j = 0; j < lk; j++)
                    {
                        acc += p[j] * v[(kh * lk + j) * d + t];
                    }

                    expected[(h * lq + i) * d + t] = acc / sum;
                }
            }
        }

        AssertClose(Download(o), expected, RtolF32, Atol * Math.Max(lk, d) / 4, $"sdpa lq={lq} lk={lk} causal={causal} mask={maskKind}", seed);
    }

    [Fact]
    public void AttentionFullyMaskedRowIsZeroAndNaNPropagates()
    {
        const int lq = 2, lk = 3, d = 4;
        var q = Random(5, lq * d);
        var k = Random(6, lk * d);
        var v = Random(7, lk * d);
        var mask = new float[lq * lk];
        for (int j = 0; j < lk; j++)
        {
            mask[j] = float.NegativeInfinity; // row 0 fully masked
        }

        var o = Poisoned(q.Length);
        K.ScaledDotProductAttention(Upload(q), Upload(k), Upload(v), o, 1, 1, 1, lq, lk, d, mask: Upload(mask));
        var got = Download(o);
        Assert.All(got.Take(d), x => Assert.Equal(0f, x));
        Assert.All(got.Skip(d), x => Assert.False(float.IsNaN(x)));

        q[d + 1] = float.NaN; // query row 1 → NaN output row
        o = Poisoned(q.Length);
        K.ScaledDotProductAttention(Upload(q), Upload(k), Upload(v), o, 1, 1, 1, lq, lk, d, mask: Upload(mask));
        got = Download(o);
        Assert.All(got.Skip(d), x => Assert.True(float.IsNaN(x)));
    }

    [Theory]
    [InlineData(null, 2)]
    [InlineData("", 2)]
    [InlineData("2", 2)]
    [InlineData(" 1 ", 1)]
    [InlineData("one", 2)]
    public void SgemmOccupancySettingIsOneOrTwoGroupsPerSm(string? setting, int expected) => Assert.Equal(expected, SgemmOccupancy.Parse(setting));
}
