using System;

namespace GemsInjector.Operators;

/// <summary>
/// One operator of the table: its schema, the default kernel the host brings (TorchSharp's), and the kernel that
/// calls go to now. Host code calls <see cref="Operator{TKernel}.Kernel"/> (through <see cref="Ops"/>), which costs a
/// field read and a delegate call: no look-up by name per call.
/// </summary>
public abstract class Operator
{
    private protected Operator(string name, string schema, KernelRegistration defaultKernel)
    {
        Name = name;
        Schema = schema;
        Default = defaultKernel;
    }

    /// <summary>The short name used in include / exclude lists and the status, for example <c>add</c>.</summary>
    public string Name { get; }

    /// <summary>The operator's schema, aten style (<c>aten::add.Tensor(...) -> Tensor</c>) or vLLM style (<c>_C::...</c>).</summary>
    public string Schema { get; }

    /// <summary>Where the schema is defined, for the override log.</summary>
    public string DefinedAt => $"{typeof(OperatorTable).FullName} ({typeof(OperatorTable).Assembly.GetName().Name})";

    /// <summary>The host's kernel, in place until GemsInjector is enabled and again after it is disabled.</summary>
    public KernelRegistration Default { get; }

    /// <summary>The kernel that calls go to now.</summary>
    public abstract KernelRegistration Current { get; }

    /// <summary>Whether the current kernel is not the default one.</summary>
    public bool IsOverridden => !ReferenceEquals(Current, Default);

    internal abstract void Register(KernelRegistration registration);

    internal abstract KernelRegistration Recording(KernelRegistration registration, CallRecorder recorder);

    /// <summary>The line PyTorch's dispatcher logs when a kernel replaces another, which the FlagGems recipe tells operators to look for.</summary>
    internal string OverrideLine(KernelRegistration previous, KernelRegistration replacement) =>
        "Overriding a previously registered kernel for the same operator and the same dispatch key "
        + $"operator: {Schema} registered at {DefinedAt} "
        + $"dispatch key: {replacement.DispatchKey} "
        + $"previous kernel: registered at {previous.RegisteredAt} "
        + $"new kernel: registered at {replacement.RegisteredAt}";
}

/// <summary>An operator whose kernels have the delegate type <typeparamref name="TKernel"/>.</summary>
public sealed class Operator<TKernel> : Operator
    where TKernel : Delegate
{
    private volatile KernelRegistration _current;
    private volatile TKernel _kernel;

    internal Operator(string name, string schema, TKernel defaultKernel, string dispatchKey)
        : base(name, schema, new KernelRegistration(defaultKernel, dispatchKey))
    {
        _current = Default;
        _kernel = defaultKernel;
    }

    /// <summary>The kernel to call now.</summary>
    public TKernel Kernel => _kernel;

    /// <inheritdoc/>
    public override KernelRegistration Current => _current;

    internal override void Register(KernelRegistration registration)
    {
        if (registration.Kernel is not TKernel kernel)
        {
            throw new ArgumentException(
                $"Operator '{Name}' takes kernels of type {typeof(TKernel).Name}, not {registration.Kernel.GetType().Name}.",
                nameof(registration));
        }

        // Callers read _kernel alone; _current is for reporting, so a reader never needs both at once.
        _kernel = kernel;
        _current = registration;
    }

    internal override KernelRegistration Recording(KernelRegistration registration, CallRecorder recorder)
    {
        var inner = (TKernel)registration.Kernel;
        var name = Name;
        var wrapped = NotifyingKernel.Wrap(inner, () => recorder.Note(name));
        return new KernelRegistration(wrapped, registration.DispatchKey, registration.RegisteredAt, registration.ImplementationName);
    }
}
