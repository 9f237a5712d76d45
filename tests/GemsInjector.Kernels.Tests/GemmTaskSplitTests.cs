using System;
using GemsInjector.Kernels.Cpu;
using GemsInjector.Kernels.Numerics;
using Xunit;

namespace GemsInjector.Kernels.Tests;

/// <summary>
/// How the CPU GEMM cuts C into tasks for a thread budget (<see cref="Gemm.Split"/>): enough tasks for every thread where
/// the shape allows it, and the same bits in C whatever the cut.
/// </summary>
public unsafe class GemmTaskSplitTests
{
    [Theory]
    [InlineData(64, 4096, 1, 16, 16)] // a 4096-column weight: 8 tasks of 512 columns before the cut
    [InlineData(1024, 1024, 1, 16, 16)]
    [InlineData(256, 256, 1, 16, 16)]
    [InlineData(16, 256, 1, 16, 16)] // rows cut to 8, then the columns
    [InlineData(8, 32, 1, 16, 1)] // nothing left to cut: one register tile
    [InlineData(2048, 4096, 1, 16, 16)] // enough tasks already
    [InlineData(64, 4096, 1, 2, 8)]
    [InlineData(100, 100, 3, 16, 16)]
    public void EveryThreadGetsATaskWhereTheShapeAllows(long m, long n, long batch, int threads, long expectedAtLeast)
    {
        foreach (int nr in new[] { 16, 32 })
        {
            var (rows, columns) = Gemm.Split(m, n, batch, threads, nr);
            long tasks = batch * ((m + rows - 1) / rows) * ((n + columns - 1) / columns);
            Assert.True(tasks >= Math.Min(expectedAtLeast, threads), $"{m} x {n} x {batch} on {threads} threads, nr {nr}: {tasks} tasks of {rows} x {columns}");
            Assert.Equal(0, rows % Gemm.MR);
            Assert.Equal(0, columns % nr);
            Assert.InRange(rows, Gemm.MR, 1024);
            Assert.InRange(columns, nr, Gemm.NC);
        }
    }

    [Theory]
    [InlineData(64, 300, 1000)]
    [InlineData(37, 129, 515)]
    [InlineData(300, 70, 96)]
    [InlineData(9, 1030, 300)]
    public void TheCutDoesNotChangeTheResult(int m, int k, int n)
    {
        var random = new Random(m * 7919 + k * 31 + n);
        float[] a = new float[m * k], b = new float[k * n];
        for (int i = 0; i < a.Length; i++)
        {
            a[i] = (float)(random.NextDouble() * 2 - 1);
        }

        for (int i = 0; i < b.Length; i++)
        {
            b[i] = (float)(random.NextDouble() * 2 - 1);
        }

        float[] single = Multiply(a, b, m, k, n, threadBudget: 1);
        for (int i = 0; i < m; i++)
        {
            for (int j = 0; j < n; j++)
            {
                double want = 0;
                for (int p = 0; p < k; p++)
                {
                    want += (double)a[i * k + p] * b[p * n + j];
                }

                Assert.True(Math.Abs(single[i * n + j] - want) <= 1e-5 * k, $"C[{i}, {j}] = {single[i * n + j]}, float64 {want}");
            }
        }

        foreach (int threads in new[] { 2, 3, 16, 64 })
        {
            float[] cut = Multiply(a, b, m, k, n, threads);
            for (int i = 0; i < cut.Length; i++)
            {
                Assert.True(BitConverter.SingleToInt32Bits(single[i]) == BitConverter.SingleToInt32Bits(cut[i]),
                    $"{threads} threads: C[{i / n}, {i % n}] = {cut[i]}, one thread {single[i]}");
            }
        }
    }

    private static float[] Multiply(float[] a, float[] b, int m, int k, int n, int threadBudget)
    {
        float[] c = new float[m * n];
        Array.Fill(c, float.NaN);
        fixed (float* pa = a, pb = b, pc = c)
        {
            var problem = new GemmProblem
            {
                A = pa, RowStrideA = k, ColStrideA = 1, BatchStrideA = (long)m * k,
                B = pb, RowStrideB = n, ColStrideB = 1, BatchStrideB = (long)k * n,
                C = pc, BatchStrideC = (long)m * n, M = m, N = n, K = k, Batch = 1, Alpha = 1f,
            };
            Gemm.Run<Float32Lanes>(problem, threadBudget);
        }

        return c;
    }
}
