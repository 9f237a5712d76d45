using System;
using System.Collections.Concurrent;
using System.ComponentModel;
using System.IO;
using System.Threading;
using Microsoft.Extensions.Logging;

namespace GemsInjector.Hosting;

/// <summary>
/// The runtime half of the start-up block that the GemsInjector generator writes into each <c>[GemsWorker]</c>
/// class: it reads the guard, logs each outcome once and records it in <see cref="Gems.Status"/>. None of its
/// members throws, because nothing may escape a module initializer: a worker always starts.
/// Not meant to be called by hand; use <see cref="Gems.Enable(GemsOptions?)"/>.
/// </summary>
[EditorBrowsable(EditorBrowsableState.Never)]
public sealed class WorkerStartup
{
    private readonly string _worker;
    private readonly string _guardVariable;

    /// <summary>The Gems state when the guard said "enable", put back if enabling then fails part way.</summary>
    private Gems.SavedState? _beforeEnable;

    /// <summary>Starts the block for <paramref name="worker"/> (its full type name), guarded by <paramref name="guardVariable"/>.</summary>
    public WorkerStartup(string worker, string guardVariable)
    {
        _worker = worker ?? "";
        _guardVariable = guardVariable ?? GemsGuard.DefaultVariable;
    }

    /// <summary>
    /// Whether the guard variable asks to enable GemsInjector. When it does not, records why in
    /// <see cref="Gems.Status"/>; an unrecognized value is also logged as a warning that names it. If GemsInjector is
    /// already enabled in this process (by another worker's block or by hand), the status keeps describing that
    /// enablement, which this block does not undo.
    /// </summary>
    public bool IsGuardEnabled(ILogger? logger)
    {
        try
        {
            var reading = GemsGuard.Read(_guardVariable);
            switch (reading.Decision)
            {
                case GuardDecision.Enable:
                    _beforeEnable = Gems.CaptureState();
                    return true;
                case GuardDecision.Skip:
                    Record(GemsState.Disabled, reading.Value is null
                        ? $"{_guardVariable} is not set."
                        : $"{_guardVariable}='{GemsSettings.Show(reading.Value)}' turns GemsInjector off.");
                    return false;
                default:
                    var message =
                        $"Ignoring {_guardVariable}='{GemsSettings.Show(reading.Value ?? "")}': expected 1, true or yes to enable GemsInjector "
                        + "(0, false, no or empty to leave it off); GemsInjector stays disabled.";
                    Log(logger, LogLevel.Warning, message, null);
                    Record(GemsState.Disabled, message);
                    return false;
            }
        }
        catch (Exception ex)
        {
            var message = $"Cannot read the guard variable '{_guardVariable}': {ex.Message}; GemsInjector stays disabled.";
            Log(logger, LogLevel.Warning, message, ex);
            Record(GemsState.Disabled, message);
            return false;
        }
    }

    /// <summary>Logs the success line at Information level and names this worker in <see cref="Gems.Status"/>.</summary>
    public void Succeeded(ILogger? logger, string message)
    {
        Interlocked.Exchange(ref _beforeEnable, null);
        Log(logger, LogLevel.Information, message, null);
        Gems.UpdateStatus(status => status with { Worker = _worker, GuardVariable = _guardVariable });
    }

    /// <summary>
    /// Logs a fallback line at Warning level and records it as the reason in <see cref="Gems.Status"/>. The block is
    /// all or nothing: whatever enabling did before it failed (kernels registered, a record file opened, the kernels
    /// enabled before a patch threw) is undone, back to the state when <see cref="IsGuardEnabled"/> said "enable".
    /// If GemsInjector was already enabled then (by another worker's block or by hand), that configuration stays and
    /// the status stays <see cref="GemsState.Enabled"/> with this failure as its reason; otherwise it becomes
    /// <see cref="GemsState.Fallback"/> and the default kernels run.
    /// </summary>
    public void FellBack(ILogger? logger, string message, Exception exception)
    {
        // The line says what really happened: when another worker of this process had enabled GemsInjector, its
        // configuration stays, and "falling back to default implementation" alone would be wrong.
        var line = message;
        try
        {
            line = Gems.RecordFallback(Interlocked.Exchange(ref _beforeEnable, null), _worker, _guardVariable, message);
        }
        catch (Exception)
        {
            // Undoing is best effort like recording: a worker must start even if the table cannot be put back.
            Record(GemsState.Fallback, message);
        }

        Log(logger, LogLevel.Warning, line, null);
        Log(logger, LogLevel.Debug, "GemsInjector fell back because of this exception:", exception);
    }

    /// <summary>
    /// Whether <paramref name="exception"/> means the kernel assembly (or ILGPU beneath it) could not be loaded:
    /// the .NET counterpart of the seed recipe's <c>ImportError</c>.
    /// </summary>
    public static bool IsKernelLoadFailure(Exception exception)
    {
        for (var current = exception; current is not null; current = current.InnerException)
        {
            var missing = current switch
            {
                FileNotFoundException notFound => notFound.FileName,
                FileLoadException loadFailed => loadFailed.FileName,
                BadImageFormatException badImage => badImage.FileName,
                TypeLoadException typeLoad => typeLoad.Message,
                _ => null,
            };
            if (missing is not null
                && (missing.Contains(KernelAssemblyName, StringComparison.OrdinalIgnoreCase)
                    || missing.Contains("ILGPU", StringComparison.OrdinalIgnoreCase)))
            {
                return true;
            }
        }

        return false;
    }

    internal const string KernelAssemblyName = "GemsInjector.Kernels";

    private static readonly ConcurrentDictionary<string, bool> LoggedOutcomes = new(StringComparer.Ordinal);

    private void Record(GemsState state, string reason)
    {
        try
        {
            Gems.RecordSkipped(state, reason, _worker, _guardVariable);
        }
        catch (Exception)
        {
            // Recording is best effort: a worker must start even if its status cannot be kept.
        }
    }

    private static void Log(ILogger? logger, LogLevel level, string message, Exception? exception)
    {
        // Every [GemsWorker] class of an assembly has its own initializer; the process logs each outcome once.
        if (level >= LogLevel.Information && !LoggedOutcomes.TryAdd(message, true))
        {
            return;
        }

        try
        {
            (logger ?? Gems.DefaultLogger).Log(level, exception, "{Message}", message);
        }
        catch (Exception)
        {
            // The host's logger failed; the default logger still tells the operator.
            try
            {
                Gems.DefaultLogger.Log(level, "{Message}", message);
            }
            catch (Exception)
            {
                // Nothing left to report through; the outcome is still in Gems.Status.
            }
        }
    }
}
