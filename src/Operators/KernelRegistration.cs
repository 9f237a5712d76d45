using System;
using System.Reflection;

namespace GemsInjector.Operators;

/// <summary>A kernel registered for an operator under one dispatch key, and where it comes from.</summary>
public sealed class KernelRegistration
{
    /// <summary>Registers <paramref name="kernel"/> for <paramref name="dispatchKey"/>; where it was registered is read from the delegate's method.</summary>
    public KernelRegistration(Delegate kernel, string dispatchKey)
    {
        ArgumentNullException.ThrowIfNull(kernel);
        ArgumentException.ThrowIfNullOrWhiteSpace(dispatchKey);
        Kernel = kernel;
        DispatchKey = dispatchKey;
        RegisteredAt = Describe(kernel.Method);
        ImplementationName = kernel.Method.Name;
    }

    /// <summary>
    /// Registers <paramref name="kernel"/>, an adapter that converts arguments for <paramref name="implementation"/>;
    /// the override log names the implementation rather than the adapter.
    /// </summary>
    internal static KernelRegistration Adapting(Delegate kernel, string dispatchKey, Delegate implementation) =>
        new(kernel, dispatchKey, Describe(implementation.Method), implementation.Method.Name);

    internal KernelRegistration(Delegate kernel, string dispatchKey, string registeredAt, string implementationName)
    {
        Kernel = kernel;
        DispatchKey = dispatchKey;
        RegisteredAt = registeredAt;
        ImplementationName = implementationName;
    }

    /// <summary>The kernel delegate.</summary>
    public Delegate Kernel { get; }

    /// <summary>The dispatch key the kernel serves (for example <c>CPU</c> or <c>CUDA</c>), as in PyTorch's dispatcher.</summary>
    public string DispatchKey { get; }

    /// <summary>The method and assembly that implement the kernel, for the override log: <c>Type.Method (Assembly Version)</c>.</summary>
    public string RegisteredAt { get; }

    /// <summary>The name of the method that implements the kernel (the CPU and ILGPU kernel classes name theirs alike).</summary>
    internal string ImplementationName { get; }

    internal static string Describe(MethodInfo method)
    {
        var type = method.DeclaringType;
        var assembly = (type?.Assembly ?? method.Module.Assembly).GetName();
        return $"{type?.FullName}.{method.Name} ({assembly.Name} {assembly.Version})";
    }
}
