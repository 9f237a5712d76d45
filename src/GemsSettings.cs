using System;
using System.Collections.Generic;
using System.Linq;
using System.Text;
using GemsInjector.Operators;

namespace GemsInjector;

/// <summary>
/// <see cref="GemsOptions"/> merged with the <c>GEMS_*</c> environment variables and checked. Every value a user can
/// write has one of three outcomes: it is accepted, it is ignored with a warning (in <see cref="Warnings"/>) that names
/// the variable and the value, or it is a <see cref="GemsConfigurationException"/> that names them (a worker's start-up
/// block then logs it and keeps the default kernels). Nothing is silently dropped or half applied.
/// </summary>
/// <remarks>
/// The rules, per variable (unset, empty and white space always mean "not set"):
/// <list type="bullet">
/// <item><c>GEMS_INCLUDE</c> / <c>GEMS_EXCLUDE</c>: operator names separated by commas, semicolons or white space
/// (trailing and doubled separators are fine). Names are exact (case-sensitive, as in the analyzers); an unknown name
/// is an error that suggests the nearest ones; a value of separators only names nothing and is an error.</item>
/// <item><c>GEMS_DEVICE</c>: one of <see cref="KnownDevices"/>, any case, surrounding white space ignored. Anything
/// else (<c>gpu</c>, <c>cuda:1</c>) is an error with a hint; the GPU of a worker comes from <c>LOCAL_RANK</c>.</item>
/// <item><c>GEMS_RECORD</c>: a path, surrounding white space ignored, which may hold <c>{pid}</c> and <c>{rank}</c>.
/// Any other brace, and a path wrapped in quotes (which an env file passes through literally), is an error.</item>
/// <item><c>GEMS_RECORD_ONCE</c>: read like the guard (1, true, yes / 0, false, no); any other value is ignored with
/// a warning. Setting it without a record path is a warning too, since it then records nothing.</item>
/// </list>
/// </remarks>
internal sealed record GemsSettings(
    IReadOnlyList<string> Operators,
    string Device,
    string? RecordPath,
    bool RecordOnce)
{
    public const string IncludeVariable = "GEMS_INCLUDE";
    public const string ExcludeVariable = "GEMS_EXCLUDE";
    public const string RecordVariable = "GEMS_RECORD";
    public const string RecordOnceVariable = "GEMS_RECORD_ONCE";
    public const string DeviceVariable = "GEMS_DEVICE";

    /// <summary>Values longer than this are shortened in messages, so a pasted blob does not flood the log.</summary>
    internal const int MaxShownLength = 80;

    internal static readonly string[] KnownDevices = ["auto", "cuda", "opencl", "cpu", "ilgpu-cpu"];

    /// <summary>Words users write for a device, with the device they most likely mean.</summary>
    private static readonly Dictionary<string, string> DeviceHints = new(StringComparer.Ordinal)
    {
        ["gpu"] = "cuda",
        ["nvidia"] = "cuda",
        ["cuda-gpu"] = "cuda",
        ["simd"] = "cpu",
        ["host"] = "cpu",
        ["ilgpu"] = "ilgpu-cpu",
        ["default"] = "auto",
    };

    /// <summary>Settings that were ignored, each a sentence naming the variable and the value; logged as warnings.</summary>
    public IReadOnlyList<string> Warnings { get; init; } = [];

    /// <summary>Explicit options win over the environment; the environment fills what the options leave null.</summary>
    /// <exception cref="GemsConfigurationException">Include and exclude are both given, or a name, device or record path is not usable.</exception>
    public static GemsSettings Resolve(GemsOptions? options)
    {
        var include = options?.Include is { } includeOption ? new NameList(includeOption, "GemsOptions.Include", "GemsOptions.Include") : FromEnvironmentList(IncludeVariable);
        var exclude = options?.Exclude is { } excludeOption ? new NameList(excludeOption, "GemsOptions.Exclude", "GemsOptions.Exclude") : FromEnvironmentList(ExcludeVariable);
        if (include.Names is not null && exclude.Names is not null)
        {
            throw new GemsConfigurationException(
                $"Both {include.Source} and {exclude.Source} are set; name the operators to override or those to keep, not both.");
        }

        IReadOnlyList<string> operators = OperatorTable.Names;
        if (include.Names is not null)
        {
            var wanted = CheckNames(include.Names, include.SourceWithValue);
            operators = OperatorTable.Names.Where(wanted.Contains).ToArray();
        }
        else if (exclude.Names is not null)
        {
            var unwanted = CheckNames(exclude.Names, exclude.SourceWithValue);
            operators = OperatorTable.Names.Where(name => !unwanted.Contains(name)).ToArray();
        }

        var device = ResolveDevice(options?.Device);
        var warnings = new List<string>();
        var recordPath = ResolveRecordPath(options?.RecordPath);
        var recordOnce = ResolveRecordOnce(options?.RecordOnce ?? false, warnings);
        if (recordOnce && recordPath is null)
        {
            warnings.Add(options?.RecordOnce == true
                ? "GemsOptions.RecordOnce is set but no record path is: nothing is recorded."
                : $"{RecordOnceVariable} is set but {RecordVariable} is not: nothing is recorded.");
            recordOnce = false;
        }

        return new GemsSettings(operators, device, recordPath, recordOnce) { Warnings = warnings };
    }

    public bool Equals(GemsSettings? other) =>
        other is not null
        && Operators.SequenceEqual(other.Operators)
        && Device == other.Device
        && RecordPath == other.RecordPath
        && RecordOnce == other.RecordOnce;

    public override int GetHashCode() => HashCode.Combine(Operators.Count, Device, RecordPath, RecordOnce);

    /// <summary>
    /// A value as messages show it: control characters escaped (one log line stays one line) and, past
    /// <see cref="MaxShownLength"/> characters, shortened with its length.
    /// </summary>
    internal static string Show(string value)
    {
        var shown = new StringBuilder();
        foreach (var c in value.Length > MaxShownLength ? value[..MaxShownLength] : value)
        {
            shown.Append(char.IsControl(c) ? $"\\u{(int)c:x4}" : c.ToString());
        }

        return value.Length > MaxShownLength ? $"{shown}... ({value.Length} characters)" : shown.ToString();
    }

    private static NameList FromEnvironmentList(string variable)
    {
        var value = Environment.GetEnvironmentVariable(variable);
        if (string.IsNullOrWhiteSpace(value))
        {
            return new NameList(null, variable, variable);
        }

        var names = SplitList(value);
        if (names.Count == 0)
        {
            throw new GemsConfigurationException(
                $"{variable}='{Show(value)}' names no operator; list operator names separated by commas, or leave {variable} unset.");
        }

        return new NameList(names, variable, $"{variable}='{Show(value)}'");
    }

    /// <summary>Splits on commas, semicolons and white space: no operator name holds any of them.</summary>
    private static List<string> SplitList(string value)
    {
        var names = new List<string>();
        var start = 0;
        for (var i = 0; i <= value.Length; i++)
        {
            if (i == value.Length || value[i] == ',' || value[i] == ';' || char.IsWhiteSpace(value[i]))
            {
                if (i > start)
                {
                    names.Add(value[start..i]);
                }

                start = i + 1;
            }
        }

        return names;
    }

    private static HashSet<string> CheckNames(IReadOnlyList<string> names, string source)
    {
        var result = new HashSet<string>(StringComparer.Ordinal);
        foreach (var raw in names)
        {
            var name = raw?.Trim() ?? "";
            if (OperatorTable.Find(name) is null)
            {
                var nearest = NearestNames.Find(name, OperatorTable.Names);
                throw new GemsConfigurationException(
                    $"Unknown operator '{Show(name)}' in {source}. {QuoteHint(name)}{(nearest.Count > 0 ? $"Did you mean {string.Join(", ", nearest)}? " : "")}"
                    + $"All operators: {string.Join(", ", OperatorTable.Names)}.");
            }

            result.Add(name);
        }

        return result;
    }

    private static string ResolveDevice(string? option)
    {
        var raw = option ?? Environment.GetEnvironmentVariable(DeviceVariable);
        var device = raw?.Trim().ToLowerInvariant();
        if (string.IsNullOrEmpty(device))
        {
            return "auto";
        }

        if (KnownDevices.Contains(device))
        {
            return device;
        }

        var hint = "";
        var colon = device.IndexOf(':', StringComparison.Ordinal);
        if (colon > 0 && KnownDevices.Contains(device[..colon]))
        {
            hint = $"A device cannot be numbered: each worker takes the GPU of its LOCAL_RANK; set '{device[..colon]}'. ";
        }
        else if (DeviceHints.TryGetValue(device, out var meant))
        {
            hint = $"Did you mean {meant}? ";
        }
        else if (NearestNames.Find(device, KnownDevices) is { Count: > 0 } nearest)
        {
            hint = $"Did you mean {string.Join(", ", nearest)}? ";
        }

        throw new GemsConfigurationException(
            $"Unknown device '{Show(raw!)}' in {(option is null ? DeviceVariable : "GemsOptions.Device")}; {QuoteHint(device)}{hint}expected one of: {string.Join(", ", KnownDevices)}.");
    }

    private static string? ResolveRecordPath(string? option)
    {
        var source = option is null ? RecordVariable : "GemsOptions.RecordPath";
        var raw = option ?? Environment.GetEnvironmentVariable(RecordVariable);
        if (string.IsNullOrWhiteSpace(raw))
        {
            return null;
        }

        var path = raw.Trim();
        if (IsQuoted(path))
        {
            throw new GemsConfigurationException(
                $"{source}='{Show(raw)}' starts or ends with a quote, which would become part of the file name; remove the quotes.");
        }

        if (CallRecorder.FindUnknownPlaceholder(path) is { } unknown)
        {
            throw new GemsConfigurationException(
                $"{source}='{Show(raw)}' holds '{Show(unknown)}'; a record path may hold only the placeholders {{pid}} and {{rank}}.");
        }

        return path;
    }

    private static bool ResolveRecordOnce(bool option, List<string> warnings)
    {
        if (option)
        {
            return true;
        }

        var value = Environment.GetEnvironmentVariable(RecordOnceVariable);
        switch (GemsGuard.Parse(value))
        {
            case GuardDecision.Enable:
                return true;
            case GuardDecision.Invalid:
                warnings.Add(
                    $"Ignoring {RecordOnceVariable}='{Show(value!)}': expected 1, true or yes to record each operator once "
                    + "(0, false, no or empty to record every call); recording every call.");
                return false;
            default:
                return false;
        }
    }

    /// <summary>An include or exclude list, where it came from, and that with its value for messages about one name.</summary>
    private readonly record struct NameList(IReadOnlyList<string>? Names, string Source, string SourceWithValue);

    private static bool IsQuoted(string value) =>
        value.Length >= 1 && (value[0] is '"' or '\'' || value[^1] is '"' or '\'');

    private static string QuoteHint(string value) =>
        IsQuoted(value) ? "The quotes are part of the value (an env file or a launcher passed them through); remove them. " : "";
}
