using System;
using System.Collections.Generic;
using System.Runtime.CompilerServices;
using System.Threading;
using GemsInjector.Kernels.Cpu;
using GemsInjector.Kernels.Ilgpu;
using ILGPU;
using ILGPU.Runtime;
using TorchSharp;

namespace GemsInjector.Kernels.Staging;

/// <summary>
/// The ILGPU kernels of one <see cref="IlgpuDevice"/> behind the CPU kernels' signatures (<see cref="CpuTensorKernels"/>), so the
/// operator table can bind either. The host's tensors live in CPU memory (TorchSharp has no CUDA build here): each call stages its
/// operands into device buffers (copied straight from the tensors' memory, no managed array in between), launches, synchronizes and
/// copies the result into a new <c>torch.empty</c> tensor (or back in place for <see cref="FusedAddRmsNorm"/> and
/// <see cref="RotaryEmbedding"/>).
/// <para>
/// A call whose arguments the device kernels do not cover (broadcasting, a dimension other than the last, topk smallest, a dtype the
/// device kernel lacks, zero-size tensors, ...) and every invalid call go to the CPU kernel of the same name: valid inputs are always
/// computed, and invalid ones fail with exactly the CPU kernels' exceptions and messages.
/// </para>
/// <para>
/// On a GPU, an mm, addmm, bmm or attention call runs the CPU kernel instead when copying its operands there and back would
/// take longer than the CPU's work (<see cref="StagingCost"/>; decode-sized calls against a large weight), unless
/// <c>GEMS_GPU_OFFLOAD=always</c>; the simulator takes every call. Copies go through page-locked slots
/// (<see cref="PinnedStaging"/>) where the driver grants them.
/// </para>
/// <para>
/// Device buffers come from a small per-device pool keyed by (power-of-two) size, so a call does not allocate device memory each
/// time; launches on one device are serialized by a per-device lock. Thread-safe.
/// </para>
/// </summary>
public sealed unsafe partial class IlgpuTensorKernels : IDisposable
{
    /// <summary>The default cap on the device memory the pool keeps between calls.</summary>
    public const long DefaultMaxPooledBytes = 512L << 20;

    private const int MaxBuffersPerSize = 4;
    private const int MinBucketBytes = 256;

    private static readonly ConditionalWeakTable<IlgpuDevice, DeviceState> States = new();

    private readonly DeviceState state;
    private readonly bool ownsDevice;
    private int disposed;

    /// <summary>Creates the kernels of <paramref name="device"/>.</summary>
    /// <param name="device">The ILGPU device the kernels run on.</param>
    /// <param name="ownsDevice">Dispose <paramref name="device"/> with these kernels.</param>
    /// <param name="maxPooledBytes">The most device memory kept pooled between calls (on this device, across instances).</param>
    /// <exception cref="ArgumentNullException"><paramref name="device"/> is null.</exception>
    public IlgpuTensorKernels(IlgpuDevice device, bool ownsDevice = false, long maxPooledBytes = DefaultMaxPooledBytes)
    {
        ArgumentNullException.ThrowIfNull(device);
        ArgumentOutOfRangeException.ThrowIfNegative(maxPooledBytes);
        Device = device;
        this.ownsDevice = ownsDevice;
        state = States.GetValue(device, static d => new DeviceState(d));
        lock (state.Gate)
        {
            state.MaxPooledBytes = maxPooledBytes;
        }
    }

    /// <summary>The device the kernels run on.</summary>
    public IlgpuDevice Device { get; }

    /// <summary>The back-end name: <c>cuda</c>, <c>opencl</c> or <c>ilgpu-cpu</c> (<see cref="KernelBackends"/>).</summary>
    public string BackendName => Device.Kind switch
    {
        IlgpuDeviceKind.Cuda => KernelBackends.Cuda,
        IlgpuDeviceKind.OpenCL => KernelBackends.OpenCL,
        _ => KernelBackends.IlgpuCpu,
    };

    /// <summary>Device bytes held by the pool now (for diagnostics and tests).</summary>
    public long PooledBytes
    {
        get
        {
            lock (state.Gate)
            {
                return state.PooledBytes;
            }
        }
    }

    /// <summary>Device buffers allocated by this device's pool so far (for diagnostics and tests: stays flat when calls reuse them).</summary>
    public long BufferAllocations
    {
        get
        {
            lock (state.Gate)
            {
                return state.Allocations;
            }
        }
    }

    /// <summary>Releases the pooled device buffers (and the device, when owned). Later calls allocate again.</summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref disposed, 1) != 0)
        {
            return;
        }

        lock (state.Gate)
        {
            state.Clear();
        }

        if (ownsDevice)
        {
            Device.Dispose();
        }
    }

    // ---- argument predicates: true when the device path covers the call (anything else goes to the CPU kernel) ----

    /// <summary>A float32, float16 or bfloat16 CPU tensor.</summary>
    private static bool Floating(torch.Tensor? tensor, out torch.ScalarType dtype)
    {
        dtype = default;
        if (tensor is null || tensor.device_type != DeviceType.CPU)
        {
            return false;
        }

        dtype = tensor.dtype;
        return dtype is torch.ScalarType.Float32 or torch.ScalarType.Float16 or torch.ScalarType.BFloat16;
    }

    /// <summary>A CPU tensor of <paramref name="dtype"/>.</summary>
    private static bool Same(torch.Tensor? tensor, torch.ScalarType dtype) =>
        tensor is not null && tensor.device_type == DeviceType.CPU && tensor.dtype == dtype;

    private static bool Is16(torch.ScalarType dtype) => dtype != torch.ScalarType.Float32;

    private static int ElementBytes(torch.ScalarType dtype) => Is16(dtype) ? 2 : 4;

    private static HalfFormat Format(torch.ScalarType dtype) =>
        dtype == torch.ScalarType.BFloat16 ? HalfFormat.BFloat16 : HalfFormat.Float16;

    /// <summary>An element count the device kernels take (positive, below 2^31).</summary>
    private static bool Launchable(long count) => count > 0 && count <= int.MaxValue;

    private static long Count(long[] shape)
    {
        long count = 1;
        foreach (long size in shape)
        {
            count *= size;
        }

        return count;
    }

    /// <summary>Whether the element ranges of two tensors overlap in memory.</summary>
    private static bool Overlap(torch.Tensor a, torch.Tensor b)
    {
        long sizeA = a.numel() * a.element_size(), sizeB = b.numel() * b.element_size();
        byte* pa = (byte*)KernelArguments.Data(a), pb = (byte*)KernelArguments.Data(b);
        return pa < pb + sizeB && pb < pa + sizeA;
    }

    /// <summary>Enters the device's lock and returns the call's staging area (dispose it to return the buffers and leave the lock).</summary>
    private Staging Begin()
    {
        ObjectDisposedException.ThrowIf(Volatile.Read(ref disposed) != 0, this);
        return new Staging(state);
    }

    /// <summary>
    /// One device call into a new CPU tensor of <paramref name="shape"/> and <paramref name="dtype"/>: under the device's lock,
    /// <paramref name="launch"/> stages the operands and launches into the view it returns, which is copied into the tensor once
    /// the device is done. The tensor is disposed when the call fails.
    /// </summary>
    private torch.Tensor Launch<T>(long[] shape, torch.ScalarType dtype, Func<Staging, IlgpuKernels, ArrayView<T>> launch)
        where T : unmanaged
    {
        torch.Tensor result = torch.empty(shape, dtype, torch.CPU);
        try
        {
            using var s = Begin();
            ArrayView<T> y = launch(s, Device.Kernels);
            s.Synchronize();
            s.Download(y, result);
            return result;
        }
        catch
        {
            result.Dispose();
            throw;
        }
    }

    /// <summary>Per-device lock and buffer pool.</summary>
    private sealed class DeviceState
    {
        private readonly Dictionary<long, Stack<MemoryBuffer1D<byte, Stride1D.Dense>>> free = new();
        private PinnedStaging? pinned;
        private bool pinnedTried;

        public DeviceState(IlgpuDevice device) => Device = device;

        public object Gate { get; } = new();

        public IlgpuDevice Device { get; }

        public long MaxPooledBytes { get; set; } = DefaultMaxPooledBytes;

        public long PooledBytes { get; private set; }

        public long Allocations { get; private set; }

        /// <summary>
        /// The page-locked slots host copies go through on a CUDA device, made at the first copy; <see langword="null"/> on other
        /// devices, or when the driver refused page-locked memory (then copies go from pageable memory, as the driver stages them).
        /// Caller holds <see cref="Gate"/>.
        /// </summary>
        public PinnedStaging? Pinned
        {
            get
            {
                if (!pinnedTried)
                {
                    pinnedTried = true;
                    pinned = PinnedStaging.TryCreate(Device.Accelerator);
                }

                return pinned;
            }
        }

        /// <summary>A buffer of at least <paramref name="bytes"/> bytes (caller holds <see cref="Gate"/>).</summary>
        public MemoryBuffer1D<byte, Stride1D.Dense> Rent(long bytes)
        {
            long bucket = Bucket(bytes);
            if (free.TryGetValue(bucket, out var stack) && stack.Count > 0)
            {
                PooledBytes -= bucket;
                return stack.Pop();
            }

            Allocations++;
            return Device.Accelerator.Allocate1D<byte>(bucket);
        }

        /// <summary>Keeps <paramref name="buffer"/> for later calls, or frees it beyond the caps (caller holds <see cref="Gate"/>).</summary>
        public void Return(MemoryBuffer1D<byte, Stride1D.Dense> buffer)
        {
            long bucket = buffer.Length;
            if (!free.TryGetValue(bucket, out var stack))
            {
                stack = new Stack<MemoryBuffer1D<byte, Stride1D.Dense>>();
                free[bucket] = stack;
            }

            if (stack.Count >= MaxBuffersPerSize || PooledBytes + bucket > MaxPooledBytes)
            {
                buffer.Dispose();
                return;
            }

            stack.Push(buffer);
            PooledBytes += bucket;
        }

        public void Clear()
        {
            foreach (var stack in free.Values)
            {
                while (stack.Count > 0)
                {
                    stack.Pop().Dispose();
                }
            }

            free.Clear();
            PooledBytes = 0;
            pinned?.Dispose();
            pinned = null;
            pinnedTried = false;
        }

        private static long Bucket(long bytes)
        {
            long size = MinBucketBytes;
            while (size < bytes)
            {
                size <<= 1;
            }

            return size;
        }
    }

    /// <summary>
    /// One call's device buffers, rented from the pool under the device's lock: <see cref="Upload{T}"/> copies a tensor's elements
    /// in, <see cref="Download{T}"/> copies a view out; <see cref="Dispose"/> returns the buffers and releases the lock.
    /// </summary>
    private sealed class Staging : IDisposable
    {
        private readonly DeviceState state;
        private readonly List<MemoryBuffer1D<byte, Stride1D.Dense>> rented = new(6);
        private bool lockTaken;
        private bool synchronized;

        public Staging(DeviceState state)
        {
            this.state = state;
            Monitor.Enter(state.Gate, ref lockTaken);
        }

        /// <summary>A device view of <paramref name="count"/> elements (contents undefined); empty for 0.</summary>
        public ArrayView<T> Allocate<T>(long count)
            where T : unmanaged
        {
            if (count == 0)
            {
                return default;
            }

            var buffer = state.Rent(count * sizeof(T));
            rented.Add(buffer);
            ArrayView<byte> bytes = buffer.View;
            return bytes.Cast<T>().SubView(0, count);
        }

        /// <summary>
        /// Copies the elements of <paramref name="tensor"/> (row-major; a non-contiguous tensor goes through a temporary contiguous
        /// copy) into a new device view. <typeparamref name="T"/> must have the tensor's element size.
        /// </summary>
        public ArrayView<T> Upload<T>(torch.Tensor tensor)
            where T : unmanaged
        {
            long count = tensor.numel();
            var view = Allocate<T>(count);
            if (count > 0)
            {
                torch.Tensor? copy = tensor.is_contiguous() ? null : tensor.contiguous();
                try
                {
                    PinnedStaging.CopyIn(state.Pinned, (T*)KernelArguments.Data(copy ?? tensor), view);
                    GC.KeepAlive(tensor);
                }
                finally
                {
                    copy?.Dispose();
                }
            }

            return view;
        }

        /// <summary>
        /// Copies <paramref name="count"/> elements from <paramref name="tensor"/>'s first element on, as they lie in memory (the
        /// caller knows the strides make them one dense block).
        /// </summary>
        public ArrayView<T> UploadRaw<T>(torch.Tensor tensor, long count)
            where T : unmanaged
        {
            var view = Allocate<T>(count);
            if (count > 0)
            {
                PinnedStaging.CopyIn(state.Pinned, (T*)KernelArguments.Data(tensor), view);
                GC.KeepAlive(tensor);
            }

            return view;
        }

        /// <summary>Copies <paramref name="view"/> into the memory of the contiguous tensor <paramref name="target"/> (same element count).</summary>
        public void Download<T>(ArrayView<T> view, torch.Tensor target)
            where T : unmanaged
        {
            if (view.Length > 0)
            {
                PinnedStaging.CopyOut(state.Pinned, view, (T*)KernelArguments.Data(target));
                GC.KeepAlive(target);
            }
        }

        /// <summary>Waits for the launched kernels.</summary>
        public void Synchronize()
        {
            state.Device.Synchronize();
            synchronized = true;
        }

        public void Dispose()
        {
            try
            {
                if (!synchronized && rented.Count > 0)
                {
                    // A call that failed between launch and synchronize: let its kernels finish before the buffers are reused.
                    try
                    {
                        state.Device.Synchronize();
                    }
                    catch (Exception)
                    {
                        // The original exception is the one worth reporting.
                    }
                }

                foreach (var buffer in rented)
                {
                    state.Return(buffer);
                }

                rented.Clear();
            }
            finally
            {
                if (lockTaken)
                {
                    lockTaken = false;
                    Monitor.Exit(state.Gate);
                }
            }
        }
    }
}
