using System;
using System.Linq;
using GemsInjector.Kernels.Ilgpu;
using ILGPU;
using ILGPU.Runtime;
using Xunit;

namespace GemsInjector.Kernels.Ilgpu.Tests;

/// <summary>
/// What the float32 GEMV test classes share: the float64 reference of C = alpha · A · B + beta · bias for either weight
/// layout, an output poisoned with NaN and followed by sentinels no kernel may touch, and running a body under another
/// <c>GEMS_GEMV_F32_VARIANT</c> setting of the shared facade.
/// </summary>
public abstract class GemvF32TestBase : KernelTestBase
{
    /// <summary>The value written past every output; a kernel that changes it wrote out of bounds.</summary>
    protected const float Sentinel = 12345.5f;

    protected GemvF32TestBase(SimulatorFixture fixture)
        : base(fixture)
    {
    }

    /// <summary>
    /// float64 C = alpha · A[M, K] · B + beta · bias, B [N, K] when <paramref name="transposeB"/> (the weight of linear /
    /// mm_tb), else [K, N]; the bias (row or matrix) is ignored when beta is 0, as the kernels do.
    /// </summary>
    protected static double[] Reference(float[] a, float[] b, int m, int k, int n, float alpha, float beta, float[]? bias, bool biasIsMatrix, bool transposeB = true) =>
        Enumerable.Range(0, m * n).Select(e =>
        {
            int r = e / n, j = e % n;
            double dot = 0;
            for (int t = 0; t < k; t++)
            {
                dot += (double)a[(r * k) + t] * b[transposeB ? (j * k) + t : (t * n) + j];
            }

            double v = alpha * dot;
            return bias is null || beta == 0f ? v : v + (beta * (double)bias[biasIsMatrix ? e : j]);
        }).ToArray();

    /// <summary>An output of <paramref name="count"/> NaNs followed by 64 sentinels that no kernel may touch.</summary>
    protected (ArrayView<float> Output, ArrayView<float> Whole) PoisonedWithSentinel(int count)
    {
        var whole = Upload(Enumerable.Repeat(float.NaN, count).Concat(Enumerable.Repeat(Sentinel, 64)).ToArray());
        return (whole.SubView(0, count), whole);
    }

    /// <summary>Asserts that every element of <paramref name="got"/> from <paramref name="from"/> on is still the sentinel.</summary>
    protected static void AssertSentinel(float[] got, int from)
    {
        for (int e = from; e < got.Length; e++)
        {
            Assert.True(got[e] == Sentinel, $"element {e} past the output was written: {got[e]}");
        }
    }

    /// <summary>
    /// Runs a float32 GEMV kernel of the (A, W, bias, C, shape) form on <paramref name="acc"/> (the warp-32 simulator: CUDA's
    /// lane layout) with C poisoned and followed by sentinels; returns C and the sentinels.
    /// </summary>
    private protected static float[] RunOn(Accelerator acc, Action<KernelConfig, ArrayView<Float4>, ArrayView<Float4>, ArrayView<float>, ArrayView<float>, GemvShape> kernel,
        KernelConfig config, GemvShape g, float[] a, float[] w, float[] bias)
    {
        using var aBuffer = acc.Allocate1D(a);
        using var wBuffer = acc.Allocate1D(w);
        using var biasBuffer = acc.Allocate1D(bias);
        using var cBuffer = acc.Allocate1D(Enumerable.Repeat(float.NaN, g.M * g.N).Concat(Enumerable.Repeat(Sentinel, 64)).ToArray());
        kernel(config, aBuffer.View.AsContiguous().Cast<Float4>(), wBuffer.View.AsContiguous().Cast<Float4>(), biasBuffer.View.AsContiguous(),
            cBuffer.View.AsContiguous().SubView(0, g.M * g.N), g);
        acc.Synchronize();
        return cBuffer.GetAsArray1D();
    }

    /// <summary>Runs <paramref name="body"/> with the shared facade set to <paramref name="variant"/>, then restores it.</summary>
    private protected void WithVariant(GemvF32Variant variant, Action body)
    {
        var before = K.GemvF32Kernel;
        K.GemvF32Kernel = variant;
        try
        {
            body();
        }
        finally
        {
            K.GemvF32Kernel = before;
        }
    }
}
