using System;
using System.Linq;
using GemsInjector.Kernels.Cpu;
using TorchSharp;
using Xunit;

namespace GemsInjector.Kernels.Tests;

/// <summary>rotary_embedding in place against a float64 reference composed here (as vLLM's). atol 1e-5 (2 products), rtol per dtype.</summary>
public class RotaryKernelTests
{
    public static TheoryData<bool, long, long, long, bool, torch.ScalarType> Cases()
    {
        var data = new TheoryData<bool, long, long, long, bool, torch.ScalarType>();
        foreach (torch.ScalarType dtype in KernelTestData.FloatTypes)
        {
            foreach (bool neox in new[] { true, false })
            {
                data.Add(neox, 5, 64, 64, false, dtype);
                data.Add(neox, 3, 64, 32, true, dtype);
                data.Add(neox, 1, 128, 96, true, dtype);
            }
        }

        data.Add(true, 300, 64, 64, false, torch.ScalarType.Float32);
        return data;
    }

    private static void Rotate(float[] x, long tokens, long heads, long headSize, float[] cache, long rotaryDim, long[] positions, bool neox, double[] output)
    {
        long half = rotaryDim / 2;
        for (long t = 0; t < tokens; t++)
        {
            for (long h = 0; h < heads; h++)
            {
                long head = (t * heads + h) * headSize;
                for (long j = 0; j < headSize; j++)
                {
                    output[head + j] = x[head + j];
                }

                for (long i = 0; i < half; i++)
                {
                    double cos = cache[positions[t] * rotaryDim + i], sin = cache[positions[t] * rotaryDim + half + i];
                    long a = head + (neox ? i : 2 * i), b = head + (neox ? i + half : 2 * i + 1);
                    output[a] = x[a] * cos - x[b] * sin;
                    output[b] = x[b] * cos + x[a] * sin;
                }
            }
        }
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Rotary_matches_composed_reference(bool neox, long tokens, long headSize, long rotaryDim, bool threeD, torch.ScalarType dtype)
    {
        int seed = TestData.NewSeed();
        var random = new Random(seed);
        const long QueryHeads = 8, KeyHeads = 2, MaxPosition = 4096;
        long[] positions = Enumerable.Range(0, (int)tokens).Select(_ => (long)random.Next((int)MaxPosition)).ToArray();
        var angles = new float[MaxPosition * rotaryDim];
        for (long p = 0; p < MaxPosition; p++)
        {
            for (long i = 0; i < rotaryDim / 2; i++)
            {
                double theta = p * Math.Pow(10000, -2.0 * i / rotaryDim);
                angles[p * rotaryDim + i] = (float)Math.Cos(theta);
                angles[p * rotaryDim + rotaryDim / 2 + i] = (float)Math.Sin(theta);
            }
        }

        using torch.Tensor cache = KernelTestData.Make(angles, new[] { MaxPosition, rotaryDim }, dtype);
        float[] cacheValues = KernelTestData.Values(cache);
        long[] qShape = threeD ? new[] { tokens, QueryHeads, headSize } : new[] { tokens, QueryHeads * headSize };
        long[] kShape = threeD ? new[] { tokens, KeyHeads, headSize } : new[] { tokens, KeyHeads * headSize };
        (torch.Tensor query, float[] q) = KernelTestData.Random(random, dtype, 1, qShape);
        (torch.Tensor key, float[] k) = KernelTestData.Random(random, dtype, 1, kShape);
        using (query)
        using (key)
        using (torch.Tensor pos = torch.tensor(positions, new[] { tokens }).to(threeD ? torch.ScalarType.Int32 : torch.ScalarType.Int64))
        {
            var expectedQ = new double[q.Length];
            var expectedK = new double[k.Length];
            Rotate(q, tokens, QueryHeads, headSize, cacheValues, rotaryDim, positions, neox, expectedQ);
            Rotate(k, tokens, KeyHeads, headSize, cacheValues, rotaryDim, positions, neox, expectedK);
            CpuTensorKernels.RotaryEmbedding(pos, query, key, headSize, cache, neox);
            KernelTestData.AssertClose(expectedQ, query, 1e-5, dtype, seed, $"rotary query neox={neox} rot={rotaryDim}/{headSize}");
            KernelTestData.AssertClose(expectedK, key, 1e-5, dtype, seed, $"rotary key neox={neox} rot={rotaryDim}/{headSize}");

            // Without a key, only the query turns.
            (torch.Tensor query2, float[] q2) = KernelTestData.Random(random, dtype, 1, qShape);
            using (query2)
            {
                Rotate(q2, tokens, QueryHeads, headSize, cacheValues, rotaryDim, positions, neox, expectedQ);
                CpuTensorKernels.RotaryEmbedding(pos, query2, null, headSize, cache, neox);
                KernelTestData.AssertClose(expectedQ, query2, 1e-5, dtype, seed, "rotary query without key");
            }
        }
    }

    [Fact]
    public void Errors_name_the_argument()
    {
        using torch.Tensor cache = torch.ones(16, 8);
        using torch.Tensor pos = torch.tensor(new long[] { 3, 16 });
        using torch.Tensor query = torch.ones(2, 32);
        var e = Assert.Throws<ArgumentException>(() => CpuTensorKernels.RotaryEmbedding(pos, query, null, 16, cache, true));
        Assert.Equal("positions", e.ParamName);
        Assert.Contains("16", e.Message);
        Assert.Contains("[16, 8]", e.Message);

        using torch.Tensor okPos = torch.tensor(new long[] { 3, 5 });
        using torch.Tensor wide = torch.ones(32, 2);
        using torch.Tensor strided = wide.t();
        e = Assert.Throws<ArgumentException>(() => CpuTensorKernels.RotaryEmbedding(okPos, strided, null, 16, cache, true));
        Assert.Equal("query", e.ParamName);
        Assert.Contains("contiguous", e.Message);

        using torch.Tensor badQuery = torch.ones(3, 32);
        e = Assert.Throws<ArgumentException>(() => CpuTensorKernels.RotaryEmbedding(okPos, badQuery, null, 16, cache, true));
        Assert.Equal("query", e.ParamName);
        Assert.Contains("[3, 32]", e.Message);

        using torch.Tensor halfKey = torch.ones(new long[] { 2, 32 }, torch.ScalarType.Float16);
        e = Assert.Throws<ArgumentException>(() => CpuTensorKernels.RotaryEmbedding(okPos, query, halfKey, 16, cache, true));
        Assert.Equal("key", e.ParamName);
        Assert.Contains("Float16", e.Message);

        e = Assert.Throws<ArgumentException>(() => CpuTensorKernels.RotaryEmbedding(okPos, query, null, 4, cache, true));
        Assert.Equal("cosSinCache", e.ParamName);
    }
}
