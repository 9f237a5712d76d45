using System;
using System.Collections.Generic;
using System.Linq;
using GemsInjector.TestSupport;
using TorchSharp;
using Xunit;
using static GemsInjector.Kernels.Tests.HostileInput;

namespace GemsInjector.Kernels.Tests;

/// <summary>
/// Hostile inputs for each of the 30 operators, on the CPU kernels and on the ILGPU bridge (simulator device): mismatched shapes and
/// dtypes, integer and float64 tensors, tensors on the "meta" device, null arguments, aliased in-place arguments, zero-size tensors,
/// out-of-range indices, k and dimensions, NaN and ±Inf, non-contiguous views. Each case is named "operator · category · detail"
/// and expects either a clear refusal (<see cref="HostileInput.Refuses"/>) or the reference's result
/// (<see cref="HostileInput.MatchesReference"/>); a crash fails the whole run, an unexpected exception type fails the case.
/// </summary>
public sealed class BadInputTests : IClassFixture<HostileBridgeFixture>
{
    private static readonly torch.ScalarType[] Floats = KernelTestData.FloatTypes;

    private static readonly Dictionary<string, Action<IOperatorKernels>> Cases = Build();
    private readonly HostileBridgeFixture bridge;

    public BadInputTests(HostileBridgeFixture fixture) => bridge = fixture;

    public static TheoryData<string> CaseNames() => new(Cases.Keys.OrderBy(name => name, StringComparer.Ordinal));

    [Theory]
    [MemberData(nameof(CaseNames))]
    public void CpuKernels(string name) => Run(name, CpuOperatorKernels.Instance);

    [Theory]
    [MemberData(nameof(CaseNames))]
    public void IlgpuBridge(string name) => Run(name, bridge.Operators);

    [Fact]
    public void EveryOperatorHasCasesInEveryApplicableCategory()
    {
        string[] operators = Cases.Keys.Select(name => name.Split(" · ")[0]).Distinct().ToArray();
        Assert.Equal(30, operators.Length);
        foreach (string op in operators)
        {
            string[] categories = Cases.Keys.Where(name => name.StartsWith(op + " · ", StringComparison.Ordinal)).Select(name => name.Split(" · ")[1]).Distinct().ToArray();
            foreach (string required in new[] { "dtype", "device", "null", "empty", "nan-inf", "non-contiguous" })
            {
                Assert.True(categories.Contains(required), $"{op} has no '{required}' case.");
            }
        }
    }

    private static void Run(string name, IOperatorKernels kernels)
    {
        using var scope = torch.NewDisposeScope();
        Cases[name](kernels);
    }

    private static Dictionary<string, Action<IOperatorKernels>> Build()
    {
        var cases = new Dictionary<string, Action<IOperatorKernels>>(StringComparer.Ordinal);
        void Add(string op, string category, string detail, Action<IOperatorKernels> check) => cases.Add($"{op} · {category} · {detail}", check);

        // ---- binary elementwise: add, sub, mul, div ----
        var binary = new (string Op, Func<IOperatorKernels, torch.Tensor, torch.Tensor, torch.Tensor> Ours, Func<torch.Tensor, torch.Tensor, torch.Tensor> Torch)[]
        {
            ("add", (k, a, b) => k.Add(a, b, 0.5), (a, b) => a.add(b, HeldScalars.Of(0.5))),
            ("sub", (k, a, b) => k.Sub(a, b, 0.5), (a, b) => a.add(b, HeldScalars.Of(-0.5))),
            ("mul", (k, a, b) => k.Mul(a, b), (a, b) => a.mul(b)),
            ("div", (k, a, b) => k.Div(a, b), (a, b) => a.div(b)),
        };
        foreach (var (op, ours, reference) in binary)
        {
            Add(op, "shape", "[2, 3] with [3, 2]", k => Refuses(() => ours(k, Pattern(F32, 2, 3), Pattern(F32, 3, 2)), "other", "[3, 2]", "[2, 3]"));
            Add(op, "shape", "broadcast [4, 1] with [3]", k => Each(Floats, dt =>
            {
                torch.Tensor a = Pattern(dt, 4, 1), b = Pattern(dt, 3).add(HeldScalars.Of(3), HeldScalars.One);
                MatchesReference(() => ours(k, a, b), () => reference(Wide(a), Wide(b)), dt);
            }));
            Add(op, "dtype", "float32 with float16", k => Refuses(() => ours(k, Pattern(F32, 2, 3), Pattern(F16, 2, 3)), "other", "Float16", "Float32"));
            Add(op, "dtype", "int32 tensors", k => Refuses(() => ours(k, torch.ones(2, 3, torch.ScalarType.Int32), torch.ones(2, 3, torch.ScalarType.Int32)), "self", "Int32"));
            Add(op, "device", "meta self", k => Refuses(() => ours(k, Meta(F32, 2, 3), Pattern(F32, 2, 3)), "self", "meta"));
            Add(op, "device", "meta other", k => Refuses(() => ours(k, Pattern(F32, 2, 3), Meta(F32, 2, 3)), "other", "meta"));
            Add(op, "null", "other", k => Refuses(() => ours(k, Pattern(F32, 2, 3), null!), "other"));
            Add(op, "empty", "[0, 3], [2, 0] and broadcast [0, 3] with [3]", k => Each(Floats, dt =>
            {
                foreach (var (x, y) in new[] { (new long[] { 0, 3 }, new long[] { 0, 3 }), (new long[] { 2, 0 }, new long[] { 1, 0 }), (new long[] { 0, 3 }, new long[] { 3 }) })
                {
                    torch.Tensor a = Pattern(dt, x), b = Pattern(dt, y);
                    MatchesReference(() => ours(k, a, b), () => reference(Wide(a), Wide(b)), dt);
                }
            }));
            Add(op, "alias", "self and other the same tensor (allowed: the output is fresh)", k => Each(Floats, dt =>
            {
                torch.Tensor a = Special(dt, 1, 3, 7);
                byte[] before = Bits(a);
                MatchesReference(() => ours(k, a, a), () => reference(Wide(a), Wide(a)), dt);
                Assert.Equal(before, Bits(a));
            }));
            Add(op, "nan-inf", "every pair of NaN, ±Inf, ±0 and finite values", k => Each(Floats, dt =>
            {
                torch.Tensor a = Special(dt, 0, 12, 12), b = Special(dt, 0, 12, 1).expand(12, 12).contiguous();
                MatchesReference(() => ours(k, a, b), () => reference(Wide(a), Wide(b)), dt);
            }));
            Add(op, "non-contiguous", "transposed self, strided other", k => Each(Floats, dt =>
            {
                torch.Tensor a = Pattern(dt, 5, 3).t(), b = Pattern(dt, 3, 10).slice(1, 0, 10, 2).add(HeldScalars.Of(3), HeldScalars.One);
                MatchesReference(() => ours(k, a, b), () => reference(Wide(a), Wide(b)), dt);
            }));
        }

        // ---- unary elementwise ----
        var unary = new (string Op, Func<IOperatorKernels, torch.Tensor, torch.Tensor> Ours, Func<torch.Tensor, torch.Tensor> Torch)[]
        {
            ("neg", (k, x) => k.Neg(x), x => x.neg()),
            ("exp", (k, x) => k.Exp(x), x => x.exp()),
            ("rsqrt", (k, x) => k.Rsqrt(x), x => x.rsqrt()),
            ("relu", (k, x) => k.Relu(x), x => x.relu()),
            ("sigmoid", (k, x) => k.Sigmoid(x), x => x.sigmoid()),
            ("tanh", (k, x) => k.Tanh(x), x => x.tanh()),
            ("silu", (k, x) => k.Silu(x), x => torch.nn.functional.silu(x)),
            ("gelu", (k, x) => k.Gelu(x, GeluApproximation.None), x => torch.nn.functional.gelu(x)),
        };
        foreach (var (op, ours, reference) in unary)
        {
            Add(op, "shape", "0-dimensional input", k => Each(Floats, dt =>
            {
                torch.Tensor x = Pattern(dt, 1).reshape(Array.Empty<long>()).add(HeldScalars.Of(3), HeldScalars.One);
                MatchesReference(() => ours(k, x), () => reference(Wide(x)), dt);
            }));
            Add(op, "dtype", "int32 input", k => Refuses(() => ours(k, torch.ones(2, 3, torch.ScalarType.Int32)), "input", "Int32"));
            Add(op, "dtype", "float64 input", k => Refuses(() => ours(k, Pattern(F64, 2, 3)), "input", "Float64"));
            Add(op, "device", "meta input", k => Refuses(() => ours(k, Meta(F16, 2, 3)), "input", "meta"));
            Add(op, "null", "input", k => Refuses(() => ours(k, null!), "input"));
            Add(op, "empty", "[0] and [3, 0, 2]", k => Each(Floats, dt =>
            {
                foreach (long[] shape in new[] { new long[] { 0 }, new long[] { 3, 0, 2 } })
                {
                    torch.Tensor x = Pattern(dt, shape);
                    MatchesReference(() => ours(k, x), () => reference(Wide(x)), dt);
                }
            }));
            Add(op, "nan-inf", "NaN, ±Inf, ±0 and finite values", k => Each(Floats, dt =>
            {
                torch.Tensor x = Special(dt, 0, 3, 13);
                MatchesReference(() => ours(k, x), () => reference(Wide(x)), dt);
            }));
            Add(op, "non-contiguous", "transposed and strided", k => Each(Floats, dt =>
            {
                torch.Tensor x = Pattern(dt, 7, 5).t(), y = Pattern(dt, 4, 40).slice(1, 1, 40, 3);
                MatchesReference(() => ours(k, x), () => reference(Wide(x)), dt);
                MatchesReference(() => ours(k, y), () => reference(Wide(y)), dt);
            }));
        }

        Add("gelu", "nan-inf", "tanh approximation", k => Each(Floats, dt =>
        {
            torch.Tensor x = Special(dt, 0, 3, 13);
            MatchesReference(() => k.Gelu(x, GeluApproximation.Tanh), () => torch.nn.functional.gelu(Wide(x), TorchSharp.Modules.GELU.Approximate.tanh), dt);
        }));
        Add("gelu", "argument", "undefined approximation", k => Refuses(() => k.Gelu(Pattern(F32, 3), (GeluApproximation)7), "approximate", "7"));

        // ---- gated activations ----
        var gated = new (string Op, Func<IOperatorKernels, torch.Tensor, torch.Tensor> Ours, Func<torch.Tensor, torch.Tensor> Act)[]
        {
            ("silu_and_mul", (k, x) => k.SiluAndMul(x), x => torch.nn.functional.silu(x)),
            ("gelu_and_mul", (k, x) => k.GeluAndMul(x, GeluApproximation.None), x => torch.nn.functional.gelu(x)),
        };
        foreach (var (op, ours, act) in gated)
        {
            torch.Tensor Reference(torch.Tensor x)
            {
                long half = x.shape[^1] / 2;
                torch.Tensor w = Wide(x);
                return act(w.narrow(-1, 0, half)).mul(w.narrow(-1, half, half));
            }

            Add(op, "shape", "odd last dimension [2, 5]", k => Refuses(() => ours(k, Pattern(F32, 2, 5)), "input", "[2, 5]", "even"));
            Add(op, "shape", "0-dimensional input", k => Refuses(() => ours(k, Pattern(F32, 1).reshape(Array.Empty<long>())), "input", "[]"));
            Add(op, "dtype", "int32 input", k => Refuses(() => ours(k, torch.ones(2, 4, torch.ScalarType.Int32)), "input", "Int32"));
            Add(op, "device", "meta input", k => Refuses(() => ours(k, Meta(BF16, 2, 4)), "input", "meta"));
            Add(op, "null", "input", k => Refuses(() => ours(k, null!), "input"));
            Add(op, "empty", "[0, 6] and [3, 0]", k => Each(Floats, dt =>
            {
                foreach (long[] shape in new[] { new long[] { 0, 6 }, new long[] { 3, 0 } })
                {
                    torch.Tensor x = Pattern(dt, shape);
                    MatchesReference(() => ours(k, x), () => Reference(x), dt);
                }
            }));
            Add(op, "nan-inf", "NaN and ±Inf in gate and up halves", k => Each(Floats, dt =>
            {
                torch.Tensor x = Special(dt, 0, 6, 24);
                MatchesReference(() => ours(k, x), () => Reference(x), dt);
            }));
            Add(op, "non-contiguous", "transposed input", k => Each(Floats, dt =>
            {
                torch.Tensor x = Pattern(dt, 10, 3).t();
                MatchesReference(() => ours(k, x), () => Reference(x), dt);
            }));
        }

        Add("gelu_and_mul", "argument", "undefined approximation", k => Refuses(() => k.GeluAndMul(Pattern(F32, 2, 4), (GeluApproximation)(-1)), "approximate", "-1"));

        // ---- softmax, log_softmax ----
        var softmax = new (string Op, Func<IOperatorKernels, torch.Tensor, long, torch.Tensor> Ours, Func<torch.Tensor, long, torch.Tensor> Torch)[]
        {
            ("softmax", (k, x, d) => k.Softmax(x, d), (x, d) => torch.nn.functional.softmax(x, d)),
            ("log_softmax", (k, x, d) => k.LogSoftmax(x, d), (x, d) => torch.nn.functional.log_softmax(x, d)),
        };
        foreach (var (op, ours, reference) in softmax)
        {
            Add(op, "index", "dim 2 and -3 of a 2-D input", k =>
            {
                Refuses(() => ours(k, Pattern(F32, 2, 3), 2), "dim", "2", "[2, 3]");
                Refuses(() => ours(k, Pattern(F32, 2, 3), -3), "dim", "-3", "[2, 3]");
            });
            Add(op, "dtype", "int64 input", k => Refuses(() => ours(k, torch.ones(2, 3, torch.ScalarType.Int64), -1), "input", "Int64"));
            Add(op, "device", "meta input", k => Refuses(() => ours(k, Meta(F32, 2, 3), -1), "input", "meta"));
            Add(op, "null", "input", k => Refuses(() => ours(k, null!, -1), "input"));
            Add(op, "empty", "[0, 4], [4, 0] along either dim, and a 0-dimensional input", k => Each(Floats, dt =>
            {
                foreach (var (shape, dim) in new[] { (new long[] { 0, 4 }, -1L), (new long[] { 4, 0 }, -1L), (new long[] { 4, 0 }, 0L), (Array.Empty<long>(), 0L), (Array.Empty<long>(), -1L) })
                {
                    torch.Tensor x = Pattern(dt, shape.Length == 0 ? new long[] { 1 } : shape).reshape(shape);
                    MatchesReference(() => ours(k, x, dim), () => reference(Wide(x), dim), dt);
                }
            }));
            Add(op, "nan-inf", "rows with NaN, +Inf, all -Inf, along the last and the first dim", k => Each(Floats, dt =>
            {
                torch.Tensor x = Special(dt, 0, 5, 12);
                torch.Tensor minusInf = torch.full(new long[] { 2, 12 }, HeldScalars.Of(double.NegativeInfinity), dt);
                torch.Tensor rows = torch.cat(new[] { x, minusInf, Pattern(dt, 1, 12) }, 0);
                MatchesReference(() => ours(k, rows, -1), () => reference(Wide(rows), -1), dt);
                MatchesReference(() => ours(k, rows, 0), () => reference(Wide(rows), 0), dt);
            }));
            Add(op, "non-contiguous", "transposed input", k => Each(Floats, dt =>
            {
                torch.Tensor x = Pattern(dt, 9, 4).t();
                MatchesReference(() => ours(k, x, -1), () => reference(Wide(x), -1), dt);
                MatchesReference(() => ours(k, x, 0), () => reference(Wide(x), 0), dt);
            }));
        }

        // ---- rms_norm ----
        torch.Tensor RmsReference(torch.Tensor x, torch.Tensor w, double eps)
        {
            torch.Tensor wx = Wide(x);
            return wx.mul(wx.pow(HeldScalars.Of(2)).mean(new long[] { -1 }, keepdim: true).add(HeldScalars.Of(eps), HeldScalars.One).rsqrt()).mul(Wide(w));
        }

        Add("rms_norm", "shape", "weight [5] for input [2, 4]", k => Refuses(() => k.RmsNorm(Pattern(F32, 2, 4), Pattern(F32, 5), 1e-6), "weight", "[5]", "[2, 4]"));
        Add("rms_norm", "shape", "weight [1, 4]", k => Refuses(() => k.RmsNorm(Pattern(F32, 2, 4), Pattern(F32, 1, 4), 1e-6), "weight", "[1, 4]", "[2, 4]"));
        Add("rms_norm", "shape", "0-dimensional input", k => Refuses(() => k.RmsNorm(Pattern(F32, 1).reshape(Array.Empty<long>()), Pattern(F32, 1), 1e-6), "input", "0-dimensional"));
        Add("rms_norm", "dtype", "float16 weight for float32 input", k => Refuses(() => k.RmsNorm(Pattern(F32, 2, 4), Pattern(F16, 4), 1e-6), "weight", "Float16", "Float32"));
        Add("rms_norm", "dtype", "int32 input", k => Refuses(() => k.RmsNorm(torch.ones(2, 4, torch.ScalarType.Int32), Pattern(F32, 4), 1e-6), "input", "Int32"));
        Add("rms_norm", "device", "meta weight", k => Refuses(() => k.RmsNorm(Pattern(F32, 2, 4), Meta(F32, 4), 1e-6), "weight", "meta"));
        Add("rms_norm", "null", "weight", k => Refuses(() => k.RmsNorm(Pattern(F32, 2, 4), null!, 1e-6), "weight"));
        Add("rms_norm", "empty", "[0, 4] and [3, 0]", k => Each(Floats, dt =>
        {
            torch.Tensor x = Pattern(dt, 0, 4), w = Pattern(dt, 4), y = Pattern(dt, 3, 0), v = Pattern(dt, 0);
            MatchesReference(() => k.RmsNorm(x, w, 1e-6), () => RmsReference(x, w, 1e-6), dt);
            MatchesReference(() => k.RmsNorm(y, v, 1e-6), () => RmsReference(y, v, 1e-6), dt);
        }));
        Add("rms_norm", "nan-inf", "NaN or ±Inf in a row, and in the weight", k => Each(Floats, dt =>
        {
            torch.Tensor x = torch.cat(new[] { Special(dt, 0, 3, 4), Pattern(dt, 2, 4) }, 0), w = Pattern(dt, 4), wBad = Special(dt, 4, 4);
            MatchesReference(() => k.RmsNorm(x, w, 1e-6), () => RmsReference(x, w, 1e-6), dt);
            MatchesReference(() => k.RmsNorm(Pattern(dt, 3, 4), wBad, 1e-6), () => RmsReference(Pattern(dt, 3, 4), wBad, 1e-6), dt);
        }));
        Add("rms_norm", "non-contiguous", "transposed input, strided weight", k => Each(Floats, dt =>
        {
            torch.Tensor x = Pattern(dt, 6, 3).t(), w = Pattern(dt, 12).slice(0, 0, 12, 2);
            MatchesReference(() => k.RmsNorm(x, w, 1e-6), () => RmsReference(x, w, 1e-6), dt);
        }));

        // ---- fused_add_rms_norm (in place) ----
        (torch.Tensor Input, torch.Tensor Residual) FusedReference(torch.Tensor x, torch.Tensor r, torch.Tensor w, torch.ScalarType dt)
        {
            torch.Tensor sum = Wide(x).add(Wide(r), HeldScalars.One).to(dt);
            return (RmsReference(sum, w, 1e-6), sum);
        }

        void FusedMatches(IOperatorKernels k, torch.Tensor x, torch.Tensor r, torch.Tensor w, torch.ScalarType dt)
        {
            var expected = FusedReference(x, r, w, dt);
            MatchesReference(() => { k.FusedAddRmsNorm(x, r, w, 1e-6); return (x, r); }, () => expected, dt);
        }

        void FusedRefuses(IOperatorKernels k, torch.Tensor x, torch.Tensor r, torch.Tensor w, string parameter, params string[] fragments)
        {
            byte[] xb = Bits(x), rb = Bits(r);
            Refuses(() => { k.FusedAddRmsNorm(x, r, w, 1e-6); return null; }, parameter, fragments);
            Assert.Equal(xb, Bits(x));
            Assert.Equal(rb, Bits(r));
        }

        Add("fused_add_rms_norm", "shape", "residual [2, 5] for input [2, 4]", k => FusedRefuses(k, Pattern(F32, 2, 4), Pattern(F32, 2, 5), Pattern(F32, 4), "residual", "[2, 5]", "[2, 4]"));
        Add("fused_add_rms_norm", "shape", "weight [3]", k => FusedRefuses(k, Pattern(F32, 2, 4), Pattern(F32, 2, 4), Pattern(F32, 3), "weight", "[3]", "[2, 4]"));
        Add("fused_add_rms_norm", "dtype", "float16 residual for float32 input", k => FusedRefuses(k, Pattern(F32, 2, 4), Pattern(F16, 2, 4), Pattern(F32, 4), "residual", "Float16", "Float32"));
        Add("fused_add_rms_norm", "dtype", "bfloat16 weight for float16 input", k => FusedRefuses(k, Pattern(F16, 2, 4), Pattern(F16, 2, 4), Pattern(BF16, 4), "weight", "BFloat16", "Float16"));
        Add("fused_add_rms_norm", "device", "meta residual", k => Refuses(() => { k.FusedAddRmsNorm(Pattern(F32, 2, 4), Meta(F32, 2, 4), Pattern(F32, 4), 1e-6); return null; }, "residual", "meta"));
        Add("fused_add_rms_norm", "null", "residual", k => Refuses(() => { k.FusedAddRmsNorm(Pattern(F32, 2, 4), null!, Pattern(F32, 4), 1e-6); return null; }, "residual"));
        Add("fused_add_rms_norm", "alias", "input and residual the same tensor", k => Each(Floats, dt =>
        {
            torch.Tensor x = Pattern(dt, 2, 4);
            FusedRefuses(k, x, x, Pattern(dt, 4), "residual", "same memory");
        }));
        Add("fused_add_rms_norm", "alias", "input and residual overlapping views of one buffer", k => Each(Floats, dt =>
        {
            torch.Tensor buffer = Pattern(dt, 12);
            FusedRefuses(k, buffer.narrow(0, 0, 8).view(2, 4), buffer.narrow(0, 4, 8).view(2, 4), Pattern(dt, 4), "residual", "overlap");
        }));
        Add("fused_add_rms_norm", "alias", "residual a view of another tensor (allowed: no overlap)", k => Each(Floats, dt =>
        {
            torch.Tensor buffer = Pattern(dt, 16);
            FusedMatches(k, buffer.narrow(0, 0, 8).view(2, 4), buffer.narrow(0, 8, 8).view(2, 4), Pattern(dt, 4), dt);
        }));
        Add("fused_add_rms_norm", "empty", "[0, 4]", k => Each(Floats, dt => FusedMatches(k, Pattern(dt, 0, 4), Pattern(dt, 0, 4), Pattern(dt, 4), dt)));
        Add("fused_add_rms_norm", "nan-inf", "NaN and ±Inf in input and residual", k => Each(Floats, dt =>
            FusedMatches(k, torch.cat(new[] { Special(dt, 0, 3, 4), Pattern(dt, 1, 4) }, 0), torch.cat(new[] { Pattern(dt, 1, 4), Special(dt, 5, 3, 4) }, 0), Pattern(dt, 4), dt)));
        Add("fused_add_rms_norm", "non-contiguous", "transposed input or residual is refused, a strided weight is read", k =>
        {
            FusedRefuses(k, Pattern(F32, 4, 4).t(), Pattern(F32, 4, 4), Pattern(F32, 4), "input", "not contiguous");
            FusedRefuses(k, Pattern(F32, 4, 4), Pattern(F32, 4, 8).slice(1, 0, 8, 2), Pattern(F32, 4), "residual", "not contiguous");
            Each(Floats, dt => FusedMatches(k, Pattern(dt, 3, 4), Special(dt, 2, 3, 4).nan_to_num(0, 0, 0), Pattern(dt, 8).slice(0, 0, 8, 2), dt));
        });

        // ---- layer_norm ----
        torch.Tensor LayerReference(torch.Tensor x, torch.Tensor? w, torch.Tensor? b) =>
            torch.nn.functional.layer_norm(Wide(x), new[] { x.shape[^1] }, w is null ? null : Wide(w), b is null ? null : Wide(b), 1e-5);

        Add("layer_norm", "shape", "weight [5] and bias [3] for input [2, 4]", k =>
        {
            Refuses(() => k.LayerNorm(Pattern(F32, 2, 4), Pattern(F32, 5), null, 1e-5), "weight", "[5]", "[2, 4]");
            Refuses(() => k.LayerNorm(Pattern(F32, 2, 4), null, Pattern(F32, 3), 1e-5), "bias", "[3]", "[2, 4]");
        });
        Add("layer_norm", "shape", "0-dimensional input", k => Refuses(() => k.LayerNorm(Pattern(F32, 1).reshape(Array.Empty<long>()), null, null, 1e-5), "input", "0-dimensional"));
        Add("layer_norm", "dtype", "float16 bias for float32 input, int32 input", k =>
        {
            Refuses(() => k.LayerNorm(Pattern(F32, 2, 4), Pattern(F32, 4), Pattern(F16, 4), 1e-5), "bias", "Float16", "Float32");
            Refuses(() => k.LayerNorm(torch.ones(2, 4, torch.ScalarType.Int32), null, null, 1e-5), "input", "Int32");
        });
        Add("layer_norm", "device", "meta bias", k => Refuses(() => k.LayerNorm(Pattern(F32, 2, 4), null, Meta(F32, 4), 1e-5), "bias", "meta"));
        Add("layer_norm", "null", "input (weight and bias may be null)", k =>
        {
            Refuses(() => k.LayerNorm(null!, null, null, 1e-5), "input");
            Each(Floats, dt =>
            {
                torch.Tensor x = Pattern(dt, 3, 5);
                MatchesReference(() => k.LayerNorm(x, null, null, 1e-5), () => LayerReference(x, null, null), dt);
            });
        });
        Add("layer_norm", "empty", "[0, 4]", k => Each(Floats, dt =>
        {
            torch.Tensor x = Pattern(dt, 0, 4), w = Pattern(dt, 4), b = Pattern(dt, 4);
            MatchesReference(() => k.LayerNorm(x, w, b, 1e-5), () => LayerReference(x, w, b), dt);
        }));
        Add("layer_norm", "nan-inf", "NaN or ±Inf in a row, in the weight and in the bias", k => Each(Floats, dt =>
        {
            torch.Tensor x = torch.cat(new[] { Special(dt, 0, 3, 4), Pattern(dt, 2, 4) }, 0), w = Pattern(dt, 4), b = Pattern(dt, 4);
            MatchesReference(() => k.LayerNorm(x, w, b, 1e-5), () => LayerReference(x, w, b), dt, slack: 2);
            torch.Tensor y = Pattern(dt, 3, 4), wBad = Special(dt, 1, 4), bBad = Special(dt, 4, 4);
            MatchesReference(() => k.LayerNorm(y, wBad, bBad, 1e-5), () => LayerReference(y, wBad, bBad), dt, slack: 2);
        }));
        Add("layer_norm", "non-contiguous", "transposed input, strided weight and bias", k => Each(Floats, dt =>
        {
            torch.Tensor x = Pattern(dt, 6, 3).t(), w = Pattern(dt, 12).slice(0, 0, 12, 2), b = Pattern(dt, 18).slice(0, 1, 18, 3);
            MatchesReference(() => k.LayerNorm(x, w, b, 1e-5), () => LayerReference(x, w, b), dt, slack: 2);
        }));

        // ---- rotary_embedding (in place) ----
        AddRotary(Add);

        // ---- embedding ----
        torch.Tensor EmbeddingReference(torch.Tensor weight, torch.Tensor indices)
        {
            torch.Tensor rows = Wide(weight).index_select(0, indices.flatten().to(torch.ScalarType.Int64));
            return rows.reshape(indices.shape.Append(weight.shape[1]).ToArray());
        }

        Add("embedding", "index", "index equal to the row count", k => Refuses(() => k.Embedding(Pattern(F32, 5, 4), Ints(0, 5, 1)), "indices", "index 5", "position 1", "5 rows", "[5, 4]"));
        Add("embedding", "index", "negative index", k => Refuses(() => k.Embedding(Pattern(F16, 5, 4), Ints(2, -1)), "indices", "index -1", "[0, 5)"));
        Add("embedding", "index", "int64 max and int32 indices", k =>
        {
            Refuses(() => k.Embedding(Pattern(F32, 5, 4), Ints(long.MaxValue)), "indices", long.MaxValue.ToString(System.Globalization.CultureInfo.InvariantCulture));
            Refuses(() => k.Embedding(Pattern(F32, 5, 4), torch.tensor(new[] { 1, int.MinValue })), "indices", int.MinValue.ToString(System.Globalization.CultureInfo.InvariantCulture));
        });
        Add("embedding", "dtype", "float32 indices, int32 weight", k =>
        {
            Refuses(() => k.Embedding(Pattern(F32, 5, 4), torch.tensor(new[] { 1f, 2f })), "indices", "Float32", "Int64");
            Refuses(() => k.Embedding(torch.ones(5, 4, torch.ScalarType.Int32), Ints(1)), "weight", "Int32");
        });
        Add("embedding", "shape", "1-D weight, 0-dimensional indices", k =>
        {
            Refuses(() => k.Embedding(Pattern(F32, 5), Ints(1)), "weight", "[5]", "2-D");
            Each(Floats, dt =>
            {
                torch.Tensor w = Pattern(dt, 5, 4), i = torch.tensor(3L);
                MatchesReference(() => k.Embedding(w, i), () => EmbeddingReference(w, i), dt);
            });
        });
        Add("embedding", "device", "meta weight, meta indices", k =>
        {
            Refuses(() => k.Embedding(Meta(F32, 5, 4), Ints(1)), "weight", "meta");
            Refuses(() => k.Embedding(Pattern(F32, 5, 4), torch.empty(new long[] { 2 }, torch.ScalarType.Int64, new torch.Device(DeviceType.META))), "indices", "meta");
        });
        Add("embedding", "null", "indices", k => Refuses(() => k.Embedding(Pattern(F32, 5, 4), null!), "indices"));
        Add("embedding", "empty", "no indices, [2, 0] indices, rows of width 0", k => Each(Floats, dt =>
        {
            torch.Tensor w = Pattern(dt, 5, 4), narrow = Pattern(dt, 5, 0);
            foreach (var (weight, indices) in new[] { (w, torch.empty(new long[] { 0 }, torch.ScalarType.Int64)), (w, torch.empty(new long[] { 2, 0 }, torch.ScalarType.Int64)), (narrow, Ints(4, 0)) })
            {
                MatchesReference(() => k.Embedding(weight, indices), () => EmbeddingReference(weight, indices), dt);
            }
        }));
        Add("embedding", "nan-inf", "rows holding NaN and ±Inf are copied bit for bit", k => Each(Floats, dt =>
        {
            torch.Tensor w = Special(dt, 0, 6, 4), i = torch.tensor(new[] { 0, 5, 2, 0 });
            torch.Tensor result = k.Embedding(w, i);
            Assert.Equal(Bits(w.index_select(0, i.to(torch.ScalarType.Int64))), Bits(result));
        }));
        Add("embedding", "non-contiguous", "transposed weight, strided indices", k => Each(Floats, dt =>
        {
            torch.Tensor w = Pattern(dt, 4, 5).t(), i = Ints(4, 9, 0, 9, 3, 9).slice(0, 0, 6, 2);
            MatchesReference(() => k.Embedding(w, i), () => EmbeddingReference(w, i), dt);
        }));

        // ---- reductions: argmax, sum, mean, amax ----
        var reductions = new (string Op, Func<IOperatorKernels, torch.Tensor, long?, bool, torch.Tensor> Ours, Func<torch.Tensor, long?, bool, torch.Tensor> Torch)[]
        {
            ("argmax", (k, x, d, keep) => k.Argmax(x, d, keep), (x, d, keep) => d is null ? Keep(x.argmax(), x, keep) : x.argmax(d.Value, keep)),
            ("sum", (k, x, d, keep) => k.Sum(x, d, keep), (x, d, keep) => x.sum(Dims(x, d), keep)),
            ("mean", (k, x, d, keep) => k.Mean(x, d, keep), (x, d, keep) => x.mean(Dims(x, d), keep)),
            ("amax", (k, x, d, keep) => k.Amax(x, d, keep), (x, d, keep) => x.amax(Dims(x, d), keep)),
        };
        foreach (var (op, ours, reference) in reductions)
        {
            Add(op, "index", "dim 2 and -3 of a 2-D input", k =>
            {
                Refuses(() => ours(k, Pattern(F32, 2, 3), 2, false), "dim", "2", "[2, 3]");
                Refuses(() => ours(k, Pattern(F32, 2, 3), -3, true), "dim", "-3", "[2, 3]");
            });
            Add(op, "dtype", "int32 input", k => Refuses(() => ours(k, torch.ones(2, 3, torch.ScalarType.Int32), null, false), "input", "Int32"));
            Add(op, "device", "meta input", k => Refuses(() => ours(k, Meta(F32, 2, 3), -1, false), "input", "meta"));
            Add(op, "null", "input", k => Refuses(() => ours(k, null!, null, false), "input"));
            Add(op, "empty", "[0], [0, 3] and [3, 0] over each dim and all", k => Each(Floats, dt =>
            {
                foreach (long[] shape in new[] { new long[] { 0 }, new long[] { 0, 3 }, new long[] { 3, 0 } })
                {
                    foreach (long? dim in new long?[] { null, 0, -1 })
                    {
                        foreach (bool keep in new[] { false, true })
                        {
                            torch.Tensor x = Pattern(dt, shape);
                            MatchesReference(() => ours(k, x, dim, keep), () => reference(Wide(x), dim, keep), dt);
                        }
                    }
                }
            }));
            Add(op, "nan-inf", "rows with NaN, +Inf and -Inf, over each dim and all", k => Each(Floats, dt =>
            {
                torch.Tensor x = torch.cat(new[] { Special(dt, 0, 3, 6), Special(dt, 7, 1, 6).nan_to_num(0, 0, 0), Pattern(dt, 1, 6) }, 0);
                foreach (long? dim in new long?[] { null, 0, 1, -1 })
                {
                    MatchesReference(() => ours(k, x, dim, dim == 0), () => reference(Wide(x), dim, dim == 0), dt, slack: 4);
                }
            }));
            Add(op, "non-contiguous", "transposed input over each dim", k => Each(Floats, dt =>
            {
                torch.Tensor x = Pattern(dt, 7, 5).t();
                foreach (long? dim in new long?[] { null, 0, 1 })
                {
                    MatchesReference(() => ours(k, x, dim, false), () => reference(Wide(x), dim, false), dt, slack: 4);
                }
            }));
        }

        // ---- topk ----
        (torch.Tensor, torch.Tensor) TopKReference(torch.Tensor x, long kk, long dim, bool largest) => Wide(x).topk((int)kk, (int)dim, largest, sorted: true);
        Add("topk", "index", "k larger than the dimension, negative k", k =>
        {
            Refuses(() => k.TopK(Pattern(F32, 2, 4), 5, -1, true), "k", "5", "(4)", "[2, 4]");
            Refuses(() => k.TopK(Pattern(F32, 2, 4), -1, -1, true), "k", "-1", "[2, 4]");
            Refuses(() => k.TopK(Pattern(F16, 2, 4), 3, 0, false), "k", "3", "(2)", "[2, 4]");
        });
        Add("topk", "index", "dim out of range", k => Refuses(() => k.TopK(Pattern(F32, 2, 4), 1, 2, true), "dim", "2", "[2, 4]"));
        Add("topk", "dtype", "int64 input", k => Refuses(() => k.TopK(torch.ones(2, 4, torch.ScalarType.Int64), 1, -1, true), "input", "Int64"));
        Add("topk", "device", "meta input", k => Refuses(() => k.TopK(Meta(F32, 2, 4), 1, -1, true), "input", "meta"));
        Add("topk", "null", "input", k => Refuses(() => k.TopK(null!, 1, -1, true), "input"));
        Add("topk", "empty", "k = 0, and [0, 4] with k = 2", k => Each(Floats, dt =>
        {
            torch.Tensor x = Pattern(dt, 2, 4), e = Pattern(dt, 0, 4);
            MatchesReference(() => k.TopK(x, 0, -1, true), () => TopKReference(x, 0, -1, true), dt);
            MatchesReference(() => k.TopK(e, 2, -1, true), () => TopKReference(e, 2, -1, true), dt);
        }));
        Add("topk", "nan-inf", "NaN (largest, as PyTorch orders it), ±Inf, largest and smallest, along each dim", k => Each(Floats, dt =>
        {
            // No ties among the selected values (the order of equal values is unspecified): the only equal pair, 0 and -0, is in row 0
            // and never among its 3 largest or smallest.
            torch.Tensor x = torch.cat(new[] { Special(dt, 0, 1, 12), Pattern(dt, 1, 12).neg().add(HeldScalars.Of(0.01), HeldScalars.One), Pattern(dt, 1, 12).add(HeldScalars.Of(0.013), HeldScalars.One) }, 0);
            foreach (bool largest in new[] { true, false })
            {
                MatchesReference(() => k.TopK(x, 3, -1, largest), () => TopKReference(x, 3, -1, largest), dt);
                MatchesReference(() => k.TopK(x, 2, 0, largest), () => TopKReference(x, 2, 0, largest), dt);
            }
        }));
        Add("topk", "non-contiguous", "transposed input", k => Each(Floats, dt =>
        {
            torch.Tensor x = Pattern(dt, 9, 4).t();
            MatchesReference(() => k.TopK(x, 3, -1, true), () => TopKReference(x, 3, -1, true), dt);
        }));

        // ---- mm, bmm, addmm ----
        Add("mm", "shape", "inner dimensions differ, 3-D self", k =>
        {
            Refuses(() => k.Mm(Pattern(F32, 2, 3), Pattern(F32, 4, 5)), "other", "[4, 5]", "[2, 3]");
            Refuses(() => k.Mm(Pattern(F32, 2, 3, 4), Pattern(F32, 4, 5)), "self", "[2, 3, 4]", "2-D");
        });
        Add("bmm", "shape", "batch and inner dimensions differ, 2-D other", k =>
        {
            Refuses(() => k.Bmm(Pattern(F32, 2, 2, 3), Pattern(F32, 3, 3, 4)), "other", "[3, 3, 4]", "[2, 2, 3]");
            Refuses(() => k.Bmm(Pattern(F32, 2, 2, 3), Pattern(F32, 2, 4, 4)), "other", "[2, 4, 4]", "[2, 2, 3]");
            Refuses(() => k.Bmm(Pattern(F32, 2, 2, 3), Pattern(F32, 3, 4)), "other", "[3, 4]", "3-D");
        });
        Add("addmm", "shape", "self does not broadcast, inner dimensions differ", k =>
        {
            Refuses(() => k.Addmm(Pattern(F32, 3), Pattern(F32, 2, 3), Pattern(F32, 3, 4), 1, 1), "self", "[3]", "[2, 4]");
            Refuses(() => k.Addmm(Pattern(F32, 4), Pattern(F32, 2, 3), Pattern(F32, 2, 4), 1, 1), "mat2", "[2, 4]", "[2, 3]");
        });
        Add("mm", "dtype", "float32 with bfloat16, int32", k =>
        {
            Refuses(() => k.Mm(Pattern(F32, 2, 3), Pattern(BF16, 3, 4)), "other", "BFloat16", "Float32");
            Refuses(() => k.Mm(torch.ones(2, 3, torch.ScalarType.Int32), torch.ones(3, 4, torch.ScalarType.Int32)), "self", "Int32");
        });
        Add("bmm", "dtype", "float16 with float32", k => Refuses(() => k.Bmm(Pattern(F16, 1, 2, 3), Pattern(F32, 1, 3, 4)), "other", "Float32", "Float16"));
        Add("addmm", "dtype", "float16 self for float32 matrices", k => Refuses(() => k.Addmm(Pattern(F16, 4), Pattern(F32, 2, 3), Pattern(F32, 3, 4), 1, 1), "self", "Float16", "Float32"));
        Add("mm", "device", "meta other", k => Refuses(() => k.Mm(Pattern(F32, 2, 3), Meta(F32, 3, 4)), "other", "meta"));
        Add("bmm", "device", "meta self", k => Refuses(() => k.Bmm(Meta(F32, 1, 2, 3), Pattern(F32, 1, 3, 4)), "self", "meta"));
        Add("addmm", "device", "meta self", k => Refuses(() => k.Addmm(Meta(F32, 4), Pattern(F32, 2, 3), Pattern(F32, 3, 4), 1, 1), "self", "meta"));
        Add("mm", "null", "other", k => Refuses(() => k.Mm(Pattern(F32, 2, 3), null!), "other"));
        Add("bmm", "null", "self", k => Refuses(() => k.Bmm(null!, Pattern(F32, 1, 3, 4)), "self"));
        Add("addmm", "null", "self", k => Refuses(() => k.Addmm(null!, Pattern(F32, 2, 3), Pattern(F32, 3, 4), 1, 1), "self"));
        Add("mm", "empty", "m = 0, k = 0 (zeros), n = 0", k => Each(Floats, dt =>
        {
            foreach (var (a, b) in new[] { (Pattern(dt, 0, 3), Pattern(dt, 3, 4)), (Pattern(dt, 2, 0), Pattern(dt, 0, 3)), (Pattern(dt, 2, 3), Pattern(dt, 3, 0)) })
            {
                MatchesReference(() => k.Mm(a, b), () => Wide(a).mm(Wide(b)), dt);
            }
        }));
        Add("bmm", "empty", "batch 0, k = 0", k => Each(Floats, dt =>
        {
            foreach (var (a, b) in new[] { (Pattern(dt, 0, 2, 3), Pattern(dt, 0, 3, 4)), (Pattern(dt, 2, 2, 0), Pattern(dt, 2, 0, 3)) })
            {
                MatchesReference(() => k.Bmm(a, b), () => Wide(a).bmm(Wide(b)), dt);
            }
        }));
        Add("addmm", "empty", "k = 0 (beta * self), m = 0", k => Each(Floats, dt =>
        {
            torch.Tensor s = Pattern(dt, 3);
            foreach (var (a, b) in new[] { (Pattern(dt, 2, 0), Pattern(dt, 0, 3)), (Pattern(dt, 0, 4), Pattern(dt, 4, 3)) })
            {
                MatchesReference(() => k.Addmm(s, a, b, 0.5, 2), () => Wide(s).addmm(Wide(a), Wide(b), 0.5f, 2f), dt);
            }
        }));
        Add("mm", "nan-inf", "NaN and ±Inf in both factors (Inf × 0 is NaN)", k => Each(Floats, dt =>
        {
            torch.Tensor a = Special(dt, 0, 5, 7), b = torch.cat(new[] { Pattern(dt, 6, 3), Special(dt, 4, 1, 3) }, 0);
            MatchesReference(() => k.Mm(a, b), () => Wide(a).mm(Wide(b)), dt, slack: 4);
            torch.Tensor one = Special(dt, 2, 1, 7);
            MatchesReference(() => k.Mm(one, b), () => Wide(one).mm(Wide(b)), dt, slack: 4);
        }));
        Add("bmm", "nan-inf", "NaN and ±Inf in one batch", k => Each(Floats, dt =>
        {
            torch.Tensor a = torch.stack(new[] { Special(dt, 0, 3, 5), Pattern(dt, 3, 5) }, 0), b = Pattern(dt, 2, 5, 4);
            MatchesReference(() => k.Bmm(a, b), () => Wide(a).bmm(Wide(b)), dt, slack: 4);
        }));
        Add("addmm", "nan-inf", "NaN in self (ignored when beta is 0, as PyTorch), ±Inf in mat1", k => Each(Floats, dt =>
        {
            torch.Tensor s = Special(dt, 0, 1, 4), a = Special(dt, 3, 3, 5).nan_to_num(0, double.PositiveInfinity, double.NegativeInfinity), b = Pattern(dt, 5, 4);
            MatchesReference(() => k.Addmm(s, a, b, 1, 1), () => Wide(s).addmm(Wide(a), Wide(b), 1, 1), dt, slack: 4);
            MatchesReference(() => k.Addmm(s, Pattern(dt, 3, 5), b, 0, 1), () => Wide(s).addmm(Wide(Pattern(dt, 3, 5)), Wide(b), 0, 1), dt, slack: 4);
        }));
        Add("mm", "non-contiguous", "transposed and strided factors", k => Each(Floats, dt =>
        {
            torch.Tensor a = Pattern(dt, 5, 3).t(), b = Pattern(dt, 5, 12).slice(1, 0, 12, 3);
            MatchesReference(() => k.Mm(a, b), () => Wide(a).mm(Wide(b)), dt, slack: 4);
        }));
        Add("bmm", "non-contiguous", "transposed batches", k => Each(Floats, dt =>
        {
            torch.Tensor a = Pattern(dt, 2, 5, 3).transpose(1, 2), b = Pattern(dt, 5, 2, 4).transpose(0, 1);
            MatchesReference(() => k.Bmm(a, b), () => Wide(a).bmm(Wide(b)), dt, slack: 4);
        }));
        Add("addmm", "non-contiguous", "transposed mat1 and self", k => Each(Floats, dt =>
        {
            torch.Tensor s = Pattern(dt, 4, 3).t(), a = Pattern(dt, 5, 3).t(), b = Pattern(dt, 5, 4);
            MatchesReference(() => k.Addmm(s, a, b, 0.5, 1.5), () => Wide(s).addmm(Wide(a), Wide(b), 0.5f, 1.5f), dt, slack: 4);
        }));

        AddAttention(Add);
        return cases;
    }

    private static void AddRotary(Action<string, string, string, Action<IOperatorKernels>> add)
    {
        const string Op = "rotary_embedding";
        const long HeadSize = 8;
        torch.Tensor Cache(torch.ScalarType dt, long positions, long rotaryDim)
        {
            torch.Tensor angles = torch.arange(HeldScalars.Of(positions), F64).unsqueeze(1).mul(torch.arange(HeldScalars.Of(rotaryDim / 2), F64).add(HeldScalars.One, HeldScalars.One).reciprocal().unsqueeze(0));
            return torch.cat(new[] { angles.cos(), angles.sin() }, 1).to(dt);
        }

        torch.Tensor Reference(torch.Tensor positions, torch.Tensor x, torch.Tensor cache, bool neox)
        {
            long tokens = positions.numel(), rot = cache.shape[1], half = rot / 2;
            if (tokens == 0)
            {
                return Wide(x);
            }

            torch.Tensor q = Wide(x).reshape(tokens, -1, HeadSize);
            torch.Tensor c = Wide(cache).index_select(0, positions.flatten().to(torch.ScalarType.Int64));
            torch.Tensor cos = c.narrow(1, 0, half).unsqueeze(1), sin = c.narrow(1, half, half).unsqueeze(1);
            torch.Tensor part = q.narrow(2, 0, rot), pass = q.narrow(2, rot, HeadSize - rot);
            torch.Tensor rotated;
            if (neox)
            {
                torch.Tensor x1 = part.narrow(2, 0, half), x2 = part.narrow(2, half, half);
                rotated = torch.cat(new[] { (x1 * cos).sub(x2 * sin), (x2 * cos).add(x1 * sin, HeldScalars.One) }, 2);
            }
            else
            {
                torch.Tensor pairs = part.reshape(tokens, -1, half, 2), x1 = pairs.select(3, 0), x2 = pairs.select(3, 1);
                rotated = torch.stack(new[] { (x1 * cos).sub(x2 * sin), (x2 * cos).add(x1 * sin, HeldScalars.One) }, 3).reshape(tokens, -1, rot);
            }

            return torch.cat(new[] { rotated, pass }, 2).reshape(x.shape);
        }

        void Matches(IOperatorKernels k, torch.Tensor positions, torch.Tensor query, torch.Tensor? key, torch.Tensor cache, bool neox, torch.ScalarType dt)
        {
            torch.Tensor expectedQuery = Reference(positions, query, cache, neox);
            torch.Tensor? expectedKey = key is null ? null : Reference(positions, key, cache, neox);
            MatchesReference(
                () => { k.RotaryEmbedding(positions, query, key, HeadSize, cache, neox); return key is null ? new[] { query } : new[] { query, key }; },
                () => expectedKey is null ? new[] { expectedQuery } : new[] { expectedQuery, expectedKey },
                dt);
        }

        void RefusesUnchanged(IOperatorKernels k, torch.Tensor positions, torch.Tensor query, torch.Tensor? key, long headSize, torch.Tensor cache, string parameter, params string[] fragments)
        {
            byte[] q = Bits(query), kb = key is null ? Array.Empty<byte>() : Bits(key);
            Refuses(() => { k.RotaryEmbedding(positions, query, key, headSize, cache, true); return null; }, parameter, fragments);
            Assert.Equal(q, Bits(query));
            if (key is not null)
            {
                Assert.Equal(kb, Bits(key));
            }
        }

        add(Op, "shape", "query tokens differ from positions", k => RefusesUnchanged(k, Ints(0, 1, 2), Pattern(F32, 2, 16), null, HeadSize, Cache(F32, 4, 8), "query", "[2, 16]", "tokens = 3"));
        add(Op, "shape", "key width not a multiple of headSize", k => RefusesUnchanged(k, Ints(0, 1), Pattern(F32, 2, 16), Pattern(F32, 2, 12), HeadSize, Cache(F32, 4, 8), "key", "[2, 12]", "headSize = 8"));
        add(Op, "shape", "odd rotary dimension, rotary dimension above headSize, headSize 0", k =>
        {
            RefusesUnchanged(k, Ints(0, 1), Pattern(F32, 2, 16), null, HeadSize, Pattern(F32, 4, 3), "cosSinCache", "[4, 3]");
            RefusesUnchanged(k, Ints(0, 1), Pattern(F32, 2, 16), null, HeadSize, Cache(F32, 4, 10), "cosSinCache", "[4, 10]", "(8)");
            RefusesUnchanged(k, Ints(0, 1), Pattern(F32, 2, 16), null, 0, Cache(F32, 4, 8), "cosSinCache", "(0)");
        });
        add(Op, "dtype", "float16 key, float16 cache, int32 query for float32", k =>
        {
            RefusesUnchanged(k, Ints(0, 1), Pattern(F32, 2, 16), Pattern(F16, 2, 16), HeadSize, Cache(F32, 4, 8), "key", "Float16", "Float32");
            RefusesUnchanged(k, Ints(0, 1), Pattern(F32, 2, 16), null, HeadSize, Cache(F16, 4, 8), "cosSinCache", "Float16", "Float32");
            Refuses(() => { k.RotaryEmbedding(Ints(0, 1), torch.ones(2, 16, torch.ScalarType.Int32), null, HeadSize, Cache(F32, 4, 8), true); return null; }, "query", "Int32");
        });
        add(Op, "index", "float positions, position equal to the cache length, negative position", k =>
        {
            RefusesUnchanged(k, torch.tensor(new[] { 0f, 1f }), Pattern(F32, 2, 16), null, HeadSize, Cache(F32, 4, 8), "positions", "Float32");
            RefusesUnchanged(k, Ints(1, 4), Pattern(F32, 2, 16), Pattern(F32, 2, 8), HeadSize, Cache(F32, 4, 8), "positions", "position 4", "token 1", "[4, 8]");
            RefusesUnchanged(k, torch.tensor(new[] { -1, 0 }), Pattern(BF16, 2, 16), null, HeadSize, Cache(BF16, 4, 8), "positions", "position -1", "token 0");
        });
        add(Op, "index", "int32 positions are read", k => Each(Floats, dt =>
            Matches(k, torch.tensor(new[] { 3, 0, 2 }), Pattern(dt, 3, 16), Pattern(dt, 3, 2, 8), Cache(dt, 4, 8), neox: true, dt)));
        add(Op, "device", "meta query, meta positions", k =>
        {
            Refuses(() => { k.RotaryEmbedding(Ints(0, 1), Meta(F32, 2, 16), null, HeadSize, Cache(F32, 4, 8), true); return null; }, "query", "meta");
            RefusesUnchanged(k, torch.empty(new long[] { 2 }, torch.ScalarType.Int64, new torch.Device(DeviceType.META)), Pattern(F32, 2, 16), null, HeadSize, Cache(F32, 4, 8), "positions", "meta");
        });
        add(Op, "null", "query, cosSinCache (key may be null)", k =>
        {
            Refuses(() => { k.RotaryEmbedding(Ints(0, 1), null!, null, HeadSize, Cache(F32, 4, 8), true); return null; }, "query");
            RefusesUnchanged(k, Ints(0, 1), Pattern(F32, 2, 16), null, HeadSize, null!, "cosSinCache");
            Each(Floats, dt => Matches(k, Ints(1, 3), Pattern(dt, 2, 16), null, Cache(dt, 4, 8), neox: false, dt));
        });
        add(Op, "alias", "key the same tensor as query", k => Each(Floats, dt =>
        {
            torch.Tensor q = Pattern(dt, 2, 16);
            RefusesUnchanged(k, Ints(0, 1), q, q, HeadSize, Cache(dt, 4, 8), "key", "overlap");
        }));
        add(Op, "alias", "key overlapping query in one buffer", k => Each(Floats, dt =>
        {
            torch.Tensor buffer = Pattern(dt, 48);
            RefusesUnchanged(k, Ints(0, 1), buffer.narrow(0, 0, 32).view(2, 16), buffer.narrow(0, 16, 32).view(2, 16), HeadSize, Cache(dt, 4, 8), "key", "overlap");
        }));
        add(Op, "alias", "query and key adjacent views of one buffer (allowed)", k => Each(Floats, dt =>
        {
            torch.Tensor buffer = Pattern(dt, 48);
            Matches(k, Ints(2, 1), buffer.narrow(0, 0, 32).view(2, 16), buffer.narrow(0, 32, 16).view(2, 8), Cache(dt, 4, 8), neox: true, dt);
        }));
        add(Op, "empty", "no tokens", k => Each(Floats, dt =>
            Matches(k, torch.empty(new long[] { 0 }, torch.ScalarType.Int64), Pattern(dt, 0, 16), Pattern(dt, 0, 8), Cache(dt, 4, 8), neox: true, dt)));
        add(Op, "nan-inf", "NaN and ±Inf in query and key, neox and GPT-J, partial rotary dimension", k => Each(Floats, dt =>
        {
            foreach (bool neox in new[] { true, false })
            {
                Matches(k, Ints(3, 0, 1), Special(dt, 0, 3, 16), Special(dt, 5, 3, 1, 8), Cache(dt, 4, 8), neox, dt);
                Matches(k, Ints(3, 0, 1), Special(dt, 2, 3, 16), null, Cache(dt, 4, 4), neox, dt);
            }
        }));
        add(Op, "non-contiguous", "strided query is refused; strided positions and cache are read", k =>
        {
            RefusesUnchanged(k, Ints(0, 1), Pattern(F32, 2, 32).slice(1, 0, 32, 2), null, HeadSize, Cache(F32, 4, 8), "query", "not contiguous");
            RefusesUnchanged(k, Ints(0, 1), Pattern(F32, 2, 16), Pattern(F32, 8, 2).t(), HeadSize, Cache(F32, 4, 8), "key", "not contiguous");
            Each(Floats, dt =>
            {
                torch.Tensor positions = Ints(3, 9, 1, 9).slice(0, 0, 4, 2), cache = Cache(dt, 8, 4).t().contiguous().t().narrow(0, 0, 4);
                Matches(k, positions, Pattern(dt, 2, 16), Pattern(dt, 2, 8), cache, neox: true, dt);
            });
        });
    }

    private static void AddAttention(Action<string, string, string, Action<IOperatorKernels>> add)
    {
        const string Op = "scaled_dot_product_attention";
        torch.Tensor Reference(torch.Tensor q, torch.Tensor k, torch.Tensor v, torch.Tensor? mask, bool causal) =>
            torch.nn.functional.scaled_dot_product_attention(Wide(q), Wide(k), Wide(v), mask is null ? null : mask.dtype == torch.ScalarType.Bool ? mask : Wide(mask), 0.0, causal);

        add(Op, "shape", "head sizes differ, key heads do not divide query heads, value length differs", k =>
        {
            Refuses(() => k.ScaledDotProductAttention(Pattern(F32, 1, 2, 3, 8), Pattern(F32, 1, 2, 5, 4), Pattern(F32, 1, 2, 5, 4), null, false, null), "key", "[1, 2, 3, 8]", "[1, 2, 5, 4]");
            Refuses(() => k.ScaledDotProductAttention(Pattern(F32, 1, 3, 3, 4), Pattern(F32, 1, 2, 5, 4), Pattern(F32, 1, 2, 5, 4), null, false, null), "key", "(3)", "(2)");
            Refuses(() => k.ScaledDotProductAttention(Pattern(F32, 1, 2, 3, 4), Pattern(F32, 1, 2, 5, 4), Pattern(F32, 1, 2, 6, 4), null, false, null), "key", "[1, 2, 6, 4]");
        });
        add(Op, "shape", "mask that does not broadcast", k =>
            Refuses(() => k.ScaledDotProductAttention(Pattern(F32, 1, 2, 3, 4), Pattern(F32, 1, 2, 5, 4), Pattern(F32, 1, 2, 5, 4), Pattern(F32, 3, 3), false, null), "attentionMask", "[3, 3]", "[1, 2, 3, 5]"));
        add(Op, "dtype", "float16 value for float32 query, int32 mask", k =>
        {
            Refuses(() => k.ScaledDotProductAttention(Pattern(F32, 1, 2, 3, 4), Pattern(F32, 1, 2, 5, 4), Pattern(F16, 1, 2, 5, 4), null, false, null), "value", "Float16", "Float32");
            Refuses(() => k.ScaledDotProductAttention(Pattern(F32, 1, 2, 3, 4), Pattern(F32, 1, 2, 5, 4), Pattern(F32, 1, 2, 5, 4), torch.zeros(3, 5, torch.ScalarType.Int32), false, null), "attentionMask", "Int32", "Float32");
        });
        add(Op, "device", "meta key", k => Refuses(() => k.ScaledDotProductAttention(Pattern(F32, 1, 2, 3, 4), Meta(F32, 1, 2, 5, 4), Pattern(F32, 1, 2, 5, 4), null, false, null), "key", "meta"));
        add(Op, "null", "value", k => Refuses(() => k.ScaledDotProductAttention(Pattern(F32, 1, 2, 3, 4), Pattern(F32, 1, 2, 5, 4), null!, null, false, null), "value"));
        add(Op, "empty", "no queries, no batch", k => Each(Floats, dt =>
        {
            foreach (var (q, kv) in new[] { (Pattern(dt, 1, 2, 0, 4), Pattern(dt, 1, 2, 5, 4)), (Pattern(dt, 0, 2, 3, 4), Pattern(dt, 0, 2, 5, 4)) })
            {
                MatchesReference(() => k.ScaledDotProductAttention(q, kv, kv, null, false, null), () => Reference(q, kv, kv, null, false), dt);
            }
        }));
        add(Op, "nan-inf", "NaN in one key, +Inf in one value, a fully masked row (zeros)", k => Each(Floats, dt =>
        {
            torch.Tensor q = Pattern(dt, 1, 2, 3, 4), key = Pattern(dt, 1, 2, 5, 4).clone(), value = Pattern(dt, 1, 2, 5, 4).clone();
            key[0, 0, 2, 1] = torch.tensor(double.NaN, dt);
            value[0, 1, 4, 3] = torch.tensor(double.PositiveInfinity, dt);
            MatchesReference(() => k.ScaledDotProductAttention(q, key, value, null, false, null), () => Reference(q, key, value, null, false), dt, slack: 4);
            torch.Tensor mask = torch.zeros(new long[] { 3, 5 }, dt);
            mask[1] = torch.tensor(double.NegativeInfinity, dt);
            torch.Tensor clean = Pattern(dt, 1, 2, 5, 4);
            MatchesReference(() => k.ScaledDotProductAttention(q, clean, clean, mask, false, null), () => Reference(q, clean, clean, mask, false), dt, slack: 4);
        }));
        add(Op, "non-contiguous", "[batch, length, heads, dim] transposed to [batch, heads, length, dim]", k => Each(Floats, dt =>
        {
            torch.Tensor q = Pattern(dt, 1, 3, 2, 4).transpose(1, 2), kv = Pattern(dt, 1, 5, 2, 4).transpose(1, 2);
            MatchesReference(() => k.ScaledDotProductAttention(q, kv, kv, null, true, null), () => Reference(q, kv, kv, null, true), dt, slack: 4);
        }));
    }

    private static void Each(torch.ScalarType[] dtypes, Action<torch.ScalarType> check)
    {
        foreach (torch.ScalarType dtype in dtypes)
        {
            check(dtype);
        }
    }

    private static long[] Dims(torch.Tensor x, long? dim) => dim is { } d ? new[] { d } : Enumerable.Range(0, (int)x.dim()).Select(i => (long)i).ToArray();

    private static torch.Tensor Keep(torch.Tensor scalar, torch.Tensor input, bool keepdim) =>
        keepdim ? scalar.reshape(Enumerable.Repeat(1L, (int)input.dim()).ToArray()) : scalar;
}
