using System;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using System.Threading.Tasks;
using GemsInjector.Kernels.Cpu;
using GemsInjector.Operators;
using TorchSharp;

namespace GemsInjector.Benchmarks;

/// <summary>
/// The memory-traffic floor of the [4096 × 4096] float32 element-wise and row operators on this machine, measured in the same
/// process as TorchSharp's and GemsInjector's kernels (best of 5 rounds each, alternating): a raw loop that moves
/// exactly the bytes an operator must move (read two 64 MiB inputs and stream one 64 MiB output for add / mul, read one
/// and stream one for silu) on every core, with no arithmetic worth the name. No kernel can beat that loop by much, so
/// TorchSharp's time over the loop's bounds the speed-up any kernel can show against TorchSharp here.
/// Run: <c>dotnet run -c Release --project tests/GemsInjector.Benchmarks -- bandwidth</c> (with the tuned TorchSharp settings).
/// </summary>
internal static unsafe class MemoryBoundTimings
{
    private const int Rows = 4096;
    private const int Width = 4096;
    private const long Elements = (long)Rows * Width;
    private const double MiB = 1 << 20;

    public static void Run(int calls)
    {
        int threads = Environment.ProcessorCount;
        Console.WriteLine($"bandwidth: [{Rows}x{Width}] float32, {threads} threads, best of 5 rounds of at most {calls} calls");
        Console.WriteLine($"{"case",-44} {"ms",8} {"GB/s moved",11}");
        float* a = Allocate(1f), b = Allocate(2f), c = Allocate(0f);
        var generator = new torch.Generator(20261128);
        using var x = torch.randn([Rows, Width], generator: generator);
        using var y = torch.randn([Rows, Width], generator: generator);
        using var gateUp = torch.randn([Rows, 2 * Width], generator: generator);
        try
        {
            double readTwo = Best(calls, () => Split(threads, (first, end) => ReadTwo(a, b, first, end)));
            double readTwoStreamOne = Best(calls, () => Split(threads, (first, end) => ReadTwoStreamOne(a, b, c, first, end)));
            double readTwoStoreOne = Best(calls, () => Split(threads, (first, end) => ReadTwoStoreOne(a, b, c, first, end)));
            double readOneStreamOne = Best(calls, () => Split(threads, (first, end) => ReadTwoStreamOne(a, null, c, first, end)));
            double torchAdd = Best(calls, () => torch.add(x, y).Dispose());
            double gemsAdd = Best(calls, () => CpuTensorKernels.Add(x, y, 1.0).Dispose());
            double torchSilu = Best(calls, () => torch.nn.functional.silu(x).Dispose());
            double gemsSilu = Best(calls, () => CpuTensorKernels.Silu(x).Dispose());
            double torchSoftmax = Best(calls, () => torch.nn.functional.softmax(x, -1).Dispose());
            double gemsSoftmax = Best(calls, () => CpuTensorKernels.Softmax(x, -1).Dispose());
            var torchSiluAndMul = (UnaryKernel)OperatorTable.SiluAndMul.Default.Kernel;
            double torchGated = Best(calls, () => torchSiluAndMul(gateUp).Dispose());
            double gemsGated = Best(calls, () => CpuTensorKernels.SiluAndMul(gateUp).Dispose());
            Line("raw: read 2 x 64 MiB", readTwo, 128);
            Line("raw: read 2 x 64 MiB, stream 64 MiB out", readTwoStreamOne, 192);
            Line("raw: read 2 x 64 MiB, store 64 MiB (cached)", readTwoStoreOne, 192);
            Line("raw: read 64 MiB, stream 64 MiB out", readOneStreamOne, 128);
            Line("TorchSharp add (counted as 192 MiB)", torchAdd, 192);
            Line("GemsInjector add", gemsAdd, 192);
            Line("TorchSharp silu (counted as 128 MiB)", torchSilu, 128);
            Line("GemsInjector silu", gemsSilu, 128);
            Line("TorchSharp softmax (counted as 128 MiB)", torchSoftmax, 128);
            Line("GemsInjector softmax", gemsSoftmax, 128);
            Line("TorchSharp silu_and_mul (192 MiB)", torchGated, 192);
            Line("GemsInjector silu_and_mul", gemsGated, 192);
            double addFloor = Math.Min(readTwoStreamOne, readTwoStoreOne);
            Console.WriteLine($"add:  TorchSharp / faster raw loop = {torchAdd / addFloor:F2}x (about the most any add could gain here), TorchSharp / GemsInjector = {torchAdd / gemsAdd:F2}x");
            Console.WriteLine($"silu: TorchSharp / raw floor = {torchSilu / readOneStreamOne:F2}x, TorchSharp / GemsInjector = {torchSilu / gemsSilu:F2}x");
            Console.WriteLine($"softmax: TorchSharp / raw floor = {torchSoftmax / readOneStreamOne:F2}x, TorchSharp / GemsInjector = {torchSoftmax / gemsSoftmax:F2}x");
            Console.WriteLine($"silu_and_mul: TorchSharp / raw floor = {torchGated / addFloor:F2}x, TorchSharp / GemsInjector = {torchGated / gemsGated:F2}x");
        }
        finally
        {
            NativeMemory.AlignedFree(a);
            NativeMemory.AlignedFree(b);
            NativeMemory.AlignedFree(c);
        }
    }

    private static void Line(string name, double ms, double mebibytes) =>
        Console.WriteLine($"{name,-44} {ms,8:F3} {mebibytes * MiB / (ms * 1e6),11:F1}");

    private static float* Allocate(float value)
    {
        var p = (float*)NativeMemory.AlignedAlloc((nuint)(Elements * sizeof(float)), 64);
        new Span<float>(p, (int)Elements).Fill(value);
        return p;
    }

    private static void Split(int threads, Action<long, long> body)
    {
        long per = Elements / threads;
        Parallel.For(0, threads, new ParallelOptions { MaxDegreeOfParallelism = threads }, t => body(t * per, t == threads - 1 ? Elements : (t + 1) * per));
    }

    private static float sink;

    private static void ReadTwo(float* a, float* b, long first, long end)
    {
        Vector512<float> s0 = Vector512<float>.Zero, s1 = s0;
        for (long i = first; i < end; i += 16)
        {
            s0 += Vector512.Load(a + i);
            s1 += Vector512.Load(b + i);
        }

        sink += Vector512.Sum(s0 + s1);
    }

    // b == null: one input. The output is written with streaming stores, as GemsInjector's kernels do at this size.
    private static void ReadTwoStreamOne(float* a, float* b, float* c, long first, long end)
    {
        for (long i = first; i < end; i += 16)
        {
            Vector512<float> v = b == null ? Vector512.Load(a + i) : Vector512.Load(a + i) + Vector512.Load(b + i);
            Avx512F.StoreAlignedNonTemporal(c + i, v);
        }

        Sse.StoreFence();
    }

    private static void ReadTwoStoreOne(float* a, float* b, float* c, long first, long end)
    {
        for (long i = first; i < end; i += 16)
        {
            (Vector512.Load(a + i) + Vector512.Load(b + i)).Store(c + i);
        }
    }

    private static double Best(int calls, Action call)
    {
        call();
        double best = double.MaxValue;
        for (int round = 0; round < 5; round++)
        {
            long start = System.Diagnostics.Stopwatch.GetTimestamp();
            for (int i = 0; i < calls; i++)
            {
                call();
            }

            best = Math.Min(best, System.Diagnostics.Stopwatch.GetElapsedTime(start).TotalMilliseconds / calls);
        }

        return best;
    }
}
