using System;
using System.Linq;
using System.Runtime.CompilerServices;
using GemsInjector.TestSupport;
using TorchSharp;
using Xunit;

namespace GemsInjector.Kernels.Tests;

/// <summary>
/// dtype-aware helpers for the matmul, attention, rotary, embedding and reduction tests. Tolerances (FlagGems):
/// |actual - expected| &lt;= atol + rtol * |expected| with rtol 1.3e-6 (float32), 1e-3 (float16), 1.6e-2 (bfloat16) and
/// atol = 1e-4 * (reduced length): k for GEMM, Lk * D for attention, the reduced element count for sum/mean.
/// Inputs are drawn in float32 and rounded to the dtype; the float64 references read the rounded values.
/// </summary>
internal static class KernelTestData
{
    public static readonly torch.ScalarType[] FloatTypes = { torch.ScalarType.Float32, torch.ScalarType.Float16, torch.ScalarType.BFloat16 };

    public static double Rtol(torch.ScalarType dtype) => dtype switch
    {
        torch.ScalarType.Float16 => 1e-3,
        torch.ScalarType.BFloat16 => 1.6e-2,
        _ => TestData.Float32Rtol,
    };

    public static long Count(params long[] shape) => shape.Aggregate(1L, (a, b) => a * b);

    /// <summary>A tensor of <paramref name="dtype"/> from float32 values (rounded to the dtype).</summary>
    public static torch.Tensor Make(float[] values, long[] shape, torch.ScalarType dtype)
    {
        using torch.Tensor wide = TestData.Tensor(values, shape);
        return wide.to(dtype);
    }

    /// <summary>The elements of any floating tensor as float32 (exact for float16/bfloat16), row-major.</summary>
    public static float[] Values(torch.Tensor tensor)
    {
        if (tensor.numel() == 0)
        {
            return Array.Empty<float>();
        }

        using torch.Tensor wide = tensor.to(torch.ScalarType.Float32);
        return TestData.ToArray(wide);
    }

    /// <summary>Random normal values, rounded to <paramref name="dtype"/> and made into a tensor; returns the rounded values too.</summary>
    public static (torch.Tensor Tensor, float[] Values) Random(Random random, torch.ScalarType dtype, double scale, params long[] shape)
    {
        torch.Tensor tensor = Make(TestData.Normal(random, Count(shape), scale), shape, dtype);
        return (tensor, Values(tensor));
    }

    /// <summary>
    /// Frees a block of memory filled with the poison NaN (bit pattern in every dtype) so that the next output of the same size
    /// likely reuses it: an element the kernel never writes then fails the comparison (poison is NaN, never close).
    /// </summary>
    public static void PoisonHeap(long elements, torch.ScalarType dtype)
    {
        if (elements <= 0)
        {
            return;
        }

        using torch.Tensor poison = torch.full(new[] { elements }, HeldScalars.Of(TestData.Poison), torch.ScalarType.Float32);
        using torch.Tensor typed = poison.to(dtype);
    }

    public static void AssertClose(
        double[] expected, torch.Tensor actual, double atol, torch.ScalarType dtype, int seed, string what, [CallerMemberName] string test = "")
    {
        Assert.Equal(dtype, actual.dtype);
        float[] values = Values(actual);
        double rtol = Rtol(dtype);
        TestData.AssertClose(expected, values, atol, rtol, seed, $"{what} [{dtype}]", test);
    }

    public static void AssertClose(
        torch.Tensor expected, torch.Tensor actual, double atol, torch.ScalarType dtype, int seed, string what, [CallerMemberName] string test = "")
    {
        Assert.Equal(expected.shape, actual.shape);
        float[] e = Values(expected);
        TestData.AssertClose(e.Select(x => (double)x).ToArray(), Values(actual), atol, Rtol(dtype), seed, $"{what} [{dtype}]", test);
    }
}
