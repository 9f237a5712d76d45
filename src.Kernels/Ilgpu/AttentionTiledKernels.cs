using System;
using System.Runtime.CompilerServices;
using ILGPU;

namespace GemsInjector.Kernels.Ilgpu;

/// <summary>
/// Attention prefill tiled in registers, as an SGEMM is, for head sizes 64 and 128: float32, and 16-bit tensors widened
/// to float32 as they are staged where the tensor-core kernels do not take the call (their head size is 128). The general
/// kernels (<see cref="AttentionKernels.AttentionF32"/>, <see cref="HalfMatrixKernels.Attention16"/>) compute each score
/// as one thread's dot product over shared memory: 2.7 TFLOP/s on an H200 against PyTorch's 11 in float32. A group of
/// <see cref="Threads"/> threads takes <see cref="BlockQ"/> queries of one head and walks the keys in tiles of
/// <see cref="BlockK"/>: thread (row group r, column lane c) owns query rows r + 16i and keys c + 8j (i, j &lt; 4), so each step over 4 dims reads 8 16-byte
/// vectors of shared memory for 64 multiply-adds, and the 8 lanes of a row group are adjacent lanes of one warp, whose
/// row maximum takes three shuffles. The weights go through shared memory to the value product, where the thread owns
/// dims 4c + 32jq (16-byte vectors, jq &lt; D / 32) of the same rows, so the online softmax's rescale of a row needs
/// nothing from another thread; each lane keeps its own part of a row's sum, added across the lanes once at the end.
/// Scores are kept in base 2 (the scale times log2 e; <see cref="GpuMath.Exp2Fast"/>). Causal is top-left, as
/// <see cref="AttentionKernels.AttentionF32"/>'s; only the tiles on the diagonal or the keys' end check each score.
/// Shared memory (16-byte vectors): the query tile (rows padded by one vector, so the four rows a warp reads at once sit
/// on different banks), the key tile (the same padding), whose space then holds the weights, and the value tile.
/// Where the query blocks leave the GPU idle the keys can be split into ranges (<see cref="TiledSplit"/>): each group
/// then writes partials that the decode combine merges.
/// </summary>
internal static partial class AttentionTiledKernels
{
    /// <summary>Threads per group: 16 row groups of <see cref="ColumnLanes"/> lanes.</summary>
    public const int Threads = 128;

    /// <summary>Lanes that share a query row (adjacent lanes of one warp).</summary>
    public const int ColumnLanes = 8;

    /// <summary>Queries per group.</summary>
    public const int BlockQ = 64;

    /// <summary>Keys per tile.</summary>
    public const int BlockK = 32;

    /// <summary>
    /// Row stride of the weights in shared memory, in floats: 8 more than a tile's keys, so the 4 row groups of a warp
    /// write their 8 lanes' weights to 32 different banks.
    /// </summary>
    public const int WeightStride = BlockK + 8;

    /// <summary>Groups per SM the launch bounds ask for (67 KB of shared memory each at D = 128; at most 168 registers).</summary>
    public const int GroupsPerSm = 3;

    private const float Log2E = 1.44269504088896341f;

    private const float Ln2 = 0.693147180559945309f;

    /// <summary>Head sizes the kernel has a variant for.</summary>
    public static bool HasHeadSize(int headDim) => headDim == 64 || headDim == 128;

    /// <summary>Dynamic shared bytes of a group at head size <c>32 · quads</c>.</summary>
    public static int SharedBytes(int quads) => 16 * ((BlockQ * ((8 * quads) + 1)) + KeyOrWeightVecs(quads) + (BlockK * 8 * quads));

    /// <summary>16-byte vectors of the space that holds the key tile, then the weights.</summary>
    private static int KeyOrWeightVecs(int quads) => Math.Max(BlockK * ((8 * quads) + 1), BlockQ * WeightStride / 4);

    /// <summary>The tiled prefill over float32 q, k, v and output (the body: <see cref="Body{TVec, TOut, TIo, TDimQuads}"/>).</summary>
    [IlgpuKernel]
    [IlgpuKernelVariant(typeof(Const2))]
    [IlgpuKernelVariant(typeof(Const4))]
    public static void AttentionTiledF32<TDimQuads>(ArrayView<Float4> q, ArrayView<Float4> k, ArrayView<Float4> v, ArrayView<float> mask, ArrayView<Float4> output,
        ArrayView<Float4> partO, ArrayView<float> partML, AttentionShape s, TiledSplit split)
        where TDimQuads : struct, IKernelConstant =>
        Body<Float4, Float4, Float32TiledIo, TDimQuads>(q, k, v, mask, output, partO, partML, s, split);

    /// <summary>
    /// The tiled prefill over 16-bit q, k, v and output (TFormat: float16 or bfloat16 storage): the tiles widened to
    /// float32 as they are staged, the output rounded once; the partials of a split stay float32.
    /// </summary>
    [IlgpuKernel]
    [IlgpuKernelVariant(typeof(Const2), typeof(Float16Storage))]
    [IlgpuKernelVariant(typeof(Const2), typeof(BFloat16Storage))]
    [IlgpuKernelVariant(typeof(Const4), typeof(Float16Storage))]
    [IlgpuKernelVariant(typeof(Const4), typeof(BFloat16Storage))]
    public static void AttentionTiled16<TDimQuads, TFormat>(ArrayView<Half8> q, ArrayView<Half8> k, ArrayView<Half8> v, ArrayView<float> mask, ArrayView<uint> output,
        ArrayView<Float4> partO, ArrayView<float> partML, AttentionShape s, TiledSplit split)
        where TDimQuads : struct, IKernelConstant
        where TFormat : struct, IKernelConstant =>
        Body<Half8, uint, Half16TiledIo<TFormat>, TDimQuads>(q, k, v, mask, output, partO, partML, s, split);

    /// <summary>
    /// A score of a tile that needs checking, in log2 units: −∞ for a key past the end or (causal) after the query;
    /// with a mask, (dot · scale + mask) · log2 e (rows past the queries' end read no mask: they are never stored).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float EdgeScore(float dot, float scaled, ArrayView<float> mask, AttentionShape s, long maskBase, int query, int key)
    {
        if (key >= s.Lk || (s.Causal != 0 && key > query))
        {
            return GpuMath.NegInf;
        }

        return s.HasMask != 0 && query < s.Lq ? ((dot * s.Scale) + mask[maskBase + (query * s.MaskRow) + key]) * Log2E : scaled;
    }

    /// <summary>The maximum over the <see cref="ColumnLanes"/> lanes of a row group (NaN wins, as <see cref="GpuMath.MaxNaN"/>).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float RowMax(float value)
    {
        value = GpuMath.MaxNaN(value, Warp.ShuffleXor(value, 1));
        value = GpuMath.MaxNaN(value, Warp.ShuffleXor(value, 2));
        return GpuMath.MaxNaN(value, Warp.ShuffleXor(value, 4));
    }

    /// <summary>The sum over the <see cref="ColumnLanes"/> lanes of a row group.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float RowSum(float value)
    {
        value += Warp.ShuffleXor(value, 1);
        value += Warp.ShuffleXor(value, 2);
        return value + Warp.ShuffleXor(value, 4);
    }

    /// <summary>Four outputs over the row's sum; zeros for a row that saw no key (fully masked), as the general kernels.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Float4 Normalized(float x, float y, float z, float w, float sum) =>
        sum == 0f ? default : new Float4 { X = x / sum, Y = y / sum, Z = z / sum, W = w / sum };
}

/// <summary>
/// The key ranges of a split call of <see cref="AttentionTiledKernels.AttentionTiledF32{TDimQuads}"/>: <see cref="Count"/>
/// ranges of <see cref="Keys"/> keys (a multiple of the key tile; the last may be shorter); a count of 1 is the whole
/// call, which writes the output itself.
/// </summary>
internal struct TiledSplit
{
    /// <summary>Keys per range.</summary>
    public int Keys;

    /// <summary>Ranges per (head, query block, batch).</summary>
    public int Count;

    /// <summary>The whole call: one range of every key.</summary>
    public static TiledSplit Whole(int lk) => new() { Keys = Math.Max(lk, 1), Count = 1 };
}

/// <summary>How a tiled attention kernel reads its inputs into float32 shared memory and writes its output.</summary>
/// <typeparam name="TVec">A 16-byte vector of q, k or v.</typeparam>
/// <typeparam name="TOut">The output's element view type.</typeparam>
internal interface ITiledAttentionIo<TVec, TOut>
    where TVec : unmanaged
    where TOut : unmanaged
{
    /// <summary>Float32 shared vectors per input vector: 1 for float32, 2 for 8 16-bit values.</summary>
    int SharedVecsPerInput { get; }

    /// <summary>Writes one input vector (widened) to shared memory at vector <paramref name="at"/>.</summary>
    void Stage(ArrayView<Float4> shared, int at, TVec value);

    /// <summary>Writes four outputs at float32-vector index <paramref name="at"/> of the output (4 · at is the element).</summary>
    void Store(ArrayView<TOut> output, long at, Float4 value);
}

/// <summary>Float32 in and out: vectors copied as they are.</summary>
internal readonly struct Float32TiledIo : ITiledAttentionIo<Float4, Float4>
{
    public int SharedVecsPerInput => 1;

    public void Stage(ArrayView<Float4> shared, int at, Float4 value) => shared[at] = value;

    public void Store(ArrayView<Float4> output, long at, Float4 value) => output[at] = value;
}

/// <summary>16-bit in and out (TFormat: float16 or bfloat16 storage): 8 values widened per input vector, outputs rounded in pairs.</summary>
internal readonly struct Half16TiledIo<TFormat> : ITiledAttentionIo<Half8, uint>
    where TFormat : struct, IKernelConstant
{
    public int SharedVecsPerInput => 2;

    public void Stage(ArrayView<Float4> shared, int at, Half8 value)
    {
        int bf16 = default(TFormat).Value;
        shared[at] = new Float4 { X = Low(value.X, bf16), Y = High(value.X, bf16), Z = Low(value.Y, bf16), W = High(value.Y, bf16) };
        shared[at + 1] = new Float4 { X = Low(value.Z, bf16), Y = High(value.Z, bf16), Z = Low(value.W, bf16), W = High(value.W, bf16) };
    }

    public void Store(ArrayView<uint> output, long at, Float4 value)
    {
        int bf16 = default(TFormat).Value;
        output[2 * at] = GpuMath.Store16Pair(value.X, value.Y, bf16);
        output[(2 * at) + 1] = GpuMath.Store16Pair(value.Z, value.W, bf16);
    }

    private static float Low(uint pair, int bf16) => GpuMath.Load16((ushort)pair, bf16);

    private static float High(uint pair, int bf16) => GpuMath.Load16((ushort)(pair >> 16), bf16);
}
