using System;
using System.Linq;
using System.Text.RegularExpressions;
using GemsInjector.Kernels.Ilgpu;
using ILGPU;
using ILGPU.Backends.EntryPoints;
using ILGPU.Backends.PTX;
using ILGPU.Runtime;
using ILGPU.Runtime.CPU;
using ILGPU.Runtime.Cuda;
using Xunit;

namespace GemsInjector.Kernels.Ilgpu.Tests;

/// <summary>
/// The tensor-core GEMM: its PTX (mma.sync, ldmatrix, cp.async present, accumulators declared once before use) and its
/// kernel body run on the CPU with ldmatrix / mma.sync emulated lane by lane, against float64 references on shapes that
/// cut every tile edge (M, N not multiples of 128, K not a multiple of 32, odd K).
/// </summary>
[Collection(SimulatorCollection.Name)]
public sealed class TensorCoreGemmTests : Half16TestBase, IClassFixture<Warp32SimulatorFixture>
{
    private readonly Warp32SimulatorFixture warp32;
    private readonly Action<KernelConfig, ArrayView<ushort>, ArrayView<ushort>, ArrayView<ushort>, ArrayView<ushort>, ArrayView<float>, ArrayView<float>, TensorCoreShape> emulatedKernel;

    // The split-K reduction the facade launches after a split tensor-core GEMM.
    private readonly Action<KernelConfig, ArrayView<float>, ArrayView<ushort>, ArrayView<ushort>, HalfGemvShape, int> reduce;

    public TensorCoreGemmTests(SimulatorFixture fixture, Warp32SimulatorFixture warp32)
        : base(fixture)
    {
        this.warp32 = warp32;
        emulatedKernel = warp32.Accelerator.LoadStreamKernel<ArrayView<ushort>, ArrayView<ushort>, ArrayView<ushort>, ArrayView<ushort>, ArrayView<float>, ArrayView<float>, TensorCoreShape>(
            TensorCoreGemmKernels.Gemm16TensorCoreEmulated);
        reduce = warp32.Accelerator.LoadStreamKernel<ArrayView<float>, ArrayView<ushort>, ArrayView<ushort>, HalfGemvShape, int>(HalfGemvKernels.GemvReduce16);
    }

    private static string CompilePtx(string kernelName)
    {
        using var context = Context.Create(b => b.Optimize(OptimizationLevel.O2));
        using var backend = new PTXBackend(context, new CudaCapabilityContext(CudaArchitecture.SM_90),
            CudaArchitecture.SM_90, CudaInstructionSet.ISA_80, nvvmAPI: null);
        var method = typeof(TensorCoreGemmKernels).GetMethod(kernelName)!;
        var entry = EntryPointDescription.FromExplicitlyGroupedKernel(method);
        return ((PTXCompiledKernel)backend.Compile(entry, default(KernelSpecialization))).PTXAssembly;
    }

    private static int Count(string text, string what) => Regex.Matches(text, Regex.Escape(what)).Count;

    [Fact]
    public void PtxHasTheTensorCoreInstructionsForBothFormats()
    {
        string ptx = CompilePtx(nameof(TensorCoreGemmKernels.Gemm16TensorCore));

        // One k16 step per stage, inlined at two call sites (cp.async staging, and element-wise staging that stores
        // after the step), each with four variants (bf16 / f16 × B layout) of 16 mma and 6 ldmatrix (4 for A, 2 for B,
        // .trans when b is [K, N]): ILGPU must neither drop nor duplicate an asm block.
        Assert.Equal(2 * 2 * 16, Count(ptx, "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32"));
        Assert.Equal(2 * 2 * 16, Count(ptx, "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32"));
        Assert.Equal(2 * 2 * 2, Count(ptx, "ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16"));
        Assert.Equal(2 * ((2 * 6) + (2 * 4)), Count(ptx, "ldmatrix.sync.aligned.m8n8.x4.shared.b16"));
        Assert.Equal(1, Count(ptx, ", tca63;"));
        Assert.Contains("cp.async.cg.shared.global", ptx, StringComparison.Ordinal);
        Assert.Contains("cp.async.commit_group;", ptx, StringComparison.Ordinal);
        Assert.Contains("cp.async.wait_group 2;", ptx, StringComparison.Ordinal);

        // From the first cp.async to the last mma (the prologue and the whole K loop) no operand goes through local
        // memory: asm operands are passed by value (CudaAsm.EmitRef's Input<T> slots became st.local / ld.local pairs).
        int pipelineStart = ptx.IndexOf("cp.async.cg", StringComparison.Ordinal);
        int pipelineEnd = ptx.LastIndexOf("mma.sync", StringComparison.Ordinal);
        Assert.True(pipelineStart > 0 && pipelineEnd > pipelineStart);
        Assert.DoesNotMatch(new Regex(@"(ld|st)\.local"), ptx[pipelineStart..pipelineEnd]);

        // Split-K: after the K loop a split group stores its raw float32 sums to the partials instead of 16-bit C.
        Assert.Contains("st.global.f32", ptx[pipelineEnd..], StringComparison.Ordinal);
        Assert.Contains("st.global.b16", ptx[pipelineEnd..], StringComparison.Ordinal);
        Assert.Contains("mov.u32", ptx, StringComparison.Ordinal);
        Assert.Contains("__dyn_shared_alloca;", ptx, StringComparison.Ordinal);

        // The accumulators are function-scope PTX registers: one declaration, in the one function, before any use.
        Assert.Equal(1, Count(ptx, ".reg .f32 tca<64>;"));
        Assert.DoesNotContain(".func", ptx, StringComparison.Ordinal);
        int declaration = ptx.IndexOf(".reg .f32 tca<64>;", StringComparison.Ordinal);
        int firstMma = ptx.IndexOf("mma.sync", StringComparison.Ordinal);
        int firstRead = ptx.IndexOf(", tca0;", StringComparison.Ordinal);
        Assert.True(declaration < firstMma && declaration < firstRead, "the accumulator declaration must precede its uses in the PTX text");

        // Every operand placeholder was substituted (a leftover %0 would be an undefined PTX name).
        Assert.DoesNotMatch(new Regex(@"\[%\d|\{%\d|, %\d+[,;]"), ptx);
    }

    [Fact]
    public void EmulatedKernelAlsoCompilesToPtx()
    {
        string ptx = CompilePtx(nameof(TensorCoreGemmKernels.Gemm16TensorCoreEmulated));
        Assert.DoesNotContain("mma.sync", ptx, StringComparison.Ordinal);
        Assert.Contains(".entry", ptx, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(true, 1, 130, 72, 136, false, false, false)]
    [InlineData(false, 1, 130, 72, 136, false, false, false)]
    [InlineData(true, 1, 70, 45, 129, true, true, false)]
    [InlineData(false, 1, 70, 45, 129, true, true, true)]
    [InlineData(true, 2, 33, 17, 20, false, true, true)]
    [InlineData(false, 2, 128, 40, 24, true, false, false)]
    [InlineData(true, 1, 40, 203, 24, false, true, false)]
    public void EmulatedKernelMatchesFloat64(bool bf16, int batch, int m, int k, int n, bool transposeB, bool bias, bool biasIsMatrix) =>
        RunEmulated(bf16, batch, m, k, n, transposeB, bias, biasIsMatrix, requestedSplits: 1);

    /// <summary>
    /// Split-K forced on the emulation (the simulator reports no SMs, so the planner never splits there): grid z takes
    /// chunks of K that are whole k16 tiles, the last one shorter (K not a multiple of the chunk, odd K), each group
    /// writes float32 partials into a NaN-poisoned buffer and GemvReduce16 applies alpha, beta·bias and the rounding into
    /// a NaN-poisoned C. A chunk that skipped or repeated a tile, a split writing another's partials, or a reduction
    /// missing a split all miss the float64 reference.
    /// </summary>
    [Theory]
    [InlineData(true, 40, 203, 24, false, true, false, 3)]
    [InlineData(false, 70, 100, 129, true, true, true, 4)]
    [InlineData(false, 33, 64, 20, false, false, false, 2)]
    [InlineData(true, 130, 75, 136, true, true, false, 5)]
    public void EmulatedSplitKMatchesFloat64(bool bf16, int m, int k, int n, bool transposeB, bool bias, bool biasIsMatrix, int requestedSplits) =>
        RunEmulated(bf16, 1, m, k, n, transposeB, bias, biasIsMatrix, requestedSplits);

    private void RunEmulated(bool bf16, int batch, int m, int k, int n, bool transposeB, bool bias, bool biasIsMatrix, int requestedSplits)
    {
        int seed = 4200 + (m * 7) + (k * 5) + n + (bf16 ? 1 : 0) + (transposeB ? 2 : 0) + (bias ? 4 : 0) + (biasIsMatrix ? 8 : 0) + batch + ((requestedSplits - 1) * 1000);
        var acc = warp32.Accelerator;
        var (a, av) = Random16(seed, batch * m * k, bf16, -1f, 1f);
        var (b, bv) = Random16(seed + 1, batch * k * n, bf16, -1f, 1f);
        var (biasBits, biasValues) = bias ? Random16(seed + 2, biasIsMatrix ? m * n : n, bf16) : (Array.Empty<ushort>(), Array.Empty<float>());
        const float Alpha = 0.75f, Beta = -1.25f;
        float alpha = bias ? Alpha : 1f, beta = bias ? Beta : 0f;
        var (splits, kChunk) = TensorCoreLaunch.ChunkK(k, requestedSplits);
        Assert.Equal(requestedSplits, splits);
        Assert.True(splits == 1 || (kChunk % TensorCoreGemmKernels.BlockK == 0 && (splits - 1) * kChunk < k && k <= splits * kChunk));

        using var aBuffer = acc.Allocate1D(a);
        using var bBuffer = acc.Allocate1D(b);
        using var biasBuffer = acc.Allocate1D(biasBits.Length == 0 ? new ushort[1] : biasBits);
        using var cBuffer = acc.Allocate1D(Enumerable.Repeat(NaN16(bf16), batch * m * n).ToArray());
        using var partial = acc.Allocate1D(Enumerable.Repeat(float.NaN, splits * m * n).ToArray());
        using var scratch = acc.Allocate1D<float>(TensorCoreLaunch.EmulationScratch(splits > 1 ? splits : batch, m, n));
        ArrayView<ushort> biasView = bias ? biasBuffer.View.AsContiguous() : ArrayView<ushort>.Empty;
        var shape = TensorCoreLaunch.Shape(aBuffer.View, bBuffer.View, biasView, m, k, n, transposeB, alpha, beta, biasIsMatrix, bf16, asyncCopyAllowed: false);
        shape = TensorCoreLaunch.WithSplitK(shape, splits, kChunk);
        ArrayView<float> partialView = splits > 1 ? partial.View.AsContiguous() : ArrayView<float>.Empty;
        emulatedKernel(TensorCoreLaunch.Config(splits > 1 ? splits : batch, m, n), aBuffer.View, bBuffer.View, biasView, cBuffer.View, partialView, scratch.View, shape);
        if (splits > 1)
        {
            reduce(new KernelConfig(((m * n) + 255) / 256, 256), partial.View, biasView, cBuffer.View, TensorCoreLaunch.ReduceShape(shape), bf16 ? 1 : 0);
        }

        acc.Synchronize();
        var got = ToFloat(cBuffer.GetAsArray1D(), bf16);

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
        AssertClose(got, expected, Rtol(bf16), Atol * k,
            $"tensor-core emulation {batch}x{m}x{k}x{n} transposeB={transposeB} bias={bias} matrix={biasIsMatrix} splits={splits} chunk={kChunk} ({F(bf16)})", seed);
    }

    /// <summary>
    /// The split-K planner on an H100 / H200-sized device (132 SMs): one wave of groups for single matrices with few
    /// tiles (64 and 256 rows of a 4096 × 4096 weight), nothing for products that already fill the SMs, for bmm (grid z
    /// is the batch), for a device with no SM count, or when K is too shallow for chunks of sixteen k16 tiles.
    /// </summary>
    [Theory]
    [InlineData(1, 64, 4096, 4096, 132, 4, 1024)]
    [InlineData(1, 17, 4096, 4096, 132, 4, 1024)]
    [InlineData(1, 256, 4096, 4096, 132, 2, 2048)]
    [InlineData(1, 512, 4096, 4096, 132, 1, 4096)]
    [InlineData(1, 4096, 4096, 4096, 132, 1, 4096)]
    [InlineData(8, 64, 4096, 4096, 132, 1, 4096)]
    [InlineData(1, 64, 4096, 4096, 0, 1, 4096)]
    [InlineData(1, 64, 300, 4096, 132, 1, 300)]
    [InlineData(1, 64, 1031, 4096, 132, 4, 272)]
    [InlineData(1, 100, 11008, 1024, 132, 16, 688)]
    public void SplitKPlanFillsOneWaveOnlyWhenTheTilesLeaveMostSmsIdle(int batch, int m, int k, int n, int sms, int splits, int kChunk)
    {
        var plan = TensorCoreLaunch.PlanSplitK(batch, m, k, n, sms);
        Assert.Equal((splits, kChunk), plan);
        Assert.True(plan.Splits == 1 || (plan.KChunk >= TensorCoreLaunch.MinSplitTiles * TensorCoreGemmKernels.BlockK && plan.KChunk % TensorCoreGemmKernels.BlockK == 0));
        var grid = TensorCoreLaunch.Config(plan.Splits > 1 ? plan.Splits : batch, m, n).GridDim;
        Assert.True(plan.Splits == 1 || (long)grid.X * grid.Y * grid.Z <= sms);
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

    [Fact]
    public void TheSimulatorFacadeKeepsTheCudaCoreKernel() => Assert.False(K.UsesTensorCores(4096, 4096, 4096));
}
