using System;
using System.Linq;
using GemsInjector.Kernels.Cpu;
using TorchSharp;
using Xunit;

namespace GemsInjector.Kernels.Tests;

/// <summary>sum / mean / amax / argmax / topk / embedding against float64 references and TorchSharp. atol = 1e-4 * reduced length.</summary>
public class ReductionKernelTests
{
    public static TheoryData<long[], long?, bool, torch.ScalarType> Cases()
    {
        var data = new TheoryData<long[], long?, bool, torch.ScalarType>();
        foreach (torch.ScalarType dtype in KernelTestData.FloatTypes)
        {
            data.Add(new long[] { 4097 }, null, false, dtype);
            data.Add(new long[] { 3, 17 }, 1, false, dtype);
            data.Add(new long[] { 3, 17 }, 0, true, dtype);
            data.Add(new long[] { 2, 5, 7 }, -2, false, dtype);
            data.Add(new long[] { 1, 4096 }, -1, true, dtype);
            data.Add(new long[] { 2, 3, 4 }, null, true, dtype);
        }

        data.Add(new long[] { 512, 1024 }, null, false, torch.ScalarType.Float32);
        data.Add(new long[] { 300, 1031 }, 0, false, torch.ScalarType.Float32);
        data.Add(new long[] { 300, 1031 }, 1, false, torch.ScalarType.Float32);
        data.Add(new long[] { 0, 5 }, 1, false, torch.ScalarType.Float32);
        return data;
    }

    private static (long Outer, long Length, long Inner) Layout(long[] shape, long? dim)
    {
        if (dim is null)
        {
            return (1, KernelTestData.Count(shape), 1);
        }

        int d = (int)(dim < 0 ? dim + shape.Length : dim);
        return (KernelTestData.Count(shape[..d]), shape[d], KernelTestData.Count(shape[(d + 1)..]));
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Reductions_match_reference_and_torch(long[] shape, long? dim, bool keepdim, torch.ScalarType dtype)
    {
        int seed = TestData.NewSeed();
        (torch.Tensor input, float[] x) = KernelTestData.Random(new Random(seed), dtype, 2, shape);
        using (input)
        {
            (long outer, long length, long inner) = Layout(shape, dim);
            var sum = new double[outer * inner];
            var max = new double[outer * inner];
            var arg = new long[outer * inner];
            for (long o = 0; o < outer; o++)
            {
                for (long i = 0; i < inner; i++)
                {
                    double s = 0, m = double.NegativeInfinity;
                    long best = 0;
                    for (long l = 0; l < length; l++)
                    {
                        double v = x[(o * length + l) * inner + i];
                        s += v;
                        if (v > m)
                        {
                            m = v;
                            best = l;
                        }
                    }

                    sum[o * inner + i] = s;
                    max[o * inner + i] = m;
                    arg[o * inner + i] = best;
                }
            }

            double atol = TestData.ReductionAtol(Math.Max(1, length));
            long[] dims = dim is null ? Enumerable.Range(0, shape.Length).Select(i => (long)i).ToArray() : new[] { dim.Value };
            using torch.Tensor torchSum = input.sum(dims, keepdim);
            KernelTestData.PoisonHeap(outer * inner, dtype);
            using torch.Tensor ourSum = CpuTensorKernels.Sum(input, dim, keepdim);
            Assert.Equal(torchSum.shape, ourSum.shape);
            KernelTestData.AssertClose(sum, ourSum, atol, dtype, seed, "sum vs float64");
            KernelTestData.AssertClose(torchSum, ourSum, atol, dtype, seed, "sum vs torch");

            using torch.Tensor ourMean = CpuTensorKernels.Mean(input, dim, keepdim);
            Assert.Equal(torchSum.shape, ourMean.shape);
            KernelTestData.AssertClose(sum.Select(s => s / length).ToArray(), ourMean, 1e-4, dtype, seed, "mean vs float64");

            if (length == 0)
            {
                Assert.Throws<ArgumentException>(() => CpuTensorKernels.Amax(input, dim, keepdim));
                return;
            }

            using torch.Tensor ourMax = CpuTensorKernels.Amax(input, dim, keepdim);
            Assert.Equal(torchSum.shape, ourMax.shape);
            KernelTestData.AssertClose(max, ourMax, 0, dtype, seed, "amax vs float64");
            using torch.Tensor torchMax = input.amax(dims, keepdim);
            KernelTestData.AssertClose(torchMax, ourMax, 0, dtype, seed, "amax vs torch");

            using torch.Tensor ourArg = CpuTensorKernels.Argmax(input, dim, keepdim);
            Assert.Equal(torch.ScalarType.Int64, ourArg.dtype);
            Assert.Equal(torchSum.shape, ourArg.shape);
            Assert.Equal(arg, ourArg.data<long>().ToArray());
            if (dtype == torch.ScalarType.Float32)
            {
                using torch.Tensor torchArg = dim is null ? input.argmax() : input.argmax(dim.Value, keepdim);
                Assert.Equal(torchArg.data<long>().ToArray(), ourArg.data<long>().ToArray());
            }
        }
    }

    [Fact]
    public void NaN_is_the_maximum_and_ties_pick_the_first()
    {
        float[] x = { 1, 5, 5, float.NaN, 7, float.NaN, 2, 2, 2, 1 };
        using torch.Tensor input = TestData.Tensor(x, 2, 5);
        using torch.Tensor arg = CpuTensorKernels.Argmax(input, 1, false);
        using torch.Tensor torchArg = input.argmax(1, false);
        Assert.Equal(new long[] { 3, 0 }, arg.data<long>().ToArray());
        Assert.Equal(torchArg.data<long>().ToArray(), arg.data<long>().ToArray());
        using torch.Tensor max = CpuTensorKernels.Amax(input, 1, false);
        float[] m = TestData.ToArray(max);
        Assert.True(float.IsNaN(m[0]));
        Assert.True(float.IsNaN(m[1]));
        using torch.Tensor all = CpuTensorKernels.Argmax(input, null, false);
        Assert.Equal(3L, all.item<long>());
        using torch.Tensor sum = CpuTensorKernels.Sum(input, 1, false);
        Assert.True(float.IsNaN(TestData.ToArray(sum)[0]));
        using torch.Tensor transposed = input.t();
        using torch.Tensor colMax = CpuTensorKernels.Amax(transposed, 0, false);
        using torch.Tensor torchColMax = transposed.amax(new long[] { 0 });
        Assert.Equal(TestData.ToArray(torchColMax).Select(v => float.IsNaN(v)), TestData.ToArray(colMax).Select(v => float.IsNaN(v)));
    }

    public static TheoryData<long[], long, long, bool, torch.ScalarType> TopKCases()
    {
        var data = new TheoryData<long[], long, long, bool, torch.ScalarType>();
        foreach (torch.ScalarType dtype in KernelTestData.FloatTypes)
        {
            data.Add(new long[] { 4097 }, 5, 0, true, dtype);
            data.Add(new long[] { 3, 17 }, 17, -1, false, dtype);
            data.Add(new long[] { 6, 40 }, 5, 0, true, dtype);
            data.Add(new long[] { 2, 3, 50 }, 1, 2, false, dtype);
        }

        data.Add(new long[] { 64, 1000 }, 50, 1, true, torch.ScalarType.Float32);
        data.Add(new long[] { 4, 9 }, 0, 1, true, torch.ScalarType.Float32);
        return data;
    }

    [Theory]
    [MemberData(nameof(TopKCases))]
    public void TopK_matches_torch(long[] shape, long k, long dim, bool largest, torch.ScalarType dtype)
    {
        int seed = TestData.NewSeed();
        (torch.Tensor input, float[] x) = KernelTestData.Random(new Random(seed), dtype, 3, shape);
        using (input)
        {
            (torch.Tensor values, torch.Tensor indices) = CpuTensorKernels.TopK(input, k, dim, largest);
            (torch.Tensor torchValues, torch.Tensor torchIndices) = input.topk((int)k, (int)dim, largest, sorted: true);
            using (values)
            using (indices)
            using (torchValues)
            using (torchIndices)
            {
                Assert.Equal(torchValues.shape, values.shape);
                Assert.Equal(torch.ScalarType.Int64, indices.dtype);
                Assert.Equal(dtype, values.dtype);
                // Values equal exactly; indices may differ only between equal values: check the value each index names.
                Assert.Equal(KernelTestData.Values(torchValues), KernelTestData.Values(values));
                if (k > 0)
                {
                    using torch.Tensor gathered = input.gather(dim, indices);
                    Assert.Equal(KernelTestData.Values(values), KernelTestData.Values(gathered));
                }
                if (k > 0)
                {
                    // Tied values may come in either order (random inputs tie now and then), but no index twice.
                    using torch.Tensor rows = indices.movedim(new[] { dim }, new[] { -1L }).reshape(-1, k);
                    long[] flat = rows.data<long>().ToArray();
                    for (int row = 0; row < flat.Length / k; row++)
                    {
                        var slice = flat.AsSpan(row * (int)k, (int)k).ToArray();
                        Assert.True(slice.Distinct().Count() == slice.Length, $"row {row} repeats an index: {string.Join(", ", slice)} (seed {seed})");
                    }
                }
            }
        }
    }

    [Fact]
    public void TopK_puts_NaN_first_and_rejects_k_beyond_the_dimension()
    {
        using torch.Tensor input = TestData.Tensor(new float[] { 1, float.NaN, 3, -2 }, 4);
        (torch.Tensor values, torch.Tensor indices) = CpuTensorKernels.TopK(input, 2, 0, true);
        Assert.True(float.IsNaN(TestData.ToArray(values)[0]));
        Assert.Equal(new long[] { 1, 2 }, indices.data<long>().ToArray());
        (values, indices) = CpuTensorKernels.TopK(input, 2, 0, false);
        Assert.Equal(new long[] { 3, 0 }, indices.data<long>().ToArray());
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => CpuTensorKernels.TopK(input, 5, 0, true));
        Assert.Equal("k", e.ParamName);
        Assert.Contains("[4]", e.Message);
        Assert.Contains("5", e.Message);
        Assert.Throws<ArgumentOutOfRangeException>(() => CpuTensorKernels.Sum(input, 1, false));
    }

    [Theory]
    [InlineData(torch.ScalarType.Float32, torch.ScalarType.Int64)]
    [InlineData(torch.ScalarType.Float16, torch.ScalarType.Int32)]
    [InlineData(torch.ScalarType.BFloat16, torch.ScalarType.Int64)]
    public void Embedding_matches_torch_and_rejects_out_of_range(torch.ScalarType dtype, torch.ScalarType indexType)
    {
        int seed = TestData.NewSeed();
        var random = new Random(seed);
        (torch.Tensor weight, float[] w) = KernelTestData.Random(random, dtype, 1, 37, 24);
        long[] ids = Enumerable.Range(0, 2 * 3 * 5).Select(_ => (long)random.Next(37)).ToArray();
        using (weight)
        using (torch.Tensor idsTensor = torch.tensor(ids, new long[] { 2, 3, 5 }).to(indexType))
        using (torch.Tensor weightT = weight.t().contiguous())
        using (torch.Tensor weightView = weightT.t())
        {
            var expected = ids.SelectMany(r => w.Skip((int)r * 24).Take(24).Select(v => (double)v)).ToArray();
            foreach (torch.Tensor table in new[] { weight, weightView })
            {
                KernelTestData.PoisonHeap(ids.Length * 24, dtype);
                using torch.Tensor result = CpuTensorKernels.Embedding(table, idsTensor);
                Assert.Equal(new long[] { 2, 3, 5, 24 }, result.shape);
                KernelTestData.AssertClose(expected, result, 0, dtype, seed, "embedding vs reference");
                // TorchSharp has no functional embedding: index_select rows, then reshape.
                using torch.Tensor flat = idsTensor.to(torch.ScalarType.Int64).flatten();
                using torch.Tensor rows = table.index_select(0, flat);
                using torch.Tensor reference = rows.reshape(2, 3, 5, 24);
                KernelTestData.AssertClose(reference, result, 0, dtype, seed, "embedding vs torch");
            }

            using torch.Tensor bad = torch.tensor(new long[] { 3, 37 }).to(indexType);
            var e = Assert.Throws<ArgumentException>(() => CpuTensorKernels.Embedding(weight, bad));
            Assert.Equal("indices", e.ParamName);
            Assert.Contains("37", e.Message);
            Assert.Contains("37 rows", e.Message);
            using torch.Tensor negative = torch.tensor(new long[] { -1 }).to(indexType);
            e = Assert.Throws<ArgumentException>(() => CpuTensorKernels.Embedding(weight, negative));
            Assert.Contains("-1", e.Message);
            using torch.Tensor floats = torch.ones(3);
            e = Assert.Throws<ArgumentException>(() => CpuTensorKernels.Embedding(weight, floats));
            Assert.Equal("indices", e.ParamName);
        }
    }
}
