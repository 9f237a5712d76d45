using System;
using System.Diagnostics;
using GemsInjector.Kernels.Ilgpu;
using Microsoft.Extensions.Logging.Abstractions;

namespace GemsInjector.GpuHarness;

/// <summary>
/// What a worker pays to enable GemsInjector on the GPU: <see cref="Gems.Enable(GemsOptions?)"/> in a fresh process (the
/// issue's ≤ 100 ms target), then how long until the device behind it is up (<see cref="Gems.WaitForDevice"/>).
/// Run in a process of its own, before anything else has touched ILGPU or the driver.
/// </summary>
internal static class EnableProbe
{
    public static int Run(Options opt, DateTime processStart)
    {
        var device = opt.Device switch
        {
            IlgpuDeviceKind.Cuda => "cuda",
            IlgpuDeviceKind.OpenCL => "opencl",
            _ => "ilgpu-cpu",
        };

        long start = Stopwatch.GetTimestamp();
        var enabled = Gems.Enable(new GemsOptions { Device = device, Logger = NullLogger.Instance });
        double enableMs = Stopwatch.GetElapsedTime(start).TotalMilliseconds;
        var ready = Gems.WaitForDevice(TimeSpan.FromMinutes(2));
        double readyMs = Stopwatch.GetElapsedTime(start).TotalMilliseconds;
        double sinceStart = (DateTime.Now - processStart).TotalMilliseconds;

        bool onDevice = ready.Device != "cpu" && !ready.Device.EndsWith("(starting)", StringComparison.Ordinal);
        Console.WriteLine($"enable-probe: Gems.Enable(Device = \"{device}\") returned in {enableMs:F1} ms with device '{enabled.Device}'; "
            + $"device up {readyMs:F1} ms after the call: '{ready.Device}' ({sinceStart:F0} ms after process start)");
        if (!onDevice)
        {
            Console.WriteLine($"enable-probe: FAIL: the kernels are not on '{device}': {ready.Reason}");
        }

        var csv = new CsvSink(opt.Csv);
        string status = onDevice ? "PASS" : "FAIL";
        csv.Add(new Row("startup", "gems_enable", string.Empty, device, enableMs, double.NaN, double.NaN, double.NaN, status, SinceStartMs: sinceStart, Note: enabled.Device));
        csv.Add(new Row("startup", "device_ready", string.Empty, device, readyMs, double.NaN, double.NaN, double.NaN, status, SinceStartMs: sinceStart, Note: ready.Device));
        return onDevice ? 0 : 1;
    }
}
