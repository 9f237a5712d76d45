using System;
using System.Linq;
using System.Text.RegularExpressions;
using GemsInjector.Kernels.Ilgpu;
using ILGPU;
using ILGPU.Runtime;
using ILGPU.Runtime.CPU;
using ILGPU.Runtime.Cuda;
using Xunit;
using Xunit.Abstractions;

namespace GemsInjector.Kernels.Ilgpu.Tests;

/// <summary>
/// The 16-bit decode GEMV (<see cref="HalfGemvKernels"/>): routed from mm / addmm for M ≤ 16 with 16-byte aligned rows,
/// both weight layouts and formats, with and without split-K, against float64 references into NaN-poisoned outputs;
/// once more with CUDA's launch geometry (32-lane warps, 8 warps per group); and its PTX: 16-byte global
/// loads, no local memory.
/// </summary>
[Collection(SimulatorCollection.Name)]
public sealed class HalfGemvTests : Half16TestBase, IClassFixture<Warp32SimulatorFixture>
{
    private readonly Warp32SimulatorFixture warp32;
    private readonly ITestOutputHelper output;

    public HalfGemvTests(SimulatorFixture fixture, Warp32SimulatorFixture warp32, ITestOutputHelper output)
        : base(fixture)
    {
        this.warp32 = warp32;
        this.output = output;
    }

    private static double[] Reference(float[] av, float[] bv, int m, int k, int n, bool transposeB, float alpha, float beta, float[]? bias, bool biasIsMatrix) =>
        Enumerable.Range(0, m * n).Select(e =>
        {
            int r = e / n, j = e % n;
            double dot = 0;
            for (int t = 0; t < k; t++)
            {
                dot += (double)av[(r * k) + t] * (transposeB ? bv[(j * k) + t] : bv[(t * n) + j]);
            }

            double v = alpha * dot;
            return bias is null || beta == 0f ? v : v + (beta * (double)bias[biasIsMatrix ? e : j]);
        }).ToArray();

    [Theory]
    [InlineData(true, true, 1, 264, 37)]
    [InlineData(false, true, 1, 264, 37)]
    [InlineData(true, true, 3, 40, 9)]
    [InlineData(false, true, 9, 24, 5)]
    [InlineData(true, true, 16, 136, 33)]
    [InlineData(false, true, 16, 8, 300)]
    [InlineData(true, false, 1, 45, 72)]
    [InlineData(false, false, 1, 45, 72)]
    [InlineData(true, false, 5, 17, 24)]
    [InlineData(false, false, 16, 33, 40)]
    [InlineData(true, false, 11, 130, 8)]
    [InlineData(false, false, 2, 3, 520)]
    [InlineData(true, false, 4, 70, 16)]
    [InlineData(false, true, 1, 8, 1)]
    public void MmAndAddmmMatchFloat64(bool bf16, bool transposeB, int m, int k, int n)
    {
        int seed = 7700 + (m * 1000) + (k * 10) + n + (bf16 ? 1 : 0) + (transposeB ? 2 : 0);
        var (a, av) = Random16(seed, m * k, bf16, -1f, 1f);
        var (b, bv) = Random16(seed + 1, k * n, bf16, -1f, 1f);
        var aView = Upload(a);
        var bView = Upload(b);
        Assert.True(K.UsesHalfGemv(aView, bView, 1, m, k, n, transposeB), "an aligned decode product must take the 16-bit GEMV");
        var plan = HalfGemvLaunch.Plan(m, k, n, transposeB, 1f, 0f, false, false, Device.WarpSize, Device.MaxGroupSize, Device.MultiprocessorCount);
        output.WriteLine($"seed {seed}: {m}x{k}x{n} {(transposeB ? "[N,K]" : "[K,N]")} rows cap {plan.RowsCap}, splits {plan.Shape.Splits}, groups {plan.Config.GridDim.X}");

        var c = Poisoned16(m * n, bf16);
        K.Mm(aView, bView, c, m, k, n, F(bf16), transposeB);
        Check16(c, Reference(av, bv, m, k, n, transposeB, 1f, 0f, null, false), bf16, "mm", seed, Atol * k);

        var (row, rowv) = Random16(seed + 2, n, bf16);
        c = Poisoned16(m * n, bf16);
        K.Addmm(Upload(row), aView, bView, c, m, k, n, F(bf16), beta: -1.25f, alpha: 0.75f, transposeB: transposeB);
        Check16(c, Reference(av, bv, m, k, n, transposeB, 0.75f, -1.25f, rowv, false), bf16, "addmm row bias", seed, Atol * k);

        if (m > 1)
        {
            var (full, fullv) = Random16(seed + 3, m * n, bf16);
            c = Poisoned16(m * n, bf16);
            K.Addmm(Upload(full), aView, bView, c, m, k, n, F(bf16), transposeB: transposeB);
            Check16(c, Reference(av, bv, m, k, n, transposeB, 1f, 1f, fullv, true), bf16, "addmm matrix bias", seed, Atol * k);
        }
    }

    [Theory]
    [InlineData(false, true)]
    [InlineData(true, false)]
    public void NaNStaysInItsRowAndUnreadBiasIsIgnored(bool bf16, bool transposeB)
    {
        const int M = 6, Kd = 48, N = 40;
        int seed = 7800 + (bf16 ? 1 : 0) + (transposeB ? 2 : 0);
        var (a, av) = Random16(seed, M * Kd, bf16, -1f, 1f);
        var (b, bv) = Random16(seed + 1, Kd * N, bf16, -1f, 1f);
        a[(4 * Kd) + 7] = NaN16(bf16);
        var nanBias = Enumerable.Repeat(NaN16(bf16), N).ToArray();
        var aView = Upload(a);
        var bView = Upload(b);
        Assert.True(K.UsesHalfGemv(aView, bView, 1, M, Kd, N, transposeB));
        var c = Poisoned16(M * N, bf16);
        K.Addmm(Upload(nanBias), aView, bView, c, M, Kd, N, F(bf16), beta: 0f, transposeB: transposeB);
        var expected = Reference(av, bv, M, Kd, N, transposeB, 1f, 0f, null, false).Select((v, e) => e / N == 4 ? double.NaN : v).ToArray();
        Check16(c, expected, bf16, "NaN row", seed, Atol * Kd);
    }

    [Theory]
    [InlineData(true, 3, 41, 16)]
    [InlineData(false, 3, 40, 16)]
    [InlineData(false, 4, 40, 21)]
    public void UnalignedRowsTakeTheGeneralKernel(bool transposeB, int m, int k, int n)
    {
        int seed = 7900 + m + k + n + (transposeB ? 1 : 0);
        const bool Bf16 = true;
        var (a, av) = Random16(seed, m * k, Bf16, -1f, 1f);
        var (b, bv) = Random16(seed + 1, k * n, Bf16, -1f, 1f);
        bool sizesAligned = transposeB ? k % 8 == 0 : n % 8 == 0;
        var aView = UploadAt(a, sizesAligned ? 1 : 0, (ushort)0);
        var bView = UploadAt(b, sizesAligned ? 1 : 0, (ushort)0);
        Assert.False(K.UsesHalfGemv(aView, bView, 1, m, k, n, transposeB));
        var c = Poisoned16(m * n, Bf16);
        K.Mm(aView, bView, c, m, k, n, F(Bf16), transposeB);
        Check16(c, Reference(av, bv, m, k, n, transposeB, 1f, 0f, null, false), Bf16, "unaligned mm", seed, Atol * k);
    }

    /// <summary>
    /// CUDA geometry (8 column lanes, two shuffle folds, 8 warps of 32): whole unguarded iterations and their tails, in one
    /// chunk, or split (plans for more SMs than groups) through <see cref="HalfGemvKernels.GemvReduce16"/> (256 simulated threads per group are slow).
    /// </summary>
    [Theory]
    [InlineData(true, true, 16, 520, 30, 1)]
    [InlineData(false, true, 1, 1032, 9, 4)]
    [InlineData(true, true, 1, 4104, 3, 1)]
    [InlineData(true, false, 16, 300, 64, 1)]
    [InlineData(false, false, 3, 77, 64, 2)]
    [InlineData(true, false, 1, 600, 64, 1)]
    [InlineData(false, false, 4, 700, 72, 1)]
    public void CudaGeometryMatchesFloat64(bool bf16, bool transposeB, int m, int k, int n, int multiprocessors)
    {
        int seed = 8000 + (m * 1000) + k + n + (bf16 ? 1 : 0) + (transposeB ? 2 : 0);
        var acc = warp32.Accelerator;
        var (a, av) = Random16(seed, m * k, bf16, -1f, 1f);
        var (b, bv) = Random16(seed + 1, k * n, bf16, -1f, 1f);
        var (bias, biasv) = Random16(seed + 2, n, bf16);
        var (config, g, cap) = HalfGemvLaunch.Plan(m, k, n, transposeB, 0.5f, 2f, true, false, acc.WarpSize, 256, multiprocessors);
        output.WriteLine($"seed {seed}: rows cap {cap}, splits {g.Splits}, groups {config.GridDim.X}, col lanes {g.ColLanes}");
        Assert.Equal(multiprocessors > 1, g.Splits > 1);

        using var aBuffer = acc.Allocate1D(a);
        using var bBuffer = acc.Allocate1D(b);
        using var biasBuffer = acc.Allocate1D(bias);
        using var cBuffer = acc.Allocate1D(Enumerable.Repeat(NaN16(bf16), m * n).ToArray());
        using var partial = acc.Allocate1D(Enumerable.Repeat(float.NaN, (int)Math.Max(1L, (long)g.Splits * m * n)).ToArray());
        var aView = aBuffer.View.AsContiguous();
        var bView = bBuffer.View.AsContiguous();
        var biasView = biasBuffer.View.AsContiguous();
        var cView = cBuffer.View.AsContiguous();
        var partialView = partial.View.AsContiguous();
        if (transposeB)
        {
            var kernel = (cap, bf16) switch
            {
                (16, true) => acc.LoadStreamKernel<ArrayView<Half8>, ArrayView<Half8>, ArrayView<ushort>, ArrayView<ushort>, ArrayView<float>, HalfGemvShape>(HalfGemvKernels.GemvNk16<Const16, BFloat16Storage>),
                (1, true) => acc.LoadStreamKernel<ArrayView<Half8>, ArrayView<Half8>, ArrayView<ushort>, ArrayView<ushort>, ArrayView<float>, HalfGemvShape>(HalfGemvKernels.GemvNk16Row<BFloat16Storage>),
                (1, false) => acc.LoadStreamKernel<ArrayView<Half8>, ArrayView<Half8>, ArrayView<ushort>, ArrayView<ushort>, ArrayView<float>, HalfGemvShape>(HalfGemvKernels.GemvNk16Row<Float16Storage>),
                _ => throw new ArgumentOutOfRangeException(nameof(m), m, "no [N, K] kernel listed for this case"),
            };
            kernel(config, aView.Cast<Half8>(), bView.Cast<Half8>(), biasView, cView, partialView, g);
        }
        else
        {
            var kernel = (cap, bf16) switch
            {
                (8, true) => acc.LoadStreamKernel<ArrayView<ushort>, ArrayView<Half8>, ArrayView<ushort>, ArrayView<ushort>, ArrayView<float>, HalfGemvShape>(HalfGemvKernels.GemvKn16<Const8, BFloat16Storage>),
                (4, false) => acc.LoadStreamKernel<ArrayView<ushort>, ArrayView<Half8>, ArrayView<ushort>, ArrayView<ushort>, ArrayView<float>, HalfGemvShape>(HalfGemvKernels.GemvKn16<Const4, Float16Storage>),
                (1, true) => acc.LoadStreamKernel<ArrayView<ushort>, ArrayView<Half8>, ArrayView<ushort>, ArrayView<ushort>, ArrayView<float>, HalfGemvShape>(HalfGemvKernels.GemvKn16<Const1, BFloat16Storage>),
                _ => throw new ArgumentOutOfRangeException(nameof(m), m, "no [K, N] kernel listed for this case"),
            };
            kernel(config, aView, bView.Cast<Half8>(), biasView, cView, partialView, g);
        }

        acc.Synchronize();
        if (g.Splits > 1)
        {
            var reduce = acc.LoadStreamKernel<ArrayView<float>, ArrayView<ushort>, ArrayView<ushort>, HalfGemvShape, int>(HalfGemvKernels.GemvReduce16);
            reduce(new KernelConfig(4, 32), partialView, biasView, cView, g, bf16 ? 1 : 0);
            acc.Synchronize();
        }

        var got = ToFloat(cBuffer.GetAsArray1D(), bf16);
        AssertClose(got, Reference(av, bv, m, k, n, transposeB, 0.5f, 2f, biasv, false), Rtol(bf16), Atol * k, $"warp-32 GEMV ({F(bf16)})", seed);
    }

    private static string CompilePtx(System.Reflection.MethodInfo method)
    {
        return Sm90Ptx.Of(method);
    }

    [Fact]
    public void PtxLoadsTheWeightSixteenBytesAtATimeWithoutLocalMemory()
    {
        var kernels = new[]
        {
            typeof(HalfGemvKernels).GetMethod(nameof(HalfGemvKernels.GemvNk16Row))!.MakeGenericMethod(typeof(Float16Storage)),
            typeof(HalfGemvKernels).GetMethod(nameof(HalfGemvKernels.GemvNk16))!.MakeGenericMethod(typeof(Const4), typeof(BFloat16Storage)),
            typeof(HalfGemvKernels).GetMethod(nameof(HalfGemvKernels.GemvNk16))!.MakeGenericMethod(typeof(Const16), typeof(BFloat16Storage)),
            typeof(HalfGemvKernels).GetMethod(nameof(HalfGemvKernels.GemvKn16))!.MakeGenericMethod(typeof(Const1), typeof(BFloat16Storage)),
            typeof(HalfGemvKernels).GetMethod(nameof(HalfGemvKernels.GemvKn16))!.MakeGenericMethod(typeof(Const8), typeof(Float16Storage)),
        };
        foreach (var kernel in kernels)
        {
            string ptx = CompilePtx(kernel);
            int vectorLoads = Regex.Matches(ptx, @"ld\.global(\.nc)?\.v4\.(u32|b32)").Count;
            int local = Regex.Matches(PtxLocalSlots.WithoutConversionSlots(ptx), @"(ld|st)\.local").Count;
            output.WriteLine($"{kernel.Name}<{string.Join(",", kernel.GetGenericArguments().Select(t => t.Name))}>: {vectorLoads} v4 loads, {local} local accesses, {ptx.Length} chars");
            Assert.True(vectorLoads >= 2, $"{kernel.Name}: expected 16-byte weight loads, found {vectorLoads}");
            Assert.Equal(0, local);
        }
    }
}
