using System;
using System.Linq;
using GemsInjector.Kernels.Cpu;
using GemsInjector.Kernels.Ilgpu;
using GemsInjector.Kernels.Staging;
using GemsInjector.TestSupport;
using TorchSharp;
using Xunit;

namespace GemsInjector.Kernels.Tests;

/// <summary>One ILGPU CPU-simulator device and its tensor kernels for all <see cref="IlgpuTensorKernelsTests"/> (kernels compile once).</summary>
public sealed class IlgpuTensorKernelsFixture : IDisposable
{
    public IlgpuTensorKernelsFixture() => Kernels = new IlgpuTensorKernels(IlgpuDevice.Create(IlgpuDeviceKind.CpuSimulator), ownsDevice: true);

    public IlgpuTensorKernels Kernels { get; }

    public void Dispose() => Kernels.Dispose();
}

/// <summary>
/// <see cref="IlgpuTensorKernels"/> on the ILGPU CPU simulator (small shapes: it is slow), each method against the CPU kernel
/// (<see cref="CpuTensorKernels"/>) and a float64 reference composed here, fresh seeded inputs (GEMS_TEST_SEED replays one).
/// Tolerances (FlagGems): rtol 1.3e-6 float32, 1e-3 float16, 1.6e-2 bfloat16; atol 1e-4 × reduced length (1 for elementwise).
/// </summary>
public sealed class IlgpuTensorKernelsTests : IClassFixture<IlgpuTensorKernelsFixture>
{
    private static readonly torch.ScalarType F32 = torch.ScalarType.Float32;
    private readonly IlgpuTensorKernels k;

    public IlgpuTensorKernelsTests(IlgpuTensorKernelsFixture fixture) => k = fixture.Kernels;

    public static TheoryData<torch.ScalarType> DTypes() => new(KernelTestData.FloatTypes);

    [Fact]
    public void BackendNameAndDevice()
    {
        Assert.Equal(KernelBackends.IlgpuCpu, k.BackendName);
        Assert.Equal(IlgpuDeviceKind.CpuSimulator, k.Device.Kind);
    }

    [Theory]
    [MemberData(nameof(DTypes))]
    public void BinaryOperators(torch.ScalarType dtype)
    {
        int seed = TestData.NewSeed();
        var random = new Random(seed);
        long[] shape = { 3, 37 };
        var (a, av) = KernelTestData.Random(random, dtype, 1.0, shape);
        var (b, bv) = KernelTestData.Random(random, dtype, 1.0, shape);
        using var _a = a;
        using var _b = b;
        using var bPositive = b.abs().add(HeldScalars.Of(0.5), HeldScalars.One);
        float[] pv = KernelTestData.Values(bPositive);
        double alpha = 0.75;
        Check(k.Add(a, b, alpha), CpuTensorKernels.Add(a, b, alpha), av.Select((x, i) => x + alpha * bv[i]).ToArray(), dtype, 1e-4, seed, "add");
        Check(k.Sub(a, b, alpha), CpuTensorKernels.Sub(a, b, alpha), av.Select((x, i) => x - alpha * bv[i]).ToArray(), dtype, 1e-4, seed, "sub");
        Check(k.Mul(a, b), CpuTensorKernels.Mul(a, b), av.Select((x, i) => (double)x * bv[i]).ToArray(), dtype, 1e-4, seed, "mul");
        Check(k.Div(a, bPositive), CpuTensorKernels.Div(a, bPositive), av.Select((x, i) => (double)x / pv[i]).ToArray(), dtype, 1e-4, seed, "div");
    }

    [Theory]
    [MemberData(nameof(DTypes))]
    public void UnaryOperators(torch.ScalarType dtype)
    {
        int seed = TestData.NewSeed();
        var random = new Random(seed);
        var (x, xv) = KernelTestData.Random(random, dtype, 2.0, 2, 3, 19);
        using var _x = x;
        using var positive = x.abs().add(HeldScalars.Of(0.25), HeldScalars.One);
        float[] pv = KernelTestData.Values(positive);
        double[] R(Func<double, double> f) => xv.Select(v => f(v)).ToArray();
        Check(k.Neg(x), CpuTensorKernels.Neg(x), R(v => -v), dtype, 1e-4, seed, "neg");
        Check(k.Exp(x), CpuTensorKernels.Exp(x), R(Math.Exp), dtype, 1e-4, seed, "exp");
        Check(k.Rsqrt(positive), CpuTensorKernels.Rsqrt(positive), pv.Select(v => 1.0 / Math.Sqrt(v)).ToArray(), dtype, 1e-4, seed, "rsqrt");
        Check(k.Relu(x), CpuTensorKernels.Relu(x), R(Reference64.Relu), dtype, 1e-4, seed, "relu");
        Check(k.Sigmoid(x), CpuTensorKernels.Sigmoid(x), R(Reference64.Sigmoid), dtype, 1e-4, seed, "sigmoid");
        Check(k.Tanh(x), CpuTensorKernels.Tanh(x), R(Math.Tanh), dtype, 1e-4, seed, "tanh");
        Check(k.Silu(x), CpuTensorKernels.Silu(x), R(Reference64.Silu), dtype, 1e-4, seed, "silu");
        Check(k.Gelu(x, GeluApproximation.None), CpuTensorKernels.Gelu(x, GeluApproximation.None), R(Reference64.GeluErf), dtype, 1e-4, seed, "gelu");
        Check(k.Gelu(x, GeluApproximation.Tanh), CpuTensorKernels.Gelu(x, GeluApproximation.Tanh), R(Reference64.GeluTanh), dtype, 1e-4, seed, "gelu tanh");
    }

    [Theory]
    [MemberData(nameof(DTypes))]
    public void GatedActivations(torch.ScalarType dtype)
    {
        int seed = TestData.NewSeed();
        var random = new Random(seed);
        const int Rows = 5, D = 24;
        var (x, xv) = KernelTestData.Random(random, dtype, 1.5, Rows, 2 * D);
        using var _x = x;
        double[] R(Func<double, double> f) =>
            Enumerable.Range(0, Rows * D).Select(i => f(xv[(i / D * 2 * D) + (i % D)]) * xv[(i / D * 2 * D) + D + (i % D)]).ToArray();
        Check(k.SiluAndMul(x), CpuTensorKernels.SiluAndMul(x), R(Reference64.Silu), dtype, 1e-4, seed, "silu_and_mul");
        Check(k.GeluAndMul(x, GeluApproximation.None), CpuTensorKernels.GeluAndMul(x, GeluApproximation.None), R(Reference64.GeluErf), dtype, 1e-4, seed, "gelu_and_mul");
        Check(k.GeluAndMul(x, GeluApproximation.Tanh), CpuTensorKernels.GeluAndMul(x, GeluApproximation.Tanh), R(Reference64.GeluTanh), dtype, 1e-4, seed, "gelu_tanh_and_mul");
    }

    [Theory]
    [MemberData(nameof(DTypes))]
    public void SoftmaxOverLastDimension(torch.ScalarType dtype)
    {
        int seed = TestData.NewSeed();
        var (x, xv) = KernelTestData.Random(new Random(seed), dtype, 3.0, 4, 2, 33);
        using var _x = x;
        double atol = 1e-4 * 33;
        Check(k.Softmax(x, -1), CpuTensorKernels.Softmax(x, -1), Reference64.Softmax(xv, 8, 33, 1, log: false), dtype, atol, seed, "softmax");
        Check(k.LogSoftmax(x, 2), CpuTensorKernels.LogSoftmax(x, 2), Reference64.Softmax(xv, 8, 33, 1, log: true), dtype, atol, seed, "log_softmax");
    }

    [Theory]
    [MemberData(nameof(DTypes))]
    public void Norms(torch.ScalarType dtype)
    {
        int seed = TestData.NewSeed();
        var random = new Random(seed);
        const int Rows = 6, N = 40;
        const double Eps = 1e-5;
        var (x, xv) = KernelTestData.Random(random, dtype, 1.0, Rows, N);
        var (w, wv) = KernelTestData.Random(random, dtype, 1.0, N);
        var (b, bv) = KernelTestData.Random(random, dtype, 1.0, N);
        using var _x = x;
        using var _w = w;
        using var _b = b;
        double atol = 1e-4 * N;
        Check(k.RmsNorm(x, w, Eps), CpuTensorKernels.RmsNorm(x, w, Eps), RmsRef(xv, wv, N, Eps), dtype, atol, seed, "rms_norm");
        Check(k.LayerNorm(x, w, b, Eps), CpuTensorKernels.LayerNorm(x, w, b, Eps), LayerRef(xv, wv, bv, N, Eps), dtype, atol, seed, "layer_norm");
        Check(k.LayerNorm(x, null, null, Eps), CpuTensorKernels.LayerNorm(x, null, null, Eps), LayerRef(xv, null, null, N, Eps), dtype, atol, seed, "layer_norm no affine");
    }

    [Theory]
    [MemberData(nameof(DTypes))]
    public void FusedAddRmsNormInPlace(torch.ScalarType dtype)
    {
        int seed = TestData.NewSeed();
        var random = new Random(seed);
        const int Rows = 4, N = 48;
        const double Eps = 1e-6;
        var (x, xv) = KernelTestData.Random(random, dtype, 1.0, Rows, N);
        var (r, rv) = KernelTestData.Random(random, dtype, 1.0, Rows, N);
        var (w, wv) = KernelTestData.Random(random, dtype, 1.0, N);
        using var _w = w;
        using var cpuX = x.clone();
        using var cpuR = r.clone();
        CpuTensorKernels.FusedAddRmsNorm(cpuX, cpuR, w, Eps);
        k.FusedAddRmsNorm(x, r, w, Eps);
        double[] sum = Typed.Round(xv.Select((v, i) => (double)v + rv[i]).ToArray(), dtype);
        double[] normed = RmsRef(sum.Select(v => (float)v).ToArray(), wv, N, Eps);
        Check(r, cpuR, sum, dtype, 1e-4, seed, "fused_add_rms_norm residual");
        Check(x, cpuX, normed, dtype, 1e-4 * N, seed, "fused_add_rms_norm output");
    }

    [Theory]
    [MemberData(nameof(DTypes))]
    public void RotaryInPlace(torch.ScalarType dtype)
    {
        int seed = TestData.NewSeed();
        var random = new Random(seed);
        const int Tokens = 3, Heads = 2, KvHeads = 1, HeadSize = 16, RotDim = 12, MaxPos = 10;
        var (cache, cv) = KernelTestData.Random(random, dtype, 1.0, MaxPos, RotDim);
        using var _c = cache;
        long[] pos = { 7, 0, 9 };
        foreach (bool neox in new[] { true, false })
        {
            var (q, qv) = KernelTestData.Random(random, dtype, 1.0, Tokens, Heads * HeadSize);
            var (kk, kv) = KernelTestData.Random(random, dtype, 1.0, Tokens, KvHeads, HeadSize);
            using var positions = torch.tensor(pos, torch.ScalarType.Int64);
            using var positions32 = positions.to(torch.ScalarType.Int32);
            using var cq = q.clone();
            using var ck = kk.clone();
            CpuTensorKernels.RotaryEmbedding(positions, cq, ck, HeadSize, cache, neox);
            k.RotaryEmbedding(neox ? positions : positions32, q, kk, HeadSize, cache, neox);
            Check(q, cq, RotateRef(qv, Heads, HeadSize, cv, RotDim, pos, neox), dtype, 1e-4, seed, $"rotary query neox={neox}");
            Check(kk, ck, RotateRef(kv, KvHeads, HeadSize, cv, RotDim, pos, neox), dtype, 1e-4, seed, $"rotary key neox={neox}");
        }
    }

    [Fact]
    public void RotaryWithoutKey()
    {
        int seed = TestData.NewSeed();
        var random = new Random(seed);
        var (cache, cv) = KernelTestData.Random(random, F32, 1.0, 4, 8);
        var (q, qv) = KernelTestData.Random(random, F32, 1.0, 2, 16);
        using var _c = cache;
        using var positions = torch.tensor(new long[] { 3, 1 }, torch.ScalarType.Int64);
        k.RotaryEmbedding(positions, q, null, 8, cache, true);
        using var cq = KernelTestData.Make(qv, new long[] { 2, 16 }, F32);
        CpuTensorKernels.RotaryEmbedding(positions, cq, null, 8, cache, true);
        Check(q, cq, RotateRef(qv, 2, 8, cv, 8, new long[] { 3, 1 }, true), F32, 1e-4, seed, "rotary no key");
    }

    [Fact]
    public void EmbeddingGathersRows()
    {
        int seed = TestData.NewSeed();
        var (w, wv) = KernelTestData.Random(new Random(seed), F32, 1.0, 11, 7);
        using var _w = w;
        long[] ids = { 3, 0, 10, 3, 5, 9 };
        using var indices = torch.tensor(ids, new long[] { 2, 3 }, torch.ScalarType.Int64);
        using var indices32 = indices.to(torch.ScalarType.Int32);
        double[] expected = ids.SelectMany(i => Enumerable.Range(0, 7).Select(j => (double)wv[(i * 7) + j])).ToArray();
        Check(k.Embedding(w, indices), CpuTensorKernels.Embedding(w, indices), expected, F32, 0, seed, "embedding int64");
        Check(k.Embedding(w, indices32), CpuTensorKernels.Embedding(w, indices32), expected, F32, 0, seed, "embedding int32");
        using var bad = torch.tensor(new long[] { 1, 11 }, torch.ScalarType.Int64);
        AssertSameError(() => CpuTensorKernels.Embedding(w, bad), () => k.Embedding(w, bad));
    }

    [Fact]
    public void ReductionsOverLastDimensionAndAll()
    {
        int seed = TestData.NewSeed();
        var (x, xv) = KernelTestData.Random(new Random(seed), F32, 1.0, 3, 4, 29);
        using var _x = x;
        const int Rows = 12, N = 29;
        double[] Row(Func<double[], double> f) => Enumerable.Range(0, Rows).Select(r => f(xv.Skip(r * N).Take(N).Select(v => (double)v).ToArray())).ToArray();
        double[] all = xv.Select(v => (double)v).ToArray();
        Check(k.Sum(x, -1, false), CpuTensorKernels.Sum(x, -1, false), Row(r => r.Sum()), F32, 1e-4 * N, seed, "sum");
        Check(k.Mean(x, 2, true), CpuTensorKernels.Mean(x, 2, true), Row(r => r.Average()), F32, 1e-4 * N, seed, "mean keepdim");
        Check(k.Amax(x, -1, false), CpuTensorKernels.Amax(x, -1, false), Row(r => r.Max()), F32, 0, seed, "amax");
        Check(k.Sum(x, null, false), CpuTensorKernels.Sum(x, null, false), new[] { all.Sum() }, F32, 1e-4 * all.Length, seed, "sum all");
        Check(k.Amax(x, null, true), CpuTensorKernels.Amax(x, null, true), new[] { all.Max() }, F32, 0, seed, "amax all keepdim");
        AssertEqualLongs(CpuTensorKernels.Argmax(x, -1, false), k.Argmax(x, -1, false), Row(r => Array.IndexOf(r, r.Max())));
        AssertEqualLongs(CpuTensorKernels.Argmax(x, null, false), k.Argmax(x, null, false), new double[] { Array.IndexOf(all, all.Max()) });
    }

    [Fact]
    public void TopKLargestOverLastDimension()
    {
        int seed = TestData.NewSeed();
        var (x, xv) = KernelTestData.Random(new Random(seed), F32, 1.0, 5, 31);
        using var _x = x;
        var (values, indices) = k.TopK(x, 4, -1, true);
        var (cpuValues, cpuIndices) = CpuTensorKernels.TopK(x, 4, -1, true);
        double[] expected = Enumerable.Range(0, 5).SelectMany(r => xv.Skip(r * 31).Take(31).OrderByDescending(v => v).Take(4).Select(v => (double)v)).ToArray();
        Check(values, cpuValues, expected, F32, 0, seed, "topk values");
        AssertEqualLongs(cpuIndices, indices, null);
        indices.Dispose();
        cpuIndices.Dispose();
    }

    [Fact]
    public void MatrixProducts()
    {
        int seed = TestData.NewSeed();
        var random = new Random(seed);
        const int M = 7, K = 19, N = 13, B = 3;
        var (a, av) = KernelTestData.Random(random, F32, 1.0, M, K);
        var (b, bv) = KernelTestData.Random(random, F32, 1.0, K, N);
        var (wt, wtv) = KernelTestData.Random(random, F32, 1.0, N, K); // a linear layer's weight: mat2 = wt.T, read in place
        var (bias, biasv) = KernelTestData.Random(random, F32, 1.0, N);
        var (full, fullv) = KernelTestData.Random(random, F32, 1.0, M, 1);
        using var _a = a;
        using var _b = b;
        using var _wt = wt;
        using var _bias = bias;
        using var _full = full;
        using var w = wt.t();
        double[] Gemm(float[] x, Func<int, int, double> y, int m, int kk, int n) =>
            Enumerable.Range(0, m * n).Select(e => Enumerable.Range(0, kk).Sum(t => (double)x[(e / n * kk) + t] * y(t, e % n))).ToArray();
        double[] ab = Gemm(av, (t, j) => bv[(t * N) + j], M, K, N);
        double[] aw = Gemm(av, (t, j) => wtv[(j * K) + t], M, K, N);
        double atol = 1e-4 * K;
        Check(k.Mm(a, b), CpuTensorKernels.Mm(a, b), ab, F32, atol, seed, "mm");
        Check(k.Mm(a, w), CpuTensorKernels.Mm(a, w), aw, F32, atol, seed, "mm transposed");
        Check(k.Addmm(bias, a, w, 0.5, 2.0), CpuTensorKernels.Addmm(bias, a, w, 0.5, 2.0),
            aw.Select((v, e) => (0.5 * biasv[e % N]) + (2.0 * v)).ToArray(), F32, atol, seed, "addmm row bias");
        Check(k.Addmm(full, a, b, 1.0, 1.0), CpuTensorKernels.Addmm(full, a, b, 1.0, 1.0),
            ab.Select((v, e) => fullv[e / N] + v).ToArray(), F32, atol, seed, "addmm [M, 1] bias");
        using var nanBias = torch.full(new long[] { N }, HeldScalars.Of(double.NaN), F32);
        Check(k.Addmm(nanBias, a, b, 0.0, 1.0), CpuTensorKernels.Addmm(nanBias, a, b, 0.0, 1.0), ab, F32, atol, seed, "addmm beta 0");

        var (ba, bav) = KernelTestData.Random(random, F32, 1.0, B, M, K);
        var (bb, bbv) = KernelTestData.Random(random, F32, 1.0, B, K, N);
        using var _ba = ba;
        using var _bb = bb;
        double[] bmm = Enumerable.Range(0, B).SelectMany(i =>
            Gemm(bav.Skip(i * M * K).ToArray(), (t, j) => bbv[(i * K * N) + (t * N) + j], M, K, N)).ToArray();
        Check(k.Bmm(ba, bb), CpuTensorKernels.Bmm(ba, bb), bmm, F32, atol, seed, "bmm");
        using var bbt = bb.transpose(1, 2).contiguous().transpose(1, 2); // same values, per-batch transposed memory
        Check(k.Bmm(ba, bbt), CpuTensorKernels.Bmm(ba, bbt), bmm, F32, atol, seed, "bmm transposed");
    }

    [Theory]
    [InlineData(false, false, 2, 2)]
    [InlineData(true, false, 4, 2)]
    [InlineData(false, true, 2, 1)]
    [InlineData(true, true, 4, 1)]
    public void Attention(bool causal, bool boolMask, int heads, int kvHeads)
    {
        int seed = TestData.NewSeed();
        var random = new Random(seed);
        const int Batch = 2, Lq = 5, Lk = 7, D = 8;
        var (q, qv) = KernelTestData.Random(random, F32, 1.0, Batch, heads, Lq, D);
        var (kk, kv) = KernelTestData.Random(random, F32, 1.0, Batch, kvHeads, Lk, D);
        var (v, vv) = KernelTestData.Random(random, F32, 1.0, Batch, kvHeads, Lk, D);
        using var _q = q;
        using var _k = kk;
        using var _v = v;
        // A padding-style mask [B, 1, 1, Lk] (bool: keep; float: 0 / -inf), which the host expands; key 0 always kept.
        bool[] keep = Enumerable.Range(0, Batch * Lk).Select(i => i % Lk == 0 || random.Next(4) != 0).ToArray();
        using torch.Tensor mask = boolMask
            ? torch.tensor(keep, new long[] { Batch, 1, 1, Lk })
            : torch.tensor(keep.Select(x => x ? 0f : float.NegativeInfinity).ToArray(), new long[] { Batch, 1, 1, Lk });
        double scale = 1.0 / Math.Sqrt(D);
        var expected = new double[Batch * heads * Lq * D];
        for (int b = 0; b < Batch; b++)
        {
            for (int h = 0; h < heads; h++)
            {
                int g = h / (heads / kvHeads);
                for (int i = 0; i < Lq; i++)
                {
                    var scores = new double[Lk];
                    for (int j = 0; j < Lk; j++)
                    {
                        double dot = 0;
                        for (int t = 0; t < D; t++)
                        {
                            dot += (double)qv[((((b * heads) + h) * Lq) + i) * D + t] * kv[((((b * kvHeads) + g) * Lk) + j) * D + t];
                        }

                        bool visible = keep[(b * Lk) + j] && (!causal || j <= i);
                        scores[j] = visible ? dot * scale : double.NegativeInfinity;
                    }

                    double max = scores.Max();
                    double[] p = scores.Select(s => double.IsNegativeInfinity(s) ? 0 : Math.Exp(s - max)).ToArray();
                    double sum = p.Sum();
                    for (int t = 0; t < D; t++)
                    {
                        double acc = 0;
                        for (int j = 0; j < Lk; j++)
                        {
                            acc += p[j] * vv[((((b * kvHeads) + g) * Lk) + j) * D + t];
                        }

                        expected[((((b * heads) + h) * Lq) + i) * D + t] = acc / sum;
                    }
                }
            }
        }

        Check(k.ScaledDotProductAttention(q, kk, v, mask, causal, null), CpuTensorKernels.ScaledDotProductAttention(q, kk, v, mask, causal, null),
            expected, F32, 1e-4 * Lk * D, seed, "sdpa");
    }

    [Fact]
    public void UncoveredCasesFallBackToTheCpuKernels()
    {
        int seed = TestData.NewSeed();
        var random = new Random(seed);
        var (x, _) = KernelTestData.Random(random, F32, 1.0, 3, 4, 5);
        var (row, _) = KernelTestData.Random(random, F32, 1.0, 5);
        var (h, _) = KernelTestData.Random(random, torch.ScalarType.Float16, 1.0, 4, 6);
        var (hb, _) = KernelTestData.Random(random, torch.ScalarType.BFloat16, 1.0, 6, 3);
        using var _x = x;
        using var _row = row;
        using var _h = h;
        using var _hb = hb;
        Same(CpuTensorKernels.Add(x, row, 2.0), k.Add(x, row, 2.0), "broadcasting add");
        using var hRow = h[0];
        Same(CpuTensorKernels.Div(h, hRow), k.Div(h, hRow), "broadcasting float16 div");
        Same(CpuTensorKernels.Softmax(x, 1), k.Softmax(x, 1), "softmax dim 1");
        Same(CpuTensorKernels.LogSoftmax(x, 0), k.LogSoftmax(x, 0), "log_softmax dim 0");
        Same(CpuTensorKernels.Sum(x, 0, false), k.Sum(x, 0, false), "sum dim 0");
        Same(CpuTensorKernels.Mean(h, 0, false), k.Mean(h, 0, false), "float16 mean dim 0");
        Same(CpuTensorKernels.Argmax(x, 1, true), k.Argmax(x, 1, true), "argmax dim 1");
        var (v1, i1) = CpuTensorKernels.TopK(x, 2, -1, false);
        var (v2, i2) = k.TopK(x, 2, -1, false);
        Same(v1, v2, "topk smallest");
        Same(i1, i2, "topk smallest indices");
        var (hbTop, _) = CpuTensorKernels.TopK(hb, 2, 0, true);
        var (hbTop2, _) = k.TopK(hb, 2, 0, true);
        Same(hbTop, hbTop2, "bfloat16 topk dim 0");
        using var xt = x.transpose(1, 2); // non-contiguous input: staged through a contiguous copy on the device path
        Same(CpuTensorKernels.Relu(xt), k.Relu(xt), "non-contiguous relu");
        using var q = torch.randn(1, 2, 3, 4, torch.ScalarType.Float16);
        using var vWide = torch.randn(1, 2, 3, 6, torch.ScalarType.Float16);
        Same(CpuTensorKernels.ScaledDotProductAttention(q, q, vWide, null, true, null), k.ScaledDotProductAttention(q, q, vWide, null, true, null), "float16 sdpa, Dv != D");
    }

    [Fact]
    public void InvalidInputsThrowTheCpuKernelsExceptions()
    {
        using var x = torch.ones(2, 3);
        using var y = torch.ones(2, 4);
        using var h = torch.ones(new long[] { 2, 3 }, torch.ScalarType.Float16);
        using var odd = torch.ones(2, 5);
        using var w = torch.ones(4);
        using var ints = torch.ones(new long[] { 2, 3 }, torch.ScalarType.Int32);
        AssertSameError(() => CpuTensorKernels.Add(x, y, 1), () => k.Add(x, y, 1));
        AssertSameError(() => CpuTensorKernels.Mul(x, h), () => k.Mul(x, h));
        AssertSameError(() => CpuTensorKernels.Neg(ints), () => k.Neg(ints));
        AssertSameError(() => CpuTensorKernels.SiluAndMul(odd), () => k.SiluAndMul(odd));
        AssertSameError(() => CpuTensorKernels.Gelu(x, (GeluApproximation)7), () => k.Gelu(x, (GeluApproximation)7));
        AssertSameError(() => CpuTensorKernels.Softmax(x, 2), () => k.Softmax(x, 2));
        AssertSameError(() => CpuTensorKernels.RmsNorm(x, w, 1e-6), () => k.RmsNorm(x, w, 1e-6));
        AssertSameError(() => { CpuTensorKernels.FusedAddRmsNorm(x, x, w, 1e-6); return x; }, () => { k.FusedAddRmsNorm(x, x, w, 1e-6); return x; });
        AssertSameError(() => CpuTensorKernels.Mm(x, x), () => k.Mm(x, x));
        AssertSameError(() => CpuTensorKernels.Amax(torch.ones(2, 0), -1, false), () => k.Amax(torch.ones(2, 0), -1, false));
        AssertSameError(() => CpuTensorKernels.TopK(x, 4, -1, true).Values, () => k.TopK(x, 4, -1, true).Values);
        using var positions = torch.tensor(new long[] { 0, 5 }, torch.ScalarType.Int64);
        using var cache = torch.ones(5, 4);
        using var q = torch.ones(2, 8);
        AssertSameError(() => { CpuTensorKernels.RotaryEmbedding(positions, q, null, 4, cache, true); return q; },
            () => { k.RotaryEmbedding(positions, q, null, 4, cache, true); return q; });
        using var qa = torch.ones(1, 3, 2, 4);
        using var ka = torch.ones(1, 2, 2, 4);
        AssertSameError(() => CpuTensorKernels.ScaledDotProductAttention(qa, ka, ka, null, false, null), () => k.ScaledDotProductAttention(qa, ka, ka, null, false, null));
    }

    [Fact]
    public void ZeroSizeTensors()
    {
        using var empty = torch.empty(0, 4);
        using var w = torch.ones(4);
        using var r = torch.empty(0, 4);
        Assert.Equal(new long[] { 0, 4 }, k.Add(empty, empty, 1).shape);
        Assert.Equal(new long[] { 0, 4 }, k.Exp(empty).shape);
        Assert.Equal(new long[] { 0, 2 }, k.SiluAndMul(empty).shape);
        Assert.Equal(new long[] { 0, 4 }, k.Softmax(empty, -1).shape);
        Assert.Equal(new long[] { 0, 4 }, k.RmsNorm(empty, w, 1e-6).shape);
        k.FusedAddRmsNorm(empty, r, w, 1e-6);
        Assert.Equal(new long[] { 0 }, k.Sum(empty, -1, false).shape);
        using var a = torch.empty(3, 0);
        using var b = torch.empty(0, 2);
        Same(CpuTensorKernels.Mm(a, b), k.Mm(a, b), "mm with K = 0 (zeros)");
        using var ids = torch.empty(new long[] { 0 }, torch.ScalarType.Int64);
        Assert.Equal(new long[] { 0, 4 }, k.Embedding(torch.ones(3, 4), ids).shape);
    }

    [Fact]
    public void RepeatedCallsReuseDeviceBuffers()
    {
        using var x = torch.randn(4, 16);
        k.Silu(x).Dispose();
        long allocations = k.BufferAllocations;
        for (int i = 0; i < 3; i++)
        {
            k.Silu(x).Dispose();
        }

        Assert.Equal(allocations, k.BufferAllocations);
        Assert.True(k.PooledBytes > 0);
    }

    [Fact]
    public void CoveredCallsRunTheDeviceKernels()
    {
        using var x = torch.randn(3, 8);
        using var h = x.to(torch.ScalarType.BFloat16);
        using var w = torch.ones(8);
        using var q = torch.randn(1, 2, 3, 8);
        using var ids = torch.tensor(new long[] { 1, 0 }, torch.ScalarType.Int64);
        using var positions = torch.tensor(new long[] { 1, 0, 2 }, torch.ScalarType.Int64);
        using var cache = torch.randn(3, 8);
        using var qr = torch.randn(3, 16);
        k.Softmax(h, -1).Dispose();
        k.RmsNorm(x, w, 1e-6).Dispose();
        k.Mm(x, x.t()).Dispose();
        k.ScaledDotProductAttention(q, q, q, null, true, null).Dispose();
        k.Embedding(x, ids).Dispose();
        k.TopK(x, 2, -1, true).Values.Dispose();
        k.Argmax(x, -1, false).Dispose();
        k.RotaryEmbedding(positions, qr, null, 8, cache, false);
        // Each call may take one of several kernels (fast paths by shape: register-resident rows, GEMV for m <= 16, ...).
        foreach (string[] kernels in new[]
        {
            new[] { "Softmax16", "RowVector16Kernels.Softmax16", "SoftmaxRow16" }, new[] { "RmsNormF32", "RegRmsNormF32" }, new[] { "GemmF32", "Sgemm8x8F32", "GemvNkF32", "GemvKnF32", "GemvNkVec1F32", "GemvNkVecF32", "GemvKnVecF32", "GemvNkPipeF32", "GemvKnPipeF32", "GemvNkStreamF32", "GemvKnStreamF32" },
            new[] { "AttentionF32", "DecodeSplitF32" }, new[] { "EmbeddingF32" }, new[] { "TopKRows" }, new[] { "ArgmaxRows" }, new[] { "RotaryF32" },
        })
        {
            Assert.True(kernels.Any(k.Device.HasCompiled), $"{string.Join(" / ", kernels)} never compiled: the call did not reach the device.");
        }
    }

    [Theory]
    [InlineData(torch.ScalarType.Float16)]
    [InlineData(torch.ScalarType.BFloat16)]
    public void SixteenBitDivRsqrtEmbeddingOnTheDevice(torch.ScalarType dtype)
    {
        int seed = TestData.NewSeed();
        var random = new Random(seed);
        var (a, av) = KernelTestData.Random(random, dtype, 1.0, 3, 17);
        var (b, _) = KernelTestData.Random(random, dtype, 1.0, 3, 17);
        using var _a = a;
        using var _b = b;
        using var positive = b.abs().add(HeldScalars.Of(0.5), HeldScalars.One);
        float[] pv = KernelTestData.Values(positive);
        Check(k.Div(a, positive), CpuTensorKernels.Div(a, positive), av.Select((x, i) => (double)x / pv[i]).ToArray(), dtype, 1e-4, seed, "div");
        Check(k.Rsqrt(positive), CpuTensorKernels.Rsqrt(positive), pv.Select(v => 1.0 / Math.Sqrt(v)).ToArray(), dtype, 1e-4, seed, "rsqrt");

        var (w, wv) = KernelTestData.Random(random, dtype, 1.0, 11, 5);
        using var _w = w;
        long[] ids = { 3, 0, 10 };
        using var indices = torch.tensor(ids, torch.ScalarType.Int64);
        using var indices32 = indices.to(torch.ScalarType.Int32);
        double[] rows = ids.SelectMany(i => Enumerable.Range(0, 5).Select(j => (double)wv[(i * 5) + j])).ToArray();
        Check(k.Embedding(w, indices), CpuTensorKernels.Embedding(w, indices), rows, dtype, 0, seed, "embedding");
        Check(k.Embedding(w, indices32), CpuTensorKernels.Embedding(w, indices32), rows, dtype, 0, seed, "embedding int32");
        var compiled = k.Device.CompileTimes;
        Assert.True(compiled.ContainsKey("Embedding16"), "embedding did not reach the device");
        Assert.True(compiled.ContainsKey("Div16") || compiled.Keys.Any(name => name.StartsWith("Binary16x8<DivOp,", StringComparison.Ordinal)), "div did not reach the device");
        Assert.True(compiled.ContainsKey("Activation16") || compiled.Keys.Any(name => name.StartsWith("Unary16x8<RsqrtActivation,", StringComparison.Ordinal)), "rsqrt did not reach the device");
    }

    [Theory]
    [InlineData(torch.ScalarType.Float16)]
    [InlineData(torch.ScalarType.BFloat16)]
    public void SixteenBitReductionsAndTopKOnTheDevice(torch.ScalarType dtype)
    {
        int seed = TestData.NewSeed();
        const int Rows = 6, N = 17;
        var (x, xv) = KernelTestData.Random(new Random(seed), dtype, 1.0, 2, 3, N);
        using var _x = x;
        double[] Row(Func<double[], double> f) => Enumerable.Range(0, Rows).Select(r => f(xv.Skip(r * N).Take(N).Select(v => (double)v).ToArray())).ToArray();
        double[] all = xv.Select(v => (double)v).ToArray();
        Check(k.Sum(x, -1, false), CpuTensorKernels.Sum(x, -1, false), Row(r => r.Sum()), dtype, 1e-4 * N, seed, "sum");
        Check(k.Mean(x, 2, true), CpuTensorKernels.Mean(x, 2, true), Row(r => r.Average()), dtype, 1e-4 * N, seed, "mean keepdim");
        Check(k.Amax(x, -1, false), CpuTensorKernels.Amax(x, -1, false), Row(r => r.Max()), dtype, 0, seed, "amax");
        Check(k.Sum(x, null, false), CpuTensorKernels.Sum(x, null, false), new[] { all.Sum() }, dtype, 1e-4 * all.Length, seed, "sum all");
        AssertEqualLongs(CpuTensorKernels.Argmax(x, -1, false), k.Argmax(x, -1, false), Row(r => Array.IndexOf(r, r.Max())));
        var (values, indices) = k.TopK(x, 3, -1, true);
        var (cpuValues, cpuIndices) = CpuTensorKernels.TopK(x, 3, -1, true);
        double[] expected = Enumerable.Range(0, Rows).SelectMany(r => xv.Skip(r * N).Take(N).OrderByDescending(v => v).Take(3).Select(v => (double)v)).ToArray();
        Check(values, cpuValues, expected, dtype, 0, seed, "topk values");
        AssertEqualLongs(cpuIndices, indices, null);
        foreach (string kernel in new[] { "ReduceRows", "ArgmaxRows", "TopKRows" })
        {
            Assert.True(k.Device.HasCompiled(kernel), $"{kernel} was never compiled: the call did not reach the device.");
        }
    }

    [Theory]
    [InlineData(torch.ScalarType.Float16)]
    [InlineData(torch.ScalarType.BFloat16)]
    public void SixteenBitMatrixProductsOnTheDevice(torch.ScalarType dtype)
    {
        int seed = TestData.NewSeed();
        var random = new Random(seed);
        const int M = 5, K = 17, N = 3, B = 2;
        var (a, av) = KernelTestData.Random(random, dtype, 1.0, M, K);
        var (b, bv) = KernelTestData.Random(random, dtype, 1.0, K, N);
        var (wt, wtv) = KernelTestData.Random(random, dtype, 1.0, N, K);
        var (bias, biasv) = KernelTestData.Random(random, dtype, 1.0, N);
        using var _a = a;
        using var _b = b;
        using var _wt = wt;
        using var _bias = bias;
        using var w = wt.t();
        double[] Gemm(float[] x, Func<int, int, double> y, int m, int kk, int n) =>
            Enumerable.Range(0, m * n).Select(e => Enumerable.Range(0, kk).Sum(t => (double)x[(e / n * kk) + t] * y(t, e % n))).ToArray();
        double[] ab = Gemm(av, (t, j) => bv[(t * N) + j], M, K, N);
        double[] aw = Gemm(av, (t, j) => wtv[(j * K) + t], M, K, N);
        double atol = 1e-4 * K;
        Check(k.Mm(a, b), CpuTensorKernels.Mm(a, b), ab, dtype, atol, seed, "mm");
        Check(k.Mm(a, w), CpuTensorKernels.Mm(a, w), aw, dtype, atol, seed, "mm transposed");
        Check(k.Addmm(bias, a, w, 0.5, 2.0), CpuTensorKernels.Addmm(bias, a, w, 0.5, 2.0),
            aw.Select((v, e) => (0.5 * biasv[e % N]) + (2.0 * v)).ToArray(), dtype, atol, seed, "addmm row bias");
        var (ba, bav) = KernelTestData.Random(random, dtype, 1.0, B, M, K);
        var (bb, bbv) = KernelTestData.Random(random, dtype, 1.0, B, K, N);
        using var _ba = ba;
        using var _bb = bb;
        double[] bmm = Enumerable.Range(0, B).SelectMany(i =>
            Gemm(bav.Skip(i * M * K).ToArray(), (t, j) => bbv[(i * K * N) + (t * N) + j], M, K, N)).ToArray();
        Check(k.Bmm(ba, bb), CpuTensorKernels.Bmm(ba, bb), bmm, dtype, atol, seed, "bmm");
        Assert.True(k.Device.CompileTimes.ContainsKey("Gemm16"), "Gemm16 was never compiled: the call did not reach the device.");
    }

    [Theory]
    [InlineData(torch.ScalarType.Float16, false)]
    [InlineData(torch.ScalarType.BFloat16, true)]
    public void SixteenBitAttentionOnTheDevice(torch.ScalarType dtype, bool boolMask)
    {
        int seed = TestData.NewSeed();
        var random = new Random(seed);
        const int Batch = 2, Heads = 2, KvHeads = 1, Lq = 3, Lk = 5, D = 4;
        var (q, qv) = KernelTestData.Random(random, dtype, 1.0, Batch, Heads, Lq, D);
        var (kk, kv) = KernelTestData.Random(random, dtype, 1.0, Batch, KvHeads, Lk, D);
        var (v, vv) = KernelTestData.Random(random, dtype, 1.0, Batch, KvHeads, Lk, D);
        using var _q = q;
        using var _k = kk;
        using var _v = v;
        bool[] keep = Enumerable.Range(0, Batch * Lk).Select(i => i % Lk == 0 || random.Next(3) != 0).ToArray();
        using torch.Tensor mask = boolMask
            ? torch.tensor(keep, new long[] { Batch, 1, 1, Lk })
            : torch.tensor(keep.Select(x => x ? 0f : float.NegativeInfinity).ToArray(), new long[] { Batch, 1, 1, Lk }).to(dtype);
        double scale = 1.0 / Math.Sqrt(D);
        var expected = new double[Batch * Heads * Lq * D];
        for (int b = 0; b < Batch; b++)
        {
            for (int h = 0; h < Heads; h++)
            {
                for (int i = 0; i < Lq; i++)
                {
                    double[] scores = Enumerable.Range(0, Lk).Select(j => keep[(b * Lk) + j] && j <= i
                        ? Enumerable.Range(0, D).Sum(t => (double)qv[((((b * Heads) + h) * Lq) + i) * D + t] * kv[((b * Lk) + j) * D + t]) * scale
                        : double.NegativeInfinity).ToArray();
                    double max = scores.Max();
                    double[] p = scores.Select(s => double.IsNegativeInfinity(s) ? 0 : Math.Exp(s - max)).ToArray();
                    double sum = p.Sum();
                    for (int t = 0; t < D; t++)
                    {
                        expected[((((b * Heads) + h) * Lq) + i) * D + t] = Enumerable.Range(0, Lk).Sum(j => p[j] * vv[((b * Lk) + j) * D + t]) / sum;
                    }
                }
            }
        }

        Check(k.ScaledDotProductAttention(q, kk, v, mask, true, null), CpuTensorKernels.ScaledDotProductAttention(q, kk, v, mask, true, null),
            expected, dtype, 1e-4 * Lk * D, seed, "sdpa");
        Assert.True(k.Device.CompileTimes.ContainsKey("Attention16"), "Attention16 was never compiled: the call did not reach the device.");
    }

    // ---- checks and float64 references ----

    /// <summary>actual against the float64 reference (rounded to the dtype) and against the CPU kernel's result; disposes both tensors.</summary>
    private static void Check(torch.Tensor actual, torch.Tensor cpu, double[] reference, torch.ScalarType dtype, double atol, int seed, string what)
    {
        using (actual)
        using (cpu)
        {
            Assert.Equal(cpu.shape, actual.shape);
            Assert.True(actual.is_contiguous());
            KernelTestData.AssertClose(Typed.Round(reference, dtype), actual, atol, dtype, seed, what + " vs float64");
            KernelTestData.AssertClose(cpu, actual, atol, dtype, seed, what + " vs CPU kernel");
        }
    }

    /// <summary>A fallback result: the same shape, dtype and values (bit for bit) as the CPU kernel's.</summary>
    private static void Same(torch.Tensor expected, torch.Tensor actual, string what)
    {
        using (expected)
        using (actual)
        {
            Assert.Equal(expected.dtype, actual.dtype);
            Assert.Equal(expected.shape, actual.shape);
            Assert.True(expected.numel() == 0 || expected.to(torch.ScalarType.Float64).allclose(actual.to(torch.ScalarType.Float64), 0, 0, equal_nan: true), what);
        }
    }

    private static void AssertEqualLongs(torch.Tensor expected, torch.Tensor actual, double[]? reference)
    {
        using (expected)
        using (actual)
        {
            Assert.Equal(torch.ScalarType.Int64, actual.dtype);
            Assert.Equal(expected.shape, actual.shape);
            long[] a = actual.data<long>().ToArray();
            Assert.Equal(expected.data<long>().ToArray(), a);
            if (reference is not null)
            {
                Assert.Equal(reference.Select(r => (long)r).ToArray(), a);
            }
        }
    }

    private static void AssertSameError(Func<object> cpu, Func<object> ilgpu)
    {
        var expected = Assert.ThrowsAny<Exception>(cpu);
        var actual = Assert.ThrowsAny<Exception>(ilgpu);
        Assert.Equal(expected.GetType(), actual.GetType());
        Assert.Equal(expected.Message, actual.Message);
    }

    private static double[] RmsRef(float[] x, float[] w, int n, double eps)
    {
        var y = new double[x.Length];
        for (int r = 0; r < x.Length / n; r++)
        {
            double ms = Enumerable.Range(0, n).Sum(j => (double)x[(r * n) + j] * x[(r * n) + j]) / n;
            double inv = 1.0 / Math.Sqrt(ms + eps);
            for (int j = 0; j < n; j++)
            {
                y[(r * n) + j] = x[(r * n) + j] * inv * w[j];
            }
        }

        return y;
    }

    private static double[] LayerRef(float[] x, float[]? w, float[]? b, int n, double eps)
    {
        var y = new double[x.Length];
        for (int r = 0; r < x.Length / n; r++)
        {
            double mean = Enumerable.Range(0, n).Sum(j => (double)x[(r * n) + j]) / n;
            double variance = Enumerable.Range(0, n).Sum(j => Math.Pow(x[(r * n) + j] - mean, 2)) / n;
            double inv = 1.0 / Math.Sqrt(variance + eps);
            for (int j = 0; j < n; j++)
            {
                y[(r * n) + j] = ((x[(r * n) + j] - mean) * inv * (w?[j] ?? 1.0)) + (b?[j] ?? 0.0);
            }
        }

        return y;
    }

    private static double[] RotateRef(float[] x, int heads, int headSize, float[] cache, int rotDim, long[] positions, bool neox)
    {
        double[] y = x.Select(v => (double)v).ToArray();
        int half = rotDim / 2;
        for (int t = 0; t < positions.Length; t++)
        {
            for (int h = 0; h < heads; h++)
            {
                int head = ((t * heads) + h) * headSize;
                for (int i = 0; i < half; i++)
                {
                    double cos = cache[(positions[t] * rotDim) + i], sin = cache[(positions[t] * rotDim) + half + i];
                    int i1 = head + (neox ? i : 2 * i), i2 = head + (neox ? i + half : (2 * i) + 1);
                    y[i1] = (x[i1] * cos) - (x[i2] * sin);
                    y[i2] = (x[i2] * cos) + (x[i1] * sin);
                }
            }
        }

        return y;
    }
}
