namespace GemsInjector.Kernels.Ilgpu;

/// <summary>
/// A compile-time integer for a kernel, passed as a type argument: each instantiation is its own compiled kernel, in
/// which the value folds to a constant (loops over it unroll). ILGPU's <c>SpecializedValue</c> does the same per launch,
/// but those variants are compiled inside ILGPU where the on-disk kernel cache cannot reach them.
/// </summary>
internal interface IKernelConstant
{
    /// <summary>The constant.</summary>
    int Value { get; }
}

/// <summary>The constant 1.</summary>
internal readonly struct Const1 : IKernelConstant
{
    /// <inheritdoc/>
    public int Value => 1;
}

/// <summary>The constant 2.</summary>
internal readonly struct Const2 : IKernelConstant
{
    /// <inheritdoc/>
    public int Value => 2;
}

/// <summary>The constant 3.</summary>
internal readonly struct Const3 : IKernelConstant
{
    /// <inheritdoc/>
    public int Value => 3;
}

/// <summary>The constant 4.</summary>
internal readonly struct Const4 : IKernelConstant
{
    /// <inheritdoc/>
    public int Value => 4;
}

/// <summary>The constant 8.</summary>
internal readonly struct Const8 : IKernelConstant
{
    /// <inheritdoc/>
    public int Value => 8;
}

/// <summary>The constant 16.</summary>
internal readonly struct Const16 : IKernelConstant
{
    /// <inheritdoc/>
    public int Value => 16;
}
