using System;
using System.Linq;
using ILGPU;
using ILGPU.Runtime;
using Xunit;

namespace GemsInjector.Kernels.Ilgpu.Tests;

/// <summary>
/// One topk case on a device, whichever kernel its dispatch picks: rows of random values and, by row, few distinct values
/// (the k-th value has more copies than are taken), NaN with ±∞ and ±0, and one value repeated; indices and value bits
/// against torch's order, outputs poisoned first.
/// </summary>
internal static class TopKCheck
{
    /// <summary>0 = float32, 1 = float16, 2 = bfloat16.</summary>
    public static void Run(IlgpuDevice device, int format, int rows, int cols, int k, int seed)
    {
        bool bf16 = format == 2;
        var values = Rows(rows, cols, seed);
        var acc = device.Accelerator;
        using var indexBuffer = acc.Allocate1D(Enumerable.Repeat(long.MinValue, rows * k).ToArray());
        uint[] gotBits;
        uint[] inputBits;
        if (format == 0)
        {
            using var x = acc.Allocate1D(values);
            using var v = acc.Allocate1D(Enumerable.Repeat(float.NaN, rows * k).ToArray());
            device.Kernels.TopK(x.View, v.View, indexBuffer.View, cols, k);
            device.Synchronize();
            gotBits = v.GetAsArray1D().Select(BitConverter.SingleToUInt32Bits).ToArray();
            inputBits = values.Select(BitConverter.SingleToUInt32Bits).ToArray();
        }
        else
        {
            var bits = KernelTestBase.To16(values, bf16);
            values = KernelTestBase.ToFloat(bits, bf16);
            using var x = acc.Allocate1D(bits);
            using var v = acc.Allocate1D(Enumerable.Repeat(bf16 ? (ushort)0x7FC0 : (ushort)0x7E00, rows * k).ToArray());
            device.Kernels.TopK(x.View, v.View, indexBuffer.View, cols, k, bf16 ? HalfFormat.BFloat16 : HalfFormat.Float16);
            device.Synchronize();
            gotBits = v.GetAsArray1D().Select(b => (uint)b).ToArray();
            inputBits = bits.Select(b => (uint)b).ToArray();
        }

        var gotIndex = indexBuffer.GetAsArray1D();
        for (int r = 0; r < rows; r++)
        {
            var order = Expected(values.AsSpan(r * cols, cols), k);
            for (int j = 0; j < k; j++)
            {
                Assert.True(order[j] == gotIndex[r * k + j], $"topk format {format} (seed {seed}) row {r} #{j}: index {gotIndex[r * k + j]}, expected {order[j]}");
                Assert.True(inputBits[r * cols + order[j]] == gotBits[r * k + j], $"topk format {format} (seed {seed}) row {r} #{j}: value bits {gotBits[r * k + j]:x}, expected {inputBits[r * cols + order[j]]:x}");
            }
        }
    }

    /// <summary>Random rows and, by row index mod 4, rows of few distinct values, of NaN, ±∞ and ±0, and of one value.</summary>
    public static float[] Rows(int rows, int cols, int seed)
    {
        var values = KernelTestBase.Random(seed, rows * cols);
        var rng = new Random(seed);
        for (int r = 0; r < rows; r++)
        {
            var row = values.AsSpan(r * cols, cols);
            switch (r % 4)
            {
                case 1:
                    for (int c = 0; c < cols; c++)
                    {
                        row[c] = rng.Next(4) - 1.5f;
                    }

                    break;
                case 2:
                    if (cols >= 6)
                    {
                        row[cols - 1] = float.NaN;
                        row[cols / 2] = float.NaN;
                        row[1] = float.PositiveInfinity;
                        row[2] = float.NegativeInfinity;
                        row[3] = -0f;
                        row[4] = 0f;
                    }

                    break;
                case 3:
                    row.Fill(0.75f);
                    break;
            }
        }

        return values;
    }

    /// <summary>The indices of a row's k largest values as torch orders them: NaN largest, ±0 equal, then the lower index.</summary>
    public static int[] Expected(ReadOnlySpan<float> row, int k)
    {
        var values = row.ToArray();
        double Order(float v) => float.IsNaN(v) ? double.PositiveInfinity : v == 0f ? 0.0 : v;
        return Enumerable.Range(0, values.Length)
            .OrderByDescending(c => float.IsNaN(values[c]) ? 1 : 0)
            .ThenByDescending(c => Order(values[c]))
            .ThenBy(c => c).Take(k).ToArray();
    }
}
