using System;
using System.Collections.Generic;
using System.Globalization;
using System.Linq;
using System.Text;
using GemsInjector;

namespace GemsLlm;

/// <summary>One worker of a fleet: what it reported about itself and how fast it generated.</summary>
/// <param name="Rank">The worker's rank or name in the job.</param>
/// <param name="Status">The worker's own <see cref="Gems.Status"/>.</param>
/// <param name="TokensPerSecond">Its generation speed, when it generated.</param>
public sealed record FleetRow(string Rank, GemsStatus Status, double? TokensPerSecond);

/// <summary>Prints a fleet's statuses as one table, so nobody has to read every node's log.</summary>
public static class FleetTable
{
    /// <summary>The longest reason shown in the table; longer ones are cut there and printed in full below it.</summary>
    public const int ReasonWidth = 60;

    /// <summary>The table: rank, pid, host, device, state, reason, operators overridden, tokens/s; then the full reason of every worker not enabled.</summary>
    public static string Format(IEnumerable<FleetRow> rows)
    {
        ArgumentNullException.ThrowIfNull(rows);
        var list = rows.ToList();
        string[] header = ["rank", "pid", "host", "device", "state", "reason", "operators", "tokens/s"];
        var cells = list.Select(row => new[]
        {
            row.Rank,
            row.Status.ProcessId.ToString(CultureInfo.InvariantCulture),
            row.Status.HostName,
            row.Status.Device.Length == 0 ? "-" : row.Status.Device,
            row.Status.State.ToString().ToLowerInvariant(),
            Shorten(row.Status.Reason),
            row.Status.OverriddenOperators.Count.ToString(CultureInfo.InvariantCulture),
            row.TokensPerSecond is { } rate ? rate.ToString("F1", CultureInfo.InvariantCulture) : "-",
        }).ToList();
        var widths = header.Select((title, column) => cells.Select(cell => cell[column].Length).Append(title.Length).Max()).ToArray();
        var text = new StringBuilder();
        void Line(IReadOnlyList<string> values)
        {
            text.AppendLine(string.Join("  ", values.Select((value, column) => column is 1 or 6 or 7 ? value.PadLeft(widths[column]) : value.PadRight(widths[column]))).TrimEnd());
        }

        Line(header);
        Line(widths.Select(width => new string('-', width)).ToArray());
        foreach (var row in cells)
        {
            Line(row);
        }

        var enabled = list.Count(row => row.Status.State == GemsState.Enabled);
        text.AppendLine(CultureInfo.InvariantCulture, $"{enabled} of {list.Count} workers run GemsInjector's kernels.");
        foreach (var row in list.Where(row => row.Status.State != GemsState.Enabled))
        {
            text.AppendLine(CultureInfo.InvariantCulture, $"  rank {row.Rank} ({row.Status.State.ToString().ToLowerInvariant()}): {row.Status.Reason}");
        }

        return text.ToString();
    }

    private static string Shorten(string reason)
    {
        var line = reason.ReplaceLineEndings(" ");
        return line.Length <= ReasonWidth ? line : line[..(ReasonWidth - 3)] + "...";
    }
}
