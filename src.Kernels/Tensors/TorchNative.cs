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
        if (Volatile.Read(ref state) > 0 || (state == 0 && TryNative(tensor)))
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
        if (Volatile.Read(ref state) > 0 || (state == 0 && TryNative(tensor)))
        {
            float* pointer = (float*)THSTensor_data(tensor.Handle);
            GC.KeepAlive(tensor);
            return pointer;
        }

        return (float*)Unsafe.AsPointer(ref MemoryMarshal.GetReference(tensor.bytes));
    }

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
}
