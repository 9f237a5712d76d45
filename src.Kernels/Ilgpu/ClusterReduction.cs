using System;
using System.Runtime.CompilerServices;
using ILGPU;
using ILGPU.Runtime.Cuda;

namespace GemsInjector.Kernels.Ilgpu;

/// <summary>
/// Split-K summed inside a thread-block cluster (sm_90, <c>GEMS_SPLITK_REDUCE=cluster</c>): the splits of one output tile
/// run as the groups of one cluster (Grid.Y = the cluster's size), each leaves its sums of the tile in its own shared
/// memory, and after a cluster barrier each group sums one slice of the tile over every group's shared memory
/// (distributed shared memory) and writes C. No float32 partials go through L2 and no second kernel is launched: the
/// launched reduce was 3–7 µs behind every split product (Run 53, H200), 11–22% of the 16-bit GEMVs.
/// <para>
/// A slice is summed in split order from 0 with <see cref="HalfGemvKernels.Epilogue"/>, the launched reduce's
/// arithmetic (<see cref="SplitKReduction.Sum"/>), so C has the same bits whichever form ran.
/// </para>
/// <para>
/// Used by the wide [K, N] body only, and only when asked for (<see cref="SplitKReduce.Cluster"/> says why it is not the
/// default); the same form for the [N, K] kernel ran slower (Run 65) and was taken out again.
/// </para>
/// </summary>
internal static class ClusterReduction
{
    /// <summary>
    /// The PTX comment <c>// gems: cluster x, y, 1</c> that marks a kernel as one whose groups form clusters of x × y × 1;
    /// <see cref="Sm90aPtx"/> turns it into a <c>.reqnctapercluster x, y, 1</c> directive on the entry (and the sm_90a
    /// header). Being part of the PTX, it holds for a kernel read from the disk cache or the shipped archive as for one just
    /// compiled.
    /// </summary>
    public const string Marker = "// gems: cluster ";

    /// <summary>The <see cref="Marker"/> of clusters along Y (1 × size × 1: the split-K products' splits are Grid.Y).</summary>
    public const string MarkerPrefix = Marker + "1, ";

    /// <summary>Most groups of a cluster (the portable limit).</summary>
    public const int MaxSize = 8;

    /// <summary>Cluster sizes a kernel may declare: the portable limit is 8 groups.</summary>
    public static bool IsSize(int size) => size is 2 or 4 or 8;

    /// <summary>
    /// The cluster size for a split-K plan of <paramref name="splits"/>: the plan's count when it is a size the kernels
    /// are built for (<see cref="IsSize"/>), else 0 (the product keeps the launched reduce).
    /// </summary>
    public static int SizeFor(int splits) => IsSize(splits) ? splits : 0;

    /// <summary>
    /// Rank <paramref name="rank"/>'s slice of a tile of <paramref name="vectors"/> 4-column vectors (rows × columns / 4 inside
    /// M × N, row-major): whole vectors, consecutive for consecutive ranks, none past the tile.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static (int Begin, int End) Slice(int vectors, int rank, int size)
    {
        int share = (vectors + size - 1) / size;
        int begin = Math.Min(vectors, rank * share);
        return (begin, Math.Min(vectors, begin + share));
    }

    /// <summary>
    /// The reduce of one 16-bit output tile (every thread of every group of the cluster calls it once, after publishing):
    /// rows [<paramref name="row0"/>, +<paramref name="tileRows"/>) × columns [<paramref name="col0"/>,
    /// +<paramref name="tileCols"/>) of C, whose sums each group published as vectors of 4 columns, row-major with
    /// <paramref name="tileCols"/> / 4 vectors per row. Rows past M are not summed; N % 4 = 0 keeps a vector all in N or all out.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Finish16<TCluster>(ref TCluster cluster, ArrayView<ushort> bias, ArrayView<ushort> c, HalfGemvShape g, int row0, int tileRows, int col0,
        int tileCols, int bf16)
        where TCluster : struct, IClusterReduce
    {
        if (cluster.Gather())
        {
            int rowVectors = tileCols >> 2;
            int vectors = Math.Min(tileRows, g.M - row0) * rowVectors;
            for (int rank = cluster.FirstRank; rank < cluster.EndRank; rank++)
            {
                var (begin, end) = Slice(vectors, rank, g.Splits);
                for (int v = begin + Group.IdxX; v < end; v += Group.DimX)
                {
                    int row = row0 + (v / rowVectors);
                    int col = col0 + ((v % rowVectors) << 2);
                    if (col < g.N)
                    {
                        var sum = SumSplits(ref cluster, v, row, col);
                        long e = ((long)row * g.N) + col;
                        c[e] = HalfGemvKernels.Epilogue(bias, g, row, col, sum.X, bf16);
                        c[e + 1] = HalfGemvKernels.Epilogue(bias, g, row, col + 1, sum.Y, bf16);
                        c[e + 2] = HalfGemvKernels.Epilogue(bias, g, row, col + 2, sum.Z, bf16);
                        c[e + 3] = HalfGemvKernels.Epilogue(bias, g, row, col + 3, sum.W, bf16);
                    }
                }
            }
        }

        cluster.Release();
    }

    /// <summary>
    /// Σ over the cluster's splits of tile vector <paramref name="vector"/>, added in split order from 0. Every read is
    /// requested before the first add (a read per split in a loop had waited one remote round trip each: 8 in the tail
    /// of the 8-split products, Run 58); with the PTX form's constant size the unused reads compile away.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Float4 SumSplits<TCluster>(ref TCluster cluster, int vector, int row, int col)
        where TCluster : struct, IClusterReduce
    {
        int size = cluster.Size;
        var p0 = cluster.Read(0, vector, row, col);
        var p1 = cluster.Read(1, vector, row, col);
        var p2 = size > 2 ? cluster.Read(2, vector, row, col) : default;
        var p3 = size > 3 ? cluster.Read(3, vector, row, col) : default;
        var p4 = size > 4 ? cluster.Read(4, vector, row, col) : default;
        var p5 = size > 5 ? cluster.Read(5, vector, row, col) : default;
        var p6 = size > 6 ? cluster.Read(6, vector, row, col) : default;
        var p7 = size > 7 ? cluster.Read(7, vector, row, col) : default;
        var sum = Plus(Plus(default, p0), p1);
        sum = size > 2 ? Plus(sum, p2) : sum;
        sum = size > 3 ? Plus(sum, p3) : sum;
        sum = size > 4 ? Plus(sum, p4) : sum;
        sum = size > 5 ? Plus(sum, p5) : sum;
        sum = size > 6 ? Plus(sum, p6) : sum;
        return size > 7 ? Plus(sum, p7) : sum;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Float4 Plus(Float4 a, Float4 b) => new() { X = a.X + b.X, Y = a.Y + b.Y, Z = a.Z + b.Z, W = a.W + b.W };
}

/// <summary>
/// How a split product's groups share their sums of one output tile: in a cluster's distributed shared memory on the GPU
/// (<see cref="PtxClusterReduce{TSize}"/>), through the partials buffer and a ticket on ILGPU's CPU accelerator, which runs
/// no clusters (<see cref="EmulatedClusterReduce"/>), or not at all (<see cref="NoClusterReduce"/>: partials and the
/// launched or ticketed reduce, as before).
/// </summary>
internal interface IClusterReduce
{
    /// <summary>Whether the product reduces in the cluster (a constant per implementation, so the other path compiles away).</summary>
    bool Enabled { get; }

    /// <summary>Groups of the cluster (splits of the tile): 2 to <see cref="ClusterReduction.MaxSize"/>.</summary>
    int Size { get; }

    /// <summary>First rank whose slice this group sums once <see cref="Gather"/> returned true.</summary>
    int FirstRank { get; }

    /// <summary>One past the last rank whose slice this group sums.</summary>
    int EndRank { get; }

    /// <summary>
    /// Publishes this group's sums of tile vector <paramref name="vector"/> (C row <paramref name="row"/>, columns
    /// <paramref name="col"/> .. +3); every thread of the group publishes its vectors before <see cref="Gather"/>.
    /// </summary>
    void Publish(int vector, int row, int col, Float4 sums);

    /// <summary>Waits until every group of the tile published: true in the groups that sum slices now.</summary>
    bool Gather();

    /// <summary>Split <paramref name="split"/>'s sums of tile vector <paramref name="vector"/> (after <see cref="Gather"/>).</summary>
    Float4 Read(int split, int vector, int row, int col);

    /// <summary>Keeps this group's shared memory alive until every group of the cluster has read it.</summary>
    void Release();
}

/// <summary>No cluster: the product writes partials as before (every member is inert).</summary>
internal struct NoClusterReduce : IClusterReduce
{
    public readonly bool Enabled => false;

    public readonly int Size => 0;

    public readonly int FirstRank => 0;

    public readonly int EndRank => 0;

    public readonly void Publish(int vector, int row, int col, Float4 sums)
    {
    }

    public readonly bool Gather() => false;

    public readonly Float4 Read(int split, int vector, int row, int col) => default;

    public readonly void Release()
    {
    }
}

/// <summary>
/// The cluster reduce through inline PTX: the tile in dynamic shared memory (16 bytes per vector), <c>barrier.cluster</c>
/// (arrive has release, wait acquire semantics, so every group's shared stores are visible after it), and
/// <c>mapa</c> + <c>ld.shared::cluster</c> to read split s's vector from the group of cluster rank s (clusters are
/// 1 × <typeparamref name="TSize"/> × 1 over a grid of exactly that many splits in Y, so rank = Grid.IdxY = split).
/// </summary>
internal struct PtxClusterReduce<TSize> : IClusterReduce
    where TSize : struct, IKernelConstant
{
    private ArrayView<Float4> tile;
    private uint tileAddress;

    public readonly bool Enabled => true;

    public readonly int Size => default(TSize).Value;

    public readonly int FirstRank => Grid.IdxY;

    public readonly int EndRank => Grid.IdxY + 1;

    /// <summary>
    /// Declares the cluster (the PTX marker) and the address register of the remote reads; the first statement of the kernel,
    /// so the declaration precedes every use in the PTX text.
    /// </summary>
    public static PtxClusterReduce<TSize> Begin()
    {
        switch (default(TSize).Value)
        {
            case 2:
                CudaAsm.Emit(ClusterReduction.MarkerPrefix + "2, 1");
                break;
            case 4:
                CudaAsm.Emit(ClusterReduction.MarkerPrefix + "4, 1");
                break;
            default:
                CudaAsm.Emit(ClusterReduction.MarkerPrefix + "8, 1");
                break;
        }

        CudaAsm.Emit(".reg .u32 gcr<1>;");
        Output<uint> address = default;
        CudaAsm.EmitRef("mov.u32 %0, __dyn_shared_alloca;", ref address);
        return new PtxClusterReduce<TSize> { tile = SharedMemory.GetDynamic<Float4>(), tileAddress = address.Value };
    }

    public readonly void Publish(int vector, int row, int col, Float4 sums) => tile[vector] = sums;

    public readonly bool Gather()
    {
        CudaAsm.Emit("barrier.cluster.arrive.aligned;\n\tbarrier.cluster.wait.aligned;");
        return true;
    }

    public readonly Float4 Read(int split, int vector, int row, int col)
    {
        // By-value operands bind to registers; the address goes through the declared register so the load needs no input.
        CudaAsm.Emit("mapa.shared::cluster.u32 gcr0, %0, %1;", tileAddress + ((uint)vector * 16), (uint)split);
        Output<float> x = default, y = default, z = default, w = default;
        CudaAsm.EmitRef("ld.shared::cluster.v4.f32 {%0, %1, %2, %3}, [gcr0];", ref x, ref y, ref z, ref w);
        return new Float4 { X = x.Value, Y = y.Value, Z = z.Value, W = w.Value };
    }

    // Relaxed: no store of this group needs publishing any more, and each peer has consumed its remote loads (their sums
    // precede its arrive in program order) before it arrives; only the first barrier's release fence is needed.
    public readonly void Release() => CudaAsm.Emit("barrier.cluster.arrive.relaxed.aligned;\n\tbarrier.cluster.wait.aligned;");
}

/// <summary>
/// The cluster reduce on ILGPU's CPU accelerator, which has no clusters: each group publishes its vectors to its split's
/// float32 partials (as the launched reduce's input), takes the tile's ticket, and the last group to arrive sums every
/// rank's slice (<see cref="ClusterReduction.Finish16{TCluster}"/> is the code the GPU runs per rank).
/// </summary>
internal struct EmulatedClusterReduce : IClusterReduce
{
    /// <summary>The [splits, M, N] float32 partials.</summary>
    public ArrayView<float> Partial;

    /// <summary>One int per tile, zero between launches.</summary>
    public ArrayView<int> Tickets;

    /// <summary>This group's tile (its ticket).</summary>
    public int Ticket;

    /// <summary>Rows of C.</summary>
    public int M;

    /// <summary>Columns of C.</summary>
    public int N;

    /// <summary>Splits of K (the cluster's size).</summary>
    public int Splits;

    public readonly bool Enabled => true;

    public readonly int Size => Splits;

    public readonly int FirstRank => 0;

    public readonly int EndRank => Splits;

    public readonly void Publish(int vector, int row, int col, Float4 sums)
    {
        if (row < M && col < N)
        {
            Partial.Cast<Float4>()[PartialVector(Grid.IdxY, row, col)] = sums;
        }
    }

    public readonly bool Gather() => SplitKReduction.ArriveLast(Tickets, Ticket, Splits);

    public readonly Float4 Read(int split, int vector, int row, int col) => Partial.Cast<Float4>()[PartialVector(split, row, col)];

    public readonly void Release()
    {
    }

    /// <summary>The 4-column vector of split <paramref name="split"/>'s partials at C row <paramref name="row"/>, column <paramref name="col"/> (N % 4 = 0).</summary>
    private readonly long PartialVector(int split, int row, int col) => ((((long)split * M) + row) * N + col) >> 2;
}
