using System;
using System.Collections.Concurrent;
using System.Collections.Generic;
using System.Diagnostics;
using System.Globalization;
using System.Linq;
using System.Threading;
using GemsInjector.Operators;
using Microsoft.Extensions.Logging.Abstractions;
using TorchSharp;
using Xunit;
using Xunit.Abstractions;

namespace GemsInjector.Tests;

/// <summary>
/// Eight threads enable (with differing include lists), open and close nested Use scopes, disable, pass a bad
/// configuration and call operators, all at once. Seeded (<c>GEMS_TEST_SEED</c> replays a run's per-thread action
/// sequences; thread interleaving is up to the scheduler) and bounded in time and in actions per thread.
/// </summary>
[Collection(GemsStateCollection.Name)]
public sealed class ConcurrencyTests : IDisposable
{
    private const string SeedVariable = "GEMS_TEST_SEED";
    private const int DefaultSeed = 20261128;
    private const int Threads = 8;
    private const int MaxActionsPerThread = 2500;
    private static readonly TimeSpan MaxDuration = TimeSpan.FromSeconds(3);

    /// <summary>The include lists the threads ask for; null is "every operator".</summary>
    private static readonly string[]?[] Configurations = [null, ["add"], ["add", "mul"], ["silu", "rms_norm", "softmax"], ["mm", "bmm", "addmm", "add"]];

    private readonly ITestOutputHelper _output;
    private readonly EnvironmentScope _environment = new EnvironmentScope()
        .Set("GEMS_INCLUDE", null).Set("GEMS_EXCLUDE", null).Set("GEMS_RECORD", null).Set("GEMS_RECORD_ONCE", null).Set("GEMS_DEVICE", "cpu");

    public ConcurrencyTests(ITestOutputHelper output)
    {
        _output = output;
        Gems.Disable();
    }

    public void Dispose()
    {
        Gems.Disable();
        _environment.Dispose();
    }

    [Fact]
    public void Enable_use_disable_and_calls_on_eight_threads_never_tear_the_table_or_lose_the_restore()
    {
        var seed = Seed();
        _output.WriteLine($"seed {seed} (replay with {SeedVariable}={seed}); {Threads} threads, at most {MaxActionsPerThread} actions each and {MaxDuration.TotalSeconds} s");
        var defaults = TableState.Snapshot();
        var allowed = Configurations.Select(ExpectedOperators).Append([]).Select(names => string.Join(",", names)).ToHashSet(StringComparer.Ordinal);
        var counts = new Counts();
        var failures = new ConcurrentQueue<string>();
        var seen = new ConcurrentDictionary<string, bool>(StringComparer.Ordinal);
        var clock = Stopwatch.StartNew();
        using var start = new Barrier(Threads);

        var threads = Enumerable.Range(0, Threads).Select(index => new Thread(() =>
        {
            try
            {
                start.SignalAndWait();
                RunThread(new Random(seed * 31 + index), clock, counts, allowed, seen, failures);
            }
            catch (Exception ex)
            {
                failures.Enqueue($"thread {index}: {ex}");
            }
        })).ToArray();
        foreach (var thread in threads)
        {
            thread.Start();
        }

        foreach (var thread in threads)
        {
            Assert.True(thread.Join(TimeSpan.FromSeconds(60)), "a thread did not finish: deadlock?");
        }

        var elapsed = clock.Elapsed;
        Gems.Disable();

        _output.WriteLine(
            $"checked in {elapsed.TotalSeconds:F2} s: {counts.Actions} actions = {counts.Enables} enables + {counts.Uses} use scopes ({counts.NestedUses} nested) "
            + $"+ {counts.Disables} disables + {counts.ConfigurationErrors} bad configurations (each a GemsConfigurationException, as documented) + {counts.CallRounds} call rounds ({counts.Calls} operator calls, each result checked)");
        _output.WriteLine(
            $"{counts.Observations} observations of table + status taken at one instant: the overridden set is one of the {allowed.Count} requested sets "
            + $"(seen {seen.Count} of them), the status names the same operators and state; {counts.KernelChecks} lock-free reads of single kernels, each the default or a GemsInjector kernel");
        _output.WriteLine("after all threads and Disable: every operator holds its TorchSharp default kernel, status Disabled");
        Assert.True(failures.IsEmpty, string.Join(Environment.NewLine, failures.Take(10)));
        Assert.True(counts.Enables > 0 && counts.Uses > 0 && counts.Disables > 0 && counts.Calls > 0, "every kind of action ran");
        TableState.AssertUnchanged(defaults);
        Assert.All(OperatorTable.All, op => Assert.Same(op.Default, op.Current));
        Assert.Equal(GemsState.Disabled, Gems.Status.State);
        TableState.AssertStatusAgreesWithTable();
    }

    [Fact]
    public void Nested_use_scopes_restore_exactly_what_each_found()
    {
        var seed = Seed();
        var random = new Random(seed);
        const int Rounds = 40;
        var scopes = 0;
        for (var round = 0; round < Rounds; round++)
        {
            if (random.Next(2) == 0)
            {
                Gems.Enable(Options(random));
            }
            else
            {
                Gems.Disable();
            }

            var depth = 1 + random.Next(4);
            var stack = new Stack<(IDisposable Scope, KernelRegistration[] Table, GemsStatus Status)>();
            for (var level = 0; level < depth; level++)
            {
                var table = TableState.Snapshot();
                var status = Gems.Status;
                stack.Push((Gems.Use(Options(random)), table, status));
                scopes++;
            }

            while (stack.Count > 0)
            {
                var (scope, table, status) = stack.Pop();
                scope.Dispose();
                TableState.AssertUnchanged(table);
                Assert.Same(status, Gems.Status);
                TableState.AssertStatusAgreesWithTable();
            }
        }

        Gems.Disable();
        Assert.All(OperatorTable.All, op => Assert.Same(op.Default, op.Current));
        _output.WriteLine($"seed {seed}: {Rounds} rounds, {scopes} Use scopes nested up to 4 deep, each disposal restored the exact kernels and status object");
    }

    private static void RunThread(Random random, Stopwatch clock, Counts counts, HashSet<string> allowed, ConcurrentDictionary<string, bool> seen, ConcurrentQueue<string> failures)
    {
        using var scope = torch.NewDisposeScope();
        var x = torch.tensor(new[] { 1f, -2f, 3.5f, 0.25f });
        var expectedSum = new[] { 3f, -6f, 10.5f, 0.75f };
        var expectedProduct = new[] { 1f, 4f, 12.25f, 0.0625f };
        var expectedSilu = x.data<float>().ToArray().Select(v => (float)(v / (1 + Math.Exp(-v)))).ToArray();
        for (var action = 0; action < MaxActionsPerThread && clock.Elapsed < MaxDuration; action++)
        {
            Interlocked.Increment(ref counts.Actions);
            var choice = random.Next(100);
            if (choice < 20)
            {
                Gems.Enable(Options(random));
                Interlocked.Increment(ref counts.Enables);
            }
            else if (choice < 40)
            {
                using (Gems.Use(Options(random)))
                {
                    Interlocked.Increment(ref counts.Uses);
                    Observe(counts, allowed, seen, failures);
                    if (random.Next(3) == 0)
                    {
                        using (Gems.Use(Options(random)))
                        {
                            Interlocked.Increment(ref counts.Uses);
                            Interlocked.Increment(ref counts.NestedUses);
                            Thread.Yield();
                        }
                    }
                }
            }
            else if (choice < 50)
            {
                Gems.Disable();
                Interlocked.Increment(ref counts.Disables);
            }
            else if (choice < 53)
            {
                try
                {
                    Gems.Enable(new GemsOptions { Include = ["add", "slu"], Logger = NullLogger.Instance });
                    failures.Enqueue("an unknown operator was accepted");
                }
                catch (GemsConfigurationException)
                {
                    Interlocked.Increment(ref counts.ConfigurationErrors);
                }
            }
            else
            {
                using var inner = torch.NewDisposeScope();
                CheckClose("add", expectedSum, Ops.Add(x, x, alpha: 2).data<float>().ToArray(), failures);
                CheckClose("mul", expectedProduct, Ops.Mul(x, x).data<float>().ToArray(), failures);
                CheckClose("silu", expectedSilu, Ops.Silu(x).data<float>().ToArray(), failures);
                Interlocked.Increment(ref counts.CallRounds);
                Interlocked.Add(ref counts.Calls, 3);
                foreach (var op in new Operator[] { OperatorTable.Add, OperatorTable.Mul, OperatorTable.Silu })
                {
                    var current = op.Current;
                    if (!ReferenceEquals(current, op.Default) && !current.RegisteredAt.StartsWith("GemsInjector.Kernels.", StringComparison.Ordinal))
                    {
                        failures.Enqueue($"{op.Name} holds {current.RegisteredAt}");
                    }

                    Interlocked.Increment(ref counts.KernelChecks);
                }
            }

            Observe(counts, allowed, seen, failures);
        }
    }

    private static void Observe(Counts counts, HashSet<string> allowed, ConcurrentDictionary<string, bool> seen, ConcurrentQueue<string> failures)
    {
        var state = Gems.CaptureState();
        var overridden = string.Join(",", TableState.OverriddenNames(state.Table));
        var reported = string.Join(",", state.Status.OverriddenOperators.Order(StringComparer.Ordinal));
        if (!allowed.Contains(overridden))
        {
            failures.Enqueue($"torn table: [{overridden}] is no requested configuration");
        }

        if (overridden != reported)
        {
            failures.Enqueue($"status names [{reported}] while the table overrides [{overridden}]");
        }

        if ((state.Enabled is not null) != (state.Status.State == GemsState.Enabled))
        {
            failures.Enqueue($"status {state.Status.State} while enabled is {state.Enabled is not null}");
        }

        seen.TryAdd(overridden, true);
        Interlocked.Increment(ref counts.Observations);
    }

    private static void CheckClose(string name, float[] expected, float[] actual, ConcurrentQueue<string> failures)
    {
        for (var i = 0; i < expected.Length; i++)
        {
            if (!(Math.Abs(expected[i] - actual[i]) <= 1e-5f * (1 + Math.Abs(expected[i]))))
            {
                failures.Enqueue($"{name}[{i}] = {actual[i]}, expected {expected[i]}");
                return;
            }
        }
    }

    private static GemsOptions Options(Random random) =>
        new() { Include = Configurations[random.Next(Configurations.Length)], Logger = NullLogger.Instance };

    private static string[] ExpectedOperators(string[]? include) =>
        include is null ? TableState.CpuKernelOperators() : include.Order(StringComparer.Ordinal).ToArray();

    private static int Seed() =>
        int.TryParse(Environment.GetEnvironmentVariable(SeedVariable), NumberStyles.Integer, CultureInfo.InvariantCulture, out var seed) ? seed : DefaultSeed;

    private sealed class Counts
    {
        public int Actions;
        public int Enables;
        public int Uses;
        public int NestedUses;
        public int Disables;
        public int ConfigurationErrors;
        public int CallRounds;
        public int Calls;
        public int KernelChecks;
        public int Observations;
    }
}
