using System;
using System.Linq;
using ILGPU;
using Xunit;

namespace GemsInjector.Kernels.Ilgpu.Tests;

/// <summary>
/// The SGEMM variants (<c>GEMS_SGEMM_VARIANT</c>: legacy, warp8, wide16, async16, pipe16; a "+short" suffix also sets
/// <c>GEMS_SGEMM_SHORT_VARIANT=async</c>, "+pipeshort" <c>pipe</c>, "+pipe16k" <c>pipe16k</c>) against a float64 reference with NaN-poisoned outputs: both B layouts, M/N
/// tails, split-K (GEMV off), batches, bias epilogues, and views that are not 16-byte aligned or have K / N not a multiple
/// of 4 (the warp-tiled kernel then hands over to the legacy one).
/// </summary>
[Collection(SimulatorCollection.Name)]
public sealed class SgemmWarpTests : KernelTestBase
{
    public SgemmWarpTests(SimulatorFixture fixture)
        : base(fixture)
    {
    }

    public static TheoryData<string, int, int, int, int, bool> Shapes()
    {
        var data = new TheoryData<string, int, int, int, int, bool>();
        foreach (var v in new[] { "legacy", "warp8", "wide16", "async16" })
        {
            data.Add(v, 1, 33, 40, 36, false);
            data.Add(v, 1, 33, 40, 37, true);
            data.Add(v, 1, 70, 68, 100, false);
            data.Add(v, 1, 70, 68, 99, true);
            data.Add(v, 1, 5, 200, 36, false);
            data.Add(v, 1, 16, 256, 12, true);
            data.Add(v, 1, 17, 132, 44, false);
            data.Add(v, 1, 1, 4, 4, false);
            data.Add(v, 1, 40, 4, 8, true);
            data.Add(v, 3, 7, 20, 8, false);
            data.Add(v, 2, 17, 12, 5, true);
            data.Add(v, 1, 33, 41, 36, false);
            data.Add(v, 1, 33, 40, 38, false);
        }

        // `wide16` on the simulator: K-tile 8 for the square tile (two 16-byte vectors along K per row), 4 for the short.
        data.Add("wide16", 1, 100, 76, 150, false);
        data.Add("wide16", 1, 100, 76, 150, true);
        data.Add("wide16", 1, 33, 12, 64, true);
        data.Add("wide16", 2, 45, 44, 72, false);
        data.Add("wide16", 1, 9, 44, 129, true);
        data.Add("wide16", 1, 64, 64, 128, false);
        data.Add("wide16", 1, 65, 4, 68, true);
        data.Add("wide16", 3, 33, 20, 65, true);
        data.Add("wide16", 1, 16, 100, 300, false);
        data.Add("wide16", 2, 3, 8, 260, false);

        // `async16` on the simulator: the 32×64 tile (17 rows and up) through three stages of K-tile 8, synchronous
        // copies in the kernel's order; 1, 2, 3 and many K-tiles (the pipeline's prologue and tail), K tails inside a
        // tile, row / column tails, batches, both layouts; ≤ 16 rows take the short `wide16` tile.
        data.Add("async16", 1, 100, 76, 150, false);
        data.Add("async16", 1, 100, 76, 150, true);
        data.Add("async16", 1, 64, 64, 128, false);
        data.Add("async16", 1, 65, 4, 68, true);
        data.Add("async16", 1, 17, 8, 64, false);
        data.Add("async16", 1, 33, 16, 64, true);
        data.Add("async16", 1, 40, 24, 68, false);
        data.Add("async16", 1, 40, 20, 60, true);
        data.Add("async16", 2, 45, 36, 72, false);
        data.Add("async16", 3, 33, 44, 12, true);
        data.Add("async16", 1, 130, 200, 132, true);
        data.Add("async16", 1, 9, 44, 128, true);

        // The cp.async short tile (`+short`: SgemmAsync8x16F32 with TWarpRows 1, 16×128 and K-tile 8 on the simulator, as the
        // GPU's 64×256 for 17–64 rows; `+pipeshort`: SgemmAsyncPipe8x16F32's for B [K, N]): 1–16 rows (the row tail inside the tile), K tails inside a K-tile (K = 4 mod 8), a
        // single partial K-tile, odd N with B [N, K], column tails across several 128-column tiles, split-K with a partial
        // last chunk, batches; over 16 rows the square tile of the base variant. `+pipe16k` runs the same cases at K-tile
        // 16 (K = 4 or 12 mod 16 and K < 16 are tails inside a K-tile there), plus K = 8: half of one K-tile; `+pipe16kruns`
        // the same with 16-byte runs of C where N is a multiple of 4, `+pipe16kspread` also with the copies spread over the
        // written-out K-tile (1, 2 and many K-tiles: the zero-filling copies past the last tile).
        foreach (var v in new[] { "pipe16+short", "async16+short", "pipe16+pipeshort", "pipe16+pipe16k", "pipe16+pipe16kruns", "pipe16+pipe16kspread" })
        {
            data.Add(v, 1, 13, 148, 1031, true);
            data.Add(v, 1, 13, 148, 1028, false);
            data.Add(v, 1, 16, 256, 300, false);
            data.Add(v, 1, 16, 1028, 132, true);
            data.Add(v, 1, 9, 524, 100, false);
            data.Add(v, 1, 9, 524, 101, true);
            data.Add(v, 1, 1, 36, 260, false);
            data.Add(v, 1, 7, 4, 260, true);
            data.Add(v, 1, 5, 200, 36, false);
            data.Add(v, 3, 7, 20, 68, false);
            data.Add(v, 2, 16, 12, 131, true);
            data.Add(v, 1, 37, 72, 44, true);
        }

        foreach (var v in new[] { "pipe16+pipe16k", "pipe16+pipe16kruns", "pipe16+pipe16kspread" })
        {
            data.Add(v, 1, 11, 8, 300, false);
            data.Add(v, 1, 11, 8, 301, true);
            data.Add(v, 1, 16, 40, 128, false);
            data.Add(v, 2, 3, 600, 260, true);
        }

        foreach (var v in new[] { "pipe16+pipe16kruns", "pipe16+pipe16kspread" })
        {
            data.Add(v, 1, 16, 600, 132, false);
            data.Add(v, 1, 5, 1028, 260, false);
            data.Add(v, 1, 12, 32, 132, false);
            data.Add(v, 1, 12, 20, 129, false);
        }

        // `pipe16` on the simulator: SgemmAsyncPipe8x16F32 for B [K, N] (rotated fragments: the wrap of the next-step index
        // at a tile's end, 1 to many K-tiles, K tails, row / column tails, batches); B [N, K] stays `async16`'s kernel.
        foreach (var v in new[] { "pipe16" })
        {
            data.Add(v, 1, 100, 76, 150, false);
            data.Add(v, 1, 64, 64, 128, false);
            data.Add(v, 1, 65, 4, 68, false);
            data.Add(v, 1, 17, 8, 64, false);
            data.Add(v, 1, 33, 16, 64, false);
            data.Add(v, 1, 40, 24, 68, false);
            data.Add(v, 1, 97, 132, 132, false);
            data.Add(v, 2, 45, 36, 72, false);
            data.Add(v, 3, 33, 44, 12, false);
            data.Add(v, 1, 130, 200, 132, false);
            data.Add(v, 1, 33, 40, 36, false);
            data.Add(v, 1, 70, 68, 100, false);
            data.Add(v, 1, 100, 76, 150, true);
            data.Add(v, 1, 9, 44, 128, false);
        }

        return data;
    }

    private static double[] MatMul(float[] a, float[] b, int batch, int m, int k, int n, bool transposeB)
    {
        var c = new double[batch * m * n];
        for (int z = 0; z < batch; z++)
        {
            for (int i = 0; i < m; i++)
            {
                for (int j = 0; j < n; j++)
                {
                    double s = 0;
                    for (int p = 0; p < k; p++)
                    {
                        s += (double)a[z * m * k + i * k + p] * b[z * k * n + (transposeB ? j * k + p : p * n + j)];
                    }

                    c[z * m * n + i * n + j] = s;
                }
            }
        }

        return c;
    }

    /// <summary>
    /// Runs <paramref name="body"/> with the GEMVs off and the SGEMM <paramref name="variant"/>: a <c>GEMS_SGEMM_VARIANT</c>
    /// value, then optionally "+" and a <c>GEMS_SGEMM_SHORT_VARIANT</c> value written as "short" (<c>async</c>),
    /// "pipeshort" (<c>pipe</c>) or "pipe16k"; without it the short tile is <c>wide</c>'s.
    /// </summary>
    private void WithVariant(string variant, Action body)
    {
        var savedVariant = K.SgemmKernel;
        var savedShort = K.SgemmShortKernel;
        int savedRows = K.GemvMaxRows;
        var parts = variant.Split('+');
        K.SgemmKernel = SgemmKernelChoice.Parse(parts[0]);
        K.SgemmShortKernel = SgemmShortChoice.Parse(parts.Length > 1 ? parts[1] switch { "short" => "async", "pipeshort" => "pipe", var other => other } : "wide");
        K.GemvMaxRows = 0;
        try
        {
            body();
        }
        finally
        {
            K.SgemmKernel = savedVariant;
            K.SgemmShortKernel = savedShort;
            K.GemvMaxRows = savedRows;
        }
    }

    /// <summary>
    /// `pipe16kruns` writes C in 16-byte runs only where C is 16-byte aligned: C at a 16-byte boundary (the runs; the
    /// simulator's buffers are aligned, checked first) and one float past it (the per-element stores), with and without
    /// split-K (summed by <c>GEMS_SPLITK_REDUCE_LOADS=runs</c>'s reduce where C is aligned), alpha applied and a bias at
    /// beta 0; every element of C against float64 and the floats around C still NaN.
    /// </summary>
    [Theory]
    [InlineData(0, 40, "pipe16kruns")]
    [InlineData(1, 40, "pipe16kruns")]
    [InlineData(0, 1028, "pipe16kruns")]
    [InlineData(1, 1028, "pipe16kruns")]
    [InlineData(0, 1028, "pipe16kspread")]
    [InlineData(1, 40, "pipe16kspread")]
    public void ShortTileRunsNeedAlignedC(int offset, int k, string shortVariant)
    {
        const int m = 13, n = 132;
        int seed = 9900 + offset + k;
        var a = Random(seed, m * k);
        var b = Random(seed + 1, k * n);
        var savedReduce = K.SplitKReduceLoading;
        K.SplitKReduceLoading = SplitKReduceLoads.Runs;
        try
        {
            WithVariant("pipe16+" + shortVariant, () =>
            {
                var whole = Poisoned(m * n + 8);
                Assert.Equal(0, TensorCoreLaunch.DeviceAddress(whole) % 16);
                var c = whole.SubView(offset, m * n);
                K.Addmm(Upload(Random(seed + 2, n)), Upload(a), Upload(b), c, m, k, n, beta: 0f, alpha: 0.75f, transposeB: false);
                var got = Download(whole);
                AssertClose(got.Skip(offset).Take(m * n).ToArray(), MatMul(a, b, 1, m, k, n, false).Select(p => 0.75 * p).ToArray(), RtolF32, Atol * k,
                    $"{shortVariant} offset {offset} k {k}", seed);
                Assert.All(got.Take(offset).Concat(got.Skip(offset + (m * n))), x => Assert.True(float.IsNaN(x)));
            });
        }
        finally
        {
            K.SplitKReduceLoading = savedReduce;
        }

        Assert.True(Device.HasCompiled(shortVariant == "pipe16kspread" ? "SgemmAsyncPipeSpread8x16F32<4,16,1>" : "SgemmAsyncPipe8x16F32<4,16,1>"));
        if (k > 1000 && offset == 0)
        {
            Assert.True(Device.HasCompiled(nameof(GemmFastKernels.GemvReduceRunsF32)));
        }
    }

    [Theory]
    [MemberData(nameof(Shapes))]
    public void BmmMatchesFloat64(string variant, int batch, int m, int k, int n, bool transposeB)
    {
        int seed = 9100 + batch * 1000 + m * 10 + k + n + variant.Length * 7;
        var a = Random(seed, batch * m * k);
        var b = Random(seed + 1, batch * k * n);
        WithVariant(variant, () =>
        {
            var c = Poisoned(batch * m * n);
            K.Bmm(Upload(a), Upload(b), c, batch, m, k, n, transposeB);
            AssertClose(Download(c), MatMul(a, b, batch, m, k, n, transposeB), RtolF32, Atol * k, $"{variant} bmm {batch}x{m}x{k}x{n} tb={transposeB}", seed);
        });
    }

    [Theory]
    [InlineData("warp8", false, false)]
    [InlineData("warp8", true, true)]
    [InlineData("legacy", false, true)]
    [InlineData("wide16", false, false)]
    [InlineData("wide16", true, true)]
    [InlineData("async16", false, false)]
    [InlineData("async16", true, true)]
    [InlineData("pipe16", false, false)]
    [InlineData("pipe16", true, false)]
    [InlineData("pipe16+short", false, false)]
    [InlineData("pipe16+short", true, true)]
    [InlineData("async16+short", true, false)]
    [InlineData("async16+short", false, true)]
    [InlineData("pipe16+pipeshort", true, false)]
    [InlineData("pipe16+pipeshort", false, true)]
    [InlineData("pipe16+pipe16k", true, false)]
    [InlineData("pipe16+pipe16k", false, true)]
    [InlineData("pipe16+pipe16kruns", true, false)]
    [InlineData("pipe16+pipe16kruns", false, false)]
    [InlineData("pipe16+pipe16kspread", true, false)]
    [InlineData("pipe16+pipe16kspread", false, false)]
    public void AddmmBiasEpilogue(string variant, bool matrixBias, bool transposeB)
    {
        const int m = 37, k = 72, n = 44;
        int seed = 9300 + (matrixBias ? 1 : 0) + (transposeB ? 2 : 0) + variant.Length * 4;
        var a = Random(seed, m * k);
        var b = Random(seed + 1, k * n);
        var bias = Random(seed + 2, matrixBias ? m * n : n);
        WithVariant(variant, () =>
        {
            var c = Poisoned(m * n);
            K.Addmm(Upload(bias), Upload(a), Upload(b), c, m, k, n, beta: 0.5f, alpha: 2f, transposeB: transposeB);
            var expected = MatMul(a, b, 1, m, k, n, transposeB).Select((p, idx) => 2 * p + 0.5 * bias[matrixBias ? idx : idx % n]).ToArray();
            AssertClose(Download(c), expected, RtolF32, Atol * k, $"{variant} addmm", seed);

            // Split-K (few tiles, long K): alpha and bias go through the reduce kernel.
            var a2 = Random(seed + 3, 5 * 256);
            var b2 = Random(seed + 4, 256 * n);
            c = Poisoned(5 * n);
            var bias2 = Random(seed + 5, n);
            K.Addmm(Upload(bias2), Upload(a2), Upload(b2), c, 5, 256, n, beta: 2f, alpha: 0.5f, transposeB: transposeB);
            var expected2 = MatMul(a2, b2, 1, 5, 256, n, transposeB).Select((p, idx) => 0.5 * p + 2.0 * bias2[idx % n]).ToArray();
            AssertClose(Download(c), expected2, RtolF32, Atol * 256, $"{variant} addmm split-K", seed);
        });
    }

    /// <summary>Views one float past a 16-byte boundary take the legacy kernel (the warp kernel needs aligned vectors).</summary>
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void MisalignedViewsFallBack(bool transposeB)
    {
        const int m = 20, k = 24, n = 28;
        int seed = 9400 + (transposeB ? 1 : 0);
        var a = Random(seed, m * k + 1);
        var b = Random(seed + 1, k * n + 1);
        WithVariant("warp8", () =>
        {
            var aView = Upload(a).SubView(1, m * k);
            var bView = Upload(b).SubView(1, k * n);
            Assert.False(IlgpuKernels.UsesSgemmWarpF32(aView, bView, k, n, transposeB));
            var c = Poisoned(m * n);
            K.Mm(aView, bView, c, m, k, n, transposeB);
            AssertClose(Download(c), MatMul(a.Skip(1).ToArray(), b.Skip(1).ToArray(), 1, m, k, n, transposeB), RtolF32, Atol * k, "misaligned mm", seed);
        });
    }

    /// <summary>
    /// Split-K on the 8×16 kernels (40 rows: two of the simulator's 32-row tiles, K 256 in 2 chunks of 128; with "+short"
    /// 13 rows on the cp.async 16×128 tile, K 1028 in 4 chunks, the last one ending inside a K-tile): the partials, then
    /// alpha and the bias through the reduce kernel.
    /// </summary>
    [Theory]
    [InlineData(false, false, "wide16")]
    [InlineData(true, true, "wide16")]
    [InlineData(false, true, "async16")]
    [InlineData(true, false, "async16")]
    [InlineData(false, false, "pipe16")]
    [InlineData(true, false, "pipe16")]
    [InlineData(false, false, "pipe16+short")]
    [InlineData(true, false, "pipe16+short")]
    [InlineData(false, true, "pipe16+short")]
    [InlineData(true, true, "async16+short")]
    [InlineData(false, false, "pipe16+pipeshort")]
    [InlineData(true, false, "pipe16+pipeshort")]
    [InlineData(true, true, "pipe16+pipeshort")]
    [InlineData(false, false, "pipe16+pipe16k")]
    [InlineData(true, false, "pipe16+pipe16k")]
    [InlineData(false, true, "pipe16+pipe16k")]
    [InlineData(true, true, "pipe16+pipe16k")]
    [InlineData(false, false, "pipe16+pipe16kruns")]
    [InlineData(true, false, "pipe16+pipe16kruns")]
    [InlineData(false, false, "pipe16+pipe16kspread")]
    [InlineData(true, true, "pipe16+pipe16kspread")]
    public void WideSplitKWithBias(bool matrixBias, bool transposeB, string variant)
    {
        bool shortTile = variant.Contains('+', StringComparison.Ordinal);
        int m = shortTile ? 13 : 40, k = shortTile ? 1028 : 256, n = 60;
        int seed = 9600 + (matrixBias ? 1 : 0) + (transposeB ? 2 : 0) + variant.Length * 4;
        var a = Random(seed, m * k);
        var b = Random(seed + 1, k * n);
        var bias = Random(seed + 2, matrixBias ? m * n : n);
        WithVariant(variant, () =>
        {
            var c = Poisoned(m * n);
            K.Addmm(Upload(bias), Upload(a), Upload(b), c, m, k, n, beta: -1.25f, alpha: 0.75f, transposeB: transposeB);
            var expected = MatMul(a, b, 1, m, k, n, transposeB).Select((p, idx) => 0.75 * p - 1.25 * bias[matrixBias ? idx : idx % n]).ToArray();
            AssertClose(Download(c), expected, RtolF32, Atol * k, $"{variant} addmm split-K", seed);
        });
        Assert.True(Device.HasCompiled(variant switch
        {
            "wide16" => "SgemmWide8x16F32<4,2,8>",
            "pipe16" => "SgemmAsyncPipe8x16F32<4,8,2>",
            "pipe16+pipeshort" when !transposeB => "SgemmAsyncPipe8x16F32<4,8,1>",
            "pipe16+pipe16k" or "pipe16+pipe16kruns" => transposeB ? "SgemmAsync8x16F32<4,16,2,1>" : "SgemmAsyncPipe8x16F32<4,16,1>",
            "pipe16+pipe16kspread" => transposeB ? "SgemmAsync8x16F32<4,16,2,1>" : "SgemmAsyncPipeSpread8x16F32<4,16,1>",
            _ => $"SgemmAsync8x16F32<4,8,{(transposeB ? 2 : 1)},{(shortTile ? 1 : 2)}>",
        }));
    }

    /// <summary>
    /// The 8×16 kernel's index arithmetic (GPU: 128 threads, lanes 8×4, 128×128 tile, K-tile 8; simulator: 16 threads,
    /// lanes 2×2, 32×64, K-tile 4), replayed: every output has exactly one owner, the staged vectors cover both tiles
    /// within the prefetch slots (2 of A, 4 of B), both double buffers fit WideShared, and the fragment loads of a warp
    /// touch at most 128 consecutive bytes (one shared wavefront).
    /// </summary>
    [Theory]
    [InlineData(16, 2, 8)]
    [InlineData(16, 1, 8)]
    [InlineData(16, 2, 16)]
    [InlineData(16, 1, 16)]
    [InlineData(4, 2, 4)]
    [InlineData(4, 1, 4)]
    [InlineData(4, 2, 8)]
    public void WideLayoutCoversTheTile(int t, int warpsDown, int bk)
    {
        bool gpu = t >= 16;
        int threads = GemmFastKernels.WideThreads(t), lr = gpu ? 8 : 2, lc = gpu ? 4 : 2, lanes = lr * lc;
        int warpsAcross = 4 / warpsDown;
        int warpRows = 8 * lr, warpCols = 16 * lc, tileRows = warpsDown * warpRows, tileCols = warpsAcross * warpCols;
        Assert.Equal(GemmFastKernels.WideTile(t, warpsDown), (tileRows, tileCols));
        Assert.Equal(gpu ? (warpsDown == 2 ? (128, 128) : (64, 256)) : (warpsDown == 2 ? (32, 64) : (16, 128)), (tileRows, tileCols));
        Assert.Equal(4 * lanes, threads);
        var owner = new int[tileRows * tileCols];
        for (int tid = 0; tid < threads; tid++)
        {
            int lane = tid % lanes, warp = tid / lanes;
            int tr = (warp / warpsAcross) * warpRows + 4 * (lane / lc);
            int tc = (warp % warpsAcross) * warpCols + 4 * (lane % lc);
            for (int i = 0; i < 8; i++)
            {
                for (int j = 0; j < 16; j++)
                {
                    owner[(tr + (i / 4) * 4 * lr + i % 4) * tileCols + tc + (j / 4) * 4 * lc + j % 4]++;
                }
            }
        }

        Assert.All(owner, count => Assert.Equal(1, count));
        if (gpu)
        {
            // One warp's A fragment: 8 distinct vectors, consecutive; B: 4 distinct, consecutive.
            var aVec = Enumerable.Range(0, 32).Select(l => 4 * (l / lc) / 4).Distinct().OrderBy(x => x).ToArray();
            var bVec = Enumerable.Range(0, 32).Select(l => 4 * (l % lc) / 4).Distinct().OrderBy(x => x).ToArray();
            Assert.Equal(Enumerable.Range(0, 8), aVec);
            Assert.Equal(Enumerable.Range(0, 4), bVec);
        }

        int kVecs = bk / 4;
        int aVecs = tileRows * kVecs, bVecs = tileCols * kVecs;
        Assert.InRange(aVecs, 1, 4 * threads);
        Assert.InRange(bVecs, 1, 8 * threads);
        var aSeen = new int[tileRows * bk];
        for (int e = 0; e < aVecs; e++)
        {
            for (int j = 0; j < 4; j++)
            {
                aSeen[(e / kVecs) * bk + 4 * (e % kVecs) + j]++;
            }
        }

        Assert.All(aSeen, count => Assert.Equal(1, count));
        foreach (bool rowMajor in new[] { true, false })
        {
            var bSeen = new int[bk * tileCols];
            for (int e = 0; e < bVecs; e++)
            {
                int kB = rowMajor ? e / (tileCols / 4) : 4 * (e % kVecs);
                int nB = rowMajor ? 4 * (e % (tileCols / 4)) : e / kVecs;
                for (int j = 0; j < 4; j++)
                {
                    bSeen[rowMajor ? kB * tileCols + nB + j : (kB + j) * tileCols + nB]++;
                }
            }

            Assert.All(bSeen, count => Assert.Equal(1, count));
        }

        Assert.True(2 * bk * (tileRows + 4) + 2 * bk * (tileCols + 4) <= GemmFastKernels.WideShared, "both double buffers fit");
    }

    /// <summary>
    /// The cp.async kernel's index arithmetic (GPU: 128 threads, lanes 8×4, the square 128×128 at K-tile 16 and the short
    /// 64×256 at K-tile 8; simulator: 16 threads, lanes 2×2, 32×64 and 16×128 at K-tile 8), replayed as the kernel runs it
    /// (thread tid's plan for slot 0, slot p stepped by constants): one owner per output in both B layouts; each stage's A
    /// and B vectors are copied exactly once within the copy slots (4 of A, 32 of B), to distinct shared vectors inside the
    /// stage, each from the global element it stands for; the fragment reads find what the copies wrote; three stages fit
    /// 48 KB, but for the GPU's short tile at K-tile 16 (`pipe16k`: 60 KB, two groups within an SM's 228 KB); and on GPUs
    /// the 8 A rows / 4 [N, K] B columns a warp reads in one load sit in distinct bank quads (one wavefront).
    /// </summary>
    [Theory]
    [InlineData(16, 16, 2)]
    [InlineData(16, 8, 1)]
    [InlineData(16, 16, 1)]
    [InlineData(4, 8, 2)]
    [InlineData(4, 8, 1)]
    [InlineData(4, 16, 1)]
    public void AsyncLayoutCoversTheTile(int t, int bk, int warpsDown)
    {
        bool gpu = t >= 16;
        int threads = GemmFastKernels.WideThreads(t), lr = gpu ? 8 : 2, lc = gpu ? 4 : 2, lanes = lr * lc;
        int warpsAcross = 4 / warpsDown;
        int warpRows = 8 * lr, warpCols = 16 * lc, tileRows = warpsDown * warpRows, tileCols = warpsAcross * warpCols;
        Assert.Equal(GemmFastKernels.WideTile(t, warpsDown), (tileRows, tileCols));
        int kc4 = bk / 4, swMask = kc4 - 1, aVecs = tileRows * kc4, bVecs = tileCols * kc4, bRowVecs = tileCols / 4;
        int swShift = kc4 >= 8 ? 0 : kc4 == 4 ? 1 : kc4 == 2 ? 2 : 3;
        Assert.InRange(aVecs, 1, 4 * threads);
        Assert.InRange(bVecs, 1, 32 * threads);
        int sharedBytes = GemmFastKernels.AsyncShared(tileRows, tileCols, bk) * sizeof(float);
        Assert.Equal(gpu && warpsDown == 1 && bk == 16 ? 60 * 1024 : sharedBytes, sharedBytes);
        Assert.True(sharedBytes <= GemmFastKernels.DefaultSharedBytes || (gpu && bk == 16 && 2 * (sharedBytes + 1024) <= 228 * 1024));
        Assert.Equal(GemmFastKernels.AsyncStages * (aVecs + bVecs) * 4, GemmFastKernels.AsyncShared(tileRows, tileCols, bk));
        Assert.Equal(0, aVecs % threads);
        Assert.Equal(0, bVecs % threads);
        int SwizzledA(int row, int kq) => row * kc4 + (kq ^ (((row % lr) >> swShift) & swMask));
        int SwizzledB(int col, int kq) => aVecs + col * kc4 + (kq ^ (((col % lc) >> swShift) & swMask));
        foreach (bool bT in new[] { false, true })
        {
            // Copies: shared vector -> (operand, row or column, k of its first element), as the kernel's slots compute them.
            var slot = new (int Operand, int Index, int K)?[aVecs + bVecs];
            for (int tid = 0; tid < threads; tid++)
            {
                int rA = tid / kc4, kA = 4 * (tid % kc4), aStepRows = threads / kc4;
                int dA = SwizzledA(rA, kA / 4);
                for (int p = 0; p < aVecs / threads; p++)
                {
                    int d = dA + p * threads;
                    Assert.Equal(SwizzledA(rA + p * aStepRows, kA / 4), d);
                    Assert.Null(slot[d]);
                    slot[d] = (0, rA + p * aStepRows, kA);
                }

                int kB = bT ? 4 * (tid % kc4) : tid / bRowVecs;
                int nB = bT ? tid / kc4 : 4 * (tid % bRowVecs);
                int dB = bT ? SwizzledB(nB, kB / 4) : aVecs + tid;
                for (int p = 0; p < bVecs / threads; p++)
                {
                    int dkB = bT ? 0 : p * threads / bRowVecs;
                    int dnB = bT ? p * (threads / kc4) : 4 * (p * threads % bRowVecs);
                    int d = dB + p * threads;
                    Assert.Equal(bT ? SwizzledB(nB + dnB, kB / 4) : aVecs + (kB + dkB) * bRowVecs + (nB + dnB) / 4, d);
                    Assert.InRange(nB + dnB, 0, tileCols - (bT ? 1 : 4));
                    Assert.InRange(kB + dkB, 0, bk - (bT ? 4 : 1));
                    Assert.Null(slot[d]);
                    slot[d] = (1, bT ? nB + dnB : kB + dkB, bT ? kB : nB + dnB);
                }
            }

            Assert.All(slot, entry => Assert.NotNull(entry));
            var owner = new int[tileRows * tileCols];
            for (int tid = 0; tid < threads; tid++)
            {
                int lane = tid % lanes, warp = tid / lanes;
                int tr = (warp / warpsAcross) * warpRows + lane / lc;
                int tc = (warp % warpsAcross) * warpCols + 4 * (lane % lc);
                int tcT = (warp % warpsAcross) * warpCols + lane % lc;
                for (int kq = 0; kq < kc4; kq++)
                {
                    for (int i = 0; i < 8; i++)
                    {
                        int row = tr + i * lr;
                        Assert.Equal((0, row, 4 * kq), slot[SwizzledA(row, kq)]);
                    }

                    for (int j = 0; j < 16; j++)
                    {
                        if (bT)
                        {
                            int col = tcT + j * lc;
                            Assert.Equal((1, col, 4 * kq), slot[SwizzledB(col, kq)]);
                        }
                        else if (j % 4 == 0)
                        {
                            for (int u = 0; u < 4; u++)
                            {
                                Assert.Equal((1, 4 * kq + u, tc + (j / 4) * 4 * lc), slot[aVecs + (kq * 4 + u) * bRowVecs + tc / 4 + (j / 4) * lc]);
                            }
                        }
                    }
                }

                for (int i = 0; i < 8; i++)
                {
                    for (int j = 0; j < 16; j++)
                    {
                        int col = bT ? tcT + j * lc : tc + (j / 4) * 4 * lc + j % 4;
                        owner[(tr + i * lr) * tileCols + col]++;
                    }
                }
            }

            Assert.All(owner, count => Assert.Equal(1, count));
        }

        if (gpu)
        {
            for (int kq = 0; kq < kc4; kq++)
            {
                for (int i = 0; i < 8; i++)
                {
                    var quads = Enumerable.Range(0, 32).Select(l => l / lc + i * lr).Distinct()
                        .Select(row => SwizzledA(row, kq) % 8).ToArray();
                    Assert.Equal(8, quads.Length);
                    Assert.Equal(8, quads.Distinct().Count());
                }

                for (int j = 0; j < 16; j++)
                {
                    var quads = Enumerable.Range(0, 32).Select(l => l % lc + j * lc).Distinct()
                        .Select(col => SwizzledB(col, kq) % 8).ToArray();
                    Assert.Equal(4, quads.Distinct().Count());
                }
            }
        }
    }

    /// <summary>
    /// <c>pipe16k</c> takes K-tile 16 only where three stages of it fit the group's shared limit: on GPUs the 64×256 tile
    /// needs 60 KB (an H100 / H200 opts into 227 KB; a device left at 48 KB keeps K-tile 8), on the simulator the 16×128
    /// tile 27 KB. With the limit lowered below that, the simulator's product falls back to <c>pipe</c>'s K-tile 8 kernel
    /// and is still right (`pipe16kspread`: to its own kernel at K-tile 8); other short settings stay at 8.
    /// </summary>
    [Theory]
    [InlineData(false, "pipe16k")]
    [InlineData(true, "pipe16k")]
    [InlineData(false, "pipe16kspread")]
    public void ShortTileKTile16FallsBackBelowItsSharedLimit(bool transposeB, string shortVariant)
    {
        const int m = 13, k = 300, n = 140;
        int seed = 9700 + (transposeB ? 1 : 0) + shortVariant.Length;
        var a = Random(seed, m * k);
        var b = Random(seed + 1, k * n);
        int savedLimit = K.SgemmShortSharedLimit;
        WithVariant("pipe16+" + shortVariant, () =>
        {
            try
            {
                Assert.True(savedLimit >= 27 * 1024, $"simulator shared limit {savedLimit}");
                Assert.Equal(16, K.AsyncShortKTile(4));
                K.SgemmShortSharedLimit = 227 * 1024;
                Assert.Equal(16, K.AsyncShortKTile(GemmFastKernels.MaxTileThreads));
                K.SgemmShortSharedLimit = GemmFastKernels.DefaultSharedBytes;
                Assert.Equal(8, K.AsyncShortKTile(GemmFastKernels.MaxTileThreads));
                Assert.Equal(16, K.AsyncShortKTile(4));
                K.SgemmShortSharedLimit = 16 * 1024;
                Assert.Equal(8, K.AsyncShortKTile(4));
                var c = Poisoned(m * n);
                K.Mm(Upload(a), Upload(b), c, m, k, n, transposeB);
                AssertClose(Download(c), MatMul(a, b, 1, m, k, n, transposeB), RtolF32, Atol * k, $"pipe16k fallback tb={transposeB}", seed);
                Assert.True(Device.HasCompiled(transposeB ? "SgemmAsync8x16F32<4,8,2,1>"
                    : shortVariant == "pipe16kspread" ? "SgemmAsyncPipeSpread8x16F32<4,8,1>" : "SgemmAsyncPipe8x16F32<4,8,1>"));
            }
            finally
            {
                K.SgemmShortSharedLimit = savedLimit;
            }
        });
        WithVariant("pipe16+pipeshort", () => Assert.Equal(8, K.AsyncShortKTile(GemmFastKernels.MaxTileThreads)));
    }

    /// <summary>The simulator's <c>wide16</c> runs reach the kernels they are meant to (names as loaded).</summary>
    [Fact]
    public void WideVariantsCompileTheirKTiles()
    {
        WithVariant("wide16", () =>
        {
            K.Mm(Upload(Random(3, 40 * 16)), Upload(Random(4, 16 * 64)), Poisoned(40 * 64), 40, 16, 64);
            K.Mm(Upload(Random(5, 12 * 16)), Upload(Random(6, 16 * 64)), Poisoned(12 * 64), 12, 16, 64);
            Device.Synchronize();
        });
        Assert.True(Device.HasCompiled("SgemmWide8x16F32<4,2,8>"));
        Assert.True(Device.HasCompiled("SgemmWide8x16F32<4,1,4>"));
    }

    [Fact]
    public void WarpKernelIsCompiledForAlignedProducts()
    {
        WithVariant("warp8", () =>
        {
            K.Mm(Upload(Random(1, 20 * 8)), Upload(Random(2, 8 * 12)), Poisoned(20 * 12), 20, 8, 12);
            Device.Synchronize();
        });
        Assert.True(Device.HasCompiled("SgemmWarpF32"));
    }

    /// <summary>
    /// 8–16-row products on the flat tile (GEMS_F32_SMALLM=sgemm; 8 × 64 on the simulator, so 9–16 rows cross two row
    /// tiles): both layouts, column tails, split-K with bias, and the hand-over to the GEMV for unaligned shapes.
    /// </summary>
    [Theory]
    [InlineData(8, 40, 64, false)]
    [InlineData(16, 256, 100, false)]
    [InlineData(16, 256, 100, true)]
    [InlineData(11, 132, 200, true)]
    [InlineData(9, 600, 36, false)]
    [InlineData(13, 44, 130, true)]
    [InlineData(16, 41, 36, false)]
    [InlineData(12, 40, 37, false)]
    public void SmallRowsOnTheFlatTile(int m, int k, int n, bool transposeB)
    {
        int seed = 9500 + m * 100 + k + n + (transposeB ? 1 : 0);
        var a = Random(seed, m * k);
        var b = Random(seed + 1, k * n);
        var bias = Random(seed + 2, n);
        var savedVariant = K.SgemmKernel;
        var savedRows = K.SmallRowsKernel;
        var savedGemv = K.GemvF32Kernel;
        K.SgemmKernel = SgemmKernelChoice.Parse("warp8");
        K.SmallRowsKernel = SmallRowsChoice.Parse("sgemm");
        // Under the default GEMV setting (stream) aligned products of either layout skip the flat tile; pipe leaves them to it.
        K.GemvF32Kernel = GemvF32Variant.Pipe;
        try
        {
            var c = Poisoned(m * n);
            K.Mm(Upload(a), Upload(b), c, m, k, n, transposeB);
            var prod = MatMul(a, b, 1, m, k, n, transposeB);
            AssertClose(Download(c), prod, RtolF32, Atol * k, $"flat mm {m}x{k}x{n} tb={transposeB}", seed);

            c = Poisoned(m * n);
            K.Addmm(Upload(bias), Upload(a), Upload(b), c, m, k, n, beta: 0.5f, alpha: 2f, transposeB: transposeB);
            AssertClose(Download(c), prod.Select((p, idx) => 2 * p + 0.5 * bias[idx % n]).ToArray(), RtolF32, Atol * k, $"flat addmm {m}x{k}x{n}", seed);
        }
        finally
        {
            K.SgemmKernel = savedVariant;
            K.SmallRowsKernel = savedRows;
            K.GemvF32Kernel = savedGemv;
        }
    }

    /// <summary>
    /// <c>GEMS_SGEMM_FLAT_TB_STAGE=vector</c>: the flat tile with B [N, K] on <c>SgemmWarpNkVecF32</c> (8 × 64 on the
    /// simulator, K-tile 4): 9–16 rows (two row tiles, the second partial), 1 to many K-tiles (odd and even counts: both
    /// shared buffers as the first), N under, over and not a multiple of the 64-column tile, odd N, split-K (long K), and
    /// addmm with a bias. Every element of C (NaN-poisoned first) against float64, then bit for bit against the scalar
    /// staging (<c>SgemmWarpF32</c>), which runs the same FMAs in the same order.
    /// </summary>
    [Theory]
    [InlineData(16, 4096, 11, false)]
    [InlineData(16, 36, 131, false)]
    [InlineData(9, 100, 37, false)]
    [InlineData(13, 4, 65, false)]
    [InlineData(12, 8, 64, false)]
    [InlineData(11, 132, 201, false)]
    [InlineData(15, 1028, 129, false)]
    [InlineData(10, 600, 7, true)]
    [InlineData(16, 44, 129, true)]
    [InlineData(14, 260, 63, true)]
    public void FlatTileNkVectorStagingMatchesFloat64AndScalarBits(int m, int k, int n, bool addmm)
    {
        int seed = 9800 + m * 100 + k + n + (addmm ? 1 : 0);
        var a = Random(seed, m * k);
        var b = Random(seed + 1, n * k);
        var bias = Random(seed + 2, n);
        var savedVariant = K.SgemmKernel;
        var savedRows = K.SmallRowsKernel;
        var savedStage = K.SgemmFlatTbStaging;
        var savedGemv = K.GemvF32Kernel;
        K.SgemmKernel = SgemmKernelChoice.Parse("warp8");
        K.SmallRowsKernel = SmallRowsChoice.Parse("sgemm");
        // Under the default GEMV setting (stream) these [N, K] products skip the flat tile; pipe leaves them to it.
        K.GemvF32Kernel = GemvF32Variant.Pipe;
        try
        {
            float[] Run(SgemmFlatTbStage stage)
            {
                K.SgemmFlatTbStaging = stage;
                var c = Poisoned(m * n);
                if (addmm)
                {
                    K.Addmm(Upload(bias), Upload(a), Upload(b), c, m, k, n, beta: 0.5f, alpha: 2f, transposeB: true);
                }
                else
                {
                    K.Mm(Upload(a), Upload(b), c, m, k, n, transposeB: true);
                }

                return Download(c);
            }

            var vector = Run(SgemmFlatTbStage.Vector);
            Assert.True(Device.HasCompiled("SgemmWarpNkVecF32<4,1,4,1>"));
            var prod = MatMul(a, b, 1, m, k, n, true);
            var expected = addmm ? prod.Select((p, idx) => 2 * p + 0.5 * bias[idx % n]).ToArray() : prod;
            AssertClose(vector, expected, RtolF32, Atol * k, $"flat tb vector {(addmm ? "addmm" : "mm")} {m}x{k}x{n}", seed);

            var scalar = Run(SgemmFlatTbStage.Scalar);
            for (int i = 0; i < scalar.Length; i++)
            {
                Assert.True(BitConverter.SingleToInt32Bits(scalar[i]) == BitConverter.SingleToInt32Bits(vector[i]),
                    $"element {i}: vector {vector[i]:R}, scalar {scalar[i]:R}");
            }
        }
        finally
        {
            K.SgemmKernel = savedVariant;
            K.SmallRowsKernel = savedRows;
            K.SgemmFlatTbStaging = savedStage;
            K.GemvF32Kernel = savedGemv;
        }
    }

    /// <summary>
    /// <c>SgemmWarpNkVecF32</c>'s n-major B tile, replayed for the GPU (T = 16, K-tile 8) and simulator (4, 4) variants as the
    /// kernel computes it: the staged vectors (column nB, k vector kB / 4 of thread tid's slot p, written at slot 0's plus p
    /// constant steps) land on distinct slots of one B buffer (the padding vectors aside), and both buffers fit WarpNkShared; each fragment read (the per-thread base
    /// plus constants the kernel uses) finds the vector of the column and k it stands for; and on GPUs the 8 column lanes of
    /// a warp's fragment load, and the 8 lanes of each quarter-warp's store, sit in distinct 16-byte bank quads (one
    /// wavefront per 128 bytes).
    /// </summary>
    [Theory]
    [InlineData(16, 8)]
    [InlineData(4, 4)]
    public void NkVectorStagingLayoutCoversTheTile(int t, int bk)
    {
        bool gpu = t >= 16;
        int threads = t * t, lr = gpu ? 4 : 2, lc = gpu ? 8 : 2, lanes = lr * lc;
        var (tileRows, tileCols) = GemmFastKernels.FlatTile(t);
        int warpsAcross = threads / lanes;
        int kVecs = bk / 4, bVecs = tileCols * kVecs, bufQ = tileCols / 4 * (4 * kVecs + 1);
        Assert.Equal(4 * threads, bVecs);
        var slot = new (int N, int Kv)?[bufQ];
        int StoreSlot(int e, out int nB, out int kv)
        {
            nB = e / kVecs;
            kv = (4 * (e & (kVecs - 1))) >> 2;
            return GemmFastKernels.NkSlot(nB, kv, kVecs);
        }

        // The kernel stores slot p at its slot 0's plus p constant steps.
        int dStepB = threads / kVecs / 4 * (4 * kVecs + 1);
        for (int tid = 0; tid < threads; tid++)
        {
            int d0 = StoreSlot(tid, out _, out _);
            for (int p = 0; p < 4; p++)
            {
                int d = StoreSlot(tid + p * threads, out int nB, out int kv);
                Assert.Equal(d0 + (p * dStepB), d);
                Assert.InRange(d, 0, bufQ - 1);
                Assert.Null(slot[d]);
                slot[d] = (nB, kv);
            }
        }

        Assert.Equal(bVecs, slot.Count(entry => entry is not null));
        Assert.All(Enumerable.Range(0, tileCols / 4), g => Assert.Null(slot[(g * (4 * kVecs + 1)) + (4 * kVecs)]));
        Assert.True(2 * bufQ <= GemmFastKernels.WarpNkShared / 4 - 2 * bk * GemmFastKernels.Ld / 4, "both B buffers fit B's region");
        Assert.InRange(GemmFastKernels.WarpNkShared * sizeof(float), 1, 48 * 1024);

        int FragSlot(int tc, int h, int j, int kv) => ((tc >> 2) * (4 * kVecs + 1)) + (h * lc * (4 * kVecs + 1)) + (j * kVecs) + kv;

        for (int tid = 0; tid < threads; tid++)
        {
            int lane = tid & (lanes - 1), warp = tid / lanes;
            int tc = (warp & (warpsAcross - 1)) * 8 * lc + 4 * (lane & (lc - 1));
            for (int kv = 0; kv < kVecs; kv++)
            {
                for (int h = 0; h < 2; h++)
                {
                    for (int j = 0; j < 4; j++)
                    {
                        int n = tc + h * 4 * lc + j;
                        Assert.Equal(GemmFastKernels.NkSlot(n, kv, kVecs), FragSlot(tc, h, j, kv));
                        Assert.Equal((n, kv), slot[FragSlot(tc, h, j, kv)]);
                    }
                }
            }
        }

        if (gpu)
        {
            // Both buffers start on a 128-byte boundary, so the quads below hold in either.
            Assert.Equal(0, bufQ % 8);
            for (int warp = 0; warp < threads / 32; warp++)
            {
                for (int kv = 0; kv < kVecs; kv++)
                {
                    for (int h = 0; h < 2; h++)
                    {
                        for (int j = 0; j < 4; j++)
                        {
                            var quads = Enumerable.Range(0, 32)
                                .Select(l => (warp & (warpsAcross - 1)) * 8 * lc + 4 * (l & (lc - 1)))
                                .Distinct().Select(tc => FragSlot(tc, h, j, kv) % 8).ToArray();
                            Assert.Equal(8, quads.Length);
                            Assert.Equal(8, quads.Distinct().Count());
                        }
                    }
                }

                for (int p = 0; p < 4; p++)
                {
                    for (int quarter = 0; quarter < 4; quarter++)
                    {
                        var quads = Enumerable.Range(0, 8).Select(l => StoreSlot(warp * 32 + quarter * 8 + l + p * threads, out _, out _) % 8);
                        Assert.Equal(8, quads.Distinct().Count());
                    }
                }
            }
        }
    }

    /// <summary>GEMS_SGEMM_FLAT_TB_STAGE: the 16-byte staging unless "scalar" (any case, spaces trimmed) asks for the old one.</summary>
    [Theory]
    [InlineData(null, "Vector")]
    [InlineData("", "Vector")]
    [InlineData("scalar", "Scalar")]
    [InlineData(" SCALAR ", "Scalar")]
    [InlineData("vector", "Vector")]
    [InlineData("scal", "Vector")]
    public void FlatTbStageSettingParses(string? setting, string expected) => Assert.Equal(expected, SgemmFlatTbStageChoice.Parse(setting).ToString());

    /// <summary>
    /// The GPU variants (T = 16) never run on the simulator (its groups stop at 16 threads), so their index arithmetic, as
    /// written in SgemmWarpF32, is replayed here: every output of the tile belongs to exactly one thread, the staged
    /// vectors cover the A and B tiles exactly within the prefetch slots (2 of A, 4 of B), and both shared regions fit.
    /// </summary>
    [Theory]
    [InlineData(16, 1, 8, 16)]
    [InlineData(16, 2, 8, 16)]
    [InlineData(16, 1, 16, 16)]
    [InlineData(16, 2, 16, 16)]
    [InlineData(16, 1, 8, 1)]
    [InlineData(4, 1, 4, 16)]
    [InlineData(4, 2, 4, 16)]
    [InlineData(4, 1, 4, 1)]
    public void WarpLayoutCoversTheTile(int t, int halves, int bk, int warpRowsLimit)
    {
        int threads = t * t;
        int lr = t >= 16 ? 4 : 2;
        int lc = t >= 16 ? 8 : 2;
        int lanes = lr * lc;
        int warpsDown = Math.Min(t / lr, warpRowsLimit);
        int warpsAcross = threads / lanes / warpsDown;
        int tileRows = warpsDown * 4 * lr * halves;
        int tileCols = warpsAcross * 8 * lc;
        int ldB = tileCols + 4;
        if (warpRowsLimit == 1)
        {
            Assert.Equal(GemmFastKernels.FlatTile(t), (tileRows, tileCols));
        }
        else
        {
            Assert.Equal((4 * t * halves, 8 * t), (tileRows, tileCols));
        }

        var owner = new int[tileRows * tileCols];
        for (int tid = 0; tid < threads; tid++)
        {
            int lane = tid % lanes, warp = tid / lanes;
            int tr = (warp / warpsAcross) * 4 * lr * halves + 4 * (lane / lc);
            int tc = (warp % warpsAcross) * 8 * lc + 4 * (lane % lc);
            for (int i = 0; i < 4 * halves; i++)
            {
                for (int j = 0; j < 8; j++)
                {
                    int r = tr + (i >= 4 ? 4 * lr : 0) + i % 4;
                    int col = tc + (j >= 4 ? 4 * lc : 0) + j % 4;
                    owner[r * tileCols + col]++;
                }
            }
        }

        Assert.All(owner, count => Assert.Equal(1, count));

        int kVecs = bk / 4;
        int aVecs = tileRows * kVecs, bVecs = tileCols * kVecs;
        Assert.InRange(aVecs, 1, 2 * threads);
        Assert.InRange(bVecs, 1, 4 * threads);
        var aSeen = new int[tileRows * bk];
        for (int e = 0; e < aVecs; e++)
        {
            for (int j = 0; j < 4; j++)
            {
                aSeen[(e / kVecs) * bk + 4 * (e % kVecs) + j]++;
            }
        }

        Assert.All(aSeen, count => Assert.Equal(1, count));
        foreach (bool rowMajor in new[] { true, false })
        {
            var bSeen = new int[bk * tileCols];
            for (int e = 0; e < bVecs; e++)
            {
                int kB = rowMajor ? e / (tileCols / 4) : 4 * (e % kVecs);
                int nB = rowMajor ? 4 * (e % (tileCols / 4)) : e / kVecs;
                for (int j = 0; j < 4; j++)
                {
                    bSeen[rowMajor ? kB * tileCols + nB + j : (kB + j) * tileCols + nB]++;
                }
            }

            Assert.All(bSeen, count => Assert.Equal(1, count));
        }

        Assert.True(tileRows <= GemmFastKernels.Ld, "A's shared rows hold the tile's rows");
        Assert.True(2 * bk * GemmFastKernels.Ld + 2 * bk * ldB <= GemmFastKernels.WarpShared, "both double buffers fit the allocation");
    }

    [Theory]
    [InlineData(null, "Sgemm")]
    [InlineData(" GEMV ", "Gemv")]
    [InlineData("sgemm", "Sgemm")]
    public void SmallRowsSettingParses(string? setting, string expected) => Assert.Equal(expected, SmallRowsChoice.Parse(setting).ToString());

    [Theory]
    [InlineData(null, "AsyncPipe8x16")]
    [InlineData("", "AsyncPipe8x16")]
    [InlineData("warp8", "WarpBk8")]
    [InlineData(" Warp16 ", "AsyncPipe8x16")]
    [InlineData("legacy", "Legacy")]
    [InlineData(" WIDE", "AsyncPipe8x16")]
    [InlineData("wide16", "Wide8x16Bk16")]
    [InlineData(" Async16", "Async8x16")]
    [InlineData("pipe16", "AsyncPipe8x16")]
    [InlineData("PIPE16LATE", "AsyncPipe8x16")]
    public void VariantSettingParses(string? setting, string expected) => Assert.Equal(expected, SgemmKernelChoice.Parse(setting).ToString());

    [Theory]
    [InlineData(null, "AsyncPipeBk16Runs")]
    [InlineData("", "AsyncPipeBk16Runs")]
    [InlineData("wide", "Wide")]
    [InlineData(" WIDE ", "Wide")]
    [InlineData(" ASYNC ", "Async")]
    [InlineData("async16", "AsyncPipeBk16Runs")]
    [InlineData("Pipe", "AsyncPipe")]
    [InlineData("pipe16k", "AsyncPipeBk16")]
    [InlineData(" PIPE16K ", "AsyncPipeBk16")]
    [InlineData("pipe16kruns", "AsyncPipeBk16Runs")]
    [InlineData(" PIPE16KRuns ", "AsyncPipeBk16Runs")]
    [InlineData("pipe16kspread", "AsyncPipeBk16Spread")]
    public void ShortTileSettingParses(string? setting, string expected) => Assert.Equal(expected, SgemmShortChoice.Parse(setting).ToString());
}
