using System;
using System.Collections.Generic;
using System.Collections.Immutable;
using System.IO;
using System.Linq;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.Diagnostics;
using Xunit;

namespace GemsInjector.Generators.Tests.Infrastructure;

/// <summary>Runs <see cref="GemsWorkerGenerator"/> over user sources, as the compiler would.</summary>
internal static class GeneratorHarness
{
    public static readonly CSharpParseOptions ParseOptions = new(LanguageVersion.Latest);

    public static CSharpCompilation CreateCompilation(params string[] sources)
        => CSharpCompilation.Create(
            "Contoso.Worker",
            sources.Select((source, index) => CSharpSyntaxTree.ParseText(source, ParseOptions, path: $"/src/File{index}.cs")),
            TestReferences.All,
            new CSharpCompilationOptions(
                OutputKind.DynamicallyLinkedLibrary,
                nullableContextOptions: NullableContextOptions.Enable,
                generalDiagnosticOption: ReportDiagnostic.Error,
                deterministic: true));

    public static GeneratorDriver CreateDriver(IReadOnlyDictionary<string, string>? msbuildProperties = null, bool track = false)
        => CSharpGeneratorDriver.Create(
            new[] { new GemsWorkerGenerator().AsSourceGenerator() },
            parseOptions: ParseOptions,
            optionsProvider: new GlobalOptionsProvider(msbuildProperties),
            driverOptions: new GeneratorDriverOptions(IncrementalGeneratorOutputKind.None, trackIncrementalGeneratorSteps: track));

    /// <summary>Runs the generator and returns its output and the final compilation (user code + generated code).</summary>
    public static GeneratorRun Run(IReadOnlyDictionary<string, string>? msbuildProperties, params string[] sources)
    {
        var compilation = CreateCompilation(sources);
        var driver = CreateDriver(msbuildProperties).RunGeneratorsAndUpdateCompilation(
            compilation, out var output, out var generatorDiagnostics);
        var result = driver.GetRunResult().Results.Single();
        Assert.Null(result.Exception);
        return new GeneratorRun(
            result.GeneratedSources.Select(s => (s.HintName, s.SourceText.ToString())).ToImmutableArray(),
            generatorDiagnostics,
            (CSharpCompilation)output);
    }

    /// <summary>
    /// Asserts that user code + generated code compiles with nullable on and warnings as errors, with no diagnostic at
    /// all (hidden and info ones aside), and that it emits.
    /// </summary>
    public static void AssertCompiles(GeneratorRun run)
    {
        Assert.Empty(run.GeneratorDiagnostics);
        var diagnostics = run.Compilation.GetDiagnostics()
            .Where(d => d.Severity >= DiagnosticSeverity.Warning)
            .ToList();
        Assert.True(diagnostics.Count == 0, "The compilation has diagnostics:\n" + string.Join("\n", diagnostics));

        using var stream = new MemoryStream();
        var emit = run.Compilation.Emit(stream);
        Assert.True(emit.Success, string.Join("\n", emit.Diagnostics));
    }

    /// <summary>The snapshot text: the generator's version scrubbed so that a version bump does not touch the contract.</summary>
    public static string Scrub(string generated)
        => generated.Replace(
            $"\"GemsInjector.Generators\", \"{WorkerEmitter.GeneratorVersion}\"",
            "\"GemsInjector.Generators\", \"{GeneratorVersion}\"");

    private sealed class GlobalOptionsProvider(IReadOnlyDictionary<string, string>? properties) : AnalyzerConfigOptionsProvider
    {
        private readonly Options _global = new(
            (properties ?? new Dictionary<string, string>()).ToDictionary(p => "build_property." + p.Key, p => p.Value));

        public override AnalyzerConfigOptions GlobalOptions => _global;

        public override AnalyzerConfigOptions GetOptions(SyntaxTree tree) => Options.Empty;

        public override AnalyzerConfigOptions GetOptions(AdditionalText textFile) => Options.Empty;

        private sealed class Options(Dictionary<string, string> values) : AnalyzerConfigOptions
        {
            public static readonly Options Empty = new(new Dictionary<string, string>());

            public override bool TryGetValue(string key, [System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out string? value)
                => values.TryGetValue(key, out value);
        }
    }
}

internal sealed record GeneratorRun(
    ImmutableArray<(string HintName, string Text)> Sources,
    ImmutableArray<Diagnostic> GeneratorDiagnostics,
    CSharpCompilation Compilation);
