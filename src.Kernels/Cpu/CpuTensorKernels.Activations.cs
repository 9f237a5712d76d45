using System;
using GemsInjector.Kernels.Numerics;
using GemsInjector.Kernels.Tensors;
using TorchSharp;

namespace GemsInjector.Kernels.Cpu;

/// <summary>Unary elementwise kernels and the gated activations (vLLM's silu_and_mul / gelu_and_mul).</summary>
public static unsafe partial class CpuTensorKernels
{
    private const string NegName = "aten::neg";
    private const string ExpName = "aten::exp";
    private const string RsqrtName = "aten::rsqrt";
    private const string ReluName = "aten::relu";
    private const string SigmoidName = "aten::sigmoid";
    private const string TanhName = "aten::tanh";
    private const string GeluName = "aten::gelu";
    private const string SiluAndMulName = "_C::silu_and_mul";
    private const string GeluAndMulName = "_C::gelu_and_mul";

    /// <summary><c>aten::neg(Tensor self)</c>: -x.</summary>
    /// <param name="input">A float32, float16 or bfloat16 CPU tensor.</param>
    /// <returns>A new contiguous CPU tensor of the same shape and dtype.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="input"/> is null.</exception>
    /// <exception cref="ArgumentException"><paramref name="input"/> is not on the CPU or not of a supported dtype.</exception>
    public static torch.Tensor Neg(torch.Tensor input) => Unary<NegOperator>(NegName, input);

    /// <summary><c>aten::exp(Tensor self)</c>: e^x (+Inf above ~88.72, 0 below ~-103.9 in float32).</summary>
    /// <param name="input">A float32, float16 or bfloat16 CPU tensor.</param>
    /// <returns>A new contiguous CPU tensor of the same shape and dtype.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="input"/> is null.</exception>
    /// <exception cref="ArgumentException"><paramref name="input"/> is not on the CPU or not of a supported dtype.</exception>
    public static torch.Tensor Exp(torch.Tensor input) => Unary<ExpOperator>(ExpName, input);

    /// <summary><c>aten::rsqrt(Tensor self)</c>: 1 / sqrt(x) (+Inf at 0, NaN below 0).</summary>
    /// <param name="input">A float32, float16 or bfloat16 CPU tensor.</param>
    /// <returns>A new contiguous CPU tensor of the same shape and dtype.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="input"/> is null.</exception>
    /// <exception cref="ArgumentException"><paramref name="input"/> is not on the CPU or not of a supported dtype.</exception>
    public static torch.Tensor Rsqrt(torch.Tensor input) => Unary<RsqrtOperator>(RsqrtName, input);

    /// <summary><c>aten::relu(Tensor self)</c>: max(x, 0), NaN kept.</summary>
    /// <param name="input">A float32, float16 or bfloat16 CPU tensor.</param>
    /// <returns>A new contiguous CPU tensor of the same shape and dtype.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="input"/> is null.</exception>
    /// <exception cref="ArgumentException"><paramref name="input"/> is not on the CPU or not of a supported dtype.</exception>
    public static torch.Tensor Relu(torch.Tensor input) => Unary<ReluOperator>(ReluName, input);

    /// <summary><c>aten::sigmoid(Tensor self)</c>: 1 / (1 + e^-x).</summary>
    /// <param name="input">A float32, float16 or bfloat16 CPU tensor.</param>
    /// <returns>A new contiguous CPU tensor of the same shape and dtype.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="input"/> is null.</exception>
    /// <exception cref="ArgumentException"><paramref name="input"/> is not on the CPU or not of a supported dtype.</exception>
    public static torch.Tensor Sigmoid(torch.Tensor input) => Unary<SigmoidOperator>(SigmoidName, input);

    /// <summary><c>aten::tanh(Tensor self)</c>: tanh(x), with full relative accuracy near 0.</summary>
    /// <param name="input">A float32, float16 or bfloat16 CPU tensor.</param>
    /// <returns>A new contiguous CPU tensor of the same shape and dtype.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="input"/> is null.</exception>
    /// <exception cref="ArgumentException"><paramref name="input"/> is not on the CPU or not of a supported dtype.</exception>
    public static torch.Tensor Tanh(torch.Tensor input) => Unary<TanhOperator>(TanhName, input);

    /// <summary>
    /// <c>aten::gelu(Tensor self, *, str approximate='none')</c>: x * Φ(x) with the normal CDF through erfc
    /// (<see cref="GeluApproximation.None"/>), or 0.5x(1 + tanh(√(2/π)(x + 0.044715x³))) (<see cref="GeluApproximation.Tanh"/>).
    /// </summary>
    /// <param name="input">A float32, float16 or bfloat16 CPU tensor.</param>
    /// <param name="approximate">Which form of GELU.</param>
    /// <returns>A new contiguous CPU tensor of the same shape and dtype.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="input"/> is null.</exception>
    /// <exception cref="ArgumentException"><paramref name="input"/> is not on the CPU or not of a supported dtype.</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="approximate"/> is not a defined value.</exception>
    public static torch.Tensor Gelu(torch.Tensor input, GeluApproximation approximate) => approximate switch
    {
        GeluApproximation.None => Unary<GeluErfOperator>(GeluName, input),
        GeluApproximation.Tanh => Unary<GeluTanhOperator>(GeluName, input),
        _ => throw UnknownApproximation(GeluName, approximate),
    };

    /// <summary>
    /// vLLM's <c>_C::silu_and_mul</c>: for input [..., 2d], out[..., j] = silu(x[..., j]) * x[..., d + j], fused in one pass.
    /// </summary>
    /// <param name="input">A float32, float16 or bfloat16 CPU tensor whose last dimension is even.</param>
    /// <returns>A new contiguous CPU tensor of shape [..., d] and <paramref name="input"/>'s dtype.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="input"/> is null.</exception>
    /// <exception cref="ArgumentException"><paramref name="input"/> is not on the CPU, not of a supported dtype, 0-dimensional, or its last dimension is odd.</exception>
    public static torch.Tensor SiluAndMul(torch.Tensor input) => Gated<SiluOperator>(SiluAndMulName, input);

    /// <summary>
    /// vLLM's <c>_C::gelu_and_mul</c> (and <c>gelu_tanh_and_mul</c>): for input [..., 2d],
    /// out[..., j] = gelu(x[..., j]) * x[..., d + j], fused in one pass.
    /// </summary>
    /// <param name="input">A float32, float16 or bfloat16 CPU tensor whose last dimension is even.</param>
    /// <param name="approximate">Which form of GELU.</param>
    /// <returns>A new contiguous CPU tensor of shape [..., d] and <paramref name="input"/>'s dtype.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="input"/> is null.</exception>
    /// <exception cref="ArgumentException"><paramref name="input"/> is not on the CPU, not of a supported dtype, 0-dimensional, or its last dimension is odd.</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="approximate"/> is not a defined value.</exception>
    public static torch.Tensor GeluAndMul(torch.Tensor input, GeluApproximation approximate) => approximate switch
    {
        GeluApproximation.None => Gated<GeluErfOperator>(GeluAndMulName, input),
        GeluApproximation.Tanh => Gated<GeluTanhOperator>(GeluAndMulName, input),
        _ => throw UnknownApproximation(GeluAndMulName, approximate),
    };

    private static ArgumentOutOfRangeException UnknownApproximation(string operatorName, GeluApproximation approximate) =>
        new(nameof(approximate), approximate, $"{operatorName}: argument 'approximate' is {approximate}, but it must be None or Tanh.");

    private static torch.Tensor Gated<TOperator>(string operatorName, torch.Tensor input)
        where TOperator : struct, IFloatOperator
    {
        torch.ScalarType dtype = KernelArguments.CpuFloating(operatorName, input, nameof(input));
        long[] shape = TorchNative.Shape(input);
        if (shape.Length == 0 || shape[^1] % 2 != 0)
        {
            throw new ArgumentException(
                $"{operatorName}: argument 'input' has shape {KernelArguments.Format(shape)}, but its last dimension must be even (gate and up halves).",
                nameof(input));
        }

        long half = shape[^1] / 2;
        var outputShape = (long[])shape.Clone();
        outputShape[^1] = half;
        torch.Tensor? copy = input.is_contiguous() ? null : input.contiguous();
        try
        {
            torch.Tensor result = torch.empty(outputShape, dtype, torch.CPU);
            long length = result.numel();
            if (length > 0)
            {
                byte* x = Address(copy ?? input), d = Address(result);
                long rows = length / half;
                switch (dtype)
                {
                    case torch.ScalarType.Float32:
                        CpuRowKernels.Run(new GatedJob<TOperator, Float32Lanes>(x, d, half, rows), rows, length);
                        break;
                    case torch.ScalarType.Float16:
                        CpuRowKernels.Run(new GatedJob<TOperator, Float16Lanes>(x, d, half, rows), rows, length);
                        break;
                    default:
                        CpuRowKernels.Run(new GatedJob<TOperator, BFloat16Lanes>(x, d, half, rows), rows, length);
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
}
