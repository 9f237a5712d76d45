using System;
using System.Linq;
using System.Text.RegularExpressions;
using Xunit;

namespace GemsInjector.Kernels.Ilgpu.Tests;

/// <summary>
/// What the PTX of every skinny tensor-core body must show, whichever layout: the format's mma and not the other's, the
/// accumulator quads of tiles 0 .. tiles − 1 (and none past them) from one declaration that precedes the first mma, no
/// device function, no operand left unsubstituted; and the counts each test checks against its own layout.
/// </summary>
internal static class SkinnyPtx
{
    /// <summary>A basic block of the K loop by default: it issues an mma or reads global memory.</summary>
    public const string LoopBlockDefault = @"mma\.sync|ld\.global";

    /// <summary>The m16n8k16 mma with float32 accumulators for bfloat16 or float16 operands.</summary>
    public static string Mma(bool bf16) =>
        bf16 ? "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32" : "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32";

    /// <summary>Asserts the shared shape (see the class) and returns the counts of <paramref name="ptx"/>.</summary>
    /// <param name="ptx">The kernel's SM_90 PTX.</param>
    /// <param name="bf16">The kernel's format.</param>
    /// <param name="tiles">The m16n8 accumulator tiles the body uses (quads sk0 .. sk(4·tiles − 1)).</param>
    /// <param name="declared">Accumulator registers in the single <c>.reg .f32 sk&lt;n&gt;</c> declaration.</param>
    /// <param name="loopBlock">A pattern matching the K loop's basic blocks (their local accesses are counted apart).</param>
    public static Counts AssertShape(string ptx, bool bf16, int tiles, int declared, string loopBlock = LoopBlockDefault)
    {
        string mine = Mma(bf16);
        Assert.DoesNotContain(bf16 ? ".f32.f16.f16.f32" : ".f32.bf16.bf16.f32", ptx, StringComparison.Ordinal);
        for (int tile = 0; tile < tiles; tile++)
        {
            Assert.Contains($"{{sk{tile * 4},sk{(tile * 4) + 1},sk{(tile * 4) + 2},sk{(tile * 4) + 3}}}, {{", ptx, StringComparison.Ordinal);
        }

        Assert.DoesNotContain($"{{sk{tiles * 4},", ptx, StringComparison.Ordinal);
        Assert.Single(Regex.Matches(ptx, Regex.Escape($".reg .f32 sk<{declared}>;")));
        Assert.Single(Regex.Matches(ptx, @"\.reg \.f32 sk<"));
        Assert.DoesNotContain(".func", ptx, StringComparison.Ordinal);
        Assert.True(ptx.IndexOf(".reg .f32 sk<", StringComparison.Ordinal) < ptx.IndexOf(mine, StringComparison.Ordinal), "the accumulator declaration must precede the first mma");
        Assert.DoesNotMatch(new Regex(@"\[%\d|\{%\d|, %\d+[,;]"), ptx);

        var blocks = Regex.Split(ptx, @"(?m)^\s*[A-Za-z_$][\w$]*:\s*$");
        var loopBlocks = blocks.Where(b => Regex.IsMatch(b, loopBlock)).ToArray();
        return new Counts(
            Regex.Matches(ptx, Regex.Escape(mine)).Count,
            Regex.Matches(ptx, @"ld\.global(\.nc)?\.v4\.(u32|b32)").Count,
            Regex.Matches(ptx, @"(ld|st)\.local").Count,
            loopBlocks.Sum(b => Regex.Matches(b, @"(ld|st)\.local").Count),
            loopBlocks.Length);
    }

    /// <summary>Counts of a skinny body's PTX.</summary>
    /// <param name="Mmas">mma instructions of the kernel's format.</param>
    /// <param name="Vectors">16-byte global loads.</param>
    /// <param name="Local">Local-memory accesses anywhere.</param>
    /// <param name="LoopLocal">Local-memory accesses in the K loop's blocks.</param>
    /// <param name="LoopBlocks">Basic blocks counted as the K loop's.</param>
    public readonly record struct Counts(int Mmas, int Vectors, int Local, int LoopLocal, int LoopBlocks);
}
