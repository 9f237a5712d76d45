using System;
using System.Linq;
using GemsInjector.Kernels.Ilgpu;
using ILGPU;
using ILGPU.Runtime;
using Xunit;

namespace GemsInjector.Kernels.Ilgpu.Tests;

/// <summary>
/// The split-K reduce launches (<see cref="HalfGemvKernels.GemvReduce16"/>, <see cref="GemmFastKernels.GemvReduceF32"/>)
/// on their own: split counts below, at and past the four loads requested together (1, 3, 4, 5, 9), vector and matrix
/// bias, every element against a float64 sum of fresh random partials, outputs poisoned with NaN first.
/// </summary>
public sealed class SplitKReductionTests : IClassFixture<Warp32SimulatorFixture>
{
    private readonly Accelerator acc;

    public SplitKReductionTests(Warp32SimulatorFixture fixture) => acc = fixture.Accelerator;

    [Theory]
    [InlineData(1, 1, 7, false)]
    [InlineData(3, 3, 37, false)]
    [InlineData(2, 4, 64, true)]
    [InlineData(4, 5, 33, false)]
    [InlineData(5, 9, 41, true)]
    public void Float32ReduceMatchesFloat64(int m, int splits, int n, bool matrixBias)
    {
        var (partial, bias) = Inputs(2400 + (m * 100) + splits + n, m, splits, n, matrixBias);
        var g = new GemvShape { M = m, N = n, Splits = splits, Alpha = 0.75f, Beta = -1.25f, HasBias = 1, BiasStrideM = matrixBias ? n : 0 };
        using var partialBuffer = acc.Allocate1D(partial);
        using var biasBuffer = acc.Allocate1D(bias);
        using var c = acc.Allocate1D(Enumerable.Repeat(float.NaN, m * n).ToArray());
        acc.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, GemvShape>(GemmFastKernels.GemvReduceF32)(
            new KernelConfig(4, 32), partialBuffer.View, biasBuffer.View, c.View, g);
        acc.Synchronize();
        float[] actual = c.GetAsArray1D();
        double[] expected = Expected(partial, bias, m, splits, n, matrixBias);
        for (int i = 0; i < expected.Length; i++)
        {
            Assert.True(Math.Abs(actual[i] - expected[i]) <= 1e-5 + (1e-5 * Math.Abs(expected[i])), $"element {i} of {m}x{n}, {splits} splits: {actual[i]}, expected {expected[i]}");
        }
    }

    [Theory]
    [InlineData(1, 1, 8, false, true)]
    [InlineData(3, 3, 36, true, false)]
    [InlineData(2, 4, 64, false, true)]
    [InlineData(4, 5, 34, true, true)]
    [InlineData(5, 9, 40, false, false)]
    public void SixteenBitReduceMatchesFloat64(int m, int splits, int n, bool matrixBias, bool bf16)
    {
        var (partial, biasFloats) = Inputs(2500 + (m * 100) + splits + n + (bf16 ? 1 : 0), m, splits, n, matrixBias);
        ushort[] bias = biasFloats.Select(v => To16(v, bf16)).ToArray();
        var g = new HalfGemvShape { M = m, N = n, Splits = splits, Alpha = 0.75f, Beta = -1.25f, HasBias = 1, BiasStrideM = matrixBias ? n : 0 };
        using var partialBuffer = acc.Allocate1D(partial);
        using var biasBuffer = acc.Allocate1D(bias);
        using var c = acc.Allocate1D(Enumerable.Repeat(bf16 ? (ushort)0x7FC0 : (ushort)0x7E00, m * n).ToArray());
        acc.LoadStreamKernel<ArrayView<float>, ArrayView<ushort>, ArrayView<ushort>, HalfGemvShape, int>(HalfGemvKernels.GemvReduce16)(
            new KernelConfig(4, 32), partialBuffer.View, biasBuffer.View, c.View, g, bf16 ? 1 : 0);
        acc.Synchronize();
        ushort[] actual = c.GetAsArray1D();
        double[] expected = Expected(partial, bias.Select(v => From16(v, bf16)).ToArray(), m, splits, n, matrixBias);
        double rtol = bf16 ? 1.0 / 128 : 1.0 / 1024;
        for (int i = 0; i < expected.Length; i++)
        {
            float value = From16(actual[i], bf16);
            Assert.True(Math.Abs(value - expected[i]) <= 1e-3 + (rtol * Math.Abs(expected[i])), $"element {i} of {m}x{n}, {splits} splits ({(bf16 ? "bf16" : "f16")}): {value}, expected {expected[i]}");
        }
    }

    private static (float[] Partial, float[] Bias) Inputs(int seed, int m, int splits, int n, bool matrixBias)
    {
        var random = new Random(seed);
        float[] partial = Enumerable.Range(0, splits * m * n).Select(_ => (float)((random.NextDouble() * 4) - 2)).ToArray();
        float[] bias = Enumerable.Range(0, matrixBias ? m * n : n).Select(_ => (float)((random.NextDouble() * 2) - 1)).ToArray();
        return (partial, bias);
    }

    private static double[] Expected(float[] partial, float[] bias, int m, int splits, int n, bool matrixBias)
    {
        var expected = new double[m * n];
        for (int e = 0; e < expected.Length; e++)
        {
            double sum = 0;
            for (int s = 0; s < splits; s++)
            {
                sum += partial[(s * m * n) + e];
            }

            expected[e] = (0.75 * sum) - (1.25 * bias[matrixBias ? e : e % n]);
        }

        return expected;
    }

    internal static ushort To16(float value, bool bf16) =>
        bf16 ? (ushort)((BitConverter.SingleToUInt32Bits(value) + 0x7FFF + ((BitConverter.SingleToUInt32Bits(value) >> 16) & 1)) >> 16) : BitConverter.HalfToUInt16Bits((System.Half)value);

    internal static float From16(ushort bits, bool bf16) =>
        bf16 ? BitConverter.UInt32BitsToSingle((uint)bits << 16) : (float)BitConverter.UInt16BitsToHalf(bits);

    /// <summary>GEMS_SPLITK_REDUCE: the launch for "launch", the in-place reduce for "fused" / "fused-all", the cluster reduce (the default) for anything else, "cluster" and unset included.</summary>
    [Theory]
    [InlineData(null, (int)SplitKReduce.Cluster)]
    [InlineData("", (int)SplitKReduce.Cluster)]
    [InlineData("launch", (int)SplitKReduce.Launch)]
    [InlineData(" Launch", (int)SplitKReduce.Launch)]
    [InlineData("fused", (int)SplitKReduce.Fused)]
    [InlineData(" Fused ", (int)SplitKReduce.Fused)]
    [InlineData("fuse", (int)SplitKReduce.Cluster)]
    [InlineData("Fused-All", (int)SplitKReduce.FusedAll)]
    [InlineData(" CLUSTER", (int)SplitKReduce.Cluster)]
    [InlineData("clusters", (int)SplitKReduce.Cluster)]
    public void ReduceSwitchParses(string? value, int expected) =>
        Assert.Equal((SplitKReduce)expected, SplitKReduceSettings.Parse(value));

    /// <summary>
    /// The round trips a tile's last group waits on, and so which bench shapes <c>fused</c> takes (H200 plans, limit
    /// <see cref="SplitKReduction.MaxFusedRounds"/>): the wide [K, N] body's 64-column tiles at 1 and 2 rows (8 splits:
    /// 2 rounds per element) in; that body at 4 and 8 rows, the [N, K] kernel's 128-column tiles at 2 rows (16 splits) and
    /// more, and 16 rows of K = 11008 out.
    /// </summary>
    [Theory]
    [InlineData(1 * 64, 8, 2)]
    [InlineData(4 * 64, 8, 4)]
    [InlineData(8 * 64, 8, 8)]
    [InlineData(2 * 128, 16, 8)]
    [InlineData(8 * 128, 16, 32)]
    [InlineData(16 * 128, 16, 64)]
    [InlineData(64 * 128, 8, 128)]
    [InlineData(100, 5, 2)]
    public void LastGroupRoundsCountTheSharePerThread(long tileElements, int splits, long rounds) =>
        Assert.Equal(rounds, SplitKReduction.LastGroupRounds(tileElements, 128, splits));
}
