using GemsInjector.Kernels.Cpu;
using GemsInjector.Kernels.Ilgpu;
using GemsInjector.Kernels.Staging;
using TorchSharp;

namespace GemsInjector.Kernels.Tests;

/// <summary>
/// The 30 operators with the operator table's signatures, so one list of hostile-input and guard-region cases runs on the CPU
/// kernels (<see cref="CpuTensorKernels"/>) and on the ILGPU bridge (<see cref="IlgpuTensorKernels"/>) alike.
/// </summary>
internal interface IOperatorKernels
{
    torch.Tensor Add(torch.Tensor self, torch.Tensor other, double alpha);
    torch.Tensor Sub(torch.Tensor self, torch.Tensor other, double alpha);
    torch.Tensor Mul(torch.Tensor self, torch.Tensor other);
    torch.Tensor Div(torch.Tensor self, torch.Tensor other);
    torch.Tensor Neg(torch.Tensor input);
    torch.Tensor Exp(torch.Tensor input);
    torch.Tensor Rsqrt(torch.Tensor input);
    torch.Tensor Relu(torch.Tensor input);
    torch.Tensor Sigmoid(torch.Tensor input);
    torch.Tensor Tanh(torch.Tensor input);
    torch.Tensor Silu(torch.Tensor input);
    torch.Tensor Gelu(torch.Tensor input, GeluApproximation approximate);
    torch.Tensor SiluAndMul(torch.Tensor input);
    torch.Tensor GeluAndMul(torch.Tensor input, GeluApproximation approximate);
    torch.Tensor Softmax(torch.Tensor input, long dim);
    torch.Tensor LogSoftmax(torch.Tensor input, long dim);
    torch.Tensor RmsNorm(torch.Tensor input, torch.Tensor weight, double epsilon);
    void FusedAddRmsNorm(torch.Tensor input, torch.Tensor residual, torch.Tensor weight, double epsilon);
    torch.Tensor LayerNorm(torch.Tensor input, torch.Tensor? weight, torch.Tensor? bias, double epsilon);
    void RotaryEmbedding(torch.Tensor positions, torch.Tensor query, torch.Tensor? key, long headSize, torch.Tensor cosSinCache, bool isNeox);
    torch.Tensor Embedding(torch.Tensor weight, torch.Tensor indices);
    torch.Tensor Argmax(torch.Tensor input, long? dim, bool keepdim);
    torch.Tensor Sum(torch.Tensor input, long? dim, bool keepdim);
    torch.Tensor Mean(torch.Tensor input, long? dim, bool keepdim);
    torch.Tensor Amax(torch.Tensor input, long? dim, bool keepdim);
    (torch.Tensor Values, torch.Tensor Indices) TopK(torch.Tensor input, long k, long dim, bool largest);
    torch.Tensor Mm(torch.Tensor self, torch.Tensor other);
    torch.Tensor Addmm(torch.Tensor self, torch.Tensor mat1, torch.Tensor mat2, double beta, double alpha);
    torch.Tensor Bmm(torch.Tensor self, torch.Tensor other);
    torch.Tensor ScaledDotProductAttention(torch.Tensor query, torch.Tensor key, torch.Tensor value, torch.Tensor? attentionMask, bool isCausal, double? scale);
}

/// <summary>The CPU kernels behind <see cref="IOperatorKernels"/>.</summary>
internal sealed class CpuOperatorKernels : IOperatorKernels
{
    public static readonly CpuOperatorKernels Instance = new();

    public torch.Tensor Add(torch.Tensor self, torch.Tensor other, double alpha) => CpuTensorKernels.Add(self, other, alpha);
    public torch.Tensor Sub(torch.Tensor self, torch.Tensor other, double alpha) => CpuTensorKernels.Sub(self, other, alpha);
    public torch.Tensor Mul(torch.Tensor self, torch.Tensor other) => CpuTensorKernels.Mul(self, other);
    public torch.Tensor Div(torch.Tensor self, torch.Tensor other) => CpuTensorKernels.Div(self, other);
    public torch.Tensor Neg(torch.Tensor input) => CpuTensorKernels.Neg(input);
    public torch.Tensor Exp(torch.Tensor input) => CpuTensorKernels.Exp(input);
    public torch.Tensor Rsqrt(torch.Tensor input) => CpuTensorKernels.Rsqrt(input);
    public torch.Tensor Relu(torch.Tensor input) => CpuTensorKernels.Relu(input);
    public torch.Tensor Sigmoid(torch.Tensor input) => CpuTensorKernels.Sigmoid(input);
    public torch.Tensor Tanh(torch.Tensor input) => CpuTensorKernels.Tanh(input);
    public torch.Tensor Silu(torch.Tensor input) => CpuTensorKernels.Silu(input);
    public torch.Tensor Gelu(torch.Tensor input, GeluApproximation approximate) => CpuTensorKernels.Gelu(input, approximate);
    public torch.Tensor SiluAndMul(torch.Tensor input) => CpuTensorKernels.SiluAndMul(input);
    public torch.Tensor GeluAndMul(torch.Tensor input, GeluApproximation approximate) => CpuTensorKernels.GeluAndMul(input, approximate);
    public torch.Tensor Softmax(torch.Tensor input, long dim) => CpuTensorKernels.Softmax(input, dim);
    public torch.Tensor LogSoftmax(torch.Tensor input, long dim) => CpuTensorKernels.LogSoftmax(input, dim);
    public torch.Tensor RmsNorm(torch.Tensor input, torch.Tensor weight, double epsilon) => CpuTensorKernels.RmsNorm(input, weight, epsilon);
    public void FusedAddRmsNorm(torch.Tensor input, torch.Tensor residual, torch.Tensor weight, double epsilon) => CpuTensorKernels.FusedAddRmsNorm(input, residual, weight, epsilon);
    public torch.Tensor LayerNorm(torch.Tensor input, torch.Tensor? weight, torch.Tensor? bias, double epsilon) => CpuTensorKernels.LayerNorm(input, weight, bias, epsilon);
    public void RotaryEmbedding(torch.Tensor positions, torch.Tensor query, torch.Tensor? key, long headSize, torch.Tensor cosSinCache, bool isNeox) =>
        CpuTensorKernels.RotaryEmbedding(positions, query, key, headSize, cosSinCache, isNeox);
    public torch.Tensor Embedding(torch.Tensor weight, torch.Tensor indices) => CpuTensorKernels.Embedding(weight, indices);
    public torch.Tensor Argmax(torch.Tensor input, long? dim, bool keepdim) => CpuTensorKernels.Argmax(input, dim, keepdim);
    public torch.Tensor Sum(torch.Tensor input, long? dim, bool keepdim) => CpuTensorKernels.Sum(input, dim, keepdim);
    public torch.Tensor Mean(torch.Tensor input, long? dim, bool keepdim) => CpuTensorKernels.Mean(input, dim, keepdim);
    public torch.Tensor Amax(torch.Tensor input, long? dim, bool keepdim) => CpuTensorKernels.Amax(input, dim, keepdim);
    public (torch.Tensor Values, torch.Tensor Indices) TopK(torch.Tensor input, long k, long dim, bool largest) => CpuTensorKernels.TopK(input, k, dim, largest);
    public torch.Tensor Mm(torch.Tensor self, torch.Tensor other) => CpuTensorKernels.Mm(self, other);
    public torch.Tensor Addmm(torch.Tensor self, torch.Tensor mat1, torch.Tensor mat2, double beta, double alpha) => CpuTensorKernels.Addmm(self, mat1, mat2, beta, alpha);
    public torch.Tensor Bmm(torch.Tensor self, torch.Tensor other) => CpuTensorKernels.Bmm(self, other);
    public torch.Tensor ScaledDotProductAttention(torch.Tensor query, torch.Tensor key, torch.Tensor value, torch.Tensor? attentionMask, bool isCausal, double? scale) =>
        CpuTensorKernels.ScaledDotProductAttention(query, key, value, attentionMask, isCausal, scale);
}

/// <summary>The ILGPU bridge (on the simulator device of the fixture) behind <see cref="IOperatorKernels"/>.</summary>
internal sealed class BridgeOperatorKernels : IOperatorKernels
{
    private readonly IlgpuTensorKernels k;

    public BridgeOperatorKernels(IlgpuTensorKernels kernels) => k = kernels;

    public torch.Tensor Add(torch.Tensor self, torch.Tensor other, double alpha) => k.Add(self, other, alpha);
    public torch.Tensor Sub(torch.Tensor self, torch.Tensor other, double alpha) => k.Sub(self, other, alpha);
    public torch.Tensor Mul(torch.Tensor self, torch.Tensor other) => k.Mul(self, other);
    public torch.Tensor Div(torch.Tensor self, torch.Tensor other) => k.Div(self, other);
    public torch.Tensor Neg(torch.Tensor input) => k.Neg(input);
    public torch.Tensor Exp(torch.Tensor input) => k.Exp(input);
    public torch.Tensor Rsqrt(torch.Tensor input) => k.Rsqrt(input);
    public torch.Tensor Relu(torch.Tensor input) => k.Relu(input);
    public torch.Tensor Sigmoid(torch.Tensor input) => k.Sigmoid(input);
    public torch.Tensor Tanh(torch.Tensor input) => k.Tanh(input);
    public torch.Tensor Silu(torch.Tensor input) => k.Silu(input);
    public torch.Tensor Gelu(torch.Tensor input, GeluApproximation approximate) => k.Gelu(input, approximate);
    public torch.Tensor SiluAndMul(torch.Tensor input) => k.SiluAndMul(input);
    public torch.Tensor GeluAndMul(torch.Tensor input, GeluApproximation approximate) => k.GeluAndMul(input, approximate);
    public torch.Tensor Softmax(torch.Tensor input, long dim) => k.Softmax(input, dim);
    public torch.Tensor LogSoftmax(torch.Tensor input, long dim) => k.LogSoftmax(input, dim);
    public torch.Tensor RmsNorm(torch.Tensor input, torch.Tensor weight, double epsilon) => k.RmsNorm(input, weight, epsilon);
    public void FusedAddRmsNorm(torch.Tensor input, torch.Tensor residual, torch.Tensor weight, double epsilon) => k.FusedAddRmsNorm(input, residual, weight, epsilon);
    public torch.Tensor LayerNorm(torch.Tensor input, torch.Tensor? weight, torch.Tensor? bias, double epsilon) => k.LayerNorm(input, weight, bias, epsilon);
    public void RotaryEmbedding(torch.Tensor positions, torch.Tensor query, torch.Tensor? key, long headSize, torch.Tensor cosSinCache, bool isNeox) =>
        k.RotaryEmbedding(positions, query, key, headSize, cosSinCache, isNeox);
    public torch.Tensor Embedding(torch.Tensor weight, torch.Tensor indices) => k.Embedding(weight, indices);
    public torch.Tensor Argmax(torch.Tensor input, long? dim, bool keepdim) => k.Argmax(input, dim, keepdim);
    public torch.Tensor Sum(torch.Tensor input, long? dim, bool keepdim) => k.Sum(input, dim, keepdim);
    public torch.Tensor Mean(torch.Tensor input, long? dim, bool keepdim) => k.Mean(input, dim, keepdim);
    public torch.Tensor Amax(torch.Tensor input, long? dim, bool keepdim) => k.Amax(input, dim, keepdim);
    public (torch.Tensor Values, torch.Tensor Indices) TopK(torch.Tensor input, long k, long dim, bool largest) => this.k.TopK(input, k, dim, largest);
    public torch.Tensor Mm(torch.Tensor self, torch.Tensor other) => k.Mm(self, other);
    public torch.Tensor Addmm(torch.Tensor self, torch.Tensor mat1, torch.Tensor mat2, double beta, double alpha) => k.Addmm(self, mat1, mat2, beta, alpha);
    public torch.Tensor Bmm(torch.Tensor self, torch.Tensor other) => k.Bmm(self, other);
    public torch.Tensor ScaledDotProductAttention(torch.Tensor query, torch.Tensor key, torch.Tensor value, torch.Tensor? attentionMask, bool isCausal, double? scale) =>
        k.ScaledDotProductAttention(query, key, value, attentionMask, isCausal, scale);
}

/// <summary>One ILGPU simulator device and its tensor kernels for the hostile-input and guard-region tests (kernels compile once).</summary>
public sealed class HostileBridgeFixture : System.IDisposable
{
    /// <summary>Creates the simulator device and its kernels.</summary>
    public HostileBridgeFixture() => Kernels = new IlgpuTensorKernels(IlgpuDevice.Create(IlgpuDeviceKind.CpuSimulator), ownsDevice: true);

    /// <summary>The bridge under test.</summary>
    public IlgpuTensorKernels Kernels { get; }

    internal IOperatorKernels Operators => new BridgeOperatorKernels(Kernels);

    /// <inheritdoc/>
    public void Dispose() => Kernels.Dispose();
}
