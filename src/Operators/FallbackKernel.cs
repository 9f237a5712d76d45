using System;
using System.Linq;
using System.Linq.Expressions;
using System.Threading;

namespace GemsInjector.Operators;

/// <summary>
/// Builds, for any kernel delegate type, a kernel that runs a device kernel and, once that fails with the one exception
/// type that means "this kernel cannot be built here" (ILGPU compiles each kernel on its first call), runs the CPU
/// kernel instead for that call and every later one. Any other exception (bad arguments, for instance) propagates as
/// before. A failed compile happens before a kernel writes anything, so the CPU kernel sees the operands untouched.
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
        var type = device.GetType();
        if (cpu.GetType() != type)
        {
            throw new ArgumentException($"The fallback kernel is a {cpu.GetType().Name}, the device kernel a {type.Name}.", nameof(cpu));
        }

        var state = new FallbackState<TFailure>(onFailure);
        var parameters = type.GetMethod(nameof(Action.Invoke))!.GetParameters().Select(p => Expression.Parameter(p.ParameterType, p.Name)).ToArray();
        var failure = Expression.Parameter(typeof(TFailure), "failure");
        var callCpu = Expression.Invoke(Expression.Constant(cpu), parameters);
        var body = Expression.Condition(
            Expression.Property(Expression.Constant(state), nameof(FallbackState<TFailure>.Failed)),
            callCpu,
            Expression.TryCatch(
                Expression.Invoke(Expression.Constant(device), parameters),
                Expression.Catch(failure, Expression.Block(Expression.Call(Expression.Constant(state), nameof(FallbackState<TFailure>.Fail), null, failure), callCpu))),
            callCpu.Type);
        return Expression.Lambda(type, body, parameters).Compile();
    }

    /// <summary>Whether the operator has switched; public members so the compiled expression can reach them.</summary>
    public sealed class FallbackState<TFailure>(Action<TFailure> onFailure)
        where TFailure : Exception
    {
        private int failed;

        /// <summary>Whether the device kernel failed.</summary>
        public bool Failed => Volatile.Read(ref failed) != 0;

        /// <summary>Records the failure; the first one is reported.</summary>
        /// <param name="failure">What the device kernel threw.</param>
        public void Fail(TFailure failure)
        {
            if (Interlocked.Exchange(ref failed, 1) == 0)
            {
                onFailure(failure);
            }
        }
    }
}
