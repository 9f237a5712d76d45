using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Globalization;
using System.IO;
using System.Linq;
using System.Text;
using GemsInjector.Kernels.Ilgpu;
using ILGPU;
using ILGPU.Runtime;

namespace GemsInjector.GpuHarness;

/// <summary>
/// <c>--decode-trace</c>: where the time of the float32 batch-1 decode goes. The bench row
/// <c>sdpa float32 1x32/8x1x4096x128</c> runs <see cref="AttentionDecodeWideKernels.DecodeStreamF32Lean"/> over 32 chunks
/// of 128 keys (256 groups, the in-kernel merge); here the same kernel with its groups' timelines stamped
/// (<see cref="AttentionDecodeWideKernels.DecodeStreamF32LeanTraced"/>: the GPU's nanosecond timer at entry, first K
/// tile landed, scores done, first V tile landed, values done, copies done, sums in shared memory, partial written,
/// fence done, ticket taken, the merging groups' chunk weights ready, end, and the SM) runs launch after launch over
/// rotating inputs, as the bench times it. Both kernels' outputs are checked against a float64 reference first.
/// </summary>
internal static class DecodeTraceRun
{
    private const int Heads = 32;
    private const int KvHeads = 8;
    private const int Keys = 4096;
    private const int D = AttentionDecodeWideKernels.LeanD;

    /// <summary>The chunk the decode plan picks for this shape on an H200 (<c>IlgpuKernels.StreamDecodeChunk</c>).</summary>
    private const int Chunk = 128;

    /// <summary>Input sets launched in turn, so that no launch finds its K and V in L2 (4 × 33.6 MB against a 50 MB L2).</summary>
    private const int Sets = 4;

    /// <summary>Every output element within atol + rtol·|reference| of float64 (NaN never passes, <see cref="Checker"/>).</summary>
    private const double Rtol = 1e-4;

    private const double Atol = 1e-5;

    private static readonly string[] PointNames =
    [
        "entry", "first K tile", "scores done", "first V tile", "values done", "copies done", "sums in shared memory",
        "partial written", "published (fence)", "ticket taken", "merge weights (merging groups)", "end",
    ];

    public static int Run(Options opt)
    {
        if (opt.Device != IlgpuDeviceKind.Cuda)
        {
            Console.Error.WriteLine("error: --decode-trace reads the GPU's timer: it needs --device cuda");
            return 2;
        }

        using var dev = IlgpuDevice.Create(opt.Device);
        var acc = dev.Accelerator;
        int splits = Keys / Chunk;
        int groups = splits * KvHeads;
        int launches = opt.DecodeTraceLaunches;
        var rng = new Random(opt.Seed);
        var q = RandomFloats(rng, Heads * D, -1.5f, 1.5f);
        var kSets = Enumerable.Range(0, Sets).Select(_ => RandomFloats(rng, KvHeads * Keys * D, -1.5f, 1.5f)).ToArray();
        var vSets = Enumerable.Range(0, Sets).Select(_ => RandomFloats(rng, KvHeads * Keys * D, -1f, 1f)).ToArray();
        using var qBuffer = acc.Allocate1D(q);
        var kBuffers = kSets.Select(acc.Allocate1D).ToArray();
        var vBuffers = vSets.Select(acc.Allocate1D).ToArray();
        using var output = acc.Allocate1D<float>(Heads * D);
        using var partO = acc.Allocate1D<float>((long)Heads * splits * D);
        using var partML = acc.Allocate1D<float>(2L * Heads * splits);
        using var tickets = acc.Allocate1D<int>(KvHeads);
        using var mask = acc.Allocate1D<float>(1);
        using var stamps = acc.Allocate1D<long>((long)launches * groups * DecodeTracePoint.Count);
        tickets.MemSetToZero();
        stamps.MemSetToZero();
        try
        {
            var shape = new AttentionShape { Heads = Heads, KvHeads = KvHeads, Lq = 1, Lk = Keys, D = D, Scale = 1f / MathF.Sqrt(D) };
            var plans = Enumerable.Range(0, Sets).Select(set => new DecodePlan
            {
                Chunk = Chunk,
                KeyEnd = Keys,
                KPointer = TensorCoreLaunch.DeviceAddress(kBuffers[set].View.BaseView),
                VPointer = TensorCoreLaunch.DeviceAddress(vBuffers[set].View.BaseView),
                TileKeys = AttentionDecodeWideKernels.LeanTileKeys,
                Combine = 1,
            }).ToArray();
            var bounds = new KernelSpecialization(AttentionDecodeWideKernels.Warps * 32, 4);
            Action<KernelConfig, ArrayView<Float4>, ArrayView<Float4>, ArrayView<Float4>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<int>, AttentionShape, DecodePlan>? plainSlot = null;
            Action<KernelConfig, ArrayView<Float4>, ArrayView<Float4>, ArrayView<Float4>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<int>, AttentionShape, DecodePlan, ArrayView<long>>? tracedSlot = null;
            var plain = dev.Load(ref plainSlot, nameof(AttentionDecodeWideKernels.DecodeStreamF32Lean),
                l => l.LoadStreamKernel<ArrayView<Float4>, ArrayView<Float4>, ArrayView<Float4>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<int>, AttentionShape, DecodePlan>(
                    AttentionDecodeWideKernels.DecodeStreamF32Lean, bounds));
            var traced = dev.Load(ref tracedSlot, nameof(AttentionDecodeWideKernels.DecodeStreamF32LeanTraced),
                l => l.LoadStreamKernel<ArrayView<Float4>, ArrayView<Float4>, ArrayView<Float4>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<int>, AttentionShape, DecodePlan, ArrayView<long>>(
                    AttentionDecodeWideKernels.DecodeStreamF32LeanTraced, bounds));
            var config = new KernelConfig(new Index3D(splits, KvHeads, 1), new Index3D(AttentionDecodeWideKernels.Warps * 32, 1, 1),
                SharedMemoryConfig.RequestDynamic<float>(AttentionDecodeWideKernels.StreamSharedFloats));
            long stampsPerLaunch = (long)groups * DecodeTracePoint.Count;

            void LaunchPlain(int set) =>
                plain(config, qBuffer.View.BaseView.Cast<Float4>(), kBuffers[set].View.BaseView.Cast<Float4>(), vBuffers[set].View.BaseView.Cast<Float4>(), mask.View,
                    partO.View, partML.View, output.View, tickets.View, shape, plans[set]);

            void LaunchTraced(int set, int launch) =>
                traced(config, qBuffer.View.BaseView.Cast<Float4>(), kBuffers[set].View.BaseView.Cast<Float4>(), vBuffers[set].View.BaseView.Cast<Float4>(), mask.View,
                    partO.View, partML.View, output.View, tickets.View, shape, plans[set], stamps.View.SubView(launch * stampsPerLaunch, stampsPerLaunch));

            var expected = RefMath.Attention(q, kSets[0], vSets[0], 1, Heads, KvHeads, 1, Keys, D, causal: false);
            output.MemSet(0xff);
            LaunchPlain(0);
            acc.Synchronize();
            var plainCheck = Checker.Values("plain", output.GetAsArray1D(), expected, DType.F32, Rtol, Atol);
            output.MemSet(0xff);
            LaunchTraced(0, 0);
            acc.Synchronize();
            var tracedCheck = Checker.Values("traced", output.GetAsArray1D(), expected, DType.F32, Rtol, Atol);
            Console.WriteLine($"decode-trace: {dev}; sdpa float32 1x32/8x1x4096x128, chunks of {Chunk} ({groups} groups), seed {opt.Seed}");
            Console.WriteLine($"check against float64: plain {Verdict(plainCheck)}, traced {Verdict(tracedCheck)}");
            if (!plainCheck.Pass || !tracedCheck.Pass)
            {
                return 1;
            }

            for (int i = 0; i < 50; i++)
            {
                LaunchPlain(i % Sets);
            }

            acc.Synchronize();
            double plainUs = TimeLaunches(acc, launches, i => LaunchPlain(i % Sets));
            double tracedUs = TimeLaunches(acc, launches, i => LaunchTraced(i % Sets, i));
            double plainAgainUs = TimeLaunches(acc, launches, i => LaunchPlain(i % Sets));
            var all = stamps.GetAsArray1D();
            Console.WriteLine($"wall time per launch, {launches} back to back: plain {plainUs:F2} µs, traced {tracedUs:F2} µs, plain again {plainAgainUs:F2} µs");
            Console.Write(Summarize(all, launches, groups, splits));
            if (opt.Csv is { } csvPath)
            {
                WriteStamps(csvPath, all, Math.Min(launches, 20), groups, splits);
                Console.WriteLine($"stamps of the first {Math.Min(launches, 20)} launches, relative to each launch's first entry (ns): {csvPath}");
            }

            return 0;
        }
        finally
        {
            foreach (var buffer in kBuffers.Concat(vBuffers))
            {
                buffer.Dispose();
            }
        }
    }

    /// <summary>Mean wall time per launch of <paramref name="launches"/> launches queued back to back (the GPU, not the host, sets the pace).</summary>
    private static double TimeLaunches(Accelerator acc, int launches, Action<int> launch)
    {
        acc.Synchronize();
        var watch = Stopwatch.StartNew();
        for (int i = 0; i < launches; i++)
        {
            launch(i);
        }

        acc.Synchronize();
        return watch.Elapsed.TotalMicroseconds / launches;
    }

    /// <summary>
    /// Medians over the launches (the first left out: it follows the untimed gap after the plain launches) of: each
    /// point's spread over the groups relative to the launch's first entry; the launch's span; the idle time from one
    /// launch's last group to the next launch's first; the merge tail; and the timer's resolution as seen in the stamps.
    /// </summary>
    internal static string Summarize(long[] all, int launches, int groups, int splits)
    {
        var text = new StringBuilder();
        int points = PointNames.Length;
        var pointStats = new List<double>[points, 4];
        for (int p = 0; p < points; p++)
        {
            for (int s = 0; s < 4; s++)
            {
                pointStats[p, s] = [];
            }
        }

        var spans = new List<double>();
        var gaps = new List<double>();
        var tails = new List<double>();
        var merges = new List<double>();
        var mergeWeights = new List<double>();
        var mergeSums = new List<double>();
        var entrySpreads = new List<double>();
        long smallestStep = long.MaxValue;
        int equalSteps = 0;
        int steps = 0;
        for (int launch = 1; launch < launches; launch++)
        {
            long Stamp(int g, int point) => all[(((long)launch * groups) + g) * DecodeTracePoint.Count + point];
            long first = Enumerable.Range(0, groups).Min(g => Stamp(g, DecodeTracePoint.Entry));
            long last = Enumerable.Range(0, groups).Max(g => Stamp(g, DecodeTracePoint.End));
            spans.Add((last - first) / 1000.0);
            entrySpreads.Add((Enumerable.Range(0, groups).Max(g => Stamp(g, DecodeTracePoint.Entry)) - first) / 1000.0);
            long lastPartial = Enumerable.Range(0, groups).Max(g => Stamp(g, DecodeTracePoint.PartialWritten));
            tails.Add((last - lastPartial) / 1000.0);
            for (int kv = 0; kv < groups / splits; kv++)
            {
                // Grid.X is the chunk, Grid.Y the kv head: the group of this kv head that ends last took the last ticket and merged.
                int merger = Enumerable.Range(kv * splits, splits).MaxBy(g => Stamp(g, DecodeTracePoint.End));
                merges.Add((Stamp(merger, DecodeTracePoint.End) - Stamp(merger, DecodeTracePoint.PartialWritten)) / 1000.0);
                mergeWeights.Add((Stamp(merger, DecodeTracePoint.MergeWeights) - Stamp(merger, DecodeTracePoint.TicketTaken)) / 1000.0);
                mergeSums.Add((Stamp(merger, DecodeTracePoint.End) - Stamp(merger, DecodeTracePoint.MergeWeights)) / 1000.0);
            }

            if (launch + 1 < launches)
            {
                long nextFirst = Enumerable.Range(0, groups).Min(g => all[((((long)launch + 1) * groups) + g) * DecodeTracePoint.Count]);
                gaps.Add((nextFirst - last) / 1000.0);
            }

            for (int p = 0; p < points; p++)
            {
                // Only the merging groups stamp the merge's weights; the others leave 0 there.
                var offsets = Enumerable.Range(0, groups).Where(g => p != DecodeTracePoint.MergeWeights || Stamp(g, p) != 0)
                    .Select(g => (Stamp(g, p) - first) / 1000.0).Order().ToArray();
                pointStats[p, 0].Add(Percentile(offsets, 0.10));
                pointStats[p, 1].Add(Percentile(offsets, 0.50));
                pointStats[p, 2].Add(Percentile(offsets, 0.90));
                pointStats[p, 3].Add(offsets[^1]);
            }

            for (int g = 0; g < groups; g++)
            {
                for (int p = 1; p < points; p++)
                {
                    if (p == DecodeTracePoint.MergeWeights || p - 1 == DecodeTracePoint.MergeWeights)
                    {
                        continue;
                    }

                    long step = Stamp(g, p) - Stamp(g, p - 1);
                    steps++;
                    if (step == 0)
                    {
                        equalSteps++;
                    }
                    else if (step > 0 && step < smallestStep)
                    {
                        smallestStep = step;
                    }
                }
            }
        }

        text.AppendLine($"medians over launches 2..{launches} (µs from the launch's first group entry):");
        text.AppendLine("| point | p10 of groups | median | p90 | last group |");
        text.AppendLine("|---|---|---|---|---|");
        for (int p = 0; p < points; p++)
        {
            text.AppendLine(FormattableString.Invariant(
                $"| {PointNames[p]} | {Median(pointStats[p, 0]):F2} | {Median(pointStats[p, 1]):F2} | {Median(pointStats[p, 2]):F2} | {Median(pointStats[p, 3]):F2} |"));
        }

        text.AppendLine(FormattableString.Invariant($"launch span (first entry to last end): {Median(spans):F2} µs (p10 {Percentile(spans.Order().ToArray(), 0.1):F2}, p90 {Percentile(spans.Order().ToArray(), 0.9):F2})"));
        text.AppendLine(FormattableString.Invariant($"entries spread over: {Median(entrySpreads):F2} µs; idle from a launch's last end to the next launch's first entry: {Median(gaps):F2} µs"));
        text.AppendLine(FormattableString.Invariant($"merge tail (last partial written to last end): {Median(tails):F2} µs; the merging groups' own merge (partial written to end): median {Median(merges):F2} µs"));
        text.AppendLine(FormattableString.Invariant($"in the merging groups: ticket taken to chunk weights ready {Median(mergeWeights):F2} µs, weights to end (the partials' sum and the output) {Median(mergeSums):F2} µs"));
        text.AppendLine($"timer: smallest nonzero step between a group's stamps {(smallestStep == long.MaxValue ? "none" : smallestStep + " ns")}; {equalSteps} of {steps} steps read no change");
        int smCount = Enumerable.Range(0, groups).Select(g => all[(((long)1 * groups) + g) * DecodeTracePoint.Count + DecodeTracePoint.Multiprocessor]).Distinct().Count();
        text.AppendLine($"launch 2: {groups} groups on {smCount} SMs");
        return text.ToString();
    }

    private static void WriteStamps(string path, long[] all, int launches, int groups, int splits)
    {
        using var writer = new StreamWriter(path);
        writer.WriteLine("launch,group,chunk,kv_head,sm," + string.Join(",", PointNames.Select(n => n.Replace(' ', '_'))));
        for (int launch = 0; launch < launches; launch++)
        {
            long first = Enumerable.Range(0, groups).Min(g => all[(((long)launch * groups) + g) * DecodeTracePoint.Count]);
            for (int g = 0; g < groups; g++)
            {
                long at = (((long)launch * groups) + g) * DecodeTracePoint.Count;
                var times = Enumerable.Range(0, PointNames.Length).Select(p => (all[at + p] - first).ToString(CultureInfo.InvariantCulture));
                writer.WriteLine($"{launch},{g},{g % splits},{g / splits},{all[at + DecodeTracePoint.Multiprocessor]},{string.Join(",", times)}");
            }
        }
    }

    private static float[] RandomFloats(Random rng, int count, float low, float high)
    {
        var values = new float[count];
        for (int i = 0; i < count; i++)
        {
            values[i] = low + ((high - low) * rng.NextSingle());
        }

        return values;
    }

    private static string Verdict(CheckResult check) =>
        check.Pass ? FormattableString.Invariant($"PASS (max abs {check.MaxAbs:E2})") : $"FAIL ({check.Detail})";

    private static double Median(List<double> values) => Percentile(values.Order().ToArray(), 0.5);

    private static double Percentile(double[] sorted, double fraction) =>
        sorted.Length == 0 ? double.NaN : sorted[(int)Math.Round(fraction * (sorted.Length - 1))];
}
