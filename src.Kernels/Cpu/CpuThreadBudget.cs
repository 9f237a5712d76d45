using System;
using System.Globalization;
using System.Threading.Tasks;

namespace GemsInjector.Kernels.Cpu;

/// <summary>
/// How many threads one process's CPU kernels may use at once (as <c>torch.set_num_threads</c>): <c>GEMS_CPU_THREADS</c>
/// when set, else the processor count shared among the <c>LOCAL_WORLD_SIZE</c> worker processes of this machine, else
/// every processor. Several workers on one machine that each fan out over every core oversubscribe it, and a decode
/// step made of microsecond kernels then waits on the scheduler more than it computes.
/// </summary>
/// <remarks>
/// The environment is read once, the first time a kernel asks. An invalid value never makes a kernel throw (a worker
/// must not die for a typo): the rule below it applies and <see cref="Problem"/> says what was ignored, for the runtime
/// to report.
/// </remarks>
public static class CpuThreadBudget
{
    /// <summary>The variable that sets the thread budget directly: a positive integer.</summary>
    public const string ThreadsVariable = "GEMS_CPU_THREADS";

    /// <summary>The number of worker processes on this machine (set by torchrun-style launchers): a positive integer.</summary>
    public const string LocalWorldSizeVariable = "LOCAL_WORLD_SIZE";

    private static readonly CpuThreadSetting Current = Resolve(
        Environment.GetEnvironmentVariable(ThreadsVariable),
        Environment.GetEnvironmentVariable(LocalWorldSizeVariable),
        Environment.ProcessorCount);

    private static readonly ParallelOptions Options = new() { MaxDegreeOfParallelism = Current.Threads };

    /// <summary>The most threads a CPU kernel of this process uses at once (at least 1).</summary>
    public static int MaxThreads => Current.Threads;

    /// <summary>Which rule set <see cref="MaxThreads"/>, e.g. "GEMS_CPU_THREADS=1" or "ProcessorCount 2 / LOCAL_WORLD_SIZE 2".</summary>
    public static string Source => Current.Source;

    /// <summary>What was wrong with the environment's settings and ignored, or null when nothing was.</summary>
    public static string? Problem => Current.Problem;

    /// <summary>
    /// The budget for the given values of <c>GEMS_CPU_THREADS</c> and <c>LOCAL_WORLD_SIZE</c> (null or empty when unset)
    /// and processor count. Never throws on the values: an invalid one is skipped and described in
    /// <see cref="CpuThreadSetting.Problem"/>.
    /// </summary>
    /// <param name="threadsValue">The value of <c>GEMS_CPU_THREADS</c>, or null.</param>
    /// <param name="localWorldSizeValue">The value of <c>LOCAL_WORLD_SIZE</c>, or null.</param>
    /// <param name="processorCount">The processors available to the process.</param>
    /// <returns>The thread budget (at least 1), the rule that gave it, and any problem found.</returns>
    public static CpuThreadSetting Resolve(string? threadsValue, string? localWorldSizeValue, int processorCount)
    {
        int processors = Math.Max(1, processorCount);
        string? problem = null;
        if (!string.IsNullOrWhiteSpace(threadsValue))
        {
            if (TryPositive(threadsValue, out int threads))
            {
                return new CpuThreadSetting(threads, $"{ThreadsVariable}={threads}", null);
            }

            problem = $"{ThreadsVariable}='{threadsValue}' is not a positive integer; it was ignored.";
        }

        if (!string.IsNullOrWhiteSpace(localWorldSizeValue))
        {
            if (TryPositive(localWorldSizeValue, out int workers))
            {
                return new CpuThreadSetting(
                    Math.Max(1, processors / workers), $"ProcessorCount {processors} / {LocalWorldSizeVariable} {workers}", problem);
            }

            problem = Join(problem, $"{LocalWorldSizeVariable}='{localWorldSizeValue}' is not a positive integer; it was ignored.");
        }

        return new CpuThreadSetting(processors, $"ProcessorCount {processors}", problem);
    }

    /// <summary><paramref name="wanted"/> threads clamped to [1, <see cref="MaxThreads"/>].</summary>
    internal static int Threads(long wanted) => (int)Math.Clamp(wanted, 1, Current.Threads);

    /// <summary>Runs <paramref name="body"/> for 0..<paramref name="count"/>-1 on at most <see cref="MaxThreads"/> threads; inline when one.</summary>
    internal static void For(int count, Action<int> body)
    {
        if (count <= 1 || Current.Threads == 1)
        {
            for (int i = 0; i < count; i++)
            {
                body(i);
            }

            return;
        }

        Parallel.For(0, count, Options, body);
    }

    /// <summary>Runs <paramref name="body"/> for 0..<paramref name="count"/>-1 on at most <see cref="MaxThreads"/> threads; inline when one.</summary>
    internal static void For(long count, Action<long> body)
    {
        if (count <= 1 || Current.Threads == 1)
        {
            for (long i = 0; i < count; i++)
            {
                body(i);
            }

            return;
        }

        Parallel.For(0L, count, Options, body);
    }

    private static bool TryPositive(string value, out int result) =>
        int.TryParse(value.Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out result) && result > 0;

    private static string Join(string? first, string second) => first is null ? second : first + " " + second;
}

/// <summary>A resolved CPU thread budget.</summary>
/// <param name="Threads">The most threads a kernel uses at once (at least 1).</param>
/// <param name="Source">The rule that gave <paramref name="Threads"/>.</param>
/// <param name="Problem">What was invalid in the settings and ignored, or null.</param>
public readonly record struct CpuThreadSetting(int Threads, string Source, string? Problem);
