using System;
using System.Text.RegularExpressions;

namespace GemsInjector.Kernels.Ilgpu;

/// <summary>
/// The L2 prefetch size of global loads on a compute-capability-9.0 device (<c>GEMS_PTX_L2_PREFETCH</c>: <c>128</c> bytes
/// by default; <c>64</c> or <c>256</c>; <c>0</c>, <c>off</c> or <c>none</c> for the PTX as ILGPU writes it). A load or
/// <c>cp.async</c> copy that carries <c>.L2::128B</c> lets the L2 fetch the whole 128-byte line from DRAM on a miss, not only
/// the sectors asked for. ILGPU 1.5.3 writes plain <c>ld.global</c> (SASS <c>LDG.E.128</c>, no <c>LTC128B</c>); the
/// qualifier is added here, to the text the driver loads (<see cref="Sm90aPtx.Prepare"/>), so the caches keep ILGPU's
/// own output and one switch reaches every kernel. H200 Runs 217 and 222 (one build each, alternating processes): 128
/// made the float32 [N, K] ring products 2.8–5.4% faster (12–16 × 11008 × 4096 and × 4096 × 11008) and the 16-bit
/// odd-shape row kernels 5–11%, no case slower by more than 0.7%; 64 changed nothing; 256 slowed the plain reads of
/// 90–180 MB by 3–7%.
/// </summary>
internal static class PtxL2Prefetch
{
    /// <summary>Environment variable holding the prefetch size in bytes.</summary>
    public const string Variable = "GEMS_PTX_L2_PREFETCH";

    // Plain weak loads from global memory as ILGPU writes them (ld.global then the vector or type), not ld.global.nc or a
    // load that already carries a cache qualifier.
    private static readonly Regex PlainLoad = new(@"\bld\.global\.(?=(?:v[248]\.)?[bfsu](?:8|16|32|64)\b)", RegexOptions.CultureInvariant);

    // The copies the kernels' inline PTX issues: cp.async.cg / .ca from global to shared, then their operands.
    private static readonly Regex AsyncCopy = new(@"\bcp\.async\.(c[ag])\.shared\.global(?=[ \t])", RegexOptions.CultureInvariant);

    private static readonly Lazy<int> FromVariable = new(() => Parse(Environment.GetEnvironmentVariable(Variable)));

    /// <summary>The prefetch size when the variable is unset (or names no size).</summary>
    public const int DefaultBytes = 128;

    /// <summary>The setting of this process (read once): bytes, or 0 for none.</summary>
    public static int FromEnvironment() => FromVariable.Value;

    /// <summary>
    /// <c>64</c>, <c>128</c> or <c>256</c> (an optional trailing <c>B</c>, any case, spaces ignored) that many bytes;
    /// <c>0</c>, <c>off</c> or <c>none</c> none; anything else <see cref="DefaultBytes"/>.
    /// </summary>
    public static int Parse(string? setting) => setting?.Trim().ToUpperInvariant().TrimEnd('B') switch
    {
        "64" => 64,
        "128" => 128,
        "256" => 256,
        "0" or "OFF" or "NONE" => 0,
        _ => DefaultBytes,
    };

    /// <summary>
    /// <paramref name="ptx"/> with <c>.L2::{bytes}B</c> on every plain <c>ld.global</c> and every <c>cp.async</c> copy from
    /// global memory, the rest unchanged; the same string when <paramref name="bytes"/> is 0 or nothing matches.
    /// </summary>
    public static string Apply(string ptx, int bytes)
    {
        if (bytes == 0)
        {
            return ptx;
        }

        string qualifier = $".L2::{bytes}B";
        // Regex.Replace hands back its input itself when nothing matches.
        return AsyncCopy.Replace(PlainLoad.Replace(ptx, "ld.global" + qualifier + "."), "cp.async.$1.shared.global" + qualifier);
    }
}
