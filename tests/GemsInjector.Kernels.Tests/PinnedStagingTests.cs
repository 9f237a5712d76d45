using System;
using System.Collections.Generic;
using System.Runtime.InteropServices;
using GemsInjector.Kernels.Staging;
using Xunit;

namespace GemsInjector.Kernels.Tests;

/// <summary>
/// <see cref="PinnedStaging"/>'s slot discipline against a DMA engine that runs its queued copies as late as the stream
/// allows (only when a mark is waited on, or a random prefix at any call): a slot the host writes or reads before its DMA
/// is done shows up as wrong bytes on the device or in the target. The CUDA engine itself runs only on a GPU (the harness's
/// <c>--staging-probe</c>, which checks every staged product against the CPU kernel).
/// </summary>
public unsafe class PinnedStagingTests
{
    private const int SlotBytes = 4096;

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(63)]
    [InlineData(SlotBytes - 1)]
    [InlineData(SlotBytes)]
    [InlineData(SlotBytes + 1)]
    [InlineData((7 * SlotBytes / 2) + 5)]
    [InlineData((10 * SlotBytes) + 17)]
    public void BytesArriveUnchangedBothWays(int bytes)
    {
        using var device = new LazyDma(1 << 20, seed: bytes);
        using var staging = device.Staging(SlotBytes);
        byte[] source = RandomBytes(bytes, seed: bytes + 1);
        byte[] back = new byte[bytes];
        fixed (byte* s = source)
        fixed (byte* b = back)
        {
            staging.ToDevice(s, bytes, device.Address(100));
            staging.ToHost(device.Address(100), b, bytes);
        }

        Assert.Equal(source, back);
        Assert.Equal(source, device.Read(100, bytes));
    }

    [Fact]
    public void UploadsOneAfterAnotherDoNotOverwriteSlotsStillInFlight()
    {
        // Three uploads of 2.5 slots each leave DMAs in flight between calls: the next call's slots must wait for them.
        using var device = new LazyDma(1 << 20, seed: 5);
        using var staging = device.Staging(SlotBytes);
        int bytes = (5 * SlotBytes / 2) + 3;
        var sources = new[] { RandomBytes(bytes, 1), RandomBytes(bytes, 2), RandomBytes(bytes, 3) };
        for (int i = 0; i < sources.Length; i++)
        {
            fixed (byte* s = sources[i])
            {
                staging.ToDevice(s, bytes, device.Address(i * bytes));
            }
        }

        for (int i = 0; i < sources.Length; i++)
        {
            byte[] back = new byte[bytes];
            fixed (byte* b = back)
            {
                staging.ToHost(device.Address(i * bytes), b, bytes);
            }

            Assert.Equal(sources[i], back);
        }
    }

    [Fact]
    public void ADownloadIsOrderedAfterTheUploadsAndKernelsBeforeIt()
    {
        using var device = new LazyDma(1 << 20, seed: 9);
        using var staging = device.Staging(SlotBytes);
        int bytes = 3 * SlotBytes;
        byte[] source = RandomBytes(bytes, 4);
        byte[] back = new byte[bytes];
        fixed (byte* s = source)
        fixed (byte* b = back)
        {
            staging.ToDevice(s, bytes, device.Address(0));

            // A "kernel" queued behind the upload: adds one to every byte in place.
            device.QueueKernel(0, bytes);
            staging.ToHost(device.Address(0), b, bytes);
        }

        for (int i = 0; i < bytes; i++)
        {
            Assert.Equal((byte)(source[i] + 1), back[i]);
        }
    }

    [Theory]
    [InlineData(11)]
    [InlineData(12)]
    [InlineData(13)]
    public void RandomMixesOfCopiesKeepEveryByte(int seed)
    {
        const int DeviceBytes = 64 * SlotBytes;
        var random = new Random(seed);
        using var device = new LazyDma(DeviceBytes, seed);
        using var staging = device.Staging(SlotBytes);
        byte[] expected = new byte[DeviceBytes];
        for (int step = 0; step < 60; step++)
        {
            int bytes = random.Next(0, 6 * SlotBytes);
            int at = random.Next(0, DeviceBytes - bytes);
            if (random.Next(2) == 0)
            {
                byte[] source = RandomBytes(bytes, random.Next());
                fixed (byte* s = source)
                {
                    staging.ToDevice(s, bytes, device.Address(at));
                }

                Array.Copy(source, 0, expected, at, bytes);
            }
            else
            {
                byte[] back = new byte[bytes];
                fixed (byte* b = back)
                {
                    staging.ToHost(device.Address(at), b, bytes);
                }

                Assert.Equal(expected.AsSpan(at, bytes).ToArray(), back);
            }
        }
    }

    [Fact]
    public void LargeCopiesSplitOverHostThreadsKeepEveryByte()
    {
        // Slots above the parallel-copy threshold: the host side of each chunk runs on several threads.
        const int BigSlot = 3 << 20;
        using var device = new LazyDma(16 << 20, seed: 21);
        using var staging = device.Staging(BigSlot, hostThreads: 4);
        int bytes = (2 * BigSlot) + 777;
        byte[] source = RandomBytes(bytes, 22);
        byte[] back = new byte[bytes];
        fixed (byte* s = source)
        fixed (byte* b = back)
        {
            staging.ToDevice(s, bytes, device.Address(64));
            staging.ToHost(device.Address(64), b, bytes);
        }

        Assert.True(source.AsSpan().SequenceEqual(back));
    }

    [Fact]
    public void DisposeWaitsForTheSlotsInFlightThenFreesEachSlotOnce()
    {
        using var device = new LazyDma(1 << 20, seed: 3);
        var staging = device.Staging(SlotBytes);
        byte[] source = RandomBytes(2 * SlotBytes, 6);
        fixed (byte* s = source)
        {
            staging.ToDevice(s, source.Length, device.Address(0));
        }

        staging.Dispose();
        Assert.Equal(source, device.Read(0, source.Length));
        Assert.Equal(PinnedStaging.SlotCount, device.FreedSlots);
        Assert.True(device.Disposed);
        staging.Dispose();
        Assert.Equal(PinnedStaging.SlotCount, device.FreedSlots);
    }

    private static byte[] RandomBytes(int count, int seed)
    {
        var bytes = new byte[count];
        new Random(seed).NextBytes(bytes);
        return bytes;
    }

    /// <summary>
    /// A device memory and a stream whose copies run in order but as late as allowed: a queued copy reads its source when it
    /// runs, not when it is queued. At each call a random prefix of the queue runs (a DMA engine's own pace).
    /// </summary>
    private sealed class LazyDma : IStagingDma
    {
        private readonly byte[] pinnedMemory;
        private readonly byte* memory;
        private readonly int size;
        private readonly Random random;
        private readonly Queue<Action> queue = new();
        private readonly Dictionary<int, long> marks = new();
        private readonly List<nint> slots = [];
        private long queued;
        private long ran;

        public LazyDma(int size, int seed)
        {
            this.size = size;
            pinnedMemory = GC.AllocateArray<byte>(size, pinned: true);
            memory = (byte*)Marshal.UnsafeAddrOfPinnedArrayElement(pinnedMemory, 0);
            random = new Random(seed);
        }

        public int FreedSlots { get; private set; }

        public bool Disposed { get; private set; }

        public PinnedStaging Staging(int slotBytes, int hostThreads = 1)
        {
            var owned = new nint[PinnedStaging.SlotCount];
            for (int i = 0; i < owned.Length; i++)
            {
                owned[i] = (nint)NativeMemory.Alloc((nuint)slotBytes);
                slots.Add(owned[i]);
            }

            return new PinnedStaging(this, owned, slotBytes, hostThreads, slot =>
            {
                Assert.Contains(slot, slots);
                slots.Remove(slot);
                NativeMemory.Free((void*)slot);
                FreedSlots++;
            });
        }

        public long Address(int offset) => (long)(memory + offset);

        public byte[] Read(int offset, int count)
        {
            Drain(queued);
            return new ReadOnlySpan<byte>(memory + offset, count).ToArray();
        }

        public void QueueKernel(int offset, int count) => Enqueue(() =>
        {
            for (int i = 0; i < count; i++)
            {
                memory[offset + i]++;
            }
        });

        public void ToDevice(long deviceAddress, nint host, long bytes)
        {
            CheckDevice(deviceAddress, bytes);
            Enqueue(() => Buffer.MemoryCopy((void*)host, (void*)deviceAddress, bytes, bytes));
        }

        public void ToHost(nint host, long deviceAddress, long bytes)
        {
            CheckDevice(deviceAddress, bytes);
            Enqueue(() => Buffer.MemoryCopy((void*)deviceAddress, (void*)host, bytes, bytes));
        }

        public void MarkDone(int slot)
        {
            marks[slot] = queued;
            RunSome();
        }

        public void WaitDone(int slot)
        {
            Assert.True(marks.ContainsKey(slot), $"slot {slot} waited on before any mark");
            Drain(marks[slot]);
        }

        /// <summary>The DMA's own resources (the real one's events); the slots are the staging's to free.</summary>
        public void Dispose() => Disposed = true;

        private void CheckDevice(long address, long bytes) =>
            Assert.True(address >= (long)memory && address + bytes <= (long)memory + size, "copy outside the device memory");

        private void Enqueue(Action copy)
        {
            queue.Enqueue(copy);
            queued++;
            RunSome();
        }

        private void RunSome() => Drain(ran + random.Next(0, (int)(queued - ran) + 1) / 2);

        private void Drain(long upTo)
        {
            while (ran < upTo)
            {
                queue.Dequeue()();
                ran++;
            }
        }
    }
}
