using System;
using System.Linq;
using GemsInjector.Kernels.Ilgpu;
using ILGPU;
using ILGPU.Runtime;
using Xunit;

namespace GemsInjector.Kernels.Ilgpu.Tests;

/// <summary>
/// The split-K reduce launches (<see cref="HalfGemvKernels.GemvReduce16"/>, <see cref="GemmFastKernels.GemvReduceF32"/>)
/// on their own: split counts that give one, two, four and eight lanes per output (1–64 splits, some lanes with a short
/// last group of loads), element counts that end inside a warp, grids smaller than the launch wants (grid-stride) and
/// exactly its size, vector and matrix bias, every element against a float64 sum of fresh random partials, outputs
/// poisoned with NaN first; and the bits do not depend on the grid.
/// </summary>
public sealed class SplitKReductionTests : IClassFixture<Warp32SimulatorFixture>
{
    private readonly Accelerator acc;

    public SplitKReductionTests(Warp32SimulatorFixture fixture) => acc = fixture.Accelerator;

    [Theory]
    [InlineData(1, 1, 7, false, 4)]
    [InlineData(3, 3, 37, false, 0)]
    [InlineData(2, 4, 64, true, 4)]
    [InlineData(4, 5, 33, false, 0)]
    [InlineData(5, 9, 41, true, 4)]
    [InlineData(3, 16, 37, false, 0)]
    [InlineData(2, 17, 40, true, 3)]
    [InlineData(1, 35, 33, false, 0)]
    [InlineData(2, 64, 19, false, 2)]
    public void Float32ReduceMatchesFloat64(int m, int splits, int n, bool matrixBias, int groups)
    {
        var (partial, bias) = Inputs(2400 + (m * 100) + splits + n, m, splits, n, matrixBias);
        var g = new GemvShape { M = m, N = n, Splits = splits, Alpha = 0.75f, Beta = -1.25f, HasBias = 1, BiasStrideM = matrixBias ? n : 0 };
        using var partialBuffer = acc.Allocate1D(partial);
        using var biasBuffer = acc.Allocate1D(bias);
        using var c = acc.Allocate1D<float>(m * n);
        float[] actual = ReduceF32(partialBuffer.View, biasBuffer.View, c, g, groups);
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
    [InlineData(8, 16, 36, false, true)]
    [InlineData(3, 33, 18, true, false)]
    public void SixteenBitReduceMatchesFloat64(int m, int splits, int n, bool matrixBias, bool bf16)
    {
        var (partial, biasFloats) = Inputs(2500 + (m * 100) + splits + n + (bf16 ? 1 : 0), m, splits, n, matrixBias);
        ushort[] bias = biasFloats.Select(v => To16(v, bf16)).ToArray();
        var g = new HalfGemvShape { M = m, N = n, Splits = splits, Alpha = 0.75f, Beta = -1.25f, HasBias = 1, BiasStrideM = matrixBias ? n : 0 };
        using var partialBuffer = acc.Allocate1D(partial);
        using var biasBuffer = acc.Allocate1D(bias);
        using var c = acc.Allocate1D(Enumerable.Repeat(bf16 ? (ushort)0x7FC0 : (ushort)0x7E00, m * n).ToArray());
        acc.LoadStreamKernel<ArrayView<float>, ArrayView<ushort>, ArrayView<ushort>, HalfGemvShape, int>(HalfGemvKernels.GemvReduce16)(
            Grid(m * n, splits, 0), partialBuffer.View, biasBuffer.View, c.View, g, bf16 ? 1 : 0);
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

    [Theory]
    [InlineData(5, 1)]
    [InlineData(16, 2)]
    [InlineData(64, 3)]
    public void Float32ReduceBitsDoNotDependOnTheGrid(int splits, int groups)
    {
        const int m = 3, n = 45;
        var (partial, bias) = Inputs(2600 + splits, m, splits, n, false);
        var g = new GemvShape { M = m, N = n, Splits = splits, Alpha = 0.75f, Beta = -1.25f, HasBias = 1 };
        using var partialBuffer = acc.Allocate1D(partial);
        using var biasBuffer = acc.Allocate1D(bias);
        using var c = acc.Allocate1D<float>(m * n);
        float[] small = ReduceF32(partialBuffer.View, biasBuffer.View, c, g, groups);
        float[] whole = ReduceF32(partialBuffer.View, biasBuffer.View, c, g, 0);
        Assert.Equal(whole.Select(BitConverter.SingleToInt32Bits), small.Select(BitConverter.SingleToInt32Bits));
    }

    [Theory]
    [InlineData(1, 32, 1)]
    [InlineData(4, 32, 1)]
    [InlineData(5, 32, 2)]
    [InlineData(8, 32, 2)]
    [InlineData(9, 32, 4)]
    [InlineData(16, 32, 4)]
    [InlineData(17, 32, 8)]
    [InlineData(200, 32, 8)]
    [InlineData(200, 4, 4)]
    public void LanesPerOutputKeepFourLoadsPerLaneWithinTheWarp(int splits, int warpSize, int lanes) =>
        Assert.Equal(lanes, SplitKReduction.LanesPerOutput(splits, warpSize));

    /// <summary>The reduce's launch: <paramref name="groups"/> groups of 32, or (0) as many as <see cref="SplitKReduction.Threads"/> asks.</summary>
    private static KernelConfig Grid(int outputs, int splits, int groups) =>
        new(groups > 0 ? groups : (int)((SplitKReduction.Threads(outputs, splits, 32) + 31) / 32), 32);

    private float[] ReduceF32(ArrayView<float> partial, ArrayView<float> bias, MemoryBuffer1D<float, Stride1D.Dense> c, GemvShape g, int groups)
    {
        c.View.CopyFromCPU(Enumerable.Repeat(float.NaN, g.M * g.N).ToArray());
        acc.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, GemvShape>(GemmFastKernels.GemvReduceF32)(
            Grid(g.M * g.N, g.Splits, groups), partial, bias, c.View, g);
        acc.Synchronize();
        return c.GetAsArray1D();
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

    private static ushort To16(float value, bool bf16) =>
        bf16 ? (ushort)((BitConverter.SingleToUInt32Bits(value) + 0x7FFF + ((BitConverter.SingleToUInt32Bits(value) >> 16) & 1)) >> 16) : BitConverter.HalfToUInt16Bits((System.Half)value);

    private static float From16(ushort bits, bool bf16) =>
        bf16 ? BitConverter.UInt32BitsToSingle((uint)bits << 16) : (float)BitConverter.UInt16BitsToHalf(bits);
}
