using System;
using GemsInjector.Kernels.Cpu;
using TorchSharp;

namespace GemsInjector.Kernels.Tensors;

/// <summary>
/// A zero-copy float32 view of a contiguous TorchSharp CPU tensor's elements. It does not own the memory: the tensor
/// must stay alive (not disposed) while the view is used.
/// </summary>
public readonly unsafe struct CpuTensorView
{
    private CpuTensorView(float* pointer, long length)
    {
        Pointer = pointer;
        Length = length;
    }

    /// <summary>The address of the first element (storage offset applied); null for an empty tensor.</summary>
    public float* Pointer { get; }

    /// <summary>The number of elements.</summary>
    public long Length { get; }

    /// <summary>The elements as a span.</summary>
    /// <exception cref="OverflowException">The tensor has more than <see cref="int.MaxValue"/> elements.</exception>
    public Span<float> Span => new(Pointer, checked((int)Length));

    /// <summary>Creates a view of <paramref name="tensor"/>'s elements without copying them.</summary>
    /// <param name="tensor">A contiguous float32 CPU tensor.</param>
    /// <param name="argumentName">The name used in exception messages.</param>
    /// <returns>The view.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="tensor"/> is null.</exception>
    /// <exception cref="ArgumentException">The tensor is not on the CPU, not float32 or not contiguous.</exception>
    public static CpuTensorView Of(torch.Tensor tensor, string argumentName = "tensor")
    {
        KernelArguments.CpuFloat32("CpuTensorView.Of", tensor, argumentName);
        if (!tensor.is_contiguous())
        {
            throw new ArgumentException(
                $"CpuTensorView.Of: argument '{argumentName}' of shape {KernelArguments.Format(TorchNative.Shape(tensor))} is not contiguous; call .contiguous() first.",
                argumentName);
        }

        return OfChecked(tensor);
    }

    /// <summary>The view of a tensor already known to be a contiguous float32 CPU tensor.</summary>
    internal static CpuTensorView OfChecked(torch.Tensor tensor)
    {
        long length = tensor.numel();
        if (length == 0)
        {
            return new CpuTensorView(null, 0);
        }

        return new CpuTensorView(TorchNative.Data(tensor), length);
    }
}
