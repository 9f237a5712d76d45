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
        lock (_writeLock)
        {
            if (!_closed)
            {
                _writer.WriteLine(line);
            }
        }
    }

    public void Dispose()
    {
        lock (_writeLock)
        {
            // A kernel captured by an outer Use scope may still call Note after the file is closed: it must not throw.
            _closed = true;
            _writer.Dispose();
        }
    }
}
