using System;
using System.Reflection;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using ILGPU;
using ILGPU.Backends;
using ILGPU.Backends.EntryPoints;
using ILGPU.Runtime;
using ILGPU.Runtime.Cuda;

namespace GemsInjector.Kernels.Ilgpu;

/// <summary>
/// The parameter block of one CUDA launch: the kernel's arguments packed as the driver reads them
/// (<c>CU_LAUNCH_PARAM_BUFFER_POINTER</c>), at most <see cref="Capacity"/> bytes.
/// </summary>
[InlineArray(Words)]
internal struct KernelArgumentBuffer
{
    /// <summary>Bytes the buffer holds: well above the largest parameter list of the kernels it serves.</summary>
    public const int Capacity = Words * sizeof(long);

    private const int Words = 64;

    private long word;
}

/// <summary>
/// Launches a loaded CUDA kernel without the launcher ILGPU emits for it. ILGPU builds one launcher per kernel at run time
/// (Reflection.Emit: an argument structure type and a dynamic method, always compiled fully optimised), which was about
/// 2.5 ms of .NET JIT in every kernel's first call of a process that reads its kernels from the cache (Run 103,
/// <c>docs/perf/h100-notes-startup.md</c>). Here the arguments go into a <see cref="KernelArgumentBuffer"/> through
/// <see cref="Write{T}"/>, compiled once per argument type for all kernels, and the launch is ILGPU's own
/// <see cref="CudaAPI.LaunchKernelWithStruct{T}"/>, instantiated once. Only parameter lists whose layout is known exactly
/// are taken (<see cref="TryLayout"/>); any other kernel keeps ILGPU's launcher.
/// </summary>
internal sealed class DirectCudaLaunch
{
    private readonly CudaKernel kernel;
    private readonly CudaStream stream;
    private readonly SharedMemorySpecification sharedMemory;
    private readonly int argumentBytes;
    private readonly int[] offsets;

    private DirectCudaLaunch(CudaKernel kernel, CudaStream stream, SharedMemorySpecification sharedMemory, int[] offsets, int argumentBytes)
    {
        this.kernel = kernel;
        this.stream = stream;
        this.sharedMemory = sharedMemory;
        this.offsets = offsets;
        this.argumentBytes = argumentBytes;
    }

    /// <summary>The environment variable behind <see cref="Choice"/>.</summary>
    public const string ChoiceVariable = "GEMS_KERNEL_LAUNCHER";

    /// <summary>Which launcher CUDA kernels get; read once per process from <c>GEMS_KERNEL_LAUNCHER</c>.</summary>
    public static KernelLauncherChoice Choice { get; } = ParseChoice(Environment.GetEnvironmentVariable(ChoiceVariable));

    /// <summary><c>ilgpu</c> (any case, trimmed) keeps ILGPU's launchers for every kernel; anything else is <see cref="KernelLauncherChoice.Direct"/>.</summary>
    public static KernelLauncherChoice ParseChoice(string? value) =>
        string.Equals(value?.Trim(), "ilgpu", StringComparison.OrdinalIgnoreCase) ? KernelLauncherChoice.Ilgpu : KernelLauncherChoice.Direct;

    /// <summary>The byte offset of parameter <paramref name="index"/> in the parameter block.</summary>
    public int Offset(int index) => offsets[index];

    /// <summary>
    /// The direct launch of <paramref name="loaded"/>, or <see langword="null"/> when it must keep ILGPU's launcher: not a
    /// CUDA kernel, <see cref="Choice"/> says so, or a parameter whose layout <see cref="TryLayout"/> does not know.
    /// </summary>
    public static DirectCudaLaunch? TryCreate(Kernel loaded, CompiledKernel compiled, Type[] parameterTypes, AcceleratorStream stream)
    {
        // The shared-memory specification comes from the compiled kernel's entry point, which ILGPU keeps internal: the
        // kernel cache reads it the same way and says whether it can.
        if (Choice != KernelLauncherChoice.Direct || loaded is not CudaKernel cudaKernel || stream is not CudaStream cudaStream
            || !KernelDiskCache.IsSupported || !TryLayout(parameterTypes, out var offsets, out int bytes))
        {
            return null;
        }

        return new DirectCudaLaunch(cudaKernel, cudaStream, KernelDiskCache.SharedMemoryOf(compiled), offsets, bytes);
    }

    /// <summary>
    /// The offsets and the used size of a parameter block for these parameter types, as ILGPU's PTX entry points declare
    /// them: each parameter at the next multiple of its alignment, no padding after the last. Known: a one-dimensional
    /// <see cref="ArrayView{T}"/> (the device pointer of its first element, then its length as a 64-bit integer: 16 bytes
    /// at 8), 32- and 64-bit integers and floats (and enums over them), and sequential structures of those, nested or
    /// not (their layout is the same in .NET and in ILGPU). Anything else (views inside structures, which ILGPU
    /// separates, 8- and 16-bit scalars, <see cref="bool"/>) returns false.
    /// </summary>
    public static bool TryLayout(Type[] parameterTypes, out int[] offsets, out int bytes)
    {
        offsets = new int[parameterTypes.Length];
        bytes = 0;
        for (int i = 0; i < parameterTypes.Length; i++)
        {
            if (!TrySizeOf(parameterTypes[i], out int size, out int alignment))
            {
                return false;
            }

            int offset = (bytes + alignment - 1) / alignment * alignment;
            offsets[i] = offset;
            bytes = offset + size;
            if (bytes > KernelArgumentBuffer.Capacity)
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>
    /// Writes <paramref name="value"/> at <paramref name="offset"/> of the parameter block: a view as its first element's
    /// address and its length, anything else (a type <see cref="TryLayout"/> took) as its bytes. Generic over the argument
    /// type, so each call compiles to the few stores its type needs.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Write<T>(ref KernelArgumentBuffer buffer, int offset, T value)
        where T : struct
    {
        ref byte at = ref Unsafe.AddByteOffset(ref Unsafe.As<KernelArgumentBuffer, byte>(ref buffer), offset);
        if (ViewArgument<T>.ElementSize == 0)
        {
            Unsafe.WriteUnaligned(ref at, value);
            return;
        }

        // Every ArrayView<T> holds the same three fields whatever T is (its buffer, first index, length), so the view is
        // read as a byte view and its address scaled by the real element size; DirectCudaLaunchTests compares the result
        // with ILGPU's own LoadEffectiveAddressAsPtr for several element types.
        var view = Unsafe.As<T, ArrayView<byte>>(ref value);
        Unsafe.WriteUnaligned(ref at, view.IsValid ? AddressOf(view, ViewArgument<T>.ElementSize) : 0L);
        Unsafe.WriteUnaligned(ref Unsafe.AddByteOffset(ref at, sizeof(long)), view.Length);
    }

    /// <summary>
    /// The address of a non-empty view's first element, its index scaled by <paramref name="elementSize"/> (a view read
    /// as another element type keeps its own index). The buffer and first index are public through
    /// <see cref="IContiguousArrayView"/> only; the constrained call does not box.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static long AddressOf<TView>(TView view, int elementSize)
        where TView : struct, IContiguousArrayView =>
        view.Buffer.NativePtr.ToInt64() + view.Index * elementSize;

    /// <summary>Launches the kernel with the arguments already written into <paramref name="arguments"/>.</summary>
    /// <exception cref="CudaException">The driver refused the launch.</exception>
    public void Launch(KernelConfig config, ref KernelArgumentBuffer arguments) =>
        CudaException.ThrowIfFailed(CudaAPI.CurrentAPI.LaunchKernelWithStruct(
            stream, kernel, new RuntimeKernelConfig(config, sharedMemory), ref arguments, argumentBytes));

    private static bool TrySizeOf(Type type, out int size, out int alignment)
    {
        if (IsView(type))
        {
            (size, alignment) = (16, 8);
            return true;
        }

        size = ScalarSize(type);
        alignment = size;
        return size > 0 || TryStructure(type, out size, out alignment);
    }

    /// <summary>4 or 8 for the 32- and 64-bit integers and floats (and enums over them), else 0.</summary>
    internal static int ScalarSize(Type type)
    {
        if (type.IsEnum)
        {
            return ScalarSize(Enum.GetUnderlyingType(type));
        }

        return type == typeof(int) || type == typeof(uint) || type == typeof(float) ? 4
            : type == typeof(long) || type == typeof(ulong) || type == typeof(double) ? 8
            : 0;
    }

    // A sequential structure of such scalars (nested structures alike): .NET lays it out as ILGPU does, each field at the
    // next multiple of its size and the whole padded to its largest field, so its bytes can be copied as they are
    // (PtxCompileTests checks the offsets against ILGPU's own structure types).
    private static bool TryStructure(Type type, out int size, out int alignment)
    {
        (size, alignment) = (0, 1);
        if (!type.IsValueType || type.IsPrimitive || type.IsEnum || type.IsGenericType || !type.IsLayoutSequential)
        {
            return false;
        }

        var fields = type.GetFields(BindingFlags.Instance | BindingFlags.Public | BindingFlags.NonPublic);
        foreach (var field in fields)
        {
            int fieldSize = ScalarSize(field.FieldType), fieldAlignment = fieldSize;
            if (fieldSize == 0 && !TryStructure(field.FieldType, out fieldSize, out fieldAlignment))
            {
                return false;
            }

            alignment = Math.Max(alignment, fieldAlignment);
        }

        size = fields.Length == 0 ? 0 : Marshal.SizeOf(type);
        return size > 0;
    }

    /// <summary>The element size of <typeparamref name="T"/> when it is an <see cref="ArrayView{T}"/>, else 0 (a constant to the JIT).</summary>
    /// <remarks>
    /// Read through the view's own <see cref="IArrayView.ElementSize"/> (one boxing per view type) rather than
    /// <see cref="Interop.SizeOf(Type)"/>, which invokes a reflected generic method and so has .NET compile an invoke stub
    /// inside a process's first operator call.
    /// </remarks>
    private static class ViewArgument<T>
    {
        public static readonly int ElementSize = IsView(typeof(T)) ? ((IArrayView)default(T)!).ElementSize : 0;
    }

    private static bool IsView(Type type) => type.IsGenericType && type.GetGenericTypeDefinition() == typeof(ArrayView<>);
}

/// <summary>Which launcher a loaded CUDA kernel gets (<c>GEMS_KERNEL_LAUNCHER</c>).</summary>
internal enum KernelLauncherChoice
{
    /// <summary><see cref="DirectCudaLaunch"/> where the parameter layout is known, ILGPU's launcher elsewhere (the default).</summary>
    Direct,

    /// <summary>ILGPU's launcher for every kernel.</summary>
    Ilgpu,
}
