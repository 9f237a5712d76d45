using System.Collections.Generic;
using GemsInjector.Kernels.Cpu;

namespace GemsInjector.Operators;

/// <summary>
/// GemsInjector's kernels for each operator, per backend. The only place the runtime names the kernel assembly's
/// types: when GemsInjector.Kernels.dll is missing, the first call here throws the load failure that a worker's
/// start-up block reports as "Failed to import 'GemsInjector.Kernels'".
/// </summary>
internal static class GemsKernelCatalog
{
    public const string CpuBackend = "cpu";

    private const string Cpu = "CPU";

    public static IReadOnlyList<(Operator Operator, KernelRegistration Kernel)> ForCpu() =>
    [
        (OperatorTable.Add, new KernelRegistration((ScaledBinaryKernel)CpuTensorKernels.Add, Cpu)),
        (OperatorTable.Mul, new KernelRegistration((BinaryKernel)CpuTensorKernels.Mul, Cpu)),
        (OperatorTable.Silu, new KernelRegistration((UnaryKernel)CpuTensorKernels.Silu, Cpu)),
        (OperatorTable.RmsNorm, new KernelRegistration((WeightedNormKernel)CpuTensorKernels.RmsNorm, Cpu)),
        (OperatorTable.Mm, new KernelRegistration((BinaryKernel)CpuTensorKernels.Mm, Cpu)),
        (OperatorTable.Addmm, new KernelRegistration((AddmmKernel)CpuTensorKernels.Addmm, Cpu)),
        (OperatorTable.Bmm, new KernelRegistration((BinaryKernel)CpuTensorKernels.Bmm, Cpu)),
    ];

    private static Kernels.GeluApproximation ToKernel(GeluApproximation approximate) =>
        approximate == GeluApproximation.Tanh ? Kernels.GeluApproximation.Tanh : Kernels.GeluApproximation.None;
}
