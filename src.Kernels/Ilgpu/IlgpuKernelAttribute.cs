using System;

namespace GemsInjector.Kernels.Ilgpu;

/// <summary>
/// Marks a static method as an explicitly grouped ILGPU kernel entry point. The PTX test enumerates every method with
/// this attribute and compiles it for SM_90, so a new kernel cannot be left out of that check.
/// </summary>
[AttributeUsage(AttributeTargets.Method, Inherited = false)]
internal sealed class IlgpuKernelAttribute : Attribute
{
}
