using TorchSharp;

namespace GemsInjector.Operators;

/// <summary>A kernel of one tensor: <c>silu</c>, <c>exp</c>, ...</summary>
public delegate torch.Tensor UnaryKernel(torch.Tensor input);

/// <summary>A kernel of two tensors that broadcast: <c>mul</c>, <c>div</c>, ...</summary>
public delegate torch.Tensor BinaryKernel(torch.Tensor self, torch.Tensor other);

/// <summary>A kernel of two tensors that broadcast, the second scaled: <c>add</c>, <c>sub</c> (<c>self + alpha * other</c>).</summary>
public delegate torch.Tensor ScaledBinaryKernel(torch.Tensor self, torch.Tensor other, double alpha);

/// <summary>A normalization over the last dimension with a weight: <c>rms_norm</c>.</summary>
public delegate torch.Tensor WeightedNormKernel(torch.Tensor input, torch.Tensor weight, double epsilon);
