using System;
using System.Collections.Generic;
using System.Linq;
using ILGPU;
using ILGPU.Runtime;

namespace GemsInjector.GpuHarness;

/// <summary>
/// The cases: every op of the ILGPU kernel API (present or announced) on the shapes of torch_reference_bench.py, decode
/// shapes (1, 16, 64 rows) and an odd shape (4097 x 5003); tiny shapes with --quick (CPU simulator).
/// Shape labels: element-wise ops give the element count; row ops rows x cols; gated ops rows x d (input rows x 2d);
/// embedding tokens x dim (vocab in the op name's shape suffix); mm MxNxK; rotary tokens x (qheads+kvheads) x headdim.
/// Per-op tolerance factors over the FlagGems rtol (documented here, measured on the simulator and on the H100):
///   exp: 2x (the kernels' Cephes exp is ~1-2 ulp; the unit tests use the same factor). XMath.Exp (ex2.approx) is not
///   used by the kernels (GpuMath builds exp from adds and multiplies), so no looser CUDA bound is needed.
/// atol is FlagGems' 1e-4, times the reduced length for sum, mean and the matrix products (their reduce_dim).
/// </summary>
internal static class Catalog
{
    private static readonly string[] Y = { "y", "output", "out", "result", "destination", "dst" };

    /// <summary>torch_reference_bench.py's shape per op, in this harness's labels (compare.py has the same table).</summary>
    public static readonly IReadOnlyDictionary<string, string> ScriptShapes = new Dictionary<string, string>
    {
        ["copy"] = "67108864", ["add"] = "67108864", ["mul"] = "67108864", ["silu"] = "67108864",
        ["silu_and_mul"] = "4096x11008", ["rms_norm"] = "4096x4096", ["fused_add_rms_norm"] = "4096x4096", ["layer_norm"] = "4096x4096",
        ["softmax"] = "4096x32000", ["rotary_embedding"] = "4096x32+8x128", ["mm"] = "4096x4096x4096",
    };

    /// <summary>The cases of a suite; <paramref name="readGrid"/> sizes the read probe's launches (bench only).</summary>
    public static List<OpCase> Build(bool quick, bool bench, IReadOnlyList<DType> dtypes, ReadCeiling.ReadGrid readGrid)
    {
        var cases = new List<OpCase>();
        foreach (var dt in dtypes)
        {
            Add(cases, dt, quick, bench);
        }

        if (bench && dtypes.Contains(DType.F32))
        {
            AddReads(cases, quick, readGrid);
        }

        // Under a time budget: bench runs the cases compared with the script (and the decode targets) first, every
        // dtype; accuracy runs the cheap cases first (bench checks the script shapes too, before timing them).
        cases = bench
            ? cases.OrderBy(c => IsPriority(c) ? 0 : 1).ToList()
            : cases.OrderBy(c => c.Inputs.Concat(c.Outputs).Sum(t => t.Length) + c.Flops / 64).ToList();

        return cases;
    }

    private static bool IsPriority(OpCase c) =>
        (ScriptShapes.TryGetValue(c.Op, out var s) && s == c.Shape) || c.Category is "gemv" or "attention-decode" or "attention-prefill" or "floor" or "read";

    private static void Add(List<OpCase> cs, DType dt, bool quick, bool bench)
    {
        const long Script = 1L << 26;
        long[] ewAll = quick ? new long[] { 1000, 4097 } : bench ? new[] { Script } : new[] { Script, 4097L * 5003, 4096 };
        long[] ewMain = quick ? new long[] { 1000, 4097 } : bench ? new[] { Script, 4097L * 5003, 4096, 16 * 4096, 64 * 4096 } : ewAll;
        (int R, int C)[] gatedMain = quick ? new[] { (3, 37), (1, 64) } : new[] { (4096, 11008), (4097, 5003), (1, 11008), (16, 11008), (64, 11008) };
        (int R, int C)[] gatedOther = quick ? new[] { (3, 37) } : bench ? new[] { (4096, 11008) } : gatedMain;
        (int R, int C)[] norm = quick ? new[] { (3, 37), (2, 300) } : new[] { (4096, 4096), (4097, 5003), (1, 4096), (16, 4096), (64, 4096) };
        (int R, int C)[] soft = quick ? new[] { (3, 37), (2, 1000) } : new[] { (4096, 32000), (4097, 5003), (1, 32000), (16, 32000), (64, 32000) };
        (int R, int C)[] softOther = quick ? new[] { (3, 37) } : bench ? new[] { (4096, 32000) } : soft;
        (int R, int C)[] reduce = quick ? new[] { (3, 37), (2, 1000) } : bench ? new[] { (4096, 4096), (64, 32000) } : new[] { (4096, 4096), (4097, 5003), (64, 32000), (1, 32000) };
        (int R, int C, int K)[] topk = quick ? new[] { (3, 37, 5) } : bench ? new[] { (64, 32000, 50), (1, 32000, 50) } : new[] { (64, 32000, 50), (1, 32000, 50), (4097, 5003, 8) };
        (int T, int V, int D)[] emb = quick ? new[] { (7, 50, 37) } : bench ? new[] { (4096, 32000, 4096), (1, 32000, 4096), (64, 32000, 4096) } : new[] { (4096, 32000, 4096), (4097, 32000, 5003), (1, 32000, 4096), (64, 32000, 4096) };
        (int M, int N, int K)[] mm = quick ? new[] { (5, 7, 9), (1, 33, 17), (16, 31, 20) } : new[] { (4096, 4096, 4096), (1, 4096, 4096), (16, 11008, 4096), (64, 4096, 4096), (256, 4096, 4096), (4097, 5003, 1031), (4097, 5000, 1032) };
        // Attention: prefill causal 32/8 heads x 4096 tokens x d128 and decode batch 16, 1 query over 4096 cached (GPU.md's cases);
    // in the bench also batch 1, and 4, 16 and 64 queries over the same cache (decode rows of a verify or multi-token step),
    // the causal prefill at head size 64 and a chunk of 256 queries over the 4096 (a prefill whose blocks leave SMs idle) at
    // head sizes 128 and 64, and 16 and 64 queries at head size 64; in the accuracy suite a 16-bit prefill split into key ranges with a short last one (8 query
    // blocks, 3 ranges of 384 keys) and a non-causal head-size-64 prefill of uneven lengths.
        (int B, int H, int KH, int Lq, int Lk, int D, bool Causal)[] attn = quick
            ? new[] { (1, 4, 2, 9, 9, 8, true), (2, 4, 1, 1, 13, 8, false), (1, 2, 2, 5, 7, 16, false) }
            : bench ? new[] { (1, 32, 8, 4096, 4096, 128, true), (16, 32, 8, 1, 4096, 128, false), (1, 32, 8, 1, 4096, 128, false), (1, 32, 8, 4, 4096, 128, false), (1, 32, 8, 16, 4096, 128, false), (1, 32, 8, 64, 4096, 128, false), (1, 32, 8, 4096, 4096, 64, true), (1, 32, 8, 256, 4096, 128, false), (1, 32, 8, 256, 4096, 64, false), (1, 32, 8, 16, 4096, 64, false), (1, 32, 8, 64, 4096, 64, false) }
            : new[] { (1, 32, 8, 4096, 4096, 128, true), (16, 32, 8, 1, 4096, 128, false), (2, 5, 5, 333, 333, 64, true), (1, 4, 2, 77, 1031, 96, false), (1, 8, 2, 100, 1000, 128, false), (1, 6, 2, 130, 515, 64, false) };
        (int T, int QH, int KH, int D)[] rope = quick ? new[] { (5, 3, 1, 8) } : new[] { (4096, 32, 8, 128), (1, 32, 8, 128), (16, 32, 8, 128), (64, 32, 8, 128), (4097, 5, 3, 64) };

        if (dt == DType.F32 || !quick)
        {
            // Besides the script's copy: copies that move as many bytes as the decode GEMVs' weights and as one sequence's
            // K and V cache of the decode attention (half the elements read, half written), the rate a copy itself reaches
            // at that size (compare.py's same-bytes column).
            const long OneSequenceKvCache = 2L * 8 * 4096 * 128;
            foreach (var n in bench ? (quick ? new long[] { 4097 } : new[] { Script, 4097L * 5003, 4096L * 4096 / 2, 11008L * 4096 / 2, OneSequenceKvCache / 2 }) : Array.Empty<long>())
            {
                cs.Add(Copy(dt, n));
            }
        }

        if (bench && dt == DType.F32)
        {
            cs.Add(Floor());
        }

        foreach (var n in ewMain)
        {
            cs.Add(Binary("add", "Add", dt, n, 1.0, (a, b) => a + b));
            cs.Add(Unary("silu", "Silu", dt, n, RefMath.Silu, bench ? Gen.Normal : Gen.Uniform(-12, 12), ("activation", "Silu")));
        }

        foreach (var n in ewAll)
        {
            cs.Add(Binary("sub", "Sub", dt, n, 0.5, (a, b) => a - 0.5 * b));
            cs.Add(Binary("mul", "Mul", dt, n, null, (a, b) => a * b));
            cs.Add(Binary("div", "Div", dt, n, null, (a, b) => a / b));
            cs.Add(Unary("gelu", "Gelu", dt, n, RefMath.GeluErf, bench ? Gen.Normal : Gen.Uniform(-8, 8), ("activation", "Gelu"), ("approximation", "None")));
            cs.Add(Unary("gelu_tanh", "Gelu", dt, n, RefMath.GeluTanh, bench ? Gen.Normal : Gen.Uniform(-8, 8), ("activation", "GeluTanh"), ("approximation", "Tanh")));
            cs.Add(Unary("relu", "Relu", dt, n, RefMath.Relu, Gen.Normal, ("activation", "Relu")));
            cs.Add(Unary("sigmoid", "Sigmoid", dt, n, RefMath.Sigmoid, bench ? Gen.Normal : Gen.Uniform(-20, 20), ("activation", "Sigmoid")));
            cs.Add(Unary("tanh", "Tanh", dt, n, Math.Tanh, bench ? Gen.Normal : Gen.Uniform(-10, 10), ("activation", "Tanh")));
            cs.Add(Unary("exp", "Exp", dt, n, Math.Exp, bench ? Gen.Normal : Gen.Uniform(dt == DType.F16 ? -10 : -80, dt == DType.F16 ? 10 : 80), ("activation", "Exp"), rtolScale: 2));
            cs.Add(Unary("neg", "Neg", dt, n, v => -v, Gen.Normal, ("activation", "Neg")));
            cs.Add(Unary("rsqrt", "Rsqrt", dt, n, v => 1 / Math.Sqrt(v), Gen.Uniform(1e-3, 100), ("activation", "Rsqrt")));
        }

        foreach (var (r, d) in gatedMain)
        {
            cs.Add(Gated("silu_and_mul", "SiluAndMul", dt, r, d, RefMath.Silu, null, "Silu"));
        }

        foreach (var (r, d) in gatedOther)
        {
            cs.Add(Gated("gelu_and_mul", "GeluAndMul", dt, r, d, RefMath.GeluErf, "None", "Gelu"));
            cs.Add(Gated("gelu_tanh_and_mul", "GeluAndMul", dt, r, d, RefMath.GeluTanh, "Tanh", "GeluTanh"));
        }

        foreach (var (t, v, d) in emb)
        {
            cs.Add(Embedding(dt, t, v, d));
        }

        foreach (var (r, c) in norm)
        {
            cs.Add(RmsNorm(dt, r, c));
            cs.Add(FusedAddRmsNorm(dt, r, c));
            cs.Add(LayerNorm(dt, r, c));
        }

        foreach (var (r, c) in soft)
        {
            cs.Add(Softmax(dt, r, c, log: false));
        }

        foreach (var (r, c) in softOther)
        {
            cs.Add(Softmax(dt, r, c, log: true));
        }

        foreach (var (r, c) in reduce)
        {
            cs.Add(Reduce("sum", "Sum", dt, r, c, row => row.Sum(), atolScale: c));
            cs.Add(Reduce("mean", "Mean", dt, r, c, row => row.Sum() / row.Length, atolScale: c));
            cs.Add(Reduce("amax", "Amax", dt, r, c, row => row.Any(double.IsNaN) ? double.NaN : row.Max(), atolScale: 1));
            cs.Add(Argmax(dt, r, c));
        }

        foreach (var (r, c, k) in topk)
        {
            cs.Add(TopK(dt, r, c, k));
        }

        foreach (var (t, qh, kh, d) in rope)
        {
            cs.Add(Rotary(dt, t, qh, kh, d));
        }

        foreach (var (m, n, k) in mm)
        {
            cs.Add(Mm(dt, m, n, k));

            // b as [N, K] (nn.Linear weights): decode shapes, and the 16-bit tensor-core kernel's other B layout.
            if (m <= 64 || (!quick && dt != DType.F32))
            {
                cs.Add(Mm(dt, m, n, k, transposeB: true));
            }
        }

        // Decode products of 2, 4 and 8 rows, b as [K, N] and [N, K]: for 16 bits the skinny tensor-core kernel's [K, N]
        // variant (GEMS_SKINNY_TC_KN=1) beside the CUDA-core [K, N] GEMV it replaces and the [N, K] skinny kernel; for
        // float32 the GEMVs of GEMS_GEMV_F32_VARIANT.
        if (!quick)
        {
            foreach (int m in new[] { 2, 4, 8 })
            {
                cs.Add(Mm(dt, m, 4096, 4096));
                cs.Add(Mm(dt, m, 4096, 4096, transposeB: true));
            }

            // The other orientation of the 16-row MLP product: a down projection (N 4096, K 11008) beside the up projection
            // 16 x 11008 x 4096 above, and both with 12 rows, so no 9-16-row kernel is judged on one shape or one row count.
            cs.Add(Mm(dt, 16, 4096, 11008));
            cs.Add(Mm(dt, 16, 4096, 11008, transposeB: true));
            foreach (var (n, k) in new[] { (11008, 4096), (4096, 11008) })
            {
                cs.Add(Mm(dt, 12, n, k));
                cs.Add(Mm(dt, 12, n, k, transposeB: true));
            }
        }

        foreach (var (b, h, kh, lq, lk, d, causal) in attn)
        {
            cs.Add(Attention(dt, b, h, kh, lq, lk, d, causal));
        }

        if (!bench || quick)
        {
            cs.Add(quick ? Bmm(dt, 3, 5, 7, 9) : Bmm(dt, 8, 257, 129, 513));
            cs.Add(quick ? Addmm(dt, 5, 7, 9) : Addmm(dt, 257, 1031, 513));
            if (!quick)
            {
                // 16-byte aligned rows (K, N multiples of 8): the tensor-core kernel's cp.async path, with M, N, K edges.
                cs.Add(Bmm(dt, 8, 264, 136, 520));
                cs.Add(Addmm(dt, 264, 1032, 520));
                if (dt != DType.F32)
                {
                    // The 16-bit decode GEMV with a bias and split-K: [K, N] in two row blocks, and [N, K] with 5 rows.
                    cs.Add(Addmm(dt, 16, 1032, 520));
                    cs.Add(Mm(dt, 5, 1032, 520, transposeB: true));

                    // bmm over several 128 x 256 tiles of the wgmma kernel (GEMS_TC_GEMM_VARIANT=wgmma): M, N edges, K not a multiple of 64.
                    cs.Add(Bmm(dt, 4, 300, 520, 264));
                }
            }
        }
    }

    private static TensorSpec In(string name, long n, Gen? gen = null, bool allowF32 = false, params string[] aliases) =>
        new(new[] { name }.Concat(aliases).ToArray(), n, TensorKind.Data, gen ?? Gen.Normal, allowF32);

    private static TensorSpec Out(string name, long n, params string[] aliases) =>
        new(new[] { name }.Concat(aliases).ToArray(), n, TensorKind.Data, null);

    private static TensorSpec OutIdx(string name, long n, params string[] aliases) =>
        new(new[] { name }.Concat(aliases).ToArray(), n, TensorKind.Index, null);

    private static OpCase Copy(DType dt, long n)
    {
        var c = new OpCase
        {
            Op = "copy", Methods = new[] { "(accelerator copy)" }, DType = dt, Shape = n.ToString(System.Globalization.CultureInfo.InvariantCulture), Category = "copy",
            Reference = h => new() { ["y"] = new Expected(Array.ConvertAll(h["a"].F, v => (double)v)) },
            Custom = set => dt == DType.F32 ? CopyAction<float>(set) : CopyAction<ushort>(set),
        };
        c.Inputs.Add(In("a", n));
        c.Outputs.Add(Out("y", n));
        return c;
    }

    /// <summary>The launch floor (<see cref="LaunchFloor"/>): one float copied by one thread, the least any timed launch costs.</summary>
    private static OpCase Floor()
    {
        var c = new OpCase
        {
            Op = "launch", Methods = new[] { "(launch floor)" }, DType = DType.F32, Shape = "1", Category = "floor",
            Reference = h => new() { ["y"] = new Expected(new[] { (double)h["a"].F[0] }) },
            Custom = set => LaunchFloor.Launch(set.Accelerator, (ArrayView<float>)set.View("a", typeof(float)), (ArrayView<float>)set.View("y", typeof(float))),
        };
        c.Inputs.Add(In("a", 1));
        c.Outputs.Add(Out("y", 1));
        return c;
    }

    /// <summary>
    /// The read probe (<see cref="ReadCeiling"/>) at the byte counts the reachable decode rows must read at least, in
    /// floats: 32 MiB (a 16-bit 4096² weight; one sequence's K and V at head size 128 in float32), 64 MiB (a float32 4096²
    /// weight), the 16-bit and float32 4096 × 11008 weights; every pattern at each (the <c>bulk</c> ones where the device
    /// runs them). (The smaller K and V caches are out of reach by the launch floor already.) Quick: three patterns (one
    /// of each walk) over a small buffer.
    /// </summary>
    private static void AddReads(List<OpCase> cs, bool quick, ReadCeiling.ReadGrid grid)
    {
        long[] sizes = quick
            ? new[] { 4096L * 37 }
            : new[] { 1L << 23, 1L << 24, 11008L * 4096 / 2, 11008L * 4096 };
        var patterns = quick
            ? new[] { new ReadCeiling.Pattern(ReadCeiling.Walk.Stride, 2, 4), new ReadCeiling.Pattern(ReadCeiling.Walk.Chunk, 1, 16), new ReadCeiling.Pattern(ReadCeiling.Walk.Bulk, 1, 2) }
            : (from walk in new[] { ReadCeiling.Walk.Stride, ReadCeiling.Walk.Chunk }
               from groupsPerSm in new[] { 1, 2, 4, 8 }
               from loads in ReadCeiling.LoadsInFlight
               select new ReadCeiling.Pattern(walk, groupsPerSm, loads))
              .Concat(ReadCeiling.BulkPatterns.Select(p => new ReadCeiling.Pattern(ReadCeiling.Walk.Bulk, p.GroupsPerSm, p.Stages))).ToArray();
        patterns = patterns.Where(p => p.Walk != ReadCeiling.Walk.Bulk || grid.BulkCopy).ToArray();
        foreach (long n in sizes)
        {
            foreach (var pattern in patterns)
            {
                cs.Add(Read(n, pattern, grid));
            }
        }

        // The 16-bit weights of the × 11008 products read as [K, N] column strips, as the small-M products' groups read
        // them (one strip of 64, 128, 256 or 512 columns each where that tiles a row, K split so that about 3 groups run
        // per SM).
        (long N, int PitchVectors)[] matrices = quick
            ? new[] { (4096L * 37, 64) }
            : new[] { (11008L * 4096 / 2, 4096 * 2 / 16), (11008L * 4096 / 2, 11008 * 2 / 16) };
        int[] widths = quick ? new[] { 8, 2 } : new[] { 8, 16, 32, 64 };
        int[] loadCounts = quick ? new[] { 4 } : new[] { 4, 8, 16 };
        int groupsWanted = quick ? 24 : 3 * Math.Max(1, grid.Multiprocessors);
        foreach (var (n, pitch) in matrices)
        {
            foreach (int width in widths.Where(w => pitch % w == 0))
            {
                int strips = pitch / width;
                var shape = new ReadCeiling.StripShape(pitch, width, Math.Max(1, groupsWanted / strips));
                foreach (int loads in loadCounts)
                {
                    cs.Add(Read(n, ReadCeiling.Strips(shape, loads), grid));
                }
            }
        }
    }

    private static OpCase Read(long n, ReadCeiling.Pattern pattern, ReadCeiling.ReadGrid grid)
    {
        int groups = grid.Groups(pattern);
        var c = new OpCase
        {
            Op = "read", Methods = new[] { "(read probe)" }, DType = DType.F32, Shape = $"{N(n)}:{pattern}", Category = "read",
            AtolScale = (double)n / groups,
            Reference = h => new() { ["y"] = new Expected(ReadCeiling.ExpectedSums(h["x"].F, pattern, grid)) },
            Custom = set => ReadCeiling.Launch(set.Accelerator, (ArrayView<float>)set.View("x", typeof(float)), (ArrayView<float>)set.View("y", typeof(float)), pattern),
        };
        c.Inputs.Add(In("x", n));
        c.Outputs.Add(Out("y", groups));
        c.Uncounted.Add("y");
        return c;
    }

    /// <summary>Self-test: a launch that writes nothing must FAIL (the poisoned output is caught).</summary>
    public static OpCase NoOp(DType dt, long n)
    {
        var c = Copy(dt, n);
        return new OpCase
        {
            Op = "selftest_unwritten_output", Methods = c.Methods, DType = dt, Shape = c.Shape, Category = "selftest",
            Reference = c.Reference, Custom = _ => () => { },
        }.With(c);
    }

    private static OpCase With(this OpCase target, OpCase source)
    {
        target.Inputs.AddRange(source.Inputs);
        target.Outputs.AddRange(source.Outputs);
        return target;
    }

    private static Action CopyAction<T>(DeviceSet set)
        where T : unmanaged
    {
        var a = (ArrayView<T>)set.View("a", typeof(T));
        var y = (ArrayView<T>)set.View("y", typeof(T));
        return () => a.CopyTo(y);
    }

    private static OpCase Binary(string op, string method, DType dt, long n, double? alpha, Func<double, double, double> f)
    {
        var c = new OpCase
        {
            Op = op, Methods = new[] { method }, DType = dt, Shape = N(n), Category = "elementwise",
            Reference = h =>
            {
                var a = h["a"].F;
                var b = h["b"].F;
                return Par.One("y", Par.Map(a.LongLength, i => f(a[i], b[i])));
            },
        };
        c.Inputs.Add(In("a", n, aliases: new[] { "x", "input" }));
        c.Inputs.Add(In("b", n, aliases: new[] { "other" }));
        c.Outputs.Add(Out("y", n, Y));
        if (alpha is double al)
        {
            c.Scalars["alpha"] = al;
        }

        return c;
    }

    private static OpCase Unary(string op, string method, DType dt, long n, Func<double, double> f, Gen gen, (string Name, object Value) activation, (string Name, object Value)? scalar = null, double rtolScale = 1)
    {
        var c = new OpCase
        {
            // 16-bit: IlgpuKernels.Activation(x, y, HalfActivation, HalfFormat).
            Op = op, Methods = new[] { method, "Activation" }, DType = dt, Shape = N(n), Category = "elementwise", RtolScale = rtolScale,
            Reference = h =>
            {
                var x = h["x"].F;
                return Par.One("y", Par.Map(x.LongLength, i => f(x[i])));
            },
        };
        c.Inputs.Add(In("x", n, gen, aliases: new[] { "a", "input" }));
        c.Outputs.Add(Out("y", n, Y));
        c.Scalars[activation.Name] = activation.Value;
        if (scalar is { } s)
        {
            c.Scalars[s.Name] = s.Value;
        }

        return c;
    }

    private static OpCase Gated(string op, string method, DType dt, int rows, int d, Func<double, double> act, string? approximation, string activation)
    {
        var c = new OpCase
        {
            // 16-bit: IlgpuKernels.GatedAndMul(x, y, rows, d, HalfActivation, HalfFormat).
            Op = op, Methods = new[] { method, "GatedAndMul" }, DType = dt, Shape = $"{rows}x{d}", Category = "gated",
            Reference = h =>
            {
                var x = h["x"].F;
                return Par.One("y", Par.Map((long)rows * d, i =>
                {
                    long r = i / d, col = i % d;
                    return act(x[r * 2 * d + col]) * x[r * 2 * d + d + col];
                }));
            },
        };
        c.Inputs.Add(In("x", 2L * rows * d, aliases: "input"));
        c.Outputs.Add(Out("y", (long)rows * d, Y));
        c.Scalars["rows"] = rows;
        c.Scalars["d"] = d;
        c.Scalars["activation"] = activation;
        if (approximation is not null)
        {
            c.Scalars["approximation"] = approximation;
        }

        return c;
    }

    private static OpCase Embedding(DType dt, int tokens, int vocab, int dim)
    {
        var c = new OpCase
        {
            Op = "embedding", Methods = new[] { "Embedding" }, DType = dt, Shape = $"{tokens}x{dim}", Category = "index", ExtraReadElements = (long)tokens * dim,
            Reference = h =>
            {
                var w = h["weight"].F;
                var ids = h["indices"].L;
                return Par.One("output", Par.Map((long)tokens * dim, i => w[ids[i / dim] * dim + i % dim]));
            },
        };
        c.Inputs.Add(In("weight", (long)vocab * dim));
        c.Inputs.Add(new TensorSpec(new[] { "indices", "ids", "tokens" }, tokens, TensorKind.Index, Gen.Ints(0, vocab)));
        c.Outputs.Add(Out("output", (long)tokens * dim, Y));
        c.Scalars["dim"] = dim;

        // Bytes: rows gathered + indices + output (not the whole table). Bench sets share the table, with other indices.
        c.Uncounted.Add("weight");
        c.SharedAcrossSets.Add("weight");
        return c;
    }

    private static OpCase RmsNorm(DType dt, int rows, int cols)
    {
        const double Eps = 1e-6;
        var c = new OpCase
        {
            Op = "rms_norm", Methods = new[] { "RmsNorm" }, DType = dt, Shape = $"{rows}x{cols}", Category = "norm",
            Reference = h =>
            {
                var x = h["x"].F;
                var w = h["weight"].F;
                var y = new double[(long)rows * cols];
                Par.Rows(rows, r =>
                {
                    long o = (long)r * cols;
                    double ss = 0;
                    for (int j = 0; j < cols; j++)
                    {
                        ss += (double)x[o + j] * x[o + j];
                    }

                    double inv = 1 / Math.Sqrt(ss / cols + Eps);
                    for (int j = 0; j < cols; j++)
                    {
                        y[o + j] = x[o + j] * inv * w[j];
                    }
                });
                return Par.One("y", y);
            },
        };
        c.Inputs.Add(In("x", (long)rows * cols, aliases: "input"));
        c.Inputs.Add(In("weight", cols, allowF32: true, aliases: "w"));
        c.Outputs.Add(Out("y", (long)rows * cols, Y));
        c.Scalars["cols"] = cols;
        c.Scalars["epsilon"] = (float)Eps;
        c.Scalars["eps"] = (float)Eps;
        c.Uncounted.Add("weight");
        return c;
    }

    private static OpCase FusedAddRmsNorm(DType dt, int rows, int cols)
    {
        const double Eps = 1e-6;
        var c = new OpCase
        {
            Op = "fused_add_rms_norm", Methods = new[] { "FusedAddRmsNorm" }, DType = dt, Shape = $"{rows}x{cols}", Category = "norm",
            Reference = h =>
            {
                var x = h["x"].F;
                var res = h["residual"].F;
                var w = h["weight"].F;
                var y = new double[(long)rows * cols];
                var s = new double[(long)rows * cols];
                Par.Rows(rows, r =>
                {
                    long o = (long)r * cols;
                    double ss = 0;
                    for (int j = 0; j < cols; j++)
                    {
                        // The residual output is stored in the dtype; the norm reads that stored value (vLLM).
                        double z = dt.Round((float)((double)x[o + j] + res[o + j]));
                        s[o + j] = z;
                        ss += z * z;
                    }

                    double inv = 1 / Math.Sqrt(ss / cols + Eps);
                    for (int j = 0; j < cols; j++)
                    {
                        y[o + j] = s[o + j] * inv * w[j];
                    }
                });
                return new() { ["x"] = new Expected(y), ["residual"] = new Expected(s) };
            },
        };
        c.Inputs.Add(In("x", (long)rows * cols, aliases: "input"));
        c.Inputs.Add(In("residual", (long)rows * cols, aliases: "res"));
        c.Inputs.Add(In("weight", cols, allowF32: true, aliases: "w"));
        c.InPlace.Add("x");
        c.InPlace.Add("residual");
        c.Scalars["cols"] = cols;
        c.Scalars["epsilon"] = (float)Eps;
        c.Scalars["eps"] = (float)Eps;
        c.Uncounted.Add("weight");
        return c;
    }

    private static OpCase LayerNorm(DType dt, int rows, int cols)
    {
        const double Eps = 1e-5;
        var c = new OpCase
        {
            Op = "layer_norm", Methods = new[] { "LayerNorm" }, DType = dt, Shape = $"{rows}x{cols}", Category = "norm",
            Reference = h =>
            {
                var x = h["x"].F;
                var w = h["weight"].F;
                var b = h["bias"].F;
                var y = new double[(long)rows * cols];
                Par.Rows(rows, r =>
                {
                    long o = (long)r * cols;
                    double mean = 0;
                    for (int j = 0; j < cols; j++)
                    {
                        mean += x[o + j];
                    }

                    mean /= cols;
                    double v = 0;
                    for (int j = 0; j < cols; j++)
                    {
                        double dlt = x[o + j] - mean;
                        v += dlt * dlt;
                    }

                    double inv = 1 / Math.Sqrt(v / cols + Eps);
                    for (int j = 0; j < cols; j++)
                    {
                        y[o + j] = (x[o + j] - mean) * inv * w[j] + b[j];
                    }
                });
                return Par.One("y", y);
            },
        };
        c.Inputs.Add(In("x", (long)rows * cols, aliases: "input"));
        c.Inputs.Add(In("weight", cols, allowF32: true, aliases: "w"));
        c.Inputs.Add(In("bias", cols, allowF32: true, aliases: "b"));
        c.Outputs.Add(Out("y", (long)rows * cols, Y));
        c.Scalars["cols"] = cols;
        c.Scalars["epsilon"] = (float)Eps;
        c.Scalars["eps"] = (float)Eps;
        c.Uncounted.Add("weight");
        c.Uncounted.Add("bias");
        return c;
    }

    private static OpCase Softmax(DType dt, int rows, int cols, bool log)
    {
        var c = new OpCase
        {
            // 16-bit log-softmax is Softmax(..., format, log: true); binding Softmax for it requires the log parameter.
            Op = log ? "log_softmax" : "softmax", Methods = log ? new[] { "LogSoftmax", "Softmax" } : new[] { "Softmax" }, DType = dt, Shape = $"{rows}x{cols}", Category = "softmax",
            Reference = h =>
            {
                var x = h["x"].F;
                var y = new double[(long)rows * cols];
                Par.Rows(rows, r =>
                {
                    long o = (long)r * cols;
                    double max = double.NegativeInfinity;
                    for (int j = 0; j < cols; j++)
                    {
                        max = Math.Max(max, x[o + j]);
                    }

                    double sum = 0;
                    for (int j = 0; j < cols; j++)
                    {
                        sum += Math.Exp(x[o + j] - max);
                    }

                    double ls = Math.Log(sum);
                    for (int j = 0; j < cols; j++)
                    {
                        y[o + j] = log ? x[o + j] - max - ls : Math.Exp(x[o + j] - max) / sum;
                    }
                });
                return Par.One("y", y);
            },
        };
        c.Inputs.Add(In("x", (long)rows * cols, Gen.Uniform(-10, 10), aliases: "input"));
        c.Outputs.Add(Out("y", (long)rows * cols, Y));
        c.Scalars["cols"] = cols;
        c.Scalars["log"] = log;
        if (log)
        {
            c.RequiredScalars["Softmax"] = new[] { "log" };
        }

        return c;
    }

    private static OpCase Reduce(string op, string method, DType dt, int rows, int cols, Func<double[], double> f, double atolScale)
    {
        var c = new OpCase
        {
            Op = op, Methods = new[] { method }, DType = dt, Shape = $"{rows}x{cols}", Category = "reduce", AtolScale = atolScale,
            Reference = h =>
            {
                var x = h["x"].F;
                var y = new double[rows];
                Par.Rows(rows, r =>
                {
                    var row = new double[cols];
                    for (int j = 0; j < cols; j++)
                    {
                        row[j] = x[(long)r * cols + j];
                    }

                    y[r] = f(row);
                });
                return Par.One("output", y);
            },
        };
        c.Inputs.Add(In("x", (long)rows * cols, aliases: "input"));
        c.Outputs.Add(Out("output", rows, Y));
        c.Scalars["cols"] = cols;
        return c;
    }

    private static OpCase Argmax(DType dt, int rows, int cols)
    {
        var c = new OpCase
        {
            Op = "argmax", Methods = new[] { "Argmax" }, DType = dt, Shape = $"{rows}x{cols}", Category = "reduce",
            Reference = h =>
            {
                var x = h["x"].F;
                var y = new long[rows];
                Par.Rows(rows, r =>
                {
                    long o = (long)r * cols;
                    int best = 0;
                    for (int j = 1; j < cols; j++)
                    {
                        if (x[o + j] > x[o + best])
                        {
                            best = j;
                        }
                    }

                    y[r] = best;
                });
                return new() { ["output"] = new Expected(y) };
            },
        };
        c.Inputs.Add(In("x", (long)rows * cols, aliases: "input"));
        c.Outputs.Add(OutIdx("output", rows, Y.Concat(new[] { "indices" }).ToArray()));
        c.Scalars["cols"] = cols;
        return c;
    }

    private static OpCase TopK(DType dt, int rows, int cols, int k)
    {
        var c = new OpCase
        {
            Op = "topk", Methods = new[] { "TopK" }, DType = dt, Shape = $"{rows}x{cols}k{k}", Category = "reduce",
            Reference = h =>
            {
                var x = h["x"].F;
                var vals = new double[(long)rows * k];
                var idx = new long[(long)rows * k];
                Par.Rows(rows, r =>
                {
                    long o = (long)r * cols;
                    var order = Enumerable.Range(0, cols).OrderByDescending(j => x[o + j]).ThenBy(j => j).Take(k).ToArray();
                    for (int i = 0; i < k; i++)
                    {
                        vals[(long)r * k + i] = x[o + order[i]];
                        idx[(long)r * k + i] = order[i];
                    }
                });
                return new() { ["values"] = new Expected(vals), ["indices"] = new Expected(idx) };
            },
        };
        c.Inputs.Add(In("x", (long)rows * cols, aliases: "input"));
        c.Outputs.Add(Out("values", (long)rows * k));
        c.Outputs.Add(OutIdx("indices", (long)rows * k));
        c.Scalars["cols"] = cols;
        c.Scalars["k"] = k;
        return c;
    }

    /// <summary>
    /// vLLM rotary_embedding, neox style (rotate halves), in place on query [T, QH·D] and key [T, KH·D], with
    /// cos_sin_cache [maxPositions, D] (cos half, then sin half) in the case's dtype, random positions. The script's shape
    /// is T 4096, 32 + 8 heads, D 128. Bytes as the script: 2·(|q| + |k|)·esz (cache and positions not counted).
    /// </summary>
    private static OpCase Rotary(DType dt, int tokens, int qh, int kh, int d)
    {
        int half = d / 2;
        int maxPos = Math.Max(tokens, 4096);
        var c = new OpCase
        {
            Op = "rotary_embedding", Methods = new[] { "RotaryEmbedding", "Rotary" }, DType = dt, Shape = $"{tokens}x{qh}+{kh}x{d}", Category = "rotary",
            Reference = h =>
            {
                var cache = h["cosSinCache"].F;
                var pos = h["positions"].L;
                double[] Rot(float[] t, int heads)
                {
                    var y = new double[(long)tokens * heads * d];
                    Par.Rows(tokens, i =>
                    {
                        long p = pos[i] * d;
                        for (int hh = 0; hh < heads; hh++)
                        {
                            long o = ((long)i * heads + hh) * d;
                            for (int j = 0; j < half; j++)
                            {
                                double cv = cache[p + j], sv = cache[p + half + j];
                                double x1 = t[o + j], x2 = t[o + half + j];
                                y[o + j] = x1 * cv - x2 * sv;
                                y[o + half + j] = x2 * cv + x1 * sv;
                            }
                        }
                    });
                    return y;
                }

                return new() { ["q"] = new Expected(Rot(h["q"].F, qh)), ["k"] = new Expected(Rot(h["k"].F, kh)) };
            },
        };
        c.Inputs.Add(new TensorSpec(new[] { "positions", "pos", "positionIds" }, tokens, TensorKind.Index, Gen.Ints(0, maxPos)));
        c.Inputs.Add(In("q", (long)tokens * qh * d, aliases: "query"));
        c.Inputs.Add(In("k", (long)tokens * kh * d, aliases: "key"));
        c.Inputs.Add(In("cosSinCache", (long)maxPos * d, Gen.Uniform(-1, 1), allowF32: true, aliases: "cache"));
        c.InPlace.Add("q");
        c.InPlace.Add("k");
        c.Uncounted.Add("cosSinCache");
        c.Uncounted.Add("positions");
        c.Scalars["headSize"] = d;
        c.Scalars["rotaryDim"] = d;
        c.Scalars["isNeox"] = true;
        return c;
    }

    /// <summary>
    /// scaled_dot_product_attention, q/output [B, H, Lq, D], k/v [B, KH, Lk, D], scale 1/√D. Prefill: causal (top-left),
    /// FLOPs 4·B·H·Lq·Lk·D / 2. Decode: up to 64 non-causal queries (the decode rows), bytes = q + k + v + output
    /// (K+V dominate; compare with the copy rate).
    /// </summary>
    private static OpCase Attention(DType dt, int batch, int heads, int kvHeads, int lq, int lk, int d, bool causal)
    {
        var c = new OpCase
        {
            Op = causal ? "sdpa_causal" : "sdpa", Methods = new[] { "ScaledDotProductAttention", "Attention" }, DType = dt,
            Shape = $"{batch}x{heads}/{kvHeads}x{lq}x{lk}x{d}", Category = IsDecode(lq, causal) ? "attention-decode" : "attention-prefill",
            Flops = 4.0 * batch * heads * lq * lk * d * (causal && lq == lk ? 0.5 : 1.0),
            Reference = h => Par.One("output", RefMath.Attention(h["q"].F, h["k"].F, h["v"].F, batch, heads, kvHeads, lq, lk, d, causal)),
        };
        c.Inputs.Add(In("q", (long)batch * heads * lq * d, aliases: "query"));
        c.Inputs.Add(In("k", (long)batch * kvHeads * lk * d, aliases: "key"));
        c.Inputs.Add(In("v", (long)batch * kvHeads * lk * d, aliases: "value"));
        c.Outputs.Add(Out("output", (long)batch * heads * lq * d, Y));
        c.Scalars["batch"] = batch;
        c.Scalars["heads"] = heads;
        c.Scalars["kvHeads"] = kvHeads;
        c.Scalars["lq"] = lq;
        c.Scalars["lk"] = lk;
        c.Scalars["headDim"] = d;
        c.Scalars["causal"] = causal;
        c.Scalars["isCausal"] = causal;
        return c;
    }

    private static bool IsDecode(int lq, bool causal) => lq == 1 || (lq <= 64 && !causal);

    /// <summary>C[M,N] = A[M,K]·B[K,N], row-major. M ≤ 64 counts as a decode GEMV (bytes of A, B, C reported).</summary>
    /// <remarks>With <paramref name="transposeB"/> (op mm_tb) b is stored [N, K], the nn.Linear weight layout.</remarks>
    private static OpCase Mm(DType dt, int m, int n, int k, bool transposeB = false)
    {
        var c = new OpCase
        {
            Op = transposeB ? "mm_tb" : "mm", Methods = new[] { "Mm", "MatMul", "Gemm" }, DType = dt, Shape = $"{m}x{n}x{k}", Category = m <= 64 ? "gemv" : "gemm",
            Flops = 2.0 * m * n * k, AtolScale = k,
            Reference = h => Par.One("c", RefMath.MatMul(h["a"].F, transposeB ? Transpose(h["b"].F, n, k) : h["b"].F, m, n, k)),
        };
        c.Scalars["transposeB"] = transposeB;
        if (transposeB)
        {
            c.RequiredScalars["Mm"] = new[] { "transposeB" };
        }

        c.Inputs.Add(In("a", (long)m * k, aliases: new[] { "x", "input" }));
        c.Inputs.Add(In("b", (long)k * n, aliases: new[] { "w", "weight", "mat2", "other" }));
        c.Outputs.Add(Out("c", (long)m * n, Y));
        c.Scalars["m"] = m;
        c.Scalars["n"] = n;
        c.Scalars["k"] = k;
        return c;
    }

    private static OpCase Bmm(DType dt, int batch, int m, int n, int k)
    {
        var c = new OpCase
        {
            Op = "bmm", Methods = new[] { "Bmm", "BatchMatMul" }, DType = dt, Shape = $"{batch}x{m}x{n}x{k}", Category = "gemm",
            Flops = 2.0 * batch * m * n * k, AtolScale = k,
            Reference = h => Par.One("c", RefMath.MatMul(h["a"].F, h["b"].F, m, n, k, batch)),
        };
        c.Inputs.Add(In("a", (long)batch * m * k, aliases: new[] { "x", "input" }));
        c.Inputs.Add(In("b", (long)batch * k * n, aliases: new[] { "mat2", "other" }));
        c.Outputs.Add(Out("c", (long)batch * m * n, Y));
        c.Scalars["batch"] = batch;
        c.Scalars["m"] = m;
        c.Scalars["n"] = n;
        c.Scalars["k"] = k;
        return c;
    }

    /// <summary>addmm: C = beta·bias + alpha·A·B with bias [N] broadcast over rows (the nn.Linear form).</summary>
    private static OpCase Addmm(DType dt, int m, int n, int k)
    {
        const double Alpha = 1.0, Beta = 1.0;
        var c = new OpCase
        {
            Op = "addmm", Methods = new[] { "Addmm", "AddMm" }, DType = dt, Shape = $"{m}x{n}x{k}", Category = "gemm",
            Flops = 2.0 * m * n * k, AtolScale = k,
            Reference = h =>
            {
                var p = RefMath.MatMul(h["a"].F, h["b"].F, m, n, k);
                var bias = h["bias"].F;
                return Par.One("c", Par.Map(p.LongLength, i => Beta * bias[i % n] + Alpha * p[i]));
            },
        };
        c.Inputs.Add(In("bias", n, allowF32: true, aliases: new[] { "input", "self" }));
        c.Inputs.Add(In("a", (long)m * k, aliases: new[] { "mat1", "x" }));
        c.Inputs.Add(In("b", (long)k * n, aliases: new[] { "mat2", "w", "weight" }));
        c.Outputs.Add(Out("c", (long)m * n, Y));
        c.Scalars["m"] = m;
        c.Scalars["n"] = n;
        c.Scalars["k"] = k;
        c.Scalars["alpha"] = (float)Alpha;
        c.Scalars["beta"] = (float)Beta;
        return c;
    }

    private static float[] Transpose(float[] x, int rows, int cols)
    {
        var t = new float[x.LongLength];
        Par.Rows(rows, r =>
        {
            for (int j = 0; j < cols; j++)
            {
                t[(long)j * rows + r] = x[(long)r * cols + j];
            }
        });
        return t;
    }

    private static string N(long n) => n.ToString(System.Globalization.CultureInfo.InvariantCulture);
}
