using System.Collections.Generic;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace DistributedInference;

/// <summary>
/// The launcher and its workers talk in JSON lines: the launcher writes one <see cref="WorkRequest"/> to a worker's
/// standard input; the worker writes <see cref="WorkerMessage"/>s to its standard output, each line prefixed with
/// <see cref="Prefix"/> (anything else a worker prints is passed through). Logs go to standard error.
/// </summary>
internal static class Protocol
{
    public const string Prefix = "@gems ";

    public static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web)
    {
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    };
}

/// <summary>The work a launcher hands one worker.</summary>
internal sealed record WorkRequest(string Checkpoint, IReadOnlyList<string> Prompts, int MaxNewTokens, bool Compare, int Threads);

/// <summary>One line from a worker: its status at start-up, progress, the result, or an error.</summary>
internal sealed record WorkerMessage
{
    public required string Kind { get; init; }

    /// <summary>For <c>status</c>: the worker's <see cref="GemsInjector.GemsStatus"/> as its own JSON.</summary>
    public string? Status { get; init; }

    public int? Done { get; init; }

    public int? Total { get; init; }

    public string? Message { get; init; }

    public WorkerResult? Result { get; init; }
}

/// <summary>What a worker generated and how fast, and how its kernels compared with the other kernels.</summary>
internal sealed record WorkerResult
{
    public required IReadOnlyList<PromptOutput> Outputs { get; init; }

    public required string Kernels { get; init; }

    public int NewTokens { get; init; }

    public double Seconds { get; init; }

    public double TokensPerSecond { get; init; }

    public KernelComparison? Comparison { get; init; }
}

internal sealed record PromptOutput(string Prompt, int[] Tokens, string Text);

/// <summary>The same prompts on GemsInjector's kernels and on the default kernels, in one worker.</summary>
internal sealed record KernelComparison
{
    public string? Unavailable { get; init; }

    public double GemsTokensPerSecond { get; init; }

    public double DefaultTokensPerSecond { get; init; }

    public bool TokensIdentical { get; init; }

    public double MaxLogitDifference { get; init; }

    public double Tolerance { get; init; }

    public bool LogitsWithinTolerance { get; init; }
}
