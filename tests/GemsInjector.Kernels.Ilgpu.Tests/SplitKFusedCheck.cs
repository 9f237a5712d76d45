using System;
using System.Linq;
using ILGPU;
using ILGPU.Runtime;
using Xunit;

namespace GemsInjector.Kernels.Ilgpu.Tests;

/// <summary>
/// The check every product with the in-place split-K reduce (<c>GEMS_SPLITK_REDUCE=fused</c>) shares: its fused form
/// against the bits of its launched form (product, then <see cref="HalfGemvKernels.GemvReduce16"/>), which the caller
/// has already checked element by element against float64.
/// </summary>
internal static class SplitKFusedCheck
{
    /// <summary>
    /// Runs <paramref name="runFused"/> twice in a row on one ticket buffer of <paramref name="tiles"/> zeroed tickets
    /// (the second run finds them as the first left them), C and the partials NaN-poisoned before each run: every element
    /// of C must have <paramref name="launched"/>'s bits and every ticket be 0 again after each run.
    /// </summary>
    public static void AssertMatchesLaunch(Accelerator acc, MemoryBuffer1D<ushort, Stride1D.Dense> c, MemoryBuffer1D<float, Stride1D.Dense> partial, ushort nan,
        ushort[] launched, long tiles, Action<ArrayView<int>> runFused, string what)
    {
        using var tickets = acc.Allocate1D<int>(tiles);
        tickets.MemSetToZero();
        for (int run = 1; run <= 2; run++)
        {
            c.CopyFromCPU(Enumerable.Repeat(nan, (int)c.Length).ToArray());
            partial.CopyFromCPU(Enumerable.Repeat(float.NaN, (int)partial.Length).ToArray());
            runFused(tickets.View);
            acc.Synchronize();
            ushort[] fused = c.GetAsArray1D();
            Assert.Equal(launched.Length, fused.Length);
            for (int i = 0; i < launched.Length; i++)
            {
                Assert.True(fused[i] == launched[i], $"{what}: fused run {run}, element {i}: 0x{fused[i]:X4}, launched 0x{launched[i]:X4}");
            }

            int[] left = tickets.GetAsArray1D();
            int dirty = Array.FindIndex(left, t => t != 0);
            Assert.True(dirty < 0, $"{what}: fused run {run} left ticket {dirty} at {(dirty < 0 ? 0 : left[dirty])} (not reset)");
        }
    }
}
