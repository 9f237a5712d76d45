using System;
using ILGPU;
using ILGPU.Runtime;

namespace GemsInjector.Kernels.Ilgpu;

public sealed partial class IlgpuKernels
{
    private Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, float>? rmsNormF32;
    private Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, float>? fusedAddRmsNormF32;
    private Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, float, int, int>? layerNormF32;
    private Action<KernelConfig, ArrayView<float>, ArrayView<float>, int, int>? softmaxF32;
    private Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<long>, int, int>? topkF32;

    private Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, float>? rmsNormRegF32, fusedAddRmsNormRegF32;
    private Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, float, int, int>? layerNormRegF32;
    private Action<KernelConfig, ArrayView<float>, ArrayView<float>, int, int>? softmaxRegF32;
    private Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, float>? rmsNormWideF32, fusedAddRmsNormWideF32;
    private Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, float, int, int>? layerNormWideF32;

    /// <summary>
    /// Launch bounds of the register-resident row kernels: on CUDA ILGPU emits <c>.maxntid 512</c> for them, so ptxas
    /// keeps each thread within the 128 registers a 512-thread group may use (spilling rather than failing to launch).
    /// </summary>
    private KernelSpecialization RowBounds => Bounds(512, null);

    private KernelConfig Rows(int rows, int cols) => new(rows, RowGroupSize(cols));

    /// <summary>
    /// Launch shape of the wide register norms (<see cref="RowWideKernels"/>: up to <paramref name="perThread"/> floats
    /// per thread of at most 512 threads), or null when the row is longer.
    /// </summary>
    private KernelConfig? WideRows(int rows, int cols, int perThread)
    {
        int warp = device.WarpSize;
        int max = Math.Min(device.MaxGroupSize, 512) / warp * warp;
        if ((long)cols > (long)perThread * max)
        {
            return null;
        }

        int group = Math.Max(warp, (cols + perThread - 1) / perThread);
        return new KernelConfig(rows, Math.Min(max, (group + warp - 1) / warp * warp));
    }

    /// <summary>
    /// Launch shape of the register-resident row kernels (<see cref="RowRegisterKernels"/>), or null when the row does
    /// not fit 8 floats per thread of a 512-thread group (4096 floats). Few rows (≤ 64, decode) get 4 floats per thread
    /// where the group allows, so that more threads share a row; many rows get 8 (fewer, fuller groups).
    /// </summary>
    private KernelConfig? RegisterRows(int rows, int cols)
    {
        int warp = device.WarpSize;
        // At most 512 threads: ILGPU emits no launch bounds (.maxntid), so ptxas may give a kernel more than the 64
        // registers per thread that a 1024-thread group allows; 512 threads leave it 128.
        int max = Math.Min(device.MaxGroupSize, 512) / warp * warp;
        int Threads(int per) => Math.Max(warp, (int)(((long)cols + per - 1) / per + warp - 1) / warp * warp);
        int group = Threads(rows <= 64 ? 4 : RowRegisterKernels.PerThread);
        if (group > max)
        {
            group = Threads(RowRegisterKernels.PerThread);
        }

        return group <= max ? new KernelConfig(rows, group) : null;
    }

    private int CheckRows<T>(ArrayView<T> x, int cols, string name)
        where T : unmanaged
    {
        if (cols <= 0)
        {
            throw new ArgumentOutOfRangeException(nameof(cols), cols, "The row length must be positive.");
        }

        if (x.Length % cols != 0)
        {
            throw new ArgumentException($"'{name}' has {x.Length} elements, not a multiple of the row length {cols}.", name);
        }

        return CheckInt(x.Length / cols, name);
    }

    /// <summary>RMS norm over the last dim: y = x / √(mean(x²) + eps) · weight.</summary>
    /// <param name="x">Input [rows, cols].</param>
    /// <param name="weight">[cols].</param>
    /// <param name="y">Output [rows, cols] (may be <paramref name="x"/>).</param>
    /// <param name="cols">Row length.</param>
    /// <param name="epsilon">Added to the mean square.</param>
    public void RmsNorm(ArrayView<float> x, ArrayView<float> weight, ArrayView<float> y, int cols, float epsilon)
    {
        int rows = CheckRows(x, cols, nameof(x));
        CheckLength(weight, cols, nameof(weight));
        CheckLength(y, x.Length, nameof(y));
        if (rows == 0)
        {
            return;
        }

        if (RegisterRows(rows, cols) is { } reg)
        {
            device.Load(ref rmsNormRegF32, "Reg" + nameof(RowRegisterKernels.RmsNormF32),
                acc => acc.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, int, float>(RowRegisterKernels.RmsNormF32, RowBounds))(
                reg, x, weight, y, cols, epsilon);
            return;
        }

        if (WideRows(rows, cols, RowWideKernels.NormPerThread) is { } wide)
        {
            device.Load(ref rmsNormWideF32, nameof(RowWideKernels.RmsNormWideF32),
                acc => acc.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, int, float>(RowWideKernels.RmsNormWideF32, RowBounds))(
                wide, x, weight, y, cols, epsilon);
            return;
        }

        device.Load(ref rmsNormF32, nameof(RowKernels.RmsNormF32), acc => acc.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, int, float>(RowKernels.RmsNormF32))(
            Rows(rows, cols), x, weight, y, cols, epsilon);
    }

    /// <summary>vLLM <c>fused_add_rms_norm</c>, in place: residual = x + residual; x = rms_norm(residual)·weight.</summary>
    /// <param name="x">Input [rows, cols]; receives the normalized result.</param>
    /// <param name="residual">[rows, cols]; receives x + residual.</param>
    /// <param name="weight">[cols].</param>
    /// <param name="cols">Row length.</param>
    /// <param name="epsilon">Added to the mean square.</param>
    public void FusedAddRmsNorm(ArrayView<float> x, ArrayView<float> residual, ArrayView<float> weight, int cols, float epsilon)
    {
        int rows = CheckRows(x, cols, nameof(x));
        CheckLength(residual, x.Length, nameof(residual));
        CheckLength(weight, cols, nameof(weight));
        if (rows == 0)
        {
            return;
        }

        if (RegisterRows(rows, cols) is { } reg)
        {
            device.Load(ref fusedAddRmsNormRegF32, "Reg" + nameof(RowRegisterKernels.FusedAddRmsNormF32),
                acc => acc.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, int, float>(RowRegisterKernels.FusedAddRmsNormF32, RowBounds))(
                reg, x, residual, weight, cols, epsilon);
            return;
        }

        if (WideRows(rows, cols, RowWideKernels.NormPerThread) is { } wide)
        {
            device.Load(ref fusedAddRmsNormWideF32, nameof(RowWideKernels.FusedAddRmsNormWideF32),
                acc => acc.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, int, float>(RowWideKernels.FusedAddRmsNormWideF32, RowBounds))(
                wide, x, residual, weight, cols, epsilon);
            return;
        }

        device.Load(ref fusedAddRmsNormF32, nameof(RowKernels.FusedAddRmsNormF32), acc => acc.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, int, float>(RowKernels.FusedAddRmsNormF32))(
            Rows(rows, cols), x, residual, weight, cols, epsilon);
    }

    /// <summary><c>aten::layer_norm</c> over the last dim (biased variance).</summary>
    /// <param name="x">Input [rows, cols].</param>
    /// <param name="weight">[cols], or an empty view for none.</param>
    /// <param name="bias">[cols], or an empty view for none.</param>
    /// <param name="y">Output [rows, cols] (may be <paramref name="x"/>).</param>
    /// <param name="cols">Row length.</param>
    /// <param name="epsilon">Added to the variance.</param>
    public void LayerNorm(ArrayView<float> x, ArrayView<float> weight, ArrayView<float> bias, ArrayView<float> y, int cols, float epsilon)
    {
        int rows = CheckRows(x, cols, nameof(x));
        if (weight.Length != 0)
        {
            CheckLength(weight, cols, nameof(weight));
        }

        if (bias.Length != 0)
        {
            CheckLength(bias, cols, nameof(bias));
        }

        CheckLength(y, x.Length, nameof(y));
        if (rows == 0 || TryLayerNormVectorF32(x, weight, bias, y, rows, cols, epsilon))
        {
            return;
        }

        if (RegisterRows(rows, cols) is { } reg)
        {
            device.Load(ref layerNormRegF32, "Reg" + nameof(RowRegisterKernels.LayerNormF32),
                acc => acc.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, float, int, int>(RowRegisterKernels.LayerNormF32, RowBounds))(
                reg, x, weight, bias, y, cols, epsilon, weight.Length != 0 ? 1 : 0, bias.Length != 0 ? 1 : 0);
            return;
        }

        if (WideRows(rows, cols, RowWideKernels.NormPerThread) is { } wide)
        {
            device.Load(ref layerNormWideF32, nameof(RowWideKernels.LayerNormWideF32),
                acc => acc.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, float, int, int>(
                    RowWideKernels.LayerNormWideF32, RowBounds))(
                wide, x, weight, bias, y, cols, epsilon, weight.Length != 0 ? 1 : 0, bias.Length != 0 ? 1 : 0);
            return;
        }

        device.Load(ref layerNormF32, nameof(RowKernels.LayerNormF32),
            acc => acc.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, float, int, int>(RowKernels.LayerNormF32))(
            Rows(rows, cols), x, weight, bias, y, cols, epsilon, weight.Length != 0 ? 1 : 0, bias.Length != 0 ? 1 : 0);
    }

    /// <summary>Softmax over the last dim.</summary>
    /// <param name="x">Input [rows, cols].</param>
    /// <param name="y">Output [rows, cols] (may be <paramref name="x"/>).</param>
    /// <param name="cols">Row length.</param>
    public void Softmax(ArrayView<float> x, ArrayView<float> y, int cols) => SoftmaxCore(x, y, cols, 0);

    /// <summary>Log-softmax over the last dim.</summary>
    /// <param name="x">Input [rows, cols].</param>
    /// <param name="y">Output [rows, cols] (may be <paramref name="x"/>).</param>
    /// <param name="cols">Row length.</param>
    public void LogSoftmax(ArrayView<float> x, ArrayView<float> y, int cols) => SoftmaxCore(x, y, cols, 1);

    private void SoftmaxCore(ArrayView<float> x, ArrayView<float> y, int cols, int log)
    {
        int rows = CheckRows(x, cols, nameof(x));
        CheckLength(y, x.Length, nameof(y));
        if (rows == 0)
        {
            return;
        }

        if (RegisterRows(rows, cols) is { } reg)
        {
            device.Load(ref softmaxRegF32, "Reg" + nameof(RowRegisterKernels.SoftmaxF32),
                acc => acc.LoadStreamKernel<ArrayView<float>, ArrayView<float>, int, int>(RowRegisterKernels.SoftmaxF32, RowBounds))(
                reg, x, y, cols, log);
            return;
        }

        // Longer rows (a 32000-word vocabulary): held in registers up to 32768 floats when aligned, else streamed
        // (16-byte loads, the second pass from L2).
        if (TrySoftmaxRowF32(x, y, rows, cols, log) || TrySoftmaxStreamF32(x, y, rows, cols, log))
        {
            return;
        }

        device.Load(ref softmaxF32, nameof(RowKernels.SoftmaxF32), acc => acc.LoadStreamKernel<ArrayView<float>, ArrayView<float>, int, int>(RowKernels.SoftmaxF32))(
            Rows(rows, cols), x, y, cols, log);
    }

    /// <summary>Sum over the last dim: output[rows].</summary>
    /// <param name="x">Input [rows, cols].</param>
    /// <param name="output">[rows].</param>
    /// <param name="cols">Row length.</param>
    public void Sum(ArrayView<float> x, ArrayView<float> output, int cols) => SumCore(x, output, cols, 0);

    /// <summary>Mean over the last dim: output[rows].</summary>
    /// <param name="x">Input [rows, cols].</param>
    /// <param name="output">[rows].</param>
    /// <param name="cols">Row length.</param>
    public void Mean(ArrayView<float> x, ArrayView<float> output, int cols) => SumCore(x, output, cols, 1);

    private void SumCore(ArrayView<float> x, ArrayView<float> output, int cols, int mean)
    {
        int rows = CheckRows(x, cols, nameof(x));
        CheckLength(output, rows, nameof(output));
        if (rows == 0)
        {
            return;
        }

        ReduceRowsCore(x, output.Cast<ushort>(), rows, cols, ReductionKernels.Float32Format, max: false, mean);
    }

    /// <summary><c>aten::amax</c> over the last dim (NaN propagates): output[rows].</summary>
    /// <param name="x">Input [rows, cols].</param>
    /// <param name="output">[rows].</param>
    /// <param name="cols">Row length.</param>
    public void Amax(ArrayView<float> x, ArrayView<float> output, int cols)
    {
        int rows = CheckRows(x, cols, nameof(x));
        CheckLength(output, rows, nameof(output));
        if (rows == 0)
        {
            return;
        }

        ReduceRowsCore(x, output.Cast<ushort>(), rows, cols, ReductionKernels.Float32Format, max: true, mean: 0);
    }

    /// <summary><c>aten::argmax</c> over the last dim: first index of the maximum (a NaN counts as the maximum).</summary>
    /// <param name="x">Input [rows, cols].</param>
    /// <param name="output">[rows] int64 indices.</param>
    /// <param name="cols">Row length.</param>
    public void Argmax(ArrayView<float> x, ArrayView<long> output, int cols)
    {
        int rows = CheckRows(x, cols, nameof(x));
        CheckLength(output, rows, nameof(output));
        if (rows == 0)
        {
            return;
        }

        ArgmaxRowsCore(x, output, rows, cols, ReductionKernels.Float32Format);
    }

    /// <summary><c>aten::topk</c> over the last dim (largest, sorted; ties by lower index; NaN largest), for small k.</summary>
    /// <param name="x">Input [rows, cols].</param>
    /// <param name="values">[rows, k].</param>
    /// <param name="indices">[rows, k] int64.</param>
    /// <param name="cols">Row length.</param>
    /// <param name="k">How many, 0 ≤ k ≤ cols (radix selection up to k = 1024, beyond that one pass over the row per k).</param>
    public void TopK(ArrayView<float> x, ArrayView<float> values, ArrayView<long> indices, int cols, int k)
    {
        int rows = CheckRows(x, cols, nameof(x));
        if (k < 0 || k > cols)
        {
            throw new ArgumentOutOfRangeException(nameof(k), k, $"k must be in [0, {cols}].");
        }

        CheckLength(values, (long)rows * k, nameof(values));
        CheckLength(indices, (long)rows * k, nameof(indices));
        if (rows == 0 || k == 0 || (!IsShortTopK(cols, k) && TryTopKRadix(x.Cast<uint>(), ArrayView<ushort>.Empty, values.Cast<uint>(), ArrayView<ushort>.Empty, indices, rows, cols, k, ReductionKernels.Float32Format)))
        {
            return;
        }

        TopKRoundsF32(x, values, indices, rows, cols, k);
    }

    /// <summary>topk of each row on the k-round kernel (<see cref="RowKernels.TopKF32"/>).</summary>
    private void TopKRoundsF32(ArrayView<float> x, ArrayView<float> values, ArrayView<long> indices, int rows, int cols, int k) =>
        device.Load(ref topkF32, nameof(RowKernels.TopKF32), acc => acc.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<long>, int, int>(RowKernels.TopKF32))(
            Rows(rows, cols), x, values, indices, cols, k);
}
