using GemsInjector.Operators;
using TorchSharp;

namespace GemsInjector;

/// <summary>
/// The operators as host code calls them. Each call goes to the kernel the <see cref="OperatorTable"/> holds now:
/// TorchSharp's by default, GemsInjector's once enabled.
/// </summary>
public static class Ops
{
    /// <summary><c>self + alpha * other</c>, broadcasting (<c>aten::add.Tensor</c>).</summary>
    public static torch.Tensor Add(torch.Tensor self, torch.Tensor other, double alpha = 1) => OperatorTable.Add.Kernel(self, other, alpha);

    /// <summary><c>self * other</c>, broadcasting (<c>aten::mul.Tensor</c>).</summary>
    public static torch.Tensor Mul(torch.Tensor self, torch.Tensor other) => OperatorTable.Mul.Kernel(self, other);

    /// <summary><c>x * sigmoid(x)</c> (<c>aten::silu</c>).</summary>
    public static torch.Tensor Silu(torch.Tensor input) => OperatorTable.Silu.Kernel(input);

    /// <summary>RMS normalization over the last dimension, scaled by <paramref name="weight"/> (<c>aten::rms_norm</c>).</summary>
    public static torch.Tensor RmsNorm(torch.Tensor input, torch.Tensor weight, double epsilon = 1e-6) => OperatorTable.RmsNorm.Kernel(input, weight, epsilon);
}
