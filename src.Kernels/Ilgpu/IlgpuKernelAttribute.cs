using System;

namespace GemsInjector.Kernels.Ilgpu;

/// <summary>
/// Marks a static method as an explicitly grouped ILGPU kernel entry point. The PTX test enumerates every method with
/// this attribute and compiles it for SM_90, so a new kernel cannot be left out of that check.
/// </summary>
[AttributeUsage(AttributeTargets.Method, Inherited = false)]
internal sealed class IlgpuKernelAttribute : Attribute
{
    /// <summary>
    /// Whether the kernel exists only for ILGPU's CPU accelerator (a tensor-core body with its warp operations emulated
    /// lane by lane, named <c>…Emulated</c>): never loaded on a GPU, so neither compiled to PTX by the tests nor shipped
    /// in the precompiled archive.
    /// </summary>
    public bool SimulatorOnly { get; init; }
}

/// <summary>
/// One instantiation of a generic kernel (type arguments are <see cref="IKernelConstant"/>s) that the kernels load. The
/// PTX test compiles each listed one; list the heaviest (most registers) last.
/// </summary>
[AttributeUsage(AttributeTargets.Method, Inherited = false, AllowMultiple = true)]
internal sealed class IlgpuKernelVariantAttribute : Attribute
{
    /// <summary>Names the instantiation.</summary>
    /// <param name="typeArguments">The kernel's type arguments, in order.</param>
    public IlgpuKernelVariantAttribute(params Type[] typeArguments) => TypeArguments = typeArguments;

    /// <summary>The kernel's type arguments, in order.</summary>
    public Type[] TypeArguments { get; }
}
