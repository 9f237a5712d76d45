using System;
using System.Runtime.Intrinsics;
using GemsInjector.Kernels.Cpu;
using GemsInjector.Kernels.Ilgpu;

namespace GemsInjector.Kernels.Staging;

/// <summary>
/// Whether a call on host tensors goes to the GPU. The tensors live in CPU memory (TorchSharp has no CUDA build here), so a
/// GPU call copies every operand over PCIe, weights included, and the result back: it pays only when the CPU kernel's work
/// takes longer than those copies. H200 host, Run 165 (<c>docs/perf/h100.md</c>): a float32 mm with a 4096 × 4096
/// weight ran 17x faster on the CPU at 1 row and 1.2x at 64 rows, 1.6x faster staged at 128 rows; a 256 × 256 weight
/// crossed over between 16 and 64 rows. The estimate is deterministic for a shape and a host (its thread budget and
/// vector width), so a worker routes a given call the same way every time. ILGPU's CPU simulator always takes the call:
/// it exists to run the GPU kernels' logic in tests.
/// </summary>
internal static class StagingCost
{
    /// <summary>The environment variable behind <see cref="Choice"/>.</summary>
    public const string ChoiceVariable = "GEMS_GPU_OFFLOAD";

    /// <summary>
    /// Host ↔ device bytes per second of pageable memory, as a staged call copies (Run 165: 12.4–13.7 GB/s from 4 to 64 MB,
    /// 6.7 GB/s host → device at 256 MB).
    /// </summary>
    public const double HostCopyBytesPerSecond = 12e9;

    /// <summary>A staged call's cost beyond its bytes: two copies, a launch and a synchronize (Run 165: 0.05 ms at 256 × 256).</summary>
    public const double StagedCallSeconds = 50e-6;

    /// <summary>The device's rate on the call's arithmetic: well below the kernels' measured rates, so it never decides a call alone.</summary>
    public const double DeviceFlopsPerSecond = 20e12;

    /// <summary>
    /// FLOP per second and CPU thread of the CPU GEMM with AVX-512 (Run 165's Xeon: 57–60 where every thread had tasks, both
    /// float32 and bfloat16, which it widens to float32); without it, half (the register tile is half as wide).
    /// </summary>
    public static double CpuProductFlopsPerThread => Vector512.IsHardwareAccelerated ? 60e9 : 30e9;

    /// <summary>
    /// FLOP per second and CPU thread of the CPU attention kernel: a quarter of the GEMM's (it walks one query row at a
    /// time; `compute-rates` of the benchmarks measured 10–15 against the GEMM's 45–80 on this repository's 2-core host).
    /// </summary>
    public static double CpuAttentionFlopsPerThread => CpuProductFlopsPerThread / 4;

    /// <summary>Which calls take the GPU; read once per process from <c>GEMS_GPU_OFFLOAD</c>.</summary>
    public static OffloadChoice Choice { get; } = ParseChoice(Environment.GetEnvironmentVariable(ChoiceVariable));

    /// <summary><c>always</c> (any case, trimmed) sends every call the device kernels cover; anything else, unset included, is <see cref="OffloadChoice.Auto"/>.</summary>
    public static OffloadChoice ParseChoice(string? value) =>
        string.Equals(value?.Trim(), "always", StringComparison.OrdinalIgnoreCase) ? OffloadChoice.Always : OffloadChoice.Auto;

    /// <summary>
    /// Whether a call with <paramref name="flops"/> of arithmetic and <paramref name="stagedBytes"/> copied to and from the
    /// device should run there: always on the simulator or under <see cref="OffloadChoice.Always"/>; else when the staged
    /// call's estimated time (<see cref="StagedCallSeconds"/>, the bytes at <see cref="HostCopyBytesPerSecond"/>, the
    /// arithmetic at <see cref="DeviceFlopsPerSecond"/>) is below the CPU kernel's (<paramref name="cpuFlopsPerThread"/> on
    /// <paramref name="cpuThreads"/> threads).
    /// </summary>
    public static bool Stages(IlgpuDeviceKind device, OffloadChoice choice, double flops, double stagedBytes, double cpuFlopsPerThread, int cpuThreads)
    {
        if (device == IlgpuDeviceKind.CpuSimulator || choice == OffloadChoice.Always)
        {
            return true;
        }

        double staged = StagedCallSeconds + (stagedBytes / HostCopyBytesPerSecond) + (flops / DeviceFlopsPerSecond);
        double cpu = flops / (cpuFlopsPerThread * Math.Max(1, cpuThreads));
        return staged < cpu;
    }

    /// <summary><see cref="Stages"/> for a product of <paramref name="batch"/> × [m, k] · [k, n] plus <paramref name="extraElements"/> more staged (a bias).</summary>
    public static bool StagesProduct(IlgpuDeviceKind device, long batch, long m, long k, long n, long extraElements, int elementBytes) =>
        Stages(device, Choice, 2.0 * batch * m * k * n, (double)elementBytes * ((batch * ((m * k) + (k * n) + (m * n))) + extraElements),
            CpuProductFlopsPerThread, CpuThreadBudget.MaxThreads);

    /// <summary>
    /// <see cref="Stages"/> for attention of <paramref name="heads"/> query heads over <paramref name="kvHeads"/> key / value
    /// heads: scores and values, 4 · d FLOP per (query, key) pair the causal mask keeps (about half of a square), and the
    /// staged q, k, v, output and <paramref name="maskBytes"/>.
    /// </summary>
    public static bool StagesAttention(IlgpuDeviceKind device, long batch, long heads, long kvHeads, long lq, long lk, long d, bool causal, long maskBytes, int elementBytes)
    {
        double pairs = causal ? Math.Min(lq, lk) * (Math.Min(lq, lk) + 1) / 2.0 + Math.Max(0, lq - lk) * (double)lk : (double)lq * lk;
        double flops = 4.0 * batch * heads * pairs * d;
        double bytes = ((double)elementBytes * batch * d * ((2 * heads * lq) + (2 * kvHeads * lk))) + maskBytes;
        return Stages(device, Choice, flops, bytes, CpuAttentionFlopsPerThread, CpuThreadBudget.MaxThreads);
    }
}

/// <summary>Which calls on host tensors a GPU takes (<c>GEMS_GPU_OFFLOAD</c>).</summary>
internal enum OffloadChoice
{
    /// <summary>Those whose CPU work outweighs their copies (<see cref="StagingCost"/>; the default).</summary>
    Auto,

    /// <summary>Every call the device kernels cover.</summary>
    Always,
}
