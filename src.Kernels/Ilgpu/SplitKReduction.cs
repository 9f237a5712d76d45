using System.Runtime.CompilerServices;
using ILGPU;

namespace GemsInjector.Kernels.Ilgpu;

/// <summary>The per-element part of the split-K reduce launches (<c>GemvReduce16</c>, <c>GemvReduceF32</c>).</summary>
internal static class SplitKReduction
{
    /// <summary>
    /// Σ_s partial[s · plane + e] for s = 0 .. splits − 1, added in that order (so the result does not depend on how the
    /// loads are grouped). Four loads are requested before the first of them is added: a reduce thread otherwise waits
    /// one memory round trip per split (ncu, H200: 59% of the reduce's samples on that wait).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Sum(ArrayView<float> partial, long plane, long e, int splits)
    {
        float sum = 0f;
        int s = 0;
        for (; s + 4 <= splits; s += 4)
        {
            long at = (s * plane) + e;
            float p0 = partial[at];
            float p1 = partial[at + plane];
            float p2 = partial[at + (2 * plane)];
            float p3 = partial[at + (3 * plane)];
            sum += p0;
            sum += p1;
            sum += p2;
            sum += p3;
        }

        for (; s < splits; s++)
        {
            sum += partial[(s * plane) + e];
        }

        return sum;
    }

    /// <summary>Row of element <paramref name="e"/> of an [M, <paramref name="n"/>] plane: a 32-bit division when the plane fits (a 64-bit one is a long call sequence on the GPU).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static int Row(long e, long plane, int n) => plane <= int.MaxValue ? (int)e / n : (int)(e / n);
}
