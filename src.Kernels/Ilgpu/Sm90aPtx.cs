using System;
using System.Globalization;
using System.Linq;
using System.Runtime.InteropServices;
using System.Text.RegularExpressions;
using ILGPU.Backends;
using ILGPU.Backends.PTX;
using ILGPU.Runtime;
using ILGPU.Runtime.Cuda;

namespace GemsInjector.Kernels.Ilgpu;

/// <summary>
/// Loads kernels that use Hopper-only instructions (wgmma) on a device of compute capability exactly 9.0. ILGPU 1.5.3
/// writes <c>.target sm_80</c> (its newest PTX target, also for an SM_90 device), under which ptxas rejects wgmma; such
/// PTX must say <c>.target sm_90a</c>
/// (PTX ISA 8.0 or newer), which the driver accepts only on a 9.0 device. So the kernel is compiled (or read from the
/// disk cache / shipped archive) exactly as every other kernel, and only here, just before the driver loads it, is its
/// header rewritten: the caches always hold ILGPU's own output and the rewrite is applied after reading, the one way
/// (<see cref="IlgpuKernelLoader"/> calls <see cref="Prepare"/> on every compiled kernel it loads). Such kernels also
/// get the opt-in dynamic shared memory above 48 KB (<see cref="AfterLoad"/>), as do kernels of any target whose PTX
/// carries <see cref="OptInSharedMarker"/>. Kernels whose groups form thread-block clusters (<see cref="ClusterReduction"/>)
/// take the same path: their cluster size is a directive on the entry, written here from the marker they emit.
/// </summary>
internal static class Sm90aPtx
{
    /// <summary>The text that marks a kernel as needing sm_90a.</summary>
    public const string Marker = "wgmma.";

    /// <summary>
    /// The text that marks a kernel using the m16n8k8 float64 tensor-core instruction (<see cref="GemvDmmaF32Kernels"/>):
    /// PTX ISA 7.8 and sm_90, which ILGPU's <c>.target sm_80</c> header does not allow either; the same rewrite serves it.
    /// </summary>
    public const string DmmaMarker = "mma.sync.aligned.m16n8k8.row.col.f64";

    /// <summary>
    /// The text that marks a kernel using the bulk copy engine (<c>cp.async.bulk</c> with its mbarrier completion): PTX ISA
    /// 8.0 and sm_90, which ILGPU's <c>.target sm_80</c> header does not allow; the same rewrite serves it.
    /// </summary>
    public const string BulkCopyMarker = "cp.async.bulk.";

    /// <summary>
    /// Dynamic shared bytes a block of a compute-capability-9.0 device may opt into (227 KB: the H100 / H200 limit,
    /// <c>CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN</c>), less the kernel's static shared memory.
    /// </summary>
    public const int OptInSharedBytes = 227 * 1024;

    /// <summary><c>CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES</c>.</summary>
    private const int MaxDynamicSharedSizeAttribute = 8;

    /// <summary><c>CU_FUNC_ATTRIBUTE_SHARED_SIZE_BYTES</c>: the loaded function's static shared memory.</summary>
    private const int StaticSharedSizeAttribute = 1;

    private static readonly Regex VersionLine = new(@"^\.version[ \t]+(\d+)\.(\d+)[ \t]*$", RegexOptions.Multiline | RegexOptions.CultureInvariant);
    private static readonly Regex TargetLine = new(@"^\.target[ \t]+sm_\d+([ \t]*(,[^\r\n]*)?)$", RegexOptions.Multiline | RegexOptions.CultureInvariant);
    private static readonly Regex ClusterMarker = new(Regex.Escape(ClusterReduction.Marker) + @"(\d), (\d), 1", RegexOptions.CultureInvariant);
    // The entry's parameters and its performance directives (.maxntid, .minnctapersm: the launch bounds), up to its body.
    private static readonly Regex EntryBody = new(@"(\.entry[ \t]+[\w$]+[ \t]*\([^)]*\)[^{]*?)\s*\{", RegexOptions.CultureInvariant);

    /// <summary>
    /// A PTX comment a kernel emits (<c>CudaAsm.Emit</c>) when it launches with more dynamic shared memory than a group gets
    /// by default: <see cref="AfterLoad"/> raises its limit to the device's opt-in limit. Being part of the PTX, it holds for
    /// a kernel read from the disk cache or the shipped archive as for one just compiled.
    /// </summary>
    public const string OptInSharedMarker = "// gems: opt-in dynamic shared memory";

    /// <summary><c>CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN</c> (ILGPU's enumeration stops before it).</summary>
    private const int MaxSharedPerBlockOptInAttribute = 97;

    /// <summary>Whether PTX text uses an sm_90(a)-only instruction (wgmma, <see cref="DmmaMarker"/>, <see cref="BulkCopyMarker"/>) or declares clusters (<see cref="ClusterReduction.Marker"/>).</summary>
    public static bool Needs(string ptx) =>
        ptx.Contains(Marker, StringComparison.Ordinal) || ptx.Contains(ClusterReduction.Marker, StringComparison.Ordinal)
        || ptx.Contains(DmmaMarker, StringComparison.Ordinal) || ptx.Contains(BulkCopyMarker, StringComparison.Ordinal);

    /// <summary>Whether kernels that need sm_90a can load on this accelerator: CUDA, compute capability exactly 9.0.</summary>
    public static bool Supported(Accelerator accelerator) =>
        accelerator is CudaAccelerator cuda && cuda.Architecture == CudaArchitecture.SM_90 && KernelDiskCache.IsSupported;

    /// <summary>
    /// Most shared bytes a group of a kernel loaded here may use: the device's opt-in limit on a device whose kernels all
    /// pass <see cref="AfterLoad"/> (<see cref="Supported"/>: the loader prepares every kernel there, cached or not), else
    /// the default per-group limit (<see cref="Accelerator.MaxSharedMemoryPerGroup"/>).
    /// </summary>
    public static int SharedLimit(Accelerator accelerator) =>
        Supported(accelerator) ? OptInSharedLimit((CudaAccelerator)accelerator) : accelerator.MaxSharedMemoryPerGroup;

    private static int OptInSharedLimit(CudaAccelerator cuda) =>
        CudaAPI.CurrentAPI.GetDeviceAttribute((DeviceAttributeKind)MaxSharedPerBlockOptInAttribute, cuda.DeviceId);

    /// <summary>
    /// The PTX with <c>.target sm_90a</c> (whatever plain <c>sm_NN</c> ILGPU wrote; its options such as <c>, debug</c>
    /// kept), at least <c>.version 8.0</c> and, for a kernel that declares clusters, the entry's cluster directive
    /// (<see cref="WithClusterDirective"/>), the rest unchanged; <see langword="null"/> when it does not have exactly one
    /// <c>.version</c> line and one <c>.target sm_NN</c> line to rewrite, or a cluster directive cannot be placed.
    /// </summary>
    public static string? Rewrite(string ptx)
    {
        var versions = VersionLine.Matches(ptx);
        var targets = TargetLine.Matches(ptx);
        if (versions.Count != 1 || targets.Count != 1)
        {
            return null;
        }

        var version = versions[0];
        int major = int.Parse(version.Groups[1].Value, CultureInfo.InvariantCulture);
        var text = TargetLine.Replace(ptx, ".target sm_90a$1", 1);
        text = major >= 8 ? text : VersionLine.Replace(text, ".version 8.0", 1);
        return WithClusterDirective(text);
    }

    /// <summary>
    /// <paramref name="ptx"/> with <c>.reqnctapercluster x, y, 1</c> after its entry's parameters and performance
    /// directives (the launch bounds' <c>.maxntid</c> / <c>.minnctapersm</c>), before its body, when it
    /// carries <see cref="ClusterReduction.Marker"/> <c>x, y, 1</c> (every marker of one shape), unchanged without a marker;
    /// <see langword="null"/> for markers of two shapes or not exactly one entry.
    /// </summary>
    private static string? WithClusterDirective(string ptx)
    {
        var markers = ClusterMarker.Matches(ptx);
        if (markers.Count == 0)
        {
            return ptx;
        }

        string shape = markers[0].Groups[1].Value + ", " + markers[0].Groups[2].Value;
        var entries = EntryBody.Matches(ptx);
        if (entries.Count != 1 || markers.Any(m => m.Groups[1].Value + ", " + m.Groups[2].Value != shape))
        {
            return null;
        }

        return EntryBody.Replace(ptx, "$1\n.reqnctapercluster " + shape + ", 1\n{", 1);
    }

    /// <summary>
    /// The kernel the loader hands the driver: <paramref name="compiled"/> itself unless it needs sm_90a and the
    /// accelerator is a 9.0 device, then the same kernel (entry point, shared memory) with its header rewritten; on a 9.0
    /// device either kind also takes the process's L2 prefetch size on its global loads (<see cref="PtxL2Prefetch"/>: 128 bytes by default).
    /// </summary>
    /// <exception cref="InvalidOperationException">The kernel needs sm_90a and cannot have it here (another device, or PTX of an unexpected form).</exception>
    public static CompiledKernel Prepare(Accelerator accelerator, CompiledKernel compiled)
    {
        if (compiled is not PTXCompiledKernel ptx)
        {
            return compiled;
        }

        // The prefetch qualifiers need sm_75; they are measured on the 9.0 devices this class serves (H200 Run 217) and applied there only.
        bool supported = Supported(accelerator);
        var text = PtxL2Prefetch.Apply(ptx.PTXAssembly, supported ? PtxL2Prefetch.FromEnvironment() : 0);
        if (!Needs(text))
        {
            return ReferenceEquals(text, ptx.PTXAssembly) ? compiled : KernelDiskCache.WithAssembly(ptx, text);
        }

        if (!supported)
        {
            throw new InvalidOperationException($"{compiled.Name} uses wgmma or thread-block clusters, which need a CUDA device of compute capability 9.0 (sm_90a).");
        }

        var rewritten = Rewrite(text) ?? throw new InvalidOperationException($"{compiled.Name}: no single .version / .target sm_NN header to rewrite to sm_90a, or no single entry for its cluster directive.");
        return KernelDiskCache.WithAssembly(ptx, rewritten);
    }

    /// <summary>
    /// Raises a loaded sm_90a kernel's dynamic shared memory limit to <see cref="OptInSharedBytes"/>, and that of a kernel
    /// marked with <see cref="OptInSharedMarker"/> to the device's opt-in limit (ILGPU's launcher passes any size to
    /// cuLaunchKernel, which refuses more than 48 KB without this attribute).
    /// </summary>
    /// <exception cref="InvalidOperationException">The driver refused the attribute.</exception>
    public static void AfterLoad(Kernel kernel, CompiledKernel compiled)
    {
        if (kernel is not CudaKernel cuda || compiled is not PTXCompiledKernel ptx)
        {
            return;
        }

        bool sm90a = Needs(ptx.PTXAssembly);
        if (!sm90a && !ptx.PTXAssembly.Contains(OptInSharedMarker, StringComparison.Ordinal))
        {
            return;
        }

        int limit = sm90a ? OptInSharedBytes : OptInSharedLimit((CudaAccelerator)kernel.Accelerator);
        // The static size as the loaded function has it, not ILGPU's declared bytes: ptxas pads a 4-byte static variable
        // up, and the driver refuses a dynamic limit whose sum with the function's static size passes the opt-in limit
        // (H200 Run 97: 232 444 bytes refused for a kernel that declared 4 static bytes).
        int staticBytes = Math.Max(Driver.GetAttribute(cuda.FunctionPtr, StaticSharedSizeAttribute), KernelDiskCache.SharedMemoryOf(compiled).StaticSize);
        int bytes = limit - staticBytes;
        int status = Driver.SetAttribute(cuda.FunctionPtr, MaxDynamicSharedSizeAttribute, bytes);
        if (status != 0)
        {
            throw new InvalidOperationException($"{compiled.Name}: cuFuncSetAttribute(MAX_DYNAMIC_SHARED_SIZE_BYTES, {bytes}) failed with CUDA error {status}.");
        }
    }

    /// <summary>The two driver entry points ILGPU does not wrap, resolved from the driver library ILGPU itself uses.</summary>
    private static class Driver
    {
        private static readonly Lazy<(SetAttributeFunction Set, GetAttributeFunction Get)?> Functions = new(Resolve);

        [UnmanagedFunctionPointer(CallingConvention.Winapi)]
        private delegate int SetAttributeFunction(IntPtr function, int attribute, int value);

        [UnmanagedFunctionPointer(CallingConvention.Winapi)]
        private delegate int GetAttributeFunction(out int value, int attribute, IntPtr function);

        public static int SetAttribute(IntPtr function, int attribute, int value) =>
            Functions.Value is { } driver ? driver.Set(function, attribute, value) : throw new InvalidOperationException("cuFuncSetAttribute is not in the CUDA driver library.");

        /// <summary>A function attribute's value (<c>cuFuncGetAttribute</c>).</summary>
        /// <exception cref="InvalidOperationException">The driver refused, or has no such entry point.</exception>
        public static int GetAttribute(IntPtr function, int attribute)
        {
            var driver = Functions.Value ?? throw new InvalidOperationException("cuFuncGetAttribute is not in the CUDA driver library.");
            int status = driver.Get(out int value, attribute, function);
            return status == 0 ? value : throw new InvalidOperationException($"cuFuncGetAttribute({attribute}) failed with CUDA error {status}.");
        }

        private static (SetAttributeFunction, GetAttributeFunction)? Resolve()
        {
            foreach (var name in new[] { "libcuda.so.1", "libcuda.so", "nvcuda.dll" })
            {
                if (NativeLibrary.TryLoad(name, out var library) && NativeLibrary.TryGetExport(library, "cuFuncSetAttribute", out var set)
                    && NativeLibrary.TryGetExport(library, "cuFuncGetAttribute", out var get))
                {
                    return (Marshal.GetDelegateForFunctionPointer<SetAttributeFunction>(set), Marshal.GetDelegateForFunctionPointer<GetAttributeFunction>(get));
                }
            }

            return null;
        }
    }
}
