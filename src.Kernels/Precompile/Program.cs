using System;
using System.Linq;
using GemsInjector.Kernels.Ilgpu;

namespace GemsInjector.KernelPrecompile;

/// <summary>Writes the archive of every kernel's SM_90 PTX to the path given as the only argument.</summary>
internal static class Program
{
    private static int Main(string[] args)
    {
        if (args.Length != 1 || string.IsNullOrWhiteSpace(args[0]))
        {
            Console.Error.WriteLine("usage: GemsInjector.KernelPrecompile <archive.zip>");
            return 2;
        }

        // A kernel that does not compile is left out of the archive (compiled at run time as before) and named here.
        var kernels = KernelPrecompiler.Precompile(args[0]);
        foreach (var failure in kernels.Where(k => k.Error is not null))
        {
            Console.Error.WriteLine($"GemsInjector.KernelPrecompile: warning: {failure.Kernel}: {failure.Error}");
        }

        Console.WriteLine($"GemsInjector.KernelPrecompile: {kernels.Count(k => k.Error is null)} of {kernels.Count} kernels in {args[0]}");
        return 0;
    }
}
