using System;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace GemsInjector.Kernels.Numerics;

/// <summary>
/// bfloat16 words (the high 16 bits of a float32) ↔ float32. Widening is exact; narrowing rounds to nearest even
/// (overflow to ±Inf as the carry reaches the exponent) and turns a NaN into a quiet NaN of the same sign
/// (<c>(bits &gt;&gt; 16) | 0x40</c>), so a NaN never rounds to Inf.
/// </summary>
internal static unsafe class BFloat16Bits
{
    /// <summary>A bfloat16 word as float32 (exact).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float ToSingle(ushort bits) => BitConverter.Int32BitsToSingle(bits << 16);

    /// <summary>float32 rounded to the nearest bfloat16 (ties to even), as its 16-bit word.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ushort FromSingle(float value)
    {
        uint bits = BitConverter.SingleToUInt32Bits(value);
        if (float.IsNaN(value))
        {
            return (ushort)((bits >> 16) | 0x40);
        }

        return (ushort)((bits + 0x7FFFu + ((bits >> 16) & 1u)) >> 16);
    }

    /// <summary>Widens 16 bfloat16 words to float32 lanes (exact).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> Widen(Vector256<ushort> bits)
    {
        Vector512<uint> h = Avx512F.IsSupported
            ? Avx512F.ConvertToVector512UInt32(bits)
            : Vector512.WidenLower(bits.ToVector512Unsafe());
        return Vector512.ShiftLeft(h, 16).AsSingle();
    }

    /// <summary>Rounds 16 float32 lanes to bfloat16 words (nearest even; NaN stays a quiet NaN).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<ushort> Narrow(Vector512<float> values)
    {
        Vector512<uint> bits = values.AsUInt32();
        Vector512<uint> rounded = bits + Vector512.Create(0x7FFFu) + (Vector512.ShiftRightLogical(bits, 16) & Vector512<uint>.One);
        Vector512<uint> quiet = bits | Vector512.Create(0x0040_0000u);
        Vector512<uint> result = Vector512.ShiftRightLogical(Vector512.ConditionalSelect(Vector512.Equals(values, values).AsUInt32(), rounded, quiet), 16);
        return Avx512F.IsSupported ? Avx512F.ConvertToVector256UInt16(result) : Vector512.Narrow(result, result).GetLower();
    }

    /// <summary>Widens bfloat16 words to float32 (exact); the spans have the same length.</summary>
    public static void Widen(ReadOnlySpan<ushort> source, Span<float> destination)
    {
        if (destination.Length != source.Length)
        {
            throw new ArgumentException($"'destination' has {destination.Length} elements but 'source' has {source.Length}.", nameof(destination));
        }

        fixed (ushort* s = source)
        fixed (float* d = destination)
        {
            int i = 0;
            for (; i <= source.Length - 16; i += 16)
            {
                Widen(Vector256.Load(s + i)).Store(d + i);
            }

            for (; i < source.Length; i++)
            {
                d[i] = ToSingle(s[i]);
            }
        }
    }

    /// <summary>Rounds float32 values to bfloat16 words (nearest even); the spans have the same length.</summary>
    public static void Narrow(ReadOnlySpan<float> source, Span<ushort> destination)
    {
        if (destination.Length != source.Length)
        {
            throw new ArgumentException($"'destination' has {destination.Length} elements but 'source' has {source.Length}.", nameof(destination));
        }

        fixed (float* s = source)
        fixed (ushort* d = destination)
        {
            int i = 0;
            for (; i <= source.Length - 16; i += 16)
            {
                Narrow(Vector512.Load(s + i)).Store(d + i);
            }

            for (; i < source.Length; i++)
            {
                d[i] = FromSingle(s[i]);
            }
        }
    }
}
