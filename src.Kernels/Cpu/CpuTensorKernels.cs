using System;
using GemsInjector.Kernels.Tensors;
using TorchSharp;

namespace GemsInjector.Kernels.Cpu;

/// <summary>
/// The CPU kernels over TorchSharp tensors, with the signatures the operator table binds to. They read CPU float32
/// tensors in place (zero-copy views), allocate the output with <c>torch.empty</c> and compute into it with
/// <see cref="CpuKernels"/>. Inputs that are not contiguous, and operands of <c>add</c>/<c>mul</c> that must be
/// broadcast, are first copied to contiguous tensors (<c>expand(...).contiguous()</c>, <c>.contiguous()</c>); those
/// temporary copies are disposed before returning. The outputs carry no autograd history.
/// </summary>
public static unsafe partial class CpuTensorKernels
{
    private const string AddName = "aten::add.Tensor";
    private const string MulName = "aten::mul.Tensor";
    private const string SiluName = "aten::silu";
    private const string RmsNormName = "aten::rms_norm";

    /// <summary>The back-end name these kernels report: <see cref="KernelBackends.Cpu"/>.</summary>
    public static string BackendName => KernelBackends.Cpu;

    /// <summary><c>aten::add.Tensor(Tensor self, Tensor other, *, Scalar alpha=1)</c>: self + alpha * other, broadcasting as aten does.</summary>
    /// <param name="self">A float32 CPU tensor.</param>
    /// <param name="other">A float32 CPU tensor whose shape broadcasts with <paramref name="self"/>'s.</param>
    /// <param name="alpha">The factor applied to <paramref name="other"/> (rounded to float32, as aten does for float32 tensors).</param>
    /// <returns>A new contiguous float32 CPU tensor of the broadcast shape.</returns>
    /// <exception cref="ArgumentNullException">An argument is null.</exception>
    /// <exception cref="ArgumentException">An argument is not on the CPU, not float32, or the shapes do not broadcast.</exception>
    public static torch.Tensor Add(torch.Tensor self, torch.Tensor other, double alpha) => Binary(AddName, self, other, (float)alpha, add: true);

    /// <summary><c>aten::mul.Tensor(Tensor self, Tensor other)</c>: self * other, broadcasting as aten does.</summary>
    /// <param name="self">A float32 CPU tensor.</param>
    /// <param name="other">A float32 CPU tensor whose shape broadcasts with <paramref name="self"/>'s.</param>
    /// <returns>A new contiguous float32 CPU tensor of the broadcast shape.</returns>
    /// <exception cref="ArgumentNullException">An argument is null.</exception>
    /// <exception cref="ArgumentException">An argument is not on the CPU, not float32, or the shapes do not broadcast.</exception>
    public static torch.Tensor Mul(torch.Tensor self, torch.Tensor other) => Binary(MulName, self, other, 1f, add: false);

    /// <summary><c>aten::silu(Tensor self)</c>: x * sigmoid(x) elementwise.</summary>
    /// <param name="input">A float32 CPU tensor.</param>
    /// <returns>A new contiguous float32 CPU tensor of the same shape.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="input"/> is null.</exception>
    /// <exception cref="ArgumentException"><paramref name="input"/> is not on the CPU or not float32.</exception>
    public static torch.Tensor Silu(torch.Tensor input)
    {
        TensorChecks.CpuFloat32(SiluName, input, nameof(input));
        torch.Tensor? copy = input.is_contiguous() ? null : input.contiguous();
        try
        {
            torch.Tensor x = copy ?? input;
            torch.Tensor result = torch.empty(TorchNative.Shape(x), torch.ScalarType.Float32, torch.CPU);
            long length = result.numel();
            if (length > 0)
            {
                CpuKernels.SiluCore(CpuTensorView.OfChecked(x).Pointer, CpuTensorView.OfChecked(result).Pointer, length);
            }

            return result;
        }
        finally
        {
            copy?.Dispose();
        }
    }

    /// <summary>
    /// <c>aten::rms_norm(Tensor input, int[] normalized_shape, Tensor? weight, float? eps)</c> over the last dimension:
    /// x / sqrt(mean(x², -1) + epsilon) * weight.
    /// </summary>
    /// <param name="input">A float32 CPU tensor with at least one dimension.</param>
    /// <param name="weight">A 1-D float32 CPU tensor as long as <paramref name="input"/>'s last dimension.</param>
    /// <param name="epsilon">Added to the mean of squares.</param>
    /// <returns>A new contiguous float32 CPU tensor of <paramref name="input"/>'s shape.</returns>
    /// <exception cref="ArgumentNullException">An argument is null.</exception>
    /// <exception cref="ArgumentException">An argument is not on the CPU or not float32, <paramref name="input"/> is 0-dimensional,
    /// or <paramref name="weight"/>'s shape is not [last dimension of <paramref name="input"/>].</exception>
    public static torch.Tensor RmsNorm(torch.Tensor input, torch.Tensor weight, double epsilon)
    {
        TensorChecks.CpuFloat32(RmsNormName, input, nameof(input));
        TensorChecks.CpuFloat32(RmsNormName, weight, nameof(weight));
        long[] shape = TorchNative.Shape(input);
        if (shape.Length == 0)
        {
            throw new ArgumentException($"{RmsNormName}: argument 'input' is 0-dimensional (shape []); it needs a last dimension to normalize.", nameof(input));
        }

        long rowLength = shape[^1];
        long[] weightShape = TorchNative.Shape(weight);
        if (weightShape.Length != 1 || weightShape[0] != rowLength)
        {
            throw new ArgumentException(
                $"{RmsNormName}: argument 'weight' has shape {TensorChecks.Format(weightShape)}, but it must be [{rowLength}], " +
                $"the last dimension of 'input' (shape {TensorChecks.Format(shape)}).",
                nameof(weight));
        }

        if (rowLength > int.MaxValue)
        {
            throw new ArgumentException($"{RmsNormName}: the last dimension of 'input' (shape {TensorChecks.Format(shape)}) exceeds {int.MaxValue}.", nameof(input));
        }

        torch.Tensor? inputCopy = input.is_contiguous() ? null : input.contiguous();
        torch.Tensor? weightCopy = weight.is_contiguous() ? null : weight.contiguous();
        try
        {
            torch.Tensor result = torch.empty(shape, torch.ScalarType.Float32, torch.CPU);
            long length = result.numel();
            if (length > 0)
            {
                CpuKernels.RmsNormCore(
                    CpuTensorView.OfChecked(inputCopy ?? input).Pointer,
                    CpuTensorView.OfChecked(weightCopy ?? weight).Pointer,
                    CpuTensorView.OfChecked(result).Pointer,
                    length / rowLength,
                    (int)rowLength,
                    epsilon);
            }

            return result;
        }
        finally
        {
            inputCopy?.Dispose();
            weightCopy?.Dispose();
        }
    }

    private static torch.Tensor Binary(string operatorName, torch.Tensor self, torch.Tensor other, float alpha, bool add)
    {
        TensorChecks.CpuFloat32(operatorName, self, nameof(self));
        TensorChecks.CpuFloat32(operatorName, other, nameof(other));
        long[] selfShape = TorchNative.Shape(self);
        long[] otherShape = TorchNative.Shape(other);
        long[] shape = selfShape;
        torch.Tensor? selfCopy = null;
        torch.Tensor? otherCopy = null;
        try
        {
            if (!TensorChecks.SameShape(selfShape, otherShape))
            {
                shape = TensorChecks.BroadcastShape(selfShape, otherShape)
                    ?? throw new ArgumentException(
                        $"{operatorName}: argument 'other' of shape {TensorChecks.Format(otherShape)} does not broadcast with " +
                        $"argument 'self' of shape {TensorChecks.Format(selfShape)}.",
                        nameof(other));
                selfCopy = TensorChecks.SameShape(shape, selfShape) ? null : ExpandedCopy(self, shape);
                otherCopy = TensorChecks.SameShape(shape, otherShape) ? null : ExpandedCopy(other, shape);
            }

            if (selfCopy is null && !self.is_contiguous())
            {
                selfCopy = self.contiguous();
            }

            if (otherCopy is null && !other.is_contiguous())
            {
                otherCopy = other.contiguous();
            }

            torch.Tensor result = torch.empty(shape, torch.ScalarType.Float32, torch.CPU);
            long length = result.numel();
            if (length > 0)
            {
                float* a = CpuTensorView.OfChecked(selfCopy ?? self).Pointer;
                float* b = CpuTensorView.OfChecked(otherCopy ?? other).Pointer;
                float* d = CpuTensorView.OfChecked(result).Pointer;
                if (add)
                {
                    CpuKernels.AddCore(a, b, alpha, d, length);
                }
                else
                {
                    CpuKernels.MulCore(a, b, d, length);
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

    private static torch.Tensor ExpandedCopy(torch.Tensor tensor, long[] shape)
    {
        using torch.Tensor expanded = tensor.expand(shape);
        return expanded.contiguous();
    }
}
