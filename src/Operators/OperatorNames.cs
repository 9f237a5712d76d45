namespace GemsInjector.Operators;

/// <summary>
/// The names of GemsInjector's operators, as used in include / exclude lists (<see cref="GemsOptions.Include"/>,
/// <c>GEMS_INCLUDE</c>, <see cref="GemsWorkerAttribute.Include"/>). The GEMS005 analyzer reads these constants from the
/// referenced assembly's metadata, so this class is the one list of names.
/// </summary>
public static class OperatorNames
{
#pragma warning disable CS1591 // Each constant is the operator's own name; OperatorTable documents the operators.
    public const string Add = "add";
    public const string Sub = "sub";
    public const string Mul = "mul";
    public const string Div = "div";
    public const string Neg = "neg";
    public const string Exp = "exp";
    public const string Rsqrt = "rsqrt";
    public const string Relu = "relu";
    public const string Sigmoid = "sigmoid";
    public const string Tanh = "tanh";
    public const string Silu = "silu";
    public const string Gelu = "gelu";
    public const string SiluAndMul = "silu_and_mul";
    public const string GeluAndMul = "gelu_and_mul";
    public const string Softmax = "softmax";
    public const string LogSoftmax = "log_softmax";
    public const string RmsNorm = "rms_norm";
    public const string FusedAddRmsNorm = "fused_add_rms_norm";
    public const string LayerNorm = "layer_norm";
    public const string RotaryEmbedding = "rotary_embedding";
    public const string Embedding = "embedding";
    public const string Argmax = "argmax";
    public const string Sum = "sum";
    public const string Mean = "mean";
    public const string Amax = "amax";
    public const string TopK = "topk";
    public const string Mm = "mm";
    public const string Addmm = "addmm";
    public const string Bmm = "bmm";
    public const string ScaledDotProductAttention = "scaled_dot_product_attention";
#pragma warning restore CS1591
}
