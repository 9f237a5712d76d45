using System;
using ILGPU;
using ILGPU.Runtime;

namespace GemsInjector.Kernels.Ilgpu;

public sealed partial class IlgpuKernels
{
    // Slots: (steps in flight - 1) · 6 + format · 3 + (m-tiles 1, 2, 4 → 0, 1, 2).
    private readonly Action<KernelConfig, ArrayView<Half8>, ArrayView<Half8>, ArrayView<ushort>, ArrayView<ushort>, ArrayView<float>, ArrayView<int>, TensorCoreShape>?[] skinnyGemm16 =
        new Action<KernelConfig, ArrayView<Half8>, ArrayView<Half8>, ArrayView<ushort>, ArrayView<ushort>, ArrayView<float>, ArrayView<int>, TensorCoreShape>?[12];

    // The [K, N] kernel's variants, slots as above.
    private readonly Action<KernelConfig, ArrayView<ushort>, ArrayView<Half8>, ArrayView<uint>, ArrayView<ulong>, ArrayView<ushort>, ArrayView<ushort>, ArrayView<float>, TensorCoreShape, int>?[] skinnyKnGemm16 =
        new Action<KernelConfig, ArrayView<ushort>, ArrayView<Half8>, ArrayView<uint>, ArrayView<ulong>, ArrayView<ushort>, ArrayView<ushort>, ArrayView<float>, TensorCoreShape, int>?[12];

    // The wide [K, N] kernel's variants. Slots: (steps in flight - 1) · 2 + format.
    private readonly Action<KernelConfig, ArrayView<ushort>, ArrayView<Half8>, ArrayView<Half8>, ArrayView<ushort>, ArrayView<ushort>, ArrayView<float>, ArrayView<int>, TensorCoreShape, int>?[] skinnyKnWideGemm16 =
        new Action<KernelConfig, ArrayView<ushort>, ArrayView<Half8>, ArrayView<Half8>, ArrayView<ushort>, ArrayView<ushort>, ArrayView<float>, ArrayView<int>, TensorCoreShape, int>?[4];

    // The wide [K, N] kernel's cluster variants. Slots: (cluster size 2, 4, 8 → 0, 1, 2) · 2 + format.
    private readonly Action<KernelConfig, ArrayView<ushort>, ArrayView<Half8>, ArrayView<Half8>, ArrayView<ushort>, ArrayView<ushort>, TensorCoreShape, int>?[] skinnyKnWideClusterGemm16 =
        new Action<KernelConfig, ArrayView<ushort>, ArrayView<Half8>, ArrayView<Half8>, ArrayView<ushort>, ArrayView<ushort>, TensorCoreShape, int>?[6];

    // The wide [N, K] kernel's variants. Slots: (n8 row tiles - 1) · 2 + format.
    private readonly Action<KernelConfig, ArrayView<Half8>, ArrayView<Half8>, ArrayView<ushort>, ArrayView<ushort>, ArrayView<float>, ArrayView<int>, TensorCoreShape>?[] skinnyNkWideGemm16 =
        new Action<KernelConfig, ArrayView<Half8>, ArrayView<Half8>, ArrayView<ushort>, ArrayView<ushort>, ArrayView<float>, ArrayView<int>, TensorCoreShape>?[4];

    // The streamed [N, K] kernel's variants. Slots: batches in flight (1, 2 → 0, 4) + (n8 row tiles - 1) · 2 + format.
    private readonly Action<KernelConfig, ArrayView<Half8>, ArrayView<Half8>, ArrayView<ushort>, ArrayView<ushort>, ArrayView<float>, ArrayView<int>, TensorCoreShape>?[] skinnyNkStreamGemm16 =
        new Action<KernelConfig, ArrayView<Half8>, ArrayView<Half8>, ArrayView<ushort>, ArrayView<ushort>, ArrayView<float>, ArrayView<int>, TensorCoreShape>?[8];

    /// <summary>Settings of the skinny tensor-core kernel (environment, read once per process).</summary>
    internal SkinnyTensorCoreSettings SkinnySettings { get; set; } = SkinnyTensorCoreSettings.FromEnvironment();

    /// <summary>
    /// Whether a product goes to <see cref="SkinnyTensorCoreKernels"/>: CUDA, tensor cores on, one matrix, weight stored
    /// [N, K], 2 ≤ M ≤ the settings' row limit (1 ≤ M with the streamed body: one row runs as fast as two there, and 3% faster
    /// than the one-row GEMV, Run 70), and 16-byte vectors along K (K % 8 = 0, both bases 16-byte aligned).
    /// </summary>
    internal bool UsesSkinnyTensorCore(ArrayView<ushort> a, ArrayView<ushort> b, int batch, int m, int k, bool transposeB) =>
        SkinnySettings.Enabled && TensorCoresEnabled && device.Kind == IlgpuDeviceKind.Cuda && batch == 1 && transposeB
        && m >= (SkinnySettings.NkBody is SkinnyNkBody.Stream or SkinnyNkBody.Ahead ? 1 : 2) && m <= SkinnySettings.MaxRows && k % 8 == 0
        && TensorCoreLaunch.DeviceAddress(a) % 16 == 0 && TensorCoreLaunch.DeviceAddress(b) % 16 == 0;

    /// <summary>Runs a checked 16-bit product on the skinny tensor-core kernel when <see cref="UsesSkinnyTensorCore"/> says so.</summary>
    /// <returns>Whether it ran.</returns>
    private bool TrySkinnyTensorCore(ArrayView<ushort> a, ArrayView<ushort> b, ArrayView<ushort> bias, ArrayView<ushort> c, int batch, int m, int k, int n,
        bool transposeB, float alpha, float beta, bool biasIsMatrix, HalfFormat format)
    {
        if (!UsesSkinnyTensorCore(a, b, batch, m, k, transposeB))
        {
            return false;
        }

        bool bf16 = format == HalfFormat.BFloat16;
        var body = SkinnyNkBodyFor(m, n);
        if (body is SkinnyNkBody.Stream or SkinnyNkBody.Ahead)
        {
            bool ahead = body == SkinnyNkBody.Ahead;
            var (streamConfig, streamShape) = SkinnyTensorCoreLaunch.PlanNkStream(m, k, n, device.MultiprocessorCount, SkinnySettings.NkStreamWarps,
                ahead ? SkinnyTensorCoreKernels.NkAheadMaxWarps : SkinnyTensorCoreKernels.NkStreamMaxWarps);
            streamShape.Bf16 = bf16 ? 1 : 0;
            streamShape.Alpha = alpha;
            streamShape.Beta = beta;
            streamShape.HasBias = bias.Length != 0 ? 1 : 0;
            streamShape.StrideBiasM = biasIsMatrix ? n : 0;
            SkinnyNkStreamKernel(bf16, m <= SkinnyTensorCoreKernels.WideMaxRows ? 1 : 2, ahead)(streamConfig, a.Cast<Half8>(), b.Cast<Half8>(), bias, c, default, default, streamShape);
            return true;
        }

        bool wide = body == SkinnyNkBody.Wide;
        var (config, shape, mTiles) = SkinnyTensorCoreLaunch.Plan(m, k, n, device.MultiprocessorCount, SkinnySettings.GroupsPerSm,
            capSplitsByPartials: SkinnySettings.CapSplitsByPartials, blockN: wide ? SkinnyTensorCoreKernels.WideBlockN : SkinnyTensorCoreKernels.BlockN);
        shape.Bf16 = bf16 ? 1 : 0;
        shape.Alpha = alpha;
        shape.Beta = beta;
        shape.HasBias = bias.Length != 0 ? 1 : 0;
        shape.StrideBiasM = biasIsMatrix ? n : 0;
        var partial = shape.SplitK > 1 ? Scratch((long)shape.SplitK * m * n) : default;
        var tickets = SplitKTickets(shape.SplitK, (long)config.GridDim.X * config.GridDim.Z,
            (long)Math.Min(m, mTiles * 16) * Math.Min(n, wide ? SkinnyTensorCoreKernels.WideBlockN : SkinnyTensorCoreKernels.BlockN), SkinnyTensorCoreKernels.GroupSize);
        var kernel = wide ? SkinnyNkWideKernel(bf16, m <= SkinnyTensorCoreKernels.WideMaxRows ? 1 : 2) : SkinnyKernel(mTiles, bf16, SkinnySettings.StepsInFlight);
        kernel(config, a.Cast<Half8>(), b.Cast<Half8>(), bias, c, partial, tickets, shape);
        if (shape.SplitK > 1 && tickets.Length == 0)
        {
            ReduceSplits16(partial, bias, c, TensorCoreLaunch.ReduceShape(shape), bf16);
        }

        return true;
    }

    /// <summary>
    /// The body that runs a product <see cref="UsesSkinnyTensorCore"/> takes: by default, M ≤ 16, the streamed one
    /// (<see cref="SkinnyTensorCoreKernels.Gemm16SkinnyNkStream{TFormat, TRowTiles}"/>; it clamps each weight row on its
    /// own, so any N); under <c>GEMS_SKINNY_NK_VARIANT=wide</c>, M ≤ 16 (two n8 tiles) and N % 8 = 0 (a lane's eight weight
    /// rows all in N or all out, 16-byte partial stores), the wide body (<see cref="SkinnyTensorCoreKernels.Gemm16SkinnyNkWide{TFormat, TRowTiles}"/>);
    /// else the narrow body.
    /// </summary>
    internal SkinnyNkBody SkinnyNkBodyFor(int m, int n) => SkinnySettings.NkBody switch
    {
        SkinnyNkBody.Wide when m <= SkinnyTensorCoreKernels.NkWideMaxRows && n % 8 == 0 => SkinnyNkBody.Wide,
        SkinnyNkBody.Stream when m <= SkinnyTensorCoreKernels.NkStreamMaxRows => SkinnyNkBody.Stream,
        SkinnyNkBody.Ahead when m <= SkinnyTensorCoreKernels.NkStreamMaxRows => SkinnyNkBody.Ahead,
        _ => SkinnyNkBody.Narrow,
    };

    private Action<KernelConfig, ArrayView<Half8>, ArrayView<Half8>, ArrayView<ushort>, ArrayView<ushort>, ArrayView<float>, ArrayView<int>, TensorCoreShape> SkinnyNkStreamKernel(
        bool bf16, int rowTiles, bool ahead)
    {
        var name = $"{(ahead ? nameof(SkinnyTensorCoreKernels.Gemm16SkinnyNkAhead) : nameof(SkinnyTensorCoreKernels.Gemm16SkinnyNkStream))}<{(bf16 ? "bf16" : "f16")},{rowTiles}>";
        int slot = (ahead ? 4 : 0) + ((rowTiles - 1) * 2) + (bf16 ? 1 : 0);

        // Groups of 2, 4 or 8 warps (the plan's choice, read by the kernel from its launch): the bound is the largest, and
        // two such groups per SM cap the registers at 128. The one-tile kernel compiles to 122 offline; a JIT that went
        // past 128 would leave one 8-warp group per SM, two waves at N = 4096 (256 groups on 132 SMs). The kernel with two
        // batches in flight needs more than 128 with two tiles: its groups are 2 or 4 warps, and one group per SM is its bound.
        var bounds = ahead ? Bounds(SkinnyTensorCoreKernels.NkAheadMaxWarps * 32, 1) : Bounds(SkinnyTensorCoreKernels.NkStreamMaxWarps * 32, 2);
        return (ahead, bf16, rowTiles) switch
        {
            (false, false, 1) => device.Load(ref skinnyNkStreamGemm16[slot], name, acc => acc.LoadStreamKernel<ArrayView<Half8>, ArrayView<Half8>, ArrayView<ushort>, ArrayView<ushort>, ArrayView<float>, ArrayView<int>, TensorCoreShape>(SkinnyTensorCoreKernels.Gemm16SkinnyNkStream<Float16Storage, Const1>, bounds)),
            (false, true, 1) => device.Load(ref skinnyNkStreamGemm16[slot], name, acc => acc.LoadStreamKernel<ArrayView<Half8>, ArrayView<Half8>, ArrayView<ushort>, ArrayView<ushort>, ArrayView<float>, ArrayView<int>, TensorCoreShape>(SkinnyTensorCoreKernels.Gemm16SkinnyNkStream<BFloat16Storage, Const1>, bounds)),
            (false, false, 2) => device.Load(ref skinnyNkStreamGemm16[slot], name, acc => acc.LoadStreamKernel<ArrayView<Half8>, ArrayView<Half8>, ArrayView<ushort>, ArrayView<ushort>, ArrayView<float>, ArrayView<int>, TensorCoreShape>(SkinnyTensorCoreKernels.Gemm16SkinnyNkStream<Float16Storage, Const2>, bounds)),
            (false, true, 2) => device.Load(ref skinnyNkStreamGemm16[slot], name, acc => acc.LoadStreamKernel<ArrayView<Half8>, ArrayView<Half8>, ArrayView<ushort>, ArrayView<ushort>, ArrayView<float>, ArrayView<int>, TensorCoreShape>(SkinnyTensorCoreKernels.Gemm16SkinnyNkStream<BFloat16Storage, Const2>, bounds)),
            (true, false, 1) => device.Load(ref skinnyNkStreamGemm16[slot], name, acc => acc.LoadStreamKernel<ArrayView<Half8>, ArrayView<Half8>, ArrayView<ushort>, ArrayView<ushort>, ArrayView<float>, ArrayView<int>, TensorCoreShape>(SkinnyTensorCoreKernels.Gemm16SkinnyNkAhead<Float16Storage, Const1>, bounds)),
            (true, true, 1) => device.Load(ref skinnyNkStreamGemm16[slot], name, acc => acc.LoadStreamKernel<ArrayView<Half8>, ArrayView<Half8>, ArrayView<ushort>, ArrayView<ushort>, ArrayView<float>, ArrayView<int>, TensorCoreShape>(SkinnyTensorCoreKernels.Gemm16SkinnyNkAhead<BFloat16Storage, Const1>, bounds)),
            (true, false, 2) => device.Load(ref skinnyNkStreamGemm16[slot], name, acc => acc.LoadStreamKernel<ArrayView<Half8>, ArrayView<Half8>, ArrayView<ushort>, ArrayView<ushort>, ArrayView<float>, ArrayView<int>, TensorCoreShape>(SkinnyTensorCoreKernels.Gemm16SkinnyNkAhead<Float16Storage, Const2>, bounds)),
            (true, true, 2) => device.Load(ref skinnyNkStreamGemm16[slot], name, acc => acc.LoadStreamKernel<ArrayView<Half8>, ArrayView<Half8>, ArrayView<ushort>, ArrayView<ushort>, ArrayView<float>, ArrayView<int>, TensorCoreShape>(SkinnyTensorCoreKernels.Gemm16SkinnyNkAhead<BFloat16Storage, Const2>, bounds)),
            _ => throw new ArgumentOutOfRangeException(nameof(rowTiles), rowTiles, "The streamed [N, K] kernel takes 1 or 2 n8 row tiles."),
        };
    }

    private Action<KernelConfig, ArrayView<Half8>, ArrayView<Half8>, ArrayView<ushort>, ArrayView<ushort>, ArrayView<float>, ArrayView<int>, TensorCoreShape> SkinnyNkWideKernel(
        bool bf16, int rowTiles)
    {
        var name = $"{nameof(SkinnyTensorCoreKernels.Gemm16SkinnyNkWide)}<{(bf16 ? "bf16" : "f16")},{rowTiles}>";
        int slot = ((rowTiles - 1) * 2) + (bf16 ? 1 : 0);
        var bounds = Bounds(SkinnyTensorCoreKernels.GroupSize, null);
        return (bf16, rowTiles) switch
        {
            (false, 1) => device.Load(ref skinnyNkWideGemm16[slot], name, acc => acc.LoadStreamKernel<ArrayView<Half8>, ArrayView<Half8>, ArrayView<ushort>, ArrayView<ushort>, ArrayView<float>, ArrayView<int>, TensorCoreShape>(SkinnyTensorCoreKernels.Gemm16SkinnyNkWide<Float16Storage, Const1>, bounds)),
            (true, 1) => device.Load(ref skinnyNkWideGemm16[slot], name, acc => acc.LoadStreamKernel<ArrayView<Half8>, ArrayView<Half8>, ArrayView<ushort>, ArrayView<ushort>, ArrayView<float>, ArrayView<int>, TensorCoreShape>(SkinnyTensorCoreKernels.Gemm16SkinnyNkWide<BFloat16Storage, Const1>, bounds)),
            (false, 2) => device.Load(ref skinnyNkWideGemm16[slot], name, acc => acc.LoadStreamKernel<ArrayView<Half8>, ArrayView<Half8>, ArrayView<ushort>, ArrayView<ushort>, ArrayView<float>, ArrayView<int>, TensorCoreShape>(SkinnyTensorCoreKernels.Gemm16SkinnyNkWide<Float16Storage, Const2>, bounds)),
            (true, 2) => device.Load(ref skinnyNkWideGemm16[slot], name, acc => acc.LoadStreamKernel<ArrayView<Half8>, ArrayView<Half8>, ArrayView<ushort>, ArrayView<ushort>, ArrayView<float>, ArrayView<int>, TensorCoreShape>(SkinnyTensorCoreKernels.Gemm16SkinnyNkWide<BFloat16Storage, Const2>, bounds)),
            _ => throw new ArgumentOutOfRangeException(nameof(rowTiles), rowTiles, "The wide [N, K] kernel takes 1 or 2 n8 row tiles."),
        };
    }

    /// <summary>
    /// Whether a product goes to the skinny kernel's [K, N] variant (<see cref="SkinnyTensorCoreKernels.Gemm16SkinnyKn{TMTiles, TFormat, TStepsInFlight}"/>):
    /// the [K, N] switch on (the default), CUDA, tensor cores on, one matrix, weight stored [K, N], 2 ≤ M ≤ <see cref="SkinnyTensorCoreSettings.KnMaxRows"/> (and the row limit)
    /// or M = 1 where the wide body takes it (<see cref="UsesSkinnyKnWide"/>), N even and b 4-byte aligned (4-byte weight
    /// pairs at least; odd N keeps the CUDA-core GEMV).
    /// </summary>
    internal bool UsesSkinnyTensorCoreKn(ArrayView<ushort> a, ArrayView<ushort> b, int batch, int m, int k, int n, bool transposeB) =>
        SkinnySettings.Enabled && SkinnySettings.KnEnabled && TensorCoresEnabled && device.Kind == IlgpuDeviceKind.Cuda && batch == 1 && !transposeB
        && (m >= 2 || UsesSkinnyKnWide(m, k, n, TensorCoreLaunch.DeviceAddress(b)))
        && m <= Math.Min(SkinnySettings.MaxRows, SkinnyTensorCoreSettings.KnMaxRows) && n % 2 == 0
        && TensorCoreLaunch.DeviceAddress(b) % 4 == 0 && TensorCoreLaunch.DeviceAddress(a) % 2 == 0;

    /// <summary>Runs a checked 16-bit [K, N] product on the skinny kernel's [K, N] variant when <see cref="UsesSkinnyTensorCoreKn"/> says so.</summary>
    /// <returns>Whether it ran.</returns>
    private bool TrySkinnyTensorCoreKn(ArrayView<ushort> a, ArrayView<ushort> b, ArrayView<ushort> bias, ArrayView<ushort> c, int batch, int m, int k, int n,
        bool transposeB, float alpha, float beta, bool biasIsMatrix, HalfFormat format)
    {
        if (!UsesSkinnyTensorCoreKn(a, b, batch, m, k, n, transposeB))
        {
            return false;
        }

        bool bf16 = format == HalfFormat.BFloat16;
        var (config, shape, mTiles, wide) = SkinnyKnPlan(m, k, n, TensorCoreLaunch.DeviceAddress(b));
        shape.TransposeB = 0;
        shape.Bf16 = bf16 ? 1 : 0;
        shape.Alpha = alpha;
        shape.Beta = beta;
        shape.HasBias = bias.Length != 0 ? 1 : 0;
        shape.StrideBiasM = biasIsMatrix ? n : 0;
        int layout = SkinnyTensorCoreLaunch.KnLayout(k, n, TensorCoreLaunch.DeviceAddress(a), TensorCoreLaunch.DeviceAddress(b));
        var a8 = (layout & SkinnyTensorCoreKernels.KnVectorActivations) != 0 ? a.Cast<Half8>() : default;
        if (wide && TrySkinnyKnWideCluster(config, shape, a, a8, b, bias, c, layout, bf16))
        {
            return true;
        }

        var partial = shape.SplitK > 1 ? Scratch((long)shape.SplitK * m * n) : default;

        // The 8-byte body (GEMS_SKINNY_KN_VARIANT=old) keeps the launched reduce.
        var tickets = wide
            ? SplitKTickets(shape.SplitK, (long)config.GridDim.X * config.GridDim.Z, (long)m * Math.Min(n, SkinnyTensorCoreKernels.WideBlockN), SkinnyTensorCoreKernels.GroupSize)
            : default;
        if (wide)
        {
            SkinnyKnWideKernel(bf16, SkinnySettings.WideStepsInFlight)(config, a, a8, b.Cast<Half8>(), bias, c, partial, tickets, shape, layout);
        }
        else
        {
            var b4 = (layout & SkinnyTensorCoreKernels.KnWideWeights) != 0 ? b.Cast<ulong>() : default;
            SkinnyKnKernel(mTiles, bf16, SkinnySettings.StepsInFlight)(config, a, a8, b.Cast<uint>(), b4, bias, c, partial, shape, layout);
        }

        if (shape.SplitK > 1 && tickets.Length == 0)
        {
            ReduceSplits16(partial, bias, c, TensorCoreLaunch.ReduceShape(shape), bf16);
        }

        return true;
    }

    /// <summary>The [K, N] skinny kernel's plan for a product, and whether it runs the wide body.</summary>
    private (KernelConfig Config, TensorCoreShape Shape, int MTiles, bool Wide) SkinnyKnPlan(int m, int k, int n, long bAddress)
    {
        bool wide = UsesSkinnyKnWide(m, k, n, bAddress);
        var (config, shape, mTiles) = SkinnyTensorCoreLaunch.Plan(m, k, n, device.MultiprocessorCount, SkinnySettings.GroupsPerSm,
            capSplitsByPartials: SkinnySettings.CapSplitsByPartials, blockN: wide ? SkinnyTensorCoreKernels.WideBlockN : SkinnyTensorCoreKernels.BlockN);
        return (config, shape, mTiles, wide);
    }

    /// <summary>
    /// Whether a 16-bit [K, N] product would run on the wide skinny body with its split-K summed in a thread-block cluster
    /// (<see cref="TrySkinnyKnWideCluster"/>): the skinny [K, N] kernel takes it, split-K sums in clusters here
    /// (<see cref="SplitKSumsInCluster"/>) and its plan's splits are a cluster size — not, for example, the 3 splits of a
    /// 2 × 4096 · 4096 × 11008 product on 132 SMs, which would launch the reduce.
    /// </summary>
    internal bool SkinnyKnSumsInCluster(ArrayView<ushort> a, ArrayView<ushort> b, int m, int k, int n)
    {
        if (!SplitKSumsInCluster || !UsesSkinnyTensorCoreKn(a, b, 1, m, k, n, transposeB: false))
        {
            return false;
        }

        var (config, shape, _, wide) = SkinnyKnPlan(m, k, n, TensorCoreLaunch.DeviceAddress(b));
        return wide && SumsInCluster(config, shape);
    }

    /// <summary>Whether a planned split-K skinny product sums in a cluster: split-K sums in clusters here, one batch, a cluster-sized split.</summary>
    private bool SumsInCluster(KernelConfig config, TensorCoreShape shape) =>
        SplitKSumsInCluster && config.GridDim.Z == 1 && ClusterReduction.SizeFor(shape.SplitK) != 0;

    /// <summary>
    /// Whether a [K, N] product takes the wide body (<see cref="SkinnyTensorCoreKernels.Gemm16SkinnyKnWide{TFormat, TStepsInFlight}"/>):
    /// not switched to the old one, M ≤ 8 (the mma's n8), 16-byte weight rows (N % 8 = 0, b 16-byte aligned), and every
    /// vector offset its copy plan forms within 32 bits (a chunk's rows plus the two steps its running offset may run past).
    /// </summary>
    internal bool UsesSkinnyKnWide(int m, int k, int n, long bAddress) =>
        SkinnySettings.KnBody != SkinnyKnBody.Old && m <= SkinnyTensorCoreKernels.WideMaxRows && n % 8 == 0 && bAddress % 16 == 0
        && ((long)k + (2 * SkinnyTensorCoreKernels.WideKStep)) * (n / 8) < int.MaxValue;

    /// <summary>
    /// Runs a split wide [K, N] product with its splits summed in a thread-block cluster
    /// (<see cref="SkinnyTensorCoreKernels.Gemm16SkinnyKnWideCluster{TFormat, TClusterSize}"/>) when
    /// <c>GEMS_SPLITK_REDUCE</c> is unset (or <c>cluster</c>), the device runs clusters (<see cref="Sm90aPtx.Supported"/>), the plan's splits are a
    /// cluster size (<see cref="ClusterReduction.SizeFor"/>) and no earlier cluster kernel failed to load.
    /// </summary>
    /// <returns>Whether it ran (otherwise the caller writes partials and reduces them as before).</returns>
    private bool TrySkinnyKnWideCluster(KernelConfig config, TensorCoreShape shape, ArrayView<ushort> a, ArrayView<Half8> a8, ArrayView<ushort> b,
        ArrayView<ushort> bias, ArrayView<ushort> c, int layout, bool bf16)
    {
        if (!SumsInCluster(config, shape))
        {
            return false;
        }

        int size = ClusterReduction.SizeFor(shape.SplitK);

        Action<KernelConfig, ArrayView<ushort>, ArrayView<Half8>, ArrayView<Half8>, ArrayView<ushort>, ArrayView<ushort>, TensorCoreShape, int> kernel;
        try
        {
            kernel = SkinnyKnWideClusterKernel(bf16, size);
        }
        catch (IlgpuKernelCompileException ex)
        {
            // Recorded on the device too (IlgpuDevice.Load); this process keeps the launched reduce.
            ClusterLoadError = ex.Message;
            return false;
        }

        var clusterConfig = new KernelConfig(config.GridDim, config.GroupDim,
            SharedMemoryConfig.RequestDynamic<float>(SkinnyTensorCoreKernels.ClusterTileBytes / sizeof(float)));
        kernel(clusterConfig, a, a8, b.Cast<Half8>(), bias, c, shape, layout);
        return true;
    }

    /// <summary>
    /// Whether split-K products with a cluster kernel sum their splits in it: <c>GEMS_SPLITK_REDUCE</c> unset (or
    /// <c>cluster</c>), a device that runs clusters (<see cref="Sm90aPtx.Supported"/>) and no cluster kernel that failed to
    /// load in this process.
    /// </summary>
    internal bool SplitKSumsInCluster =>
        SplitKReduceMode == SplitKReduce.Cluster && ClusterLoadError is null && Sm90aPtx.Supported(device.Accelerator);

    /// <summary>
    /// Why a cluster kernel (the default <c>GEMS_SPLITK_REDUCE</c>) could not be loaded on this device, after which the process
    /// keeps the launched reduce; <see langword="null"/> when none failed or none was asked for.
    /// </summary>
    public string? ClusterLoadError { get; private set; }

    private Action<KernelConfig, ArrayView<ushort>, ArrayView<Half8>, ArrayView<Half8>, ArrayView<ushort>, ArrayView<ushort>, TensorCoreShape, int> SkinnyKnWideClusterKernel(
        bool bf16, int size)
    {
        var name = $"{nameof(SkinnyTensorCoreKernels.Gemm16SkinnyKnWideCluster)}<{(bf16 ? "bf16" : "f16")},{size}>";
        int slot = ((size == 2 ? 0 : size == 4 ? 1 : 2) * 2) + (bf16 ? 1 : 0);
        var bounds = Bounds(SkinnyTensorCoreKernels.GroupSize, null);
        return (bf16, size) switch
        {
            (false, 2) => device.Load(ref skinnyKnWideClusterGemm16[slot], name, acc => acc.LoadStreamKernel<ArrayView<ushort>, ArrayView<Half8>, ArrayView<Half8>, ArrayView<ushort>, ArrayView<ushort>, TensorCoreShape, int>(SkinnyTensorCoreKernels.Gemm16SkinnyKnWideCluster<Float16Storage, Const2>, bounds)),
            (true, 2) => device.Load(ref skinnyKnWideClusterGemm16[slot], name, acc => acc.LoadStreamKernel<ArrayView<ushort>, ArrayView<Half8>, ArrayView<Half8>, ArrayView<ushort>, ArrayView<ushort>, TensorCoreShape, int>(SkinnyTensorCoreKernels.Gemm16SkinnyKnWideCluster<BFloat16Storage, Const2>, bounds)),
            (false, 4) => device.Load(ref skinnyKnWideClusterGemm16[slot], name, acc => acc.LoadStreamKernel<ArrayView<ushort>, ArrayView<Half8>, ArrayView<Half8>, ArrayView<ushort>, ArrayView<ushort>, TensorCoreShape, int>(SkinnyTensorCoreKernels.Gemm16SkinnyKnWideCluster<Float16Storage, Const4>, bounds)),
            (true, 4) => device.Load(ref skinnyKnWideClusterGemm16[slot], name, acc => acc.LoadStreamKernel<ArrayView<ushort>, ArrayView<Half8>, ArrayView<Half8>, ArrayView<ushort>, ArrayView<ushort>, TensorCoreShape, int>(SkinnyTensorCoreKernels.Gemm16SkinnyKnWideCluster<BFloat16Storage, Const4>, bounds)),
            (false, 8) => device.Load(ref skinnyKnWideClusterGemm16[slot], name, acc => acc.LoadStreamKernel<ArrayView<ushort>, ArrayView<Half8>, ArrayView<Half8>, ArrayView<ushort>, ArrayView<ushort>, TensorCoreShape, int>(SkinnyTensorCoreKernels.Gemm16SkinnyKnWideCluster<Float16Storage, Const8>, bounds)),
            (true, 8) => device.Load(ref skinnyKnWideClusterGemm16[slot], name, acc => acc.LoadStreamKernel<ArrayView<ushort>, ArrayView<Half8>, ArrayView<Half8>, ArrayView<ushort>, ArrayView<ushort>, TensorCoreShape, int>(SkinnyTensorCoreKernels.Gemm16SkinnyKnWideCluster<BFloat16Storage, Const8>, bounds)),
            _ => throw new ArgumentOutOfRangeException(nameof(size), size, "The cluster kernels are built for clusters of 2, 4 or 8 groups."),
        };
    }

    private Action<KernelConfig, ArrayView<ushort>, ArrayView<Half8>, ArrayView<Half8>, ArrayView<ushort>, ArrayView<ushort>, ArrayView<float>, ArrayView<int>, TensorCoreShape, int> SkinnyKnWideKernel(
        bool bf16, int stepsInFlight)
    {
        var name = $"{nameof(SkinnyTensorCoreKernels.Gemm16SkinnyKnWide)}<{(bf16 ? "bf16" : "f16")},{stepsInFlight}>";
        int slot = ((stepsInFlight - 1) * 2) + (bf16 ? 1 : 0);
        var bounds = Bounds(SkinnyTensorCoreKernels.GroupSize, null);
        return (bf16, stepsInFlight) switch
        {
            (false, 1) => device.Load(ref skinnyKnWideGemm16[slot], name, acc => acc.LoadStreamKernel<ArrayView<ushort>, ArrayView<Half8>, ArrayView<Half8>, ArrayView<ushort>, ArrayView<ushort>, ArrayView<float>, ArrayView<int>, TensorCoreShape, int>(SkinnyTensorCoreKernels.Gemm16SkinnyKnWide<Float16Storage, Const1>, bounds)),
            (true, 1) => device.Load(ref skinnyKnWideGemm16[slot], name, acc => acc.LoadStreamKernel<ArrayView<ushort>, ArrayView<Half8>, ArrayView<Half8>, ArrayView<ushort>, ArrayView<ushort>, ArrayView<float>, ArrayView<int>, TensorCoreShape, int>(SkinnyTensorCoreKernels.Gemm16SkinnyKnWide<BFloat16Storage, Const1>, bounds)),
            (false, 2) => device.Load(ref skinnyKnWideGemm16[slot], name, acc => acc.LoadStreamKernel<ArrayView<ushort>, ArrayView<Half8>, ArrayView<Half8>, ArrayView<ushort>, ArrayView<ushort>, ArrayView<float>, ArrayView<int>, TensorCoreShape, int>(SkinnyTensorCoreKernels.Gemm16SkinnyKnWide<Float16Storage, Const2>, bounds)),
            (true, 2) => device.Load(ref skinnyKnWideGemm16[slot], name, acc => acc.LoadStreamKernel<ArrayView<ushort>, ArrayView<Half8>, ArrayView<Half8>, ArrayView<ushort>, ArrayView<ushort>, ArrayView<float>, ArrayView<int>, TensorCoreShape, int>(SkinnyTensorCoreKernels.Gemm16SkinnyKnWide<BFloat16Storage, Const2>, bounds)),
            _ => throw new ArgumentOutOfRangeException(nameof(stepsInFlight), stepsInFlight, "The wide [K, N] kernel takes 1 or 2 steps in flight."),
        };
    }

    private Action<KernelConfig, ArrayView<ushort>, ArrayView<Half8>, ArrayView<uint>, ArrayView<ulong>, ArrayView<ushort>, ArrayView<ushort>, ArrayView<float>, TensorCoreShape, int> SkinnyKnKernel(
        int mTiles, bool bf16, int stepsInFlight)
    {
        var name = $"{nameof(SkinnyTensorCoreKernels.Gemm16SkinnyKn)}<{mTiles},{(bf16 ? "bf16" : "f16")},{stepsInFlight}>";
        int slot = ((stepsInFlight - 1) * 6) + (bf16 ? 3 : 0) + (mTiles switch { 1 => 0, 2 => 1, _ => 2 });
        var bounds = Bounds(SkinnyTensorCoreKernels.GroupSize, null);
        return (mTiles, bf16, stepsInFlight) switch
        {
            (1, false, 1) => device.Load(ref skinnyKnGemm16[slot], name, acc => acc.LoadStreamKernel<ArrayView<ushort>, ArrayView<Half8>, ArrayView<uint>, ArrayView<ulong>, ArrayView<ushort>, ArrayView<ushort>, ArrayView<float>, TensorCoreShape, int>(SkinnyTensorCoreKernels.Gemm16SkinnyKn<Const1, Float16Storage, Const1>, bounds)),
            (2, false, 1) => device.Load(ref skinnyKnGemm16[slot], name, acc => acc.LoadStreamKernel<ArrayView<ushort>, ArrayView<Half8>, ArrayView<uint>, ArrayView<ulong>, ArrayView<ushort>, ArrayView<ushort>, ArrayView<float>, TensorCoreShape, int>(SkinnyTensorCoreKernels.Gemm16SkinnyKn<Const2, Float16Storage, Const1>, bounds)),
            (4, false, 1) => device.Load(ref skinnyKnGemm16[slot], name, acc => acc.LoadStreamKernel<ArrayView<ushort>, ArrayView<Half8>, ArrayView<uint>, ArrayView<ulong>, ArrayView<ushort>, ArrayView<ushort>, ArrayView<float>, TensorCoreShape, int>(SkinnyTensorCoreKernels.Gemm16SkinnyKn<Const4, Float16Storage, Const1>, bounds)),
            (1, true, 1) => device.Load(ref skinnyKnGemm16[slot], name, acc => acc.LoadStreamKernel<ArrayView<ushort>, ArrayView<Half8>, ArrayView<uint>, ArrayView<ulong>, ArrayView<ushort>, ArrayView<ushort>, ArrayView<float>, TensorCoreShape, int>(SkinnyTensorCoreKernels.Gemm16SkinnyKn<Const1, BFloat16Storage, Const1>, bounds)),
            (2, true, 1) => device.Load(ref skinnyKnGemm16[slot], name, acc => acc.LoadStreamKernel<ArrayView<ushort>, ArrayView<Half8>, ArrayView<uint>, ArrayView<ulong>, ArrayView<ushort>, ArrayView<ushort>, ArrayView<float>, TensorCoreShape, int>(SkinnyTensorCoreKernels.Gemm16SkinnyKn<Const2, BFloat16Storage, Const1>, bounds)),
            (4, true, 1) => device.Load(ref skinnyKnGemm16[slot], name, acc => acc.LoadStreamKernel<ArrayView<ushort>, ArrayView<Half8>, ArrayView<uint>, ArrayView<ulong>, ArrayView<ushort>, ArrayView<ushort>, ArrayView<float>, TensorCoreShape, int>(SkinnyTensorCoreKernels.Gemm16SkinnyKn<Const4, BFloat16Storage, Const1>, bounds)),
            (1, false, 2) => device.Load(ref skinnyKnGemm16[slot], name, acc => acc.LoadStreamKernel<ArrayView<ushort>, ArrayView<Half8>, ArrayView<uint>, ArrayView<ulong>, ArrayView<ushort>, ArrayView<ushort>, ArrayView<float>, TensorCoreShape, int>(SkinnyTensorCoreKernels.Gemm16SkinnyKn<Const1, Float16Storage, Const2>, bounds)),
            (2, false, 2) => device.Load(ref skinnyKnGemm16[slot], name, acc => acc.LoadStreamKernel<ArrayView<ushort>, ArrayView<Half8>, ArrayView<uint>, ArrayView<ulong>, ArrayView<ushort>, ArrayView<ushort>, ArrayView<float>, TensorCoreShape, int>(SkinnyTensorCoreKernels.Gemm16SkinnyKn<Const2, Float16Storage, Const2>, bounds)),
            (4, false, 2) => device.Load(ref skinnyKnGemm16[slot], name, acc => acc.LoadStreamKernel<ArrayView<ushort>, ArrayView<Half8>, ArrayView<uint>, ArrayView<ulong>, ArrayView<ushort>, ArrayView<ushort>, ArrayView<float>, TensorCoreShape, int>(SkinnyTensorCoreKernels.Gemm16SkinnyKn<Const4, Float16Storage, Const2>, bounds)),
            (1, true, 2) => device.Load(ref skinnyKnGemm16[slot], name, acc => acc.LoadStreamKernel<ArrayView<ushort>, ArrayView<Half8>, ArrayView<uint>, ArrayView<ulong>, ArrayView<ushort>, ArrayView<ushort>, ArrayView<float>, TensorCoreShape, int>(SkinnyTensorCoreKernels.Gemm16SkinnyKn<Const1, BFloat16Storage, Const2>, bounds)),
            (2, true, 2) => device.Load(ref skinnyKnGemm16[slot], name, acc => acc.LoadStreamKernel<ArrayView<ushort>, ArrayView<Half8>, ArrayView<uint>, ArrayView<ulong>, ArrayView<ushort>, ArrayView<ushort>, ArrayView<float>, TensorCoreShape, int>(SkinnyTensorCoreKernels.Gemm16SkinnyKn<Const2, BFloat16Storage, Const2>, bounds)),
            (4, true, 2) => device.Load(ref skinnyKnGemm16[slot], name, acc => acc.LoadStreamKernel<ArrayView<ushort>, ArrayView<Half8>, ArrayView<uint>, ArrayView<ulong>, ArrayView<ushort>, ArrayView<ushort>, ArrayView<float>, TensorCoreShape, int>(SkinnyTensorCoreKernels.Gemm16SkinnyKn<Const4, BFloat16Storage, Const2>, bounds)),
            _ => throw new ArgumentOutOfRangeException(nameof(mTiles), mTiles, "The skinny kernel takes 1, 2 or 4 m-tiles and 1 or 2 steps in flight."),
        };
    }

    private Action<KernelConfig, ArrayView<Half8>, ArrayView<Half8>, ArrayView<ushort>, ArrayView<ushort>, ArrayView<float>, ArrayView<int>, TensorCoreShape> SkinnyKernel(int mTiles, bool bf16, int stepsInFlight)
    {
        var name = $"{nameof(SkinnyTensorCoreKernels.Gemm16Skinny)}<{mTiles},{(bf16 ? "bf16" : "f16")},{stepsInFlight}>";
        int slot = ((stepsInFlight - 1) * 6) + (bf16 ? 3 : 0) + (mTiles switch { 1 => 0, 2 => 1, _ => 2 });
        var bounds = Bounds(SkinnyTensorCoreKernels.GroupSize, null);
        return (mTiles, bf16, stepsInFlight) switch
        {
            (1, false, 1) => device.Load(ref skinnyGemm16[slot], name, acc => acc.LoadStreamKernel<ArrayView<Half8>, ArrayView<Half8>, ArrayView<ushort>, ArrayView<ushort>, ArrayView<float>, ArrayView<int>, TensorCoreShape>(SkinnyTensorCoreKernels.Gemm16Skinny<Const1, Float16Storage, Const1>, bounds)),
            (2, false, 1) => device.Load(ref skinnyGemm16[slot], name, acc => acc.LoadStreamKernel<ArrayView<Half8>, ArrayView<Half8>, ArrayView<ushort>, ArrayView<ushort>, ArrayView<float>, ArrayView<int>, TensorCoreShape>(SkinnyTensorCoreKernels.Gemm16Skinny<Const2, Float16Storage, Const1>, bounds)),
            (4, false, 1) => device.Load(ref skinnyGemm16[slot], name, acc => acc.LoadStreamKernel<ArrayView<Half8>, ArrayView<Half8>, ArrayView<ushort>, ArrayView<ushort>, ArrayView<float>, ArrayView<int>, TensorCoreShape>(SkinnyTensorCoreKernels.Gemm16Skinny<Const4, Float16Storage, Const1>, bounds)),
            (1, true, 1) => device.Load(ref skinnyGemm16[slot], name, acc => acc.LoadStreamKernel<ArrayView<Half8>, ArrayView<Half8>, ArrayView<ushort>, ArrayView<ushort>, ArrayView<float>, ArrayView<int>, TensorCoreShape>(SkinnyTensorCoreKernels.Gemm16Skinny<Const1, BFloat16Storage, Const1>, bounds)),
            (2, true, 1) => device.Load(ref skinnyGemm16[slot], name, acc => acc.LoadStreamKernel<ArrayView<Half8>, ArrayView<Half8>, ArrayView<ushort>, ArrayView<ushort>, ArrayView<float>, ArrayView<int>, TensorCoreShape>(SkinnyTensorCoreKernels.Gemm16Skinny<Const2, BFloat16Storage, Const1>, bounds)),
            (4, true, 1) => device.Load(ref skinnyGemm16[slot], name, acc => acc.LoadStreamKernel<ArrayView<Half8>, ArrayView<Half8>, ArrayView<ushort>, ArrayView<ushort>, ArrayView<float>, ArrayView<int>, TensorCoreShape>(SkinnyTensorCoreKernels.Gemm16Skinny<Const4, BFloat16Storage, Const1>, bounds)),
            (1, false, 2) => device.Load(ref skinnyGemm16[slot], name, acc => acc.LoadStreamKernel<ArrayView<Half8>, ArrayView<Half8>, ArrayView<ushort>, ArrayView<ushort>, ArrayView<float>, ArrayView<int>, TensorCoreShape>(SkinnyTensorCoreKernels.Gemm16Skinny<Const1, Float16Storage, Const2>, bounds)),
            (2, false, 2) => device.Load(ref skinnyGemm16[slot], name, acc => acc.LoadStreamKernel<ArrayView<Half8>, ArrayView<Half8>, ArrayView<ushort>, ArrayView<ushort>, ArrayView<float>, ArrayView<int>, TensorCoreShape>(SkinnyTensorCoreKernels.Gemm16Skinny<Const2, Float16Storage, Const2>, bounds)),
            (4, false, 2) => device.Load(ref skinnyGemm16[slot], name, acc => acc.LoadStreamKernel<ArrayView<Half8>, ArrayView<Half8>, ArrayView<ushort>, ArrayView<ushort>, ArrayView<float>, ArrayView<int>, TensorCoreShape>(SkinnyTensorCoreKernels.Gemm16Skinny<Const4, Float16Storage, Const2>, bounds)),
            (1, true, 2) => device.Load(ref skinnyGemm16[slot], name, acc => acc.LoadStreamKernel<ArrayView<Half8>, ArrayView<Half8>, ArrayView<ushort>, ArrayView<ushort>, ArrayView<float>, ArrayView<int>, TensorCoreShape>(SkinnyTensorCoreKernels.Gemm16Skinny<Const1, BFloat16Storage, Const2>, bounds)),
            (2, true, 2) => device.Load(ref skinnyGemm16[slot], name, acc => acc.LoadStreamKernel<ArrayView<Half8>, ArrayView<Half8>, ArrayView<ushort>, ArrayView<ushort>, ArrayView<float>, ArrayView<int>, TensorCoreShape>(SkinnyTensorCoreKernels.Gemm16Skinny<Const2, BFloat16Storage, Const2>, bounds)),
            (4, true, 2) => device.Load(ref skinnyGemm16[slot], name, acc => acc.LoadStreamKernel<ArrayView<Half8>, ArrayView<Half8>, ArrayView<ushort>, ArrayView<ushort>, ArrayView<float>, ArrayView<int>, TensorCoreShape>(SkinnyTensorCoreKernels.Gemm16Skinny<Const4, BFloat16Storage, Const2>, bounds)),
            _ => throw new ArgumentOutOfRangeException(nameof(mTiles), mTiles, "The skinny kernel takes 1, 2 or 4 m-tiles and 1 or 2 steps in flight."),
        };
    }
}

/// <summary>
/// Settings of the skinny tensor-core kernel, from the environment (read once per process) so one measuring run can time
/// the old and the new path: <c>GEMS_SKINNY_TC</c> (<c>0</c> turns it off: decode products go back to the CUDA-core GEMV
/// for M ≤ 16 and the large-tile tensor-core kernel above), <c>GEMS_SKINNY_TC_MAX_ROWS</c> (most rows it takes, default
/// 64; more rows run as Grid.Z blocks of 64 that each read the whole weight), <c>GEMS_SKINNY_TC_GROUPS_PER_SM</c> (the
/// split-K plan's target of groups per SM, default 4), <c>GEMS_SKINNY_TC_PARTIAL_CAP</c> (<c>0</c> lifts the cap that keeps
/// the split partials within half the weight's bytes, so the groups-per-SM target alone sets the splits),
/// <c>GEMS_SKINNY_TC_STEPS</c> (K steps of weight vectors in flight per warp: 2, the default — 16×11008·4096 bf16 0.049 →
/// 0.039 ms on the H200, Run 15 — or 1; the wide [K, N] body takes 1 unless the variable says 2: Run 38, H200, its
/// 80-register one-step form was 2–3% faster at 1–8 rows in every pair), <c>GEMS_SKINNY_TC_KN</c> (<c>0</c> / <c>off</c> / <c>false</c> keeps [K, N]-weight
/// products on the CUDA-core [K, N] GEMV; by default those with 2 to <see cref="KnMaxRows"/> rows, and one row on the wide body, take the kernel's [K, N]
/// variant), <c>GEMS_SKINNY_KN_VARIANT</c> (<see cref="SkinnyKnBody"/>: <c>old</c> keeps every [K, N] product on the
/// 8-byte-load body (and one-row products on the CUDA-core GEMV); by default those with N % 8 = 0, a 16-byte aligned
/// weight and 1–8 rows take the wide body: 16-byte loads, a copy plan, the weight as the A operand; Run 35, H200: bf16
/// 1 / 2 / 8 rows × 4096² 1751 / 1607 / 1409 → 1936 / 2054 / 2001 GB/s), <c>GEMS_SKINNY_NK_VARIANT</c> (<see cref="SkinnyNkBody"/>:
/// by default, or <c>ahead</c>, [N, K] products of 1–16 rows, any N, take the streamed body with two batches in flight per
/// warp — no split-K, long contiguous runs of each weight row; H200 Run 70, bf16 2 / 4 / 8 × 4096² 1825 / 1818 / 1809 →
/// 2353 / 2350 / 2334 GB/s against the narrow body in the same call, and Run 133 +0.1 to +2.9% over one batch in flight;
/// <c>stream</c> keeps one batch in flight (the default of Runs 70–132); <c>narrow</c> keeps the narrow body for 2–64 rows and one-row products on the GEMV;
/// <c>wide</c> sends 2–16 rows with N % 8 = 0 to the wide [N, K] body: Runs 49–50, 1–2% faster than narrow at 2–8 rows and
/// 24% slower at 16 × 11008 × 4096), <c>GEMS_SKINNY_NK_STREAM_WARPS</c> (<c>2</c>, <c>4</c> or <c>8</c>: the streamed bodies'
/// warps per group for every shape instead of the plan's choice, held to <see cref="SkinnyTensorCoreKernels.NkAheadMaxWarps"/>
/// for the body with two batches in flight; <see cref="SkinnyTensorCoreLaunch.PlanNkStream"/>).
/// </summary>
internal readonly record struct SkinnyTensorCoreSettings(bool Enabled, int MaxRows, int GroupsPerSm, bool CapSplitsByPartials = true, int StepsInFlight = 2,
    bool KnEnabled = true, SkinnyKnBody KnBody = SkinnyKnBody.Wide, int WideStepsInFlight = 1, SkinnyNkBody NkBody = SkinnyNkBody.Ahead, int NkStreamWarps = 0)
{
    /// <summary>
    /// Most rows of a [K, N] product on the skinny kernel. H200 Run 18 (bf16): 2 / 8 / 16 rows 0.024 / 0.026 / 0.053 ms
    /// against 0.029 / 0.045 / 0.140 on the CUDA-core GEMV, but 64 rows 0.067 ms against 0.045 on the large-tile
    /// tensor-core kernel, which keeps the products above 16 rows.
    /// </summary>
    public const int KnMaxRows = 16;

    /// <summary>Default most rows: one group's four m-tiles.</summary>
    public const int DefaultMaxRows = SkinnyTensorCoreKernels.MaxGroupRows;

    /// <summary>Default groups per SM for the split-K plan.</summary>
    public const int DefaultGroupsPerSm = 4;

    private static readonly Lazy<SkinnyTensorCoreSettings> FromVariables = new(() => Parse(
        Environment.GetEnvironmentVariable("GEMS_SKINNY_TC"),
        Environment.GetEnvironmentVariable("GEMS_SKINNY_TC_MAX_ROWS"),
        Environment.GetEnvironmentVariable("GEMS_SKINNY_TC_GROUPS_PER_SM"),
        Environment.GetEnvironmentVariable("GEMS_SKINNY_TC_PARTIAL_CAP"),
        Environment.GetEnvironmentVariable("GEMS_SKINNY_TC_STEPS"),
        Environment.GetEnvironmentVariable("GEMS_SKINNY_TC_KN"),
        Environment.GetEnvironmentVariable("GEMS_SKINNY_KN_VARIANT"),
        Environment.GetEnvironmentVariable("GEMS_SKINNY_NK_VARIANT"),
        Environment.GetEnvironmentVariable("GEMS_SKINNY_NK_STREAM_WARPS")));

    /// <summary>The settings the environment names (read once per process).</summary>
    public static SkinnyTensorCoreSettings FromEnvironment() => FromVariables.Value;

    /// <summary>
    /// Settings from the variables' text: unset, empty or unparsable values take the defaults; "0" / "off" / "false" turns
    /// a switch off.
    /// </summary>
    public static SkinnyTensorCoreSettings Parse(string? enabled, string? maxRows, string? groupsPerSm, string? partialCap = null, string? steps = null,
        string? kn = null, string? knVariant = null, string? nkVariant = null, string? nkStreamWarps = null) => new(
        IsOn(enabled),
        int.TryParse(maxRows, out int rows) && rows >= 2 ? rows : DefaultMaxRows,
        int.TryParse(groupsPerSm, out int groups) && groups >= 1 ? groups : DefaultGroupsPerSm,
        IsOn(partialCap),
        steps?.Trim() == "1" ? 1 : 2,
        IsOn(kn),
        knVariant?.Trim().ToLowerInvariant() == "old" ? SkinnyKnBody.Old : SkinnyKnBody.Wide,
        steps?.Trim() == "2" ? 2 : 1,
        nkVariant?.Trim().ToLowerInvariant() switch { "wide" => SkinnyNkBody.Wide, "narrow" => SkinnyNkBody.Narrow, "stream" => SkinnyNkBody.Stream, _ => SkinnyNkBody.Ahead },
        nkStreamWarps?.Trim() switch { "2" => 2, "4" => 4, "8" => 8, _ => 0 });

    private static bool IsOn(string? setting) => setting?.Trim().ToLowerInvariant() is not ("0" or "off" or "false");
}

/// <summary>Which body runs a [K, N] product on the skinny kernel (<c>GEMS_SKINNY_KN_VARIANT</c>).</summary>
internal enum SkinnyKnBody
{
    /// <summary>The wide body (16-byte weight rows, copy plan, weight as the A operand) for 1–8 rows where it applies, else the 8-byte body.</summary>
    Wide,

    /// <summary>The 8-byte-load body for every [K, N] product of 2 or more rows, one-row products on the CUDA-core GEMV (the rule before the wide body).</summary>
    Old,
}

/// <summary>Which body runs an [N, K] product on the skinny kernel (<c>GEMS_SKINNY_NK_VARIANT</c>).</summary>
internal enum SkinnyNkBody
{
    /// <summary>The narrow body (<see cref="SkinnyTensorCoreKernels.Gemm16Skinny{TMTiles, TFormat, TStepsInFlight}"/>: activation rows as m16, 128-column groups) for every row count from 2 (<c>narrow</c>).</summary>
    Narrow,

    /// <summary>The wide body (<see cref="SkinnyTensorCoreKernels.Gemm16SkinnyNkWide{TFormat, TRowTiles}"/>: weight rows as m16, 64-column groups) for 2–16 rows and N % 8 = 0, else the narrow one.</summary>
    Wide,

    /// <summary>
    /// The streamed body (<see cref="SkinnyTensorCoreKernels.Gemm16SkinnyNkStream{TFormat, TRowTiles}"/>: weight rows as m16,
    /// 16-column groups of 2, 4 or 8 warps reading long runs of each row, no split-K, one batch in flight per warp) for 1–16
    /// rows, else the narrow one (<c>stream</c>; the default of Runs 70–132).
    /// </summary>
    Stream,

    /// <summary>
    /// The streamed body with two batches in flight per warp (<see cref="SkinnyTensorCoreKernels.Gemm16SkinnyNkAhead{TFormat, TRowTiles}"/>,
    /// groups of 2 or 4 warps) for the rows the streamed one takes (the default since Run 133: +0.1 to +2.9% on the H200).
    /// </summary>
    Ahead,
}

/// <summary>Launch plan of <see cref="SkinnyTensorCoreKernels"/> (shared by the facade and the tests).</summary>
internal static class SkinnyTensorCoreLaunch
{
    /// <summary>
    /// Layout flags of the [K, N] kernel: 16-byte activation vectors when K % 8 = 0 and a is 16-byte aligned, 8-byte weight
    /// quads when N % 4 = 0 and b is 8-byte aligned (else element-wise activations, 4-byte weight pairs).
    /// </summary>
    public static int KnLayout(int k, int n, long aAddress, long bAddress) =>
        (k % 8 == 0 && aAddress % 16 == 0 ? SkinnyTensorCoreKernels.KnVectorActivations : 0)
        | (n % 4 == 0 && bAddress % 8 == 0 ? SkinnyTensorCoreKernels.KnWideWeights : 0);

    /// <summary>
    /// Grid and shape (M, N, K, no split; the caller fills format, alpha, beta and bias) of the streamed [N, K] body: one
    /// group per <see cref="SkinnyTensorCoreKernels.NkStreamBlockN"/> columns, of the fewest warps (2, 4 or 8) that still
    /// put 8 warps per SM to work, else 8 (H200 Run 70, same call: N = 4096's 256 groups take 8 — 2 warps lost 11%, 4 and 8
    /// within 1%; N = 11008's 688 groups take 2 — 3150 GB/s against 2720 with 4 warps and 2895 with 8: fewer, longer
    /// warps fit one wave where 4 left a partial second); <paramref name="warps"/> &gt; 0 forces a size
    /// (<c>GEMS_SKINNY_NK_STREAM_WARPS</c>; tests). A device that reports no SMs (the simulator) takes 4.
    /// <paramref name="mostWarps"/> caps the size, forced or planned (the two-batches-in-flight body: <see cref="SkinnyTensorCoreKernels.NkAheadMaxWarps"/>).
    /// </summary>
    public static (KernelConfig Config, TensorCoreShape Shape) PlanNkStream(int m, int k, int n, int multiprocessors, int warps = 0,
        int mostWarps = SkinnyTensorCoreKernels.NkStreamMaxWarps)
    {
        int groups = (n + SkinnyTensorCoreKernels.NkStreamBlockN - 1) / SkinnyTensorCoreKernels.NkStreamBlockN;
        int groupWarps = warps > 0 ? Math.Min(warps, mostWarps) : multiprocessors > 0 ? StreamWarps(groups, multiprocessors, mostWarps) : Math.Min(4, mostWarps);
        return (new KernelConfig(new Index3D(groups, 1, 1), new Index3D(groupWarps * 32, 1, 1)), NkShape(m, k, n, 1, k));
    }

    /// <summary>The shape of an [N, K] product with alpha 1 and no bias, its K in <paramref name="splits"/> chunks of <paramref name="chunk"/>; callers fill the rest.</summary>
    private static TensorCoreShape NkShape(int m, int k, int n, int splits, int chunk) => new()
    {
        M = m,
        N = n,
        K = k,
        TransposeB = 1,
        Alpha = 1f,
        StrideBiasN = 1,
        SplitK = splits,
        KChunk = chunk,
    };

    /// <summary>
    /// Warps per group of a streamed [N, K] product (the 16-bit body's and the float32 GEMV's plan): the fewest of 2, 4, 8,
    /// … below <paramref name="most"/> whose <paramref name="groups"/> put at least 8 warps per SM to work, else
    /// <paramref name="most"/>.
    /// </summary>
    public static int StreamWarps(int groups, int multiprocessors, int most)
    {
        for (int w = 2; w < most; w *= 2)
        {
            if ((long)groups * w >= 8L * multiprocessors)
            {
                return w;
            }
        }

        return most;
    }

    /// <summary>16-row m-tiles per group for <paramref name="m"/> rows: 1, 2 or 4 (more than 64 rows: Grid.Z blocks of 4).</summary>
    public static int MTiles(int m) => m <= 16 ? 1 : m <= 32 ? 2 : 4;

    /// <summary>
    /// Most splits whose float32 partials (written, then read by the reduction: 8 bytes per split and output element)
    /// stay within half the weight's bytes (2 per element of [N, K]): splits · M · 8 ≤ K. At 64 rows of K = 4096 that is
    /// 8 (16 splits would move as many partial bytes as weight bytes); at 16 rows of K = 11008, 86 (no limit in practice).
    /// </summary>
    public static int MaxSplitsForPartials(int m, int k) => Math.Max(1, k / (8 * m));

    /// <summary>
    /// Grid, shape (M, N, K, split-K set; the caller fills format, alpha, beta and bias) and m-tiles for one product. K is
    /// split into chunks of whole <see cref="SkinnyTensorCoreKernels.KStep"/> steps so that column groups × row blocks ×
    /// splits come as close to <paramref name="groupsPerSm"/> groups per SM as one wave allows (memory-bound: every SM needs
    /// several groups' loads in flight; rounding up had put 16 × 4096 · 4096 × 11008 at 602 groups on 528 slots, a short
    /// second wave: Run 48) and, with <paramref name="capSplitsByPartials"/>, no more than <see cref="MaxSplitsForPartials"/>;
    /// <paramref name="requestedSplits"/> &gt; 0 forces a split count instead (tests; the simulator has no SMs); <paramref name="blockN"/> is
    /// the columns of one group (<see cref="SkinnyTensorCoreKernels.WideBlockN"/> for the wide [K, N] body).
    /// </summary>
    public static (KernelConfig Config, TensorCoreShape Shape, int MTiles) Plan(int m, int k, int n, int multiprocessors, int groupsPerSm, int requestedSplits = 0,
        bool capSplitsByPartials = true, int blockN = SkinnyTensorCoreKernels.BlockN)
    {
        int mTiles = MTiles(m);
        int rowBlocks = (m + (mTiles * 16) - 1) / (mTiles * 16);
        int columnGroups = (n + blockN - 1) / blockN;
        int steps = (k + SkinnyTensorCoreKernels.KStep - 1) / SkinnyTensorCoreKernels.KStep;
        long groups = (long)columnGroups * rowBlocks;
        int wanted = requestedSplits > 0
            ? requestedSplits
            : multiprocessors > 0 ? (int)Math.Min(Math.Max(1, (long)multiprocessors * groupsPerSm / groups), capSplitsByPartials ? MaxSplitsForPartials(m, k) : int.MaxValue) : 1;
        int stepsPerChunk = (steps + Math.Min(wanted, steps) - 1) / Math.Min(wanted, steps);
        int splits = (steps + stepsPerChunk - 1) / stepsPerChunk;
        var shape = NkShape(m, k, n, splits, splits > 1 ? stepsPerChunk * SkinnyTensorCoreKernels.KStep : k);
        return (new KernelConfig(new Index3D(columnGroups, splits, rowBlocks), new Index3D(SkinnyTensorCoreKernels.GroupSize, 1, 1)), shape, mTiles);
    }
}
