using System;
using ILGPU;
using ILGPU.Runtime;
using ILGPU.Runtime.Cuda;

namespace GemsInjector.Kernels.Ilgpu;

public sealed partial class IlgpuKernels
{
    // bf16 [N, K], bf16 [K, N], f16 [N, K], f16 [K, N]; then the same four of the n64 variant.
    private readonly Action<KernelConfig, ArrayView<ushort>, ArrayView<ushort>, ArrayView<ushort>, ArrayView<ushort>, ArrayView<float>, TensorCoreShape>?[] wgmmaSkinnyGemm16 =
        new Action<KernelConfig, ArrayView<ushort>, ArrayView<ushort>, ArrayView<ushort>, ArrayView<ushort>, ArrayView<float>, TensorCoreShape>?[8];

    // The n64 cluster form. Slots: (cluster size 2, 4, 8 → 0, 1, 2) · 4 + (f16 ? 2 : 0) + ([K, N] b ? 1 : 0).
    private readonly Action<KernelConfig, ArrayView<ushort>, ArrayView<ushort>, ArrayView<ushort>, ArrayView<ushort>, TensorCoreShape>?[] wgmmaSkinnyClusterGemm16 =
        new Action<KernelConfig, ArrayView<ushort>, ArrayView<ushort>, ArrayView<ushort>, ArrayView<ushort>, TensorCoreShape>?[12];

    // The n64 kernel that sums its splits in the same launch: bf16 [N, K], bf16 [K, N], f16 [N, K], f16 [K, N].
    private readonly Action<KernelConfig, ArrayView<ushort>, ArrayView<ushort>, ArrayView<ushort>, ArrayView<ushort>, ArrayView<float>, ArrayView<int>, TensorCoreShape>?[] wgmmaSkinnyTicketsGemm16 =
        new Action<KernelConfig, ArrayView<ushort>, ArrayView<ushort>, ArrayView<ushort>, ArrayView<ushort>, ArrayView<float>, ArrayView<int>, TensorCoreShape>?[4];

    /// <summary>
    /// Whether the small-M wgmma kernel's default rule (<see cref="WgmmaSkinnyLaunch.TakesByDefault"/>) applies; false
    /// routes every product to the earlier kernels. By default what <c>GEMS_TC_SMALLM_VARIANT</c> says (read once per process).
    /// </summary>
    internal bool WgmmaSmallMEnabled { get; set; } = WgmmaSkinnyLaunch.FromEnvironment();

    /// <summary>
    /// Whether the products the default rule routes run on the 64-column tile variant (wgmma m64n64); by default
    /// unless <c>GEMS_TC_SMALLM_VARIANT</c> is <c>n128</c> (read once per process).
    /// </summary>
    internal bool WgmmaSmallMNarrow { get; set; } = WgmmaSkinnyLaunch.NarrowFromEnvironment();

    /// <summary>
    /// 16-bit products on <see cref="WgmmaSkinnyGemmKernels"/> where <see cref="WgmmaSkinnyLaunch.TakesByDefault"/> routes
    /// them (a compute-capability-9.0 CUDA device, where the large wgmma kernel runs) and the shape allows whole aligned chunks.
    /// </summary>
    /// <returns>Whether it ran.</returns>
    private bool TryWgmmaSmallM(ArrayView<ushort> a, ArrayView<ushort> b, ArrayView<ushort> bias, ArrayView<ushort> c, int batch, int m, int k, int n,
        bool transposeB, float alpha, float beta, bool biasIsMatrix, HalfFormat format)
    {
        CudaArchitecture? architecture = device.Accelerator is CudaAccelerator cuda ? cuda.Architecture : null;
        if (!TensorCoresEnabled || !WgmmaSkinnyLaunch.TakesByDefault(WgmmaSmallMEnabled, architecture, m, transposeB) || !WgmmaAvailable)
        {
            return false;
        }

        bool bf16 = format == HalfFormat.BFloat16;
        var shape = TensorCoreLaunch.Shape(a, b, bias, m, k, n, transposeB, alpha, beta, biasIsMatrix, bf16, asyncCopyAllowed: true);
        if (!WgmmaSkinnyLaunch.Supports(shape))
        {
            return false;
        }

        Action<KernelConfig, ArrayView<ushort>, ArrayView<ushort>, ArrayView<ushort>, ArrayView<ushort>, ArrayView<float>, TensorCoreShape> kernel;
        try
        {
            kernel = WgmmaSmallMNarrow ? WgmmaSkinnyNarrowKernel(bf16, transposeB) : WgmmaSkinnyKernel(bf16, transposeB);
        }
        catch (IlgpuKernelCompileException ex)
        {
            WgmmaLoadError = ex.Message;
            wgmmaFailed = true;
            return false;
        }

        shape.PairStores = TensorCoreLaunch.PairStores(c, n);
        shape.CPointer = TensorCoreLaunch.DeviceAddress(c);
        int columns = WgmmaSkinnyLaunch.Columns(WgmmaSmallMNarrow);
        var (splits, kChunk) = WgmmaSkinnyLaunch.PlanSplitK(batch, m, k, n, device.MultiprocessorCount, columns);
        shape = TensorCoreLaunch.WithSplitK(shape, splits, kChunk);
        if (TryWgmmaSmallMCluster(a, b, bias, c, shape, columns, bf16, transposeB))
        {
            return true;
        }

        var partial = splits > 1 ? Scratch((long)splits * m * n) : default;
        if (TryWgmmaSmallMTickets(a, b, bias, c, partial, shape, columns, bf16, transposeB))
        {
            return true;
        }

        kernel(WgmmaSkinnyLaunch.Config(splits > 1 ? splits : batch, n, columns), a, b, bias, c, partial, shape);
        if (splits > 1)
        {
            // The fixed-order reduction of every split-K path here: alpha, beta·bias [N] or [M, N], one rounding.
            ReduceSplits16(partial, bias, c, TensorCoreLaunch.ReduceShape(shape), bf16);
        }

        return true;
    }

    /// <summary>
    /// Runs a split small-M product with its splits summed in a thread-block cluster
    /// (<see cref="WgmmaSkinnyGemmKernels.Gemm16WgmmaSkinnyN64Cluster{TOperands, TClusterSize}"/>) when
    /// split-K sums in clusters here (<see cref="SplitKSumsInCluster"/>: <c>GEMS_SPLITK_REDUCE</c> unset or <c>cluster</c>, no
    /// earlier cluster kernel failed to load) and <see cref="WgmmaSkinnyLaunch.TakesCluster"/> says so (64-column tiles, a plan
    /// of 2, 4 or 8 splits, N % 4 = 0).
    /// </summary>
    /// <returns>Whether it ran (otherwise the caller writes partials and reduces them as before).</returns>
    private bool TryWgmmaSmallMCluster(ArrayView<ushort> a, ArrayView<ushort> b, ArrayView<ushort> bias, ArrayView<ushort> c, TensorCoreShape shape, int columns,
        bool bf16, bool transposeB)
    {
        if (!SplitKSumsInCluster || !WgmmaSkinnyLaunch.TakesCluster(SplitKReduceMode, columns, shape.SplitK, shape.N))
        {
            return false;
        }

        Action<KernelConfig, ArrayView<ushort>, ArrayView<ushort>, ArrayView<ushort>, ArrayView<ushort>, TensorCoreShape> kernel;
        try
        {
            kernel = WgmmaSkinnyClusterKernel(bf16, transposeB, shape.SplitK);
        }
        catch (IlgpuKernelCompileException ex)
        {
            // Recorded on the device too (IlgpuDevice.Load); this process keeps the launched reduce.
            ClusterLoadError = ex.Message;
            return false;
        }

        kernel(WgmmaSkinnyLaunch.ClusterConfig(shape.SplitK, shape.N), a, b, bias, c, shape);
        return true;
    }

    /// <summary>
    /// Runs a split n64 product that no cluster took with its splits summed in the same launch
    /// (<see cref="WgmmaSkinnyGemmKernels.Gemm16WgmmaSkinnyN64Tickets{TOperands}"/>) where
    /// <see cref="WgmmaSkinnyLaunch.SumsSplitsInLaunch"/> says so and the partials are 16-byte aligned.
    /// </summary>
    /// <returns>Whether it ran (otherwise the caller launches the product and then the reduce).</returns>
    private bool TryWgmmaSmallMTickets(ArrayView<ushort> a, ArrayView<ushort> b, ArrayView<ushort> bias, ArrayView<ushort> c, ArrayView<float> partial,
        TensorCoreShape shape, int columns, bool bf16, bool transposeB)
    {
        if (!WgmmaSkinnyLaunch.SumsSplitsInLaunch(SplitKReduceMode, columns, shape.SplitK, shape.M, shape.N)
            || TensorCoreLaunch.DeviceAddress(partial) % 16 != 0)
        {
            return false;
        }

        var config = WgmmaSkinnyLaunch.Config(shape.SplitK, shape.N, columns);
        var tickets = Grown(ref splitKTickets, config.GridDim.X, 1024, zeroed: true);
        int slot = (bf16 ? 0 : 2) + (transposeB ? 0 : 1);
        var bounds = Bounds(WgmmaSkinnyGemmKernels.GroupSize, WgmmaSkinnyLaunch.GroupsPerSmOf(WgmmaSkinnyGemmKernels.BlockNNarrow));
        var name = $"{nameof(WgmmaSkinnyGemmKernels.Gemm16WgmmaSkinnyN64Tickets)}:{OperandsName(bf16, transposeB)}";
        Action<ArrayView<ushort>, ArrayView<ushort>, ArrayView<ushort>, ArrayView<ushort>, ArrayView<float>, ArrayView<int>, TensorCoreShape> method = (bf16, transposeB) switch
        {
            (true, true) => WgmmaSkinnyGemmKernels.Gemm16WgmmaSkinnyN64Tickets<Bf16KMajorB>,
            (true, false) => WgmmaSkinnyGemmKernels.Gemm16WgmmaSkinnyN64Tickets<Bf16MnMajorB>,
            (false, true) => WgmmaSkinnyGemmKernels.Gemm16WgmmaSkinnyN64Tickets<F16KMajorB>,
            _ => WgmmaSkinnyGemmKernels.Gemm16WgmmaSkinnyN64Tickets<F16MnMajorB>,
        };
        Action<KernelConfig, ArrayView<ushort>, ArrayView<ushort>, ArrayView<ushort>, ArrayView<ushort>, ArrayView<float>, ArrayView<int>, TensorCoreShape> kernel;
        try
        {
            kernel = device.Load(ref wgmmaSkinnyTicketsGemm16[slot], name,
                acc => acc.LoadStreamKernel<ArrayView<ushort>, ArrayView<ushort>, ArrayView<ushort>, ArrayView<ushort>, ArrayView<float>, ArrayView<int>, TensorCoreShape>(method, bounds));
        }
        catch (IlgpuKernelCompileException ex)
        {
            WgmmaLoadError = ex.Message;
            return false;
        }

        kernel(config, a, b, bias, c, partial, tickets, shape);
        return true;
    }

    /// <summary>The name of the operand type of one format and B layout, as the kernels' names carry it.</summary>
    private static string OperandsName(bool bf16, bool transposeB) => (bf16, transposeB) switch
    {
        (true, true) => nameof(Bf16KMajorB),
        (true, false) => nameof(Bf16MnMajorB),
        (false, true) => nameof(F16KMajorB),
        _ => nameof(F16MnMajorB),
    };

    /// <summary>The cluster form of the n64 kernel for one format, B layout and cluster size (2, 4, 8).</summary>
    private Action<KernelConfig, ArrayView<ushort>, ArrayView<ushort>, ArrayView<ushort>, ArrayView<ushort>, TensorCoreShape> WgmmaSkinnyClusterKernel(
        bool bf16, bool transposeB, int size)
    {
        var bounds = Bounds(WgmmaSkinnyGemmKernels.GroupSize, WgmmaSkinnyLaunch.GroupsPerSmOf(WgmmaSkinnyGemmKernels.BlockNNarrow));
        int slot = ((size == 2 ? 0 : size == 4 ? 1 : 2) * 4) + (bf16 ? 0 : 2) + (transposeB ? 0 : 1);
        var name = $"{nameof(WgmmaSkinnyGemmKernels.Gemm16WgmmaSkinnyN64Cluster)}:{OperandsName(bf16, transposeB)},{size}";
        return (bf16, transposeB, size) switch
        {
            (true, true, 2) => LoadWgmmaCluster(slot, name, WgmmaSkinnyGemmKernels.Gemm16WgmmaSkinnyN64Cluster<Bf16KMajorB, Const2>, bounds),
            (true, false, 2) => LoadWgmmaCluster(slot, name, WgmmaSkinnyGemmKernels.Gemm16WgmmaSkinnyN64Cluster<Bf16MnMajorB, Const2>, bounds),
            (false, true, 2) => LoadWgmmaCluster(slot, name, WgmmaSkinnyGemmKernels.Gemm16WgmmaSkinnyN64Cluster<F16KMajorB, Const2>, bounds),
            (false, false, 2) => LoadWgmmaCluster(slot, name, WgmmaSkinnyGemmKernels.Gemm16WgmmaSkinnyN64Cluster<F16MnMajorB, Const2>, bounds),
            (true, true, 4) => LoadWgmmaCluster(slot, name, WgmmaSkinnyGemmKernels.Gemm16WgmmaSkinnyN64Cluster<Bf16KMajorB, Const4>, bounds),
            (true, false, 4) => LoadWgmmaCluster(slot, name, WgmmaSkinnyGemmKernels.Gemm16WgmmaSkinnyN64Cluster<Bf16MnMajorB, Const4>, bounds),
            (false, true, 4) => LoadWgmmaCluster(slot, name, WgmmaSkinnyGemmKernels.Gemm16WgmmaSkinnyN64Cluster<F16KMajorB, Const4>, bounds),
            (false, false, 4) => LoadWgmmaCluster(slot, name, WgmmaSkinnyGemmKernels.Gemm16WgmmaSkinnyN64Cluster<F16MnMajorB, Const4>, bounds),
            (true, true, 8) => LoadWgmmaCluster(slot, name, WgmmaSkinnyGemmKernels.Gemm16WgmmaSkinnyN64Cluster<Bf16KMajorB, Const8>, bounds),
            (true, false, 8) => LoadWgmmaCluster(slot, name, WgmmaSkinnyGemmKernels.Gemm16WgmmaSkinnyN64Cluster<Bf16MnMajorB, Const8>, bounds),
            (false, true, 8) => LoadWgmmaCluster(slot, name, WgmmaSkinnyGemmKernels.Gemm16WgmmaSkinnyN64Cluster<F16KMajorB, Const8>, bounds),
            (false, false, 8) => LoadWgmmaCluster(slot, name, WgmmaSkinnyGemmKernels.Gemm16WgmmaSkinnyN64Cluster<F16MnMajorB, Const8>, bounds),
            _ => throw new ArgumentOutOfRangeException(nameof(size), size, "The cluster kernels are built for clusters of 2, 4 or 8 groups."),
        };
    }

    private Action<KernelConfig, ArrayView<ushort>, ArrayView<ushort>, ArrayView<ushort>, ArrayView<ushort>, TensorCoreShape> LoadWgmmaCluster(int slot, string name,
        Action<ArrayView<ushort>, ArrayView<ushort>, ArrayView<ushort>, ArrayView<ushort>, TensorCoreShape> method, KernelSpecialization bounds) =>
        device.Load(ref wgmmaSkinnyClusterGemm16[slot], name,
            acc => acc.LoadStreamKernel<ArrayView<ushort>, ArrayView<ushort>, ArrayView<ushort>, ArrayView<ushort>, TensorCoreShape>(method, bounds));

    /// <summary>The small-M wgmma kernel of one format and B layout.</summary>
    private Action<KernelConfig, ArrayView<ushort>, ArrayView<ushort>, ArrayView<ushort>, ArrayView<ushort>, ArrayView<float>, TensorCoreShape> WgmmaSkinnyKernel(
        bool bf16, bool transposeB)
    {
        var bounds = Bounds(WgmmaSkinnyGemmKernels.GroupSize, WgmmaSkinnyLaunch.GroupsPerSm);
        return (bf16, transposeB) switch
        {
            (true, true) => device.Load(ref wgmmaSkinnyGemm16[0], $"{nameof(WgmmaSkinnyGemmKernels.Gemm16WgmmaSkinny)}:{nameof(Bf16KMajorB)}",
                acc => acc.LoadStreamKernel<ArrayView<ushort>, ArrayView<ushort>, ArrayView<ushort>, ArrayView<ushort>, ArrayView<float>, TensorCoreShape>(
                    WgmmaSkinnyGemmKernels.Gemm16WgmmaSkinny<Bf16KMajorB>, bounds)),
            (true, false) => device.Load(ref wgmmaSkinnyGemm16[1], $"{nameof(WgmmaSkinnyGemmKernels.Gemm16WgmmaSkinny)}:{nameof(Bf16MnMajorB)}",
                acc => acc.LoadStreamKernel<ArrayView<ushort>, ArrayView<ushort>, ArrayView<ushort>, ArrayView<ushort>, ArrayView<float>, TensorCoreShape>(
                    WgmmaSkinnyGemmKernels.Gemm16WgmmaSkinny<Bf16MnMajorB>, bounds)),
            (false, true) => device.Load(ref wgmmaSkinnyGemm16[2], $"{nameof(WgmmaSkinnyGemmKernels.Gemm16WgmmaSkinny)}:{nameof(F16KMajorB)}",
                acc => acc.LoadStreamKernel<ArrayView<ushort>, ArrayView<ushort>, ArrayView<ushort>, ArrayView<ushort>, ArrayView<float>, TensorCoreShape>(
                    WgmmaSkinnyGemmKernels.Gemm16WgmmaSkinny<F16KMajorB>, bounds)),
            _ => device.Load(ref wgmmaSkinnyGemm16[3], $"{nameof(WgmmaSkinnyGemmKernels.Gemm16WgmmaSkinny)}:{nameof(F16MnMajorB)}",
                acc => acc.LoadStreamKernel<ArrayView<ushort>, ArrayView<ushort>, ArrayView<ushort>, ArrayView<ushort>, ArrayView<float>, TensorCoreShape>(
                    WgmmaSkinnyGemmKernels.Gemm16WgmmaSkinny<F16MnMajorB>, bounds)),
        };
    }

    /// <summary>The n64 variant of one format and B layout (64-column tiles, up to three groups per SM).</summary>
    private Action<KernelConfig, ArrayView<ushort>, ArrayView<ushort>, ArrayView<ushort>, ArrayView<ushort>, ArrayView<float>, TensorCoreShape> WgmmaSkinnyNarrowKernel(
        bool bf16, bool transposeB)
    {
        var bounds = Bounds(WgmmaSkinnyGemmKernels.GroupSize, WgmmaSkinnyLaunch.GroupsPerSmOf(WgmmaSkinnyGemmKernels.BlockNNarrow));
        return (bf16, transposeB) switch
        {
            (true, true) => device.Load(ref wgmmaSkinnyGemm16[4], $"{nameof(WgmmaSkinnyGemmKernels.Gemm16WgmmaSkinnyN64)}:{nameof(Bf16KMajorB)}",
                acc => acc.LoadStreamKernel<ArrayView<ushort>, ArrayView<ushort>, ArrayView<ushort>, ArrayView<ushort>, ArrayView<float>, TensorCoreShape>(
                    WgmmaSkinnyGemmKernels.Gemm16WgmmaSkinnyN64<Bf16KMajorB>, bounds)),
            (true, false) => device.Load(ref wgmmaSkinnyGemm16[5], $"{nameof(WgmmaSkinnyGemmKernels.Gemm16WgmmaSkinnyN64)}:{nameof(Bf16MnMajorB)}",
                acc => acc.LoadStreamKernel<ArrayView<ushort>, ArrayView<ushort>, ArrayView<ushort>, ArrayView<ushort>, ArrayView<float>, TensorCoreShape>(
                    WgmmaSkinnyGemmKernels.Gemm16WgmmaSkinnyN64<Bf16MnMajorB>, bounds)),
            (false, true) => device.Load(ref wgmmaSkinnyGemm16[6], $"{nameof(WgmmaSkinnyGemmKernels.Gemm16WgmmaSkinnyN64)}:{nameof(F16KMajorB)}",
                acc => acc.LoadStreamKernel<ArrayView<ushort>, ArrayView<ushort>, ArrayView<ushort>, ArrayView<ushort>, ArrayView<float>, TensorCoreShape>(
                    WgmmaSkinnyGemmKernels.Gemm16WgmmaSkinnyN64<F16KMajorB>, bounds)),
            _ => device.Load(ref wgmmaSkinnyGemm16[7], $"{nameof(WgmmaSkinnyGemmKernels.Gemm16WgmmaSkinnyN64)}:{nameof(F16MnMajorB)}",
                acc => acc.LoadStreamKernel<ArrayView<ushort>, ArrayView<ushort>, ArrayView<ushort>, ArrayView<ushort>, ArrayView<float>, TensorCoreShape>(
                    WgmmaSkinnyGemmKernels.Gemm16WgmmaSkinnyN64<F16MnMajorB>, bounds)),
        };
    }
}
