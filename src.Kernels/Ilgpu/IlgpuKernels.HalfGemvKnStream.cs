using System;
using ILGPU;
using ILGPU.Runtime;

namespace GemsInjector.Kernels.Ilgpu;

public sealed partial class IlgpuKernels
{
    // The streamed 16-bit [K, N] kernel (GEMS_GEMV16_KN=stream), slot format · 4 + log2(cap) for caps 1, 2, 4, 8.
    private readonly Action<KernelConfig, ArrayView<Half8>, ArrayView<ulong>, ArrayView<Half8>, ArrayView<ushort>, ArrayView<ushort>, HalfGemvShape>?[] gemvKn16Stream =
        new Action<KernelConfig, ArrayView<Half8>, ArrayView<ulong>, ArrayView<Half8>, ArrayView<ushort>, ArrayView<ushort>, HalfGemvShape>?[8];

    /// <summary>Which kernel serves aligned 16-bit [K, N] products of 1–8 rows (<c>GEMS_GEMV16_KN</c>; tests set it directly).</summary>
    internal HalfGemvKn HalfGemvKnKernel { get; set; } = HalfGemvKnChoice.FromEnvironment();

    /// <summary>
    /// Whether a 16-bit [K, N] product takes <c>GemvKn16Stream</c>: one matrix of 1–2 rows under the default
    /// <see cref="HalfGemvKn.Stream"/> setting (1 where the 2-row product's split-K would sum in a cluster:
    /// <see cref="HalfGemvKnStreamLaunch.ClusterSplitMinRows"/>), 1–8 under <see cref="HalfGemvKn.StreamEight"/> (and no more than
    /// <see cref="HalfGemvMaxRows"/>, which tests set to 0 to turn the GEMV kernels off), K
    /// and N multiples of 8 with A and the weight 16-byte aligned (16-byte vectors of A and of every weight row), row
    /// offsets that fit an int, a device whose groups hold a 4-thread row slot in whole warps, and not float16 on OpenCL
    /// (converted through ILGPU's Half, as the other 16-bit GEMVs).
    /// </summary>
    internal bool UsesHalfGemvKnStream(ArrayView<ushort> a, ArrayView<ushort> b, int batch, int m, int k, int n, HalfFormat format) =>
        HalfGemvKnKernel != HalfGemvKn.Split && batch == 1 && m >= 1 && m <= HalfGemvMaxRows
        && m <= (HalfGemvKnKernel == HalfGemvKn.StreamEight ? HalfGemvKnStreamLaunch.MaxRows : HalfGemvKnStreamLaunch.DefaultMaxRows)
        && k % 8 == 0 && n % 8 == 0 && (long)m * k <= int.MaxValue && 8L * n <= int.MaxValue
        && HalfGemvKnStreamLaunch.Fits(device.WarpSize, device.MaxGroupSize)
        && !(format == HalfFormat.Float16 && device.Kind == IlgpuDeviceKind.OpenCL)
        && TensorCoreLaunch.DeviceAddress(a) % 16 == 0 && TensorCoreLaunch.DeviceAddress(b) % 16 == 0
        && !(HalfGemvKnKernel == HalfGemvKn.Stream && m >= HalfGemvKnStreamLaunch.ClusterSplitMinRows && SkinnyKnSumsInCluster(a, b, m, k, n));

    /// <summary>Runs a [K, N] product on <c>GemvKn16Stream</c> (the caller checked <see cref="UsesHalfGemvKnStream"/>): one launch, no partials.</summary>
    private void HalfGemvKnStream(ArrayView<ushort> a, ArrayView<ushort> b, ArrayView<ushort> bias, ArrayView<ushort> c, int m, int k, int n,
        float alpha, float beta, bool biasIsMatrix, bool bf16)
    {
        var g = HalfGemvKnStreamLaunch.Shape(m, k, n, alpha, beta, bias.Length != 0, biasIsMatrix);
        var (config, cap) = HalfGemvKnStreamLaunch.Plan(g, device.WarpSize, device.MaxGroupSize, device.MultiprocessorCount);
        HalfGemvKnStreamVariant(cap, bf16)(config, a.Cast<Half8>(), a.Cast<ulong>(), b.Cast<Half8>(), bias, c, g);
    }

    /// <summary>The streamed 16-bit [K, N] GEMV compiled for a row cap of 1, 2, 4 or 8 and the format, with its launch bound.</summary>
    private Action<KernelConfig, ArrayView<Half8>, ArrayView<ulong>, ArrayView<Half8>, ArrayView<ushort>, ArrayView<ushort>, HalfGemvShape> HalfGemvKnStreamVariant(int rowsCap, bool bf16)
    {
        var name = $"{nameof(HalfGemvKernels.GemvKn16Stream)}<{rowsCap},{(bf16 ? "bf16" : "f16")}>";
        int slot = (bf16 ? 4 : 0) + int.Log2(rowsCap);
        var bounds = Bounds(HalfGemvKernels.GemvKn16StreamMaxThreads, null);
        return (rowsCap, bf16) switch
        {
            (1, false) => device.Load(ref gemvKn16Stream[slot], name, acc => acc.LoadStreamKernel<ArrayView<Half8>, ArrayView<ulong>, ArrayView<Half8>, ArrayView<ushort>, ArrayView<ushort>, HalfGemvShape>(HalfGemvKernels.GemvKn16Stream<Const1, Float16Storage>, bounds)),
            (2, false) => device.Load(ref gemvKn16Stream[slot], name, acc => acc.LoadStreamKernel<ArrayView<Half8>, ArrayView<ulong>, ArrayView<Half8>, ArrayView<ushort>, ArrayView<ushort>, HalfGemvShape>(HalfGemvKernels.GemvKn16Stream<Const2, Float16Storage>, bounds)),
            (4, false) => device.Load(ref gemvKn16Stream[slot], name, acc => acc.LoadStreamKernel<ArrayView<Half8>, ArrayView<ulong>, ArrayView<Half8>, ArrayView<ushort>, ArrayView<ushort>, HalfGemvShape>(HalfGemvKernels.GemvKn16Stream<Const4, Float16Storage>, bounds)),
            (8, false) => device.Load(ref gemvKn16Stream[slot], name, acc => acc.LoadStreamKernel<ArrayView<Half8>, ArrayView<ulong>, ArrayView<Half8>, ArrayView<ushort>, ArrayView<ushort>, HalfGemvShape>(HalfGemvKernels.GemvKn16Stream<Const8, Float16Storage>, bounds)),
            (1, true) => device.Load(ref gemvKn16Stream[slot], name, acc => acc.LoadStreamKernel<ArrayView<Half8>, ArrayView<ulong>, ArrayView<Half8>, ArrayView<ushort>, ArrayView<ushort>, HalfGemvShape>(HalfGemvKernels.GemvKn16Stream<Const1, BFloat16Storage>, bounds)),
            (2, true) => device.Load(ref gemvKn16Stream[slot], name, acc => acc.LoadStreamKernel<ArrayView<Half8>, ArrayView<ulong>, ArrayView<Half8>, ArrayView<ushort>, ArrayView<ushort>, HalfGemvShape>(HalfGemvKernels.GemvKn16Stream<Const2, BFloat16Storage>, bounds)),
            (4, true) => device.Load(ref gemvKn16Stream[slot], name, acc => acc.LoadStreamKernel<ArrayView<Half8>, ArrayView<ulong>, ArrayView<Half8>, ArrayView<ushort>, ArrayView<ushort>, HalfGemvShape>(HalfGemvKernels.GemvKn16Stream<Const4, BFloat16Storage>, bounds)),
            (8, true) => device.Load(ref gemvKn16Stream[slot], name, acc => acc.LoadStreamKernel<ArrayView<Half8>, ArrayView<ulong>, ArrayView<Half8>, ArrayView<ushort>, ArrayView<ushort>, HalfGemvShape>(HalfGemvKernels.GemvKn16Stream<Const8, BFloat16Storage>, bounds)),
            _ => throw new ArgumentOutOfRangeException(nameof(rowsCap), rowsCap, "Streamed 16-bit [K, N] GEMV row caps are 1, 2, 4 or 8."),
        };
    }
}

/// <summary>
/// Launch plan of the streamed 16-bit [K, N] GEMV (<c>GemvKn16Stream</c>, generated by
/// src.Kernels/Ilgpu/Codegen/gen_gemv_kn16_stream.py; <c>GEMS_GEMV16_KN=stream</c>, off by default; notes:
/// docs/perf/h100-notes-gemv.md, "16-bit [K, N] products, streamed (FMA, no split-K) — prediction").
/// <para>
/// Why: the 16-bit [K, N] products of 1–8 rows run split-K kernels (the skinny tensor-core [K, N] kernel or
/// <c>GemvKn16</c>) with a reduce launch, at about 1960–2110 GB/s on an H200 at 4096², where the float32 streamed [K, N]
/// kernel (<c>GemvKnStreamF32</c>) reaches 2700–3155 GB/s with one launch. This is its 16-bit counterpart in FMA: a group
/// owns a slab of <see cref="HalfGemvKernels.GemvKn16StreamColumns"/> output columns and all of K; thread t is column
/// lane t % 4 (one 16-byte vector, 8 columns, of every weight row) and row slot t / 4, which takes R consecutive rows of
/// K per batch (<see cref="HalfGemvKernels.GemvKn16StreamRowsPerThread"/>): R weight vectors, one R-value activation
/// vector per row of A (the 4 column lanes of a slot read the same one: a broadcast), then 8 · M · R FFMA in float32.
/// Four column lanes rather than eight keep the slab at 32 columns, so N = 4096 gives 128 groups for 132 SMs (64-column
/// slabs would give 64, half the SMs idle), at the price of 64-byte rather than 128-byte pieces per weight row (a warp
/// load instruction still reads 512 bytes, 8 whole 64-byte pieces, each two full 32-byte sectors).
/// </para>
/// </summary>
internal static class HalfGemvKnStreamLaunch
{
    /// <summary>Most rows of A the streamed 16-bit [K, N] kernel takes (under <see cref="HalfGemvKn.StreamEight"/>).</summary>
    public const int MaxRows = 8;

    /// <summary>
    /// Most rows of A it takes by default: at 1–2 rows it beat the split-K kernels and their reduce launch by 11–15% (H200
    /// Run 84), at 4 rows it tied (−3 to +2%) and at 8 rows it lost 22%, so 3–8 rows keep them.
    /// </summary>
    public const int DefaultMaxRows = 2;

    /// <summary>
    /// Fewest rows that leave it, under the default, for a split-K product that sums in a thread-block cluster
    /// (<see cref="IlgpuKernels.SkinnyKnSumsInCluster"/>): 2 rows ran 3–4% faster there, 1 row tied (H200 Run 101).
    /// </summary>
    public const int ClusterSplitMinRows = 2;

    /// <summary>Whether the kernel runs on this device: a group of at least one 4-thread row slot in whole warps.</summary>
    public static bool Fits(int warpSize, int maxGroupSize) =>
        GemvKnStreamLaunch.SlabThreads(HalfGemvKernels.GemvKn16StreamColumnLanes, HalfGemvKernels.GemvKn16StreamMaxThreads, HalfGemvKernels.GemvKn16StreamMaxHolders,
            warpSize, maxGroupSize, HalfGemvKernels.GemvKn16StreamMaxThreads) >= HalfGemvKernels.GemvKn16StreamColumnLanes;

    /// <summary>Row cap (the kernel variant): 1, 2, 4 or 8.</summary>
    public static int RowsCap(int m) => m <= 1 ? 1 : m <= 2 ? 2 : m <= 4 ? 4 : 8;

    /// <summary>The kernel's shape: the fields its epilogue reads (the split-K fields stay 0: there is one launch).</summary>
    public static HalfGemvShape Shape(int m, int k, int n, float alpha, float beta, bool hasBias, bool biasIsMatrix) => new()
    {
        M = m,
        N = n,
        K = k,
        Alpha = alpha,
        Beta = beta,
        HasBias = hasBias ? 1 : 0,
        BiasStrideM = biasIsMatrix ? n : 0,
        Splits = 1,
        Direct = 1,
        RowBlocks = 1,
        ColLanes = HalfGemvKernels.GemvKn16StreamColumnLanes,
    };

    /// <summary>
    /// Grid and row cap: ⌈N / 32⌉ groups of W warps, W the most whose groups, ⌈groups / SMs⌉ to an SM, keep at most
    /// <see cref="GemvKnStreamLaunch.WarpsPerSm"/> warps per SM (N = 4096 on 132 SMs: 128 groups of 16 warps, one per SM; N = 11008: 344
    /// groups of 5), at least 2, and at most what the device's group size, the launch bound and the shared sum buffer
    /// allow. A device that reports no SMs (the CPU simulator) counts as four.
    /// </summary>
    /// <param name="g">The product (M of 1–8).</param>
    /// <param name="warpSize">Threads per warp.</param>
    /// <param name="maxGroupSize">Most threads per group.</param>
    /// <param name="multiprocessors">SMs of the device (0 when unknown).</param>
    /// <param name="warps">Warps per group to force (0: the plan's; still held to the device's and the kernel's limits).</param>
    public static (KernelConfig Config, int RowsCap) Plan(HalfGemvShape g, int warpSize, int maxGroupSize, int multiprocessors, int warps = 0)
    {
        var (groups, threads) = GemvKnStreamLaunch.SlabPlan(g.N, HalfGemvKernels.GemvKn16StreamColumns, HalfGemvKernels.GemvKn16StreamColumnLanes,
            HalfGemvKernels.GemvKn16StreamMaxThreads, HalfGemvKernels.GemvKn16StreamMaxHolders, warpSize, maxGroupSize, multiprocessors, warps);
        return (new KernelConfig(new Index3D(groups, 1, 1), new Index3D(threads, 1, 1)), RowsCap(g.M));
    }
}

/// <summary>The kernels that <c>GEMS_GEMV16_KN</c> selects between for aligned 16-bit [K, N] products of 1–8 rows.</summary>
internal enum HalfGemvKn
{
    /// <summary><c>split</c>: the split-K kernels for every row count (skinny tensor-core [K, N] kernel or <c>GemvKn16</c>; the default before Run 84).</summary>
    Split,

    /// <summary>
    /// <c>stream</c> (and unset: the default since H200 Run 84): <c>GemvKn16Stream</c> (one launch, a group per 32-column
    /// slab and all of K) for 1–2 rows (1 where the 2-row split-K product would sum in a thread-block cluster), the split-K
    /// kernels for the rest up to 8.
    /// </summary>
    Stream,

    /// <summary>
    /// <c>stream8</c>: <c>GemvKn16Stream</c> for 1–8 rows (Run 84: 22% slower than split-K at 8 rows, its product phases
    /// exposed; Run 87: requesting the next batch's weight one batch ahead made 8 rows slower still, so it was taken out).
    /// </summary>
    StreamEight,
}

/// <summary>The 16-bit [K, N] setting (<c>GEMS_GEMV16_KN</c>): <c>stream</c> (default), <c>split</c> or <c>stream8</c>.</summary>
internal static class HalfGemvKnChoice
{
    /// <summary>Environment variable naming the kernel of 1–8-row 16-bit [K, N] products.</summary>
    public const string Variable = "GEMS_GEMV16_KN";

    private static readonly Lazy<HalfGemvKn> FromVariable = new(() => Parse(Environment.GetEnvironmentVariable(Variable)));

    /// <summary>The setting of this process (read once).</summary>
    public static HalfGemvKn FromEnvironment() => FromVariable.Value;

    /// <summary>
    /// <c>split</c> or <c>stream8</c> (any case, surrounding spaces ignored) selects <see cref="HalfGemvKn.Split"/> or
    /// <see cref="HalfGemvKn.StreamEight"/>; anything else, and unset, the default <see cref="HalfGemvKn.Stream"/>.
    /// </summary>
    public static HalfGemvKn Parse(string? setting) => setting?.Trim().ToLowerInvariant() switch
    {
        "split" => HalfGemvKn.Split,
        "stream8" => HalfGemvKn.StreamEight,
        _ => HalfGemvKn.Stream,
    };
}
