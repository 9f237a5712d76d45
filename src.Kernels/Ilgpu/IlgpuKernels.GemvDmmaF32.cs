using System;
using ILGPU;
using ILGPU.Runtime;

namespace GemsInjector.Kernels.Ilgpu;

public sealed partial class IlgpuKernels
{
    // The DMMA GEMV, slot 0 for a weight stored [K, N], 1 for [N, K].
    private readonly Action<KernelConfig, ArrayView<Float4>, ArrayView<Float4>, ArrayView<float>, ArrayView<float>, GemvShape>?[] gemvDmmaF32 =
        new Action<KernelConfig, ArrayView<Float4>, ArrayView<Float4>, ArrayView<float>, ArrayView<float>, GemvShape>?[2];

    // The prefetch form: slot 2 · layout + (1 for the one-group-per-SM plan of 12 warps, 0 for 4 warps).
    private readonly Action<KernelConfig, ArrayView<Float4>, ArrayView<Float4>, ArrayView<float>, ArrayView<float>, GemvShape>?[] gemvDmmaF32Prefetch =
        new Action<KernelConfig, ArrayView<Float4>, ArrayView<Float4>, ArrayView<float>, ArrayView<float>, GemvShape>?[4];

    // The ring form: slot 2 · layout + (1 for the one-group-per-SM plan of RingOneGroupWarps warps, 0 for 4 warps).
    private readonly Action<KernelConfig, ArrayView<Float4>, ArrayView<Float4>, ArrayView<float>, ArrayView<float>, GemvShape, long>?[] gemvDmmaF32Ring =
        new Action<KernelConfig, ArrayView<Float4>, ArrayView<Float4>, ArrayView<float>, ArrayView<float>, GemvShape, long>?[4];

    /// <summary>Which float32 products of 1–16 rows take the FP64 tensor-core GEMV, and in which form (<c>GEMS_GEMV_F32_DMMA</c>; tests set it directly).</summary>
    internal GemvDmmaChoice GemvF32Dmma { get; set; } = GemvF32DmmaChoice.FromEnvironment();

    /// <summary>
    /// The DMMA form a float32 product takes, <see cref="GemvDmmaForm.Off"/> for none: the setting's form for the shape
    /// (<see cref="GemvDmmaLaunch.FormFor"/>), a CUDA device of compute capability 9.0 (<see cref="Sm90aPtx.Supported"/>), and
    /// a shape the kernels take (<see cref="GemvDmmaLaunch.Takes"/>: one matrix, 1–16 rows, K a multiple of 4, 16-byte aligned
    /// views; for [K, N] N a multiple of 4 as well).
    /// </summary>
    internal GemvDmmaForm GemvDmmaF32Form(ArrayView<float> a, ArrayView<float> b, int batch, int m, int k, int n, bool transposeB)
    {
        var form = GemvDmmaLaunch.FormFor(GemvF32Dmma, m, transposeB);
        return form != GemvDmmaForm.Off && Sm90aPtx.Supported(device.Accelerator) && device.WarpSize == 32
            && GemvDmmaLaunch.Takes(batch, m, k, n, transposeB, TensorCoreLaunch.DeviceAddress(a), TensorCoreLaunch.DeviceAddress(b))
            ? form
            : GemvDmmaForm.Off;
    }

    /// <summary>Runs a product on the DMMA GEMV in <paramref name="form"/> (from <see cref="GemvDmmaF32Form"/>, not off): one launch, no partials.</summary>
    private void GemvDmmaF32(GemvDmmaForm form, ArrayView<float> a, ArrayView<float> b, ArrayView<float> bias, ArrayView<float> c, int m, int k, int n,
        bool transposeB, float alpha, float beta, bool biasIsMatrix)
    {
        var g = new GemvShape
        {
            M = m,
            N = n,
            K = k,
            Alpha = alpha,
            Beta = beta,
            HasBias = bias.Length != 0 ? 1 : 0,
            BiasStrideM = biasIsMatrix ? n : 0,
            Splits = 1,
            Direct = 1,
        };
        if (form == GemvDmmaForm.Ring)
        {
            var plan = GemvDmmaLaunch.Plan(g, device.MultiprocessorCount, GemvDmmaForm.Ring);
            var (rb, slot, suffix) = DmmaBounds(plan, GemvDmmaLaunch.RingOneGroupWarps, transposeB);
            string name = nameof(GemvDmmaF32Kernels.GemvDmmaF32Ring) + suffix;
            // The one-group plan splits K into GemvDmmaLaunch.OneGroupKRanges ranges (Const3), the 4-warp plan into one.
            var rk = slot switch
            {
                0 => device.Load(ref gemvDmmaF32Ring[slot], name, acc => acc.LoadStreamKernel<ArrayView<Float4>, ArrayView<Float4>, ArrayView<float>, ArrayView<float>, GemvShape, long>(GemvDmmaF32Kernels.GemvDmmaF32Ring<GemvDmmaKn, Const1>, rb)),
                1 => device.Load(ref gemvDmmaF32Ring[slot], name, acc => acc.LoadStreamKernel<ArrayView<Float4>, ArrayView<Float4>, ArrayView<float>, ArrayView<float>, GemvShape, long>(GemvDmmaF32Kernels.GemvDmmaF32Ring<GemvDmmaKn, Const3>, rb)),
                2 => device.Load(ref gemvDmmaF32Ring[slot], name, acc => acc.LoadStreamKernel<ArrayView<Float4>, ArrayView<Float4>, ArrayView<float>, ArrayView<float>, GemvShape, long>(GemvDmmaF32Kernels.GemvDmmaF32Ring<GemvDmmaNk, Const1>, rb)),
                _ => device.Load(ref gemvDmmaF32Ring[slot], name, acc => acc.LoadStreamKernel<ArrayView<Float4>, ArrayView<Float4>, ArrayView<float>, ArrayView<float>, GemvShape, long>(GemvDmmaF32Kernels.GemvDmmaF32Ring<GemvDmmaNk, Const3>, rb)),
            };
            rk(plan, a.Cast<Float4>(), b.Cast<Float4>(), bias, c, g, TensorCoreLaunch.DeviceAddress(b));
            return;
        }

        if (form == GemvDmmaForm.Prefetch)
        {
            var plan = GemvDmmaLaunch.Plan(g, device.MultiprocessorCount, GemvDmmaForm.Prefetch);
            var (pb, slot, suffix) = DmmaBounds(plan, GemvDmmaLaunch.PrefetchOneGroupWarps, transposeB);
            string name = nameof(GemvDmmaF32Kernels.GemvDmmaF32Prefetch) + suffix;
            var pk = slot switch
            {
                0 => device.Load(ref gemvDmmaF32Prefetch[slot], name, acc => acc.LoadStreamKernel<ArrayView<Float4>, ArrayView<Float4>, ArrayView<float>, ArrayView<float>, GemvShape>(GemvDmmaF32Kernels.GemvDmmaF32Prefetch<GemvDmmaKn, Const1>, pb)),
                1 => device.Load(ref gemvDmmaF32Prefetch[slot], name, acc => acc.LoadStreamKernel<ArrayView<Float4>, ArrayView<Float4>, ArrayView<float>, ArrayView<float>, GemvShape>(GemvDmmaF32Kernels.GemvDmmaF32Prefetch<GemvDmmaKn, Const3>, pb)),
                2 => device.Load(ref gemvDmmaF32Prefetch[slot], name, acc => acc.LoadStreamKernel<ArrayView<Float4>, ArrayView<Float4>, ArrayView<float>, ArrayView<float>, GemvShape>(GemvDmmaF32Kernels.GemvDmmaF32Prefetch<GemvDmmaNk, Const1>, pb)),
                _ => device.Load(ref gemvDmmaF32Prefetch[slot], name, acc => acc.LoadStreamKernel<ArrayView<Float4>, ArrayView<Float4>, ArrayView<float>, ArrayView<float>, GemvShape>(GemvDmmaF32Kernels.GemvDmmaF32Prefetch<GemvDmmaNk, Const3>, pb)),
            };
            pk(plan, a.Cast<Float4>(), b.Cast<Float4>(), bias, c, g);
            return;
        }

        var config = GemvDmmaLaunch.Plan(g, device.MultiprocessorCount, GemvDmmaForm.On);
        var bounds = Bounds(GemvDmmaLaunch.MaxWarps * 32, GemvDmmaLaunch.GroupsPerSm);
        var kernel = transposeB
            ? device.Load(ref gemvDmmaF32[1], $"{nameof(GemvDmmaF32Kernels.GemvDmmaF32)}<Nk>", acc => acc.LoadStreamKernel<ArrayView<Float4>, ArrayView<Float4>, ArrayView<float>, ArrayView<float>, GemvShape>(GemvDmmaF32Kernels.GemvDmmaF32<GemvDmmaNk>, bounds))
            : device.Load(ref gemvDmmaF32[0], $"{nameof(GemvDmmaF32Kernels.GemvDmmaF32)}<Kn>", acc => acc.LoadStreamKernel<ArrayView<Float4>, ArrayView<Float4>, ArrayView<float>, ArrayView<float>, GemvShape>(GemvDmmaF32Kernels.GemvDmmaF32<GemvDmmaKn>, bounds));
        kernel(config, a.Cast<Float4>(), b.Cast<Float4>(), bias, c, g);
    }

    /// <summary>
    /// Launch bounds, kernel slot (2 · layout + 1 for one group per SM) and kernel-name suffix of a <c>prefetch</c> or
    /// <c>ring</c> plan: one group of <paramref name="oneGroupWarps"/> warps per SM, or groups of
    /// <see cref="GemvDmmaLaunch.SmallGroupWarps"/> warps, <see cref="GemvDmmaLaunch.PrefetchGroupsPerSm"/> per SM.
    /// </summary>
    private (KernelSpecialization Bounds, int Slot, string Suffix) DmmaBounds(KernelConfig plan, int oneGroupWarps, bool transposeB)
    {
        bool oneGroup = plan.GroupDim.X == oneGroupWarps * 32;
        var bounds = oneGroup ? Bounds(oneGroupWarps * 32, 1) : Bounds(GemvDmmaLaunch.SmallGroupWarps * 32, GemvDmmaLaunch.PrefetchGroupsPerSm);
        int warps = oneGroup ? oneGroupWarps : GemvDmmaLaunch.SmallGroupWarps;
        return (bounds, (transposeB ? 2 : 0) + (oneGroup ? 1 : 0), $"<{(transposeB ? "Nk" : "Kn")}>x{warps}");
    }
}

/// <summary>
/// Routing and launch plans of the float32 GEMV of 1–16 rows on the FP64 tensor cores (<see cref="GemvDmmaF32Kernels"/>,
/// <c>GEMS_GEMV_F32_DMMA</c>; notes: docs/perf/h100-notes-gemv.md, "float32 1–16 rows on the FP64 tensor cores").
/// <para>
/// ⌈N / 32⌉ groups, each of <see cref="Warps"/> warps that split K by k16 steps: 8 warps while the groups do not
/// outnumber the SMs (N ≤ 4224 on 132 SMs: one group per SM, 8 warps × 2 steps × 2 KB of weight in flight), else 4
/// (N = 11008: 344 groups, 2–3 per SM, all resident at once under the launch bounds' 2 groups of 256 threads = 4 of 128
/// per SM). Dynamic shared memory: warps × 32 lanes × 16 float64 (16 or 32 KB) for the fixed-order sum of the warps.
/// </para>
/// </summary>
internal static class GemvDmmaLaunch
{
    /// <summary>Most warps per group (the launch bounds' thread count is 32 times this).</summary>
    public const int MaxWarps = 8;

    /// <summary>
    /// Contiguous K ranges of the <c>prefetch</c> and <c>ring</c> one-group plans: their 12 warps walk K as three subgroups
    /// of <see cref="SmallGroupWarps"/>, each reading one window of a row at a time as a 4-warp group does (the kernels'
    /// <c>Const3</c> variants; the 4-warp plans are the <c>Const1</c> ones).
    /// </summary>
    public const int OneGroupKRanges = 3;

    /// <summary>Groups of <see cref="MaxWarps"/> warps per SM asked of ptxas (≤ 128 registers per thread).</summary>
    public const int GroupsPerSm = 2;

    /// <summary>
    /// Whether the kernel takes the shape: one matrix, 1–16 rows, K a multiple of 4 (16-byte vectors along K), A and B
    /// 16-byte aligned, and for B stored [K, N] N a multiple of 4 (16-byte vectors along N); index products in range.
    /// </summary>
    public static bool Takes(int batch, int m, int k, int n, bool transposeB, long aAddress, long bAddress) =>
        batch == 1 && m >= 1 && m <= GemvDmmaF32Kernels.MaxRows && k >= 4 && k % 4 == 0 && n >= 1
        && (transposeB || n % 4 == 0) && aAddress % 16 == 0 && bAddress % 16 == 0
        && (long)k * n / 4 <= int.MaxValue && 4L * k <= int.MaxValue;

    /// <summary>
    /// The form a float32 product of <paramref name="m"/> rows takes under <paramref name="choice"/>, before the device and
    /// shape checks. <see cref="GemvDmmaChoice.Auto"/> follows Run 112 (H200, `docs/perf/h100-notes-gemv.md`): a weight
    /// stored [K, N] with 8–16 rows takes <see cref="GemvDmmaForm.Prefetch"/> (+47% at 16 rows, +6% at 8 over the FFMA
    /// kernels; 1–4 rows stay on the FFMA stream, 5–8% faster there); [N, K] with 9–16 rows takes
    /// <see cref="GemvDmmaForm.Ring"/> (+18% at 16 × 11008 × 4096 over the FFMA kernels in Run 112; at 16 × 4096 × 11008,
    /// one group per SM, its 12-warp groups +24% over <see cref="GemvDmmaForm.On"/> in Run 115, which was +10% over them);
    /// 1–8-row [N, K] products stay on the FFMA kernels, 28% faster there.
    /// </summary>
    /// <param name="choice">The setting.</param>
    /// <param name="m">Rows of A.</param>
    /// <param name="transposeB">Whether the weight is stored [N, K].</param>
    public static GemvDmmaForm FormFor(GemvDmmaChoice choice, int m, bool transposeB) => choice switch
    {
        GemvDmmaChoice.Off => GemvDmmaForm.Off,
        GemvDmmaChoice.On => GemvDmmaForm.On,
        GemvDmmaChoice.Prefetch => GemvDmmaForm.Prefetch,
        GemvDmmaChoice.Ring => GemvDmmaForm.Ring,
        _ when m > GemvDmmaF32Kernels.MaxRows => GemvDmmaForm.Off,
        _ when !transposeB => m >= 8 ? GemvDmmaForm.Prefetch : GemvDmmaForm.Off,
        _ => m >= 9 ? GemvDmmaForm.Ring : GemvDmmaForm.Off,
    };

    /// <summary>Warps per group: 8 while ⌈N / 32⌉ groups fit one per SM (or on the simulator, no SM count), else 4.</summary>
    public static int Warps(int n, int multiprocessors) =>
        multiprocessors > 0 && Groups(n) > multiprocessors ? 4 : MaxWarps;

    /// <summary>
    /// <c>prefetch</c>, one group per SM (N ≤ 4224 on 132 SMs): 12 warps of 2 register sets each, launch
    /// bounds 384 threads × 1 group (≤ 168 registers); 12 × 4 KB = 48 KB of dynamic shared memory for the sum.
    /// </summary>
    public const int PrefetchOneGroupWarps = 12;

    /// <summary><c>prefetch</c> and <c>ring</c> with more groups than SMs: groups of <see cref="SmallGroupWarps"/> warps, 3 per SM asked of ptxas (≤ 168 registers).</summary>
    public const int PrefetchGroupsPerSm = 3;

    /// <summary>Warps per group of <c>prefetch</c> and <c>ring</c> when the groups outnumber the SMs (and of <c>ring</c> on the simulator).</summary>
    public const int SmallGroupWarps = 4;

    /// <summary>
    /// <c>ring</c>, one group per SM (N ≤ 4224 on 132 SMs): more warps, so more of the weight in flight per SM (each warp's
    /// ring holds <see cref="GemvDmmaF32Kernels.RingStages"/> − 1 passes of 4 KB ahead); launch bounds of one group.
    /// </summary>
    public const int RingOneGroupWarps = 12;

    /// <summary>
    /// Warps per group of a form: <c>prefetch</c> 12 while the groups fit one per SM, else 4; 8 on the simulator (no SM count;
    /// its groups hold at most 256 threads); <c>ring</c> <see cref="RingOneGroupWarps"/> while the groups fit one per SM, else
    /// (and on the simulator) <see cref="SmallGroupWarps"/>.
    /// </summary>
    public static int WarpsOf(int n, int multiprocessors, GemvDmmaForm form) =>
        form == GemvDmmaForm.Ring ? (multiprocessors > 0 && Groups(n) <= multiprocessors ? RingOneGroupWarps : SmallGroupWarps)
        : form != GemvDmmaForm.Prefetch ? Warps(n, multiprocessors)
        : multiprocessors <= 0 ? MaxWarps
        : Groups(n) > multiprocessors ? SmallGroupWarps : PrefetchOneGroupWarps;

    /// <summary>Grid and group of a product for a form.</summary>
    public static KernelConfig Plan(GemvShape g, int multiprocessors, GemvDmmaForm form)
    {
        int warps = WarpsOf(g.N, multiprocessors, form);
        int slots = form == GemvDmmaForm.Ring ? GemvDmmaF32Kernels.RingStages * GemvDmmaF32Kernels.RingStageBytes / 8 : GemvDmmaF32Kernels.WarpSlots;
        return new KernelConfig(new Index3D(Groups(g.N), 1, 1), new Index3D(warps * 32, 1, 1),
            SharedMemoryConfig.RequestDynamic<double>(warps * slots));
    }

    /// <summary>Groups: one per 32 columns.</summary>
    public static int Groups(int n) => (n + GemvDmmaF32Kernels.Columns - 1) / GemvDmmaF32Kernels.Columns;
}

/// <summary>
/// The FP64 tensor-core float32 GEMV setting (<c>GEMS_GEMV_F32_DMMA</c>): unset or <c>auto</c> (the default) lets the
/// shape choose (<see cref="GemvDmmaLaunch.FormFor"/>); <c>off</c> keeps every product on the FFMA kernels; <c>on</c>,
/// <c>prefetch</c> or <c>ring</c> sends every product the kernels take (1–16 rows) to that form, for measurements.
/// </summary>
internal static class GemvF32DmmaChoice
{
    /// <summary>Environment variable choosing the DMMA GEMV for float32 products of 1–16 rows.</summary>
    public const string Variable = "GEMS_GEMV_F32_DMMA";

    private static readonly Lazy<GemvDmmaChoice> FromVariable = new(() => Parse(Environment.GetEnvironmentVariable(Variable)));

    /// <summary>The setting of this process (read once).</summary>
    public static GemvDmmaChoice FromEnvironment() => FromVariable.Value;

    /// <summary>
    /// <c>off</c> / <c>0</c> / <c>false</c>: <see cref="GemvDmmaChoice.Off"/>; <c>on</c> / <c>1</c> / <c>true</c>, <c>prefetch</c>,
    /// <c>ring</c>: that form for every product; anything else (unset, <c>auto</c>): <see cref="GemvDmmaChoice.Auto"/>. Any case,
    /// surrounding spaces ignored.
    /// </summary>
    public static GemvDmmaChoice Parse(string? setting) => setting?.Trim().ToLowerInvariant() switch
    {
        "off" or "0" or "false" => GemvDmmaChoice.Off,
        "on" or "1" or "true" => GemvDmmaChoice.On,
        "prefetch" => GemvDmmaChoice.Prefetch,
        "ring" => GemvDmmaChoice.Ring,
        _ => GemvDmmaChoice.Auto,
    };
}

/// <summary>What <c>GEMS_GEMV_F32_DMMA</c> asks for.</summary>
internal enum GemvDmmaChoice
{
    /// <summary>The form measured fastest for the shape, or none (<see cref="GemvDmmaLaunch.FormFor"/>).</summary>
    Auto,

    /// <summary>Never the DMMA GEMV.</summary>
    Off,

    /// <summary><see cref="GemvDmmaForm.On"/> for every product the kernels take.</summary>
    On,

    /// <summary><see cref="GemvDmmaForm.Prefetch"/> for every product the kernels take.</summary>
    Prefetch,

    /// <summary><see cref="GemvDmmaForm.Ring"/> for every product the kernels take.</summary>
    Ring,
}

/// <summary>The forms of the DMMA GEMV (<c>GEMS_GEMV_F32_DMMA</c>).</summary>
internal enum GemvDmmaForm
{
    /// <summary>Not taken.</summary>
    Off,

    /// <summary><c>on</c>: one pass of loads, then its DMMA (<see cref="GemvDmmaF32Kernels.GemvDmmaF32{TLayout}"/>).</summary>
    On,

    /// <summary><c>prefetch</c>: the next pass's loads before this pass's DMMA (<see cref="GemvDmmaF32Kernels.GemvDmmaF32Prefetch{TLayout, TRanges}"/>).</summary>
    Prefetch,

    /// <summary><c>ring</c>: the weight through a per-warp cp.async ring in shared memory (<see cref="GemvDmmaF32Kernels.GemvDmmaF32Ring{TLayout, TRanges}"/>); 4-warp groups.</summary>
    Ring,
}
