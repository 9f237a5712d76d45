using System.Linq;
using GemsInjector.Generators.Tests.Infrastructure;
using Microsoft.CodeAnalysis;
using Xunit;

namespace GemsInjector.Generators.Tests;

/// <summary>Odd code never makes the generator throw (no CS8785) and invalid workers get no file.</summary>
public sealed class GeneratorRobustnessTests
{
    [Fact]
    public void SyntaxErrorsInsideAValidWorker_StillGenerate()
    {
        var run = GeneratorHarness.Run(
            null,
            """
            using GemsInjector;
            [GemsWorker]
            public partial class ModelRunner {
                void M( { int x = ; }
            """);
        Assert.Equal(new[] { "ModelRunner.GemsWorker.g.cs" }, run.Sources.Select(s => s.HintName));
        AssertNoGeneratorFailure(run);
    }

    [Theory]
    [InlineData("""
        using GemsInjector;
        [GemsWorker(EnvironmentVariable = )]
        public partial class
        """)]
    [InlineData("""
        using GemsInjector;
        [GemsWorker] public partial struct ValueRunner { }
        [GemsWorker] public partial interface IRunner { }
        [GemsWorker] public partial record struct RecordStructRunner;
        public class Host { [GemsWorker] public void Method() { } }
        """)]
    [InlineData("""
        using GemsInjector;
        [GemsWorker] public class NotPartial { }
        public class Outer { [GemsWorker] public partial class InNonPartial { } }
        """)]
    [InlineData("""
        using GemsInjector;
        [GemsWorker] public partial class Generic<T> { }
        public partial class Host { [GemsWorker] private partial class Hidden { } }
        [GemsWorker] file partial class FileLocal { }
        """)]
    [InlineData("""
        using GemsInjector;
        [GemsWorker(EnvironmentVariable = "")] public partial class Empty { }
        [GemsWorker(EnvironmentVariable = "A B")] public partial class Space { }
        [GemsWorker(EnvironmentVariable = "A=B")] public partial class Equals { }
        [GemsWorker(EnvironmentVariable = 42)] public partial class NotAString { }
        """)]
    [InlineData("""
        [GemsWorker] public partial class UnknownAttribute { }
        """)]
    [InlineData("""
        using GemsInjector;
        namespace Contoso.
        {
            [GemsWorker] public partial class TrailingDot { }
        }
        """)]
    [InlineData("""
        using GemsInjector;
        [GemsWorker(Include = "add")] public partial class NotAnArray { }
        [GemsWorker(Exclude = new[] { 1, 2 })] public partial class NotStrings { }
        [GemsWorker(Include = new[] { System.Environment.NewLine })] public partial class NotConstant { }
        [GemsWorker(Exclude = [.. new[] { "add" }])] public partial class Spread { }
        [GemsWorker(Include = )] public partial class Missing { }
        """)]
    public void InvalidOrBrokenCode_ProducesNoFileAndNoGeneratorError(string source)
    {
        var run = GeneratorHarness.Run(null, source);
        Assert.Empty(run.Sources);
        AssertNoGeneratorFailure(run);
    }

    [Theory]
    [InlineData("namespace Contoso; public sealed class var { } [GemsInjector.GemsWorker] public partial class ModelRunner { }")]
    [InlineData("namespace Contoso; [GemsInjector.GemsWorker] public partial class ModelRunner { public sealed class var { } }")]
    [InlineData("namespace Contoso; public partial class @var { [GemsInjector.GemsWorker] public partial class ModelRunner { } }")]
    public void TypeNamedVar_InTheWorkersScope_DoesNotChangeTheGeneratedCode(string source)
    {
        // Found by GeneratorFuzzTests: the generated "var startup = new ..." bound "var" to the user's type (CS0029).
        var run = GeneratorHarness.Run(null, "#pragma warning disable CS8981 // a lower-case type name, on purpose\n" + source);
        Assert.Single(run.Sources);
        GeneratorHarness.AssertCompiles(run);
    }

    [Fact]
    public void NamespaceWithoutName_GetsNoFileThatCannotCompile()
    {
        // Found by GeneratorFuzzTests: "namespace ;" inside a type declares a namespace named "", and the generator
        // wrote "namespace Contoso." (CS1001 in the generated file).
        var run = GeneratorHarness.Run(
            null,
            """
            namespace Contoso;
            public partial class Outer {
            namespace ;
            [GemsInjector.GemsWorker] public partial class ModelRunner { }
            }
            """);
        Assert.Empty(run.Sources);
        var generatedErrors = run.Compilation.GetDiagnostics()
            .Where(d => d.Severity == DiagnosticSeverity.Error && d.Location.SourceTree?.FilePath.EndsWith(".g.cs", System.StringComparison.Ordinal) == true)
            .ToList();
        Assert.Empty(generatedErrors);
    }

    [Fact]
    public void AttributeOnTwoPartialDeclarations_ProducesOneFile()
    {
        var run = GeneratorHarness.Run(
            null,
            "namespace N; [GemsInjector.GemsWorker] public partial class ModelRunner { }",
            "namespace N; [GemsInjector.GemsWorker] public partial class ModelRunner { }");
        Assert.Single(run.Sources);
        AssertNoGeneratorFailure(run);
    }

    [Fact]
    public void CollidingNamesInCodeThatDoesNotCompile_StillDoNotCrash()
    {
        // A namespace and a type with the same full name (CS0101) give two workers the same natural hint name.
        var run = GeneratorHarness.Run(
            null,
            "namespace A.B { [GemsInjector.GemsWorker] public partial class C { } }",
            "namespace A { public partial class B { [GemsInjector.GemsWorker] public partial class C { } } }");
        Assert.Equal(2, run.Sources.Length);
        Assert.Equal(2, run.Sources.Select(s => s.HintName).Distinct().Count());
        AssertNoGeneratorFailure(run);
    }

    [Fact]
    public void InvalidMSBuildVariable_ProducesNoFile()
    {
        var run = GeneratorHarness.Run(
            new System.Collections.Generic.Dictionary<string, string> { ["GemsEnvironmentVariable"] = "BAD=NAME" },
            "[GemsInjector.GemsWorker] public partial class ModelRunner { }",
            "[GemsInjector.GemsWorker(EnvironmentVariable = \"GOOD\")] public partial class OwnRunner { }");
        Assert.Equal(new[] { "OwnRunner.GemsWorker.g.cs" }, run.Sources.Select(s => s.HintName));
        AssertNoGeneratorFailure(run);
    }

    private static void AssertNoGeneratorFailure(GeneratorRun run)
    {
        Assert.Empty(run.GeneratorDiagnostics);
        var generatorErrors = run.Compilation.GetDiagnostics()
            .Where(d => d.Id is "CS8784" or "CS8785")
            .ToList();
        Assert.Empty(generatorErrors);
    }
}
