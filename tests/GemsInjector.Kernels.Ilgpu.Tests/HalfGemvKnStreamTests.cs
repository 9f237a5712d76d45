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
/// The streamed 16-bit [K, N] GEMV (<see cref="HalfGemvKernels.GemvKn16Stream{TRowsCap, TFormat}"/>, the default for 1–2 rows, <c>GEMS_GEMV16_KN=stream8</c> for 1–8):
/// both formats, every row cap and counts inside them, K of one vector, of partial batches and of many batches, ragged
/// column slabs and N below one slab, row and matrix biases with alpha and beta, NaN in the weight, the CUDA geometry on
/// a warp-32 simulator, the setting's parsing and routing, and the sm_90 PTX.
/// </summary>
[Collection(SimulatorCollection.Name)]
public sealed class HalfGemvKnStreamTests : Half16TestBase, IClassFixture<Warp32SimulatorFixture>
{
    private readonly Warp32SimulatorFixture warp32;
    private readonly ITestOutputHelper output;

    public HalfGemvKnStreamTests(SimulatorFixture fixture, Warp32SimulatorFixture warp32, ITestOutputHelper output)
        : base(fixture)
    {
        this.warp32 = warp32;
        this.output = output;
    }

    /// <summary>float64 C = alpha · A[M, K] · W[K, N] + beta · bias (bias ignored when beta is 0, as the kernels do).</summary>
    private static double[] Reference(float[] a, float[] w, int m, int k, int n, float alpha, float beta, float[]? bias, bool biasIsMatrix) =>
        Enumerable.Range(0, m * n).Select(e =>
        {
            int r = e / n, j = e % n;
            double dot = 0;
            for (int t = 0; t < k; t++)
            {
                dot += (double)a[(r * k) + t] * w[(t * n) + j];
            }

            double v = alpha * dot;
            return bias is null || beta == 0f ? v : v + (beta * (double)bias[biasIsMatrix ? e : j]);
        }).ToArray();

    // m: every row cap (1, 2, 4, 8) and counts inside them (3, 5); k: one vector (8), 24 (three vectors: a partial batch),
    // 8 · odd, 1024 (whole batches only); n: below one 32-column slab (8, 16, 24), a ragged last slab (40, 104) and many
    // slabs with a ragged last one (4104).
    [Theory]
    [InlineData(true, 1, 8, 40)]
    [InlineData(false, 1, 1024, 40)]
    [InlineData(false, 1, 72, 16)]
    [InlineData(true, 2, 24, 104)]
    [InlineData(false, 2, 104, 8)]
    [InlineData(true, 3, 1024, 104)]
    [InlineData(false, 3, 24, 4104)]
    [InlineData(true, 4, 40, 8)]
    [InlineData(false, 4, 8, 104)]
    [InlineData(true, 5, 56, 40)]
    [InlineData(false, 5, 1024, 24)]
    [InlineData(true, 8, 24, 104)]
    [InlineData(false, 8, 1024, 40)]
    [InlineData(true, 8, 88, 4104)]
    [InlineData(false, 8, 8, 40)]
    public void MatchesFloat64(bool bf16, int m, int k, int n) => WithStream(() =>
    {
        int seed = 13100 + (m * 1000) + k + n + (bf16 ? 1 : 0);
        var (a, av) = Random16(seed, m * k, bf16, -1f, 1f);
        var (w, wv) = Random16(seed + 1, k * n, bf16, -1f, 1f);
        var aView = Upload(a);
        var wView = Upload(w);
        Assert.True(K.UsesHalfGemvKnStream(aView, wView, 1, m, k, n, F(bf16)), "an aligned 1–8-row 16-bit [K, N] product must take the streamed GEMV under `stream`");
        var (config, cap) = HalfGemvKnStreamLaunch.Plan(HalfGemvKnStreamLaunch.Shape(m, k, n, 1f, 0f, false, false), Device.WarpSize, Device.MaxGroupSize, Device.MultiprocessorCount);
        output.WriteLine($"seed {seed}: {m}x{k}x{n} {F(bf16)} rows cap {cap}, {config.GridDim.X} groups of {config.GroupDim.X} threads");

        var c = Poisoned16(m * n, bf16);
        K.Mm(aView, wView, c, m, k, n, F(bf16));
        Check16(c, Reference(av, wv, m, k, n, 1f, 0f, null, false), bf16, "stream [K, N] mm", seed, Atol * k);

        var (row, rowv) = Random16(seed + 2, n, bf16);
        c = Poisoned16(m * n, bf16);
        K.Addmm(Upload(row), aView, wView, c, m, k, n, F(bf16), beta: -1.25f, alpha: 0.75f);
        Check16(c, Reference(av, wv, m, k, n, 0.75f, -1.25f, rowv, false), bf16, "stream [K, N] addmm row bias", seed, Atol * k);

        if (m > 1)
        {
            var (full, fullv) = Random16(seed + 3, m * n, bf16);
            c = Poisoned16(m * n, bf16);
            K.Addmm(Upload(full), aView, wView, c, m, k, n, F(bf16), beta: 0.5f, alpha: -2f);
            Check16(c, Reference(av, wv, m, k, n, -2f, 0.5f, fullv, true), bf16, "stream [K, N] addmm matrix bias", seed, Atol * k);
        }

        Assert.True(Device.HasCompiled(nameof(HalfGemvKernels.GemvKn16Stream)), "the streamed kernel did not run");
    });

    // A NaN in the weight reaches only its column (one in a whole batch and the ragged last slab, one in the last rows of
    // K); the row bias is NaN with beta 0, so it must not be read into the result.
    [Theory]
    [InlineData(true, 1, 88, 40)]
    [InlineData(false, 3, 152, 104)]
    [InlineData(true, 8, 104, 72)]
    [InlineData(false, 6, 40, 40)]
    public void NaNInTheWeightStaysInItsColumn(bool bf16, int m, int k, int n) => WithStream(() =>
    {
        int seed = 13500 + m + k + n + (bf16 ? 1 : 0);
        var (a, av) = Random16(seed, m * k, bf16, -1f, 1f);
        var (w, wv) = Random16(seed + 1, k * n, bf16, -1f, 1f);
        int nanColumn = n - 3, lateColumn = 5;
        w[(3 * n) + nanColumn] = NaN16(bf16);
        w[((k - 2) * n) + lateColumn] = NaN16(bf16);
        wv = ToFloat(w, bf16);
        var nanBias = Enumerable.Repeat(NaN16(bf16), n).ToArray();
        var aView = Upload(a);
        var wView = Upload(w);
        Assert.True(K.UsesHalfGemvKnStream(aView, wView, 1, m, k, n, F(bf16)));
        var c = Poisoned16(m * n, bf16);
        K.Addmm(Upload(nanBias), aView, wView, c, m, k, n, F(bf16), beta: 0f);
        var expected = Reference(av, wv, m, k, n, 1f, 0f, null, false);
        var got = ToFloat(Download(c), bf16);
        for (int e = 0; e < m * n; e++)
        {
            int col = e % n;
            bool nan = col == nanColumn || col == lateColumn;
            Assert.True(nan == double.IsNaN(expected[e]), $"reference element {e}: {expected[e]}");
            Assert.True(nan == float.IsNaN(got[e]), $"element {e} (row {e / n}, column {col}): {got[e]}, NaN expected: {nan}");
            if (!nan)
            {
                Assert.True(Math.Abs(got[e] - expected[e]) <= (Atol * k) + (Rtol(bf16) * Math.Abs(expected[e])), $"element {e}: {got[e]} vs {expected[e]}");
            }
        }
    });

    /// <summary>
    /// CUDA geometry (32-lane warps: 8 row slots per warp, all three shuffle steps of the sum) on the warp-32 simulator at
    /// 2 to 8 warps per group, 3 and 5 among them: every row cap in both formats, ragged slabs, K with whole and partial
    /// batches, a matrix bias with alpha and beta.
    /// </summary>
    [Theory]
    [InlineData(true, 1, 1032, 40, 2)]
    [InlineData(false, 1, 536, 24, 3)]
    [InlineData(false, 2, 520, 104, 4)]
    [InlineData(true, 2, 136, 40, 8)]
    [InlineData(true, 3, 264, 40, 2)]
    [InlineData(false, 4, 1032, 8, 4)]
    [InlineData(true, 5, 392, 72, 5)]
    [InlineData(false, 7, 200, 40, 2)]
    [InlineData(true, 8, 264, 40, 3)]
    [InlineData(false, 8, 1032, 104, 8)]
    // Two warps with few whole batches: one warp with a whole batch and the other none (K = 32), two and one (K = 96),
    // and a partial batch after the whole ones (K = 112).
    [InlineData(true, 4, 32, 40, 2)]
    [InlineData(false, 4, 112, 104, 2)]
    [InlineData(true, 8, 96, 40, 2)]
    [InlineData(false, 8, 112, 24, 2)]
    [InlineData(true, 6, 32, 104, 2)]
    public void CudaGeometryMatchesFloat64(bool bf16, int m, int k, int n, int warps)
    {
        int seed = 13600 + (m * 1000) + k + n + warps + (bf16 ? 1 : 0);
        var acc = warp32.Accelerator;
        var (a, av) = Random16(seed, m * k, bf16, -1f, 1f);
        var (w, wv) = Random16(seed + 1, k * n, bf16, -1f, 1f);
        var (bias, biasv) = Random16(seed + 2, m * n, bf16);
        var g = HalfGemvKnStreamLaunch.Shape(m, k, n, 0.5f, 2f, true, true);
        var (config, cap) = HalfGemvKnStreamLaunch.Plan(g, acc.WarpSize, 512, 132, warps);
        Assert.Equal(warps * 32, config.GroupDim.X);
        output.WriteLine($"seed {seed}: {m}x{k}x{n} {F(bf16)} rows cap {cap}, {config.GridDim.X} groups of {config.GroupDim.X} threads");

        using var aBuffer = acc.Allocate1D(a);
        using var wBuffer = acc.Allocate1D(w);
        using var biasBuffer = acc.Allocate1D(bias);
        using var cBuffer = acc.Allocate1D(Enumerable.Repeat(NaN16(bf16), m * n).ToArray());
        var aView = aBuffer.View.AsContiguous();
        LoadOn(acc, cap, bf16)(config, aView.Cast<Half8>(), aView.Cast<ulong>(), wBuffer.View.AsContiguous().Cast<Half8>(), biasBuffer.View.AsContiguous(), cBuffer.View.AsContiguous(), g);
        acc.Synchronize();
        var got = ToFloat(cBuffer.GetAsArray1D(), bf16);
        AssertClose(got, Reference(av, wv, m, k, n, 0.5f, 2f, biasv, true), Rtol(bf16), Atol * k, $"warp-32 streamed 16-bit [K, N] GEMV ({F(bf16)})", seed);
    }

    private static Action<KernelConfig, ArrayView<Half8>, ArrayView<ulong>, ArrayView<Half8>, ArrayView<ushort>, ArrayView<ushort>, HalfGemvShape> LoadOn(Accelerator acc, int cap, bool bf16) => (cap, bf16) switch
    {
        (1, false) => acc.LoadStreamKernel<ArrayView<Half8>, ArrayView<ulong>, ArrayView<Half8>, ArrayView<ushort>, ArrayView<ushort>, HalfGemvShape>(HalfGemvKernels.GemvKn16Stream<Const1, Float16Storage>),
        (2, false) => acc.LoadStreamKernel<ArrayView<Half8>, ArrayView<ulong>, ArrayView<Half8>, ArrayView<ushort>, ArrayView<ushort>, HalfGemvShape>(HalfGemvKernels.GemvKn16Stream<Const2, Float16Storage>),
        (4, false) => acc.LoadStreamKernel<ArrayView<Half8>, ArrayView<ulong>, ArrayView<Half8>, ArrayView<ushort>, ArrayView<ushort>, HalfGemvShape>(HalfGemvKernels.GemvKn16Stream<Const4, Float16Storage>),
        (8, false) => acc.LoadStreamKernel<ArrayView<Half8>, ArrayView<ulong>, ArrayView<Half8>, ArrayView<ushort>, ArrayView<ushort>, HalfGemvShape>(HalfGemvKernels.GemvKn16Stream<Const8, Float16Storage>),
        (1, true) => acc.LoadStreamKernel<ArrayView<Half8>, ArrayView<ulong>, ArrayView<Half8>, ArrayView<ushort>, ArrayView<ushort>, HalfGemvShape>(HalfGemvKernels.GemvKn16Stream<Const1, BFloat16Storage>),
        (2, true) => acc.LoadStreamKernel<ArrayView<Half8>, ArrayView<ulong>, ArrayView<Half8>, ArrayView<ushort>, ArrayView<ushort>, HalfGemvShape>(HalfGemvKernels.GemvKn16Stream<Const2, BFloat16Storage>),
        (4, true) => acc.LoadStreamKernel<ArrayView<Half8>, ArrayView<ulong>, ArrayView<Half8>, ArrayView<ushort>, ArrayView<ushort>, HalfGemvShape>(HalfGemvKernels.GemvKn16Stream<Const4, BFloat16Storage>),
        _ => acc.LoadStreamKernel<ArrayView<Half8>, ArrayView<ulong>, ArrayView<Half8>, ArrayView<ushort>, ArrayView<ushort>, HalfGemvShape>(HalfGemvKernels.GemvKn16Stream<Const8, BFloat16Storage>),
    };

    [Fact]
    public void PlanGivesEverySlabAGroupAndKeepsThemResident()
    {
        // H200 (132 SMs): 4096 columns are 128 slabs of 32, one 16-warp group per SM; 11008 are 344, three to an SM at most,
        // so 5 warps; 65536 columns 2048 slabs, 16 to an SM: the 2-warp floor; below one slab one group.
        Assert.Equal((128, 512, 1), PlanOf(1, 4096, 4096));
        Assert.Equal((128, 512, 8), PlanOf(8, 4096, 4096));
        Assert.Equal((344, 160, 8), PlanOf(7, 4096, 11008));
        Assert.Equal((256, 256, 2), PlanOf(2, 4096, 8192));
        Assert.Equal((2048, 64, 4), PlanOf(3, 64, 65536));
        Assert.Equal((1, 512, 8), PlanOf(5, 64, 24));
        Assert.Equal(8, HalfGemvKernels.GemvKn16StreamRowsPerThread(1));
        Assert.Equal(4, HalfGemvKernels.GemvKn16StreamRowsPerThread(8));

        // The device's group size, and whole 4-thread row slots on narrow warps.
        Assert.Equal(256, HalfGemvKnStreamLaunch.Plan(HalfGemvKnStreamLaunch.Shape(2, 8, 64, 1f, 0f, false, false), 32, 256, 132).Config.GroupDim.X);
        Assert.Equal(16, HalfGemvKnStreamLaunch.Plan(HalfGemvKnStreamLaunch.Shape(2, 8, 64, 1f, 0f, false, false), 4, 16, 0).Config.GroupDim.X);
        Assert.Equal(4, HalfGemvKnStreamLaunch.Plan(HalfGemvKnStreamLaunch.Shape(2, 8, 64, 1f, 0f, false, false), 2, 16, 0, warps: 3).Config.GroupDim.X);
        Assert.True(HalfGemvKnStreamLaunch.Fits(4, 16));
        Assert.False(HalfGemvKnStreamLaunch.Fits(4, 2));

        static (int Groups, int Threads, int Cap) PlanOf(int m, int k, int n)
        {
            var (config, cap) = HalfGemvKnStreamLaunch.Plan(HalfGemvKnStreamLaunch.Shape(m, k, n, 1f, 0f, false, false), 32, 1024, 132);
            return (config.GridDim.X, config.GroupDim.X, cap);
        }
    }

    [Theory]
    [InlineData(null, nameof(HalfGemvKn.Stream))]
    [InlineData("", nameof(HalfGemvKn.Stream))]
    [InlineData("stream", nameof(HalfGemvKn.Stream))]
    [InlineData(" STREAM ", nameof(HalfGemvKn.Stream))]
    [InlineData("streams", nameof(HalfGemvKn.Stream))]
    [InlineData("split", nameof(HalfGemvKn.Split))]
    [InlineData(" Split ", nameof(HalfGemvKn.Split))]
    [InlineData("stream8", nameof(HalfGemvKn.StreamEight))]
    [InlineData("STREAM8", nameof(HalfGemvKn.StreamEight))]
    public void SettingParses(string? setting, string expected) =>
        Assert.Equal(expected, HalfGemvKnChoice.Parse(setting).ToString());

    [Fact]
    public void StreamRoutesOnlyAlignedKnProductsOfOneToEightRows() => WithStream(() =>
    {
        const bool Bf16 = true;
        var a = Upload(To16(Random(13700, 17 * 16), Bf16));
        var w = Upload(To16(Random(13701, 16 * 16), Bf16));
        var f = F(Bf16);
        Assert.True(K.UsesHalfGemvKnStream(a, w, 1, 1, 16, 16, f));
        Assert.True(K.UsesHalfGemvKnStream(a, w, 1, 8, 16, 16, f));
        Assert.True(K.UsesHalfGemvKnStream(a, w, 1, 2, 16, 16, HalfFormat.Float16));
        Assert.False(K.UsesHalfGemvKnStream(a, w, 1, 9, 16, 16, f));                 // 9 rows and more: today's kernels
        Assert.False(K.UsesHalfGemvKnStream(a, w, 2, 2, 16, 16, f));                 // a batch of matrices
        Assert.False(K.UsesHalfGemvKnStream(a, w, 1, 2, 12, 16, f));                 // K not a multiple of 8
        Assert.False(K.UsesHalfGemvKnStream(a, w, 1, 2, 16, 12, f));                 // N not a multiple of 8
        Assert.False(K.UsesHalfGemvKnStream(a.SubView(4, 64), w, 1, 2, 16, 16, f)); // A 8-byte, not 16-byte aligned
        Assert.False(K.UsesHalfGemvKnStream(a, w.SubView(4, 64), 1, 2, 8, 8, f));   // W 8-byte, not 16-byte aligned
        var maxRows = K.HalfGemvMaxRows;
        K.HalfGemvMaxRows = 0;
        try
        {
            Assert.False(K.UsesHalfGemvKnStream(a, w, 1, 1, 16, 16, f));             // the GEMV kernels turned off
        }
        finally
        {
            K.HalfGemvMaxRows = maxRows;
        }

        K.HalfGemvKnKernel = HalfGemvKn.Stream;                                   // the default: 1–2 rows off a cluster device
        Assert.False(K.SplitKSumsInCluster);
        Assert.True(K.UsesHalfGemvKnStream(a, w, 1, 2, 16, 16, f));
        Assert.False(K.UsesHalfGemvKnStream(a, w, 1, 3, 16, 16, f));
        K.HalfGemvKnKernel = HalfGemvKn.Split;
        Assert.False(K.UsesHalfGemvKnStream(a, w, 1, 2, 16, 16, f));
    });

    /// <summary>
    /// What decides whether a 2-row product leaves the stream on a cluster device: the wide [K, N] body's plan on the H200's
    /// 132 SMs splits 2 × 4096 · 4096 × 4096 into 8 (a cluster size: the cluster sum, 3–4% faster, Run 101) but
    /// 2 × 4096 · 4096 × 11008 into 3 (no cluster: it would launch the reduce, so that product stays streamed).
    /// </summary>
    [Theory]
    [InlineData(4096, 4096, 8)]
    [InlineData(4096, 11008, 0)]
    public void TwoRowClusterSplitFollowsThePlan(int k, int n, int clusterSize)
    {
        var settings = SkinnyTensorCoreSettings.Parse(null, null, null); // the defaults
        var (config, shape, _) = SkinnyTensorCoreLaunch.Plan(2, k, n, 132, settings.GroupsPerSm,
            capSplitsByPartials: settings.CapSplitsByPartials, blockN: SkinnyTensorCoreKernels.WideBlockN);
        Assert.Equal(1, config.GridDim.Z);
        Assert.Equal(clusterSize, ClusterReduction.SizeFor(shape.SplitK));
    }

    /// <summary>
    /// Which kernel an aligned 16-bit [K, N] product runs under each setting, on a fresh simulator device per setting (so
    /// the compiled-kernel list is this product's alone): unset (this process has no <c>GEMS_GEMV16_KN</c>) and <c>stream</c>
    /// run the streamed kernel alone at 1–2 rows, with no reduce launch, and the split-K kernels at 3 and more;
    /// <c>stream8</c> runs it at 8 rows; <c>split</c> never compiles it. An [N, K] product never takes it.
    /// </summary>
    [Theory]
    [InlineData(null, false, 1, true, true)]
    [InlineData(null, true, 2, true, true)]
    [InlineData("split", true, 1, false, false)]
    [InlineData("stream", true, 1, false, true)]
    [InlineData("stream", false, 3, false, false)]
    [InlineData("stream8", true, 8, false, true)]
    public void EachSettingRunsItsKernel(string? setting, bool bf16, int m, bool fromEnvironment, bool stream)
    {
        const int Kd = 40, N = 40;
        Assert.Null(Environment.GetEnvironmentVariable(HalfGemvKnChoice.Variable));
        using var device = IlgpuDevice.Create(IlgpuDeviceKind.CpuSimulator);
        var kernels = device.Kernels;
        Assert.Equal(HalfGemvKn.Stream, kernels.HalfGemvKnKernel);   // the default
        if (!fromEnvironment)
        {
            kernels.HalfGemvKnKernel = HalfGemvKnChoice.Parse(setting);
        }

        int seed = 13800 + m + (setting?.Length ?? 0) + (bf16 ? 1 : 0);
        var (a, av) = Random16(seed, m * Kd, bf16, -1f, 1f);
        var (w, wv) = Random16(seed + 1, Kd * N, bf16, -1f, 1f);
        using var aBuffer = device.Accelerator.Allocate1D(a);
        using var wBuffer = device.Accelerator.Allocate1D(w);
        using var cBuffer = device.Accelerator.Allocate1D(Enumerable.Repeat(NaN16(bf16), m * N).ToArray());
        kernels.Mm(aBuffer.View.AsContiguous(), wBuffer.View.AsContiguous(), cBuffer.View.AsContiguous(), m, Kd, N, F(bf16));
        device.Synchronize();
        AssertClose(ToFloat(cBuffer.GetAsArray1D(), bf16), Reference(av, wv, m, Kd, N, 1f, 0f, null, false), Rtol(bf16), Atol * Kd, $"{setting ?? "unset"} 16-bit [K, N] mm", seed);
        string expected = $"{nameof(HalfGemvKernels.GemvKn16Stream)}<{HalfGemvKnStreamLaunch.RowsCap(m)},{(bf16 ? "bf16" : "f16")}>";
        Assert.Equal(stream, device.HasCompiled(expected));
        Assert.Equal(stream, device.HasCompiled(nameof(HalfGemvKernels.GemvKn16Stream)));
        if (stream)
        {
            Assert.False(device.HasCompiled(nameof(HalfGemvKernels.GemvKn16)), "the split-K GEMV ran under stream");
            Assert.False(device.HasCompiled(nameof(HalfGemvKernels.GemvReduce16)) || device.HasCompiled(nameof(HalfGemvKernels.GemvReduceRuns16)),
                "the streamed kernel needs no second launch");

            // The same product with an [N, K] weight keeps its kernels.
            using var tBuffer = device.Accelerator.Allocate1D(w);
            kernels.Mm(aBuffer.View.AsContiguous(), tBuffer.View.AsContiguous(), cBuffer.View.AsContiguous(), m, Kd, N, F(bf16), transposeB: true);
            device.Synchronize();
            Assert.True(device.HasCompiled(expected));
        }
    }

    /// <summary>
    /// Every variant in sm_90 PTX at its launch bound (512 threads): 16-byte global loads (the weight's R vectors per batch
    /// and, up to 4 rows, A's), no local memory beyond the conversion slots the other 16-bit GEMVs have, the batch's weight
    /// loads ahead of the first warp barrier with no float arithmetic among them, and every product an FMA (or a contractible
    /// mul + add).
    /// </summary>
    [Theory]
    [InlineData(typeof(Const1), 1, typeof(Float16Storage))]
    [InlineData(typeof(Const1), 1, typeof(BFloat16Storage))]
    [InlineData(typeof(Const2), 2, typeof(BFloat16Storage))]
    [InlineData(typeof(Const4), 4, typeof(Float16Storage))]
    [InlineData(typeof(Const4), 4, typeof(BFloat16Storage))]
    [InlineData(typeof(Const8), 8, typeof(BFloat16Storage))]
    [InlineData(typeof(Const8), 8, typeof(Float16Storage))]
    public void PtxIssuesSixteenByteLoadsWithoutLocalMemory(Type rowsCap, int cap, Type format)
    {
        int rows = HalfGemvKernels.GemvKn16StreamRowsPerThread(cap);
        var kernel = typeof(HalfGemvKernels).GetMethod(nameof(HalfGemvKernels.GemvKn16Stream))!.MakeGenericMethod(rowsCap, format);
        var bounds = new KernelSpecialization(HalfGemvKernels.GemvKn16StreamMaxThreads, null);
        string ptx = Sm90Ptx.Of(kernel, bounds, $"GemvKn16Stream_Const{cap}_{format.Name}");

        int vectorLoads = Regex.Matches(ptx, @"ld\.global(\.nc)?\.v4\.(u32|b32)").Count;
        int local = Regex.Matches(PtxLocalSlots.WithoutConversionSlots(ptx), @"(ld|st)\.local").Count;
        output.WriteLine($"GemvKn16Stream<{cap},{format.Name}>: {vectorLoads} global v4 loads, {local} local accesses, {ptx.Length} chars");
        Assert.Contains($".maxntid {HalfGemvKernels.GemvKn16StreamMaxThreads}, 1, 1", ptx, StringComparison.Ordinal);
        Assert.Equal(0, local);
        PtxLocalSlots.AssertNone(ptx);
        int activationVectors = rows == 8 ? cap : 0;
        Assert.True(vectorLoads >= 2 * (rows + activationVectors), $"expected the batch's {rows + activationVectors} 16-byte loads in the loop and the tail, found {vectorLoads}");

        int fence = ptx.IndexOf("bar.warp.sync", StringComparison.Ordinal);
        Assert.True(fence > 0, "the batch loop has no warp barrier");
        var beforeFence = Regex.Matches(ptx[..fence], @"ld\.global(\.nc)?\.v4\.(u32|b32)");
        Assert.Equal(rows, beforeFence.Count);
        Assert.Empty(Regex.Matches(ptx[beforeFence[0].Index..fence], @"\b(mul|fma|add)\.(rn\.)?f32"));
        int products = Regex.Matches(ptx[fence..], @"\b(fma\.rn|mul(\.rn)?)\.f32").Count;
        Assert.True(products >= 2 * 8 * cap * rows, $"expected {8 * cap * rows} products in the loop and as many in the tail, found {products}");
    }

    /// <summary>
    /// Runs <paramref name="body"/> with the shared facade set to <see cref="HalfGemvKn.StreamEight"/> (every row cap of the
    /// kernel reachable), then restores it.
    /// </summary>
    private void WithStream(Action body)
    {
        var before = K.HalfGemvKnKernel;
        K.HalfGemvKnKernel = HalfGemvKn.StreamEight;
        try
        {
            body();
        }
        finally
        {
            K.HalfGemvKnKernel = before;
        }
    }
}
