using System;
using System.Runtime.InteropServices;
using System.Text;
using System.Threading;
using GemsInjector.Kernels.Numerics;
using GemsInjector.Kernels.Tensors;
using TorchSharp;

namespace GemsInjector.Kernels.Cpu;

/// <summary>The element type of a floating-point tensor these kernels accept.</summary>
internal enum KernelDType
{
    Float32,
    Float16,
    BFloat16,
}

/// <summary>
/// Boundary checks and metadata for the CPU and ILGPU tensor kernels: float32, float16 and bfloat16 CPU tensors, matching dtypes
/// between arguments, shapes (equality, broadcasting, formatting), strides without TorchSharp's managed overhead. The messages
/// name the operator, the argument and what was found.
/// </summary>
internal static unsafe class KernelArguments
{
    private const string Library = "LibTorchSharp";

    /// <summary>0: not tried; 1: native stride getter; -1: managed fallback.</summary>
    private static int strideState;

    /// <summary>Throws unless <paramref name="tensor"/> is a non-null CPU tensor.</summary>
    public static void CpuTensor(string operatorName, torch.Tensor? tensor, string argumentName)
    {
        if (tensor is null)
        {
            throw new ArgumentNullException(argumentName, $"{operatorName}: argument '{argumentName}' is null.");
        }

        if (TorchNative.DeviceType(tensor) != DeviceType.CPU)
        {
            throw new ArgumentException(
                $"{operatorName}: argument '{argumentName}' is on device '{tensor.device}', but this kernel runs on the CPU (device 'cpu').",
                argumentName);
        }
    }

    /// <summary>Throws unless <paramref name="tensor"/> is a float32 tensor on the CPU.</summary>
    public static void CpuFloat32(string operatorName, torch.Tensor? tensor, string argumentName)
    {
        CpuTensor(operatorName, tensor, argumentName);
        if (tensor!.dtype != torch.ScalarType.Float32)
        {
            throw new ArgumentException(
                $"{operatorName}: argument '{argumentName}' has dtype {tensor.dtype}, but this CPU kernel supports Float32 only.",
                argumentName);
        }
    }

    /// <summary>Throws unless <paramref name="tensor"/> is a float32, float16 or bfloat16 tensor on the CPU; returns its dtype.</summary>
    public static torch.ScalarType CpuFloating(string operatorName, torch.Tensor? tensor, string argumentName)
    {
        CpuTensor(operatorName, tensor, argumentName);
        torch.ScalarType dtype = TorchNative.ScalarType(tensor!);
        if (dtype is not (torch.ScalarType.Float32 or torch.ScalarType.Float16 or torch.ScalarType.BFloat16))
        {
            throw new ArgumentException(
                $"{operatorName}: argument '{argumentName}' has dtype {dtype}, but this CPU kernel supports Float32, Float16 and BFloat16 only.",
                argumentName);
        }

        return dtype;
    }

    /// <summary>Throws unless <paramref name="tensor"/> is a float32, float16 or bfloat16 CPU tensor; returns its element type.</summary>
    public static KernelDType Floating(string operatorName, torch.Tensor? tensor, string argumentName) =>
        CpuFloating(operatorName, tensor, argumentName) switch
        {
            torch.ScalarType.Float16 => KernelDType.Float16,
            torch.ScalarType.BFloat16 => KernelDType.BFloat16,
            _ => KernelDType.Float32,
        };

    /// <summary>
    /// Throws unless <paramref name="tensor"/> is a supported CPU tensor of the same dtype as the first argument
    /// (<paramref name="firstName"/>, of dtype <paramref name="firstDtype"/>); the message says mixed dtypes are not promoted.
    /// </summary>
    public static void SameFloating(string operatorName, torch.ScalarType firstDtype, string firstName, torch.Tensor? tensor, string argumentName) =>
        SameFloating(operatorName, firstDtype, firstName, tensor, argumentName, "they must be the same (mixed dtypes are not promoted).");

    /// <summary>Throws unless <paramref name="other"/> is a supported CPU tensor of the same dtype as <paramref name="first"/>.</summary>
    public static void SameDType(string operatorName, torch.Tensor first, string firstName, torch.Tensor? other, string otherName) =>
        SameFloating(operatorName, first.dtype, firstName, other, otherName, "they must match.");

    /// <summary>Throws unless <paramref name="tensor"/> is an int32 or int64 CPU tensor; returns whether it is int64.</summary>
    public static bool IndexTensor(string operatorName, torch.Tensor? tensor, string argumentName)
    {
        CpuTensor(operatorName, tensor, argumentName);
        return tensor!.dtype switch
        {
            torch.ScalarType.Int64 => true,
            torch.ScalarType.Int32 => false,
            _ => throw new ArgumentException(
                $"{operatorName}: argument '{argumentName}' has dtype {tensor.dtype}, but it must be Int64 or Int32.", argumentName),
        };
    }

    /// <summary>The TorchSharp scalar type of <paramref name="kind"/>.</summary>
    public static torch.ScalarType ScalarType(KernelDType kind) => kind switch
    {
        KernelDType.Float16 => torch.ScalarType.Float16,
        KernelDType.BFloat16 => torch.ScalarType.BFloat16,
        _ => torch.ScalarType.Float32,
    };

    /// <summary>
    /// A scalar (such as alpha) rounded to <paramref name="dtype"/> and widened back to float32, as aten converts it to the tensors'
    /// scalar type (<c>alpha_scalar.to&lt;scalar_t&gt;()</c>) before computing in float32.
    /// </summary>
    public static float RoundScalar(double value, torch.ScalarType dtype) => dtype switch
    {
        torch.ScalarType.Float16 => (float)(Half)value,
        torch.ScalarType.BFloat16 => BFloat16Bits.ToSingle(BFloat16Bits.FromSingle((float)value)),
        _ => (float)value,
    };

    /// <summary>The address of the first element (storage offset applied); null for an empty tensor.</summary>
    public static void* Data(torch.Tensor tensor) => tensor.numel() == 0 ? null : TorchNative.Data(tensor);

    /// <summary>
    /// Whether the memory of two contiguous CPU tensors overlaps (the byte ranges from each first element to its last). In-place
    /// kernels that write one argument while reading another refuse overlapping arguments: the result would depend on the order
    /// in which rows are processed.
    /// </summary>
    public static bool Overlap(torch.Tensor a, torch.Tensor b)
    {
        long bytesA = a.numel() * a.element_size(), bytesB = b.numel() * b.element_size();
        if (bytesA == 0 || bytesB == 0)
        {
            return false;
        }

        byte* pa = (byte*)TorchNative.Data(a), pb = (byte*)TorchNative.Data(b);
        bool overlap = pa < pb + bytesB && pb < pa + bytesA;
        GC.KeepAlive(a);
        GC.KeepAlive(b);
        return overlap;
    }

    /// <summary>The shape of <paramref name="tensor"/> (fast native getters).</summary>
    public static long[] Shape(torch.Tensor tensor) => TorchNative.Shape(tensor);

    /// <summary>The strides of <paramref name="tensor"/>, in elements.</summary>
    public static long[] Strides(torch.Tensor tensor, int rank)
    {
        if (Volatile.Read(ref strideState) > 0 || (strideState == 0 && TryNative(tensor)))
        {
            var strides = new long[rank];
            IntPtr handle = tensor.Handle;
            for (int i = 0; i < rank; i++)
            {
                strides[i] = THSTensor_stride(handle, i);
            }

            GC.KeepAlive(tensor);
            return strides;
        }

        return tensor.stride();
    }

    /// <summary>Whether two shapes are equal.</summary>
    public static bool SameShape(long[] a, long[] b)
    {
        if (a.Length != b.Length)
        {
            return false;
        }

        for (int i = 0; i < a.Length; i++)
        {
            if (a[i] != b[i])
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>The broadcast shape of <paramref name="a"/> and <paramref name="b"/> (NumPy/aten rules), or null if they do not broadcast.</summary>
    public static long[]? BroadcastShape(long[] a, long[] b)
    {
        int rank = Math.Max(a.Length, b.Length);
        var shape = new long[rank];
        for (int i = 0; i < rank; i++)
        {
            long x = i < rank - a.Length ? 1 : a[i - (rank - a.Length)];
            long y = i < rank - b.Length ? 1 : b[i - (rank - b.Length)];
            if (x == y || y == 1)
            {
                shape[i] = x;
            }
            else if (x == 1)
            {
                shape[i] = y;
            }
            else
            {
                return null;
            }
        }

        return shape;
    }

    /// <summary>Formats a shape as <c>[2, 3]</c>.</summary>
    public static string Format(long[] shape)
    {
        var text = new StringBuilder("[");
        for (int i = 0; i < shape.Length; i++)
        {
            text.Append(i == 0 ? string.Empty : ", ").Append(shape[i]);
        }

        return text.Append(']').ToString();
    }

    /// <summary>Normalizes a possibly negative dimension index for a tensor of <paramref name="rank"/> dimensions.</summary>
    public static int Dimension(string operatorName, long dim, int rank, long[] shape, string argumentName)
    {
        int effectiveRank = Math.Max(rank, 1);
        if (dim < -effectiveRank || dim >= effectiveRank)
        {
            throw new ArgumentOutOfRangeException(
                argumentName, dim,
                $"{operatorName}: dimension {dim} is out of range for 'input' of shape {Format(shape)} (expected a value in [{-effectiveRank}, {effectiveRank - 1}]).");
        }

        return (int)(dim < 0 ? dim + effectiveRank : dim);
    }

    private static void SameFloating(string operatorName, torch.ScalarType firstDtype, string firstName, torch.Tensor? tensor, string argumentName, string rule)
    {
        torch.ScalarType dtype = CpuFloating(operatorName, tensor, argumentName);
        if (dtype != firstDtype)
        {
            throw new ArgumentException(
                $"{operatorName}: argument '{argumentName}' has dtype {dtype} but argument '{firstName}' has dtype {firstDtype}; {rule}",
                argumentName);
        }
    }

    private static bool TryNative(torch.Tensor tensor)
    {
        bool works;
        try
        {
            _ = TorchNative.Shape(tensor); // installs LibTorchSharp's resolver for this assembly
            long[] managed = tensor.stride();
            works = true;
            for (int i = 0; works && i < managed.Length; i++)
            {
                works = THSTensor_stride(tensor.Handle, i) == managed[i];
            }

            GC.KeepAlive(tensor);
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException or BadImageFormatException)
        {
            works = false;
        }

        Volatile.Write(ref strideState, works ? 1 : -1);
        return works;
    }

    [DllImport(Library)]
    [SuppressGCTransition]
    private static extern long THSTensor_stride(IntPtr tensor, long dimension);
}
