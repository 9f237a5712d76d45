using System;
using System.Linq;
using GemsInjector.Operators;
using TorchSharp;
using Xunit;

namespace GemsInjector.Tests;

/// <summary>
/// The default kernels that are composed from several TorchSharp operators (TorchSharp has no single one), checked
/// against float64 references written here: they are what a host runs without GemsInjector, and the reference the
/// overriding kernels must match.
/// </summary>
public sealed class DefaultKernelTests
{
    private const double Tolerance = 1e-5;
    private readonly Random _random = new(Seed);
    private static readonly int Seed = Environment.TickCount;

    [Fact]
    public void Silu_and_gelu_gates_multiply_the_activated_first_half_by_the_second()
    {
        using var scope = torch.NewDisposeScope();
        var input = RandomTensor(3, 10);
        var x = input.data<float>().ToArray();

        var silu = TorchSharpKernels.SiluAndMul(input);
        var gelu = TorchSharpKernels.GeluAndMul(input, GeluApproximation.Tanh);

        Assert.Equal(new long[] { 3, 5 }, silu.shape);
        for (var r = 0; r < 3; r++)
        {
            for (var c = 0; c < 5; c++)
            {
                double gate = x[r * 10 + c], up = x[r * 10 + 5 + c];
                AssertClose(gate / (1 + Math.Exp(-gate)) * up, silu[r, c].item<float>());
                var tanhGelu = 0.5 * gate * (1 + Math.Tanh(Math.Sqrt(2 / Math.PI) * (gate + 0.044715 * gate * gate * gate)));
                AssertClose(tanhGelu * up, gelu[r, c].item<float>());
            }
        }
    }

    [Fact]
    public void Fused_add_rms_norm_updates_residual_and_input_in_place()
    {
        using var scope = torch.NewDisposeScope();
        var input = RandomTensor(2, 8);
        var residual = RandomTensor(2, 8);
        var weight = RandomTensor(8);
        var x = input.data<float>().ToArray();
        var r = residual.data<float>().ToArray();
        var w = weight.data<float>().ToArray();

        TorchSharpKernels.FusedAddRmsNorm(input, residual, weight, 1e-6);

        for (var row = 0; row < 2; row++)
        {
            var sum = Enumerable.Range(0, 8).Select(c => (double)x[row * 8 + c] + r[row * 8 + c]).ToArray();
            var scale = 1 / Math.Sqrt(sum.Average(v => v * v) + 1e-6);
            for (var c = 0; c < 8; c++)
            {
                AssertClose(sum[c], residual[row, c].item<float>());
                AssertClose(sum[c] * scale * w[c], input[row, c].item<float>());
            }
        }
    }

    [Theory]
    [InlineData(true, 8)]
    [InlineData(false, 8)]
    [InlineData(true, 4)]
    [InlineData(false, 4)]
    public void Rotary_embedding_rotates_query_and_key_pairs_in_place(bool isNeox, int rotaryDim)
    {
        const int tokens = 3, heads = 2, headSize = 8, maxPosition = 5;
        using var scope = torch.NewDisposeScope();
        var query = RandomTensor(tokens, heads * headSize);
        var key = RandomTensor(tokens, heads * headSize);
        var cache = RandomTensor(maxPosition, rotaryDim);
        var positions = torch.tensor(new long[] { 4, 0, 2 });
        var q = query.data<float>().ToArray();
        var k = key.data<float>().ToArray();
        var cs = cache.data<float>().ToArray();

        TorchSharpKernels.RotaryEmbedding(positions, query, key, headSize, cache, isNeox);

        var expectedQuery = Rotate(q, new[] { 4, 0, 2 }, cs, heads, headSize, rotaryDim, isNeox);
        var expectedKey = Rotate(k, new[] { 4, 0, 2 }, cs, heads, headSize, rotaryDim, isNeox);
        AssertAllClose(expectedQuery, query.data<float>().ToArray());
        AssertAllClose(expectedKey, key.data<float>().ToArray());
    }

    [Fact]
    public void Embedding_gathers_rows_in_the_shape_of_the_indices()
    {
        using var scope = torch.NewDisposeScope();
        var weight = RandomTensor(6, 4);
        var indices = torch.tensor(new int[] { 5, 0, 5, 2 }).reshape(2, 2);

        var rows = TorchSharpKernels.Embedding(weight, indices);

        Assert.Equal(new long[] { 2, 2, 4 }, rows.shape);
        Assert.Equal(weight[5].data<float>().ToArray(), rows[0, 0].data<float>().ToArray());
        Assert.Equal(weight[2].data<float>().ToArray(), rows[1, 1].data<float>().ToArray());
    }

    [Fact]
    public void Reductions_over_all_elements_keep_every_dimension_when_asked()
    {
        using var scope = torch.NewDisposeScope();
        var input = RandomTensor(3, 4);
        var x = input.data<float>().ToArray();

        Assert.Equal(new long[] { 1, 1 }, TorchSharpKernels.Sum(input, null, keepdim: true).shape);
        Assert.Empty(TorchSharpKernels.Sum(input, null, keepdim: false).shape);
        AssertClose(x.Sum(v => (double)v), TorchSharpKernels.Sum(input, null, false).item<float>());
        AssertClose(x.Average(v => (double)v), TorchSharpKernels.Mean(input, null, true).reshape(1).item<float>());
        AssertClose(x.Max(), TorchSharpKernels.Amax(input, null, false).item<float>());
        Assert.Equal(Array.IndexOf(x, x.Max()), TorchSharpKernels.Argmax(input, null, false).item<long>());
        Assert.Equal(new long[] { 3, 1 }, TorchSharpKernels.Amax(input, 1, true).shape);
    }

    [Fact]
    public void Addmm_scales_the_product_and_the_broadcast_bias()
    {
        using var scope = torch.NewDisposeScope();
        var bias = RandomTensor(3);
        var a = RandomTensor(2, 4);
        var b = RandomTensor(4, 3);

        var result = TorchSharpKernels.Addmm(bias, a, b, beta: 0.5, alpha: 2);

        for (var i = 0; i < 2; i++)
        {
            for (var j = 0; j < 3; j++)
            {
                var dot = Enumerable.Range(0, 4).Sum(p => (double)a[i, p].item<float>() * b[p, j].item<float>());
                AssertClose(0.5 * bias[j].item<float>() + 2 * dot, result[i, j].item<float>());
            }
        }
    }

    [Theory]
    [InlineData(false, null)]
    [InlineData(true, null)]
    [InlineData(true, 0.3)]
    public void Attention_groups_query_heads_over_shared_key_value_heads(bool isCausal, double? scale)
    {
        const int queryHeads = 4, keyHeads = 2, queryLength = 3, keyLength = 5, headSize = 8;
        using var scope = torch.NewDisposeScope();
        var query = RandomTensor(1, queryHeads, queryLength, headSize);
        var key = RandomTensor(1, keyHeads, keyLength, headSize);
        var value = RandomTensor(1, keyHeads, keyLength, headSize);

        var output = TorchSharpKernels.ScaledDotProductAttention(query, key, value, null, isCausal, scale);

        var factor = scale ?? 1 / Math.Sqrt(headSize);
        for (var h = 0; h < queryHeads; h++)
        {
            var kv = h / (queryHeads / keyHeads);
            for (var i = 0; i < queryLength; i++)
            {
                var visible = isCausal ? Math.Min(i + 1, keyLength) : keyLength;
                var scores = Enumerable.Range(0, visible).Select(j => factor * Enumerable.Range(0, headSize)
                    .Sum(d => (double)query[0, h, i, d].item<float>() * key[0, kv, j, d].item<float>())).ToArray();
                var max = scores.Max();
                var weights = scores.Select(s => Math.Exp(s - max)).ToArray();
                var total = weights.Sum();
                for (var d = 0; d < headSize; d++)
                {
                    var expected = Enumerable.Range(0, visible).Sum(j => weights[j] / total * value[0, kv, j, d].item<float>());
                    AssertClose(expected, output[0, h, i, d].item<float>());
                }
            }
        }
    }

    [Fact]
    public void Attention_refuses_key_heads_that_do_not_divide_the_query_heads()
    {
        using var scope = torch.NewDisposeScope();
        var error = Assert.Throws<ArgumentException>(() => TorchSharpKernels.ScaledDotProductAttention(
            RandomTensor(1, 4, 2, 8), RandomTensor(1, 3, 2, 8), RandomTensor(1, 3, 2, 8), null, false, null));
        Assert.Contains("3 heads", error.Message, StringComparison.Ordinal);
        Assert.Contains("4 heads", error.Message, StringComparison.Ordinal);
    }

    private static double[] Rotate(float[] x, int[] positions, float[] cache, int heads, int headSize, int rotaryDim, bool isNeox)
    {
        var result = x.Select(v => (double)v).ToArray();
        var half = rotaryDim / 2;
        for (var t = 0; t < positions.Length; t++)
        {
            for (var h = 0; h < heads; h++)
            {
                var offset = (t * heads + h) * headSize;
                for (var i = 0; i < half; i++)
                {
                    double cos = cache[positions[t] * rotaryDim + i], sin = cache[positions[t] * rotaryDim + half + i];
                    var (a, b) = isNeox ? (offset + i, offset + half + i) : (offset + 2 * i, offset + 2 * i + 1);
                    result[a] = x[a] * cos - x[b] * sin;
                    result[b] = x[b] * cos + x[a] * sin;
                }
            }
        }

        return result;
    }

    private torch.Tensor RandomTensor(params long[] shape)
    {
        var count = shape.Aggregate(1L, (a, b) => a * b);
        var values = Enumerable.Range(0, (int)count).Select(_ => (float)(_random.NextDouble() * 4 - 2)).ToArray();
        return torch.tensor(values).reshape(shape);
    }

    private static void AssertClose(double expected, double actual)
    {
        Assert.False(double.IsNaN(actual), $"NaN where {expected} was expected (seed {Seed}).");
        Assert.True(Math.Abs(expected - actual) <= Tolerance * (1 + Math.Abs(expected)), $"expected {expected}, got {actual} (seed {Seed}).");
    }

    private static void AssertAllClose(double[] expected, float[] actual)
    {
        Assert.Equal(expected.Length, actual.Length);
        for (var i = 0; i < expected.Length; i++)
        {
            AssertClose(expected[i], actual[i]);
        }
    }
}
