using System;
using System.Linq;
using ILGPU;
using Xunit;

namespace GemsInjector.Kernels.Ilgpu.Tests;

/// <summary>
/// The second set of 16-bit overloads on the CPU simulator: sub, div, rsqrt, embedding, sum, mean, amax, argmax, topk.
/// Odd and tiny shapes, zero size, NaN-poisoned outputs, every element against float64 (FlagGems tolerances), NaN
/// propagation.
/// </summary>
[Collection(SimulatorCollection.Name)]
public sealed class HalfOperatorTests : Half16TestBase
{
    public HalfOperatorTests(SimulatorFixture fixture)
        : base(fixture)
    {
    }

    public static TheoryData<bool, int> Sizes()
    {
        var data = new TheoryData<bool, int>();
        foreach (bool bf16 in new[] { false, true })
        {
            foreach (int n in new[] { 1, 3, 17, 300 })
            {
                data.Add(bf16, n);
            }
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(Sizes))]
    public void SubDivRsqrt(bool bf16, int n)
    {
        int seed = 8000 + n + (bf16 ? 1 : 0);
        var (a, av) = Random16(seed, n, bf16);
        var (b, bv) = Random16(seed + 1, n, bf16, 0.25f, 4f);
        a[0] = NaN16(bf16); // NaN propagates through every operator
        av[0] = float.NaN;
        var da = Upload(a);
        var db = Upload(b);

        var o = Poisoned16(n, bf16);
        K.Sub(da, db, 0.75f, o, F(bf16));
        Check16(o, av.Zip(bv, (x, y) => x - 0.75 * y).ToArray(), bf16, "sub", seed);

        o = Poisoned16(n, bf16);
        K.Div(da, db, o, F(bf16));
        Check16(o, av.Zip(bv, (x, y) => (double)x / y).ToArray(), bf16, "div", seed);

        // div by zero: ±inf, 0/0 NaN
        var z = Upload(To16(new[] { 1f, -2f, 0f }, bf16));
        var zero = Upload(To16(new[] { 0f, 0f, 0f }, bf16));
        o = Poisoned16(3, bf16);
        K.Div(z, zero, o, F(bf16));
        Check16(o, new[] { double.PositiveInfinity, double.NegativeInfinity, double.NaN }, bf16, "div by zero", seed);

        o = Poisoned16(n, bf16);
        K.Rsqrt(db, o, F(bf16));
        Check16(o, bv.Select(v => 1 / Math.Sqrt(v)).ToArray(), bf16, "rsqrt", seed);
        o = Poisoned16(n, bf16);
        K.Activation(da, o, HalfActivation.Rsqrt, F(bf16));
        Check16(o, av.Select(v => v < 0 ? double.NaN : 1 / Math.Sqrt(v)).ToArray(), bf16, "rsqrt (Activation, negative → NaN)", seed);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void ZeroSizeLaunchesNothing(bool bf16)
    {
        var e = ArrayView<ushort>.Empty;
        var el = ArrayView<long>.Empty;
        K.Sub(e, e, 1f, e, F(bf16));
        K.Div(e, e, e, F(bf16));
        K.Rsqrt(e, e, F(bf16));
        K.Embedding(Upload(To16(new[] { 1f, 2f }, bf16)), el, e, 2, F(bf16));
        K.Sum(e, e, 4, F(bf16));
        K.Mean(e, e, 4, F(bf16));
        K.Amax(e, e, 4, F(bf16));
        K.Argmax(e, el, 4, F(bf16));
        K.TopK(e, e, el, 4, 2, F(bf16));
        var x = Upload(To16(new[] { 1f, 2f, 3f }, bf16));
        K.TopK(x, e, el, 3, 0, F(bf16)); // k = 0
        Device.Synchronize();
        Assert.Throws<ArgumentException>(() => K.Div(x, e, x, F(bf16)));
        Assert.Throws<ArgumentException>(() => K.Sum(x, e, 2, F(bf16)));
        Assert.Throws<ArgumentOutOfRangeException>(() => K.TopK(x, e, el, 3, 4, F(bf16)));
    }

    [Theory]
    [InlineData(false, 1, 1)]
    [InlineData(true, 3, 17)]
    [InlineData(false, 6, 300)]
    [InlineData(true, 4, 3)]
    public void Embedding(bool bf16, int count, int dim)
    {
        int seed = 8100 + count * 10 + dim + (bf16 ? 1 : 0);
        const int Vocab = 7;
        var (w, wv) = Random16(seed, Vocab * dim, bf16);
        var ids = Enumerable.Range(0, count).Select(i => (long)((i * 5 + 3) % Vocab)).ToArray();
        ids[count - 1] = count > 1 ? Vocab : ids[count - 1]; // an out-of-range id gives a NaN row
        var o = Poisoned16((long)count * dim, bf16);
        K.Embedding(Upload(w), Upload(ids), o, dim, F(bf16));
        var expected = Enumerable.Range(0, count * dim).Select(e =>
        {
            long id = ids[e / dim];
            return id < Vocab ? wv[id * dim + e % dim] : double.NaN;
        }).ToArray();
        Check16(o, expected, bf16, "embedding", seed, atol: 0);
        var got = Download(o);
        Assert.Equal(w[ids[0] * dim], got[0]); // a copy of the bits
    }

    [Theory]
    [InlineData(false, 1, 1)]
    [InlineData(true, 1, 1)]
    [InlineData(false, 3, 17)]
    [InlineData(true, 3, 17)]
    [InlineData(false, 2, 300)]
    [InlineData(true, 5, 300)]
    [InlineData(true, 17, 3)]
    public void Reductions(bool bf16, int rows, int cols)
    {
        int seed = 8200 + rows * 1000 + cols + (bf16 ? 1 : 0);
        var (x, xv) = Random16(seed, rows * cols, bf16);
        if (rows > 1)
        {
            x[cols + cols / 2] = NaN16(bf16); // row 1 holds a NaN
            xv[cols + cols / 2] = float.NaN;
        }

        if (cols > 2)
        {
            x[2] = x[0]; // a tie in row 0: the first index wins
            xv[2] = xv[0];
        }

        var dx = Upload(x);
        double[][] rowsOf = Enumerable.Range(0, rows).Select(r => xv.Skip(r * cols).Take(cols).Select(v => (double)v).ToArray()).ToArray();
        double atol = Atol * cols;

        var o = Poisoned16(rows, bf16);
        K.Sum(dx, o, cols, F(bf16));
        Check16(o, rowsOf.Select(r => r.Sum()).ToArray(), bf16, "sum", seed, atol);

        o = Poisoned16(rows, bf16);
        K.Mean(dx, o, cols, F(bf16));
        Check16(o, rowsOf.Select(r => r.Average()).ToArray(), bf16, "mean", seed, atol);

        o = Poisoned16(rows, bf16);
        K.Amax(dx, o, cols, F(bf16));
        Check16(o, rowsOf.Select(r => r.Any(double.IsNaN) ? double.NaN : r.Max()).ToArray(), bf16, "amax", seed, 0);

        var ix = PoisonedLong(rows);
        K.Argmax(dx, ix, cols, F(bf16));
        Assert.Equal(rowsOf.Select(r => (long)ArgMax(r)).ToArray(), Download(ix));
    }

    [Theory]
    [InlineData(false, 1, 1, 1)]
    [InlineData(true, 3, 17, 4)]
    [InlineData(false, 2, 300, 5)]
    [InlineData(true, 2, 300, 1)]
    [InlineData(true, 4, 3, 3)]
    public void TopK(bool bf16, int rows, int cols, int k)
    {
        int seed = 8300 + rows * 1000 + cols * 10 + k + (bf16 ? 1 : 0);
        var (x, xv) = Random16(seed, rows * cols, bf16);
        if (cols > 3)
        {
            x[3] = x[1]; // ties: the lower index first
            xv[3] = xv[1];
        }

        if (rows > 1 && cols > 2)
        {
            x[cols + 2] = NaN16(bf16); // NaN counts as the largest
            xv[cols + 2] = float.NaN;
        }

        var values = Poisoned16((long)rows * k, bf16);
        var indices = PoisonedLong((long)rows * k);
        K.TopK(Upload(x), values, indices, cols, k, F(bf16));
        var expectedIdx = new long[rows * k];
        var expectedVal = new double[rows * k];
        for (int r = 0; r < rows; r++)
        {
            var order = Enumerable.Range(0, cols)
                .OrderByDescending(j => float.IsNaN(xv[r * cols + j]) ? float.PositiveInfinity : xv[r * cols + j])
                .ThenBy(j => float.IsNaN(xv[r * cols + j]) ? 0 : 1)
                .ThenBy(j => j).Take(k).ToArray();
            for (int i = 0; i < k; i++)
            {
                expectedIdx[r * k + i] = order[i];
                expectedVal[r * k + i] = xv[r * cols + order[i]];
            }
        }

        Check16(values, expectedVal, bf16, "topk values", seed, 0);
        Assert.Equal(expectedIdx, Download(indices));
    }

    private static int ArgMax(double[] row)
    {
        int best = 0;
        for (int j = 0; j < row.Length; j++)
        {
            if (double.IsNaN(row[j]))
            {
                return j;
            }

            if (row[j] > row[best])
            {
                best = j;
            }
        }

        return best;
    }
}
