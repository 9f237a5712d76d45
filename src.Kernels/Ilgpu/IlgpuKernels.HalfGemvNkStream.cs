using System;
using ILGPU;
using ILGPU.Runtime;

namespace GemsInjector.Kernels.Ilgpu;

public sealed partial class IlgpuKernels
{
    // The streamed 16-bit [N, K] kernel (GEMS_GEMV16_NK=stream or stream8), slot format · 4 + log2(cap) for caps 1, 2, 4, 8.
    private readonly Action<KernelConfig, ArrayView<Half8>, ArrayView<Half8>, ArrayView<ushort>, ArrayView<ushort>, HalfGemvShape>?[] gemvNk16Stream =
        new Action<KernelConfig, ArrayView<Half8>, ArrayView<Half8>, ArrayView<ushort>, ArrayView<ushort>, HalfGemvShape>?[8];

    /// <summary>Which kernel serves aligned 16-bit [N, K] products of 1–8 rows (<c>GEMS_GEMV16_NK</c>; tests set it directly).</summary>
    internal HalfGemvNk HalfGemvNkKernel { get; set; } = HalfGemvNkChoice.FromEnvironment();

    /// <summary>Warps per group of <c>GemvNk16Stream</c> to force (<c>GEMS_GEMV16_NK_WARPS</c>; 0: the plan's), for measuring the plan.</summary>
    internal int HalfGemvNkWarps { get; set; } = HalfGemvNkChoice.WarpsFromEnvironment();

    /// <summary>
    /// Whether a 16-bit [N, K] product takes <c>GemvNk16Stream</c>: one matrix of one row under <see cref="HalfGemvNk.Stream"/>,
    /// 1–8 rows under <see cref="HalfGemvNk.StreamEight"/>, none under the default <see cref="HalfGemvNk.Split"/> (and no
    /// more than <see cref="HalfGemvMaxRows"/>, which tests set to 0 to turn the GEMV kernels off); K a multiple of 8 with
    /// A and the weight 16-byte aligned (16-byte vectors of every activation and weight row, as <see cref="UsesHalfGemv"/>
    /// asks of [N, K] products), activation offsets that fit an int, and a CUDA device or the CPU simulator (other devices
    /// keep today's kernels).
    /// </summary>
    internal bool UsesHalfGemvNkStream(ArrayView<ushort> a, ArrayView<ushort> b, int batch, int m, int k) =>
        HalfGemvNkKernel != HalfGemvNk.Split && batch == 1 && m >= 1 && m <= HalfGemvMaxRows
        && m <= (HalfGemvNkKernel == HalfGemvNk.StreamEight ? HalfGemvNkStreamLaunch.MaxRows : HalfGemvNkStreamLaunch.StreamMaxRows)
        && k % 8 == 0 && (long)m * k <= int.MaxValue
        && device.Kind is IlgpuDeviceKind.Cuda or IlgpuDeviceKind.CpuSimulator
        && HalfGemvNkStreamLaunch.Fits(device.WarpSize, device.MaxGroupSize)
        && TensorCoreLaunch.DeviceAddress(a) % 16 == 0 && TensorCoreLaunch.DeviceAddress(b) % 16 == 0;

    /// <summary>Runs an [N, K] product on <c>GemvNk16Stream</c> (the caller checked <see cref="UsesHalfGemvNkStream"/>): one launch, no partials.</summary>
    private void HalfGemvNkStream(ArrayView<ushort> a, ArrayView<ushort> b, ArrayView<ushort> bias, ArrayView<ushort> c, int m, int k, int n,
        float alpha, float beta, bool biasIsMatrix, bool bf16)
    {
        var g = HalfGemvNkStreamLaunch.Shape(m, k, n, alpha, beta, bias.Length != 0, biasIsMatrix);
        var (config, cap) = HalfGemvNkStreamLaunch.Plan(g, device.WarpSize, device.MaxGroupSize, device.MultiprocessorCount, HalfGemvNkWarps);
        HalfGemvNkStreamVariant(cap, bf16)(config, a.Cast<Half8>(), b.Cast<Half8>(), bias, c, g);
    }

    /// <summary>The streamed 16-bit [N, K] GEMV compiled for a row cap of 1, 2, 4 or 8 and the format, with its launch bound (256 threads).</summary>
    private Action<KernelConfig, ArrayView<Half8>, ArrayView<Half8>, ArrayView<ushort>, ArrayView<ushort>, HalfGemvShape> HalfGemvNkStreamVariant(int rowsCap, bool bf16)
    {
        var name = $"{nameof(HalfGemvKernels.GemvNk16Stream)}<{rowsCap},{(bf16 ? "bf16" : "f16")}>";
        int slot = (bf16 ? 4 : 0) + int.Log2(rowsCap);
        return (rowsCap, bf16) switch
        {
            (1, false) => device.Load(ref gemvNk16Stream[slot], name, acc => acc.LoadStreamKernel<ArrayView<Half8>, ArrayView<Half8>, ArrayView<ushort>, ArrayView<ushort>, HalfGemvShape>(HalfGemvKernels.GemvNk16Stream<Const1, Float16Storage>, GemvBounds)),
            (2, false) => device.Load(ref gemvNk16Stream[slot], name, acc => acc.LoadStreamKernel<ArrayView<Half8>, ArrayView<Half8>, ArrayView<ushort>, ArrayView<ushort>, HalfGemvShape>(HalfGemvKernels.GemvNk16Stream<Const2, Float16Storage>, GemvBounds)),
            (4, false) => device.Load(ref gemvNk16Stream[slot], name, acc => acc.LoadStreamKernel<ArrayView<Half8>, ArrayView<Half8>, ArrayView<ushort>, ArrayView<ushort>, HalfGemvShape>(HalfGemvKernels.GemvNk16Stream<Const4, Float16Storage>, GemvBounds)),
            (8, false) => device.Load(ref gemvNk16Stream[slot], name, acc => acc.LoadStreamKernel<ArrayView<Half8>, ArrayView<Half8>, ArrayView<ushort>, ArrayView<ushort>, HalfGemvShape>(HalfGemvKernels.GemvNk16Stream<Const8, Float16Storage>, GemvBounds)),
            (1, true) => device.Load(ref gemvNk16Stream[slot], name, acc => acc.LoadStreamKernel<ArrayView<Half8>, ArrayView<Half8>, ArrayView<ushort>, ArrayView<ushort>, HalfGemvShape>(HalfGemvKernels.GemvNk16Stream<Const1, BFloat16Storage>, GemvBounds)),
            (2, true) => device.Load(ref gemvNk16Stream[slot], name, acc => acc.LoadStreamKernel<ArrayView<Half8>, ArrayView<Half8>, ArrayView<ushort>, ArrayView<ushort>, HalfGemvShape>(HalfGemvKernels.GemvNk16Stream<Const2, BFloat16Storage>, GemvBounds)),
            (4, true) => device.Load(ref gemvNk16Stream[slot], name, acc => acc.LoadStreamKernel<ArrayView<Half8>, ArrayView<Half8>, ArrayView<ushort>, ArrayView<ushort>, HalfGemvShape>(HalfGemvKernels.GemvNk16Stream<Const4, BFloat16Storage>, GemvBounds)),
            (8, true) => device.Load(ref gemvNk16Stream[slot], name, acc => acc.LoadStreamKernel<ArrayView<Half8>, ArrayView<Half8>, ArrayView<ushort>, ArrayView<ushort>, HalfGemvShape>(HalfGemvKernels.GemvNk16Stream<Const8, BFloat16Storage>, GemvBounds)),
            _ => throw new ArgumentOutOfRangeException(nameof(rowsCap), rowsCap, "Streamed 16-bit [N, K] GEMV row caps are 1, 2, 4 or 8."),
        };
    }
}

/// <summary>
/// Launch plan of the streamed 16-bit [N, K] GEMV (<c>GemvNk16Stream</c>, generated by
/// src.Kernels/Ilgpu/Codegen/gen_gemv_nk16_stream.py; <c>GEMS_GEMV16_NK</c> unset or <c>stream</c>: 1–4 rows, the default since H200 Run 86; <c>stream8</c>: 1–8; notes:
/// docs/perf/h100-notes-gemv.md, "16-bit [N, K] products, streamed (FMA, no split-K) — prediction").
/// <para>
/// Why: 16-bit [N, K] products (<c>mm_tb</c> / linear) of 1–8 rows ran the skinny tensor-core streamed body (and one row
/// the split-K <c>GemvNk16Row</c> where that body is off) at 87–89% of a same-size copy on an H200, while the float32
/// streamed [N, K] kernel (<c>GemvNkStreamF32</c>) reads its 64 MB weight as fast as a copy of the same bytes. This is
/// that kernel's layout for 16-bit operands: lane l of warp w loads, per batch, the 16-byte vector (batch · warpSize + l)
/// — 8 values — of each of the group's C weight rows and of each of the M activation rows, for batches w, w + W, …;
/// fences the weight loads, then the activation loads, with warp barriers; converts each value to float32 once (bfloat16
/// by shift / mask, float16 through ILGPU's Half) and multiplies every activation row by every weight row, each product
/// its own FFMA into a float32 sum (8 · M · C per lane and batch).
/// </para>
/// <para>
/// Columns per group by row cap (<see cref="HalfGemvKernels.GemvNk16StreamColumns"/>): 8 at 1, 2 and 4 rows — 4 KB of
/// weight per warp and batch, the float32 kernel's burst, and A re-read at M / 8 of the weight's bytes — and 4 at 8 rows,
/// where 8 would hold 64 sums beside 32 weight and 32 activation words (fewer than 16 warps per SM).
/// </para>
/// </summary>
internal static class HalfGemvNkStreamLaunch
{
    /// <summary>Most rows of A the streamed 16-bit [N, K] kernel takes (under <see cref="HalfGemvNk.StreamEight"/>).</summary>
    public const int MaxRows = 8;

    /// <summary>
    /// Most rows of A it takes under <see cref="HalfGemvNk.Stream"/>: four (H200 Run 86: +8–9% at one row, +6% at two, +2–3%
    /// at four against the skinny tensor-core kernels, −13 to −16% at eight, so 5–8 keep those).
    /// </summary>
    public const int StreamMaxRows = 4;

    /// <summary>Threads per group at most: the kernel's launch bound.</summary>
    public const int MaxThreads = HalfGemvKernels.GemvNk16StreamMaxWarps * 32;

    /// <summary>Whether the kernel runs on this device: a group of at least one whole warp within the launch bound.</summary>
    public static bool Fits(int warpSize, int maxGroupSize) => warpSize > 0 && Math.Min(maxGroupSize, MaxThreads) / warpSize >= 1;

    /// <summary>Row cap (the kernel variant): 1, 2, 4 or 8.</summary>
    public static int RowsCap(int m) => m <= 1 ? 1 : m <= 2 ? 2 : m <= 4 ? 4 : 8;

    /// <summary>
    /// The kernel's shape: the one-launch shape of the streamed [K, N] kernel (<see cref="HalfGemvKnStreamLaunch.Shape"/>:
    /// the fields the epilogue reads, split-K at one chunk) without its column-lane split, which this layout has no use for.
    /// </summary>
    public static HalfGemvShape Shape(int m, int k, int n, float alpha, float beta, bool hasBias, bool biasIsMatrix) =>
        HalfGemvKnStreamLaunch.Shape(m, k, n, alpha, beta, hasBias, biasIsMatrix) with { ColLanes = 0 };

    /// <summary>
    /// Grid and row cap: ⌈N / C⌉ groups of W warps, W the fewest of 2, 4, 8 whose groups put at least 8 warps per SM to
    /// work, else 8 (the float32 streamed kernel's rule; H200: N = 4096 at 1–4 rows 512 groups of 4 warps, at 8 rows 1024
    /// of 2; N = 11008 at one row 1376 of 2), held to the device's group size and the launch bound. A device that reports
    /// no SMs (the CPU simulator) counts as four.
    /// </summary>
    /// <param name="g">The product (M of 1–8).</param>
    /// <param name="warpSize">Threads per warp.</param>
    /// <param name="maxGroupSize">Most threads per group.</param>
    /// <param name="multiprocessors">SMs of the device (0 when unknown).</param>
    /// <param name="warps">Warps per group to force (0: the plan's; still held to the device's and the kernel's limits).</param>
    public static (KernelConfig Config, int RowsCap) Plan(HalfGemvShape g, int warpSize, int maxGroupSize, int multiprocessors, int warps = 0)
    {
        int cap = RowsCap(g.M);
        int columns = HalfGemvKernels.GemvNk16StreamColumns(cap);
        int groups = (g.N + columns - 1) / columns;
        int sms = multiprocessors > 0 ? multiprocessors : 4;
        int most = Math.Max(1, Math.Min(HalfGemvKernels.GemvNk16StreamMaxWarps, Math.Min(maxGroupSize, MaxThreads) / warpSize));
        int groupWarps = warps > 0 ? Math.Min(warps, most) : SkinnyTensorCoreLaunch.StreamWarps(groups, sms, most);
        return (new KernelConfig(new Index3D(groups, 1, 1), new Index3D(groupWarps * warpSize, 1, 1)), cap);
    }
}

/// <summary>The kernels that <c>GEMS_GEMV16_NK</c> selects between for aligned 16-bit [N, K] products of 1–8 rows.</summary>
internal enum HalfGemvNk
{
    /// <summary><c>off</c> or <c>split</c>: the kernels of Runs 1–85 (skinny tensor-core kernels, the split-K GEMV).</summary>
    Split,

    /// <summary><c>stream</c>, unset and anything else (the default since H200 Run 86): <c>GemvNk16Stream</c> for 1–4 rows; 5–8 rows keep the skinny tensor-core kernels.</summary>
    Stream,

    /// <summary><c>stream8</c>: <c>GemvNk16Stream</c> for 1–8 rows (Run 86: 13–16% slower than the tensor-core kernels at 8 rows; kept to measure against).</summary>
    StreamEight,
}

/// <summary>The 16-bit [N, K] setting (<c>GEMS_GEMV16_NK</c>): <c>stream</c> (default), <c>stream8</c>, or <c>split</c> / <c>off</c>.</summary>
internal static class HalfGemvNkChoice
{
    /// <summary>Environment variable naming the kernel of 1–8-row 16-bit [N, K] products.</summary>
    public const string Variable = "GEMS_GEMV16_NK";

    /// <summary>Environment variable forcing the warps per group (2, 4 or 8; anything else: the plan's).</summary>
    public const string WarpsVariable = "GEMS_GEMV16_NK_WARPS";

    private static readonly Lazy<HalfGemvNk> FromVariable = new(() => Parse(Environment.GetEnvironmentVariable(Variable)));

    private static readonly Lazy<int> WarpsFromVariable = new(() => ParseWarps(Environment.GetEnvironmentVariable(WarpsVariable)));

    /// <summary>The setting of this process (read once).</summary>
    public static HalfGemvNk FromEnvironment() => FromVariable.Value;

    /// <summary>The forced warps per group of this process (read once; 0: the plan's).</summary>
    public static int WarpsFromEnvironment() => WarpsFromVariable.Value;

    /// <summary>
    /// <c>2</c>, <c>4</c> or <c>8</c> (surrounding spaces ignored) forces that many warps per group (one row's 16 batches of
    /// a 4096-wide row then fall 8, 4 or 2 to a warp); anything else, and unset, 0: the plan's choice.
    /// </summary>
    public static int ParseWarps(string? setting) => setting?.Trim() switch
    {
        "2" => 2,
        "4" => 4,
        "8" => 8,
        _ => 0,
    };

    /// <summary>
    /// <c>split</c> / <c>off</c> or <c>stream8</c> (any case, surrounding spaces ignored) selects <see cref="HalfGemvNk.Split"/> or
    /// <see cref="HalfGemvNk.StreamEight"/>; anything else (<c>stream</c>, unset) the default <see cref="HalfGemvNk.Stream"/>.
    /// </summary>
    public static HalfGemvNk Parse(string? setting) => setting?.Trim().ToLowerInvariant() switch
    {
        "split" or "off" => HalfGemvNk.Split,
        "stream8" => HalfGemvNk.StreamEight,
        _ => HalfGemvNk.Stream,
    };
}
