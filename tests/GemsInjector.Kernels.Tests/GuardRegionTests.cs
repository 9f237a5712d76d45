using System;
using System.Collections.Generic;
using System.Linq;
using System.Runtime.InteropServices;
using GemsInjector.Kernels.Cpu;
using GemsInjector.Kernels.Numerics;
using GemsInjector.TestSupport;
using TorchSharp;
using Xunit;
using static GemsInjector.Kernels.Tests.HostileInput;

namespace GemsInjector.Kernels.Tests;

/// <summary>
/// No kernel writes outside its output. The operators allocate their outputs (torch.empty) except the two in-place ones, so:
/// (1) fused_add_rms_norm and rotary_embedding get their written tensors as views into the middle of a buffer filled with a
/// sentinel byte (0xA5) and every guard byte must survive; row-padded (strided) views must be refused with the whole buffer intact;
/// (2) every allocating operator gets guarded inputs, contiguous and row-padded, which must stay bit-identical, and must return
/// fresh contiguous outputs that share no memory with them; (3) the CPU row and elementwise loops themselves write into a
/// destination placed between sentinel guards in native memory, at odd sizes (1, 3, 4097), 64-byte aligned and not, and at the
/// streaming-store size (outputs of at least <see cref="CpuRowKernels.StreamBytes"/>).
/// </summary>
public sealed unsafe class GuardRegionTests : IClassFixture<HostileBridgeFixture>
{
    private const byte Sentinel = 0xA5;
    private const long Guard = 67;
    private readonly HostileBridgeFixture bridge;

    public GuardRegionTests(HostileBridgeFixture fixture) => bridge = fixture;

    public static TheoryData<string, torch.ScalarType, long> Configurations()
    {
        var data = new TheoryData<string, torch.ScalarType, long>();
        foreach (string backend in new[] { "cpu", "ilgpu" })
        {
            foreach (torch.ScalarType dtype in KernelTestData.FloatTypes)
            {
                foreach (long columns in new long[] { 1, 3, 4097 })
                {
                    data.Add(backend, dtype, columns);
                }
            }
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(Configurations))]
    public void FusedAddRmsNormWritesOnlyInputAndResidual(string backend, torch.ScalarType dtype, long columns)
    {
        using var scope = torch.NewDisposeScope();
        IOperatorKernels k = Kernels(backend);
        var (inputBuffer, input) = Guarded(Pattern(dtype, 3, columns));
        var (residualBuffer, residual) = Guarded(Pattern(dtype, 3, columns).neg());
        var (weightBuffer, weight) = Guarded(Pattern(dtype, columns));
        byte[] weightBefore = Bits(weightBuffer);
        k.FusedAddRmsNorm(input, residual, weight, 1e-6);
        AssertGuards(inputBuffer, "input");
        AssertGuards(residualBuffer, "residual");
        Assert.Equal(weightBefore, Bits(weightBuffer));

        // Rows padded to a stride of columns + 5 are not contiguous: refused, and nothing in the buffer changes.
        torch.Tensor padded = Filled(dtype, Guard * 2 + 3 * (columns + 5));
        torch.Tensor rows = padded.as_strided(new[] { 3, columns }, new[] { columns + 5, 1 }, Guard);
        byte[] before = Bits(padded);
        Refuses(() => { k.FusedAddRmsNorm(rows, Pattern(dtype, 3, columns), weight, 1e-6); return null; }, "input", "not contiguous");
        Assert.Equal(before, Bits(padded));
    }

    [Theory]
    [MemberData(nameof(Configurations))]
    public void RotaryEmbeddingWritesOnlyQueryAndKey(string backend, torch.ScalarType dtype, long columns)
    {
        using var scope = torch.NewDisposeScope();
        IOperatorKernels k = Kernels(backend);
        // Odd head sizes leave a tail after the rotated part; 4096 rotated dimensions take the full 16-lane loops.
        (long headSize, long rotary) = columns switch { 1 => (3L, 2L), 3 => (6L, 4L), _ => (4097L, 4096L) };
        foreach (bool neox in new[] { true, false })
        {
            var (queryBuffer, query) = Guarded(Pattern(dtype, 3, 2 * headSize));
            var (keyBuffer, key) = Guarded(Pattern(dtype, 3, 1, headSize));
            var (cacheBuffer, cache) = Guarded(Pattern(dtype, 5, rotary));
            byte[] cacheBefore = Bits(cacheBuffer);
            k.RotaryEmbedding(Ints(4, 0, 2), query, key, headSize, cache, neox);
            AssertGuards(queryBuffer, "query");
            AssertGuards(keyBuffer, "key");
            Assert.Equal(cacheBefore, Bits(cacheBuffer));
        }

        torch.Tensor padded = Filled(dtype, Guard * 2 + 3 * (headSize + 3));
        torch.Tensor rows = padded.as_strided(new[] { 3, headSize }, new[] { headSize + 3, 1 }, Guard);
        byte[] before = Bits(padded);
        Refuses(() => { k.RotaryEmbedding(Ints(0, 1, 2), rows, null, headSize, Pattern(dtype, 5, rotary), true); return null; }, "query", "not contiguous");
        Assert.Equal(before, Bits(padded));
    }

    [Theory]
    [MemberData(nameof(Configurations))]
    public void AllocatingOperatorsLeaveTheirInputsAloneAndReturnFreshOutputs(string backend, torch.ScalarType dtype, long columns)
    {
        IOperatorKernels k = Kernels(backend);
        foreach (var (name, call) in AllocatingOperators(dtype, columns))
        {
            foreach (bool padRows in new[] { false, true })
            {
                using var scope = torch.NewDisposeScope();
                var buffers = new List<(torch.Tensor Buffer, byte[] Before)>();
                torch.Tensor Input(torch.Tensor values)
                {
                    torch.Tensor view;
                    torch.Tensor buffer;
                    if (padRows && values.dim() >= 2)
                    {
                        // The last dimension padded by 3 elements per row: a non-contiguous input between guards.
                        long[] shape = values.shape;
                        long rowLength = shape[^1] + 3, rowCount = values.numel() / Math.Max(shape[^1], 1);
                        buffer = Filled(values.dtype, Guard * 2 + rowCount * rowLength);
                        long[] strides = new long[shape.Length];
                        strides[^1] = 1;
                        strides[^2] = rowLength;
                        for (int i = shape.Length - 3; i >= 0; i--)
                        {
                            strides[i] = strides[i + 1] * shape[i + 1];
                        }

                        view = buffer.as_strided(shape, strides, Guard);
                        view.copy_(values);
                    }
                    else
                    {
                        (buffer, view) = Guarded(values);
                    }

                    buffers.Add((buffer, Bits(buffer)));
                    return view;
                }

                object result = call(k, Input);
                foreach (torch.Tensor output in Outputs(result))
                {
                    Assert.True(output.is_contiguous(), $"{name}: the output is not contiguous.");
                    foreach (var (buffer, _) in buffers)
                    {
                        Assert.False(Shares(output, buffer), $"{name}: the output shares memory with an input.");
                    }
                }

                for (int i = 0; i < buffers.Count; i++)
                {
                    Assert.True(buffers[i].Before.AsSpan().SequenceEqual(Bits(buffers[i].Buffer)), $"{name} ({backend}, {dtype}, {columns}, padded {padRows}): input {i} or its guards changed.");
                }
            }
        }
    }

    [Fact]
    public void TheGuardChecksSeeAWriteJustOutsideTheData()
    {
        using var scope = torch.NewDisposeScope();
        var (buffer, _) = Guarded(Pattern(F16, 2, 3));
        buffer[Guard + 6] = torch.tensor(1.0, F16);
        Assert.ThrowsAny<Xunit.Sdk.XunitException>(() => AssertGuards(buffer, "probe"));
        using var native = new NativeGuarded(12, 2);
        native.Data[-1] = 0;
        Assert.ThrowsAny<Xunit.Sdk.XunitException>(() => native.AssertGuards("probe"));
    }

    public static TheoryData<int, int> LoopConfigurations()
    {
        var data = new TheoryData<int, int>();
        foreach (int count in new[] { 1, 3, 4097 })
        {
            foreach (int misalign in new[] { 0, 1 })
            {
                data.Add(count, misalign);
            }
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(LoopConfigurations))]
    public void CpuLoopsWriteOnlyTheirDestination(int count, int misalign)
    {
        LoopsFor<Float32Lanes>(count, misalign);
        LoopsFor<Float16Lanes>(count, misalign);
        LoopsFor<BFloat16Lanes>(count, misalign);
    }

    [Fact]
    public void StreamingStoresStayInsideTheDestination()
    {
        // Outputs of at least 16 MiB, 64-byte aligned, rows a multiple of 64 bytes: the streaming (non-temporal) store path, with
        // an odd element count for the elementwise loops so that the tail after the last full line is exercised too.
        long elementwise = (CpuRowKernels.StreamBytes / sizeof(float)) + 13;
        using (var a = new NativeGuarded(elementwise * 4, 0))
        using (var b = new NativeGuarded(elementwise * 4, 0))
        using (var d = new NativeGuarded(elementwise * 4, 0))
        {
            a.FillValues<Float32Lanes>(elementwise);
            b.FillValues<Float32Lanes>(elementwise);
            CpuKernels.AddCore((float*)a.Data, (float*)b.Data, 0.5f, (float*)d.Data, elementwise);
            d.AssertGuards("add (float32, streamed)");
            CpuKernels.MulCore((float*)a.Data, (float*)b.Data, (float*)d.Data, elementwise);
            d.AssertGuards("mul (float32, streamed)");
            new Span<float>(d.Data, (int)elementwise).Fill(float.NaN);
            ElementwiseLoops.Unary<SiluOperator, Float32Lanes>(a.Data, d.Data, elementwise);
            d.AssertGuards("silu (float32, streamed)");
            AssertSilu((float*)a.Data, (float*)d.Data, elementwise);
            a.AssertGuards("add/mul self");
            b.AssertGuards("add/mul other");
        }

        const long Half = 4096;
        foreach (var (rows, size) in new[] { (2049L, 2), (1025L, 4) })
        {
            using var x = new NativeGuarded(rows * 2 * Half * size, 0);
            using var d = new NativeGuarded(rows * Half * size, 0);
            if (size == 2)
            {
                x.FillValues<Float16Lanes>(rows * 2 * Half);
                Assert.True(CpuRowKernels.CanStream(d.Data, Half * size, rows * Half * size));
                CpuRowKernels.Run(new GatedJob<GeluErfOperator, Float16Lanes>(x.Data, d.Data, Half, rows), rows, rows * Half);
                d.AssertGuards("gelu_and_mul (float16, streamed)");
                using var s = new NativeGuarded(rows * Half * size, 0);
                CpuRowKernels.Run(new SoftmaxLastJob<BFloat16Lanes>(x.Data, s.Data, (int)Half, false, rows), rows, rows * Half);
                s.AssertGuards("softmax (bfloat16, streamed)");
                Assert.True(CpuRowKernels.CanStream(d.Data, 0, rows * Half * size));
                ElementwiseLoops.Unary<SiluOperator, BFloat16Lanes>(x.Data, d.Data, rows * Half);
                d.AssertGuards("silu (bfloat16, streamed)");
            }
            else
            {
                x.FillValues<Float32Lanes>(rows * 2 * Half);
                CpuRowKernels.Run(new GatedJob<SigmoidOperator, Float32Lanes>(x.Data, d.Data, Half, rows), rows, rows * Half);
                d.AssertGuards("gated sigmoid (float32, streamed)");
                // Rows of Half from the first half of x: softmax prefetches each next row of its input while streaming out.
                Assert.True(CpuRowKernels.CanStream(d.Data, Half * size, rows * Half * size));
                CpuRowKernels.Run(new SoftmaxLastJob<Float32Lanes>(x.Data, d.Data, (int)Half, false, rows), rows, rows * Half);
                d.AssertGuards("softmax (float32, streamed)");
                CpuRowKernels.Run(new SoftmaxLastJob<Float32Lanes>(x.Data, d.Data, (int)Half, true, rows), rows, rows * Half);
                d.AssertGuards("log_softmax (float32, streamed)");
            }

            x.AssertGuards("gated input");
        }
    }

    /// <summary>Every element of a streamed float32 silu against x / (1 + e^-x) in float64 (NaN never passes).</summary>
    private static void AssertSilu(float* x, float* actual, long count)
    {
        for (long i = 0; i < count; i++)
        {
            double expected = x[i] / (1 + Math.Exp(-(double)x[i]));
            Assert.True(Math.Abs(actual[i] - expected) <= 1e-6 + (1e-5 * Math.Abs(expected)), $"silu (float32, streamed) at {i}: {actual[i]} for x = {x[i]}, expected {expected}");
        }
    }

    private static void LoopsFor<T>(int count, int misalign)
        where T : struct, IFloatLanes
    {
        int size = T.Size;
        string what = $"{typeof(T).Name}, {count} elements, misaligned {misalign}";
        using var a = new NativeGuarded((long)count * size, misalign * size);
        using var b = new NativeGuarded((long)count * size, misalign * size);
        using var d = new NativeGuarded((long)count * size, misalign * size);
        using var w = new NativeGuarded((long)count * size, 0);
        a.FillValues<T>(count);
        b.FillValues<T>(count);
        w.FillValues<T>(count);

        ElementwiseLoops.Unary<ExpOperator, T>(a.Data, d.Data, count);
        d.AssertGuards($"exp ({what})");
        ElementwiseLoops.Binary<AddScaledOperator, T>(a.Data, b.Data, 0.5f, d.Data, count);
        d.AssertGuards($"add ({what})");
        ElementwiseLoops.Binary<DivOperator, T>(a.Data, b.Data, 1f, d.Data, count);
        d.AssertGuards($"div ({what})");

        // Row jobs over 3 rows of count elements (or count rows of 1 when the destination holds count elements).
        using var x3 = new NativeGuarded(3L * count * size, misalign * size);
        using var r3 = new NativeGuarded(3L * count * size, misalign * size);
        using var d3 = new NativeGuarded(3L * count * size, misalign * size);
        using var b3 = new NativeGuarded(3L * count * size, 0);
        x3.FillValues<T>(3L * count);
        r3.FillValues<T>(3L * count);
        b3.FillValues<T>(count);
        CpuRowKernels.Run(new RmsNormJob<T>(x3.Data, w.Data, d3.Data, count, 1e-6), 3, 3L * count);
        d3.AssertGuards($"rms_norm ({what})");
        CpuRowKernels.Run(new LayerNormJob<T>(x3.Data, w.Data, b3.Data, d3.Data, count, 1e-5), 3, 3L * count);
        d3.AssertGuards($"layer_norm ({what})");
        CpuRowKernels.Run(new SoftmaxLastJob<T>(x3.Data, d3.Data, count, true, 3), 3, 3L * count);
        d3.AssertGuards($"log_softmax along the last dim ({what})");
        CpuRowKernels.Run(new SoftmaxLastJob<T>(x3.Data, d3.Data, count, false, 3), 3, 3L * count);
        d3.AssertGuards($"softmax along the last dim ({what})");
        var strided = new SoftmaxStridedJob<T>(x3.Data, d3.Data, 3, count, false);
        CpuRowKernels.Run(strided, strided.Items(1), 3L * count);
        d3.AssertGuards($"softmax along the first dim ({what})");
        CpuRowKernels.Run(new FusedAddRmsNormJob<T>(x3.Data, r3.Data, w.Data, count, 1e-6), 3, 3L * count);
        x3.AssertGuards($"fused_add_rms_norm input ({what})");
        r3.AssertGuards($"fused_add_rms_norm residual ({what})");
        using (var gated = new NativeGuarded(3L * 2 * count * size, misalign * size))
        {
            // Rows of 2 * count input elements (gate, up) into rows of count.
            gated.FillValues<T>(3L * 2 * count);
            CpuRowKernels.Run(new GatedJob<GeluErfOperator, T>(gated.Data, d3.Data, count, 3), 3, 3L * count);
            d3.AssertGuards($"gelu_and_mul ({what})");
            gated.AssertGuards($"gelu_and_mul input ({what})");
        }

        a.AssertGuards($"inputs ({what})");
        b.AssertGuards($"inputs ({what})");
        w.AssertGuards($"weight ({what})");
    }

    /// <summary>The 28 operators that allocate their outputs, each with inputs built by the given factory (which guards them).</summary>
    private static IEnumerable<(string Name, Func<IOperatorKernels, Func<torch.Tensor, torch.Tensor>, object> Call)> AllocatingOperators(torch.ScalarType dt, long n)
    {
        torch.Tensor P(params long[] shape) => Pattern(dt, shape);
        yield return ("add", (k, I) => k.Add(I(P(3, n)), I(P(3, n)), 0.5));
        yield return ("sub", (k, I) => k.Sub(I(P(3, n)), I(P(n)), 0.5));
        yield return ("mul", (k, I) => k.Mul(I(P(3, n)), I(P(3, n))));
        yield return ("div", (k, I) => k.Div(I(P(3, n)), I(P(3, n).add(HeldScalars.Of(3), HeldScalars.One))));
        yield return ("neg", (k, I) => k.Neg(I(P(3, n))));
        yield return ("exp", (k, I) => k.Exp(I(P(3, n))));
        yield return ("rsqrt", (k, I) => k.Rsqrt(I(P(3, n).abs())));
        yield return ("relu", (k, I) => k.Relu(I(P(3, n))));
        yield return ("sigmoid", (k, I) => k.Sigmoid(I(P(3, n))));
        yield return ("tanh", (k, I) => k.Tanh(I(P(3, n))));
        yield return ("silu", (k, I) => k.Silu(I(P(3, n))));
        yield return ("gelu", (k, I) => k.Gelu(I(P(3, n)), GeluApproximation.Tanh));
        yield return ("silu_and_mul", (k, I) => k.SiluAndMul(I(P(3, 2 * n))));
        yield return ("gelu_and_mul", (k, I) => k.GeluAndMul(I(P(3, 2 * n)), GeluApproximation.None));
        yield return ("softmax", (k, I) => k.Softmax(I(P(3, n)), -1));
        yield return ("log_softmax", (k, I) => k.LogSoftmax(I(P(3, n)), 0));
        yield return ("rms_norm", (k, I) => k.RmsNorm(I(P(3, n)), I(P(n)), 1e-6));
        yield return ("layer_norm", (k, I) => k.LayerNorm(I(P(3, n)), I(P(n)), I(P(n)), 1e-5));
        yield return ("embedding", (k, I) => k.Embedding(I(P(5, n)), Ints(4, 0, 4, 2)));
        yield return ("argmax", (k, I) => k.Argmax(I(P(3, n)), -1, false));
        yield return ("sum", (k, I) => k.Sum(I(P(3, n)), 0, true));
        yield return ("mean", (k, I) => k.Mean(I(P(3, n)), null, false));
        yield return ("amax", (k, I) => k.Amax(I(P(3, n)), -1, true));
        yield return ("topk", (k, I) => k.TopK(I(P(3, n)), 1, -1, true));
        yield return ("mm", (k, I) => k.Mm(I(P(3, n)), I(P(n, 3))));
        yield return ("addmm", (k, I) => k.Addmm(I(P(3, 2)), I(P(3, n)), I(P(n, 2)), 0.5, 1));
        yield return ("bmm", (k, I) => k.Bmm(I(P(2, 3, n)), I(P(2, n, 3))));
        yield return ("scaled_dot_product_attention", (k, I) => k.ScaledDotProductAttention(I(P(1, 2, 3, n)), I(P(1, 2, 4, n)), I(P(1, 2, 4, n)), null, true, null));
    }

    private static torch.Tensor[] Outputs(object result) => result switch
    {
        torch.Tensor tensor => new[] { tensor },
        ValueTuple<torch.Tensor, torch.Tensor> pair => new[] { pair.Item1, pair.Item2 },
        _ => throw new ArgumentException($"unexpected result {result.GetType()}", nameof(result)),
    };

    private IOperatorKernels Kernels(string backend) => backend == "cpu" ? CpuOperatorKernels.Instance : bridge.Operators;

    /// <summary>A 1-D buffer of <paramref name="count"/> elements, every byte the sentinel.</summary>
    private static torch.Tensor Filled(torch.ScalarType dtype, long count)
    {
        torch.Tensor buffer = torch.empty(new[] { count }, dtype);
        new Span<byte>(KernelArguments.Data(buffer), checked((int)(count * buffer.element_size()))).Fill(Sentinel);
        return buffer;
    }

    /// <summary><paramref name="values"/> copied into a contiguous view with <see cref="Guard"/> sentinel elements on each side.</summary>
    private static (torch.Tensor Buffer, torch.Tensor View) Guarded(torch.Tensor values)
    {
        long count = values.numel();
        torch.Tensor buffer = Filled(values.dtype, count + 2 * Guard);
        torch.Tensor view = buffer.narrow(0, Guard, count).view(values.shape);
        view.copy_(values);
        return (buffer, view);
    }

    private static void AssertGuards(torch.Tensor buffer, string what)
    {
        long count = buffer.numel();
        byte[] head = Bits(buffer.narrow(0, 0, Guard)), tail = Bits(buffer.narrow(0, count - Guard, Guard));
        Assert.True(head.All(b => b == Sentinel), $"{what}: a guard element before the tensor was written.");
        Assert.True(tail.All(b => b == Sentinel), $"{what}: a guard element after the tensor was written.");
    }

    private static bool Shares(torch.Tensor output, torch.Tensor buffer)
    {
        if (output.numel() == 0)
        {
            return false;
        }

        byte* o = (byte*)KernelArguments.Data(output), b = (byte*)KernelArguments.Data(buffer);
        long ob = output.numel() * output.element_size(), bb = buffer.numel() * buffer.element_size();
        return o < b + bb && b < o + ob;
    }

    /// <summary>Native memory: 256 sentinel guard bytes, then <c>offset</c> more, the data, and 256 guard bytes; 64-byte aligned base.</summary>
    private sealed class NativeGuarded : IDisposable
    {
        private const int GuardBytes = 256;
        private readonly byte* block;
        private readonly long total;
        private readonly long length;
        private readonly int offset;

        public NativeGuarded(long length, int offset)
        {
            this.length = length;
            this.offset = offset;
            total = GuardBytes + offset + length + GuardBytes;
            block = (byte*)NativeMemory.AlignedAlloc((nuint)total, 64);
            new Span<byte>(block, GuardBytes + offset).Fill(Sentinel);
            NativeMemory.Fill(block + GuardBytes + offset, (nuint)length, 0);
            new Span<byte>(block + GuardBytes + offset + length, GuardBytes).Fill(Sentinel);
        }

        public byte* Data => block + GuardBytes + offset;

        /// <summary>Finite values in [-2, 2] of type <typeparamref name="T"/>.</summary>
        public void FillValues<T>(long count)
            where T : struct, IFloatLanes
        {
            float* values = stackalloc float[101];
            for (int i = 0; i < 101; i++)
            {
                values[i] = (i - 50) / 25f;
            }

            for (long i = 0; i < count; i += 101)
            {
                T.Narrow(values, Data + i * T.Size, (int)Math.Min(101, count - i));
            }
        }

        public void AssertGuards(string what)
        {
            bool head = new ReadOnlySpan<byte>(block, GuardBytes + offset).IndexOfAnyExcept(Sentinel) < 0;
            bool tail = new ReadOnlySpan<byte>(block + GuardBytes + offset + length, GuardBytes).IndexOfAnyExcept(Sentinel) < 0;
            Assert.True(head, $"{what}: a byte before the destination was written.");
            Assert.True(tail, $"{what}: a byte after the destination was written.");
        }

        public void Dispose() => NativeMemory.AlignedFree(block);
    }
}
