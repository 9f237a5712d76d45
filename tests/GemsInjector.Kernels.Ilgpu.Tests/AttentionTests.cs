using System;
using System.Linq;
using GemsInjector.Kernels.Ilgpu;
using ILGPU;
using ILGPU.Runtime;
using Xunit;

namespace GemsInjector.Kernels.Ilgpu.Tests;

/// <summary>
/// Scaled-dot-product attention kernels against a float64 reference, every output element, outputs poisoned with NaN:
/// the decode path through the facade (the default simulator: warps of 4, so 4 lanes per row team) and the tensor-core
/// prefill launched directly on a 32-lane-warp simulator.
/// </summary>
[Collection(SimulatorCollection.Name)]
public sealed class AttentionTests : Half16TestBase, IClassFixture<Warp32SimulatorFixture>
{
    private readonly Warp32SimulatorFixture warp32;

    public AttentionTests(SimulatorFixture fixture, Warp32SimulatorFixture warp32)
        : base(fixture) => this.warp32 = warp32;

    /// <summary>
    /// softmax(q·kᵀ·scale + mask)·v in float64; q/out [b, h, lq, d], k/v [b, kvh, lk, d]; top-left causal; a row with no
    /// visible key gives zeros.
    /// </summary>
    internal static double[] Reference(float[] q, float[] k, float[] v, int batch, int heads, int kvHeads, int lq, int lk, int d, bool causal,
        Func<int, int, int, int, double> mask, double scale)
    {
        var o = new double[batch * heads * lq * d];
        for (int b = 0; b < batch; b++)
        {
            for (int h = 0; h < heads; h++)
            {
                int kvh = (b * kvHeads) + (h / (heads / kvHeads));
                for (int i = 0; i < lq; i++)
                {
                    var s = new double[lk];
                    for (int j = 0; j < lk; j++)
                    {
                        double dot = 0;
                        for (int t = 0; t < d; t++)
                        {
                            dot += (double)q[((((b * heads) + h) * lq) + i) * d + t] * k[(((kvh * lk) + j) * d) + t];
                        }

                        s[j] = causal && j > i ? double.NegativeInfinity : (dot * scale) + mask(b, h, i, j);
                    }

                    double m = lk == 0 ? double.NegativeInfinity : s.Max();
                    var p = s.Select(x => double.IsNegativeInfinity(x) ? 0 : Math.Exp(x - m)).ToArray();
                    double sum = p.Sum();
                    for (int t = 0; t < d; t++)
                    {
                        double acc = 0;
                        for (int j = 0; j < lk; j++)
                        {
                            acc += p[j] * v[(((kvh * lk) + j) * d) + t];
                        }

                        o[((((b * heads) + h) * lq) + i) * d + t] = sum == 0 ? 0 : acc / sum;
                    }
                }
            }
        }

        return o;
    }

    /// <summary>Mask of kind 0 (none), 1 [lk], 2 [b, 1, lk], 3 [b, h, 1, lk], with key 2 of every row hidden (-∞).</summary>
    private static float[] DecodeMask(int seed, int kind, int batch, int heads, int lk)
    {
        int rows = kind switch { 1 => 1, 2 => batch, 3 => batch * heads, _ => 0 };
        var mask = Random(seed, rows * lk, -2f, 1f);
        for (int r = 0; lk > 2 && r < rows; r++)
        {
            mask[(r * lk) + 2] = float.NegativeInfinity;
        }

        return mask;
    }

    private static Func<int, int, int, int, double> MaskLookup(float[] mask, int kind, int heads, int lk) => kind switch
    {
        1 => (b, h, i, j) => mask[j],
        2 => (b, h, i, j) => mask[(b * lk) + j],
        3 => (b, h, i, j) => mask[(((b * heads) + h) * lk) + j],
        _ => (b, h, i, j) => 0,
    };

    public static TheoryData<int, int, int, int, bool, int, int> DecodeF32Cases => new()
    {
        // heads, kvHeads, lk, d, causal, mask kind, view offset (elements; 1 misaligns q, k, v: the narrow kernel)
        { 4, 2, 1, 16, false, 0, 0 },
        { 8, 1, 3, 8, false, 1, 0 },
        { 5, 5, 65, 16, false, 3, 0 },
        { 12, 2, 127, 64, false, 2, 0 },
        { 4, 2, 37, 12, true, 0, 0 },
        { 6, 3, 0, 8, false, 0, 0 },
        { 4, 2, 13, 7, false, 1, 0 },
        { 4, 2, 22, 16, false, 3, 1 },
    };

    [Theory]
    [MemberData(nameof(DecodeF32Cases))]
    public void DecodeF32(int heads, int kvHeads, int lk, int d, bool causal, int maskKind, int offset)
    {
        const int Batch = 2;
        int seed = 12000 + (heads * 1000) + (lk * 10) + d + (causal ? 5 : 0) + maskKind + offset;
        var q = Random(seed, Batch * heads * d, -1.5f, 1.5f);
        var k = Random(seed + 1, Batch * kvHeads * lk * d, -1.5f, 1.5f);
        var v = Random(seed + 2, Batch * kvHeads * lk * d);
        var mask = DecodeMask(seed + 3, maskKind, Batch, heads, lk);
        var o = Poisoned(q.Length);
        K.ScaledDotProductAttention(UploadAt(q, offset, 0f), UploadAt(k, offset, 0f), UploadAt(v, offset, 0f), o, Batch, heads, kvHeads, 1, lk, d, causal,
            mask.Length == 0 ? default : Upload(mask), scale: 0.3f);
        var expected = Reference(q, k, v, Batch, heads, kvHeads, 1, lk, d, causal, MaskLookup(mask, maskKind, heads, lk), 0.3);
        AssertClose(Download(o), expected, RtolF32, Atol, $"decode f32 {heads}/{kvHeads} lk={lk} d={d} causal={causal} mask={maskKind} offset={offset}", seed);
    }

    public static TheoryData<int, int, int, int, int, int> QueriesAsHeadsCases => new()
    {
        // batch, heads, kvHeads, lq, lk, d: non-causal and unmasked, so every query row runs as a decode head of its own
        { 2, 4, 2, 3, 37, 16 },
        { 1, 8, 2, 16, 65, 8 },
        { 3, 2, 1, 5, 700, 12 },
        { 2, 4, 2, 6, 45, 7 }, // a head size the wide decode does not take: the split kernel
        { 1, 4, 4, IlgpuKernels.DecodeQueriesAsHeads, 40, 8 },
        { 1, 2, 1, IlgpuKernels.DecodeQueriesAsHeads + 1, 40, 8 }, // one past the limit: the prefill kernel
    };

    /// <summary>
    /// A few unmasked queries over many keys run as a decode step with a head per (head, query) pair: every output element
    /// against the float64 reference, outputs poisoned with NaN, batch and grouped-query heads mixed.
    /// </summary>
    [Theory]
    [MemberData(nameof(QueriesAsHeadsCases))]
    public void FewQueriesOverManyKeysF32(int batch, int heads, int kvHeads, int lq, int lk, int d)
    {
        int seed = 15000 + (batch * 1000) + (heads * 100) + lq + lk + d;
        var q = Random(seed, batch * heads * lq * d, -1.5f, 1.5f);
        var k = Random(seed + 1, batch * kvHeads * lk * d, -1.5f, 1.5f);
        var v = Random(seed + 2, batch * kvHeads * lk * d);
        var o = Poisoned(q.Length);
        K.ScaledDotProductAttention(Upload(q), Upload(k), Upload(v), o, batch, heads, kvHeads, lq, lk, d, causal: false, scale: 0.3f);
        var expected = Reference(q, k, v, batch, heads, kvHeads, lq, lk, d, false, (b, h, i, j) => 0, 0.3);
        AssertClose(Download(o), expected, RtolF32, Atol, $"f32 {batch}x{heads}/{kvHeads} lq={lq} lk={lk} d={d}", seed);
    }

    [Theory]
    [InlineData(1, 32, 16, false, false, long.MaxValue, true)]
    [InlineData(1, 32, IlgpuKernels.DecodeQueriesAsHeads, false, false, long.MaxValue, true)]
    [InlineData(1, 32, IlgpuKernels.DecodeQueriesAsHeads + 1, false, false, long.MaxValue, false)]
    [InlineData(1, 32, 1, false, false, long.MaxValue, false)] // one query is a decode already
    [InlineData(1, 32, 16, true, false, long.MaxValue, false)]
    [InlineData(1, 32, 16, false, true, long.MaxValue, false)]
    [InlineData(1, 32, IlgpuKernels.TensorCorePrefillQueryPairs / 32, false, false, IlgpuKernels.TensorCorePrefillQueryPairs, true)]
    [InlineData(1, 32, (IlgpuKernels.TensorCorePrefillQueryPairs / 32) + 1, false, false, IlgpuKernels.TensorCorePrefillQueryPairs, false)]
    [InlineData(1, 32, IlgpuKernels.SplitPrefillQueryPairs / 32, false, false, IlgpuKernels.SplitPrefillQueryPairs, true)]
    [InlineData(1, 32, (IlgpuKernels.SplitPrefillQueryPairs / 32) + 1, false, false, IlgpuKernels.SplitPrefillQueryPairs, false)]
    [InlineData(4, 32, 8, false, false, IlgpuKernels.TensorCorePrefillQueryPairs, false)] // 1024 pairs: the tensor-core prefill
    [InlineData(4, 32, 8, false, false, long.MaxValue, true)]
    public void WhichQueriesRunAsDecodeHeads(int batch, int heads, int lq, bool causal, bool masked, long prefillPairs, bool expected) =>
        Assert.Equal(expected, IlgpuKernels.QueriesRunAsHeads(batch, heads, lq, causal, masked, prefillPairs));

    public static TheoryData<bool, int, int, int, int, int, int> QueriesAsHeads16Cases => new()
    {
        // bf16, batch, heads, kvHeads, lq, lk, d: non-causal and unmasked, so every query row runs as a decode head of its own
        { true, 2, 4, 2, 3, 37, 16 },
        { false, 1, 8, 2, 16, 65, 8 },
        { true, 3, 2, 1, 5, 300, 64 },
        { false, 2, 4, 2, 6, 45, 12 }, // a head size the wide decode does not take: the prefill kernel
        { true, 1, 4, 4, IlgpuKernels.DecodeQueriesAsHeads, 40, 8 },
        { false, 1, 2, 1, IlgpuKernels.DecodeQueriesAsHeads + 1, 40, 8 }, // one past the limit: the prefill kernel
    };

    /// <summary>The 16-bit twin of <see cref="FewQueriesOverManyKeysF32"/>: the query rows as decode heads, both formats.</summary>
    [Theory]
    [MemberData(nameof(QueriesAsHeads16Cases))]
    public void FewQueriesOverManyKeys16(bool bf16, int batch, int heads, int kvHeads, int lq, int lk, int d)
    {
        int seed = 15500 + (batch * 1000) + (heads * 100) + lq + lk + d + (bf16 ? 7 : 0);
        var (q, qv) = Random16(seed, batch * heads * lq * d, bf16, -1.5f, 1.5f);
        var (k, kv) = Random16(seed + 1, batch * kvHeads * lk * d, bf16, -1.5f, 1.5f);
        var (v, vv) = Random16(seed + 2, batch * kvHeads * lk * d, bf16);
        var o = Poisoned16(q.Length, bf16);
        K.ScaledDotProductAttention(Upload(q), Upload(k), Upload(v), o, batch, heads, kvHeads, lq, lk, d, F(bf16));
        double scale = 1 / Math.Sqrt(d);
        var expected = Reference(qv, kv, vv, batch, heads, kvHeads, lq, lk, d, false, (b, h, i, j) => 0, scale);
        Check16(o, expected, bf16, $"16-bit {batch}x{heads}/{kvHeads} lq={lq} lk={lk} d={d}", seed, Atol * lk);
    }

    public static TheoryData<bool, int, int, int, int, bool, int, int> Decode16Cases => new()
    {
        // bf16, heads, kvHeads, lk, d, causal, mask kind, view offset (1: the general kernel)
        { true, 4, 2, 1, 8, false, 0, 0 },
        { false, 8, 1, 3, 16, false, 1, 0 },
        { true, 5, 5, 65, 64, false, 3, 0 },
        { false, 12, 2, 127, 16, false, 2, 0 },
        { true, 4, 2, 37, 8, true, 0, 0 },
        { false, 4, 2, 9, 12, false, 1, 0 },
        { true, 4, 2, 22, 16, false, 3, 1 },
    };

    [Theory]
    [MemberData(nameof(Decode16Cases))]
    public void Decode16(bool bf16, int heads, int kvHeads, int lk, int d, bool causal, int maskKind, int offset)
    {
        const int Batch = 2;
        int seed = 13000 + (heads * 1000) + (lk * 10) + d + (causal ? 5 : 0) + maskKind + offset + (bf16 ? 7 : 0);
        var (q, qv) = Random16(seed, Batch * heads * d, bf16, -1.5f, 1.5f);
        var (k, kv) = Random16(seed + 1, Batch * kvHeads * lk * d, bf16, -1.5f, 1.5f);
        var (v, vv) = Random16(seed + 2, Batch * kvHeads * lk * d, bf16);
        var mask = DecodeMask(seed + 3, maskKind, Batch, heads, lk);
        var o = Poisoned16(q.Length, bf16);
        K.ScaledDotProductAttention(UploadAt(q, offset, (ushort)0), UploadAt(k, offset, (ushort)0), UploadAt(v, offset, (ushort)0), o, Batch, heads, kvHeads,
            1, lk, d, F(bf16), causal, mask.Length == 0 ? default : Upload(mask));
        double scale = 1 / Math.Sqrt(d);
        var expected = Reference(qv, kv, vv, Batch, heads, kvHeads, 1, lk, d, causal, MaskLookup(mask, maskKind, heads, lk), scale);
        Check16(o, expected, bf16, $"decode 16-bit {heads}/{kvHeads} lk={lk} d={d} causal={causal} mask={maskKind} offset={offset}", seed, Atol * Math.Max(lk, 1));
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Decode16FullyMaskedHeadIsZeroAndNaNPropagates(bool bf16)
    {
        const int Heads = 2, Lk = 11, D = 8;
        var (q, _) = Random16(13500, Heads * D, bf16);
        var (k, _) = Random16(13501, Lk * D, bf16);
        var (v, _) = Random16(13502, Lk * D, bf16);
        var mask = new float[Heads * Lk];
        Array.Fill(mask, float.NegativeInfinity, 0, Lk); // head 0 sees nothing → zeros
        var o = Poisoned16(q.Length, bf16);
        K.ScaledDotProductAttention(Upload(q), Upload(k), Upload(v), o, 1, Heads, 1, 1, Lk, D, F(bf16), mask: Upload(mask));
        var got = ToFloat(Download(o), bf16);
        Assert.All(got.Take(D), x => Assert.Equal(0f, x));
        Assert.All(got.Skip(D), x => Assert.True(float.IsFinite(x)));

        k[(9 * D) + 3] = NaN16(bf16); // key 9 (second chunk on the simulator) → NaN for head 1
        o = Poisoned16(q.Length, bf16);
        K.ScaledDotProductAttention(Upload(q), Upload(k), Upload(v), o, 1, Heads, 1, 1, Lk, D, F(bf16), mask: Upload(mask));
        got = ToFloat(Download(o), bf16);
        Assert.All(got, x => Assert.True(float.IsNaN(x))); // NaN + (-∞) is NaN: the masked head sees it too
        Assert.True(Device.HasCompiled(nameof(AttentionDecodeWideKernels.DecodeStream16)));
    }

    private static string Ptx(System.Reflection.MethodInfo method)
    {
        string ptx = Sm90Ptx.Of(method);
        System.IO.File.WriteAllText(System.IO.Path.Combine(System.IO.Path.GetTempPath(), method.Name + ".ptx"), ptx);
        return ptx;
    }

    public static TheoryData<bool, int, int, int, int, bool, int> TensorCoreCases => new()
    {
        // bf16, heads, kvHeads, lq, lk, causal, mask kind (0 none, 1 [lq, lk], 2 [b, lq, lk], 3 [b, h, lq, lk])
        { true, 2, 1, 65, 65, true, 0 },
        { false, 2, 1, 65, 65, true, 0 },
        { true, 4, 2, 3, 127, false, 1 },
        { false, 1, 1, 127, 3, false, 3 },
        { true, 2, 2, 1, 1, true, 2 },
        { false, 3, 1, 70, 33, true, 1 },
    };

    /// <summary>
    /// The tensor-core attention kernel body with mma.sync / ldmatrix emulated lane by lane (32-lane warps), uniform
    /// inputs and masks, checked with the GPU harness's rule.
    /// </summary>
    [Theory]
    [MemberData(nameof(TensorCoreCases))]
    public void TensorCoreAttentionEmulated(bool bf16, int heads, int kvHeads, int lq, int lk, bool causal, int maskKind)
    {
        int seed = 15000 + (heads * 1000) + (lq * 10) + lk + (causal ? 3 : 0) + maskKind + (bf16 ? 7 : 0);
        RunTensorCoreEmulated(bf16, 2, heads, kvHeads, lq, lk, causal, maskKind, normal: false, 0.125, seed);
    }

    public static TheoryData<bool, int, int, int, int, bool> TensorCoreHarnessCases => new()
    {
        // bf16, heads, kvHeads, lq, lk, causal: standard normal q, k, v as the harness draws them, scale 1/√128
        { true, 2, 1, 512, 512, true },
        { false, 2, 1, 512, 512, true },
        { true, 4, 2, 67, 2, false },
        { false, 4, 2, 67, 2, false },
        { true, 2, 1, 33, 700, false },
        { false, 2, 1, 33, 700, false },
    };

    /// <summary>
    /// The emulated tensor-core attention on inputs drawn like the GPU harness's sdpa cases, with the harness's tolerance
    /// and nothing more: |out − ref| ≤ 1e-4 + rtol·|ref| with ref rounded to the dtype. In the long causal case the first
    /// query rows of each head see only a few keys (their outputs are weighted means of a few v rows, often small), where
    /// one rounding of the softmax weights to 16 bits before P·V already exceeds that tolerance; in the lk = 2 case every
    /// row is such a row.
    /// </summary>
    [Theory]
    [MemberData(nameof(TensorCoreHarnessCases))]
    public void TensorCoreAttentionMeetsHarnessToleranceOnNormalInputs(bool bf16, int heads, int kvHeads, int lq, int lk, bool causal)
    {
        int seed = 16000 + (heads * 1000) + (lq * 10) + lk + (causal ? 3 : 0) + (bf16 ? 7 : 0);
        RunTensorCoreEmulated(bf16, 1, heads, kvHeads, lq, lk, causal, 0, normal: true, 1 / Math.Sqrt(AttentionTensorCoreKernels.D), seed);
    }

    private void RunTensorCoreEmulated(bool bf16, int batch, int heads, int kvHeads, int lq, int lk, bool causal, int maskKind, bool normal, double scale, int seed)
    {
        const int D = AttentionTensorCoreKernels.D;
        var acc = warp32.Accelerator;
        var (q, qv) = normal ? Normal16(seed, batch * heads * lq * D, bf16) : Random16(seed, batch * heads * lq * D, bf16, -1f, 1f);
        var (k, kv) = normal ? Normal16(seed + 1, batch * kvHeads * lk * D, bf16) : Random16(seed + 1, batch * kvHeads * lk * D, bf16, -1f, 1f);
        var (v, vv) = normal ? Normal16(seed + 2, batch * kvHeads * lk * D, bf16) : Random16(seed + 2, batch * kvHeads * lk * D, bf16);
        int rows = maskKind switch { 1 => lq, 2 => batch * lq, 3 => batch * heads * lq, _ => 0 };
        var rng = new Random(seed + 3);
        var mask = Enumerable.Range(0, rows * lk).Select(e => rng.Next(5) == 0 ? float.NegativeInfinity : (float)(rng.NextDouble() * 2 - 1)).ToArray();
        if (maskKind == 1 && lk > 1)
        {
            Array.Fill(mask, float.NegativeInfinity, 0, lk); // query 0 sees nothing: zeros
        }

        Func<int, int, int, int, double> lookup = maskKind switch
        {
            1 => (b, h, i, j) => mask[(i * lk) + j],
            2 => (b, h, i, j) => mask[(((b * lq) + i) * lk) + j],
            3 => (b, h, i, j) => mask[(((((b * heads) + h) * lq) + i) * lk) + j],
            _ => (b, h, i, j) => 0,
        };
        var shape = new AttentionShape
        {
            Heads = heads,
            KvHeads = kvHeads,
            Lq = lq,
            Lk = lk,
            D = D,
            Scale = (float)scale,
            Causal = causal ? 1 : 0,
            HasMask = maskKind != 0 ? 1 : 0,
            MaskBatch = maskKind switch { 2 => lq * lk, 3 => heads * lq * lk, _ => 0 },
            MaskHead = maskKind == 3 ? lq * lk : 0,
            MaskRow = lk,
        };
        var config = IlgpuKernels.TensorCoreAttentionConfig(batch, heads, lq);
        using var qb = acc.Allocate1D(q);
        using var kb = acc.Allocate1D(k);
        using var vb = acc.Allocate1D(v);
        using var maskBuffer = acc.Allocate1D(mask.Length == 0 ? new float[1] : mask);
        using var ob = acc.Allocate1D(Enumerable.Repeat(NaN16(bf16), q.Length).ToArray());
        using var scratch = acc.Allocate1D<float>(AttentionTensorCoreKernels.EmulationScratch((long)config.GridDim.Size));
        acc.LoadStreamKernel<ArrayView<Half8>, ArrayView<Half8>, ArrayView<Half8>, ArrayView<float>, ArrayView<ushort>, ArrayView<float>, AttentionShape, int>(
            AttentionTensorCoreKernels.Attention16TensorCoreEmulated)(config, qb.View.BaseView.Cast<Half8>(), kb.View.BaseView.Cast<Half8>(), vb.View.BaseView.Cast<Half8>(),
            maskKind == 0 ? ArrayView<float>.Empty : maskBuffer.View, ob.View, scratch.View, shape, bf16 ? 1 : 0);
        acc.Synchronize();
        var got = ToFloat(ob.GetAsArray1D(), bf16);
        var expected = Reference(qv, kv, vv, batch, heads, kvHeads, lq, lk, D, causal, lookup, scale);
        AssertHarnessRule(got, expected, bf16, $"tensor-core attention {batch}x{heads}/{kvHeads} lq={lq} lk={lk} causal={causal} mask={maskKind} normal={normal} ({F(bf16)})", seed);
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

    /// <summary>
    /// The GPU harness's check (FlagGems' rule): the float64 reference rounded to the output dtype, then
    /// |out − ref| ≤ 1e-4 + rtol·|ref| for every element; NaN passes only against NaN.
    /// </summary>
    private static void AssertHarnessRule(float[] got, double[] expected, bool bf16, string what, int seed)
    {
        var rounded = ToFloat(To16(expected.Select(e => (float)e).ToArray(), bf16), bf16);
        AssertClose(got, rounded.Select(e => (double)e).ToArray(), Rtol(bf16), Atol, what, seed);
    }

    [Fact]
    public void TensorCoreAttentionPtxKeepsEveryAsmBlockAndNoLocalMemoryInTheKeyLoop()
    {
        string ptx = Ptx(typeof(AttentionTensorCoreKernels).GetMethod(nameof(AttentionTensorCoreKernels.Attention16TensorCore))!);
        int Count(string what) => System.Text.RegularExpressions.Regex.Matches(ptx, System.Text.RegularExpressions.Regex.Escape(what)).Count;

        // Per format: 32 mma for the scores and 2 × 32 for P·V (high and low weight parts) in the key loop; ldmatrix 16 (K)
        // + 2 × 2 (P) plain, 16 (V) .trans; the Q fragments are loaded once (8 ldmatrix) into registers declared with the
        // accumulators.
        Assert.Equal(96, Count("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32"));
        Assert.Equal(96, Count("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32"));
        Assert.Equal(8 + (2 * 20), Count("ldmatrix.sync.aligned.m8n8.x4.shared.b16"));
        Assert.Equal(2 * 16, Count("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16"));
        Assert.Equal(1, Count(".reg .f32 ato<64>;"));
        Assert.Equal(1, Count(".reg .b32 atq<32>;"));
        Assert.Contains("cp.async.cg.shared.global", ptx, StringComparison.Ordinal);
        Assert.Contains("cp.async.wait_group 1;", ptx, StringComparison.Ordinal);

        // The softmax step per format: 16 weights and one rescale factor through ex2, 8 high and 8 low weight pairs and
        // 16 output pairs rounded (f16 widens the high parts back with cvt, bf16 with bit operations).
        Assert.Equal(2 * 17, Count("ex2.approx.ftz.f32"));
        Assert.Equal(8 + 8 + 32, Count("cvt.rn.bf16x2.f32"));
        Assert.Equal(8 + 8 + 32, Count("cvt.rn.f16x2.f32"));
        Assert.Equal(16, Count("cvt.f32.f16 sf"));
        Assert.Equal(8, Count("and.b32 sba"));
        Assert.DoesNotContain(".func", ptx, StringComparison.Ordinal);
        int first = ptx.IndexOf("ldmatrix", StringComparison.Ordinal);
        int last = ptx.LastIndexOf("mma.sync", StringComparison.Ordinal);
        Assert.True(ptx.IndexOf(".reg .f32 ato<64>;", StringComparison.Ordinal) < first);
        Assert.DoesNotMatch(@"(ld|st)\.local", ptx[first..last]);
        Assert.DoesNotMatch(@"\[%\d|\{%\d|, %\d+[,;]", ptx);
    }
}
