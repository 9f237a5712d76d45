using System;
using ILGPU;
using ILGPU.Runtime;

namespace GemsInjector.Kernels.Ilgpu;

public sealed partial class IlgpuKernels
{
    private Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<ushort>, AttentionShape, int, int>? decodeCombine16;
    private Action<KernelConfig, ArrayView<Float4>, ArrayView<Float4>, ArrayView<Float4>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<int>, AttentionShape, DecodePlan>? decodeStreamF32;
    private Action<KernelConfig, ArrayView<Float4>, ArrayView<Float4>, ArrayView<Float4>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<int>, AttentionShape, DecodePlan>? decodeStreamF32Lean;
    private readonly Action<KernelConfig, ArrayView<Half8>, ArrayView<Half8>, ArrayView<Half8>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<ushort>, ArrayView<int>, AttentionShape, DecodePlan>?[] decodeStream16 =
        new Action<KernelConfig, ArrayView<Half8>, ArrayView<Half8>, ArrayView<Half8>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<ushort>, ArrayView<int>, AttentionShape, DecodePlan>?[2];
    private readonly Action<KernelConfig, ArrayView<Half8>, ArrayView<Half8>, ArrayView<Half8>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<ushort>, ArrayView<int>, AttentionShape, DecodePlan>?[] decodeTc16 =
        new Action<KernelConfig, ArrayView<Half8>, ArrayView<Half8>, ArrayView<Half8>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<ushort>, ArrayView<int>, AttentionShape, DecodePlan>?[2];
    private readonly Action<KernelConfig, ArrayView<Half8>, ArrayView<Half8>, ArrayView<Half8>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<ushort>, ArrayView<int>, AttentionShape, DecodePlan>?[] decodeTc16Lean =
        new Action<KernelConfig, ArrayView<Half8>, ArrayView<Half8>, ArrayView<Half8>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<ushort>, ArrayView<int>, AttentionShape, DecodePlan>?[2];
    private readonly Action<KernelConfig, ArrayView<Half8>, ArrayView<Half8>, ArrayView<Half8>, ArrayView<float>, ArrayView<ushort>, AttentionShape, DecodePlan>?[] decodeTc16Cluster =
        new Action<KernelConfig, ArrayView<Half8>, ArrayView<Half8>, ArrayView<Half8>, ArrayView<float>, ArrayView<ushort>, AttentionShape, DecodePlan>?[2];
    private readonly Action<KernelConfig, ArrayView<Half8>, ArrayView<Half8>, ArrayView<Half8>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<ushort>, ArrayView<int>, AttentionShape, DecodePlan>?[] decodeTc16Lean8w =
        new Action<KernelConfig, ArrayView<Half8>, ArrayView<Half8>, ArrayView<Half8>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<ushort>, ArrayView<int>, AttentionShape, DecodePlan>?[2];
    private MemoryBuffer1D<int, Stride1D.Dense>? decodeTickets;

    /// <summary>
    /// The decode kernel for lq = 1 calls the wide path takes; by default the one named by the environment variable
    /// <c>GEMS_DECODE_VARIANT</c> (read once per process), else <see cref="DecodeVariant.Lean"/> (float32 and 16-bit head
    /// size 128 on CUDA; <see cref="DecodeVariant.Stream"/> for the rest).
    /// </summary>
    internal DecodeVariant DecodeKernelVariant { get; set; } = DecodeVariants.FromEnvironment();

    /// <summary>Resident streaming decode groups per SM (launch bounds and plan): ≤ 128 registers, 4 × 41 KB shared.</summary>
    private const int StreamDecodeGroupsPerSm = 4;

    /// <summary>
    /// Resident 8-warp decode groups per SM (<see cref="AttentionDecodeTensorCoreKernels.DecodeTc16Lean8w{TFormat}"/>):
    /// 256 threads at ≤ 128 registers and 78 KB of shared memory each, as many warps per SM as the 4-warp kernel's 4 groups.
    /// </summary>
    private const int WideLeanDecodeGroupsPerSm = 2;

    /// <summary>A group's fixed cost (q load, softmax, folds, partial writes) in keys' worth of streaming, for the plan.</summary>
    private const int DecodeGroupOverheadKeys = 32;

    /// <summary>
    /// What each chunk's partial adds to the merge, which one group per kv head runs after every other group is done, in
    /// keys' worth of streaming, for the plan. H200 Runs 153–154 (float32, one sequence, 8 kv heads × 4096 keys, chunks
    /// set by <c>GEMS_DECODE_CHUNK</c>): 64 keys (the plan without this term) 0.0209 ms; 96 keys +2.8%, 128 keys
    /// **+7.4%** (0.0194 ms), 160 keys +4.2%, 192 and 256 keys −1.3%; 32 keys −31%. Between 3.2 and 5.3 keys per partial
    /// the plan takes 128 there; 16 sequences keep 512 and the 8-warp 16-bit plan 128.
    /// </summary>
    private const int DecodeMergeKeysPerPartial = 4;

    /// <summary>
    /// Whether a decode call (lq = 1) of this head size and these views takes the wide kernel
    /// (<see cref="AttentionDecodeWideKernels"/>): 16-byte aligned q, k, v, a head size that is a multiple of the vector
    /// width (4 float32 or 8 16-bit values) and at most 16 values per lane of a row's team.
    /// </summary>
    internal bool UsesWideDecode<T>(ArrayView<T> q, ArrayView<T> k, ArrayView<T> v, int headDim, int vectorWidth)
        where T : unmanaged =>
        headDim % vectorWidth == 0 && headDim <= 16 * AttentionDecodeWideKernels.Lanes(device.WarpSize, headDim) && headDim <= AttentionDecodeWideKernels.MaxD
        && AttentionDecodeWideKernels.Warps * device.WarpSize <= device.MaxGroupSize
        && IsAligned(q, 16) && IsAligned(k, 16) && IsAligned(v, 16);

    /// <summary>The float32 streaming decode when it takes this call; false (nothing launched) otherwise.</summary>
    private bool TryWideDecodeF32(ArrayView<float> q, ArrayView<float> k, ArrayView<float> v, ArrayView<float> mask, ArrayView<float> output,
        int batch, int kEnd, AttentionShape shape)
    {
        if (!UsesWideDecode(q, k, v, shape.D, 4))
        {
            return false;
        }

        var streamPlan = StreamDecodePlan(batch, shape, kEnd, sizeof(float), k, v);
        var (streamO, streamML) = DecodePartials((long)batch * shape.Heads * streamPlan.Splits, shape.D);
        if (UsesLeanDecodeF32(shape.D))
        {
            device.Load(ref decodeStreamF32Lean, nameof(AttentionDecodeWideKernels.DecodeStreamF32Lean),
                acc => acc.LoadStreamKernel<ArrayView<Float4>, ArrayView<Float4>, ArrayView<Float4>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<int>, AttentionShape, DecodePlan>(
                    AttentionDecodeWideKernels.DecodeStreamF32Lean, Bounds(AttentionDecodeWideKernels.Warps * device.WarpSize, StreamDecodeGroupsPerSm)))(
                StreamDecodeConfig(batch, shape.KvHeads, streamPlan), q.Cast<Float4>(), k.Cast<Float4>(), v.Cast<Float4>(), mask, streamO, streamML, output,
                DecodeTickets(batch, shape.KvHeads, streamPlan.HeadBlocks), shape, streamPlan.Kernel);
            if (streamPlan.Splits > 1 && streamPlan.Kernel.Combine == 0)
            {
                CombineDecodeF32(streamO, streamML, output, batch, shape, streamPlan.Splits);
            }

            return true;
        }

        device.Load(ref decodeStreamF32, nameof(AttentionDecodeWideKernels.DecodeStreamF32),
            acc => acc.LoadStreamKernel<ArrayView<Float4>, ArrayView<Float4>, ArrayView<Float4>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<int>, AttentionShape, DecodePlan>(
                AttentionDecodeWideKernels.DecodeStreamF32, Bounds(AttentionDecodeWideKernels.Warps * device.WarpSize, StreamDecodeGroupsPerSm)))(
            StreamDecodeConfig(batch, shape.KvHeads, streamPlan), q.Cast<Float4>(), k.Cast<Float4>(), v.Cast<Float4>(), mask, streamO, streamML, output,
            DecodeTickets(batch, shape.KvHeads, streamPlan.HeadBlocks), shape, streamPlan.Kernel);
        if (streamPlan.Splits > 1 && streamPlan.Kernel.Combine == 0)
        {
            CombineDecodeF32(streamO, streamML, output, batch, shape, streamPlan.Splits);
        }

        return true;
    }

    /// <summary>The 16-bit wide decode when it takes this call (not float16 on OpenCL, which lacks cl_khr_fp16 conversions); false otherwise.</summary>
    private bool TryWideDecode16(ArrayView<ushort> q, ArrayView<ushort> k, ArrayView<ushort> v, ArrayView<float> mask, ArrayView<ushort> output,
        int batch, int kEnd, AttentionShape shape, HalfFormat format)
    {
        if ((format == HalfFormat.Float16 && device.Kind == IlgpuDeviceKind.OpenCL) || !UsesWideDecode(q, k, v, shape.D, 8))
        {
            return false;
        }

        bool bf16 = format == HalfFormat.BFloat16;
        int slot = bf16 ? 1 : 0;
        if (DecodeKernelVariant == DecodeVariant.Cluster && UsesTensorCoreDecode(shape.D) && TryClusterDecode16(q, k, v, mask, output, batch, kEnd, shape, bf16))
        {
            return true;
        }

        if (DecodeKernelVariant == DecodeVariant.Lean8w && UsesTensorCoreDecode(shape.D) && TryWideLeanDecode16(q, k, v, mask, output, batch, kEnd, shape, format))
        {
            return true;
        }

        if ((DecodeKernelVariant == DecodeVariant.TensorCore || UsesLeanKernels) && UsesTensorCoreDecode(shape.D))
        {
            var tcPlan = StreamDecodePlan(batch, shape, kEnd, sizeof(ushort), k, v);
            string tcName = $"{nameof(AttentionDecodeTensorCoreKernels.DecodeTc16)}<{(bf16 ? "bf16" : "f16")}>";
            var tcBounds = Bounds(AttentionDecodeWideKernels.Warps * device.WarpSize, StreamDecodeGroupsPerSm);
            bool tcLean = UsesLeanKernels;
            string tcLeanName = $"{nameof(AttentionDecodeTensorCoreKernels.DecodeTc16Lean)}<{(bf16 ? "bf16" : "f16")}>";
            var tc = tcLean
                ? (bf16
                    ? device.Load(ref decodeTc16Lean[slot], tcLeanName,
                        acc => acc.LoadStreamKernel<ArrayView<Half8>, ArrayView<Half8>, ArrayView<Half8>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<ushort>, ArrayView<int>, AttentionShape, DecodePlan>(
                            AttentionDecodeTensorCoreKernels.DecodeTc16Lean<BFloat16Storage>, tcBounds))
                    : device.Load(ref decodeTc16Lean[slot], tcLeanName,
                        acc => acc.LoadStreamKernel<ArrayView<Half8>, ArrayView<Half8>, ArrayView<Half8>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<ushort>, ArrayView<int>, AttentionShape, DecodePlan>(
                            AttentionDecodeTensorCoreKernels.DecodeTc16Lean<Float16Storage>, tcBounds)))
                : bf16
                ? device.Load(ref decodeTc16[slot], tcName,
                    acc => acc.LoadStreamKernel<ArrayView<Half8>, ArrayView<Half8>, ArrayView<Half8>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<ushort>, ArrayView<int>, AttentionShape, DecodePlan>(
                        AttentionDecodeTensorCoreKernels.DecodeTc16<BFloat16Storage>, tcBounds))
                : device.Load(ref decodeTc16[slot], tcName,
                    acc => acc.LoadStreamKernel<ArrayView<Half8>, ArrayView<Half8>, ArrayView<Half8>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<ushort>, ArrayView<int>, AttentionShape, DecodePlan>(
                        AttentionDecodeTensorCoreKernels.DecodeTc16<Float16Storage>, tcBounds));
            RunTensorCoreDecode16(tc, tcPlan, AttentionDecodeTensorCoreKernels.GroupSize, AttentionDecodeTensorCoreKernels.SharedFloats, q, k, v, mask, output, batch, shape, format);
            return true;
        }

        var streamPlan = StreamDecodePlan(batch, shape, kEnd, sizeof(ushort), k, v);
        var (streamO, streamML) = DecodePartials((long)batch * shape.Heads * streamPlan.Splits, shape.D);
        string streamName = $"{nameof(AttentionDecodeWideKernels.DecodeStream16)}<{(bf16 ? "bf16" : "f16")}>";
        var bounds = Bounds(AttentionDecodeWideKernels.Warps * device.WarpSize, StreamDecodeGroupsPerSm);
        var stream = bf16
            ? device.Load(ref decodeStream16[slot], streamName,
                acc => acc.LoadStreamKernel<ArrayView<Half8>, ArrayView<Half8>, ArrayView<Half8>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<ushort>, ArrayView<int>, AttentionShape, DecodePlan>(
                    AttentionDecodeWideKernels.DecodeStream16<BFloat16Storage>, bounds))
            : device.Load(ref decodeStream16[slot], streamName,
                acc => acc.LoadStreamKernel<ArrayView<Half8>, ArrayView<Half8>, ArrayView<Half8>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<ushort>, ArrayView<int>, AttentionShape, DecodePlan>(
                    AttentionDecodeWideKernels.DecodeStream16<Float16Storage>, bounds));
        stream(StreamDecodeConfig(batch, shape.KvHeads, streamPlan), q.Cast<Half8>(), k.Cast<Half8>(), v.Cast<Half8>(), mask, streamO, streamML, output,
            DecodeTickets(batch, shape.KvHeads, streamPlan.HeadBlocks), shape, streamPlan.Kernel);
        if (streamPlan.Splits > 1 && streamPlan.Kernel.Combine == 0)
        {
            CombineDecode16(streamO, streamML, output, batch, shape, streamPlan.Splits, format);
        }

        return true;
    }

    /// <summary>
    /// Runs a 16-bit head-128 decode with its chunks merged in thread-block clusters
    /// (<see cref="AttentionDecodeTensorCoreKernels.DecodeTc16Cluster{TFormat}"/>) when the variant is
    /// <see cref="DecodeVariant.Cluster"/> (the caller checked that and <see cref="UsesTensorCoreDecode"/>), the device runs
    /// clusters (<see cref="Sm90aPtx.Supported"/>), the keys fit the cluster plan (<see cref="DecodeClusterMerge.ChunkFor"/>)
    /// and no cluster kernel failed to load in this process.
    /// </summary>
    /// <returns>Whether it ran (otherwise the caller takes the lean kernel).</returns>
    private bool TryClusterDecode16(ArrayView<ushort> q, ArrayView<ushort> k, ArrayView<ushort> v, ArrayView<float> mask, ArrayView<ushort> output,
        int batch, int kEnd, AttentionShape shape, bool bf16)
    {
        int chunk = DecodeClusterMerge.ChunkFor(kEnd);
        if (chunk == 0 || ClusterLoadError is not null || !Sm90aPtx.Supported(device.Accelerator))
        {
            return false;
        }

        Action<KernelConfig, ArrayView<Half8>, ArrayView<Half8>, ArrayView<Half8>, ArrayView<float>, ArrayView<ushort>, AttentionShape, DecodePlan> kernel;
        try
        {
            kernel = ClusterDecodeKernel(bf16);
        }
        catch (IlgpuKernelCompileException ex)
        {
            // Recorded on the device too (IlgpuDevice.Load), and reported as the skinny cluster kernel's; this process
            // keeps the lean kernel.
            ClusterLoadError = ex.Message;
            return false;
        }

        int headBlocks = ((shape.Heads / shape.KvHeads) + AttentionDecodeWideKernels.HeadsPerGroup - 1) / AttentionDecodeWideKernels.HeadsPerGroup;
        var plan = KernelPlan(k, v, chunk, kEnd);
        plan.TileKeys = AttentionDecodeTensorCoreKernels.TileKeys;
        kernel(new KernelConfig(new Index3D(DecodeClusterMerge.Size, shape.KvHeads * headBlocks, batch), new Index3D(AttentionDecodeTensorCoreKernels.GroupSize, 1, 1),
                SharedMemoryConfig.RequestDynamic<float>(AttentionDecodeTensorCoreKernels.SharedFloats)),
            q.Cast<Half8>(), k.Cast<Half8>(), v.Cast<Half8>(), mask, output, shape, plan);
        return true;
    }

    /// <summary>
    /// Runs a 16-bit head-128 decode on <see cref="AttentionDecodeTensorCoreKernels.DecodeTc16Lean8w{TFormat}"/> (variant
    /// <see cref="DecodeVariant.Lean8w"/>, the caller checked <see cref="UsesTensorCoreDecode"/>) when the 4-warp lean
    /// kernel's grid would not fill one wave (<see cref="UsesWideLeanDecode"/>); its own plan at
    /// <see cref="WideLeanDecodeGroupsPerSm"/> groups per SM.
    /// </summary>
    /// <returns>Whether it ran (otherwise the caller takes the lean kernel).</returns>
    private bool TryWideLeanDecode16(ArrayView<ushort> q, ArrayView<ushort> k, ArrayView<ushort> v, ArrayView<float> mask, ArrayView<ushort> output,
        int batch, int kEnd, AttentionShape shape, HalfFormat format)
    {
        var leanPlan = StreamDecodePlan(batch, shape, kEnd, sizeof(ushort), k, v);
        long leanGroups = (long)leanPlan.Splits * shape.KvHeads * leanPlan.HeadBlocks * batch;
        wideLeanSharedLimit ??= Sm90aPtx.SharedLimit(device.Accelerator);
        if (!UsesWideLeanDecode(leanGroups, device.MultiprocessorCount, wideLeanSharedLimit.Value))
        {
            return false;
        }

        bool bf16 = format == HalfFormat.BFloat16;
        var plan = StreamDecodePlan(batch, shape, kEnd, sizeof(ushort), k, v, WideLeanDecodeGroupsPerSm);
        string name = $"{nameof(AttentionDecodeTensorCoreKernels.DecodeTc16Lean8w)}<{(bf16 ? "bf16" : "f16")}>";
        var bounds = Bounds(AttentionDecodeTensorCoreKernels.WideGroupSize, WideLeanDecodeGroupsPerSm);
        var kernel = bf16
            ? device.Load(ref decodeTc16Lean8w[1], name,
                acc => acc.LoadStreamKernel<ArrayView<Half8>, ArrayView<Half8>, ArrayView<Half8>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<ushort>, ArrayView<int>, AttentionShape, DecodePlan>(
                    AttentionDecodeTensorCoreKernels.DecodeTc16Lean8w<BFloat16Storage>, bounds))
            : device.Load(ref decodeTc16Lean8w[0], name,
                acc => acc.LoadStreamKernel<ArrayView<Half8>, ArrayView<Half8>, ArrayView<Half8>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<ushort>, ArrayView<int>, AttentionShape, DecodePlan>(
                    AttentionDecodeTensorCoreKernels.DecodeTc16Lean8w<Float16Storage>, bounds));
        RunTensorCoreDecode16(kernel, plan, AttentionDecodeTensorCoreKernels.WideGroupSize, AttentionDecodeTensorCoreKernels.WideSharedFloats, q, k, v, mask, output, batch, shape, format);
        return true;
    }

    /// <summary>
    /// Launches a tensor-core decode kernel with partials and tickets over its plan's grid (chunks × KV heads · head blocks ×
    /// batch) in groups of <paramref name="groupSize"/> threads with <paramref name="sharedFloats"/> of dynamic shared memory,
    /// then the combine launch when the plan leaves the merge to it.
    /// </summary>
    private void RunTensorCoreDecode16(
        Action<KernelConfig, ArrayView<Half8>, ArrayView<Half8>, ArrayView<Half8>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<ushort>, ArrayView<int>, AttentionShape, DecodePlan> kernel,
        (DecodePlan Kernel, int Splits, int HeadBlocks) plan, int groupSize, int sharedFloats, ArrayView<ushort> q, ArrayView<ushort> k, ArrayView<ushort> v,
        ArrayView<float> mask, ArrayView<ushort> output, int batch, AttentionShape shape, HalfFormat format)
    {
        var (partO, partML) = DecodePartials((long)batch * shape.Heads * plan.Splits, shape.D);
        kernel(new KernelConfig(new Index3D(plan.Splits, shape.KvHeads * plan.HeadBlocks, batch), new Index3D(groupSize, 1, 1),
                SharedMemoryConfig.RequestDynamic<float>(sharedFloats)),
            q.Cast<Half8>(), k.Cast<Half8>(), v.Cast<Half8>(), mask, partO, partML, output, DecodeTickets(batch, shape.KvHeads, plan.HeadBlocks), shape, plan.Kernel);
        if (plan.Splits > 1 && plan.Kernel.Combine == 0)
        {
            CombineDecode16(partO, partML, output, batch, shape, plan.Splits, format);
        }
    }

    /// <summary>
    /// Whether <see cref="DecodeVariant.Lean8w"/> takes a call whose 4-warp lean plan launches <paramref name="leanGroups"/>
    /// groups: only below one wave (batch 1 at 4096 keys: 256 groups on 132 × 4 slots), where every group runs at once
    /// and the time is one group's walk plus the merge; from a full wave on, the 4-warp kernel streams at 80% of the
    /// copy rate (Run 28) and more warps per group would only cut resident groups. Only where a group may have the kernel's
    /// 78 KB of shared memory (<paramref name="sharedLimit"/>, <see cref="Sm90aPtx.SharedLimit"/>: the opt-in limit on a
    /// compute-capability-9.0 device, 48 KB elsewhere, where the lean kernel runs instead).
    /// </summary>
    internal static bool UsesWideLeanDecode(long leanGroups, int multiprocessors, int sharedLimit) =>
        leanGroups < (long)Math.Max(1, multiprocessors) * StreamDecodeGroupsPerSm
        && (long)AttentionDecodeTensorCoreKernels.WideSharedFloats * sizeof(float) <= sharedLimit;

    private int? wideLeanSharedLimit;

    private Action<KernelConfig, ArrayView<Half8>, ArrayView<Half8>, ArrayView<Half8>, ArrayView<float>, ArrayView<ushort>, AttentionShape, DecodePlan> ClusterDecodeKernel(bool bf16)
    {
        string name = $"{nameof(AttentionDecodeTensorCoreKernels.DecodeTc16Cluster)}<{(bf16 ? "bf16" : "f16")}>";
        var bounds = Bounds(AttentionDecodeWideKernels.Warps * device.WarpSize, StreamDecodeGroupsPerSm);
        return bf16
            ? device.Load(ref decodeTc16Cluster[1], name,
                acc => acc.LoadStreamKernel<ArrayView<Half8>, ArrayView<Half8>, ArrayView<Half8>, ArrayView<float>, ArrayView<ushort>, AttentionShape, DecodePlan>(
                    AttentionDecodeTensorCoreKernels.DecodeTc16Cluster<BFloat16Storage>, bounds))
            : device.Load(ref decodeTc16Cluster[0], name,
                acc => acc.LoadStreamKernel<ArrayView<Half8>, ArrayView<Half8>, ArrayView<Half8>, ArrayView<float>, ArrayView<ushort>, AttentionShape, DecodePlan>(
                    AttentionDecodeTensorCoreKernels.DecodeTc16Cluster<Float16Storage>, bounds));
    }

    /// <summary>
    /// Whether the variant takes the lean kernels (<see cref="DecodeVariant.Lean"/>, and <see cref="DecodeVariant.Cluster"/> /
    /// <see cref="DecodeVariant.Lean8w"/> for every call their kernel does not take).
    /// </summary>
    private bool UsesLeanKernels => DecodeKernelVariant is DecodeVariant.Lean or DecodeVariant.Cluster or DecodeVariant.Lean8w;

    /// <summary>
    /// Whether the tensor-core decode (<see cref="AttentionDecodeTensorCoreKernels"/>) can take a 16-bit call that the wide
    /// path takes: CUDA with tensor cores enabled, 32-lane warps and head size <see cref="AttentionDecodeTensorCoreKernels.D"/>
    /// (the simulator keeps the streaming kernel; tests launch the emulated body directly).
    /// </summary>
    internal bool UsesTensorCoreDecode(int headDim) =>
        TensorCoresEnabled && device.Kind == IlgpuDeviceKind.Cuda && device.WarpSize == 32 && headDim == AttentionDecodeTensorCoreKernels.D;

    /// <summary>
    /// Whether a float32 call that the wide path takes goes to <see cref="AttentionDecodeWideKernels.DecodeStreamF32Lean"/>:
    /// the <see cref="DecodeVariant.Lean"/> variant, 32-lane warps and head size <see cref="AttentionDecodeWideKernels.LeanD"/>.
    /// </summary>
    internal bool UsesLeanDecodeF32(int headDim) =>
        UsesLeanKernels && device.WarpSize == 32 && headDim == AttentionDecodeWideKernels.LeanD;

    /// <summary>
    /// The 16-bit combine launch over <paramref name="splits"/> partials per head; <paramref name="threadsPerHead"/> caps
    /// its groups (a split prefill's few ranges per row need no more than one thread per dim).
    /// </summary>
    private void CombineDecode16(ArrayView<float> partO, ArrayView<float> partML, ArrayView<ushort> output, int batch, AttentionShape shape, int splits, HalfFormat format,
        int threadsPerHead = AttentionDecodeKernels.MaxCombineGroup) =>
        device.Load(ref decodeCombine16, nameof(AttentionDecodeKernels.DecodeCombine16),
            acc => acc.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<ushort>, AttentionShape, int, int>(AttentionDecodeKernels.DecodeCombine16))(
            CombineConfig(batch, shape.Heads, threadsPerHead), partO, partML, output, shape, splits, Bf(format));

    /// <summary>
    /// Plan of the streaming decode (<see cref="AttentionDecodeWideKernels.DecodeStreamF32"/>): on CUDA tiles of
    /// <see cref="AttentionDecodeWideKernels.TileKeys"/> keys and the chunk (a multiple of the tile, at most
    /// <see cref="AttentionDecodeWideKernels.MaxChunk"/>) that <see cref="StreamDecodeChunk"/> picks at
    /// <see cref="StreamDecodeGroupsPerSm"/> groups per SM (or a measuring run's <see cref="DecodeChunkSetting"/>): d = 128
    /// batch 16 → 8 chunks of 512 (1024 groups, 1.9 waves), batch 1 → 32 chunks of 128 (256 groups, one wave). On the
    /// simulator tiles of 3 keys and chunks of 6, so that tests cross tile and chunk edges. The merge runs in the kernel
    /// (one launch) unless the variant asks for a combine launch or there are more chunks than its weights buffer holds.
    /// </summary>
    private (DecodePlan Kernel, int Splits, int HeadBlocks) StreamDecodePlan<T>(int batch, AttentionShape shape, int kEnd, int elementBytes, ArrayView<T> k, ArrayView<T> v,
        int groupsPerSm = StreamDecodeGroupsPerSm)
        where T : unmanaged
    {
        int perKv = shape.Heads / shape.KvHeads;
        int headBlocks = (perKv + AttentionDecodeWideKernels.HeadsPerGroup - 1) / AttentionDecodeWideKernels.HeadsPerGroup;
        int tile = AttentionDecodeWideKernels.TileKeys(shape.D, elementBytes);
        bool lean = elementBytes == sizeof(float) && UsesLeanDecodeF32(shape.D);
        int chunk;
        if (device.Kind == IlgpuDeviceKind.CpuSimulator)
        {
            // The lean kernel's tile is a constant (16 keys); other kernels take small tiles so that tests cross their edges.
            tile = lean ? AttentionDecodeWideKernels.LeanTileKeys : Math.Min(tile, 3);
            chunk = 2 * tile;
        }
        else
        {
            chunk = StreamDecodeChunk((long)batch * shape.KvHeads * headBlocks, kEnd, tile, Math.Max(1, device.MultiprocessorCount) * (long)groupsPerSm);
            int requested = DecodeChunkSetting.FromEnvironment();
            if (requested > 0)
            {
                chunk = DecodeChunkSetting.Fit(requested, tile, AttentionDecodeWideKernels.MaxChunk);
            }
        }

        int splits = Math.Max(1, (kEnd + chunk - 1) / chunk);
        var plan = KernelPlan(k, v, chunk, kEnd);
        plan.TileKeys = tile;
        plan.Combine = (DecodeKernelVariant == DecodeVariant.Stream || DecodeKernelVariant == DecodeVariant.TensorCore || UsesLeanKernels) && splits <= AttentionDecodeWideKernels.MaxChunk - AttentionDecodeWideKernels.MergeChunksPerStep ? 1 : 0;
        return (plan, splits, headBlocks);
    }

    /// <summary>
    /// The streaming decode's chunk on a GPU: the multiple of <paramref name="tile"/> keys, at most
    /// <see cref="AttentionDecodeWideKernels.MaxChunk"/>, with the least waves × (chunk + <see cref="DecodeGroupOverheadKeys"/>)
    /// + chunks × <see cref="DecodeMergeKeysPerPartial"/> for <paramref name="groupsPerSplit"/> groups per chunk index and
    /// <paramref name="slots"/> resident groups (a tie takes the longer chunk).
    /// </summary>
    internal static int StreamDecodeChunk(long groupsPerSplit, int kEnd, int tile, long slots)
    {
        int chunk = tile;
        long best = long.MaxValue;
        for (int candidate = tile; candidate <= AttentionDecodeWideKernels.MaxChunk; candidate += tile)
        {
            long splits = Math.Max(1, (kEnd + candidate - 1) / candidate);
            long groups = groupsPerSplit * splits;
            long cost = (((groups + slots - 1) / slots) * (candidate + DecodeGroupOverheadKeys)) + (splits * DecodeMergeKeysPerPartial);
            if (cost <= best)
            {
                best = cost;
                chunk = candidate;
            }
        }

        return chunk;
    }

    private KernelConfig StreamDecodeConfig(int batch, int kvHeads, (DecodePlan Kernel, int Splits, int HeadBlocks) plan) =>
        new(new Index3D(plan.Splits, kvHeads * plan.HeadBlocks, batch), new Index3D(AttentionDecodeWideKernels.Warps * device.WarpSize, 1, 1),
            SharedMemoryConfig.RequestDynamic<float>(AttentionDecodeWideKernels.StreamSharedFloats));

    /// <summary>
    /// The streaming decode's tickets, one per (batch, kv head, head block), zero between launches (the last group of a
    /// block resets its own); kept between calls, grown (zeroed) when a call needs more.
    /// </summary>
    private ArrayView<int> DecodeTickets(int batch, int kvHeads, int headBlocks) =>
        Grown(ref decodeTickets, (long)batch * kvHeads * headBlocks, 1024, zeroed: true);

    /// <summary>The kernel's plan: chunking, and on CUDA the addresses of k and v for its L2 prefetches.</summary>
    private DecodePlan KernelPlan<T>(ArrayView<T> k, ArrayView<T> v, int chunk, int kEnd)
        where T : unmanaged
    {
        bool cuda = device.Kind == IlgpuDeviceKind.Cuda;
        return new DecodePlan { Chunk = chunk, KeyEnd = kEnd, KPointer = cuda ? TensorCoreLaunch.DeviceAddress(k) : 0, VPointer = cuda ? TensorCoreLaunch.DeviceAddress(v) : 0 };
    }

    /// <summary>
    /// One combine group per (head, batch), as many threads as allowed up to <paramref name="threads"/> (at most
    /// <see cref="AttentionDecodeKernels.MaxCombineGroup"/>; several per dim walk the chunks in slices), whole warps.
    /// </summary>
    private KernelConfig CombineConfig(int batch, int heads, int threads = AttentionDecodeKernels.MaxCombineGroup) =>
        new(new Index3D(heads, batch, 1), new Index3D(Math.Max(device.WarpSize, Math.Min(device.MaxGroupSize, Math.Min(threads, AttentionDecodeKernels.MaxCombineGroup)) / device.WarpSize * device.WarpSize), 1, 1));

    private void CombineDecodeF32(ArrayView<float> partO, ArrayView<float> partML, ArrayView<float> output, int batch, AttentionShape shape, int splits,
        int threadsPerHead = AttentionDecodeKernels.MaxCombineGroup) =>
        device.Load(ref decodeCombineF32, nameof(AttentionDecodeKernels.DecodeCombineF32),
            acc => acc.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, AttentionShape, int>(AttentionDecodeKernels.DecodeCombineF32))(
            CombineConfig(batch, shape.Heads, threadsPerHead), partO, partML, output, shape, splits);

    /// <summary>The decode partials (per chunk: d output sums, then max and sum pairs) in a scratch buffer kept between calls.</summary>
    private (ArrayView<float> PartO, ArrayView<float> PartML) DecodePartials(long parts, int d)
    {
        long need = parts * (d + 2);
        if (decodeScratch is null || decodeScratch.Length < need)
        {
            if (decodeScratch is not null)
            {
                // Earlier launches may still read the old buffer.
                device.Synchronize();
                decodeScratch.Dispose();
            }

            decodeScratch = device.Accelerator.Allocate1D<float>(Math.Max(need, 1L << 16));
        }

        var all = decodeScratch.View.BaseView;
        return (all.SubView(0, parts * d), all.SubView(parts * d, 2 * parts));
    }
}

/// <summary>The decode kernels of lq = 1 calls on the wide path (aligned rows, d a multiple of the vector width, d ≤ 256).</summary>
internal enum DecodeVariant
{
    /// <summary>K and V tiles staged through shared memory by cp.async, the merge in the same launch (<c>stream</c>).</summary>
    Stream = 1,

    /// <summary>The streaming kernel followed by a combine launch (<c>stream2</c>), to time the one-launch merge.</summary>
    StreamTwoLaunches = 2,

    /// <summary>
    /// 16-bit, head size 128 on CUDA: both products on tensor cores (<see cref="AttentionDecodeTensorCoreKernels"/>),
    /// the merge in the same launch (<c>tc</c>); float32 and other shapes take <see cref="Stream"/>.
    /// </summary>
    TensorCore = 3,

    /// <summary>
    /// As <see cref="TensorCore"/>, except that float32 calls of head size 128 on 32-lane warps take
    /// <see cref="AttentionDecodeWideKernels.DecodeStreamF32Lean"/> and 16-bit ones
    /// <see cref="AttentionDecodeTensorCoreKernels.DecodeTc16Lean"/> (<c>lean</c>).
    /// </summary>
    Lean = 4,

    /// <summary>
    /// As <see cref="Lean"/>, except that 16-bit calls of head size 128 on a compute-capability-9.0 CUDA device with at
    /// most <see cref="DecodeClusterMerge.Size"/> × <see cref="AttentionDecodeWideKernels.MaxChunk"/> keys take
    /// <see cref="AttentionDecodeTensorCoreKernels.DecodeTc16Cluster{TFormat}"/>: <see cref="DecodeClusterMerge.Size"/>
    /// chunks per head block merged in a thread-block cluster, no partials, fence or ticket (<c>cluster</c>).
    /// </summary>
    Cluster = 5,

    /// <summary>
    /// As <see cref="Lean"/>, except that 16-bit calls of head size 128 on CUDA whose lean grid is below one wave take
    /// <see cref="AttentionDecodeTensorCoreKernels.DecodeTc16Lean8w{TFormat}"/>: 8 warps per group, two tiles per step
    /// (<c>lean8w</c>, the default since H200 Run 94: one sequence of 4096 tokens, bf16 0.0184 → 0.0169 ms).
    /// </summary>
    Lean8w = 6,
}

/// <summary>
/// The chunk of the streaming decode's plan a measuring run asks for: <c>GEMS_DECODE_CHUNK</c>, keys per chunk (read once
/// per process; unset or not a positive whole number: the plan's own, by its cost model). It applies to every call that
/// plans with <c>StreamDecodePlan</c> on a GPU: the float32 lean and stream kernels and the 16-bit ones, <c>lean8w</c>
/// included (whose grid it also decides), not the cluster's plan.
/// </summary>
internal static class DecodeChunkSetting
{
    /// <summary>The environment variable.</summary>
    public const string Variable = "GEMS_DECODE_CHUNK";

    private static readonly Lazy<int> FromVariable = new(() => Parse(Environment.GetEnvironmentVariable(Variable)));

    /// <summary>The keys the environment asks for (read once per process), 0 when it asks for none.</summary>
    public static int FromEnvironment() => FromVariable.Value;

    /// <summary>A positive whole number of keys (surrounding spaces ignored), else 0.</summary>
    public static int Parse(string? setting) =>
        int.TryParse(setting?.Trim(), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out int keys) && keys > 0 ? keys : 0;

    /// <summary><paramref name="requested"/> keys rounded down to whole tiles of <paramref name="tile"/> keys, held to one tile at least and <paramref name="max"/> at most.</summary>
    public static int Fit(int requested, int tile, int max) => Math.Clamp(requested / tile * tile, tile, max / tile * tile);
}

/// <summary>Names and the environment default of <see cref="DecodeVariant"/>.</summary>
internal static class DecodeVariants
{
    /// <summary>Environment variable naming the decode kernel for a measuring run: <c>stream</c>, <c>stream2</c>, <c>tc</c>, <c>lean</c>, <c>cluster</c> or <c>lean8w</c>.</summary>
    public const string Variable = "GEMS_DECODE_VARIANT";

    private static readonly Lazy<DecodeVariant> FromVariable = new(() => Parse(Environment.GetEnvironmentVariable(Variable)));

    /// <summary>The variant the environment names (read once per process), or the default.</summary>
    public static DecodeVariant FromEnvironment() => FromVariable.Value;

    /// <summary>
    /// The variant a setting names (case and surrounding spaces ignored); unset, empty or unknown:
    /// <see cref="DecodeVariant.Lean8w"/> (H200 Run 94, one sequence of 4096 tokens, bf16 0.0184 → 0.0169 ms against
    /// <c>lean</c>; every other call runs as under <c>lean</c>). <c>lean</c> (<see cref="DecodeVariant.Lean"/>, the default
    /// of Runs 28–93: H200 Run 28, 16 sequences of 4096 tokens: float32 0.195 → 0.133 ms, 4053 GB/s,
    /// 97% of the copy rate; bf16 0.0879 → 0.0842 ms; one sequence: float32 0.0270 → 0.0208 ms, 16-bit within 3% of
    /// <c>tc</c>). <c>tc</c> names the earlier default (<see cref="DecodeVariant.TensorCore"/>: Run 18, bf16 0.1586 →
    /// 0.0876 ms against <see cref="DecodeVariant.Stream"/>). <c>cluster</c> (<see cref="DecodeVariant.Cluster"/>) stays an
    /// option: H200 Run 71, one sequence bf16 0.0184 → 0.0224 ms (64 groups on 132 SMs), 16 sequences 0.0841 → 0.0829 ms.
    /// </summary>
    public static DecodeVariant Parse(string? setting) => setting?.Trim().ToLowerInvariant() switch
    {
        "stream" => DecodeVariant.Stream,
        "stream2" => DecodeVariant.StreamTwoLaunches,
        "tc" => DecodeVariant.TensorCore,
        "cluster" => DecodeVariant.Cluster,
        "lean" => DecodeVariant.Lean,
        _ => DecodeVariant.Lean8w,
    };
}
