namespace GemsInjector.Generators;

/// <summary>
/// The runtime names the generator and the analyzers know as strings: src.Generators references no project of
/// ours, so these must stay in step with src/ by hand.
/// </summary>
internal static class KnownNames
{
    public const string GemsWorkerAttribute = "GemsInjector.GemsWorkerAttribute";
    public const string GemsWorkerBaseAttribute = "GemsInjector.GemsWorkerBaseAttribute";
    public const string Gems = "GemsInjector.Gems";
    public const string EnableMethod = "Enable";
    public const string ILogger = "Microsoft.Extensions.Logging.ILogger";
    public const string EnvironmentVariableProperty = "EnvironmentVariable";
    public const string IncludeProperty = "Include";
    public const string ExcludeProperty = "Exclude";

    /// <summary>
    /// The runtime's list of operator names: one <c>public const string</c> per operator. GEMS005 reads the names from
    /// this type in the referenced assembly, never from a copy here, so a newer or older runtime is judged by its own list.
    /// </summary>
    public const string OperatorNames = "GemsInjector.Operators.OperatorNames";

    /// <summary>Mirrors <c>GemsInjector.GemsGuard.DefaultVariable</c>.</summary>
    public const string DefaultGuardVariable = "USE_FLAGGEMS";

    /// <summary>The naming convention that makes a class a worker (switched off by <see cref="NamingConventionProperty"/> = false).</summary>
    public const string WorkerNameSuffix = "ModelRunner";

    /// <summary>MSBuild properties read through <c>build_property.*</c> (the package must declare them CompilerVisibleProperty).</summary>
    public const string EnvironmentVariableProperty_MSBuild = "build_property.GemsEnvironmentVariable";
    public const string WorkerBaseTypesProperty = "build_property.GemsWorkerBaseTypes";
    public const string NamingConventionProperty = "build_property.GemsWorkerNamingConvention";

    /// <summary>Names of the members the generator adds to each worker.</summary>
    public const string InitializerMethod = "GemsInjector_EnableOnStartup";
    public const string EnableKernelsMethod = "GemsInjector_EnableKernels";

    /// <summary>
    /// Mirrors <c>GemsInjector.GemsGuard.IsValidVariableName</c>: not empty, no white space, no '=', no NUL.
    /// </summary>
    public static bool IsValidVariableName(string? name)
    {
        if (name is null || name.Length == 0)
        {
            return false;
        }

        foreach (var c in name)
        {
            if (c == '=' || c == '\0' || char.IsWhiteSpace(c))
            {
                return false;
            }
        }

        return true;
    }
}
