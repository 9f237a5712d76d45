using System.Runtime.CompilerServices;
using ILGPU;
using ILGPU.Runtime;
using ILGPU.Runtime.Cuda;

namespace GemsInjector.Kernels.Ilgpu;

/// <summary>Sixteen float32 values of one lane's share of a head row (two <see cref="Floats8"/>, kept in registers).</summary>
internal struct Lane16
{
    public Floats8 A;
    public Floats8 B;
}

/// <summary>
/// How the streaming decode kernel reads q, k and v rows: each lane of a key's <c>lanes</c>-lane team owns sixteen values of
/// the row in 16-byte vectors (two 8-value vectors in 16-bit formats, four 4-value vectors in float32), vector
/// <c>part + i·lanes</c> for the i-th, so one warp load instruction reads whole consecutive 16·lanes-byte stretches of
/// rows. Vectors past the row (d &lt; 16·lanes) read as zeros.
/// </summary>
internal interface IDecodeRows
{
    /// <summary>This lane's values of the row starting at element <paramref name="rowStart"/> of q (0), k (1) or v (2).</summary>
    Lane16 Load(int tensor, long rowStart, int part, int lanes, int d);

    /// <summary>Writes this lane's values to <paramref name="target"/>[offset + dim] for the dims below d.</summary>
    void Spill(ArrayView<float> target, int offset, Lane16 values, int part, int lanes, int d);

    /// <summary>Bytes per element.</summary>
    int ElementBytes { get; }

    /// <summary>
    /// Keys a team loads per iteration, all requested before any is used: 2 in both formats. Four in 16-bit (4 KB per
    /// warp iteration, as float32) measured slower on the H200 (1215 against 1632 GB/s at batch 16, Run 9).
    /// </summary>
    int KeysPerTeam { get; }

    /// <summary>
    /// Copies the 16-byte vector <paramref name="vector"/> of k (1) or v (2) into <paramref name="stage"/>[at] (zeros
    /// when not <paramref name="valid"/>): the synchronous copy of the streaming kernel where cp.async is not available.
    /// </summary>
    void CopyVector(ArrayView<Float4> stage, int at, int tensor, long vector, bool valid);

    /// <summary>This lane's values of the staged row starting at vector <paramref name="rowVector"/> of <paramref name="stage"/> (as <see cref="Load"/>).</summary>
    Lane16 LoadStaged(ArrayView<Float4> stage, int rowVector, int part, int lanes, int d);
}

/// <summary>float16 (<typeparamref name="TFormat"/> 0) or bfloat16 (1) rows read as <see cref="Half8"/> vectors.</summary>
internal struct Rows16<TFormat> : IDecodeRows
    where TFormat : struct, IKernelConstant
{
    public ArrayView<Half8> Q;
    public ArrayView<Half8> K;
    public ArrayView<Half8> V;

    public readonly int ElementBytes => 2;

    public readonly int KeysPerTeam => 2;

    public readonly Lane16 Load(int tensor, long rowStart, int part, int lanes, int d)
    {
        var view = tensor == 0 ? Q : tensor == 1 ? K : V;
        int vectors = d >> 3;
        long first = rowStart >> 3;
        int second = part + lanes;
        return new Lane16
        {
            A = part < vectors ? Unpack(view.AsAligned(16)[first + part]) : default,
            B = second < vectors ? Unpack(view.AsAligned(16)[first + second]) : default,
        };
    }

    public readonly void Spill(ArrayView<float> target, int offset, Lane16 values, int part, int lanes, int d)
    {
        AttentionDecodeWideKernels.Spill8(target, offset + (8 * part), values.A, d - (8 * part));
        AttentionDecodeWideKernels.Spill8(target, offset + (8 * (part + lanes)), values.B, d - (8 * (part + lanes)));
    }

    public readonly void CopyVector(ArrayView<Float4> stage, int at, int tensor, long vector, bool valid)
    {
        var h = valid ? (tensor == 1 ? K : V).AsAligned(16)[vector] : default;
        stage[at] = new Float4 { X = Interop.IntAsFloat(h.X), Y = Interop.IntAsFloat(h.Y), Z = Interop.IntAsFloat(h.Z), W = Interop.IntAsFloat(h.W) };
    }

    public readonly Lane16 LoadStaged(ArrayView<Float4> stage, int rowVector, int part, int lanes, int d)
    {
        int vectors = d >> 3;
        int second = part + lanes;
        return new Lane16
        {
            A = part < vectors ? Unpack(Bits(stage[rowVector + part])) : default,
            B = second < vectors ? Unpack(Bits(stage[rowVector + second])) : default,
        };
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Half8 Bits(Float4 f) => new() { X = Interop.FloatAsInt(f.X), Y = Interop.FloatAsInt(f.Y), Z = Interop.FloatAsInt(f.Z), W = Interop.FloatAsInt(f.W) };

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Floats8 Unpack(Half8 v) => new()
    {
        V0 = Low(v.X),
        V1 = High(v.X),
        V2 = Low(v.Y),
        V3 = High(v.Y),
        V4 = Low(v.Z),
        V5 = High(v.Z),
        V6 = Low(v.W),
        V7 = High(v.W),
    };

    // float16 goes through ILGPU's Half (one cvt.f32.f16 on CUDA); bfloat16 is the top half of a float32.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float Low(uint word) => default(TFormat).Value != 0 ? Interop.IntAsFloat(word << 16) : Interop.IntAsFloat((ushort)(word & 0xffffu));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float High(uint word) => default(TFormat).Value != 0 ? Interop.IntAsFloat(word & 0xffff0000u) : Interop.IntAsFloat((ushort)(word >> 16));
}

/// <summary>float32 rows read as <see cref="Float4"/> vectors.</summary>
internal struct RowsF32 : IDecodeRows
{
    public ArrayView<Float4> Q;
    public ArrayView<Float4> K;
    public ArrayView<Float4> V;

    public readonly int ElementBytes => 4;

    public readonly int KeysPerTeam => 2;

    public readonly Lane16 Load(int tensor, long rowStart, int part, int lanes, int d)
    {
        var view = (tensor == 0 ? Q : tensor == 1 ? K : V).AsAligned(16);
        int vectors = d >> 2;
        long first = rowStart >> 2;
        Float4 x0 = part < vectors ? view[first + part] : default;
        Float4 x1 = part + lanes < vectors ? view[first + part + lanes] : default;
        Float4 x2 = part + (2 * lanes) < vectors ? view[first + part + (2 * lanes)] : default;
        Float4 x3 = part + (3 * lanes) < vectors ? view[first + part + (3 * lanes)] : default;
        return new Lane16
        {
            A = new Floats8 { V0 = x0.X, V1 = x0.Y, V2 = x0.Z, V3 = x0.W, V4 = x1.X, V5 = x1.Y, V6 = x1.Z, V7 = x1.W },
            B = new Floats8 { V0 = x2.X, V1 = x2.Y, V2 = x2.Z, V3 = x2.W, V4 = x3.X, V5 = x3.Y, V6 = x3.Z, V7 = x3.W },
        };
    }

    public readonly void CopyVector(ArrayView<Float4> stage, int at, int tensor, long vector, bool valid) =>
        stage[at] = valid ? (tensor == 1 ? K : V).AsAligned(16)[vector] : default;

    public readonly Lane16 LoadStaged(ArrayView<Float4> stage, int rowVector, int part, int lanes, int d)
    {
        int vectors = d >> 2;
        Float4 x0 = part < vectors ? stage[rowVector + part] : default;
        Float4 x1 = part + lanes < vectors ? stage[rowVector + part + lanes] : default;
        Float4 x2 = part + (2 * lanes) < vectors ? stage[rowVector + part + (2 * lanes)] : default;
        Float4 x3 = part + (3 * lanes) < vectors ? stage[rowVector + part + (3 * lanes)] : default;
        return new Lane16
        {
            A = new Floats8 { V0 = x0.X, V1 = x0.Y, V2 = x0.Z, V3 = x0.W, V4 = x1.X, V5 = x1.Y, V6 = x1.Z, V7 = x1.W },
            B = new Floats8 { V0 = x2.X, V1 = x2.Y, V2 = x2.Z, V3 = x2.W, V4 = x3.X, V5 = x3.Y, V6 = x3.Z, V7 = x3.W },
        };
    }

    public readonly void Spill(ArrayView<float> target, int offset, Lane16 values, int part, int lanes, int d)
    {
        var a = values.A;
        var b = values.B;
        AttentionDecodeWideKernels.Spill4(target, offset + (4 * part), a.V0, a.V1, a.V2, a.V3, d - (4 * part));
        AttentionDecodeWideKernels.Spill4(target, offset + (4 * (part + lanes)), a.V4, a.V5, a.V6, a.V7, d - (4 * (part + lanes)));
        AttentionDecodeWideKernels.Spill4(target, offset + (4 * (part + (2 * lanes))), b.V0, b.V1, b.V2, b.V3, d - (4 * (part + (2 * lanes))));
        AttentionDecodeWideKernels.Spill4(target, offset + (4 * (part + (3 * lanes))), b.V4, b.V5, b.V6, b.V7, d - (4 * (part + (3 * lanes))));
    }
}

/// <summary>
/// Flash-decoding (lq = 1) with 16-byte loads and grouped-query reuse: one group of <see cref="Warps"/> warps per
/// (chunk of keys, kv head and block of up to <see cref="HeadsPerGroup"/> of its query heads, batch) reads each key and
/// value row of the chunk once for all those query heads. A team of <c>lanes</c> = min(8, warp) lanes (16 for head
/// sizes above 128) shares a row (sixteen values per lane, see <see cref="IDecodeRows"/>), so head sizes up to 16·lanes
/// (256 on CUDA) that are a multiple of the vector width take this path. Pass 1: scores of the chunk into shared memory (team shuffle sums);
/// then one warp per head takes the chunk's max m and l = Σ e^(s - m); pass 2: Σ p·v per lane, summed over the warp's
/// teams by shuffles and over warps through shared memory. The partials ((batch·heads + h)·splits + split) are the
/// layout <see cref="AttentionDecodeKernels.DecodeCombineF32"/> and <see cref="AttentionDecodeKernels.DecodeCombine16"/>
/// merge. Masking, scale, the fully-masked zero and NaN propagation follow <see cref="AttentionKernels.AttentionF32"/>.
/// </summary>
internal static class AttentionDecodeWideKernels
{
    /// <summary>Query heads that share one read of a kv head's chunk.</summary>
    public const int HeadsPerGroup = 4;

    /// <summary>Warps per group.</summary>
    public const int Warps = 4;

    /// <summary>Largest chunk of keys per group.</summary>
    public const int MaxChunk = 512;

    /// <summary>Largest head size (16 values per lane, at most 16 lanes per row).</summary>
    public const int MaxD = 256;

    /// <summary>Lanes that share one row of <paramref name="d"/> values on a device with warps of <paramref name="warpSize"/>.</summary>
    public static int Lanes(int warpSize, int d)
    {
        // 8 lanes (two teams' worth of 64-byte row pieces per load instruction) up to d = 128; 16 for larger heads.
        int lanes = d > 128 ? 16 : 8;
        return warpSize < lanes ? warpSize : lanes;
    }

    /// <summary>Bytes of one staging buffer of the streaming kernel (a tile of K or V rows).</summary>
    public const int StageBytes = 8192;

    /// <summary>Staging buffers of the streaming kernel: one being read, the others' copies in flight.</summary>
    public const int Stages = 4;

    /// <summary>Dynamic shared floats of the streaming kernel: the stages, the chunk's scores, the heads' statistics.</summary>
    public const int StreamSharedFloats = (Stages * StageBytes / 4) + (HeadsPerGroup * MaxChunk) + (4 * HeadsPerGroup);

    /// <summary>Keys per staged tile: as many rows of <paramref name="d"/> elements as fill <see cref="StageBytes"/>.</summary>
    public static int TileKeys(int d, int elementBytes) => StageBytes / (d * elementBytes);

    /// <summary>float32 streaming decode (<see cref="StreamBody"/>).</summary>
    [IlgpuKernel]
    public static void DecodeStreamF32(ArrayView<Float4> q, ArrayView<Float4> k, ArrayView<Float4> v, ArrayView<float> mask,
        ArrayView<float> partO, ArrayView<float> partML, ArrayView<float> output, ArrayView<int> tickets, AttentionShape s, DecodePlan plan)
    {
        var rows = new RowsF32 { Q = q, K = k, V = v };
        StreamBody(rows, new DecodeOutputF32 { Output = output }, mask, partO, partML, tickets, s, plan);
    }

    /// <summary>16-bit streaming decode (<see cref="StreamBody"/>); <typeparamref name="TFormat"/> picks bfloat16.</summary>
    [IlgpuKernel]
    [IlgpuKernelVariant(typeof(Float16Storage))]
    [IlgpuKernelVariant(typeof(BFloat16Storage))]
    public static void DecodeStream16<TFormat>(ArrayView<Half8> q, ArrayView<Half8> k, ArrayView<Half8> v, ArrayView<float> mask,
        ArrayView<float> partO, ArrayView<float> partML, ArrayView<ushort> output, ArrayView<int> tickets, AttentionShape s, DecodePlan plan)
        where TFormat : struct, IKernelConstant
    {
        var rows = new Rows16<TFormat> { Q = q, K = k, V = v };
        StreamBody(rows, new DecodeOutput16 { Output = output, BFloat16 = default(TFormat).Value }, mask, partO, partML, tickets, s, plan);
    }

    /// <summary>
    /// The streaming decode: K and then V of the chunk reach the group as one sequence of <see cref="StageBytes"/> tiles
    /// copied global → shared by cp.async, <see cref="Stages"/> - 1 tiles ahead of the one being read, so the bytes in
    /// flight do not depend on registers (24 KB per group, ~96 KB per SM at 4 groups). Rows are read from shared memory
    /// by the lane layout of <see cref="IDecodeRows"/>. When <see cref="DecodePlan.Combine"/> is set the last group
    /// of a (batch, kv head, head block) to finish (a ticket per block, reset by that group) merges the chunks' partials
    /// and writes the output, so a call is one launch; a single chunk writes its output directly.
    /// </summary>
    private static void StreamBody<TRows, TOut>(TRows rows, TOut output, ArrayView<float> mask, ArrayView<float> partO, ArrayView<float> partML,
        ArrayView<int> tickets, AttentionShape s, DecodePlan plan)
        where TRows : struct, IDecodeRows
        where TOut : struct, IDecodeOutput
    {
        var shared = SharedMemory.GetDynamic<float>();
        var stage = shared.SubView(0, Stages * StageBytes / 4).Cast<Float4>().AsAligned(16);
        var scores = shared.SubView(Stages * StageBytes / 4, HeadsPerGroup * MaxChunk);
        var stats = shared.SubView((Stages * StageBytes / 4) + (HeadsPerGroup * MaxChunk), 4 * HeadsPerGroup);
        bool asyncCopy = CudaAsm.IsSupported && plan.KPointer != 0 && plan.VPointer != 0;
        var group = DecodeGroup.Of(s, plan);
        int d = s.D;
        int ws = Warp.WarpSize;
        int lane = Warp.LaneIdx;
        int warp = Warp.WarpIdx;
        int tid = Group.IdxX;
        int lanes = Lanes(ws, d);
        int part = lane % lanes;
        int team = lane / lanes;
        int teams = ws / lanes;
        int stride = Warps * teams;
        int tileKeys = plan.TileKeys;
        int rowVectors = d * rows.ElementBytes / 16;
        int j0 = group.Key0;
        int n = group.Keys;
        int kTiles = (n + tileKeys - 1) / tileKeys;
        long kBase = (((long)group.Batch * s.KvHeads) + group.KvHead) * s.Lk * d;
        long qBase = (((long)group.Batch * s.Heads) + group.Head0) * d;
        long maskBase = (group.Batch * s.MaskBatch) + (group.Head0 * s.MaskHead);
        long chunkVector = (kBase + ((long)j0 * d)) * rows.ElementBytes / 16;

        // The first Stages - 1 tiles in flight before q is read.
        for (int t = 0; t < Stages - 1; t++)
        {
            CopyTile(rows, stage, plan, asyncCopy, t, kTiles, tileKeys, rowVectors, chunkVector, n, rows.ElementBytes, tid);
        }

        var q0 = rows.Load(0, qBase, part, lanes, d);
        var q1 = group.Live > 1 ? rows.Load(0, qBase + d, part, lanes, d) : default;
        var q2 = group.Live > 2 ? rows.Load(0, qBase + (2 * d), part, lanes, d) : default;
        var q3 = group.Live > 3 ? rows.Load(0, qBase + (3 * d), part, lanes, d) : default;

        // Pass 1 over the K tiles (q live, no accumulators yet: the two passes' registers never overlap).
        for (int t = 0; t < kTiles; t++)
        {
            NextTile(rows, stage, plan, asyncCopy, t, kTiles, tileKeys, rowVectors, chunkVector, n, tid);
            int slotVector = (t % Stages) * (StageBytes / 16);
            for (int jw = warp * teams; jw < tileKeys; jw += stride)
            {
                int key = jw + team;
                int j = (t * tileKeys) + key;
                var x = rows.LoadStaged(stage, slotVector + ((key < tileKeys ? key : 0) * rowVectors), part, lanes, d);
                ScoreKey(scores, mask, s, maskBase, group.Live, q0, q1, q2, q3, x, j, j0, key < tileKeys && j < n, part, lanes);
            }
        }

        // Pass 2 over the V tiles (their copies were issued during pass 1).
        var o0 = default(Lane16);
        var o1 = default(Lane16);
        var o2 = default(Lane16);
        var o3 = default(Lane16);
        for (int t = kTiles; t < 2 * kTiles; t++)
        {
            NextTile(rows, stage, plan, asyncCopy, t, kTiles, tileKeys, rowVectors, chunkVector, n, tid);
            if (t == kTiles)
            {
                // Every score is stored: one warp per head turns them into weights (chunk max m, l = Σ e^(s - m)).
                ChunkSoftmax(scores, stats, group.Live, n, lane, warp, ws);
                Group.Barrier();
            }

            int tile = t - kTiles;
            int slotVector = (t % Stages) * (StageBytes / 16);
            for (int jw = warp * teams; jw < tileKeys; jw += stride)
            {
                int key = jw + team;
                int j = (tile * tileKeys) + key;
                var x = rows.LoadStaged(stage, slotVector + ((key < tileKeys ? key : 0) * rowVectors), part, lanes, d);
                AccumulateKey(scores, group.Live, x, j, key < tileKeys && j < n, ref o0, ref o1, ref o2, ref o3);
            }
        }

        if (kTiles == 0)
        {
            // No visible key in this chunk (only when kEnd is 0): m = -inf, l = 0.
            ChunkSoftmax(scores, stats, group.Live, 0, lane, warp, ws);
        }

        // The stages become the warps' sums once every copy has landed and every thread has read the last tile.
        if (asyncCopy)
        {
            CudaAsm.Emit("cp.async.wait_group 0;");
        }

        Group.Barrier();
        var sums = shared.SubView(0, Warps * HeadsPerGroup * MaxD);
        o0 = FoldTeams(o0, lanes, ws);
        o1 = FoldTeams(o1, lanes, ws);
        o2 = FoldTeams(o2, lanes, ws);
        o3 = FoldTeams(o3, lanes, ws);
        if (team == 0)
        {
            int at = warp * HeadsPerGroup * MaxD;
            rows.Spill(sums, at, o0, part, lanes, d);
            rows.Spill(sums, at + MaxD, o1, part, lanes, d);
            rows.Spill(sums, at + (2 * MaxD), o2, part, lanes, d);
            rows.Spill(sums, at + (3 * MaxD), o3, part, lanes, d);
        }

        Group.Barrier();
        long headRow = ((long)group.Batch * s.Heads) + group.Head0;
        for (int e = tid; e < group.Live * d; e += Group.DimX)
        {
            int i = e / d;
            int dim = e - (i * d);
            float o = 0f;
            for (int w = 0; w < Warps; w++)
            {
                o += sums[(((w * HeadsPerGroup) + i) * MaxD) + dim];
            }

            WriteSum(output, partO, stats, headRow, i, dim, o, group.Split, group.Splits, d);
        }

        FinishChunk(output, partO, partML, scores, stats, tickets, plan, headRow, group.Live, group.Split, group.Splits, group.Batch, d, tid, lane, warp, ws, default(NoDecodeTrace));
    }

    /// <summary>Head size of <see cref="DecodeStreamF32Lean"/>.</summary>
    public const int LeanD = 128;

    /// <summary>Keys per staged tile of <see cref="DecodeStreamF32Lean"/> (one 8 KB stage of float32 rows of 128).</summary>
    public const int LeanTileKeys = StageBytes / (LeanD * 4);

    /// <summary>Threads per group of <see cref="DecodeStreamF32Lean"/> (<see cref="Warps"/> warps of 32 lanes).</summary>
    private const int LeanThreads = Warps * 32;

    /// <summary>16-byte vectors of one float32 row of <see cref="LeanD"/>.</summary>
    private const int LeanRowVectors = LeanD / 4;

    /// <summary>
    /// float32 streaming decode for head size <see cref="LeanD"/> on 32-lane warps (the default <c>lean</c> decode variant):
    /// the schedule of <see cref="DecodeStreamF32"/> (same grid, stages, shared layout, partials and merge) with every
    /// size a constant. The H200 profile of <see cref="DecodeStreamF32"/> (batch 16: 196 µs, 57% of DRAM, issue-bound,
    /// ~490 warp instructions per 8 KB tile) spent them on runtime tile and lane counts: a one-iteration key loop with
    /// its bounds checks, integer divisions for the tile slot, a copy loop of four cp.async with 27 instructions each,
    /// four team sums as non-unrolled shuffle loops and a branchy one-lane score store. Here each team takes exactly one
    /// key per tile (key 4·warp + team), the four copies are unrolled on one hoisted address, the four heads' dot
    /// products are reduced over the team's 8 lanes together (4 shuffles instead of 12: each step a lane keeps half of
    /// its sums and trades the other half), and four lanes store one head's score each. Pass 2 reads the weights without
    /// checks: the softmax zeroes the weights past the chunk's last key up to the tile edge (those rows of V are zero
    /// fills), and heads past the group's live ones only feed accumulators that are never written out.
    /// </summary>
    [IlgpuKernel]
    public static void DecodeStreamF32Lean(ArrayView<Float4> q, ArrayView<Float4> k, ArrayView<Float4> v, ArrayView<float> mask,
        ArrayView<float> partO, ArrayView<float> partML, ArrayView<float> output, ArrayView<int> tickets, AttentionShape s, DecodePlan plan) =>
        LeanF32Body(q, k, v, mask, partO, partML, output, tickets, s, plan, default(NoDecodeTrace));

    /// <summary>
    /// <see cref="DecodeStreamF32Lean"/> with every group's timeline written to <paramref name="stamps"/>
    /// (<see cref="GlobalTimerDecodeTrace"/>): a measuring kernel for the GPU harness's <c>--decode-trace</c>, not shipped
    /// precompiled. The walk is the same; the stamps add a few instructions and stores per group.
    /// </summary>
    public static void DecodeStreamF32LeanTraced(ArrayView<Float4> q, ArrayView<Float4> k, ArrayView<Float4> v, ArrayView<float> mask,
        ArrayView<float> partO, ArrayView<float> partML, ArrayView<float> output, ArrayView<int> tickets, AttentionShape s, DecodePlan plan,
        ArrayView<long> stamps) =>
        LeanF32Body(q, k, v, mask, partO, partML, output, tickets, s, plan, new GlobalTimerDecodeTrace { Stamps = stamps });

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void LeanF32Body<TTrace>(ArrayView<Float4> q, ArrayView<Float4> k, ArrayView<Float4> v, ArrayView<float> mask,
        ArrayView<float> partO, ArrayView<float> partML, ArrayView<float> output, ArrayView<int> tickets, AttentionShape s, DecodePlan plan, TTrace trace)
        where TTrace : struct, IDecodeTrace
    {
        const int D = LeanD;
        trace.Stamp(DecodeTracePoint.Entry);
        var rows = new RowsF32 { Q = q, K = k, V = v };
        var sink = new DecodeOutputF32 { Output = output };
        var shared = SharedMemory.GetDynamic<float>();
        var stage = shared.SubView(0, Stages * StageBytes / 4).Cast<Float4>().AsAligned(16);
        var scores = shared.SubView(Stages * StageBytes / 4, HeadsPerGroup * MaxChunk);
        var stats = shared.SubView((Stages * StageBytes / 4) + (HeadsPerGroup * MaxChunk), 4 * HeadsPerGroup);
        bool asyncCopy = CudaAsm.IsSupported && plan.KPointer != 0 && plan.VPointer != 0;
        var group = DecodeGroup.Of(s, plan);
        int tid = Group.IdxX;

        // Shifts, not Warp.WarpIdx: its signed division by the warp size was rematerialized in every tile iteration.
        int lane = tid & 31;
        int warp = tid >> 5;
        int part = lane & 7;
        int team = lane >> 3;
        int key = (warp * 4) + team;
        int j0 = group.Key0;
        int n = group.Keys;
        int live = group.Live;
        int kTiles = (n + LeanTileKeys - 1) / LeanTileKeys;
        long kBase = (((long)group.Batch * s.KvHeads) + group.KvHead) * s.Lk * D;
        long qBase = (((long)group.Batch * s.Heads) + group.Head0) * D;
        long chunkVector = (kBase + ((long)j0 * D)) / 4;

        // Every buffer in flight before q is read (see LeanNextTile); written out, since as a loop ptxas re-derived
        // the group's indices (divisions) in every iteration.
        LeanCopyTile(rows, stage, plan, asyncCopy, 0, kTiles, chunkVector, n, tid);
        LeanCopyTile(rows, stage, plan, asyncCopy, 1, kTiles, chunkVector, n, tid);
        LeanCopyTile(rows, stage, plan, asyncCopy, 2, kTiles, chunkVector, n, tid);
        LeanCopyTile(rows, stage, plan, asyncCopy, 3, kTiles, chunkVector, n, tid);

        var q0 = rows.Load(0, qBase, part, 8, D);
        var q1 = live > 1 ? rows.Load(0, qBase + D, part, 8, D) : default;
        var q2 = live > 2 ? rows.Load(0, qBase + (2 * D), part, 8, D) : default;
        var q3 = live > 3 ? rows.Load(0, qBase + (3 * D), part, 8, D) : default;

        // After the team reduction lane `part` (< 4) holds head 2·(part & 1) + ((part >> 1) & 1).
        int head = (2 * (part & 1)) + ((part >> 1) & 1);
        bool storer = part < 4 && head < live;
        long maskAt = (group.Batch * s.MaskBatch) + ((group.Head0 + head) * s.MaskHead) + j0;
        int scoreAt = (head * MaxChunk) + key;
        int rowAt = (key * LeanRowVectors) + part;

        // Pass 1 over the K tiles.
        for (int t = 0; t < kTiles; t++)
        {
            LeanNextTile(rows, stage, plan, asyncCopy, t, kTiles, chunkVector, n, tid);
            if (t == 0)
            {
                trace.Stamp(DecodeTracePoint.FirstTile);
            }

            var x = LeanRow(stage, ((t & (Stages - 1)) * (StageBytes / 16)) + rowAt);
            float score = TeamSum4(Dot(q0, x), Dot(q1, x), Dot(q2, x), Dot(q3, x), part);
            int j = (t * LeanTileKeys) + key;
            if (storer && j < n)
            {
                score *= s.Scale;
                scores[scoreAt + (t * LeanTileKeys)] = s.HasMask != 0 ? score + mask[maskAt + j] : score;
            }
        }

        // Pass 2 over the V tiles (their copies were issued during pass 1).
        trace.Stamp(DecodeTracePoint.KeysDone);
        var o0 = default(Lane16);
        var o1 = default(Lane16);
        var o2 = default(Lane16);
        var o3 = default(Lane16);
        for (int t = kTiles; t < 2 * kTiles; t++)
        {
            LeanNextTile(rows, stage, plan, asyncCopy, t, kTiles, chunkVector, n, tid);
            if (t == kTiles)
            {
                trace.Stamp(DecodeTracePoint.FirstValueTile);
                ChunkSoftmax(scores, stats, live, n, lane, warp, 32);

                // Weights of the zero-filled rows past the chunk's last key (up to the tile edge) are 0, so pass 2 needs no checks.
                for (int j = n + lane; j < kTiles * LeanTileKeys; j += 32)
                {
                    if (warp < live)
                    {
                        scores[(warp * MaxChunk) + j] = 0f;
                    }
                }

                Group.Barrier();
            }

            int tile = t - kTiles;
            var x = LeanRow(stage, ((t & (Stages - 1)) * (StageBytes / 16)) + rowAt);
            int j2 = (tile * LeanTileKeys) + key;
            o0 = Axpy(scores[j2], x, o0);
            o1 = Axpy(scores[MaxChunk + j2], x, o1);
            o2 = Axpy(scores[(2 * MaxChunk) + j2], x, o2);
            o3 = Axpy(scores[(3 * MaxChunk) + j2], x, o3);
        }

        trace.Stamp(DecodeTracePoint.ValuesDone);
        if (kTiles == 0)
        {
            ChunkSoftmax(scores, stats, live, 0, lane, warp, 32);
        }

        if (asyncCopy)
        {
            CudaAsm.Emit("cp.async.wait_group 0;");
        }

        Group.Barrier();
        trace.Stamp(DecodeTracePoint.CopiesDone);

        // Every team's sums go to shared memory as they are, a slice [warp · 4 + team][head][dim] each (the staging
        // buffers hold all 16), and thread (head, vector) adds its 4 dims over the slices: no shuffles. H200 Run 158 timed
        // folding the teams by shuffles and the warps through shared memory at 1.5 µs of a 17.9 µs batch-1 launch.
        var sums = stage;
        int slice = ((warp * 4) + team) * HeadsPerGroup * LeanRowVectors;
        SpillLean(sums, slice, o0, part);
        if (live > 1)
        {
            SpillLean(sums, slice + LeanRowVectors, o1, part);
        }

        if (live > 2)
        {
            SpillLean(sums, slice + (2 * LeanRowVectors), o2, part);
        }

        if (live > 3)
        {
            SpillLean(sums, slice + (3 * LeanRowVectors), o3, part);
        }

        Group.Barrier();
        trace.Stamp(DecodeTracePoint.SumsStored);
        long headRow = ((long)group.Batch * s.Heads) + group.Head0;
        if (warp < live)
        {
            // Thread (head = warp, vector = lane): 128 threads are the 4 heads' 32 vectors of 4 dims. Every load before
            // the first add (Run 159's loop waited on each load in turn: 0.71 µs for this phase).
            int at = (warp * LeanRowVectors) + lane;
            var sum = SumSlices(sums, at, 0);
            sum = Add(sum, SumSlices(sums, at, 8));
            WriteLeanSum(sink, partO, stats, headRow, warp, lane, sum, group.Split, group.Splits);
        }

        trace.Stamp(DecodeTracePoint.PartialWritten);
        FinishChunk(sink, partO, partML, scores, stats, tickets, plan, headRow, live, group.Split, group.Splits, group.Batch, D, tid, lane, warp, 32, trace);
        trace.Stamp(DecodeTracePoint.End);
    }

    /// <summary>Slices of <see cref="DecodeStreamF32Lean"/>'s sums: one per team of every warp (4 teams of 8 lanes).</summary>
    private const int LeanSlices = Warps * 4;

    /// <summary>This lane's 16 sums of one head into its slice row at vector <paramref name="at"/>: vectors part, part + 8, part + 16, part + 24 (the <see cref="RowsF32"/> layout).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void SpillLean(ArrayView<Float4> sums, int at, Lane16 x, int part)
    {
        sums[at + part] = new Float4 { X = x.A.V0, Y = x.A.V1, Z = x.A.V2, W = x.A.V3 };
        sums[at + part + 8] = new Float4 { X = x.A.V4, Y = x.A.V5, Z = x.A.V6, W = x.A.V7 };
        sums[at + part + 16] = new Float4 { X = x.B.V0, Y = x.B.V1, Z = x.B.V2, W = x.B.V3 };
        sums[at + part + 24] = new Float4 { X = x.B.V4, Y = x.B.V5, Z = x.B.V6, W = x.B.V7 };
    }

    /// <summary>The sum of one vector over slices <paramref name="first"/> .. + 7 of the sums, all 8 loads issued before the adds.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Float4 SumSlices(ArrayView<Float4> sums, int at, int first)
    {
        const int Slice = HeadsPerGroup * LeanRowVectors;
        at += first * Slice;
        var x0 = sums[at];
        var x1 = sums[at + Slice];
        var x2 = sums[at + (2 * Slice)];
        var x3 = sums[at + (3 * Slice)];
        var x4 = sums[at + (4 * Slice)];
        var x5 = sums[at + (5 * Slice)];
        var x6 = sums[at + (6 * Slice)];
        var x7 = sums[at + (7 * Slice)];
        return Add(Add(Add(x0, x1), Add(x2, x3)), Add(Add(x4, x5), Add(x6, x7)));
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Float4 Add(Float4 a, Float4 b) => new() { X = a.X + b.X, Y = a.Y + b.Y, Z = a.Z + b.Z, W = a.W + b.W };

    /// <summary>
    /// <see cref="WriteSum"/> for 4 dims at once: vector <paramref name="vector"/> of head <paramref name="i"/>'s sums, as
    /// the output o / l with one chunk, else as one 16-byte store of the chunk's partial.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void WriteLeanSum(DecodeOutputF32 output, ArrayView<float> partO, ArrayView<float> stats, long headRow, int i, int vector, Float4 o, int split, int splits)
    {
        if (splits == 1)
        {
            float l = stats[(2 * i) + 1];
            long at = ((headRow + i) * LeanD) + (4 * vector);
            output.Write(at, l == 0f ? 0f : o.X / l);
            output.Write(at + 1, l == 0f ? 0f : o.Y / l);
            output.Write(at + 2, l == 0f ? 0f : o.Z / l);
            output.Write(at + 3, l == 0f ? 0f : o.W / l);
        }
        else
        {
            partO.Cast<Float4>().AsAligned(16)[((((headRow + i) * splits) + split) * LeanRowVectors) + vector] = o;
        }
    }

    /// <summary>One staged float32 row share of <see cref="DecodeStreamF32Lean"/>: vectors at, at + 8, at + 16, at + 24 (the <see cref="RowsF32"/> layout, 8 lanes).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Lane16 LeanRow(ArrayView<Float4> stage, int at)
    {
        var x0 = stage[at];
        var x1 = stage[at + 8];
        var x2 = stage[at + 16];
        var x3 = stage[at + 24];
        return new Lane16
        {
            A = new Floats8 { V0 = x0.X, V1 = x0.Y, V2 = x0.Z, V3 = x0.W, V4 = x1.X, V5 = x1.Y, V6 = x1.Z, V7 = x1.W },
            B = new Floats8 { V0 = x2.X, V1 = x2.Y, V2 = x2.Z, V3 = x2.W, V4 = x3.X, V5 = x3.Y, V6 = x3.Z, V7 = x3.W },
        };
    }

    /// <summary>
    /// The sums over an aligned team of 8 lanes of four values at once: after trading halves across lane bit 0 (two
    /// shuffles) and bit 1 (one) and a last shuffle across bit 2, every lane holds the full sum of value
    /// 2·(part &amp; 1) + ((part &gt;&gt; 1) &amp; 1).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static float TeamSum4(float d0, float d1, float d2, float d3, int part)
    {
        bool odd = (part & 1) != 0;
        float give0 = odd ? d0 : d2;
        float give1 = odd ? d1 : d3;
        float e0 = (odd ? d2 : d0) + Warp.ShuffleXor(give0, 1);
        float e1 = (odd ? d3 : d1) + Warp.ShuffleXor(give1, 1);
        bool second = (part & 2) != 0;
        float g = (second ? e1 : e0) + Warp.ShuffleXor(second ? e0 : e1, 2);
        return g + Warp.ShuffleXor(g, 4);
    }

    /// <summary>
    /// <see cref="NextTile"/> for <see cref="DecodeStreamF32Lean"/>, whose prologue committed tiles 0 .. Stages − 1 (all
    /// buffers): tile 0 may leave Stages − 1 groups in flight and starts no copy; from tile 1 on, tile t + Stages − 1
    /// goes into t − 1's buffer, and tile t's group is followed by exactly Stages − 2 committed groups (Stages + t − 1
    /// committed, tiles 0 .. t needed), as in <see cref="NextTile"/>.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void LeanNextTile(RowsF32 rows, ArrayView<Float4> stage, DecodePlan plan, bool asyncCopy, int t, int kTiles, long chunkVector, int n, int tid)
    {
        if (t == 0)
        {
            if (asyncCopy)
            {
                CudaAsm.Emit("cp.async.wait_group 3;");
            }

            Group.Barrier();
            return;
        }

        if (asyncCopy)
        {
            CudaAsm.Emit("cp.async.wait_group 2;");
        }

        Group.Barrier();
        LeanCopyTile(rows, stage, plan, asyncCopy, t + Stages - 1, kTiles, chunkVector, n, tid);
    }

    /// <summary>
    /// <see cref="CopyTile"/> for <see cref="DecodeStreamF32Lean"/>: a tile is 512 vectors, four per thread (vectors
    /// tid + 128·u), their global and shared addresses one hoisted base plus a constant.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void LeanCopyTile(RowsF32 rows, ArrayView<Float4> stage, DecodePlan plan, bool asyncCopy, int t, int kTiles, long chunkVector, int n, int tid)
    {
        const int TileVectors = LeanTileKeys * LeanRowVectors;
        if (t < 2 * kTiles)
        {
            bool isK = t < kTiles;
            int tile = isK ? t : t - kTiles;
            long firstVector = chunkVector + ((long)tile * TileVectors);
            int valid = ((n - (tile * LeanTileKeys)) * LeanRowVectors) - tid;
            int slot = ((t & (Stages - 1)) * TileVectors) + tid;
            if (asyncCopy)
            {
                long tileStart = (isK ? plan.KPointer : plan.VPointer) + (firstVector * 16);
                long mine = tileStart + (tid * 16L);
                LeanCopy(slot, mine, tileStart, valid > 0);
                LeanCopy(slot + LeanThreads, mine + (16 * LeanThreads), tileStart, valid > LeanThreads);
                LeanCopy(slot + (2 * LeanThreads), mine + (32 * LeanThreads), tileStart, valid > 2 * LeanThreads);
                LeanCopy(slot + (3 * LeanThreads), mine + (48 * LeanThreads), tileStart, valid > 3 * LeanThreads);
            }
            else
            {
                int tensor = isK ? 1 : 2;
                for (int u = 0; u < TileVectors / LeanThreads; u++)
                {
                    rows.CopyVector(stage, slot + (u * LeanThreads), tensor, firstVector + tid + (u * LeanThreads), valid > u * LeanThreads);
                }
            }
        }

        if (asyncCopy)
        {
            CudaAsm.Emit("cp.async.commit_group;");
        }
    }

    /// <summary>One 16-byte cp.async into stage vector <paramref name="slotVector"/>; an invalid one zero-fills from the tile's first (valid) vector.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void LeanCopy(int slotVector, long source, long tileStart, bool valid) =>
        CudaAsm.Emit("{\n\t.reg .u64 dsrc;\n\t.reg .u32 ddst;\n\tcvta.to.global.u64 dsrc, %1;\n\tmov.u32 ddst, __dyn_shared_alloca;\n\tadd.u32 ddst, ddst, %0;\n\tcp.async.cg.shared.global [ddst], [dsrc], 16, %2;\n\t}",
            (uint)(slotVector * 16), valid ? source : tileStart, valid ? 16u : 0u);

    /// <summary>
    /// One output sum o of head <paramref name="i"/> of the group, dim <paramref name="dim"/>: with one chunk the output
    /// o / l (0 where l = 0), else the chunk's partial.
    /// </summary>
    internal static void WriteSum<TOut>(TOut output, ArrayView<float> partO, ArrayView<float> stats, long headRow, int i, int dim, float o, int split, int splits, int d)
        where TOut : struct, IDecodeOutput
    {
        if (splits == 1)
        {
            float l = stats[(2 * i) + 1];
            output.Write(((headRow + i) * d) + dim, l == 0f ? 0f : o / l);
        }
        else
        {
            partO[((((headRow + i) * splits) + split) * d) + dim] = o;
        }
    }

    /// <summary>
    /// A group's tail after its partial sums (every thread calls it): with more than one chunk, the heads' (max, sum)
    /// pairs; with <see cref="DecodePlan.Combine"/> set, a ticket per (batch, kv head, head block), and the group that
    /// takes the last one resets it and merges every chunk's partials (<see cref="CombineChunks"/>).
    /// </summary>
    internal static void FinishChunk<TOut, TTrace>(TOut output, ArrayView<float> partO, ArrayView<float> partML, ArrayView<float> scores, ArrayView<float> stats,
        ArrayView<int> tickets, DecodePlan plan, long headRow, int live, int split, int splits, int batch, int d, int tid, int lane, int warp, int ws, TTrace trace)
        where TOut : struct, IDecodeOutput
        where TTrace : struct, IDecodeTrace
    {
        if (splits == 1)
        {
            return;
        }

        if (tid < live)
        {
            long partIndex = ((headRow + tid) * splits) + split;
            partML[2 * partIndex] = stats[2 * tid];
            partML[(2 * partIndex) + 1] = stats[(2 * tid) + 1];
        }

        if (plan.Combine == 0)
        {
            return;
        }

        // Publish the partials, then take a ticket; the group that takes the last one merges (its own partials included).
        MemoryFence.DeviceLevel();
        Group.Barrier();
        trace.Stamp(DecodeTracePoint.Published);
        int ticketIndex = (batch * Grid.DimY) + Grid.IdxY;
        if (tid == 0)
        {
            int taken = Atomic.Add(ref tickets[ticketIndex], 1);
            stats[2 * HeadsPerGroup] = taken == splits - 1 ? 1f : 0f;
        }

        Group.Barrier();
        trace.Stamp(DecodeTracePoint.TicketTaken);
        if (stats[2 * HeadsPerGroup] == 0f)
        {
            return;
        }

        MemoryFence.DeviceLevel();
        if (tid == 0)
        {
            // Ready for the next launch (kernels on one stream run in order).
            tickets[ticketIndex] = 0;
        }

        CombineChunks(output, partO, partML, scores, stats, headRow, live, splits, d, tid, lane, warp, ws, trace);
    }

    /// <summary>Chunks the in-kernel merge reads per step (independent 16-byte L2 loads in flight per thread).</summary>
    public const int MergeChunksPerStep = 16;

    /// <summary>
    /// The last group's merge of the <paramref name="splits"/> chunk partials of its heads (splits ≤
    /// <see cref="MaxChunk"/> - <see cref="MergeChunksPerStep"/>): one warp per head puts the chunk weights
    /// e^(m_c - M) into <paramref name="weights"/> and Σ_c e^(m_c - M)·l_c into the statistics; then each thread sums
    /// four dims of one head over the chunks, <see cref="MergeChunksPerStep"/> 16-byte loads issued per step before any
    /// is used (at batch 1, 64 chunks: 4 dependent L2 round trips instead of 64).
    /// </summary>
    internal static void CombineChunks<TOut, TTrace>(TOut output, ArrayView<float> partO, ArrayView<float> partML, ArrayView<float> weights, ArrayView<float> stats,
        long headRow, int live, int splits, int d, int tid, int lane, int warp, int ws, TTrace trace)
        where TOut : struct, IDecodeOutput
        where TTrace : struct, IDecodeTrace
    {
        for (int i = warp; i < live; i += Warps)
        {
            long p0 = (headRow + i) * splits;
            float mMax = GpuMath.NegInf;
            for (int c = lane; c < splits; c += ws)
            {
                mMax = GpuMath.MaxNaN(mMax, partML[2 * (p0 + c)]);
            }

            mMax = GpuMath.WarpMax(mMax);
            float total = 0f;
            for (int c = lane; c < splits; c += ws)
            {
                float mc = partML[2 * (p0 + c)];
                float w = mc == GpuMath.NegInf ? 0f : GpuMath.Exp(mc - mMax);
                weights[(i * MaxChunk) + c] = w;
                total += w * partML[(2 * (p0 + c)) + 1];
            }

            total = GpuMath.WarpSum(total);
            if (lane == 0)
            {
                stats[(2 * HeadsPerGroup) + 1 + i] = total;
            }
        }

        Group.Barrier();
        trace.Stamp(DecodeTracePoint.MergeWeights);
        var parts = partO.Cast<Float4>().AsAligned(16);
        int vectors = d >> 2;
        int last = splits - 1;
        for (int pair = tid; pair < live * vectors; pair += Group.DimX)
        {
            int i = pair / vectors;
            int vector = pair - (i * vectors);
            long first = ((headRow + i) * splits * vectors) + vector;
            var sum = default(Float4);
            for (int c = 0; c < splits; c += MergeChunksPerStep)
            {
                sum = MergeStep(sum, parts, weights, first, vectors, i * MaxChunk, c, last);
            }

            float total = stats[(2 * HeadsPerGroup) + 1 + i];
            long at = ((headRow + i) * d) + (4 * vector);
            output.Write(at, total == 0f ? 0f : sum.X / total);
            output.Write(at + 1, total == 0f ? 0f : sum.Y / total);
            output.Write(at + 2, total == 0f ? 0f : sum.Z / total);
            output.Write(at + 3, total == 0f ? 0f : sum.W / total);
        }
    }

    /// <summary>
    /// sum + Σ weights[c + u]·parts[chunk c + u] over u below <see cref="MergeChunksPerStep"/> and chunks up to
    /// <paramref name="last"/>: every load first (indexes past the last chunk repeat it, so there is no branch before
    /// the last load), then the multiply-adds.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Float4 MergeStep(Float4 sum, ArrayView<Float4> parts, ArrayView<float> weights, long first, int vectors, int wRow, int c, int last)
    {
        var x0 = parts[first + ((long)Min(c, last) * vectors)];
        var x1 = parts[first + ((long)Min(c + 1, last) * vectors)];
        var x2 = parts[first + ((long)Min(c + 2, last) * vectors)];
        var x3 = parts[first + ((long)Min(c + 3, last) * vectors)];
        var x4 = parts[first + ((long)Min(c + 4, last) * vectors)];
        var x5 = parts[first + ((long)Min(c + 5, last) * vectors)];
        var x6 = parts[first + ((long)Min(c + 6, last) * vectors)];
        var x7 = parts[first + ((long)Min(c + 7, last) * vectors)];
        var x8 = parts[first + ((long)Min(c + 8, last) * vectors)];
        var x9 = parts[first + ((long)Min(c + 9, last) * vectors)];
        var x10 = parts[first + ((long)Min(c + 10, last) * vectors)];
        var x11 = parts[first + ((long)Min(c + 11, last) * vectors)];
        var x12 = parts[first + ((long)Min(c + 12, last) * vectors)];
        var x13 = parts[first + ((long)Min(c + 13, last) * vectors)];
        var x14 = parts[first + ((long)Min(c + 14, last) * vectors)];
        var x15 = parts[first + ((long)Min(c + 15, last) * vectors)];
        sum = Madd(sum, weights[wRow + c + 0], x0, c + 0 <= last);
        sum = Madd(sum, weights[wRow + c + 1], x1, c + 1 <= last);
        sum = Madd(sum, weights[wRow + c + 2], x2, c + 2 <= last);
        sum = Madd(sum, weights[wRow + c + 3], x3, c + 3 <= last);
        sum = Madd(sum, weights[wRow + c + 4], x4, c + 4 <= last);
        sum = Madd(sum, weights[wRow + c + 5], x5, c + 5 <= last);
        sum = Madd(sum, weights[wRow + c + 6], x6, c + 6 <= last);
        sum = Madd(sum, weights[wRow + c + 7], x7, c + 7 <= last);
        sum = Madd(sum, weights[wRow + c + 8], x8, c + 8 <= last);
        sum = Madd(sum, weights[wRow + c + 9], x9, c + 9 <= last);
        sum = Madd(sum, weights[wRow + c + 10], x10, c + 10 <= last);
        sum = Madd(sum, weights[wRow + c + 11], x11, c + 11 <= last);
        sum = Madd(sum, weights[wRow + c + 12], x12, c + 12 <= last);
        sum = Madd(sum, weights[wRow + c + 13], x13, c + 13 <= last);
        sum = Madd(sum, weights[wRow + c + 14], x14, c + 14 <= last);
        return Madd(sum, weights[wRow + c + 15], x15, c + 15 <= last);
    }

    /// <summary>sum + w·x for a real chunk; a repeated one adds nothing (its weight slot may be stale).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Float4 Madd(Float4 sum, float w, Float4 x, bool real) => real
        ? new Float4 { X = sum.X + (w * x.X), Y = sum.Y + (w * x.Y), Z = sum.Z + (w * x.Z), W = sum.W + (w * x.W) }
        : sum;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static int Min(int a, int b) => a < b ? a : b;

    /// <summary>One warp per head: the chunk's max m and l = Σ e^(s - m) into the statistics; the scores become the weights p.</summary>
    private static void ChunkSoftmax(ArrayView<float> scores, ArrayView<float> stats, int live, int n, int lane, int warp, int ws)
    {
        for (int i = warp; i < live; i += Warps)
        {
            int row = i * MaxChunk;
            float m = GpuMath.NegInf;
            for (int j = lane; j < n; j += ws)
            {
                m = GpuMath.MaxNaN(m, scores[row + j]);
            }

            m = GpuMath.WarpMax(m);
            float l = 0f;
            for (int j = lane; j < n; j += ws)
            {
                float p = m == GpuMath.NegInf ? 0f : GpuMath.Exp(scores[row + j] - m);
                scores[row + j] = p;
                l += p;
            }

            l = GpuMath.WarpSum(l);
            if (lane == 0)
            {
                stats[2 * i] = m;
                stats[(2 * i) + 1] = l;
            }
        }
    }

    /// <summary>
    /// Waits until stream tile <paramref name="t"/> has landed (this thread's copies; the barrier makes it every
    /// thread's) and every thread is done with tile t - 1, then starts the copy of tile t + <see cref="Stages"/> - 1
    /// into t - 1's buffer.
    /// </summary>
    private static void NextTile<TRows>(TRows rows, ArrayView<Float4> stage, DecodePlan plan, bool asyncCopy,
        int t, int kTiles, int tileKeys, int rowVectors, long chunkVector, int n, int tid)
        where TRows : struct, IDecodeRows
    {
        if (asyncCopy)
        {
            // Stages - 2 of the committed copies may still be in flight (an immediate: Stages is 4).
            CudaAsm.Emit("cp.async.wait_group 2;");
        }

        Group.Barrier();
        CopyTile(rows, stage, plan, asyncCopy, t + Stages - 1, kTiles, tileKeys, rowVectors, chunkVector, n, rows.ElementBytes, tid);
    }

    /// <summary>
    /// Starts the copy of stream tile <paramref name="t"/> (K tiles, then V tiles; none past the end, but a commit all
    /// the same so that wait_group counts stay uniform) into buffer t mod <see cref="Stages"/>: the tile is a contiguous
    /// run of rows, so thread i copies 16-byte vectors i, i + group size, ...; vectors past the chunk are zero-filled.
    /// </summary>
    private static void CopyTile<TRows>(TRows rows, ArrayView<Float4> stage, DecodePlan plan, bool asyncCopy,
        int t, int kTiles, int tileKeys, int rowVectors, long chunkVector, int n, int elementBytes, int tid)
        where TRows : struct, IDecodeRows
    {
        if (t < 2 * kTiles)
        {
            int tensor = t < kTiles ? 1 : 2;
            int tile = t < kTiles ? t : t - kTiles;
            long firstVector = chunkVector + ((long)tile * tileKeys * rowVectors);
            int validVectors = (n - (tile * tileKeys)) * rowVectors;
            int tileVectors = tileKeys * rowVectors;
            int slot = (t % Stages) * (StageBytes / 16);
            long pointer = tensor == 1 ? plan.KPointer : plan.VPointer;
            for (int c = tid; c < tileVectors; c += Group.DimX)
            {
                bool valid = c < validVectors;
                if (asyncCopy)
                {
                    // The stages start the dynamic shared memory; its symbol's address is taken inside the asm (an Output
                    // operand would go through local memory).
                    CudaAsm.Emit("{\n\t.reg .u64 dsrc;\n\t.reg .u32 ddst;\n\tcvta.to.global.u64 dsrc, %1;\n\tmov.u32 ddst, __dyn_shared_alloca;\n\tadd.u32 ddst, ddst, %0;\n\tcp.async.cg.shared.global [ddst], [dsrc], 16, %2;\n\t}",
                        (uint)((slot + c) * 16), pointer + ((firstVector + (valid ? c : 0)) * 16), valid ? 16u : 0u);
                }
                else
                {
                    rows.CopyVector(stage, slot + c, tensor, firstVector + c, valid);
                }
            }
        }

        if (asyncCopy)
        {
            CudaAsm.Emit("cp.async.commit_group;");
        }
    }

    /// <summary>The scores of one key row (this lane's share <paramref name="k"/>) for the group's heads, stored by the team's first lane.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void ScoreKey(ArrayView<float> scores, ArrayView<float> mask, AttentionShape s, long maskBase, int live,
        Lane16 q0, Lane16 q1, Lane16 q2, Lane16 q3, Lane16 k, int j, int j0, bool has, int part, int lanes)
    {
        float d0 = TeamSum(Dot(q0, k), lanes);
        float d1 = TeamSum(Dot(q1, k), lanes);
        float d2 = TeamSum(Dot(q2, k), lanes);
        float d3 = TeamSum(Dot(q3, k), lanes);
        if (part == 0 && has)
        {
            StoreScores(scores, mask, s, maskBase, live, j, j0 + j, d0, d1, d2, d3);
        }
    }

    /// <summary>Adds p·v of one value row (this lane's share <paramref name="v"/>) to the accumulators of the group's heads.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void AccumulateKey(ArrayView<float> scores, int live, Lane16 v, int j, bool has, ref Lane16 o0, ref Lane16 o1, ref Lane16 o2, ref Lane16 o3)
    {
        o0 = Axpy(Weight(scores, 0, live, j, has), v, o0);
        o1 = Axpy(Weight(scores, 1, live, j, has), v, o1);
        o2 = Axpy(Weight(scores, 2, live, j, has), v, o2);
        o3 = Axpy(Weight(scores, 3, live, j, has), v, o3);
    }

    private static void StoreScores(ArrayView<float> scores, ArrayView<float> mask, AttentionShape s, long maskBase, int live, int j, int key,
        float d0, float d1, float d2, float d3)
    {
        scores[j] = Score(d0, mask, s, maskBase, key);
        if (live > 1)
        {
            scores[MaxChunk + j] = Score(d1, mask, s, maskBase + s.MaskHead, key);
        }

        if (live > 2)
        {
            scores[(2 * MaxChunk) + j] = Score(d2, mask, s, maskBase + (2 * s.MaskHead), key);
        }

        if (live > 3)
        {
            scores[(3 * MaxChunk) + j] = Score(d3, mask, s, maskBase + (3 * s.MaskHead), key);
        }
    }

    private static float Score(float dot, ArrayView<float> mask, AttentionShape s, long maskBase, int key)
    {
        float score = dot * s.Scale;
        return s.HasMask != 0 ? score + mask[maskBase + key] : score;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float Weight(ArrayView<float> scores, int head, int live, int j, bool has) =>
        has && head < live ? scores[(head * MaxChunk) + j] : 0f;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float Dot(Lane16 x, Lane16 y)
    {
        var a = x.A;
        var b = y.A;
        float s0 = (a.V0 * b.V0) + (a.V1 * b.V1) + (a.V2 * b.V2) + (a.V3 * b.V3);
        float s1 = (a.V4 * b.V4) + (a.V5 * b.V5) + (a.V6 * b.V6) + (a.V7 * b.V7);
        a = x.B;
        b = y.B;
        float s2 = (a.V0 * b.V0) + (a.V1 * b.V1) + (a.V2 * b.V2) + (a.V3 * b.V3);
        float s3 = (a.V4 * b.V4) + (a.V5 * b.V5) + (a.V6 * b.V6) + (a.V7 * b.V7);
        return (s0 + s1) + (s2 + s3);
    }

    /// <summary>Sum over the <paramref name="lanes"/> lanes of this lane's team (aligned runs of lanes).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float TeamSum(float v, int lanes)
    {
        for (int o = 1; o < lanes; o <<= 1)
        {
            v += Warp.ShuffleXor(v, o);
        }

        return v;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Lane16 Axpy(float p, Lane16 x, Lane16 acc) => new()
    {
        A = Axpy8(p, x.A, acc.A),
        B = Axpy8(p, x.B, acc.B),
    };

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Floats8 Axpy8(float p, Floats8 x, Floats8 acc) => new()
    {
        V0 = acc.V0 + (p * x.V0),
        V1 = acc.V1 + (p * x.V1),
        V2 = acc.V2 + (p * x.V2),
        V3 = acc.V3 + (p * x.V3),
        V4 = acc.V4 + (p * x.V4),
        V5 = acc.V5 + (p * x.V5),
        V6 = acc.V6 + (p * x.V6),
        V7 = acc.V7 + (p * x.V7),
    };

    /// <summary>Adds the values of the lanes with the same part in the warp's other teams.</summary>
    private static Lane16 FoldTeams(Lane16 x, int lanes, int warpSize)
    {
        for (int o = lanes; o < warpSize; o <<= 1)
        {
            x.A = Fold8(x.A, o);
            x.B = Fold8(x.B, o);
        }

        return x;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Floats8 Fold8(Floats8 x, int o) => new()
    {
        V0 = x.V0 + Warp.ShuffleXor(x.V0, o),
        V1 = x.V1 + Warp.ShuffleXor(x.V1, o),
        V2 = x.V2 + Warp.ShuffleXor(x.V2, o),
        V3 = x.V3 + Warp.ShuffleXor(x.V3, o),
        V4 = x.V4 + Warp.ShuffleXor(x.V4, o),
        V5 = x.V5 + Warp.ShuffleXor(x.V5, o),
        V6 = x.V6 + Warp.ShuffleXor(x.V6, o),
        V7 = x.V7 + Warp.ShuffleXor(x.V7, o),
    };

    /// <summary>target[offset + i] = x[i] for i below <paramref name="room"/> (at most 8).</summary>
    internal static void Spill8(ArrayView<float> target, int offset, Floats8 x, int room)
    {
        Spill4(target, offset, x.V0, x.V1, x.V2, x.V3, room);
        Spill4(target, offset + 4, x.V4, x.V5, x.V6, x.V7, room - 4);
    }

    /// <summary>target[offset + i] = the i-th value for i below <paramref name="room"/> (at most 4).</summary>
    internal static void Spill4(ArrayView<float> target, int offset, float x0, float x1, float x2, float x3, int room)
    {
        if (room > 0)
        {
            target[offset] = x0;
        }

        if (room > 1)
        {
            target[offset + 1] = x1;
        }

        if (room > 2)
        {
            target[offset + 2] = x2;
        }

        if (room > 3)
        {
            target[offset + 3] = x3;
        }
    }
}

/// <summary>Chunking and device addresses of one streaming or tensor-core decode launch.</summary>
internal struct DecodePlan
{
    /// <summary>Keys per chunk (Grid.X is the chunk).</summary>
    public int Chunk;

    /// <summary>Keys visible to the query (lk, or min(1, lk) when causal).</summary>
    public int KeyEnd;

    /// <summary>Device addresses of k[0] and v[0] for the L2 prefetches (0: none, as on the CPU simulator).</summary>
    public long KPointer;
    public long VPointer;

    /// <summary>Streaming kernel: keys per staged tile (at most <see cref="AttentionDecodeWideKernels.TileKeys"/>; a chunk is a multiple).</summary>
    public int TileKeys;

    /// <summary>Streaming kernel: 1 when the last group of each head block merges the partials (one launch), 0 when a combine launch follows.</summary>
    public int Combine;
}

/// <summary>
/// Which work a decode group of the grid (chunk, kv head × head block, batch) owns: its chunk of keys and up to
/// <see cref="AttentionDecodeWideKernels.HeadsPerGroup"/> query heads of one kv head (the streaming and tensor-core decode share it).
/// </summary>
internal struct DecodeGroup
{
    /// <summary>The chunk (Grid.X) and the number of chunks.</summary>
    public int Split;
    public int Splits;

    /// <summary>The sequence (Grid.Z).</summary>
    public int Batch;

    /// <summary>The kv head and the group's first query head.</summary>
    public int KvHead;
    public int Head0;

    /// <summary>Query heads of the group (at most <see cref="AttentionDecodeWideKernels.HeadsPerGroup"/>).</summary>
    public int Live;

    /// <summary>The chunk's first key and its keys (the plan's chunk, fewer at the end).</summary>
    public int Key0;
    public int Keys;

    /// <summary>This group's work under <paramref name="s"/> and <paramref name="plan"/>.</summary>
    public static DecodeGroup Of(AttentionShape s, DecodePlan plan)
    {
        const int HeadsPerGroup = AttentionDecodeWideKernels.HeadsPerGroup;
        int perKv = s.Heads / s.KvHeads;
        int headBlocks = (perKv + HeadsPerGroup - 1) / HeadsPerGroup;
        int kvh = Grid.IdxY / headBlocks;
        int h0 = (kvh * perKv) + ((Grid.IdxY - (kvh * headBlocks)) * HeadsPerGroup);
        int live = perKv - (h0 - (kvh * perKv));
        int j0 = Grid.IdxX * plan.Chunk;
        return new DecodeGroup
        {
            Split = Grid.IdxX,
            Splits = Grid.DimX,
            Batch = Grid.IdxZ,
            KvHead = kvh,
            Head0 = h0,
            Live = live < HeadsPerGroup ? live : HeadsPerGroup,
            Key0 = j0,
            Keys = plan.KeyEnd - j0 < plan.Chunk ? plan.KeyEnd - j0 : plan.Chunk,
        };
    }
}

/// <summary>Where the streaming decode writes a finished output value (rounded once to the output format).</summary>
internal interface IDecodeOutput
{
    /// <summary>output[index] = value.</summary>
    void Write(long index, float value);
}

/// <summary>float32 output.</summary>
internal struct DecodeOutputF32 : IDecodeOutput
{
    public ArrayView<float> Output;

    public readonly void Write(long index, float value) => Output[index] = value;
}

/// <summary>float16 or bfloat16 (<see cref="BFloat16"/> non-zero) output bits.</summary>
internal struct DecodeOutput16 : IDecodeOutput
{
    public ArrayView<ushort> Output;
    public int BFloat16;

    public readonly void Write(long index, float value) => Output[index] = GpuMath.Store16(value, BFloat16);
}
