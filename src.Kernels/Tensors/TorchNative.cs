using System;
using System.Reflection;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Threading;
using TorchSharp;

namespace GemsInjector.Kernels.Tensors;

/// <summary>
/// Fast tensor metadata. TorchSharp's <c>shape</c> costs ~1.5 µs and <c>size(i)</c> ~0.3 µs per call here, more than a
/// decode-size kernel; the same facts come from LibTorchSharp's exported getters in a few nanoseconds. The library is
/// resolved through TorchSharp's own assembly (so it is the copy TorchSharp loaded); if that fails, or the first answer
/// disagrees with TorchSharp's, every call falls back to TorchSharp's managed API.
/// </summary>
internal static unsafe class TorchNative
{
    private const string Library = "LibTorchSharp";

    /// <summary>0: not tried yet; 1: native getters in use; -1: managed fallback.</summary>
    private static int state;

    static TorchNative()
    {
        try
        {
            NativeLibrary.SetDllImportResolver(typeof(TorchNative).Assembly, Resolve);
        }
        catch (InvalidOperationException)
        {
            // Another resolver is already set for this assembly: the default probing applies, and the check below still guards it.
        }
    }

    /// <summary>The shape of <paramref name="tensor"/>.</summary>
    public static long[] Shape(torch.Tensor tensor)
    {
        if (NativeWorks(tensor))
        {
            IntPtr handle = tensor.Handle;
            var shape = new long[THSTensor_ndimension(handle)];
            for (int i = 0; i < shape.Length; i++)
            {
                shape[i] = THSTensor_size(handle, i);
            }

            GC.KeepAlive(tensor);
            return shape;
        }

        return tensor.shape;
    }

    /// <summary>The address of the first element of a CPU tensor with at least one element.</summary>
    public static float* Data(torch.Tensor tensor)
    {
        if (NativeWorks(tensor))
        {
            float* pointer = (float*)THSTensor_data(tensor.Handle);
            GC.KeepAlive(tensor);
            return pointer;
        }

        return (float*)Unsafe.AsPointer(ref MemoryMarshal.GetReference(tensor.bytes));
    }

    /// <summary>The device type of <paramref name="tensor"/> (one native call; TorchSharp's property makes two, with GC transitions).</summary>
    public static DeviceType DeviceType(torch.Tensor tensor)
    {
        if (NativeWorks(tensor))
        {
            var type = (DeviceType)THSTensor_device_type(tensor.Handle);
            GC.KeepAlive(tensor);
            return type;
        }

        return tensor.device_type;
    }

    /// <summary>The dtype of <paramref name="tensor"/> (one native call; TorchSharp's property makes two, with GC transitions).</summary>
    public static torch.ScalarType ScalarType(torch.Tensor tensor)
    {
        if (NativeWorks(tensor))
        {
            var type = (torch.ScalarType)THSTensor_type(tensor.Handle);
            GC.KeepAlive(tensor);
            return type;
        }

        return tensor.dtype;
    }

    /// <summary>Whether <paramref name="tensor"/> is contiguous (one native call; TorchSharp's method makes two, with GC transitions).</summary>
    public static bool IsContiguous(torch.Tensor tensor)
    {
        if (NativeWorks(tensor))
        {
            bool contiguous = THSTensor_is_contiguous(tensor.Handle) != 0;
            GC.KeepAlive(tensor);
            return contiguous;
        }

        return tensor.is_contiguous();
    }

    /// <summary>
    /// A new uninitialized CPU tensor of <paramref name="shape"/> and <paramref name="dtype"/> (not requiring grad), as
    /// <c>torch.empty(shape, dtype, torch.CPU)</c> makes it, without its managed device and default-dtype handling. On a
    /// failed allocation it collects garbage and retries once, as TorchSharp does, then throws TorchSharp's error.
    /// </summary>
    public static torch.Tensor EmptyCpu(long[] shape, torch.ScalarType dtype)
    {
        if (Volatile.Read(ref state) <= 0)
        {
            return torch.empty(shape, dtype, torch.CPU);
        }

        fixed (long* sizes = shape)
        {
            IntPtr handle = THSTensor_empty((IntPtr)sizes, shape.Length, (sbyte)dtype, (int)TorchSharp.DeviceType.CPU, -1, 0);
            if (handle == IntPtr.Zero)
            {
                GC.Collect();
                GC.WaitForPendingFinalizers();
                handle = THSTensor_empty((IntPtr)sizes, shape.Length, (sbyte)dtype, (int)TorchSharp.DeviceType.CPU, -1, 0);
                if (handle == IntPtr.Zero)
                {
                    torch.CheckForErrors();
                }
            }

            return torch.Tensor.UnsafeCreateTensor(handle);
        }
    }

    /// <summary>Whether the direct native calls serve this process: checked once, on the first tensor, against TorchSharp's own answers.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static bool NativeWorks(torch.Tensor tensor) => Volatile.Read(ref state) > 0 || (state == 0 && TryNative(tensor));

    private static bool TryNative(torch.Tensor tensor)
    {
        bool works;
        try
        {
            long[] managed = tensor.shape;
            IntPtr handle = tensor.Handle;
            works = THSTensor_ndimension(handle) == managed.Length;
            for (int i = 0; works && i < managed.Length; i++)
            {
                works = THSTensor_size(handle, i) == managed[i];
            }

            if (works && tensor.numel() > 0 && tensor.is_contiguous())
            {
                works = THSTensor_data(handle) == (IntPtr)Unsafe.AsPointer(ref MemoryMarshal.GetReference(tensor.bytes));
            }

            GC.KeepAlive(tensor);
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException or BadImageFormatException)
        {
            works = false;
        }

        Volatile.Write(ref state, works ? 1 : -1);
        return works;
    }

    private static IntPtr Resolve(string name, Assembly assembly, DllImportSearchPath? searchPath) =>
        name == Library && NativeLibrary.TryLoad(name, typeof(torch).Assembly, searchPath, out IntPtr handle) ? handle : IntPtr.Zero;

    [DllImport(Library)]
    [SuppressGCTransition]
    private static extern long THSTensor_ndimension(IntPtr tensor);

    [DllImport(Library)]
    [SuppressGCTransition]
    private static extern long THSTensor_size(IntPtr tensor, long dimension);

    [DllImport(Library)]
    [SuppressGCTransition]
    private static extern IntPtr THSTensor_data(IntPtr tensor);

    [DllImport(Library)]
    [SuppressGCTransition]
    private static extern int THSTensor_device_type(IntPtr tensor);

    [DllImport(Library)]
    [SuppressGCTransition]
    private static extern sbyte THSTensor_type(IntPtr tensor);

    [DllImport(Library)]
    [SuppressGCTransition]
    private static extern byte THSTensor_is_contiguous(IntPtr tensor);

    [DllImport(Library)]
    private static extern IntPtr THSTensor_empty(IntPtr sizes, int length, sbyte scalarType, int deviceType, int deviceIndex, byte requiresGrad);
}
