using System.Collections.Concurrent;
using System.Collections.Generic;
using System.Collections.Immutable;
using System.Linq;
using GemsInjector.Generators.Analyzers;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.Diagnostics;

namespace GemsInjector.Generators.Tests.Infrastructure;

/// <summary>
/// The generator and every analyzer over one compilation, as a build runs them (the fuzzer and the code-base sweep), with
/// everything that crashed on the way: a generator exception, a driver diagnostic, an analyzer exception, AD0001,
/// CS8784 or CS8785.
/// </summary>
internal sealed record BuildRun(Compilation Output, GeneratorRunResult Generator, ImmutableArray<Diagnostic> Diagnostics, IReadOnlyList<string> Crashes)
{
    private static readonly ImmutableArray<DiagnosticAnalyzer> Analyzers =
        [new GemsWorkerAttributeAnalyzer(), new OperatorListAnalyzer(), new WorkerEnablementAnalyzer()];

    /// <summary>Runs the generator, then the analyzers over its output.</summary>
    /// <param name="compilation">The user's code.</param>
    /// <param name="parseOptions">How the generated code is parsed.</param>
    /// <param name="options">The MSBuild properties the generator and analyzers read.</param>
    /// <param name="withCompilerDiagnostics">Also the compiler's own diagnostics (slower), not only the analyzers'.</param>
    public static BuildRun Of(CSharpCompilation compilation, CSharpParseOptions parseOptions, AnalyzerConfigOptionsProvider options, bool withCompilerDiagnostics)
    {
        GeneratorDriver driver = CSharpGeneratorDriver.Create(
            [new GemsWorkerGenerator().AsSourceGenerator()], parseOptions: parseOptions, optionsProvider: options);
        driver = driver.RunGeneratorsAndUpdateCompilation(compilation, out var output, out var generatorDiagnostics);
        var generator = driver.GetRunResult().Results.Single();
        var crashes = new List<string>();
        if (generator.Exception is not null)
        {
            crashes.Add("the generator threw: " + generator.Exception);
        }

        crashes.AddRange(generatorDiagnostics.Select(d => "the generator driver reported: " + d));
        var analyzerExceptions = new ConcurrentQueue<string>();
        var withAnalyzers = output.WithAnalyzers(
            Analyzers,
            new CompilationWithAnalyzersOptions(
                new AnalyzerOptions([], options),
                (exception, analyzer, _) => analyzerExceptions.Enqueue($"an analyzer threw: {analyzer.GetType().Name}: {exception}"),
                concurrentAnalysis: false,
                logAnalyzerExecutionTime: false));
        var diagnostics = (withCompilerDiagnostics ? withAnalyzers.GetAllDiagnosticsAsync() : withAnalyzers.GetAnalyzerDiagnosticsAsync()).GetAwaiter().GetResult();
        crashes.AddRange(analyzerExceptions);
        crashes.AddRange(diagnostics.Where(d => d.Id is "AD0001" or "CS8784" or "CS8785").Select(d => "crash diagnostic: " + d));
        return new BuildRun(output, generator, diagnostics, crashes);
    }
}
