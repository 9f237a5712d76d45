using System;
using ILGPU;
using ILGPU.Runtime;

namespace GemsInjector.Kernels.Ilgpu;

public sealed partial class IlgpuKernels
{
    // One compiled kernel per (row cap, format): slots [format · caps + log2-ish cap index], see HalfGemvCapSlot.
    private readonly Action<KernelConfig, ArrayView<Half8>, ArrayView<Half8>, ArrayView<ushort>, ArrayView<ushort>, ArrayView<float>, HalfGemvShape>?[] gemvNk16 =
        new Action<KernelConfig, ArrayView<Half8>, ArrayView<Half8>, ArrayView<ushort>, ArrayView<ushort>, ArrayView<float>, HalfGemvShape>?[8];

    private readonly Action<KernelConfig, ArrayView<ushort>, ArrayView<Half8>, ArrayView<ushort>, ArrayView<ushort>, ArrayView<float>, HalfGemvShape>?[] gemvKn16 =
        new Action<KernelConfig, ArrayView<ushort>, ArrayView<Half8>, ArrayView<ushort>, ArrayView<ushort>, ArrayView<float>, HalfGemvShape>?[8];


    /// <summary>Largest M sent to the 16-bit GEMV kernels (0 turns them off: tests compare with the general kernel).</summary>
    internal int HalfGemvMaxRows { get; set; } = HalfGemvKernels.MaxRows;

    /// <summary>Whether a product of this shape and these views goes to the 16-bit GEMV kernels on this device.</summary>
    internal bool UsesHalfGemv(ArrayView<ushort> a, ArrayView<ushort> b, int batch, int m, int k, int n, bool transposeB)
    {
        if (batch != 1 || m > HalfGemvMaxRows || !HalfGemvLaunch.Fits(device.WarpSize, device.MaxGroupSize))
        {
            return false;
        }

        // 16-byte vector loads: every weight row (and for [N, K] every activation row) must start 16-byte aligned.
        return transposeB
            ? k % 8 == 0 && TensorCoreLaunch.DeviceAddress(a) % 16 == 0 && TensorCoreLaunch.DeviceAddress(b) % 16 == 0
            : n % 8 == 0 && TensorCoreLaunch.DeviceAddress(b) % 16 == 0;
    }

    /// <summary>
    /// Decode-sized 16-bit products (one matrix, M ≤ <see cref="HalfGemvMaxRows"/>, 16-byte aligned rows): the weight is
    /// read once in 16-byte loads. K is split over Grid.Y only when N alone gives fewer groups than SMs; the float32
    /// partials are then summed (and the epilogue applied) by <see cref="HalfGemvKernels.GemvReduce16"/>.
    /// </summary>
    /// <returns>Whether it ran.</returns>
    private bool TryHalfGemv(ArrayView<ushort> a, ArrayView<ushort> b, ArrayView<ushort> bias, ArrayView<ushort> c, int batch, int m, int k, int n,
        bool transposeB, float alpha, float beta, bool biasIsMatrix, HalfFormat format)
    {
        // Aligned [K, N] products of 1–2 rows (1–8 under GEMS_GEMV16_KN=stream8, none under split) to the streamed FMA
        // GEMV: one launch, no split-K, 11–15% ahead of the kernels below at 1–2 rows (H200 Run 84).
        if (!transposeB && UsesHalfGemvKnStream(a, b, batch, m, k, n, format))
        {
            HalfGemvKnStream(a, b, bias, c, m, k, n, alpha, beta, biasIsMatrix, format == HalfFormat.BFloat16);
            return true;
        }

        // Aligned [N, K] products of 1–4 rows (1–8 under GEMS_GEMV16_NK=stream8, none under split) to the streamed FMA
        // GEMV, ahead of the skinny tensor-core kernels: one launch, no split-K, 2–9% ahead of them (H200 Run 86).
        if (transposeB && UsesHalfGemvNkStream(a, b, batch, m, k))
        {
            HalfGemvNkStream(a, b, bias, c, m, k, n, alpha, beta, biasIsMatrix, format == HalfFormat.BFloat16);
            return true;
        }

        // On a 9.0 device: 17–64 rows (either weight layout) and 9–16 rows of a [K, N] weight to the small-M wgmma kernel
        // (Run 23; GEMS_TC_SMALLM_VARIANT=off: the kernels below).
        if (TryWgmmaSmallM(a, b, bias, c, batch, m, k, n, transposeB, alpha, beta, biasIsMatrix, format))
        {
            return true;
        }

        // Decode products with 2–64 rows and an [N, K] weight go to the skinny tensor-core kernel first (GEMS_SKINNY_TC=0:
        // back to this GEMV, and above 16 rows to the large-tile tensor-core kernel).
        if (TrySkinnyTensorCore(a, b, bias, c, batch, m, k, n, transposeB, alpha, beta, biasIsMatrix, format))
        {
            return true;
        }

        // [K, N] weights (mm) with 1–16 rows: the skinny kernel's [K, N] variant (GEMS_SKINNY_TC_KN=0: the GEMV below).
        if (TrySkinnyTensorCoreKn(a, b, bias, c, batch, m, k, n, transposeB, alpha, beta, biasIsMatrix, format))
        {
            return true;
        }

        // float16 is converted through ILGPU's Half (cvt.f32.f16 on CUDA), which OpenCL compiles only with cl_khr_fp16:
        // float16 on OpenCL keeps the general kernel.
        if (!UsesHalfGemv(a, b, batch, m, k, n, transposeB) || (format == HalfFormat.Float16 && device.Kind == IlgpuDeviceKind.OpenCL))
        {
            return false;
        }

        bool bf16 = format == HalfFormat.BFloat16;
        var (config, g, cap) = HalfGemvLaunch.Plan(m, k, n, transposeB, alpha, beta, bias.Length != 0, biasIsMatrix,
            device.WarpSize, device.MaxGroupSize, device.MultiprocessorCount);
        int splits = g.Splits;
        var partial = splits > 1 ? Scratch((long)splits * m * n) : default;
        if (transposeB)
        {
            GemvNk16Variant(cap, bf16)(config, a.Cast<Half8>(), b.Cast<Half8>(), bias, c, partial, g);
        }
        else
        {
            GemvKn16Variant(cap, bf16)(config, a, b.Cast<Half8>(), bias, c, partial, g);
        }

        if (splits > 1)
        {
            ReduceSplits16(partial, bias, c, g, bf16);
        }

        return true;
    }

    /// <summary>The [N, K]-weight 16-bit GEMV for a row cap of 1 (<see cref="HalfGemvKernels.GemvNk16Row{TFormat}"/>), 4, 8 or 16 and the format.</summary>
    private Action<KernelConfig, ArrayView<Half8>, ArrayView<Half8>, ArrayView<ushort>, ArrayView<ushort>, ArrayView<float>, HalfGemvShape> GemvNk16Variant(int rowsCap, bool bf16)
    {
        var name = rowsCap == 1
            ? $"{nameof(HalfGemvKernels.GemvNk16Row)}<{(bf16 ? "bf16" : "f16")}>"
            : $"{nameof(HalfGemvKernels.GemvNk16)}<{rowsCap},{(bf16 ? "bf16" : "f16")}>";
        int slot = (bf16 ? 4 : 0) + (rowsCap switch { 1 => 0, 4 => 1, 8 => 2, _ => 3 });
        return (rowsCap, bf16) switch
        {
            (1, false) => device.Load(ref gemvNk16[slot], name, acc => acc.LoadStreamKernel<ArrayView<Half8>, ArrayView<Half8>, ArrayView<ushort>, ArrayView<ushort>, ArrayView<float>, HalfGemvShape>(HalfGemvKernels.GemvNk16Row<Float16Storage>, GemvBounds)),
            (4, false) => device.Load(ref gemvNk16[slot], name, acc => acc.LoadStreamKernel<ArrayView<Half8>, ArrayView<Half8>, ArrayView<ushort>, ArrayView<ushort>, ArrayView<float>, HalfGemvShape>(HalfGemvKernels.GemvNk16<Const4, Float16Storage>, GemvBounds)),
            (8, false) => device.Load(ref gemvNk16[slot], name, acc => acc.LoadStreamKernel<ArrayView<Half8>, ArrayView<Half8>, ArrayView<ushort>, ArrayView<ushort>, ArrayView<float>, HalfGemvShape>(HalfGemvKernels.GemvNk16<Const8, Float16Storage>, GemvBounds)),
            (16, false) => device.Load(ref gemvNk16[slot], name, acc => acc.LoadStreamKernel<ArrayView<Half8>, ArrayView<Half8>, ArrayView<ushort>, ArrayView<ushort>, ArrayView<float>, HalfGemvShape>(HalfGemvKernels.GemvNk16<Const16, Float16Storage>, GemvBounds)),
            (1, true) => device.Load(ref gemvNk16[slot], name, acc => acc.LoadStreamKernel<ArrayView<Half8>, ArrayView<Half8>, ArrayView<ushort>, ArrayView<ushort>, ArrayView<float>, HalfGemvShape>(HalfGemvKernels.GemvNk16Row<BFloat16Storage>, GemvBounds)),
            (4, true) => device.Load(ref gemvNk16[slot], name, acc => acc.LoadStreamKernel<ArrayView<Half8>, ArrayView<Half8>, ArrayView<ushort>, ArrayView<ushort>, ArrayView<float>, HalfGemvShape>(HalfGemvKernels.GemvNk16<Const4, BFloat16Storage>, GemvBounds)),
            (8, true) => device.Load(ref gemvNk16[slot], name, acc => acc.LoadStreamKernel<ArrayView<Half8>, ArrayView<Half8>, ArrayView<ushort>, ArrayView<ushort>, ArrayView<float>, HalfGemvShape>(HalfGemvKernels.GemvNk16<Const8, BFloat16Storage>, GemvBounds)),
            (16, true) => device.Load(ref gemvNk16[slot], name, acc => acc.LoadStreamKernel<ArrayView<Half8>, ArrayView<Half8>, ArrayView<ushort>, ArrayView<ushort>, ArrayView<float>, HalfGemvShape>(HalfGemvKernels.GemvNk16<Const16, BFloat16Storage>, GemvBounds)),
            _ => throw new ArgumentOutOfRangeException(nameof(rowsCap), rowsCap, "[N, K] GEMV row caps are 1, 4, 8 or 16."),
        };
    }

    /// <summary>The [K, N]-weight 16-bit GEMV compiled for a row cap of 1, 4 or 8 and the format.</summary>
    private Action<KernelConfig, ArrayView<ushort>, ArrayView<Half8>, ArrayView<ushort>, ArrayView<ushort>, ArrayView<float>, HalfGemvShape> GemvKn16Variant(int rowsCap, bool bf16)
    {
        var name = $"{nameof(HalfGemvKernels.GemvKn16)}<{rowsCap},{(bf16 ? "bf16" : "f16")}>";
        int slot = (bf16 ? 4 : 0) + (rowsCap switch { 1 => 0, 4 => 1, _ => 2 });
        return (rowsCap, bf16) switch
        {
            (1, false) => device.Load(ref gemvKn16[slot], name, acc => acc.LoadStreamKernel<ArrayView<ushort>, ArrayView<Half8>, ArrayView<ushort>, ArrayView<ushort>, ArrayView<float>, HalfGemvShape>(HalfGemvKernels.GemvKn16<Const1, Float16Storage>, GemvBounds)),
            (4, false) => device.Load(ref gemvKn16[slot], name, acc => acc.LoadStreamKernel<ArrayView<ushort>, ArrayView<Half8>, ArrayView<ushort>, ArrayView<ushort>, ArrayView<float>, HalfGemvShape>(HalfGemvKernels.GemvKn16<Const4, Float16Storage>, GemvBounds)),
            (8, false) => device.Load(ref gemvKn16[slot], name, acc => acc.LoadStreamKernel<ArrayView<ushort>, ArrayView<Half8>, ArrayView<ushort>, ArrayView<ushort>, ArrayView<float>, HalfGemvShape>(HalfGemvKernels.GemvKn16<Const8, Float16Storage>, GemvBounds)),
            (1, true) => device.Load(ref gemvKn16[slot], name, acc => acc.LoadStreamKernel<ArrayView<ushort>, ArrayView<Half8>, ArrayView<ushort>, ArrayView<ushort>, ArrayView<float>, HalfGemvShape>(HalfGemvKernels.GemvKn16<Const1, BFloat16Storage>, GemvBounds)),
            (4, true) => device.Load(ref gemvKn16[slot], name, acc => acc.LoadStreamKernel<ArrayView<ushort>, ArrayView<Half8>, ArrayView<ushort>, ArrayView<ushort>, ArrayView<float>, HalfGemvShape>(HalfGemvKernels.GemvKn16<Const4, BFloat16Storage>, GemvBounds)),
            (8, true) => device.Load(ref gemvKn16[slot], name, acc => acc.LoadStreamKernel<ArrayView<ushort>, ArrayView<Half8>, ArrayView<ushort>, ArrayView<ushort>, ArrayView<float>, HalfGemvShape>(HalfGemvKernels.GemvKn16<Const8, BFloat16Storage>, GemvBounds)),
            _ => throw new ArgumentOutOfRangeException(nameof(rowsCap), rowsCap, "[K, N] GEMV row caps are 1, 4 or 8."),
        };
    }
}

/// <summary>Launch shape of <see cref="HalfGemvKernels"/> (shared by the facade and the tests).</summary>
internal static class HalfGemvLaunch
{
    /// <summary>Threads per group: up to 256, whole warps.</summary>
    public static int Threads(int warpSize, int maxGroupSize) => Math.Min(maxGroupSize, 256) / warpSize * warpSize;

    /// <summary>Whether the kernels can run on groups of this device: at least one warp, and the [K, N] cross-warp buffer fits.</summary>
    public static bool Fits(int warpSize, int maxGroupSize)
    {
        int threads = Threads(warpSize, maxGroupSize);
        int colLanes = Math.Min(8, warpSize);
        return threads > 0 && warpSize % colLanes == 0
            && threads / warpSize * HalfGemvKernels.MaxKnRowsCap * colLanes * 8 <= HalfGemvKernels.ReduceFloats;
    }

    /// <summary>Row cap (the kernel variant) for M rows: [N, K] 1, 4, 8 or 16; [K, N] 1, 4 or 8 (more rows go in row blocks).</summary>
    public static int RowsCap(int m, bool transposeB) =>
        m <= 1 ? 1 : m <= 4 ? 4 : m <= 8 || !transposeB ? HalfGemvKernels.MaxKnRowsCap : HalfGemvKernels.MaxRows;

    /// <summary>
    /// Output columns per warp of the [N, K] kernels: 1 for one row (GemvNk16Row), 2 for four rows, 4 for more (GemvNk16;
    /// NK_WIDE in Codegen/gen_half_gemv.py).
    /// </summary>
    public static int NkColumnsPerWarp(int rowsCap) => rowsCap == 1 ? 1 : rowsCap <= 4 ? 2 : 4;

    /// <summary>
    /// Grid, shape and row cap. K is split over Grid.Y only when N alone gives fewer groups than SMs (a split costs a
    /// partials round trip and a second launch); then to about four groups per SM. A device that reports no SMs (the CPU
    /// simulator) counts as four, so small test shapes take the split path and larger ones do not.
    /// </summary>
    public static (KernelConfig Config, HalfGemvShape Shape, int RowsCap) Plan(int m, int k, int n, bool transposeB, float alpha, float beta,
        bool hasBias, bool biasIsMatrix, int warpSize, int maxGroupSize, int multiprocessors)
    {
        int threads = Threads(warpSize, maxGroupSize);
        int warps = threads / warpSize;
        int sms = multiprocessors > 0 ? multiprocessors : 4;
        int cap = RowsCap(m, transposeB);
        var g = new HalfGemvShape
        {
            M = m,
            N = n,
            K = k,
            Alpha = alpha,
            Beta = beta,
            HasBias = hasBias ? 1 : 0,
            BiasStrideM = biasIsMatrix ? n : 0,
            RowBlocks = 1,
            ColLanes = Math.Min(8, warpSize),
        };

        int groups, length;
        if (transposeB)
        {
            int columnsPerWarp = NkColumnsPerWarp(cap);
            groups = ((n + columnsPerWarp - 1) / columnsPerWarp + warps - 1) / warps;
            length = k / 8;
        }
        else
        {
            g.RowBlocks = (m + cap - 1) / cap;
            groups = (n / 8 + g.ColLanes - 1) / g.ColLanes * g.RowBlocks;
            length = k;
        }

        int splits = groups >= sms ? 1 : Math.Max(1, (4 * sms + groups - 1) / groups);
        int chunk = Math.Max(1, (length + splits - 1) / splits);
        g.Chunk = chunk;
        g.Splits = Math.Max(1, (length + chunk - 1) / chunk);
        g.Direct = g.Splits == 1 ? 1 : 0;
        return (new KernelConfig(new Index3D(groups, g.Splits, 1), new Index3D(threads, 1, 1)), g, cap);
    }
}
