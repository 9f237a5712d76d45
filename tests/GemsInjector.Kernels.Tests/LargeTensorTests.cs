using System;
using GemsInjector.Kernels.Cpu;
using TorchSharp;
using Xunit;
using static GemsInjector.Kernels.Tests.HostileInput;

namespace GemsInjector.Kernels.Tests;

/// <summary>
/// Tensors of 2^31 elements and more. The refusals use expanded views (stride 0): their element count passes int.MaxValue while
/// they hold one element, so they cost nothing; each must be refused before any copy is made, naming the argument and the size.
/// The full-size runs allocate gigabytes and run only when GEMS_LARGE_TENSOR_TESTS=1.
/// </summary>
public sealed class LargeTensorTests
{
    private const long Beyond = (long)int.MaxValue + 3;
    internal const string LargeSkip = "Allocates 2^31+ element tensors (4-8 GiB each) and runs for seconds on 2 cores: set GEMS_LARGE_TENSOR_TESTS=1 to run.";

    [Fact]
    public void NormalizationsRefuseARowLongerThanIntMaxValue()
    {
        using var scope = torch.NewDisposeScope();
        torch.Tensor row = torch.zeros(1, 1, torch.ScalarType.Float16).expand(2, Beyond);
        torch.Tensor weight = torch.zeros(1, torch.ScalarType.Float16).expand(Beyond);
        string size = Beyond.ToString(System.Globalization.CultureInfo.InvariantCulture);
        Refuses(() => CpuTensorKernels.RmsNorm(row, weight, 1e-6), "input", size, int.MaxValue.ToString(System.Globalization.CultureInfo.InvariantCulture));
        Refuses(() => CpuTensorKernels.LayerNorm(row, null, null, 1e-5), "input", size);
        Refuses(() => { CpuTensorKernels.FusedAddRmsNorm(row, row, weight, 1e-6); return null; }, "input", size);
    }

    [Fact]
    public void TopKRefusesADimensionLongerThanIntMaxValue()
    {
        using var scope = torch.NewDisposeScope();
        torch.Tensor input = torch.zeros(1, torch.ScalarType.Float32).expand(Beyond);
        Refuses(() => CpuTensorKernels.TopK(input, 1, 0, true), "input", Beyond.ToString(System.Globalization.CultureInfo.InvariantCulture));
    }

    [Fact]
    public void AttentionRefusesAHeadSizeAboveIntMaxValueBeforeCopying()
    {
        // Before the check the head size was cast to int after a contiguous float32 copy of each operand (8 GiB each here).
        using var scope = torch.NewDisposeScope();
        torch.Tensor wide = torch.zeros(1, 1, 1, 1, torch.ScalarType.Float16).expand(1, 1, 1, Beyond);
        Refuses(() => CpuTensorKernels.ScaledDotProductAttention(wide, wide, wide, null, false, null), "query", Beyond.ToString(System.Globalization.CultureInfo.InvariantCulture));
    }

    [Fact]
    public void RotaryRefusesARotaryDimensionAboveIntMaxValue()
    {
        using var scope = torch.NewDisposeScope();
        long rotary = Beyond + 1; // even
        torch.Tensor cache = torch.zeros(1, 1, torch.ScalarType.Float32).expand(1, rotary);
        torch.Tensor query = torch.zeros(1, 4, torch.ScalarType.Float32);
        Refuses(() => { CpuTensorKernels.RotaryEmbedding(Ints(0), query, null, rotary, cache, true); return null; }, "cosSinCache",
            rotary.ToString(System.Globalization.CultureInfo.InvariantCulture));
    }

    [Fact]
    public void ShapesThatDoNotFitAreRefusedBeforeTheLargeOperandIsCopied()
    {
        // Each call pairs a 2^31+ element expanded view with a small operand whose shape does not fit: the shape check must come
        // first (a contiguous copy of the view would take 4-16 GiB).
        using var scope = torch.NewDisposeScope();
        torch.Tensor huge = torch.zeros(1, 1, torch.ScalarType.Float16).expand(2, Beyond);
        Refuses(() => CpuTensorKernels.Add(huge, torch.zeros(3, 3, torch.ScalarType.Float16), 1), "other", "[3, 3]");
        Refuses(() => CpuTensorKernels.Mm(huge, torch.zeros(3, 3, torch.ScalarType.Float16)), "other", "[3, 3]");
        Refuses(() => CpuTensorKernels.Softmax(huge, 2), "dim", "2");
        Refuses(() => CpuTensorKernels.Sum(huge, 5, false), "dim", "5");
        Refuses(() => CpuTensorKernels.SiluAndMul(torch.zeros(1, 1, torch.ScalarType.Float16).expand(2, Beyond + 1)), "input", "even");
        Refuses(() => { CpuTensorKernels.RotaryEmbedding(torch.zeros(1, torch.ScalarType.Int64).expand(Beyond), torch.zeros(2, 8), null, 8, torch.zeros(4, 8), true); return null; }, "query", "[2, 8]");
    }

    [LargeTensorFact]
    public void NegOfMoreThanIntMaxValueFloat16ElementsIsCorrectNearTheBoundaryAndAtTheEnd()
    {
        long count = Beyond + 61;
        using var scope = torch.NewDisposeScope();
        torch.Tensor input = torch.ones(new[] { count }, torch.ScalarType.Float16);
        long[] probes = { 0, int.MaxValue - 1L, int.MaxValue, (long)int.MaxValue + 1, (long)int.MaxValue + 17, count - 1 };
        long[] untouched = { 1, int.MaxValue - 2L, (long)int.MaxValue + 2, count - 2 };
        for (int i = 0; i < probes.Length; i++)
        {
            input[probes[i]] = torch.tensor(i + 2.5, torch.ScalarType.Float16);
        }

        torch.Tensor output = CpuTensorKernels.Neg(input);
        Assert.Equal(count, output.numel());
        for (int i = 0; i < probes.Length; i++)
        {
            Assert.Equal(-(i + 2.5), output[probes[i]].to(F64).item<double>());
        }

        foreach (long index in untouched)
        {
            Assert.Equal(-1.0, output[index].to(F64).item<double>());
        }
    }

    [LargeTensorFact]
    public void MmWithAnEmptyInnerDimensionClearsAnOutputOfMoreThanIntMaxValueElements()
    {
        // Regression: the zero fill of an empty inner dimension used a Span (int length) and threw OverflowException here.
        using var scope = torch.NewDisposeScope();
        long rows = 65536, columns = (Beyond / rows) + 1;
        torch.Tensor output = CpuTensorKernels.Mm(torch.zeros(rows, 0, torch.ScalarType.Float32), torch.zeros(0, columns, torch.ScalarType.Float32));
        Assert.Equal(new[] { rows, columns }, output.shape);
        foreach (var (row, column) in new[] { (0L, 0L), (rows / 2, columns - 1), (rows - 1, columns - 1) })
        {
            Assert.Equal(0.0, output[row, column].to(F64).item<double>());
        }
    }
}

/// <summary>A fact that runs only when GEMS_LARGE_TENSOR_TESTS=1 (it allocates gigabytes).</summary>
internal sealed class LargeTensorFactAttribute : FactAttribute
{
    public LargeTensorFactAttribute()
    {
        if (Environment.GetEnvironmentVariable("GEMS_LARGE_TENSOR_TESTS") != "1")
        {
            Skip = LargeTensorTests.LargeSkip;
        }
    }
}
