using System;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Threading;
using GemsInjector.Kernels.Numerics;

namespace GemsInjector.Kernels.Cpu;

/// <summary>
/// One (batched) matrix product C[b] = alpha * A[b] B[b] (+ C[b] when <see cref="Accumulate"/>): A is [M, K] and B is
/// [K, N] with any element strides (so transposed views need no copy), C is a contiguous float32 [M, N] per batch.
/// </summary>
internal unsafe struct GemmProblem
{
    public void* A;
    public long RowStrideA;
    public long ColStrideA;
    public long BatchStrideA;
    public void* B;
    public long RowStrideB;
    public long ColStrideB;
    public long BatchStrideB;
    public float* C;
    public long BatchStrideC;
    public long M;
    public long N;
    public long K;
    public long Batch;
    public float Alpha;

    /// <summary>C already holds a value (addmm's beta * self) that the product is added to.</summary>
    public bool Accumulate;
}

/// <summary>
/// A blocked, packed float32 GEMM (BLIS loop order): B is packed in [KC x NR] micro-panels and A in [MR x KC]
/// micro-panels (16-bit inputs are widened while packing), and an 8 x 32 AVX-512 register tile (8 x 16 with Vector256)
/// accumulates with fused multiply-adds. Work is split over threads in tiles of up to 1024 rows x 512 columns, taken
/// dynamically. Products with at most 4 rows (decode) take a GEMV path that streams B once without packing.
/// </summary>
internal static unsafe class Gemm
{
    internal const int MR = 8;
    internal const int KC = 256;
    internal const int MC = 128;
    internal const int NC = 512;
    private const int TaskRows = 1024;
    private const double ParallelFlops = 4e6;
    // Measured on the 2-core machine while other builds ran: one thread beat two at every GEMV size up to 4096 x 4096
    // (a Parallel.For that waits for a busy core costs more than it saves), so only GEMVs far beyond the caches split.
    private const long GemvParallelElements = 1 << 18;

    /// <summary>Up to this many B elements (1 MB of float32) a float32 GEMV uses register tiles; above it, row streaming.</summary>
    private const long GemvTileElements = 1 << 18;

    private const int SlotPackA = 0;
    private const int SlotPackB = 1;
    private const int SlotGemvA = 2;
    private const int SlotGemvW = 3;

    /// <summary>The register tile's width: 32 columns with AVX-512, else 16.</summary>
    internal static int NR => Vector512.IsHardwareAccelerated ? 32 : 16;

    public static void Run<T>(GemmProblem p)
        where T : struct, IFloatLanes =>
        Run<T>(p, CpuThreadBudget.MaxThreads);

    /// <summary>C = A · B (see <see cref="GemmProblem"/>) with its tasks cut for <paramref name="threadBudget"/> threads (tests vary it).</summary>
    internal static void Run<T>(GemmProblem p, int threadBudget)
        where T : struct, IFloatLanes
    {
        if (p.M == 0 || p.N == 0 || p.Batch == 0)
        {
            return;
        }

        if (p.K == 0)
        {
            if (!p.Accumulate)
            {
                // An empty inner dimension gives zeros; NativeMemory.Clear takes the byte count as nuint, so outputs of 2^31
                // elements and more are cleared too (a Span would overflow its int length).
                NativeMemory.Clear(p.C, (nuint)(p.M * p.N * p.Batch) * sizeof(float));
            }

            return;
        }

        if (p.M <= 4 && (p.ColStrideB == 1 || p.RowStrideB == 1))
        {
            for (long b = 0; b < p.Batch; b++)
            {
                Gemv<T>(p, b);
            }

            return;
        }

        double flops = 2.0 * p.M * p.N * p.K * p.Batch;
        int budget = flops < ParallelFlops ? 1 : threadBudget;
        var split = Split(p.M, p.N, p.Batch, budget, NR);
        long mTasks = (p.M + split.Rows - 1) / split.Rows;
        long nTasks = (p.N + split.Columns - 1) / split.Columns;
        long tasks = p.Batch * mTasks * nTasks;
        int threads = (int)Math.Min(budget, tasks);
        if (threads <= 1)
        {
            for (long t = 0; t < tasks; t++)
            {
                Tile<T>(p, t, mTasks, nTasks, split);
            }

            return;
        }

        long next = -1;
        CpuThreadBudget.For(threads, _ =>
        {
            for (long t = Interlocked.Increment(ref next); t < tasks; t = Interlocked.Increment(ref next))
            {
                Tile<T>(p, t, mTasks, nTasks, split);
            }
        });
    }

    /// <summary>
    /// The rows and columns of C one task computes: <see cref="TaskRows"/> × <see cref="NC"/>, or, when that gives fewer
    /// tasks than <paramref name="threads"/> (a weight of up to a few thousand columns on a many-core host: 4096 columns
    /// are 8 tasks), the longer side of the task cut so that every thread gets one — rows in multiples of
    /// <see cref="MR"/>, columns in multiples of <paramref name="nr"/>. Each task packs its own slices of A and B, so
    /// cutting the longer side repacks the least. Every element of C sums the same products in the same order whatever
    /// the cut, so the results do not depend on the thread count.
    /// </summary>
    internal static (int Rows, int Columns) Split(long m, long n, long batch, int threads, int nr)
    {
        int rows = (int)Math.Min(TaskRows, RoundUp(m, MR)), columns = (int)Math.Min(NC, RoundUp(n, nr));
        bool rowsFirst = rows >= columns;
        for (int side = 0; side < 2; side++)
        {
            long tasks = batch * ((m + rows - 1) / rows) * ((n + columns - 1) / columns);
            if (tasks >= threads)
            {
                break;
            }

            // The longer side first; the other only when the first cannot be cut finer.
            long cuts = (threads + tasks - 1) / tasks;
            if (rowsFirst == (side == 0))
            {
                rows = (int)Math.Max(MR, RoundUp((rows + cuts - 1) / cuts, MR));
            }
            else
            {
                columns = (int)Math.Max(nr, RoundUp((columns + cuts - 1) / cuts, nr));
            }
        }

        return (rows, columns);
    }

    private static long RoundUp(long value, int multiple) => (value + multiple - 1) / multiple * multiple;

    // The task and packing loops compile optimised from the first call, as the micro-kernels do: Run 173 read a worker's
    // first packed products (8 × 4096², 16 threads) at 6.4 ms on first-tier code, Run 174 1.0 once optimised.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Tile<T>(GemmProblem p, long task, long mTasks, long nTasks, (int Rows, int Columns) split)
        where T : struct, IFloatLanes
    {
        long batch = task / (mTasks * nTasks);
        long rest = task % (mTasks * nTasks);
        long rowStart = rest / nTasks * split.Rows;
        long rowEnd = Math.Min(p.M, rowStart + split.Rows);
        long colStart = rest % nTasks * split.Columns;
        int nc = (int)Math.Min(split.Columns, p.N - colStart);
        int nr = NR;
        byte* a = (byte*)p.A + batch * p.BatchStrideA * T.Size;
        byte* b = (byte*)p.B + batch * p.BatchStrideB * T.Size;
        float* c = p.C + batch * p.BatchStrideC;
        float* packA = KernelScratch.Floats(SlotPackA, (long)MC * KC);
        float* packB = KernelScratch.Floats(SlotPackB, (long)KC * (NC + 32));
        float* tile = stackalloc float[MR * 32];
        for (long pc = 0; pc < p.K; pc += KC)
        {
            int kc = (int)Math.Min(KC, p.K - pc);
            bool accumulate = p.Accumulate || pc > 0;
            if (p.ColStrideB == 1)
            {
                PackBRows<T>(b, p.RowStrideB, pc, kc, colStart, nc, nr, packB);
            }
            else
            {
                for (int jr = 0; jr < nc; jr += nr)
                {
                    PackB<T>(b, p.RowStrideB, p.ColStrideB, pc, kc, colStart + jr, Math.Min(nr, nc - jr), nr, packB + (long)jr * kc);
                }
            }

            for (long ic = rowStart; ic < rowEnd; ic += MC)
            {
                int mc = (int)Math.Min(MC, rowEnd - ic);
                for (int ir = 0; ir < mc; ir += MR)
                {
                    PackA<T>(a, p.RowStrideA, p.ColStrideA, ic + ir, Math.Min(MR, mc - ir), pc, kc, packA + (long)ir * kc);
                }

                for (int jr = 0; jr < nc; jr += nr)
                {
                    float* bPanel = packB + (long)jr * kc;
                    int cols = Math.Min(nr, nc - jr);
                    for (int ir = 0; ir < mc; ir += MR)
                    {
                        float* aPanel = packA + (long)ir * kc;
                        int rows = Math.Min(MR, mc - ir);
                        float* cTile = c + (ic + ir) * p.N + colStart + jr;
                        if (rows == MR && cols == nr)
                        {
                            Kernel(aPanel, bPanel, kc, cTile, p.N, p.Alpha, accumulate);
                        }
                        else
                        {
                            Kernel(aPanel, bPanel, kc, tile, nr, p.Alpha, accumulate: false);
                            for (int r = 0; r < rows; r++)
                            {
                                float* target = cTile + r * p.N;
                                float* source = tile + r * nr;
                                for (int j = 0; j < cols; j++)
                                {
                                    target[j] = accumulate ? target[j] + source[j] : source[j];
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    /// <summary>Packs rows [row, row + rows) x columns [pc, pc + kc) of A as packed[p * MR + r], zero-padding to MR rows.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void PackA<T>(byte* a, long rowStride, long colStride, long row, int rows, long pc, int kc, float* packed)
        where T : struct, IFloatLanes
    {
        for (int r = 0; r < MR; r++)
        {
            float* d = packed + r;
            if (r >= rows)
            {
                for (int q = 0; q < kc; q++)
                {
                    d[q * MR] = 0f;
                }

                continue;
            }

            long start = (row + r) * rowStride + pc * colStride;
            if (colStride == 1)
            {
                for (int q = 0; q < kc; q++)
                {
                    d[q * MR] = FloatLanes.LoadAt<T>(a, start + q);
                }
            }
            else
            {
                for (int q = 0; q < kc; q++)
                {
                    d[q * MR] = FloatLanes.LoadAt<T>(a, start + q * colStride);
                }
            }
        }
    }

    /// <summary>
    /// Packs a row-major block of B (column stride 1), rows [pc, pc + kc) x columns [col, col + nc), into nr-wide micro-panels,
    /// reading each source row sequentially (one 2 KiB run per row instead of 32 scattered 128-byte pieces).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void PackBRows<T>(byte* b, long rowStride, long pc, int kc, long col, int nc, int nr, float* packed)
        where T : struct, IFloatLanes
    {
        int full = nc / nr * nr;
        float* row = stackalloc float[NC];
        for (int q = 0; q < kc; q++)
        {
            byte* source = b + ((pc + q) * rowStride + col) * T.Size;
            float* values;
            if (typeof(T) == typeof(Float32Lanes))
            {
                values = (float*)source;
            }
            else
            {
                T.Widen(source, row, nc);
                values = row;
            }

            for (int jr = 0; jr < full; jr += nr)
            {
                float* d = packed + (long)jr * kc + q * nr;
                if (nr == 32 && Vector512.IsHardwareAccelerated)
                {
                    Vector512.Load(values + jr).Store(d);
                    Vector512.Load(values + jr + 16).Store(d + 16);
                }
                else
                {
                    Vector256.Load(values + jr).Store(d);
                    Vector256.Load(values + jr + 8).Store(d + 8);
                }
            }

            if (full < nc)
            {
                float* d = packed + (long)full * kc + q * nr;
                int j = 0;
                for (; j < nc - full; j++)
                {
                    d[j] = values[full + j];
                }

                for (; j < nr; j++)
                {
                    d[j] = 0f;
                }
            }
        }
    }

    /// <summary>Packs rows [pc, pc + kc) x columns [col, col + cols) of B as packed[p * nr + j], zero-padding to nr columns.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void PackB<T>(byte* b, long rowStride, long colStride, long pc, int kc, long col, int cols, int nr, float* packed)
        where T : struct, IFloatLanes
    {
        if (colStride == 1 && cols == nr)
        {
            for (int q = 0; q < kc; q++)
            {
                byte* source = b + ((pc + q) * rowStride + col) * T.Size;
                if (typeof(T) == typeof(Float32Lanes))
                {
                    if (nr == 32 && Vector512.IsHardwareAccelerated)
                    {
                        Vector512.Load((float*)source).Store(packed + q * nr);
                        Vector512.Load((float*)source + 16).Store(packed + q * nr + 16);
                    }
                    else
                    {
                        Vector256.Load((float*)source).Store(packed + q * nr);
                        Vector256.Load((float*)source + 8).Store(packed + q * nr + 8);
                    }
                }
                else
                {
                    T.Widen(source, packed + q * nr, nr);
                }
            }

            return;
        }

        if (cols < nr)
        {
            for (int q = 0; q < kc; q++)
            {
                new Span<float>(packed + q * nr + cols, nr - cols).Clear();
            }
        }

        for (int j = 0; j < cols; j++)
        {
            long start = pc * rowStride + (col + j) * colStride;
            float* d = packed + j;
            if (rowStride == 1)
            {
                for (int q = 0; q < kc; q++)
                {
                    d[q * nr] = FloatLanes.LoadAt<T>(b, start + q);
                }
            }
            else
            {
                for (int q = 0; q < kc; q++)
                {
                    d[q * nr] = FloatLanes.LoadAt<T>(b, start + q * rowStride);
                }
            }
        }
    }

    /// <summary>c[MR x NR] = alpha * (packed A panel x packed B panel) (+ c when <paramref name="accumulate"/>).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Kernel(float* a, float* b, int kc, float* c, long ldc, float alpha, bool accumulate)
    {
        if (Vector512.IsHardwareAccelerated)
        {
            Kernel512(a, b, kc, c, ldc, alpha, accumulate);
        }
        else
        {
            Kernel256(a, b, kc, c, ldc, alpha, accumulate);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Kernel512(float* a, float* b, int kc, float* c, long ldc, float alpha, bool accumulate)
    {
        Vector512<float> c00 = default, c01 = default, c10 = default, c11 = default, c20 = default, c21 = default, c30 = default, c31 = default;
        Vector512<float> c40 = default, c41 = default, c50 = default, c51 = default, c60 = default, c61 = default, c70 = default, c71 = default;
        for (int q = 0; q < kc; q++)
        {
            Vector512<float> b0 = Vector512.Load(b);
            Vector512<float> b1 = Vector512.Load(b + 16);
            Vector512<float> x = Vector512.Create(a[0]);
            c00 = Vector512.FusedMultiplyAdd(x, b0, c00);
            c01 = Vector512.FusedMultiplyAdd(x, b1, c01);
            x = Vector512.Create(a[1]);
            c10 = Vector512.FusedMultiplyAdd(x, b0, c10);
            c11 = Vector512.FusedMultiplyAdd(x, b1, c11);
            x = Vector512.Create(a[2]);
            c20 = Vector512.FusedMultiplyAdd(x, b0, c20);
            c21 = Vector512.FusedMultiplyAdd(x, b1, c21);
            x = Vector512.Create(a[3]);
            c30 = Vector512.FusedMultiplyAdd(x, b0, c30);
            c31 = Vector512.FusedMultiplyAdd(x, b1, c31);
            x = Vector512.Create(a[4]);
            c40 = Vector512.FusedMultiplyAdd(x, b0, c40);
            c41 = Vector512.FusedMultiplyAdd(x, b1, c41);
            x = Vector512.Create(a[5]);
            c50 = Vector512.FusedMultiplyAdd(x, b0, c50);
            c51 = Vector512.FusedMultiplyAdd(x, b1, c51);
            x = Vector512.Create(a[6]);
            c60 = Vector512.FusedMultiplyAdd(x, b0, c60);
            c61 = Vector512.FusedMultiplyAdd(x, b1, c61);
            x = Vector512.Create(a[7]);
            c70 = Vector512.FusedMultiplyAdd(x, b0, c70);
            c71 = Vector512.FusedMultiplyAdd(x, b1, c71);
            a += MR;
            b += 32;
        }

        Vector512<float> s = Vector512.Create(alpha);
        Store512(c, c00, c01, s, accumulate);
        Store512(c + ldc, c10, c11, s, accumulate);
        Store512(c + 2 * ldc, c20, c21, s, accumulate);
        Store512(c + 3 * ldc, c30, c31, s, accumulate);
        Store512(c + 4 * ldc, c40, c41, s, accumulate);
        Store512(c + 5 * ldc, c50, c51, s, accumulate);
        Store512(c + 6 * ldc, c60, c61, s, accumulate);
        Store512(c + 7 * ldc, c70, c71, s, accumulate);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Store512(float* c, Vector512<float> v0, Vector512<float> v1, Vector512<float> alpha, bool accumulate)
    {
        if (accumulate)
        {
            Vector512.FusedMultiplyAdd(v0, alpha, Vector512.Load(c)).Store(c);
            Vector512.FusedMultiplyAdd(v1, alpha, Vector512.Load(c + 16)).Store(c + 16);
        }
        else
        {
            (v0 * alpha).Store(c);
            (v1 * alpha).Store(c + 16);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Kernel256(float* a, float* b, int kc, float* c, long ldc, float alpha, bool accumulate)
    {
        Vector256<float> c00 = default, c01 = default, c10 = default, c11 = default, c20 = default, c21 = default, c30 = default, c31 = default;
        Vector256<float> c40 = default, c41 = default, c50 = default, c51 = default, c60 = default, c61 = default, c70 = default, c71 = default;
        for (int q = 0; q < kc; q++)
        {
            Vector256<float> b0 = Vector256.Load(b);
            Vector256<float> b1 = Vector256.Load(b + 8);
            Vector256<float> x = Vector256.Create(a[0]);
            c00 = Vector256.FusedMultiplyAdd(x, b0, c00);
            c01 = Vector256.FusedMultiplyAdd(x, b1, c01);
            x = Vector256.Create(a[1]);
            c10 = Vector256.FusedMultiplyAdd(x, b0, c10);
            c11 = Vector256.FusedMultiplyAdd(x, b1, c11);
            x = Vector256.Create(a[2]);
            c20 = Vector256.FusedMultiplyAdd(x, b0, c20);
            c21 = Vector256.FusedMultiplyAdd(x, b1, c21);
            x = Vector256.Create(a[3]);
            c30 = Vector256.FusedMultiplyAdd(x, b0, c30);
            c31 = Vector256.FusedMultiplyAdd(x, b1, c31);
            x = Vector256.Create(a[4]);
            c40 = Vector256.FusedMultiplyAdd(x, b0, c40);
            c41 = Vector256.FusedMultiplyAdd(x, b1, c41);
            x = Vector256.Create(a[5]);
            c50 = Vector256.FusedMultiplyAdd(x, b0, c50);
            c51 = Vector256.FusedMultiplyAdd(x, b1, c51);
            x = Vector256.Create(a[6]);
            c60 = Vector256.FusedMultiplyAdd(x, b0, c60);
            c61 = Vector256.FusedMultiplyAdd(x, b1, c61);
            x = Vector256.Create(a[7]);
            c70 = Vector256.FusedMultiplyAdd(x, b0, c70);
            c71 = Vector256.FusedMultiplyAdd(x, b1, c71);
            a += MR;
            b += 16;
        }

        Vector256<float> s = Vector256.Create(alpha);
        Store256(c, c00, c01, s, accumulate);
        Store256(c + ldc, c10, c11, s, accumulate);
        Store256(c + 2 * ldc, c20, c21, s, accumulate);
        Store256(c + 3 * ldc, c30, c31, s, accumulate);
        Store256(c + 4 * ldc, c40, c41, s, accumulate);
        Store256(c + 5 * ldc, c50, c51, s, accumulate);
        Store256(c + 6 * ldc, c60, c61, s, accumulate);
        Store256(c + 7 * ldc, c70, c71, s, accumulate);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Store256(float* c, Vector256<float> v0, Vector256<float> v1, Vector256<float> alpha, bool accumulate)
    {
        if (accumulate)
        {
            Vector256.FusedMultiplyAdd(v0, alpha, Vector256.Load(c)).Store(c);
            Vector256.FusedMultiplyAdd(v1, alpha, Vector256.Load(c + 8)).Store(c + 8);
        }
        else
        {
            (v0 * alpha).Store(c);
            (v1 * alpha).Store(c + 8);
        }
    }

    /// <summary>
    /// At most 4 rows: widen A's rows once, then stream B exactly once. B row-major (column stride 1): C rows accumulate
    /// a * B[p, :] four rows of B at a time. B transposed (row stride 1, the nn.Linear weight layout W[n, k]): each
    /// output is a dot product of an A row with a contiguous W row. Columns are split over threads for large B.
    /// </summary>
    private static void Gemv<T>(GemmProblem p, long batch)
        where T : struct, IFloatLanes
    {
        int m = (int)p.M;
        int k = checked((int)p.K);
        byte* a = (byte*)p.A + batch * p.BatchStrideA * T.Size;
        bool transposed = p.ColStrideB != 1;
        if (typeof(T) == typeof(Float32Lanes) && !transposed && p.ColStrideA == 1 && Vector512.IsHardwareAccelerated
            && p.N >= 64 && (long)k * p.N <= GemvTileElements)
        {
            // float32 A rows are read in place and B once, in register tiles: no copy, no scratch, no stack to clear, which
            // is most of a [1 x 256] . [256 x 64] product's time. The tiles walk B in 256-byte-wide columns, which only pays
            // while B is cache-sized: larger B is streamed row after row below (1.5-1.9x faster at 1024 x 1024 and up).
            GemvRowsFloat32(p, (float*)a, (float*)((byte*)p.B + batch * p.BatchStrideB * T.Size), p.C + batch * p.BatchStrideC);
            return;
        }

        float* rowsA = KernelScratch.Floats(SlotGemvA, (long)m * k);
        for (int i = 0; i < m; i++)
        {
            long start = i * p.RowStrideA;
            if (p.ColStrideA == 1)
            {
                T.Widen(a + start * T.Size, rowsA + (long)i * k, k);
                continue;
            }

            for (int q = 0; q < k; q++)
            {
                rowsA[(long)i * k + q] = FloatLanes.LoadAt<T>(a, start + q * p.ColStrideA);
            }
        }

        GemmProblem q2 = p;
        q2.B = (byte*)p.B + batch * p.BatchStrideB * T.Size;
        q2.C = p.C + batch * p.BatchStrideC;
        nint aRows = (nint)rowsA;
        long n = p.N;
        int threads = GemvThreads(k, n, out long chunk);
        if (threads <= 1)
        {
            GemvColumns<T>(q2, (float*)aRows, 0, n, transposed);
            return;
        }

        CpuThreadBudget.For(threads, t =>
        {
            long start = t * chunk;
            long end = Math.Min(n, start + chunk);
            if (start < end)
            {
                GemvColumns<T>(q2, (float*)aRows, start, end, transposed);
            }
        });
    }

    /// <summary>How many threads share a GEMV over <paramref name="n"/> columns, and the columns each takes (a multiple of 64).</summary>
    private static int GemvThreads(long k, long n, out long chunk)
    {
        int threads = k * n < GemvParallelElements ? 1 : CpuThreadBudget.MaxThreads;
        chunk = (n + threads - 1) / threads;
        chunk = (chunk + 63) / 64 * 64;
        return (int)((n + chunk - 1) / chunk);
    }

    /// <summary>
    /// float32 C[i, :] (+)= alpha * A[i, :] B for at most 4 rows of A (column stride 1) and row-major B: tiles of 64 columns
    /// accumulate over the whole of K in registers, so each B element is loaded once and each C element stored once.
    /// </summary>
    private static void GemvRowsFloat32(GemmProblem p, float* a, float* b, float* c)
    {
        int threads = GemvThreads(p.K, p.N, out long chunk);
        if (threads <= 1)
        {
            GemvRowsFloat32(p, a, b, c, 0, p.N);
            return;
        }

        nint ap = (nint)a, bp = (nint)b, cp = (nint)c;
        long n = p.N;
        CpuThreadBudget.For(threads, t =>
        {
            long start = t * chunk;
            long end = Math.Min(n, start + chunk);
            if (start < end)
            {
                GemvRowsFloat32(p, (float*)ap, (float*)bp, (float*)cp, start, end);
            }
        });
    }

    private static void GemvRowsFloat32(GemmProblem p, float* a, float* b, float* c, long start, long end)
    {
        int m = (int)p.M;
        int k = (int)p.K;
        long lda = p.RowStrideA, ldb = p.RowStrideB, ldc = p.N;
        long j = start;
        if (m == 1)
        {
            for (; j + 64 <= end; j += 64)
            {
                Tile1x64(a, b + j, ldb, k, c + j, p.Alpha, p.Accumulate);
            }
        }
        else
        {
            // Rows past m repeat the last row (computed, not stored) so the 4-row tile needs no variants.
            float* a1 = a + Math.Min(1, m - 1) * lda, a2 = a + Math.Min(2, m - 1) * lda, a3 = a + Math.Min(3, m - 1) * lda;
            for (; j + 64 <= end; j += 64)
            {
                Tile4x64(a, a1, a2, a3, m, b + j, ldb, k, c + j, ldc, p.Alpha, p.Accumulate);
            }
        }

        for (; j + 16 <= end; j += 16)
        {
            for (int i = 0; i < m; i++)
            {
                Tile1x16(a + i * lda, b + j, ldb, k, c + i * ldc + j, p.Alpha, p.Accumulate);
            }
        }

        for (; j < end; j++)
        {
            for (int i = 0; i < m; i++)
            {
                float* x = a + i * lda;
                float sum = 0;
                for (int q = 0; q < k; q++)
                {
                    sum = MathF.FusedMultiplyAdd(x[q], b[q * ldb + j], sum);
                }

                float* target = c + i * ldc + j;
                *target = p.Accumulate ? *target + p.Alpha * sum : p.Alpha * sum;
            }
        }
    }

    /// <summary>One row x 64 columns; two sets of accumulators (even and odd q) so the FMA chains overlap.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Tile1x64(float* a, float* b, long ldb, int k, float* c, float alpha, bool accumulate)
    {
        Vector512<float> c0 = default, c1 = default, c2 = default, c3 = default;
        Vector512<float> d0 = default, d1 = default, d2 = default, d3 = default;
        int q = 0;
        for (; q + 2 <= k; q += 2)
        {
            float* r = b + q * ldb;
            Vector512<float> x = Vector512.Create(a[q]);
            c0 = Vector512.FusedMultiplyAdd(x, Vector512.Load(r), c0);
            c1 = Vector512.FusedMultiplyAdd(x, Vector512.Load(r + 16), c1);
            c2 = Vector512.FusedMultiplyAdd(x, Vector512.Load(r + 32), c2);
            c3 = Vector512.FusedMultiplyAdd(x, Vector512.Load(r + 48), c3);
            r += ldb;
            x = Vector512.Create(a[q + 1]);
            d0 = Vector512.FusedMultiplyAdd(x, Vector512.Load(r), d0);
            d1 = Vector512.FusedMultiplyAdd(x, Vector512.Load(r + 16), d1);
            d2 = Vector512.FusedMultiplyAdd(x, Vector512.Load(r + 32), d2);
            d3 = Vector512.FusedMultiplyAdd(x, Vector512.Load(r + 48), d3);
        }

        if (q < k)
        {
            float* r = b + q * ldb;
            Vector512<float> x = Vector512.Create(a[q]);
            c0 = Vector512.FusedMultiplyAdd(x, Vector512.Load(r), c0);
            c1 = Vector512.FusedMultiplyAdd(x, Vector512.Load(r + 16), c1);
            c2 = Vector512.FusedMultiplyAdd(x, Vector512.Load(r + 32), c2);
            c3 = Vector512.FusedMultiplyAdd(x, Vector512.Load(r + 48), c3);
        }

        Vector512<float> s = Vector512.Create(alpha);
        StoreTile(c, c0 + d0, s, accumulate);
        StoreTile(c + 16, c1 + d1, s, accumulate);
        StoreTile(c + 32, c2 + d2, s, accumulate);
        StoreTile(c + 48, c3 + d3, s, accumulate);
    }

    /// <summary>Up to 4 rows (<paramref name="m"/> stored) x 64 columns: each B load feeds four rows.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Tile4x64(float* a0, float* a1, float* a2, float* a3, int m, float* b, long ldb, int k, float* c, long ldc, float alpha, bool accumulate)
    {
        Vector512<float> c00 = default, c01 = default, c02 = default, c03 = default;
        Vector512<float> c10 = default, c11 = default, c12 = default, c13 = default;
        Vector512<float> c20 = default, c21 = default, c22 = default, c23 = default;
        Vector512<float> c30 = default, c31 = default, c32 = default, c33 = default;
        for (int q = 0; q < k; q++)
        {
            float* r = b + q * ldb;
            Vector512<float> b0 = Vector512.Load(r), b1 = Vector512.Load(r + 16), b2 = Vector512.Load(r + 32), b3 = Vector512.Load(r + 48);
            Vector512<float> x = Vector512.Create(a0[q]);
            c00 = Vector512.FusedMultiplyAdd(x, b0, c00);
            c01 = Vector512.FusedMultiplyAdd(x, b1, c01);
            c02 = Vector512.FusedMultiplyAdd(x, b2, c02);
            c03 = Vector512.FusedMultiplyAdd(x, b3, c03);
            x = Vector512.Create(a1[q]);
            c10 = Vector512.FusedMultiplyAdd(x, b0, c10);
            c11 = Vector512.FusedMultiplyAdd(x, b1, c11);
            c12 = Vector512.FusedMultiplyAdd(x, b2, c12);
            c13 = Vector512.FusedMultiplyAdd(x, b3, c13);
            x = Vector512.Create(a2[q]);
            c20 = Vector512.FusedMultiplyAdd(x, b0, c20);
            c21 = Vector512.FusedMultiplyAdd(x, b1, c21);
            c22 = Vector512.FusedMultiplyAdd(x, b2, c22);
            c23 = Vector512.FusedMultiplyAdd(x, b3, c23);
            x = Vector512.Create(a3[q]);
            c30 = Vector512.FusedMultiplyAdd(x, b0, c30);
            c31 = Vector512.FusedMultiplyAdd(x, b1, c31);
            c32 = Vector512.FusedMultiplyAdd(x, b2, c32);
            c33 = Vector512.FusedMultiplyAdd(x, b3, c33);
        }

        Vector512<float> s = Vector512.Create(alpha);
        StoreRow(c, c00, c01, c02, c03, s, accumulate);
        StoreRow(c + ldc, c10, c11, c12, c13, s, accumulate);
        if (m > 2)
        {
            StoreRow(c + 2 * ldc, c20, c21, c22, c23, s, accumulate);
        }

        if (m > 3)
        {
            StoreRow(c + 3 * ldc, c30, c31, c32, c33, s, accumulate);
        }
    }

    /// <summary>One row x 16 columns, for the columns left after the 64-wide tiles.</summary>
    private static void Tile1x16(float* a, float* b, long ldb, int k, float* c, float alpha, bool accumulate)
    {
        Vector512<float> c0 = default, c1 = default;
        int q = 0;
        for (; q + 2 <= k; q += 2)
        {
            c0 = Vector512.FusedMultiplyAdd(Vector512.Create(a[q]), Vector512.Load(b + q * ldb), c0);
            c1 = Vector512.FusedMultiplyAdd(Vector512.Create(a[q + 1]), Vector512.Load(b + (q + 1) * ldb), c1);
        }

        if (q < k)
        {
            c0 = Vector512.FusedMultiplyAdd(Vector512.Create(a[q]), Vector512.Load(b + q * ldb), c0);
        }

        StoreTile(c, c0 + c1, Vector512.Create(alpha), accumulate);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void StoreRow(float* c, Vector512<float> v0, Vector512<float> v1, Vector512<float> v2, Vector512<float> v3, Vector512<float> alpha, bool accumulate)
    {
        StoreTile(c, v0, alpha, accumulate);
        StoreTile(c + 16, v1, alpha, accumulate);
        StoreTile(c + 32, v2, alpha, accumulate);
        StoreTile(c + 48, v3, alpha, accumulate);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void StoreTile(float* c, Vector512<float> sum, Vector512<float> alpha, bool accumulate) =>
        (accumulate ? Vector512.FusedMultiplyAdd(sum, alpha, Vector512.Load(c)) : sum * alpha).Store(c);

    private static void GemvColumns<T>(GemmProblem p, float* rowsA, long start, long end, bool transposed)
        where T : struct, IFloatLanes
    {
        if (transposed)
        {
            GemvDot<T>(p, rowsA, start, end);
        }
        else
        {
            GemvAxpy<T>(p, rowsA, start, end);
        }
    }

    /// <summary>C[i, j] (+)= alpha * dot(A[i, :], W[j, :]) where W[j, q] = B[q, j] is contiguous in q.</summary>
    private static void GemvDot<T>(GemmProblem p, float* rowsA, long start, long end)
        where T : struct, IFloatLanes
    {
        int m = (int)p.M;
        int k = (int)p.K;
        float* widened = typeof(T) == typeof(Float32Lanes) ? null : KernelScratch.Floats(SlotGemvW, 4L * k);
        for (long j = start; j < end; j += 4)
        {
            int rows = (int)Math.Min(4, end - j);
            float* w0 = Row<T>(p, j, 0, rows, widened);
            float* w1 = Row<T>(p, j, 1, rows, widened);
            float* w2 = Row<T>(p, j, 2, rows, widened);
            float* w3 = Row<T>(p, j, 3, rows, widened);
            for (int i = 0; i < m; i++)
            {
                float* x = rowsA + (long)i * k;
                Dot4(x, w0, w1, w2, w3, k, out float d0, out float d1, out float d2, out float d3);
                float* c = p.C + i * p.N + j;
                Put(c, 0, rows, d0, p.Alpha, p.Accumulate);
                Put(c, 1, rows, d1, p.Alpha, p.Accumulate);
                Put(c, 2, rows, d2, p.Alpha, p.Accumulate);
                Put(c, 3, rows, d3, p.Alpha, p.Accumulate);
            }
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Put(float* c, int r, int rows, float dot, float alpha, bool accumulate)
    {
        if (r < rows)
        {
            c[r] = accumulate ? c[r] + alpha * dot : alpha * dot;
        }
    }

    /// <summary>Row <paramref name="r"/> of the 4-row block of W at column <paramref name="j"/> as float32 (row 0 repeated past the end).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float* Row<T>(GemmProblem p, long j, int r, int rows, float* widened)
        where T : struct, IFloatLanes
    {
        long column = j + (r < rows ? r : 0);
        byte* source = (byte*)p.B + column * p.ColStrideB * T.Size;
        if (typeof(T) == typeof(Float32Lanes))
        {
            return (float*)source;
        }

        float* d = widened + (long)r * p.K;
        T.Widen(source, d, (int)p.K);
        return d;
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Dot4(float* x, float* w0, float* w1, float* w2, float* w3, int k, out float d0, out float d1, out float d2, out float d3)
    {
        int q = 0;
        float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
        if (Vector512.IsHardwareAccelerated)
        {
            // Two accumulators per column: four FMA chains alone wait on the FMA latency half of the time.
            Vector512<float> a0 = default, a1 = default, a2 = default, a3 = default;
            Vector512<float> e0 = default, e1 = default, e2 = default, e3 = default;
            for (; q <= k - 32; q += 32)
            {
                Vector512<float> v = Vector512.Load(x + q);
                a0 = Vector512.FusedMultiplyAdd(v, Vector512.Load(w0 + q), a0);
                a1 = Vector512.FusedMultiplyAdd(v, Vector512.Load(w1 + q), a1);
                a2 = Vector512.FusedMultiplyAdd(v, Vector512.Load(w2 + q), a2);
                a3 = Vector512.FusedMultiplyAdd(v, Vector512.Load(w3 + q), a3);
                v = Vector512.Load(x + q + 16);
                e0 = Vector512.FusedMultiplyAdd(v, Vector512.Load(w0 + q + 16), e0);
                e1 = Vector512.FusedMultiplyAdd(v, Vector512.Load(w1 + q + 16), e1);
                e2 = Vector512.FusedMultiplyAdd(v, Vector512.Load(w2 + q + 16), e2);
                e3 = Vector512.FusedMultiplyAdd(v, Vector512.Load(w3 + q + 16), e3);
            }

            for (; q <= k - 16; q += 16)
            {
                Vector512<float> v = Vector512.Load(x + q);
                a0 = Vector512.FusedMultiplyAdd(v, Vector512.Load(w0 + q), a0);
                a1 = Vector512.FusedMultiplyAdd(v, Vector512.Load(w1 + q), a1);
                a2 = Vector512.FusedMultiplyAdd(v, Vector512.Load(w2 + q), a2);
                a3 = Vector512.FusedMultiplyAdd(v, Vector512.Load(w3 + q), a3);
            }

            s0 = Vector512.Sum(a0 + e0);
            s1 = Vector512.Sum(a1 + e1);
            s2 = Vector512.Sum(a2 + e2);
            s3 = Vector512.Sum(a3 + e3);
        }
        else if (Vector256.IsHardwareAccelerated)
        {
            Vector256<float> a0 = default, a1 = default, a2 = default, a3 = default;
            for (; q <= k - 8; q += 8)
            {
                Vector256<float> v = Vector256.Load(x + q);
                a0 = Vector256.FusedMultiplyAdd(v, Vector256.Load(w0 + q), a0);
                a1 = Vector256.FusedMultiplyAdd(v, Vector256.Load(w1 + q), a1);
                a2 = Vector256.FusedMultiplyAdd(v, Vector256.Load(w2 + q), a2);
                a3 = Vector256.FusedMultiplyAdd(v, Vector256.Load(w3 + q), a3);
            }

            s0 = Vector256.Sum(a0);
            s1 = Vector256.Sum(a1);
            s2 = Vector256.Sum(a2);
            s3 = Vector256.Sum(a3);
        }

        for (; q < k; q++)
        {
            s0 = MathF.FusedMultiplyAdd(x[q], w0[q], s0);
            s1 = MathF.FusedMultiplyAdd(x[q], w1[q], s1);
            s2 = MathF.FusedMultiplyAdd(x[q], w2[q], s2);
            s3 = MathF.FusedMultiplyAdd(x[q], w3[q], s3);
        }

        d0 = s0;
        d1 = s1;
        d2 = s2;
        d3 = s3;
    }

    /// <summary>C[i, cols] (+)= alpha * sum_q A[i, q] * B[q, cols], four rows of B per pass, in column chunks that stay in L1.</summary>
    // Decode products are a few microseconds: zeroing 36 KB of stack per call (the default for stackalloc) cost as much
    // as the arithmetic, so only the part that is read is cleared.
    [SkipLocalsInit]
    private static void GemvAxpy<T>(GemmProblem p, float* rowsA, long start, long end)
        where T : struct, IFloatLanes
    {
        const int Chunk = 1024;
        int m = (int)p.M;
        int k = (int)p.K;
        float* sums = stackalloc float[4 * Chunk];
        float* widened = stackalloc float[4 * Chunk];
        float* zeros = stackalloc float[Chunk];
        if (k % 4 != 0)
        {
            new Span<float>(zeros, (int)Math.Min(Chunk, end - start)).Clear();
        }

        for (long col = start; col < end; col += Chunk)
        {
            int width = (int)Math.Min(Chunk, end - col);
            for (int i = 0; i < m; i++)
            {
                new Span<float>(sums + i * Chunk, width).Clear();
            }

            for (int q = 0; q < k; q += 4)
            {
                int depth = Math.Min(4, k - q);
                float* b0 = BRow<T>(p, q, col, width, widened);
                float* b1 = depth > 1 ? BRow<T>(p, q + 1, col, width, widened + Chunk) : zeros;
                float* b2 = depth > 2 ? BRow<T>(p, q + 2, col, width, widened + 2 * Chunk) : zeros;
                float* b3 = depth > 3 ? BRow<T>(p, q + 3, col, width, widened + 3 * Chunk) : zeros;
                for (int i = 0; i < m; i++)
                {
                    float* x = rowsA + (long)i * k + q;
                    float x0 = x[0];
                    float x1 = depth > 1 ? x[1] : 0f;
                    float x2 = depth > 2 ? x[2] : 0f;
                    float x3 = depth > 3 ? x[3] : 0f;
                    Axpy4(sums + i * Chunk, b0, b1, b2, b3, x0, x1, x2, x3, width);
                }
            }

            for (int i = 0; i < m; i++)
            {
                float* c = p.C + i * p.N + col;
                float* s = sums + i * Chunk;
                for (int j = 0; j < width; j++)
                {
                    c[j] = p.Accumulate ? c[j] + p.Alpha * s[j] : p.Alpha * s[j];
                }
            }
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float* BRow<T>(GemmProblem p, long q, long col, int width, float* widened)
        where T : struct, IFloatLanes
    {
        byte* source = (byte*)p.B + (q * p.RowStrideB + col) * T.Size;
        if (typeof(T) == typeof(Float32Lanes))
        {
            return (float*)source;
        }

        T.Widen(source, widened, width);
        return widened;
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Axpy4(float* s, float* b0, float* b1, float* b2, float* b3, float x0, float x1, float x2, float x3, int width)
    {
        int j = 0;
        if (Vector512.IsHardwareAccelerated)
        {
            Vector512<float> v0 = Vector512.Create(x0), v1 = Vector512.Create(x1), v2 = Vector512.Create(x2), v3 = Vector512.Create(x3);
            for (; j <= width - 16; j += 16)
            {
                Vector512<float> acc = Vector512.Load(s + j);
                acc = Vector512.FusedMultiplyAdd(v0, Vector512.Load(b0 + j), acc);
                acc = Vector512.FusedMultiplyAdd(v1, Vector512.Load(b1 + j), acc);
                acc = Vector512.FusedMultiplyAdd(v2, Vector512.Load(b2 + j), acc);
                acc = Vector512.FusedMultiplyAdd(v3, Vector512.Load(b3 + j), acc);
                acc.Store(s + j);
            }
        }
        else if (Vector256.IsHardwareAccelerated)
        {
            Vector256<float> v0 = Vector256.Create(x0), v1 = Vector256.Create(x1), v2 = Vector256.Create(x2), v3 = Vector256.Create(x3);
            for (; j <= width - 8; j += 8)
            {
                Vector256<float> acc = Vector256.Load(s + j);
                acc = Vector256.FusedMultiplyAdd(v0, Vector256.Load(b0 + j), acc);
                acc = Vector256.FusedMultiplyAdd(v1, Vector256.Load(b1 + j), acc);
                acc = Vector256.FusedMultiplyAdd(v2, Vector256.Load(b2 + j), acc);
                acc = Vector256.FusedMultiplyAdd(v3, Vector256.Load(b3 + j), acc);
                acc.Store(s + j);
            }
        }

        for (; j < width; j++)
        {
            float acc = s[j];
            acc = MathF.FusedMultiplyAdd(x0, b0[j], acc);
            acc = MathF.FusedMultiplyAdd(x1, b1[j], acc);
            acc = MathF.FusedMultiplyAdd(x2, b2[j], acc);
            acc = MathF.FusedMultiplyAdd(x3, b3[j], acc);
            s[j] = acc;
        }
    }
}
