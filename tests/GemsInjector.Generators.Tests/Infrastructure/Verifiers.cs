using System.Threading.Tasks;
using Microsoft.CodeAnalysis.CodeFixes;
using Microsoft.CodeAnalysis.CSharp.Testing;
using Microsoft.CodeAnalysis.Diagnostics;
using Microsoft.CodeAnalysis.Testing;

namespace GemsInjector.Generators.Tests.Infrastructure;

/// <summary>Microsoft.CodeAnalysis.Testing with the offline references of <see cref="TestReferences"/>.</summary>
internal static class AnalyzerVerifier<TAnalyzer>
    where TAnalyzer : DiagnosticAnalyzer, new()
{
    public static DiagnosticResult Diagnostic(string id) => CSharpAnalyzerVerifier<TAnalyzer, DefaultVerifier>.Diagnostic(id);

    /// <summary>Runs the analyzer; <paramref name="msbuild"/> holds <c>build_property.X = Y</c> lines for a global config.</summary>
    public static Task VerifyAsync(string source, string? msbuild = null, params DiagnosticResult[] expected)
    {
        var test = new CSharpAnalyzerTest<TAnalyzer, DefaultVerifier>
        {
            TestCode = source,
            ReferenceAssemblies = TestReferences.None,
        };
        Configure(test.TestState, msbuild);
        test.ExpectedDiagnostics.AddRange(expected);
        return test.RunAsync();
    }

    internal static void Configure(SolutionState state, string? msbuild)
    {
        state.AdditionalReferences.AddRange(TestReferences.All);
        if (msbuild is not null)
        {
            state.AnalyzerConfigFiles.Add(("/.globalconfig", "is_global = true\n" + msbuild + "\n"));
        }
    }
}

internal static class CodeFixVerifier<TAnalyzer, TCodeFix>
    where TAnalyzer : DiagnosticAnalyzer, new()
    where TCodeFix : CodeFixProvider, new()
{
    public static Task VerifyAsync(string source, string fixedSource, string? msbuild = null, params DiagnosticResult[] expected)
    {
        var test = new CSharpCodeFixTest<TAnalyzer, TCodeFix, DefaultVerifier>
        {
            TestCode = source,
            FixedCode = fixedSource,
            ReferenceAssemblies = TestReferences.None,
        };
        AnalyzerVerifier<TAnalyzer>.Configure(test.TestState, msbuild);
        AnalyzerVerifier<TAnalyzer>.Configure(test.FixedState, msbuild);
        test.ExpectedDiagnostics.AddRange(expected);
        return test.RunAsync();
    }
}
