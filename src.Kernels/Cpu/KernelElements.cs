using System;
using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace GemsInjector.Kernels.Cpu;

/// <summary>
/// The element types the matmul / attention / reduction kernels read and write: float32, and the 16-bit float16 and
/// bfloat16 (bfloat16 as its 16-bit word). Arithmetic is always float32; these widen on load and round to nearest even
/// on store.
/// </summary>
internal unsafe interface IKernelElement
{
    /// <summary>Bytes per element.</summary>
    static abstract int Size { get; }

    /// <summary>Element <paramref name="index"/> of <paramref name="data"/>, widened to float32.</summary>
    static abstract float Load(void* data, long index);

    /// <summary>Rounds <paramref name="value"/> to this type and stores it at element <paramref name="index"/>.</summary>
    static abstract void Store(void* data, long index, float value);

    /// <summary>Widens <paramref name="count"/> contiguous elements into float32.</summary>
    static abstract void Widen(void* source, float* destination, int count);

    /// <summary>Rounds <paramref name="count"/> float32 values into contiguous elements of this type.</summary>
    static abstract void Narrow(float* source, void* destination, int count);
}

/// <summary>float32: loads and stores are plain.</summary>
internal readonly unsafe struct Float32Element : IKernelElement
{
    public static int Size => 4;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Load(void* data, long index) => ((float*)data)[index];

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Store(void* data, long index, float value) => ((float*)data)[index] = value;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Widen(void* source, float* destination, int count) =>
        Buffer.MemoryCopy(source, destination, (long)count * 4, (long)count * 4);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Narrow(float* source, void* destination, int count) =>
        Buffer.MemoryCopy(source, destination, (long)count * 4, (long)count * 4);
}

/// <summary>IEEE float16 (<see cref="Half"/>), converted through System.Numerics.Tensors' vectorized conversions.</summary>
internal readonly unsafe struct Float16Element : IKernelElement
{
    public static int Size => 2;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Load(void* data, long index) => (float)((Half*)data)[index];

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Store(void* data, long index, float value) => ((Half*)data)[index] = (Half)value;

    public static void Widen(void* source, float* destination, int count) =>
        TensorPrimitives.ConvertToSingle(new ReadOnlySpan<Half>(source, count), new Span<float>(destination, count));

    public static void Narrow(float* source, void* destination, int count) =>
        TensorPrimitives.ConvertToHalf(new ReadOnlySpan<float>(source, count), new Span<Half>(destination, count));
}

/// <summary>bfloat16 stored as the high 16 bits of a float32 word; rounding to nearest even, NaN stays (quiet) NaN.</summary>
internal readonly unsafe struct BFloat16Element : IKernelElement
{
    public static int Size => 2;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Load(void* data, long index) => BitConverter.Int32BitsToSingle(((ushort*)data)[index] << 16);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Store(void* data, long index, float value) => ((ushort*)data)[index] = Round(value);

    /// <summary>float32 → bfloat16 bits, round to nearest even; NaN → quiet NaN of the same sign.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ushort Round(float value)
    {
        uint bits = BitConverter.SingleToUInt32Bits(value);
        if (float.IsNaN(value))
        {
            return (ushort)((bits >> 16) | 0x40);
        }

        return (ushort)((bits + 0x7FFFu + ((bits >> 16) & 1u)) >> 16);
    }

    public static void Widen(void* source, float* destination, int count)
    {
        ushort* s = (ushort*)source;
        int i = 0;
        if (Vector256.IsHardwareAccelerated)
        {
            for (; i <= count - Vector256<ushort>.Count; i += Vector256<ushort>.Count)
            {
                (Vector256<uint> lower, Vector256<uint> upper) = Vector256.Widen(Vector256.Load(s + i));
                Vector256.ShiftLeft(lower, 16).AsSingle().Store(destination + i);
                Vector256.ShiftLeft(upper, 16).AsSingle().Store(destination + i + Vector256<uint>.Count);
            }
        }

        for (; i < count; i++)
        {
            destination[i] = BitConverter.Int32BitsToSingle(s[i] << 16);
        }
    }

    public static void Narrow(float* source, void* destination, int count)
    {
        ushort* d = (ushort*)destination;
        int i = 0;
        if (Vector256.IsHardwareAccelerated)
        {
            Vector256<uint> bias = Vector256.Create(0x7FFFu);
            Vector256<uint> one = Vector256<uint>.One;
            Vector256<uint> quiet = Vector256.Create(0x400000u);
            for (; i <= count - 2 * Vector256<float>.Count; i += 2 * Vector256<float>.Count)
            {
                Vector256<ushort> words = Vector256.Narrow(
                    RoundBits(Vector256.Load(source + i), bias, one, quiet),
                    RoundBits(Vector256.Load(source + i + Vector256<float>.Count), bias, one, quiet));
                words.Store(d + i);
            }
        }

        for (; i < count; i++)
        {
            d[i] = Round(source[i]);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<uint> RoundBits(Vector256<float> value, Vector256<uint> bias, Vector256<uint> one, Vector256<uint> quiet)
    {
        Vector256<uint> bits = value.AsUInt32();
        Vector256<uint> rounded = bits + bias + (Vector256.ShiftRightLogical(bits, 16) & one);
        Vector256<uint> nan = Vector256.Equals(value, value).AsUInt32();
        return Vector256.ShiftRightLogical(Vector256.ConditionalSelect(nan, rounded, bits | quiet), 16);
    }
}

/// <summary>
/// Per-thread scratch memory (64-byte aligned, native), grown on demand and kept for the thread's life, so kernels
/// allocate nothing per call beyond their outputs. A slot must not be used twice at once on one thread.
/// </summary>
internal static unsafe class KernelScratch
{
    /// <summary>The number of slots; callers name the slot they use.</summary>
    public const int Slots = 6;

    [ThreadStatic]
    private static Block[]? blocks;

    /// <summary>At least <paramref name="count"/> floats of slot <paramref name="slot"/> on the calling thread; the contents are undefined.</summary>
    public static float* Floats(int slot, long count)
    {
        Block[] all = blocks ??= new Block[Slots];
        ref Block block = ref all[slot];
        if (block.Capacity < count)
        {
            if (block.Pointer != null)
            {
                NativeMemory.AlignedFree(block.Pointer);
                block = default;
            }

            long capacity = Math.Max(count, 1024);
            block.Pointer = (float*)NativeMemory.AlignedAlloc((nuint)(capacity * sizeof(float)), 64);
            block.Capacity = capacity;
        }

        return block.Pointer;
    }

    private struct Block
    {
        public float* Pointer;
        public long Capacity;
    }
}
