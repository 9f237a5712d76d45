using System;
using System.Linq;
using System.Text.RegularExpressions;
using GemsInjector.Kernels.Ilgpu;
using ILGPU;
using ILGPU.Runtime;
using Xunit;

namespace GemsInjector.Kernels.Ilgpu.Tests;

/// <summary>
/// The register variant of the tensor-core prefill attention (<see cref="AttentionTensorCoreKernels.Attention16TensorCoreRegisters{TDimQuads}"/>)
/// at head sizes 128 and 64: its kernel body with ldmatrix / mma.sync emulated lane by lane on a 32-lane-warp simulator,
/// every output element (poisoned with NaN) against the float64 reference with the GPU harness's tolerance; and its PTX.
/// </summary>
[Collection(SimulatorCollection.Name)]
public sealed class AttentionPrefillTests : Half16TestBase, IClassFixture<Warp32SimulatorFixture>
{
    private readonly Warp32SimulatorFixture warp32;

    public AttentionPrefillTests(SimulatorFixture fixture, Warp32SimulatorFixture warp32)
        : base(fixture) => this.warp32 = warp32;

    public static TheoryData<int, bool, int, int, int, int, int, bool, bool> Cases
    {
        get
        {
            var cases = new TheoryData<int, bool, int, int, int, int, int, bool, bool>();
            foreach (var c in BaseCases)
            {
                cases.Add(AttentionTensorCoreKernels.D, c.Bf16, c.Batch, c.Heads, c.KvHeads, c.Lq, c.Lk, c.Causal, c.Normal);
            }

            foreach (var c in HeadSize64Cases)
            {
                cases.Add(64, c.Bf16, c.Batch, c.Heads, c.KvHeads, c.Lq, c.Lk, c.Causal, c.Normal);
            }

            return cases;
        }
    }

    private static (bool Bf16, int Batch, int Heads, int KvHeads, int Lq, int Lk, bool Causal, bool Normal)[] BaseCases =>
    [
        // bf16, batch, heads, kvHeads, lq, lk, causal, normal (N(0, 1) inputs and scale 1/√128 as the harness; else uniform, scale 0.125)
        (true, 1, 2, 1, 512, 512, true, true),
        (false, 1, 2, 1, 512, 512, true, true),
        (true, 1, 4, 1, 129, 129, true, true),
        (false, 1, 4, 1, 129, 129, true, true),
        (true, 2, 2, 2, 37, 37, true, true),
        (false, 2, 2, 2, 37, 37, false, true),
        (true, 1, 4, 2, 67, 2, false, true),
        (false, 1, 4, 2, 67, 2, false, true),
        (true, 1, 2, 1, 33, 700, false, true),
        (false, 1, 2, 1, 33, 700, false, true),
        (true, 2, 4, 1, 70, 33, true, false),
        (false, 2, 4, 4, 65, 65, true, false),
        (true, 1, 1, 1, 1, 1, true, false),
        (false, 1, 2, 1, 3, 127, false, false),
        (true, 1, 1, 1, 100, 40, true, false),
    ];

    // Head size 64 shares the body; these cover its own tile strides, fragment counts and stores.
    private static (bool Bf16, int Batch, int Heads, int KvHeads, int Lq, int Lk, bool Causal, bool Normal)[] HeadSize64Cases =>
    [
        (true, 1, 2, 1, 300, 300, true, true),
        (false, 1, 2, 1, 300, 300, true, true),
        (true, 1, 4, 2, 67, 2, false, true),
        (false, 1, 2, 1, 33, 700, false, true),
        (true, 2, 4, 1, 70, 33, true, false),
        (false, 2, 2, 2, 37, 37, false, false),
        (true, 1, 1, 1, 1, 1, true, false),
    ];

    /// <summary>
    /// The emulated register variant meets the harness rule (|out − ref| ≤ 1e-4 + rtol·|ref|, ref rounded to the dtype)
    /// on every element: causal and not, grouped-query ratios 1, 2 and 4, odd and short lengths, lk below and above lq
    /// (causal rows past lk see every key), few-key rows where one 16-bit rounding of the weights would already fail.
    /// </summary>
    [Theory]
    [MemberData(nameof(Cases))]
    public void RegisterVariantMeetsHarnessTolerance(int d, bool bf16, int batch, int heads, int kvHeads, int lq, int lk, bool causal, bool normal)
    {
        int seed = 21000 + (heads * 1000) + (lq * 10) + lk + (causal ? 3 : 0) + (bf16 ? 7 : 0) + (normal ? 11 : 0) + d;
        var acc = warp32.Accelerator;
        var (q, qv) = normal ? Normal16(seed, batch * heads * lq * d, bf16) : Random16(seed, batch * heads * lq * d, bf16, -1f, 1f);
        var (k, kv) = normal ? Normal16(seed + 1, batch * kvHeads * lk * d, bf16) : Random16(seed + 1, batch * kvHeads * lk * d, bf16, -1f, 1f);
        var (v, vv) = normal ? Normal16(seed + 2, batch * kvHeads * lk * d, bf16) : Random16(seed + 2, batch * kvHeads * lk * d, bf16);
        double scale = normal ? 1 / Math.Sqrt(d) : 0.125;
        var shape = new AttentionShape
        {
            Heads = heads,
            KvHeads = kvHeads,
            Lq = lq,
            Lk = lk,
            D = d,
            Scale = (float)scale,
            Causal = causal ? 1 : 0,
        };
        var config = IlgpuKernels.TensorCoreAttentionConfig(batch, heads, lq, AttentionTensorCoreKernels.RegisterSharedBytes(d));
        using var qb = acc.Allocate1D(q);
        using var kb = acc.Allocate1D(k);
        using var vb = acc.Allocate1D(v);
        using var ob = acc.Allocate1D(Enumerable.Repeat(NaN16(bf16), q.Length).ToArray());
        using var scratch = acc.Allocate1D<float>(AttentionTensorCoreKernels.EmulationScratch((long)config.GridDim.Size));
        Emulated(d)(config, qb.View.BaseView.Cast<Half8>(), kb.View.BaseView.Cast<Half8>(), vb.View.BaseView.Cast<Half8>(), ob.View, scratch.View, shape, bf16 ? 1 : 0);
        acc.Synchronize();
        var got = ToFloat(ob.GetAsArray1D(), bf16);
        var expected = AttentionTests.Reference(qv, kv, vv, batch, heads, kvHeads, lq, lk, d, causal, (b, h, i, j) => 0, scale);
        var rounded = ToFloat(To16(expected.Select(e => (float)e).ToArray(), bf16), bf16);
        AssertClose(got, rounded.Select(e => (double)e).ToArray(), Rtol(bf16), Atol,
            $"register-variant attention d={d} {batch}x{heads}/{kvHeads} lq={lq} lk={lk} causal={causal} normal={normal} ({F(bf16)})", seed);
    }

    /// <summary>
    /// The split register variant (each group one range of keys, a partial per query row, then the decode combine) meets
    /// the same rule on every element at both head sizes: whole-tile ranges with a short last one (an Lk edge inside a
    /// tile), a last range of a single key, grouped-query heads, batches, Lq edges inside a warp, several query blocks.
    /// </summary>
    [Theory]
    [InlineData(64, true, 1, 4, 1, 16, 600, 256, true)]
    [InlineData(64, false, 2, 2, 2, 3, 257, 128, false)]
    [InlineData(64, true, 1, 2, 1, 130, 200, 64, true)]
    [InlineData(128, false, 1, 4, 1, 16, 600, 256, true)]
    [InlineData(128, true, 1, 2, 1, 70, 161, 32, false)]
    public void SplitRegisterVariantMeetsHarnessTolerance(int d, bool bf16, int batch, int heads, int kvHeads, int lq, int lk, int rangeKeys, bool normal)
    {
        int seed = 36000 + (heads * 1000) + (lq * 10) + lk + rangeKeys + (bf16 ? 7 : 0) + d;
        var (q, qv) = normal ? Normal16(seed, batch * heads * lq * d, bf16) : Random16(seed, batch * heads * lq * d, bf16, -1f, 1f);
        var (k, kv) = normal ? Normal16(seed + 1, batch * kvHeads * lk * d, bf16) : Random16(seed + 1, batch * kvHeads * lk * d, bf16, -1f, 1f);
        var (v, vv) = normal ? Normal16(seed + 2, batch * kvHeads * lk * d, bf16) : Random16(seed + 2, batch * kvHeads * lk * d, bf16);
        double scale = 1 / Math.Sqrt(d);
        var shape = new AttentionShape { Heads = heads, KvHeads = kvHeads, Lq = lq, Lk = lk, D = d, Scale = (float)scale };
        var got = ToFloat(RunSplit(q, k, v, batch, shape, rangeKeys, bf16), bf16);
        var expected = AttentionTests.Reference(qv, kv, vv, batch, heads, kvHeads, lq, lk, d, false, (b, h, i, j) => 0, scale);
        var rounded = ToFloat(To16(expected.Select(e => (float)e).ToArray(), bf16), bf16);
        AssertClose(got, rounded.Select(e => (double)e).ToArray(), Rtol(bf16), Atol,
            $"split register-variant attention d={d} {batch}x{heads}/{kvHeads} lq={lq} lk={lk} range={rangeKeys} ({F(bf16)})", seed);
    }

    /// <summary>
    /// Which register-variant calls split: those whose query blocks fill at most half of the SMs' group slots (four per SM
    /// at head size 64, three at 128), never causal or masked ones, in ranges of whole 32-key tiles, at least four each.
    /// </summary>
    [Theory]
    [InlineData(64, 1, 32, 256, 4096, 0, 132, 4, 1024)] // the bench's 256-query chunk: 128 blocks of 528 slots
    [InlineData(128, 1, 32, 256, 4096, 0, 132, 3, 1376)] // the same at head size 128: 396 slots
    [InlineData(64, 1, 32, 600, 4096, 0, 132, 1, 4096)] // 320 blocks: more than half of 528
    [InlineData(64, 1, 32, 256, 4096, 1, 132, 1, 4096)] // causal
    [InlineData(64, 1, 8, 100, 200, 0, 132, 1, 200)] // fewer keys than two ranges of four tiles
    public void RegisterPrefillRangesFollowTheGroupSlots(int d, int batch, int heads, int lq, int lk, int causal, int multiprocessors, int ranges, int keys)
    {
        var shape = new AttentionShape { Heads = heads, KvHeads = 1, Lq = lq, Lk = lk, D = d, Causal = causal };
        Assert.Equal((ranges, keys), IlgpuKernels.RegisterPrefillRanges(batch, shape, multiprocessors));
    }

    /// <summary>A NaN in q reaches exactly its own output row (max.NaN, a NaN rescale factor still rescales); other rows stay finite.</summary>
    [Theory]
    [InlineData(128)]
    [InlineData(64)]
    public void RegisterVariantPropagatesNaNToItsRowOnly(int d)
    {
        const int Lq = 40;
        var acc = warp32.Accelerator;
        var (q, _) = Random16(23001, Lq * d, true, -1f, 1f);
        var (k, _) = Random16(23002, Lq * d, true, -1f, 1f);
        var (v, _) = Random16(23003, Lq * d, true);
        q[(20 * d) + 5] = NaN16(true);
        var shape = new AttentionShape { Heads = 1, KvHeads = 1, Lq = Lq, Lk = Lq, D = d, Scale = 0.125f, Causal = 1 };
        var config = IlgpuKernels.TensorCoreAttentionConfig(1, 1, Lq, AttentionTensorCoreKernels.RegisterSharedBytes(d));
        using var qb = acc.Allocate1D(q);
        using var kb = acc.Allocate1D(k);
        using var vb = acc.Allocate1D(v);
        using var ob = acc.Allocate1D(new ushort[q.Length]);
        using var scratch = acc.Allocate1D<float>(AttentionTensorCoreKernels.EmulationScratch((long)config.GridDim.Size));
        Emulated(d)(config, qb.View.BaseView.Cast<Half8>(), kb.View.BaseView.Cast<Half8>(), vb.View.BaseView.Cast<Half8>(), ob.View, scratch.View, shape, 1);
        acc.Synchronize();
        var got = ToFloat(ob.GetAsArray1D(), true);
        for (int row = 0; row < Lq; row++)
        {
            for (int c = 0; c < d; c++)
            {
                Assert.True(float.IsNaN(got[(row * d) + c]) == (row == 20), $"row {row} column {c}: {got[(row * d) + c]}");
            }
        }
    }

    [Theory]
    [InlineData(null, nameof(PrefillVariant.Wgmma))]
    [InlineData("", nameof(PrefillVariant.Wgmma))]
    [InlineData(" Shared ", nameof(PrefillVariant.Shared))]
    [InlineData("REGISTERS", nameof(PrefillVariant.Registers))]
    [InlineData("wide", nameof(PrefillVariant.Wgmma))]
    public void PrefillVariantParsesItsSetting(string? setting, string expected) => Assert.Equal(expected, PrefillVariants.Parse(setting).ToString());

    [Theory]
    [InlineData(128)]
    [InlineData(64)]
    public void RegisterVariantPtxKeepsScoresAndWeightsOutOfMemory(int d)
    {
        var kernel = typeof(AttentionTensorCoreKernels).GetMethod(nameof(AttentionTensorCoreKernels.Attention16TensorCoreRegisters))!
            .MakeGenericMethod(d == 64 ? typeof(Const2) : typeof(Const4));
        string ptx = Ptx(kernel);
        int Count(string what) => Regex.Matches(ptx, Regex.Escape(what)).Count;

        // Per format two tile steps (all keys visible; masked), each d / 4 mma for S (4 key blocks × d / 16 k steps) and
        // 2 × d / 4 for P·V (high and low weight parts); ldmatrix: d / 16 for Q once, d / 8 (K) plain and d / 8 (V)
        // .trans per step. Only this head size's strings: its accumulators alone are declared.
        Assert.Equal(2 * 3 * d / 4, Count("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32"));
        Assert.Equal(2 * 3 * d / 4, Count("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32"));
        Assert.Equal((d / 16) + (4 * d / 8), Count("ldmatrix.sync.aligned.m8n8.x4.shared.b16"));
        Assert.Equal(4 * d / 8, Count("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16"));
        Assert.Equal(1, Count(".reg .f32 atmax<2>;"));
        Assert.Equal(1, Count(".reg .f32 atsum<2>;"));
        Assert.Equal(1, Count(".reg .f32 ato<"));
        Assert.Contains($"+{32 * AttentionTensorCoreKernels.Ld(d)}]", ptx, StringComparison.Ordinal); // the second 16 keys of K, 16 rows of this head size's stride on

        // Softmax per step: 16 weights + 2 rescale factors through ex2; 8 high + 8 low weight pairs per step and d / 4
        // output pairs per format rounded; the mask only in the masked steps (16 selects each).
        Assert.Equal(4 * 18, Count("ex2.approx.ftz.f32"));
        Assert.Equal((2 * 16) + (d / 4), Count("cvt.rn.bf16x2.f32"));
        Assert.Equal((2 * 16) + (d / 4), Count("cvt.rn.f16x2.f32"));
        Assert.Equal(2 * 16, Count("selp.f32 ats"));
        Assert.Equal(4, Count("bra.uni ATSKIPRESCALE;"));

        // No shared stores and no shared loads besides ldmatrix and the copies: S and P never leave registers.
        Assert.DoesNotMatch(@"\bst\.shared\.", ptx);
        Assert.DoesNotMatch(@"\bld\.shared\.", ptx);
        Assert.DoesNotContain("bar.warp.sync", ptx, StringComparison.Ordinal);
        Assert.DoesNotContain(".func", ptx, StringComparison.Ordinal);
        int first = ptx.IndexOf("ldmatrix", StringComparison.Ordinal);
        int last = ptx.LastIndexOf("mma.sync", StringComparison.Ordinal);
        Assert.True(ptx.IndexOf($".reg .f32 ato<{d / 2}>;", StringComparison.Ordinal) < first);
        Assert.DoesNotMatch(@"(ld|st)\.local", ptx[first..last]);
        Assert.DoesNotMatch(@"\[%\d|\{%\d|, %\d+[,;]", ptx);
    }

    /// <summary>
    /// The key-tile pipeline of both register kernels: the copy plan issues d / 32 passes of one K and one V chunk per
    /// thread, written out once for tile 0 and once in the loop (plus Q's one loop site); at head size 64 three stages
    /// leave one group barrier per tile (two at 128), and head size 128 keeps to the 48 KB a group gets without opting in.
    /// </summary>
    [Theory]
    [InlineData(64, false)]
    [InlineData(64, true)]
    [InlineData(128, false)]
    [InlineData(128, true)]
    public void RegisterVariantPtxCopiesByPlanAndSyncsPerStage(int d, bool split)
    {
        string name = split ? nameof(AttentionTensorCoreKernels.Attention16TensorCoreRegistersSplit) : nameof(AttentionTensorCoreKernels.Attention16TensorCoreRegisters);
        var kernel = typeof(AttentionTensorCoreKernels).GetMethod(name)!.MakeGenericMethod(d == 64 ? typeof(Const2) : typeof(Const4));
        string ptx = Ptx(kernel);
        int passes = d / 32;

        Assert.Equal(1 + (2 * 2 * passes), Regex.Matches(ptx, Regex.Escape("cp.async.cg.shared.global")).Count);
        Assert.Equal(d == 64 ? 3 : 2, AttentionTensorCoreKernels.RegisterStages(d));
        Assert.Equal(1 + (AttentionTensorCoreKernels.RegisterStages(d) == 3 ? 1 : 2), Regex.Matches(ptx, @"\bbar\.sync\b").Count);
        Assert.DoesNotContain(Sm90aPtx.OptInSharedMarker, ptx, StringComparison.Ordinal);
        Assert.True(AttentionTensorCoreKernels.RegisterSharedBytes(d) <= 48 * 1024);
        Assert.True(AttentionTensorCoreKernels.RegisterSharedBytes(d) * IlgpuKernels.RegisterGroupsPerSm(d) <= 164 * 1024); // an A100's shared memory per SM
    }

    private ushort[] RunSplit(ushort[] q, ushort[] k, ushort[] v, int batch, AttentionShape shape, int rangeKeys, bool bf16)
    {
        var acc = warp32.Accelerator;
        int d = shape.D;
        int ranges = (shape.Lk + rangeKeys - 1) / rangeKeys;
        long parts = (long)batch * shape.Heads * shape.Lq * ranges;
        var config = AttentionTensorCoreKernels.RegistersSplitConfig(batch, shape.Heads, shape.Lq, ranges, d);
        using var qb = acc.Allocate1D(q);
        using var kb = acc.Allocate1D(k);
        using var vb = acc.Allocate1D(v);
        using var partO = acc.Allocate1D(Enumerable.Repeat(float.NaN, (int)(parts * d)).ToArray());
        using var partML = acc.Allocate1D(Enumerable.Repeat(float.NaN, (int)(parts * 2)).ToArray());
        using var ob = acc.Allocate1D(Enumerable.Repeat(NaN16(bf16), q.Length).ToArray());
        using var scratch = acc.Allocate1D<float>(AttentionTensorCoreKernels.EmulationScratch((long)config.GridDim.Size));
        var split = new PrefillSplit { Keys = rangeKeys, Count = ranges };
        acc.LoadStreamKernel<ArrayView<Half8>, ArrayView<Half8>, ArrayView<Half8>, ArrayView<float>, ArrayView<float>, ArrayView<float>, AttentionShape, PrefillSplit, int>(
            d == 64 ? AttentionTensorCoreKernels.Attention16TensorCoreRegistersSplitEmulated<Const2> : AttentionTensorCoreKernels.Attention16TensorCoreRegistersSplitEmulated<Const4>)(
            config, qb.View.BaseView.Cast<Half8>(), kb.View.BaseView.Cast<Half8>(), vb.View.BaseView.Cast<Half8>(), partO.View, partML.View, scratch.View, shape, split, bf16 ? 1 : 0);
        var rows = IlgpuKernels.QueryRowsAsHeads(shape);
        acc.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<ushort>, AttentionShape, int, int>(AttentionDecodeKernels.DecodeCombine16)(
            new KernelConfig(new Index3D(rows.Heads, batch, 1), new Index3D(d, 1, 1)), partO.View, partML.View, ob.View, rows, ranges, bf16 ? 1 : 0);
        acc.Synchronize();
        return ob.GetAsArray1D();
    }

    /// <summary>The emulated register variant at head size <paramref name="d"/> (64 or 128) on the 32-lane-warp simulator.</summary>
    private Action<KernelConfig, ArrayView<Half8>, ArrayView<Half8>, ArrayView<Half8>, ArrayView<ushort>, ArrayView<float>, AttentionShape, int> Emulated(int d) =>
        warp32.Accelerator.LoadStreamKernel<ArrayView<Half8>, ArrayView<Half8>, ArrayView<Half8>, ArrayView<ushort>, ArrayView<float>, AttentionShape, int>(
            d == 64 ? AttentionTensorCoreKernels.Attention16TensorCoreRegistersEmulated<Const2> : AttentionTensorCoreKernels.Attention16TensorCoreRegistersEmulated<Const4>);

    /// <summary>
    /// The split kernel stores partials, not outputs: per head size d the d / 8 pairs of float32 outputs of each of two rows
    /// and their two (m, l) pairs, m converted to natural-log units; no 16-bit rounding of outputs (only of weights).
    /// </summary>
    [Theory]
    [InlineData(128)]
    [InlineData(64)]
    public void SplitRegisterVariantPtxStoresPartials(int d)
    {
        var kernel = typeof(AttentionTensorCoreKernels).GetMethod(nameof(AttentionTensorCoreKernels.Attention16TensorCoreRegistersSplit))!
            .MakeGenericMethod(d == 64 ? typeof(Const2) : typeof(Const4));
        string ptx = Ptx(kernel);
        int Count(string what) => Regex.Matches(ptx, Regex.Escape(what)).Count;
        Assert.Equal((2 * d / 8) + 2, Count("st.global.v2.f32"));
        Assert.Equal(2, Count("0f3F317218"));
        Assert.Equal(2 * 16, Count("cvt.rn.bf16x2.f32"));
        Assert.Equal(2 * 3 * d / 4, Count("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32"));
        int first = ptx.IndexOf("ldmatrix", StringComparison.Ordinal);
        Assert.DoesNotMatch(@"(ld|st)\.local", ptx[first..]);
    }

    /// <summary>Standard normal values (Box–Muller) rounded to the 16-bit format, as the harness draws q, k and v.</summary>
    private static (ushort[] Bits, float[] Values) Normal16(int seed, int n, bool bf16)
    {
        var rng = new Random(seed);
        var a = new float[n];
        for (int i = 0; i < n; i++)
        {
            double u = 1 - rng.NextDouble();
            a[i] = (float)(Math.Sqrt(-2 * Math.Log(u)) * Math.Cos(2 * Math.PI * rng.NextDouble()));
        }

        var bits = To16(a, bf16);
        return (bits, ToFloat(bits, bf16));
    }

    private static string Ptx(System.Reflection.MethodInfo method)
    {
        string ptx = Sm90Ptx.Of(method);
        System.IO.File.WriteAllText(System.IO.Path.Combine(System.IO.Path.GetTempPath(), method.Name + ".ptx"), ptx);
        return ptx;
    }
}
