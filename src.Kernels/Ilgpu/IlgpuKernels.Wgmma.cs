using System;
using ILGPU;
using ILGPU.Runtime;

namespace GemsInjector.Kernels.Ilgpu;

public sealed partial class IlgpuKernels
{
    // One launcher per format and B layout (bf16 [N, K], bf16 [K, N], f16 [N, K], f16 [K, N]), then the same four three
    // tiles ahead, then the same four two ahead in bands of tile rows (wgmma-g), then those on a persistent grid (wgmma-p),
    // then with the epilogue in the asm (wgmma-pe).
    private readonly Action<KernelConfig, ArrayView<ushort>, ArrayView<ushort>, ArrayView<ushort>, ArrayView<ushort>, ArrayView<float>, TensorCoreShape>?[] wgmmaGemm16 =
        new Action<KernelConfig, ArrayView<ushort>, ArrayView<ushort>, ArrayView<ushort>, ArrayView<ushort>, ArrayView<float>, TensorCoreShape>?[20];

    // Set once the wgmma kernel failed to load (driver or ILGPU refused it): the process then keeps square2.
    private bool wgmmaFailed;

    /// <summary>
    /// Why the wgmma kernel (<c>GEMS_TC_GEMM_VARIANT=wgmma</c>) could not be loaded on this device, after which the
    /// process keeps the mma.sync kernel; <see langword="null"/> when it loaded or was never asked for.
    /// </summary>
    public string? WgmmaLoadError { get; private set; }

    /// <summary>Whether the wgmma kernel can run here: a CUDA device of compute capability 9.0 (sm_90a) and no earlier load failure.</summary>
    internal bool WgmmaAvailable => !wgmmaFailed && device.Kind == IlgpuDeviceKind.Cuda && Sm90aPtx.Supported(device.Accelerator);

    /// <summary>
    /// Runs a 16-bit GEMM on <see cref="WgmmaGemmKernels"/> when the device and the shape allow it (K % 8 == 0, 16-byte
    /// aligned a and b, N % 8 == 0 for a [K, N] b); split-K for single matrices with few tiles, as the mma.sync kernel.
    /// <paramref name="variant"/> picks the pipeline: <c>wgmma</c>'s, <c>wgmma3</c>'s (three tiles ahead, two barriers per
    /// tile), <c>wgmma-g</c>'s (<c>wgmma</c>'s with tiles handed out in bands of tile rows) or <c>wgmma-p</c>'s
    /// (<c>wgmma-g</c>'s order on a persistent grid) or <c>wgmma-pe</c>'s (that with whole tiles stored from the asm).
    /// </summary>
    /// <returns>Whether it ran (otherwise the caller takes the mma.sync kernel).</returns>
    private bool TryWgmmaGemm16(ArrayView<ushort> a, ArrayView<ushort> b, ArrayView<ushort> bias, ArrayView<ushort> c, int batch, int m, int k, int n,
        bool transposeB, float alpha, float beta, bool biasIsMatrix, bool bf16, TensorCoreGemmVariant variant)
    {
        if (!WgmmaAvailable)
        {
            return false;
        }

        var shape = TensorCoreLaunch.Shape(a, b, bias, m, k, n, transposeB, alpha, beta, biasIsMatrix, bf16, asyncCopyAllowed: true);
        if (!WgmmaLaunch.Supports(shape))
        {
            return false;
        }

        Action<KernelConfig, ArrayView<ushort>, ArrayView<ushort>, ArrayView<ushort>, ArrayView<ushort>, ArrayView<float>, TensorCoreShape> kernel;
        try
        {
            kernel = variant switch
            {
                TensorCoreGemmVariant.WgmmaThreeAhead => WgmmaKernel<ThreeAhead>(bf16, transposeB, 4),
                TensorCoreGemmVariant.WgmmaGrouped => WgmmaKernel<TwoAheadGrouped>(bf16, transposeB, 8),
                TensorCoreGemmVariant.WgmmaPersistent => WgmmaKernel<PersistentGrouped>(bf16, transposeB, 12),
                TensorCoreGemmVariant.WgmmaPersistentStores => WgmmaKernel<PersistentGroupedStores>(bf16, transposeB, 16),
                _ => WgmmaKernel<TwoAhead>(bf16, transposeB, 0),
            };
        }
        catch (IlgpuKernelCompileException ex)
        {
            // The failure stays recorded on the device (IlgpuDevice.Load); products go to the mma.sync kernel.
            WgmmaLoadError = ex.Message;
            wgmmaFailed = true;
            return false;
        }

        shape.PairStores = TensorCoreLaunch.PairStores(c, n);
        shape.CPointer = TensorCoreLaunch.DeviceAddress(c);
        var (splits, kChunk) = WgmmaLaunch.PlanSplitK(batch, m, k, n, device.MultiprocessorCount);
        shape = TensorCoreLaunch.WithSplitK(shape, splits, kChunk);
        var partial = splits > 1 ? Scratch((long)splits * m * n) : default;
        int z = splits > 1 ? splits : batch;
        var config = variant is TensorCoreGemmVariant.WgmmaPersistent or TensorCoreGemmVariant.WgmmaPersistentStores ? WgmmaLaunch.PersistentConfig(z, m, n, device.MultiprocessorCount) : WgmmaLaunch.Config(z, m, n);
        kernel(config, a, b, bias, c, partial, shape);
        if (splits > 1)
        {
            // The same reduction as the mma.sync kernel's split-K: alpha, beta·bias [N] or [M, N], one rounding.
            ReduceSplits16(partial, bias, c, TensorCoreLaunch.ReduceShape(shape), bf16);
        }

        return true;
    }

    /// <summary>
    /// The wgmma kernel of one format and B layout (its operands as the first type argument) and pipeline
    /// <typeparamref name="TPipeline"/> (its launchers from <paramref name="slot"/> on), 256 threads per group.
    /// </summary>
    private Action<KernelConfig, ArrayView<ushort>, ArrayView<ushort>, ArrayView<ushort>, ArrayView<ushort>, ArrayView<float>, TensorCoreShape> WgmmaKernel<TPipeline>(
        bool bf16, bool transposeB, int slot)
        where TPipeline : struct, IWgmmaPipeline
    {
        var bounds = Bounds(WgmmaGemmKernels.GroupSize, null);
        string pipeline = typeof(TPipeline).Name;
        return (bf16, transposeB) switch
        {
            (true, true) => device.Load(ref wgmmaGemm16[slot], $"{nameof(WgmmaGemmKernels.Gemm16Wgmma)}:{nameof(Bf16KMajorB)}.{pipeline}",
                acc => acc.LoadStreamKernel<ArrayView<ushort>, ArrayView<ushort>, ArrayView<ushort>, ArrayView<ushort>, ArrayView<float>, TensorCoreShape>(
                    WgmmaGemmKernels.Gemm16Wgmma<Bf16KMajorB, TPipeline>, bounds)),
            (true, false) => device.Load(ref wgmmaGemm16[slot + 1], $"{nameof(WgmmaGemmKernels.Gemm16Wgmma)}:{nameof(Bf16MnMajorB)}.{pipeline}",
                acc => acc.LoadStreamKernel<ArrayView<ushort>, ArrayView<ushort>, ArrayView<ushort>, ArrayView<ushort>, ArrayView<float>, TensorCoreShape>(
                    WgmmaGemmKernels.Gemm16Wgmma<Bf16MnMajorB, TPipeline>, bounds)),
            (false, true) => device.Load(ref wgmmaGemm16[slot + 2], $"{nameof(WgmmaGemmKernels.Gemm16Wgmma)}:{nameof(F16KMajorB)}.{pipeline}",
                acc => acc.LoadStreamKernel<ArrayView<ushort>, ArrayView<ushort>, ArrayView<ushort>, ArrayView<ushort>, ArrayView<float>, TensorCoreShape>(
                    WgmmaGemmKernels.Gemm16Wgmma<F16KMajorB, TPipeline>, bounds)),
            _ => device.Load(ref wgmmaGemm16[slot + 3], $"{nameof(WgmmaGemmKernels.Gemm16Wgmma)}:{nameof(F16MnMajorB)}.{pipeline}",
                acc => acc.LoadStreamKernel<ArrayView<ushort>, ArrayView<ushort>, ArrayView<ushort>, ArrayView<ushort>, ArrayView<float>, TensorCoreShape>(
                    WgmmaGemmKernels.Gemm16Wgmma<F16MnMajorB, TPipeline>, bounds)),
        };
    }
}
