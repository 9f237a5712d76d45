using System;
using ILGPU;
using ILGPU.Runtime;

namespace GemsInjector.Kernels.Ilgpu;

public sealed partial class IlgpuKernels
{
    // bf16 [N, K], bf16 [K, N], f16 [N, K], f16 [K, N], four stages; then the same eight stages.
    private readonly Action<KernelConfig, ArrayView<ushort>, ArrayView<ushort>, ArrayView<ushort>, ArrayView<ushort>, ArrayView<float>, ArrayView<int>, TensorCoreShape>?[] wgmmaSkinnyGemm16 =
        new Action<KernelConfig, ArrayView<ushort>, ArrayView<ushort>, ArrayView<ushort>, ArrayView<ushort>, ArrayView<float>, ArrayView<int>, TensorCoreShape>?[8];

    // One ticket per column tile of a split-K launch, zero between launches (the last group of a tile resets its own).
    private MemoryBuffer1D<int, Stride1D.Dense>? wgmmaSkinnyTickets;

    /// <summary>
    /// The small-M wgmma kernel's variant: ring depth 0 (off, today's dispatch), 4 or 8, and whether the last group of a
    /// column tile reduces the split-K partials (else a second launch does); by default what <c>GEMS_TC_SMALLM_VARIANT</c>
    /// names (read once per process).
    /// </summary>
    internal (int Stages, bool LastGroupReduces) WgmmaSmallMVariant { get; set; } = WgmmaSkinnyLaunch.FromEnvironment();

    /// <summary>
    /// 16-bit products with 2–64 rows on <see cref="WgmmaSkinnyGemmKernels"/> when the switch is on, the device is a
    /// compute-capability-9.0 CUDA device (where the large wgmma kernel runs) and the shape allows whole aligned chunks.
    /// </summary>
    /// <returns>Whether it ran.</returns>
    private bool TryWgmmaSmallM(ArrayView<ushort> a, ArrayView<ushort> b, ArrayView<ushort> bias, ArrayView<ushort> c, int batch, int m, int k, int n,
        bool transposeB, float alpha, float beta, bool biasIsMatrix, HalfFormat format)
    {
        var (stages, lastGroupReduces) = WgmmaSmallMVariant;
        if (stages == 0 || !TensorCoresEnabled || m < WgmmaSkinnyLaunch.MinRows || m > WgmmaSkinnyGemmKernels.BlockM || !WgmmaAvailable)
        {
            return false;
        }

        bool bf16 = format == HalfFormat.BFloat16;
        var shape = TensorCoreLaunch.Shape(a, b, bias, m, k, n, transposeB, alpha, beta, biasIsMatrix, bf16, asyncCopyAllowed: true);
        if (!WgmmaSkinnyLaunch.Supports(shape))
        {
            return false;
        }

        Action<KernelConfig, ArrayView<ushort>, ArrayView<ushort>, ArrayView<ushort>, ArrayView<ushort>, ArrayView<float>, ArrayView<int>, TensorCoreShape> kernel;
        try
        {
            kernel = stages == 8 ? WgmmaSkinnyKernel<SkinnyEightStages>(bf16, transposeB, 4) : WgmmaSkinnyKernel<SkinnyFourStages>(bf16, transposeB, 0);
        }
        catch (IlgpuKernelCompileException ex)
        {
            WgmmaLoadError = ex.Message;
            wgmmaFailed = true;
            return false;
        }

        shape.PairStores = TensorCoreLaunch.PairStores(c, n);
        shape.CPointer = TensorCoreLaunch.DeviceAddress(c);
        var (splits, kChunk) = WgmmaSkinnyLaunch.PlanSplitK(batch, m, k, n, device.MultiprocessorCount, stages);
        shape = TensorCoreLaunch.WithSplitK(shape, splits, kChunk);
        var partial = splits > 1 ? Scratch((long)splits * m * n) : default;
        int columnTiles = WgmmaSkinnyLaunch.Config(1, n, stages).GridDim.X;
        var tickets = splits > 1 && lastGroupReduces ? WgmmaSkinnyTickets(columnTiles) : default;
        kernel(WgmmaSkinnyLaunch.Config(splits > 1 ? splits : batch, n, stages), a, b, bias, c, partial, tickets, shape);
        if (splits > 1 && !lastGroupReduces)
        {
            // The fixed-order reduction of every split-K path here: alpha, beta·bias [N] or [M, N], one rounding.
            device.Load(ref gemvReduce16, nameof(HalfGemvKernels.GemvReduce16),
                acc => acc.LoadStreamKernel<ArrayView<float>, ArrayView<ushort>, ArrayView<ushort>, HalfGemvShape, int>(HalfGemvKernels.GemvReduce16))(
                Elementwise((long)m * n), partial, bias, c, TensorCoreLaunch.ReduceShape(shape), bf16 ? 1 : 0);
        }

        return true;
    }

    /// <summary>The split-K tickets of <paramref name="tiles"/> column tiles, from a buffer kept between calls (grown, zeroed, when a call needs more).</summary>
    private ArrayView<int> WgmmaSkinnyTickets(int tiles)
    {
        if (wgmmaSkinnyTickets is null || wgmmaSkinnyTickets.Length < tiles)
        {
            if (wgmmaSkinnyTickets is not null)
            {
                // Earlier launches may still use the old buffer.
                device.Synchronize();
                wgmmaSkinnyTickets.Dispose();
            }

            wgmmaSkinnyTickets = device.Accelerator.Allocate1D<int>(Math.Max(tiles, 1024));
            wgmmaSkinnyTickets.MemSetToZero();
        }

        return wgmmaSkinnyTickets.View.BaseView.SubView(0, tiles);
    }

    /// <summary>The small-M wgmma kernel of one format and B layout and ring <typeparamref name="TStages"/> (its launchers from <paramref name="slot"/> on).</summary>
    private Action<KernelConfig, ArrayView<ushort>, ArrayView<ushort>, ArrayView<ushort>, ArrayView<ushort>, ArrayView<float>, ArrayView<int>, TensorCoreShape> WgmmaSkinnyKernel<TStages>(
        bool bf16, bool transposeB, int slot)
        where TStages : struct, IWgmmaSkinnyStages
    {
        var bounds = Bounds(WgmmaSkinnyGemmKernels.GroupSize, WgmmaSkinnyLaunch.GroupsPerSm(default(TStages).Stages));
        string ring = typeof(TStages).Name;
        return (bf16, transposeB) switch
        {
            (true, true) => device.Load(ref wgmmaSkinnyGemm16[slot], $"{nameof(WgmmaSkinnyGemmKernels.Gemm16WgmmaSkinny)}:{nameof(Bf16KMajorB)}.{ring}",
                acc => acc.LoadStreamKernel<ArrayView<ushort>, ArrayView<ushort>, ArrayView<ushort>, ArrayView<ushort>, ArrayView<float>, ArrayView<int>, TensorCoreShape>(
                    WgmmaSkinnyGemmKernels.Gemm16WgmmaSkinny<Bf16KMajorB, TStages>, bounds)),
            (true, false) => device.Load(ref wgmmaSkinnyGemm16[slot + 1], $"{nameof(WgmmaSkinnyGemmKernels.Gemm16WgmmaSkinny)}:{nameof(Bf16MnMajorB)}.{ring}",
                acc => acc.LoadStreamKernel<ArrayView<ushort>, ArrayView<ushort>, ArrayView<ushort>, ArrayView<ushort>, ArrayView<float>, ArrayView<int>, TensorCoreShape>(
                    WgmmaSkinnyGemmKernels.Gemm16WgmmaSkinny<Bf16MnMajorB, TStages>, bounds)),
            (false, true) => device.Load(ref wgmmaSkinnyGemm16[slot + 2], $"{nameof(WgmmaSkinnyGemmKernels.Gemm16WgmmaSkinny)}:{nameof(F16KMajorB)}.{ring}",
                acc => acc.LoadStreamKernel<ArrayView<ushort>, ArrayView<ushort>, ArrayView<ushort>, ArrayView<ushort>, ArrayView<float>, ArrayView<int>, TensorCoreShape>(
                    WgmmaSkinnyGemmKernels.Gemm16WgmmaSkinny<F16KMajorB, TStages>, bounds)),
            _ => device.Load(ref wgmmaSkinnyGemm16[slot + 3], $"{nameof(WgmmaSkinnyGemmKernels.Gemm16WgmmaSkinny)}:{nameof(F16MnMajorB)}.{ring}",
                acc => acc.LoadStreamKernel<ArrayView<ushort>, ArrayView<ushort>, ArrayView<ushort>, ArrayView<ushort>, ArrayView<float>, ArrayView<int>, TensorCoreShape>(
                    WgmmaSkinnyGemmKernels.Gemm16WgmmaSkinny<F16MnMajorB, TStages>, bounds)),
        };
    }
}
