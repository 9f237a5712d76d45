using System;
using ILGPU;
using ILGPU.Runtime;

namespace GemsInjector.Kernels.Ilgpu;

/// <summary>
/// The ILGPU kernels of one <see cref="IlgpuDevice"/> over device views (contiguous, row-major). Each kernel is compiled
/// on its first call and cached. Launches are asynchronous on the accelerator's default stream; call
/// <see cref="IlgpuDevice.Synchronize"/> before reading results on the host. Arguments are checked on the host
/// (lengths against shapes) and throw <see cref="ArgumentException"/>.
/// </summary>
public sealed partial class IlgpuKernels
{
    private readonly IlgpuDevice device;

    internal IlgpuKernels(IlgpuDevice device) => this.device = device;

    /// <summary>The device the kernels run on.</summary>
    public IlgpuDevice Device => device;

    private KernelConfig Elementwise(long n)
    {
        int group = device.ElementwiseGroupSize;
        long groups = Math.Min((n + group - 1) / group, device.MaxElementwiseGroups);
        return new KernelConfig((int)Math.Max(groups, 1), group);
    }

    private Action<KernelConfig, ArrayView<float>, ArrayView<ushort>, ArrayView<ushort>, HalfGemvShape, int>? gemvReduce16;
    private Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, GemvShape>? gemvReduceF32;
    private Action<KernelConfig, ArrayView<Float4>, ArrayView<float>, ArrayView<Float4>, GemvShape>? gemvReduceRunsF32;

    private Action<KernelConfig, ArrayView<Float4>, ArrayView<ushort>, ArrayView<ulong>, HalfGemvShape, int>? gemvReduceRuns16;

    /// <summary>
    /// c = alpha·Σ_split partial + beta·bias in 16 bits (<see cref="HalfGemvKernels.GemvReduce16"/>, or under
    /// <c>GEMS_SPLITK_REDUCE_LOADS=runs</c> <see cref="HalfGemvKernels.GemvReduceRuns16"/> where N is a multiple of 4, the
    /// partials 16-byte and c 8-byte aligned; the same bits): every split-K 16-bit product ends here.
    /// </summary>
    private void ReduceSplits16(ArrayView<float> partial, ArrayView<ushort> bias, ArrayView<ushort> c, HalfGemvShape g, bool bf16)
    {
        if (UsesRunsReduce(partial, g.N, TensorCoreLaunch.DeviceAddress(c), runBytes: 8))
        {
            device.Load(ref gemvReduceRuns16, nameof(HalfGemvKernels.GemvReduceRuns16),
                acc => acc.LoadStreamKernel<ArrayView<Float4>, ArrayView<ushort>, ArrayView<ulong>, HalfGemvShape, int>(HalfGemvKernels.GemvReduceRuns16))(
                Elementwise((long)g.M * g.N / 4), partial.Cast<Float4>(), bias, c.Cast<ulong>(), g, bf16 ? 1 : 0);
            return;
        }

        device.Load(ref gemvReduce16, nameof(HalfGemvKernels.GemvReduce16),
            acc => acc.LoadStreamKernel<ArrayView<float>, ArrayView<ushort>, ArrayView<ushort>, HalfGemvShape, int>(HalfGemvKernels.GemvReduce16))(
            Elementwise((long)g.M * g.N), partial, bias, c, g, bf16 ? 1 : 0);
    }

    /// <summary>
    /// Whether a launched reduce takes the runs kernel: <c>GEMS_SPLITK_REDUCE_LOADS=runs</c>, N a multiple of 4 (a run stays in
    /// its row), the partials 16-byte aligned and C (at <paramref name="cAddress"/>) aligned to one run of outputs.
    /// </summary>
    private bool UsesRunsReduce(ArrayView<float> partial, int n, long cAddress, int runBytes) =>
        SplitKReduceLoading == SplitKReduceLoads.Runs && n % 4 == 0
        && TensorCoreLaunch.DeviceAddress(partial) % 16 == 0 && cAddress % runBytes == 0;

    private MemoryBuffer1D<int, Stride1D.Dense>? splitKTickets;

    /// <summary>How split-K 16-bit skinny products sum their splits (environment, read once per process; tests set it).</summary>
    internal SplitKReduce SplitKReduceMode { get; set; } = SplitKReduceSettings.FromEnvironment();

    /// <summary>
    /// The tickets of a product that reduces in place, one per output tile of the launch (<paramref name="tiles"/>, of
    /// <paramref name="tileElements"/> output elements inside M × N at most, summed by a group of <paramref name="groupSize"/>):
    /// empty (the product writes partials for <see cref="ReduceSplits16"/>) with one split, under <see cref="SplitKReduce.Launch"/>,
    /// and under <see cref="SplitKReduce.Fused"/> past <see cref="SplitKReduction.MaxFusedRounds"/>. Zero between launches
    /// (the last group of a tile resets its own); kept between calls, grown (zeroed) when a launch needs more.
    /// </summary>
    private ArrayView<int> SplitKTickets(int splits, long tiles, long tileElements, int groupSize)
    {
        bool fused = SplitKReduceMode switch
        {
            SplitKReduce.FusedAll => true,
            SplitKReduce.Fused => SplitKReduction.LastGroupRounds(tileElements, groupSize, splits) <= SplitKReduction.MaxFusedRounds,
            _ => false,
        };
        if (!fused || splits <= 1)
        {
            return default;
        }

        return Grown(ref splitKTickets, tiles, 1024, zeroed: true);
    }

    /// <summary>
    /// The first <paramref name="need"/> elements of a buffer kept between calls, grown to at least
    /// <paramref name="minimum"/> elements (and zeroed, for ticket buffers) when a call needs more.
    /// </summary>
    private ArrayView<T> Grown<T>(ref MemoryBuffer1D<T, Stride1D.Dense>? buffer, long need, long minimum, bool zeroed)
        where T : unmanaged
    {
        if (buffer is null || buffer.Length < need)
        {
            if (buffer is not null)
            {
                // Earlier launches may still use the old buffer.
                device.Synchronize();
                buffer.Dispose();
            }

            buffer = device.Accelerator.Allocate1D<T>(Math.Max(need, minimum));
            if (zeroed)
            {
                buffer.MemSetToZero();
            }
        }

        return buffer.View.BaseView.SubView(0, need);
    }

    /// <summary>
    /// c = alpha·Σ_split partial + beta·bias in float32 (<see cref="GemmFastKernels.GemvReduceF32"/>, or under
    /// <c>GEMS_SPLITK_REDUCE_LOADS=runs</c> <see cref="GemmFastKernels.GemvReduceRunsF32"/> where N is a multiple of 4 and
    /// both views are 16-byte aligned; the same bits): every split-K float32 product ends here.
    /// </summary>
    private void ReduceSplitsF32(ArrayView<float> partial, ArrayView<float> bias, ArrayView<float> c, GemvShape g)
    {
        if (UsesRunsReduce(partial, g.N, TensorCoreLaunch.DeviceAddress(c), runBytes: 16))
        {
            device.Load(ref gemvReduceRunsF32, nameof(GemmFastKernels.GemvReduceRunsF32),
                acc => acc.LoadStreamKernel<ArrayView<Float4>, ArrayView<float>, ArrayView<Float4>, GemvShape>(GemmFastKernels.GemvReduceRunsF32))(
                Elementwise((long)g.M * g.N / 4), partial.Cast<Float4>(), bias, c.Cast<Float4>(), g);
            return;
        }

        device.Load(ref gemvReduceF32, nameof(GemmFastKernels.GemvReduceF32),
            acc => acc.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, GemvShape>(GemmFastKernels.GemvReduceF32))(
            Elementwise((long)g.M * g.N), partial, bias, c, g);
    }

    private int RowGroupSize(long cols)
    {
        int want = cols <= 1024 ? 128 : cols <= 4096 ? 256 : cols <= 16384 ? 512 : 1024;
        int size = Math.Min(device.MaxGroupSize, want);
        return Math.Max(device.WarpSize, size / device.WarpSize * device.WarpSize);
    }

    /// <summary>
    /// Checks an attention call's shape and views (both storage formats) and returns the additive mask's strides per batch
    /// and per head (0 where the mask is shared across them).
    /// </summary>
    private static (long MaskBatch, long MaskHead) CheckAttention<T>(ArrayView<T> q, ArrayView<T> k, ArrayView<T> v, ArrayView<T> output,
        int batch, int heads, int kvHeads, int lq, int lk, int headDim, ArrayView<float> mask)
        where T : unmanaged
    {
        if (batch < 0 || heads <= 0 || kvHeads <= 0 || heads % kvHeads != 0 || lq < 0 || lk < 0 || headDim <= 0)
        {
            throw new ArgumentOutOfRangeException(nameof(heads), $"Invalid attention shape: batch {batch}, heads {heads}, kvHeads {kvHeads}, lq {lq}, lk {lk}, headDim {headDim} (heads must be a multiple of kvHeads).");
        }

        CheckLength(q, (long)batch * heads * lq * headDim, nameof(q));
        CheckLength(k, (long)batch * kvHeads * lk * headDim, nameof(k));
        CheckLength(v, (long)batch * kvHeads * lk * headDim, nameof(v));
        CheckLength(output, q.Length, nameof(output));
        long plane = (long)lq * lk;
        long maskBatch = 0, maskHead = 0;
        if (mask.Length != 0)
        {
            if (mask.Length == (long)batch * heads * plane)
            {
                maskBatch = heads * plane;
                maskHead = plane;
            }
            else if (mask.Length == batch * plane)
            {
                maskBatch = plane;
            }
            else if (mask.Length != plane)
            {
                throw new ArgumentException($"'mask' has {mask.Length} elements; expected [lq, lk], [batch, lq, lk] or [batch, heads, lq, lk].", nameof(mask));
            }
        }

        return (maskBatch, maskHead);
    }

    private static void CheckLength<T>(ArrayView<T> view, long expected, string name)
        where T : unmanaged
    {
        if (view.Length != expected)
        {
            throw new ArgumentException($"'{name}' has {view.Length} elements; the shape needs {expected}.", name);
        }
    }

    private static void CheckAtLeast<T>(ArrayView<T> view, long expected, string name)
        where T : unmanaged
    {
        if (view.Length < expected)
        {
            throw new ArgumentException($"'{name}' has {view.Length} elements; the shape needs at least {expected}.", name);
        }
    }

    private static int CheckInt(long n, string name)
    {
        if (n < 0 || n > int.MaxValue)
        {
            throw new ArgumentOutOfRangeException(name, n, "Element counts must be in [0, 2^31).");
        }

        return (int)n;
    }

    private static void CheckPositive(int value, string name)
    {
        if (value < 0)
        {
            throw new ArgumentOutOfRangeException(name, value, "Must not be negative.");
        }
    }
}
