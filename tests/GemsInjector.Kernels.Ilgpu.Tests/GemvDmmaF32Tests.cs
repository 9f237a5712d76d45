using System;
using System.IO;
using System.Linq;
using System.Text.RegularExpressions;
using GemsInjector.Kernels.Ilgpu;
using ILGPU;
using ILGPU.Runtime;
using Xunit;
using Xunit.Abstractions;

namespace GemsInjector.Kernels.Ilgpu.Tests;

/// <summary>
/// The float32 GEMV of 1–16 rows on the FP64 tensor cores (<see cref="GemvDmmaF32Kernels"/>, <c>GEMS_GEMV_F32_DMMA=on</c>):
/// the emulated body (the same kernel body, each m16n8k8 f64 DMMA rebuilt from the PTX fragment tables through warp
/// shuffles) on the warp-32 simulator with the CUDA plan's 4- and 8-warp groups, every element against float64, both
/// weight layouts; ragged M, N (not a multiple of 32; odd for [N, K]) and K (a lone vector, a partial k16 step, several
/// steps per warp); bias none / [N] / [M, N], alpha ≠ 1, beta = 0 with a NaN bias; NaN and ±Inf; the setting, the routing,
/// the plan and the PTX (the DMMA instruction, the sm_90a rewrite, no local memory).
/// </summary>
[Collection(SimulatorCollection.Name)]
public sealed class GemvDmmaF32Tests : GemvF32TestBase, IClassFixture<Warp32SimulatorFixture>
{
    private const string DmmaInstruction = "mma.sync.aligned.m16n8k8.row.col.f64.f64.f64.f64";

    private readonly Warp32SimulatorFixture warp32;
    private readonly ITestOutputHelper output;
    private readonly GemvDmmaChoice savedSetting;

    public GemvDmmaF32Tests(SimulatorFixture fixture, Warp32SimulatorFixture warp32, ITestOutputHelper output)
        : base(fixture)
    {
        this.warp32 = warp32;
        this.output = output;
        savedSetting = K.GemvF32Dmma;
    }

    public override void Dispose()
    {
        K.GemvF32Dmma = savedSetting;
        base.Dispose();
    }

    // Exact products and float64 sums, rounded once: float32 rounding of the float64 result plus a small absolute term
    // for sums that cancel (the reference adds in another order).
    private const double Rtol = 1e-6;

    private static double AtolOf(int k) => 1e-9 * k;

    // (m, k, n, layout): K = 4 (one vector), 20 (a partial k16 step), 132 (9 steps: some warps get one, the second
    // step of a pair past K), 260 (17 steps: two or three loop passes per warp); N below 32 (the group's columns), past
    // 32 and past 64 (a short last group), odd for [N, K], a multiple of 4 for [K, N].
    [Theory]
    [InlineData(8, 260, 37, true)]
    [InlineData(16, 20, 65, true)]
    [InlineData(1, 4, 4, false)]
    [InlineData(16, 132, 36, false)]
    public void DmmaMatchesFloat64(int m, int k, int n, bool transposeB)
    {
        int seed = 21000 + (m * 1000) + k + n + (transposeB ? 500 : 0);
        var a = Random(seed, m * k);
        var b = Random(seed + 1, k * n);
        var row = Random(seed + 2, n);
        var full = Random(seed + 3, m * n);
        var nanBias = Enumerable.Repeat(float.NaN, m * n).ToArray();

        // 8 warps (no SM count, or groups ≤ SMs) and 4 warps (more groups than SMs). The epilogue's row-bias and NaN-bias
        // paths do not depend on the group's warps: they run under the first plan only (each emulated launch costs seconds).
        foreach (int sms in new[] { 0, 1 })
        {
            string what = $"{(transposeB ? "[N, K]" : "[K, N]")} {m}x{k}x{n}, {GemvDmmaLaunch.Warps(n, sms)} warps";
            var got = RunEmulated(a, b, row, new GemvShape { M = m, N = n, K = k, Alpha = 1f }, transposeB, sms);
            AssertClose(got[..(m * n)], Reference(a, b, m, k, n, 1f, 0f, null, false, transposeB), Rtol, AtolOf(k), what + " mm", seed);
            AssertSentinel(got, m * n);

            got = RunEmulated(a, b, full, new GemvShape { M = m, N = n, K = k, Alpha = -2f, Beta = 0.5f, HasBias = 1, BiasStrideM = n }, transposeB, sms);
            AssertClose(got[..(m * n)], Reference(a, b, m, k, n, -2f, 0.5f, full, true, transposeB), Rtol, AtolOf(k), what + " matrix bias", seed);
            AssertSentinel(got, m * n);
            if (sms != 0)
            {
                continue;
            }

            got = RunEmulated(a, b, row, new GemvShape { M = m, N = n, K = k, Alpha = 0.75f, Beta = -1.25f, HasBias = 1 }, transposeB, sms);
            AssertClose(got[..(m * n)], Reference(a, b, m, k, n, 0.75f, -1.25f, row, false, transposeB), Rtol, AtolOf(k), what + " row bias", seed);
            AssertSentinel(got, m * n);

            // beta = 0: the bias is not read (NaN in it must not propagate).
            got = RunEmulated(a, b, nanBias, new GemvShape { M = m, N = n, K = k, Alpha = 3f, Beta = 0f, HasBias = 1, BiasStrideM = n }, transposeB, sms);
            AssertClose(got[..(m * n)], Reference(a, b, m, k, n, 3f, 0f, null, false, transposeB), Rtol, AtolOf(k), what + " beta 0, NaN bias", seed);
            AssertSentinel(got, m * n);
        }
    }

    // NaN and ±Inf in A (rows of both fragment halves, the partial last step) and in W: NaN where float64 says NaN, the
    // same infinity where it is infinite.
    [Theory]
    [InlineData(16, 148, 19, true)]
    [InlineData(11, 148, 20, false)]
    public void DmmaPropagatesNaNAndInf(int m, int k, int n, bool transposeB)
    {
        int seed = 22000 + m + k + n;
        var a = Random(seed, m * k);
        var b = Random(seed + 1, k * n);
        a[(1 * k) + 5] = float.NaN;                        // row 1 (a0 / a2 of its lanes)
        a[(9 * k) + 6] = float.NaN;                        // row 9 (a1 / a3)
        a[((m - 1) * k) + k - 2] = float.PositiveInfinity; // last row, the partial last step
        a[(m - 2) * k] = float.NegativeInfinity;           // row m - 2, k 0
        b[transposeB ? (2 * k) + k - 1 : ((k - 1) * n) + 2] = float.NaN;   // column 2, the last k
        var expected = Reference(a, b, m, k, n, 1f, 0f, null, false, transposeB);
        Assert.True(expected.Any(double.IsNaN) && expected.Any(double.IsInfinity), "the case must have NaN and infinite outputs");
        foreach (int sms in new[] { 0, 1 })
        {
            var got = RunEmulated(a, b, Random(seed + 2, n), new GemvShape { M = m, N = n, K = k, Alpha = 1f }, transposeB, sms);
            AssertClose(got[..(m * n)], expected, Rtol, AtolOf(k), "DMMA NaN / Inf", seed);
            AssertSentinel(got, m * n);
        }
    }

    /// <summary>The sum over the warps has a fixed order: two runs give the same bits.</summary>
    [Fact]
    public void DmmaIsDeterministic()
    {
        const int M = 5, Kd = 260, N = 40;
        var a = Random(22500, M * Kd);
        var b = Random(22501, Kd * N);
        var g = new GemvShape { M = M, N = N, K = Kd, Alpha = 1f };
        Assert.Equal(RunEmulated(a, b, new float[N], g, true, 0), RunEmulated(a, b, new float[N], g, true, 0));
    }

    // The prefetch form, on cases of several loop passes per warp and a partial last step (the epilogue and its bias paths
    // are `on`'s, tested above): against float64 with its own plans (8 warps on the
    // simulator's plan — its groups stop at 256 threads, so the GPU's 12-warp plan runs the same body with more warps —,
    // 4 with more groups than SMs), and bit for bit equal to `on` run with the same group size (the same
    // steps per warp, the same DMMA order, the same sum over the warps).
    [Theory]
    [InlineData(5, 260, 33, true)]
    [InlineData(8, 260, 36, false)]
    public void PrefetchMatchesFloat64AndOnBitForBit(int m, int k, int n, bool transposeB) =>
        FormMatchesFloat64AndOnBitForBit(GemvDmmaForm.Prefetch, new[] { 0, 1 }, m, k, n, transposeB);

    // The ring form (4-warp groups on the simulator's plan; the GPU's one-group plan runs the same body with 12 warps in
    // three K ranges, see RingInTwoRangesMatchesOnBitForBit): against float64 and bit for bit equal to `on` with 4 warps.
    [Theory]
    [InlineData(5, 260, 33, true)]
    [InlineData(8, 260, 36, false)]
    public void RingMatchesFloat64AndOnBitForBit(int m, int k, int n, bool transposeB) =>
        FormMatchesFloat64AndOnBitForBit(GemvDmmaForm.Ring, new[] { 0 }, m, k, n, transposeB);

    // The ring form's multi-range path (the GPU's 12-warp one-group plan walks K in three ranges of four warps): groups of
    // 8 warps in 2 ranges on the simulator, against float64 and bit for bit equal to `on` with the same warps and ranges;
    // K = 388 gives 13 pairs, so the second range is a pair short and its last pair ends in a partial step.
    [Theory]
    [InlineData(5, 388, 33, true)]
    [InlineData(16, 388, 36, false)]
    public void RingInTwoRangesMatchesOnBitForBit(int m, int k, int n, bool transposeB)
    {
        int seed = 23500 + (m * 1000) + k + n + (transposeB ? 500 : 0);
        var a = Random(seed, m * k);
        var b = Random(seed + 1, k * n);
        var bias = Random(seed + 2, m * n);
        var g = new GemvShape { M = m, N = n, K = k, Alpha = -2f, Beta = 0.5f, HasBias = 1, BiasStrideM = n };
        string what = $"ring {(transposeB ? "[N, K]" : "[K, N]")} {m}x{k}x{n}, 8 warps in 2 K ranges";
        var got = RunEmulated(a, b, bias, g, transposeB, 0, GemvDmmaForm.Ring, warpsOverride: 8);
        AssertClose(got[..(m * n)], Reference(a, b, m, k, n, -2f, 0.5f, bias, true, transposeB), Rtol, AtolOf(k), what, seed);
        AssertSentinel(got, m * n);
        var on = RunEmulated(a, b, bias, g, transposeB, 0, GemvDmmaForm.On, 8, 2);
        Assert.True(got.AsSpan().SequenceEqual(on), what + ": not the bits of `on` with the same warps and K ranges");
    }

    private void FormMatchesFloat64AndOnBitForBit(GemvDmmaForm form, int[] smsList, int m, int k, int n, bool transposeB)
    {
        int seed = 23000 + (m * 1000) + k + n + (transposeB ? 500 : 0);
        var a = Random(seed, m * k);
        var b = Random(seed + 1, k * n);
        var row = Random(seed + 2, n);
        var full = Random(seed + 3, m * n);
        var shapes = new (GemvShape G, float[] Bias, float Alpha, float Beta, float[]? RefBias, bool Matrix, string What)[]
        {
            (new GemvShape { M = m, N = n, K = k, Alpha = 1f }, row, 1f, 0f, null, false, "mm"),
            (new GemvShape { M = m, N = n, K = k, Alpha = -2f, Beta = 0.5f, HasBias = 1, BiasStrideM = n }, full, -2f, 0.5f, full, true, "matrix bias"),
        };

        foreach (int sms in smsList)
        {
            int warps = GemvDmmaLaunch.WarpsOf(n, sms, form);
            int expected = form != GemvDmmaForm.Prefetch ? 4
                : sms == 0 ? GemvDmmaLaunch.MaxWarps
                : GemvDmmaLaunch.Groups(n) > sms ? 4 : GemvDmmaLaunch.PrefetchOneGroupWarps;
            Assert.Equal(expected, warps);
            if (warps * 32 > 256)
            {
                continue;   // the GPU's 12-warp plan (one group on one SM): past the simulator's 256 threads
            }

            foreach (var (g, bias, alpha, beta, refBias, matrix, name) in shapes)
            {
                string what = $"{form} {(transposeB ? "[N, K]" : "[K, N]")} {m}x{k}x{n}, {warps} warps, {name}";
                var got = RunEmulated(a, b, bias, g, transposeB, sms, form);
                AssertClose(got[..(m * n)], Reference(a, b, m, k, n, alpha, beta, refBias, matrix, transposeB), Rtol, AtolOf(k), what, seed);
                AssertSentinel(got, m * n);
                if (matrix)
                {
                    // The bits against `on` once per plan, on the shape whose epilogue reads the most: the sums are the
                    // same K loop's for every shape.
                    var on = RunEmulated(a, b, bias, g, transposeB, sms, GemvDmmaForm.On, warps, RangesOf(form, warps));
                    Assert.True(got.AsSpan().SequenceEqual(on), what + ": not the bits of `on` with the same warps and K ranges");
                }
            }
        }
    }

    [Theory]
    [InlineData(16, 148, 19, true)]
    [InlineData(11, 148, 20, false)]
    public void PrefetchPropagatesNaNAndInf(int m, int k, int n, bool transposeB) => FormPropagatesNaNAndInf(GemvDmmaForm.Prefetch, m, k, n, transposeB);

    [Theory]
    [InlineData(16, 148, 19, true)]
    [InlineData(11, 148, 20, false)]
    public void RingPropagatesNaNAndInf(int m, int k, int n, bool transposeB) => FormPropagatesNaNAndInf(GemvDmmaForm.Ring, m, k, n, transposeB);

    private void FormPropagatesNaNAndInf(GemvDmmaForm form, int m, int k, int n, bool transposeB)
    {
        int seed = 24000 + m + k + n;
        var a = Random(seed, m * k);
        var b = Random(seed + 1, k * n);
        a[(1 * k) + 5] = float.NaN;
        a[(9 * k) + 6] = float.NaN;
        a[((m - 1) * k) + k - 2] = float.PositiveInfinity;
        a[(m - 2) * k] = float.NegativeInfinity;
        b[transposeB ? (2 * k) + k - 1 : ((k - 1) * n) + 2] = float.NaN;
        var expected = Reference(a, b, m, k, n, 1f, 0f, null, false, transposeB);
        Assert.True(expected.Any(double.IsNaN) && expected.Any(double.IsInfinity), "the case must have NaN and infinite outputs");
        foreach (int sms in new[] { 0, 1 })
        {
            if (GemvDmmaLaunch.WarpsOf(n, sms, form) * 32 > 256)
            {
                continue;   // the GPU's 12-warp plan: past the simulator's 256 threads
            }

            var got = RunEmulated(a, b, Random(seed + 2, n), new GemvShape { M = m, N = n, K = k, Alpha = 1f }, transposeB, sms, form);
            AssertClose(got[..(m * n)], expected, Rtol, AtolOf(k), $"DMMA {form} NaN / Inf", seed);
            AssertSentinel(got, m * n);
        }
    }

    [Theory]
    [InlineData(null, "Auto")]
    [InlineData("", "Auto")]
    [InlineData(" Auto ", "Auto")]
    [InlineData("dmma", "Auto")]
    [InlineData("off", "Off")]
    [InlineData("0", "Off")]
    [InlineData("FALSE", "Off")]
    [InlineData("on", "On")]
    [InlineData(" ON ", "On")]
    [InlineData("1", "On")]
    [InlineData("true", "On")]
    [InlineData(" Prefetch ", "Prefetch")]
    [InlineData("Ring", "Ring")]
    public void TheSettingParses(string? setting, string expected) =>
        Assert.Equal(Enum.Parse<GemvDmmaChoice>(expected), GemvF32DmmaChoice.Parse(setting));

    /// <summary>
    /// The default (<see cref="GemvDmmaChoice.Auto"/>), as measured in Runs 112 and 115: [K, N] 8–16 rows prefetch; [N, K]
    /// 9–16 rows ring; everything else the FFMA kernels. A forced form applies to every row count, off to none.
    /// </summary>
    [Theory]
    [InlineData(1, false, "Off")]
    [InlineData(4, false, "Off")]
    [InlineData(7, false, "Off")]
    [InlineData(8, false, "Prefetch")]
    [InlineData(12, false, "Prefetch")]
    [InlineData(16, false, "Prefetch")]
    [InlineData(17, false, "Off")]
    [InlineData(1, true, "Off")]
    [InlineData(8, true, "Off")]
    [InlineData(9, true, "Ring")]
    [InlineData(16, true, "Ring")]
    [InlineData(17, true, "Off")]
    public void TheDefaultTakesTheFormMeasuredFastest(int m, bool transposeB, string expected)
    {
        Assert.Equal(Enum.Parse<GemvDmmaForm>(expected), GemvDmmaLaunch.FormFor(GemvDmmaChoice.Auto, m, transposeB));
        Assert.Equal(GemvDmmaForm.Off, GemvDmmaLaunch.FormFor(GemvDmmaChoice.Off, m, transposeB));
        Assert.Equal(GemvDmmaForm.Ring, GemvDmmaLaunch.FormFor(GemvDmmaChoice.Ring, m, transposeB));
        Assert.Equal(GemvDmmaForm.Prefetch, GemvDmmaLaunch.FormFor(GemvDmmaChoice.Prefetch, m, transposeB));
        Assert.Equal(GemvDmmaForm.On, GemvDmmaLaunch.FormFor(GemvDmmaChoice.On, m, transposeB));
    }

    /// <summary>
    /// The prefetch and ring plans on 132 SMs: 12 warps while the groups fit one per SM, else 4 (all resident at 3 per SM);
    /// the ring's shared memory (3 stages of 4 KB per warp) within the opt-in limit of an sm_90a kernel.
    /// </summary>
    [Fact]
    public void PrefetchAndRingPlansKeepEveryGroupResident()
    {
        // The one-group plans' warps are OneGroupKRanges subgroups of four (the loader's Const3 variants).
        Assert.Equal(GemvDmmaLaunch.PrefetchOneGroupWarps, GemvDmmaLaunch.OneGroupKRanges * GemvDmmaLaunch.SmallGroupWarps);
        Assert.Equal(GemvDmmaLaunch.RingOneGroupWarps, GemvDmmaLaunch.OneGroupKRanges * GemvDmmaLaunch.SmallGroupWarps);
        var small = GemvDmmaLaunch.Plan(new GemvShape { M = 16, N = 4096, K = 4096 }, 132, GemvDmmaForm.Prefetch);
        Assert.Equal(128, small.GridDim.X);
        Assert.Equal(384, small.GroupDim.X);
        Assert.Equal(12 * 512, small.SharedMemoryConfig.NumElements);
        Assert.True(12 * 512 * 8 <= 48 * 1024, "within the default dynamic shared memory");
        var large = GemvDmmaLaunch.Plan(new GemvShape { M = 16, N = 11008, K = 4096 }, 132, GemvDmmaForm.Prefetch);
        Assert.Equal(344, large.GridDim.X);
        Assert.Equal(128, large.GroupDim.X);
        Assert.True(large.GridDim.X <= 132 * GemvDmmaLaunch.PrefetchGroupsPerSm);
        var oneGroup = GemvDmmaLaunch.Plan(new GemvShape { M = 16, N = 4096, K = 11008 }, 132, GemvDmmaForm.Ring);
        Assert.Equal(128, oneGroup.GridDim.X);
        Assert.Equal(GemvDmmaLaunch.RingOneGroupWarps * 32, oneGroup.GroupDim.X);
        Assert.Equal(GemvDmmaLaunch.RingOneGroupWarps * 12 * 1024, oneGroup.SharedMemoryConfig.NumElements * 8);
        Assert.True(oneGroup.SharedMemoryConfig.NumElements * 8 <= Sm90aPtx.OptInSharedBytes);
        Assert.Equal(GemvDmmaLaunch.RingOneGroupWarps, GemvDmmaLaunch.WarpsOf(4224, 132, GemvDmmaForm.Ring));
        Assert.Equal(GemvDmmaLaunch.SmallGroupWarps, GemvDmmaLaunch.WarpsOf(4225, 132, GemvDmmaForm.Ring));
        var ring = GemvDmmaLaunch.Plan(new GemvShape { M = 16, N = 11008, K = 4096 }, 132, GemvDmmaForm.Ring);
        Assert.Equal(344, ring.GridDim.X);
        Assert.Equal(128, ring.GroupDim.X);
        Assert.Equal(48 * 1024, ring.SharedMemoryConfig.NumElements * 8);
    }

    // K ranges per group of a plan: one per subgroup of four warps in groups of more (on the GPU the 12-warp one-group
    // plans take GemvDmmaLaunch.OneGroupKRanges; the simulator's 8-warp groups take 2), one for the first form's plan.
    private static int RangesOf(GemvDmmaForm form, int warps) =>
        form != GemvDmmaForm.On && warps > GemvDmmaLaunch.SmallGroupWarps ? warps / GemvDmmaLaunch.SmallGroupWarps : 1;

    private float[] RunEmulated(float[] a, float[] b, float[] bias, GemvShape g, bool transposeB, int multiprocessors,
        GemvDmmaForm form = GemvDmmaForm.On, int warpsOverride = 0, int ranges = 0)
    {
        var acc = warp32.Accelerator;
        var config = GemvDmmaLaunch.Plan(g, multiprocessors, form);
        Assert.Equal(GemvDmmaLaunch.WarpsOf(g.N, multiprocessors, form) * 32, config.GroupDim.X);
        if (warpsOverride > 0)
        {
            int slots = form == GemvDmmaForm.Ring ? GemvDmmaF32Kernels.RingStages * GemvDmmaF32Kernels.RingStageBytes / 8 : GemvDmmaF32Kernels.WarpSlots;
            config = new KernelConfig(config.GridDim, new Index3D(warpsOverride * 32, 1, 1),
                SharedMemoryConfig.RequestDynamic<double>(warpsOverride * slots));
        }

        ranges = ranges > 0 ? ranges : RangesOf(form, config.GroupDim.X / 32);
        Assert.True(ranges is 1 or 2, $"the emulated kernels take 1 or 2 K ranges, not {ranges}");
        bool two = ranges == 2;

        using var aBuffer = acc.Allocate1D(a);
        using var bBuffer = acc.Allocate1D(b);
        using var biasBuffer = acc.Allocate1D(bias);
        using var cBuffer = acc.Allocate1D(Enumerable.Repeat(float.NaN, g.M * g.N).Concat(Enumerable.Repeat(Sentinel, 64)).ToArray());
        if (form == GemvDmmaForm.Ring)
        {
            var ringKernel = (transposeB, two) switch
            {
                (true, false) => acc.LoadStreamKernel<ArrayView<Float4>, ArrayView<Float4>, ArrayView<float>, ArrayView<float>, GemvShape, long>(GemvDmmaF32Kernels.GemvDmmaF32RingEmulated<GemvDmmaNk, Const1>),
                (true, true) => acc.LoadStreamKernel<ArrayView<Float4>, ArrayView<Float4>, ArrayView<float>, ArrayView<float>, GemvShape, long>(GemvDmmaF32Kernels.GemvDmmaF32RingEmulated<GemvDmmaNk, Const2>),
                (false, false) => acc.LoadStreamKernel<ArrayView<Float4>, ArrayView<Float4>, ArrayView<float>, ArrayView<float>, GemvShape, long>(GemvDmmaF32Kernels.GemvDmmaF32RingEmulated<GemvDmmaKn, Const1>),
                _ => acc.LoadStreamKernel<ArrayView<Float4>, ArrayView<Float4>, ArrayView<float>, ArrayView<float>, GemvShape, long>(GemvDmmaF32Kernels.GemvDmmaF32RingEmulated<GemvDmmaKn, Const2>),
            };
            ringKernel(config, aBuffer.View.AsContiguous().Cast<Float4>(), bBuffer.View.AsContiguous().Cast<Float4>(), biasBuffer.View.AsContiguous(),
                cBuffer.View.AsContiguous().SubView(0, g.M * g.N), g, 0L);
            acc.Synchronize();
            return cBuffer.GetAsArray1D();
        }

        var kernel = (form == GemvDmmaForm.Prefetch, transposeB, two) switch
        {
            (true, true, false) => acc.LoadStreamKernel<ArrayView<Float4>, ArrayView<Float4>, ArrayView<float>, ArrayView<float>, GemvShape>(GemvDmmaF32Kernels.GemvDmmaF32PrefetchEmulated<GemvDmmaNk, Const1>),
            (true, true, true) => acc.LoadStreamKernel<ArrayView<Float4>, ArrayView<Float4>, ArrayView<float>, ArrayView<float>, GemvShape>(GemvDmmaF32Kernels.GemvDmmaF32PrefetchEmulated<GemvDmmaNk, Const2>),
            (true, false, false) => acc.LoadStreamKernel<ArrayView<Float4>, ArrayView<Float4>, ArrayView<float>, ArrayView<float>, GemvShape>(GemvDmmaF32Kernels.GemvDmmaF32PrefetchEmulated<GemvDmmaKn, Const1>),
            (true, false, true) => acc.LoadStreamKernel<ArrayView<Float4>, ArrayView<Float4>, ArrayView<float>, ArrayView<float>, GemvShape>(GemvDmmaF32Kernels.GemvDmmaF32PrefetchEmulated<GemvDmmaKn, Const2>),
            (false, true, false) => acc.LoadStreamKernel<ArrayView<Float4>, ArrayView<Float4>, ArrayView<float>, ArrayView<float>, GemvShape>(GemvDmmaF32Kernels.GemvDmmaF32Emulated<GemvDmmaNk, Const1>),
            (false, true, true) => acc.LoadStreamKernel<ArrayView<Float4>, ArrayView<Float4>, ArrayView<float>, ArrayView<float>, GemvShape>(GemvDmmaF32Kernels.GemvDmmaF32Emulated<GemvDmmaNk, Const2>),
            (false, false, false) => acc.LoadStreamKernel<ArrayView<Float4>, ArrayView<Float4>, ArrayView<float>, ArrayView<float>, GemvShape>(GemvDmmaF32Kernels.GemvDmmaF32Emulated<GemvDmmaKn, Const1>),
            _ => acc.LoadStreamKernel<ArrayView<Float4>, ArrayView<Float4>, ArrayView<float>, ArrayView<float>, GemvShape>(GemvDmmaF32Kernels.GemvDmmaF32Emulated<GemvDmmaKn, Const2>),
        };
        kernel(config, aBuffer.View.AsContiguous().Cast<Float4>(), bBuffer.View.AsContiguous().Cast<Float4>(), biasBuffer.View.AsContiguous(),
            cBuffer.View.AsContiguous().SubView(0, g.M * g.N), g);
        acc.Synchronize();
        return cBuffer.GetAsArray1D();
    }

    /// <summary>
    /// Routing: the shape's form by default (<see cref="GemvDmmaChoice.Auto"/>); whatever the setting, only a
    /// compute-capability-9.0 CUDA device takes the kernel (the simulator keeps the old kernels, bit for bit), and only for
    /// shapes <see cref="GemvDmmaLaunch.Takes"/>.
    /// </summary>
    [Fact]
    public void TheSwitchRoutesOnlySm90AndTheShapesItTakes()
    {
        if (Environment.GetEnvironmentVariable(GemvF32DmmaChoice.Variable) is null)
        {
            Assert.Equal(GemvDmmaChoice.Auto, savedSetting);
        }

        const int M = 8, Kd = 64, N = 36;
        var a = Random(22700, M * Kd);
        var b = Random(22701, Kd * N);
        var aView = Upload(a);
        var bView = Upload(b);
        foreach (bool transposeB in new[] { true, false })
        {
            K.GemvF32Dmma = GemvDmmaChoice.Off;
            Assert.Equal(GemvDmmaForm.Off, K.GemvDmmaF32Form(aView, bView, 1, M, Kd, N, transposeB));
            var (off, wholeOff) = PoisonedWithSentinel(M * N);
            K.Mm(aView, bView, off, M, Kd, N, transposeB);
            var before = Download(wholeOff);

            K.GemvF32Dmma = GemvDmmaChoice.On;
            Assert.Equal(GemvDmmaForm.Off, K.GemvDmmaF32Form(aView, bView, 1, M, Kd, N, transposeB));
            var (on, wholeOn) = PoisonedWithSentinel(M * N);
            K.Mm(aView, bView, on, M, Kd, N, transposeB);
            Assert.Equal(before, Download(wholeOn));
        }

        // The shapes: one matrix, 1–16 rows, K a multiple of 4, aligned views; [K, N] also N a multiple of 4.
        Assert.True(GemvDmmaLaunch.Takes(1, 1, 4096, 4096, true, 0, 256));
        Assert.True(GemvDmmaLaunch.Takes(1, 16, 4096, 11008, false, 0, 256));
        Assert.True(GemvDmmaLaunch.Takes(1, 16, 4096, 11007, true, 0, 256));
        Assert.False(GemvDmmaLaunch.Takes(1, 16, 4096, 11007, false, 0, 256));
        Assert.False(GemvDmmaLaunch.Takes(2, 16, 4096, 4096, true, 0, 256));
        Assert.False(GemvDmmaLaunch.Takes(1, 17, 4096, 4096, true, 0, 256));
        Assert.False(GemvDmmaLaunch.Takes(1, 0, 4096, 4096, true, 0, 256));
        Assert.False(GemvDmmaLaunch.Takes(1, 8, 4094, 4096, true, 0, 256));
        Assert.False(GemvDmmaLaunch.Takes(1, 8, 4096, 4096, true, 4, 256));
        Assert.False(GemvDmmaLaunch.Takes(1, 8, 4096, 4096, false, 0, 8));
    }

    /// <summary>
    /// The plan on 132 SMs: 8 warps while ⌈N / 32⌉ groups fit one per SM (N = 4096: 128 groups), else 4 (N = 11008: 344
    /// groups, within the 4 × 132 resident groups of 128 threads the launch bounds allow); 512 float64 of shared memory per warp.
    /// </summary>
    [Fact]
    public void PlanKeepsEveryGroupResident()
    {
        var small = GemvDmmaLaunch.Plan(new GemvShape { M = 16, N = 4096, K = 4096 }, 132, GemvDmmaForm.On);
        Assert.Equal(128, small.GridDim.X);
        Assert.Equal(256, small.GroupDim.X);
        Assert.Equal(8 * 512, small.SharedMemoryConfig.NumElements);
        var large = GemvDmmaLaunch.Plan(new GemvShape { M = 16, N = 11008, K = 4096 }, 132, GemvDmmaForm.On);
        Assert.Equal(344, large.GridDim.X);
        Assert.Equal(128, large.GroupDim.X);
        Assert.True(large.GridDim.X <= 132 * (GemvDmmaLaunch.GroupsPerSm * GemvDmmaLaunch.MaxWarps / 4));
        Assert.Equal(4 * 512, large.SharedMemoryConfig.NumElements);
    }

    /// <summary>
    /// PTX of a DMMA kernel for SM_90 under the launch bounds of <paramref name="threads"/> × <paramref name="groupsPerSm"/>;
    /// with GEMS_PTX_DUMP_DIR set, also written there as <paramref name="dumpName"/>.sm90a.ptx in the form the driver gets on a
    /// 9.0 device (`ptxas -arch=sm_90a -v` takes it as it is).
    /// </summary>
    // The TRanges type argument the loader passes for a plan of this many warps (IlgpuKernels.GemvDmmaF32).
    private static Type RangesType(int warps) => warps == GemvDmmaLaunch.SmallGroupWarps ? typeof(Const1) : typeof(Const3);

    private static string CompileForSm90(string kernelName, Type[] typeArguments, int threads, int groupsPerSm, string dumpName)
    {
        var kernel = typeof(GemvDmmaF32Kernels).GetMethod(kernelName)!.MakeGenericMethod(typeArguments);
        string ptx = Sm90Ptx.Of(kernel, new KernelSpecialization(threads, groupsPerSm));
        string? dump = Environment.GetEnvironmentVariable("GEMS_PTX_DUMP_DIR");
        if (!string.IsNullOrEmpty(dump) && Sm90aPtx.Rewrite(ptx) is string rewritten)
        {
            Directory.CreateDirectory(dump);
            File.WriteAllText(Path.Combine(dump, dumpName + ".sm90a.ptx"), rewritten);
        }

        return ptx;
    }

    /// <summary>
    /// The PTX for SM_90 (both layouts, the launch bounds of the plan): 32 DMMA (two k16 steps of 8, in the pass wholly
    /// inside K and in the pass with selects past K), marked
    /// for the sm_90a header rewrite, 16-byte weight and activation loads, the 16 accumulators stored once, no local memory.
    /// </summary>
    [Theory]
    [InlineData(typeof(GemvDmmaNk), "Nk")]
    [InlineData(typeof(GemvDmmaKn), "Kn")]
    public void PtxHoldsTheFloat64Mma(Type layout, string name)
    {
        string ptx = CompileForSm90(nameof(GemvDmmaF32Kernels.GemvDmmaF32), [layout], GemvDmmaLaunch.MaxWarps * 32, GemvDmmaLaunch.GroupsPerSm, $"GemvDmmaF32_{name}");
        int mma = Regex.Matches(ptx, Regex.Escape(DmmaInstruction)).Count;
        int vectors = Regex.Matches(ptx, @"ld\.global\.v4\.f32").Count;
        int widen = Regex.Matches(ptx, @"cvt\.f64\.f32").Count;
        output.WriteLine($"GemvDmmaF32<{name}>: {mma} DMMA, {vectors} ld.global.v4.f32, {widen} cvt.f64.f32, {ptx.Length} chars");
        Assert.Equal(32, mma);
        Assert.True(vectors >= 12, $"{vectors} 16-byte global loads");
        Assert.Contains(".maxntid 256, 1, 1", ptx, StringComparison.Ordinal);
        Assert.Contains($".minnctapersm {GemvDmmaLaunch.GroupsPerSm}", ptx, StringComparison.Ordinal);
        Assert.Equal(16, Regex.Matches(ptx, @"st\.shared\.f64 \[dsa\+").Count);
        PtxLocalSlots.AssertNone(ptx, $"GemvDmmaF32<{name}>");

        Assert.True(Sm90aPtx.Needs(ptx), "the DMMA kernel must take the sm_90a header rewrite");
        string rewritten = Sm90aPtx.Rewrite(ptx)!;

        Assert.Contains(".target sm_90a", rewritten, StringComparison.Ordinal);
        Assert.DoesNotContain(".target sm_80", rewritten, StringComparison.Ordinal);
    }

    /// <summary>
    /// The ring form's PTX for SM_90, both layouts, under both of its launch bounds (4 warps × 3 groups, 12 warps × 1): the
    /// 32 DMMA, 16 cp.async of 16 bytes (prologue and loop, 8 each), the waits, 8 16-byte shared loads per DMMA block, no
    /// local memory, the sm_90a rewrite.
    /// </summary>
    [Theory]
    [InlineData(typeof(GemvDmmaNk), "Nk", GemvDmmaLaunch.SmallGroupWarps, GemvDmmaLaunch.PrefetchGroupsPerSm)]
    [InlineData(typeof(GemvDmmaKn), "Kn", GemvDmmaLaunch.SmallGroupWarps, GemvDmmaLaunch.PrefetchGroupsPerSm)]
    [InlineData(typeof(GemvDmmaNk), "Nk", GemvDmmaLaunch.RingOneGroupWarps, 1)]
    public void RingPtxHoldsTheFloat64Mma(Type layout, string name, int warps, int groupsPerSm)
    {
        string ptx = CompileForSm90(nameof(GemvDmmaF32Kernels.GemvDmmaF32Ring), [layout, RangesType(warps)], warps * 32, groupsPerSm, $"GemvDmmaF32Ring_{name}_x{warps}");
        int mma = Regex.Matches(ptx, Regex.Escape(DmmaInstruction)).Count;
        int copies = Regex.Matches(ptx, @"cp\.async\.cg\.shared\.global").Count;
        int sharedVectors = Regex.Matches(ptx, @"ld\.shared\.v4\.f32").Count;
        output.WriteLine($"GemvDmmaF32Ring<{name}>: {mma} DMMA, {copies} cp.async, {sharedVectors} ld.shared.v4.f32, {ptx.Length} chars");
        Assert.Equal(32, mma);
        Assert.Equal(16, copies);
        Assert.Contains("cp.async.wait_group 2;", ptx, StringComparison.Ordinal);
        Assert.Contains("cp.async.wait_group 0;", ptx, StringComparison.Ordinal);
        Assert.True(sharedVectors >= 8, $"{sharedVectors} 16-byte shared loads");
        Assert.Equal(16, Regex.Matches(ptx, @"st\.shared\.f64 \[dsa\+").Count);
        Assert.Contains($".maxntid {warps * 32}, 1, 1", ptx, StringComparison.Ordinal);
        Assert.Contains($".minnctapersm {groupsPerSm}", ptx, StringComparison.Ordinal);
        PtxLocalSlots.AssertNone(ptx, $"GemvDmmaF32Ring<{name}> x{warps}");
        Assert.True(Sm90aPtx.Needs(ptx), "the DMMA kernel must take the sm_90a header rewrite");
    }

    /// <summary>
    /// The prefetch form's PTX for SM_90, both layouts, under both of its launch bounds (4 warps × 3 groups, 12 warps × 1):
    /// the 32 DMMA, at least 24 16-byte global loads (the first pass and the prefetched one), 16 accumulator stores, no
    /// local memory (the two register sets stay in registers), the sm_90a rewrite.
    /// </summary>
    [Theory]
    [InlineData(typeof(GemvDmmaNk), "Nk", 4, GemvDmmaLaunch.PrefetchGroupsPerSm)]
    [InlineData(typeof(GemvDmmaKn), "Kn", 4, GemvDmmaLaunch.PrefetchGroupsPerSm)]
    [InlineData(typeof(GemvDmmaNk), "Nk", GemvDmmaLaunch.PrefetchOneGroupWarps, 1)]
    [InlineData(typeof(GemvDmmaKn), "Kn", GemvDmmaLaunch.PrefetchOneGroupWarps, 1)]
    public void PrefetchPtxHoldsTheFloat64Mma(Type layout, string name, int warps, int groupsPerSm)
    {
        string ptx = CompileForSm90(nameof(GemvDmmaF32Kernels.GemvDmmaF32Prefetch), [layout, RangesType(warps)], warps * 32, groupsPerSm, $"GemvDmmaF32Prefetch_{name}_x{warps}");
        int mma = Regex.Matches(ptx, Regex.Escape(DmmaInstruction)).Count;
        int vectors = Regex.Matches(ptx, @"ld\.global\.v4\.f32").Count;
        int widen = Regex.Matches(ptx, @"cvt\.f64\.f32").Count;
        output.WriteLine($"GemvDmmaF32Prefetch<{name}> x{warps}: {mma} DMMA, {vectors} ld.global.v4.f32, {widen} cvt.f64.f32, {ptx.Length} chars");
        Assert.Equal(32, mma);
        Assert.True(vectors >= 24, $"{vectors} 16-byte global loads");
        Assert.Contains($".maxntid {warps * 32}, 1, 1", ptx, StringComparison.Ordinal);
        Assert.Contains($".minnctapersm {groupsPerSm}", ptx, StringComparison.Ordinal);
        Assert.Equal(16, Regex.Matches(ptx, @"st\.shared\.f64 \[dsa\+").Count);
        PtxLocalSlots.AssertNone(ptx, $"GemvDmmaF32Prefetch<{name}>");
        Assert.True(Sm90aPtx.Needs(ptx), "the DMMA kernel must take the sm_90a header rewrite");
        Assert.Contains(".target sm_90a", Sm90aPtx.Rewrite(ptx)!, StringComparison.Ordinal);
    }
}
