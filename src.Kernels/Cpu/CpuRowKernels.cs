using System;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using GemsInjector.Kernels.Numerics;

namespace GemsInjector.Kernels.Cpu;

/// <summary>Work over a range of rows (or other independent items) that <see cref="CpuRowKernels.Run{TJob}"/> may split over threads.</summary>
internal interface IRowJob
{
    /// <summary>Processes items [<paramref name="first"/>, <paramref name="end"/>).</summary>
    void Run(long first, long end);
}

/// <summary>
/// Row-wise kernels generic over the storage type (float32, float16, bfloat16), computing and accumulating in float32:
/// gated activations, softmax / log-softmax (last or any dimension), rms_norm, fused add + rms_norm and layer_norm.
/// Rows are split over threads only when the whole input is large (a Parallel.For costs ~3 µs); one row stays on the
/// calling thread. Nothing is allocated.
/// </summary>
internal static unsafe class CpuRowKernels
{
    private const int Lanes = FloatLanes.Count;

    /// <summary>Runs <paramref name="job"/> over <paramref name="items"/> items holding <paramref name="totalElements"/> elements in all.</summary>
    public static void Run<TJob>(TJob job, long items, long totalElements)
        where TJob : struct, IRowJob
    {
        int threads = items < 2 ? 1 : (int)Math.Min(items, ElementwiseLoops.ThreadCount(totalElements));
        if (threads == 1)
        {
            job.Run(0, items);
            return;
        }

        RunParallel(job, items, threads);
    }

    /// <summary>
    /// The split over threads, apart from <see cref="Run{TJob}"/>: its lambda captures the arguments, and C# allocates
    /// the closure on entry to the method that declares them, so in <see cref="Run{TJob}"/> itself every one-thread call paid it.
    /// </summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void RunParallel<TJob>(TJob job, long items, int threads)
        where TJob : struct, IRowJob
    {
        long perThread = (items + threads - 1) / threads;
        CpuThreadBudget.For(threads, t =>
        {
            long first = t * perThread;
            long end = Math.Min(items, first + perThread);
            if (first < end)
            {
                job.Run(first, end);
            }
        });
    }

    /// <summary>
    /// Outputs of at least this many bytes are written with streaming (non-temporal) stores where aligned: they do not fit
    /// the 32 MiB last-level cache with their inputs, so a normal store would first read each line (read-for-ownership)
    /// and evict input lines.
    /// </summary>
    public const long StreamBytes = 16L << 20;

    /// <summary>
    /// Whether softmax rows whose output is streamed prefetch the next input row during their exponential pass. On unless
    /// the environment variable GEMS_CPU_SOFTMAX_PREFETCH is "0" (read once; for A/B measurements, docs/perf/cpu-notes.md).
    /// </summary>
    internal static readonly bool PrefetchSoftmaxRows = Environment.GetEnvironmentVariable("GEMS_CPU_SOFTMAX_PREFETCH") != "0";

    /// <summary>Whether rows of <paramref name="rowBytes"/> starting at <paramref name="destination"/> can be streamed, and are worth it.</summary>
    public static bool CanStream(byte* destination, long rowBytes, long totalBytes) =>
        totalBytes >= StreamBytes && ((nint)destination & 63) == 0 && rowBytes % 64 == 0;

    /// <summary>Σ x² over a row, in float32 lanes.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float SumOfSquares<T>(byte* x, int n)
        where T : struct, IFloatLanes
    {
        Vector512<float> a0 = Vector512<float>.Zero, a1 = Vector512<float>.Zero;
        int j = 0;
        for (; j <= n - 2 * Lanes; j += 2 * Lanes)
        {
            Vector512<float> v0 = T.Load(x + j * T.Size);
            Vector512<float> v1 = T.Load(x + (j + Lanes) * T.Size);
            a0 = Vector512.FusedMultiplyAdd(v0, v0, a0);
            a1 = Vector512.FusedMultiplyAdd(v1, v1, a1);
        }

        for (; j <= n - Lanes; j += Lanes)
        {
            Vector512<float> v = T.Load(x + j * T.Size);
            a0 = Vector512.FusedMultiplyAdd(v, v, a0);
        }

        if (j < n)
        {
            Vector512<float> v = FloatLanes.LoadPartial<T>(x + j * T.Size, n - j, 0f);
            a1 = Vector512.FusedMultiplyAdd(v, v, a1);
        }

        return Vector512.Sum(a0 + a1);
    }

    /// <summary>Σ x over a row, in float32 lanes.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Sum<T>(byte* x, int n)
        where T : struct, IFloatLanes
    {
        Vector512<float> a0 = Vector512<float>.Zero, a1 = Vector512<float>.Zero;
        int j = 0;
        for (; j <= n - 2 * Lanes; j += 2 * Lanes)
        {
            a0 += T.Load(x + j * T.Size);
            a1 += T.Load(x + (j + Lanes) * T.Size);
        }

        for (; j <= n - Lanes; j += Lanes)
        {
            a0 += T.Load(x + j * T.Size);
        }

        if (j < n)
        {
            a1 += FloatLanes.LoadPartial<T>(x + j * T.Size, n - j, 0f);
        }

        return Vector512.Sum(a0 + a1);
    }

    /// <summary>d[j] = (x[j] * scale) * w[j] over a row (the order aten's composite rms_norm uses).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void ScaleRow<T>(byte* x, byte* w, float scale, byte* d, int n)
        where T : struct, IFloatLanes
    {
        Vector512<float> s = Vector512.Create(scale);
        int j = 0;
        for (; j <= n - Lanes; j += Lanes)
        {
            int o = j * T.Size;
            T.Store(T.Load(x + o) * s * T.Load(w + o), d + o);
        }

        if (j < n)
        {
            int o = j * T.Size;
            FloatLanes.StorePartial<T>(FloatLanes.LoadPartial<T>(x + o, n - j, 0f) * s * FloatLanes.LoadPartial<T>(w + o, n - j, 0f), d + o, n - j);
        }
    }

    /// <summary>Adds 16 float32 lanes to two float64 accumulators (lanes 0-7 and 8-15), keeping lane order.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void AddWide(ref Vector512<double> low, ref Vector512<double> high, Vector512<float> values)
    {
        (Vector512<double> lower, Vector512<double> upper) = Vector512.Widen(values);
        low += lower;
        high += upper;
    }

    /// <summary>1 / sqrt(mean + epsilon) in float64, rounded to float32.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float InverseRms(float sumOfSquares, int n, double epsilon) => (float)(1.0 / Math.Sqrt((double)sumOfSquares / n + epsilon));
}

/// <summary>rms_norm rows: d = x / sqrt(mean(x²) + eps) * w.</summary>
internal readonly unsafe struct RmsNormJob<T> : IRowJob
    where T : struct, IFloatLanes
{
    private readonly byte* input;
    private readonly byte* weight;
    private readonly byte* destination;
    private readonly int n;
    private readonly double epsilon;

    public RmsNormJob(byte* input, byte* weight, byte* destination, int n, double epsilon)
    {
        this.input = input;
        this.weight = weight;
        this.destination = destination;
        this.n = n;
        this.epsilon = epsilon;
    }

    public void Run(long first, long end)
    {
        for (long row = first; row < end; row++)
        {
            byte* x = input + row * n * T.Size;
            float scale = CpuRowKernels.InverseRms(CpuRowKernels.SumOfSquares<T>(x, n), n, epsilon);
            CpuRowKernels.ScaleRow<T>(x, weight, scale, destination + row * n * T.Size, n);
        }
    }
}

/// <summary>
/// vLLM's fused_add_rms_norm rows, in place: residual ← input + residual (rounded to the storage type);
/// input ← residual / sqrt(mean(residual²) + eps) * w, the mean taken over the rounded residual as vLLM does.
/// </summary>
internal readonly unsafe struct FusedAddRmsNormJob<T> : IRowJob
    where T : struct, IFloatLanes
{
    private const int Lanes = FloatLanes.Count;
    private readonly byte* input;
    private readonly byte* residual;
    private readonly byte* weight;
    private readonly int n;
    private readonly double epsilon;

    public FusedAddRmsNormJob(byte* input, byte* residual, byte* weight, int n, double epsilon)
    {
        this.input = input;
        this.residual = residual;
        this.weight = weight;
        this.n = n;
        this.epsilon = epsilon;
    }

    public void Run(long first, long end)
    {
        for (long row = first; row < end; row++)
        {
            byte* x = input + row * n * T.Size;
            byte* r = residual + row * n * T.Size;
            Vector512<float> acc = Vector512<float>.Zero;
            int j = 0;
            for (; j <= n - Lanes; j += Lanes)
            {
                int o = j * T.Size;
                Vector512<float> z = T.Load(x + o) + T.Load(r + o);
                T.Store(z, r + o);
                if (typeof(T) != typeof(Float32Lanes))
                {
                    z = T.Load(r + o); // the rounded sum, as stored
                }

                acc = Vector512.FusedMultiplyAdd(z, z, acc);
            }

            if (j < n)
            {
                int o = j * T.Size;
                Vector512<float> z = FloatLanes.LoadPartial<T>(x + o, n - j, 0f) + FloatLanes.LoadPartial<T>(r + o, n - j, 0f);
                FloatLanes.StorePartial<T>(z, r + o, n - j);
                z = FloatLanes.LoadPartial<T>(r + o, n - j, 0f);
                acc = Vector512.FusedMultiplyAdd(z, z, acc);
            }

            float scale = CpuRowKernels.InverseRms(Vector512.Sum(acc), n, epsilon);
            CpuRowKernels.ScaleRow<T>(r, weight, scale, x, n);
        }
    }
}

/// <summary>layer_norm rows: d = (x - mean) / sqrt(var + eps) * w + b (biased variance, two passes); w and b may be null.</summary>
internal readonly unsafe struct LayerNormJob<T> : IRowJob
    where T : struct, IFloatLanes
{
    private const int Lanes = FloatLanes.Count;
    private readonly byte* input;
    private readonly byte* weight;
    private readonly byte* bias;
    private readonly byte* destination;
    private readonly int n;
    private readonly double epsilon;

    public LayerNormJob(byte* input, byte* weight, byte* bias, byte* destination, int n, double epsilon)
    {
        this.input = input;
        this.weight = weight;
        this.bias = bias;
        this.destination = destination;
        this.n = n;
        this.epsilon = epsilon;
    }

    public void Run(long first, long end)
    {
        bool hasWeight = weight != null, hasBias = bias != null;
        for (long row = first; row < end; row++)
        {
            byte* x = input + row * n * T.Size;
            byte* d = destination + row * n * T.Size;
            float mean = CpuRowKernels.Sum<T>(x, n) / n;
            Vector512<float> m = Vector512.Create(mean);
            Vector512<float> acc = Vector512<float>.Zero;
            int j = 0;
            for (; j <= n - Lanes; j += Lanes)
            {
                Vector512<float> c = T.Load(x + j * T.Size) - m;
                acc = Vector512.FusedMultiplyAdd(c, c, acc);
            }

            if (j < n)
            {
                Vector512<float> c = FloatLanes.LoadPartial<T>(x + j * T.Size, n - j, mean) - m;
                acc = Vector512.FusedMultiplyAdd(c, c, acc);
            }

            float rstd = CpuRowKernels.InverseRms(Vector512.Sum(acc), n, epsilon);
            Vector512<float> s = Vector512.Create(rstd);
            for (j = 0; j < n; j += Lanes)
            {
                int o = j * T.Size;
                int count = Math.Min(Lanes, n - j);
                bool full = count == Lanes;
                Vector512<float> y = ((full ? T.Load(x + o) : FloatLanes.LoadPartial<T>(x + o, count, 0f)) - m) * s;
                if (hasWeight)
                {
                    y *= full ? T.Load(weight + o) : FloatLanes.LoadPartial<T>(weight + o, count, 0f);
                }

                if (hasBias)
                {
                    y += full ? T.Load(bias + o) : FloatLanes.LoadPartial<T>(bias + o, count, 0f);
                }

                if (full)
                {
                    T.Store(y, d + o);
                }
                else
                {
                    FloatLanes.StorePartial<T>(y, d + o, count);
                }
            }
        }
    }
}

/// <summary>
/// Gated activation rows (vLLM's silu_and_mul / gelu_and_mul): x is [rows, 2d], d[j] = act(x[j]) * x[d + j]. Outputs of
/// at least <see cref="CpuRowKernels.StreamBytes"/> are written with streaming stores.
/// </summary>
internal readonly unsafe struct GatedJob<TOperator, T> : IRowJob
    where TOperator : struct, IFloatOperator
    where T : struct, IFloatLanes
{
    private const int Lanes = FloatLanes.Count;
    private readonly byte* input;
    private readonly byte* destination;
    private readonly long half;
    private readonly bool stream;

    public GatedJob(byte* input, byte* destination, long half, long rows)
    {
        this.input = input;
        this.destination = destination;
        this.half = half;
        stream = CpuRowKernels.CanStream(destination, half * T.Size, rows * half * T.Size);
    }

    public void Run(long first, long end)
    {
        for (long row = first; row < end; row++)
        {
            byte* gate = input + 2 * row * half * T.Size;
            byte* up = gate + half * T.Size;
            byte* d = destination + row * half * T.Size;
            long j = 0;
            if (stream)
            {
                for (; j <= half - 2 * Lanes; j += 2 * Lanes)
                {
                    long o = j * T.Size, o1 = (j + Lanes) * T.Size;
                    Vector512<float> a = TOperator.Invoke(T.Load(gate + o)) * T.Load(up + o);
                    Vector512<float> b = TOperator.Invoke(T.Load(gate + o1)) * T.Load(up + o1);
                    FloatLanes.StoreStream<T>(a, d + o);
                    FloatLanes.StoreStream<T>(b, d + o1);
                }
            }
            else
            {
                for (; j <= half - 2 * Lanes; j += 2 * Lanes)
                {
                    long o = j * T.Size, o1 = (j + Lanes) * T.Size;
                    Vector512<float> a = TOperator.Invoke(T.Load(gate + o)) * T.Load(up + o);
                    Vector512<float> b = TOperator.Invoke(T.Load(gate + o1)) * T.Load(up + o1);
                    T.Store(a, d + o);
                    T.Store(b, d + o1);
                }
            }

            for (; j <= half - Lanes; j += Lanes)
            {
                long o = j * T.Size;
                T.Store(TOperator.Invoke(T.Load(gate + o)) * T.Load(up + o), d + o);
            }

            if (j < half)
            {
                long o = j * T.Size;
                int count = (int)(half - j);
                FloatLanes.StorePartial<T>(
                    TOperator.Invoke(FloatLanes.LoadPartial<T>(gate + o, count, 0f)) * FloatLanes.LoadPartial<T>(up + o, count, 0f), d + o, count);
            }
        }

        if (stream)
        {
            FloatLanes.StreamFence();
        }
    }
}

/// <summary>How a softmax row turns x into the base-2 exponent t = (x - max)·log2 e (up to a shift shared by the row).</summary>
internal interface ISoftmaxExponent
{
    /// <summary>t for 16 lanes, from the two constants the row chose (see the implementations).</summary>
    static abstract Vector512<float> Apply(Vector512<float> x, Vector512<float> a, Vector512<float> b);
}

/// <summary>t = x·a + b with a = log2 e and b = -(max·log2 e rounded to float32): one FMA. The rounding of b shifts every t of the row alike.</summary>
internal readonly struct FusedSoftmaxExponent : ISoftmaxExponent
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> Apply(Vector512<float> x, Vector512<float> a, Vector512<float> b) => Vector512.FusedMultiplyAdd(x, a, b);
}

/// <summary>t = (x - a)·b with a = max and b = log2 e: for rows whose max is too large for the fused form's shift to stay small.</summary>
internal readonly struct DifferenceSoftmaxExponent : ISoftmaxExponent
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> Apply(Vector512<float> x, Vector512<float> a, Vector512<float> b) => (x - a) * b;
}

/// <summary>
/// softmax / log_softmax over contiguous rows (the last dimension): max, then Σ 2^t with t = (x - max)·log2 e, then
/// 2^t / Σ or x - max - log Σ. softmax keeps 2^t of the row during the sum pass (in the output itself when it is float32
/// and not streamed, else in float32 scratch for L1-sized rows) and scales it in place, so the exponential is computed
/// once per element. Σ adds 256-element blocks of float32 partial sums (4 terms per lane) in float64 lanes, so the max's
/// term cannot swallow many small ones. Rows whose max is not finite (a NaN, +Inf, or all -Inf) give NaN like aten.
/// Outputs larger than <see cref="CpuRowKernels.StreamBytes"/> are written with streaming stores, and their rows
/// prefetch the next input row during the exponential pass.
/// </summary>
internal readonly unsafe struct SoftmaxLastJob<T> : IRowJob
    where T : struct, IFloatLanes
{
    private const int Lanes = FloatLanes.Count;

    /// <summary>Rows up to this many elements that cannot be kept in the output go through the float32 scratch row.</summary>
    private const int ScratchRow = 1 << 16;

    /// <summary>Elements per float32 block of Σ.</summary>
    private const int SumBlock = 16 * Lanes;

    /// <summary>
    /// Below this |max| the fused exponent is used: max·log2 e is then below 2^21, so its float32 rounding (the shift of
    /// every t of the row) is at most 1/8 and 2^t cannot overflow.
    /// </summary>
    private const float FusedMaxLimit = 1 << 20;

    private readonly byte* input;
    private readonly byte* destination;
    private readonly int n;
    private readonly bool log;
    private readonly bool stream;
    private readonly bool prefetch;

    public SoftmaxLastJob(byte* input, byte* destination, int n, bool log, long rows)
    {
        this.input = input;
        this.destination = destination;
        this.n = n;
        this.log = log;
        stream = CpuRowKernels.CanStream(destination, n * T.Size, rows * n * T.Size);
        prefetch = stream && CpuRowKernels.PrefetchSoftmaxRows;
    }

    public void Run(long first, long end)
    {
        bool inPlace = typeof(T) == typeof(Float32Lanes) && !stream;
        float* scratch = !log && !inPlace && n <= ScratchRow ? KernelScratch.Floats(KernelScratch.SlotRow, n) : null;
        Vector512<float> log2E = Vector512.Create(VectorMath.Log2OfE);
        for (long row = first; row < end; row++)
        {
            byte* x = input + row * n * T.Size;
            byte* d = destination + row * n * T.Size;
            float max = RowMax(x);
            if (!float.IsFinite(max))
            {
                FillNaN(d);
                continue;
            }

            float* e = log ? null : inPlace ? (float*)d : scratch;
            byte* next = prefetch && Sse.IsSupported && row + 1 < end ? x + n * T.Size : null;
            if (Math.Abs(max) < FusedMaxLimit)
            {
                float offset = max * VectorMath.Log2OfE;
                // t = x·log2e - offset = (x - max)·log2e + shift, with shift = max·log2e - offset exact in float64.
                Finish<FusedSoftmaxExponent>(x, d, e, next, max, log2E, Vector512.Create(-offset), (double)max * VectorMath.Log2OfE - offset);
            }
            else
            {
                Finish<DifferenceSoftmaxExponent>(x, d, e, next, max, Vector512.Create(max), log2E, 0);
            }
        }

        if (stream)
        {
            FloatLanes.StreamFence();
        }
    }

    /// <summary>The sum pass and the output pass of one row; Σ carries the factor 2^shift, which log_softmax removes.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void Finish<TExponent>(byte* x, byte* d, float* e, byte* next, float max, Vector512<float> a, Vector512<float> b, double shift)
        where TExponent : struct, ISoftmaxExponent
    {
        double sum = ExpSum<TExponent>(x, e, next, a, b);
        if (log)
        {
            LogOutput(x, d, max, (float)(Math.Log(sum) - shift * Math.Log(2)));
        }
        else if (e != null)
        {
            ScaleOutput(e, d, Vector512.Create((float)(1.0 / sum)));
        }
        else
        {
            RecomputeOutput<TExponent>(x, d, a, b, Vector512.Create((float)(1.0 / sum)));
        }
    }

    private float RowMax(byte* x)
    {
        Vector512<float> max0 = Vector512.Create(float.NegativeInfinity), max1 = max0, max2 = max0, max3 = max0;
        int j = 0;
        for (; j <= n - 4 * Lanes; j += 4 * Lanes)
        {
            max0 = Vector512.Max(max0, T.Load(x + j * T.Size));
            max1 = Vector512.Max(max1, T.Load(x + (j + Lanes) * T.Size));
            max2 = Vector512.Max(max2, T.Load(x + (j + 2 * Lanes) * T.Size));
            max3 = Vector512.Max(max3, T.Load(x + (j + 3 * Lanes) * T.Size));
        }

        for (; j <= n - Lanes; j += Lanes)
        {
            max0 = Vector512.Max(max0, T.Load(x + j * T.Size));
        }

        if (j < n)
        {
            max1 = Vector512.Max(max1, FloatLanes.LoadPartial<T>(x + j * T.Size, n - j, float.NegativeInfinity));
        }

        return Max(Vector512.Max(Vector512.Max(max0, max1), Vector512.Max(max2, max3)));
    }

    private void FillNaN(byte* d)
    {
        Vector512<float> nan = Vector512.Create(float.NaN);
        int j = 0;
        for (; j <= n - Lanes; j += Lanes)
        {
            T.Store(nan, d + j * T.Size);
        }

        if (j < n)
        {
            FloatLanes.StorePartial<T>(nan, d + j * T.Size, n - j);
        }
    }

    /// <summary>Σ 2^t over the row, storing 2^t into <paramref name="e"/> unless it is null.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private double ExpSum<TExponent>(byte* x, float* e, byte* next, Vector512<float> a, Vector512<float> b)
        where TExponent : struct, ISoftmaxExponent
    {
        Vector512<double> sumLow = Vector512<double>.Zero, sumHigh = Vector512<double>.Zero;
        int j = 0;
        while (j <= n - 4 * Lanes)
        {
            Vector512<float> s0 = Vector512<float>.Zero, s1 = s0, s2 = s0, s3 = s0;
            for (int stop = Math.Min(n, j + SumBlock) - 4 * Lanes; j <= stop; j += 4 * Lanes)
            {
                if (next != null)
                {
                    // The next row's lines under this block, towards L2 while this row computes.
                    for (int line = 0; line < 4 * Lanes * T.Size; line += 64)
                    {
                        Sse.Prefetch1(next + j * T.Size + line);
                    }
                }

                Vector512<float> e0 = VectorMath.Exp2NonPositive(TExponent.Apply(T.Load(x + j * T.Size), a, b));
                Vector512<float> e1 = VectorMath.Exp2NonPositive(TExponent.Apply(T.Load(x + (j + Lanes) * T.Size), a, b));
                Vector512<float> e2 = VectorMath.Exp2NonPositive(TExponent.Apply(T.Load(x + (j + 2 * Lanes) * T.Size), a, b));
                Vector512<float> e3 = VectorMath.Exp2NonPositive(TExponent.Apply(T.Load(x + (j + 3 * Lanes) * T.Size), a, b));
                if (e != null)
                {
                    e0.Store(e + j);
                    e1.Store(e + j + Lanes);
                    e2.Store(e + j + 2 * Lanes);
                    e3.Store(e + j + 3 * Lanes);
                }

                s0 += e0;
                s1 += e1;
                s2 += e2;
                s3 += e3;
            }

            CpuRowKernels.AddWide(ref sumLow, ref sumHigh, (s0 + s1) + (s2 + s3));
        }

        for (; j <= n - Lanes; j += Lanes)
        {
            Vector512<float> e0 = VectorMath.Exp2NonPositive(TExponent.Apply(T.Load(x + j * T.Size), a, b));
            if (e != null)
            {
                e0.Store(e + j);
            }

            CpuRowKernels.AddWide(ref sumLow, ref sumHigh, e0);
        }

        if (j < n)
        {
            // The padding lanes hold -Inf, whose t is -Inf: 2^t = 0.
            Vector512<float> e0 = VectorMath.Exp2NonPositive(TExponent.Apply(FloatLanes.LoadPartial<T>(x + j * T.Size, n - j, float.NegativeInfinity), a, b));
            if (e != null)
            {
                FloatLanes.StorePartial<Float32Lanes>(e0, (byte*)(e + j), n - j);
            }

            CpuRowKernels.AddWide(ref sumLow, ref sumHigh, e0);
        }

        return Vector512.Sum(sumLow + sumHigh);
    }

    /// <summary>d = e · (1 / Σ); e may be d itself (float32).</summary>
    private void ScaleOutput(float* e, byte* d, Vector512<float> inverse)
    {
        int j = 0;
        if (stream)
        {
            for (; j <= n - Lanes; j += Lanes)
            {
                FloatLanes.StoreStream<T>(Vector512.Load(e + j) * inverse, d + j * T.Size);
            }
        }
        else
        {
            for (; j <= n - 2 * Lanes; j += 2 * Lanes)
            {
                T.Store(Vector512.Load(e + j) * inverse, d + j * T.Size);
                T.Store(Vector512.Load(e + j + Lanes) * inverse, d + (j + Lanes) * T.Size);
            }

            for (; j <= n - Lanes; j += Lanes)
            {
                T.Store(Vector512.Load(e + j) * inverse, d + j * T.Size);
            }
        }

        if (j < n)
        {
            FloatLanes.StorePartial<T>(FloatLanes.LoadPartial<Float32Lanes>((byte*)(e + j), n - j, 0f) * inverse, d + j * T.Size, n - j);
        }
    }

    /// <summary>Rows too long for the scratch row (16-bit or streamed outputs): 2^t computed again for the output.</summary>
    private void RecomputeOutput<TExponent>(byte* x, byte* d, Vector512<float> a, Vector512<float> b, Vector512<float> inverse)
        where TExponent : struct, ISoftmaxExponent
    {
        int j = 0;
        for (; j <= n - Lanes; j += Lanes)
        {
            T.Store(VectorMath.Exp2NonPositive(TExponent.Apply(T.Load(x + j * T.Size), a, b)) * inverse, d + j * T.Size);
        }

        if (j < n)
        {
            Vector512<float> t = TExponent.Apply(FloatLanes.LoadPartial<T>(x + j * T.Size, n - j, float.NegativeInfinity), a, b);
            FloatLanes.StorePartial<T>(VectorMath.Exp2NonPositive(t) * inverse, d + j * T.Size, n - j);
        }
    }

    /// <summary>
    /// log_softmax's output pass: d = (x - max) - log Σ. x - max is exact near the max (where the result is near 0), which
    /// x - (max + log Σ) is not once |max| is large.
    /// </summary>
    private void LogOutput(byte* x, byte* d, float max, float logSum)
    {
        Vector512<float> m = Vector512.Create(max), l = Vector512.Create(logSum);
        int j = 0;
        if (stream)
        {
            for (; j <= n - Lanes; j += Lanes)
            {
                FloatLanes.StoreStream<T>((T.Load(x + j * T.Size) - m) - l, d + j * T.Size);
            }
        }
        else
        {
            for (; j <= n - Lanes; j += Lanes)
            {
                T.Store((T.Load(x + j * T.Size) - m) - l, d + j * T.Size);
            }
        }

        if (j < n)
        {
            FloatLanes.StorePartial<T>((FloatLanes.LoadPartial<T>(x + j * T.Size, n - j, 0f) - m) - l, d + j * T.Size, n - j);
        }
    }

    /// <summary>The largest lane; NaN if a lane is NaN.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float Max(Vector512<float> v)
    {
        Vector256<float> a = Vector256.Max(v.GetLower(), v.GetUpper());
        Vector128<float> b = Vector128.Max(a.GetLower(), a.GetUpper());
        float m = b[0];
        for (int i = 1; i < 4; i++)
        {
            m = MathF.Max(m, b[i]);
        }

        return m;
    }
}

/// <summary>
/// softmax / log_softmax over a middle dimension of a contiguous [outer, length, inner] tensor: each item is one outer
/// index and a block of 16 inner columns, processed with one lane per column.
/// </summary>
internal readonly unsafe struct SoftmaxStridedJob<T> : IRowJob
    where T : struct, IFloatLanes
{
    private const int Lanes = FloatLanes.Count;
    private readonly byte* input;
    private readonly byte* destination;
    private readonly long length;
    private readonly long inner;
    private readonly long blocks;
    private readonly bool log;

    public SoftmaxStridedJob(byte* input, byte* destination, long length, long inner, bool log)
    {
        this.input = input;
        this.destination = destination;
        this.length = length;
        this.inner = inner;
        blocks = (inner + Lanes - 1) / Lanes;
        this.log = log;
    }

    /// <summary>The number of items: outer × column blocks.</summary>
    public long Items(long outer) => outer * blocks;

    public void Run(long first, long end)
    {
        long stride = inner * T.Size;
        for (long item = first; item < end; item++)
        {
            long outerIndex = item / blocks;
            long column = item % blocks * Lanes;
            int count = (int)Math.Min(Lanes, inner - column);
            long offset = (outerIndex * length * inner + column) * T.Size;
            byte* x = input + offset;
            byte* d = destination + offset;
            Vector512<float> m = Vector512.Create(float.NegativeInfinity);
            for (long k = 0; k < length; k++)
            {
                m = Vector512.Max(m, Load(x + k * stride, count));
            }

            Vector512<double> sumLow = Vector512<double>.Zero, sumHigh = Vector512<double>.Zero;
            for (long k = 0; k < length; k++)
            {
                CpuRowKernels.AddWide(ref sumLow, ref sumHigh, VectorMath.Exp(Load(x + k * stride, count) - m));
            }

            if (log)
            {
                Vector512<float> shift = Shift(m, sumLow, sumHigh);
                for (long k = 0; k < length; k++)
                {
                    Store(Load(x + k * stride, count) - shift, d + k * stride, count);
                }
            }
            else
            {
                Vector512<float> inverse = Vector512.Narrow(Vector512<double>.One / sumLow, Vector512<double>.One / sumHigh);
                for (long k = 0; k < length; k++)
                {
                    Store(VectorMath.Exp(Load(x + k * stride, count) - m) * inverse, d + k * stride, count);
                }
            }
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> Load(byte* source, int count) =>
        count == Lanes ? T.Load(source) : FloatLanes.LoadPartial<T>(source, count, 0f);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Store(Vector512<float> values, byte* destination, int count)
    {
        if (count == Lanes)
        {
            T.Store(values, destination);
        }
        else
        {
            FloatLanes.StorePartial<T>(values, destination, count);
        }
    }

    /// <summary>max + log Σ per lane, in float64 (once per column block, so scalar is fine).</summary>
    private static Vector512<float> Shift(Vector512<float> max, Vector512<double> sumLow, Vector512<double> sumHigh)
    {
        FloatBlock block = default;
        float* lanes = (float*)&block;
        max.Store(lanes);
        for (int i = 0; i < Lanes; i++)
        {
            lanes[i] = (float)(lanes[i] + Math.Log(i < Lanes / 2 ? sumLow[i] : sumHigh[i - Lanes / 2]));
        }

        return Vector512.Load(lanes);
    }

    [InlineArray(Lanes)]
    private struct FloatBlock
    {
        private float element;
    }
}
