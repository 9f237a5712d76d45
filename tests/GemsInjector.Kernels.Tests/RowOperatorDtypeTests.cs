using System;
using System.Collections.Generic;
using System.Linq;
using GemsInjector.Kernels.Cpu;
using GemsInjector.TestSupport;
using TorchSharp;
using Xunit;

namespace GemsInjector.Kernels.Tests;

/// <summary>
/// silu_and_mul, gelu_and_mul, softmax, log_softmax, rms_norm, fused_add_rms_norm and layer_norm in float32, float16 and
/// bfloat16: every element against a float64 reference (rounded to the dtype) and against TorchSharp (its op, or a
/// composition in float32 rounded to the dtype where it has none). atol: 1e-6 for the gated activations and softmax,
/// 1e-4 * n for the norms (FlagGems), rtol per dtype (see <see cref="Typed"/>).
/// </summary>
public class RowOperatorDtypeTests
{
    private static readonly long[][] RowShapes =
    {
        new long[] { 1 }, new long[] { 3 }, new long[] { 4097 }, new long[] { 1, 4096 }, new long[] { 3, 4097 },
        new long[] { 64, 256 }, new long[] { 0, 8 }, new long[] { 2, 3, 5 }, new long[] { 300, 1031 },
    };

    public static IEnumerable<object[]> Cases() => from dtype in Typed.All from shape in RowShapes select new object[] { dtype, shape };

    /// <summary>Gated shapes: the last dimension is 2d.</summary>
    public static IEnumerable<object[]> GatedCases() =>
        from dtype in Typed.All
        from shape in new[] { new long[] { 2 }, new long[] { 6 }, new long[] { 8194 }, new long[] { 1, 8192 }, new long[] { 3, 8194 }, new long[] { 64, 512 }, new long[] { 0, 8 }, new long[] { 2, 3, 10 }, new long[] { 300, 2062 } }
        select new object[] { dtype, shape };

    [Theory]
    [MemberData(nameof(GatedCases))]
    public void Gated_activations_match_float64_and_composed_torch(torch.ScalarType dtype, long[] shape)
    {
        int seed = TestData.NewSeed();
        using torch.Tensor input = Typed.Tensor(TestData.Normal(new Random(seed), Typed.Count(shape), 3), dtype, shape);
        CheckGated(input, dtype, seed);
    }

    private static void CheckGated(torch.Tensor input, torch.ScalarType dtype, int seed)
    {
        long half = input.shape[^1] / 2;
        float[] x = Typed.Values(input);
        using torch.Tensor wide = input.to_type(torch.ScalarType.Float32);
        using torch.Tensor gate = wide.narrow(-1, 0, half);
        using torch.Tensor up = wide.narrow(-1, half, half);
        var activations = new (string Name, Func<torch.Tensor, torch.Tensor> Kernel, Func<double, double> Reference, Func<torch.Tensor, torch.Tensor> Torch)[]
        {
            ("silu_and_mul", CpuTensorKernels.SiluAndMul, Reference64.Silu, t => torch.nn.functional.silu(t)),
            ("gelu_and_mul none", t => CpuTensorKernels.GeluAndMul(t, GeluApproximation.None), Reference64.GeluErf, t => torch.nn.functional.gelu(t)),
            ("gelu_and_mul tanh", t => CpuTensorKernels.GeluAndMul(t, GeluApproximation.Tanh), Reference64.GeluTanh, t => torch.nn.functional.gelu(t, TorchSharp.Modules.GELU.Approximate.tanh)),
        };
        foreach (var (name, kernel, reference, torchActivation) in activations)
        {
            using torch.Tensor actual = kernel(input);
            long[] expectedShape = input.shape.ToArray();
            expectedShape[^1] = half;
            Assert.Equal(expectedShape, actual.shape);
            Typed.AssertClose(Reference64.Gated(x, half, reference), actual, dtype, TestData.ElementwiseAtol, seed, $"{name} vs float64");
            using torch.Tensor activated = torchActivation(gate);
            using torch.Tensor product = activated * up;
            // GELU: aten's float32 erf is ~1.2e-6 off in absolute terms (see ElementwiseDtypeTests), and its tanh form computes
            // 1 + tanh(u), which cancels to 0 below x ≈ -5 where the true value is up to ~1e-7·|x|; both are scaled by |up| ≲ 12.
            double atol = name == "silu_and_mul" ? TestData.ElementwiseAtol : 5e-5;
            Typed.AssertCloseToTorch(product, actual, dtype, atol, seed, $"{name} vs composed torch", rtolFactor: 2);
        }
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Softmax_and_log_softmax_last_dim_match_float64_and_torch(torch.ScalarType dtype, long[] shape)
    {
        int seed = TestData.NewSeed();
        using torch.Tensor input = Typed.Tensor(TestData.Normal(new Random(seed), Typed.Count(shape), 4), dtype, shape);
        CheckSoftmax(input, shape.Length - 1, dtype, seed);
        CheckSoftmax(input, -1, dtype, seed);
    }

    public static IEnumerable<object[]> SoftmaxDimCases() =>
        from dtype in Typed.All
        from c in new (long[] Shape, long Dim)[] { (new long[] { 4, 37, 5 }, 1), (new long[] { 4, 37, 5 }, 0), (new long[] { 4, 37, 5 }, -3), (new long[] { 3, 4097 }, 0), (new long[] { 300, 40 }, 0), (new long[] { 2, 5, 33 }, -2), (new long[0], 0), (new long[0], -1) }
        select new object[] { dtype, c.Shape, c.Dim };

    [Theory]
    [MemberData(nameof(SoftmaxDimCases))]
    public void Softmax_and_log_softmax_on_other_dims_match_float64_and_torch(torch.ScalarType dtype, long[] shape, long dim)
    {
        int seed = TestData.NewSeed();
        using torch.Tensor input = Typed.Tensor(TestData.Normal(new Random(seed), Typed.Count(shape), 4), dtype, shape);
        CheckSoftmax(input, dim, dtype, seed);
    }

    private static void CheckSoftmax(torch.Tensor input, long dim, torch.ScalarType dtype, int seed)
    {
        long[] shape = input.shape;
        int rank = Math.Max(shape.Length, 1);
        int axis = (int)(dim < 0 ? dim + rank : dim);
        long length = shape.Length == 0 ? 1 : shape[axis];
        long inner = shape.Skip(axis + 1).Aggregate(1L, (a, b) => a * b);
        long outer = length * inner == 0 ? 0 : Typed.Count(shape) / (length * inner);
        float[] x = Typed.Values(input);
        foreach (bool log in new[] { false, true })
        {
            string name = log ? "log_softmax" : "softmax";
            using torch.Tensor actual = log ? CpuTensorKernels.LogSoftmax(input, dim) : CpuTensorKernels.Softmax(input, dim);
            Assert.Equal(shape, actual.shape);
            Typed.AssertClose(Reference64.Softmax(x, outer, length, inner, log), actual, dtype, TestData.ElementwiseAtol, seed, $"{name} dim {dim} vs float64");
            // aten's 16-bit CPU log_softmax loses accuracy near 0 (several ulp from the float64 value where x ≈ max + log Σ;
            // this kernel is within one), so for 16-bit log_softmax torch runs on the float32-widened input, rounded after.
            using torch.Tensor torchInput = log && dtype != torch.ScalarType.Float32 ? input.to_type(torch.ScalarType.Float32) : input.alias();
            using torch.Tensor expected = log ? torch.nn.functional.log_softmax(torchInput, dim) : torch.nn.functional.softmax(torchInput, dim);
            // aten's float32 log_softmax accumulates Σ e^(x - max) in float32: near 0 it is up to ~1.5e-6 off in absolute terms
            // (this kernel accumulates in float64 and meets atol 1e-6 against the float64 reference above), so 4e-6 against torch.
            double torchAtol = log ? 4e-6 : TestData.ElementwiseAtol;
            Typed.AssertCloseToTorch(expected, actual, dtype, torchAtol, seed, $"{name} dim {dim} vs torch", rtolFactor: 2);
        }
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Rms_norm_matches_float64_and_composed_torch(torch.ScalarType dtype, long[] shape)
    {
        int seed = TestData.NewSeed();
        var random = new Random(seed);
        long n = shape[^1];
        using torch.Tensor input = Typed.Tensor(TestData.Normal(random, Typed.Count(shape), 2), dtype, shape);
        using torch.Tensor weight = Typed.Tensor(TestData.Normal(random, n), dtype, n);
        using torch.Tensor actual = CpuTensorKernels.RmsNorm(input, weight, 1e-6);
        Assert.Equal(shape, actual.shape);
        Typed.AssertClose(Reference.RmsNorm(Typed.Values(input), Typed.Values(weight), (int)n, 1e-6), actual, dtype, TestData.ReductionAtol(n), seed, "rms_norm vs float64");
        using torch.Tensor expected = ComposedRmsNorm(input, weight, 1e-6);
        Typed.AssertCloseToTorch(expected, actual, dtype, TestData.ReductionAtol(n), seed, "rms_norm vs composed torch");
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Fused_add_rms_norm_updates_both_in_place(torch.ScalarType dtype, long[] shape)
    {
        int seed = TestData.NewSeed();
        var random = new Random(seed);
        long n = shape[^1];
        using torch.Tensor input = Typed.Tensor(TestData.Normal(random, Typed.Count(shape), 2), dtype, shape);
        using torch.Tensor residual = Typed.Tensor(TestData.Normal(random, Typed.Count(shape), 2), dtype, shape);
        using torch.Tensor weight = Typed.Tensor(TestData.Normal(random, n), dtype, n);
        float[] x = Typed.Values(input), r = Typed.Values(residual);

        // Composed torch reference: residual + input in the dtype (one rounding), then rms_norm in float32, rounded to the dtype.
        using torch.Tensor expectedResidual = residual.add(input, HeldScalars.One);
        using torch.Tensor expectedOutput = ComposedRmsNorm(expectedResidual, weight, 1e-5);
        IntPtr inputData = input.Handle, residualData = residual.Handle;
        CpuTensorKernels.FusedAddRmsNorm(input, residual, weight, 1e-5);
        Assert.Equal(inputData, input.Handle);
        Assert.Equal(residualData, residual.Handle);

        // float64 reference: the sum rounded to the dtype (as stored), then rms_norm of the stored sum.
        double[] sum = Typed.Round(x.Select((v, i) => (double)v + r[i]).ToArray(), dtype);
        Typed.AssertClose(sum, residual, dtype, TestData.ElementwiseAtol, seed, "residual vs float64");
        Typed.AssertClose(
            Reference.RmsNorm(sum.Select(v => (float)v).ToArray(), Typed.Values(weight), (int)n, 1e-5), input, dtype, TestData.ReductionAtol(n), seed, "output vs float64");
        Typed.AssertCloseToTorch(expectedResidual, residual, dtype, TestData.ElementwiseAtol, seed, "residual vs torch");
        Typed.AssertCloseToTorch(expectedOutput, input, dtype, TestData.ReductionAtol(n), seed, "output vs composed torch");
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Layer_norm_matches_float64_and_torch(torch.ScalarType dtype, long[] shape)
    {
        int seed = TestData.NewSeed();
        var random = new Random(seed);
        long n = shape[^1];
        float[] values = TestData.Normal(random, Typed.Count(shape), 2).Select(v => v + 3f).ToArray(); // a non-zero mean
        using torch.Tensor input = Typed.Tensor(values, dtype, shape);
        using torch.Tensor weight = Typed.Tensor(TestData.Normal(random, n), dtype, n);
        using torch.Tensor bias = Typed.Tensor(TestData.Normal(random, n), dtype, n);
        float[] x = Typed.Values(input), w = Typed.Values(weight), b = Typed.Values(bias);
        double atol = TestData.ReductionAtol(n);
        foreach (var (useWeight, useBias) in new[] { (true, true), (true, false), (false, true), (false, false) })
        {
            string what = $"layer_norm weight={useWeight} bias={useBias}";
            using torch.Tensor actual = CpuTensorKernels.LayerNorm(input, useWeight ? weight : null, useBias ? bias : null, 1e-5);
            Assert.Equal(shape, actual.shape);
            Typed.AssertClose(Reference64.LayerNorm(x, useWeight ? w : null, useBias ? b : null, (int)n, 1e-5), actual, dtype, atol, seed, $"{what} vs float64");
            using torch.Tensor wideInput = input.to_type(torch.ScalarType.Float32);
            using torch.Tensor wideWeight = weight.to_type(torch.ScalarType.Float32);
            using torch.Tensor wideBias = bias.to_type(torch.ScalarType.Float32);
            using torch.Tensor expected = torch.nn.functional.layer_norm(wideInput, new[] { n }, useWeight ? wideWeight : null, useBias ? wideBias : null, 1e-5);
            Typed.AssertCloseToTorch(expected, actual, dtype, atol, seed, $"{what} vs torch (float32, rounded)");
        }
    }

    /// <summary>TorchSharp has no rms_norm: x * rsqrt(mean(x², -1) + eps) * weight in float32, rounded to the input's dtype.</summary>
    private static torch.Tensor ComposedRmsNorm(torch.Tensor input, torch.Tensor weight, double epsilon)
    {
        using var x = input.to_type(torch.ScalarType.Float32);
        using var w = weight.to_type(torch.ScalarType.Float32);
        using var squares = x.pow(HeldScalars.Of(2));
        using var mean = squares.mean(new long[] { -1 }, keepdim: true);
        using var shifted = mean.add(HeldScalars.Of(epsilon), HeldScalars.One);
        using var scale = torch.rsqrt(shifted);
        using var normalized = x * scale;
        using var product = normalized * w;
        return product.to_type(input.dtype);
    }

    [Theory]
    [MemberData(nameof(DtypeCases))]
    public void Non_contiguous_inputs_and_special_values(torch.ScalarType dtype)
    {
        int seed = TestData.NewSeed();
        var random = new Random(seed);
        using torch.Tensor baseInput = Typed.Tensor(TestData.Normal(random, 38 * 53, 2), dtype, 38, 53);
        using torch.Tensor transposed = baseInput.t(); // [53, 38], not contiguous
        using torch.Tensor weightBase = Typed.Tensor(TestData.Normal(random, 76), dtype, 76);
        using torch.Tensor weight = weightBase[torch.TensorIndex.Slice(null, null, 2)]; // [38], stride 2
        Assert.False(transposed.is_contiguous());
        CheckGated(transposed, dtype, seed);
        CheckSoftmax(transposed, -1, dtype, seed);
        CheckSoftmax(transposed, 0, dtype, seed);
        float[] x = Typed.Values(transposed), w = Typed.Values(weight);
        using (torch.Tensor actual = CpuTensorKernels.LayerNorm(transposed, weight, weight, 1e-5))
        {
            Typed.AssertClose(Reference64.LayerNorm(x, w, w, 38, 1e-5), actual, dtype, TestData.ReductionAtol(38), seed, "layer_norm transposed vs float64");
        }

        using (torch.Tensor actual = CpuTensorKernels.RmsNorm(transposed, weight, 1e-5))
        {
            Typed.AssertClose(Reference.RmsNorm(x, w, 38, 1e-5), actual, dtype, TestData.ReductionAtol(38), seed, "rms_norm transposed vs float64");
        }

        // NaN / ±Inf rows: softmax as torch (a NaN or +Inf makes its row NaN; -Inf is a zero weight), norms as float64.
        float[] special = { 1f, float.NaN, -2f, 0.5f, float.PositiveInfinity, 3f, float.NegativeInfinity, 1f, -1f, 2f, 0f, 4f };
        using torch.Tensor rows = Typed.Tensor(special, dtype, 3, 4);
        CheckSoftmax(rows, -1, dtype, seed);
        CheckSoftmax(rows, 0, dtype, seed);
        using torch.Tensor ones = Typed.Tensor(new[] { 1f, 1f, 1f, 1f }, dtype, 4);
        using (torch.Tensor actual = CpuTensorKernels.RmsNorm(rows, ones, 1e-6))
        using (torch.Tensor expected = ComposedRmsNorm(rows, ones, 1e-6))
        {
            Typed.AssertCloseToTorch(expected, actual, dtype, TestData.ReductionAtol(4), seed, "rms_norm specials vs torch");
        }

        using (torch.Tensor actual = CpuTensorKernels.LayerNorm(rows, null, null, 1e-6))
        {
            Typed.AssertClose(Reference64.LayerNorm(special, null, null, 4, 1e-6), actual, dtype, TestData.ReductionAtol(4), seed, "layer_norm specials vs float64");
        }
    }

    public static TheoryData<torch.ScalarType> DtypeCases => new() { torch.ScalarType.Float32, torch.ScalarType.Float16, torch.ScalarType.BFloat16 };

    [Fact]
    public void Errors_name_the_argument()
    {
        using torch.Tensor x = torch.ones(4, 6);
        using torch.Tensor w = torch.ones(6);
        using torch.Tensor half = torch.ones(new long[] { 4, 6 }, torch.ScalarType.Float16);
        using torch.Tensor halfWeight = torch.ones(new long[] { 6 }, torch.ScalarType.Float16);

        using torch.Tensor odd = torch.ones(4, 5);
        var e = Assert.Throws<ArgumentException>(() => CpuTensorKernels.SiluAndMul(odd));
        Assert.Equal("input", e.ParamName);
        Assert.Contains("[4, 5]", e.Message);
        e = Assert.Throws<ArgumentException>(() => CpuTensorKernels.GeluAndMul(odd, GeluApproximation.Tanh));
        Assert.Equal("input", e.ParamName);

        var range = Assert.Throws<ArgumentOutOfRangeException>(() => CpuTensorKernels.Softmax(x, 2));
        Assert.Equal("dim", range.ParamName);
        Assert.Contains("[4, 6]", range.Message);
        range = Assert.Throws<ArgumentOutOfRangeException>(() => CpuTensorKernels.LogSoftmax(x, -3));
        Assert.Equal("dim", range.ParamName);

        // In place on a copy would be lost: non-contiguous input or residual is an error.
        using torch.Tensor residual = torch.ones(4, 6);
        using torch.Tensor strided = torch.ones(6, 4).t();
        e = Assert.Throws<ArgumentException>(() => CpuTensorKernels.FusedAddRmsNorm(strided, residual, w, 1e-6));
        Assert.Equal("input", e.ParamName);
        Assert.Contains("contiguous", e.Message);
        e = Assert.Throws<ArgumentException>(() => CpuTensorKernels.FusedAddRmsNorm(x, strided, w, 1e-6));
        Assert.Equal("residual", e.ParamName);
        Assert.Contains("contiguous", e.Message);
        using torch.Tensor shortResidual = torch.ones(3, 6);
        e = Assert.Throws<ArgumentException>(() => CpuTensorKernels.FusedAddRmsNorm(x, shortResidual, w, 1e-6));
        Assert.Equal("residual", e.ParamName);
        Assert.Contains("[3, 6]", e.Message);
        e = Assert.Throws<ArgumentException>(() => CpuTensorKernels.FusedAddRmsNorm(x, x, w, 1e-6));
        Assert.Equal("residual", e.ParamName);
        e = Assert.Throws<ArgumentException>(() => CpuTensorKernels.FusedAddRmsNorm(x, half, w, 1e-6));
        Assert.Equal("residual", e.ParamName);
        Assert.Contains("Float16", e.Message);
        Assert.Contains("Float32", e.Message);

        e = Assert.Throws<ArgumentException>(() => CpuTensorKernels.RmsNorm(half, w, 1e-6));
        Assert.Equal("weight", e.ParamName);
        Assert.Contains("'input'", e.Message);
        Assert.Contains("Float16", e.Message);

        using torch.Tensor wrongWeight = torch.ones(5);
        e = Assert.Throws<ArgumentException>(() => CpuTensorKernels.LayerNorm(x, wrongWeight, null, 1e-5));
        Assert.Equal("weight", e.ParamName);
        Assert.Contains("[5]", e.Message);
        e = Assert.Throws<ArgumentException>(() => CpuTensorKernels.LayerNorm(x, null, wrongWeight, 1e-5));
        Assert.Equal("bias", e.ParamName);
        e = Assert.Throws<ArgumentException>(() => CpuTensorKernels.LayerNorm(half, halfWeight, w, 1e-5));
        Assert.Equal("bias", e.ParamName);
        Assert.Contains("Float32", e.Message);
        Assert.Throws<ArgumentNullException>(() => CpuTensorKernels.Softmax(null!, 0));
    }
}
