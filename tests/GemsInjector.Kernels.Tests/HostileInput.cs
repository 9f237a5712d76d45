using System;
using System.Collections.Generic;
using System.Linq;
using TorchSharp;
using Xunit;
using Xunit.Sdk;

namespace GemsInjector.Kernels.Tests;

/// <summary>
/// Deterministic inputs (no seed: the values are a fixed pattern) and the two outcomes a hostile input may have: a clear refusal
/// (an <see cref="ArgumentException"/> whose parameter is the offending argument and whose message names what was found), or a
/// result equal to the reference (TorchSharp's own kernel run on the inputs widened to float64, rounded back to the dtype).
/// </summary>
internal static class HostileInput
{
    public const torch.ScalarType F32 = torch.ScalarType.Float32;
    public const torch.ScalarType F16 = torch.ScalarType.Float16;
    public const torch.ScalarType BF16 = torch.ScalarType.BFloat16;
    public const torch.ScalarType F64 = torch.ScalarType.Float64;

    /// <summary>NaN, infinities, signed zeros and ordinary values, none of which overflows float16 or bfloat16.</summary>
    private static readonly float[] Specials =
    {
        float.NaN, 1.5f, float.PositiveInfinity, -2.25f, 0f, float.NegativeInfinity, 0.75f, -0f, 3f, -1f, 0.125f, 7f,
    };

    /// <summary>A tensor of distinct values in [-2, 2] (101 of them before the pattern repeats).</summary>
    public static torch.Tensor Pattern(torch.ScalarType dtype, params long[] shape)
    {
        long count = KernelTestData.Count(shape);
        var values = new float[count];
        for (long i = 0; i < count; i++)
        {
            values[i] = ((i * 37 + 11) % 101 - 50) / 25f;
        }

        return KernelTestData.Make(values, shape, dtype);
    }

    /// <summary>A tensor cycling through NaN, ±Inf, ±0 and ordinary values, starting <paramref name="offset"/> into the cycle.</summary>
    public static torch.Tensor Special(torch.ScalarType dtype, int offset, params long[] shape)
    {
        long count = KernelTestData.Count(shape);
        var values = new float[count];
        for (long i = 0; i < count; i++)
        {
            values[i] = Specials[(i + offset) % Specials.Length];
        }

        return KernelTestData.Make(values, shape, dtype);
    }

    /// <summary>A tensor on PyTorch's "meta" device: shape and dtype only, no storage (creatable on CPU-only builds).</summary>
    public static torch.Tensor Meta(torch.ScalarType dtype, params long[] shape) =>
        torch.empty(shape, dtype, new torch.Device(DeviceType.META));

    public static torch.Tensor Ints(params long[] values) => torch.tensor(values, torch.ScalarType.Int64);

    /// <summary>The inputs widened to float64, for the references.</summary>
    public static torch.Tensor Wide(torch.Tensor tensor) => tensor.to(F64);

    /// <summary>Expects <paramref name="call"/> to refuse with an <see cref="ArgumentException"/> for <paramref name="parameter"/>, its message holding every fragment.</summary>
    public static void Refuses(Func<object?> call, string parameter, params string[] fragments)
    {
        Exception? error = Record.Exception(() => call());
        Assert.True(error is not null, $"expected a refusal of '{parameter}', but the call returned normally.");
        var argument = Assert.IsAssignableFrom<ArgumentException>(error);
        Assert.True(parameter == argument.ParamName, $"refused '{argument.ParamName}', expected '{parameter}': {argument.Message}");
        foreach (string fragment in fragments)
        {
            Assert.True(argument.Message.Contains(fragment, StringComparison.Ordinal), $"message lacks '{fragment}': {argument.Message}");
        }
    }

    /// <summary>
    /// Runs the reference; if TorchSharp refuses the input, <paramref name="ours"/> must refuse it with an
    /// <see cref="ArgumentException"/> naming an argument; otherwise every output must have the reference's shape,
    /// <paramref name="dtype"/> (int64 where the reference is integral) and values (NaN where NaN, the same infinities, the rest within
    /// the dtype's tolerance times <paramref name="slack"/>).
    /// </summary>
    public static void MatchesReference(Func<object?> ours, Func<object?> reference, torch.ScalarType dtype, double slack = 1)
    {
        object? expected;
        try
        {
            expected = reference();
        }
        catch (Exception e) when (e is not XunitException)
        {
            Exception? error = Record.Exception(() => ours());
            Assert.True(error is not null, $"TorchSharp refuses this input ({Trim(e.Message)}), but the kernel returned a result.");
            var argument = Assert.IsAssignableFrom<ArgumentException>(error);
            Assert.False(string.IsNullOrEmpty(argument.ParamName), $"refusal names no argument: {argument.Message}");
            return;
        }

        torch.Tensor[] want = Outputs(expected);
        torch.Tensor[] got = Outputs(ours());
        Assert.Equal(want.Length, got.Length);
        for (int i = 0; i < want.Length; i++)
        {
            Assert.True(want[i].shape.SequenceEqual(got[i].shape), $"output {i}: shape [{string.Join(", ", got[i].shape)}], expected [{string.Join(", ", want[i].shape)}].");
            if (want[i].dtype is torch.ScalarType.Int64 or torch.ScalarType.Int32)
            {
                Assert.Equal(torch.ScalarType.Int64, got[i].dtype);
                Assert.Equal(Longs(want[i]), Longs(got[i]));
                continue;
            }

            Assert.Equal(dtype, got[i].dtype);
            AssertClose(Doubles(want[i].to(dtype)), Doubles(got[i]), dtype, slack, i);
        }
    }

    /// <summary>Expects every element of the tensor to be unchanged, bit for bit.</summary>
    public static void Unchanged(torch.Tensor before, torch.Tensor after, string what)
    {
        Assert.True(Bits(before).SequenceEqual(Bits(after)), $"{what} changed.");
    }

    /// <summary>The raw bytes of a tensor's elements, row-major.</summary>
    public static byte[] Bits(torch.Tensor tensor)
    {
        if (tensor.numel() == 0)
        {
            return Array.Empty<byte>();
        }

        using torch.Tensor dense = tensor.contiguous();
        return dense.bytes.ToArray();
    }

    public static double[] Doubles(torch.Tensor tensor)
    {
        if (tensor.numel() == 0)
        {
            return Array.Empty<double>();
        }

        using torch.Tensor wide = tensor.to(F64).contiguous();
        return wide.data<double>().ToArray();
    }

    private static long[] Longs(torch.Tensor tensor)
    {
        if (tensor.numel() == 0)
        {
            return Array.Empty<long>();
        }

        using torch.Tensor wide = tensor.to(torch.ScalarType.Int64).contiguous();
        return wide.data<long>().ToArray();
    }

    private static void AssertClose(double[] expected, double[] actual, torch.ScalarType dtype, double slack, int output)
    {
        (double rtol, double atol) = dtype switch
        {
            F16 => (2e-3, 2e-3),
            BF16 => (2e-2, 2e-2),
            _ => (1e-5, 1e-5),
        };
        for (int i = 0; i < expected.Length; i++)
        {
            double e = expected[i], a = actual[i];
            bool ok = double.IsNaN(e) ? double.IsNaN(a)
                : double.IsInfinity(e) ? a == e
                : !double.IsNaN(a) && !double.IsInfinity(a) && Math.Abs(a - e) <= slack * (atol + rtol * Math.Abs(e));
            Assert.True(ok, $"output {output} element {i} ({dtype}): {a}, expected {e}.");
        }
    }

    private static torch.Tensor[] Outputs(object? result) => result switch
    {
        null => Array.Empty<torch.Tensor>(),
        torch.Tensor tensor => new[] { tensor },
        ValueTuple<torch.Tensor, torch.Tensor> pair => new[] { pair.Item1, pair.Item2 },
        IEnumerable<torch.Tensor> many => many.ToArray(),
        _ => throw new ArgumentException($"unexpected result type {result.GetType()}", nameof(result)),
    };

    private static string Trim(string message) => message.Split('\n')[0];
}
