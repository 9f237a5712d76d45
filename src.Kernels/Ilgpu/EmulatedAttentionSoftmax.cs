using ILGPU;

namespace GemsInjector.Kernels.Ilgpu;

/// <summary>
/// The per-thread online-softmax arithmetic of the emulated attention operations (<see cref="EmulatedAttentionOps{TDimQuads}"/>,
/// <see cref="EmulatedAttentionWgmmaOps"/>), on the thread's scratch floats in the mma C-fragment layout (fragment j is
/// a value of row g when (j / 2) mod 2 is 0, else of row g + 8; quads of lanes share a row). The row statistics are four
/// floats: the running maxima of rows g and g + 8 (log2 units), then their partial sums.
/// </summary>
internal static class EmulatedAttentionSoftmax
{
    /// <summary>ln 2 as the PTX's 0f3F317218: log2-unit maxima to natural-log ones.</summary>
    private const float Ln2 = 0.693147182f;

    /// <summary>Zeroes <paramref name="accumulators"/> output accumulators at <paramref name="outputAt"/>; maxima -∞ and sums 0 at <paramref name="rowAt"/>.</summary>
    public static void Begin(ArrayView<float> scratch, long outputAt, int accumulators, long rowAt)
    {
        for (int i = 0; i < accumulators; i++)
        {
            scratch[outputAt + i] = 0f;
        }

        scratch[rowAt] = GpuMath.NegInf;
        scratch[rowAt + 1] = GpuMath.NegInf;
        scratch[rowAt + 2] = 0f;
        scratch[rowAt + 3] = 0f;
    }

    /// <summary>
    /// Online-softmax update of row g (<paramref name="half"/> 0) or g + 8 (1) over the quad, on the
    /// <paramref name="fragments"/> scores at <paramref name="s"/>: weights 2^(s - m) in place, the row's max and partial
    /// sum at <paramref name="rowAt"/> updated; returns the rescale factor (exactly 1 for an unchanged max).
    /// </summary>
    public static float RowUpdate(ArrayView<float> scratch, long s, long rowAt, int half, int fragments)
    {
        float top = GpuMath.NegInf;
        for (int j = 0; j < fragments; j++)
        {
            if (((j >> 1) & 1) == half)
            {
                top = GpuMath.MaxNaN(top, scratch[s + j]);
            }
        }

        top = GpuMath.MaxNaN(top, Warp.ShuffleXor(top, 1));
        top = GpuMath.MaxNaN(top, Warp.ShuffleXor(top, 2));
        long maxAt = rowAt + half;
        float oldMax = scratch[maxAt];
        float mNew = GpuMath.MaxNaN(top, oldMax);
        float shift = mNew == GpuMath.NegInf ? 0f : mNew;
        float alpha = mNew == oldMax ? 1f : GpuMath.Exp2Fast(oldMax - shift);
        float sum = 0f;
        for (int j = 0; j < fragments; j++)
        {
            if (((j >> 1) & 1) == half)
            {
                float p = GpuMath.Exp2Fast(scratch[s + j] - shift);
                scratch[s + j] = p;
                sum += p;
            }
        }

        scratch[maxAt] = mNew;
        scratch[maxAt + 2] = (scratch[maxAt + 2] * alpha) + sum;
        return alpha;
    }

    /// <summary>The <paramref name="accumulators"/> outputs at <paramref name="outputAt"/> times their row's factor.</summary>
    public static void Rescale(ArrayView<float> scratch, long outputAt, int accumulators, float alphaLo, float alphaHi)
    {
        for (int i = 0; i < accumulators; i++)
        {
            scratch[outputAt + i] *= (i & 2) == 0 ? alphaLo : alphaHi;
        }
    }

    /// <summary>
    /// The <paramref name="fragments"/> weights at <paramref name="s"/> as 16-bit high parts (one per float, at
    /// <paramref name="highAt"/>, which may be <paramref name="s"/>) and the rounded remainders (at <paramref name="lowAt"/>).
    /// </summary>
    public static void SplitWeights(ArrayView<float> scratch, long s, long highAt, long lowAt, int fragments, int bf16)
    {
        for (int j = 0; j < fragments; j++)
        {
            float p = scratch[s + j];
            ushort high = GpuMath.Store16(p, bf16);
            scratch[highAt + j] = high;
            scratch[lowAt + j] = GpuMath.Store16(p - GpuMath.Load16(high, bf16), bf16);
        }
    }

    /// <summary>
    /// The lane that holds A element (<paramref name="row"/>, <paramref name="kk"/>) of a k16 step in its C fragments
    /// (the C layout of two 8-key blocks is the A layout of one k16 step): lane 4·(row mod 8) + (k mod 8)/2.
    /// </summary>
    public static int WeightHolder(int row, int kk) => ((row & 7) * 4) + ((kk & 7) >> 1);

    /// <summary>The holder's fragment index of that element: n-block 2·step + k/8, register 2·(row/8) + k mod 2.</summary>
    public static int WeightFragment(int row, int kk, int step) => ((((2 * step) + (kk >> 3)) * 4) + ((row >> 3) * 2)) + (kk & 1);

    /// <summary>
    /// Sums the quad's partial row sums at <paramref name="rowAt"/> and stores the outputs times 1/l (0 where l = 0), as
    /// <see cref="Store"/> does.
    /// </summary>
    public static void StoreNormalized(ArrayView<float> scratch, long outputAt, long rowAt, int blocks, ArrayView<ushort> output, long elementLo, long elementHi, int bf16)
    {
        var (lLo, lHi) = QuadRowSums(scratch, rowAt);
        Store(scratch, outputAt, blocks, output, elementLo, elementHi, lLo == 0f ? 0f : 1f / lLo, lHi == 0f ? 0f : 1f / lHi, bf16);
    }

    /// <summary>
    /// Sums the quad's partial row sums at <paramref name="rowAt"/> and writes a split's partial of rows g
    /// (<paramref name="partLo"/>) and g + 8 (<paramref name="partHi"/>; -1 skips a row) as the PTX's StorePartial does:
    /// the unnormalized outputs of <paramref name="d"/> columns at partial · d + 2t, and from lane t = 0 (m, l) at
    /// 2 · partial with m in natural-log units.
    /// </summary>
    public static void StorePartial(ArrayView<float> scratch, long outputAt, long rowAt, int d, ArrayView<float> partO, ArrayView<float> partML, long partLo, long partHi, int t)
    {
        var (lLo, lHi) = QuadRowSums(scratch, rowAt);
        for (int half = 0; half < 2; half++)
        {
            long part = half == 0 ? partLo : partHi;
            if (part < 0)
            {
                continue;
            }

            for (int nb = 0; nb < d / 8; nb++)
            {
                partO[(part * d) + (nb * 8) + (2 * t)] = scratch[outputAt + (nb * 4) + (2 * half)];
                partO[(part * d) + (nb * 8) + (2 * t) + 1] = scratch[outputAt + (nb * 4) + (2 * half) + 1];
            }

            if (t == 0)
            {
                partML[2 * part] = scratch[rowAt + half] * Ln2;
                partML[(2 * part) + 1] = half == 0 ? lLo : lHi;
            }
        }
    }

    /// <summary>Rows g and g + 8's sums over the quad of lanes that share them (every lane gets both).</summary>
    private static (float Lo, float Hi) QuadRowSums(ArrayView<float> scratch, long rowAt)
    {
        float lLo = scratch[rowAt + 2];
        float lHi = scratch[rowAt + 3];
        lLo += Warp.ShuffleXor(lLo, 1);
        lLo += Warp.ShuffleXor(lLo, 2);
        lHi += Warp.ShuffleXor(lHi, 1);
        lHi += Warp.ShuffleXor(lHi, 2);
        return (lLo, lHi);
    }

    /// <summary>
    /// Writes the lane's outputs of <paramref name="blocks"/> 8-column blocks times <paramref name="invLo"/> (row g, from
    /// element <paramref name="elementLo"/>) / <paramref name="invHi"/> (row g + 8), rounded to 16 bits; -1 skips a row.
    /// </summary>
    public static void Store(ArrayView<float> scratch, long outputAt, int blocks, ArrayView<ushort> output, long elementLo, long elementHi, float invLo, float invHi, int bf16)
    {
        for (int nb = 0; nb < blocks; nb++)
        {
            for (int i = 0; i < 4; i++)
            {
                long element = (i & 2) == 0 ? elementLo : elementHi;
                if (element >= 0)
                {
                    float scale = (i & 2) == 0 ? invLo : invHi;
                    output[element + (nb * 8) + (i & 1)] = GpuMath.Store16(scratch[outputAt + (nb * 4) + i] * scale, bf16);
                }
            }
        }
    }
}
