using System;
using System.Linq;
using BenchmarkDotNet.Running;

namespace GemsInjector.Benchmarks;

internal static class Program
{
    private static void Main(string[] args)
    {
        if (args.Length > 0 && args[0] == "decode-products")
        {
            DecodeProductTimings.Run(
                args.Length > 1 ? int.Parse(args[1], System.Globalization.CultureInfo.InvariantCulture) : 20000, args.Length > 2 ? args[2] : null);
            return;
        }

        if (args.Length > 0 && args[0] == "compute-rates")
        {
            ComputeRateTimings.Run();
            return;
        }

        if (args.Length > 0 && args[0] == "bandwidth")
        {
            MemoryBoundTimings.Run(args.Length > 1 ? int.Parse(args[1], System.Globalization.CultureInfo.InvariantCulture) : 20);
            return;
        }

        if (args.Length > 0 && RowOperatorTimings.Groups.Contains(args[0]))
        {
            RowOperatorTimings.Run(args[0], args.Length > 1 ? int.Parse(args[1], System.Globalization.CultureInfo.InvariantCulture) : 20000);
            return;
        }

        BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);
    }
}
