using System;

namespace GemsInjector;

/// <summary>
/// A host framework's patch: swaps one layer method for a call to a table operator (FlagGems'
/// <c>apply_gems_patches_to_vllm</c>, Liger-Kernel's <c>apply_liger_kernel_to_*</c>). Registered with
/// <see cref="Gems.RegisterPatch(GemsPatch)"/> and applied by <see cref="Gems.ApplyPatches(bool)"/>.
/// </summary>
/// <param name="Layer">The patched layer type's name, for the log: <c>RMSNorm</c>.</param>
/// <param name="Method">The patched method, for the log: <c>forward</c>.</param>
/// <param name="Operator">The operator the patched method now calls, for the log: <c>rms_norm</c>.</param>
/// <param name="Apply">Swaps the method; must leave things unchanged if it throws.</param>
/// <param name="Revert">Restores the original method exactly.</param>
public sealed record GemsPatch(string Layer, string Method, string Operator, Action Apply, Action Revert)
{
    /// <summary>The line logged when the patch is applied: <c>Patched RMSNorm.forward with GEMS rms_norm</c>.</summary>
    public string AppliedLine => $"Patched {Layer}.{Method} with GEMS {Operator}";
}
