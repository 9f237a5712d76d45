using System;
using System.Collections.Generic;
using System.Linq;
using System.Text.RegularExpressions;
using GemsInjector.Kernels.Ilgpu;
using ILGPU;
using ILGPU.Runtime;
using ILGPU.Runtime.Cuda;
using Xunit;
using Xunit.Abstractions;

namespace GemsInjector.Kernels.Ilgpu.Tests;

/// <summary>
/// The skinny tensor-core kernel (few rows, weight stored [N, K]): its body on the CPU with mma.sync emulated lane by
/// lane from the PTX fragment tables, against float64 references with NaN-poisoned outputs and
/// partials, every element; its PTX (mma present in both formats, accumulators declared once, no local memory in the K
/// loop, 16-byte global loads); its split-K plan and settings.
/// </summary>
[Collection(SimulatorCollection.Name)]
public sealed class SkinnyTensorCoreTests : Half16TestBase, IClassFixture<Warp32SimulatorFixture>
{
    private readonly Warp32SimulatorFixture warp32;
    private readonly ITestOutputHelper output;
    private readonly Action<KernelConfig, ArrayView<float>, ArrayView<ushort>, ArrayView<ushort>, HalfGemvShape, int> reduce;

    public SkinnyTensorCoreTests(SimulatorFixture fixture, Warp32SimulatorFixture warp32, ITestOutputHelper output)
        : base(fixture)
    {
        this.warp32 = warp32;
        this.output = output;
        reduce = warp32.Accelerator.LoadStreamKernel<ArrayView<float>, ArrayView<ushort>, ArrayView<ushort>, HalfGemvShape, int>(HalfGemvKernels.GemvReduce16);
    }

    private static Type Constant(int value) => value switch { 1 => typeof(Const1), 2 => typeof(Const2), _ => typeof(Const4) };

    private static Type Format(bool bf16) => bf16 ? typeof(BFloat16Storage) : typeof(Float16Storage);

    private Action<KernelConfig, ArrayView<Half8>, ArrayView<Half8>, ArrayView<ushort>, ArrayView<ushort>, ArrayView<float>, ArrayView<int>, ArrayView<float>, TensorCoreShape> Emulated(
        int mTiles, bool bf16, int stepsInFlight)
    {
        var method = typeof(SkinnyTensorCoreKernels).GetMethod(nameof(SkinnyTensorCoreKernels.Gemm16SkinnyEmulated))!
            .MakeGenericMethod(Constant(mTiles), Format(bf16), Constant(stepsInFlight));
        var kernel = method.CreateDelegate<Action<ArrayView<Half8>, ArrayView<Half8>, ArrayView<ushort>, ArrayView<ushort>, ArrayView<float>, ArrayView<int>, ArrayView<float>, TensorCoreShape>>();
        return warp32.Accelerator.LoadStreamKernel(kernel);
    }

    private Action<KernelConfig, ArrayView<Half8>, ArrayView<Half8>, ArrayView<ushort>, ArrayView<ushort>, ArrayView<float>, ArrayView<int>, ArrayView<float>, TensorCoreShape> WideEmulated(
        bool bf16, int rowTiles)
    {
        var method = typeof(SkinnyTensorCoreKernels).GetMethod(nameof(SkinnyTensorCoreKernels.Gemm16SkinnyNkWideEmulated))!
            .MakeGenericMethod(Format(bf16), Constant(rowTiles));
        var kernel = method.CreateDelegate<Action<ArrayView<Half8>, ArrayView<Half8>, ArrayView<ushort>, ArrayView<ushort>, ArrayView<float>, ArrayView<int>, ArrayView<float>, TensorCoreShape>>();
        return warp32.Accelerator.LoadStreamKernel(kernel);
    }

    private Action<KernelConfig, ArrayView<Half8>, ArrayView<Half8>, ArrayView<ushort>, ArrayView<ushort>, ArrayView<float>, ArrayView<int>, ArrayView<float>, TensorCoreShape> StreamEmulated(
        bool bf16, int rowTiles, bool ahead)
    {
        var method = typeof(SkinnyTensorCoreKernels).GetMethod(ahead ? nameof(SkinnyTensorCoreKernels.Gemm16SkinnyNkAheadEmulated) : nameof(SkinnyTensorCoreKernels.Gemm16SkinnyNkStreamEmulated))!
            .MakeGenericMethod(Format(bf16), Constant(rowTiles));
        var kernel = method.CreateDelegate<Action<ArrayView<Half8>, ArrayView<Half8>, ArrayView<ushort>, ArrayView<ushort>, ArrayView<float>, ArrayView<int>, ArrayView<float>, TensorCoreShape>>();
        return warp32.Accelerator.LoadStreamKernel(kernel);
    }

    /// <summary>
    /// Rows 2–70 (one, two and four m-tiles; 70 rows: two Grid.Z row blocks), K a multiple of 64, of 8 only (a guarded
    /// tail step: 200 = 3 · 64 + 8, 72, 8), N odd and not a multiple of the 128-column group, alpha / beta with a row or
    /// matrix bias, unsplit and split K (the float32 partials NaN-poisoned, then GemvReduce16); one and two steps of
    /// weight vectors in flight (the second a software pipeline with its own loop exits).
    /// </summary>
    [Theory]
    [InlineData(true, 2, 64, 40, false, false, 1)]
    [InlineData(false, 2, 200, 37, true, false, 1)]
    [InlineData(false, 3, 200, 37, true, false, 2)]
    [InlineData(true, 5, 136, 129, true, true, 2)]
    [InlineData(true, 4, 8, 9, false, false, 1)]
    [InlineData(false, 16, 1032, 256, false, false, 3)]
    [InlineData(true, 16, 456, 131, true, false, 4)]
    [InlineData(true, 17, 72, 130, true, false, 1)]
    [InlineData(false, 17, 328, 33, false, false, 3)]
    [InlineData(false, 33, 96, 24, false, false, 2)]
    [InlineData(true, 33, 136, 45, true, true, 1)]
    [InlineData(true, 64, 328, 136, true, true, 3)]
    [InlineData(false, 64, 64, 8, false, false, 1)]
    [InlineData(false, 70, 40, 20, true, false, 1)]
    [InlineData(true, 70, 200, 131, false, false, 2)]
    [InlineData(false, 7, 640, 300, true, true, 5)]
    [InlineData(true, 40, 520, 136, true, false, 9)]
    [InlineData(false, 70, 328, 260, true, true, 6)]
    public void EmulatedKernelMatchesFloat64(bool bf16, int m, int k, int n, bool bias, bool biasIsMatrix, int requestedSplits) =>
        RunEmulated(bf16, m, k, n, bias, biasIsMatrix, requestedSplits, wide: false);

    /// <summary>
    /// The wide [N, K] body (weight rows as m16, 64-column groups whose four warps split the chunk): rows 2–16 (one n8
    /// tile, and two for 9–16 rows; up to 8 rows also with two tiles, the second wholly clamped), K a multiple of 32, of
    /// 8 only (a guarded last step, also inside split chunks), K = 8 (warps with no step), N multiples of 8 that are not
    /// multiples of the 64-column group, bias row / matrix, alpha / beta, unsplit and 2–19 splits.
    /// </summary>
    [Theory]
    [InlineData(true, 2, 64, 64, false, false, 1)]
    [InlineData(false, 2, 200, 40, true, false, 1)]
    [InlineData(true, 3, 136, 136, true, true, 2)]
    [InlineData(false, 4, 1024, 264, false, false, 4)]
    [InlineData(true, 5, 72, 8, true, false, 1)]
    [InlineData(false, 8, 1032, 136, true, true, 5)]
    [InlineData(true, 8, 456, 72, false, false, 3)]
    [InlineData(false, 9, 328, 136, true, false, 2)]
    [InlineData(true, 12, 40, 24, false, false, 1)]
    [InlineData(false, 13, 8, 16, true, false, 1)]
    [InlineData(false, 16, 1032, 256, true, true, 3)]
    [InlineData(true, 16, 2048, 200, false, false, 8)]
    [InlineData(true, 16, 1216, 64, true, false, 19)]
    public void WideEmulatedKernelMatchesFloat64(bool bf16, int m, int k, int n, bool bias, bool biasIsMatrix, int requestedSplits) =>
        RunEmulated(bf16, m, k, n, bias, biasIsMatrix, requestedSplits, wide: true);

    /// <summary>
    /// The streamed [N, K] body: rows 1–16 (one and two n8 tiles; up to 8 rows also the two-tile variant, whose rows 8–15
    /// are clamped copies never stored), K below one block (8), inside the first batch (40), exactly one one-tile batch
    /// (256), batches plus a tail (264, 520, 1032) and many batches per warp (4096), N a multiple of 16, of 8 only and odd
    /// (37: rows clamped one by one), alpha / beta with a row or matrix bias, groups of 4 and 8 warps (and 2, the
    /// measuring switch's extra size: fewer threads than the group's 128 or 256 sums); both operands NaN past their last row.
    /// </summary>
    [Theory]
    [InlineData(true, 2, 8, 8, false, false, 4)]
    [InlineData(false, 3, 40, 24, true, false, 8)]
    [InlineData(true, 5, 256, 16, true, true, 4)]
    [InlineData(false, 8, 264, 40, false, false, 8)]
    [InlineData(true, 8, 1032, 136, true, false, 4)]
    [InlineData(true, 9, 520, 136, true, false, 4)]
    [InlineData(false, 13, 1032, 264, true, true, 8)]
    [InlineData(false, 13, 40, 8, false, false, 4)]
    [InlineData(true, 16, 4096, 40, false, false, 4)]
    [InlineData(false, 16, 264, 37, true, false, 8)]
    [InlineData(false, 2, 4096, 264, true, true, 8)]
    [InlineData(true, 16, 1032, 24, true, true, 2)]
    [InlineData(false, 6, 520, 16, false, false, 2)]
    [InlineData(true, 1, 1032, 40, true, false, 4)]
    [InlineData(false, 1, 264, 37, false, false, 8)]
    public void StreamEmulatedKernelMatchesFloat64(bool bf16, int m, int k, int n, bool bias, bool biasIsMatrix, int warps) =>
        RunStreamEmulated(bf16, m, k, n, bias, biasIsMatrix, warps, ahead: false);

    /// <summary>
    /// The streamed body with two batches (quads) in flight per warp: K with no whole quad (8, 40: the guarded quad alone),
    /// one quad per warp or none (256 with 4 warps), a chain of quads ending on a whole one (4096: 8 per warp with 4 warps,
    /// 16 with 2) or followed by a guarded tail (520, 1032, 4104: one vector past the last whole quad), an odd number of
    /// quads per warp past the first (1280: 5 with 2 warps; 1544: 3 with 4 warps and a tail), so that the unrolled loop
    /// leaves from either half after whole iterations; rows 1–16 in one and two n8 tiles, N a multiple of 16, of 8 only
    /// and odd, bias row / matrix; groups of 2 and 4 warps (its plan's sizes).
    /// </summary>
    [Theory]
    [InlineData(true, 2, 8, 8, false, false, 4)]
    [InlineData(false, 3, 40, 24, true, false, 2)]
    [InlineData(true, 5, 256, 16, true, true, 4)]
    [InlineData(false, 8, 4104, 40, false, false, 4)]
    [InlineData(true, 8, 1032, 136, true, false, 2)]
    [InlineData(true, 9, 520, 136, true, false, 4)]
    [InlineData(false, 13, 4104, 24, true, true, 2)]
    [InlineData(true, 16, 4096, 40, false, false, 4)]
    [InlineData(false, 16, 264, 37, true, false, 2)]
    [InlineData(true, 1, 4096, 24, true, false, 2)]
    [InlineData(false, 4, 1280, 16, false, false, 2)]
    [InlineData(true, 12, 1544, 40, true, true, 4)]
    public void AheadEmulatedKernelMatchesFloat64(bool bf16, int m, int k, int n, bool bias, bool biasIsMatrix, int warps) =>
        RunStreamEmulated(bf16, m, k, n, bias, biasIsMatrix, warps, ahead: true);

    /// <summary>One case of the streamed body (one or two batches in flight) on the simulator against float64, every element, C NaN-poisoned.</summary>
    private void RunStreamEmulated(bool bf16, int m, int k, int n, bool bias, bool biasIsMatrix, int warps, bool ahead)
    {
        int seed = 9100 + (m * 7) + (k * 5) + n + (bf16 ? 1 : 0) + (bias ? 4 : 0) + (biasIsMatrix ? 8 : 0) + (warps * 1000) + (ahead ? 50000 : 0);
        var acc = warp32.Accelerator;
        var (a, av) = Random16(seed, m * k, bf16, -1f, 1f);
        var (b, bv) = Random16(seed + 1, n * k, bf16, -1f, 1f);
        var (biasBits, biasValues) = bias ? Random16(seed + 2, biasIsMatrix ? m * n : n, bf16) : (Array.Empty<ushort>(), Array.Empty<float>());
        float alpha = bias ? 0.75f : 1f, beta = bias ? -1.25f : 0f;
        var expected = Reference(av, bv, biasValues, m, k, n, alpha, beta, bias, biasIsMatrix);

        var (config, shape) = SkinnyTensorCoreLaunch.PlanNkStream(m, k, n, multiprocessors: 0, warps,
            ahead ? SkinnyTensorCoreKernels.NkAheadMaxWarps : SkinnyTensorCoreKernels.NkStreamMaxWarps);
        Assert.Equal((n + 15) / 16, config.GridDim.X);
        Assert.Equal(warps * 32, config.GroupDim.X);
        Assert.Equal(1, shape.SplitK);
        shape.Bf16 = bf16 ? 1 : 0;
        shape.Alpha = alpha;
        shape.Beta = beta;
        shape.HasBias = bias ? 1 : 0;
        shape.StrideBiasM = biasIsMatrix ? n : 0;

        // NaN after both operands' last rows: a load past K that the last batch did not zero (Inf or NaN times a zero is NaN)
        // shows in C instead of adding a harmless stale product.
        using var aBuffer = acc.Allocate1D(a.Concat(Enumerable.Repeat(NaN16(bf16), 256)).ToArray());
        using var bBuffer = acc.Allocate1D(b.Concat(Enumerable.Repeat(NaN16(bf16), 256)).ToArray());
        using var biasBuffer = acc.Allocate1D(biasBits.Length == 0 ? new ushort[1] : biasBits);
        using var cBuffer = acc.Allocate1D(Enumerable.Repeat(NaN16(bf16), m * n).ToArray());
        using var scratch = acc.Allocate1D<float>((long)config.GridDim.X * config.GroupDim.X * SkinnyTensorCoreKernels.EmulationFloatsPerThread);
        ArrayView<ushort> biasView = bias ? biasBuffer.View.AsContiguous() : ArrayView<ushort>.Empty;
        foreach (int rowTiles in m <= SkinnyTensorCoreKernels.WideMaxRows ? new[] { 1, 2 } : new[] { 2 })
        {
            cBuffer.CopyFromCPU(Enumerable.Repeat(NaN16(bf16), m * n).ToArray());
            StreamEmulated(bf16, rowTiles, ahead)(config, aBuffer.View.AsContiguous().Cast<Half8>(), bBuffer.View.AsContiguous().Cast<Half8>(), biasView, cBuffer.View,
                ArrayView<float>.Empty, ArrayView<int>.Empty, scratch.View, shape);
            acc.Synchronize();
            string what = $"skinny tensor-core {(ahead ? "ahead" : "stream")} emulation {m}x{k}x{n} bias={bias} matrix={biasIsMatrix} warps={warps} n8 row tiles={rowTiles} ({F(bf16)})";
            AssertClose(ToFloat(cBuffer.GetAsArray1D(), bf16), expected, Rtol(bf16), Atol * k, what, seed);
        }
    }

    /// <summary>C = alpha · A·Wᵀ + beta · bias in float64 (A [M, K], W [N, K], bias a row [N] or a matrix [M, N]).</summary>
    private static double[] Reference(float[] av, float[] bv, float[] biasValues, int m, int k, int n, float alpha, float beta, bool bias, bool biasIsMatrix) =>
        Enumerable.Range(0, m * n).Select(e =>
        {
            int r = e / n, j = e % n;
            double dot = Enumerable.Range(0, k).Sum(t => (double)av[(r * k) + t] * bv[(j * k) + t]);
            double v = alpha * dot;
            if (bias)
            {
                v += beta * biasValues[biasIsMatrix ? (r * n) + j : j];
            }

            return v;
        }).ToArray();

    /// <summary>One case of either body on the simulator against float64, every element, C and partials NaN-poisoned before each run.</summary>
    private void RunEmulated(bool bf16, int m, int k, int n, bool bias, bool biasIsMatrix, int requestedSplits, bool wide)
    {
        int seed = 7100 + (m * 7) + (k * 5) + n + (bf16 ? 1 : 0) + (bias ? 4 : 0) + (biasIsMatrix ? 8 : 0) + (requestedSplits * 1000);
        var acc = warp32.Accelerator;
        var (a, av) = Random16(seed, m * k, bf16, -1f, 1f);
        var (b, bv) = Random16(seed + 1, n * k, bf16, -1f, 1f);
        var (biasBits, biasValues) = bias ? Random16(seed + 2, biasIsMatrix ? m * n : n, bf16) : (Array.Empty<ushort>(), Array.Empty<float>());
        float alpha = bias ? 0.75f : 1f, beta = bias ? -1.25f : 0f;
        var expected = Reference(av, bv, biasValues, m, k, n, alpha, beta, bias, biasIsMatrix);

        var (config, shape, mTiles) = SkinnyTensorCoreLaunch.Plan(m, k, n, multiprocessors: 0, groupsPerSm: 4, requestedSplits,
            blockN: wide ? SkinnyTensorCoreKernels.WideBlockN : SkinnyTensorCoreKernels.BlockN);
        Assert.Equal(requestedSplits, shape.SplitK);
        Assert.Equal(SkinnyTensorCoreLaunch.MTiles(m), mTiles);
        shape.Bf16 = bf16 ? 1 : 0;
        shape.Alpha = alpha;
        shape.Beta = beta;
        shape.HasBias = bias ? 1 : 0;
        shape.StrideBiasM = biasIsMatrix ? n : 0;

        using var aBuffer = acc.Allocate1D(a);
        using var bBuffer = acc.Allocate1D(b);
        using var biasBuffer = acc.Allocate1D(biasBits.Length == 0 ? new ushort[1] : biasBits);
        using var cBuffer = acc.Allocate1D(Enumerable.Repeat(NaN16(bf16), m * n).ToArray());
        using var partial = acc.Allocate1D(Enumerable.Repeat(float.NaN, shape.SplitK * m * n).ToArray());
        long groups = (long)config.GridDim.X * config.GridDim.Y * config.GridDim.Z;
        using var scratch = acc.Allocate1D<float>(groups * SkinnyTensorCoreKernels.GroupSize * SkinnyTensorCoreKernels.EmulationFloatsPerThread);
        ArrayView<ushort> biasView = bias ? biasBuffer.View.AsContiguous() : ArrayView<ushort>.Empty;
        ArrayView<float> partialView = shape.SplitK > 1 ? partial.View.AsContiguous() : ArrayView<float>.Empty;
        // The narrow body with one and two steps in flight; the wide one with the dispatch's n8 row tiles and, up to 8 rows, also two.
        var variants = wide ? (m <= SkinnyTensorCoreKernels.WideMaxRows ? new[] { 1, 2 } : new[] { 2 }) : new[] { 1, 2 };
        foreach (int variant in variants)
        {
            var kernel = wide ? WideEmulated(bf16, variant) : Emulated(mTiles, bf16, variant);
            cBuffer.CopyFromCPU(Enumerable.Repeat(NaN16(bf16), m * n).ToArray());
            partial.CopyFromCPU(Enumerable.Repeat(float.NaN, shape.SplitK * m * n).ToArray());
            kernel(config, aBuffer.View.AsContiguous().Cast<Half8>(), bBuffer.View.AsContiguous().Cast<Half8>(), biasView, cBuffer.View, partialView,
                ArrayView<int>.Empty, scratch.View, shape);
            if (shape.SplitK > 1)
            {
                reduce(new KernelConfig(((m * n) + 255) / 256, 256), partial.View, biasView, cBuffer.View, TensorCoreLaunch.ReduceShape(shape), bf16 ? 1 : 0);
            }

            acc.Synchronize();
            string what = $"skinny tensor-core {(wide ? "wide" : "narrow")} emulation {m}x{k}x{n} bias={bias} matrix={biasIsMatrix} splits={shape.SplitK} chunk={shape.KChunk} "
                + $"{(wide ? "n8 row tiles" : "steps in flight")}={variant} ({F(bf16)})";
            ushort[] launched = cBuffer.GetAsArray1D();
            AssertClose(ToFloat(launched, bf16), expected, Rtol(bf16), Atol * k, what, seed);
            if (shape.SplitK > 1)
            {
                SplitKFusedCheck.AssertMatchesLaunch(acc, cBuffer, partial, NaN16(bf16), launched, (long)config.GridDim.X * config.GridDim.Z,
                    tickets => kernel(config, aBuffer.View.AsContiguous().Cast<Half8>(), bBuffer.View.AsContiguous().Cast<Half8>(), biasView, cBuffer.View,
                        partialView, tickets, scratch.View, shape), what);
            }
        }
    }

    /// <summary>
    /// The PTX of every compiled variant: both formats' mma present (only the variant's), every one of the variant's
    /// m16n8 tiles reached, one accumulator declaration before any use, no local memory between the first and the last
    /// mma (the K loop: fragments by value, accumulators in PTX registers), 16-byte global loads, no unsubstituted operand.
    /// </summary>
    [Theory]
    [InlineData(1, false, 1)]
    [InlineData(2, false, 1)]
    [InlineData(4, false, 1)]
    [InlineData(1, true, 1)]
    [InlineData(2, true, 1)]
    [InlineData(4, true, 1)]
    [InlineData(1, false, 2)]
    [InlineData(4, true, 2)]
    public void PtxKeepsTheKLoopInRegisters(int mTiles, bool bf16, int stepsInFlight)
    {
        var method = typeof(SkinnyTensorCoreKernels).GetMethod(nameof(SkinnyTensorCoreKernels.Gemm16Skinny))!
            .MakeGenericMethod(Constant(mTiles), Format(bf16), Constant(stepsInFlight));
        string ptx = Sm90Ptx.Of(method);

        int tiles = mTiles * SkinnyTensorCoreKernels.NBlocks;

        // The K loop (every basic block that loads a 16-byte vector or issues an mma) has no local memory: fragments go
        // by value, accumulators stay PTX registers. The only local accesses are the epilogue's accumulator reads
        // (Output<float> slots of CudaAsm.EmitRef), outside those blocks.
        var (mmas, vectorLoads, local, loopLocal, loopBlocks) = SkinnyPtx.AssertShape(ptx, bf16, tiles, tiles * 4, @"mma\.sync|ld\.global(\.nc)?\.v4");
        output.WriteLine($"{mTiles} m-tiles, {(bf16 ? "bf16" : "f16")}, {stepsInFlight} step(s): {mmas} mma, {vectorLoads} v4 loads in {loopBlocks} blocks, {local} local accesses ({loopLocal} in the K loop), {ptx.Length} chars");
        Assert.Equal(2 * 4 * tiles, mmas);
        // Weight vectors: 8 per LoadWeights site (the whole-step loop and the guarded tail, plus the pipeline's first
        // step); activation vectors: 4 per m-tile at both Multiply sites.
        Assert.Equal((stepsInFlight > 1 ? 24 : 16) + (8 * mTiles), vectorLoads);
        Assert.Equal(0, loopLocal);
    }

    /// <summary>
    /// The wide [N, K] body's PTX: only its format's mma, 8 per n8 row tile at each multiply site (the loop's and the
    /// guarded last step's) on tiles 0 .. 4 · row tiles − 1 of one accumulator declaration, no pairing (the weight vectors
    /// are A fragments as loaded), 8 weight and one activation vector per row tile per site as 16-byte loads, no local
    /// memory in the K loop.
    /// </summary>
    [Theory]
    [InlineData(false, 1)]
    [InlineData(true, 1)]
    [InlineData(false, 2)]
    [InlineData(true, 2)]
    public void WidePtxKeepsTheKLoopInRegisters(bool bf16, int rowTiles)
    {
        var method = typeof(SkinnyTensorCoreKernels).GetMethod(nameof(SkinnyTensorCoreKernels.Gemm16SkinnyNkWide))!.MakeGenericMethod(Format(bf16), Constant(rowTiles));
        string ptx = Sm90Ptx.Of(method, dumpName: $"skinny-nk-wide-{(bf16 ? "bf16" : "f16")}-r{rowTiles}");
        Assert.DoesNotContain("prmt", ptx, StringComparison.Ordinal);
        int tiles = rowTiles * SkinnyTensorCoreKernels.WideMTiles;
        var (mmas, vectors, local, loopLocal, _) = SkinnyPtx.AssertShape(ptx, bf16, tiles, tiles * 4);
        output.WriteLine($"wide [N, K], {(bf16 ? "bf16" : "f16")}, {rowTiles} row tile(s): {mmas} mma, {vectors} 16-byte loads, "
            + $"{local} local accesses ({loopLocal} in the K loop), {ptx.Length} chars");
        Assert.Equal(2 * 8 * rowTiles, mmas);
        Assert.Equal(2 * (8 + rowTiles), vectors);
        Assert.Equal(0, loopLocal);
    }

    /// <summary>
    /// The streamed [N, K] body's PTX: only its format's mma, 2 per n8 row tile and block at each batch site (the loop's
    /// and the guarded last batch's; 8 blocks per batch with one tile, 4 with two) on tiles 0 .. row tiles − 1 of one
    /// accumulator declaration, no pairing, per block two weight vectors and one activation vector per row tile as 16-byte
    /// loads, every load of a batch before the warp barrier that keeps ptxas from starting its mma early, no local memory
    /// in the K loop.
    /// </summary>
    [Theory]
    [InlineData(false, 1)]
    [InlineData(true, 1)]
    [InlineData(false, 2)]
    [InlineData(true, 2)]
    public void StreamPtxKeepsTheKLoopInRegisters(bool bf16, int rowTiles)
    {
        var method = typeof(SkinnyTensorCoreKernels).GetMethod(nameof(SkinnyTensorCoreKernels.Gemm16SkinnyNkStream))!.MakeGenericMethod(Format(bf16), Constant(rowTiles));
        string ptx = Sm90Ptx.Of(method, dumpName: $"skinny-nk-stream-{(bf16 ? "bf16" : "f16")}-r{rowTiles}");
        Assert.DoesNotContain("prmt", ptx, StringComparison.Ordinal);
        var (mmas, vectors, local, loopLocal, _) = SkinnyPtx.AssertShape(ptx, bf16, rowTiles, 16);
        output.WriteLine($"stream [N, K], {(bf16 ? "bf16" : "f16")}, {rowTiles} row tile(s): {mmas} mma, {vectors} 16-byte loads, "
            + $"{local} local accesses ({loopLocal} in the K loop), {ptx.Length} chars");
        int batchBlocks = SkinnyTensorCoreKernels.NkStreamBatchBlocks(rowTiles);
        int batchMmas = batchBlocks * 2 * rowTiles;
        int batchVectors = batchBlocks * (2 + rowTiles);
        Assert.Equal(2 * batchMmas, mmas);
        Assert.Equal(2 * batchVectors, vectors);

        // Each batch site's loads all come before its warp barrier (the scheduling fence) and its mma after: the loop's
        // loads, fence, the loop's mma and the guarded batch's loads, fence, the guarded batch's mma.
        var sites = ptx.Split("bar.warp.sync");
        Assert.Equal(3, sites.Length);
        Assert.Equal(new[] { (batchVectors, 0), (batchVectors, batchMmas), (0, batchMmas) },
            sites.Select(p => (Regex.Matches(p, @"ld\.global(\.nc)?\.v4\.(u32|b32)").Count, Regex.Matches(p, Regex.Escape(SkinnyPtx.Mma(bf16))).Count)).ToArray());
        Assert.Equal(0, loopLocal);
    }

    /// <summary>
    /// The two-batches-in-flight body's PTX: four load sites of one quad each (the first quad, the unrolled loop's two next
    /// quads and the guarded last quad: two weight vectors and one activation vector per row tile and block), five mma sites
    /// (the loop's two, each loop exit's last quad, the guarded quad: 2 per tile and block) each behind its own warp
    /// barrier, and on every control-flow path from a load the next warp barrier comes before any mma: so the loop's next
    /// quad is requested before the barrier that precedes the current quad's mma. No local memory in the K loop.
    /// </summary>
    [Theory]
    [InlineData(false, 1)]
    [InlineData(true, 1)]
    [InlineData(false, 2)]
    [InlineData(true, 2)]
    public void AheadPtxIssuesTheNextQuadBeforeThisQuadsMma(bool bf16, int rowTiles)
    {
        var method = typeof(SkinnyTensorCoreKernels).GetMethod(nameof(SkinnyTensorCoreKernels.Gemm16SkinnyNkAhead))!.MakeGenericMethod(Format(bf16), Constant(rowTiles));
        string ptx = Sm90Ptx.Of(method, dumpName: $"skinny-nk-ahead-{(bf16 ? "bf16" : "f16")}-r{rowTiles}");
        Assert.DoesNotContain("prmt", ptx, StringComparison.Ordinal);
        var (mmas, vectors, local, loopLocal, _) = SkinnyPtx.AssertShape(ptx, bf16, rowTiles, 16);
        output.WriteLine($"ahead [N, K], {(bf16 ? "bf16" : "f16")}, {rowTiles} row tile(s): {mmas} mma, {vectors} 16-byte loads, "
            + $"{local} local accesses ({loopLocal} in the K loop), {ptx.Length} chars");
        int quadMmas = 4 * 2 * rowTiles;
        int quadVectors = 4 * (2 + rowTiles);
        Assert.Equal(5 * quadMmas, mmas);
        Assert.Equal(4 * quadVectors, vectors);
        Assert.Equal(5, Regex.Matches(ptx, @"bar\.warp\.sync").Count);
        Assert.Equal(0, loopLocal);
        AssertEveryLoadMeetsABarrierBeforeAnMma(ptx, SkinnyPtx.Mma(bf16));
    }

    /// <summary>
    /// Walks the kernel's basic blocks (labels, <c>bra</c> targets, fall-through) from every 16-byte global load and fails
    /// if a path reaches an mma before a warp barrier.
    /// </summary>
    private static void AssertEveryLoadMeetsABarrierBeforeAnMma(string ptx, string mma)
    {
        var blocks = new List<(string Label, List<string> Lines)> { ("<entry>", new List<string>()) };
        foreach (string raw in ptx.Split('\n'))
        {
            string line = raw.Trim();
            var label = Regex.Match(line, @"^([A-Za-z_$][\w$]*):$");
            if (label.Success)
            {
                blocks.Add((label.Groups[1].Value, new List<string>()));
            }
            else if (line.Length > 0)
            {
                blocks[^1].Lines.Add(line);
            }
        }

        var index = blocks.Select((b, i) => (b.Label, i)).ToDictionary(p => p.Label, p => p.i);
        IEnumerable<int> Successors(int b)
        {
            foreach (string line in blocks[b].Lines)
            {
                var branch = Regex.Match(line, @"^(@!?%p\d+\s+)?bra(\.uni)?\s+([\w$]+);");
                if (branch.Success)
                {
                    yield return index[branch.Groups[3].Value];
                    if (!branch.Groups[1].Success)
                    {
                        yield break;
                    }
                }
                else if (line.StartsWith("ret", StringComparison.Ordinal) || line.StartsWith("exit", StringComparison.Ordinal))
                {
                    yield break;
                }
            }

            if (b + 1 < blocks.Count)
            {
                yield return b + 1;
            }
        }

        // From the line after a load: the first barrier or mma on each path (a block may hold both: line order decides).
        string? FirstFenceOrMma(int b, int from, HashSet<int> seen)
        {
            for (int i = from; i < blocks[b].Lines.Count; i++)
            {
                string line = blocks[b].Lines[i];
                if (line.StartsWith("bar.warp.sync", StringComparison.Ordinal))
                {
                    return null;
                }

                if (line.Contains(mma, StringComparison.Ordinal))
                {
                    return $"{blocks[b].Label}: {line}";
                }
            }

            foreach (int next in Successors(b))
            {
                if (seen.Add(next) && FirstFenceOrMma(next, 0, seen) is { } found)
                {
                    return found;
                }
            }

            return null;
        }

        int loads = 0;
        for (int b = 0; b < blocks.Count; b++)
        {
            for (int i = 0; i < blocks[b].Lines.Count; i++)
            {
                if (Regex.IsMatch(blocks[b].Lines[i], @"ld\.global(\.nc)?\.v4\."))
                {
                    loads++;
                    string? early = FirstFenceOrMma(b, i + 1, new HashSet<int>());
                    Assert.True(early is null, $"the load '{blocks[b].Lines[i]}' in {blocks[b].Label} reaches an mma before a warp barrier: {early}");
                }
            }
        }

        Assert.True(loads > 0, "no 16-byte global loads found");
    }

    /// <summary>
    /// The two-batches-in-flight body's plan on a 132-SM device: groups of at most 4 warps (N = 4096: 256 groups of 4, where
    /// the one-batch body takes 8; N = 11008: 688 of 2, as that body), and a forced 8 held to 4.
    /// </summary>
    [Theory]
    [InlineData(8, 4096, 4096, 0, 256, 4)]
    [InlineData(16, 11008, 4096, 0, 256, 4)]
    [InlineData(16, 4096, 11008, 0, 688, 2)]
    [InlineData(16, 4096, 11008, 8, 688, 4)]
    [InlineData(2, 4096, 4096, 2, 256, 2)]
    public void AheadPlanTakesAtMostFourWarps(int m, int k, int n, int forced, int groups, int warps)
    {
        var (config, _) = SkinnyTensorCoreLaunch.PlanNkStream(m, k, n, 132, forced, SkinnyTensorCoreKernels.NkAheadMaxWarps);
        Assert.Equal(new Index3D(groups, 1, 1), config.GridDim);
        Assert.Equal(new Index3D(warps * 32, 1, 1), config.GroupDim);
    }

    /// <summary>
    /// The streamed body's plan on a 132-SM device: 16-column groups of the fewest warps (2, 4, 8) that put 8 warps per SM
    /// to work (N = 11008: 688 groups of 2; N = 2048: 128 groups of 8 would be 1024 warps, still 8), one launch without split-K.
    /// </summary>
    [Theory]
    [InlineData(2, 4096, 4096, 256, 8)]
    [InlineData(8, 4096, 4096, 256, 8)]
    [InlineData(16, 4096, 11008, 688, 2)]
    [InlineData(1, 4096, 14336, 896, 2)]
    [InlineData(4, 4096, 8192, 512, 4)]
    [InlineData(4, 4096, 2048, 128, 8)]
    [InlineData(16, 11008, 4096, 256, 8)]
    [InlineData(4, 4096, 264, 17, 8)]
    public void StreamPlanTakesSixteenColumnGroups(int m, int k, int n, int groups, int warps)
    {
        var (config, shape) = SkinnyTensorCoreLaunch.PlanNkStream(m, k, n, 132);
        Assert.Equal(new Index3D(groups, 1, 1), config.GridDim);
        Assert.Equal(new Index3D(warps * 32, 1, 1), config.GroupDim);
        Assert.Equal(1, shape.SplitK);
        Assert.Equal(k, shape.KChunk);
    }

    /// <summary>
    /// The wide body's plan on a 132-SM device: 64-column groups, so at 2–8 rows of 4096² half the narrow body's 16 splits,
    /// and at 16 × 4096 × 11008 three (172 groups: one wave of 516) instead of six.
    /// </summary>
    [Theory]
    [InlineData(2, 4096, 4096, 64, 8)]
    [InlineData(8, 4096, 4096, 64, 8)]
    [InlineData(16, 4096, 11008, 172, 3)]
    [InlineData(16, 11008, 4096, 64, 8)]
    public void WidePlanTakesSixtyFourColumnGroups(int m, int k, int n, int columnGroups, int splits)
    {
        var (config, shape, _) = SkinnyTensorCoreLaunch.Plan(m, k, n, 132, 4, blockN: SkinnyTensorCoreKernels.WideBlockN);
        Assert.Equal(columnGroups, config.GridDim.X);
        Assert.Equal(splits, shape.SplitK);
        Assert.Equal(1, config.GridDim.Z);
    }

    /// <summary><c>GEMS_SKINNY_NK_VARIANT</c>: <c>wide</c> / <c>narrow</c> / <c>stream</c> (any case, trimmed) pick those bodies; anything else, unset included, the streamed one with two batches in flight.</summary>
    [Theory]
    [InlineData(null, nameof(SkinnyNkBody.Ahead))]
    [InlineData("", nameof(SkinnyNkBody.Ahead))]
    [InlineData("narrow", nameof(SkinnyNkBody.Narrow))]
    [InlineData(" Narrow", nameof(SkinnyNkBody.Narrow))]
    [InlineData("old", nameof(SkinnyNkBody.Ahead))]
    [InlineData("streams", nameof(SkinnyNkBody.Ahead))]
    [InlineData("wide", nameof(SkinnyNkBody.Wide))]
    [InlineData(" WIDE ", nameof(SkinnyNkBody.Wide))]
    [InlineData("stream", nameof(SkinnyNkBody.Stream))]
    [InlineData(" Stream ", nameof(SkinnyNkBody.Stream))]
    [InlineData("ahead", nameof(SkinnyNkBody.Ahead))]
    [InlineData(" AHEAD", nameof(SkinnyNkBody.Ahead))]
    public void NkVariantParses(string? variant, string body) =>
        Assert.Equal(Enum.Parse<SkinnyNkBody>(body), SkinnyTensorCoreSettings.Parse(null, null, null, nkVariant: variant).NkBody);

    /// <summary><c>GEMS_SKINNY_NK_STREAM_WARPS</c>: 2, 4 or 8 (trimmed) force the streamed body's group size; anything else leaves it to the plan (0).</summary>
    [Theory]
    [InlineData(null, 0)]
    [InlineData("", 0)]
    [InlineData("2", 2)]
    [InlineData("4", 4)]
    [InlineData(" 8 ", 8)]
    [InlineData("6", 0)]
    [InlineData("16", 0)]
    public void NkStreamWarpsParse(string? warps, int expected) =>
        Assert.Equal(expected, SkinnyTensorCoreSettings.Parse(null, null, null, nkStreamWarps: warps).NkStreamWarps);

    /// <summary>
    /// Routing of the products the skinny kernel takes: unset or <c>ahead</c> sends 1–16 rows (any N) to the streamed body
    /// with two batches in flight and more rows to the narrow one; <c>stream</c> the same rows to the one-batch body; <c>wide</c>
    /// 2–16 rows with N % 8 = 0 to the wide body; <c>narrow</c> keeps every product on the narrow body.
    /// </summary>
    [Theory]
    [InlineData(null, 1, 4096, nameof(SkinnyNkBody.Ahead))]
    [InlineData(null, 2, 4096, nameof(SkinnyNkBody.Ahead))]
    [InlineData(null, 16, 11008, nameof(SkinnyNkBody.Ahead))]
    [InlineData(null, 17, 4096, nameof(SkinnyNkBody.Narrow))]
    [InlineData("narrow", 2, 4096, nameof(SkinnyNkBody.Narrow))]
    [InlineData("narrow", 16, 11008, nameof(SkinnyNkBody.Narrow))]
    [InlineData("stream", 2, 4096, nameof(SkinnyNkBody.Stream))]
    [InlineData("stream", 9, 4096, nameof(SkinnyNkBody.Stream))]
    [InlineData("stream", 16, 11008, nameof(SkinnyNkBody.Stream))]
    [InlineData("stream", 16, 37, nameof(SkinnyNkBody.Stream))]
    [InlineData("stream", 17, 4096, nameof(SkinnyNkBody.Narrow))]
    [InlineData("stream", 64, 4096, nameof(SkinnyNkBody.Narrow))]
    [InlineData("wide", 8, 4096, nameof(SkinnyNkBody.Wide))]
    [InlineData("wide", 8, 37, nameof(SkinnyNkBody.Narrow))]
    [InlineData("wide", 17, 4096, nameof(SkinnyNkBody.Narrow))]
    [InlineData("ahead", 1, 4096, nameof(SkinnyNkBody.Ahead))]
    [InlineData("ahead", 16, 11008, nameof(SkinnyNkBody.Ahead))]
    [InlineData("ahead", 17, 4096, nameof(SkinnyNkBody.Narrow))]
    public void NkVariantRoutesRows(string? variant, int m, int n, string body)
    {
        var saved = K.SkinnySettings;
        try
        {
            K.SkinnySettings = SkinnyTensorCoreSettings.Parse(null, null, null, nkVariant: variant);
            Assert.Equal(Enum.Parse<SkinnyNkBody>(body), K.SkinnyNkBodyFor(m, n));
        }
        finally
        {
            K.SkinnySettings = saved;
        }
    }

    /// <summary>
    /// The plan on a 132-SM device: column groups × row blocks × splits come as close to four groups per SM as one wave
    /// allows (N = 11008: 86 column groups, 6 splits, 516 of 528 slots; N = 32000: 250 groups, 2 splits) unless the
    /// partials would exceed half the weight's bytes (64 and 256 rows of K = 4096: 8 and 2 splits), chunks are whole
    /// 64-element steps and cover K exactly once (the last one shorter), never more splits than steps.
    /// </summary>
    [Theory]
    [InlineData(16, 11008, 4096, 1, 1, 16)]
    [InlineData(2, 4096, 4096, 1, 1, 16)]
    [InlineData(16, 4096, 11008, 1, 1, 6)]
    [InlineData(64, 4096, 4096, 4, 1, 8)]
    [InlineData(33, 4096, 11008, 4, 1, 6)]
    [InlineData(256, 4096, 4096, 4, 4, 2)]
    [InlineData(5, 40, 4096, 1, 1, 1)]
    [InlineData(8, 4096, 32000, 1, 1, 2)]
    public void PlanFillsTheSmsWithWholeSteps(int m, int k, int n, int mTiles, int rowBlocks, int splits)
    {
        var (config, shape, tiles) = SkinnyTensorCoreLaunch.Plan(m, k, n, 132, 4);
        Assert.Equal(mTiles, tiles);
        Assert.Equal(rowBlocks, config.GridDim.Z);
        Assert.Equal((n + 127) / 128, config.GridDim.X);
        Assert.Equal(splits, shape.SplitK);
        Assert.Equal(splits, config.GridDim.Y);
        Assert.Equal(SkinnyTensorCoreKernels.GroupSize, config.GroupDim.X);
        if (splits > 1)
        {
            Assert.Equal(0, shape.KChunk % SkinnyTensorCoreKernels.KStep);
            Assert.True((splits - 1) * shape.KChunk < k && k <= splits * shape.KChunk, $"chunk {shape.KChunk} x {splits} does not cover K = {k} once");
        }
        else
        {
            Assert.Equal(k, shape.KChunk);
        }
    }

    /// <summary>Without the partial-traffic cap the groups-per-SM target alone sets the splits (64 rows: 16 instead of 8).</summary>
    [Fact]
    public void PartialCapCanBeLifted()
    {
        Assert.Equal(8, SkinnyTensorCoreLaunch.Plan(64, 4096, 4096, 132, 4).Shape.SplitK);
        Assert.Equal(16, SkinnyTensorCoreLaunch.Plan(64, 4096, 4096, 132, 4, capSplitsByPartials: false).Shape.SplitK);
        Assert.Equal(32, SkinnyTensorCoreLaunch.Plan(64, 4096, 4096, 132, 8, capSplitsByPartials: false).Shape.SplitK);
    }

    [Theory]
    [InlineData(null, null, null, null, null, true, 64, 4, true, 2, 1)]
    [InlineData("0", "", "x", "1", "3", false, 64, 4, true, 2, 1)]
    [InlineData(" OFF ", "256", "8", "0", " 2 ", false, 256, 8, false, 2, 2)]
    [InlineData("1", "1", "0", "false", "1", true, 64, 4, false, 1, 1)]
    [InlineData("on", "16", "2", "", "2", true, 16, 2, true, 2, 2)]
    public void SettingsParse(string? enabled, string? maxRows, string? groupsPerSm, string? partialCap, string? steps, bool expectEnabled, int expectRows, int expectGroups,
        bool expectCap, int expectSteps, int expectWideSteps) =>
        Assert.Equal(new SkinnyTensorCoreSettings(expectEnabled, expectRows, expectGroups, expectCap, expectSteps, WideStepsInFlight: expectWideSteps),
            SkinnyTensorCoreSettings.Parse(enabled, maxRows, groupsPerSm, partialCap, steps));
}
