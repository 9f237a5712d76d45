using System;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace GemsInjector.Kernels.Cpu;

/// <summary>
/// float32 reductions over the middle axis of a contiguous [outer, length, inner] block: sum, amax, argmax, and top-k
/// selection. Sums add 1024-element runs in float32 vector lanes and the runs in float64 (pairwise-like accuracy at 4096²).
/// amax and argmax propagate NaN as PyTorch (NaN is the maximum; the first NaN or the first maximum wins).
/// </summary>
internal static unsafe class ReductionKernels
{
    private const int Run = 1024;

    /// <summary>The sum of <paramref name="length"/> contiguous floats: float32 lanes per 1024-run, float64 across runs.</summary>
    public static double SumContiguous(float* x, long length)
    {
        double total = 0;
        for (long start = 0; start < length; start += Run)
        {
            total += SumRun(x + start, (int)Math.Min(Run, length - start));
        }

        return total;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float SumRun(float* x, int length)
    {
        int i = 0;
        float sum = 0;
        if (Vector512.IsHardwareAccelerated)
        {
            Vector512<float> a = default, b = default;
            for (; i <= length - 32; i += 32)
            {
                a += Vector512.Load(x + i);
                b += Vector512.Load(x + i + 16);
            }

            sum = Vector512.Sum(a + b);
        }
        else if (Vector256.IsHardwareAccelerated)
        {
            Vector256<float> a = default, b = default;
            for (; i <= length - 16; i += 16)
            {
                a += Vector256.Load(x + i);
                b += Vector256.Load(x + i + 8);
            }

            sum = Vector256.Sum(a + b);
        }

        for (; i < length; i++)
        {
            sum += x[i];
        }

        return sum;
    }

    /// <summary>out[o, j] = sum over l of x[o, l, j] (inner &gt; 1): float32 row additions per 1024 rows, float64 across.</summary>
    public static void SumStrided(float* x, long length, long inner, double* wide, float* partial)
    {
        new Span<double>(wide, checked((int)inner)).Clear();
        for (long start = 0; start < length; start += Run)
        {
            long end = Math.Min(length, start + Run);
            new Span<float>(partial, (int)inner).Clear();
            for (long l = start; l < end; l++)
            {
                AddRow(partial, x + l * inner, (int)inner);
            }

            for (long j = 0; j < inner; j++)
            {
                wide[j] += partial[j];
            }
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void AddRow(float* accumulator, float* row, int length)
    {
        int j = 0;
        if (Vector512.IsHardwareAccelerated)
        {
            for (; j <= length - 16; j += 16)
            {
                (Vector512.Load(accumulator + j) + Vector512.Load(row + j)).Store(accumulator + j);
            }
        }

        for (; j < length; j++)
        {
            accumulator[j] += row[j];
        }
    }

    /// <summary>The maximum of a strided line (NaN if any element is NaN); <paramref name="length"/> &gt; 0.</summary>
    public static float Max(float* x, long length, long stride)
    {
        if (stride == 1)
        {
            long i = 0;
            float best = float.NegativeInfinity;
            if (Vector512.IsHardwareAccelerated && length >= 16)
            {
                Vector512<float> m = Vector512.Create(float.NegativeInfinity);
                Vector512<float> nan = Vector512<float>.Zero;
                for (; i <= length - 16; i += 16)
                {
                    Vector512<float> v = Vector512.Load(x + i);
                    m = Vector512.MaxNative(m, v);
                    nan |= ~Vector512.Equals(v, v);
                }

                if (nan != Vector512<float>.Zero)
                {
                    return float.NaN;
                }

                float* lanes = stackalloc float[16];
                m.Store(lanes);
                for (int t = 0; t < 16; t++)
                {
                    best = Math.Max(best, lanes[t]);
                }
            }

            for (; i < length; i++)
            {
                float v = x[i];
                if (float.IsNaN(v))
                {
                    return v;
                }

                best = Math.Max(best, v);
            }

            return best;
        }

        float result = float.NegativeInfinity;
        for (long i = 0; i < length; i++)
        {
            float v = x[i * stride];
            if (float.IsNaN(v))
            {
                return v;
            }

            result = Math.Max(result, v);
        }

        return result;
    }

    /// <summary>The index of the first maximum of a strided line (the first NaN if any); <paramref name="length"/> &gt; 0.</summary>
    public static long ArgMax(float* x, long length, long stride)
    {
        float best = Max(x, length, stride);
        if (float.IsNaN(best))
        {
            for (long i = 0; i < length; i++)
            {
                if (float.IsNaN(x[i * stride]))
                {
                    return i;
                }
            }
        }

        for (long i = 0; i < length; i++)
        {
            if (x[i * stride] == best)
            {
                return i;
            }
        }

        return 0;
    }

    /// <summary>A sortable key: larger floats give larger keys; NaN is above +Inf; -0 equals +0.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static uint OrderedBits(float value)
    {
        if (float.IsNaN(value))
        {
            return uint.MaxValue;
        }

        uint bits = BitConverter.SingleToUInt32Bits(value == 0f ? 0f : value);
        return (bits & 0x80000000u) != 0 ? ~bits : bits | 0x80000000u;
    }

    /// <summary>
    /// The <paramref name="k"/> best elements of a strided line, sorted (largest first when <paramref name="largest"/>, else smallest
    /// first; NaN counts as the largest value; ties keep the lower index first), as indices into the line.
    /// <paramref name="keys"/> needs room for min(length, 2k) (selection) or length (full sort) entries.
    /// </summary>
    public static void TopK(float* x, int length, long stride, int k, bool largest, ulong* keys, long* indices)
    {
        if (k == 0)
        {
            return;
        }

        // Ascending key order = wanted order: (value key or its complement) << 32 | index.
        if ((long)k * 8 >= length)
        {
            for (int i = 0; i < length; i++)
            {
                keys[i] = Key(x[i * stride], i, largest);
            }

            new Span<ulong>(keys, length).Sort();
        }
        else
        {
            // A max-heap of the k smallest keys seen so far.
            for (int i = 0; i < k; i++)
            {
                keys[i] = Key(x[i * stride], i, largest);
                SiftUp(keys, i);
            }

            for (int i = k; i < length; i++)
            {
                ulong key = Key(x[i * stride], i, largest);
                if (key < keys[0])
                {
                    keys[0] = key;
                    SiftDown(keys, k);
                }
            }

            new Span<ulong>(keys, k).Sort();
        }

        for (int i = 0; i < k; i++)
        {
            indices[i] = (long)(keys[i] & 0xFFFFFFFFu);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static ulong Key(float value, int index, bool largest)
    {
        uint ordered = OrderedBits(value);
        return ((ulong)(largest ? ~ordered : ordered) << 32) | (uint)index;
    }

    private static void SiftUp(ulong* heap, int i)
    {
        while (i > 0)
        {
            int parent = (i - 1) / 2;
            if (heap[parent] >= heap[i])
            {
                return;
            }

            (heap[parent], heap[i]) = (heap[i], heap[parent]);
            i = parent;
        }
    }

    private static void SiftDown(ulong* heap, int count)
    {
        int i = 0;
        while (true)
        {
            int left = 2 * i + 1;
            if (left >= count)
            {
                return;
            }

            int child = left + 1 < count && heap[left + 1] > heap[left] ? left + 1 : left;
            if (heap[i] >= heap[child])
            {
                return;
            }

            (heap[i], heap[child]) = (heap[child], heap[i]);
            i = child;
        }
    }
}
