using System;
using ILGPU;
using ILGPU.Runtime;

namespace GemsInjector.Kernels.Ilgpu;

/// <summary>
/// Launch plans of the row kernels added for bandwidth: the 16-bit register kernels (<see cref="RowVector16Kernels"/>,
/// and <see cref="RowWideKernels"/>' 16-bit twins for widths or views the 16-byte loads cannot take), the streaming
/// and row-resident softmax (<see cref="RowStreamKernels"/>), the float32 vector layer_norm (<see cref="RowVectorF32Kernels"/>) and the
/// 16-bit rotary kernel. Each returns false (nothing launched) when its kernel cannot take the call, and the caller
/// falls back to the older kernel. <see cref="Vectorize"/> = false forces those older kernels (tests use it).
/// </summary>
public sealed partial class IlgpuKernels
{
    private readonly Action<KernelConfig, ArrayView<Half8>, ArrayView<Half8>, ArrayView<Half8>, int, float>?[] rmsNormVec16 = new Action<KernelConfig, ArrayView<Half8>, ArrayView<Half8>, ArrayView<Half8>, int, float>?[2];
    private readonly Action<KernelConfig, ArrayView<Half8>, ArrayView<Half8>, ArrayView<Half8>, int, float>?[] fusedAddRmsNormVec16 = new Action<KernelConfig, ArrayView<Half8>, ArrayView<Half8>, ArrayView<Half8>, int, float>?[2];
    private readonly Action<KernelConfig, ArrayView<Half8>, ArrayView<Half8>, ArrayView<Half8>, ArrayView<Half8>, int, float, int, int>?[] layerNormVec16 = new Action<KernelConfig, ArrayView<Half8>, ArrayView<Half8>, ArrayView<Half8>, ArrayView<Half8>, int, float, int, int>?[2];
    private readonly Action<KernelConfig, ArrayView<Half8>, ArrayView<Half8>, int, int>?[] softmaxVec16 = new Action<KernelConfig, ArrayView<Half8>, ArrayView<Half8>, int, int>?[2];
    private readonly Action<KernelConfig, ArrayView<Half8>, ArrayView<Half8>, ArrayView<ushort>, ArrayView<ushort>, int, int, int>?[] softmaxStream16 = new Action<KernelConfig, ArrayView<Half8>, ArrayView<Half8>, ArrayView<ushort>, ArrayView<ushort>, int, int, int>?[2];
    private Action<KernelConfig, ArrayView<Float4>, ArrayView<Float4>, ArrayView<float>, ArrayView<float>, int, int, int>? softmaxStreamF32;
    private Action<KernelConfig, ArrayView<Float4>, ArrayView<Float4>, int, int>? softmaxRowF32;
    private readonly Action<KernelConfig, ArrayView<Half8>, ArrayView<Half8>, int, int>?[] softmaxRow16 = new Action<KernelConfig, ArrayView<Half8>, ArrayView<Half8>, int, int>?[2];
    private Action<KernelConfig, ArrayView<Float4>, ArrayView<Float4>, ArrayView<Float4>, ArrayView<Float4>, int, float, int, int>? layerNormVecF32;
    private readonly Action<KernelConfig, ArrayView<ushort>, ArrayView<ushort>, ArrayView<ushort>, int, float>?[] rmsNormWide16 = new Action<KernelConfig, ArrayView<ushort>, ArrayView<ushort>, ArrayView<ushort>, int, float>?[2];
    private readonly Action<KernelConfig, ArrayView<ushort>, ArrayView<ushort>, ArrayView<ushort>, int, float>?[] fusedAddRmsNormWide16 = new Action<KernelConfig, ArrayView<ushort>, ArrayView<ushort>, ArrayView<ushort>, int, float>?[2];
    private readonly Action<KernelConfig, ArrayView<ushort>, ArrayView<ushort>, ArrayView<ushort>, ArrayView<ushort>, int, float, int, int>?[] layerNormWide16 = new Action<KernelConfig, ArrayView<ushort>, ArrayView<ushort>, ArrayView<ushort>, ArrayView<ushort>, int, float, int, int>?[2];
    private readonly Action<KernelConfig, ArrayView<long>, ArrayView<ulong>, ArrayView<ulong>, ArrayView<ulong>, int, int, int, int, int, int>?[] rotaryVec16 = new Action<KernelConfig, ArrayView<long>, ArrayView<ulong>, ArrayView<ulong>, ArrayView<ulong>, int, int, int, int, int, int>?[2];

    /// <summary>Launch bounds of the float32 streaming softmax: groups of up to 1024 threads (≤ 64 registers each).</summary>
    private KernelSpecialization StreamBounds => Bounds(1024, null);

    /// <summary>
    /// Launch bounds of the 16-bit row-resident softmax: 512 threads and two groups per SM (≤ 64 registers), so that one
    /// row's loads overlap the other's arithmetic.
    /// </summary>
    private KernelSpecialization ResidentBounds16 => Bounds(512, 2);

    /// <summary>The element offset of the view's start within 16 bytes (0 for an empty view).</summary>
    private static int Phase<T>(ArrayView<T> view, int elementSize)
        where T : unmanaged
    {
        if (view.Length == 0)
        {
            return 0;
        }

        var contiguous = (IContiguousArrayView)view;
        long address = contiguous.Buffer.NativePtr.ToInt64() + contiguous.IndexInBytes;
        return (int)(address % 16 / elementSize);
    }

    /// <summary>The view's 16-byte vectors from its first 16-byte-aligned element on (<paramref name="width"/> elements each).</summary>
    private static ArrayView<TVector> VectorView<T, TVector>(ArrayView<T> view, int phase, int width)
        where T : unmanaged
        where TVector : unmanaged
    {
        long first = (width - phase) % width;
        long count = view.Length > first ? (view.Length - first) / width : 0;
        return count == 0 ? ArrayView<TVector>.Empty : view.SubView(first, count * width).Cast<TVector>();
    }

    private static int RoundUp(long n, int multiple) => (int)((n + multiple - 1) / multiple * multiple);

    /// <summary>
    /// Launch shape of <see cref="RowVector16Kernels"/> (rows of cols/8 vectors, <see cref="RowVector16Kernels.VectorsPerThread"/>
    /// per thread, at most 512 threads: cols ≤ 16384), or null when cols is not a multiple of 8, a view is not 16-byte
    /// aligned, or the row is longer.
    /// </summary>
    private KernelConfig? Vector16Rows(int rows, int cols, params ArrayView<ushort>[] views)
    {
        if (!Vectorize || cols % RowVector16Kernels.VectorWidth != 0)
        {
            return null;
        }

        foreach (var view in views)
        {
            if (!IsAligned(view, 16))
            {
                return null;
            }
        }

        int warp = device.WarpSize;
        int max = Math.Min(device.MaxGroupSize, 512) / warp * warp;
        long perThread = (long)RowVector16Kernels.VectorWidth * RowVector16Kernels.VectorsPerThread;
        int group = Math.Max(warp, RoundUp((cols + perThread - 1) / perThread, warp));
        return group <= max ? new KernelConfig(rows, group) : null;
    }

    /// <summary>Launch shape of the streaming softmax: enough threads for one step over the row, at most <paramref name="cap"/>.</summary>
    private KernelConfig StreamRows(int rows, int cols, int width, int cap)
    {
        int warp = device.WarpSize;
        int max = Math.Max(warp, Math.Min(device.MaxGroupSize, cap) / warp * warp);
        long perThread = (long)width * RowStreamKernels.Unroll;
        int group = Math.Max(warp, RoundUp((cols + perThread - 1) / perThread, warp));
        return new KernelConfig(rows, Math.Min(group, max));
    }

    /// <summary>
    /// Whether softmax rows up to 32768 elements are held in registers (<see cref="RowStreamKernels.SoftmaxRowF32"/> /
    /// <see cref="RowStreamKernels.SoftmaxRow16{TFormat}"/>): true unless the environment variable
    /// <c>GEMS_SOFTMAX_RESIDENT</c> is <c>0</c> (read once per instance; a measuring knob that sends those rows to the
    /// streaming kernels instead).
    /// </summary>
    internal bool SoftmaxResident { get; set; } = Environment.GetEnvironmentVariable("GEMS_SOFTMAX_RESIDENT") != "0";

    /// <summary>
    /// Launch shape of the row-resident softmax (<see cref="RowStreamKernels.SoftmaxRowF32"/> /
    /// <see cref="RowStreamKernels.SoftmaxRow16{TFormat}"/>): ⌈vectors / <see cref="RowStreamKernels.ResidentVectors"/>⌉
    /// threads rounded to a warp, or null when cols is not a multiple of <paramref name="width"/>, a view is not 16-byte
    /// aligned, or the row needs more than <paramref name="cap"/> threads (it streams then).
    /// </summary>
    private KernelConfig? ResidentRows<T>(int rows, int cols, int width, int cap, ArrayView<T> x, ArrayView<T> y)
        where T : unmanaged
    {
        if (!Vectorize || !SoftmaxResident || cols % width != 0 || !IsAligned(x, 16) || !IsAligned(y, 16))
        {
            return null;
        }

        int warp = device.WarpSize;
        int max = Math.Min(device.MaxGroupSize, cap) / warp * warp;
        int group = Math.Max(warp, RoundUp((cols / width + RowStreamKernels.ResidentVectors - 1) / RowStreamKernels.ResidentVectors, warp));
        return group <= max ? new KernelConfig(rows, group) : null;
    }

    /// <summary>float32 softmax of rows up to 32768 floats (multiples of 4, aligned) held in registers; false when it cannot take the call.</summary>
    private bool TrySoftmaxRowF32(ArrayView<float> x, ArrayView<float> y, int rows, int cols, int log)
    {
        if (ResidentRows(rows, cols, 4, 1024, x, y) is not { } config)
        {
            return false;
        }

        device.Load(ref softmaxRowF32, nameof(RowStreamKernels.SoftmaxRowF32),
            acc => acc.LoadStreamKernel<ArrayView<Float4>, ArrayView<Float4>, int, int>(RowStreamKernels.SoftmaxRowF32, StreamBounds))(
            config, x.Cast<Float4>(), y.Cast<Float4>(), cols, log);
        return true;
    }

    /// <summary>float32 softmax through <see cref="RowStreamKernels.SoftmaxStreamF32"/> when x and y share their 16-byte phase.</summary>
    private bool TrySoftmaxStreamF32(ArrayView<float> x, ArrayView<float> y, int rows, int cols, int log)
    {
        int phase = Phase(x, sizeof(float));
        var x4 = VectorView<float, Float4>(x, phase, 4);
        if (!Vectorize || phase != Phase(y, sizeof(float)) || x4.Length == 0)
        {
            return false;
        }

        device.Load(ref softmaxStreamF32, nameof(RowStreamKernels.SoftmaxStreamF32),
            acc => acc.LoadStreamKernel<ArrayView<Float4>, ArrayView<Float4>, ArrayView<float>, ArrayView<float>, int, int, int>(RowStreamKernels.SoftmaxStreamF32, StreamBounds))(
            StreamRows(rows, cols, 4, 1024), x4, VectorView<float, Float4>(y, phase, 4), x, y, cols, phase, log);
        return true;
    }

    /// <summary>
    /// 16-bit softmax: the register kernel when it can take the row (≤ 16384), else the row-resident kernel (≤ 32768,
    /// aligned multiples of 8), else the streaming kernel when x and y share their phase.
    /// </summary>
    private bool TrySoftmaxVector16(ArrayView<ushort> x, ArrayView<ushort> y, int rows, int cols, int log, HalfFormat format)
    {
        int bf = Bf(format);
        if (Vector16Rows(rows, cols, x, y) is { } reg)
        {
            device.Load(ref softmaxVec16[bf], (bf != 0 ? nameof(RowVector16Kernels) + "." + nameof(RowVector16Kernels.Softmax16) + "<bf16>" : nameof(RowVector16Kernels) + "." + nameof(RowVector16Kernels.Softmax16) + "<f16>"),
                acc => acc.LoadStreamKernel<ArrayView<Half8>, ArrayView<Half8>, int, int>(
                    bf != 0 ? RowVector16Kernels.Softmax16<BFloat16Storage> : RowVector16Kernels.Softmax16<Float16Storage>, RowBounds))(
                reg, x.Cast<Half8>(), y.Cast<Half8>(), cols, log);
            return true;
        }

        // Short rows: the plain kernel, which the driver JIT-compiles in a fifth of the streaming kernel's time (IlgpuKernels.SmallShapes.cs).
        if (IsShortRow16(cols))
        {
            return false;
        }

        if (ResidentRows(rows, cols, 8, 512, x, y) is { } resident)
        {
            device.Load(ref softmaxRow16[bf], (bf != 0 ? nameof(RowStreamKernels.SoftmaxRow16) + "<bf16>" : nameof(RowStreamKernels.SoftmaxRow16) + "<f16>"),
                acc => acc.LoadStreamKernel<ArrayView<Half8>, ArrayView<Half8>, int, int>(
                    bf != 0 ? RowStreamKernels.SoftmaxRow16<BFloat16Storage> : RowStreamKernels.SoftmaxRow16<Float16Storage>, ResidentBounds16))(
                resident, x.Cast<Half8>(), y.Cast<Half8>(), cols, log);
            return true;
        }

        int phase = Phase(x, sizeof(ushort));
        var x8 = VectorView<ushort, Half8>(x, phase, 8);
        if (!Vectorize || phase != Phase(y, sizeof(ushort)) || x8.Length == 0)
        {
            return false;
        }

        device.Load(ref softmaxStream16[bf], (bf != 0 ? nameof(RowStreamKernels.SoftmaxStream16) + "<bf16>" : nameof(RowStreamKernels.SoftmaxStream16) + "<f16>"),
            acc => acc.LoadStreamKernel<ArrayView<Half8>, ArrayView<Half8>, ArrayView<ushort>, ArrayView<ushort>, int, int, int>(
                bf != 0 ? RowStreamKernels.SoftmaxStream16<BFloat16Storage> : RowStreamKernels.SoftmaxStream16<Float16Storage>, RowBounds))(
            StreamRows(rows, cols, 8, 512), x8, VectorView<ushort, Half8>(y, phase, 8), x, y, cols, phase, log);
        return true;
    }

    private bool TryRmsNormVector16(ArrayView<ushort> x, ArrayView<ushort> weight, ArrayView<ushort> y, int rows, int cols, float epsilon, HalfFormat format)
    {
        if (Vector16Rows(rows, cols, x, weight, y) is not { } reg)
        {
            return false;
        }

        int bf = Bf(format);
        device.Load(ref rmsNormVec16[bf], (bf != 0 ? nameof(RowVector16Kernels) + "." + nameof(RowVector16Kernels.RmsNorm16) + "<bf16>" : nameof(RowVector16Kernels) + "." + nameof(RowVector16Kernels.RmsNorm16) + "<f16>"),
            acc => acc.LoadStreamKernel<ArrayView<Half8>, ArrayView<Half8>, ArrayView<Half8>, int, float>(
                bf != 0 ? RowVector16Kernels.RmsNorm16<BFloat16Storage> : RowVector16Kernels.RmsNorm16<Float16Storage>, RowBounds))(
            reg, x.Cast<Half8>(), weight.Cast<Half8>(), y.Cast<Half8>(), cols, epsilon);
        return true;
    }

    private bool TryFusedAddRmsNormVector16(ArrayView<ushort> x, ArrayView<ushort> residual, ArrayView<ushort> weight, int rows, int cols, float epsilon, HalfFormat format)
    {
        if (Vector16Rows(rows, cols, x, residual, weight) is not { } reg)
        {
            return false;
        }

        int bf = Bf(format);
        device.Load(ref fusedAddRmsNormVec16[bf], (bf != 0 ? nameof(RowVector16Kernels) + "." + nameof(RowVector16Kernels.FusedAddRmsNorm16) + "<bf16>" : nameof(RowVector16Kernels) + "." + nameof(RowVector16Kernels.FusedAddRmsNorm16) + "<f16>"),
            acc => acc.LoadStreamKernel<ArrayView<Half8>, ArrayView<Half8>, ArrayView<Half8>, int, float>(
                bf != 0 ? RowVector16Kernels.FusedAddRmsNorm16<BFloat16Storage> : RowVector16Kernels.FusedAddRmsNorm16<Float16Storage>, RowBounds))(
            reg, x.Cast<Half8>(), residual.Cast<Half8>(), weight.Cast<Half8>(), cols, epsilon);
        return true;
    }

    private bool TryLayerNormVector16(ArrayView<ushort> x, ArrayView<ushort> weight, ArrayView<ushort> bias, ArrayView<ushort> y, int rows, int cols, float epsilon, HalfFormat format)
    {
        if (Vector16Rows(rows, cols, x, weight, bias, y) is not { } reg)
        {
            return false;
        }

        int bf = Bf(format);
        device.Load(ref layerNormVec16[bf], (bf != 0 ? nameof(RowVector16Kernels) + "." + nameof(RowVector16Kernels.LayerNorm16) + "<bf16>" : nameof(RowVector16Kernels) + "." + nameof(RowVector16Kernels.LayerNorm16) + "<f16>"),
            acc => acc.LoadStreamKernel<ArrayView<Half8>, ArrayView<Half8>, ArrayView<Half8>, ArrayView<Half8>, int, float, int, int>(
                bf != 0 ? RowVector16Kernels.LayerNorm16<BFloat16Storage> : RowVector16Kernels.LayerNorm16<Float16Storage>, RowBounds))(
            // An absent weight / bias is passed as x (never read: the flag is 0), since the kernel's aligned view of an empty one is invalid.
            reg, x.Cast<Half8>(), (weight.Length != 0 ? weight : x).Cast<Half8>(), (bias.Length != 0 ? bias : x).Cast<Half8>(), y.Cast<Half8>(), cols, epsilon,
            weight.Length != 0 ? 1 : 0, bias.Length != 0 ? 1 : 0);
        return true;
    }

    /// <summary>16-bit rotary through <see cref="RotaryKernels.Rotary16x4{TFormat}"/> (four pairs per thread, 64-bit words) when headSize % 4 = 0, rotaryDim % 8 = 0 and the views are 8-byte aligned.</summary>
    private bool TryRotaryVector16(ArrayView<long> positions, ArrayView<ushort> query, ArrayView<ushort> key, ArrayView<ushort> cosSinCache,
        int tokens, int heads, int kvHeads, int headSize, int rotaryDim, bool isNeox, HalfFormat format)
    {
        if (!Vectorize || headSize % 4 != 0 || rotaryDim % 8 != 0 || !IsAligned(query, 8) || !IsAligned(key, 8) || !IsAligned(cosSinCache, 8))
        {
            return false;
        }

        int bf = Bf(format);
        long quads = (long)(heads + kvHeads) * (rotaryDim / 8);
        int warp = device.WarpSize;
        int max = Math.Min(device.MaxGroupSize, 512) / warp * warp;
        long steps = (quads + max - 1) / max;
        int group = Math.Max(warp, RoundUp((quads + steps - 1) / steps, warp));
        device.Load(ref rotaryVec16[bf], (bf != 0 ? nameof(RotaryKernels.Rotary16x4) + "<bf16>" : nameof(RotaryKernels.Rotary16x4) + "<f16>"),
            acc => acc.LoadStreamKernel<ArrayView<long>, ArrayView<ulong>, ArrayView<ulong>, ArrayView<ulong>, int, int, int, int, int, int>(
                bf != 0 ? RotaryKernels.Rotary16x4<BFloat16Storage> : RotaryKernels.Rotary16x4<Float16Storage>))(
            new KernelConfig(tokens, Math.Min(group, max)), positions, query.Cast<ulong>(), key.Cast<ulong>(), cosSinCache.Cast<ulong>(),
            heads, kvHeads, headSize, rotaryDim, isNeox ? 1 : 0, kvHeads > 0 ? 1 : 0);
        return true;
    }

    /// <summary>
    /// float32 layer_norm through <see cref="RowVectorF32Kernels.LayerNormF32x4"/> when cols % 4 = 0, cols ≤ 16·512 = 8192
    /// and every view starts 16-byte aligned (256 threads for 4096 columns).
    /// </summary>
    private bool TryLayerNormVectorF32(ArrayView<float> x, ArrayView<float> weight, ArrayView<float> bias, ArrayView<float> y, int rows, int cols, float epsilon)
    {
        if (!Vectorize || cols % 4 != 0 || !IsAligned(x, 16) || !IsAligned(weight, 16) || !IsAligned(bias, 16) || !IsAligned(y, 16))
        {
            return false;
        }

        int warp = device.WarpSize;
        int max = Math.Min(device.MaxGroupSize, 512) / warp * warp;
        long perThread = 4L * RowVectorF32Kernels.VectorsPerThread;
        int group = Math.Max(warp, RoundUp((cols + perThread - 1) / perThread, warp));
        if (group > max)
        {
            return false;
        }

        device.Load(ref layerNormVecF32, nameof(RowVectorF32Kernels.LayerNormF32x4),
            acc => acc.LoadStreamKernel<ArrayView<Float4>, ArrayView<Float4>, ArrayView<Float4>, ArrayView<Float4>, int, float, int, int>(RowVectorF32Kernels.LayerNormF32x4, RowBounds))(
            new KernelConfig(rows, group), x.Cast<Float4>(), (weight.Length != 0 ? weight : x).Cast<Float4>(), (bias.Length != 0 ? bias : x).Cast<Float4>(), y.Cast<Float4>(),
            cols, epsilon, weight.Length != 0 ? 1 : 0, bias.Length != 0 ? 1 : 0);
        return true;
    }

    /// <summary>16-bit rms_norm with the row in registers and scalar loads (<see cref="RowWideKernels"/>): widths or views the vector kernel cannot take, rows up to 16384.</summary>
    private bool TryRmsNormWide16(ArrayView<ushort> x, ArrayView<ushort> weight, ArrayView<ushort> y, int rows, int cols, float epsilon, HalfFormat format)
    {
        if (!Vectorize || IsShortRow16(cols) || WideRows(rows, cols, RowWideKernels.NormPerThread) is not { } wide)
        {
            return false;
        }

        int bf = Bf(format);
        device.Load(ref rmsNormWide16[bf], (bf != 0 ? nameof(RowWideKernels.RmsNormWide16) + "<bf16>" : nameof(RowWideKernels.RmsNormWide16) + "<f16>"),
            acc => acc.LoadStreamKernel<ArrayView<ushort>, ArrayView<ushort>, ArrayView<ushort>, int, float>(
                bf != 0 ? RowWideKernels.RmsNormWide16<BFloat16Storage> : RowWideKernels.RmsNormWide16<Float16Storage>, RowBounds))(
            wide, x, weight, y, cols, epsilon);
        return true;
    }

    /// <summary>16-bit fused_add_rms_norm with the row in registers and scalar loads (see <see cref="TryRmsNormWide16"/>).</summary>
    private bool TryFusedAddRmsNormWide16(ArrayView<ushort> x, ArrayView<ushort> residual, ArrayView<ushort> weight, int rows, int cols, float epsilon, HalfFormat format)
    {
        if (!Vectorize || IsShortRow16(cols) || WideRows(rows, cols, RowWideKernels.NormPerThread) is not { } wide)
        {
            return false;
        }

        int bf = Bf(format);
        device.Load(ref fusedAddRmsNormWide16[bf], (bf != 0 ? nameof(RowWideKernels.FusedAddRmsNormWide16) + "<bf16>" : nameof(RowWideKernels.FusedAddRmsNormWide16) + "<f16>"),
            acc => acc.LoadStreamKernel<ArrayView<ushort>, ArrayView<ushort>, ArrayView<ushort>, int, float>(
                bf != 0 ? RowWideKernels.FusedAddRmsNormWide16<BFloat16Storage> : RowWideKernels.FusedAddRmsNormWide16<Float16Storage>, RowBounds))(
            wide, x, residual, weight, cols, epsilon);
        return true;
    }

    /// <summary>16-bit layer_norm with the row in registers and scalar loads (see <see cref="TryRmsNormWide16"/>).</summary>
    private bool TryLayerNormWide16(ArrayView<ushort> x, ArrayView<ushort> weight, ArrayView<ushort> bias, ArrayView<ushort> y, int rows, int cols, float epsilon, HalfFormat format)
    {
        if (!Vectorize || IsShortRow16(cols) || WideRows(rows, cols, RowWideKernels.NormPerThread) is not { } wide)
        {
            return false;
        }

        int bf = Bf(format);
        device.Load(ref layerNormWide16[bf], (bf != 0 ? nameof(RowWideKernels.LayerNormWide16) + "<bf16>" : nameof(RowWideKernels.LayerNormWide16) + "<f16>"),
            acc => acc.LoadStreamKernel<ArrayView<ushort>, ArrayView<ushort>, ArrayView<ushort>, ArrayView<ushort>, int, float, int, int>(
                bf != 0 ? RowWideKernels.LayerNormWide16<BFloat16Storage> : RowWideKernels.LayerNormWide16<Float16Storage>, RowBounds))(
            wide, x, weight, bias, y, cols, epsilon, weight.Length != 0 ? 1 : 0, bias.Length != 0 ? 1 : 0);
        return true;
    }
}
