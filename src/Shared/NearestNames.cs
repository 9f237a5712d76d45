using System;
using System.Collections.Generic;
using System.Linq;

namespace GemsInjector;

/// <summary>
/// The known names nearest to a mistyped one, for "did you mean" messages. One source file compiled into the runtime
/// (configuration errors) and into the analyzers (GEMS005), so both suggest the same names.
/// </summary>
internal static class NearestNames
{
    /// <summary>Names farther than this (or than half the typed name's length, if more) are not suggested.</summary>
    internal const int MaxDistance = 3;

    /// <summary>At most this many suggestions.</summary>
    internal const int MaxSuggestions = 3;

    /// <summary>Up to <see cref="MaxSuggestions"/> of <paramref name="known"/>, nearest first, ignoring case; empty when none is close.</summary>
    public static List<string> Find(string name, IEnumerable<string> known)
    {
        if (name.Length == 0)
        {
            return [];
        }

        var lowered = name.ToLowerInvariant();
        var limit = Math.Max(MaxDistance, name.Length / 2);
        return known
            .Select(candidate => (candidate, distance: EditDistance(lowered, candidate.ToLowerInvariant())))
            .Where(pair => pair.distance <= limit)
            .OrderBy(pair => pair.distance)
            .ThenBy(pair => pair.candidate, StringComparer.Ordinal)
            .Take(MaxSuggestions)
            .Select(pair => pair.candidate)
            .ToList();
    }

    /// <summary>The Levenshtein distance (insertions, deletions, substitutions; ordinal).</summary>
    public static int EditDistance(string a, string b)
    {
        var previous = new int[b.Length + 1];
        var current = new int[b.Length + 1];
        for (var j = 0; j <= b.Length; j++)
        {
            previous[j] = j;
        }

        for (var i = 1; i <= a.Length; i++)
        {
            current[0] = i;
            for (var j = 1; j <= b.Length; j++)
            {
                var substitution = previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1);
                current[j] = Math.Min(Math.Min(previous[j] + 1, current[j - 1] + 1), substitution);
            }

            (previous, current) = (current, previous);
        }

        return previous[b.Length];
    }
}
