using System;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using TorchSharp;

namespace GemsInjector.Kernels.Cpu;

/// <summary><c>scaled_dot_product_attention</c>: flash-style streaming with an online softmax.</summary>
public static unsafe partial class CpuTensorKernels
{
    private const string AttentionName = "aten::scaled_dot_product_attention";
    private const int SlotAttention = 2;

    /// <summary>
    /// <c>aten::scaled_dot_product_attention(query, key, value, attn_mask=None, dropout_p=0, is_causal=False, *, scale=None)</c> on
    /// [B, Hq, Lq, D] queries and [B, Hkv, Lk, D] keys / [B, Hkv, Lk, Dv] values, grouped-query when Hkv divides Hq (query head h reads
    /// key/value head h / (Hq / Hkv), as repeat_interleave). Each query row streams over the keys with an online softmax (running max and
    /// sum, rescaled accumulator), so memory is O(D) per row beyond the output. The mask, additive (query's dtype) or boolean (true =
    /// attend), broadcasts to [B, Hq, Lq, Lk]; causal keeps keys j ≤ i (top-left aligned, as PyTorch). Scale defaults to 1/√D.
    /// A row whose keys are all masked gives zeros: that is what TorchSharp 0.107 (libtorch 2.10 CPU) returns, checked by a test
    /// (older PyTorch math kernels gave NaN). float16/bfloat16 inputs and
    /// non-contiguous inputs are first copied to contiguous float32 (documented extra allocation); arithmetic is float32.
    /// </summary>
    /// <param name="query">CPU tensor [B, Hq, Lq, D] of float32, float16 or bfloat16.</param>
    /// <param name="key">CPU tensor [B, Hkv, Lk, D] of the same dtype.</param>
    /// <param name="value">CPU tensor [B, Hkv, Lk, Dv] of the same dtype.</param>
    /// <param name="attentionMask">Optional bool or query-dtype mask broadcasting to [B, Hq, Lq, Lk].</param>
    /// <param name="isCausal">Mask keys after the query position (top-left aligned).</param>
    /// <param name="scale">The score scale; null for 1/√D.</param>
    /// <returns>A new contiguous [B, Hq, Lq, Dv] tensor of the query's dtype.</returns>
    /// <exception cref="ArgumentNullException">query, key or value is null.</exception>
    /// <exception cref="ArgumentException">Wrong device or dtype, mismatched dtypes, shapes that do not fit (including Hq not a multiple of
    /// Hkv), or a mask that does not broadcast.</exception>
    public static torch.Tensor ScaledDotProductAttention(torch.Tensor query, torch.Tensor key, torch.Tensor value, torch.Tensor? attentionMask, bool isCausal, double? scale)
    {
        KernelDType kind = KernelArguments.Floating(AttentionName, query, nameof(query));
        KernelArguments.SameDType(AttentionName, query, nameof(query), key, nameof(key));
        KernelArguments.SameDType(AttentionName, query, nameof(query), value, nameof(value));
        long[] q = MatrixShape(AttentionName, query, nameof(query), 4);
        long[] k = MatrixShape(AttentionName, key, nameof(key), 4);
        long[] v = MatrixShape(AttentionName, value, nameof(value), 4);
        string shapes = $"query {KernelArguments.Format(q)}, key {KernelArguments.Format(k)}, value {KernelArguments.Format(v)}";
        if (k[0] != q[0] || k[3] != q[3] || v[0] != q[0] || v[1] != k[1] || v[2] != k[2])
        {
            throw new ArgumentException($"{AttentionName}: the shapes do not fit ({shapes}): batch, key length and head size must agree.", nameof(key));
        }

        if (q[3] > int.MaxValue || v[3] > int.MaxValue)
        {
            // The row kernels index a head with int; refuse before any contiguous float32 copy of such a tensor is made.
            throw new ArgumentException(
                $"{AttentionName}: the head size of 'query' ({q[3]}) or 'value' ({v[3]}) exceeds {int.MaxValue} ({shapes}).",
                q[3] > int.MaxValue ? nameof(query) : nameof(value));
        }

        if (k[1] == 0 || q[1] % k[1] != 0)
        {
            throw new ArgumentException(
                $"{AttentionName}: the query heads ({q[1]}) must be a multiple of the key/value heads ({k[1]}) for grouped-query attention ({shapes}).",
                nameof(key));
        }

        bool boolMask = false;
        long[] maskStrides = new long[4];
        if (attentionMask is not null)
        {
            KernelArguments.CpuTensor(AttentionName, attentionMask, nameof(attentionMask));
            boolMask = attentionMask.dtype == torch.ScalarType.Bool;
            if (!boolMask && attentionMask.dtype != query.dtype)
            {
                throw new ArgumentException(
                    $"{AttentionName}: argument 'attentionMask' has dtype {attentionMask.dtype} but argument 'query' has dtype {query.dtype}; " +
                    "the mask must be Bool or the query's dtype.",
                    nameof(attentionMask));
            }

            long[] m = KernelArguments.Shape(attentionMask);
            long[] target = { q[0], q[1], q[2], k[2] };
            long[]? broadcast = m.Length <= 4 ? KernelArguments.BroadcastShape(m, target) : null;
            if (broadcast is null || !KernelArguments.SameShape(broadcast, target))
            {
                throw new ArgumentException(
                    $"{AttentionName}: argument 'attentionMask' has shape {KernelArguments.Format(m)}, which does not broadcast to " +
                    $"{KernelArguments.Format(target)} ({shapes}).",
                    nameof(attentionMask));
            }
        }

        torch.Tensor? qc = Float32Contiguous(query, kind), kc = Float32Contiguous(key, kind), vc = Float32Contiguous(value, kind);
        torch.Tensor? mc = attentionMask is null || boolMask ? null : Float32Contiguous(attentionMask, kind);
        try
        {
            if (attentionMask is not null)
            {
                torch.Tensor maskTensor = mc ?? attentionMask;
                long[] m = KernelArguments.Shape(maskTensor);
                long[] s = KernelArguments.Strides(maskTensor, m.Length);
                for (int i = 0; i < m.Length; i++)
                {
                    maskStrides[4 - m.Length + i] = m[i] == 1 ? 0 : s[i];
                }
            }

            torch.Tensor result = torch.empty(new[] { q[0], q[1], q[2], v[3] }, KernelArguments.ScalarType(kind), torch.CPU);
            long rows = q[0] * q[1] * q[2];
            long outCount = rows * v[3];
            if (outCount == 0)
            {
                return result;
            }

            var work = new AttentionWork
            {
                Q = (float*)KernelArguments.Data(qc ?? query),
                K = (float*)KernelArguments.Data(kc ?? key),
                V = (float*)KernelArguments.Data(vc ?? value),
                Mask = attentionMask is null ? null : (byte*)KernelArguments.Data(mc ?? attentionMask),
                BoolMask = boolMask,
                MaskStrides = maskStrides,
                Heads = q[1],
                KvHeads = k[1],
                Lq = q[2],
                Lk = k[2],
                D = (int)q[3],
                Dv = (int)v[3],
                Scale = (float)(scale ?? 1.0 / Math.Sqrt(q[3])),
                Causal = isCausal,
            };
            float* output = kind == KernelDType.Float32 ? (float*)KernelArguments.Data(result) : KernelScratch.Floats(SlotReductionOutput, outCount);
            Attention(work, rows, output);
            NarrowOutput(kind, output, result, outCount);
            return result;
        }
        finally
        {
            qc?.Dispose();
            kc?.Dispose();
            vc?.Dispose();
            mc?.Dispose();
        }
    }

    /// <summary>
    /// Attention over float32 q, k, v in <paramref name="work"/>: <paramref name="rows"/> query rows (batch · heads · Lq) into
    /// <paramref name="output"/>, on the CPU threads when the work is large enough. The query heads that share a key / value
    /// head (grouped-query attention) are one task per query position (<see cref="AttentionGroup"/>), so each key and value
    /// row is read from memory once for the group instead of once per head; when that leaves threads idle (a decode step
    /// has one task per key / value head), a group's heads are split over as many tasks as fill them.
    /// </summary>
    internal static void Attention(AttentionWork work, long rows, float* output)
    {
        nint o = (nint)output;
        long groupSize = work.Heads / work.KvHeads, groups = rows / groupSize;
        int threads = CpuThreadBudget.MaxThreads;
        long parts = groups >= threads ? 1 : Math.Min(groupSize, (threads + groups - 1) / groups);
        long headsPerTask = (groupSize + parts - 1) / parts;
        long tasksPerGroup = (groupSize + headsPerTask - 1) / headsPerTask, tasks = groups * tasksPerGroup;
        void Task(long t)
        {
            long first = t % tasksPerGroup * headsPerTask;
            AttentionGroup(work, t / tasksPerGroup, (int)first, (int)Math.Min(headsPerTask, groupSize - first), (float*)o);
        }

        if (rows * work.Lk * (work.D + work.Dv) < ReductionParallelElements || tasks < 2)
        {
            for (long t = 0; t < tasks; t++)
            {
                Task(t);
            }
        }
        else
        {
            CpuThreadBudget.For(tasks, Task);
        }
    }

    /// <summary>
    /// The query rows of one (batch, key / value head, query position) for <paramref name="heads"/> of the query heads on
    /// that key / value head from its <paramref name="firstInGroup"/>-th on, one row per head:
    /// scores in blocks of 64 keys, online softmax, output = accumulator / sum; the heads take each block in turn, so a
    /// block of keys and values is used by every head of the group while it is in cache. Each head's sums run in the
    /// same order as when every query row was a task of its own (until session 26), so the results are the same bits.
    /// </summary>
    // Compiled optimised from the first call, as the GEMM's loops are: at tier 0 this loop ran ~10x slower, and a worker's
    // decode steps (or a short measurement) ran on that code until the runtime swapped it (one query over 64 keys on the
    // 2-core development host: 0.47–0.58 ms, then 0.035).
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void AttentionGroup(AttentionWork w, long group, int firstInGroup, int heads, float* output)
    {
        const int Block = 64;
        long i = group % w.Lq;
        long kvHead = group / w.Lq; // over batch and key / value heads
        long b = kvHead / w.KvHeads;
        long firstHead = ((kvHead % w.KvHeads) * (w.Heads / w.KvHeads)) + firstInGroup;
        float* keys = w.K + kvHead * w.Lk * w.D;
        float* values = w.V + kvHead * w.Lk * w.Dv;
        int stride = w.Dv + Block;
        float* scratch = KernelScratch.Floats(SlotAttention, ((long)stride * heads) + (2L * heads));
        float* runningMax = scratch + ((long)stride * heads);
        float* sum = runningMax + heads;
        for (int g = 0; g < heads; g++)
        {
            new Span<float>(scratch + ((long)g * stride), w.Dv).Clear();
            runningMax[g] = float.NegativeInfinity;
            sum[g] = 0f;
        }

        long end = w.Causal ? Math.Min(w.Lk, i + 1) : w.Lk;
        for (long start = 0; start < end; start += Block)
        {
            int count = (int)Math.Min(Block, end - start);
            for (int g = 0; g < heads; g++)
            {
                long h = firstHead + g;
                float* q = w.Q + ((((b * w.Heads) + h) * w.Lq) + i) * w.D;
                float* acc = scratch + ((long)g * stride);
                float* scores = acc + w.Dv;
                long maskRow = (b * w.MaskStrides[0]) + (h * w.MaskStrides[1]) + (i * w.MaskStrides[2]);
                float blockMax = float.NegativeInfinity;
                for (int j = 0; j < count; j++)
                {
                    float s = w.Scale * Dot(q, keys + ((start + j) * w.D), w.D);
                    if (w.Mask != null)
                    {
                        long at = maskRow + ((start + j) * w.MaskStrides[3]);
                        s = w.BoolMask ? (w.Mask[at] != 0 ? s : float.NegativeInfinity) : s + ((float*)w.Mask)[at];
                    }

                    scores[j] = s;
                    blockMax = float.IsNaN(s) || s > blockMax ? s : blockMax;
                }

                float newMax = Math.Max(runningMax[g], blockMax);
                if (float.IsNegativeInfinity(newMax))
                {
                    continue; // every key of this head so far is masked
                }

                float correction = MathF.Exp(runningMax[g] - newMax);
                sum[g] *= correction;
                Scale(acc, correction, w.Dv);
                for (int j = 0; j < count; j++)
                {
                    float p = MathF.Exp(scores[j] - newMax);
                    if (p != 0f || float.IsNaN(p))
                    {
                        sum[g] += p;
                        Axpy(acc, values + ((start + j) * w.Dv), p, w.Dv);
                    }
                }

                runningMax[g] = newMax;
            }
        }

        for (int g = 0; g < heads; g++)
        {
            long row = (((b * w.Heads) + firstHead + g) * w.Lq) + i;
            float* acc = scratch + ((long)g * stride);
            float* o = output + (row * w.Dv);
            float inverse = sum[g] == 0f ? 0f : 1f / sum[g]; // all keys masked: zeros, as libtorch 2.10's CPU kernel (TorchSharp 0.107)
            for (int d = 0; d < w.Dv; d++)
            {
                o[d] = acc[d] * inverse;
            }
        }
    }

    /// <summary>The operands and shape of one attention call (float32, contiguous [B, H, L, D]; the mask as its strides say).</summary>
    internal sealed class AttentionWork
    {
        public float* Q;
        public float* K;
        public float* V;
        public byte* Mask;
        public bool BoolMask;
        public long[] MaskStrides = Array.Empty<long>();
        public long Heads;
        public long KvHeads;
        public long Lq;
        public long Lk;
        public int D;
        public int Dv;
        public float Scale;
        public bool Causal;
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static float Dot(float* a, float* b, int n)
    {
        int d = 0;
        float s = 0;
        if (Vector512.IsHardwareAccelerated && n >= 16)
        {
            Vector512<float> acc = default;
            for (; d <= n - 16; d += 16)
            {
                acc = Vector512.FusedMultiplyAdd(Vector512.Load(a + d), Vector512.Load(b + d), acc);
            }

            s = Vector512.Sum(acc);
        }
        else if (Vector256.IsHardwareAccelerated && n >= 8)
        {
            Vector256<float> acc = default;
            for (; d <= n - 8; d += 8)
            {
                acc = Vector256.FusedMultiplyAdd(Vector256.Load(a + d), Vector256.Load(b + d), acc);
            }

            s = Vector256.Sum(acc);
        }

        for (; d < n; d++)
        {
            s = MathF.FusedMultiplyAdd(a[d], b[d], s);
        }

        return s;
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Scale(float* x, float factor, int n)
    {
        int d = 0;
        if (Vector256.IsHardwareAccelerated)
        {
            Vector256<float> f = Vector256.Create(factor);
            for (; d <= n - 8; d += 8)
            {
                (Vector256.Load(x + d) * f).Store(x + d);
            }
        }

        for (; d < n; d++)
        {
            x[d] *= factor;
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Axpy(float* y, float* x, float a, int n)
    {
        int d = 0;
        if (Vector512.IsHardwareAccelerated)
        {
            Vector512<float> s = Vector512.Create(a);
            for (; d <= n - 16; d += 16)
            {
                Vector512.FusedMultiplyAdd(Vector512.Load(x + d), s, Vector512.Load(y + d)).Store(y + d);
            }
        }
        else if (Vector256.IsHardwareAccelerated)
        {
            // Without AVX-512 this loop was scalar; per element the same fused multiply-add, so the same bits.
            Vector256<float> s = Vector256.Create(a);
            for (; d <= n - 8; d += 8)
            {
                Vector256.FusedMultiplyAdd(Vector256.Load(x + d), s, Vector256.Load(y + d)).Store(y + d);
            }
        }

        for (; d < n; d++)
        {
            y[d] = MathF.FusedMultiplyAdd(x[d], a, y[d]);
        }
    }
}
