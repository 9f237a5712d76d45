using System.Collections.Generic;
using GemsInjector.Kernels.Cpu;
using GemsInjector.Kernels.Staging;

namespace GemsInjector.Operators;

/// <summary>
/// GemsInjector's kernels for each operator, per backend. The only place the runtime names the kernel assembly's
/// types: when GemsInjector.Kernels.dll is missing, the first call here throws the load failure that a worker's
/// start-up block reports as "Failed to import 'GemsInjector.Kernels'".
/// </summary>
internal static class GemsKernelCatalog
{
    public const string CpuBackend = "cpu";

    /// <summary>A <c>GEMS_CPU_THREADS</c> or <c>LOCAL_WORLD_SIZE</c> value the CPU kernels ignored (they never throw for one), or null.</summary>
    public static string? CpuThreadProblem => CpuThreadBudget.Problem;

    /// <summary>A warning for a <c>GEMS_GPU_OFFLOAD</c> value the GPU path ignored (it never throws for one), or null.</summary>
    public static string? OffloadProblem => OffloadWarning(GpuOffload.UnknownValue);

    /// <summary>The warning for an ignored <c>GEMS_GPU_OFFLOAD</c> value (quoted as every setting is, <see cref="GemsSettings.Show"/>), or null for none.</summary>
    internal static string? OffloadWarning(string? unknownValue) => unknownValue is null
        ? null
        : $"{GpuOffload.Variable}='{GemsSettings.Show(unknownValue)}' is neither auto nor always; it was ignored (auto: a GPU takes the calls whose work outweighs their copies).";

    private const string Cpu = "CPU";

    public static IReadOnlyList<(Operator Operator, KernelRegistration Kernel)> ForCpu() =>
    [
        (OperatorTable.Add, new KernelRegistration((ScaledBinaryKernel)CpuTensorKernels.Add, Cpu)),
        (OperatorTable.Sub, new KernelRegistration((ScaledBinaryKernel)CpuTensorKernels.Sub, Cpu)),
        (OperatorTable.Mul, new KernelRegistration((BinaryKernel)CpuTensorKernels.Mul, Cpu)),
        (OperatorTable.Div, new KernelRegistration((BinaryKernel)CpuTensorKernels.Div, Cpu)),
        (OperatorTable.Neg, new KernelRegistration((UnaryKernel)CpuTensorKernels.Neg, Cpu)),
        (OperatorTable.Exp, new KernelRegistration((UnaryKernel)CpuTensorKernels.Exp, Cpu)),
        (OperatorTable.Rsqrt, new KernelRegistration((UnaryKernel)CpuTensorKernels.Rsqrt, Cpu)),
        (OperatorTable.Relu, new KernelRegistration((UnaryKernel)CpuTensorKernels.Relu, Cpu)),
        (OperatorTable.Sigmoid, new KernelRegistration((UnaryKernel)CpuTensorKernels.Sigmoid, Cpu)),
        (OperatorTable.Tanh, new KernelRegistration((UnaryKernel)CpuTensorKernels.Tanh, Cpu)),
        (OperatorTable.Silu, new KernelRegistration((UnaryKernel)CpuTensorKernels.Silu, Cpu)),
        (OperatorTable.Gelu, KernelRegistration.Adapting(
            (GeluKernel)((input, approximate) => CpuTensorKernels.Gelu(input, ToKernel(approximate))), Cpu, CpuTensorKernels.Gelu)),
        (OperatorTable.SiluAndMul, new KernelRegistration((UnaryKernel)CpuTensorKernels.SiluAndMul, Cpu)),
        (OperatorTable.GeluAndMul, KernelRegistration.Adapting(
            (GeluKernel)((input, approximate) => CpuTensorKernels.GeluAndMul(input, ToKernel(approximate))), Cpu, CpuTensorKernels.GeluAndMul)),
        (OperatorTable.Softmax, new KernelRegistration((DimensionKernel)CpuTensorKernels.Softmax, Cpu)),
        (OperatorTable.LogSoftmax, new KernelRegistration((DimensionKernel)CpuTensorKernels.LogSoftmax, Cpu)),
        (OperatorTable.RmsNorm, new KernelRegistration((WeightedNormKernel)CpuTensorKernels.RmsNorm, Cpu)),
        (OperatorTable.FusedAddRmsNorm, new KernelRegistration((FusedAddNormKernel)CpuTensorKernels.FusedAddRmsNorm, Cpu)),
        (OperatorTable.LayerNorm, new KernelRegistration((LayerNormKernel)CpuTensorKernels.LayerNorm, Cpu)),
        (OperatorTable.RotaryEmbedding, new KernelRegistration((RotaryKernel)CpuTensorKernels.RotaryEmbedding, Cpu)),
        (OperatorTable.Embedding, new KernelRegistration((EmbeddingKernel)CpuTensorKernels.Embedding, Cpu)),
        (OperatorTable.Argmax, new KernelRegistration((ReductionKernel)CpuTensorKernels.Argmax, Cpu)),
        (OperatorTable.Sum, new KernelRegistration((ReductionKernel)CpuTensorKernels.Sum, Cpu)),
        (OperatorTable.Mean, new KernelRegistration((ReductionKernel)CpuTensorKernels.Mean, Cpu)),
        (OperatorTable.Amax, new KernelRegistration((ReductionKernel)CpuTensorKernels.Amax, Cpu)),
        (OperatorTable.TopK, new KernelRegistration((TopKKernel)CpuTensorKernels.TopK, Cpu)),
        (OperatorTable.Mm, new KernelRegistration((BinaryKernel)CpuTensorKernels.Mm, Cpu)),
        (OperatorTable.Addmm, new KernelRegistration((AddmmKernel)CpuTensorKernels.Addmm, Cpu)),
        (OperatorTable.Bmm, new KernelRegistration((BinaryKernel)CpuTensorKernels.Bmm, Cpu)),
        (OperatorTable.ScaledDotProductAttention, new KernelRegistration((AttentionKernel)CpuTensorKernels.ScaledDotProductAttention, Cpu)),
    ];

    public static IReadOnlyList<(Operator Operator, KernelRegistration Kernel)> ForIlgpu(IlgpuTensorKernels kernels) =>
    [
        (OperatorTable.Add, new KernelRegistration((ScaledBinaryKernel)kernels.Add, Cpu)),
        (OperatorTable.Sub, new KernelRegistration((ScaledBinaryKernel)kernels.Sub, Cpu)),
        (OperatorTable.Mul, new KernelRegistration((BinaryKernel)kernels.Mul, Cpu)),
        (OperatorTable.Div, new KernelRegistration((BinaryKernel)kernels.Div, Cpu)),
        (OperatorTable.Neg, new KernelRegistration((UnaryKernel)kernels.Neg, Cpu)),
        (OperatorTable.Exp, new KernelRegistration((UnaryKernel)kernels.Exp, Cpu)),
        (OperatorTable.Rsqrt, new KernelRegistration((UnaryKernel)kernels.Rsqrt, Cpu)),
        (OperatorTable.Relu, new KernelRegistration((UnaryKernel)kernels.Relu, Cpu)),
        (OperatorTable.Sigmoid, new KernelRegistration((UnaryKernel)kernels.Sigmoid, Cpu)),
        (OperatorTable.Tanh, new KernelRegistration((UnaryKernel)kernels.Tanh, Cpu)),
        (OperatorTable.Silu, new KernelRegistration((UnaryKernel)kernels.Silu, Cpu)),
        (OperatorTable.Gelu, KernelRegistration.Adapting(
            (GeluKernel)((input, approximate) => kernels.Gelu(input, ToKernel(approximate))), Cpu, kernels.Gelu)),
        (OperatorTable.SiluAndMul, new KernelRegistration((UnaryKernel)kernels.SiluAndMul, Cpu)),
        (OperatorTable.GeluAndMul, KernelRegistration.Adapting(
            (GeluKernel)((input, approximate) => kernels.GeluAndMul(input, ToKernel(approximate))), Cpu, kernels.GeluAndMul)),
        (OperatorTable.Softmax, new KernelRegistration((DimensionKernel)kernels.Softmax, Cpu)),
        (OperatorTable.LogSoftmax, new KernelRegistration((DimensionKernel)kernels.LogSoftmax, Cpu)),
        (OperatorTable.RmsNorm, new KernelRegistration((WeightedNormKernel)kernels.RmsNorm, Cpu)),
        (OperatorTable.FusedAddRmsNorm, new KernelRegistration((FusedAddNormKernel)kernels.FusedAddRmsNorm, Cpu)),
        (OperatorTable.LayerNorm, new KernelRegistration((LayerNormKernel)kernels.LayerNorm, Cpu)),
        (OperatorTable.RotaryEmbedding, new KernelRegistration((RotaryKernel)kernels.RotaryEmbedding, Cpu)),
        (OperatorTable.Embedding, new KernelRegistration((EmbeddingKernel)kernels.Embedding, Cpu)),
        (OperatorTable.Argmax, new KernelRegistration((ReductionKernel)kernels.Argmax, Cpu)),
        (OperatorTable.Sum, new KernelRegistration((ReductionKernel)kernels.Sum, Cpu)),
        (OperatorTable.Mean, new KernelRegistration((ReductionKernel)kernels.Mean, Cpu)),
        (OperatorTable.Amax, new KernelRegistration((ReductionKernel)kernels.Amax, Cpu)),
        (OperatorTable.TopK, new KernelRegistration((TopKKernel)kernels.TopK, Cpu)),
        (OperatorTable.Mm, new KernelRegistration((BinaryKernel)kernels.Mm, Cpu)),
        (OperatorTable.Addmm, new KernelRegistration((AddmmKernel)kernels.Addmm, Cpu)),
        (OperatorTable.Bmm, new KernelRegistration((BinaryKernel)kernels.Bmm, Cpu)),
        (OperatorTable.ScaledDotProductAttention, new KernelRegistration((AttentionKernel)kernels.ScaledDotProductAttention, Cpu)),
    ];

    private static Kernels.GeluApproximation ToKernel(GeluApproximation approximate) =>
        approximate == GeluApproximation.Tanh ? Kernels.GeluApproximation.Tanh : Kernels.GeluApproximation.None;
}
