using System;
using System.Linq;
using System.Text.RegularExpressions;
using GemsInjector.Kernels.Ilgpu;
using ILGPU;
using ILGPU.Runtime;
using ILGPU.Runtime.Cuda;
using Xunit;
using Xunit.Abstractions;

namespace GemsInjector.Kernels.Ilgpu.Tests;

/// <summary>
/// The 16-byte float32 decode GEMVs: [N, K] (<see cref="GemmFastKernels.GemvNkVec1F32"/>, <c>GemvNkVecF32</c>, the
/// pipelined and the streamed <c>GemvNkStreamF32</c>) and [K, N] (<c>GemvKnVecF32</c>, pipelined; the streamed
/// <c>GemvKnStreamF32</c> has its own class, <see cref="GemvKnStreamF32Tests"/>): every row cap, staged
/// chunks with tails, split-K, columns past N, biases, NaN and Inf, the scalar fallback for misaligned views and K (or N)
/// not a multiple of 4, the CUDA geometry on a warp-32 simulator, and the PTX.
/// </summary>
[Collection(SimulatorCollection.Name)]
public sealed class GemvVecF32Tests : GemvF32TestBase, IClassFixture<Warp32SimulatorFixture>
{
    private readonly Warp32SimulatorFixture warp32;
    private readonly ITestOutputHelper output;
    private readonly SmallRowsProduct savedSmallRows;

    public GemvVecF32Tests(SimulatorFixture fixture, Warp32SimulatorFixture warp32, ITestOutputHelper output)
        : base(fixture)
    {
        this.warp32 = warp32;
        this.output = output;
        // 8–16-row products default to the flat SGEMM; these tests are about the GEMVs that serve them otherwise.
        savedSmallRows = K.SmallRowsKernel;
        K.SmallRowsKernel = SmallRowsProduct.Gemv;
    }

    public override void Dispose()
    {
        K.SmallRowsKernel = savedSmallRows;
        base.Dispose();
    }

    // GEMS_GEMV_F32_VARIANT=vec ([N, K]: GemvNkVec1F32, GemvNkVecF32). m: every row cap (1, 2, 4, 8, 16) and odd counts
    // inside them; k: one vector, a staged chunk's tail at 16 rows (516 floats = 129 vectors > 128), the splits of small N;
    // n: one column, a warp's four cut by N, more than a group.
    [Theory]
    [InlineData(1, 4, 1)]
    [InlineData(1, 1032, 9)]
    [InlineData(1, 300, 70)]
    [InlineData(2, 516, 5)]
    [InlineData(3, 40, 33)]
    [InlineData(5, 1100, 19)]
    [InlineData(8, 64, 3)]
    [InlineData(9, 516, 70)]
    [InlineData(16, 516, 6)]
    [InlineData(16, 2056, 17)]
    public void VecMmAndAddmmMatchFloat64(int m, int k, int n) => WithVariant(GemvF32Variant.Vec, () => NkMmAndAddmm(m, k, n, 8300));

    // GEMS_GEMV_F32_VARIANT=pipe ([N, K], 2–16 rows): k one vector, a partial step, several A chunks (128 vectors at 16
    // rows, 256 at 8) with a partial last one, split-K; n below one warp's 4 columns, partial warps and groups.
    [Theory]
    [InlineData(2, 516, 5)]
    [InlineData(3, 40, 33)]
    [InlineData(4, 4, 2)]
    [InlineData(5, 1100, 19)]
    [InlineData(8, 64, 3)]
    [InlineData(9, 2068, 70)]
    [InlineData(16, 516, 6)]
    [InlineData(16, 2056, 17)]
    public void NkPipeMmAndAddmmMatchFloat64(int m, int k, int n) => WithVariant(GemvF32Variant.Pipe, () => NkMmAndAddmm(m, k, n, 9300));

    private void NkMmAndAddmm(int m, int k, int n, int seedBase)
    {
        int seed = seedBase + (m * 1000) + k + n;
        var a = Random(seed, m * k);
        var b = Random(seed + 1, k * n);
        var aView = Upload(a);
        var bView = Upload(b);
        Assert.True(K.UsesGemvNkVecF32(aView, bView, k), "an aligned [N, K] decode product must take the 16-byte GEMV");
        var plan = GemvNkVecLaunch.Plan(new GemvShape { M = m, N = n, K = k }, Device.WarpSize, Device.MaxGroupSize, Device.MultiprocessorCount);
        output.WriteLine($"seed {seed}: {m}x{k}x{n} rows cap {plan.RowsCap}, splits {plan.Shape.Splits}, chunk {plan.Shape.KChunk}, groups {plan.Config.GridDim.X}");

        var c = Poisoned(m * n);
        K.Mm(aView, bView, c, m, k, n, transposeB: true);
        AssertClose(Download(c), Reference(a, b, m, k, n, 1f, 0f, null, false), RtolF32, Atol * k, "mm", seed);

        var row = Random(seed + 2, n);
        c = Poisoned(m * n);
        K.Addmm(Upload(row), aView, bView, c, m, k, n, beta: -1.25f, alpha: 0.75f, transposeB: true);
        AssertClose(Download(c), Reference(a, b, m, k, n, 0.75f, -1.25f, row, false), RtolF32, Atol * k, "addmm row bias", seed);

        if (m > 1)
        {
            var full = Random(seed + 3, m * n);
            c = Poisoned(m * n);
            K.Addmm(Upload(full), aView, bView, c, m, k, n, transposeB: true);
            AssertClose(Download(c), Reference(a, b, m, k, n, 1f, 1f, full, true), RtolF32, Atol * k, "addmm matrix bias", seed);
        }
    }

    // [K, N]: every row cap; k below (no prefetched first iteration), at and past the rows of one iteration (8·warps for
    // one row, 4·warps for more) and split; n one vector, not a multiple of a group's columns, several groups. Pinned to
    // `pipe`: under the default (`stream`) aligned products with K a multiple of 4 take GemvKnStreamF32 (GemvKnStreamF32Tests).
    [Theory]
    [InlineData(1, 1, 4)]
    [InlineData(1, 45, 36)]
    [InlineData(1, 1100, 260)]
    [InlineData(2, 300, 20)]
    [InlineData(3, 17, 8)]
    [InlineData(4, 5, 8)]
    [InlineData(8, 1100, 36)]
    [InlineData(11, 130, 64)]
    [InlineData(16, 600, 4)]
    public void KnMmAndAddmmMatchFloat64(int m, int k, int n) => WithVariant(GemvF32Variant.Pipe, () => KnMmAndAddmm(m, k, n, 8700));

    // GEMS_GEMV_F32_VARIANT=pipe ([K, N], 2–16 rows): k below one iteration (no pipelined loop), with a guarded tail,
    // several chunks (512 rows of K at 16 rows, 1024 at 8) and so split-K; n one vector, partial groups, several groups.
    [Theory]
    [InlineData(2, 300, 20)]
    [InlineData(3, 17, 8)]
    [InlineData(4, 5, 8)]
    [InlineData(6, 2100, 132)]
    [InlineData(8, 1100, 36)]
    [InlineData(11, 130, 64)]
    [InlineData(16, 600, 4)]
    [InlineData(16, 1300, 260)]
    public void KnPipeMmAndAddmmMatchFloat64(int m, int k, int n) => WithVariant(GemvF32Variant.Pipe, () => KnMmAndAddmm(m, k, n, 9700));

    // GEMS_GEMV_F32_VARIANT=stream ([N, K], 1–16 rows, GemvNkStreamF32): every row cap and odd counts inside them; k one
    // vector, 4 · odd (never a whole batch: 16 floats per batch here, 128 on a GPU) with one or several batches per warp;
    // n below one group's columns (8 at 1–4 rows, 4 at 8–16), not a multiple of them, several groups. 9–16 rows run with
    // the default SmallRowsKernel (the flat SGEMM tile), which `stream` must bypass for [N, K].
    [Theory]
    [InlineData(1, 4, 1)]
    [InlineData(1, 1036, 21)]
    [InlineData(2, 4, 1)]
    [InlineData(2, 1028, 13)]
    [InlineData(3, 76, 9)]
    [InlineData(4, 300, 37)]
    [InlineData(5, 52, 3)]
    [InlineData(8, 1100, 19)]
    [InlineData(9, 204, 6)]
    [InlineData(16, 516, 7)]
    [InlineData(16, 2060, 22)]
    public void NkStreamMatchesFloat64(int m, int k, int n) => WithVariant(GemvF32Variant.Stream, () =>
    {
        var saved = K.SmallRowsKernel;
        K.SmallRowsKernel = SmallRowsProduct.Sgemm;
        try
        {
            NkStreamCase(m, k, n, 9900);
        }
        finally
        {
            K.SmallRowsKernel = saved;
        }
    });

    private void NkStreamCase(int m, int k, int n, int seedBase)
    {
        int seed = seedBase + (m * 1000) + k + n;
        var a = Random(seed, m * k);
        var b = Random(seed + 1, k * n);
        var aView = Upload(a);
        var bView = Upload(b);
        Assert.True(K.UsesGemvNkStreamF32(aView, bView, m, k), "an aligned 1–16-row [N, K] product must take the streamed GEMV under `stream`");
        var (config, cap) = GemvNkStreamLaunch.Plan(new GemvShape { M = m, N = n, K = k }, Device.WarpSize, Device.MaxGroupSize, Device.MultiprocessorCount);
        output.WriteLine($"seed {seed}: {m}x{k}x{n} rows cap {cap}, groups {config.GridDim.X} of {config.GroupDim.X} threads");

        var (c, whole) = PoisonedWithSentinel(m * n);
        K.Mm(aView, bView, c, m, k, n, transposeB: true);
        var got = Download(whole);
        AssertClose(got[..(m * n)], Reference(a, b, m, k, n, 1f, 0f, null, false), RtolF32, Atol * k, "stream mm", seed);
        AssertSentinel(got, m * n);

        var row = Random(seed + 2, n);
        (c, whole) = PoisonedWithSentinel(m * n);
        K.Addmm(Upload(row), aView, bView, c, m, k, n, beta: -1.25f, alpha: 0.75f, transposeB: true);
        got = Download(whole);
        AssertClose(got[..(m * n)], Reference(a, b, m, k, n, 0.75f, -1.25f, row, false), RtolF32, Atol * k, "stream addmm row bias", seed);
        AssertSentinel(got, m * n);

        var full = Random(seed + 3, m * n);
        (c, whole) = PoisonedWithSentinel(m * n);
        K.Addmm(Upload(full), aView, bView, c, m, k, n, beta: 0.5f, alpha: -2f, transposeB: true);
        got = Download(whole);
        AssertClose(got[..(m * n)], Reference(a, b, m, k, n, -2f, 0.5f, full, true), RtolF32, Atol * k, "stream addmm matrix bias", seed);
        AssertSentinel(got, m * n);
    }

    // NaN and ±Inf in A and in W, in a whole batch and in the last partial one: every output compared with the float64
    // dot product, NaN where it is NaN, the same infinity where it is infinite (so a tail padded by a stale value times
    // zero, or a lost NaN, fails).
    [Theory]
    [InlineData(1, 84, 10)]
    [InlineData(3, 76, 11)]
    [InlineData(8, 212, 9)]
    [InlineData(16, 148, 6)]
    public void NkStreamPropagatesNaNAndInf(int m, int k, int n) => WithVariant(GemvF32Variant.Stream, () =>
    {
        int seed = 9950 + m + k + n;
        var a = Random(seed, m * k);
        var b = Random(seed + 1, k * n);
        if (m > 1)
        {
            a[(1 * k) + 5] = float.NaN;            // row 1, a whole batch (one row of NaN would leave no infinite output)
        }

        a[((m - 1) * k) + k - 2] = float.PositiveInfinity; // last row, the partial batch
        b[(2 * k) + k - 1] = float.NaN;             // column 2, the partial batch
        b[((n - 1) * k) + 9] = float.NegativeInfinity; // last column, a whole batch
        var (c, whole) = PoisonedWithSentinel(m * n);
        K.Mm(Upload(a), Upload(b), c, m, k, n, transposeB: true);
        var got = Download(whole);
        var expected = Reference(a, b, m, k, n, 1f, 0f, null, false);
        int nan = 0, inf = 0;
        for (int e = 0; e < m * n; e++)
        {
            if (double.IsNaN(expected[e]))
            {
                nan++;
                Assert.True(float.IsNaN(got[e]), $"element {e}: {got[e]}, expected NaN");
            }
            else if (double.IsInfinity(expected[e]))
            {
                inf++;
                Assert.Equal((float)expected[e], got[e]);
            }
            else
            {
                Assert.True(Math.Abs(got[e] - expected[e]) <= Atol * k + RtolF32 * Math.Abs(expected[e]), $"element {e}: {got[e]} vs {expected[e]}");
            }
        }

        Assert.True(nan > 0 && inf > 0, $"the case must have NaN and infinite outputs ({nan}, {inf})");
        AssertSentinel(got, m * n);
    });

    /// <summary>
    /// CUDA geometry (32-lane warps) on the warp-32 simulator: the full five-step lane sum, 2, 4 and 8 warps per group,
    /// each cap's columns cut by N, K of 4 · odd floats (one or several 128-float batches per warp and a partial one).
    /// </summary>
    [Theory]
    [InlineData(1, 1572, 11, 4)]
    [InlineData(2, 1060, 13, 2)]
    [InlineData(4, 652, 9, 4)]
    [InlineData(7, 524, 6, 8)]
    [InlineData(8, 2092, 5, 2)]
    [InlineData(12, 1164, 7, 4)]
    [InlineData(16, 396, 5, 8)]
    public void NkStreamCudaGeometryMatchesFloat64(int m, int k, int n, int warps)
    {
        int seed = 9960 + (m * 1000) + k + n + warps;
        var acc = warp32.Accelerator;
        var a = Random(seed, m * k);
        var b = Random(seed + 1, k * n);
        var bias = Random(seed + 2, m * n);
        var g = new GemvShape { M = m, N = n, K = k, Alpha = 0.5f, Beta = 2f, HasBias = 1, BiasStrideM = n };
        var (config, cap) = GemvNkStreamLaunch.Plan(g, acc.WarpSize, 256, 132, warps);
        Assert.Equal(warps * 32, config.GroupDim.X);

        Action<KernelConfig, ArrayView<Float4>, ArrayView<Float4>, ArrayView<float>, ArrayView<float>, GemvShape> kernel = cap switch
        {
            1 => acc.LoadStreamKernel<ArrayView<Float4>, ArrayView<Float4>, ArrayView<float>, ArrayView<float>, GemvShape>(GemmFastKernels.GemvNkStreamF32<Const1>),
            2 => acc.LoadStreamKernel<ArrayView<Float4>, ArrayView<Float4>, ArrayView<float>, ArrayView<float>, GemvShape>(GemmFastKernels.GemvNkStreamF32<Const2>),
            4 => acc.LoadStreamKernel<ArrayView<Float4>, ArrayView<Float4>, ArrayView<float>, ArrayView<float>, GemvShape>(GemmFastKernels.GemvNkStreamF32<Const4>),
            8 => acc.LoadStreamKernel<ArrayView<Float4>, ArrayView<Float4>, ArrayView<float>, ArrayView<float>, GemvShape>(GemmFastKernels.GemvNkStreamF32<Const8>),
            _ => acc.LoadStreamKernel<ArrayView<Float4>, ArrayView<Float4>, ArrayView<float>, ArrayView<float>, GemvShape>(GemmFastKernels.GemvNkStreamF32<Const16>),
        };
        var got = RunOn(acc, kernel, config, g, a, b, bias);
        AssertClose(got[..(m * n)], Reference(a, b, m, k, n, 0.5f, 2f, bias, true), RtolF32, Atol * k, "warp-32 streamed GEMV", seed);
        AssertSentinel(got, m * n);
    }

    [Fact]
    public void NkStreamPlanTakesTheFewestWarpsThatFillTheSms()
    {
        // H200 (132 SMs, 8 warps each asked for): 16 x 11008 at 4 columns is 2752 groups, 2 warps; 1, 2 or 4 x 4096 at 8
        // columns 512 groups, 4 warps (2 would be 1024 warps < 1056); 8 x 4096 at 4 columns 1024 groups, 2 warps.
        Assert.Equal((2752, 64, 16), PlanOf(16, 4096, 11008));
        Assert.Equal((512, 128, 1), PlanOf(1, 4096, 4096));
        Assert.Equal((512, 128, 2), PlanOf(2, 4096, 4096));
        Assert.Equal((512, 128, 4), PlanOf(3, 4096, 4096));
        Assert.Equal((1024, 64, 8), PlanOf(8, 4096, 4096));
        Assert.Equal((16, 256, 16), PlanOf(9, 4096, 64));

        static (int Groups, int Threads, int Cap) PlanOf(int m, int k, int n)
        {
            var (config, cap) = GemvNkStreamLaunch.Plan(new GemvShape { M = m, N = n, K = k }, 32, 1024, 132);
            return (config.GridDim.X, config.GroupDim.X, cap);
        }
    }

    [Fact]
    public void StreamRoutesOnlyAlignedNkProductsOfOneToSixteenRows() => WithVariant(GemvF32Variant.Stream, () =>
    {
        var a = Upload(Random(9970, 17 * 8));
        var b = Upload(Random(9971, 8 * 8));
        Assert.True(K.UsesGemvNkStreamF32(a, b, 1, 8));
        Assert.True(K.UsesGemvNkStreamF32(a, b, 2, 8));
        Assert.True(K.UsesGemvNkStreamF32(a, b, 16, 8));
        Assert.False(K.UsesGemvNkStreamF32(a, b, 17, 8));
        Assert.False(K.UsesGemvNkStreamF32(a, b, 2, 6));
        Assert.False(K.UsesGemvNkStreamF32(a.SubView(1, 16), b, 2, 8));
        Assert.Equal(9, K.FlatSgemmMinRows);
        K.GemvF32Kernel = GemvF32Variant.Pipe;
        Assert.False(K.UsesGemvNkStreamF32(a, b, 1, 8));
        Assert.False(K.UsesGemvNkStreamF32(a, b, 2, 8));
    });

    [Theory]
    [InlineData("pipe", nameof(GemvF32Variant.Pipe))]
    [InlineData(" PIPE ", nameof(GemvF32Variant.Pipe))]
    [InlineData("vec", nameof(GemvF32Variant.Vec))]
    [InlineData("stream", nameof(GemvF32Variant.Stream))]
    [InlineData(" Stream ", nameof(GemvF32Variant.Stream))]
    [InlineData(null, nameof(GemvF32Variant.Stream))]
    [InlineData("other", nameof(GemvF32Variant.Stream))]
    public void TheVariantSettingParses(string? setting, string expected) => Assert.Equal(expected, GemvF32Choice.Parse(setting).ToString());

    /// <summary>Runs <paramref name="body"/> with the shared facade set to <paramref name="variant"/>, then restores it.</summary>

    private void KnMmAndAddmm(int m, int k, int n, int seedBase)
    {
        int seed = seedBase + (m * 1000) + k + n;
        var a = Random(seed, m * k);
        var b = Random(seed + 1, k * n);
        var aView = Upload(a);
        var bView = Upload(b);
        Assert.True(IlgpuKernels.UsesGemvKnVecF32(bView, n), "an aligned [K, N] decode product must take the 16-byte GEMV");

        var c = Poisoned(m * n);
        K.Mm(aView, bView, c, m, k, n);
        AssertClose(Download(c), Reference(a, b, m, k, n, 1f, 0f, null, false, false), RtolF32, Atol * k, "mm [K, N]", seed);

        var row = Random(seed + 2, n);
        c = Poisoned(m * n);
        K.Addmm(Upload(row), aView, bView, c, m, k, n, beta: -1.25f, alpha: 0.75f);
        AssertClose(Download(c), Reference(a, b, m, k, n, 0.75f, -1.25f, row, false, false), RtolF32, Atol * k, "addmm [K, N] row bias", seed);

        if (m > 1)
        {
            var full = Random(seed + 3, m * n);
            c = Poisoned(m * n);
            K.Addmm(Upload(full), aView, bView, c, m, k, n);
            AssertClose(Download(c), Reference(a, b, m, k, n, 1f, 1f, full, true, false), RtolF32, Atol * k, "addmm [K, N] matrix bias", seed);
        }
    }

    [Theory]
    [InlineData(1, 40, 38, 0)]
    [InlineData(5, 40, 16, 1)]
    public void KnMisalignedWeightOrOddNTakesTheScalarKernel(int m, int k, int n, int offset)
    {
        int seed = 8800 + m + k + n + offset;
        var a = Random(seed, m * k);
        var b = Random(seed + 1, k * n);
        var bView = UploadAt(b, offset);
        Assert.False(IlgpuKernels.UsesGemvKnVecF32(bView, n));
        var c = Poisoned(m * n);
        K.Mm(Upload(a), bView, c, m, k, n);
        AssertClose(Download(c), Reference(a, b, m, k, n, 1f, 0f, null, false, false), RtolF32, Atol * k, "scalar [K, N] mm", seed);
    }

    [Fact]
    public void KnNaNStaysInItsRowAndColumn() => WithVariant(GemvF32Variant.Pipe, () =>
    {
        const int M = 3, Kd = 300, N = 12;
        var a = Random(8900, M * Kd);
        var b = Random(8901, Kd * N);
        a[(1 * Kd) + 250] = float.NaN;
        b[(299 * N) + 5] = float.NaN;
        var c = Poisoned(M * N);
        K.Mm(Upload(a), Upload(b), c, M, Kd, N);
        var got = Download(c);
        for (int e = 0; e < M * N; e++)
        {
            Assert.Equal(e / N == 1 || e % N == 5, float.IsNaN(got[e]));
        }
    });

    [Fact]
    public void TheSimulatorPlansSplitAndUnsplitProducts()
    {
        var split = GemvNkVecLaunch.Plan(new GemvShape { M = 1, N = 9, K = 1032 }, Device.WarpSize, Device.MaxGroupSize, Device.MultiprocessorCount);
        var whole = GemvNkVecLaunch.Plan(new GemvShape { M = 9, N = 70, K = 516 }, Device.WarpSize, Device.MaxGroupSize, Device.MultiprocessorCount);
        Assert.True(split.Shape.Splits > 1);
        Assert.Equal(1, whole.Shape.Splits);
        Assert.Equal(16, whole.RowsCap);

        // The pipelined kernel splits to one wave of two groups per SM, rounding down: 16 x 11008 x 4096 on 132 SMs is
        // 128 column groups, 5 splits for the default kernels (640 groups), 2 for it (256).
        var h200 = new GemvShape { M = 16, N = 4096, K = 11008 };
        Assert.Equal(5, GemvNkVecLaunch.Plan(h200, 32, 1024, 132).Shape.Splits);
        Assert.Equal(2, GemvNkVecLaunch.Plan(h200, 32, 1024, 132, pipelined: true).Shape.Splits);
        Assert.True(GemvNkVecLaunch.Plan(new GemvShape { M = 16, N = 17, K = 2056 }, Device.WarpSize, Device.MaxGroupSize, Device.MultiprocessorCount, pipelined: true).Shape.Splits > 1);
    }

    [Theory]
    [InlineData(1, false)]
    [InlineData(3, false)]
    [InlineData(16, true)]
    public void NaNStaysInItsRowAndUnreadBiasIsIgnored(int m, bool nanInWeight)
    {
        const int Kd = 520, N = 11;
        int seed = 8400 + m;
        var a = Random(seed, m * Kd);
        var b = Random(seed + 1, Kd * N);
        int nanRow = m - 1;
        a[(nanRow * Kd) + 513] = float.NaN;
        if (nanInWeight)
        {
            b[(4 * Kd) + 2] = float.NaN; // column 4
        }

        var nanBias = Enumerable.Repeat(float.NaN, N).ToArray();
        var c = Poisoned(m * N);
        K.Addmm(Upload(nanBias), Upload(a), Upload(b), c, m, Kd, N, beta: 0f, transposeB: true);
        var got = Download(c);
        var expected = Reference(a, b, m, Kd, N, 1f, 0f, null, false);
        for (int e = 0; e < m * N; e++)
        {
            bool nan = e / N == nanRow || (nanInWeight && e % N == 4);
            Assert.Equal(nan, float.IsNaN(got[e]));
            if (!nan)
            {
                Assert.True(Math.Abs(got[e] - expected[e]) <= Atol * Kd + RtolF32 * Math.Abs(expected[e]), $"element {e}: {got[e]} vs {expected[e]}");
            }
        }
    }

    [Theory]
    [InlineData(3, 41, 16, 0)]
    [InlineData(1, 40, 16, 1)]
    [InlineData(4, 40, 21, 2)]
    public void MisalignedViewsAndOddKTakeTheScalarKernel(int m, int k, int n, int offset)
    {
        int seed = 8500 + m + k + n + offset;
        var a = Random(seed, m * k);
        var b = Random(seed + 1, k * n);
        var aView = UploadAt(a, offset);
        var bView = UploadAt(b, offset == 2 ? 0 : offset);
        Assert.False(K.UsesGemvNkVecF32(aView, bView, k));
        var c = Poisoned(m * n);
        K.Mm(aView, bView, c, m, k, n, transposeB: true);
        AssertClose(Download(c), Reference(a, b, m, k, n, 1f, 0f, null, false), RtolF32, Atol * k, "misaligned mm", seed);
    }

    private ArrayView<float> UploadAt(float[] data, int offset)
    {
        var padded = Enumerable.Repeat(float.NaN, data.Length + offset + 3).ToArray();
        Array.Copy(data, 0, padded, offset, data.Length);
        return Upload(padded).SubView(offset, data.Length);
    }

    /// <summary>CUDA geometry (8 warps of 32), the one-row and 8-row kernels split over a 4-SM plan and the 16-row kernel whole.</summary>
    [Theory]
    [InlineData(1, 1032, 9, 4)]
    [InlineData(16, 520, 30, 1)]
    [InlineData(6, 264, 40, 4)]
    public void CudaGeometryMatchesFloat64(int m, int k, int n, int multiprocessors)
    {
        int seed = 8600 + (m * 1000) + k + n;
        var acc = warp32.Accelerator;
        var a = Random(seed, m * k);
        var b = Random(seed + 1, k * n);
        var bias = Random(seed + 2, n);
        var (config, g, cap) = GemvNkVecLaunch.Plan(
            new GemvShape { M = m, N = n, K = k, Alpha = 0.5f, Beta = 2f, HasBias = 1 }, acc.WarpSize, 256, multiprocessors);
        output.WriteLine($"seed {seed}: rows cap {cap}, splits {g.Splits}, chunk {g.KChunk}, groups {config.GridDim.X}");
        Assert.Equal(multiprocessors > 1, g.Splits > 1);

        using var aBuffer = acc.Allocate1D(a);
        using var bBuffer = acc.Allocate1D(b);
        using var biasBuffer = acc.Allocate1D(bias);
        using var cBuffer = acc.Allocate1D(Enumerable.Repeat(float.NaN, m * n).ToArray());
        using var partial = acc.Allocate1D(Enumerable.Repeat(float.NaN, (int)Math.Max(1L, (long)g.Splits * m * n)).ToArray());
        var a4 = aBuffer.View.AsContiguous().Cast<Float4>();
        var b4 = bBuffer.View.AsContiguous().Cast<Float4>();
        var biasView = biasBuffer.View.AsContiguous();
        var cView = cBuffer.View.AsContiguous();
        var partialView = partial.View.AsContiguous();
        if (cap == 1)
        {
            acc.LoadStreamKernel<ArrayView<Float4>, ArrayView<Float4>, ArrayView<float>, ArrayView<float>, ArrayView<float>, GemvShape>(GemmFastKernels.GemvNkVec1F32)(
                config, a4, b4, biasView, cView, partialView, g);
        }
        else if (cap == 8)
        {
            acc.LoadStreamKernel<ArrayView<Float4>, ArrayView<Float4>, ArrayView<float>, ArrayView<float>, ArrayView<float>, GemvShape>(GemmFastKernels.GemvNkVecF32<Const8>)(
                config, a4, b4, biasView, cView, partialView, g);
        }
        else
        {
            Assert.Equal(16, cap);
            acc.LoadStreamKernel<ArrayView<Float4>, ArrayView<Float4>, ArrayView<float>, ArrayView<float>, ArrayView<float>, GemvShape>(GemmFastKernels.GemvNkVecF32<Const16>)(
                config, a4, b4, biasView, cView, partialView, g);
        }

        acc.Synchronize();
        if (g.Splits > 1)
        {
            acc.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, GemvShape>(GemmFastKernels.GemvReduceF32)(
                new KernelConfig(4, 32), partialView, biasView, cView, g);
            acc.Synchronize();
        }

        AssertClose(cBuffer.GetAsArray1D(), Reference(a, b, m, k, n, 0.5f, 2f, bias, false), RtolF32, Atol * k, "warp-32 GEMV", seed);
    }

    [Fact]
    public void PtxLoadsSixteenBytesAtATimeWithoutLocalMemory()
    {
        var kernels = new[]
        {
            typeof(GemmFastKernels).GetMethod(nameof(GemmFastKernels.GemvNkVec1F32))!,
            typeof(GemmFastKernels).GetMethod(nameof(GemmFastKernels.GemvNkVecF32))!.MakeGenericMethod(typeof(Const2)),
            typeof(GemmFastKernels).GetMethod(nameof(GemmFastKernels.GemvNkVecF32))!.MakeGenericMethod(typeof(Const16)),
            typeof(GemmFastKernels).GetMethod(nameof(GemmFastKernels.GemvKnVecF32))!.MakeGenericMethod(typeof(Const1)),
            typeof(GemmFastKernels).GetMethod(nameof(GemmFastKernels.GemvKnVecF32))!.MakeGenericMethod(typeof(Const16)),
            typeof(GemmFastKernels).GetMethod(nameof(GemmFastKernels.GemvKnPipeF32))!.MakeGenericMethod(typeof(Const2)),
            typeof(GemmFastKernels).GetMethod(nameof(GemmFastKernels.GemvKnPipeF32))!.MakeGenericMethod(typeof(Const16)),
            typeof(GemmFastKernels).GetMethod(nameof(GemmFastKernels.GemvNkPipeF32))!.MakeGenericMethod(typeof(Const2)),
            typeof(GemmFastKernels).GetMethod(nameof(GemmFastKernels.GemvNkPipeF32))!.MakeGenericMethod(typeof(Const16)),
        };
        foreach (var kernel in kernels)
        {
            int? groupsPerSm = kernel.Name is nameof(GemmFastKernels.GemvKnPipeF32) or nameof(GemmFastKernels.GemvNkPipeF32) ? 2 : null;
            string suffix = kernel.IsGenericMethod ? "_" + kernel.GetGenericArguments()[0].Name : string.Empty;
            string ptx = Sm90Ptx.Of(kernel, new KernelSpecialization(256, groupsPerSm), kernel.Name + suffix);

            int vectorLoads = Regex.Matches(ptx, @"ld\.global(\.nc)?\.v4\.(f32|b32|u32)").Count;
            int sharedVectorLoads = Regex.Matches(ptx, @"ld\.shared\.v4\.(f32|b32|u32)").Count;
            int local = Regex.Matches(ptx, @"(ld|st)\.local").Count;
            output.WriteLine($"{kernel.Name}: {vectorLoads} global v4 loads, {sharedVectorLoads} shared v4 loads, {local} local accesses, {ptx.Length} chars");
            Assert.True(vectorLoads >= 8, $"{kernel.Name}: expected at least eight 16-byte loads (whole iteration and tail), found {vectorLoads}");
            Assert.Equal(0, local);
        }
    }

    /// <summary>
    /// Every variant of the streamed kernel in sm_90 PTX at its launch bound (256 threads): 16-byte loads for A and W, no
    /// local memory, and in the batch loop the batch's weight loads (one per column) before the warp barrier with no float
    /// arithmetic among them, its activation loads (one per row) after it and before the products. The barrier orders memory,
    /// so ptxas keeps every weight load ahead of it: the DRAM requests of a batch leave in one burst.
    /// </summary>
    [Theory]
    [InlineData(typeof(Const1), 1, 8)]
    [InlineData(typeof(Const2), 2, 8)]
    [InlineData(typeof(Const4), 4, 8)]
    [InlineData(typeof(Const8), 8, 4)]
    [InlineData(typeof(Const16), 16, 4)]
    public void StreamPtxIssuesTheBatchBeforeItsProducts(Type rowsCap, int cap, int columns)
    {
        Assert.Equal(columns, GemmFastKernels.GemvNkStreamColumns(cap));
        var kernel = typeof(GemmFastKernels).GetMethod(nameof(GemmFastKernels.GemvNkStreamF32))!.MakeGenericMethod(rowsCap);
        string ptx = Sm90Ptx.Of(kernel, new KernelSpecialization(256, null), $"GemvNkStreamF32_Const{cap}");

        int batchLoads = columns + cap;
        int vectorLoads = Regex.Matches(ptx, @"ld\.global(\.nc)?\.v4\.(f32|b32|u32)").Count;
        int scalarGlobalLoads = Regex.Matches(ptx, @"ld\.global(\.nc)?\.(f32|b32|u32)\b").Count;
        int local = Regex.Matches(ptx, @"(ld|st)\.local").Count;
        output.WriteLine($"GemvNkStreamF32<{cap}>: {vectorLoads} global v4 loads, {scalarGlobalLoads} scalar global loads, {local} local accesses");
        Assert.Equal(0, local);
        Assert.True(vectorLoads >= 2 * batchLoads, $"expected the batch's {batchLoads} 16-byte loads in the loop and the tail, found {vectorLoads}");

        int fence = ptx.IndexOf("bar.warp.sync", StringComparison.Ordinal);
        Assert.True(fence > 0, "the batch loop has no warp barrier");
        var beforeFence = Regex.Matches(ptx[..fence], @"ld\.global(\.nc)?\.v4\.f32");
        Assert.Equal(columns, beforeFence.Count);
        Assert.Empty(Regex.Matches(ptx[beforeFence[0].Index..fence], @"\b(mul|fma|add)\.(rn\.)?f32"));
        var afterFence = ptx[fence..];
        int firstProduct = Regex.Match(afterFence, @"\b(fma\.rn|mul(\.rn)?)\.f32").Index;
        Assert.True(firstProduct > 0, "no product after the fence");
        Assert.Equal(cap, Regex.Matches(afterFence[..firstProduct], @"ld\.global(\.nc)?\.v4\.f32").Count);
        int products = Regex.Matches(afterFence, @"\b(fma\.rn|mul(\.rn)?)\.f32").Count;
        Assert.True(products >= cap * columns * 4, $"expected {cap * columns * 4} products after the fence, found {products}");
    }
}
