using System;
using System.Linq;
using ILGPU;
using ILGPU.Runtime;
using Xunit;

namespace GemsInjector.Kernels.Ilgpu.Tests;

/// <summary>
/// sum / mean / amax / argmax (<see cref="ReductionKernels"/>) in float32, float16 and bfloat16: rows split over several
/// groups and rows of one group, widths that are not a multiple of the vector, views starting anywhere within 16 bytes,
/// and rows holding NaN, ±∞, all -∞, ties of the maximum (also between the scalar head / tail and the vectors, and
/// across chunks). Every output is checked against float64; outputs are poisoned first.
/// </summary>
[Collection(SimulatorCollection.Name)]
public sealed class ReductionTests : Half16TestBase, IClassFixture<Warp32SimulatorFixture>
{
    private readonly Warp32SimulatorFixture warp32;

    public ReductionTests(SimulatorFixture fixture, Warp32SimulatorFixture warp32)
        : base(fixture)
    {
        this.warp32 = warp32;
    }

    /// <summary>0 = float32, 1 = float16, 2 = bfloat16.</summary>
    public static TheoryData<int, int, int, int> Cases()
    {
        var data = new TheoryData<int, int, int, int>();
        (int Rows, int Cols)[] shapes = { (1, 1), (3, 3), (2, 17), (7, 300), (1, 5000), (3, 2053), (9, 611) };
        for (int format = 0; format < 3; format++)
        {
            foreach (var (rows, cols) in shapes)
            {
                data.Add(format, rows, cols, 0);
            }

            foreach (int offset in format == 0 ? new[] { 1, 3 } : new[] { 1, 5, 7 })
            {
                data.Add(format, 3, 2053, offset);
                data.Add(format, 7, 300, offset);
            }
        }

        return data;
    }

    [Fact]
    public void FewLongRowsAreSplitAndManyRowsAreNot()
    {
        Assert.True(K.ReductionPlan(1, 5000, 4).Chunks > 1);
        Assert.True(K.ReductionPlan(3, 2053, 8).Chunks > 1);
        Assert.Equal(1, K.ReductionPlan(4096, 4096, 4).Chunks);
        Assert.Equal(1, K.ReductionPlan(1, 3, 8).Chunks);
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Reductions(int format, int rows, int cols, int offset)
    {
        int seed = 9100 + format * 100000 + rows * 10000 + cols * 10 + offset;
        bool half = format != 0;
        bool bf16 = format == 2;
        var values = Random(seed, rows * cols);
        for (int r = 0; r < rows; r++)
        {
            Special(values.AsSpan(r * cols, cols), r, cols);
        }

        if (half)
        {
            values = ToFloat(To16(values, bf16), bf16);
        }

        var rowsOf = Enumerable.Range(0, rows).Select(r => values.Skip(r * cols).Take(cols).Select(v => (double)v).ToArray()).ToArray();
        var sum = rowsOf.Select(r => r.Sum()).ToArray();
        var mean = rowsOf.Select(r => r.Sum() / r.Length).ToArray();
        var amax = rowsOf.Select(r => r.Any(double.IsNaN) ? double.NaN : r.Max()).ToArray();
        var argmax = rowsOf.Select(r => (long)ArgMax(r)).ToArray();
        double atol = Atol * cols;
        string at = $"{rows}x{cols} offset {offset}";
        var idx = PoisonedLong(rows);
        if (!half)
        {
            var x = UploadAt(values, offset, 0f);
            var o = Poisoned(rows);
            K.Sum(x, o, cols);
            AssertClose(Download(o), sum, RtolF32, atol, "sum " + at, seed);
            o = Poisoned(rows);
            K.Mean(x, o, cols);
            AssertClose(Download(o), mean, RtolF32, atol, "mean " + at, seed);
            o = Poisoned(rows);
            K.Amax(x, o, cols);
            AssertClose(Download(o), amax, 0, 0, "amax " + at, seed);
            K.Argmax(x, idx, cols);
        }
        else
        {
            var x = UploadAt(To16(values, bf16), offset, (ushort)0);
            var o = Poisoned16(rows, bf16);
            K.Sum(x, o, cols, F(bf16));
            Check16(o, sum, bf16, "sum " + at, seed, atol);
            o = Poisoned16(rows, bf16);
            K.Mean(x, o, cols, F(bf16));
            Check16(o, mean, bf16, "mean " + at, seed, atol);
            o = Poisoned16(rows, bf16);
            K.Amax(x, o, cols, F(bf16));
            Check16(o, amax, bf16, "amax " + at, seed, 0);
            K.Argmax(x, idx, cols, F(bf16));
        }

        Assert.Equal(argmax, Download(idx));
    }

    /// <summary>
    /// topk by radix selection: 0 = float32, 1 = float16, 2 = bfloat16; k from 1 to cols and past the radix kernel's limit
    /// (the older kernel), rows with ties at the k-th value (more copies than are taken), NaN, ±∞ and ±0.
    /// </summary>
    public static TheoryData<int, int, int, int> TopKCases()
    {
        var data = new TheoryData<int, int, int, int>();
        for (int format = 0; format < 3; format++)
        {
            data.Add(format, 1, 1, 1);
            data.Add(format, 3, 37, 5);
            data.Add(format, 8, 300, 50);
            data.Add(format, 2, 3001, 64);
            data.Add(format, 8, 40, 40);
            data.Add(format, 1, 1100, TopKReductionKernels.MaxK);
            data.Add(format, 1, 1100, TopKReductionKernels.MaxK + 1);
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(TopKCases))]
    public void TopK(int format, int rows, int cols, int k) =>
        TopKCheck.Run(Device, format, rows, cols, k, seed: 9300 + format * 100000 + rows * 10000 + cols * 10 + k);

    /// <summary>
    /// The radix topk at CUDA's geometry (32-lane warps, 8 of them) on 16-bit rows: a row of normal draws (16-bit rounding
    /// often gives the k-th value copies), a row whose threshold copies are spread over the warps' segments with the last
    /// taken one in warp 2 or 3, one whose copies all lie in the last segment, and a row of one value. Indices and value
    /// bits against the ordering above; outputs poisoned.
    /// </summary>
    [Theory]
    [InlineData(false, 4001, 50)]
    [InlineData(true, 4001, 50)]
    [InlineData(true, 16000, 50)]
    [InlineData(false, 2500, 300)]
    public void TopKAtCudaGeometryTakesTheFirstCopiesInIndexOrder(bool bf16, int cols, int k)
    {
        const int rows = 4;
        int seed = 9400 + (bf16 ? 1 : 0) + cols + k;
        var rng = new Random(seed);
        var values = new float[rows * cols];
        for (int c = 0; c < cols; c++)
        {
            values[c] = (float)(Math.Sqrt(-2 * Math.Log(1 - rng.NextDouble())) * Math.Cos(2 * Math.PI * rng.NextDouble()));
            // k - 3 values above the threshold, then copies of it 613 apart: the three taken lie in the segments of warps
            // 0 to 3, the rest in later ones.
            values[cols + c] = c < k - 3 ? 2f : c % 613 == 5 ? 1f : -1f;
            values[(2 * cols) + c] = c >= cols - (k + 10) ? 1f : -1f; // k + 10 copies of the threshold, all in the last segment
            values[(3 * cols) + c] = 0.25f;                           // one value: the first k by index
        }

        var bits = To16(values, bf16);
        values = ToFloat(bits, bf16);
        var acc = warp32.Accelerator;
        using var x = acc.Allocate1D(bits);
        using var v = acc.Allocate1D(Enumerable.Repeat(bf16 ? (ushort)0x7FC0 : (ushort)0x7E00, rows * k).ToArray());
        using var idx = acc.Allocate1D(Enumerable.Repeat(long.MinValue, rows * k).ToArray());
        using var unused = acc.Allocate1D<uint>(1);
        var kernel = acc.LoadStreamKernel<ArrayView<uint>, ArrayView<ushort>, ArrayView<uint>, ArrayView<ushort>, ArrayView<long>, int, int>(
            bf16 ? TopKReductionKernels.TopKRows<BFloat16Storage> : TopKReductionKernels.TopKRows<Float16Storage>);
        kernel(new KernelConfig(rows, 256), unused.View, x.View, unused.View, v.View, idx.View, cols, k);
        acc.Synchronize();
        var gotIndex = idx.GetAsArray1D();
        var gotBits = v.GetAsArray1D();
        int ties = 0;
        for (int r = 0; r < rows; r++)
        {
            var order = TopKCheck.Expected(values.AsSpan(r * cols, cols), k);
            float kth = values[(r * cols) + order[k - 1]];
            ties += values.Skip(r * cols).Take(cols).Count(e => e == kth) > order.Count(o => values[(r * cols) + o] == kth) ? 1 : 0;
            for (int j = 0; j < k; j++)
            {
                Assert.True(order[j] == gotIndex[(r * k) + j], $"topk {F(bf16)} (seed {seed}) row {r} #{j}: index {gotIndex[(r * k) + j]}, expected {order[j]}");
                Assert.True(bits[(r * cols) + order[j]] == gotBits[(r * k) + j], $"topk {F(bf16)} (seed {seed}) row {r} #{j}: value bits {gotBits[(r * k) + j]:x}, expected {bits[(r * cols) + order[j]]:x}");
            }
        }

        Assert.True(ties >= 3, $"expected rows whose k-th value has copies left untaken ({ties})");
    }

    /// <summary>
    /// The radix topk's PTX for SM_90 in each format: its loads leave in batches (eight in a histogram pass, four in the
    /// gather and in the in-order walk) with no shared atomic or shuffle between the loads of a batch. One load per count
    /// made every count wait a round trip behind the previous atomic (one group per row: the chain was the kernel's time).
    /// </summary>
    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(2)]
    public void TopKPtxIssuesKeysInBatches(int format)
    {
        var method = typeof(TopKReductionKernels).GetMethod(nameof(TopKReductionKernels.TopKRows))!
            .MakeGenericMethod(format switch { 0 => typeof(Float32Storage), 1 => typeof(Float16Storage), _ => typeof(BFloat16Storage) });
        string ptx = Sm90Ptx.Of(method, dumpName: $"topk-{format}");
        var runs = System.Text.RegularExpressions.Regex.Split(ptx, @"\b(?:(?:red|atom)\.[\w.]*shared|shfl\.sync|bar\.sync)")
            .Select(part => System.Text.RegularExpressions.Regex.Matches(part, @"\bld\.global(?:\.nc)?\.(?:u16|b16|u32|b32)").Count)
            .Where(loads => loads > 0).ToArray();
        string seen = $"loads between shared atomics, shuffles and barriers: {string.Join(", ", runs)}";
        Assert.True(runs.Count(loads => loads == 8) == 1, seen);
        Assert.True(runs.Count(loads => loads == 4) == 2, seen);

        // No branch between the histogram pass's eight loads (the keys' NaN and sign cases come after them).
        var eight = System.Text.RegularExpressions.Regex.Match(ptx, @"ld\.global\.\w+\s[^;]*;(?:(?!ld\.global)[\s\S])*?(?:ld\.global\.\w+\s[^;]*;(?:(?!ld\.global)[\s\S])*?){6}ld\.global\.\w+\s[^;]*;");
        Assert.True(eight.Success, "no run of eight loads");
        Assert.DoesNotContain("bra", eight.Value, StringComparison.Ordinal);
    }

    /// <summary>Row <paramref name="r"/>'s special values, by r mod 7 (row 0 and rows of fewer than 3 elements stay random).</summary>
    private static void Special(Span<float> row, int r, int cols)
    {
        if (cols < 3)
        {
            return;
        }

        int late = cols - 1 - cols / 5;
        switch (r % 7)
        {
            case 1: // NaN propagates; argmax takes the first NaN, even after a +∞
                row[cols / 7] = float.PositiveInfinity;
                row[cols / 3] = float.NaN;
                row[late] = float.NaN;
                break;
            case 2: // a tie of the maximum far apart (different chunks): the first index wins; -∞ does not matter
                row[late] = 50f;
                row[cols / 4] = 50f;
                row[cols / 2] = float.NegativeInfinity;
                break;
            case 3: // all -∞: sum and max -∞, argmax 0
                row.Fill(float.NegativeInfinity);
                break;
            case 4: // +∞ and -∞: sum NaN, max +∞ at its first place
                row[late] = float.PositiveInfinity;
                row[1] = float.NegativeInfinity;
                row[cols / 2] = float.PositiveInfinity;
                break;
            case 5: // the maximum at the first and the last element (scalar head / tail or vector ends)
                row[0] = 60f;
                row[cols - 1] = 60f;
                break;
            case 6: // the maximum only in the last element, ties elsewhere below it
                row[cols - 1] = 70f;
                row[cols / 2] = 40f;
                row[cols / 3] = 40f;
                break;
        }
    }

    /// <summary>torch.argmax: the first NaN, else the first index of the maximum.</summary>
    private static int ArgMax(double[] row)
    {
        int best = 0;
        for (int c = 0; c < row.Length; c++)
        {
            if (double.IsNaN(row[c]))
            {
                return c;
            }

            if (row[c] > row[best])
            {
                best = c;
            }
        }

        return best;
    }
}
