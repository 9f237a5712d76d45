namespace GemsInjector.Kernels;

/// <summary>
/// Names of the kernel back ends, as they are reported in status lines, logs and the operator table
/// (and accepted by the <c>GEMS_DEVICE</c> setting).
/// </summary>
public static class KernelBackends
{
    /// <summary>The managed SIMD CPU path (<see cref="Cpu.CpuKernels"/>, <see cref="Cpu.CpuTensorKernels"/>).</summary>
    public const string Cpu = "cpu";

    /// <summary>ILGPU kernels on an NVIDIA GPU.</summary>
    public const string Cuda = "cuda";

    /// <summary>ILGPU kernels through OpenCL.</summary>
    public const string OpenCL = "opencl";

    /// <summary>ILGPU's CPU accelerator: a GPU simulator that runs the GPU kernels for testing only.</summary>
    public const string IlgpuCpu = "ilgpu-cpu";
}
