using System;
using System.Runtime.CompilerServices;
using GemsInjector.Kernels.Ilgpu;
using ILGPU;
using ILGPU.Runtime;
using ILGPU.Runtime.CPU;
using Xunit;

namespace GemsInjector.Kernels.Ilgpu.Tests;

/// <summary>
/// The parts of <see cref="DirectCudaLaunch"/> that run without a GPU: the parameter layout rules, what
/// <see cref="DirectCudaLaunch.Write{T}"/> puts into the parameter block, the switch, and that nothing but a CUDA kernel takes the direct path. The layout of every
/// shipped kernel against its PTX entry is <see cref="PtxCompileTests.EveryDirectLaunchLayoutMatchesItsPtxEntry"/>; the
/// launches themselves run in the GPU harness's accuracy suite.
/// </summary>
public sealed class DirectCudaLaunchTests
{
    private struct Shape
    {
        public int Rows;
        public float Scale;
        public Inner Nested;
    }

    private struct Inner
    {
        public uint Flags;
        public int Count;
    }

    // Layout-only structures (never written): a 64-bit field between 32-bit ones, a Boolean field, and a view inside a structure.
#pragma warning disable CS0649
    private struct WithLong
    {
        public int Rows;
        public long Total;
        public float Scale;
    }

    private struct WithBool
    {
        public int Rows;
        public bool Transposed;
    }

    private struct WithView
    {
        public ArrayView<float> Data;
    }
#pragma warning restore CS0649

    private enum Mode
    {
        First,
        Second,
    }

    [Fact]
    public void LayoutPlacesEachParameterAtItsAlignment()
    {
        Type[] types = [typeof(int), typeof(ArrayView<float>), typeof(float), typeof(long), typeof(Shape), typeof(ArrayView<ushort>), typeof(Mode), typeof(double)];
        Assert.True(DirectCudaLaunch.TryLayout(types, out var offsets, out int bytes));
        Assert.Equal([0, 8, 24, 32, 40, 56, 72, 80], offsets);
        Assert.Equal(88, bytes);
    }

    [Fact]
    public void LayoutPadsAStructureToItsLargestField()
    {
        Assert.True(DirectCudaLaunch.TryLayout([typeof(int), typeof(WithLong), typeof(int)], out var offsets, out int bytes));
        Assert.Equal([0, 8, 32], offsets);
        Assert.Equal(36, bytes);
    }

    [Fact]
    public void LayoutEndsAtTheLastParameterWithoutPadding()
    {
        Assert.True(DirectCudaLaunch.TryLayout([typeof(ArrayView<float>), typeof(int)], out var offsets, out int bytes));
        Assert.Equal([0, 16], offsets);
        Assert.Equal(20, bytes);
    }

    [Theory]
    [InlineData(typeof(bool))]
    [InlineData(typeof(byte))]
    [InlineData(typeof(short))]
    [InlineData(typeof(System.Half))]
    [InlineData(typeof(WithBool))]
    [InlineData(typeof(WithView))]
    [InlineData(typeof(ArrayView1D<float, Stride1D.Dense>))]
    [InlineData(typeof(SpecializedValue<int>))]
    public void LayoutDeclinesWhatItDoesNotKnow(Type type)
    {
        Assert.False(DirectCudaLaunch.TryLayout([typeof(ArrayView<float>), type], out _, out _));
    }

    [Fact]
    public void LayoutDeclinesABlockOverTheBufferCapacity()
    {
        var views = new Type[KernelArgumentBuffer.Capacity / 16 + 1];
        Array.Fill(views, typeof(ArrayView<float>));
        Assert.False(DirectCudaLaunch.TryLayout(views, out _, out _));
        Assert.True(DirectCudaLaunch.TryLayout(views[..^1], out _, out int bytes));
        Assert.Equal(KernelArgumentBuffer.Capacity, bytes);
    }

    [Fact]
    public void ViewIsWrittenAsItsFirstElementsAddressThenItsLength()
    {
        using var context = Context.Create(b => b.CPU());
        using var accelerator = context.CreateCPUAccelerator(0);
        using var buffer = accelerator.Allocate1D<float>(100);
        ArrayView<float> whole = buffer.View, view = buffer.View.SubView(10, 20);

        var block = Poisoned();
        DirectCudaLaunch.Write(ref block, 8, view);

        Assert.Equal(view.LoadEffectiveAddressAsPtr().ToInt64(), Read<long>(ref block, 8));
        Assert.Equal(whole.LoadEffectiveAddressAsPtr().ToInt64() + 10 * sizeof(float), Read<long>(ref block, 8));
        Assert.Equal(20L, Read<long>(ref block, 16));
        Assert.Equal(unchecked((long)0xA5A5A5A5A5A5A5A5), Read<long>(ref block, 0));
        Assert.Equal(unchecked((long)0xA5A5A5A5A5A5A5A5), Read<long>(ref block, 24));
    }

    [Fact]
    public void ViewAddressesScaleByTheElementSize()
    {
        using var context = Context.Create(b => b.CPU());
        using var accelerator = context.CreateCPUAccelerator(0);
        Check(accelerator.Allocate1D<byte>(64), 7);
        Check(accelerator.Allocate1D<ushort>(64), 5);
        Check(accelerator.Allocate1D<long>(64), 3);
        Check(accelerator.Allocate1D<Half8>(64), 9);
        Check(accelerator.Allocate1D<Shape>(64), 11);

        static void Check<T>(MemoryBuffer1D<T, Stride1D.Dense> buffer, int start)
            where T : unmanaged
        {
            using (buffer)
            {
                ArrayView<T> view = buffer.View.SubView(start, 13);
                var block = Poisoned();
                DirectCudaLaunch.Write(ref block, 16, view);
                Assert.Equal(view.LoadEffectiveAddressAsPtr().ToInt64(), Read<long>(ref block, 16));
                Assert.Equal(13L, Read<long>(ref block, 24));
            }
        }
    }

    [Fact]
    public void DeviceAddressIsTheFirstElementsAddressAndZeroForAnEmptyView()
    {
        using var context = Context.Create(b => b.CPU());
        using var accelerator = context.CreateCPUAccelerator(0);
        using var floats = accelerator.Allocate1D<float>(64);
        using var halves = accelerator.Allocate1D<Half8>(16);
        ArrayView<float> whole = floats.View, part = floats.View.SubView(10, 20), none = floats.View.SubView(10, 0);
        ArrayView<Half8> vectors = halves.View.SubView(3, 5);

        Assert.Equal(part.LoadEffectiveAddressAsPtr().ToInt64(), TensorCoreLaunch.DeviceAddress(part));
        Assert.Equal(whole.LoadEffectiveAddressAsPtr().ToInt64() + 10 * sizeof(float), TensorCoreLaunch.DeviceAddress(part.Cast<ushort>()));
        Assert.Equal(vectors.LoadEffectiveAddressAsPtr().ToInt64(), TensorCoreLaunch.DeviceAddress(vectors));
        Assert.Equal(0L, TensorCoreLaunch.DeviceAddress(ArrayView<float>.Empty));
        Assert.Equal(0L, TensorCoreLaunch.DeviceAddress(none));
    }

    [Fact]
    public void EmptyViewIsWrittenAsNullAndZero()
    {
        var block = Poisoned();
        DirectCudaLaunch.Write(ref block, 0, ArrayView<int>.Empty);
        Assert.Equal(0L, Read<long>(ref block, 0));
        Assert.Equal(0L, Read<long>(ref block, 8));
    }

    [Fact]
    public void ValuesAreCopiedAtTheirOffset()
    {
        var block = Poisoned();
        var shape = new Shape { Rows = 7, Scale = -2.5f, Nested = new Inner { Flags = 0xDEADBEEF, Count = -3 } };
        DirectCudaLaunch.Write(ref block, 4, 123456789);
        DirectCudaLaunch.Write(ref block, 8, 0.1f);
        DirectCudaLaunch.Write(ref block, 16, long.MinValue + 5);
        DirectCudaLaunch.Write(ref block, 24, shape);
        DirectCudaLaunch.Write(ref block, 40, Mode.Second);

        Assert.Equal(123456789, Read<int>(ref block, 4));
        Assert.Equal(0.1f, Read<float>(ref block, 8));
        Assert.Equal(long.MinValue + 5, Read<long>(ref block, 16));
        Assert.Equal(7, Read<int>(ref block, 24));
        Assert.Equal(-2.5f, Read<float>(ref block, 28));
        Assert.Equal(0xDEADBEEF, Read<uint>(ref block, 32));
        Assert.Equal(-3, Read<int>(ref block, 36));
        Assert.Equal(1, Read<int>(ref block, 40));
        Assert.Equal(unchecked((int)0xA5A5A5A5), Read<int>(ref block, 0));
        Assert.Equal(unchecked((int)0xA5A5A5A5), Read<int>(ref block, 12));
        Assert.Equal(unchecked((int)0xA5A5A5A5), Read<int>(ref block, 44));
    }

    [Theory]
    [InlineData(null, false)]
    [InlineData("", false)]
    [InlineData("direct", false)]
    [InlineData("ilgpu", true)]
    [InlineData(" ILGPU ", true)]
    [InlineData("ilgpu2", false)]
    public void ChoiceParses(string? value, bool keepsIlgpusLaunchers) =>
        Assert.Equal(keepsIlgpusLaunchers ? KernelLauncherChoice.Ilgpu : KernelLauncherChoice.Direct, DirectCudaLaunch.ParseChoice(value));

    [Fact]
    public void NothingButACudaKernelLaunchesDirectly()
    {
        using var device = IlgpuDevice.Create(IlgpuDeviceKind.CpuSimulator);
        using var input = device.Accelerator.Allocate1D([-1f, 2.5f, -0f, 3f]);
        using var output = device.Accelerator.Allocate1D<float>(4);
        device.Kernels.Relu(input.View, output.View);
        device.Synchronize();
        Assert.Equal([0f, 2.5f, 0f, 3f], output.GetAsArray1D());
        Assert.Equal(0, device.DirectLaunchKernels);
    }

    private static KernelArgumentBuffer Poisoned()
    {
        var block = default(KernelArgumentBuffer);
        Unsafe.InitBlockUnaligned(ref Unsafe.As<KernelArgumentBuffer, byte>(ref block), 0xA5, KernelArgumentBuffer.Capacity);
        return block;
    }

    private static T Read<T>(ref KernelArgumentBuffer block, int offset)
        where T : unmanaged =>
        Unsafe.ReadUnaligned<T>(ref Unsafe.AddByteOffset(ref Unsafe.As<KernelArgumentBuffer, byte>(ref block), offset));
}
