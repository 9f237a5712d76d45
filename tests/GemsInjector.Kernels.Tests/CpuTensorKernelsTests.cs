using System;
using System.Linq;
using GemsInjector.Kernels.Cpu;
using GemsInjector.TestSupport;
using TorchSharp;
using Xunit;

namespace GemsInjector.Kernels.Tests;

/// <summary>The TorchSharp tensor kernels against float64 references and against TorchSharp's own operators.</summary>
public class CpuTensorKernelsTests
{
    public static TheoryData<long[]> Shapes => new()
    {
        new long[] { 0 }, new long[] { 1 }, new long[] { 3 }, new long[] { 4097 }, new long[] { 1, 4096 },
        new long[] { 3, 4097 }, new long[] { 64, 256 }, new long[] { 2, 0, 5 }, new long[] { 300, 1031 },
    };

    public static TheoryData<long[]> RmsShapes => new()
    {
        new long[] { 1 }, new long[] { 3 }, new long[] { 4097 }, new long[] { 1, 4096 }, new long[] { 3, 4097 },
        new long[] { 64, 256 }, new long[] { 0, 8 }, new long[] { 2, 3, 5 }, new long[] { 300, 1031 },
    };

    private static long Count(long[] shape) => shape.Aggregate(1L, (a, b) => a * b);

    [Theory]
    [MemberData(nameof(Shapes))]
    public void Add_matches_reference_and_torch(long[] shape)
    {
        int seed = TestData.NewSeed();
        var random = new Random(seed);
        float[] a = TestData.Normal(random, Count(shape));
        float[] b = TestData.Normal(random, Count(shape));
        double alpha = random.NextDouble() * 4 - 2;
        using torch.Tensor self = TestData.Tensor(a, shape);
        using torch.Tensor other = TestData.Tensor(b, shape);
        using torch.Tensor result = CpuTensorKernels.Add(self, other, alpha);
        Assert.Equal(shape, result.shape);
        Assert.Equal(torch.ScalarType.Float32, result.dtype);
        float[] actual = TestData.ToArray(result);
        TestData.AssertClose(Reference.Add(a, b, (float)alpha), actual, TestData.ElementwiseAtol, TestData.Float32Rtol, seed, "add vs float64");
        using Scalar heldAlpha = alpha.ToScalar();
        using torch.Tensor expected = torch.add(self, other, heldAlpha);
        TestData.AssertClose(TestData.ToArray(expected), actual, TestData.ElementwiseAtol, TestData.Float32Rtol, seed, "add vs torch.add");
    }

    [Theory]
    [MemberData(nameof(Shapes))]
    public void Mul_matches_reference_and_torch(long[] shape)
    {
        int seed = TestData.NewSeed();
        var random = new Random(seed);
        float[] a = TestData.Normal(random, Count(shape), 3);
        float[] b = TestData.Normal(random, Count(shape), 3);
        using torch.Tensor self = TestData.Tensor(a, shape);
        using torch.Tensor other = TestData.Tensor(b, shape);
        using torch.Tensor result = CpuTensorKernels.Mul(self, other);
        Assert.Equal(shape, result.shape);
        float[] actual = TestData.ToArray(result);
        TestData.AssertClose(Reference.Mul(a, b), actual, TestData.ElementwiseAtol, TestData.Float32Rtol, seed, "mul vs float64");
        using torch.Tensor expected = torch.mul(self, other);
        TestData.AssertClose(TestData.ToArray(expected), actual, TestData.ElementwiseAtol, TestData.Float32Rtol, seed, "mul vs torch.mul");
    }

    [Theory]
    [MemberData(nameof(Shapes))]
    public void Silu_matches_reference_and_torch(long[] shape)
    {
        int seed = TestData.NewSeed();
        float[] x = TestData.Normal(new Random(seed), Count(shape), 8);
        using torch.Tensor input = TestData.Tensor(x, shape);
        using torch.Tensor result = CpuTensorKernels.Silu(input);
        Assert.Equal(shape, result.shape);
        float[] actual = TestData.ToArray(result);
        TestData.AssertClose(Reference.Silu(x), actual, TestData.ElementwiseAtol, TestData.Float32Rtol, seed, "silu vs float64");
        using torch.Tensor expected = torch.nn.functional.silu(input);
        TestData.AssertClose(TestData.ToArray(expected), actual, TestData.ElementwiseAtol, 2 * TestData.Float32Rtol, seed, "silu vs nn.functional.silu");
    }

    [Theory]
    [MemberData(nameof(RmsShapes))]
    public void RmsNorm_matches_reference_and_composed_torch(long[] shape)
    {
        int seed = TestData.NewSeed();
        var random = new Random(seed);
        long columns = shape[^1];
        float[] x = TestData.Normal(random, Count(shape), 2);
        float[] w = TestData.Normal(random, columns);
        double epsilon = 1e-6;
        using torch.Tensor input = TestData.Tensor(x, shape);
        using torch.Tensor weight = TestData.Tensor(w, columns);
        using torch.Tensor result = CpuTensorKernels.RmsNorm(input, weight, epsilon);
        Assert.Equal(shape, result.shape);
        float[] actual = TestData.ToArray(result);
        double atol = TestData.ReductionAtol(columns);
        TestData.AssertClose(Reference.RmsNorm(x, w, (int)columns, epsilon), actual, atol, TestData.Float32Rtol, seed, "rms_norm vs float64");
        using torch.Tensor expected = ComposedRmsNorm(input, weight, epsilon);
        TestData.AssertClose(TestData.ToArray(expected), actual, atol, TestData.Float32Rtol, seed, "rms_norm vs composed TorchSharp");
    }

    /// <summary>TorchSharp has no rms_norm: x * rsqrt(mean(x², -1, keepdim) + eps) * weight.</summary>
    private static torch.Tensor ComposedRmsNorm(torch.Tensor input, torch.Tensor weight, double epsilon)
    {
        using var squares = input.pow(HeldScalars.Of(2));
        using var mean = squares.mean(new long[] { -1 }, keepdim: true);
        using var shifted = mean.add(HeldScalars.Of(epsilon), HeldScalars.One);
        using var scale = torch.rsqrt(shifted);
        using var normalized = input * scale;
        return normalized * weight;
    }

    public static TheoryData<long[], long[]> BroadcastShapes => new()
    {
        { new long[] { 4, 5 }, new long[] { 5 } },
        { new long[] { 4, 1 }, new long[] { 1, 5 } },
        { new long[] { 5 }, new long[] { 4, 5 } },
        { new long[] { 2, 3, 4 }, new long[] { 3, 1 } },
        { new long[] { 3, 4 }, new long[0] },
        { new long[] { 64, 1024 }, new long[] { 1024 } },
    };

    [Theory]
    [MemberData(nameof(BroadcastShapes))]
    public void Add_and_mul_broadcast_like_aten(long[] selfShape, long[] otherShape)
    {
        int seed = TestData.NewSeed();
        var random = new Random(seed);
        float[] a = TestData.Normal(random, Count(selfShape));
        float[] b = TestData.Normal(random, Count(otherShape));
        using torch.Tensor self = TestData.Tensor(a, selfShape);
        using torch.Tensor other = TestData.Tensor(b, otherShape);
        using torch.Tensor torchSum = torch.add(self, other, HeldScalars.Of(0.75));
        using torch.Tensor torchProduct = torch.mul(self, other);
        long[] shape = torchSum.shape;
        float[] wideA = Reference.Broadcast(a, selfShape, shape);
        float[] wideB = Reference.Broadcast(b, otherShape, shape);

        using torch.Tensor sum = CpuTensorKernels.Add(self, other, 0.75);
        Assert.Equal(shape, sum.shape);
        TestData.AssertClose(Reference.Add(wideA, wideB, 0.75f), TestData.ToArray(sum), TestData.ElementwiseAtol, TestData.Float32Rtol, seed, "broadcast add vs float64");
        TestData.AssertClose(TestData.ToArray(torchSum), TestData.ToArray(sum), TestData.ElementwiseAtol, TestData.Float32Rtol, seed, "broadcast add vs torch.add");

        using torch.Tensor product = CpuTensorKernels.Mul(self, other);
        Assert.Equal(shape, product.shape);
        TestData.AssertClose(Reference.Mul(wideA, wideB), TestData.ToArray(product), TestData.ElementwiseAtol, TestData.Float32Rtol, seed, "broadcast mul vs float64");
        TestData.AssertClose(TestData.ToArray(torchProduct), TestData.ToArray(product), TestData.ElementwiseAtol, TestData.Float32Rtol, seed, "broadcast mul vs torch.mul");
    }

    [Fact]
    public void Non_contiguous_inputs_are_read_correctly()
    {
        int seed = TestData.NewSeed();
        var random = new Random(seed);
        using torch.Tensor baseA = TestData.Tensor(TestData.Normal(random, 37 * 53), 37, 53);
        using torch.Tensor baseB = TestData.Tensor(TestData.Normal(random, 53 * 37), 53, 37);
        using torch.Tensor a = baseA.t();           // [53, 37], transposed view
        using torch.Tensor b = baseB[.., ..];        // [53, 37], contiguous
        using torch.Tensor weightBase = TestData.Tensor(TestData.Normal(random, 74), 74);
        using torch.Tensor weight = weightBase[torch.TensorIndex.Slice(null, null, 2)]; // [37], stride 2
        Assert.False(a.is_contiguous());
        Assert.False(weight.is_contiguous());

        using (torch.Tensor expected = torch.add(a, b, HeldScalars.Of(-1.5)))
        using (torch.Tensor actual = CpuTensorKernels.Add(a, b, -1.5))
        {
            TestData.AssertClose(TestData.ToArray(expected), TestData.ToArray(actual), TestData.ElementwiseAtol, TestData.Float32Rtol, seed, "add transposed self");
        }

        using (torch.Tensor expected = torch.mul(b, a))
        using (torch.Tensor actual = CpuTensorKernels.Mul(b, a))
        {
            TestData.AssertClose(TestData.ToArray(expected), TestData.ToArray(actual), TestData.ElementwiseAtol, TestData.Float32Rtol, seed, "mul transposed other");
        }

        using (torch.Tensor expected = torch.nn.functional.silu(a))
        using (torch.Tensor actual = CpuTensorKernels.Silu(a))
        {
            TestData.AssertClose(TestData.ToArray(expected), TestData.ToArray(actual), TestData.ElementwiseAtol, 2 * TestData.Float32Rtol, seed, "silu transposed");
        }

        using (torch.Tensor expected = ComposedRmsNorm(a, weight, 1e-5))
        using (torch.Tensor actual = CpuTensorKernels.RmsNorm(a, weight, 1e-5))
        {
            float[] x = TestData.ToArray(a);
            float[] w = TestData.ToArray(weight);
            TestData.AssertClose(Reference.RmsNorm(x, w, 37, 1e-5), TestData.ToArray(actual), TestData.ReductionAtol(37), TestData.Float32Rtol, seed, "rms_norm transposed vs float64");
            TestData.AssertClose(TestData.ToArray(expected), TestData.ToArray(actual), TestData.ReductionAtol(37), TestData.Float32Rtol, seed, "rms_norm transposed vs torch");
        }
    }

    [Fact]
    public void Inputs_are_left_unchanged_and_outputs_are_fresh()
    {
        int seed = TestData.NewSeed();
        float[] x = TestData.Normal(new Random(seed), 100);
        using torch.Tensor input = TestData.Tensor(x, 100);
        using torch.Tensor result = CpuTensorKernels.Silu(input);
        Assert.Equal(x, TestData.ToArray(input));
        Assert.NotEqual(input.Handle, result.Handle);
    }

    [Fact]
    public void NaN_and_Inf_propagate_like_torch()
    {
        int seed = TestData.NewSeed();
        var random = new Random(seed);
        float[] special = { float.NaN, float.PositiveInfinity, float.NegativeInfinity, 0f, 88.5f, -88.5f, -100f, 1e-30f, float.MaxValue };
        int n = special.Length * special.Length;
        float[] a = new float[n], b = new float[n];
        for (int i = 0; i < n; i++)
        {
            a[i] = special[i / special.Length];
            b[i] = special[i % special.Length] * (float)(1 + random.NextDouble());
        }

        using torch.Tensor self = TestData.Tensor(a, n);
        using torch.Tensor other = TestData.Tensor(b, n);
        using (torch.Tensor expected = torch.add(self, other, HeldScalars.Of(2.0)))
        using (torch.Tensor actual = CpuTensorKernels.Add(self, other, 2.0))
        {
            TestData.AssertClose(TestData.ToArray(expected), TestData.ToArray(actual), TestData.ElementwiseAtol, TestData.Float32Rtol, seed, "add specials vs torch");
        }

        using (torch.Tensor expected = torch.mul(self, other))
        using (torch.Tensor actual = CpuTensorKernels.Mul(self, other))
        {
            TestData.AssertClose(TestData.ToArray(expected), TestData.ToArray(actual), TestData.ElementwiseAtol, TestData.Float32Rtol, seed, "mul specials vs torch");
        }

        using (torch.Tensor expected = torch.nn.functional.silu(self))
        using (torch.Tensor actual = CpuTensorKernels.Silu(self))
        {
            TestData.AssertClose(TestData.ToArray(expected), TestData.ToArray(actual), TestData.ElementwiseAtol, 2 * TestData.Float32Rtol, seed, "silu specials vs torch");
        }

        using torch.Tensor rows = TestData.Tensor(a, special.Length, special.Length);
        using torch.Tensor weight = TestData.Tensor(TestData.Normal(random, special.Length), special.Length);
        using (torch.Tensor expected = ComposedRmsNorm(rows, weight, 1e-6))
        using (torch.Tensor actual = CpuTensorKernels.RmsNorm(rows, weight, 1e-6))
        {
            TestData.AssertClose(TestData.ToArray(expected), TestData.ToArray(actual), TestData.ReductionAtol(special.Length), TestData.Float32Rtol, seed, "rms_norm specials vs torch");
        }
    }

    [Fact]
    public void Wrong_dtype_is_rejected_naming_the_argument_and_dtype()
    {
        using torch.Tensor good = torch.ones(4);
        using torch.Tensor wide = torch.ones(4, torch.ScalarType.Float64);
        using torch.Tensor ints = torch.ones(4, torch.ScalarType.Int32);

        var e = Assert.Throws<ArgumentException>(() => CpuTensorKernels.Add(good, wide, 1));
        Assert.Equal("other", e.ParamName);
        Assert.Contains("'other'", e.Message);
        Assert.Contains("Float64", e.Message);

        e = Assert.Throws<ArgumentException>(() => CpuTensorKernels.Mul(ints, good));
        Assert.Equal("self", e.ParamName);
        Assert.Contains("Int32", e.Message);

        e = Assert.Throws<ArgumentException>(() => CpuTensorKernels.Silu(wide));
        Assert.Equal("input", e.ParamName);
        Assert.Contains("Float64", e.Message);

        e = Assert.Throws<ArgumentException>(() => CpuTensorKernels.RmsNorm(good, wide, 1e-6));
        Assert.Equal("weight", e.ParamName);
        Assert.Contains("Float64", e.Message);
    }

    [Fact]
    public void Non_cpu_device_is_rejected_naming_the_argument_and_device()
    {
        // No CUDA here; libtorch's "meta" device holds shapes without data and is not the CPU.
        using torch.Tensor meta = torch.empty(new long[] { 4 }, torch.ScalarType.Float32, torch.device("meta"));
        using torch.Tensor good = torch.ones(4);
        var e = Assert.Throws<ArgumentException>(() => CpuTensorKernels.Add(good, meta, 1));
        Assert.Equal("other", e.ParamName);
        Assert.Contains("'other'", e.Message);
        Assert.Contains("meta", e.Message);

        e = Assert.Throws<ArgumentException>(() => CpuTensorKernels.Silu(meta));
        Assert.Equal("input", e.ParamName);
        Assert.Contains("meta", e.Message);
    }

    [Fact]
    public void Shape_errors_name_the_argument_and_both_shapes()
    {
        using torch.Tensor a = torch.ones(4, 5);
        using torch.Tensor b = torch.ones(4);
        var e = Assert.Throws<ArgumentException>(() => CpuTensorKernels.Add(a, b, 1));
        Assert.Equal("other", e.ParamName);
        Assert.Contains("[4, 5]", e.Message);
        Assert.Contains("[4]", e.Message);

        e = Assert.Throws<ArgumentException>(() => CpuTensorKernels.Mul(a, b));
        Assert.Equal("other", e.ParamName);

        using torch.Tensor weight = torch.ones(4);
        e = Assert.Throws<ArgumentException>(() => CpuTensorKernels.RmsNorm(a, weight, 1e-6));
        Assert.Equal("weight", e.ParamName);
        Assert.Contains("[4]", e.Message);
        Assert.Contains("[4, 5]", e.Message);
        Assert.Contains("5", e.Message);

        using torch.Tensor matrixWeight = torch.ones(1, 5);
        e = Assert.Throws<ArgumentException>(() => CpuTensorKernels.RmsNorm(a, matrixWeight, 1e-6));
        Assert.Equal("weight", e.ParamName);
        Assert.Contains("[1, 5]", e.Message);

        using torch.Tensor scalar = torch.tensor(2f);
        e = Assert.Throws<ArgumentException>(() => CpuTensorKernels.RmsNorm(scalar, weight, 1e-6));
        Assert.Equal("input", e.ParamName);

        Assert.Throws<ArgumentNullException>(() => CpuTensorKernels.Silu(null!));
    }

    [Fact]
    public void Backend_name_is_cpu()
    {
        Assert.Equal("cpu", KernelBackends.Cpu);
        Assert.Equal(KernelBackends.Cpu, CpuTensorKernels.BackendName);
        Assert.Equal(KernelBackends.Cpu, CpuKernels.BackendName);
    }
}
