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

    public WgmmaSkinnyGemmTests(SimulatorFixture fixture, Warp32SimulatorFixture warp32)
        : base(fixture)
    {
        this.warp32 = warp32;
        emulated = warp32.Accelerator.LoadStreamKernel<ArrayView<ushort>, ArrayView<ushort>, ArrayView<ushort>, ArrayView<ushort>, ArrayView<float>, ArrayView<float>, TensorCoreShape, int>(
            WgmmaSkinnyGemmKernels.Gemm16WgmmaSkinnyEmulated);
        reduce = warp32.Accelerator.LoadStreamKernel<ArrayView<float>, ArrayView<ushort>, ArrayView<ushort>, HalfGemvShape, int>(HalfGemvKernels.GemvReduce16);
    }

    private static string CompilePtx(Type operands, int columns)
    {
        bool narrow = columns == WgmmaSkinnyGemmKernels.BlockNNarrow;
        string name = narrow ? nameof(WgmmaSkinnyGemmKernels.Gemm16WgmmaSkinnyN64) : nameof(WgmmaSkinnyGemmKernels.Gemm16WgmmaSkinny);
        using var context = Context.Create(b => b.Optimize(OptimizationLevel.O2));
        using var backend = new PTXBackend(context, new CudaCapabilityContext(CudaArchitecture.SM_90),
            CudaArchitecture.SM_90, CudaInstructionSet.ISA_80, nvvmAPI: null);
        var method = typeof(WgmmaSkinnyGemmKernels).GetMethod(name)!.MakeGenericMethod(operands);
        var entry = EntryPointDescription.FromExplicitlyGroupedKernel(method);
        string ptx = ((PTXCompiledKernel)backend.Compile(entry, new KernelSpecialization(WgmmaSkinnyGemmKernels.GroupSize, WgmmaSkinnyLaunch.GroupsPerSmOf(columns)))).PTXAssembly;

        // For reading registers, stack frame and SASS with ptxas / nvdisasm outside the tests.
        string? dump = Environment.GetEnvironmentVariable("GEMS_PTX_DUMP_DIR");
        if (!string.IsNullOrEmpty(dump))
        {
            System.IO.Directory.CreateDirectory(dump);
            System.IO.File.WriteAllText(System.IO.Path.Combine(dump, $"{name}_{operands.Name}.ptx"), ptx);
        }

        return ptx;
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
        using var context = Context.Create(b => b.Optimize(OptimizationLevel.O2));
        using var backend = new PTXBackend(context, new CudaCapabilityContext(CudaArchitecture.SM_90),
            CudaArchitecture.SM_90, CudaInstructionSet.ISA_80, nvvmAPI: null);
        var entry = EntryPointDescription.FromExplicitlyGroupedKernel(typeof(WgmmaSkinnyGemmKernels).GetMethod(nameof(WgmmaSkinnyGemmKernels.Gemm16WgmmaSkinnyEmulated))!);
        Assert.False(Sm90aPtx.Needs(((PTXCompiledKernel)backend.Compile(entry, default)).PTXAssembly));
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
