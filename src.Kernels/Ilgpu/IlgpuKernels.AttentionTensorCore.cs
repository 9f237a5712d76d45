using System;
using ILGPU;
using ILGPU.Runtime;

namespace GemsInjector.Kernels.Ilgpu;

public sealed partial class IlgpuKernels
{
    private Action<KernelConfig, ArrayView<Half8>, ArrayView<Half8>, ArrayView<Half8>, ArrayView<float>, ArrayView<ushort>, AttentionShape, TensorCoreAttentionPointers, int>? attentionTensorCore16;
    private readonly Action<KernelConfig, ArrayView<Half8>, ArrayView<Half8>, ArrayView<Half8>, ArrayView<ushort>, AttentionShape, TensorCoreAttentionPointers, int>?[] attentionTensorCoreRegisters16 =
        new Action<KernelConfig, ArrayView<Half8>, ArrayView<Half8>, ArrayView<Half8>, ArrayView<ushort>, AttentionShape, TensorCoreAttentionPointers, int>?[2];
    private readonly Action<KernelConfig, ArrayView<Half8>, ArrayView<Half8>, ArrayView<Half8>, AttentionShape, TensorCoreAttentionPointers, PrefillSplit, int>?[] attentionTensorCoreRegistersSplit16 =
        new Action<KernelConfig, ArrayView<Half8>, ArrayView<Half8>, ArrayView<Half8>, AttentionShape, TensorCoreAttentionPointers, PrefillSplit, int>?[2];
    private Action<KernelConfig, ArrayView<ushort>, ArrayView<ushort>, ArrayView<ushort>, ArrayView<ushort>, AttentionShape, TensorCoreAttentionPointers>? attentionWgmmaBf16;
    private Action<KernelConfig, ArrayView<ushort>, ArrayView<ushort>, ArrayView<ushort>, ArrayView<ushort>, AttentionShape, TensorCoreAttentionPointers>? attentionWgmmaF16;
    private readonly Action<KernelConfig, ArrayView<ushort>, ArrayView<ushort>, ArrayView<ushort>, AttentionShape, TensorCoreAttentionPointers, PrefillSplit>?[] attentionWgmmaSplit =
        new Action<KernelConfig, ArrayView<ushort>, ArrayView<ushort>, ArrayView<ushort>, AttentionShape, TensorCoreAttentionPointers, PrefillSplit>?[2];

    /// <summary>
    /// The fewest key tiles per range of a split prefill (<see cref="PrefillKeyRanges"/>): four, so that a group's query
    /// load and pipeline fill stay a small part of its walk.
    /// </summary>
    internal const int PrefillRangeTiles = 4;

    // Set once the wgmma prefill failed to load: the process then keeps the register variant.
    private bool attentionWgmmaFailed;

    /// <summary>
    /// Whether a 16-bit attention call goes to the tensor-core kernels (<see cref="AttentionTensorCoreKernels"/>): CUDA,
    /// tensor cores enabled (<see cref="TensorCoresEnabled"/>), head size <see cref="AttentionTensorCoreKernels.D"/>, or 64
    /// without an additive mask (only the register variant has head size 64), q, k, v 16-byte aligned and the output
    /// 4-byte aligned.
    /// </summary>
    internal bool UsesTensorCoreAttention(ArrayView<ushort> q, ArrayView<ushort> k, ArrayView<ushort> v, ArrayView<ushort> output, int headDim, bool masked) =>
        TensorCoresEnabled && device.Kind == IlgpuDeviceKind.Cuda
        && (headDim == AttentionTensorCoreKernels.D || (!masked && AttentionTensorCoreKernels.RegistersHaveHeadSize(headDim)))
        && IsAligned(q, 16) && IsAligned(k, 16) && IsAligned(v, 16) && IsAligned(output, 4);

    /// <summary>
    /// Launch shape of the tensor-core attention: (⌈lq / <see cref="AttentionTensorCoreKernels.BlockQ"/>⌉, heads, batch)
    /// groups of <see cref="AttentionTensorCoreKernels.GroupSize"/> threads (16 query rows per warp) with
    /// <paramref name="sharedBytes"/> of dynamic shared memory (the shared-memory kernel's by default).
    /// </summary>
    internal static KernelConfig TensorCoreAttentionConfig(int batch, int heads, int lq, int sharedBytes = AttentionTensorCoreKernels.SharedBytes) => new(
        new Index3D((lq + AttentionTensorCoreKernels.BlockQ - 1) / AttentionTensorCoreKernels.BlockQ, heads, batch),
        new Index3D(AttentionTensorCoreKernels.GroupSize, 1, 1),
        SharedMemoryConfig.RequestDynamic<ushort>(sharedBytes / sizeof(ushort)));

    /// <summary>
    /// Runs the tensor-core attention when <see cref="UsesTensorCoreAttention"/> says so; false (nothing launched)
    /// otherwise. The variant comes from <see cref="PrefillVariants.FromEnvironment"/>; an additive mask always takes the
    /// shared variant (the register variant has no mask); head size 64 always takes the register variant (the others
    /// have head size <see cref="AttentionTensorCoreKernels.D"/> only).
    /// </summary>
    private bool TryTensorCoreAttention16(ArrayView<ushort> q, ArrayView<ushort> k, ArrayView<ushort> v, ArrayView<float> mask, ArrayView<ushort> output,
        int batch, AttentionShape shape, HalfFormat format)
    {
        if (!UsesTensorCoreAttention(q, k, v, output, shape.D, shape.HasMask != 0))
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
        if (variant == PrefillVariant.Wgmma)
        {
            if (TryWgmmaAttention16(q, k, v, output, batch, shape, pointers, format))
            {
                return true;
            }

            variant = PrefillVariant.Registers;
        }

        if (variant == PrefillVariant.Shared && shape.D == AttentionTensorCoreKernels.D)
        {
            device.Load(ref attentionTensorCore16, nameof(AttentionTensorCoreKernels.Attention16TensorCore),
                acc => acc.LoadStreamKernel<ArrayView<Half8>, ArrayView<Half8>, ArrayView<Half8>, ArrayView<float>, ArrayView<ushort>, AttentionShape, TensorCoreAttentionPointers, int>(
                    AttentionTensorCoreKernels.Attention16TensorCore, Bounds(AttentionTensorCoreKernels.GroupSize, null)))(
                TensorCoreAttentionConfig(batch, shape.Heads, shape.Lq), q.Cast<Half8>(), k.Cast<Half8>(), v.Cast<Half8>(), mask, output, shape, pointers, Bf(format));
            return true;
        }

        bool wide = shape.D == AttentionTensorCoreKernels.D;
        var bounds = Bounds(AttentionTensorCoreKernels.GroupSize, RegisterGroupsPerSm(shape.D));
        string dim = wide ? nameof(Const4) : nameof(Const2);
        var (ranges, rangeKeys) = RegisterPrefillRanges(batch, shape, device.MultiprocessorCount);
        if (ranges > 1)
        {
            var split = device.Load(ref attentionTensorCoreRegistersSplit16[wide ? 1 : 0], $"{nameof(AttentionTensorCoreKernels.Attention16TensorCoreRegistersSplit)}<{dim}>",
                acc => acc.LoadStreamKernel<ArrayView<Half8>, ArrayView<Half8>, ArrayView<Half8>, AttentionShape, TensorCoreAttentionPointers, PrefillSplit, int>(
                    wide ? AttentionTensorCoreKernels.Attention16TensorCoreRegistersSplit<Const4> : AttentionTensorCoreKernels.Attention16TensorCoreRegistersSplit<Const2>, bounds));
            var rows = QueryRowsAsHeads(shape);
            var (partO, partML) = DecodePartials((long)batch * rows.Heads * ranges, shape.D);
            var plan = new PrefillSplit
            {
                Keys = rangeKeys,
                Count = ranges,
                PartO = TensorCoreLaunch.DeviceAddress(partO),
                PartML = TensorCoreLaunch.DeviceAddress(partML),
            };
            split(AttentionTensorCoreKernels.RegistersSplitConfig(batch, shape.Heads, shape.Lq, ranges, shape.D), q.Cast<Half8>(), k.Cast<Half8>(), v.Cast<Half8>(),
                shape, pointers, plan, Bf(format));
            CombineDecode16(partO, partML, output, batch, rows, ranges, format, threadsPerHead: shape.D);
            return true;
        }

        var registers = device.Load(ref attentionTensorCoreRegisters16[wide ? 1 : 0], $"{nameof(AttentionTensorCoreKernels.Attention16TensorCoreRegisters)}<{dim}>",
            acc => acc.LoadStreamKernel<ArrayView<Half8>, ArrayView<Half8>, ArrayView<Half8>, ArrayView<ushort>, AttentionShape, TensorCoreAttentionPointers, int>(
                wide ? AttentionTensorCoreKernels.Attention16TensorCoreRegisters<Const4> : AttentionTensorCoreKernels.Attention16TensorCoreRegisters<Const2>, bounds));
        registers(TensorCoreAttentionConfig(batch, shape.Heads, shape.Lq, AttentionTensorCoreKernels.RegisterSharedBytes(shape.D)), q.Cast<Half8>(), k.Cast<Half8>(),
            v.Cast<Half8>(), output, shape, pointers, Bf(format));
        return true;
    }

    /// <summary>
    /// Groups per SM the register variant's launch bounds ask for at head size <paramref name="headDim"/>: three at 128 (≤ 168
    /// registers; 5% faster than unbounded on the H200 though ptxas spills 40 bytes), four at 64 (half the accumulators and
    /// Q fragments; ≤ 128 registers, 123 used in Run 188).
    /// </summary>
    internal static int RegisterGroupsPerSm(int headDim) => headDim == AttentionTensorCoreKernels.D ? 3 : 4;

    /// <summary>
    /// How many key ranges a register-variant prefill call is split into, and their keys (<see cref="PrefillKeyRanges"/> at
    /// <see cref="RegisterGroupsPerSm"/> groups per SM).
    /// </summary>
    internal static (int Ranges, int Keys) RegisterPrefillRanges(int batch, AttentionShape shape, int multiprocessors) =>
        PrefillKeyRanges(batch, shape, (long)multiprocessors * RegisterGroupsPerSm(shape.D), AttentionTensorCoreKernels.BlockQ, AttentionTensorCoreKernels.BlockK);

    /// <summary>
    /// The wgmma prefill (<see cref="AttentionWgmmaKernels"/>, <c>GEMS_PREFILL_VARIANT=wgmma</c>): only on a CUDA device
    /// of compute capability 9.0 (sm_90a) and only while it has not failed to load; false (nothing launched) otherwise.
    /// </summary>
    private bool TryWgmmaAttention16(ArrayView<ushort> q, ArrayView<ushort> k, ArrayView<ushort> v, ArrayView<ushort> output, int batch, AttentionShape shape,
        TensorCoreAttentionPointers pointers, HalfFormat format)
    {
        if (!UsesWgmmaPrefill(shape.D))
        {
            return false;
        }

        Action<KernelConfig, ArrayView<ushort>, ArrayView<ushort>, ArrayView<ushort>, ArrayView<ushort>, AttentionShape, TensorCoreAttentionPointers> kernel;
        try
        {
            var bounds = Bounds(AttentionWgmmaKernels.GroupSize, null);
            kernel = Bf(format) != 0
                ? device.Load(ref attentionWgmmaBf16, $"{nameof(AttentionWgmmaKernels.Attention16Wgmma)}:{nameof(PrefillBf16)}",
                    acc => acc.LoadStreamKernel<ArrayView<ushort>, ArrayView<ushort>, ArrayView<ushort>, ArrayView<ushort>, AttentionShape, TensorCoreAttentionPointers>(
                        AttentionWgmmaKernels.Attention16Wgmma<PrefillBf16>, bounds))
                : device.Load(ref attentionWgmmaF16, $"{nameof(AttentionWgmmaKernels.Attention16Wgmma)}:{nameof(PrefillF16)}",
                    acc => acc.LoadStreamKernel<ArrayView<ushort>, ArrayView<ushort>, ArrayView<ushort>, ArrayView<ushort>, AttentionShape, TensorCoreAttentionPointers>(
                        AttentionWgmmaKernels.Attention16Wgmma<PrefillF16>, bounds));
        }
        catch (IlgpuKernelCompileException)
        {
            // The failure stays recorded on the device (IlgpuDevice.Load); calls go to the register variant.
            attentionWgmmaFailed = true;
            return false;
        }

        var (ranges, rangeKeys) = WgmmaPrefillRanges(batch, shape, device.MultiprocessorCount);
        if (ranges > 1 && TryWgmmaSplitAttention16(q, k, v, output, batch, shape, pointers, format, ranges, rangeKeys))
        {
            return true;
        }

        kernel(AttentionWgmmaKernels.Config(batch, shape.Heads, shape.Lq), q, k, v, output, shape, pointers);
        return true;
    }

    /// <summary>
    /// Whether an unmasked call that the tensor-core attention takes runs the wgmma prefill: its variant (the default), a
    /// device of compute capability 9.0, head size <see cref="AttentionWgmmaKernels.D"/>, and no failed load so far.
    /// </summary>
    private bool UsesWgmmaPrefill(int headDim) =>
        PrefillVariants.FromEnvironment() == PrefillVariant.Wgmma && !attentionWgmmaFailed && headDim == AttentionWgmmaKernels.D && Sm90aPtx.Supported(device.Accelerator);

    /// <summary>
    /// How many key ranges a wgmma prefill call is split into, and their keys (<see cref="PrefillKeyRanges"/> at one group
    /// per SM: the kernel's shared memory). Run 179: 32 query blocks over 4096 keys took ~98 µs on 132 SMs, whether 4 or
    /// 64 queries.
    /// </summary>
    internal static (int Ranges, int Keys) WgmmaPrefillRanges(int batch, AttentionShape shape, int multiprocessors) =>
        PrefillKeyRanges(batch, shape, multiprocessors, AttentionWgmmaKernels.BlockQ, AttentionWgmmaKernels.BlockK);

    /// <summary>
    /// How a prefill of <paramref name="blockQ"/>-query blocks and <paramref name="blockK"/>-key tiles splits its keys:
    /// where its blocks fill at most half of the <paramref name="slots"/> groups the GPU holds at once and it is neither
    /// causal nor masked, into as many ranges of whole tiles as fill them, each of at least <see cref="PrefillRangeTiles"/>
    /// (the last may be shorter); else one range of every key.
    /// </summary>
    internal static (int Ranges, int Keys) PrefillKeyRanges(int batch, AttentionShape shape, long slots, int blockQ, int blockK)
    {
        long blocks = (long)((shape.Lq + blockQ - 1) / blockQ) * shape.Heads * batch;
        if (shape.Causal != 0 || shape.HasMask != 0 || blocks == 0 || blocks * 2 > slots)
        {
            return (1, shape.Lk);
        }

        int ranges = (int)Math.Min(slots / blocks, shape.Lk / (PrefillRangeTiles * blockK));
        if (ranges < 2)
        {
            return (1, shape.Lk);
        }

        int tiles = (shape.Lk + blockK - 1) / blockK;
        int keys = ((tiles + ranges - 1) / ranges) * blockK;
        return ((shape.Lk + keys - 1) / keys, keys);
    }

    /// <summary>
    /// A call's shape with its query rows as heads of one query each ([b, h, lq, d] read as [b, h·lq, 1, d]): the shape the
    /// decode combine merges a split prefill's partials over.
    /// </summary>
    internal static AttentionShape QueryRowsAsHeads(AttentionShape shape)
    {
        var rows = shape;
        rows.Heads = shape.Heads * shape.Lq;
        rows.Lq = 1;
        return rows;
    }

    /// <summary>
    /// The split wgmma prefill (<see cref="AttentionWgmmaKernels.Attention16WgmmaSplit{TFormat}"/>): a partial per query
    /// row and range, then the decode combine over the rows as heads. False (nothing launched) when the kernel fails to
    /// load: the caller runs the whole-key kernel.
    /// </summary>
    private bool TryWgmmaSplitAttention16(ArrayView<ushort> q, ArrayView<ushort> k, ArrayView<ushort> v, ArrayView<ushort> output, int batch, AttentionShape shape,
        TensorCoreAttentionPointers pointers, HalfFormat format, int ranges, int rangeKeys)
    {
        int slot = Bf(format);
        Action<KernelConfig, ArrayView<ushort>, ArrayView<ushort>, ArrayView<ushort>, AttentionShape, TensorCoreAttentionPointers, PrefillSplit> kernel;
        try
        {
            var bounds = Bounds(AttentionWgmmaKernels.GroupSize, null);
            kernel = slot != 0
                ? device.Load(ref attentionWgmmaSplit[1], $"{nameof(AttentionWgmmaKernels.Attention16WgmmaSplit)}:{nameof(PrefillBf16)}",
                    acc => acc.LoadStreamKernel<ArrayView<ushort>, ArrayView<ushort>, ArrayView<ushort>, AttentionShape, TensorCoreAttentionPointers, PrefillSplit>(
                        AttentionWgmmaKernels.Attention16WgmmaSplit<PrefillBf16>, bounds))
                : device.Load(ref attentionWgmmaSplit[0], $"{nameof(AttentionWgmmaKernels.Attention16WgmmaSplit)}:{nameof(PrefillF16)}",
                    acc => acc.LoadStreamKernel<ArrayView<ushort>, ArrayView<ushort>, ArrayView<ushort>, AttentionShape, TensorCoreAttentionPointers, PrefillSplit>(
                        AttentionWgmmaKernels.Attention16WgmmaSplit<PrefillF16>, bounds));
        }
        catch (IlgpuKernelCompileException)
        {
            return false;
        }

        var rows = QueryRowsAsHeads(shape);
        var (partO, partML) = DecodePartials((long)batch * rows.Heads * ranges, shape.D);
        var split = new PrefillSplit
        {
            Keys = rangeKeys,
            Count = ranges,
            PartO = TensorCoreLaunch.DeviceAddress(partO),
            PartML = TensorCoreLaunch.DeviceAddress(partML),
        };
        kernel(AttentionWgmmaKernels.SplitConfig(batch, shape.Heads, shape.Lq, ranges), q, k, v, shape, pointers, split);
        CombineDecode16(partO, partML, output, batch, rows, ranges, format, threadsPerHead: shape.D);
        return true;
    }
}

/// <summary>Which tensor-core prefill attention kernel a 16-bit call without an additive mask runs.</summary>
internal enum PrefillVariant
{
    /// <summary>Scores, weights and row statistics in the warp's shared area (Attempt 2's kernel; also every masked call).</summary>
    Shared = 0,

    /// <summary>
    /// Scores, softmax and weights in registers, 32-key tiles in two stages and three groups per SM (three stages and
    /// four groups at head size 64). The variants it beat on the H200 (no register bound, 8-warp groups, 64-key tiles in
    /// single buffers) are in docs/perf/h100-notes-attention.md.
    /// </summary>
    Registers = 1,

    /// <summary>
    /// Hopper's wgmma (<see cref="AttentionWgmmaKernels"/>): two warpgroups of 64 query rows, 64-key tiles in three stages;
    /// on a compute-capability-9.0 CUDA device only, else <see cref="Registers"/>.
    /// </summary>
    Wgmma = 2,
}

/// <summary>Names and the environment default of <see cref="PrefillVariant"/>.</summary>
internal static class PrefillVariants
{
    /// <summary>Environment variable naming the variant for a measuring run: <c>shared</c>, <c>registers</c> or <c>wgmma</c>.</summary>
    public const string Variable = "GEMS_PREFILL_VARIANT";

    private static readonly Lazy<PrefillVariant> FromVariable = new(() => Parse(Environment.GetEnvironmentVariable(Variable)));

    /// <summary>The variant the environment names (read once per process), or the default.</summary>
    public static PrefillVariant FromEnvironment() => FromVariable.Value;

    /// <summary>
    /// The variant a setting names (case and surrounding spaces ignored); unset, empty or unknown:
    /// <see cref="PrefillVariant.Wgmma"/> where it runs (a compute-capability-9.0 device; H200 Run 20: f16 causal 4096
    /// tokens 0.829 → 0.644 ms, against 0.699 for <c>wgmma2</c>), else <see cref="PrefillVariant.Registers"/> (the fastest
    /// mma.sync kernel: Run 15, bf16 0.814 ms against 0.934 for the shared-memory kernel).
    /// </summary>
    public static PrefillVariant Parse(string? setting) => setting?.Trim().ToLowerInvariant() switch
    {
        "shared" => PrefillVariant.Shared,
        "registers" => PrefillVariant.Registers,
        _ => PrefillVariant.Wgmma,
    };
}
