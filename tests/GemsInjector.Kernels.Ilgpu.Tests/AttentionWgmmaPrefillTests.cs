using System;
using System.Linq;
using System.Text.RegularExpressions;
using GemsInjector.Kernels.Ilgpu;
using ILGPU;
using ILGPU.Runtime;
using Xunit;

namespace GemsInjector.Kernels.Ilgpu.Tests;

/// <summary>
/// The wgmma prefill attention (<see cref="AttentionWgmmaKernels"/>, <c>GEMS_PREFILL_VARIANT=wgmma</c>): its kernel body
/// with wgmma emulated thread by thread on a 32-lane-warp simulator, every output element (poisoned with NaN) against
/// the float64 reference with the GPU harness's tolerance; the staging against the descriptor decoding; and its PTX.
/// </summary>
[Collection(SimulatorCollection.Name)]
public sealed class AttentionWgmmaPrefillTests : Half16TestBase, IClassFixture<Warp32SimulatorFixture>
{
    private readonly Warp32SimulatorFixture warp32;

    public AttentionWgmmaPrefillTests(SimulatorFixture fixture, Warp32SimulatorFixture warp32)
        : base(fixture) => this.warp32 = warp32;

    /// <summary>
    /// The emulated kernel meets the harness rule (|out − ref| ≤ 1e-4 + rtol·|ref|, ref rounded to the dtype) on every
    /// element: causal and not, grouped-query ratios 1, 2 and 4, odd and short lengths (Lq and Lk edges inside a tile and
    /// a warpgroup), lk below and above lq, several query blocks (longest first) and key tiles (all three stages cycled),
    /// few-key rows where one 16-bit rounding of the weights would already fail, and an Lk of whole tiles only (no
    /// zero-filled chunk: every copy takes the unguarded path).
    /// </summary>
    [Theory]
    [InlineData(true, 1, 2, 1, 300, 300, true, true)]
    [InlineData(false, 1, 2, 1, 300, 300, true, true)]
    [InlineData(true, 1, 4, 1, 129, 129, true, true)]
    [InlineData(false, 1, 4, 2, 129, 129, false, true)]
    [InlineData(true, 2, 2, 2, 37, 37, true, true)]
    [InlineData(false, 2, 2, 2, 37, 37, false, true)]
    [InlineData(true, 1, 4, 2, 67, 2, false, true)]
    [InlineData(false, 1, 4, 2, 67, 2, true, true)]
    [InlineData(true, 1, 2, 1, 33, 260, false, true)]
    [InlineData(false, 1, 2, 1, 33, 260, true, true)]
    [InlineData(true, 2, 4, 1, 70, 33, true, false)]
    [InlineData(false, 2, 4, 4, 65, 65, true, false)]
    [InlineData(true, 1, 1, 1, 1, 1, true, false)]
    [InlineData(false, 1, 2, 1, 3, 127, false, false)]
    [InlineData(true, 1, 1, 1, 200, 40, true, false)]
    [InlineData(true, 1, 2, 1, 64, 256, false, true)]
    public void WgmmaVariantMeetsHarnessTolerance(bool bf16, int batch, int heads, int kvHeads, int lq, int lk, bool causal, bool normal)
    {
        const int D = AttentionWgmmaKernels.D;
        int seed = 31000 + (heads * 1000) + (lq * 10) + lk + (causal ? 3 : 0) + (bf16 ? 7 : 0) + (normal ? 11 : 0);
        var (q, qv) = normal ? Normal16(seed, batch * heads * lq * D, bf16) : Random16(seed, batch * heads * lq * D, bf16, -1f, 1f);
        var (k, kv) = normal ? Normal16(seed + 1, batch * kvHeads * lk * D, bf16) : Random16(seed + 1, batch * kvHeads * lk * D, bf16, -1f, 1f);
        var (v, vv) = normal ? Normal16(seed + 2, batch * kvHeads * lk * D, bf16) : Random16(seed + 2, batch * kvHeads * lk * D, bf16);
        double scale = normal ? 1 / Math.Sqrt(D) : 0.125;
        var shape = new AttentionShape { Heads = heads, KvHeads = kvHeads, Lq = lq, Lk = lk, D = D, Scale = (float)scale, Causal = causal ? 1 : 0 };
        var got = ToFloat(Run(q, k, v, batch, shape, bf16), bf16);
        var expected = AttentionTests.Reference(qv, kv, vv, batch, heads, kvHeads, lq, lk, D, causal, (b, h, i, j) => 0, scale);
        var rounded = ToFloat(To16(expected.Select(e => (float)e).ToArray(), bf16), bf16);
        AssertClose(got, rounded.Select(e => (double)e).ToArray(), Rtol(bf16), Atol,
            $"wgmma attention {batch}x{heads}/{kvHeads} lq={lq} lk={lk} causal={causal} normal={normal} ({F(bf16)})", seed);
    }

    /// <summary>
    /// The split prefill (each group one range of keys, a partial per query row, then the decode combine) meets the same
    /// rule on every element: ranges of whole tiles and a short last range (an Lk edge inside a tile), a last range of a
    /// single key, grouped-query heads, batches, Lq edges inside a warpgroup and more than one query block.
    /// </summary>
    [Theory]
    [InlineData(true, 1, 4, 1, 16, 600, 256, true)]
    [InlineData(false, 1, 4, 1, 16, 600, 256, true)]
    [InlineData(true, 2, 2, 2, 3, 257, 128, false)]
    [InlineData(false, 1, 2, 1, 130, 200, 64, true)]
    [InlineData(true, 1, 1, 1, 64, 512, 256, true)]
    public void SplitPrefillMeetsHarnessTolerance(bool bf16, int batch, int heads, int kvHeads, int lq, int lk, int rangeKeys, bool normal)
    {
        const int D = AttentionWgmmaKernels.D;
        int seed = 34000 + (heads * 1000) + (lq * 10) + lk + rangeKeys + (bf16 ? 7 : 0);
        var (q, qv) = normal ? Normal16(seed, batch * heads * lq * D, bf16) : Random16(seed, batch * heads * lq * D, bf16, -1f, 1f);
        var (k, kv) = normal ? Normal16(seed + 1, batch * kvHeads * lk * D, bf16) : Random16(seed + 1, batch * kvHeads * lk * D, bf16, -1f, 1f);
        var (v, vv) = normal ? Normal16(seed + 2, batch * kvHeads * lk * D, bf16) : Random16(seed + 2, batch * kvHeads * lk * D, bf16);
        double scale = 1 / Math.Sqrt(D);
        var shape = new AttentionShape { Heads = heads, KvHeads = kvHeads, Lq = lq, Lk = lk, D = D, Scale = (float)scale };
        var got = ToFloat(RunSplit(q, k, v, batch, shape, rangeKeys, bf16), bf16);
        var expected = AttentionTests.Reference(qv, kv, vv, batch, heads, kvHeads, lq, lk, D, false, (b, h, i, j) => 0, scale);
        var rounded = ToFloat(To16(expected.Select(e => (float)e).ToArray(), bf16), bf16);
        AssertClose(got, rounded.Select(e => (double)e).ToArray(), Rtol(bf16), Atol,
            $"split wgmma attention {batch}x{heads}/{kvHeads} lq={lq} lk={lk} range={rangeKeys} ({F(bf16)})", seed);
    }

    /// <summary>
    /// Which calls split and how: only unmasked non-causal ones whose query blocks fill at most half the SMs, into as many
    /// ranges as fill them, each at least four tiles, in whole tiles.
    /// </summary>
    [Theory]
    [InlineData(1, 32, 16, 4096, 0, 0, 132, 4, 1024)] // Run 179's shape: 32 blocks
    [InlineData(1, 32, 200, 4096, 0, 0, 132, 2, 2048)] // two query blocks per head: 64 blocks
    [InlineData(1, 32, 16, 4096, 1, 0, 132, 1, 4096)] // causal
    [InlineData(1, 32, 16, 4096, 0, 1, 132, 1, 4096)] // masked
    [InlineData(3, 32, 16, 4096, 0, 0, 132, 1, 4096)] // 96 blocks: more than half the SMs
    [InlineData(1, 8, 16, 300, 0, 0, 132, 1, 300)] // fewer keys than two ranges need
    [InlineData(1, 8, 16, 1000, 0, 0, 132, 3, 384)] // 3 ranges of 6 tiles: the last 232 keys
    [InlineData(1, 1, 1, 100000, 0, 0, 132, 131, 768)] // 132 ranges of whole tiles: 131 cover the keys
    public void SplitPrefillRanges(int batch, int heads, int lq, int lk, int causal, int mask, int multiprocessors, int ranges, int keys)
    {
        var shape = new AttentionShape { Heads = heads, KvHeads = 1, Lq = lq, Lk = lk, D = AttentionWgmmaKernels.D, Causal = causal, HasMask = mask };
        var (gotRanges, gotKeys) = IlgpuKernels.WgmmaPrefillRanges(batch, shape, multiprocessors);
        Assert.Equal((ranges, keys), (gotRanges, gotKeys));
        Assert.True(gotRanges == 1 || (gotKeys % AttentionWgmmaKernels.BlockK == 0 && (long)(gotRanges - 1) * gotKeys < lk && (long)gotRanges * gotKeys >= lk));
    }

    /// <summary>A NaN in q reaches exactly its own output row (max.NaN, the unconditional rescale); other rows stay finite.</summary>
    [Fact]
    public void WgmmaVariantPropagatesNaNToItsRowOnly()
    {
        const int D = AttentionWgmmaKernels.D;
        const int Lq = 90;
        var (q, _) = Random16(33001, Lq * D, true, -1f, 1f);
        var (k, _) = Random16(33002, Lq * D, true, -1f, 1f);
        var (v, _) = Random16(33003, Lq * D, true);
        q[(70 * D) + 5] = NaN16(true);
        var shape = new AttentionShape { Heads = 1, KvHeads = 1, Lq = Lq, Lk = Lq, D = D, Scale = 0.125f, Causal = 1 };
        var got = ToFloat(Run(q, k, v, 1, shape, true), true);
        for (int row = 0; row < Lq; row++)
        {
            for (int c = 0; c < D; c++)
            {
                Assert.True(float.IsNaN(got[(row * D) + c]) == (row == 70), $"row {row} column {c}: {got[(row * D) + c]}");
            }
        }
    }

    [Theory]
    [InlineData("wgmma", nameof(PrefillVariant.Wgmma))]
    [InlineData(" WGMMA ", nameof(PrefillVariant.Wgmma))]
    [InlineData(null, nameof(PrefillVariant.Wgmma))]
    [InlineData("wgmma2", nameof(PrefillVariant.Wgmma))]
    [InlineData("wgmma3", nameof(PrefillVariant.Wgmma))]
    public void WgmmaVariantParsesItsSetting(string? setting, string expected) => Assert.Equal(expected, PrefillVariants.Parse(setting).ToString());

    /// <summary>
    /// The staging and the descriptor decoding agree for every element the wgmma read: Q (both warpgroups, all eight
    /// k16 steps of the head dimension), K and V of every stage; each tile covers its 16-byte slots exactly once, every
    /// descriptor's start is 1024-byte aligned up to the in-row k16 advance, and the whole layout fits the opt-in limit.
    /// </summary>
    [Fact]
    public void StagingMatchesTheDescriptors()
    {
        Assert.True(AttentionWgmmaKernels.SharedBytes <= Sm90aPtx.OptInSharedBytes);
        Assert.Equal(0, AttentionWgmmaKernels.QBytes % WgmmaGemmKernels.SwizzleAlignment);
        Assert.Equal(0, AttentionWgmmaKernels.StageBytes % WgmmaGemmKernels.SwizzleAlignment);
        const int D = AttentionWgmmaKernels.D;
        for (int warpgroup = 0; warpgroup < 2; warpgroup++)
        {
            for (int step = 0; step < D / 16; step++)
            {
                long qd = AttentionWgmmaKernels.QDescriptor(0, warpgroup) + AttentionWgmmaKernels.QAdvance(step);
                for (int row = 0; row < 64; row++)
                {
                    for (int kk = 0; kk < 16; kk++)
                    {
                        int d = (step * 16) + kk;
                        Assert.Equal(AttentionWgmmaKernels.QByte((warpgroup * 64) + row, d / 8) + ((d % 8) * 2), EmulatedWgmmaOps.KMajorByte(qd, row, kk));
                    }
                }
            }
        }

        for (int stage = 0; stage < AttentionWgmmaKernels.Stages; stage++)
        {
            for (int step = 0; step < D / 16; step++)
            {
                long kd = AttentionWgmmaKernels.KDescriptor(0, stage) + AttentionWgmmaKernels.KAdvance(step);
                for (int key = 0; key < AttentionWgmmaKernels.BlockK; key++)
                {
                    for (int kk = 0; kk < 16; kk++)
                    {
                        int d = (step * 16) + kk;
                        Assert.Equal(AttentionWgmmaKernels.KByte(stage, key, d / 8) + ((d % 8) * 2), EmulatedWgmmaOps.KMajorByte(kd, key, kk));
                    }
                }
            }

            for (int step = 0; step < AttentionWgmmaKernels.BlockK / 16; step++)
            {
                long vd = AttentionWgmmaKernels.VDescriptor(0, stage) + (step * AttentionWgmmaKernels.VAdvance);
                for (int kk = 0; kk < 16; kk++)
                {
                    int key = (step * 16) + kk;
                    for (int d = 0; d < D; d++)
                    {
                        Assert.Equal(AttentionWgmmaKernels.VByte(stage, key, d / 8) + ((d % 8) * 2), EmulatedWgmmaOps.MnMajorByte(vd, kk, d));
                    }
                }
            }

            int k0 = AttentionWgmmaKernels.StageOffset(stage);
            var kSlots = Enumerable.Range(0, AttentionWgmmaKernels.BlockK * 16).Select(c => AttentionWgmmaKernels.KByte(stage, c / 16, c % 16) - k0);
            var vSlots = Enumerable.Range(0, AttentionWgmmaKernels.BlockK * 16).Select(c => AttentionWgmmaKernels.VByte(stage, c / 16, c % 16) - k0);
            Assert.Equal(Enumerable.Range(0, AttentionWgmmaKernels.StageBytes / 16).Select(i => i * 16), kSlots.Concat(vSlots).OrderBy(x => x));
        }

        var qSlots = Enumerable.Range(0, AttentionWgmmaKernels.BlockQ * 16).Select(c => AttentionWgmmaKernels.QByte(c / 16, c % 16));
        Assert.Equal(Enumerable.Range(0, AttentionWgmmaKernels.QBytes / 16).Select(i => i * 16), qSlots.OrderBy(x => x));
        Assert.True(AttentionWgmmaKernels.StageOffset(AttentionWgmmaKernels.Stages) + WgmmaGemmKernels.SwizzleAlignment <= AttentionWgmmaKernels.SharedBytes);
    }

    /// <summary>
    /// The kernel's copy plan (one base per thread plus constants): a thread's chunk i of a tile is key thread / 16 +
    /// <see cref="AttentionWgmmaKernels.ChunkKeys"/>·i at the same head-dimension chunk, so its K and V shared bytes move
    /// by <see cref="AttentionWgmmaKernels.ChunkSharedStep"/> per chunk and by the stage bytes per stage, and the
    /// descriptors of stage s are stage 0's plus the stage offset / 16 for any 1024-byte aligned base (V's are K's plus a
    /// constant); every descriptor's high word is <see cref="AttentionWgmmaKernels.DescriptorHigh"/> and no k16 advance
    /// carries out of its low word (the asm takes low words), and Q's low word is non-zero (the scale-d predicates
    /// compare it with 0).
    /// </summary>
    [Fact]
    public void CopyPlanStepsMatchTheLayout()
    {
        const int Chunks = AttentionWgmmaKernels.D / 8;
        int perThread = AttentionWgmmaKernels.BlockK * Chunks / AttentionWgmmaKernels.GroupSize;
        Assert.Equal(4, perThread);
        for (int thread = 0; thread < AttentionWgmmaKernels.GroupSize; thread++)
        {
            int key0 = thread >> 4;
            int chunk = thread & (Chunks - 1);
            for (int stage = 0; stage < AttentionWgmmaKernels.Stages; stage++)
            {
                for (int i = 0; i < perThread; i++)
                {
                    int c = thread + (i * AttentionWgmmaKernels.GroupSize);
                    Assert.Equal((c / Chunks, c % Chunks), (key0 + (i * AttentionWgmmaKernels.ChunkKeys), chunk));
                    int step = (int)(i * AttentionWgmmaKernels.ChunkSharedStep) + (stage * AttentionWgmmaKernels.StageBytes);
                    Assert.Equal(AttentionWgmmaKernels.KByte(0, key0, chunk) + step, AttentionWgmmaKernels.KByte(stage, c / Chunks, c % Chunks));
                    Assert.Equal(AttentionWgmmaKernels.VByte(0, key0, chunk) + step, AttentionWgmmaKernels.VByte(stage, c / Chunks, c % Chunks));
                }
            }
        }

        for (uint sharedBase = 0; sharedBase + AttentionWgmmaKernels.SharedBytes <= 232448; sharedBase += 1024)
        {
            for (int warpgroup = 0; warpgroup < 2; warpgroup++)
            {
                long q = AttentionWgmmaKernels.QDescriptor(sharedBase, warpgroup);
                Assert.Equal(AttentionWgmmaKernels.DescriptorHigh, (uint)(q >> 32));
                Assert.True((q & 0x3FFF) + AttentionWgmmaKernels.QAdvance(7) <= 0x3FFF);
                Assert.NotEqual(0u, (uint)q);
            }

            for (int stage = 0; stage < AttentionWgmmaKernels.Stages; stage++)
            {
                long offset = (stage * AttentionWgmmaKernels.StageBytes) >> 4;
                Assert.Equal(AttentionWgmmaKernels.KDescriptor(sharedBase, 0) + offset, AttentionWgmmaKernels.KDescriptor(sharedBase, stage));
                Assert.Equal(AttentionWgmmaKernels.VDescriptor(sharedBase, 0) + offset, AttentionWgmmaKernels.VDescriptor(sharedBase, stage));

                // The asm gets low words and supplies the high word; no k16 advance may carry out of the address field.
                long k = AttentionWgmmaKernels.KDescriptor(sharedBase, stage);
                long v = AttentionWgmmaKernels.VDescriptor(sharedBase, stage);
                Assert.Equal(AttentionWgmmaKernels.DescriptorHigh, (uint)(k >> 32));
                Assert.Equal((uint)k + AttentionWgmmaKernels.KToVDescriptor, (uint)v);
                Assert.Equal(AttentionWgmmaKernels.DescriptorHigh, (uint)(v >> 32));
                Assert.True((k & 0x3FFF) + AttentionWgmmaKernels.KAdvance(7) <= 0x3FFF);
                Assert.True((v & 0x3FFF) + (3 * AttentionWgmmaKernels.VAdvance) <= 0x3FFF);
            }
        }
    }

    /// <summary>
    /// Per format: the sm_90a rewrite, one S block (fence, eight m64n64k16 from two descriptors, the first overwriting the
    /// scores, commit) and one P·V block (fence, eight m64n128k16 with A from registers, transpose-B 1, commit), two
    /// waits (in the loop and before the store), the registers declared once before any use, nothing left in local
    /// memory between the first and the last wgmma, and no operand placeholder left.
    /// </summary>
    [Theory]
    [InlineData(typeof(PrefillBf16), "bf16")]
    [InlineData(typeof(PrefillF16), "f16")]
    public void PtxHasTheWarpgroupBlocks(Type format, string type)
    {
        string compiled = CompilePtx(format);
        Assert.True(Sm90aPtx.Needs(compiled));
        string ptx = Sm90aPtx.Rewrite(compiled)!;
        Assert.NotNull(ptx);
        Assert.Matches(new Regex(@"^\.target sm_90a\s*$", RegexOptions.Multiline), ptx);
        System.IO.File.WriteAllText(System.IO.Path.Combine(System.IO.Path.GetTempPath(), $"Attention16Wgmma_{type}.ptx"), ptx);

        Assert.Equal(8, Count(ptx, $"wgmma.mma_async.sync.aligned.m64n64k16.f32.{type}.{type} "));
        Assert.Equal(8, Count(ptx, $"wgmma.mma_async.sync.aligned.m64n128k16.f32.{type}.{type} "));
        Assert.Equal(16, Count(ptx, "wgmma.mma_async"));
        Assert.Equal(1, Count(ptx, "fkd0, fz, 1, 1, 0, 0;"));
        Assert.Equal(7, Regex.Matches(ptx, @"fkd\d, fp, 1, 1, 0, 0;").Count);
        Assert.Equal(4, Regex.Matches(ptx, @"\{fph\d+,fph\d+,fph\d+,fph\d+\}, fvd\d, fp, 1, 1, 1;").Count);
        Assert.Equal(4, Regex.Matches(ptx, @"\{fpl\d+,fpl\d+,fpl\d+,fpl\d+\}, fvd\d, fp, 1, 1, 1;").Count);
        Assert.Equal(2, Count(ptx, "wgmma.fence.sync.aligned;"));
        Assert.Equal(2, Count(ptx, "wgmma.commit_group.sync.aligned;"));
        Assert.Equal(2, Count(ptx, "wgmma.wait_group.sync.aligned 0;"));
        Assert.Equal(1, Count(ptx, "fence.proxy.async.shared::cta;"));
        Assert.Equal(1, Count(ptx, "cp.async.wait_group 0;"));
        Assert.Contains("cp.async.cg.shared.global", ptx, StringComparison.Ordinal);
        Assert.Contains("__dyn_shared_alloca;", ptx, StringComparison.Ordinal);
        Assert.Matches(new Regex(@"\.maxntid\s+256"), ptx);

        // Softmax: 32 weights + 2 rescale factors through ex2; the scale in two blocks, one of them masking every score by
        // a select (per score, no branch; the kernel picks the block by a group-uniform test per tile).
        Assert.Equal(34, Count(ptx, "ex2.approx.ftz.f32"));
        Assert.Equal(32, Regex.Matches(ptx, @"selp\.f32 fs\d+, fs\d+, 0fFF800000, xp;").Count);
        Assert.Equal(2, Count(ptx, "mul.f32 fs31, fs31, "));

        Assert.Equal(1, Count(ptx, ".reg .f32 fo<64>;"));
        Assert.Equal(1, Count(ptx, ".reg .f32 fs<32>;"));
        Assert.DoesNotContain(".func", ptx, StringComparison.Ordinal);
        int first = ptx.IndexOf("wgmma.mma_async", StringComparison.Ordinal);
        int last = ptx.LastIndexOf("wgmma.mma_async", StringComparison.Ordinal);
        Assert.True(ptx.IndexOf(".reg .f32 fo<64>;", StringComparison.Ordinal) < first);
        Assert.DoesNotMatch(@"(ld|st)\.local", ptx[first..last]);
        Assert.DoesNotMatch(new Regex(@"%\d"), ptx);
    }

    /// <summary>
    /// The split kernel: the same sixteen wgmma per tile and no local memory around them, and in place of the 16-bit
    /// stores the partial's float32 pairs (16 blocks of two rows) and the two rows' (m, l).
    /// </summary>
    [Theory]
    [InlineData(typeof(PrefillBf16), "bf16")]
    [InlineData(typeof(PrefillF16), "f16")]
    public void SplitPtxStoresPartials(Type format, string type)
    {
        string ptx = Sm90aPtx.Rewrite(CompilePtx(format, nameof(AttentionWgmmaKernels.Attention16WgmmaSplit)))!;
        Assert.NotNull(ptx);
        Assert.Equal(16, Count(ptx, "wgmma.mma_async"));
        Assert.Equal(8, Count(ptx, $"wgmma.mma_async.sync.aligned.m64n128k16.f32.{type}.{type} "));
        Assert.Equal(34, Count(ptx, "st.global.v2.f32"));
        Assert.Equal(2, Count(ptx, "mul.f32 xm"));
        Assert.DoesNotContain("cvt.rn.bf16x2.f32 xpk", ptx, StringComparison.Ordinal);
        Assert.DoesNotContain("cvt.rn.f16x2.f32 xpk", ptx, StringComparison.Ordinal);
        Assert.DoesNotContain(".func", ptx, StringComparison.Ordinal);
        int first = ptx.IndexOf("wgmma.mma_async", StringComparison.Ordinal);
        int last = ptx.LastIndexOf("wgmma.mma_async", StringComparison.Ordinal);
        Assert.DoesNotMatch(@"(ld|st)\.local", ptx[first..last]);
        Assert.DoesNotMatch(new Regex(@"%\d"), ptx);
    }

    [Fact]
    public void EmulatedKernelCompilesToPtxWithoutWgmma()
    {
        string ptx = Sm90Ptx.Of(typeof(AttentionWgmmaKernels).GetMethod(nameof(AttentionWgmmaKernels.Attention16WgmmaEmulated))!);
        Assert.False(Sm90aPtx.Needs(ptx));
    }

    private static int Count(string text, string what) => Regex.Matches(text, Regex.Escape(what)).Count;

    private static string CompilePtx(Type format, string kernel = nameof(AttentionWgmmaKernels.Attention16Wgmma))
    {
        var method = typeof(AttentionWgmmaKernels).GetMethod(kernel)!.MakeGenericMethod(format);
        return Sm90Ptx.Of(method, new KernelSpecialization(AttentionWgmmaKernels.GroupSize, null));
    }

    private ushort[] Run(ushort[] q, ushort[] k, ushort[] v, int batch, AttentionShape shape, bool bf16)
    {
        var acc = warp32.Accelerator;
        var config = AttentionWgmmaKernels.Config(batch, shape.Heads, shape.Lq);
        using var qb = acc.Allocate1D(q);
        using var kb = acc.Allocate1D(k);
        using var vb = acc.Allocate1D(v);
        using var ob = acc.Allocate1D(Enumerable.Repeat(NaN16(bf16), q.Length).ToArray());
        using var scratch = acc.Allocate1D<float>(AttentionWgmmaKernels.EmulationScratch((long)config.GridDim.Size));
        acc.LoadStreamKernel<ArrayView<ushort>, ArrayView<ushort>, ArrayView<ushort>, ArrayView<ushort>, ArrayView<float>, AttentionShape, int>(
            AttentionWgmmaKernels.Attention16WgmmaEmulated)(config, qb.View, kb.View, vb.View, ob.View, scratch.View, shape, bf16 ? 1 : 0);
        acc.Synchronize();
        return ob.GetAsArray1D();
    }

    private ushort[] RunSplit(ushort[] q, ushort[] k, ushort[] v, int batch, AttentionShape shape, int rangeKeys, bool bf16)
    {
        var acc = warp32.Accelerator;
        int ranges = (shape.Lk + rangeKeys - 1) / rangeKeys;
        long parts = (long)batch * shape.Heads * shape.Lq * ranges;
        var config = AttentionWgmmaKernels.SplitConfig(batch, shape.Heads, shape.Lq, ranges);
        using var qb = acc.Allocate1D(q);
        using var kb = acc.Allocate1D(k);
        using var vb = acc.Allocate1D(v);
        using var partO = acc.Allocate1D(Enumerable.Repeat(float.NaN, (int)(parts * AttentionWgmmaKernels.D)).ToArray());
        using var partML = acc.Allocate1D(Enumerable.Repeat(float.NaN, (int)(parts * 2)).ToArray());
        using var ob = acc.Allocate1D(Enumerable.Repeat(NaN16(bf16), q.Length).ToArray());
        using var scratch = acc.Allocate1D<float>(AttentionWgmmaKernels.EmulationScratch((long)config.GridDim.Size));
        var split = new PrefillSplit { Keys = rangeKeys, Count = ranges };
        acc.LoadStreamKernel<ArrayView<ushort>, ArrayView<ushort>, ArrayView<ushort>, ArrayView<float>, ArrayView<float>, ArrayView<float>, AttentionShape, PrefillSplit, int>(
            AttentionWgmmaKernels.Attention16WgmmaSplitEmulated)(config, qb.View, kb.View, vb.View, partO.View, partML.View, scratch.View, shape, split, bf16 ? 1 : 0);
        var rows = IlgpuKernels.QueryRowsAsHeads(shape);
        acc.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<ushort>, AttentionShape, int, int>(AttentionDecodeKernels.DecodeCombine16)(
            new KernelConfig(new Index3D(rows.Heads, batch, 1), new Index3D(AttentionWgmmaKernels.D, 1, 1)), partO.View, partML.View, ob.View, rows, ranges, bf16 ? 1 : 0);
        acc.Synchronize();
        return ob.GetAsArray1D();
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
}
