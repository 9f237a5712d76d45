using System;
using System.Linq;
using GemsInjector.Kernels.Ilgpu;
using ILGPU;
using ILGPU.Runtime;
using Xunit;

namespace GemsInjector.Kernels.Ilgpu.Tests;

/// <summary>
/// The register-tiled prefill (<see cref="AttentionTiledKernels"/>: float32 and 16-bit) on a simulator of 32-lane warps
/// with the facade's launch shape: every output element (poisoned with NaN) against the float64 reference with FlagGems'
/// tolerance of the format; causal tiles on and off the diagonal, keys ending inside a tile, grouped-query ratios, each
/// mask layout with hidden keys and a fully hidden row, calls split into key ranges and merged by the decode combine,
/// and NaN reaching its own row only.
/// </summary>
[Collection(SimulatorCollection.Name)]
public sealed class AttentionTiledTests : Half16TestBase, IClassFixture<Warp32SimulatorFixture>
{
    private readonly Warp32SimulatorFixture warp32;

    public AttentionTiledTests(SimulatorFixture fixture, Warp32SimulatorFixture warp32)
        : base(fixture) => this.warp32 = warp32;

    /// <summary>Mask layouts: none, [lq, lk], [batch, lq, lk], [batch, heads, lq, lk].</summary>
    public enum MaskLayout
    {
        None,
        Shared,
        PerBatch,
        PerHead,
    }

    [Theory]
    [InlineData(1, 2, 1, 100, 100, 128, true, MaskLayout.None)]
    [InlineData(1, 2, 2, 64, 64, 64, true, MaskLayout.None)]
    [InlineData(2, 4, 2, 70, 33, 64, true, MaskLayout.None)]
    [InlineData(1, 2, 1, 33, 130, 128, false, MaskLayout.None)]
    [InlineData(1, 1, 1, 5, 3, 64, true, MaskLayout.None)]
    [InlineData(1, 2, 1, 40, 50, 64, false, MaskLayout.PerHead)]
    [InlineData(2, 2, 2, 65, 65, 128, true, MaskLayout.Shared)]
    [InlineData(2, 2, 1, 20, 37, 64, false, MaskLayout.PerBatch)]
    public void MatchesFloat64Reference(int batch, int heads, int kvHeads, int lq, int lk, int d, bool causal, MaskLayout layout)
    {
        int seed = 41000 + (lq * 100) + lk + d + (causal ? 7 : 0) + ((int)layout * 3);
        var q = Random(seed, batch * heads * lq * d, -1f, 1f);
        var k = Random(seed + 1, batch * kvHeads * lk * d, -1f, 1f);
        var v = Random(seed + 2, batch * kvHeads * lk * d);
        var (mask, maskBatch, maskHead) = Mask(seed + 3, layout, batch, heads, lq, lk);
        var shape = Shape(heads, kvHeads, lq, lk, d, causal, layout != MaskLayout.None, maskBatch, maskHead);

        var got = Run(q, k, v, mask, batch, shape);

        var expected = AttentionTests.Reference(q, k, v, batch, heads, kvHeads, lq, lk, d, causal,
            (b, h, i, j) => mask.Length == 0 ? 0 : mask[(b * maskBatch) + (h * maskHead) + ((long)i * lk) + j], shape.Scale);
        AssertClose(got, expected, RtolF32, Atol, $"tiled attention {batch}x{heads}/{kvHeads} lq={lq} lk={lk} d={d} causal={causal} mask={layout}", seed);
        if (layout == MaskLayout.PerHead)
        {
            Assert.All(got.Skip(FullyHiddenRow * d).Take(d), x => Assert.Equal(0f, x));
        }
    }

    /// <summary>
    /// A call whose query blocks leave the GPU idle, split into key ranges (a short last one) as the facade splits it on
    /// 132 SMs: the partials of every range, merged by the decode combine over the query rows as heads, meet the same
    /// tolerance on every element.
    /// </summary>
    [Theory]
    [InlineData(1, 2, 1, 70, 700, 64)]
    [InlineData(2, 2, 2, 3, 300, 128)]
    [InlineData(1, 2, 1, 40, 600, 128)]
    public void SplitMatchesFloat64Reference(int batch, int heads, int kvHeads, int lq, int lk, int d)
    {
        int seed = 43000 + (lq * 100) + lk + d;
        var q = Random(seed, batch * heads * lq * d, -1f, 1f);
        var k = Random(seed + 1, batch * kvHeads * lk * d, -1f, 1f);
        var v = Random(seed + 2, batch * kvHeads * lk * d);
        var shape = Shape(heads, kvHeads, lq, lk, d, causal: false, masked: false, 0, 0);
        var split = IlgpuKernels.TiledPrefillRanges(batch, shape, 132);
        Assert.True(split.Count > 1, $"{split.Count} ranges");
        Assert.True(split.Keys % AttentionTiledKernels.BlockK == 0 && (split.Count - 1) * split.Keys < lk && split.Count * split.Keys >= lk);

        var got = Run(q, k, v, [], batch, shape, split);

        var expected = AttentionTests.Reference(q, k, v, batch, heads, kvHeads, lq, lk, d, false, (b, h, i, j) => 0, shape.Scale);
        AssertClose(got, expected, RtolF32, Atol, $"split tiled attention {batch}x{heads}/{kvHeads} lq={lq} lk={lk} d={d}, {split.Count} ranges of {split.Keys}", seed);
    }

    /// <summary>Which calls split and how: only unmasked, non-causal calls whose blocks fill at most half the groups, ranges of whole tiles, at least four.</summary>
    [Theory]
    [InlineData(1, 32, 64, 4096, false, false, 12, 352)]
    [InlineData(1, 8, 100, 1000, false, false, 7, 160)]
    [InlineData(1, 32, 64, 4096, true, false, 1, 4096)]
    [InlineData(1, 32, 64, 4096, false, true, 1, 4096)]
    [InlineData(1, 32, 4096, 4096, false, false, 1, 4096)]
    [InlineData(4, 32, 200, 4096, false, false, 1, 4096)]
    [InlineData(1, 8, 64, 200, false, false, 1, 200)]
    [InlineData(1, 1, 10, 300, false, false, 2, 160)]
    public void SplitRanges(int batch, int heads, int lq, int lk, bool causal, bool masked, int count, int keys)
    {
        var split = IlgpuKernels.TiledPrefillRanges(batch, Shape(heads, heads, lq, lk, 128, causal, masked, 0, 0), 132);
        Assert.Equal((count, keys), (split.Count, split.Keys));
    }

    /// <summary>
    /// The 16-bit kernel (inputs widened as staged, the output rounded once): whole and split calls, causal and masked,
    /// both formats, against the float64 reference rounded to the format.
    /// </summary>
    [Theory]
    [InlineData(true, 1, 2, 1, 100, 100, 64, true, MaskLayout.None, false)]
    [InlineData(false, 2, 2, 2, 65, 40, 128, false, MaskLayout.PerHead, false)]
    [InlineData(true, 1, 2, 1, 40, 600, 64, false, MaskLayout.None, true)]
    [InlineData(false, 1, 2, 2, 3, 300, 128, false, MaskLayout.None, true)]
    public void Tiled16MatchesFloat64Reference(bool bf16, int batch, int heads, int kvHeads, int lq, int lk, int d, bool causal, MaskLayout layout, bool split)
    {
        int seed = 44000 + (lq * 100) + lk + d + (causal ? 7 : 0) + (bf16 ? 11 : 0);
        var (q, qv) = Random16(seed, batch * heads * lq * d, bf16, -1f, 1f);
        var (k, kv) = Random16(seed + 1, batch * kvHeads * lk * d, bf16, -1f, 1f);
        var (v, vv) = Random16(seed + 2, batch * kvHeads * lk * d, bf16);
        var (mask, maskBatch, maskHead) = Mask(seed + 3, layout, batch, heads, lq, lk);
        var shape = Shape(heads, kvHeads, lq, lk, d, causal, layout != MaskLayout.None, maskBatch, maskHead);
        var ranges = split ? IlgpuKernels.TiledPrefillRanges(batch, shape, 132) : TiledSplit.Whole(lk);
        Assert.Equal(split, ranges.Count > 1);

        var got = ToFloat(Run16(q, k, v, mask, batch, shape, ranges, bf16), bf16);

        var expected = AttentionTests.Reference(qv, kv, vv, batch, heads, kvHeads, lq, lk, d, causal,
            (b, h, i, j) => mask.Length == 0 ? 0 : mask[(b * maskBatch) + (h * maskHead) + ((long)i * lk) + j], shape.Scale);
        var rounded = ToFloat(To16(expected.Select(e => (float)e).ToArray(), bf16), bf16);
        AssertClose(got, rounded.Select(e => (double)e).ToArray(), Rtol(bf16), Atol,
            $"tiled 16-bit attention {batch}x{heads}/{kvHeads} lq={lq} lk={lk} d={d} causal={causal} mask={layout} ranges={ranges.Count} ({F(bf16)})", seed);
    }

    [Fact]
    public void NaNReachesItsOwnRowOnly()
    {
        const int D = 64;
        const int L = 70;
        var q = Random(42001, L * D, -1f, 1f);
        var k = Random(42002, L * D, -1f, 1f);
        var v = Random(42003, L * D);
        q[(66 * D) + 3] = float.NaN;

        var got = Run(q, k, v, [], 1, Shape(1, 1, L, L, D, causal: true, masked: false, 0, 0));

        for (int row = 0; row < L; row++)
        {
            for (int c = 0; c < D; c++)
            {
                Assert.True(float.IsNaN(got[(row * D) + c]) == (row == 66), $"row {row} column {c}: {got[(row * D) + c]}");
            }
        }
    }

    /// <summary>
    /// Its PTX: no local memory (every sum its own register), 16-byte shared loads, the opt-in mark for the loader (67 KB
    /// at D = 128), and the 24 butterfly shuffles of the row maxima and sums (4 rows, 3 steps each).
    /// </summary>
    [Theory]
    [InlineData(typeof(Const2), null)]
    [InlineData(typeof(Const4), null)]
    [InlineData(typeof(Const2), typeof(Float16Storage))]
    [InlineData(typeof(Const4), typeof(BFloat16Storage))]
    public void PtxKeepsEverythingInRegisters(Type quads, Type? format)
    {
        var method = format is null
            ? typeof(AttentionTiledKernels).GetMethod(nameof(AttentionTiledKernels.AttentionTiledF32))!.MakeGenericMethod(quads)
            : typeof(AttentionTiledKernels).GetMethod(nameof(AttentionTiledKernels.AttentionTiled16))!.MakeGenericMethod(quads, format);
        string ptx = AttentionDecodeTests.Ptx(method);
        PtxLocalSlots.AssertNone(ptx, $"{method.Name} {quads.Name} {format?.Name}");
        Assert.Contains(Sm90aPtx.OptInSharedMarker, ptx, StringComparison.Ordinal);
        Assert.Equal(24, System.Text.RegularExpressions.Regex.Matches(ptx, @"shfl\.sync\.bfly").Count);
        Assert.Contains("ld.shared.v4.f32", ptx, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(64, 2, 35840)]
    [InlineData(128, 4, 67072)]
    public void SharedMemoryFitsThreeGroupsPerSm(int headDim, int quads, int bytes)
    {
        Assert.True(AttentionTiledKernels.HasHeadSize(headDim));
        Assert.Equal(bytes, AttentionTiledKernels.SharedBytes(quads));
        Assert.True(AttentionTiledKernels.GroupsPerSm * (bytes + 1024) <= 228 * 1024);
        Assert.False(AttentionTiledKernels.HasHeadSize(headDim + 32));
    }

    /// <summary>The query row of <see cref="MaskLayout.PerHead"/> cases (batch 0, head 0) whose every key is hidden.</summary>
    private const int FullyHiddenRow = 7;

    private static (float[] Mask, long Batch, long Head) Mask(int seed, MaskLayout layout, int batch, int heads, int lq, int lk)
    {
        int planes = layout switch { MaskLayout.Shared => 1, MaskLayout.PerBatch => batch, MaskLayout.PerHead => batch * heads, _ => 0 };
        var mask = Random(seed, planes * lq * lk, -2f, 1f);
        for (int row = 0; row < planes * lq; row++)
        {
            mask[(row * lk) + (row % lk)] = float.NegativeInfinity;
        }

        if (layout == MaskLayout.PerHead)
        {
            Array.Fill(mask, float.NegativeInfinity, FullyHiddenRow * lk, lk);
        }

        long plane = (long)lq * lk;
        return layout switch
        {
            MaskLayout.PerBatch => (mask, plane, 0),
            MaskLayout.PerHead => (mask, heads * plane, plane),
            _ => (mask, 0, 0),
        };
    }

    private static AttentionShape Shape(int heads, int kvHeads, int lq, int lk, int d, bool causal, bool masked, long maskBatch, long maskHead) => new()
    {
        Heads = heads,
        KvHeads = kvHeads,
        Lq = lq,
        Lk = lk,
        D = d,
        Scale = 1f / MathF.Sqrt(d),
        Causal = causal ? 1 : 0,
        HasMask = masked ? 1 : 0,
        MaskBatch = maskBatch,
        MaskHead = maskHead,
        MaskRow = lk,
    };

    private ushort[] Run16(ushort[] q, ushort[] k, ushort[] v, float[] mask, int batch, AttentionShape shape, TiledSplit ranges, bool bf16)
    {
        var acc = warp32.Accelerator;
        using var qb = acc.Allocate1D(q);
        using var kb = acc.Allocate1D(k);
        using var vb = acc.Allocate1D(v);
        using var mb = acc.Allocate1D(mask.Length == 0 ? [0f] : mask);
        using var ob = acc.Allocate1D(Enumerable.Repeat(NaN16(bf16), q.Length).ToArray());
        Action<ArrayView<Half8>, ArrayView<Half8>, ArrayView<Half8>, ArrayView<float>, ArrayView<uint>, ArrayView<Float4>, ArrayView<float>, AttentionShape, TiledSplit> body = (shape.D, bf16) switch
        {
            (128, true) => AttentionTiledKernels.AttentionTiled16<Const4, BFloat16Storage>,
            (128, false) => AttentionTiledKernels.AttentionTiled16<Const4, Float16Storage>,
            (_, true) => AttentionTiledKernels.AttentionTiled16<Const2, BFloat16Storage>,
            _ => AttentionTiledKernels.AttentionTiled16<Const2, Float16Storage>,
        };
        long parts = (long)batch * shape.Heads * shape.Lq * ranges.Count;
        using var partO = acc.Allocate1D(Enumerable.Repeat(float.NaN, (int)(parts * shape.D)).ToArray());
        using var partML = acc.Allocate1D(Enumerable.Repeat(float.NaN, (int)(2 * parts)).ToArray());
        acc.LoadStreamKernel(body)(IlgpuKernels.TiledAttentionConfig(batch, shape.Heads, shape.Lq, shape.D, ranges.Count),
            qb.View.BaseView.Cast<Half8>(), kb.View.BaseView.Cast<Half8>(), vb.View.BaseView.Cast<Half8>(), mb.View.BaseView, ob.View.BaseView.Cast<uint>(),
            partO.View.BaseView.Cast<Float4>(), partML.View.BaseView, shape, ranges);
        if (ranges.Count > 1)
        {
            acc.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<ushort>, AttentionShape, int, int>(AttentionDecodeKernels.DecodeCombine16)(
                CombineConfig(batch, shape), partO.View.BaseView, partML.View.BaseView, ob.View.BaseView, IlgpuKernels.QueryRowsAsHeads(shape), ranges.Count, bf16 ? 1 : 0);
        }

        acc.Synchronize();
        return ob.GetAsArray1D();
    }

    /// <summary>The facade's combine of a split call: the query rows as heads, one thread per dim.</summary>
    private static KernelConfig CombineConfig(int batch, AttentionShape shape) => new(new Index3D(shape.Heads * shape.Lq, batch, 1), new Index3D(shape.D, 1, 1));

    private float[] Run(float[] q, float[] k, float[] v, float[] mask, int batch, AttentionShape shape, TiledSplit? split = null)
    {
        var acc = warp32.Accelerator;
        using var qb = acc.Allocate1D(q);
        using var kb = acc.Allocate1D(k);
        using var vb = acc.Allocate1D(v);
        using var mb = acc.Allocate1D(mask.Length == 0 ? [0f] : mask);
        using var ob = acc.Allocate1D(Enumerable.Repeat(float.NaN, q.Length).ToArray());
        Action<ArrayView<Float4>, ArrayView<Float4>, ArrayView<Float4>, ArrayView<float>, ArrayView<Float4>, ArrayView<Float4>, ArrayView<float>, AttentionShape, TiledSplit> body =
            shape.D == 128 ? AttentionTiledKernels.AttentionTiledF32<Const4> : AttentionTiledKernels.AttentionTiledF32<Const2>;
        var ranges = split ?? TiledSplit.Whole(shape.Lk);
        long parts = (long)batch * shape.Heads * shape.Lq * ranges.Count;
        using var partO = acc.Allocate1D(Enumerable.Repeat(float.NaN, (int)(parts * shape.D)).ToArray());
        using var partML = acc.Allocate1D(Enumerable.Repeat(float.NaN, (int)(2 * parts)).ToArray());
        acc.LoadStreamKernel(body)(IlgpuKernels.TiledAttentionConfig(batch, shape.Heads, shape.Lq, shape.D, ranges.Count),
            qb.View.BaseView.Cast<Float4>(), kb.View.BaseView.Cast<Float4>(), vb.View.BaseView.Cast<Float4>(), mb.View.BaseView, ob.View.BaseView.Cast<Float4>(),
            partO.View.BaseView.Cast<Float4>(), partML.View.BaseView, shape, ranges);
        if (ranges.Count > 1)
        {
            acc.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, AttentionShape, int>(AttentionDecodeKernels.DecodeCombineF32)(
                CombineConfig(batch, shape), partO.View.BaseView, partML.View.BaseView, ob.View.BaseView, IlgpuKernels.QueryRowsAsHeads(shape), ranges.Count);
        }

        acc.Synchronize();
        return ob.GetAsArray1D();
    }
}
