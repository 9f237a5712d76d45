using System;
using System.Linq;
using System.Text.RegularExpressions;
using GemsInjector.Kernels.Ilgpu;
using ILGPU;
using ILGPU.Runtime;
using Xunit;
using Xunit.Abstractions;

namespace GemsInjector.Kernels.Ilgpu.Tests;

/// <summary>
/// The float32 [N, K] GEMV for 9–16 rows with the activations staged in shared memory (<c>GemvNkStagedF32</c>, bursts of one and two
/// batches: <c>GEMS_GEMV_F32_WIDE=staged</c> and <c>staged2</c>; and <c>GemvNkRingF32</c>, the weight through a per-warp ring of 4 or 3
/// shared stages: <c>ring</c> and <c>ring3</c>, and <c>GemvNkRingWideF32</c>, ring3 with 8 weight rows per lane: <c>ring3w</c>; the rings' simulator path copies synchronously at the cp.async's place): through the facade on the default simulator (4-lane warps: bursts of 4 vectors, 16
/// per chunk) and on the warp-32 simulator (the CUDA lane layout: lane halves of 16, 2 bursts per chunk, the four-step
/// lane sum), every element against float64; ragged M, N and K (K below a burst, 4 · odd, several chunks with a short
/// last one); biases and alpha / beta; NaN and ±Inf; the setting, the routing, the plan and the PTX.
/// </summary>
[Collection(SimulatorCollection.Name)]
public sealed class GemvNkStagedF32Tests : GemvF32TestBase, IClassFixture<Warp32SimulatorFixture>
{
    private readonly Warp32SimulatorFixture warp32;
    private readonly ITestOutputHelper output;
    private readonly GemvF32Variant savedVariant;
    private readonly GemvF32Wide savedWide;

    public GemvNkStagedF32Tests(SimulatorFixture fixture, Warp32SimulatorFixture warp32, ITestOutputHelper output)
        : base(fixture)
    {
        this.warp32 = warp32;
        this.output = output;
        savedVariant = K.GemvF32Kernel;
        savedWide = K.GemvF32WideKernel;
        K.GemvF32Kernel = GemvF32Variant.Stream;
        K.GemvF32WideKernel = GemvF32Wide.Staged;
    }

    public override void Dispose()
    {
        K.GemvF32Kernel = savedVariant;
        K.GemvF32WideKernel = savedWide;
        base.Dispose();
    }

    // Every setting that routes 9–16 rows to a staged-activation kernel: both bursts of the staged kernel, both ring depths.
    private static readonly GemvF32Wide[] Wides = { GemvF32Wide.Staged, GemvF32Wide.Staged2, GemvF32Wide.Ring, GemvF32Wide.Ring3, GemvF32Wide.Ring3W };

    // Through Mm / Addmm with the switch set. On the 4-lane simulator a burst is 4 vectors (16 floats) and a chunk 64
    // vectors: K = 4 is a lone partial burst, 76 a few bursts and a partial one in one chunk, 1028 four chunks and a
    // one-vector fifth, 2060 eight chunks and a three-vector ninth. The ring kernel: bursts of 2 vectors, chunks of 32 (16
    // bursts, the ring's slot wrapping many times per chunk): K = 76 one chunk of 19 vectors with a one-vector last burst,
    // 1028 eight chunks and a one-vector ninth, 2060 sixteen and a 3-vector one. N: below, at and past one group's 16 weight rows.
    [Theory]
    [InlineData(9, 4, 1)]
    [InlineData(9, 1028, 17)]
    [InlineData(9, 76, 50)]
    [InlineData(12, 4, 16)]
    [InlineData(12, 2060, 7)]
    [InlineData(12, 1028, 50)]
    [InlineData(16, 76, 1)]
    [InlineData(16, 1028, 16)]
    [InlineData(16, 2060, 17)]
    [InlineData(16, 4, 50)]
    public void StagedMatchesFloat64(int m, int k, int n)
    {
        foreach (var wide in Wides)
        {
            K.GemvF32WideKernel = wide;
            StagedCase(m, k, n, wide);
        }
    }

    private void StagedCase(int m, int k, int n, GemvF32Wide wide)
    {
        int seed = 13100 + (m * 1000) + k + n;
        var a = Random(seed, m * k);
        var b = Random(seed + 1, k * n);
        var aView = Upload(a);
        var bView = Upload(b);
        Assert.True(K.UsesGemvNkStagedF32(aView, bView, m, k), "an aligned 9–16-row [N, K] product must take the staged GEMV under `staged`");
        output.WriteLine($"{wide}, seed {seed}: {m}x{k}x{n}, {GemvNkStagedLaunch.Plan(new GemvShape { M = m, N = n, K = k }, Device.WarpSize).GridDim.X} groups");

        var (c, whole) = PoisonedWithSentinel(m * n);
        K.Mm(aView, bView, c, m, k, n, transposeB: true);
        var got = Download(whole);
        AssertClose(got[..(m * n)], Reference(a, b, m, k, n, 1f, 0f, null, false), RtolF32, Atol * k, $"{wide} mm", seed);
        AssertSentinel(got, m * n);

        var row = Random(seed + 2, n);
        (c, whole) = PoisonedWithSentinel(m * n);
        K.Addmm(Upload(row), aView, bView, c, m, k, n, beta: -1.25f, alpha: 0.75f, transposeB: true);
        got = Download(whole);
        AssertClose(got[..(m * n)], Reference(a, b, m, k, n, 0.75f, -1.25f, row, false), RtolF32, Atol * k, $"{wide} addmm row bias", seed);
        AssertSentinel(got, m * n);

        var full = Random(seed + 3, m * n);
        (c, whole) = PoisonedWithSentinel(m * n);
        K.Addmm(Upload(full), aView, bView, c, m, k, n, beta: 0.5f, alpha: -2f, transposeB: true);
        got = Download(whole);
        AssertClose(got[..(m * n)], Reference(a, b, m, k, n, -2f, 0.5f, full, true), RtolF32, Atol * k, $"{wide} addmm matrix bias", seed);
        AssertSentinel(got, m * n);
    }

    // NaN and ±Inf in A and in W, in whole bursts and in the last partial one (K = 4 · odd, one vector past the last
    // whole burst on the 4-lane simulator): NaN where float64 says NaN, the same infinity where it is infinite.
    [Theory]
    [InlineData(9, 1028, 10)]
    [InlineData(12, 148, 19)]
    [InlineData(16, 148, 6)]
    public void StagedPropagatesNaNAndInf(int m, int k, int n)
    {
        int seed = 13500 + m + k + n;
        var a = Random(seed, m * k);
        var b = Random(seed + 1, k * n);
        PlantNaNAndInf(a, b, m, k, n);
        foreach (var wide in Wides)
        {
            K.GemvF32WideKernel = wide;
            var (c, whole) = PoisonedWithSentinel(m * n);
            K.Mm(Upload(a), Upload(b), c, m, k, n, transposeB: true);
            var got = Download(whole);
            AssertNaNAndInf(got, Reference(a, b, m, k, n, 1f, 0f, null, false), m * n, k, seed);
        }
    }

    private static void PlantNaNAndInf(float[] a, float[] b, int m, int k, int n)
    {
        a[(1 * k) + 5] = float.NaN;                        // row 1, a whole burst
        a[(8 * k) + 6] = float.NaN;                        // row 8 (the second lane half), a whole burst
        a[((m - 1) * k) + k - 2] = float.PositiveInfinity; // last row, the partial burst
        a[(m - 2) * k] = float.PositiveInfinity;           // row m - 2, vector 0: a stage slot past K copied from a real
                                                           // vector instead of zero-filled would make its ±Inf outputs NaN
        b[(2 * k) + k - 1] = float.NaN;                    // column 2, the partial burst
        b[((n - 1) * k) + 9] = float.NegativeInfinity;     // last column, a whole burst
    }

    private static void AssertNaNAndInf(float[] got, double[] expected, int count, int k, int seed)
    {
        int nan = expected.Count(double.IsNaN);
        int inf = expected.Count(double.IsInfinity);
        Assert.True(nan > 0 && inf > 0, $"the case must have NaN and infinite outputs ({nan}, {inf})");
        AssertClose(got[..count], expected, RtolF32, Atol * k, "staged NaN / Inf", seed);
        AssertSentinel(got, count);
    }

    /// <summary>
    /// The CUDA lane layout on the warp-32 simulator, the kernel launched directly (synchronous copies): lane halves of
    /// 16 vectors, bursts of 32, 2 per chunk, the four-step lane sum, matrix bias with alpha / beta. K: no whole burst
    /// (76), whole bursts and one vector (516: 3 chunks, the last of one vector), several chunks with a ragged last one. The
    /// ring kernel at both depths on the same cases: 16-vector bursts, 2 per 32-vector chunk, the ring slot wrapping every 3 or
    /// 4 bursts; K = 4 and 76 have fewer bursts than the prologue sends ahead.
    /// </summary>
    [Theory]
    [InlineData(9, 1028, 17)]
    [InlineData(10, 76, 1)]
    [InlineData(12, 2060, 50)]
    [InlineData(13, 516, 7)]
    [InlineData(16, 4, 16)]
    [InlineData(16, 516, 33)]
    public void StagedCudaGeometryMatchesFloat64(int m, int k, int n)
    {
        int seed = 13700 + (m * 1000) + k + n;
        var a = Random(seed, m * k);
        var b = Random(seed + 1, k * n);
        var bias = Random(seed + 2, m * n);
        var g = new GemvShape { M = m, N = n, K = k, Alpha = 0.5f, Beta = 2f, HasBias = 1, BiasStrideM = n };
        var expected = Reference(a, b, m, k, n, 0.5f, 2f, bias, true);
        foreach (int burst in new[] { 1, 2 })
        {
            var got = RunOnWarp32(a, b, bias, g, burst);
            AssertClose(got[..(m * n)], expected, RtolF32, Atol * k, $"warp-32 staged GEMV, burst {burst}", seed);
            AssertSentinel(got, m * n);
        }

        foreach (int stages in new[] { 3, 4 })
        {
            var got = RunRingOnWarp32(a, b, bias, g, stages);
            AssertClose(got[..(m * n)], expected, RtolF32, Atol * k, $"warp-32 ring GEMV, {stages} stages", seed);
            AssertSentinel(got, m * n);
        }

        var wide = RunRingWideOnWarp32(a, b, bias, g);
        AssertClose(wide[..(m * n)], expected, RtolF32, Atol * k, "warp-32 wide ring GEMV", seed);
        AssertSentinel(wide, m * n);
    }

    /// <summary>
    /// The wide ring adds every sum in ring3's order (per k vector X, Y, Z, W, bursts in order, the same halving tree over j),
    /// so its outputs must equal ring3's bit for bit, on both simulators: a lane's 8 weight rows, the 4-copy weight burst,
    /// the 2 KB ring stages and the 32-row groups (N ragged against 32, not only 16) change no arithmetic.
    /// </summary>
    [Theory]
    [InlineData(9, 4, 1)]
    [InlineData(10, 76, 33)]
    [InlineData(13, 516, 31)]
    [InlineData(16, 1028, 64)]
    [InlineData(16, 2060, 50)]
    [InlineData(12, 328, 97)]
    public void RingWideIsBitIdenticalToRing3(int m, int k, int n)
    {
        int seed = 14100 + (m * 1000) + k + n;
        var a = Random(seed, m * k);
        var b = Random(seed + 1, k * n);
        var bias = Random(seed + 2, m * n);
        var g = new GemvShape { M = m, N = n, K = k, Alpha = 0.5f, Beta = 2f, HasBias = 1, BiasStrideM = n };
        var ring3 = RunRingOnWarp32(a, b, bias, g, 3);
        var wide = RunRingWideOnWarp32(a, b, bias, g);
        Assert.Equal(ring3, wide);
        Assert.Equal(0, wide[..(m * n)].Count(float.IsNaN));

        var aView = Upload(a);
        var bView = Upload(b);
        var (c3, whole3) = PoisonedWithSentinel(m * n);
        K.GemvF32WideKernel = GemvF32Wide.Ring3;
        K.Mm(aView, bView, c3, m, k, n, transposeB: true);
        var (cw, wholeW) = PoisonedWithSentinel(m * n);
        K.GemvF32WideKernel = GemvF32Wide.Ring3W;
        K.Mm(aView, bView, cw, m, k, n, transposeB: true);
        var got = Download(wholeW);
        Assert.Equal(Download(whole3), got);
        AssertSentinel(got, m * n);
    }

    /// <summary>NaN and ±Inf on the warp-32 layout (the partial burst is 18 of 32 vectors there).</summary>
    [Fact]
    public void StagedCudaGeometryPropagatesNaNAndInf()
    {
        const int M = 16, Kd = 328, N = 20;
        int seed = 13900;
        var a = Random(seed, M * Kd);
        var b = Random(seed + 1, Kd * N);
        PlantNaNAndInf(a, b, M, Kd, N);
        var g = new GemvShape { M = M, N = N, K = Kd, Alpha = 1f };
        var expected = Reference(a, b, M, Kd, N, 1f, 0f, null, false);
        foreach (int burst in new[] { 1, 2 })
        {
            AssertNaNAndInf(RunOnWarp32(a, b, Random(seed + 2, N), g, burst), expected, M * N, Kd, seed);
        }

        foreach (int stages in new[] { 3, 4 })
        {
            AssertNaNAndInf(RunRingOnWarp32(a, b, Random(seed + 2, N), g, stages), expected, M * N, Kd, seed);
        }

        AssertNaNAndInf(RunRingWideOnWarp32(a, b, Random(seed + 2, N), g), expected, M * N, Kd, seed);
    }

    private float[] RunRingWideOnWarp32(float[] a, float[] b, float[] bias, GemvShape g)
    {
        var acc = warp32.Accelerator;
        Assert.True(GemvNkRingLaunch.Fits(acc.WarpSize, acc.MaxNumThreadsPerGroup));
        var config = GemvNkRingWideLaunch.Plan(g, acc.WarpSize, GemvNkRingWideLaunch.Stages);
        Assert.Equal(128, config.GroupDim.X);
        using var aBuffer = acc.Allocate1D(a);
        using var bBuffer = acc.Allocate1D(b);
        using var biasBuffer = acc.Allocate1D(bias);
        using var cBuffer = acc.Allocate1D(Enumerable.Repeat(float.NaN, g.M * g.N).Concat(Enumerable.Repeat(Sentinel, 64)).ToArray());
        var kernel = acc.LoadStreamKernel<ArrayView<Float4>, ArrayView<Float4>, ArrayView<float>, ArrayView<float>, GemvShape, long, long>(GemmFastKernels.GemvNkRingWideF32<GemvNkRingStages3>);
        kernel(
            config, aBuffer.View.AsContiguous().Cast<Float4>(), bBuffer.View.AsContiguous().Cast<Float4>(), biasBuffer.View.AsContiguous(),
            cBuffer.View.AsContiguous().SubView(0, g.M * g.N), g, 0L, 0L);
        acc.Synchronize();
        return cBuffer.GetAsArray1D();
    }

    private float[] RunRingOnWarp32(float[] a, float[] b, float[] bias, GemvShape g, int stages)
    {
        var acc = warp32.Accelerator;
        Assert.True(GemvNkRingLaunch.Fits(acc.WarpSize, acc.MaxNumThreadsPerGroup));
        var config = GemvNkRingLaunch.Plan(g, acc.WarpSize, stages);
        Assert.Equal(128, config.GroupDim.X);
        using var aBuffer = acc.Allocate1D(a);
        using var bBuffer = acc.Allocate1D(b);
        using var biasBuffer = acc.Allocate1D(bias);
        using var cBuffer = acc.Allocate1D(Enumerable.Repeat(float.NaN, g.M * g.N).Concat(Enumerable.Repeat(Sentinel, 64)).ToArray());
        var kernel = stages == 3
            ? acc.LoadStreamKernel<ArrayView<Float4>, ArrayView<Float4>, ArrayView<float>, ArrayView<float>, GemvShape, long, long>(GemmFastKernels.GemvNkRingF32<GemvNkRingStages3>)
            : acc.LoadStreamKernel<ArrayView<Float4>, ArrayView<Float4>, ArrayView<float>, ArrayView<float>, GemvShape, long, long>(GemmFastKernels.GemvNkRingF32<Const4>);
        kernel(
            config, aBuffer.View.AsContiguous().Cast<Float4>(), bBuffer.View.AsContiguous().Cast<Float4>(), biasBuffer.View.AsContiguous(),
            cBuffer.View.AsContiguous().SubView(0, g.M * g.N), g, 0L, 0L);
        acc.Synchronize();
        return cBuffer.GetAsArray1D();
    }

    private float[] RunOnWarp32(float[] a, float[] b, float[] bias, GemvShape g, int burst)
    {
        var acc = warp32.Accelerator;
        Assert.True(GemvNkStagedLaunch.Fits(acc.WarpSize, acc.MaxNumThreadsPerGroup));
        var config = GemvNkStagedLaunch.Plan(g, acc.WarpSize);
        Assert.Equal(128, config.GroupDim.X);
        using var aBuffer = acc.Allocate1D(a);
        using var bBuffer = acc.Allocate1D(b);
        using var biasBuffer = acc.Allocate1D(bias);
        using var cBuffer = acc.Allocate1D(Enumerable.Repeat(float.NaN, g.M * g.N).Concat(Enumerable.Repeat(Sentinel, 64)).ToArray());
        var kernel = burst == 1
            ? acc.LoadStreamKernel<ArrayView<Float4>, ArrayView<Float4>, ArrayView<float>, ArrayView<float>, GemvShape, long>(GemmFastKernels.GemvNkStagedF32<Const1>)
            : acc.LoadStreamKernel<ArrayView<Float4>, ArrayView<Float4>, ArrayView<float>, ArrayView<float>, GemvShape, long>(GemmFastKernels.GemvNkStagedF32<Const2>);
        kernel(
            config, aBuffer.View.AsContiguous().Cast<Float4>(), bBuffer.View.AsContiguous().Cast<Float4>(), biasBuffer.View.AsContiguous(),
            cBuffer.View.AsContiguous().SubView(0, g.M * g.N), g, 0L);
        acc.Synchronize();
        return cBuffer.GetAsArray1D();
    }

    [Fact]
    public void StagedRoutesOnlyAlignedNineToSixteenRowProductsUnderStream()
    {
        var a = Upload(Random(13950, 17 * 8));
        var b = Upload(Random(13951, 8 * 8));
        Assert.True(K.UsesGemvNkStagedF32(a, b, 9, 8));
        Assert.True(K.UsesGemvNkStagedF32(a, b, 12, 8));
        Assert.True(K.UsesGemvNkStagedF32(a, b, 16, 8));
        K.GemvF32WideKernel = GemvF32Wide.Staged2;
        Assert.True(K.UsesGemvNkStagedF32(a, b, 12, 8));
        Assert.False(K.UsesGemvNkStagedF32(a, b, 8, 8));
        foreach (var ring in new[] { GemvF32Wide.Ring, GemvF32Wide.Ring3, GemvF32Wide.Ring3W })
        {
            K.GemvF32WideKernel = ring;
            Assert.True(K.UsesGemvNkStagedF32(a, b, 9, 8));
            Assert.True(K.UsesGemvNkStagedF32(a, b, 16, 8));
            Assert.False(K.UsesGemvNkStagedF32(a, b, 8, 8));
            Assert.False(K.UsesGemvNkStagedF32(a, b, 17, 8));
            Assert.False(K.UsesGemvNkStagedF32(a, b, 12, 6));
            Assert.False(K.UsesGemvNkStagedF32(a.SubView(1, 16 * 8), b, 12, 8));
        }

        K.GemvF32WideKernel = GemvF32Wide.Staged;
        Assert.False(K.UsesGemvNkStagedF32(a, b, 8, 8));
        Assert.False(K.UsesGemvNkStagedF32(a, b, 1, 8));
        Assert.False(K.UsesGemvNkStagedF32(a, b, 17, 8));
        Assert.False(K.UsesGemvNkStagedF32(a, b, 12, 6));
        Assert.False(K.UsesGemvNkStagedF32(a.SubView(1, 16 * 8), b, 12, 8));
        Assert.False(K.UsesGemvNkStagedF32(a, b.SubView(2, 7 * 8), 12, 8));

        K.GemvF32Kernel = GemvF32Variant.Pipe;
        Assert.False(K.UsesGemvNkStagedF32(a, b, 12, 8));
        K.GemvF32Kernel = GemvF32Variant.Vec;
        Assert.False(K.UsesGemvNkStagedF32(a, b, 12, 8));
        K.GemvF32Kernel = GemvF32Variant.Stream;
        K.GemvF32WideKernel = GemvF32Wide.Stream;
        Assert.False(K.UsesGemvNkStagedF32(a, b, 12, 8));
        Assert.True(K.UsesGemvNkStreamF32(a, b, 12, 8));
    }

    [Theory]
    [InlineData("staged", nameof(GemvF32Wide.Staged))]
    [InlineData(" STAGED ", nameof(GemvF32Wide.Staged))]
    [InlineData("staged2", nameof(GemvF32Wide.Staged2))]
    [InlineData(" Staged2", nameof(GemvF32Wide.Staged2))]
    [InlineData("stream", nameof(GemvF32Wide.Stream))]
    [InlineData(" Stream ", nameof(GemvF32Wide.Stream))]
    [InlineData(null, nameof(GemvF32Wide.Ring3W))]
    [InlineData("", nameof(GemvF32Wide.Ring3W))]
    [InlineData("stage", nameof(GemvF32Wide.Ring3W))]
    [InlineData("ring", nameof(GemvF32Wide.Ring))]
    [InlineData(" RING ", nameof(GemvF32Wide.Ring))]
    [InlineData("ring3", nameof(GemvF32Wide.Ring3))]
    [InlineData("Ring3 ", nameof(GemvF32Wide.Ring3))]
    [InlineData("ring4", nameof(GemvF32Wide.Ring3W))]
    [InlineData("ring3w", nameof(GemvF32Wide.Ring3W))]
    [InlineData(" RING3W ", nameof(GemvF32Wide.Ring3W))]
    [InlineData("ring3 w", nameof(GemvF32Wide.Ring3W))]
    [InlineData("ring4w", nameof(GemvF32Wide.Ring3W))]
    public void TheWideSettingParses(string? setting, string expected)
    {
        Assert.Equal("GEMS_GEMV_F32_WIDE", GemvF32WideChoice.Variable);
        Assert.Equal(expected, GemvF32WideChoice.Parse(setting).ToString());
    }

    [Fact]
    public void PlanIsOneGroupPerSixteenWeightRows()
    {
        // H200: 16 x 11008 is 688 groups of 4 warps with 32 KB of shared stages each.
        var config = GemvNkStagedLaunch.Plan(new GemvShape { M = 16, N = 11008, K = 4096 }, 32);
        Assert.Equal((688, 1, 1), (config.GridDim.X, config.GridDim.Y, config.GridDim.Z));
        Assert.Equal(128, config.GroupDim.X);
        Assert.Equal(32 * 1024, GemmFastKernels.GemvNkStagedSharedFloats * sizeof(float));
        Assert.Equal(1, GemvNkStagedLaunch.Plan(new GemvShape { M = 9, N = 16, K = 4 }, 32).GridDim.X);
        Assert.Equal(2, GemvNkStagedLaunch.Plan(new GemvShape { M = 9, N = 17, K = 4 }, 32).GridDim.X);
        Assert.True(GemvNkStagedLaunch.Fits(32, 1024));
        Assert.True(GemvNkStagedLaunch.Fits(4, 16));
        Assert.False(GemvNkStagedLaunch.Fits(32, 64));
        Assert.False(GemvNkStagedLaunch.Fits(3, 1024));
        Assert.False(GemvNkStagedLaunch.Fits(128, 1024));
        Assert.Equal((6, 4), (GemvNkStagedLaunch.GroupsPerSm(1), GemvNkStagedLaunch.GroupsPerSm(2)));
    }

    [Fact]
    public void RingPlanFitsSixGroupsPerSm()
    {
        // A's two 8 KB stages and 4 warps × S × 1 KB of ring: 28 and 32 KB, so 6 groups (+1 KB reserved each) fit 228 KB.
        foreach (int stages in new[] { 3, 4 })
        {
            var config = GemvNkRingLaunch.Plan(new GemvShape { M = 16, N = 11008, K = 4096 }, 32, stages);
            Assert.Equal((688, 1, 1), (config.GridDim.X, config.GridDim.Y, config.GridDim.Z));
            Assert.Equal(128, config.GroupDim.X);
            int bytes = GemmFastKernels.GemvNkRingSharedFloats(stages) * sizeof(float);
            Assert.Equal((16 + (4 * stages)) * 1024, bytes);
            Assert.True(GemvNkRingLaunch.GroupsPerSm * (bytes + 1024) <= 228 * 1024 && bytes <= 48 * 1024);
        }

        Assert.Equal(2, GemvNkRingLaunch.Plan(new GemvShape { M = 9, N = 17, K = 4 }, 32, 4).GridDim.X);
        Assert.True(GemvNkRingLaunch.Fits(32, 1024));
        Assert.True(GemvNkRingLaunch.Fits(4, 16));
        Assert.False(GemvNkRingLaunch.Fits(64, 1024));
        Assert.False(GemvNkRingLaunch.Fits(32, 64));
        Assert.False(GemvNkRingLaunch.Fits(6, 1024));
    }

    [Fact]
    public void RingWidePlanFitsFourGroupsPerSm()
    {
        // 32 weight rows per group: 344 groups at N = 11008; A's two 8 KB stages and 4 warps × 3 × 2 KB of ring = 40 KB,
        // under 48 KB (no opt-in), and 4 groups (+1 KB reserved each) fit 228 KB.
        var config = GemvNkRingWideLaunch.Plan(new GemvShape { M = 16, N = 11008, K = 4096 }, 32, GemvNkRingWideLaunch.Stages);
        Assert.Equal((344, 1, 1), (config.GridDim.X, config.GridDim.Y, config.GridDim.Z));
        Assert.Equal(128, config.GroupDim.X);
        int bytes = GemmFastKernels.GemvNkRingWideSharedFloats(GemvNkRingWideLaunch.Stages) * sizeof(float);
        Assert.Equal(40 * 1024, bytes);
        Assert.True(GemvNkRingWideLaunch.GroupsPerSm * (bytes + 1024) <= 228 * 1024 && bytes <= 48 * 1024);
        Assert.Equal(1, GemvNkRingWideLaunch.Plan(new GemvShape { M = 9, N = 32, K = 4 }, 32, 3).GridDim.X);
        Assert.Equal(2, GemvNkRingWideLaunch.Plan(new GemvShape { M = 9, N = 33, K = 4 }, 32, 3).GridDim.X);
        Assert.Equal(32, GemmFastKernels.GemvNkRingWideColumns);
    }

    /// <summary>
    /// sm_90 PTX of the wide ring at the facade's launch bounds (128 threads, 4 groups per SM): the weight copied by 4 16-byte
    /// cp.async per lane and burst from one shared address (+512 B row steps), 3 sites (2 prologue bursts, the loop), ring3's
    /// waits, one body of 16 shared v4 loads (8 weight, 8 activation) against 256 products, no local memory.
    /// </summary>
    [Fact]
    public void RingWidePtxCopiesFourWeightRowsPerLane()
    {
        var kernel = typeof(GemmFastKernels).GetMethod(nameof(GemmFastKernels.GemvNkRingWideF32))!.MakeGenericMethod(typeof(GemvNkRingStages3));
        var bounds = new KernelSpecialization(GemmFastKernels.GemvNkStagedWarps * 32, GemvNkRingWideLaunch.GroupsPerSm);
        string ptx = Sm90Ptx.Of(kernel, bounds, "GemvNkRingWideF32_S3");

        int sharedVectors = Regex.Matches(ptx, @"ld\.shared\.v4\.f32").Count;
        // ILGPU writes a product and its sum as mul.f32 and add.f32; ptxas contracts the pair into one FFMA.
        int products = Regex.Matches(ptx, @"\bmul\.f32").Count;
        output.WriteLine($"GemvNkRingWideF32<3>: {sharedVectors} shared v4 loads, {products} mul.f32, {ptx.Length} chars");
        Assert.Contains(".maxntid 128, 1, 1", ptx, StringComparison.Ordinal);
        Assert.Contains($".minnctapersm {GemvNkRingWideLaunch.GroupsPerSm}", ptx, StringComparison.Ordinal);
        PtxLocalSlots.AssertNone(ptx, "GemvNkRingWideF32");
        foreach (int offset in new[] { 512, 1024, 1536 })
        {
            Assert.Equal(3, Regex.Matches(ptx, $@"cp\.async\.cg\.shared\.global \[sdst\+{offset}\], \[g\d\], 16,").Count);
        }

        Assert.Contains("cp.async.wait_group 2;", ptx, StringComparison.Ordinal);
        Assert.Contains("cp.async.wait_group 1;", ptx, StringComparison.Ordinal);
        Assert.Contains("cp.async.wait_all;", ptx, StringComparison.Ordinal);
        Assert.Equal(16, sharedVectors); // one burst body: 8 weight and 8 activation vectors
        Assert.True(products >= 256, $"expected the burst's 256 products, found {products}");
    }

    /// <summary>
    /// sm_90 PTX of both ring depths at the facade's launch bounds (128 threads, 6 groups per SM): the weight copied by
    /// 16-byte cp.async (two per lane per burst, in the prologue's S − 1 bursts and the loop), the loop's wait leaving S − 1
    /// groups in flight, the 12 16-byte shared loads of a burst as one named base register plus immediate offsets, no local memory.
    /// </summary>
    [Theory]
    [InlineData(typeof(GemvNkRingStages3), 3)]
    [InlineData(typeof(Const4), 4)]
    public void RingPtxCopiesTheWeightByCpAsync(Type stagesType, int stages)
    {
        var kernel = typeof(GemmFastKernels).GetMethod(nameof(GemmFastKernels.GemvNkRingF32))!.MakeGenericMethod(stagesType);
        var bounds = new KernelSpecialization(GemmFastKernels.GemvNkStagedWarps * 32, GemvNkRingLaunch.GroupsPerSm);
        string ptx = Sm90Ptx.Of(kernel, bounds, $"GemvNkRingF32_S{stages}");

        var copies = Regex.Matches(ptx, @"cp\.async\.cg\.shared\.global \[sdst(\+\d+)?\], \[g\w+\], 16,");
        int weightPairs = Regex.Matches(ptx, @"cp\.async\.cg\.shared\.global \[sdst\+512\], \[g1\], 16,").Count;
        int sharedVectors = Regex.Matches(ptx, @"ld\.shared\.v4\.f32").Count;
        output.WriteLine($"GemvNkRingF32<{stages}>: {copies.Count} cp.async (16 B), {weightPairs} weight pairs, {sharedVectors} shared v4 loads, {ptx.Length} chars");
        Assert.Contains(".maxntid 128, 1, 1", ptx, StringComparison.Ordinal);
        Assert.Contains(".minnctapersm 6", ptx, StringComparison.Ordinal);
        PtxLocalSlots.AssertNone(ptx, "GemvNkRingF32");
        Assert.Equal(stages, weightPairs); // S − 1 in the prologue, one in the loop
        Assert.Equal(10 + (2 * stages), copies.Count); // A at chunk 0 and in the loop: 4 unrolled (128 threads) + the general loop's 1; two weight copies per burst site
        Assert.Contains($"cp.async.wait_group {stages - 1};", ptx, StringComparison.Ordinal);
        Assert.Contains("cp.async.wait_group 1;", ptx, StringComparison.Ordinal);
        Assert.Contains("cp.async.wait_all;", ptx, StringComparison.Ordinal);
        Assert.True(Regex.Matches(ptx, @"cp\.async\.commit_group").Count >= stages, "one commit per prologue burst and one in the loop");
        Assert.Equal(12, sharedVectors); // the burst's 8 activation and 4 weight vectors, once (no tail body)
        Assert.Empty(Regex.Matches(ptx, @"ld\.global(\.nc)?\.v4\.f32\s+\{[^}]*\}, \[[^\]]*\];\s*\n\s*(mul|fma)")); // no weight load feeds a product directly
    }

    /// <summary>
    /// sm_90 PTX of both bursts at the launch bounds the facade asks for (128 threads, <see cref="GemvNkStagedLaunch.GroupsPerSm"/>
    /// groups per SM): 16-byte global loads for the weight (a burst's 4 or 8 ahead of the warp barrier with no float arithmetic among
    /// them, in the whole-burst loop and the tail), cp.async for A, 16-byte shared loads for the staged activations (8 per
    /// batch), no local memory.
    /// </summary>
    [Theory]
    [InlineData(typeof(Const1), 1)]
    [InlineData(typeof(Const2), 2)]
    public void StagedPtxLoadsSixteenBytesAndStagesA(Type burstType, int batches)
    {
        var kernel = typeof(GemmFastKernels).GetMethod(nameof(GemmFastKernels.GemvNkStagedF32))!.MakeGenericMethod(burstType);
        var bounds = new KernelSpecialization(GemmFastKernels.GemvNkStagedWarps * 32, GemvNkStagedLaunch.GroupsPerSm(batches));
        string ptx = Sm90Ptx.Of(kernel, bounds, $"GemvNkStagedF32_Const{batches}");

        int burst = batches * 4;
        int globalVectors = Regex.Matches(ptx, @"ld\.global(\.nc)?\.v4\.f32").Count;
        int sharedVectors = Regex.Matches(ptx, @"ld\.shared\.v4\.f32").Count;
        int asyncCopies = Regex.Matches(ptx, @"cp\.async\.cg\.shared\.global").Count;
        output.WriteLine($"GemvNkStagedF32<{batches}>: {globalVectors} global v4 loads, {sharedVectors} shared v4 loads, {asyncCopies} cp.async, {ptx.Length} chars");
        Assert.Contains($".maxntid {GemmFastKernels.GemvNkStagedWarps * 32}, 1, 1", ptx, StringComparison.Ordinal);
        Assert.Contains($".minnctapersm {GemvNkStagedLaunch.GroupsPerSm(batches)}", ptx, StringComparison.Ordinal);
        PtxLocalSlots.AssertNone(ptx, "GemvNkStagedF32");
        Assert.True(globalVectors >= 2 * burst, $"expected a burst's {burst} 16-byte weight loads in the loop and the tail, found {globalVectors}");
        Assert.True(sharedVectors >= 2 * batches * 8, $"expected 8 16-byte shared loads per batch in the loop and the tail, found {sharedVectors}");
        Assert.True(asyncCopies >= 1, "A is not copied by cp.async");

        int fence = ptx.IndexOf("bar.warp.sync", StringComparison.Ordinal);
        Assert.True(fence > 0, "the burst loop has no warp barrier");
        var beforeFence = Regex.Matches(ptx[..fence], @"ld\.global(\.nc)?\.v4\.f32");
        Assert.True(beforeFence.Count >= burst, $"expected the burst's {burst} weight loads ahead of the warp barrier, found {beforeFence.Count}");
        var burstLoads = beforeFence[beforeFence.Count - burst].Index;
        Assert.Empty(Regex.Matches(ptx[burstLoads..fence], @"\b(mul|fma|add)\.(rn\.)?f32"));
        var afterFence = ptx[fence..];
        int firstProduct = Regex.Match(afterFence, @"\b(fma\.rn|mul(\.rn)?)\.f32").Index;
        Assert.True(firstProduct > 0, "no product after the fence");
        Assert.True(Regex.Matches(afterFence[..firstProduct], @"ld\.shared\.v4\.f32").Count >= 1, "no shared activation load before the first product");
    }
}
