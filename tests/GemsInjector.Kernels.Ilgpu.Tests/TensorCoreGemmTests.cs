using System;
using System.Linq;
using System.Text.RegularExpressions;
using GemsInjector.Kernels.Ilgpu;
using ILGPU;
using ILGPU.Runtime;
using ILGPU.Runtime.CPU;
using ILGPU.Runtime.Cuda;
using Xunit;

namespace GemsInjector.Kernels.Ilgpu.Tests;

/// <summary>
/// The tensor-core GEMM: its PTX (mma.sync, ldmatrix, cp.async present, accumulators declared once before use) and its
/// kernel body run on the CPU with ldmatrix / mma.sync emulated lane by lane, against float64 references on shapes that
/// cut every tile edge (M, N not multiples of the tile, K not a multiple of 16, odd K), for both warp tiles (4 and 8
/// n-blocks: 128 × 128 and 128 × 256 group tiles).
/// </summary>
[Collection(SimulatorCollection.Name)]
public sealed class TensorCoreGemmTests : Half16TestBase, IClassFixture<Warp32SimulatorFixture>
{
    private readonly Warp32SimulatorFixture warp32;
    private readonly System.Collections.Generic.Dictionary<string, Action<KernelConfig, ArrayView<ushort>, ArrayView<ushort>, ArrayView<ushort>, ArrayView<ushort>, ArrayView<float>, ArrayView<float>, TensorCoreShape>> emulated;

    // The split-K reduction the facade launches after a split tensor-core GEMM.
    private readonly Action<KernelConfig, ArrayView<float>, ArrayView<ushort>, ArrayView<ushort>, HalfGemvShape, int> reduce;

    public TensorCoreGemmTests(SimulatorFixture fixture, Warp32SimulatorFixture warp32)
        : base(fixture)
    {
        this.warp32 = warp32;
        var accelerator = warp32.Accelerator;
        emulated = new()
        {
            ["square"] = accelerator.LoadStreamKernel<ArrayView<ushort>, ArrayView<ushort>, ArrayView<ushort>, ArrayView<ushort>, ArrayView<float>, ArrayView<float>, TensorCoreShape>(
                TensorCoreGemmKernels.Gemm16TensorCoreEmulated<SquareTile>),
            ["quad"] = accelerator.LoadStreamKernel<ArrayView<ushort>, ArrayView<ushort>, ArrayView<ushort>, ArrayView<ushort>, ArrayView<float>, ArrayView<float>, TensorCoreShape>(
                TensorCoreGemmKernels.Gemm16TensorCoreEmulated<QuadTile>),
            ["wide"] = accelerator.LoadStreamKernel<ArrayView<ushort>, ArrayView<ushort>, ArrayView<ushort>, ArrayView<ushort>, ArrayView<float>, ArrayView<float>, TensorCoreShape>(
                TensorCoreGemmKernels.Gemm16TensorCoreEmulated<WideTile>),
        };
        reduce = warp32.Accelerator.LoadStreamKernel<ArrayView<float>, ArrayView<ushort>, ArrayView<ushort>, HalfGemvShape, int>(HalfGemvKernels.GemvReduce16);
    }

    /// <summary>The tile type a test names, with its n-blocks per warp and warps along N.</summary>
    private static (Type Type, int NBlocks, int WarpColumns) Tile(string tile) => tile switch
    {
        "square" => (typeof(SquareTile), 4, 4),
        "quad" => (typeof(QuadTile), 8, 2),
        "wide" => (typeof(WideTile), 8, 4),
        _ => throw new ArgumentOutOfRangeException(nameof(tile), tile, "square, quad or wide"),
    };

    private static string CompilePtx(string kernelName, string tile, KernelSpecialization specialization = default)
    {
        var method = typeof(TensorCoreGemmKernels).GetMethod(kernelName)!.MakeGenericMethod(Tile(tile).Type);
        return Sm90Ptx.Of(method, specialization);
    }

    private static int Count(string text, string what) => Regex.Matches(text, Regex.Escape(what)).Count;

    [Theory]
    [InlineData("square")]
    [InlineData("quad")]
    [InlineData("wide")]
    public void PtxHasTheTensorCoreInstructionsForBothFormats(string tile)
    {
        // The bfloat16 epilogue's conversion slots (PtxLocalSlots) are not operands or spills: counted out below.
        string ptx = PtxLocalSlots.WithoutConversionSlots(CompilePtx(nameof(TensorCoreGemmKernels.Gemm16TensorCore), tile));
        int nBlocks = Tile(tile).NBlocks;
        int accumulators = TensorCoreGemmKernels.Accumulators(nBlocks);

        // One k16 step per stage, inlined at two call sites (cp.async staging, and element-wise staging that stores
        // after the step), each with four variants (bf16 / f16 × B layout) of 4 · n-blocks mma and 4 + n-blocks / 2
        // ldmatrix (4 for A, one per n-pair for B, .trans when b is [K, N]): ILGPU must neither drop nor duplicate an
        // asm block, nor keep the other warp tile's.
        Assert.Equal(2 * 2 * 4 * nBlocks, Count(ptx, "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32"));
        Assert.Equal(2 * 2 * 4 * nBlocks, Count(ptx, "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32"));
        Assert.Equal(2 * 2 * (nBlocks / 2), Count(ptx, "ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16"));
        Assert.Equal(2 * ((2 * (4 + (nBlocks / 2))) + (2 * 4)), Count(ptx, "ldmatrix.sync.aligned.m8n8.x4.shared.b16"));
        Assert.Equal(1, Count(ptx, $", tca{accumulators - 1};"));
        Assert.Contains("cp.async.cg.shared.global", ptx, StringComparison.Ordinal);
        Assert.Contains("cp.async.commit_group;", ptx, StringComparison.Ordinal);
        Assert.Contains("cp.async.wait_group 2;", ptx, StringComparison.Ordinal);

        // No operand of the prologue or the K loop goes through local memory (CudaAsm.EmitRef's Input<T> slots became
        // st.local / ld.local pairs; asm operands are passed by value instead). The only local loads left are the 16
        // epilogue read slots (loaded once, after the switch over accumulator parts) and the shared base of the entry
        // block: one more load anywhere means an operand or a spill went through local memory.
        Assert.Equal(16, Count(ptx, "ld.local.f32"));
        Assert.Equal(1, Count(ptx, "ld.local.b32"));
        Assert.Equal(17, Regex.Matches(ptx, @"ld\.local").Count);

        // Split-K: a split group stores its raw float32 sums to the partials instead of 16-bit C; both in column pairs
        // (one 32-bit word of C, 8 bytes of partials) when aligned, else element by element.
        Assert.Contains("st.global.f32", ptx, StringComparison.Ordinal);
        Assert.Contains("st.global.v2.f32", ptx, StringComparison.Ordinal);
        Assert.Contains("st.global.b16", ptx, StringComparison.Ordinal);
        Assert.Contains("st.global.b32", ptx, StringComparison.Ordinal);
        Assert.Contains("mov.u32", ptx, StringComparison.Ordinal);
        Assert.Contains("__dyn_shared_alloca;", ptx, StringComparison.Ordinal);

        // The accumulators are function-scope PTX registers: one declaration, in the one function, before any use.
        Assert.Equal(1, Count(ptx, ".reg .f32 tca<"));
        Assert.Equal(1, Count(ptx, $".reg .f32 tca<{accumulators}>;"));
        Assert.DoesNotContain(".func", ptx, StringComparison.Ordinal);
        int declaration = ptx.IndexOf($".reg .f32 tca<{accumulators}>;", StringComparison.Ordinal);
        int firstMma = ptx.IndexOf("mma.sync", StringComparison.Ordinal);
        int firstRead = ptx.IndexOf(", tca0;", StringComparison.Ordinal);
        Assert.True(declaration < firstMma && declaration < firstRead, "the accumulator declaration must precede its uses in the PTX text");

        // Every operand placeholder was substituted (a leftover %0 would be an undefined PTX name).
        Assert.DoesNotMatch(new Regex(@"\[%\d|\{%\d|, %\d+[,;]"), ptx);
    }

    /// <summary>The two-groups-per-SM variant's launch bounds reach the PTX (ptxas then keeps to 128 registers per thread).</summary>
    [Fact]
    public void TwoGroupsPerSmBoundsReachThePtx()
    {
        string ptx = CompilePtx(nameof(TensorCoreGemmKernels.Gemm16TensorCore), "square", new KernelSpecialization(TensorCoreGemmKernels.GroupSize(4), 2));
        Assert.Matches(new Regex(@"\.maxntid\s+256"), ptx);
        Assert.Matches(new Regex(@"\.minnctapersm\s+2"), ptx);
        string quad = CompilePtx(nameof(TensorCoreGemmKernels.Gemm16TensorCore), "quad", new KernelSpecialization(TensorCoreGemmKernels.GroupSize(2), 2));
        Assert.Matches(new Regex(@"\.maxntid\s+128"), quad);
        Assert.Matches(new Regex(@"\.minnctapersm\s+2"), quad);
    }

    [Theory]
    [InlineData("square")]
    [InlineData("quad")]
    [InlineData("wide")]
    public void EmulatedKernelAlsoCompilesToPtx(string tile)
    {
        string ptx = CompilePtx(nameof(TensorCoreGemmKernels.Gemm16TensorCoreEmulated), tile);
        Assert.DoesNotContain("mma.sync", ptx, StringComparison.Ordinal);
        Assert.Contains(".entry", ptx, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("square", true, 1, 130, 72, 136, false, false, false)]
    [InlineData("square", false, 1, 130, 72, 136, false, false, false)]
    [InlineData("square", true, 1, 70, 45, 129, true, true, false)]
    [InlineData("square", false, 1, 70, 45, 129, true, true, true)]
    [InlineData("square", true, 2, 33, 17, 20, false, true, true)]
    [InlineData("square", false, 2, 128, 40, 24, true, false, false)]
    [InlineData("square", true, 1, 40, 203, 24, false, true, false)]
    [InlineData("wide", true, 1, 130, 72, 264, false, false, false)]
    [InlineData("wide", false, 1, 130, 72, 264, true, false, false)]
    [InlineData("wide", true, 1, 70, 45, 129, true, true, false)]
    [InlineData("wide", false, 1, 70, 45, 300, false, true, true)]
    [InlineData("wide", true, 2, 33, 17, 20, false, true, true)]
    [InlineData("wide", false, 2, 128, 40, 24, true, false, false)]
    [InlineData("wide", true, 1, 40, 203, 24, false, true, false)]
    [InlineData("quad", true, 1, 130, 72, 136, false, false, false)]
    [InlineData("quad", false, 1, 130, 72, 136, true, true, true)]
    [InlineData("quad", true, 1, 70, 45, 129, true, true, false)]
    [InlineData("quad", false, 1, 70, 45, 129, false, false, false)]
    [InlineData("quad", true, 2, 33, 17, 20, false, true, true)]
    [InlineData("quad", false, 1, 40, 203, 24, true, true, false)]
    [InlineData("quad", true, 1, 136, 200, 136, false, true, true)]
    [InlineData("wide", false, 1, 72, 200, 264, true, true, false)]
    [InlineData("square", true, 1, 72, 200, 136, false, false, false)]
    public void EmulatedKernelMatchesFloat64(string tile, bool bf16, int batch, int m, int k, int n, bool transposeB, bool bias, bool biasIsMatrix) =>
        RunEmulated(tile, bf16, batch, m, k, n, transposeB, bias, biasIsMatrix, requestedSplits: 1);

    /// <summary>
    /// The ldmatrix row addresses of every lane, for every stage, warp, m-block / n-pair and both B layouts: 16-byte
    /// aligned, inside the operand's stage, and the eight rows of each 8-lane phase in eight distinct bank quads (a
    /// conflict-free shared load). Every thread's staged chunks cover each 16-byte slot of a stage exactly once.
    /// </summary>
    [Theory]
    [InlineData("square")]
    [InlineData("quad")]
    [InlineData("wide")]
    public void SwizzledStagesAreConflictFreeAndCoverEverySlotOnce(string tile)
    {
        var (_, nBlocks, warpColumns) = Tile(tile);
        for (int stage = 0; stage < TensorCoreGemmKernels.Stages; stage++)
        {
            for (int warp = 0; warp < TensorCoreGemmKernels.GroupSize(warpColumns) / 32; warp++)
            {
                int warpRow = warp / warpColumns, warpCol = warp % warpColumns;
                for (int mb = 0; mb < TensorCoreGemmKernels.MBlocks; mb++)
                {
                    int[] rows = Enumerable.Range(0, 32).Select(l => TensorCoreGemmKernels.ALaneByte(stage, warpRow, l) + (mb * TensorCoreGemmKernels.AmBlockStrideBytes)).ToArray();
                    AssertPhasesConflictFree(rows, TensorCoreGemmKernels.AStageOffset(stage), TensorCoreGemmKernels.AStageBytes, $"A stage {stage} warp {warp} m-block {mb}");
                }

                for (int transposeB = 0; transposeB < 2; transposeB++)
                {
                    for (int pair = 0; pair < nBlocks / 2; pair++)
                    {
                        int[] rows = Enumerable.Range(0, 32).Select(l => TensorCoreGemmKernels.BLaneByte(stage, warpCol, pair, l, transposeB, nBlocks, warpColumns)).ToArray();
                        AssertPhasesConflictFree(rows, TensorCoreGemmKernels.BStageOffset(stage, nBlocks, warpColumns), TensorCoreGemmKernels.BStageBytes(nBlocks, warpColumns),
                            $"B (transposed {transposeB}) stage {stage} warp {warp} pair {pair}");
                    }
                }
            }
        }

        // Staging: chunk q of a stage (thread q, and thread q - group size for a second chunk per thread) lands once.
        int threads = TensorCoreGemmKernels.GroupSize(warpColumns);
        Assert.Equal(TensorCoreGemmKernels.AStageBytes / 16, threads * TensorCoreGemmKernels.AChunksPerThread(warpColumns));
        Assert.Equal(TensorCoreGemmKernels.BStageBytes(nBlocks, warpColumns) / 16, threads * TensorCoreGemmKernels.BChunksPerThread(nBlocks, warpColumns));
        AssertCoversOnce(Enumerable.Range(0, TensorCoreGemmKernels.AStageBytes / 16).Select(q => TensorCoreGemmKernels.KRowByte(q >> 1, q & 1)), TensorCoreGemmKernels.AStageBytes, "A chunks");
        int bChunks = TensorCoreGemmKernels.BStageBytes(nBlocks, warpColumns) / 16;
        AssertCoversOnce(Enumerable.Range(0, bChunks).Select(q => TensorCoreGemmKernels.KRowByte(q >> 1, q & 1)), TensorCoreGemmKernels.BStageBytes(nBlocks, warpColumns), "B [N, K] chunks");
        int perRow = TensorCoreGemmKernels.BlockN(nBlocks, warpColumns) / 8;
        AssertCoversOnce(Enumerable.Range(0, bChunks).Select(q => TensorCoreGemmKernels.NRowByte(q / perRow, q % perRow, nBlocks, warpColumns)), TensorCoreGemmKernels.BStageBytes(nBlocks, warpColumns), "B [K, N] chunks");
    }

    private static void AssertPhasesConflictFree(int[] laneBytes, int stageStart, int stageBytes, string what)
    {
        Assert.All(laneBytes, a => Assert.True(a % 16 == 0 && a >= stageStart && a + 16 <= stageStart + stageBytes, $"{what}: row address {a} outside its stage or misaligned"));
        for (int phase = 0; phase < 4; phase++)
        {
            var quads = laneBytes.Skip(phase * 8).Take(8).Select(a => (a / 16) % 8).Distinct().Count();
            Assert.True(quads == 8, $"{what}: phase {phase} rows fall in {quads} bank quads, not 8");
        }
    }

    private static void AssertCoversOnce(System.Collections.Generic.IEnumerable<int> chunkBytes, int stageBytes, string what)
    {
        var sorted = chunkBytes.OrderBy(x => x).ToArray();
        Assert.Equal(Enumerable.Range(0, stageBytes / 16).Select(i => i * 16), sorted);
        Assert.True(sorted.Length == stageBytes / 16, what);
    }

    [Theory]
    [InlineData(null, (int)TensorCoreGemmVariant.WgmmaPersistentStores)]
    [InlineData("", (int)TensorCoreGemmVariant.WgmmaPersistentStores)]
    [InlineData("wide", (int)TensorCoreGemmVariant.Wide)]
    [InlineData(" Square2 ", (int)TensorCoreGemmVariant.SquareTwoPerSm)]
    [InlineData("QUAD2", (int)TensorCoreGemmVariant.QuadTwoPerSm)]
    [InlineData("square", (int)TensorCoreGemmVariant.Square)]
    [InlineData("bogus", (int)TensorCoreGemmVariant.WgmmaPersistentStores)]
    public void VariantSettingNamesTheTile(string? setting, int expectedVariant)
    {
        var expected = (TensorCoreGemmVariant)expectedVariant;
        Assert.Equal(expected, TensorCoreVariants.Parse(setting));
        Assert.Equal(expected, TensorCoreVariants.Parse(TensorCoreVariants.Name(expected)));
    }

    /// <summary>
    /// Split-K forced on the emulation (the simulator reports no SMs, so the planner never splits there): grid z takes
    /// chunks of K that are whole k16 tiles, the last one shorter (K not a multiple of the chunk, odd K), each group
    /// writes float32 partials into a NaN-poisoned buffer and GemvReduce16 applies alpha, beta·bias and the rounding into
    /// a NaN-poisoned C. A chunk that skipped or repeated a tile, a split writing another's partials, or a reduction
    /// missing a split all miss the float64 reference.
    /// </summary>
    [Theory]
    [InlineData("square", true, 40, 203, 24, false, true, false, 3)]
    [InlineData("square", false, 70, 100, 129, true, true, true, 4)]
    [InlineData("square", false, 33, 64, 20, false, false, false, 2)]
    [InlineData("square", true, 130, 75, 136, true, true, false, 5)]
    [InlineData("wide", true, 40, 203, 24, false, true, false, 3)]
    [InlineData("wide", false, 70, 100, 129, true, true, true, 4)]
    [InlineData("wide", true, 130, 75, 260, true, true, false, 5)]
    [InlineData("wide", false, 130, 75, 260, false, false, false, 2)]
    [InlineData("quad", false, 70, 100, 129, true, true, true, 4)]
    [InlineData("quad", true, 130, 75, 136, false, true, false, 5)]
    public void EmulatedSplitKMatchesFloat64(string tile, bool bf16, int m, int k, int n, bool transposeB, bool bias, bool biasIsMatrix, int requestedSplits) =>
        RunEmulated(tile, bf16, 1, m, k, n, transposeB, bias, biasIsMatrix, requestedSplits);

    private void RunEmulated(string tile, bool bf16, int batch, int m, int k, int n, bool transposeB, bool bias, bool biasIsMatrix, int requestedSplits)
    {
        var (_, nBlocks, warpColumns) = Tile(tile);
        int seed = 4200 + (m * 7) + (k * 5) + n + (bf16 ? 1 : 0) + (transposeB ? 2 : 0) + (bias ? 4 : 0) + (biasIsMatrix ? 8 : 0) + batch + ((requestedSplits - 1) * 1000) + (nBlocks * warpColumns * 100000);
        var acc = warp32.Accelerator;
        var (a, av) = Random16(seed, batch * m * k, bf16, -1f, 1f);
        var (b, bv) = Random16(seed + 1, batch * k * n, bf16, -1f, 1f);
        var (biasBits, biasValues) = bias ? Random16(seed + 2, biasIsMatrix ? m * n : n, bf16) : (Array.Empty<ushort>(), Array.Empty<float>());
        const float Alpha = 0.75f, Beta = -1.25f;
        float alpha = bias ? Alpha : 1f, beta = bias ? Beta : 0f;
        var (splits, kChunk) = TensorCoreLaunch.ChunkK(k, requestedSplits);
        Assert.Equal(requestedSplits, splits);
        Assert.True(splits == 1 || (kChunk % TensorCoreGemmKernels.BlockK == 0 && (splits - 1) * kChunk < k && k <= splits * kChunk));

        double B(int i, int kk, int j) => transposeB ? bv[(i * n * k) + (j * k) + kk] : bv[(i * k * n) + (kk * n) + j];
        var expected = Enumerable.Range(0, batch * m * n).Select(e =>
        {
            int i = e / (m * n), r = e % (m * n) / n, j = e % n;
            double dot = Enumerable.Range(0, k).Sum(t => (double)av[(i * m * k) + (r * k) + t] * B(i, t, j));
            double v = alpha * dot;
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
        using var scratch = acc.Allocate1D<float>(TensorCoreLaunch.EmulationScratch(splits > 1 ? splits : batch, m, n, nBlocks, warpColumns));
        ArrayView<ushort> biasView = bias ? biasBuffer.View.AsContiguous() : ArrayView<ushort>.Empty;
        var shape = TensorCoreLaunch.Shape(aBuffer.View, bBuffer.View, biasView, m, k, n, transposeB, alpha, beta, biasIsMatrix, bf16, asyncCopyAllowed: false);
        shape = TensorCoreLaunch.WithSplitK(shape, splits, kChunk);
        ArrayView<float> partialView = splits > 1 ? partial.View.AsContiguous() : ArrayView<float>.Empty;

        // Element-wise staging always; when every chunk is whole (K, and N for a [K, N] b, multiples of 8) also the
        // cp.async K loop, whose copies the emulation performs at once (a stricter order than cp.async's: the loop must
        // already keep every stage it refills out of reach of the warps still reading it).
        bool wholeChunks = k % 8 == 0 && (transposeB || n % 8 == 0);
        foreach (int asyncCopy in wholeChunks ? new[] { 0, 1 } : new[] { 0 })
        {
            cBuffer.CopyFromCPU(Enumerable.Repeat(NaN16(bf16), batch * m * n).ToArray());
            partial.CopyFromCPU(Enumerable.Repeat(float.NaN, splits * m * n).ToArray());
            shape.AsyncCopy = asyncCopy;

            // Paired stores of C / partials (N even) in the cp.async run, or the only run; element stores otherwise.
            shape.PairStores = asyncCopy == 1 || !wholeChunks ? TensorCoreLaunch.PairStores(cBuffer.View, n) : 0;
            emulated[tile](TensorCoreLaunch.Config(splits > 1 ? splits : batch, m, n, nBlocks, warpColumns), aBuffer.View, bBuffer.View, biasView, cBuffer.View, partialView, scratch.View, shape);
            if (splits > 1)
            {
                reduce(new KernelConfig(((m * n) + 255) / 256, 256), partial.View, biasView, cBuffer.View, TensorCoreLaunch.ReduceShape(shape), bf16 ? 1 : 0);
            }

            acc.Synchronize();
            var got = ToFloat(cBuffer.GetAsArray1D(), bf16);
            AssertClose(got, expected, Rtol(bf16), Atol * k,
                $"tensor-core emulation, {tile} tile, {batch}x{m}x{k}x{n} transposeB={transposeB} bias={bias} matrix={biasIsMatrix} splits={splits} chunk={kChunk} async loop={asyncCopy} pairs={shape.PairStores} ({F(bf16)})", seed);
        }
    }

    /// <summary>
    /// The split-K planner on an H100 / H200-sized device (132 SMs): one wave of groups for single matrices with few
    /// tiles (64 and 256 rows of a 4096 × 4096 weight; 512 rows too with 128 × 256 tiles), nothing for products that
    /// already fill the SMs, for bmm (grid z is the batch), for a device with no SM count, or when K is too shallow for
    /// chunks of sixteen k16 tiles.
    /// </summary>
    [Theory]
    [InlineData(4, 1, 64, 4096, 4096, 132, 4, 1024)]
    [InlineData(4, 1, 17, 4096, 4096, 132, 4, 1024)]
    [InlineData(4, 1, 256, 4096, 4096, 132, 2, 2048)]
    [InlineData(4, 1, 512, 4096, 4096, 132, 1, 4096)]
    [InlineData(4, 1, 4096, 4096, 4096, 132, 1, 4096)]
    [InlineData(4, 8, 64, 4096, 4096, 132, 1, 4096)]
    [InlineData(4, 1, 64, 4096, 4096, 0, 1, 4096)]
    [InlineData(4, 1, 64, 300, 4096, 132, 1, 300)]
    [InlineData(4, 1, 64, 1031, 4096, 132, 4, 272)]
    [InlineData(4, 1, 100, 11008, 1024, 132, 16, 688)]
    [InlineData(8, 1, 64, 4096, 4096, 132, 8, 512)]
    [InlineData(8, 1, 256, 4096, 4096, 132, 4, 1024)]
    [InlineData(8, 1, 512, 4096, 4096, 132, 2, 2048)]
    [InlineData(8, 1, 1024, 4096, 4096, 132, 1, 4096)]
    [InlineData(8, 1, 4096, 4096, 4096, 132, 1, 4096)]
    [InlineData(8, 8, 64, 4096, 4096, 132, 1, 4096)]
    public void SplitKPlanFillsOneWaveOnlyWhenTheTilesLeaveMostSmsIdle(int nBlocks, int batch, int m, int k, int n, int sms, int splits, int kChunk) =>
        AssertSplitPlan(nBlocks, 4, 1, batch, m, k, n, sms, splits, kChunk);

    /// <summary>With launch bounds for two groups per SM the plan fills twice the slots: more splits, and 512 rows split too.</summary>
    [Theory]
    [InlineData(1, 64, 4096, 4096, 132, 8, 512)]
    [InlineData(1, 256, 4096, 4096, 132, 4, 1024)]
    [InlineData(1, 512, 4096, 4096, 132, 2, 2048)]
    [InlineData(1, 1024, 4096, 4096, 132, 1, 4096)]
    public void SplitKPlanForTwoGroupsPerSmFillsTwiceTheSlots(int batch, int m, int k, int n, int sms, int splits, int kChunk)
    {
        // square2 and quad2 have the same 128 × 128 group tile, so the same plans.
        AssertSplitPlan(4, 4, 2, batch, m, k, n, sms, splits, kChunk);
        AssertSplitPlan(8, 2, 2, batch, m, k, n, sms, splits, kChunk);
    }

    private static void AssertSplitPlan(int nBlocks, int warpColumns, int groupsPerSm, int batch, int m, int k, int n, int sms, int splits, int kChunk)
    {
        var plan = TensorCoreLaunch.PlanSplitK(batch, m, k, n, sms, nBlocks, warpColumns, groupsPerSm);
        Assert.Equal((splits, kChunk), plan);
        Assert.True(plan.Splits == 1 || (plan.KChunk >= TensorCoreLaunch.MinSplitTiles * TensorCoreGemmKernels.BlockK && plan.KChunk % TensorCoreGemmKernels.BlockK == 0));
        var grid = TensorCoreLaunch.Config(plan.Splits > 1 ? plan.Splits : batch, m, n, nBlocks, warpColumns).GridDim;
        Assert.True(plan.Splits == 1 || (long)grid.X * grid.Y * grid.Z <= (long)sms * groupsPerSm);
    }

    [Theory]
    [InlineData(64, 64, 0, false)]
    [InlineData(63, 64, 0, true)]
    [InlineData(64, 60, 0, false)]
    [InlineData(64, 64, 1, true)]
    public void AsynchronousCopiesOnlyForSixteenByteAlignedChunks(int k, int n, int offset, bool transposeB)
    {
        const int M = 8;
        var a = UploadAt(new ushort[M * k], offset, (ushort)0);
        var b = UploadAt(new ushort[k * n], offset, (ushort)0);
        var shape = TensorCoreLaunch.Shape(a, b, ArrayView<ushort>.Empty, M, k, n, transposeB, 1f, 0f, false, bf16: true, asyncCopyAllowed: true);
        bool chunksAligned = k % 8 == 0 && (transposeB || n % 8 == 0) && offset == 0;
        if (!chunksAligned)
        {
            Assert.Equal(0, shape.AsyncCopy);
            Assert.Equal(0L, shape.APointer);
        }
        else if (shape.AsyncCopy != 0)
        {
            // Whole buffers qualify when the allocation is 16-byte aligned; the kernel then gets both addresses.
            Assert.True(shape.APointer != 0 && shape.APointer % 16 == 0 && shape.BPointer != 0 && shape.BPointer % 16 == 0);
        }
    }

    /// <summary>Paired epilogue stores need an even N (so every pair starts on an even element) and a 4-byte aligned C.</summary>
    [Theory]
    [InlineData(64, 0)]
    [InlineData(63, 0)]
    [InlineData(64, 1)]
    public void PairedStoresOnlyForEvenNAndAlignedC(int n, int offset)
    {
        var c = UploadAt(new ushort[8 * n], offset, (ushort)0);
        int pairs = TensorCoreLaunch.PairStores(c, n);
        if (n % 2 != 0 || offset % 2 != 0)
        {
            Assert.Equal(0, pairs);
        }
        else
        {
            Assert.Equal(TensorCoreLaunch.DeviceAddress(c) % 4 == 0 ? 1 : 0, pairs);
        }
    }

    [Fact]
    public void TheSimulatorFacadeKeepsTheCudaCoreKernel() => Assert.False(K.UsesTensorCores(4096, 4096, 4096));
}
