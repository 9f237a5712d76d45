using System;
using System.Collections.Generic;
using System.Linq;

namespace GemsInjector.Operators;

/// <summary>
/// Every operator GemsInjector knows, with its schema and the kernel that calls go to now. By default each holds
/// TorchSharp's kernel, so a host calling operators through <see cref="Ops"/> works unchanged without GemsInjector;
/// <see cref="Gems.Enable(GemsOptions?)"/> overrides them.
/// </summary>
public static class OperatorTable
{
    /// <summary>The dispatch key of TorchSharp's CPU build, the only one served here, under which its kernels are registered.</summary>
    public const string DefaultDispatchKey = "CPU";

    /// <summary><c>aten::add.Tensor</c>: <c>self + alpha * other</c>, broadcasting.</summary>
    public static readonly Operator<ScaledBinaryKernel> Add = new(
        "add",
        "aten::add.Tensor(Tensor self, Tensor other, *, Scalar alpha=1) -> Tensor",
        TorchSharpKernels.Add,
        DefaultDispatchKey,
        (kernel, note) => (self, other, alpha) => { note(); return kernel(self, other, alpha); });

    /// <summary><c>aten::mul.Tensor</c>: <c>self * other</c>, broadcasting.</summary>
    public static readonly Operator<BinaryKernel> Mul = new(
        "mul",
        "aten::mul.Tensor(Tensor self, Tensor other) -> Tensor",
        TorchSharpKernels.Mul,
        DefaultDispatchKey,
        (kernel, note) => (self, other) => { note(); return kernel(self, other); });

    /// <summary><c>aten::silu</c>: <c>x * sigmoid(x)</c>.</summary>
    public static readonly Operator<UnaryKernel> Silu = new(
        "silu",
        "aten::silu(Tensor self) -> Tensor",
        TorchSharpKernels.Silu,
        DefaultDispatchKey,
        (kernel, note) => input => { note(); return kernel(input); });

    /// <summary><c>aten::rms_norm</c> over the last dimension: <c>x / sqrt(mean(x²) + eps) * weight</c>.</summary>
    public static readonly Operator<WeightedNormKernel> RmsNorm = new(
        "rms_norm",
        "aten::rms_norm(Tensor input, SymInt[] normalized_shape, Tensor? weight=None, float? eps=None) -> Tensor",
        TorchSharpKernels.RmsNorm,
        DefaultDispatchKey,
        (kernel, note) => (input, weight, epsilon) => { note(); return kernel(input, weight, epsilon); });

    private static readonly Operator[] Operators = [Add, Mul, Silu, RmsNorm];

    private static readonly Dictionary<string, Operator> ByName = Operators.ToDictionary(op => op.Name, StringComparer.Ordinal);

    /// <summary>All operators, in a fixed order.</summary>
    public static IReadOnlyList<Operator> All => Operators;

    /// <summary>The operator called <paramref name="name"/>, or <see langword="null"/>.</summary>
    public static Operator? Find(string name) => ByName.GetValueOrDefault(name);

    /// <summary>The operator names, sorted.</summary>
    public static IReadOnlyList<string> Names { get; } = Operators.Select(op => op.Name).Order(StringComparer.Ordinal).ToArray();

    internal static KernelRegistration[] Snapshot() => Array.ConvertAll(Operators, op => op.Current);

    internal static void Restore(KernelRegistration[] snapshot)
    {
        for (var i = 0; i < Operators.Length; i++)
        {
            Operators[i].Register(snapshot[i]);
        }
    }
}
