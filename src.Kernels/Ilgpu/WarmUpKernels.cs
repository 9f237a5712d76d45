using ILGPU;

namespace GemsInjector.Kernels.Ilgpu;

/// <summary>The kernel <see cref="IlgpuDevice.WarmUp"/> loads and runs: trivial, so its cost is ILGPU's own start.</summary>
internal static class WarmUpKernels
{
    /// <summary>
    /// Writes <paramref name="value"/> to <paramref name="flag"/>[0]. The other views are never touched: they, the type
    /// argument and the launch bounds the warm-up loads it with make its load and launch take the host code that most
    /// operators' kernels share (a generic kernel's cache name, launch bounds, a scalar argument, the view types of the
    /// vector kernels), so that code is compiled by the .NET JIT on the warm-up's thread instead of in a first call.
    /// </summary>
    /// <typeparam name="TInstance">Any kernel constant: the kernel is generic only to be loaded as generic kernels are.</typeparam>
    [IlgpuKernel]
    [IlgpuKernelVariant(typeof(Const1))]
    public static void Touch<TInstance>(ArrayView<int> flag, ArrayView<float> floats, ArrayView<Float4> vectors, ArrayView<Half8> halves, ArrayView<ushort> words, int value)
        where TInstance : struct, IKernelConstant
    {
        if (Grid.GlobalIndex.X == 0)
        {
            flag[0] = value;
        }
    }
}
