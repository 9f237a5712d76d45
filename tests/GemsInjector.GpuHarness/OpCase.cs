using System;
using System.Collections.Generic;
using System.Linq;

namespace GemsInjector.GpuHarness;

/// <summary>One (op, dtype, shape) case: its tensors, scalars, float64 reference, tolerance and work (bytes, FLOPs).</summary>
internal sealed class OpCase
{
    public required string Op { get; init; }

    /// <summary>IlgpuKernels method names to try (first preferred).</summary>
    public required string[] Methods { get; init; }

    public required DType DType { get; init; }

    /// <summary>Shape label, e.g. <c>4096x4096</c> (rows x cols) or <c>67108864</c> (elements); see README.</summary>
    public required string Shape { get; init; }

    /// <summary>Op family for compare.py targets: elementwise, gated, norm, softmax, reduce, index, gemm, gemv, rotary, attention-prefill, attention-decode, copy, floor.</summary>
    public required string Category { get; init; }

    public List<TensorSpec> Inputs { get; } = new();

    public List<TensorSpec> Outputs { get; } = new();

    /// <summary>Inputs the kernel updates in place (checked after the run, counted as read + written).</summary>
    public HashSet<string> InPlace { get; } = new();

    /// <summary>Tensors left out of the byte count (as torch_reference_bench.py leaves out weights, biases, cos/sin).</summary>
    public HashSet<string> Uncounted { get; } = new();

    /// <summary>Inputs that bench rotation sets share with the first set (embedding's table); index inputs are redrawn per set.</summary>
    public HashSet<string> SharedAcrossSets { get; } = new();

    /// <summary>Scalar arguments by parameter name (aliases allowed); enums as their member name.</summary>
    public Dictionary<string, object> Scalars { get; } = new(StringComparer.OrdinalIgnoreCase);

    /// <summary>Scalars a method must consume to be chosen (method name → parameter names).</summary>
    public Dictionary<string, string[]> RequiredScalars { get; } = new(StringComparer.OrdinalIgnoreCase);

    /// <summary>float64 reference from the host inputs, keyed by output (or in-place input) name.</summary>
    public required Func<IReadOnlyDictionary<string, HostTensor>, Dictionary<string, Expected>> Reference { get; init; }

    /// <summary>Per-op rtol factor over the FlagGems dtype rtol (documented in Catalog; 1 for most).</summary>
    public double RtolScale { get; init; } = 1;

    /// <summary>FlagGems atol 1e-4 times this (the reduced length for reductions and matrix products).</summary>
    public double AtolScale { get; init; } = 1;

    /// <summary>FLOPs for GEMM / attention (TFLOP/s is reported when positive).</summary>
    public double Flops { get; init; }

    /// <summary>Data elements read beyond the counted tensors (embedding: the gathered rows).</summary>
    public long ExtraReadElements { get; init; }

    /// <summary>Launches a non-IlgpuKernels operation (the device copy) over a set.</summary>
    public Func<DeviceSet, Action>? Custom { get; init; }

    public string Key => $"{Op} {DType.Name()} {Shape}";

    public int Esz => DType.Size();

    /// <summary>Bytes moved: each counted input read once, each output written once (in-place: read + written).</summary>
    public long Bytes(Func<string, int> elementSize)
    {
        long b = ExtraReadElements * Esz;
        foreach (var t in Inputs.Where(t => !Uncounted.Contains(t.Name)))
        {
            b += t.Length * elementSize(t.Name) * (InPlace.Contains(t.Name) ? 2 : 1);
        }

        foreach (var t in Outputs.Where(t => !Uncounted.Contains(t.Name)))
        {
            b += t.Length * elementSize(t.Name);
        }

        return b;
    }

    /// <summary>The byte formula in words, e.g. <c>read a,b + write y</c>.</summary>
    public string BytesFormula()
    {
        var r = Inputs.Where(t => !Uncounted.Contains(t.Name)).Select(t => t.Name).ToList();
        var w = Outputs.Where(t => !Uncounted.Contains(t.Name)).Select(t => t.Name).Concat(Inputs.Where(t => InPlace.Contains(t.Name)).Select(t => t.Name)).ToList();
        if (ExtraReadElements > 0)
        {
            r.Add($"{ExtraReadElements} gathered elements");
        }

        return $"read {string.Join(",", r)} + write {string.Join(",", w)}";
    }
}
