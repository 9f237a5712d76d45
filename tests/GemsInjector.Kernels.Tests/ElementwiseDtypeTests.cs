using System;
using System.Collections.Generic;
using System.Linq;
using GemsInjector.Kernels.Cpu;
using GemsInjector.TestSupport;
using TorchSharp;
using Xunit;

namespace GemsInjector.Kernels.Tests;

/// <summary>
/// The elementwise tensor kernels (sub, div, neg, exp, rsqrt, relu, sigmoid, tanh, gelu; add, mul, silu) in float32,
/// float16 and bfloat16, each element against a float64 reference (rounded to the dtype) and against TorchSharp's op.
/// </summary>
public class ElementwiseDtypeTests
{
    private static readonly long[][] ShapeList =
    {
        new long[] { 0 }, new long[] { 1 }, new long[] { 3 }, new long[] { 4097 }, new long[] { 1, 4096 },
        new long[] { 3, 4097 }, new long[] { 64, 256 }, new long[] { 2, 0, 5 }, new long[] { 300, 1031 },
    };

    /// <summary>The kernel, TorchSharp's op, the float64 reference and the input scale of each unary operator.</summary>
    private static readonly Dictionary<string, (Func<torch.Tensor, torch.Tensor> Kernel, Func<torch.Tensor, torch.Tensor> Torch, Func<double, double> Reference, double Scale)> UnaryOps = new()
    {
        ["neg"] = (CpuTensorKernels.Neg, t => torch.neg(t), x => -x, 3),
        ["exp"] = (CpuTensorKernels.Exp, t => torch.exp(t), Math.Exp, 3),
        ["rsqrt"] = (CpuTensorKernels.Rsqrt, t => torch.rsqrt(t), Reference64.Rsqrt, 2),
        ["relu"] = (CpuTensorKernels.Relu, t => torch.nn.functional.relu(t), Reference64.Relu, 2),
        ["sigmoid"] = (CpuTensorKernels.Sigmoid, t => torch.sigmoid(t), Reference64.Sigmoid, 6),
        ["tanh"] = (CpuTensorKernels.Tanh, t => torch.tanh(t), Math.Tanh, 2),
        ["gelu_none"] = (t => CpuTensorKernels.Gelu(t, GeluApproximation.None), t => torch.nn.functional.gelu(t, TorchSharp.Modules.GELU.Approximate.none), Reference64.GeluErf, 3),
        ["gelu_tanh"] = (t => CpuTensorKernels.Gelu(t, GeluApproximation.Tanh), t => torch.nn.functional.gelu(t, TorchSharp.Modules.GELU.Approximate.tanh), Reference64.GeluTanh, 3),
        ["silu"] = (CpuTensorKernels.Silu, t => torch.nn.functional.silu(t), Reference64.Silu, 8),
    };

    /// <summary>
    /// atol against TorchSharp: 1e-6, except exact GELU, where aten's vectorized float32 erf (Abramowitz-Stegun 7.1.26,
    /// absolute error ~1.5e-7 in erf) puts torch itself up to ~1.2e-6 away from the float64 value; 4e-6 covers that.
    /// </summary>
    private static double TorchAtol(string op) => op == "gelu_none" ? 4e-6 : TestData.ElementwiseAtol;

    public static IEnumerable<object[]> UnaryCases() =>
        from op in UnaryOps.Keys from dtype in Typed.All from shape in ShapeList select new object[] { op, dtype, shape };

    public static IEnumerable<object[]> BinaryCases() =>
        from op in new[] { "add", "sub", "mul", "div" } from dtype in Typed.All from shape in ShapeList select new object[] { op, dtype, shape };

    [Theory]
    [MemberData(nameof(UnaryCases))]
    public void Unary_matches_float64_and_torch(string op, torch.ScalarType dtype, long[] shape)
    {
        int seed = TestData.NewSeed();
        var (kernel, torchOp, reference, scale) = UnaryOps[op];
        using torch.Tensor input = Typed.Tensor(TestData.Normal(new Random(seed), Typed.Count(shape), scale), dtype, shape);
        float[] x = Typed.Values(input);
        using torch.Tensor actual = kernel(input);
        Assert.Equal(shape, actual.shape);
        Typed.AssertClose(x.Select(v => reference(v)).ToArray(), actual, dtype, TestData.ElementwiseAtol, seed, $"{op} vs float64");
        using torch.Tensor expected = torchOp(input);
        Typed.AssertCloseToTorch(expected, actual, dtype, TorchAtol(op), seed, $"{op} vs torch", rtolFactor: 2);
        Assert.Equal(x, Typed.Values(input)); // the input is left as it was
    }

    [Theory]
    [MemberData(nameof(BinaryCases))]
    public void Binary_matches_float64_and_torch(string op, torch.ScalarType dtype, long[] shape)
    {
        int seed = TestData.NewSeed();
        var random = new Random(seed);
        double alpha = random.NextDouble() * 4 - 2;
        using torch.Tensor self = Typed.Tensor(TestData.Normal(random, Typed.Count(shape), 3), dtype, shape);
        using torch.Tensor other = Typed.Tensor(TestData.Normal(random, Typed.Count(shape), 3), dtype, shape);
        CheckBinary(op, self, other, alpha, dtype, seed);
    }

    private static void CheckBinary(string op, torch.Tensor self, torch.Tensor other, double alpha, torch.ScalarType dtype, int seed)
    {
        // aten's 16-bit CPU add/sub does not round self + alpha * other once: where the terms cancel it is several ulp away
        // from the float64 value (this kernel is not). So for those, torch's op runs on the float32-widened inputs (alpha
        // rounded to the dtype, as aten does) and its result is rounded to the dtype; mul and div run on the 16-bit tensors.
        bool widen = dtype != torch.ScalarType.Float32 && op is "add" or "sub";
        double torchAlpha = Typed.Round(new[] { alpha }, dtype)[0];
        using Scalar torchScale = torchAlpha.ToScalar(), torchNegatedScale = (-torchAlpha).ToScalar();
        using torch.Tensor torchSelf = widen ? self.to_type(torch.ScalarType.Float32) : self.alias();
        using torch.Tensor torchOther = widen ? other.to_type(torch.ScalarType.Float32) : other.alias();
        using torch.Tensor expected = op switch
        {
            "add" => torch.add(torchSelf, torchOther, torchScale),
            "sub" => torch.add(torchSelf, torchOther, torchNegatedScale), // TorchSharp has no sub with alpha; aten::sub is add with -alpha
            "mul" => torch.mul(torchSelf, torchOther),
            _ => torch.div(torchSelf, torchOther),
        };
        long[] shape = expected.shape;
        float[] a = Reference.Broadcast(Typed.Values(self), self.shape, shape);
        float[] b = Reference.Broadcast(Typed.Values(other), other.shape, shape);
        // aten rounds alpha to the tensors' dtype before computing in float32.
        float alpha32 = (float)Typed.Round(new[] { alpha }, dtype)[0];
        Func<double, double, double> reference = op switch
        {
            "add" => (s, o) => s + alpha32 * o,
            "sub" => (s, o) => s - alpha32 * o,
            "mul" => (s, o) => s * o,
            _ => (s, o) => s / o,
        };
        using torch.Tensor actual = op switch
        {
            "add" => CpuTensorKernels.Add(self, other, alpha),
            "sub" => CpuTensorKernels.Sub(self, other, alpha),
            "mul" => CpuTensorKernels.Mul(self, other),
            _ => CpuTensorKernels.Div(self, other),
        };
        Assert.Equal(shape, actual.shape);
        Typed.AssertClose(a.Select((s, i) => reference(s, b[i])).ToArray(), actual, dtype, TestData.ElementwiseAtol, seed, $"{op} alpha={alpha32} vs float64");
        Typed.AssertCloseToTorch(expected, actual, dtype, TestData.ElementwiseAtol, seed, $"{op} vs torch");
    }

    public static IEnumerable<object[]> BroadcastCases() =>
        from op in new[] { "sub", "div", "add", "mul" }
        from dtype in Typed.All
        from pair in new[]
        {
            (new long[] { 4, 5 }, new long[] { 5 }), (new long[] { 4, 1 }, new long[] { 1, 5 }), (new long[] { 5 }, new long[] { 4, 5 }),
            (new long[] { 2, 3, 4 }, new long[] { 3, 1 }), (new long[] { 3, 4 }, new long[0]), (new long[] { 64, 1024 }, new long[] { 1024 }),
        }
        select new object[] { op, dtype, pair.Item1, pair.Item2 };

    [Theory]
    [MemberData(nameof(BroadcastCases))]
    public void Binary_broadcasts_like_aten(string op, torch.ScalarType dtype, long[] selfShape, long[] otherShape)
    {
        int seed = TestData.NewSeed();
        var random = new Random(seed);
        using torch.Tensor self = Typed.Tensor(TestData.Normal(random, Typed.Count(selfShape), 2), dtype, selfShape);
        using torch.Tensor other = Typed.Tensor(TestData.Normal(random, Typed.Count(otherShape), 2), dtype, otherShape);
        CheckBinary(op, self, other, 0.75, dtype, seed);
    }

    [Theory]
    [MemberData(nameof(DtypeCases))]
    public void Non_contiguous_inputs_are_read_correctly(torch.ScalarType dtype)
    {
        int seed = TestData.NewSeed();
        var random = new Random(seed);
        using torch.Tensor baseA = Typed.Tensor(TestData.Normal(random, 37 * 53, 2), dtype, 37, 53);
        using torch.Tensor baseB = Typed.Tensor(TestData.Normal(random, 53 * 74, 2), dtype, 53, 74);
        using torch.Tensor a = baseA.t();                                          // [53, 37], transposed
        using torch.Tensor b = baseB[.., torch.TensorIndex.Slice(null, null, 2)];  // [53, 37], stride 2
        Assert.False(a.is_contiguous());
        Assert.False(b.is_contiguous());
        CheckBinary("sub", a, b, 1.25, dtype, seed);
        CheckBinary("div", b, a, 1, dtype, seed);
        foreach (string op in UnaryOps.Keys)
        {
            var (kernel, torchOp, reference, _) = UnaryOps[op];
            using torch.Tensor actual = kernel(a);
            Typed.AssertClose(Typed.Values(a).Select(v => reference(v)).ToArray(), actual, dtype, TestData.ElementwiseAtol, seed, $"{op} transposed vs float64");
            using torch.Tensor expected = torchOp(a);
            Typed.AssertCloseToTorch(expected, actual, dtype, TorchAtol(op), seed, $"{op} transposed vs torch", rtolFactor: 2);
        }
    }

    public static TheoryData<torch.ScalarType> DtypeCases => new() { torch.ScalarType.Float32, torch.ScalarType.Float16, torch.ScalarType.BFloat16 };

    [Theory]
    [MemberData(nameof(DtypeCases))]
    public void NaN_and_Inf_propagate_like_torch(torch.ScalarType dtype)
    {
        int seed = TestData.NewSeed();
        var random = new Random(seed);
        float[] special = { float.NaN, float.PositiveInfinity, float.NegativeInfinity, 0f, -0f, 88.5f, -88.5f, -100f, 1e-30f, 30f, -30f, 5f, -5f, float.MaxValue };
        int n = special.Length * special.Length;
        float[] x = new float[n], y = new float[n];
        for (int i = 0; i < n; i++)
        {
            x[i] = special[i / special.Length];
            y[i] = special[i % special.Length] * (float)(1 + random.NextDouble());
        }

        using torch.Tensor self = Typed.Tensor(x, dtype, n);
        using torch.Tensor other = Typed.Tensor(y, dtype, n);
        foreach (string op in new[] { "add", "sub", "mul", "div" })
        {
            CheckBinary(op, self, other, 2.0, dtype, seed);
        }

        foreach (string op in UnaryOps.Keys)
        {
            var (kernel, torchOp, reference, _) = UnaryOps[op];
            using torch.Tensor actual = kernel(self);
            Typed.AssertClose(Typed.Values(self).Select(v => reference(v)).ToArray(), actual, dtype, TestData.ElementwiseAtol, seed, $"{op} specials vs float64");
            using torch.Tensor expected = torchOp(self);
            if (op == "gelu_none")
            {
                // aten's vectorized erf-GELU gives NaN at +Inf and overflows to +Inf at float.MaxValue (its erf approximation
                // makes Inf * 0, and it scales before multiplying); GELU(x) = x there, as the float64 reference above and aten's
                // own float16 path say. Compare the other elements (below 1e30, -Inf and NaN included) with torch.
                using torch.Tensor wide = self.to_type(torch.ScalarType.Float32);
                using torch.Tensor huge = wide.gt(HeldScalars.Of(1e30));
                using torch.Tensor finite = huge.logical_not();
                using torch.Tensor expectedFinite = expected.masked_select(finite);
                using torch.Tensor actualFinite = actual.masked_select(finite);
                Assert.True(actualFinite.numel() < actual.numel(), "the specials include +Inf");
                Typed.AssertCloseToTorch(expectedFinite, actualFinite, dtype, TorchAtol(op), seed, $"{op} specials (but +Inf) vs torch", rtolFactor: 2);
                continue;
            }

            Typed.AssertCloseToTorch(expected, actual, dtype, TestData.ElementwiseAtol, seed, $"{op} specials vs torch", rtolFactor: 2);
        }
    }

    [Fact]
    public void Mixed_dtypes_are_rejected_naming_both_arguments_and_dtypes()
    {
        using torch.Tensor single = torch.ones(4);
        using torch.Tensor half = torch.ones(4, torch.ScalarType.Float16);
        using torch.Tensor brain = torch.ones(4, torch.ScalarType.BFloat16);
        foreach (Func<torch.Tensor> call in new Func<torch.Tensor>[]
        {
            () => CpuTensorKernels.Sub(single, half, 1), () => CpuTensorKernels.Div(single, half),
            () => CpuTensorKernels.Add(single, half, 1), () => CpuTensorKernels.Mul(single, half),
        })
        {
            var e = Assert.Throws<ArgumentException>(call);
            Assert.Equal("other", e.ParamName);
            Assert.Contains("'other'", e.Message);
            Assert.Contains("'self'", e.Message);
            Assert.Contains("Float16", e.Message);
            Assert.Contains("Float32", e.Message);
        }

        var error = Assert.Throws<ArgumentException>(() => CpuTensorKernels.Div(brain, half));
        Assert.Contains("BFloat16", error.Message);
        Assert.Contains("Float16", error.Message);

        using torch.Tensor wide = torch.ones(4, torch.ScalarType.Float64);
        error = Assert.Throws<ArgumentException>(() => CpuTensorKernels.Exp(wide));
        Assert.Equal("input", error.ParamName);
        Assert.Contains("Float64", error.Message);
        error = Assert.Throws<ArgumentException>(() => CpuTensorKernels.Sub(wide, single, 1));
        Assert.Equal("self", error.ParamName);
        Assert.Throws<ArgumentNullException>(() => CpuTensorKernels.Tanh(null!));
        var range = Assert.Throws<ArgumentOutOfRangeException>(() => CpuTensorKernels.Gelu(single, (GeluApproximation)7));
        Assert.Equal("approximate", range.ParamName);
    }
}
