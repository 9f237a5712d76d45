namespace GemsInjector;

/// <summary>How GELU is computed, as aten's <c>approximate</c> argument says.</summary>
/// <remarks>
/// Defined here, not in the kernel assembly, so that the operator table and the default kernels keep working in a
/// worker whose GemsInjector.Kernels.dll is missing.
/// </remarks>
public enum GeluApproximation
{
    /// <summary>The exact form, <c>x * Φ(x)</c> with the normal CDF through erf (<c>approximate='none'</c>).</summary>
    None,

    /// <summary>The tanh approximation, <c>0.5x(1 + tanh(√(2/π)(x + 0.044715x³)))</c> (<c>approximate='tanh'</c>).</summary>
    Tanh,
}
