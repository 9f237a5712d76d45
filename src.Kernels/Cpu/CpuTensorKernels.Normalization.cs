using System;
using GemsInjector.Kernels.Numerics;
using GemsInjector.Kernels.Tensors;
using TorchSharp;

namespace GemsInjector.Kernels.Cpu;

/// <summary>Normalizations over the last dimension: vLLM's in-place fused_add_rms_norm and aten's layer_norm.</summary>
public static unsafe partial class CpuTensorKernels
{
    private const string FusedAddRmsNormName = "_C::fused_add_rms_norm";
    private const string LayerNormName = "aten::layer_norm";

    /// <summary>
    /// vLLM's <c>_C::fused_add_rms_norm(input, residual, weight, epsilon)</c>, in place: residual ← input + residual
    /// (rounded to the dtype), then input ← residual / sqrt(mean(residual², -1) + epsilon) * weight. Both tensors are
    /// written where they are, so they must be contiguous (a copy would lose the result).
    /// </summary>
    /// <param name="input">A contiguous float32, float16 or bfloat16 CPU tensor [..., n]; overwritten with the normalized rows.</param>
    /// <param name="residual">A contiguous CPU tensor of <paramref name="input"/>'s shape and dtype; overwritten with the sum.</param>
    /// <param name="weight">A 1-D CPU tensor [n] of the same dtype.</param>
    /// <param name="epsilon">Added to the mean of squares.</param>
    /// <exception cref="ArgumentNullException">An argument is null.</exception>
    /// <exception cref="ArgumentException">An argument is not on the CPU or not of a supported dtype, the dtypes differ,
    /// <paramref name="input"/> or <paramref name="residual"/> is not contiguous, the shapes differ, or
    /// <paramref name="weight"/>'s shape is not [n].</exception>
    public static void FusedAddRmsNorm(torch.Tensor input, torch.Tensor residual, torch.Tensor weight, double epsilon)
    {
        torch.ScalarType dtype = KernelArguments.CpuFloating(FusedAddRmsNormName, input, nameof(input));
        KernelArguments.SameFloating(FusedAddRmsNormName, dtype, nameof(input), residual, nameof(residual));
        KernelArguments.SameFloating(FusedAddRmsNormName, dtype, nameof(input), weight, nameof(weight));
        long[] shape = TorchNative.Shape(input);
        int rowLength = LastDimension(FusedAddRmsNormName, shape);
        long[] residualShape = TorchNative.Shape(residual);
        if (!KernelArguments.SameShape(shape, residualShape))
        {
            throw new ArgumentException(
                $"{FusedAddRmsNormName}: argument 'residual' has shape {KernelArguments.Format(residualShape)}, but it must match " +
                $"argument 'input' of shape {KernelArguments.Format(shape)}.",
                nameof(residual));
        }

        CheckVector(FusedAddRmsNormName, weight, nameof(weight), rowLength, shape);
        CheckInPlace(FusedAddRmsNormName, input, nameof(input), shape);
        CheckInPlace(FusedAddRmsNormName, residual, nameof(residual), shape);
        long length = input.numel();
        if (length == 0)
        {
            return;
        }

        // Rows are processed in parallel, each writing its residual row and then its input row: overlapping arguments would make
        // the result depend on the schedule, so they are refused (the same tensor, or views of one buffer that share elements).
        if (KernelArguments.Overlap(input, residual))
        {
            throw new ArgumentException(
                $"{FusedAddRmsNormName}: arguments 'input' and 'residual' (shape {KernelArguments.Format(shape)}) overlap in memory (the same memory " +
                "or overlapping views of one buffer); they must be separate tensors.",
                nameof(residual));
        }

        torch.Tensor? weightCopy = weight.is_contiguous() ? null : weight.contiguous();
        try
        {
            byte* x = Address(input), r = Address(residual), w = Address(weightCopy ?? weight);
            long rows = length / rowLength;
            switch (dtype)
            {
                case torch.ScalarType.Float32:
                    CpuRowKernels.Run(new FusedAddRmsNormJob<Float32Lanes>(x, r, w, rowLength, epsilon), rows, length);
                    break;
                case torch.ScalarType.Float16:
                    CpuRowKernels.Run(new FusedAddRmsNormJob<Float16Lanes>(x, r, w, rowLength, epsilon), rows, length);
                    break;
                default:
                    CpuRowKernels.Run(new FusedAddRmsNormJob<BFloat16Lanes>(x, r, w, rowLength, epsilon), rows, length);
                    break;
            }
        }
        finally
        {
            weightCopy?.Dispose();
        }
    }

    /// <summary>
    /// <c>aten::layer_norm(input, [n], weight, bias, eps)</c> over the last dimension:
    /// (x - mean) / sqrt(var + epsilon) * weight + bias, with the biased variance (two passes over each row, float32
    /// accumulation, the scale in float64).
    /// </summary>
    /// <param name="input">A float32, float16 or bfloat16 CPU tensor [..., n].</param>
    /// <param name="weight">Null, or a 1-D CPU tensor [n] of the same dtype.</param>
    /// <param name="bias">Null, or a 1-D CPU tensor [n] of the same dtype.</param>
    /// <param name="epsilon">Added to the variance.</param>
    /// <returns>A new contiguous CPU tensor of <paramref name="input"/>'s shape and dtype.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="input"/> is null.</exception>
    /// <exception cref="ArgumentException">An argument is not on the CPU or not of a supported dtype, the dtypes differ,
    /// <paramref name="input"/> is 0-dimensional, or <paramref name="weight"/> / <paramref name="bias"/> is not [n].</exception>
    public static torch.Tensor LayerNorm(torch.Tensor input, torch.Tensor? weight, torch.Tensor? bias, double epsilon)
    {
        torch.ScalarType dtype = KernelArguments.CpuFloating(LayerNormName, input, nameof(input));
        long[] shape = TorchNative.Shape(input);
        int rowLength = LastDimension(LayerNormName, shape);
        if (weight is not null)
        {
            KernelArguments.SameFloating(LayerNormName, dtype, nameof(input), weight, nameof(weight));
            CheckVector(LayerNormName, weight, nameof(weight), rowLength, shape);
        }

        if (bias is not null)
        {
            KernelArguments.SameFloating(LayerNormName, dtype, nameof(input), bias, nameof(bias));
            CheckVector(LayerNormName, bias, nameof(bias), rowLength, shape);
        }

        torch.Tensor? inputCopy = input.is_contiguous() ? null : input.contiguous();
        torch.Tensor? weightCopy = weight is null || weight.is_contiguous() ? null : weight.contiguous();
        torch.Tensor? biasCopy = bias is null || bias.is_contiguous() ? null : bias.contiguous();
        try
        {
            torch.Tensor result = torch.empty(shape, dtype, torch.CPU);
            long length = result.numel();
            if (length > 0)
            {
                byte* x = Address(inputCopy ?? input), d = Address(result);
                byte* w = weight is null ? null : Address(weightCopy ?? weight);
                byte* b = bias is null ? null : Address(biasCopy ?? bias);
                long rows = length / rowLength;
                switch (dtype)
                {
                    case torch.ScalarType.Float32:
                        CpuRowKernels.Run(new LayerNormJob<Float32Lanes>(x, w, b, d, rowLength, epsilon), rows, length);
                        break;
                    case torch.ScalarType.Float16:
                        CpuRowKernels.Run(new LayerNormJob<Float16Lanes>(x, w, b, d, rowLength, epsilon), rows, length);
                        break;
                    default:
                        CpuRowKernels.Run(new LayerNormJob<BFloat16Lanes>(x, w, b, d, rowLength, epsilon), rows, length);
                        break;
                }
            }

            return result;
        }
        finally
        {
            inputCopy?.Dispose();
            weightCopy?.Dispose();
            biasCopy?.Dispose();
        }
    }

    /// <summary>Throws unless a tensor written in place is contiguous.</summary>
    private static void CheckInPlace(string operatorName, torch.Tensor tensor, string argumentName, long[] shape)
    {
        if (!tensor.is_contiguous())
        {
            throw new ArgumentException(
                $"{operatorName}: argument '{argumentName}' of shape {KernelArguments.Format(shape)} is not contiguous; this kernel writes it in place, " +
                "so it must be contiguous (a contiguous copy would lose the result). Pass a contiguous tensor.",
                argumentName);
        }
    }
}
