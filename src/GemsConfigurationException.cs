using System;

namespace GemsInjector;

/// <summary>
/// GemsInjector's configuration (options or <c>GEMS_*</c> environment variables) is contradictory or names something
/// that does not exist. The message names the setting and its value. A worker's start-up block logs it and falls back.
/// </summary>
public sealed class GemsConfigurationException : Exception
{
    /// <summary>Creates the exception with a message that names the faulty setting.</summary>
    public GemsConfigurationException(string message)
        : base(message)
    {
    }

    /// <summary>Creates the exception with a message that names the faulty setting, and the failure beneath it.</summary>
    public GemsConfigurationException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}
