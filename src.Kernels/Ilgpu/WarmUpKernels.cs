using ILGPU;

namespace GemsInjector.Kernels.Ilgpu;

/// <summary>The kernel <see cref="IlgpuDevice.WarmUp"/> loads and runs: trivial, so its cost is ILGPU's own start.</summary>
internal static class WarmUpKernels
{
    /// <summary>Writes 1 to <paramref name="flag"/>[0].</summary>
    [IlgpuKernel]
    public static void Touch(ArrayView<int> flag)
    {
        if (Grid.GlobalIndex.X == 0)
        {
            flag[0] = 1;
        }
    }
}
