using System;
using System.Collections.Generic;
using System.Linq;
using GemsInjector.Kernels.Ilgpu;
using Xunit;

namespace GemsInjector.Kernels.Ilgpu.Tests;

/// <summary>
/// The warp-specialized prefill's synchronization (<see cref="AttentionWgmmaKernels.WsBody{TOps}"/>), which the CPU
/// simulator cannot run as written (its group threads replace the mbarriers by group barriers): a model of the kernel's
/// producer threads and consumer warpgroups, step for step in the body's order and with the kernel's own stage and parity
/// functions, run under many random interleavings against a model of the hardware (an mbarrier completes a phase when
/// its pending count reaches zero and <c>try_wait.parity p</c> passes while the current phase's parity differs from p; a
/// named barrier completes a generation at 256 threads). Every run must finish (no deadlock), a consumer must see the
/// tile it expects fully landed in its stage, the producer must never write a stage a consumer still reads, no named
/// barrier may get two arrivals of one warpgroup in one generation, and none may be left half-arrived.
/// </summary>
public sealed class AttentionWgmmaWsProtocolTests
{
    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    public void ProtocolHoldsUnderRandomInterleavings(int pingPong)
    {
        for (int tiles = 0; tiles <= 3 * AttentionWgmmaKernels.WsStages + 2; tiles++)
        {
            for (int seed = 0; seed < 200; seed++)
            {
                new Model(tiles, pingPong != 0, new Random((tiles * 1000) + seed)).Run();
            }
        }
    }

    /// <summary>The model is not vacuous: waiting for the wrong parity on "full" is caught (a consumer reads a stage before its tile is there).</summary>
    [Fact]
    public void WrongFullParityIsCaught()
    {
        var failures = 0;
        for (int seed = 0; seed < 50; seed++)
        {
            try
            {
                new Model(2 * AttentionWgmmaKernels.WsStages, false, new Random(seed)) { FlipFullParity = true }.Run();
            }
            catch (ProtocolException)
            {
                failures++;
            }
        }

        Assert.Equal(50, failures);
    }

    private sealed class ProtocolException(string message) : Exception(message);

    /// <summary>One step of an agent: a wait (passes once <paramref name="Ready"/> holds, no effect) or an action (<paramref name="Effect"/>, always ready).</summary>
    private readonly record struct Step(Func<bool>? Ready, Action? Effect);

    /// <summary>An mbarrier: phases completed so far, arrivals still pending in the current phase.</summary>
    private sealed class MBarrier(int count)
    {
        private readonly int count = count;
        private int pending = count;

        public int Phase { get; private set; }

        public void Arrive()
        {
            if (--pending == 0)
            {
                Phase++;
                pending = count;
            }
        }

        // The current (incomplete) phase has parity Phase & 1; waiting for the other parity means the preceding phase.
        public bool TryWaitParity(int parity) => (Phase & 1) != parity;
    }

    /// <summary>A named barrier of 256 threads: the two consumer warpgroups, 128 each.</summary>
    private sealed class NamedBarrier
    {
        public int Generation { get; private set; }

        public readonly bool[] Arrived = new bool[2];

        public void Arrive(int warpgroup)
        {
            if (Arrived[warpgroup])
            {
                throw new ProtocolException($"warpgroup {warpgroup} arrived twice in generation {Generation}");
            }

            Arrived[warpgroup] = true;
            if (Arrived[0] && Arrived[1])
            {
                Arrived[0] = Arrived[1] = false;
                Generation++;
            }
        }
    }

    private sealed class Model
    {
        private readonly int tiles;
        private readonly bool pingPong;
        private readonly Random random;
        private readonly MBarrier[] full;
        private readonly MBarrier[] empty;
        private readonly NamedBarrier[] order = [new(), new()];

        // Per stage: the tile it holds, and whether its copies have landed.
        private readonly int[] content;
        private readonly bool[] landed;

        // Per consumer warpgroup: the stages it may still read (from its "full" wait to its "empty" arrival).
        private readonly HashSet<int>[] reading = [[], []];

        public Model(int tiles, bool pingPong, Random random)
        {
            this.tiles = tiles;
            this.pingPong = pingPong;
            this.random = random;
            int stages = AttentionWgmmaKernels.WsStages;

            // A producer warp's 32 lanes wait, copy and arrive together: one arrival stands for them.
            full = Enumerable.Range(0, stages).Select(_ => new MBarrier(1)).ToArray();

            // Eight consumer warps arrive in the kernel; a warpgroup's four do so only after its wgmma wait, so one
            // arrival per warpgroup stands for them.
            empty = Enumerable.Range(0, stages).Select(_ => new MBarrier(2)).ToArray();
            content = Enumerable.Repeat(-1, stages).ToArray();
            landed = new bool[stages];
        }

        public bool FlipFullParity { get; init; }

        public void Run()
        {
            var agents = Enumerable.Range(0, AttentionWgmmaKernels.WsProducerWarps).Select(Producer)
                .Concat(Enumerable.Range(0, 2).Select(Consumer))
                .Select(a => a.GetEnumerator())
                .Where(e => e.MoveNext())
                .ToList();
            while (agents.Count > 0)
            {
                // Any agent whose next step can run; none: deadlock. One of them, at random, runs that step.
                var ready = agents.Where(a => a.Current.Ready is null || a.Current.Ready()).ToList();
                if (ready.Count == 0)
                {
                    throw new ProtocolException($"deadlock with {agents.Count} agents left (tiles {tiles}, ping-pong {pingPong})");
                }

                var agent = ready[random.Next(ready.Count)];
                agent.Current.Effect?.Invoke();
                if (!agent.MoveNext())
                {
                    agents.Remove(agent);
                }
            }

            foreach (var barrier in order)
            {
                if (barrier.Arrived[0] || barrier.Arrived[1])
                {
                    throw new ProtocolException("a named barrier is left half-arrived");
                }
            }
        }

        private static Step Act(Action effect) => new(null, effect);

        private static Step Wait(Func<bool> ready) => new(ready, null);

        private IEnumerable<Step> Producer(int warp)
        {
            for (int tile = 0; tile < tiles; tile++)
            {
                if (AttentionWgmmaKernels.WsProducerWarp(tile) != warp)
                {
                    continue;
                }

                int t = tile;
                int stage = AttentionWgmmaKernels.WsStage(t);
                yield return Wait(() => empty[stage].TryWaitParity(AttentionWgmmaKernels.WsEmptyParity(t)));
                yield return Act(() =>
                {
                    for (int w = 0; w < 2; w++)
                    {
                        if (reading[w].Contains(stage))
                        {
                            throw new ProtocolException($"producer warp {warp} overwrites stage {stage} (tile {t}) while warpgroup {w} reads it");
                        }
                    }

                    content[stage] = t;
                    landed[stage] = false;
                });

                // wait_group 0: landed; fence; arrive.
                yield return Act(() =>
                {
                    landed[stage] = true;
                    full[stage].Arrive();
                });
            }
        }

        private IEnumerable<Step> Consumer(int warpgroup)
        {
            int own = warpgroup;
            int other = 1 - warpgroup;
            if (pingPong && warpgroup == 1 && tiles > 0)
            {
                yield return Act(() => order[other].Arrive(warpgroup));
            }

            for (int tile = 0; tile < tiles; tile++)
            {
                int t = tile;
                int stage = AttentionWgmmaKernels.WsStage(t);
                int parity = AttentionWgmmaKernels.WsFullParity(t) ^ (FlipFullParity ? 1 : 0);
                yield return Wait(() => full[stage].TryWaitParity(parity));
                yield return Act(() =>
                {
                    if (content[stage] != t || !landed[stage])
                    {
                        throw new ProtocolException($"warpgroup {warpgroup} reads stage {stage} for tile {t}: it holds tile {content[stage]}, landed {landed[stage]}");
                    }

                    reading[warpgroup].Add(stage);
                });
                if (pingPong)
                {
                    foreach (var step in Sync(own, warpgroup))
                    {
                        yield return step;
                    }

                    // P·V of tile t − 1, S of tile t, then the other's turn.
                    yield return Act(() => order[other].Arrive(warpgroup));
                }

                if (t > 0)
                {
                    // The wgmma wait retired P·V of tile t − 1.
                    int previous = AttentionWgmmaKernels.WsStage(t - 1);
                    yield return Act(() =>
                    {
                        reading[warpgroup].Remove(previous);
                        empty[previous].Arrive();
                    });
                }
            }

            if (pingPong && tiles > 0)
            {
                foreach (var step in Sync(own, warpgroup))
                {
                    yield return step;
                }

                if (warpgroup == 0)
                {
                    yield return Act(() => order[other].Arrive(warpgroup));
                }
            }
        }

        /// <summary>bar.sync on a named barrier: arrive, then wait for the generation it arrived in to complete.</summary>
        private IEnumerable<Step> Sync(int barrier, int warpgroup)
        {
            int generation = -1;
            yield return Act(() =>
            {
                generation = order[barrier].Generation;
                order[barrier].Arrive(warpgroup);
            });
            yield return Wait(() => order[barrier].Generation > generation);
        }
    }
}
