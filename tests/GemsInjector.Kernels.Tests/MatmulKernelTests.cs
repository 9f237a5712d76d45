using System;
using GemsInjector.Kernels.Cpu;
using GemsInjector.TestSupport;
using TorchSharp;
using Xunit;

namespace GemsInjector.Kernels.Tests;

/// <summary>mm / bmm / addmm against float64 references and torch.mm / bmm / addmm. atol = 1e-4 * k, rtol per dtype.</summary>
public class MatmulKernelTests
{
    public static TheoryData<long, long, long, torch.ScalarType> MmCases()
    {
        var data = new TheoryData<long, long, long, torch.ScalarType>();
        long[][] shapes =
        {
            new long[] { 1, 1, 1 }, new long[] { 3, 17, 5 }, new long[] { 1, 4097, 3 }, new long[] { 1, 300, 1100 },
            new long[] { 4, 64, 100 }, new long[] { 2, 96, 80 }, new long[] { 64, 96, 80 }, new long[] { 17, 33, 65 },
            new long[] { 9, 300, 47 }, new long[] { 0, 5, 3 }, new long[] { 3, 0, 4 }, new long[] { 5, 7, 0 },
        };
        foreach (torch.ScalarType dtype in KernelTestData.FloatTypes)
        {
            foreach (long[] s in shapes)
            {
                data.Add(s[0], s[1], s[2], dtype);
            }
        }

        data.Add(256, 512, 384, torch.ScalarType.Float32);
        data.Add(130, 260, 100, torch.ScalarType.BFloat16);
        // Decode GEMV paths of float32: 64-column register tiles, then 16-column tiles, then single columns; an odd K;
        // 3 rows (a 4-row tile whose last row is not stored); and a B above the tile limit (streamed, split over threads).
        data.Add(1, 256, 100, torch.ScalarType.Float32);
        data.Add(1, 33, 64, torch.ScalarType.Float32);
        data.Add(3, 50, 150, torch.ScalarType.Float32);
        data.Add(1, 700, 400, torch.ScalarType.Float32);
        return data;
    }

    private static double[] Product(float[] a, float[] b, long m, long k, long n)
    {
        var c = new double[m * n];
        for (long i = 0; i < m; i++)
        {
            for (long p = 0; p < k; p++)
            {
                double x = a[i * k + p];
                for (long j = 0; j < n; j++)
                {
                    c[i * n + j] += x * b[p * n + j];
                }
            }
        }

        return c;
    }

    private static double Atol(long k) => TestData.ReductionAtol(Math.Max(k, 1));

    [Theory]
    [MemberData(nameof(MmCases))]
    public void Mm_matches_reference_and_torch_in_all_layouts(long m, long k, long n, torch.ScalarType dtype)
    {
        int seed = TestData.NewSeed();
        var random = new Random(seed);
        (torch.Tensor self, float[] a) = KernelTestData.Random(random, dtype, 1, m, k);
        (torch.Tensor other, float[] b) = KernelTestData.Random(random, dtype, 1, k, n);
        using (self)
        using (other)
        using (torch.Tensor selfT = self.t().contiguous())   // [k, m] storage
        using (torch.Tensor otherT = other.t().contiguous()) // [n, k] storage: the nn.Linear weight
        using (torch.Tensor selfView = selfT.t())
        using (torch.Tensor otherView = otherT.t())
        {
            double[] expected = Product(a, b, m, k, n);
            using torch.Tensor reference = torch.mm(self, other);
            foreach ((torch.Tensor x, torch.Tensor y, string layout) in new[]
            {
                (self, other, "contiguous"), (self, otherView, "transposed weight"), (selfView, other, "transposed self"), (selfView, otherView, "both transposed"),
            })
            {
                KernelTestData.PoisonHeap(m * n, dtype);
                using torch.Tensor result = CpuTensorKernels.Mm(x, y);
                Assert.Equal(new[] { m, n }, result.shape);
                KernelTestData.AssertClose(expected, result, Atol(k), dtype, seed, $"mm {m}x{k}x{n} {layout} vs float64");
                KernelTestData.AssertClose(reference, result, Atol(k), dtype, seed, $"mm {m}x{k}x{n} {layout} vs torch.mm");
            }
        }
    }

    [Theory]
    [InlineData(3L, 5L, 17L, 9L, torch.ScalarType.Float32)]
    [InlineData(8L, 1L, 64L, 33L, torch.ScalarType.Float32)]
    [InlineData(2L, 40L, 24L, 70L, torch.ScalarType.Float32)]
    [InlineData(3L, 1L, 48L, 130L, torch.ScalarType.Float32)] // GEMV register tiles per batch
    [InlineData(3L, 5L, 17L, 9L, torch.ScalarType.Float16)]
    [InlineData(2L, 40L, 24L, 70L, torch.ScalarType.BFloat16)]
    [InlineData(0L, 4L, 4L, 4L, torch.ScalarType.Float32)]
    public void Bmm_matches_reference_and_torch(long batch, long m, long k, long n, torch.ScalarType dtype)
    {
        int seed = TestData.NewSeed();
        var random = new Random(seed);
        (torch.Tensor self, float[] a) = KernelTestData.Random(random, dtype, 1, batch, m, k);
        (torch.Tensor other, float[] b) = KernelTestData.Random(random, dtype, 1, batch, k, n);
        using (self)
        using (other)
        using (torch.Tensor otherT = other.transpose(1, 2).contiguous())
        using (torch.Tensor otherView = otherT.transpose(1, 2))
        {
            var expected = new double[batch * m * n];
            for (long i = 0; i < batch; i++)
            {
                double[] part = Product(a[(int)(i * m * k)..(int)((i + 1) * m * k)], b[(int)(i * k * n)..(int)((i + 1) * k * n)], m, k, n);
                Array.Copy(part, 0, expected, i * m * n, part.Length);
            }

            using torch.Tensor reference = torch.bmm(self, other);
            foreach ((torch.Tensor y, string layout) in new[] { (other, "contiguous"), (otherView, "transposed") })
            {
                KernelTestData.PoisonHeap(batch * m * n, dtype);
                using torch.Tensor result = CpuTensorKernels.Bmm(self, y);
                Assert.Equal(new[] { batch, m, n }, result.shape);
                KernelTestData.AssertClose(expected, result, Atol(k), dtype, seed, $"bmm {batch}x{m}x{k}x{n} {layout} vs float64");
                KernelTestData.AssertClose(reference, result, Atol(k), dtype, seed, $"bmm {layout} vs torch.bmm");
            }
        }
    }

    public static TheoryData<long[], long, long, long, double, double, torch.ScalarType> AddmmCases()
    {
        var data = new TheoryData<long[], long, long, long, double, double, torch.ScalarType>();
        foreach (torch.ScalarType dtype in KernelTestData.FloatTypes)
        {
            data.Add(new long[] { 80 }, 64, 96, 80, 1.0, 1.0, dtype);
            data.Add(new long[] { 1, 5 }, 1, 33, 5, 0.5, -2.0, dtype);
            data.Add(new long[] { 17, 1 }, 17, 20, 9, -1.5, 0.25, dtype);
            data.Add(new long[] { 3, 70 }, 3, 40, 70, 2.0, 1.0, dtype);
            data.Add(Array.Empty<long>(), 12, 10, 40, 1.0, 3.0, dtype);
        }

        data.Add(new long[] { 384 }, 256, 512, 384, 1.0, 1.0, torch.ScalarType.Float32);
        data.Add(new long[] { 100 }, 1, 64, 100, 0.5, 2.0, torch.ScalarType.Float32); // GEMV tiles adding to a scaled bias
        data.Add(new long[] { 2, 100 }, 2, 30, 100, 1.0, -1.0, torch.ScalarType.Float32);
        data.Add(new long[] { 4, 6 }, 4, 0, 6, 0.5, 1.0, torch.ScalarType.Float32);
        return data;
    }

    [Theory]
    [MemberData(nameof(AddmmCases))]
    public void Addmm_matches_reference_and_torch(long[] selfShape, long m, long k, long n, double beta, double alpha, torch.ScalarType dtype)
    {
        int seed = TestData.NewSeed();
        var random = new Random(seed);
        (torch.Tensor bias, float[] c) = KernelTestData.Random(random, dtype, 1, selfShape);
        (torch.Tensor mat1, float[] a) = KernelTestData.Random(random, dtype, 1, m, k);
        (torch.Tensor mat2, float[] b) = KernelTestData.Random(random, dtype, 1, k, n);
        using (bias)
        using (mat1)
        using (mat2)
        using (torch.Tensor weight = mat2.t().contiguous())
        using (torch.Tensor weightView = weight.t())
        {
            double[] product = Product(a, b, m, k, n);
            float[] wideBias = Reference.Broadcast(c, selfShape, new[] { m, n });
            var expected = new double[m * n];
            for (int i = 0; i < expected.Length; i++)
            {
                expected[i] = (double)(float)beta * wideBias[i] + (double)(float)alpha * product[i];
            }

            using torch.Tensor reference = torch.addmm(bias, mat1, mat2, (float)beta, (float)alpha);
            double atol = Atol(k) * Math.Max(1, Math.Abs(alpha)) + 1e-6;
            foreach ((torch.Tensor y, string layout) in new[] { (mat2, "contiguous"), (weightView, "transposed weight") })
            {
                KernelTestData.PoisonHeap(m * n, dtype);
                using torch.Tensor result = CpuTensorKernels.Addmm(bias, mat1, y, beta, alpha);
                Assert.Equal(new[] { m, n }, result.shape);
                KernelTestData.AssertClose(expected, result, atol, dtype, seed, $"addmm {layout} vs float64");
                KernelTestData.AssertClose(reference, result, atol, dtype, seed, $"addmm {layout} vs torch.addmm");
            }
        }
    }

    [Theory]
    [InlineData(2L)]
    [InlineData(20L)]
    public void NaN_and_Inf_propagate_like_torch(long m)
    {
        int seed = TestData.NewSeed();
        var random = new Random(seed);
        float[] a = TestData.Normal(random, m * 37);
        float[] b = TestData.Normal(random, 37 * 41);
        a[5] = float.NaN;                  // row 0
        b[3 * 41 + 7] = float.PositiveInfinity; // column 7
        using torch.Tensor self = TestData.Tensor(a, m, 37);
        using torch.Tensor other = TestData.Tensor(b, 37, 41);
        using torch.Tensor expected = torch.mm(self, other);
        using torch.Tensor actual = CpuTensorKernels.Mm(self, other);
        float[] values = TestData.ToArray(actual);
        Assert.True(float.IsNaN(values[0]) && float.IsNaN(values[40]), $"seed {seed}: row 0 must be NaN");
        TestData.AssertClose(TestData.ToArray(expected), values, TestData.ReductionAtol(37), TestData.Float32Rtol, seed, "mm specials vs torch");

        // beta = 0 ignores self, NaN included (PyTorch's documented rule).
        using torch.Tensor nanBias = torch.full(new long[] { m, 41 }, HeldScalars.Of(double.NaN));
        using torch.Tensor finite = TestData.Tensor(TestData.Normal(random, 37 * 41), 37, 41);
        using torch.Tensor finiteSelf = self.nan_to_num();
        using torch.Tensor ignored = CpuTensorKernels.Addmm(nanBias, finiteSelf, finite, 0.0, 1.0);
        Assert.DoesNotContain(TestData.ToArray(ignored), float.IsNaN);
    }

    [Fact]
    public void Errors_name_the_arguments_and_shapes()
    {
        using torch.Tensor a = torch.ones(3, 4);
        using torch.Tensor b = torch.ones(5, 6);
        var e = Assert.Throws<ArgumentException>(() => CpuTensorKernels.Mm(a, b));
        Assert.Equal("other", e.ParamName);
        Assert.Contains("[3, 4]", e.Message);
        Assert.Contains("[5, 6]", e.Message);

        using torch.Tensor half = torch.ones(new long[] { 4, 6 }, torch.ScalarType.Float16);
        e = Assert.Throws<ArgumentException>(() => CpuTensorKernels.Mm(a, half));
        Assert.Equal("other", e.ParamName);
        Assert.Contains("Float16", e.Message);
        Assert.Contains("Float32", e.Message);
        Assert.Contains("'self'", e.Message);

        using torch.Tensor cube = torch.ones(2, 3, 4);
        e = Assert.Throws<ArgumentException>(() => CpuTensorKernels.Mm(cube, b));
        Assert.Equal("self", e.ParamName);
        Assert.Contains("[2, 3, 4]", e.Message);

        using torch.Tensor cube2 = torch.ones(3, 4, 5);
        e = Assert.Throws<ArgumentException>(() => CpuTensorKernels.Bmm(cube, cube2));
        Assert.Equal("other", e.ParamName);
        Assert.Contains("[2, 3, 4]", e.Message);
        Assert.Contains("[3, 4, 5]", e.Message);

        using torch.Tensor w = torch.ones(4, 6);
        using torch.Tensor badBias = torch.ones(2, 6);
        e = Assert.Throws<ArgumentException>(() => CpuTensorKernels.Addmm(badBias, a, w, 1, 1));
        Assert.Equal("self", e.ParamName);
        Assert.Contains("[2, 6]", e.Message);
        Assert.Contains("[3, 6]", e.Message);

        using torch.Tensor ints = torch.ones(new long[] { 3, 4 }, torch.ScalarType.Int32);
        e = Assert.Throws<ArgumentException>(() => CpuTensorKernels.Mm(ints, w));
        Assert.Equal("self", e.ParamName);
        Assert.Contains("Int32", e.Message);
        Assert.Throws<ArgumentNullException>(() => CpuTensorKernels.Mm(a, null!));
    }
}
