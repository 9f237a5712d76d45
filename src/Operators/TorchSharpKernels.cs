using TorchSharp;

namespace GemsInjector.Operators;

/// <summary>
/// The host's default kernels: TorchSharp's own operators, composed where TorchSharp has no single operator (rms_norm).
/// libtorch's native library loads only when one of them is first called.
/// </summary>
internal static class TorchSharpKernels
{
    public static torch.Tensor Add(torch.Tensor self, torch.Tensor other, double alpha) => self.add(other, alpha);

    public static torch.Tensor Mul(torch.Tensor self, torch.Tensor other) => self.mul(other);

    public static torch.Tensor Silu(torch.Tensor input) => torch.nn.functional.silu(input);

    public static torch.Tensor RmsNorm(torch.Tensor input, torch.Tensor weight, double epsilon)
    {
        using var scope = torch.NewDisposeScope();
        var meanSquare = input.square().mean([-1L], keepdim: true);
        var normalized = input * torch.rsqrt(meanSquare + epsilon) * weight;
        return normalized.MoveToOuterDisposeScope();
    }
}
