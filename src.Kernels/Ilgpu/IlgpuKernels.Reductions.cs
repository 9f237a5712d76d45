using System;
using ILGPU;
using ILGPU.Runtime;

namespace GemsInjector.Kernels.Ilgpu;

/// <summary>
/// Launch plans of the row reductions (<see cref="ReductionKernels"/>: sum, mean, amax, argmax in float32, float16 and
/// bfloat16). Many rows get one group per row; few long rows are split over several groups per row so that the grid has
/// about <see cref="ReductionGroupsPerSm"/> groups per SM, combined in the same launch (a second launch would cost more
/// than reading a 64 × 32000 tensor).
/// </summary>
public sealed partial class IlgpuKernels
{
    /// <summary>Groups per SM the split aims at (several resident groups keep enough 16-byte loads in flight).</summary>
    private const int ReductionGroupsPerSm = 8;

    /// <summary>Largest reduction group: 256 threads × 4 vectors covers a 4096-float row in one step.</summary>
    private const int ReductionMaxGroup = 256;

    private readonly Action<KernelConfig, ArrayView<Half8>, ArrayView<ushort>, ArrayView<ushort>, ArrayView<int>, ArrayView<int>, int, int, int, int>?[] reduceRows =
        new Action<KernelConfig, ArrayView<Half8>, ArrayView<ushort>, ArrayView<ushort>, ArrayView<int>, ArrayView<int>, int, int, int, int>?[6];

    private readonly Action<KernelConfig, ArrayView<Half8>, ArrayView<ushort>, ArrayView<long>, ArrayView<int>, ArrayView<int>, int, int, int>?[] argmaxRows =
        new Action<KernelConfig, ArrayView<Half8>, ArrayView<ushort>, ArrayView<long>, ArrayView<int>, ArrayView<int>, int, int, int>?[3];

    /// <summary>Per (row, chunk) partials of split rows; the row tickets (zero between launches) follow them.</summary>
    private MemoryBuffer1D<int, Stride1D.Dense>? reductionScratch;

    private readonly object reductionScratchLock = new();

    /// <summary>Launch bounds of the reduction kernels: at most 256 threads, 4 groups per SM (≤ 64 registers).</summary>
    private KernelSpecialization ReductionBounds => Bounds(ReductionMaxGroup, 4);

    /// <summary>
    /// The launch shape of a reduction over [rows, cols] with <paramref name="width"/> elements per 16-byte vector: the
    /// chunks per row (1 unless the rows are too few to fill the device, and never below one step of a warp,
    /// warp · <see cref="ReductionKernels.Unroll"/> vectors), and a group size covering one chunk in one step where it can.
    /// </summary>
    internal (KernelConfig Config, int Chunks) ReductionPlan(int rows, int cols, int width)
    {
        int warp = device.WarpSize;
        int maxGroup = Math.Max(warp, Math.Min(device.MaxGroupSize, ReductionMaxGroup) / warp * warp);
        long vectors = cols / width;
        long target = (long)ReductionGroupsPerSm * Math.Max(device.MultiprocessorCount, 2);
        long minChunk = (long)warp * ReductionKernels.Unroll;
        long chunks = Math.Clamp((target + rows - 1) / rows, 1, Math.Max(1, vectors / minChunk));
        long per = (vectors + chunks - 1) / chunks;
        long threads = (per + ReductionKernels.Unroll - 1) / ReductionKernels.Unroll;
        int group = (int)Math.Clamp((threads + warp - 1) / warp * warp, warp, maxGroup);
        return (new KernelConfig(CheckInt(rows * chunks, "rows"), group), (int)chunks);
    }

    /// <summary>The partials for <paramref name="slots"/> ints and the tickets of <paramref name="rows"/> rows, from a buffer kept between calls.</summary>
    private (ArrayView<int> Partials, ArrayView<int> Tickets) ReductionScratch(long slots, int rows)
    {
        lock (reductionScratchLock)
        {
            long partials = Math.Max(slots, 1L << 12);
            long need = partials + rows;
            if (reductionScratch is null || reductionScratch.Length < need)
            {
                if (reductionScratch is not null)
                {
                    // Earlier launches may still use the old buffer.
                    device.Synchronize();
                    reductionScratch.Dispose();
                }

                // The tickets must start at 0; the kernels leave them at 0.
                reductionScratch = device.Accelerator.Allocate1D<int>(Math.Max(need, 1L << 13));
                reductionScratch.MemSetToZero();
            }

            var all = reductionScratch.View.BaseView;
            long split = all.Length - rows;
            return (all.SubView(0, split), all.SubView(split, rows));
        }
    }

    /// <summary>The tensor as 16-byte vectors (a one-vector stand-in when it holds none: no row reads it then) and its phase.</summary>
    private (ArrayView<Half8> Vectors, int Phase) ReductionVectors<T>(ArrayView<T> x, int elementSize, int width, ArrayView<int> stand)
        where T : unmanaged
    {
        int phase = Phase(x, elementSize);
        var vectors = VectorView<T, Half8>(x, phase, width);
        return (vectors.Length != 0 ? vectors : stand.SubView(0, 4).Cast<Half8>(), phase);
    }

    /// <summary>Sum (mean) or amax of each row into <paramref name="output"/> (a float32 result as two words).</summary>
    private void ReduceRowsCore<T>(ArrayView<T> x, ArrayView<ushort> output, int rows, int cols, int format, bool max, int mean)
        where T : unmanaged
    {
        int elementSize = format == ReductionKernels.Float32Format ? sizeof(float) : sizeof(ushort);
        int width = ReductionKernels.Width(format);
        var (config, chunks) = ReductionPlan(rows, cols, width);
        var (partials, tickets) = ReductionScratch((long)rows * chunks, rows);
        var (vectors, phase) = ReductionVectors(x, elementSize, width, partials);
        int slot = format * 2 + (max ? 1 : 0);
        string name = nameof(ReductionKernels.ReduceRows) + "<" + FormatName(format) + (max ? ",max>" : ",sum>");
        device.Load(ref reduceRows[slot], name,
            acc => acc.LoadStreamKernel<ArrayView<Half8>, ArrayView<ushort>, ArrayView<ushort>, ArrayView<int>, ArrayView<int>, int, int, int, int>(
                ReduceRowsKernel(format, max), ReductionBounds))(
            config, vectors, x.Cast<ushort>(), output, partials, tickets, cols, phase, chunks, mean);
    }

    /// <summary>Arg-max of each row into <paramref name="output"/>.</summary>
    private void ArgmaxRowsCore<T>(ArrayView<T> x, ArrayView<long> output, int rows, int cols, int format)
        where T : unmanaged
    {
        if (cols > 0 && IsShortTopK(cols, 1))
        {
            // A short row's arg-max is its top 1 in the same order (NaN first, then the lower index): the k-round topk
            // kernel, whose PTX the driver compiles in a third of ArgmaxRows' time, and which a later short topk reuses.
            var (scratch, _) = ReductionScratch(rows, rows);
            if (format == ReductionKernels.Float32Format)
            {
                TopKRoundsF32(x.Cast<float>(), scratch.SubView(0, rows).Cast<float>(), output, rows, cols, 1);
            }
            else
            {
                TopKRounds16(x.Cast<ushort>(), scratch.SubView(0, (rows + 1) / 2).Cast<ushort>(), output, rows, cols, 1, format);
            }

            return;
        }

        int elementSize = format == ReductionKernels.Float32Format ? sizeof(float) : sizeof(ushort);
        int width = ReductionKernels.Width(format);
        var (config, chunks) = ReductionPlan(rows, cols, width);
        var (partials, tickets) = ReductionScratch(2L * rows * chunks, rows);
        var (vectors, phase) = ReductionVectors(x, elementSize, width, partials);
        string name = nameof(ReductionKernels.ArgmaxRows) + "<" + FormatName(format) + ">";
        device.Load(ref argmaxRows[format], name,
            acc => acc.LoadStreamKernel<ArrayView<Half8>, ArrayView<ushort>, ArrayView<long>, ArrayView<int>, ArrayView<int>, int, int, int>(
                ArgmaxRowsKernel(format), ReductionBounds))(
            config, vectors, x.Cast<ushort>(), output, partials, tickets, cols, phase, chunks);
    }

    private readonly Action<KernelConfig, ArrayView<uint>, ArrayView<ushort>, ArrayView<uint>, ArrayView<ushort>, ArrayView<long>, int, int>?[] topkRows =
        new Action<KernelConfig, ArrayView<uint>, ArrayView<ushort>, ArrayView<uint>, ArrayView<ushort>, ArrayView<long>, int, int>?[3];

    /// <summary>
    /// topk by radix selection (<see cref="TopKReductionKernels"/>), one group per row, when k ≤
    /// <see cref="TopKReductionKernels.MaxK"/>; false (nothing launched) otherwise. <paramref name="x32"/> /
    /// <paramref name="values32"/> are the float32 tensors as bits, <paramref name="x16"/> / <paramref name="values16"/> the
    /// 16-bit ones; the other format's pair is empty.
    /// </summary>
    private bool TryTopKRadix(ArrayView<uint> x32, ArrayView<ushort> x16, ArrayView<uint> values32, ArrayView<ushort> values16, ArrayView<long> indices,
        int rows, int cols, int k, int format)
    {
        int warp = device.WarpSize;
        int max = Math.Min(Math.Min(device.MaxGroupSize, TopKReductionKernels.MaxGroup), TopKReductionKernels.MaxWarps * warp) / warp * warp;
        if (k > TopKReductionKernels.MaxK || max < warp)
        {
            return false;
        }

        int group = (int)Math.Clamp(((long)cols + warp - 1) / warp * warp, warp, max);
        var (stand, _) = ReductionScratch(0, 1);
        device.Load(ref topkRows[format], nameof(TopKReductionKernels.TopKRows) + "<" + FormatName(format) + ">",
            acc => acc.LoadStreamKernel<ArrayView<uint>, ArrayView<ushort>, ArrayView<uint>, ArrayView<ushort>, ArrayView<long>, int, int>(
                format switch
                {
                    ReductionKernels.Float32Format => TopKReductionKernels.TopKRows<Float32Storage>,
                    0 => TopKReductionKernels.TopKRows<Float16Storage>,
                    _ => TopKReductionKernels.TopKRows<BFloat16Storage>,
                },
                Bounds(TopKReductionKernels.MaxGroup, null)))(
            new KernelConfig(rows, group),
            x32.Length != 0 ? x32 : stand.Cast<uint>(),
            x16.Length != 0 ? x16 : stand.Cast<ushort>(),
            values32.Length != 0 ? values32 : stand.Cast<uint>(),
            values16.Length != 0 ? values16 : stand.Cast<ushort>(),
            indices, cols, k);
        return true;
    }

    private static string FormatName(int format) => format == ReductionKernels.Float32Format ? "f32" : format != 0 ? "bf16" : "f16";

    private static Action<ArrayView<Half8>, ArrayView<ushort>, ArrayView<ushort>, ArrayView<int>, ArrayView<int>, int, int, int, int> ReduceRowsKernel(int format, bool max) =>
        (format, max) switch
        {
            (ReductionKernels.Float32Format, false) => ReductionKernels.ReduceRows<Float32Storage, SumReduction>,
            (ReductionKernels.Float32Format, true) => ReductionKernels.ReduceRows<Float32Storage, MaxReduction>,
            (0, false) => ReductionKernels.ReduceRows<Float16Storage, SumReduction>,
            (0, true) => ReductionKernels.ReduceRows<Float16Storage, MaxReduction>,
            (_, false) => ReductionKernels.ReduceRows<BFloat16Storage, SumReduction>,
            (_, true) => ReductionKernels.ReduceRows<BFloat16Storage, MaxReduction>,
        };

    private static Action<ArrayView<Half8>, ArrayView<ushort>, ArrayView<long>, ArrayView<int>, ArrayView<int>, int, int, int> ArgmaxRowsKernel(int format) =>
        format switch
        {
            ReductionKernels.Float32Format => ReductionKernels.ArgmaxRows<Float32Storage>,
            0 => ReductionKernels.ArgmaxRows<Float16Storage>,
            _ => ReductionKernels.ArgmaxRows<BFloat16Storage>,
        };
}
