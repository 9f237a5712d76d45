using System;
using System.Collections.Immutable;
using System.IO;
using System.Linq;
using System.Threading.Tasks;
using GemsInjector.Generators.Analyzers;
using GemsInjector.Generators.Tests.Infrastructure;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.CSharp.Testing;
using Microsoft.CodeAnalysis.Diagnostics;
using Microsoft.CodeAnalysis.Testing;
using Xunit;
using Verify = GemsInjector.Generators.Tests.Infrastructure.AnalyzerVerifier<GemsInjector.Generators.Analyzers.OperatorListAnalyzer>;

namespace GemsInjector.Generators.Tests;

/// <summary>
/// GEMS005 (an operator name the referenced GemsInjector does not define) and GEMS008 (Include and Exclude both set).
/// The known names come from the referenced assembly's GemsInjector.Operators.OperatorNames, so some cases reference a
/// stand-in runtime compiled here with a list of its own.
/// </summary>
public sealed class OperatorListAnalyzerTests
{
    [Fact]
    public Task KnownNames_DoNotReport() => Verify.VerifyAsync("""
        using GemsInjector;
        using GemsInjector.Operators;

        [GemsWorker(Include = new[] { "add", "silu_and_mul", OperatorNames.RmsNorm, " softmax " })]
        public partial class PrefillRunner
        {
        }

        [GemsWorker(Exclude = ["scaled_dot_product_attention", "topk"])]
        public partial class DecodeRunner
        {
        }

        [GemsWorker(Include = new string[] { }, EnvironmentVariable = "USE_GEMS_EMPTY")]
        public partial class EmptyRunner
        {
        }

        [GemsWorker(Include = null, Exclude = null)]
        public partial class NullListsRunner
        {
        }
        """);

    [Fact]
    public Task UnknownNameInInclude_ReportsTheLiteral() => Verify.VerifyAsync(
        """
        using GemsInjector;

        namespace App;

        [GemsWorker(Include = new[] { "add", "silu_mul" })]
        public partial class ModelRunner
        {
        }
        """,
        null,
        Verify.Diagnostic("GEMS005")
            .WithSpan(5, 38, 5, 48)
            .WithArguments("\"silu_mul\"", "Include", "App.ModelRunner", "did you mean 'silu', 'silu_and_mul'?"));

    [Fact]
    public Task UnknownNameInExclude_ReportsEachUnknownLiteral() => Verify.VerifyAsync("""
        using GemsInjector;

        [GemsWorker(Exclude = new string[] { {|GEMS005:"Softmax"|}, "mul", {|GEMS005:"flash_attention"|} })]
        public partial class ModelRunner
        {
        }
        """);

    [Fact]
    public Task UnknownNameInCollectionExpression_Reports() => Verify.VerifyAsync("""
        using GemsInjector;

        [GemsWorker(Include = ["add", {|GEMS005:"rmsnorm"|}], EnvironmentVariable = "USE_GEMS")]
        public partial class ModelRunner
        {
        }
        """);

    [Fact]
    public Task UnknownName_MessageSuggestsNearestNamesOrPointsToTheList() => Verify.VerifyAsync(
        """
        using GemsInjector;

        [GemsWorker(Exclude = ["RMS_NORM", "flash_attention_v2"])]
        public partial class ModelRunner
        {
        }
        """,
        null,
        Verify.Diagnostic("GEMS005").WithSpan(3, 24, 3, 34)
            .WithArguments("\"RMS_NORM\"", "Exclude", "ModelRunner", "did you mean 'rms_norm'?"),
        Verify.Diagnostic("GEMS005").WithSpan(3, 36, 3, 56)
            .WithArguments("\"flash_attention_v2\"", "Exclude", "ModelRunner", "the known names are the constants of GemsInjector.Operators.OperatorNames"));

    [Fact]
    public Task NullElement_ReportsAsUnknown() => Verify.VerifyAsync(
        """
        using GemsInjector;

        [GemsWorker(Include = new string[] { "add", null! })]
        public partial class ModelRunner
        {
        }
        """,
        null,
        Verify.Diagnostic("GEMS005").WithSpan(3, 45, 3, 50)
            .WithArguments("null", "Include", "ModelRunner", "the known names are the constants of GemsInjector.Operators.OperatorNames"));

    [Fact]
    public Task NameFromAConstant_ReportsTheConstantReference() => Verify.VerifyAsync("""
        using GemsInjector;

        internal static class MyOps
        {
            public const string Fused = "fused_rms";
        }

        [GemsWorker(Include = new[] { "add", {|GEMS005:MyOps.Fused|} })]
        public partial class ModelRunner
        {
        }
        """);

    [Fact]
    public Task IncludeAndExclude_ReportsTheAttribute() => Verify.VerifyAsync("""
        using GemsInjector;

        [{|GEMS008:GemsWorker(Include = new[] { "add" }, Exclude = ["mul"])|}]
        public partial class ModelRunner
        {
        }

        [GemsWorker(Include = new[] { "add" }, Exclude = null)]
        public partial class IncludeOnlyRunner
        {
        }
        """);

    [Fact]
    public Task IncludeAndExclude_AlsoReportsUnknownNames() => Verify.VerifyAsync("""
        using GemsInjector;

        [{|GEMS008:GemsWorker(Include = new[] { {|GEMS005:"ad"|} }, Exclude = new[] { {|GEMS005:"mull"|} })|}]
        public partial class ModelRunner
        {
        }
        """);

    [Fact]
    public Task NotOnAWorkerAttribute_DoesNotReport() => Verify.VerifyAsync("""
        using System;

        [AttributeUsage(AttributeTargets.Class)]
        public sealed class OtherAttribute : Attribute
        {
            public string[]? Include { get; set; }
            public string[]? Exclude { get; set; }
        }

        [Other(Include = new[] { "nope" }, Exclude = new[] { "nope" })]
        public class ModelRunner
        {
        }
        """);

    /// <summary>The names are the referenced assembly's: a runtime with a shorter list makes its missing names unknown.</summary>
    [Fact]
    public Task NamesComeFromTheReferencedAssembly() => RunAgainstStandInAsync(
        """
        [GemsInjector.GemsWorker(Include = new[] { "add", {|GEMS005:"silu"|} })]
        public partial class ModelRunner
        {
        }
        """,
        StandInRuntime(withOperatorNames: true));

    /// <summary>An older runtime without OperatorNames: nothing to check names against, so no GEMS005 (GEMS008 still holds).</summary>
    [Fact]
    public Task OperatorNamesAbsent_ReportsNoUnknownName() => RunAgainstStandInAsync(
        """
        [GemsInjector.GemsWorker(Include = new[] { "add", "no_such_op" })]
        public partial class ModelRunner
        {
        }

        [{|GEMS008:GemsInjector.GemsWorker(Include = new[] { "whatever" }, Exclude = new[] { "else" })|}]
        public partial class BothRunner
        {
        }
        """,
        StandInRuntime(withOperatorNames: false));

    /// <summary>Lists that do not compile: no analyzer failure (AD0001), and no GEMS005 guessed from a broken argument.</summary>
    [Fact]
    public async Task BrokenListArguments_DoNotFailTheAnalyzer()
    {
        var compilation = GeneratorHarness.CreateCompilation("""
            using GemsInjector;
            [GemsWorker(Include = "add")] public partial class NotAnArray { }
            [GemsWorker(Exclude = new[] { 1, 2 })] public partial class NotStrings { }
            [GemsWorker(Include = new[] { System.Environment.NewLine })] public partial class NotConstant { }
            [GemsWorker(Exclude = [.. new[] { "nope" }])] public partial class Spread { }
            [GemsWorker(Include = )] public partial class Missing { }
            [GemsWorker(Include = new[] { "add", "nope", )] public partial class Unfinished { }
            """);
        var diagnostics = await compilation
            .WithAnalyzers(ImmutableArray.Create<DiagnosticAnalyzer>(new OperatorListAnalyzer()))
            .GetAnalyzerDiagnosticsAsync();
        Assert.DoesNotContain(diagnostics, d => d.Id == "AD0001");

        // Only the unfinished list still binds to string constants (the parser closes it): its "nope" is reported.
        var unknown = Assert.Single(diagnostics);
        Assert.Equal("GEMS005", unknown.Id);
        Assert.Contains("\"nope\"", unknown.GetMessage(), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("", "", 0)]
    [InlineData("add", "", 3)]
    [InlineData("silu_mul", "silu_and_mul", 4)]
    [InlineData("kitten", "sitting", 3)]
    public void EditDistance_IsLevenshtein(string a, string b, int expected)
    {
        Assert.Equal(expected, NearestNames.EditDistance(a, b));
        Assert.Equal(expected, NearestNames.EditDistance(b, a));
    }

    [Fact]
    public void Suggestion_TakesAtMostThreeNearestNames()
    {
        var known = ImmutableArray.Create("add", "addmm", "bmm", "mm", "mul", "sub");
        Assert.Equal("did you mean 'add', 'addmm', 'bmm'?", OperatorListAnalyzer.Suggestion("adm", known));
    }

    /// <summary>A compiled stand-in for the GemsInjector runtime: [GemsWorker] and, optionally, an OperatorNames with two names.</summary>
    private static MetadataReference StandInRuntime(bool withOperatorNames)
    {
        var source = """
            namespace GemsInjector
            {
                [System.AttributeUsage(System.AttributeTargets.Class)]
                public sealed class GemsWorkerAttribute : System.Attribute
                {
                    public string? EnvironmentVariable { get; set; }
                    public string[]? Include { get; set; }
                    public string[]? Exclude { get; set; }
                }
            }
            """;
        if (withOperatorNames)
        {
            source += """

                namespace GemsInjector.Operators
                {
                    public static class OperatorNames
                    {
                        public const string Add = "add";
                        public const string Mul = "mul";
                        public static readonly string NotAConstant = "silu";
                    }
                }
                """;
        }

        var compilation = CSharpCompilation.Create(
            "GemsInjector",
            new[] { CSharpSyntaxTree.ParseText(source, GeneratorHarness.ParseOptions) },
            TestReferences.WithoutGemsInjector,
            new CSharpCompilationOptions(OutputKind.DynamicallyLinkedLibrary, nullableContextOptions: NullableContextOptions.Enable));
        using var stream = new MemoryStream();
        var emit = compilation.Emit(stream);
        Assert.True(emit.Success, string.Join("\n", emit.Diagnostics));
        return MetadataReference.CreateFromImage(stream.ToArray());
    }

    private static Task RunAgainstStandInAsync(string source, MetadataReference runtime)
    {
        var test = new CSharpAnalyzerTest<OperatorListAnalyzer, DefaultVerifier>
        {
            TestCode = source,
            ReferenceAssemblies = TestReferences.None,
        };
        test.TestState.AdditionalReferences.AddRange(TestReferences.WithoutGemsInjector);
        test.TestState.AdditionalReferences.Add(runtime);
        return test.RunAsync();
    }
}
