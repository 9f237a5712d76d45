using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using GemsInjector.Kernels.Cpu;
using GemsInjector.Kernels.Ilgpu;
using GemsInjector.Kernels.Numerics;
using GemsInjector.Kernels.Staging;
using ILGPU;
using ILGPU.Runtime;

namespace GemsInjector.GpuHarness;

/// <summary>
/// What a product call of mm costs on each path when the host's tensors live in CPU memory (TorchSharp's CPU build): the
/// staged device call as <c>IlgpuTensorKernels</c> makes it (operands copied in, the kernel, a synchronize, the result
/// copied back), once with the driver staging pageable copies itself and once through the product's page-locked slots
/// (<see cref="PinnedStaging"/>), against the CPU kernel (<see cref="Gemm"/> on the worker's CPU threads), on the same
/// operands, every result checked; the same for float32 attention; plus the copy rates of both kinds and of other slot
/// sizes. Each row also says where the product's routing (<see cref="StagingCost"/>, calibrated from these figures) sends
/// the call.
/// </summary>
internal static unsafe class StagingProbe
{
    private static readonly (int M, int K, int N)[] Shapes =
    [
        (1, 4096, 4096), (8, 4096, 4096), (32, 4096, 4096), (64, 4096, 4096), (128, 4096, 4096), (256, 4096, 4096),
        (512, 4096, 4096), (1024, 4096, 4096), (2048, 4096, 4096),
        (1, 4096, 11008), (64, 4096, 11008), (256, 4096, 11008), (1024, 4096, 11008),
        (1, 256, 256), (16, 256, 256), (64, 256, 256), (256, 256, 256), (16, 256, 1024), (256, 256, 1024),
        (1, 1024, 1024), (64, 1024, 1024), (256, 1024, 1024), (1024, 1024, 1024),
    ];

    public static int Run(Options opt)
    {
        using var dev = IlgpuDevice.Create(opt.Device);
        using var pinned = PinnedStaging.TryCreate(dev.Accelerator);
        var csv = new CsvSink(opt.Csv);
        Console.WriteLine($"staging-probe: {dev}; {Environment.ProcessorCount} host cores, CPU kernels on {CpuThreadBudget.MaxThreads} threads"
            + $" ({CpuThreadBudget.Source}); {DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC");
        Console.WriteLine(pinned is null ? "page-locked staging: refused by the driver (only pageable copies below)" : $"page-locked staging: {PinnedStaging.SlotCount} slots of {pinned.SlotBytes >> 20} MB");
        Copies(dev, pinned, csv);
        if (pinned is not null)
        {
            SlotSizes(dev, csv);
        }

        bool ok = true;
        foreach (bool half in new[] { false, true })
        {
            Console.WriteLine();
            Console.WriteLine($"| mm {(half ? "bfloat16" : "float32")} M x K x N | GFLOP | staged bytes (MB) | CPU ms | staged device ms, pageable | staged device ms, page-locked | faster (CPU or page-locked) | routed to | max rel diff |");
            Console.WriteLine("|---|---|---|---|---|---|---|---|---|");
            foreach (var (m, k, n) in Shapes)
            {
                ok &= half ? Product<ushort, BFloat16Lanes>(dev, pinned, csv, m, k, n, opt.Seed) : Product<float, Float32Lanes>(dev, pinned, csv, m, k, n, opt.Seed);
            }
        }

        Console.WriteLine();
        Console.WriteLine("| sdpa float32 32/8 heads, d 128: Lq x Lk | GFLOP | staged bytes (MB) | CPU ms | staged device ms, pageable | staged device ms, page-locked | faster (CPU or page-locked) | routed to | max abs diff |");
        Console.WriteLine("|---|---|---|---|---|---|---|---|---|");
        foreach (var (lq, lk, causal) in new[] { (1, 512, false), (1, 4096, false), (16, 4096, false), (128, 128, true), (512, 512, true), (1024, 1024, true), (2048, 2048, true) })
        {
            ok &= Attention(dev, pinned, csv, lq, lk, causal, opt.Seed);
        }

        Console.WriteLine();
        Console.WriteLine("| memory-bound float32: op, rows x columns | GFLOP | staged bytes (MB) | CPU ms | staged device ms, pageable | staged device ms, page-locked | faster (CPU or page-locked) | routed to | max abs diff |");
        Console.WriteLine("|---|---|---|---|---|---|---|---|---|");
        foreach (var (op, rows, columns) in new[] { ("silu", 1, 4096), ("silu", 16, 11008), ("silu", 2048, 11008), ("rms_norm", 1, 4096), ("rms_norm", 16, 4096), ("rms_norm", 2048, 4096) })
        {
            ok &= MemoryBound(dev, pinned, csv, op, rows, columns, opt.Seed);
        }

        return ok ? 0 : 1;
    }

    /// <summary>
    /// A memory-bound operator (silu, or rms_norm over rows with a weight) on both paths: the CPU kernel against the staged
    /// device call (input and weight in, the kernel, the output back), results compared. The runtime keeps these operators on
    /// the CPU of a GPU node (it gives the GPU only mm, addmm, bmm and attention); these rows check that choice.
    /// </summary>
    private static bool MemoryBound(IlgpuDevice dev, PinnedStaging? pinned, CsvSink csv, string op, int rows, int columns, int seed)
    {
        bool norm = op == "rms_norm";
        long count = (long)rows * columns;
        float* x = (float*)NativeMemory.AlignedAlloc((nuint)(count * sizeof(float)), 64);
        float* w = (float*)NativeMemory.AlignedAlloc((nuint)(columns * sizeof(float)), 64);
        float* cpu = (float*)NativeMemory.AlignedAlloc((nuint)(count * sizeof(float)), 64);
        float* staged = (float*)NativeMemory.AlignedAlloc((nuint)(count * sizeof(float)), 64);
        try
        {
            var random = new Random(seed ^ (rows * 131 + columns));
            Fill(x, count, random);
            Fill(w, columns, random);
            const double Epsilon = 1e-6;
            double cpuMs = Median(() =>
            {
                if (norm)
                {
                    CpuKernels.RmsNormCore(x, w, cpu, rows, columns, Epsilon);
                }
                else
                {
                    CpuKernels.SiluCore(x, cpu, count);
                }
            });

            using var xBuffer = dev.Accelerator.Allocate1D<float>(count);
            using var wBuffer = dev.Accelerator.Allocate1D<float>(columns);
            using var yBuffer = dev.Accelerator.Allocate1D<float>(count);
            ArrayView<float> xv = xBuffer.View, wv = wBuffer.View, yv = yBuffer.View;
            double Staged(PinnedStaging? staging) => Median(() =>
            {
                PinnedStaging.CopyIn(staging, x, xv);
                if (norm)
                {
                    PinnedStaging.CopyIn(staging, w, wv);
                    dev.Kernels.RmsNorm(xv, wv, yv, columns, (float)Epsilon);
                }
                else
                {
                    dev.Kernels.Silu(xv, yv);
                }

                dev.Synchronize();
                PinnedStaging.CopyOut(staging, yv, staged);
            });

            var (pageableMs, pinnedMs, worst) = BothStagings(pinned, Staged, () => MaxAbsDifference(staged, cpu, count), staged, count * sizeof(float));

            // Outputs of order 1 (silu of [-1, 1], rows normalised to unit mean square times weights in [-1, 1]).
            bool pass = worst <= 1e-4;
            double bytes = sizeof(float) * ((2.0 * count) + (norm ? columns : 0));
            Report(csv, op, "f32", FormattableString.Invariant($"{rows} x {columns}"), (norm ? 3.0 : 20.0) * count, bytes, cpuMs, pageableMs, pinnedMs,
                routed: false, worst, pass);
            return pass;
        }
        finally
        {
            NativeMemory.AlignedFree(x);
            NativeMemory.AlignedFree(w);
            NativeMemory.AlignedFree(cpu);
            NativeMemory.AlignedFree(staged);
        }
    }

    /// <summary>Host → device and device → host copy time from pageable host memory, by size: ILGPU's copy (the driver stages it) and the product's page-locked slots.</summary>
    private static void Copies(IlgpuDevice dev, PinnedStaging? pinned, CsvSink csv)
    {
        Console.WriteLine("| copy of pageable host memory | bytes | ms, driver-staged | GB/s | ms, page-locked slots | GB/s |");
        Console.WriteLine("|---|---|---|---|---|---|");
        foreach (long bytes in new[] { 4L << 10, 256L << 10, 4L << 20, 64L << 20, 256L << 20 })
        {
            var (up, down) = CopyTimes(dev, null, bytes);
            var (upPinned, downPinned) = pinned is null ? (double.NaN, double.NaN) : CopyTimes(dev, pinned, bytes);
            CopyRows(csv, "h2d", "host → device", bytes, up, upPinned);
            CopyRows(csv, "d2h", "device → host", bytes, down, downPinned);
        }
    }

    /// <summary>The page-locked copy of 64 MB each way with other slot sizes than the product's (its slot size is a guess until measured).</summary>
    private static void SlotSizes(IlgpuDevice dev, CsvSink csv)
    {
        const long Bytes = 64L << 20;
        Console.WriteLine();
        Console.WriteLine("| page-locked slot size (64 MB copied) | host → device ms | GB/s | device → host ms | GB/s |");
        Console.WriteLine("|---|---|---|---|---|");
        foreach (int slotBytes in new[] { 1 << 20, 2 << 20, 4 << 20, 8 << 20, 16 << 20 })
        {
            using var staging = PinnedStaging.TryCreate(dev.Accelerator, slotBytes);
            if (staging is null)
            {
                continue;
            }

            var (up, down) = CopyTimes(dev, staging, Bytes);
            Console.WriteLine(FormattableString.Invariant($"| {slotBytes >> 20} MB | {up:F3} | {Bytes / (up * 1e6):F1} | {down:F3} | {Bytes / (down * 1e6):F1} |"));
            string shape = FormattableString.Invariant($"64MB slot {slotBytes >> 20}MB");
            csv.Add(new Row("staging", "copy_h2d_slot", "u8", shape, up, Bytes / (up * 1e6), double.NaN, double.NaN, "PASS"));
            csv.Add(new Row("staging", "copy_d2h_slot", "u8", shape, down, Bytes / (down * 1e6), double.NaN, double.NaN, "PASS"));
        }
    }

    /// <summary>Median ms of <paramref name="bytes"/> copied host → device and back through <paramref name="pinned"/> (or pageable when null), the bytes checked after.</summary>
    private static (double Up, double Down) CopyTimes(IlgpuDevice dev, PinnedStaging? pinned, long bytes)
    {
        byte* host = (byte*)NativeMemory.AlignedAlloc((nuint)bytes, 64);
        byte* back = (byte*)NativeMemory.AlignedAlloc((nuint)bytes, 64);
        try
        {
            for (long i = 0; i < bytes; i++)
            {
                host[i] = (byte)(i * 7);
            }

            using var buffer = dev.Accelerator.Allocate1D<byte>(bytes);
            ArrayView<byte> view = buffer.View;
            double up = Median(() =>
            {
                PinnedStaging.CopyIn(pinned, host, view);
                dev.Synchronize();
            });
            double down = Median(() => PinnedStaging.CopyOut(pinned, view, back));
            if (!new ReadOnlySpan<byte>(host, (int)Math.Min(bytes, int.MaxValue)).SequenceEqual(new ReadOnlySpan<byte>(back, (int)Math.Min(bytes, int.MaxValue))))
            {
                throw new InvalidOperationException($"the {(pinned is null ? "pageable" : "page-locked")} copy of {bytes} bytes came back different");
            }

            return (up, down);
        }
        finally
        {
            NativeMemory.AlignedFree(host);
            NativeMemory.AlignedFree(back);
        }
    }

    private static void CopyRows(CsvSink csv, string direction, string label, long bytes, double pageable, double pinned)
    {
        Console.WriteLine(FormattableString.Invariant($"| {label} | {bytes} | {pageable:F4} | {bytes / (pageable * 1e6):F1} | {pinned:F4} | {bytes / (pinned * 1e6):F1} |"));
        string size = bytes.ToString(System.Globalization.CultureInfo.InvariantCulture);
        csv.Add(new Row("staging", "copy_" + direction, "u8", size, pageable, bytes / (pageable * 1e6), double.NaN, double.NaN, "PASS"));
        csv.Add(new Row("staging", "copy_" + direction + "_pinned", "u8", size, pinned, bytes / (pinned * 1e6), double.NaN, double.NaN, "PASS"));
    }

    /// <summary>One mm shape on both paths over the same operands; the two results must agree to the dtype's tolerance.</summary>
    private static bool Product<T, TLanes>(IlgpuDevice dev, PinnedStaging? pinned, CsvSink csv, int m, int k, int n, int seed)
        where T : unmanaged
        where TLanes : struct, IFloatLanes
    {
        bool half = typeof(T) == typeof(ushort);
        long aCount = (long)m * k, bCount = (long)k * n, cCount = (long)m * n;
        T* a = (T*)NativeMemory.AlignedAlloc((nuint)(aCount * sizeof(T)), 64);
        T* b = (T*)NativeMemory.AlignedAlloc((nuint)(bCount * sizeof(T)), 64);
        float* cpu = (float*)NativeMemory.AlignedAlloc((nuint)(cCount * sizeof(float)), 64);
        T* staged = (T*)NativeMemory.AlignedAlloc((nuint)(cCount * sizeof(T)), 64);
        try
        {
            var random = new Random(seed ^ (m * 31 + k * 7 + n));
            Fill(a, aCount, random);
            Fill(b, bCount, random);
            var problem = new GemmProblem
            {
                A = a, RowStrideA = k, ColStrideA = 1, BatchStrideA = aCount,
                B = b, RowStrideB = n, ColStrideB = 1, BatchStrideB = bCount,
                C = cpu, BatchStrideC = cCount, M = m, N = n, K = k, Batch = 1, Alpha = 1f,
            };
            double cpuMs = Median(() => Gemm.Run<TLanes>(problem));

            using var aBuffer = dev.Accelerator.Allocate1D<T>(aCount);
            using var bBuffer = dev.Accelerator.Allocate1D<T>(bCount);
            using var cBuffer = dev.Accelerator.Allocate1D<T>(cCount);
            ArrayView<T> av = aBuffer.View, bv = bBuffer.View, cv = cBuffer.View;
            double Staged(PinnedStaging? staging) => Median(() =>
            {
                PinnedStaging.CopyIn(staging, a, av);
                PinnedStaging.CopyIn(staging, b, bv);
                if (half)
                {
                    dev.Kernels.Mm(av.Cast<ushort>(), bv.Cast<ushort>(), cv.Cast<ushort>(), m, k, n, HalfFormat.BFloat16, transposeB: false);
                }
                else
                {
                    dev.Kernels.Mm(av.Cast<float>(), bv.Cast<float>(), cv.Cast<float>(), m, k, n, transposeB: false);
                }

                dev.Synchronize();
                PinnedStaging.CopyOut(staging, cv, staged);
            });

            double MaxRelativeDifference()
            {
                double worst = 0;
                for (long i = 0; i < cCount; i++)
                {
                    double want = cpu[i], got = half ? DTypeExtensions.BF16ToFloat(((ushort*)staged)[i]) : ((float*)staged)[i];
                    double rel = Math.Abs(got - want) / Math.Max(Math.Abs(want), Math.Sqrt(k));
                    worst = double.IsNaN(rel) ? double.PositiveInfinity : Math.Max(worst, rel);
                }

                return worst;
            }

            var (pageableMs, pinnedMs, worst) = BothStagings(pinned, Staged, MaxRelativeDifference, staged, cCount * sizeof(T));

            // The sums of k products of values in [-1, 1]: bfloat16's output rounding (2^-8) and float32's accumulation order.
            bool pass = worst <= (half ? 1e-2 : 1e-5);
            bool routed = StagingCost.StagesProduct(IlgpuDeviceKind.Cuda, 1, m, k, n, 0, sizeof(T));
            Report(csv, "mm", half ? "bf16" : "f32", FormattableString.Invariant($"{m} x {k} x {n}"), StagingCost.ProductFlops(1, m, k, n),
                StagingCost.ProductBytes(1, m, k, n, 0, sizeof(T)), cpuMs, pageableMs, pinnedMs, routed, worst, pass);
            return pass;
        }
        finally
        {
            NativeMemory.AlignedFree(a);
            NativeMemory.AlignedFree(b);
            NativeMemory.AlignedFree(cpu);
            NativeMemory.AlignedFree(staged);
        }
    }

    /// <summary>One attention shape (32 query / 8 key-value heads, d 128, float32) on both paths over the same operands.</summary>
    private static bool Attention(IlgpuDevice dev, PinnedStaging? pinned, CsvSink csv, int lq, int lk, bool causal, int seed)
    {
        const int Heads = 32, KvHeads = 8, D = 128;
        long qCount = (long)Heads * lq * D, kvCount = (long)KvHeads * lk * D;
        float* q = (float*)NativeMemory.AlignedAlloc((nuint)(qCount * sizeof(float)), 64);
        float* k = (float*)NativeMemory.AlignedAlloc((nuint)(kvCount * sizeof(float)), 64);
        float* v = (float*)NativeMemory.AlignedAlloc((nuint)(kvCount * sizeof(float)), 64);
        float* cpu = (float*)NativeMemory.AlignedAlloc((nuint)(qCount * sizeof(float)), 64);
        float* staged = (float*)NativeMemory.AlignedAlloc((nuint)(qCount * sizeof(float)), 64);
        try
        {
            var random = new Random(seed ^ (lq * 131 + lk));
            Fill(q, qCount, random);
            Fill(k, kvCount, random);
            Fill(v, kvCount, random);
            float scale = 1f / MathF.Sqrt(D);
            var work = new CpuTensorKernels.AttentionWork
            {
                Q = q, K = k, V = v, Mask = null, MaskStrides = new long[4], Heads = Heads, KvHeads = KvHeads, Lq = lq, Lk = lk, D = D, Dv = D,
                Scale = scale, Causal = causal,
            };
            double cpuMs = Median(() => CpuTensorKernels.Attention(work, (long)Heads * lq, cpu));

            using var qBuffer = dev.Accelerator.Allocate1D<float>(qCount);
            using var kBuffer = dev.Accelerator.Allocate1D<float>(kvCount);
            using var vBuffer = dev.Accelerator.Allocate1D<float>(kvCount);
            using var yBuffer = dev.Accelerator.Allocate1D<float>(qCount);
            ArrayView<float> qv = qBuffer.View, kv = kBuffer.View, vv = vBuffer.View, yv = yBuffer.View;
            double Staged(PinnedStaging? staging) => Median(() =>
            {
                PinnedStaging.CopyIn(staging, q, qv);
                PinnedStaging.CopyIn(staging, k, kv);
                PinnedStaging.CopyIn(staging, v, vv);
                dev.Kernels.ScaledDotProductAttention(qv, kv, vv, yv, 1, Heads, KvHeads, lq, lk, D, causal, default, scale);
                dev.Synchronize();
                PinnedStaging.CopyOut(staging, yv, staged);
            });

            var (pageableMs, pinnedMs, worst) = BothStagings(pinned, Staged, () => MaxAbsDifference(staged, cpu, qCount), staged, qCount * sizeof(float));

            // Outputs are averages of values in [-1, 1]: both paths' float32 rounding differs far below this.
            bool pass = worst <= 1e-4;
            bool routed = StagingCost.StagesAttention(IlgpuDeviceKind.Cuda, 1, Heads, KvHeads, lq, lk, D, causal, 0, sizeof(float));
            Report(csv, "sdpa", "f32", FormattableString.Invariant($"{lq} x {lk}{(causal ? " causal" : string.Empty)}"), StagingCost.AttentionFlops(1, Heads, lq, lk, D, causal),
                StagingCost.AttentionBytes(1, Heads, KvHeads, lq, lk, D, sizeof(float)), cpuMs, pageableMs, pinnedMs, routed, worst, pass);
            return pass;
        }
        finally
        {
            NativeMemory.AlignedFree(q);
            NativeMemory.AlignedFree(k);
            NativeMemory.AlignedFree(v);
            NativeMemory.AlignedFree(cpu);
            NativeMemory.AlignedFree(staged);
        }
    }

    /// <summary>
    /// One table row and three CSV rows (the CPU kernel, the staged call with pageable copies, with the page-locked slots); the
    /// routing's pick is right when it is the faster of the CPU and the page-locked staged call (the product's two paths).
    /// </summary>
    private static void Report(CsvSink csv, string op, string dtype, string shape, double flops, double stagedBytes, double cpuMs, double pageableMs, double pinnedMs, bool routed, double worst, bool pass)
    {
        double deviceMs = double.IsNaN(pinnedMs) ? pageableMs : pinnedMs;
        string faster = cpuMs <= deviceMs ? "CPU" : "device";
        string route = routed ? "device" : "CPU";
        Console.WriteLine(FormattableString.Invariant(
            $"| {shape} | {flops / 1e9:F3} | {stagedBytes / 1e6:F1} | {cpuMs:F3} | {pageableMs:F3} | {pinnedMs:F3} | {faster} {Math.Max(cpuMs, deviceMs) / Math.Min(cpuMs, deviceMs):F1}x | {route}{(route == faster ? string.Empty : " (slower)")} | {worst:E1}{(pass ? string.Empty : " FAIL")} |"));
        string status = pass ? "PASS" : "FAIL", note = "routed=" + route;
        csv.Add(new Row("staging", op + "_cpu", dtype, shape, cpuMs, stagedBytes / (cpuMs * 1e6), flops / (cpuMs * 1e9), worst, status, Note: note));
        csv.Add(new Row("staging", op + "_staged", dtype, shape, pageableMs, stagedBytes / (pageableMs * 1e6), flops / (pageableMs * 1e9), worst, status, Note: note));
        csv.Add(new Row("staging", op + "_staged_pinned", dtype, shape, pinnedMs, stagedBytes / (pinnedMs * 1e6), flops / (pinnedMs * 1e9), worst, status, Note: note));
    }

    /// <summary>
    /// Times <paramref name="staged"/> with pageable copies, then through <paramref name="pinned"/>'s slots when there are,
    /// and measures each result with <paramref name="difference"/>; the output (<paramref name="outputBytes"/> at
    /// <paramref name="output"/>) is filled with NaN before the second, so a copy that never arrived cannot pass.
    /// </summary>
    private static (double PageableMs, double PinnedMs, double Worst) BothStagings(
        PinnedStaging? pinned, Func<PinnedStaging?, double> staged, Func<double> difference, void* output, long outputBytes)
    {
        double pageableMs = staged(null);
        double worst = difference();
        double pinnedMs = double.NaN;
        if (pinned is not null)
        {
            NativeMemory.Fill(output, (nuint)outputBytes, 0xFF);
            pinnedMs = staged(pinned);
            worst = Math.Max(worst, difference());
        }

        return (pageableMs, pinnedMs, worst);
    }

    /// <summary>The largest |a[i] − b[i]|; NaN anywhere reads as +∞.</summary>
    private static double MaxAbsDifference(float* a, float* b, long count)
    {
        double worst = 0;
        for (long i = 0; i < count; i++)
        {
            double diff = Math.Abs(a[i] - b[i]);
            worst = double.IsNaN(diff) ? double.PositiveInfinity : Math.Max(worst, diff);
        }

        return worst;
    }

    private static void Fill<T>(T* data, long count, Random random)
        where T : unmanaged
    {
        for (long i = 0; i < count; i++)
        {
            float value = (float)((random.NextDouble() * 2) - 1);
            if (typeof(T) == typeof(ushort))
            {
                ((ushort*)data)[i] = DTypeExtensions.FloatToBF16(value);
            }
            else
            {
                ((float*)data)[i] = value;
            }
        }
    }

    /// <summary>
    /// Median milliseconds of a call over as many calls as fit ~0.4 s (3 to 50), after ~0.25 s of warm-up calls (at least
    /// one): .NET runs a method's first calls unoptimised (tier 0) and swaps in the optimised code some 100 ms after it is
    /// called often. Until session 27 the CPU attention kernel's loops were among such methods and one warm-up call was
    /// all the probe gave them (on the development host one query over 64 keys read 0.47–0.58 ms, 0.035 optimised).
    /// </summary>
    private static double Median(Action call)
    {
        var warmUp = Stopwatch.StartNew();
        do
        {
            call();
        }
        while (warmUp.Elapsed.TotalSeconds < 0.25);

        var times = new List<double>();
        var total = Stopwatch.StartNew();
        while (times.Count < 3 || (times.Count < 50 && total.Elapsed.TotalSeconds < 0.4))
        {
            long start = Stopwatch.GetTimestamp();
            call();
            times.Add(Stopwatch.GetElapsedTime(start).TotalMilliseconds);
        }

        times.Sort();
        return times[times.Count / 2];
    }
}
