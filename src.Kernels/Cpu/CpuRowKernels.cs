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

    [SkipLocalsInit] // the pivot rows below are written before they are read
    public void Run(long first, long end)
    {
        bool inPlace = typeof(T) == typeof(Float32Lanes) && !stream;
        float* scratch = !log && !inPlace && n <= ScratchRow ? KernelScratch.Floats(KernelScratch.SlotRow, n) : null;
        Vector512<float> log2E = Vector512.Create(VectorMath.Log2OfE);
        bool onePass = n <= ScratchRow;
        float* blockPivots = stackalloc float[onePass ? (n + SumBlock - 1) / SumBlock * Lanes : 0];
        for (long row = first; row < end; row++)
        {
            byte* x = input + row * n * T.Size;
            byte* d = destination + row * n * T.Size;
            float* e = log ? null : inPlace ? (float*)d : scratch;
            byte* next = prefetch && Sse.IsSupported && row + 1 < end ? x + n * T.Size : null;
            if (onePass && OnePass(x, d, e, next, blockPivots))
            {
                continue;
            }

            float max = RowMax(x);
            if (!float.IsFinite(max))
            {
                FillNaN(d);
                continue;
            }

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

    /// <summary>
    /// The whole row in one read of x. Each lane (element j of the row falls in lane j mod 16) keeps a running max and a
    /// pivot P = ⌈max(running max, -2^20)·log2 e⌉, an integer; each 256-element block raises them by its own lane-wise
    /// max, then stores 2^t with t = x·log2 e - P (so t ≤ 1/16) and adds its terms to the lane's Σ, first moved to the
    /// raised pivot. Everything stays lane-wise — no horizontal max per block on the path to the exponentials. As pivots
    /// are integers, moving Σ and each block's factor 2^(its pivot - the row's pivot) in the output pass are exact powers
    /// of two: no rounding is added to the three-pass form's. Returns false, having written nothing that counts, for rows
    /// the three-pass path must take: a max that is not finite or of at least 2^20 (the difference exponent), or a NaN.
    /// </summary>
    private bool OnePass(byte* x, byte* d, float* e, byte* next, float* blockPivots)
    {
        Vector512<float> log2E = Vector512.Create(VectorMath.Log2OfE);
        Vector512<double> sumLow = Vector512<double>.Zero, sumHigh = Vector512<double>.Zero;
        // Σ x: NaN if an element is NaN, which the native max may drop. (Also NaN for a row holding both infinities or
        // overflowing; such rows take the three-pass path anyway.)
        Vector512<float> probe = Vector512<float>.Zero;
        Vector512<float> runningMax = Vector512.Create(float.NegativeInfinity);
        Vector512<float> pivot = Pivot(runningMax);
        int fullBlocks = n / SumBlock;
        Vector512<float> blockMax = fullBlocks > 0 ? BlockMax(x, ref probe) : runningMax;
        int j = 0;
        for (int block = 0; block < fullBlocks; block++, j += SumBlock)
        {
            Raise(blockMax, ref runningMax, ref pivot, ref sumLow, ref sumHigh);
            pivot.Store(blockPivots + block * Lanes);
            Vector512<float> negativePivot = -pivot;
            if (block + 1 < fullBlocks)
            {
                // The next block's max comes first in program order, so its latency hides behind this block's exponentials.
                blockMax = BlockMax(x + (j + SumBlock) * T.Size, ref probe);
            }

            byte* xb = x + j * T.Size;
            Vector512<float> s0 = Vector512<float>.Zero, s1 = s0, s2 = s0, s3 = s0;
            for (int k = 0; k < SumBlock; k += 4 * Lanes)
            {
                if (next != null)
                {
                    // The next row's lines under these elements, towards L2 while this row computes.
                    for (int line = 0; line < 4 * Lanes * T.Size; line += 64)
                    {
                        Sse.Prefetch1(next + (j + k) * T.Size + line);
                    }
                }

                Vector512<float> e0 = VectorMath.Exp2NonPositive(Vector512.FusedMultiplyAdd(T.Load(xb + k * T.Size), log2E, negativePivot));
                Vector512<float> e1 = VectorMath.Exp2NonPositive(Vector512.FusedMultiplyAdd(T.Load(xb + (k + Lanes) * T.Size), log2E, negativePivot));
                Vector512<float> e2 = VectorMath.Exp2NonPositive(Vector512.FusedMultiplyAdd(T.Load(xb + (k + 2 * Lanes) * T.Size), log2E, negativePivot));
                Vector512<float> e3 = VectorMath.Exp2NonPositive(Vector512.FusedMultiplyAdd(T.Load(xb + (k + 3 * Lanes) * T.Size), log2E, negativePivot));
                if (e != null)
                {
                    e0.Store(e + j + k);
                    e1.Store(e + j + k + Lanes);
                    e2.Store(e + j + k + 2 * Lanes);
                    e3.Store(e + j + k + 3 * Lanes);
                }

                s0 += e0;
                s1 += e1;
                s2 += e2;
                s3 += e3;
            }

            CpuRowKernels.AddWide(ref sumLow, ref sumHigh, (s0 + s1) + (s2 + s3));
        }

        if (j < n)
        {
            // The last, shorter block: its lane-wise max from memory first (it is in L1), then its terms. Padding lanes
            // hold -Inf, whose t is -Inf: 2^t = 0.
            Vector512<float> tailMax = Vector512.Create(float.NegativeInfinity);
            int k = j;
            for (; k <= n - Lanes; k += Lanes)
            {
                Vector512<float> v = T.Load(x + k * T.Size);
                tailMax = Vector512.MaxNative(tailMax, v);
                probe += v;
            }

            if (k < n)
            {
                Vector512<float> v = FloatLanes.LoadPartial<T>(x + k * T.Size, n - k, float.NegativeInfinity);
                tailMax = Vector512.MaxNative(tailMax, v);
                probe += v;
            }

            Raise(tailMax, ref runningMax, ref pivot, ref sumLow, ref sumHigh);
            pivot.Store(blockPivots + fullBlocks * Lanes);
            Vector512<float> negativePivot = -pivot;
            for (; j <= n - Lanes; j += Lanes)
            {
                Vector512<float> e0 = VectorMath.Exp2NonPositive(Vector512.FusedMultiplyAdd(T.Load(x + j * T.Size), log2E, negativePivot));
                if (e != null)
                {
                    e0.Store(e + j);
                }

                CpuRowKernels.AddWide(ref sumLow, ref sumHigh, e0);
            }

            if (j < n)
            {
                Vector512<float> e0 = VectorMath.Exp2NonPositive(
                    Vector512.FusedMultiplyAdd(FloatLanes.LoadPartial<T>(x + j * T.Size, n - j, float.NegativeInfinity), log2E, negativePivot));
                if (e != null)
                {
                    FloatLanes.StorePartial<Float32Lanes>(e0, (byte*)(e + j), n - j);
                }

                CpuRowKernels.AddWide(ref sumLow, ref sumHigh, e0);
            }
        }

        float max = HorizontalMaxNative(runningMax);
        if (!(Math.Abs(max) < FusedMaxLimit) || float.IsNaN(Vector512.Sum(probe)))
        {
            return false;
        }

        // The row's pivot is the largest lane pivot (that of the max); each lane's Σ moves to it exactly.
        float rowPivot = HorizontalMaxNative(pivot);
        Vector512<float> rowPivots = Vector512.Create(rowPivot);
        (Vector512<double> lowFactor, Vector512<double> highFactor) = Vector512.Widen(PowerOfTwo(Vector512<float>.One, pivot - rowPivots));
        double sum = Vector512.Sum(sumLow * lowFactor + sumHigh * highFactor);
        if (log)
        {
            // Σ counts 2^(x·log2 e - P) = e^(x - max)·2^shift with shift = max·log2 e - P, exact in float64.
            double shift = (double)max * VectorMath.Log2OfE - rowPivot;
            LogOutput(x, d, max, (float)(Math.Log(sum) - shift * Math.Log(2)));
        }
        else
        {
            ScaleBlocks(e, d, blockPivots, rowPivots, Vector512.Create((float)(1.0 / sum)));
        }

        return true;
    }

    /// <summary>The lane-wise max of a full 256-element block by the native max (NaN may be dropped; <paramref name="probe"/> gets Σ x to catch it).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> BlockMax(byte* xb, ref Vector512<float> probe)
    {
        Vector512<float> v0 = T.Load(xb), v1 = T.Load(xb + Lanes * T.Size), v2 = T.Load(xb + 2 * Lanes * T.Size), v3 = T.Load(xb + 3 * Lanes * T.Size);
        Vector512<float> max0 = v0, max1 = v1, max2 = v2, max3 = v3;
        Vector512<float> sum0 = v0, sum1 = v1, sum2 = v2, sum3 = v3;
        for (int k = 4 * Lanes; k < SumBlock; k += 4 * Lanes)
        {
            v0 = T.Load(xb + k * T.Size);
            v1 = T.Load(xb + (k + Lanes) * T.Size);
            v2 = T.Load(xb + (k + 2 * Lanes) * T.Size);
            v3 = T.Load(xb + (k + 3 * Lanes) * T.Size);
            max0 = Vector512.MaxNative(max0, v0);
            max1 = Vector512.MaxNative(max1, v1);
            max2 = Vector512.MaxNative(max2, v2);
            max3 = Vector512.MaxNative(max3, v3);
            sum0 += v0;
            sum1 += v1;
            sum2 += v2;
            sum3 += v3;
        }

        probe += (sum0 + sum1) + (sum2 + sum3);
        return Vector512.MaxNative(Vector512.MaxNative(max0, max1), Vector512.MaxNative(max2, max3));
    }

    /// <summary>The largest lane by the native max (NaN handling left to the caller).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float HorizontalMaxNative(Vector512<float> v)
    {
        Vector256<float> a = Vector256.MaxNative(v.GetLower(), v.GetUpper());
        Vector128<float> b = Vector128.MaxNative(a.GetLower(), a.GetUpper());
        b = Vector128.MaxNative(b, Vector128.Shuffle(b, Vector128.Create(2, 3, 0, 1)));
        return Vector128.MaxNative(b, Vector128.Shuffle(b, Vector128.Create(1, 0, 3, 2))).ToScalar();
    }

    /// <summary>Lane-wise pivots of running maxes: ⌈max(runningMax, -2^20)·log2 e⌉, integers.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> Pivot(Vector512<float> runningMax) =>
        Vector512.Ceiling(Vector512.MaxNative(runningMax, Vector512.Create(-FusedMaxLimit)) * Vector512.Create(VectorMath.Log2OfE));

    /// <summary>
    /// v·2^k lane-wise for integer k ≤ 0, rounded once (gradually to 0 below float32's normal range). The fallback
    /// without AVX-512 multiplies by two normal powers of two, which may round twice for subnormal results.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> PowerOfTwo(Vector512<float> v, Vector512<float> k)
    {
        if (Avx512F.IsSupported)
        {
            return Avx512F.Scale(v, k);
        }

        Vector512<float> first = Vector512.MaxNative(k, Vector512.Create(-126f));
        Vector512<float> second = Vector512.MaxNative(k - first, Vector512.Create(-126f));
        Vector512<float> firstFactor = Vector512.ShiftLeft(Vector512.ConvertToInt32(first) + Vector512.Create(127), 23).AsSingle();
        Vector512<float> secondFactor = Vector512.ShiftLeft(Vector512.ConvertToInt32(second) + Vector512.Create(127), 23).AsSingle();
        Vector512<float> scaled = v * firstFactor * secondFactor;
        // Beyond the two factors' reach (k < -252) the result is 0, as float32 would round it.
        return Vector512.ConditionalSelect(Vector512.LessThan(k, Vector512.Create(-252f)), Vector512<float>.Zero, scaled);
    }

    /// <summary>
    /// Takes a block's lane-wise max into the running max, and moves each lane's Σ to its raised pivot (by an exact
    /// power of two, 1 where the pivot stays; terms more than 2^149 below the new pivot, which no output can show, go).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Raise(Vector512<float> blockMax, ref Vector512<float> runningMax, ref Vector512<float> pivot, ref Vector512<double> sumLow, ref Vector512<double> sumHigh)
    {
        runningMax = Vector512.MaxNative(runningMax, blockMax);
        Vector512<float> raised = Pivot(runningMax);
        (Vector512<double> lowFactor, Vector512<double> highFactor) = Vector512.Widen(PowerOfTwo(Vector512<float>.One, pivot - raised));
        sumLow *= lowFactor;
        sumHigh *= highFactor;
        pivot = raised;
    }

    /// <summary>
    /// d = e · 2^(block's lane pivot - row pivot) / Σ, one factor vector per block (lane i of it for elements ≡ i mod 16).
    /// The factor is 1/Σ rounded to float32, scaled exactly, so a block whose pivot lies far below the row's gets 0
    /// exactly where its terms underflow.
    /// </summary>
    private void ScaleBlocks(float* e, byte* d, float* blockPivots, Vector512<float> rowPivots, Vector512<float> inverse)
    {
        for (int start = 0, block = 0; start < n; start += SumBlock, block++)
        {
            Vector512<float> factor = PowerOfTwo(inverse, Vector512.Load(blockPivots + block * Lanes) - rowPivots);
            int stop = Math.Min(n, start + SumBlock);
            int j = start;
            if (stream)
            {
                for (; j <= stop - Lanes; j += Lanes)
                {
                    FloatLanes.StoreStream<T>(Vector512.Load(e + j) * factor, d + j * T.Size);
                }
            }
            else
            {
                for (; j <= stop - 2 * Lanes; j += 2 * Lanes)
                {
                    T.Store(Vector512.Load(e + j) * factor, d + j * T.Size);
                    T.Store(Vector512.Load(e + j + Lanes) * factor, d + (j + Lanes) * T.Size);
                }

                for (; j <= stop - Lanes; j += Lanes)
                {
                    T.Store(Vector512.Load(e + j) * factor, d + j * T.Size);
                }
            }

            if (j < stop)
            {
                FloatLanes.StorePartial<T>(FloatLanes.LoadPartial<Float32Lanes>((byte*)(e + j), stop - j, 0f) * factor, d + j * T.Size, stop - j);
            }
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

    /// <summary>d = e · (1 / Σ) from element <paramref name="start"/> on; e may be d itself (float32).</summary>
    private void ScaleOutput(float* e, byte* d, Vector512<float> inverse, int start = 0)
    {
        int j = start;
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
