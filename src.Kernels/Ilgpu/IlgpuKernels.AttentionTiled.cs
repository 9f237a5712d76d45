using System;
using ILGPU;
using ILGPU.Runtime;

namespace GemsInjector.Kernels.Ilgpu;

public sealed partial class IlgpuKernels
{
    private readonly Action<KernelConfig, ArrayView<Float4>, ArrayView<Float4>, ArrayView<Float4>, ArrayView<float>, ArrayView<Float4>, ArrayView<Float4>, ArrayView<float>, AttentionShape, TiledSplit>?[] attentionTiledF32 =
        new Action<KernelConfig, ArrayView<Float4>, ArrayView<Float4>, ArrayView<Float4>, ArrayView<float>, ArrayView<Float4>, ArrayView<Float4>, ArrayView<float>, AttentionShape, TiledSplit>?[2];

    private readonly Action<KernelConfig, ArrayView<Half8>, ArrayView<Half8>, ArrayView<Half8>, ArrayView<float>, ArrayView<uint>, ArrayView<Float4>, ArrayView<float>, AttentionShape, TiledSplit>?[] attentionTiled16 =
        new Action<KernelConfig, ArrayView<Half8>, ArrayView<Half8>, ArrayView<Half8>, ArrayView<float>, ArrayView<uint>, ArrayView<Float4>, ArrayView<float>, AttentionShape, TiledSplit>?[4];

    /// <summary>
    /// The most (batch × head × query) pairs of a few-query float32 call that run as decode heads where the tiled prefill
    /// takes the rest. Over 4096 keys with 32 heads (H200, Run 185) the decode heads cost 9 µs + 0.153 µs per pair (87.5 µs
    /// at 512, 323 at 2048), the split tiled prefill 223 µs whatever the queries up to 64 (one 64-query block per head):
    /// the two cross at about 1400.
    /// </summary>
    internal const int TiledPrefillQueryPairs = 1408;

    private int? tiledAttentionSharedLimit;

    /// <summary>
    /// Whether a prefill goes to the register-tiled kernels (<see cref="AttentionTiledKernels"/>): CUDA, warps of 32,
    /// head size 64 or 128, q, k, v and the output 16-byte aligned, its shared memory within the group limit
    /// (<see cref="Sm90aPtx.SharedLimit"/>) and its query blocks within a grid's second dimension.
    /// </summary>
    internal bool UsesTiledAttention<T>(ArrayView<T> q, ArrayView<T> k, ArrayView<T> v, ArrayView<T> output, int lq, int headDim)
        where T : unmanaged =>
        device.Kind == IlgpuDeviceKind.Cuda && device.WarpSize == 32 && AttentionTiledKernels.HasHeadSize(headDim)
        && IsAligned(q, 16) && IsAligned(k, 16) && IsAligned(v, 16) && IsAligned(output, 16)
        && ((long)lq + AttentionTiledKernels.BlockQ - 1) / AttentionTiledKernels.BlockQ <= ushort.MaxValue
        && AttentionTiledKernels.SharedBytes(headDim / 32) <= (tiledAttentionSharedLimit ??= Sm90aPtx.SharedLimit(device.Accelerator));

    /// <summary>
    /// Launch shape of the tiled float32 prefill: (heads, ⌈lq / <see cref="AttentionTiledKernels.BlockQ"/>⌉, batch)
    /// groups of <see cref="AttentionTiledKernels.Threads"/>, heads first so that the first groups to start are every
    /// head's longest causal blocks; with key ranges, the third dimension is batch × ranges.
    /// </summary>
    internal static KernelConfig TiledAttentionConfig(int batch, int heads, int lq, int headDim, int ranges = 1) => new(
        new Index3D(heads, (lq + AttentionTiledKernels.BlockQ - 1) / AttentionTiledKernels.BlockQ, batch * ranges),
        new Index3D(AttentionTiledKernels.Threads, 1, 1),
        SharedMemoryConfig.RequestDynamic<Float4>(AttentionTiledKernels.SharedBytes(headDim / 32) / 16));

    /// <summary>
    /// How a tiled prefill splits its keys (<see cref="PrefillKeyRanges"/> at <see cref="AttentionTiledKernels.GroupsPerSm"/>
    /// groups per SM).
    /// </summary>
    internal static TiledSplit TiledPrefillRanges(int batch, AttentionShape shape, int multiprocessors)
    {
        var (ranges, keys) = PrefillKeyRanges(batch, shape, (long)multiprocessors * AttentionTiledKernels.GroupsPerSm,
            AttentionTiledKernels.BlockQ, AttentionTiledKernels.BlockK);
        return ranges == 1 ? TiledSplit.Whole(shape.Lk) : new TiledSplit { Keys = keys, Count = ranges };
    }

    /// <summary>
    /// Runs the tiled float32 prefill when <see cref="UsesTiledAttention"/> says so; false (nothing launched) otherwise.
    /// </summary>
    private bool TryTiledAttentionF32(ArrayView<float> q, ArrayView<float> k, ArrayView<float> v, ArrayView<float> mask, ArrayView<float> output,
        int batch, AttentionShape shape)
    {
        if (!UsesTiledAttention(q, k, v, output, shape.Lq, shape.D))
        {
            return false;
        }

        var bounds = Bounds(AttentionTiledKernels.Threads, AttentionTiledKernels.GroupsPerSm);
        int slot = shape.D == 128 ? 1 : 0;
        var name = $"{nameof(AttentionTiledKernels.AttentionTiledF32)}<{(slot == 1 ? nameof(Const4) : nameof(Const2))}>";
        var kernel = slot == 1
            ? device.Load(ref attentionTiledF32[slot], name, acc => acc.LoadStreamKernel<ArrayView<Float4>, ArrayView<Float4>, ArrayView<Float4>, ArrayView<float>, ArrayView<Float4>, ArrayView<Float4>, ArrayView<float>, AttentionShape, TiledSplit>(
                AttentionTiledKernels.AttentionTiledF32<Const4>, bounds))
            : device.Load(ref attentionTiledF32[slot], name, acc => acc.LoadStreamKernel<ArrayView<Float4>, ArrayView<Float4>, ArrayView<Float4>, ArrayView<float>, ArrayView<Float4>, ArrayView<Float4>, ArrayView<float>, AttentionShape, TiledSplit>(
                AttentionTiledKernels.AttentionTiledF32<Const2>, bounds));
        RunTiled(batch, shape,
            (config, partO, partML, split) => kernel(config, q.Cast<Float4>(), k.Cast<Float4>(), v.Cast<Float4>(), mask, output.Cast<Float4>(), partO, partML, shape, split),
            (partO, partML, rows, ranges) => CombineDecodeF32(partO, partML, output, batch, rows, ranges, threadsPerHead: shape.D));
        return true;
    }

    /// <summary>
    /// Runs the tiled 16-bit prefill (<see cref="AttentionTiledKernels.AttentionTiled16{TDimQuads, TFormat}"/>) when
    /// <see cref="UsesTiledAttention"/> says so; false (nothing launched) otherwise.
    /// </summary>
    private bool TryTiledAttention16(ArrayView<ushort> q, ArrayView<ushort> k, ArrayView<ushort> v, ArrayView<float> mask, ArrayView<ushort> output,
        int batch, AttentionShape shape, HalfFormat format)
    {
        if (!UsesTiledAttention(q, k, v, output, shape.Lq, shape.D))
        {
            return false;
        }

        var bounds = Bounds(AttentionTiledKernels.Threads, AttentionTiledKernels.GroupsPerSm);
        bool wide = shape.D == 128;
        bool bf16 = format == HalfFormat.BFloat16;
        int slot = (wide ? 2 : 0) + (bf16 ? 1 : 0);
        var name = $"{nameof(AttentionTiledKernels.AttentionTiled16)}<{(wide ? nameof(Const4) : nameof(Const2))},{(bf16 ? nameof(BFloat16Storage) : nameof(Float16Storage))}>";
        var kernel = device.Load(ref attentionTiled16[slot], name, acc => acc.LoadStreamKernel<ArrayView<Half8>, ArrayView<Half8>, ArrayView<Half8>, ArrayView<float>, ArrayView<uint>, ArrayView<Float4>, ArrayView<float>, AttentionShape, TiledSplit>(
            (wide, bf16) switch
            {
                (true, true) => AttentionTiledKernels.AttentionTiled16<Const4, BFloat16Storage>,
                (true, false) => AttentionTiledKernels.AttentionTiled16<Const4, Float16Storage>,
                (false, true) => AttentionTiledKernels.AttentionTiled16<Const2, BFloat16Storage>,
                (false, false) => AttentionTiledKernels.AttentionTiled16<Const2, Float16Storage>,
            },
            bounds));
        RunTiled(batch, shape,
            (config, partO, partML, split) => kernel(config, q.Cast<Half8>(), k.Cast<Half8>(), v.Cast<Half8>(), mask, output.Cast<uint>(), partO, partML, shape, split),
            (partO, partML, rows, ranges) => CombineDecode16(partO, partML, output, batch, rows, ranges, format, threadsPerHead: shape.D));
        return true;
    }

    /// <summary>
    /// One tiled prefill call: whole, or split per <see cref="TiledPrefillRanges"/> into partials that
    /// <paramref name="combine"/> merges over the query rows as heads (one thread per dim).
    /// </summary>
    private void RunTiled(int batch, AttentionShape shape, Action<KernelConfig, ArrayView<Float4>, ArrayView<float>, TiledSplit> launch,
        Action<ArrayView<float>, ArrayView<float>, AttentionShape, int> combine)
    {
        var split = TiledPrefillRanges(batch, shape, device.MultiprocessorCount);
        var config = TiledAttentionConfig(batch, shape.Heads, shape.Lq, shape.D, split.Count);
        if (split.Count == 1)
        {
            launch(config, ArrayView<Float4>.Empty, ArrayView<float>.Empty, split);
            return;
        }

        var rows = QueryRowsAsHeads(shape);
        var (partO, partML) = DecodePartials((long)batch * rows.Heads * split.Count, shape.D);
        launch(config, partO.Cast<Float4>(), partML, split);
        combine(partO, partML, rows, split.Count);
    }
}
