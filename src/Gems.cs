using System;
using System.Collections.Generic;
using System.Linq;
using GemsInjector.Logging;
using GemsInjector.Operators;
using Microsoft.Extensions.Logging;

namespace GemsInjector;

/// <summary>
/// Switches GemsInjector's kernels on and off for this process. Thread-safe; every change is all-or-nothing, so the
/// operator table never holds half of one configuration and half of another.
/// </summary>
public static class Gems
{
    private static readonly object Sync = new();
    private static readonly Lazy<ILogger> LazyDefaultLogger = new(() => StandardErrorLogger.FromEnvironment("GemsInjector"));
    private static readonly List<PatchState> Patches = [];
    private static volatile GemsStatus _status = GemsStatus.ForThisProcess(GemsState.Disabled, "Gems.Enable has not been called in this process.");
    private static EnabledState? _enabled;
    private static ILogger? _logger;

    /// <summary>
    /// The logger used when the host gives none: one line per message on standard error. Its level comes from
    /// <c>GEMS_LOG_LEVEL</c> (Trace, Debug, Information, Warning, Error, Critical or None, or the short forms the lines
    /// start with, any case); any other value logs at Information and says so in a warning.
    /// </summary>
    public static ILogger DefaultLogger => LazyDefaultLogger.Value;

    /// <summary>This process's enablement: state, reason, device, overridden operators, process, host and rank.</summary>
    public static GemsStatus Status => _status;

    /// <summary>Whether GemsInjector's kernels are in the operator table now.</summary>
    public static bool IsEnabled
    {
        get
        {
            lock (Sync)
            {
                return _enabled is not null;
            }
        }
    }

    /// <summary>
    /// Overrides the default kernels of the operator table with GemsInjector's and logs, per operator, the line
    /// "Overriding a previously registered kernel ...". Calling it again with the same settings does nothing; with
    /// other settings it re-applies them.
    /// </summary>
    /// <remarks>
    /// All or nothing: when it throws, the operator table, the record file, the logger and <see cref="Status"/> are
    /// exactly as before the call. In particular a failed re-enable from an enabled state leaves the previous
    /// configuration enabled (its kernels, its record file, its status); it does not fall back to the default kernels.
    /// A device that cannot be initialized is not a failure: the CPU kernels are enabled and the status and a warning
    /// say why. A host logger that throws cannot undo a successful enable: its lines go to <see cref="DefaultLogger"/>.
    /// </remarks>
    /// <returns>The new <see cref="Status"/>.</returns>
    /// <exception cref="GemsConfigurationException">The options or <c>GEMS_*</c> variables are contradictory or name unknown operators or devices, or the record file cannot be opened.</exception>
    public static GemsStatus Enable(GemsOptions? options = null) => Enable(options, closePreviousRecorder: true);

    private static GemsStatus Enable(GemsOptions? options, bool closePreviousRecorder)
    {
        lock (Sync)
        {
            var settings = GemsSettings.Resolve(options);
            var logger = options?.Logger ?? _logger ?? DefaultLogger;
            if (_enabled is { } current && current.Settings.Equals(settings))
            {
                return _status;
            }

            // Everything that can fail without touching the table (backend, kernels, record file) comes first.
            var baseline = _enabled?.Baseline ?? OperatorTable.Snapshot();
            var backend = KernelBackendSelection.Select(settings.Device);
            var kernels = backend.Kernels.Where(pair => settings.Operators.Contains(pair.Operator.Name)).ToArray();
            var recorder = settings.RecordPath is null ? null : CallRecorder.Open(settings.RecordPath, settings.RecordOnce, _status.Rank);
            var before = OperatorTable.Snapshot();
            var lines = new List<string>();
            try
            {
                OperatorTable.Restore(baseline);
                foreach (var (op, kernel) in kernels)
                {
                    FaultInjection.At(FaultPoint.Registration, op.Name);
                    var previous = op.Current;
                    op.Register(recorder is null ? kernel : op.Recording(kernel, recorder));
                    lines.Add(op.OverrideLine(previous, kernel));
                }
            }
            catch
            {
                OperatorTable.Restore(before);
                recorder?.Dispose();
                throw;
            }

            // The table has changed: the state and status follow before anything else can throw (the host's logger).
            var previousRecorder = _enabled?.Recorder;
            _enabled = new EnabledState(settings, baseline, recorder, backend.Starting);
            _logger = logger;
            var warnings = settings.Warnings
                .Concat(GemsKernelCatalog.CpuThreadProblem is { } threads ? [threads] : Array.Empty<string>())
                .Concat(GemsKernelCatalog.OffloadProblem is { } offload ? [offload] : Array.Empty<string>()).ToList();
            var notes = warnings.ToList();
            if (backend.FallbackReason is { } fallback)
            {
                notes.Insert(0, fallback);
            }

            SetStatus(_status with
            {
                State = GemsState.Enabled,
                Reason = $"Enabled: {kernels.Length} operators on {backend.Device}." + string.Concat(notes.Select(note => " " + note)),
                Device = backend.Device,
                OverriddenOperators = kernels.Select(pair => pair.Operator.Name).ToArray(),
                Timestamp = DateTimeOffset.UtcNow,
            });
            if (closePreviousRecorder && !ReferenceEquals(previousRecorder, recorder))
            {
                previousRecorder?.Dispose();
            }

            if (backend.FallbackReason is { } deviceFallback)
            {
                LogSafely(logger, LogLevel.Warning, "{DeviceFallback}", deviceFallback);
            }

            foreach (var warning in warnings)
            {
                LogSafely(logger, LogLevel.Warning, "{SettingWarning}", warning);
            }

            foreach (var line in lines)
            {
                LogSafely(logger, LogLevel.Information, "{OverrideLine}", line);
            }

            return _status;
        }
    }

    /// <summary>
    /// Enables GemsInjector (as <see cref="Enable(GemsOptions?)"/>) until the returned scope is disposed, which puts
    /// back exactly what was there before: the kernels, the state and the status (FlagGems' <c>use_gems</c>).
    /// </summary>
    /// <remarks>
    /// The scope is process-wide, not per thread: disposing it restores the snapshot taken when it began, whatever
    /// other threads did in between. Nested scopes restore exactly when disposed in reverse order (as <c>using</c>
    /// does); scopes of several threads that overlap end in the state of the last one disposed, which is always one
    /// complete configuration, never a mix. <see cref="Disable"/> still puts back the default kernels afterwards.
    /// If enabling throws, nothing changed and no scope is returned.
    /// </remarks>
    /// <exception cref="GemsConfigurationException">As for <see cref="Enable(GemsOptions?)"/>.</exception>
    public static IDisposable Use(GemsOptions? options = null)
    {
        lock (Sync)
        {
            var saved = new SavedState(OperatorTable.Snapshot(), _enabled, _status, _logger);
            Enable(options, closePreviousRecorder: false);
            return new Scope(saved);
        }
    }

    /// <summary>
    /// Puts back the kernels the table held before GemsInjector was first enabled and reverts applied patches.
    /// The kernels are put back first, so a failing patch cannot keep them in place. When GemsInjector is not
    /// enabled, only the patches are reverted.
    /// </summary>
    /// <exception cref="InvalidOperationException">
    /// A patch's <see cref="GemsPatch.Revert"/> threw. The kernels, the status and the other patches were still put
    /// back; the failed patch stays marked applied, so the next <see cref="Disable"/> (or disposing its registration)
    /// tries again. The message names the patch.
    /// </exception>
    public static void Disable()
    {
        lock (Sync)
        {
            if (_enabled is { } enabled)
            {
                OperatorTable.Restore(enabled.Baseline);
                enabled.Recorder?.Dispose();
                _enabled = null;
                SetStatus(_status with
                {
                    State = GemsState.Disabled,
                    Reason = "Disabled by Gems.Disable().",
                    Device = "",
                    OverriddenOperators = [],
                    Timestamp = DateTimeOffset.UtcNow,
                });
            }

            var failures = RevertPatches(Enumerable.Reverse(Patches).Where(state => state.Applied).ToArray());
            if (failures.Count > 0)
            {
                var message = $"Gems.Disable() put back the default kernels, but reverting {string.Join("; ", failures)}.";
                SetStatus(_status with { Reason = message, Timestamp = DateTimeOffset.UtcNow });
                LogSafely(_logger ?? DefaultLogger, LogLevel.Error, "{PatchFailure}", message);
                throw new InvalidOperationException(message);
            }
        }
    }

    /// <summary>Registers a host framework's patch; <see cref="ApplyPatches(bool)"/> applies it.</summary>
    /// <returns>
    /// A registration whose disposal reverts the patch if applied and removes it; if the revert throws, disposal throws
    /// <see cref="InvalidOperationException"/> naming the patch and the patch stays registered.
    /// </returns>
    /// <exception cref="ArgumentException">A patch for the same layer method is already registered.</exception>
    public static IDisposable RegisterPatch(GemsPatch patch)
    {
        ArgumentNullException.ThrowIfNull(patch);
        lock (Sync)
        {
            if (Patches.Any(existing => existing.Patch.Layer == patch.Layer && existing.Patch.Method == patch.Method))
            {
                throw new ArgumentException($"A patch for {patch.Layer}.{patch.Method} is already registered.", nameof(patch));
            }

            var state = new PatchState(patch);
            Patches.Add(state);
            return new PatchRegistration(state);
        }
    }

    /// <summary>
    /// Applies every registered patch not yet applied, all or none, and returns the lines
    /// <c>Patched &lt;Layer&gt;.&lt;Method&gt; with GEMS &lt;op&gt;</c>; logs them at Information level when
    /// <paramref name="verbose"/>, else at Debug level.
    /// </summary>
    /// <exception cref="InvalidOperationException">
    /// A patch threw; the patches applied by this call were reverted (one whose revert throws too stays marked applied
    /// and is named in the message). The message names the patch. The kernels are not touched.
    /// </exception>
    public static IReadOnlyList<string> ApplyPatches(bool verbose = false)
    {
        lock (Sync)
        {
            var applied = new List<PatchState>();
            foreach (var state in Patches.Where(state => !state.Applied))
            {
                try
                {
                    state.Patch.Apply();
                }
                catch (Exception ex)
                {
                    var revertFailures = RevertPatches(Enumerable.Reverse(applied).ToArray());
                    var also = revertFailures.Count == 0 ? "" : $" Undoing the patches applied before it also failed: reverting {string.Join("; ", revertFailures)}.";
                    throw new InvalidOperationException($"Applying the patch {state.Patch.Layer}.{state.Patch.Method} failed: {ex.Message}{also}", ex);
                }

                state.Applied = true;
                applied.Add(state);
            }

            var logger = _logger ?? DefaultLogger;
            var lines = applied.Select(state => state.Patch.AppliedLine).ToArray();
            foreach (var line in lines)
            {
                LogSafely(logger, verbose ? LogLevel.Information : LogLevel.Debug, "{PatchLine}", line);
            }

            return lines;
        }
    }

    internal static void SetStatus(GemsStatus status) => _status = status;

    /// <summary>
    /// An enabled device kernel could not be built on its first call, so <paramref name="operatorName"/> now runs its CPU
    /// kernel: says so once in the log and in <see cref="Status"/>'s reason (the operator stays overridden).
    /// </summary>
    internal static void ReportKernelFallback(string operatorName, string reason)
    {
        var message = $"{operatorName}: {reason}; {operatorName} runs on the CPU kernels from now on.";
        ILogger logger;
        lock (Sync)
        {
            logger = _logger ?? DefaultLogger;
            _status = _status with { Reason = _status.Reason + " " + message, Timestamp = DateTimeOffset.UtcNow };
        }

        LogSafely(logger, LogLevel.Warning, "{KernelFallback}", message);
    }

    /// <summary>
    /// Waits until the device that <see cref="Enable(GemsOptions?)"/> started is up (or has failed, leaving the CPU
    /// kernels in its place), so that <see cref="Status"/> names the device that really runs the kernels. A GPU is
    /// created on a background thread so that enabling does not wait for the driver; the first call of an operator it
    /// takes waits for it anyway, so this is only for reporting. Returns at once when no device is being created.
    /// </summary>
    /// <param name="timeout">How long to wait at most; <see cref="System.Threading.Timeout.InfiniteTimeSpan"/> waits for good.</param>
    /// <returns>The <see cref="Status"/> after the wait: its device is still <c>&lt;device&gt; (starting)</c> if the time ran out.</returns>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="timeout"/> is negative (other than infinite).</exception>
    public static GemsStatus WaitForDevice(TimeSpan timeout)
    {
        if (timeout < TimeSpan.Zero && timeout != System.Threading.Timeout.InfiniteTimeSpan)
        {
            throw new ArgumentOutOfRangeException(nameof(timeout), timeout, "The timeout must not be negative (or must be Timeout.InfiniteTimeSpan).");
        }

        DeviceStart? starting;
        lock (Sync)
        {
            starting = _enabled?.Starting;
        }

        starting?.Reported.Wait(timeout);
        return _status;
    }

    /// <summary>
    /// The device <paramref name="start"/> is up (<paramref name="description"/>) or is not (<paramref name="fallbackReason"/>,
    /// or neither for <c>auto</c> without a GPU): the status says so, if the configuration that started it is still enabled.
    /// </summary>
    internal static void ReportDeviceStart(DeviceStart start, string? description, string? fallbackReason)
    {
        ILogger logger;
        lock (Sync)
        {
            if (_enabled?.Starting != start || _status.Device != start.PendingDescription)
            {
                return;
            }

            var device = description ?? GemsKernelCatalog.CpuBackend;
            logger = _logger ?? DefaultLogger;
            _status = _status with
            {
                Reason = _status.Reason.Replace($" on {start.PendingDescription}.", $" on {device}.", StringComparison.Ordinal) + (fallbackReason is null ? "" : " " + fallbackReason),
                Device = device,
                Timestamp = DateTimeOffset.UtcNow,
            };
        }

        if (fallbackReason is not null)
        {
            LogSafely(logger, LogLevel.Warning, "{DeviceFallback}", fallbackReason);
        }
        else if (description is not null)
        {
            LogSafely(logger, LogLevel.Information, "{DeviceStarted}", $"Device {description} is up; its kernels serve from now on.");
        }
    }

    internal static void UpdateStatus(Func<GemsStatus, GemsStatus> update)
    {
        lock (Sync)
        {
            _status = update(_status);
        }
    }

    /// <summary>
    /// Reverts <paramref name="states"/> in order; one that throws stays marked applied and the others still revert.
    /// </summary>
    /// <returns>One "the patch Layer.Method failed: message" per failure.</returns>
    private static List<string> RevertPatches(IReadOnlyList<PatchState> states)
    {
        var failures = new List<string>();
        foreach (var state in states)
        {
            try
            {
                state.Patch.Revert();
                state.Applied = false;
            }
            catch (Exception ex)
            {
                failures.Add($"the patch {state.Patch.Layer}.{state.Patch.Method} failed: {ex.Message}");
            }
        }

        return failures;
    }

    /// <summary>Logs through the host's logger, or through <see cref="DefaultLogger"/> if that throws; never throws.</summary>
    private static void LogSafely(ILogger logger, LogLevel level, string template, string value)
    {
        try
        {
            logger.Log(level, template, value);
            return;
        }
        catch (Exception)
        {
            // The host's logger is broken; the line still goes to standard error below.
        }

        try
        {
            if (!ReferenceEquals(logger, DefaultLogger))
            {
                DefaultLogger.Log(level, template, value);
            }
        }
        catch (Exception)
        {
            // Nothing left to log through; the outcome is still in Status.
        }
    }

    /// <summary>
    /// The state at one instant (a consistent view of table and status, which reading them one by one is not while
    /// other threads enable): what a worker's start-up block puts back when enabling fails after the guard asked for it.
    /// </summary>
    internal static SavedState CaptureState()
    {
        lock (Sync)
        {
            return new SavedState(OperatorTable.Snapshot(), _enabled, _status, _logger);
        }
    }

    /// <summary>
    /// Records why a start-up block did not enable GemsInjector, unless it is enabled already: then the status keeps
    /// describing the kernels in the table, which the block leaves alone.
    /// </summary>
    internal static void RecordSkipped(GemsState state, string reason, string worker, string guardVariable)
    {
        lock (Sync)
        {
            if (_enabled is null)
            {
                _status = GemsStatus.ForThisProcess(state, reason) with { Worker = worker, GuardVariable = guardVariable };
            }
        }
    }

    /// <summary>
    /// Undoes a failed start-up block: puts back <paramref name="captured"/> (from <see cref="CaptureState"/>; the
    /// kernels, record file and logger as they were), then records the fallback. When GemsInjector was already
    /// enabled before the block (by another worker or by hand), it stays enabled as it was and the status says so;
    /// otherwise the status becomes <see cref="GemsState.Fallback"/>.
    /// </summary>
    /// <returns>The reason now in the status: <paramref name="message"/>, plus what stayed enabled when another worker had enabled.</returns>
    internal static string RecordFallback(SavedState? captured, string worker, string guardVariable, string message)
    {
        lock (Sync)
        {
            if (captured is not null)
            {
                Restore(captured);
            }

            _status = _enabled is null
                ? GemsStatus.ForThisProcess(GemsState.Fallback, message) with { Worker = worker, GuardVariable = guardVariable }
                : _status with
                {
                    State = GemsState.Enabled,
                    Reason = $"{message} GemsInjector stays enabled as it was before ({_status.OverriddenOperators.Count} operators on {_status.Device}).",
                    Worker = worker,
                    GuardVariable = guardVariable,
                    Timestamp = DateTimeOffset.UtcNow,
                };
            return _status.Reason;
        }
    }

    private static void Restore(SavedState saved)
    {
        lock (Sync)
        {
            OperatorTable.Restore(saved.Table);
            if (!ReferenceEquals(_enabled?.Recorder, saved.Enabled?.Recorder))
            {
                _enabled?.Recorder?.Dispose();
            }

            _enabled = saved.Enabled;
            _logger = saved.Logger;
            _status = saved.Status;
        }
    }

    internal sealed record EnabledState(GemsSettings Settings, KernelRegistration[] Baseline, CallRecorder? Recorder, DeviceStart? Starting);

    /// <summary>The whole Gems state at one instant, taken under the lock: the table, the enablement, the status and the logger.</summary>
    internal sealed record SavedState(KernelRegistration[] Table, EnabledState? Enabled, GemsStatus Status, ILogger? Logger);

    private sealed class PatchState(GemsPatch patch)
    {
        public GemsPatch Patch { get; } = patch;

        public bool Applied { get; set; }
    }

    private sealed class PatchRegistration(PatchState state) : IDisposable
    {
        public void Dispose()
        {
            lock (Sync)
            {
                if (!Patches.Contains(state))
                {
                    return;
                }

                // A patch that fails to revert stays registered and applied, so disposing again (or Disable) retries.
                if (state.Applied && RevertPatches([state]) is [var failure, ..])
                {
                    throw new InvalidOperationException($"Reverting {failure}; the patch stays registered.");
                }

                Patches.Remove(state);
            }
        }
    }

    private sealed class Scope(SavedState saved) : IDisposable
    {
        private SavedState? _saved = saved;

        public void Dispose()
        {
            if (System.Threading.Interlocked.Exchange(ref _saved, null) is { } state)
            {
                Restore(state);
            }
        }
    }
}
