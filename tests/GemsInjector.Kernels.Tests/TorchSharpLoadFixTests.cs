using System;
using System.IO;
using System.Runtime.InteropServices;
using System.Text;
using Xunit;

namespace GemsInjector.Kernels.Tests;

/// <summary>
/// What the build step src/build/GemsInjector.TorchSharpLoadFix.targets left in this test's output: the copied
/// libLibTorchSharp.so has its GLIBCXX_3.4.32 requirement weak exactly when the host's libstdc++ lacks that version,
/// and the NuGet cache's copy is never modified.
/// </summary>
public class TorchSharpLoadFixTests
{
    private const string Version = "GLIBCXX_3.4.32";
    private const ushort VerFlgWeak = 0x2;

    [Fact]
    public void Copied_library_is_patched_only_when_the_host_lacks_the_version_and_the_cache_is_untouched()
    {
        if (!OperatingSystem.IsLinux() || RuntimeInformation.OSArchitecture != Architecture.X64)
        {
            return; // The build step only runs on Linux x64 hosts.
        }

        string output = Path.Combine(AppContext.BaseDirectory, "runtimes", "linux-x64", "native", "libLibTorchSharp.so");
        Assert.True(File.Exists(output), $"{output} is missing");
        string? host = Array.Find(
            new[] { "/usr/lib/x86_64-linux-gnu/libstdc++.so.6", "/lib/x86_64-linux-gnu/libstdc++.so.6", "/usr/lib64/libstdc++.so.6", "/lib64/libstdc++.so.6", "/usr/lib/libstdc++.so.6", "/lib/libstdc++.so.6" },
            File.Exists);
        bool hostLacksVersion = host is not null && !Contains(File.ReadAllBytes(host), Encoding.ASCII.GetBytes(Version + "\0"));

        ushort? outputFlags = VersionFlags(File.ReadAllBytes(output), Version);
        Assert.True(outputFlags is not null, $"{output} does not require {Version} from libstdc++ (a new TorchSharp? re-check the fix)");
        Assert.Equal(hostLacksVersion, (outputFlags!.Value & VerFlgWeak) != 0);

        string packages = Environment.GetEnvironmentVariable("NUGET_PACKAGES")
            ?? Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".nuget", "packages");
        string cached = Path.Combine(packages, "torchsharp", "0.107.0", "runtimes", "linux-x64", "native", "libLibTorchSharp.so");
        if (File.Exists(cached))
        {
            ushort? cacheFlags = VersionFlags(File.ReadAllBytes(cached), Version);
            Assert.True(cacheFlags is not null && (cacheFlags.Value & VerFlgWeak) == 0, $"the NuGet cache's {cached} was modified");
        }
    }

    private static bool Contains(byte[] haystack, byte[] needle) => haystack.AsSpan().IndexOf(needle) >= 0;

    /// <summary>vna_flags of the Vernaux entry named <paramref name="name"/> under libstdc++ in .gnu.version_r, or null.</summary>
    private static ushort? VersionFlags(byte[] f, string name)
    {
        long shoff = BitConverter.ToInt64(f, 0x28);
        int shentsize = BitConverter.ToUInt16(f, 0x3A), shnum = BitConverter.ToUInt16(f, 0x3C);
        for (int i = 0; i < shnum; i++)
        {
            int sh = (int)(shoff + i * shentsize);
            if (BitConverter.ToUInt32(f, sh + 4) != 0x6ffffffe)
            {
                continue;
            }

            int offset = (int)BitConverter.ToInt64(f, sh + 0x18);
            int count = (int)BitConverter.ToUInt32(f, sh + 0x2C);
            int strsh = (int)(shoff + BitConverter.ToUInt32(f, sh + 0x28) * shentsize);
            int strings = (int)BitConverter.ToInt64(f, strsh + 0x18);
            string Str(uint index)
            {
                int start = strings + (int)index;
                return Encoding.ASCII.GetString(f, start, Array.IndexOf(f, (byte)0, start) - start);
            }

            int vn = offset;
            for (int n = 0; n < count; n++)
            {
                string file = Str(BitConverter.ToUInt32(f, vn + 4));
                int aux = vn + (int)BitConverter.ToUInt32(f, vn + 8);
                for (int a = 0; a < BitConverter.ToUInt16(f, vn + 2); a++)
                {
                    if (file.StartsWith("libstdc++", StringComparison.Ordinal) && Str(BitConverter.ToUInt32(f, aux + 8)) == name)
                    {
                        return BitConverter.ToUInt16(f, aux + 4);
                    }

                    aux += (int)BitConverter.ToUInt32(f, aux + 12);
                }

                vn += (int)BitConverter.ToUInt32(f, vn + 12);
            }
        }

        return null;
    }
}
