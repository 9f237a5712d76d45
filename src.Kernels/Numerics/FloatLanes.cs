using System;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace GemsInjector.Kernels.Numerics;

/// <summary>
/// One storage type read into and written from 16 float32 lanes: float32 itself, float16 or bfloat16 words.
/// Kernels generic over this (<c>where T : struct, IFloatLanes</c>) compute in float32 and are specialized per type.
/// </summary>
internal unsafe interface IFloatLanes
{
    /// <summary>Bytes per element.</summary>
    static abstract int Size { get; }

    /// <summary>Loads 16 elements at <paramref name="source"/>, widened to float32.</summary>
    static abstract Vector512<float> Load(byte* source);

    /// <summary>Rounds 16 lanes to this type (nearest even) and stores them at <paramref name="destination"/>.</summary>
    static abstract void Store(Vector512<float> values, byte* destination);

    /// <summary>One element, widened to float32.</summary>
    static abstract float LoadScalar(byte* source);

    /// <summary>Rounds one value to this type and stores it.</summary>
    static abstract void StoreScalar(float value, byte* destination);

    /// <summary>Widens <paramref name="count"/> contiguous elements into float32.</summary>
    static abstract void Widen(byte* source, float* destination, int count);

    /// <summary>Rounds <paramref name="count"/> float32 values into contiguous elements of this type (nearest even).</summary>
    static abstract void Narrow(float* source, byte* destination, int count);
}

/// <summary>float32 storage.</summary>
internal readonly unsafe struct Float32Lanes : IFloatLanes
{
    public static int Size => sizeof(float);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> Load(byte* source) => Vector512.Load((float*)source);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Store(Vector512<float> values, byte* destination) => values.Store((float*)destination);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float LoadScalar(byte* source) => *(float*)source;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void StoreScalar(float value, byte* destination) => *(float*)destination = value;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Widen(byte* source, float* destination, int count) =>
        Buffer.MemoryCopy(source, destination, (long)count * sizeof(float), (long)count * sizeof(float));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Narrow(float* source, byte* destination, int count) =>
        Buffer.MemoryCopy(source, destination, (long)count * sizeof(float), (long)count * sizeof(float));
}

/// <summary>float16 storage (IEEE binary16 words), through <see cref="Float16Bits"/>.</summary>
internal readonly unsafe struct Float16Lanes : IFloatLanes
{
    public static int Size => sizeof(ushort);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> Load(byte* source) => Float16Bits.Widen(Vector256.Load((ushort*)source));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Store(Vector512<float> values, byte* destination) => Float16Bits.Narrow(values).Store((ushort*)destination);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float LoadScalar(byte* source) => Float16Bits.ToSingle(*(ushort*)source);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void StoreScalar(float value, byte* destination) => *(ushort*)destination = Float16Bits.FromSingle(value);

    public static void Widen(byte* source, float* destination, int count) =>
        Float16Bits.Widen(new ReadOnlySpan<ushort>(source, count), new Span<float>(destination, count));

    public static void Narrow(float* source, byte* destination, int count) =>
        Float16Bits.Narrow(new ReadOnlySpan<float>(source, count), new Span<ushort>(destination, count));
}

/// <summary>bfloat16 storage (16-bit words), through <see cref="BFloat16Bits"/>.</summary>
internal readonly unsafe struct BFloat16Lanes : IFloatLanes
{
    public static int Size => sizeof(ushort);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> Load(byte* source) => BFloat16Bits.Widen(Vector256.Load((ushort*)source));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Store(Vector512<float> values, byte* destination) => BFloat16Bits.Narrow(values).Store((ushort*)destination);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float LoadScalar(byte* source) => BFloat16Bits.ToSingle(*(ushort*)source);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void StoreScalar(float value, byte* destination) => *(ushort*)destination = BFloat16Bits.FromSingle(value);

    public static void Widen(byte* source, float* destination, int count) =>
        BFloat16Bits.Widen(new ReadOnlySpan<ushort>(source, count), new Span<float>(destination, count));

    public static void Narrow(float* source, byte* destination, int count) =>
        BFloat16Bits.Narrow(new ReadOnlySpan<float>(source, count), new Span<ushort>(destination, count));
}

/// <summary>
/// Single elements by index, and partial (tail) loads and stores of fewer than 16 elements through a lane buffer on the stack.
/// </summary>
internal static unsafe class FloatLanes
{
    /// <summary>Lanes per vector.</summary>
    public const int Count = 16;

    /// <summary>Element <paramref name="index"/> of <paramref name="data"/>, widened to float32.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float LoadAt<T>(void* data, long index)
        where T : struct, IFloatLanes => T.LoadScalar((byte*)data + index * T.Size);

    /// <summary>Rounds <paramref name="value"/> to <typeparamref name="T"/> and stores it at element <paramref name="index"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void StoreAt<T>(void* data, long index, float value)
        where T : struct, IFloatLanes => T.StoreScalar(value, (byte*)data + index * T.Size);

    /// <summary>
    /// Rounds 16 lanes to <typeparamref name="T"/> and stores them with a non-temporal (streaming) store, which skips the
    /// read-for-ownership of the destination line and keeps it out of the caches. The destination must be aligned to
    /// the stored size (64 bytes for float32, 32 for 16-bit); end a streamed range with <see cref="StreamFence"/>.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void StoreStream<T>(Vector512<float> values, byte* destination)
        where T : struct, IFloatLanes
    {
        if (typeof(T) == typeof(Float32Lanes))
        {
            values.StoreAlignedNonTemporal((float*)destination);
        }
        else if (typeof(T) == typeof(Float16Lanes))
        {
            Float16Bits.Narrow(values).StoreAlignedNonTemporal((ushort*)destination);
        }
        else if (typeof(T) == typeof(BFloat16Lanes))
        {
            BFloat16Bits.Narrow(values).StoreAlignedNonTemporal((ushort*)destination);
        }
        else
        {
            T.Store(values, destination);
        }
    }

    /// <summary>Orders earlier streaming stores of this thread before its later stores (sfence).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void StreamFence()
    {
        if (System.Runtime.Intrinsics.X86.Sse.IsSupported)
        {
            System.Runtime.Intrinsics.X86.Sse.StoreFence();
        }
        else
        {
            System.Threading.Interlocked.MemoryBarrier();
        }
    }

    /// <summary>Loads <paramref name="count"/> (&lt; 16) elements; the other lanes hold <paramref name="fill"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> LoadPartial<T>(byte* source, int count, float fill)
        where T : struct, IFloatLanes
    {
        LaneBuffer buffer = default;
        float* lanes = (float*)&buffer;
        Vector512.Create(fill).Store(lanes);
        for (int i = 0; i < count; i++)
        {
            lanes[i] = T.LoadScalar(source + i * T.Size);
        }

        return Vector512.Load(lanes);
    }

    /// <summary>Stores the first <paramref name="count"/> (&lt; 16) lanes.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void StorePartial<T>(Vector512<float> values, byte* destination, int count)
        where T : struct, IFloatLanes
    {
        LaneBuffer buffer = default;
        float* lanes = (float*)&buffer;
        values.Store(lanes);
        for (int i = 0; i < count; i++)
        {
            T.StoreScalar(lanes[i], destination + i * T.Size);
        }
    }

    /// <summary>16 floats on the stack.</summary>
    [InlineArray(Count)]
    private struct LaneBuffer
    {
        private float element;
    }
}
