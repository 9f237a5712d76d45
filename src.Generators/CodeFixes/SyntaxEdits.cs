using System.Collections.Generic;
using System.Linq;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.CSharp.Syntax;

namespace GemsInjector.CodeFixes;

/// <summary>The syntax edits the GemsInjector code fixes share. Plain syntax with explicit trivia: predictable output.</summary>
internal static class SyntaxEdits
{
    /// <summary><paramref name="declaration"/> and every type declaration that contains it, innermost first.</summary>
    public static List<TypeDeclarationSyntax> Chain(TypeDeclarationSyntax declaration)
        => declaration.AncestorsAndSelf().OfType<TypeDeclarationSyntax>().ToList();

    /// <summary>The declaration with <c>partial</c> added just before its keyword, unless it has it already.</summary>
    public static TypeDeclarationSyntax AddPartial(TypeDeclarationSyntax declaration)
    {
        if (declaration.Modifiers.Any(SyntaxKind.PartialKeyword))
        {
            return declaration;
        }

        var partial = SyntaxFactory.Token(SyntaxKind.PartialKeyword).WithTrailingTrivia(SyntaxFactory.Space);
        if (declaration.Modifiers.Count > 0)
        {
            return declaration.WithModifiers(declaration.Modifiers.Add(partial));
        }

        var keyword = declaration.Keyword;
        return declaration
            .WithKeyword(keyword.WithLeadingTrivia())
            .WithModifiers(SyntaxFactory.TokenList(partial.WithLeadingTrivia(keyword.LeadingTrivia)));
    }

    /// <summary>The declaration with <c>[<paramref name="attributeName"/>]</c> on its own line before its other attributes.</summary>
    public static TypeDeclarationSyntax AddAttribute(TypeDeclarationSyntax declaration, string attributeName, string endOfLine)
    {
        var leading = declaration.GetLeadingTrivia();
        var indentation = leading.Count > 0 && leading[leading.Count - 1].IsKind(SyntaxKind.WhitespaceTrivia)
            ? SyntaxFactory.TriviaList(leading[leading.Count - 1])
            : SyntaxFactory.TriviaList();

        var list = SyntaxFactory.AttributeList(
                SyntaxFactory.SingletonSeparatedList(SyntaxFactory.Attribute(SyntaxFactory.ParseName(attributeName))))
            .WithLeadingTrivia(leading)
            .WithTrailingTrivia(SyntaxFactory.EndOfLine(endOfLine));

        var stripped = declaration.WithLeadingTrivia(indentation);
        return stripped.WithAttributeLists(stripped.AttributeLists.Insert(0, list));
    }

    /// <summary><c>using <paramref name="namespaceName"/>;</c> added to the file: after the System usings, in order.</summary>
    public static CompilationUnitSyntax AddUsing(CompilationUnitSyntax root, string namespaceName, string endOfLine)
    {
        var directive = SyntaxFactory.UsingDirective(
                SyntaxFactory.Token(SyntaxKind.UsingKeyword).WithTrailingTrivia(SyntaxFactory.Space),
                default,
                null,
                SyntaxFactory.ParseName(namespaceName),
                SyntaxFactory.Token(SyntaxKind.SemicolonToken))
            .WithTrailingTrivia(SyntaxFactory.EndOfLine(endOfLine));

        var usings = root.Usings;
        if (usings.Count == 0)
        {
            var first = root.GetFirstToken(includeZeroWidth: true);
            var header = first.LeadingTrivia;
            root = root.ReplaceToken(first, first.WithLeadingTrivia(SyntaxFactory.EndOfLine(endOfLine)));
            return root.WithUsings(SyntaxFactory.SingletonList(directive.WithLeadingTrivia(header)));
        }

        var index = usings.Count;
        for (var i = 0; i < usings.Count; i++)
        {
            var existing = usings[i];
            if (existing.Alias is not null || existing.StaticKeyword != default || existing.GlobalKeyword != default)
            {
                continue;
            }

            var name = existing.Name?.ToString() ?? "";
            if (name == "System" || name.StartsWith("System.", System.StringComparison.Ordinal))
            {
                continue;
            }

            if (string.CompareOrdinal(name, namespaceName) > 0)
            {
                index = i;
                break;
            }
        }

        if (index == 0)
        {
            // The new directive goes first: it takes over the file header.
            directive = directive.WithLeadingTrivia(usings[0].GetLeadingTrivia());
            usings = usings.Replace(usings[0], usings[0].WithoutLeadingTrivia());
        }

        return root.WithUsings(usings.Insert(index, directive));
    }

    /// <summary>The line ending the document already uses.</summary>
    public static string EndOfLine(SyntaxNode root)
    {
        foreach (var trivia in root.DescendantTrivia())
        {
            if (trivia.IsKind(SyntaxKind.EndOfLineTrivia))
            {
                return trivia.ToString();
            }
        }

        return "\n";
    }
}
