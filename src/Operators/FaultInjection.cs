using System;
using System.Runtime.CompilerServices;

namespace GemsInjector.Operators;

/// <summary>Where <see cref="FaultInjection"/> can make enabling fail.</summary>
internal enum FaultPoint
{
    /// <summary>Creating (or fetching) an ILGPU device for <c>GEMS_DEVICE</c>; the detail is the device name.</summary>
    DeviceCreation,

    /// <summary>Building a backend's kernel catalog; the detail is the backend (<c>cpu</c> or <c>ilgpu</c>).</summary>
    CatalogBuild,

    /// <summary>Registering one operator's kernel during an enable; the detail is the operator name.</summary>
    Registration,
}

/// <summary>
/// A test seam: the runtime's own tests set <see cref="Hook"/> to throw at one of the <see cref="FaultPoint"/>s and
/// check that every failure leaves the operator table, the status and the log consistent. Internal, never set by the
/// runtime itself, and a single static field read when unset.
/// </summary>
internal static class FaultInjection
{
    /// <summary>Called at each fault point; throwing from it injects the fault there. Null outside tests.</summary>
    internal static volatile Action<FaultPoint, string>? Hook;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static void At(FaultPoint point, string detail) => Hook?.Invoke(point, detail);
}
