using System;
using ILGPU;
using ILGPU.Runtime;

namespace GemsInjector.Kernels.Ilgpu;

public sealed partial class IlgpuKernels
{
    private Action<KernelConfig, ArrayView<long>, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int, int, int, int, int>? rotaryF32;
    private Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, GemmShape>? gemmF32;
    private Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, AttentionShape>? attentionF32;
    // One compiled variant per (tile threads, row halves) and per GEMV row cap: see SgemmVariant / GemvKnVariant / GemvNkVariant.
    private readonly Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, GemmShape>?[] sgemmF32 = new Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, GemmShape>?[4];
    private readonly Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, GemvShape>?[] gemvKnF32 = new Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, GemvShape>?[5];
    private readonly Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, GemvShape>?[] gemvNkF32 = new Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, GemvShape>?[5];
    private readonly Action<KernelConfig, ArrayView<Float4>, ArrayView<Float4>, ArrayView<float>, ArrayView<float>, GemmShape>?[] sgemmWarpF32 = new Action<KernelConfig, ArrayView<Float4>, ArrayView<Float4>, ArrayView<float>, ArrayView<float>, GemmShape>?[6];
    private readonly Action<KernelConfig, ArrayView<Float4>, ArrayView<Float4>, ArrayView<float>, ArrayView<float>, GemmShape>?[] sgemmWarpNkVecF32 = new Action<KernelConfig, ArrayView<Float4>, ArrayView<Float4>, ArrayView<float>, ArrayView<float>, GemmShape>?[2];
    private readonly Action<KernelConfig, ArrayView<Float4>, ArrayView<Float4>, ArrayView<float>, ArrayView<float>, GemmShape>?[] sgemmWideF32 = new Action<KernelConfig, ArrayView<Float4>, ArrayView<Float4>, ArrayView<float>, ArrayView<float>, GemmShape>?[4];
    private readonly Action<KernelConfig, ArrayView<Float4>, ArrayView<Float4>, ArrayView<float>, ArrayView<float>, GemmShape, SgemmAddresses>?[] sgemmAsyncF32 = new Action<KernelConfig, ArrayView<Float4>, ArrayView<Float4>, ArrayView<float>, ArrayView<float>, GemmShape, SgemmAddresses>?[10];
    private readonly Action<KernelConfig, ArrayView<Float4>, ArrayView<Float4>, ArrayView<float>, ArrayView<float>, GemmShape, SgemmAddresses>?[] sgemmAsyncPipeF32 = new Action<KernelConfig, ArrayView<Float4>, ArrayView<Float4>, ArrayView<float>, ArrayView<float>, GemmShape, SgemmAddresses>?[6];
    private readonly Action<KernelConfig, ArrayView<Float4>, ArrayView<Float4>, ArrayView<float>, ArrayView<float>, GemmShape, SgemmAddresses>?[] sgemmAsyncPipeSpreadF32 = new Action<KernelConfig, ArrayView<Float4>, ArrayView<Float4>, ArrayView<float>, ArrayView<float>, GemmShape, SgemmAddresses>?[4];
    private MemoryBuffer1D<float, Stride1D.Dense>? gemvScratch;

    /// <summary>The device's launch bounds for a kernel (<see cref="IlgpuDevice.LaunchBounds"/>).</summary>
    private KernelSpecialization Bounds(int maxThreads, int? minGroupsPerSm) => device.LaunchBounds(maxThreads, minGroupsPerSm);

    /// <summary>Largest m sent to the GEMV kernels (tests lower it to reach the short-tile SGEMM with split-K).</summary>
    internal int GemvMaxRows { get; set; } = GemmFastKernels.MaxGemvRows;

    /// <summary>
    /// SGEMM launch bounds: 256 threads and <see cref="SgemmGroupsPerSm"/> groups per SM (2: <c>.maxntid 256
    /// .minnctapersm 2</c>, at most 128 registers per thread; 1: <c>.maxntid 256</c> only, up to 255).
    /// </summary>
    private KernelSpecialization SgemmBounds => Bounds(256, SgemmGroupsPerSm);

    /// <summary>
    /// Groups per SM the SGEMM's launch bounds ask for: 2, or 1 when the environment variable
    /// <c>GEMS_SGEMM_GROUPS_PER_SM</c> says <c>1</c> (read once per process; a measuring knob: 64 accumulators, 16 operands
    /// and 8 prefetched values leave little room under the 128-register cap of two groups).
    /// </summary>
    internal int SgemmGroupsPerSm { get; set; } = SgemmOccupancy.FromEnvironment();

    /// <summary>GEMV and decode-attention launch bounds: groups of at most 256 threads.</summary>
    private KernelSpecialization GemvBounds => Bounds(256, null);
    private MemoryBuffer1D<float, Stride1D.Dense>? decodeScratch;
    private Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, AttentionShape, int, int>? decodeSplitF32;
    private Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, AttentionShape, int>? decodeCombineF32;

    /// <summary>
    /// vLLM <c>rotary_embedding</c>, in place on query [tokens, numHeads·headSize] and key [tokens, numKvHeads·headSize]
    /// (key may be empty) with cos_sin_cache [maxPositions, rotaryDim] (cos half then sin half). Positions must lie in
    /// [0, maxPositions) (not checked on the device).
    /// </summary>
    /// <param name="positions">[tokens] int64 positions.</param>
    /// <param name="query">Query, rotated in place.</param>
    /// <param name="key">Key, rotated in place, or an empty view.</param>
    /// <param name="cosSinCache">[maxPositions, rotaryDim].</param>
    /// <param name="headSize">Elements per head.</param>
    /// <param name="rotaryDim">Leading elements of each head that are rotated (even, ≤ headSize).</param>
    /// <param name="isNeox">neox (halves) when true, interleaved (GPT-J pairs) when false.</param>
    public void RotaryEmbedding(ArrayView<long> positions, ArrayView<float> query, ArrayView<float> key, ArrayView<float> cosSinCache,
        int headSize, int rotaryDim, bool isNeox)
    {
        int tokens = CheckInt(positions.Length, nameof(positions));
        if (headSize <= 0 || rotaryDim <= 0 || rotaryDim > headSize || rotaryDim % 2 != 0)
        {
            throw new ArgumentOutOfRangeException(nameof(rotaryDim), rotaryDim, $"rotaryDim must be even and in (0, headSize = {headSize}].");
        }

        if (cosSinCache.Length % rotaryDim != 0)
        {
            throw new ArgumentException($"'cosSinCache' has {cosSinCache.Length} elements, not a multiple of rotaryDim {rotaryDim}.", nameof(cosSinCache));
        }

        if (tokens == 0)
        {
            return;
        }

        long perToken = (long)headSize * tokens;
        if (query.Length % perToken != 0 || key.Length % perToken != 0)
        {
            throw new ArgumentException($"query ({query.Length}) and key ({key.Length}) must hold tokens·heads·headSize elements ({tokens} tokens, headSize {headSize}).");
        }

        int heads = CheckInt(query.Length / perToken, nameof(query));
        int kvHeads = CheckInt(key.Length / perToken, nameof(key));
        int pairs = (heads + kvHeads) * rotaryDim / 2;
        device.Load(ref rotaryF32, nameof(RotaryKernels.RotaryF32),
            acc => acc.LoadStreamKernel<ArrayView<long>, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int, int, int, int, int>(RotaryKernels.RotaryF32))(
            Rows(tokens, pairs), positions, query, key, cosSinCache, heads, kvHeads, headSize, rotaryDim, isNeox ? 1 : 0, kvHeads > 0 ? 1 : 0);
    }

    /// <summary><c>aten::mm</c>: c[M, N] = a[M, K] · b[K, N] (b given as [N, K] when <paramref name="transposeB"/>, as in a linear layer).</summary>
    /// <param name="a">[M, K].</param>
    /// <param name="b">[K, N], or [N, K] when transposed.</param>
    /// <param name="c">[M, N] output.</param>
    /// <param name="m">Rows of a and c.</param>
    /// <param name="k">Inner dimension.</param>
    /// <param name="n">Columns of c.</param>
    /// <param name="transposeB">Whether b is stored [N, K].</param>
    public void Mm(ArrayView<float> a, ArrayView<float> b, ArrayView<float> c, int m, int k, int n, bool transposeB = false) =>
        Gemm(a, b, default, c, 1, m, k, n, transposeB, 1f, 0f, biasIsMatrix: false);

    /// <summary><c>aten::bmm</c>: c[i] = a[i] · b[i] for a [batch, M, K], b [batch, K, N] (or [batch, N, K] when transposed).</summary>
    /// <param name="a">[batch, M, K].</param>
    /// <param name="b">[batch, K, N] or [batch, N, K].</param>
    /// <param name="c">[batch, M, N] output.</param>
    /// <param name="batch">Batch count.</param>
    /// <param name="m">Rows.</param>
    /// <param name="k">Inner dimension.</param>
    /// <param name="n">Columns.</param>
    /// <param name="transposeB">Whether b is stored [batch, N, K].</param>
    public void Bmm(ArrayView<float> a, ArrayView<float> b, ArrayView<float> c, int batch, int m, int k, int n, bool transposeB = false) =>
        Gemm(a, b, default, c, batch, m, k, n, transposeB, 1f, 0f, biasIsMatrix: false);

    /// <summary>
    /// <c>aten::addmm</c>: c = beta·bias + alpha·(a · b); bias is [N] (broadcast over rows) or [M, N]. With beta = 0 the
    /// bias is not read (NaN in it does not propagate), as in aten.
    /// </summary>
    /// <param name="bias">[N] or [M, N].</param>
    /// <param name="a">[M, K].</param>
    /// <param name="b">[K, N], or [N, K] when transposed.</param>
    /// <param name="c">[M, N] output.</param>
    /// <param name="m">Rows.</param>
    /// <param name="k">Inner dimension.</param>
    /// <param name="n">Columns.</param>
    /// <param name="beta">Factor on the bias.</param>
    /// <param name="alpha">Factor on the product.</param>
    /// <param name="transposeB">Whether b is stored [N, K].</param>
    public void Addmm(ArrayView<float> bias, ArrayView<float> a, ArrayView<float> b, ArrayView<float> c, int m, int k, int n,
        float beta = 1f, float alpha = 1f, bool transposeB = false)
    {
        bool matrix = bias.Length == (long)m * n && m != 1;
        if (!matrix)
        {
            CheckLength(bias, n, nameof(bias));
        }

        Gemm(a, b, bias, c, 1, m, k, n, transposeB, alpha, beta, matrix);
    }

    private void Gemm(ArrayView<float> a, ArrayView<float> b, ArrayView<float> bias, ArrayView<float> c, int batch, int m, int k, int n,
        bool transposeB, float alpha, float beta, bool biasIsMatrix)
    {
        CheckPositive(batch, nameof(batch));
        CheckPositive(m, nameof(m));
        CheckPositive(k, nameof(k));
        CheckPositive(n, nameof(n));
        CheckLength(a, (long)batch * m * k, nameof(a));
        CheckLength(b, (long)batch * k * n, nameof(b));
        CheckLength(c, (long)batch * m * n, nameof(c));
        if ((long)batch * m * n == 0)
        {
            return;
        }

        // 8–16 rows on the FP64 tensor cores where they were measured faster (GEMS_GEMV_F32_DMMA, IlgpuKernels.GemvDmmaF32.cs).
        var dmma = GemvDmmaF32Form(a, b, batch, m, k, n, transposeB);
        if (dmma != GemvDmmaForm.Off)
        {
            GemvDmmaF32(dmma, a, b, bias, c, m, k, n, transposeB, alpha, beta, biasIsMatrix);
            return;
        }

        // Register-tiled SGEMM: 16×16 threads (4×4 on the simulator), see below. Tiny products take the plain tile (t = 0,
        // the fallback at the end), whose JIT is cheap (IlgpuKernels.SmallShapes.cs).
        bool tiny = IsTinyProduct(m, n, k);
        int t = tiny ? 0 : device.MaxGroupSize >= 256 ? GemmFastKernels.MaxTileThreads : device.MaxGroupSize >= 16 ? 4 : 0;
        bool flat = t > 0 && batch == 1 && m >= FlatSgemmMinRows && m <= GemvMaxRows && SmallRowsKernel == SmallRowsProduct.Sgemm
            && SgemmKernel != SgemmKernelVariant.Legacy && UsesSgemmWarpF32(a, b, k, n, transposeB)
            && !(transposeB ? UsesGemvNkStreamF32(a, b, m, k) : UsesGemvKnStreamF32(a, b, m, k, n));
        if (!tiny && !flat && batch == 1 && m <= GemvMaxRows && device.MaxGroupSize >= device.WarpSize)
        {
            Gemv(a, b, bias, c, m, k, n, transposeB, alpha, beta, biasIsMatrix);
            return;
        }

        // Register-tiled SGEMM: 16×16 threads with 8×8 outputs each (128×128 tiles, K-tile 8) on CUDA; 4×4 threads
        // (32×32 tiles, K-tile 2) on the simulator. bk is chosen so that each thread stages 4 floats of A and 4 of B.
        // Products with m ≤ 64 (16 on the simulator) use half-height tiles (64×128, 4×8 per thread); `flat` ones (8–16
        // rows, GEMS_F32_SMALLM=sgemm) the warp kernel's 16×512 tile (8×64 on the simulator), 4×8 per thread.
        var shape = new GemmShape
        {
            M = m,
            N = n,
            K = k,
            StrideAm = k,
            StrideAk = 1,
            StrideBk = transposeB ? 1 : n,
            StrideBn = transposeB ? k : 1,
            BatchA = (long)m * k,
            BatchB = (long)k * n,
            BatchC = (long)m * n,
            BatchBias = 0,
            StrideBiasM = biasIsMatrix ? n : 0,
            StrideBiasN = 1,
            Alpha = alpha,
            Beta = beta,
            HasBias = bias.Length != 0 ? 1 : 0,
            TileThreads = t,
            Bk = t / 2,
            SplitK = 1,
            KChunk = k,
        };
        if (t > 0)
        {
            var variant = SgemmKernel == SgemmKernelVariant.Legacy || !UsesSgemmWarpF32(a, b, k, n, transposeB) ? SgemmKernelVariant.Legacy : SgemmKernel;
            int edge = 8 * t;
            int halves = m <= edge / 2 || flat ? 1 : 2;

            // `wide16`: 8×16 outputs per thread (SgemmWide8x16F32), K-tile 16 on GPUs: 128×128 tiles above 4T rows, 64×256
            // (warps side by side) for 17–64 rows; 8–16 rows keep the flat tile. On the simulator K-tile 8 for the square
            // tile (4 for the short one).
            // `async16`: the square tile of `wide16` staged by cp.async into three shared stages (SgemmAsync8x16F32); the
            // short 64×256 tile (≤ 4T rows) as below.
            // `pipe16`: as `async16`, but a B [K, N] square tile is SgemmAsyncPipe8x16F32 (rotated fragments, cheaper copy
            // issue); B [N, K] stays `async16`'s.
            // The short 64×256 tile of these three is, by default (GEMS_SGEMM_SHORT_VARIANT=pipe16kruns; Runs 40 and 49, H200:
            // 64-row products +3–13% against `pipe`, then +33% for B [K, N] from 16-byte stores), SgemmAsync8x16F32's short
            // tile for a B [N, K] and SgemmAsyncPipe8x16F32's (C in 16-byte runs where it can) for a B [K, N] at K-tile 16
            // (three 60 KB stages on GPUs) where the group may have that much shared memory (SgemmShortSharedLimit), else
            // `pipe`'s; `pipe`: the same kernels at K-tile 8 (three 64×256 stages in 30 KB;
            // Run 35: +7–10% against `wide`); `async`: SgemmAsync8x16F32's for both layouts; `wide`: SgemmWide8x16F32's
            // (staging registers, K-tile 16).
            bool pipeVariant = variant == SgemmKernelVariant.AsyncPipe8x16;
            bool asyncVariant = variant == SgemmKernelVariant.Async8x16 || pipeVariant;
            bool wide = (variant == SgemmKernelVariant.Wide8x16Bk16 || asyncVariant) && !flat;
            bool asyncShort = wide && halves == 1 && SgemmShortKernel != SgemmShortVariant.Wide;
            bool asyncTile = wide && ((asyncVariant && halves == 2) || asyncShort);
            bool pipeShort = SgemmShortKernel is SgemmShortVariant.AsyncPipe or SgemmShortVariant.AsyncPipeBk16 or SgemmShortVariant.AsyncPipeBk16Runs
                or SgemmShortVariant.AsyncPipeBk16Spread;
            bool spreadTile = asyncShort && SgemmShortKernel == SgemmShortVariant.AsyncPipeBk16Spread;
            bool pipeTile = asyncTile && !transposeB && (asyncShort ? pipeShort : pipeVariant);
            int bk = variant == SgemmKernelVariant.Legacy ? t / 2
                : asyncShort ? AsyncShortKTile(t)
                : wide ? (t >= GemmFastKernels.MaxTileThreads ? 16 : halves == 2 ? 8 : 4)
                : Math.Max(4, t / 2);
            shape.Bk = bk;
            var (rowsPerTile, colsPerTile) = flat ? GemmFastKernels.FlatTile(t) : wide ? GemmFastKernels.WideTile(t, halves) : (edge / 2 * halves, edge);
            int gx = (n + colsPerTile - 1) / colsPerTile;
            int gy = (m + rowsPerTile - 1) / rowsPerTile;

            // Split-K when one matrix has too few tiles to fill the card (e.g. 64×4096·4096×4096: 32 tiles for 132 SMs):
            // Grid.Z takes chunks of K (at least 16 K-tiles of 8 each), partials go to scratch and GemvReduceF32 sums them.
            // The warp-tiled kernel takes as many splits as fit in one wave of resident groups (SgemmGroupsPerSm per SM);
            // the legacy rule gave 64 rows 288 groups for 264 slots: a second wave, nearly empty.
            int slots = device.MultiprocessorCount > 0 ? SgemmGroupsPerSm * device.MultiprocessorCount : 4;
            int target = device.MultiprocessorCount > 0 ? 2 * device.MultiprocessorCount : 4;
            // The short tile splits K as at K-tile 8 whichever K-tile it runs (`pipe16k` differs from `pipe` in the kernel
            // only: the same 16 × 256 splits at 64×4096·4096, and K = 1024 keeps its 8 splits instead of 4).
            int minChunk = 16 * Math.Max(asyncShort ? 8 : bk, t / 2);
            int splits = 1;
            long tiles = (long)gx * gy;
            if (batch == 1 && tiles < target && k >= 2 * minChunk)
            {
                splits = variant == SgemmKernelVariant.Legacy ? (int)((target + tiles - 1) / tiles) : (int)Math.Max(1, slots / tiles);
                splits = Math.Min(splits, k / minChunk);
                int chunk = ((k + splits - 1) / splits + bk - 1) / bk * bk;
                splits = (k + chunk - 1) / chunk;
                shape.KChunk = chunk;
            }

            var target3 = c;
            if (splits > 1)
            {
                shape.SplitK = splits;
                shape.Alpha = 1f;
                shape.HasBias = 0;
                target3 = Scratch((long)splits * m * n);
            }

            // 16-byte runs of C where they write what the per-element stores would (the kernels with that epilogue: the
            // warp tile, and the short [K, N] pipe tile under `pipe16kruns` / `pipe16kspread`).
            bool runsAllowed = n % 4 == 0 && TensorCoreLaunch.DeviceAddress(target3) % 16 == 0 && (shape.HasBias == 0 || shape.Beta == 0f);

            var tiled = new KernelConfig(new Index3D(gx, gy, splits > 1 ? splits : batch), new Index3D(wide ? GemmFastKernels.WideThreads(t) : t * t, 1, 1));
            if (variant == SgemmKernelVariant.Legacy)
            {
                SgemmVariant(t, halves)(tiled, a, b, bias, target3, shape);
            }
            else if (asyncTile)
            {
                var addresses = device.Kind == IlgpuDeviceKind.Cuda
                    ? new SgemmAddresses { A = TensorCoreLaunch.DeviceAddress(a), B = TensorCoreLaunch.DeviceAddress(b) }
                    : default;
                shape.StoreRuns = runsAllowed && pipeTile && asyncShort && SgemmShortKernel is SgemmShortVariant.AsyncPipeBk16Runs or SgemmShortVariant.AsyncPipeBk16Spread ? 1 : 0;
                var staged = new KernelConfig(tiled.GridDim, tiled.GroupDim,
                    SharedMemoryConfig.RequestDynamic<Float4>(GemmFastKernels.AsyncShared(rowsPerTile, colsPerTile, bk) / 4));
                (pipeTile ? (spreadTile ? SgemmAsyncPipeSpreadLaunch(t, bk) : SgemmAsyncPipeLaunch(t, bk, halves)) : SgemmAsyncLaunch(t, bk, transposeB, halves))(staged, a.Cast<Float4>(), b.Cast<Float4>(), bias, target3, shape, addresses);
            }
            else if (wide)
            {
                SgemmWideLaunch(t, halves, bk)(tiled, a.Cast<Float4>(), b.Cast<Float4>(), bias, target3, shape);
            }
            else
            {
                shape.StoreRuns = runsAllowed ? 1 : 0;
                var warpLaunch = flat && transposeB && SgemmFlatTbStaging == SgemmFlatTbStage.Vector ? SgemmWarpNkVecLaunch(t, bk) : SgemmWarpLaunch(t, halves, bk, flat);
                warpLaunch(tiled, a.Cast<Float4>(), b.Cast<Float4>(), bias, target3, shape);
            }
            if (splits > 1)
            {
                var g = new GemvShape
                {
                    M = m,
                    N = n,
                    K = k,
                    Splits = splits,
                    Alpha = alpha,
                    Beta = beta,
                    HasBias = bias.Length != 0 ? 1 : 0,
                    BiasStrideM = biasIsMatrix ? n : 0,
                };
                ReduceSplitsF32(target3, bias, c, g);
            }

            return;
        }

        // Fallback for accelerators with groups below 16 threads: the plain shared-memory tile.
        int tile = Math.Min(GemmKernels.MaxTile, (int)Math.Sqrt(device.MaxGroupSize));
        var config = new KernelConfig(new Index3D((n + tile - 1) / tile, (m + tile - 1) / tile, batch), new Index3D(tile, tile, 1));
        device.Load(ref gemmF32, nameof(GemmKernels.GemmF32),
            acc => acc.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, GemmShape>(GemmKernels.GemmF32))(
            config, a, b, bias, c, shape);
    }

    /// <summary>The SGEMM compiled for <paramref name="tileThreads"/> (16 on GPUs, 4 on the simulator) and <paramref name="rowHalves"/>.</summary>
    private Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, GemmShape> SgemmVariant(int tileThreads, int rowHalves)
    {
        var name = $"{nameof(GemmFastKernels.Sgemm8x8F32)}<{tileThreads},{rowHalves}>";
        var slot = (tileThreads == GemmFastKernels.MaxTileThreads ? 2 : 0) + rowHalves - 1;
        return (tileThreads, rowHalves) switch
        {
            (GemmFastKernels.MaxTileThreads, 1) => device.Load(ref sgemmF32[slot], name, acc => acc.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, GemmShape>(GemmFastKernels.Sgemm8x8F32<Const16, Const1>, SgemmBounds)),
            (GemmFastKernels.MaxTileThreads, 2) => device.Load(ref sgemmF32[slot], name, acc => acc.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, GemmShape>(GemmFastKernels.Sgemm8x8F32<Const16, Const2>, SgemmBounds)),
            (4, 1) => device.Load(ref sgemmF32[slot], name, acc => acc.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, GemmShape>(GemmFastKernels.Sgemm8x8F32<Const4, Const1>, SgemmBounds)),
            (4, 2) => device.Load(ref sgemmF32[slot], name, acc => acc.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, GemmShape>(GemmFastKernels.Sgemm8x8F32<Const4, Const2>, SgemmBounds)),
            _ => throw new ArgumentOutOfRangeException(nameof(tileThreads), $"No SGEMM variant for {tileThreads} tile threads and {rowHalves} row halves."),
        };
    }

    /// <summary>Which SGEMM serves aligned products (<c>GEMS_SGEMM_VARIANT</c>; tests set it directly).</summary>
    internal SgemmKernelVariant SgemmKernel { get; set; } = SgemmKernelChoice.FromEnvironment();

    /// <summary>How the flat tile stages a B [N, K] (<c>GEMS_SGEMM_FLAT_TB_STAGE</c>; tests set it directly).</summary>
    internal SgemmFlatTbStage SgemmFlatTbStaging { get; set; } = SgemmFlatTbStageChoice.FromEnvironment();

    /// <summary>Which kernel computes the short 64×256 tile of 17–64-row products (<c>GEMS_SGEMM_SHORT_VARIANT</c>; tests set it directly).</summary>
    internal SgemmShortVariant SgemmShortKernel { get; set; } = SgemmShortChoice.FromEnvironment();

    /// <summary>How the launched split-K reduces load the partials, float32 and 16-bit alike (<c>GEMS_SPLITK_REDUCE_LOADS</c>; tests set it directly).</summary>
    internal SplitKReduceLoads SplitKReduceLoading { get; set; } = SplitKReduceLoadsChoice.FromEnvironment();

    /// <summary>
    /// Most shared bytes the short tile's group may launch with (<see cref="Sm90aPtx.SharedLimit"/>: the opt-in limit on a
    /// compute-capability-9.0 device, else the default 48 KB): <c>pipe16k</c>'s 60 KB stages run only within it, else the
    /// short tile stays at K-tile 8. Tests lower it to check that fallback.
    /// </summary>
    internal int SgemmShortSharedLimit
    {
        get => sgemmShortSharedLimit ??= Sm90aPtx.SharedLimit(device.Accelerator);
        set => sgemmShortSharedLimit = value;
    }

    private int? sgemmShortSharedLimit;

    /// <summary>
    /// K-tile of the cp.async short tile for <paramref name="tileThreads"/> (16: GPUs' 64×256, 4: the simulator's 16×128):
    /// 16 under <c>pipe16k</c> / <c>pipe16kruns</c> when three stages of it fit <see cref="SgemmShortSharedLimit"/>, else 8.
    /// </summary>
    internal int AsyncShortKTile(int tileThreads)
    {
        var (rows, cols) = GemmFastKernels.WideTile(tileThreads, 1);
        return (SgemmShortKernel is SgemmShortVariant.AsyncPipeBk16 or SgemmShortVariant.AsyncPipeBk16Runs or SgemmShortVariant.AsyncPipeBk16Spread)
            && GemmFastKernels.AsyncShared(rows, cols, 16) * sizeof(float) <= SgemmShortSharedLimit ? 16 : 8;
    }

    /// <summary>
    /// Whether the warp-tiled 16-byte SGEMM can take this product: K a multiple of 4 (and N, for a [K, N] B), both views
    /// 16-byte aligned (every row and batch then is).
    /// </summary>
    internal static bool UsesSgemmWarpF32(ArrayView<float> a, ArrayView<float> b, int k, int n, bool transposeB) =>
        k % 4 == 0 && (transposeB || n % 4 == 0)
        && TensorCoreLaunch.DeviceAddress(a) % 16 == 0 && TensorCoreLaunch.DeviceAddress(b) % 16 == 0;

    /// <summary>
    /// The warp-tiled SGEMM compiled for (tile threads, row halves, K-tile): (4, 1|2, 4) on the simulator, (16, 1|2, 8) on
    /// GPUs; <paramref name="flat"/>: the one-warp-row tile for 8–16 rows, (4, 1, 4) or (16, 1, 8).
    /// </summary>
    private Action<KernelConfig, ArrayView<Float4>, ArrayView<Float4>, ArrayView<float>, ArrayView<float>, GemmShape> SgemmWarpLaunch(int tileThreads, int rowHalves, int bk, bool flat)
    {
        var name = $"{nameof(GemmFastKernels.SgemmWarpF32)}<{tileThreads},{rowHalves},{bk},{(flat ? 1 : 16)}>";
        int slot = flat ? (tileThreads == 4 ? 4 : 5) : (tileThreads == 4 ? 0 : 2) + rowHalves - 1;
        return (tileThreads, rowHalves, bk, flat) switch
        {
            (4, 1, 4, false) => device.Load(ref sgemmWarpF32[slot], name, acc => acc.LoadStreamKernel<ArrayView<Float4>, ArrayView<Float4>, ArrayView<float>, ArrayView<float>, GemmShape>(GemmFastKernels.SgemmWarpF32<Const4, Const1, Const4, Const16>, SgemmBounds)),
            (4, 2, 4, false) => device.Load(ref sgemmWarpF32[slot], name, acc => acc.LoadStreamKernel<ArrayView<Float4>, ArrayView<Float4>, ArrayView<float>, ArrayView<float>, GemmShape>(GemmFastKernels.SgemmWarpF32<Const4, Const2, Const4, Const16>, SgemmBounds)),
            (16, 1, 8, false) => device.Load(ref sgemmWarpF32[slot], name, acc => acc.LoadStreamKernel<ArrayView<Float4>, ArrayView<Float4>, ArrayView<float>, ArrayView<float>, GemmShape>(GemmFastKernels.SgemmWarpF32<Const16, Const1, Const8, Const16>, SgemmBounds)),
            (16, 2, 8, false) => device.Load(ref sgemmWarpF32[slot], name, acc => acc.LoadStreamKernel<ArrayView<Float4>, ArrayView<Float4>, ArrayView<float>, ArrayView<float>, GemmShape>(GemmFastKernels.SgemmWarpF32<Const16, Const2, Const8, Const16>, SgemmBounds)),
            (4, 1, 4, true) => device.Load(ref sgemmWarpF32[slot], name, acc => acc.LoadStreamKernel<ArrayView<Float4>, ArrayView<Float4>, ArrayView<float>, ArrayView<float>, GemmShape>(GemmFastKernels.SgemmWarpF32<Const4, Const1, Const4, Const1>, SgemmBounds)),
            (16, 1, 8, true) => device.Load(ref sgemmWarpF32[slot], name, acc => acc.LoadStreamKernel<ArrayView<Float4>, ArrayView<Float4>, ArrayView<float>, ArrayView<float>, GemmShape>(GemmFastKernels.SgemmWarpF32<Const16, Const1, Const8, Const1>, SgemmBounds)),
            _ => throw new ArgumentOutOfRangeException(nameof(tileThreads), $"No warp-tiled SGEMM for {tileThreads} tile threads, {rowHalves} row halves, K-tile {bk}, flat {flat}."),
        };
    }

    /// <summary>
    /// <c>SgemmWarpNkVecF32</c>, the flat tile for a B [N, K] with 16-byte shared stores (<c>GEMS_SGEMM_FLAT_TB_STAGE=vector</c>):
    /// (4, K-tile 4) on the simulator, (16, K-tile 8) on GPUs, as the flat <c>SgemmWarpF32</c> it stands in for.
    /// </summary>
    private Action<KernelConfig, ArrayView<Float4>, ArrayView<Float4>, ArrayView<float>, ArrayView<float>, GemmShape> SgemmWarpNkVecLaunch(int tileThreads, int bk)
    {
        var name = $"{nameof(GemmFastKernels.SgemmWarpNkVecF32)}<{tileThreads},1,{bk},1>";
        return (tileThreads, bk) switch
        {
            (4, 4) => device.Load(ref sgemmWarpNkVecF32[0], name, acc => acc.LoadStreamKernel<ArrayView<Float4>, ArrayView<Float4>, ArrayView<float>, ArrayView<float>, GemmShape>(GemmFastKernels.SgemmWarpNkVecF32<Const4, Const1, Const4, Const1>, SgemmBounds)),
            (16, 8) => device.Load(ref sgemmWarpNkVecF32[1], name, acc => acc.LoadStreamKernel<ArrayView<Float4>, ArrayView<Float4>, ArrayView<float>, ArrayView<float>, GemmShape>(GemmFastKernels.SgemmWarpNkVecF32<Const16, Const1, Const8, Const1>, SgemmBounds)),
            _ => throw new ArgumentOutOfRangeException(nameof(tileThreads), $"No SgemmWarpNkVecF32 for {tileThreads} tile threads, K-tile {bk}."),
        };
    }

    /// <summary>
    /// <c>SgemmWide8x16F32</c> for <paramref name="tileThreads"/> 16 (GPUs: 128 threads, <c>.maxntid 128</c> and
    /// <see cref="SgemmGroupsPerSm"/> groups per SM, so up to 255 registers at 2) or 4 (the simulator: 16 threads), with
    /// <paramref name="warpRows"/> 2 (square tile) or 1 (the short tile, warps side by side) and K-tile
    /// <paramref name="bk"/> (GPUs 16; the simulator 4, or 8 for the square tile).
    /// </summary>
    private Action<KernelConfig, ArrayView<Float4>, ArrayView<Float4>, ArrayView<float>, ArrayView<float>, GemmShape> SgemmWideLaunch(int tileThreads, int warpRows, int bk)
    {
        var name = $"{nameof(GemmFastKernels.SgemmWide8x16F32)}<{tileThreads},{warpRows},{bk}>";
        var bounds = Bounds(GemmFastKernels.WideThreads(tileThreads), SgemmGroupsPerSm);
        return (tileThreads, warpRows, bk) switch
        {
            (4, 1, 4) => device.Load(ref sgemmWideF32[0], name, acc => acc.LoadStreamKernel<ArrayView<Float4>, ArrayView<Float4>, ArrayView<float>, ArrayView<float>, GemmShape>(GemmFastKernels.SgemmWide8x16F32<Const4, Const1, Const4>, bounds)),
            (4, 2, 8) => device.Load(ref sgemmWideF32[1], name, acc => acc.LoadStreamKernel<ArrayView<Float4>, ArrayView<Float4>, ArrayView<float>, ArrayView<float>, GemmShape>(GemmFastKernels.SgemmWide8x16F32<Const4, Const2, Const8>, bounds)),
            (GemmFastKernels.MaxTileThreads, 1, 16) => device.Load(ref sgemmWideF32[2], name, acc => acc.LoadStreamKernel<ArrayView<Float4>, ArrayView<Float4>, ArrayView<float>, ArrayView<float>, GemmShape>(GemmFastKernels.SgemmWide8x16F32<Const16, Const1, Const16>, bounds)),
            (GemmFastKernels.MaxTileThreads, 2, 16) => device.Load(ref sgemmWideF32[3], name, acc => acc.LoadStreamKernel<ArrayView<Float4>, ArrayView<Float4>, ArrayView<float>, ArrayView<float>, GemmShape>(GemmFastKernels.SgemmWide8x16F32<Const16, Const2, Const16>, bounds)),
            _ => throw new ArgumentOutOfRangeException(nameof(tileThreads), $"No SgemmWide8x16F32 for {tileThreads} tile threads, {warpRows} warp rows, K-tile {bk}."),
        };
    }

    /// <summary>
    /// <c>SgemmAsyncPipe8x16F32</c> (B [K, N]) for (tile threads, K-tile, warp rows): the square tile (warp rows 2) at (4, 8)
    /// on the simulator and (16, 16) on GPUs, the short tile (warp rows 1) at (4, 8) and (16, 8), or at K-tile 16 (`pipe16k`). Launch bounds of
    /// <see cref="SgemmWideLaunch"/>.
    /// </summary>
    private Action<KernelConfig, ArrayView<Float4>, ArrayView<Float4>, ArrayView<float>, ArrayView<float>, GemmShape, SgemmAddresses> SgemmAsyncPipeLaunch(int tileThreads, int bk, int warpRows)
    {
        var name = $"{nameof(GemmFastKernels.SgemmAsyncPipe8x16F32)}<{tileThreads},{bk},{warpRows}>";
        var bounds = Bounds(GemmFastKernels.WideThreads(tileThreads), SgemmGroupsPerSm);
        return (tileThreads, bk, warpRows) switch
        {
            (4, 8, 2) => device.Load(ref sgemmAsyncPipeF32[0], name, acc => acc.LoadStreamKernel<ArrayView<Float4>, ArrayView<Float4>, ArrayView<float>, ArrayView<float>, GemmShape, SgemmAddresses>(GemmFastKernels.SgemmAsyncPipe8x16F32<Const4, Const8, Const2>, bounds)),
            (GemmFastKernels.MaxTileThreads, 16, 2) => device.Load(ref sgemmAsyncPipeF32[1], name, acc => acc.LoadStreamKernel<ArrayView<Float4>, ArrayView<Float4>, ArrayView<float>, ArrayView<float>, GemmShape, SgemmAddresses>(GemmFastKernels.SgemmAsyncPipe8x16F32<Const16, Const16, Const2>, bounds)),
            (4, 8, 1) => device.Load(ref sgemmAsyncPipeF32[2], name, acc => acc.LoadStreamKernel<ArrayView<Float4>, ArrayView<Float4>, ArrayView<float>, ArrayView<float>, GemmShape, SgemmAddresses>(GemmFastKernels.SgemmAsyncPipe8x16F32<Const4, Const8, Const1>, bounds)),
            (GemmFastKernels.MaxTileThreads, 8, 1) => device.Load(ref sgemmAsyncPipeF32[3], name, acc => acc.LoadStreamKernel<ArrayView<Float4>, ArrayView<Float4>, ArrayView<float>, ArrayView<float>, GemmShape, SgemmAddresses>(GemmFastKernels.SgemmAsyncPipe8x16F32<Const16, Const8, Const1>, bounds)),
            (4, 16, 1) => device.Load(ref sgemmAsyncPipeF32[4], name, acc => acc.LoadStreamKernel<ArrayView<Float4>, ArrayView<Float4>, ArrayView<float>, ArrayView<float>, GemmShape, SgemmAddresses>(GemmFastKernels.SgemmAsyncPipe8x16F32<Const4, Const16, Const1>, bounds)),
            (GemmFastKernels.MaxTileThreads, 16, 1) => device.Load(ref sgemmAsyncPipeF32[5], name, acc => acc.LoadStreamKernel<ArrayView<Float4>, ArrayView<Float4>, ArrayView<float>, ArrayView<float>, GemmShape, SgemmAddresses>(GemmFastKernels.SgemmAsyncPipe8x16F32<Const16, Const16, Const1>, bounds)),
            _ => throw new ArgumentOutOfRangeException(nameof(tileThreads), $"No SgemmAsyncPipe8x16F32 for {tileThreads} tile threads, K-tile {bk}, {warpRows} warp rows."),
        };
    }

    /// <summary>
    /// <c>SgemmAsyncPipeSpread8x16F32</c> (`pipe16kspread`: the short B [K, N] tile with its copies spread over the
    /// K-tile's steps) for (tile threads, K-tile): (4, 8 | 16) on the simulator, (16, 8 | 16) on GPUs. Launch bounds of
    /// <see cref="SgemmWideLaunch"/>.
    /// </summary>
    private Action<KernelConfig, ArrayView<Float4>, ArrayView<Float4>, ArrayView<float>, ArrayView<float>, GemmShape, SgemmAddresses> SgemmAsyncPipeSpreadLaunch(int tileThreads, int bk)
    {
        var name = $"{nameof(GemmFastKernels.SgemmAsyncPipeSpread8x16F32)}<{tileThreads},{bk},1>";
        var bounds = Bounds(GemmFastKernels.WideThreads(tileThreads), SgemmGroupsPerSm);
        return (tileThreads, bk) switch
        {
            (4, 8) => device.Load(ref sgemmAsyncPipeSpreadF32[0], name, acc => acc.LoadStreamKernel<ArrayView<Float4>, ArrayView<Float4>, ArrayView<float>, ArrayView<float>, GemmShape, SgemmAddresses>(GemmFastKernels.SgemmAsyncPipeSpread8x16F32<Const4, Const8, Const1>, bounds)),
            (GemmFastKernels.MaxTileThreads, 8) => device.Load(ref sgemmAsyncPipeSpreadF32[1], name, acc => acc.LoadStreamKernel<ArrayView<Float4>, ArrayView<Float4>, ArrayView<float>, ArrayView<float>, GemmShape, SgemmAddresses>(GemmFastKernels.SgemmAsyncPipeSpread8x16F32<Const16, Const8, Const1>, bounds)),
            (4, 16) => device.Load(ref sgemmAsyncPipeSpreadF32[2], name, acc => acc.LoadStreamKernel<ArrayView<Float4>, ArrayView<Float4>, ArrayView<float>, ArrayView<float>, GemmShape, SgemmAddresses>(GemmFastKernels.SgemmAsyncPipeSpread8x16F32<Const4, Const16, Const1>, bounds)),
            (GemmFastKernels.MaxTileThreads, 16) => device.Load(ref sgemmAsyncPipeSpreadF32[3], name, acc => acc.LoadStreamKernel<ArrayView<Float4>, ArrayView<Float4>, ArrayView<float>, ArrayView<float>, GemmShape, SgemmAddresses>(GemmFastKernels.SgemmAsyncPipeSpread8x16F32<Const16, Const16, Const1>, bounds)),
            _ => throw new ArgumentOutOfRangeException(nameof(tileThreads), $"No SgemmAsyncPipeSpread8x16F32 for {tileThreads} tile threads, K-tile {bk}."),
        };
    }

    /// <summary>
    /// <c>SgemmAsync8x16F32</c> for (tile threads, K-tile, B layout, warp rows): the square tile (warp rows 2) at (4, 8) on
    /// the simulator and (16, 16) on GPUs, the short tile (warp rows 1) at (4, 8) and (16, 8), and for B [N, K] at K-tile 16 (`pipe16k`); the launch bounds of
    /// <see cref="SgemmWideLaunch"/>.
    /// </summary>
    private Action<KernelConfig, ArrayView<Float4>, ArrayView<Float4>, ArrayView<float>, ArrayView<float>, GemmShape, SgemmAddresses> SgemmAsyncLaunch(int tileThreads, int bk, bool transposeB, int warpRows)
    {
        var name = $"{nameof(GemmFastKernels.SgemmAsync8x16F32)}<{tileThreads},{bk},{(transposeB ? 2 : 1)},{warpRows}>";
        var bounds = Bounds(GemmFastKernels.WideThreads(tileThreads), SgemmGroupsPerSm);
        return (tileThreads, bk, transposeB, warpRows) switch
        {
            (4, 8, false, 2) => device.Load(ref sgemmAsyncF32[0], name, acc => acc.LoadStreamKernel<ArrayView<Float4>, ArrayView<Float4>, ArrayView<float>, ArrayView<float>, GemmShape, SgemmAddresses>(GemmFastKernels.SgemmAsync8x16F32<Const4, Const8, Const1, Const2>, bounds)),
            (4, 8, true, 2) => device.Load(ref sgemmAsyncF32[1], name, acc => acc.LoadStreamKernel<ArrayView<Float4>, ArrayView<Float4>, ArrayView<float>, ArrayView<float>, GemmShape, SgemmAddresses>(GemmFastKernels.SgemmAsync8x16F32<Const4, Const8, Const2, Const2>, bounds)),
            (GemmFastKernels.MaxTileThreads, 16, false, 2) => device.Load(ref sgemmAsyncF32[2], name, acc => acc.LoadStreamKernel<ArrayView<Float4>, ArrayView<Float4>, ArrayView<float>, ArrayView<float>, GemmShape, SgemmAddresses>(GemmFastKernels.SgemmAsync8x16F32<Const16, Const16, Const1, Const2>, bounds)),
            (GemmFastKernels.MaxTileThreads, 16, true, 2) => device.Load(ref sgemmAsyncF32[3], name, acc => acc.LoadStreamKernel<ArrayView<Float4>, ArrayView<Float4>, ArrayView<float>, ArrayView<float>, GemmShape, SgemmAddresses>(GemmFastKernels.SgemmAsync8x16F32<Const16, Const16, Const2, Const2>, bounds)),
            (4, 8, false, 1) => device.Load(ref sgemmAsyncF32[4], name, acc => acc.LoadStreamKernel<ArrayView<Float4>, ArrayView<Float4>, ArrayView<float>, ArrayView<float>, GemmShape, SgemmAddresses>(GemmFastKernels.SgemmAsync8x16F32<Const4, Const8, Const1, Const1>, bounds)),
            (4, 8, true, 1) => device.Load(ref sgemmAsyncF32[5], name, acc => acc.LoadStreamKernel<ArrayView<Float4>, ArrayView<Float4>, ArrayView<float>, ArrayView<float>, GemmShape, SgemmAddresses>(GemmFastKernels.SgemmAsync8x16F32<Const4, Const8, Const2, Const1>, bounds)),
            (GemmFastKernels.MaxTileThreads, 8, false, 1) => device.Load(ref sgemmAsyncF32[6], name, acc => acc.LoadStreamKernel<ArrayView<Float4>, ArrayView<Float4>, ArrayView<float>, ArrayView<float>, GemmShape, SgemmAddresses>(GemmFastKernels.SgemmAsync8x16F32<Const16, Const8, Const1, Const1>, bounds)),
            (GemmFastKernels.MaxTileThreads, 8, true, 1) => device.Load(ref sgemmAsyncF32[7], name, acc => acc.LoadStreamKernel<ArrayView<Float4>, ArrayView<Float4>, ArrayView<float>, ArrayView<float>, GemmShape, SgemmAddresses>(GemmFastKernels.SgemmAsync8x16F32<Const16, Const8, Const2, Const1>, bounds)),
            (4, 16, true, 1) => device.Load(ref sgemmAsyncF32[8], name, acc => acc.LoadStreamKernel<ArrayView<Float4>, ArrayView<Float4>, ArrayView<float>, ArrayView<float>, GemmShape, SgemmAddresses>(GemmFastKernels.SgemmAsync8x16F32<Const4, Const16, Const2, Const1>, bounds)),
            (GemmFastKernels.MaxTileThreads, 16, true, 1) => device.Load(ref sgemmAsyncF32[9], name, acc => acc.LoadStreamKernel<ArrayView<Float4>, ArrayView<Float4>, ArrayView<float>, ArrayView<float>, GemmShape, SgemmAddresses>(GemmFastKernels.SgemmAsync8x16F32<Const16, Const16, Const2, Const1>, bounds)),
            _ => throw new ArgumentOutOfRangeException(nameof(tileThreads), $"No SgemmAsync8x16F32 for {tileThreads} tile threads, K-tile {bk}, {warpRows} warp rows."),
        };
    }

    /// <summary>
    /// Fewest rows that <see cref="SmallRowsProduct.Sgemm"/> sends to the flat SGEMM tile (fewer stay on the GEMV): 9 beside
    /// the pipelined GEMVs, which beat the flat tile at 8 rows (H200 Run 49: mm_tb 1400 → 1748 GB/s), 8 beside the older ones.
    /// Under <see cref="GemvF32Variant.Stream"/> products that take a streamed GEMV (<c>GemvNkStreamF32</c> for [N, K],
    /// <c>GemvKnStreamF32</c> for [K, N]) skip the flat tile at every row count.
    /// </summary>
    internal int FlatSgemmMinRows => GemvF32Kernel == GemvF32Variant.Vec ? 8 : 9;

    /// <summary>Which kernel serves 8–16-row products (<c>GEMS_F32_SMALLM</c>; tests set it directly).</summary>
    internal SmallRowsProduct SmallRowsKernel { get; set; } = SmallRowsChoice.FromEnvironment();

    /// <summary>The [K, N]-weight GEMV compiled for a row cap of 1, 2, 4, 8 or 16.</summary>
    private Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, GemvShape> GemvKnVariant(int rowsCap)
    {
        var name = $"{nameof(GemmFastKernels.GemvKnF32)}<{rowsCap}>";
        var slot = int.Log2(rowsCap);
        return rowsCap switch
        {
            1 => device.Load(ref gemvKnF32[slot], name, acc => acc.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, GemvShape>(GemmFastKernels.GemvKnF32<Const1>, GemvBounds)),
            2 => device.Load(ref gemvKnF32[slot], name, acc => acc.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, GemvShape>(GemmFastKernels.GemvKnF32<Const2>, GemvBounds)),
            4 => device.Load(ref gemvKnF32[slot], name, acc => acc.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, GemvShape>(GemmFastKernels.GemvKnF32<Const4>, GemvBounds)),
            8 => device.Load(ref gemvKnF32[slot], name, acc => acc.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, GemvShape>(GemmFastKernels.GemvKnF32<Const8>, GemvBounds)),
            16 => device.Load(ref gemvKnF32[slot], name, acc => acc.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, GemvShape>(GemmFastKernels.GemvKnF32<Const16>, GemvBounds)),
            _ => throw new ArgumentOutOfRangeException(nameof(rowsCap), rowsCap, "GEMV row caps are 1, 2, 4, 8 or 16."),
        };
    }

    /// <summary>The [N, K]-weight GEMV compiled for a row cap of 1, 2, 4, 8 or 16.</summary>
    private Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, GemvShape> GemvNkVariant(int rowsCap)
    {
        var name = $"{nameof(GemmFastKernels.GemvNkF32)}<{rowsCap}>";
        var slot = int.Log2(rowsCap);
        return rowsCap switch
        {
            1 => device.Load(ref gemvNkF32[slot], name, acc => acc.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, GemvShape>(GemmFastKernels.GemvNkF32<Const1>, GemvBounds)),
            2 => device.Load(ref gemvNkF32[slot], name, acc => acc.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, GemvShape>(GemmFastKernels.GemvNkF32<Const2>, GemvBounds)),
            4 => device.Load(ref gemvNkF32[slot], name, acc => acc.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, GemvShape>(GemmFastKernels.GemvNkF32<Const4>, GemvBounds)),
            8 => device.Load(ref gemvNkF32[slot], name, acc => acc.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, GemvShape>(GemmFastKernels.GemvNkF32<Const8>, GemvBounds)),
            16 => device.Load(ref gemvNkF32[slot], name, acc => acc.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, GemvShape>(GemmFastKernels.GemvNkF32<Const16>, GemvBounds)),
            _ => throw new ArgumentOutOfRangeException(nameof(rowsCap), rowsCap, "GEMV row caps are 1, 2, 4, 8 or 16."),
        };
    }

    /// <summary>
    /// The split-K partials buffer (grown on demand, kept): launches on the one stream run in order, so a later product
    /// reuses it safely; growing it waits for the device first, since earlier launches may still read the old one.
    /// </summary>
    private ArrayView<float> Scratch(long need) => Grown(ref gemvScratch, need, 1L << 16, zeroed: false);

    /// <summary>
    /// Decode products (one matrix, m ≤ 16): the weight is streamed once. [N, K] weights: the 16-byte kernels of
    /// <see cref="TryGemvNkVecF32"/>, else (K not a multiple of 4, misaligned views) a warp per output column with scalar loads;
    /// [K, N] weights: under <see cref="GemvF32Variant.Stream"/> <c>GemvKnStreamF32</c> when <see cref="UsesGemvKnStreamF32"/>
    /// (a group per 32 columns and all of K, one launch), else a group per 4·warp columns and a chunk of K (split-K so that
    /// ~4 groups per SM run; 16-byte loads when N is a multiple of 4 and the weight aligned, see <see cref="GemvKnLaunch"/>),
    /// partials summed by <see cref="GemmFastKernels.GemvReduceF32"/> when K is split.
    /// </summary>
    private void Gemv(ArrayView<float> a, ArrayView<float> b, ArrayView<float> bias, ArrayView<float> c, int m, int k, int n,
        bool transposeB, float alpha, float beta, bool biasIsMatrix)
    {
        int warp = device.WarpSize;
        int threads = Math.Max(warp, Math.Min(device.MaxGroupSize, 256) / warp * warp);
        int warps = threads / warp;

        // Accumulator count fixed at compile time: one kernel variant per power of two ≥ m (1, 2, 4, 8, 16). The kernels
        // read rows below the cap from shared memory (unused beyond m), so the chunk is sized for the cap.
        int cap = m <= 1 ? 1 : m <= 2 ? 2 : m <= 4 ? 4 : m <= 8 ? 8 : 16;
        int maxChunk = GemmFastKernels.MaxSharedA / cap;
        var g = new GemvShape
        {
            M = m,
            N = n,
            K = k,
            Alpha = alpha,
            Beta = beta,
            HasBias = bias.Length != 0 ? 1 : 0,
            BiasStrideM = biasIsMatrix ? n : 0,
        };
        if (transposeB)
        {
            if (TryGemvNkVecF32(a, b, bias, c, g))
            {
                return;
            }

            g.KChunk = Math.Min(k, maxChunk);
            g.Splits = 1;
            GemvNkVariant(cap)(new KernelConfig((n + warps - 1) / warps, threads), a, b, bias, c, g);
            return;
        }

        if (UsesGemvKnStreamF32(a, b, m, k, n))
        {
            GemvKnStreamF32(a, b, bias, c, g);
            return;
        }

        int cols = 4 * warp;
        int groupsX = (n + cols - 1) / cols;
        int target = Math.Max(1, device.MultiprocessorCount) * 4;
        int splits = Math.Max(1, (target + groupsX - 1) / groupsX);
        int chunk = Math.Clamp((k + splits - 1) / splits, 1, GemvKnChunkLimit(cap, b, n));
        splits = Math.Max(1, (k + chunk - 1) / chunk);
        g.KChunk = chunk;
        g.Splits = splits;
        g.Direct = splits == 1 ? 1 : 0;
        var partial = splits > 1 ? Scratch((long)splits * m * n) : c;

        GemvKnLaunch(cap, b, n)(new KernelConfig(new Index3D(groupsX, splits, 1), new Index3D(threads, 1, 1)), a, b, bias, c, partial, g);
        if (splits > 1)
        {
            ReduceSplitsF32(partial, bias, c, g);
        }
    }

    /// <summary>
    /// The most queries of a non-causal, unmasked call that run as a decode step with a head per (head, query) pair;
    /// the decode shapes go up to 64 rows. Beyond it the prefill kernels' groups of 32 or more queries fill the GPU.
    /// </summary>
    internal const int DecodeQueriesAsHeads = 64;

    /// <summary>
    /// The most (batch × head × query) pairs that run as decode heads where the tensor-core prefill would take the call with
    /// one group per query block walking every key: ~98 µs at 4096 keys whether 4 or 64 queries (Run 179, H200, 32 heads,
    /// 16 bits); the decode kernels re-read the keys once per 4 pairs, 27 µs for 128 pairs, 71 for 512, 211 for 2048: the
    /// two cross near 800.
    /// </summary>
    internal const int TensorCorePrefillQueryPairs = 768;

    /// <summary>
    /// The same where the wgmma prefill would split the keys into ranges (<see cref="WgmmaPrefillRanges"/>): 35 µs at 4
    /// queries and 36 at 16 (Runs 181–182) against the decode heads' 27 and 71, so those win only below about 200 pairs.
    /// </summary>
    internal const int SplitPrefillQueryPairs = 192;

    /// <summary>
    /// Whether a call's queries run as decode heads: a few queries that see every key, unmasked, are independent rows over
    /// the same keys, so [b, h, lq, d] is read as [b, h·lq, 1, d] and pair h·lq + i still reads key / value head
    /// h / (heads / kvHeads). The general prefill kernels give such a call one group per block of queries and head, far
    /// slower (Run 172: 16 float32 queries over 4096 keys ~7 ms on an H200 against 0.2 for one), so their callers pass no
    /// limit; a tensor-core or the tiled float32 prefill is faster beyond <paramref name="prefillPairs"/> (batch × head ×
    /// query) pairs.
    /// </summary>
    internal static bool QueriesRunAsHeads(int batch, int heads, int lq, bool causal, bool masked, long prefillPairs) =>
        lq > 1 && lq <= DecodeQueriesAsHeads && !causal && !masked && (long)heads * lq <= int.MaxValue
        && (long)batch * heads * lq <= prefillPairs;

    /// <summary>
    /// <c>aten::scaled_dot_product_attention</c> (no dropout): output = softmax(q·kᵀ·scale + mask) · v, flash-style
    /// (online softmax over key tiles). q and output [batch, heads, lq, d]; k and v [batch, kvHeads, lk, d] (grouped-query
    /// when kvHeads &lt; heads; heads must be a multiple of kvHeads). Causal is top-left (query i sees keys j ≤ i), as
    /// PyTorch's is_causal. A fully masked row gives zeros (libtorch 2.10). The additive mask is [lq, lk], [batch, lq, lk] or [batch, heads, lq, lk], or empty.
    /// On CUDA, head sizes 64 and 128 with 16-byte aligned views take the register-tiled kernel
    /// (<see cref="AttentionTiledKernels"/>); one query (or a few, as heads) the decode kernels; the rest the general one.
    /// </summary>
    /// <param name="q">Queries.</param>
    /// <param name="k">Keys.</param>
    /// <param name="v">Values.</param>
    /// <param name="output">Output, shaped as q.</param>
    /// <param name="batch">Batch size.</param>
    /// <param name="heads">Query heads.</param>
    /// <param name="kvHeads">Key / value heads.</param>
    /// <param name="lq">Query length.</param>
    /// <param name="lk">Key length.</param>
    /// <param name="headDim">Head dimension.</param>
    /// <param name="causal">Top-left causal masking.</param>
    /// <param name="mask">Additive float mask, or an empty view.</param>
    /// <param name="scale">Score scale; 1/√headDim when null.</param>
    public void ScaledDotProductAttention(ArrayView<float> q, ArrayView<float> k, ArrayView<float> v, ArrayView<float> output,
        int batch, int heads, int kvHeads, int lq, int lk, int headDim, bool causal = false, ArrayView<float> mask = default, float? scale = null)
    {
        var (maskBatch, maskHead) = CheckAttention(q, k, v, output, batch, heads, kvHeads, lq, lk, headDim, mask);

        if (batch * (long)lq == 0)
        {
            return;
        }

        float scaleValue = scale ?? 1f / MathF.Sqrt(headDim);
        int decodeGroup = Math.Min(Math.Min(device.MaxGroupSize, AttentionDecodeKernels.MaxGroup) / device.WarpSize * device.WarpSize, 256);

        long prefillPairs = UsesTiledAttention(q, k, v, output, lq, headDim) ? TiledPrefillQueryPairs : long.MaxValue;
        bool queriesAsHeads = QueriesRunAsHeads(batch, heads, lq, causal, mask.Length != 0, prefillPairs);
        int decodeHeads = queriesAsHeads ? heads * lq : heads;
        if ((lq == 1 || queriesAsHeads) && headDim <= decodeGroup && headDim <= AttentionDecodeKernels.MaxD && !IsShortDecode(1, lk))
        {
            var decode = new AttentionShape
            {
                Heads = decodeHeads,
                KvHeads = kvHeads,
                Lq = 1,
                Lk = lk,
                D = headDim,
                Scale = scaleValue,
                Causal = causal ? 1 : 0,
                HasMask = mask.Length != 0 ? 1 : 0,
                MaskBatch = maskBatch,
                MaskHead = maskHead,
                MaskRow = lk,
            };
            DecodeAttention(q, k, v, mask, output, batch, decodeHeads, causal ? Math.Min(1, lk) : lk, decodeGroup, decode);
            return;
        }

        var shape = new AttentionShape
        {
            Heads = heads,
            KvHeads = kvHeads,
            Lq = lq,
            Lk = lk,
            D = headDim,
            Scale = scaleValue,
            Causal = causal ? 1 : 0,
            HasMask = mask.Length != 0 ? 1 : 0,
            MaskBatch = maskBatch,
            MaskHead = maskHead,
            MaskRow = lk,
        };
        if (!IsShortDecode(lq, lk) && TryTiledAttentionF32(q, k, v, mask, output, batch, shape))
        {
            return;
        }

        int group = Math.Min(device.MaxGroupSize, 128);
        var (blockQ, blockK, sharedFloats) = AttentionBlocks(headDim);
        shape.BlockQ = blockQ;
        shape.BlockK = blockK;
        var config = new KernelConfig(new Index3D((lq + blockQ - 1) / blockQ, heads, batch), new Index3D(group, 1, 1),
            SharedMemoryConfig.RequestDynamic<float>(sharedFloats));
        device.Load(ref attentionF32, nameof(AttentionKernels.AttentionF32),
            acc => acc.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, AttentionShape>(AttentionKernels.AttentionF32))(
            config, q, k, v, mask, output, shape);
    }

    /// <summary>
    /// Flash-decoding for lq = 1: the wide kernel (<see cref="AttentionDecodeWideKernels"/>) when the head size and
    /// alignment allow, else <see cref="AttentionDecodeKernels.DecodeSplitF32"/> (head sizes that are not a multiple of 4
    /// or above the wide kernel's, unaligned views) with chunks of 256 keys (4 on the simulator so that tests cross
    /// chunks); a partial (max, sum, output) per chunk, then one combine launch.
    /// </summary>
    private void DecodeAttention(ArrayView<float> q, ArrayView<float> k, ArrayView<float> v, ArrayView<float> mask, ArrayView<float> output,
        int batch, int heads, int kEnd, int group, AttentionShape shape)
    {
        if (TryWideDecodeF32(q, k, v, mask, output, batch, kEnd, shape))
        {
            return;
        }

        int chunk = device.Kind == IlgpuDeviceKind.CpuSimulator ? 4 : AttentionDecodeKernels.MaxChunk;
        int splits = Math.Max(1, (kEnd + chunk - 1) / chunk);
        var (partO, partML) = DecodePartials((long)batch * heads * splits, shape.D);
        device.Load(ref decodeSplitF32, nameof(AttentionDecodeKernels.DecodeSplitF32),
            acc => acc.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, AttentionShape, int, int>(
                AttentionDecodeKernels.DecodeSplitF32, GemvBounds))(
            new KernelConfig(new Index3D(splits, heads, batch), new Index3D(group, 1, 1)), q, k, v, mask, partO, partML, shape, chunk, kEnd);
        CombineDecodeF32(partO, partML, output, batch, shape, splits);
    }
}

/// <summary>The SGEMM occupancy setting (<c>GEMS_SGEMM_GROUPS_PER_SM</c>).</summary>
internal static class SgemmOccupancy
{
    /// <summary>Environment variable: <c>1</c> or <c>2</c> groups per SM (default 2).</summary>
    public const string Variable = "GEMS_SGEMM_GROUPS_PER_SM";

    private static readonly Lazy<int> FromVariable = new(() => Parse(Environment.GetEnvironmentVariable(Variable)));

    /// <summary>The setting of this process.</summary>
    public static int FromEnvironment() => FromVariable.Value;

    /// <summary>1 when the setting says 1 (surrounding spaces ignored), else 2.</summary>
    public static int Parse(string? setting) => setting?.Trim() == "1" ? 1 : 2;
}

/// <summary>The float32 SGEMM kernels that <c>GEMS_SGEMM_VARIANT</c> selects between.</summary>
internal enum SgemmKernelVariant
{
    /// <summary><c>Sgemm8x8F32</c> (16×2 lanes per warp, scalar global loads, K-tile 8) and its split-K rule.</summary>
    Legacy,

    /// <summary><c>SgemmWarpF32</c> with K-tile 8 (4×8 lanes per warp, 16-byte global loads), one-wave split-K.</summary>
    WarpBk8,

    /// <summary>
    /// <c>SgemmWide8x16F32</c> (128 threads, 8×16 outputs each, K-tile 16): 128×128 tiles for products over 64 rows,
    /// 64×256 for 17–64 rows (and below 8 when the GEMV is off); the flat tile (K-tile 8) for 8–16 rows, as <c>warp8</c>.
    /// </summary>
    Wide8x16Bk16,

    /// <summary>
    /// As <see cref="Wide8x16Bk16"/>, but the square 128×128 tile is <c>SgemmAsync8x16F32</c>: three shared stages filled
    /// by cp.async, no staging registers.
    /// </summary>
    Async8x16,

    /// <summary>
    /// As <see cref="Async8x16"/>, but a B [K, N] square tile is <c>SgemmAsyncPipe8x16F32</c>: fragments of the next K step
    /// read during the current one's FMAs, and a cheaper per-tile copy issue (B [N, K] stays on <c>SgemmAsync8x16F32</c>).
    /// </summary>
    AsyncPipe8x16,
}

/// <summary>
/// The SGEMM kernel setting (<c>GEMS_SGEMM_VARIANT</c>): <c>legacy</c>, <c>warp8</c>, <c>wide16</c>, <c>async16</c> or
/// <c>pipe16</c> (default).
/// </summary>
internal static class SgemmKernelChoice
{
    /// <summary>Environment variable naming the SGEMM kernel.</summary>
    public const string Variable = "GEMS_SGEMM_VARIANT";

    private static readonly Lazy<SgemmKernelVariant> FromVariable = new(() => Parse(Environment.GetEnvironmentVariable(Variable)));

    /// <summary>The setting of this process (read once).</summary>
    public static SgemmKernelVariant FromEnvironment() => FromVariable.Value;

    /// <summary>
    /// <c>legacy</c>, <c>warp8</c>, <c>wide16</c> and <c>async16</c> (any case, surrounding spaces ignored) select those;
    /// anything else <c>pipe16</c>, the fastest at every shape of the H200 sweeps (4096³: <c>warp8</c> 33.6, <c>wide16</c>
    /// 36.8, <c>async16</c> 39.0, <c>pipe16</c> 42.8 TFLOP/s; 256×4096×4096 0.283 → 0.246 → 0.228 ms; Runs 18, 20 and 23;
    /// a variant with the barrier before each tile's last step reached 41.3 and was removed).
    /// </summary>
    public static SgemmKernelVariant Parse(string? setting) => setting?.Trim().ToLowerInvariant() switch
    {
        "legacy" => SgemmKernelVariant.Legacy,
        "warp8" => SgemmKernelVariant.WarpBk8,
        "wide16" => SgemmKernelVariant.Wide8x16Bk16,
        "async16" => SgemmKernelVariant.Async8x16,
        _ => SgemmKernelVariant.AsyncPipe8x16,
    };
}

/// <summary>The kernels that <c>GEMS_SGEMM_SHORT_VARIANT</c> selects between for the short tile of 17–64-row products.</summary>
internal enum SgemmShortVariant
{
    /// <summary><c>SgemmWide8x16F32</c>'s 64×256 tile: staging registers, two shared buffers, K-tile 16 (the default before Run 35).</summary>
    Wide,

    /// <summary>
    /// <c>SgemmAsync8x16F32</c>'s 64×256 tile (TWarpRows 1): three shared stages filled by cp.async, K-tile 8, no staging
    /// registers.
    /// </summary>
    Async,

    /// <summary>As <see cref="Async"/>, but a B [K, N] short tile is <c>SgemmAsyncPipe8x16F32</c>'s (rotated fragments).</summary>
    AsyncPipe,

    /// <summary>
    /// <see cref="AsyncPipe"/>'s kernels at K-tile 16 (half the barriers per multiply-add): three 64×256 stages are 60 KB,
    /// so a GPU group needs the opt-in shared limit (the kernel carries <see cref="Sm90aPtx.OptInSharedMarker"/>); where
    /// the device cannot give it, <see cref="AsyncPipe"/> itself (<c>pipe16k</c>; the default before Run 49).
    /// </summary>
    AsyncPipeBk16,

    /// <summary>
    /// <see cref="AsyncPipeBk16"/> whose B [K, N] kernel writes C (or the split-K partials) in 16-byte runs of 4 columns
    /// where N is a multiple of 4, C is 16-byte aligned and there is no bias term (the same values; a quarter of the
    /// epilogue's stores and guards). The default: H200 Run 49, mm float32 64×4096·4096 790 → 1055 GB/s.
    /// </summary>
    AsyncPipeBk16Runs,

    /// <summary>
    /// <see cref="AsyncPipeBk16Runs"/> whose B [K, N] kernel is <c>SgemmAsyncPipeSpread8x16F32</c>: the K-tile's steps
    /// written out and the next copies issued in shares between them (one straight-line block per K-tile).
    /// </summary>
    AsyncPipeBk16Spread,
}

/// <summary>
/// The short-tile setting (<c>GEMS_SGEMM_SHORT_VARIANT</c>): <c>pipe16kruns</c> (default), <c>pipe16k</c>, <c>pipe16kspread</c>, <c>pipe</c>, <c>async</c> or <c>wide</c>; it applies to the
/// <c>wide16</c>, <c>async16</c> and <c>pipe16</c> SGEMM variants, whose 17–64-row products take the short tile.
/// </summary>
internal static class SgemmShortChoice
{
    /// <summary>Environment variable naming the short-tile kernel.</summary>
    public const string Variable = "GEMS_SGEMM_SHORT_VARIANT";

    private static readonly Lazy<SgemmShortVariant> FromVariable = new(() => Parse(Environment.GetEnvironmentVariable(Variable)));

    /// <summary>The setting of this process (read once).</summary>
    public static SgemmShortVariant FromEnvironment() => FromVariable.Value;

    /// <summary>
    /// <c>wide</c>, <c>async</c>, <c>pipe</c>, <c>pipe16k</c> and <c>pipe16kspread</c> (any case, surrounding spaces ignored) select those short tiles;
    /// anything else the default, <c>pipe16kruns</c>.
    /// </summary>
    public static SgemmShortVariant Parse(string? setting) => setting?.Trim().ToLowerInvariant() switch
    {
        "wide" => SgemmShortVariant.Wide,
        "async" => SgemmShortVariant.Async,
        "pipe" => SgemmShortVariant.AsyncPipe,
        "pipe16kruns" => SgemmShortVariant.AsyncPipeBk16Runs,
        "pipe16kspread" => SgemmShortVariant.AsyncPipeBk16Spread,
        "pipe16k" => SgemmShortVariant.AsyncPipeBk16,
        _ => SgemmShortVariant.AsyncPipeBk16Runs,
    };
}

/// <summary>The launched split-K reduces (float32 and 16-bit outputs) that <c>GEMS_SPLITK_REDUCE_LOADS</c> selects between.</summary>
internal enum SplitKReduceLoads
{
    /// <summary><c>GemvReduceF32</c> / <c>GemvReduce16</c>: one element per thread and step, 4 scalar loads in flight (the default).</summary>
    Elements,

    /// <summary>
    /// <c>runs</c>: <c>GemvReduceRunsF32</c> / <c>GemvReduceRuns16</c>, 4 consecutive elements per thread and step, 16-byte
    /// partial loads, 8 splits per step, where N is a multiple of 4 and the partials (16 bytes) and C (one run: 16 or 8 bytes) are
    /// aligned (else <see cref="Elements"/>); the same bits.
    /// </summary>
    Runs,
}

/// <summary>The <c>GEMS_SPLITK_REDUCE_LOADS</c> setting.</summary>
internal static class SplitKReduceLoadsChoice
{
    private static readonly Lazy<SplitKReduceLoads> FromVariable = new(() => Parse(Environment.GetEnvironmentVariable("GEMS_SPLITK_REDUCE_LOADS")));

    /// <summary>The setting of this process (read once).</summary>
    public static SplitKReduceLoads FromEnvironment() => FromVariable.Value;

    /// <summary><c>runs</c> (any case, trimmed) selects <see cref="SplitKReduceLoads.Runs"/>; anything else, unset included, the default.</summary>
    public static SplitKReduceLoads Parse(string? setting) => setting?.Trim().ToLowerInvariant() switch
    {
        "runs" => SplitKReduceLoads.Runs,
        _ => SplitKReduceLoads.Elements,
    };
}

/// <summary>The kernels that <c>GEMS_F32_SMALLM</c> selects between for batch-1 products of 8–16 rows.</summary>
internal enum SmallRowsProduct
{
    /// <summary>The warp-tiled SGEMM's flat 16×512 tile, split-K to one wave (aligned operands only; others stay on the GEMV).</summary>
    Sgemm,

    /// <summary>The decode GEMVs (<c>GemvKnVecF32</c>, <c>GemvNkVecF32</c>): one weight pass, A staged in shared memory.</summary>
    Gemv,
}

/// <summary>
/// The small-row product setting (<c>GEMS_F32_SMALLM</c>): <c>sgemm</c> (default) or <c>gemv</c>. The flat tile won on the
/// H200 (Run 14: 16×11008·4096 0.161 → 0.087 ms as mm, 0.215 → 0.108 ms as mm_tb, ahead of cuBLAS's 0.122 / 0.116).
/// </summary>
internal static class SmallRowsChoice
{
    /// <summary>Environment variable naming the kernel for 8–16-row products.</summary>
    public const string Variable = "GEMS_F32_SMALLM";

    private static readonly Lazy<SmallRowsProduct> FromVariable = new(() => Parse(Environment.GetEnvironmentVariable(Variable)));

    /// <summary>The setting of this process (read once).</summary>
    public static SmallRowsProduct FromEnvironment() => FromVariable.Value;

    /// <summary><c>gemv</c> (any case, surrounding spaces ignored) selects the GEMVs; anything else the flat SGEMM.</summary>
    public static SmallRowsProduct Parse(string? setting) => setting?.Trim().ToLowerInvariant() == "gemv" ? SmallRowsProduct.Gemv : SmallRowsProduct.Sgemm;
}
