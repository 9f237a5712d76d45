using System.Threading.Tasks;
using GemsInjector.CodeFixes;
using GemsInjector.Generators.Analyzers;
using Xunit;
using AddGemsWorker = GemsInjector.Generators.Tests.Infrastructure.CodeFixVerifier<
    GemsInjector.Generators.Analyzers.WorkerEnablementAnalyzer, GemsInjector.CodeFixes.AddGemsWorkerCodeFixProvider>;
using AddPartial = GemsInjector.Generators.Tests.Infrastructure.CodeFixVerifier<
    GemsInjector.Generators.Analyzers.GemsWorkerAttributeAnalyzer, GemsInjector.CodeFixes.AddPartialCodeFixProvider>;

namespace GemsInjector.Generators.Tests;

/// <summary>The GEMS001 fix (add [GemsWorker], partial, using) and the GEMS002 fix (add partial).</summary>
public sealed class CodeFixTests
{
    [Fact]
    public Task AddGemsWorker_AddsAttributePartialAndUsing() => AddGemsWorker.VerifyAsync(
        """
        using System;

        namespace App;

        /// <summary>Runs the model.</summary>
        public sealed class {|GEMS001:LlamaModelRunner|}
        {
        }
        """,
        """
        using System;
        using GemsInjector;

        namespace App;

        /// <summary>Runs the model.</summary>
        [GemsWorker]
        public sealed partial class LlamaModelRunner
        {
        }
        """);

    [Theory]
    [InlineData("public class {|GEMS001:ModelRunner|}<T> { }")]
    [InlineData("public partial class Outer<T> { public class {|GEMS001:ModelRunner|} { } }")]
    [InlineData("public partial class Outer { private class {|GEMS001:ModelRunner|} { } }")]
    [InlineData("file class {|GEMS001:ModelRunner|} { }")]
    public Task AddGemsWorker_IsNotOfferedWhereTheGeneratorCannotExtendTheClass(string source)
    {
        // Found by the analyzer sweep over Orleans (generic grains such as BufferGrain<T>): the fix made
        // "[GemsWorker] partial class BufferGrain<T>", an error (GEMS007) in place of a warning.
        var code = "namespace App;\n" + source + "\n";
        return AddGemsWorker.VerifyAsync(code, code);
    }

    [Fact]
    public Task AddGemsWorker_WithoutUsingsOrModifiers() => AddGemsWorker.VerifyAsync(
        """
        namespace App
        {
            class {|GEMS001:ModelRunner|}
            {
            }
        }
        """,
        """
        using GemsInjector;

        namespace App
        {
            [GemsWorker]
            partial class ModelRunner
            {
            }
        }
        """);

    [Fact]
    public Task AddGemsWorker_KeepsExistingUsingAndMakesContainersPartial() => AddGemsWorker.VerifyAsync(
        """
        using GemsInjector;

        namespace App
        {
            [GemsWorkerBase]
            public class RunnerBase
            {
            }

            public static class Workers
            {
                internal struct Slot
                {
                    [Serializable]
                    internal class {|GEMS001:Worker|} : RunnerBase
                    {
                    }
                }
            }
        }
        """.Replace("[Serializable]", "[System.Serializable]"),
        """
        using GemsInjector;

        namespace App
        {
            [GemsWorkerBase]
            public class RunnerBase
            {
            }

            public static partial class Workers
            {
                internal partial struct Slot
                {
                    [GemsWorker]
                    [System.Serializable]
                    internal partial class Worker : RunnerBase
                    {
                    }
                }
            }
        }
        """);

    [Fact]
    public Task AddGemsWorker_InsideGemsInjectorNamespaceNeedsNoUsing() => AddGemsWorker.VerifyAsync(
        """
        namespace GemsInjector.Samples
        {
            public class {|GEMS001:ModelRunner|}
            {
            }
        }
        """,
        """
        namespace GemsInjector.Samples
        {
            [GemsWorker]
            public partial class ModelRunner
            {
            }
        }
        """);

    [Fact]
    public Task AddGemsWorker_SortsUsingAfterSystem() => AddGemsWorker.VerifyAsync(
        """
        using System.Collections.Generic;
        using Microsoft.Extensions.Logging;

        public class {|GEMS001:ModelRunner|}
        {
            public List<ILogger> Loggers { get; } = new();
        }
        """,
        """
        using System.Collections.Generic;
        using GemsInjector;
        using Microsoft.Extensions.Logging;

        [GemsWorker]
        public partial class ModelRunner
        {
            public List<ILogger> Loggers { get; } = new();
        }
        """);

    [Fact]
    public Task AddPartial_OnTheWorker() => AddPartial.VerifyAsync(
        """
        using GemsInjector;

        [GemsWorker]
        public sealed class {|GEMS002:ModelRunner|}
        {
        }
        """,
        """
        using GemsInjector;

        [GemsWorker]
        public sealed partial class ModelRunner
        {
        }
        """);

    [Fact]
    public Task AddPartial_OnEveryTypeThatLacksIt() => AddPartial.VerifyAsync(
        """
        using GemsInjector;

        class {|GEMS002:Outer|}
        {
            public partial record Middle
            {
                [GemsWorker]
                internal class {|GEMS002:ModelRunner|}
                {
                }
            }
        }
        """,
        """
        using GemsInjector;

        partial class Outer
        {
            public partial record Middle
            {
                [GemsWorker]
                internal partial class ModelRunner
                {
                }
            }
        }
        """);
}
