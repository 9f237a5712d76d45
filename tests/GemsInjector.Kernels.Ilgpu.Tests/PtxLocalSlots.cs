using System.Text.RegularExpressions;
using Xunit;

namespace GemsInjector.Kernels.Ilgpu.Tests;

/// <summary>
/// Local-memory checks on ILGPU's PTX that allow exactly one pattern: the slot through which ILGPU hands back the
/// result of the bfloat16 store's <c>cvt.rn.bf16x2.f32</c> (<c>GpuMath.PackBFloat162</c>). ILGPU lowers an inline-asm
/// output to a 4-byte local slot that is zeroed, written right after the instruction and read once; ptxas forwards the
/// pair to a register (ptxas 13.0, SM_90: 0 bytes of stack frame for the bfloat16 row, vector and tensor-core kernels,
/// docs/perf/h100-notes-rows.md). Any other local access (a spill, a struct on the stack, an operand slot) still fails.
/// </summary>
internal static class PtxLocalSlots
{
    private static readonly Regex ConversionRoundTrip = new(
        @"\tst\.local\.b32\t\[(%rd\d+)\], 0;\n(\tcvt\.rn\.bf16x2\.f32 \t%r\d+, (?:%f\d+|0f[0-9A-F]{8}), (?:%f\d+|0f[0-9A-F]{8});\n)\tst\.local\.b32\t\[\1\], %r\d+;\n\tld\.local\.b32\t%r\d+, \[\1\];\n",
        RegexOptions.CultureInvariant);

    private static readonly Regex SlotDeclaration = new(@"\t\.local \.align 4 \.b8 __local_depot\d+\[4\];\n", RegexOptions.CultureInvariant);

    private static readonly Regex SlotAddress = new(@"\tmov\.b64\t%rd\d+, __local_depot\d+;\n", RegexOptions.CultureInvariant);

    /// <summary>The PTX without the conversion slots: their round trips become the bare instruction, their declarations go.</summary>
    public static string WithoutConversionSlots(string ptx)
    {
        string withoutTrips = ConversionRoundTrip.Replace(ptx, "$2");
        if (Regex.IsMatch(withoutTrips, @"(ld|st)\.local", RegexOptions.CultureInvariant))
        {
            // Some other local access is left: keep the declarations so the caller's check reports it.
            return withoutTrips;
        }

        return SlotAddress.Replace(SlotDeclaration.Replace(withoutTrips, string.Empty), string.Empty);
    }

    /// <summary>Asserts that <paramref name="ptx"/> uses no local memory besides the conversion slots.</summary>
    public static void AssertNone(string ptx, string? kernel = null)
    {
        string rest = WithoutConversionSlots(ptx);
        Assert.False(rest.Contains(".local", System.StringComparison.Ordinal), $"{kernel}: local memory in\n{rest}");
    }
}
