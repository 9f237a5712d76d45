using System.Runtime.CompilerServices;
using ILGPU;
using ILGPU.Runtime.Cuda;

namespace GemsInjector.Kernels.Ilgpu;

/// <summary>
/// The tensor-core decode's chunks of one (batch, kv head, head block) merged inside a thread-block cluster
/// (<c>GEMS_DECODE_VARIANT=cluster</c>, sm_90): the <see cref="Size"/> chunks run as the groups of one cluster along
/// Grid.X, each leaves its chunk's statistics (m, l per head) and un-normalised sums in its own shared memory, and after a
/// cluster barrier each group merges one slice of the head block's output over every group's shared memory (distributed
/// shared memory) and writes it. No float32 partials, no ticket, and no fence behind outstanding global stores: at batch 1
/// those, not the merge's loads, were the end of the kernel (Run 35, notes "Decode merge tail"). (The cluster barrier's
/// release still compiles to a GPU-scope MEMBAR under ptxas 11.8, but no store of the group is in flight then.)
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

    /// <summary>Floats of a merging thread's scratch: every rank's (m, l), then every rank's 4 sums (<see cref="IDecodeClusterMerge.Fetch"/>).</summary>
    public const int ScratchFloats = 6 * Size;

    /// <summary>
    /// First float of the merging threads' scratch: the chunk's score rows, which no group reads remotely and this one has
    /// finished with. A rank's slice is at most <see cref="AttentionDecodeWideKernels.HeadsPerGroup"/> × 32 / 8 = 16
    /// vectors, so only threads 0-15 merge: 16 × 48 floats of the 2080 there.
    /// </summary>
    public const int ScratchFloat = AttentionDecodeTensorCoreKernels.ScoresByte / 4;

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
                    MergeVector(ref merge, shared, output, headRow, vector / HeadVectors, vector % HeadVectors, ScratchFloat + (tid * ScratchFloats));
                }
            }
        }

        merge.Release();
    }

    /// <summary>
    /// Output dims 4·<paramref name="vector"/> .. +3 of head <paramref name="head"/> of the block: every chunk's (m, l)
    /// and sums fetched into this thread's scratch at float <paramref name="scratch"/> (one remote round trip), then the
    /// ticket merge's arithmetic.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void MergeVector<TMerge>(ref TMerge merge, ArrayView<float> shared, DecodeOutput16 output, long headRow, int head, int vector, int scratch)
        where TMerge : struct, IDecodeClusterMerge
    {
        merge.Fetch(shared, head, vector, scratch);
        float m0 = shared[scratch], l0 = shared[scratch + 1], m1 = shared[scratch + 2], l1 = shared[scratch + 3];
        float m2 = shared[scratch + 4], l2 = shared[scratch + 5], m3 = shared[scratch + 6], l3 = shared[scratch + 7];
        float m4 = shared[scratch + 8], l4 = shared[scratch + 9], m5 = shared[scratch + 10], l5 = shared[scratch + 11];
        float m6 = shared[scratch + 12], l6 = shared[scratch + 13], m7 = shared[scratch + 14], l7 = shared[scratch + 15];
        var sums = shared.SubView(scratch + (2 * Size), 4 * Size).Cast<Float4>();
        var x0 = sums[0];
        var x1 = sums[1];
        var x2 = sums[2];
        var x3 = sums[3];
        var x4 = sums[4];
        var x5 = sums[5];
        var x6 = sums[6];
        var x7 = sums[7];

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

    /// <summary>
    /// Every chunk's (m, l) of head <paramref name="head"/> of the block and its sums of dims 4·<paramref name="vector"/> .. +3
    /// into this thread's <see cref="DecodeClusterMerge.ScratchFloats"/> floats of <paramref name="shared"/> from float
    /// <paramref name="scratch"/> (16-byte aligned): (m, l) by chunk, then the 4 sums by chunk (after <see cref="Gather"/>).
    /// </summary>
    void Fetch(ArrayView<float> shared, int head, int vector, int scratch);

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

    public readonly void Fetch(ArrayView<float> shared, int head, int vector, int scratch)
    {
    }

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
    /// Declares the cluster (the PTX marker, 8 × 1 × 1); the kernel's first statement.
    /// </summary>
    public static PtxDecodeClusterMerge Begin()
    {
        CudaAsm.Emit(ClusterReduction.Marker + "8, 1, 1");
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

    // One asm block: the 16 remote loads are all issued before the first store, and the values reach C# through this
    // group's shared memory (an asm output per value went through a local slot each: 192 bytes of stack under ptxas 11.8).
    public readonly void Fetch(ArrayView<float> shared, int head, int vector, int scratch) =>
        CudaAsm.Emit(AttentionDecodeTensorCoreKernels.ClusterFetch, (uint)(AttentionDecodeTensorCoreKernels.StatsByte + (8 * head)),
            (uint)(4 * ((head * AttentionDecodeTensorCoreKernels.D) + (4 * vector))), (uint)(4 * scratch));

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

    public readonly void Fetch(ArrayView<float> shared, int head, int vector, int scratch)
    {
        const int Size = DecodeClusterMerge.Size;
        for (int rank = 0; rank < Size; rank++)
        {
            long part = ((headRow + head) * Size) + rank;
            shared[scratch + (2 * rank)] = PartML[2 * part];
            shared[scratch + (2 * rank) + 1] = PartML[(2 * part) + 1];
            long first = (part * AttentionDecodeTensorCoreKernels.D) + (4 * vector);
            for (int u = 0; u < 4; u++)
            {
                shared[scratch + (2 * Size) + (4 * rank) + u] = PartO[first + u];
            }
        }
    }

    public readonly void Release()
    {
    }
}
