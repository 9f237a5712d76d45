using System;
using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Jobs;
using GemsInjector.Kernels.Cpu;
using TorchSharp;

namespace GemsInjector.Benchmarks;

/// <summary>
/// GemsInjector's CPU kernels against TorchSharp's on the same inputs, in the same run, at a large, a prefill-sized
/// and a decode-sized shape. Two jobs: TorchSharp as shipped, and TorchSharp at its best on these machines
/// (ATEN_CPU_CAPABILITY=avx2 against the slow AVX-512 exp, and malloc tunables against page-fault-bound
/// allocation; see the shared toolchain notes). The targets are set against the tuned job.
/// </summary>
[Config(typeof(TunedAndUntunedTorch))]
[MemoryDiagnoser(displayGenColumns: false)]
public class CpuOperatorBenchmarks
{
    private torch.Tensor _x = null!;
    private torch.Tensor _y = null!;
    private torch.Tensor _gateUp = null!;
    private torch.Tensor _weight = null!;
    private torch.Tensor _residualSource = null!;
    private torch.Tensor _residual = null!;
    private torch.Tensor _hidden = null!;

    /// <summary>Rows of the [rows x 4096] activations.</summary>
    [Params(4096, 64, 1)]
    public int Rows { get; set; }

    [ParamsAllValues]
    public CpuOperator Operator { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        const int width = 4096;
        var generator = new torch.Generator(20261128);
        _x = torch.randn([Rows, width], generator: generator);
        _y = torch.randn([Rows, width], generator: generator);
        _gateUp = torch.randn([Rows, 2 * width], generator: generator);
        _weight = torch.rand([width], generator: generator) + 0.5f;
        _residualSource = torch.randn([Rows, width], generator: generator);
        _residual = _residualSource.clone();
        _hidden = _x.clone();
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        foreach (var tensor in new[] { _x, _y, _gateUp, _weight, _residualSource, _residual, _hidden })
        {
            tensor.Dispose();
        }
    }

    [Benchmark(Baseline = true)]
    public void TorchSharp()
    {
        using var scope = torch.NewDisposeScope();
        switch (Operator)
        {
            case CpuOperator.Add: _x.add(_y); break;
            case CpuOperator.Mul: _x.mul(_y); break;
            case CpuOperator.Silu: torch.nn.functional.silu(_x); break;
            case CpuOperator.SiluAndMul: torch.nn.functional.silu(_gateUp.narrow(-1, 0, 4096)).mul(_gateUp.narrow(-1, 4096, 4096)); break;
            case CpuOperator.RmsNorm: _x.mul(torch.rsqrt(_x.square().mean([-1L], keepdim: true).add(1e-6))).mul(_weight); break;
            case CpuOperator.Softmax: _x.softmax(-1); break;
            default: throw new InvalidOperationException($"No TorchSharp case for {Operator}.");
        }
    }

    [Benchmark]
    public void GemsInjector()
    {
        using var scope = torch.NewDisposeScope();
        switch (Operator)
        {
            case CpuOperator.Add: CpuTensorKernels.Add(_x, _y, 1); break;
            case CpuOperator.Mul: CpuTensorKernels.Mul(_x, _y); break;
            case CpuOperator.Silu: CpuTensorKernels.Silu(_x); break;
            case CpuOperator.RmsNorm: CpuTensorKernels.RmsNorm(_x, _weight, 1e-6); break;
            default: throw new InvalidOperationException($"No GemsInjector case for {Operator}.");
        }
    }
}

/// <summary>The operators <see cref="CpuOperatorBenchmarks"/> measures.</summary>
public enum CpuOperator
{
    Add,
    Mul,
    Silu,
    SiluAndMul,
    RmsNorm,
    Softmax,
}

/// <summary>One job with TorchSharp as shipped, one with the two settings that make libtorch fast on these machines.</summary>
public sealed class TunedAndUntunedTorch : ManualConfig
{
    public TunedAndUntunedTorch()
    {
        var baseJob = Job.ShortRun.WithWarmupCount(3).WithIterationCount(7);
        AddJob(baseJob.WithId("torch-as-shipped"));
        AddJob(baseJob.WithId("torch-tuned").WithEnvironmentVariables(
            new EnvironmentVariable("ATEN_CPU_CAPABILITY", "avx2"),
            new EnvironmentVariable("GLIBC_TUNABLES", "glibc.malloc.arena_max=1:glibc.malloc.mmap_max=0:glibc.malloc.trim_threshold=68719476736")));
    }
}
