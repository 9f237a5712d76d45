using System;
using System.Linq;
using System.Runtime.CompilerServices;
using GemsInjector.Kernels.Numerics;
using TorchSharp;
using Xunit;

namespace GemsInjector.Kernels.Tests;

/// <summary>
/// Inputs and checks for the dtype-generic tensor kernels (float32, float16, bfloat16).
/// Tolerance (FlagGems): |actual - expected| &lt;= atol + rtol * |expected|, where expected is the float64 reference
/// rounded to the dtype (or TorchSharp's own result in that dtype), rtol = 1.3e-6 (float32), 1e-3 (float16),
/// 1.6e-2 (bfloat16); atol = 1e-6 for elementwise operators and softmax, 1e-4 * (reduced length) for the norms.
/// </summary>
internal static class Typed
{
    public static readonly torch.ScalarType[] All = { torch.ScalarType.Float32, torch.ScalarType.Float16, torch.ScalarType.BFloat16 };

    public static double Rtol(torch.ScalarType dtype) => dtype switch
    {
        torch.ScalarType.Float32 => TestData.Float32Rtol,
        torch.ScalarType.Float16 => 1e-3,
        _ => 1.6e-2,
    };

    public static long Count(long[] shape) => shape.Aggregate(1L, (a, b) => a * b);

    /// <summary>A tensor of <paramref name="dtype"/> holding <paramref name="values"/> rounded to it.</summary>
    public static torch.Tensor Tensor(float[] values, torch.ScalarType dtype, params long[] shape)
    {
        using torch.Tensor wide = torch.tensor(values, shape, torch.ScalarType.Float32);
        return wide.to_type(dtype);
    }

    /// <summary>The elements widened to float32 (exact), row-major.</summary>
    public static float[] Values(torch.Tensor tensor)
    {
        using torch.Tensor wide = tensor.to_type(torch.ScalarType.Float32);
        return TestData.ToArray(wide);
    }

    /// <summary>Rounds a float64 reference to the dtype (so the comparison is against what the dtype can hold).</summary>
    public static double[] Round(double[] expected, torch.ScalarType dtype) => dtype switch
    {
        torch.ScalarType.Float32 => expected,
        torch.ScalarType.Float16 => expected.Select(e => (double)(Half)e).ToArray(),
        _ => expected.Select(e => double.IsNaN(e) ? e : (double)BFloat16Bits.ToSingle(BFloat16Bits.FromSingle((float)e))).ToArray(),
    };

    /// <summary>Checks dtype and every element of <paramref name="actual"/> against a float64 reference (rounded to the dtype).</summary>
    public static void AssertClose(
        double[] expected, torch.Tensor actual, torch.ScalarType dtype, double atol, int seed, string what, [CallerMemberName] string test = "")
    {
        Assert.Equal(dtype, actual.dtype);
        TestData.AssertClose(Round(expected, dtype), Values(actual), atol, Rtol(dtype), seed, $"{what} [{dtype}]", test);
    }

    /// <summary>Checks dtype, shape and every element of <paramref name="actual"/> against TorchSharp's result.</summary>
    public static void AssertCloseToTorch(
        torch.Tensor expected, torch.Tensor actual, torch.ScalarType dtype, double atol, int seed, string what, double rtolFactor = 1,
        [CallerMemberName] string test = "")
    {
        Assert.Equal(dtype, actual.dtype);
        Assert.Equal(expected.shape, actual.shape);
        using torch.Tensor converted = expected.to_type(dtype);
        TestData.AssertClose(Values(converted), Values(actual), atol, rtolFactor * Rtol(dtype), seed, $"{what} [{dtype}]", test);
    }
}

/// <summary>More float64 references, written out here.</summary>
internal static class Reference64
{
    public static double Sigmoid(double x) => 1.0 / (1.0 + Math.Exp(-x));

    public static double Silu(double x) => x / (1.0 + Math.Exp(-x));

    public static double GeluErf(double x) => 0.5 * x * Erfc(-x / Math.Sqrt(2.0));

    public static double GeluTanh(double x) => 0.5 * x * (1.0 + Math.Tanh(Math.Sqrt(2.0 / Math.PI) * (x + 0.044715 * x * x * x)));

    public static double Relu(double x) => x < 0 ? 0 : x;

    public static double Rsqrt(double x) => 1.0 / Math.Sqrt(x);

    /// <summary>
    /// erfc in float64: 1 - erf(z) from the all-positive series erf(z) = 2/√π e^(-z²) Σ (2z²)^n z / (2n+1)!! for z &lt; 3,
    /// the continued fraction erfc(z) = e^(-z²)/√π / (z + (1/2)/(z + 1/(z + (3/2)/(z + ...)))) for z ≥ 3, erfc(-z) = 2 - erfc(z).
    /// </summary>
    public static double Erfc(double z)
    {
        if (double.IsNaN(z))
        {
            return z;
        }

        if (z < 0)
        {
            return 2.0 - Erfc(-z);
        }

        if (z < 3)
        {
            double term = z, sum = z;
            for (int n = 1; term > 1e-18 * sum; n++)
            {
                term *= 2 * z * z / (2 * n + 1);
                sum += term;
            }

            return 1.0 - 2.0 / Math.Sqrt(Math.PI) * Math.Exp(-z * z) * sum;
        }

        double fraction = z;
        for (int k = 80; k >= 1; k--)
        {
            fraction = z + k / 2.0 / fraction;
        }

        return Math.Exp(-z * z) / Math.Sqrt(Math.PI) / fraction;
    }

    /// <summary>softmax or log_softmax over the middle dimension of a row-major [outer, length, inner] array.</summary>
    public static double[] Softmax(float[] x, long outer, long length, long inner, bool log)
    {
        var output = new double[x.Length];
        for (long o = 0; o < outer; o++)
        {
            for (long i = 0; i < inner; i++)
            {
                long At(long k) => (o * length + k) * inner + i;
                double max = double.NegativeInfinity;
                for (long k = 0; k < length; k++)
                {
                    max = double.IsNaN(x[At(k)]) ? double.NaN : Math.Max(max, x[At(k)]);
                }

                double sum = 0;
                for (long k = 0; k < length; k++)
                {
                    sum += Math.Exp(x[At(k)] - max);
                }

                for (long k = 0; k < length; k++)
                {
                    output[At(k)] = log ? x[At(k)] - max - Math.Log(sum) : Math.Exp(x[At(k)] - max) / sum;
                }
            }
        }

        return output;
    }

    public static double[] LayerNorm(float[] x, float[]? w, float[]? b, int n, double epsilon)
    {
        var output = new double[x.Length];
        for (int row = 0; row * n < x.Length; row++)
        {
            double mean = 0;
            for (int j = 0; j < n; j++)
            {
                mean += x[row * n + j];
            }

            mean /= n;
            double variance = 0;
            for (int j = 0; j < n; j++)
            {
                double c = x[row * n + j] - mean;
                variance += c * c;
            }

            double rstd = 1.0 / Math.Sqrt(variance / n + epsilon);
            for (int j = 0; j < n; j++)
            {
                output[row * n + j] = (x[row * n + j] - mean) * rstd * (w?[j] ?? 1.0) + (b?[j] ?? 0.0);
            }
        }

        return output;
    }

    public static double[] Gated(float[] x, long half, Func<double, double> activation)
    {
        long rows = half == 0 ? 0 : x.Length / (2 * half);
        var output = new double[rows * half];
        for (long r = 0; r < rows; r++)
        {
            for (long j = 0; j < half; j++)
            {
                output[r * half + j] = activation(x[2 * r * half + j]) * x[2 * r * half + half + j];
            }
        }

        return output;
    }
}
