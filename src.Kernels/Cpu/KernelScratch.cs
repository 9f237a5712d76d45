using System;
using System.Runtime.InteropServices;

namespace GemsInjector.Kernels.Cpu;

/// <summary>
/// Per-thread scratch memory (64-byte aligned, native), grown on demand and kept for the thread's life, so kernels
/// allocate nothing per call beyond their outputs. A slot must not be used twice at once on one thread.
/// </summary>
internal static unsafe class KernelScratch
{
    /// <summary>The number of slots; callers name the slot they use.</summary>
    public const int Slots = 7;

    /// <summary>The slot of row kernels (softmax rows, rotary angle rows); they never nest.</summary>
    public const int SlotRow = 6;

    [ThreadStatic]
    private static Block[]? blocks;

    /// <summary>At least <paramref name="count"/> floats of slot <paramref name="slot"/> on the calling thread; the contents are undefined.</summary>
    public static float* Floats(int slot, long count)
    {
        Block[] all = blocks ??= new Block[Slots];
        ref Block block = ref all[slot];
        if (block.Capacity < count)
        {
            if (block.Pointer != null)
            {
                NativeMemory.AlignedFree(block.Pointer);
                block = default;
            }

            long capacity = Math.Max(count, 1024);
            block.Pointer = (float*)NativeMemory.AlignedAlloc((nuint)(capacity * sizeof(float)), 64);
            block.Capacity = capacity;
        }

        return block.Pointer;
    }

    private struct Block
    {
        public float* Pointer;
        public long Capacity;
    }
}
