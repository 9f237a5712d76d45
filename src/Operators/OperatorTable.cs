using System;
using System.Collections.Generic;
using System.Linq;

namespace GemsInjector.Operators;

/// <summary>
/// Every operator GemsInjector knows, with its schema and the kernel that calls go to now. By default each holds
/// TorchSharp's kernel, so a host calling operators through <see cref="Ops"/> works unchanged without GemsInjector;
/// <see cref="Gems.Enable(GemsOptions?)"/> overrides them.
/// </summary>
public static class OperatorTable
{
    /// <summary>The dispatch key of TorchSharp's CPU build, the only one served here, under which its kernels are registered.</summary>
    public const string DefaultDispatchKey = "CPU";

    /// <summary><c>aten::add.Tensor</c>: <c>self + alpha * other</c>, broadcasting.</summary>
    public static readonly Operator<ScaledBinaryKernel> Add = new(OperatorNames.Add, "aten::add.Tensor(Tensor self, Tensor other, *, Scalar alpha=1) -> Tensor", TorchSharpKernels.Add, DefaultDispatchKey);

    /// <summary><c>aten::sub.Tensor</c>: <c>self - alpha * other</c>, broadcasting.</summary>
    public static readonly Operator<ScaledBinaryKernel> Sub = new(OperatorNames.Sub, "aten::sub.Tensor(Tensor self, Tensor other, *, Scalar alpha=1) -> Tensor", TorchSharpKernels.Sub, DefaultDispatchKey);

    /// <summary><c>aten::mul.Tensor</c>: <c>self * other</c>, broadcasting.</summary>
    public static readonly Operator<BinaryKernel> Mul = new(OperatorNames.Mul, "aten::mul.Tensor(Tensor self, Tensor other) -> Tensor", TorchSharpKernels.Mul, DefaultDispatchKey);

    /// <summary><c>aten::div.Tensor</c>: <c>self / other</c>, broadcasting.</summary>
    public static readonly Operator<BinaryKernel> Div = new(OperatorNames.Div, "aten::div.Tensor(Tensor self, Tensor other) -> Tensor", TorchSharpKernels.Div, DefaultDispatchKey);

    /// <summary><c>aten::neg</c>: <c>-x</c>.</summary>
    public static readonly Operator<UnaryKernel> Neg = new(OperatorNames.Neg, "aten::neg(Tensor self) -> Tensor", TorchSharpKernels.Neg, DefaultDispatchKey);

    /// <summary><c>aten::exp</c>: <c>e^x</c>.</summary>
    public static readonly Operator<UnaryKernel> Exp = new(OperatorNames.Exp, "aten::exp(Tensor self) -> Tensor", TorchSharpKernels.Exp, DefaultDispatchKey);

    /// <summary><c>aten::rsqrt</c>: <c>1 / sqrt(x)</c>.</summary>
    public static readonly Operator<UnaryKernel> Rsqrt = new(OperatorNames.Rsqrt, "aten::rsqrt(Tensor self) -> Tensor", TorchSharpKernels.Rsqrt, DefaultDispatchKey);

    /// <summary><c>aten::relu</c>: <c>max(x, 0)</c>.</summary>
    public static readonly Operator<UnaryKernel> Relu = new(OperatorNames.Relu, "aten::relu(Tensor self) -> Tensor", TorchSharpKernels.Relu, DefaultDispatchKey);

    /// <summary><c>aten::sigmoid</c>: <c>1 / (1 + e^-x)</c>.</summary>
    public static readonly Operator<UnaryKernel> Sigmoid = new(OperatorNames.Sigmoid, "aten::sigmoid(Tensor self) -> Tensor", TorchSharpKernels.Sigmoid, DefaultDispatchKey);

    /// <summary><c>aten::tanh</c>: <c>tanh(x)</c>.</summary>
    public static readonly Operator<UnaryKernel> Tanh = new(OperatorNames.Tanh, "aten::tanh(Tensor self) -> Tensor", TorchSharpKernels.Tanh, DefaultDispatchKey);

    /// <summary><c>aten::silu</c>: <c>x * sigmoid(x)</c>.</summary>
    public static readonly Operator<UnaryKernel> Silu = new(OperatorNames.Silu, "aten::silu(Tensor self) -> Tensor", TorchSharpKernels.Silu, DefaultDispatchKey);

    /// <summary><c>aten::gelu</c>: GELU, exact (erf) or tanh-approximated.</summary>
    public static readonly Operator<GeluKernel> Gelu = new(OperatorNames.Gelu, "aten::gelu(Tensor self, *, str approximate='none') -> Tensor", TorchSharpKernels.Gelu, DefaultDispatchKey);

    /// <summary><c>_C::silu_and_mul</c>: vLLM's fused gate: <c>silu(x[..., :d]) * x[..., d:]</c> for an input of last dimension 2d.</summary>
    public static readonly Operator<UnaryKernel> SiluAndMul = new(OperatorNames.SiluAndMul, "_C::silu_and_mul(Tensor! result, Tensor input) -> ()", TorchSharpKernels.SiluAndMul, DefaultDispatchKey);

    /// <summary><c>_C::gelu_and_mul</c>: vLLM's fused gate: <c>gelu(x[..., :d]) * x[..., d:]</c> (gelu_tanh_and_mul with the tanh approximation).</summary>
    public static readonly Operator<GeluKernel> GeluAndMul = new(OperatorNames.GeluAndMul, "_C::gelu_and_mul(Tensor! out, Tensor input) -> ()", TorchSharpKernels.GeluAndMul, DefaultDispatchKey);

    /// <summary><c>aten::_softmax</c>: Softmax along one dimension.</summary>
    public static readonly Operator<DimensionKernel> Softmax = new(OperatorNames.Softmax, "aten::_softmax(Tensor self, int dim, bool half_to_float) -> Tensor", TorchSharpKernels.Softmax, DefaultDispatchKey);

    /// <summary><c>aten::_log_softmax</c>: Log-softmax along one dimension.</summary>
    public static readonly Operator<DimensionKernel> LogSoftmax = new(OperatorNames.LogSoftmax, "aten::_log_softmax(Tensor self, int dim, bool half_to_float) -> Tensor", TorchSharpKernels.LogSoftmax, DefaultDispatchKey);

    /// <summary><c>aten::rms_norm</c>: RMS normalization over the last dimension: <c>x / sqrt(mean(x²) + eps) * weight</c>.</summary>
    public static readonly Operator<WeightedNormKernel> RmsNorm = new(OperatorNames.RmsNorm, "aten::rms_norm(Tensor input, SymInt[] normalized_shape, Tensor? weight=None, float? eps=None) -> Tensor", TorchSharpKernels.RmsNorm, DefaultDispatchKey);

    /// <summary><c>_C::fused_add_rms_norm</c>: vLLM's residual add and RMS normalization, in place.</summary>
    public static readonly Operator<FusedAddNormKernel> FusedAddRmsNorm = new(OperatorNames.FusedAddRmsNorm, "_C::fused_add_rms_norm(Tensor! input, Tensor! residual, Tensor weight, float epsilon) -> ()", TorchSharpKernels.FusedAddRmsNorm, DefaultDispatchKey);

    /// <summary><c>aten::layer_norm</c>: Layer normalization over the last dimension.</summary>
    public static readonly Operator<LayerNormKernel> LayerNorm = new(OperatorNames.LayerNorm, "aten::layer_norm(Tensor input, SymInt[] normalized_shape, Tensor? weight=None, Tensor? bias=None, float eps=1e-05, bool cudnn_enable=True) -> Tensor", TorchSharpKernels.LayerNorm, DefaultDispatchKey);

    /// <summary><c>_C::rotary_embedding</c>: vLLM's rotary position embedding, neox or interleaved style, in place.</summary>
    public static readonly Operator<RotaryKernel> RotaryEmbedding = new(OperatorNames.RotaryEmbedding, "_C::rotary_embedding(Tensor positions, Tensor! query, Tensor!? key, int head_size, Tensor cos_sin_cache, bool is_neox) -> ()", TorchSharpKernels.RotaryEmbedding, DefaultDispatchKey);

    /// <summary><c>aten::embedding</c>: The rows of a table picked by indices.</summary>
    public static readonly Operator<EmbeddingKernel> Embedding = new(OperatorNames.Embedding, "aten::embedding(Tensor weight, Tensor indices, SymInt padding_idx=-1, bool scale_grad_by_freq=False, bool sparse=False) -> Tensor", TorchSharpKernels.Embedding, DefaultDispatchKey);

    /// <summary><c>aten::argmax</c>: The index of the largest element along a dimension, or of all.</summary>
    public static readonly Operator<ReductionKernel> Argmax = new(OperatorNames.Argmax, "aten::argmax(Tensor self, int? dim=None, bool keepdim=False) -> Tensor", TorchSharpKernels.Argmax, DefaultDispatchKey);

    /// <summary><c>aten::sum.dim_IntList</c>: The sum along a dimension, or of all.</summary>
    public static readonly Operator<ReductionKernel> Sum = new(OperatorNames.Sum, "aten::sum.dim_IntList(Tensor self, int[1]? dim, bool keepdim=False, *, ScalarType? dtype=None) -> Tensor", TorchSharpKernels.Sum, DefaultDispatchKey);

    /// <summary><c>aten::mean.dim</c>: The mean along a dimension, or of all.</summary>
    public static readonly Operator<ReductionKernel> Mean = new(OperatorNames.Mean, "aten::mean.dim(Tensor self, int[1]? dim, bool keepdim=False, *, ScalarType? dtype=None) -> Tensor", TorchSharpKernels.Mean, DefaultDispatchKey);

    /// <summary><c>aten::amax</c>: The largest value along a dimension, or of all.</summary>
    public static readonly Operator<ReductionKernel> Amax = new(OperatorNames.Amax, "aten::amax(Tensor self, int[1] dim=[], bool keepdim=False) -> Tensor", TorchSharpKernels.Amax, DefaultDispatchKey);

    /// <summary><c>aten::topk</c>: The k largest (or smallest) values along a dimension, sorted, with their indices.</summary>
    public static readonly Operator<TopKKernel> TopK = new(OperatorNames.TopK, "aten::topk(Tensor self, SymInt k, int dim=-1, bool largest=True, bool sorted=True) -> (Tensor values, Tensor indices)", TorchSharpKernels.TopK, DefaultDispatchKey);

    /// <summary><c>aten::mm</c>: The matrix product of two matrices.</summary>
    public static readonly Operator<BinaryKernel> Mm = new(OperatorNames.Mm, "aten::mm(Tensor self, Tensor mat2) -> Tensor", TorchSharpKernels.Mm, DefaultDispatchKey);

    /// <summary><c>aten::addmm</c>: <c>beta * self + alpha * (mat1 @ mat2)</c>.</summary>
    public static readonly Operator<AddmmKernel> Addmm = new(OperatorNames.Addmm, "aten::addmm(Tensor self, Tensor mat1, Tensor mat2, *, Scalar beta=1, Scalar alpha=1) -> Tensor", TorchSharpKernels.Addmm, DefaultDispatchKey);

    /// <summary><c>aten::bmm</c>: The batched matrix product.</summary>
    public static readonly Operator<BinaryKernel> Bmm = new(OperatorNames.Bmm, "aten::bmm(Tensor self, Tensor mat2) -> Tensor", TorchSharpKernels.Bmm, DefaultDispatchKey);

    /// <summary><c>aten::scaled_dot_product_attention</c>: Scaled dot-product attention, causal or not, grouped-query, with an optional mask.</summary>
    public static readonly Operator<AttentionKernel> ScaledDotProductAttention = new(OperatorNames.ScaledDotProductAttention, "aten::scaled_dot_product_attention(Tensor query, Tensor key, Tensor value, Tensor? attn_mask=None, float dropout_p=0.0, bool is_causal=False, *, float? scale=None, bool enable_gqa=False) -> Tensor", TorchSharpKernels.ScaledDotProductAttention, DefaultDispatchKey);

    private static readonly Operator[] Operators = [Add, Sub, Mul, Div, Neg, Exp, Rsqrt, Relu, Sigmoid, Tanh, Silu, Gelu, SiluAndMul, GeluAndMul, Softmax, LogSoftmax, RmsNorm, FusedAddRmsNorm, LayerNorm, RotaryEmbedding, Embedding, Argmax, Sum, Mean, Amax, TopK, Mm, Addmm, Bmm, ScaledDotProductAttention];

    private static readonly Dictionary<string, Operator> ByName = Operators.ToDictionary(op => op.Name, StringComparer.Ordinal);

    /// <summary>All operators, in a fixed order.</summary>
    public static IReadOnlyList<Operator> All => Operators;

    /// <summary>The operator called <paramref name="name"/>, or <see langword="null"/>.</summary>
    public static Operator? Find(string name) => ByName.GetValueOrDefault(name);

    /// <summary>The operator names, sorted.</summary>
    public static IReadOnlyList<string> Names { get; } = Operators.Select(op => op.Name).Order(StringComparer.Ordinal).ToArray();

    internal static KernelRegistration[] Snapshot() => Array.ConvertAll(Operators, op => op.Current);

    internal static void Restore(KernelRegistration[] snapshot)
    {
        for (var i = 0; i < Operators.Length; i++)
        {
            Operators[i].Register(snapshot[i]);
        }
    }
}
