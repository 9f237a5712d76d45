using System;
using System.Linq;
using System.Linq.Expressions;

namespace GemsInjector.Operators;

/// <summary>
/// Builds, for any kernel delegate type, a kernel of the same type that calls a notification first and then the
/// kernel: how recording wraps every operator without a hand-written wrapper per signature. Built only when
/// recording is on, so calls cost nothing extra otherwise.
/// </summary>
internal static class NotifyingKernel
{
    public static TKernel Wrap<TKernel>(TKernel kernel, Action notify)
        where TKernel : Delegate
    {
        var invoke = typeof(TKernel).GetMethod(nameof(Action.Invoke))!;
        var parameters = invoke.GetParameters().Select(p => Expression.Parameter(p.ParameterType, p.Name)).ToArray();
        var body = Expression.Block(
            Expression.Invoke(Expression.Constant(notify)),
            Expression.Invoke(Expression.Constant(kernel), parameters));
        return Expression.Lambda<TKernel>(body, parameters).Compile();
    }
}
