using System;
using System.IO;
using System.Linq;

namespace GemsInjector.TestProcesses;

/// <summary>The samples' process tests: app folders copied with a file left out.</summary>
internal static partial class ProcessRunner
{
    /// <summary>
    /// Copies an app folder without <paramref name="leaveOut"/>, as a node with a broken install would have it: the host
    /// finds assemblies beside the app's real path, so managed files are copied; native libraries are linked.
    /// </summary>
    public static DirectoryInfo CopyAppWithout(string folder, string leaveOut, params string[] skipFolders)
    {
        var copy = Directory.CreateTempSubdirectory("gems-samples-app-");
        foreach (var file in Directory.EnumerateFiles(folder, "*", SearchOption.AllDirectories))
        {
            var relative = Path.GetRelativePath(folder, file);
            if (relative == leaveOut || skipFolders.Any(skip => relative.StartsWith(skip + Path.DirectorySeparatorChar, StringComparison.Ordinal)))
            {
                continue;
            }

            var target = Path.Combine(copy.FullName, relative);
            Directory.CreateDirectory(Path.GetDirectoryName(target)!);
            if (file.Contains(".so", StringComparison.Ordinal))
            {
                File.CreateSymbolicLink(target, file);
            }
            else
            {
                File.Copy(file, target);
            }
        }

        return copy;
    }
}
