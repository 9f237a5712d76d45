using System;
using GemsInjector.Kernels.Cpu;
using TorchSharp;

namespace GemsInjector.Benchmarks;

/// <summary>
/// softmax and log_softmax over the last dimension at [1 / 64 / 4096 × 4096] float32, GemsInjector against TorchSharp,
/// alternating in one process (best of 5 rounds each), for a machine shared with other work: load shifts both columns,
/// so the ratio is what to read. Run with the tuned TorchSharp settings of <c>docs/perf/cpu.md</c> in the environment:
/// <c>dotnet run -c Release --project tests/GemsInjector.Benchmarks -- softmax [calls]</c>.
/// </summary>
internal static class SoftmaxTimings
{
    /// <summary>Prints one line per case: time per call for TorchSharp and GemsInjector, and the speed-up.</summary>
    public static void Run(int calls)
    {
        Console.WriteLine($"softmax: at most {calls} calls per round, threads available {Environment.ProcessorCount}");
        Console.WriteLine($"{"case",-34} {"torch µs",10} {"gems µs",10} {"speed-up",9}");
        var generator = new torch.Generator(20261128);
        foreach (int rows in new[] { 1, 64, 4096 })
        {
            using var x = torch.randn([rows, 4096], generator: generator);
            // Half a second of calls first, so tiered compilation has promoted the kernels before any round counts.
            WarmUp(() => torch.nn.functional.softmax(x, -1), () => CpuTensorKernels.Softmax(x, -1), () => torch.nn.functional.log_softmax(x, -1), () => CpuTensorKernels.LogSoftmax(x, -1));
            DecodeProductTimings.Report($"softmax [{rows}x4096]", calls, () => torch.nn.functional.softmax(x, -1), () => CpuTensorKernels.Softmax(x, -1));
            DecodeProductTimings.Report($"log_softmax [{rows}x4096]", calls, () => torch.nn.functional.log_softmax(x, -1), () => CpuTensorKernels.LogSoftmax(x, -1));
        }
    }

    private static void WarmUp(params Func<torch.Tensor>[] calls)
    {
        foreach (Func<torch.Tensor> call in calls)
        {
            long end = System.Diagnostics.Stopwatch.GetTimestamp() + System.Diagnostics.Stopwatch.Frequency / 2;
            while (System.Diagnostics.Stopwatch.GetTimestamp() < end)
            {
                call().Dispose();
            }
        }
    }
}
