using System;
using System.Linq;
using GemsInjector.Kernels.Ilgpu;
using ILGPU;
using ILGPU.Runtime;
using ILGPU.Runtime.Cuda;
using Xunit;

namespace GemsInjector.Kernels.Ilgpu.Tests;

/// <summary>
/// The vectorised element-wise kernels (<see cref="VectorKernels"/>): aligned views take them, misaligned ones the scalar
/// kernels; both give the same bits, and every element matches float64. Lengths with tails of 0-3 elements.
/// </summary>
[Collection(SimulatorCollection.Name)]
public sealed class VectorTests : Half16TestBase
{
    public VectorTests(SimulatorFixture fixture)
        : base(fixture)
    {
    }

    public static TheoryData<int> Lengths() => new() { 4, 5, 6, 7, 8, 9, 14, 15, 16, 17, 18, 19, 23, 300, 301, 302 };

    [Fact]
    public void AlignmentIsReadFromTheViewAddress()
    {
        var buffer = Upload(new float[40]);
        int aligned = Enumerable.Range(0, 4).Count(o => IlgpuKernels.IsAligned(buffer.SubView(o, 8), 16));
        Assert.Equal(1, aligned); // one of four consecutive float offsets starts on 16 bytes
        var words = Upload(new ushort[40]);
        Assert.Equal(1, Enumerable.Range(0, 4).Count(o => IlgpuKernels.IsAligned(words.SubView(o, 8), 8)));
        Assert.True(IlgpuKernels.IsAligned(ArrayView<float>.Empty, 16));
    }

    [Theory]
    [MemberData(nameof(Lengths))]
    public void Float32AtEveryOffset(int n)
    {
        int seed = 9500 + n;
        var av = Random(seed, n);
        var bv = Random(seed + 1, n, 0.5f, 2f);
        av[n - 1] = float.NaN; // the last element may be in the tail
        for (int offset = 0; offset < 4; offset++)
        {
            var a = UploadAt(av, offset, 0f);
            var b = UploadAt(bv, offset, 1f);
            string at = $"offset {offset}, n {n}";
            Both(y => K.Add(a, b, 0.5f, y), n, av.Zip(bv, (x, z) => x + 0.5 * z).ToArray(), "add " + at, seed, offset);
            Both(y => K.Sub(a, b, 0.5f, y), n, av.Zip(bv, (x, z) => x - 0.5 * z).ToArray(), "sub " + at, seed, offset);
            Both(y => K.Mul(a, b, y), n, av.Zip(bv, (x, z) => (double)x * z).ToArray(), "mul " + at, seed, offset);
            Both(y => K.Div(a, b, y), n, av.Zip(bv, (x, z) => (double)x / z).ToArray(), "div " + at, seed, offset);
            Both(y => K.Silu(a, y), n, av.Select(x => x / (1 + Math.Exp(-x))).ToArray(), "silu " + at, seed, offset);
            Both(y => K.Exp(a, y), n, av.Select(x => Math.Exp(x)).ToArray(), "exp " + at, seed, offset, rtol: 2 * RtolF32);
            Both(y => K.Relu(a, y), n, av.Select(x => float.IsNaN(x) ? x : Math.Max(x, 0.0)).ToArray(), "relu " + at, seed, offset);
            Both(y => K.Rsqrt(b, y), n, bv.Select(x => 1 / Math.Sqrt(x)).ToArray(), "rsqrt " + at, seed, offset);
            Both(y => K.Neg(a, y), n, av.Select(x => -(double)x).ToArray(), "neg " + at, seed, offset);
        }
    }

    /// <summary>
    /// 16-bit binary ops and every activation: offsets 0-7 (one of them 16-byte aligned: the eight-element kernels; the
    /// others the scalar ones), tails of 0-7 elements, NaN, ±∞, ±0 and large magnitudes among the inputs.
    /// </summary>
    [Theory]
    [MemberData(nameof(Lengths))]
    public void SixteenBitAtEveryOffset(int n)
    {
        foreach (bool bf16 in new[] { false, true })
        {
            int seed = 9600 + n + (bf16 ? 1 : 0);
            var (a, av) = Random16(seed, n, bf16);
            var (b, bv) = Random16(seed + 1, n, bf16, 0.5f, 2f);
            float[] specials = { float.PositiveInfinity, float.NegativeInfinity, -0f, 60f, -60f, bf16 ? 1e30f : 60000f, bf16 ? -1e30f : -60000f, 1e-3f };
            for (int i = 0; i < specials.Length && i < n - 1; i++)
            {
                a[i * 37 % (n - 1)] = To16(new[] { specials[i] }, bf16)[0];
            }

            a[n - 1] = NaN16(bf16);
            av = ToFloat(a, bf16);
            bool vectorPathSeen = false;
            for (int offset = 0; offset < 8; offset++)
            {
                var da = UploadAt(a, offset, (ushort)0);
                var db = UploadAt(b, offset, (ushort)0);
                vectorPathSeen |= IlgpuKernels.IsAligned(da, 16) && IlgpuKernels.IsAligned(db, 16);
                string at = $"offset {offset}, n {n}";
                Both16(y => K.Add(da, db, 0.5f, y, F(bf16)), n, bf16, av.Zip(bv, (x, z) => x + 0.5 * z).ToArray(), "add " + at, seed, offset);
                Both16(y => K.Sub(da, db, 0.5f, y, F(bf16)), n, bf16, av.Zip(bv, (x, z) => x - 0.5 * z).ToArray(), "sub " + at, seed, offset);
                Both16(y => K.Mul(da, db, y, F(bf16)), n, bf16, av.Zip(bv, (x, z) => (double)x * z).ToArray(), "mul " + at, seed, offset);
                Both16(y => K.Div(da, db, y, F(bf16)), n, bf16, av.Zip(bv, (x, z) => (double)x / z).ToArray(), "div " + at, seed, offset);
                foreach (var (op, f) in ActivationReferences)
                {
                    Both16(y => K.Activation(da, y, op, F(bf16)), n, bf16, av.Select(v => f(v)).ToArray(), $"{op} {at}", seed, offset);
                }

                Both16(y => K.Rsqrt(db, y, F(bf16)), n, bf16, bv.Select(x => 1 / Math.Sqrt(x)).ToArray(), "rsqrt " + at, seed, offset);
            }

            Assert.True(n < 8 || vectorPathSeen, "no offset was 16-byte aligned: the eight-element kernels were not tested");
        }
    }

    /// <summary>The activations and their float64 references (NaN and ±∞ follow the formulas, as torch's do).</summary>
    private static readonly (HalfActivation Op, Func<double, double> F)[] ActivationReferences =
    {
        (HalfActivation.Silu, v => v / (1 + Math.Exp(-v))),
        (HalfActivation.Gelu, v => 0.5 * v * (1 + ElementwiseTests.Erf(v / Math.Sqrt(2)))),
        (HalfActivation.GeluTanh, v => 0.5 * v * (1 + Math.Tanh(Math.Sqrt(2 / Math.PI) * (v + 0.044715 * v * v * v)))),
        (HalfActivation.Relu, v => double.IsNaN(v) ? v : Math.Max(v, 0)),
        (HalfActivation.Sigmoid, v => 1 / (1 + Math.Exp(-v))),
        (HalfActivation.Tanh, Math.Tanh),
        (HalfActivation.Exp, Math.Exp),
        (HalfActivation.Neg, v => -v),
    };

    /// <summary>Gated products: d a multiple of 4 takes the vector kernels when aligned; other d and offsets the scalar ones.</summary>
    [Theory]
    [InlineData(1, 4)]
    [InlineData(3, 8)]
    [InlineData(2, 16)]
    [InlineData(5, 12)]
    [InlineData(3, 6)]
    [InlineData(2, 17)]
    [InlineData(1, 1)]
    public void GatedAtEveryOffset(int rows, int d)
    {
        int seed = 9900 + rows * 100 + d;
        var refs = new (HalfActivation Op, Func<double, double> F)[]
        {
            (HalfActivation.Silu, v => v / (1 + Math.Exp(-v))),
            (HalfActivation.Gelu, v => 0.5 * v * (1 + ElementwiseTests.Erf(v / Math.Sqrt(2)))),
            (HalfActivation.GeluTanh, v => 0.5 * v * (1 + Math.Tanh(Math.Sqrt(2 / Math.PI) * (v + 0.044715 * v * v * v)))),
        };
        double[] Expected(float[] x, Func<double, double> f) =>
            Enumerable.Range(0, rows * d).Select(i => f(x[i / d * 2 * d + i % d]) * x[i / d * 2 * d + d + i % d]).ToArray();
        var xv = Random(seed, 2 * rows * d);
        xv[d] = float.NaN; // row 0's first "up" element
        bool vectorPathSeen = false;
        for (int offset = 0; offset < 8; offset++)
        {
            string at = $"rows {rows}, d {d}, offset {offset}";
            if (offset < 4)
            {
                var x = UploadAt(xv, offset, 0f);
                Both(y => K.SiluAndMul(x, y, rows, d), rows * d, Expected(xv, refs[0].F), "silu_and_mul " + at, seed, offset);
                Both(y => K.GeluAndMul(x, y, rows, d), rows * d, Expected(xv, refs[1].F), "gelu_and_mul " + at, seed, offset);
                Both(y => K.GeluAndMul(x, y, rows, d, GeluApproximation.Tanh), rows * d, Expected(xv, refs[2].F), "gelu_tanh_and_mul " + at, seed, offset);
            }

            foreach (bool bf16 in new[] { false, true })
            {
                var (h, hv) = Random16(seed + (bf16 ? 1 : 2), 2 * rows * d, bf16);
                h[d] = NaN16(bf16);
                if (rows * d > 2)
                {
                    h[(2 * rows * d) - d - 1] = To16(new[] { float.NegativeInfinity }, bf16)[0]; // the last row's last gate
                    h[1 % d] = To16(new[] { 40f }, bf16)[0];
                }

                hv = ToFloat(h, bf16);
                var dh = UploadAt(h, offset, (ushort)0);
                vectorPathSeen |= IlgpuKernels.IsAligned(dh, 16);
                foreach (var (op, f) in refs)
                {
                    Both16(y => K.GatedAndMul(dh, y, rows, d, op, F(bf16)), rows * d, bf16, Expected(hv, f), $"{op}_and_mul {at}", seed, offset);
                }
            }
        }

        Assert.True(vectorPathSeen, "no offset was 16-byte aligned");
    }

    /// <summary>
    /// Lengths past one element per thread of the whole grid (the simulator launches at most 64 groups of 16), so each
    /// thread takes several grid-stride steps, including the unary kernels' second element per step and its edge.
    /// </summary>
    [Theory]
    [InlineData(20011)]
    [InlineData(40963)]
    public void LengthsBeyondOneStepPerThread(int n)
    {
        int seed = 9800 + n;
        var xv = Random(seed, n, -12f, 12f);
        xv[n / 2] = float.NaN;
        var x = UploadAt(xv, 0, 0f);
        Both(y => K.Silu(x, y), n, xv.Select(v => v / (1 + Math.Exp(-v))).ToArray(), $"silu n {n}", seed, 0);
        Both(y => K.Add(x, x, 0.5f, y), n, xv.Select(v => 1.5 * v).ToArray(), $"add n {n}", seed, 0);
        foreach (bool bf16 in new[] { false, true })
        {
            var (h, hv) = Random16(seed + (bf16 ? 1 : 2), n, bf16, -8f, 8f);
            h[n / 3] = NaN16(bf16);
            hv[n / 3] = float.NaN;
            var dh = UploadAt(h, 0, (ushort)0);
            foreach (var (op, f) in ActivationReferences.Take(3))
            {
                Both16(y => K.Activation(dh, y, op, F(bf16)), n, bf16, hv.Select(v => f(v)).ToArray(), $"{op} n {n}", seed, 0);
            }

            Both16(y => K.Mul(dh, dh, y, F(bf16)), n, bf16, hv.Select(v => (double)v * v).ToArray(), $"mul n {n}", seed, 0);
            int rows = 5, d = n / 10 / 8 * 8;
            Both16(y => K.GatedAndMul(dh.SubView(0, 2 * rows * d), y, rows, d, HalfActivation.Silu, F(bf16)), rows * d, bf16,
                Enumerable.Range(0, rows * d).Select(i => ActivationReferences[0].F(hv[i / d * 2 * d + i % d]) * hv[i / d * 2 * d + d + i % d]).ToArray(),
                $"silu_and_mul {rows}x{d}", seed, 0);
        }
    }

    [Fact]
    public void InPlaceAndMixedAlignment()
    {
        const int N = 19;
        var av = Random(9700, N);
        var bv = Random(9701, N);
        var a = UploadAt(av, 0, 0f);
        var b = UploadAt(bv, 0, 0f);
        K.Add(a, b, 1f, a); // y is a
        AssertClose(Download(a), av.Zip(bv, (x, z) => (double)x + z).ToArray(), RtolF32, Atol, "in-place add", 9700);

        // a aligned, y misaligned: the scalar kernel
        var a2 = UploadAt(av, 0, 0f);
        for (int offset = 0; offset < 4; offset++)
        {
            var y = UploadAt(Enumerable.Repeat(float.NaN, N).ToArray(), offset, float.NaN);
            K.Mul(a2, a2, y);
            AssertClose(Download(y), av.Select(x => (double)x * x).ToArray(), RtolF32, Atol, $"mul, output offset {offset}", 9700);
        }
    }

    [Fact]
    public void AlignedCallsReachTheVectorKernels()
    {
        var aligned = Upload(new float[16]);
        var first = Enumerable.Range(0, 4).First(o => IlgpuKernels.IsAligned(aligned.SubView(o, 8), 16));
        var view = aligned.SubView(first, 8);
        K.Silu(view, view);
        K.Add(view, view, 1f, view);
        var h = Upload(new ushort[32]);
        var hv = h.SubView(Enumerable.Range(0, 8).First(o => IlgpuKernels.IsAligned(h.SubView(o, 16), 16)), 16);
        K.Mul(hv, hv, hv, HalfFormat.BFloat16);
        K.Activation(hv, hv, HalfActivation.Exp, HalfFormat.Float16);
        K.SiluAndMul(view, view.SubView(0, 4), 1, 4);
        K.GatedAndMul(hv, hv.SubView(0, 8), 1, 8, HalfActivation.Silu, HalfFormat.BFloat16);
        Device.Synchronize();
        foreach (var name in new[] { "UnaryF32x4<SiluActivation>", nameof(VectorKernels.BinaryF32x4), "Binary16x8<MulOp,BFloat16Storage>",
            "Unary16x8<ExpActivation,Float16Storage>", "GatedF32x4<SiluActivation>", "Gated16x8<SiluActivation,BFloat16Storage>" })
        {
            Assert.True(Device.CompileTimes.ContainsKey(name), $"{name} was never compiled");
        }
    }

    /// <summary>Every instantiation the facade can load is listed for the PTX compile test (so each compiles for SM_90 in CI).</summary>
    [Fact]
    public void EveryInstantiationTheFacadeLoadsIsListed()
    {
        var listed = VectorKernelInstantiations().Select(Describe).ToHashSet();
        string Name(string kernel, params Type[] types) => $"{kernel}<{string.Join(",", types.Select(t => t.Name))}>";
        var wanted = IlgpuKernels.ActivationTypes.Select(a => Name(nameof(VectorKernels.UnaryF32x4), a))
            .Concat(IlgpuKernels.ActivationTypes.Take(3).Select(a => Name(nameof(VectorKernels.GatedF32x4), a)))
            .Concat(IlgpuKernels.StorageTypes.SelectMany(s => IlgpuKernels.ActivationTypes.Select(a => Name(nameof(VectorKernels.Unary16x8), a, s))))
            .Concat(IlgpuKernels.StorageTypes.SelectMany(s => IlgpuKernels.ActivationTypes.Take(3).Select(a => Name(nameof(VectorKernels.Gated16x8), a, s))))
            .Concat(IlgpuKernels.StorageTypes.SelectMany(s => IlgpuKernels.BinaryOpTypes.Select(o => Name(nameof(VectorKernels.Binary16x8), o, s))))
            .ToList();
        Assert.Equal(9 + 3 + 18 + 6 + 6, wanted.Count);
        Assert.Equal(string.Empty, string.Join(", ", wanted.Where(w => !listed.Contains(w))));
    }

    /// <summary>Every instantiation of every vector kernel moves 16 bytes per load and store in its PTX, and uses no local memory.</summary>
    [Fact]
    public void PtxUsesWideLoadsAndStores()
    {
        foreach (var method in VectorKernelInstantiations())
        {
            string ptx = Ptx(method);
            string name = Describe(method);
            Assert.True(ptx.Contains("ld.global.v4.f32", StringComparison.Ordinal) || ptx.Contains("ld.global.v4.b32", StringComparison.Ordinal)
                || ptx.Contains("ld.global.v4.u32", StringComparison.Ordinal), $"{name}: no 16-byte load in\n{ptx}");
            Assert.True(ptx.Contains("st.global.v4.f32", StringComparison.Ordinal) || ptx.Contains("st.global.v4.b32", StringComparison.Ordinal)
                || ptx.Contains("st.global.v4.u32", StringComparison.Ordinal), $"{name}: no 16-byte store in\n{ptx}");
            PtxLocalSlots.AssertNone(ptx, name);
        }
    }

    /// <summary>
    /// On CUDA the activations and exp take the special-function unit (ex2.approx; a reciprocal instead of a division),
    /// and float16 values are converted by cvt. Where the reciprocal's argument is never below 1 (1 + e^{-x} in silu,
    /// sigmoid and gelu-tanh; the 16-bit gelu and tanh) it is rsqrt.approx squared; float32 gelu (erf) and tanh keep the
    /// correctly rounded rcp.rn. The float → float16 store keeps its software rounding behind a constant predicate
    /// (ILGPU folds CudaAsm.IsSupported only in the back end; ptxas drops the branch); the simulator runs it.
    /// </summary>
    [Fact]
    public void PtxUsesSpecialFunctionsAndHardwareConversions()
    {
        string Of(string kernel, params Type[] types) => Ptx(typeof(VectorKernels).GetMethod(kernel)!.MakeGenericMethod(types));
        string siluF16 = Of(nameof(VectorKernels.Unary16x8), typeof(SiluActivation), typeof(Float16Storage));
        Assert.Contains("cvt.f32.f16", siluF16, StringComparison.Ordinal);
        Assert.Contains("cvt.rn.f16.f32", siluF16, StringComparison.Ordinal);
        foreach (var (kernel, types, reciprocal) in new (string, Type[], string)[]
        {
            (nameof(VectorKernels.Unary16x8), [typeof(SiluActivation), typeof(BFloat16Storage)], "rsqrt.approx.f32"),
            (nameof(VectorKernels.Gated16x8), [typeof(SiluActivation), typeof(Float16Storage)], "rsqrt.approx.f32"),
            (nameof(VectorKernels.UnaryF32x4), [typeof(SiluActivation)], "rsqrt.approx.f32"),
            (nameof(VectorKernels.UnaryF32x4), [typeof(SigmoidActivation)], "rsqrt.approx.f32"),
            (nameof(VectorKernels.UnaryF32x4), [typeof(GeluTanhActivation)], "rsqrt.approx.f32"),
            (nameof(VectorKernels.UnaryF32x4), [typeof(GeluActivation)], "rcp.rn.f32"),
            (nameof(VectorKernels.UnaryF32x4), [typeof(TanhActivation)], "rcp.rn.f32"),
            (nameof(VectorKernels.Unary16x8), [typeof(GeluActivation), typeof(Float16Storage)], "rsqrt.approx.f32"),
            (nameof(VectorKernels.Unary16x8), [typeof(GeluActivation), typeof(BFloat16Storage)], "rsqrt.approx.f32"),
            (nameof(VectorKernels.Unary16x8), [typeof(TanhActivation), typeof(Float16Storage)], "rsqrt.approx.f32"),
            (nameof(VectorKernels.Unary16x8), [typeof(TanhActivation), typeof(BFloat16Storage)], "rsqrt.approx.f32"),
        })
        {
            string ptx = Of(kernel, types);
            string name = $"{kernel}<{string.Join(",", types.Select(t => t.Name))}>";
            Assert.True(ptx.Contains("ex2.approx", StringComparison.Ordinal) && ptx.Contains(reciprocal, StringComparison.Ordinal), $"{name}: no ex2.approx / {reciprocal}");
            Assert.False(ptx.Contains("div.rn.f32", StringComparison.Ordinal), $"{name}: a division left");
            if (reciprocal != "rcp.rn.f32")
            {
                Assert.False(ptx.Contains("rcp.rn.f32", StringComparison.Ordinal), $"{name}: rcp.rn left");
            }
        }

        string exp = Of(nameof(VectorKernels.UnaryF32x4), typeof(ExpActivation));
        Assert.Contains("ex2.approx", exp, StringComparison.Ordinal);
        Assert.DoesNotContain("0f3AB743CE", exp, StringComparison.Ordinal); // a coefficient of the Cephes polynomial
    }

    private static System.Collections.Generic.IEnumerable<System.Reflection.MethodInfo> VectorKernelInstantiations() =>
        PtxCompileTests.KernelMethods().Where(m => m.DeclaringType == typeof(VectorKernels));

    private static string Describe(System.Reflection.MethodInfo method) =>
        method.Name + (method.IsGenericMethod ? "<" + string.Join(",", method.GetGenericArguments().Select(a => a.Name)) + ">" : string.Empty);

    private static string Ptx(System.Reflection.MethodInfo method)
    {
        return Sm90Ptx.Of(method);
    }

    /// <summary>Runs <paramref name="launch"/> with vectorisation on and off; both outputs (NaN-poisoned) must match bit for bit and match float64.</summary>
    private void Both(Action<ArrayView<float>> launch, int n, double[] expected, string what, int seed, int offset, double rtol = RtolF32)
    {
        var vectorised = UploadAt(Enumerable.Repeat(float.NaN, n).ToArray(), offset, float.NaN);
        var scalar = UploadAt(Enumerable.Repeat(float.NaN, n).ToArray(), offset, float.NaN);
        launch(vectorised);
        K.Vectorize = false;
        try
        {
            launch(scalar);
        }
        finally
        {
            K.Vectorize = true;
        }

        var v = Download(vectorised);
        var s = Download(scalar);
        AssertClose(v, expected, rtol, Atol, what, seed);
        Assert.Equal(s.Select(BitConverter.SingleToInt32Bits), v.Select(BitConverter.SingleToInt32Bits));
    }

    private void Both16(Action<ArrayView<ushort>> launch, int n, bool bf16, double[] expected, string what, int seed, int offset)
    {
        var vectorised = UploadAt(Enumerable.Repeat(NaN16(bf16), n).ToArray(), offset, NaN16(bf16));
        var scalar = UploadAt(Enumerable.Repeat(NaN16(bf16), n).ToArray(), offset, NaN16(bf16));
        launch(vectorised);
        K.Vectorize = false;
        try
        {
            launch(scalar);
        }
        finally
        {
            K.Vectorize = true;
        }

        var v = Download(vectorised);
        Assert.Equal(Download(scalar), v);

        // The reference rounded to the output's format first (as FlagGems compares with ref.to(dtype)): a float16 result
        // past 65504 is ∞ in both.
        var rounded = ToFloat(To16(expected.Select(e => (float)e).ToArray(), bf16), bf16).Select(e => (double)e).ToArray();
        AssertClose(ToFloat(v, bf16), rounded, Rtol(bf16), Atol, $"{what} ({F(bf16)})", seed);
    }
}
