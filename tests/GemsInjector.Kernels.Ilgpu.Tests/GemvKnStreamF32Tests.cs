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
/// The streamed float32 [K, N] GEMV (<see cref="GemmFastKernels.GemvKnStreamF32{TRowsCap}"/>, the default for aligned
/// 1–16-row [K, N] products): every row cap and counts inside them, K of one quad, of a partial batch and of many
/// batches, ragged column slabs and N below one slab, row and matrix biases, NaN and Inf, the CUDA geometry on a warp-32
/// simulator, which kernel each <c>GEMS_GEMV_F32_VARIANT</c> setting runs, the plan, and the PTX.
/// </summary>
[Collection(SimulatorCollection.Name)]
public sealed class GemvKnStreamF32Tests : GemvF32TestBase, IClassFixture<Warp32SimulatorFixture>
{
    private readonly Warp32SimulatorFixture warp32;
    private readonly ITestOutputHelper output;

    public GemvKnStreamF32Tests(SimulatorFixture fixture, Warp32SimulatorFixture warp32, ITestOutputHelper output)
        : base(fixture)
    {
        this.warp32 = warp32;
        this.output = output;
    }

    // m: every row cap (1, 2, 4, 8) and counts inside them (3, 5, 6, 7); k: one quad, 12 (a partial batch for every
    // slot), 4 · odd (never whole batches: a batch is 16 rows of K per warp pair here, 4 · 4 · R on a GPU) with one or
    // several whole batches before the partial one, 1024 (whole batches only); n: below one 32-column slab, a ragged last
    // slab (36, 100) and many slabs with a ragged last one (4100).
    [Theory]
    [InlineData(1, 4, 8)]
    [InlineData(1, 1024, 36)]
    [InlineData(1, 12, 4100)]
    [InlineData(2, 12, 100)]
    [InlineData(2, 1028, 20)]
    [InlineData(3, 76, 36)]
    [InlineData(4, 4, 4)]
    [InlineData(4, 300, 100)]
    [InlineData(5, 52, 28)]
    [InlineData(8, 1024, 36)]
    [InlineData(8, 44, 4100)]
    [InlineData(6, 204, 40)]
    [InlineData(7, 12, 68)]
    [InlineData(8, 516, 36)]
    [InlineData(7, 1024, 100)]
    public void MatchesFloat64(int m, int k, int n) => WithVariant(GemvF32Variant.Stream, () =>
    {
        var savedRows = K.SmallRowsKernel;
        K.SmallRowsKernel = SmallRowsProduct.Sgemm;
        try
        {
            StreamCase(m, k, n, 12100);
        }
        finally
        {
            K.SmallRowsKernel = savedRows;
        }
    });

    private void StreamCase(int m, int k, int n, int seedBase)
    {
        int seed = seedBase + (m * 1000) + k + n;
        var a = Random(seed, m * k);
        var w = Random(seed + 1, k * n);
        var aView = Upload(a);
        var wView = Upload(w);
        Assert.True(K.UsesGemvKnStreamF32(aView, wView, m, k, n), "an aligned 1–8-row [K, N] product must take the streamed GEMV under `stream`");
        var (config, cap) = GemvKnStreamLaunch.Plan(new GemvShape { M = m, N = n, K = k }, Device.WarpSize, Device.MaxGroupSize, Device.MultiprocessorCount);
        output.WriteLine($"seed {seed}: {m}x{k}x{n} rows cap {cap}, {config.GridDim.X} groups of {config.GroupDim.X} threads");

        var (c, whole) = PoisonedWithSentinel(m * n);
        K.Mm(aView, wView, c, m, k, n);
        var got = Download(whole);
        AssertClose(got[..(m * n)], Reference(a, w, m, k, n, 1f, 0f, null, false, transposeB: false), RtolF32, Atol * k, "stream [K, N] mm", seed);
        AssertSentinel(got, m * n);

        var row = Random(seed + 2, n);
        (c, whole) = PoisonedWithSentinel(m * n);
        K.Addmm(Upload(row), aView, wView, c, m, k, n, beta: -1.25f, alpha: 0.75f);
        got = Download(whole);
        AssertClose(got[..(m * n)], Reference(a, w, m, k, n, 0.75f, -1.25f, row, false, transposeB: false), RtolF32, Atol * k, "stream [K, N] addmm row bias", seed);
        AssertSentinel(got, m * n);

        var full = Random(seed + 3, m * n);
        (c, whole) = PoisonedWithSentinel(m * n);
        K.Addmm(Upload(full), aView, wView, c, m, k, n, beta: 0.5f, alpha: -2f);
        got = Download(whole);
        AssertClose(got[..(m * n)], Reference(a, w, m, k, n, -2f, 0.5f, full, true, transposeB: false), RtolF32, Atol * k, "stream [K, N] addmm matrix bias", seed);
        AssertSentinel(got, m * n);
    }

    // A NaN in the weight reaches only its column, a NaN in A only its row, an Inf in the weight its column as the
    // float64 product has it (so a product of a stale value and a zero pad, or a lost NaN, fails); the row bias is NaN
    // with beta 0, so it must not be read into the result. Rows of K in a whole batch and in the partial one.
    [Theory]
    [InlineData(1, 44, 40)]
    [InlineData(3, 76, 36)]
    [InlineData(8, 108, 68)]
    [InlineData(6, 148, 36)]
    public void NaNAndInfStayInTheirRowAndColumn(int m, int k, int n) => WithVariant(GemvF32Variant.Stream, () =>
    {
        int seed = 12500 + m + k + n;
        var a = Random(seed, m * k);
        var w = Random(seed + 1, k * n);
        int nanColumn = n - 3, infColumn = 5, nanRow = m - 1;
        w[(3 * n) + nanColumn] = float.NaN;              // a whole batch, the ragged last slab
        w[((k - 2) * n) + infColumn] = float.PositiveInfinity; // the partial batch
        if (m > 1)
        {
            a[(nanRow * k) + k - 1] = float.NaN;          // the partial batch
        }

        var nanBias = Enumerable.Repeat(float.NaN, n).ToArray();
        var (c, whole) = PoisonedWithSentinel(m * n);
        K.Addmm(Upload(nanBias), Upload(a), Upload(w), c, m, k, n, beta: 0f);
        var got = Download(whole);
        var expected = Reference(a, w, m, k, n, 1f, 0f, null, false, transposeB: false);
        for (int e = 0; e < m * n; e++)
        {
            int row = e / n, col = e % n;
            bool nan = col == nanColumn || (m > 1 && row == nanRow);
            Assert.True(nan == double.IsNaN(expected[e]), $"reference element {e}: {expected[e]}");
            if (nan)
            {
                Assert.True(float.IsNaN(got[e]), $"element {e} (row {row}, column {col}): {got[e]}, expected NaN");
            }
            else if (double.IsInfinity(expected[e]))
            {
                Assert.Equal(infColumn, col);
                Assert.Equal((float)expected[e], got[e]);
            }
            else
            {
                Assert.True(Math.Abs(got[e] - expected[e]) <= (Atol * k) + (RtolF32 * Math.Abs(expected[e])), $"element {e}: {got[e]} vs {expected[e]}");
            }
        }

        AssertSentinel(got, m * n);
    });

    /// <summary>
    /// CUDA geometry (32-lane warps: 4 row slots per warp, both shuffle steps of the sum) on the warp-32 simulator at 2
    /// to 8 warps per group, 3 and 5 among them (the plan's groups for N = 11008 on an H200 are 5 warps): every row cap, ragged
    /// slabs, K with whole and partial batches, matrix bias with alpha and beta.
    /// </summary>
    [Theory]
    [InlineData(1, 1036, 44, 2)]
    [InlineData(2, 300, 36, 8)]
    [InlineData(4, 532, 12, 4)]
    [InlineData(7, 268, 40, 2)]
    [InlineData(8, 140, 36, 8)]
    [InlineData(6, 396, 20, 4)]
    [InlineData(8, 204, 68, 8)]
    [InlineData(3, 172, 40, 3)]
    [InlineData(8, 300, 36, 5)]
    public void CudaGeometryMatchesFloat64(int m, int k, int n, int warps)
    {
        int seed = 12600 + (m * 1000) + k + n + warps;
        var acc = warp32.Accelerator;
        var a = Random(seed, m * k);
        var w = Random(seed + 1, k * n);
        var bias = Random(seed + 2, m * n);
        var g = new GemvShape { M = m, N = n, K = k, Alpha = 0.5f, Beta = 2f, HasBias = 1, BiasStrideM = n };
        var (config, cap) = GemvKnStreamLaunch.Plan(g, acc.WarpSize, 256, 132, warps);
        Assert.Equal(warps * 32, config.GroupDim.X);

        var got = RunOn(acc, LoadOn(acc, cap), config, g, a, w, bias);
        AssertClose(got[..(m * n)], Reference(a, w, m, k, n, 0.5f, 2f, bias, true, transposeB: false), RtolF32, Atol * k, "warp-32 streamed [K, N] GEMV", seed);
        AssertSentinel(got, m * n);
    }

    private static Action<KernelConfig, ArrayView<Float4>, ArrayView<Float4>, ArrayView<float>, ArrayView<float>, GemvShape> LoadOn(Accelerator acc, int cap) => cap switch
    {
        1 => acc.LoadStreamKernel<ArrayView<Float4>, ArrayView<Float4>, ArrayView<float>, ArrayView<float>, GemvShape>(GemmFastKernels.GemvKnStreamF32<Const1>),
        2 => acc.LoadStreamKernel<ArrayView<Float4>, ArrayView<Float4>, ArrayView<float>, ArrayView<float>, GemvShape>(GemmFastKernels.GemvKnStreamF32<Const2>),
        4 => acc.LoadStreamKernel<ArrayView<Float4>, ArrayView<Float4>, ArrayView<float>, ArrayView<float>, GemvShape>(GemmFastKernels.GemvKnStreamF32<Const4>),
        _ => acc.LoadStreamKernel<ArrayView<Float4>, ArrayView<Float4>, ArrayView<float>, ArrayView<float>, GemvShape>(GemmFastKernels.GemvKnStreamF32<Const8>),
    };

    [Fact]
    public void PlanKeepsEveryGroupResidentAtUpToSixteenWarpsPerSm()
    {
        // H200 (132 SMs): 4096 columns are 128 slabs, one 16-warp group per SM; 11008 are 344, three to an SM at most, so
        // 5 warps; 256 columns are 8 slabs of 16 warps; 65536 columns 2048 slabs, 16 to an SM: the 2-warp floor.
        Assert.Equal((128, 512, 1), PlanOf(1, 4096, 4096));
        Assert.Equal((128, 512, 8), PlanOf(8, 4096, 4096));
        Assert.Equal((344, 160, 8), PlanOf(8, 4096, 11008));
        Assert.Equal((256, 256, 2), PlanOf(2, 4096, 8192));
        Assert.Equal((8, 512, 4), PlanOf(3, 64, 256));
        Assert.Equal((2048, 64, 2), PlanOf(2, 64, 65536));
        Assert.Equal((2, 512, 8), PlanOf(5, 64, 36));

        // The device's group size, and on the 4-lane simulator whole 8-thread row slots.
        Assert.Equal(256, GemvKnStreamLaunch.Plan(new GemvShape { M = 2, N = 64, K = 8 }, 32, 256, 132).Config.GroupDim.X);
        Assert.Equal(16, GemvKnStreamLaunch.Plan(new GemvShape { M = 2, N = 64, K = 8 }, 4, 16, 0).Config.GroupDim.X);
        Assert.Equal(8, GemvKnStreamLaunch.Plan(new GemvShape { M = 2, N = 64, K = 8 }, 4, 16, 0, warps: 3).Config.GroupDim.X);
        Assert.True(GemvKnStreamLaunch.Fits(4, 16));
        Assert.False(GemvKnStreamLaunch.Fits(4, 4));

        static (int Groups, int Threads, int Cap) PlanOf(int m, int k, int n)
        {
            var (config, cap) = GemvKnStreamLaunch.Plan(new GemvShape { M = m, N = n, K = k }, 32, 1024, 132);
            return (config.GridDim.X, config.GroupDim.X, cap);
        }
    }

    [Fact]
    public void StreamRoutesOnlyAlignedKnProductsOfOneToEightRows() => WithVariant(GemvF32Variant.Stream, () =>
    {
        var a = Upload(Random(12700, 17 * 8));
        var w = Upload(Random(12701, 8 * 8));
        Assert.True(K.UsesGemvKnStreamF32(a, w, 1, 8, 8));
        Assert.True(K.UsesGemvKnStreamF32(a, w, 8, 8, 8));
        Assert.False(K.UsesGemvKnStreamF32(a, w, 9, 8, 8));               // 9–16 rows: the flat SGEMM tile
        Assert.False(K.UsesGemvKnStreamF32(a, w, 16, 8, 8));
        Assert.False(K.UsesGemvKnStreamF32(a, w, 2, 6, 8));               // K not a multiple of 4
        Assert.False(K.UsesGemvKnStreamF32(a, w.SubView(0, 48), 2, 8, 6)); // N not a multiple of 4
        Assert.False(K.UsesGemvKnStreamF32(a.SubView(1, 16), w, 2, 8, 8)); // A misaligned
        Assert.False(K.UsesGemvKnStreamF32(a, w.SubView(2, 32), 2, 4, 8)); // W misaligned
        foreach (var other in new[] { GemvF32Variant.Pipe, GemvF32Variant.Vec })
        {
            K.GemvF32Kernel = other;
            Assert.False(K.UsesGemvKnStreamF32(a, w, 2, 8, 8));
        }
    });

    /// <summary>
    /// Which kernel an aligned [K, N] product runs under each setting, on a fresh simulator device per setting (so the
    /// compiled-kernel list is this product's alone): unset and <c>stream</c> the streamed kernel at 1, 2 and 8 rows and the
    /// flat SGEMM tile at 12, <c>pipe</c> the split-K kernels (<c>GemvKnVecF32</c> for one row,
    /// <c>GemvKnPipeF32</c> for more), <c>vec</c> <c>GemvKnVecF32</c>.
    /// </summary>
    [Theory]
    [InlineData(null, 1, "GemvKnStreamF32<1>")]
    [InlineData("stream", 2, "GemvKnStreamF32<2>")]
    [InlineData("stream", 8, "GemvKnStreamF32<8>")]
    [InlineData("stream", 12, "SgemmWarpF32")]
    [InlineData("pipe", 1, "GemvKnVecF32<1>")]
    [InlineData("pipe", 3, "GemvKnPipeF32<4>")]
    [InlineData("vec", 3, "GemvKnVecF32<4>")]
    public void EachSettingRunsItsKernel(string? setting, int m, string expected)
    {
        const int Kd = 76, N = 36;
        using var device = IlgpuDevice.Create(IlgpuDeviceKind.CpuSimulator);
        var kernels = device.Kernels;
        kernels.GemvF32Kernel = GemvF32Choice.Parse(setting);
        kernels.SmallRowsKernel = SmallRowsProduct.Sgemm;
        int seed = 12800 + m + (setting?.Length ?? 0);
        var a = Random(seed, m * Kd);
        var w = Random(seed + 1, Kd * N);
        using var aBuffer = device.Accelerator.Allocate1D(a);
        using var wBuffer = device.Accelerator.Allocate1D(w);
        using var cBuffer = device.Accelerator.Allocate1D(Enumerable.Repeat(float.NaN, m * N).ToArray());
        kernels.Mm(aBuffer.View.AsContiguous(), wBuffer.View.AsContiguous(), cBuffer.View.AsContiguous(), m, Kd, N);
        device.Synchronize();
        AssertClose(cBuffer.GetAsArray1D(), Reference(a, w, m, Kd, N, 1f, 0f, null, false, transposeB: false), RtolF32, Atol * Kd, $"{setting ?? "unset"} [K, N] mm", seed);
        Assert.True(device.HasCompiled(expected), $"{expected} did not run under {setting ?? "unset"}");
        foreach (var other in new[] { "GemvKnStreamF32", "GemvKnPipeF32", "GemvKnVecF32", "GemvKnF32", "SgemmWarpF32" })
        {
            if (expected != other && !expected.StartsWith(other + "<", StringComparison.Ordinal))
            {
                Assert.False(device.HasCompiled(other), $"{other} ran under {setting ?? "unset"} at {m} rows");
            }
        }

        if (expected.StartsWith(nameof(GemmFastKernels.GemvKnStreamF32), StringComparison.Ordinal))
        {
            Assert.False(device.HasCompiled(nameof(GemmFastKernels.GemvReduceF32)) || device.HasCompiled(nameof(GemmFastKernels.GemvReduceRunsF32)),
                "the streamed kernel needs no second launch");
        }
    }

    /// <summary>
    /// Every variant of the streamed [K, N] kernel in sm_90 PTX at its launch bound (512 threads): 16-byte loads for A and W,
    /// no local memory, and in the batch loop the batch's R weight loads before the first warp barrier with no float
    /// arithmetic among them, then (up to 8 rows, the second fence) every activation load before the first product.
    /// </summary>
    [Theory]
    [InlineData(typeof(Const1), 1)]
    [InlineData(typeof(Const2), 2)]
    [InlineData(typeof(Const4), 4)]
    [InlineData(typeof(Const8), 8)]
    public void PtxIssuesTheBatchBeforeItsProducts(Type rowsCap, int cap)
    {
        int rows = GemmFastKernels.GemvKnStreamRowsPerThread(cap);
        var kernel = typeof(GemmFastKernels).GetMethod(nameof(GemmFastKernels.GemvKnStreamF32))!.MakeGenericMethod(rowsCap);
        var bounds = new KernelSpecialization(GemmFastKernels.GemvKnStreamMaxThreads, null);
        string ptx = Sm90Ptx.Of(kernel, bounds, $"GemvKnStreamF32_Const{cap}");

        int activationLoads = cap * rows / 4;
        int vectorLoads = Regex.Matches(ptx, @"ld\.global(\.nc)?\.v4\.(f32|b32|u32)").Count;
        int local = Regex.Matches(ptx, @"(ld|st)\.local").Count;
        output.WriteLine($"GemvKnStreamF32<{cap}>: {vectorLoads} global v4 loads, {local} local accesses");
        Assert.Contains($".maxntid {GemmFastKernels.GemvKnStreamMaxThreads}, 1, 1", ptx, StringComparison.Ordinal);
        Assert.Equal(0, local);
        PtxLocalSlots.AssertNone(ptx);
        Assert.True(vectorLoads >= 2 * (rows + activationLoads), $"expected the batch's {rows + activationLoads} 16-byte loads in the loop and the tail, found {vectorLoads}");

        int fence = ptx.IndexOf("bar.warp.sync", StringComparison.Ordinal);
        Assert.True(fence > 0, "the batch loop has no warp barrier");
        var beforeFence = Regex.Matches(ptx[..fence], @"ld\.global(\.nc)?\.v4\.f32");
        Assert.Equal(rows, beforeFence.Count);
        Assert.Empty(Regex.Matches(ptx[beforeFence[0].Index..fence], @"\b(mul|fma|add)\.(rn\.)?f32"));
        var afterFence = ptx[fence..];
        int firstProduct = Regex.Match(afterFence, @"\b(fma\.rn|mul(\.rn)?)\.f32").Index;
        Assert.True(firstProduct > 0, "no product after the fence");
        int earlyActivations = Regex.Matches(afterFence[..firstProduct], @"ld\.global(\.nc)?\.v4\.f32").Count;
        if (cap <= 8)
        {
            Assert.Equal(activationLoads, earlyActivations);
        }
        else
        {
            Assert.True(earlyActivations > 0, "no activation load ahead of the products");
        }

        // ILGPU writes a product as mul.f32 + add.f32 (contractible; ptxas fuses each pair into one FFMA) or as fma.rn.f32.
        int products = Regex.Matches(afterFence, @"\b(fma\.rn|mul(\.rn)?)\.f32").Count;
        Assert.True(products >= 2 * 4 * cap * rows, $"expected {4 * cap * rows} products in the loop and as many in the tail, found {products}");
    }
}
