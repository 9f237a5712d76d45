using System.Runtime.CompilerServices;
using ILGPU;
using ILGPU.Runtime.Cuda;

namespace GemsInjector.Kernels.Ilgpu;

/// <summary>Where a decode group's timeline is stamped (<see cref="IDecodeTrace"/>); the values index a group's stamps.</summary>
internal static class DecodeTracePoint
{
    /// <summary>The group's first instruction.</summary>
    public const int Entry = 0;

    /// <summary>Its first K tile has landed in shared memory (every thread's copies, after the barrier).</summary>
    public const int FirstTile = 1;

    /// <summary>Its scores are stored: the last K tile is done.</summary>
    public const int KeysDone = 2;

    /// <summary>Its first V tile has landed (before the chunk softmax).</summary>
    public const int FirstValueTile = 3;

    /// <summary>Its last V tile is done.</summary>
    public const int ValuesDone = 4;

    /// <summary>Every thread's copies are done (the barrier after the last wait).</summary>
    public const int CopiesDone = 5;

    /// <summary>Its teams' sums are in shared memory (after the barrier); Run 158's kernel folded them by shuffles first.</summary>
    public const int SumsStored = 6;

    /// <summary>Its partial (or, with one chunk, its output) is written; the statistics and the fence come next.</summary>
    public const int PartialWritten = 7;

    /// <summary>Its partials are published: the device-level fence and the barrier after it are done.</summary>
    public const int Published = 8;

    /// <summary>Its ticket is taken (the barrier after the atomic): it knows whether it merges.</summary>
    public const int TicketTaken = 9;

    /// <summary>The merging group only: the chunk weights are in shared memory (the barrier before the partials' sum); 0 in the other groups.</summary>
    public const int MergeWeights = 10;

    /// <summary>The group is done: after its ticket, and for the group that took the last one, after the merge.</summary>
    public const int End = 11;

    /// <summary>The SM the group ran on (%smid), in the stamp after the times.</summary>
    public const int Multiprocessor = 12;

    /// <summary>Stamps per group.</summary>
    public const int Count = 13;
}

/// <summary>Stamps a decode group's timeline at the points of <see cref="DecodeTracePoint"/> (group-uniform calls).</summary>
internal interface IDecodeTrace
{
    /// <summary>Records that this group reached <paramref name="point"/>.</summary>
    void Stamp(int point);
}

/// <summary>No trace: every stamp inlines to nothing, so a kernel built with it is the kernel without stamps.</summary>
internal readonly struct NoDecodeTrace : IDecodeTrace
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void Stamp(int point)
    {
    }
}

/// <summary>
/// The group's first thread writes the GPU's global nanosecond timer (<c>%globaltimer</c>, comparable across SMs) at
/// stamp (linear group index × <see cref="DecodeTracePoint.Count"/> + point) of <see cref="Stamps"/>, and at
/// <see cref="DecodeTracePoint.End"/> also the group's SM. CUDA only.
/// </summary>
internal struct GlobalTimerDecodeTrace : IDecodeTrace
{
    public ArrayView<long> Stamps;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public readonly void Stamp(int point)
    {
        if (Group.IdxX != 0)
        {
            return;
        }

        long groupIndex = Grid.IdxX + ((long)Grid.DimX * (Grid.IdxY + ((long)Grid.DimY * Grid.IdxZ)));
        long at = groupIndex * DecodeTracePoint.Count;
        CudaAsm.Emit("mov.u64 %0, %%globaltimer;", out Output<ulong> now);
        Stamps[at + point] = (long)now.Value;
        if (point == DecodeTracePoint.End)
        {
            CudaAsm.Emit("mov.u32 %0, %%smid;", out Output<uint> sm);
            Stamps[at + DecodeTracePoint.Multiprocessor] = sm.Value;
        }
    }
}
