using System;
using System.IO;
using System.Linq;
using GemsInjector.Kernels.Ilgpu;
using ILGPU;
using ILGPU.Runtime;
using Xunit;

namespace GemsInjector.Kernels.Ilgpu.Tests;

/// <summary>
/// The SGEMM kernels' PTX for SM_90 keeps its register tiles out of local memory (no <c>.local</c> state space), and uses
/// 16-byte shared loads. Set GEMS_PTX_DUMP_DIR to keep the PTX for reading.
/// </summary>
public sealed class SgemmPtxTests
{
    public static TheoryData<string> Variants() => new() { "Sgemm8x8F32<16,1>", "Sgemm8x8F32<16,2>", "SgemmWarpF32<16,1,8>", "SgemmWarpF32<16,2,8>", "SgemmWarpF32<16,1,8,flat>", "SgemmWarpNkVecF32<16,1,8,flat>", "SgemmWide8x16F32<16,2,16>", "SgemmWide8x16F32<16,1,16>" };

    [Theory]
    [MemberData(nameof(Variants))]
    public void SgemmPtxHasNoLocalMemoryAndVectorSharedLoads(string variant)
    {
        var method = variant switch
        {
            "Sgemm8x8F32<16,1>" => typeof(GemmFastKernels).GetMethod(nameof(GemmFastKernels.Sgemm8x8F32))!.MakeGenericMethod(typeof(Const16), typeof(Const1)),
            "Sgemm8x8F32<16,2>" => typeof(GemmFastKernels).GetMethod(nameof(GemmFastKernels.Sgemm8x8F32))!.MakeGenericMethod(typeof(Const16), typeof(Const2)),
            "SgemmWarpF32<16,1,8>" => Warp(typeof(Const1), typeof(Const8), typeof(Const16)),
            "SgemmWarpF32<16,2,8>" => Warp(typeof(Const2), typeof(Const8), typeof(Const16)),
            "SgemmWarpF32<16,1,8,flat>" => Warp(typeof(Const1), typeof(Const8), typeof(Const1)),
            "SgemmWarpNkVecF32<16,1,8,flat>" => WarpNkVec(),
            "SgemmWide8x16F32<16,2,16>" => Wide(typeof(Const2), typeof(Const16)),
            "SgemmWide8x16F32<16,1,16>" => Wide(typeof(Const1), typeof(Const16)),
            _ => throw new ArgumentOutOfRangeException(nameof(variant)),
        };
        string ptx = CompilePtx(method, variant.StartsWith("SgemmWide", StringComparison.Ordinal) ? 128 : 256,
            variant.Replace('<', '_').Replace('>', '_').Replace(',', '_'));

        Assert.DoesNotContain(".local", ptx, StringComparison.Ordinal);
        Assert.Contains("ld.shared.v4.f32", ptx, StringComparison.Ordinal);

        // Static shared memory above 48 KB a group fails when the module loads.
        long sharedBytes = System.Text.RegularExpressions.Regex.Matches(ptx, @"\.shared\s+\.align\s+\d+\s+\.b8\s+\w+\[(\d+)\]")
            .Sum(m => long.Parse(m.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture));
        Assert.InRange(sharedBytes, 1, 48 * 1024);
        if (variant.StartsWith("SgemmWide", StringComparison.Ordinal))
        {
            // Launch bounds for 2 groups of 128 threads (ptxas may use up to 255 registers); the written-out 4-step body
            // holds 4 × (2 A + 4 B) 16-byte fragment loads and 4 × 128 multiply-adds, and no 8-byte or scalar shared
            // load (the staging stores are the only other shared accesses).
            Assert.Contains(".maxntid 128", ptx, StringComparison.Ordinal);
            Assert.Contains(".minnctapersm 2", ptx, StringComparison.Ordinal);
            Assert.Equal(24, System.Text.RegularExpressions.Regex.Matches(ptx, @"ld\.shared\.v4\.f32").Count);
            Assert.DoesNotContain("ld.shared.f32", ptx, StringComparison.Ordinal);
            Assert.DoesNotContain("ld.shared.v2", ptx, StringComparison.Ordinal);
            int muls = System.Text.RegularExpressions.Regex.Matches(ptx, @"\bmul(\.rn)?\.f32\b").Count;
            int fmas = System.Text.RegularExpressions.Regex.Matches(ptx, @"\bfma\.rn\.f32\b").Count;
            Assert.True(muls + fmas >= 4 * 128, $"{muls} mul.f32 + {fmas} fma.rn.f32, expected at least 512 in the K loop");
            Assert.True(sharedBytes <= GemmFastKernels.WideShared * sizeof(float), $"{sharedBytes} bytes of shared memory");
        }

        if (variant.StartsWith("SgemmWarp", StringComparison.Ordinal) || variant.StartsWith("SgemmWide", StringComparison.Ordinal))
        {
            Assert.True(ptx.Contains("ld.global.v4.f32", StringComparison.Ordinal) || ptx.Contains("ld.global.v4.b32", StringComparison.Ordinal)
                || ptx.Contains("ld.global.v4.u32", StringComparison.Ordinal), "no 16-byte global load");
        }
    }

    /// <summary>
    /// The flat tile's B [N, K] staging for SM_90 (<c>GEMS_SGEMM_FLAT_TB_STAGE</c>): <c>SgemmWarpNkVecF32</c> stores each
    /// staged B vector with one <c>st.shared.v4.f32</c> (4 per K-tile, at the prologue and in the K loop: 8) where the flat
    /// <c>SgemmWarpF32</c> stores a transposed B as 16 scalars per K-tile; A's scalar stores (4 per staging slot, 2 slots
    /// at each of the 2 sites; the second slot's guard is false on GPUs and ptxas drops it) are the only scalar shared
    /// stores left; the K loop reads 8 B + 4 A 16-byte fragments per 4 steps and no scalar; no local memory, launch bounds
    /// for 2 groups of 256 threads.
    /// </summary>
    [Fact]
    public void FlatNkVectorStagingStoresSixteenBytes()
    {
        string vec = CompilePtx(WarpNkVec(), 256, "SgemmWarpNkVecF32_16_1_8_flat_");
        string scalar = CompilePtx(Warp(typeof(Const1), typeof(Const8), typeof(Const1)), 256, "SgemmWarpF32_16_1_8_flat_");
        int Count(string ptx, string pattern) => System.Text.RegularExpressions.Regex.Matches(ptx, pattern).Count;

        Assert.DoesNotContain(".local", vec, StringComparison.Ordinal);
        Assert.Contains(".maxntid 256", vec, StringComparison.Ordinal);
        Assert.Contains(".minnctapersm 2", vec, StringComparison.Ordinal);
        Assert.Equal(2 * 4, Count(vec, @"st\.shared\.v4\.f32"));
        Assert.Equal(2 * 2 * 4, Count(vec, @"st\.shared\.f32"));
        Assert.Equal(8 + 4, Count(vec, @"ld\.shared\.v4\.f32"));
        Assert.Equal(0, Count(vec, @"ld\.shared\.f32"));
        int muls = Count(vec, @"\bmul(\.rn)?\.f32\b");
        int fmas = Count(vec, @"\bfma\.rn\.f32\b");
        Assert.True(muls + fmas >= 4 * 32, $"{muls} mul.f32 + {fmas} fma.rn.f32, expected at least 128 in the K loop");

        // The scalar staging it stands in for: both B layouts' stores, [N, K] as 16 scalars a K-tile.
        Assert.Equal(2 * ((2 * 4) + 16), Count(scalar, @"st\.shared\.f32"));
        Assert.Equal(2 * 4, Count(scalar, @"st\.shared\.v4\.f32"));
    }

    /// <summary>
    /// The cp.async SGEMM (both B layouts; the square 128x128 tile at K-tile 16 and the short 64x256 one at K-tile 8, B
    /// [N, K] also at 16): no local memory, launch bounds for two groups of 128 threads, the copies of a K-tile written out
    /// at three sites (two prologue tiles, the loop's: 4 A + 4 B square, 1 A + 4 B short, 2 A + 8 B short at K-tile 16),
    /// wait_group 1 in the loop, only dynamic shared memory (three stages within 48 KB, or marked for the opt-in limit),
    /// and per 4 K steps 8 A + 16 B 16-byte fragment loads, no scalar shared load.
    /// </summary>
    [Theory]
    [InlineData(1, 2, 16)]
    [InlineData(2, 2, 16)]
    [InlineData(1, 1, 8)]
    [InlineData(2, 1, 8)]
    [InlineData(2, 1, 16)]
    public void AsyncSgemmPtxCopiesWithCpAsync(int bLayout, int warpRows, int bk)
    {
        var method = typeof(GemmFastKernels).GetMethod(nameof(GemmFastKernels.SgemmAsync8x16F32))!
            .MakeGenericMethod(typeof(Const16), bk == 16 ? typeof(Const16) : typeof(Const8), bLayout == 2 ? typeof(Const2) : typeof(Const1),
                warpRows == 2 ? typeof(Const2) : typeof(Const1));
        string ptx = CompilePtx(method, 128, $"SgemmAsync8x16F32_16_{bk}_{bLayout}_{warpRows}");

        Assert.DoesNotContain(".local", ptx, StringComparison.Ordinal);
        Assert.Contains(".maxntid 128", ptx, StringComparison.Ordinal);
        Assert.Contains(".minnctapersm 2", ptx, StringComparison.Ordinal);
        // ILGPU may leave copy slots that the simulator's tiles use as branches whose guard is false on GPUs, which ptxas
        // drops (24 LDGSTS in the square tile's SASS, 15 in the short one's).
        int perTile = CopiesPerTile(warpRows, bk);
        int copies = System.Text.RegularExpressions.Regex.Matches(ptx, @"cp\.async\.cg\.shared\.global").Count;
        Assert.InRange(copies, 3 * perTile, 3 * (perTile + 4));
        Assert.Contains("cp.async.wait_group 1;", ptx, StringComparison.Ordinal);
        Assert.DoesNotMatch(@"\.shared\s+\.align\s+\d+\s+\.b8\s+\w+\[[1-9]", ptx);
        Assert.Equal(8 + 16, System.Text.RegularExpressions.Regex.Matches(ptx, @"ld\.shared\.v4\.f32").Count);
        Assert.DoesNotContain("ld.shared.f32", ptx, StringComparison.Ordinal);
        int muls = System.Text.RegularExpressions.Regex.Matches(ptx, @"\bmul(\.rn)?\.f32\b").Count;
        int fmas = System.Text.RegularExpressions.Regex.Matches(ptx, @"\bfma\.rn\.f32\b").Count;
        Assert.True(muls + fmas >= 4 * 128, $"{muls} mul.f32 + {fmas} fma.rn.f32, expected at least 512 in the K loop");
        AssertSharedFitsOrIsMarked(ptx, warpRows, bk);
    }

    /// <summary>
    /// The rotated-fragment cp.async SGEMM (B [K, N]; the square tile at K-tile 16 and the short 64x256 one at K-tile 8 and
    /// 16): no local memory, launch bounds for two groups of 128 threads, the copies of a K-tile at three sites (4 + 4
    /// square, 1 + 4 short, 2 + 8 short at K-tile 16), wait_group 1, only dynamic shared memory (marked for the opt-in
    /// limit above 48 KB), and 16-byte fragment loads only: step 0's 8 A + 4 B once per tile, and per two-step iteration
    /// 2 × (8 A + 4 B of the next step + 3·4 B of the step itself).
    /// </summary>
    [Theory]
    [InlineData(2, 16)]
    [InlineData(1, 8)]
    [InlineData(1, 16)]
    public void AsyncPipeSgemmPtxRotatesFragments(int warpRows, int bk)
    {
        var method = typeof(GemmFastKernels).GetMethod(nameof(GemmFastKernels.SgemmAsyncPipe8x16F32))!
            .MakeGenericMethod(typeof(Const16), bk == 16 ? typeof(Const16) : typeof(Const8), warpRows == 2 ? typeof(Const2) : typeof(Const1));
        string ptx = CompilePtx(method, 128, $"SgemmAsyncPipe8x16F32_16_{bk}_{warpRows}");

        Assert.DoesNotContain(".local", ptx, StringComparison.Ordinal);
        Assert.Contains(".maxntid 128", ptx, StringComparison.Ordinal);
        Assert.Contains(".minnctapersm 2", ptx, StringComparison.Ordinal);
        int perTile = CopiesPerTile(warpRows, bk);
        int copies = System.Text.RegularExpressions.Regex.Matches(ptx, @"cp\.async\.cg\.shared\.global").Count;
        Assert.InRange(copies, 3 * perTile, 3 * (perTile + 4));
        Assert.Contains("cp.async.wait_group 1;", ptx, StringComparison.Ordinal);
        Assert.DoesNotMatch(@"\.shared\s+\.align\s+\d+\s+\.b8\s+\w+\[[1-9]", ptx);
        Assert.Equal((8 + 4) + (2 * (8 + 16)), System.Text.RegularExpressions.Regex.Matches(ptx, @"ld\.shared\.v4\.f32").Count);
        Assert.DoesNotContain("ld.shared.f32", ptx, StringComparison.Ordinal);
        int muls = System.Text.RegularExpressions.Regex.Matches(ptx, @"\bmul(\.rn)?\.f32\b").Count;
        int fmas = System.Text.RegularExpressions.Regex.Matches(ptx, @"\bfma\.rn\.f32\b").Count;
        Assert.True(muls + fmas >= 4 * 128, $"{muls} mul.f32 + {fmas} fma.rn.f32, expected at least 512 in the K loop");
        AssertSharedFitsOrIsMarked(ptx, warpRows, bk);
    }

    /// <summary>
    /// The spread short tile (B [K, N], K-tile 8 and 16): no local memory, launch bounds for two groups of 128 threads, the
    /// copies of a K-tile at three sites (two prologue tiles, then the loop's shares: 1 + 4 per K-tile at 8, 2 + 8 at 16),
    /// wait_group 1, only dynamic shared memory (marked above 48 KB), and the K-tile written out: step 0's 8 A + 4 B
    /// fragment loads, then per two steps 2 × (8 A + 4 B of the next step + 3·4 B of the step itself), less the last
    /// step's reads of a next step (the loop kernel's wrapped re-read, dead once nothing loops over the steps).
    /// </summary>
    [Theory]
    [InlineData(8)]
    [InlineData(16)]
    public void SpreadPipeSgemmPtxWritesOutTheKTile(int bk)
    {
        var method = typeof(GemmFastKernels).GetMethod(nameof(GemmFastKernels.SgemmAsyncPipeSpread8x16F32))!
            .MakeGenericMethod(typeof(Const16), bk == 16 ? typeof(Const16) : typeof(Const8), typeof(Const1));
        string ptx = CompilePtx(method, 128, $"SgemmAsyncPipeSpread8x16F32_16_{bk}_1");

        Assert.DoesNotContain(".local", ptx, StringComparison.Ordinal);
        Assert.Contains(".maxntid 128", ptx, StringComparison.Ordinal);
        Assert.Contains(".minnctapersm 2", ptx, StringComparison.Ordinal);
        int perTile = CopiesPerTile(1, bk);
        int copies = System.Text.RegularExpressions.Regex.Matches(ptx, @"cp\.async\.cg\.shared\.global").Count;
        Assert.InRange(copies, 3 * perTile, 3 * (perTile + 4));
        Assert.Contains("cp.async.wait_group 1;", ptx, StringComparison.Ordinal);
        Assert.DoesNotMatch(@"\.shared\s+\.align\s+\d+\s+\.b8\s+\w+\[[1-9]", ptx);
        Assert.Equal((8 + 4) + (bk / 8 * 2 * (8 + 16)) - (8 + 4), System.Text.RegularExpressions.Regex.Matches(ptx, @"ld\.shared\.v4\.f32").Count);
        Assert.DoesNotContain("ld.shared.f32", ptx, StringComparison.Ordinal);
        AssertSharedFitsOrIsMarked(ptx, 1, bk);
    }

    /// <summary>
    /// The short tile at K-tile 16 as the precompiler ships it (GemsInjector.Kernels.ptx.zip): the archive's entry still
    /// carries the opt-in marker, so a kernel read from it gets its shared limit raised on load as a compiled one does.
    /// </summary>
    [Fact]
    public void ShippedShortTileAtKTile16KeepsTheOptInMarker()
    {
        var kernels = new[]
        {
            typeof(GemmFastKernels).GetMethod(nameof(GemmFastKernels.SgemmAsyncPipe8x16F32))!.MakeGenericMethod(typeof(Const16), typeof(Const16), typeof(Const1)),
            typeof(GemmFastKernels).GetMethod(nameof(GemmFastKernels.SgemmAsync8x16F32))!.MakeGenericMethod(typeof(Const16), typeof(Const16), typeof(Const2), typeof(Const1)),
            typeof(GemmFastKernels).GetMethod(nameof(GemmFastKernels.SgemmAsyncPipe8x16F32))!.MakeGenericMethod(typeof(Const16), typeof(Const8), typeof(Const1)),
        };
        string directory = Path.Combine(Path.GetTempPath(), "gems-sgemm-k16-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(directory);
        try
        {
            string archivePath = Path.Combine(directory, ShippedKernels.FileName);
            var results = KernelPrecompiler.Precompile(archivePath, kernels, null);
            Assert.All(results, result => Assert.Null(result.Error));
            using var archive = System.IO.Compression.ZipFile.OpenRead(archivePath);
            var texts = archive.Entries.Select(entry =>
            {
                using var reader = new StreamReader(entry.Open());
                return (entry.FullName, Text: reader.ReadToEnd());
            }).ToArray();
            Assert.Equal(3, texts.Length);
            Assert.Equal(2, texts.Count(entry => entry.Text.Contains(Sm90aPtx.OptInSharedMarker, StringComparison.Ordinal)));
            Assert.DoesNotContain(texts, entry => entry.FullName.Contains(".Const8.", StringComparison.Ordinal) && entry.Text.Contains(Sm90aPtx.OptInSharedMarker, StringComparison.Ordinal));
        }
        finally
        {
            Directory.Delete(directory, true);
        }
    }

    /// <summary>16-byte copies a thread issues per K-tile: A and B vectors of the tile over 128 threads.</summary>
    private static int CopiesPerTile(int warpRows, int bk)
    {
        var (rows, cols) = GemmFastKernels.WideTile(16, warpRows);
        return (rows + cols) * (bk / 4) / 128;
    }

    /// <summary>
    /// Three stages within the 48 KB a group gets by default and no marker, or over it (the short tile at K-tile 16: 60 KB)
    /// with <see cref="Sm90aPtx.OptInSharedMarker"/>, within two groups of an H100 / H200 SM (228 KB less 1 KB each).
    /// </summary>
    private static void AssertSharedFitsOrIsMarked(string ptx, int warpRows, int bk)
    {
        var (rows, cols) = GemmFastKernels.WideTile(16, warpRows);
        int bytes = GemmFastKernels.AsyncShared(rows, cols, bk) * sizeof(float);
        bool marked = ptx.Contains(Sm90aPtx.OptInSharedMarker, StringComparison.Ordinal);
        Assert.Equal(bytes > GemmFastKernels.DefaultSharedBytes, marked);
        Assert.InRange(2 * (bytes + 1024), 0, 228 * 1024);
    }

    /// <summary>
    /// SM_90 PTX of <paramref name="method"/> with launch bounds for two groups of <paramref name="threads"/>; written to
    /// GEMS_PTX_DUMP_DIR as <paramref name="dumpName"/>.ptx when that variable is set (for ptxas by hand).
    /// </summary>
    private static string CompilePtx(System.Reflection.MethodInfo method, int threads, string dumpName) =>
        Sm90Ptx.Of(method, new KernelSpecialization(threads, 2), dumpName);

    private static System.Reflection.MethodInfo Wide(Type warpRows, Type bk) =>
        typeof(GemmFastKernels).GetMethod(nameof(GemmFastKernels.SgemmWide8x16F32))!.MakeGenericMethod(typeof(Const16), warpRows, bk);

    private static System.Reflection.MethodInfo WarpNkVec() =>
        typeof(GemmFastKernels).GetMethod(nameof(GemmFastKernels.SgemmWarpNkVecF32))!.MakeGenericMethod(typeof(Const16), typeof(Const1), typeof(Const8), typeof(Const1));

    private static System.Reflection.MethodInfo Warp(Type halves, Type bk, Type warpRowsLimit) =>
        typeof(GemmFastKernels).GetMethod(nameof(GemmFastKernels.SgemmWarpF32))!.MakeGenericMethod(typeof(Const16), halves, bk, warpRowsLimit);
}
