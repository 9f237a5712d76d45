using System;
using System.Collections.Concurrent;
using System.Collections.Generic;
using System.Linq;
using GemsInjector.Hosting;
using GemsInjector.Kernels.Ilgpu;
using GemsInjector.Kernels.Staging;

namespace GemsInjector.Operators;

/// <summary>
/// The ILGPU backends. A separate class so that ILGPU loads only when one is asked for. Devices are created once per
/// process and kept, with their compiled kernels, for later enables.
/// </summary>
internal static class IlgpuBackends
{
    /// <summary>
    /// On a GPU the host's tensors still live in CPU memory (TorchSharp has no CUDA build here), so every call would
    /// copy its operands over PCIe: worth it only where the arithmetic outweighs the copy.
    /// </summary>
    private static readonly HashSet<string> ComputeBoundOperators =
        [OperatorNames.Mm, OperatorNames.Addmm, OperatorNames.Bmm, OperatorNames.ScaledDotProductAttention];

    private static readonly ConcurrentDictionary<IlgpuDeviceKind, IlgpuTensorKernels> Devices = new();

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
            device.RegisteredAt);

    public static KernelBackend AutoDetect()
    {
        IlgpuDeviceKind? best;
        try
        {
            best = IlgpuDevice.DetectBest();
        }
        catch (Exception ex) when (!WorkerStartup.IsKernelLoadFailure(ex))
        {
            // "auto" never fails on a broken driver: it means "the best device that works".
            return KernelBackendSelection.Cpu($"Probing for a GPU failed ({ex.GetType().Name}: {ex.Message}); using the CPU kernels.");
        }

        return best is IlgpuDeviceKind.Cuda ? Create("cuda") : KernelBackendSelection.Cpu(fallbackReason: null);
    }

    public static KernelBackend Create(string device)
    {
        var kind = device switch
        {
            "cuda" => IlgpuDeviceKind.Cuda,
            "opencl" => IlgpuDeviceKind.OpenCL,
            "ilgpu-cpu" => IlgpuDeviceKind.CpuSimulator,
            _ => throw new GemsConfigurationException($"Unknown device '{device}'."),
        };

        IlgpuTensorKernels kernels;
        Dictionary<string, KernelRegistration> onDevice;
        try
        {
            FaultInjection.At(FaultPoint.DeviceCreation, device);

            // Workers of one node pass their local rank, so each takes its own GPU (wrapping when there are fewer).
            kernels = Devices.GetOrAdd(kind, static k => new IlgpuTensorKernels(IlgpuDevice.Create(k, LocalRank())));

            // The simulator exists to run the GPU kernels' logic through the table; a real GPU takes only the operators it speeds up.
            FaultInjection.At(FaultPoint.CatalogBuild, "ilgpu");
            onDevice = GemsKernelCatalog.ForIlgpu(kernels)
                .Where(pair => kind == IlgpuDeviceKind.CpuSimulator || ComputeBoundOperators.Contains(pair.Operator.Name))
                .ToDictionary(pair => pair.Operator.Name, pair => pair.Kernel);
        }
        catch (IlgpuDeviceException ex)
        {
            return KernelBackendSelection.Cpu($"Device '{device}' is not available ({ex.Message}); using the CPU kernels instead.");
        }
        catch (Exception ex) when (!WorkerStartup.IsKernelLoadFailure(ex))
        {
            // A driver or ILGPU failure other than "no such device" (a CUDA error, a missing native library, a kernel
            // that does not build) is just as much a reason to keep the worker on the CPU kernels rather than fail.
            return KernelBackendSelection.Cpu(
                $"Device '{device}' failed to initialize ({ex.GetType().Name}: {ex.Message}); using the CPU kernels instead.");
        }

        var merged = GemsKernelCatalog.ForCpu()
            .Select(pair => (pair.Operator, onDevice.TryGetValue(pair.Operator.Name, out var deviceKernel) ? WithCpuFallback(pair.Operator.Name, deviceKernel, pair.Kernel) : pair.Kernel))
            .ToArray();
        var ilgpuDevice = kernels.Device;
        var backend = ilgpuDevice.Kind == IlgpuDeviceKind.CpuSimulator ? kernels.BackendName : $"{kernels.BackendName}:{ilgpuDevice.Ordinal}";
        var description = ilgpuDevice.Architecture is { } architecture
            ? $"{backend} ({ilgpuDevice.Name}, {architecture})"
            : $"{backend} ({ilgpuDevice.Name})";
        return new KernelBackend(description, merged, FallbackReason: null);
    }
}
