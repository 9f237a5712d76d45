using System;
using GemsInjector.Kernels.Cpu;
using GemsInjector.Kernels.Ilgpu;
using GemsInjector.Kernels.Tensors;
using ILGPU;
using TorchSharp;

namespace GemsInjector.Kernels.Staging;

/// <summary>mm, addmm, bmm and scaled-dot-product attention (float32, float16 and bfloat16 on the device).</summary>
public sealed unsafe partial class IlgpuTensorKernels
{
    private const int SharedMemoryBytes = 48 * 1024;

    /// <summary>
    /// <c>aten::mm</c>: [M, K] x [K, N] → [M, N]. A transposed right operand (a linear layer's <c>weight.T</c>) is read in place; other
    /// strides are staged through a contiguous copy. float32, float16 and bfloat16 on the device (16-bit: float32 accumulation).
    /// </summary>
    /// <param name="self">A 2-D CPU tensor [M, K].</param>
    /// <param name="other">A 2-D CPU tensor [K, N] of the same dtype.</param>
    /// <returns>A new contiguous [M, N] tensor.</returns>
    public torch.Tensor Mm(torch.Tensor self, torch.Tensor other)
    {
        if (!Floating(self, out var dtype) || !Same(other, dtype))
        {
            return CpuTensorKernels.Mm(self, other);
        }

        long[] a = TorchNative.Shape(self), b = TorchNative.Shape(other);
        if (a.Length != 2 || b.Length != 2 || a[1] != b[0] || !Launchable(Count(a)) || !Launchable(Count(b)) || !Launchable(a[0] * b[1]))
        {
            return CpuTensorKernels.Mm(self, other);
        }

        long m = a[0], k = a[1], n = b[1];
        if (!StagingCost.StagesProduct(Device.Kind, 1, m, k, n, 0, ElementBytes(dtype)))
        {
            return CpuTensorKernels.Mm(self, other);
        }

        if (Is16(dtype))
        {
            return Launch(new[] { m, n }, dtype, (s, _) =>
            {
                ArrayView<ushort> x = s.Upload<ushort>(self), w = UploadRight<ushort>(s, other, 1, k, n, out bool transposed), y = s.Allocate<ushort>(m * n);
                Device.Kernels.Mm(x, w, y, (int)m, (int)k, (int)n, Format(dtype), transposed);
                return y;
            });
        }

        return Launch(new[] { m, n }, torch.ScalarType.Float32, (s, _) =>
        {
            ArrayView<float> x = s.Upload<float>(self), w = UploadRight<float>(s, other, 1, k, n, out bool transposed), y = s.Allocate<float>(m * n);
            Device.Kernels.Mm(x, w, y, (int)m, (int)k, (int)n, transposed);
            return y;
        });
    }

    /// <summary><c>aten::bmm</c>: [B, M, K] x [B, K, N] → [B, M, N] (float32 and 16-bit on the device; per-batch transposed right operands read in place).</summary>
    /// <param name="self">A 3-D CPU tensor [B, M, K].</param>
    /// <param name="other">A 3-D CPU tensor [B, K, N] of the same dtype.</param>
    /// <returns>A new contiguous [B, M, N] tensor.</returns>
    public torch.Tensor Bmm(torch.Tensor self, torch.Tensor other)
    {
        if (!Floating(self, out var dtype) || !Same(other, dtype))
        {
            return CpuTensorKernels.Bmm(self, other);
        }

        long[] a = TorchNative.Shape(self), b = TorchNative.Shape(other);
        if (a.Length != 3 || b.Length != 3 || a[0] != b[0] || a[2] != b[1] || !Launchable(Count(a)) || !Launchable(Count(b))
            || !Launchable(a[0] * a[1] * b[2]))
        {
            return CpuTensorKernels.Bmm(self, other);
        }

        long batch = a[0], m = a[1], k = a[2], n = b[2];
        if (!StagingCost.StagesProduct(Device.Kind, batch, m, k, n, 0, ElementBytes(dtype)))
        {
            return CpuTensorKernels.Bmm(self, other);
        }

        if (Is16(dtype))
        {
            return Launch(new[] { batch, m, n }, dtype, (s, _) =>
            {
                ArrayView<ushort> x = s.Upload<ushort>(self), w = UploadRight<ushort>(s, other, batch, k, n, out bool transposed), y = s.Allocate<ushort>(batch * m * n);
                Device.Kernels.Bmm(x, w, y, (int)batch, (int)m, (int)k, (int)n, Format(dtype), transposed);
                return y;
            });
        }

        return Launch(new[] { batch, m, n }, torch.ScalarType.Float32, (s, _) =>
        {
            ArrayView<float> x = s.Upload<float>(self), w = UploadRight<float>(s, other, batch, k, n, out bool transposed), y = s.Allocate<float>(batch * m * n);
            Device.Kernels.Bmm(x, w, y, (int)batch, (int)m, (int)k, (int)n, transposed);
            return y;
        });
    }

    /// <summary>
    /// <c>aten::addmm</c>: beta * self + alpha * (mat1 @ mat2), self broadcasting to [M, N] (a [N] / [1, N] bias is read as a row
    /// vector, other shapes are expanded on the host); with beta = 0 self is not read. float32 and 16-bit on the device.
    /// </summary>
    /// <param name="self">A CPU tensor broadcasting to [M, N].</param>
    /// <param name="mat1">A 2-D CPU tensor [M, K].</param>
    /// <param name="mat2">A 2-D CPU tensor [K, N].</param>
    /// <param name="beta">The factor on <paramref name="self"/>.</param>
    /// <param name="alpha">The factor on the product.</param>
    /// <returns>A new contiguous [M, N] tensor.</returns>
    public torch.Tensor Addmm(torch.Tensor self, torch.Tensor mat1, torch.Tensor mat2, double beta, double alpha)
    {
        if (!Floating(mat1, out var dtype) || !Same(self, dtype) || !Same(mat2, dtype))
        {
            return CpuTensorKernels.Addmm(self, mat1, mat2, beta, alpha);
        }

        long[] a = TorchNative.Shape(mat1), b = TorchNative.Shape(mat2), c = TorchNative.Shape(self);
        if (a.Length != 2 || b.Length != 2 || a[1] != b[0] || !Launchable(Count(a)) || !Launchable(Count(b)) || !Launchable(a[0] * b[1]))
        {
            return CpuTensorKernels.Addmm(self, mat1, mat2, beta, alpha);
        }

        long m = a[0], k = a[1], n = b[1];
        long[] target = { m, n };
        long[]? broadcast = c.Length <= 2 ? KernelArguments.BroadcastShape(c, target) : null;
        if (broadcast is null || !KernelArguments.SameShape(broadcast, target))
        {
            return CpuTensorKernels.Addmm(self, mat1, mat2, beta, alpha);
        }

        bool rowVector = (c.Length == 1 && c[0] == n) || (c.Length == 2 && c[0] == 1 && c[1] == n);
        if (!StagingCost.StagesProduct(Device.Kind, 1, m, k, n, beta == 0 ? 0 : rowVector ? n : m * n, ElementBytes(dtype)))
        {
            return CpuTensorKernels.Addmm(self, mat1, mat2, beta, alpha);
        }

        torch.Tensor? expanded = beta == 0 || rowVector ? null : Expanded(self, target);
        try
        {
            if (Is16(dtype))
            {
                return Launch(target, dtype, (s, _) =>
                {
                    ArrayView<ushort> bias = beta == 0 ? s.Allocate<ushort>(n) : s.Upload<ushort>(expanded ?? self);
                    ArrayView<ushort> x = s.Upload<ushort>(mat1), w = UploadRight<ushort>(s, mat2, 1, k, n, out bool transposed), y = s.Allocate<ushort>(m * n);
                    Device.Kernels.Addmm(bias, x, w, y, (int)m, (int)k, (int)n, Format(dtype), (float)beta, (float)alpha, transposed);
                    return y;
                });
            }

            return Launch(target, torch.ScalarType.Float32, (s, _) =>
            {
                // beta = 0: the kernel does not read the bias (NaN in self does not propagate, as aten); it still wants a [N] view.
                ArrayView<float> bias = beta == 0 ? s.Allocate<float>(n) : s.Upload<float>(expanded ?? self);
                ArrayView<float> x = s.Upload<float>(mat1), w = UploadRight<float>(s, mat2, 1, k, n, out bool transposed), y = s.Allocate<float>(m * n);
                Device.Kernels.Addmm(bias, x, w, y, (int)m, (int)k, (int)n, (float)beta, (float)alpha, transposed);
                return y;
            });
        }
        finally
        {
            expanded?.Dispose();
        }
    }

    /// <summary>
    /// <c>aten::scaled_dot_product_attention</c> (no dropout), flash-style on the device for float32 with value head size = query head
    /// size: grouped-query, causal (top left), additive float32 or boolean masks (a boolean mask becomes 0 / -∞ on the host; masks that
    /// broadcast other than over batch and heads are expanded on the host). float16 / bfloat16 q, k, v run the 16-bit kernel (a mask of
    /// the query's dtype is widened to float32 on the host). Dv ≠ D goes to the CPU kernel.
    /// </summary>
    /// <param name="query">CPU tensor [B, Hq, Lq, D].</param>
    /// <param name="key">CPU tensor [B, Hkv, Lk, D] of the same dtype.</param>
    /// <param name="value">CPU tensor [B, Hkv, Lk, Dv] of the same dtype.</param>
    /// <param name="attentionMask">Optional bool or query-dtype mask broadcasting to [B, Hq, Lq, Lk].</param>
    /// <param name="isCausal">Mask keys after the query position (top-left aligned).</param>
    /// <param name="scale">The score scale; null for 1/√D.</param>
    /// <returns>A new contiguous [B, Hq, Lq, Dv] tensor.</returns>
    public torch.Tensor ScaledDotProductAttention(torch.Tensor query, torch.Tensor key, torch.Tensor value, torch.Tensor? attentionMask, bool isCausal, double? scale)
    {
        if (!AttentionFits(query, key, value, attentionMask, out long[] q, out long[] kv, out var dtype))
        {
            return CpuTensorKernels.ScaledDotProductAttention(query, key, value, attentionMask, isCausal, scale);
        }

        long batch = q[0], heads = q[1], lq = q[2], d = q[3], kvHeads = kv[1], lk = kv[2];
        long maskBytes = attentionMask is null ? 0 : batch * heads * lq * lk * sizeof(float);
        if (!StagingCost.StagesAttention(Device.Kind, batch, heads, kvHeads, lq, lk, d, isCausal, maskBytes, ElementBytes(dtype)))
        {
            return CpuTensorKernels.ScaledDotProductAttention(query, key, value, attentionMask, isCausal, scale);
        }

        torch.Tensor? mask = attentionMask is null ? null : StagedMask(attentionMask, batch, heads, lq, lk);
        try
        {
            if (Is16(dtype))
            {
                return Launch(new[] { batch, heads, lq, d }, dtype, (s, _) =>
                {
                    ArrayView<ushort> qv = s.Upload<ushort>(query), kv2 = s.Upload<ushort>(key), vv = s.Upload<ushort>(value), y = s.Allocate<ushort>(qv.Length);
                    ArrayView<float> mv = mask is null ? default : s.Upload<float>(mask);
                    Device.Kernels.ScaledDotProductAttention(qv, kv2, vv, y, (int)batch, (int)heads, (int)kvHeads, (int)lq, (int)lk, (int)d, Format(dtype), isCausal, mv,
                        (float)(scale ?? 1.0 / Math.Sqrt(d)));
                    return y;
                });
            }

            return Launch(new[] { batch, heads, lq, d }, torch.ScalarType.Float32, (s, _) =>
            {
                ArrayView<float> qv = s.Upload<float>(query), kv2 = s.Upload<float>(key), vv = s.Upload<float>(value);
                ArrayView<float> mv = mask is null ? default : s.Upload<float>(mask), y = s.Allocate<float>(qv.Length);
                Device.Kernels.ScaledDotProductAttention(qv, kv2, vv, y, (int)batch, (int)heads, (int)kvHeads, (int)lq, (int)lk, (int)d, isCausal, mv,
                    (float)(scale ?? 1.0 / Math.Sqrt(d)));
                return y;
            });
        }
        finally
        {
            mask?.Dispose();
        }
    }

    /// <summary>
    /// Stages a right GEMM operand [batch, K, N] (batch 1: 2-D): row-major as it is, per-matrix transposed ([N, K] memory, a
    /// <c>.T</c> view) in place with <paramref name="transposed"/> set, any other strides through a contiguous copy.
    /// </summary>
    private static ArrayView<T> UploadRight<T>(Staging s, torch.Tensor tensor, long batch, long k, long n, out bool transposed)
        where T : unmanaged
    {
        int rank = batch == 1 && TorchNative.Shape(tensor).Length == 2 ? 2 : 3;
        long[] strides = KernelArguments.Strides(tensor, rank);
        long rowStride = strides[rank - 2], colStride = strides[rank - 1];
        bool batchDense = rank == 2 || batch == 1 || strides[0] == k * n;
        transposed = false;
        if (batchDense && (colStride == 1 || n == 1) && (rowStride == n || k == 1))
        {
            return s.UploadRaw<T>(tensor, batch * k * n);
        }

        if (batchDense && (rowStride == 1 || k == 1) && (colStride == k || n == 1))
        {
            transposed = true;
            return s.UploadRaw<T>(tensor, batch * k * n);
        }

        return s.Upload<T>(tensor);
    }

    private static torch.Tensor Expanded(torch.Tensor tensor, long[] shape)
    {
        using torch.Tensor view = tensor.expand(shape);
        return view.contiguous();
    }

    /// <summary>The device case of attention: one floating dtype for q, k, v, shapes that fit, Dv = D, elements in every tensor, shared memory enough.</summary>
    private static bool AttentionFits(torch.Tensor query, torch.Tensor key, torch.Tensor value, torch.Tensor? mask, out long[] q, out long[] k, out torch.ScalarType dtype)
    {
        q = k = Array.Empty<long>();
        if (!Floating(query, out dtype) || !Same(key, dtype) || !Same(value, dtype))
        {
            return false;
        }

        q = TorchNative.Shape(query);
        k = TorchNative.Shape(key);
        long[] v = TorchNative.Shape(value);
        if (q.Length != 4 || k.Length != 4 || v.Length != 4 || k[0] != q[0] || k[3] != q[3] || v[0] != q[0] || v[1] != k[1] || v[2] != k[2]
            || v[3] != q[3] || k[1] == 0 || q[1] % k[1] != 0)
        {
            return false;
        }

        if (!Launchable(Count(q)) || !Launchable(Count(k)) || !Launchable(q[0] * q[1] * q[2] * k[2])
            || AttentionKernels.SharedFloats(1, 1, (int)q[3]) * sizeof(float) > SharedMemoryBytes)
        {
            return false;
        }

        if (mask is null)
        {
            return true;
        }

        if (mask.device_type != DeviceType.CPU || (mask.dtype != torch.ScalarType.Bool && mask.dtype != dtype))
        {
            return false;
        }

        long[] m = TorchNative.Shape(mask);
        long[] target = { q[0], q[1], q[2], k[2] };
        long[]? broadcast = m.Length <= 4 ? KernelArguments.BroadcastShape(m, target) : null;
        return broadcast is not null && KernelArguments.SameShape(broadcast, target);
    }

    /// <summary>
    /// The mask as the device kernel reads it: additive float32, contiguous, [Lq, Lk] (shared by every batch and head),
    /// [B, 1, Lq, Lk] (shared by the heads) or [B, H, Lq, Lk]. A boolean mask (true = attend) becomes 0 / -∞; a 16-bit mask is widened
    /// to float32 (exactly). The caller disposes it.
    /// </summary>
    private static torch.Tensor StagedMask(torch.Tensor mask, long batch, long heads, long lq, long lk)
    {
        long[] shape = TorchNative.Shape(mask);
        var padded = new long[4];
        for (int i = 0; i < 4; i++)
        {
            padded[i] = i < 4 - shape.Length ? 1 : shape[i - (4 - shape.Length)];
        }

        bool headShared = padded[1] == 1;
        bool allShared = headShared && padded[0] == 1;
        long[] staged = allShared ? new[] { 1L, 1, lq, lk } : headShared ? new[] { batch, 1, lq, lk } : new[] { batch, heads, lq, lk };
        torch.Tensor? additive = null;
        try
        {
            if (mask.dtype == torch.ScalarType.Bool)
            {
                using torch.Tensor blocked = mask.logical_not();
                using torch.Tensor zeros = torch.zeros(shape, torch.ScalarType.Float32, torch.CPU);
                // Held, not an implicit temporary: TorchSharp does not keep a Scalar argument reachable during the call.
                using Scalar minusInfinity = float.NegativeInfinity.ToScalar();
                additive = zeros.masked_fill(blocked, minusInfinity);
            }
            else if (mask.dtype != torch.ScalarType.Float32)
            {
                additive = mask.to(torch.ScalarType.Float32);
            }

            using torch.Tensor view = (additive ?? mask).reshape(padded);
            using torch.Tensor expanded = view.expand(staged);
            return expanded.contiguous();
        }
        finally
        {
            additive?.Dispose();
        }
    }
}
