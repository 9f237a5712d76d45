using System;
using ILGPU;
using ILGPU.Runtime;

namespace GemsInjector.Kernels.Ilgpu;

public sealed partial class IlgpuKernels
{
    // The streamed [N, K] kernel (GEMS_GEMV_F32_VARIANT=stream), slot log2(cap) − 1 for caps 2, 4, 8, 16.
    private readonly Action<KernelConfig, ArrayView<Float4>, ArrayView<Float4>, ArrayView<float>, ArrayView<float>, GemvShape>?[] gemvNkStreamF32 =
        new Action<KernelConfig, ArrayView<Float4>, ArrayView<Float4>, ArrayView<float>, ArrayView<float>, GemvShape>?[4];

    // The 16-row bodies with the weight loads one batch ahead (GEMS_GEMV_F32_STREAM16=pingpong / pingpongfenced).
    private Action<KernelConfig, ArrayView<Float4>, ArrayView<Float4>, ArrayView<float>, ArrayView<float>, GemvShape>? gemvNkStreamF32PingPong16;
    private Action<KernelConfig, ArrayView<Float4>, ArrayView<Float4>, ArrayView<float>, ArrayView<float>, GemvShape>? gemvNkStreamF32PingPongFenced16;

    /// <summary>
    /// Which body serves 9–16-row [N, K] products on the streamed kernel (<c>GEMS_GEMV_F32_STREAM16</c>; tests set it
    /// directly). Same plan, layout and numerics in all three; only the order of the loads in the loop differs.
    /// </summary>
    internal GemvStream16Body GemvNkStream16Body { get; set; } = GemvStream16Choice.FromEnvironment();

    /// <summary>
    /// Whether an [N, K] product of <paramref name="m"/> rows takes <c>GemvNkStreamF32</c>: the
    /// <see cref="GemvF32Variant.Stream"/> setting, 2–16 rows, and the 16-byte conditions of <see cref="UsesGemvNkVecF32"/>.
    /// Such products skip the flat SGEMM tile at 9–16 rows.
    /// </summary>
    internal bool UsesGemvNkStreamF32(ArrayView<float> a, ArrayView<float> b, int m, int k) =>
        GemvF32Kernel == GemvF32Variant.Stream && m >= 2 && m <= GemvNkStreamLaunch.MaxRows && UsesGemvNkVecF32(a, b, k);

    /// <summary>Runs an [N, K] product on <c>GemvNkStreamF32</c> (the caller checked <see cref="UsesGemvNkStreamF32"/>): one launch, no partials.</summary>
    private void GemvNkStreamF32(ArrayView<float> a, ArrayView<float> b, ArrayView<float> bias, ArrayView<float> c, GemvShape g)
    {
        var (config, cap) = GemvNkStreamLaunch.Plan(g, device.WarpSize, device.MaxGroupSize, device.MultiprocessorCount);
        var kernel = (cap, GemvNkStream16Body) switch
        {
            (16, GemvStream16Body.PingPong) => device.Load(ref gemvNkStreamF32PingPong16, nameof(GemmFastKernels.GemvNkStreamF32PingPong16), acc => acc.LoadStreamKernel<ArrayView<Float4>, ArrayView<Float4>, ArrayView<float>, ArrayView<float>, GemvShape>(GemmFastKernels.GemvNkStreamF32PingPong16, GemvBounds)),
            (16, GemvStream16Body.PingPongFenced) => device.Load(ref gemvNkStreamF32PingPongFenced16, nameof(GemmFastKernels.GemvNkStreamF32PingPongFenced16), acc => acc.LoadStreamKernel<ArrayView<Float4>, ArrayView<Float4>, ArrayView<float>, ArrayView<float>, GemvShape>(GemmFastKernels.GemvNkStreamF32PingPongFenced16, GemvBounds)),
            _ => GemvNkStreamVariant(cap),
        };
        kernel(config, a.Cast<Float4>(), b.Cast<Float4>(), bias, c, g);
    }

    /// <summary>The streamed [N, K] GEMV compiled for a row cap of 2, 4, 8 or 16.</summary>
    private Action<KernelConfig, ArrayView<Float4>, ArrayView<Float4>, ArrayView<float>, ArrayView<float>, GemvShape> GemvNkStreamVariant(int rowsCap)
    {
        var name = $"{nameof(GemmFastKernels.GemvNkStreamF32)}<{rowsCap}>";
        int slot = int.Log2(rowsCap) - 1;
        return rowsCap switch
        {
            2 => device.Load(ref gemvNkStreamF32[slot], name, acc => acc.LoadStreamKernel<ArrayView<Float4>, ArrayView<Float4>, ArrayView<float>, ArrayView<float>, GemvShape>(GemmFastKernels.GemvNkStreamF32<Const2>, GemvBounds)),
            4 => device.Load(ref gemvNkStreamF32[slot], name, acc => acc.LoadStreamKernel<ArrayView<Float4>, ArrayView<Float4>, ArrayView<float>, ArrayView<float>, GemvShape>(GemmFastKernels.GemvNkStreamF32<Const4>, GemvBounds)),
            8 => device.Load(ref gemvNkStreamF32[slot], name, acc => acc.LoadStreamKernel<ArrayView<Float4>, ArrayView<Float4>, ArrayView<float>, ArrayView<float>, GemvShape>(GemmFastKernels.GemvNkStreamF32<Const8>, GemvBounds)),
            16 => device.Load(ref gemvNkStreamF32[slot], name, acc => acc.LoadStreamKernel<ArrayView<Float4>, ArrayView<Float4>, ArrayView<float>, ArrayView<float>, GemvShape>(GemmFastKernels.GemvNkStreamF32<Const16>, GemvBounds)),
            _ => throw new ArgumentOutOfRangeException(nameof(rowsCap), rowsCap, "Streamed [N, K] GEMV row caps are 2, 4, 8 or 16."),
        };
    }
}

/// <summary>The bodies that <c>GEMS_GEMV_F32_STREAM16</c> selects between for 9–16-row streamed [N, K] products.</summary>
internal enum GemvStream16Body
{
    /// <summary>Unset (or anything not below): the cap-16 body of <c>GemvNkStreamF32</c> (Run 75).</summary>
    Plain,

    /// <summary>
    /// <c>pingpong</c>: <c>GemvNkStreamF32PingPong16</c>, the next batch's 4 weight loads issued before this batch's
    /// products (two batches of weight in flight per warp), activation loads placed by ptxas (158 registers offline).
    /// </summary>
    PingPong,

    /// <summary>
    /// <c>pingpongfenced</c>: <c>GemvNkStreamF32PingPongFenced16</c>, as <see cref="PingPong"/> with the 16 activation
    /// loads fenced into one burst ahead of the products (236 registers offline).
    /// </summary>
    PingPongFenced,
}

/// <summary>The 16-row streamed body setting (<c>GEMS_GEMV_F32_STREAM16</c>): unset (plain), <c>pingpong</c> or <c>pingpongfenced</c>.</summary>
internal static class GemvStream16Choice
{
    /// <summary>Environment variable naming the 16-row streamed body.</summary>
    public const string Variable = "GEMS_GEMV_F32_STREAM16";

    private static readonly Lazy<GemvStream16Body> FromVariable = new(() => Parse(Environment.GetEnvironmentVariable(Variable)));

    /// <summary>The setting of this process (read once).</summary>
    public static GemvStream16Body FromEnvironment() => FromVariable.Value;

    /// <summary>
    /// <c>pingpong</c> or <c>pingpongfenced</c> (any case, surrounding spaces ignored) selects that body; anything else,
    /// or unset, <see cref="GemvStream16Body.Plain"/>.
    /// </summary>
    /// <param name="setting">The variable's value, or null when unset.</param>
    public static GemvStream16Body Parse(string? setting) => setting?.Trim().ToLowerInvariant() switch
    {
        "pingpong" => GemvStream16Body.PingPong,
        "pingpongfenced" => GemvStream16Body.PingPongFenced,
        _ => GemvStream16Body.Plain,
    };
}

/// <summary>
/// Launch plan of the streamed float32 [N, K] GEMV (<c>GemvNkStreamF32</c>, generated by
/// src.Kernels/Ilgpu/Codegen/gen_gemv_stream_f32.py; <c>GEMS_GEMV_F32_VARIANT=stream</c>).
/// <para>
/// Why: the pipelined kernel splits K over Grid.Y and sums the partials in a second launch, and ptxas sinks its next
/// loads deep into the multiply. The 16-bit [N, K] products gained +29% from the opposite layout (a group owns a few
/// weight rows and all of K, each warp asks for long contiguous runs of each row in one burst, all of a batch's loads
/// before any arithmetic, the group's warps summed in shared memory). This is that layout with FFMA: lane l of warp w
/// loads one 16-byte vector of each of the group's weight rows and of each activation row at vector
/// (batch · warpSize + l) for batches w, w + W, …, fences the loads with a warp barrier, then multiplies every
/// activation row by every weight row (M · C · 4 FFMA per lane and batch).
/// </para>
/// <para>
/// Columns per group by row cap (<see cref="ColumnsPerGroup"/>): each group reads all of A once from L1/L2, M / C bytes
/// of A per byte of weight, and holds C · M sums per lane; 8 columns at 2 and 4 rows, 4 at 8 and 16 (8 would be 128
/// sums at 16 rows).
/// </para>
/// </summary>
internal static class GemvNkStreamLaunch
{
    /// <summary>Most rows of A the streamed kernel takes.</summary>
    public const int MaxRows = 16;

    /// <summary>Weight rows (output columns) per group for a row cap of 2, 4, 8 or 16.</summary>
    public static int ColumnsPerGroup(int rowsCap) => rowsCap <= 4 ? 8 : 4;

    /// <summary>
    /// Grid and row cap: ⌈N / C⌉ groups of W warps, W the fewest of 2, 4, 8 whose groups put at least 8 warps per SM to
    /// work, else 8 (as the 16-bit streamed body's plan), capped by the device's group size. A device that reports no SMs
    /// (the CPU simulator) counts as four.
    /// </summary>
    /// <param name="g">The product (M of 2–16).</param>
    /// <param name="warpSize">Threads per warp.</param>
    /// <param name="maxGroupSize">Most threads per group.</param>
    /// <param name="multiprocessors">SMs of the device (0 when unknown).</param>
    /// <param name="warps">Warps per group to force (0: the plan's).</param>
    public static (KernelConfig Config, int RowsCap) Plan(GemvShape g, int warpSize, int maxGroupSize, int multiprocessors, int warps = 0)
    {
        int cap = GemvNkVecLaunch.RowsCap(g.M);
        int columns = ColumnsPerGroup(cap);
        int groups = (g.N + columns - 1) / columns;
        int sms = multiprocessors > 0 ? multiprocessors : 4;
        int most = Math.Max(1, Math.Min(GemmFastKernels.GemvNkStreamMaxWarps, Math.Min(maxGroupSize, 256) / warpSize));
        int groupWarps = warps > 0 ? Math.Min(warps, most) : most;
        if (warps <= 0)
        {
            for (int w = 2; w < most; w *= 2)
            {
                if ((long)groups * w >= 8L * sms)
                {
                    groupWarps = w;
                    break;
                }
            }
        }

        return (new KernelConfig(new Index3D(groups, 1, 1), new Index3D(groupWarps * warpSize, 1, 1)), cap);
    }
}
