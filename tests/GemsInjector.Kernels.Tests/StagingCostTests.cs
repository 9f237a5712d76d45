using GemsInjector.Kernels.Ilgpu;
using GemsInjector.Kernels.Staging;
using Xunit;

namespace GemsInjector.Kernels.Tests;

/// <summary>
/// Which calls on host tensors a GPU takes (<see cref="StagingCost"/>): those whose CPU work outweighs copying their
/// operands over PCIe. The shapes are far from the crossover, so the answers do not hang on the constants' last digit.
/// </summary>
public class StagingCostTests
{
    private const double AvxRate = 60e9;

    private static bool Product(long m, long k, long n, int elementBytes, int threads, IlgpuDeviceKind device = IlgpuDeviceKind.Cuda, OffloadChoice choice = OffloadChoice.Auto) =>
        StagingCost.Stages(device, choice, 2.0 * m * k * n, (double)elementBytes * ((m * k) + (k * n) + (m * n)), AvxRate, threads);

    [Theory]
    [InlineData(1, 4096, 4096, 4)] // a decode GEMV: 67 MB over PCIe for 34 MFLOP
    [InlineData(8, 4096, 11008, 2)]
    [InlineData(1, 256, 256, 4)] // the DistributedInference sample's layers
    [InlineData(16, 256, 1376, 4)]
    public void DecodeSizedProductsStayOnTheCpu(long m, long k, long n, int elementBytes)
    {
        Assert.False(Product(m, k, n, elementBytes, threads: 16));
        Assert.False(Product(m, k, n, elementBytes, threads: 2));
    }

    [Theory]
    [InlineData(2048, 4096, 4096, 4)] // a long prompt's prefill
    [InlineData(1024, 4096, 11008, 2)]
    [InlineData(4096, 1024, 1024, 4)]
    public void PrefillSizedProductsGoToTheGpu(long m, long k, long n, int elementBytes)
    {
        Assert.True(Product(m, k, n, elementBytes, threads: 16));
        Assert.True(Product(m, k, n, elementBytes, threads: 2));
    }

    [Fact]
    public void MoreCpuThreadsKeepMoreRowsOnTheCpu()
    {
        static long FirstStagedRows(int threads)
        {
            for (long m = 1; m <= 1 << 16; m *= 2)
            {
                if (Product(m, 4096, 4096, 4, threads))
                {
                    return m;
                }
            }

            return long.MaxValue;
        }

        long two = FirstStagedRows(2), sixteen = FirstStagedRows(16);
        Assert.InRange(two, 2, 64);
        Assert.InRange(sixteen, 64, 1024);
        Assert.True(sixteen > two, $"2 threads: from {two} rows; 16 threads: from {sixteen}");
    }

    [Fact]
    public void TheSimulatorAndAlwaysTakeEveryCall()
    {
        Assert.True(Product(1, 4096, 4096, 4, 16, IlgpuDeviceKind.CpuSimulator));
        Assert.True(Product(1, 4096, 4096, 4, 16, IlgpuDeviceKind.Cuda, OffloadChoice.Always));
        Assert.False(Product(1, 4096, 4096, 4, 16, IlgpuDeviceKind.OpenCL));
    }

    [Fact]
    public void DecodeAttentionStaysOnTheCpuAndLongPrefillGoesToTheGpu()
    {
        // Run through the current process's thread budget and vector width, as the product calls it.
        Assert.False(StagingCost.StagesAttention(IlgpuDeviceKind.Cuda, 1, 32, 8, 1, 4096, 128, causal: false, maskBytes: 0, elementBytes: 4));
        Assert.True(StagingCost.StagesAttention(IlgpuDeviceKind.Cuda, 1, 32, 8, 4096, 4096, 128, causal: true, maskBytes: 0, elementBytes: 2));
        Assert.True(StagingCost.StagesAttention(IlgpuDeviceKind.CpuSimulator, 1, 32, 8, 1, 4096, 128, causal: false, maskBytes: 0, elementBytes: 4));
    }

    [Theory]
    [InlineData("always", true)]
    [InlineData(" ALWAYS ", true)]
    [InlineData("auto", false)]
    [InlineData(null, false)]
    [InlineData("", false)]
    [InlineData("gpu", false)]
    public void TheSettingReadsAlwaysOrAuto(string? value, bool always) =>
        Assert.Equal(always ? OffloadChoice.Always : OffloadChoice.Auto, StagingCost.ParseChoice(value));
}
