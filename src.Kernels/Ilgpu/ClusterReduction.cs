using System;
using System.Runtime.CompilerServices;
using ILGPU;
using ILGPU.Runtime.Cuda;

namespace GemsInjector.Kernels.Ilgpu;

/// <summary>
/// Split-K summed inside a thread-block cluster (sm_90, <c>GEMS_SPLITK_REDUCE</c>): the splits of one output tile
/// run as the groups of one cluster (Grid.Y = the cluster's size), each leaves its sums of the tile in its own shared
/// memory, and after a cluster barrier each group sums one slice of the tile over every group's shared memory
/// (distributed shared memory) and writes C. No float32 partials go through L2 and no second kernel is launched: the
/// launched reduce was 3–7 µs behind every split product (Run 53, H200), 11–22% of the 16-bit GEMVs.
/// <para>
/// A slice is summed in split order from 0 with <see cref="HalfGemvKernels.Epilogue"/>, the launched reduce's
/// arithmetic (<see cref="SplitKReduction.Sum"/>), so C has the same bits whichever form ran.
/// </para>
/// <para>
/// Used by default (<see cref="SplitKReduce.Cluster"/>) by the small-M wgmma kernel's 64-column tiles (since H200 Run 87)
/// and by the wide [K, N] skinny body (since Run 96); the same form for the skinny [N, K] kernel ran slower (Run 65) and
/// was taken out again.
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
        where TCluster : struct, IClusterReduce =>
        Finish16With<TCluster, ReadEachSplit<TCluster>>(ref cluster, bias, c, g, row0, tileRows, col0, tileCols, bf16);

    /// <summary>
    /// The slices, loop and epilogue of <see cref="Finish16{TCluster}"/> and <see cref="Finish16Summed{TCluster}"/>, with
    /// <typeparamref name="TSummer"/> choosing how one vector's splits are summed (a struct, so each kernel's PTX holds only its own).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Finish16With<TCluster, TSummer>(ref TCluster cluster, ArrayView<ushort> bias, ArrayView<ushort> c, HalfGemvShape g, int row0, int tileRows,
        int col0, int tileCols, int bf16)
        where TCluster : struct, IClusterReduce
        where TSummer : struct, ISplitSummer<TCluster>
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
                        var sum = default(TSummer).Sum(ref cluster, v, row, col);
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
    internal static Float4 SumSplits<TCluster>(ref TCluster cluster, int vector, int row, int col)
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

    /// <summary>
    /// Σ over splits 0 .. 1 of the tile vector whose own shared address is in <c>gcp0</c>: 2 <c>mapa</c>, 2 remote
    /// v4 loads, then the adds from +0 in split order (<c>add.rn</c>: the launched reduce's rounding, never contracted).
    /// </summary>
    public const string SumSplits2 = "{\n\t.reg .u32 gsa<2>;\n\t.reg .f32 gsv<8>;\n\tmapa.shared::cluster.u32 gsa0, gcp0, 0;\n\tmapa.shared::cluster.u32 gsa1, gcp0, 1;\n\tld.shared::cluster.v4.f32 {gsv0, gsv1, gsv2, gsv3}, [gsa0];\n\tld.shared::cluster.v4.f32 {gsv4, gsv5, gsv6, gsv7}, [gsa1];\n\tadd.rn.f32 %0, 0f00000000, gsv0;\n\tadd.rn.f32 %1, 0f00000000, gsv1;\n\tadd.rn.f32 %2, 0f00000000, gsv2;\n\tadd.rn.f32 %3, 0f00000000, gsv3;\n\tadd.rn.f32 %0, %0, gsv4;\n\tadd.rn.f32 %1, %1, gsv5;\n\tadd.rn.f32 %2, %2, gsv6;\n\tadd.rn.f32 %3, %3, gsv7;\n\t}";

    /// <summary>
    /// Σ over splits 0 .. 3 of the tile vector whose own shared address is in <c>gcp0</c>: 4 <c>mapa</c>, 4 remote
    /// v4 loads, then the adds from +0 in split order (<c>add.rn</c>: the launched reduce's rounding, never contracted).
    /// </summary>
    public const string SumSplits4 = "{\n\t.reg .u32 gsa<4>;\n\t.reg .f32 gsv<16>;\n\tmapa.shared::cluster.u32 gsa0, gcp0, 0;\n\tmapa.shared::cluster.u32 gsa1, gcp0, 1;\n\tmapa.shared::cluster.u32 gsa2, gcp0, 2;\n\tmapa.shared::cluster.u32 gsa3, gcp0, 3;\n\tld.shared::cluster.v4.f32 {gsv0, gsv1, gsv2, gsv3}, [gsa0];\n\tld.shared::cluster.v4.f32 {gsv4, gsv5, gsv6, gsv7}, [gsa1];\n\tld.shared::cluster.v4.f32 {gsv8, gsv9, gsv10, gsv11}, [gsa2];\n\tld.shared::cluster.v4.f32 {gsv12, gsv13, gsv14, gsv15}, [gsa3];\n\tadd.rn.f32 %0, 0f00000000, gsv0;\n\tadd.rn.f32 %1, 0f00000000, gsv1;\n\tadd.rn.f32 %2, 0f00000000, gsv2;\n\tadd.rn.f32 %3, 0f00000000, gsv3;\n\tadd.rn.f32 %0, %0, gsv4;\n\tadd.rn.f32 %1, %1, gsv5;\n\tadd.rn.f32 %2, %2, gsv6;\n\tadd.rn.f32 %3, %3, gsv7;\n\tadd.rn.f32 %0, %0, gsv8;\n\tadd.rn.f32 %1, %1, gsv9;\n\tadd.rn.f32 %2, %2, gsv10;\n\tadd.rn.f32 %3, %3, gsv11;\n\tadd.rn.f32 %0, %0, gsv12;\n\tadd.rn.f32 %1, %1, gsv13;\n\tadd.rn.f32 %2, %2, gsv14;\n\tadd.rn.f32 %3, %3, gsv15;\n\t}";

    /// <summary>
    /// Σ over splits 0 .. 7 of the tile vector whose own shared address is in <c>gcp0</c>: 8 <c>mapa</c>, 8 remote
    /// v4 loads, then the adds from +0 in split order (<c>add.rn</c>: the launched reduce's rounding, never contracted).
    /// </summary>
    public const string SumSplits8 = "{\n\t.reg .u32 gsa<8>;\n\t.reg .f32 gsv<32>;\n\tmapa.shared::cluster.u32 gsa0, gcp0, 0;\n\tmapa.shared::cluster.u32 gsa1, gcp0, 1;\n\tmapa.shared::cluster.u32 gsa2, gcp0, 2;\n\tmapa.shared::cluster.u32 gsa3, gcp0, 3;\n\tmapa.shared::cluster.u32 gsa4, gcp0, 4;\n\tmapa.shared::cluster.u32 gsa5, gcp0, 5;\n\tmapa.shared::cluster.u32 gsa6, gcp0, 6;\n\tmapa.shared::cluster.u32 gsa7, gcp0, 7;\n\tld.shared::cluster.v4.f32 {gsv0, gsv1, gsv2, gsv3}, [gsa0];\n\tld.shared::cluster.v4.f32 {gsv4, gsv5, gsv6, gsv7}, [gsa1];\n\tld.shared::cluster.v4.f32 {gsv8, gsv9, gsv10, gsv11}, [gsa2];\n\tld.shared::cluster.v4.f32 {gsv12, gsv13, gsv14, gsv15}, [gsa3];\n\tld.shared::cluster.v4.f32 {gsv16, gsv17, gsv18, gsv19}, [gsa4];\n\tld.shared::cluster.v4.f32 {gsv20, gsv21, gsv22, gsv23}, [gsa5];\n\tld.shared::cluster.v4.f32 {gsv24, gsv25, gsv26, gsv27}, [gsa6];\n\tld.shared::cluster.v4.f32 {gsv28, gsv29, gsv30, gsv31}, [gsa7];\n\tadd.rn.f32 %0, 0f00000000, gsv0;\n\tadd.rn.f32 %1, 0f00000000, gsv1;\n\tadd.rn.f32 %2, 0f00000000, gsv2;\n\tadd.rn.f32 %3, 0f00000000, gsv3;\n\tadd.rn.f32 %0, %0, gsv4;\n\tadd.rn.f32 %1, %1, gsv5;\n\tadd.rn.f32 %2, %2, gsv6;\n\tadd.rn.f32 %3, %3, gsv7;\n\tadd.rn.f32 %0, %0, gsv8;\n\tadd.rn.f32 %1, %1, gsv9;\n\tadd.rn.f32 %2, %2, gsv10;\n\tadd.rn.f32 %3, %3, gsv11;\n\tadd.rn.f32 %0, %0, gsv12;\n\tadd.rn.f32 %1, %1, gsv13;\n\tadd.rn.f32 %2, %2, gsv14;\n\tadd.rn.f32 %3, %3, gsv15;\n\tadd.rn.f32 %0, %0, gsv16;\n\tadd.rn.f32 %1, %1, gsv17;\n\tadd.rn.f32 %2, %2, gsv18;\n\tadd.rn.f32 %3, %3, gsv19;\n\tadd.rn.f32 %0, %0, gsv20;\n\tadd.rn.f32 %1, %1, gsv21;\n\tadd.rn.f32 %2, %2, gsv22;\n\tadd.rn.f32 %3, %3, gsv23;\n\tadd.rn.f32 %0, %0, gsv24;\n\tadd.rn.f32 %1, %1, gsv25;\n\tadd.rn.f32 %2, %2, gsv26;\n\tadd.rn.f32 %3, %3, gsv27;\n\tadd.rn.f32 %0, %0, gsv28;\n\tadd.rn.f32 %1, %1, gsv29;\n\tadd.rn.f32 %2, %2, gsv30;\n\tadd.rn.f32 %3, %3, gsv31;\n\t}";

    /// <summary>
    /// <see cref="Finish16{TCluster}"/> with each vector's splits summed by the cluster form itself
    /// (<see cref="IClusterSum.SumSplits"/>): the same slices, order of adds and epilogue, so the same bits.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Finish16Summed<TCluster>(ref TCluster cluster, ArrayView<ushort> bias, ArrayView<ushort> c, HalfGemvShape g, int row0, int tileRows, int col0,
        int tileCols, int bf16)
        where TCluster : struct, IClusterSum =>
        Finish16With<TCluster, SumEachVector<TCluster>>(ref cluster, bias, c, g, row0, tileRows, col0, tileCols, bf16);

    /// <summary>Σ of splits 0 .. size − 1 of one vector read one at a time, added from 0 in split order (the emulated form of <see cref="IClusterSum.SumSplits"/>).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Float4 SumInOrder<TCluster>(ref TCluster cluster, int vector, int row, int col)
        where TCluster : struct, IClusterReduce
    {
        Float4 sum = default;
        for (int split = 0; split < cluster.Size; split++)
        {
            sum = Plus(sum, cluster.Read(split, vector, row, col));
        }

        return sum;
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

/// <summary>
/// The cluster reduce through inline PTX for a tile that does not start at the dynamic shared base and whose rows carry one
/// 16-byte pad (the small-M wgmma kernel, <see cref="WgmmaSkinnyGemmKernels.Gemm16WgmmaSkinnyN64Cluster{TOperands, TClusterSize}"/>):
/// vector v of a tile with 2^<c>rowShift</c> vectors per row lies at byte 16 · (v + v / 2^<c>rowShift</c>) of the tile,
/// so the four lanes of a fragment row group that publish one row's vectors side by side, and the eight row groups of a
/// warp, hit different banks (a row of 256 bytes without the pad put all eight rows on the same banks). Barriers,
/// <c>mapa</c> and <c>ld.shared::cluster.v4.f32</c> as <see cref="PtxClusterReduce{TSize}"/> (clusters 1 × size × 1 over
/// Grid.Y = splits, so rank = Grid.IdxY = split); that struct is left as it is, so its users' PTX does not change.
/// </summary>
internal struct PtxClusterReducePadded<TSize> : IClusterSum
    where TSize : struct, IKernelConstant
{
    private uint tileAddress;
    private int rowShift;

    public readonly bool Enabled => true;

    public readonly int Size => default(TSize).Value;

    public readonly int FirstRank => Grid.IdxY;

    public readonly int EndRank => Grid.IdxY + 1;

    /// <summary>
    /// Declares the cluster (the PTX marker) and the address register of the remote reads, and places the tile at byte
    /// <paramref name="offset"/> past the dynamic shared base rounded up to <paramref name="alignment"/> (a power of two: the
    /// kernel's own aligned base), with 2^<paramref name="rowShift"/> vectors per row. Call it in the kernel's entry block,
    /// so the declaration precedes every use in the PTX text.
    /// </summary>
    public static PtxClusterReducePadded<TSize> Begin(int alignment, int offset, int rowShift)
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

        CudaAsm.Emit(".reg .u32 gcp<1>;");
        Output<uint> raw = default;
        CudaAsm.EmitRef("mov.u32 %0, __dyn_shared_alloca;", ref raw);
        uint aligned = (raw.Value + (uint)(alignment - 1)) & ~(uint)(alignment - 1);
        return new PtxClusterReducePadded<TSize> { tileAddress = aligned + (uint)offset, rowShift = rowShift };
    }

    /// <summary>Byte of tile vector <paramref name="vector"/> from the tile's start, 2^<paramref name="rowShift"/> vectors per row: one pad vector after each row.</summary>
    public static int ByteOf(int vector, int rowShift) => (vector + (vector >> rowShift)) * 16;

    /// <summary>The shared-window address of tile vector <paramref name="vector"/>.</summary>
    private readonly uint At(int vector) => tileAddress + (uint)ByteOf(vector, rowShift);

    public readonly void Publish(int vector, int row, int col, Float4 sums) =>
        CudaAsm.Emit("st.shared.v4.f32 [%0], {%1, %2, %3, %4};", At(vector), sums.X, sums.Y, sums.Z, sums.W);

    public readonly bool Gather()
    {
        CudaAsm.Emit("barrier.cluster.arrive.aligned;\n\tbarrier.cluster.wait.aligned;");
        return true;
    }

    public readonly Float4 Read(int split, int vector, int row, int col)
    {
        // As PtxClusterReduce: the mapped address goes through the declared register, so the load has outputs only.
        CudaAsm.Emit("mapa.shared::cluster.u32 gcp0, %0, %1;", At(vector), (uint)split);
        Output<float> x = default, y = default, z = default, w = default;
        CudaAsm.EmitRef("ld.shared::cluster.v4.f32 {%0, %1, %2, %3}, [gcp0];", ref x, ref y, ref z, ref w);
        return new Float4 { X = x.Value, Y = y.Value, Z = z.Value, W = w.Value };
    }

    public readonly Float4 SumSplits(int vector, int row, int col)
    {
        // One asm statement for every split's mapa, remote load and add: ILGPU hands each asm output back through a
        // local slot, and with an output per split (Read) ptxas 11.8 waited for each remote load before issuing the next.
        CudaAsm.Emit("mov.u32 gcp0, %0;", At(vector));
        Output<float> x = default, y = default, z = default, w = default;
        switch (default(TSize).Value)
        {
            case 2:
                CudaAsm.EmitRef(ClusterReduction.SumSplits2, ref x, ref y, ref z, ref w);
                break;
            case 4:
                CudaAsm.EmitRef(ClusterReduction.SumSplits4, ref x, ref y, ref z, ref w);
                break;
            default:
                CudaAsm.EmitRef(ClusterReduction.SumSplits8, ref x, ref y, ref z, ref w);
                break;
        }

        return new Float4 { X = x.Value, Y = y.Value, Z = z.Value, W = w.Value };
    }

    // Relaxed, as PtxClusterReduce.Release: the first barrier's release already published the tile.
    public readonly void Release() => CudaAsm.Emit("barrier.cluster.arrive.relaxed.aligned;\n\tbarrier.cluster.wait.aligned;");
}

/// <summary>A cluster reduce that sums a vector's splits itself (all remote reads in one request, then the adds in split order).</summary>
internal interface IClusterSum : IClusterReduce
{
    /// <summary>Σ over the cluster's splits of tile vector <paramref name="vector"/>, added in split order from +0 (after <see cref="IClusterReduce.Gather"/>).</summary>
    Float4 SumSplits(int vector, int row, int col);
}

/// <summary><see cref="EmulatedClusterReduce"/> as an <see cref="IClusterSum"/> (ILGPU's CPU accelerator): reads split by split, adds in split order.</summary>
internal struct EmulatedClusterSum : IClusterSum
{
    /// <summary>The emulated reduce every member defers to.</summary>
    public EmulatedClusterReduce Inner;

    public readonly bool Enabled => true;

    public readonly int Size => Inner.Size;

    public readonly int FirstRank => Inner.FirstRank;

    public readonly int EndRank => Inner.EndRank;

    public readonly void Publish(int vector, int row, int col, Float4 sums) => Inner.Publish(vector, row, col, sums);

    public readonly bool Gather() => Inner.Gather();

    public readonly Float4 Read(int split, int vector, int row, int col) => Inner.Read(split, vector, row, col);

    public readonly Float4 SumSplits(int vector, int row, int col)
    {
        var inner = Inner;
        return ClusterReduction.SumInOrder(ref inner, vector, row, col);
    }

    public readonly void Release() => Inner.Release();
}

/// <summary>No cluster, as <see cref="NoClusterReduce"/>, for bodies that take an <see cref="IClusterSum"/> (every member is inert).</summary>
internal struct NoClusterSum : IClusterSum
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

    public readonly Float4 SumSplits(int vector, int row, int col) => default;

    public readonly void Release()
    {
    }
}

/// <summary>How <see cref="ClusterReduction"/>'s finish sums one tile vector over the cluster's splits (in split order from +0, always).</summary>
internal interface ISplitSummer<TCluster>
    where TCluster : struct, IClusterReduce
{
    /// <summary>Σ over the splits of tile vector <paramref name="vector"/> (C row <paramref name="row"/>, columns <paramref name="col"/> .. +3).</summary>
    Float4 Sum(ref TCluster cluster, int vector, int row, int col);
}

/// <summary>Every split's read requested before the first add (<see cref="ClusterReduction.Finish16{TCluster}"/>).</summary>
internal readonly struct ReadEachSplit<TCluster> : ISplitSummer<TCluster>
    where TCluster : struct, IClusterReduce
{
    public Float4 Sum(ref TCluster cluster, int vector, int row, int col) => ClusterReduction.SumSplits(ref cluster, vector, row, col);
}

/// <summary>The cluster form sums the vector itself (<see cref="IClusterSum.SumSplits"/>, <see cref="ClusterReduction.Finish16Summed{TCluster}"/>).</summary>
internal readonly struct SumEachVector<TCluster> : ISplitSummer<TCluster>
    where TCluster : struct, IClusterSum
{
    public Float4 Sum(ref TCluster cluster, int vector, int row, int col) => cluster.SumSplits(vector, row, col);
}
