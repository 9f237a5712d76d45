using System;
using System.Collections.Concurrent;
using System.Collections.Generic;
using System.Collections.Immutable;
using System.Diagnostics;
using System.IO;
using System.Linq;
using System.Text;
using System.Xml.Linq;
using GemsInjector.Generators.Analyzers;
using GemsInjector.Generators.Tests.Infrastructure;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.CSharp.Syntax;
using Microsoft.CodeAnalysis.Diagnostics;

namespace GemsInjector.Generators.Tests.Sweep;

/// <summary>One analyzer configuration of a sweep: a label and the MSBuild properties the analyzers read.</summary>
internal sealed record SweepConfiguration(string Label, IReadOnlyDictionary<string, string> MSBuildProperties);

/// <summary>What a sweep found under one configuration.</summary>
internal sealed class SweepResult(SweepConfiguration configuration)
{
    public SweepConfiguration Configuration { get; } = configuration;

    public int Compilations { get; set; }

    public int GeneratedFiles { get; set; }

    public List<string> Crashes { get; } = [];

    public List<string> GeneratedFileErrors { get; } = [];

    public SortedDictionary<string, int> GemsById { get; } = new(StringComparer.Ordinal);

    /// <summary>Each GEMS001: the class and why it counts as a worker (the rule of docs/diagnostics/GEMS001.md that matched).</summary>
    public List<(string Project, string Class, string Reason)> Gems001 { get; } = [];

    public List<string> OtherGems { get; } = [];
}

/// <summary>
/// Runs the GemsInjector generator and analyzers over a folder of C# code we did not write (one compilation per
/// project folder, with its project references as compilation references), the way a build would, and counts crashes
/// and diagnostics. References are the running framework, GemsInjector and any extra assemblies given: a package type
/// that is missing only makes compiler errors, which do not matter here; what matters is that the analyzers never
/// throw on a real code base and that every diagnostic they report is explained.
/// </summary>
internal sealed class SourceSweep
{
    private static readonly CSharpParseOptions ParseOptions = new CSharpParseOptions(
            LanguageVersion.Preview,
            DocumentationMode.None,
            preprocessorSymbols: ["NET", "NETCOREAPP", "NET8_0_OR_GREATER", "NET9_0_OR_GREATER", "NET10_0_OR_GREATER", "RELEASE"]);

    private readonly string _root;
    private readonly ImmutableArray<MetadataReference> _references;
    private readonly IReadOnlyList<SweepConfiguration> _configurations;
    private readonly TimeSpan _budget;

    public SourceSweep(string root, ImmutableArray<MetadataReference> references, IReadOnlyList<SweepConfiguration> configurations, TimeSpan budget)
    {
        _root = Path.GetFullPath(root);
        _references = references;
        _configurations = configurations;
        _budget = budget;
    }

    public int Files { get; private set; }

    public int SyntaxTrees { get; private set; }

    public int Classes { get; private set; }

    public int Projects { get; private set; }

    /// <summary>Trees the sweep added: the global usings a build would generate (SDK implicit usings, Using items).</summary>
    public int GlobalUsingTrees { get; private set; }

    public int ProjectsSkippedByTimeLimit { get; private set; }

    /// <summary>Classes whose base class the compilation could not resolve (a package type not referenced).</summary>
    public int ClassesWithUnresolvedBase { get; private set; }

    public TimeSpan Elapsed { get; private set; }

    public List<SweepResult> Run()
    {
        var watch = Stopwatch.StartNew();
        var results = _configurations.Select(c => new SweepResult(c)).ToList();
        var projects = FindProjects();
        Projects = projects.Count;
        var compiled = new Dictionary<string, CSharpCompilation>(StringComparer.Ordinal);

        foreach (var project in Order(projects))
        {
            if (watch.Elapsed > _budget)
            {
                ProjectsSkippedByTimeLimit++;
                continue;
            }

            var trees = project.Files
                .Select(path => CSharpSyntaxTree.ParseText(File.ReadAllText(path), ParseOptions, path: path, encoding: Encoding.UTF8))
                .ToList();
            if (GlobalUsings(project, projects) is { Length: > 0 } globalUsings)
            {
                trees.Add(CSharpSyntaxTree.ParseText(globalUsings, ParseOptions, path: Path.Combine(_root, project.Name + ".GlobalUsings.g.cs"), encoding: Encoding.UTF8));
                GlobalUsingTrees++;
            }

            Files += project.Files.Count;
            SyntaxTrees += trees.Count;
            Classes += trees.Sum(tree => tree.GetRoot().DescendantNodes().Count(n => n is ClassDeclarationSyntax or RecordDeclarationSyntax { ClassOrStructKeyword.RawKind: not (int)SyntaxKind.StructKeyword }));

            var projectReferences = Closure(project, projects)
                .Where(compiled.ContainsKey)
                .Select(name => (MetadataReference)compiled[name].ToMetadataReference());
            var compilation = CSharpCompilation.Create(
                project.Name,
                trees,
                _references.Concat(projectReferences),
                new CSharpCompilationOptions(
                    OutputKind.DynamicallyLinkedLibrary,
                    nullableContextOptions: NullableContextOptions.Enable,
                    allowUnsafe: true,
                    concurrentBuild: false));
            compiled[project.Name] = compilation;
            ClassesWithUnresolvedBase += CountUnresolvedBases(compilation);

            foreach (var result in results)
            {
                Analyze(project.Name, compilation, result);
            }
        }

        Elapsed = watch.Elapsed;
        return results;
    }

    private static void Analyze(string project, CSharpCompilation compilation, SweepResult result)
    {
        result.Compilations++;
        var options = new BuildPropertiesProvider(result.Configuration.MSBuildProperties);
        var build = BuildRun.Of(compilation, ParseOptions, options, withCompilerDiagnostics: false);
        var (output, run, diagnostics) = (build.Output, build.Generator, build.Diagnostics);
        result.Crashes.AddRange(build.Crashes.Select(crash => $"{project}: {crash}"));
        result.GeneratedFiles += run.GeneratedSources.Length;
        foreach (var source in run.GeneratedSources)
        {
            var errors = output.GetSemanticModel(source.SyntaxTree).GetDiagnostics().Where(d => d.Severity == DiagnosticSeverity.Error);
            result.GeneratedFileErrors.AddRange(errors.Select(d => $"{project}: {d}"));
        }

        var baseTypes = AnalyzerHelpers.ParseTypeList(
            result.Configuration.MSBuildProperties.TryGetValue("GemsWorkerBaseTypes", out var list) ? list : null);
        foreach (var diagnostic in diagnostics.Where(d => d.Id.StartsWith("GEMS", StringComparison.Ordinal)))
        {
            result.GemsById[diagnostic.Id] = result.GemsById.GetValueOrDefault(diagnostic.Id) + 1;
            if (diagnostic.Id == "GEMS001" && DeclaredClass(output, diagnostic) is { } type)
            {
                result.Gems001.Add((project, type.ToDisplayString(), Reason(type, baseTypes)));
            }
            else
            {
                result.OtherGems.Add($"{project}: {diagnostic}");
            }
        }
    }

    private static INamedTypeSymbol? DeclaredClass(Compilation compilation, Diagnostic diagnostic)
    {
        if (diagnostic.Location.SourceTree is not { } tree)
        {
            return null;
        }

        var node = tree.GetRoot().FindToken(diagnostic.Location.SourceSpan.Start).Parent?.AncestorsAndSelf().OfType<TypeDeclarationSyntax>().FirstOrDefault();
        return node is null ? null : compilation.GetSemanticModel(tree).GetDeclaredSymbol(node) as INamedTypeSymbol;
    }

    /// <summary>Which rule of GEMS001 makes <paramref name="type"/> a worker, worked out independently of the analyzer.</summary>
    private static string Reason(INamedTypeSymbol type, HashSet<string> baseTypes)
    {
        bool IsBase(INamedTypeSymbol candidate)
        {
            var definition = candidate.OriginalDefinition;
            return definition.GetAttributes().Any(a => a.AttributeClass?.ToDisplayString() == KnownNames.GemsWorkerBaseAttribute)
                || baseTypes.Contains(AnalyzerHelpers.Normalize(AnalyzerHelpers.MetadataName(definition)));
        }

        for (var baseType = type.BaseType; baseType is not null; baseType = baseType.BaseType)
        {
            if (IsBase(baseType))
            {
                return "derives from " + AnalyzerHelpers.MetadataName(baseType.OriginalDefinition);
            }
        }

        foreach (var implemented in type.AllInterfaces)
        {
            if (IsBase(implemented))
            {
                return "implements " + AnalyzerHelpers.MetadataName(implemented.OriginalDefinition);
            }
        }

        return type.Name.EndsWith(KnownNames.WorkerNameSuffix, StringComparison.Ordinal)
            ? "name ends in " + KnownNames.WorkerNameSuffix
            : "UNEXPLAINED";
    }

    private static int CountUnresolvedBases(CSharpCompilation compilation)
    {
        var count = 0;
        var stack = new Stack<INamespaceOrTypeSymbol>();
        stack.Push(compilation.Assembly.GlobalNamespace);
        while (stack.Count > 0)
        {
            foreach (var member in stack.Pop().GetMembers())
            {
                if (member is INamespaceOrTypeSymbol container)
                {
                    stack.Push(container);
                }

                if (member is INamedTypeSymbol { TypeKind: TypeKind.Class, BaseType: { TypeKind: TypeKind.Error } })
                {
                    count++;
                }
            }
        }

        return count;
    }

    private sealed record Project(string Name, string? ProjectFile, List<string> Files, List<string> References);

    private static readonly string[] SdkImplicitUsings =
        ["System", "System.Collections.Generic", "System.IO", "System.Linq", "System.Net.Http", "System.Threading", "System.Threading.Tasks"];

    private static readonly string[] HostingImplicitUsings =
        ["Microsoft.Extensions.Configuration", "Microsoft.Extensions.DependencyInjection", "Microsoft.Extensions.Hosting", "Microsoft.Extensions.Logging"];

    /// <summary>
    /// An approximation of the GlobalUsings.g.cs the SDK writes into obj/ (which a source tree lacks): with
    /// ImplicitUsings on (in the project or a Directory.Build.props above it), the SDK's namespaces plus every
    /// <c>&lt;Using&gt;</c> item of the project, of the Directory.Build files above it and of the build/ targets of the
    /// projects it references (how a package hands its usings on); otherwise only the project's own Using items.
    /// Conditions are not evaluated. Without it, most classes of a modern project would not resolve their base types.
    /// </summary>
    private string GlobalUsings(Project project, Dictionary<string, Project> projects)
    {
        if (project.ProjectFile is null)
        {
            return "";
        }

        var folder = Path.GetDirectoryName(project.ProjectFile)!;
        var ownFiles = new List<string> { project.ProjectFile };
        var inherited = new List<string>();
        for (var dir = folder; dir is not null && dir.Length >= _root.Length; dir = Path.GetDirectoryName(dir))
        {
            inherited.AddRange(new[] { "Directory.Build.props", "Directory.Build.targets" }.Select(name => Path.Combine(dir, name)).Where(File.Exists));
        }

        foreach (var name in Closure(project, projects))
        {
            if (projects.TryGetValue(name, out var referenced) && referenced.ProjectFile is not null)
            {
                var referencedFolder = Path.GetDirectoryName(referenced.ProjectFile)!;
                foreach (var sub in new[] { "build", "buildTransitive" })
                {
                    var targets = Path.Combine(referencedFolder, sub);
                    if (Directory.Exists(targets))
                    {
                        inherited.AddRange(Directory.EnumerateFiles(targets, "*.targets").Concat(Directory.EnumerateFiles(targets, "*.props")));
                    }
                }
            }
        }

        var documents = ownFiles.Concat(inherited).Select(TryLoad).OfType<XDocument>().ToList();
        var implicitUsings = documents.SelectMany(d => d.Descendants()).Where(e => e.Name.LocalName == "ImplicitUsings")
            .Any(e => e.Value.Trim().Equals("enable", StringComparison.OrdinalIgnoreCase) || e.Value.Trim().Equals("true", StringComparison.OrdinalIgnoreCase));

        var lines = new SortedSet<string>(StringComparer.Ordinal);
        if (implicitUsings)
        {
            var sdk = TryLoad(project.ProjectFile)?.Root?.Attribute("Sdk")?.Value ?? "";
            foreach (var ns in SdkImplicitUsings.Concat(sdk.Contains("Web", StringComparison.Ordinal) || sdk.Contains("Worker", StringComparison.Ordinal) ? HostingImplicitUsings : []))
            {
                lines.Add($"global using global::{ns};");
            }
        }

        foreach (var document in implicitUsings ? documents : documents.Take(1))
        {
            foreach (var item in document.Descendants().Where(e => e.Name.LocalName == "Using"))
            {
                if ((string?)item.Attribute("Include") is not { Length: > 0 } include || include.Contains('$'))
                {
                    continue;
                }

                lines.Add((string?)item.Attribute("Alias") is { Length: > 0 } alias
                    ? $"global using {alias} = global::{include};"
                    : string.Equals((string?)item.Attribute("Static"), "true", StringComparison.OrdinalIgnoreCase)
                        ? $"global using static global::{include};"
                        : $"global using global::{include};");
            }
        }

        return string.Join("\n", lines);
    }

    private static XDocument? TryLoad(string path)
    {
        try
        {
            return XDocument.Load(path);
        }
        catch (Exception ex) when (ex is System.Xml.XmlException or IOException)
        {
            return null;
        }
    }

    /// <summary>
    /// Every .cs file (bin/ and obj/ left out) goes to the project of the nearest folder above it that holds a
    /// .csproj; the rest form one "(no project)" compilation.
    /// </summary>
    private Dictionary<string, Project> FindProjects()
    {
        var projects = new Dictionary<string, Project>(StringComparer.Ordinal);
        var byFolder = new Dictionary<string, Project>(StringComparer.Ordinal);
        foreach (var file in Enumerate("*.csproj").OrderBy(f => f, StringComparer.Ordinal))
        {
            var folder = Path.GetDirectoryName(file)!;
            if (byFolder.ContainsKey(folder))
            {
                continue;
            }

            var name = Path.GetFileNameWithoutExtension(file);
            if (projects.ContainsKey(name))
            {
                name = Path.GetRelativePath(_root, file);
            }

            var project = new Project(name, file, [], ReadProjectReferences(file));
            projects[name] = project;
            byFolder[folder] = project;
        }

        // A package built from this same tree (samples reference Microsoft.Orleans.Server, the project Orleans.Server
        // packs it) stands for its project, so that the samples see the framework's types too.
        var byPackageId = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
        foreach (var project in projects.Values)
        {
            var document = TryLoad(project.ProjectFile!);
            var packageId = document?.Descendants().FirstOrDefault(e => e.Name.LocalName == "PackageId")?.Value.Trim();
            byPackageId.TryAdd(packageId is { Length: > 0 } && !packageId.Contains('$') ? packageId : project.Name, project.Name);
            byPackageId.TryAdd(project.Name, project.Name);
        }

        foreach (var project in projects.Values)
        {
            var packages = TryLoad(project.ProjectFile!)?.Descendants()
                .Where(e => e.Name.LocalName == "PackageReference")
                .Select(e => (string?)e.Attribute("Include"))
                .OfType<string>() ?? [];
            project.References.AddRange(packages.Where(byPackageId.ContainsKey).Select(id => byPackageId[id]));
        }

        var loose = new Project("(no project)", null, [], []);
        foreach (var file in Enumerate("*.cs").OrderBy(f => f, StringComparer.Ordinal))
        {
            var owner = loose;
            for (var folder = Path.GetDirectoryName(file); folder is not null && folder.Length >= _root.Length; folder = Path.GetDirectoryName(folder))
            {
                if (byFolder.TryGetValue(folder, out var found))
                {
                    owner = found;
                    break;
                }
            }

            owner.Files.Add(file);
        }

        if (loose.Files.Count > 0)
        {
            projects[loose.Name] = loose;
        }

        foreach (var empty in projects.Values.Where(p => p.Files.Count == 0).ToList())
        {
            projects.Remove(empty.Name);
        }

        return projects;
    }

    private IEnumerable<string> Enumerate(string pattern)
        => Directory.EnumerateFiles(_root, pattern, SearchOption.AllDirectories)
            .Where(path => !path.Split(Path.DirectorySeparatorChar).Any(part => part is "bin" or "obj"));

    /// <summary>The file names of the projects a .csproj references: MSBuild properties in the paths are not evaluated, so projects are matched by name.</summary>
    private static List<string> ReadProjectReferences(string projectFile)
    {
        try
        {
            return XDocument.Load(projectFile).Descendants()
                .Where(e => e.Name.LocalName == "ProjectReference")
                .Select(e => (string?)e.Attribute("Include"))
                .OfType<string>()
                .Select(include => Path.GetFileNameWithoutExtension(include.Replace('\\', '/').Split('/')[^1]))
                .ToList();
        }
        catch (System.Xml.XmlException)
        {
            return [];
        }
    }

    /// <summary>Referenced projects before those that reference them (a cycle is cut where it is found).</summary>
    private static List<Project> Order(Dictionary<string, Project> projects)
    {
        var ordered = new List<Project>();
        var state = new Dictionary<string, int>(StringComparer.Ordinal);
        void Visit(Project project)
        {
            if (state.GetValueOrDefault(project.Name) != 0)
            {
                return;
            }

            state[project.Name] = 1;
            foreach (var reference in project.References)
            {
                if (projects.TryGetValue(reference, out var referenced))
                {
                    Visit(referenced);
                }
            }

            state[project.Name] = 2;
            ordered.Add(project);
        }

        foreach (var project in projects.Values.OrderBy(p => p.Name, StringComparer.Ordinal))
        {
            Visit(project);
        }

        return ordered;
    }

    private static HashSet<string> Closure(Project project, Dictionary<string, Project> projects)
    {
        var seen = new HashSet<string>(StringComparer.Ordinal);
        var pending = new Stack<string>(project.References);
        while (pending.Count > 0)
        {
            var name = pending.Pop();
            if (name != project.Name && seen.Add(name) && projects.TryGetValue(name, out var referenced))
            {
                foreach (var next in referenced.References)
                {
                    pending.Push(next);
                }
            }
        }

        return seen;
    }
}
