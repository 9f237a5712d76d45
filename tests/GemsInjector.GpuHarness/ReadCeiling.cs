using System;
using System.Globalization;
using System.Runtime.CompilerServices;
using GemsInjector.Kernels.Ilgpu;
using ILGPU;
using ILGPU.Runtime;
using ILGPU.Runtime.Cuda;

namespace GemsInjector.GpuHarness;

/// <summary>
/// How fast this device reads a buffer of a given size when reading is all a kernel does (op <c>read</c>, category
/// <c>read</c>): every 16-byte vector loaded once, its four floats added into the thread's sum, one sum per group
/// written. A decode GEMV must read at least its weight and a decode attention at least its K and V, so the fastest
/// read of those bytes over every pattern tried is a measured ceiling for them, beside compare.py's floor + peak model
/// (a model no kernel reaches: the memory's peak is not a rate any read sustains). Patterns, each a case of its own:
/// <list type="bullet">
/// <item><c>stride</c>: thread i of the grid reads vectors i, i + T, i + 2T … (T threads in all), so at any moment the
/// grid reads one contiguous window, as a copy does;</item>
/// <item><c>chunk</c>: group g reads the g-th contiguous slice of the buffer, its threads side by side, so the grid
/// reads as many separate runs as it has groups, as a product whose groups own weight rows does;</item>
/// <item><c>bulk</c>: the <c>chunk</c> slices, brought by the bulk copy engine into a ring of shared-memory stages that
/// the group's threads sum (sm_90; see <see cref="ReadBulk"/>);</item>
/// <item><c>strip</c>: the buffer as a row-major matrix (a [K, N] weight), group g reading one column strip of a few
/// hundred bytes over one range of rows, as a product whose groups own column tiles of a [K, N] weight and a split of
/// its K does (<see cref="ReadStrips{TLoads}"/>).</item>
/// </list>
/// <c>stride</c> and <c>chunk</c> with 256-thread groups (fewer where the device allows fewer), a given number of groups per
/// SM and a given number of loads each thread issues before it adds any (the bytes it keeps in flight); <c>bulk</c> with
/// 128-thread groups, a given number of groups per SM and of 16 KB stages per group. The kernels carry no launch bounds:
/// ptxas sizes their registers, so where a pattern's loads need more than the groups per SM leave (16 loads at 8 groups
/// per SM), its groups run in more than one wave; that is part of what the pattern measures.
/// </summary>
internal static class ReadCeiling
{
    /// <summary>Threads per group of the <c>stride</c> and <c>chunk</c> patterns where the device allows it.</summary>
    public const int GroupThreads = 256;

    /// <summary>
    /// What sizes the probe's launches on one device: its SMs, the threads a group may have, and whether it runs the
    /// <c>bulk</c> patterns (the simulator's copies, or a compute-capability-9.0 CUDA device's bulk copy engine).
    /// </summary>
    public readonly record struct ReadGrid(int Multiprocessors, int MaxGroupThreads, bool BulkCopy)
    {
        /// <summary>The probe's grid on <paramref name="accelerator"/>.</summary>
        public static ReadGrid Of(Accelerator accelerator) =>
            new(accelerator.NumMultiprocessors, accelerator.MaxNumThreadsPerGroup, accelerator.AcceleratorType == AcceleratorType.CPU || Sm90aPtx.Supported(accelerator));

        /// <summary>
        /// Threads per group of <paramref name="pattern"/>: <see cref="GroupThreads"/> (<see cref="BulkGroupThreads"/> for
        /// <c>bulk</c> and <c>strip</c>), or fewer where the device's groups are smaller (the simulator's).
        /// </summary>
        public int Threads(Pattern pattern) => Math.Min(pattern.Walk is Walk.Bulk or Walk.Strip ? BulkGroupThreads : GroupThreads, MaxGroupThreads);

        /// <summary>Groups of a launch of <paramref name="pattern"/>: per SM for the flat walks, strips × splits for <c>strip</c>.</summary>
        public int Groups(Pattern pattern) => pattern.Walk == Walk.Strip
            ? pattern.Strip.Strips * pattern.Strip.Splits
            : Math.Max(1, Multiprocessors) * pattern.GroupsPerSm;
    }

    private static readonly ConditionalWeakTable<Accelerator, Action<KernelConfig, ArrayView<Float4>, ArrayView<float>, int, int>[]> Loaded = new();

    private static readonly ConditionalWeakTable<Accelerator, Action<KernelConfig, ArrayView<Float4>, ArrayView<float>, int, int, int, long>> LoadedBulk = new();

    private static readonly ConditionalWeakTable<Accelerator, Action<KernelConfig, ArrayView<Float4>, ArrayView<float>, int, int, int, int>[]> LoadedStrips = new();

    /// <summary>The loads in flight per thread that a pattern may name, and the kernel instantiated for each.</summary>
    public static readonly int[] LoadsInFlight = { 2, 4, 8, 16 };

    /// <summary>How a pattern's grid walks the buffer.</summary>
    public enum Walk
    {
        /// <summary>Grid-stride: thread i reads vectors i, i + T, i + 2T … into registers.</summary>
        Stride,

        /// <summary>Group g reads the g-th contiguous slice into registers, its threads side by side.</summary>
        Chunk,

        /// <summary>Group g's slice as <c>chunk</c>, but copied by the bulk copy engine into a ring of shared-memory stages that the group's threads sum.</summary>
        Bulk,

        /// <summary>Group g reads one column strip of a row-major matrix over one range of its rows (<see cref="StripShape"/>).</summary>
        Strip,
    }

    /// <summary>
    /// The matrix a <c>strip</c> pattern reads the buffer as, in 16-byte vectors: rows of <paramref name="PitchVectors"/>,
    /// cut into column strips of <paramref name="WidthVectors"/> and into <paramref name="Splits"/> equal ranges of rows
    /// (the last one shorter); one group per strip and range, strip-major as a product's grid (⌈N / tile⌉, splits).
    /// </summary>
    public readonly record struct StripShape(int PitchVectors, int WidthVectors, int Splits)
    {
        /// <summary>Column strips per row.</summary>
        public int Strips => PitchVectors / WidthVectors;

        /// <summary>Rows of a buffer of <paramref name="vectors"/> 16-byte vectors.</summary>
        public int Rows(long vectors) => (int)(vectors / PitchVectors);

        /// <summary>Rows per split of a buffer of <paramref name="vectors"/> vectors (the last split may be shorter).</summary>
        public int RowsPerSplit(long vectors) => (Rows(vectors) + Splits - 1) / Splits;
    }

    /// <summary>
    /// The <c>bulk</c> patterns the bench measures, as (groups per SM, stages): each SM's groups hold at most 192 KB of
    /// stages, within its 228 KB of shared memory, so all of a launch's groups are resident together.
    /// </summary>
    public static readonly (int GroupsPerSm, int Stages)[] BulkPatterns = { (1, 4), (1, 6), (1, 12), (2, 3), (2, 6), (4, 2), (4, 3) };

    /// <summary>Bytes of one stage of a <c>bulk</c> ring: one bulk copy.</summary>
    public const int BulkStageBytes = 16 * 1024;

    /// <summary>16-byte vectors of one <c>bulk</c> stage.</summary>
    private const int BulkStageVectors = BulkStageBytes / 16;

    /// <summary>Threads per group of a <c>bulk</c> pattern where the device allows it: they only sum what the copy engine brought.</summary>
    public const int BulkGroupThreads = 128;

    /// <summary>Shared bytes before a <c>bulk</c> group's first stage: its stages' mbarriers (8 bytes each), padded to 128.</summary>
    private const int BulkHeaderBytes = 128;

    /// <summary>
    /// One read pattern: how the grid walks the buffer, its groups per SM, and each thread's loads in flight (<c>stride</c>,
    /// <c>chunk</c>) or the group's ring stages (<c>bulk</c>).
    /// </summary>
    public readonly record struct Pattern(Walk Walk, int GroupsPerSm, int Loads)
    {
        /// <summary>The matrix of a <c>strip</c> pattern (<see cref="Strips"/>); default for the other walks.</summary>
        public StripShape Strip { get; init; }

        /// <summary>Whether each group reads one contiguous slice (<c>chunk</c>, <c>bulk</c>) rather than the grid-stride walk.</summary>
        public bool Sliced => Walk is Walk.Chunk or Walk.Bulk;

        /// <summary>
        /// The pattern's label in a case's shape, e.g. <c>stride4x8</c> (4 groups per SM, 8 loads in flight), <c>bulk2x6</c>
        /// (2 groups per SM, 6 stages) or <c>strip128of8192x6x8</c> (strips 128 bytes wide of 8192-byte rows, 6 splits of
        /// the rows, 8 loads in flight).
        /// </summary>
        public override string ToString() => Walk == Walk.Strip
            ? string.Create(CultureInfo.InvariantCulture, $"strip{Strip.WidthVectors * 16}of{Strip.PitchVectors * 16}x{Strip.Splits}x{Loads}")
            : string.Create(CultureInfo.InvariantCulture, $"{Walk.ToString().ToLowerInvariant()}{GroupsPerSm}x{Loads}");
    }

    /// <summary>A <c>strip</c> pattern: <paramref name="loads"/> loads in flight per thread over <paramref name="strip"/>.</summary>
    public static Pattern Strips(StripShape strip, int loads) => new(Walk.Strip, 0, loads) { Strip = strip };

    /// <summary>
    /// The float64 sums each group of <paramref name="pattern"/> writes over <paramref name="x"/> (n a multiple of 4),
    /// for the checker: group g's vectors are the slice it owns (<c>chunk</c>) or those whose index mod T falls in its
    /// threads (<c>stride</c>).
    /// </summary>
    public static double[] ExpectedSums(float[] x, Pattern pattern, ReadGrid grid)
    {
        int groups = grid.Groups(pattern);
        int groupThreads = grid.Threads(pattern);
        if (x.Length % 4 != 0)
        {
            throw new ArgumentException($"The read probe reads whole 16-byte vectors; got {x.Length} floats.", nameof(x));
        }

        long vectors = x.Length / 4;
        long chunk = ChunkVectors(vectors, groups);
        long threads = (long)groups * groupThreads;
        var sums = new double[groups];
        Par.Rows(groups, g =>
        {
            double s = 0;
            if (pattern.Walk == Walk.Strip)
            {
                var strip = pattern.Strip;
                int rowsPerSplit = strip.RowsPerSplit(vectors);
                int rowStart = g / strip.Strips * rowsPerSplit;
                int rowEnd = Math.Min(strip.Rows(vectors), rowStart + rowsPerSplit);
                for (long row = rowStart; row < rowEnd; row++)
                {
                    long from = ((row * strip.PitchVectors) + ((g % strip.Strips) * strip.WidthVectors)) * 4;
                    for (long i = from; i < from + (strip.WidthVectors * 4); i++)
                    {
                        s += x[i];
                    }
                }
            }
            else if (pattern.Sliced)
            {
                for (long i = g * chunk * 4, end = Math.Min(vectors, (g + 1) * chunk) * 4; i < end; i++)
                {
                    s += x[i];
                }
            }
            else
            {
                for (long first = (long)g * groupThreads; first < vectors; first += threads)
                {
                    for (long i = first * 4, end = Math.Min(vectors, first + groupThreads) * 4; i < end; i++)
                    {
                        s += x[i];
                    }
                }
            }

            sums[g] = s;
        });
        return sums;
    }

    /// <summary>Vectors per group of the <c>chunk</c> pattern: the buffer in equal slices, the last one shorter.</summary>
    public static long ChunkVectors(long vectors, int groups) => (vectors + groups - 1) / groups;

    /// <summary>A launch of <paramref name="pattern"/> over <paramref name="x"/> writing one sum per group into <paramref name="sums"/>.</summary>
    public static Action Launch(Accelerator accelerator, ArrayView<float> x, ArrayView<float> sums, Pattern pattern)
    {
        var grid = ReadGrid.Of(accelerator);
        int groups = grid.Groups(pattern);
        if (x.Length % 4 != 0 || x.Length / 4 > int.MaxValue || sums.Length != groups)
        {
            throw new ArgumentException($"The read probe {pattern} needs whole 16-byte vectors (at most {int.MaxValue} of them) and {groups} sums; got {x.Length} floats and {sums.Length} sums.");
        }

        var x4 = x.Cast<Float4>();
        int vectors = (int)x4.Length;
        int chunk = pattern.Sliced ? (int)ChunkVectors(vectors, groups) : 0;
        if (pattern.Walk == Walk.Bulk)
        {
            if (pattern.Loads < 1 || pattern.Loads > BulkHeaderBytes / 8 || !grid.BulkCopy)
            {
                throw new ArgumentException($"The read probe {pattern} needs 1 to {BulkHeaderBytes / 8} stages (one mbarrier each in its header), and a device with the bulk copy engine (compute capability 9.0) or the simulator.");
            }

            // Through the kernel library's loader: on a 9.0 device it gives the bulk copy its sm_90 header and the opt-in
            // shared memory (Sm90aPtx), which ILGPU's own loader does not.
            var bulk = LoadedBulk.GetValue(accelerator, acc => new IlgpuKernelLoader(acc, null)
                .LoadStreamKernel<ArrayView<Float4>, ArrayView<float>, int, int, int, long>(ReadBulk));
            var bulkConfig = new KernelConfig(groups, grid.Threads(pattern), SharedMemoryConfig.RequestDynamic<Float4>((BulkHeaderBytes + (pattern.Loads * BulkStageBytes)) / 16));
            long address = TensorCoreLaunch.DeviceAddress(x4);
            return () => bulk(bulkConfig, x4, sums, vectors, chunk, pattern.Loads, address);
        }

        int slot = Array.IndexOf(LoadsInFlight, pattern.Loads);
        if (slot < 0)
        {
            throw new ArgumentException($"The read probe has kernels for {string.Join(", ", LoadsInFlight)} loads in flight, not {pattern.Loads}.");
        }

        if (pattern.Walk == Walk.Strip)
        {
            var strip = pattern.Strip;
            int threads = grid.Threads(pattern);
            if (strip.WidthVectors < 1 || strip.Splits < 1 || strip.PitchVectors % strip.WidthVectors != 0 || vectors % strip.PitchVectors != 0
                || threads % strip.WidthVectors != 0 || threads % accelerator.WarpSize != 0)
            {
                throw new ArgumentException($"The read probe {pattern} needs rows that tile the buffer ({vectors} vectors), strips that tile a row, "
                    + $"and {threads}-thread groups (whole warps) that cover whole rows of a strip.");
            }

            var strips = LoadedStrips.GetValue(accelerator, acc =>
            {
                var loader = new IlgpuKernelLoader(acc, null);
                return new[]
                {
                    loader.LoadStreamKernel<ArrayView<Float4>, ArrayView<float>, int, int, int, int>(ReadStrips<Const2>),
                    loader.LoadStreamKernel<ArrayView<Float4>, ArrayView<float>, int, int, int, int>(ReadStrips<Const4>),
                    loader.LoadStreamKernel<ArrayView<Float4>, ArrayView<float>, int, int, int, int>(ReadStrips<Const8>),
                    loader.LoadStreamKernel<ArrayView<Float4>, ArrayView<float>, int, int, int, int>(ReadStrips<Const16>),
                };
            });
            var stripKernel = strips[slot];
            var stripConfig = new KernelConfig(groups, threads);
            return () => stripKernel(stripConfig, x4, sums, strip.PitchVectors, strip.WidthVectors, strip.RowsPerSplit(vectors), strip.Rows(vectors));
        }

        // Through the kernel library's loader, as the products are: a load setting of the process (PtxL2Prefetch) reaches
        // the probe's loads as it reaches theirs.
        var kernels = Loaded.GetValue(accelerator, acc =>
        {
            var loader = new IlgpuKernelLoader(acc, null);
            return new[]
            {
                loader.LoadStreamKernel<ArrayView<Float4>, ArrayView<float>, int, int>(Read<Const2>),
                loader.LoadStreamKernel<ArrayView<Float4>, ArrayView<float>, int, int>(Read<Const4>),
                loader.LoadStreamKernel<ArrayView<Float4>, ArrayView<float>, int, int>(Read<Const8>),
                loader.LoadStreamKernel<ArrayView<Float4>, ArrayView<float>, int, int>(Read<Const16>),
            };
        });
        var kernel = kernels[slot];
        var config = new KernelConfig(groups, grid.Threads(pattern));
        return () => kernel(config, x4, sums, vectors, chunk);
    }

    /// <summary>
    /// Sums the group's slice of <paramref name="chunk"/> vectors through a ring of <paramref name="stages"/> shared-memory
    /// stages of <see cref="BulkStageBytes"/>. On CUDA one thread hands each stage's bytes to the bulk copy engine
    /// (<c>cp.async.bulk</c>, completion counted on the stage's mbarrier), so the bytes in flight do not depend on the
    /// group's threads or registers: all stages but the one being summed are in flight. On the simulator the threads copy
    /// each stage themselves (same stages, same sums).
    /// </summary>
    private static void ReadBulk(ArrayView<Float4> x4, ArrayView<float> sums, int vectors, int chunk, int stages, long xAddress)
    {
        const int headerVectors = BulkHeaderBytes / 16;
        var shared4 = SharedMemory.GetDynamic<Float4>();
        long first = (long)Grid.IdxX * chunk;
        long end = first + chunk;
        end = end < vectors ? end : vectors;
        int total = end > first ? (int)(end - first) : 0;
        int tiles = (total + BulkStageVectors - 1) / BulkStageVectors;
        bool producer = Group.IdxX == 0;
        if (CudaAsm.IsSupported && producer)
        {
            for (int s = 0; s < stages; s++)
            {
                CudaAsm.Emit("{\n\t.reg .u32 rbb;\n\tmov.u32 rbb, __dyn_shared_alloca;\n\tadd.u32 rbb, rbb, %0;\n\tmbarrier.init.shared::cta.b64 [rbb], 1;\n\t}", (uint)(8 * s));
            }

            // The barriers' initial state must be visible to the copy engine (the async proxy) before its first copy.
            CudaAsm.Emit("fence.mbarrier_init.release.cluster;");
            CudaAsm.Emit("fence.proxy.async.shared::cta;");
        }

        Group.Barrier();
        if (CudaAsm.IsSupported && producer)
        {
            for (int t = 0; t < stages && t < tiles; t++)
            {
                IssueBulk(xAddress, first, total, t, t);
            }
        }

        float sum = 0f;
        for (int t = 0; t < tiles; t++)
        {
            int stage = t % stages;
            int count = TileVectors(total, t);
            int stageBase = headerVectors + (stage * BulkStageVectors);
            if (CudaAsm.IsSupported)
            {
                // A stage's barrier completes once per use: use u (= t / stages) waits for phase parity u mod 2.
                CudaAsm.Emit(
                    "{\n\t.reg .pred rbp;\n\t.reg .u32 rbb;\n\tmov.u32 rbb, __dyn_shared_alloca;\n\tadd.u32 rbb, rbb, %0;\n\tRB_WAIT:\n\tmbarrier.try_wait.parity.shared::cta.b64 rbp, [rbb], %1;\n\t@!rbp bra RB_WAIT;\n\t}",
                    (uint)(8 * stage), (uint)((t / stages) & 1));
            }
            else
            {
                for (int j = Group.IdxX; j < count; j += Group.DimX)
                {
                    shared4[stageBase + j] = x4[first + ((long)t * BulkStageVectors) + j];
                }

                Group.Barrier();
            }

            for (int j = Group.IdxX; j < count; j += Group.DimX)
            {
                sum += Add(shared4[stageBase + j]);
            }

            // Every thread is done with the stage before it is refilled.
            Group.Barrier();
            if (CudaAsm.IsSupported && producer && t + stages < tiles)
            {
                IssueBulk(xAddress, first, total, t + stages, stage);
            }
        }

        GroupSum(sums, sum);
    }

    /// <summary>
    /// Vectors of tile <paramref name="tile"/> of a slice of <paramref name="total"/> vectors: a whole stage, or what is left
    /// (the bytes a stage's mbarrier expects and the vectors its threads sum, so one rule for both).
    /// </summary>
    private static int TileVectors(int total, int tile) => Math.Min(BulkStageVectors, total - (tile * BulkStageVectors));

    /// <summary>Hands tile <paramref name="tile"/> of the slice (at most one stage of bytes) to the copy engine, into <paramref name="stage"/>, counted on its mbarrier.</summary>
    private static void IssueBulk(long xAddress, long first, int total, int tile, int stage)
    {
        int count = TileVectors(total, tile);
        CudaAsm.Emit(
            "{\n\t.reg .u64 rbs;\n\t.reg .u64 rbst;\n\t.reg .u32 rbb;\n\t.reg .u32 rbd;\n\tcvta.to.global.u64 rbs, %0;\n\tmov.u32 rbb, __dyn_shared_alloca;\n\tadd.u32 rbd, rbb, %2;\n\tadd.u32 rbb, rbb, %1;\n\tmbarrier.arrive.expect_tx.shared::cta.b64 rbst, [rbb], %3;\n\tcp.async.bulk.shared::cluster.global.mbarrier::complete_tx::bytes [rbd], [rbs], %3, [rbb];\n\t}",
            xAddress + ((first + ((long)tile * BulkStageVectors)) * 16), (uint)(8 * stage), (uint)(BulkHeaderBytes + (stage * BulkStageBytes)), (uint)(count * 16));
    }

    /// <summary>
    /// Sums the group's vectors: with <paramref name="chunk"/> 0 the grid-stride walk, else the group's slice of that many
    /// vectors; <typeparamref name="TLoads"/> loads issued before their adds.
    /// </summary>
    private static void Read<TLoads>(ArrayView<Float4> x4, ArrayView<float> sums, int vectors, int chunk)
        where TLoads : struct, IKernelConstant
    {
        long first, end, step;
        if (chunk > 0)
        {
            first = (long)Grid.IdxX * chunk + Group.IdxX;
            end = ((long)Grid.IdxX + 1) * chunk;
            end = end < vectors ? end : vectors;
            step = Group.DimX;
        }
        else
        {
            first = (long)Grid.IdxX * Group.DimX + Group.IdxX;
            end = vectors;
            step = (long)Grid.DimX * Group.DimX;
        }

        GroupSum(sums, SumWalk<TLoads>(x4, first, step, end, first - Warp.LaneIdx + Warp.WarpSize - 1));
    }

    /// <summary>
    /// Sums the group's strip of a <see cref="StripShape"/> (<paramref name="pitch"/> and <paramref name="width"/> in
    /// vectors, <paramref name="rowsPerSplit"/> rows per group of the matrix's <paramref name="rows"/>): thread t reads
    /// vector t mod width of the strip in rows t / width, t / width + threads / width … of the group's range, so each warp
    /// load covers whole strip rows side by side; <typeparamref name="TLoads"/> loads issued before their adds.
    /// </summary>
    private static void ReadStrips<TLoads>(ArrayView<Float4> x4, ArrayView<float> sums, int pitch, int width, int rowsPerSplit, int rows)
        where TLoads : struct, IKernelConstant
    {
        int strips = pitch / width;
        int rowStart = Grid.IdxX / strips * rowsPerSplit;
        int rowEnd = rows < rowStart + rowsPerSplit ? rows : rowStart + rowsPerSplit;
        int rowsPerLoad = Group.DimX / width;
        int rowOffset = Group.IdxX / width;
        long first = ((long)(rowStart + rowOffset) * pitch) + ((Grid.IdxX % strips) * width) + (Group.IdxX % width);
        long step = (long)rowsPerLoad * pitch;
        // A vector lies before the end of the group's rows exactly when its row does; the warp's last lane has the last
        // row of the warp's loads.
        long end = (long)rowEnd * pitch;
        long warpLast = (long)(rowStart + ((Warp.WarpIdx * Warp.WarpSize) + Warp.WarpSize - 1) / width) * pitch;
        GroupSum(sums, SumWalk<TLoads>(x4, first, step, end, warpLast));
    }

    /// <summary>
    /// The thread's sum of vectors <paramref name="first"/>, + <paramref name="step"/>, + 2 · <paramref name="step"/> …
    /// before <paramref name="end"/>: <typeparamref name="TLoads"/> at a time while the warp's last lane, whose walk
    /// runs in step with the thread's from <paramref name="warpLast"/>, has that many left (the warp barrier inside a
    /// step needs the whole warp), then one at a time.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float SumWalk<TLoads>(ArrayView<Float4> x4, long first, long step, long end, long warpLast)
        where TLoads : struct, IKernelConstant
    {
        int loads = default(TLoads).Value;
        var x = x4.AsAligned(16);

        // Zero, read from shared memory after each step's warp barrier and added into every element first: ptxas can
        // move no add of a loaded value above that barrier, so all the step's loads are in flight together (Run 206's
        // SASS of the second form, without it: adds hoisted between the loads, three or four loads in flight).
        var pinCell = SharedMemory.Allocate<float>(1);
        if (Group.IdxX == 0)
        {
            pinCell[0] = 0f;
        }

        Group.Barrier();

        // A step runs only where every lane of the warp has all its loads in range (Run 205's first build hung where a
        // slice's end fell inside a warp); the rest goes one load at a time.
        float sum = 0f;
        long i = first;
        for (; warpLast + ((loads - 1) * step) < end; i += loads * step, warpLast += loads * step)
        {
            Float4 v0 = x[i];
            Float4 v1 = x[i + step];
            Float4 v2 = loads > 2 ? x[i + (2 * step)] : default;
            Float4 v3 = loads > 2 ? x[i + (3 * step)] : default;
            Float4 v4 = loads > 4 ? x[i + (4 * step)] : default;
            Float4 v5 = loads > 4 ? x[i + (5 * step)] : default;
            Float4 v6 = loads > 4 ? x[i + (6 * step)] : default;
            Float4 v7 = loads > 4 ? x[i + (7 * step)] : default;
            Float4 v8 = loads > 8 ? x[i + (8 * step)] : default;
            Float4 v9 = loads > 8 ? x[i + (9 * step)] : default;
            Float4 v10 = loads > 8 ? x[i + (10 * step)] : default;
            Float4 v11 = loads > 8 ? x[i + (11 * step)] : default;
            Float4 v12 = loads > 8 ? x[i + (12 * step)] : default;
            Float4 v13 = loads > 8 ? x[i + (13 * step)] : default;
            Float4 v14 = loads > 8 ? x[i + (14 * step)] : default;
            Float4 v15 = loads > 8 ? x[i + (15 * step)] : default;

            // ILGPU places each load next to its first add, and ptxas then keeps about two of them in flight (Run 204's
            // SASS of the first form: 32 registers, the eight loads issued in pairs). An empty inline-PTX use of every
            // vector before a warp barrier (which orders memory) issues them all first, as the products do theirs.
            if (CudaAsm.IsSupported)
            {
                CudaAsm.Emit("// v %0", v0.X);
                CudaAsm.Emit("// v %0", v1.X);
                if (loads > 2)
                {
                    CudaAsm.Emit("// v %0", v2.X);
                    CudaAsm.Emit("// v %0", v3.X);
                }

                if (loads > 4)
                {
                    CudaAsm.Emit("// v %0", v4.X);
                    CudaAsm.Emit("// v %0", v5.X);
                    CudaAsm.Emit("// v %0", v6.X);
                    CudaAsm.Emit("// v %0", v7.X);
                }

                if (loads > 8)
                {
                    CudaAsm.Emit("// v %0", v8.X);
                    CudaAsm.Emit("// v %0", v9.X);
                    CudaAsm.Emit("// v %0", v10.X);
                    CudaAsm.Emit("// v %0", v11.X);
                    CudaAsm.Emit("// v %0", v12.X);
                    CudaAsm.Emit("// v %0", v13.X);
                    CudaAsm.Emit("// v %0", v14.X);
                    CudaAsm.Emit("// v %0", v15.X);
                }

                Warp.Barrier();
            }

            float pin = pinCell[0];
            float step0 = Add(v0, pin) + Add(v1, pin);
            float step2 = loads > 2 ? Add(v2, pin) + Add(v3, pin) : 0f;
            float step4 = loads > 4 ? (Add(v4, pin) + Add(v5, pin)) + (Add(v6, pin) + Add(v7, pin)) : 0f;
            float step8 = loads > 8
                ? ((Add(v8, pin) + Add(v9, pin)) + (Add(v10, pin) + Add(v11, pin))) + ((Add(v12, pin) + Add(v13, pin)) + (Add(v14, pin) + Add(v15, pin)))
                : 0f;
            sum += (step0 + step2) + (step4 + step8);
        }

        for (; i < end; i += step)
        {
            sum += Add(x[i]);
        }

        return sum;
    }

    /// <summary>Writes the group's sum of every thread's <paramref name="sum"/> to its slot of <paramref name="sums"/>.</summary>
    private static void GroupSum(ArrayView<float> sums, float sum)
    {
        for (int offset = Warp.WarpSize / 2; offset > 0; offset /= 2)
        {
            sum += Warp.ShuffleDown(sum, offset);
        }

        var warpSums = SharedMemory.Allocate<float>(GroupThreads);
        if (Warp.LaneIdx == 0)
        {
            warpSums[Warp.WarpIdx] = sum;
        }

        Group.Barrier();
        if (Group.IdxX == 0)
        {
            float total = 0f;
            for (int w = 0; w < Group.DimX / Warp.WarpSize; w++)
            {
                total += warpSums[w];
            }

            sums[Grid.IdxX] = total;
        }
    }

    private static float Add(Float4 v) => (v.X + v.Y) + (v.Z + v.W);

    /// <summary>The vector's sum as a chain from <paramref name="pin"/>, so that no component is added before it is known.</summary>
    private static float Add(Float4 v, float pin) => (((pin + v.X) + v.Y) + v.Z) + v.W;
}
