using System;
using System.Collections.Generic;
using System.Linq;
using System.Text.Json;
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

    public static int Run()
    {
        // First touch of the engine's runner class: its module initializer has enabled GemsInjector (or not) by now.
        var status = LlamaModelRunner.Start();
        Send(new WorkerMessage { Kind = "status", Status = status.ToJson() });
        try
        {
            var line = Console.In.ReadLine() ?? throw new InvalidOperationException("The launcher closed standard input before sending work.");
            var request = JsonSerializer.Deserialize<WorkRequest>(line, Protocol.Json) ?? throw new InvalidOperationException("The work request is null.");
            torch.set_num_threads(Math.Max(1, request.Threads));
            using var runner = new LlamaModelRunner(request.Checkpoint);
            var kernels = Gems.IsEnabled ? "gems" : "default";
            runner.Generate(request.Prompts.FirstOrDefault() ?? "warm up", WarmUpTokens);
            var outputs = new List<RunnerOutput>();
            foreach (var prompt in request.Prompts)
            {
                outputs.Add(runner.Generate(prompt, request.MaxNewTokens, keepLogits: request.Compare));
                Send(new WorkerMessage { Kind = "progress", Done = outputs.Count, Total = request.Prompts.Count, Message = kernels });
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
                result = result with { Comparison = Compare(runner, request, outputs) };
            }

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

        return new KernelComparison
        {
            GemsTokensPerSecond = Rate(gems),
            DefaultTokensPerSecond = Rate(defaults),
            TokensIdentical = identical,
            MaxLogitDifference = maxDifference,
            Tolerance = LogitTolerance,
            LogitsWithinTolerance = within,
        };
    }

    private static double Rate(IReadOnlyList<RunnerOutput> outputs)
    {
        var seconds = outputs.Sum(o => o.Elapsed.TotalSeconds);
        return seconds > 0 ? outputs.Sum(o => o.Tokens.Length) / seconds : 0;
    }

    private static void Send(WorkerMessage message)
    {
        Console.Out.WriteLine(Protocol.Prefix + JsonSerializer.Serialize(message, Protocol.Json));
        Console.Out.Flush();
    }
}
