using System;
using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Text;
using GemsInjector.Kernels.Ilgpu;
using ILGPU;
using ILGPU.Runtime;
using ILGPU.Runtime.Cuda;

namespace GemsInjector.GpuHarness;

/// <summary>
/// <c>--launch-overlap</c>: how much of the time between two launches in one stream programmatic dependent launch (PDL,
/// compute capability 9.0) takes back. <c>--decode-trace</c> measured ~2 µs from one decode launch's last group to the
/// next launch's first (H200 Runs 158–159), and every decode-size row pays the launch floor (4 µs, Run 137). Two tiny
/// kernels written in PTX here, outside ILGPU: each block's first thread spins on the GPU's timer for a set time, then
/// block 0 copies one float; the dependent twin starts with <c>griddepcontrol.launch_dependents</c> (the next grid may
/// launch now) and <c>griddepcontrol.wait</c> (nothing of this grid runs before the previous grid is complete and its
/// memory visible). Each is launched back to back through <c>cuLaunchKernelEx</c>, the twin with and without the launch
/// attribute that allows the overlap; the probe prints the wall time per launch of each.
/// </summary>
internal static class LaunchOverlapProbe
{
    /// <summary>The module: the plain kernel and its dependent twin, the same body after the twin's two instructions.</summary>
    private static readonly string Ptx = """
        .version 8.0
        .target sm_90
        .address_size 64

        """ + Entry("spin_then_copy", string.Empty) + Entry("dependent_spin_then_copy", "griddepcontrol.launch_dependents;\n    griddepcontrol.wait;");

    private static string Entry(string name, string prologue) => $$"""
        .visible .entry {{name}}(.param .u64 p_a, .param .u64 p_y, .param .u64 p_spin)
        {
            .reg .pred %p<3>;
            .reg .b32 %r<4>;
            .reg .b64 %rd<8>;
            .reg .f32 %f<2>;
            {{prologue}}
            ld.param.u64 %rd3, [p_spin];
            mov.u32 %r1, %tid.x;
            setp.ne.u32 %p1, %r1, 0;
            @%p1 bra DONE;
            mov.u64 %rd4, %globaltimer;
            add.u64 %rd5, %rd4, %rd3;
        SPIN:
            mov.u64 %rd6, %globaltimer;
            setp.lt.u64 %p2, %rd6, %rd5;
            @%p2 bra SPIN;
            mov.u32 %r2, %ctaid.x;
            setp.ne.u32 %p1, %r2, 0;
            @%p1 bra DONE;
            ld.param.u64 %rd1, [p_a];
            ld.param.u64 %rd2, [p_y];
            cvta.to.global.u64 %rd1, %rd1;
            cvta.to.global.u64 %rd2, %rd2;
            ld.global.f32 %f1, [%rd1];
            st.global.f32 [%rd2], %f1;
        DONE:
            ret;
        }

        """;

    /// <summary><c>CU_LAUNCH_ATTRIBUTE_PROGRAMMATIC_STREAM_SERIALIZATION</c>.</summary>
    private const int ProgrammaticStreamSerialization = 6;

    public static int Run(Options opt)
    {
        if (opt.Device != IlgpuDeviceKind.Cuda)
        {
            Console.Error.WriteLine("error: --launch-overlap needs --device cuda");
            return 2;
        }

        using var dev = IlgpuDevice.Create(opt.Device);
        var acc = (CudaAccelerator)dev.Accelerator;
        acc.Bind();
        using var a = acc.Allocate1D<float>(new[] { 42f });
        using var y = acc.Allocate1D<float>(1);
        Check(Native.cuModuleLoadData(out IntPtr module, Encoding.ASCII.GetBytes(Ptx + "\0")), "cuModuleLoadData");
        Check(Native.cuModuleGetFunction(out IntPtr plain, module, "spin_then_copy"), "cuModuleGetFunction");
        Check(Native.cuModuleGetFunction(out IntPtr dependent, module, "dependent_spin_then_copy"), "cuModuleGetFunction");
        Check(Native.cuStreamCreate(out IntPtr stream, 1), "cuStreamCreate");
        int launches = opt.LaunchOverlapLaunches;
        Console.WriteLine($"launch-overlap: {dev}; {launches} launches back to back per row, wall time per launch (µs)");
        Console.WriteLine("| kernel | groups | spin (µs) | plain | dependent, no overlap attribute | dependent, overlap allowed |");
        Console.WriteLine("|---|---|---|---|---|---|");
        foreach (var (groups, spinNs) in new[] { (1, 0L), (132, 0L), (132, 5000L), (132, 10000L), (264, 10000L) })
        {
            double Time(IntPtr function, bool overlap)
            {
                for (int i = 0; i < 100; i++)
                {
                    Launch(function, stream, groups, (IntPtr)TensorCoreLaunch.DeviceAddress(a.View.BaseView), (IntPtr)TensorCoreLaunch.DeviceAddress(y.View.BaseView), spinNs, overlap);
                }

                Check(Native.cuStreamSynchronize(stream), "cuStreamSynchronize");
                var watch = Stopwatch.StartNew();
                for (int i = 0; i < launches; i++)
                {
                    Launch(function, stream, groups, (IntPtr)TensorCoreLaunch.DeviceAddress(a.View.BaseView), (IntPtr)TensorCoreLaunch.DeviceAddress(y.View.BaseView), spinNs, overlap);
                }

                Check(Native.cuStreamSynchronize(stream), "cuStreamSynchronize");
                return watch.Elapsed.TotalMicroseconds / launches;
            }

            double plainUs = Time(plain, false);
            double dependentUs = Time(dependent, false);
            double overlapUs = Time(dependent, true);
            Console.WriteLine(FormattableString.Invariant($"| spin, then block 0 copies a float | {groups} | {spinNs / 1000.0:F0} | {plainUs:F2} | {dependentUs:F2} | {overlapUs:F2} |"));
        }

        float copied = y.GetAsArray1D()[0];
        Console.WriteLine($"check: y = {copied} (42 expected)");
        Native.cuStreamDestroy(stream);
        Native.cuModuleUnload(module);
        return copied == 42f ? 0 : 1;
    }

    private static unsafe void Launch(IntPtr function, IntPtr stream, int groups, IntPtr a, IntPtr y, long spinNs, bool overlap)
    {
        var attribute = default(LaunchAttribute);
        attribute.Id = ProgrammaticStreamSerialization;
        attribute.Value0 = 1;
        var config = new LaunchConfig
        {
            GridDimX = (uint)groups,
            GridDimY = 1,
            GridDimZ = 1,
            BlockDimX = 32,
            BlockDimY = 1,
            BlockDimZ = 1,
            Stream = stream,
            Attributes = overlap ? (IntPtr)(&attribute) : IntPtr.Zero,
            AttributeCount = overlap ? 1u : 0u,
        };
        long pa = a.ToInt64(), py = y.ToInt64(), ps = spinNs;
        var parameters = stackalloc IntPtr[3];
        parameters[0] = (IntPtr)(&pa);
        parameters[1] = (IntPtr)(&py);
        parameters[2] = (IntPtr)(&ps);
        Check(Native.cuLaunchKernelEx(ref config, function, (IntPtr)parameters, IntPtr.Zero), "cuLaunchKernelEx");
    }

    private static void Check(int status, string call)
    {
        if (status != 0)
        {
            throw new InvalidOperationException($"{call} failed with CUDA error {status}");
        }
    }

    /// <summary>CUlaunchConfig (CUDA 12+).</summary>
    [StructLayout(LayoutKind.Sequential)]
    private struct LaunchConfig
    {
        public uint GridDimX;
        public uint GridDimY;
        public uint GridDimZ;
        public uint BlockDimX;
        public uint BlockDimY;
        public uint BlockDimZ;
        public uint SharedMemBytes;
        public IntPtr Stream;
        public IntPtr Attributes;
        public uint AttributeCount;
    }

    /// <summary>CUlaunchAttribute: the id, padding to 8 bytes, then a 64-byte value union.</summary>
    [StructLayout(LayoutKind.Explicit, Size = 72)]
    private struct LaunchAttribute
    {
        [FieldOffset(0)]
        public int Id;

        [FieldOffset(8)]
        public int Value0;
    }

    private static class Native
    {
        // The driver's soname; libcuda.so (without .1) is often only in the development package.
        private const string Library = "libcuda.so.1";

        [DllImport(Library)]
        public static extern int cuModuleLoadData(out IntPtr module, byte[] image);

        [DllImport(Library)]
        public static extern int cuModuleGetFunction(out IntPtr function, IntPtr module, [MarshalAs(UnmanagedType.LPStr)] string name);

        [DllImport(Library)]
        public static extern int cuModuleUnload(IntPtr module);

        [DllImport(Library)]
        public static extern int cuStreamCreate(out IntPtr stream, uint flags);

        [DllImport(Library, EntryPoint = "cuStreamDestroy_v2")]
        public static extern int cuStreamDestroy(IntPtr stream);

        [DllImport(Library)]
        public static extern int cuStreamSynchronize(IntPtr stream);

        [DllImport(Library)]
        public static extern int cuLaunchKernelEx(ref LaunchConfig config, IntPtr function, IntPtr kernelParams, IntPtr extra);
    }
}
