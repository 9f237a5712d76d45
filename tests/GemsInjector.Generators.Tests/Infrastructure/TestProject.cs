using System.Linq;
using System.Reflection;

namespace GemsInjector.Generators.Tests.Infrastructure;

/// <summary>Where this test project's sources are, recorded at build time (see the project file).</summary>
internal static class TestProject
{
    public static string Directory { get; } = typeof(TestProject).Assembly
        .GetCustomAttributes<AssemblyMetadataAttribute>()
        .Single(attribute => attribute.Key == "ProjectDirectory").Value!;
}
