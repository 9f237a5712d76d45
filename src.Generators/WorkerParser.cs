using System;
using System.Collections.Generic;
using System.Linq;
using System.Text;
using System.Threading;
using GemsInjector.Generators.Models;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;

namespace GemsInjector.Generators;

/// <summary>
/// Symbols → model: reads one <c>[GemsWorker]</c> class into a <see cref="WorkerCandidate"/>, or <see langword="null"/>
/// when the generator must leave it alone (the analyzers say why). Never throws on odd code.
/// </summary>
internal static class WorkerParser
{
    public static WorkerCandidate? Parse(GeneratorAttributeSyntaxContext context, CancellationToken cancellationToken)
    {
        try
        {
            if (context.TargetSymbol is not INamedTypeSymbol worker)
            {
                return null;
            }

            var attribute = context.Attributes.FirstOrDefault();
            if (attribute is null || !IsFirstApplication(worker, attribute, context.TargetNode))
            {
                return null;
            }

            var loggerType = context.SemanticModel.Compilation.GetTypeByMetadataName(KnownNames.ILogger);
            return Parse(worker, attribute, loggerType, cancellationToken);
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            // Odd code (syntax errors, misuse) must never break the user's build with a generator crash.
            return null;
        }
    }

    /// <summary>The model of <paramref name="worker"/>, or <see langword="null"/> when it breaks a <see cref="WorkerRules"/> rule.</summary>
    public static WorkerCandidate? Parse(
        INamedTypeSymbol worker,
        AttributeData attribute,
        INamedTypeSymbol? loggerType,
        CancellationToken cancellationToken)
    {
        if (worker.TypeKind != TypeKind.Class
            || !HasUsableNames(worker)
            || !WorkerRules.HasUsableVariableArgument(attribute)
            || !WorkerRules.HasUsableListArguments(attribute)
            || WorkerRules.IsGenericOrInGeneric(worker)
            || !WorkerRules.IsModuleAccessible(worker)
            || WorkerRules.NonPartialTypes(worker, cancellationToken).Count > 0)
        {
            return null;
        }

        var containers = new List<INamedTypeSymbol>();
        for (var type = worker.ContainingType; type is not null; type = type.ContainingType)
        {
            containers.Insert(0, type);
        }

        var namespaceParts = new List<string>();
        for (var ns = worker.ContainingNamespace; ns is { IsGlobalNamespace: false }; ns = ns.ContainingNamespace)
        {
            namespaceParts.Insert(0, ns.Name);
        }

        var escapedNamespace = namespaceParts.Count == 0
            ? null
            : string.Join(".", namespaceParts.Select(WorkerRules.EscapeIdentifier));

        var fullName = new StringBuilder();
        foreach (var part in namespaceParts)
        {
            fullName.Append(part).Append('.');
        }

        foreach (var container in containers)
        {
            fullName.Append(container.Name).Append('.');
        }

        fullName.Append(worker.Name);

        return new WorkerCandidate(
            escapedNamespace,
            containers.Select(c => new ContainingTypeModel(Keyword(c), WorkerRules.EscapeIdentifier(c.Name))).ToEquatableArray(),
            Keyword(worker),
            WorkerRules.EscapeIdentifier(worker.Name),
            fullName.ToString(),
            SafeHintName(fullName.ToString()) + ".GemsWorker.g.cs",
            WorkerRules.AttributeVariable(attribute),
            WorkerRules.FindLoggerMember(worker, loggerType),
            ToModel(WorkerRules.OperatorList(attribute, KnownNames.IncludeProperty)),
            ToModel(WorkerRules.OperatorList(attribute, KnownNames.ExcludeProperty)));
    }

    /// <summary>
    /// The guard variable against the MSBuild property: the model to emit, or <see langword="null"/> when the variable
    /// name is invalid (GEMS003).
    /// </summary>
    public static WorkerModel? Resolve(WorkerCandidate candidate, string? msbuildVariable)
    {
        var guard = WorkerRules.ResolveGuardVariable(candidate.AttributeVariable, msbuildVariable);
        return KnownNames.IsValidVariableName(guard) ? new WorkerModel(candidate, guard) : null;
    }

    /// <summary>A null element becomes "": Gems.Enable reads both as the (unknown) empty name.</summary>
    private static EquatableArray<string>? ToModel(string?[]? names) => names?.Select(name => name ?? "").ToEquatableArray();

    /// <summary>
    /// Whether the worker, its containers and its namespaces all have a name (code being typed may lack one: a
    /// <c>namespace ;</c> with no name yields a namespace named "", and "Ns." would not compile).
    /// </summary>
    private static bool HasUsableNames(INamedTypeSymbol worker)
    {
        for (var type = worker; type is not null; type = type.ContainingType)
        {
            if (string.IsNullOrEmpty(type.Name) || !SyntaxFacts.IsValidIdentifier(type.Name))
            {
                return false;
            }
        }

        for (var ns = worker.ContainingNamespace; ns is { IsGlobalNamespace: false }; ns = ns.ContainingNamespace)
        {
            if (string.IsNullOrEmpty(ns.Name) || !SyntaxFacts.IsValidIdentifier(ns.Name))
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>The full name with any character a file name should not hold replaced by '_'.</summary>
    private static string SafeHintName(string fullName)
    {
        var name = new StringBuilder(fullName.Length);
        foreach (var c in fullName)
        {
            name.Append(char.IsLetterOrDigit(c) || c is '.' or '_' or '-' or '+' or '`' ? c : '_');
        }

        return name.ToString();
    }

    /// <summary>The declaration keywords that a partial declaration of <paramref name="type"/> writes after <c>partial</c>'s modifiers.</summary>
    private static string Keyword(INamedTypeSymbol type)
    {
        switch (type.TypeKind)
        {
            case TypeKind.Struct:
                var prefix = type.IsRefLikeType ? "ref partial " : "partial ";
                return prefix + (type.IsRecord ? "record struct" : "struct");
            case TypeKind.Interface:
                return "partial interface";
            default:
                return type.IsRecord ? "partial record" : "partial class";
        }
    }

    /// <summary>
    /// Whether <paramref name="attribute"/> is the type's first <c>[GemsWorker]</c>, so that a type with the attribute on
    /// two partial declarations (an error of its own) still yields one file.
    /// </summary>
    private static bool IsFirstApplication(INamedTypeSymbol worker, AttributeData attribute, SyntaxNode targetNode)
    {
        var first = WorkerRules.FindWorkerAttribute(worker, attribute.AttributeClass);
        var reference = first?.ApplicationSyntaxReference;
        if (reference is null)
        {
            return true;
        }

        return reference.SyntaxTree == targetNode.SyntaxTree && targetNode.Span.Contains(reference.Span);
    }
}
