using GemsInjector.Kernels.Cpu;
using Xunit;

namespace GemsInjector.Kernels.Tests;

/// <summary>The per-process CPU thread budget: GEMS_CPU_THREADS, else processors / LOCAL_WORLD_SIZE, else processors.</summary>
public class CpuThreadBudgetTests
{
    [Theory]
    [InlineData(null, null, 8, 8)]
    [InlineData("", "", 8, 8)]
    [InlineData("   ", null, 8, 8)]
    [InlineData(null, "2", 8, 4)]
    [InlineData(null, "3", 8, 2)] // rounds down: never more threads than the machine's share
    [InlineData(null, "2", 2, 1)]
    [InlineData(null, "4", 2, 1)] // more workers than processors: still one thread each
    [InlineData(null, "1", 16, 16)]
    [InlineData("1", null, 16, 1)]
    [InlineData("3", "2", 16, 3)] // the explicit budget wins over the share
    [InlineData(" 6 ", null, 2, 6)] // surrounding spaces are tolerated; more than the processors is the user's choice
    [InlineData(null, null, 0, 1)] // a processor count below one still gives one thread
    public void ValidSettingsGiveTheirBudgetWithoutProblem(string? threads, string? localWorldSize, int processors, int expected)
    {
        CpuThreadSetting setting = CpuThreadBudget.Resolve(threads, localWorldSize, processors);

        Assert.Equal(expected, setting.Threads);
        Assert.Null(setting.Problem);
    }

    [Theory]
    [InlineData("0", null, 8, 8, "GEMS_CPU_THREADS='0'")]
    [InlineData("-2", null, 8, 8, "GEMS_CPU_THREADS='-2'")]
    [InlineData("two", null, 8, 8, "GEMS_CPU_THREADS='two'")]
    [InlineData("1.5", null, 8, 8, "GEMS_CPU_THREADS='1.5'")]
    [InlineData("99999999999", null, 8, 8, "GEMS_CPU_THREADS='99999999999'")]
    [InlineData("0", "2", 8, 4, "GEMS_CPU_THREADS='0'")] // falls through to the share of LOCAL_WORLD_SIZE
    [InlineData(null, "0", 8, 8, "LOCAL_WORLD_SIZE='0'")]
    [InlineData(null, "x", 8, 8, "LOCAL_WORLD_SIZE='x'")]
    [InlineData("abc", "-1", 8, 8, "LOCAL_WORLD_SIZE='-1'")]
    public void InvalidSettingsAreIgnoredAndReported(string? threads, string? localWorldSize, int processors, int expected, string named)
    {
        CpuThreadSetting setting = CpuThreadBudget.Resolve(threads, localWorldSize, processors);

        Assert.Equal(expected, setting.Threads);
        Assert.NotNull(setting.Problem);
        Assert.Contains(named, setting.Problem);
        Assert.Contains("not a positive integer", setting.Problem);
    }

    [Fact]
    public void BothInvalidSettingsAreReported()
    {
        CpuThreadSetting setting = CpuThreadBudget.Resolve("abc", "-1", 4);

        Assert.Contains("GEMS_CPU_THREADS='abc'", setting.Problem);
        Assert.Contains("LOCAL_WORLD_SIZE='-1'", setting.Problem);
    }

    [Theory]
    [InlineData("2", null, 8, "GEMS_CPU_THREADS=2")]
    [InlineData(null, "2", 8, "ProcessorCount 8 / LOCAL_WORLD_SIZE 2")]
    [InlineData(null, null, 8, "ProcessorCount 8")]
    public void SourceNamesTheRuleThatDecided(string? threads, string? localWorldSize, int processors, string expected) =>
        Assert.Equal(expected, CpuThreadBudget.Resolve(threads, localWorldSize, processors).Source);

    [Fact]
    public void TheProcessBudgetIsTheResolutionOfItsEnvironment()
    {
        CpuThreadSetting expected = CpuThreadBudget.Resolve(
            System.Environment.GetEnvironmentVariable(CpuThreadBudget.ThreadsVariable),
            System.Environment.GetEnvironmentVariable(CpuThreadBudget.LocalWorldSizeVariable),
            System.Environment.ProcessorCount);

        Assert.Equal(expected.Source, CpuThreadBudget.Source);
        Assert.Equal(expected.Threads, CpuThreadBudget.MaxThreads);
        Assert.Equal(expected.Problem, CpuThreadBudget.Problem);
        Assert.Equal(expected.Source, CpuThreadBudget.Source);
    }
}
