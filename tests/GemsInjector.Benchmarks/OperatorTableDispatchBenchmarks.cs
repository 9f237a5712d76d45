using BenchmarkDotNet.Attributes;
using GemsInjector.Kernels.Cpu;
using GemsInjector.Operators;
using TorchSharp;

namespace GemsInjector.Benchmarks;

/// <summary>
/// What going through the operator table costs per call: Ops.Silu (table field read + delegate call) against calling
/// the same kernel method directly, on a decode-sized row where a fixed cost would show most.
/// </summary>
[MemoryDiagnoser]
public class OperatorTableDispatchBenchmarks
{
    private torch.Tensor _row = null!;
    private System.IDisposable? _scope;

    [GlobalSetup]
    public void Setup()
    {
        _row = torch.randn(1, 4096);
        _scope = Gems.Use(new GemsOptions { Logger = Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance });
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _scope?.Dispose();
        _row.Dispose();
    }

    [Benchmark(Baseline = true)]
    public void DirectKernelCall()
    {
        using var result = CpuTensorKernels.Silu(_row);
    }

    [Benchmark]
    public void ThroughOperatorTable()
    {
        using var result = Ops.Silu(_row);
    }

    [Benchmark]
    public UnaryKernel TableFieldReadOnly() => OperatorTable.Silu.Kernel;
}
