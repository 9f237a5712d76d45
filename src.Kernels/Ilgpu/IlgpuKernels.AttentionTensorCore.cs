using System;
using ILGPU;
using ILGPU.Runtime;

namespace GemsInjector.Kernels.Ilgpu;

public sealed partial class IlgpuKernels
{
    private Action<KernelConfig, ArrayView<Half8>, ArrayView<Half8>, ArrayView<Half8>, ArrayView<float>, ArrayView<ushort>, AttentionShape, TensorCoreAttentionPointers, int>? attentionTensorCore16;
    private Action<KernelConfig, ArrayView<Half8>, ArrayView<Half8>, ArrayView<Half8>, ArrayView<ushort>, AttentionShape, TensorCoreAttentionPointers, int>? attentionTensorCoreRegisters16;
    private Action<KernelConfig, ArrayView<Half8>, ArrayView<Half8>, ArrayView<Half8>, ArrayView<ushort>, AttentionShape, TensorCoreAttentionPointers, int>? attentionTensorCoreRegistersThreePerSm16;
    private Action<KernelConfig, ArrayView<Half8>, ArrayView<Half8>, ArrayView<Half8>, ArrayView<ushort>, AttentionShape, TensorCoreAttentionPointers, int>? attentionTensorCoreRegistersEightWarps16;
    private Action<KernelConfig, ArrayView<Half8>, ArrayView<Half8>, ArrayView<Half8>, ArrayView<ushort>, AttentionShape, TensorCoreAttentionPointers, int>? attentionTensorCoreWide16;

    /// <summary>
    /// Whether a 16-bit attention call goes to the tensor-core kernel (<see cref="AttentionTensorCoreKernels"/>): CUDA,
    /// tensor cores enabled (<see cref="TensorCoresEnabled"/>), head size <see cref="AttentionTensorCoreKernels.D"/>,
    /// q, k, v 16-byte aligned and the output 4-byte aligned.
    /// </summary>
    internal bool UsesTensorCoreAttention(ArrayView<ushort> q, ArrayView<ushort> k, ArrayView<ushort> v, ArrayView<ushort> output, int headDim) =>
        TensorCoresEnabled && device.Kind == IlgpuDeviceKind.Cuda && headDim == AttentionTensorCoreKernels.D
        && IsAligned(q, 16) && IsAligned(k, 16) && IsAligned(v, 16) && IsAligned(output, 4);

    /// <summary>
    /// Launch shape of the tensor-core attention: (⌈lq / (16 · warps)⌉, heads, batch) groups of <paramref name="warps"/>
    /// warps (16 query rows each) with <paramref name="sharedBytes"/> of dynamic shared memory (the shared variant's by default).
    /// </summary>
    internal static KernelConfig TensorCoreAttentionConfig(int batch, int heads, int lq, int sharedBytes = AttentionTensorCoreKernels.SharedBytes,
        int warps = AttentionTensorCoreKernels.Warps) => new(
        new Index3D((lq + (16 * warps) - 1) / (16 * warps), heads, batch),
        new Index3D(warps * 32, 1, 1),
        SharedMemoryConfig.RequestDynamic<ushort>(sharedBytes / sizeof(ushort)));

    /// <summary>
    /// Runs the tensor-core attention when <see cref="UsesTensorCoreAttention"/> says so; false (nothing launched)
    /// otherwise. The variant comes from <see cref="PrefillVariants.FromEnvironment"/>; an additive mask always takes the
    /// shared variant (the register variant has no mask).
    /// </summary>
    private bool TryTensorCoreAttention16(ArrayView<ushort> q, ArrayView<ushort> k, ArrayView<ushort> v, ArrayView<float> mask, ArrayView<ushort> output,
        int batch, AttentionShape shape, HalfFormat format)
    {
        if (!UsesTensorCoreAttention(q, k, v, output, shape.D))
        {
            return false;
        }

        var pointers = new TensorCoreAttentionPointers
        {
            Q = TensorCoreLaunch.DeviceAddress(q),
            K = TensorCoreLaunch.DeviceAddress(k),
            V = TensorCoreLaunch.DeviceAddress(v),
            Output = TensorCoreLaunch.DeviceAddress(output),
        };
        var variant = shape.HasMask != 0 ? PrefillVariant.Shared : PrefillVariants.FromEnvironment();
        if (variant == PrefillVariant.Shared)
        {
            device.Load(ref attentionTensorCore16, nameof(AttentionTensorCoreKernels.Attention16TensorCore),
                acc => acc.LoadStreamKernel<ArrayView<Half8>, ArrayView<Half8>, ArrayView<Half8>, ArrayView<float>, ArrayView<ushort>, AttentionShape, TensorCoreAttentionPointers, int>(
                    AttentionTensorCoreKernels.Attention16TensorCore, Bounds(AttentionTensorCoreKernels.GroupSize, null)))(
                TensorCoreAttentionConfig(batch, shape.Heads, shape.Lq), q.Cast<Half8>(), k.Cast<Half8>(), v.Cast<Half8>(), mask, output, shape, pointers, Bf(format));
            return true;
        }

        if (variant == PrefillVariant.Wide)
        {
            device.Load(ref attentionTensorCoreWide16, nameof(AttentionTensorCoreKernels.Attention16TensorCoreWide),
                acc => acc.LoadStreamKernel<ArrayView<Half8>, ArrayView<Half8>, ArrayView<Half8>, ArrayView<ushort>, AttentionShape, TensorCoreAttentionPointers, int>(
                    AttentionTensorCoreKernels.Attention16TensorCoreWide, Bounds(AttentionTensorCoreKernels.GroupSize, null)))(
                TensorCoreAttentionConfig(batch, shape.Heads, shape.Lq, AttentionTensorCoreKernels.RegisterSharedBytes), q.Cast<Half8>(), k.Cast<Half8>(), v.Cast<Half8>(),
                output, shape, pointers, Bf(format));
            return true;
        }

        // Launch-bound flavours of one kernel, each loaded (and cached) under its own field.
        int warps = variant == PrefillVariant.RegistersEightWarps ? 8 : AttentionTensorCoreKernels.Warps;
        int? groupsPerSm = variant == PrefillVariant.RegistersThreePerSm ? 3 : null;
        ref var launcher = ref variant == PrefillVariant.RegistersThreePerSm ? ref attentionTensorCoreRegistersThreePerSm16
            : ref variant == PrefillVariant.RegistersEightWarps ? ref attentionTensorCoreRegistersEightWarps16 : ref attentionTensorCoreRegisters16;
        device.Load(ref launcher, nameof(AttentionTensorCoreKernels.Attention16TensorCoreRegisters),
            acc => acc.LoadStreamKernel<ArrayView<Half8>, ArrayView<Half8>, ArrayView<Half8>, ArrayView<ushort>, AttentionShape, TensorCoreAttentionPointers, int>(
                AttentionTensorCoreKernels.Attention16TensorCoreRegisters, Bounds(warps * 32, groupsPerSm)))(
            TensorCoreAttentionConfig(batch, shape.Heads, shape.Lq, AttentionTensorCoreKernels.RegisterSharedBytes, warps), q.Cast<Half8>(), k.Cast<Half8>(), v.Cast<Half8>(),
            output, shape, pointers, Bf(format));
        return true;
    }
}

/// <summary>Which tensor-core prefill attention kernel a 16-bit call without an additive mask runs.</summary>
internal enum PrefillVariant
{
    /// <summary>Scores, weights and row statistics in the warp's shared area (Attempt 2's kernel; also every masked call).</summary>
    Shared = 0,

    /// <summary>Scores, softmax and weights in registers, 32-key tiles in two stages, no launch bound on the registers.</summary>
    Registers = 1,

    /// <summary>The register kernel bounded to three groups per SM (at most 168 registers per thread).</summary>
    RegistersThreePerSm = 2,

    /// <summary>The register kernel with groups of 8 warps (128 queries share each K/V tile: half the K/V traffic), no register bound.</summary>
    RegistersEightWarps = 3,

    /// <summary>
    /// Registers as <see cref="Registers"/>, 64-key tiles in one K and one V buffer, the K copy of the next tile during
    /// P·V and the V copy during the scores: two group barriers per 64 keys instead of four.
    /// </summary>
    Wide = 4,
}

/// <summary>Names and the environment default of <see cref="PrefillVariant"/>.</summary>
internal static class PrefillVariants
{
    /// <summary>Environment variable naming the variant for a measuring run: <c>shared</c>, <c>registers</c>, <c>registers3</c>, <c>registers8</c> or <c>wide</c>.</summary>
    public const string Variable = "GEMS_PREFILL_VARIANT";

    private static readonly Lazy<PrefillVariant> FromVariable = new(() => Parse(Environment.GetEnvironmentVariable(Variable)));

    /// <summary>The variant the environment names (read once per process), or the default.</summary>
    public static PrefillVariant FromEnvironment() => FromVariable.Value;

    /// <summary>
    /// The variant a setting names (case and surrounding spaces ignored); unset, empty or unknown:
    /// <see cref="PrefillVariant.RegistersThreePerSm"/>, the fastest on the H200 (Run 15: bf16 causal 4096 tokens 0.814 ms
    /// against 0.848 wide, 0.857 registers, 0.899 registers8 and 0.934 for the shared-memory kernel).
    /// </summary>
    public static PrefillVariant Parse(string? setting) => setting?.Trim().ToLowerInvariant() switch
    {
        "shared" => PrefillVariant.Shared,
        "wide" => PrefillVariant.Wide,
        "registers" => PrefillVariant.Registers,
        "registers8" => PrefillVariant.RegistersEightWarps,
        _ => PrefillVariant.RegistersThreePerSm,
    };
}
