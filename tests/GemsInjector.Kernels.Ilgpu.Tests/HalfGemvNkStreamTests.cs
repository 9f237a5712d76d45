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
/// The streamed 16-bit [N, K] GEMV (<see cref="HalfGemvKernels.GemvNk16Stream{TRowsCap, TFormat}"/>, <c>GEMS_GEMV16_NK=stream</c>
/// for one row, <c>stream8</c> for 1–8): both formats, every row cap and counts inside them, K of one vector, of partial
/// batches and of many batches, N below, not a multiple of and above a group's weight rows, row and matrix biases with
/// alpha and beta, NaN and ±Inf in A and W, outputs poisoned with NaN and followed by sentinels, the CUDA geometry on a
/// warp-32 simulator, the plan, the setting's parsing and routing, and the sm_90 PTX.
/// </summary>
[Collection(SimulatorCollection.Name)]
public sealed class HalfGemvNkStreamTests : Half16TestBase, IClassFixture<Warp32SimulatorFixture>
{
    /// <summary>Written past every output (1.0 + one ulp in float16, a small normal in bfloat16); a kernel that changes it wrote out of bounds.</summary>
    private const ushort Sentinel = 0x3C01;

    private readonly Warp32SimulatorFixture warp32;
    private readonly ITestOutputHelper output;

    public HalfGemvNkStreamTests(SimulatorFixture fixture, Warp32SimulatorFixture warp32, ITestOutputHelper output)
        : base(fixture)
    {
        this.warp32 = warp32;
        this.output = output;
    }

    /// <summary>float64 C = alpha · A[M, K] · W[N, K]ᵀ + beta · bias (bias ignored when beta is 0, as the kernels do).</summary>
    private static double[] Reference(float[] a, float[] w, int m, int k, int n, float alpha, float beta, float[]? bias, bool biasIsMatrix) =>
        Enumerable.Range(0, m * n).Select(e =>
        {
            int r = e / n, j = e % n;
            double dot = 0;
            for (int t = 0; t < k; t++)
            {
                dot += (double)a[(r * k) + t] * w[(j * k) + t];
            }

            double v = alpha * dot;
            return bias is null || beta == 0f ? v : v + (beta * (double)bias[biasIsMatrix ? e : j]);
        }).ToArray();

    /// <summary>An output of <paramref name="count"/> 16-bit NaNs followed by 64 sentinels that no kernel may touch.</summary>
    private (ArrayView<ushort> Output, ArrayView<ushort> Whole) PoisonedWithSentinel(int count, bool bf16)
    {
        var whole = Upload(Enumerable.Repeat(NaN16(bf16), count).Concat(Enumerable.Repeat(Sentinel, 64)).ToArray());
        return (whole.SubView(0, count), whole);
    }

    /// <summary>The output's values (checked against <paramref name="expected"/>) after checking that the sentinels past it are untouched.</summary>
    private void CheckWithSentinel(ushort[] whole, double[] expected, bool bf16, string what, int seed, double atol)
    {
        for (int e = expected.Length; e < whole.Length; e++)
        {
            Assert.True(whole[e] == Sentinel, $"{what}: element {e} past the output was written: 0x{whole[e]:X4}");
        }

        AssertClose(ToFloat(whole[..expected.Length], bf16), expected, Rtol(bf16), atol, $"{what} ({F(bf16)})", seed);
    }

    // m: every row cap (1, 2, 4, 8) and counts inside them (3, 5); k: one vector (8), multiples of 8 that are not of a
    // simulator warp's batch (32 values: 40, 104, 264) and several batches per warp with a partial one (1032); n: below a
    // group's weight rows (1, 3 at 8 rows), not a multiple of them (13, 21, 37) and a multiple (16).
    [Theory]
    [InlineData(true, 1, 8, 1)]
    [InlineData(false, 1, 1032, 21)]
    [InlineData(true, 1, 264, 16)]
    [InlineData(false, 2, 40, 13)]
    [InlineData(true, 2, 1032, 5)]
    [InlineData(true, 3, 104, 37)]
    [InlineData(false, 3, 8, 9)]
    [InlineData(false, 4, 264, 21)]
    [InlineData(true, 4, 40, 8)]
    [InlineData(true, 5, 1032, 13)]
    [InlineData(false, 5, 40, 3)]
    [InlineData(false, 8, 104, 37)]
    [InlineData(true, 8, 264, 3)]
    [InlineData(false, 8, 1032, 11)]
    public void MatchesFloat64(bool bf16, int m, int k, int n) => WithSetting(HalfGemvNk.StreamEight, () =>
    {
        int seed = 14100 + (m * 1000) + k + n + (bf16 ? 1 : 0);
        var (a, av) = Random16(seed, m * k, bf16, -1f, 1f);
        var (w, wv) = Random16(seed + 1, n * k, bf16, -1f, 1f);
        var aView = Upload(a);
        var wView = Upload(w);
        Assert.True(K.UsesHalfGemvNkStream(aView, wView, 1, m, k), "an aligned 1–8-row 16-bit [N, K] product must take the streamed GEMV under `stream8`");
        var (config, cap) = HalfGemvNkStreamLaunch.Plan(HalfGemvNkStreamLaunch.Shape(m, k, n, 1f, 0f, false, false), Device.WarpSize, Device.MaxGroupSize, Device.MultiprocessorCount);
        output.WriteLine($"seed {seed}: {m}x{k}x{n} {F(bf16)} rows cap {cap}, {config.GridDim.X} groups of {config.GroupDim.X} threads");

        var (c, whole) = PoisonedWithSentinel(m * n, bf16);
        K.Mm(aView, wView, c, m, k, n, F(bf16), transposeB: true);
        CheckWithSentinel(Download(whole), Reference(av, wv, m, k, n, 1f, 0f, null, false), bf16, "stream [N, K] mm", seed, Atol * k);

        var (row, rowv) = Random16(seed + 2, n, bf16);
        (c, whole) = PoisonedWithSentinel(m * n, bf16);
        K.Addmm(Upload(row), aView, wView, c, m, k, n, F(bf16), beta: -1.25f, alpha: 0.75f, transposeB: true);
        CheckWithSentinel(Download(whole), Reference(av, wv, m, k, n, 0.75f, -1.25f, rowv, false), bf16, "stream [N, K] addmm row bias", seed, Atol * k);

        if (m > 1)
        {
            var (full, fullv) = Random16(seed + 3, m * n, bf16);
            (c, whole) = PoisonedWithSentinel(m * n, bf16);
            K.Addmm(Upload(full), aView, wView, c, m, k, n, F(bf16), beta: 0.5f, alpha: -2f, transposeB: true);
            CheckWithSentinel(Download(whole), Reference(av, wv, m, k, n, -2f, 0.5f, fullv, true), bf16, "stream [N, K] addmm matrix bias", seed, Atol * k);
        }

        Assert.True(Device.HasCompiled(nameof(HalfGemvKernels.GemvNk16Stream)), "the streamed kernel did not run");
    });

    // NaN and ±Inf in A and in W, in a whole batch and in the last partial one: every output compared with the float64 dot
    // product, NaN where it is NaN, the same infinity where it is infinite (so a tail padded by a stale value times zero, or
    // a lost NaN, fails); the row bias is NaN under beta 0, so it must not be read into the result.
    [Theory]
    [InlineData(true, 1, 88, 10)]
    [InlineData(false, 1, 88, 10)]
    [InlineData(false, 3, 152, 11)]
    [InlineData(true, 5, 72, 9)]
    [InlineData(true, 8, 104, 6)]
    [InlineData(false, 8, 40, 7)]
    public void PropagatesNaNAndInf(bool bf16, int m, int k, int n) => WithSetting(HalfGemvNk.StreamEight, () =>
    {
        int seed = 14500 + m + k + n + (bf16 ? 1 : 0);
        var (a, _) = Random16(seed, m * k, bf16, -1f, 1f);
        var (w, _) = Random16(seed + 1, n * k, bf16, -1f, 1f);
        ushort inf = bf16 ? (ushort)0x7F80 : (ushort)0x7C00;
        ushort negInf = bf16 ? (ushort)0xFF80 : (ushort)0xFC00;
        if (m > 1)
        {
            a[(1 * k) + 5] = NaN16(bf16);          // row 1, a whole batch (a row of NaN alone would leave no infinite output)
        }

        a[((m - 1) * k) + k - 2] = inf;            // last row, the partial batch
        w[(2 * k) + k - 1] = NaN16(bf16);          // column 2, the partial batch
        w[((n - 1) * k) + 9] = negInf;             // last column, a whole batch
        var av = ToFloat(a, bf16);
        var wv = ToFloat(w, bf16);
        var nanBias = Enumerable.Repeat(NaN16(bf16), n).ToArray();
        var aView = Upload(a);
        var wView = Upload(w);
        Assert.True(K.UsesHalfGemvNkStream(aView, wView, 1, m, k));
        var (c, whole) = PoisonedWithSentinel(m * n, bf16);
        K.Addmm(Upload(nanBias), aView, wView, c, m, k, n, F(bf16), beta: 0f, transposeB: true);
        var got = Download(whole);
        for (int e = m * n; e < got.Length; e++)
        {
            Assert.True(got[e] == Sentinel, $"element {e} past the output was written");
        }

        var values = ToFloat(got[..(m * n)], bf16);
        var expected = Reference(av, wv, m, k, n, 1f, 0f, null, false);
        int nan = 0, infinite = 0;
        for (int e = 0; e < m * n; e++)
        {
            if (double.IsNaN(expected[e]))
            {
                nan++;
                Assert.True(float.IsNaN(values[e]), $"element {e} (row {e / n}, column {e % n}): {values[e]}, expected NaN");
            }
            else if (double.IsInfinity(expected[e]))
            {
                infinite++;
                Assert.Equal((float)expected[e], values[e]);
            }
            else
            {
                Assert.True(Math.Abs(values[e] - expected[e]) <= (Atol * k) + (Rtol(bf16) * Math.Abs(expected[e])), $"element {e}: {values[e]} vs {expected[e]}");
            }
        }

        Assert.True(nan > 0 && infinite > 0, $"the case must have NaN and infinite outputs ({nan}, {infinite})");
    });

    /// <summary>
    /// CUDA geometry (32-lane warps: the full five-step lane sum, 256-value batches per warp) on the warp-32 simulator at
    /// 2 to 8 warps per group, 3 and 5 among them: every row cap in both formats, N cut inside a group, K of 8 · odd values
    /// with whole and partial batches, a matrix bias with alpha and beta; C poisoned and followed by sentinels.
    /// </summary>
    [Theory]
    [InlineData(true, 1, 1032, 11, 2)]
    [InlineData(false, 1, 2056, 8, 4)]
    [InlineData(false, 1, 520, 13, 3)]
    [InlineData(false, 2, 1288, 13, 4)]
    [InlineData(true, 2, 136, 9, 8)]
    [InlineData(true, 3, 776, 5, 2)]
    [InlineData(false, 4, 1032, 7, 4)]
    [InlineData(true, 5, 392, 6, 5)]
    [InlineData(false, 7, 1544, 5, 2)]
    [InlineData(true, 8, 264, 3, 3)]
    [InlineData(false, 8, 1032, 6, 8)]
    public void CudaGeometryMatchesFloat64(bool bf16, int m, int k, int n, int warps)
    {
        int seed = 14600 + (m * 1000) + k + n + warps + (bf16 ? 1 : 0);
        var acc = warp32.Accelerator;
        var (a, av) = Random16(seed, m * k, bf16, -1f, 1f);
        var (w, wv) = Random16(seed + 1, n * k, bf16, -1f, 1f);
        var (bias, biasv) = Random16(seed + 2, m * n, bf16);
        var g = HalfGemvNkStreamLaunch.Shape(m, k, n, 0.5f, 2f, true, true);
        var (config, cap) = HalfGemvNkStreamLaunch.Plan(g, acc.WarpSize, 256, 132, warps);
        Assert.Equal(warps * 32, config.GroupDim.X);
        output.WriteLine($"seed {seed}: {m}x{k}x{n} {F(bf16)} rows cap {cap}, {config.GridDim.X} groups of {config.GroupDim.X} threads");

        using var aBuffer = acc.Allocate1D(a);
        using var wBuffer = acc.Allocate1D(w);
        using var biasBuffer = acc.Allocate1D(bias);
        using var cBuffer = acc.Allocate1D(Enumerable.Repeat(NaN16(bf16), m * n).Concat(Enumerable.Repeat(Sentinel, 64)).ToArray());
        LoadOn(acc, cap, bf16)(config, aBuffer.View.AsContiguous().Cast<Half8>(), wBuffer.View.AsContiguous().Cast<Half8>(), biasBuffer.View.AsContiguous(),
            cBuffer.View.AsContiguous().SubView(0, m * n), g);
        acc.Synchronize();
        CheckWithSentinel(cBuffer.GetAsArray1D(), Reference(av, wv, m, k, n, 0.5f, 2f, biasv, true), bf16, "warp-32 streamed 16-bit [N, K] GEMV", seed, Atol * k);
    }

    private static Action<KernelConfig, ArrayView<Half8>, ArrayView<Half8>, ArrayView<ushort>, ArrayView<ushort>, HalfGemvShape> LoadOn(Accelerator acc, int cap, bool bf16) => (cap, bf16) switch
    {
        (1, false) => acc.LoadStreamKernel<ArrayView<Half8>, ArrayView<Half8>, ArrayView<ushort>, ArrayView<ushort>, HalfGemvShape>(HalfGemvKernels.GemvNk16Stream<Const1, Float16Storage>),
        (2, false) => acc.LoadStreamKernel<ArrayView<Half8>, ArrayView<Half8>, ArrayView<ushort>, ArrayView<ushort>, HalfGemvShape>(HalfGemvKernels.GemvNk16Stream<Const2, Float16Storage>),
        (4, false) => acc.LoadStreamKernel<ArrayView<Half8>, ArrayView<Half8>, ArrayView<ushort>, ArrayView<ushort>, HalfGemvShape>(HalfGemvKernels.GemvNk16Stream<Const4, Float16Storage>),
        (8, false) => acc.LoadStreamKernel<ArrayView<Half8>, ArrayView<Half8>, ArrayView<ushort>, ArrayView<ushort>, HalfGemvShape>(HalfGemvKernels.GemvNk16Stream<Const8, Float16Storage>),
        (1, true) => acc.LoadStreamKernel<ArrayView<Half8>, ArrayView<Half8>, ArrayView<ushort>, ArrayView<ushort>, HalfGemvShape>(HalfGemvKernels.GemvNk16Stream<Const1, BFloat16Storage>),
        (2, true) => acc.LoadStreamKernel<ArrayView<Half8>, ArrayView<Half8>, ArrayView<ushort>, ArrayView<ushort>, HalfGemvShape>(HalfGemvKernels.GemvNk16Stream<Const2, BFloat16Storage>),
        (4, true) => acc.LoadStreamKernel<ArrayView<Half8>, ArrayView<Half8>, ArrayView<ushort>, ArrayView<ushort>, HalfGemvShape>(HalfGemvKernels.GemvNk16Stream<Const4, BFloat16Storage>),
        _ => acc.LoadStreamKernel<ArrayView<Half8>, ArrayView<Half8>, ArrayView<ushort>, ArrayView<ushort>, HalfGemvShape>(HalfGemvKernels.GemvNk16Stream<Const8, BFloat16Storage>),
    };

    [Fact]
    public void PlanTakesTheFewestWarpsThatFillTheSms()
    {
        // H200 (132 SMs): 4096 weight rows are 512 groups of 8 at 1–4 rows (2 warps would put 7.8 per SM to work, so 4) and
        // 1024 groups of 4 at 8 rows (2 warps); 11008 rows at one row 1376 groups of 2 warps; one group takes 8 warps.
        Assert.Equal((512, 128, 1), PlanOf(1, 4096, 4096));
        Assert.Equal((512, 128, 2), PlanOf(2, 4096, 4096));
        Assert.Equal((512, 128, 4), PlanOf(3, 4096, 4096));
        Assert.Equal((1024, 64, 8), PlanOf(8, 4096, 4096));
        Assert.Equal((1024, 64, 8), PlanOf(5, 4096, 4096));
        Assert.Equal((1376, 64, 1), PlanOf(1, 4096, 11008));
        Assert.Equal((1, 256, 1), PlanOf(1, 64, 5));
        Assert.Equal((2, 256, 8), PlanOf(8, 64, 5));
        Assert.Equal(8, HalfGemvKernels.GemvNk16StreamColumns(1));
        Assert.Equal(8, HalfGemvKernels.GemvNk16StreamColumns(4));
        Assert.Equal(4, HalfGemvKernels.GemvNk16StreamColumns(8));

        // The device's group size and the launch bound.
        Assert.Equal(16, HalfGemvNkStreamLaunch.Plan(HalfGemvNkStreamLaunch.Shape(1, 8, 8, 1f, 0f, false, false), 4, 16, 0).Config.GroupDim.X);
        Assert.Equal(256, HalfGemvNkStreamLaunch.Plan(HalfGemvNkStreamLaunch.Shape(1, 8, 8, 1f, 0f, false, false), 32, 1024, 132, warps: 16).Config.GroupDim.X);
        Assert.True(HalfGemvNkStreamLaunch.Fits(4, 16));
        Assert.False(HalfGemvNkStreamLaunch.Fits(32, 16));

        static (int Groups, int Threads, int Cap) PlanOf(int m, int k, int n)
        {
            var (config, cap) = HalfGemvNkStreamLaunch.Plan(HalfGemvNkStreamLaunch.Shape(m, k, n, 1f, 0f, false, false), 32, 1024, 132);
            return (config.GridDim.X, config.GroupDim.X, cap);
        }
    }

    [Theory]
    [InlineData(null, nameof(HalfGemvNk.Stream))]
    [InlineData("", nameof(HalfGemvNk.Stream))]
    [InlineData("off", nameof(HalfGemvNk.Split))]
    [InlineData(" Split ", nameof(HalfGemvNk.Split))]
    [InlineData("streams", nameof(HalfGemvNk.Stream))]
    [InlineData("stream", nameof(HalfGemvNk.Stream))]
    [InlineData(" STREAM ", nameof(HalfGemvNk.Stream))]
    [InlineData("stream8", nameof(HalfGemvNk.StreamEight))]
    [InlineData(" Stream8", nameof(HalfGemvNk.StreamEight))]
    public void SettingParses(string? setting, string expected) =>
        Assert.Equal(expected, HalfGemvNkChoice.Parse(setting).ToString());

    [Theory]
    [InlineData(null, 0)]
    [InlineData("", 0)]
    [InlineData("2", 2)]
    [InlineData(" 4 ", 4)]
    [InlineData("8", 8)]
    [InlineData("16", 0)]
    [InlineData("3", 0)]
    [InlineData("four", 0)]
    public void WarpsSettingParses(string? setting, int expected) =>
        Assert.Equal(expected, HalfGemvNkChoice.ParseWarps(setting));

    /// <summary>The forced warps per group reach the launch (8 warps on the 4-lane simulator are held to its 16-thread groups) and change no value.</summary>
    [Theory]
    [InlineData(true, 1, 264, 13, 2)]
    [InlineData(false, 3, 1032, 9, 8)]
    public void ForcedWarpsMatchFloat64(bool bf16, int m, int k, int n, int warps) => WithSetting(HalfGemvNk.StreamEight, () =>
    {
        Assert.Null(Environment.GetEnvironmentVariable(HalfGemvNkChoice.WarpsVariable));
        Assert.Equal(0, K.HalfGemvNkWarps);
        int seed = 14900 + m + k + n + warps + (bf16 ? 1 : 0);
        var (a, av) = Random16(seed, m * k, bf16, -1f, 1f);
        var (w, wv) = Random16(seed + 1, n * k, bf16, -1f, 1f);
        K.HalfGemvNkWarps = warps;
        try
        {
            var (c, whole) = PoisonedWithSentinel(m * n, bf16);
            K.Mm(Upload(a), Upload(w), c, m, k, n, F(bf16), transposeB: true);
            CheckWithSentinel(Download(whole), Reference(av, wv, m, k, n, 1f, 0f, null, false), bf16, $"stream [N, K] mm, {warps} warps forced", seed, Atol * k);
        }
        finally
        {
            K.HalfGemvNkWarps = 0;
        }
    });

    [Fact]
    public void StreamRoutesOnlyAlignedNkProductsOfItsRows() => WithSetting(HalfGemvNk.StreamEight, () =>
    {
        var a = Upload(To16(Random(14700, 17 * 16), true));
        var w = Upload(To16(Random(14701, 16 * 16), true));
        Assert.True(K.UsesHalfGemvNkStream(a, w, 1, 1, 16));
        Assert.True(K.UsesHalfGemvNkStream(a, w, 1, 8, 16));
        Assert.False(K.UsesHalfGemvNkStream(a, w, 1, 9, 16));                 // 9 rows and more: today's kernels
        Assert.False(K.UsesHalfGemvNkStream(a, w, 2, 2, 16));                 // a batch of matrices
        Assert.False(K.UsesHalfGemvNkStream(a, w, 1, 2, 12));                 // K not a multiple of 8
        Assert.False(K.UsesHalfGemvNkStream(a.SubView(4, 64), w, 1, 2, 16)); // A 8-byte, not 16-byte aligned
        Assert.False(K.UsesHalfGemvNkStream(a, w.SubView(4, 64), 1, 2, 8));  // W 8-byte, not 16-byte aligned
        var maxRows = K.HalfGemvMaxRows;
        K.HalfGemvMaxRows = 0;
        try
        {
            Assert.False(K.UsesHalfGemvNkStream(a, w, 1, 1, 16));             // the GEMV kernels turned off
        }
        finally
        {
            K.HalfGemvMaxRows = maxRows;
        }

        K.HalfGemvNkKernel = HalfGemvNk.Stream;                              // the default: 1–4 rows
        Assert.True(K.UsesHalfGemvNkStream(a, w, 1, 1, 16));
        Assert.True(K.UsesHalfGemvNkStream(a, w, 1, 4, 16));
        Assert.False(K.UsesHalfGemvNkStream(a, w, 1, 5, 16));
        K.HalfGemvNkKernel = HalfGemvNk.Split;                               // never
        Assert.False(K.UsesHalfGemvNkStream(a, w, 1, 1, 16));
    });

    /// <summary>
    /// Which kernel an aligned 16-bit [N, K] product runs under each setting, on a fresh simulator device per setting (so
    /// the compiled-kernel list is this product's alone): unset (this process has no <c>GEMS_GEMV16_NK</c>) and <c>stream</c>
    /// run it alone at 1–4 rows (no split-K GEMV, no reduce launch) and the earlier kernels at 5 rows; <c>off</c> and
    /// <c>split</c> never compile it; <c>stream8</c> runs it at 5 and 8 rows. A [K, N] product never takes it.
    /// </summary>
    [Theory]
    [InlineData(null, false, 1, true, true)]
    [InlineData(null, true, 4, true, true)]
    [InlineData("off", true, 1, false, false)]
    [InlineData("split", false, 1, false, false)]
    [InlineData("stream", true, 1, false, true)]
    [InlineData("stream", false, 3, false, true)]
    [InlineData("stream", true, 5, false, false)]
    [InlineData("stream8", false, 5, false, true)]
    [InlineData("stream8", true, 8, false, true)]
    public void EachSettingRunsItsKernel(string? setting, bool bf16, int m, bool fromEnvironment, bool stream)
    {
        const int Kd = 40, N = 13;
        Assert.Null(Environment.GetEnvironmentVariable(HalfGemvNkChoice.Variable));
        using var device = IlgpuDevice.Create(IlgpuDeviceKind.CpuSimulator);
        var kernels = device.Kernels;
        Assert.Equal(HalfGemvNk.Stream, kernels.HalfGemvNkKernel);  // the default
        if (!fromEnvironment)
        {
            kernels.HalfGemvNkKernel = HalfGemvNkChoice.Parse(setting);
        }

        int seed = 14800 + m + (setting?.Length ?? 0) + (bf16 ? 1 : 0);
        var (a, av) = Random16(seed, m * Kd, bf16, -1f, 1f);
        var (w, wv) = Random16(seed + 1, N * Kd, bf16, -1f, 1f);
        using var aBuffer = device.Accelerator.Allocate1D(a);
        using var wBuffer = device.Accelerator.Allocate1D(w);
        using var cBuffer = device.Accelerator.Allocate1D(Enumerable.Repeat(NaN16(bf16), m * N).ToArray());
        kernels.Mm(aBuffer.View.AsContiguous(), wBuffer.View.AsContiguous(), cBuffer.View.AsContiguous(), m, Kd, N, F(bf16), transposeB: true);
        device.Synchronize();
        AssertClose(ToFloat(cBuffer.GetAsArray1D(), bf16), Reference(av, wv, m, Kd, N, 1f, 0f, null, false), Rtol(bf16), Atol * Kd, $"{setting ?? "unset"} 16-bit [N, K] mm", seed);
        string expected = $"{nameof(HalfGemvKernels.GemvNk16Stream)}<{HalfGemvNkStreamLaunch.RowsCap(m)},{(bf16 ? "bf16" : "f16")}>";
        Assert.Equal(stream, device.HasCompiled(expected));
        Assert.Equal(stream, device.HasCompiled(nameof(HalfGemvKernels.GemvNk16Stream)));
        Assert.Equal(!stream, device.HasCompiled(nameof(HalfGemvKernels.GemvNk16Row)) || device.HasCompiled(nameof(HalfGemvKernels.GemvNk16)));
        if (stream)
        {
            Assert.False(device.HasCompiled(nameof(HalfGemvKernels.GemvReduce16)) || device.HasCompiled(nameof(HalfGemvKernels.GemvReduceRuns16)),
                "the streamed kernel needs no second launch");
        }

        // The same product with a [K, N] weight (K and N multiples of 8 there) never takes it.
        using var fresh = IlgpuDevice.Create(IlgpuDeviceKind.CpuSimulator);
        fresh.Kernels.HalfGemvNkKernel = HalfGemvNkChoice.Parse(setting);
        using var kn = fresh.Accelerator.Allocate1D(To16(Random(seed + 2, Kd * 16), bf16));
        using var ka = fresh.Accelerator.Allocate1D(a);
        using var kc = fresh.Accelerator.Allocate1D(new ushort[m * 16]);
        fresh.Kernels.Mm(ka.View.AsContiguous(), kn.View.AsContiguous(), kc.View.AsContiguous(), m, Kd, 16, F(bf16));
        fresh.Synchronize();
        Assert.False(fresh.HasCompiled(nameof(HalfGemvKernels.GemvNk16Stream)), "a [K, N] product took the [N, K] kernel");
    }

    /// <summary>
    /// Every variant in sm_90 PTX at its launch bound (256 threads): 16-byte global loads for A and W, no local memory
    /// beyond the bfloat16 store's conversion slot, in the batch loop the batch's C weight loads before the first warp
    /// barrier with no float arithmetic among them, its M activation loads after it and before the first product, and
    /// every product an FMA (or a contractible mul + add). Written to GEMS_PTX_DUMP_DIR when that is set (for ptxas by hand).
    /// </summary>
    [Theory]
    [InlineData(typeof(Const1), 1, typeof(BFloat16Storage))]
    [InlineData(typeof(Const1), 1, typeof(Float16Storage))]
    [InlineData(typeof(Const2), 2, typeof(BFloat16Storage))]
    [InlineData(typeof(Const4), 4, typeof(Float16Storage))]
    [InlineData(typeof(Const8), 8, typeof(BFloat16Storage))]
    [InlineData(typeof(Const8), 8, typeof(Float16Storage))]
    public void PtxIssuesTheBatchBeforeItsProducts(Type rowsCap, int cap, Type format)
    {
        int columns = HalfGemvKernels.GemvNk16StreamColumns(cap);
        var kernel = typeof(HalfGemvKernels).GetMethod(nameof(HalfGemvKernels.GemvNk16Stream))!.MakeGenericMethod(rowsCap, format);
        string ptx = Sm90Ptx.Of(kernel, new KernelSpecialization(HalfGemvNkStreamLaunch.MaxThreads, null), $"GemvNk16Stream_Const{cap}_{format.Name}");

        int batchLoads = columns + cap;
        int vectorLoads = Regex.Matches(ptx, @"ld\.global(\.nc)?\.v4\.(u32|b32)").Count;
        int local = Regex.Matches(PtxLocalSlots.WithoutConversionSlots(ptx), @"(ld|st)\.local").Count;
        output.WriteLine($"GemvNk16Stream<{cap},{format.Name}>: {vectorLoads} global v4 loads, {local} local accesses, {ptx.Length} chars");
        Assert.Contains($".maxntid {HalfGemvNkStreamLaunch.MaxThreads}, 1, 1", ptx, StringComparison.Ordinal);
        Assert.Equal(0, local);
        PtxLocalSlots.AssertNone(ptx);
        Assert.True(vectorLoads >= 2 * batchLoads, $"expected the batch's {batchLoads} 16-byte loads in the loop and the tail, found {vectorLoads}");

        int fence = ptx.IndexOf("bar.warp.sync", StringComparison.Ordinal);
        Assert.True(fence > 0, "the batch loop has no warp barrier");
        var beforeFence = Regex.Matches(ptx[..fence], @"ld\.global(\.nc)?\.v4\.(u32|b32)");
        Assert.Equal(columns, beforeFence.Count);
        Assert.Empty(Regex.Matches(ptx[beforeFence[0].Index..fence], @"\b(mul|fma|add)\.(rn\.)?f32"));
        var afterFence = ptx[fence..];
        int firstProduct = Regex.Match(afterFence, @"\b(fma\.rn|mul(\.rn)?)\.f32").Index;
        Assert.True(firstProduct > 0, "no product after the fence");
        Assert.Equal(cap, Regex.Matches(afterFence[..firstProduct], @"ld\.global(\.nc)?\.v4\.(u32|b32)").Count);
        int products = Regex.Matches(afterFence, @"\b(fma\.rn|mul(\.rn)?)\.f32").Count;
        Assert.True(products >= 2 * 8 * cap * columns, $"expected {8 * cap * columns} products in the loop and as many in the tail, found {products}");
    }

    /// <summary>Runs <paramref name="body"/> with the shared facade set to <paramref name="setting"/>, then restores it.</summary>
    private void WithSetting(HalfGemvNk setting, Action body)
    {
        var before = K.HalfGemvNkKernel;
        K.HalfGemvNkKernel = setting;
        try
        {
            body();
        }
        finally
        {
            K.HalfGemvNkKernel = before;
        }
    }
}
