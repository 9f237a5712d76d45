using System;
using ILGPU;

namespace GemsInjector.Kernels.Ilgpu;

/// <summary>Shape and strides of a (batched) float32 GEMM: C[b] = alpha·A[b]·B[b] + beta·bias.</summary>
internal struct GemmShape
{
    public int M;
    public int N;
    public int K;

    /// <summary>Element strides of A (row m, column k) and B (row k, column n): transposes are stride swaps.</summary>
    public long StrideAm;
    public long StrideAk;
    public long StrideBk;
    public long StrideBn;

    /// <summary>Per-batch offsets of A, B, C (C is contiguous [batch, M, N]) and the bias.</summary>
    public long BatchA;
    public long BatchB;
    public long BatchC;
    public long BatchBias;

    /// <summary>Bias strides (0 to broadcast a row or column).</summary>
    public long StrideBiasM;
    public long StrideBiasN;
    public float Alpha;
    public float Beta;
    public int HasBias;

    /// <summary>Register-tiled SGEMM only: threads per tile edge (tile = 8·TileThreads square) and the K-tile.</summary>
    public int TileThreads;
    public int Bk;

    /// <summary>Register-tiled SGEMM only: K split over Grid.Z (batch must be 1) into chunks of KChunk; C then receives
    /// the [SplitK, M, N] partial products (alpha and bias applied by the reduce kernel).</summary>
    public int SplitK;
    public int KChunk;

    /// <summary>
    /// Nonzero: a register-tiled SGEMM that has the 16-byte epilogue (<c>SgemmWarpF32</c>, <c>SgemmAsyncPipe8x16F32</c>)
    /// writes C in runs of 4 columns (<see cref="GemmFastKernels.StoreRun"/>). The launcher sets it only where that writes
    /// what the per-element stores would: N a multiple of 4, C 16-byte aligned, and no bias term.
    /// </summary>
    public int StoreRuns;
}

/// <summary>
/// Tiled shared-memory SGEMM: a group of T×T threads (T = 16 on CUDA, 4 on the simulator) computes a T×T tile of C,
/// staging T×T tiles of A and B through shared memory. Grid (⌈N/T⌉, ⌈M/T⌉, batch). Correct for any strides;
/// not tuned (no register blocking, no tensor cores).
/// </summary>
internal static class GemmKernels
{
    /// <summary>Largest tile edge (shared tiles are allocated for it).</summary>
    public const int MaxTile = 16;

    /// <summary>C = alpha·A·B (+ beta·bias when HasBias ≠ 0 and beta ≠ 0).</summary>
    [IlgpuKernel]
    public static void GemmF32(ArrayView<float> a, ArrayView<float> b, ArrayView<float> bias, ArrayView<float> c, GemmShape s)
    {
        var tileA = SharedMemory.Allocate<float>(MaxTile * MaxTile);
        var tileB = SharedMemory.Allocate<float>(MaxTile * MaxTile);
        int t = Group.DimX;
        int tx = Group.IdxX;
        int ty = Group.IdxY;
        int row = Grid.IdxY * t + ty;
        int col = Grid.IdxX * t + tx;
        long batch = Grid.IdxZ;
        long aBase = batch * s.BatchA;
        long bBase = batch * s.BatchB;
        float acc = 0f;
        for (int k0 = 0; k0 < s.K; k0 += t)
        {
            int ka = k0 + tx;
            tileA[ty * t + tx] = row < s.M && ka < s.K ? a[aBase + row * s.StrideAm + ka * s.StrideAk] : 0f;
            int kb = k0 + ty;
            tileB[ty * t + tx] = kb < s.K && col < s.N ? b[bBase + kb * s.StrideBk + col * s.StrideBn] : 0f;
            Group.Barrier();
            for (int kk = 0; kk < t; kk++)
            {
                acc += tileA[ty * t + kk] * tileB[kk * t + tx];
            }

            Group.Barrier();
        }

        if (row < s.M && col < s.N)
        {
            float v = s.Alpha * acc;
            if (s.HasBias != 0 && s.Beta != 0f)
            {
                v += s.Beta * bias[batch * s.BatchBias + row * s.StrideBiasM + col * s.StrideBiasN];
            }

            c[batch * s.BatchC + (long)row * s.N + col] = v;
        }
    }
}

/// <summary>How the flat SGEMM tile (8–16 rows) stages a B stored [N, K] into shared memory (<c>GEMS_SGEMM_FLAT_TB_STAGE</c>).</summary>
internal enum SgemmFlatTbStage
{
    /// <summary>
    /// <c>scalar</c>: <c>SgemmWarpF32</c>'s k-major B tile, each staged 16-byte vector (4 k of one column) written as 4
    /// scalar shared stores (the default until Run 57: 13% slower at 16 × 11008, H200).
    /// </summary>
    Scalar,

    /// <summary>
    /// <c>vector</c> (the default): <c>SgemmWarpNkVecF32</c>, an n-major B tile (a vector of padding per 4-column group), one
    /// 16-byte shared store per staged vector and 16-byte fragment loads of 4 k × 1 column; the same bits of C.
    /// </summary>
    Vector,
}

/// <summary>The <c>GEMS_SGEMM_FLAT_TB_STAGE</c> setting: <c>vector</c> (default) or <c>scalar</c>.</summary>
internal static class SgemmFlatTbStageChoice
{
    /// <summary>Environment variable naming the flat tile's [N, K] staging.</summary>
    public const string Variable = "GEMS_SGEMM_FLAT_TB_STAGE";

    private static readonly Lazy<SgemmFlatTbStage> FromVariable = new(() => Parse(Environment.GetEnvironmentVariable(Variable)));

    /// <summary>The setting of this process (read once).</summary>
    public static SgemmFlatTbStage FromEnvironment() => FromVariable.Value;

    /// <summary><c>scalar</c> (any case, surrounding spaces ignored) selects <see cref="SgemmFlatTbStage.Scalar"/>; anything else, unset included, the default <see cref="SgemmFlatTbStage.Vector"/>.</summary>
    public static SgemmFlatTbStage Parse(string? setting) => setting?.Trim().ToLowerInvariant() == "scalar" ? SgemmFlatTbStage.Scalar : SgemmFlatTbStage.Vector;
}
