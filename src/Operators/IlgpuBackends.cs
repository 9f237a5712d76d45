using System;
using System.Collections.Concurrent;
using System.Collections.Generic;
using System.Linq;
using System.Reflection;
using GemsInjector.Hosting;
using GemsInjector.Kernels.Ilgpu;
using GemsInjector.Kernels.Staging;

namespace GemsInjector.Operators;

/// <summary>
/// The ILGPU backends. A separate class so that ILGPU loads only when one is asked for. Devices are created once per
/// process and kept, with their compiled kernels, for later enables. A GPU is created on a background thread
/// (<see cref="DeviceStart"/>) so that enabling does not wait for the CUDA context.
/// </summary>
internal static class IlgpuBackends
{
    /// <summary>
    /// On a GPU the host's tensors still live in CPU memory (TorchSharp has no CUDA build here), so every call would
    /// copy its operands over PCIe: worth it only where the arithmetic outweighs the copy, so only these operators, and
    /// of their calls only those the staging cost lets through (<c>StagingCost</c> in the kernel assembly). For the
    /// memory-bound rest the CPU kernel was faster at every size measured, page-locked copies and all (Run 176 on an H200
    /// node: silu and rms_norm float32 from 1 × 4096 to 2048 × 11008, 2.8–36x; <c>docs/perf/h100-notes-staging.md</c>).
    /// </summary>
    private static readonly HashSet<string> ComputeBoundOperators =
        [OperatorNames.Mm, OperatorNames.Addmm, OperatorNames.Bmm, OperatorNames.ScaledDotProductAttention];

    private static readonly ConcurrentDictionary<IlgpuDeviceKind, IlgpuTensorKernels> Devices = new();
    private static readonly Dictionary<IlgpuDeviceKind, DeviceStart> Starts = [];

    /// <summary>
    /// Which kinds are created in the background: the GPUs, whose driver start is the slow part of enabling. The
    /// runtime's own tests add the simulator, so that CI runs the background path without a GPU.
    /// </summary>
    internal static Func<IlgpuDeviceKind, bool> StartsInBackground { get; set; } = kind => kind is IlgpuDeviceKind.Cuda or IlgpuDeviceKind.OpenCL;

    private static int LocalRank() =>
        int.TryParse(Environment.GetEnvironmentVariable("LOCAL_RANK"), out var rank) && rank >= 0 ? rank : 0;

    /// <summary>
    /// The device kernel, switching for good to the CPU kernel when one of its ILGPU kernels cannot be compiled on its
    /// first call (the worker keeps running; the log and the status say which and why).
    /// </summary>
    internal static KernelRegistration WithCpuFallback(string operatorName, KernelRegistration device, KernelRegistration cpu) =>
        new(
            FallbackKernel.Wrap<IlgpuKernelCompileException>(device.Kernel, cpu.Kernel, failure => Gems.ReportKernelFallback(operatorName, failure.Message)),
            device.DispatchKey,
            device.RegisteredAt,
            device.ImplementationName);

    /// <summary><c>auto</c> on a machine with a CUDA driver: CUDA if a device comes up, else quietly the CPU kernels.</summary>
    public static KernelBackend AutoDetect() => Create("cuda", quietWhenAbsent: true);

    /// <summary>The kernels of <paramref name="device"/>, or the CPU kernels with the reason when it cannot be had.</summary>
    public static KernelBackend Create(string device) => Create(device, quietWhenAbsent: false);

    /// <summary>Forgets the devices created so far, so that the next enable creates them again (tests only).</summary>
    internal static void ForgetDevices()
    {
        lock (Starts)
        {
            Starts.Clear();
            Devices.Clear();
        }
    }

    private static KernelBackend Create(string device, bool quietWhenAbsent)
    {
        var kind = device switch
        {
            "cuda" => IlgpuDeviceKind.Cuda,
            "opencl" => IlgpuDeviceKind.OpenCL,
            "ilgpu-cpu" => IlgpuDeviceKind.CpuSimulator,
            _ => throw new GemsConfigurationException($"Unknown device '{device}'."),
        };

        if (!StartsInBackground(kind))
        {
            try
            {
                return WithDevice(Start(kind, device, warmUp: false));
            }
            catch (DeviceUnavailableException ex)
            {
                return KernelBackendSelection.Cpu(quietWhenAbsent && ex.Absent ? null : ex.Message);
            }
        }

        DeviceStart start;
        lock (Starts)
        {
            // A start that failed is tried again, as a synchronous creation would be on every enable.
            if (!Starts.TryGetValue(kind, out start!) || (start.IsCompleted && start.Result().Device is null))
            {
                start = new DeviceStart(device, () => Start(kind, device, warmUp: true), quietWhenAbsent);
                Starts[kind] = start;
            }
        }

        if (start.IsCompleted)
        {
            var (started, fallbackReason) = start.Result();
            return started is null ? KernelBackendSelection.Cpu(fallbackReason) : WithDevice(started);
        }

        var kernels = GemsKernelCatalog.ForCpu()
            .Select(pair => (pair.Operator, Takes(kind, pair.Operator.Name) ? Deferred(start, pair.Operator.Name, pair.Kernel) : pair.Kernel))
            .ToArray();
        return new KernelBackend(start.PendingDescription, kernels, FallbackReason: null, Starting: start);
    }

    /// <summary>The simulator exists to run the GPU kernels' logic through the table; a real GPU takes only the operators it speeds up.</summary>
    private static bool Takes(IlgpuDeviceKind kind, string operatorName) =>
        kind == IlgpuDeviceKind.CpuSimulator || ComputeBoundOperators.Contains(operatorName);

    private static KernelRegistration Deferred(DeviceStart start, string operatorName, KernelRegistration cpu)
    {
        // The override line names the ILGPU method that will serve the operator, as it does once the device is up.
        var method = typeof(IlgpuTensorKernels).GetMethods(BindingFlags.Public | BindingFlags.Instance).FirstOrDefault(m => m.Name == cpu.ImplementationName)
            ?? throw new InvalidOperationException($"IlgpuTensorKernels has no method {cpu.ImplementationName} for {operatorName}.");
        return new KernelRegistration(start.Deferred(operatorName, cpu.Kernel), cpu.DispatchKey, KernelRegistration.Describe(method), method.Name);
    }

    private static KernelBackend WithDevice(StartedDevice started)
    {
        var merged = GemsKernelCatalog.ForCpu()
            .Select(pair => (pair.Operator, started.Kernels.TryGetValue(pair.Operator.Name, out var deviceKernel) ? deviceKernel : pair.Kernel))
            .ToArray();
        return new KernelBackend(started.Description, merged, FallbackReason: null, Starting: null);
    }

    /// <summary>
    /// Creates (or fetches) the device and its kernels; throws <see cref="DeviceUnavailableException"/> with the status's
    /// reason. <paramref name="warmUp"/> (on the background thread only, where nobody waits for it yet) also runs
    /// <see cref="IlgpuDevice.WarmUp"/>, so an operator's first call does not pay for ILGPU's own start.
    /// </summary>
    private static StartedDevice Start(IlgpuDeviceKind kind, string device, bool warmUp)
    {
        try
        {
            FaultInjection.At(FaultPoint.DeviceCreation, device);

            // Workers of one node pass their local rank, so each takes its own GPU (wrapping when there are fewer).
            var kernels = Devices.GetOrAdd(kind, static k => new IlgpuTensorKernels(IlgpuDevice.Create(k, LocalRank())));
            if (warmUp)
            {
                kernels.Device.WarmUp();
            }

            FaultInjection.At(FaultPoint.CatalogBuild, "ilgpu");
            var cpu = GemsKernelCatalog.ForCpu().ToDictionary(pair => pair.Operator.Name, pair => pair.Kernel);
            var onDevice = GemsKernelCatalog.ForIlgpu(kernels)
                .Where(pair => Takes(kind, pair.Operator.Name))
                .ToDictionary(pair => pair.Operator.Name, pair => WithCpuFallback(pair.Operator.Name, pair.Kernel, cpu[pair.Operator.Name]));
            var ilgpuDevice = kernels.Device;
            var backend = ilgpuDevice.Kind == IlgpuDeviceKind.CpuSimulator ? kernels.BackendName : $"{kernels.BackendName}:{ilgpuDevice.Ordinal}";
            var description = ilgpuDevice.Architecture is { } architecture
                ? $"{backend} ({ilgpuDevice.Name}, {architecture})"
                : $"{backend} ({ilgpuDevice.Name})";
            return new StartedDevice(description, onDevice);
        }
        catch (IlgpuDeviceException ex)
        {
            // Without an inner exception the driver answered and there is no such device; with one, the device failed.
            throw new DeviceUnavailableException($"Device '{device}' is not available ({ex.Message}); using the CPU kernels instead.", absent: ex.InnerException is null);
        }
        catch (Exception ex) when (ex is not DeviceUnavailableException && !WorkerStartup.IsKernelLoadFailure(ex))
        {
            // A driver or ILGPU failure other than "no such device" (a CUDA error, a missing native library, a kernel
            // that does not build) is just as much a reason to keep the worker on the CPU kernels rather than fail.
            throw new DeviceUnavailableException(
                $"Device '{device}' failed to initialize ({ex.GetType().Name}: {ex.Message}); using the CPU kernels instead.", absent: false);
        }
    }
}
