using System.Collections.Immutable;
using System.Composition;
using System.Linq;
using System.Threading;
using System.Threading.Tasks;
using GemsInjector.Generators;
using GemsInjector.Generators.Diagnostics;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CodeActions;
using Microsoft.CodeAnalysis.CodeFixes;
using Microsoft.CodeAnalysis.CSharp.Syntax;

namespace GemsInjector.CodeFixes;

/// <summary>
/// GEMS001: marks the worker class <c>[GemsWorker]</c>, makes it and its containing types <c>partial</c>, and adds
/// <c>using GemsInjector;</c> when the attribute's name does not bind there yet.
/// </summary>
[ExportCodeFixProvider(Microsoft.CodeAnalysis.LanguageNames.CSharp, Name = nameof(AddGemsWorkerCodeFixProvider)), Shared]
public sealed class AddGemsWorkerCodeFixProvider : CodeFixProvider
{
    /// <summary>The equivalence key of the fix.</summary>
    public const string EquivalenceKey = "GemsInjector.AddGemsWorker";

    private const string AttributeMetadataName = "GemsInjector.GemsWorkerAttribute";

    /// <inheritdoc/>
    public override ImmutableArray<string> FixableDiagnosticIds { get; } =
        ImmutableArray.Create(DiagnosticDescriptors.WorkerWithoutEnablementId);

    /// <inheritdoc/>
    public override FixAllProvider GetFixAllProvider() => WellKnownFixAllProviders.BatchFixer;

    /// <inheritdoc/>
    public override async Task RegisterCodeFixesAsync(CodeFixContext context)
    {
        var root = await context.Document.GetSyntaxRootAsync(context.CancellationToken).ConfigureAwait(false);
        var model = await context.Document.GetSemanticModelAsync(context.CancellationToken).ConfigureAwait(false);
        foreach (var diagnostic in context.Diagnostics)
        {
            var declaration = root?.FindToken(diagnostic.Location.SourceSpan.Start).Parent?
                .AncestorsAndSelf().OfType<TypeDeclarationSyntax>().FirstOrDefault();
            if (declaration is null)
            {
                continue;
            }

            if (model?.GetDeclaredSymbol(declaration, context.CancellationToken) is INamedTypeSymbol type
                && (WorkerRules.IsGenericOrInGeneric(type) || !WorkerRules.IsModuleAccessible(type)))
            {
                // [GemsWorker] here would only trade GEMS001 for GEMS007 or GEMS006 (the generator cannot extend such a
                // class): such a worker calls Gems.Enable, or a non-generic accessible class of its assembly is marked.
                continue;
            }

            context.RegisterCodeFix(
                CodeAction.Create(
                    "Mark the worker [GemsWorker] so that it enables GemsInjector on start-up",
                    cancellationToken => FixAsync(context.Document, declaration, cancellationToken),
                    EquivalenceKey),
                diagnostic);
        }
    }

    private static async Task<Document> FixAsync(Document document, TypeDeclarationSyntax declaration, CancellationToken cancellationToken)
    {
        var root = await document.GetSyntaxRootAsync(cancellationToken).ConfigureAwait(false);
        var model = await document.GetSemanticModelAsync(cancellationToken).ConfigureAwait(false);
        if (root is not CompilationUnitSyntax compilationUnit || model is null)
        {
            return document;
        }

        var endOfLine = SyntaxEdits.EndOfLine(root);
        var needsUsing = !AttributeBinds(model, declaration.SpanStart);

        var newRoot = compilationUnit.ReplaceNodes(
            SyntaxEdits.Chain(declaration),
            (original, rewritten) =>
            {
                var edited = SyntaxEdits.AddPartial(rewritten);
                return original == declaration ? SyntaxEdits.AddAttribute(edited, "GemsWorker", endOfLine) : edited;
            });

        if (needsUsing)
        {
            newRoot = SyntaxEdits.AddUsing(newRoot, "GemsInjector", endOfLine);
        }

        return document.WithSyntaxRoot(newRoot);
    }

    /// <summary>Whether <c>GemsWorker</c> already names GemsInjector's attribute at <paramref name="position"/>.</summary>
    private static bool AttributeBinds(SemanticModel model, int position)
    {
        var attribute = model.Compilation.GetTypeByMetadataName(AttributeMetadataName);
        if (attribute is null)
        {
            return false;
        }

        return model.LookupNamespacesAndTypes(position, name: "GemsWorkerAttribute")
            .Any(symbol => SymbolEqualityComparer.Default.Equals(symbol, attribute));
    }
}
