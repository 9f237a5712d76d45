using System;
using ILGPU;
using ILGPU.Runtime;

namespace GemsInjector.Kernels.Ilgpu;

public sealed partial class IlgpuKernels
{
    private Action<KernelConfig, ArrayView<Half8>, ArrayView<Half8>, ArrayView<Half8>, ArrayView<float>, ArrayView<ushort>, AttentionShape, TensorCoreAttentionPointers, int>? attentionTensorCore16;

    /// <summary>
    /// Whether a 16-bit attention call goes to the tensor-core kernel (<see cref="AttentionTensorCoreKernels"/>): CUDA,
    /// tensor cores enabled (<see cref="TensorCoresEnabled"/>), head size <see cref="AttentionTensorCoreKernels.D"/>,
    /// q, k, v 16-byte aligned and the output 4-byte aligned.
    /// </summary>
    internal bool UsesTensorCoreAttention(ArrayView<ushort> q, ArrayView<ushort> k, ArrayView<ushort> v, ArrayView<ushort> output, int headDim) =>
        TensorCoresEnabled && device.Kind == IlgpuDeviceKind.Cuda && headDim == AttentionTensorCoreKernels.D
        && IsAligned(q, 16) && IsAligned(k, 16) && IsAligned(v, 16) && IsAligned(output, 4);

    /// <summary>Launch shape of the tensor-core attention: (⌈lq / BlockQ⌉, heads, batch) groups of 4 warps.</summary>
    internal static KernelConfig TensorCoreAttentionConfig(int batch, int heads, int lq) => new(
        new Index3D((lq + AttentionTensorCoreKernels.BlockQ - 1) / AttentionTensorCoreKernels.BlockQ, heads, batch),
        new Index3D(AttentionTensorCoreKernels.GroupSize, 1, 1),
        SharedMemoryConfig.RequestDynamic<ushort>(AttentionTensorCoreKernels.SharedBytes / sizeof(ushort)));

    /// <summary>Runs the tensor-core attention when <see cref="UsesTensorCoreAttention"/> says so; false (nothing launched) otherwise.</summary>
    private bool TryTensorCoreAttention16(ArrayView<ushort> q, ArrayView<ushort> k, ArrayView<ushort> v, ArrayView<float> mask, ArrayView<ushort> output,
        int batch, AttentionShape shape, HalfFormat format)
    {
        if (!UsesTensorCoreAttention(q, k, v, output, shape.D))
        {
            return false;
        }

        device.Load(ref attentionTensorCore16, nameof(AttentionTensorCoreKernels.Attention16TensorCore),
            acc => acc.LoadStreamKernel<ArrayView<Half8>, ArrayView<Half8>, ArrayView<Half8>, ArrayView<float>, ArrayView<ushort>, AttentionShape, TensorCoreAttentionPointers, int>(
                AttentionTensorCoreKernels.Attention16TensorCore, Bounds(AttentionTensorCoreKernels.GroupSize, null)))(
            TensorCoreAttentionConfig(batch, shape.Heads, shape.Lq), q.Cast<Half8>(), k.Cast<Half8>(), v.Cast<Half8>(), mask, output, shape,
            new TensorCoreAttentionPointers
            {
                Q = TensorCoreLaunch.DeviceAddress(q),
                K = TensorCoreLaunch.DeviceAddress(k),
                V = TensorCoreLaunch.DeviceAddress(v),
                Output = TensorCoreLaunch.DeviceAddress(output),
            },
            Bf(format));
        return true;
    }
}
