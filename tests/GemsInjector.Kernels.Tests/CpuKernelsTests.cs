using System;
using GemsInjector.Kernels.Cpu;
using Xunit;

namespace GemsInjector.Kernels.Tests;

/// <summary>The span kernels against float64 references written in <see cref="Reference"/>.</summary>
public class CpuKernelsTests
{
    // 200_003 elements take the multi-threaded path (the threshold is 65_536).
    public static TheoryData<int> Lengths => new() { 0, 1, 3, 15, 16, 17, 4097, 200_003 };

    public static TheoryData<int, int> RowsByColumns => new()
    {
        { 0, 8 }, { 1, 1 }, { 1, 3 }, { 1, 4096 }, { 3, 4097 }, { 64, 256 }, { 7, 17 }, { 300, 1031 },
    };

    [Theory]
    [MemberData(nameof(Lengths))]
    public void Add_matches_reference(int length)
    {
        int seed = TestData.NewSeed();
        var random = new Random(seed);
        float[] self = TestData.Normal(random, length);
        float[] other = TestData.Normal(random, length);
        float alpha = (float)(random.NextDouble() * 4 - 2);
        float[] output = TestData.Poisoned(length);
        CpuKernels.Add(self, other, alpha, output);
        TestData.AssertClose(Reference.Add(self, other, alpha), output, TestData.ElementwiseAtol, TestData.Float32Rtol, seed, $"add n={length} alpha={alpha}");
    }

    [Theory]
    [MemberData(nameof(Lengths))]
    public void Mul_matches_reference(int length)
    {
        int seed = TestData.NewSeed();
        var random = new Random(seed);
        float[] self = TestData.Normal(random, length, 3);
        float[] other = TestData.Normal(random, length, 3);
        float[] output = TestData.Poisoned(length);
        CpuKernels.Mul(self, other, output);
        TestData.AssertClose(Reference.Mul(self, other), output, TestData.ElementwiseAtol, TestData.Float32Rtol, seed, $"mul n={length}");
    }

    [Theory]
    [MemberData(nameof(Lengths))]
    public void Silu_matches_reference(int length)
    {
        int seed = TestData.NewSeed();
        float[] input = TestData.Normal(new Random(seed), length, 8);
        float[] output = TestData.Poisoned(length);
        CpuKernels.Silu(input, output);
        TestData.AssertClose(Reference.Silu(input), output, TestData.ElementwiseAtol, TestData.Float32Rtol, seed, $"silu n={length}");
    }

    [Theory]
    [MemberData(nameof(RowsByColumns))]
    public void RmsNorm_matches_reference(int rows, int columns)
    {
        int seed = TestData.NewSeed();
        var random = new Random(seed);
        float[] input = TestData.Normal(random, (long)rows * columns, 2);
        float[] weight = TestData.Normal(random, columns);
        float epsilon = 1e-6f;
        float[] output = TestData.Poisoned(input.Length);
        CpuKernels.RmsNorm(input, weight, columns, epsilon, output);
        double[] expected = Reference.RmsNorm(input, weight, columns, epsilon);
        TestData.AssertClose(expected, output, TestData.ReductionAtol(columns), TestData.Float32Rtol, seed, $"rms_norm {rows}x{columns}");
        // Tighter than FlagGems' reduction tolerance, to catch small regressions in the accumulation.
        TestData.AssertClose(expected, output, 1e-6, 1e-5, seed, $"rms_norm {rows}x{columns} (tight)");
    }

    [Fact]
    public void Elementwise_kernels_propagate_NaN_and_Inf_as_IEEE()
    {
        int seed = TestData.NewSeed();
        var random = new Random(seed);
        float[] special = { float.NaN, float.PositiveInfinity, float.NegativeInfinity, 0f, -0f, 88.5f, -88.5f, 89f, -89f, 100f, -100f, 1e-30f, -1e-30f, float.MaxValue, float.MinValue };
        // Each special value is paired with every other one, at vector and tail positions (length 225 = 14 vectors + 1).
        int n = special.Length * special.Length;
        float[] a = new float[n], b = new float[n];
        for (int i = 0; i < n; i++)
        {
            a[i] = special[i / special.Length];
            b[i] = special[i % special.Length];
        }

        float alpha = 1 + (float)random.NextDouble();
        float[] output = TestData.Poisoned(n);
        CpuKernels.Add(a, b, alpha, output);
        TestData.AssertClose(Reference.Add(a, b, alpha), output, TestData.ElementwiseAtol, TestData.Float32Rtol, seed, "add specials");

        output = TestData.Poisoned(n);
        CpuKernels.Mul(a, b, output);
        TestData.AssertClose(Reference.Mul(a, b), output, TestData.ElementwiseAtol, TestData.Float32Rtol, seed, "mul specials");

        output = TestData.Poisoned(n);
        CpuKernels.Silu(a, output);
        TestData.AssertClose(Reference.Silu(a), output, TestData.ElementwiseAtol, TestData.Float32Rtol, seed, "silu specials");
        Assert.True(float.IsNaN(output[special.Length * 2]), "silu(-Inf) must be NaN as in aten (-Inf / Inf)");
        Assert.Equal(float.PositiveInfinity, output[special.Length]);
    }

    [Fact]
    public void RmsNorm_propagates_NaN_and_Inf_per_row()
    {
        int seed = TestData.NewSeed();
        var random = new Random(seed);
        const int columns = 37;
        float[] input = TestData.Normal(random, 4 * columns);
        float[] weight = TestData.Normal(random, columns);
        input[0 * columns + 5] = float.NaN;              // row 0: all NaN
        input[1 * columns + 36] = float.PositiveInfinity; // row 1: scale 0, so Inf * 0 = NaN there and ±0 elsewhere
        input[2 * columns + 17] = float.NegativeInfinity;
        float[] output = TestData.Poisoned(input.Length);
        CpuKernels.RmsNorm(input, weight, columns, 1e-5f, output);
        TestData.AssertClose(Reference.RmsNorm(input, weight, columns, 1e-5), output, TestData.ReductionAtol(columns), TestData.Float32Rtol, seed, "rms_norm specials");
        Assert.All(output[..columns], v => Assert.True(float.IsNaN(v)));
        Assert.True(float.IsNaN(output[columns + 36]));
        Assert.Equal(0f, Math.Abs(output[columns]));
    }

    [Fact]
    public void Kernels_work_in_place()
    {
        int seed = TestData.NewSeed();
        var random = new Random(seed);
        float[] x = TestData.Normal(random, 1001);
        float[] y = TestData.Normal(random, 1001);
        float[] weight = TestData.Normal(random, 77);

        float[] buffer = (float[])x.Clone();
        CpuKernels.Add(buffer, y, 0.5f, buffer);
        TestData.AssertClose(Reference.Add(x, y, 0.5f), buffer, TestData.ElementwiseAtol, TestData.Float32Rtol, seed, "add in place");

        buffer = (float[])x.Clone();
        CpuKernels.Mul(buffer, y, buffer);
        TestData.AssertClose(Reference.Mul(x, y), buffer, TestData.ElementwiseAtol, TestData.Float32Rtol, seed, "mul in place");

        buffer = (float[])x.Clone();
        CpuKernels.Silu(buffer, buffer);
        TestData.AssertClose(Reference.Silu(x), buffer, TestData.ElementwiseAtol, TestData.Float32Rtol, seed, "silu in place");

        buffer = x[..(13 * 77)];
        float[] rows = (float[])buffer.Clone();
        CpuKernels.RmsNorm(buffer, weight, 77, 1e-6f, buffer);
        TestData.AssertClose(Reference.RmsNorm(rows, weight, 77, 1e-6), buffer, TestData.ReductionAtol(77), TestData.Float32Rtol, seed, "rms_norm in place");
    }

    [Fact]
    public void Length_mismatches_name_the_argument_and_both_lengths()
    {
        var e = Assert.Throws<ArgumentException>(() => CpuKernels.Add(new float[4], new float[5], 1f, new float[4]));
        Assert.Equal("other", e.ParamName);
        Assert.Contains("5", e.Message);
        Assert.Contains("4", e.Message);

        e = Assert.Throws<ArgumentException>(() => CpuKernels.Mul(new float[4], new float[4], new float[3]));
        Assert.Equal("destination", e.ParamName);
        Assert.Contains("3", e.Message);

        e = Assert.Throws<ArgumentException>(() => CpuKernels.Silu(new float[6], new float[7]));
        Assert.Equal("destination", e.ParamName);
        Assert.Contains("7", e.Message);
        Assert.Contains("6", e.Message);

        e = Assert.Throws<ArgumentException>(() => CpuKernels.RmsNorm(new float[12], new float[3], 4, 1e-6f, new float[12]));
        Assert.Equal("weight", e.ParamName);
        Assert.Contains("3", e.Message);
        Assert.Contains("4", e.Message);

        e = Assert.Throws<ArgumentException>(() => CpuKernels.RmsNorm(new float[10], new float[4], 4, 1e-6f, new float[10]));
        Assert.Equal("input", e.ParamName);
        Assert.Contains("10", e.Message);

        var range = Assert.Throws<ArgumentOutOfRangeException>(() => CpuKernels.RmsNorm(new float[10], Array.Empty<float>(), 0, 1e-6f, new float[10]));
        Assert.Equal("rowLength", range.ParamName);
    }

    [Fact]
    public void Partial_overlap_of_destination_and_input_is_rejected()
    {
        float[] buffer = new float[40];
        var e = Assert.Throws<ArgumentException>(() => CpuKernels.Silu(buffer.AsSpan(0, 32), buffer.AsSpan(4, 32)));
        Assert.Equal("destination", e.ParamName);
        Assert.Contains("input", e.Message);
    }
}
