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
    private static readonly Lazy<ILogger> LazyDefaultLogger = new(() => new StandardErrorLogger("GemsInjector", StandardErrorLogger.MinimumLevelFromEnvironment()));
    private static readonly List<PatchState> Patches = [];
    private static volatile GemsStatus _status = GemsStatus.ForThisProcess(GemsState.Disabled, "Gems.Enable has not been called in this process.");
    private static EnabledState? _enabled;
    private static ILogger? _logger;

    /// <summary>The logger used when the host gives none: one line per message on standard error (level from <c>GEMS_LOG_LEVEL</c>).</summary>
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
    /// other settings it re-applies them. On any failure the table is left exactly as it was.
    /// </summary>
    /// <returns>The new <see cref="Status"/>.</returns>
    /// <exception cref="GemsConfigurationException">The options or <c>GEMS_*</c> variables are contradictory or name unknown operators or devices.</exception>
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

            if (closePreviousRecorder && !ReferenceEquals(_enabled?.Recorder, recorder))
            {
                _enabled?.Recorder?.Dispose();
            }

            _enabled = new EnabledState(settings, baseline, recorder);
            _logger = logger;
            if (backend.FallbackReason is { } fallback)
            {
                logger.LogWarning("{DeviceFallback}", fallback);
            }

            foreach (var line in lines)
            {
                logger.LogInformation("{OverrideLine}", line);
            }

            SetStatus(_status with
            {
                State = GemsState.Enabled,
                Reason = $"Enabled: {kernels.Length} operators on {backend.Device}." + (backend.FallbackReason is { } reason ? " " + reason : ""),
                Device = backend.Device,
                OverriddenOperators = kernels.Select(pair => pair.Operator.Name).ToArray(),
                Timestamp = DateTimeOffset.UtcNow,
            });
            return _status;
        }
    }

    /// <summary>
    /// Enables GemsInjector (as <see cref="Enable(GemsOptions?)"/>) until the returned scope is disposed, which puts
    /// back exactly what was there before: the kernels, the state and the status (FlagGems' <c>use_gems</c>).
    /// </summary>
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
    /// Does nothing when GemsInjector is not enabled.
    /// </summary>
    public static void Disable()
    {
        lock (Sync)
        {
            RevertPatches();
            if (_enabled is not { } enabled)
            {
                return;
            }

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
    }

    /// <summary>Registers a host framework's patch; <see cref="ApplyPatches(bool)"/> applies it.</summary>
    /// <returns>A registration whose disposal reverts the patch if applied and removes it.</returns>
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
    /// <exception cref="InvalidOperationException">A patch threw; the patches applied by this call were reverted. The message names the patch.</exception>
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
                    foreach (var done in Enumerable.Reverse(applied))
                    {
                        done.Patch.Revert();
                        done.Applied = false;
                    }

                    throw new InvalidOperationException($"Applying the patch {state.Patch.Layer}.{state.Patch.Method} failed: {ex.Message}", ex);
                }

                state.Applied = true;
                applied.Add(state);
            }

            var logger = _logger ?? DefaultLogger;
            var lines = applied.Select(state => state.Patch.AppliedLine).ToArray();
            foreach (var line in lines)
            {
                logger.Log(verbose ? LogLevel.Information : LogLevel.Debug, "{PatchLine}", line);
            }

            return lines;
        }
    }

    internal static void SetStatus(GemsStatus status) => _status = status;

    internal static void UpdateStatus(Func<GemsStatus, GemsStatus> update)
    {
        lock (Sync)
        {
            _status = update(_status);
        }
    }

    private static void RevertPatches()
    {
        foreach (var state in Enumerable.Reverse(Patches).Where(state => state.Applied))
        {
            state.Patch.Revert();
            state.Applied = false;
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

    private sealed record EnabledState(GemsSettings Settings, KernelRegistration[] Baseline, CallRecorder? Recorder);

    private sealed record SavedState(KernelRegistration[] Table, EnabledState? Enabled, GemsStatus Status, ILogger? Logger);

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
                if (!Patches.Remove(state))
                {
                    return;
                }

                if (state.Applied)
                {
                    state.Patch.Revert();
                    state.Applied = false;
                }
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
