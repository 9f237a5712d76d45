using System;
using System.Collections.Generic;
using System.IO;
using System.IO.Compression;
using System.Linq;
using GemsInjector.TestProcesses;
using Xunit;

namespace GemsInjector.IntegrationTests;

/// <summary>
/// Packs GemsInjector and uses it the way a user would: a fresh project in a temporary folder that references the package
/// from a local feed (no project reference, no libtorch package), marks a runner, builds and runs.
/// </summary>
public sealed class PackageTests
{
    private static readonly string RepositoryRoot = ProcessRunner.Metadata("RepositoryRoot");

    [Fact]
    public void The_packed_package_injects_the_block_warns_about_an_unmarked_runner_and_enables_without_libtorch()
    {
        // A version of its own per run, so that no package cached by an earlier run is taken instead.
        var version = $"0.1.0-test.{DateTime.UtcNow:yyyyMMddHHmmss}.{Environment.ProcessId}";
        var work = Directory.CreateTempSubdirectory("gems-package-");
        var packagesFolder = Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".nuget", "packages", "gemsinjector", version);
        try
        {
            var feed = Directory.CreateDirectory(Path.Combine(work.FullName, "feed")).FullName;
            var pack = Dotnet(RepositoryRoot, "pack", Path.Combine(RepositoryRoot, "src", "GemsInjector.csproj"), "-c", "Release", "-o", feed, $"-p:Version={version}");
            Assert.True(pack.ExitCode == 0, pack.ToString());

            var package = Path.Combine(feed, $"GemsInjector.{version}.nupkg");
            AssertPackageLayout(package);

            var app = Directory.CreateDirectory(Path.Combine(work.FullName, "app")).FullName;
            WriteConsumer(app, feed, version);
            var build = Dotnet(app, "build", "-c", "Release");
            Assert.True(build.ExitCode == 0, build.ToString());
            var gems001 = build.StandardOutput.Split('\n').Where(line => line.Contains("warning GEMS001", StringComparison.Ordinal)).Distinct().ToArray();
            Assert.NotEmpty(gems001);
            Assert.All(gems001, line => Assert.Matches(@"Program\.cs\(\d+,\d+\): warning GEMS001: .*'(Consumer\.)?OtherModelRunner'", line));
            var generated = Assert.Single(Directory.EnumerateFiles(Path.Combine(app, "obj"), "*.GemsWorker.g.cs", SearchOption.AllDirectories));
            Assert.Equal("Consumer.ModelRunner.GemsWorker.g.cs", Path.GetFileName(generated));
            Assert.Contains("[global::System.Runtime.CompilerServices.ModuleInitializer]", File.ReadAllText(generated), StringComparison.Ordinal);

            var output = Path.Combine(app, "bin", "Release", "net10.0");
            Assert.False(Directory.EnumerateFiles(output, "libtorch*", SearchOption.AllDirectories).Any(), "The consumer must not carry libtorch.");
            AssertShippedKernelsBesideTheKernelAssembly(package, output);
            var run = ProcessRunner.Run("dotnet", [Path.Combine(output, "Consumer.dll")], output, new Dictionary<string, string?> { ["USE_FLAGGEMS"] = "true" }, TimeSpan.FromMinutes(1));
            Assert.True(run.ExitCode == 0, run.ToString());
            Assert.Contains("info: GemsInjector: Successfully enabled GemsInjector as default ops implementation.", run.StandardError, StringComparison.Ordinal);
            Assert.Contains("Overriding a previously registered kernel", run.StandardError, StringComparison.Ordinal);
            Assert.Contains("state=Enabled worker=Consumer.ModelRunner", run.StandardOutput, StringComparison.Ordinal);
        }
        finally
        {
            work.Delete(recursive: true);
            if (Directory.Exists(packagesFolder))
            {
                Directory.Delete(packagesFolder, recursive: true);
            }
        }
    }

    /// <summary>The precompiled kernels reach the consumer's output unchanged, next to the kernel assembly they belong to.</summary>
    private static void AssertShippedKernelsBesideTheKernelAssembly(string package, string output)
    {
        using var zip = ZipFile.OpenRead(package);
        using var packed = new MemoryStream();
        using (var entry = zip.GetEntry("lib/net10.0/GemsInjector.Kernels.ptx.zip")!.Open())
        {
            entry.CopyTo(packed);
        }

        var copied = Path.Combine(output, "GemsInjector.Kernels.ptx.zip");
        Assert.True(File.Exists(Path.Combine(output, "GemsInjector.Kernels.dll")), "the kernel assembly is in the output");
        Assert.True(File.Exists(copied), "the precompiled kernels are copied beside the kernel assembly");
        Assert.Equal(packed.ToArray(), File.ReadAllBytes(copied));
        using var archive = ZipFile.OpenRead(copied);
        Assert.Contains(archive.Entries, e => e.Name.StartsWith("VectorKernels.BinaryF32x4-", StringComparison.Ordinal) && e.Name.EndsWith(".ptx", StringComparison.Ordinal));
    }

    private static void AssertPackageLayout(string package)
    {
        using var zip = ZipFile.OpenRead(package);
        var entries = zip.Entries.Select(entry => entry.FullName).ToHashSet(StringComparer.Ordinal);
        Assert.Contains("lib/net10.0/GemsInjector.dll", entries);
        Assert.Contains("lib/net10.0/GemsInjector.Kernels.dll", entries);
        Assert.Contains("lib/net10.0/GemsInjector.Kernels.ptx.zip", entries);
        Assert.Contains("analyzers/dotnet/cs/GemsInjector.Generators.dll", entries);
        Assert.Contains("analyzers/dotnet/cs/GemsInjector.CodeFixes.dll", entries);
        Assert.Contains("buildTransitive/GemsInjector.props", entries);
        Assert.Contains("buildTransitive/GemsInjector.targets", entries);
        Assert.Contains("buildTransitive/GemsInjector.TorchSharpLoadFix.targets", entries);
        Assert.DoesNotContain(entries, entry => entry.StartsWith("lib/", StringComparison.Ordinal) && (entry.Contains("Generators", StringComparison.Ordinal) || entry.Contains("CodeFixes", StringComparison.Ordinal)));
    }

    private static void WriteConsumer(string folder, string feed, string version)
    {
        File.WriteAllText(Path.Combine(folder, "nuget.config"), $"""
            <?xml version="1.0" encoding="utf-8"?>
            <configuration>
              <packageSources>
                <clear />
                <add key="test-feed" value="{feed}" />
                <add key="nuget.org" value="https://api.nuget.org/v3/index.json" protocolVersion="3" />
              </packageSources>
            </configuration>
            """);
        File.WriteAllText(Path.Combine(folder, "Consumer.csproj"), $"""
            <Project Sdk="Microsoft.NET.Sdk">
              <PropertyGroup>
                <OutputType>Exe</OutputType>
                <TargetFramework>net10.0</TargetFramework>
                <Nullable>enable</Nullable>
                <EmitCompilerGeneratedFiles>true</EmitCompilerGeneratedFiles>
              </PropertyGroup>
              <ItemGroup>
                <PackageReference Include="GemsInjector" Version="{version}" />
              </ItemGroup>
            </Project>
            """);
        File.WriteAllText(Path.Combine(folder, "Program.cs"), """
            using System;
            using GemsInjector;

            namespace Consumer;

            [GemsWorker]
            public partial class ModelRunner
            {
                public static int Main()
                {
                    Console.WriteLine($"state={Gems.Status.State} worker={Gems.Status.Worker}");
                    return 0;
                }
            }

            public class OtherModelRunner
            {
            }
            """);
    }

    private static ProcessResult Dotnet(string workingDirectory, params string[] arguments) =>
        ProcessRunner.Run("dotnet", arguments, workingDirectory, new Dictionary<string, string?>(), TimeSpan.FromMinutes(5));
}
