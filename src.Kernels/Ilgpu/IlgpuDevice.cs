using System;
using System.Collections.Concurrent;
using System.Collections.Generic;
using System.Diagnostics;
using System.Linq;
using System.Runtime.CompilerServices;
using ILGPU;
using ILGPU.Runtime;
using ILGPU.Runtime.CPU;
using ILGPU.Runtime.Cuda;
using ILGPU.Runtime.OpenCL;

[assembly: InternalsVisibleTo("GemsInjector.Kernels.Ilgpu.Tests")]

// The GPU harness's --decode-trace launches a measuring kernel directly (DecodeTraceRun).
[assembly: InternalsVisibleTo("GemsInjector.GpuHarness")]

// ILGPU generates kernel launchers in a dynamic assembly of this name; internal kernel argument structs need it.
[assembly: InternalsVisibleTo("ILGPURuntime")]

namespace GemsInjector.Kernels.Ilgpu;

/// <summary>Which ILGPU accelerator an <see cref="IlgpuDevice"/> drives.</summary>
public enum IlgpuDeviceKind
{
    /// <summary>An NVIDIA GPU through CUDA (the serving path).</summary>
    Cuda,

    /// <summary>A GPU through OpenCL.</summary>
    OpenCL,

    /// <summary>ILGPU's CPU accelerator: a GPU simulator (warp 4, groups of at most 16). Correctness tests only: slow.</summary>
    CpuSimulator,
}

/// <summary>An ILGPU device could not be created; the message names the device kind and the reason.</summary>
public sealed class IlgpuDeviceException : Exception
{
    /// <summary>Creates the exception.</summary>
    /// <param name="kind">The device kind that was asked for.</param>
    /// <param name="message">What went wrong.</param>
    /// <param name="inner">The underlying exception, if any.</param>
    public IlgpuDeviceException(IlgpuDeviceKind kind, string message, Exception? inner = null)
        : base($"Cannot create the ILGPU {kind} device: {message}", inner) => Kind = kind;

    /// <summary>The device kind that was asked for.</summary>
    public IlgpuDeviceKind Kind { get; }
}

/// <summary>
/// A kernel could not be compiled or loaded on its first call (ILGPU compiles each kernel lazily). The device itself
/// is fine and its other kernels still run; callers such as the operator table run that operator's CPU kernel instead.
/// </summary>
public sealed class IlgpuKernelCompileException : Exception
{
    /// <summary>Creates the exception.</summary>
    /// <param name="kernel">The kernel (method name, with its variant for generic kernels).</param>
    /// <param name="device">The device, as <see cref="IlgpuDevice.ToString"/> names it.</param>
    /// <param name="inner">What ILGPU or the driver threw.</param>
    public IlgpuKernelCompileException(string kernel, string device, Exception inner)
        : base($"The kernel {kernel} could not be compiled for {device}: {inner.GetType().Name}: {inner.Message}", inner) => Kernel = kernel;

    /// <summary>The kernel that failed.</summary>
    public string Kernel { get; }
}

/// <summary>
/// One ILGPU context and accelerator, with its kernels compiled lazily (each on its first call, once per device) and
/// the compile times recorded. Thread-safe for kernel loading; launches go to the accelerator's default stream.
/// </summary>
public sealed class IlgpuDevice : IDisposable
{
    private readonly Context context;
    private readonly ConcurrentDictionary<string, TimeSpan> compileTimes = new();
    private readonly Dictionary<string, IlgpuKernelCompileException> failedKernels = new();
    private readonly object loadLock = new();
    private readonly IlgpuKernelLoader loader;
    private IlgpuKernels? kernels;
    private Action<KernelConfig, ArrayView<int>, ArrayView<float>, ArrayView<Float4>, ArrayView<Half8>, ArrayView<ushort>, int>? warmUp;
    private bool disposed;

    private IlgpuDevice(IlgpuDeviceKind kind, Context context, Accelerator accelerator)
    {
        Kind = kind;
        this.context = context;
        Accelerator = accelerator;
        Name = accelerator.Name;
        WarpSize = accelerator.WarpSize;
        MaxGroupSize = accelerator.MaxNumThreadsPerGroup;
        MultiprocessorCount = kind == IlgpuDeviceKind.CpuSimulator ? 0 : accelerator.NumMultiprocessors;
        KernelDiskCache? diskCache = null;
        if (accelerator is CudaAccelerator cuda)
        {
            Architecture = cuda.Architecture.ToString();
            diskCache = KernelDiskCache.FromEnvironment(
                KernelDiskCache.TargetOf(cuda.Architecture, cuda.InstructionSet, CudaOptimization),
                ShippedKernels.ForDevice(cuda.Architecture, cuda.InstructionSet));
        }

        loader = new IlgpuKernelLoader(accelerator, diskCache);

        // Launch shapes: group sizes are multiples of the warp and never above the accelerator's limit, so the same
        // kernels run on the simulator (groups of 16) and on CUDA (256 / 512 / 1024).
        ElementwiseGroupSize = Math.Min(MaxGroupSize, 256);
        MaxElementwiseGroups = kind == IlgpuDeviceKind.CpuSimulator ? 64 : Math.Max(1, accelerator.NumMultiprocessors) * ElementwiseGroupsPerSm;
    }

    /// <summary>
    /// Element-wise launches' groups per multiprocessor before the grid-stride loops take over: 128 256-thread groups
    /// (about two packed elements per thread at 64M elements), or <c>GEMS_ELEMENTWISE_GROUPS_PER_SM</c> (1–4096, read once
    /// per process) for a measuring run. On the H200 (2026-11-28 sweep, docs/perf/h100-notes-elementwise.md) 128 beat the
    /// earlier 32 on every case measured: float32 silu 3959 → 4073 GB/s, add 4149 → 4243, bfloat16 silu 3787 → 3949; 512 (no
    /// loop at all) was best for float32 (4159 / 4285) but lost for bfloat16 (3823).
    /// </summary>
    internal static int ElementwiseGroupsPerSm { get; } =
        int.TryParse(Environment.GetEnvironmentVariable("GEMS_ELEMENTWISE_GROUPS_PER_SM"), out var perSm) && perSm is >= 1 and <= 4096 ? perSm : 128;

    /// <summary>The kind of accelerator.</summary>
    public IlgpuDeviceKind Kind { get; }

    /// <summary>Which device of its kind this is (0 for the first GPU of the machine).</summary>
    public int Ordinal { get; private init; }

    /// <summary>The accelerator's name as ILGPU reports it.</summary>
    public string Name { get; }

    /// <summary>Threads per warp (32 on NVIDIA, 4 on the CPU simulator).</summary>
    public int WarpSize { get; }

    /// <summary>The largest group (thread block) the accelerator accepts.</summary>
    public int MaxGroupSize { get; }

    /// <summary>Streaming multiprocessors (CUDA), compute units (OpenCL), 0 on the CPU simulator.</summary>
    public int MultiprocessorCount { get; }

    /// <summary>The CUDA architecture (e.g. <c>SM_90</c>), or <see langword="null"/> when not CUDA.</summary>
    public string? Architecture { get; }

    /// <summary>The underlying ILGPU accelerator (allocate buffers on it).</summary>
    public Accelerator Accelerator { get; }

    /// <summary>The kernels of this device (compiled on first use of each).</summary>
    public IlgpuKernels Kernels => kernels ??= new IlgpuKernels(this);

    /// <summary>Group size of the element-wise (grid-stride) kernels.</summary>
    internal int ElementwiseGroupSize { get; }

    /// <summary>Upper bound on groups of an element-wise launch (the loops stride over the rest).</summary>
    internal int MaxElementwiseGroups { get; }

    /// <summary>First-call compile (load) time of each kernel compiled so far, by kernel name.</summary>
    public IReadOnlyDictionary<string, TimeSpan> CompileTimes => compileTimes;

    /// <summary>Whether the kernel named <paramref name="kernel"/>, or any variant of it (e.g. <c>GemvKnF32&lt;2&gt;</c>), has been compiled.</summary>
    /// <param name="kernel">The kernel's method name.</param>
    /// <returns><see langword="true"/> once it ran at least once on this device.</returns>
    public bool HasCompiled(string kernel) =>
        compileTimes.Keys.Any(name => name == kernel || name.StartsWith(kernel + "<", StringComparison.Ordinal));

    /// <summary>
    /// Where compiled kernels are kept between processes (CUDA only; <c>GEMS_KERNEL_CACHE</c> names another directory
    /// or turns it <c>off</c>), or <see langword="null"/> when this device compiles every kernel itself.
    /// </summary>
    public string? KernelCacheDirectory => loader.DiskCache?.Directory;

    /// <summary>Kernels this device read from the on-disk cache instead of compiling them.</summary>
    public int KernelsFromDiskCache => loader.DiskCache?.Hits ?? 0;

    /// <summary>
    /// The archive of precompiled kernels shipped beside the kernel assembly that this device reads below the on-disk
    /// cache (CUDA on the architecture it was compiled for; <c>GEMS_SHIPPED_KERNELS=off</c> ignores it), or
    /// <see langword="null"/>.
    /// </summary>
    public string? ShippedKernelsPath => loader.DiskCache?.Shipped?.Path;

    /// <summary>Kernels this device read from the shipped archive instead of compiling them.</summary>
    public int KernelsFromShippedArchive => loader.DiskCache?.ShippedHits ?? 0;

    /// <summary>
    /// Kernels this device launches without ILGPU's per-kernel launcher (<c>DirectCudaLaunch</c>: CUDA, unless
    /// <c>GEMS_KERNEL_LAUNCHER=ilgpu</c>); the others keep ILGPU's.
    /// </summary>
    public int DirectLaunchKernels => loader.DirectLaunches;

    /// <summary>Why a shipped or cached kernel could not be used (the first reason), or <see langword="null"/>; such kernels are compiled instead.</summary>
    public string? KernelCacheProblem => loader.DiskCache?.Shipped?.LastError ?? loader.RejectedFileError;

    /// <summary>ILGPU's optimization level for CUDA kernels (part of the kernel cache's key).</summary>
    internal const OptimizationLevel CudaOptimization = OptimizationLevel.O2;

    /// <summary>Creates a device of the given kind (the first device of that kind).</summary>
    /// <param name="kind">The accelerator kind.</param>
    /// <returns>The device; dispose it to release the accelerator.</returns>
    /// <exception cref="IlgpuDeviceException">No such device, or its driver failed; the message says which and why.</exception>
    public static IlgpuDevice Create(IlgpuDeviceKind kind) => Create(kind, ordinal: 0);

    /// <summary>
    /// Creates a device of the given kind: the device at <paramref name="ordinal"/> modulo the number of such devices,
    /// so that worker processes of one node, each passing its local rank, spread over the node's GPUs.
    /// </summary>
    /// <param name="kind">The accelerator kind.</param>
    /// <param name="ordinal">Which device of that kind (wraps around the devices there are); 0 for the first.</param>
    /// <returns>The device; dispose it to release the accelerator.</returns>
    /// <exception cref="IlgpuDeviceException">No such device, or its driver failed; the message says which and why.</exception>
    public static IlgpuDevice Create(IlgpuDeviceKind kind, int ordinal)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(ordinal);
        Context? ctx = null;
        try
        {
            switch (kind)
            {
                case IlgpuDeviceKind.Cuda:
                    ctx = Context.Create(b => b.Cuda().Optimize(CudaOptimization));
                    if (ctx.GetCudaDevices().Count == 0)
                    {
                        throw new IlgpuDeviceException(kind, "no CUDA device found (is libcuda.so on the library path and an NVIDIA driver installed?).");
                    }

                    return new IlgpuDevice(kind, ctx, ctx.CreateCudaAccelerator(ordinal % ctx.GetCudaDevices().Count)) { Ordinal = ordinal % ctx.GetCudaDevices().Count };
                case IlgpuDeviceKind.OpenCL:
                    ctx = Context.Create(b => b.OpenCL().Optimize(OptimizationLevel.O2));
                    if (ctx.GetCLDevices().Count == 0)
                    {
                        throw new IlgpuDeviceException(kind, "no OpenCL device with the features ILGPU needs was found.");
                    }

                    return new IlgpuDevice(kind, ctx, ctx.CreateCLAccelerator(ordinal % ctx.GetCLDevices().Count)) { Ordinal = ordinal % ctx.GetCLDevices().Count };
                case IlgpuDeviceKind.CpuSimulator:
                    ctx = Context.Create(b => b.CPU().Optimize(OptimizationLevel.O1));
                    return new IlgpuDevice(kind, ctx, ctx.CreateCPUAccelerator(0));
                default:
                    throw new ArgumentOutOfRangeException(nameof(kind), kind, "Unknown ILGPU device kind.");
            }
        }
        catch (IlgpuDeviceException)
        {
            ctx?.Dispose();
            throw;
        }
        catch (Exception ex) when (ex is not ArgumentOutOfRangeException)
        {
            ctx?.Dispose();
            throw new IlgpuDeviceException(kind, $"{ex.GetType().Name}: {ex.Message}", ex);
        }
    }

    /// <summary>
    /// Loads (compiles) a kernel once and records how long it took. A kernel that fails to load throws
    /// <see cref="IlgpuKernelCompileException"/>, then and on every later call, without compiling it again.
    /// </summary>
    internal T Load<T>(ref T? slot, string name, Func<IlgpuKernelLoader, T> load)
        where T : class
    {
        lock (loadLock)
        {
            ObjectDisposedException.ThrowIf(disposed, this);
            if (slot is null)
            {
                if (failedKernels.TryGetValue(name, out var failed))
                {
                    throw failed;
                }

                var watch = Stopwatch.StartNew();
                try
                {
                    slot = load(loader);
                }
                catch (Exception ex)
                {
                    failedKernels[name] = new IlgpuKernelCompileException(name, ToString(), ex);
                    throw failedKernels[name];
                }

                compileTimes[name] = watch.Elapsed;
            }

            return slot;
        }
    }

    /// <summary>
    /// Loads (from the on-disk cache, or by compiling it) and runs one trivial kernel, so that ILGPU's compiler, loader
    /// and launch path are compiled by the .NET JIT before an operator's first call instead of during it (tens of
    /// milliseconds from the cache, hundreds when ILGPU compiles), and takes the host paths most operators share: a
    /// memset on the stream (the reductions' tickets), the view casts of the vector kernels (float32 and 16-bit words
    /// as 16-byte vectors), and a generic kernel with launch bounds, a scalar and views of those types
    /// (<see cref="WarmUpKernels.Touch{TInstance}"/>). The runtime calls it on the thread that starts a GPU in the
    /// background; nothing an operator needs is compiled by it.
    /// </summary>
    /// <returns>How long it took.</returns>
    /// <exception cref="IlgpuKernelCompileException">The trivial kernel cannot be built: neither can any other.</exception>
    public TimeSpan WarmUp()
    {
        var watch = Stopwatch.StartNew();
        using var flag = Accelerator.Allocate1D<int>(1);
        using var words = Accelerator.Allocate1D<float>(8);
        // The buffer overload is the one the operators' scratch takes; the view overload was the warm-up's before it
        // (Attempt 10): the pair is what Run 200 measured (h100-notes-startup.md, Attempt 12).
        flag.MemSetToZero();
        flag.View.MemSetToZero();
        ArrayView<float> floats = words.View;
        var shorts = floats.Cast<ushort>();
        _ = shorts.Cast<Half8>();
        Load(ref warmUp, nameof(WarmUpKernels.Touch), acc => acc.LoadStreamKernel<ArrayView<int>, ArrayView<float>, ArrayView<Float4>, ArrayView<Half8>, ArrayView<ushort>, int>(
            WarmUpKernels.Touch<Const1>, LaunchBounds(WarpSize, null)))(new KernelConfig(1, WarpSize), flag.View, floats, floats.Cast<Float4>(), floats.Cast<Half8>(), shorts, 1);
        Accelerator.Synchronize();
        return watch.Elapsed;
    }

    /// <summary>
    /// Launch bounds for a kernel whose groups never exceed <paramref name="maxThreads"/> (emitted as <c>.maxntid</c>, and
    /// <c>.minnctapersm</c> when <paramref name="minGroupsPerSm"/> is set). The CPU simulator rejects specializations
    /// above its 16-thread groups, so it gets none.
    /// </summary>
    /// <param name="maxThreads">The most threads a group of the kernel has (capped at the device's group size).</param>
    /// <param name="minGroupsPerSm">Groups per SM to ask of the compiler, or <see langword="null"/>.</param>
    /// <returns>The specialization to load the kernel with.</returns>
    internal KernelSpecialization LaunchBounds(int maxThreads, int? minGroupsPerSm) =>
        Kind == IlgpuDeviceKind.CpuSimulator ? default : new KernelSpecialization(Math.Min(maxThreads, MaxGroupSize), minGroupsPerSm);

    /// <summary>Waits for all launched kernels to finish.</summary>
    public void Synchronize() => Accelerator.Synchronize();

    /// <inheritdoc/>
    public override string ToString() =>
        $"{Kind} '{Name}' (warp {WarpSize}, groups <= {MaxGroupSize}{(MultiprocessorCount > 0 ? $", {MultiprocessorCount} SMs" : string.Empty)}{(Architecture is null ? string.Empty : ", " + Architecture)})";

    /// <inheritdoc/>
    public void Dispose()
    {
        lock (loadLock)
        {
            if (disposed)
            {
                return;
            }

            disposed = true;
        }

        Accelerator.Dispose();
        context.Dispose();
    }
}
