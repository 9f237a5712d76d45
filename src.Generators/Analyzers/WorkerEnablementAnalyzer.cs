using System;
using System.Collections.Generic;
using System.Collections.Immutable;
using System.Threading;
using GemsInjector.Generators.Diagnostics;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.Diagnostics;
using Microsoft.CodeAnalysis.Operations;

namespace GemsInjector.Generators.Analyzers;

/// <summary>
/// GEMS001: a worker class that would start without enabling GemsInjector. GEMS004: a <c>[GemsWorker]</c> class that
/// also calls <c>Gems.Enable</c> itself.
/// </summary>
[DiagnosticAnalyzer(LanguageNames.CSharp)]
public sealed class WorkerEnablementAnalyzer : DiagnosticAnalyzer
{
    /// <inheritdoc/>
    public override ImmutableArray<DiagnosticDescriptor> SupportedDiagnostics { get; } = ImmutableArray.Create(
        DiagnosticDescriptors.WorkerWithoutEnablement,
        DiagnosticDescriptors.RedundantEnable);

    /// <inheritdoc/>
    public override void Initialize(AnalysisContext context)
    {
        context.ConfigureGeneratedCodeAnalysis(GeneratedCodeAnalysisFlags.None);
        context.EnableConcurrentExecution();
        context.RegisterCompilationStartAction(static start =>
        {
            var compilation = start.Compilation;
            var workerAttribute = compilation.GetTypeByMetadataName(KnownNames.GemsWorkerAttribute);
            if (workerAttribute is null)
            {
                // GemsInjector is not referenced: there is nothing to suggest.
                return;
            }

            var options = start.Options.AnalyzerConfigOptionsProvider.GlobalOptions;
            options.TryGetValue(KnownNames.WorkerBaseTypesProperty, out var baseTypes);
            options.TryGetValue(KnownNames.NamingConventionProperty, out var convention);
            var settings = new Settings(
                workerAttribute,
                compilation.GetTypeByMetadataName(KnownNames.GemsWorkerBaseAttribute),
                compilation.GetTypeByMetadataName(KnownNames.Gems),
                AnalyzerHelpers.ParseTypeList(baseTypes),
                !string.Equals(convention?.Trim(), "false", StringComparison.OrdinalIgnoreCase));

            start.RegisterSymbolStartAction(symbolStart => OnType(symbolStart, settings), SymbolKind.NamedType);
        });
    }

    private static void OnType(SymbolStartAnalysisContext context, Settings settings)
    {
        var type = (INamedTypeSymbol)context.Symbol;
        if (type.TypeKind != TypeKind.Class)
        {
            return;
        }

        var workerAttribute = WorkerRules.FindWorkerAttribute(type, settings.WorkerAttribute);
        if (workerAttribute is not null)
        {
            context.RegisterOperationAction(
                operationContext =>
                {
                    var invocation = (IInvocationOperation)operationContext.Operation;
                    if (settings.IsEnable(invocation.TargetMethod)
                        && SymbolEqualityComparer.Default.Equals(operationContext.ContainingSymbol.ContainingType, type))
                    {
                        operationContext.ReportDiagnostic(Diagnostic.Create(
                            DiagnosticDescriptors.RedundantEnable, invocation.Syntax.GetLocation(), type.ToDisplayString()));
                    }
                },
                OperationKind.Invocation);
            return;
        }

        if (!IsWorker(type, settings))
        {
            return;
        }

        var enables = 0;
        context.RegisterOperationAction(
            operationContext =>
            {
                if (settings.IsEnable(((IInvocationOperation)operationContext.Operation).TargetMethod))
                {
                    Interlocked.Exchange(ref enables, 1);
                }
            },
            OperationKind.Invocation);
        context.RegisterSymbolEndAction(endContext =>
        {
            if (Volatile.Read(ref enables) == 0)
            {
                endContext.ReportDiagnostic(Diagnostic.Create(
                    DiagnosticDescriptors.WorkerWithoutEnablement,
                    AnalyzerHelpers.IdentifierLocation(type, endContext.CancellationToken),
                    type.ToDisplayString()));
            }
        });
    }

    /// <summary>
    /// A worker: a non-abstract class, not itself a declared base, that derives from or implements (transitively) a
    /// declared base type, or whose name follows the convention.
    /// </summary>
    private static bool IsWorker(INamedTypeSymbol type, Settings settings)
    {
        if (type.IsAbstract || settings.IsDeclaredBase(type))
        {
            return false;
        }

        for (var baseType = type.BaseType; baseType is not null; baseType = baseType.BaseType)
        {
            if (settings.IsDeclaredBase(baseType))
            {
                return true;
            }
        }

        foreach (var implemented in type.AllInterfaces)
        {
            if (settings.IsDeclaredBase(implemented))
            {
                return true;
            }
        }

        return settings.NamingConvention && type.Name.EndsWith(KnownNames.WorkerNameSuffix, StringComparison.Ordinal);
    }

    private sealed class Settings(
        INamedTypeSymbol workerAttribute,
        INamedTypeSymbol? workerBaseAttribute,
        INamedTypeSymbol? gems,
        HashSet<string> baseTypeNames,
        bool namingConvention)
    {
        public INamedTypeSymbol WorkerAttribute { get; } = workerAttribute;

        public bool NamingConvention { get; } = namingConvention;

        public bool IsEnable(IMethodSymbol method)
            => method.Name == KnownNames.EnableMethod
                && (gems is not null
                    ? SymbolEqualityComparer.Default.Equals(method.ContainingType, gems)
                    : method.ContainingType?.ToDisplayString() == KnownNames.Gems);

        public bool IsDeclaredBase(INamedTypeSymbol type)
        {
            var definition = type.OriginalDefinition;
            if (workerBaseAttribute is not null)
            {
                foreach (var attribute in definition.GetAttributes())
                {
                    if (SymbolEqualityComparer.Default.Equals(attribute.AttributeClass, workerBaseAttribute))
                    {
                        return true;
                    }
                }
            }

            return baseTypeNames.Count > 0
                && baseTypeNames.Contains(AnalyzerHelpers.Normalize(AnalyzerHelpers.MetadataName(definition)));
        }
    }
}
