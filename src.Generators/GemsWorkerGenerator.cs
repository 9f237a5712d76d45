using System;
using System.Collections.Generic;
using System.Collections.Immutable;
using System.Text;
using GemsInjector.Generators.Models;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp.Syntax;
using Microsoft.CodeAnalysis.Text;

namespace GemsInjector.Generators;

/// <summary>
/// Adds to each valid <c>[GemsWorker]</c> class a module initializer that enables GemsInjector in every process that
/// runs it, guarded by an environment variable. Reports nothing itself: the analyzers explain the classes it skips.
/// </summary>
[Generator(LanguageNames.CSharp)]
public sealed class GemsWorkerGenerator : IIncrementalGenerator
{
    /// <inheritdoc/>
    public void Initialize(IncrementalGeneratorInitializationContext context)
    {
        var candidates = context.SyntaxProvider
            .ForAttributeWithMetadataName(
                KnownNames.GemsWorkerAttribute,
                static (node, _) => node is TypeDeclarationSyntax,
                static (syntaxContext, cancellationToken) => WorkerParser.Parse(syntaxContext, cancellationToken))
            .WithTrackingName(TrackingNames.Candidates)
            .Where(static candidate => candidate is not null)
            .Select(static (candidate, _) => candidate!)
            .WithTrackingName(TrackingNames.ValidCandidates);

        var msbuildVariable = context.AnalyzerConfigOptionsProvider
            .Select(static (provider, _) =>
                provider.GlobalOptions.TryGetValue(KnownNames.EnvironmentVariableProperty_MSBuild, out var value) ? value : null)
            .WithTrackingName(TrackingNames.MSBuildGuardVariable);

        var workers = candidates
            .Combine(msbuildVariable)
            .Select(static (pair, _) => WorkerParser.Resolve(pair.Left, pair.Right))
            .WithTrackingName(TrackingNames.Workers)
            .Where(static worker => worker is not null)
            .Select(static (worker, _) => worker!)
            .WithTrackingName(TrackingNames.ValidWorkers);

        // Collected so that hint names are made unique across all workers: only code that does not compile (a
        // namespace and a type of the same full name, CS0101) can make two natural hint names collide, and a
        // duplicate hint name would otherwise fail the whole generator.
        context.RegisterSourceOutput(workers.Collect().WithTrackingName(TrackingNames.AllWorkers), static (production, all) => Produce(production, all));
    }

    private static void Produce(SourceProductionContext context, ImmutableArray<WorkerModel> workers)
    {
        var used = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
        foreach (var worker in workers)
        {
            string text;
            try
            {
                text = WorkerEmitter.Emit(worker);
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                continue;
            }

            var hintName = worker.Worker.HintName;
            for (var attempt = 2; !used.Add(hintName); attempt++)
            {
                hintName = worker.Worker.HintName.Replace(".GemsWorker.g.cs", $".{attempt}.GemsWorker.g.cs");
            }

            context.AddSource(hintName, SourceText.From(text, Encoding.UTF8));
        }
    }
}

/// <summary>The tracking names of the generator's steps, for incremental-caching tests.</summary>
public static class TrackingNames
{
    /// <summary>Every <c>[GemsWorker]</c> declaration read into a candidate (null when the generator skips it).</summary>
    public const string Candidates = "GemsWorker.Candidates";

    /// <summary>The candidates the generator can extend.</summary>
    public const string ValidCandidates = "GemsWorker.ValidCandidates";

    /// <summary>The MSBuild property <c>GemsEnvironmentVariable</c>.</summary>
    public const string MSBuildGuardVariable = "GemsWorker.MSBuildGuardVariable";

    /// <summary>Candidates with their guard variable resolved (null when it is invalid).</summary>
    public const string Workers = "GemsWorker.Workers";

    /// <summary>The workers that get a file.</summary>
    public const string ValidWorkers = "GemsWorker.ValidWorkers";

    /// <summary>All workers together, so that hint names are unique.</summary>
    public const string AllWorkers = "GemsWorker.AllWorkers";
}
