using System.Collections.Generic;
using System.Linq;
using System.Runtime.CompilerServices;
using GemsInjector.Generators.Tests.Infrastructure;
using Xunit;

namespace GemsInjector.Generators.Tests;

/// <summary>
/// The generated code is the contract users read: each case pins it in Snapshots/&lt;TestName&gt;.verified.cs (one file
/// per generated source when a case generates several) and proves that user code + generated code compiles with
/// nullable on and warnings as errors.
/// </summary>
public sealed class GeneratorSnapshotTests
{
    [Fact]
    public void BlockScopedNamespace() => Verify(
        """
        using GemsInjector;
        using Microsoft.Extensions.Logging;
        using Microsoft.Extensions.Logging.Abstractions;

        namespace Contoso.Inference
        {
            [GemsWorker]
            public partial class ModelRunner
            {
                private static readonly ILogger Logger = NullLogger.Instance;

                public void Run() => Logger.LogInformation("running");
            }
        }
        """,
        "Contoso.Inference.ModelRunner.GemsWorker.g.cs");

    [Fact]
    public void FileScopedNamespace() => Verify(
        """
        using GemsInjector;

        namespace Contoso.Inference;

        [GemsWorker]
        public partial class ModelRunner
        {
        }
        """,
        "Contoso.Inference.ModelRunner.GemsWorker.g.cs");

    [Fact]
    public void GlobalNamespace() => Verify(
        """
        [GemsInjector.GemsWorker]
        public partial class ModelRunner
        {
        }
        """,
        "ModelRunner.GemsWorker.g.cs");

    [Fact]
    public void NestedInPartialTypes() => Verify(
        """
        using GemsInjector;

        namespace Contoso.Inference;

        public partial class Cluster
        {
            public partial record Node
            {
                public partial struct Slot
                {
                    [GemsWorker]
                    public sealed partial class ModelRunner
                    {
                    }
                }
            }
        }
        """,
        "Contoso.Inference.Cluster.Node.Slot.ModelRunner.GemsWorker.g.cs");

    [Fact]
    public void NestedInRecordStructAndInterface() => Verify(
        """
        using GemsInjector;

        namespace Contoso.Inference;

        public partial interface IHost
        {
            public partial record struct Shard(int Index)
            {
                [GemsWorker]
                internal partial class ModelRunner
                {
                }
            }
        }
        """,
        "Contoso.Inference.IHost.Shard.ModelRunner.GemsWorker.g.cs");

    [Fact]
    public void RecordClass() => Verify(
        """
        using GemsInjector;

        namespace Contoso.Inference;

        [GemsWorker]
        public partial record class ModelRunner(string Model);
        """,
        "Contoso.Inference.ModelRunner.GemsWorker.g.cs");

    [Fact]
    public void SealedClass() => Verify(
        """
        using GemsInjector;

        namespace Contoso.Inference;

        [GemsWorker]
        public sealed partial class ModelRunner
        {
        }
        """,
        "Contoso.Inference.ModelRunner.GemsWorker.g.cs");

    [Fact]
    public void StaticClass() => Verify(
        """
        using GemsInjector;

        namespace Contoso.Inference;

        [GemsWorker]
        public static partial class ModelRunner
        {
            public static void Run()
            {
            }
        }
        """,
        "Contoso.Inference.ModelRunner.GemsWorker.g.cs");

    [Fact]
    public void InternalClass() => Verify(
        """
        using GemsInjector;

        namespace Contoso.Inference;

        [GemsWorker]
        internal partial class ModelRunner
        {
        }
        """,
        "Contoso.Inference.ModelRunner.GemsWorker.g.cs");

    [Fact]
    public void AbstractClass() => Verify(
        """
        using GemsInjector;

        namespace Contoso.Inference;

        [GemsWorker]
        public abstract partial class ModelRunnerBase
        {
            public abstract void Run();
        }
        """,
        "Contoso.Inference.ModelRunnerBase.GemsWorker.g.cs");

    [Fact]
    public void SeveralWorkersInOneFile() => VerifyAll(
        new[]
        {
        """
        using GemsInjector;

        namespace Contoso.Inference;

        [GemsWorker]
        public partial class PrefillRunner
        {
        }

        [GemsWorker(EnvironmentVariable = "USE_FLAGGEMS_DECODE")]
        public partial class DecodeRunner
        {
        }
        """,
        },
        null,
        new[] { "Contoso.Inference.DecodeRunner.GemsWorker.g.cs", "Contoso.Inference.PrefillRunner.GemsWorker.g.cs" });

    [Fact]
    public void SameNameInTwoNamespaces() => VerifyAll(
        new[]
        {
            """
            namespace Contoso.Prefill
            {
                [GemsInjector.GemsWorker]
                public partial class ModelRunner
                {
                }
            }
            """,
            """
            namespace Contoso.Decode
            {
                [GemsInjector.GemsWorker]
                public partial class ModelRunner
                {
                }
            }
            """,
        },
        null,
        new[] { "Contoso.Decode.ModelRunner.GemsWorker.g.cs", "Contoso.Prefill.ModelRunner.GemsWorker.g.cs" });

    [Fact]
    public void WorkerWithStaticConstructor() => Verify(
        """
        using GemsInjector;

        namespace Contoso.Inference;

        [GemsWorker]
        public partial class ModelRunner
        {
            public static readonly string Started;

            static ModelRunner()
            {
                Started = "yes";
            }
        }
        """,
        "Contoso.Inference.ModelRunner.GemsWorker.g.cs");

    [Fact]
    public void LoggerField() => Verify(
        """
        using GemsInjector;
        using Microsoft.Extensions.Logging;
        using Microsoft.Extensions.Logging.Abstractions;

        namespace Contoso.Inference;

        [GemsWorker]
        public partial class ModelRunner
        {
            private readonly ILogger _instanceLogger = NullLogger.Instance;
            private static readonly ILogger<ModelRunner> s_logger = NullLogger<ModelRunner>.Instance;
            private static readonly ILogger s_second = NullLogger.Instance;

            public ILogger InstanceLogger => _instanceLogger;
        }
        """,
        "Contoso.Inference.ModelRunner.GemsWorker.g.cs");

    [Fact]
    public void LoggerProperty() => Verify(
        """
        using GemsInjector;
        using Microsoft.Extensions.Logging;
        using Microsoft.Extensions.Logging.Abstractions;

        namespace Contoso.Inference;

        [GemsWorker]
        public partial class ModelRunner
        {
            public ILogger Instance => NullLogger.Instance;

            public static ILogger Log { get; set; } = NullLogger.Instance;
        }
        """,
        "Contoso.Inference.ModelRunner.GemsWorker.g.cs");

    [Fact]
    public void CustomEnvironmentVariable() => Verify(
        """
        using GemsInjector;

        namespace Contoso.Inference;

        [GemsWorker(EnvironmentVariable = "CONTOSO_USE_GEMS")]
        public partial class ModelRunner
        {
        }
        """,
        "Contoso.Inference.ModelRunner.GemsWorker.g.cs");

    [Fact]
    public void MSBuildEnvironmentVariable() => VerifyAll(
        new[]
        {
            """
            using GemsInjector;

            namespace Contoso.Inference;

            [GemsWorker]
            public partial class ModelRunner
            {
            }

            [GemsWorker(EnvironmentVariable = "OWN_SWITCH")]
            public partial class OwnSwitchRunner
            {
            }
            """,
        },
        new Dictionary<string, string> { ["GemsEnvironmentVariable"] = "CLUSTER_USE_GEMS" },
        new[] { "Contoso.Inference.ModelRunner.GemsWorker.g.cs", "Contoso.Inference.OwnSwitchRunner.GemsWorker.g.cs" });

    [Fact]
    public void KeywordNamesAreEscaped() => Verify(
        """
        namespace Contoso.@event;

        public partial class @class
        {
            [GemsInjector.GemsWorker(EnvironmentVariable = "USE\"GEMS<&>")]
            public partial class @record
            {
            }
        }
        """,
        "Contoso.event.class.record.GemsWorker.g.cs");

    [Fact]
    public void IncludeList() => Verify(
        """
        using GemsInjector;

        namespace Contoso.Inference;

        [GemsWorker(Include = new[] { "add", "silu" })]
        public partial class ModelRunner
        {
        }
        """,
        "Contoso.Inference.ModelRunner.GemsWorker.g.cs");

    [Fact]
    public void ExcludeCollectionExpression() => Verify(
        """
        using GemsInjector;
        using GemsInjector.Operators;
        using Microsoft.Extensions.Logging;
        using Microsoft.Extensions.Logging.Abstractions;

        namespace Contoso.Inference;

        [GemsWorker(Exclude = [OperatorNames.ScaledDotProductAttention, "topk"], EnvironmentVariable = "USE_GEMS_DECODE")]
        public partial class DecodeRunner
        {
            private static readonly ILogger Logger = NullLogger.Instance;
        }
        """,
        "Contoso.Inference.DecodeRunner.GemsWorker.g.cs");

    /// <summary>An empty list is not "no list": it is passed on (the runtime then overrides no operator).</summary>
    [Fact]
    public void EmptyIncludeList() => Verify(
        """
        using GemsInjector;

        namespace Contoso.Inference;

        [GemsWorker(Include = [])]
        public partial class ModelRunner
        {
        }
        """,
        "Contoso.Inference.ModelRunner.GemsWorker.g.cs");

    /// <summary>
    /// Names are passed on as written, escaped: the runtime judges them (GEMS005 and GEMS008 warn at build time), so both
    /// lists and an odd name still compile; a null element is passed as "", which the runtime reads the same way.
    /// </summary>
    [Fact]
    public void IncludeAndExcludeWithOddNames() => Verify(
        """
        using GemsInjector;

        namespace Contoso.Inference;

        [GemsWorker(Include = new string[] { "add", "quote\"back\\slash\nnew line", null! }, Exclude = new string[] { "mul" })]
        public partial class ModelRunner
        {
        }
        """,
        "Contoso.Inference.ModelRunner.GemsWorker.g.cs");

    /// <summary>Lists set to null are no lists: the output is byte-identical to a plain [GemsWorker]'s.</summary>
    [Fact]
    public void NullListsGenerateThePlainBlock()
    {
        var run = GeneratorHarness.Run(
            null,
            """
            using GemsInjector;

            namespace Contoso.Inference;

            [GemsWorker(Include = null, Exclude = null)]
            public partial class ModelRunner
            {
            }
            """);
        GeneratorHarness.AssertCompiles(run);
        var (_, text) = Assert.Single(run.Sources);
        Snapshot.Match(GeneratorHarness.Scrub(text), nameof(FileScopedNamespace));
    }

    /// <summary>Decision: a generic worker gets no file (GEMS007); the rest of the assembly still compiles.</summary>
    [Fact]
    public void GenericWorkerIsSkipped()
    {
        var run = GeneratorHarness.Run(
            null,
            """
            using GemsInjector;

            namespace Contoso.Inference;

            [GemsWorker]
            public partial class ModelRunner<TModel>
            {
            }

            public partial class Host<T>
            {
                [GemsWorker]
                public partial class NestedRunner
                {
                }
            }
            """);
        Assert.Empty(run.Sources);
        GeneratorHarness.AssertCompiles(run);
    }

    private static void Verify(string source, string hintName, [CallerMemberName] string caller = "")
        => VerifyAll(new[] { source }, null, new[] { hintName }, caller);

    private static void VerifyAll(
        string[] sources,
        IReadOnlyDictionary<string, string>? msbuildProperties,
        string[] hintNames,
        [CallerMemberName] string caller = "")
    {
        var run = GeneratorHarness.Run(msbuildProperties, sources);
        Assert.Equal(hintNames.OrderBy(n => n, System.StringComparer.Ordinal), run.Sources.Select(s => s.HintName).OrderBy(n => n, System.StringComparer.Ordinal));
        GeneratorHarness.AssertCompiles(run);

        foreach (var (hint, text) in run.Sources)
        {
            Assert.DoesNotContain("\r", text);
            var name = run.Sources.Length == 1 ? caller! : caller + "#" + hint[..^".g.cs".Length];
            Snapshot.Match(GeneratorHarness.Scrub(text), name);
        }
    }
}
