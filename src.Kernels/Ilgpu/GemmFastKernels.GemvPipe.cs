using ILGPU;

namespace GemsInjector.Kernels.Ilgpu;

internal static partial class GemmFastKernels
{
    /// <summary>
    /// Sums <c>GemvKnPipeF32</c>'s per-warp 16-byte partial sums of rows <paramref name="row0"/> .. row0 + rows − 1
    /// (red[(row − row0)·nw + warp)·warpSize + lane], lane = the column quad) and writes the group's columns of those rows:
    /// C through the epilogue with one chunk, else the split's partials. One thread per row and column quad.
    /// </summary>
    private static void GemvKnPipeFinish(ArrayView<Float4> red, ArrayView<float> bias, ArrayView<float> c, ArrayView<float> partial, GemvShape g,
        int row0, int rows, int colBase, int nw, int split)
    {
        int ws = Warp.WarpSize;
        for (int e = Group.IdxX; e < rows * ws; e += Group.DimX)
        {
            int r = e / ws;
            int quad = e - r * ws;
            int row = row0 + r;
            int col = colBase + 4 * quad;
            if (row < g.M && col < g.N)
            {
                float x = 0f, y = 0f, z = 0f, v = 0f;
                for (int warp = 0; warp < nw; warp++)
                {
                    Float4 s = red[((r * nw) + warp) * ws + quad];
                    x += s.X;
                    y += s.Y;
                    z += s.Z;
                    v += s.W;
                }

                // N is a multiple of 4 for this kernel, so the whole quad lies inside N.
                FinishVec(bias, c, partial, g, row, col, split, x, 0);
                FinishVec(bias, c, partial, g, row, col + 1, split, y, 0);
                FinishVec(bias, c, partial, g, row, col + 2, split, z, 0);
                FinishVec(bias, c, partial, g, row, col + 3, split, v, 0);
            }
        }
    }
}
