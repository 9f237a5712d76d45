using System;
using GemsInjector;
using TorchSharp;

namespace GemsLlm;

/// <summary>
/// RMSNorm: <c>x * rsqrt(mean(x²) + ε) * weight</c>. Unpatched, its forward is composed from element-wise operators
/// (five operator calls); the patch <c>RMSNorm.forward</c> makes it call the fused <c>rms_norm</c> operator.
/// </summary>
public sealed class RmsNorm(torch.Tensor weight, double epsilon)
{
    private static Func<torch.Tensor, torch.Tensor, double, torch.Tensor> _forward = Composed;

    /// <summary>Whether the class's forward is patched to the fused operator.</summary>
    public static bool IsPatched => _forward == (Func<torch.Tensor, torch.Tensor, double, torch.Tensor>)Fused;

    /// <summary>Normalizes the last dimension of <paramref name="x"/>.</summary>
    public torch.Tensor Forward(torch.Tensor x) => _forward(x, weight, epsilon);

    internal static GemsPatch Patch() => new("RMSNorm", "forward", GemsInjector.Operators.OperatorNames.RmsNorm, () => _forward = Fused, () => _forward = Composed);

    internal static torch.Tensor Composed(torch.Tensor x, torch.Tensor weight, double epsilon)
    {
        using var eps = torch.tensor((float)epsilon);
        var meanSquare = Ops.Mean(Ops.Mul(x, x), -1, keepdim: true);
        var inverse = Ops.Rsqrt(Ops.Add(meanSquare, eps));
        return Ops.Mul(Ops.Mul(x, inverse), weight);
    }

    private static torch.Tensor Fused(torch.Tensor x, torch.Tensor weight, double epsilon) => Ops.RmsNorm(x, weight, epsilon);
}

/// <summary>
/// Neox-style rotary position embedding with a cos/sin cache of [maxPositions, headDim] (cos in the first half of a
/// row, sin in the second), as vLLM keeps it. Unpatched, its forward gathers the rows and rotates with element-wise
/// operators into new tensors; the patch <c>RotaryEmbedding.forward</c> makes it call the fused in-place
/// <c>rotary_embedding</c> operator.
/// </summary>
public sealed class RotaryEmbedding
{
    private delegate (torch.Tensor Query, torch.Tensor Key) ForwardImpl(torch.Tensor positions, torch.Tensor query, torch.Tensor key, long headSize, torch.Tensor cosSinCache);

    private static ForwardImpl _forward = Composed;
    private readonly long _headSize;

    /// <summary>Builds the cache for positions 0..maxPositions-1.</summary>
    public RotaryEmbedding(long headSize, int maxPositions, double theta)
    {
        _headSize = headSize;
        var half = headSize / 2;
        var cache = new float[maxPositions * headSize];
        for (var position = 0; position < maxPositions; position++)
        {
            for (var i = 0; i < half; i++)
            {
                var angle = position / Math.Pow(theta, 2.0 * i / headSize);
                cache[position * headSize + i] = (float)Math.Cos(angle);
                cache[position * headSize + half + i] = (float)Math.Sin(angle);
            }
        }

        CosSinCache = torch.tensor(cache, [maxPositions, headSize]).DetachFromDisposeScope();
    }

    /// <summary>The cos/sin cache, [maxPositions, headSize].</summary>
    public torch.Tensor CosSinCache { get; }

    /// <summary>Whether the class's forward is patched to the fused operator.</summary>
    public static bool IsPatched => _forward == (ForwardImpl)Fused;

    /// <summary>Rotates <paramref name="query"/> [tokens, heads*headSize] and <paramref name="key"/> [tokens, kvHeads*headSize] by <paramref name="positions"/> [tokens] (int64).</summary>
    public (torch.Tensor Query, torch.Tensor Key) Forward(torch.Tensor positions, torch.Tensor query, torch.Tensor key) => _forward(positions, query, key, _headSize, CosSinCache);

    internal static GemsPatch Patch() => new("RotaryEmbedding", "forward", GemsInjector.Operators.OperatorNames.RotaryEmbedding, () => _forward = Fused, () => _forward = Composed);

    private static (torch.Tensor, torch.Tensor) Composed(torch.Tensor positions, torch.Tensor query, torch.Tensor key, long headSize, torch.Tensor cosSinCache)
    {
        var half = headSize / 2;
        var cosSin = Ops.Embedding(cosSinCache, positions);
        var cos = cosSin.narrow(-1, 0, half).contiguous().unsqueeze(1);
        var sin = cosSin.narrow(-1, half, half).contiguous().unsqueeze(1);
        return (Rotate(query, headSize, cos, sin), Rotate(key, headSize, cos, sin));
    }

    private static torch.Tensor Rotate(torch.Tensor x, long headSize, torch.Tensor cos, torch.Tensor sin)
    {
        var half = headSize / 2;
        var heads = x.view(x.shape[0], -1, headSize);
        var first = heads.narrow(-1, 0, half).contiguous();
        var second = heads.narrow(-1, half, half).contiguous();
        var newFirst = Ops.Sub(Ops.Mul(first, cos), Ops.Mul(second, sin));
        var newSecond = Ops.Add(Ops.Mul(second, cos), Ops.Mul(first, sin));
        return torch.cat([newFirst, newSecond], -1).view(x.shape[0], -1);
    }

    private static (torch.Tensor, torch.Tensor) Fused(torch.Tensor positions, torch.Tensor query, torch.Tensor key, long headSize, torch.Tensor cosSinCache)
    {
        Ops.RotaryEmbedding(positions, query, key, headSize, cosSinCache, isNeox: true);
        return (query, key);
    }
}

/// <summary>
/// SwiGLU's gate, <c>silu(x[..., :d]) * x[..., d:]</c> on the merged gate/up projection. Unpatched it is
/// <c>silu</c> then <c>mul</c>; the patch <c>SiluAndMul.forward</c> makes it call the fused <c>silu_and_mul</c> operator.
/// </summary>
public static class SiluAndMul
{
    private static Func<torch.Tensor, torch.Tensor> _forward = Composed;

    /// <summary>Whether the forward is patched to the fused operator.</summary>
    public static bool IsPatched => _forward == (Func<torch.Tensor, torch.Tensor>)Fused;

    /// <summary>Gates the second half of the last dimension of <paramref name="x"/> with the SiLU of the first.</summary>
    public static torch.Tensor Forward(torch.Tensor x) => _forward(x);

    internal static GemsPatch Patch() => new("SiluAndMul", "forward", GemsInjector.Operators.OperatorNames.SiluAndMul, () => _forward = Fused, () => _forward = Composed);

    private static torch.Tensor Composed(torch.Tensor x)
    {
        var half = x.shape[^1] / 2;
        var gate = x.narrow(-1, 0, half).contiguous();
        var up = x.narrow(-1, half, half).contiguous();
        return Ops.Mul(Ops.Silu(gate), up);
    }

    private static torch.Tensor Fused(torch.Tensor x) => Ops.SiluAndMul(x);
}

/// <summary>Registers the sample model's patches with GemsInjector, once per process (FlagGems' <c>apply_gems_patches_to_vllm</c>).</summary>
public static class LlmPatches
{
    private static readonly object Sync = new();
    private static bool _registered;

    /// <summary>The patch lines <see cref="Gems.ApplyPatches(bool)"/> prints for this model.</summary>
    public static readonly string[] Lines =
    [
        "Patched RMSNorm.forward with GEMS rms_norm",
        "Patched RotaryEmbedding.forward with GEMS rotary_embedding",
        "Patched SiluAndMul.forward with GEMS silu_and_mul",
    ];

    /// <summary>Registers the RMSNorm, RotaryEmbedding and SiluAndMul patches unless already registered.</summary>
    public static void EnsureRegistered()
    {
        lock (Sync)
        {
            if (_registered)
            {
                return;
            }

            Gems.RegisterPatch(RmsNorm.Patch());
            Gems.RegisterPatch(RotaryEmbedding.Patch());
            Gems.RegisterPatch(SiluAndMul.Patch());
            _registered = true;
        }
    }

    /// <summary>Whether all three patches are applied now.</summary>
    public static bool AllApplied => RmsNorm.IsPatched && RotaryEmbedding.IsPatched && SiluAndMul.IsPatched;
}
