using System;
using System.Runtime.InteropServices;
using GemsInjector.Kernels.Numerics;
using TorchSharp;
using Xunit;

namespace GemsInjector.Kernels.Tests;

/// <summary>
/// The shared float16/bfloat16 conversions (<see cref="Float16Bits"/>, <see cref="BFloat16Bits"/>): every 16-bit word
/// widened, and float32 values of every kind narrowed, checked against System.Half, against TorchSharp's own casts and
/// against a round-to-nearest-even reference written here in float64.
/// </summary>
public class SixteenBitConversionTests
{
    private static float[] NarrowCases(int seed)
    {
        var random = new Random(seed);
        var values = new System.Collections.Generic.List<float>
        {
            0f, -0f, 1f, -1f, float.NaN, -float.NaN, float.PositiveInfinity, float.NegativeInfinity, float.MaxValue, float.MinValue,
            float.Epsilon, -float.Epsilon, 65504f, 65519.996f, 65520f, -65520f, 65536f, 6.1035156e-5f, 6.097555e-5f, 5.9604645e-8f,
            2.9802322e-8f, 2.9802326e-8f, 8.940697e-8f, 1e-10f, 3.3895314e38f, 3.3961776e38f, 1.00390625f, 1.01171875f, 1.0009766f, 1.0004883f,
            BitConverter.Int32BitsToSingle(0x7F800001), BitConverter.Int32BitsToSingle(0x7FBFFFFF), BitConverter.Int32BitsToSingle(unchecked((int)0xFFC00001)),
        };
        for (int i = 0; i < 20000; i++)
        {
            // Random bit patterns cover every exponent, including subnormals and NaN payloads; the rest are ordinary values.
            values.Add(i % 2 == 0 ? BitConverter.Int32BitsToSingle(random.Next() ^ (random.Next(2) << 31)) : (float)(random.NextDouble() * 200 - 100));
        }

        // Exact ties of both formats: a 16-bit value plus half its ulp.
        for (int i = 0; i < 2000; i++)
        {
            int bf = random.Next(0, 0x7F7F);
            values.Add(BitConverter.Int32BitsToSingle((bf << 16) | 0x8000));
            ushort h = (ushort)random.Next(0, 0x7BFF);
            double low = (double)BitConverter.UInt16BitsToHalf(h);
            double high = (double)BitConverter.UInt16BitsToHalf((ushort)(h + 1));
            values.Add((float)((low + high) / 2));
        }

        return values.ToArray();
    }

    [Fact]
    public void Float16_widen_is_exact_for_every_word()
    {
        var words = new ushort[65536 + 7];
        for (int i = 0; i < words.Length; i++)
        {
            words[i] = (ushort)i;
        }

        var widened = new float[words.Length];
        Float16Bits.Widen(words, widened);
        for (int i = 0; i < words.Length; i++)
        {
            float expected = (float)BitConverter.UInt16BitsToHalf(words[i]);
            Assert.True(
                BitConverter.SingleToInt32Bits(expected) == BitConverter.SingleToInt32Bits(widened[i]),
                $"float16 word 0x{words[i]:X4} widened to 0x{BitConverter.SingleToInt32Bits(widened[i]):X8}, expected 0x{BitConverter.SingleToInt32Bits(expected):X8}.");
            Assert.Equal(BitConverter.SingleToInt32Bits(expected), BitConverter.SingleToInt32Bits(Float16Bits.ToSingle(words[i])));
        }
    }

    [Fact]
    public void BFloat16_widen_is_exact_for_every_word()
    {
        var words = new ushort[65536 + 5];
        for (int i = 0; i < words.Length; i++)
        {
            words[i] = (ushort)i;
        }

        var widened = new float[words.Length];
        BFloat16Bits.Widen(words, widened);
        for (int i = 0; i < words.Length; i++)
        {
            Assert.Equal(words[i] << 16, BitConverter.SingleToInt32Bits(widened[i]));
        }
    }

    [Fact]
    public void Float16_narrow_rounds_to_nearest_even_like_Half_and_torch()
    {
        int seed = TestData.NewSeed();
        float[] values = NarrowCases(seed);
        var words = new ushort[values.Length];
        Float16Bits.Narrow(values, words);
        using torch.Tensor source = torch.tensor(values);
        using torch.Tensor cast = source.to_type(torch.ScalarType.Float16);
        ushort[] torchWords = MemoryMarshal.Cast<byte, ushort>(cast.bytes).ToArray();
        for (int i = 0; i < values.Length; i++)
        {
            ushort expected = BitConverter.HalfToUInt16Bits((Half)values[i]);
            string what = $"(seed {seed}) float32 0x{BitConverter.SingleToInt32Bits(values[i]):X8} ({values[i]:R}) narrowed to 0x{words[i]:X4}";
            if (float.IsNaN(values[i]))
            {
                Assert.True(Half.IsNaN(BitConverter.UInt16BitsToHalf(words[i])), $"{what}, expected a NaN.");
                Assert.True((words[i] & 0x8000) == (expected & 0x8000), $"{what}, expected the NaN's sign kept.");
                continue;
            }

            Assert.True(expected == words[i], $"{what}, expected 0x{expected:X4} (System.Half).");
            Assert.True(torchWords[i] == words[i], $"{what}, torch gives 0x{torchWords[i]:X4}.");
            Assert.Equal(expected, Float16Bits.FromSingle(values[i]));
        }
    }

    [Fact]
    public void BFloat16_narrow_rounds_to_nearest_even_like_torch()
    {
        int seed = TestData.NewSeed();
        float[] values = NarrowCases(seed);
        var words = new ushort[values.Length];
        BFloat16Bits.Narrow(values, words);
        using torch.Tensor source = torch.tensor(values);
        using torch.Tensor cast = source.to_type(torch.ScalarType.BFloat16);
        ushort[] torchWords = MemoryMarshal.Cast<byte, ushort>(cast.bytes).ToArray();
        for (int i = 0; i < values.Length; i++)
        {
            string what = $"(seed {seed}) float32 0x{BitConverter.SingleToInt32Bits(values[i]):X8} ({values[i]:R}) narrowed to 0x{words[i]:X4}";
            Assert.Equal(words[i], BFloat16Bits.FromSingle(values[i]));
            if (float.IsNaN(values[i]))
            {
                Assert.True(float.IsNaN(BFloat16Bits.ToSingle(words[i])), $"{what}, expected a NaN.");
                Assert.True((words[i] & 0x8000) == ((BitConverter.SingleToInt32Bits(values[i]) >> 16) & 0x8000), $"{what}, expected the NaN's sign kept.");
                continue;
            }

            ushort expected = NearestEvenBFloat16(values[i]);
            Assert.True(expected == words[i], $"{what}, expected 0x{expected:X4} (float64 reference).");
            Assert.True(torchWords[i] == words[i], $"{what}, torch gives 0x{torchWords[i]:X4}.");
        }
    }

    /// <summary>Round to nearest even by comparing the distances (in float64) to the two neighbouring bfloat16 values.</summary>
    private static ushort NearestEvenBFloat16(float value)
    {
        int bits = BitConverter.SingleToInt32Bits(value);
        ushort down = (ushort)((uint)bits >> 16);              // toward zero
        ushort up = (ushort)(down + 1);                         // away from zero (may become Inf)
        double x = value;
        double lowDistance = Math.Abs(x - BFloat16Bits.ToSingle(down));
        double upValue = BFloat16Bits.ToSingle(up);
        double highDistance = double.IsInfinity(upValue)
            ? Math.Abs(Math.Abs(x) - 3.3961775292304e38) // the midpoint rule at the top: 2^128 - 2^120 would be the next value
            : Math.Abs(x - upValue);
        if (double.IsInfinity(upValue))
        {
            highDistance = Math.Abs(Math.Abs(x) - Math.Pow(2, 128));
        }

        if (lowDistance < highDistance)
        {
            return down;
        }

        if (highDistance < lowDistance)
        {
            return up;
        }

        return (down & 1) == 0 ? down : up;
    }
}
