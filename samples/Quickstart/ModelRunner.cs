using System;
using System.Linq;
using GemsInjector;
using GemsInjector.Operators;
using TorchSharp;

namespace Quickstart;

/// <summary>
/// The smallest GemsInjector worker. The generator gives this class a module initializer that enables the kernels
/// when USE_FLAGGEMS is 1, true or yes, before Main runs; Main then reports what happened and runs one small
/// feed-forward step through the operator table, on whichever kernels the table holds.
/// </summary>
[GemsWorker]
public static partial class ModelRunner
{
    public static int Main(string[] args)
    {
        // A GPU comes up in the background after Enable; wait for it so the report names the device that really runs.
        var status = Gems.WaitForDevice(TimeSpan.FromSeconds(60));
        Console.WriteLine($"GemsInjector state: {status.State}");
        Console.WriteLine($"Reason: {status.Reason}");
        Console.WriteLine($"Device: {(status.Device.Length == 0 ? "-" : status.Device)}");
        Console.WriteLine($"Overridden operators: {(status.OverriddenOperators.Count == 0 ? "none" : string.Join(", ", status.OverriddenOperators))}");
        foreach (var op in OperatorTable.All)
        {
            Console.WriteLine($"Kernel {op.Name}: {op.Current.RegisteredAt}");
        }

        var checksum = RunFeedForward(rows: 4, width: 256);
        Console.WriteLine($"Feed-forward checksum: {checksum:F6}");
        if (args.Contains("--json"))
        {
            Console.WriteLine(status.ToJson());
        }

        return 0;
    }

    /// <summary>One pre-norm gated block, h = x + silu(norm(x)) * norm(x), on seeded inputs; returns the sum of h.</summary>
    private static double RunFeedForward(int rows, int width)
    {
        using var scope = torch.NewDisposeScope();
        var generator = new torch.Generator(20261128);
        var x = torch.randn([rows, width], generator: generator);
        var weight = torch.rand([width], generator: generator) + 0.5f;
        var normalized = Ops.RmsNorm(x, weight, 1e-6);
        var gated = Ops.Mul(Ops.Silu(normalized), normalized);
        var h = Ops.Add(x, gated);
        return h.sum().item<float>();
    }
}
