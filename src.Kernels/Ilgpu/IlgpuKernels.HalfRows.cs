using System;
using ILGPU;
using ILGPU.Runtime;

namespace GemsInjector.Kernels.Ilgpu;

public sealed partial class IlgpuKernels
{
    private Action<KernelConfig, ArrayView<ushort>, ArrayView<ushort>, ArrayView<long>, int, int, int>? topk16;

    /// <summary>16-bit sum over the last dim (float32 accumulation, one rounding): output[rows].</summary>
    /// <param name="x">Input [rows, cols].</param>
    /// <param name="output">[rows], same format.</param>
    /// <param name="cols">Row length.</param>
    /// <param name="format">Storage format.</param>
    public void Sum(ArrayView<ushort> x, ArrayView<ushort> output, int cols, HalfFormat format) => Sum16Core(x, output, cols, 0, format);

    /// <summary>16-bit mean over the last dim (float32 accumulation, one rounding): output[rows].</summary>
    /// <param name="x">Input [rows, cols].</param>
    /// <param name="output">[rows], same format.</param>
    /// <param name="cols">Row length.</param>
    /// <param name="format">Storage format.</param>
    public void Mean(ArrayView<ushort> x, ArrayView<ushort> output, int cols, HalfFormat format) => Sum16Core(x, output, cols, 1, format);

    private void Sum16Core(ArrayView<ushort> x, ArrayView<ushort> output, int cols, int mean, HalfFormat format)
    {
        int rows = CheckRows(x, cols, nameof(x));
        CheckLength(output, rows, nameof(output));
        if (rows == 0)
        {
            return;
        }

        ReduceRowsCore(x, output, rows, cols, Bf(format), max: false, mean);
    }

    /// <summary>16-bit <c>aten::amax</c> over the last dim (NaN propagates): output[rows].</summary>
    /// <param name="x">Input [rows, cols].</param>
    /// <param name="output">[rows], same format.</param>
    /// <param name="cols">Row length.</param>
    /// <param name="format">Storage format.</param>
    public void Amax(ArrayView<ushort> x, ArrayView<ushort> output, int cols, HalfFormat format)
    {
        int rows = CheckRows(x, cols, nameof(x));
        CheckLength(output, rows, nameof(output));
        if (rows == 0)
        {
            return;
        }

        ReduceRowsCore(x, output, rows, cols, Bf(format), max: true, mean: 0);
    }

    /// <summary>16-bit <c>aten::argmax</c> over the last dim: first index of the maximum (a NaN counts as the maximum).</summary>
    /// <param name="x">Input [rows, cols].</param>
    /// <param name="output">[rows] int64 indices.</param>
    /// <param name="cols">Row length.</param>
    /// <param name="format">Storage format.</param>
    public void Argmax(ArrayView<ushort> x, ArrayView<long> output, int cols, HalfFormat format)
    {
        int rows = CheckRows(x, cols, nameof(x));
        CheckLength(output, rows, nameof(output));
        if (rows == 0)
        {
            return;
        }

        ArgmaxRowsCore(x, output, rows, cols, Bf(format));
    }

    /// <summary>16-bit <c>aten::topk</c> over the last dim (largest, sorted; ties by lower index; NaN largest), for small k.</summary>
    /// <param name="x">Input [rows, cols].</param>
    /// <param name="values">[rows, k], same format.</param>
    /// <param name="indices">[rows, k] int64.</param>
    /// <param name="cols">Row length.</param>
    /// <param name="k">How many, 0 ≤ k ≤ cols (radix selection up to k = 1024, beyond that one pass over the row per k).</param>
    /// <param name="format">Storage format.</param>
    public void TopK(ArrayView<ushort> x, ArrayView<ushort> values, ArrayView<long> indices, int cols, int k, HalfFormat format)
    {
        int rows = CheckRows(x, cols, nameof(x));
        if (k < 0 || k > cols)
        {
            throw new ArgumentOutOfRangeException(nameof(k), k, $"k must be in [0, {cols}].");
        }

        CheckLength(values, (long)rows * k, nameof(values));
        CheckLength(indices, (long)rows * k, nameof(indices));
        if (rows == 0 || k == 0 || (!IsShortTopK(cols, k) && TryTopKRadix(ArrayView<uint>.Empty, x, ArrayView<uint>.Empty, values, indices, rows, cols, k, Bf(format))))
        {
            return;
        }

        TopKRounds16(x, values, indices, rows, cols, k, Bf(format));
    }

    /// <summary>topk of each 16-bit row on the k-round kernel (<see cref="HalfRowKernels.TopK16"/>); <paramref name="bf16"/> 1 for bfloat16.</summary>
    private void TopKRounds16(ArrayView<ushort> x, ArrayView<ushort> values, ArrayView<long> indices, int rows, int cols, int k, int bf16) =>
        device.Load(ref topk16, nameof(HalfRowKernels.TopK16), acc => acc.LoadStreamKernel<ArrayView<ushort>, ArrayView<ushort>, ArrayView<long>, int, int, int>(HalfRowKernels.TopK16))(
            Rows(rows, cols), x, values, indices, cols, k, bf16);
}
