using System;
using System.IO;
using System.Text;
using Xunit.Sdk;

namespace GemsInjector.Generators.Tests.Infrastructure;

/// <summary>
/// Verify-style snapshots without Verify: the text is compared with <c>Snapshots/&lt;name&gt;.verified.cs</c> in the test
/// project's folder. On a mismatch (or a missing file) <c>&lt;name&gt;.received.cs</c> is written beside it and
/// the test fails with both paths and a diff summary. <c>GEMS_ACCEPT_SNAPSHOTS=1</c> accepts the received text instead.
/// </summary>
internal static class Snapshot
{
    public const string AcceptVariable = "GEMS_ACCEPT_SNAPSHOTS";

    public static void Match(string actual, string name)
    {
        var folder = Path.Combine(TestProject.Directory, "Snapshots");
        var verified = Path.Combine(folder, name + ".verified.cs");
        var received = Path.Combine(folder, name + ".received.cs");
        actual = actual.Replace("\r\n", "\n");

        var expected = File.Exists(verified) ? File.ReadAllText(verified).Replace("\r\n", "\n") : null;
        if (expected == actual)
        {
            if (File.Exists(received))
            {
                File.Delete(received);
            }

            return;
        }

        Directory.CreateDirectory(folder);
        if (Environment.GetEnvironmentVariable(AcceptVariable) == "1")
        {
            File.WriteAllText(verified, actual, new UTF8Encoding(false));
            if (File.Exists(received))
            {
                File.Delete(received);
            }

            return;
        }

        File.WriteAllText(received, actual, new UTF8Encoding(false));
        var message = new StringBuilder();
        message.AppendLine(expected is null ? "No verified snapshot yet." : "The generated source differs from the verified snapshot.");
        message.AppendLine($"  verified: {verified}");
        message.AppendLine($"  received: {received}");
        if (expected is not null)
        {
            message.AppendLine(DiffSummary(expected, actual));
        }

        message.AppendLine($"Review the received file, then move it over the verified one (or run with {AcceptVariable}=1).");
        throw new XunitException(message.ToString());
    }

    private static string DiffSummary(string expected, string actual)
    {
        var left = expected.Split('\n');
        var right = actual.Split('\n');
        var differing = 0;
        var first = -1;
        for (var i = 0; i < Math.Max(left.Length, right.Length); i++)
        {
            var l = i < left.Length ? left[i] : null;
            var r = i < right.Length ? right[i] : null;
            if (l != r)
            {
                differing++;
                if (first < 0)
                {
                    first = i;
                }
            }
        }

        var summary = new StringBuilder();
        summary.AppendLine($"  {differing} differing line(s) (verified {left.Length} lines, received {right.Length} lines); first at line {first + 1}:");
        summary.AppendLine($"  - {(first < left.Length ? left[first] : "<end of file>")}");
        summary.Append($"  + {(first < right.Length ? right[first] : "<end of file>")}");
        return summary.ToString();
    }
}
