using System.Collections.Generic;
using Microsoft.Extensions.Logging;

namespace GemsInjector;

/// <summary>
/// How <see cref="Gems.Enable(GemsOptions?)"/> enables the kernels. A property left <see langword="null"/> takes
/// its value from the environment (<c>GEMS_INCLUDE</c>, <c>GEMS_EXCLUDE</c>, <c>GEMS_RECORD</c>, <c>GEMS_DEVICE</c>),
/// so nodes can be configured without code changes.
/// </summary>
public sealed record GemsOptions
{
    /// <summary>Only these operators are overridden (FlagGems' <c>only_enable</c>). Cannot be combined with <see cref="Exclude"/>.</summary>
    public IReadOnlyList<string>? Include { get; init; }

    /// <summary>These operators keep their default kernel (FlagGems' <c>unused</c>). Cannot be combined with <see cref="Include"/>.</summary>
    public IReadOnlyList<string>? Exclude { get; init; }

    /// <summary>
    /// Where to log each operator call, or <see langword="null"/> for no log. The path may hold <c>{pid}</c> and
    /// <c>{rank}</c> so that workers sharing a folder do not overwrite one another.
    /// </summary>
    public string? RecordPath { get; init; }

    /// <summary>With <see cref="RecordPath"/>: log each operator once rather than every call.</summary>
    public bool RecordOnce { get; init; }

    /// <summary>The kernel backend: <c>auto</c>, <c>cuda</c>, <c>opencl</c>, <c>cpu</c> or <c>ilgpu-cpu</c>.</summary>
    public string? Device { get; init; }

    /// <summary>Where the override lines and the outcome are logged; <see cref="Gems.DefaultLogger"/> when not set.</summary>
    public ILogger? Logger { get; init; }
}
