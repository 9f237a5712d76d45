using System;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace GemsInjector.Kernels.Numerics;

/// <summary>
/// IEEE 754 binary16 (float16, <see cref="Half"/>) words ↔ float32. Widening is exact; narrowing rounds to nearest
/// even, overflows to ±Inf, keeps subnormals, and keeps NaN a (quiet) NaN of the same sign.
/// The vector forms use integer/float bit tricks (no F16C intrinsics in .NET), so they give the same bits as
/// <see cref="Half"/>'s own conversions.
/// </summary>
internal static unsafe class Float16Bits
{
    private const uint SignMask = 0x8000_0000u;

    /// <summary>2^112: moves a binary16 exponent (bias 15) placed in a float32's exponent field to bias 127.</summary>
    private const float ExponentAdjust = 5.192296858534828e33f;

    /// <summary>float32 bits of 65520 (rounds to Inf in binary16) are at or above this: (127 + 16) &lt;&lt; 23.</summary>
    private const uint Float16Overflow = 0x4780_0000u;

    /// <summary>float32 bits below this (2^-14) become binary16 subnormals: 113 &lt;&lt; 23.</summary>
    private const uint Float16MinNormal = 0x3880_0000u;

    /// <summary>0.5f: adding it to a tiny value makes the FPU round the value to a binary16 subnormal's resolution.</summary>
    private const uint DenormalMagic = 0x3F00_0000u;

    /// <summary>A binary16 word as float32 (exact).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float ToSingle(ushort bits) => (float)BitConverter.UInt16BitsToHalf(bits);

    /// <summary>float32 rounded to the nearest binary16 (ties to even), as its 16-bit word.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ushort FromSingle(float value) => BitConverter.HalfToUInt16Bits((Half)value);

    /// <summary>Widens 16 binary16 words to float32 lanes (exact).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> Widen(Vector256<ushort> bits)
    {
        Vector512<uint> h = Avx512F.IsSupported
            ? Avx512F.ConvertToVector512UInt32(bits)
            : Vector512.WidenLower(bits.ToVector512Unsafe());
        Vector512<uint> sign = Vector512.ShiftLeft(h & Vector512.Create(0x8000u), 16);
        Vector512<uint> magnitude = Vector512.ShiftLeft(h & Vector512.Create(0x7FFFu), 13);
        Vector512<uint> finite = (magnitude.AsSingle() * Vector512.Create(ExponentAdjust)).AsUInt32();
        // Inf keeps its zero mantissa; a NaN keeps its payload and becomes quiet, as Half and vcvtph2ps do.
        Vector512<uint> quiet = Vector512.GreaterThan(magnitude, Vector512.Create(0x7C00u << 13)) & Vector512.Create(0x0040_0000u);
        Vector512<uint> special = magnitude | Vector512.Create(0x7F80_0000u) | quiet;
        Vector512<uint> isSpecial = Vector512.GreaterThanOrEqual(magnitude, Vector512.Create(0x7C00u << 13));
        return (Vector512.ConditionalSelect(isSpecial, special, finite) | sign).AsSingle();
    }

    /// <summary>Rounds 16 float32 lanes to binary16 words (nearest even; see the type's remarks).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<ushort> Narrow(Vector512<float> values)
    {
        Vector512<uint> f = values.AsUInt32();
        Vector512<uint> sign = f & Vector512.Create(SignMask);
        f ^= sign;
        Vector512<uint> special = Vector512.ConditionalSelect(
            Vector512.GreaterThan(f, Vector512.Create(0x7F80_0000u)), Vector512.Create(0x7E00u), Vector512.Create(0x7C00u));
        Vector512<uint> magic = Vector512.Create(DenormalMagic);
        Vector512<uint> subnormal = (f.AsSingle() + magic.AsSingle()).AsUInt32() - magic;
        Vector512<uint> odd = Vector512.ShiftRightLogical(f, 13) & Vector512<uint>.One;
        Vector512<uint> normal = Vector512.ShiftRightLogical(f + Vector512.Create(unchecked((uint)((15 - 127) << 23)) + 0xFFFu) + odd, 13);
        Vector512<uint> result = Vector512.ConditionalSelect(
            Vector512.GreaterThanOrEqual(f, Vector512.Create(Float16Overflow)),
            special,
            Vector512.ConditionalSelect(Vector512.LessThan(f, Vector512.Create(Float16MinNormal)), subnormal, normal));
        result |= Vector512.ShiftRightLogical(sign, 16);
        return Avx512F.IsSupported ? Avx512F.ConvertToVector256UInt16(result) : Vector512.Narrow(result, result).GetLower();
    }

    /// <summary>Widens binary16 words to float32 (exact); the spans have the same length.</summary>
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

    /// <summary>Rounds float32 values to binary16 words (nearest even); the spans have the same length.</summary>
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
