using System;
using System.Collections.Generic;
using System.Collections.Immutable;
using System.Globalization;
using System.IO;
using System.Linq;
using System.Text;
using GemsInjector.Generators.Tests.Infrastructure;
using Microsoft.CodeAnalysis;
using Xunit;
using Xunit.Abstractions;

namespace GemsInjector.Generators.Tests.Sweep;

/// <summary>
/// Runs the generator and the analyzers over a large C# code base we did not write (for example the Orleans sources)
/// and reports what they did. Not part of CI: it runs only when <c>GEMS_SWEEP_SOURCE</c> names a source folder.
/// Other settings: <c>GEMS_SWEEP_BASE_TYPES</c> (the GemsWorkerBaseTypes of the second configuration),
/// <c>GEMS_SWEEP_REFERENCES</c> (extra assemblies or folders of them, separated by the platform's path separator),
/// <c>GEMS_SWEEP_SECONDS</c> (time limit) and <c>GEMS_SWEEP_REPORT</c> (a file to write the report to as well).
/// Nothing is downloaded.
/// </summary>
public sealed class AnalyzerSweepTests(ITestOutputHelper output)
{
    public const string SourceVariable = "GEMS_SWEEP_SOURCE";

    public const string DefaultBaseTypes = "Orleans.Grain;Microsoft.Extensions.Hosting.BackgroundService";

    private const int SamplesPerReason = 8;

    [SweepFact]
    public void Analyzers_and_generator_never_throw_on_a_foreign_code_base_and_every_GEMS001_is_explained()
    {
        var source = Environment.GetEnvironmentVariable(SourceVariable)!;
        var baseTypes = Environment.GetEnvironmentVariable("GEMS_SWEEP_BASE_TYPES") is { Length: > 0 } configured ? configured : DefaultBaseTypes;
        var seconds = Environment.GetEnvironmentVariable("GEMS_SWEEP_SECONDS") is { Length: > 0 } text ? int.Parse(text, CultureInfo.InvariantCulture) : 300;

        var sweep = new SourceSweep(
            source,
            TestReferences.All.AddRange(ExtraReferences()),
            [
                new SweepConfiguration("(a) default settings", new Dictionary<string, string>()),
                new SweepConfiguration($"(b) GemsWorkerBaseTypes={baseTypes}", new Dictionary<string, string> { ["GemsWorkerBaseTypes"] = baseTypes }),
            ],
            TimeSpan.FromSeconds(seconds));
        var results = sweep.Run();

        var report = Report(source, sweep, results);
        output.WriteLine(report);
        if (Environment.GetEnvironmentVariable("GEMS_SWEEP_REPORT") is { Length: > 0 } reportFile)
        {
            // The file gets every GEMS001, not only the samples, so that each can be checked by hand.
            var full = new StringBuilder(report);
            foreach (var result in results.Where(r => r.Gems001.Count > 0))
            {
                full.AppendLine().AppendLine($"== every GEMS001 of {result.Configuration.Label}");
                foreach (var (project, type, reason) in result.Gems001.OrderBy(g => g.Project, StringComparer.Ordinal).ThenBy(g => g.Class, StringComparer.Ordinal))
                {
                    full.AppendLine($"{project}\t{type}\t{reason}");
                }
            }

            File.WriteAllText(reportFile, full.ToString());
        }

        foreach (var result in results)
        {
            Assert.True(result.Crashes.Count == 0, $"{result.Configuration.Label}: analyzer or generator crashes:\n" + string.Join("\n", result.Crashes.Take(20)));
            Assert.True(result.GeneratedFileErrors.Count == 0, $"{result.Configuration.Label}: errors in generated files:\n" + string.Join("\n", result.GeneratedFileErrors.Take(20)));
            var unexplained = result.Gems001.Where(g => g.Reason == "UNEXPLAINED").ToList();
            Assert.True(unexplained.Count == 0, $"{result.Configuration.Label}: GEMS001 on classes no rule makes workers:\n" + string.Join("\n", unexplained.Take(20)));
        }
    }

    private static IEnumerable<MetadataReference> ExtraReferences()
    {
        var value = Environment.GetEnvironmentVariable("GEMS_SWEEP_REFERENCES");
        if (string.IsNullOrEmpty(value))
        {
            yield break;
        }

        foreach (var entry in value.Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            var files = Directory.Exists(entry) ? Directory.EnumerateFiles(entry, "*.dll") : [entry];
            foreach (var file in files)
            {
                yield return MetadataReference.CreateFromFile(file);
            }
        }
    }

    private static string Report(string source, SourceSweep sweep, List<SweepResult> results)
    {
        var text = new StringBuilder();
        text.AppendLine($"Sweep of {source}: {sweep.Files} .cs files, {sweep.SyntaxTrees} syntax trees ({sweep.GlobalUsingTrees} of them the global usings a build would generate), {sweep.Classes} class declarations, {sweep.Projects} projects, {sweep.Elapsed.TotalSeconds:F0} s");
        text.AppendLine($"classes whose base class did not resolve (package not referenced): {sweep.ClassesWithUnresolvedBase}");
        if (sweep.ProjectsSkippedByTimeLimit > 0)
        {
            text.AppendLine($"STOPPED BY THE TIME LIMIT: {sweep.ProjectsSkippedByTimeLimit} projects not analysed");
        }

        foreach (var result in results)
        {
            text.AppendLine();
            text.AppendLine($"== {result.Configuration.Label}");
            text.AppendLine($"compilations: {result.Compilations}; generated files: {result.GeneratedFiles}; analyzer/generator crashes (AD0001, CS8784, CS8785, exceptions): {result.Crashes.Count}; errors in generated files: {result.GeneratedFileErrors.Count}");
            text.AppendLine("GEMS diagnostics: " + (result.GemsById.Count == 0 ? "none" : string.Join(", ", result.GemsById.Select(p => $"{p.Key} x{p.Value}"))));
            foreach (var reason in result.Gems001.GroupBy(g => g.Reason).OrderByDescending(g => g.Count()))
            {
                text.AppendLine($"  GEMS001 {reason.Count(),5} x {reason.Key}; by project: {string.Join(", ", reason.GroupBy(g => g.Project).OrderByDescending(g => g.Count()).Take(6).Select(g => $"{g.Key} {g.Count()}"))}");
                foreach (var sample in reason.Take(SamplesPerReason))
                {
                    text.AppendLine($"      {sample.Class}  ({sample.Project})");
                }
            }

            foreach (var other in result.OtherGems.Take(20))
            {
                text.AppendLine("  " + other);
            }

            foreach (var crash in result.Crashes.Take(20))
            {
                text.AppendLine("  CRASH " + crash);
            }
        }

        return text.ToString();
    }
}

/// <summary>A fact that runs only when <see cref="AnalyzerSweepTests.SourceVariable"/> names a folder, and says so otherwise.</summary>
public sealed class SweepFactAttribute : FactAttribute
{
    /// <summary>Skips unless the sweep's source folder is set and exists.</summary>
    public SweepFactAttribute()
    {
        var folder = Environment.GetEnvironmentVariable(AnalyzerSweepTests.SourceVariable);
        if (string.IsNullOrEmpty(folder) || !Directory.Exists(folder))
        {
            Skip = $"A manual sweep over a foreign code base: set {AnalyzerSweepTests.SourceVariable} to a folder of C# sources (for example the Orleans repository) to run it.";
        }
    }
}
