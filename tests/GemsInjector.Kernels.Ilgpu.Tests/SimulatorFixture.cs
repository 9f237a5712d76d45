using System;
using System.Linq;
using GemsInjector.Kernels.Ilgpu;
using ILGPU;
using ILGPU.Runtime;
using ILGPU.Runtime.CPU;
using Xunit;

namespace GemsInjector.Kernels.Ilgpu.Tests;

/// <summary>
/// A CPU accelerator shaped like one CUDA thread block: 32-thread warps, 8 warps per group (the default simulator has
/// warps of 4 and groups of 16, too small for mma.sync's 32-lane fragments and the GEMV's launch plan), one group at a
/// time so the 256 simulated threads stay within a 2-core machine.
/// </summary>
public sealed class Warp32SimulatorFixture : IDisposable
{
    public Warp32SimulatorFixture()
    {
        Context = Context.Create(b => b.CPU(new CPUDevice(numThreadsPerWarp: 32, numWarpsPerMultiprocessor: 8, numMultiprocessors: 1)).Optimize(OptimizationLevel.O1));
        Accelerator = Context.CreateCPUAccelerator(0);
    }

    public Context Context { get; }

    public Accelerator Accelerator { get; }

    public void Dispose()
    {
        Accelerator.Dispose();
        Context.Dispose();
    }
}

/// <summary>One CPU-simulator device for all kernel tests (kernels compile once per device).</summary>
public sealed class SimulatorFixture : IDisposable
{
    public SimulatorFixture() => Device = IlgpuDevice.Create(IlgpuDeviceKind.CpuSimulator);

    public IlgpuDevice Device { get; }

    public void Dispose() => Device.Dispose();
}

[CollectionDefinition(Name)]
public sealed class SimulatorCollection : ICollectionFixture<SimulatorFixture>
{
    public const string Name = "ILGPU CPU simulator";
}

/// <summary>Buffers, random data and the FlagGems-style closeness check.</summary>
public abstract class KernelTestBase : IDisposable
{
    /// <summary>FlagGems float32 resolution.</summary>
    protected const double RtolF32 = 1.3e-6;
    protected const double RtolF16 = 1e-3;
    protected const double RtolBF16 = 1.6e-2;
    protected const double Atol = 1e-4;

    private readonly System.Collections.Generic.List<IDisposable> buffers = new();

    protected KernelTestBase(SimulatorFixture fixture)
    {
        Device = fixture.Device;
        K = Device.Kernels;
    }

    protected IlgpuDevice Device { get; }

    protected IlgpuKernels K { get; }

    protected Accelerator Acc => Device.Accelerator;

    internal static float[] Random(int seed, int n, float lo = -3f, float hi = 3f)
    {
        var rng = new Random(seed);
        var a = new float[n];
        for (int i = 0; i < n; i++)
        {
            a[i] = lo + (float)rng.NextDouble() * (hi - lo);
        }

        return a;
    }

    protected ArrayView<T> Upload<T>(T[] data)
        where T : unmanaged
    {
        if (data.Length == 0)
        {
            // ILGPU 1.5.3: Allocate1D of an empty array throws NullReferenceException.
            return ArrayView<T>.Empty;
        }

        var b = Acc.Allocate1D(data);
        buffers.Add(b);
        return b.View;
    }

    /// <summary>An output buffer filled with NaN (float) so that an element the kernel does not write fails.</summary>
    protected ArrayView<float> Poisoned(long n)
    {
        return Upload(Enumerable.Repeat(float.NaN, (int)n).ToArray());
    }

    /// <summary>A 16-bit output buffer filled with NaN bits (0x7E00 is NaN in float16; 0x7FC0 in bfloat16).</summary>
    protected ArrayView<ushort> Poisoned16(long n, bool bf16)
    {
        return Upload(Enumerable.Repeat(bf16 ? (ushort)0x7FC0 : (ushort)0x7E00, (int)n).ToArray());
    }

    protected ArrayView<long> PoisonedLong(long n)
    {
        return Upload(Enumerable.Repeat(long.MinValue, (int)n).ToArray());
    }

    protected T[] Download<T>(ArrayView<T> view)
        where T : unmanaged
    {
        Device.Synchronize();
        var host = new T[view.Length];
        if (host.Length > 0)
        {
            view.CopyToCPU(host);
        }

        return host;
    }

    /// <summary>|actual - expected| ≤ atol + rtol·|expected| for every element; NaN must match NaN.</summary>
    protected static void AssertClose(ReadOnlySpan<float> actual, ReadOnlySpan<double> expected, double rtol, double atol, string what, int seed)
    {
        Assert.Equal(expected.Length, actual.Length);
        for (int i = 0; i < actual.Length; i++)
        {
            double e = expected[i];
            if (Math.Abs(e) > float.MaxValue)
            {
                e = e > 0 ? double.PositiveInfinity : double.NegativeInfinity;
            }

            double a = actual[i];
            bool ok = double.IsNaN(e)
                ? double.IsNaN(a)
                : double.IsInfinity(e) ? a == e : !double.IsNaN(a) && Math.Abs(a - e) <= atol + rtol * Math.Abs(e);
            if (!ok)
            {
                Assert.Fail($"{what} (seed {seed}): element {i} is {a:R}, expected {e:R} (|diff| {Math.Abs(a - e):E3}, allowed {atol + rtol * Math.Abs(e):E3}).");
            }
        }
    }

    internal static float[] ToFloat(ushort[] bits, bool bf16) =>
        bits.Select(b => bf16 ? BitConverter.Int32BitsToSingle(b << 16) : (float)BitConverter.UInt16BitsToHalf(b)).ToArray();

    /// <summary>Host conversion to 16-bit storage with round-to-nearest-even (System.Half; bf16 by bits).</summary>
    internal static ushort[] To16(float[] values, bool bf16) =>
        values.Select(v => bf16 ? Bf16(v) : BitConverter.HalfToUInt16Bits((System.Half)v)).ToArray();

    protected static ushort Bf16(float v)
    {
        uint f = BitConverter.SingleToUInt32Bits(v);
        if ((f & 0x7fffffff) > 0x7f800000)
        {
            return (ushort)((f >> 16) | 0x40);
        }

        return (ushort)((f + 0x7fff + ((f >> 16) & 1)) >> 16);
    }

    public virtual void Dispose()
    {
        Device.Synchronize();
        foreach (var b in buffers)
        {
            b.Dispose();
        }
    }
}
