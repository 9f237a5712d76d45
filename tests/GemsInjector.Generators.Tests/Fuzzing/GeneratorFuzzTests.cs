using System;
using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Linq;
using System.Text;
using System.Threading;
using System.Threading.Tasks;
using Xunit;
using Xunit.Abstractions;

namespace GemsInjector.Generators.Tests.Fuzzing;

/// <summary>
/// Seeded fuzzing of the generator and the analyzers with random programs around <c>[GemsWorker]</c>
/// (<see cref="ProgramGenerator"/>). Bounded in count and in time; replay with the environment variables
/// <c>GEMS_FUZZ_SEED</c> (a number, or <c>random</c>), <c>GEMS_FUZZ_COUNT</c>, <c>GEMS_FUZZ_SECONDS</c> and
/// <c>GEMS_FUZZ_CASE</c> (run that one case index only).
/// </summary>
public sealed class GeneratorFuzzTests(ITestOutputHelper output)
{
    /// <summary>The seed CI runs, so that a red build replays exactly; set GEMS_FUZZ_SEED to explore others.</summary>
    public const int DefaultSeed = 20260606;

    public const int DefaultCount = 5000;

    /// <summary>Stop early past this, so that a slow machine cannot make the suite slow; the summary says how far it got.</summary>
    public const int DefaultSeconds = 60;

    private const int MaxReportedFailures = 3;

    [Fact]
    public void Random_programs_never_crash_the_generator_or_analyzers_and_get_exactly_the_expected_files_and_diagnostics()
    {
        var seed = ReadSeed();
        var count = ReadInt("GEMS_FUZZ_COUNT", DefaultCount);
        var seconds = ReadInt("GEMS_FUZZ_SECONDS", DefaultSeconds);
        var onlyCase = Environment.GetEnvironmentVariable("GEMS_FUZZ_CASE") is { Length: > 0 } text
            ? int.Parse(text, CultureInfo.InvariantCulture)
            : (int?)null;
        output.WriteLine($"GEMS_FUZZ_SEED={seed} GEMS_FUZZ_COUNT={count} GEMS_FUZZ_SECONDS={seconds}{(onlyCase is { } c ? $" GEMS_FUZZ_CASE={c}" : "")}");

        var outcomes = new ConcurrentDictionary<int, CaseOutcome>();
        var failures = new ConcurrentQueue<(int Index, string Report)>();
        var cpuBefore = Process.GetCurrentProcess().TotalProcessorTime;
        var watch = Stopwatch.StartNew();
        var deadline = TimeSpan.FromSeconds(seconds);
        var first = onlyCase ?? 0;
        var last = onlyCase is { } single ? single + 1 : count;
        var timedOut = 0;

        Parallel.For(first, last, new ParallelOptions { MaxDegreeOfParallelism = Environment.ProcessorCount }, (index, state) =>
        {
            if (watch.Elapsed > deadline)
            {
                Interlocked.Exchange(ref timedOut, 1);
                state.Stop();
                return;
            }

            var program = ProgramGenerator.Write(CaseRandom(seed, index));
            CaseOutcome outcome;
            try
            {
                outcome = FuzzOracle.Run(program);
            }
            catch (Exception ex)
            {
                outcome = new CaseOutcome(program.Category, 0, [], false, ["the harness threw: " + ex]);
            }

            outcomes[index] = outcome;
            if (outcome.Problems.Count > 0)
            {
                failures.Enqueue((index, Report(seed, index, program, outcome)));
            }
        });

        watch.Stop();
        var cpu = Process.GetCurrentProcess().TotalProcessorTime - cpuBefore;
        output.WriteLine(Summary(outcomes, watch.Elapsed, cpu, timedOut == 1, count));

        var failed = failures.OrderBy(f => f.Index).ToList();
        if (failed.Count > 0)
        {
            var message = new StringBuilder();
            message.AppendLine($"{failed.Count} of {outcomes.Count} fuzzed programs failed (seed {seed}; failing case indexes: {string.Join(", ", failed.Select(f => f.Index).Take(50))}).");
            foreach (var (_, report) in failed.Take(MaxReportedFailures))
            {
                message.AppendLine(report);
            }

            Assert.Fail(message.ToString());
        }

        Assert.NotEmpty(outcomes);
    }

    /// <summary>Each case has its own generator, from the seed and its index only, so any case replays alone and in any order.</summary>
    internal static Random CaseRandom(int seed, int index)
    {
        // SplitMix64 of (seed, index): neighbouring indexes get unrelated streams.
        var z = unchecked(((ulong)(uint)seed << 32) + (ulong)(uint)index + 0x9E3779B97F4A7C15UL);
        z = unchecked((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL);
        z = unchecked((z ^ (z >> 27)) * 0x94D049BB133111EBUL);
        z ^= z >> 31;
        return new Random(unchecked((int)z ^ (int)(z >> 32)));
    }

    private static string Report(int seed, int index, FuzzProgram program, CaseOutcome outcome)
    {
        var text = new StringBuilder();
        text.AppendLine($"---- case {index} (replay: GEMS_FUZZ_SEED={seed} GEMS_FUZZ_CASE={index}) ----");
        foreach (var problem in outcome.Problems)
        {
            text.AppendLine("* " + problem);
        }

        text.AppendLine(program.Describe());
        return text.ToString();
    }

    private static string Summary(ConcurrentDictionary<int, CaseOutcome> outcomes, TimeSpan elapsed, TimeSpan cpu, bool timedOut, int requested)
    {
        // CPU time too: on a shared machine the wall time says more about the neighbours than about the fuzzer.
        var text = new StringBuilder();
        text.AppendLine($"{outcomes.Count} programs in {elapsed.TotalSeconds:F1} s wall, {cpu.TotalSeconds:F1} s CPU ({cpu.TotalMilliseconds / Math.Max(1, outcomes.Count):F1} ms CPU each, {Environment.ProcessorCount} threads)"
            + (timedOut ? $"; stopped by the time limit before {requested}" : ""));
        text.AppendLine($"{"category",-30} {"programs",8} {"failed",6} {"files",6} {"user-err",8}  GEMS diagnostics");
        foreach (var group in outcomes.Values.GroupBy(o => o.Category).OrderByDescending(g => g.Count()))
        {
            var ids = group.SelectMany(o => o.GemsIds).GroupBy(id => id).OrderBy(g => g.Key).Select(g => $"{g.Key}x{g.Count()}");
            text.AppendLine($"{group.Key,-30} {group.Count(),8} {group.Count(o => o.Problems.Count > 0),6} {group.Sum(o => o.GeneratedFiles),6} {group.Count(o => o.HadUserErrors),8}  {string.Join(" ", ids)}");
        }

        return text.ToString();
    }

    private static int ReadSeed()
    {
        var text = Environment.GetEnvironmentVariable("GEMS_FUZZ_SEED");
        if (string.IsNullOrEmpty(text))
        {
            return DefaultSeed;
        }

        return text == "random" ? Random.Shared.Next() : int.Parse(text, CultureInfo.InvariantCulture);
    }

    private static int ReadInt(string variable, int fallback)
        => Environment.GetEnvironmentVariable(variable) is { Length: > 0 } text ? int.Parse(text, CultureInfo.InvariantCulture) : fallback;
}
