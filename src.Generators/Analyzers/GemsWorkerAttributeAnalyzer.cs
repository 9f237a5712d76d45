using System.Collections.Immutable;
using GemsInjector.Generators.Diagnostics;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.CSharp.Syntax;
using Microsoft.CodeAnalysis.Diagnostics;

namespace GemsInjector.Generators.Analyzers;

/// <summary>
/// Explains each <c>[GemsWorker]</c> class the generator cannot extend: not partial (GEMS002), an invalid guard
/// variable (GEMS003), not accessible at module level (GEMS006), generic (GEMS007).
/// </summary>
[DiagnosticAnalyzer(LanguageNames.CSharp)]
public sealed class GemsWorkerAttributeAnalyzer : DiagnosticAnalyzer
{
    /// <inheritdoc/>
    public override ImmutableArray<DiagnosticDescriptor> SupportedDiagnostics { get; } = ImmutableArray.Create(
        DiagnosticDescriptors.WorkerNotPartial,
        DiagnosticDescriptors.InvalidGuardVariable,
        DiagnosticDescriptors.GenericWorker,
        DiagnosticDescriptors.InaccessibleWorker);

    /// <inheritdoc/>
    public override void Initialize(AnalysisContext context)
    {
        context.ConfigureGeneratedCodeAnalysis(GeneratedCodeAnalysisFlags.None);
        context.EnableConcurrentExecution();
        context.RegisterCompilationStartAction(static start =>
        {
            var attributeType = start.Compilation.GetTypeByMetadataName(KnownNames.GemsWorkerAttribute);
            if (attributeType is null)
            {
                return;
            }

            start.Options.AnalyzerConfigOptionsProvider.GlobalOptions.TryGetValue(
                KnownNames.EnvironmentVariableProperty_MSBuild, out var msbuildVariable);
            start.RegisterSymbolAction(symbolContext => Analyze(symbolContext, attributeType, msbuildVariable), SymbolKind.NamedType);
        });
    }

    private static void Analyze(SymbolAnalysisContext context, INamedTypeSymbol attributeType, string? msbuildVariable)
    {
        var type = (INamedTypeSymbol)context.Symbol;
        var cancellationToken = context.CancellationToken;
        ReportNonPartialContainer(context, type, attributeType);
        if (type.TypeKind != TypeKind.Class)
        {
            // [GemsWorker] elsewhere is the compiler's CS0592; the generator ignores it.
            return;
        }

        var attribute = WorkerRules.FindWorkerAttribute(type, attributeType);
        if (attribute is null)
        {
            return;
        }

        var workerLocation = AnalyzerHelpers.WorkerLocation(type, attribute, cancellationToken);
        var workerName = type.ToDisplayString();

        if (WorkerRules.IsGenericOrInGeneric(type))
        {
            context.ReportDiagnostic(Diagnostic.Create(DiagnosticDescriptors.GenericWorker, workerLocation, workerName));
        }

        if (!WorkerRules.IsModuleAccessible(type))
        {
            context.ReportDiagnostic(Diagnostic.Create(DiagnosticDescriptors.InaccessibleWorker, workerLocation, workerName));
        }

        if (!WorkerRules.IsPartial(type, cancellationToken))
        {
            context.ReportDiagnostic(Diagnostic.Create(
                DiagnosticDescriptors.WorkerNotPartial, workerLocation, workerName, workerName));
        }

        var attributeVariable = WorkerRules.AttributeVariable(attribute);
        if (attributeVariable is not null)
        {
            if (!KnownNames.IsValidVariableName(attributeVariable))
            {
                context.ReportDiagnostic(Diagnostic.Create(
                    DiagnosticDescriptors.InvalidGuardVariable,
                    ArgumentLocation(attribute, cancellationToken) ?? workerLocation,
                    SymbolDisplay.FormatLiteral(attributeVariable, quote: true),
                    workerName,
                    "[GemsWorker(EnvironmentVariable = ...)]"));
            }
        }
        else if (!string.IsNullOrEmpty(msbuildVariable) && !KnownNames.IsValidVariableName(msbuildVariable))
        {
            context.ReportDiagnostic(Diagnostic.Create(
                DiagnosticDescriptors.InvalidGuardVariable,
                workerLocation,
                SymbolDisplay.FormatLiteral(msbuildVariable!, quote: true),
                workerName,
                "the MSBuild property GemsEnvironmentVariable"));
        }
    }

    /// <summary>
    /// GEMS002 on a containing type: reported from the container's own symbol action so that the diagnostic stays
    /// local to the symbol that owns its location.
    /// </summary>
    private static void ReportNonPartialContainer(SymbolAnalysisContext context, INamedTypeSymbol type, INamedTypeSymbol attributeType)
    {
        if (type.GetTypeMembers().IsEmpty)
        {
            return;
        }

        var worker = FindNestedWorker(type, attributeType);
        if (worker is not null && !WorkerRules.IsPartial(type, context.CancellationToken))
        {
            context.ReportDiagnostic(Diagnostic.Create(
                DiagnosticDescriptors.WorkerNotPartial,
                AnalyzerHelpers.IdentifierLocation(type, context.CancellationToken),
                type.ToDisplayString(),
                worker.ToDisplayString()));
        }
    }

    private static INamedTypeSymbol? FindNestedWorker(INamedTypeSymbol container, INamedTypeSymbol attributeType)
    {
        foreach (var nested in container.GetTypeMembers())
        {
            if (nested.TypeKind == TypeKind.Class && WorkerRules.FindWorkerAttribute(nested, attributeType) is not null)
            {
                return nested;
            }

            if (FindNestedWorker(nested, attributeType) is { } deeper)
            {
                return deeper;
            }
        }

        return null;
    }

    private static Location? ArgumentLocation(AttributeData attribute, System.Threading.CancellationToken cancellationToken)
    {
        if (attribute.ApplicationSyntaxReference?.GetSyntax(cancellationToken) is not AttributeSyntax { ArgumentList: { } arguments })
        {
            return null;
        }

        foreach (var argument in arguments.Arguments)
        {
            if (argument.NameEquals?.Name.Identifier.ValueText == KnownNames.EnvironmentVariableProperty)
            {
                return argument.GetLocation();
            }
        }

        return null;
    }
}
