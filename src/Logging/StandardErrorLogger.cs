using System;
using System.Collections.Generic;
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

    public const string LevelVariable = "GEMS_LOG_LEVEL";

    /// <summary>The level names <c>GEMS_LOG_LEVEL</c> accepts, any case: the <see cref="LogLevel"/> names and the short forms this logger prints.</summary>
    internal static readonly IReadOnlyDictionary<string, LogLevel> LevelNames = new Dictionary<string, LogLevel>(StringComparer.OrdinalIgnoreCase)
    {
        ["Trace"] = LogLevel.Trace,
        ["trce"] = LogLevel.Trace,
        ["Debug"] = LogLevel.Debug,
        ["dbug"] = LogLevel.Debug,
        ["Information"] = LogLevel.Information,
        ["info"] = LogLevel.Information,
        ["Warning"] = LogLevel.Warning,
        ["warn"] = LogLevel.Warning,
        ["Error"] = LogLevel.Error,
        ["fail"] = LogLevel.Error,
        ["Critical"] = LogLevel.Critical,
        ["crit"] = LogLevel.Critical,
        ["None"] = LogLevel.None,
    };

    /// <summary>
    /// Reads a <c>GEMS_LOG_LEVEL</c> value: unset or blank is Information; a name of <see cref="LevelNames"/> (any
    /// case, surrounding white space ignored) is that level; anything else (numbers included, which
    /// <see cref="Enum.TryParse{TEnum}(string, bool, out TEnum)"/> would take as any integer) is Information with a
    /// warning that names the value.
    /// </summary>
    internal static (LogLevel Level, string? Warning) ParseLevel(string? value)
    {
        if (string.IsNullOrWhiteSpace(value))
        {
            return (LogLevel.Information, null);
        }

        if (LevelNames.TryGetValue(value.Trim(), out var level))
        {
            return (level, null);
        }

        return (LogLevel.Information, $"Ignoring {LevelVariable}='{GemsSettings.Show(value)}': expected one of Trace, Debug, Information, Warning, Error, Critical, None "
            + "(or trce, dbug, info, warn, fail, crit); logging at Information.");
    }

    /// <summary>The default logger: level from <c>GEMS_LOG_LEVEL</c>, whose unusable value is itself logged as a warning.</summary>
    public static StandardErrorLogger FromEnvironment(string category)
    {
        var (level, warning) = ParseLevel(Environment.GetEnvironmentVariable(LevelVariable));
        var logger = new StandardErrorLogger(category, level);
        if (warning is not null)
        {
            logger.Log(LogLevel.Warning, default, warning, null, static (message, _) => message);
        }

        return logger;
    }

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
