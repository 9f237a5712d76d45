using System;
using System.Text;
using TorchSharp;

namespace GemsInjector.Kernels.Tensors;

/// <summary>Boundary checks for TorchSharp tensors, with messages that name the operator, the argument and what was found.</summary>
internal static class TensorChecks
{
    /// <summary>Throws unless <paramref name="tensor"/> is a float32 tensor on the CPU.</summary>
    public static void CpuFloat32(string operatorName, torch.Tensor? tensor, string argumentName)
    {
        if (tensor is null)
        {
            throw new ArgumentNullException(argumentName, $"{operatorName}: argument '{argumentName}' is null.");
        }

        if (tensor.device_type != DeviceType.CPU)
        {
            throw new ArgumentException(
                $"{operatorName}: argument '{argumentName}' is on device '{tensor.device}', but this kernel runs on the CPU (device 'cpu').",
                argumentName);
        }

        if (tensor.dtype != torch.ScalarType.Float32)
        {
            throw new ArgumentException(
                $"{operatorName}: argument '{argumentName}' has dtype {tensor.dtype}, but this CPU kernel supports Float32 only.",
                argumentName);
        }
    }

    /// <summary>Throws unless <paramref name="tensor"/> is a float32, float16 or bfloat16 tensor on the CPU; returns its dtype.</summary>
    public static torch.ScalarType CpuFloating(string operatorName, torch.Tensor? tensor, string argumentName)
    {
        if (tensor is null)
        {
            throw new ArgumentNullException(argumentName, $"{operatorName}: argument '{argumentName}' is null.");
        }

        if (tensor.device_type != DeviceType.CPU)
        {
            throw new ArgumentException(
                $"{operatorName}: argument '{argumentName}' is on device '{tensor.device}', but this kernel runs on the CPU (device 'cpu').",
                argumentName);
        }

        torch.ScalarType dtype = tensor.dtype;
        if (dtype is not (torch.ScalarType.Float32 or torch.ScalarType.Float16 or torch.ScalarType.BFloat16))
        {
            throw new ArgumentException(
                $"{operatorName}: argument '{argumentName}' has dtype {dtype}, but this CPU kernel supports Float32, Float16 and BFloat16 only.",
                argumentName);
        }

        return dtype;
    }

    /// <summary>
    /// Throws unless <paramref name="tensor"/> is a supported CPU tensor of the same dtype as the first argument
    /// (<paramref name="firstName"/>, of dtype <paramref name="firstDtype"/>).
    /// </summary>
    public static void SameFloating(string operatorName, torch.ScalarType firstDtype, string firstName, torch.Tensor? tensor, string argumentName)
    {
        torch.ScalarType dtype = CpuFloating(operatorName, tensor, argumentName);
        if (dtype != firstDtype)
        {
            throw new ArgumentException(
                $"{operatorName}: argument '{argumentName}' has dtype {dtype} but argument '{firstName}' has dtype {firstDtype}; " +
                "they must be the same (mixed dtypes are not promoted).",
                argumentName);
        }
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
}
