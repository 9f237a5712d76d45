using System;
using System.Linq;
using GemsInjector.Kernels.Ilgpu;
using ILGPU;
using ILGPU.Runtime;
using Xunit;

namespace GemsInjector.Kernels.Ilgpu.Tests;

/// <summary>
/// <see cref="GemmFastKernels.GemvReduceRunsF32"/> and <see cref="HalfGemvKernels.GemvReduceRuns16"/>
/// (<c>GEMS_SPLITK_REDUCE_LOADS=runs</c>): split counts below, at and past the 8 loads requested together and short of a
/// multiple of 8 (1, 3, 5, 7, 8, 9, 13, 16, 17), no, vector and matrix bias, a grid smaller than the runs (the grid-stride
/// loop); every element against a float64 sum of fresh random partials and bit for bit against the element reduces
/// (<see cref="GemmFastKernels.GemvReduceF32"/>, <see cref="HalfGemvKernels.GemvReduce16"/>: the same additions in the same
/// order), outputs poisoned with NaN first.
/// </summary>
public sealed class ReduceRunsTests : IClassFixture<Warp32SimulatorFixture>
{
    private readonly Accelerator acc;

    public ReduceRunsTests(Warp32SimulatorFixture fixture) => acc = fixture.Accelerator;

    [Theory]
    [InlineData(1, 1, 8, 0)]
    [InlineData(3, 3, 36, 1)]
    [InlineData(2, 8, 64, 2)]
    [InlineData(4, 9, 20, 1)]
    [InlineData(5, 16, 44, 2)]
    [InlineData(2, 17, 132, 0)]
    [InlineData(3, 5, 12, 1)]
    [InlineData(2, 7, 28, 2)]
    [InlineData(1, 13, 40, 1)]
    public void RunsMatchFloat64AndTheElementReduce(int m, int splits, int n, int biasKind)
    {
        var random = new Random(Environment.TickCount ^ (m * 7919) ^ (splits * 104729) ^ n);
        float[] partial = Enumerable.Range(0, splits * m * n).Select(_ => (float)((random.NextDouble() * 4) - 2)).ToArray();
        bool matrixBias = biasKind == 2;
        float[] bias = Enumerable.Range(0, matrixBias ? m * n : n).Select(_ => (float)((random.NextDouble() * 2) - 1)).ToArray();
        var g = new GemvShape { M = m, N = n, Splits = splits, Alpha = 0.75f, Beta = -1.25f, HasBias = biasKind != 0 ? 1 : 0, BiasStrideM = matrixBias ? n : 0 };
        using var partialBuffer = acc.Allocate1D(partial);
        using var biasBuffer = acc.Allocate1D(bias);
        using var runs = acc.Allocate1D(Enumerable.Repeat(float.NaN, m * n).ToArray());
        using var elements = acc.Allocate1D(Enumerable.Repeat(float.NaN, m * n).ToArray());
        acc.LoadStreamKernel<ArrayView<Float4>, ArrayView<float>, ArrayView<Float4>, GemvShape>(GemmFastKernels.GemvReduceRunsF32)(
            new KernelConfig(2, 32), partialBuffer.View.BaseView.Cast<Float4>(), biasBuffer.View, runs.View.BaseView.Cast<Float4>(), g);
        acc.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, GemvShape>(GemmFastKernels.GemvReduceF32)(
            new KernelConfig(4, 32), partialBuffer.View, biasBuffer.View, elements.View, g);
        acc.Synchronize();
        float[] actual = runs.GetAsArray1D();
        float[] reference = elements.GetAsArray1D();
        for (int i = 0; i < m * n; i++)
        {
            int row = i / n;
            double expected = 0;
            for (int s = 0; s < splits; s++)
            {
                expected += partial[(s * m * n) + i];
            }

            expected = (0.75 * expected) + (biasKind == 0 ? 0 : -1.25 * bias[matrixBias ? i : i % n]);
            Assert.True(Math.Abs(actual[i] - expected) <= 1e-5 + (1e-5 * Math.Abs(expected)), $"element {i} (row {row}) of {m}x{n}, {splits} splits: {actual[i]}, expected {expected}");
            Assert.Equal(BitConverter.SingleToInt32Bits(reference[i]), BitConverter.SingleToInt32Bits(actual[i]));
        }
    }

    [Theory]
    [InlineData(1, 1, 8, 0, true)]
    [InlineData(3, 5, 36, 1, false)]
    [InlineData(2, 7, 64, 2, true)]
    [InlineData(4, 9, 20, 1, false)]
    [InlineData(2, 13, 44, 2, false)]
    [InlineData(5, 16, 12, 0, true)]
    [InlineData(2, 17, 132, 1, true)]
    public void SixteenBitRunsMatchFloat64AndTheElementReduce(int m, int splits, int n, int biasKind, bool bf16)
    {
        var random = new Random(Environment.TickCount ^ (m * 7919) ^ (splits * 104729) ^ n ^ (bf16 ? 1 : 0));
        float[] partial = Enumerable.Range(0, splits * m * n).Select(_ => (float)((random.NextDouble() * 4) - 2)).ToArray();
        bool matrixBias = biasKind == 2;
        ushort[] bias = Enumerable.Range(0, matrixBias ? m * n : n).Select(_ => SplitKReductionTests.To16((float)((random.NextDouble() * 2) - 1), bf16)).ToArray();
        var g = new HalfGemvShape { M = m, N = n, Splits = splits, Alpha = 0.75f, Beta = -1.25f, HasBias = biasKind != 0 ? 1 : 0, BiasStrideM = matrixBias ? n : 0 };
        ushort nan = bf16 ? (ushort)0x7FC0 : (ushort)0x7E00;
        using var partialBuffer = acc.Allocate1D(partial);
        using var biasBuffer = acc.Allocate1D(bias);
        using var runs = acc.Allocate1D(Enumerable.Repeat(nan, m * n).ToArray());
        using var elements = acc.Allocate1D(Enumerable.Repeat(nan, m * n).ToArray());
        acc.LoadStreamKernel<ArrayView<Float4>, ArrayView<ushort>, ArrayView<ulong>, HalfGemvShape, int>(HalfGemvKernels.GemvReduceRuns16)(
            new KernelConfig(2, 32), partialBuffer.View.BaseView.Cast<Float4>(), biasBuffer.View, runs.View.BaseView.Cast<ulong>(), g, bf16 ? 1 : 0);
        acc.LoadStreamKernel<ArrayView<float>, ArrayView<ushort>, ArrayView<ushort>, HalfGemvShape, int>(HalfGemvKernels.GemvReduce16)(
            new KernelConfig(4, 32), partialBuffer.View, biasBuffer.View, elements.View, g, bf16 ? 1 : 0);
        acc.Synchronize();
        ushort[] actual = runs.GetAsArray1D();
        ushort[] reference = elements.GetAsArray1D();
        double rtol = bf16 ? 1.0 / 128 : 1.0 / 1024;
        for (int i = 0; i < m * n; i++)
        {
            double expected = 0;
            for (int s = 0; s < splits; s++)
            {
                expected += partial[(s * m * n) + i];
            }

            expected = (0.75 * expected) + (biasKind == 0 ? 0 : -1.25 * SplitKReductionTests.From16(bias[matrixBias ? i : i % n], bf16));
            float value = SplitKReductionTests.From16(actual[i], bf16);
            Assert.True(Math.Abs(value - expected) <= 1e-3 + (rtol * Math.Abs(expected)), $"element {i} of {m}x{n}, {splits} splits ({(bf16 ? "bf16" : "f16")}): {value}, expected {expected}");
            Assert.Equal(reference[i], actual[i]);
        }
    }
}
