using System;
using System.Collections.Generic;
using System.Linq;
using System.Text;

namespace GemsInjector.Generators.Tests.Fuzzing;

/// <summary>
/// Writes one random C# program around <c>[GemsWorker]</c> from a seeded <see cref="Random"/>: 0-3 valid workers with
/// random decorations (namespaces, nesting, partial parts over several files, aliases, global usings, unicode and
/// keyword names, #if, odd attribute arguments) plus one construct of the program's category, valid or invalid, and
/// records what must come out (files, diagnostics). The same seed writes the same program.
/// </summary>
internal sealed class ProgramGenerator
{
    /// <summary>The categories, each with its weight: valid programs are drawn most often.</summary>
    public static readonly IReadOnlyList<(string Name, int Weight)> Categories =
    [
        ("valid", 24),
        ("inactive-#if", 4),
        ("not-partial", 4),
        ("container-not-partial", 4),
        ("generic-worker", 3),
        ("generic-container", 3),
        ("inaccessible", 4),
        ("file-local", 3),
        ("invalid-variable", 4),
        ("invalid-msbuild-variable", 3),
        ("non-string-variable", 3),
        ("bad-operator-list", 4),
        ("unknown-operator", 4),
        ("include-and-exclude", 3),
        ("redundant-enable", 3),
        ("wrong-target", 6),
        ("duplicate-attribute", 3),
        ("bad-attribute-arguments", 3),
        ("syntax-error", 8),
        ("convention-without-attribute", 3),
        ("base-type-without-attribute", 3),
    ];

    private const string DefinedSymbol = "GEMS_FUZZ_ON";
    private const string DefinedUnicodeSymbol = "FUZZ_Δ";
    private const string UndefinedSymbol = "GEMS_FUZZ_OFF";

    private static readonly string[] AsciiStems = ["Worker", "InferenceHost", "Shard", "GpuWorker", "Decoder", "Runner"];
    // Besides other scripts: a combining mark (not a letter, so not kept in a file name) and a zero-width joiner (a
    // formatting character, legal inside an identifier).
    private static readonly string[] UnicodeStems = ["Модель", "Ωμέγα", "日本語ワーカー", "Ünïcödé", "Çalışan", "Straße", "Δρομέας", "Cafe\u0301", "Zwj\u200DWorker"];
    private static readonly string[] KeywordNames = ["class", "namespace", "event", "object", "int", "var", "async", "select", "where", "nameof", "when", "value", "args", "dynamic", "record"];
    private static readonly string[] Namespaces = ["Contoso.Inference", "Fabrikam.Ünïcode.Workers", "@class.@event", "日本.推論", "Contoso.\\u0041pi", "Deep.A.B.C.D"];
    private static readonly string[] ValidOperators = ["add", "mul", "silu", "rms_norm", "softmax", "scaled_dot_product_attention", " add ", "gelu\t"];
    private static readonly string[] UnknownOperators = ["sofmax", "ADD", "", "ädd", "rms-norm", "attention", "add,mul"];

    private readonly Random _rng;
    private readonly List<FileDraft> _files = [];
    private readonly List<WorkerDraft> _workerDrafts = [];
    private readonly List<ExpectedWorker> _attributedNonClasses = [];
    private readonly List<Evidence> _evidence = [];
    private readonly HashSet<string> _permitted = new(StringComparer.Ordinal);
    private readonly HashSet<string> _usedNames = new(StringComparer.Ordinal);
    private readonly Dictionary<string, string> _msbuild = new(StringComparer.Ordinal);
    private readonly List<string> _namespaces;
    private readonly bool _globalUsingNamespace;
    private readonly bool _globalAlias;
    private bool _anyGems;
    private bool _compilerErrors;
    private int _counter;

    private ProgramGenerator(Random rng)
    {
        _rng = rng;
        _namespaces = Enumerable.Range(0, 1 + _rng.Next(2))
            .Select(_ => Chance(0.15) ? "" : Pick(Namespaces))
            .Distinct()
            .ToList();
        _globalUsingNamespace = Chance(0.3);
        _globalAlias = Chance(0.2);
    }

    public static FuzzProgram Write(Random rng)
    {
        var generator = new ProgramGenerator(rng);
        return generator.Build(generator.PickCategory());
    }

    private FuzzProgram Build(string category)
    {
        if (Chance(0.2))
        {
            // A valid guard variable for the whole build (or an empty one, which means "not set").
            _msbuild["GemsEnvironmentVariable"] = Chance(0.5) ? "MY_GEMS_FLAG" : "";
        }

        var validWorkers = category == "valid" ? 1 + _rng.Next(3) : _rng.Next(3);
        for (var i = 0; i < validWorkers; i++)
        {
            var worker = NewValidWorker();
            worker.ConditionalAttribute = Chance(0.1);
            if (worker.Containers.FindIndex(c => c.Kind is "class" or "record") is var level and >= 0 && Chance(0.25))
            {
                // A worker nested in another worker: both get their own file.
                worker.Containers[level].IsWorker = true;
            }

            AddWorker(worker);
        }

        AddCategory(category);
        AddNoise();

        var containerWorkers = _workerDrafts
            .SelectMany(w => w.Containers.Select((c, level) => (Owner: w, Container: c, Name: w.ContainerMetadataName(level))))
            .Where(c => c.Container.IsWorker)
            .ToList();
        if (category == "invalid-msbuild-variable")
        {
            // Every worker that does not set its own variable now reads an invalid one: GEMS003, no file.
            foreach (var worker in _workerDrafts.Where(w => w.Expectation == FileExpectation.Generated && !w.SetsVariable))
            {
                worker.Expectation = FileExpectation.NotGenerated;
                _evidence.Add(new Evidence($"{worker.MetadataName} reads the invalid MSBuild variable", ["GEMS003"]));
                _permitted.Add("GEMS003");
            }

            foreach (var (_, container, name) in containerWorkers)
            {
                container.Expectation = FileExpectation.NotGenerated;
                _evidence.Add(new Evidence($"{name} reads the invalid MSBuild variable", ["GEMS003"]));
            }
        }

        var files = RenderFiles(out var brokenFiles, out var brokenPaths);
        foreach (var worker in _workerDrafts.Where(w => w.Files.Any(brokenFiles.Contains)))
        {
            worker.Expectation = FileExpectation.Either;
            foreach (var container in worker.Containers.Where(c => c.IsWorker))
            {
                container.Expectation = FileExpectation.Either;
            }
        }

        _attributedNonClasses.AddRange(containerWorkers.Select(c => new ExpectedWorker(c.Name, c.Container.Expectation)));

        var symbols = new List<string> { DefinedSymbol };
        if (Chance(0.5))
        {
            symbols.Add(DefinedUnicodeSymbol);
        }

        return new FuzzProgram
        {
            Category = category,
            Files = files,
            DefinedSymbols = symbols,
            MSBuildProperties = new Dictionary<string, string>(_msbuild),
            Workers = _workerDrafts.Select(w => new ExpectedWorker(w.MetadataName, w.Expectation)).Concat(_attributedNonClasses).ToList(),
            Evidence = _evidence,
            PermittedGemsIds = _permitted,
            AnyGemsIdPermitted = _anyGems,
            CompilerErrorsExpected = _compilerErrors,
            BrokenFiles = brokenPaths,
        };
    }

    private string PickCategory()
    {
        var total = Categories.Sum(c => c.Weight);
        var draw = _rng.Next(total);
        foreach (var (name, weight) in Categories)
        {
            if (draw < weight)
            {
                return name;
            }

            draw -= weight;
        }

        return Categories[0].Name;
    }

    private void AddCategory(string category)
    {
        switch (category)
        {
            case "valid":
                break;

            case "inactive-#if":
            {
                var worker = NewValidWorker(singlePart: true);
                worker.Expectation = FileExpectation.NotGenerated;
                // The last form puts the worker in an #elif branch that is skipped because the #if branch was taken.
                worker.Wrap = Pick<(string, string)>([
                    ($"#if {UndefinedSymbol}", "#endif"),
                    ($"#if !{DefinedSymbol}", "#endif"),
                    ("#if false", "#endif"),
                    ($"#if {DefinedSymbol} && {UndefinedSymbol}", "#endif"),
                    ($"#if {DefinedSymbol}\n#elif true", "#endif")]);

                AddWorker(worker);
                break;
            }

            case "not-partial":
            {
                var worker = NewValidWorker(singlePart: true);
                worker.Partial = false;
                Invalid(worker, "the worker is not partial", "GEMS002");
                break;
            }

            case "container-not-partial":
            {
                var worker = NewValidWorker(singlePart: true, minContainers: 1);
                Pick(worker.Containers).Partial = false;
                Invalid(worker, "a containing type is not partial", "GEMS002");
                break;
            }

            case "generic-worker":
            {
                var worker = NewValidWorker(singlePart: Chance(0.5));
                worker.TypeParameters = Pick(["<T>", "<TIn, TOut>", "<T> where T : class", "<T> where T : struct"]);
                if (worker.TypeParameters.Contains("where", StringComparison.Ordinal))
                {
                    // A constraint clause would have to follow the primary constructor; keep the two apart.
                    worker.PrimaryConstructor = "";
                }

                if (worker.Arguments?.Contains("nameof(", StringComparison.Ordinal) == true)
                {
                    // nameof needs the type arguments of a generic type: not the construct under test.
                    worker.Arguments = "";
                }

                Invalid(worker, "the worker is generic", "GEMS007");
                break;
            }

            case "generic-container":
            {
                var worker = NewValidWorker(singlePart: Chance(0.5), minContainers: 1);
                Pick(worker.Containers).TypeParameters = Pick(["<T>", "<TKey, TValue>"]);
                Invalid(worker, "a containing type is generic", "GEMS007");
                break;
            }

            case "inaccessible":
            {
                var worker = NewValidWorker(singlePart: Chance(0.5), minContainers: 1);
                MakeInaccessible(worker);
                Invalid(worker, "the worker is not accessible at module level", "GEMS006");
                break;
            }

            case "file-local":
            {
                var worker = NewValidWorker(singlePart: true);
                if (worker.Containers.Count > 0 && Chance(0.5))
                {
                    worker.Containers[0].Access = "file";
                    worker.Containers[0].Kind = "class";
                    worker.Containers[0].Static = false;
                }
                else
                {
                    worker.Containers.Clear();
                    worker.Access = "file";
                }

                Invalid(worker, "the worker is file-local", "GEMS006");
                break;
            }

            case "invalid-variable":
            {
                var worker = NewValidWorker();
                worker.Arguments = "EnvironmentVariable = " + Pick(["\"\"", "\" \"", "\"A B\"", "\"A=B\"", "\"TAB\\t\"", "\"NUL\\0\"", "\"\\u00A0\"", "\"LINE\\n\"", "@\"\"", "\"\"\" \"\"\""]);
                worker.SetsVariable = true;
                Invalid(worker, "the guard variable is invalid", "GEMS003");
                break;
            }

            case "invalid-msbuild-variable":
                _msbuild["GemsEnvironmentVariable"] = Pick(["BAD NAME", "A=B", " ", "\t", "X\u00A0Y"]);
                if (!_workerDrafts.Any(w => w.Expectation == FileExpectation.Generated && !w.SetsVariable))
                {
                    var worker = NewValidWorker();
                    worker.Arguments = "";
                    worker.SetsVariable = false;
                    AddWorker(worker);
                }

                break;

            case "non-string-variable":
            {
                var worker = NewValidWorker();
                worker.Arguments = "EnvironmentVariable = " + Pick(["42", "true", "'c'", "typeof(int)", "new[] { \"A\" }", "global::System.Environment.MachineName", "1.5"]);
                worker.SetsVariable = true;
                Invalid(worker, "the guard variable is not a string constant", Evidence.UserError);
                _compilerErrors = true;
                break;
            }

            case "bad-operator-list":
            {
                var worker = NewValidWorker();
                var property = Pick(["Include", "Exclude"]);
                worker.Arguments = property + " = " + Pick([
                    "\"add\"", "new[] { 1, 2 }", "new[] { global::System.Environment.NewLine }", "[.. new[] { \"add\" }]",
                    "new[] { new[] { \"add\" } }", "42", "new object[] { \"add\" }", "typeof(string)"]);
                Invalid(worker, $"{property} is not an array of string constants", Evidence.UserError);
                _compilerErrors = true;
                break;
            }

            case "unknown-operator":
            {
                var worker = NewValidWorker();
                var names = Enumerable.Range(0, _rng.Next(3)).Select(_ => Literal(Pick(ValidOperators)))
                    .Append(Chance(0.15) ? "null" : Literal(Pick(UnknownOperators)))
                    .OrderBy(_ => _rng.Next())
                    .ToList();
                worker.Arguments = Pick(["Include", "Exclude"]) + " = " + ListLiteral(names, allowNull: names.Contains("null"));
                _evidence.Add(new Evidence($"{worker.MetadataName} names an unknown operator", ["GEMS005"]));
                _permitted.Add("GEMS005");
                AddWorker(worker);
                break;
            }

            case "include-and-exclude":
            {
                var worker = NewValidWorker();
                worker.Arguments = $"Include = {ValidList()}, Exclude = {ValidList()}";
                _evidence.Add(new Evidence($"{worker.MetadataName} sets Include and Exclude", ["GEMS008"]));
                _permitted.Add("GEMS008");
                AddWorker(worker);
                break;
            }

            case "redundant-enable":
            {
                var worker = NewValidWorker(allowStatic: true);
                worker.Body.Add(Pick([
                    "public static void Start() => global::GemsInjector.Gems.Enable();",
                    "public static global::GemsInjector.GemsStatus Start() { return global::GemsInjector.Gems.Enable(new global::GemsInjector.GemsOptions()); }"]));
                _evidence.Add(new Evidence($"{worker.MetadataName} calls Gems.Enable itself", ["GEMS004"]));
                _permitted.Add("GEMS004");
                AddWorker(worker);
                break;
            }

            case "wrong-target":
                AddWrongTarget();
                break;

            case "duplicate-attribute":
            {
                var worker = NewValidWorker(singlePart: false);
                if (worker.Parts > 1 && Chance(0.5))
                {
                    worker.AttributeOnEveryPart = true;
                }
                else
                {
                    worker.DuplicateAttribute = true;
                }

                // The compiler rejects the second application (CS0579); the generator still extends the class once.
                Invalid(worker, "the attribute is applied twice", Evidence.UserError, FileExpectation.Generated);
                _compilerErrors = true;
                break;
            }

            case "bad-attribute-arguments":
            {
                var worker = NewValidWorker();
                worker.Arguments = Pick([
                    "\"POSITIONAL\"", "Enabled = true", "EnvironmentVariable = \"A\", EnvironmentVariable = \"B\"",
                    "EnvironmentVariable: \"A\"", "Include = new[] { \"add\" }, Include = null", "EnvironmentVariable = ",
                    "EnvironmentVariable = nameof(Missing)"]);
                Invalid(worker, "the attribute's arguments do not compile", Evidence.UserError, FileExpectation.Either);
                _compilerErrors = true;
                break;
            }

            case "syntax-error":
            {
                var worker = NewValidWorker(singlePart: Chance(0.5));
                worker.Corruption = Pick(["drop-last-brace", "garbage-line", "bad-member", "missing-name", "unterminated-string", "unclosed-attribute", "unbalanced-if", "error-directive", "dangling-attribute"]);
                AddWorker(worker);
                _evidence.Add(new Evidence($"syntax error ({worker.Corruption}) near {worker.MetadataName}", [Evidence.UserError]));
                _compilerErrors = true;
                _anyGems = true;
                break;
            }

            case "convention-without-attribute":
            {
                var file = FileFor(Pick(_namespaces));
                var name = $"Llama{++_counter}ModelRunner";
                file.Body.Add(Pick([
                    $"public sealed class {name} {{ }}",
                    $"internal class {name} {{ public static void Run() {{ }} }}",
                    $"public static partial class Outer{_counter} {{ public sealed class {name} {{ }} }}"]));
                _evidence.Add(new Evidence($"{name} follows the naming convention without [GemsWorker]", ["GEMS001"]));
                _permitted.Add("GEMS001");
                break;
            }

            case "base-type-without-attribute":
            {
                var ns = Pick(_namespaces);
                var file = FileFor(ns);
                var n = ++_counter;
                var prefix = ns.Length == 0 ? "" : Unescape(ns) + ".";
                switch (_rng.Next(4))
                {
                    case 0:
                        file.Body.Add($"[global::GemsInjector.GemsWorkerBase] public abstract class RunnerBase{n} {{ }}");
                        file.Body.Add($"public sealed class Shard{n} : RunnerBase{n} {{ }}");
                        break;
                    case 1:
                        file.Body.Add($"[global::GemsInjector.GemsWorkerBase] public interface IRunner{n} {{ }}");
                        file.Body.Add($"public class Impl{n} : global::System.IDisposable, IRunner{n} {{ public void Dispose() {{ }} }}");
                        break;
                    case 2:
                        file.Body.Add($"public class Engine{n} {{ public class Runner {{ }} }}");
                        file.Body.Add($"public sealed class Shard{n} : Engine{n}.Runner {{ }}");
                        _msbuild["GemsWorkerBaseTypes"] = $"Some.Other.Type; {prefix}Engine{n}+Runner";
                        break;
                    default:
                        file.Body.Add($"public abstract class GenericBase{n}<T> {{ }}");
                        file.Body.Add($"public sealed class Shard{n} : GenericBase{n}<int> {{ }}");
                        _msbuild["GemsWorkerBaseTypes"] = $"global::{prefix}GenericBase{n}`1";
                        break;
                }

                _evidence.Add(new Evidence($"a class derives from a worker base type #{n} without [GemsWorker]", ["GEMS001"]));
                _permitted.Add("GEMS001");
                break;
            }

            default:
                throw new InvalidOperationException("Unknown category " + category);
        }
    }

    private void Invalid(WorkerDraft worker, string description, string evidence, FileExpectation expectation = FileExpectation.NotGenerated)
    {
        worker.Expectation = expectation;
        _evidence.Add(new Evidence($"{worker.MetadataName}: {description}", [evidence]));
        if (evidence != Evidence.UserError)
        {
            _permitted.Add(evidence);
        }

        AddWorker(worker);
    }

    private void AddWrongTarget()
    {
        var file = FileFor(Pick(_namespaces));
        var n = ++_counter;
        var attribute = "[" + file.PickSpelling(this) + "]";
        var plain = attribute.Trim('[', ']');
        switch (_rng.Next(13))
        {
            case 0: file.Body.Add($"public static class Host{n} {{ {attribute} public static void Run() {{ }} }}"); break;
            case 1: file.Body.Add($"public sealed class Host{n} {{ {attribute} public int Size {{ get; set; }} }}"); break;
            case 2: file.Body.Add($"public sealed class Host{n} {{ {attribute} public static int Count; }}"); break;
            case 3: file.Body.Add($"public static class Host{n} {{ public static void Take({attribute} int value) {{ }} }}"); break;
            case 4: file.Body.Add($"public static class Host{n} {{ [return: {plain}] public static int Give() => 0; }}"); break;
            case 5: file.Body.Add($"public static class Host{n} {{ public static void Make<{attribute} T>() {{ }} }}"); break;
            case 6: file.Body.Add($"public static class Host{n} {{ public static int Run() {{ {attribute} static int Local() => 1; return Local(); }} }}"); break;
            case 7: file.Body.Add($"{attribute} public partial struct Value{n} {{ }}"); NotAWorker(file, $"Value{n}"); break;
            case 8: file.Body.Add($"{attribute} public partial record struct Value{n}(int X);"); NotAWorker(file, $"Value{n}"); break;
            case 9: file.Body.Add($"{attribute} public partial interface IValue{n} {{ }}"); NotAWorker(file, $"IValue{n}"); break;
            case 10: file.Body.Add($"{attribute} public enum Kind{n} {{ A, B }}"); break;
            case 11: file.Body.Add($"{attribute} public delegate void Callback{n}();"); break;
            default: file.AssemblyAttributes.Add($"[assembly: {plain}]"); break;
        }

        _evidence.Add(new Evidence($"[GemsWorker] on a wrong target #{n}", [Evidence.UserError]));
        _compilerErrors = true;
    }

    /// <summary>A partial type that carries the attribute but is no class: the generator must give it no file.</summary>
    private void NotAWorker(FileDraft file, string name)
        => _attributedNonClasses.Add(new ExpectedWorker((file.Namespace.Length == 0 ? "" : Unescape(file.Namespace) + ".") + name, FileExpectation.NotGenerated));

    private void MakeInaccessible(WorkerDraft worker)
    {
        // Pick a level (the worker, or a container below the outermost) whose parent can hold a private or protected type.
        var levels = new List<int>();
        for (var level = 1; level <= worker.Containers.Count; level++)
        {
            var parent = worker.Containers[level - 1];
            if (parent.Kind != "interface")
            {
                levels.Add(level);
            }
        }

        if (levels.Count == 0)
        {
            worker.Containers[^1].Kind = "class";
            worker.Containers[^1].Static = false;
            levels.Add(worker.Containers.Count);
        }

        var chosen = Pick(levels);
        var parentKind = worker.Containers[chosen - 1];
        var canBeProtected = parentKind.Kind is "class" or "record" && !parentKind.Static;
        var access = canBeProtected ? Pick(["private", "protected", "private protected", ""]) : Pick(["private", ""]);
        if (chosen == worker.Containers.Count)
        {
            worker.Access = access;
        }
        else
        {
            worker.Containers[chosen].Access = access;
        }
    }

    private void AddNoise()
    {
        var count = _rng.Next(4);
        for (var i = 0; i < count; i++)
        {
            var file = FileFor(Pick(_namespaces));
            var n = ++_counter;
            file.Body.Add(_rng.Next(9) switch
            {
                0 => $"public abstract class Base{n}ModelRunner {{ }}",
                1 => $"public partial struct Value{n}ModelRunner {{ }}",
                2 => $"public sealed class Enabling{n}ModelRunner {{ public static void Start() => global::GemsInjector.Gems.Enable(); }}",
                3 => $"internal static class FuzzConstants{n} {{ public const string Flag = \"CONST_FLAG\"; }}",
                4 => $"#region noise {n}\npublic interface IPlain{n} {{ }}\n#endregion",
                5 => $"#pragma warning disable CS0169\npublic class Plain{n} {{ private int _unused; }}\n#pragma warning restore CS0169",
                6 => $"#line 100 \"Mapped{n}.cs\"\npublic class Mapped{n} {{ }}\n#line default",
                7 => $"#nullable disable\npublic class Oblivious{n} {{ public string Text; }}\n#nullable restore",
                _ => $"/* [GemsWorker] in a comment */ /// <summary>[GemsWorker] in a doc comment</summary>\npublic class Commented{n} {{ }}",
            });
        }
    }

    private WorkerDraft NewValidWorker(bool singlePart = false, int minContainers = 0, bool allowStatic = true)
    {
        var ns = Pick(_namespaces);
        var worker = new WorkerDraft { Namespace = ns };
        var depth = Math.Max(minContainers, Chance(0.5) ? 0 : Chance(0.6) ? 1 : Chance(0.7) ? 2 : 3);
        for (var i = 0; i < depth; i++)
        {
            var kind = Pick(["class", "class", "static class", "record", "struct", "readonly struct", "record struct", "ref struct", "interface"]);
            var container = new ContainerDraft
            {
                Kind = kind.Replace("static ", "", StringComparison.Ordinal),
                Static = kind.StartsWith("static ", StringComparison.Ordinal),
            };
            container.Access = NestedAccess(i == 0 ? null : worker.Containers[i - 1]);
            (container.Written, container.Value) = NewName(ns + "/" + string.Join("/", worker.Containers.Select(c => c.Value)), forContainer: true);
            worker.Containers.Add(container);
        }

        (worker.Written, worker.Value) = NewName(ns + "/" + string.Join("/", worker.Containers.Select(c => c.Value)), forContainer: false);
        worker.Access = NestedAccess(worker.Containers.Count == 0 ? null : worker.Containers[^1]);
        worker.Keyword = Chance(0.25) ? "record" : "class";
        worker.Modifier = worker.Keyword == "class"
            ? Pick(["", "", "sealed", "abstract", allowStatic ? "static" : ""])
            : Pick(["", "sealed", "abstract"]);
        worker.PrimaryConstructor = worker.Modifier != "static" && Chance(0.2) ? "(int Size)" : "";
        worker.Parts = singlePart ? 1 : Chance(0.7) ? 1 : Chance(0.6) ? 2 : 3;
        worker.AttributePart = _rng.Next(worker.Parts);
        worker.Arguments = ValidArguments(worker);
        if (Chance(0.08) && worker.Parts == 1)
        {
            worker.Wrap = ($"#if {DefinedSymbol}", "#endif");
        }

        if (Chance(0.3))
        {
            worker.Body.Add(Pick([
                "private static readonly global::Microsoft.Extensions.Logging.ILogger Log = global::Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance;",
                "internal static global::Microsoft.Extensions.Logging.ILogger Logger { get; } = global::Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance;",
                "public static int Count { get; set; }",
                "public static string Describe() => nameof(Describe);",
                "public sealed class Helper { }",
                "/// <summary>Ünïcödé doc comment.</summary>\npublic static void Ω() { }"]));
        }

        return worker;
    }

    /// <summary>The accessibility of a type nested in <paramref name="parent"/> (or top-level), always module-accessible.</summary>
    private string NestedAccess(ContainerDraft? parent)
    {
        if (parent is null)
        {
            return Pick(["public", "internal", ""]);
        }

        if (parent.Kind == "interface")
        {
            // Members of an interface are public unless they say otherwise.
            return Pick(["public", "internal", ""]);
        }

        return parent.Kind is "class" or "record" && !parent.Static
            ? Pick(["public", "internal", "protected internal"])
            : Pick(["public", "internal"]);
    }

    private string ValidArguments(WorkerDraft worker)
    {
        switch (_rng.Next(12))
        {
            case 0: return "()";
            case 1:
                worker.SetsVariable = true;
                return "EnvironmentVariable = " + Pick(["\"GEMS_ON\"", "\"Ünï_FLAG\"", "@\"VERBATIM\"", "\"A\" + \"_B\"", "\"\"\"RAW_FLAG\"\"\"", "\"ÆØÅ\"", "\"DOTS.AND-DASHES\""]);
            case 2:
                // null is the attribute's default: the MSBuild property or USE_FLAGGEMS applies.
                return "EnvironmentVariable = null";
            case 3: return "Include = " + ValidList();
            case 4: return "Exclude = " + ValidList();
            case 5: return "Include = null";
            case 6:
                worker.SetsVariable = true;
                return $"EnvironmentVariable = \"FLAG\", Exclude = {ValidList()}";
            case 7:
                worker.SetsVariable = true;
                return $"EnvironmentVariable = nameof({worker.Written})";
            default: return "";
        }
    }

    private string ValidList()
    {
        var names = Enumerable.Range(0, _rng.Next(4)).Select(_ => Literal(Pick(ValidOperators))).ToList();
        return ListLiteral(names, allowNull: false);
    }

    private string ListLiteral(List<string> names, bool allowNull)
    {
        var joined = string.Join(", ", names);
        var elementType = allowNull ? "string?" : "string";
        return _rng.Next(5) switch
        {
            0 when names.Count > 0 && !allowNull => $"new[] {{ {joined} }}",
            1 => $"[{joined}]",
            2 => $"new {elementType}[] {{ {joined} }}",
            3 when names.Count == 0 => $"new {elementType}[0]",
            _ => $"new {elementType}[] {{ {joined}{(names.Count > 0 && Chance(0.3) ? "," : "")} }}",
        };
    }

    /// <summary>A name unique in <paramref name="scope"/>: (as written, as the compiler reads it).</summary>
    private (string Written, string Value) NewName(string scope, bool forContainer)
    {
        var n = ++_counter;
        string written, value;
        var draw = _rng.Next(10);
        // Not at the top of the global namespace: a type named "class" would clash with the namespace "@class.@event".
        var topLevelGlobal = scope.Length == 1;
        if (draw == 0 && !topLevelGlobal && KeywordNames.Where(k => !_usedNames.Contains("keyword/" + k)).ToList() is { Count: > 0 } unused && Pick(unused) is var keyword && Chance(0.7))
        {
            // Each keyword once per program: a nested type cannot share its container's name (CS0542).
            (written, value) = ("@" + keyword, keyword);
            _usedNames.Add("keyword/" + keyword);
        }
        else if (draw <= 2)
        {
            // The compiler drops formatting characters from an identifier's value (C# spec, identifiers).
            var stem = Pick(UnicodeStems);
            var plain = new string(stem.Where(c => char.GetUnicodeCategory(c) != System.Globalization.UnicodeCategory.Format).ToArray());
            (written, value) = (stem + n, plain + n);
        }
        else if (draw == 3)
        {
            var stem = Pick(AsciiStems) + n;
            (written, value) = ($"\\u{(int)stem[0]:X4}{stem[1..]}", stem);
        }
        else if (draw == 4)
        {
            // Lower case: CS8981 warns, and a case-insensitive file system would clash with "Worker<n>"'s file.
            var stem = Pick(AsciiStems).ToLowerInvariant() + n;
            (written, value) = (stem, stem);
        }
        else if (draw == 5 && !forContainer)
        {
            (written, value) = ($"Llama{n}ModelRunner", $"Llama{n}ModelRunner");
        }
        else if (draw == 6)
        {
            // "@Worker7" is the identifier Worker7: the escape is legal on any name.
            var stem = Pick(AsciiStems) + n;
            (written, value) = ("@" + stem, stem);
        }
        else
        {
            var stem = (forContainer ? "Outer" : Pick(AsciiStems)) + n;
            (written, value) = (stem, stem);
        }

        _usedNames.Add(scope + "/" + value);
        return (written, value);
    }

    private void AddWorker(WorkerDraft worker)
    {
        _workerDrafts.Add(worker);
        if (worker.ConditionalAttribute)
        {
            // Only valid workers get this: the attribute sits under "#if ON ... #else ... #endif" (it applies), or under
            // an undefined symbol, and then the class is an ordinary one (GEMS001 if its name follows the convention).
            worker.AttributeActive = Chance(0.7);
            if (!worker.AttributeActive)
            {
                worker.Expectation = FileExpectation.NotGenerated;
                if (worker.Value.EndsWith("ModelRunner", StringComparison.Ordinal) && worker.Modifier != "abstract")
                {
                    _evidence.Add(new Evidence($"{worker.MetadataName} lost its attribute to #if", ["GEMS001"]));
                    _permitted.Add("GEMS001");
                }
            }
        }

        for (var part = 0; part < worker.Parts; part++)
        {
            var file = part == 0 || Chance(0.3) ? FileFor(worker.Namespace) : NewFile(worker.Namespace);
            worker.Files.Add(file);
            file.Fragments.Add((worker, part));
        }
    }

    private FileDraft FileFor(string ns)
    {
        var existing = _files.Where(f => f.Namespace == ns).ToList();
        return existing.Count > 0 && Chance(0.6) ? Pick(existing) : NewFile(ns);
    }

    private FileDraft NewFile(string ns)
    {
        var file = new FileDraft
        {
            Index = _files.Count,
            Namespace = ns,
            FileScoped = Chance(0.5),
            UsingsInside = Chance(0.2),
            UsingGems = Chance(0.5),
            AliasW = Chance(0.25),
            AliasG = Chance(0.2),
            LocalDefine = Chance(0.15),
        };
        _files.Add(file);
        return file;
    }

    private List<(string Path, string Text)> RenderFiles(out HashSet<FileDraft> broken, out HashSet<string> brokenPaths)
    {
        broken = [];
        brokenPaths = new HashSet<string>(StringComparer.Ordinal);
        var result = new List<(string, string)>();
        if (_globalUsingNamespace || _globalAlias)
        {
            var text = new StringBuilder();
            if (_globalUsingNamespace)
            {
                text.AppendLine("global using GemsInjector;");
            }

            if (_globalAlias)
            {
                text.AppendLine("global using GW = GemsInjector.GemsWorkerAttribute;");
            }

            result.Add(("/src/GlobalUsings.cs", text.ToString()));
        }

        foreach (var file in _files)
        {
            var text = file.Render(this, out var corrupted);
            if (corrupted)
            {
                broken.Add(file);
                brokenPaths.Add($"/src/File{file.Index}.cs");
            }

            result.Add(($"/src/File{file.Index}.cs", text));
        }

        return result;
    }

    private static string Unescape(string ns) => ns.Replace("@", "", StringComparison.Ordinal).Replace("\\u0041", "A", StringComparison.Ordinal);

    private static string Literal(string value) => Microsoft.CodeAnalysis.CSharp.SymbolDisplay.FormatLiteral(value, quote: true);

    private bool Chance(double probability) => _rng.NextDouble() < probability;

    private T Pick<T>(IReadOnlyList<T> items) => items[_rng.Next(items.Count)];

    private sealed class ContainerDraft
    {
        public string Kind { get; set; } = "class";

        public bool Static { get; set; }

        public string Access { get; set; } = "public";

        public bool Partial { get; set; } = true;

        public string TypeParameters { get; set; } = "";

        public string Written { get; set; } = "";

        public string Value { get; set; } = "";

        /// <summary>Whether the container is itself a [GemsWorker] (its attribute is written on the worker's attribute part).</summary>
        public bool IsWorker { get; set; }

        public FileExpectation Expectation { get; set; } = FileExpectation.Generated;

        public int Arity => TypeParameters.Length == 0 ? 0 : TypeParameters[..(TypeParameters.IndexOf('>') + 1)].Count(c => c == ',') + 1;

        public string Header()
        {
            var modifiers = new List<string>();
            if (Access.Length > 0)
            {
                modifiers.Add(Access);
            }

            if (Static)
            {
                modifiers.Add("static");
            }

            var kind = Kind;
            if (kind.StartsWith("readonly ", StringComparison.Ordinal) || kind.StartsWith("ref ", StringComparison.Ordinal))
            {
                // "readonly partial struct": partial must come right before the type keyword.
                var space = kind.IndexOf(' ', StringComparison.Ordinal);
                modifiers.Add(kind[..space]);
                kind = kind[(space + 1)..];
            }

            if (Partial)
            {
                modifiers.Add("partial");
            }

            return $"{string.Join(" ", modifiers)} {kind} {Written}{TypeParameters}".TrimStart();
        }
    }

    private sealed class WorkerDraft
    {
        public string Namespace { get; init; } = "";

        public List<ContainerDraft> Containers { get; } = [];

        public string Written { get; set; } = "";

        public string Value { get; set; } = "";

        public string Access { get; set; } = "public";

        public string Keyword { get; set; } = "class";

        public string Modifier { get; set; } = "";

        public string PrimaryConstructor { get; set; } = "";

        public bool Partial { get; set; } = true;

        public string TypeParameters { get; set; } = "";

        public int Parts { get; set; } = 1;

        public int AttributePart { get; set; }

        public bool AttributeOnEveryPart { get; set; }

        public bool DuplicateAttribute { get; set; }

        public string? Arguments { get; set; }

        public bool SetsVariable { get; set; }

        public bool ConditionalAttribute { get; set; }

        public bool AttributeActive { get; set; } = true;

        public (string Open, string Close)? Wrap { get; set; }

        public string? Corruption { get; set; }

        public List<string> Body { get; } = [];

        public List<FileDraft> Files { get; } = [];

        public FileExpectation Expectation { get; set; } = FileExpectation.Generated;

        /// <summary>The metadata name of the container at <paramref name="level"/> (0 = outermost).</summary>
        public string ContainerMetadataName(int level)
        {
            var name = new StringBuilder();
            if (Namespace.Length > 0)
            {
                name.Append(Unescape(Namespace)).Append('.');
            }

            for (var i = 0; i <= level; i++)
            {
                name.Append(i == 0 ? "" : "+").Append(Containers[i].Value);
                if (Containers[i].Arity > 0)
                {
                    name.Append('`').Append(Containers[i].Arity);
                }
            }

            return name.ToString();
        }

        public string MetadataName
        {
            get
            {
                var name = new StringBuilder();
                if (Namespace.Length > 0)
                {
                    name.Append(Unescape(Namespace)).Append('.');
                }

                foreach (var container in Containers)
                {
                    name.Append(container.Value);
                    if (container.Arity > 0)
                    {
                        name.Append('`').Append(container.Arity);
                    }

                    name.Append('+');
                }

                name.Append(Value);
                var arity = TypeParameters.Length == 0 ? 0 : TypeParameters[..(TypeParameters.IndexOf('>') + 1)].Count(c => c == ',') + 1;
                if (arity > 0)
                {
                    name.Append('`').Append(arity);
                }

                return name.ToString();
            }
        }

        public void Render(StringBuilder text, int part, string spelling)
        {
            foreach (var container in Containers)
            {
                if (container.IsWorker && part == AttributePart)
                {
                    text.Append('[').Append(spelling).Append("]\n");
                }

                text.Append(container.Header()).Append(" {\n");
            }

            if (part == AttributePart || AttributeOnEveryPart)
            {
                var attribute = "[" + spelling + (string.IsNullOrEmpty(Arguments) ? "" : Arguments == "()" ? "()" : "(" + Arguments + ")") + "]";
                if (DuplicateAttribute)
                {
                    attribute += attribute;
                }

                if (ConditionalAttribute)
                {
                    attribute = AttributeActive
                        ? $"#if {DefinedSymbol}\n{attribute}\n#else\n[global::System.Obsolete]\n#endif\n"
                        : $"#if {UndefinedSymbol}\n{attribute}\n#endif\n";
                }

                text.Append(attribute).Append('\n');
            }

            if (Corruption == "unterminated-string" && part == 0)
            {
                text.Append("[global::System.Obsolete(\"unterminated)]\n");
            }

            if (Corruption == "unclosed-attribute" && part == 0)
            {
                text.Append("[global::System.Obsolete(\n");
            }

            var modifiers = new List<string>();
            if (part == 0)
            {
                if (Access.Length > 0)
                {
                    modifiers.Add(Access);
                }

                if (Modifier.Length > 0)
                {
                    modifiers.Add(Modifier);
                }
            }
            else if (Access == "file")
            {
                modifiers.Add("file");
            }

            if (Partial)
            {
                modifiers.Add("partial");
            }

            modifiers.Add(Keyword);
            text.Append(string.Join(" ", modifiers)).Append(' ').Append(Written).Append(TypeParameters);
            if (part == 0)
            {
                text.Append(PrimaryConstructor);
            }

            text.Append("\n{\n");
            if (part == 0)
            {
                foreach (var member in Body)
                {
                    text.Append(member).Append('\n');
                }

                if (Corruption == "bad-member")
                {
                    text.Append("public static int Broken => ;\n");
                }
            }
            else
            {
                text.Append($"public static int Part{part} => {part};\n");
            }

            text.Append("}\n");
            foreach (var _ in Containers)
            {
                text.Append("}\n");
            }
        }
    }

    private sealed class FileDraft
    {
        public int Index { get; init; }

        public string Namespace { get; init; } = "";

        public bool FileScoped { get; init; }

        public bool UsingsInside { get; init; }

        public bool UsingGems { get; init; }

        public bool AliasW { get; init; }

        public bool AliasG { get; init; }

        public bool LocalDefine { get; init; }

        public List<string> AssemblyAttributes { get; } = [];

        public List<string> Body { get; } = [];

        public List<(WorkerDraft Worker, int Part)> Fragments { get; } = [];

        /// <summary>A spelling of the attribute that the usings in force in this file resolve.</summary>
        public string PickSpelling(ProgramGenerator generator)
        {
            var spellings = new List<string> { "global::GemsInjector.GemsWorker", "global::GemsInjector.GemsWorkerAttribute", "GemsInjector.GemsWorker" };
            if (UsingGems || generator._globalUsingNamespace)
            {
                spellings.AddRange(["GemsWorker", "GemsWorkerAttribute", "GemsWorker", "GemsWorker"]);
            }

            if (AliasW)
            {
                spellings.AddRange(["W", "W"]);
            }

            if (AliasG)
            {
                spellings.AddRange(["G.GemsWorker", "G.GemsWorkerAttribute", "G::GemsWorker"]);
            }

            if (generator._globalAlias)
            {
                spellings.AddRange(["GW", "GW"]);
            }

            return generator.Pick(spellings);
        }

        public string Render(ProgramGenerator generator, out bool corrupted)
        {
            var usings = new StringBuilder();
            if (UsingGems)
            {
                usings.Append("using GemsInjector;\n");
            }

            if (AliasW)
            {
                usings.Append("using W = GemsInjector.GemsWorkerAttribute;\n");
            }

            if (AliasG)
            {
                usings.Append("using G = GemsInjector;\n");
            }

            var body = new StringBuilder();
            foreach (var member in Body)
            {
                body.Append(member).Append('\n');
            }

            corrupted = false;
            var corruptions = new List<string>();
            foreach (var (worker, part) in Fragments)
            {
                var fragment = new StringBuilder();
                if (worker.Wrap is { } wrap)
                {
                    fragment.Append(wrap.Open).Append('\n');
                }

                worker.Render(fragment, part, PickSpelling(generator));
                if (worker.Wrap is { } close)
                {
                    fragment.Append(close.Close).Append('\n');
                }

                if (worker.Corruption is { } corruption && part == 0)
                {
                    corruptions.Add(corruption);
                    if (corruption == "missing-name")
                    {
                        fragment.Append($"[{PickSpelling(generator)}] public partial class {{ }}\n");
                    }
                }

                body.Append(fragment);
            }

            var text = new StringBuilder();
            if (LocalDefine)
            {
                text.Append("#define LOCAL_FUZZ\n");
            }

            text.Append("// <fuzz file>\n");
            if (!UsingsInside || Namespace.Length == 0)
            {
                text.Append(usings);
            }

            foreach (var attribute in AssemblyAttributes)
            {
                text.Append(attribute).Append('\n');
            }

            if (LocalDefine)
            {
                body.Insert(0, "#if LOCAL_FUZZ\n").Append("#endif\n");
            }

            if (Namespace.Length == 0)
            {
                text.Append(body);
            }
            else if (FileScoped && !UsingsInside)
            {
                text.Append($"namespace {Namespace};\n").Append(body);
            }
            else
            {
                text.Append($"namespace {Namespace}\n{{\n");
                if (UsingsInside)
                {
                    text.Append(usings);
                }

                text.Append(body).Append("}\n");
            }

            var result = text.ToString();
            foreach (var corruption in corruptions)
            {
                corrupted = true;
                result = Corrupt(result, corruption, generator);
            }

            return result;
        }

        /// <summary>
        /// The line indexes where inserted text is compiled: not inside an #if branch the defined symbols skip (garbage
        /// there would be no error at all). Only the #if forms this generator writes are understood.
        /// </summary>
        private static List<int> ActiveLines(List<string> lines)
        {
            var result = new List<int>();
            var branches = new Stack<bool>();
            for (var i = 1; i <= lines.Count; i++)
            {
                var line = lines[i - 1].Trim();
                if (line.StartsWith("#if ", StringComparison.Ordinal))
                {
                    branches.Push(line is $"#if {DefinedSymbol}" or "#if LOCAL_FUZZ");
                }
                else if (line.StartsWith("#elif", StringComparison.Ordinal) || line.StartsWith("#else", StringComparison.Ordinal))
                {
                    // Only "#if ON ... #else" and "#if ON ... #elif" are written: the second branch is skipped.
                    branches.Pop();
                    branches.Push(false);
                }
                else if (line.StartsWith("#endif", StringComparison.Ordinal) && branches.Count > 0)
                {
                    branches.Pop();
                }

                if (branches.All(taken => taken) && !line.StartsWith("#define", StringComparison.Ordinal))
                {
                    result.Add(i);
                }
            }

            return result;
        }

        private string Corrupt(string text, string corruption, ProgramGenerator generator)
        {
            switch (corruption)
            {
                case "drop-last-brace":
                    var last = text.LastIndexOf('}');
                    return last < 0 ? text + "}" : text.Remove(last, 1);
                case "garbage-line":
                    var lines = text.Split('\n').ToList();
                    var active = ActiveLines(lines);
                    lines.Insert(generator.Pick(active), generator.Pick(["#$%^ @@ ;;", "class class {", "} }", "namespace ;", "partial partial"]));
                    return string.Join("\n", lines);
                case "unbalanced-if":
                    return text + $"#if {UndefinedSymbol}\npublic class Lost {{ }}\n";
                case "error-directive":
                    return text + "#error fuzz: deliberate error\n";
                case "dangling-attribute":
                    return text + $"[{PickSpelling(generator)}]\n";
                default:
                    // Corruptions written into the fragment itself (bad-member, missing-name, unterminated-string, unclosed-attribute).
                    return text;
            }
        }
    }
}
