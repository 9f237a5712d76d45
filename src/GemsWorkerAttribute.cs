using System;

namespace GemsInjector;

/// <summary>
/// Marks a model-runner class whose process must enable GemsInjector on start-up. The GemsInjector source
/// generator adds a module initializer to the class (which must be <c>partial</c>) that enables the kernels
/// when the guard environment variable is <c>1</c>, <c>true</c> or <c>yes</c>, and otherwise leaves the
/// default kernels in place. Every worker process that loads the assembly runs that initializer once.
/// </summary>
[AttributeUsage(AttributeTargets.Class, AllowMultiple = false, Inherited = false)]
public sealed class GemsWorkerAttribute : Attribute
{
    /// <summary>
    /// The environment variable that switches GemsInjector on for this worker. When not set here, the
    /// MSBuild property <c>GemsEnvironmentVariable</c> applies, and failing that <see cref="GemsGuard.DefaultVariable"/>.
    /// </summary>
    public string? EnvironmentVariable { get; set; }

    /// <summary>
    /// Only these operators are overridden in this worker (names from <see cref="Operators.OperatorNames"/>); the
    /// analyzer reports unknown names (GEMS005). Cannot be combined with <see cref="Exclude"/>.
    /// </summary>
    public string[]? Include { get; set; }

    /// <summary>These operators keep their default kernel in this worker; unknown names are reported (GEMS005).</summary>
    public string[]? Exclude { get; set; }
}
