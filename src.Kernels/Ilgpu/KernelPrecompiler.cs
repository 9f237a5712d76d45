using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.IO;
using System.IO.Compression;
using System.Linq;
using System.Reflection;
using ILGPU;
using ILGPU.Backends.EntryPoints;
using ILGPU.Backends.PTX;
using ILGPU.Runtime;
using ILGPU.Runtime.Cuda;

namespace GemsInjector.Kernels.Ilgpu;

/// <summary>One kernel the <see cref="KernelPrecompiler"/> compiled (or could not).</summary>
/// <param name="Kernel">The kernel's name, with its type arguments for a generic one (e.g. <c>GemmFastKernels.GemvNkF32&lt;Const16&gt;</c>).</param>
/// <param name="CompileTime">How long ILGPU's IL → PTX compile took on this machine's CPU.</param>
/// <param name="PtxBytes">The size of its PTX, or 0 when it failed.</param>
/// <param name="Error">Why it could not be compiled, or <see langword="null"/>.</param>
public sealed record PrecompiledKernel(string Kernel, TimeSpan CompileTime, int PtxBytes, string? Error);

/// <summary>
/// Compiles every kernel of this assembly to PTX ahead of time, without a GPU, into the archive that
/// <see cref="IlgpuDevice"/> reads below the per-user kernel cache (<see cref="ShippedKernels.FileName"/>, next to this
/// assembly): so that a node's first worker process skips ILGPU's compiler as the second one already does.
/// </summary>
/// <remarks>
/// Outside the ordinary build (it takes half a minute of CPU or more): packing GemsInjector runs it through
/// <c>src.Kernels/Precompile</c> (skipped with <c>-p:GemsPrecompileKernels=false</c>), and the GPU harness's
/// <c>publish.sh</c> through <c>GemsInjector.GpuHarness --precompile-kernels</c>. The archive holds one entry per kernel (each listed
/// instantiation of a generic one) for <see cref="ShippedKernels.Architecture"/> at <see cref="ShippedKernels.InstructionSet"/>,
/// without launch bounds, which the reader adds per load (they are two directive lines in ILGPU's PTX). Every entry is
/// keyed by this assembly's build, so an archive from another build is never read.
/// </remarks>
public static class KernelPrecompiler
{
    /// <summary>
    /// Compiles every kernel and writes the archive (replacing one that is there). A kernel that does not compile is
    /// left out (it is compiled at run time as before) and reported.
    /// </summary>
    /// <param name="archivePath">Where to write the archive, usually <see cref="ShippedKernels.FileName"/> beside the kernel assembly.</param>
    /// <param name="log">Receives one line per kernel, or <see langword="null"/>.</param>
    /// <returns>One record per kernel, in archive order.</returns>
    public static IReadOnlyList<PrecompiledKernel> Precompile(string archivePath, TextWriter? log = null) => Precompile(archivePath, KernelMethods(), log);

    /// <summary>Compiles the given kernels into the archive (see the public overload); tests pass a few.</summary>
    /// <param name="archivePath">Where to write the archive.</param>
    /// <param name="kernels">The kernel methods, generic ones instantiated.</param>
    /// <param name="log">Receives one line per kernel, or <see langword="null"/>.</param>
    /// <returns>One record per kernel, in archive order.</returns>
    internal static IReadOnlyList<PrecompiledKernel> Precompile(string archivePath, IEnumerable<MethodInfo> kernels, TextWriter? log)
    {
        var results = new List<PrecompiledKernel>();
        var temporary = archivePath + "." + Environment.ProcessId + ".tmp";
        using (var context = Context.Create(b => b.Optimize(IlgpuDevice.CudaOptimization)))
        using (var backend = new PTXBackend(context, new CudaCapabilityContext(ShippedKernels.Architecture), ShippedKernels.Architecture, ShippedKernels.InstructionSet, nvvmAPI: null))
        using (var archive = ZipFile.Open(temporary, ZipArchiveMode.Create))
        {
            foreach (var method in kernels)
            {
                var name = DisplayName(method);
                var watch = Stopwatch.StartNew();
                try
                {
                    var entry = EntryPointDescription.FromExplicitlyGroupedKernel(method);
                    var compiled = (PTXCompiledKernel)backend.Compile(entry, default(KernelSpecialization));
                    var elapsed = watch.Elapsed;
                    var text = KernelDiskCache.Serialize(compiled);
                    var zipEntry = archive.CreateEntry(KernelDiskCache.FileNameOf(ShippedKernels.Target, entry, default), CompressionLevel.SmallestSize);
                    // A fixed time stamp, so that the archive changes only with its PTX (whose value names ILGPU numbers
                    // from process-wide counters: the same build in the same order gives the same text).
                    zipEntry.LastWriteTime = new DateTimeOffset(2000, 1, 1, 0, 0, 0, TimeSpan.Zero);
                    using (var writer = new StreamWriter(zipEntry.Open(), KernelDiskCache.Utf8))
                    {
                        writer.Write(text);
                    }

                    results.Add(new PrecompiledKernel(name, elapsed, compiled.PTXAssembly.Length, null));
                }
                catch (Exception ex) when (ex is not IOException and not UnauthorizedAccessException)
                {
                    results.Add(new PrecompiledKernel(name, watch.Elapsed, 0, $"{ex.GetType().Name}: {ex.Message}"));
                }

                var last = results[^1];
                log?.WriteLine(last.Error is null
                    ? $"precompile: {last.CompileTime.TotalMilliseconds,8:F1} ms {last.PtxBytes,8} B  {last.Kernel}"
                    : $"precompile: FAILED {last.Kernel}: {last.Error}");
            }
        }

        File.Move(temporary, archivePath, overwrite: true);
        return results;
    }

    /// <summary>Every kernel of this assembly: each [IlgpuKernel] method, a generic one once per [IlgpuKernelVariant], in a stable order.</summary>
    /// <returns>The kernel methods (generic ones instantiated).</returns>
    internal static IEnumerable<MethodInfo> KernelMethods() =>
        typeof(KernelPrecompiler).Assembly.GetTypes()
            .SelectMany(type => type.GetMethods(BindingFlags.Static | BindingFlags.Public | BindingFlags.NonPublic))
            .Where(method => method.GetCustomAttribute<IlgpuKernelAttribute>() is { SimulatorOnly: false })
            .OrderBy(method => method.DeclaringType!.Name + "." + method.Name, StringComparer.Ordinal)
            .SelectMany(method => method.IsGenericMethodDefinition
                ? method.GetCustomAttributes<IlgpuKernelVariantAttribute>().Select(variant => method.MakeGenericMethod(variant.TypeArguments))
                : [method]);

    /// <summary>The kernel's type and method name, with its type arguments for a generic one.</summary>
    /// <param name="method">A kernel method (instantiated when generic).</param>
    /// <returns>E.g. <c>RowKernels.RmsNormF32</c> or <c>GemmFastKernels.GemvNkF32&lt;Const16&gt;</c>.</returns>
    internal static string DisplayName(MethodInfo method) =>
        method.DeclaringType!.Name + "." + method.Name + (method.IsGenericMethod ? "<" + string.Join(",", method.GetGenericArguments().Select(argument => argument.Name)) + ">" : string.Empty);
}
