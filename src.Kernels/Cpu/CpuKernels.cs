using System;
using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace GemsInjector.Kernels.Cpu;

/// <summary>
/// float32 CPU kernels over spans: managed SIMD (AVX-512 where the machine has it), fused, and split over threads
/// only for large inputs; they allocate nothing. The destination may be the same memory as an input (in place),
/// but must not partially overlap one.
/// </summary>
public static unsafe class CpuKernels
{
    /// <summary>The back-end name these kernels report: <see cref="KernelBackends.Cpu"/>.</summary>
    public static string BackendName => KernelBackends.Cpu;

    /// <summary>
    /// <c>aten::add.Tensor</c>: <paramref name="destination"/>[i] = <paramref name="self"/>[i] + <paramref name="alpha"/> *
    /// <paramref name="other"/>[i], as one fused multiply-add (one rounding) like aten's vectorized CPU kernel.
    /// </summary>
    /// <param name="self">The first addend.</param>
    /// <param name="other">The second addend, scaled by <paramref name="alpha"/>; same length as <paramref name="self"/>.</param>
    /// <param name="alpha">The factor applied to <paramref name="other"/>.</param>
    /// <param name="destination">The output; same length as <paramref name="self"/>.</param>
    /// <exception cref="ArgumentException">A length differs from <paramref name="self"/>'s, or the destination partially overlaps an input.</exception>
    public static void Add(ReadOnlySpan<float> self, ReadOnlySpan<float> other, float alpha, Span<float> destination)
    {
        CheckSameLength(self, other, nameof(other), nameof(self));
        CheckSameLength(self, destination, nameof(destination), nameof(self));
        CheckOverlap(self, destination, nameof(self));
        CheckOverlap(other, destination, nameof(other));
        fixed (float* a = self)
        fixed (float* b = other)
        fixed (float* d = destination)
        {
            AddCore(a, b, alpha, d, self.Length);
        }
    }

    /// <summary><c>aten::mul.Tensor</c>: <paramref name="destination"/>[i] = <paramref name="self"/>[i] * <paramref name="other"/>[i].</summary>
    /// <param name="self">The first factor.</param>
    /// <param name="other">The second factor; same length as <paramref name="self"/>.</param>
    /// <param name="destination">The output; same length as <paramref name="self"/>.</param>
    /// <exception cref="ArgumentException">A length differs from <paramref name="self"/>'s, or the destination partially overlaps an input.</exception>
    public static void Mul(ReadOnlySpan<float> self, ReadOnlySpan<float> other, Span<float> destination)
    {
        CheckSameLength(self, other, nameof(other), nameof(self));
        CheckSameLength(self, destination, nameof(destination), nameof(self));
        CheckOverlap(self, destination, nameof(self));
        CheckOverlap(other, destination, nameof(other));
        fixed (float* a = self)
        fixed (float* b = other)
        fixed (float* d = destination)
        {
            MulCore(a, b, d, self.Length);
        }
    }

    /// <summary>
    /// <c>aten::silu</c>: <paramref name="destination"/>[i] = x * sigmoid(x) = x / (1 + e^-x) for x = <paramref name="input"/>[i].
    /// NaN stays NaN, silu(+Inf) = +Inf, silu(-Inf) = NaN (as aten: -Inf / Inf).
    /// </summary>
    /// <param name="input">The input.</param>
    /// <param name="destination">The output; same length as <paramref name="input"/>.</param>
    /// <exception cref="ArgumentException">The lengths differ, or the destination partially overlaps the input.</exception>
    public static void Silu(ReadOnlySpan<float> input, Span<float> destination)
    {
        CheckSameLength(input, destination, nameof(destination), nameof(input));
        CheckOverlap(input, destination, nameof(input));
        fixed (float* x = input)
        fixed (float* d = destination)
        {
            SiluCore(x, d, input.Length);
        }
    }

    /// <summary>
    /// <c>aten::rms_norm</c> over rows of <paramref name="rowLength"/> elements:
    /// <paramref name="destination"/> = x / sqrt(mean(x², row) + <paramref name="epsilon"/>) * <paramref name="weight"/>.
    /// The sum of squares accumulates in float32 vector lanes; mean, epsilon and the reciprocal square root are in float64.
    /// A NaN in a row makes that whole row NaN; an infinite element makes its row's scale 0 (so Inf * 0 = NaN there).
    /// </summary>
    /// <param name="input">Rows of <paramref name="rowLength"/> elements, one after another.</param>
    /// <param name="weight">The per-column scale; length <paramref name="rowLength"/>.</param>
    /// <param name="rowLength">The normalized (last) dimension; positive, or 0 for an empty input.</param>
    /// <param name="epsilon">Added to the mean of squares.</param>
    /// <param name="destination">The output; same length as <paramref name="input"/>.</param>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="rowLength"/> is negative, or 0 for a non-empty input.</exception>
    /// <exception cref="ArgumentException">A length does not fit, or the destination partially overlaps an input.</exception>
    public static void RmsNorm(ReadOnlySpan<float> input, ReadOnlySpan<float> weight, int rowLength, float epsilon, Span<float> destination)
    {
        if (rowLength < 0 || (rowLength == 0 && !input.IsEmpty))
        {
            throw new ArgumentOutOfRangeException(nameof(rowLength), rowLength,
                $"RmsNorm: 'rowLength' must be positive for an input of {input.Length} elements, but it is {rowLength}.");
        }

        if (rowLength > 0 && input.Length % rowLength != 0)
        {
            throw new ArgumentException(
                $"RmsNorm: 'input' has {input.Length} elements, which is not a whole number of rows of 'rowLength' {rowLength}.", nameof(input));
        }

        if (weight.Length != rowLength)
        {
            throw new ArgumentException($"RmsNorm: 'weight' has {weight.Length} elements but 'rowLength' is {rowLength}.", nameof(weight));
        }

        CheckSameLength(input, destination, nameof(destination), nameof(input));
        CheckOverlap(input, destination, nameof(input));
        CheckOverlap(weight, destination, nameof(weight));
        if (input.IsEmpty)
        {
            return;
        }

        fixed (float* x = input)
        fixed (float* w = weight)
        fixed (float* d = destination)
        {
            RmsNormCore(x, w, d, input.Length / rowLength, rowLength, epsilon);
        }
    }

    /// <summary>self + alpha·other as one fused multiply-add per element, through the shared binary loop (streams large outputs).</summary>
    internal static void AddCore(float* self, float* other, float alpha, float* destination, long length) =>
        ElementwiseLoops.Binary<AddScaledOperator, Numerics.Float32Lanes>((byte*)self, (byte*)other, alpha, (byte*)destination, length);

    /// <summary>self·other through the same binary loop as <see cref="AddCore"/> (see docs/perf/cpu-notes.md for why not TensorPrimitives).</summary>
    internal static void MulCore(float* self, float* other, float* destination, long length) =>
        ElementwiseLoops.Binary<MulOperator, Numerics.Float32Lanes>((byte*)self, (byte*)other, 1f, (byte*)destination, length);

    internal static void SiluCore(float* input, float* destination, long length) =>
        ElementwiseLoops.Unary<SiluOperator>(input, destination, (nint)length);

    internal static void RmsNormCore(float* input, float* weight, float* destination, long rows, int rowLength, double epsilon)
    {
        long total = rows * rowLength;
        int threads = rows < 2 ? 1 : (int)Math.Min(rows, ElementwiseLoops.ThreadCount(total));
        if (threads == 1)
        {
            RmsNormRows(input, weight, destination, 0, rows, rowLength, epsilon);
            return;
        }

        nint x = (nint)input, w = (nint)weight, d = (nint)destination;
        long rowsPerThread = (rows + threads - 1) / threads;
        CpuThreadBudget.For(threads, t =>
        {
            long first = t * rowsPerThread;
            long end = Math.Min(rows, first + rowsPerThread);
            if (first < end)
            {
                RmsNormRows((float*)x, (float*)w, (float*)d, first, end, rowLength, epsilon);
            }
        });
    }

    private static void RmsNormRows(float* input, float* weight, float* destination, long firstRow, long endRow, int rowLength, double epsilon)
    {
        for (long row = firstRow; row < endRow; row++)
        {
            float* x = input + row * rowLength;
            float* d = destination + row * rowLength;
            double sumOfSquares = TensorPrimitives.SumOfSquares(new ReadOnlySpan<float>(x, rowLength));
            float scale = (float)(1.0 / Math.Sqrt(sumOfSquares / rowLength + epsilon));
            ScaleRow(x, weight, scale, d, rowLength);
        }
    }

    /// <summary>d[j] = (x[j] * scale) * w[j], the order aten's composite rms_norm uses.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void ScaleRow(float* x, float* w, float scale, float* d, int length)
    {
        int j = 0;
        if (Vector512.IsHardwareAccelerated)
        {
            Vector512<float> s = Vector512.Create(scale);
            for (; j <= length - Vector512<float>.Count; j += Vector512<float>.Count)
            {
                (Vector512.Load(x + j) * s * Vector512.Load(w + j)).Store(d + j);
            }
        }
        else if (Vector256.IsHardwareAccelerated)
        {
            Vector256<float> s = Vector256.Create(scale);
            for (; j <= length - Vector256<float>.Count; j += Vector256<float>.Count)
            {
                (Vector256.Load(x + j) * s * Vector256.Load(w + j)).Store(d + j);
            }
        }

        for (; j < length; j++)
        {
            d[j] = x[j] * scale * w[j];
        }
    }

    private static void CheckSameLength<TA, TB>(ReadOnlySpan<TA> reference, ReadOnlySpan<TB> argument, string argumentName, string referenceName)
    {
        if (argument.Length != reference.Length)
        {
            throw new ArgumentException(
                $"'{argumentName}' has {argument.Length} elements but '{referenceName}' has {reference.Length}; they must be equal.", argumentName);
        }
    }

    private static void CheckSameLength<TA, TB>(ReadOnlySpan<TA> reference, Span<TB> argument, string argumentName, string referenceName) =>
        CheckSameLength(reference, (ReadOnlySpan<TB>)argument, argumentName, referenceName);

    private static void CheckOverlap(ReadOnlySpan<float> input, Span<float> destination, string inputName)
    {
        if (input.Overlaps(destination, out int offset) && offset != 0)
        {
            throw new ArgumentException(
                $"'destination' partially overlaps '{inputName}' (offset {offset} elements); it must be the same memory or not overlap.", nameof(destination));
        }
    }
}
