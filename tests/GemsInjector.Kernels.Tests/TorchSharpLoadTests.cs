using System;
using TorchSharp;
using Xunit;

namespace GemsInjector.Kernels.Tests;

/// <summary>
/// TorchSharp's native shim loads in this process. On Debian 12 it does so only because the build step in
/// src/build/GemsInjector.TorchSharpLoadFix.targets marked GLIBCXX_3.4.32 weak in the copied libLibTorchSharp.so.
/// </summary>
public class TorchSharpLoadTests
{
    [Fact]
    public void TorchSharp_loads_and_runs_an_operator()
    {
        int seed = TestData.NewSeed();
        float[] values = TestData.Normal(new Random(seed), 7);
        using torch.Tensor tensor = TestData.Tensor(values, values.Length);
        using torch.Tensor sum = tensor.sum();
        double expected = 0;
        foreach (float v in values)
        {
            expected += v;
        }

        Assert.True(Math.Abs(sum.item<float>() - expected) <= 1e-5, $"seed {seed}: sum {sum.item<float>()} vs {expected}");
        using torch.Tensor ones = torch.ones(2);
        Assert.Equal(2f, ones.sum().item<float>());
    }
}
