using System;
using GemsInjector.Kernels.Cpu;
using GemsInjector.Kernels.Ilgpu;
using GemsInjector.Kernels.Tensors;
using ILGPU;
using TorchSharp;

namespace GemsInjector.Kernels.Staging;

/// <summary>Row operators over the last dimension: softmax, norms, rotary, embedding, reductions, topk.</summary>
public sealed unsafe partial class IlgpuTensorKernels
{
    /// <summary>The largest k that goes to the device's topk (one pass over the row per k); larger k goes to the CPU kernel.</summary>
    public const int MaxDeviceTopK = 64;

    private enum RowReduction
    {
        Sum,
        Mean,
        Amax,
        Argmax,
    }

    /// <summary><c>aten::softmax.int</c>: over the last dimension on the device (float32, 16-bit); another dimension goes to the CPU kernel.</summary>
    /// <param name="input">A float32, float16 or bfloat16 CPU tensor.</param>
    /// <param name="dim">The dimension to normalize; negative counts from the end.</param>
    /// <returns>A new contiguous CPU tensor.</returns>
    public torch.Tensor Softmax(torch.Tensor input, long dim) => SoftmaxRows(input, dim, log: false) ?? CpuTensorKernels.Softmax(input, dim);

    /// <summary><c>aten::log_softmax.int</c>: over the last dimension on the device; another dimension goes to the CPU kernel.</summary>
    /// <param name="input">A float32, float16 or bfloat16 CPU tensor.</param>
    /// <param name="dim">The dimension to normalize; negative counts from the end.</param>
    /// <returns>A new contiguous CPU tensor.</returns>
    public torch.Tensor LogSoftmax(torch.Tensor input, long dim) => SoftmaxRows(input, dim, log: true) ?? CpuTensorKernels.LogSoftmax(input, dim);

    /// <summary><c>aten::rms_norm</c> over the last dimension with a weight.</summary>
    /// <param name="input">A float32, float16 or bfloat16 CPU tensor [..., n].</param>
    /// <param name="weight">A 1-D CPU tensor [n] of the same dtype.</param>
    /// <param name="epsilon">Added to the mean of squares.</param>
    /// <returns>A new contiguous CPU tensor.</returns>
    public torch.Tensor RmsNorm(torch.Tensor input, torch.Tensor weight, double epsilon)
    {
        if (weight is null || !NormShape(input, weight, null, out var dtype, out long[] shape, out int cols))
        {
            return CpuTensorKernels.RmsNorm(input, weight!, epsilon);
        }

        if (Is16(dtype))
        {
            return Launch(shape, dtype, (s, k) =>
            {
                ArrayView<ushort> x = s.Upload<ushort>(input), w = s.Upload<ushort>(weight), y = s.Allocate<ushort>(x.Length);
                k.RmsNorm(x, w, y, cols, (float)epsilon, Format(dtype));
                return y;
            });
        }

        return Launch(shape, dtype, (s, k) =>
        {
            ArrayView<float> x = s.Upload<float>(input), w = s.Upload<float>(weight), y = s.Allocate<float>(x.Length);
            k.RmsNorm(x, w, y, cols, (float)epsilon);
            return y;
        });
    }

    /// <summary>
    /// vLLM's <c>_C::fused_add_rms_norm</c>, in place: residual ← input + residual, input ← rms_norm(residual) * weight. Both results
    /// are copied back into the callers' tensors.
    /// </summary>
    /// <param name="input">A contiguous float32, float16 or bfloat16 CPU tensor [..., n]; overwritten with the normalized rows.</param>
    /// <param name="residual">A contiguous CPU tensor of <paramref name="input"/>'s shape and dtype; overwritten with the sum.</param>
    /// <param name="weight">A 1-D CPU tensor [n] of the same dtype.</param>
    /// <param name="epsilon">Added to the mean of squares.</param>
    public void FusedAddRmsNorm(torch.Tensor input, torch.Tensor residual, torch.Tensor weight, double epsilon)
    {
        if (weight is null || !NormShape(input, weight, null, out var dtype, out long[] shape, out int cols) || !Same(residual, dtype)
            || !KernelArguments.SameShape(shape, TorchNative.Shape(residual)) || !input.is_contiguous() || !residual.is_contiguous()
            || Overlap(input, residual))
        {
            CpuTensorKernels.FusedAddRmsNorm(input, residual, weight!, epsilon);
            return;
        }

        using var s = Begin();
        var k = Device.Kernels;
        if (Is16(dtype))
        {
            ArrayView<ushort> x = s.Upload<ushort>(input), r = s.Upload<ushort>(residual), w = s.Upload<ushort>(weight);
            k.FusedAddRmsNorm(x, r, w, cols, (float)epsilon, Format(dtype));
            s.Synchronize();
            s.Download(x, input);
            s.Download(r, residual);
        }
        else
        {
            ArrayView<float> x = s.Upload<float>(input), r = s.Upload<float>(residual), w = s.Upload<float>(weight);
            k.FusedAddRmsNorm(x, r, w, cols, (float)epsilon);
            s.Synchronize();
            s.Download(x, input);
            s.Download(r, residual);
        }
    }

    /// <summary><c>aten::layer_norm</c> over the last dimension, with an optional weight and bias.</summary>
    /// <param name="input">A float32, float16 or bfloat16 CPU tensor [..., n].</param>
    /// <param name="weight">Null, or a 1-D CPU tensor [n] of the same dtype.</param>
    /// <param name="bias">Null, or a 1-D CPU tensor [n] of the same dtype.</param>
    /// <param name="epsilon">Added to the variance.</param>
    /// <returns>A new contiguous CPU tensor.</returns>
    public torch.Tensor LayerNorm(torch.Tensor input, torch.Tensor? weight, torch.Tensor? bias, double epsilon)
    {
        if (!NormShape(input, weight, bias, out var dtype, out long[] shape, out int cols))
        {
            return CpuTensorKernels.LayerNorm(input, weight, bias, epsilon);
        }

        if (Is16(dtype))
        {
            return Launch(shape, dtype, (s, k) =>
            {
                ArrayView<ushort> x = s.Upload<ushort>(input), y = s.Allocate<ushort>(x.Length);
                ArrayView<ushort> w = weight is null ? default : s.Upload<ushort>(weight), b = bias is null ? default : s.Upload<ushort>(bias);
                k.LayerNorm(x, w, b, y, cols, (float)epsilon, Format(dtype));
                return y;
            });
        }

        return Launch(shape, dtype, (s, k) =>
        {
            ArrayView<float> x = s.Upload<float>(input), y = s.Allocate<float>(x.Length);
            ArrayView<float> w = weight is null ? default : s.Upload<float>(weight), b = bias is null ? default : s.Upload<float>(bias);
            k.LayerNorm(x, w, b, y, cols, (float)epsilon);
            return y;
        });
    }

    /// <summary>
    /// vLLM's <c>_C::rotary_embedding</c>, in place on query (and key): neox or interleaved, rotDim = the cache's columns. The rotated
    /// tensors are copied back into the callers' tensors. int32 positions are widened on the host.
    /// </summary>
    /// <param name="positions">int64 or int32 CPU tensor with one position per token.</param>
    /// <param name="query">Contiguous CPU tensor [tokens, heads * headSize] or [tokens, heads, headSize].</param>
    /// <param name="key">Optional contiguous tensor of the same layout and dtype.</param>
    /// <param name="headSize">The size of one head.</param>
    /// <param name="cosSinCache">CPU tensor [maxPosition, rotDim] of the query's dtype.</param>
    /// <param name="isNeox">True for neox style, false for GPT-J (interleaved).</param>
    public void RotaryEmbedding(torch.Tensor positions, torch.Tensor query, torch.Tensor? key, long headSize, torch.Tensor cosSinCache, bool isNeox)
    {
        if (!RotaryFits(positions, query, key, headSize, cosSinCache, out var dtype, out int rotaryDim))
        {
            CpuTensorKernels.RotaryEmbedding(positions, query, key, headSize, cosSinCache, isNeox);
            return;
        }

        torch.Tensor? widened = positions.dtype == torch.ScalarType.Int64 ? null : positions.to(torch.ScalarType.Int64);
        try
        {
            using var s = Begin();
            var k = Device.Kernels;
            ArrayView<long> p = s.Upload<long>(widened ?? positions);
            if (Is16(dtype))
            {
                ArrayView<ushort> q = s.Upload<ushort>(query), kk = key is null ? default : s.Upload<ushort>(key), c = s.Upload<ushort>(cosSinCache);
                k.RotaryEmbedding(p, q, kk, c, (int)headSize, rotaryDim, isNeox, Format(dtype));
                s.Synchronize();
                s.Download(q, query);
                if (key is not null)
                {
                    s.Download(kk, key);
                }
            }
            else
            {
                ArrayView<float> q = s.Upload<float>(query), kk = key is null ? default : s.Upload<float>(key), c = s.Upload<float>(cosSinCache);
                k.RotaryEmbedding(p, q, kk, c, (int)headSize, rotaryDim, isNeox);
                s.Synchronize();
                s.Download(q, query);
                if (key is not null)
                {
                    s.Download(kk, key);
                }
            }
        }
        finally
        {
            widened?.Dispose();
        }
    }

    /// <summary><c>aten::embedding</c>: float32, float16 and bfloat16 tables on the device (int32 indices widened on the host).</summary>
    /// <param name="weight">A 2-D CPU tensor [rows, dim].</param>
    /// <param name="indices">An int32 or int64 CPU tensor of any shape; every value in [0, rows).</param>
    /// <returns>A new contiguous tensor [..indices shape.., dim].</returns>
    public torch.Tensor Embedding(torch.Tensor weight, torch.Tensor indices)
    {
        if (!Floating(weight, out var dtype) || indices is null || indices.device_type != DeviceType.CPU
            || indices.dtype is not (torch.ScalarType.Int64 or torch.ScalarType.Int32))
        {
            return CpuTensorKernels.Embedding(weight, indices!);
        }

        long[] weightShape = TorchNative.Shape(weight);
        long[] indexShape = TorchNative.Shape(indices);
        long count = Count(indexShape);
        if (weightShape.Length != 2 || !Launchable(weightShape[0] * weightShape[1]) || !Launchable(count * weightShape[1])
            || !InRange(indices, weightShape[0]))
        {
            return CpuTensorKernels.Embedding(weight, indices);
        }

        var outShape = new long[indexShape.Length + 1];
        indexShape.CopyTo(outShape, 0);
        outShape[^1] = weightShape[1];
        torch.Tensor? widened = indices.dtype == torch.ScalarType.Int64 ? null : indices.to(torch.ScalarType.Int64);
        try
        {
            if (Is16(dtype))
            {
                return Launch(outShape, dtype, (s, _) =>
                {
                    ArrayView<ushort> w = s.Upload<ushort>(weight), y = s.Allocate<ushort>(count * weightShape[1]);
                    ArrayView<long> ix = s.Upload<long>(widened ?? indices);
                    Device.Kernels.Embedding(w, ix, y, (int)weightShape[1], Format(dtype));
                    return y;
                });
            }

            return Launch(outShape, torch.ScalarType.Float32, (s, _) =>
            {
                ArrayView<float> w = s.Upload<float>(weight), y = s.Allocate<float>(count * weightShape[1]);
                ArrayView<long> ix = s.Upload<long>(widened ?? indices);
                Device.Kernels.Embedding(w, ix, y, (int)weightShape[1]);
                return y;
            });
        }
        finally
        {
            widened?.Dispose();
        }
    }

    /// <summary><c>aten::sum</c> over the last dimension or all elements (float32, float16, bfloat16 on the device; another dimension goes to the CPU kernel).</summary>
    /// <param name="input">A float32, float16 or bfloat16 CPU tensor.</param>
    /// <param name="dim">The dimension to reduce, or null for all.</param>
    /// <param name="keepdim">Keep the reduced dimension(s) with size 1.</param>
    /// <returns>A new tensor of the input's dtype.</returns>
    public torch.Tensor Sum(torch.Tensor input, long? dim, bool keepdim) =>
        Reduce(input, dim, keepdim, RowReduction.Sum) ?? CpuTensorKernels.Sum(input, dim, keepdim);

    /// <summary><c>aten::mean</c> over the last dimension or all elements (float32, float16, bfloat16 on the device; another dimension goes to the CPU kernel).</summary>
    /// <param name="input">A float32, float16 or bfloat16 CPU tensor.</param>
    /// <param name="dim">The dimension to reduce, or null for all.</param>
    /// <param name="keepdim">Keep the reduced dimension(s) with size 1.</param>
    /// <returns>A new tensor of the input's dtype.</returns>
    public torch.Tensor Mean(torch.Tensor input, long? dim, bool keepdim) =>
        Reduce(input, dim, keepdim, RowReduction.Mean) ?? CpuTensorKernels.Mean(input, dim, keepdim);

    /// <summary><c>aten::amax</c> over the last dimension or all elements (float32, float16, bfloat16 on the device; another dimension goes to the CPU kernel).</summary>
    /// <param name="input">A float32, float16 or bfloat16 CPU tensor.</param>
    /// <param name="dim">The dimension to reduce, or null for all.</param>
    /// <param name="keepdim">Keep the reduced dimension(s) with size 1.</param>
    /// <returns>A new tensor of the input's dtype.</returns>
    public torch.Tensor Amax(torch.Tensor input, long? dim, bool keepdim) =>
        Reduce(input, dim, keepdim, RowReduction.Amax) ?? CpuTensorKernels.Amax(input, dim, keepdim);

    /// <summary><c>aten::argmax</c> over the last dimension or the flattened input (float32, float16, bfloat16 on the device; else the CPU kernel).</summary>
    /// <param name="input">A float32, float16 or bfloat16 CPU tensor.</param>
    /// <param name="dim">The dimension to reduce, or null for the flattened input.</param>
    /// <param name="keepdim">Keep the reduced dimension(s) with size 1.</param>
    /// <returns>A new int64 tensor.</returns>
    public torch.Tensor Argmax(torch.Tensor input, long? dim, bool keepdim) =>
        Reduce(input, dim, keepdim, RowReduction.Argmax) ?? CpuTensorKernels.Argmax(input, dim, keepdim);

    /// <summary>
    /// <c>aten::topk</c>: the k largest along the last dimension on the device (float32, float16, bfloat16; 1 ≤ k ≤
    /// <see cref="MaxDeviceTopK"/>); smallest, another dimension or larger k go to the CPU kernel.
    /// </summary>
    /// <param name="input">A float32, float16 or bfloat16 CPU tensor.</param>
    /// <param name="k">How many elements to return.</param>
    /// <param name="dim">The dimension to select along.</param>
    /// <param name="largest">True for the largest values (descending), false for the smallest.</param>
    /// <returns>The values and int64 indices.</returns>
    public (torch.Tensor Values, torch.Tensor Indices) TopK(torch.Tensor input, long k, long dim, bool largest)
    {
        if (!largest || !Floating(input, out var dtype))
        {
            return CpuTensorKernels.TopK(input, k, dim, largest);
        }

        long[] shape = TorchNative.Shape(input);
        if (shape.Length == 0 || (dim != -1 && dim != shape.Length - 1) || k < 1 || k > MaxDeviceTopK || k > shape[^1]
            || !Launchable(Count(shape)))
        {
            return CpuTensorKernels.TopK(input, k, dim, largest);
        }

        int cols = (int)shape[^1];
        long rows = Count(shape) / cols;
        long[] outShape = (long[])shape.Clone();
        outShape[^1] = k;
        torch.Tensor values = torch.empty(outShape, dtype, torch.CPU);
        torch.Tensor indices = torch.empty(outShape, torch.ScalarType.Int64, torch.CPU);
        try
        {
            using var s = Begin();
            ArrayView<long> ix = s.Allocate<long>(rows * k);
            if (Is16(dtype))
            {
                ArrayView<ushort> x = s.Upload<ushort>(input), v = s.Allocate<ushort>(rows * k);
                Device.Kernels.TopK(x, v, ix, cols, (int)k, Format(dtype));
                s.Synchronize();
                s.Download(v, values);
            }
            else
            {
                ArrayView<float> x = s.Upload<float>(input), v = s.Allocate<float>(rows * k);
                Device.Kernels.TopK(x, v, ix, cols, (int)k);
                s.Synchronize();
                s.Download(v, values);
            }

            s.Download(ix, indices);
            return (values, indices);
        }
        catch
        {
            values.Dispose();
            indices.Dispose();
            throw;
        }
    }

    private torch.Tensor? SoftmaxRows(torch.Tensor input, long dim, bool log)
    {
        if (!Floating(input, out var dtype))
        {
            return null;
        }

        long[] shape = TorchNative.Shape(input);
        if (shape.Length == 0 || (dim != -1 && dim != shape.Length - 1) || shape[^1] > int.MaxValue || !Launchable(Count(shape)))
        {
            return null;
        }

        int cols = (int)shape[^1];
        if (Is16(dtype))
        {
            return Launch(shape, dtype, (s, k) =>
            {
                ArrayView<ushort> x = s.Upload<ushort>(input), y = s.Allocate<ushort>(x.Length);
                k.Softmax(x, y, cols, Format(dtype), log);
                return y;
            });
        }

        return Launch(shape, dtype, (s, k) =>
        {
            ArrayView<float> x = s.Upload<float>(input), y = s.Allocate<float>(x.Length);
            if (log)
            {
                k.LogSoftmax(x, y, cols);
            }
            else
            {
                k.Softmax(x, y, cols);
            }

            return y;
        });
    }

    /// <summary>
    /// The norms' device case: input of rank ≥ 1 with elements, weight (and bias) null (rms_norm's weight is required: pass it) or
    /// 1-D [n] of the same dtype.
    /// </summary>
    private static bool NormShape(torch.Tensor input, torch.Tensor? weight, torch.Tensor? bias, out torch.ScalarType dtype, out long[] shape, out int cols)
    {
        shape = Array.Empty<long>();
        cols = 0;
        if (!Floating(input, out dtype))
        {
            return false;
        }

        shape = TorchNative.Shape(input);
        if (shape.Length == 0 || shape[^1] > int.MaxValue || !Launchable(Count(shape)))
        {
            return false;
        }

        cols = (int)shape[^1];
        return Vector(weight, dtype, cols) && Vector(bias, dtype, cols);
    }

    /// <summary>Null, or a 1-D CPU tensor [length] of <paramref name="dtype"/>.</summary>
    private static bool Vector(torch.Tensor? tensor, torch.ScalarType dtype, long length)
    {
        if (tensor is null)
        {
            return true;
        }

        if (!Same(tensor, dtype))
        {
            return false;
        }

        long[] shape = TorchNative.Shape(tensor);
        return shape.Length == 1 && shape[0] == length;
    }

    private static bool RotaryFits(torch.Tensor positions, torch.Tensor query, torch.Tensor? key, long headSize, torch.Tensor cosSinCache,
        out torch.ScalarType dtype, out int rotaryDim)
    {
        rotaryDim = 0;
        if (!Floating(query, out dtype) || !Same(cosSinCache, dtype) || (key is not null && !Same(key, dtype))
            || positions is null || positions.device_type != DeviceType.CPU || positions.dtype is not (torch.ScalarType.Int64 or torch.ScalarType.Int32))
        {
            return false;
        }

        long tokens = positions.numel();
        long[] cache = TorchNative.Shape(cosSinCache);
        if (cache.Length != 2 || cache[1] <= 0 || cache[1] % 2 != 0 || headSize <= 0 || cache[1] > headSize || headSize > int.MaxValue
            || !Launchable(tokens) || !Launchable(Count(cache)))
        {
            return false;
        }

        if (!RotaryHeads(query, tokens, headSize) || (key is not null && (!RotaryHeads(key, tokens, headSize) || Overlap(query, key)))
            || !InRange(positions, cache[0]))
        {
            return false;
        }

        rotaryDim = (int)cache[1];
        return true;
    }

    /// <summary>A contiguous [tokens, heads * headSize] or [tokens, heads, headSize] tensor with at least one head, below 2^31 elements.</summary>
    private static bool RotaryHeads(torch.Tensor tensor, long tokens, long headSize)
    {
        long[] shape = TorchNative.Shape(tensor);
        bool fits = shape.Length is 2 or 3 && shape[0] == tokens && (shape.Length == 2 ? shape[1] % headSize == 0 : shape[2] == headSize);
        return fits && tensor.is_contiguous() && Launchable(Count(shape));
    }

    /// <summary>Whether every value of an int32 / int64 CPU index tensor lies in [0, <paramref name="limit"/>).</summary>
    private static bool InRange(torch.Tensor indices, long limit)
    {
        long count = indices.numel();
        if (count == 0)
        {
            return true;
        }

        torch.Tensor? copy = indices.is_contiguous() ? null : indices.contiguous();
        try
        {
            void* data = KernelArguments.Data(copy ?? indices);
            bool wide = indices.dtype == torch.ScalarType.Int64;
            for (long i = 0; i < count; i++)
            {
                long value = wide ? ((long*)data)[i] : ((int*)data)[i];
                if ((ulong)value >= (ulong)limit)
                {
                    return false;
                }
            }

            GC.KeepAlive(indices);
            return true;
        }
        finally
        {
            copy?.Dispose();
        }
    }

    private torch.Tensor? Reduce(torch.Tensor input, long? dim, bool keepdim, RowReduction op)
    {
        if (!Floating(input, out var dtype))
        {
            return null;
        }

        long[] shape = TorchNative.Shape(input);
        long total = Count(shape);
        if (shape.Length == 0 || !Launchable(total) || (dim is { } d && d != -1 && d != shape.Length - 1))
        {
            return null;
        }

        long[] outShape;
        long cols;
        if (dim is null)
        {
            cols = total;
            outShape = keepdim ? Ones(shape.Length) : Array.Empty<long>();
        }
        else
        {
            cols = shape[^1];
            outShape = keepdim ? (long[])shape.Clone() : shape[..^1];
            if (keepdim)
            {
                outShape[^1] = 1;
            }
        }

        long rows = total / cols;
        torch.Tensor result = torch.empty(outShape, op == RowReduction.Argmax ? torch.ScalarType.Int64 : dtype, torch.CPU);
        try
        {
            using var s = Begin();
            var k = Device.Kernels;
            if (Is16(dtype))
            {
                Reduce16(s, k, input, result, rows, cols, op, Format(dtype));
                return result;
            }

            ArrayView<float> x = s.Upload<float>(input);
            if (op == RowReduction.Argmax)
            {
                ArrayView<long> y = s.Allocate<long>(rows);
                k.Argmax(x, y, (int)cols);
                s.Synchronize();
                s.Download(y, result);
            }
            else
            {
                ArrayView<float> y = s.Allocate<float>(rows);
                switch (op)
                {
                    case RowReduction.Sum:
                        k.Sum(x, y, (int)cols);
                        break;
                    case RowReduction.Mean:
                        k.Mean(x, y, (int)cols);
                        break;
                    default:
                        k.Amax(x, y, (int)cols);
                        break;
                }

                s.Synchronize();
                s.Download(y, result);
            }

            return result;
        }
        catch
        {
            result.Dispose();
            throw;
        }
    }

    /// <summary>The 16-bit reductions: upload, launch, synchronize, download into <paramref name="result"/>.</summary>
    private static void Reduce16(Staging s, IlgpuKernels k, torch.Tensor input, torch.Tensor result, long rows, long cols, RowReduction op, HalfFormat format)
    {
        ArrayView<ushort> x = s.Upload<ushort>(input);
        if (op == RowReduction.Argmax)
        {
            ArrayView<long> y = s.Allocate<long>(rows);
            k.Argmax(x, y, (int)cols, format);
            s.Synchronize();
            s.Download(y, result);
            return;
        }

        ArrayView<ushort> r = s.Allocate<ushort>(rows);
        switch (op)
        {
            case RowReduction.Sum:
                k.Sum(x, r, (int)cols, format);
                break;
            case RowReduction.Mean:
                k.Mean(x, r, (int)cols, format);
                break;
            default:
                k.Amax(x, r, (int)cols, format);
                break;
        }

        s.Synchronize();
        s.Download(r, result);
    }

    private static long[] Ones(int rank)
    {
        var shape = new long[rank];
        Array.Fill(shape, 1L);
        return shape;
    }
}
