using System;
using ILGPU;
using ILGPU.Runtime;

namespace GemsInjector.Kernels.Ilgpu;

/// <summary>16-bit floating-point storage formats (elements are passed as <see cref="ushort"/> bit patterns).</summary>
public enum HalfFormat
{
    /// <summary>IEEE binary16 (<c>torch.float16</c>).</summary>
    Float16,

    /// <summary>bfloat16 (<c>torch.bfloat16</c>): the upper 16 bits of a float32.</summary>
    BFloat16,
}

/// <summary>The 16-bit activations of <see cref="IlgpuKernels.Activation(ArrayView{ushort}, ArrayView{ushort}, HalfActivation, HalfFormat)"/>.</summary>
public enum HalfActivation
{
    /// <summary>x·sigmoid(x).</summary>
    Silu = 0,

    /// <summary>GELU, erf form.</summary>
    Gelu = 1,

    /// <summary>GELU, tanh approximation.</summary>
    GeluTanh = 2,

    /// <summary>max(x, 0).</summary>
    Relu = 3,

    /// <summary>1/(1+e^-x).</summary>
    Sigmoid = 4,

    /// <summary>tanh(x).</summary>
    Tanh = 5,

    /// <summary>e^x.</summary>
    Exp = 6,

    /// <summary>-x.</summary>
    Neg = 7,

    /// <summary>1/√x.</summary>
    Rsqrt = 8,
}

public sealed partial class IlgpuKernels
{
    private Action<KernelConfig, ArrayView<ushort>, ArrayView<ushort>, float, ArrayView<ushort>, int, int>? add16;
    private Action<KernelConfig, ArrayView<ushort>, ArrayView<ushort>, ArrayView<ushort>, int, int>? mul16;
    private Action<KernelConfig, ArrayView<ushort>, ArrayView<ushort>, int, int, int>? activation16;
    private Action<KernelConfig, ArrayView<ushort>, ArrayView<ushort>, int, int, int, int>? gated16;
    private Action<KernelConfig, ArrayView<ushort>, ArrayView<ushort>, ArrayView<ushort>, int, float, int>? rmsNorm16, fusedAddRmsNorm16;
    private Action<KernelConfig, ArrayView<ushort>, ArrayView<ushort>, ArrayView<ushort>, ArrayView<ushort>, int, float, int, int, int>? layerNorm16;
    private Action<KernelConfig, ArrayView<ushort>, ArrayView<ushort>, int, int, int>? softmax16;
    private Action<KernelConfig, ArrayView<long>, ArrayView<ushort>, ArrayView<ushort>, ArrayView<ushort>, int, int, int, int, int, int, int>? rotary16;

    private static int Bf(HalfFormat format) => format == HalfFormat.BFloat16 ? 1 : 0;

    /// <summary>16-bit <c>add</c>: y = a + alpha·b, computed in float32, rounded to nearest even.</summary>
    /// <param name="a">First addend.</param>
    /// <param name="b">Second addend.</param>
    /// <param name="alpha">Factor on <paramref name="b"/>.</param>
    /// <param name="y">Output.</param>
    /// <param name="format">Storage format of all views.</param>
    public void Add(ArrayView<ushort> a, ArrayView<ushort> b, float alpha, ArrayView<ushort> y, HalfFormat format)
    {
        int n = CheckInt(a.Length, nameof(a));
        CheckLength(b, n, nameof(b));
        CheckLength(y, n, nameof(y));
        if (n > 0 && !TryBinary16x8(a, b, y, alpha, n, 0, Bf(format)))
        {
            device.Load(ref add16, nameof(HalfKernels.Add16), acc => acc.LoadStreamKernel<ArrayView<ushort>, ArrayView<ushort>, float, ArrayView<ushort>, int, int>(HalfKernels.Add16))(
                Elementwise(n), a, b, alpha, y, n, Bf(format));
        }
    }

    /// <summary>16-bit <c>mul</c>: y = a·b.</summary>
    /// <param name="a">First factor.</param>
    /// <param name="b">Second factor.</param>
    /// <param name="y">Output.</param>
    /// <param name="format">Storage format of all views.</param>
    public void Mul(ArrayView<ushort> a, ArrayView<ushort> b, ArrayView<ushort> y, HalfFormat format)
    {
        int n = CheckInt(a.Length, nameof(a));
        CheckLength(b, n, nameof(b));
        CheckLength(y, n, nameof(y));
        if (n > 0 && !TryBinary16x8(a, b, y, 1f, n, 1, Bf(format)))
        {
            device.Load(ref mul16, nameof(HalfKernels.Mul16), acc => acc.LoadStreamKernel<ArrayView<ushort>, ArrayView<ushort>, ArrayView<ushort>, int, int>(HalfKernels.Mul16))(
                Elementwise(n), a, b, y, n, Bf(format));
        }
    }

    /// <summary>16-bit element-wise activation.</summary>
    /// <param name="x">Input.</param>
    /// <param name="y">Output (may be <paramref name="x"/>).</param>
    /// <param name="activation">Which function.</param>
    /// <param name="format">Storage format.</param>
    public void Activation(ArrayView<ushort> x, ArrayView<ushort> y, HalfActivation activation, HalfFormat format)
    {
        int n = CheckInt(x.Length, nameof(x));
        CheckLength(y, n, nameof(y));
        if (n > 0 && !TryUnary16x8(x, y, n, (int)activation, Bf(format)))
        {
            device.Load(ref activation16, nameof(HalfKernels.Activation16), acc => acc.LoadStreamKernel<ArrayView<ushort>, ArrayView<ushort>, int, int, int>(HalfKernels.Activation16))(
                Elementwise(n), x, y, n, (int)activation, Bf(format));
        }
    }

    /// <summary>16-bit <c>silu_and_mul</c> / <c>gelu_and_mul</c> / <c>gelu_tanh_and_mul</c>: x [rows, 2d] → y [rows, d].</summary>
    /// <param name="x">Input.</param>
    /// <param name="y">Output.</param>
    /// <param name="rows">Rows.</param>
    /// <param name="d">Half the input row length.</param>
    /// <param name="activation">Silu, Gelu or GeluTanh.</param>
    /// <param name="format">Storage format.</param>
    public void GatedAndMul(ArrayView<ushort> x, ArrayView<ushort> y, int rows, int d, HalfActivation activation, HalfFormat format)
    {
        if (activation is not (HalfActivation.Silu or HalfActivation.Gelu or HalfActivation.GeluTanh))
        {
            throw new ArgumentOutOfRangeException(nameof(activation), activation, "Gated products exist for Silu, Gelu and GeluTanh.");
        }

        CheckPositive(rows, nameof(rows));
        CheckPositive(d, nameof(d));
        CheckLength(x, 2L * rows * d, nameof(x));
        CheckLength(y, (long)rows * d, nameof(y));
        if ((long)rows * d > 0 && !TryGated16x8(x, y, rows, d, (int)activation, Bf(format)))
        {
            device.Load(ref gated16, nameof(HalfKernels.GatedAndMul16), acc => acc.LoadStreamKernel<ArrayView<ushort>, ArrayView<ushort>, int, int, int, int>(HalfKernels.GatedAndMul16))(
                Elementwise((long)rows * d), x, y, rows, d, (int)activation, Bf(format));
        }
    }

    /// <summary>16-bit RMS norm (weight in the same format).</summary>
    /// <param name="x">Input [rows, cols].</param>
    /// <param name="weight">[cols].</param>
    /// <param name="y">Output.</param>
    /// <param name="cols">Row length.</param>
    /// <param name="epsilon">Added to the mean square.</param>
    /// <param name="format">Storage format.</param>
    public void RmsNorm(ArrayView<ushort> x, ArrayView<ushort> weight, ArrayView<ushort> y, int cols, float epsilon, HalfFormat format)
    {
        int rows = CheckRows(x, cols, nameof(x));
        CheckLength(weight, cols, nameof(weight));
        CheckLength(y, x.Length, nameof(y));
        if (rows > 0 && !TryRmsNormVector16(x, weight, y, rows, cols, epsilon, format) && !TryRmsNormWide16(x, weight, y, rows, cols, epsilon, format))
        {
            device.Load(ref rmsNorm16, nameof(HalfKernels.RmsNorm16), acc => acc.LoadStreamKernel<ArrayView<ushort>, ArrayView<ushort>, ArrayView<ushort>, int, float, int>(HalfKernels.RmsNorm16))(
                PlainRows16(rows, cols), x, weight, y, cols, epsilon, Bf(format));
        }
    }

    /// <summary>16-bit <c>fused_add_rms_norm</c>, in place (as vLLM's kernel: variance of the float32 sum, output from the rounded residual).</summary>
    /// <param name="x">Input; receives the normalized result.</param>
    /// <param name="residual">Receives x + residual.</param>
    /// <param name="weight">[cols].</param>
    /// <param name="cols">Row length.</param>
    /// <param name="epsilon">Added to the mean square.</param>
    /// <param name="format">Storage format.</param>
    public void FusedAddRmsNorm(ArrayView<ushort> x, ArrayView<ushort> residual, ArrayView<ushort> weight, int cols, float epsilon, HalfFormat format)
    {
        int rows = CheckRows(x, cols, nameof(x));
        CheckLength(residual, x.Length, nameof(residual));
        CheckLength(weight, cols, nameof(weight));
        if (rows > 0 && !TryFusedAddRmsNormVector16(x, residual, weight, rows, cols, epsilon, format) && !TryFusedAddRmsNormWide16(x, residual, weight, rows, cols, epsilon, format))
        {
            device.Load(ref fusedAddRmsNorm16, nameof(HalfKernels.FusedAddRmsNorm16), acc => acc.LoadStreamKernel<ArrayView<ushort>, ArrayView<ushort>, ArrayView<ushort>, int, float, int>(HalfKernels.FusedAddRmsNorm16))(
                PlainRows16(rows, cols), x, residual, weight, cols, epsilon, Bf(format));
        }
    }

    /// <summary>16-bit layer norm.</summary>
    /// <param name="x">Input [rows, cols].</param>
    /// <param name="weight">[cols] or empty.</param>
    /// <param name="bias">[cols] or empty.</param>
    /// <param name="y">Output.</param>
    /// <param name="cols">Row length.</param>
    /// <param name="epsilon">Added to the variance.</param>
    /// <param name="format">Storage format.</param>
    public void LayerNorm(ArrayView<ushort> x, ArrayView<ushort> weight, ArrayView<ushort> bias, ArrayView<ushort> y, int cols, float epsilon, HalfFormat format)
    {
        int rows = CheckRows(x, cols, nameof(x));
        if (weight.Length != 0)
        {
            CheckLength(weight, cols, nameof(weight));
        }

        if (bias.Length != 0)
        {
            CheckLength(bias, cols, nameof(bias));
        }

        CheckLength(y, x.Length, nameof(y));
        if (rows > 0 && !TryLayerNormVector16(x, weight, bias, y, rows, cols, epsilon, format) && !TryLayerNormWide16(x, weight, bias, y, rows, cols, epsilon, format))
        {
            device.Load(ref layerNorm16, nameof(HalfKernels.LayerNorm16),
                acc => acc.LoadStreamKernel<ArrayView<ushort>, ArrayView<ushort>, ArrayView<ushort>, ArrayView<ushort>, int, float, int, int, int>(HalfKernels.LayerNorm16))(
                PlainRows16(rows, cols), x, weight, bias, y, cols, epsilon, weight.Length != 0 ? 1 : 0, bias.Length != 0 ? 1 : 0, Bf(format));
        }
    }

    /// <summary>16-bit softmax (or log-softmax) over the last dim.</summary>
    /// <param name="x">Input [rows, cols].</param>
    /// <param name="y">Output.</param>
    /// <param name="cols">Row length.</param>
    /// <param name="format">Storage format.</param>
    /// <param name="log">Log-softmax when true.</param>
    public void Softmax(ArrayView<ushort> x, ArrayView<ushort> y, int cols, HalfFormat format, bool log = false)
    {
        int rows = CheckRows(x, cols, nameof(x));
        CheckLength(y, x.Length, nameof(y));
        if (rows > 0 && !TrySoftmaxVector16(x, y, rows, cols, log ? 1 : 0, format))
        {
            device.Load(ref softmax16, nameof(HalfKernels.Softmax16), acc => acc.LoadStreamKernel<ArrayView<ushort>, ArrayView<ushort>, int, int, int>(HalfKernels.Softmax16))(
                PlainRows16(rows, cols), x, y, cols, log ? 1 : 0, Bf(format));
        }
    }

    /// <summary>16-bit rotary embedding, in place (see the float32 overload).</summary>
    /// <param name="positions">[tokens] int64 positions.</param>
    /// <param name="query">Query, rotated in place.</param>
    /// <param name="key">Key, rotated in place, or empty.</param>
    /// <param name="cosSinCache">[maxPositions, rotaryDim] in the same format.</param>
    /// <param name="headSize">Elements per head.</param>
    /// <param name="rotaryDim">Rotated leading elements per head (even).</param>
    /// <param name="isNeox">neox (halves) or interleaved pairs.</param>
    /// <param name="format">Storage format.</param>
    public void RotaryEmbedding(ArrayView<long> positions, ArrayView<ushort> query, ArrayView<ushort> key, ArrayView<ushort> cosSinCache,
        int headSize, int rotaryDim, bool isNeox, HalfFormat format)
    {
        int tokens = CheckInt(positions.Length, nameof(positions));
        if (headSize <= 0 || rotaryDim <= 0 || rotaryDim > headSize || rotaryDim % 2 != 0)
        {
            throw new ArgumentOutOfRangeException(nameof(rotaryDim), rotaryDim, $"rotaryDim must be even and in (0, headSize = {headSize}].");
        }

        if (tokens == 0)
        {
            return;
        }

        long perToken = (long)headSize * tokens;
        if (query.Length % perToken != 0 || key.Length % perToken != 0 || cosSinCache.Length % rotaryDim != 0)
        {
            throw new ArgumentException($"query ({query.Length}), key ({key.Length}) and cosSinCache ({cosSinCache.Length}) do not match {tokens} tokens, headSize {headSize}, rotaryDim {rotaryDim}.");
        }

        int heads = CheckInt(query.Length / perToken, nameof(query));
        int kvHeads = CheckInt(key.Length / perToken, nameof(key));
        if (TryRotaryVector16(positions, query, key, cosSinCache, tokens, heads, kvHeads, headSize, rotaryDim, isNeox, format))
        {
            return;
        }

        device.Load(ref rotary16, nameof(HalfKernels.Rotary16),
            acc => acc.LoadStreamKernel<ArrayView<long>, ArrayView<ushort>, ArrayView<ushort>, ArrayView<ushort>, int, int, int, int, int, int, int>(HalfKernels.Rotary16))(
            Rows(tokens, (heads + kvHeads) * rotaryDim / 2), positions, query, key, cosSinCache, heads, kvHeads, headSize, rotaryDim, isNeox ? 1 : 0, kvHeads > 0 ? 1 : 0, Bf(format));
    }
}
