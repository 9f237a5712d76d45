using System;
using System.Linq;
using GemsInjector.Kernels.Ilgpu;
using ILGPU;
using ILGPU.Runtime;
using Xunit;

namespace GemsInjector.Kernels.Ilgpu.Tests;

/// <summary>
/// The streaming decode (<see cref="AttentionDecodeWideKernels.DecodeStreamF32"/> / <c>DecodeStream16</c>) against the
/// float64 reference of <see cref="AttentionTests.Reference"/>, every output element, outputs poisoned with NaN: through
/// the facade (default simulator, warps of 4: tiles of 3 keys, chunks of 6) in both merge variants, and launched directly
/// on a 32-lane-warp simulator with the CUDA lane layout and CUDA tile sizes (d = 128: 32 keys per 16-bit tile).
/// </summary>
[Collection(SimulatorCollection.Name)]
public sealed class AttentionDecodeTests : Half16TestBase, IClassFixture<Warp32SimulatorFixture>
{
    private readonly Warp32SimulatorFixture warp32;

    public AttentionDecodeTests(SimulatorFixture fixture, Warp32SimulatorFixture warp32)
        : base(fixture) => this.warp32 = warp32;

    /// <summary>Mask rows of kind 0 (none) or 3 ([b, h, 1, lk]) with key 2 hidden (-∞) in every row.</summary>
    private static float[] HeadMask(int seed, bool masked, int batch, int heads, int lk)
    {
        if (!masked)
        {
            return [];
        }

        var mask = Random(seed, batch * heads * lk, -2f, 1f);
        for (int r = 0; lk > 2 && r < batch * heads; r++)
        {
            mask[(r * lk) + 2] = float.NegativeInfinity;
        }

        return mask;
    }

    private static Func<int, int, int, int, double> Lookup(float[] mask, int heads, int lk) =>
        mask.Length == 0 ? (b, h, i, j) => 0 : (b, h, i, j) => mask[(((b * heads) + h) * lk) + j];

    public static TheoryData<int, int, int, int, int, int, bool, bool> FacadeCases => new()
    {
        // format (0 f16, 1 bf16, 2 f32), batch, heads, kvHeads, lk, d, mask, causal
        { 1, 1, 4, 1, 1, 64, false, false },
        { 0, 3, 8, 2, 37, 64, true, false },
        { 2, 3, 4, 4, 37, 64, true, false },
        { 2, 1, 4, 1, 4099, 16, false, false },
        { 1, 1, 8, 2, 4099, 8, true, false },
        { 0, 16, 4, 1, 37, 8, false, false },
        { 2, 16, 8, 2, 13, 12, true, false },
        { 1, 3, 6, 1, 37, 64, false, true },
        { 2, 1, 2, 2, 700, 8, false, false },
        { 0, 2, 4, 1, 200, 16, true, false },
    };

    /// <summary>
    /// Both merge variants through the facade. lk = 4099 and 700 give more chunks (of 6) than the in-kernel merge holds,
    /// so they also take the combine launch; the rest merge in the kernel (tickets; lk = 200: 34 chunks, three merge steps). Each case runs twice: the second
    /// launch needs the tickets the first one's last groups reset.
    /// </summary>
    [Theory]
    [MemberData(nameof(FacadeCases))]
    public void StreamDecodeThroughFacade(int format, int batch, int heads, int kvHeads, int lk, int d, bool masked, bool causal)
    {
        int seed = 21000 + (format * 1000) + (batch * 100) + heads + lk + d + (masked ? 7 : 0);
        var previous = K.DecodeKernelVariant;
        try
        {
            foreach (var variant in new[] { DecodeVariant.Stream, DecodeVariant.StreamTwoLaunches, DecodeVariant.Stream })
            {
                K.DecodeKernelVariant = variant;
                string what = $"stream decode {variant} format={format} b={batch} {heads}/{kvHeads} lk={lk} d={d} mask={masked} causal={causal}";
                RunFacade(format, batch, heads, kvHeads, lk, d, masked, causal, seed, what);
            }
        }
        finally
        {
            K.DecodeKernelVariant = previous;
        }

        Assert.True(Device.HasCompiled(format == 2 ? nameof(AttentionDecodeWideKernels.DecodeStreamF32) : nameof(AttentionDecodeWideKernels.DecodeStream16)));
    }

    private void RunFacade(int format, int batch, int heads, int kvHeads, int lk, int d, bool masked, bool causal, int seed, string what)
    {
        var mask = HeadMask(seed + 3, masked, batch, heads, lk);
        var maskView = mask.Length == 0 ? default : Upload(mask);
        if (format == 2)
        {
            var q = Random(seed, batch * heads * d, -1.5f, 1.5f);
            var k = Random(seed + 1, batch * kvHeads * lk * d, -1.5f, 1.5f);
            var v = Random(seed + 2, batch * kvHeads * lk * d);
            var o = Poisoned(q.Length);
            K.ScaledDotProductAttention(Upload(q), Upload(k), Upload(v), o, batch, heads, kvHeads, 1, lk, d, causal, maskView, scale: 0.3f);
            var expected = AttentionTests.Reference(q, k, v, batch, heads, kvHeads, 1, lk, d, causal, Lookup(mask, heads, lk), 0.3);
            AssertClose(Download(o), expected, RtolF32, Atol, what, seed);
        }
        else
        {
            bool bf16 = format == 1;
            var (q, qv) = Random16(seed, batch * heads * d, bf16, -1.5f, 1.5f);
            var (k, kv) = Random16(seed + 1, batch * kvHeads * lk * d, bf16, -1.5f, 1.5f);
            var (v, vv) = Random16(seed + 2, batch * kvHeads * lk * d, bf16);
            var o = Poisoned16(q.Length, bf16);
            K.ScaledDotProductAttention(Upload(q), Upload(k), Upload(v), o, batch, heads, kvHeads, 1, lk, d, F(bf16), causal, maskView);
            var expected = AttentionTests.Reference(qv, kv, vv, batch, heads, kvHeads, 1, lk, d, causal, Lookup(mask, heads, lk), 1 / Math.Sqrt(d));
            Check16(o, expected, bf16, what, seed, Atol * Math.Max(Math.Min(lk, 64), 1));
        }
    }

    /// <summary>A fully masked head gives zeros; a NaN key (in a later chunk than the first) makes every head NaN, through the in-kernel merge.</summary>
    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    public void StreamDecodeFullyMaskedHeadIsZeroAndNaNPropagates(int format)
    {
        const int Heads = 2, Lk = 11, D = 8;
        bool f32 = format == 2;
        var mask = new float[Heads * Lk];
        Array.Fill(mask, float.NegativeInfinity, 0, Lk);
        var previous = K.DecodeKernelVariant;
        K.DecodeKernelVariant = DecodeVariant.Stream;
        try
        {
            for (int poison = 0; poison < 2; poison++)
            {
                float[] got;
                if (f32)
                {
                    var k = Random(22501, Lk * D);
                    if (poison == 1)
                    {
                        k[(9 * D) + 3] = float.NaN;
                    }

                    var o = Poisoned(Heads * D);
                    K.ScaledDotProductAttention(Upload(Random(22500, Heads * D)), Upload(k), Upload(Random(22502, Lk * D)), o, 1, Heads, 1, 1, Lk, D, mask: Upload(mask));
                    got = Download(o);
                }
                else
                {
                    var (k, _) = Random16(22501, Lk * D, true);
                    if (poison == 1)
                    {
                        k[(9 * D) + 3] = NaN16(true);
                    }

                    var o = Poisoned16(Heads * D, true);
                    K.ScaledDotProductAttention(Upload(Random16(22500, Heads * D, true).Bits), Upload(k), Upload(Random16(22502, Lk * D, true).Bits), o, 1, Heads, 1, 1, Lk, D,
                        HalfFormat.BFloat16, mask: Upload(mask));
                    got = ToFloat(Download(o), true);
                }

                if (poison == 0)
                {
                    Assert.All(got.Take(D), x => Assert.Equal(0f, x));
                    Assert.All(got.Skip(D), x => Assert.True(float.IsFinite(x)));
                }
                else
                {
                    Assert.All(got, x => Assert.True(float.IsNaN(x)));
                }
            }
        }
        finally
        {
            K.DecodeKernelVariant = previous;
        }
    }

    public static TheoryData<int, int, int, int, int, int, int, int> Warp32Cases => new()
    {
        // format (0 f16, 1 bf16, 2 f32), batch, heads, kvHeads, lk, d, chunk (a multiple of the tile; 0: all keys in one), combine in kernel
        { 1, 1, 8, 2, 4099, 128, 512, 1 },
        { 1, 3, 4, 1, 37, 128, 64, 1 },
        { 0, 1, 4, 4, 37, 128, 64, 0 },
        { 2, 1, 8, 2, 333, 128, 64, 1 },
        { 2, 3, 4, 1, 37, 64, 0, 1 },
        { 1, 1, 4, 1, 1, 128, 64, 1 },
        { 0, 2, 8, 2, 200, 64, 128, 1 },
        { 1, 1, 4, 1, 77, 256, 16, 1 },
        { 2, 1, 6, 1, 50, 200, 20, 1 },
        { 1, 1, 6, 1, 90, 72, 56, 0 },
        { 1, 1, 4, 1, 1100, 128, 32, 1 },
        { 2, 2, 8, 2, 300, 64, 32, 1 },
    };

    /// <summary>
    /// The streaming kernel with the CUDA lane layout (8 lanes per row team, 16 above d = 128) and CUDA tile sizes
    /// (<see cref="AttentionDecodeWideKernels.TileKeys"/>), tile and chunk tails, the in-kernel merge (tickets checked
    /// back at zero) or the combine launch; the mask hides key 2 and is random elsewhere.
    /// </summary>
    [Theory]
    [MemberData(nameof(Warp32Cases))]
    public void StreamDecodeWithCudaLaneLayout(int format, int batch, int heads, int kvHeads, int lk, int d, int chunk, int combine)
    {
        var acc = warp32.Accelerator;
        int seed = 23000 + (format * 1000) + (heads * 100) + lk + d + batch;
        bool bf16 = format == 1;
        int elementBytes = format == 2 ? 4 : 2;
        int tile = AttentionDecodeWideKernels.TileKeys(d, elementBytes);
        chunk = chunk == 0 ? ((lk + tile - 1) / tile) * tile : chunk;
        Assert.Equal(0, chunk % tile);
        float[] qv, kv, vv;
        ushort[] q16 = [], k16 = [], v16 = [];
        if (format == 2)
        {
            qv = Random(seed, batch * heads * d, -1.5f, 1.5f);
            kv = Random(seed + 1, batch * kvHeads * lk * d, -1.5f, 1.5f);
            vv = Random(seed + 2, batch * kvHeads * lk * d);
        }
        else
        {
            (q16, qv) = Random16(seed, batch * heads * d, bf16, -1.5f, 1.5f);
            (k16, kv) = Random16(seed + 1, batch * kvHeads * lk * d, bf16, -1.5f, 1.5f);
            (v16, vv) = Random16(seed + 2, batch * kvHeads * lk * d, bf16);
        }

        var mask = HeadMask(seed + 3, true, batch, heads, lk);
        int splits = Math.Max(1, (lk + chunk - 1) / chunk);
        int headBlocks = ((heads / kvHeads) + AttentionDecodeWideKernels.HeadsPerGroup - 1) / AttentionDecodeWideKernels.HeadsPerGroup;
        var shape = DecodeShape(heads, kvHeads, lk, d, 0.25f, true);
        var plan = new DecodePlan { Chunk = chunk, KeyEnd = lk, TileKeys = tile, Combine = combine };
        long parts = (long)batch * heads * splits;
        using var maskBuffer = acc.Allocate1D(mask);
        using var partO = acc.Allocate1D(Enumerable.Repeat(float.NaN, (int)(parts * d)).ToArray());
        using var partML = acc.Allocate1D(Enumerable.Repeat(float.NaN, (int)(2 * parts)).ToArray());
        using var tickets = acc.Allocate1D(new int[batch * kvHeads * headBlocks]);
        var config = new KernelConfig(new Index3D(splits, kvHeads * headBlocks, batch), new Index3D(AttentionDecodeWideKernels.Warps * 32, 1, 1),
            SharedMemoryConfig.RequestDynamic<float>(AttentionDecodeWideKernels.StreamSharedFloats));
        var combineConfig = new KernelConfig(new Index3D(heads, batch, 1), new Index3D(256, 1, 1));
        bool combineLaunch = splits > 1 && combine == 0;
        float[] got;
        if (format == 2)
        {
            using var qb = acc.Allocate1D(qv);
            using var kb = acc.Allocate1D(kv);
            using var vb = acc.Allocate1D(vv);
            using var ob = acc.Allocate1D(Enumerable.Repeat(float.NaN, qv.Length).ToArray());
            acc.LoadStreamKernel<ArrayView<Float4>, ArrayView<Float4>, ArrayView<Float4>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<int>, AttentionShape, DecodePlan>(
                AttentionDecodeWideKernels.DecodeStreamF32)(config, qb.View.BaseView.Cast<Float4>(), kb.View.BaseView.Cast<Float4>(), vb.View.BaseView.Cast<Float4>(),
                maskBuffer.View, partO.View, partML.View, ob.View, tickets.View, shape, plan);
            if (combineLaunch)
            {
                acc.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, AttentionShape, int>(AttentionDecodeKernels.DecodeCombineF32)(
                    combineConfig, partO.View, partML.View, ob.View, shape, splits);
            }

            acc.Synchronize();
            got = ob.GetAsArray1D();
        }
        else
        {
            using var qb = acc.Allocate1D(q16);
            using var kb = acc.Allocate1D(k16);
            using var vb = acc.Allocate1D(v16);
            using var ob = acc.Allocate1D(Enumerable.Repeat(NaN16(bf16), qv.Length).ToArray());
            Action<ArrayView<Half8>, ArrayView<Half8>, ArrayView<Half8>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<ushort>, ArrayView<int>, AttentionShape, DecodePlan> kernel = bf16
                ? AttentionDecodeWideKernels.DecodeStream16<BFloat16Storage>
                : AttentionDecodeWideKernels.DecodeStream16<Float16Storage>;
            acc.LoadStreamKernel(kernel)(config, qb.View.BaseView.Cast<Half8>(), kb.View.BaseView.Cast<Half8>(), vb.View.BaseView.Cast<Half8>(), maskBuffer.View,
                partO.View, partML.View, ob.View, tickets.View, shape, plan);
            if (combineLaunch)
            {
                acc.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<ushort>, AttentionShape, int, int>(AttentionDecodeKernels.DecodeCombine16)(
                    combineConfig, partO.View, partML.View, ob.View, shape, splits, bf16 ? 1 : 0);
            }

            acc.Synchronize();
            got = ToFloat(ob.GetAsArray1D(), bf16);
        }

        var expected = AttentionTests.Reference(qv, kv, vv, batch, heads, kvHeads, 1, lk, d, false, Lookup(mask, heads, lk), 0.25);
        double rtol = format == 2 ? RtolF32 : Rtol(bf16);
        AssertClose(got, expected, rtol, format == 2 ? Atol : Atol * Math.Min(lk, 64),
            $"stream decode warp 32 format={format} b={batch} {heads}/{kvHeads} lk={lk} d={d} chunk={chunk} combine={combine}", seed);
        Assert.All(tickets.GetAsArray1D(), t => Assert.Equal(0, t));
    }

    public static TheoryData<int, int, int, int, int, int, bool> LeanCases => new()
    {
        // batch, heads, kvHeads, lk, chunk (a multiple of 16; 0: all keys in one), combine in kernel, mask
        { 3, 8, 2, 333, 64, 1, true },
        { 1, 8, 2, 4099, 512, 1, false },
        { 3, 4, 1, 37, 0, 1, true },
        { 1, 6, 1, 50, 32, 1, true },
        { 2, 3, 1, 97, 16, 0, false },
        { 1, 4, 4, 1, 16, 1, true },
        { 2, 8, 2, 300, 32, 0, true },
        { 1, 5, 1, 256, 128, 1, false },
    };

    /// <summary>
    /// The lean float32 decode (d = 128, constant tiles of 16 keys) on the 32-lane simulator: ragged tile and chunk
    /// tails, 1 to 4 live heads per group, the in-kernel merge (tickets back at zero) or the combine launch, each case
    /// launched twice (the second launch reuses the tickets the first reset), outputs and partials poisoned with NaN.
    /// </summary>
    [Theory]
    [MemberData(nameof(LeanCases))]
    public void LeanF32DecodeWithCudaLaneLayout(int batch, int heads, int kvHeads, int lk, int chunk, int combine, bool masked)
    {
        const int D = AttentionDecodeWideKernels.LeanD;
        var acc = warp32.Accelerator;
        int seed = 27000 + (heads * 100) + lk + batch + chunk + (masked ? 7 : 0);
        int tile = AttentionDecodeWideKernels.LeanTileKeys;
        chunk = chunk == 0 ? ((lk + tile - 1) / tile) * tile : chunk;
        Assert.Equal(0, chunk % tile);
        var qv = Random(seed, batch * heads * D, -1.5f, 1.5f);
        var kv = Random(seed + 1, batch * kvHeads * lk * D, -1.5f, 1.5f);
        var vv = Random(seed + 2, batch * kvHeads * lk * D);
        var mask = masked ? HeadMask(seed + 3, true, batch, heads, lk) : [0f];
        int splits = Math.Max(1, (lk + chunk - 1) / chunk);
        int headBlocks = ((heads / kvHeads) + AttentionDecodeWideKernels.HeadsPerGroup - 1) / AttentionDecodeWideKernels.HeadsPerGroup;
        var shape = DecodeShape(heads, kvHeads, lk, D, 0.25f, masked);
        var plan = new DecodePlan { Chunk = chunk, KeyEnd = lk, TileKeys = tile, Combine = combine };
        long parts = (long)batch * heads * splits;
        using var maskBuffer = acc.Allocate1D(mask);
        using var partO = acc.Allocate1D(Enumerable.Repeat(float.NaN, (int)(parts * D)).ToArray());
        using var partML = acc.Allocate1D(Enumerable.Repeat(float.NaN, (int)(2 * parts)).ToArray());
        using var tickets = acc.Allocate1D(new int[batch * kvHeads * headBlocks]);
        var config = new KernelConfig(new Index3D(splits, kvHeads * headBlocks, batch), new Index3D(AttentionDecodeWideKernels.Warps * 32, 1, 1),
            SharedMemoryConfig.RequestDynamic<float>(AttentionDecodeWideKernels.StreamSharedFloats));
        var combineConfig = new KernelConfig(new Index3D(heads, batch, 1), new Index3D(256, 1, 1));
        var expected = AttentionTests.Reference(qv, kv, vv, batch, heads, kvHeads, 1, lk, D, false, Lookup(masked ? mask : [], heads, lk), 0.25);
        using var qb = acc.Allocate1D(qv);
        using var kb = acc.Allocate1D(kv);
        using var vb = acc.Allocate1D(vv);
        var kernel = acc.LoadStreamKernel<ArrayView<Float4>, ArrayView<Float4>, ArrayView<Float4>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<int>, AttentionShape, DecodePlan>(
            AttentionDecodeWideKernels.DecodeStreamF32Lean);
        for (int run = 0; run < 2; run++)
        {
            using var ob = acc.Allocate1D(Enumerable.Repeat(float.NaN, qv.Length).ToArray());
            partO.MemSet(0xff);
            kernel(config, qb.View.BaseView.Cast<Float4>(), kb.View.BaseView.Cast<Float4>(), vb.View.BaseView.Cast<Float4>(),
                maskBuffer.View, partO.View, partML.View, ob.View, tickets.View, shape, plan);
            if (splits > 1 && combine == 0)
            {
                acc.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, AttentionShape, int>(AttentionDecodeKernels.DecodeCombineF32)(
                    combineConfig, partO.View, partML.View, ob.View, shape, splits);
            }

            acc.Synchronize();
            AssertClose(ob.GetAsArray1D(), expected, RtolF32, Atol,
                $"lean decode run {run} b={batch} {heads}/{kvHeads} lk={lk} chunk={chunk} combine={combine} mask={masked}", seed);
            Assert.All(tickets.GetAsArray1D(), t => Assert.Equal(0, t));
        }
    }

    /// <summary>The team reduction of four values: every lane of a team of 8 gets the sum its part names.</summary>
    [Fact]
    public void LeanTeamSum4GivesEachLaneItsHead()
    {
        var acc = warp32.Accelerator;
        var values = Random(27777, 4 * 32, -2f, 2f);
        using var input = acc.Allocate1D(values);
        using var result = acc.Allocate1D(Enumerable.Repeat(float.NaN, 32).ToArray());
        acc.LoadStreamKernel<ArrayView<float>, ArrayView<float>>(TeamSum4Kernel)(new KernelConfig(1, 32), input.View, result.View);
        acc.Synchronize();
        var got = result.GetAsArray1D();
        for (int lane = 0; lane < 32; lane++)
        {
            int part = lane & 7;
            int head = (2 * (part & 1)) + ((part >> 1) & 1);
            double sum = 0;
            for (int p = 0; p < 8; p++)
            {
                sum += values[(head * 32) + (lane & ~7) + p];
            }

            Assert.True(Math.Abs(got[lane] - sum) <= 1e-5 * (1 + Math.Abs(sum)), $"lane {lane}: {got[lane]} vs {sum}");
        }
    }

    private static void TeamSum4Kernel(ArrayView<float> input, ArrayView<float> result)
    {
        int lane = Group.IdxX;
        result[lane] = AttentionDecodeWideKernels.TeamSum4(input[lane], input[32 + lane], input[64 + lane], input[96 + lane], lane & 7);
    }

    public static TheoryData<int, int, int, int, int, int, int, bool> TensorCoreCases => new()
    {
        // format (0 f16, 1 bf16), batch, heads, kvHeads, lk, chunk (a multiple of 32), combine in kernel, mask
        { 1, 1, 8, 2, 4097, 512, 1, true },
        { 0, 1, 4, 1, 4097, 512, 0, false },
        { 0, 3, 4, 1, 37, 32, 1, false },
        { 1, 2, 8, 2, 3, 32, 1, true },
        { 1, 1, 4, 4, 1, 32, 1, false },
        { 0, 2, 4, 1, 1, 64, 1, true },
        { 1, 1, 6, 1, 90, 32, 0, true },
        { 0, 1, 12, 2, 200, 64, 1, true },
        { 1, 2, 2, 2, 64, 64, 1, false },
    };

    /// <summary>
    /// The tensor-core decode's body with ldmatrix and mma.sync emulated lane by lane (32-lane warps, the CUDA tile of 32
    /// keys, head size 128) against the float64 reference, every output element, outputs and partials poisoned with NaN:
    /// GQA (1-4 query heads per kv head in a block, a second block of 2 with 6 or 12 heads per kv head), batch 1-3,
    /// key and tile tails (1, 3, 37, 90, 4097 keys), the in-kernel merge (tickets back at zero) or the combine launch,
    /// masks that hide key 2. Each case runs twice with fresh inputs: with <see cref="AttentionDecodeTensorCoreKernels.DecodeTc16"/>'s
    /// staging and with the lean staging (<see cref="AttentionDecodeTensorCoreKernels.DecodeTc16Lean"/>: every stage
    /// filled before the first tile, four copies per thread on one address), where a wrong buffer or tile in the copies
    /// shows as a wrong element (the simulator's copies are synchronous, so only the cp.async wait counts are not
    /// exercised here).
    /// </summary>
    [Theory]
    [MemberData(nameof(TensorCoreCases))]
    public void TensorCoreDecodeEmulated(int format, int batch, int heads, int kvHeads, int lk, int chunk, int combine, bool masked)
    {
        const int D = AttentionDecodeTensorCoreKernels.D;
        bool bf16 = format == 1;
        foreach (bool lean in new[] { false, true })
        {
            int seed = (lean ? 28000 : 24000) + (format * 1000) + (heads * 100) + lk + batch + (masked ? 7 : 0);
            var (q16, qv) = Random16(seed, batch * heads * D, bf16, -1.5f, 1.5f);
            var (k16, kv) = Random16(seed + 1, batch * kvHeads * lk * D, bf16, -1.5f, 1.5f);
            var (v16, vv) = Random16(seed + 2, batch * kvHeads * lk * D, bf16);
            var mask = HeadMask(seed + 3, masked, batch, heads, lk);
            var got = RunTensorCoreEmulated(bf16, batch, heads, kvHeads, lk, chunk, combine, q16, k16, v16, mask, lean);
            var expected = AttentionTests.Reference(qv, kv, vv, batch, heads, kvHeads, 1, lk, D, false, Lookup(mask, heads, lk), 1 / Math.Sqrt(D));
            AssertClose(got, expected, Rtol(bf16), Atol * Math.Min(lk, 64),
                $"tc decode emulated lean={lean} format={format} b={batch} {heads}/{kvHeads} lk={lk} chunk={chunk} combine={combine} mask={masked}", seed);
        }
    }

    public static TheoryData<int, int, int, int, int, int, int, bool> WideLeanCases => new()
    {
        // format (0 f16, 1 bf16), batch, heads, kvHeads, lk, chunk (a multiple of 32), combine in kernel, mask
        { 1, 1, 8, 2, 4097, 512, 1, true },
        { 0, 1, 4, 1, 4097, 128, 0, false },
        { 0, 3, 4, 1, 37, 32, 1, false },
        { 1, 2, 8, 2, 3, 32, 1, true },
        { 1, 1, 4, 1, 1, 64, 1, false },
        { 0, 2, 12, 3, 257, 96, 1, true },
        { 1, 1, 12, 3, 257, 128, 1, false },
        { 0, 1, 6, 1, 90, 64, 0, true },
        { 1, 3, 8, 2, 256, 256, 1, true },
        { 0, 1, 4, 1, 1000, 160, 1, false },
    };

    /// <summary>
    /// The 8-warp lean body (<see cref="AttentionDecodeTensorCoreKernels.DecodeTc16Lean8w"/>, emulated) against the float64
    /// reference, every element, output and partials NaN-poisoned: GQA 4/1, 8/2, 12/3 and 6/1 (two head blocks), batch
    /// 1-3, 1, 3, 37, 90, 256, 257, 1000 and 4097 keys; chunks of an odd tile count (32, 96, 160: the last pair of a pass has
    /// an empty second tile), an even one (64, 128, 256, 512: both halves busy, ring buffers reused), ragged last chunks
    /// (4097 = 8 × 512 + 1), in-kernel merge and combine launch, masks hiding key 2.
    /// </summary>
    [Theory]
    [MemberData(nameof(WideLeanCases))]
    public void WideLeanDecodeEmulated(int format, int batch, int heads, int kvHeads, int lk, int chunk, int combine, bool masked)
    {
        const int D = AttentionDecodeTensorCoreKernels.D;
        bool bf16 = format == 1;
        int seed = 31000 + (format * 1000) + (heads * 100) + lk + batch + chunk + (masked ? 7 : 0);
        var (q16, qv) = Random16(seed, batch * heads * D, bf16, -1.5f, 1.5f);
        var (k16, kv) = Random16(seed + 1, batch * kvHeads * lk * D, bf16, -1.5f, 1.5f);
        var (v16, vv) = Random16(seed + 2, batch * kvHeads * lk * D, bf16);
        var mask = HeadMask(seed + 3, masked, batch, heads, lk);
        var got = RunTensorCoreEmulated(bf16, batch, heads, kvHeads, lk, chunk, combine, q16, k16, v16, mask, lean: true, wide: true);
        var expected = AttentionTests.Reference(qv, kv, vv, batch, heads, kvHeads, 1, lk, D, false, Lookup(mask, heads, lk), 1 / Math.Sqrt(D));
        AssertClose(got, expected, Rtol(bf16), Atol * Math.Min(lk, 64),
            $"tc decode emulated lean8w format={format} b={batch} {heads}/{kvHeads} lk={lk} chunk={chunk} combine={combine} mask={masked}", seed);
    }

    /// <summary><c>lean8w</c> takes a call only while the 4-warp lean grid is below one wave (4 groups per SM), and only where a group may have its 78 KB of shared memory.</summary>
    [Theory]
    [InlineData(512, 132, true)]
    [InlineData(527, 132, true)]
    [InlineData(528, 132, false)]
    [InlineData(1024, 132, false)]
    [InlineData(1, 0, true)]
    public void WideLeanDecodeRouting(long leanGroups, int multiprocessors, bool expected)
    {
        Assert.Equal(expected, IlgpuKernels.UsesWideLeanDecode(leanGroups, multiprocessors, Sm90aPtx.OptInSharedBytes));

        // A device without the opt-in shared limit (48 KB per group) keeps the 4-warp kernel at every size.
        Assert.False(IlgpuKernels.UsesWideLeanDecode(leanGroups, multiprocessors, 48 * 1024));
    }

    /// <summary>
    /// Tensor-core decode, emulated: a fully masked head gives zeros (the other heads finite); a NaN in a key of the
    /// second chunk makes every head NaN, a NaN in a value its dim of every head but the masked one, through the
    /// in-kernel merge: the ticket's, or the cluster's (<see cref="AttentionDecodeTensorCoreKernels.DecodeTc16ClusterEmulated"/>).
    /// </summary>
    [Theory]
    [InlineData(true, false)]
    [InlineData(false, false)]
    [InlineData(true, true)]
    [InlineData(false, true)]
    public void TensorCoreDecodeFullyMaskedHeadIsZeroAndNaNPropagates(bool bf16, bool cluster)
    {
        const int D = AttentionDecodeTensorCoreKernels.D, Heads = 4, Lk = 40;
        var q16 = Random16(24800, Heads * D, bf16, -1.5f, 1.5f).Bits;
        var v16 = Random16(24802, Lk * D, bf16).Bits;
        var mask = new float[Heads * Lk];
        Array.Fill(mask, float.NegativeInfinity, Lk, Lk);
        for (int poison = 0; poison < 3; poison++)
        {
            var k16 = Random16(24801, Lk * D, bf16, -1.5f, 1.5f).Bits;
            var v = (ushort[])v16.Clone();
            if (poison == 1)
            {
                k16[(35 * D) + 3] = NaN16(bf16);
            }
            else if (poison == 2)
            {
                v[(5 * D) + 77] = NaN16(bf16);
            }

            // The cluster plan of 40 keys: chunks of 32, so the poisoned key 35 is in the second chunk there too.
            var got = RunTensorCoreEmulated(bf16, 1, Heads, 1, Lk, cluster ? DecodeClusterMerge.ChunkFor(Lk) : 32, 1, q16, k16, v, mask, lean: cluster, cluster: cluster);
            if (poison == 0)
            {
                Assert.All(got.Skip(D).Take(D), x => Assert.Equal(0f, x));
                Assert.All(got.Take(D).Concat(got.Skip(2 * D)), x => Assert.True(float.IsFinite(x)));
            }
            else if (poison == 1)
            {
                // As the streaming kernel: NaN + (-inf) is NaN, so the fully masked head is NaN too.
                Assert.All(got, x => Assert.True(float.IsNaN(x)));
            }
            else
            {
                // A NaN value poisons its dim of every head that weights it; the fully masked head's chunk has l = 0
                // and writes 0 whatever its sums hold.
                for (int e = 0; e < got.Length; e++)
                {
                    int head = e / D;
                    Assert.True(head == 1 ? got[e] == 0f : float.IsNaN(got[e]) == (e % D == 77), $"element {e}: {got[e]}");
                }
            }
        }
    }

    /// <summary>Launches <see cref="AttentionDecodeTensorCoreKernels.DecodeTc16Emulated"/> on the 32-lane simulator (NaN-poisoned output and partials); checks the tickets are back at zero.</summary>
    /// <summary>One query row per sequence over <paramref name="lk"/> keys; a mask, when present, is [batch, heads, lk].</summary>
    private static AttentionShape DecodeShape(int heads, int kvHeads, int lk, int d, float scale, bool masked) => new()
    {
        Heads = heads,
        KvHeads = kvHeads,
        Lq = 1,
        Lk = lk,
        D = d,
        Scale = scale,
        HasMask = masked ? 1 : 0,
        MaskBatch = masked ? heads * lk : 0,
        MaskHead = masked ? lk : 0,
        MaskRow = masked ? lk : 0,
    };

    private float[] RunTensorCoreEmulated(bool bf16, int batch, int heads, int kvHeads, int lk, int chunk, int combine, ushort[] q16, ushort[] k16, ushort[] v16, float[] mask,
        bool lean = false, bool cluster = false, bool wide = false)
    {
        const int D = AttentionDecodeTensorCoreKernels.D;
        var acc = warp32.Accelerator;

        // The cluster kernel's grid is always a cluster of DecodeClusterMerge.Size chunks (the last ones empty for few keys).
        int splits = cluster ? DecodeClusterMerge.Size : Math.Max(1, (lk + chunk - 1) / chunk);
        int headBlocks = ((heads / kvHeads) + AttentionDecodeWideKernels.HeadsPerGroup - 1) / AttentionDecodeWideKernels.HeadsPerGroup;
        bool masked = mask.Length > 0;
        var shape = DecodeShape(heads, kvHeads, lk, D, (float)(1 / Math.Sqrt(D)), masked);
        var plan = new DecodePlan { Chunk = chunk, KeyEnd = lk, TileKeys = AttentionDecodeTensorCoreKernels.TileKeys, Combine = combine };
        long parts = (long)batch * heads * splits;
        long groups = (long)splits * kvHeads * headBlocks * batch;
        using var maskBuffer = acc.Allocate1D(masked ? mask : [0f]);
        using var partO = acc.Allocate1D(Enumerable.Repeat(float.NaN, (int)(parts * D)).ToArray());
        using var partML = acc.Allocate1D(Enumerable.Repeat(float.NaN, (int)(2 * parts)).ToArray());
        using var tickets = acc.Allocate1D(new int[batch * kvHeads * headBlocks]);
        int groupSize = wide ? AttentionDecodeTensorCoreKernels.WideGroupSize : AttentionDecodeTensorCoreKernels.GroupSize;
        using var scratch = acc.Allocate1D<float>(groups * groupSize * AttentionDecodeTensorCoreKernels.EmulationFloatsPerThread);
        var config = new KernelConfig(new Index3D(splits, kvHeads * headBlocks, batch), new Index3D(groupSize, 1, 1),
            SharedMemoryConfig.RequestDynamic<float>(wide ? AttentionDecodeTensorCoreKernels.WideSharedFloats : AttentionDecodeTensorCoreKernels.SharedFloats));
        using var qb = acc.Allocate1D(q16);
        using var kb = acc.Allocate1D(k16);
        using var vb = acc.Allocate1D(v16);
        using var ob = acc.Allocate1D(Enumerable.Repeat(NaN16(bf16), q16.Length).ToArray());
        Action<ArrayView<Half8>, ArrayView<Half8>, ArrayView<Half8>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<ushort>, ArrayView<int>, AttentionShape, DecodePlan, ArrayView<float>> kernel = (bf16, lean, cluster) switch
        {
            (true, _, false) when wide => AttentionDecodeTensorCoreKernels.DecodeTc16Lean8wEmulated<BFloat16Storage>,
            (false, _, false) when wide => AttentionDecodeTensorCoreKernels.DecodeTc16Lean8wEmulated<Float16Storage>,
            (true, _, true) => AttentionDecodeTensorCoreKernels.DecodeTc16ClusterEmulated<BFloat16Storage>,
            (false, _, true) => AttentionDecodeTensorCoreKernels.DecodeTc16ClusterEmulated<Float16Storage>,
            (true, false, false) => AttentionDecodeTensorCoreKernels.DecodeTc16Emulated<BFloat16Storage>,
            (false, false, false) => AttentionDecodeTensorCoreKernels.DecodeTc16Emulated<Float16Storage>,
            (true, true, false) => AttentionDecodeTensorCoreKernels.DecodeTc16LeanEmulated<BFloat16Storage>,
            (false, true, false) => AttentionDecodeTensorCoreKernels.DecodeTc16LeanEmulated<Float16Storage>,
        };
        acc.LoadStreamKernel(kernel)(config, qb.View.BaseView.Cast<Half8>(), kb.View.BaseView.Cast<Half8>(), vb.View.BaseView.Cast<Half8>(), maskBuffer.View,
            partO.View, partML.View, ob.View, tickets.View, shape, plan, scratch.View);
        if (!cluster && splits > 1 && combine == 0)
        {
            acc.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<ushort>, AttentionShape, int, int>(AttentionDecodeKernels.DecodeCombine16)(
                new KernelConfig(new Index3D(heads, batch, 1), new Index3D(256, 1, 1)), partO.View, partML.View, ob.View, shape, splits, bf16 ? 1 : 0);
        }

        acc.Synchronize();
        Assert.All(tickets.GetAsArray1D(), t => Assert.Equal(0, t));
        return ToFloat(ob.GetAsArray1D(), bf16);
    }

    /// <summary>
    /// Through the facade on the default simulator (warps of 4, no CUDA) <c>lean8w</c> (the default), <c>lean</c> and <c>tc</c> fall
    /// back to the streaming kernel for float32 and 16-bit (the lean float32 kernel needs 32-lane warps, the tensor-core
    /// ones CUDA) and stay correct, merge in the kernel.
    /// </summary>
    [Theory]
    [InlineData("lean", 27901)]
    [InlineData("tc", 24901)]
    [InlineData("cluster", 29901)]
    [InlineData("lean8w", 30901)]
    public void VariantFallsBackOffCuda(string setting, int seed)
    {
        var previous = K.DecodeKernelVariant;
        try
        {
            K.DecodeKernelVariant = DecodeVariants.Parse(setting);
            Assert.False(K.UsesLeanDecodeF32(AttentionDecodeWideKernels.LeanD));
            Assert.False(K.UsesTensorCoreDecode(AttentionDecodeTensorCoreKernels.D));
            RunFacade(2, 2, 8, 2, 37, 128, true, false, seed, $"{setting} variant on the simulator, float32");
            RunFacade(1, 2, 8, 2, 37, 128, false, false, seed + 1, $"{setting} variant on the simulator, bfloat16");
        }
        finally
        {
            K.DecodeKernelVariant = previous;
        }
    }

    /// <summary>
    /// SM_90 PTX of the tensor-core decode: 16 mma.sync of the format per kernel (8 scores, 8 weights × values), 4
    /// ldmatrix and 4 ldmatrix.trans, cp.async staging, every asm operand substituted, no local memory.
    /// </summary>
    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void TensorCoreDecodePtx(bool bf16)
    {
        var method = typeof(AttentionDecodeTensorCoreKernels).GetMethod(nameof(AttentionDecodeTensorCoreKernels.DecodeTc16))!
            .MakeGenericMethod(bf16 ? typeof(BFloat16Storage) : typeof(Float16Storage));
        CheckTensorCorePtx(Ptx(method), bf16);
    }

    /// <summary>The lean staging's PTX: the same mma / ldmatrix counts, the first tile's wait_group 3, no local memory.</summary>
    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void TensorCoreLeanDecodePtx(bool bf16)
    {
        var method = typeof(AttentionDecodeTensorCoreKernels).GetMethod(nameof(AttentionDecodeTensorCoreKernels.DecodeTc16Lean))!
            .MakeGenericMethod(bf16 ? typeof(BFloat16Storage) : typeof(Float16Storage));
        string ptx = Ptx(method);
        CheckTensorCorePtx(ptx, bf16);
        Assert.Contains("cp.async.wait_group 3;", ptx, StringComparison.Ordinal);
        Assert.DoesNotContain(ClusterReduction.Marker, ptx, StringComparison.Ordinal);
        Assert.DoesNotContain("shared::cluster", ptx, StringComparison.Ordinal);
    }

    /// <summary>
    /// The 8-warp kernel's PTX: the same mma / ldmatrix counts (each warp runs one score block and one weights block per
    /// pair), wait_group 6 (three pairs of the 8-buffer ring in flight) and neither 2 nor 3, the opt-in shared marker, no
    /// local memory.
    /// </summary>
    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void TensorCoreWideLeanDecodePtx(bool bf16)
    {
        var method = typeof(AttentionDecodeTensorCoreKernels).GetMethod(nameof(AttentionDecodeTensorCoreKernels.DecodeTc16Lean8w))!
            .MakeGenericMethod(bf16 ? typeof(BFloat16Storage) : typeof(Float16Storage));
        string ptx = Ptx(method);
        CheckTensorCorePtx(ptx, bf16, wait: 6);
        Assert.DoesNotContain("cp.async.wait_group 2;", ptx, StringComparison.Ordinal);
        Assert.DoesNotContain("cp.async.wait_group 3;", ptx, StringComparison.Ordinal);
        Assert.DoesNotContain("shared::cluster", ptx, StringComparison.Ordinal);
        Assert.Contains(Sm90aPtx.OptInSharedMarker, ptx, StringComparison.Ordinal);
        Assert.True(AttentionDecodeTensorCoreKernels.WideSharedFloats * 4 * 2 <= 227 * 1024, "two groups per SM fit the opt-in shared memory");
    }

    private static void CheckTensorCorePtx(string ptx, bool bf16, int wait = 2)
    {
        string type = bf16 ? "bf16" : "f16";
        Assert.Equal(16, System.Text.RegularExpressions.Regex.Matches(ptx, $@"mma\.sync\.aligned\.m16n8k16\.row\.col\.f32\.{type}\.{type}\.f32").Count);
        Assert.Equal(8, System.Text.RegularExpressions.Regex.Matches(ptx, @"ldmatrix\.sync\.aligned\.m8n8\.x4\.").Count);
        Assert.Equal(4, System.Text.RegularExpressions.Regex.Matches(ptx, @"ldmatrix\.sync\.aligned\.m8n8\.x4\.trans\.").Count);
        Assert.Contains("cp.async.cg.shared.global", ptx, StringComparison.Ordinal);
        Assert.Contains($"cp.async.wait_group {wait};", ptx, StringComparison.Ordinal);
        Assert.DoesNotMatch(@"%\d", ptx);
        PtxLocalSlots.AssertNone(ptx);
    }

    internal static string Ptx(System.Reflection.MethodInfo method)
    {
        string ptx = Sm90Ptx.Of(method);
        // One file per instantiation (the format's name in it), so that both formats can be diffed after a change.
        string name = method.Name + (method.IsGenericMethod ? "-" + string.Join("-", method.GetGenericArguments().Select(a => a.Name)) : string.Empty);
        System.IO.File.WriteAllText(System.IO.Path.Combine(System.IO.Path.GetTempPath(), name + ".ptx"), ptx);
        return ptx;
    }

    /// <summary>The streaming kernels stage through cp.async, read shared memory in 16-byte vectors and use no local memory.</summary>
    [Fact]
    public void StreamDecodePtxCopiesAsynchronouslyWithoutLocalMemory()
    {
        var stream16 = typeof(AttentionDecodeWideKernels).GetMethod(nameof(AttentionDecodeWideKernels.DecodeStream16))!.MakeGenericMethod(typeof(BFloat16Storage));
        var stream32 = typeof(AttentionDecodeWideKernels).GetMethod(nameof(AttentionDecodeWideKernels.DecodeStreamF32))!;
        var lean32 = typeof(AttentionDecodeWideKernels).GetMethod(nameof(AttentionDecodeWideKernels.DecodeStreamF32Lean))!;
        foreach (var method in new[] { stream16, stream32, lean32 })
        {
            string ptx = Ptx(method);
            Assert.Contains("cp.async.cg.shared.global", ptx, StringComparison.Ordinal);
            Assert.Contains("cp.async.wait_group 2;", ptx, StringComparison.Ordinal);
            Assert.Matches(@"ld\.shared\.v4\.", ptx);
            Assert.Matches(@"ld\.global\.v4\.", ptx);
            PtxLocalSlots.AssertNone(ptx);
        }
    }

    /// <summary>
    /// The traced float32 decode (the harness's <c>--decode-trace</c>) reads the GPU's nanosecond timer and SM id in its
    /// PTX; the shipped kernel, the same body with <see cref="NoDecodeTrace"/>, reads neither.
    /// </summary>
    [Fact]
    public void TracedLeanF32DecodeReadsTheTimerAndTheShippedOneDoesNot()
    {
        string traced = Ptx(typeof(AttentionDecodeWideKernels).GetMethod(nameof(AttentionDecodeWideKernels.DecodeStreamF32LeanTraced))!);
        string shipped = Ptx(typeof(AttentionDecodeWideKernels).GetMethod(nameof(AttentionDecodeWideKernels.DecodeStreamF32Lean))!);
        Assert.Equal(DecodeTracePoint.Count - 1, System.Text.RegularExpressions.Regex.Matches(traced, @"mov\.u64\s+%rd\d+, %globaltimer;").Count);
        Assert.Contains("%smid", traced, StringComparison.Ordinal);
        Assert.DoesNotContain("%globaltimer", shipped, StringComparison.Ordinal);
        Assert.DoesNotContain("%smid", shipped, StringComparison.Ordinal);
        PtxLocalSlots.AssertNone(shipped);
    }

    public static TheoryData<int, int, int, int, int, bool> ClusterCases => new()
    {
        // format (0 f16, 1 bf16), batch, heads, kvHeads, lk, mask
        { 1, 1, 4, 1, 2048, false },
        { 0, 2, 8, 2, 4001, true },
        { 1, 2, 4, 1, 37, true },
        { 0, 1, 8, 2, 4096, false },
    };

    /// <summary>
    /// The cluster decode's body and merge (<see cref="AttentionDecodeTensorCoreKernels.DecodeTc16ClusterEmulated"/>: the
    /// lean body with emulated mma, the cluster barrier and distributed shared memory emulated through the partials and a
    /// ticket, the merge code the GPU runs per rank) against the float64 reference, every output element, outputs and
    /// partials poisoned with NaN, fresh inputs: GQA 4/1 and 8/2, batch 1 and 2, 8 chunks of exactly 256 keys, of 512
    /// with a ragged last chunk (4001 keys: 417 in the last, a partial tile), all 8 × 512 keys, and 37 keys (chunks of
    /// 32: two with keys, six empty), additive masks hiding key 2. The output equals the lean kernel's ticket merge of the
    /// same plan bit for bit (the same arithmetic in the same order).
    /// </summary>
    [Theory]
    [MemberData(nameof(ClusterCases))]
    public void ClusterDecodeEmulated(int format, int batch, int heads, int kvHeads, int lk, bool masked)
    {
        const int D = AttentionDecodeTensorCoreKernels.D;
        bool bf16 = format == 1;
        int chunk = DecodeClusterMerge.ChunkFor(lk);
        int seed = 29000 + (format * 1000) + (heads * 100) + lk + batch + (masked ? 7 : 0);
        var (q16, qv) = Random16(seed, batch * heads * D, bf16, -1.5f, 1.5f);
        var (k16, kv) = Random16(seed + 1, batch * kvHeads * lk * D, bf16, -1.5f, 1.5f);
        var (v16, vv) = Random16(seed + 2, batch * kvHeads * lk * D, bf16);
        var mask = HeadMask(seed + 3, masked, batch, heads, lk);
        var got = RunTensorCoreEmulated(bf16, batch, heads, kvHeads, lk, chunk, 1, q16, k16, v16, mask, lean: true, cluster: true);
        var expected = AttentionTests.Reference(qv, kv, vv, batch, heads, kvHeads, 1, lk, D, false, Lookup(mask, heads, lk), 1 / Math.Sqrt(D));
        string what = $"cluster decode emulated format={format} b={batch} {heads}/{kvHeads} lk={lk} chunk={chunk} mask={masked}";
        AssertClose(got, expected, Rtol(bf16), Atol * Math.Min(lk, 64), what, seed);
        var ticket = RunTensorCoreEmulated(bf16, batch, heads, kvHeads, lk, chunk, 1, q16, k16, v16, mask, lean: true);
        for (int e = 0; e < got.Length; e++)
        {
            Assert.True(got[e].Equals(ticket[e]), $"{what}: element {e} {got[e]} against the ticket merge's {ticket[e]}");
        }
    }

    /// <summary>
    /// The cluster plan: 8 chunks of a multiple of the 32-key tile up to the body's 512 (fewer keys than 8 tiles leave
    /// empty chunks); more than 8 × 512 keys, or none, keep the lean kernel (0).
    /// </summary>
    [Theory]
    [InlineData(1, 32)]
    [InlineData(37, 32)]
    [InlineData(256, 32)]
    [InlineData(257, 64)]
    [InlineData(2048, 256)]
    [InlineData(4001, 512)]
    [InlineData(4096, 512)]
    [InlineData(4097, 0)]
    [InlineData(0, 0)]
    public void ClusterPlanChunks(int keys, int chunk) => Assert.Equal(chunk, DecodeClusterMerge.ChunkFor(keys));

    /// <summary>
    /// The cluster decode's SM_90 PTX with the loader's launch bounds: the 8 × 1 × 1 marker, which the rewrite turns into
    /// <c>.reqnctapercluster 8, 1, 1</c> after <c>.maxntid</c> / <c>.minnctapersm</c>; one release/acquire cluster barrier
    /// before the remote reads and a relaxed one after; 8 (m, l) and 8 sum reads through <c>mapa</c> +
    /// <c>ld.shared::cluster</c>, all in one block; no atomic, fence or float32 partial store of the ticket path; the lean
    /// body's mma count and no local memory anywhere. Written to GEMS_PTX_DUMP_DIR when that is set.
    /// </summary>
    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void ClusterDecodePtxMergesInDistributedSharedMemory(bool bf16)
    {
        var method = typeof(AttentionDecodeTensorCoreKernels).GetMethod(nameof(AttentionDecodeTensorCoreKernels.DecodeTc16Cluster))!
            .MakeGenericMethod(bf16 ? typeof(BFloat16Storage) : typeof(Float16Storage));
        string ptx = Sm90Ptx.Of(method, new KernelSpecialization(AttentionDecodeTensorCoreKernels.GroupSize, 4), $"decode-cluster-{(bf16 ? "bf16" : "f16")}");
        Assert.Contains(".maxntid", ptx, StringComparison.Ordinal);
        int Count(string text) => System.Text.RegularExpressions.Regex.Matches(ptx, System.Text.RegularExpressions.Regex.Escape(text)).Count;
        Assert.True(Sm90aPtx.Needs(ptx));
        Assert.Equal(1, Count(ClusterReduction.Marker));
        Assert.Equal(1, Count(ClusterReduction.Marker + "8, 1, 1"));
        Assert.Equal(1, Count("barrier.cluster.arrive.aligned;"));
        Assert.Equal(1, Count("barrier.cluster.arrive.relaxed.aligned;"));
        Assert.Equal(2, Count("barrier.cluster.wait.aligned;"));
        Assert.Equal(16, Count("mapa.shared::cluster.u32 dca"));
        Assert.Equal(8, Count("ld.shared::cluster.v2.f32"));
        Assert.Equal(8, Count("ld.shared::cluster.v4.f32"));
        Assert.True(ptx.IndexOf("barrier.cluster.arrive.aligned;", StringComparison.Ordinal) < ptx.IndexOf("mapa.shared::cluster", StringComparison.Ordinal));
        Assert.True(ptx.LastIndexOf("ld.shared::cluster", StringComparison.Ordinal) < ptx.IndexOf("barrier.cluster.arrive.relaxed.aligned;", StringComparison.Ordinal));
        Assert.DoesNotMatch(@"\batom\.|\bred\.|membar|\bfence\.", ptx);
        Assert.DoesNotMatch(@"st\.global(\.\w+)*\.(v\d\.)?f32", ptx);

        string type = bf16 ? "bf16" : "f16";
        Assert.Equal(16, System.Text.RegularExpressions.Regex.Matches(ptx, $@"mma\.sync\.aligned\.m16n8k16\.row\.col\.f32\.{type}\.{type}\.f32").Count);
        Assert.Contains("cp.async.wait_group 3;", ptx, StringComparison.Ordinal);
        Assert.DoesNotMatch(@"%\d", ptx);
        PtxLocalSlots.AssertNone(ptx, "DecodeTc16Cluster");

        string rewritten = Sm90aPtx.Rewrite(ptx)!;
        Assert.Contains(".target sm_90a", rewritten, StringComparison.Ordinal);
        Assert.Matches(@"\.entry Kernel_DecodeTc16Cluster\([^)]*\)\s*\.maxntid 128, 1, 1\n\.minnctapersm 4\n\.reqnctapercluster 8, 1, 1\n\{", rewritten);
    }

    [Theory]
    [InlineData(null, "Lean8w")]
    [InlineData("", "Lean8w")]
    [InlineData(" Stream ", "Stream")]
    [InlineData("stream2", "StreamTwoLaunches")]
    [InlineData(" LEAN ", "Lean")]
    [InlineData("wide", "Lean8w")]
    [InlineData(" TC ", "TensorCore")]
    [InlineData(" Cluster ", "Cluster")]
    [InlineData("clusters", "Lean8w")]
    [InlineData(" Lean8W ", "Lean8w")]
    [InlineData("lean8", "Lean8w")]
    [InlineData("bogus", "Lean8w")]
    public void VariantSettingsParse(string? setting, string expected) => Assert.Equal(expected, DecodeVariants.Parse(setting).ToString());

    /// <summary><c>GEMS_DECODE_CHUNK</c>: a positive whole number of keys, anything else the plan's own (0).</summary>
    [Theory]
    [InlineData(null, 0)]
    [InlineData("", 0)]
    [InlineData(" 128 ", 128)]
    [InlineData("96", 96)]
    [InlineData("0", 0)]
    [InlineData("-64", 0)]
    [InlineData("64k", 0)]
    [InlineData("1e3", 0)]
    public void ChunkSettingParse(string? setting, int expected) => Assert.Equal(expected, DecodeChunkSetting.Parse(setting));

    /// <summary>
    /// The GPU plan's chunk with the merge's cost per partial (H200 Runs 153–154): one float32 sequence of 4096 keys over 8
    /// kv heads takes 128 keys (was 64); 16 sequences keep 512; the 8-warp 16-bit plan (2 groups per SM) keeps 128; 1024
    /// keys take chunks of 64 (the plan without the merge's cost took one tile, 16) and 37 keys one tile each; every chunk
    /// is whole tiles within the largest chunk.
    /// </summary>
    [Theory]
    [InlineData(8, 4096, 16, 528, 128)]
    [InlineData(128, 4096, 16, 528, 512)]
    [InlineData(8, 4096, 32, 264, 128)]
    [InlineData(16, 4096, 16, 528, 128)]
    [InlineData(8, 1024, 16, 528, 64)]
    [InlineData(8, 37, 16, 528, 16)]
    [InlineData(8, 100000, 16, 528, 512)]
    public void StreamPlanChunk(long groupsPerSplit, int kEnd, int tile, long slots, int expected)
    {
        int chunk = IlgpuKernels.StreamDecodeChunk(groupsPerSplit, kEnd, tile, slots);
        Assert.Equal(expected, chunk);
        Assert.Equal(0, chunk % tile);
        Assert.InRange(chunk, tile, AttentionDecodeWideKernels.MaxChunk);
    }

    /// <summary>A requested chunk is whole tiles, at least one tile and at most the largest chunk.</summary>
    [Theory]
    [InlineData(128, 16, 512, 128)]
    [InlineData(100, 16, 512, 96)]
    [InlineData(7, 16, 512, 16)]
    [InlineData(4096, 16, 512, 512)]
    [InlineData(100, 32, 500, 96)]
    [InlineData(600, 32, 500, 480)]
    public void ChunkSettingFitsWholeTiles(int requested, int tile, int max, int expected) => Assert.Equal(expected, DecodeChunkSetting.Fit(requested, tile, max));
}
