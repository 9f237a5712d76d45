using System;
using System.Collections.Generic;
using System.Diagnostics;
using GemsInjector.Kernels.Cpu;
using TorchSharp;

namespace GemsInjector.Benchmarks;

/// <summary>
/// The FLOP rates of GemsInjector's CPU kernels for the operators a GPU may take instead (mm in float32 and bfloat16,
/// causal and decode attention), per CPU thread: the CPU side of the staging cost (<c>StagingCost</c>, which routes a
/// call on host tensors to the GPU only when its copies cost less than the CPU's work). Median of calls within about a
/// second per case. Run: <c>dotnet run -c Release --project tests/GemsInjector.Benchmarks -- compute-rates</c>.
/// </summary>
internal static class ComputeRateTimings
{
    public static void Run()
    {
        int threads = CpuThreadBudget.MaxThreads;
        Console.WriteLine($"compute rates of the CPU kernels: {threads} threads ({CpuThreadBudget.Source}), {Environment.ProcessorCount} cores, {DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC");
        Console.WriteLine($"{"case",-44} {"ms",9} {"GFLOP/s",9} {"per thread",11}");
        var generator = new torch.Generator(20261130);
        foreach (int m in new[] { 1, 16, 64, 256, 1024 })
        {
            using var a = torch.randn([m, 4096], generator: generator);
            using var w = torch.randn([4096, 4096], generator: generator);
            Report($"mm float32 {m}x4096x4096", 2.0 * m * 4096 * 4096, threads, () => CpuTensorKernels.Mm(a, w));
            using var a16 = a.to(torch.bfloat16);
            using var w16 = w.to(torch.bfloat16);
            Report($"mm bfloat16 {m}x4096x4096", 2.0 * m * 4096 * 4096, threads, () => CpuTensorKernels.Mm(a16, w16));
        }

        foreach (var (lq, lk, causal) in new[] { (1, 64, false), (1, 512, false), (1, 4096, false), (128, 128, true), (512, 512, true), (2048, 2048, true) })
        {
            using var q = torch.randn([1, 32, lq, 128], generator: generator);
            using var k = torch.randn([1, 8, lk, 128], generator: generator);
            using var v = torch.randn([1, 8, lk, 128], generator: generator);
            // Scores and values: 2 · 2 · d FLOP per (query, key) pair the mask keeps (half of them when causal and square).
            double flops = 4.0 * 32 * lq * lk * 128 * (causal ? 0.5 : 1);
            Report($"sdpa float32 32/8 heads {lq}x{lk}x128{(causal ? " causal" : string.Empty)}", flops, threads,
                () => CpuTensorKernels.ScaledDotProductAttention(q, k, v, null, causal, null));
        }
    }

    private static void Report(string name, double flops, int threads, Func<torch.Tensor> call)
    {
        call().Dispose();
        var times = new List<double>();
        var total = Stopwatch.StartNew();
        while (times.Count < 3 || (times.Count < 50 && total.Elapsed.TotalSeconds < 1))
        {
            long start = Stopwatch.GetTimestamp();
            call().Dispose();
            times.Add(Stopwatch.GetElapsedTime(start).TotalMilliseconds);
        }

        times.Sort();
        double ms = times[times.Count / 2];
        Console.WriteLine($"{name,-44} {ms,9:F3} {flops / ms / 1e6,9:F1} {flops / ms / 1e6 / threads,11:F1}");
    }
}
