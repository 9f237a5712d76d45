using System;

namespace DistributedInference;

/// <summary>
/// The sample's entry point: without <c>--worker</c> it is the launcher, with it one worker (the launcher starts
/// itself in that mode, as torchrun starts copies of a script).
/// </summary>
internal static class Program
{
    public static int Main(string[] args)
    {
        Options options;
        try
        {
            options = Options.Parse(args);
        }
        catch (ArgumentException ex)
        {
            Console.Error.WriteLine(ex.Message);
            Console.Error.WriteLine(Options.Usage);
            return Launcher.ExitUsage;
        }

        if (options.Help)
        {
            Console.WriteLine(Options.Usage);
            return 0;
        }

        if (options.IsWorker)
        {
            return Worker.Run();
        }

        Launcher.ConfigureOwnGuard(options.Scope, options.Verbose);
        return Launcher.Run(options);
    }
}
