using System;
using System.IO;
using System.Linq;
using System.Text.RegularExpressions;
using GemsInjector.Kernels.Ilgpu;
using ILGPU;
using ILGPU.Backends.EntryPoints;
using ILGPU.Backends.PTX;
using ILGPU.Runtime;
using ILGPU.Runtime.Cuda;
using Xunit;
using Xunit.Abstractions;

namespace GemsInjector.Kernels.Ilgpu.Tests;

/// <summary>
/// The float32 [K, N] GEMV for 9–16 rows with a per-row-slot cp.async ring (<see cref="GemmFastKernels.GemvKnRingF32"/>,
/// <c>GEMS_GEMV_F32_KN_WIDE=ring3</c>): through the facade on the 4-lane simulator (row slots spanning two warps, group
/// barriers) and directly on the warp-32 simulator (CUDA's layout: 4 slots per warp, both shuffle steps, several holders),
/// fresh random inputs, NaN-poisoned outputs with sentinels, every element against float64; NaN and Inf; routing, the
/// setting, the plan and the PTX.
/// </summary>
[Collection(SimulatorCollection.Name)]
public sealed class GemvKnRingF32Tests : GemvF32TestBase, IClassFixture<Warp32SimulatorFixture>
{
    private readonly Warp32SimulatorFixture warp32;
    private readonly ITestOutputHelper output;

    public GemvKnRingF32Tests(SimulatorFixture fixture, Warp32SimulatorFixture warp32, ITestOutputHelper output)
        : base(fixture)
    {
        this.warp32 = warp32;
        this.output = output;
    }

    // m: 9, 13, 16 and others between; k: one quad (fewer batches than the prologue sends), quads not a multiple of the
    // group's slots (a partial last batch), many batches; n: below one 32-column slab, ragged last slabs (36, 68, 100), many
    // slabs with a ragged last one (4100).
    [Theory]
    [InlineData(9, 4, 8)]
    [InlineData(9, 1028, 36)]
    [InlineData(13, 76, 100)]
    [InlineData(16, 44, 4100)]
    [InlineData(16, 300, 20)]
    [InlineData(10, 148, 68)]
    [InlineData(12, 516, 36)]
    [InlineData(15, 12, 4)]
    public void MatchesFloat64(int m, int k, int n) => WithRing(() =>
    {
        int seed = 15100 + (m * 1000) + k + n;
        var a = Random(seed, m * k);
        var w = Random(seed + 1, k * n);
        var aView = Upload(a);
        var wView = Upload(w);
        Assert.True(K.UsesGemvKnRingF32(aView, wView, m, k, n), "an aligned 9–16-row [K, N] product must take the ring under `ring3`");
        var config = GemvKnRingLaunch.Plan(new GemvShape { M = m, N = n, K = k }, Device.WarpSize, Device.MaxGroupSize);
        output.WriteLine($"seed {seed}: {m}x{k}x{n}, {config.GridDim.X} groups of {config.GroupDim.X} threads");

        var (c, whole) = PoisonedWithSentinel(m * n);
        K.Mm(aView, wView, c, m, k, n);
        var got = Download(whole);
        AssertClose(got[..(m * n)], Reference(a, w, m, k, n, 1f, 0f, null, false, transposeB: false), RtolF32, Atol * k, "ring [K, N] mm", seed);
        AssertSentinel(got, m * n);

        var row = Random(seed + 2, n);
        (c, whole) = PoisonedWithSentinel(m * n);
        K.Addmm(Upload(row), aView, wView, c, m, k, n, beta: -1.25f, alpha: 0.75f);
        got = Download(whole);
        AssertClose(got[..(m * n)], Reference(a, w, m, k, n, 0.75f, -1.25f, row, false, transposeB: false), RtolF32, Atol * k, "ring [K, N] addmm row bias", seed);
        AssertSentinel(got, m * n);

        var full = Random(seed + 3, m * n);
        (c, whole) = PoisonedWithSentinel(m * n);
        K.Addmm(Upload(full), aView, wView, c, m, k, n, beta: 0.5f, alpha: -2f);
        got = Download(whole);
        AssertClose(got[..(m * n)], Reference(a, w, m, k, n, -2f, 0.5f, full, true, transposeB: false), RtolF32, Atol * k, "ring [K, N] addmm matrix bias", seed);
        AssertSentinel(got, m * n);
    });

    /// <summary>
    /// CUDA geometry on the warp-32 simulator at 2–5 warps per group (5: the plan's group on an H200): 4 row slots per warp,
    /// both shuffle steps, several holders; ragged slabs, partial last batches, a matrix bias with alpha and beta.
    /// </summary>
    [Theory]
    [InlineData(9, 1036, 44, 5)]
    [InlineData(16, 300, 36, 2)]
    [InlineData(13, 532, 100, 3)]
    [InlineData(16, 204, 68, 4)]
    [InlineData(12, 76, 36, 5)]
    [InlineData(16, 4, 40, 5)]
    public void CudaGeometryMatchesFloat64(int m, int k, int n, int warps)
    {
        int seed = 15300 + (m * 1000) + k + n + warps;
        var a = Random(seed, m * k);
        var w = Random(seed + 1, k * n);
        var bias = Random(seed + 2, m * n);
        var g = new GemvShape { M = m, N = n, K = k, Alpha = 0.5f, Beta = 2f, HasBias = 1, BiasStrideM = n };
        var got = RunOnWarp32(a, w, bias, g, warps);
        AssertClose(got[..(m * n)], Reference(a, w, m, k, n, 0.5f, 2f, bias, true, transposeB: false), RtolF32, Atol * k, "warp-32 ring [K, N] GEMV", seed);
        AssertSentinel(got, m * n);
    }

    // A NaN in the weight reaches only its column, a NaN in A only its row, an Inf in the weight its column as the float64
    // product has it (a lost NaN, or a stale value times a zero pad, fails); a NaN bias under beta 0 is not read. Rows of K
    // in a whole batch and in the partial last one, on both simulators.
    [Theory]
    [InlineData(16, 108, 68, 0)]
    [InlineData(9, 76, 36, 0)]
    [InlineData(13, 148, 36, 5)]
    [InlineData(16, 332, 40, 3)]
    public void NaNAndInfStayInTheirRowAndColumn(int m, int k, int n, int warps) => WithRing(() =>
    {
        int seed = 15500 + m + k + n + warps;
        var a = Random(seed, m * k);
        var w = Random(seed + 1, k * n);
        int nanColumn = n - 3, infColumn = 5, nanRow = m - 2;
        w[(3 * n) + nanColumn] = float.NaN;
        w[((k - 2) * n) + infColumn] = float.PositiveInfinity;
        a[(nanRow * k) + k - 1] = float.NaN;
        var rowBias = Enumerable.Repeat(float.NaN, n).ToArray();
        var expected = Reference(a, w, m, k, n, 1f, 0f, null, false, transposeB: false);
        float[] got;
        if (warps == 0)
        {
            var (c, whole) = PoisonedWithSentinel(m * n);
            K.Addmm(Upload(rowBias), Upload(a), Upload(w), c, m, k, n, beta: 0f, alpha: 1f);
            got = Download(whole);
        }
        else
        {
            got = RunOnWarp32(a, w, rowBias, new GemvShape { M = m, N = n, K = k, Alpha = 1f, Beta = 0f, HasBias = 1 }, warps);
        }

        for (int e = 0; e < m * n; e++)
        {
            int r = e / n, j = e % n;
            bool nan = j == nanColumn || r == nanRow || double.IsNaN(expected[e]);
            if (nan)
            {
                Assert.True(float.IsNaN(got[e]), $"({r}, {j}) should be NaN, got {got[e]} (seed {seed})");
            }
            else if (double.IsInfinity(expected[e]))
            {
                Assert.Equal(expected[e], (double)got[e]);
            }
            else
            {
                Assert.False(float.IsNaN(got[e]) || float.IsInfinity(got[e]), $"({r}, {j}) should be finite, got {got[e]} (seed {seed})");
                Assert.True(Math.Abs(got[e] - expected[e]) <= (Atol * k) + (RtolF32 * Math.Abs(expected[e])), $"({r}, {j}): {got[e]} against {expected[e]} (seed {seed})");
            }
        }

        AssertSentinel(got, m * n);
    });

    [Fact]
    public void RoutesOnlyAlignedKnProductsOfNineToSixteenRowsUnderRing3() => WithRing(() =>
    {
        var a = Upload(Random(15700, 17 * 8));
        var w = Upload(Random(15701, 8 * 8));
        Assert.True(K.UsesGemvKnRingF32(a, w, 9, 8, 8));
        Assert.True(K.UsesGemvKnRingF32(a, w, 16, 8, 8));
        Assert.False(K.UsesGemvKnRingF32(a, w, 8, 8, 8));                // 1–8 rows: the streamed kernel
        Assert.False(K.UsesGemvKnRingF32(a, w, 17, 8, 8));
        Assert.False(K.UsesGemvKnRingF32(a, w, 12, 6, 8));               // K not a multiple of 4
        Assert.False(K.UsesGemvKnRingF32(a, w.SubView(0, 48), 12, 8, 6)); // N not a multiple of 4
        Assert.False(K.UsesGemvKnRingF32(a.SubView(1, 16 * 8), w, 12, 8, 8)); // A misaligned
        Assert.False(K.UsesGemvKnRingF32(a, w.SubView(2, 32), 12, 4, 8)); // W misaligned
        K.GemvF32Kernel = GemvF32Variant.Pipe;
        Assert.False(K.UsesGemvKnRingF32(a, w, 12, 8, 8));
        K.GemvF32Kernel = GemvF32Variant.Stream;
        K.GemvF32KnWideKernel = GemvF32KnWide.Flat;
        Assert.False(K.UsesGemvKnRingF32(a, w, 12, 8, 8));
    });

    [Fact]
    public void SettingParsesRing3AndDefaultsToTheFlatTile()
    {
        Assert.Equal(GemvF32KnWide.Ring3, GemvF32KnWideChoice.Parse("ring3"));
        Assert.Equal(GemvF32KnWide.Ring3, GemvF32KnWideChoice.Parse(" RING3 "));
        Assert.Equal(GemvF32KnWide.Flat, GemvF32KnWideChoice.Parse(null));
        Assert.Equal(GemvF32KnWide.Flat, GemvF32KnWideChoice.Parse("ring"));
        Assert.Equal(GemvF32KnWide.Flat, GemvF32KnWideChoice.Parse("ring3w"));
    }

    /// <summary>
    /// Which kernel an aligned [K, N] product runs, on a fresh simulator device per case: unset keeps the flat tile at 12
    /// rows, <c>ring3</c> takes the ring at 9 and 16 rows, and leaves 8 rows on the streamed kernel.
    /// </summary>
    [Theory]
    [InlineData(null, 12, "SgemmWarpF32")]
    [InlineData("ring3", 9, "GemvKnRingF32")]
    [InlineData("ring3", 16, "GemvKnRingF32")]
    [InlineData("ring3", 8, "GemvKnStreamF32<8>")]
    public void EachSettingRunsItsKernel(string? setting, int m, string expected)
    {
        const int Kd = 76, N = 36;
        using var device = IlgpuDevice.Create(IlgpuDeviceKind.CpuSimulator);
        var kernels = device.Kernels;
        kernels.GemvF32Kernel = GemvF32Variant.Stream;
        kernels.GemvF32KnWideKernel = GemvF32KnWideChoice.Parse(setting);
        kernels.SmallRowsKernel = SmallRowsProduct.Sgemm;
        int seed = 15800 + m + (setting?.Length ?? 0);
        var a = Random(seed, m * Kd);
        var w = Random(seed + 1, Kd * N);
        using var aBuffer = device.Accelerator.Allocate1D(a);
        using var wBuffer = device.Accelerator.Allocate1D(w);
        using var cBuffer = device.Accelerator.Allocate1D(Enumerable.Repeat(float.NaN, m * N).ToArray());
        kernels.Mm(aBuffer.View.AsContiguous(), wBuffer.View.AsContiguous(), cBuffer.View.AsContiguous(), m, Kd, N);
        device.Synchronize();
        AssertClose(cBuffer.GetAsArray1D(), Reference(a, w, m, Kd, N, 1f, 0f, null, false, transposeB: false), RtolF32, Atol * Kd, $"{setting ?? "unset"} [K, N] mm", seed);
        Assert.True(device.HasCompiled(expected), $"{expected} did not run under {setting ?? "unset"} at {m} rows");
        foreach (var other in new[] { "GemvKnRingF32", "GemvKnStreamF32", "SgemmWarpF32" })
        {
            if (expected != other && !expected.StartsWith(other + "<", StringComparison.Ordinal))
            {
                Assert.False(device.HasCompiled(other), $"{other} ran under {setting ?? "unset"} at {m} rows");
            }
        }
    }

    [Fact]
    public void PlanFillsFiveWarpsWithinFortyEightKilobytes()
    {
        // H200: 11008 columns are 344 slabs of 5 warps (20 row slots × 3 stages × 784 bytes = 47,040 bytes per group).
        var config = GemvKnRingLaunch.Plan(new GemvShape { M = 16, N = 11008, K = 4096 }, 32, 1024);
        Assert.Equal(344, config.GridDim.X);
        Assert.Equal(160, config.GroupDim.X);
        Assert.Equal(47040, GemmFastKernels.GemvKnRingSharedFloats(160) * 4);
        Assert.True(GemmFastKernels.GemvKnRingSharedFloats(160) * 4 <= 48 * 1024);
        Assert.True(3 * ((GemmFastKernels.GemvKnRingSharedFloats(160) * 4) + 1024) <= 228 * 1024);
        Assert.Equal(128, GemvKnRingLaunch.Plan(new GemvShape { M = 9, N = 4096, K = 4096 }, 32, 1024).GridDim.X);
        Assert.Equal(64, GemvKnRingLaunch.Plan(new GemvShape { M = 9, N = 36, K = 8 }, 32, 1024, warps: 2).GroupDim.X);

        // The 4-lane simulator: whole 8-thread row slots (two warps each).
        Assert.Equal(16, GemvKnRingLaunch.Plan(new GemvShape { M = 9, N = 36, K = 8 }, 4, 16).GroupDim.X);
        Assert.True(GemvKnRingLaunch.Fits(4, 16));
        Assert.True(GemvKnRingLaunch.Fits(32, 1024));
        Assert.False(GemvKnRingLaunch.Fits(4, 4));
        Assert.False(GemvKnRingLaunch.Fits(64, 1024));
        Assert.False(GemvKnRingLaunch.Fits(12, 1024));
    }

    /// <summary>
    /// sm_90 PTX at the facade's launch bounds (160 threads, 3 groups per SM): the weight and the activations copied by
    /// 16-byte cp.async (4 weight rows at immediates 128 bytes apart, 2 activation rows 16 apart, in the prologue's 2 batches
    /// and the loop), `wait_group 2` in the loop, `wait_all` after it, one body of 20 16-byte shared loads and 256 products,
    /// no local memory.
    /// </summary>
    [Fact]
    public void PtxCopiesByCpAsyncWithoutLocalMemory()
    {
        var kernel = typeof(GemmFastKernels).GetMethod(nameof(GemmFastKernels.GemvKnRingF32))!;
        using var context = Context.Create(b => b.Optimize(IlgpuDevice.CudaOptimization));
        using var backend = new PTXBackend(context, new CudaCapabilityContext(CudaArchitecture.SM_90),
            CudaArchitecture.SM_90, CudaInstructionSet.ISA_80, nvvmAPI: null);
        var bounds = new KernelSpecialization(GemvKnRingLaunch.Warps * 32, GemvKnRingLaunch.GroupsPerSm);
        string ptx = ((PTXCompiledKernel)backend.Compile(EntryPointDescription.FromExplicitlyGroupedKernel(kernel), bounds)).PTXAssembly;
        string? dump = Environment.GetEnvironmentVariable("GEMS_PTX_DUMP_DIR");
        if (!string.IsNullOrEmpty(dump))
        {
            Directory.CreateDirectory(dump);
            File.WriteAllText(Path.Combine(dump, "GemvKnRingF32.ptx"), ptx);
        }

        int sharedVectors = Regex.Matches(ptx, @"ld\.shared\.v4\.f32").Count;
        int products = Regex.Matches(ptx, @"\b(mul|fma\.rn)\.f32").Count;
        output.WriteLine($"GemvKnRingF32: {sharedVectors} shared v4 loads, {products} products, {ptx.Length} chars");
        Assert.Contains($".maxntid {GemvKnRingLaunch.Warps * 32}, 1, 1", ptx, StringComparison.Ordinal);
        Assert.Contains($".minnctapersm {GemvKnRingLaunch.GroupsPerSm}", ptx, StringComparison.Ordinal);
        Assert.Empty(Regex.Matches(ptx, @"(ld|st)\.local"));
        PtxLocalSlots.AssertNone(ptx, "GemvKnRingF32");
        foreach (int offset in new[] { 128, 256, 384 })
        {
            Assert.Equal(3, Regex.Matches(ptx, $@"cp\.async\.cg\.shared\.global \[sdst\+{offset}\], \[g\d\], 16,").Count);
        }

        Assert.Equal(3, Regex.Matches(ptx, @"cp\.async\.cg\.shared\.global \[sdst\+16\], \[g1\], 16,").Count);
        Assert.Contains("cp.async.wait_group 2;", ptx, StringComparison.Ordinal);
        Assert.Contains("cp.async.wait_all;", ptx, StringComparison.Ordinal);
        Assert.Equal(3, Regex.Matches(ptx, @"cp\.async\.commit_group;").Count);
        Assert.Equal(20, sharedVectors); // one batch: 4 weight and 16 activation vectors
        // The simulator's synchronous copies stay in this PTX behind a constant-true predicate (ILGPU does not fold
        // CudaAsm.IsSupported there); ptxas drops them: the sm_90 SASS of this PTX has no LDG in the batch loop.
        Assert.True(products >= 256, $"expected the batch's 256 products, found {products}");
    }

    private float[] RunOnWarp32(float[] a, float[] w, float[] bias, GemvShape g, int warps)
    {
        var acc = warp32.Accelerator;
        Assert.True(GemvKnRingLaunch.Fits(acc.WarpSize, acc.MaxNumThreadsPerGroup));
        var config = GemvKnRingLaunch.Plan(g, acc.WarpSize, acc.MaxNumThreadsPerGroup, warps);
        Assert.Equal(warps * 32, config.GroupDim.X);
        using var aBuffer = acc.Allocate1D(a);
        using var wBuffer = acc.Allocate1D(w);
        using var biasBuffer = acc.Allocate1D(bias);
        using var cBuffer = acc.Allocate1D(Enumerable.Repeat(float.NaN, g.M * g.N).Concat(Enumerable.Repeat(Sentinel, 64)).ToArray());
        var kernel = acc.LoadStreamKernel<ArrayView<Float4>, ArrayView<Float4>, ArrayView<float>, ArrayView<float>, GemvShape, long, long>(GemmFastKernels.GemvKnRingF32);
        kernel(config, aBuffer.View.AsContiguous().Cast<Float4>(), wBuffer.View.AsContiguous().Cast<Float4>(), biasBuffer.View.AsContiguous(),
            cBuffer.View.AsContiguous().SubView(0, g.M * g.N), g, 0L, 0L);
        acc.Synchronize();
        return cBuffer.GetAsArray1D();
    }

    private void WithRing(Action body)
    {
        var variant = K.GemvF32Kernel;
        var wide = K.GemvF32KnWideKernel;
        var rows = K.SmallRowsKernel;
        K.GemvF32Kernel = GemvF32Variant.Stream;
        K.GemvF32KnWideKernel = GemvF32KnWide.Ring3;
        K.SmallRowsKernel = SmallRowsProduct.Sgemm;
        try
        {
            body();
        }
        finally
        {
            K.GemvF32Kernel = variant;
            K.GemvF32KnWideKernel = wide;
            K.SmallRowsKernel = rows;
        }
    }
}
