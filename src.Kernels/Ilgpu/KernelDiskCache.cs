using System;
using System.Collections.Generic;
using System.Globalization;
using System.IO;
using System.IO.Compression;
using System.Linq;
using System.Reflection;
using System.Runtime.CompilerServices;
using System.Security.Cryptography;
using System.Text;
using System.Threading;
using ILGPU;
using ILGPU.Backends;
using ILGPU.Backends.EntryPoints;
using ILGPU.Backends.PTX;
using ILGPU.Runtime;
using ILGPU.Runtime.Cuda;

namespace GemsInjector.Kernels.Ilgpu;

/// <summary>
/// Compiled PTX kept on disk, so that the second worker process on a node skips ILGPU's compiler (tens to hundreds of
/// milliseconds per kernel) on each kernel's first call. One file per kernel (each instantiation of a generic one),
/// specialization and target; the
/// name hashes everything the PTX depends on (the kernel assembly's build, ILGPU's version, the GPU architecture and
/// instruction set), so a rebuilt kernel assembly or another GPU never reads a stale file. The PTX itself is loaded by
/// the driver, whose own compute cache turns it into machine code once per node. Below the directory, an optional
/// read-only <see cref="ShippedKernels"/> archive serves a node's first process the same way.
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
    // holds the shared-memory layout the launcher needs) are internal. Reflection only checks that they exist (without
    // them, another ILGPU version, the cache turns itself off instead of failing); the calls go through the accessors
    // below, because .NET emits and fully compiles an invoke stub for a reflected member the second time it is invoked,
    // about a millisecond each inside a second process's first operator call (h100-notes-startup.md, Attempt 11).
    private static readonly ConstructorInfo? PtxKernelConstructor = typeof(PTXCompiledKernel).GetConstructor(
        BindingFlags.Instance | BindingFlags.NonPublic | BindingFlags.Public,
        binder: null,
        [typeof(Context), typeof(EntryPoint), typeof(CompiledKernel.KernelInfo), typeof(string)],
        modifiers: null);

    private static readonly PropertyInfo? EntryPointProperty = typeof(CompiledKernel).GetProperty(
        "EntryPoint", BindingFlags.Instance | BindingFlags.NonPublic | BindingFlags.Public);

    /// <summary>Whether this ILGPU build exposes what the cache needs (checked once, by reflection).</summary>
    public static bool IsSupported => PtxKernelConstructor is not null && EntryPointProperty?.PropertyType == typeof(EntryPoint);

    [UnsafeAccessor(UnsafeAccessorKind.Constructor)]
    private static extern PTXCompiledKernel NewPtxKernel(Context context, EntryPoint entryPoint, CompiledKernel.KernelInfo? info, string assembly);

    [UnsafeAccessor(UnsafeAccessorKind.Method, Name = "get_EntryPoint")]
    private static extern EntryPoint EntryPointOf(CompiledKernel kernel);

    private readonly string target;
    private int hits;
    private int shippedHits;
    private int misses;
    private int writeFailures;

    /// <summary>Creates a cache over <paramref name="directory"/> for one compilation target.</summary>
    /// <param name="directory">Where the files go (created on the first write).</param>
    /// <param name="target">Everything about the device and compiler settings the PTX depends on, e.g. <c>SM_90 ISA_80 O2</c>.</param>
    /// <param name="shipped">The read-only layer of kernels shipped with the assembly (consulted after the directory), or <see langword="null"/>.</param>
    public KernelDiskCache(string directory, string target, ShippedKernels? shipped = null)
    {
        Directory = Path.GetFullPath(directory);
        this.target = target;
        Shipped = shipped;
    }

    /// <summary>The read-only layer of precompiled kernels below the directory, or <see langword="null"/>.</summary>
    public ShippedKernels? Shipped { get; }

    /// <summary>The cache directory.</summary>
    public string Directory { get; }

    /// <summary>Kernels read from the cache directory instead of compiled.</summary>
    public int Hits => Volatile.Read(ref hits);

    /// <summary>Kernels read from the <see cref="Shipped"/> layer instead of compiled.</summary>
    public int ShippedHits => Volatile.Read(ref shippedHits);

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
    /// <param name="shipped">The read-only layer below the directory (see the constructor), or <see langword="null"/>.</param>
    public static KernelDiskCache? FromEnvironment(string target, ShippedKernels? shipped = null) =>
        FromSetting(Environment.GetEnvironmentVariable(Variable), target, shipped);

    /// <summary>The cache a value of <see cref="Variable"/> asks for (see <see cref="FromEnvironment"/>).</summary>
    /// <param name="setting">The variable's value, or <see langword="null"/> when it is not set.</param>
    /// <param name="target">The compilation target (see the constructor).</param>
    /// <param name="shipped">The read-only layer below the directory (see the constructor), or <see langword="null"/>.</param>
    /// <returns>The cache, or <see langword="null"/> when caching is off or ILGPU's internals it needs are missing.</returns>
    public static KernelDiskCache? FromSetting(string? setting, string target, ShippedKernels? shipped = null)
    {
        var value = setting?.Trim();
        if (!IsSupported || IsOff(value))
        {
            return null;
        }

        if (!string.IsNullOrEmpty(value))
        {
            return new KernelDiskCache(value, target, shipped);
        }

        var root = Environment.GetEnvironmentVariable("XDG_CACHE_HOME");
        if (string.IsNullOrWhiteSpace(root))
        {
            var home = Environment.GetFolderPath(Environment.SpecialFolder.UserProfile);
            root = string.IsNullOrEmpty(home) ? Path.GetTempPath() : Path.Combine(home, ".cache");
        }

        return new KernelDiskCache(Path.Combine(root, "gemsinjector", "kernels"), target, shipped);
    }

    /// <summary>The static and dynamic shared memory a compiled kernel declares (what its launcher needs).</summary>
    /// <param name="kernel">A kernel compiled by ILGPU or read from the cache.</param>
    /// <returns>Its shared-memory specification.</returns>
    internal static SharedMemorySpecification SharedMemoryOf(CompiledKernel kernel) => EntryPointOf(kernel).SharedMemory;

    /// <summary>The file that holds (or will hold) the PTX of this kernel and specialization.</summary>
    /// <param name="entry">The kernel.</param>
    /// <param name="specialization">Its launch-bound specialization.</param>
    /// <returns>The full path.</returns>
    public string PathOf(in EntryPointDescription entry, in KernelSpecialization specialization) =>
        Path.Combine(Directory, FileNameOf(target, entry, specialization));

    /// <summary>
    /// The file name of a kernel's PTX for one target: readable kernel name, then a hash of everything the PTX depends
    /// on. The cache directory and the <see cref="ShippedKernels"/> archive use the same names.
    /// </summary>
    /// <param name="target">The compilation target (see the constructor).</param>
    /// <param name="entry">The kernel.</param>
    /// <param name="specialization">Its launch-bound specialization.</param>
    /// <returns>A file name without directory.</returns>
    internal static string FileNameOf(string target, in EntryPointDescription entry, in KernelSpecialization specialization)
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
        return $"{method.DeclaringType?.Name}.{method.Name}{typeArguments}-{hash}.ptx";
    }

    /// <summary>The compilation target string of a CUDA device: architecture, PTX instruction set, optimization level.</summary>
    /// <param name="architecture">The GPU architecture.</param>
    /// <param name="instructionSet">The PTX ISA the PTX declares.</param>
    /// <param name="optimization">ILGPU's optimization level.</param>
    /// <returns>E.g. <c>SM_90 ISA_80 O2</c>.</returns>
    internal static string TargetOf(CudaArchitecture architecture, CudaInstructionSet instructionSet, OptimizationLevel optimization) =>
        $"{architecture} {instructionSet} {optimization}";

    /// <summary>Whether a setting of <see cref="Variable"/> (or of <see cref="ShippedKernels.Variable"/>) turns the feature off.</summary>
    /// <param name="value">The trimmed value, or <see langword="null"/>.</param>
    /// <returns><see langword="true"/> for <c>off</c>, <c>0</c>, <c>false</c>, <c>none</c>, <c>no</c> (any case).</returns>
    internal static bool IsOff(string? value) => value?.Trim().ToLowerInvariant() is "off" or "0" or "false" or "none" or "no";

    /// <summary>
    /// The compiled kernel from disk when a valid file is there (the cache directory first, then the
    /// <see cref="Shipped"/> layer); otherwise <paramref name="compile"/>'s result, written to the directory for the next
    /// process.
    /// </summary>
    /// <param name="context">The ILGPU context the kernel belongs to.</param>
    /// <param name="entry">The kernel.</param>
    /// <param name="specialization">Its launch-bound specialization.</param>
    /// <param name="compile">Compiles the kernel (ILGPU's own path).</param>
    /// <param name="fromFile"><see langword="true"/> when the kernel was read, not compiled (see <see cref="Recompile"/>).</param>
    /// <returns>The compiled kernel.</returns>
    public CompiledKernel GetOrCompile(Context context, in EntryPointDescription entry, in KernelSpecialization specialization, Func<CompiledKernel> compile, out bool fromFile)
    {
        var path = PathOf(entry, specialization);
        if (TryRead(context, path, entry, specialization) is { } cached)
        {
            Interlocked.Increment(ref hits);
            fromFile = true;
            return cached;
        }

        if (Shipped?.TryRead(context, entry, specialization) is { } shipped)
        {
            // Not copied into the directory: the shipped file is already on this node, and the directory stays the
            // record of what this node compiled itself.
            Interlocked.Increment(ref shippedHits);
            fromFile = true;
            return shipped;
        }

        fromFile = false;
        return Recompile(entry, specialization, compile);
    }

    /// <summary>
    /// Compiles the kernel and writes it to the directory (replacing what is there): the path of a miss, and of a kernel
    /// read from a file that the driver then refused to load.
    /// </summary>
    /// <param name="entry">The kernel.</param>
    /// <param name="specialization">Its launch-bound specialization.</param>
    /// <param name="compile">Compiles the kernel (ILGPU's own path).</param>
    /// <returns>The compiled kernel.</returns>
    public CompiledKernel Recompile(in EntryPointDescription entry, in KernelSpecialization specialization, Func<CompiledKernel> compile)
    {
        Interlocked.Increment(ref misses);
        var compiled = compile();
        if (compiled is PTXCompiledKernel ptx)
        {
            TryWrite(PathOf(entry, specialization), ptx);
        }

        return compiled;
    }

    /// <summary>The compiled kernel that <paramref name="text"/> (a cache file's content) holds, or <see langword="null"/> when it is not a valid one.</summary>
    /// <param name="context">The ILGPU context the kernel belongs to.</param>
    /// <param name="text">The file's text: the header line, then the PTX.</param>
    /// <param name="entry">The kernel.</param>
    /// <param name="specialization">The specialization the kernel is loaded with.</param>
    /// <param name="addLaunchBounds">Whether to add <paramref name="specialization"/>'s directives (the file was compiled without them).</param>
    /// <returns>The kernel, or <see langword="null"/>.</returns>
    internal static PTXCompiledKernel? Parse(Context context, string text, in EntryPointDescription entry, in KernelSpecialization specialization, bool addLaunchBounds)
    {
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

        if (addLaunchBounds)
        {
            if (WithLaunchBounds(assembly, specialization) is not { } bounded)
            {
                return null;
            }

            assembly = bounded;
        }

        var entryPoint = new EntryPoint(entry, new SharedMemorySpecification(staticShared, dynamicShared), specialization);
        return NewPtxKernel(context, entryPoint, null, assembly);
    }

    /// <summary>
    /// The same compiled kernel (entry point, shared-memory layout) with other PTX text: how <see cref="Sm90aPtx"/> hands the
    /// driver a rewritten header. Never written back: the cache keeps ILGPU's own output.
    /// </summary>
    /// <param name="kernel">A kernel compiled by ILGPU or read from the cache.</param>
    /// <param name="assembly">The PTX to load instead.</param>
    /// <returns>The kernel with <paramref name="assembly"/>.</returns>
    internal static PTXCompiledKernel WithAssembly(PTXCompiledKernel kernel, string assembly) =>
        NewPtxKernel(kernel.Context, EntryPointOf(kernel), null, assembly);

    /// <summary>
    /// The PTX of a kernel compiled without launch bounds, with the directives ILGPU writes for
    /// <paramref name="specialization"/> (<c>.maxntid N, 1, 1</c>, <c>.minnctapersm M</c>) between the entry's parameter
    /// list and its body, as ILGPU places them; <see langword="null"/> when the PTX has no single entry to put them on.
    /// </summary>
    /// <param name="ptx">PTX of one kernel, compiled with the default specialization.</param>
    /// <param name="specialization">The launch bounds to add.</param>
    /// <returns>The PTX with the bounds, or <see langword="null"/>.</returns>
    internal static string? WithLaunchBounds(string ptx, in KernelSpecialization specialization)
    {
        if (specialization.MaxNumThreadsPerGroup is null && specialization.MinNumGroupsPerMultiprocessor is null)
        {
            return ptx;
        }

        var entryAt = ptx.IndexOf(".entry ", StringComparison.Ordinal);
        if (entryAt < 0 || ptx.IndexOf(".entry ", entryAt + 1, StringComparison.Ordinal) >= 0 || ptx.Contains(".maxntid", StringComparison.Ordinal))
        {
            return null;
        }

        var bodyAt = ptx.IndexOf("\n{", entryAt, StringComparison.Ordinal);
        if (bodyAt < 0)
        {
            return null;
        }

        var directives = new StringBuilder();
        if (specialization.MaxNumThreadsPerGroup is { } threads)
        {
            directives.Append(CultureInfo.InvariantCulture, $"\n.maxntid {threads}, 1, 1");
        }

        if (specialization.MinNumGroupsPerMultiprocessor is { } groups)
        {
            directives.Append(CultureInfo.InvariantCulture, $"\n.minnctapersm {groups}");
        }

        return ptx.Insert(bodyAt, directives.ToString());
    }

    /// <summary>A compiled kernel as a cache file's text: a header line (shared memory, checksum), then the PTX.</summary>
    /// <param name="kernel">The kernel.</param>
    /// <returns>The file's text.</returns>
    internal static string Serialize(PTXCompiledKernel kernel)
    {
        var shared = SharedMemoryOf(kernel);
        var header = string.Create(
            CultureInfo.InvariantCulture,
            $"// {FormatTag} static-shared={shared.StaticSize} dynamic-shared={(shared.HasDynamicMemory ? 1 : 0)} sha256={Checksum(kernel.PTXAssembly)}");
        return header + "\n" + kernel.PTXAssembly;
    }

    /// <summary>UTF-8 without a byte-order mark: the encoding of cache files.</summary>
    internal static readonly UTF8Encoding Utf8 = new(false);

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

        return Parse(context, text, entry, specialization, addLaunchBounds: false);
    }

    private void TryWrite(string path, PTXCompiledKernel kernel)
    {
        var temporary = $"{path}.{Environment.ProcessId}.{Guid.NewGuid():N}.tmp";
        try
        {
            System.IO.Directory.CreateDirectory(Directory);
            File.WriteAllText(temporary, Serialize(kernel), Utf8);
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

/// <summary>
/// The read-only layer of the kernel cache: PTX compiled ahead of time by <see cref="KernelPrecompiler"/> and shipped
/// beside the kernel assembly as one archive (<see cref="FileName"/>), so that a node's first worker process reads its
/// kernels as the second one reads the cache directory. Entries are compiled for <see cref="Architecture"/> at
/// <see cref="InstructionSet"/> (what every driver that runs that architecture accepts) without launch bounds, which are
/// added per load; they carry the same names (and so the same build identity) as the cache directory's files.
/// </summary>
/// <remarks>
/// Never written at run time and never fatal: a missing archive, another build's archive, another architecture, a driver
/// older than <see cref="InstructionSet"/>, or a damaged entry is a miss, and the kernel is compiled as without it. The
/// first problem is kept in <see cref="LastError"/> (no log line: a status surface can show it).
/// </remarks>
internal sealed class ShippedKernels
{
    /// <summary>The archive's file name, beside the kernel assembly.</summary>
    public const string FileName = "GemsInjector.Kernels.ptx.zip";

    /// <summary>The environment variable: <c>off</c> ignores the archive (to measure or rule it out); unset uses it.</summary>
    public const string Variable = "GEMS_SHIPPED_KERNELS";

    private readonly object archiveLock = new();
    private ZipArchive? archive;
    private Dictionary<string, ZipArchiveEntry>? entries;
    private bool unusable;
    private int rejected;

    /// <summary>Uses the archive at <paramref name="path"/> (opened on the first lookup).</summary>
    /// <param name="path">The archive.</param>
    public ShippedKernels(string path) => Path = System.IO.Path.GetFullPath(path);

    /// <summary>The architecture the shipped PTX is compiled for.</summary>
    public static CudaArchitecture Architecture => CudaArchitecture.SM_90;

    /// <summary>
    /// The PTX ISA the shipped PTX declares: 8.0 (CUDA 12.0 drivers and newer), the oldest ILGPU offers above SM_90's
    /// minimum; a newer driver JIT-compiles older PTX, while PTX of the installed driver's own ISA (what ILGPU picks at
    /// run time) would be refused by an older one.
    /// </summary>
    public static CudaInstructionSet InstructionSet => CudaInstructionSet.ISA_80;

    /// <summary>The compilation target string of the shipped entries (the cache key's target part).</summary>
    public static string Target => KernelDiskCache.TargetOf(Architecture, InstructionSet, IlgpuDevice.CudaOptimization);

    /// <summary>The archive's full path.</summary>
    public string Path { get; }

    /// <summary>Entries that were there but could not be used (damaged, or not a kernel of this build's form).</summary>
    public int Rejected => Volatile.Read(ref rejected);

    /// <summary>The first reason an entry or the archive could not be used, or <see langword="null"/>.</summary>
    public string? LastError { get; private set; }

    /// <summary>
    /// The shipped layer for a device, or <see langword="null"/> when <see cref="Variable"/> says <c>off</c>, the device
    /// is another architecture, its driver's ISA is older than <see cref="InstructionSet"/>, or no archive is there.
    /// </summary>
    /// <param name="architecture">The device's architecture.</param>
    /// <param name="driverInstructionSet">The newest PTX ISA the installed driver accepts (ILGPU's choice for the device).</param>
    /// <param name="directory">Where to look; by default the kernel assembly's directory (or the application's).</param>
    /// <returns>The layer, or <see langword="null"/>.</returns>
    public static ShippedKernels? ForDevice(CudaArchitecture architecture, CudaInstructionSet driverInstructionSet, string? directory = null)
    {
        if (KernelDiskCache.IsOff(Environment.GetEnvironmentVariable(Variable)) || architecture != Architecture || driverInstructionSet < InstructionSet)
        {
            return null;
        }

        directory ??= System.IO.Path.GetDirectoryName(typeof(ShippedKernels).Assembly.Location) is { Length: > 0 } assemblyDirectory
            ? assemblyDirectory
            : AppContext.BaseDirectory;
        var path = System.IO.Path.Combine(directory, FileName);
        return File.Exists(path) ? new ShippedKernels(path) : null;
    }

    /// <summary>The shipped kernel with <paramref name="specialization"/>'s launch bounds, or <see langword="null"/> when there is no usable one.</summary>
    /// <param name="context">The ILGPU context the kernel belongs to.</param>
    /// <param name="entry">The kernel.</param>
    /// <param name="specialization">The specialization it is loaded with.</param>
    /// <returns>The kernel, or <see langword="null"/>.</returns>
    public PTXCompiledKernel? TryRead(Context context, in EntryPointDescription entry, in KernelSpecialization specialization)
    {
        var name = KernelDiskCache.FileNameOf(Target, entry, default);
        if (ReadEntry(name) is not { } text)
        {
            return null;
        }

        if (KernelDiskCache.Parse(context, text, entry, specialization, addLaunchBounds: true) is { } kernel)
        {
            return kernel;
        }

        Reject($"{Path}: entry {name} is damaged or not in the expected form");
        return null;
    }

    private string? ReadEntry(string name)
    {
        lock (archiveLock)
        {
            if (unusable)
            {
                return null;
            }

            try
            {
                if (entries is null)
                {
                    archive = ZipFile.OpenRead(Path);
                    entries = new Dictionary<string, ZipArchiveEntry>(StringComparer.Ordinal);
                    foreach (var zipEntry in archive.Entries)
                    {
                        entries[zipEntry.FullName] = zipEntry;
                    }
                }

                if (!entries.TryGetValue(name, out var found))
                {
                    return null;
                }

                using var reader = new StreamReader(found.Open(), KernelDiskCache.Utf8);
                return reader.ReadToEnd();
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or InvalidDataException or NotSupportedException)
            {
                // A damaged archive (or entry: its CRC fails while reading) is not opened again by this process.
                unusable = entries is null;
                Reject($"{Path}: {ex.GetType().Name}: {ex.Message}");
                return null;
            }
        }
    }

    private void Reject(string reason)
    {
        Interlocked.Increment(ref rejected);
        LastError ??= reason;
    }
}
