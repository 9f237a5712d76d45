using System;
using System.Collections;
using System.Collections.Generic;
using System.Linq;
using System.Reflection;
using GemsInjector.Generators.Models;
using GemsInjector.Generators.Tests.Infrastructure;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Xunit;

namespace GemsInjector.Generators.Tests;

/// <summary>The pipeline caches: an unrelated edit re-runs no step, and the models hold no Roslyn object.</summary>
public sealed class GeneratorCachingTests
{
    private const string Worker = """
        using GemsInjector;
        using Microsoft.Extensions.Logging;
        using Microsoft.Extensions.Logging.Abstractions;

        namespace Contoso.Inference;

        public partial class Outer
        {
            [GemsWorker(EnvironmentVariable = "CONTOSO_GEMS")]
            public partial class ModelRunner
            {
                private static readonly ILogger Logger = NullLogger.Instance;
            }
        }

        [GemsWorker(Include = ["add", "silu_and_mul"], Exclude = new string[0])]
        public partial class SecondRunner
        {
        }
        """;

    private const string Other = """
        namespace Contoso.Inference;

        public class Tokenizer
        {
            public int Count(string text) => text.Length;
        }
        """;

    private static readonly string[] StepNames =
    {
        TrackingNames.Candidates,
        TrackingNames.ValidCandidates,
        TrackingNames.MSBuildGuardVariable,
        TrackingNames.Workers,
        TrackingNames.ValidWorkers,
        TrackingNames.AllWorkers,
    };

    [Fact]
    public void AddingAnUnrelatedFile_ReusesEveryStep()
    {
        AssertCachedAfter(compilation => compilation.AddSyntaxTrees(
            CSharpSyntaxTree.ParseText("namespace Contoso.Other; public class Unrelated { }", GeneratorHarness.ParseOptions, path: "/src/New.cs")));
    }

    [Fact]
    public void EditingAMethodBodyInAnotherFile_ReusesEveryStep()
    {
        AssertCachedAfter(compilation =>
        {
            var old = compilation.SyntaxTrees.Single(t => t.FilePath == "/src/File1.cs");
            var edited = CSharpSyntaxTree.ParseText(
                Other.Replace("text.Length", "text.Length + 1"), GeneratorHarness.ParseOptions, path: old.FilePath);
            return compilation.ReplaceSyntaxTree(old, edited);
        });
    }

    [Fact]
    public void EditingTheWorkersFileOutsideTheWorkers_ReusesTheModels()
    {
        AssertCachedAfter(compilation =>
        {
            var old = compilation.SyntaxTrees.Single(t => t.FilePath == "/src/File0.cs");
            var edited = CSharpSyntaxTree.ParseText(
                Worker + "\npublic class Extra { public void M() { } }\n", GeneratorHarness.ParseOptions, path: old.FilePath);
            return compilation.ReplaceSyntaxTree(old, edited);
        });
    }

    private static void AssertCachedAfter(Func<CSharpCompilation, CSharpCompilation> edit)
    {
        var compilation = GeneratorHarness.CreateCompilation(Worker, Other);
        var driver = GeneratorHarness.CreateDriver(track: true);
        driver = driver.RunGenerators(compilation);
        var first = driver.GetRunResult().Results.Single();
        Assert.Equal(2, first.GeneratedSources.Length);
        foreach (var step in StepNames)
        {
            Assert.True(first.TrackedSteps.ContainsKey(step), "step not tracked: " + step);
        }

        driver = driver.RunGenerators(edit(compilation));
        var second = driver.GetRunResult().Results.Single();
        Assert.Equal(
            first.GeneratedSources.Select(s => (s.HintName, s.SourceText.ToString())),
            second.GeneratedSources.Select(s => (s.HintName, s.SourceText.ToString())));

        foreach (var step in StepNames)
        {
            foreach (var run in second.TrackedSteps[step])
            {
                foreach (var (_, reason) in run.Outputs)
                {
                    // In an edited file the attribute step re-runs its transform; the model it yields must still
                    // compare equal (Unchanged), so nothing after it re-runs.
                    Assert.True(
                        reason is IncrementalStepRunReason.Cached or IncrementalStepRunReason.Unchanged,
                        $"step {step} output was {reason}");
                }
            }
        }

        foreach (var (_, reason) in second.TrackedOutputSteps.SelectMany(s => s.Value).SelectMany(r => r.Outputs))
        {
            Assert.True(reason is IncrementalStepRunReason.Cached or IncrementalStepRunReason.Unchanged, "output step was " + reason);
        }
    }

    [Fact]
    public void ModelsHoldNoRoslynObjects()
    {
        var forbidden = new[] { typeof(ISymbol), typeof(SyntaxNode), typeof(Location), typeof(Compilation), typeof(SemanticModel), typeof(SyntaxTree) };
        var models = typeof(WorkerModel).Assembly.GetTypes()
            .Where(t => t.Namespace == typeof(WorkerModel).Namespace && !t.IsGenericTypeDefinition && t.IsClass)
            .ToList();
        Assert.Contains(typeof(WorkerModel), models);
        Assert.Contains(typeof(WorkerCandidate), models);

        foreach (var model in models)
        {
            Walk(model, forbidden, new HashSet<Type>(), model.Name);
        }
    }

    [Fact]
    public void ModelsAreEquatableByValue()
    {
        static WorkerCandidate Make() => new(
            "Contoso",
            new[] { new ContainingTypeModel("partial class", "Outer") }.ToEquatableArray(),
            "partial class",
            "ModelRunner",
            "Contoso.Outer.ModelRunner",
            "Contoso.Outer.ModelRunner.GemsWorker.g.cs",
            null,
            "Logger");

        Assert.Equal(Make(), Make());
        Assert.Equal(Make().GetHashCode(), Make().GetHashCode());
        Assert.Equal(new WorkerModel(Make(), "USE_FLAGGEMS"), new WorkerModel(Make(), "USE_FLAGGEMS"));
        Assert.NotEqual(new WorkerModel(Make(), "USE_FLAGGEMS"), new WorkerModel(Make(), "OTHER"));
    }

    [Fact]
    public void OperatorListsAreEquatableByValue_NullAndEmptyApart()
    {
        static WorkerCandidate Make(string[]? include, string[]? exclude) => new(
            "Contoso",
            EquatableArray<ContainingTypeModel>.Empty,
            "partial class",
            "ModelRunner",
            "Contoso.ModelRunner",
            "Contoso.ModelRunner.GemsWorker.g.cs",
            null,
            null,
            include?.ToEquatableArray(),
            exclude?.ToEquatableArray());

        Assert.Equal(Make(new[] { "add", "mul" }, null), Make(new[] { "add", "mul" }, null));
        Assert.Equal(Make(new[] { "add", "mul" }, null).GetHashCode(), Make(new[] { "add", "mul" }, null).GetHashCode());
        Assert.NotEqual(Make(new[] { "add", "mul" }, null), Make(new[] { "mul", "add" }, null));
        Assert.NotEqual(Make(new[] { "add" }, null), Make(null, new[] { "add" }));
        Assert.NotEqual(Make(null, null), Make(System.Array.Empty<string>(), null));
        Assert.NotEqual(Make(null, null), Make(null, System.Array.Empty<string>()));
        Assert.Equal(Make(System.Array.Empty<string>(), null), Make(System.Array.Empty<string>(), null));
    }

    private static void Walk(Type type, Type[] forbidden, HashSet<Type> seen, string path)
    {
        if (!seen.Add(type) || type.IsPrimitive || type == typeof(string) || type.IsEnum)
        {
            return;
        }

        foreach (var bad in forbidden)
        {
            Assert.False(bad.IsAssignableFrom(type), $"{path} is a {bad.Name}");
        }

        if (type.IsArray)
        {
            Walk(type.GetElementType()!, forbidden, seen, path + "[]");
            return;
        }

        foreach (var argument in type.IsGenericType ? type.GetGenericArguments() : Type.EmptyTypes)
        {
            Walk(argument, forbidden, seen, $"{path}<{argument.Name}>");
        }

        if (type.Namespace?.StartsWith("System", StringComparison.Ordinal) == true && typeof(IEnumerable).IsAssignableFrom(type))
        {
            return;
        }

        if (type.Namespace?.StartsWith("System", StringComparison.Ordinal) == true && type != typeof(Nullable<>))
        {
            return;
        }

        const BindingFlags all = BindingFlags.Instance | BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.DeclaredOnly;
        for (var current = type; current is not null && current != typeof(object) && current != typeof(ValueType); current = current.BaseType)
        {
            foreach (var field in current.GetFields(all))
            {
                Walk(field.FieldType, forbidden, seen, $"{path}.{field.Name}");
            }

            foreach (var property in current.GetProperties(all))
            {
                Walk(property.PropertyType, forbidden, seen, $"{path}.{property.Name}");
            }
        }
    }
}
