using System.Collections.Immutable;
using System.Composition;
using System.Linq;
using System.Threading;
using System.Threading.Tasks;
using GemsInjector.Generators.Diagnostics;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CodeActions;
using Microsoft.CodeAnalysis.CodeFixes;
using Microsoft.CodeAnalysis.CSharp.Syntax;

namespace GemsInjector.CodeFixes;

/// <summary>
/// GEMS002: adds <c>partial</c> to the <c>[GemsWorker]</c> class and to every type on the way to it that lacks it.
/// </summary>
[ExportCodeFixProvider(Microsoft.CodeAnalysis.LanguageNames.CSharp, Name = nameof(AddPartialCodeFixProvider)), Shared]
public sealed class AddPartialCodeFixProvider : CodeFixProvider
{
    /// <summary>The equivalence key of the fix.</summary>
    public const string EquivalenceKey = "GemsInjector.AddPartial";

    /// <inheritdoc/>
    public override ImmutableArray<string> FixableDiagnosticIds { get; } =
        ImmutableArray.Create(DiagnosticDescriptors.WorkerNotPartialId);

    /// <inheritdoc/>
    public override FixAllProvider GetFixAllProvider() => WellKnownFixAllProviders.BatchFixer;

    /// <inheritdoc/>
    public override async Task RegisterCodeFixesAsync(CodeFixContext context)
    {
        var root = await context.Document.GetSyntaxRootAsync(context.CancellationToken).ConfigureAwait(false);
        foreach (var diagnostic in context.Diagnostics)
        {
            var declaration = root?.FindToken(diagnostic.Location.SourceSpan.Start).Parent?
                .AncestorsAndSelf().OfType<TypeDeclarationSyntax>().FirstOrDefault();
            if (declaration is null)
            {
                continue;
            }

            context.RegisterCodeFix(
                CodeAction.Create(
                    "Make the [GemsWorker] class and its containing types partial",
                    cancellationToken => FixAsync(context.Document, declaration, cancellationToken),
                    EquivalenceKey),
                diagnostic);
        }
    }

    private static async Task<Document> FixAsync(Document document, TypeDeclarationSyntax declaration, CancellationToken cancellationToken)
    {
        var root = await document.GetSyntaxRootAsync(cancellationToken).ConfigureAwait(false);
        if (root is null)
        {
            return document;
        }

        // The declaration and its containers, plus, when the diagnostic is on a container, the path down to each
        // [GemsWorker] class it holds.
        var targets = SyntaxEdits.Chain(declaration).ToList();
        foreach (var nested in declaration.DescendantNodes().OfType<TypeDeclarationSyntax>())
        {
            if (HasWorkerAttribute(nested))
            {
                foreach (var step in SyntaxEdits.Chain(nested))
                {
                    if (step == declaration)
                    {
                        break;
                    }

                    targets.Add(step);
                }
            }
        }

        var newRoot = root.ReplaceNodes(targets.Distinct(), (_, rewritten) => SyntaxEdits.AddPartial(rewritten));
        return document.WithSyntaxRoot(newRoot);
    }

    private static bool HasWorkerAttribute(TypeDeclarationSyntax declaration)
        => declaration.AttributeLists.SelectMany(list => list.Attributes).Any(attribute =>
        {
            var name = attribute.Name.ToString();
            var simple = name.Substring(name.LastIndexOf('.') + 1);
            return simple is "GemsWorker" or "GemsWorkerAttribute";
        });
}
