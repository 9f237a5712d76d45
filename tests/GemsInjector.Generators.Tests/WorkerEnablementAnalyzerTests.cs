using System.Linq;
using System.Threading.Tasks;
using GemsInjector.Generators.Analyzers;
using Xunit;
using Verify = GemsInjector.Generators.Tests.Infrastructure.AnalyzerVerifier<GemsInjector.Generators.Analyzers.WorkerEnablementAnalyzer>;

namespace GemsInjector.Generators.Tests;

/// <summary>GEMS001 (worker without enablement) and GEMS004 (redundant Gems.Enable).</summary>
public sealed class WorkerEnablementAnalyzerTests
{
    private const string HostFramework = """
        namespace Host
        {
            [GemsInjector.GemsWorkerBase]
            public class RunnerBase
            {
            }

            [GemsInjector.GemsWorkerBase]
            public interface IRunner
            {
            }

            public interface IBatchRunner : IRunner
            {
            }

            [GemsInjector.GemsWorkerBase]
            public abstract class GenericRunner<T>
            {
            }
        }
        """;

    [Fact]
    public Task DerivedFromMarkedBaseClass_Reports() => Verify.VerifyAsync(HostFramework + """

        namespace App
        {
            public sealed class {|GEMS001:LlamaWorker|} : Host.RunnerBase
            {
            }
        }
        """);

    [Fact]
    public Task ImplementsMarkedInterfaceTransitively_Reports() => Verify.VerifyAsync(HostFramework + """

        namespace App
        {
            public class Intermediate
            {
            }

            public class {|GEMS001:BatchWorker|} : Intermediate, Host.IBatchRunner
            {
            }
        }
        """);

    [Fact]
    public Task DerivedFromGenericMarkedBase_Reports() => Verify.VerifyAsync(HostFramework + """

        namespace App
        {
            public class {|GEMS001:TypedWorker|} : Host.GenericRunner<int>
            {
            }
        }
        """);

    [Fact]
    public Task IndirectlyDerived_Reports() => Verify.VerifyAsync(HostFramework + """

        namespace App
        {
            public abstract class MyRunnerBase : Host.RunnerBase
            {
            }

            public class {|GEMS001:Worker|} : MyRunnerBase
            {
            }
        }
        """);

    [Fact]
    public Task NamingConvention_Reports() => Verify.VerifyAsync("""
        namespace App
        {
            public class {|GEMS001:LlamaModelRunner|}
            {
            }
        }
        """);

    [Fact]
    public Task NamingConventionSwitchedOff_DoesNotReport() => Verify.VerifyAsync(
        """
        namespace App
        {
            public class LlamaModelRunner
            {
            }
        }
        """,
        "build_property.GemsWorkerNamingConvention = false");

    [Fact]
    public Task BaseTypeListedInMSBuild_Reports() => Verify.VerifyAsync(
        """
        namespace Vendor
        {
            public class Engine
            {
                public class Runner
                {
                }
            }

            public interface IExecutor
            {
            }
        }

        namespace App
        {
            public class {|GEMS001:EngineWorker|} : Vendor.Engine.Runner
            {
            }

            public class {|GEMS001:Executor|} : Vendor.IExecutor
            {
            }

            public class Unrelated : Vendor.Engine
            {
            }
        }
        """,
        // A global config cuts a value at ';' (it starts a comment there), so the list reaches the analyzer
        // comma-separated; the package's targets turn the MSBuild ';' list into commas.
        "build_property.GemsWorkerBaseTypes = Vendor.Engine+Runner, Vendor.IExecutor");

    /// <summary>
    /// Found by GeneratorFuzzTests: the base type's name was built from the namespace's display text ("@class.@event"),
    /// so a listed type in a namespace named by a keyword never matched its metadata name.
    /// </summary>
    [Fact]
    public Task BaseTypesListed_MatchInNamespacesNamedByKeywords() => Verify.VerifyAsync(
        """
        namespace @class.@event
        {
            public class Engine
            {
                public class Runner
                {
                }
            }
        }

        namespace App
        {
            public sealed class {|GEMS001:Shard|} : @class.@event.Engine.Runner
            {
            }
        }
        """,
        "build_property.GemsWorkerBaseTypes = class.event.Engine+Runner");

    [Fact]
    public void TypeListAcceptsSemicolonsCommasAndNestedDots()
    {
        var names = AnalyzerHelpers.ParseTypeList(" Vendor.Engine+Runner;global::Vendor.IExecutor , ;Other.Type ");
        Assert.Equal(new[] { "Other.Type", "Vendor.Engine.Runner", "Vendor.IExecutor" }, names.Order());
    }

    [Fact]
    public Task MarkedWorker_DoesNotReport() => Verify.VerifyAsync(HostFramework + """

        namespace App
        {
            [GemsInjector.GemsWorker]
            public partial class LlamaWorker : Host.RunnerBase
            {
            }

            [GemsInjector.GemsWorker]
            public partial class LlamaModelRunner
            {
            }
        }
        """);

    [Fact]
    public Task CallsGemsEnableItself_DoesNotReport() => Verify.VerifyAsync(HostFramework + """

        namespace App
        {
            public class LlamaWorker : Host.RunnerBase
            {
                public LlamaWorker()
                {
                    GemsInjector.Gems.Enable();
                }
            }

            public class LlamaModelRunner
            {
                private static readonly GemsInjector.GemsStatus Status = GemsInjector.Gems.Enable(new GemsInjector.GemsOptions());
            }
        }
        """);

    [Fact]
    public Task BaseTypesAbstractClassesInterfacesUnrelated_DoNotReport() => Verify.VerifyAsync(HostFramework + """

        namespace App
        {
            public abstract class AbstractWorker : Host.RunnerBase
            {
            }

            public abstract class AbstractModelRunner
            {
            }

            public interface ISpecialRunner : Host.IRunner
            {
            }

            public struct RunnerSettings : Host.IRunner
            {
            }

            public class Unrelated
            {
            }

            [GemsInjector.GemsWorkerBase]
            public class ModelRunner
            {
            }
        }
        """);

    [Fact]
    public Task WithoutGemsInjectorReferenceNothingHappens()
    {
        // The analyzer only speaks when GemsInjector is referenced; with it (as here) a plain class is quiet.
        return Verify.VerifyAsync("""
            public class Program
            {
                public static void Main()
                {
                }
            }
            """);
    }

    [Fact]
    public Task RedundantEnableInMarkedWorker_Reports() => Verify.VerifyAsync("""
        using GemsInjector;

        namespace App
        {
            [GemsWorker]
            public partial class ModelRunner
            {
                public void Start()
                {
                    {|GEMS004:Gems.Enable()|};
                }
            }
        }
        """);

    [Fact]
    public Task EnableInUnmarkedClass_IsNotRedundant() => Verify.VerifyAsync("""
        using GemsInjector;

        namespace App
        {
            public class Launcher
            {
                public void Start()
                {
                    Gems.Enable();
                }
            }
        }
        """);

    [Fact]
    public void DescriptorsCarryHelpLinks()
    {
        foreach (var descriptor in new WorkerEnablementAnalyzer().SupportedDiagnostics)
        {
            Assert.Equal("GemsInjector", descriptor.Category);
            Assert.Equal($"https://github.com/gemsinjector/gemsinjector/blob/main/docs/diagnostics/{descriptor.Id}.md", descriptor.HelpLinkUri);
        }
    }
}
