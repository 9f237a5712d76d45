using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.IO;
using System.Linq;
using System.Text;
using System.Text.RegularExpressions;
using System.Threading;

namespace GemsInjector.TestProcesses;

/// <summary>The fault tests: a child process watched line by line while it runs, so a test can act at a known point.</summary>
internal static partial class ProcessRunner
{
    /// <summary>Starts a child with the same clean environment as <see cref="Run"/>, and returns at once.</summary>
    public static WatchedProcess Start(string fileName, IEnumerable<string> arguments, string workingDirectory)
    {
        var start = CleanStart(fileName, arguments, workingDirectory, new Dictionary<string, string?>());
        return new WatchedProcess(start);
    }

    /// <summary>
    /// Whether a process is still running. Linux only (as the samples' tests are): a zombie, dead but not yet reaped
    /// (a container's init may never reap the orphans it adopts), counts as gone.
    /// </summary>
    public static bool IsRunning(int processId)
    {
        string stat;
        try
        {
            stat = File.ReadAllText($"/proc/{processId}/stat");
        }
        catch (IOException)
        {
            return false;
        }
        catch (UnauthorizedAccessException)
        {
            return true;
        }

        // "pid (name) S ...": the name may hold spaces and parentheses, so the state follows the last ')'.
        var state = stat[(stat.LastIndexOf(')') + 2)..].FirstOrDefault();
        return state is not ('Z' or 'X' or '\0');
    }

    /// <summary>Sends a signal with the system's kill command (.NET itself sends only SIGKILL, by <see cref="Process.Kill()"/>).</summary>
    public static void Signal(int processId, string signal)
    {
        using var kill = Process.Start(new ProcessStartInfo("kill", [$"-{signal}", processId.ToString(System.Globalization.CultureInfo.InvariantCulture)]) { UseShellExecute = false })!;
        kill.WaitForExit();
        if (kill.ExitCode != 0)
        {
            throw new InvalidOperationException($"kill -{signal} {processId} failed with exit code {kill.ExitCode}.");
        }
    }
}

/// <summary>A running child whose output lines a test can wait for.</summary>
internal sealed class WatchedProcess : IDisposable
{
    private readonly Process _process;
    private readonly List<string> _output = [];
    private readonly StringBuilder _error = new();

    public WatchedProcess(ProcessStartInfo start)
    {
        _process = new Process { StartInfo = start };
        _process.OutputDataReceived += (_, e) =>
        {
            if (e.Data is not null)
            {
                lock (_output)
                {
                    _output.Add(e.Data);
                    Monitor.PulseAll(_output);
                }
            }
        };
        _process.ErrorDataReceived += (_, e) => { if (e.Data is not null) { lock (_error) { _error.AppendLine(e.Data); } } };
        _process.Start();
        _process.BeginOutputReadLine();
        _process.BeginErrorReadLine();
    }

    public int Id => _process.Id;

    public string StandardOutput
    {
        get
        {
            lock (_output)
            {
                return string.Join('\n', _output);
            }
        }
    }

    public string StandardError
    {
        get
        {
            lock (_error)
            {
                return _error.ToString();
            }
        }
    }

    /// <summary>Waits until a line of standard output matches; fails with everything seen so far if none does in time.</summary>
    public Match WaitForLine(Regex pattern, TimeSpan timeout)
    {
        var clock = Stopwatch.StartNew();
        TimeSpan? exitedAt = null;
        lock (_output)
        {
            var seen = 0;
            while (true)
            {
                for (; seen < _output.Count; seen++)
                {
                    if (pattern.Match(_output[seen]) is { Success: true } match)
                    {
                        return match;
                    }
                }

                // A process that exited gets a moment for its last lines to arrive, then the wait fails at once.
                exitedAt ??= _process.HasExited ? clock.Elapsed : null;
                if (clock.Elapsed > timeout || clock.Elapsed - exitedAt > TimeSpan.FromSeconds(1))
                {
                    throw new TimeoutException($"No line matched /{pattern}/ within {timeout.TotalSeconds:F0} s{(exitedAt is null ? "" : " (the process exited)")}.\n{this}");
                }

                Monitor.Wait(_output, TimeSpan.FromMilliseconds(200));
            }
        }
    }

    /// <summary>Waits for the process to exit and for its output to be read to the end; kills it if it runs past the timeout.</summary>
    public int WaitForExit(TimeSpan timeout)
    {
        if (!_process.WaitForExit(timeout))
        {
            _process.Kill(entireProcessTree: true);
            _process.WaitForExit();
            throw new TimeoutException($"The process did not exit within {timeout.TotalSeconds:F0} s.\n{this}");
        }

        // The parameterless wait also waits for the redirected streams to reach their end.
        _process.WaitForExit();
        return _process.ExitCode;
    }

    /// <summary>Kills the process (SIGKILL on Unix) without its children, as the OOM killer would.</summary>
    public void Kill() => _process.Kill(entireProcessTree: false);

    public override string ToString() => $"--- stdout ---\n{StandardOutput}\n--- stderr ---\n{StandardError}";

    public void Dispose()
    {
        try
        {
            if (!_process.HasExited)
            {
                _process.Kill(entireProcessTree: true);
                _process.WaitForExit();
            }
        }
        catch (InvalidOperationException)
        {
            // Never started or already gone.
        }

        _process.Dispose();
    }
}
