using System;
using GemsInjector.Kernels.Numerics;
using GemsInjector.Kernels.Tensors;
using TorchSharp;

namespace GemsInjector.Kernels.Cpu;

/// <summary>softmax and log_softmax along any dimension (a fast path for the last one), numerically stable (max subtracted).</summary>
public static unsafe partial class CpuTensorKernels
{
    private const string SoftmaxName = "aten::_softmax";
    private const string LogSoftmaxName = "aten::_log_softmax";

    /// <summary><c>aten::softmax.int(Tensor self, int dim)</c>: e^(x - max) / Σ e^(x - max) along <paramref name="dim"/>.</summary>
    /// <param name="input">A float32, float16 or bfloat16 CPU tensor (a 0-dimensional one counts as one element).</param>
    /// <param name="dim">The dimension to normalize; negative counts from the end.</param>
    /// <returns>A new contiguous CPU tensor of <paramref name="input"/>'s shape and dtype.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="input"/> is null.</exception>
    /// <exception cref="ArgumentException"><paramref name="input"/> is not on the CPU or not of a supported dtype.</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="dim"/> is not a dimension of <paramref name="input"/>.</exception>
    public static torch.Tensor Softmax(torch.Tensor input, long dim) => SoftmaxCore(SoftmaxName, input, dim, log: false);

    /// <summary><c>aten::log_softmax.int(Tensor self, int dim)</c>: x - max - log Σ e^(x - max) along <paramref name="dim"/>.</summary>
    /// <param name="input">A float32, float16 or bfloat16 CPU tensor (a 0-dimensional one counts as one element).</param>
    /// <param name="dim">The dimension to normalize; negative counts from the end.</param>
    /// <returns>A new contiguous CPU tensor of <paramref name="input"/>'s shape and dtype.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="input"/> is null.</exception>
    /// <exception cref="ArgumentException"><paramref name="input"/> is not on the CPU or not of a supported dtype.</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="dim"/> is not a dimension of <paramref name="input"/>.</exception>
    public static torch.Tensor LogSoftmax(torch.Tensor input, long dim) => SoftmaxCore(LogSoftmaxName, input, dim, log: true);

    private static torch.Tensor SoftmaxCore(string operatorName, torch.Tensor input, long dim, bool log)
    {
        torch.ScalarType dtype = KernelArguments.CpuFloating(operatorName, input, nameof(input));
        long[] shape = TorchNative.Shape(input);
        int rank = Math.Max(shape.Length, 1);
        if (dim < -rank || dim >= rank)
        {
            throw new ArgumentOutOfRangeException(
                nameof(dim), dim,
                $"{operatorName}: argument 'dim' is {dim}, out of range for 'input' of shape {KernelArguments.Format(shape)} (expected a value in [{-rank}, {rank - 1}]).");
        }

        int axis = (int)(dim < 0 ? dim + rank : dim);
        long length = shape.Length == 0 ? 1 : shape[axis];
        long inner = 1;
        long total = 1;
        for (int i = 0; i < shape.Length; i++)
        {
            inner *= i > axis ? shape[i] : 1;
            total *= shape[i];
        }

        torch.Tensor? copy = TorchNative.IsContiguous(input) ? null : input.contiguous();
        try
        {
            torch.Tensor result = TorchNative.EmptyCpu(shape, dtype);
            if (total > 0)
            {
                // The element count comes from the shape: at one row each native call (numel, ...) is a visible share of the call.
                byte* x = (byte*)TorchNative.Data(copy ?? input), d = (byte*)TorchNative.Data(result);
                long outer = total / (length * inner);
                switch (dtype)
                {
                    case torch.ScalarType.Float32:
                        Softmax<Float32Lanes>(x, d, outer, length, inner, total, log);
                        break;
                    case torch.ScalarType.Float16:
                        Softmax<Float16Lanes>(x, d, outer, length, inner, total, log);
                        break;
                    default:
                        Softmax<BFloat16Lanes>(x, d, outer, length, inner, total, log);
                        break;
                }
            }

            return result;
        }
        finally
        {
            copy?.Dispose();
        }
    }

    private static void Softmax<T>(byte* x, byte* d, long outer, long length, long inner, long total, bool log)
        where T : struct, IFloatLanes
    {
        if (inner == 1 && length <= int.MaxValue)
        {
            CpuRowKernels.Run(new SoftmaxLastJob<T>(x, d, (int)length, log, outer), outer, total);
            return;
        }

        var job = new SoftmaxStridedJob<T>(x, d, length, inner, log);
        CpuRowKernels.Run(job, job.Items(outer), total);
    }
}
