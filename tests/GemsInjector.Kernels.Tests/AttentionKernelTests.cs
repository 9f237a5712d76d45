using System;
using GemsInjector.Kernels.Cpu;
using TorchSharp;
using Xunit;

namespace GemsInjector.Kernels.Tests;

/// <summary>
/// scaled_dot_product_attention against a float64 reference written here and TorchSharp's (which has no scale / GQA arguments:
/// its reference repeats key/value heads with repeat_interleave and pre-scales the query by scale * √D). atol = 1e-4 * Lk * D.
/// </summary>
public class AttentionKernelTests
{
    public static TheoryData<long, long, long, long, long, long, bool, int, torch.ScalarType> Cases()
    {
        var data = new TheoryData<long, long, long, long, long, long, bool, int, torch.ScalarType>();
        foreach (torch.ScalarType dtype in KernelTestData.FloatTypes)
        {
            data.Add(1, 8, 2, 17, 17, 16, true, 0, dtype);   // GQA, causal
            data.Add(2, 4, 4, 1, 33, 32, false, 0, dtype);   // decode row
            data.Add(1, 8, 2, 9, 70, 8, false, 1, dtype);    // float mask
            data.Add(2, 2, 1, 5, 3, 4, true, 2, dtype);      // bool mask + causal
            data.Add(1, 8, 2, 1, 150, 32, false, 3, dtype);  // GQA decode over three key blocks, a mask of its own per head
            data.Add(2, 6, 3, 4, 70, 16, true, 3, dtype);    // the same with causal rows
            data.Add(1, 4, 1, 1, 200, 32, false, 3, dtype);  // one group, fewer than the threads: its heads split over tasks
        }

        data.Add(1, 4, 4, 0, 5, 8, false, 0, torch.ScalarType.Float32);
        data.Add(1, 2, 2, 130, 130, 64, true, 0, torch.ScalarType.Float32);
        return data;
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Attention_matches_reference_and_torch(long batch, long heads, long kvHeads, long lq, long lk, long d, bool causal, int maskKind, torch.ScalarType dtype)
    {
        int seed = TestData.NewSeed();
        var random = new Random(seed);
        (torch.Tensor query, float[] q) = KernelTestData.Random(random, dtype, 1, batch, heads, lq, d);
        (torch.Tensor key, float[] k) = KernelTestData.Random(random, dtype, 1, batch, kvHeads, lk, d);
        (torch.Tensor value, float[] v) = KernelTestData.Random(random, dtype, 1, batch, kvHeads, lk, d);
        float[] additive = TestData.Normal(random, (maskKind == 3 ? batch * heads : 1) * lq * lk);
        bool[] keep = new bool[lq * lk];
        for (int i = 0; i < keep.Length; i++)
        {
            keep[i] = random.NextDouble() < 0.7 || i % lk == 0;
        }

        using torch.Tensor? mask = maskKind switch
        {
            1 => KernelTestData.Make(additive, new[] { lq, lk }, dtype),
            3 => KernelTestData.Make(additive, new[] { batch, heads, lq, lk }, dtype),
            2 => torch.tensor(keep, new[] { 1L, 1L, lq, lk }),
            _ => null,
        };
        float[] maskValues = maskKind is 1 or 3 ? KernelTestData.Values(mask!) : additive;
        double scale = 0.7 / Math.Sqrt(d);
        using (query)
        using (key)
        using (value)
        {
            var expected = new double[batch * heads * lq * d];
            long group = heads / kvHeads;
            for (long b = 0; b < batch; b++)
            {
                for (long h = 0; h < heads; h++)
                {
                    long kv = b * kvHeads + h / group;
                    for (long i = 0; i < lq; i++)
                    {
                        var s = new double[lk];
                        double max = double.NegativeInfinity;
                        for (long j = 0; j < lk; j++)
                        {
                            double dot = 0;
                            for (long c = 0; c < d; c++)
                            {
                                dot += (double)q[((b * heads + h) * lq + i) * d + c] * k[(kv * lk + j) * d + c];
                            }

                            s[j] = dot * scale + maskKind switch
                            {
                                1 => maskValues[i * lk + j],
                                3 => maskValues[(((b * heads) + h) * lq + i) * lk + j],
                                _ => 0,
                            };
                            if ((causal && j > i) || (maskKind == 2 && !keep[i * lk + j]))
                            {
                                s[j] = double.NegativeInfinity;
                            }

                            max = Math.Max(max, s[j]);
                        }

                        double total = 0;
                        for (long j = 0; j < lk; j++)
                        {
                            s[j] = Math.Exp(s[j] - max);
                            total += s[j];
                        }

                        for (long c = 0; c < d; c++)
                        {
                            double o = 0;
                            for (long j = 0; j < lk; j++)
                            {
                                o += s[j] * v[(kv * lk + j) * d + c];
                            }

                            expected[((b * heads + h) * lq + i) * d + c] = o / total;
                        }
                    }
                }
            }

            KernelTestData.PoisonHeap(expected.Length, dtype);
            using torch.Tensor result = CpuTensorKernels.ScaledDotProductAttention(query, key, value, mask, causal, scale);
            Assert.Equal(new[] { batch, heads, lq, d }, result.shape);
            double atol = TestData.ReductionAtol(Math.Max(1, lk * d));
            KernelTestData.AssertClose(expected, result, atol, dtype, seed, "sdpa vs float64");

            // TorchSharp's attention takes a mask or causal, not both.
            if (dtype == torch.ScalarType.Float32 && maskKind != 2 && !(causal && mask is not null))
            {
                using torch.Tensor k2 = key.repeat_interleave(group, 1);
                using torch.Tensor v2 = value.repeat_interleave(group, 1);
                using torch.Tensor q2 = query * (scale * Math.Sqrt(d));
                using torch.Tensor reference = torch.nn.functional.scaled_dot_product_attention(q2, k2, v2, mask, 0.0, causal);
                KernelTestData.AssertClose(reference, result, atol, dtype, seed, "sdpa vs torch");
            }
        }
    }

    [Fact]
    public void Fully_masked_rows_match_torch_and_errors_are_clear()
    {
        using torch.Tensor q = torch.randn(1, 2, 3, 8);
        using torch.Tensor k = torch.randn(1, 2, 4, 8);
        using torch.Tensor v = torch.randn(1, 2, 4, 8);
        using torch.Tensor mask = torch.ones(new long[] { 3, 4 }, torch.ScalarType.Bool);
        mask[1] = torch.tensor(false);
        using torch.Tensor result = CpuTensorKernels.ScaledDotProductAttention(q, k, v, mask, false, null);
        using torch.Tensor reference = torch.nn.functional.scaled_dot_product_attention(q, k, v, mask);
        float[] ours = TestData.ToArray(result), theirs = TestData.ToArray(reference);
        for (int i = 0; i < ours.Length; i++)
        {
            Assert.Equal(float.IsNaN(theirs[i]), float.IsNaN(ours[i]));
            if (i / 8 % 3 == 1)
            {
                Assert.Equal(theirs[i], ours[i]); // the fully masked row: libtorch 2.10 gives 0
            }
        }

        using torch.Tensor k3 = torch.randn(1, 3, 4, 8);
        var e = Assert.Throws<ArgumentException>(() => CpuTensorKernels.ScaledDotProductAttention(q, k3, k3, null, false, null));
        Assert.Equal("key", e.ParamName);
        Assert.Contains("[1, 3, 4, 8]", e.Message);
        Assert.Contains("[1, 2, 3, 8]", e.Message);

        using torch.Tensor badMask = torch.zeros(5, 4);
        e = Assert.Throws<ArgumentException>(() => CpuTensorKernels.ScaledDotProductAttention(q, k, v, badMask, false, null));
        Assert.Equal("attentionMask", e.ParamName);
        Assert.Contains("[5, 4]", e.Message);

        using torch.Tensor halfV = v.to(torch.ScalarType.BFloat16);
        e = Assert.Throws<ArgumentException>(() => CpuTensorKernels.ScaledDotProductAttention(q, k, halfV, null, false, null));
        Assert.Equal("value", e.ParamName);
        Assert.Contains("BFloat16", e.Message);
    }
}
