using System;

namespace GemsInjector;

/// <summary>What a guard variable's value asks for.</summary>
public enum GuardDecision
{
    /// <summary>Unset, empty, <c>0</c>, <c>false</c> or <c>no</c>: keep the default kernels, quietly.</summary>
    Skip,

    /// <summary><c>1</c>, <c>true</c> or <c>yes</c> (any case, surrounding white space ignored).</summary>
    Enable,

    /// <summary>Any other value: keep the default kernels and warn, since the user probably meant to enable them.</summary>
    Invalid,
}

/// <summary>A guard variable as read from the environment.</summary>
/// <param name="Variable">The variable's name.</param>
/// <param name="Value">Its raw value, or <see langword="null"/> when unset.</param>
/// <param name="Decision">What the value asks for.</param>
public readonly record struct GuardReading(string Variable, string? Value, GuardDecision Decision);

/// <summary>Parses the environment variable that switches GemsInjector on (the seed recipe's <c>USE_FLAGGEMS</c>).</summary>
public static class GemsGuard
{
    /// <summary>The guard variable used when neither the attribute nor MSBuild names another: <c>USE_FLAGGEMS</c>.</summary>
    public const string DefaultVariable = "USE_FLAGGEMS";

    /// <summary>Classifies a guard value. <see langword="null"/> means the variable is not set.</summary>
    public static GuardDecision Parse(string? value)
    {
        if (value is null)
        {
            return GuardDecision.Skip;
        }

        var trimmed = value.AsSpan().Trim();
        if (trimmed.IsEmpty || IsAny(trimmed, "0", "false", "no"))
        {
            return GuardDecision.Skip;
        }

        return IsAny(trimmed, "1", "true", "yes") ? GuardDecision.Enable : GuardDecision.Invalid;
    }

    /// <summary>Reads <paramref name="variable"/> from the process environment and classifies its value.</summary>
    /// <exception cref="ArgumentException"><paramref name="variable"/> is not a usable environment variable name.</exception>
    public static GuardReading Read(string variable)
    {
        ValidateVariableName(variable, nameof(variable));
        var value = Environment.GetEnvironmentVariable(variable);
        return new GuardReading(variable, value, Parse(value));
    }

    /// <summary>Whether <paramref name="name"/> can name an environment variable: not empty, no white space, no <c>=</c>, no NUL.</summary>
    public static bool IsValidVariableName(string? name)
    {
        if (string.IsNullOrEmpty(name))
        {
            return false;
        }

        foreach (var c in name)
        {
            if (c == '=' || c == '\0' || char.IsWhiteSpace(c))
            {
                return false;
            }
        }

        return true;
    }

    internal static void ValidateVariableName(string? name, string parameterName)
    {
        if (!IsValidVariableName(name))
        {
            throw new ArgumentException(
                $"'{name}' is not a usable environment variable name: it must be non-empty and hold no white space, '=' or NUL.",
                parameterName);
        }
    }

    private static bool IsAny(ReadOnlySpan<char> value, string first, string second, string third) =>
        value.Equals(first, StringComparison.OrdinalIgnoreCase)
        || value.Equals(second, StringComparison.OrdinalIgnoreCase)
        || value.Equals(third, StringComparison.OrdinalIgnoreCase);
}
