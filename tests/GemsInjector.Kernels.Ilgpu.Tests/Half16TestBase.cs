using System;
using System.Linq;
using ILGPU;

namespace GemsInjector.Kernels.Ilgpu.Tests;

/// <summary>16-bit inputs, NaN bits and checks shared by the tests of the second 16-bit set and the vectorised kernels.</summary>
public abstract class Half16TestBase : KernelTestBase
{
    protected Half16TestBase(SimulatorFixture fixture)
        : base(fixture)
    {
    }

    protected static HalfFormat F(bool bf16) => bf16 ? HalfFormat.BFloat16 : HalfFormat.Float16;

    protected static double Rtol(bool bf16) => bf16 ? RtolBF16 : RtolF16;

    protected static ushort NaN16(bool bf16) => bf16 ? (ushort)0x7FC0 : (ushort)0x7E00;

    /// <summary>Random values already representable in the 16-bit format (so the reference sees what the kernel sees).</summary>
    protected static (ushort[] Bits, float[] Values) Random16(int seed, int n, bool bf16, float lo = -3f, float hi = 3f)
    {
        var bits = To16(Random(seed, n, lo, hi), bf16);
        return (bits, ToFloat(bits, bf16));
    }

    protected void Check16(ArrayView<ushort> output, double[] expected, bool bf16, string what, int seed, double atol = Atol) =>
        AssertClose(ToFloat(Download(output), bf16), expected, Rtol(bf16), atol, $"{what} ({F(bf16)})", seed);

    /// <summary>A device copy of <paramref name="data"/> placed <paramref name="offset"/> elements into a larger buffer (to test misaligned views).</summary>
    protected ArrayView<T> UploadAt<T>(T[] data, int offset, T fill)
        where T : unmanaged
    {
        var padded = Enumerable.Repeat(fill, data.Length + offset + 3).ToArray();
        Array.Copy(data, 0, padded, offset, data.Length);
        return Upload(padded).SubView(offset, data.Length);
    }
}
