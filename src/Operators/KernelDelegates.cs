using TorchSharp;

namespace GemsInjector.Operators;

/// <summary>A kernel of one tensor: <c>neg</c>, <c>exp</c>, <c>silu</c>, <c>silu_and_mul</c>, ...</summary>
public delegate torch.Tensor UnaryKernel(torch.Tensor input);

/// <summary>A kernel of two tensors: <c>mul</c>, <c>div</c> (broadcasting), <c>mm</c>, <c>bmm</c>.</summary>
public delegate torch.Tensor BinaryKernel(torch.Tensor self, torch.Tensor other);

/// <summary>A kernel of two tensors that broadcast, the second scaled: <c>add</c>, <c>sub</c> (<c>self ± alpha * other</c>).</summary>
public delegate torch.Tensor ScaledBinaryKernel(torch.Tensor self, torch.Tensor other, double alpha);

/// <summary>GELU, alone (<c>gelu</c>) or gating the second half of the last dimension (<c>gelu_and_mul</c>).</summary>
public delegate torch.Tensor GeluKernel(torch.Tensor input, GeluApproximation approximate);

/// <summary>A kernel along one dimension: <c>softmax</c>, <c>log_softmax</c>.</summary>
public delegate torch.Tensor DimensionKernel(torch.Tensor input, long dim);

/// <summary>A normalization over the last dimension with a weight: <c>rms_norm</c>.</summary>
public delegate torch.Tensor WeightedNormKernel(torch.Tensor input, torch.Tensor weight, double epsilon);

/// <summary>
/// <c>fused_add_rms_norm</c>, in place as vLLM's: <c>residual += input</c>, then <c>input = rms_norm(residual) * weight</c>.
/// </summary>
public delegate void FusedAddNormKernel(torch.Tensor input, torch.Tensor residual, torch.Tensor weight, double epsilon);

/// <summary><c>layer_norm</c> over the last dimension, with an optional weight and bias.</summary>
public delegate torch.Tensor LayerNormKernel(torch.Tensor input, torch.Tensor? weight, torch.Tensor? bias, double epsilon);

/// <summary>
/// <c>rotary_embedding</c>, in place as vLLM's: rotates <paramref name="query"/> (and <paramref name="key"/>) of shape
/// [tokens, heads * headSize] by the cos/sin rows that <paramref name="positions"/> pick from
/// <paramref name="cosSinCache"/> [maxPosition, rotaryDim] (cos in the first half of each row, sin in the second).
/// </summary>
public delegate void RotaryKernel(torch.Tensor positions, torch.Tensor query, torch.Tensor? key, long headSize, torch.Tensor cosSinCache, bool isNeox);

/// <summary><c>embedding</c>: the rows of <paramref name="weight"/> that <paramref name="indices"/> (int32 or int64) name.</summary>
public delegate torch.Tensor EmbeddingKernel(torch.Tensor weight, torch.Tensor indices);

/// <summary>A reduction over one dimension, or over all when <paramref name="dim"/> is null: <c>sum</c>, <c>mean</c>, <c>amax</c>, <c>argmax</c>.</summary>
public delegate torch.Tensor ReductionKernel(torch.Tensor input, long? dim, bool keepdim);

/// <summary><c>topk</c>: the <paramref name="k"/> largest (or smallest) values along <paramref name="dim"/>, sorted, with their int64 indices.</summary>
public delegate (torch.Tensor Values, torch.Tensor Indices) TopKKernel(torch.Tensor input, long k, long dim, bool largest);

/// <summary><c>addmm</c>: <c>beta * self + alpha * (mat1 @ mat2)</c>, <paramref name="self"/> broadcasting to the product's shape.</summary>
public delegate torch.Tensor AddmmKernel(torch.Tensor self, torch.Tensor mat1, torch.Tensor mat2, double beta, double alpha);

/// <summary>
/// <c>scaled_dot_product_attention</c> on [batch, heads, length, headSize] tensors: grouped-query when the key/value
/// heads divide the query heads; an optional additive (float) or keep (bool) mask broadcasting to
/// [batch, heads, queryLength, keyLength]; causal aligned to the top left, as PyTorch's; scale 1/√headSize when null.
/// </summary>
public delegate torch.Tensor AttentionKernel(torch.Tensor query, torch.Tensor key, torch.Tensor value, torch.Tensor? attentionMask, bool isCausal, double? scale);
