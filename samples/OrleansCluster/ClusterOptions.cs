using System;
using System.Collections.Generic;
using System.Globalization;

namespace OrleansCluster;

/// <summary>Which processes get the guard variable.</summary>
internal enum EnvScope
{
    All,
    Launcher,
    None,
}

internal sealed class ClusterOptions
{
    public const string Usage = """
        Usage: OrleansCluster [options]                    start silos, connect as a client, print the fleet, generate
               OrleansCluster --silo INDEX [...]           one silo (started by the launcher)

          --silos N                  silo processes to start on loopback (default 3)
          --env-scope all|launcher|none   who gets USE_FLAGGEMS=1 (default all)
          --silo-env INDEX:NAME=VALUE     set (or, with an empty VALUE, unset) a variable for one silo
          --require-gems             exit 3 when any silo is not running GemsInjector's kernels
          --prompts N                prompts to spread across the silos (default 6)
          --max-new-tokens N         tokens per prompt (default 24)
          --base-port P              silo-to-silo ports P, P+1, ... (default 11111; silo 0 is the primary)
          --gateway-base-port G      client gateway ports G, G+1, ... (default 30000)
          --checkpoint PATH          the model checkpoint (written with seeded weights if absent)
          --report PATH              also write the fleet as JSON
          --timeout SECONDS          how long silos may take to start (default 120)
          --verbose                  pass the silos' override lines through

        Silo failure (fault injection, for testing fail-over):
          --kill-silo INDEX          after the run, kill silo INDEX (1..N-1) with SIGKILL and call its worker grain
                                     until Orleans re-activates it on a surviving silo; print where, how long it took
                                     and that silo's GemsInjector status. Exit 5 if it does not come back within
                                     --failover-timeout. Silo 0 cannot be killed: with localhost clustering it holds
                                     the membership table. Implies --fast-membership.
          --failover-timeout SECONDS how long to wait for the grain to come back (default 60)
          --fast-membership          silos probe each other with a 1 s timeout and suspect a silo after 2 missed
                                     probes: a killed silo is declared dead in 1-2 s on one machine, where Orleans'
                                     defaults (5 s probes, 3 misses) took about 11 s; for tests, not production

        Exit codes: 0 ok; 1 the silos did not all start within --timeout; 2 usage; 3 --require-gems failed;
        5 the killed silo's grain did not come back.
        """;

    public bool IsSilo { get; private set; }

    public int SiloIndex { get; private set; }

    public int Silos { get; private set; } = 3;

    public EnvScope Scope { get; private set; } = EnvScope.All;

    public Dictionary<int, Dictionary<string, string?>> SiloEnvironment { get; } = [];

    public bool RequireGems { get; private set; }

    public int PromptCount { get; private set; } = 6;

    public int MaxNewTokens { get; private set; } = 24;

    public int BasePort { get; private set; } = 11111;

    public int GatewayBasePort { get; private set; } = 30000;

    public string? Checkpoint { get; private set; }

    public string? ReportPath { get; private set; }

    public int TimeoutSeconds { get; private set; } = 120;

    public bool Verbose { get; private set; }

    public int? KillSilo { get; private set; }

    public int FailoverTimeoutSeconds { get; private set; } = 60;

    public bool FastMembership { get; private set; }

    public bool Help { get; private set; }

    public static ClusterOptions Parse(string[] args)
    {
        var options = new ClusterOptions();
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
                case "--silo": options.IsSilo = true; options.SiloIndex = NextInt(0); break;
                case "--silos": options.Silos = NextInt(1); break;
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
                case "--silo-env":
                    var assignment = Next();
                    var colon = assignment.IndexOf(':', StringComparison.Ordinal);
                    var equals = assignment.IndexOf('=', StringComparison.Ordinal);
                    if (colon <= 0 || equals <= colon + 1 || !int.TryParse(assignment[..colon], NumberStyles.Integer, CultureInfo.InvariantCulture, out var index))
                    {
                        throw new ArgumentException($"--silo-env takes INDEX:NAME=VALUE, not '{assignment}'.");
                    }

                    if (!options.SiloEnvironment.TryGetValue(index, out var variables))
                    {
                        options.SiloEnvironment[index] = variables = [];
                    }

                    var value = assignment[(equals + 1)..];
                    variables[assignment[(colon + 1)..equals]] = value.Length == 0 ? null : value;
                    break;
                case "--require-gems": options.RequireGems = true; break;
                case "--prompts": options.PromptCount = NextInt(1); break;
                case "--max-new-tokens": options.MaxNewTokens = NextInt(1); break;
                case "--base-port": options.BasePort = NextInt(1); break;
                case "--gateway-base-port": options.GatewayBasePort = NextInt(1); break;
                case "--checkpoint": options.Checkpoint = Next(); break;
                case "--report": options.ReportPath = Next(); break;
                case "--timeout": options.TimeoutSeconds = NextInt(1); break;
                case "--verbose": options.Verbose = true; break;
                case "--kill-silo": options.KillSilo = NextInt(0); options.FastMembership = true; break;
                case "--failover-timeout": options.FailoverTimeoutSeconds = NextInt(1); break;
                case "--fast-membership": options.FastMembership = true; break;
                case "--help" or "-h": options.Help = true; break;
                default: throw new ArgumentException($"Unknown option '{arg}'.");
            }
        }

        if (options.KillSilo is { } victim && !options.IsSilo && (victim == 0 || victim >= options.Silos))
        {
            throw new ArgumentException(victim == 0
                ? "--kill-silo 0: silo 0 holds the membership table in localhost clustering, and the cluster does not survive it; kill silo 1..N-1."
                : $"--kill-silo {victim}: there are only {options.Silos} silos (0..{options.Silos - 1}).");
        }

        return options;
    }
}
