using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Linq;
using System.Text.Json;
using System.Threading;
using GemsInjector;
using GemsLlm;
using TorchSharp;

namespace DistributedInference;

/// <summary>
/// A worker process: touching <see cref="LlamaModelRunner"/> runs its generated start-up block (GemsInjector on or off
/// by this process's own USE_FLAGGEMS), then the worker reports its status, generates for its share of the prompts and,
/// when asked, runs them again on the other kernels to compare.
/// </summary>
internal static class Worker
{
    /// <summary>Absolute tolerance on logits, plus the same relative to the default kernels' logit.</summary>
    public const double LogitTolerance = 1e-3;

    /// <summary>Tokens generated before each timed pass, so that JIT compilation and first-touch costs stay out of tokens/s.</summary>
    public const int WarmUpTokens = 64;

    /// <summary>
    /// Timed passes per kernel set when comparing, alternating the sets; each set's fastest pass is its figure, so that a
    /// neighbouring worker's burst on a shared core (two workers on a two-core machine) does not decide the ratio.
    /// </summary>
    public const int ComparisonPasses = 3;

    /// <summary>The worker's exit code when the launcher went away (its standard input closed) before the work was done.</summary>
    public const int ExitLauncherGone = 98;

    private static readonly object SendLock = new();

    /// <summary>What the worker is doing now; every heartbeat carries it, so the launcher can say where a lost worker was.</summary>
    private static volatile string s_doing = "starting";

    /// <summary>Set by an injected hang: the heartbeat thread goes quiet too, as in a process that stopped altogether.</summary>
    private static volatile bool s_silenced;

    public static int Run()
    {
        // Heartbeats start first: loading the engine (TorchSharp's native libraries) is the slowest silent step.
        new Thread(Heartbeat) { IsBackground = true, Name = "heartbeat" }.Start();
        return RunWork();
    }

    // Kept apart from Run so that the heartbeat thread is running before this method's first mention of the engine
    // compiles it and runs its start-up block.
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.NoInlining)]
    private static int RunWork()
    {
        // First touch of the engine's runner class: its module initializer has enabled GemsInjector (or not) by now.
        var status = LlamaModelRunner.Start();
        Send(new WorkerMessage { Kind = "status", Status = status.ToJson() });
        try
        {
            s_doing = "waiting for work";
            var line = Console.In.ReadLine() ?? throw new InvalidOperationException("The launcher closed standard input before sending work.");
            var request = JsonSerializer.Deserialize<WorkRequest>(line, Protocol.Json) ?? throw new InvalidOperationException("The work request is null.");
            if (request.ExitWhenInputCloses)
            {
                new Thread(ExitWhenLauncherGoes) { IsBackground = true, Name = "launcher watch" }.Start();
            }

            torch.set_num_threads(Math.Max(1, request.Threads));
            s_doing = "loading the model";
            using var runner = new LlamaModelRunner(request.Checkpoint);
            var kernels = Gems.IsEnabled ? "gems" : "default";
            s_doing = $"warming up ({kernels} kernels)";
            runner.Generate(request.Prompts.FirstOrDefault() ?? "warm up", WarmUpTokens);
            var outputs = new List<RunnerOutput>();
            InjectFaultIfDue(request.Fault, 0);
            foreach (var prompt in request.Prompts)
            {
                s_doing = $"generating prompt {outputs.Count + 1} of {request.Prompts.Count} ({kernels} kernels)";
                outputs.Add(runner.Generate(prompt, request.MaxNewTokens, keepLogits: request.Compare));
                s_doing = $"done with {outputs.Count} of {request.Prompts.Count} prompts ({kernels} kernels)";
                Send(new WorkerMessage { Kind = "progress", Done = outputs.Count, Total = request.Prompts.Count, Message = kernels });
                InjectFaultIfDue(request.Fault, outputs.Count);
            }

            var result = new WorkerResult
            {
                Outputs = outputs.Select(o => new PromptOutput(o.Prompt, o.Tokens, o.Text)).ToArray(),
                Kernels = kernels,
                NewTokens = outputs.Sum(o => o.Tokens.Length),
                Seconds = outputs.Sum(o => o.Elapsed.TotalSeconds),
                TokensPerSecond = Rate(outputs),
            };
            if (request.Compare)
            {
                s_doing = $"comparing on the {(Gems.IsEnabled ? "default" : "gems")} kernels";
                result = result with { Comparison = Compare(runner, request, outputs) };
            }

            s_doing = "sending the result";
            Send(new WorkerMessage { Kind = "result", Result = result });
            return 0;
        }
        catch (Exception ex)
        {
            Send(new WorkerMessage { Kind = "error", Message = $"{ex.GetType().Name}: {ex.Message}" });
            Console.Error.WriteLine(ex);
            return 1;
        }
    }

    private static KernelComparison Compare(LlamaModelRunner runner, WorkRequest request, IReadOnlyList<RunnerOutput> first)
    {
        var firstOnGems = Gems.IsEnabled;
        var other = runner.RunOnKernels(!firstOnGems, request.Prompts, request.MaxNewTokens, WarmUpTokens, out var unavailable);
        if (other is null)
        {
            return new KernelComparison { Unavailable = unavailable, DefaultTokensPerSecond = Rate(first), Tolerance = LogitTolerance };
        }

        var (gems, defaults) = firstOnGems ? (first, other) : (other, first);
        var identical = true;
        var maxDifference = 0.0;
        var within = true;
        for (var p = 0; p < gems.Count; p++)
        {
            identical &= gems[p].Tokens.SequenceEqual(defaults[p].Tokens);

            // Compare logits step by step while both runs saw the same tokens.
            var steps = Math.Min(gems[p].Logits.Length, defaults[p].Logits.Length);
            for (var step = 0; step < steps; step++)
            {
                var a = gems[p].Logits[step];
                var b = defaults[p].Logits[step];
                for (var i = 0; i < a.Length; i++)
                {
                    var difference = Math.Abs((double)a[i] - b[i]);
                    maxDifference = Math.Max(maxDifference, difference);
                    within &= difference <= LogitTolerance + LogitTolerance * Math.Abs(b[i]);
                }

                if (gems[p].Tokens[step] != defaults[p].Tokens[step])
                {
                    break;
                }
            }
        }

        var (gemsRate, defaultRate) = FastestPasses(runner, request, firstOnGems, Rate(gems), Rate(defaults));
        return new KernelComparison
        {
            GemsTokensPerSecond = gemsRate,
            DefaultTokensPerSecond = defaultRate,
            Passes = ComparisonPasses,
            TokensIdentical = identical,
            MaxLogitDifference = maxDifference,
            Tolerance = LogitTolerance,
            LogitsWithinTolerance = within,
        };
    }

    /// <summary>
    /// Runs the timing-only passes after the first pair: each pass pair starts with the set the previous one ended on
    /// (A B, B A, A B, ...), so neither set always runs straight after a switch of the operator table.
    /// </summary>
    private static (double Gems, double Default) FastestPasses(LlamaModelRunner runner, WorkRequest request, bool firstOnGems, double gemsRate, double defaultRate)
    {
        var onGems = !firstOnGems;
        for (var pass = 1; pass < ComparisonPasses; pass++)
        {
            for (var set = 0; set < 2; set++, onGems = !onGems)
            {
                s_doing = $"timing pass {pass + 1} of {ComparisonPasses} on the {(onGems ? "gems" : "default")} kernels";
                var outputs = runner.RunOnKernels(onGems, request.Prompts, request.MaxNewTokens, warmUpTokens: 0, out _);
                if (outputs is null)
                {
                    // The first pair ran on both sets, so its figures stand.
                    continue;
                }

                if (onGems)
                {
                    gemsRate = Math.Max(gemsRate, Rate(outputs));
                }
                else
                {
                    defaultRate = Math.Max(defaultRate, Rate(outputs));
                }
            }

            onGems = !onGems;
        }

        return (gemsRate, defaultRate);
    }

    private static double Rate(IReadOnlyList<RunnerOutput> outputs)
    {
        var seconds = outputs.Sum(o => o.Elapsed.TotalSeconds);
        return seconds > 0 ? outputs.Sum(o => o.Tokens.Length) / seconds : 0;
    }

    private static void InjectFaultIfDue(InjectedFault? fault, int promptsDone)
    {
        if (fault is null || fault.AfterPrompts != promptsDone)
        {
            return;
        }

        Console.Error.WriteLine($"Injected fault: {fault.Mode.ToString().ToLowerInvariant()} after {promptsDone} prompts (--inject-fault).");
        switch (fault.Mode)
        {
            case FaultMode.Kill:
                // Process.Kill sends SIGKILL on Unix, to this process as to any other.
                using (var self = Process.GetCurrentProcess())
                {
                    self.Kill();
                }

                Thread.Sleep(Timeout.Infinite);
                break;
            case FaultMode.Exit:
                Environment.Exit(InjectedFault.ExitCode);
                break;
            case FaultMode.Hang:
                s_silenced = true;
                Thread.Sleep(Timeout.Infinite);
                break;
            case FaultMode.Error:
                throw new InvalidOperationException($"Injected fault after {promptsDone} prompts (--inject-fault).");
        }
    }

    private static void Heartbeat()
    {
        while (!s_silenced)
        {
            // Read what the worker is doing under the send lock: a heartbeat composed before a progress message must
            // not reach the launcher after it, or the launcher would think the worker a step behind.
            lock (SendLock)
            {
                Send(new WorkerMessage { Kind = "heartbeat", Message = s_doing });
            }

            Thread.Sleep(Protocol.HeartbeatInterval);
        }
    }

    private static void ExitWhenLauncherGoes()
    {
        while (Console.In.ReadLine() is not null)
        {
            // The launcher sends nothing after the request; reading on only waits for the end of the stream.
        }

        Console.Error.WriteLine($"The launcher closed this worker's standard input while it was {s_doing}: exiting with code {ExitLauncherGone}.");
        Environment.Exit(ExitLauncherGone);
    }

    private static void Send(WorkerMessage message)
    {
        var line = Protocol.Prefix + JsonSerializer.Serialize(message, Protocol.Json);
        lock (SendLock)
        {
            if (s_silenced && message.Kind == "heartbeat")
            {
                return;
            }

            Console.Out.WriteLine(line);
            Console.Out.Flush();
        }
    }
}
