using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Globalization;
using System.Linq;
using GemsInjector.Kernels.Ilgpu;
using ILGPU;
using ILGPU.Runtime;

namespace GemsInjector.GpuHarness;

/// <summary>Runs the accuracy, bench and startup suites over the catalog's cases.</summary>
internal sealed class Runner : IDisposable
{
    private const double Atol = 1e-4;
    private const long RotateBelowBytes = 150L << 20;
    private const long RotateTargetBytes = 200L << 20;
    private const int HostProbeCalls = 8;
    private const int MaxSets = 2048;

    private readonly Options opt;
    private readonly IlgpuDevice dev;
    private readonly Binder binder;
    private readonly CsvSink csv;
    private readonly DeviceTimer timer;
    private MemoryBuffer1D<float, Stride1D.Dense>? fillerA, fillerB;
    private double tInputs, tLaunch, tReference, tCompare;
    private double fillerMs;

    private readonly DateTime processStart;

    public Runner(Options opt, IlgpuDevice dev, CsvSink csv, DateTime processStart)
    {
        this.processStart = processStart;
        this.opt = opt;
        this.dev = dev;
        this.csv = csv;
        binder = new Binder(dev.Kernels);
        timer = DeviceTimer.For(dev.Accelerator);
    }

    public int Passed { get; private set; }

    public int Failed { get; private set; }

    public int Skipped { get; private set; }

    public List<string> FailedKeys { get; } = new();

    public List<string> SkipReasons { get; } = new();

    private bool IsCuda => dev.Kind == IlgpuDeviceKind.Cuda;

    // ---------------------------------------------------------------- accuracy

    public void Accuracy(IReadOnlyList<OpCase> cases)
    {
        Console.WriteLine($"== accuracy: {cases.Count} cases, seed {opt.Seed}; rtol f32 1.3e-6 / f16 1e-3 / bf16 1.6e-2 (x per-op factor), atol 1e-4 (x reduced length)");
        foreach (var c in cases)
        {
            if (!Prepare(c, "accuracy", out var binding, out var types))
            {
                continue;
            }

            var sw = Stopwatch.StartNew();
            try
            {
                using var set = MakeSet(c, types, 0, out var host);
                tInputs = sw.Elapsed.TotalSeconds;
                var result = RunAndCheck(c, binding, set, host, out _);
                Report("accuracy", c, result, sw.Elapsed.TotalSeconds);
            }
            catch (Exception ex)
            {
                Fail("accuracy", c, $"{ex.GetType().Name}: {ex.Message}");
            }
        }
    }

    // ---------------------------------------------------------------- bench

    /// <summary>Checks, then times each case; <paramref name="pass"/> (from 1, or 0 for a single pass) is noted on every row.</summary>
    public void Bench(IReadOnlyList<OpCase> cases, int pass = 0)
    {
        Console.WriteLine($"== bench: {cases.Count} cases, seed {opt.Seed}, timer {timer.Name}; median (p10/p90) of N single launches after warm-up;"
            + $" inputs rotate over >= 3 buffer sets when a set is < {RotateBelowBytes >> 20} MB");
        foreach (var c in cases)
        {
            if (!Prepare(c, "bench", out var binding, out var types))
            {
                continue;
            }

            var sets = new List<DeviceSet>();
            try
            {
                var set0 = MakeSet(c, types, 0, out var host);
                sets.Add(set0);
                var check = RunAndCheck(c, binding, set0, host, out var launch0);
                if (!check.Pass || launch0 is null)
                {
                    Report("bench", c, check, 0);
                    continue;
                }

                // Rotation: more sets (same values, other buffers) until ~200 MB, so repeated runs do not read from the
                // 50 MB L2; at least 3 when a set is under 150 MB, at most 2048.
                long ws = set0.Bytes - c.Inputs.Where(t => c.SharedAcrossSets.Contains(t.Name)).Sum(t => t.Length * ElemSize(c, types, t.Name)) + c.ExtraReadElements * c.Esz;
                int nsets = opt.Quick ? 3 : ws >= RotateBelowBytes ? 1 : (int)Math.Clamp((RotateTargetBytes + ws - 1) / ws, 3, MaxSets);
                var launches = new List<Action> { launch0 };
                for (int s = 1; s < nsets; s++)
                {
                    var set = MakeSet(c, types, s, out _, host, set0);
                    sets.Add(set);
                    launches.Add(binding is null ? c.Custom!(set) : binder.Compile(binding, set));
                }

                host.Clear();
                dev.Synchronize();
                int n = launches.Count;
                void Launch(int i) => launches[i % n]();

                // Warm-up (the check's call compiled the kernel): a few launches, then an estimate of one launch.
                var warm = timer.Time(Launch, opt.Quick ? 2 : 10);
                double est = Median(warm);

                // The host's cost of a call, measured on a short queue after the warm-up (every set's launch already ran once).
                timer.Time(Launch, HostProbeCalls);
                double hostMsPerCall = timer.LastEnqueueMs / HostProbeCalls;
                int runs = opt.Runs > 0 ? opt.Runs : opt.Quick ? 5 : (int)Math.Clamp(Math.Ceiling(300.0 / Math.Max(est, 1e-3)), est > 10 ? 5 : 20, 1000);
                FillQueue(runs);
                var ms = timer.Time(Launch, runs);
                string queue = (pass > 0 ? FormattableString.Invariant($"pass={pass} ") : string.Empty) + QueueNote(hostMsPerCall, ms, runs);
                Array.Sort(ms);
                double med = Median(ms), p10 = Pct(ms, 0.1), p90 = Pct(ms, 0.9);
                long bytes = c.Bytes(name => ElemSize(c, types, name));
                double gbps = bytes / (med * 1e6);
                double tflops = c.Flops > 0 ? c.Flops / (med * 1e9) : double.NaN;
                string rate = c.Flops > 0 ? $"{tflops,8:F2} TFLOP/s ({gbps:F0} GB/s)" : $"{gbps,8:F1} GB/s";
                Console.WriteLine($"PASS  {Label(c)} {med,9:F4} ms (p10 {p10:F4} p90 {p90:F4}, {runs} runs, {n} sets)  {rate}  max_abs {check.MaxAbs:E2} tol {check.TolRatio:F2}  {queue}");
                Passed++;
                csv.Add(new Row("bench", c.Op, c.DType.Name(), c.Shape, med, gbps, tflops, check.MaxAbs, "PASS", p10, p90, check.MaxRel, check.TolRatio,
                    bytes, c.Flops, runs, n, timer.Name, c.Category, c.BytesFormula(), Seed: opt.Seed, Note: queue));
            }
            catch (Exception ex)
            {
                Fail("bench", c, $"{ex.GetType().Name}: {ex.Message}");
            }
            finally
            {
                foreach (var s in sets)
                {
                    s.Dispose();
                }
            }
        }
    }

    /// <summary>
    /// The host's cost of one call and whether the device waited for the host during the timed runs. The host cost comes
    /// from the warm-up's few launches, whose queue is short: behind the timed runs' filler the queue fills, and the
    /// driver then paces every enqueue to the device. Device idle per run = first start to last end, less the runs' own
    /// times; well above the ~1.5 µs between an end marker and the next start, it means the queue ran dry and a run's
    /// time may include host time.
    /// </summary>
    private string QueueNote(double hostMsPerCall, double[] ms, int runs)
    {
        if (double.IsNaN(hostMsPerCall))
        {
            return string.Empty;
        }

        double idleUs = double.IsNaN(timer.LastSpanMs) ? double.NaN : (timer.LastSpanMs - ms.Sum()) * 1000 / runs;
        return FormattableString.Invariant($"host_us_per_call={hostMsPerCall * 1000:F1} device_idle_us_per_run={idleUs:F1}");
    }

    /// <summary>
    /// CUDA: enqueue device copies ahead of the timed launches so the host can queue them while the GPU is busy; then
    /// each start/end event pair measures the kernel, not the host's launch cost (matters for decode-sized kernels).
    /// </summary>
    private void FillQueue(int runs)
    {
        if (!IsCuda)
        {
            return;
        }

        if (fillerA is null)
        {
            fillerA = dev.Accelerator.Allocate1D<float>(1 << 26);
            fillerB = dev.Accelerator.Allocate1D<float>(1 << 26);
            fillerA.View.CopyTo(fillerB!.View);
            var t = timer.Time(_ => fillerA.View.CopyTo(fillerB.View), 5);
            fillerMs = Math.Max(Median(t), 0.01);
        }

        int copies = (int)Math.Clamp(Math.Ceiling(runs * 0.03 / fillerMs), 1, 200);
        for (int i = 0; i < copies; i++)
        {
            fillerA.View.CopyTo(fillerB!.View);
        }
    }

    // ---------------------------------------------------------------- startup

    public void Startup(IReadOnlyList<OpCase> cases, DateTime processStart)
    {
        Console.WriteLine("== startup: per op, first call (compile + launch + synchronize, host clock) and second call; compile = IlgpuDevice.CompileTimes; jit = methods the .NET JIT compiled on this thread during the first call, and its time");
        using var jitNames = JitRecorder.FromEnvironment();
        foreach (var c in cases)
        {
            if (!Prepare(c, "startup", out var binding, out var types))
            {
                continue;
            }

            try
            {
                using var set = MakeSet(c, types, 0, out var host);
                var launch = binding is null ? c.Custom!(set) : binder.Compile(binding, set);
                var before = new Dictionary<string, TimeSpan>(dev.CompileTimes);
                int readBefore = dev.KernelsFromDiskCache;
                int shippedBefore = dev.KernelsFromShippedArchive;
                dev.Synchronize();
                var jitMark = ThreadJit.Start();
                DateTime from = DateTime.UtcNow;
                long t0 = Stopwatch.GetTimestamp();
                launch();
                dev.Synchronize();
                double first = Stopwatch.GetElapsedTime(t0).TotalMilliseconds;
                var jit = jitMark.Since();
                jitNames?.AddWindow(Label(c).Trim(), from, DateTime.UtcNow);
                double since = (DateTime.Now - processStart).TotalMilliseconds;
                var check = CheckOutputs(c, set, host);
                t0 = Stopwatch.GetTimestamp();
                launch();
                dev.Synchronize();
                double second = Stopwatch.GetElapsedTime(t0).TotalMilliseconds;
                var loaded = dev.CompileTimes.Where(kv => !before.ContainsKey(kv.Key)).ToList();
                double compile = loaded.Sum(kv => kv.Value.TotalMilliseconds);
                int fromDisk = dev.KernelsFromDiskCache - readBefore;
                int fromShipped = dev.KernelsFromShippedArchive - shippedBefore;
                string status = check.Pass ? "PASS" : "FAIL";
                Console.WriteLine($"{status}  {Label(c)} first {first,9:F2} ms (compile {compile:F2}, jit {jit.Methods} methods {jit.Ms:F2}, {fromDisk} kernel(s) from disk, {fromShipped} shipped)  second {second,8:F3} ms  since process start {since,9:F1} ms  kernels {string.Join(' ', loaded.Select(kv => $"{kv.Key}:{kv.Value.TotalMilliseconds:F0}"))}{(check.Pass ? string.Empty : "  " + check.Detail)}");
                Count(check.Pass, c);
                csv.Add(new Row("startup", c.Op, c.DType.Name(), c.Shape, first, double.NaN, double.NaN, check.MaxAbs, status, MaxRel: check.MaxRel, TolRatio: check.TolRatio,
                    Timer: "host", Category: c.Category, SecondMs: second, CompileMs: compile, SinceStartMs: since, Seed: opt.Seed, Note: $"{StartupNote(dev, fromDisk, fromShipped)} {ThreadJit.Note(jit)}{KernelsNote(loaded.Select(kv => kv.Key))} {check.Detail}".TrimEnd()));
            }
            catch (Exception ex)
            {
                Fail("startup", c, $"{ex.GetType().Name}: {ex.Message}");
            }
        }

        jitNames?.Report();
    }

    /// <summary>
    /// The note of a startup row: which startup process wrote it (<c>GEMS_STARTUP_PROCESS</c>, set by run-on-gpu.sh), where
    /// its kernels came from, and whether the CUDA driver's compute cache was on (<c>CUDA_CACHE_DISABLE=1</c> turns it
    /// off: the first calls then pay the driver's PTX → SASS JIT and the module load, nothing of ILGPU's compile when the
    /// kernels come from disk).
    /// </summary>
    internal static string StartupNote(IlgpuDevice dev, int fromDisk, int fromShipped)
    {
        var driverCache = Environment.GetEnvironmentVariable("CUDA_CACHE_DISABLE") == "1" ? "off" : "on";
        var problem = dev.KernelCacheProblem is { } p ? " cache-problem=" + p.Replace(' ', '_') : string.Empty;
        return $"{ProcessTag}from-disk-cache={fromDisk} from-shipped={fromShipped} driver-cache={driverCache}{problem}";
    }

    /// <summary>
    /// <c> kernels=A+B</c>: the kernels a first call loaded (empty when it loaded none), so that a startup row names what
    /// its load time paid for.
    /// </summary>
    internal static string KernelsNote(IEnumerable<string> kernels) =>
        string.Join("+", kernels) is { Length: > 0 } names ? " kernels=" + names.Replace(' ', '_') : string.Empty;

    /// <summary><c>process=NAME </c> when run-on-gpu.sh named this startup process (<c>GEMS_STARTUP_PROCESS</c>), else empty.</summary>
    internal static string ProcessTag =>
        Environment.GetEnvironmentVariable("GEMS_STARTUP_PROCESS") is { Length: > 0 } process ? "process=" + process + " " : string.Empty;

    // ---------------------------------------------------------------- shared

    private bool Prepare(OpCase c, string suite, out Binder.Binding? binding, out Dictionary<string, Type> types)
    {
        types = new Dictionary<string, Type>();
        binding = null;
        if (opt.BudgetSeconds > 0 && (DateTime.Now - processStart).TotalSeconds > opt.BudgetSeconds)
        {
            Skipped++;
            SkipReasons.Add($"time budget of {opt.BudgetSeconds} s spent");
            Console.WriteLine($"SKIP  {Label(c)} time budget ({opt.BudgetSeconds} s) spent");
            csv.Add(new Row(suite, c.Op, c.DType.Name(), c.Shape, double.NaN, double.NaN, double.NaN, double.NaN, "SKIP", Category: c.Category, Seed: opt.Seed, Note: "time budget spent"));
            return false;
        }

        if (c.Custom is not null)
        {
            foreach (var t in c.Inputs.Concat(c.Outputs))
            {
                types[t.Name] = t.Kind == TensorKind.Index ? typeof(long) : c.DType == DType.F32 ? typeof(float) : typeof(ushort);
            }

            return true;
        }

        binding = binder.Bind(c, out string reason);
        if (binding is null)
        {
            Skipped++;
            SkipReasons.Add($"{c.Op} {c.DType.Name()}: {reason}");
            Console.WriteLine($"SKIP  {Label(c)} {reason}");
            csv.Add(new Row(suite, c.Op, c.DType.Name(), c.Shape, double.NaN, double.NaN, double.NaN, double.NaN, "SKIP", Category: c.Category, Seed: opt.Seed, Note: reason));
            return false;
        }

        types = binding.TensorTypes;
        foreach (var t in c.Inputs.Concat(c.Outputs))
        {
            if (!types.ContainsKey(t.Name))
            {
                // A tensor the method does not take (e.g. an optional operand): keep it on the host only.
                types[t.Name] = typeof(void);
            }
        }

        return true;
    }

    private DeviceSet MakeSet(OpCase c, Dictionary<string, Type> types, int setIndex, out Dictionary<string, HostTensor> host,
        Dictionary<string, HostTensor>? reuse = null, DeviceSet? first = null)
    {
        host = reuse ?? new Dictionary<string, HostTensor>();
        var set = new DeviceSet(dev.Accelerator);
        try
        {
            int salt = StableHash($"{c.Key}|{setIndex}");
            int ti = 0;
            foreach (var spec in c.Inputs)
            {
                ti++;
                if (first is not null && c.SharedAcrossSets.Contains(spec.Name))
                {
                    set.Share(first, spec.Name);
                    continue;
                }

                if (first is not null && c.SharedAcrossSets.Count > 0 && spec.Kind == TensorKind.Index)
                {
                    // Other rows of the shared table in each set (not kept in `host`: only set 0 is checked).
                    set.Upload(HostTensor.Random(spec, c.DType, opt.Seed, salt + 7919 * ti), types[spec.Name]);
                    continue;
                }

                if (!host.TryGetValue(spec.Name, out var h))
                {
                    h = HostTensor.Random(spec, c.DType, opt.Seed, salt + 7919 * ti);
                    host[spec.Name] = h;
                }

                if (types[spec.Name] != typeof(void))
                {
                    set.Upload(h, types[spec.Name]);
                }
            }

            foreach (var spec in c.Outputs)
            {
                if (types[spec.Name] != typeof(void))
                {
                    set.Poisoned(spec, types[spec.Name], c.DType);
                }
            }
        }
        catch
        {
            set.Dispose();
            throw;
        }

        return set;
    }

    private CheckResult RunAndCheck(OpCase c, Binder.Binding? binding, DeviceSet set, Dictionary<string, HostTensor> host, out Action? launch)
    {
        launch = null;
        long t0 = Stopwatch.GetTimestamp();
        try
        {
            launch = binding is null ? c.Custom!(set) : binder.Compile(binding, set);
            launch();
            dev.Synchronize();
            tLaunch = Stopwatch.GetElapsedTime(t0).TotalSeconds;
        }
        catch (Exception ex)
        {
            var inner = ex is System.Reflection.TargetInvocationException { InnerException: { } ie } ? ie : ex;
            return new CheckResult(false, double.NaN, double.NaN, double.PositiveInfinity, 1, $"launch threw {inner.GetType().Name}: {inner.Message}");
        }

        return CheckOutputs(c, set, host);
    }

    private CheckResult CheckOutputs(OpCase c, DeviceSet set, Dictionary<string, HostTensor> host)
    {
        long t0 = Stopwatch.GetTimestamp();
        var expected = c.Reference(host);
        tReference = Stopwatch.GetElapsedTime(t0).TotalSeconds;
        t0 = Stopwatch.GetTimestamp();
        double rtol = c.DType.Rtol() * c.RtolScale, atol = Atol * c.AtolScale;
        CheckResult? result = null;
        foreach (var (name, exp) in expected)
        {
            var et = set.ElementType(name);
            CheckResult r;
            if (exp.Indices is not null)
            {
                long[] got = et == typeof(int) ? Array.ConvertAll(set.Download<int>(name), v => (long)v) : set.Download<long>(name);
                r = Checker.Indices(name, got, exp.Indices);
            }
            else if (et == typeof(ushort))
            {
                var bits = set.Download<ushort>(name);
                var got = new float[bits.Length];
                var dt = c.DType;
                Par.Range(bits.Length, (lo, hi) =>
                {
                    for (long i = lo; i < hi; i++)
                    {
                        got[i] = dt.FromBits(bits[i]);
                    }
                });
                r = Checker.Values(name, got, exp.Values!, c.DType, rtol, atol);
            }
            else
            {
                r = Checker.Values(name, set.Download<float>(name), exp.Values!, DType.F32, rtol, atol);
            }

            result = CheckResult.Merge(result, r);
        }

        tCompare = Stopwatch.GetElapsedTime(t0).TotalSeconds;
        return result ?? new CheckResult(false, double.NaN, double.NaN, double.NaN, 1, "no outputs to check");
    }

    private void Report(string suite, OpCase c, CheckResult r, double seconds)
    {
        string status = r.Pass ? "PASS" : "FAIL";
        Console.WriteLine($"{status}  {Label(c)} max_abs {r.MaxAbs:E2}  max_rel {r.MaxRel:E2}  tol_ratio {r.TolRatio:F3}"
            + $"  ({seconds:F1} s: inputs {tInputs:F1}, launch {tLaunch:F1}, ref {tReference:F1}, download+compare {tCompare:F1}){(r.Pass ? string.Empty : "  " + r.Detail)}");
        Count(r.Pass, c);
        csv.Add(new Row(suite, c.Op, c.DType.Name(), c.Shape, double.NaN, double.NaN, double.NaN, r.MaxAbs, status, MaxRel: r.MaxRel, TolRatio: r.TolRatio,
            Category: c.Category, Seed: opt.Seed, Note: r.Detail));
    }

    private void Fail(string suite, OpCase c, string message)
    {
        Console.WriteLine($"FAIL  {Label(c)} {message}");
        Count(false, c);
        csv.Add(new Row(suite, c.Op, c.DType.Name(), c.Shape, double.NaN, double.NaN, double.NaN, double.NaN, "FAIL", Category: c.Category, Seed: opt.Seed, Note: message));
    }

    private void Count(bool pass, OpCase c)
    {
        if (pass)
        {
            Passed++;
        }
        else
        {
            Failed++;
            FailedKeys.Add(c.Key);
        }
    }

    private static int ElemSize(OpCase c, Dictionary<string, Type> types, string name) =>
        types.TryGetValue(name, out var t) && t != typeof(void)
            ? (t == typeof(float) || t == typeof(int) ? 4 : t == typeof(long) ? 8 : 2)
            : c.Esz;

    private static string Label(OpCase c) => $"{c.Op,-20} {c.DType.Name(),-9} {c.Shape,-18}";

    private static double Median(double[] v)
    {
        var s = (double[])v.Clone();
        Array.Sort(s);
        return Pct(s, 0.5);
    }

    private static double Pct(double[] sorted, double p) =>
        sorted.Length == 0 ? double.NaN : sorted[(int)Math.Clamp(Math.Round(p * (sorted.Length - 1)), 0, sorted.Length - 1)];

    private static int StableHash(string s)
    {
        unchecked
        {
            int h = (int)2166136261;
            foreach (char ch in s)
            {
                h = (h ^ ch) * 16777619;
            }

            return h;
        }
    }

    public void Dispose()
    {
        timer.Dispose();
        fillerA?.Dispose();
        fillerB?.Dispose();
    }

    internal static string Invariant(double v) => v.ToString(CultureInfo.InvariantCulture);
}
