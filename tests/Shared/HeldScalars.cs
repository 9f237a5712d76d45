using System;
using System.Collections.Concurrent;
using TorchSharp;

namespace GemsInjector.TestSupport;

/// <summary>
/// Scalars for the TorchSharp calls of test references, held for the whole test run. TorchSharp (0.107) reads a Scalar
/// argument's native handle and then calls libtorch without keeping the Scalar reachable, and dispose scopes do not track
/// Scalars, so an implicit temporary (the alpha of <c>a.add(b)</c>, the 3 of <c>t.add(3)</c>, the NaN of
/// <c>torch.full(shape, NaN)</c>) can be finalized by a collection on another test's thread while libtorch still reads
/// it: CI saw libtorch fail in <c>Scalar::toDouble</c> once on 2026-11-29. References pass these instead.
/// Shared by the test projects that call TorchSharp (linked from tests/Shared).
/// </summary>
internal static class HeldScalars
{
    // Keyed by bits, not by value: every NaN equals every other as a double key, and the poison NaN's payload matters.
    private static readonly ConcurrentDictionary<long, Scalar> Held = new();

    /// <summary>The value as a Scalar that stays reachable, bit for bit (NaN payloads and −0 included).</summary>
    public static Scalar Of(double value) =>
        Held.GetOrAdd(BitConverter.DoubleToInt64Bits(value), bits => BitConverter.Int64BitsToDouble(bits).ToScalar());

    /// <summary>1, the alpha to pass to <c>add</c> / <c>add_</c> of two tensors.</summary>
    public static Scalar One => Of(1);
}
