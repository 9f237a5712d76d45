using System;
using ILGPU;
using ILGPU.Runtime;

namespace GemsInjector.Kernels.Ilgpu;

public sealed partial class IlgpuKernels
{
    private readonly Action<KernelConfig, ArrayView<Float4>, ArrayView<Float4>, ArrayView<Float4>, ArrayView<float>, ArrayView<Float4>, AttentionShape>?[] attentionTiledF32 =
        new Action<KernelConfig, ArrayView<Float4>, ArrayView<Float4>, ArrayView<Float4>, ArrayView<float>, ArrayView<Float4>, AttentionShape>?[2];

    private int? tiledAttentionSharedLimit;

    /// <summary>
    /// Whether a float32 prefill goes to the register-tiled kernel (<see cref="AttentionTiledKernels"/>): CUDA, warps of
    /// 32, head size 64 or 128, q, k, v and the output 16-byte aligned, its shared memory within the group limit
    /// (<see cref="Sm90aPtx.SharedLimit"/>) and its query blocks within a grid's second dimension.
    /// </summary>
    internal bool UsesTiledAttentionF32(ArrayView<float> q, ArrayView<float> k, ArrayView<float> v, ArrayView<float> output, int lq, int headDim) =>
        device.Kind == IlgpuDeviceKind.Cuda && device.WarpSize == 32 && AttentionTiledKernels.HasHeadSize(headDim)
        && IsAligned(q, 16) && IsAligned(k, 16) && IsAligned(v, 16) && IsAligned(output, 16)
        && ((long)lq + AttentionTiledKernels.BlockQ - 1) / AttentionTiledKernels.BlockQ <= ushort.MaxValue
        && AttentionTiledKernels.SharedBytes(headDim / 32) <= (tiledAttentionSharedLimit ??= Sm90aPtx.SharedLimit(device.Accelerator));

    /// <summary>
    /// Launch shape of the tiled float32 prefill: (heads, ⌈lq / <see cref="AttentionTiledKernels.BlockQ"/>⌉, batch)
    /// groups of <see cref="AttentionTiledKernels.Threads"/>, heads first so that the first groups to start are every
    /// head's longest causal blocks.
    /// </summary>
    internal static KernelConfig TiledAttentionConfig(int batch, int heads, int lq, int headDim) => new(
        new Index3D(heads, (lq + AttentionTiledKernels.BlockQ - 1) / AttentionTiledKernels.BlockQ, batch),
        new Index3D(AttentionTiledKernels.Threads, 1, 1),
        SharedMemoryConfig.RequestDynamic<Float4>(AttentionTiledKernels.SharedBytes(headDim / 32) / 16));

    /// <summary>Runs the tiled float32 prefill when <see cref="UsesTiledAttentionF32"/> says so; false (nothing launched) otherwise.</summary>
    private bool TryTiledAttentionF32(ArrayView<float> q, ArrayView<float> k, ArrayView<float> v, ArrayView<float> mask, ArrayView<float> output,
        int batch, AttentionShape shape)
    {
        if (!UsesTiledAttentionF32(q, k, v, output, shape.Lq, shape.D))
        {
            return false;
        }

        var bounds = Bounds(AttentionTiledKernels.Threads, AttentionTiledKernels.GroupsPerSm);
        int slot = shape.D == 128 ? 1 : 0;
        var name = $"{nameof(AttentionTiledKernels.AttentionTiledF32)}<{(slot == 1 ? nameof(Const4) : nameof(Const2))}>";
        var kernel = slot == 1
            ? device.Load(ref attentionTiledF32[slot], name, acc => acc.LoadStreamKernel<ArrayView<Float4>, ArrayView<Float4>, ArrayView<Float4>, ArrayView<float>, ArrayView<Float4>, AttentionShape>(
                AttentionTiledKernels.AttentionTiledF32<Const4>, bounds))
            : device.Load(ref attentionTiledF32[slot], name, acc => acc.LoadStreamKernel<ArrayView<Float4>, ArrayView<Float4>, ArrayView<Float4>, ArrayView<float>, ArrayView<Float4>, AttentionShape>(
                AttentionTiledKernels.AttentionTiledF32<Const2>, bounds));
        kernel(TiledAttentionConfig(batch, shape.Heads, shape.Lq, shape.D), q.Cast<Float4>(), k.Cast<Float4>(), v.Cast<Float4>(), mask, output.Cast<Float4>(), shape);
        return true;
    }
}
