using Microsoft.CodeAnalysis;

namespace GemsInjector.Generators.Diagnostics;

/// <summary>The GemsInjector diagnostics. Each has a page under docs/diagnostics and a line in AnalyzerReleases.</summary>
internal static class DiagnosticDescriptors
{
    public const string Category = "GemsInjector";

    public const string WorkerWithoutEnablementId = "GEMS001";
    public const string WorkerNotPartialId = "GEMS002";
    public const string InvalidGuardVariableId = "GEMS003";
    public const string RedundantEnableId = "GEMS004";
    public const string UnknownOperatorId = "GEMS005";
    public const string InaccessibleWorkerId = "GEMS006";
    public const string GenericWorkerId = "GEMS007";
    public const string IncludeAndExcludeId = "GEMS008";

    private static string HelpLink(string id) => $"https://github.com/gemsinjector/gemsinjector/blob/main/docs/diagnostics/{id}.md";

    /// <summary>GEMS001: {0} = the worker class.</summary>
    public static readonly DiagnosticDescriptor WorkerWithoutEnablement = new(
        WorkerWithoutEnablementId,
        title: "Worker class starts without enabling GemsInjector",
        messageFormat: "The worker class '{0}' never enables GemsInjector, so its processes run on the default kernels: mark it [GemsWorker] (and partial)",
        Category,
        DiagnosticSeverity.Warning,
        isEnabledByDefault: true,
        description: "A model-runner class (it derives from a [GemsWorkerBase] type, from a type listed in the MSBuild property GemsWorkerBaseTypes, or its name ends in ModelRunner) neither has [GemsWorker] nor calls Gems.Enable. In a distributed job each worker process must enable GemsInjector for itself.",
        helpLinkUri: HelpLink(WorkerWithoutEnablementId));

    /// <summary>GEMS002: {0} = the type that lacks partial, {1} = the worker class.</summary>
    public static readonly DiagnosticDescriptor WorkerNotPartial = new(
        WorkerNotPartialId,
        title: "[GemsWorker] class and its containing types must be partial",
        messageFormat: "'{0}' must be declared partial so that GemsInjector can add the start-up code to the [GemsWorker] class '{1}'",
        Category,
        DiagnosticSeverity.Error,
        isEnabledByDefault: true,
        description: "The generator adds a partial declaration of the [GemsWorker] class holding its module initializer; the class and every type that contains it must be partial. Nothing is generated for this class until they are.",
        helpLinkUri: HelpLink(WorkerNotPartialId));

    /// <summary>GEMS003: {0} = the variable name as a C# literal, {1} = the worker class, {2} = where it was set.</summary>
    public static readonly DiagnosticDescriptor InvalidGuardVariable = new(
        InvalidGuardVariableId,
        title: "Invalid guard environment variable name",
        messageFormat: "The guard variable {0} of the [GemsWorker] class '{1}' (set by {2}) is not a usable environment variable name: it must be non-empty and hold no white space, '=' or NUL; no start-up code is generated for this class",
        Category,
        DiagnosticSeverity.Warning,
        isEnabledByDefault: true,
        description: "The environment variable that switches GemsInjector on must be a name the operating system accepts. Until it is, the worker gets no start-up code and always runs on the default kernels.",
        helpLinkUri: HelpLink(InvalidGuardVariableId));

    /// <summary>GEMS004: {0} = the worker class.</summary>
    public static readonly DiagnosticDescriptor RedundantEnable = new(
        RedundantEnableId,
        title: "Redundant Gems.Enable call in a [GemsWorker] class",
        messageFormat: "'{0}' is marked [GemsWorker], which already enables GemsInjector on start-up behind its guard variable; this call to Gems.Enable is redundant and ignores the guard",
        Category,
        DiagnosticSeverity.Info,
        isEnabledByDefault: true,
        description: "A [GemsWorker] class gets a module initializer that enables GemsInjector when its guard variable asks for it. Calling Gems.Enable as well enables it regardless of the guard.",
        helpLinkUri: HelpLink(RedundantEnableId));

    /// <summary>
    /// GEMS005: {0} = the unknown name as a C# literal, {1} = <c>Include</c> or <c>Exclude</c>, {2} = the worker class,
    /// {3} = the suggestion (nearest known names, or where the names are listed).
    /// </summary>
    public static readonly DiagnosticDescriptor UnknownOperator = new(
        UnknownOperatorId,
        title: "Unknown operator name in [GemsWorker] Include/Exclude",
        messageFormat: "The referenced GemsInjector defines no operator named {0} ([GemsWorker] {1} of '{2}'), so this worker would fall back to the default kernels whenever it enables GemsInjector; {3}",
        Category,
        DiagnosticSeverity.Warning,
        isEnabledByDefault: true,
        description: "Every name in [GemsWorker(Include = ...)] or [GemsWorker(Exclude = ...)] must be one of the operator names the referenced GemsInjector assembly defines (the constants of GemsInjector.Operators.OperatorNames). Gems.Enable rejects an unknown name, and the worker then starts on the default kernels.",
        helpLinkUri: HelpLink(UnknownOperatorId));

    /// <summary>GEMS006: {0} = the worker class.</summary>
    public static readonly DiagnosticDescriptor InaccessibleWorker = new(
        InaccessibleWorkerId,
        title: "[GemsWorker] class must be accessible at module level",
        messageFormat: "The [GemsWorker] class '{0}' is private, protected or file-local, or nested in such a type; its module initializer would not be accessible at module level, so no start-up code is generated",
        Category,
        DiagnosticSeverity.Error,
        isEnabledByDefault: true,
        description: "A module initializer must be accessible from anywhere in its module (CS8814). The [GemsWorker] class and each type that contains it must be public, internal or protected internal, and not file-local.",
        helpLinkUri: HelpLink(InaccessibleWorkerId));

    /// <summary>GEMS007: {0} = the worker class.</summary>
    public static readonly DiagnosticDescriptor GenericWorker = new(
        GenericWorkerId,
        title: "[GemsWorker] class cannot be generic",
        messageFormat: "The [GemsWorker] class '{0}' is generic or nested in a generic type; a module initializer cannot live in a generic type, so no start-up code is generated: put [GemsWorker] on a non-generic class",
        Category,
        DiagnosticSeverity.Error,
        isEnabledByDefault: true,
        description: "A module initializer must not be in a generic type. Mark a non-generic class instead, for example a closed derived class or a small non-generic class of the worker's assembly.",
        helpLinkUri: HelpLink(GenericWorkerId));

    /// <summary>GEMS008: {0} = the worker class.</summary>
    public static readonly DiagnosticDescriptor IncludeAndExclude = new(
        IncludeAndExcludeId,
        title: "[GemsWorker] sets both Include and Exclude",
        messageFormat: "The [GemsWorker] attribute of '{0}' sets both Include and Exclude; Gems.Enable rejects that, so this worker would fall back to the default kernels whenever it enables GemsInjector: keep one of the two lists",
        Category,
        DiagnosticSeverity.Warning,
        isEnabledByDefault: true,
        description: "Include names the operators to override, Exclude the operators to keep; a worker can say one or the other. With both set, Gems.Enable throws a GemsConfigurationException, the generated start-up code catches it, and the worker runs on the default kernels.",
        helpLinkUri: HelpLink(IncludeAndExcludeId));
}
