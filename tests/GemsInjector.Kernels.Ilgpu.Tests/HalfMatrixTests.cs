using System;
using System.Linq;
using ILGPU;
using Xunit;

namespace GemsInjector.Kernels.Ilgpu.Tests;

/// <summary>16-bit mm / bmm / addmm and scaled-dot-product attention on the CPU simulator against float64 references.</summary>
[Collection(SimulatorCollection.Name)]
public sealed class HalfMatrixTests : Half16TestBase
{
    public HalfMatrixTests(SimulatorFixture fixture)
        : base(fixture)
    {
    }

    [Theory]
    [InlineData(false, 1, 1, 1, false)]
    [InlineData(true, 1, 17, 3, false)]
    [InlineData(false, 3, 17, 5, true)]
    [InlineData(true, 17, 3, 17, true)]
    [InlineData(true, 5, 33, 7, false)]
    public void Mm(bool bf16, int m, int k, int n, bool transposeB)
    {
        int seed = 9000 + m * 100 + k * 10 + n + (bf16 ? 1 : 0) + (transposeB ? 2 : 0);
        var (a, av) = Random16(seed, m * k, bf16, -1f, 1f);
        var (b, bv) = Random16(seed + 1, k * n, bf16, -1f, 1f);
        double B(int kk, int j) => transposeB ? bv[j * k + kk] : bv[kk * n + j];
        var expected = Enumerable.Range(0, m * n).Select(e => Enumerable.Range(0, k).Sum(t => (double)av[e / n * k + t] * B(t, e % n))).ToArray();
        var c = Poisoned16(m * n, bf16);
        K.Mm(Upload(a), Upload(b), c, m, k, n, F(bf16), transposeB);
        Check16(c, expected, bf16, "mm", seed, Atol * k);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void BmmAndAddmm(bool bf16)
    {
        const int Batch = 3, M = 5, Kd = 17, N = 3;
        int seed = 9100 + (bf16 ? 1 : 0);
        var (a, av) = Random16(seed, Batch * M * Kd, bf16, -1f, 1f);
        var (b, bv) = Random16(seed + 1, Batch * Kd * N, bf16, -1f, 1f);
        var c = Poisoned16(Batch * M * N, bf16);
        K.Bmm(Upload(a), Upload(b), c, Batch, M, Kd, N, F(bf16));
        var expected = Enumerable.Range(0, Batch * M * N).Select(e =>
        {
            int i = e / (M * N), r = e % (M * N) / N, j = e % N;
            return Enumerable.Range(0, Kd).Sum(t => (double)av[i * M * Kd + r * Kd + t] * bv[i * Kd * N + t * N + j]);
        }).ToArray();
        Check16(c, expected, bf16, "bmm", seed, Atol * Kd);

        // transposed: b stored [batch, N, Kd]
        var bt = new ushort[b.Length];
        for (int i = 0; i < Batch; i++)
        {
            for (int t = 0; t < Kd; t++)
            {
                for (int j = 0; j < N; j++)
                {
                    bt[i * Kd * N + j * Kd + t] = b[i * Kd * N + t * N + j];
                }
            }
        }

        c = Poisoned16(Batch * M * N, bf16);
        K.Bmm(Upload(a), Upload(bt), c, Batch, M, Kd, N, F(bf16), transposeB: true);
        Check16(c, expected, bf16, "bmm transposed", seed, Atol * Kd);

        // addmm: row bias, matrix bias, beta = 0 with a NaN bias (not read), NaN in a propagates to its row
        var a0 = a.Take(M * Kd).ToArray();
        var av0 = av.Take(M * Kd).ToArray();
        var b0 = b.Take(Kd * N).ToArray();
        var bv0 = bv.Take(Kd * N).ToArray();
        var p = Enumerable.Range(0, M * N).Select(e => Enumerable.Range(0, Kd).Sum(t => (double)av0[e / N * Kd + t] * bv0[t * N + e % N])).ToArray();
        var (bias, biasv) = Random16(seed + 2, N, bf16);
        c = Poisoned16(M * N, bf16);
        K.Addmm(Upload(bias), Upload(a0), Upload(b0), c, M, Kd, N, F(bf16), beta: 0.5f, alpha: 2f);
        Check16(c, p.Select((v, e) => 0.5 * biasv[e % N] + 2 * v).ToArray(), bf16, "addmm row bias", seed, Atol * Kd);

        var (full, fullv) = Random16(seed + 3, M * N, bf16);
        c = Poisoned16(M * N, bf16);
        K.Addmm(Upload(full), Upload(a0), Upload(b0), c, M, Kd, N, F(bf16));
        Check16(c, p.Select((v, e) => fullv[e] + v).ToArray(), bf16, "addmm matrix bias", seed, Atol * Kd);

        var nanBias = Enumerable.Repeat(NaN16(bf16), N).ToArray();
        var an = a0.ToArray();
        an[Kd + 1] = NaN16(bf16); // row 1
        c = Poisoned16(M * N, bf16);
        K.Addmm(Upload(nanBias), Upload(an), Upload(b0), c, M, Kd, N, F(bf16), beta: 0f);
        Check16(c, p.Select((v, e) => e / N == 1 ? double.NaN : v).ToArray(), bf16, "addmm beta 0, NaN row", seed, Atol * Kd);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void ZeroSizeProducts(bool bf16)
    {
        var e = ArrayView<ushort>.Empty;
        K.Mm(e, Upload(To16(new float[6], bf16)), e, 0, 2, 3, F(bf16)); // M = 0: nothing to write
        K.Bmm(e, e, e, 0, 2, 2, 2, F(bf16));
        var c = Poisoned16(6, bf16);
        K.Mm(e, e, c, 2, 0, 3, F(bf16)); // K = 0: zeros
        Check16(c, new double[6], bf16, "mm K = 0", 0, 0);
        var (bias, biasv) = Random16(9400, 3, bf16);
        c = Poisoned16(6, bf16);
        K.Addmm(Upload(bias), e, e, c, 2, 0, 3, F(bf16), beta: 2f);
        Check16(c, Enumerable.Range(0, 6).Select(i => 2.0 * biasv[i % 3]).ToArray(), bf16, "addmm K = 0", 0, 0);
    }

    [Theory]
    [InlineData(false, false, false, 2, 2, 5, 7, 8)]
    [InlineData(true, true, false, 4, 2, 5, 5, 8)]
    [InlineData(true, false, true, 2, 1, 3, 17, 4)]
    [InlineData(false, true, true, 3, 3, 17, 17, 3)]
    [InlineData(true, false, false, 1, 1, 1, 1, 1)]
    public void Attention(bool bf16, bool causal, bool masked, int heads, int kvHeads, int lq, int lk, int d)
    {
        const int Batch = 2;
        int seed = 9200 + heads * 1000 + lq * 100 + lk + d + (bf16 ? 1 : 0) + (causal ? 2 : 0) + (masked ? 4 : 0);
        var (q, qv) = Random16(seed, Batch * heads * lq * d, bf16, -1f, 1f);
        var (k, kv) = Random16(seed + 1, Batch * kvHeads * lk * d, bf16, -1f, 1f);
        var (v, vv) = Random16(seed + 2, Batch * kvHeads * lk * d, bf16, -1f, 1f);
        var rng = new Random(seed);

        // [batch, lq, lk] additive float32 mask; key 0 always visible.
        var mask = Enumerable.Range(0, Batch * lq * lk).Select(e => e % lk == 0 || rng.Next(4) != 0 ? 0f : float.NegativeInfinity).ToArray();
        double scale = 1 / Math.Sqrt(d);
        var expected = new double[Batch * heads * lq * d];
        for (int b = 0; b < Batch; b++)
        {
            for (int h = 0; h < heads; h++)
            {
                int g = h / (heads / kvHeads);
                for (int i = 0; i < lq; i++)
                {
                    var s = new double[lk];
                    for (int j = 0; j < lk; j++)
                    {
                        double dot = 0;
                        for (int t = 0; t < d; t++)
                        {
                            dot += (double)qv[((b * heads + h) * lq + i) * d + t] * kv[((b * kvHeads + g) * lk + j) * d + t];
                        }

                        bool visible = (!causal || j <= i) && (!masked || mask[(b * lq + i) * lk + j] == 0f);
                        s[j] = visible ? dot * scale : double.NegativeInfinity;
                    }

                    double mx = s.Max();
                    var p = s.Select(x => double.IsNegativeInfinity(x) ? 0 : Math.Exp(x - mx)).ToArray();
                    double sum = p.Sum();
                    for (int t = 0; t < d; t++)
                    {
                        double acc = 0;
                        for (int j = 0; j < lk; j++)
                        {
                            acc += p[j] * vv[((b * kvHeads + g) * lk + j) * d + t];
                        }

                        expected[((b * heads + h) * lq + i) * d + t] = sum == 0 ? 0 : acc / sum;
                    }
                }
            }
        }

        var o = Poisoned16(expected.Length, bf16);
        K.ScaledDotProductAttention(Upload(q), Upload(k), Upload(v), o, Batch, heads, kvHeads, lq, lk, d, F(bf16), causal,
            masked ? Upload(mask) : default);
        Check16(o, expected, bf16, "sdpa", seed, Atol * lk);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void AttentionNaNPropagatesAndEmptyQueriesLaunchNothing(bool bf16)
    {
        const int Lk = 4, D = 4;
        var (q, _) = Random16(9300, D, bf16);
        var (k, _) = Random16(9301, Lk * D, bf16);
        var (v, _) = Random16(9302, Lk * D, bf16);
        k[5] = NaN16(bf16);
        var o = Poisoned16(D, bf16);
        K.ScaledDotProductAttention(Upload(q), Upload(k), Upload(v), o, 1, 1, 1, 1, Lk, D, F(bf16));
        Assert.All(ToFloat(Download(o), bf16), x => Assert.True(float.IsNaN(x)));
        K.ScaledDotProductAttention(ArrayView<ushort>.Empty, Upload(k), Upload(v), ArrayView<ushort>.Empty, 1, 1, 1, 0, Lk, D, F(bf16));
        Device.Synchronize();
    }
}
