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
}
