using System;
using System.Collections.Concurrent;
using System.Collections.Generic;
using System.Collections.Immutable;
using System.Linq;
using System.Text;
using GemsInjector.Generators.Analyzers;
using GemsInjector.Generators.Tests.Infrastructure;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.CSharp.Syntax;
using Microsoft.CodeAnalysis.Diagnostics;

namespace GemsInjector.Generators.Tests.Fuzzing;

/// <summary>What one program produced, for the summary.</summary>
internal sealed record CaseOutcome(string Category, int GeneratedFiles, IReadOnlyList<string> GemsIds, bool HadUserErrors, IReadOnlyList<string> Problems);

/// <summary>
/// Runs the generator and every analyzer over a <see cref="FuzzProgram"/>, as the compiler does in a build, and
/// checks what came out against what the program expects.
/// </summary>
internal static class FuzzOracle
{
    // One compilation holds the references; each program adds its trees to it, which reuses the resolved references.
    // Only the assemblies the programs touch: the analyzers look types up by name in every referenced assembly, and
    // with the whole framework (~170 assemblies) that lookup dominated the time of a program.
    private static readonly Lazy<CSharpCompilation> Empty = new(() => CSharpCompilation.Create(
        "Contoso.Fuzz",
        [],
        SmallReferenceSet(),
        new CSharpCompilationOptions(OutputKind.DynamicallyLinkedLibrary, nullableContextOptions: NullableContextOptions.Enable)));

    /// <summary>GemsInjector, Microsoft.Extensions.Logging.Abstractions, and the framework assemblies they and the programs reference.</summary>
    private static ImmutableArray<MetadataReference> SmallReferenceSet()
    {
        var wanted = new HashSet<string>(StringComparer.OrdinalIgnoreCase) { "System.Runtime", "System.Private.CoreLib", "netstandard" };
        foreach (var assembly in new[] { typeof(Gems).Assembly, typeof(Microsoft.Extensions.Logging.ILogger).Assembly })
        {
            foreach (var name in assembly.GetReferencedAssemblies())
            {
                wanted.Add(name.Name!);
            }
        }

        var frameworkDirectory = System.IO.Path.GetDirectoryName(typeof(object).Assembly.Location)!;
        var paths = TestReferences.All
            .OfType<PortableExecutableReference>()
            .Select(reference => reference.FilePath!)
            .Where(path => !string.Equals(System.IO.Path.GetDirectoryName(path), frameworkDirectory, StringComparison.Ordinal)
                || wanted.Contains(System.IO.Path.GetFileNameWithoutExtension(path)));
        return paths.Select(path => (MetadataReference)MetadataReference.CreateFromFile(path)).ToImmutableArray();
    }

    public static CaseOutcome Run(FuzzProgram program)
    {
        var problems = new List<string>();
        var parseOptions = new CSharpParseOptions(LanguageVersion.Latest, preprocessorSymbols: program.DefinedSymbols);
        var userTrees = program.Files
            .Select(file => CSharpSyntaxTree.ParseText(file.Text, parseOptions, path: file.Path, encoding: Encoding.UTF8))
            .ToList();
        var compilation = Empty.Value.AddSyntaxTrees(userTrees);
        var options = new BuildPropertiesProvider(program.MSBuildProperties);

        var run = BuildRun.Of(compilation, parseOptions, options, withCompilerDiagnostics: true);
        var (output, result, diagnostics) = (run.Output, run.Generator, run.Diagnostics);
        problems.AddRange(run.Crashes);

        var generatedTrees = result.GeneratedSources.Select(s => s.SyntaxTree).ToHashSet();
        var userTreeSet = userTrees.ToHashSet();
        foreach (var error in diagnostics.Where(d => d.Severity == DiagnosticSeverity.Error && d.Location.SourceTree is { } tree && generatedTrees.Contains(tree)))
        {
            problems.Add("error in generated code: " + error);
        }

        CheckFiles(program, result, output, problems);

        var gemsIds = diagnostics.Where(d => d.Id.StartsWith("GEMS", StringComparison.Ordinal)).Select(d => d.Id).ToList();
        if (!program.AnyGemsIdPermitted)
        {
            foreach (var unexpected in diagnostics.Where(d => d.Id.StartsWith("GEMS", StringComparison.Ordinal) && !program.PermittedGemsIds.Contains(d.Id)))
            {
                problems.Add("unexpected diagnostic (false positive): " + unexpected);
            }
        }

        var userErrors = diagnostics
            .Where(d => d.Severity == DiagnosticSeverity.Error
                && !d.Id.StartsWith("GEMS", StringComparison.Ordinal)
                && d.Location.SourceTree is { } tree && userTreeSet.Contains(tree))
            .ToList();
        if (!program.CompilerErrorsExpected)
        {
            foreach (var error in userErrors)
            {
                problems.Add("compiler error in a program the fuzzer wrote as compilable: " + error);
            }
        }

        foreach (var evidence in program.Evidence)
        {
            var found = evidence.AnyOf.Any(id => id == Evidence.UserError
                ? userErrors.Count > 0
                : diagnostics.Any(d => d.Id == id && d.Location.SourceTree is { } tree && userTreeSet.Contains(tree)));
            if (!found)
            {
                problems.Add($"missing evidence: {evidence.Description}: expected any of [{string.Join(", ", evidence.AnyOf)}]");
            }
        }

        if (problems.Count > 0)
        {
            problems.Add("all diagnostics:\n  " + string.Join("\n  ", diagnostics.Where(d => d.Severity >= DiagnosticSeverity.Warning || d.Id.StartsWith("GEMS", StringComparison.Ordinal))));
            foreach (var source in result.GeneratedSources)
            {
                problems.Add($"generated {source.HintName}:\n{source.SourceText}");
            }
        }

        return new CaseOutcome(program.Category, result.GeneratedSources.Length, gemsIds, userErrors.Count > 0, problems);
    }

    /// <summary>Exactly the expected workers got a file, one each, and each file extends the worker it is named for.</summary>
    private static void CheckFiles(FuzzProgram program, GeneratorRunResult result, Compilation output, List<string> problems)
    {
        var extended = new List<INamedTypeSymbol>();
        foreach (var source in result.GeneratedSources)
        {
            if (!source.HintName.EndsWith(".GemsWorker.g.cs", StringComparison.Ordinal))
            {
                problems.Add($"odd hint name {source.HintName}");
            }

            var initializers = source.SyntaxTree.GetRoot().DescendantNodes().OfType<MethodDeclarationSyntax>()
                .Where(m => m.Identifier.ValueText == KnownNames.InitializerMethod)
                .ToList();
            if (initializers.Count != 1)
            {
                problems.Add($"{source.HintName} declares {initializers.Count} module initializers");
                continue;
            }

            var model = output.GetSemanticModel(source.SyntaxTree);
            if (model.GetDeclaredSymbol(initializers[0]) is not { ContainingType: { } type } method)
            {
                problems.Add($"{source.HintName}: the initializer has no symbol");
                continue;
            }

            if (!method.GetAttributes().Any(a => a.AttributeClass?.ToDisplayString() == "System.Runtime.CompilerServices.ModuleInitializerAttribute"))
            {
                problems.Add($"{source.HintName}: the initializer is not a [ModuleInitializer]");
            }

            extended.Add(type);
        }

        var allowed = new List<INamedTypeSymbol>();
        foreach (var worker in program.Workers)
        {
            var symbol = output.GetTypeByMetadataName(worker.MetadataName);
            var files = symbol is null ? 0 : extended.Count(t => SymbolEqualityComparer.Default.Equals(t, symbol));
            switch (worker.Expectation)
            {
                case FileExpectation.Generated when symbol is null:
                    problems.Add($"expected worker {worker.MetadataName} not found in the compilation");
                    break;
                case FileExpectation.Generated when files != 1:
                    problems.Add($"expected exactly one generated file for {worker.MetadataName}, got {files}");
                    break;
                case FileExpectation.NotGenerated when files != 0:
                    problems.Add($"{worker.MetadataName} must get no file, got {files}");
                    break;
                case FileExpectation.Either when files > 1:
                    problems.Add($"{worker.MetadataName} got {files} files");
                    break;
            }

            if (symbol is not null && worker.Expectation != FileExpectation.NotGenerated)
            {
                allowed.Add(symbol);
            }
        }

        // A type declared in a file broken on purpose may parse into another scope than the one written (a lost
        // brace moves it to the namespace): any name is fine there, as long as it gets one file that compiles.
        foreach (var type in extended.Where(t => !allowed.Contains(t, SymbolEqualityComparer.Default)
            && !t.DeclaringSyntaxReferences.Any(r => program.BrokenFiles.Contains(r.SyntaxTree.FilePath))))
        {
            problems.Add($"a file extends {type.ToDisplayString()}, which the fuzzer did not write as a worker");
        }
    }
}
