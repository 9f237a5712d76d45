using System;
using System.Globalization;
using System.IO;
using System.Linq;
using System.Reflection;
using System.Security.Cryptography;
using System.Text;
using System.Threading;
using ILGPU;
using ILGPU.Backends;
using ILGPU.Backends.EntryPoints;
using ILGPU.Backends.PTX;
using ILGPU.Runtime;

namespace GemsInjector.Kernels.Ilgpu;

/// <summary>
/// Compiled PTX kept on disk, so that the second worker process on a node skips ILGPU's compiler (tens to hundreds of
/// milliseconds per kernel) on each kernel's first call. One file per kernel (each instantiation of a generic one),
/// specialization and target; the
/// name hashes everything the PTX depends on (the kernel assembly's build, ILGPU's version, the GPU architecture and
/// instruction set), so a rebuilt kernel assembly or another GPU never reads a stale file. The PTX itself is loaded by
/// the driver, whose own compute cache turns it into machine code once per node.
/// </summary>
/// <remarks>
/// Never fails a kernel load: a missing, unreadable, truncated or tampered file is a miss (the kernel is compiled as
/// without a cache), and a directory that cannot be written only costs the next process the compile.
/// Files are written to a temporary name and renamed, so processes that start together never read half a file.
/// </remarks>
internal sealed class KernelDiskCache
{
    /// <summary>The environment variable: a directory, or <c>off</c> to compile every kernel in every process.</summary>
    public const string Variable = "GEMS_KERNEL_CACHE";

    private const string FormatTag = "gems-kernel-cache 1";

    // ILGPU builds PTXCompiledKernel only inside its backend: its constructor and the compiled kernel's entry point (which
    // holds the shared-memory layout the launcher needs) are internal. Without them (another ILGPU version) the cache
    // turns itself off instead of failing.
    private static readonly ConstructorInfo? PtxKernelConstructor = typeof(PTXCompiledKernel).GetConstructor(
        BindingFlags.Instance | BindingFlags.NonPublic | BindingFlags.Public,
        binder: null,
        [typeof(Context), typeof(EntryPoint), typeof(CompiledKernel.KernelInfo), typeof(string)],
        modifiers: null);

    private static readonly PropertyInfo? EntryPointProperty = typeof(CompiledKernel).GetProperty(
        "EntryPoint", BindingFlags.Instance | BindingFlags.NonPublic | BindingFlags.Public);

    /// <summary>Whether this ILGPU build exposes what the cache needs (checked once, by reflection).</summary>
    public static bool IsSupported => PtxKernelConstructor is not null && EntryPointProperty?.PropertyType == typeof(EntryPoint);

    private readonly string target;
    private int hits;
    private int misses;
    private int writeFailures;

    /// <summary>Creates a cache over <paramref name="directory"/> for one compilation target.</summary>
    /// <param name="directory">Where the files go (created on the first write).</param>
    /// <param name="target">Everything about the device and compiler settings the PTX depends on, e.g. <c>SM_90 ISA_80 O2</c>.</param>
    public KernelDiskCache(string directory, string target)
    {
        Directory = Path.GetFullPath(directory);
        this.target = target;
    }

    /// <summary>The cache directory.</summary>
    public string Directory { get; }

    /// <summary>Kernels read from disk instead of compiled.</summary>
    public int Hits => Volatile.Read(ref hits);

    /// <summary>Kernels compiled because no usable file was there.</summary>
    public int Misses => Volatile.Read(ref misses);

    /// <summary>Compiled kernels that could not be written (the reason is in <see cref="LastWriteError"/>).</summary>
    public int WriteFailures => Volatile.Read(ref writeFailures);

    /// <summary>Why the last write failed, or <see langword="null"/>.</summary>
    public string? LastWriteError { get; private set; }

    /// <summary>
    /// The cache that <see cref="Variable"/> asks for: <see langword="null"/> when it says <c>off</c> (or <c>0</c>,
    /// <c>false</c>, <c>none</c>), the directory it names, or by default <c>$XDG_CACHE_HOME/gemsinjector/kernels</c>
    /// (<c>~/.cache/gemsinjector/kernels</c>).
    /// </summary>
    /// <param name="target">The compilation target (see the constructor).</param>
    /// <returns>The cache, or <see langword="null"/> when caching is off or ILGPU's internals it needs are missing.</returns>
    public static KernelDiskCache? FromEnvironment(string target) => FromSetting(Environment.GetEnvironmentVariable(Variable), target);

    /// <summary>The cache a value of <see cref="Variable"/> asks for (see <see cref="FromEnvironment"/>).</summary>
    /// <param name="setting">The variable's value, or <see langword="null"/> when it is not set.</param>
    /// <param name="target">The compilation target (see the constructor).</param>
    /// <returns>The cache, or <see langword="null"/> when caching is off or ILGPU's internals it needs are missing.</returns>
    public static KernelDiskCache? FromSetting(string? setting, string target)
    {
        var value = setting?.Trim();
        if (!IsSupported || value?.ToLowerInvariant() is "off" or "0" or "false" or "none" or "no")
        {
            return null;
        }

        if (!string.IsNullOrEmpty(value))
        {
            return new KernelDiskCache(value, target);
        }

        var root = Environment.GetEnvironmentVariable("XDG_CACHE_HOME");
        if (string.IsNullOrWhiteSpace(root))
        {
            var home = Environment.GetFolderPath(Environment.SpecialFolder.UserProfile);
            root = string.IsNullOrEmpty(home) ? Path.GetTempPath() : Path.Combine(home, ".cache");
        }

        return new KernelDiskCache(Path.Combine(root, "gemsinjector", "kernels"), target);
    }

    /// <summary>The static and dynamic shared memory a compiled kernel declares (what its launcher needs).</summary>
    /// <param name="kernel">A kernel compiled by ILGPU or read from the cache.</param>
    /// <returns>Its shared-memory specification.</returns>
    internal static SharedMemorySpecification SharedMemoryOf(CompiledKernel kernel) => ((EntryPoint)EntryPointProperty!.GetValue(kernel)!).SharedMemory;

    /// <summary>The file that holds (or will hold) the PTX of this kernel and specialization.</summary>
    /// <param name="entry">The kernel.</param>
    /// <param name="specialization">Its launch-bound specialization.</param>
    /// <returns>The full path.</returns>
    public string PathOf(in EntryPointDescription entry, in KernelSpecialization specialization)
    {
        var method = entry.MethodSource;
        var identity = string.Join(
            "\n",
            FormatTag,
            target,
            typeof(Context).Assembly.GetName().Version?.ToString() ?? "?",
            method.Module.ModuleVersionId.ToString("N"),
            method.MetadataToken.ToString(CultureInfo.InvariantCulture),
            method.DeclaringType?.FullName + "." + method.Name,
            // Instantiations of a generic kernel share the token and the name; each is its own compiled kernel.
            string.Join(",", method.GetGenericArguments().Select(argument => argument.AssemblyQualifiedName)),
            entry.IndexType.ToString(),
            specialization.MaxNumThreadsPerGroup?.ToString(CultureInfo.InvariantCulture) ?? "-",
            specialization.MinNumGroupsPerMultiprocessor?.ToString(CultureInfo.InvariantCulture) ?? "-");
        var hash = Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(identity)))[..24];
        var typeArguments = method.IsGenericMethod ? "." + string.Join(".", method.GetGenericArguments().Select(argument => argument.Name)) : string.Empty;
        return Path.Combine(Directory, $"{method.DeclaringType?.Name}.{method.Name}{typeArguments}-{hash}.ptx");
    }

    /// <summary>
    /// The compiled kernel from disk when a valid file is there; otherwise <paramref name="compile"/>'s result, written
    /// to disk for the next process.
    /// </summary>
    /// <param name="context">The ILGPU context the kernel belongs to.</param>
    /// <param name="entry">The kernel.</param>
    /// <param name="specialization">Its launch-bound specialization.</param>
    /// <param name="compile">Compiles the kernel (ILGPU's own path).</param>
    /// <returns>The compiled kernel.</returns>
    public CompiledKernel GetOrCompile(Context context, in EntryPointDescription entry, in KernelSpecialization specialization, Func<CompiledKernel> compile)
    {
        var path = PathOf(entry, specialization);
        if (TryRead(context, path, entry, specialization) is { } cached)
        {
            Interlocked.Increment(ref hits);
            return cached;
        }

        Interlocked.Increment(ref misses);
        var compiled = compile();
        if (compiled is PTXCompiledKernel ptx)
        {
            TryWrite(path, ptx);
        }

        return compiled;
    }

    private static PTXCompiledKernel? TryRead(Context context, string path, in EntryPointDescription entry, in KernelSpecialization specialization)
    {
        string text;
        try
        {
            text = File.ReadAllText(path, Encoding.UTF8);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return null;
        }

        var newline = text.IndexOf('\n');
        if (newline < 0 || ParseHeader(text[..newline]) is not var (staticShared, dynamicShared, checksum))
        {
            return null;
        }

        var assembly = text[(newline + 1)..];
        if (!string.Equals(Checksum(assembly), checksum, StringComparison.Ordinal))
        {
            return null;
        }

        var entryPoint = new EntryPoint(entry, new SharedMemorySpecification(staticShared, dynamicShared), specialization);
        return (PTXCompiledKernel)PtxKernelConstructor!.Invoke([context, entryPoint, null, assembly]);
    }

    private void TryWrite(string path, PTXCompiledKernel kernel)
    {
        var shared = SharedMemoryOf(kernel);
        var header = string.Create(
            CultureInfo.InvariantCulture,
            $"// {FormatTag} static-shared={shared.StaticSize} dynamic-shared={(shared.HasDynamicMemory ? 1 : 0)} sha256={Checksum(kernel.PTXAssembly)}");
        var temporary = $"{path}.{Environment.ProcessId}.{Guid.NewGuid():N}.tmp";
        try
        {
            System.IO.Directory.CreateDirectory(Directory);
            File.WriteAllText(temporary, header + "\n" + kernel.PTXAssembly, new UTF8Encoding(false));
            File.Move(temporary, path, overwrite: true);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or NotSupportedException)
        {
            Interlocked.Increment(ref writeFailures);
            LastWriteError = $"{path}: {ex.Message}";
            try
            {
                File.Delete(temporary);
            }
            catch (Exception cleanup) when (cleanup is IOException or UnauthorizedAccessException)
            {
                // The temporary name is unique to this process; a leftover file is never read as a kernel.
            }
        }
    }

    private static (int StaticShared, bool DynamicShared, string Checksum)? ParseHeader(string line)
    {
        var prefix = "// " + FormatTag + " ";
        if (!line.StartsWith(prefix, StringComparison.Ordinal))
        {
            return null;
        }

        int? staticShared = null;
        bool? dynamicShared = null;
        string? checksum = null;
        foreach (var field in line[prefix.Length..].Split(' ', StringSplitOptions.RemoveEmptyEntries))
        {
            var equals = field.IndexOf('=');
            if (equals <= 0)
            {
                return null;
            }

            var value = field[(equals + 1)..];
            switch (field[..equals])
            {
                case "static-shared" when int.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out var size):
                    staticShared = size;
                    break;
                case "dynamic-shared" when value is "0" or "1":
                    dynamicShared = value == "1";
                    break;
                case "sha256" when value.Length == 64:
                    checksum = value;
                    break;
                default:
                    return null;
            }
        }

        return staticShared is { } s && dynamicShared is { } d && checksum is { } c ? (s, d, c) : null;
    }

    private static string Checksum(string assembly) => Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(assembly)));
}
