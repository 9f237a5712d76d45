using System.Collections.Generic;
using System.Linq;
using System.Threading;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.CSharp.Syntax;

namespace GemsInjector.Generators;

/// <summary>
/// The rules a <c>[GemsWorker]</c> class must meet for the generator to extend it. The generator skips a class that
/// breaks one; the analyzers report it (GEMS002, GEMS003, GEMS006, GEMS007). Shared so the two never disagree.
/// </summary>
internal static class WorkerRules
{
    /// <summary>The worker and each containing type, innermost first, that is declared without <c>partial</c>.</summary>
    public static List<INamedTypeSymbol> NonPartialTypes(INamedTypeSymbol worker, CancellationToken cancellationToken)
    {
        var result = new List<INamedTypeSymbol>();
        for (var type = worker; type is not null; type = type.ContainingType)
        {
            if (!IsPartial(type, cancellationToken))
            {
                result.Add(type);
            }
        }

        return result;
    }

    public static bool IsPartial(INamedTypeSymbol type, CancellationToken cancellationToken)
    {
        var references = type.DeclaringSyntaxReferences;
        if (references.Length == 0)
        {
            return false;
        }

        foreach (var reference in references)
        {
            if (reference.GetSyntax(cancellationToken) is TypeDeclarationSyntax declaration
                && declaration.Modifiers.Any(SyntaxKind.PartialKeyword))
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>Whether the worker or a containing type has type parameters (a module initializer cannot live in a generic type).</summary>
    public static bool IsGenericOrInGeneric(INamedTypeSymbol worker)
    {
        for (var type = worker; type is not null; type = type.ContainingType)
        {
            if (type.TypeParameters.Length > 0)
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>
    /// Whether code anywhere in the module can reach the worker: it and every containing type are public, internal or
    /// protected internal, and not file-local. A module initializer must be accessible at module level (CS8814).
    /// </summary>
    public static bool IsModuleAccessible(INamedTypeSymbol worker)
    {
        for (var type = worker; type is not null; type = type.ContainingType)
        {
            if (type.IsFileLocal)
            {
                return false;
            }

            switch (type.DeclaredAccessibility)
            {
                case Accessibility.Public:
                case Accessibility.Internal:
                case Accessibility.ProtectedOrInternal:
                    break;
                default:
                    return false;
            }
        }

        return true;
    }

    /// <summary>The attribute's <c>EnvironmentVariable</c> value, or <see langword="null"/> when it is not set (or not a string).</summary>
    public static string? AttributeVariable(AttributeData attribute)
    {
        foreach (var argument in attribute.NamedArguments)
        {
            if (argument.Key == KnownNames.EnvironmentVariableProperty
                && argument.Value.Kind == TypedConstantKind.Primitive
                && argument.Value.Value is string value)
            {
                return value;
            }
        }

        return null;
    }

    /// <summary>
    /// False when <c>EnvironmentVariable</c> is given something that is not a string constant (a compile error of its
    /// own): the generator then leaves the worker alone rather than guess.
    /// </summary>
    public static bool HasUsableVariableArgument(AttributeData attribute)
    {
        foreach (var argument in attribute.NamedArguments)
        {
            if (argument.Key == KnownNames.EnvironmentVariableProperty
                && (argument.Value.Kind == TypedConstantKind.Error || argument.Value.Value is not (null or string)))
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>
    /// The operator list set by <paramref name="property"/> (<c>Include</c> or <c>Exclude</c>): <see langword="null"/> when the
    /// argument is absent or <see langword="null"/>, else its elements in order (an element may be <see langword="null"/>).
    /// An empty array stays empty: it is not the same as no list.
    /// </summary>
    public static string?[]? OperatorList(AttributeData attribute, string property)
    {
        foreach (var argument in attribute.NamedArguments)
        {
            if (argument.Key != property || argument.Value.Kind != TypedConstantKind.Array || argument.Value.IsNull)
            {
                continue;
            }

            var values = argument.Value.Values;
            var result = new string?[values.Length];
            for (var i = 0; i < values.Length; i++)
            {
                result[i] = values[i].Value as string;
            }

            return result;
        }

        return null;
    }

    /// <summary>
    /// False when <c>Include</c> or <c>Exclude</c> is given something that is not an array of string constants (a compile
    /// error of its own): the generator then leaves the worker alone rather than guess.
    /// </summary>
    public static bool HasUsableListArguments(AttributeData attribute)
    {
        foreach (var argument in attribute.NamedArguments)
        {
            if (argument.Key is not (KnownNames.IncludeProperty or KnownNames.ExcludeProperty))
            {
                continue;
            }

            var value = argument.Value;
            if (value.Kind == TypedConstantKind.Error)
            {
                return false;
            }

            if (value.IsNull)
            {
                continue;
            }

            if (value.Kind != TypedConstantKind.Array)
            {
                return false;
            }

            foreach (var element in value.Values)
            {
                if (element.Kind == TypedConstantKind.Error || element.Kind == TypedConstantKind.Array || element.Value is not (null or string))
                {
                    return false;
                }
            }
        }

        return true;
    }

    /// <summary>The guard variable in force: the attribute's, else the MSBuild property's (when not empty), else the default.</summary>
    public static string ResolveGuardVariable(string? attributeVariable, string? msbuildVariable)
    {
        if (attributeVariable is not null)
        {
            return attributeVariable;
        }

        return string.IsNullOrEmpty(msbuildVariable) ? KnownNames.DefaultGuardVariable : msbuildVariable!;
    }

    /// <summary>The first <c>[GemsWorker]</c> application on <paramref name="type"/>, in declaration order.</summary>
    public static AttributeData? FindWorkerAttribute(INamedTypeSymbol type, INamedTypeSymbol? attributeType)
    {
        foreach (var attribute in type.GetAttributes())
        {
            var attributeClass = attribute.AttributeClass;
            if (attributeClass is null)
            {
                continue;
            }

            if (attributeType is not null
                ? SymbolEqualityComparer.Default.Equals(attributeClass, attributeType)
                : attributeClass.ToDisplayString() == KnownNames.GemsWorkerAttribute)
            {
                return attribute;
            }
        }

        return null;
    }

    /// <summary>
    /// The worker's first static field or readable static property, in declaration order, whose type is (or implements)
    /// <c>Microsoft.Extensions.Logging.ILogger</c>; <see langword="null"/> when it has none.
    /// </summary>
    public static string? FindLoggerMember(INamedTypeSymbol worker, INamedTypeSymbol? loggerType)
    {
        if (loggerType is null)
        {
            return null;
        }

        foreach (var member in worker.GetMembers())
        {
            if (!member.IsStatic || member.IsImplicitlyDeclared || !member.CanBeReferencedByName)
            {
                continue;
            }

            var type = member switch
            {
                IFieldSymbol field => field.Type,
                IPropertySymbol { IsIndexer: false, GetMethod: not null } property => property.Type,
                _ => null,
            };
            if (type is not null && IsLogger(type, loggerType))
            {
                return EscapeIdentifier(member.Name);
            }
        }

        return null;
    }

    private static bool IsLogger(ITypeSymbol type, INamedTypeSymbol loggerType)
        => SymbolEqualityComparer.Default.Equals(type, loggerType)
            || type.AllInterfaces.Any(i => SymbolEqualityComparer.Default.Equals(i, loggerType));

    /// <summary>
    /// An identifier as generated source writes it: <c>@class</c> for any keyword, contextual ones included (a type named
    /// <c>record</c> must be written <c>@record</c>; the escape is always legal).
    /// </summary>
    public static string EscapeIdentifier(string name)
        => SyntaxFacts.GetKeywordKind(name) != SyntaxKind.None || SyntaxFacts.GetContextualKeywordKind(name) != SyntaxKind.None
            ? "@" + name
            : name;
}
