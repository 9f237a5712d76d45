using TorchSharp;

namespace GemsInjector.Kernels.Cpu;

/// <summary>Binary elementwise kernels beyond add/mul: sub and div, broadcasting as aten does.</summary>
public static unsafe partial class CpuTensorKernels
{
    private const string SubName = "aten::sub.Tensor";
    private const string DivName = "aten::div.Tensor";

    /// <summary><c>aten::sub.Tensor(Tensor self, Tensor other, *, Scalar alpha=1)</c>: self - alpha * other, broadcasting as aten does.</summary>
    /// <param name="self">A float32, float16 or bfloat16 CPU tensor.</param>
    /// <param name="other">A CPU tensor of <paramref name="self"/>'s dtype whose shape broadcasts with <paramref name="self"/>'s.</param>
    /// <param name="alpha">The factor applied to <paramref name="other"/> first rounded to the tensors' dtype as aten does.</param>
    /// <returns>A new contiguous CPU tensor of the broadcast shape and the inputs' dtype.</returns>
    /// <exception cref="System.ArgumentNullException">An argument is null.</exception>
    /// <exception cref="System.ArgumentException">An argument is not on the CPU or not of a supported dtype, the dtypes differ, or the shapes do not broadcast.</exception>
    public static torch.Tensor Sub(torch.Tensor self, torch.Tensor other, double alpha) => Binary(SubName, self, other, -alpha, BinaryKind.Add);

    /// <summary><c>aten::div.Tensor(Tensor self, Tensor other)</c>: self / other (true division, IEEE at zero), broadcasting as aten does.</summary>
    /// <param name="self">A float32, float16 or bfloat16 CPU tensor.</param>
    /// <param name="other">A CPU tensor of <paramref name="self"/>'s dtype whose shape broadcasts with <paramref name="self"/>'s.</param>
    /// <returns>A new contiguous CPU tensor of the broadcast shape and the inputs' dtype.</returns>
    /// <exception cref="System.ArgumentNullException">An argument is null.</exception>
    /// <exception cref="System.ArgumentException">An argument is not on the CPU or not of a supported dtype, the dtypes differ, or the shapes do not broadcast.</exception>
    public static torch.Tensor Div(torch.Tensor self, torch.Tensor other) => Binary(DivName, self, other, 1.0, BinaryKind.Div);
}
