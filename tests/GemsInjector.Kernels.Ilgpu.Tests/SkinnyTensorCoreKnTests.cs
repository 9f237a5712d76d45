using System;
using System.Linq;
using System.Text.RegularExpressions;
using GemsInjector.Kernels.Ilgpu;
using ILGPU;
using ILGPU.Runtime;
using Xunit;
using Xunit.Abstractions;

namespace GemsInjector.Kernels.Ilgpu.Tests;

/// <summary>
/// The skinny tensor-core kernel's [K, N]-weight variant (mm): B fragments paired from row-major words, columns
/// permuted across n-blocks and mapped back at the store. Its body on the CPU with mma.sync emulated lane by lane, against
/// float64 references with NaN-poisoned outputs and partials, in every layout (16-byte or element-wise activations,
/// 8-byte or 4-byte weight words); its PTX for SM_90; its layout flags and switch.
/// </summary>
[Collection(SimulatorCollection.Name)]
public sealed class SkinnyTensorCoreKnTests : Half16TestBase, IClassFixture<Warp32SimulatorFixture>
{
    private readonly Warp32SimulatorFixture warp32;
    private readonly ITestOutputHelper output;
    private readonly Action<KernelConfig, ArrayView<float>, ArrayView<ushort>, ArrayView<ushort>, HalfGemvShape, int> reduce;

    public SkinnyTensorCoreKnTests(SimulatorFixture fixture, Warp32SimulatorFixture warp32, ITestOutputHelper output)
        : base(fixture)
    {
        this.warp32 = warp32;
        this.output = output;
        reduce = warp32.Accelerator.LoadStreamKernel<ArrayView<float>, ArrayView<ushort>, ArrayView<ushort>, HalfGemvShape, int>(HalfGemvKernels.GemvReduce16);
    }

    private static Type Constant(int value) => value switch { 1 => typeof(Const1), 2 => typeof(Const2), _ => typeof(Const4) };

    private static Type Format(bool bf16) => bf16 ? typeof(BFloat16Storage) : typeof(Float16Storage);

    private Action<KernelConfig, ArrayView<ushort>, ArrayView<Half8>, ArrayView<uint>, ArrayView<ulong>, ArrayView<ushort>, ArrayView<ushort>, ArrayView<float>, ArrayView<float>, TensorCoreShape, int> Emulated(
        int mTiles, bool bf16, int stepsInFlight)
    {
        var method = typeof(SkinnyTensorCoreKernels).GetMethod(nameof(SkinnyTensorCoreKernels.Gemm16SkinnyKnEmulated))!
            .MakeGenericMethod(Constant(mTiles), Format(bf16), Constant(stepsInFlight));
        var kernel = method.CreateDelegate<Action<ArrayView<ushort>, ArrayView<Half8>, ArrayView<uint>, ArrayView<ulong>, ArrayView<ushort>, ArrayView<ushort>, ArrayView<float>, ArrayView<float>, TensorCoreShape, int>>();
        return warp32.Accelerator.LoadStreamKernel(kernel);
    }

    private Action<KernelConfig, ArrayView<ushort>, ArrayView<Half8>, ArrayView<Half8>, ArrayView<ushort>, ArrayView<ushort>, ArrayView<float>, ArrayView<int>, ArrayView<float>, TensorCoreShape, int> WideEmulated(
        bool bf16, int stepsInFlight)
    {
        var method = typeof(SkinnyTensorCoreKernels).GetMethod(nameof(SkinnyTensorCoreKernels.Gemm16SkinnyKnWideEmulated))!
            .MakeGenericMethod(Format(bf16), Constant(stepsInFlight));
        var kernel = method.CreateDelegate<Action<ArrayView<ushort>, ArrayView<Half8>, ArrayView<Half8>, ArrayView<ushort>, ArrayView<ushort>, ArrayView<float>, ArrayView<int>, ArrayView<float>, TensorCoreShape, int>>();
        return warp32.Accelerator.LoadStreamKernel(kernel);
    }

    private Action<KernelConfig, ArrayView<ushort>, ArrayView<Half8>, ArrayView<Half8>, ArrayView<ushort>, ArrayView<ushort>, ArrayView<float>, ArrayView<int>, ArrayView<float>, TensorCoreShape, int> WideClusterEmulated(
        bool bf16)
    {
        var method = typeof(SkinnyTensorCoreKernels).GetMethod(nameof(SkinnyTensorCoreKernels.Gemm16SkinnyKnWideClusterEmulated))!.MakeGenericMethod(Format(bf16));
        var kernel = method.CreateDelegate<Action<ArrayView<ushort>, ArrayView<Half8>, ArrayView<Half8>, ArrayView<ushort>, ArrayView<ushort>, ArrayView<float>, ArrayView<int>, ArrayView<float>, TensorCoreShape, int>>();
        return warp32.Accelerator.LoadStreamKernel(kernel);
    }

    /// <summary>
    /// Rows 2–70 (one, two and four m-tiles; 70: two Grid.Z row blocks), K odd and even (multiples of 64, of 8 only, neither:
    /// element-wise activations and a guarded tail), N of 8-byte quads (8, 24, 136, 4096) and of 4-byte pairs only (130, 20),
    /// not multiples of the 32-column warp or 128-column group, alpha / beta with a row or matrix bias, unsplit and split K
    /// (NaN-poisoned partials, then GemvReduce16). Each case in its natural layout with one and two steps in flight, and with
    /// every fallback forced (element-wise activations, 4-byte weight pairs).
    /// </summary>
    [Theory]
    [InlineData(true, 2, 64, 8, false, false, 1)]
    [InlineData(false, 2, 200, 24, true, false, 1)]
    [InlineData(true, 2, 33, 4096, false, false, 1)]
    [InlineData(false, 5, 37, 130, true, true, 1)]
    [InlineData(true, 5, 136, 24, false, false, 2)]
    [InlineData(false, 16, 456, 136, true, false, 4)]
    [InlineData(true, 16, 64, 4096, false, false, 1)]
    [InlineData(true, 17, 72, 130, true, false, 1)]
    [InlineData(false, 33, 95, 24, false, false, 2)]
    [InlineData(true, 33, 136, 48, true, true, 1)]
    [InlineData(true, 64, 328, 136, true, true, 3)]
    [InlineData(false, 64, 65, 8, false, false, 1)]
    [InlineData(false, 70, 41, 20, true, false, 1)]
    [InlineData(true, 70, 200, 130, false, false, 2)]
    public void EmulatedKernelMatchesFloat64(bool bf16, int m, int k, int n, bool bias, bool biasIsMatrix, int requestedSplits) =>
        RunEmulated(bf16, m, k, n, bias, biasIsMatrix, requestedSplits, wide: false);

    /// <summary>
    /// The wide body (16-byte weight rows, the weight as the A operand, copy plan): rows 1–8 (the activation rows past M
    /// clamped), K a multiple of 32, of 8 only, or odd (element-wise activations and a guarded last step, also inside split
    /// chunks), N multiples of 8 that are not multiples of the 64-column warp or 256-column group,
    /// bias row / matrix, unsplit and split K; each in its natural layout with one and two steps in flight, and with
    /// element-wise activations forced. Split cases also run in place (tickets) and, at 2, 4 and 8 splits, in the cluster
    /// form's emulation; both must give the launched reduce's bits.
    /// </summary>
    [Theory]
    [InlineData(true, 1, 64, 8, false, false, 1)]
    [InlineData(false, 1, 1024, 264, true, false, 4)]
    [InlineData(true, 2, 200, 24, true, true, 1)]
    [InlineData(false, 2, 33, 4096, false, false, 1)]
    [InlineData(true, 3, 37, 136, true, false, 1)]
    [InlineData(false, 4, 136, 72, false, false, 2)]
    [InlineData(true, 4, 456, 520, true, true, 4)]
    [InlineData(false, 5, 95, 40, true, false, 1)]
    [InlineData(true, 7, 328, 264, false, false, 3)]
    [InlineData(false, 8, 1032, 136, true, true, 5)]
    [InlineData(true, 8, 65, 4096, false, false, 1)]
    [InlineData(true, 6, 72, 56, true, false, 1)]
    [InlineData(false, 8, 200, 264, true, true, 2)]
    [InlineData(true, 3, 41, 8, false, false, 1)]
    [InlineData(false, 6, 2048, 200, true, true, 8)]
    [InlineData(true, 1, 1216, 328, true, false, 19)]
    public void WideEmulatedKernelMatchesFloat64(bool bf16, int m, int k, int n, bool bias, bool biasIsMatrix, int requestedSplits) =>
        RunEmulated(bf16, m, k, n, bias, biasIsMatrix, requestedSplits, wide: true);

    /// <summary>One case of either body on the simulator against float64, every element, C and partials NaN-poisoned before each run.</summary>
    private void RunEmulated(bool bf16, int m, int k, int n, bool bias, bool biasIsMatrix, int requestedSplits, bool wide)
    {
        int seed = 8300 + (m * 7) + (k * 5) + n + (bf16 ? 1 : 0) + (bias ? 4 : 0) + (biasIsMatrix ? 8 : 0) + (requestedSplits * 1000);
        var acc = warp32.Accelerator;
        var (a, av) = Random16(seed, m * k, bf16, -1f, 1f);
        var (b, bv) = Random16(seed + 1, k * n, bf16, -1f, 1f);
        var (biasBits, biasValues) = bias ? Random16(seed + 2, biasIsMatrix ? m * n : n, bf16) : (Array.Empty<ushort>(), Array.Empty<float>());
        float alpha = bias ? 0.75f : 1f, beta = bias ? -1.25f : 0f;
        var expected = Enumerable.Range(0, m * n).Select(e =>
        {
            int r = e / n, j = e % n;
            double dot = 0;
            for (int t = 0; t < k; t++)
            {
                dot += (double)av[(r * k) + t] * bv[(t * n) + j];
            }

            double v = alpha * dot;
            if (bias)
            {
                v += beta * biasValues[biasIsMatrix ? (r * n) + j : j];
            }

            return v;
        }).ToArray();

        var (config, shape, mTiles) = SkinnyTensorCoreLaunch.Plan(m, k, n, multiprocessors: 0, groupsPerSm: 4, requestedSplits,
            blockN: wide ? SkinnyTensorCoreKernels.WideBlockN : SkinnyTensorCoreKernels.BlockN);
        Assert.Equal(requestedSplits, shape.SplitK);
        shape.TransposeB = 0;
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
        int natural = SkinnyTensorCoreLaunch.KnLayout(k, n, 0, 0);
        if (wide)
        {
            // The wide body reads 16-byte weight rows only (the dispatch's N % 8 = 0) and one m-tile.
            Assert.Equal(1, mTiles);
            Assert.Equal(0, n % 8);
            natural &= SkinnyTensorCoreKernels.KnVectorActivations;
        }

        var a8 = (natural & SkinnyTensorCoreKernels.KnVectorActivations) != 0 ? aBuffer.View.AsContiguous().Cast<Half8>() : ArrayView<Half8>.Empty;
        var b4 = (natural & SkinnyTensorCoreKernels.KnWideWeights) != 0 ? bBuffer.View.AsContiguous().Cast<ulong>() : ArrayView<ulong>.Empty;
        var runs = natural != 0 ? new[] { (natural, 1), (natural, 2), (0, 2) } : new[] { (0, 1), (0, 2) };

        foreach (var (layout, steps) in runs)
        {
            cBuffer.CopyFromCPU(Enumerable.Repeat(NaN16(bf16), m * n).ToArray());
            partial.CopyFromCPU(Enumerable.Repeat(float.NaN, shape.SplitK * m * n).ToArray());
            if (wide)
            {
                WideEmulated(bf16, steps)(config, aBuffer.View.AsContiguous(), a8, bBuffer.View.AsContiguous().Cast<Half8>(), biasView, cBuffer.View, partialView,
                    ArrayView<int>.Empty, scratch.View, shape, layout);
            }
            else
            {
                Emulated(mTiles, bf16, steps)(config, aBuffer.View.AsContiguous(), a8, bBuffer.View.AsContiguous().Cast<uint>(), b4, biasView, cBuffer.View, partialView, scratch.View,
                    shape, layout);
            }

            if (shape.SplitK > 1)
            {
                reduce(new KernelConfig(((m * n) + 255) / 256, 256), partial.View, biasView, cBuffer.View, TensorCoreLaunch.ReduceShape(shape), bf16 ? 1 : 0);
            }

            acc.Synchronize();
            string what = $"skinny [K, N] {(wide ? "wide" : "8-byte")} emulation {m}x{k}x{n} bias={bias} matrix={biasIsMatrix} splits={shape.SplitK} chunk={shape.KChunk} layout={layout} steps in flight={steps} ({F(bf16)})";
            ushort[] launched = cBuffer.GetAsArray1D();
            AssertClose(ToFloat(launched, bf16), expected, Rtol(bf16), Atol * k, what, seed);
            if (wide && shape.SplitK > 1)
            {
                // The 8-byte body keeps the launched reduce.
                SplitKFusedCheck.AssertMatchesLaunch(acc, cBuffer, partial, NaN16(bf16), launched, (long)config.GridDim.X * config.GridDim.Z,
                    tickets => WideEmulated(bf16, steps)(config, aBuffer.View.AsContiguous(), a8, bBuffer.View.AsContiguous().Cast<Half8>(), biasView, cBuffer.View, partialView,
                        tickets, scratch.View, shape, layout), what);
            }

            if (wide && ClusterReduction.IsSize(shape.SplitK))
            {
                // The cluster form's slices (every rank's, summed by the last group here): the launched reduce's bits.
                SplitKFusedCheck.AssertMatchesLaunch(acc, cBuffer, partial, NaN16(bf16), launched, config.GridDim.X,
                    tickets => WideClusterEmulated(bf16)(config, aBuffer.View.AsContiguous(), a8, bBuffer.View.AsContiguous().Cast<Half8>(), biasView, cBuffer.View, partialView,
                        tickets, scratch.View, shape, layout), what + " cluster");
            }
        }
    }

    /// <summary>The pairing of two rows' words: the even column takes the low halves, the odd column the high halves, the lower row low.</summary>
    [Fact]
    public void PairTakesOneColumnOfTwoRows()
    {
        Assert.Equal(0xCCCCAAAAu, SkinnyTensorCoreKernels.Pair(0xBBBBAAAAu, 0xDDDDCCCCu, odd: false));
        Assert.Equal(0xDDDDBBBBu, SkinnyTensorCoreKernels.Pair(0xBBBBAAAAu, 0xDDDDCCCCu, odd: true));
    }

    /// <summary>
    /// The wide body's paired-A mma strings (both formats, every tile): each of pa0 .. pa3 is one prmt whose selector, run
    /// through the PTX ISA's byte-select rule on random words, gives what the emulation's <see cref="SkinnyTensorCoreKernels.Pair"/>
    /// gives (a0 / a1 the even / odd column of %0, %1; a2 / a3 of %2, %3), and the mma reads pa0 .. pa3 in that order.
    /// </summary>
    [Fact]
    public void PairedMmaPrmtMatchesPair()
    {
        var random = new Random(8311);
        var strings = typeof(SkinnyTensorCoreKernels).GetFields(System.Reflection.BindingFlags.Static | System.Reflection.BindingFlags.Public)
            .Where(f => f.Name.StartsWith("MmaPaired", StringComparison.Ordinal)).Select(f => (string)f.GetRawConstantValue()!).ToArray();
        Assert.Equal(2 * SkinnyTensorCoreKernels.WideMTiles, strings.Length);
        foreach (string asm in strings)
        {
            Assert.Contains("{pa0,pa1,pa2,pa3}, {%4,%5}", asm, StringComparison.Ordinal);
            var prmts = Regex.Matches(asm, @"prmt\.b32 pa(\d), %(\d), %(\d), 0x([0-9A-Fa-f]+);");
            Assert.Equal(4, prmts.Count);
            for (int trial = 0; trial < 64; trial++)
            {
                var words = Enumerable.Range(0, 4).Select(_ => (uint)random.NextInt64(0, 1L << 32)).ToArray();
                var expected = new[]
                {
                    SkinnyTensorCoreKernels.Pair(words[0], words[1], odd: false), SkinnyTensorCoreKernels.Pair(words[0], words[1], odd: true),
                    SkinnyTensorCoreKernels.Pair(words[2], words[3], odd: false), SkinnyTensorCoreKernels.Pair(words[2], words[3], odd: true),
                };
                foreach (Match prmt in prmts)
                {
                    int register = int.Parse(prmt.Groups[1].Value);
                    uint value = Prmt(words[int.Parse(prmt.Groups[2].Value)], words[int.Parse(prmt.Groups[3].Value)], Convert.ToUInt32(prmt.Groups[4].Value, 16));
                    Assert.Equal(expected[register], value);
                }
            }
        }
    }

    /// <summary>prmt.b32 (default mode): byte i of the result is byte (selector nibble i &amp; 7) of {b, a} (a bytes 0–3, b bytes 4–7), sign-replicated when the nibble's bit 3 is set.</summary>
    private static uint Prmt(uint a, uint b, uint selector)
    {
        ulong source = ((ulong)b << 32) | a;
        uint result = 0;
        for (int i = 0; i < 4; i++)
        {
            uint nibble = (selector >> (4 * i)) & 0xF;
            uint value = (uint)(source >> (int)(8 * (nibble & 7))) & 0xFF;
            if ((nibble & 8) != 0)
            {
                value = (value & 0x80) != 0 ? 0xFFu : 0u;
            }

            result |= value << (8 * i);
        }

        return result;
    }

    /// <summary>
    /// The PTX of every compiled variant: only its format's mma, every one of its m16n8 tiles, one accumulator declaration
    /// before any use, 16 mma per m-tile per multiply site, 16 8-byte weight loads per load site (two 4-byte pairs each on
    /// the fallback), no local memory in the K loop, no unsubstituted operand; the pairing's masks and shifts are counted.
    /// </summary>
    [Theory]
    [InlineData(1, false, 1)]
    [InlineData(2, false, 1)]
    [InlineData(4, false, 1)]
    [InlineData(1, true, 1)]
    [InlineData(2, true, 2)]
    [InlineData(4, true, 2)]
    [InlineData(1, false, 2)]
    [InlineData(4, false, 2)]
    public void PtxKeepsTheKLoopInRegisters(int mTiles, bool bf16, int stepsInFlight)
    {
        var method = typeof(SkinnyTensorCoreKernels).GetMethod(nameof(SkinnyTensorCoreKernels.Gemm16SkinnyKn))!
            .MakeGenericMethod(Constant(mTiles), Format(bf16), Constant(stepsInFlight));
        string ptx = Sm90Ptx.Of(method, dumpName: $"skinny-kn-m{mTiles}-{(bf16 ? "bf16" : "f16")}-s{stepsInFlight}");

        int tiles = mTiles * SkinnyTensorCoreKernels.NBlocks;
        var (mmas, vectors, local, loopLocal, _) = SkinnyPtx.AssertShape(ptx, bf16, tiles, tiles * 4, @"mma\.sync|ld\.global(\.nc)?\.(u64|b64|v2\.u32)");
        int quads = Regex.Matches(ptx, @"ld\.global(\.nc)?\.(u64|b64)").Count;
        int pairs = Regex.Matches(ptx, @"ld\.global(\.nc)?\.(u32|b32)").Count;
        int prmt = Regex.Matches(ptx, @"\bprmt\.b32").Count;
        int masks = Regex.Matches(ptx, @"\band\.b32\s[^;]*(-65536|65535|0xFFFF)").Count;
        int shifts = Regex.Matches(ptx, @"\b(shl|shr)\.(b|u)32\s[^;]*, 16;").Count;
        output.WriteLine($"{mTiles} m-tiles, {(bf16 ? "bf16" : "f16")}, {stepsInFlight} step(s): {mmas} mma, {quads} 8-byte / {pairs} 4-byte weight loads, "
            + $"{vectors} 16-byte activation loads, prmt {prmt}, 16-bit masks {masks}, 16-bit shifts {shifts}, "
            + $"{local} local accesses ({loopLocal} in the K loop), {ptx.Length} chars");
        int loadSites = stepsInFlight > 1 ? 3 : 2;
        Assert.Equal(2 * 4 * tiles, mmas);
        Assert.Equal(16 * loadSites, quads);
        Assert.True(pairs >= 32 * loadSites, $"{pairs} 4-byte loads: the pair fallback needs two per row");
        Assert.Equal(0, loopLocal);
    }

    /// <summary>
    /// The wide body's PTX: only its format's paired-A mma, 8 per multiply site on tiles 0–3 of one 16-accumulator declaration,
    /// 8 16-byte weight loads per load site and no narrower global load of the weight, no local memory in the K loop.
    /// </summary>
    [Theory]
    [InlineData(false, 1)]
    [InlineData(true, 1)]
    [InlineData(false, 2)]
    [InlineData(true, 2)]
    public void WidePtxKeepsTheKLoopInRegisters(bool bf16, int stepsInFlight)
    {
        var method = typeof(SkinnyTensorCoreKernels).GetMethod(nameof(SkinnyTensorCoreKernels.Gemm16SkinnyKnWide))!
            .MakeGenericMethod(Format(bf16), Constant(stepsInFlight));
        string ptx = Sm90Ptx.Of(method, dumpName: $"skinny-kn-wide-{(bf16 ? "bf16" : "f16")}-s{stepsInFlight}");
        var (mmas, vectors, local, loopLocal, _) = SkinnyPtx.AssertShape(ptx, bf16, SkinnyTensorCoreKernels.WideMTiles, SkinnyTensorCoreKernels.WideMTiles * 4);

        // Multiply sites of 8 mma and one activation vector (row g) each: the loop's (two with two steps in flight: its body
        // is two steps) and the guarded last step's; load sites of 8 weight rows: the loop's, the first step's with two in flight,
        // the guarded last step's.
        int multiplySites = stepsInFlight > 1 ? 3 : 2;
        int loadSites = stepsInFlight > 1 ? 4 : 2;
        output.WriteLine($"wide, {(bf16 ? "bf16" : "f16")}, {stepsInFlight} step(s): {mmas} mma, {vectors} 16-byte loads, "
            + $"{local} local accesses ({loopLocal} in the K loop), {ptx.Length} chars");
        Assert.Equal(8 * multiplySites, mmas);
        Assert.Equal((8 * loadSites) + multiplySites, vectors);
        Assert.Equal(0, loopLocal);
    }

    /// <summary>
    /// The products that can reduce in place (<c>GEMS_SPLITK_REDUCE=fused</c>) compile for SM_90 with the ticket path: one
    /// global atomic add (the group's ticket), device-level fences around it, and still no local memory in the K loop.
    /// </summary>
    [Theory]
    [InlineData(false, false, 1)]
    [InlineData(false, true, 4)]
    [InlineData(true, true, 1)]
    [InlineData(true, false, 2)]
    public void FusedReducePtxTakesATicket(bool wide, bool bf16, int mTilesOrSteps)
    {
        var method = wide
            ? typeof(SkinnyTensorCoreKernels).GetMethod(nameof(SkinnyTensorCoreKernels.Gemm16SkinnyKnWide))!.MakeGenericMethod(Format(bf16), Constant(mTilesOrSteps))
            : typeof(SkinnyTensorCoreKernels).GetMethod(nameof(SkinnyTensorCoreKernels.Gemm16Skinny))!.MakeGenericMethod(Constant(mTilesOrSteps), Format(bf16), Constant(2));
        string ptx = Sm90Ptx.Of(method, dumpName: $"skinny-{(wide ? "kn-wide" : "nk")}-{(bf16 ? "bf16" : "f16")}-{mTilesOrSteps}");
        Assert.Single(Regex.Matches(ptx, @"atom\.(global\.add|add\.global)\.(s32|u32)"));
        Assert.True(Regex.Matches(ptx, @"membar\.gl|fence\.(sc|acq_rel)\.gpu").Count >= 2, "the ticket needs a device fence before it (publish) and after it (the last group's reads)");
        var blocks = Regex.Split(ptx, @"(?m)^\s*[A-Za-z_$][\w$]*:\s*$");
        Assert.Equal(0, blocks.Where(b => b.Contains("mma.sync", StringComparison.Ordinal)).Sum(b => Regex.Matches(b, @"(ld|st)\.local").Count));
    }

    /// <summary>Layout flags: 16-byte activations need K % 8 = 0 and a 16-byte aligned, 8-byte weight quads N % 4 = 0 and b 8-byte aligned.</summary>
    [Theory]
    [InlineData(4096, 4096, 0, 0, 3)]
    [InlineData(4096, 11008, 256, 512, 3)]
    [InlineData(37, 4096, 0, 0, 2)]
    [InlineData(64, 130, 0, 0, 1)]
    [InlineData(33, 130, 0, 0, 0)]
    [InlineData(64, 4096, 8, 4, 0)]
    [InlineData(64, 4096, 16, 8, 3)]
    public void LayoutFollowsAlignment(int k, int n, long aAddress, long bAddress, int layout) =>
        Assert.Equal(layout, SkinnyTensorCoreLaunch.KnLayout(k, n, aAddress, bAddress));

    /// <summary>The switch is on unless set to 0 / off / false; the other settings keep their meaning.</summary>
    [Theory]
    [InlineData(null, true)]
    [InlineData("", true)]
    [InlineData("0", false)]
    [InlineData(" OFF ", false)]
    [InlineData("false", false)]
    [InlineData("x", true)]
    [InlineData("1", true)]
    public void KnSwitchParses(string? kn, bool expected)
    {
        var settings = SkinnyTensorCoreSettings.Parse(null, null, null, null, null, kn);
        Assert.Equal(expected, settings.KnEnabled);
        Assert.True(settings.Enabled);
        Assert.Equal(2, settings.StepsInFlight);
        Assert.Equal(1, settings.WideStepsInFlight);
    }

    /// <summary>GEMS_SKINNY_KN_VARIANT: the wide body unless "old"; anything else is the default.</summary>
    [Theory]
    [InlineData(null, (int)SkinnyKnBody.Wide)]
    [InlineData("", (int)SkinnyKnBody.Wide)]
    [InlineData(" OLD ", (int)SkinnyKnBody.Old)]
    [InlineData("old", (int)SkinnyKnBody.Old)]
    [InlineData("x", (int)SkinnyKnBody.Wide)]
    public void KnVariantParses(string? variant, int expected) =>
        Assert.Equal((SkinnyKnBody)expected, SkinnyTensorCoreSettings.Parse(null, null, null, null, null, null, variant).KnBody);

    /// <summary>Off the CUDA backend (here the simulator) the [K, N] variant is never chosen, switch or not; the settings are restored.</summary>
    [Fact]
    public void SimulatorNeverDispatches()
    {
        var saved = K.SkinnySettings;
        try
        {
            K.SkinnySettings = SkinnyTensorCoreSettings.Parse(null, null, null, null, null, "1");
            using var a = Acc.Allocate1D<ushort>(16 * 64);
            using var b = Acc.Allocate1D<ushort>(64 * 128);
            Assert.False(K.UsesSkinnyTensorCoreKn(a.View, b.View, 1, 16, 64, 128, transposeB: false));
        }
        finally
        {
            K.SkinnySettings = saved;
        }
    }
}
