using System;
using GemsInjector.Kernels.Cpu;
using GemsInjector.Kernels.Ilgpu;
using GemsInjector.Kernels.Tensors;
using ILGPU;
using TorchSharp;

namespace GemsInjector.Kernels.Staging;

/// <summary>Element-wise operators and the gated activations.</summary>
public sealed unsafe partial class IlgpuTensorKernels
{
    private enum BinaryOp
    {
        Add,
        Sub,
        Mul,
        Div,
    }

    /// <summary><c>aten::add.Tensor</c>: self + alpha * other. Same-shape operands run on the device (float32, float16, bfloat16); broadcasting goes to <see cref="CpuTensorKernels.Add"/>.</summary>
    /// <param name="self">A float32, float16 or bfloat16 CPU tensor.</param>
    /// <param name="other">A CPU tensor of <paramref name="self"/>'s dtype whose shape broadcasts with it.</param>
    /// <param name="alpha">The factor on <paramref name="other"/>, rounded to the dtype as aten does.</param>
    /// <returns>A new contiguous CPU tensor.</returns>
    public torch.Tensor Add(torch.Tensor self, torch.Tensor other, double alpha) =>
        Binary(self, other, alpha, BinaryOp.Add) ?? CpuTensorKernels.Add(self, other, alpha);

    /// <summary><c>aten::sub.Tensor</c>: self - alpha * other (see <see cref="Add"/>).</summary>
    /// <param name="self">A float32, float16 or bfloat16 CPU tensor.</param>
    /// <param name="other">A CPU tensor of <paramref name="self"/>'s dtype whose shape broadcasts with it.</param>
    /// <param name="alpha">The factor on <paramref name="other"/>.</param>
    /// <returns>A new contiguous CPU tensor.</returns>
    public torch.Tensor Sub(torch.Tensor self, torch.Tensor other, double alpha) =>
        Binary(self, other, alpha, BinaryOp.Sub) ?? CpuTensorKernels.Sub(self, other, alpha);

    /// <summary><c>aten::mul.Tensor</c>: self * other (same shapes on the device, float32 and 16-bit; else the CPU kernel).</summary>
    /// <param name="self">A float32, float16 or bfloat16 CPU tensor.</param>
    /// <param name="other">A CPU tensor of <paramref name="self"/>'s dtype whose shape broadcasts with it.</param>
    /// <returns>A new contiguous CPU tensor.</returns>
    public torch.Tensor Mul(torch.Tensor self, torch.Tensor other) =>
        Binary(self, other, 1.0, BinaryOp.Mul) ?? CpuTensorKernels.Mul(self, other);

    /// <summary><c>aten::div.Tensor</c>: self / other (same shapes on the device, float32 and 16-bit; else the CPU kernel).</summary>
    /// <param name="self">A float32, float16 or bfloat16 CPU tensor.</param>
    /// <param name="other">A CPU tensor of <paramref name="self"/>'s dtype whose shape broadcasts with it.</param>
    /// <returns>A new contiguous CPU tensor.</returns>
    public torch.Tensor Div(torch.Tensor self, torch.Tensor other) =>
        Binary(self, other, 1.0, BinaryOp.Div) ?? CpuTensorKernels.Div(self, other);

    /// <summary><c>aten::neg</c>.</summary>
    /// <param name="input">A float32, float16 or bfloat16 CPU tensor.</param>
    /// <returns>A new contiguous CPU tensor.</returns>
    public torch.Tensor Neg(torch.Tensor input) => Unary(input, 7, HalfActivation.Neg) ?? CpuTensorKernels.Neg(input);

    /// <summary><c>aten::exp</c>.</summary>
    /// <param name="input">A float32, float16 or bfloat16 CPU tensor.</param>
    /// <returns>A new contiguous CPU tensor.</returns>
    public torch.Tensor Exp(torch.Tensor input) => Unary(input, 6, HalfActivation.Exp) ?? CpuTensorKernels.Exp(input);

    /// <summary><c>aten::rsqrt</c>.</summary>
    /// <param name="input">A float32, float16 or bfloat16 CPU tensor.</param>
    /// <returns>A new contiguous CPU tensor.</returns>
    public torch.Tensor Rsqrt(torch.Tensor input) => Unary(input, 8, HalfActivation.Rsqrt) ?? CpuTensorKernels.Rsqrt(input);

    /// <summary><c>aten::relu</c>.</summary>
    /// <param name="input">A float32, float16 or bfloat16 CPU tensor.</param>
    /// <returns>A new contiguous CPU tensor.</returns>
    public torch.Tensor Relu(torch.Tensor input) => Unary(input, 3, HalfActivation.Relu) ?? CpuTensorKernels.Relu(input);

    /// <summary><c>aten::sigmoid</c>.</summary>
    /// <param name="input">A float32, float16 or bfloat16 CPU tensor.</param>
    /// <returns>A new contiguous CPU tensor.</returns>
    public torch.Tensor Sigmoid(torch.Tensor input) => Unary(input, 4, HalfActivation.Sigmoid) ?? CpuTensorKernels.Sigmoid(input);

    /// <summary><c>aten::tanh</c>.</summary>
    /// <param name="input">A float32, float16 or bfloat16 CPU tensor.</param>
    /// <returns>A new contiguous CPU tensor.</returns>
    public torch.Tensor Tanh(torch.Tensor input) => Unary(input, 5, HalfActivation.Tanh) ?? CpuTensorKernels.Tanh(input);

    /// <summary><c>aten::silu</c>.</summary>
    /// <param name="input">A float32, float16 or bfloat16 CPU tensor.</param>
    /// <returns>A new contiguous CPU tensor.</returns>
    public torch.Tensor Silu(torch.Tensor input) => Unary(input, 0, HalfActivation.Silu) ?? CpuTensorKernels.Silu(input);

    /// <summary><c>aten::gelu</c>, erf (<see cref="GeluApproximation.None"/>) or tanh form.</summary>
    /// <param name="input">A float32, float16 or bfloat16 CPU tensor.</param>
    /// <param name="approximate">Which form of GELU.</param>
    /// <returns>A new contiguous CPU tensor.</returns>
    public torch.Tensor Gelu(torch.Tensor input, GeluApproximation approximate) => approximate switch
    {
        GeluApproximation.None => Unary(input, 1, HalfActivation.Gelu),
        GeluApproximation.Tanh => Unary(input, 2, HalfActivation.GeluTanh),
        _ => null,
    } ?? CpuTensorKernels.Gelu(input, approximate);

    /// <summary>vLLM's <c>_C::silu_and_mul</c>: [..., 2d] → [..., d], silu(gate) * up.</summary>
    /// <param name="input">A float32, float16 or bfloat16 CPU tensor whose last dimension is even.</param>
    /// <returns>A new contiguous CPU tensor [..., d].</returns>
    public torch.Tensor SiluAndMul(torch.Tensor input) => Gated(input, HalfActivation.Silu) ?? CpuTensorKernels.SiluAndMul(input);

    /// <summary>vLLM's <c>_C::gelu_and_mul</c> / <c>gelu_tanh_and_mul</c>: [..., 2d] → [..., d], gelu(gate) * up.</summary>
    /// <param name="input">A float32, float16 or bfloat16 CPU tensor whose last dimension is even.</param>
    /// <param name="approximate">Which form of GELU.</param>
    /// <returns>A new contiguous CPU tensor [..., d].</returns>
    public torch.Tensor GeluAndMul(torch.Tensor input, GeluApproximation approximate) => approximate switch
    {
        GeluApproximation.None => Gated(input, HalfActivation.Gelu),
        GeluApproximation.Tanh => Gated(input, HalfActivation.GeluTanh),
        _ => null,
    } ?? CpuTensorKernels.GeluAndMul(input, approximate);

    /// <summary>The device result of a same-shape binary operator, or null when the CPU kernel must take the call.</summary>
    private torch.Tensor? Binary(torch.Tensor self, torch.Tensor other, double alphaValue, BinaryOp op)
    {
        if (!Floating(self, out var dtype) || !Same(other, dtype))
        {
            return null;
        }

        long[] shape = TorchNative.Shape(self);
        if (!KernelArguments.SameShape(shape, TorchNative.Shape(other)) || !Launchable(Count(shape)))
        {
            return null;
        }

        float alpha = KernelArguments.RoundScalar(alphaValue, dtype);
        if (Is16(dtype))
        {
            return Launch(shape, dtype, (s, k) =>
            {
                ArrayView<ushort> a = s.Upload<ushort>(self), b = s.Upload<ushort>(other), y = s.Allocate<ushort>(a.Length);
                switch (op)
                {
                    case BinaryOp.Add:
                        k.Add(a, b, alpha, y, Format(dtype));
                        break;
                    case BinaryOp.Sub:
                        k.Sub(a, b, alpha, y, Format(dtype));
                        break;
                    case BinaryOp.Mul:
                        k.Mul(a, b, y, Format(dtype));
                        break;
                    default:
                        k.Div(a, b, y, Format(dtype));
                        break;
                }

                return y;
            });
        }

        return Launch(shape, dtype, (s, k) =>
        {
            ArrayView<float> a = s.Upload<float>(self), b = s.Upload<float>(other), y = s.Allocate<float>(a.Length);
            switch (op)
            {
                case BinaryOp.Add:
                    k.Add(a, b, alpha, y);
                    break;
                case BinaryOp.Sub:
                    k.Sub(a, b, alpha, y);
                    break;
                case BinaryOp.Mul:
                    k.Mul(a, b, y);
                    break;
                default:
                    k.Div(a, b, y);
                    break;
            }

            return y;
        });
    }

    /// <summary>
    /// The device result of an activation: <paramref name="slot"/> names the float32 kernel (0 silu, 1 gelu, 2 gelu-tanh, 3 relu,
    /// 4 sigmoid, 5 tanh, 6 exp, 7 neg, 8 rsqrt); <paramref name="half"/> the 16-bit one (null: none, the CPU kernel takes 16-bit input).
    /// </summary>
    private torch.Tensor? Unary(torch.Tensor input, int slot, HalfActivation? half)
    {
        if (!Floating(input, out var dtype) || (Is16(dtype) && half is null))
        {
            return null;
        }

        long[] shape = TorchNative.Shape(input);
        if (!Launchable(Count(shape)))
        {
            return null;
        }

        if (Is16(dtype))
        {
            return Launch(shape, dtype, (s, k) =>
            {
                ArrayView<ushort> x = s.Upload<ushort>(input), y = s.Allocate<ushort>(x.Length);
                k.Activation(x, y, half!.Value, Format(dtype));
                return y;
            });
        }

        return Launch(shape, dtype, (s, k) =>
        {
            ArrayView<float> x = s.Upload<float>(input), y = s.Allocate<float>(x.Length);
            switch (slot)
            {
                case 0:
                    k.Silu(x, y);
                    break;
                case 1:
                    k.Gelu(x, y, GeluApproximation.None);
                    break;
                case 2:
                    k.Gelu(x, y, GeluApproximation.Tanh);
                    break;
                case 3:
                    k.Relu(x, y);
                    break;
                case 4:
                    k.Sigmoid(x, y);
                    break;
                case 5:
                    k.Tanh(x, y);
                    break;
                case 6:
                    k.Exp(x, y);
                    break;
                case 7:
                    k.Neg(x, y);
                    break;
                default:
                    k.Rsqrt(x, y);
                    break;
            }

            return y;
        });
    }

    /// <summary>The device result of a gated product (Silu, Gelu or GeluTanh), or null for the CPU kernel.</summary>
    private torch.Tensor? Gated(torch.Tensor input, HalfActivation activation)
    {
        if (!Floating(input, out var dtype))
        {
            return null;
        }

        long[] shape = TorchNative.Shape(input);
        if (shape.Length == 0 || shape[^1] % 2 != 0 || !Launchable(Count(shape)))
        {
            return null;
        }

        long half = shape[^1] / 2;
        long rows = Count(shape) / shape[^1];
        var outputShape = (long[])shape.Clone();
        outputShape[^1] = half;
        if (Is16(dtype))
        {
            return Launch(outputShape, dtype, (s, k) =>
            {
                ArrayView<ushort> x = s.Upload<ushort>(input), y = s.Allocate<ushort>(rows * half);
                k.GatedAndMul(x, y, (int)rows, (int)half, activation, Format(dtype));
                return y;
            });
        }

        return Launch(outputShape, dtype, (s, k) =>
        {
            ArrayView<float> x = s.Upload<float>(input), y = s.Allocate<float>(rows * half);
            if (activation == HalfActivation.Silu)
            {
                k.SiluAndMul(x, y, (int)rows, (int)half);
            }
            else
            {
                k.GeluAndMul(x, y, (int)rows, (int)half, activation == HalfActivation.GeluTanh ? GeluApproximation.Tanh : GeluApproximation.None);
            }

            return y;
        });
    }
}
