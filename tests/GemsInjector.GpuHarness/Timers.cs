using System;
using System.Diagnostics;
using ILGPU;
using ILGPU.Runtime;
using ILGPU.Runtime.Cuda;

namespace GemsInjector.GpuHarness;

/// <summary>
/// Device-side timing of single launches. CUDA: with ILGPU profiling markers (<c>accelerator.AddProfilingMarker()</c>
/// pairs, <c>(end - start)</c> after <c>end.Synchronize()</c>) when the context was built with <c>.Profiling()</c>;
/// otherwise (IlgpuDevice builds its context without it, and markers then throw) with CUDA events recorded on the
/// accelerator's default stream through ILGPU's CudaAPI — what the markers do inside. CPU simulator: a host clock
/// around launch + synchronize (the simulator runs launches synchronously; its times mean nothing for the GPU).
/// </summary>
internal abstract class DeviceTimer : IDisposable
{
    public abstract string Name { get; }

    /// <summary>Times runs launches: launch(i) for i in [0, runs), one start/end pair around each; returns ms per run.</summary>
    public abstract double[] Time(Action<int> launch, int runs);

    /// <summary>Host milliseconds the last <see cref="Time"/> spent enqueueing its launches and markers (before waiting).</summary>
    public double LastEnqueueMs { get; protected set; } = double.NaN;

    /// <summary>
    /// Device milliseconds from the last <see cref="Time"/>'s first start to its last end (NaN where unknown). Well above
    /// the sum of the runs' times, it says the device waited for the host between runs: the queue ran dry, so a run's own
    /// start-to-end time may include host time too.
    /// </summary>
    public double LastSpanMs { get; protected set; } = double.NaN;

    public virtual void Dispose()
    {
    }

    public static DeviceTimer For(Accelerator acc)
    {
        if (acc is CudaAccelerator cuda)
        {
            if (acc.Context.Properties.EnableProfiling)
            {
                return new MarkerTimer(acc);
            }

            return new CudaEventTimer(cuda);
        }

        return new HostSyncTimer(acc);
    }
}

internal sealed class MarkerTimer : DeviceTimer
{
    private readonly Accelerator acc;

    public MarkerTimer(Accelerator acc) => this.acc = acc;

    public override string Name => "ilgpu-profiling-markers";

    public override double[] Time(Action<int> launch, int runs)
    {
        var starts = new ProfilingMarker[runs];
        var ends = new ProfilingMarker[runs];
        long enqueueStart = Stopwatch.GetTimestamp();
        for (int i = 0; i < runs; i++)
        {
            starts[i] = acc.AddProfilingMarker();
            launch(i);
            ends[i] = acc.AddProfilingMarker();
        }

        LastEnqueueMs = Stopwatch.GetElapsedTime(enqueueStart).TotalMilliseconds;
        ends[runs - 1].Synchronize();
        LastSpanMs = (ends[runs - 1] - starts[0]).TotalMilliseconds;
        var ms = new double[runs];
        for (int i = 0; i < runs; i++)
        {
            ends[i].Synchronize();
            ms[i] = (ends[i] - starts[i]).TotalMilliseconds;
            starts[i].Dispose();
            ends[i].Dispose();
        }

        return ms;
    }
}

internal sealed class CudaEventTimer : DeviceTimer
{
    private readonly CudaAccelerator acc;
    private IntPtr[] events = Array.Empty<IntPtr>();

    public CudaEventTimer(CudaAccelerator acc) => this.acc = acc;

    public override string Name => "cuda-events";

    public override double[] Time(Action<int> launch, int runs)
    {
        acc.Bind();
        var api = CudaAPI.CurrentAPI;
        Ensure(2 * runs);
        var stream = ((CudaStream)acc.DefaultStream).StreamPtr;
        long enqueueStart = Stopwatch.GetTimestamp();
        for (int i = 0; i < runs; i++)
        {
            Check(api.RecordEvent(events[2 * i], stream), "cuEventRecord");
            launch(i);
            Check(api.RecordEvent(events[2 * i + 1], stream), "cuEventRecord");
        }

        LastEnqueueMs = Stopwatch.GetElapsedTime(enqueueStart).TotalMilliseconds;
        Check(api.SynchronizeEvent(events[2 * runs - 1]), "cuEventSynchronize");
        Check(api.ElapsedTime(out float span, events[0], events[2 * runs - 1]), "cuEventElapsedTime");
        LastSpanMs = span;
        var ms = new double[runs];
        for (int i = 0; i < runs; i++)
        {
            Check(api.ElapsedTime(out float t, events[2 * i], events[2 * i + 1]), "cuEventElapsedTime");
            ms[i] = t;
        }

        return ms;
    }

    private void Ensure(int n)
    {
        if (events.Length >= n)
        {
            return;
        }

        var api = CudaAPI.CurrentAPI;
        var grown = new IntPtr[Math.Max(n, events.Length * 2)];
        Array.Copy(events, grown, events.Length);
        for (int i = events.Length; i < grown.Length; i++)
        {
            Check(api.CreateEvent(out grown[i], CudaEventFlags.CU_EVENT_DEFAULT), "cuEventCreate");
        }

        events = grown;
    }

    private static void Check(CudaError e, string what)
    {
        if (e != CudaError.CUDA_SUCCESS)
        {
            throw new InvalidOperationException($"{what} failed: {e}");
        }
    }

    public override void Dispose()
    {
        if (events.Length == 0)
        {
            return;
        }

        acc.Bind();
        foreach (var e in events)
        {
            CudaAPI.CurrentAPI.DestroyEvent(e);
        }

        events = Array.Empty<IntPtr>();
    }
}

internal sealed class HostSyncTimer : DeviceTimer
{
    private readonly Accelerator acc;

    public HostSyncTimer(Accelerator acc) => this.acc = acc;

    public override string Name => "host-sync (simulator)";

    public override double[] Time(Action<int> launch, int runs)
    {
        var ms = new double[runs];
        for (int i = 0; i < runs; i++)
        {
            long t0 = Stopwatch.GetTimestamp();
            launch(i);
            acc.Synchronize();
            ms[i] = Stopwatch.GetElapsedTime(t0).TotalMilliseconds;
        }

        return ms;
    }
}
