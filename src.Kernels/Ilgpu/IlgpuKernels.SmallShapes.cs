using System;
using ILGPU;
using ILGPU.Runtime;

namespace GemsInjector.Kernels.Ilgpu;

/// <summary>
/// Small-shape dispatch: calls too small for the large-shape kernels to matter take the plain kernels, whose PTX the CUDA
/// driver JIT-compiles in a fraction of the time. A node's first process pays that JIT on each kernel's first load (the
/// shipped archive removes only ILGPU's compile), and a few large-shape kernels cost 150–400 ms there even when the first
/// call is a 3×37 row or a 13-key decode (the radix topk: 140–150 ms in Run 88). The rules only take shapes that the large kernels run as a single launch-bound
/// step (one key block, one product tile, a row of a few warps' width), far below every benchmarked shape, whose kernels
/// stay the same (docs/perf/h100-notes-startup.md, Attempt 5).
/// </summary>
public sealed partial class IlgpuKernels
{
    /// <summary>Longest 16-bit row that takes the plain row kernels (<see cref="HalfKernels"/>): one element per thread of a ≤ 128-thread group.</summary>
    internal const int ShortRowCols = 128;

    /// <summary>
    /// Largest k of a short-row topk (≤ <see cref="ShortRowCols"/> columns) that takes the plain k-round kernels
    /// (<see cref="RowKernels.TopKF32"/>, <see cref="HalfRowKernels.TopK16"/>): a few group arg-maxes over one row of a few
    /// warps. Their PTX is a quarter of the radix kernel's, and the 16-bit one serves both formats with one JIT.
    /// </summary>
    internal const int ShortTopK = 8;

    /// <summary>Most keys of an lq = 1 call that the general attention kernel takes: one of its 32-key blocks on CUDA.</summary>
    internal const int ShortDecodeKeys = 32;

    /// <summary>Largest M and N of a float32 product that the plain tiled GEMM takes: one 16 × 16 tile of it per batch.</summary>
    internal const int TinyProductEdge = 16;

    /// <summary>Largest K of such a product: four steps of the plain tile.</summary>
    internal const int TinyProductK = 64;

    /// <summary>
    /// Whether small shapes take the plain kernels (<see cref="SmallShapeKernels"/>): on CUDA unless the environment variable
    /// <c>GEMS_SMALL_SHAPE_KERNELS</c> is <c>off</c> or <c>0</c> (read once per process); never elsewhere, where no
    /// driver JIT is paid (the simulator's tests keep exercising the large kernels on small shapes). Tests set it directly.
    /// </summary>
    internal bool SmallShapeKernels
    {
        get => smallShapeKernels ??= device.Kind == IlgpuDeviceKind.Cuda && SmallShapeChoice.FromEnvironment();
        set => smallShapeKernels = value;
    }

    private bool? smallShapeKernels;

    /// <summary>A 16-bit row short enough for the plain row kernel (see <see cref="ShortRowCols"/>).</summary>
    private bool IsShortRow16(int cols) => SmallShapeKernels && cols <= ShortRowCols;

    /// <summary>
    /// Launch shape of the plain 16-bit row kernels: for short rows one element per thread (the row rounded up to whole
    /// warps, so that a group is not mostly idle lanes), else <see cref="Rows"/>.
    /// </summary>
    private KernelConfig PlainRows16(int rows, int cols)
    {
        if (!IsShortRow16(cols))
        {
            return Rows(rows, cols);
        }

        int warp = device.WarpSize;
        int group = Math.Max(warp, (cols + warp - 1) / warp * warp);
        return new KernelConfig(rows, Math.Min(group, RowGroupSize(cols)));
    }

    /// <summary>A topk short enough for the plain k-round kernels (see <see cref="ShortTopK"/>).</summary>
    private bool IsShortTopK(int cols, int k) => SmallShapeKernels && cols <= ShortRowCols && k <= ShortTopK;

    /// <summary>An lq = 1 attention call with so few keys that the general kernel takes it (see <see cref="ShortDecodeKeys"/>).</summary>
    private bool IsShortDecode(int lq, int lk) => SmallShapeKernels && lq == 1 && lk <= ShortDecodeKeys;

    /// <summary>A float32 product that the plain tiled GEMM takes (see <see cref="TinyProductEdge"/>).</summary>
    private bool IsTinyProduct(int m, int n, int k) => SmallShapeKernels && m <= TinyProductEdge && n <= TinyProductEdge && k <= TinyProductK;
}

/// <summary>The small-shape dispatch setting (<c>GEMS_SMALL_SHAPE_KERNELS</c>).</summary>
internal static class SmallShapeChoice
{
    /// <summary>Environment variable: <c>off</c> / <c>0</c> keeps every shape on the large-shape kernels (to time both in one run).</summary>
    public const string Variable = "GEMS_SMALL_SHAPE_KERNELS";

    private static readonly Lazy<bool> FromVariable = new(() => Parse(Environment.GetEnvironmentVariable(Variable)));

    /// <summary>The setting of this process (read once).</summary>
    public static bool FromEnvironment() => FromVariable.Value;

    /// <summary>False for <c>off</c>, <c>0</c> or <c>false</c> (any case, surrounding spaces ignored); true otherwise.</summary>
    public static bool Parse(string? setting) => setting?.Trim().ToLowerInvariant() is not ("off" or "0" or "false");
}
