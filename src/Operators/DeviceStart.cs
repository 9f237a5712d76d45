using System;
using System.Collections.Concurrent;
using System.Collections.Generic;
using System.Threading;
using System.Threading.Tasks;

namespace GemsInjector.Operators;

/// <summary>What a started device gives the operator table: its description and the kernels it runs.</summary>
/// <param name="Description">What the status reports, e.g. <c>cuda:0 (NVIDIA H200, SM_90)</c>.</param>
/// <param name="Kernels">The device kernel of each operator it takes (already wrapped with its CPU fallback).</param>
internal sealed record StartedDevice(string Description, IReadOnlyDictionary<string, KernelRegistration> Kernels);

/// <summary>
/// A GPU device being created on a background thread. Creating a CUDA context and ILGPU's accelerator takes hundreds of
/// milliseconds, which <see cref="Gems.Enable(GemsOptions?)"/> must not wait for: the table gets kernels that wait for
/// the device on their first call (<see cref="Deferred"/>), and once the device is up, or has failed, the status says so
/// (<see cref="Reported"/>). A device that fails leaves its operators on the CPU kernels for good.
/// </summary>
internal sealed class DeviceStart
{
    private readonly Task<StartedDevice> device;
    private readonly ConcurrentDictionary<string, Delegate> resolved = new();

    /// <param name="requested">The device asked for (<c>cuda</c>, <c>opencl</c>, ...), as the status names it until it is up.</param>
    /// <param name="start">Creates the device; throws <see cref="DeviceUnavailableException"/> with the reason when it cannot.</param>
    /// <param name="quietWhenAbsent">For <c>auto</c>: a machine without the device is not worth a warning.</param>
    public DeviceStart(string requested, Func<StartedDevice> start, bool quietWhenAbsent)
    {
        Requested = requested;
        QuietWhenAbsent = quietWhenAbsent;
        device = Task.Run(start);
        Reported = device.ContinueWith(Report, CancellationToken.None, TaskContinuationOptions.None, TaskScheduler.Default);
    }

    /// <summary>The device asked for.</summary>
    public string Requested { get; }

    /// <summary>What the status says while the device is being created.</summary>
    public string PendingDescription => $"{Requested} (starting)";

    /// <summary>Whether an absent device falls back without a warning (<c>auto</c>).</summary>
    public bool QuietWhenAbsent { get; }

    /// <summary>Completes once the outcome is in the status and the log.</summary>
    public Task Reported { get; }

    /// <summary>Whether creation is over, successful or not.</summary>
    public bool IsCompleted => device.IsCompleted;

    /// <summary>
    /// A kernel of <paramref name="cpu"/>'s delegate type that, on its first call, waits for the device and from then on
    /// runs the device's kernel for <paramref name="operatorName"/>, or <paramref name="cpu"/> when the device failed
    /// or does not take that operator.
    /// </summary>
    /// <exception cref="ArgumentException">A kernel delegate type <see cref="ForwardingKernel"/> does not know.</exception>
    public Delegate Deferred(string operatorName, Delegate cpu) => ForwardingKernel.Create(cpu, new DeviceChoice(this, operatorName, cpu));

    /// <summary>The kernel that serves <paramref name="operatorName"/> once the device is up: the device's, or <paramref name="cpu"/>.</summary>
    private Delegate Resolve(string operatorName, Delegate cpu)
    {
        if (resolved.TryGetValue(operatorName, out var kernel))
        {
            return kernel;
        }

        // Waiting here, rather than failing the call, is what keeps a worker's first product on the GPU it asked for.
        ((IAsyncResult)device).AsyncWaitHandle.WaitOne();
        kernel = device.IsCompletedSuccessfully && device.Result.Kernels.TryGetValue(operatorName, out var onDevice) ? onDevice.Kernel : cpu;
        return resolved.GetOrAdd(operatorName, kernel);
    }

    private sealed class DeviceChoice(DeviceStart start, string operatorName, Delegate cpu) : IKernelChoice
    {
        public Delegate Current() => start.Resolve(operatorName, cpu);

        public bool TakeOver(Delegate kernel, Exception failure) => false;
    }

    /// <summary>
    /// The outcome once creation is over: the device, or <see langword="null"/> and why the CPU kernels serve instead
    /// (<see langword="null"/> too when <c>auto</c> found no device: nothing to warn about).
    /// </summary>
    public (StartedDevice? Device, string? FallbackReason) Result()
    {
        if (device.IsCompletedSuccessfully)
        {
            return (device.Result, null);
        }

        var cause = device.Exception?.InnerException;
        return cause is DeviceUnavailableException unavailable
            ? (null, QuietWhenAbsent && unavailable.Absent ? null : unavailable.Message)
            : (null, $"Device '{Requested}' failed to initialize ({cause?.GetType().Name}: {cause?.Message}); using the CPU kernels instead.");
    }

    private void Report(Task<StartedDevice> finished)
    {
        var (started, fallbackReason) = Result();
        Gems.ReportDeviceStart(this, started?.Description, fallbackReason);
    }
}

/// <summary>A device could not be created; the message is the status's reason, ending in what is used instead.</summary>
internal sealed class DeviceUnavailableException(string message, bool absent) : Exception(message)
{
    /// <summary>The machine has no such device (as opposed to a device that failed).</summary>
    public bool Absent { get; } = absent;
}
