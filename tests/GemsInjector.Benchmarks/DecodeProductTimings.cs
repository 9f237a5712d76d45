using System;
using System.Diagnostics;
using GemsInjector.Kernels.Cpu;
using TorchSharp;

namespace GemsInjector.Benchmarks;

/// <summary>
/// Decode-size products (the shapes of the DistributedInference sample) timed with a Stopwatch: a call is 1-20 µs, where
/// BenchmarkDotNet's per-case start-up costs more than the whole measurement. GemsInjector's <c>mm</c>/<c>addmm</c>/<c>bmm</c>
/// and TorchSharp's run alternately in the same process, so machine load shifts both; the ratio is what to read.
/// Run: <c>dotnet run -c Release --project tests/GemsInjector.Benchmarks -- decode-products [calls [name-part]]</c>.
/// </summary>
internal static class DecodeProductTimings
{
    private const int Rounds = 5;

    /// <summary>Prints one line per case: best-of-5 mean time per call for TorchSharp and GemsInjector, and the speed-up.</summary>
    public static void Run(int calls, string? only)
    {
        filter = only;
        Console.WriteLine($"decode products: {calls} calls per round, best of {Rounds} rounds, threads available {Environment.ProcessorCount}");
        Console.WriteLine($"{"case",-34} {"torch µs",10} {"gems µs",10} {"speed-up",9}");
        var generator = new torch.Generator(20261128);
        // [1x1]·[1x64] is almost all fixed cost: argument checks, metadata, the output tensor.
        foreach ((int m, int k, int n) in new[] { (1, 1, 64), (1, 256, 64), (1, 256, 256), (1, 256, 512), (1, 688, 256), (1, 256, 1376), (4, 256, 768), (16, 256, 256), (64, 256, 256), (1, 1024, 1024), (1, 2048, 2048), (1, 4096, 4096) })
        {
            using var a = torch.randn([m, k], generator: generator);
            using var b = torch.randn([k, n], generator: generator);
            using var bias = torch.randn([n], generator: generator);
            Report($"mm [{m}x{k}]·[{k}x{n}]", calls, () => torch.mm(a, b), () => CpuTensorKernels.Mm(a, b));
            if (m == 1 && n == 256)
            {
                using var bt = b.t().contiguous().t();
                Report($"mm [{m}x{k}]·[{k}x{n}] (W.t())", calls, () => torch.mm(a, bt), () => CpuTensorKernels.Mm(a, bt));
                Report($"addmm [{m}x{k}]·[{k}x{n}]", calls, () => torch.addmm(bias, a, b, 1f, 1f), () => CpuTensorKernels.Addmm(bias, a, b, 1, 1));
            }
        }

        // Attention-shaped batches: [heads, 1, d] x [heads, d, t].
        using var q = torch.randn([4, 1, 64], generator: generator);
        using var keys = torch.randn([4, 64, 32], generator: generator);
        Report("bmm [4x1x64]·[4x64x32]", calls, () => torch.bmm(q, keys), () => CpuTensorKernels.Bmm(q, keys));
        using var bf = torch.randn([1, 256], generator: generator).to(torch.bfloat16);
        using var wf = torch.randn([256, 256], generator: generator).to(torch.bfloat16);
        Report("mm bf16 [1x256]·[256x256]", calls, () => torch.mm(bf, wf), () => CpuTensorKernels.Mm(bf, wf));
    }

    private static string? filter;

    /// <summary>Times both calls alternately (best of 5 rounds) and prints one line; also used by <see cref="RowOperatorTimings"/>.</summary>
    internal static void Report(string name, int calls, Func<torch.Tensor> torchCall, Func<torch.Tensor> gemsCall)
    {
        if (filter is not null && !name.Contains(filter, StringComparison.Ordinal))
        {
            return;
        }

        // Rounds of about 20 ms each (at most `calls` calls), so slow cases do not take minutes.
        int torchCalls = Calls(calls, torchCall), gemsCalls = Calls(calls, gemsCall);
        double bestTorch = double.MaxValue, bestGems = double.MaxValue;
        for (int round = 0; round < Rounds; round++)
        {
            bestTorch = Math.Min(bestTorch, Time(torchCalls, torchCall));
            bestGems = Math.Min(bestGems, Time(gemsCalls, gemsCall));
        }

        Console.WriteLine($"{name,-34} {bestTorch,10:F2} {bestGems,10:F2} {bestTorch / bestGems,8:F2}x");
    }

    private static int Calls(int most, Func<torch.Tensor> call)
    {
        double warmUp = Time(200, call);
        return (int)Math.Clamp(20_000 / warmUp, 200, most);
    }

    private static double Time(int calls, Func<torch.Tensor> call)
    {
        long start = Stopwatch.GetTimestamp();
        for (int i = 0; i < calls; i++)
        {
            call().Dispose();
        }

        return Stopwatch.GetElapsedTime(start).TotalMicroseconds / calls;
    }
}
