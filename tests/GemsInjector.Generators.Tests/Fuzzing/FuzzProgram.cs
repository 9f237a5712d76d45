using System.Collections.Generic;
using System.Linq;
using System.Text;

namespace GemsInjector.Generators.Tests.Fuzzing;

/// <summary>What the fuzzer expects the generator to do with one class it wrote.</summary>
internal enum FileExpectation
{
    /// <summary>A valid worker: exactly one generated file extends it.</summary>
    Generated,

    /// <summary>The generator must leave it alone (an analyzer or the compiler says why).</summary>
    NotGenerated,

    /// <summary>Broken code around it: either outcome is acceptable, but never a crash or an error in generated code.</summary>
    Either,
}

/// <summary>A class the fuzzer wrote, by the metadata name the compiler gives it (<c>Ns.Outer+Inner`1</c>).</summary>
internal sealed record ExpectedWorker(string MetadataName, FileExpectation Expectation);

/// <summary>
/// Evidence an invalid construct must leave: one of <see cref="AnyOf"/> reported. <see cref="UserError"/> in the list
/// stands for any compiler error located in a file the user wrote.
/// </summary>
internal sealed record Evidence(string Description, IReadOnlyList<string> AnyOf)
{
    public const string UserError = "user-error";
}

/// <summary>One generated program: its files, its build settings and what must come out of it.</summary>
internal sealed class FuzzProgram
{
    /// <summary>The program's kind, for the summary (<c>valid</c> or the one invalid construct it holds).</summary>
    public required string Category { get; init; }

    public required IReadOnlyList<(string Path, string Text)> Files { get; init; }

    public required IReadOnlyList<string> DefinedSymbols { get; init; }

    public required IReadOnlyDictionary<string, string> MSBuildProperties { get; init; }

    public required IReadOnlyList<ExpectedWorker> Workers { get; init; }

    public required IReadOnlyList<Evidence> Evidence { get; init; }

    /// <summary>GEMS ids the program may report; anything else is a false positive.</summary>
    public required IReadOnlySet<string> PermittedGemsIds { get; init; }

    /// <summary>Whether broken code makes any GEMS diagnostic acceptable (syntax errors).</summary>
    public required bool AnyGemsIdPermitted { get; init; }

    /// <summary>The files the fuzzer broke on purpose: their types may parse into other scopes than written.</summary>
    public required IReadOnlySet<string> BrokenFiles { get; init; }

    /// <summary>Whether the program holds a construct the compiler must reject; otherwise it must compile with no error.</summary>
    public required bool CompilerErrorsExpected { get; init; }

    /// <summary>The whole program as text, to paste into a test when a case fails.</summary>
    public string Describe()
    {
        var text = new StringBuilder();
        text.AppendLine($"category: {Category}");
        text.AppendLine($"defined symbols: [{string.Join(", ", DefinedSymbols)}]");
        text.AppendLine($"msbuild: {{{string.Join(", ", MSBuildProperties.Select(p => $"{p.Key}={Quote(p.Value)}"))}}}");
        text.AppendLine("workers: " + string.Join(", ", Workers.Select(w => $"{w.MetadataName} ({w.Expectation})")));
        text.AppendLine("evidence: " + string.Join("; ", Evidence.Select(e => $"{e.Description} -> any of [{string.Join(", ", e.AnyOf)}]")));
        foreach (var (path, source) in Files)
        {
            text.AppendLine($"===== {path} =====");
            text.AppendLine(source);
        }

        return text.ToString();
    }

    private static string Quote(string value) => Microsoft.CodeAnalysis.CSharp.SymbolDisplay.FormatLiteral(value, quote: true);
}
