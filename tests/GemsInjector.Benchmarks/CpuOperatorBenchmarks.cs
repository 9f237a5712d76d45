using System;
using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Jobs;
using GemsInjector.Kernels.Cpu;
using GemsInjector.Operators;
using TorchSharp;

namespace GemsInjector.Benchmarks;

/// <summary>
/// GemsInjector's CPU kernels against the default (TorchSharp) kernels of the operator table, on the same inputs in
/// the same run, at [rows x 4096] for a large, a prefill-sized and a decode-sized batch. Two jobs: TorchSharp as
/// shipped, and TorchSharp at its best on these machines (see <see cref="TunedAndUntunedTorch"/>); the targets are
/// set against the tuned job.
/// </summary>
[Config(typeof(TunedAndUntunedTorch))]
[MemoryDiagnoser(displayGenColumns: false)]
public class CpuOperatorBenchmarks
{
    private const int Width = 4096;
    private const int HeadSize = 128;
    private torch.Tensor _x = null!;
    private torch.Tensor _y = null!;
    private torch.Tensor _gateUp = null!;
    private torch.Tensor _weight = null!;
    private torch.Tensor _residual = null!;
    private torch.Tensor _key = null!;
    private torch.Tensor _positions = null!;
    private torch.Tensor _cosSin = null!;

    /// <summary>Rows of the [rows x 4096] activations.</summary>
    [Params(4096, 64, 1)]
    public int Rows { get; set; }

    /// <summary>The operator measured.</summary>
    [ParamsSource(nameof(Operators))]
    public CpuOperator Operator { get; set; }

    /// <summary>Every operator, or those named in GEMS_BENCH_OPS (comma-separated, e.g. "Softmax,Rotary") for a quicker run.</summary>
    public static System.Collections.Generic.IEnumerable<CpuOperator> Operators()
    {
        string? only = Environment.GetEnvironmentVariable("GEMS_BENCH_OPS");
        return string.IsNullOrWhiteSpace(only)
            ? Enum.GetValues<CpuOperator>()
            : Array.ConvertAll(only.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries), name => Enum.Parse<CpuOperator>(name, ignoreCase: true));
    }

    [GlobalSetup]
    public void Setup()
    {
        var generator = new torch.Generator(20261128);
        _x = torch.randn([Rows, Width], generator: generator);
        _y = torch.randn([Rows, Width], generator: generator);
        _gateUp = torch.randn([Rows, 2 * Width], generator: generator);
        _weight = torch.rand([Width], generator: generator) + 0.5f;
        _residual = torch.randn([Rows, Width], generator: generator);
        _key = torch.randn([Rows, Width / 4], generator: generator);
        _positions = torch.arange(Rows, dtype: torch.int64);
        // A real cos/sin cache: each call rotates the same tensors in place, so the rotation must keep their norm.
        var angles = torch.rand([Math.Max(Rows, 1), HeadSize / 2], generator: generator) * (2 * Math.PI);
        _cosSin = torch.cat([angles.cos(), angles.sin()], 1);
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        foreach (var tensor in new[] { _x, _y, _gateUp, _weight, _residual, _key, _positions, _cosSin })
        {
            tensor.Dispose();
        }
    }

    [Benchmark(Baseline = true)]
    public void TorchSharp() => Run(useDefault: true);

    [Benchmark]
    public void GemsInjector() => Run(useDefault: false);

    private void Run(bool useDefault)
    {
        using var scope = torch.NewDisposeScope();
        switch (Operator)
        {
            case CpuOperator.Add:
                Pick(OperatorTable.Add, CpuTensorKernels.Add, useDefault)(_x, _y, 1);
                break;
            case CpuOperator.Mul:
                Pick(OperatorTable.Mul, CpuTensorKernels.Mul, useDefault)(_x, _y);
                break;
            case CpuOperator.Silu:
                Pick(OperatorTable.Silu, CpuTensorKernels.Silu, useDefault)(_x);
                break;
            case CpuOperator.SiluAndMul:
                Pick(OperatorTable.SiluAndMul, CpuTensorKernels.SiluAndMul, useDefault)(_gateUp);
                break;
            case CpuOperator.RmsNorm:
                Pick(OperatorTable.RmsNorm, CpuTensorKernels.RmsNorm, useDefault)(_x, _weight, 1e-6);
                break;
            case CpuOperator.FusedAddRmsNorm:
                Pick(OperatorTable.FusedAddRmsNorm, CpuTensorKernels.FusedAddRmsNorm, useDefault)(_y, _residual, _weight, 1e-6);
                break;
            case CpuOperator.Softmax:
                Pick(OperatorTable.Softmax, CpuTensorKernels.Softmax, useDefault)(_x, -1);
                break;
            case CpuOperator.Rotary:
                Pick(OperatorTable.RotaryEmbedding, CpuTensorKernels.RotaryEmbedding, useDefault)(_positions, _x, _key, HeadSize, _cosSin, true);
                break;
            default:
                throw new InvalidOperationException($"No case for {Operator}.");
        }
    }

    private static TKernel Pick<TKernel>(Operator<TKernel> op, TKernel gems, bool useDefault)
        where TKernel : Delegate => useDefault ? (TKernel)op.Default.Kernel : gems;
}

/// <summary>The operators <see cref="CpuOperatorBenchmarks"/> measures.</summary>
public enum CpuOperator
{
    Add,
    Mul,
    Silu,
    SiluAndMul,
    RmsNorm,
    FusedAddRmsNorm,
    Softmax,
    Rotary,
}

/// <summary>Matrix products with a [4096 x 4096] weight at prefill (64 rows) and decode (1 row) sizes.</summary>
[Config(typeof(TunedAndUntunedTorch))]
[MemoryDiagnoser(displayGenColumns: false)]
public class CpuMatmulBenchmarks
{
    private torch.Tensor _activations = null!;
    private torch.Tensor _weight = null!;

    [Params(64, 1)]
    public int Rows { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        var generator = new torch.Generator(20261128);
        _activations = torch.randn([Rows, 4096], generator: generator);
        _weight = torch.randn([4096, 4096], generator: generator);
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _activations.Dispose();
        _weight.Dispose();
    }

    [Benchmark(Baseline = true)]
    public void TorchSharp()
    {
        using var result = ((BinaryKernel)OperatorTable.Mm.Default.Kernel)(_activations, _weight);
    }

    [Benchmark]
    public void GemsInjector()
    {
        using var result = CpuTensorKernels.Mm(_activations, _weight);
    }
}

/// <summary>One job with TorchSharp as shipped, one with the two settings that make libtorch fast on these machines.</summary>
public sealed class TunedAndUntunedTorch : ManualConfig
{
    public TunedAndUntunedTorch()
    {
        var baseJob = Job.ShortRun.WithWarmupCount(3).WithIterationCount(9);

        // GEMS_BENCH_JOBS=tuned runs only the tuned job (a quicker run while iterating; the report uses both).
        bool tunedOnly = string.Equals(Environment.GetEnvironmentVariable("GEMS_BENCH_JOBS"), "tuned", StringComparison.OrdinalIgnoreCase);
        if (!tunedOnly)
        {
            AddJob(baseJob.WithId("torch-as-shipped"));
        }

        // ATEN_CPU_CAPABILITY=avx2 keeps libtorch off its AVX-512 exp that falls into a slow mode here; the malloc
        // tunables keep freed pages mapped, so an allocation per call does not pay page faults every time.
        AddJob(baseJob.WithId("torch-tuned").WithEnvironmentVariables(
            new EnvironmentVariable("ATEN_CPU_CAPABILITY", "avx2"),
            new EnvironmentVariable("GLIBC_TUNABLES", "glibc.malloc.arena_max=1:glibc.malloc.mmap_max=0:glibc.malloc.trim_threshold=68719476736")));
    }
}
