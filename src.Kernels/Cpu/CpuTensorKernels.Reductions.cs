using System;
using GemsInjector.Kernels.Numerics;
using TorchSharp;

namespace GemsInjector.Kernels.Cpu;

/// <summary>Reductions (<c>sum</c>, <c>mean</c>, <c>amax</c>, <c>argmax</c>), <c>topk</c> and <c>embedding</c>.</summary>
public static unsafe partial class CpuTensorKernels
{
    private const string SumName = "aten::sum.dim_IntList";
    private const string MeanName = "aten::mean.dim";
    private const string AmaxName = "aten::amax";
    private const string ArgmaxName = "aten::argmax";
    private const string TopKName = "aten::topk";
    private const string EmbeddingName = "aten::embedding";
    private const int SlotReductionOutput = 5;
    private const long ReductionParallelElements = 1 << 18;

    private enum ReductionOp
    {
        Sum,
        Mean,
        Amax,
        Argmax,
    }

    /// <summary>
    /// <c>aten::sum</c> over dimension <paramref name="dim"/>, or over all elements when it is null. Accumulates in float32
    /// vector lanes over runs of 1024 elements and in float64 across runs; the result is rounded once to the input's dtype.
    /// float16 and bfloat16 inputs are first widened to a float32 copy (documented extra allocation).
    /// </summary>
    /// <param name="input">A float32, float16 or bfloat16 CPU tensor (any strides; non-contiguous input is copied).</param>
    /// <param name="dim">The dimension to reduce (negative counts from the end), or null for all.</param>
    /// <param name="keepdim">Keep the reduced dimension (all dimensions when <paramref name="dim"/> is null) with size 1.</param>
    /// <returns>A new tensor of the input's dtype.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="input"/> is null.</exception>
    /// <exception cref="ArgumentException">Not a CPU tensor of a supported dtype.</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="dim"/> is out of range.</exception>
    public static torch.Tensor Sum(torch.Tensor input, long? dim, bool keepdim) => Reduce(SumName, input, dim, keepdim, ReductionOp.Sum);

    /// <summary><c>aten::mean</c>: <see cref="Sum"/> divided (in float64) by the reduced length; an empty reduction gives NaN, as PyTorch.</summary>
    /// <param name="input">A float32, float16 or bfloat16 CPU tensor.</param>
    /// <param name="dim">The dimension to reduce, or null for all.</param>
    /// <param name="keepdim">Keep the reduced dimension(s) with size 1.</param>
    /// <returns>A new tensor of the input's dtype.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="input"/> is null.</exception>
    /// <exception cref="ArgumentException">Not a CPU tensor of a supported dtype.</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="dim"/> is out of range.</exception>
    public static torch.Tensor Mean(torch.Tensor input, long? dim, bool keepdim) => Reduce(MeanName, input, dim, keepdim, ReductionOp.Mean);

    /// <summary><c>aten::amax</c>: the maximum; NaN if the reduced elements hold a NaN (as PyTorch). An empty reduction is an error.</summary>
    /// <param name="input">A float32, float16 or bfloat16 CPU tensor.</param>
    /// <param name="dim">The dimension to reduce, or null for all.</param>
    /// <param name="keepdim">Keep the reduced dimension(s) with size 1.</param>
    /// <returns>A new tensor of the input's dtype.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="input"/> is null.</exception>
    /// <exception cref="ArgumentException">Not a CPU tensor of a supported dtype, or the reduced dimension is empty.</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="dim"/> is out of range.</exception>
    public static torch.Tensor Amax(torch.Tensor input, long? dim, bool keepdim) => Reduce(AmaxName, input, dim, keepdim, ReductionOp.Amax);

    /// <summary>
    /// <c>aten::argmax</c>: the int64 index of the maximum along <paramref name="dim"/> (of the flattened input when null). The
    /// first maximum wins ties and NaN counts as the maximum (the first NaN wins), as in PyTorch. An empty reduction is an error.
    /// </summary>
    /// <param name="input">A float32, float16 or bfloat16 CPU tensor.</param>
    /// <param name="dim">The dimension to reduce, or null for the flattened input.</param>
    /// <param name="keepdim">Keep the reduced dimension(s) with size 1.</param>
    /// <returns>A new int64 tensor.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="input"/> is null.</exception>
    /// <exception cref="ArgumentException">Not a CPU tensor of a supported dtype, or the reduced dimension is empty.</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="dim"/> is out of range.</exception>
    public static torch.Tensor Argmax(torch.Tensor input, long? dim, bool keepdim) => Reduce(ArgmaxName, input, dim, keepdim, ReductionOp.Argmax);

    /// <summary>
    /// <c>aten::topk(Tensor self, int k, int dim=-1, bool largest=True, bool sorted=True)</c>: the <paramref name="k"/> largest
    /// (or smallest) values along <paramref name="dim"/>, sorted, and their int64 indices. NaN counts as larger than every number
    /// (as PyTorch); equal values are listed lower index first. Selection keeps a heap of k keys (full sort when k is large).
    /// </summary>
    /// <param name="input">A float32, float16 or bfloat16 CPU tensor.</param>
    /// <param name="k">How many elements to return; 0 to the size of <paramref name="dim"/>.</param>
    /// <param name="dim">The dimension to select along (negative counts from the end).</param>
    /// <param name="largest">True for the largest values (descending), false for the smallest (ascending).</param>
    /// <returns>The values (input dtype) and indices (int64), of the input's shape with <paramref name="dim"/> of size k.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="input"/> is null.</exception>
    /// <exception cref="ArgumentException">Not a CPU tensor of a supported dtype.</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="k"/> is negative or larger than the dimension, or <paramref name="dim"/> is out of range.</exception>
    public static (torch.Tensor Values, torch.Tensor Indices) TopK(torch.Tensor input, long k, long dim, bool largest)
    {
        KernelDType kind = KernelArguments.Floating(TopKName, input, nameof(input));
        long[] shape = KernelArguments.Shape(input);
        int d = KernelArguments.Dimension(TopKName, dim, shape.Length, shape, nameof(dim));
        long length = shape.Length == 0 ? 1 : shape[d];
        if (k < 0 || k > length)
        {
            throw new ArgumentOutOfRangeException(
                nameof(k), k,
                $"{TopKName}: 'k' ({k}) must be between 0 and the size of dimension {dim} ({length}) of 'input' of shape {KernelArguments.Format(shape)}.");
        }

        if (length > int.MaxValue)
        {
            throw new ArgumentException($"{TopKName}: dimension {dim} of 'input' (shape {KernelArguments.Format(shape)}) exceeds {int.MaxValue}.", nameof(input));
        }

        (long outer, long inner) = Split(shape, d);
        long[] outShape = (long[])shape.Clone();
        if (outShape.Length > 0)
        {
            outShape[d] = k;
        }

        torch.Tensor? copy = Float32Contiguous(input, kind);
        try
        {
            float* x = (float*)KernelArguments.Data(copy ?? input);
            torch.Tensor values = torch.empty(outShape, KernelArguments.ScalarType(kind), torch.CPU);
            torch.Tensor indices = torch.empty(outShape, torch.ScalarType.Int64, torch.CPU);
            long lines = outer * inner;
            if (lines == 0 || k == 0)
            {
                return (values, indices);
            }

            float* valueOut = kind == KernelDType.Float32 ? (float*)KernelArguments.Data(values) : KernelScratch.Floats(SlotReductionOutput, lines * k);
            long* indexOut = (long*)KernelArguments.Data(indices);
            nint xs = (nint)x, vs = (nint)valueOut, ix = (nint)indexOut;
            int len = (int)length, kk = (int)k;
            void Line(long line)
            {
                long o = line / inner, i = line % inner;
                float* source = (float*)xs + o * length * inner + i;
                ulong* keys = (ulong*)KernelScratch.Floats(0, 2L * Math.Max(len, 1));
                long* found = (long*)KernelScratch.Floats(1, 2L * kk);
                ReductionKernels.TopK(source, len, inner, kk, largest, keys, found);
                for (int j = 0; j < kk; j++)
                {
                    long target = o * k * inner + j * inner + i;
                    ((long*)ix)[target] = found[j];
                    ((float*)vs)[target] = source[found[j] * inner];
                }
            }

            if (lines * length < ReductionParallelElements || lines < 2)
            {
                for (long line = 0; line < lines; line++)
                {
                    Line(line);
                }
            }
            else
            {
                CpuThreadBudget.For(lines, Line);
            }

            NarrowOutput(kind, valueOut, values, lines * k);
            return (values, indices);
        }
        finally
        {
            copy?.Dispose();
        }
    }

    /// <summary>
    /// <c>aten::embedding(Tensor weight, Tensor indices)</c>: out[..., :] = weight[indices[...], :]. Rows are copied in their
    /// dtype (any of float32, float16, bfloat16), in place from <paramref name="weight"/> whatever its strides.
    /// </summary>
    /// <param name="weight">A 2-D CPU tensor [rows, dim] of float32, float16 or bfloat16.</param>
    /// <param name="indices">An int32 or int64 CPU tensor of any shape; every value in [0, rows).</param>
    /// <returns>A new contiguous tensor [..indices shape.., dim] of <paramref name="weight"/>'s dtype.</returns>
    /// <exception cref="ArgumentNullException">An argument is null.</exception>
    /// <exception cref="ArgumentException">An argument is not on the CPU or has an unsupported dtype, <paramref name="weight"/> is not 2-D,
    /// or an index is out of range (the message names the index, its position and the row count).</exception>
    public static torch.Tensor Embedding(torch.Tensor weight, torch.Tensor indices)
    {
        KernelDType kind = KernelArguments.Floating(EmbeddingName, weight, nameof(weight));
        bool wide = KernelArguments.IndexTensor(EmbeddingName, indices, nameof(indices));
        long[] weightShape = MatrixShape(EmbeddingName, weight, nameof(weight), 2);
        long[] indexShape = KernelArguments.Shape(indices);
        long rows = weightShape[0], width = weightShape[1];
        torch.Tensor? indexCopy = indices.is_contiguous() ? null : indices.contiguous();
        try
        {
            long count = indices.numel();
            void* index = KernelArguments.Data(indexCopy ?? indices);
            for (long t = 0; t < count; t++)
            {
                long row = wide ? ((long*)index)[t] : ((int*)index)[t];
                if ((ulong)row >= (ulong)rows)
                {
                    throw new ArgumentException(
                        $"{EmbeddingName}: index {row} at position {t} of 'indices' (shape {KernelArguments.Format(indexShape)}) is out of range " +
                        $"for 'weight' with {rows} rows (shape {KernelArguments.Format(weightShape)}); indices must be in [0, {rows}).",
                        nameof(indices));
                }
            }

            var outShape = new long[indexShape.Length + 1];
            indexShape.CopyTo(outShape, 0);
            outShape[^1] = width;
            torch.Tensor result = torch.empty(outShape, KernelArguments.ScalarType(kind), torch.CPU);
            if (count == 0 || width == 0)
            {
                return result;
            }

            long[] strides = KernelArguments.Strides(weight, 2);
            int size = kind == KernelDType.Float32 ? 4 : 2;
            byte* source = (byte*)KernelArguments.Data(weight);
            byte* target = (byte*)KernelArguments.Data(result);
            nint s = (nint)source, dst = (nint)target, ix = (nint)index;
            long rowStride = strides[0], colStride = strides[1];
            void Copy(long t)
            {
                long row = wide ? ((long*)ix)[t] : ((int*)ix)[t];
                byte* from = (byte*)s + row * rowStride * size;
                byte* to = (byte*)dst + t * width * size;
                if (colStride == 1)
                {
                    Buffer.MemoryCopy(from, to, width * size, width * size);
                }
                else if (size == 4)
                {
                    for (long j = 0; j < width; j++)
                    {
                        ((float*)to)[j] = ((float*)from)[j * colStride];
                    }
                }
                else
                {
                    for (long j = 0; j < width; j++)
                    {
                        ((ushort*)to)[j] = ((ushort*)from)[j * colStride];
                    }
                }
            }

            if (count * width < ReductionParallelElements || count < 2)
            {
                for (long t = 0; t < count; t++)
                {
                    Copy(t);
                }
            }
            else
            {
                CpuThreadBudget.For(count, Copy);
            }

            GC.KeepAlive(weight);
            return result;
        }
        finally
        {
            indexCopy?.Dispose();
        }
    }

    private static torch.Tensor Reduce(string name, torch.Tensor input, long? dim, bool keepdim, ReductionOp op)
    {
        KernelDType kind = KernelArguments.Floating(name, input, nameof(input));
        long[] shape = KernelArguments.Shape(input);
        long outer, length, inner;
        long[] outShape;
        if (dim is null)
        {
            outer = 1;
            inner = 1;
            length = 1;
            foreach (long size in shape)
            {
                length *= size;
            }

            outShape = keepdim ? Ones(shape.Length) : Array.Empty<long>();
        }
        else
        {
            int d = KernelArguments.Dimension(name, dim.Value, shape.Length, shape, nameof(dim));
            length = shape.Length == 0 ? 1 : shape[d];
            (outer, inner) = Split(shape, d);
            if (shape.Length == 0)
            {
                outShape = Array.Empty<long>();
            }
            else if (keepdim)
            {
                outShape = (long[])shape.Clone();
                outShape[d] = 1;
            }
            else
            {
                outShape = new long[shape.Length - 1];
                for (int i = 0, j = 0; i < shape.Length; i++)
                {
                    if (i != d)
                    {
                        outShape[j++] = shape[i];
                    }
                }
            }
        }

        long count = outer * inner;
        if (length == 0 && count > 0 && op is ReductionOp.Amax or ReductionOp.Argmax)
        {
            throw new ArgumentException(
                $"{name}: cannot reduce an empty dimension of 'input' (shape {KernelArguments.Format(shape)}, dim {(dim?.ToString() ?? "None")}): " +
                "the maximum of no elements is undefined.",
                nameof(input));
        }

        torch.Tensor? copy = Float32Contiguous(input, kind);
        try
        {
            float* x = (float*)KernelArguments.Data(copy ?? input);
            torch.Tensor result = torch.empty(outShape, op == ReductionOp.Argmax ? torch.ScalarType.Int64 : KernelArguments.ScalarType(kind), torch.CPU);
            if (count == 0)
            {
                return result;
            }

            void* output = KernelArguments.Data(result);
            float* values = op == ReductionOp.Argmax || kind == KernelDType.Float32 ? (float*)output : KernelScratch.Floats(SlotReductionOutput, count);
            if (outer == 1 && inner == 1)
            {
                ReduceAll(op, x, length, values, (long*)output);
            }
            else
            {
                ReduceLines(op, x, outer, length, inner, values, (long*)output);
            }

            if (op != ReductionOp.Argmax)
            {
                NarrowOutput(kind, values, result, count);
            }

            return result;
        }
        finally
        {
            copy?.Dispose();
        }
    }

    /// <summary>One reduction of <paramref name="length"/> contiguous elements, split into chunks over threads when large.</summary>
    private static void ReduceAll(ReductionOp op, float* x, long length, float* value, long* index)
    {
        int threads = length < ReductionParallelElements ? 1 : CpuThreadBudget.MaxThreads;
        long chunk = (length + threads - 1) / threads;
        chunk = Math.Max(1024, (chunk + 1023) / 1024 * 1024);
        threads = (int)Math.Max(1, (length + chunk - 1) / chunk);
        var partialSum = new double[threads];
        var partialIndex = new long[threads];
        nint xs = (nint)x;
        void Part(int t)
        {
            float* start = (float*)xs + t * chunk;
            long n = Math.Min(chunk, length - t * chunk);
            if (op is ReductionOp.Sum or ReductionOp.Mean)
            {
                partialSum[t] = ReductionKernels.SumContiguous(start, n);
            }
            else
            {
                partialIndex[t] = t * chunk + ReductionKernels.ArgMax(start, n, 1);
            }
        }

        if (threads == 1)
        {
            Part(0);
        }
        else
        {
            CpuThreadBudget.For(threads, Part);
        }

        if (op is ReductionOp.Sum or ReductionOp.Mean)
        {
            double total = 0;
            foreach (double part in partialSum)
            {
                total += part;
            }

            *value = (float)(op == ReductionOp.Mean ? total / length : total);
            return;
        }

        long best = partialIndex[0];
        for (int t = 1; t < threads; t++)
        {
            float current = x[best], candidate = x[partialIndex[t]];
            if (!float.IsNaN(current) && (float.IsNaN(candidate) || candidate > current))
            {
                best = partialIndex[t];
            }
        }

        if (op == ReductionOp.Argmax)
        {
            *index = best;
        }
        else
        {
            *value = x[best];
        }
    }

    private static void ReduceLines(ReductionOp op, float* x, long outer, long length, long inner, float* values, long* indices)
    {
        nint xs = (nint)x, vs = (nint)values, ix = (nint)indices;
        void Outer(long o)
        {
            float* block = (float*)xs + o * length * inner;
            if (inner > 1 && op is ReductionOp.Sum or ReductionOp.Mean)
            {
                double* wide = (double*)KernelScratch.Floats(0, 2 * inner);
                float* partial = KernelScratch.Floats(1, inner);
                ReductionKernels.SumStrided(block, length, inner, wide, partial);
                for (long i = 0; i < inner; i++)
                {
                    ((float*)vs)[o * inner + i] = (float)(op == ReductionOp.Mean ? wide[i] / length : wide[i]);
                }

                return;
            }

            for (long i = 0; i < inner; i++)
            {
                float* line = block + i;
                long target = o * inner + i;
                switch (op)
                {
                    case ReductionOp.Sum:
                        ((float*)vs)[target] = (float)ReductionKernels.SumContiguous(line, length);
                        break;
                    case ReductionOp.Mean:
                        ((float*)vs)[target] = (float)(ReductionKernels.SumContiguous(line, length) / length);
                        break;
                    case ReductionOp.Amax:
                        ((float*)vs)[target] = ReductionKernels.Max(line, length, inner);
                        break;
                    default:
                        ((long*)ix)[target] = ReductionKernels.ArgMax(line, length, inner);
                        break;
                }
            }
        }

        if (outer * length * inner < ReductionParallelElements || outer < 2)
        {
            for (long o = 0; o < outer; o++)
            {
                Outer(o);
            }
        }
        else
        {
            CpuThreadBudget.For(outer, Outer);
        }
    }

    /// <summary>null for a contiguous float32 tensor (read in place); else a contiguous float32 copy the caller disposes.</summary>
    private static torch.Tensor? Float32Contiguous(torch.Tensor input, KernelDType kind)
    {
        if (kind == KernelDType.Float32)
        {
            return input.is_contiguous() ? null : input.contiguous();
        }

        using torch.Tensor wide = input.to(torch.ScalarType.Float32);
        return wide.contiguous();
    }

    private static void NarrowOutput(KernelDType kind, float* values, torch.Tensor result, long count)
    {
        switch (kind)
        {
            case KernelDType.Float16:
                NarrowInto<Float16Lanes>(values, KernelArguments.Data(result), count);
                break;
            case KernelDType.BFloat16:
                NarrowInto<BFloat16Lanes>(values, KernelArguments.Data(result), count);
                break;
        }
    }

    private static (long Outer, long Inner) Split(long[] shape, int d)
    {
        long outer = 1, inner = 1;
        for (int i = 0; i < shape.Length; i++)
        {
            if (i < d)
            {
                outer *= shape[i];
            }
            else if (i > d)
            {
                inner *= shape[i];
            }
        }

        return (outer, inner);
    }

    private static long[] Ones(int rank)
    {
        var shape = new long[rank];
        Array.Fill(shape, 1L);
        return shape;
    }
}
