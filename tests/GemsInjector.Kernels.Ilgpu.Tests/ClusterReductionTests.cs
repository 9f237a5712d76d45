using System;
using System.Linq;
using System.Text.RegularExpressions;
using GemsInjector.Kernels.Ilgpu;
using ILGPU;
using ILGPU.Runtime;
using Xunit;

namespace GemsInjector.Kernels.Ilgpu.Tests;

/// <summary>
/// The split-K reduce in a thread-block cluster (<see cref="ClusterReduction"/>): its slices, the PTX of the cluster
/// kernel for SM_90 and the header rewrite that declares its clusters. Its arithmetic runs on the simulator in
/// <see cref="SkinnyTensorCoreKnTests.WideEmulatedKernelMatchesFloat64"/> (the emulated cluster form against the launched
/// reduce's bits).
/// </summary>
public sealed class ClusterReductionTests
{
    /// <summary>Every rank's slice together covers the tile's vectors once each, in rank order, for sizes 2, 4 and 8 and tiles of 1–8 rows of 16 vectors.</summary>
    [Theory]
    [InlineData(16, 2)]
    [InlineData(16, 8)]
    [InlineData(48, 8)]
    [InlineData(128, 8)]
    [InlineData(112, 4)]
    [InlineData(3, 8)]
    [InlineData(0, 4)]
    public void SlicesCoverTheTileOnce(int vectors, int size)
    {
        var covered = new int[vectors];
        int next = 0;
        for (int rank = 0; rank < size; rank++)
        {
            var (begin, end) = ClusterReduction.Slice(vectors, rank, size);
            Assert.True(begin <= end, $"rank {rank}: [{begin}, {end})");
            Assert.Equal(next, begin);
            for (int v = begin; v < end; v++)
            {
                covered[v]++;
            }

            next = end;
        }

        Assert.Equal(vectors, next);
        Assert.All(covered, count => Assert.Equal(1, count));
    }

    /// <summary>The cluster sizes the kernels are built for; other split counts keep the launched reduce.</summary>
    [Theory]
    [InlineData(1, 0)]
    [InlineData(2, 2)]
    [InlineData(3, 0)]
    [InlineData(4, 4)]
    [InlineData(8, 8)]
    [InlineData(16, 0)]
    public void SizeForSplits(int splits, int expected) => Assert.Equal(expected, ClusterReduction.SizeFor(splits));

    /// <summary>
    /// A kernel that carries the cluster marker gets sm_90a and <c>.reqnctapercluster 1, size, 1</c> between its parameters
    /// and its body; markers of two sizes, or a text without exactly one entry, cannot be rewritten.
    /// </summary>
    [Fact]
    public void RewriteDeclaresTheCluster()
    {
        const string Ptx = ".version 8.0\n.target sm_80\n.address_size 64\n\n.visible .entry Kernel_X(\n\t.param .align 8 .b8 _a[16],\n\t.param .b32 _b\n)\n{\n\t"
            + ClusterReduction.MarkerPrefix + "4, 1\n\tret;\n}\n";
        Assert.True(Sm90aPtx.Needs(Ptx));
        Assert.Equal(Ptx.Replace(".target sm_80", ".target sm_90a", StringComparison.Ordinal).Replace("_b\n)\n{", "_b\n)\n.reqnctapercluster 1, 4, 1\n{", StringComparison.Ordinal),
            Sm90aPtx.Rewrite(Ptx));
        Assert.Null(Sm90aPtx.Rewrite(Ptx + "// " + ClusterReduction.MarkerPrefix + "8, 1\n"));
        Assert.Null(Sm90aPtx.Rewrite(Ptx.Replace(".entry", ".func", StringComparison.Ordinal)));

        // The loader compiles with launch bounds: ILGPU writes them between the parameters and the body.
        const string Bounded = ".version 8.0\n.target sm_80\n.visible .entry Kernel_Z(\n\t.param .b32 _b\n)\n.maxntid 128, 1, 1\n.minnctapersm 4\n{\n\t"
            + ClusterReduction.MarkerPrefix + "8, 1\n}\n";
        Assert.Equal(".version 8.0\n.target sm_90a\n.visible .entry Kernel_Z(\n\t.param .b32 _b\n)\n.maxntid 128, 1, 1\n.minnctapersm 4\n.reqnctapercluster 1, 8, 1\n{\n\t"
            + ClusterReduction.MarkerPrefix + "8, 1\n}\n", Sm90aPtx.Rewrite(Bounded));

        const string Plain = ".version 8.0\n.target sm_80\n.visible .entry Kernel_Y()\n{\n\twgmma.fence.sync.aligned;\n}\n";
        Assert.DoesNotContain(".reqnctapercluster", Sm90aPtx.Rewrite(Plain), StringComparison.Ordinal);
    }

    /// <summary>
    /// Clusters along X (the decode's chunks, <see cref="DecodeClusterMerge"/>): the general marker <c>x, y, 1</c> gives
    /// <c>.reqnctapercluster x, y, 1</c> after the launch bounds; an X and a Y marker of the same size are two shapes.
    /// </summary>
    [Fact]
    public void RewriteDeclaresAClusterAlongX()
    {
        const string Bounded = ".version 8.0\n.target sm_80\n.visible .entry Kernel_Z(\n\t.param .b32 _b\n)\n.maxntid 128, 1, 1\n.minnctapersm 4\n{\n\t"
            + ClusterReduction.Marker + "8, 1, 1\n}\n";
        Assert.True(Sm90aPtx.Needs(Bounded));
        Assert.Equal(".version 8.0\n.target sm_90a\n.visible .entry Kernel_Z(\n\t.param .b32 _b\n)\n.maxntid 128, 1, 1\n.minnctapersm 4\n.reqnctapercluster 8, 1, 1\n{\n\t"
            + ClusterReduction.Marker + "8, 1, 1\n}\n", Sm90aPtx.Rewrite(Bounded));
        Assert.Null(Sm90aPtx.Rewrite(Bounded + "// " + ClusterReduction.MarkerPrefix + "8, 1\n"));
    }

    /// <summary>
    /// The cluster kernel's SM_90 PTX: its size's marker (so the loader rewrites it), the tile published before one cluster
    /// barrier and read after it through <c>mapa</c> + <c>ld.shared::cluster.v4.f32</c> (one per split, all before the
    /// first add), a second, relaxed barrier before the group leaves, no ticket and no float32 partial in global memory,
    /// and no local memory in the K loop; rewritten, the entry declares the cluster. Written to GEMS_PTX_DUMP_DIR when that
    /// is set (for ptxas by hand).
    /// </summary>
    [Theory]
    [InlineData(false, 2)]
    [InlineData(true, 4)]
    [InlineData(false, 8)]
    [InlineData(true, 8)]
    public void ClusterKernelPtxSumsInDistributedSharedMemory(bool bf16, int size)
    {
        var method = typeof(SkinnyTensorCoreKernels).GetMethod(nameof(SkinnyTensorCoreKernels.Gemm16SkinnyKnWideCluster))!
            .MakeGenericMethod(bf16 ? typeof(BFloat16Storage) : typeof(Float16Storage), size switch { 2 => typeof(Const2), 4 => typeof(Const4), _ => typeof(Const8) });
        // With the launch bounds the loader compiles it with (a .maxntid directive before the body).
        string ptx = Sm90Ptx.Of(method, new KernelSpecialization(SkinnyTensorCoreKernels.GroupSize, null), $"skinny-kn-wide-cluster-{(bf16 ? "bf16" : "f16")}-{size}");
        Assert.Contains(".maxntid", ptx, StringComparison.Ordinal);
        Assert.True(Sm90aPtx.Needs(ptx));
        Assert.Single(Regex.Matches(ptx, Regex.Escape(ClusterReduction.MarkerPrefix + size + ", 1")));
        Assert.Single(Regex.Matches(ptx, Regex.Escape(ClusterReduction.MarkerPrefix)));
        Assert.Single(Regex.Matches(ptx, Regex.Escape("barrier.cluster.arrive.aligned;")));
        Assert.Single(Regex.Matches(ptx, Regex.Escape("barrier.cluster.arrive.relaxed.aligned;")));
        Assert.Equal(2, Regex.Matches(ptx, Regex.Escape("barrier.cluster.wait.aligned;")).Count);

        // One remote read per split, all requested before the first add (no loop over the splits).
        Assert.Equal(size, Regex.Matches(ptx, Regex.Escape("mapa.shared::cluster.u32 gcr0,")).Count);
        var reads = Regex.Matches(ptx, Regex.Escape("ld.shared::cluster.v4.f32"));
        Assert.Equal(size, reads.Count);
        Assert.DoesNotContain("add.f32", ptx[reads[0].Index..reads[size - 1].Index], StringComparison.Ordinal);
        Assert.DoesNotMatch(new Regex(@"atom\.|membar\.gl"), ptx);
        Assert.DoesNotMatch(new Regex(@"st\.global(\.\w+)*\.(v4\.)?f32"), ptx);
        var blocks = Regex.Split(ptx, @"(?m)^\s*[A-Za-z_$][\w$]*:\s*$");
        Assert.Equal(0, blocks.Where(b => b.Contains("mma.sync", StringComparison.Ordinal)).Sum(b => Regex.Matches(b, @"(ld|st)\.local").Count));

        string rewritten = Sm90aPtx.Rewrite(ptx)!;
        Assert.Contains(".target sm_90a", rewritten, StringComparison.Ordinal);
        Assert.Matches(new Regex(@"\.entry Kernel_Gemm16SkinnyKnWideCluster\([^)]*\)\s*\.maxntid[^\n]*\n\.reqnctapercluster 1, " + size + @", 1\n\{"), rewritten);
    }
}
