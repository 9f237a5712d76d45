using System;
using System.IO;
using System.Linq;
using System.Reflection;
using System.Threading;
using System.Threading.Tasks;
using ILGPU;
using ILGPU.Backends;
using ILGPU.Backends.EntryPoints;
using ILGPU.Backends.PTX;
using ILGPU.Runtime;
using ILGPU.Runtime.Cuda;
using Xunit;

namespace GemsInjector.Kernels.Ilgpu.Tests;

/// <summary>
/// The on-disk PTX cache, driven by ILGPU's PTX backend for SM_90 (no GPU needed): what a second process reads back is
/// the kernel the first one compiled, and every damaged or unwritable cache degrades to compiling.
/// </summary>
public sealed class KernelDiskCacheTests : IDisposable
{
    private const string Target = "SM_90 ISA_80 O2";
    private readonly string directory = Path.Combine(Path.GetTempPath(), "gems-kernel-cache-tests-" + Guid.NewGuid().ToString("N"));
    private readonly Context context = Context.Create(b => b.Optimize(OptimizationLevel.O2));
    private readonly PTXBackend backend;
    private int compiles;

    public KernelDiskCacheTests() =>
        backend = new PTXBackend(context, new CudaCapabilityContext(CudaArchitecture.SM_90), CudaArchitecture.SM_90, CudaInstructionSet.ISA_80, nvvmAPI: null);

    // A kernel with static shared memory, so that the launcher's shared-memory layout has to survive the round trip.
    private static EntryPointDescription RmsNorm => EntryPointDescription.FromExplicitlyGroupedKernel(Method(nameof(RowKernels.RmsNormF32)));

    private static MethodInfo Method(string name) =>
        typeof(RowKernels).GetMethod(name, BindingFlags.Static | BindingFlags.Public | BindingFlags.NonPublic)!;

    private CompiledKernel Load(KernelDiskCache cache, EntryPointDescription entry, KernelSpecialization specialization = default) =>
        cache.GetOrCompile(context, entry, specialization, () =>
        {
            Interlocked.Increment(ref compiles);
            return backend.Compile(entry, specialization);
        }, out _);

    [Fact]
    public void IlgpuExposesWhatTheCacheNeeds() => Assert.True(KernelDiskCache.IsSupported);

    [Fact]
    public void A_second_process_reads_the_kernel_the_first_compiled_without_compiling()
    {
        var first = (PTXCompiledKernel)Load(new KernelDiskCache(directory, Target), RmsNorm);
        Assert.Equal(1, compiles);
        Assert.True(File.Exists(new KernelDiskCache(directory, Target).PathOf(RmsNorm, default)));

        var cache = new KernelDiskCache(directory, Target);
        var second = Assert.IsType<PTXCompiledKernel>(Load(cache, RmsNorm));

        Assert.Equal(1, compiles);
        Assert.Equal((1, 0), (cache.Hits, cache.Misses));
        Assert.Equal(first.PTXAssembly, second.PTXAssembly);
        Assert.Equal(first.Name, second.Name);
        Assert.Equal(first.NumParameters, second.NumParameters);
        var (expected, actual) = (KernelDiskCache.SharedMemoryOf(first), KernelDiskCache.SharedMemoryOf(second));
        Assert.True(expected.StaticSize > 0, "the chosen kernel should use static shared memory");
        Assert.Equal((expected.StaticSize, expected.HasDynamicMemory), (actual.StaticSize, actual.HasDynamicMemory));
    }

    [Fact]
    public void Each_specialization_and_target_has_its_own_file()
    {
        var cache = new KernelDiskCache(directory, Target);
        var bounded = new KernelSpecialization(512, null);
        var paths = new[]
        {
            cache.PathOf(RmsNorm, default),
            cache.PathOf(RmsNorm, bounded),
            cache.PathOf(RmsNorm, new KernelSpecialization(512, 2)),
            new KernelDiskCache(directory, "SM_80 ISA_80 O2").PathOf(RmsNorm, default),
            cache.PathOf(EntryPointDescription.FromExplicitlyGroupedKernel(Method(nameof(RowKernels.SoftmaxF32))), default),
        };
        Assert.Equal(paths.Length, paths.Distinct(StringComparer.Ordinal).Count());

        Load(cache, RmsNorm, bounded);
        Load(cache, RmsNorm, bounded);
        Assert.Equal(1, compiles);
        Assert.Contains(".maxntid 512", ((PTXCompiledKernel)Load(new KernelDiskCache(directory, Target), RmsNorm, bounded)).PTXAssembly, StringComparison.Ordinal);
    }

    [Fact]
    public void Each_instantiation_of_a_generic_kernel_is_its_own_entry()
    {
        // A GEMV compiled for one row cap computes only that many rows: reading another cap's PTX would be wrong results.
        var definition = typeof(GemmFastKernels).GetMethod(nameof(GemmFastKernels.GemvNkF32))!;
        var one = EntryPointDescription.FromExplicitlyGroupedKernel(definition.MakeGenericMethod(typeof(Const1)));
        var sixteen = EntryPointDescription.FromExplicitlyGroupedKernel(definition.MakeGenericMethod(typeof(Const16)));
        var cache = new KernelDiskCache(directory, Target);
        Assert.NotEqual(cache.PathOf(one, default), cache.PathOf(sixteen, default));
        Assert.Contains("GemvNkF32.Const16-", Path.GetFileName(cache.PathOf(sixteen, default)), StringComparison.Ordinal);

        var oneFirst = ((PTXCompiledKernel)Load(cache, one)).PTXAssembly;
        var sixteenFirst = ((PTXCompiledKernel)Load(cache, sixteen)).PTXAssembly;
        Assert.Equal(2, compiles);

        var reader = new KernelDiskCache(directory, Target);
        Assert.Equal(sixteenFirst, ((PTXCompiledKernel)Load(reader, sixteen)).PTXAssembly);
        Assert.Equal(oneFirst, ((PTXCompiledKernel)Load(reader, one)).PTXAssembly);
        Assert.NotEqual(oneFirst, sixteenFirst);
        Assert.Equal((2, 2), (reader.Hits, compiles));
    }

    [Theory]
    [InlineData("tampered")]
    [InlineData("truncated")]
    [InlineData("no-header")]
    [InlineData("empty")]
    [InlineData("other-format")]
    public void A_damaged_file_is_compiled_again_and_replaced(string damage)
    {
        var cache = new KernelDiskCache(directory, Target);
        Load(cache, RmsNorm);
        var path = cache.PathOf(RmsNorm, default);
        var text = File.ReadAllText(path);
        var damaged = damage switch
        {
            "tampered" => text.Replace("ret;", "trap;", StringComparison.Ordinal),
            "truncated" => text[..(text.Length / 2)],
            "no-header" => text[(text.IndexOf('\n') + 1)..],
            "empty" => string.Empty,
            _ => text.Replace("gems-kernel-cache 1", "gems-kernel-cache 0", StringComparison.Ordinal),
        };
        Assert.NotEqual(text, damaged);
        File.WriteAllText(path, damaged);

        // ILGPU numbers its PTX values per compilation, so a recompiled kernel is equivalent, not equal, text.
        var reader = new KernelDiskCache(directory, Target);
        var recompiled = ((PTXCompiledKernel)Load(reader, RmsNorm)).PTXAssembly;
        Assert.Equal((0, 1, 2), (reader.Hits, reader.Misses, compiles));
        Assert.DoesNotContain("trap;", recompiled, StringComparison.Ordinal);
        Assert.EndsWith(recompiled, File.ReadAllText(path), StringComparison.Ordinal);

        var next = new KernelDiskCache(directory, Target);
        Assert.Equal(recompiled, ((PTXCompiledKernel)Load(next, RmsNorm)).PTXAssembly);
        Assert.Equal((1, 2), (next.Hits, compiles));
    }

    [Fact]
    public void An_unwritable_directory_costs_the_compile_and_says_why()
    {
        Directory.CreateDirectory(directory);
        var blocker = Path.Combine(directory, "a-file");
        File.WriteAllText(blocker, "not a directory");
        var cache = new KernelDiskCache(Path.Combine(blocker, "kernels"), Target);

        var kernel = Assert.IsType<PTXCompiledKernel>(Load(cache, RmsNorm));

        Assert.Contains(".entry", kernel.PTXAssembly, StringComparison.Ordinal);
        Assert.Equal(1, cache.WriteFailures);
        Assert.Contains(Path.Combine(blocker, "kernels"), cache.LastWriteError, StringComparison.Ordinal);
        Load(cache, RmsNorm);
        Assert.Equal(2, compiles);
    }

    [Fact]
    public void Processes_writing_the_same_kernel_at_once_leave_one_valid_file()
    {
        var caches = Enumerable.Range(0, 8).Select(_ => new KernelDiskCache(directory, Target)).ToArray();
        Parallel.ForEach(caches, new ParallelOptions { MaxDegreeOfParallelism = 8 }, cache => Load(cache, RmsNorm));

        Assert.Single(Directory.GetFiles(directory));
        var reader = new KernelDiskCache(directory, Target);
        Load(reader, RmsNorm);
        Assert.Equal(1, reader.Hits);
    }

    [Theory]
    [InlineData("off")]
    [InlineData(" OFF ")]
    [InlineData("0")]
    [InlineData("false")]
    [InlineData("none")]
    [InlineData("no")]
    public void The_setting_turns_the_cache_off(string setting) => Assert.Null(KernelDiskCache.FromSetting(setting, Target));

    [Fact]
    public void The_setting_names_the_directory_or_the_user_cache_is_used()
    {
        Assert.Equal(Path.GetFullPath(directory), KernelDiskCache.FromSetting(" " + directory + " ", Target)!.Directory);
        foreach (var unset in new[] { null, string.Empty, "  " })
        {
            var path = KernelDiskCache.FromSetting(unset, Target)!.Directory;
            Assert.EndsWith(Path.Combine("gemsinjector", "kernels"), path, StringComparison.Ordinal);
            Assert.True(Path.IsPathRooted(path));
        }
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
