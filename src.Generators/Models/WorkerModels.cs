namespace GemsInjector.Generators.Models;

/// <summary>A type that contains the worker, outermost first: its declaration keyword(s) and name as written.</summary>
/// <param name="Keyword">The declaration keywords before the name: <c>class</c>, <c>record</c>, <c>record struct</c>, <c>readonly struct</c>, <c>interface</c>, ...</param>
/// <param name="Name">The escaped identifier (<c>@class</c> for a keyword).</param>
internal sealed record ContainingTypeModel(string Keyword, string Name);

/// <summary>
/// What the parser read from one <c>[GemsWorker]</c> class, before the guard variable is resolved against the
/// MSBuild property. Holds only strings and equatable arrays (no symbols, syntax or locations), so it caches.
/// </summary>
/// <param name="Namespace">The escaped namespace (<c>Contoso.Inference</c>), or <see langword="null"/> for the global namespace.</param>
/// <param name="ContainingTypes">The containing types, outermost first.</param>
/// <param name="Keyword">The worker's declaration keyword(s): <c>class</c> or <c>record</c>.</param>
/// <param name="Name">The worker's escaped identifier.</param>
/// <param name="FullName">The worker's full name as users read it (<c>Contoso.Inference.Outer.ModelRunner</c>).</param>
/// <param name="HintName">The unique hint name of the generated file.</param>
/// <param name="AttributeVariable">The <c>EnvironmentVariable</c> set on the attribute, or <see langword="null"/>.</param>
/// <param name="LoggerMember">The escaped name of the worker's static ILogger field or property, or <see langword="null"/>.</param>
/// <param name="Include">
/// The attribute's <c>Include</c> operator names as written (not checked: GEMS005 does that), or <see langword="null"/>
/// when not set. An empty list is kept apart from no list: it is passed on as an empty array. A <see langword="null"/>
/// element is held as <c>""</c>, which the runtime reads the same way (an unknown name).
/// </param>
/// <param name="Exclude">The attribute's <c>Exclude</c> operator names, as <paramref name="Include"/>.</param>
internal sealed record WorkerCandidate(
    string? Namespace,
    EquatableArray<ContainingTypeModel> ContainingTypes,
    string Keyword,
    string Name,
    string FullName,
    string HintName,
    string? AttributeVariable,
    string? LoggerMember,
    EquatableArray<string>? Include = null,
    EquatableArray<string>? Exclude = null);

/// <summary>A worker ready to emit: the candidate and the guard variable it reads.</summary>
internal sealed record WorkerModel(WorkerCandidate Worker, string GuardVariable);
