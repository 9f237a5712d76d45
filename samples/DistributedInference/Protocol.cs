using System;
using System.Collections.Generic;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace DistributedInference;

/// <summary>
/// The launcher and its workers talk in JSON lines: the launcher writes one <see cref="WorkRequest"/> to a worker's
/// standard input; the worker writes <see cref="WorkerMessage"/>s to its standard output, each line prefixed with
/// <see cref="Prefix"/> (anything else a worker prints is passed through). Logs go to standard error.
/// A worker also sends a <c>heartbeat</c> every <see cref="HeartbeatInterval"/> from its own thread, saying what it is
/// doing, so the launcher can tell a worker that stopped answering from one that is busy. The launcher keeps the
/// worker's standard input open after the request: when it closes (the launcher exited or was killed), the worker exits.
/// </summary>
internal static class Protocol
{
    public const string Prefix = "@gems ";

    /// <summary>How often a worker says it is alive; the launcher's <c>--heartbeat-timeout</c> must be well above it.</summary>
    public static readonly TimeSpan HeartbeatInterval = TimeSpan.FromMilliseconds(500);

    public static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web)
    {
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    };
}

/// <summary>The work a launcher hands one worker.</summary>
internal sealed record WorkRequest(string Checkpoint, IReadOnlyList<string> Prompts, int MaxNewTokens, bool Compare, int Threads)
{
    /// <summary>A fault this worker must inject (<c>--inject-fault</c>, for testing the launcher); null in real runs.</summary>
    public InjectedFault? Fault { get; init; }

    /// <summary>
    /// The worker exits when its standard input closes: the launcher keeps it open while it runs, so a launcher that
    /// dies (even by SIGKILL) takes its workers with it instead of leaving them to finish for nobody.
    /// </summary>
    public bool ExitWhenInputCloses { get; init; }
}

/// <summary>What an injected fault does to the worker.</summary>
[JsonConverter(typeof(JsonStringEnumConverter<FaultMode>))]
internal enum FaultMode
{
    /// <summary>The worker kills itself with SIGKILL: no message, no clean-up, as the OOM killer or <c>kill -9</c> would.</summary>
    Kill,

    /// <summary>The worker exits at once with <see cref="InjectedFault.ExitCode"/> and no error message.</summary>
    Exit,

    /// <summary>The worker stops everything, heartbeats included, and never exits (as a stopped or deadlocked process).</summary>
    Hang,

    /// <summary>The worker throws: it reports the error to the launcher and exits with code 1, as a failing worker does.</summary>
    Error,
}

/// <summary>A fault to inject after <paramref name="AfterPrompts"/> of the worker's prompts are done (0: before the first).</summary>
internal sealed record InjectedFault(FaultMode Mode, int AfterPrompts)
{
    /// <summary>The exit code of <see cref="FaultMode.Exit"/>: one no other path of the worker uses.</summary>
    public const int ExitCode = 99;
}

/// <summary>One line from a worker: its status at start-up, a heartbeat, progress, the result, or an error.</summary>
internal sealed record WorkerMessage
{
    public required string Kind { get; init; }

    /// <summary>For <c>status</c>: the worker's <see cref="GemsInjector.GemsStatus"/> as its own JSON.</summary>
    public string? Status { get; init; }

    public int? Done { get; init; }

    public int? Total { get; init; }

    /// <summary>For <c>progress</c>: the kernels in use; for <c>error</c>: what went wrong; for <c>heartbeat</c>: what the worker is doing.</summary>
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

    /// <summary>Timed passes behind each tokens/s figure (its fastest), alternating the kernel sets.</summary>
    public int Passes { get; init; } = 1;

    public bool TokensIdentical { get; init; }

    public double MaxLogitDifference { get; init; }

    public double Tolerance { get; init; }

    public bool LogitsWithinTolerance { get; init; }
}
