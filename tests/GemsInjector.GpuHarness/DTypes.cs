using System;
using System.Runtime.CompilerServices;

namespace GemsInjector.GpuHarness;

/// <summary>The element types the harness covers. 16-bit types travel to the device as raw <see cref="ushort"/> bits.</summary>
internal enum DType
{
    F32,
    F16,
    BF16,
}

internal static class DTypeExtensions
{
    /// <summary>PyTorch-style name (matches torch_reference_bench.py's dtype column).</summary>
    public static string Name(this DType t) => t switch
    {
        DType.F32 => "float32",
        DType.F16 => "float16",
        DType.BF16 => "bfloat16",
        _ => throw new ArgumentOutOfRangeException(nameof(t)),
    };

    public static string Short(this DType t) => t switch
    {
        DType.F32 => "f32",
        DType.F16 => "f16",
        _ => "bf16",
    };

    public static int Size(this DType t) => t == DType.F32 ? 4 : 2;

    /// <summary>FlagGems resolutions (tests/accuracy_utils.py): rtol per dtype.</summary>
    public static double Rtol(this DType t) => t switch
    {
        DType.F32 => 1.3e-6,
        DType.F16 => 1e-3,
        _ => 1.6e-2,
    };

    /// <summary>NaN bits used to poison outputs of this type.</summary>
    public static ushort NaNBits(this DType t) => t == DType.BF16 ? (ushort)0x7FC0 : (ushort)0x7E00;

    public static bool TryParse(string s, out DType t)
    {
        switch (s.ToLowerInvariant())
        {
            case "f32": case "float32": case "float": t = DType.F32; return true;
            case "f16": case "float16": case "half": t = DType.F16; return true;
            case "bf16": case "bfloat16": t = DType.BF16; return true;
            default: t = DType.F32; return false;
        }
    }

    /// <summary>Rounds a float to the nearest value of the type (round to nearest even).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Round(this DType t, float v) => t switch
    {
        DType.F32 => v,
        DType.F16 => (float)(Half)v,
        _ => BF16ToFloat(FloatToBF16(v)),
    };

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ushort ToBits(this DType t, float v) =>
        t == DType.F16 ? BitConverter.HalfToUInt16Bits((Half)v) : FloatToBF16(v);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float FromBits(this DType t, ushort bits) =>
        t == DType.F16 ? (float)BitConverter.UInt16BitsToHalf(bits) : BF16ToFloat(bits);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float BF16ToFloat(ushort b) => BitConverter.Int32BitsToSingle(b << 16);

    /// <summary>float → bfloat16 bits, round to nearest even; NaN stays a quiet NaN.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ushort FloatToBF16(float v)
    {
        uint u = BitConverter.SingleToUInt32Bits(v);
        if (float.IsNaN(v))
        {
            return (ushort)((u >> 16) | 0x40);
        }

        uint rounding = 0x7FFF + ((u >> 16) & 1);
        return (ushort)((u + rounding) >> 16);
    }
}
