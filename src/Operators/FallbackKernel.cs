using System;
using System.Threading;

namespace GemsInjector.Operators;

/// <summary>
/// A kernel that runs a device kernel and, once that fails with the one exception type that means "this kernel cannot be
/// built here" (ILGPU compiles each kernel on its first call), runs the CPU kernel instead for that call and every later
/// one. Any other exception (bad arguments, for instance) propagates as before. A failed compile happens before a kernel
/// writes anything, so the CPU kernel sees the operands untouched.
/// </summary>
internal static class FallbackKernel
{
    /// <summary>Wraps <paramref name="device"/> with <paramref name="cpu"/> (both of the same delegate type).</summary>
    /// <typeparam name="TFailure">The exception that switches the operator to <paramref name="cpu"/>.</typeparam>
    /// <param name="device">The device kernel.</param>
    /// <param name="cpu">The kernel that takes over.</param>
    /// <param name="onFailure">Called once, with the failure, when the operator switches.</param>
    /// <returns>A delegate of <paramref name="device"/>'s type.</returns>
    public static Delegate Wrap<TFailure>(Delegate device, Delegate cpu, Action<TFailure> onFailure)
        where TFailure : Exception
    {
        if (cpu.GetType() != device.GetType())
        {
            throw new ArgumentException($"The fallback kernel is a {cpu.GetType().Name}, the device kernel a {device.GetType().Name}.", nameof(cpu));
        }

        return ForwardingKernel.Create(device, new Choice<TFailure>(device, cpu, onFailure));
    }

    private sealed class Choice<TFailure>(Delegate device, Delegate cpu, Action<TFailure> onFailure) : IKernelChoice
        where TFailure : Exception
    {
        private int failed;

        public Delegate Current() => Volatile.Read(ref failed) != 0 ? cpu : device;

        public bool TakeOver(Delegate kernel, Exception failure)
        {
            // Only the device kernel's own compile failure switches; the CPU kernel's exceptions are the caller's.
            if (kernel != device || failure is not TFailure compileFailure)
            {
                return false;
            }

            if (Interlocked.Exchange(ref failed, 1) == 0)
            {
                onFailure(compileFailure);
            }

            return true;
        }
    }
}
