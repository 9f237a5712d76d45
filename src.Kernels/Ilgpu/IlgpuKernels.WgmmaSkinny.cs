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
        var partial = splits > 1 ? Scratch((long)splits * m * n) : default;
        kernel(WgmmaSkinnyLaunch.Config(splits > 1 ? splits : batch, n, columns), a, b, bias, c, partial, shape);
        if (splits > 1)
        {
            // The fixed-order reduction of every split-K path here: alpha, beta·bias [N] or [M, N], one rounding.
            ReduceSplits16(partial, bias, c, TensorCoreLaunch.ReduceShape(shape), bf16);
        }

        return true;
    }

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
