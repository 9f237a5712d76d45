using System;
using System.Collections.Concurrent;
using System.Collections.Generic;
using System.Diagnostics.Tracing;
using System.Linq;
using System.Threading;

namespace GemsInjector.GpuHarness;

/// <summary>
/// Names the methods the .NET JIT compiles during each startup first call (<c>GEMS_STARTUP_JIT_NAMES=1</c>), so that a
/// first call's host time can be split into JIT and the rest, and the warm-up can be aimed at what the first operator
/// really compiles. Listens to the runtime's own event source (JIT keyword, verbose level); the events arrive on the
/// runtime's dispatch thread some time after they happen, so each is placed in its call's window by its timestamp, and
/// <see cref="Report"/> waits for the stragglers first.
/// </summary>
internal sealed class JitRecorder : EventListener
{
    private const string RuntimeSource = "Microsoft-Windows-DotNETRuntime";
    private const EventKeywords JitKeyword = (EventKeywords)0x10;
    private const int MethodJittingStarted = 145;

    private readonly ConcurrentQueue<(DateTime At, string Type, string Method)> jitted = new();
    private readonly List<(string Label, DateTime From, DateTime To)> windows = new();

    /// <summary>The recorder when <c>GEMS_STARTUP_JIT_NAMES</c> is 1, else null (no listener, no cost).</summary>
    public static JitRecorder? FromEnvironment() =>
        Environment.GetEnvironmentVariable("GEMS_STARTUP_JIT_NAMES") == "1" ? new JitRecorder() : null;

    /// <summary>Marks the call between <paramref name="from"/> and <paramref name="to"/> (UTC) as <paramref name="label"/>.</summary>
    public void AddWindow(string label, DateTime from, DateTime to) => windows.Add((label, from, to));

    /// <summary>
    /// Prints, per window, how many methods were compiled and the declaring types that compiled the most, then every method
    /// of the first window by name.
    /// </summary>
    public void Report(int typesPerWindow = 12)
    {
        Thread.Sleep(1500);
        var events = jitted.ToArray();
        Console.WriteLine($"== startup JIT by first call ({events.Length} methods compiled while recording; types with the most methods first)");
        foreach (var (label, from, to) in windows)
        {
            var inside = events.Where(e => e.At >= from && e.At <= to).ToList();
            var byType = inside.GroupBy(e => e.Type).OrderByDescending(g => g.Count()).ThenBy(g => g.Key, StringComparer.Ordinal)
                .Take(typesPerWindow).Select(g => $"{g.Key} {g.Count()}");
            Console.WriteLine($"   {label}: {inside.Count} methods; {string.Join("; ", byType)}");
        }

        // The process's first call compiles what every later one shares: name those methods one by one.
        if (windows.Count > 0)
        {
            var (label, from, to) = windows[0];
            Console.WriteLine($"== methods compiled during the first call ({label.Trim()}):");
            foreach (var e in events.Where(e => e.At >= from && e.At <= to))
            {
                Console.WriteLine($"   {e.Type}.{e.Method}");
            }
        }
    }

    protected override void OnEventSourceCreated(EventSource eventSource)
    {
        if (eventSource.Name == RuntimeSource)
        {
            EnableEvents(eventSource, EventLevel.Verbose, JitKeyword);
        }
    }

    protected override void OnEventWritten(EventWrittenEventArgs eventData)
    {
        if (eventData.EventId != MethodJittingStarted || eventData.Payload is null || eventData.PayloadNames is null)
        {
            return;
        }

        int typeAt = eventData.PayloadNames.IndexOf("MethodNamespace");
        int nameAt = eventData.PayloadNames.IndexOf("MethodName");
        string type = typeAt >= 0 ? eventData.Payload[typeAt] as string ?? "?" : "?";
        string method = nameAt >= 0 ? eventData.Payload[nameAt] as string ?? "?" : "?";
        jitted.Enqueue((eventData.TimeStamp.ToUniversalTime(), Shorten(type), method));
    }

    // Generic instantiations repeat their arguments at length; the outer type is what a warm-up can aim at.
    private static string Shorten(string type)
    {
        int bracket = type.IndexOf('[');
        return bracket > 0 ? type[..bracket] + "[…]" : type;
    }
}

/// <summary>The .NET JIT's work on the calling thread since <see cref="Start"/>: the methods it compiled and the time it took.</summary>
internal readonly struct ThreadJit
{
    private readonly long methods;
    private readonly TimeSpan time;

    private ThreadJit(long methods, TimeSpan time) => (this.methods, this.time) = (methods, time);

    /// <summary>Marks the current counts.</summary>
    public static ThreadJit Start() =>
        new(System.Runtime.JitInfo.GetCompiledMethodCount(currentThread: true), System.Runtime.JitInfo.GetCompilationTime(currentThread: true));

    /// <summary>Methods compiled and milliseconds spent since the mark.</summary>
    public (long Methods, double Ms) Since() =>
        (System.Runtime.JitInfo.GetCompiledMethodCount(currentThread: true) - methods,
         (System.Runtime.JitInfo.GetCompilationTime(currentThread: true) - time).TotalMilliseconds);

    /// <summary>The note form of <see cref="Since"/>'s result: <c>jit=N/T.TTms</c>.</summary>
    public static string Note((long Methods, double Ms) jit) => FormattableString.Invariant($"jit={jit.Methods}/{jit.Ms:F2}ms");
}
