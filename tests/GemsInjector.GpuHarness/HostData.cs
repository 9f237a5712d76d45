using System;
using System.Collections.Generic;
using System.Threading.Tasks;

namespace GemsInjector.GpuHarness;

/// <summary>How a tensor's elements are typed: the case dtype, int64 indices, or always float32.</summary>
internal enum TensorKind
{
    /// <summary>Elements of the case's dtype (float32, or float16 / bfloat16 as ushort bits on the device).</summary>
    Data,

    /// <summary>int64 indices (int32 if the kernel takes that).</summary>
    Index,
}

/// <summary>How a tensor's random values are drawn (never zeros: unwritten outputs and bad indexing must show).</summary>
internal abstract record Gen
{
    public static readonly Gen Normal = new NormalGen(0, 1);

    public static Gen Uniform(double lo, double hi) => new UniformGen(lo, hi);

    public static Gen Ints(long lo, long hiExclusive) => new IntGen(lo, hiExclusive);
}

internal sealed record NormalGen(double Mean, double Std) : Gen;

internal sealed record UniformGen(double Lo, double Hi) : Gen;

internal sealed record IntGen(long Lo, long HiExclusive) : Gen;

/// <summary>One tensor of a case: its names (first canonical, others aliases for binding by parameter name).</summary>
internal sealed record TensorSpec(string[] Names, long Length, TensorKind Kind, Gen? Gen, bool AllowF32 = false)
{
    public string Name => Names[0];
}

/// <summary>A tensor's host copy: for Data, the exact values (already rounded to the dtype); for Index, the indices.</summary>
internal sealed class HostTensor
{
    public HostTensor(TensorSpec spec, DType dtype, float[]? values, long[]? indices)
    {
        Spec = spec;
        DType = dtype;
        Values = values;
        Indices = indices;
    }

    public TensorSpec Spec { get; }

    public DType DType { get; }

    public float[]? Values { get; }

    public long[]? Indices { get; }

    public float[] F => Values ?? throw new InvalidOperationException($"{Spec.Name} has no float values.");

    public long[] L => Indices ?? throw new InvalidOperationException($"{Spec.Name} has no indices.");

    /// <summary>Draws a tensor: deterministic in (seed, salt), generated in parallel chunks (2^20 elements each).</summary>
    public static HostTensor Random(TensorSpec spec, DType dtype, int seed, int salt)
    {
        if (spec.Kind == TensorKind.Index)
        {
            var g = spec.Gen as IntGen ?? throw new InvalidOperationException($"{spec.Name}: index tensors need Gen.Ints.");
            var idx = new long[spec.Length];
            Chunks(spec.Length, seed, salt, (rng, lo, hi) =>
            {
                for (long i = lo; i < hi; i++)
                {
                    idx[i] = g.Lo + (long)(rng.NextDouble() * (g.HiExclusive - g.Lo));
                }
            });
            return new HostTensor(spec, dtype, null, idx);
        }

        var v = new float[spec.Length];
        var gen = spec.Gen ?? Gen.Normal;
        Chunks(spec.Length, seed, salt, (rng, lo, hi) =>
        {
            switch (gen)
            {
                case NormalGen n:
                    for (long i = lo; i < hi; i += 2)
                    {
                        // Box-Muller: two normals per pair of uniforms.
                        double u1 = 1.0 - rng.NextDouble();
                        double u2 = rng.NextDouble();
                        double r = Math.Sqrt(-2.0 * Math.Log(u1));
                        v[i] = dtype.Round((float)(n.Mean + n.Std * r * Math.Cos(2 * Math.PI * u2)));
                        if (i + 1 < hi)
                        {
                            v[i + 1] = dtype.Round((float)(n.Mean + n.Std * r * Math.Sin(2 * Math.PI * u2)));
                        }
                    }

                    break;
                case UniformGen u:
                    for (long i = lo; i < hi; i++)
                    {
                        v[i] = dtype.Round((float)(u.Lo + rng.NextDouble() * (u.Hi - u.Lo)));
                    }

                    break;
                default:
                    throw new InvalidOperationException($"{spec.Name}: unsupported generator {gen}.");
            }
        });
        return new HostTensor(spec, dtype, v, null);
    }

    private static void Chunks(long length, int seed, int salt, Action<Random, long, long> body)
    {
        const long chunk = 1 << 20;
        long chunks = (length + chunk - 1) / chunk;
        Parallel.For(0L, chunks, c =>
        {
            var rng = new Random(HashCode.Combine(seed, salt, c));
            body(rng, c * chunk, Math.Min(length, (c + 1) * chunk));
        });
    }
}

/// <summary>What an output must equal: float64 values or exact indices.</summary>
internal sealed class Expected
{
    public Expected(double[] values) => Values = values;

    public Expected(long[] indices) => Indices = indices;

    public double[]? Values { get; }

    public long[]? Indices { get; }

    public long Length => Values?.LongLength ?? Indices!.LongLength;
}

/// <summary>Host-side parallel loops for the float64 references.</summary>
internal static class Par
{
    /// <summary>Runs body(lo, hi) over [0, n) in parallel chunks.</summary>
    public static void Range(long n, Action<long, long> body, long chunk = 1 << 16)
    {
        if (n <= chunk)
        {
            body(0, n);
            return;
        }

        long chunks = (n + chunk - 1) / chunk;
        Parallel.For(0L, chunks, c => body(c * chunk, Math.Min(n, (c + 1) * chunk)));
    }

    /// <summary>Runs body(row) for each row in parallel.</summary>
    public static void Rows(int rows, Action<int> body)
    {
        if (rows == 1)
        {
            body(0);
            return;
        }

        Parallel.For(0, rows, body);
    }

    /// <summary>Element-wise map into a new float64 array.</summary>
    public static double[] Map(long n, Func<long, double> f)
    {
        var r = new double[n];
        Range(n, (lo, hi) =>
        {
            for (long i = lo; i < hi; i++)
            {
                r[i] = f(i);
            }
        });
        return r;
    }

    public static Dictionary<string, Expected> One(string name, double[] values) => new() { [name] = new Expected(values) };
}
