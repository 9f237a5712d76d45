using System;
using TorchSharp;
using TorchSharp.Modules;

namespace GemsInjector.Operators;

/// <summary>
/// The host's default kernels: TorchSharp's own operators, composed from several where TorchSharp has no single one
/// (rms_norm, the fused vLLM operators, rotary embedding, grouped-query attention with a scale). libtorch's native
/// library loads only when one of them is first called.
/// <para>
/// Every <see cref="Scalar"/> passed to TorchSharp here is a local that lives past the call. TorchSharp reads a Scalar's
/// native handle and then calls libtorch without keeping the Scalar reachable, so an implicit temporary (the alpha of
/// <c>a + b</c>, the 2.0 of <c>t * 2.0</c>) can be finalized by a collection on another thread while libtorch still
/// reads it. The same holds for tensors: those made here live in the dispose scopes below until the result leaves.
/// </para>
/// </summary>
internal static class TorchSharpKernels
{
    public static torch.Tensor Add(torch.Tensor self, torch.Tensor other, double alpha)
    {
        using Scalar scale = alpha.ToScalar();
        return self.add(other, scale);
    }

    public static torch.Tensor Sub(torch.Tensor self, torch.Tensor other, double alpha) => Add(self, other, -alpha);

    public static torch.Tensor Mul(torch.Tensor self, torch.Tensor other) => self.mul(other);

    public static torch.Tensor Div(torch.Tensor self, torch.Tensor other) => self.div(other);

    public static torch.Tensor Neg(torch.Tensor input) => input.neg();

    public static torch.Tensor Exp(torch.Tensor input) => input.exp();

    public static torch.Tensor Rsqrt(torch.Tensor input) => input.rsqrt();

    public static torch.Tensor Relu(torch.Tensor input) => input.relu();

    public static torch.Tensor Sigmoid(torch.Tensor input) => input.sigmoid();

    public static torch.Tensor Tanh(torch.Tensor input) => input.tanh();

    public static torch.Tensor Silu(torch.Tensor input) => torch.nn.functional.silu(input);

    public static torch.Tensor Gelu(torch.Tensor input, GeluApproximation approximate) =>
        torch.nn.functional.gelu(input, approximate == GeluApproximation.Tanh ? GELU.Approximate.tanh : GELU.Approximate.none);

    public static torch.Tensor SiluAndMul(torch.Tensor input)
    {
        using var scope = torch.NewDisposeScope();
        var (gate, up) = HalvesOfLastDimension(input);
        return (torch.nn.functional.silu(gate) * up).MoveToOuterDisposeScope();
    }

    public static torch.Tensor GeluAndMul(torch.Tensor input, GeluApproximation approximate)
    {
        using var scope = torch.NewDisposeScope();
        var (gate, up) = HalvesOfLastDimension(input);
        return (Gelu(gate, approximate) * up).MoveToOuterDisposeScope();
    }

    public static torch.Tensor Softmax(torch.Tensor input, long dim) => input.softmax(dim);

    public static torch.Tensor LogSoftmax(torch.Tensor input, long dim) => input.log_softmax(dim);

    public static torch.Tensor RmsNorm(torch.Tensor input, torch.Tensor weight, double epsilon)
    {
        using var scope = torch.NewDisposeScope();
        using Scalar eps = epsilon.ToScalar(), one = 1.ToScalar();
        var meanSquare = input.square().mean([-1L], keepdim: true);
        var normalized = input * torch.rsqrt(meanSquare.add(eps, one)) * weight;
        return normalized.MoveToOuterDisposeScope();
    }

    public static void FusedAddRmsNorm(torch.Tensor input, torch.Tensor residual, torch.Tensor weight, double epsilon)
    {
        using var scope = torch.NewDisposeScope();
        using Scalar one = 1.ToScalar();
        residual.add_(input, one);
        input.copy_(RmsNorm(residual, weight, epsilon));
    }

    public static torch.Tensor LayerNorm(torch.Tensor input, torch.Tensor? weight, torch.Tensor? bias, double epsilon) =>
        torch.nn.functional.layer_norm(input, [input.shape[^1]], weight, bias, epsilon);

    public static void RotaryEmbedding(torch.Tensor positions, torch.Tensor query, torch.Tensor? key, long headSize, torch.Tensor cosSinCache, bool isNeox)
    {
        using var scope = torch.NewDisposeScope();
        var rotaryDim = cosSinCache.shape[^1];
        var cosSin = cosSinCache.index_select(0, positions.flatten().to(torch.int64));
        var cos = cosSin.narrow(-1, 0, rotaryDim / 2).unsqueeze(1);
        var sin = cosSin.narrow(-1, rotaryDim / 2, rotaryDim / 2).unsqueeze(1);
        Rotate(query, headSize, rotaryDim, cos, sin, isNeox);
        if (key is not null)
        {
            Rotate(key, headSize, rotaryDim, cos, sin, isNeox);
        }
    }

    public static torch.Tensor Embedding(torch.Tensor weight, torch.Tensor indices)
    {
        using var scope = torch.NewDisposeScope();
        var rows = weight.index_select(0, indices.flatten().to(torch.int64));
        return rows.reshape([.. indices.shape, weight.shape[^1]]).MoveToOuterDisposeScope();
    }

    public static torch.Tensor Argmax(torch.Tensor input, long? dim, bool keepdim) =>
        dim is { } d ? input.argmax(d, keepdim) : KeepAllDimensions(input.argmax(), input, keepdim);

    public static torch.Tensor Sum(torch.Tensor input, long? dim, bool keepdim) =>
        dim is { } d ? input.sum(d, keepdim) : KeepAllDimensions(input.sum(), input, keepdim);

    public static torch.Tensor Mean(torch.Tensor input, long? dim, bool keepdim) =>
        dim is { } d ? input.mean([d], keepdim) : KeepAllDimensions(input.mean(), input, keepdim);

    public static torch.Tensor Amax(torch.Tensor input, long? dim, bool keepdim) =>
        dim is { } d ? input.amax([d], keepdim) : KeepAllDimensions(input.amax(AllDimensions(input)), input, keepdim);

    public static (torch.Tensor Values, torch.Tensor Indices) TopK(torch.Tensor input, long k, long dim, bool largest) =>
        input.topk(checked((int)k), checked((int)dim), largest, sorted: true);

    public static torch.Tensor Mm(torch.Tensor self, torch.Tensor other) => self.mm(other);

    public static torch.Tensor Bmm(torch.Tensor self, torch.Tensor other) => self.bmm(other);

    public static torch.Tensor Addmm(torch.Tensor self, torch.Tensor mat1, torch.Tensor mat2, double beta, double alpha) =>
        torch.addmm(self, mat1, mat2, (float)beta, (float)alpha);

    public static torch.Tensor ScaledDotProductAttention(torch.Tensor query, torch.Tensor key, torch.Tensor value, torch.Tensor? attentionMask, bool isCausal, double? scale)
    {
        using var scope = torch.NewDisposeScope();
        var queryHeads = query.shape[^3];
        var keyHeads = key.shape[^3];
        if (queryHeads != keyHeads)
        {
            if (keyHeads == 0 || queryHeads % keyHeads != 0)
            {
                throw new ArgumentException($"scaled_dot_product_attention: 'key' has {keyHeads} heads, which do not divide the {queryHeads} heads of 'query'.", nameof(key));
            }

            key = key.repeat_interleave(queryHeads / keyHeads, dim: -3);
            value = value.repeat_interleave(queryHeads / keyHeads, dim: -3);
        }

        // TorchSharp's attention takes no scale: it always divides by √headSize, so the query carries the rest.
        if (scale is { } s)
        {
            using Scalar factor = (s * Math.Sqrt(query.shape[^1])).ToScalar();
            query = query.mul(factor);
        }

        return torch.nn.functional.scaled_dot_product_attention(query, key, value, attentionMask, 0, isCausal).MoveToOuterDisposeScope();
    }

    private static (torch.Tensor Gate, torch.Tensor Up) HalvesOfLastDimension(torch.Tensor input)
    {
        var half = input.shape[^1] / 2;
        return (input.narrow(-1, 0, half), input.narrow(-1, half, half));
    }

    private static void Rotate(torch.Tensor x, long headSize, long rotaryDim, torch.Tensor cos, torch.Tensor sin, bool isNeox)
    {
        var heads = x.reshape(x.shape[0], -1, headSize);
        var rotated = heads.narrow(-1, 0, rotaryDim);
        var (first, second) = isNeox
            ? (rotated.narrow(-1, 0, rotaryDim / 2), rotated.narrow(-1, rotaryDim / 2, rotaryDim / 2))
            : (rotated.slice(-1, 0, rotaryDim, 2), rotated.slice(-1, 1, rotaryDim, 2));
        using Scalar one = 1.ToScalar();
        var newFirst = (first * cos).sub(second * sin);
        var newSecond = (second * cos).add(first * sin, one);
        first.copy_(newFirst);
        second.copy_(newSecond);
    }

    private static long[] AllDimensions(torch.Tensor input)
    {
        var dims = new long[input.dim()];
        for (var i = 0; i < dims.Length; i++)
        {
            dims[i] = i;
        }

        return dims;
    }

    private static torch.Tensor KeepAllDimensions(torch.Tensor reduced, torch.Tensor input, bool keepdim)
    {
        if (!keepdim)
        {
            return reduced;
        }

        var shape = new long[input.dim()];
        Array.Fill(shape, 1L);
        return reduced.reshape(shape);
    }
}
