using System;
using System.Linq;
using GemsInjector.Hosting;
using GemsInjector.Operators;
using Microsoft.Extensions.Logging;
using Xunit;

namespace GemsInjector.Tests;

/// <summary>
/// The start-up block the generator writes into a [GemsWorker] class (WorkerEmitter), as plain code, so that faults
/// can be injected into it in this process. Keep it in step with WorkerEmitter.WriteMembers.
/// </summary>
internal static class StartupBlock
{
    public const string SuccessMessage = "Successfully enabled GemsInjector as default ops implementation.";
    public const string LoadFailureMessage = "Failed to import 'GemsInjector.Kernels', falling back to default implementation.";

    public static void Run(string guardVariable, ILogger? logger, GemsOptions? options = null, string worker = "Contoso.ModelRunner")
    {
        var startup = new WorkerStartup(worker, guardVariable);
        try
        {
            if (!startup.IsGuardEnabled(logger))
            {
                return;
            }

            Gems.Enable((options ?? new GemsOptions()) with { Logger = logger });
            Gems.ApplyPatches(verbose: true);
            startup.Succeeded(logger, SuccessMessage);
        }
        catch (Exception ex) when (WorkerStartup.IsKernelLoadFailure(ex))
        {
            startup.FellBack(logger, LoadFailureMessage, ex);
        }
        catch (Exception ex)
        {
            startup.FellBack(logger, $"Failed to enable GemsInjector: {ex.Message}, falling back to default implementation.", ex);
        }
    }
}

/// <summary>Makes one fault point throw while in scope; counts how often the point was reached.</summary>
internal sealed class InjectedFault : IDisposable
{
    private readonly FaultPoint _point;
    private readonly Func<string, bool> _when;
    private readonly Func<Exception> _exception;

    public InjectedFault(FaultPoint point, Func<string, bool> when, Func<Exception> exception)
    {
        _point = point;
        _when = when;
        _exception = exception;
        Assert.Null(FaultInjection.Hook);
        FaultInjection.Hook = Hit;
    }

    public int Reached { get; private set; }

    public int Thrown { get; private set; }

    /// <summary>Throws at the <paramref name="after"/>+1-th registration of one enable (after <paramref name="after"/> operators are overridden).</summary>
    public static InjectedFault AtRegistration(int after, Func<Exception> exception)
    {
        var seen = 0;
        return new InjectedFault(FaultPoint.Registration, _ => seen++ == after, exception);
    }

    public void Dispose() => FaultInjection.Hook = null;

    private void Hit(FaultPoint point, string detail)
    {
        if (point != _point)
        {
            return;
        }

        Reached++;
        if (_when(detail))
        {
            Thrown++;
            throw _exception();
        }
    }
}

/// <summary>Reads the operator table and checks it against the status.</summary>
internal static class TableState
{
    public static KernelRegistration[] Snapshot() => OperatorTable.All.Select(op => op.Current).ToArray();

    public static string[] OverriddenNames(KernelRegistration[] table) =>
        OperatorTable.All.Where((op, i) => !ReferenceEquals(table[i], op.Default)).Select(op => op.Name).Order(StringComparer.Ordinal).ToArray();

    public static string[] OverriddenNames() => OverriddenNames(Snapshot());

    public static string[] CpuKernelOperators() =>
        GemsKernelCatalog.ForCpu().Select(pair => pair.Operator.Name).Order(StringComparer.Ordinal).ToArray();

    /// <summary>Every operator holds exactly the kernel it held in <paramref name="expected"/> (same registration object).</summary>
    public static void AssertUnchanged(KernelRegistration[] expected)
    {
        var now = Snapshot();
        for (var i = 0; i < now.Length; i++)
        {
            Assert.True(ReferenceEquals(expected[i], now[i]), $"{OperatorTable.All[i].Name}: {now[i].RegisteredAt} instead of {expected[i].RegisteredAt}");
        }
    }

    /// <summary>Status, enablement and table, read at one instant, tell the same story.</summary>
    public static void AssertStatusAgreesWithTable()
    {
        var state = Gems.CaptureState();
        Assert.Equal(OverriddenNames(state.Table), state.Status.OverriddenOperators.Order(StringComparer.Ordinal).ToArray());
        Assert.Equal(state.Enabled is not null, state.Status.State == GemsState.Enabled);
        if (state.Enabled is null)
        {
            Assert.Empty(OverriddenNames(state.Table));
        }
    }
}
