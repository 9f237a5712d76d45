using System;

namespace GemsInjector.Operators;

/// <summary>Decides, call by call, which kernel a <see cref="ForwardingKernel"/> runs.</summary>
internal interface IKernelChoice
{
    /// <summary>The kernel to run now, of the forwarding kernel's delegate type (this may wait, e.g. for a device).</summary>
    /// <returns>The kernel for this call.</returns>
    Delegate Current();

    /// <summary>
    /// Whether <paramref name="failure"/>, thrown by <paramref name="kernel"/>, moves the choice to another kernel; the
    /// call then runs again on <see cref="Current"/>. False lets the exception propagate unchanged.
    /// </summary>
    /// <param name="kernel">The kernel that threw.</param>
    /// <param name="failure">What it threw.</param>
    /// <returns>Whether to run the call again.</returns>
    bool TakeOver(Delegate kernel, Exception failure);
}

/// <summary>
/// Kernels of every kernel delegate type that forward each call to the kernel an <see cref="IKernelChoice"/> picks: the
/// one way the table wraps kernels (a device that is still starting, a device kernel that may fall back to the CPU).
/// Plain lambdas per delegate type, not compiled expression trees: they are built inside
/// <see cref="Gems.Enable(GemsOptions?)"/>, where compiling an expression costs ~5 ms a kernel.
/// </summary>
internal static class ForwardingKernel
{
    /// <summary>A kernel of <paramref name="template"/>'s delegate type whose calls go to <paramref name="choice"/>'s kernel.</summary>
    /// <param name="template">Any kernel of the delegate type to produce.</param>
    /// <param name="choice">Picks the kernel per call.</param>
    /// <returns>The forwarding kernel.</returns>
    /// <exception cref="ArgumentException">A kernel delegate type this method does not know (a new one must be added here).</exception>
    public static Delegate Create(Delegate template, IKernelChoice choice) => template switch
    {
        UnaryKernel => (UnaryKernel)(input =>
        {
            while (true)
            {
                var k = (UnaryKernel)choice.Current();
                try { return k(input); } catch (Exception e) when (choice.TakeOver(k, e)) { }
            }
        }),
        BinaryKernel => (BinaryKernel)((self, other) =>
        {
            while (true)
            {
                var k = (BinaryKernel)choice.Current();
                try { return k(self, other); } catch (Exception e) when (choice.TakeOver(k, e)) { }
            }
        }),
        ScaledBinaryKernel => (ScaledBinaryKernel)((self, other, alpha) =>
        {
            while (true)
            {
                var k = (ScaledBinaryKernel)choice.Current();
                try { return k(self, other, alpha); } catch (Exception e) when (choice.TakeOver(k, e)) { }
            }
        }),
        GeluKernel => (GeluKernel)((input, approximate) =>
        {
            while (true)
            {
                var k = (GeluKernel)choice.Current();
                try { return k(input, approximate); } catch (Exception e) when (choice.TakeOver(k, e)) { }
            }
        }),
        DimensionKernel => (DimensionKernel)((input, dim) =>
        {
            while (true)
            {
                var k = (DimensionKernel)choice.Current();
                try { return k(input, dim); } catch (Exception e) when (choice.TakeOver(k, e)) { }
            }
        }),
        WeightedNormKernel => (WeightedNormKernel)((input, weight, epsilon) =>
        {
            while (true)
            {
                var k = (WeightedNormKernel)choice.Current();
                try { return k(input, weight, epsilon); } catch (Exception e) when (choice.TakeOver(k, e)) { }
            }
        }),
        FusedAddNormKernel => (FusedAddNormKernel)((input, residual, weight, epsilon) =>
        {
            while (true)
            {
                var k = (FusedAddNormKernel)choice.Current();
                try { k(input, residual, weight, epsilon); return; } catch (Exception e) when (choice.TakeOver(k, e)) { }
            }
        }),
        LayerNormKernel => (LayerNormKernel)((input, weight, bias, epsilon) =>
        {
            while (true)
            {
                var k = (LayerNormKernel)choice.Current();
                try { return k(input, weight, bias, epsilon); } catch (Exception e) when (choice.TakeOver(k, e)) { }
            }
        }),
        RotaryKernel => (RotaryKernel)((positions, query, key, headSize, cache, isNeox) =>
        {
            while (true)
            {
                var k = (RotaryKernel)choice.Current();
                try { k(positions, query, key, headSize, cache, isNeox); return; } catch (Exception e) when (choice.TakeOver(k, e)) { }
            }
        }),
        EmbeddingKernel => (EmbeddingKernel)((weight, indices) =>
        {
            while (true)
            {
                var k = (EmbeddingKernel)choice.Current();
                try { return k(weight, indices); } catch (Exception e) when (choice.TakeOver(k, e)) { }
            }
        }),
        ReductionKernel => (ReductionKernel)((input, dim, keepdim) =>
        {
            while (true)
            {
                var k = (ReductionKernel)choice.Current();
                try { return k(input, dim, keepdim); } catch (Exception e) when (choice.TakeOver(k, e)) { }
            }
        }),
        TopKKernel => (TopKKernel)((input, count, dim, largest) =>
        {
            while (true)
            {
                var k = (TopKKernel)choice.Current();
                try { return k(input, count, dim, largest); } catch (Exception e) when (choice.TakeOver(k, e)) { }
            }
        }),
        AddmmKernel => (AddmmKernel)((self, mat1, mat2, beta, alpha) =>
        {
            while (true)
            {
                var k = (AddmmKernel)choice.Current();
                try { return k(self, mat1, mat2, beta, alpha); } catch (Exception e) when (choice.TakeOver(k, e)) { }
            }
        }),
        AttentionKernel => (AttentionKernel)((query, key, value, mask, isCausal, scale) =>
        {
            while (true)
            {
                var k = (AttentionKernel)choice.Current();
                try { return k(query, key, value, mask, isCausal, scale); } catch (Exception e) when (choice.TakeOver(k, e)) { }
            }
        }),
        _ => throw new ArgumentException($"No forwarding form for the kernel type {template.GetType().Name}.", nameof(template)),
    };
}
