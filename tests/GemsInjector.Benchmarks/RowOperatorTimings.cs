using System;
using System.Collections.Generic;
using GemsInjector.Kernels.Cpu;
using TorchSharp;

namespace GemsInjector.Benchmarks;

/// <summary>
/// Quick side-by-side timings at [1 / 64 / 4096 × 4096] float32, GemsInjector against TorchSharp, alternating in one
/// process (best of 5 rounds each), for a machine shared with other work: load shifts both columns, so the ratio is
/// what to read. Groups: <c>softmax</c> (softmax, log_softmax) and <c>elementwise</c> (add, mul, silu). Run with the
/// tuned TorchSharp settings of <c>docs/perf/cpu.md</c> in the environment:
/// <c>dotnet run -c Release --project tests/GemsInjector.Benchmarks -- softmax|elementwise [calls]</c>.
/// </summary>
internal static class RowOperatorTimings
{
    /// <summary>The groups <see cref="Run"/> accepts.</summary>
    public static readonly IReadOnlyList<string> Groups = ["softmax", "elementwise"];

    /// <summary>Prints one line per case: time per call for TorchSharp and GemsInjector, and the speed-up.</summary>
    public static void Run(string group, int calls)
    {
        Console.WriteLine($"{group}: at most {calls} calls per round, threads available {Environment.ProcessorCount}");
        Console.WriteLine($"{"case",-34} {"torch µs",10} {"gems µs",10} {"speed-up",9}");
        var generator = new torch.Generator(20261128);
        foreach (int rows in new[] { 1, 64, 4096 })
        {
            using var x = torch.randn([rows, 4096], generator: generator);
            using var y = torch.randn([rows, 4096], generator: generator);
            var cases = group == "softmax"
                ? new (string Name, Func<torch.Tensor> Torch, Func<torch.Tensor> Gems)[]
                {
                    ("softmax", () => torch.nn.functional.softmax(x, -1), () => CpuTensorKernels.Softmax(x, -1)),
                    ("log_softmax", () => torch.nn.functional.log_softmax(x, -1), () => CpuTensorKernels.LogSoftmax(x, -1)),
                }
                : new (string Name, Func<torch.Tensor> Torch, Func<torch.Tensor> Gems)[]
                {
                    ("add", () => torch.add(x, y), () => CpuTensorKernels.Add(x, y, 1.0)),
                    ("mul", () => torch.mul(x, y), () => CpuTensorKernels.Mul(x, y)),
                    ("silu", () => torch.nn.functional.silu(x), () => CpuTensorKernels.Silu(x)),
                };

            // Half a second of calls first, so tiered compilation has promoted the kernels before any round counts.
            foreach (var c in cases)
            {
                WarmUp(c.Torch);
                WarmUp(c.Gems);
            }

            foreach (var c in cases)
            {
                DecodeProductTimings.Report($"{c.Name} [{rows}x4096]", calls, c.Torch, c.Gems);
            }
        }
    }

    private static void WarmUp(Func<torch.Tensor> call)
    {
        long end = System.Diagnostics.Stopwatch.GetTimestamp() + System.Diagnostics.Stopwatch.Frequency / 2;
        while (System.Diagnostics.Stopwatch.GetTimestamp() < end)
        {
            call().Dispose();
        }
    }
}
