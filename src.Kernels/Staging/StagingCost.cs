using System;
using System.Runtime.Intrinsics;
using GemsInjector.Kernels.Cpu;
using GemsInjector.Kernels.Ilgpu;

namespace GemsInjector.Kernels.Staging;

/// <summary>
/// Whether a call on host tensors goes to the GPU. The tensors live in CPU memory (TorchSharp has no CUDA build here), so a
/// GPU call copies every operand over PCIe, weights included, and the result back: it pays only when the CPU kernel's work
/// takes longer than those copies. The CPU product constants are fitted to Run 166 (H200 node, 16-core Xeon;
/// <c>docs/perf/h100-notes-staging.md</c>), the staged call's to Run 173 (copies through <see cref="PinnedStaging"/>'s
/// 8 MB page-locked slots), the CPU attention rate to Run 174: 106 calls of mm (float32, bfloat16) and float32 attention on
/// 16 and 8 CPU threads, each timed on both paths. The estimate sends 103 of Run 174's 106 calls to their faster path or one
/// within 10% of it; the other three, near the crossover, run at most 1.4x slower than they could. The estimate depends
/// only on the shape and the host (its thread budget and vector width), so a worker routes a given call the same way every
/// time. ILGPU's CPU simulator always takes the call: it exists to run the GPU kernels' logic in tests.
/// </summary>
internal static class StagingCost
{
    /// <summary>
    /// Host ↔ device bytes per second of a staged call's copies through the page-locked slots (Run 173: 33 GB/s host → device
    /// and 30–38 back for 64–256 MB, 14–16 for 4 MB, whose chunk is not overlapped; the pageable copies before them ran at
    /// 7–14). Fitted with <see cref="StagedCallSeconds"/> by grid search.
    /// </summary>
    public const double HostCopyBytesPerSecond = 33e9;

    /// <summary>
    /// A staged call's cost beyond its bytes at <see cref="HostCopyBytesPerSecond"/>: the copies' fixed costs (small copies do
    /// not reach the large ones' rate), a launch and a synchronize (Run 173: 0.06 ms at 1 × 256 × 256, 0.15 at 16 × 256 × 1024).
    /// </summary>
    public const double StagedCallSeconds = 95e-6;

    /// <summary>A CPU kernel call's cost beyond its arithmetic (threads woken, operands packed): 16 × 256 × 256 float32 took 26 µs for 2 µs of arithmetic.</summary>
    public const double CpuCallSeconds = 50e-6;

    /// <summary>The device's rate on the call's arithmetic: well below the kernels' measured rates, so it never decides a call alone.</summary>
    public const double DeviceFlopsPerSecond = 20e12;

    /// <summary>
    /// FLOP per second and CPU thread of the CPU GEMM with AVX-512 across the fitted shapes (30; 57–60 at the largest, where the
    /// packing is best amortised; bfloat16 alike, widened to float32); without AVX-512 half (the register tile is half as wide).
    /// </summary>
    public static double CpuProductFlopsPerThread => Vector512.IsHardwareAccelerated ? 30e9 : 15e9;

    /// <summary>
    /// FLOP per second and CPU thread of the CPU attention kernel, a third of the AVX-512 GEMM's (it walks the keys one row at
    /// a time for each query). Run 174 (16 / 8 threads, the kernel compiled optimised): 12–14 GFLOP/s per thread for a
    /// 2048-token causal prefill, 5–9 for one query over 512–4096 keys. With AVX2 only, the same on the development host
    /// (its loops wait on latency, not width). Runs 166–173 had read it at a tenth of the GEMM's: their decode readings were
    /// of first-tier code (<c>docs/perf/h100-notes-staging.md</c>).
    /// </summary>
    public const double CpuAttentionFlopsPerThread = 10e9;

    /// <summary>
    /// Whether a call with <paramref name="flops"/> of arithmetic and <paramref name="stagedBytes"/> copied to and from the
    /// device should run there: always on the simulator or under <see cref="OffloadChoice.Always"/>; else when the staged
    /// call's estimated time (<see cref="StagedCallSeconds"/>, the bytes at <see cref="HostCopyBytesPerSecond"/>, the
    /// arithmetic at <see cref="DeviceFlopsPerSecond"/>) is below the CPU kernel's (<see cref="CpuCallSeconds"/> and the
    /// arithmetic at <paramref name="cpuFlopsPerThread"/> on <paramref name="cpuThreads"/> threads).
    /// </summary>
    public static bool Stages(IlgpuDeviceKind device, OffloadChoice choice, double flops, double stagedBytes, double cpuFlopsPerThread, int cpuThreads)
    {
        if (device == IlgpuDeviceKind.CpuSimulator || choice == OffloadChoice.Always)
        {
            return true;
        }

        double staged = StagedCallSeconds + (stagedBytes / HostCopyBytesPerSecond) + (flops / DeviceFlopsPerSecond);
        double cpu = CpuCallSeconds + (flops / (cpuFlopsPerThread * Math.Max(1, cpuThreads)));
        return staged < cpu;
    }

    /// <summary><see cref="Stages"/> for a product of <paramref name="batch"/> × [m, k] · [k, n] plus <paramref name="extraElements"/> more staged (a bias), on this process's CPU threads.</summary>
    public static bool StagesProduct(IlgpuDeviceKind device, long batch, long m, long k, long n, long extraElements, int elementBytes) =>
        Stages(device, GpuOffload.Choice, ProductFlops(batch, m, k, n), ProductBytes(batch, m, k, n, extraElements, elementBytes), CpuProductFlopsPerThread, CpuThreadBudget.MaxThreads);

    /// <summary><see cref="Stages"/> for attention (<see cref="AttentionFlops"/>, <see cref="AttentionBytes"/> and <paramref name="maskBytes"/>), on this process's CPU threads.</summary>
    public static bool StagesAttention(IlgpuDeviceKind device, long batch, long heads, long kvHeads, long lq, long lk, long d, bool causal, long maskBytes, int elementBytes) =>
        Stages(device, GpuOffload.Choice, AttentionFlops(batch, heads, lq, lk, d, causal), AttentionBytes(batch, heads, kvHeads, lq, lk, d, elementBytes) + maskBytes,
            CpuAttentionFlopsPerThread, CpuThreadBudget.MaxThreads);

    /// <summary>2 · batch · m · k · n.</summary>
    public static double ProductFlops(long batch, long m, long k, long n) => 2.0 * batch * m * k * n;

    /// <summary>A, B and C of every batch entry and <paramref name="extraElements"/> more, at <paramref name="elementBytes"/> each.</summary>
    public static double ProductBytes(long batch, long m, long k, long n, long extraElements, int elementBytes) =>
        (double)elementBytes * ((batch * ((double)(m * k) + (k * n) + (m * n))) + extraElements);

    /// <summary>Scores and values: 4 · d FLOP per (query, key) pair, over the pairs a top-left causal mask keeps when <paramref name="causal"/>.</summary>
    public static double AttentionFlops(long batch, long heads, long lq, long lk, long d, bool causal)
    {
        long diagonal = Math.Min(lq, lk);
        double pairs = causal ? (diagonal * (diagonal + 1) / 2.0) + ((double)Math.Max(0, lq - lk) * lk) : (double)lq * lk;
        return 4.0 * batch * heads * pairs * d;
    }

    /// <summary>q and the output ([batch, heads, lq, d]), k and v ([batch, kvHeads, lk, d]).</summary>
    public static double AttentionBytes(long batch, long heads, long kvHeads, long lq, long lk, long d, int elementBytes) =>
        (double)elementBytes * batch * d * ((2.0 * heads * lq) + (2.0 * kvHeads * lk));
}

/// <summary>
/// The <c>GEMS_GPU_OFFLOAD</c> setting: which mm / addmm / bmm / attention calls on host tensors a GPU takes. Read once per
/// process. The kernels never throw for a value they do not understand: <see cref="UnknownValue"/> holds it, for the runtime
/// to report.
/// </summary>
public static class GpuOffload
{
    /// <summary>The environment variable.</summary>
    public const string Variable = "GEMS_GPU_OFFLOAD";

    private static readonly string? Value = Environment.GetEnvironmentVariable(Variable);

    /// <summary>This process's setting.</summary>
    public static OffloadChoice Choice { get; } = ParseChoice(Value);

    /// <summary>This process's value when it is not one <see cref="IsUnderstood"/> accepts (then <see cref="OffloadChoice.Auto"/> applies), or <see langword="null"/>.</summary>
    public static string? UnknownValue { get; } = IsUnderstood(Value) ? null : Value;

    /// <summary><c>always</c> (any case, trimmed) is <see cref="OffloadChoice.Always"/>; anything else, unset included, <see cref="OffloadChoice.Auto"/>.</summary>
    /// <param name="value">The variable's value, or <see langword="null"/>.</param>
    /// <returns>The choice.</returns>
    public static OffloadChoice ParseChoice(string? value) =>
        string.Equals(value?.Trim(), "always", StringComparison.OrdinalIgnoreCase) ? OffloadChoice.Always : OffloadChoice.Auto;

    /// <summary>Whether <paramref name="value"/> is unset, blank, <c>auto</c> or <c>always</c> (any case, trimmed).</summary>
    /// <param name="value">The variable's value, or <see langword="null"/>.</param>
    /// <returns><see langword="false"/> for any other value.</returns>
    public static bool IsUnderstood(string? value) =>
        string.IsNullOrWhiteSpace(value) || string.Equals(value.Trim(), "auto", StringComparison.OrdinalIgnoreCase) || ParseChoice(value) == OffloadChoice.Always;
}

/// <summary>Which calls on host tensors a GPU takes (<c>GEMS_GPU_OFFLOAD</c>).</summary>
public enum OffloadChoice
{
    /// <summary>Those whose CPU work outweighs their copies (the default).</summary>
    Auto,

    /// <summary>Every call the device kernels cover.</summary>
    Always,
}
