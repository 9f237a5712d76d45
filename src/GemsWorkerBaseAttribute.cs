using System;

namespace GemsInjector;

/// <summary>
/// Put by a host framework on its model-runner base class or interface. Every non-abstract class that derives
/// from or implements the marked type is a worker: the GEMS001 analyzer warns when such a class would start
/// without enabling GemsInjector (no <see cref="GemsWorkerAttribute"/> and no call to <see cref="Gems.Enable(GemsOptions?)"/>).
/// </summary>
[AttributeUsage(AttributeTargets.Class | AttributeTargets.Interface, AllowMultiple = false, Inherited = false)]
public sealed class GemsWorkerBaseAttribute : Attribute
{
}
