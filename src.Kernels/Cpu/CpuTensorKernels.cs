using System;
using GemsInjector.Kernels.Numerics;
using GemsInjector.Kernels.Tensors;
using TorchSharp;

namespace GemsInjector.Kernels.Cpu;

/// <summary>
/// The CPU kernels over TorchSharp tensors, with the signatures the operator table binds to. They read CPU float32,
/// float16 and bfloat16 tensors in place (zero-copy views), allocate the output with <c>torch.empty</c> in the input's
/// dtype and compute into it in float32 (16-bit values are widened on load and rounded to nearest even on store).
/// Arguments of one call must share a dtype. Inputs that are not contiguous, and operands of the binary operators that
/// must be broadcast, are first copied to contiguous tensors (<c>expand(...).contiguous()</c>, <c>.contiguous()</c>);
/// those temporary copies are disposed before returning. The outputs carry no autograd history.
/// </summary>
public static unsafe partial class CpuTensorKernels
{
    private const string AddName = "aten::add.Tensor";
    private const string MulName = "aten::mul.Tensor";
    private const string SiluName = "aten::silu";
    private const string RmsNormName = "aten::rms_norm";

    /// <summary>The back-end name these kernels report: <see cref="KernelBackends.Cpu"/>.</summary>
    public static string BackendName => KernelBackends.Cpu;

    /// <summary>The binary elementwise operators <see cref="Binary"/> computes.</summary>
    private enum BinaryKind
    {
        /// <summary>self + alpha * other (sub passes -alpha).</summary>
        Add,

        /// <summary>self * other.</summary>
        Mul,

        /// <summary>self / other.</summary>
        Div,
    }

    /// <summary><c>aten::add.Tensor(Tensor self, Tensor other, *, Scalar alpha=1)</c>: self + alpha * other, broadcasting as aten does.</summary>
    /// <param name="self">A float32, float16 or bfloat16 CPU tensor.</param>
    /// <param name="other">A CPU tensor of <paramref name="self"/>'s dtype whose shape broadcasts with <paramref name="self"/>'s.</param>
    /// <param name="alpha">The factor applied to <paramref name="other"/>, first rounded to the tensors' dtype as aten does.</param>
    /// <returns>A new contiguous CPU tensor of the broadcast shape and the inputs' dtype.</returns>
    /// <exception cref="ArgumentNullException">An argument is null.</exception>
    /// <exception cref="ArgumentException">An argument is not on the CPU or not of a supported dtype, the dtypes differ, or the shapes do not broadcast.</exception>
    public static torch.Tensor Add(torch.Tensor self, torch.Tensor other, double alpha) => Binary(AddName, self, other, alpha, BinaryKind.Add);

    /// <summary><c>aten::mul.Tensor(Tensor self, Tensor other)</c>: self * other, broadcasting as aten does.</summary>
    /// <param name="self">A float32, float16 or bfloat16 CPU tensor.</param>
    /// <param name="other">A CPU tensor of <paramref name="self"/>'s dtype whose shape broadcasts with <paramref name="self"/>'s.</param>
    /// <returns>A new contiguous CPU tensor of the broadcast shape and the inputs' dtype.</returns>
    /// <exception cref="ArgumentNullException">An argument is null.</exception>
    /// <exception cref="ArgumentException">An argument is not on the CPU or not of a supported dtype, the dtypes differ, or the shapes do not broadcast.</exception>
    public static torch.Tensor Mul(torch.Tensor self, torch.Tensor other) => Binary(MulName, self, other, 1.0, BinaryKind.Mul);

    /// <summary><c>aten::silu(Tensor self)</c>: x * sigmoid(x) elementwise.</summary>
    /// <param name="input">A float32, float16 or bfloat16 CPU tensor.</param>
    /// <returns>A new contiguous CPU tensor of the same shape and dtype.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="input"/> is null.</exception>
    /// <exception cref="ArgumentException"><paramref name="input"/> is not on the CPU or not of a supported dtype.</exception>
    public static torch.Tensor Silu(torch.Tensor input) => Unary<SiluOperator>(SiluName, input);

    /// <summary>
    /// <c>aten::rms_norm(Tensor input, int[] normalized_shape, Tensor? weight, float? eps)</c> over the last dimension:
    /// x / sqrt(mean(x², -1) + epsilon) * weight. The sum of squares accumulates in float32; the scale is computed in float64.
    /// </summary>
    /// <param name="input">A float32, float16 or bfloat16 CPU tensor with at least one dimension.</param>
    /// <param name="weight">A 1-D CPU tensor of <paramref name="input"/>'s dtype, as long as its last dimension.</param>
    /// <param name="epsilon">Added to the mean of squares.</param>
    /// <returns>A new contiguous CPU tensor of <paramref name="input"/>'s shape and dtype.</returns>
    /// <exception cref="ArgumentNullException">An argument is null.</exception>
    /// <exception cref="ArgumentException">An argument is not on the CPU or not of a supported dtype, the dtypes differ,
    /// <paramref name="input"/> is 0-dimensional, or <paramref name="weight"/>'s shape is not [last dimension of <paramref name="input"/>].</exception>
    public static torch.Tensor RmsNorm(torch.Tensor input, torch.Tensor weight, double epsilon)
    {
        torch.ScalarType dtype = KernelArguments.CpuFloating(RmsNormName, input, nameof(input));
        KernelArguments.SameFloating(RmsNormName, dtype, nameof(input), weight, nameof(weight));
        long[] shape = TorchNative.Shape(input);
        int rowLength = LastDimension(RmsNormName, shape);
        CheckVector(RmsNormName, weight, nameof(weight), rowLength, shape);
        torch.Tensor? inputCopy = input.is_contiguous() ? null : input.contiguous();
        torch.Tensor? weightCopy = weight.is_contiguous() ? null : weight.contiguous();
        try
        {
            torch.Tensor result = torch.empty(shape, dtype, torch.CPU);
            long length = result.numel();
            if (length > 0)
            {
                byte* x = Address(inputCopy ?? input), w = Address(weightCopy ?? weight), d = Address(result);
                long rows = length / rowLength;
                switch (dtype)
                {
                    case torch.ScalarType.Float32:
                        CpuKernels.RmsNormCore((float*)x, (float*)w, (float*)d, rows, rowLength, epsilon);
                        break;
                    case torch.ScalarType.Float16:
                        CpuRowKernels.Run(new RmsNormJob<Float16Lanes>(x, w, d, rowLength, epsilon), rows, length);
                        break;
                    default:
                        CpuRowKernels.Run(new RmsNormJob<BFloat16Lanes>(x, w, d, rowLength, epsilon), rows, length);
                        break;
                }
            }

            return result;
        }
        finally
        {
            inputCopy?.Dispose();
            weightCopy?.Dispose();
        }
    }

    private static torch.Tensor Binary(string operatorName, torch.Tensor self, torch.Tensor other, double alphaValue, BinaryKind kind)
    {
        torch.ScalarType dtype = KernelArguments.CpuFloating(operatorName, self, nameof(self));
        KernelArguments.SameFloating(operatorName, dtype, nameof(self), other, nameof(other));

        float alpha = KernelArguments.RoundScalar(alphaValue, dtype);
        long[] selfShape = TorchNative.Shape(self);
        long[] otherShape = TorchNative.Shape(other);
        long[] shape = selfShape;
        torch.Tensor? selfCopy = null;
        torch.Tensor? otherCopy = null;
        try
        {
            if (!KernelArguments.SameShape(selfShape, otherShape))
            {
                shape = KernelArguments.BroadcastShape(selfShape, otherShape)
                    ?? throw new ArgumentException(
                        $"{operatorName}: argument 'other' of shape {KernelArguments.Format(otherShape)} does not broadcast with " +
                        $"argument 'self' of shape {KernelArguments.Format(selfShape)}.",
                        nameof(other));
                selfCopy = KernelArguments.SameShape(shape, selfShape) ? null : ExpandedCopy(self, shape);
                otherCopy = KernelArguments.SameShape(shape, otherShape) ? null : ExpandedCopy(other, shape);
            }

            if (selfCopy is null && !self.is_contiguous())
            {
                selfCopy = self.contiguous();
            }

            if (otherCopy is null && !other.is_contiguous())
            {
                otherCopy = other.contiguous();
            }

            torch.Tensor result = torch.empty(shape, dtype, torch.CPU);
            long length = result.numel();
            if (length > 0)
            {
                byte* a = Address(selfCopy ?? self);
                byte* b = Address(otherCopy ?? other);
                byte* d = Address(result);
                switch (dtype)
                {
                    case torch.ScalarType.Float32 when kind == BinaryKind.Add:
                        CpuKernels.AddCore((float*)a, (float*)b, alpha, (float*)d, length);
                        break;
                    case torch.ScalarType.Float32 when kind == BinaryKind.Mul:
                        CpuKernels.MulCore((float*)a, (float*)b, (float*)d, length);
                        break;
                    case torch.ScalarType.Float32:
                        BinaryLoop<Float32Lanes>(kind, a, b, alpha, d, length);
                        break;
                    case torch.ScalarType.Float16:
                        BinaryLoop<Float16Lanes>(kind, a, b, alpha, d, length);
                        break;
                    default:
                        BinaryLoop<BFloat16Lanes>(kind, a, b, alpha, d, length);
                        break;
                }
            }

            return result;
        }
        finally
        {
            selfCopy?.Dispose();
            otherCopy?.Dispose();
        }
    }

    private static void BinaryLoop<T>(BinaryKind kind, byte* a, byte* b, float alpha, byte* d, long length)
        where T : struct, IFloatLanes
    {
        switch (kind)
        {
            case BinaryKind.Add:
                ElementwiseLoops.Binary<AddScaledOperator, T>(a, b, alpha, d, length);
                break;
            case BinaryKind.Mul:
                ElementwiseLoops.Binary<MulOperator, T>(a, b, alpha, d, length);
                break;
            default:
                ElementwiseLoops.Binary<DivOperator, T>(a, b, alpha, d, length);
                break;
        }
    }

    /// <summary>An elementwise operator of one tensor, for every supported dtype.</summary>
    private static torch.Tensor Unary<TOperator>(string operatorName, torch.Tensor input)
        where TOperator : struct, IFloatOperator
    {
        torch.ScalarType dtype = KernelArguments.CpuFloating(operatorName, input, nameof(input));
        torch.Tensor? copy = input.is_contiguous() ? null : input.contiguous();
        try
        {
            torch.Tensor x = copy ?? input;
            torch.Tensor result = torch.empty(TorchNative.Shape(x), dtype, torch.CPU);
            long length = result.numel();
            if (length > 0)
            {
                byte* s = Address(x), d = Address(result);
                switch (dtype)
                {
                    case torch.ScalarType.Float32:
                        ElementwiseLoops.Unary<TOperator, Float32Lanes>(s, d, length);
                        break;
                    case torch.ScalarType.Float16:
                        ElementwiseLoops.Unary<TOperator, Float16Lanes>(s, d, length);
                        break;
                    default:
                        ElementwiseLoops.Unary<TOperator, BFloat16Lanes>(s, d, length);
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

    /// <summary>The address of a CPU tensor's first element (storage offset applied); null when it has none.</summary>
    private static byte* Address(torch.Tensor tensor) => tensor.numel() == 0 ? null : (byte*)TorchNative.Data(tensor);

    /// <summary>The last dimension of a shape, checked to exist and to fit an <see cref="int"/>.</summary>
    private static int LastDimension(string operatorName, long[] shape)
    {
        if (shape.Length == 0)
        {
            throw new ArgumentException($"{operatorName}: argument 'input' is 0-dimensional (shape []); it needs a last dimension to normalize.", "input");
        }

        if (shape[^1] > int.MaxValue)
        {
            throw new ArgumentException($"{operatorName}: the last dimension of 'input' (shape {KernelArguments.Format(shape)}) exceeds {int.MaxValue}.", "input");
        }

        return (int)shape[^1];
    }

    /// <summary>Throws unless <paramref name="vector"/>'s shape is [<paramref name="length"/>].</summary>
    private static void CheckVector(string operatorName, torch.Tensor vector, string argumentName, long length, long[] inputShape)
    {
        long[] vectorShape = TorchNative.Shape(vector);
        if (vectorShape.Length != 1 || vectorShape[0] != length)
        {
            throw new ArgumentException(
                $"{operatorName}: argument '{argumentName}' has shape {KernelArguments.Format(vectorShape)}, but it must be [{length}], " +
                $"the last dimension of 'input' (shape {KernelArguments.Format(inputShape)}).",
                argumentName);
        }
    }

    private static torch.Tensor ExpandedCopy(torch.Tensor tensor, long[] shape)
    {
        using torch.Tensor expanded = tensor.expand(shape);
        return expanded.contiguous();
    }
}
