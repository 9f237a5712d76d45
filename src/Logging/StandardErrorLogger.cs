using System;
using Microsoft.Extensions.Logging;

namespace GemsInjector.Logging;

/// <summary>
/// The logger GemsInjector uses when the host gives it none: one line per message on standard error, written
/// synchronously so that a worker that exits right after start-up loses nothing. Format:
/// <c>info: GemsInjector: message</c>. The minimum level comes from <c>GEMS_LOG_LEVEL</c> (default Information).
/// </summary>
internal sealed class StandardErrorLogger : ILogger
{
    private static readonly object WriteLock = new();
    private readonly string _category;
    private readonly LogLevel _minimumLevel;

    public StandardErrorLogger(string category, LogLevel minimumLevel)
    {
        _category = category;
        _minimumLevel = minimumLevel;
    }

    public static LogLevel MinimumLevelFromEnvironment() =>
        Enum.TryParse<LogLevel>(Environment.GetEnvironmentVariable("GEMS_LOG_LEVEL")?.Trim(), ignoreCase: true, out var level)
            ? level
            : LogLevel.Information;

    public IDisposable? BeginScope<TState>(TState state)
        where TState : notnull => null;

    public bool IsEnabled(LogLevel logLevel) => logLevel != LogLevel.None && logLevel >= _minimumLevel;

    public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
    {
        if (!IsEnabled(logLevel))
        {
            return;
        }

        var line = $"{LevelName(logLevel)}: {_category}: {formatter(state, exception)}";
        lock (WriteLock)
        {
            Console.Error.WriteLine(line);
            if (exception is not null && logLevel <= LogLevel.Debug)
            {
                Console.Error.WriteLine(exception.ToString());
            }
        }
    }

    private static string LevelName(LogLevel level) => level switch
    {
        LogLevel.Trace => "trce",
        LogLevel.Debug => "dbug",
        LogLevel.Information => "info",
        LogLevel.Warning => "warn",
        LogLevel.Error => "fail",
        LogLevel.Critical => "crit",
        _ => "none",
    };
}
