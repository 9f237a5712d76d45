using System;
using System.Collections.Generic;
using System.Globalization;
using System.Linq;

namespace DistributedInference;

/// <summary>Which processes get the guard variable: the seed's trap is exporting it in the launcher alone.</summary>
internal enum EnvScope
{
    /// <summary>The launcher and every worker have USE_FLAGGEMS=1.</summary>
    All,

    /// <summary>Only the launcher has it; workers start without it (the trap).</summary>
    Launcher,

    /// <summary>No process has it.</summary>
    None,
}

internal sealed class Options
{
    public const string Usage = """
        Usage: DistributedInference [options]              launch workers, collect their status and tokens
               DistributedInference --worker               (started by the launcher; reads work on stdin)

          --workers N                 worker processes to start (default 2)
          --env-scope all|launcher|none
                                      all: USE_FLAGGEMS=1 for the launcher and every worker (default);
                                      launcher: only the launcher has it, workers start without it (the trap);
                                      none: nobody has it
          --require-gems              exit 3 when any worker is not running GemsInjector's kernels
          --no-compare                skip the second pass on the other kernels
          --prompts N                 how many of the built-in prompts to run (default 8)
          --prompt TEXT               a prompt of your own (repeatable; replaces the built-in ones)
          --max-new-tokens N          tokens to generate per prompt (default 32)
          --checkpoint PATH           the model checkpoint (written with seeded weights if absent)
          --worker-env RANK:NAME=VALUE  set (or, with an empty VALUE, unset) a variable for one worker
          --worker-app RANK=PATH      start that worker from another copy of DistributedInference.dll
          --report PATH               also write the fleet report as JSON
          --timeout SECONDS           give up on the run after this long: kill the workers, exit 6 (default 300)
          --heartbeat-timeout SECONDS a worker that says nothing for this long (it sends a heartbeat every 0.5 s)
                                      has stopped answering: kill the fleet, exit 6 (default 30)
          --verbose                   pass every worker log line through (override lines included)

        When a worker dies before its result (killed, crashed, exited without a word) the launcher names the rank, its
        pid, exit code (128 + N: killed by signal N) and what it was doing, kills the other workers and exits 5; a
        worker that reported an error gives exit 1 the same way. Workers exit by themselves when the launcher dies.

        Fault injection (for testing the launcher's handling of lost and hung workers):
          --inject-fault RANK:MODE[:PROMPTS]
                                      make one worker fail after PROMPTS of its prompts are done (default 1; 0 is
                                      right after warm-up). MODE: kill (the worker sends itself SIGKILL), exit (it
                                      exits at once with code 99 and no message), hang (it stops, heartbeats too,
                                      and never exits), error (it reports an exception and exits 1). Repeatable,
                                      one per rank.

        Exit codes: 0 ok; 1 a worker reported an error; 2 usage; 3 --require-gems failed; 4 kernels disagree;
        5 a worker was lost; 6 a worker stopped answering or --timeout passed.
        """;

    public bool IsWorker { get; private set; }

    public int Workers { get; private set; } = 2;

    public EnvScope Scope { get; private set; } = EnvScope.All;

    public bool RequireGems { get; private set; }

    public bool Compare { get; private set; } = true;

    public int PromptCount { get; private set; } = 8;

    public List<string> Prompts { get; } = [];

    public int MaxNewTokens { get; private set; } = 32;

    public string? Checkpoint { get; private set; }

    public Dictionary<int, Dictionary<string, string?>> WorkerEnvironment { get; } = [];

    public Dictionary<int, string> WorkerApps { get; } = [];

    public string? ReportPath { get; private set; }

    public int TimeoutSeconds { get; private set; } = 300;

    public int HeartbeatTimeoutSeconds { get; private set; } = 30;

    public Dictionary<int, InjectedFault> Faults { get; } = [];

    public bool Verbose { get; private set; }

    public bool Help { get; private set; }

    /// <exception cref="ArgumentException">An option is unknown or its value is invalid.</exception>
    public static Options Parse(string[] args)
    {
        var options = new Options();
        for (var i = 0; i < args.Length; i++)
        {
            var arg = args[i];
            string Next() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"{arg} needs a value.");
            int NextInt(int min)
            {
                var text = Next();
                return int.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture, out var value) && value >= min
                    ? value
                    : throw new ArgumentException($"{arg} needs an integer of at least {min}, not '{text}'.");
            }

            switch (arg)
            {
                case "--worker": options.IsWorker = true; break;
                case "--workers": options.Workers = NextInt(1); break;
                case "--env-scope":
                    var scope = Next();
                    options.Scope = scope switch
                    {
                        "all" => EnvScope.All,
                        "launcher" => EnvScope.Launcher,
                        "none" => EnvScope.None,
                        _ => throw new ArgumentException($"--env-scope takes all, launcher or none, not '{scope}'."),
                    };
                    break;
                case "--require-gems": options.RequireGems = true; break;
                case "--compare": options.Compare = true; break;
                case "--no-compare": options.Compare = false; break;
                case "--prompts": options.PromptCount = NextInt(1); break;
                case "--prompt": options.Prompts.Add(Next()); break;
                case "--max-new-tokens": options.MaxNewTokens = NextInt(1); break;
                case "--checkpoint": options.Checkpoint = Next(); break;
                case "--worker-env":
                    var assignment = Next();
                    var colon = assignment.IndexOf(':', StringComparison.Ordinal);
                    var equals = assignment.IndexOf('=', StringComparison.Ordinal);
                    if (colon <= 0 || equals <= colon + 1 || !int.TryParse(assignment[..colon], NumberStyles.Integer, CultureInfo.InvariantCulture, out var envRank))
                    {
                        throw new ArgumentException($"--worker-env takes RANK:NAME=VALUE, not '{assignment}'.");
                    }

                    if (!options.WorkerEnvironment.TryGetValue(envRank, out var variables))
                    {
                        options.WorkerEnvironment[envRank] = variables = [];
                    }

                    var value = assignment[(equals + 1)..];
                    variables[assignment[(colon + 1)..equals]] = value.Length == 0 ? null : value;
                    break;
                case "--worker-app":
                    var app = Next();
                    var separator = app.IndexOf('=', StringComparison.Ordinal);
                    if (separator <= 0 || !int.TryParse(app[..separator], NumberStyles.Integer, CultureInfo.InvariantCulture, out var appRank))
                    {
                        throw new ArgumentException($"--worker-app takes RANK=PATH, not '{app}'.");
                    }

                    options.WorkerApps[appRank] = app[(separator + 1)..];
                    break;
                case "--report": options.ReportPath = Next(); break;
                case "--timeout": options.TimeoutSeconds = NextInt(1); break;
                case "--heartbeat-timeout": options.HeartbeatTimeoutSeconds = NextInt(1); break;
                case "--inject-fault":
                    var (faultRank, fault) = ParseFault(Next());
                    options.Faults[faultRank] = fault;
                    break;
                case "--verbose": options.Verbose = true; break;
                case "--help" or "-h": options.Help = true; break;
                default: throw new ArgumentException($"Unknown option '{arg}'.");
            }
        }

        foreach (var rank in options.WorkerEnvironment.Keys.Concat(options.WorkerApps.Keys).Concat(options.Faults.Keys))
        {
            if (rank < 0 || rank >= options.Workers)
            {
                throw new ArgumentException($"Rank {rank} is not one of the {options.Workers} workers (0..{options.Workers - 1}).");
            }
        }

        return options;
    }

    private static (int Rank, InjectedFault Fault) ParseFault(string text)
    {
        var parts = text.Split(':');
        var usage = $"--inject-fault takes RANK:kill|exit|hang|error[:PROMPTS], not '{text}'.";
        if (parts.Length is < 2 or > 3 || !int.TryParse(parts[0], NumberStyles.Integer, CultureInfo.InvariantCulture, out var rank))
        {
            throw new ArgumentException(usage);
        }

        var mode = parts[1] switch
        {
            "kill" => FaultMode.Kill,
            "exit" => FaultMode.Exit,
            "hang" => FaultMode.Hang,
            "error" => FaultMode.Error,
            _ => throw new ArgumentException(usage),
        };
        var afterPrompts = 1;
        if (parts.Length == 3 && (!int.TryParse(parts[2], NumberStyles.Integer, CultureInfo.InvariantCulture, out afterPrompts) || afterPrompts < 0))
        {
            throw new ArgumentException(usage);
        }

        return (rank, new InjectedFault(mode, afterPrompts));
    }
}
