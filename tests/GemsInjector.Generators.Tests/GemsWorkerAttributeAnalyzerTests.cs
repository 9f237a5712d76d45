using System.Threading.Tasks;
using GemsInjector.Generators.Analyzers;
using Xunit;
using Verify = GemsInjector.Generators.Tests.Infrastructure.AnalyzerVerifier<GemsInjector.Generators.Analyzers.GemsWorkerAttributeAnalyzer>;

namespace GemsInjector.Generators.Tests;

/// <summary>GEMS002 (not partial), GEMS003 (invalid guard variable), GEMS006 (not module-accessible), GEMS007 (generic).</summary>
public sealed class GemsWorkerAttributeAnalyzerTests
{
    [Fact]
    public Task ValidWorkers_DoNotReport() => Verify.VerifyAsync("""
        using GemsInjector;

        namespace App
        {
            [GemsWorker]
            public partial class ModelRunner
            {
            }

            public partial class Outer
            {
                [GemsWorker(EnvironmentVariable = "MY_SWITCH")]
                internal partial class Inner
                {
                }

                [GemsWorker]
                protected internal partial class ProtectedInternal
                {
                }
            }

            [GemsWorker]
            public static partial class StaticRunner
            {
            }

            [GemsWorker]
            public abstract partial record class AbstractRunner;
        }
        """);

    [Fact]
    public Task NotPartial_Reports() => Verify.VerifyAsync("""
        using GemsInjector;

        [GemsWorker]
        public class {|GEMS002:ModelRunner|}
        {
        }
        """);

    [Fact]
    public Task ContainingTypeNotPartial_ReportsEachOffendingDeclaration() => Verify.VerifyAsync("""
        using GemsInjector;

        public class {|GEMS002:Outer|}
        {
            public partial class Middle
            {
                public struct {|GEMS002:Slot|}
                {
                    [GemsWorker]
                    public class {|GEMS002:ModelRunner|}
                    {
                    }
                }
            }
        }
        """);

    [Fact]
    public Task PartialAcrossFiles_DoesNotReport()
    {
        return Verify.VerifyAsync("""
            using GemsInjector;

            [GemsWorker]
            partial class ModelRunner
            {
            }

            partial class ModelRunner
            {
            }
            """);
    }

    [Theory]
    [InlineData("")]
    [InlineData("USE FLAGGEMS")]
    [InlineData("USE=1")]
    [InlineData("USE\\0GEMS")]
    [InlineData("USE\\tGEMS")]
    public Task InvalidAttributeVariable_ReportsOnTheArgument(string name) => Verify.VerifyAsync($$"""
        using GemsInjector;

        [GemsWorker({|GEMS003:EnvironmentVariable = "{{name}}"|})]
        public partial class ModelRunner
        {
        }
        """);

    [Fact]
    public Task InvalidMSBuildVariable_ReportsOnTheClass() => Verify.VerifyAsync(
        """
        using GemsInjector;

        [GemsWorker]
        public partial class {|GEMS003:ModelRunner|}
        {
        }

        [GemsWorker(EnvironmentVariable = "OWN_SWITCH")]
        public partial class OverridesIt
        {
        }
        """,
        "build_property.GemsEnvironmentVariable = USE=GEMS");

    [Fact]
    public Task ValidOrEmptyMSBuildVariable_DoesNotReport() => Verify.VerifyAsync(
        """
        using GemsInjector;

        [GemsWorker]
        public partial class ModelRunner
        {
        }
        """,
        "build_property.GemsEnvironmentVariable = \nbuild_property.GemsWorkerNamingConvention = true");

    [Fact]
    public Task ExplicitNullVariable_FallsBackQuietly() => Verify.VerifyAsync("""
        using GemsInjector;

        [GemsWorker(EnvironmentVariable = null)]
        public partial class ModelRunner
        {
        }
        """);

    [Fact]
    public Task GenericWorker_Reports() => Verify.VerifyAsync("""
        using GemsInjector;

        [GemsWorker]
        public partial class {|GEMS007:ModelRunner|}<TModel>
        {
        }

        public partial class Host<T>
        {
            [GemsWorker]
            public partial class {|GEMS007:Nested|}
            {
            }
        }
        """);

    [Fact]
    public Task PrivateOrProtectedNestedWorker_Reports() => Verify.VerifyAsync("""
        using GemsInjector;

        public partial class Host
        {
            [GemsWorker]
            private partial class {|GEMS006:PrivateRunner|}
            {
            }

            [GemsWorker]
            protected partial class {|GEMS006:ProtectedRunner|}
            {
            }

            private protected partial class Hidden
            {
                [GemsWorker]
                public partial class {|GEMS006:InsideHidden|}
                {
                }
            }
        }
        """);

    [Fact]
    public Task FileLocalWorker_Reports() => Verify.VerifyAsync("""
        using GemsInjector;

        [GemsWorker]
        file partial class {|GEMS006:ModelRunner|}
        {
        }
        """);

    [Fact]
    public void DescriptorsCarryHelpLinks()
    {
        foreach (var descriptor in new GemsWorkerAttributeAnalyzer().SupportedDiagnostics)
        {
            Assert.Equal("GemsInjector", descriptor.Category);
            Assert.Equal($"https://github.com/gemsinjector/gemsinjector/blob/main/docs/diagnostics/{descriptor.Id}.md", descriptor.HelpLinkUri);
            Assert.True(System.IO.File.Exists(DocPath(descriptor.Id)), "missing " + DocPath(descriptor.Id));
        }
    }

    private static string DocPath(string id)
        => System.IO.Path.GetFullPath(System.IO.Path.Combine(Infrastructure.TestProject.Directory, "..", "..", "docs", "diagnostics", id + ".md"));
}
