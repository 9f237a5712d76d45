using System.Runtime.CompilerServices;
using ILGPU;
using ILGPU.Runtime.Cuda;

namespace GemsInjector.Kernels.Ilgpu;

/// <summary>
/// The tensor-core decode's chunks of one (batch, kv head, head block) merged inside a thread-block cluster
/// (<c>GEMS_DECODE_VARIANT=cluster</c>, sm_90): the <see cref="Size"/> chunks run as the groups of one cluster along
/// Grid.X, each leaves its chunk's statistics (m, l per head) and un-normalised sums in its own shared memory, and after a
/// cluster barrier each group merges one slice of the head block's output over every group's shared memory (distributed
/// shared memory) and writes it. No float32 partials, no device-wide fence and no ticket: at batch 1 those, not the
/// merge's loads, were the end of the kernel (Run 35, notes "Decode merge tail").
/// <para>
/// A slice is merged with the ticket merge's arithmetic (<see cref="AttentionDecodeWideKernels.CombineChunks"/> over
/// <see cref="Size"/> chunks): the same maximum, the same weights, the chunks' terms added in chunk order from 0, and Σ w·l
/// in the order of the warp sum's butterfly, so that on the simulator the output equals the ticket merge's of the same
/// plan bit for bit.
/// </para>
/// <para>
/// Clusters of 8, the portable limit (<see cref="ClusterReduction.MaxSize"/>): the repository's cluster path declares
/// sizes 2, 4 and 8 only and sets no non-portable-size attribute, so 16 could not be launched from here.
/// </para>
/// </summary>
internal static class DecodeClusterMerge
{
    /// <summary>Chunks of a (batch, kv head, head block), i.e. groups of a cluster (Grid.X).</summary>
    public const int Size = ClusterReduction.MaxSize;

    /// <summary>4-float vectors per head of the sums (head size 128).</summary>
    private const int HeadVectors = AttentionDecodeTensorCoreKernels.D / 4;

    /// <summary>
    /// The chunk (keys per group) of the cluster plan for <paramref name="keyEnd"/> visible keys: <see cref="Size"/> chunks,
    /// each a multiple of the tile and at most the body's <see cref="AttentionDecodeWideKernels.MaxChunk"/>; 0 when the keys
    /// do not fit (more than <see cref="Size"/> × <see cref="AttentionDecodeWideKernels.MaxChunk"/>, or none), and the call
    /// keeps the ticket merge. Fewer keys than <see cref="Size"/> tiles leave the last chunks empty (m = −∞, l = 0: weight 0).
    /// </summary>
    public static int ChunkFor(int keyEnd)
    {
        const int Tile = AttentionDecodeTensorCoreKernels.TileKeys;
        if (keyEnd <= 0 || keyEnd > Size * AttentionDecodeWideKernels.MaxChunk)
        {
            return 0;
        }

        int chunk = (keyEnd + Size - 1) / Size;
        return (chunk + Tile - 1) / Tile * Tile;
    }

    /// <summary>
    /// The group's tail after its chunk (every thread calls it, after the sums are in shared floats [head][dim] and the
    /// statistics in <paramref name="stats"/>, behind a group barrier): publish, gather, merge this group's slices, release.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Finish<TMerge>(ref TMerge merge, ArrayView<float> shared, ArrayView<float> stats, DecodeOutput16 output, long headRow, int live,
        int split, int tid)
        where TMerge : struct, IDecodeClusterMerge
    {
        merge.Publish(shared, stats, headRow, live, split, tid);
        if (merge.Gather())
        {
            int vectors = live * HeadVectors;
            for (int rank = merge.FirstRank; rank < merge.EndRank; rank++)
            {
                var (begin, end) = ClusterReduction.Slice(vectors, rank, Size);
                for (int vector = begin + tid; vector < end; vector += AttentionDecodeTensorCoreKernels.GroupSize)
                {
                    MergeVector(ref merge, output, headRow, vector / HeadVectors, vector % HeadVectors);
                }
            }
        }

        merge.Release();
    }

    /// <summary>
    /// Output dims 4·<paramref name="vector"/> .. +3 of head <paramref name="head"/> of the block: every chunk's (m, l)
    /// and sums requested before the first is used (one remote round trip), then the ticket merge's arithmetic.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void MergeVector<TMerge>(ref TMerge merge, DecodeOutput16 output, long headRow, int head, int vector)
        where TMerge : struct, IDecodeClusterMerge
    {
        var (m0, l0) = merge.ReadStats(0, head);
        var (m1, l1) = merge.ReadStats(1, head);
        var (m2, l2) = merge.ReadStats(2, head);
        var (m3, l3) = merge.ReadStats(3, head);
        var (m4, l4) = merge.ReadStats(4, head);
        var (m5, l5) = merge.ReadStats(5, head);
        var (m6, l6) = merge.ReadStats(6, head);
        var (m7, l7) = merge.ReadStats(7, head);
        var x0 = merge.ReadSums(0, head, vector);
        var x1 = merge.ReadSums(1, head, vector);
        var x2 = merge.ReadSums(2, head, vector);
        var x3 = merge.ReadSums(3, head, vector);
        var x4 = merge.ReadSums(4, head, vector);
        var x5 = merge.ReadSums(5, head, vector);
        var x6 = merge.ReadSums(6, head, vector);
        var x7 = merge.ReadSums(7, head, vector);

        float mMax = GpuMath.MaxNaN(GpuMath.MaxNaN(GpuMath.MaxNaN(GpuMath.MaxNaN(GpuMath.MaxNaN(GpuMath.MaxNaN(GpuMath.MaxNaN(GpuMath.MaxNaN(
            GpuMath.NegInf, m0), m1), m2), m3), m4), m5), m6), m7);
        float w0 = Weight(m0, mMax), w1 = Weight(m1, mMax), w2 = Weight(m2, mMax), w3 = Weight(m3, mMax);
        float w4 = Weight(m4, mMax), w5 = Weight(m5, mMax), w6 = Weight(m6, mMax), w7 = Weight(m7, mMax);

        // GpuMath.WarpSum's butterfly (xor 16, 8, 4, 2, 1) over lanes 0-7 holding chunk c's w·l, as the ticket merge sums
        // them (the other lanes' zeros add nothing).
        float total = ((Product(w0, l0) + Product(w4, l4)) + (Product(w2, l2) + Product(w6, l6)))
            + ((Product(w1, l1) + Product(w5, l5)) + (Product(w3, l3) + Product(w7, l7)));

        var sum = Madd(Madd(Madd(Madd(Madd(Madd(Madd(Madd(default, w0, x0), w1, x1), w2, x2), w3, x3), w4, x4), w5, x5), w6, x6), w7, x7);
        long at = ((headRow + head) * AttentionDecodeTensorCoreKernels.D) + (4 * vector);
        output.Write(at, total == 0f ? 0f : sum.X / total);
        output.Write(at + 1, total == 0f ? 0f : sum.Y / total);
        output.Write(at + 2, total == 0f ? 0f : sum.Z / total);
        output.Write(at + 3, total == 0f ? 0f : sum.W / total);
    }

    /// <summary>A chunk's weight e^(m − M), 0 for a chunk without a visible key (as the ticket merge).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float Weight(float m, float mMax) => m == GpuMath.NegInf ? 0f : GpuMath.Exp(m - mMax);

    /// <summary>w·l as the ticket merge's lane forms it (0 + w·l).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float Product(float w, float l) => 0f + (w * l);

    /// <summary>sum + w·x, the ticket merge's step.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Float4 Madd(Float4 sum, float w, Float4 x) =>
        new() { X = sum.X + (w * x.X), Y = sum.Y + (w * x.Y), Z = sum.Z + (w * x.Z), W = sum.W + (w * x.W) };
}

/// <summary>
/// How the tensor-core decode's groups of one head block share their chunks: through the cluster's distributed shared
/// memory on the GPU (<see cref="PtxDecodeClusterMerge"/>), through the partials buffer and a ticket on ILGPU's CPU
/// accelerator, which runs no clusters (<see cref="EmulatedDecodeClusterMerge"/>), or not at all
/// (<see cref="NoDecodeClusterMerge"/>: partials, fence and ticket, as the lean kernel).
/// </summary>
internal interface IDecodeClusterMerge
{
    /// <summary>Whether the chunks merge in the cluster (a constant per implementation, so the other tail compiles away).</summary>
    bool Enabled { get; }

    /// <summary>First cluster rank whose slice this group merges once <see cref="Gather"/> returned true.</summary>
    int FirstRank { get; }

    /// <summary>One past the last rank whose slice this group merges.</summary>
    int EndRank { get; }

    /// <summary>Makes this group's chunk (sums in <paramref name="shared"/>, statistics in <paramref name="stats"/>) readable by the others.</summary>
    void Publish(ArrayView<float> shared, ArrayView<float> stats, long headRow, int live, int split, int tid);

    /// <summary>Waits until every chunk of the head block is published: true in the groups that merge now.</summary>
    bool Gather();

    /// <summary>Chunk <paramref name="rank"/>'s (m, l) of head <paramref name="head"/> of the block.</summary>
    (float M, float L) ReadStats(int rank, int head);

    /// <summary>Chunk <paramref name="rank"/>'s sums of head <paramref name="head"/>, dims 4·<paramref name="vector"/> .. +3.</summary>
    Float4 ReadSums(int rank, int head, int vector);

    /// <summary>Keeps this group's shared memory alive until every group of the cluster has read it.</summary>
    void Release();
}

/// <summary>No cluster: the lean kernel's partials, fence and ticket (every member is inert).</summary>
internal struct NoDecodeClusterMerge : IDecodeClusterMerge
{
    public readonly bool Enabled => false;

    public readonly int FirstRank => 0;

    public readonly int EndRank => 0;

    public readonly void Publish(ArrayView<float> shared, ArrayView<float> stats, long headRow, int live, int split, int tid)
    {
    }

    public readonly bool Gather() => false;

    public readonly (float M, float L) ReadStats(int rank, int head) => default;

    public readonly Float4 ReadSums(int rank, int head, int vector) => default;

    public readonly void Release()
    {
    }
}

/// <summary>
/// The cluster merge through inline PTX: <c>barrier.cluster</c> (arrive has release, wait acquire semantics, so every
/// group's shared stores are visible after it) and <c>mapa</c> + <c>ld.shared::cluster</c> to read chunk c's statistics
/// and sums where the body left them in the group of cluster rank c (clusters are <see cref="DecodeClusterMerge.Size"/>
/// × 1 × 1 over a grid of exactly that many chunks in X, so rank = Grid.IdxX = chunk).
/// </summary>
internal struct PtxDecodeClusterMerge : IDecodeClusterMerge
{
    public readonly bool Enabled => true;

    public readonly int FirstRank => Grid.IdxX;

    public readonly int EndRank => Grid.IdxX + 1;

    /// <summary>
    /// Declares the cluster (the PTX marker, 8 × 1 × 1) and the address register of the remote reads; the kernel's first
    /// statement, so the declaration precedes every use in the PTX text.
    /// </summary>
    public static PtxDecodeClusterMerge Begin()
    {
        CudaAsm.Emit(ClusterReduction.Marker + "8, 1, 1");
        CudaAsm.Emit(".reg .u32 dcr<1>;");
        return default;
    }

    public readonly void Publish(ArrayView<float> shared, ArrayView<float> stats, long headRow, int live, int split, int tid)
    {
    }

    public readonly bool Gather()
    {
        CudaAsm.Emit("barrier.cluster.arrive.aligned;\n\tbarrier.cluster.wait.aligned;");
        return true;
    }

    // The shared offset goes in as an operand and the base is added in the block (an asm output of the base would pass
    // through local memory); the address stays in the declared register so that the load needs no input.
    public readonly (float M, float L) ReadStats(int rank, int head)
    {
        CudaAsm.Emit("mov.u32 dcr0, __dyn_shared_alloca;\n\tadd.u32 dcr0, dcr0, %0;\n\tmapa.shared::cluster.u32 dcr0, dcr0, %1;",
            (uint)(AttentionDecodeTensorCoreKernels.StatsByte + (8 * head)), (uint)rank);
        Output<float> m = default, l = default;
        CudaAsm.EmitRef("ld.shared::cluster.v2.f32 {%0, %1}, [dcr0];", ref m, ref l);
        return (m.Value, l.Value);
    }

    public readonly Float4 ReadSums(int rank, int head, int vector)
    {
        CudaAsm.Emit("mov.u32 dcr0, __dyn_shared_alloca;\n\tadd.u32 dcr0, dcr0, %0;\n\tmapa.shared::cluster.u32 dcr0, dcr0, %1;",
            (uint)(4 * ((head * AttentionDecodeTensorCoreKernels.D) + (4 * vector))), (uint)rank);
        Output<float> x = default, y = default, z = default, w = default;
        CudaAsm.EmitRef("ld.shared::cluster.v4.f32 {%0, %1, %2, %3}, [dcr0];", ref x, ref y, ref z, ref w);
        return new Float4 { X = x.Value, Y = y.Value, Z = z.Value, W = w.Value };
    }

    // Relaxed: no store of this group needs publishing any more, and each peer has used its remote loads (they feed its
    // output stores) before it arrives; only the first barrier's release is needed.
    public readonly void Release() => CudaAsm.Emit("barrier.cluster.arrive.relaxed.aligned;\n\tbarrier.cluster.wait.aligned;");
}

/// <summary>
/// The cluster merge on ILGPU's CPU accelerator, which has no clusters: each group publishes its chunk to the partials
/// (the lean kernel's layout, <see cref="DecodeClusterMerge.Size"/> chunks per head), takes the head block's ticket, and
/// the last group to arrive merges every rank's slice (<see cref="DecodeClusterMerge.Finish"/> is the code the GPU runs
/// per rank).
/// </summary>
internal struct EmulatedDecodeClusterMerge : IDecodeClusterMerge
{
    /// <summary>The [heads, chunks, d] float32 partial sums.</summary>
    public ArrayView<float> PartO;

    /// <summary>The [heads, chunks] (m, l) pairs.</summary>
    public ArrayView<float> PartML;

    /// <summary>One int per (batch, kv head, head block), zero between launches.</summary>
    public ArrayView<int> Tickets;

    private long headRow;

    public readonly bool Enabled => true;

    public readonly int FirstRank => 0;

    public readonly int EndRank => DecodeClusterMerge.Size;

    public void Publish(ArrayView<float> shared, ArrayView<float> stats, long headRow, int live, int split, int tid)
    {
        const int D = AttentionDecodeTensorCoreKernels.D;
        this.headRow = headRow;
        var out16 = default(DecodeOutput16);
        for (int e = tid; e < live * D; e += AttentionDecodeTensorCoreKernels.GroupSize)
        {
            int i = e / D;
            int dim = e - (i * D);
            AttentionDecodeWideKernels.WriteSum(out16, PartO, stats, headRow, i, dim, shared[e], split, DecodeClusterMerge.Size, D);
        }

        if (tid < live)
        {
            long part = ((headRow + tid) * DecodeClusterMerge.Size) + split;
            PartML[2 * part] = stats[2 * tid];
            PartML[(2 * part) + 1] = stats[(2 * tid) + 1];
        }
    }

    public readonly bool Gather() => SplitKReduction.ArriveLast(Tickets, (Grid.IdxZ * Grid.DimY) + Grid.IdxY, DecodeClusterMerge.Size);

    public readonly (float M, float L) ReadStats(int rank, int head)
    {
        long part = ((headRow + head) * DecodeClusterMerge.Size) + rank;
        return (PartML[2 * part], PartML[(2 * part) + 1]);
    }

    public readonly Float4 ReadSums(int rank, int head, int vector)
    {
        long first = ((((headRow + head) * DecodeClusterMerge.Size) + rank) * AttentionDecodeTensorCoreKernels.D) + (4 * vector);
        return new Float4 { X = PartO[first], Y = PartO[first + 1], Z = PartO[first + 2], W = PartO[first + 3] };
    }

    public readonly void Release()
    {
    }
}
