using System;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using GemsInjector.Kernels.Cpu;
using GemsInjector.Kernels.Ilgpu;
using ILGPU;
using ILGPU.Runtime;
using ILGPU.Runtime.Cuda;

namespace GemsInjector.Kernels.Staging;

/// <summary>
/// The asynchronous half of a staged copy: DMA between page-locked host memory and device memory, in order on the stream the
/// kernels run on, with one completion marker per staging slot.
/// </summary>
internal interface IStagingDma : IDisposable
{
    /// <summary>Queues a copy of <paramref name="bytes"/> bytes from page-locked <paramref name="host"/> to <paramref name="deviceAddress"/>.</summary>
    void ToDevice(long deviceAddress, nint host, long bytes);

    /// <summary>Queues a copy of <paramref name="bytes"/> bytes from <paramref name="deviceAddress"/> to page-locked <paramref name="host"/>.</summary>
    void ToHost(nint host, long deviceAddress, long bytes);

    /// <summary>Marks <paramref name="slot"/> as done once everything queued so far is done.</summary>
    void MarkDone(int slot);

    /// <summary>Blocks until the last mark of <paramref name="slot"/> is reached.</summary>
    void WaitDone(int slot);
}

/// <summary>
/// Copies between host memory the GPU cannot read at full speed (TorchSharp's tensors live in pageable memory) and device
/// memory through a few page-locked slots: while the DMA engine moves one slot, the host's threads fill (or empty) the next.
/// Pageable copies, which the driver stages through pinned buffers of its own, ran at 7–14 GB/s on the H200 node's PCIe gen 5
/// link (Runs 165–171); through these slots 30–42 GB/s (Runs 173–175).
/// <para>
/// Slots are handed out in turn; a slot is written by the host only after its previous DMA is done. Uploads return with their
/// last DMAs still in flight (the kernels that read the data are queued behind them on the same stream); downloads return once
/// every byte is in the target. Not thread-safe: the caller holds the device's lock.
/// </para>
/// </summary>
internal sealed unsafe class PinnedStaging : IDisposable
{
    /// <summary>Slots in turn: two keep the host and the DMA engine both busy; a third absorbs their jitter.</summary>
    public const int SlotCount = 3;

    /// <summary>
    /// Bytes per slot. Run 172 (H200 node, 64 MB each way, 16 / 8 threads): 1 MB slots 13–14 GB/s host → device, 2 MB 17–18,
    /// 4 MB 24–26, 8 MB 30–33, 16 MB 32–34; each chunk pays fixed costs (a parallel copy's start, an event) and the first
    /// chunk is not overlapped, so the larger slot gains little beyond 8 MB and delays the DMA's start.
    /// </summary>
    public const int DefaultSlotBytes = 8 << 20;

    /// <summary>Below this many bytes a host copy stays on the calling thread (a parallel loop costs ~3–10 µs).</summary>
    private const long ParallelCopyBytes = 1 << 20;

    /// <summary>The least bytes one thread of a parallel host copy takes.</summary>
    private const long BytesPerCopyThread = 256 << 10;

    private readonly IStagingDma dma;
    private readonly nint[] slots;
    private readonly bool[] busy;
    private readonly int hostThreads;
    private readonly Action<nint> freeSlot;
    private int next;
    private bool disposed;

    /// <summary>Creates staging over <paramref name="slots"/> (page-locked, <paramref name="slotBytes"/> each, freed by <paramref name="freeSlot"/>).</summary>
    internal PinnedStaging(IStagingDma dma, nint[] slots, int slotBytes, int hostThreads, Action<nint> freeSlot)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(slots.Length, 2, nameof(slots));
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(slotBytes);
        this.dma = dma;
        this.slots = slots;
        this.freeSlot = freeSlot;
        SlotBytes = slotBytes;
        this.hostThreads = Math.Max(1, hostThreads);
        busy = new bool[slots.Length];
    }

    /// <summary>Bytes per slot.</summary>
    public int SlotBytes { get; }

    /// <summary>
    /// Staging for a CUDA accelerator: <see cref="SlotCount"/> page-locked slots of <paramref name="slotBytes"/> from the driver,
    /// host copies on the process's CPU thread budget. <see langword="null"/> for any other accelerator, or when the driver
    /// refuses page-locked memory (a container's locked-memory limit): the caller then copies from pageable memory as before.
    /// </summary>
    public static PinnedStaging? TryCreate(Accelerator accelerator, int slotBytes = DefaultSlotBytes)
    {
        if (accelerator is not CudaAccelerator cuda)
        {
            return null;
        }

        cuda.Bind();
        var api = CudaAPI.CurrentAPI;
        var slots = new nint[SlotCount];
        CudaStagingDma? dma = null;
        try
        {
            for (int i = 0; i < slots.Length; i++)
            {
                if (api.AllocateHostMemory(out IntPtr slot, new IntPtr(slotBytes)) != CudaError.CUDA_SUCCESS)
                {
                    throw new InvalidOperationException("cuMemAllocHost refused.");
                }

                slots[i] = slot;
            }

            dma = CudaStagingDma.Create(cuda, slots.Length);
            return new PinnedStaging(dma, slots, slotBytes, CpuThreadBudget.MaxThreads, slot => CudaAPI.CurrentAPI.FreeHostMemory(slot));
        }
        catch (Exception ex) when (ex is InvalidOperationException or CudaException)
        {
            dma?.Dispose();
            foreach (var slot in slots)
            {
                if (slot != 0)
                {
                    api.FreeHostMemory(slot);
                }
            }

            return null;
        }
    }

    /// <summary>
    /// Copies <paramref name="target"/>'s length of elements from host memory at <paramref name="source"/> into it: through
    /// <paramref name="staging"/>'s slots, or without staging (<see langword="null"/>) by ILGPU's copy from pageable memory.
    /// </summary>
    public static void CopyIn<T>(PinnedStaging? staging, T* source, ArrayView<T> target)
        where T : unmanaged
    {
        if (staging is null)
        {
            target.CopyFromCPU(ref Unsafe.AsRef<T>(source), target.Length);
        }
        else
        {
            staging.ToDevice(source, target);
        }
    }

    /// <summary>Copies <paramref name="source"/> into host memory at <paramref name="target"/>, as <see cref="CopyIn{T}"/> does the other way.</summary>
    public static void CopyOut<T>(PinnedStaging? staging, ArrayView<T> source, T* target)
        where T : unmanaged
    {
        if (staging is null)
        {
            source.CopyToCPU(ref Unsafe.AsRef<T>(target), source.Length);
        }
        else
        {
            staging.ToHost(source, target);
        }
    }

    /// <summary>Copies <paramref name="target"/>'s length of elements from <paramref name="source"/> into it (see <see cref="ToDevice(byte*, long, long)"/>).</summary>
    public void ToDevice<T>(T* source, ArrayView<T> target)
        where T : unmanaged =>
        ToDevice((byte*)source, target.LengthInBytes, DirectCudaLaunch.AddressOf(target, sizeof(T)));

    /// <summary>Copies <paramref name="source"/> into <paramref name="target"/> (see <see cref="ToHost(long, byte*, long)"/>).</summary>
    public void ToHost<T>(ArrayView<T> source, T* target)
        where T : unmanaged =>
        ToHost(DirectCudaLaunch.AddressOf(source, sizeof(T)), (byte*)target, source.LengthInBytes);

    /// <summary>Copies <paramref name="bytes"/> bytes from <paramref name="source"/> to <paramref name="deviceAddress"/> (queued behind everything before it on the stream).</summary>
    public void ToDevice(byte* source, long bytes, long deviceAddress)
    {
        ObjectDisposedException.ThrowIf(disposed, this);
        for (long offset = 0; offset < bytes;)
        {
            long chunk = Math.Min(SlotBytes, bytes - offset);
            int slot = Take();
            HostCopy((nint)(source + offset), slots[slot], chunk);
            dma.ToDevice(deviceAddress + offset, slots[slot], chunk);
            Mark(slot);
            offset += chunk;
        }
    }

    /// <summary>Copies <paramref name="bytes"/> bytes from <paramref name="deviceAddress"/> to <paramref name="target"/>, after everything queued before it; returns when they are there.</summary>
    public void ToHost(long deviceAddress, byte* target, long bytes)
    {
        ObjectDisposedException.ThrowIf(disposed, this);
        long chunks = (bytes + SlotBytes - 1) / SlotBytes;
        int ahead = (int)Math.Min(slots.Length, chunks);

        // Chunk j lands in slot (first + j) mod SlotCount: slots are taken in turn, and a slot is emptied before it is taken again.
        int first = next;
        for (long j = 0; j < ahead; j++)
        {
            QueueToHost(deviceAddress, bytes, j);
        }

        for (long j = 0; j < chunks; j++)
        {
            int slot = (int)((first + j) % slots.Length);
            WaitFor(slot);
            long offset = j * SlotBytes;
            HostCopy(slots[slot], (nint)(target + offset), Math.Min(SlotBytes, bytes - offset));
            if (j + ahead < chunks)
            {
                QueueToHost(deviceAddress, bytes, j + ahead);
            }
        }
    }

    /// <summary>Waits for the slots' DMAs, then frees the slots and the DMA's markers.</summary>
    public void Dispose()
    {
        if (disposed)
        {
            return;
        }

        disposed = true;
        try
        {
            for (int slot = 0; slot < slots.Length; slot++)
            {
                WaitFor(slot);
            }
        }
        finally
        {
            dma.Dispose();
            foreach (var slot in slots)
            {
                freeSlot(slot);
            }
        }
    }

    private void QueueToHost(long deviceAddress, long bytes, long chunkIndex)
    {
        long offset = chunkIndex * SlotBytes;
        int slot = Take();
        dma.ToHost(slots[slot], deviceAddress + offset, Math.Min(SlotBytes, bytes - offset));
        Mark(slot);
    }

    /// <summary>The next slot in turn, once its last DMA is done.</summary>
    private int Take()
    {
        int slot = next;
        next = (next + 1) % slots.Length;
        WaitFor(slot);
        return slot;
    }

    /// <summary>Returns once <paramref name="slot"/>'s last DMA, if any is pending, is done.</summary>
    private void WaitFor(int slot)
    {
        if (busy[slot])
        {
            dma.WaitDone(slot);
            busy[slot] = false;
        }
    }

    private void Mark(int slot)
    {
        dma.MarkDone(slot);
        busy[slot] = true;
    }

    /// <summary>A host-to-host copy, split over threads when large: one thread copies ~5–10 GB/s, below the link's rate.</summary>
    private void HostCopy(nint from, nint to, long bytes)
    {
        int parts = (int)Math.Min(hostThreads, bytes / BytesPerCopyThread);
        if (bytes < ParallelCopyBytes || parts <= 1)
        {
            Buffer.MemoryCopy((void*)from, (void*)to, bytes, bytes);
            return;
        }

        // Slices in multiples of 64 bytes, so no cache line is written by two threads.
        long slice = ((bytes / parts) + 63) & ~63L;
        CpuThreadBudget.For(parts, part =>
        {
            long start = part * slice;
            long length = Math.Min(slice, bytes - start);
            if (length > 0)
            {
                Buffer.MemoryCopy((void*)(from + (nint)start), (void*)(to + (nint)start), length, length);
            }
        });
    }

    /// <summary>The CUDA side: <c>cuMemcpyAsync</c> on the accelerator's default stream (the kernels' stream) and one event per slot.</summary>
    private sealed class CudaStagingDma : IStagingDma
    {
        private readonly CudaAccelerator accelerator;
        private readonly CudaStream stream;
        private readonly IntPtr[] events;

        private CudaStagingDma(CudaAccelerator accelerator, IntPtr[] events)
        {
            this.accelerator = accelerator;
            this.events = events;
            stream = (CudaStream)accelerator.DefaultStream;
        }

        /// <summary>The DMA of <paramref name="accelerator"/>'s default stream with <paramref name="slots"/> events (all freed again when one is refused).</summary>
        public static CudaStagingDma Create(CudaAccelerator accelerator, int slots)
        {
            var dma = new CudaStagingDma(accelerator, new IntPtr[slots]);
            try
            {
                for (int i = 0; i < slots; i++)
                {
                    // Timing off: the cheapest event to record and to wait on.
                    CudaException.ThrowIfFailed(CudaAPI.CurrentAPI.CreateEvent(out dma.events[i], CudaEventFlags.CU_EVENT_DISABLE_TIMING));
                }

                return dma;
            }
            catch
            {
                dma.Dispose();
                throw;
            }
        }

        public void ToDevice(long deviceAddress, nint host, long bytes)
        {
            accelerator.Bind();
            CudaException.ThrowIfFailed(CudaAPI.CurrentAPI.MemcpyAsync(new IntPtr(deviceAddress), host, new IntPtr(bytes), stream));
        }

        public void ToHost(nint host, long deviceAddress, long bytes)
        {
            accelerator.Bind();
            CudaException.ThrowIfFailed(CudaAPI.CurrentAPI.MemcpyAsync(host, new IntPtr(deviceAddress), new IntPtr(bytes), stream));
        }

        public void MarkDone(int slot) =>
            CudaException.ThrowIfFailed(CudaAPI.CurrentAPI.RecordEvent(events[slot], stream.StreamPtr));

        public void WaitDone(int slot) => CudaException.ThrowIfFailed(CudaAPI.CurrentAPI.SynchronizeEvent(events[slot]));

        public void Dispose()
        {
            accelerator.Bind();
            foreach (var e in events)
            {
                if (e != IntPtr.Zero)
                {
                    CudaAPI.CurrentAPI.DestroyEvent(e);
                }
            }
        }
    }
}
