using System;
using ILGPU;
using ILGPU.Runtime;

namespace GemsInjector.Kernels.Ilgpu;

public sealed partial class IlgpuKernels
{
    /// <summary>
    /// Fewest rows of C for which 16-bit products go to the tensor cores: just above the 16-bit GEMV's rows. Between 17
    /// and 63 rows most of each 128-row tile is empty, but the tensor cores still beat the CUDA-core kernel several times
    /// over (the grid is as large as at 64 rows, the time nearly the same); M ≤ 16 with unaligned rows keeps the CUDA-core kernel.
    /// </summary>
    internal const int TensorCoreMinRows = HalfGemvKernels.MaxRows + 1;

    private readonly Action<KernelConfig, ArrayView<ushort>, ArrayView<ushort>, ArrayView<ushort>, ArrayView<ushort>, ArrayView<float>, TensorCoreShape>?[] tensorCoreGemm16 =
        new Action<KernelConfig, ArrayView<ushort>, ArrayView<ushort>, ArrayView<ushort>, ArrayView<ushort>, ArrayView<float>, TensorCoreShape>?[4];

    /// <summary>
    /// Whether 16-bit mm, bmm and addmm may use the tensor-core kernel (mma.sync) on CUDA devices; on by default.
    /// Off, every 16-bit product takes the CUDA-core kernel (for comparisons).
    /// </summary>
    public bool TensorCoresEnabled { get; set; } = true;

    /// <summary>
    /// The tile configuration of the tensor-core kernel; by default the one named by the environment variable
    /// <c>GEMS_TC_GEMM_VARIANT</c> (read once per process), else <see cref="TensorCoreGemmVariant.WgmmaPersistentStores"/>
    /// (Hopper's warpgroup instruction on a persistent grid with the whole tiles' epilogue in PTX, where it can run;
    /// <see cref="TensorCoreGemmVariant.SquareTwoPerSm"/> elsewhere: the fastest mma.sync tile at every measured shape on
    /// an H200; docs/perf/h100-notes-tensor-core.md, Attempts 4 and 5).
    /// </summary>
    internal TensorCoreGemmVariant TensorCoreVariant { get; set; } = TensorCoreVariants.FromEnvironment();

    /// <summary>Whether a product of this shape goes to the tensor cores on this device.</summary>
    internal bool UsesTensorCores(int m, int k, int n) =>
        TensorCoresEnabled && device.Kind == IlgpuDeviceKind.Cuda && m >= TensorCoreMinRows && n >= 16 && k >= 16;

    /// <summary>Runs a checked 16-bit GEMM on the tensor cores when <see cref="UsesTensorCores"/> says so.</summary>
    /// <returns>Whether it ran.</returns>
    private bool TryTensorCoreGemm16(ArrayView<ushort> a, ArrayView<ushort> b, ArrayView<ushort> bias, ArrayView<ushort> c, int batch, int m, int k, int n,
        bool transposeB, float alpha, float beta, bool biasIsMatrix, HalfFormat format)
    {
        if (!UsesTensorCores(m, k, n))
        {
            return false;
        }

        bool bf16 = format == HalfFormat.BFloat16;
        var variant = TensorCoreVariant;
        if (variant is TensorCoreGemmVariant.Wgmma or TensorCoreGemmVariant.WgmmaThreeAhead or TensorCoreGemmVariant.WgmmaGrouped
            or TensorCoreGemmVariant.WgmmaPersistent or TensorCoreGemmVariant.WgmmaPersistentStores)
        {
            // wgmma where it can run (a 9.0 device, whole aligned chunks); every other product keeps square2.
            if (TryWgmmaGemm16(a, b, bias, c, batch, m, k, n, transposeB, alpha, beta, biasIsMatrix, bf16, variant))
            {
                return true;
            }

            variant = TensorCoreGemmVariant.SquareTwoPerSm;
        }

        var (nBlocks, warpColumns) = TensorCoreVariants.Tile(variant);
        var shape = TensorCoreLaunch.Shape(a, b, bias, m, k, n, transposeB, alpha, beta, biasIsMatrix, bf16, asyncCopyAllowed: true);
        shape.PairStores = TensorCoreLaunch.PairStores(c, n);
        var (splits, kChunk) = TensorCoreLaunch.PlanSplitK(batch, m, k, n, device.MultiprocessorCount, nBlocks, warpColumns, TensorCoreVariants.GroupsPerSm(variant));
        shape = TensorCoreLaunch.WithSplitK(shape, splits, kChunk);
        var partial = splits > 1 ? Scratch((long)splits * m * n) : default;
        TensorCoreKernel(variant)(TensorCoreLaunch.Config(splits > 1 ? splits : batch, m, n, nBlocks, warpColumns), a, b, bias, c, partial, shape);
        if (splits > 1)
        {
            // The 16-bit GEMV's reduction has exactly this epilogue (alpha, beta·bias [N] or [M, N], one rounding).
            ReduceSplits16(partial, bias, c, TensorCoreLaunch.ReduceShape(shape), bf16);
        }

        return true;
    }

    /// <summary>
    /// The tensor-core kernel of a variant: its tile as the type argument, and its launch bounds (the group's threads;
    /// two groups per SM for the "2" variants, which for <see cref="TensorCoreGemmVariant.SquareTwoPerSm"/> caps ptxas at
    /// 128 registers per thread and for <see cref="TensorCoreGemmVariant.QuadTwoPerSm"/> (128 threads) at 255).
    /// </summary>
    private Action<KernelConfig, ArrayView<ushort>, ArrayView<ushort>, ArrayView<ushort>, ArrayView<ushort>, ArrayView<float>, TensorCoreShape> TensorCoreKernel(TensorCoreGemmVariant variant)
    {
        var name = $"{nameof(TensorCoreGemmKernels.Gemm16TensorCore)}:{TensorCoreVariants.Name(variant)}";
        var (_, warpColumns) = TensorCoreVariants.Tile(variant);
        var bounds = Bounds(TensorCoreGemmKernels.GroupSize(warpColumns), TensorCoreVariants.GroupsPerSm(variant) > 1 ? TensorCoreVariants.GroupsPerSm(variant) : null);
        return variant switch
        {
            TensorCoreGemmVariant.Wide => device.Load(ref tensorCoreGemm16[0], name,
                acc => acc.LoadStreamKernel<ArrayView<ushort>, ArrayView<ushort>, ArrayView<ushort>, ArrayView<ushort>, ArrayView<float>, TensorCoreShape>(
                    TensorCoreGemmKernels.Gemm16TensorCore<WideTile>, bounds)),
            TensorCoreGemmVariant.SquareTwoPerSm => device.Load(ref tensorCoreGemm16[1], name,
                acc => acc.LoadStreamKernel<ArrayView<ushort>, ArrayView<ushort>, ArrayView<ushort>, ArrayView<ushort>, ArrayView<float>, TensorCoreShape>(
                    TensorCoreGemmKernels.Gemm16TensorCore<SquareTile>, bounds)),
            TensorCoreGemmVariant.QuadTwoPerSm => device.Load(ref tensorCoreGemm16[3], name,
                acc => acc.LoadStreamKernel<ArrayView<ushort>, ArrayView<ushort>, ArrayView<ushort>, ArrayView<ushort>, ArrayView<float>, TensorCoreShape>(
                    TensorCoreGemmKernels.Gemm16TensorCore<QuadTile>, bounds)),
            _ => device.Load(ref tensorCoreGemm16[2], name,
                acc => acc.LoadStreamKernel<ArrayView<ushort>, ArrayView<ushort>, ArrayView<ushort>, ArrayView<ushort>, ArrayView<float>, TensorCoreShape>(
                    TensorCoreGemmKernels.Gemm16TensorCore<SquareTile>, bounds)),
        };
    }
}

/// <summary>Tile configurations of the 16-bit tensor-core GEMM (all: two warp rows, four k16 stages, swizzled shared memory).</summary>
internal enum TensorCoreGemmVariant
{
    /// <summary>128 × 256 group tiles, 64 × 64 per warp (128 accumulators per thread), one group per SM.</summary>
    Wide = 0,

    /// <summary>128 × 128 group tiles, 64 × 32 per warp, launch bounds for two groups per SM (at most 128 registers); the default.</summary>
    SquareTwoPerSm = 1,

    /// <summary>128 × 128 group tiles, 64 × 32 per warp, no occupancy bound (the tile of the earlier attempts).</summary>
    Square = 2,

    /// <summary>128 × 128 group tiles of 4 warps, 64 × 64 per warp (128 accumulators per thread), two groups per SM.</summary>
    QuadTwoPerSm = 3,

    /// <summary>
    /// Hopper's wgmma (<see cref="WgmmaGemmKernels"/>: 128 × 256 group tiles of two warpgroups) on a compute-capability-9.0
    /// device for the shapes it takes; <see cref="SquareTwoPerSm"/> everywhere else.
    /// </summary>
    Wgmma = 4,

    /// <summary><see cref="Wgmma"/> with three K tiles in flight instead of two, at a second barrier per tile (<see cref="ThreeAhead"/>).</summary>
    WgmmaThreeAhead = 5,

    /// <summary><see cref="Wgmma"/> with the groups' tiles handed out in bands of 16 tile rows (<see cref="TwoAheadGrouped"/>).</summary>
    WgmmaGrouped = 6,

    /// <summary><see cref="WgmmaGrouped"/>'s order on a persistent grid, the next tile's first stages requested before the epilogue (<see cref="PersistentGrouped"/>).</summary>
    WgmmaPersistent = 7,

    /// <summary><see cref="WgmmaPersistent"/> with whole tiles' epilogues inside the asm (<see cref="PersistentGroupedStores"/>).</summary>
    WgmmaPersistentStores = 8,
}

/// <summary>Names, warp tiles and the environment default of <see cref="TensorCoreGemmVariant"/>.</summary>
internal static class TensorCoreVariants
{
    /// <summary>Environment variable naming the variant for a measuring run: <c>wide</c>, <c>square2</c>, <c>square</c>, <c>quad2</c>, <c>wgmma</c>, <c>wgmma3</c>, <c>wgmma-g</c>, <c>wgmma-p</c> or <c>wgmma-pe</c>.</summary>
    public const string Variable = "GEMS_TC_GEMM_VARIANT";

    private static readonly Lazy<TensorCoreGemmVariant> FromVariable = new(() => Parse(Environment.GetEnvironmentVariable(Variable)));

    /// <summary>The variant the environment names (read once per process), or the default.</summary>
    public static TensorCoreGemmVariant FromEnvironment() => FromVariable.Value;

    /// <summary>
    /// The variant a setting names (case and surrounding spaces ignored); unset, empty or unknown:
    /// <see cref="TensorCoreGemmVariant.WgmmaPersistentStores"/>, which runs the products it can on a compute-capability-9.0
    /// device (H200, 2026-11-28: bf16 4096³ 193.5 TFLOP/s on <c>square2</c>, 411 on <c>wgmma</c> (Run 19), 500.5 = 0.71x
    /// PyTorch's 708.9 on this one (Run 21); 4097×5000×1032 134 → 195 → 295) and leaves every other product, and every
    /// other device, to <see cref="TensorCoreGemmVariant.SquareTwoPerSm"/>.
    /// </summary>
    public static TensorCoreGemmVariant Parse(string? setting) => setting?.Trim().ToLowerInvariant() switch
    {
        "wide" => TensorCoreGemmVariant.Wide,
        "square" => TensorCoreGemmVariant.Square,
        "square2" => TensorCoreGemmVariant.SquareTwoPerSm,
        "quad2" => TensorCoreGemmVariant.QuadTwoPerSm,
        "wgmma3" => TensorCoreGemmVariant.WgmmaThreeAhead,
        "wgmma-g" => TensorCoreGemmVariant.WgmmaGrouped,
        "wgmma-p" => TensorCoreGemmVariant.WgmmaPersistent,
        "wgmma" => TensorCoreGemmVariant.Wgmma,
        _ => TensorCoreGemmVariant.WgmmaPersistentStores,
    };

    /// <summary>The setting that names a variant.</summary>
    public static string Name(TensorCoreGemmVariant variant) => variant switch
    {
        TensorCoreGemmVariant.SquareTwoPerSm => "square2",
        TensorCoreGemmVariant.Square => "square",
        TensorCoreGemmVariant.QuadTwoPerSm => "quad2",
        TensorCoreGemmVariant.Wgmma => "wgmma",
        TensorCoreGemmVariant.WgmmaThreeAhead => "wgmma3",
        TensorCoreGemmVariant.WgmmaGrouped => "wgmma-g",
        TensorCoreGemmVariant.WgmmaPersistent => "wgmma-p",
        TensorCoreGemmVariant.WgmmaPersistentStores => "wgmma-pe",
        _ => "wide",
    };

    /// <summary>Groups per SM the variant's launch bounds ask for (and the split-K plan fills).</summary>
    public static int GroupsPerSm(TensorCoreGemmVariant variant) =>
        variant is TensorCoreGemmVariant.SquareTwoPerSm or TensorCoreGemmVariant.QuadTwoPerSm ? 2 : 1;

    /// <summary>The variant's tile (the kernel's type argument): n-blocks (8 columns each) per warp, warps along N.</summary>
    public static (int NBlocks, int WarpColumns) Tile(TensorCoreGemmVariant variant) => variant switch
    {
        TensorCoreGemmVariant.Wide => (8, 4),
        TensorCoreGemmVariant.QuadTwoPerSm => (8, 2),
        _ => (4, 4),
    };
}

/// <summary>Launch shape and arguments of <see cref="TensorCoreGemmKernels"/> (shared by the facade and the tests).</summary>
internal static class TensorCoreLaunch
{
    /// <summary>
    /// Grid (⌈N/BlockN⌉, ⌈M/128⌉, batch) of 64·warpColumns-thread groups with the tile's dynamic shared memory (four
    /// stages: 32 KB for 128-column tiles, 48 KB for 256).
    /// </summary>
    public static KernelConfig Config(int batch, int m, int n, int nBlocks, int warpColumns)
    {
        int blockN = TensorCoreGemmKernels.BlockN(nBlocks, warpColumns);
        return new(
            new Index3D((n + blockN - 1) / blockN, (m + TensorCoreGemmKernels.BlockM - 1) / TensorCoreGemmKernels.BlockM, batch),
            new Index3D(TensorCoreGemmKernels.GroupSize(warpColumns), 1, 1),
            SharedMemoryConfig.RequestDynamic<ushort>(TensorCoreGemmKernels.SharedBytes(nBlocks, warpColumns) / sizeof(ushort)));
    }

    /// <summary>
    /// Fewest k16 tiles in one split-K chunk: a chunk pays the pipeline's three-tile prologue and a 64 KB float32 partial
    /// tile per group, so it needs enough mma work behind it (256 of K stage 128 KB of A and B per group, twice its partial).
    /// </summary>
    public const int MinSplitTiles = 16;

    /// <summary>
    /// Split-K plan for one product: (1, K) unless a single matrix (batch 1) has at most half as many group tiles as
    /// the device holds groups at once (e.g. 64 × 4096 · 4096 × 4096: 32 tiles of 128 × 128 or 16 of 128 × 256 for 132
    /// SMs); then Grid.Z takes K in chunks of a multiple of <see cref="TensorCoreGemmKernels.BlockK"/>, at least
    /// <paramref name="minChunkTiles"/> tiles deep, and as many chunks as keep tiles × splits within one wave of
    /// <paramref name="groupsPerSm"/> groups per SM (1 unless the variant's launch bounds promise more). Batched products
    /// keep Grid.Z for the batch. A device with no SM count (the CPU simulator) never splits.
    /// </summary>
    public static (int Splits, int KChunk) PlanSplitK(int batch, int m, int k, int n, int multiprocessors, int nBlocks, int warpColumns, int groupsPerSm = 1,
        int minChunkTiles = MinSplitTiles)
    {
        var grid = Config(1, m, n, nBlocks, warpColumns).GridDim;
        long tiles = (long)grid.X * grid.Y;
        long slots = (long)multiprocessors * groupsPerSm;
        if (batch != 1 || multiprocessors <= 0 || 2 * tiles > slots)
        {
            return (1, k);
        }

        int splits = (int)Math.Min(slots / tiles, k / ((long)minChunkTiles * TensorCoreGemmKernels.BlockK));
        return ChunkK(k, splits);
    }

    /// <summary>K cut into at most <paramref name="splits"/> chunks of a whole number of k16 tiles (the last one shorter); (1, K) below two.</summary>
    public static (int Splits, int KChunk) ChunkK(int k, int splits)
    {
        if (splits < 2)
        {
            return (1, k);
        }

        const int Tile = TensorCoreGemmKernels.BlockK;
        int chunk = ((k + splits - 1) / splits + Tile - 1) / Tile * Tile;
        int used = (k + chunk - 1) / chunk;
        return used > 1 ? (used, chunk) : (1, k);
    }

    /// <summary>The shape with split-K set: grid z becomes the <paramref name="splits"/> chunks of <paramref name="kChunk"/> (batch must be 1).</summary>
    public static TensorCoreShape WithSplitK(TensorCoreShape shape, int splits, int kChunk)
    {
        shape.SplitK = splits;
        shape.KChunk = splits > 1 ? kChunk : shape.K;
        return shape;
    }

    /// <summary>The arguments of <see cref="HalfGemvKernels.GemvReduce16"/> that sum a split launch's partials and apply its epilogue.</summary>
    public static HalfGemvShape ReduceShape(TensorCoreShape shape) => new()
    {
        M = shape.M,
        N = shape.N,
        K = shape.K,
        Splits = shape.SplitK,
        Alpha = shape.Alpha,
        Beta = shape.Beta,
        HasBias = shape.HasBias,
        BiasStrideM = (int)shape.StrideBiasM,
    };

    /// <summary>Floats of scratch the emulated kernel needs for this launch.</summary>
    public static long EmulationScratch(int batch, int m, int n, int nBlocks, int warpColumns)
    {
        var grid = Config(batch, m, n, nBlocks, warpColumns).GridDim;
        return (long)grid.X * grid.Y * grid.Z * TensorCoreGemmKernels.GroupSize(warpColumns) * TensorCoreGemmKernels.Accumulators(nBlocks);
    }

    /// <summary>Whether the epilogue may store column pairs as one word: N even and C 4-byte aligned (every pair then is).</summary>
    public static int PairStores(ArrayView<ushort> c, int n) => n % 2 == 0 && DeviceAddress(c) % 4 == 0 ? 1 : 0;

    /// <summary>
    /// The address of the view's first element (the device pointer on CUDA), as the vectorised kernels read it; 0 for an
    /// empty view, which may have no buffer (and needs no alignment).
    /// </summary>
    internal static long DeviceAddress<T>(ArrayView<T> view)
        where T : unmanaged
    {
        if (view.Length == 0)
        {
            return 0;
        }

        return DirectCudaLaunch.AddressOf(view, Interop.SizeOf<T>());
    }

    /// <summary>
    /// The kernel's shape for contiguous a [batch, M, K], b [batch, K, N] (or [batch, N, K]), c [batch, M, N] and a bias
    /// [N] or [M, N]. Asynchronous 16-byte copies only when every staged chunk is 16-byte aligned in global memory.
    /// </summary>
    public static TensorCoreShape Shape(ArrayView<ushort> a, ArrayView<ushort> b, ArrayView<ushort> bias, int m, int k, int n, bool transposeB,
        float alpha, float beta, bool biasIsMatrix, bool bf16, bool asyncCopyAllowed)
    {
        long aPointer = 0, bPointer = 0;
        bool aligned = false;
        if (asyncCopyAllowed)
        {
            aPointer = DeviceAddress(a);
            bPointer = DeviceAddress(b);
            aligned = k % 8 == 0 && (transposeB || n % 8 == 0) && aPointer % 16 == 0 && bPointer % 16 == 0;
        }

        return new TensorCoreShape
        {
            M = m,
            N = n,
            K = k,
            TransposeB = transposeB ? 1 : 0,
            Bf16 = bf16 ? 1 : 0,
            AsyncCopy = aligned ? 1 : 0,
            APointer = aligned ? aPointer : 0,
            BPointer = aligned ? bPointer : 0,
            BatchA = (long)m * k,
            BatchB = (long)k * n,
            BatchC = (long)m * n,
            BatchBias = 0,
            StrideBiasM = biasIsMatrix ? n : 0,
            StrideBiasN = 1,
            Alpha = alpha,
            Beta = beta,
            HasBias = bias.Length != 0 ? 1 : 0,
            SplitK = 1,
            KChunk = k,
        };
    }
}
