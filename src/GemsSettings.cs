using System;
using System.Collections.Generic;
using System.Linq;
using GemsInjector.Operators;

namespace GemsInjector;

/// <summary><see cref="GemsOptions"/> merged with the <c>GEMS_*</c> environment variables and checked.</summary>
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

    private static readonly string[] KnownDevices = ["auto", "cuda", "opencl", "cpu", "ilgpu-cpu"];

    /// <summary>Explicit options win over the environment; the environment fills what the options leave null.</summary>
    /// <exception cref="GemsConfigurationException">Include and exclude are both given, or a name or device is unknown.</exception>
    public static GemsSettings Resolve(GemsOptions? options)
    {
        var include = options?.Include is { } includeOption ? (includeOption, "GemsOptions.Include") : FromEnvironmentList(IncludeVariable);
        var exclude = options?.Exclude is { } excludeOption ? (excludeOption, "GemsOptions.Exclude") : FromEnvironmentList(ExcludeVariable);
        if (include.Item1 is not null && exclude.Item1 is not null)
        {
            throw new GemsConfigurationException(
                $"Both {include.Item2} and {exclude.Item2} are set; name the operators to override or those to keep, not both.");
        }

        IReadOnlyList<string> operators = OperatorTable.Names;
        if (include.Item1 is not null)
        {
            var wanted = CheckNames(include.Item1, include.Item2);
            operators = OperatorTable.Names.Where(wanted.Contains).ToArray();
        }
        else if (exclude.Item1 is not null)
        {
            var unwanted = CheckNames(exclude.Item1, exclude.Item2);
            operators = OperatorTable.Names.Where(name => !unwanted.Contains(name)).ToArray();
        }

        var device = (options?.Device ?? Environment.GetEnvironmentVariable(DeviceVariable))?.Trim().ToLowerInvariant();
        device = string.IsNullOrEmpty(device) ? "auto" : device;
        if (!KnownDevices.Contains(device))
        {
            throw new GemsConfigurationException(
                $"Unknown device '{device}' in {(options?.Device is null ? DeviceVariable : "GemsOptions.Device")}; expected one of: {string.Join(", ", KnownDevices)}.");
        }

        var recordPath = options?.RecordPath ?? NullIfEmpty(Environment.GetEnvironmentVariable(RecordVariable));
        var recordOnce = (options?.RecordOnce ?? false)
            || GemsGuard.Parse(Environment.GetEnvironmentVariable(RecordOnceVariable)) == GuardDecision.Enable;
        return new GemsSettings(operators, device, recordPath, recordOnce);
    }

    public bool Equals(GemsSettings? other) =>
        other is not null
        && Operators.SequenceEqual(other.Operators)
        && Device == other.Device
        && RecordPath == other.RecordPath
        && RecordOnce == other.RecordOnce;

    public override int GetHashCode() => HashCode.Combine(Operators.Count, Device, RecordPath, RecordOnce);

    private static (IReadOnlyList<string>?, string) FromEnvironmentList(string variable)
    {
        var value = Environment.GetEnvironmentVariable(variable);
        if (string.IsNullOrWhiteSpace(value))
        {
            return (null, variable);
        }

        return (value.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries), variable);
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
                    $"Unknown operator '{name}' in {source}. {(nearest.Count > 0 ? $"Did you mean {string.Join(", ", nearest)}? " : "")}"
                    + $"All operators: {string.Join(", ", OperatorTable.Names)}.");
            }

            result.Add(name);
        }

        return result;
    }

    private static string? NullIfEmpty(string? value) => string.IsNullOrWhiteSpace(value) ? null : value.Trim();
}
