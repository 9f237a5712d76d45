using System;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using GemsInjector.Kernels.Numerics;

namespace GemsInjector.Kernels.Cpu;

/// <summary>A float32 unary elementwise operator at each vector width; the loops below are specialized per operator.</summary>
internal interface IUnaryOperator : IFloatOperator
{
    static abstract Vector256<float> Invoke(Vector256<float> x);

    static abstract Vector128<float> Invoke(Vector128<float> x);
}

/// <summary>x * sigmoid(x), computed as x / (1 + e^-x) like aten (so silu(-Inf) is NaN, silu(+Inf) is +Inf).</summary>
internal readonly struct SiluOperator : IUnaryOperator
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> Invoke(Vector512<float> x) => x / (Vector512<float>.One + VectorMath.Exp(-x));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Invoke(Vector256<float> x) => x / (Vector256<float>.One + VectorMath.Exp(-x));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<float> Invoke(Vector128<float> x) => x / (Vector128<float>.One + VectorMath.Exp(-x));
}

/// <summary>Vector loops and the split of large inputs over threads.</summary>
internal static unsafe class ElementwiseLoops
{
    /// <summary>Below this many elements an elementwise kernel stays on the calling thread (a Parallel.For costs ~3 µs).</summary>
    internal const int ParallelThreshold = 1 << 16;

    /// <summary>Chunks handed to threads are multiples of this many elements (a 64-byte line holds 16 floats).</summary>
    private const int ChunkAlignment = 64;

    /// <summary>How many threads to use for <paramref name="length"/> elements of elementwise work.</summary>
    internal static int ThreadCount(long length)
    {
        if (length < ParallelThreshold)
        {
            return 1;
        }

        long byWork = length / (ParallelThreshold / 2);
        return (int)Math.Max(1, Math.Min(CpuThreadBudget.MaxThreads, byWork));
    }

    /// <summary>Applies <typeparamref name="TOperator"/> to <paramref name="length"/> elements; destination may equal source.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Unary<TOperator>(float* source, float* destination, nint length)
        where TOperator : struct, IUnaryOperator
    {
        int threads = ThreadCount(length);
        if (threads == 1)
        {
            UnaryRange<TOperator>(source, destination, length);
            return;
        }

        UnaryParallel<TOperator>(source, destination, length, threads);
    }

    /// <summary>The split over threads of <see cref="Unary{TOperator}(float*, float*, nint)"/>, apart so one-thread calls do not allocate its closure.</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void UnaryParallel<TOperator>(float* source, float* destination, nint length, int threads)
        where TOperator : struct, IUnaryOperator
    {
        nint src = (nint)source;
        nint dst = (nint)destination;
        nint chunk = AlignedChunk(length, threads);
        CpuThreadBudget.For(threads, t =>
        {
            nint start = t * chunk;
            nint count = Math.Min(chunk, length - start);
            if (count > 0)
            {
                UnaryRange<TOperator>((float*)src + start, (float*)dst + start, count);
            }
        });
    }

    /// <summary>The chunk length for splitting <paramref name="length"/> elements over <paramref name="threads"/> threads.</summary>
    internal static nint AlignedChunk(long length, int threads)
    {
        long chunk = (length + threads - 1) / threads;
        chunk = (chunk + ChunkAlignment - 1) / ChunkAlignment * ChunkAlignment;
        return (nint)chunk;
    }

    /// <summary>Single-threaded loop. The tail goes through a padded stack buffer so it uses the same vector code.</summary>
    internal static void UnaryRange<TOperator>(float* source, float* destination, nint length)
        where TOperator : struct, IUnaryOperator
    {
        nint i = 0;
        if (Vector512.IsHardwareAccelerated)
        {
            for (; i <= length - 2 * Vector512<float>.Count; i += 2 * Vector512<float>.Count)
            {
                Vector512<float> a = Vector512.Load(source + i);
                Vector512<float> b = Vector512.Load(source + i + Vector512<float>.Count);
                TOperator.Invoke(a).Store(destination + i);
                TOperator.Invoke(b).Store(destination + i + Vector512<float>.Count);
            }

            for (; i <= length - Vector512<float>.Count; i += Vector512<float>.Count)
            {
                TOperator.Invoke(Vector512.Load(source + i)).Store(destination + i);
            }

            if (i < length)
            {
                float* buffer = stackalloc float[Vector512<float>.Count];
                nint rest = length - i;
                Vector512<float>.Zero.Store(buffer);
                Buffer.MemoryCopy(source + i, buffer, rest * sizeof(float), rest * sizeof(float));
                TOperator.Invoke(Vector512.Load(buffer)).Store(buffer);
                Buffer.MemoryCopy(buffer, destination + i, rest * sizeof(float), rest * sizeof(float));
            }
        }
        else if (Vector256.IsHardwareAccelerated)
        {
            for (; i <= length - Vector256<float>.Count; i += Vector256<float>.Count)
            {
                TOperator.Invoke(Vector256.Load(source + i)).Store(destination + i);
            }

            if (i < length)
            {
                float* buffer = stackalloc float[Vector256<float>.Count];
                nint rest = length - i;
                Vector256<float>.Zero.Store(buffer);
                Buffer.MemoryCopy(source + i, buffer, rest * sizeof(float), rest * sizeof(float));
                TOperator.Invoke(Vector256.Load(buffer)).Store(buffer);
                Buffer.MemoryCopy(buffer, destination + i, rest * sizeof(float), rest * sizeof(float));
            }
        }
        else
        {
            for (; i <= length - Vector128<float>.Count; i += Vector128<float>.Count)
            {
                TOperator.Invoke(Vector128.Load(source + i)).Store(destination + i);
            }

            if (i < length)
            {
                float* buffer = stackalloc float[Vector128<float>.Count];
                nint rest = length - i;
                Vector128<float>.Zero.Store(buffer);
                Buffer.MemoryCopy(source + i, buffer, rest * sizeof(float), rest * sizeof(float));
                TOperator.Invoke(Vector128.Load(buffer)).Store(buffer);
                Buffer.MemoryCopy(buffer, destination + i, rest * sizeof(float), rest * sizeof(float));
            }
        }
    }

    /// <summary>
    /// Applies <typeparamref name="TOperator"/> to <paramref name="length"/> elements stored as <typeparamref name="T"/>
    /// (float32, float16 or bfloat16), computing in float32; destination may equal source. Outputs of at least
    /// <see cref="CpuRowKernels.StreamBytes"/> are written with streaming stores (when the destination is 64-byte aligned).
    /// </summary>
    public static void Unary<TOperator, T>(byte* source, byte* destination, long length)
        where TOperator : struct, IFloatOperator
        where T : struct, IFloatLanes
    {
        int threads = ThreadCount(length);
        bool stream = CpuRowKernels.CanStream(destination, 0, length * T.Size);
        if (threads == 1)
        {
            UnaryRange<TOperator, T>(source, destination, length, stream);
            return;
        }

        UnaryParallel<TOperator, T>(source, destination, length, threads, stream);
    }

    /// <summary>The split over threads of <see cref="Unary{TOperator, T}(byte*, byte*, long)"/>, apart so one-thread calls do not allocate its closure.</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void UnaryParallel<TOperator, T>(byte* source, byte* destination, long length, int threads, bool stream)
        where TOperator : struct, IFloatOperator
        where T : struct, IFloatLanes
    {
        nint src = (nint)source;
        nint dst = (nint)destination;
        nint chunk = AlignedChunk(length, threads);
        CpuThreadBudget.For(threads, t =>
        {
            long start = t * (long)chunk;
            long count = Math.Min(chunk, length - start);
            if (count > 0)
            {
                UnaryRange<TOperator, T>((byte*)src + start * T.Size, (byte*)dst + start * T.Size, count, stream);
            }
        });
    }

    /// <summary>
    /// Single-threaded generic unary loop (two vectors per step); the tail goes through a partial (stack-buffered)
    /// vector. <paramref name="stream"/> needs a 64-byte aligned destination: streaming skips the read-for-ownership
    /// of every output line, a third of a large unary operator's memory traffic (docs/perf/cpu.md, Run 7).
    /// </summary>
    internal static void UnaryRange<TOperator, T>(byte* source, byte* destination, long length, bool stream = false)
        where TOperator : struct, IFloatOperator
        where T : struct, IFloatLanes
    {
        const int Lanes = FloatLanes.Count;
        long i = 0;
        if (stream)
        {
            for (; i <= length - 2 * Lanes; i += 2 * Lanes)
            {
                long o = i * T.Size, o1 = (i + Lanes) * T.Size;
                Vector512<float> a = TOperator.Invoke(T.Load(source + o));
                Vector512<float> b = TOperator.Invoke(T.Load(source + o1));
                FloatLanes.StoreStream<T>(a, destination + o);
                FloatLanes.StoreStream<T>(b, destination + o1);
            }

            FloatLanes.StreamFence();
        }
        else
        {
            for (; i <= length - 2 * Lanes; i += 2 * Lanes)
            {
                Vector512<float> a = T.Load(source + i * T.Size);
                Vector512<float> b = T.Load(source + (i + Lanes) * T.Size);
                T.Store(TOperator.Invoke(a), destination + i * T.Size);
                T.Store(TOperator.Invoke(b), destination + (i + Lanes) * T.Size);
            }
        }

        for (; i <= length - Lanes; i += Lanes)
        {
            T.Store(TOperator.Invoke(T.Load(source + i * T.Size)), destination + i * T.Size);
        }

        if (i < length)
        {
            int rest = (int)(length - i);
            FloatLanes.StorePartial<T>(TOperator.Invoke(FloatLanes.LoadPartial<T>(source + i * T.Size, rest, 0f)), destination + i * T.Size, rest);
        }
    }

    /// <summary>
    /// Applies <typeparamref name="TOperator"/> to <paramref name="length"/> element pairs stored as <typeparamref name="T"/>,
    /// computing in float32; the destination may equal either input. Outputs of at least <see cref="CpuRowKernels.StreamBytes"/>
    /// are written with streaming stores (when the destination is 64-byte aligned).
    /// </summary>
    public static void Binary<TOperator, T>(byte* self, byte* other, float alpha, byte* destination, long length)
        where TOperator : struct, IBinaryFloatOperator
        where T : struct, IFloatLanes
    {
        int threads = ThreadCount(length);
        bool stream = CpuRowKernels.CanStream(destination, 0, length * T.Size);
        if (threads == 1)
        {
            BinaryRange<TOperator, T>(self, other, alpha, destination, length, stream);
            return;
        }

        BinaryParallel<TOperator, T>(self, other, alpha, destination, length, threads, stream);
    }

    /// <summary>The split over threads of <see cref="Binary{TOperator, T}"/>, apart so one-thread calls do not allocate its closure.</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void BinaryParallel<TOperator, T>(byte* self, byte* other, float alpha, byte* destination, long length, int threads, bool stream)
        where TOperator : struct, IBinaryFloatOperator
        where T : struct, IFloatLanes
    {
        nint a = (nint)self, b = (nint)other, d = (nint)destination;
        nint chunk = AlignedChunk(length, threads);
        CpuThreadBudget.For(threads, t =>
        {
            long start = t * (long)chunk;
            long count = Math.Min(chunk, length - start);
            if (count > 0)
            {
                BinaryRange<TOperator, T>((byte*)a + start * T.Size, (byte*)b + start * T.Size, alpha, (byte*)d + start * T.Size, count, stream);
            }
        });
    }

    /// <summary>Single-threaded generic binary loop (two vectors per step); <paramref name="stream"/> needs a 64-byte aligned destination.</summary>
    internal static void BinaryRange<TOperator, T>(byte* self, byte* other, float alpha, byte* destination, long length, bool stream = false)
        where TOperator : struct, IBinaryFloatOperator
        where T : struct, IFloatLanes
    {
        const int Lanes = FloatLanes.Count;
        Vector512<float> scale = Vector512.Create(alpha);
        long i = 0;
        if (stream)
        {
            for (; i <= length - 2 * Lanes; i += 2 * Lanes)
            {
                long o = i * T.Size, o1 = (i + Lanes) * T.Size;
                Vector512<float> x = TOperator.Invoke(T.Load(self + o), T.Load(other + o), scale);
                Vector512<float> y = TOperator.Invoke(T.Load(self + o1), T.Load(other + o1), scale);
                FloatLanes.StoreStream<T>(x, destination + o);
                FloatLanes.StoreStream<T>(y, destination + o1);
            }

            FloatLanes.StreamFence();
        }
        else
        {
            for (; i <= length - 2 * Lanes; i += 2 * Lanes)
            {
                long o = i * T.Size, o1 = (i + Lanes) * T.Size;
                Vector512<float> x = TOperator.Invoke(T.Load(self + o), T.Load(other + o), scale);
                Vector512<float> y = TOperator.Invoke(T.Load(self + o1), T.Load(other + o1), scale);
                T.Store(x, destination + o);
                T.Store(y, destination + o1);
            }
        }

        for (; i <= length - Lanes; i += Lanes)
        {
            long offset = i * T.Size;
            T.Store(TOperator.Invoke(T.Load(self + offset), T.Load(other + offset), scale), destination + offset);
        }

        if (i < length)
        {
            int rest = (int)(length - i);
            long offset = i * T.Size;
            Vector512<float> a = FloatLanes.LoadPartial<T>(self + offset, rest, 0f);
            Vector512<float> b = FloatLanes.LoadPartial<T>(other + offset, rest, 1f);
            FloatLanes.StorePartial<T>(TOperator.Invoke(a, b, scale), destination + offset, rest);
        }
    }
}
