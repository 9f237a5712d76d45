using System;
using ILGPU;
using ILGPU.Runtime;

namespace GemsInjector.Kernels.Ilgpu;

public sealed partial class IlgpuKernels
{
    // The staged [N, K] kernel, slot burst − 1 for bursts of 1 (`staged`) and 2 (`staged2`) batches.
    private readonly Action<KernelConfig, ArrayView<Float4>, ArrayView<Float4>, ArrayView<float>, ArrayView<float>, GemvShape, long>?[] gemvNkStagedF32 =
        new Action<KernelConfig, ArrayView<Float4>, ArrayView<Float4>, ArrayView<float>, ArrayView<float>, GemvShape, long>?[2];

    // The ring [N, K] kernel, slot 0 for 3 stages (`ring3`), 1 for 4 (`ring`).
    private readonly Action<KernelConfig, ArrayView<Float4>, ArrayView<Float4>, ArrayView<float>, ArrayView<float>, GemvShape, long, long>?[] gemvNkRingF32 =
        new Action<KernelConfig, ArrayView<Float4>, ArrayView<Float4>, ArrayView<float>, ArrayView<float>, GemvShape, long, long>?[2];

    // The wide ring [N, K] kernel (8 weight rows per lane, 3 stages: `ring3w`).
    private Action<KernelConfig, ArrayView<Float4>, ArrayView<Float4>, ArrayView<float>, ArrayView<float>, GemvShape, long, long>? gemvNkRingWideF32;

    /// <summary>Which kernel serves aligned float32 [N, K] products of 9–16 rows under the stream setting (<c>GEMS_GEMV_F32_WIDE</c>; tests set it directly).</summary>
    internal GemvF32Wide GemvF32WideKernel { get; set; } = GemvF32WideChoice.FromEnvironment();

    /// <summary>
    /// Whether an [N, K] product of <paramref name="m"/> rows takes <c>GemvNkStagedF32</c> (or, under <see cref="GemvF32Wide.Ring"/>
    /// and <see cref="GemvF32Wide.Ring3"/>, <c>GemvNkRingF32</c>; under <see cref="GemvF32Wide.Ring3W"/>, <c>GemvNkRingWideF32</c>): a setting other than <see cref="GemvF32Wide.Stream"/>, 9–16 rows, a
    /// device whose warps fit the kernel's groups, and everything <see cref="UsesGemvNkStreamF32"/> asks (the
    /// <see cref="GemvF32Variant.Stream"/> setting, K a multiple of 4, both views 16-byte aligned).
    /// </summary>
    internal bool UsesGemvNkStagedF32(ArrayView<float> a, ArrayView<float> b, int m, int k) =>
        GemvF32WideKernel is not GemvF32Wide.Stream && m >= GemvNkStagedLaunch.MinRows && m <= GemvNkStagedLaunch.MaxRows
        && (GemvF32WideKernel is GemvF32Wide.Ring or GemvF32Wide.Ring3 or GemvF32Wide.Ring3W
            ? GemvNkRingLaunch.Fits(device.WarpSize, device.MaxGroupSize)
            : GemvNkStagedLaunch.Fits(device.WarpSize, device.MaxGroupSize))
        && UsesGemvNkStreamF32(a, b, m, k);

    /// <summary>Runs an [N, K] product on <c>GemvNkStagedF32</c> (the caller checked <see cref="UsesGemvNkStagedF32"/>): one launch, no partials.</summary>
    private void GemvNkStagedF32(ArrayView<float> a, ArrayView<float> b, ArrayView<float> bias, ArrayView<float> c, GemvShape g)
    {
        if (GemvF32WideKernel is GemvF32Wide.Ring or GemvF32Wide.Ring3)
        {
            GemvNkRingF32(a, b, bias, c, g, GemvF32WideKernel == GemvF32Wide.Ring ? 4 : 3);
            return;
        }

        if (GemvF32WideKernel == GemvF32Wide.Ring3W)
        {
            GemvNkRingWideF32(a, b, bias, c, g);
            return;
        }

        var config = GemvNkStagedLaunch.Plan(g, device.WarpSize);
        // cp.async needs A's raw device address; elsewhere (the simulator) the kernel copies synchronously.
        long aPointer = device.Kind == IlgpuDeviceKind.Cuda ? TensorCoreLaunch.DeviceAddress(a) : 0;
        int burst = GemvF32WideKernel == GemvF32Wide.Staged2 ? 2 : 1;
        GemvNkStagedVariant(burst)(config, a.Cast<Float4>(), b.Cast<Float4>(), bias, c, g, aPointer);
    }

    /// <summary>Runs an [N, K] product on <c>GemvNkRingF32</c> with <paramref name="stages"/> ring stages per warp: one launch, no partials.</summary>
    private void GemvNkRingF32(ArrayView<float> a, ArrayView<float> b, ArrayView<float> bias, ArrayView<float> c, GemvShape g, int stages)
    {
        var config = GemvNkRingLaunch.Plan(g, device.WarpSize, stages);
        // cp.async needs both device addresses; elsewhere (the simulator) the kernel copies synchronously.
        bool cuda = device.Kind == IlgpuDeviceKind.Cuda;
        long aPointer = cuda ? TensorCoreLaunch.DeviceAddress(a) : 0;
        long bPointer = cuda ? TensorCoreLaunch.DeviceAddress(b) : 0;
        var name = $"{nameof(GemmFastKernels.GemvNkRingF32)}<{stages}>";
        var bounds = Bounds(GemmFastKernels.GemvNkStagedWarps * device.WarpSize, GemvNkRingLaunch.GroupsPerSm);
        var kernel = stages switch
        {
            3 => device.Load(ref gemvNkRingF32[0], name, acc => acc.LoadStreamKernel<ArrayView<Float4>, ArrayView<Float4>, ArrayView<float>, ArrayView<float>, GemvShape, long, long>(GemmFastKernels.GemvNkRingF32<GemvNkRingStages3>, bounds)),
            4 => device.Load(ref gemvNkRingF32[1], name, acc => acc.LoadStreamKernel<ArrayView<Float4>, ArrayView<Float4>, ArrayView<float>, ArrayView<float>, GemvShape, long, long>(GemmFastKernels.GemvNkRingF32<Const4>, bounds)),
            _ => throw new ArgumentOutOfRangeException(nameof(stages), stages, "Ring [N, K] GEMV stages are 3 or 4."),
        };
        kernel(config, a.Cast<Float4>(), b.Cast<Float4>(), bias, c, g, aPointer, bPointer);
    }

    /// <summary>Runs an [N, K] product on <c>GemvNkRingWideF32</c> (3 ring stages of 2 KB per warp): one launch, no partials.</summary>
    private void GemvNkRingWideF32(ArrayView<float> a, ArrayView<float> b, ArrayView<float> bias, ArrayView<float> c, GemvShape g)
    {
        var config = GemvNkRingWideLaunch.Plan(g, device.WarpSize, GemvNkRingWideLaunch.Stages);
        bool cuda = device.Kind == IlgpuDeviceKind.Cuda;
        long aPointer = cuda ? TensorCoreLaunch.DeviceAddress(a) : 0;
        long bPointer = cuda ? TensorCoreLaunch.DeviceAddress(b) : 0;
        var name = $"{nameof(GemmFastKernels.GemvNkRingWideF32)}<{GemvNkRingWideLaunch.Stages}>";
        var bounds = Bounds(GemmFastKernels.GemvNkStagedWarps * device.WarpSize, GemvNkRingWideLaunch.GroupsPerSm);
        var kernel = device.Load(ref gemvNkRingWideF32, name, acc => acc.LoadStreamKernel<ArrayView<Float4>, ArrayView<Float4>, ArrayView<float>, ArrayView<float>, GemvShape, long, long>(GemmFastKernels.GemvNkRingWideF32<GemvNkRingStages3>, bounds));
        kernel(config, a.Cast<Float4>(), b.Cast<Float4>(), bias, c, g, aPointer, bPointer);
    }

    /// <summary>The staged [N, K] GEMV compiled for bursts of 1 or 2 batches, with its launch bounds (<see cref="GemvNkStagedLaunch.GroupsPerSm"/>).</summary>
    private Action<KernelConfig, ArrayView<Float4>, ArrayView<Float4>, ArrayView<float>, ArrayView<float>, GemvShape, long> GemvNkStagedVariant(int burst)
    {
        var name = $"{nameof(GemmFastKernels.GemvNkStagedF32)}<{burst}>";
        var bounds = Bounds(GemmFastKernels.GemvNkStagedWarps * device.WarpSize, GemvNkStagedLaunch.GroupsPerSm(burst));
        return burst switch
        {
            1 => device.Load(ref gemvNkStagedF32[0], name, acc => acc.LoadStreamKernel<ArrayView<Float4>, ArrayView<Float4>, ArrayView<float>, ArrayView<float>, GemvShape, long>(GemmFastKernels.GemvNkStagedF32<Const1>, bounds)),
            2 => device.Load(ref gemvNkStagedF32[1], name, acc => acc.LoadStreamKernel<ArrayView<Float4>, ArrayView<Float4>, ArrayView<float>, ArrayView<float>, GemvShape, long>(GemmFastKernels.GemvNkStagedF32<Const2>, bounds)),
            _ => throw new ArgumentOutOfRangeException(nameof(burst), burst, "Staged [N, K] GEMV bursts are 1 or 2 batches."),
        };
    }
}

/// <summary>
/// Launch plan of the float32 [N, K] GEMV for 9–16 rows with the weight streamed through a per-warp cp.async ring in shared
/// memory (<c>GemvNkRingF32</c>, generated by src.Kernels/Ilgpu/Codegen/gen_gemv_nk_staged_f32.py; <c>GEMS_GEMV_F32_WIDE</c> unset
/// or <c>ring3</c>: 3 stages, the default since H200 Run 86; <c>ring</c>: 4; notes: docs/perf/h100-notes-gemv.md, "float32 [N, K], 9–16 rows: the weight through a
/// cp.async ring — prediction").
/// <para>
/// Why: the staged kernel (ncu, H200 Run 83: 79.6 µs at 16 × 11008 × 4096, DRAM 48%, long-scoreboard stalls 34%) has each
/// warp request its 1 KB weight burst into registers and wait for it before its products, so at most ~24 KB of weight is
/// in flight per SM and much less on average. Here each warp keeps S − 1 bursts (1 KB each) in flight in shared memory
/// while it multiplies an earlier one, and every shared load is a 32-bit base register plus an immediate.
/// </para>
/// <para>
/// The numbers (CUDA): ⌈N / 16⌉ groups of 4 warps; dynamic shared memory = A's two stages (16 rows × 128 floats each, 16 KB)
/// + 4 warps × S × 1 KB of ring: 28 KB at S = 3, 32 KB at S = 4, so 6 groups per SM fit 228 KB (6 × 33 KB), under 48 KB
/// (no opt-in). Launch bounds ask for 6 groups (≤ 80 registers). Weight in flight per SM during products: 24 warps ×
/// (S − 1) KB = 48 KB (S = 3) or 72 KB (S = 4), against ≤ 24 KB in the staged kernel.
/// </para>
/// </summary>
internal static class GemvNkRingLaunch
{
    /// <summary>Groups per SM asked of ptxas through the launch bounds (both stage counts; shared memory fits 6).</summary>
    public const int GroupsPerSm = 6;

    /// <summary>Whether the ring kernel runs on this device: an even warp size of at most 32 (a ring row holds 16 vectors) that divides a 32-vector chunk, and a group of 4 warps.</summary>
    public static bool Fits(int warpSize, int maxGroupSize) =>
        warpSize >= 2 && warpSize % 2 == 0 && warpSize <= 32 && 64 % warpSize == 0
        && GemmFastKernels.GemvNkStagedWarps * warpSize <= maxGroupSize;

    /// <summary>Grid and group: ⌈N / 16⌉ groups of 4 warps, A's stages and the warps' rings as dynamic shared memory.</summary>
    /// <param name="g">The product (M of 1–16).</param>
    /// <param name="warpSize">Threads per warp.</param>
    /// <param name="stages">Ring stages per warp (3 or 4).</param>
    public static KernelConfig Plan(GemvShape g, int warpSize, int stages)
    {
        int groups = (g.N + GemmFastKernels.GemvNkStagedColumns - 1) / GemmFastKernels.GemvNkStagedColumns;
        return new KernelConfig(new Index3D(groups, 1, 1), new Index3D(GemmFastKernels.GemvNkStagedWarps * warpSize, 1, 1),
            SharedMemoryConfig.RequestDynamic<float>(GemmFastKernels.GemvNkRingSharedFloats(stages)));
    }
}

/// <summary>
/// Launch plan of the wide ring [N, K] GEMV for 9–16 rows (<c>GemvNkRingWideF32</c>, <c>GEMS_GEMV_F32_WIDE=ring3w</c>; generated
/// by src.Kernels/Ilgpu/Codegen/gen_gemv_nk_staged_f32.py; notes: docs/perf/h100-notes-gemv.md, "float32 [N, K], 9–16 rows: 8 weight
/// rows per lane (`ring3w`) — prediction").
/// <para>
/// Why: ncu of <c>ring3</c> (H200 Run 88) reads it as issue-limited (41.5 M warp instructions at 16 × 11008 × 4096, FFMA 54%,
/// long-scoreboard 5%). A lane there meets 4 weight rows, so each 16-byte shared activation load feeds 16 FMAs and each burst's
/// fixed cost (waits, barriers, commit, slot, copy addresses) and each chunk's A copy is spread over 1 KB of weight per
/// warp. Here a lane meets 8 weight rows: 32 FMAs per activation load, 2 KB per warp-burst, and a group of 32 weight rows
/// shares one A copy per chunk.
/// </para>
/// <para>
/// The numbers (CUDA): ⌈N / 32⌉ groups of 4 warps (344 at N = 11008); dynamic shared memory = A's two stages (16 KB) + 4 warps ×
/// 3 stages × 2 KB of ring = 40 KB (under 48 KB, no opt-in); 64 sums per lane, so the launch bounds ask for
/// <see cref="GroupsPerSm"/> groups per SM (≤ 128 registers). Weight in flight per warp: 2 bursts of 2 KB (ring3: 2 of 1 KB).
/// </para>
/// </summary>
internal static class GemvNkRingWideLaunch
{
    /// <summary>Groups per SM asked of ptxas through the launch bounds (≤ 128 registers for 64 sums; shared memory fits 5).</summary>
    public const int GroupsPerSm = 4;

    /// <summary>Ring stages per warp.</summary>
    public const int Stages = 3;

    /// <summary>Grid and group: ⌈N / 32⌉ groups of 4 warps, A's stages and the warps' rings as dynamic shared memory.</summary>
    /// <param name="g">The product (M of 1–16).</param>
    /// <param name="warpSize">Threads per warp.</param>
    /// <param name="stages">Ring stages per warp (3).</param>
    public static KernelConfig Plan(GemvShape g, int warpSize, int stages)
    {
        int groups = (g.N + GemmFastKernels.GemvNkRingWideColumns - 1) / GemmFastKernels.GemvNkRingWideColumns;
        return new KernelConfig(new Index3D(groups, 1, 1), new Index3D(GemmFastKernels.GemvNkStagedWarps * warpSize, 1, 1),
            SharedMemoryConfig.RequestDynamic<float>(GemmFastKernels.GemvNkRingWideSharedFloats(stages)));
    }
}

/// <summary>The constant 3: the ring stages of <c>GemvNkRingF32</c> under <c>GEMS_GEMV_F32_WIDE=ring3</c> (and of <c>GemvNkRingWideF32</c>).</summary>
internal readonly struct GemvNkRingStages3 : IKernelConstant
{
    /// <inheritdoc/>
    public int Value => 3;
}

/// <summary>
/// Launch plan of the float32 [N, K] GEMV for 9–16 rows with the activations staged in shared memory
/// (<c>GemvNkStagedF32</c>, generated by src.Kernels/Ilgpu/Codegen/gen_gemv_nk_staged_f32.py; under the stream
/// setting with <c>GEMS_GEMV_F32_WIDE=staged</c> (the default of Runs 81–85) or <c>staged2</c>; notes: docs/perf/h100-notes-gemv.md, "float32 [N, K],
/// 9–16 rows: activations staged in shared memory — prediction" and its outcome).
/// <para>
/// Why: the streamed kernel at 16 rows (H200 Run 79: 88.6 µs for 16 × 11008 × 4096, DRAM 43%, 128 registers, 25%
/// occupancy, 60% long-scoreboard stalls) gives each group 4 weight rows and makes it read all of A through L1 / L2: 4
/// bytes of activations per byte of weight, and 64 sums per lane. Here a group owns 16 weight rows and stages A once per
/// chunk of K in shared memory (1 byte of A per byte of weight crosses L2 → SM), and a lane covers 8 activation rows
/// (32 sums), so registers and the L2 → SM path both drop by about half or more.
/// </para>
/// <para>
/// The numbers: ⌈N / 16⌉ groups of <see cref="GemmFastKernels.GemvNkStagedWarps"/> warps (128 threads on CUDA), 32 KB of
/// dynamic shared memory each (two stages of 16 rows × 256 floats, ≤ 48 KB so no opt-in). Launch bounds ask for
/// <see cref="GroupsPerSm"/> groups per SM. <c>staged</c> (bursts of one batch): 65536 / (6 · 128) caps ptxas at 85
/// registers, and the body needs 80 (32 sums, a batch's 4 weight vectors, the 8 activation vectors it meets; offline
/// ptxas 11.8, 80 unbounded too, no spills); shared memory allows 6 as well (6 · 33 KB ≤ 228 KB): 24 warps per SM
/// against the streamed kernel's 16, 1 KB of weight each per burst; 16 × 11008 on 132 SMs is 688 groups on 792 slots,
/// one wave. <c>staged2</c> (two batches, 2 KB per warp): 118 registers, so 4 groups (16 warps, as many bytes in flight
/// per SM as the 8-row streamed kernel), 688 groups on 528 slots, 1.3 waves.
/// </para>
/// </summary>
internal static class GemvNkStagedLaunch
{
    /// <summary>Fewest rows of A the staged kernel takes (below, a lane half would idle; the streamed kernel stays).</summary>
    public const int MinRows = 9;

    /// <summary>Most rows of A the staged kernel takes.</summary>
    public const int MaxRows = GemmFastKernels.GemvNkStagedMaxRows;

    /// <summary>
    /// Groups per SM asked of ptxas through the launch bounds, by burst (the register budget, see the type's notes): 6
    /// for bursts of one batch (80 registers), 4 for two (118 registers; 5 would spill).
    /// </summary>
    /// <param name="burst">Batches of weight vectors a warp requests at once: 1 or 2.</param>
    public static int GroupsPerSm(int burst) => burst == 1 ? 6 : 4;

    /// <summary>Whether the kernel runs on this device: an even warp size that divides a chunk, and a group of 4 warps.</summary>
    public static bool Fits(int warpSize, int maxGroupSize) =>
        warpSize >= 2 && warpSize % 2 == 0 && GemmFastKernels.GemvNkStagedChunkVectors % warpSize == 0
        && GemmFastKernels.GemvNkStagedWarps * warpSize <= maxGroupSize;

    /// <summary>Grid and group: ⌈N / 16⌉ groups of 4 warps, with the two shared stages as dynamic shared memory.</summary>
    /// <param name="g">The product (M of 1–16).</param>
    /// <param name="warpSize">Threads per warp.</param>
    public static KernelConfig Plan(GemvShape g, int warpSize)
    {
        int groups = (g.N + GemmFastKernels.GemvNkStagedColumns - 1) / GemmFastKernels.GemvNkStagedColumns;
        return new KernelConfig(new Index3D(groups, 1, 1), new Index3D(GemmFastKernels.GemvNkStagedWarps * warpSize, 1, 1),
            SharedMemoryConfig.RequestDynamic<float>(GemmFastKernels.GemvNkStagedSharedFloats));
    }
}

/// <summary>The kernels that <c>GEMS_GEMV_F32_WIDE</c> selects between for aligned float32 [N, K] products of 9–16 rows under <see cref="GemvF32Variant.Stream"/>.</summary>
internal enum GemvF32Wide
{
    /// <summary><c>stream</c>: <c>GemvNkStreamF32</c>, the kernel of 1–8 rows (the default of Runs 75–81 at 9–16 rows).</summary>
    Stream,

    /// <summary>
    /// <c>staged</c> (the default of Runs 81–85): <c>GemvNkStagedF32&lt;1&gt;</c> (16 weight rows per group, A staged in shared
    /// memory, 32 sums per lane, one batch of weight vectors requested at a time, 6 groups per SM). Run 81, mm_tb float32
    /// 16 × 11008 × 4096: 2015–2016 GB/s on the stream kernel, 2249–2254 here.
    /// </summary>
    Staged,

    /// <summary>
    /// <c>staged2</c>: <c>GemvNkStagedF32&lt;2&gt;</c>, as <see cref="Staged"/> with two batches requested at once (2 KB per
    /// warp, 4 groups per SM). Run 81: 1939–1940 GB/s, slower than both; kept to measure against.
    /// </summary>
    Staged2,

    /// <summary>
    /// <c>ring</c>: <c>GemvNkRingF32&lt;4&gt;</c>, the staged layout with the weight copied by cp.async into a per-warp ring of 4
    /// shared stages, 3 bursts (3 KB) per warp in flight without registers (<see cref="GemvNkRingLaunch"/>). Run 86: 2555 GB/s
    /// at 16 × 11008 × 4096, behind <see cref="Ring3"/>.
    /// </summary>
    Ring,

    /// <summary>
    /// <c>ring3</c> (the default of Runs 86–91): <c>GemvNkRingF32&lt;3&gt;</c>, as <see cref="Ring"/> with 3 stages (2 KB per warp
    /// in flight). Run 86, mm_tb float32 16 × 11008 × 4096: 2248–2249 GB/s staged, 2596–2606 here.
    /// </summary>
    Ring3,

    /// <summary>
    /// <c>ring3w</c> (and unset: the default since H200 Run 92): <c>GemvNkRingWideF32&lt;3&gt;</c>, <see cref="Ring3"/>'s ring and activation stages with each lane covering 8
    /// weight rows instead of 4 (32 per group, 64 sums per lane, 2 KB per warp-burst, 4 groups per SM), so each shared
    /// activation load feeds 32 FMAs and the per-burst and per-chunk instructions are spread over twice the weight
    /// (<see cref="GemvNkRingWideLaunch"/>). Run 92, mm_tb float32 16 × 11008 × 4096: 2584–2603 GB/s on <see cref="Ring3"/>,
    /// 2804–2816 here.
    /// </summary>
    Ring3W,
}

/// <summary>The wide float32 [N, K] setting (<c>GEMS_GEMV_F32_WIDE</c>): <c>ring3w</c> (default), <c>ring3</c>, <c>ring</c>, <c>staged</c>, <c>staged2</c> or <c>stream</c>.</summary>
internal static class GemvF32WideChoice
{
    /// <summary>Environment variable naming the kernel of 9–16-row float32 [N, K] products.</summary>
    public const string Variable = "GEMS_GEMV_F32_WIDE";

    private static readonly Lazy<GemvF32Wide> FromVariable = new(() => Parse(Environment.GetEnvironmentVariable(Variable)));

    /// <summary>The setting of this process (read once).</summary>
    public static GemvF32Wide FromEnvironment() => FromVariable.Value;

    /// <summary>
    /// <c>stream</c>, <c>staged</c>, <c>staged2</c>, <c>ring</c> or <c>ring3</c> (any case, surrounding spaces ignored) selects
    /// <see cref="GemvF32Wide.Stream"/>, <see cref="GemvF32Wide.Staged"/>, <see cref="GemvF32Wide.Staged2"/>,
    /// <see cref="GemvF32Wide.Ring"/> or <see cref="GemvF32Wide.Ring3"/>; anything else the default, <see cref="GemvF32Wide.Ring3W"/>.
    /// </summary>
    public static GemvF32Wide Parse(string? setting) => setting?.Trim().ToLowerInvariant() switch
    {
        "stream" => GemvF32Wide.Stream,
        "staged" => GemvF32Wide.Staged,
        "staged2" => GemvF32Wide.Staged2,
        "ring" => GemvF32Wide.Ring,
        "ring3" => GemvF32Wide.Ring3,
        _ => GemvF32Wide.Ring3W,
    };
}
