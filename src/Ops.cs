using GemsInjector.Operators;
using TorchSharp;

namespace GemsInjector;

/// <summary>
/// The operators as host code calls them. Each call goes to the kernel the <see cref="OperatorTable"/> holds now:
/// TorchSharp's by default, GemsInjector's once enabled. A call costs a field read and a delegate call more than
/// calling the kernel itself.
/// </summary>
public static class Ops
{
    /// <summary><c>self + alpha * other</c>, broadcasting (<c>aten::add.Tensor</c>).</summary>
    public static torch.Tensor Add(torch.Tensor self, torch.Tensor other, double alpha = 1) => OperatorTable.Add.Kernel(self, other, alpha);

    /// <summary><c>self - alpha * other</c>, broadcasting (<c>aten::sub.Tensor</c>).</summary>
    public static torch.Tensor Sub(torch.Tensor self, torch.Tensor other, double alpha = 1) => OperatorTable.Sub.Kernel(self, other, alpha);

    /// <summary><c>self * other</c>, broadcasting (<c>aten::mul.Tensor</c>).</summary>
    public static torch.Tensor Mul(torch.Tensor self, torch.Tensor other) => OperatorTable.Mul.Kernel(self, other);

    /// <summary><c>self / other</c>, broadcasting (<c>aten::div.Tensor</c>).</summary>
    public static torch.Tensor Div(torch.Tensor self, torch.Tensor other) => OperatorTable.Div.Kernel(self, other);

    /// <summary><c>-x</c> (<c>aten::neg</c>).</summary>
    public static torch.Tensor Neg(torch.Tensor input) => OperatorTable.Neg.Kernel(input);

    /// <summary><c>e^x</c> (<c>aten::exp</c>).</summary>
    public static torch.Tensor Exp(torch.Tensor input) => OperatorTable.Exp.Kernel(input);

    /// <summary><c>1 / sqrt(x)</c> (<c>aten::rsqrt</c>).</summary>
    public static torch.Tensor Rsqrt(torch.Tensor input) => OperatorTable.Rsqrt.Kernel(input);

    /// <summary><c>max(x, 0)</c> (<c>aten::relu</c>).</summary>
    public static torch.Tensor Relu(torch.Tensor input) => OperatorTable.Relu.Kernel(input);

    /// <summary><c>1 / (1 + e^-x)</c> (<c>aten::sigmoid</c>).</summary>
    public static torch.Tensor Sigmoid(torch.Tensor input) => OperatorTable.Sigmoid.Kernel(input);

    /// <summary><c>tanh(x)</c> (<c>aten::tanh</c>).</summary>
    public static torch.Tensor Tanh(torch.Tensor input) => OperatorTable.Tanh.Kernel(input);

    /// <summary><c>x * sigmoid(x)</c> (<c>aten::silu</c>).</summary>
    public static torch.Tensor Silu(torch.Tensor input) => OperatorTable.Silu.Kernel(input);

    /// <summary>GELU, exact or tanh-approximated (<c>aten::gelu</c>).</summary>
    public static torch.Tensor Gelu(torch.Tensor input, GeluApproximation approximate = GeluApproximation.None) => OperatorTable.Gelu.Kernel(input, approximate);

    /// <summary><c>silu(x[..., :d]) * x[..., d:]</c> for a last dimension of 2d (vLLM <c>_C::silu_and_mul</c>).</summary>
    public static torch.Tensor SiluAndMul(torch.Tensor input) => OperatorTable.SiluAndMul.Kernel(input);

    /// <summary><c>gelu(x[..., :d]) * x[..., d:]</c> for a last dimension of 2d (vLLM <c>_C::gelu_and_mul</c>).</summary>
    public static torch.Tensor GeluAndMul(torch.Tensor input, GeluApproximation approximate = GeluApproximation.None) => OperatorTable.GeluAndMul.Kernel(input, approximate);

    /// <summary>Softmax along <paramref name="dim"/> (<c>aten::_softmax</c>).</summary>
    public static torch.Tensor Softmax(torch.Tensor input, long dim = -1) => OperatorTable.Softmax.Kernel(input, dim);

    /// <summary>Log-softmax along <paramref name="dim"/> (<c>aten::_log_softmax</c>).</summary>
    public static torch.Tensor LogSoftmax(torch.Tensor input, long dim = -1) => OperatorTable.LogSoftmax.Kernel(input, dim);

    /// <summary>RMS normalization over the last dimension, scaled by <paramref name="weight"/> (<c>aten::rms_norm</c>).</summary>
    public static torch.Tensor RmsNorm(torch.Tensor input, torch.Tensor weight, double epsilon = 1e-6) => OperatorTable.RmsNorm.Kernel(input, weight, epsilon);

    /// <summary>In place: <c>residual += input</c>, then <c>input = rms_norm(residual) * weight</c> (vLLM <c>_C::fused_add_rms_norm</c>).</summary>
    public static void FusedAddRmsNorm(torch.Tensor input, torch.Tensor residual, torch.Tensor weight, double epsilon = 1e-6) => OperatorTable.FusedAddRmsNorm.Kernel(input, residual, weight, epsilon);

    /// <summary>Layer normalization over the last dimension (<c>aten::layer_norm</c>).</summary>
    public static torch.Tensor LayerNorm(torch.Tensor input, torch.Tensor? weight, torch.Tensor? bias, double epsilon = 1e-5) => OperatorTable.LayerNorm.Kernel(input, weight, bias, epsilon);

    /// <summary>Rotary position embedding of query and key, in place (vLLM <c>_C::rotary_embedding</c>).</summary>
    public static void RotaryEmbedding(torch.Tensor positions, torch.Tensor query, torch.Tensor? key, long headSize, torch.Tensor cosSinCache, bool isNeox = true) => OperatorTable.RotaryEmbedding.Kernel(positions, query, key, headSize, cosSinCache, isNeox);

    /// <summary>The rows of <paramref name="weight"/> that <paramref name="indices"/> name (<c>aten::embedding</c>).</summary>
    public static torch.Tensor Embedding(torch.Tensor weight, torch.Tensor indices) => OperatorTable.Embedding.Kernel(weight, indices);

    /// <summary>The index of the largest element along <paramref name="dim"/>, or of all (<c>aten::argmax</c>).</summary>
    public static torch.Tensor Argmax(torch.Tensor input, long? dim = null, bool keepdim = false) => OperatorTable.Argmax.Kernel(input, dim, keepdim);

    /// <summary>The sum along <paramref name="dim"/>, or of all (<c>aten::sum</c>).</summary>
    public static torch.Tensor Sum(torch.Tensor input, long? dim = null, bool keepdim = false) => OperatorTable.Sum.Kernel(input, dim, keepdim);

    /// <summary>The mean along <paramref name="dim"/>, or of all (<c>aten::mean</c>).</summary>
    public static torch.Tensor Mean(torch.Tensor input, long? dim = null, bool keepdim = false) => OperatorTable.Mean.Kernel(input, dim, keepdim);

    /// <summary>The largest value along <paramref name="dim"/>, or of all (<c>aten::amax</c>).</summary>
    public static torch.Tensor Amax(torch.Tensor input, long? dim = null, bool keepdim = false) => OperatorTable.Amax.Kernel(input, dim, keepdim);

    /// <summary>The <paramref name="k"/> largest (or smallest) values along <paramref name="dim"/>, sorted, with their indices (<c>aten::topk</c>).</summary>
    public static (torch.Tensor Values, torch.Tensor Indices) TopK(torch.Tensor input, long k, long dim = -1, bool largest = true) => OperatorTable.TopK.Kernel(input, k, dim, largest);

    /// <summary>The matrix product (<c>aten::mm</c>).</summary>
    public static torch.Tensor Mm(torch.Tensor self, torch.Tensor other) => OperatorTable.Mm.Kernel(self, other);

    /// <summary><c>beta * self + alpha * (mat1 @ mat2)</c> (<c>aten::addmm</c>).</summary>
    public static torch.Tensor Addmm(torch.Tensor self, torch.Tensor mat1, torch.Tensor mat2, double beta = 1, double alpha = 1) => OperatorTable.Addmm.Kernel(self, mat1, mat2, beta, alpha);

    /// <summary>The batched matrix product (<c>aten::bmm</c>).</summary>
    public static torch.Tensor Bmm(torch.Tensor self, torch.Tensor other) => OperatorTable.Bmm.Kernel(self, other);

    /// <summary>Scaled dot-product attention over [batch, heads, length, headSize] tensors, grouped-query when key and value have fewer heads (<c>aten::scaled_dot_product_attention</c>).</summary>
    public static torch.Tensor ScaledDotProductAttention(torch.Tensor query, torch.Tensor key, torch.Tensor value, torch.Tensor? attentionMask = null, bool isCausal = false, double? scale = null) => OperatorTable.ScaledDotProductAttention.Kernel(query, key, value, attentionMask, isCausal, scale);
}
