using System;
using ILGPU;
using ILGPU.Runtime;

namespace GemsInjector.Kernels.Ilgpu;

public sealed partial class IlgpuKernels
{
    /// <summary>
    /// Fewest rows of C for which 16-bit products go to the tensor cores: just above the 16-bit GEMV's rows. Between 17
    /// and 63 rows most of each 128-row tile is empty, but the tensor cores still beat the CUDA-core kernel several times
    /// over (the grid is as large as at 64 rows, the time nearly the same); M ≤ 16 with unaligned rows keeps the CUDA-core kernel.
    /// </summary>
    internal const int TensorCoreMinRows = HalfGemvKernels.MaxRows + 1;

    private Action<KernelConfig, ArrayView<ushort>, ArrayView<ushort>, ArrayView<ushort>, ArrayView<ushort>, TensorCoreShape>? tensorCoreGemm16;

    /// <summary>
    /// Whether 16-bit mm, bmm and addmm may use the tensor-core kernel (mma.sync) on CUDA devices; on by default.
    /// Off, every 16-bit product takes the CUDA-core kernel (for comparisons).
    /// </summary>
    public bool TensorCoresEnabled { get; set; } = true;

    /// <summary>Whether a product of this shape goes to the tensor cores on this device.</summary>
    internal bool UsesTensorCores(int m, int k, int n) =>
        TensorCoresEnabled && device.Kind == IlgpuDeviceKind.Cuda && m >= TensorCoreMinRows && n >= 16 && k >= 16;

    /// <summary>Runs a checked 16-bit GEMM on the tensor cores when <see cref="UsesTensorCores"/> says so.</summary>
    /// <returns>Whether it ran.</returns>
    private bool TryTensorCoreGemm16(ArrayView<ushort> a, ArrayView<ushort> b, ArrayView<ushort> bias, ArrayView<ushort> c, int batch, int m, int k, int n,
        bool transposeB, float alpha, float beta, bool biasIsMatrix, HalfFormat format)
    {
        if (!UsesTensorCores(m, k, n))
        {
            return false;
        }

        var shape = TensorCoreLaunch.Shape(a, b, bias, m, k, n, transposeB, alpha, beta, biasIsMatrix, format == HalfFormat.BFloat16, asyncCopyAllowed: true);
        device.Load(ref tensorCoreGemm16, nameof(TensorCoreGemmKernels.Gemm16TensorCore),
            acc => acc.LoadStreamKernel<ArrayView<ushort>, ArrayView<ushort>, ArrayView<ushort>, ArrayView<ushort>, TensorCoreShape>(TensorCoreGemmKernels.Gemm16TensorCore))(
            TensorCoreLaunch.Config(batch, m, n), a, b, bias, c, shape);
        return true;
    }
}

/// <summary>Launch shape and arguments of <see cref="TensorCoreGemmKernels"/> (shared by the facade and the tests).</summary>
internal static class TensorCoreLaunch
{
    /// <summary>Grid (⌈N/128⌉, ⌈M/128⌉, batch) of 256-thread groups with the kernel's 48 KB of dynamic shared memory (four stages).</summary>
    public static KernelConfig Config(int batch, int m, int n) => new(
        new Index3D((n + TensorCoreGemmKernels.BlockN - 1) / TensorCoreGemmKernels.BlockN, (m + TensorCoreGemmKernels.BlockM - 1) / TensorCoreGemmKernels.BlockM, batch),
        new Index3D(TensorCoreGemmKernels.GroupSize, 1, 1),
        SharedMemoryConfig.RequestDynamic<ushort>(TensorCoreGemmKernels.SharedBytes / sizeof(ushort)));

    /// <summary>Floats of scratch the emulated kernel needs for this launch.</summary>
    public static long EmulationScratch(int batch, int m, int n)
    {
        var grid = Config(batch, m, n).GridDim;
        return (long)grid.X * grid.Y * grid.Z * TensorCoreGemmKernels.GroupSize * TensorCoreGemmKernels.Accumulators;
    }

    /// <summary>The address of the view's first element (the device pointer on CUDA), as the vectorised kernels read it.</summary>
    internal static long DeviceAddress(ArrayView<ushort> view)
    {
        // ArrayView<T>'s own Buffer / Index are internal in ILGPU 1.5.3; the interface exposes them.
        var contiguous = (IContiguousArrayView)view;
        return contiguous.Buffer.NativePtr.ToInt64() + contiguous.IndexInBytes;
    }

    /// <summary>
    /// The kernel's shape for contiguous a [batch, M, K], b [batch, K, N] (or [batch, N, K]), c [batch, M, N] and a bias
    /// [N] or [M, N]. Asynchronous 16-byte copies only when every staged chunk is 16-byte aligned in global memory.
    /// </summary>
    public static TensorCoreShape Shape(ArrayView<ushort> a, ArrayView<ushort> b, ArrayView<ushort> bias, int m, int k, int n, bool transposeB,
        float alpha, float beta, bool biasIsMatrix, bool bf16, bool asyncCopyAllowed)
    {
        long aPointer = 0, bPointer = 0;
        bool aligned = false;
        if (asyncCopyAllowed)
        {
            aPointer = DeviceAddress(a);
            bPointer = DeviceAddress(b);
            aligned = k % 8 == 0 && (transposeB || n % 8 == 0) && aPointer % 16 == 0 && bPointer % 16 == 0;
        }

        return new TensorCoreShape
        {
            M = m,
            N = n,
            K = k,
            TransposeB = transposeB ? 1 : 0,
            Bf16 = bf16 ? 1 : 0,
            AsyncCopy = aligned ? 1 : 0,
            APointer = aligned ? aPointer : 0,
            BPointer = aligned ? bPointer : 0,
            BatchA = (long)m * k,
            BatchB = (long)k * n,
            BatchC = (long)m * n,
            BatchBias = 0,
            StrideBiasM = biasIsMatrix ? n : 0,
            StrideBiasN = 1,
            Alpha = alpha,
            Beta = beta,
            HasBias = bias.Length != 0 ? 1 : 0,
        };
    }
}
