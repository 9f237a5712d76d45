using System;
using System.Numerics;
using System.Threading.Tasks;

namespace GemsInjector.GpuHarness;

/// <summary>float64 reference math (host).</summary>
internal static class RefMath
{
    public static double Silu(double v) => v / (1 + Math.Exp(-v));

    public static double Sigmoid(double v) => 1 / (1 + Math.Exp(-v));

    public static double GeluErf(double v) => 0.5 * v * Erfc(-v / Math.Sqrt(2));

    public static double GeluTanh(double v) => 0.5 * v * (1 + Math.Tanh(Math.Sqrt(2 / Math.PI) * (v + 0.044715 * v * v * v)));

    public static double Relu(double v) => double.IsNaN(v) ? v : Math.Max(v, 0);

    /// <summary>erfc to ~1e-15 relative: Taylor series of erf for |x| &lt; 2, a 60-term continued fraction beyond (rel. error &lt; 5e-16 from 2 up).</summary>
    public static double Erfc(double x)
    {
        if (double.IsNaN(x))
        {
            return x;
        }

        if (x < 0)
        {
            return 2 - Erfc(-x);
        }

        if (x < 2)
        {
            double sum = 0, term = x;
            for (int n = 0; n < 200; n++)
            {
                double t = term / (2 * n + 1);
                sum += t;
                if (Math.Abs(t) < 1e-17 * Math.Abs(sum))
                {
                    break;
                }

                term *= -x * x / (n + 1);
            }

            return 1 - 2 / Math.Sqrt(Math.PI) * sum;
        }

        if (x > 27)
        {
            return 0;
        }

        // erfc(x) = exp(-x²)/√π · 1/(x + (1/2)/(x + 1/(x + (3/2)/(x + 2/(x + ...))))), evaluated backwards.
        double f = x;
        for (int k = 60; k >= 1; k--)
        {
            f = x + k / 2.0 / f;
        }

        return Math.Exp(-x * x) / Math.Sqrt(Math.PI) / f;
    }

    /// <summary>
    /// scaled_dot_product_attention in float64: q / output [batch, heads, lq, d], k / v [batch, kvHeads, lk, d], query
    /// head h reading kv head h / (heads / kvHeads), scale 1/√d; causal is top-left (query i sees keys 0 .. i).
    /// Parallel over the query rows.
    /// </summary>
    public static double[] Attention(float[] q, float[] k, float[] v, int batch, int heads, int kvHeads, int lq, int lk, int d, bool causal)
    {
        var o = new double[(long)batch * heads * lq * d];
        int group = heads / kvHeads;
        double scale = 1 / Math.Sqrt(d);
        Parallel.For(0, batch * heads * lq, idx =>
        {
            int i = idx % lq, bh = idx / lq, hh = bh % heads, b = bh / heads;
            long qo = ((long)bh * lq + i) * d;
            long kvBase = ((long)b * kvHeads + hh / group) * lk * d;
            int last = causal ? Math.Min(lk - 1, i) : lk - 1;
            var s = new double[last + 1];
            double max = double.NegativeInfinity;
            for (int j = 0; j <= last; j++)
            {
                double acc = 0;
                long ko = kvBase + (long)j * d;
                for (int t = 0; t < d; t++)
                {
                    acc += (double)q[qo + t] * k[ko + t];
                }

                s[j] = acc * scale;
                max = Math.Max(max, s[j]);
            }

            double sum = 0;
            for (int j = 0; j <= last; j++)
            {
                s[j] = Math.Exp(s[j] - max);
                sum += s[j];
            }

            var acc2 = new double[d];
            for (int j = 0; j <= last; j++)
            {
                long vo = kvBase + (long)j * d;
                double w = s[j] / sum;
                for (int t = 0; t < d; t++)
                {
                    acc2[t] += w * v[vo + t];
                }
            }

            Array.Copy(acc2, 0, o, qo, d);
        });
        return o;
    }

    /// <summary>C[M,N] = A[M,K]·B[K,N] (row-major, float64 accumulate), parallel over 32-row x 128-column tiles.</summary>
    public static double[] MatMul(float[] a, float[] b, int m, int n, int k, int batch = 1)
    {
        var c = new double[(long)batch * m * n];
        const int rowTile = 32, colTile = 128;
        int rowTiles = (m + rowTile - 1) / rowTile, colTiles = (n + colTile - 1) / colTile;
        int lanes = Vector<double>.Count;
        Parallel.For(0, batch * rowTiles * colTiles, tile =>
        {
            int bi = tile / (rowTiles * colTiles);
            int rem = tile % (rowTiles * colTiles);
            int i0 = rem / colTiles * rowTile, j0 = rem % colTiles * colTile;
            int i1 = Math.Min(m, i0 + rowTile), j1 = Math.Min(n, j0 + colTile), w = j1 - j0;
            long aOff = (long)bi * m * k, bOff = (long)bi * k * n, cOff = (long)bi * m * n;
            var acc = new double[rowTile * colTile];
            var brow = new double[colTile];
            for (int kk = 0; kk < k; kk++)
            {
                long bBase = bOff + (long)kk * n + j0;
                for (int j = 0; j < w; j++)
                {
                    brow[j] = b[bBase + j];
                }

                for (int i = i0; i < i1; i++)
                {
                    double av = a[aOff + (long)i * k + kk];
                    var va = new Vector<double>(av);
                    int o = (i - i0) * colTile, j = 0;
                    for (; j + lanes <= w; j += lanes)
                    {
                        var vc = new Vector<double>(acc, o + j);
                        (vc + va * new Vector<double>(brow, j)).CopyTo(acc, o + j);
                    }

                    for (; j < w; j++)
                    {
                        acc[o + j] += av * brow[j];
                    }
                }
            }

            for (int i = i0; i < i1; i++)
            {
                Array.Copy(acc, (i - i0) * colTile, c, cOff + (long)i * n + j0, w);
            }
        });
        return c;
    }
}
