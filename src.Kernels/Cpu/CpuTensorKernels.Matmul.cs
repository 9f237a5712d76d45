using System;
using System.Numerics.Tensors;
using GemsInjector.Kernels.Numerics;
using TorchSharp;

namespace GemsInjector.Kernels.Cpu;

/// <summary>Matrix products: <c>mm</c>, <c>bmm</c>, <c>addmm</c>.</summary>
public static unsafe partial class CpuTensorKernels
{
    private const string MmName = "aten::mm";
    private const string BmmName = "aten::bmm";
    private const string AddmmName = "aten::addmm";
    private const int SlotGemmOutput = 4;

    /// <summary>
    /// <c>aten::mm(Tensor self, Tensor mat2) -> Tensor</c>: the matrix product [m, k] x [k, n] -> [m, n], with a blocked,
    /// packed AVX-512 GEMM (Vector256 where AVX-512 is missing), parallel over row/column tiles, and a GEMV path for at
    /// most 4 rows that streams <paramref name="other"/> once. Any strides are read in place, without a copy: in
    /// particular the transposed weight <c>W.t()</c> of a contiguous W [n, k] (nn.Linear's layout). float16 and bfloat16
    /// inputs are widened to float32 while packing, accumulate in float32 and are rounded once at the end.
    /// </summary>
    /// <param name="self">A float32, float16 or bfloat16 CPU matrix [m, k].</param>
    /// <param name="other">A CPU matrix [k, n] of the same dtype.</param>
    /// <returns>A new contiguous [m, n] tensor of the inputs' dtype.</returns>
    /// <exception cref="ArgumentNullException">An argument is null.</exception>
    /// <exception cref="ArgumentException">An argument is not on the CPU, has an unsupported dtype, the dtypes differ, an argument is not
    /// 2-D, or the inner dimensions differ.</exception>
    public static torch.Tensor Mm(torch.Tensor self, torch.Tensor other)
    {
        KernelDType kind = KernelArguments.Floating(MmName, self, nameof(self));
        KernelArguments.SameDType(MmName, self, nameof(self), other, nameof(other));
        long[] a = MatrixShape(MmName, self, nameof(self), 2);
        long[] b = MatrixShape(MmName, other, nameof(other), 2);
        CheckInner(MmName, a, b, nameof(self), nameof(other));
        return Product(kind, self, a, other, b, 1f, null, 0);
    }

    /// <summary>
    /// <c>aten::bmm(Tensor self, Tensor mat2) -> Tensor</c>: batched matrix products [b, m, k] x [b, k, n] -> [b, m, n],
    /// with the GEMM of <see cref="Mm"/> (tiles of all batches share the threads); any strides are read in place.
    /// </summary>
    /// <param name="self">A float32, float16 or bfloat16 CPU tensor [b, m, k].</param>
    /// <param name="other">A CPU tensor [b, k, n] of the same dtype.</param>
    /// <returns>A new contiguous [b, m, n] tensor of the inputs' dtype.</returns>
    /// <exception cref="ArgumentNullException">An argument is null.</exception>
    /// <exception cref="ArgumentException">An argument is not on the CPU, has an unsupported dtype, the dtypes differ, an argument is not
    /// 3-D, or the batch or inner dimensions differ.</exception>
    public static torch.Tensor Bmm(torch.Tensor self, torch.Tensor other)
    {
        KernelDType kind = KernelArguments.Floating(BmmName, self, nameof(self));
        KernelArguments.SameDType(BmmName, self, nameof(self), other, nameof(other));
        long[] a = MatrixShape(BmmName, self, nameof(self), 3);
        long[] b = MatrixShape(BmmName, other, nameof(other), 3);
        if (a[0] != b[0])
        {
            throw new ArgumentException(
                $"{BmmName}: argument 'other' has shape {KernelArguments.Format(b)} but argument 'self' has shape {KernelArguments.Format(a)}; " +
                $"the batch dimensions ({b[0]} and {a[0]}) must be equal.",
                nameof(other));
        }

        CheckInner(BmmName, a[1..], b[1..], nameof(self), nameof(other), a, b);
        return Product(kind, self, a, other, b, 1f, null, 0);
    }

    /// <summary>
    /// <c>aten::addmm(Tensor self, Tensor mat1, Tensor mat2, *, Scalar beta=1, Scalar alpha=1) -> Tensor</c>:
    /// beta * self + alpha * (mat1 @ mat2), <paramref name="self"/> broadcasting to [m, n]. As in PyTorch, when
    /// <paramref name="beta"/> is 0 <paramref name="self"/> is ignored (its NaN and Inf do not propagate). beta and alpha
    /// are rounded to float32; the sum is formed in float32 (alpha * product added with one fused multiply-add per K block).
    /// </summary>
    /// <param name="self">A CPU tensor of the matrices' dtype whose shape broadcasts to [m, n].</param>
    /// <param name="mat1">A float32, float16 or bfloat16 CPU matrix [m, k].</param>
    /// <param name="mat2">A CPU matrix [k, n] of the same dtype.</param>
    /// <param name="beta">The factor of <paramref name="self"/>.</param>
    /// <param name="alpha">The factor of the product.</param>
    /// <returns>A new contiguous [m, n] tensor of the inputs' dtype.</returns>
    /// <exception cref="ArgumentNullException">An argument is null.</exception>
    /// <exception cref="ArgumentException">An argument is not on the CPU, has an unsupported dtype, the dtypes differ, a matrix is not 2-D,
    /// the inner dimensions differ, or <paramref name="self"/> does not broadcast to [m, n].</exception>
    public static torch.Tensor Addmm(torch.Tensor self, torch.Tensor mat1, torch.Tensor mat2, double beta, double alpha)
    {
        KernelDType kind = KernelArguments.Floating(AddmmName, mat1, nameof(mat1));
        KernelArguments.SameDType(AddmmName, mat1, nameof(mat1), mat2, nameof(mat2));
        KernelArguments.SameDType(AddmmName, mat1, nameof(mat1), self, nameof(self));
        long[] a = MatrixShape(AddmmName, mat1, nameof(mat1), 2);
        long[] b = MatrixShape(AddmmName, mat2, nameof(mat2), 2);
        CheckInner(AddmmName, a, b, nameof(mat1), nameof(mat2));
        long[] target = { a[0], b[1] };
        long[] selfShape = KernelArguments.Shape(self);
        long[]? broadcast = selfShape.Length <= 2 ? KernelArguments.BroadcastShape(selfShape, target) : null;
        if (broadcast is null || !KernelArguments.SameShape(broadcast, target))
        {
            throw new ArgumentException(
                $"{AddmmName}: argument 'self' has shape {KernelArguments.Format(selfShape)}, which does not broadcast to the product's shape " +
                $"{KernelArguments.Format(target)} (mat1 {KernelArguments.Format(a)} x mat2 {KernelArguments.Format(b)}).",
                nameof(self));
        }

        return Product(kind, mat1, a, mat2, b, (float)alpha, beta == 0 ? null : self, (float)beta);
    }

    /// <summary>
    /// alpha * (left @ right), plus beta * <paramref name="addend"/> when given, as a new contiguous tensor: left [m, k] x right [k, n]
    /// -> [m, n], or with a leading batch dimension [b, m, k] x [b, k, n] -> [b, m, n] (shapes <paramref name="a"/> and
    /// <paramref name="b"/> already checked). Any strides are read in place.
    /// </summary>
    private static torch.Tensor Product(
        KernelDType kind, torch.Tensor left, long[] a, torch.Tensor right, long[] b, float alpha, torch.Tensor? addend, float beta)
    {
        int rank = a.Length;
        int row = rank - 2;
        long[] sa = KernelArguments.Strides(left, rank);
        long[] sb = KernelArguments.Strides(right, rank);
        var problem = new GemmProblem
        {
            A = KernelArguments.Data(left),
            BatchStrideA = row == 0 ? 0 : sa[0],
            RowStrideA = sa[row],
            ColStrideA = sa[row + 1],
            B = KernelArguments.Data(right),
            BatchStrideB = row == 0 ? 0 : sb[0],
            RowStrideB = sb[row],
            ColStrideB = sb[row + 1],
            Batch = row == 0 ? 1 : a[0],
            M = a[row],
            K = a[row + 1],
            N = b[row + 1],
            Alpha = alpha,
        };
        long[] shape = row == 0 ? new[] { a[0], b[1] } : new[] { a[0], a[1], b[2] };
        torch.Tensor result = torch.empty(shape, KernelArguments.ScalarType(kind), torch.CPU);
        Multiply(kind, problem, result, addend, beta);
        GC.KeepAlive(left);
        GC.KeepAlive(right);
        GC.KeepAlive(addend);
        return result;
    }

    /// <summary>Runs the product into <paramref name="result"/> (directly for float32, through float32 scratch for 16-bit).</summary>
    private static void Multiply(KernelDType kind, GemmProblem problem, torch.Tensor result, torch.Tensor? addend, float beta)
    {
        long count = problem.M * problem.N * problem.Batch;
        if (count == 0)
        {
            return;
        }

        void* output = KernelArguments.Data(result);
        problem.C = kind == KernelDType.Float32 ? (float*)output : KernelScratch.Floats(SlotGemmOutput, count);
        problem.BatchStrideC = problem.M * problem.N;
        if (addend is not null)
        {
            long[] shape = KernelArguments.Shape(addend);
            long[] strides = KernelArguments.Strides(addend, shape.Length);
            long rowStride = shape.Length == 2 && shape[0] != 1 ? strides[0] : 0;
            long colStride = shape.Length >= 1 && shape[^1] != 1 ? strides[^1] : 0;
            void* data = KernelArguments.Data(addend);
            switch (kind)
            {
                case KernelDType.Float16:
                    FillScaled<Float16Lanes>(problem.C, data, rowStride, colStride, problem.M, problem.N, beta);
                    break;
                case KernelDType.BFloat16:
                    FillScaled<BFloat16Lanes>(problem.C, data, rowStride, colStride, problem.M, problem.N, beta);
                    break;
                default:
                    FillScaled<Float32Lanes>(problem.C, data, rowStride, colStride, problem.M, problem.N, beta);
                    break;
            }

            problem.Accumulate = true;
        }

        switch (kind)
        {
            case KernelDType.Float16:
                Gemm.Run<Float16Lanes>(problem);
                NarrowInto<Float16Lanes>(problem.C, output, count);
                break;
            case KernelDType.BFloat16:
                Gemm.Run<BFloat16Lanes>(problem);
                NarrowInto<BFloat16Lanes>(problem.C, output, count);
                break;
            default:
                Gemm.Run<Float32Lanes>(problem);
                break;
        }
    }

    private static void FillScaled<T>(float* c, void* source, long rowStride, long colStride, long m, long n, float beta)
        where T : struct, IFloatLanes
    {
        for (long i = 0; i < m; i++)
        {
            float* row = c + i * n;
            if (colStride == 1 && n <= int.MaxValue)
            {
                // The usual addend, a bias row or a contiguous matrix: widen with vector loads, then scale in place
                // (element by element through LoadAt this was most of a decode addmm's extra cost).
                T.Widen((byte*)source + i * rowStride * T.Size, row, (int)n);
                if (beta != 1f)
                {
                    TensorPrimitives.Multiply(new ReadOnlySpan<float>(row, (int)n), beta, new Span<float>(row, (int)n));
                }

                continue;
            }

            for (long j = 0; j < n; j++)
            {
                row[j] = beta * FloatLanes.LoadAt<T>(source, i * rowStride + j * colStride);
            }
        }
    }

    private static void NarrowInto<T>(float* source, void* destination, long count)
        where T : struct, IFloatLanes
    {
        const int Piece = 1 << 28;
        for (long done = 0; done < count; done += Piece)
        {
            int piece = (int)Math.Min(Piece, count - done);
            T.Narrow(source + done, (byte*)destination + done * T.Size, piece);
        }
    }

    private static long[] MatrixShape(string operatorName, torch.Tensor tensor, string argumentName, int rank)
    {
        long[] shape = KernelArguments.Shape(tensor);
        if (shape.Length != rank)
        {
            throw new ArgumentException(
                $"{operatorName}: argument '{argumentName}' has shape {KernelArguments.Format(shape)}, but it must be {rank}-D.", argumentName);
        }

        return shape;
    }

    private static void CheckInner(string operatorName, long[] a, long[] b, string aName, string bName, long[]? fullA = null, long[]? fullB = null)
    {
        if (a[1] != b[0])
        {
            throw new ArgumentException(
                $"{operatorName}: argument '{bName}' has shape {KernelArguments.Format(fullB ?? b)} but argument '{aName}' has shape " +
                $"{KernelArguments.Format(fullA ?? a)}; the columns of '{aName}' ({a[1]}) must equal the rows of '{bName}' ({b[0]}).",
                bName);
        }
    }
}
