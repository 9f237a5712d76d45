using System;
using System.Diagnostics;
using System.IO;
using System.Linq;
using System.Reflection;
using Xunit;

namespace GemsInjector.Generators.Tests;

/// <summary>
/// The SDK's compiler silently drops an analyzer built against a newer Roslyn (warning CS9057), and then no worker
/// would enable the kernels. This pins the generator's Roslyn reference to what the installed SDK's compiler loads.
/// </summary>
public sealed class CompilerCompatibilityTests
{
    [Fact]
    public void The_generator_references_a_Roslyn_no_newer_than_the_SDK_compiler()
    {
        var referenced = typeof(GemsWorkerGenerator).Assembly.GetReferencedAssemblies()
            .Single(name => name.Name == "Microsoft.CodeAnalysis").Version!;

        var compiler = AssemblyName.GetAssemblyName(Path.Combine(SdkFolder(), "Roslyn", "bincore", "Microsoft.CodeAnalysis.dll")).Version!;

        Assert.True(referenced <= compiler, $"The generator references Microsoft.CodeAnalysis {referenced}, but the SDK's compiler is {compiler}: CS9057 would drop it.");
    }

    private static string SdkFolder()
    {
        var start = new ProcessStartInfo("dotnet", "--list-sdks") { RedirectStandardOutput = true, UseShellExecute = false };
        using var process = Process.Start(start)!;
        var lines = process.StandardOutput.ReadToEnd().Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        process.WaitForExit();

        // "10.0.401 [/usr/share/dotnet/sdk]": the newest SDK is the one that builds this repository (no global.json pins another).
        var newest = lines.Select(line => (Version: line[..line.IndexOf(' ', StringComparison.Ordinal)], Folder: line[(line.IndexOf('[', StringComparison.Ordinal) + 1)..^1]))
            .OrderBy(sdk => Version.Parse(sdk.Version.Split('-')[0]))
            .Last();
        return Path.Combine(newest.Folder, newest.Version);
    }
}
