using System;
using System.Collections.Concurrent;
using System.Globalization;
using System.IO;

namespace GemsInjector.Operators;

/// <summary>
/// Writes one line per operator call (or per operator, in once mode) to the record file, like FlagGems' record log.
/// Exists only while recording is on, so calls cost nothing extra when it is off.
/// </summary>
internal sealed class CallRecorder : IDisposable
{
    private readonly StreamWriter _writer;
    private readonly bool _once;
    private readonly ConcurrentDictionary<string, bool> _seen = new(StringComparer.Ordinal);
    private readonly object _writeLock = new();
    private bool _closed;

    private CallRecorder(StreamWriter writer, string path, bool once)
    {
        _writer = writer;
        _once = once;
        Path = path;
    }

    public string Path { get; }

    /// <summary>Opens the record file, expanding <c>{pid}</c> and <c>{rank}</c> in <paramref name="pathTemplate"/>.</summary>
    /// <exception cref="GemsConfigurationException">The file cannot be opened; the message names the path.</exception>
    public static CallRecorder Open(string pathTemplate, bool once, int? rank)
    {
        var path = ExpandPath(pathTemplate, Environment.ProcessId, rank);
        try
        {
            var directory = System.IO.Path.GetDirectoryName(System.IO.Path.GetFullPath(path));
            if (!string.IsNullOrEmpty(directory))
            {
                Directory.CreateDirectory(directory);
            }

            var stream = new FileStream(path, FileMode.Append, FileAccess.Write, FileShare.ReadWrite);
            return new CallRecorder(new StreamWriter(stream) { AutoFlush = true }, path, once);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or ArgumentException or NotSupportedException)
        {
            throw new GemsConfigurationException($"Cannot open the record file '{path}' (from GEMS_RECORD / RecordPath '{pathTemplate}'): {ex.Message}", ex);
        }
    }

    /// <summary>
    /// The first brace group of <paramref name="template"/> that is not <c>{pid}</c> or <c>{rank}</c> (or a lone
    /// brace), or <see langword="null"/> when there is none: a typo such as <c>{PID}</c> or <c>{local_rank}</c> would
    /// otherwise become part of the file name and workers would write to one file.
    /// </summary>
    public static string? FindUnknownPlaceholder(string template)
    {
        for (var i = 0; i < template.Length; i++)
        {
            if (template[i] == '}')
            {
                return "}";
            }

            if (template[i] != '{')
            {
                continue;
            }

            var end = template.IndexOf('}', i + 1);
            if (end < 0)
            {
                return template[i..];
            }

            var placeholder = template[i..(end + 1)];
            if (placeholder is not ("{pid}" or "{rank}"))
            {
                return placeholder;
            }

            i = end;
        }

        return null;
    }

    public static string ExpandPath(string template, int processId, int? rank) =>
        template
            .Replace("{pid}", processId.ToString(CultureInfo.InvariantCulture), StringComparison.Ordinal)
            .Replace("{rank}", rank?.ToString(CultureInfo.InvariantCulture) ?? "norank", StringComparison.Ordinal);

    public void Note(string operatorName)
    {
        if (_once && !_seen.TryAdd(operatorName, true))
        {
            return;
        }

        var line = $"{DateTimeOffset.UtcNow:O} GEMS {operatorName}";
        string? failure = null;
        lock (_writeLock)
        {
            if (_closed)
            {
                return;
            }

            try
            {
                _writer.WriteLine(line);
            }
            catch (IOException ex)
            {
                // An operator call must not fail because its log line cannot be written (a full disk): recording stops.
                _closed = true;
                failure = ex.Message;
            }
        }

        if (failure is not null)
        {
            Microsoft.Extensions.Logging.LoggerExtensions.LogWarning(
                Gems.DefaultLogger, "Recording to '{RecordPath}' stopped: {Failure}", Path, failure);
        }
    }

    public void Dispose()
    {
        lock (_writeLock)
        {
            // A kernel captured by an outer Use scope may still call Note after the file is closed: it must not throw.
            if (_closed)
            {
                return;
            }

            _closed = true;
            try
            {
                _writer.Dispose();
            }
            catch (IOException)
            {
                // Closing is best effort (a full disk fails the last flush); every line was flushed when written.
            }
        }
    }
}
