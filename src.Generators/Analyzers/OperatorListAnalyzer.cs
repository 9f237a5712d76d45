using System;
using System.Collections.Generic;
using System.Collections.Immutable;
using System.Linq;
using System.Threading;
using GemsInjector.Generators.Diagnostics;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.CSharp.Syntax;
using Microsoft.CodeAnalysis.Diagnostics;

namespace GemsInjector.Generators.Analyzers;

/// <summary>
/// Checks the operator lists of <c>[GemsWorker]</c>: a name the referenced GemsInjector does not define (GEMS005), and
/// Include and Exclude set together (GEMS008). Either makes <c>Gems.Enable</c> throw at start-up, so the worker falls back.
/// The known names are read from the referenced assembly's <c>GemsInjector.Operators.OperatorNames</c> constants; when
/// that type is absent (an older runtime) no name is reported.
/// </summary>
[DiagnosticAnalyzer(LanguageNames.CSharp)]
public sealed class OperatorListAnalyzer : DiagnosticAnalyzer
{
    /// <summary>
    /// Suggestions are the known names within this edit distance of the unknown one (or within half its length, when that
    /// is more), nearest first; distances ignore case so that <c>RMS_NORM</c> suggests <c>rms_norm</c>.
    /// </summary>
    internal const int MaxSuggestionDistance = NearestNames.MaxDistance;

    /// <summary>At most this many suggestions.</summary>
    internal const int MaxSuggestions = NearestNames.MaxSuggestions;

    /// <inheritdoc/>
    public override ImmutableArray<DiagnosticDescriptor> SupportedDiagnostics { get; } = ImmutableArray.Create(
        DiagnosticDescriptors.UnknownOperator,
        DiagnosticDescriptors.IncludeAndExclude);

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

            var knownNames = KnownOperatorNames(start.Compilation, attributeType);
            start.RegisterSymbolAction(symbolContext => Analyze(symbolContext, attributeType, knownNames), SymbolKind.NamedType);
        });
    }

    /// <summary>
    /// The values of the <c>const string</c> fields of <c>GemsInjector.Operators.OperatorNames</c> in the assembly that
    /// defines <c>[GemsWorker]</c>, sorted; <see langword="null"/> when that type is absent (or ambiguous).
    /// </summary>
    internal static ImmutableArray<string>? KnownOperatorNames(Compilation compilation, INamedTypeSymbol attributeType)
    {
        var type = compilation.GetTypeByMetadataName(KnownNames.OperatorNames);
        if (type is null || !SymbolEqualityComparer.Default.Equals(type.ContainingAssembly, attributeType.ContainingAssembly))
        {
            return null;
        }

        var names = new SortedSet<string>(StringComparer.Ordinal);
        foreach (var member in type.GetMembers())
        {
            if (member is IFieldSymbol { IsConst: true, HasConstantValue: true, ConstantValue: string value })
            {
                names.Add(value);
            }
        }

        return names.ToImmutableArray();
    }

    private static void Analyze(SymbolAnalysisContext context, INamedTypeSymbol attributeType, ImmutableArray<string>? knownNames)
    {
        var type = (INamedTypeSymbol)context.Symbol;
        if (type.TypeKind != TypeKind.Class)
        {
            return;
        }

        foreach (var attribute in type.GetAttributes())
        {
            if (!SymbolEqualityComparer.Default.Equals(attribute.AttributeClass, attributeType))
            {
                continue;
            }

            if (!WorkerRules.HasUsableListArguments(attribute))
            {
                // Not an array of string constants: the compiler reports that; nothing sound to check here.
                continue;
            }

            var include = WorkerRules.OperatorList(attribute, KnownNames.IncludeProperty);
            var exclude = WorkerRules.OperatorList(attribute, KnownNames.ExcludeProperty);
            if (include is null && exclude is null)
            {
                continue;
            }

            var syntax = attribute.ApplicationSyntaxReference?.GetSyntax(context.CancellationToken) as AttributeSyntax;
            var workerName = type.ToDisplayString();
            if (include is not null && exclude is not null)
            {
                context.ReportDiagnostic(Diagnostic.Create(
                    DiagnosticDescriptors.IncludeAndExclude,
                    syntax?.GetLocation() ?? AnalyzerHelpers.WorkerLocation(type, attribute, context.CancellationToken),
                    workerName));
            }

            if (knownNames is { } known)
            {
                ReportUnknown(context, type, attribute, syntax, KnownNames.IncludeProperty, include, known, workerName);
                ReportUnknown(context, type, attribute, syntax, KnownNames.ExcludeProperty, exclude, known, workerName);
            }
        }
    }

    private static void ReportUnknown(
        SymbolAnalysisContext context,
        INamedTypeSymbol type,
        AttributeData attribute,
        AttributeSyntax? syntax,
        string property,
        string?[]? names,
        ImmutableArray<string> known,
        string workerName)
    {
        if (names is null)
        {
            return;
        }

        Location[]? elementLocations = null;
        for (var i = 0; i < names.Length; i++)
        {
            // Gems.Enable trims each name and compares ordinally; a null element reads as "".
            var name = names[i]?.Trim() ?? "";
            if (known.Contains(name, StringComparer.Ordinal))
            {
                continue;
            }

            elementLocations ??= ElementLocations(syntax, property, names.Length)
                ?? Enumerable.Repeat(
                    ArgumentLocation(syntax, property) ?? AnalyzerHelpers.WorkerLocation(type, attribute, context.CancellationToken),
                    names.Length).ToArray();

            context.ReportDiagnostic(Diagnostic.Create(
                DiagnosticDescriptors.UnknownOperator,
                elementLocations[i],
                names[i] is { } written ? SymbolDisplay.FormatLiteral(written, quote: true) : "null",
                property,
                workerName,
                Suggestion(name, known)));
        }
    }

    private const string ListPointer = "the known names are the constants of " + KnownNames.OperatorNames;

    /// <summary>"did you mean 'silu', 'gelu'?" for the nearest known names, else where to find the names.</summary>
    internal static string Suggestion(string name, ImmutableArray<string> known)
    {
        if (name.Length == 0)
        {
            // An empty (or null) name is near every short name: point to the list instead.
            return ListPointer;
        }

        var nearest = NearestNames.Find(name, known).Select(candidate => "'" + candidate + "'").ToList();
        return nearest.Count > 0
            ? "did you mean " + string.Join(", ", nearest) + "?"
            : ListPointer;
    }

    /// <summary>The expression written for <paramref name="property"/> (<c>Include = ...</c>), or <see langword="null"/>.</summary>
    private static ExpressionSyntax? ArgumentExpression(AttributeSyntax? syntax, string property)
    {
        if (syntax?.ArgumentList is not { } arguments)
        {
            return null;
        }

        foreach (var argument in arguments.Arguments)
        {
            if (argument.NameEquals?.Name.Identifier.ValueText == property)
            {
                return argument.Expression;
            }
        }

        return null;
    }

    private static Location? ArgumentLocation(AttributeSyntax? syntax, string property)
        => ArgumentExpression(syntax, property)?.GetLocation();

    /// <summary>
    /// The location of each element of the array written for <paramref name="property"/>, in order: <c>new[] { ... }</c>,
    /// <c>new string[] { ... }</c> or a collection expression <c>[ ... ]</c>. <see langword="null"/> when the syntax does
    /// not map one to one onto the <paramref name="count"/> values (a spread, an odd form).
    /// </summary>
    private static Location[]? ElementLocations(AttributeSyntax? syntax, string property, int count)
    {
        var expression = ArgumentExpression(syntax, property);
        while (expression is ParenthesizedExpressionSyntax or CastExpressionSyntax)
        {
            expression = expression switch
            {
                ParenthesizedExpressionSyntax parenthesized => parenthesized.Expression,
                CastExpressionSyntax cast => cast.Expression,
                _ => expression,
            };
        }

        IReadOnlyList<ExpressionSyntax>? elements = expression switch
        {
            ArrayCreationExpressionSyntax { Initializer: { } initializer } => initializer.Expressions,
            ImplicitArrayCreationExpressionSyntax implicitArray => implicitArray.Initializer.Expressions,
            CollectionExpressionSyntax collection when collection.Elements.All(e => e is ExpressionElementSyntax)
                => collection.Elements.Cast<ExpressionElementSyntax>().Select(e => e.Expression).ToList(),
            _ => null,
        };

        if (elements is null || elements.Count != count)
        {
            return null;
        }

        return elements.Select(e => e.GetLocation()).ToArray();
    }
}
