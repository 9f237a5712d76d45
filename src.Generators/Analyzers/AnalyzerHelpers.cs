using System;
using System.Collections.Generic;
using System.Linq;
using System.Threading;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp.Syntax;

namespace GemsInjector.Generators.Analyzers;

internal static class AnalyzerHelpers
{
    /// <summary>The identifier of the declaration that carries <paramref name="attribute"/>, else the type's first location.</summary>
    public static Location WorkerLocation(INamedTypeSymbol type, AttributeData? attribute, CancellationToken cancellationToken)
    {
        var declaration = attribute?.ApplicationSyntaxReference?.GetSyntax(cancellationToken)
            .AncestorsAndSelf().OfType<TypeDeclarationSyntax>().FirstOrDefault();
        return declaration?.Identifier.GetLocation() ?? IdentifierLocation(type, cancellationToken);
    }

    /// <summary>The identifier of the type's first declaration.</summary>
    public static Location IdentifierLocation(INamedTypeSymbol type, CancellationToken cancellationToken)
    {
        foreach (var reference in type.DeclaringSyntaxReferences)
        {
            if (reference.GetSyntax(cancellationToken) is TypeDeclarationSyntax declaration)
            {
                return declaration.Identifier.GetLocation();
            }
        }

        return type.Locations.FirstOrDefault() ?? Location.None;
    }

    /// <summary>The full metadata name of a type, with <c>+</c> between nested types (<c>Ns.Outer+Inner`1</c>).</summary>
    public static string MetadataName(INamedTypeSymbol type)
    {
        var name = type.MetadataName;
        for (var container = type.ContainingType; container is not null; container = container.ContainingType)
        {
            name = container.MetadataName + "+" + name;
        }

        // From the namespaces' own names, not ToDisplayString: display text escapes keywords ("@class"), while the
        // metadata name (and so the MSBuild list) has none.
        for (var ns = type.ContainingNamespace; ns is { IsGlobalNamespace: false }; ns = ns.ContainingNamespace)
        {
            name = ns.MetadataName + "." + name;
        }

        return name;
    }

    /// <summary>Splits the MSBuild list <c>GemsWorkerBaseTypes</c> (';' or ',' separated) into normalized names.</summary>
    public static HashSet<string> ParseTypeList(string? value)
    {
        var names = new HashSet<string>(StringComparer.Ordinal);
        if (string.IsNullOrEmpty(value))
        {
            return names;
        }

        foreach (var part in value!.Split(new[] { ';', ',' }, StringSplitOptions.RemoveEmptyEntries))
        {
            var name = part.Trim();
            if (name.StartsWith("global::", StringComparison.Ordinal))
            {
                name = name.Substring("global::".Length);
            }

            if (name.Length > 0)
            {
                names.Add(Normalize(name));
            }
        }

        return names;
    }

    /// <summary>Nested-type separators compare equal either way (<c>Outer+Inner</c> or <c>Outer.Inner</c>).</summary>
    public static string Normalize(string metadataName) => metadataName.Replace('+', '.');
}
