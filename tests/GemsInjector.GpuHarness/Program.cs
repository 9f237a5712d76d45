using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Linq;
using GemsInjector.Kernels.Ilgpu;

namespace GemsInjector.GpuHarness;

/// <summary>Command line.</summary>
internal sealed class Options
{
    public IlgpuDeviceKind Device { get; set; } = IlgpuDeviceKind.CpuSimulator;

    public string DeviceName { get; set; } = "cpu-sim";

    public HashSet<string> Suites { get; } = new();

    public bool Quick { get; set; }

    public string? Csv { get; set; }

    public string? Filter { get; set; }

    public List<DType> DTypes { get; } = new();

    public int Seed { get; set; }

    public int Runs { get; set; }

    public bool List { get; set; }

    public bool SelfTest { get; set; }

    public bool EnableProbe { get; set; }

    /// <summary>Launches of the traced float32 batch-1 decode for --decode-trace (0: not asked for).</summary>
    public int DecodeTraceLaunches { get; set; }

    /// <summary>Launches per row of --launch-overlap (0: not asked for).</summary>
    public int LaunchOverlapLaunches { get; set; }

    /// <summary>--staging-probe: mm as a product call makes it on host tensors, staged to the device against the CPU kernel.</summary>
    public bool StagingProbe { get; set; }

    /// <summary>Where --precompile-kernels writes the archive of precompiled kernels, or null.</summary>
    public string? PrecompileArchive { get; set; }

    /// <summary>Seconds after which no new case starts (the rest are reported as SKIP); 0 = none.</summary>
    public double BudgetSeconds { get; set; }

    /// <summary>Megabytes of device memory allocated before any case and held to the end (0: none).</summary>
    public int PadMegabytes { get; set; }

    /// <summary>How many times the bench suite goes over its cases in this process (later passes run after every kernel of the first has loaded and run).</summary>
    public int Passes { get; set; } = 1;

    public const string Usage = """
        GemsInjector.GpuHarness: accuracy, benchmark and startup harness for the ILGPU kernels.

          --device cuda|cpu-sim        accelerator (default cpu-sim)
          --suite accuracy|bench|startup|all   (repeatable or comma-separated; default all)
          --quick                      tiny shapes (for the CPU simulator)
          --csv <path>                 write one row per case
          --filter <substring>         only cases whose "op dtype shape" contains it (case-insensitive; '|' separates alternatives)
          --dtype f32|f16|bf16|all     (repeatable or comma-separated; default all)
          --seed <int>                 input seed (default: time-based, printed)
          --runs <n>                   timed runs per bench case (default: ~300 ms of device time, 20..1000)
          --list                       print the cases and how each binds, run nothing
          --selftest                   check that an unwritten (poisoned) output FAILs, then exit
          --enable-probe               time Gems.Enable on the device and the device's start behind it, then exit
          --decode-trace <launches>    CUDA: the float32 batch-1 decode (32/8 heads, 4096 keys, d 128) with every group's
                                       timeline stamped by the GPU's timer, launch after launch as the bench runs it;
                                       checks the output, prints where the time goes and writes the stamps to --csv
          --launch-overlap <launches>  CUDA: wall time per launch of tiny PTX kernels back to back, plain and with
                                       programmatic dependent launch (griddepcontrol; the overlap launch attribute)
          --staging-probe              mm on operands in host memory: the staged device call (copies, kernel, copy
                                       back) against the CPU kernel, by shape, and the host <-> device copy rates
          --budget-s <seconds>         start no new case after this many seconds from process start (rest: SKIP)
          --pad-mb <n>                 allocate n MB of device memory first and hold it: every later buffer lands at
                                       other addresses, the kernels and the case order unchanged (placement effects)
          --passes <n>                 bench every case n times in this process, pass after pass (default 1): tells
                                       a kernel's own time from what earlier cases' kernels leave behind in the process
          --precompile-kernels <zip>   compile every kernel to PTX for SM_90 on the CPU (no GPU) into the archive that
                                       the CUDA device reads below its kernel cache (publish.sh puts it beside the
                                       kernel assembly), print each kernel's IL -> PTX time, then exit

        Exit code: 0 all pass (SKIPs allowed), 1 a case failed, 2 bad arguments, 3 no device.
        """;

    public static Options? Parse(string[] args, out string? error)
    {
        var o = new Options { Seed = Environment.TickCount & 0x7FFFFFFF };
        error = null;
        for (int i = 0; i < args.Length; i++)
        {
            string a = args[i];
            string Next()
            {
                if (i + 1 >= args.Length)
                {
                    throw new ArgumentException($"{a} needs a value");
                }

                return args[++i];
            }

            try
            {
                switch (a)
                {
                    case "--device":
                        o.DeviceName = Next().ToLowerInvariant();
                        o.Device = o.DeviceName switch
                        {
                            "cuda" => IlgpuDeviceKind.Cuda,
                            "cpu-sim" or "cpu" or "sim" => IlgpuDeviceKind.CpuSimulator,
                            "opencl" => IlgpuDeviceKind.OpenCL,
                            _ => throw new ArgumentException($"unknown device '{o.DeviceName}'"),
                        };
                        break;
                    case "--suite":
                        foreach (var s in Next().Split(',', StringSplitOptions.RemoveEmptyEntries))
                        {
                            if (s is not ("accuracy" or "bench" or "startup" or "all"))
                            {
                                throw new ArgumentException($"unknown suite '{s}'");
                            }

                            o.Suites.Add(s);
                        }

                        break;
                    case "--quick":
                        o.Quick = true;
                        break;
                    case "--csv":
                        o.Csv = Next();
                        break;
                    case "--filter":
                        o.Filter = Next();
                        break;
                    case "--dtype":
                        foreach (var s in Next().Split(',', StringSplitOptions.RemoveEmptyEntries))
                        {
                            if (s == "all")
                            {
                                o.DTypes.AddRange(new[] { DType.F32, DType.F16, DType.BF16 });
                            }
                            else if (DTypeExtensions.TryParse(s, out var t))
                            {
                                o.DTypes.Add(t);
                            }
                            else
                            {
                                throw new ArgumentException($"unknown dtype '{s}'");
                            }
                        }

                        break;
                    case "--seed":
                        o.Seed = int.Parse(Next(), System.Globalization.CultureInfo.InvariantCulture);
                        break;
                    case "--runs":
                        o.Runs = int.Parse(Next(), System.Globalization.CultureInfo.InvariantCulture);
                        break;
                    case "--list":
                        o.List = true;
                        break;
                    case "--enable-probe":
                        o.EnableProbe = true;
                        break;
                    case "--staging-probe":
                        o.StagingProbe = true;
                        break;
                    case "--launch-overlap":
                        o.LaunchOverlapLaunches = int.Parse(Next(), System.Globalization.CultureInfo.InvariantCulture);
                        if (o.LaunchOverlapLaunches < 1)
                        {
                            throw new ArgumentException($"--launch-overlap needs at least 1 launch, got {o.LaunchOverlapLaunches}");
                        }

                        break;
                    case "--decode-trace":
                        o.DecodeTraceLaunches = int.Parse(Next(), System.Globalization.CultureInfo.InvariantCulture);
                        if (o.DecodeTraceLaunches < 2)
                        {
                            throw new ArgumentException($"--decode-trace needs at least 2 launches, got {o.DecodeTraceLaunches}");
                        }

                        break;
                    case "--selftest":
                        o.SelfTest = true;
                        break;
                    case "--precompile-kernels":
                        o.PrecompileArchive = Next();
                        break;
                    case "--budget-s":
                        o.BudgetSeconds = double.Parse(Next(), System.Globalization.CultureInfo.InvariantCulture);
                        break;
                    case "--pad-mb":
                        o.PadMegabytes = int.Parse(Next(), System.Globalization.CultureInfo.InvariantCulture);
                        if (o.PadMegabytes < 0)
                        {
                            throw new ArgumentException($"--pad-mb must not be negative, got {o.PadMegabytes}");
                        }

                        break;
                    case "--passes":
                        o.Passes = int.Parse(Next(), System.Globalization.CultureInfo.InvariantCulture);
                        if (o.Passes < 1)
                        {
                            throw new ArgumentException($"--passes must be at least 1, got {o.Passes}");
                        }

                        break;
                    case "-h" or "--help":
                        error = string.Empty;
                        return null;
                    default:
                        throw new ArgumentException($"unknown argument '{a}'");
                }
            }
            catch (Exception ex) when (ex is ArgumentException or FormatException or OverflowException)
            {
                error = ex.Message;
                return null;
            }
        }

        if (o.Suites.Count == 0 || o.Suites.Contains("all"))
        {
            o.Suites.Clear();
            o.Suites.UnionWith(new[] { "startup", "accuracy", "bench" });
        }

        if (o.DTypes.Count == 0)
        {
            o.DTypes.AddRange(new[] { DType.F32, DType.F16, DType.BF16 });
        }

        var distinct = o.DTypes.Distinct().ToList();
        o.DTypes.Clear();
        o.DTypes.AddRange(distinct);
        return o;
    }

    public bool Matches(OpCase c) =>
        Filter is null || Filter.Split('|').Any(f =>
            $"{c.Op} {c.DType.Name()} {c.Shape}".Contains(f, StringComparison.OrdinalIgnoreCase)
            || $"{c.Op} {c.DType.Short()} {c.Shape}".Contains(f, StringComparison.OrdinalIgnoreCase));
}

internal static class Program
{
    private static int Main(string[] args)
    {
        DateTime processStart;
        using (var self = Process.GetCurrentProcess())
        {
            processStart = self.StartTime;
        }

        var opt = Options.Parse(args, out var error);
        if (opt is null)
        {
            if (!string.IsNullOrEmpty(error))
            {
                Console.Error.WriteLine($"error: {error}");
            }

            Console.Error.WriteLine(Options.Usage);
            return string.IsNullOrEmpty(error) ? 0 : 2;
        }

        if (opt.PrecompileArchive is { } archive)
        {
            var kernels = KernelPrecompiler.Precompile(archive, Console.Out);
            var failed = kernels.Count(k => k.Error is not null);
            Console.WriteLine($"precompile: {kernels.Count - failed} of {kernels.Count} kernels in {archive} ({new System.IO.FileInfo(archive).Length} bytes),"
                + $" IL -> PTX {kernels.Sum(k => k.CompileTime.TotalSeconds):F1} s in all");
            return failed == 0 ? 0 : 1;
        }

        if (opt.EnableProbe)
        {
            return EnableProbe.Run(opt, processStart);
        }

        if (opt.DecodeTraceLaunches > 0)
        {
            return DecodeTraceRun.Run(opt);
        }

        if (opt.LaunchOverlapLaunches > 0)
        {
            return LaunchOverlapProbe.Run(opt);
        }

        if (opt.StagingProbe)
        {
            return StagingProbe.Run(opt);
        }

        // Startup first: its first calls must find no kernel compiled yet.
        var order = new[] { "startup", "accuracy", "bench" }.Where(opt.Suites.Contains).ToList();
        Console.WriteLine($"GemsInjector.GpuHarness: device {opt.DeviceName}, suites {string.Join(",", order)}, dtypes {string.Join(",", opt.DTypes.Select(d => d.Short()))},"
            + $" {(opt.Quick ? "quick shapes" : "full shapes")}, seed {opt.Seed}, filter '{opt.Filter}', {Environment.ProcessorCount} host cores, {DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC");

        long t0 = Stopwatch.GetTimestamp();
        IlgpuDevice dev;
        try
        {
            dev = IlgpuDevice.Create(opt.Device);
        }
        catch (IlgpuDeviceException ex)
        {
            Console.Error.WriteLine($"error: {ex.Message}");
            return 3;
        }

        double createMs = Stopwatch.GetElapsedTime(t0).TotalMilliseconds;
        double sinceStart = (DateTime.Now - processStart).TotalMilliseconds;
        Console.WriteLine($"device: {dev}; created in {createMs:F1} ms, {sinceStart:F1} ms after process start; kernel cache: {dev.KernelCacheDirectory ?? "none"}; shipped kernels: {dev.ShippedKernelsPath ?? "none"}");

        if (opt.SelfTest)
        {
            var probe = new Runner(opt, dev, new CsvSink(null), processStart);
            probe.Accuracy(opt.DTypes.Select(t => Catalog.NoOp(t, 1000)).ToList());
            bool ok = probe.Failed == opt.DTypes.Count && probe.Passed == 0;
            Console.WriteLine(ok ? "selftest: ok (every unwritten output was caught)" : "selftest: FAILED (an unwritten output passed the check)");
            probe.Dispose(); // before the device: the timer's CUDA events and the filler buffers live on it
            dev.Dispose();
            return ok ? 0 : 1;
        }

        var csv = new CsvSink(opt.List ? null : opt.Csv);
        csv.Add(new Row("startup", "device_create", string.Empty, string.Empty, createMs, double.NaN, double.NaN, double.NaN, "PASS", SinceStartMs: sinceStart, Seed: opt.Seed, Note: Runner.ProcessTag + dev + LaunchFloor.MemoryPeakNote(dev.Accelerator)));
        if (order.Contains("startup"))
        {
            // As the runtime does on its background start: ILGPU's own start is paid here, not by the first operator.
            var jitMark = ThreadJit.Start();
            double warmMs = dev.WarmUp().TotalMilliseconds;
            var jit = jitMark.Since();
            Console.WriteLine($"warm-up (one trivial kernel, {(dev.KernelsFromDiskCache > 0 ? "from the disk cache" : "compiled")}): {warmMs:F1} ms (jit {jit.Methods} methods {jit.Ms:F2} ms)");
            csv.Add(new Row("startup", "warm_up", string.Empty, string.Empty, warmMs, double.NaN, double.NaN, double.NaN, "PASS",
                SinceStartMs: (DateTime.Now - processStart).TotalMilliseconds, Seed: opt.Seed, Note: Runner.StartupNote(dev, dev.KernelsFromDiskCache, dev.KernelsFromShippedArchive) + " " + ThreadJit.Note(jit)));
        }
        using var pad = opt.PadMegabytes > 0 ? dev.Accelerator.Allocate1D<byte>((long)opt.PadMegabytes << 20) : null;
        var runner = new Runner(opt, dev, csv, processStart);
        var readGrid = ReadCeiling.ReadGrid.Of(dev.Accelerator);
        try
        {
            foreach (var suite in order)
            {
                // Startup uses tiny shapes (the time is compile + launch); accuracy/bench use the full shapes unless --quick.
                var cases = suite switch
                {
                    "startup" => FirstPerOp(Catalog.Build(quick: true, bench: false, opt.DTypes, readGrid)),
                    "accuracy" => Catalog.Build(opt.Quick, bench: false, opt.DTypes, readGrid),
                    _ => Catalog.Build(opt.Quick, bench: true, opt.DTypes, readGrid),
                };
                cases = cases.Where(opt.Matches).ToList();
                if (opt.List)
                {
                    var binder = new Binder(dev.Kernels);
                    foreach (var c in cases)
                    {
                        string why2 = string.Empty;
                        var b = c.Custom is not null ? null : binder.Bind(c, out why2);
                        Console.WriteLine($"{suite,-8} {c.Key,-50} {(c.Custom is not null ? "(custom)" : b?.Signature ?? "SKIP " + why2)}");
                    }

                    continue;
                }

                switch (suite)
                {
                    case "startup":
                        runner.Startup(cases, processStart);
                        break;
                    case "accuracy":
                        runner.Accuracy(cases);
                        break;
                    default:
                        for (int pass = 1; pass <= opt.Passes; pass++)
                        {
                            runner.Bench(cases, opt.Passes > 1 ? pass : 0);
                        }

                        break;
                }
            }
        }
        finally
        {
            csv.Close();
            if (opt.Csv is not null && !opt.List)
            {
                Console.WriteLine($"csv: {opt.Csv} ({csv.Rows.Count} rows)");
            }

            // Which 16-bit GEMM kernels ran (GEMS_TC_GEMM_VARIANT), the cluster kernels among them (GEMS_SPLITK_REDUCE,
            // GEMS_DECODE_VARIANT=cluster), and why wgmma or a cluster kernel fell back if it did.
            var gemmKernels = dev.CompileTimes.Keys.Where(k => k.Contains("TensorCore", StringComparison.Ordinal) || k.Contains("Wgmma", StringComparison.Ordinal) || k.Contains("Cluster", StringComparison.Ordinal)).OrderBy(k => k, StringComparer.Ordinal);
            Console.WriteLine($"== tensor-core GEMM kernels loaded: {string.Join(", ", gemmKernels)}{(dev.Kind == IlgpuDeviceKind.Cuda && dev.Kernels.WgmmaLoadError is { } wgmmaError ? "; wgmma failed: " + wgmmaError : string.Empty)}{(dev.Kind == IlgpuDeviceKind.Cuda && dev.Kernels.ClusterLoadError is { } clusterError ? "; cluster kernel failed: " + clusterError : string.Empty)}");
            Console.WriteLine($"== kernels loaded: {dev.CompileTimes.Count}, launched without ILGPU's launcher (GEMS_KERNEL_LAUNCHER): {dev.DirectLaunchKernels}");
            runner.Dispose(); // before the device: the timer's CUDA events and the filler buffers live on it
            dev.Dispose();
        }

        Console.WriteLine($"== summary: {runner.Passed} passed, {runner.Failed} failed, {runner.Skipped} skipped (seed {opt.Seed})");
        foreach (var r in runner.SkipReasons.Distinct().Take(40))
        {
            Console.WriteLine($"   skip: {r}");
        }

        foreach (var k in runner.FailedKeys)
        {
            Console.WriteLine($"   FAILED: {k}");
        }

        return runner.Failed > 0 ? 1 : 0;
    }

    private static List<OpCase> FirstPerOp(List<OpCase> cases) =>
        cases.GroupBy(c => (c.Op, c.DType)).Select(g => g.First()).ToList();
}
