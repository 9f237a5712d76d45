using System;
using ILGPU;
using ILGPU.Runtime;

namespace GemsInjector.Kernels.Ilgpu;

public sealed partial class IlgpuKernels
{
    private Action<KernelConfig, ArrayView<Float4>, ArrayView<Float4>, ArrayView<float>, ArrayView<float>, ArrayView<float>, GemvShape>? gemvNkVec1F32;

    // One compiled variant per row cap: 2, 4, 8, 16 (slot log2(cap) − 1) for [N, K]; 1, 2, 4, 8, 16 (slot log2(cap)) for [K, N].
    private readonly Action<KernelConfig, ArrayView<Float4>, ArrayView<Float4>, ArrayView<float>, ArrayView<float>, ArrayView<float>, GemvShape>?[] gemvNkVecF32 =
        new Action<KernelConfig, ArrayView<Float4>, ArrayView<Float4>, ArrayView<float>, ArrayView<float>, ArrayView<float>, GemvShape>?[4];

    private readonly Action<KernelConfig, ArrayView<float>, ArrayView<Float4>, ArrayView<float>, ArrayView<float>, ArrayView<float>, GemvShape>?[] gemvKnVecF32 =
        new Action<KernelConfig, ArrayView<float>, ArrayView<Float4>, ArrayView<float>, ArrayView<float>, ArrayView<float>, GemvShape>?[5];

    // The pipelined variants (GEMS_GEMV_F32_VARIANT=pipe), slot log2(cap) − 1 for caps 2, 4, 8, 16.
    private readonly Action<KernelConfig, ArrayView<float>, ArrayView<Float4>, ArrayView<float>, ArrayView<float>, ArrayView<float>, GemvShape>?[] gemvKnPipeF32 =
        new Action<KernelConfig, ArrayView<float>, ArrayView<Float4>, ArrayView<float>, ArrayView<float>, ArrayView<float>, GemvShape>?[4];

    private readonly Action<KernelConfig, ArrayView<Float4>, ArrayView<Float4>, ArrayView<float>, ArrayView<float>, ArrayView<float>, GemvShape>?[] gemvNkPipeF32 =
        new Action<KernelConfig, ArrayView<Float4>, ArrayView<Float4>, ArrayView<float>, ArrayView<float>, ArrayView<float>, GemvShape>?[4];

    /// <summary>
    /// Launch bounds of the pipelined kernels (<c>GemvKnPipeF32</c>, <c>GemvNkPipeF32</c>): 256 threads, two groups per SM
    /// (at most 128 registers: local ptxas 13.0 then keeps the 16-row [K, N] loop's next weight loads at its top, where
    /// unbounded it takes 157 registers and one group per SM).
    /// </summary>
    private KernelSpecialization GemvPipeBounds => Bounds(256, 2);

    /// <summary>Which kernels serve float32 decode products (<c>GEMS_GEMV_F32_VARIANT</c>; tests set it directly).</summary>
    internal GemvF32Variant GemvF32Kernel { get; set; } = GemvF32Choice.FromEnvironment();

    /// <summary>
    /// Whether a [K, N] product of this row cap takes <c>GemvKnPipeF32</c>: the <see cref="GemvF32Variant.Pipe"/> or <see cref="GemvF32Variant.Stream"/> setting,
    /// 2–16 rows, and the 16-byte conditions of <see cref="UsesGemvKnVecF32"/> (under <see cref="GemvF32Variant.Stream"/>
    /// only the products that <see cref="UsesGemvKnStreamF32"/> turns away get here).
    /// </summary>
    private bool UsesGemvKnPipeF32(int rowsCap, ArrayView<float> b, int n) =>
        (GemvF32Kernel is GemvF32Variant.Pipe or GemvF32Variant.Stream) && rowsCap >= 2 && UsesGemvKnVecF32(b, n);

    /// <summary>
    /// Most rows of K in one [K, N] group's chunk: what the kernel's shared buffer of A holds (<c>GemvKnPipeF32</c> stages
    /// four rows of A per 16-byte vector, the others one float per row and K).
    /// </summary>
    private int GemvKnChunkLimit(int rowsCap, ArrayView<float> b, int n) =>
        UsesGemvKnPipeF32(rowsCap, b, n) ? GemmFastKernels.VecSharedA / Math.Max(1, rowsCap / 4) : GemmFastKernels.MaxSharedA / rowsCap;

    /// <summary>Whether a [K, N] decode product with this weight view takes the 16-byte kernel: N a multiple of 4 and b 16-byte aligned.</summary>
    internal static bool UsesGemvKnVecF32(ArrayView<float> b, int n) => n % 4 == 0 && TensorCoreLaunch.DeviceAddress(b) % 16 == 0;

    /// <summary>The [K, N]-weight GEMV for a row cap of 1, 2, 4, 8 or 16: 16-byte loads when <see cref="UsesGemvKnVecF32"/>, else scalar ones.</summary>
    private Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, GemvShape> GemvKnLaunch(int rowsCap, ArrayView<float> b, int n)
    {
        if (!UsesGemvKnVecF32(b, n))
        {
            return GemvKnVariant(rowsCap);
        }

        if (UsesGemvKnPipeF32(rowsCap, b, n))
        {
            var pipe = GemvKnPipeVariant(rowsCap);
            return (config, a, weight, bias, c, partial, g) => pipe(config, a, weight.Cast<Float4>(), bias, c, partial, g);
        }

        var name = $"{nameof(GemmFastKernels.GemvKnVecF32)}<{rowsCap}>";
        int slot = int.Log2(rowsCap);
        var kernel = rowsCap switch
        {
            1 => device.Load(ref gemvKnVecF32[slot], name, acc => acc.LoadStreamKernel<ArrayView<float>, ArrayView<Float4>, ArrayView<float>, ArrayView<float>, ArrayView<float>, GemvShape>(GemmFastKernels.GemvKnVecF32<Const1>, GemvBounds)),
            2 => device.Load(ref gemvKnVecF32[slot], name, acc => acc.LoadStreamKernel<ArrayView<float>, ArrayView<Float4>, ArrayView<float>, ArrayView<float>, ArrayView<float>, GemvShape>(GemmFastKernels.GemvKnVecF32<Const2>, GemvBounds)),
            4 => device.Load(ref gemvKnVecF32[slot], name, acc => acc.LoadStreamKernel<ArrayView<float>, ArrayView<Float4>, ArrayView<float>, ArrayView<float>, ArrayView<float>, GemvShape>(GemmFastKernels.GemvKnVecF32<Const4>, GemvBounds)),
            8 => device.Load(ref gemvKnVecF32[slot], name, acc => acc.LoadStreamKernel<ArrayView<float>, ArrayView<Float4>, ArrayView<float>, ArrayView<float>, ArrayView<float>, GemvShape>(GemmFastKernels.GemvKnVecF32<Const8>, GemvBounds)),
            16 => device.Load(ref gemvKnVecF32[slot], name, acc => acc.LoadStreamKernel<ArrayView<float>, ArrayView<Float4>, ArrayView<float>, ArrayView<float>, ArrayView<float>, GemvShape>(GemmFastKernels.GemvKnVecF32<Const16>, GemvBounds)),
            _ => throw new ArgumentOutOfRangeException(nameof(rowsCap), rowsCap, "GEMV row caps are 1, 2, 4, 8 or 16."),
        };
        return (config, a, weight, bias, c, partial, g) => kernel(config, a, weight.Cast<Float4>(), bias, c, partial, g);
    }

    /// <summary>The pipelined [N, K] GEMV compiled for a row cap of 2, 4, 8 or 16 (launched like <c>GemvKnPipeF32</c>).</summary>
    private Action<KernelConfig, ArrayView<Float4>, ArrayView<Float4>, ArrayView<float>, ArrayView<float>, ArrayView<float>, GemvShape> GemvNkPipeVariant(int rowsCap)
    {
        var name = $"{nameof(GemmFastKernels.GemvNkPipeF32)}<{rowsCap}>";
        int slot = int.Log2(rowsCap) - 1;
        return rowsCap switch
        {
            2 => device.Load(ref gemvNkPipeF32[slot], name, acc => acc.LoadStreamKernel<ArrayView<Float4>, ArrayView<Float4>, ArrayView<float>, ArrayView<float>, ArrayView<float>, GemvShape>(GemmFastKernels.GemvNkPipeF32<Const2>, GemvPipeBounds)),
            4 => device.Load(ref gemvNkPipeF32[slot], name, acc => acc.LoadStreamKernel<ArrayView<Float4>, ArrayView<Float4>, ArrayView<float>, ArrayView<float>, ArrayView<float>, GemvShape>(GemmFastKernels.GemvNkPipeF32<Const4>, GemvPipeBounds)),
            8 => device.Load(ref gemvNkPipeF32[slot], name, acc => acc.LoadStreamKernel<ArrayView<Float4>, ArrayView<Float4>, ArrayView<float>, ArrayView<float>, ArrayView<float>, GemvShape>(GemmFastKernels.GemvNkPipeF32<Const8>, GemvPipeBounds)),
            16 => device.Load(ref gemvNkPipeF32[slot], name, acc => acc.LoadStreamKernel<ArrayView<Float4>, ArrayView<Float4>, ArrayView<float>, ArrayView<float>, ArrayView<float>, GemvShape>(GemmFastKernels.GemvNkPipeF32<Const16>, GemvPipeBounds)),
            _ => throw new ArgumentOutOfRangeException(nameof(rowsCap), rowsCap, "Pipelined [N, K] GEMV row caps are 2, 4, 8 or 16."),
        };
    }

    /// <summary>The pipelined [K, N] GEMV compiled for a row cap of 2, 4, 8 or 16.</summary>
    private Action<KernelConfig, ArrayView<float>, ArrayView<Float4>, ArrayView<float>, ArrayView<float>, ArrayView<float>, GemvShape> GemvKnPipeVariant(int rowsCap)
    {
        var name = $"{nameof(GemmFastKernels.GemvKnPipeF32)}<{rowsCap}>";
        int slot = int.Log2(rowsCap) - 1;
        return rowsCap switch
        {
            2 => device.Load(ref gemvKnPipeF32[slot], name, acc => acc.LoadStreamKernel<ArrayView<float>, ArrayView<Float4>, ArrayView<float>, ArrayView<float>, ArrayView<float>, GemvShape>(GemmFastKernels.GemvKnPipeF32<Const2>, GemvPipeBounds)),
            4 => device.Load(ref gemvKnPipeF32[slot], name, acc => acc.LoadStreamKernel<ArrayView<float>, ArrayView<Float4>, ArrayView<float>, ArrayView<float>, ArrayView<float>, GemvShape>(GemmFastKernels.GemvKnPipeF32<Const4>, GemvPipeBounds)),
            8 => device.Load(ref gemvKnPipeF32[slot], name, acc => acc.LoadStreamKernel<ArrayView<float>, ArrayView<Float4>, ArrayView<float>, ArrayView<float>, ArrayView<float>, GemvShape>(GemmFastKernels.GemvKnPipeF32<Const8>, GemvPipeBounds)),
            16 => device.Load(ref gemvKnPipeF32[slot], name, acc => acc.LoadStreamKernel<ArrayView<float>, ArrayView<Float4>, ArrayView<float>, ArrayView<float>, ArrayView<float>, GemvShape>(GemmFastKernels.GemvKnPipeF32<Const16>, GemvPipeBounds)),
            _ => throw new ArgumentOutOfRangeException(nameof(rowsCap), rowsCap, "Pipelined [K, N] GEMV row caps are 2, 4, 8 or 16."),
        };
    }

    /// <summary>
    /// Decode products x[M, K] · Wᵀ with W [N, K], K a multiple of 4 and both views 16-byte aligned: the 16-byte kernels
    /// (<see cref="GemmFastKernels.GemvNkVec1F32"/> for one row, <c>GemvNkVecF32</c> / <c>GemvNkPipeF32</c> for 2–16, or
    /// <c>GemvNkStreamF32</c> under <see cref="GemvF32Variant.Stream"/>: all of K per group, one launch), K split over Grid.Y when N
    /// alone gives too few groups, the partials summed by <see cref="GemmFastKernels.GemvReduceF32"/>.
    /// </summary>
    /// <returns>Whether it ran (false: the scalar <c>GemvNkF32</c> serves the product).</returns>
    private bool TryGemvNkVecF32(ArrayView<float> a, ArrayView<float> b, ArrayView<float> bias, ArrayView<float> c, GemvShape g)
    {
        if (!UsesGemvNkVecF32(a, b, g.K))
        {
            return false;
        }

        if (UsesGemvNkStreamF32(a, b, g.M, g.K))
        {
            GemvNkStreamF32(a, b, bias, c, g);
            return true;
        }

        bool pipelined = GemvF32Kernel == GemvF32Variant.Pipe;
        var (config, shape, cap) = GemvNkVecLaunch.Plan(g, device.WarpSize, device.MaxGroupSize, device.MultiprocessorCount, pipelined);
        var partial = shape.Splits > 1 ? Scratch((long)shape.Splits * shape.M * shape.N) : c;
        var a4 = a.Cast<Float4>();
        var b4 = b.Cast<Float4>();
        if (cap == 1)
        {
            device.Load(ref gemvNkVec1F32, nameof(GemmFastKernels.GemvNkVec1F32),
                acc => acc.LoadStreamKernel<ArrayView<Float4>, ArrayView<Float4>, ArrayView<float>, ArrayView<float>, ArrayView<float>, GemvShape>(GemmFastKernels.GemvNkVec1F32, GemvBounds))(
                config, a4, b4, bias, c, partial, shape);
        }
        else if (pipelined)
        {
            GemvNkPipeVariant(cap)(config, a4, b4, bias, c, partial, shape);
        }
        else
        {
            GemvNkVecVariant(cap)(config, a4, b4, bias, c, partial, shape);
        }

        if (shape.Splits > 1)
        {
            ReduceSplitsF32(partial, bias, c, shape);
        }

        return true;
    }

    /// <summary>
    /// Whether an [N, K] decode product with these views takes the 16-byte kernels on this device: K a multiple of 4 and
    /// both a and b 16-byte aligned (every row then is).
    /// </summary>
    internal bool UsesGemvNkVecF32(ArrayView<float> a, ArrayView<float> b, int k) =>
        GemvNkVecLaunch.Fits(device.WarpSize, device.MaxGroupSize) && k % 4 == 0
        && TensorCoreLaunch.DeviceAddress(a) % 16 == 0 && TensorCoreLaunch.DeviceAddress(b) % 16 == 0;

    /// <summary>The multi-row 16-byte [N, K] GEMV compiled for a row cap of 2, 4, 8 or 16.</summary>
    private Action<KernelConfig, ArrayView<Float4>, ArrayView<Float4>, ArrayView<float>, ArrayView<float>, ArrayView<float>, GemvShape> GemvNkVecVariant(int rowsCap)
    {
        var name = $"{nameof(GemmFastKernels.GemvNkVecF32)}<{rowsCap}>";
        int slot = int.Log2(rowsCap) - 1;
        return rowsCap switch
        {
            2 => device.Load(ref gemvNkVecF32[slot], name, acc => acc.LoadStreamKernel<ArrayView<Float4>, ArrayView<Float4>, ArrayView<float>, ArrayView<float>, ArrayView<float>, GemvShape>(GemmFastKernels.GemvNkVecF32<Const2>, GemvBounds)),
            4 => device.Load(ref gemvNkVecF32[slot], name, acc => acc.LoadStreamKernel<ArrayView<Float4>, ArrayView<Float4>, ArrayView<float>, ArrayView<float>, ArrayView<float>, GemvShape>(GemmFastKernels.GemvNkVecF32<Const4>, GemvBounds)),
            8 => device.Load(ref gemvNkVecF32[slot], name, acc => acc.LoadStreamKernel<ArrayView<Float4>, ArrayView<Float4>, ArrayView<float>, ArrayView<float>, ArrayView<float>, GemvShape>(GemmFastKernels.GemvNkVecF32<Const8>, GemvBounds)),
            16 => device.Load(ref gemvNkVecF32[slot], name, acc => acc.LoadStreamKernel<ArrayView<Float4>, ArrayView<Float4>, ArrayView<float>, ArrayView<float>, ArrayView<float>, GemvShape>(GemmFastKernels.GemvNkVecF32<Const16>, GemvBounds)),
            _ => throw new ArgumentOutOfRangeException(nameof(rowsCap), rowsCap, "16-byte [N, K] GEMV row caps are 2, 4, 8 or 16."),
        };
    }
}

/// <summary>Launch shape of the 16-byte float32 [N, K] GEMV kernels (shared by the facade and the tests).</summary>
internal static class GemvNkVecLaunch
{
    /// <summary>Output columns per warp of the multi-row kernel (one for the one-row kernel).</summary>
    public const int ColumnsPerWarp = 4;

    /// <summary>K steps per iteration of the multi-row kernel (split chunks are whole iterations).</summary>
    public const int Steps = 2;

    /// <summary>Threads per group: up to 256, whole warps.</summary>
    public static int Threads(int warpSize, int maxGroupSize) => Math.Min(maxGroupSize, 256) / warpSize * warpSize;

    /// <summary>Whether the kernels run on this device: at least one warp per group.</summary>
    public static bool Fits(int warpSize, int maxGroupSize) => Threads(warpSize, maxGroupSize) > 0;

    /// <summary>Row cap (the kernel variant): 1 (the one-row kernel), 2, 4, 8 or 16.</summary>
    public static int RowsCap(int m) => m <= 1 ? 1 : m <= 2 ? 2 : m <= 4 ? 4 : m <= 8 ? 8 : 16;

    /// <summary>Groups of the pipelined multi-row kernel resident per SM (its launch bounds); its split plan fills one such wave.</summary>
    public const int PipelinedGroupsPerSm = 2;

    /// <summary>
    /// Grid, shape and row cap. K is split over Grid.Y only when N alone gives fewer groups than SMs (a split costs a
    /// partials round trip and a second launch); then to about four groups per SM, each chunk a whole number of the
    /// multi-row kernel's iterations. A device that reports no SMs (the CPU simulator) counts as four.
    /// </summary>
    /// <param name="g">The product.</param>
    /// <param name="warpSize">Threads per warp.</param>
    /// <param name="maxGroupSize">Most threads per group.</param>
    /// <param name="multiprocessors">SMs of the device (0 when unknown).</param>
    /// <param name="pipelined">
    /// For <c>GemvNkPipeF32</c> (rows ≥ 2): split to at most one wave of <see cref="PipelinedGroupsPerSm"/> groups per SM,
    /// rounding down, since its groups stay resident two to an SM and a partly filled second wave would run on few SMs.
    /// </param>
    public static (KernelConfig Config, GemvShape Shape, int RowsCap) Plan(GemvShape g, int warpSize, int maxGroupSize, int multiprocessors, bool pipelined = false)
    {
        int threads = Threads(warpSize, maxGroupSize);
        int warps = threads / warpSize;
        int sms = multiprocessors > 0 ? multiprocessors : 4;
        int cap = RowsCap(g.M);
        int columnsPerGroup = warps * (cap == 1 ? 1 : ColumnsPerWarp);
        int groups = (g.N + columnsPerGroup - 1) / columnsPerGroup;
        int vectors = g.K / 4;
        int splits = groups >= sms ? 1
            : pipelined && cap > 1 ? Math.Max(1, PipelinedGroupsPerSm * sms / groups)
            : Math.Max(1, (4 * sms + groups - 1) / groups);
        int unit = Steps * warpSize;
        int chunk = Math.Max(unit, ((vectors + splits - 1) / splits + unit - 1) / unit * unit);
        g.KChunk = chunk;
        g.Splits = Math.Max(1, (vectors + chunk - 1) / chunk);
        g.Direct = g.Splits == 1 ? 1 : 0;
        return (new KernelConfig(new Index3D(groups, g.Splits, 1), new Index3D(threads, 1, 1)), g, cap);
    }
}

/// <summary>The kernels that <c>GEMS_GEMV_F32_VARIANT</c> selects between for float32 decode products.</summary>
internal enum GemvF32Variant
{
    /// <summary><c>vec</c>: the 16-byte kernels <c>GemvKnVecF32</c> and <c>GemvNkVecF32</c> at every row count (the default before Run 49).</summary>
    Vec,

    /// <summary>
    /// <c>pipe</c>, 2–16 rows: <c>GemvKnPipeF32</c> for [K, N] weights (next iteration's weight loads in flight during the
    /// multiply, A staged four rows to a 16-byte vector) and <c>GemvNkPipeF32</c> for [N, K] ones (one K step per iteration,
    /// the next step's loads in flight, two groups per SM); one-row products as <see cref="Vec"/>. The default from H200
    /// Run 49 (float32 2 / 4 / 8 rows × 4096² as mm_tb 2231 / 1936 / 1400 → 2410 / 2134 / 1748 GB/s, as mm 2515 / 1913 / 1765
    /// → 2440 / 2337 / 1935) to Run 75; at 16 rows the flat SGEMM tile stays faster.
    /// </summary>
    Pipe,

    /// <summary>
    /// <c>stream</c>, the default since H200 Run 75: as <see cref="Pipe"/>, but [N, K] products of 1–16 rows take
    /// <c>GemvNkStreamF32</c> (a group owns a few weight rows and all of K, each warp streams 16 · warpSize contiguous bytes
    /// of each row per batch, no split-K and no second launch), at 9–16 rows too, where the others take the flat SGEMM tile;
    /// and [K, N] products of 1–8 rows with K a multiple of 4 and A 16-byte aligned take <c>GemvKnStreamF32</c> (a group
    /// owns 32 output columns and all of K, one launch; <see cref="IlgpuKernels.UsesGemvKnStreamF32"/>).
    /// Run 75, mm_tb float32 2 / 4 / 8 rows × 4096²: 2404–2432 / 2129–2138 / 1749–1760 → 3280–3301 / 3223–3228 / 2949–2953
    /// GB/s; 16 × 11008 × 4096: 1999–2006 (flat tile) → 2050. Run 81, mm float32 1 / 2 / 4 / 8 rows × 4096²: 2568–2571 /
    /// 2496–2502 / 2404–2407 / 1958–1960 → 3155 / 3110–3115 / 3032 / 2699–2703 GB/s.
    /// </summary>
    Stream,
}

/// <summary>The float32 decode-product setting (<c>GEMS_GEMV_F32_VARIANT</c>): <c>stream</c> (default), <c>pipe</c> or <c>vec</c>.</summary>
internal static class GemvF32Choice
{
    /// <summary>Environment variable naming the float32 decode kernels.</summary>
    public const string Variable = "GEMS_GEMV_F32_VARIANT";

    private static readonly Lazy<GemvF32Variant> FromVariable = new(() => Parse(Environment.GetEnvironmentVariable(Variable)));

    /// <summary>The setting of this process (read once).</summary>
    public static GemvF32Variant FromEnvironment() => FromVariable.Value;

    /// <summary>
    /// <c>vec</c> or <c>pipe</c> (any case, surrounding spaces ignored) selects <see cref="GemvF32Variant.Vec"/> or
    /// <see cref="GemvF32Variant.Pipe"/>; anything else the default, <see cref="GemvF32Variant.Stream"/>.
    /// </summary>
    public static GemvF32Variant Parse(string? setting) => setting?.Trim().ToLowerInvariant() switch
    {
        "vec" => GemvF32Variant.Vec,
        "pipe" => GemvF32Variant.Pipe,
        _ => GemvF32Variant.Stream,
    };
}
