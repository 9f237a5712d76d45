using System;
using System.IO;
using System.IO.Compression;
using System.Linq;
using System.Reflection;
using System.Threading;
using ILGPU;
using ILGPU.Backends;
using ILGPU.Backends.EntryPoints;
using ILGPU.Backends.PTX;
using ILGPU.Runtime;
using ILGPU.Runtime.Cuda;
using Xunit;

namespace GemsInjector.Kernels.Ilgpu.Tests;

/// <summary>
/// The shipped layer below the kernel cache (PTX precompiled into an archive beside the assembly), driven by ILGPU's PTX
/// backend for SM_90 without a GPU: it is found and used with each load's launch bounds, never written, and anything
/// stale, foreign or damaged in it costs only the compile. Only two kernels are precompiled here (CI time).
/// </summary>
public sealed class ShippedKernelsTests : IDisposable
{
    private readonly string directory = Path.Combine(Path.GetTempPath(), "gems-shipped-kernels-tests-" + Guid.NewGuid().ToString("N"));
    private readonly Context context = Context.Create(b => b.Optimize(IlgpuDevice.CudaOptimization));
    private readonly PTXBackend backend;
    private int compiles;

    public ShippedKernelsTests()
    {
        backend = NewBackend(context);
        Directory.CreateDirectory(directory);
    }

    private string ArchivePath => Path.Combine(directory, ShippedKernels.FileName);

    private string CacheDirectory => Path.Combine(directory, "user-cache");

    private static MethodInfo RmsNormMethod =>
        typeof(RowKernels).GetMethod(nameof(RowKernels.RmsNormF32), BindingFlags.Static | BindingFlags.Public | BindingFlags.NonPublic)!;

    private static MethodInfo GemvMethod => typeof(GemmFastKernels).GetMethod(nameof(GemmFastKernels.GemvNkF32))!.MakeGenericMethod(typeof(Const4));

    private static EntryPointDescription Entry(MethodInfo method) => EntryPointDescription.FromExplicitlyGroupedKernel(method);

    private static PTXBackend NewBackend(Context context) =>
        new(context, new CudaCapabilityContext(ShippedKernels.Architecture), ShippedKernels.Architecture, ShippedKernels.InstructionSet, nvvmAPI: null);

    /// <summary>ILGPU's own PTX for a specialization, from a fresh context (so value numbering matches the precompiler's).</summary>
    private static string CompileFresh(MethodInfo method, KernelSpecialization specialization)
    {
        using var fresh = Context.Create(b => b.Optimize(IlgpuDevice.CudaOptimization));
        using var freshBackend = NewBackend(fresh);
        return ((PTXCompiledKernel)freshBackend.Compile(Entry(method), specialization)).PTXAssembly;
    }

    private void Ship(params MethodInfo[] kernels)
    {
        var results = KernelPrecompiler.Precompile(ArchivePath, kernels, log: null);
        Assert.All(results, result => Assert.Null(result.Error));
    }

    private KernelDiskCache NewCache() =>
        new(CacheDirectory, KernelDiskCache.TargetOf(CudaArchitecture.SM_90, CudaInstructionSet.ISA_85, IlgpuDevice.CudaOptimization), new ShippedKernels(ArchivePath));

    private PTXCompiledKernel Load(KernelDiskCache cache, MethodInfo method, KernelSpecialization specialization = default)
    {
        var entry = Entry(method);
        return (PTXCompiledKernel)cache.GetOrCompile(context, entry, specialization, () =>
        {
            Interlocked.Increment(ref compiles);
            return backend.Compile(entry, specialization);
        }, out _);
    }

    [Theory]
    [InlineData(512, null)]
    [InlineData(512, 2)]
    [InlineData(256, 4)]
    [InlineData(null, 2)]
    public void Launch_bounds_added_to_unbounded_ptx_are_what_ilgpu_writes(int? maxThreads, int? minGroups)
    {
        var specialization = new KernelSpecialization(maxThreads, minGroups);
        foreach (var method in new[] { RmsNormMethod, GemvMethod })
        {
            var bounded = CompileFresh(method, specialization);
            var unbounded = CompileFresh(method, default);
            Assert.DoesNotContain(".maxntid", unbounded, StringComparison.Ordinal);
            Assert.Equal(Normalize(bounded), Normalize(KernelDiskCache.WithLaunchBounds(unbounded, specialization)!));
        }
    }

    [Fact]
    public void A_first_process_reads_shipped_kernels_with_its_launch_bounds_without_compiling()
    {
        Ship(RmsNormMethod, GemvMethod);
        var cache = NewCache();
        var bounds = new KernelSpecialization(512, 2);

        var rmsNorm = Load(cache, RmsNormMethod, bounds);
        var gemv = Load(cache, GemvMethod);

        Assert.Equal((0, 2, 0, 0), (compiles, cache.ShippedHits, cache.Hits, cache.Misses));
        // What is loaded is the shipped PTX with this load's launch bounds (the theory above: what ILGPU would write).
        using (var archive = ZipFile.OpenRead(ArchivePath))
        {
            string Shipped(MethodInfo method)
            {
                var text = ReadEntry(archive.GetEntry(KernelDiskCache.FileNameOf(ShippedKernels.Target, Entry(method), default))!);
                return text[(text.IndexOf('\n') + 1)..];
            }

            Assert.Equal(KernelDiskCache.WithLaunchBounds(Shipped(RmsNormMethod), bounds), rmsNorm.PTXAssembly);
            Assert.Equal(Shipped(GemvMethod), gemv.PTXAssembly);
        }

        Assert.Contains(".minnctapersm 2", rmsNorm.PTXAssembly, StringComparison.Ordinal);
        var expected = KernelDiskCache.SharedMemoryOf((PTXCompiledKernel)backend.Compile(Entry(RmsNormMethod), bounds));
        var actual = KernelDiskCache.SharedMemoryOf(rmsNorm);
        Assert.True(expected.StaticSize > 0, "the chosen kernel should use static shared memory");
        Assert.Equal((expected.StaticSize, expected.HasDynamicMemory), (actual.StaticSize, actual.HasDynamicMemory));
    }

    [Fact]
    public void The_shipped_archive_is_never_written_and_the_user_cache_wins()
    {
        Ship(RmsNormMethod);
        var before = (File.ReadAllBytes(ArchivePath), File.GetLastWriteTimeUtc(ArchivePath));

        var shippedFirst = NewCache();
        Load(shippedFirst, RmsNormMethod);
        Assert.False(Directory.Exists(CacheDirectory), "a shipped hit is not copied into the user's cache");
        Load(shippedFirst, GemvMethod);
        Assert.Equal((1, 1, 1), (shippedFirst.ShippedHits, shippedFirst.Misses, compiles));

        var after = (File.ReadAllBytes(ArchivePath), File.GetLastWriteTimeUtc(ArchivePath));
        Assert.Equal(before.Item1, after.Item1);
        Assert.Equal(before.Item2, after.Item2);
        using (var archive = ZipFile.OpenRead(ArchivePath))
        {
            Assert.Single(archive.Entries);
        }

        // A kernel in both layers comes from the user's directory.
        Load(new KernelDiskCache(CacheDirectory, KernelDiskCache.TargetOf(CudaArchitecture.SM_90, CudaInstructionSet.ISA_85, IlgpuDevice.CudaOptimization)), RmsNormMethod);
        var both = NewCache();
        Load(both, RmsNormMethod);
        Assert.Equal((1, 0), (both.Hits, both.ShippedHits));
    }

    [Fact]
    public void An_archive_of_another_build_is_not_read()
    {
        Ship(RmsNormMethod);
        // Another build of the kernel assembly has another module id, so other entry names: model it by renaming.
        using (var archive = ZipFile.Open(ArchivePath, ZipArchiveMode.Update))
        {
            var entry = archive.Entries.Single();
            var text = ReadEntry(entry);
            var renamed = archive.CreateEntry(entry.FullName.Replace("-", "-0", StringComparison.Ordinal));
            using (var writer = new StreamWriter(renamed.Open()))
            {
                writer.Write(text);
            }

            entry.Delete();
        }

        var cache = NewCache();
        Load(cache, RmsNormMethod);
        Assert.Equal((0, 1, 1), (cache.ShippedHits, cache.Misses, compiles));
        Assert.Equal(0, cache.Shipped!.Rejected);
    }

    [Fact]
    public void Another_architecture_or_an_older_driver_or_the_switch_skips_the_archive()
    {
        Ship(RmsNormMethod);
        Assert.NotNull(ShippedKernels.ForDevice(CudaArchitecture.SM_90, CudaInstructionSet.ISA_85, directory));
        Assert.NotNull(ShippedKernels.ForDevice(CudaArchitecture.SM_90, CudaInstructionSet.ISA_80, directory));
        Assert.Null(ShippedKernels.ForDevice(CudaArchitecture.SM_80, CudaInstructionSet.ISA_85, directory));
        Assert.Null(ShippedKernels.ForDevice(CudaArchitecture.SM_90, CudaInstructionSet.ISA_78, directory));
        Assert.Null(ShippedKernels.ForDevice(CudaArchitecture.SM_90, CudaInstructionSet.ISA_85, Path.Combine(directory, "elsewhere")));
        Assert.True(KernelDiskCache.IsOff(" Off "));
    }

    [Theory]
    [InlineData("tampered")]
    [InlineData("truncated")]
    [InlineData("no-header")]
    [InlineData("two-entries")]
    public void A_damaged_entry_is_compiled_instead_and_reported(string damage)
    {
        Ship(RmsNormMethod);
        using (var archive = ZipFile.Open(ArchivePath, ZipArchiveMode.Update))
        {
            var entry = archive.Entries.Single();
            var text = ReadEntry(entry);
            var damaged = damage switch
            {
                "tampered" => text.Replace("ret;", "trap;", StringComparison.Ordinal),
                "truncated" => text[..(text.Length / 2)],
                "no-header" => text[(text.IndexOf('\n') + 1)..],
                // A checksum-valid file whose PTX is not one entry: the launch bounds cannot be placed.
                _ => Rechecksum(text, text[(text.IndexOf('\n') + 1)..] + "\n.visible .entry Other()\n{\nret;\n}\n"),
            };
            Assert.NotEqual(text, damaged);
            var name = entry.FullName;
            entry.Delete();
            using var writer = new StreamWriter(archive.CreateEntry(name).Open());
            writer.Write(damaged);
        }

        var cache = NewCache();
        var kernel = Load(cache, RmsNormMethod, new KernelSpecialization(512, null));

        Assert.Equal((0, 1, 1), (cache.ShippedHits, cache.Misses, compiles));
        Assert.DoesNotContain("trap;", kernel.PTXAssembly, StringComparison.Ordinal);
        Assert.Equal(1, cache.Shipped!.Rejected);
        Assert.Contains(ShippedKernels.FileName, cache.Shipped.LastError, StringComparison.Ordinal);
    }

    [Fact]
    public void A_corrupt_archive_is_compiled_around_and_not_opened_again()
    {
        File.WriteAllBytes(ArchivePath, [0x50, 0x4B, 0x03, 0x04, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
        var cache = NewCache();

        Load(cache, RmsNormMethod);
        Load(cache, GemvMethod);

        Assert.Equal((0, 2, 2), (cache.ShippedHits, cache.Misses, compiles));
        Assert.Equal(1, cache.Shipped!.Rejected);
        Assert.Contains("InvalidData", cache.Shipped.LastError, StringComparison.Ordinal);
    }

    [Fact]
    public void The_precompiler_reports_each_kernel_and_writes_one_entry_per_kernel()
    {
        var writer = new StringWriter();
        var results = KernelPrecompiler.Precompile(ArchivePath, [RmsNormMethod, GemvMethod], writer);

        Assert.Equal(["RowKernels.RmsNormF32", "GemmFastKernels.GemvNkF32<Const4>"], results.Select(result => result.Kernel));
        Assert.All(results, result => Assert.True(result.PtxBytes > 0 && result.Error is null));
        Assert.Equal(2, writer.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries).Length);
        using var archive = ZipFile.OpenRead(ArchivePath);
        Assert.Equal(
            new[] { RmsNormMethod, GemvMethod }.Select(method => KernelDiskCache.FileNameOf(ShippedKernels.Target, Entry(method), default)),
            archive.Entries.Select(entry => entry.FullName));
        Assert.False(File.Exists(ArchivePath + "." + Environment.ProcessId + ".tmp"));
    }

    private static string ReadEntry(ZipArchiveEntry entry)
    {
        using var reader = new StreamReader(entry.Open());
        return reader.ReadToEnd();
    }

    /// <summary>
    /// The PTX with ILGPU's numbered names (which come from process-wide counters, so two compiles of one kernel differ in
    /// them) renumbered in order of first appearance: equal for equal code.
    /// </summary>
    private static string Normalize(string ptx)
    {
        var names = new System.Collections.Generic.Dictionary<string, int>(StringComparer.Ordinal);
        return System.Text.RegularExpressions.Regex.Replace(ptx, @"\b[A-Za-z_][A-Za-z_]*_\d+\b", match =>
        {
            if (!names.TryGetValue(match.Value, out var index))
            {
                index = names.Count;
                names[match.Value] = index;
            }

            return "name_" + index.ToString(System.Globalization.CultureInfo.InvariantCulture);
        });
    }

    private static string Rechecksum(string original, string ptx)
    {
        var header = original[..original.IndexOf('\n')];
        var checksum = Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(ptx)));
        return System.Text.RegularExpressions.Regex.Replace(header, "sha256=[0-9a-f]{64}", "sha256=" + checksum) + "\n" + ptx;
    }

    public void Dispose()
    {
        backend.Dispose();
        context.Dispose();
        if (Directory.Exists(directory))
        {
            Directory.Delete(directory, recursive: true);
        }
    }
}
