using System;
using System.Collections.Generic;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace GemsInjector;

/// <summary>Whether this process runs GemsInjector's kernels.</summary>
[JsonConverter(typeof(JsonStringEnumConverter<GemsState>))]
public enum GemsState
{
    /// <summary>Not enabled: the guard variable did not ask for it, or it was disabled again. Default kernels run.</summary>
    Disabled,

    /// <summary>Enabled: the operator table runs GemsInjector's kernels.</summary>
    Enabled,

    /// <summary>Enabling was asked for and failed; the default kernels run. <see cref="GemsStatus.Reason"/> says why.</summary>
    Fallback,
}

/// <summary>
/// What one process knows about its own enablement: enough for a launcher to print one fleet table instead
/// of a person reading every node's log. Serializable with <see cref="ToJson"/> / <see cref="FromJson"/>.
/// </summary>
public sealed record GemsStatus
{
    /// <summary>Enabled, disabled, or fallen back to the default kernels.</summary>
    public GemsState State { get; init; }

    /// <summary>Why the process is in this state, in words (the logged line for a fallback).</summary>
    public string Reason { get; init; } = "";

    /// <summary>The kernel backend in use when enabled (for example <c>cpu</c>); empty otherwise.</summary>
    public string Device { get; init; } = "";

    /// <summary>The operators whose default kernel GemsInjector overrode, by name.</summary>
    public IReadOnlyList<string> OverriddenOperators { get; init; } = [];

    /// <summary>The worker class whose start-up block set this status, when one did.</summary>
    public string? Worker { get; init; }

    /// <summary>The guard environment variable that the worker's start-up block read, when one did.</summary>
    public string? GuardVariable { get; init; }

    /// <summary>The process id.</summary>
    public int ProcessId { get; init; }

    /// <summary>The machine's host name.</summary>
    public string HostName { get; init; } = "";

    /// <summary>The worker's rank in its job (from <c>RANK</c>, then <c>LOCAL_RANK</c>), when the launcher set one.</summary>
    public int? Rank { get; init; }

    /// <summary>When the state was set (UTC).</summary>
    public DateTimeOffset Timestamp { get; init; }

    /// <summary>Serializes the status as one line of JSON.</summary>
    public string ToJson() => JsonSerializer.Serialize(this, GemsStatusJsonContext.Default.GemsStatus);

    /// <summary>Reads a status written by <see cref="ToJson"/>.</summary>
    /// <exception cref="ArgumentException"><paramref name="json"/> is not a serialized status.</exception>
    public static GemsStatus FromJson(string json)
    {
        ArgumentNullException.ThrowIfNull(json);
        try
        {
            return JsonSerializer.Deserialize(json, GemsStatusJsonContext.Default.GemsStatus)
                ?? throw new ArgumentException("The JSON text holds null, not a GemsStatus.", nameof(json));
        }
        catch (JsonException ex)
        {
            throw new ArgumentException($"The JSON text is not a GemsStatus: {ex.Message}", nameof(json), ex);
        }
    }

    internal static GemsStatus ForThisProcess(GemsState state, string reason) => new()
    {
        State = state,
        Reason = reason,
        ProcessId = Environment.ProcessId,
        HostName = Environment.MachineName,
        Rank = ReadRank(),
        Timestamp = DateTimeOffset.UtcNow,
    };

    private static int? ReadRank()
    {
        foreach (var variable in new[] { "RANK", "LOCAL_RANK" })
        {
            if (int.TryParse(Environment.GetEnvironmentVariable(variable), out var rank))
            {
                return rank;
            }
        }

        return null;
    }

    /// <summary>Compares the operator lists by content, so that a status equals its JSON round trip.</summary>
    public bool Equals(GemsStatus? other) =>
        other is not null
        && State == other.State
        && Reason == other.Reason
        && Device == other.Device
        && System.Linq.Enumerable.SequenceEqual(OverriddenOperators, other.OverriddenOperators)
        && Worker == other.Worker
        && GuardVariable == other.GuardVariable
        && ProcessId == other.ProcessId
        && HostName == other.HostName
        && Rank == other.Rank
        && Timestamp == other.Timestamp;

    /// <inheritdoc/>
    public override int GetHashCode() => HashCode.Combine(State, Reason, Device, OverriddenOperators.Count, ProcessId, Timestamp);
}

[JsonSourceGenerationOptions(WriteIndented = false)]
[JsonSerializable(typeof(GemsStatus))]
internal sealed partial class GemsStatusJsonContext : JsonSerializerContext
{
}
