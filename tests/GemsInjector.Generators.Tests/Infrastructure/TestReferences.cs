using System;
using System.Collections.Generic;
using System.Collections.Immutable;
using System.IO;
using System.Linq;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.Testing;

namespace GemsInjector.Generators.Tests.Infrastructure;

/// <summary>
/// Compilation references built from this process: the running framework's assemblies (from
/// TRUSTED_PLATFORM_ASSEMBLIES, shared-framework folder only), GemsInjector and Microsoft.Extensions.Logging.Abstractions.
/// Nothing is downloaded.
/// </summary>
internal static class TestReferences
{
    private static readonly Lazy<ImmutableArray<MetadataReference>> LazyAll = new(() => Build(withGemsInjector: true));
    private static readonly Lazy<ImmutableArray<MetadataReference>> LazyFramework = new(() => Build(withGemsInjector: false));

    public static ImmutableArray<MetadataReference> All => LazyAll.Value;

    /// <summary>The framework and Microsoft.Extensions.Logging.Abstractions, without GemsInjector (for stand-in runtimes in source).</summary>
    public static ImmutableArray<MetadataReference> WithoutGemsInjector => LazyFramework.Value;

    /// <summary>An empty reference set for Microsoft.CodeAnalysis.Testing: the real references come from <see cref="All"/>.</summary>
    public static ReferenceAssemblies None { get; } = new("net10.0");

    private static ImmutableArray<MetadataReference> Build(bool withGemsInjector)
    {
        var frameworkDirectory = Path.GetDirectoryName(typeof(object).Assembly.Location)!;
        var paths = new SortedSet<string>(StringComparer.Ordinal);
        var trusted = (string?)AppContext.GetData("TRUSTED_PLATFORM_ASSEMBLIES") ?? "";
        foreach (var path in trusted.Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries))
        {
            if (string.Equals(Path.GetDirectoryName(path), frameworkDirectory, StringComparison.Ordinal)
                && path.EndsWith(".dll", StringComparison.OrdinalIgnoreCase)
                && IsManaged(path))
            {
                paths.Add(path);
            }
        }

        if (withGemsInjector)
        {
            paths.Add(typeof(Gems).Assembly.Location);
        }

        paths.Add(typeof(Microsoft.Extensions.Logging.ILogger).Assembly.Location);
        return paths.Select(path => (MetadataReference)MetadataReference.CreateFromFile(path)).ToImmutableArray();
    }

    private static bool IsManaged(string path)
    {
        try
        {
            System.Reflection.AssemblyName.GetAssemblyName(path);
            return true;
        }
        catch (BadImageFormatException)
        {
            return false;
        }
    }
}
