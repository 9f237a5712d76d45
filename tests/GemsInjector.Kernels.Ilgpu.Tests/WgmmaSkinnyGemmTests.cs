using System;
using System.Linq;
using System.Text.RegularExpressions;
using GemsInjector.Kernels.Ilgpu;
using ILGPU;
using ILGPU.Runtime;
using ILGPU.Runtime.Cuda;
using Xunit;

namespace GemsInjector.Kernels.Ilgpu.Tests;

/// <summary>
/// The small-M wgmma GEMM (<see cref="WgmmaSkinnyGemmKernels"/>): its PTX (sm_90a, one fence / four k16 m64n128 wgmma /
/// commit per instantiation, the ring's copy wait, no wgmma behind a divergent branch) and its body on the CPU with
/// wgmma emulated from the descriptors, against float64 references with NaN-poisoned outputs: M from 1 to 64 (rows
/// past M zero-filled once and never stored), odd N for a [N, K] b, K not a multiple of the stage, both formats and B
/// layouts, bias, bmm, and split-K reduced by GemvReduce16; the default rule's boundaries. Each of these for both tile
/// widths: 128 columns (the default) and 64 (the n64 variant, wgmma m64n64).
/// </summary>
[Collection(SimulatorCollection.Name)]
public sealed class WgmmaSkinnyGemmTests : Half16TestBase, IClassFixture<Warp32SimulatorFixture>
{
    private readonly Warp32SimulatorFixture warp32;
    private readonly Action<KernelConfig, ArrayView<ushort>, ArrayView<ushort>, ArrayView<ushort>, ArrayView<ushort>, ArrayView<float>, ArrayView<float>, TensorCoreShape, int> emulated;
    private readonly Action<KernelConfig, ArrayView<float>, ArrayView<ushort>, ArrayView<ushort>, HalfGemvShape, int> reduce;
    private readonly Action<KernelConfig, ArrayView<ushort>, ArrayView<ushort>, ArrayView<ushort>, ArrayView<ushort>, ArrayView<float>, ArrayView<int>, ArrayView<float>, TensorCoreShape, int> clusterEmulated;
    private readonly Action<KernelConfig, ArrayView<ushort>, ArrayView<ushort>, ArrayView<ushort>, ArrayView<ushort>, ArrayView<float>, ArrayView<int>, ArrayView<float>, TensorCoreShape, int> ticketsEmulated;

    public WgmmaSkinnyGemmTests(SimulatorFixture fixture, Warp32SimulatorFixture warp32)
        : base(fixture)
    {
        this.warp32 = warp32;
        emulated = warp32.Accelerator.LoadStreamKernel<ArrayView<ushort>, ArrayView<ushort>, ArrayView<ushort>, ArrayView<ushort>, ArrayView<float>, ArrayView<float>, TensorCoreShape, int>(
            WgmmaSkinnyGemmKernels.Gemm16WgmmaSkinnyEmulated);
        reduce = warp32.Accelerator.LoadStreamKernel<ArrayView<float>, ArrayView<ushort>, ArrayView<ushort>, HalfGemvShape, int>(HalfGemvKernels.GemvReduce16);
        clusterEmulated = warp32.Accelerator.LoadStreamKernel<ArrayView<ushort>, ArrayView<ushort>, ArrayView<ushort>, ArrayView<ushort>, ArrayView<float>, ArrayView<int>, ArrayView<float>, TensorCoreShape, int>(
            WgmmaSkinnyGemmKernels.Gemm16WgmmaSkinnyClusterEmulated);
        ticketsEmulated = warp32.Accelerator.LoadStreamKernel<ArrayView<ushort>, ArrayView<ushort>, ArrayView<ushort>, ArrayView<ushort>, ArrayView<float>, ArrayView<int>, ArrayView<float>, TensorCoreShape, int>(
            WgmmaSkinnyGemmKernels.Gemm16WgmmaSkinnyTicketsEmulated);
    }

    private static string CompilePtx(Type operands, int columns)
    {
        bool narrow = columns == WgmmaSkinnyGemmKernels.BlockNNarrow;
        string name = narrow ? nameof(WgmmaSkinnyGemmKernels.Gemm16WgmmaSkinnyN64) : nameof(WgmmaSkinnyGemmKernels.Gemm16WgmmaSkinny);
        var method = typeof(WgmmaSkinnyGemmKernels).GetMethod(name)!.MakeGenericMethod(operands);
        return Sm90Ptx.Of(method, new KernelSpecialization(WgmmaSkinnyGemmKernels.GroupSize, WgmmaSkinnyLaunch.GroupsPerSmOf(columns)), $"{name}_{operands.Name}");
    }

    private static int Count(string text, string what) => Regex.Matches(text, Regex.Escape(what)).Count;

    [Theory]
    [InlineData(typeof(Bf16KMajorB), "bf16", 0, 128)]
    [InlineData(typeof(Bf16MnMajorB), "bf16", 1, 128)]
    [InlineData(typeof(F16KMajorB), "f16", 0, 128)]
    [InlineData(typeof(F16MnMajorB), "f16", 1, 128)]
    [InlineData(typeof(Bf16KMajorB), "bf16", 0, 64)]
    [InlineData(typeof(Bf16MnMajorB), "bf16", 1, 64)]
    [InlineData(typeof(F16KMajorB), "f16", 0, 64)]
    [InlineData(typeof(F16MnMajorB), "f16", 1, 64)]
    public void PtxHoldsOneStageOfWgmmaOutsideDivergentBranches(Type operands, string type, int transposeImmediate, int columns)
    {
        string ptx = Sm90aPtx.Rewrite(CompilePtx(operands, columns))!;
        Assert.NotNull(ptx);
        Assert.Matches(new Regex(@"^\.target sm_90a\s*$", RegexOptions.Multiline), ptx);

        // One stage multiply at one call site, of this instantiation's format and transpose-B immediate only.
        Assert.Equal(4, Count(ptx, "wgmma.mma_async.sync.aligned."));
        Assert.Equal(4, Count(ptx, $"wgmma.mma_async.sync.aligned.m64n{columns}k16.f32.{type}.{type} "));
        Assert.Equal(4, Count(ptx, $"wsp, 1, 1, 0, {transposeImmediate};"));
        Assert.Equal(1, Count(ptx, "wgmma.fence.sync.aligned;"));
        Assert.Equal(1, Count(ptx, "wgmma.commit_group.sync.aligned;"));
        Assert.Equal(0, Count(ptx, "wgmma.wait_group.sync.aligned 1;"));
        Assert.True(Count(ptx, "wgmma.wait_group.sync.aligned 0;") is >= 1 and <= 2);
        Assert.Equal(1, Count(ptx, $"cp.async.wait_group {WgmmaSkinnyGemmKernels.Stages - 2};"));
        Assert.Equal(1, Count(ptx, "cp.async.wait_group"));
        Assert.Equal(2, Count(ptx, "bar.sync"));
        Assert.DoesNotMatch(new Regex(@"\batom\."), ptx);

        // No wgmma instruction (fence, mma, commit or wait) in a block entered from a divergent branch: ptxas would
        // serialize every wgmma of the kernel (C7518). The thread-dependent copy skips branch around cp.async only.
        Assert.Empty(WgmmaGemmTests.WgmmaBlocksUnderDivergentBranches(ptx));
        Assert.Matches(new Regex(@"\.maxntid\s+128"), ptx);
        Assert.Equal(1, Count(ptx, ".reg .f32 wsa<64>;"));
        Assert.DoesNotContain(".func", ptx, StringComparison.Ordinal);
        Assert.True(ptx.IndexOf(".reg .f32 wsa<64>;", StringComparison.Ordinal) < ptx.IndexOf("wgmma.mma_async", StringComparison.Ordinal));
        Assert.DoesNotMatch(new Regex(@"%\d"), ptx);

        // Local memory: only the entry's slot of the shared base (ptxas: one dead STL, an 8-byte frame). The epilogue's
        // accumulators go through shared, not sixteen asm-output slots (ptxas kept those in a 72-byte frame and LDL).
        Assert.Single(Regex.Matches(ptx, @"\.local \.align \d+ \.b8 __local_depot\d+\[4\];"));
        int firstCopy = ptx.IndexOf("cp.async.cg.shared.global", StringComparison.Ordinal);
        Assert.True(firstCopy > 0);
        Assert.DoesNotMatch(new Regex(@"(ld|st)\.local"), ptx[firstCopy..]);

        // The copies are written out: per stage 4 A + 8 B chunks (4 B at 64 columns) in the full-tile and the K-edge
        // forms (prologue and ring), the same count of zero fills per stage of the prologue; each skipped by its own
        // predicate, not a branch.
        int perStage = 4 + (columns / 16);
        Assert.Equal(perStage + (5 * perStage), Count(ptx, "cp.async.cg.shared.global"));
        Assert.Equal(Count(ptx, "cp.async.cg.shared.global"), Count(ptx, "@wsq cp.async.cg.shared.global"));
        Assert.Equal(WgmmaSkinnyGemmKernels.AccumulatorsOf(columns) / 4, Count(ptx, "st.shared.v4.f32 ["));
    }

    [Fact]
    public void EmulatedKernelCompilesToPtxWithoutWgmma()
    {
        Assert.False(Sm90aPtx.Needs(Sm90Ptx.Of(typeof(WgmmaSkinnyGemmKernels).GetMethod(nameof(WgmmaSkinnyGemmKernels.Gemm16WgmmaSkinnyEmulated))!)));
    }

    /// <summary>The staging (KRowByte / MnByte of a 128- or 64-column tile) is where the emulated tensor core reads every (mn, k) of every k16 step, and covers each stage slot once.</summary>
    [Theory]
    [InlineData(128, 2)]
    [InlineData(64, 3)]
    public void StagingMatchesTheDescriptors(int columns, int groupsPerSm)
    {
        Assert.Equal(0, WgmmaSkinnyGemmKernels.StageBytesOf(columns) % WgmmaGemmKernels.SwizzleAlignment);
        Assert.Equal(0, WgmmaSkinnyGemmKernels.AStageBytes % WgmmaGemmKernels.SwizzleAlignment);
        Assert.Equal(WgmmaSkinnyGemmKernels.StageBytes, WgmmaSkinnyGemmKernels.StageBytesOf(WgmmaSkinnyGemmKernels.BlockN));
        Assert.Equal(groupsPerSm, WgmmaSkinnyLaunch.GroupsPerSmOf(columns));
        Assert.Equal(2, WgmmaSkinnyLaunch.GroupsPerSm);

        // The epilogue's staged accumulators fit in the ring.
        Assert.True(WgmmaSkinnyGemmKernels.GroupSize * WgmmaSkinnyGemmKernels.AccumulatorStrideOf(columns) <= WgmmaSkinnyGemmKernels.Stages * WgmmaSkinnyGemmKernels.StageBytesOf(columns));
        for (int stage = 0; stage < WgmmaSkinnyGemmKernels.Stages; stage++)
        {
            for (int step = 0; step < WgmmaGemmKernels.KSteps; step++)
            {
                long ad = WgmmaSkinnyGemmKernels.ADescriptor(0, stage, columns) + (step * WgmmaGemmKernels.KMajorAdvance);
                long bk = WgmmaSkinnyGemmKernels.BDescriptor(0, stage, 1, columns) + (step * WgmmaGemmKernels.KMajorAdvance);
                long bn = WgmmaSkinnyGemmKernels.BDescriptor(0, stage, 0, columns) + (step * WgmmaGemmKernels.MnMajorAdvance);
                for (int k = 0; k < 16; k++)
                {
                    int kk = (step * 16) + k;
                    for (int row = 0; row < WgmmaSkinnyGemmKernels.BlockM; row++)
                    {
                        Assert.Equal(WgmmaSkinnyGemmKernels.AStageOffset(stage, columns) + WgmmaGemmKernels.KRowByte(row, kk / 8) + ((kk % 8) * 2), EmulatedWgmmaOps.KMajorByte(ad, row, k));
                    }

                    for (int n = 0; n < columns; n++)
                    {
                        Assert.Equal(WgmmaSkinnyGemmKernels.BStageOffset(stage, columns) + WgmmaGemmKernels.KRowByte(n, kk / 8) + ((kk % 8) * 2), EmulatedWgmmaOps.KMajorByte(bk, n, k));
                        Assert.Equal(WgmmaSkinnyGemmKernels.BStageOffset(stage, columns) + WgmmaGemmKernels.MnByte(kk, n / 8) + ((n % 8) * 2), EmulatedWgmmaOps.MnMajorByte(bn, k, n));
                    }
                }
            }
        }

        int bStageBytes = columns * WgmmaSkinnyGemmKernels.RowBytes;
        int nChunks = columns / 8;
        Assert.Equal(Enumerable.Range(0, bStageBytes / 16).Select(i => i * 16),
            Enumerable.Range(0, bStageBytes / 16).Select(q => WgmmaGemmKernels.MnByte(q / nChunks, q % nChunks)).OrderBy(x => x));
    }

    /// <summary>M from 1 to 64 rows, both formats and layouts, no split.</summary>
    [Theory]
    [InlineData(true, 1, 1, 72, 137, true, false, false, 128)]
    [InlineData(false, 1, 2, 200, 136, false, true, false, 128)]
    [InlineData(true, 1, 3, 328, 264, false, false, false, 128)]
    [InlineData(false, 1, 16, 136, 137, true, true, true, 128)]
    [InlineData(true, 1, 17, 520, 136, true, true, false, 128)]
    [InlineData(false, 1, 64, 200, 264, false, false, false, 128)]
    [InlineData(true, 1, 64, 64, 257, true, true, true, 128)]
    [InlineData(true, 2, 17, 72, 136, false, true, false, 128)]
    [InlineData(false, 3, 3, 24, 24, true, false, false, 128)]
    [InlineData(true, 1, 1, 72, 137, true, false, false, 64)]
    [InlineData(false, 1, 2, 200, 136, false, true, false, 64)]
    [InlineData(true, 1, 3, 328, 200, false, false, false, 64)]
    [InlineData(false, 1, 16, 136, 71, true, true, true, 64)]
    [InlineData(true, 1, 64, 200, 72, false, false, false, 64)]
    [InlineData(true, 1, 64, 64, 129, true, true, true, 64)]
    [InlineData(false, 2, 17, 72, 136, false, true, false, 64)]
    [InlineData(true, 3, 33, 24, 24, true, false, false, 64)]
    public void EmulatedKernelMatchesFloat64(bool bf16, int batch, int m, int k, int n, bool transposeB, bool bias, bool biasIsMatrix, int columns) =>
        Run(bf16, batch, m, k, n, transposeB, bias, biasIsMatrix, requestedSplits: 1, columns);

    /// <summary>
    /// Split-K forced: chunks of whole stages (the last shorter, or shorter than the ring); partials summed by GemvReduce16.
    /// </summary>
    [Theory]
    [InlineData(true, 2, 328, 136, true, true, false, 3, 128)]
    [InlineData(false, 17, 200, 264, false, true, true, 2, 128)]
    [InlineData(true, 64, 1000, 136, false, false, false, 4, 128)]
    [InlineData(false, 3, 1032, 137, true, false, false, 2, 128)]
    [InlineData(true, 16, 136, 136, false, false, false, 2, 128)]
    [InlineData(false, 64, 1280, 136, true, true, false, 5, 128)]
    [InlineData(true, 2, 328, 136, true, true, false, 3, 64)]
    [InlineData(false, 17, 200, 104, false, true, true, 2, 64)]
    [InlineData(true, 64, 1000, 136, false, false, false, 4, 64)]
    [InlineData(false, 3, 1032, 73, true, false, false, 2, 64)]
    public void EmulatedSplitKMatchesFloat64(bool bf16, int m, int k, int n, bool transposeB, bool bias, bool biasIsMatrix, int splits, int columns) =>
        Run(bf16, 1, m, k, n, transposeB, bias, biasIsMatrix, splits, columns);

    /// <summary>
    /// The split plan on a 132-SM device: column tiles × splits within the resident groups (two per SM) and
    /// M × splits ≤ 256; never for batches or the simulator.
    /// </summary>
    [Theory]
    [InlineData(1, 2, 4096, 4096, 132, 8, 512, 128)]
    [InlineData(1, 16, 4096, 11008, 132, 3, 1408, 128)]
    [InlineData(1, 64, 4096, 4096, 132, 4, 1024, 128)]
    [InlineData(1, 33, 4096, 4096, 132, 7, 640, 128)]
    [InlineData(1, 2, 11008, 4096, 132, 8, 1408, 128)]
    [InlineData(1, 2, 512, 4096, 132, 2, 256, 128)]
    [InlineData(4, 2, 4096, 4096, 132, 1, 4096, 128)]
    [InlineData(1, 2, 4096, 4096, 0, 1, 4096, 128)]
    [InlineData(1, 2, 4096, 40000, 132, 1, 4096, 128)]
    [InlineData(1, 64, 4096, 4096, 132, 4, 1024, 64)]
    [InlineData(1, 32, 4096, 4096, 132, 6, 704, 64)]
    [InlineData(1, 16, 4096, 11008, 132, 2, 2048, 64)]
    [InlineData(4, 2, 4096, 4096, 132, 1, 4096, 64)]
    [InlineData(1, 2, 4096, 4096, 0, 1, 4096, 64)]
    public void SplitKPlan(int batch, int m, int k, int n, int sms, int splits, int kChunk, int columns)
    {
        var plan = WgmmaSkinnyLaunch.PlanSplitK(batch, m, k, n, sms, columns);
        Assert.True(m * plan.Splits <= WgmmaSkinnyLaunch.MaxPartialRows);
        Assert.Equal((splits, kChunk), plan);
        long groups = (long)WgmmaSkinnyLaunch.Config(plan.Splits, n, columns).GridDim.X * plan.Splits;
        Assert.True(plan.Splits == 1 || groups <= (long)sms * WgmmaSkinnyLaunch.GroupsPerSmOf(columns));
    }

    /// <summary>Only <c>off</c> turns the default rule off; unset, empty, the old variant names or anything else leave it on.</summary>
    [Theory]
    [InlineData(null, true)]
    [InlineData("", true)]
    [InlineData("off", false)]
    [InlineData(" OFF ", false)]
    [InlineData("wgmma", true)]
    [InlineData("wgmma8", true)]
    [InlineData("wgmma-r", true)]
    [InlineData("on", true)]
    public void SwitchTurnsTheRuleOff(string? setting, bool enabled) => Assert.Equal(enabled, WgmmaSkinnyLaunch.Parse(setting));

    /// <summary>Only <c>n128</c> selects the 128-column tiles (which leave the default rule on); unset, <c>off</c> and anything else keep 64.</summary>
    [Theory]
    [InlineData(null, true, 64)]
    [InlineData("", true, 64)]
    [InlineData("off", true, 64)]
    [InlineData("n64", true, 64)]
    [InlineData(" N128 ", false, 128)]
    [InlineData("n128", false, 128)]
    public void SwitchSelectsTheNarrowTiles(string? setting, bool narrow, int columns)
    {
        Assert.Equal(narrow, WgmmaSkinnyLaunch.ParseNarrow(setting));
        Assert.Equal(columns, WgmmaSkinnyLaunch.Columns(WgmmaSkinnyLaunch.ParseNarrow(setting)));
        Assert.True(narrow || WgmmaSkinnyLaunch.Parse(setting));
    }

    /// <summary>
    /// The default rule's boundaries on a 9.0 device: [N, K] weights (transposeB) from 17 to 64 rows, [K, N] weights
    /// from 9 to 64 rows; never with the switch off.
    /// </summary>
    [Theory]
    [InlineData(1, false, false)]
    [InlineData(2, false, false)]
    [InlineData(8, false, false)]
    [InlineData(9, false, true)]
    [InlineData(16, false, true)]
    [InlineData(17, false, true)]
    [InlineData(64, false, true)]
    [InlineData(65, false, false)]
    [InlineData(1, true, false)]
    [InlineData(2, true, false)]
    [InlineData(8, true, false)]
    [InlineData(9, true, false)]
    [InlineData(16, true, false)]
    [InlineData(17, true, true)]
    [InlineData(64, true, true)]
    [InlineData(65, true, false)]
    public void DefaultRuleBoundaries(int m, bool transposeB, bool takes)
    {
        Assert.Equal(takes, WgmmaSkinnyLaunch.TakesByDefault(true, CudaArchitecture.SM_90, m, transposeB));
        Assert.False(WgmmaSkinnyLaunch.TakesByDefault(false, CudaArchitecture.SM_90, m, transposeB));
    }

    /// <summary>No device but a CUDA one of compute capability 9.0 takes the kernel, at any row count or layout.</summary>
    [Fact]
    public void DefaultRuleNeedsComputeCapability90()
    {
        var others = new CudaArchitecture?[] { null, CudaArchitecture.SM_75, CudaArchitecture.SM_80, CudaArchitecture.SM_86, CudaArchitecture.SM_89 };
        foreach (var architecture in others)
        {
            for (int m = 1; m <= 80; m++)
            {
                Assert.False(WgmmaSkinnyLaunch.TakesByDefault(true, architecture, m, transposeB: true));
                Assert.False(WgmmaSkinnyLaunch.TakesByDefault(true, architecture, m, transposeB: false));
            }
        }
    }

    /// <summary>The simulator is no 9.0 device: with the rule on, products it would route keep today's kernels (and stay correct).</summary>
    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void RuleOnTheSimulatorKeepsTodaysDispatch(bool transposeB)
    {
        var kernels = Device.Kernels;
        var before = kernels.WgmmaSmallMEnabled;
        try
        {
            kernels.WgmmaSmallMEnabled = true;
            Assert.False(kernels.WgmmaAvailable);
            const int M = 20, K = 64, N = 40;
            var (a, av) = Random16(77, M * K, true, -1f, 1f);
            var (b, bv) = Random16(78, N * K, true, -1f, 1f);
            var c = Upload(Enumerable.Repeat(NaN16(true), M * N).ToArray());
            kernels.Mm(Upload(a), Upload(b), c, M, K, N, HalfFormat.BFloat16, transposeB);
            double B(int kk, int j) => transposeB ? bv[(j * K) + kk] : bv[(kk * N) + j];
            var expected = Enumerable.Range(0, M * N).Select(e => Enumerable.Range(0, K).Sum(t => (double)av[(e / N * K) + t] * B(t, e % N))).ToArray();
            Check16(c, expected, true, $"small-M rule on the simulator, transposeB={transposeB}", 77, Atol * K);
        }
        finally
        {
            kernels.WgmmaSmallMEnabled = before;
        }
    }

    /// <summary>
    /// The cluster form (<c>GEMS_SPLITK_REDUCE=cluster</c>) on the simulator (<see cref="EmulatedClusterReduce"/>): every
    /// element against float64 and bit-identical to the launched reduce of the same plan (the same emulated body writing
    /// partials, then GemvReduce16), NaN-poisoned outputs and partials, fresh random inputs per case: 17, 33 and 64 rows,
    /// both B layouts and formats, row and matrix bias with alpha / beta, ragged N (a last tile of 8, 4 or 12 columns),
    /// 2, 4 and 8 splits with a shorter last chunk.
    /// </summary>
    [Theory]
    [InlineData(true, 17, 1000, 72, true, true, false, 4)]
    [InlineData(false, 17, 1000, 200, false, true, true, 4)]
    [InlineData(true, 33, 512, 72, false, false, false, 8)]
    [InlineData(false, 33, 1000, 132, true, true, true, 8)]
    [InlineData(true, 64, 328, 136, false, true, false, 2)]
    [InlineData(false, 64, 200, 140, true, false, false, 2)]
    [InlineData(true, 64, 1000, 64, true, true, true, 4)]
    [InlineData(false, 64, 1000, 72, false, false, false, 8)]
    [InlineData(true, 20, 136, 64, false, true, true, 2)]
    public void EmulatedClusterMatchesFloat64AndTheLaunchedReduce(bool bf16, int m, int k, int n, bool transposeB, bool bias, bool biasIsMatrix, int splits)
    {
        Assert.True(WgmmaSkinnyLaunch.TakesCluster(SplitKReduce.Cluster, WgmmaSkinnyGemmKernels.BlockNNarrow, splits, n));

        // Splits on Grid.Y, the tile through the (re-poisoned) partials and a ticket per column tile.
        var config = WgmmaSkinnyLaunch.ClusterConfig(splits, n);
        Assert.Equal(new Index3D((n + WgmmaSkinnyGemmKernels.BlockNNarrow - 1) / WgmmaSkinnyGemmKernels.BlockNNarrow, splits, 1), config.GridDim);
        int seed = 7100 + (m * 7) + (k * 5) + n + (bf16 ? 1 : 0) + (transposeB ? 2 : 0) + (bias ? 4 : 0) + (biasIsMatrix ? 8 : 0) + (splits * 1000);
        AssertSplitFormMatchesTheLaunchedReduce("cluster form", seed, bf16, m, k, n, transposeB, bias, biasIsMatrix, splits, config, clusterEmulated);
    }

    /// <summary>
    /// Which plans take the cluster form: <c>GEMS_SPLITK_REDUCE</c> unset or <c>cluster</c>, 64-column tiles, 2 / 4 / 8 splits, N % 4 = 0;
    /// the plans of the bench shapes on 132 SMs (64 and 52 rows: 4 splits, cluster; 64 × 4096 × 11008: 2 splits, cluster;
    /// 43 rows: 5 and 32 rows: 6, batches and the simulator: 1 — today's path).
    /// </summary>
    [Theory]
    [InlineData("cluster", 1, 64, 4096, 4096, 132, 64, true)]
    [InlineData("cluster", 1, 52, 4096, 4096, 132, 64, true)]
    [InlineData("cluster", 1, 43, 4096, 4096, 132, 64, false)]
    [InlineData("cluster", 1, 32, 4096, 4096, 132, 64, false)]
    [InlineData("cluster", 1, 17, 4096, 4096, 132, 64, false)]
    [InlineData("cluster", 1, 64, 4096, 11008, 132, 64, true)]
    [InlineData("cluster", 1, 64, 1024, 4096, 132, 64, true)]
    [InlineData("cluster", 4, 64, 4096, 4096, 132, 64, false)]
    [InlineData("cluster", 1, 64, 4096, 4096, 0, 64, false)]
    [InlineData("cluster", 1, 64, 4096, 4096, 132, 128, false)]
    [InlineData("cluster", 1, 64, 4096, 4098, 132, 64, false)]
    [InlineData(null, 1, 64, 4096, 4096, 132, 64, true)]
    [InlineData(null, 1, 32, 4096, 4096, 132, 64, false)]
    [InlineData("launch", 1, 64, 4096, 4096, 132, 64, false)]
    [InlineData("fused", 1, 64, 4096, 4096, 132, 64, false)]
    public void ClusterRouting(string? setting, int batch, int m, int k, int n, int sms, int columns, bool takes)
    {
        var (splits, _) = WgmmaSkinnyLaunch.PlanSplitK(batch, m, k, n, sms, columns);
        Assert.Equal(takes, WgmmaSkinnyLaunch.TakesCluster(SplitKReduceSettings.Parse(setting), columns, splits, n));
    }

    /// <summary>The split counts the cluster form takes (the portable cluster sizes) at every N % 4 = 0.</summary>
    [Theory]
    [InlineData(1, false)]
    [InlineData(2, true)]
    [InlineData(3, false)]
    [InlineData(4, true)]
    [InlineData(5, false)]
    [InlineData(6, false)]
    [InlineData(8, true)]
    [InlineData(16, false)]
    public void ClusterSplitCounts(int splits, bool takes)
    {
        Assert.Equal(takes, WgmmaSkinnyLaunch.TakesCluster(SplitKReduce.Cluster, WgmmaSkinnyGemmKernels.BlockNNarrow, splits, 4096));
        Assert.False(WgmmaSkinnyLaunch.TakesCluster(SplitKReduce.Cluster, WgmmaSkinnyGemmKernels.BlockNNarrow, splits, 4090));

        // The default setting is the cluster form; launch and the in-place forms never take it.
        Assert.Equal(SplitKReduce.Cluster, SplitKReduceSettings.Parse(null));
        foreach (var other in new[] { SplitKReduce.Launch, SplitKReduce.Fused, SplitKReduce.FusedAll })
        {
            Assert.False(WgmmaSkinnyLaunch.TakesCluster(other, WgmmaSkinnyGemmKernels.BlockNNarrow, splits, 4096));
        }
    }

    /// <summary>The cluster tile lies in the n64 ring past every thread's accumulator staging: no shared memory beyond the n64 kernel's.</summary>
    [Fact]
    public void ClusterTileFitsInTheRing()
    {
        const int Columns = WgmmaSkinnyGemmKernels.BlockNNarrow;
        Assert.Equal(WgmmaSkinnyGemmKernels.ClusterTileBytes, WgmmaSkinnyGemmKernels.ClusterTileBytesOf(Columns));
        Assert.Equal(0, WgmmaSkinnyGemmKernels.ClusterTileOffsetOf(Columns) % 16);
        Assert.True(WgmmaSkinnyGemmKernels.ClusterTileOffsetOf(Columns) + WgmmaSkinnyGemmKernels.ClusterTileBytesOf(Columns)
            <= WgmmaSkinnyGemmKernels.Stages * WgmmaSkinnyGemmKernels.StageBytesOf(Columns));
        Assert.Equal(Columns / 4, 1 << WgmmaSkinnyGemmKernels.ClusterRowShiftOf(Columns));
        Assert.Equal(WgmmaSkinnyLaunch.Config(4, 4096, Columns).SharedMemoryConfig.NumElements, WgmmaSkinnyLaunch.ClusterConfig(4, 4096).SharedMemoryConfig.NumElements);
        Assert.Equal(3, WgmmaSkinnyLaunch.GroupsPerSmOf(Columns));
    }

    /// <summary>
    /// The cluster form's SM_90 PTX (with the loader's launch bounds): the size's marker (rewritten to
    /// <c>.reqnctapercluster 1, size, 1</c> after the bounds), the n64 wgmma stage as the plain kernel, the tile published
    /// with 16-byte shared stores before one release cluster barrier, one <c>mapa</c> + <c>ld.shared::cluster.v4.f32</c>
    /// per split all before the first add, a relaxed keep-alive barrier, no float32 global store (no partials), no ticket,
    /// no local access after the first copy. Written to GEMS_PTX_DUMP_DIR when set.
    /// </summary>
    [Theory]
    [InlineData(typeof(Bf16KMajorB), "bf16", 0, 2)]
    [InlineData(typeof(Bf16MnMajorB), "bf16", 1, 4)]
    [InlineData(typeof(F16KMajorB), "f16", 0, 4)]
    [InlineData(typeof(F16MnMajorB), "f16", 1, 8)]
    [InlineData(typeof(Bf16KMajorB), "bf16", 0, 8)]
    [InlineData(typeof(Bf16MnMajorB), "bf16", 1, 8)]
    public void ClusterPtxSumsInDistributedSharedMemory(Type operands, string type, int transposeImmediate, int size)
    {
        var method = typeof(WgmmaSkinnyGemmKernels).GetMethod(nameof(WgmmaSkinnyGemmKernels.Gemm16WgmmaSkinnyN64Cluster))!
            .MakeGenericMethod(operands, size switch { 2 => typeof(Const2), 4 => typeof(Const4), _ => typeof(Const8) });
        string ptx = Sm90Ptx.Of(method, new KernelSpecialization(WgmmaSkinnyGemmKernels.GroupSize, WgmmaSkinnyLaunch.GroupsPerSmOf(WgmmaSkinnyGemmKernels.BlockNNarrow)), $"Gemm16WgmmaSkinnyN64Cluster_{operands.Name}_{size}");

        Assert.Single(Regex.Matches(ptx, Regex.Escape(ClusterReduction.MarkerPrefix + size + ", 1")));
        Assert.Single(Regex.Matches(ptx, Regex.Escape(ClusterReduction.Marker)));
        string rewritten = Sm90aPtx.Rewrite(ptx)!;
        Assert.NotNull(rewritten);
        Assert.Matches(new Regex(@"^\.target sm_90a\s*$", RegexOptions.Multiline), rewritten);
        Assert.Matches(new Regex(@"\.entry Kernel_Gemm16WgmmaSkinnyN64Cluster\([^)]*\)\s*\.maxntid[^
]*
(\.minnctapersm[^
]*
)?\.reqnctapercluster 1, " + size + @", 1
\{"), rewritten);

        // The n64 stage as in the plain kernel, outside divergent branches.
        Assert.Equal(4, Count(ptx, $"wgmma.mma_async.sync.aligned.m64n64k16.f32.{type}.{type} "));
        Assert.Equal(4, Count(ptx, $"wsp, 1, 1, 0, {transposeImmediate};"));
        Assert.Empty(WgmmaGemmTests.WgmmaBlocksUnderDivergentBranches(rewritten));

        // Staging (8 stores of four accumulators), then the tile's publish (one site, in the loop over 8-column blocks).
        Assert.Equal((WgmmaSkinnyGemmKernels.AccumulatorsOf(WgmmaSkinnyGemmKernels.BlockNNarrow) / 4) + 1, Count(ptx, "st.shared.v4.f32 ["));
        Assert.True(Count(ptx, "shfl.sync") >= 2);

        // One release barrier, one relaxed keep-alive barrier; one remote read per split, all before the first add.
        Assert.Single(Regex.Matches(ptx, Regex.Escape("barrier.cluster.arrive.aligned;")));
        Assert.Single(Regex.Matches(ptx, Regex.Escape("barrier.cluster.arrive.relaxed.aligned;")));
        Assert.Equal(2, Count(ptx, "barrier.cluster.wait.aligned;"));
        Assert.True(ptx.IndexOf("barrier.cluster.arrive.aligned;", StringComparison.Ordinal) < ptx.IndexOf("mapa.shared::cluster", StringComparison.Ordinal));
        // All in one asm statement (ClusterReduction.SumSplitsS), so no output slot sits between two remote loads.
        Assert.Equal(size, Count(ptx, "mapa.shared::cluster.u32 gsa"));
        var reads = Regex.Matches(ptx, Regex.Escape("ld.shared::cluster.v4.f32"));
        Assert.Equal(size, reads.Count);
        string between = ptx[reads[0].Index..reads[size - 1].Index];
        Assert.DoesNotContain("add.", between, StringComparison.Ordinal);
        Assert.DoesNotContain(".local", between, StringComparison.Ordinal);
        Assert.Equal(4 * size, Count(ptx, "add.rn.f32"));
        Assert.True(reads[size - 1].Index < ptx.IndexOf("barrier.cluster.arrive.relaxed.aligned;", StringComparison.Ordinal));

        // No partials, no ticket: no float32 global store, no atomic, no device fence.
        Assert.DoesNotMatch(new Regex(@"st\.global(\.\w+)*\.(v2\.|v4\.)?f32"), ptx);
        Assert.DoesNotMatch(new Regex(@"atom\.|membar\.gl"), ptx);

        // Local memory: only ILGPU's 4-byte slots of inline-asm outputs (two shared-base reads, the four floats of the
        // summed vector), each loaded only after the asm's result was stored into it (ptxas forwards those to registers: see the
        // SASS notes). No other slot: no spilled accumulator, no struct on the stack.
        Assert.Equal(2 + 4, Regex.Matches(ptx, @"\.local \.align 4 \.b8 __local_depot\d+\[4\];").Count);
        Assert.DoesNotMatch(new Regex(@"__local_depot\d+\[(?!4\])"), ptx);
        foreach (Match load in Regex.Matches(ptx, @"\tld\.local\.\w+\t%\w+, \[(%rd\d+)\];"))
        {
            string stored = "st.local.";
            int before = ptx.LastIndexOf("[" + load.Groups[1].Value + "], %", load.Index, StringComparison.Ordinal);
            Assert.True(before > 0 && ptx.LastIndexOf(stored, before, StringComparison.Ordinal) > ptx.LastIndexOf('\n', before), $"a local load that is not an asm output's round trip: {load.Value}");
        }
    }

    /// <summary>
    /// The padded tile's addresses (<see cref="PtxClusterReducePadded{TSize}.ByteOf"/>): one 16-byte slot per vector inside
    /// the tile's bytes, and the publish of one 8-column block by a warp (lanes 2j: row g, columns 4j..; lanes 2j + 1: row
    /// g + 8) spread over the eight 16-byte bank groups four times each (the minimum for 32 16-byte stores).
    /// </summary>
    [Fact]
    public void PaddedTileAddressesAreDistinctAndConflictFree()
    {
        const int Columns = WgmmaSkinnyGemmKernels.BlockNNarrow;
        int shift = WgmmaSkinnyGemmKernels.ClusterRowShiftOf(Columns);
        int vectors = WgmmaSkinnyGemmKernels.BlockM * (Columns / 4);
        var bytes = Enumerable.Range(0, vectors).Select(v => PtxClusterReducePadded<Const4>.ByteOf(v, shift)).ToArray();
        Assert.Equal(vectors, bytes.Distinct().Count());
        Assert.All(bytes, b => Assert.True(b % 16 == 0 && b + 16 <= WgmmaSkinnyGemmKernels.ClusterTileBytes));
        for (int warp = 0; warp < 4; warp++)
        {
            for (int block = 0; block < Columns / 8; block++)
            {
                var groups = Enumerable.Range(0, 32).Select(lane =>
                {
                    int row = (warp * 16) + (lane >> 2) + ((lane & 1) * 8);
                    int col = (block * 8) + (((lane & 3) >> 1) * 4);
                    return PtxClusterReducePadded<Const4>.ByteOf((row * (Columns / 4)) + (col >> 2), shift) / 16 % 8;
                }).GroupBy(g => g).Select(g => g.Count()).ToArray();
                Assert.Equal(8, groups.Length);
                Assert.All(groups, count => Assert.Equal(4, count));
            }
        }
    }

    /// <summary>
    /// The n64 kernel that sums its splits in the same launch (<c>GEMS_SPLITK_REDUCE=fused-all</c>) on the simulator: every
    /// element against float64 and bit-identical to the launched reduce of the same plan, NaN-poisoned outputs and partials,
    /// tickets back at zero: 16 and 12 rows (the down projection's), 17 and 64, 6 splits (no cluster size) and 3, 5, both B
    /// layouts and formats, row and matrix bias with alpha / beta, N with a ragged last tile (8, 12 or 36 columns).
    /// </summary>
    [Theory]
    [InlineData(true, 16, 1152, 136, false, false, false, 6)]
    [InlineData(false, 16, 1112, 72, false, true, false, 6)]
    [InlineData(true, 12, 704, 100, true, true, true, 6)]
    [InlineData(false, 12, 520, 64, true, false, false, 3)]
    [InlineData(true, 17, 640, 76, true, true, true, 5)]
    [InlineData(false, 64, 768, 136, false, false, false, 6)]
    public void EmulatedTicketsMatchFloat64AndTheLaunchedReduce(bool bf16, int m, int k, int n, bool transposeB, bool bias, bool biasIsMatrix, int splits)
    {
        int seed = 8300 + (m * 7) + (k * 5) + n + (bf16 ? 1 : 0) + (transposeB ? 2 : 0) + (bias ? 4 : 0) + (biasIsMatrix ? 8 : 0) + (splits * 1000);
        AssertSplitFormMatchesTheLaunchedReduce("splits summed in the launch", seed, bf16, m, k, n, transposeB, bias, biasIsMatrix, splits,
            WgmmaSkinnyLaunch.Config(splits, n, WgmmaSkinnyGemmKernels.BlockNNarrow), ticketsEmulated);
    }

    /// <summary>
    /// Runs a form of the n64 body that sums its splits itself (<paramref name="splitForm"/> on <paramref name="config"/>,
    /// partials NaN-poisoned, tickets zeroed) beside the launched reduce of the same plan (the emulated body writing
    /// partials on Grid.Z, then GemvReduce16), fresh random inputs: every element within tolerance of float64, bit-equal to
    /// the launched reduce's, NaN-poisoned outputs all written, the tickets back at zero.
    /// </summary>
    private void AssertSplitFormMatchesTheLaunchedReduce(string form, int seed, bool bf16, int m, int k, int n, bool transposeB, bool bias, bool biasIsMatrix,
        int splits, KernelConfig config,
        Action<KernelConfig, ArrayView<ushort>, ArrayView<ushort>, ArrayView<ushort>, ArrayView<ushort>, ArrayView<float>, ArrayView<int>, ArrayView<float>, TensorCoreShape, int> splitForm)
    {
        const int Columns = WgmmaSkinnyGemmKernels.BlockNNarrow;
        var acc = warp32.Accelerator;
        var (a, av) = Random16(seed, m * k, bf16, -1f, 1f);
        var (b, bv) = Random16(seed + 1, k * n, bf16, -1f, 1f);
        var (biasBits, biasValues) = bias ? Random16(seed + 2, biasIsMatrix ? m * n : n, bf16) : (Array.Empty<ushort>(), Array.Empty<float>());
        float alpha = bias ? 0.75f : 1f, beta = bias ? -1.25f : 0f;
        var (planned, kChunk) = WgmmaLaunch.ChunkK(k, splits);
        Assert.Equal(splits, planned);

        double B(int kk, int j) => transposeB ? bv[(j * k) + kk] : bv[(kk * n) + j];
        var expected = Enumerable.Range(0, m * n).Select(e =>
        {
            int r = e / n, j = e % n;
            double v = alpha * Enumerable.Range(0, k).Sum(t => (double)av[(r * k) + t] * B(t, j));
            return bias ? v + (beta * biasValues[biasIsMatrix ? (r * n) + j : j]) : v;
        }).ToArray();

        using var aBuffer = acc.Allocate1D(a);
        using var bBuffer = acc.Allocate1D(b);
        using var biasBuffer = acc.Allocate1D(biasBits.Length == 0 ? new ushort[1] : biasBits);
        using var launched = acc.Allocate1D<ushort>(m * n);
        using var summed = acc.Allocate1D<ushort>(m * n);
        using var partial = acc.Allocate1D<float>(splits * m * n);
        using var tickets = acc.Allocate1D<int>((n + Columns - 1) / Columns);
        using var scratch = acc.Allocate1D<float>(WgmmaSkinnyLaunch.EmulationScratch(splits, n, Columns));
        ArrayView<ushort> biasView = bias ? biasBuffer.View.AsContiguous() : ArrayView<ushort>.Empty;
        var shape = TensorCoreLaunch.Shape(aBuffer.View, bBuffer.View, biasView, m, k, n, transposeB, alpha, beta, biasIsMatrix, bf16, asyncCopyAllowed: true);
        Assert.True(WgmmaSkinnyLaunch.Supports(shape));
        shape = TensorCoreLaunch.WithSplitK(shape, splits, kChunk);
        shape.PairStores = TensorCoreLaunch.PairStores(launched.View, n);

        launched.CopyFromCPU(Enumerable.Repeat(NaN16(bf16), m * n).ToArray());
        partial.CopyFromCPU(Enumerable.Repeat(float.NaN, splits * m * n).ToArray());
        emulated(WgmmaSkinnyLaunch.Config(splits, n, Columns), aBuffer.View, bBuffer.View, biasView, launched.View, partial.View, scratch.View, shape, Columns);
        reduce(new KernelConfig(((m * n) + 255) / 256, 256), partial.View, biasView, launched.View, TensorCoreLaunch.ReduceShape(shape), bf16 ? 1 : 0);

        summed.CopyFromCPU(Enumerable.Repeat(NaN16(bf16), m * n).ToArray());
        partial.CopyFromCPU(Enumerable.Repeat(float.NaN, splits * m * n).ToArray());
        tickets.MemSetToZero();
        splitForm(config, aBuffer.View, bBuffer.View, biasView, summed.View, partial.View, tickets.View, scratch.View, shape, Columns);
        acc.Synchronize();

        string what = $"small-M wgmma {form}, {m}x{k}x{n} transposeB={transposeB} bias={bias} matrix={biasIsMatrix} splits={splits} chunk={kChunk} ({F(bf16)})";
        var launchedBits = launched.GetAsArray1D();
        var summedBits = summed.GetAsArray1D();
        AssertClose(ToFloat(summedBits, bf16), expected, Rtol(bf16), Atol * k, what, seed);
        int differing = Enumerable.Range(0, m * n).Count(e => launchedBits[e] != summedBits[e]);
        Assert.True(differing == 0, $"{what}: {differing} of {m * n} outputs differ in their bits from the launched reduce's");
        Assert.All(tickets.GetAsArray1D(), t => Assert.Equal(0, t));
    }

    /// <summary>
    /// Which split plans sum in their own launch: by default (and <c>cluster</c>) 64-column tiles of up to 16 rows whose
    /// split count is no cluster size (the 6 of 16 and 12 × 4096 × 11008), N % 4 = 0; <c>fused</c> any count at up to 16
    /// rows; <c>fused-all</c> every split plan of 64-column tiles; <c>launch</c> none.
    /// </summary>
    [Theory]
    [InlineData("cluster", 64, 6, 16, 4096, true)]
    [InlineData(null, 64, 6, 12, 4096, true)]
    [InlineData(null, 64, 3, 16, 4096, true)]
    [InlineData(null, 64, 6, 17, 4096, false)]
    [InlineData(null, 64, 6, 32, 4096, false)]
    [InlineData(null, 64, 4, 16, 4096, false)]
    [InlineData(null, 64, 2, 16, 11008, false)]
    [InlineData(null, 64, 1, 16, 4096, false)]
    [InlineData(null, 128, 6, 16, 4096, false)]
    [InlineData(null, 64, 6, 16, 4098, false)]
    [InlineData("launch", 64, 6, 16, 4096, false)]
    [InlineData("fused", 64, 4, 16, 4096, true)]
    [InlineData("fused", 64, 6, 32, 4096, false)]
    [InlineData("fused-all", 64, 4, 64, 4096, true)]
    [InlineData("fused-all", 128, 4, 64, 4096, false)]
    public void SplitsSumInTheLaunch(string? setting, int columns, int splits, int m, int n, bool takes) =>
        Assert.Equal(takes, WgmmaSkinnyLaunch.SumsSplitsInLaunch(SplitKReduceSettings.Parse(setting), columns, splits, m, n));

    /// <summary>
    /// The PTX of the kernel that sums its splits in the launch: the n64 body's one stage of wgmma, one ticket
    /// (<c>atom.global.add</c>) behind a device-wide fence, and the last group's sum as 16-byte loads of the partials.
    /// </summary>
    [Theory]
    [InlineData(typeof(Bf16MnMajorB), "bf16")]
    [InlineData(typeof(F16MnMajorB), "f16")]
    [InlineData(typeof(Bf16KMajorB), "bf16")]
    public void TicketsPtxTakesOneTicketAfterTheWgmmaBody(Type operands, string type)
    {
        var method = typeof(WgmmaSkinnyGemmKernels).GetMethod(nameof(WgmmaSkinnyGemmKernels.Gemm16WgmmaSkinnyN64Tickets))!.MakeGenericMethod(operands);
        var specialization = new KernelSpecialization(WgmmaSkinnyGemmKernels.GroupSize, WgmmaSkinnyLaunch.GroupsPerSmOf(WgmmaSkinnyGemmKernels.BlockNNarrow));
        string ptx = Sm90aPtx.Rewrite(Sm90Ptx.Of(method, specialization, $"Gemm16WgmmaSkinnyN64Tickets_{operands.Name}"))!;
        Assert.NotNull(ptx);
        Assert.Equal(4, Count(ptx, $"wgmma.mma_async.sync.aligned.m64n64k16.f32.{type}.{type} "));
        Assert.Empty(WgmmaGemmTests.WgmmaBlocksUnderDivergentBranches(ptx));
        Assert.Single(Regex.Matches(ptx, @"\batom\.(global\.add|add\.global)\.[us]32\b"));
        Assert.Matches(new Regex(@"\bmembar\.gl\b|\bfence\.(sc|acq_rel)\.gpu\b"), ptx);
        Assert.True(Regex.Matches(ptx, @"\bld\.global\.v4\.f32\b").Count >= 8, "the last group's sum reads the partials as 16-byte vectors");
        Assert.DoesNotContain("barrier.cluster", ptx, StringComparison.Ordinal);
        Assert.Matches(new Regex(@"\.maxntid\s+128"), ptx);
    }

    /// <summary>The cluster form's emulation compiles without sm_90a (no marker, no wgmma): it must load on the simulator.</summary>
    [Fact]
    public void EmulatedClusterKernelCompilesToPtxWithoutClusters()
    {
        Assert.False(Sm90aPtx.Needs(Sm90Ptx.Of(typeof(WgmmaSkinnyGemmKernels).GetMethod(nameof(WgmmaSkinnyGemmKernels.Gemm16WgmmaSkinnyClusterEmulated))!)));
    }

    /// <summary>With <c>GEMS_SPLITK_REDUCE=cluster</c> the simulator (no 9.0 device) keeps today's dispatch, correct.</summary>
    [Fact]
    public void ClusterSettingOnTheSimulatorKeepsTodaysDispatch()
    {
        var kernels = Device.Kernels;
        var before = (kernels.WgmmaSmallMEnabled, kernels.SplitKReduceMode);
        try
        {
            kernels.WgmmaSmallMEnabled = true;
            kernels.SplitKReduceMode = SplitKReduce.Cluster;
            const int M = 40, K = 128, N = 64;
            var (a, av) = Random16(91, M * K, false, -1f, 1f);
            var (b, bv) = Random16(92, K * N, false, -1f, 1f);
            var c = Upload(Enumerable.Repeat(NaN16(false), M * N).ToArray());
            kernels.Mm(Upload(a), Upload(b), c, M, K, N, HalfFormat.Float16, false);
            var expected = Enumerable.Range(0, M * N).Select(e => Enumerable.Range(0, K).Sum(t => (double)av[(e / N * K) + t] * bv[(t * N) + (e % N)])).ToArray();
            Check16(c, expected, false, "cluster setting on the simulator", 91, Atol * K);
            Assert.Null(kernels.ClusterLoadError);
        }
        finally
        {
            (kernels.WgmmaSmallMEnabled, kernels.SplitKReduceMode) = before;
        }
    }

    private void Run(bool bf16, int batch, int m, int k, int n, bool transposeB, bool bias, bool biasIsMatrix, int requestedSplits, int columns)
    {
        int seed = 5300 + (m * 7) + (k * 5) + n + (bf16 ? 1 : 0) + (transposeB ? 2 : 0) + (bias ? 4 : 0) + (biasIsMatrix ? 8 : 0) + batch + (requestedSplits * 1000) + WgmmaSkinnyGemmKernels.Stages + columns;
        var acc = warp32.Accelerator;
        var (a, av) = Random16(seed, batch * m * k, bf16, -1f, 1f);
        var (b, bv) = Random16(seed + 1, batch * k * n, bf16, -1f, 1f);
        var (biasBits, biasValues) = bias ? Random16(seed + 2, biasIsMatrix ? m * n : n, bf16) : (Array.Empty<ushort>(), Array.Empty<float>());
        float alpha = bias ? 0.75f : 1f, beta = bias ? -1.25f : 0f;
        var (splits, kChunk) = WgmmaLaunch.ChunkK(k, requestedSplits);
        Assert.Equal(requestedSplits, splits);

        double B(int i, int kk, int j) => transposeB ? bv[(i * n * k) + (j * k) + kk] : bv[(i * k * n) + (kk * n) + j];
        var expected = Enumerable.Range(0, batch * m * n).Select(e =>
        {
            int i = e / (m * n), r = e % (m * n) / n, j = e % n;
            double v = alpha * Enumerable.Range(0, k).Sum(t => (double)av[(i * m * k) + (r * k) + t] * B(i, t, j));
            return bias ? v + (beta * biasValues[biasIsMatrix ? (r * n) + j : j]) : v;
        }).ToArray();

        using var aBuffer = acc.Allocate1D(a);
        using var bBuffer = acc.Allocate1D(b);
        using var biasBuffer = acc.Allocate1D(biasBits.Length == 0 ? new ushort[1] : biasBits);
        using var cBuffer = acc.Allocate1D<ushort>(batch * m * n);
        using var partial = acc.Allocate1D<float>(splits * m * n);
        int z = splits > 1 ? splits : batch;
        using var scratch = acc.Allocate1D<float>(WgmmaSkinnyLaunch.EmulationScratch(z, n, columns));
        ArrayView<ushort> biasView = bias ? biasBuffer.View.AsContiguous() : ArrayView<ushort>.Empty;
        var shape = TensorCoreLaunch.Shape(aBuffer.View, bBuffer.View, biasView, m, k, n, transposeB, alpha, beta, biasIsMatrix, bf16, asyncCopyAllowed: true);
        Assert.Equal(m >= 2, WgmmaSkinnyLaunch.Supports(shape));
        shape = TensorCoreLaunch.WithSplitK(shape, splits, kChunk);
        ArrayView<float> partialView = splits > 1 ? partial.View.AsContiguous() : ArrayView<float>.Empty;
        foreach (int pairs in new[] { TensorCoreLaunch.PairStores(cBuffer.View, n), 0 }.Distinct())
        {
            cBuffer.CopyFromCPU(Enumerable.Repeat(NaN16(bf16), batch * m * n).ToArray());
            partial.CopyFromCPU(Enumerable.Repeat(float.NaN, splits * m * n).ToArray());
            shape.PairStores = pairs;
            emulated(WgmmaSkinnyLaunch.Config(z, n, columns), aBuffer.View, bBuffer.View, biasView, cBuffer.View, partialView, scratch.View, shape, columns);
            if (splits > 1)
            {
                reduce(new KernelConfig(((m * n) + 255) / 256, 256), partial.View, biasView, cBuffer.View, TensorCoreLaunch.ReduceShape(shape), bf16 ? 1 : 0);
            }

            acc.Synchronize();
            AssertClose(ToFloat(cBuffer.GetAsArray1D(), bf16), expected, Rtol(bf16), Atol * k,
                $"small-M wgmma emulation, {columns} columns, {batch}x{m}x{k}x{n} transposeB={transposeB} bias={bias} matrix={biasIsMatrix} splits={splits} chunk={kChunk} pairs={pairs} ({F(bf16)})", seed);
        }
    }
}
