using System;
using System.Linq;
using System.Text.RegularExpressions;
using GemsInjector.Kernels.Ilgpu;
using ILGPU;
using ILGPU.Backends.EntryPoints;
using ILGPU.Backends.PTX;
using ILGPU.Runtime;
using ILGPU.Runtime.Cuda;
using Xunit;

namespace GemsInjector.Kernels.Ilgpu.Tests;

/// <summary>
/// The wgmma GEMM: its PTX (rewritten to sm_90a; fence, four k16 wgmma and a commit per stage for each format and B
/// layout; accumulators declared once; no operand placeholder left; no wgmma instruction behind a divergent branch)
/// and its kernel body run on the CPU with wgmma emulated from the descriptors, against float64 references with NaN-poisoned outputs on shapes that cut every tile
/// edge (M, N not multiples of the 128 × 256 tile, K not a multiple of the 64-deep stage), both formats and B layouts,
/// bmm, addmm with a row or matrix bias, and split-K.
/// </summary>
[Collection(SimulatorCollection.Name)]
public sealed class WgmmaGemmTests : Half16TestBase, IClassFixture<Warp32SimulatorFixture>
{
    private readonly Warp32SimulatorFixture warp32;
    private readonly Action<KernelConfig, ArrayView<ushort>, ArrayView<ushort>, ArrayView<ushort>, ArrayView<ushort>, ArrayView<float>, ArrayView<float>, TensorCoreShape, int, int, int, int, int> emulated;
    private readonly Action<KernelConfig, ArrayView<float>, ArrayView<ushort>, ArrayView<ushort>, HalfGemvShape, int> reduce;

    public WgmmaGemmTests(SimulatorFixture fixture, Warp32SimulatorFixture warp32)
        : base(fixture)
    {
        this.warp32 = warp32;
        emulated = warp32.Accelerator.LoadStreamKernel<ArrayView<ushort>, ArrayView<ushort>, ArrayView<ushort>, ArrayView<ushort>, ArrayView<float>, ArrayView<float>, TensorCoreShape, int, int, int, int, int>(
            WgmmaGemmKernels.Gemm16WgmmaEmulated);
        reduce = warp32.Accelerator.LoadStreamKernel<ArrayView<float>, ArrayView<ushort>, ArrayView<ushort>, HalfGemvShape, int>(HalfGemvKernels.GemvReduce16);
    }

    private static string CompilePtx(string kernelName, KernelSpecialization specialization = default, Type? operands = null, Type? pipeline = null)
    {
        var method = typeof(WgmmaGemmKernels).GetMethod(kernelName)!;
        if (operands is not null)
        {
            method = method.MakeGenericMethod(operands, pipeline ?? typeof(TwoAhead));
        }

        return Sm90Ptx.Of(method, specialization);
    }

    private static int Count(string text, string what) => Regex.Matches(text, Regex.Escape(what)).Count;

    [Theory]
    [InlineData(typeof(Bf16KMajorB), "bf16", 0, typeof(TwoAhead))]
    [InlineData(typeof(Bf16MnMajorB), "bf16", 1, typeof(TwoAhead))]
    [InlineData(typeof(F16KMajorB), "f16", 0, typeof(TwoAhead))]
    [InlineData(typeof(F16MnMajorB), "f16", 1, typeof(TwoAhead))]
    [InlineData(typeof(Bf16KMajorB), "bf16", 0, typeof(ThreeAhead))]
    [InlineData(typeof(F16MnMajorB), "f16", 1, typeof(ThreeAhead))]
    [InlineData(typeof(Bf16MnMajorB), "bf16", 1, typeof(TwoAheadGrouped))]
    [InlineData(typeof(F16KMajorB), "f16", 0, typeof(TwoAheadGrouped))]
    [InlineData(typeof(Bf16MnMajorB), "bf16", 1, typeof(PersistentGrouped))]
    [InlineData(typeof(Bf16KMajorB), "bf16", 0, typeof(PersistentGrouped))]
    [InlineData(typeof(Bf16MnMajorB), "bf16", 1, typeof(PersistentGroupedStores))]
    [InlineData(typeof(F16KMajorB), "f16", 0, typeof(PersistentGroupedStores))]
    public void PtxIsRewrittenToSm90aWithTheWarpgroupInstructions(Type operands, string type, int transposeImmediate, Type pipeline)
    {
        string compiled = CompilePtx(nameof(WgmmaGemmKernels.Gemm16Wgmma), new KernelSpecialization(WgmmaGemmKernels.GroupSize, null), operands, pipeline);
        Assert.True(Sm90aPtx.Needs(compiled));

        // ILGPU writes its newest target, sm_80, also for SM_90: exactly one plain target line to replace.
        Assert.Single(Regex.Matches(compiled, @"^\.target sm_\d+\s*$", RegexOptions.Multiline));
        string ptx = Sm90aPtx.Rewrite(compiled)!;
        Assert.NotNull(ptx);
        Assert.Matches(new Regex(@"^\.target sm_90a\s*$", RegexOptions.Multiline), ptx);
        Assert.Matches(new Regex(@"^\.version 8\.\d+\s*$", RegexOptions.Multiline), ptx);
        Assert.Single(Regex.Matches(ptx, @"^\.target ", RegexOptions.Multiline));
        Assert.Equal(compiled[compiled.IndexOf(".address_size", StringComparison.Ordinal)..], ptx[ptx.IndexOf(".address_size", StringComparison.Ordinal)..]);

        // One stage multiply at one call site: a fence, four k16 wgmma of this instantiation's format and transpose-B
        // immediate, a commit. ILGPU must neither drop nor duplicate the asm block, nor keep another variant's.
        Assert.Equal(WgmmaGemmKernels.KSteps, Count(ptx, "wgmma.mma_async.sync.aligned.m64n256k16.f32."));
        Assert.Equal(WgmmaGemmKernels.KSteps, Count(ptx, $"wgmma.mma_async.sync.aligned.m64n256k16.f32.{type}.{type} "));
        Assert.Equal(WgmmaGemmKernels.KSteps, Count(ptx, $"wgp, 1, 1, 0, {transposeImmediate};"));
        Assert.Equal(1, Count(ptx, "wgmma.fence.sync.aligned;"));
        Assert.Equal(1, Count(ptx, "wgmma.commit_group.sync.aligned;"));
        Assert.Equal(1, Count(ptx, "wgmma.wait_group.sync.aligned 1;"));
        Assert.Equal(1, Count(ptx, "wgmma.wait_group.sync.aligned 0;"));
        Assert.Single(Regex.Matches(ptx, @"setp\.ne\.b64 wgp,\s*%rd\d+, 0;"));

        // No wgmma instruction under a divergent branch: the one skip (a warpgroup without rows) is the asm's own
        // bra.uni, and no plain `@%p bra` of ILGPU's leads into a block holding a wgmma (else ptxas serializes every
        // wgmma of the kernel: C7518, a wait after each one).
        Assert.Equal(1, Count(ptx, "@wgskip bra.uni WGMMA_SKIP;"));
        Assert.Empty(WgmmaBlocksUnderDivergentBranches(ptx));
        Assert.Contains("fence.proxy.async.shared::cta;", ptx, StringComparison.Ordinal);
        Assert.Contains("cp.async.cg.shared.global", ptx, StringComparison.Ordinal);
        bool three = pipeline == typeof(ThreeAhead);
        Assert.Equal(three ? 0 : 1, Count(ptx, "cp.async.wait_group 1;"));
        Assert.Equal(three ? 1 : 0, Count(ptx, "cp.async.wait_group 2;"));
        bool persistent = pipeline == typeof(PersistentGrouped) || pipeline == typeof(PersistentGroupedStores);
        Assert.Equal(three || persistent ? 2 : 1, Count(ptx, "bar.sync"));
        bool stores = pipeline == typeof(PersistentGroupedStores);
        Assert.Equal(stores ? 8 * 8 : 0, Count(ptx, "x2.f32 wgh"));
        Assert.Equal(stores ? 8 * 8 : 0, Count(ptx, $"cvt.rn.{type}x2.f32 wgh"));
        Assert.Equal(stores ? 8 * 8 : 0, Count(ptx, "st.global.b32 [wgc"));
        Assert.Contains("__dyn_shared_alloca;", ptx, StringComparison.Ordinal);
        Assert.Matches(new Regex(@"\.maxntid\s+256"), ptx);

        // The accumulators: one declaration in the one function, before any use.
        Assert.Equal(1, Count(ptx, ".reg .f32 wga<128>;"));
        Assert.DoesNotContain(".func", ptx, StringComparison.Ordinal);
        int declaration = ptx.IndexOf(".reg .f32 wga<128>;", StringComparison.Ordinal);
        Assert.True(declaration < ptx.IndexOf("wgmma.mma_async", StringComparison.Ordinal) && declaration < ptx.IndexOf(", wga0;", StringComparison.Ordinal));

        // Every operand placeholder was substituted (a leftover %0 would be an undefined PTX name).
        Assert.DoesNotMatch(new Regex(@"%\d"), ptx);
    }

    /// <summary>
    /// The check above finds what ILGPU makes of a C# <c>if</c> on a per-thread value around a wgmma (a predicated plain
    /// <c>bra</c> to the block, or one jumping over it) and accepts the same code behind <c>bra.uni</c>.
    /// </summary>
    [Fact]
    public void DivergentBranchCheckFindsAWgmmaBehindAPlainBranch()
    {
        const string Taken = "L_1:\n\tsetp.lt.s32\t%p1, %r1, %r2;\n\t@%p1 bra\tL_2;\n\tbra.uni\tL_3;\nL_2:\n\twgmma.fence.sync.aligned;\n\tbra.uni\tL_3;\nL_3:\n\tret;\n";
        const string FallThrough = "L_1:\n\t@%p1 bra\tL_3;\n\n\twgmma.wait_group.sync.aligned 1;\nL_3:\n\tret;\n";
        Assert.Equal(new[] { "L_2" }, WgmmaBlocksUnderDivergentBranches(Taken));
        Assert.Single(WgmmaBlocksUnderDivergentBranches(FallThrough));
        Assert.Empty(WgmmaBlocksUnderDivergentBranches(Taken.Replace("@%p1 bra\t", "@%p1 bra.uni\t", StringComparison.Ordinal)));
        Assert.Empty(WgmmaBlocksUnderDivergentBranches(FallThrough.Replace("@%p1 bra\t", "@%p1 bra.uni\t", StringComparison.Ordinal)));
    }

    /// <summary>
    /// The basic blocks (split at labels and after branches) that hold a <c>wgmma.</c> instruction and are entered
    /// straight from a divergent branch: the target of a predicated <c>bra</c> without <c>.uni</c>, or the block such a
    /// branch falls through to. Named by label (or the first line of an unlabelled block).
    /// </summary>
    internal static string[] WgmmaBlocksUnderDivergentBranches(string ptx)
    {
        var label = new Regex(@"^\s*([A-Za-z_$][\w$]*):\s*$");
        var divergent = new Regex(@"^\s*@!?%?[\w$]+\s+bra\s+([A-Za-z_$][\w$]*)\s*;");
        var blocks = new System.Collections.Generic.List<(string Name, bool Wgmma, string? DivergentTarget)>();
        string? name = null;
        bool wgmma = false;
        bool open = false;
        foreach (string raw in ptx.Split('\n'))
        {
            string line = raw.Trim();
            var labelMatch = label.Match(line);
            if (labelMatch.Success)
            {
                if (open)
                {
                    blocks.Add((name!, wgmma, null));
                }

                (name, wgmma, open) = (labelMatch.Groups[1].Value, false, true);
                continue;
            }

            if (line.Length == 0)
            {
                continue;
            }

            if (!open)
            {
                (name, wgmma, open) = (line, false, true);
            }

            wgmma |= line.Contains("wgmma.", StringComparison.Ordinal);
            if (Regex.IsMatch(line, @"(^|\s)bra(\.uni)?\s"))
            {
                var branch = divergent.Match(line);
                blocks.Add((name!, wgmma, branch.Success ? branch.Groups[1].Value : null));
                open = false;
            }
        }

        if (open)
        {
            blocks.Add((name!, wgmma, null));
        }

        var targets = blocks.Where(b => b.DivergentTarget is not null).Select(b => b.DivergentTarget!).ToHashSet(StringComparer.Ordinal);
        return blocks.Where((b, i) => b.Wgmma && (targets.Contains(b.Name) || (i > 0 && blocks[i - 1].DivergentTarget is not null))).Select(b => b.Name).ToArray();
    }

    [Fact]
    public void EmulatedKernelCompilesToPtxWithoutWgmma()
    {
        string ptx = CompilePtx(nameof(WgmmaGemmKernels.Gemm16WgmmaEmulated));
        Assert.False(Sm90aPtx.Needs(ptx));
        Assert.Contains(".entry", ptx, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(".version 8.0\n.target sm_90\n.address_size 64\n", ".version 8.0\n.target sm_90a\n.address_size 64\n")]
    [InlineData(".version 7.8\n.target sm_90\n.address_size 64\n", ".version 8.0\n.target sm_90a\n.address_size 64\n")]
    [InlineData(".version 8.3\n.target sm_90, debug\n", ".version 8.3\n.target sm_90a, debug\n")]
    [InlineData(".version 8.0\n.target sm_80\n", ".version 8.0\n.target sm_90a\n")]
    [InlineData(".version 8.0\n.target sm_90a\n", null)]
    [InlineData(".target sm_90\n", null)]
    public void HeaderRewrite(string ptx, string? expected) => Assert.Equal(expected, Sm90aPtx.Rewrite(ptx));

    [Theory]
    [InlineData("\twgmma.fence.sync.aligned;\n", true)]
    [InlineData("\tmma.sync.aligned.m16n8k8.row.col.f64.f64.f64.f64 {d0,d1,d2,d3}, {a0,a1,a2,a3}, {b0,b1}, {d0,d1,d2,d3};\n", true)]
    [InlineData("\tcp.async.bulk.shared::cluster.global.mbarrier::complete_tx::bytes [d], [s], 16384, [b];\n", true)]
    [InlineData("\tcp.async.cg.shared.global [d], [s], 16;\n", false)]
    [InlineData("\tmma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {d0,d1,d2,d3}, {a0,a1,a2,a3}, {b0,b1}, {d0,d1,d2,d3};\n", false)]
    public void NeedsTheRewriteForHopperOnlyInstructions(string body, bool needs) => Assert.Equal(needs, Sm90aPtx.Needs(".version 8.0\n.target sm_80\n" + body));

    /// <summary>Descriptor bits: start address >> 4 in 0-13, leading byte offset >> 4 in 16-29, stride byte offset >> 4 in 32-45, 128B swizzle (1) in 62-63.</summary>
    [Fact]
    public void DescriptorBitLayout()
    {
        long d = WgmmaGemmKernels.Descriptor(0x1_2400, 8192, 1024);
        Assert.Equal(0x1240L, d & 0x3FFF);
        Assert.Equal(8192L >> 4, (d >> 16) & 0x3FFF);
        Assert.Equal(1024L >> 4, (d >> 32) & 0x3FFF);
        Assert.Equal(0L, (d >> 49) & 7);
        Assert.Equal(1L, (d >> 62) & 3);
        Assert.Equal(0L, d & (0x3L << 14));
        Assert.Equal(0x4000_0040_0200_1240L, d);
    }

    /// <summary>
    /// The staging and the descriptor decoding agree for every element of a stage: the chunk a thread stores for (row, k)
    /// is where the emulated tensor core reads (row, k), in both B layouts and for every k16 step; and each layout covers
    /// each 16-byte slot of its stage exactly once, with the stages 1024-byte aligned.
    /// </summary>
    [Fact]
    public void StagingMatchesTheDescriptors()
    {
        Assert.Equal(0, WgmmaGemmKernels.StageBytes % WgmmaGemmKernels.SwizzleAlignment);
        Assert.Equal(0, WgmmaGemmKernels.AStageBytes % WgmmaGemmKernels.SwizzleAlignment);
        Assert.True(WgmmaGemmKernels.SharedBytes <= Sm90aPtx.OptInSharedBytes);
        for (int stage = 0; stage < WgmmaGemmKernels.Stages; stage++)
        {
            for (int step = 0; step < WgmmaGemmKernels.KSteps; step++)
            {
                for (int warpgroup = 0; warpgroup < 2; warpgroup++)
                {
                    long ad = WgmmaGemmKernels.ADescriptor(0, stage, warpgroup) + (step * WgmmaGemmKernels.KMajorAdvance);
                    for (int row = 0; row < 64; row++)
                    {
                        for (int k = 0; k < 16; k++)
                        {
                            int kk = (step * 16) + k;
                            int stored = WgmmaGemmKernels.AStageOffset(stage) + WgmmaGemmKernels.KRowByte((warpgroup * 64) + row, kk / 8) + ((kk % 8) * 2);
                            Assert.Equal(stored, EmulatedWgmmaOps.KMajorByte(ad, row, k));
                        }
                    }
                }

                long bk = WgmmaGemmKernels.BDescriptor(0, stage, 1) + (step * WgmmaGemmKernels.KMajorAdvance);
                long bn = WgmmaGemmKernels.BDescriptor(0, stage, 0) + (step * WgmmaGemmKernels.MnMajorAdvance);
                for (int n = 0; n < WgmmaGemmKernels.BlockN; n++)
                {
                    for (int k = 0; k < 16; k++)
                    {
                        int kk = (step * 16) + k;
                        Assert.Equal(WgmmaGemmKernels.BStageOffset(stage) + WgmmaGemmKernels.KRowByte(n, kk / 8) + ((kk % 8) * 2), EmulatedWgmmaOps.KMajorByte(bk, n, k));
                        Assert.Equal(WgmmaGemmKernels.BStageOffset(stage) + WgmmaGemmKernels.MnByte(kk, n / 8) + ((n % 8) * 2), EmulatedWgmmaOps.MnMajorByte(bn, k, n));
                    }
                }
            }
        }

        AssertCoversOnce(Enumerable.Range(0, WgmmaGemmKernels.AStageBytes / 16).Select(q => WgmmaGemmKernels.KRowByte(q / 8, q % 8)), WgmmaGemmKernels.AStageBytes);
        AssertCoversOnce(Enumerable.Range(0, WgmmaGemmKernels.BStageBytes / 16).Select(q => WgmmaGemmKernels.KRowByte(q / 8, q % 8)), WgmmaGemmKernels.BStageBytes);
        AssertCoversOnce(Enumerable.Range(0, WgmmaGemmKernels.BStageBytes / 16).Select(q => WgmmaGemmKernels.MnByte(q / 32, q % 32)), WgmmaGemmKernels.BStageBytes);
    }

    private static void AssertCoversOnce(System.Collections.Generic.IEnumerable<int> chunkBytes, int stageBytes) =>
        Assert.Equal(Enumerable.Range(0, stageBytes / 16).Select(i => i * 16), chunkBytes.OrderBy(x => x));

    [Theory]
    [InlineData(true, 1, 130, 72, 264, true, false, false)]
    [InlineData(false, 1, 130, 72, 264, true, true, false)]
    [InlineData(true, 1, 130, 72, 264, false, false, false)]
    [InlineData(false, 1, 70, 200, 136, false, true, true)]
    [InlineData(true, 1, 40, 136, 24, true, true, true)]
    [InlineData(false, 1, 200, 64, 300, true, false, false)]
    [InlineData(true, 2, 33, 80, 40, false, true, false)]
    [InlineData(false, 2, 65, 24, 264, true, true, true)]
    [InlineData(true, 1, 17, 8, 16, false, false, false)]
    [InlineData(true, 1, 40, 520, 136, false, true, false)]
    [InlineData(false, 1, 70, 456, 264, true, false, false)]
    public void EmulatedKernelMatchesFloat64(bool bf16, int batch, int m, int k, int n, bool transposeB, bool bias, bool biasIsMatrix)
    {
        RunEmulated(bf16, batch, m, k, n, transposeB, bias, biasIsMatrix, requestedSplits: 1, breakSwizzle: false);
        RunEmulated(bf16, batch, m, k, n, transposeB, bias, biasIsMatrix, requestedSplits: 1, breakSwizzle: false, lookahead: 3);
    }

    /// <summary>Split-K forced on the emulation: chunks of whole 64-deep stages, the last shorter, reduced by GemvReduce16.</summary>
    [Theory]
    [InlineData(true, 70, 328, 136, true, true, false, 3)]
    [InlineData(false, 40, 200, 264, false, true, true, 4)]
    [InlineData(true, 130, 136, 40, false, false, false, 2)]
    public void EmulatedSplitKMatchesFloat64(bool bf16, int m, int k, int n, bool transposeB, bool bias, bool biasIsMatrix, int splits)
    {
        RunEmulated(bf16, 1, m, k, n, transposeB, bias, biasIsMatrix, splits, breakSwizzle: false);
        RunEmulated(bf16, 1, m, k, n, transposeB, bias, biasIsMatrix, splits, breakSwizzle: false, lookahead: 3);
    }

    /// <summary>Chunks stored one slot off their swizzled place (a wrong XOR) are read back wrong by the descriptor: the run must miss the reference.</summary>
    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void BrokenSwizzleFails(bool transposeB) =>
        Assert.ThrowsAny<Exception>(() => RunEmulated(true, 1, 70, 128, 136, transposeB, false, false, 1, breakSwizzle: true));

    /// <summary>
    /// Tiles handed out in bands of tile rows (wgmma-g's order, here with bands of 2 and 16 rows): a short last band,
    /// a band taller than the grid, batches and split-K chunks along z; every element written once, as the reference.
    /// </summary>
    [Theory]
    [InlineData(true, 1, 300, 72, 264, true, true, false, 1, 2)]
    [InlineData(false, 1, 300, 136, 520, false, false, false, 1, 2)]
    [InlineData(true, 2, 200, 64, 296, false, true, true, 1, 16)]
    [InlineData(false, 1, 260, 200, 264, true, true, false, 2, 2)]
    public void EmulatedBandOrderMatchesFloat64(bool bf16, int batch, int m, int k, int n, bool transposeB, bool bias, bool biasIsMatrix, int splits, int rasterRows) =>
        RunEmulated(bf16, batch, m, k, n, transposeB, bias, biasIsMatrix, splits, breakSwizzle: false, lookahead: 2, rasterRows: rasterRows);

    /// <summary>
    /// The persistent grid (wgmma-p): fewer groups than tiles, each looping over tiles id, id + groups, .. in the band
    /// order and requesting the next tile's first stages before the epilogue; odd tile counts per group, a group with
    /// one tile less, batches and split-K along z, edges; a group count of one runs every tile in one group.
    /// </summary>
    [Theory]
    [InlineData(true, 1, 300, 200, 264, true, true, false, 1, 4)]
    [InlineData(false, 1, 300, 136, 520, false, false, false, 1, 2)]
    [InlineData(true, 2, 200, 64, 296, false, true, true, 1, 3)]
    [InlineData(false, 1, 260, 200, 264, true, true, false, 2, 1)]
    [InlineData(true, 1, 70, 24, 600, false, false, false, 1, 2)]
    public void EmulatedPersistentMatchesFloat64(bool bf16, int batch, int m, int k, int n, bool transposeB, bool bias, bool biasIsMatrix, int splits, int groups) =>
        RunEmulated(bf16, batch, m, k, n, transposeB, bias, biasIsMatrix, splits, breakSwizzle: false, lookahead: 2, rasterRows: 2, persistentGroups: groups);

    /// <summary>
    /// wgmma-pe: whole tiles (no split-K, no bias, aligned pairs) store alpha · accumulators from the asm, every other
    /// tile (edges, bias, split-K partials, unpaired stores) keeps the element-wise epilogue; both in one run.
    /// </summary>
    [Theory]
    [InlineData(true, 1, 300, 72, 520, false, false, 1, 4, 0.75f)]
    [InlineData(false, 1, 256, 136, 512, true, false, 1, 3, 1f)]
    [InlineData(true, 2, 256, 64, 256, true, true, 1, 1, 1f)]
    [InlineData(false, 1, 384, 200, 256, false, false, 2, 2, 1f)]
    [InlineData(false, 2, 130, 64, 264, false, false, 1, 2, -1.5f)]
    public void EmulatedAsmEpilogueMatchesFloat64(bool bf16, int batch, int m, int k, int n, bool transposeB, bool bias, int splits, int groups, float alpha) =>
        RunEmulated(bf16, batch, m, k, n, transposeB, bias, false, splits, breakSwizzle: false, lookahead: 2, rasterRows: 2, persistentGroups: groups, asmEpilogue: true, alpha: alpha);

    /// <summary>The persistent grid: per z an even share of the SMs, never more groups than tiles; one group per tile without an SM count.</summary>
    [Theory]
    [InlineData(1, 4096, 4096, 132, 132)]
    [InlineData(1, 256, 512, 132, 4)]
    [InlineData(4, 4096, 4096, 132, 33)]
    [InlineData(200, 4096, 4096, 132, 1)]
    [InlineData(1, 300, 520, 0, 9)]
    public void PersistentGridTakesTheSms(int z, int m, int n, int sms, int groups)
    {
        var config = WgmmaLaunch.PersistentConfig(z, m, n, sms);
        Assert.Equal(new Index3D(groups, 1, z), config.GridDim);
        Assert.Equal(WgmmaLaunch.Config(z, m, n).GroupDim, config.GroupDim);
    }

    /// <summary>The band order is a bijection of the grid: every tile exactly once, groups of one band column consecutive.</summary>
    [Theory]
    [InlineData(16, 32, 16)]
    [InlineData(20, 33, 16)]
    [InlineData(2, 3, 2)]
    [InlineData(5, 7, 16)]
    [InlineData(3, 1, 16)]
    [InlineData(7, 9, 0)]
    public void BandOrderCoversEveryTileOnce(int columns, int rows, int rasterRows)
    {
        var tiles = new System.Collections.Generic.List<(int Column, int Row)>();
        for (int y = 0; y < rows; y++)
        {
            for (int x = 0; x < columns; x++)
            {
                tiles.Add(WgmmaGemmKernels.TileOf(x, y, columns, rows, rasterRows));
            }
        }

        Assert.Equal(columns * rows, tiles.Distinct().Count());
        Assert.All(tiles, t => Assert.True(t.Column >= 0 && t.Column < columns && t.Row >= 0 && t.Row < rows));
        if (rasterRows > 0)
        {
            // Launch order walks down a band's column first.
            int first = Math.Min(rasterRows, rows);
            Assert.Equal(Enumerable.Range(0, first).Select(r => (0, r)), tiles.Take(first));
        }
    }

    private void RunEmulated(bool bf16, int batch, int m, int k, int n, bool transposeB, bool bias, bool biasIsMatrix, int requestedSplits, bool breakSwizzle, int lookahead = 2, int rasterRows = 0, int persistentGroups = 0,
        bool asmEpilogue = false, float? alpha = null)
    {
        int seed = 9100 + (m * 7) + (k * 5) + n + (bf16 ? 1 : 0) + (transposeB ? 2 : 0) + (bias ? 4 : 0) + (biasIsMatrix ? 8 : 0) + batch + (requestedSplits * 1000);
        var acc = warp32.Accelerator;
        var (a, av) = Random16(seed, batch * m * k, bf16, -1f, 1f);
        var (b, bv) = Random16(seed + 1, batch * k * n, bf16, -1f, 1f);
        var (biasBits, biasValues) = bias ? Random16(seed + 2, biasIsMatrix ? m * n : n, bf16) : (Array.Empty<ushort>(), Array.Empty<float>());
        float alphaValue = alpha ?? (bias ? 0.75f : 1f), beta = bias ? -1.25f : 0f;
        var (splits, kChunk) = WgmmaLaunch.ChunkK(k, requestedSplits);
        Assert.Equal(requestedSplits, splits);
        Assert.True(splits == 1 || (kChunk % WgmmaGemmKernels.BlockK == 0 && (splits - 1) * kChunk < k && k <= splits * kChunk));

        double B(int i, int kk, int j) => transposeB ? bv[(i * n * k) + (j * k) + kk] : bv[(i * k * n) + (kk * n) + j];
        var expected = Enumerable.Range(0, batch * m * n).Select(e =>
        {
            int i = e / (m * n), r = e % (m * n) / n, j = e % n;
            double dot = Enumerable.Range(0, k).Sum(t => (double)av[(i * m * k) + (r * k) + t] * B(i, t, j));
            double v = alphaValue * dot;
            if (bias)
            {
                v += beta * biasValues[biasIsMatrix ? (r * n) + j : j];
            }

            return v;
        }).ToArray();

        using var aBuffer = acc.Allocate1D(a);
        using var bBuffer = acc.Allocate1D(b);
        using var biasBuffer = acc.Allocate1D(biasBits.Length == 0 ? new ushort[1] : biasBits);
        using var cBuffer = acc.Allocate1D<ushort>(batch * m * n);
        using var partial = acc.Allocate1D<float>(splits * m * n);
        using var scratch = acc.Allocate1D<float>(WgmmaLaunch.EmulationScratch(splits > 1 ? splits : batch, m, n));
        ArrayView<ushort> biasView = bias ? biasBuffer.View.AsContiguous() : ArrayView<ushort>.Empty;

        // The facade's shape (asynchronous copies allowed: the simulator's buffers are aligned, so AsyncCopy says
        // whether the wgmma kernel takes the product at all).
        var shape = TensorCoreLaunch.Shape(aBuffer.View, bBuffer.View, biasView, m, k, n, transposeB, alphaValue, beta, biasIsMatrix, bf16, asyncCopyAllowed: true);
        Assert.True(WgmmaLaunch.Supports(shape));
        shape = TensorCoreLaunch.WithSplitK(shape, splits, kChunk);
        ArrayView<float> partialView = splits > 1 ? partial.View.AsContiguous() : ArrayView<float>.Empty;
        foreach (int pairs in new[] { TensorCoreLaunch.PairStores(cBuffer.View, n), 0 }.Distinct())
        {
            cBuffer.CopyFromCPU(Enumerable.Repeat(NaN16(bf16), batch * m * n).ToArray());
            partial.CopyFromCPU(Enumerable.Repeat(float.NaN, splits * m * n).ToArray());
            shape.PairStores = pairs;
            int z = splits > 1 ? splits : batch;
            var config = persistentGroups > 0
                ? new KernelConfig(new Index3D(persistentGroups, 1, z), WgmmaLaunch.Config(z, m, n).GroupDim, WgmmaLaunch.Config(z, m, n).SharedMemoryConfig)
                : WgmmaLaunch.Config(z, m, n);
            emulated(config, aBuffer.View, bBuffer.View, biasView, cBuffer.View, partialView, scratch.View, shape, lookahead, rasterRows, persistentGroups > 0 ? 1 : 0, asmEpilogue ? 1 : 0, breakSwizzle ? 1 : 0);
            if (splits > 1)
            {
                reduce(new KernelConfig(((m * n) + 255) / 256, 256), partial.View, biasView, cBuffer.View, TensorCoreLaunch.ReduceShape(shape), bf16 ? 1 : 0);
            }

            acc.Synchronize();
            var got = ToFloat(cBuffer.GetAsArray1D(), bf16);
            AssertClose(got, expected, Rtol(bf16), Atol * k,
                $"wgmma emulation, lookahead {lookahead}, bands {rasterRows}, persistent groups {persistentGroups}, asm epilogue {asmEpilogue}, alpha {alphaValue}, {batch}x{m}x{k}x{n} transposeB={transposeB} bias={bias} matrix={biasIsMatrix} splits={splits} chunk={kChunk} pairs={pairs} ({F(bf16)})", seed);
        }
    }

    /// <summary>The split-K plan on a 132-SM device: one wave for single matrices with few 128 × 256 tiles; never for bmm, full grids or the simulator.</summary>
    [Theory]
    [InlineData(1, 64, 4096, 4096, 132, 8, 512)]
    [InlineData(1, 256, 4096, 4096, 132, 4, 1024)]
    [InlineData(1, 512, 4096, 4096, 132, 2, 2048)]
    [InlineData(1, 1024, 4096, 4096, 132, 1, 4096)]
    [InlineData(1, 4096, 4096, 4096, 132, 1, 4096)]
    [InlineData(1, 4097, 1032, 5000, 132, 1, 1032)]
    [InlineData(8, 64, 4096, 4096, 132, 1, 4096)]
    [InlineData(1, 64, 4096, 4096, 0, 1, 4096)]
    [InlineData(1, 64, 300, 4096, 132, 1, 300)]
    public void SplitKPlan(int batch, int m, int k, int n, int sms, int splits, int kChunk)
    {
        var plan = WgmmaLaunch.PlanSplitK(batch, m, k, n, sms);
        Assert.Equal((splits, kChunk), plan);
        var grid = WgmmaLaunch.Config(plan.Splits > 1 ? plan.Splits : batch, m, n).GridDim;
        Assert.True(plan.Splits == 1 || (long)grid.X * grid.Y * grid.Z <= sms);
    }

    [Theory]
    [InlineData(null, (int)TensorCoreGemmVariant.WgmmaPersistentStores)]
    [InlineData("wgmma", (int)TensorCoreGemmVariant.Wgmma)]
    [InlineData(" WGMMA ", (int)TensorCoreGemmVariant.Wgmma)]
    [InlineData("wgmma3", (int)TensorCoreGemmVariant.WgmmaThreeAhead)]
    [InlineData("wgmma-g", (int)TensorCoreGemmVariant.WgmmaGrouped)]
    [InlineData("wgmma-p", (int)TensorCoreGemmVariant.WgmmaPersistent)]
    [InlineData("wgmma-pe", (int)TensorCoreGemmVariant.WgmmaPersistentStores)]
    public void VariantSettingNamesWgmma(string? setting, int expected)
    {
        Assert.Equal((TensorCoreGemmVariant)expected, TensorCoreVariants.Parse(setting));
        Assert.Equal((TensorCoreGemmVariant)expected, TensorCoreVariants.Parse(TensorCoreVariants.Name((TensorCoreGemmVariant)expected)));
    }

    /// <summary>
    /// The rewrite is applied after reading, the one way: a kernel read back from a cache file's text (what the cache
    /// directory and the shipped archive hold: ILGPU's own output) and rebuilt with the rewritten PTX keeps its entry
    /// point and shared-memory layout; on a device that is not 9.0 preparing it refuses, and other kernels pass through.
    /// </summary>
    [Fact]
    public void CachedTextIsRewrittenAfterReading()
    {
        using var context = Context.Create(b => b.Optimize(OptimizationLevel.O2));
        using var backend = new PTXBackend(context, new CudaCapabilityContext(CudaArchitecture.SM_90),
            CudaArchitecture.SM_90, CudaInstructionSet.ISA_80, nvvmAPI: null);
        var method = typeof(WgmmaGemmKernels).GetMethod(nameof(WgmmaGemmKernels.Gemm16Wgmma))!.MakeGenericMethod(typeof(Bf16MnMajorB), typeof(ThreeAhead));
        var entry = EntryPointDescription.FromExplicitlyGroupedKernel(method);
        var compiled = (PTXCompiledKernel)backend.Compile(entry, default);
        Assert.True(KernelDiskCache.IsSupported);
        var read = KernelDiskCache.Parse(context, KernelDiskCache.Serialize(compiled), entry, default, addLaunchBounds: false)!;
        Assert.Equal(compiled.PTXAssembly, read.PTXAssembly);
        string rewritten = Sm90aPtx.Rewrite(read.PTXAssembly)!;
        var prepared = KernelDiskCache.WithAssembly(read, rewritten);
        Assert.Equal(rewritten, prepared.PTXAssembly);
        Assert.Equal(read.Name, prepared.Name);
        Assert.True(KernelDiskCache.SharedMemoryOf(prepared).HasDynamicMemory);
        Assert.Equal(KernelDiskCache.SharedMemoryOf(read).StaticSize, KernelDiskCache.SharedMemoryOf(prepared).StaticSize);

        Assert.Throws<InvalidOperationException>(() => Sm90aPtx.Prepare(warp32.Accelerator, read));
        var plain = (PTXCompiledKernel)backend.Compile(EntryPointDescription.FromExplicitlyGroupedKernel(
            typeof(WgmmaGemmKernels).GetMethod(nameof(WgmmaGemmKernels.Gemm16WgmmaEmulated))!), default);
        Assert.Same(plain, Sm90aPtx.Prepare(warp32.Accelerator, plain));
    }

    /// <summary>The simulator is no 9.0 CUDA device: the wgmma kernel is never offered there, and preparing its PTX for it refuses.</summary>
    [Fact]
    public void OnlyAComputeCapability90DeviceTakesIt()
    {
        Assert.False(Sm90aPtx.Supported(warp32.Accelerator));
        Assert.False(Device.Kernels.WgmmaAvailable);
    }
}
