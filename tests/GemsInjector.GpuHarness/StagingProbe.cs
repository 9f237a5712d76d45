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
/// staged device call as <c>IlgpuTensorKernels</c> makes it (operands copied from pageable host memory, the kernel, a
/// synchronize, the result copied back) against the CPU kernel (<see cref="Gemm"/> on the worker's CPU threads), on the
/// same operands, and the same for float32 attention; plus the host ↔ device copy rates behind the staged call. Each row
/// also says where the product's routing (<see cref="StagingCost"/>, calibrated from these figures) sends the call.
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
        var csv = new CsvSink(opt.Csv);
        Console.WriteLine($"staging-probe: {dev}; {Environment.ProcessorCount} host cores, CPU kernels on {CpuThreadBudget.MaxThreads} threads"
            + $" ({CpuThreadBudget.Source}); {DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC");
        Copies(dev, csv);
        bool ok = true;
        foreach (bool half in new[] { false, true })
        {
            Console.WriteLine();
            Console.WriteLine($"| mm {(half ? "bfloat16" : "float32")} M x K x N | GFLOP | staged bytes (MB) | CPU ms | staged device ms | faster | routed to | max rel diff |");
            Console.WriteLine("|---|---|---|---|---|---|---|---|");
            foreach (var (m, k, n) in Shapes)
            {
                ok &= half ? Product<ushort, BFloat16Lanes>(dev, csv, m, k, n, opt.Seed) : Product<float, Float32Lanes>(dev, csv, m, k, n, opt.Seed);
            }
        }

        Console.WriteLine();
        Console.WriteLine("| sdpa float32 32/8 heads, d 128: Lq x Lk | GFLOP | staged bytes (MB) | CPU ms | staged device ms | faster | routed to | max rel diff |");
        Console.WriteLine("|---|---|---|---|---|---|---|---|");
        foreach (var (lq, lk, causal) in new[] { (1, 512, false), (1, 4096, false), (16, 4096, false), (128, 128, true), (512, 512, true), (1024, 1024, true), (2048, 2048, true) })
        {
            ok &= Attention(dev, csv, lq, lk, causal, opt.Seed);
        }

        return ok ? 0 : 1;
    }

    /// <summary>Host → device and device → host copy time of pageable memory, by size (the staged call's copies).</summary>
    private static void Copies(IlgpuDevice dev, CsvSink csv)
    {
        Console.WriteLine("| copy of pageable host memory | bytes | median ms | GB/s |");
        Console.WriteLine("|---|---|---|---|");
        foreach (long bytes in new[] { 4L << 10, 256L << 10, 4L << 20, 64L << 20, 256L << 20 })
        {
            byte* host = (byte*)NativeMemory.AlignedAlloc((nuint)bytes, 64);
            try
            {
                NativeMemory.Fill(host, (nuint)bytes, 1);
                using var buffer = dev.Accelerator.Allocate1D<byte>(bytes);
                ArrayView<byte> view = buffer.View;
                double up = Median(() =>
                {
                    view.CopyFromCPU(ref Unsafe.AsRef<byte>(host), bytes);
                    dev.Synchronize();
                });
                double down = Median(() =>
                {
                    view.CopyToCPU(ref Unsafe.AsRef<byte>(host), bytes);
                    dev.Synchronize();
                });
                Console.WriteLine(FormattableString.Invariant($"| host → device | {bytes} | {up:F4} | {bytes / (up * 1e6):F1} |"));
                Console.WriteLine(FormattableString.Invariant($"| device → host | {bytes} | {down:F4} | {bytes / (down * 1e6):F1} |"));
                csv.Add(new Row("staging", "copy_h2d", "u8", bytes.ToString(System.Globalization.CultureInfo.InvariantCulture), up, bytes / (up * 1e6), double.NaN, double.NaN, "PASS"));
                csv.Add(new Row("staging", "copy_d2h", "u8", bytes.ToString(System.Globalization.CultureInfo.InvariantCulture), down, bytes / (down * 1e6), double.NaN, double.NaN, "PASS"));
            }
            finally
            {
                NativeMemory.AlignedFree(host);
            }
        }
    }

    /// <summary>One mm shape on both paths over the same operands; the two results must agree to the dtype's tolerance.</summary>
    private static bool Product<T, TLanes>(IlgpuDevice dev, CsvSink csv, int m, int k, int n, int seed)
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
            double stagedMs = Median(() =>
            {
                av.CopyFromCPU(ref Unsafe.AsRef<T>(a), aCount);
                bv.CopyFromCPU(ref Unsafe.AsRef<T>(b), bCount);
                if (half)
                {
                    dev.Kernels.Mm(av.Cast<ushort>(), bv.Cast<ushort>(), cv.Cast<ushort>(), m, k, n, HalfFormat.BFloat16, transposeB: false);
                }
                else
                {
                    dev.Kernels.Mm(av.Cast<float>(), bv.Cast<float>(), cv.Cast<float>(), m, k, n, transposeB: false);
                }

                dev.Synchronize();
                cv.CopyToCPU(ref Unsafe.AsRef<T>(staged), cCount);
            });

            double worst = 0;
            for (long i = 0; i < cCount; i++)
            {
                double want = cpu[i], got = half ? DTypeExtensions.BF16ToFloat(((ushort*)staged)[i]) : ((float*)staged)[i];
                double rel = Math.Abs(got - want) / Math.Max(Math.Abs(want), Math.Sqrt(k));
                worst = double.IsNaN(rel) ? double.PositiveInfinity : Math.Max(worst, rel);
            }

            // The sums of k products of values in [-1, 1]: bfloat16's output rounding (2^-8) and float32's accumulation order.
            bool pass = worst <= (half ? 1e-2 : 1e-5);
            bool routed = StagingCost.StagesProduct(IlgpuDeviceKind.Cuda, 1, m, k, n, 0, sizeof(T));
            Report(csv, "mm", half ? "bf16" : "f32", FormattableString.Invariant($"{m} x {k} x {n}"), StagingCost.ProductFlops(1, m, k, n),
                StagingCost.ProductBytes(1, m, k, n, 0, sizeof(T)), cpuMs, stagedMs, routed, worst, pass);
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
    private static bool Attention(IlgpuDevice dev, CsvSink csv, int lq, int lk, bool causal, int seed)
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
            double stagedMs = Median(() =>
            {
                qv.CopyFromCPU(ref Unsafe.AsRef<float>(q), qCount);
                kv.CopyFromCPU(ref Unsafe.AsRef<float>(k), kvCount);
                vv.CopyFromCPU(ref Unsafe.AsRef<float>(v), kvCount);
                dev.Kernels.ScaledDotProductAttention(qv, kv, vv, yv, 1, Heads, KvHeads, lq, lk, D, causal, default, scale);
                dev.Synchronize();
                yv.CopyToCPU(ref Unsafe.AsRef<float>(staged), qCount);
            });

            double worst = 0;
            for (long i = 0; i < qCount; i++)
            {
                double diff = Math.Abs(staged[i] - cpu[i]);
                worst = double.IsNaN(diff) ? double.PositiveInfinity : Math.Max(worst, diff);
            }

            // Outputs are averages of values in [-1, 1]: both paths' float32 rounding differs far below this.
            bool pass = worst <= 1e-4;
            bool routed = StagingCost.StagesAttention(IlgpuDeviceKind.Cuda, 1, Heads, KvHeads, lq, lk, D, causal, 0, sizeof(float));
            Report(csv, "sdpa", "f32", FormattableString.Invariant($"{lq} x {lk}{(causal ? " causal" : string.Empty)}"), StagingCost.AttentionFlops(1, Heads, lq, lk, D, causal),
                StagingCost.AttentionBytes(1, Heads, KvHeads, lq, lk, D, sizeof(float)), cpuMs, stagedMs, routed, worst, pass);
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

    /// <summary>One table row and two CSV rows (the CPU kernel, the staged call); the routing's pick is right when it is the faster path.</summary>
    private static void Report(CsvSink csv, string op, string dtype, string shape, double flops, double stagedBytes, double cpuMs, double stagedMs, bool routed, double worst, bool pass)
    {
        string faster = cpuMs <= stagedMs ? "CPU" : "device";
        string route = routed ? "device" : "CPU";
        Console.WriteLine(FormattableString.Invariant(
            $"| {shape} | {flops / 1e9:F3} | {stagedBytes / 1e6:F1} | {cpuMs:F3} | {stagedMs:F3} | {faster} {Math.Max(cpuMs, stagedMs) / Math.Min(cpuMs, stagedMs):F1}x | {route}{(route == faster ? string.Empty : " (slower)")} | {worst:E1}{(pass ? string.Empty : " FAIL")} |"));
        string status = pass ? "PASS" : "FAIL", note = "routed=" + route;
        csv.Add(new Row("staging", op + "_cpu", dtype, shape, cpuMs, stagedBytes / (cpuMs * 1e6), flops / (cpuMs * 1e9), worst, status, Note: note));
        csv.Add(new Row("staging", op + "_staged", dtype, shape, stagedMs, stagedBytes / (stagedMs * 1e6), flops / (stagedMs * 1e9), worst, status, Note: note));
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

    /// <summary>Median milliseconds of a call after one warm-up, over as many calls as fit ~0.4 s (3 to 50).</summary>
    private static double Median(Action call)
    {
        call();
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
