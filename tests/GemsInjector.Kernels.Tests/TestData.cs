using System;
using System.Globalization;
using System.Linq;
using System.Runtime.CompilerServices;
using TorchSharp;
using Xunit;

namespace GemsInjector.Kernels.Tests;

/// <summary>
/// Random inputs, poisoned outputs and closeness checks shared by the accuracy tests.
/// Tolerance (FlagGems float32): |actual - expected| &lt;= atol + rtol * |expected|, rtol = 1.3e-6;
/// atol = 1e-6 for elementwise operators and 1e-4 * (reduced length) for reductions.
/// NaN must be NaN, ±Inf must be the same infinity, and no output element may keep the poison pattern.
/// </summary>
internal static class TestData
{
    public const double Float32Rtol = 1.3e-6;
    public const double ElementwiseAtol = 1e-6;

    /// <summary>A quiet NaN with a payload no kernel produces: an element still holding it was never written.</summary>
    public static readonly float Poison = BitConverter.Int32BitsToSingle(0x7FC0DEAD);

    public static double ReductionAtol(long reducedLength) => 1e-4 * reducedLength;

    /// <summary>A fresh seed per test (GEMS_TEST_SEED overrides it to replay a failure).</summary>
    public static int NewSeed()
    {
        string? fixedSeed = Environment.GetEnvironmentVariable("GEMS_TEST_SEED");
        return fixedSeed is null ? Random.Shared.Next() : int.Parse(fixedSeed, CultureInfo.InvariantCulture);
    }

    /// <summary>Normally distributed values with the given scale.</summary>
    public static float[] Normal(Random random, long count, double scale = 1.0)
    {
        var values = new float[count];
        for (long i = 0; i < count; i++)
        {
            double u1 = 1.0 - random.NextDouble();
            double u2 = random.NextDouble();
            values[i] = (float)(scale * Math.Sqrt(-2.0 * Math.Log(u1)) * Math.Cos(2.0 * Math.PI * u2));
        }

        return values;
    }

    public static float[] Poisoned(long count) => Enumerable.Repeat(Poison, checked((int)count)).ToArray();

    public static bool IsPoison(float value) => BitConverter.SingleToInt32Bits(value) == BitConverter.SingleToInt32Bits(Poison);

    public static float[] ToArray(torch.Tensor tensor) => tensor.numel() == 0 ? Array.Empty<float>() : tensor.contiguous().data<float>().ToArray();

    public static torch.Tensor Tensor(float[] values, params long[] shape) => torch.tensor(values, shape, torch.ScalarType.Float32);

    /// <summary>Checks every element of <paramref name="actual"/> against <paramref name="expected"/>.</summary>
    public static void AssertClose(
        ReadOnlySpan<double> expected, ReadOnlySpan<float> actual, double atol, double rtol, int seed, string what,
        [CallerMemberName] string test = "")
    {
        Assert.True(expected.Length == actual.Length, $"{test} {what} (seed {seed}): {actual.Length} elements, expected {expected.Length}.");
        for (int i = 0; i < expected.Length; i++)
        {
            // A finite float64 result beyond float32's range rounds to an infinity in float32: expect that.
            double e = double.IsFinite(expected[i]) && float.IsInfinity((float)expected[i]) ? (float)expected[i] : expected[i];
            float a = actual[i];
            string where = $"{test} {what} (seed {seed}, GEMS_TEST_SEED={seed} replays it): element {i} is {a:R}, expected {e:R}";
            if (IsPoison(a))
            {
                Assert.Fail($"{where}; it was never written (still the poison NaN).");
            }

            if (double.IsNaN(e))
            {
                Assert.True(float.IsNaN(a), $"{where}; expected NaN.");
            }
            else if (double.IsInfinity(e))
            {
                Assert.True((double)a == e, $"{where}; expected the same infinity.");
            }
            else
            {
                double tolerance = atol + rtol * Math.Abs(e);
                Assert.True(Math.Abs(a - e) <= tolerance, $"{where}; |difference| {Math.Abs(a - e):R} > atol {atol} + rtol {rtol} * |expected| = {tolerance:R}.");
            }
        }
    }

    public static void AssertClose(
        ReadOnlySpan<float> expected, ReadOnlySpan<float> actual, double atol, double rtol, int seed, string what,
        [CallerMemberName] string test = "")
    {
        var widened = new double[expected.Length];
        for (int i = 0; i < expected.Length; i++)
        {
            widened[i] = expected[i];
        }

        AssertClose(widened, actual, atol, rtol, seed, what, test);
    }
}

/// <summary>The float64 references, written out here (not taken from the code under test).</summary>
internal static class Reference
{
    public static double[] Add(float[] self, float[] other, float alpha) =>
        self.Select((s, i) => s + (double)alpha * other[i]).ToArray();

    public static double[] Mul(float[] self, float[] other) => self.Select((s, i) => (double)s * other[i]).ToArray();

    public static double[] Silu(float[] input) => input.Select(x => x / (1.0 + Math.Exp(-(double)x))).ToArray();

    public static double[] RmsNorm(float[] input, float[] weight, int rowLength, double epsilon)
    {
        var output = new double[input.Length];
        for (int row = 0; row * rowLength < input.Length; row++)
        {
            double sum = 0;
            for (int j = 0; j < rowLength; j++)
            {
                double x = input[row * rowLength + j];
                sum += x * x;
            }

            double scale = 1.0 / Math.Sqrt(sum / rowLength + epsilon);
            for (int j = 0; j < rowLength; j++)
            {
                output[row * rowLength + j] = input[row * rowLength + j] * scale * weight[j];
            }
        }

        return output;
    }

    /// <summary>The element-by-element broadcast of a row-major array from <paramref name="shape"/> to <paramref name="target"/>.</summary>
    public static float[] Broadcast(float[] values, long[] shape, long[] target)
    {
        long count = target.Aggregate(1L, (a, b) => a * b);
        var output = new float[count];
        var index = new long[target.Length];
        for (long flat = 0; flat < count; flat++)
        {
            long rest = flat;
            for (int d = target.Length - 1; d >= 0; d--)
            {
                index[d] = rest % target[d];
                rest /= target[d];
            }

            long source = 0;
            int offset = target.Length - shape.Length;
            for (int d = 0; d < shape.Length; d++)
            {
                source = source * shape[d] + (shape[d] == 1 ? 0 : index[d + offset]);
            }

            output[flat] = values[source];
        }

        return output;
    }
}
