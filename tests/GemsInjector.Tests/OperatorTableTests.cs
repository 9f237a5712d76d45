using System;
using System.Linq;
using System.Reflection;
using GemsInjector.Operators;
using GemsInjector.TestSupport;
using TorchSharp;
using Xunit;

namespace GemsInjector.Tests;

public sealed class OperatorTableTests
{
    [Fact]
    public void The_table_holds_exactly_the_operators_named_in_OperatorNames()
    {
        var declared = typeof(OperatorNames).GetFields(BindingFlags.Public | BindingFlags.Static)
            .Where(field => field.IsLiteral)
            .Select(field => (string)field.GetRawConstantValue()!)
            .Order(StringComparer.Ordinal);

        Assert.Equal(declared, OperatorTable.Names);
        Assert.Equal(30, OperatorTable.All.Count);
    }

    [Fact]
    public void Every_operator_has_a_schema_of_its_namespace_and_a_default_TorchSharp_kernel_on_the_CPU_key()
    {
        foreach (var op in OperatorTable.All)
        {
            Assert.Matches(@"^(aten|_C)::\w+(\.\w+)?\(.*\) -> .+$", op.Schema);
            Assert.Equal("CPU", op.Default.DispatchKey);
            Assert.StartsWith("GemsInjector.Operators.TorchSharpKernels.", op.Default.RegisteredAt, StringComparison.Ordinal);
            Assert.Same(op.Default, op.Current);
            Assert.Same(op, OperatorTable.Find(op.Name));
        }
    }

    [Fact]
    public void The_cpu_path_has_a_kernel_for_every_operator_under_its_own_name()
    {
        var catalog = GemsKernelCatalog.ForCpu();

        Assert.Equal(OperatorTable.All.Select(op => op.Name), catalog.Select(pair => pair.Operator.Name));
        foreach (var (op, kernel) in catalog)
        {
            Assert.Equal("CPU", kernel.DispatchKey);
            var method = op.Name.Replace("_", "", StringComparison.Ordinal);
            Assert.Matches($@"^GemsInjector\.Kernels\.Cpu\.CpuTensorKernels\.(?i:{method}) \(GemsInjector\.Kernels [0-9.]+\)$", kernel.RegisteredAt);
        }
    }

    [Fact]
    public void Each_Ops_method_calls_the_operator_of_the_same_name()
    {
        var opsMethods = typeof(Ops).GetMethods(BindingFlags.Public | BindingFlags.Static).Select(method => method.Name).Order(StringComparer.Ordinal);
        var tableFields = typeof(OperatorTable).GetFields(BindingFlags.Public | BindingFlags.Static)
            .Where(field => typeof(Operator).IsAssignableFrom(field.FieldType))
            .Select(field => field.Name)
            .Order(StringComparer.Ordinal);

        Assert.Equal(tableFields, opsMethods);
    }

    [Fact]
    public void Recording_wraps_kernels_of_every_shape_and_keeps_their_results()
    {
        var notes = 0;
        using var scope = torch.NewDisposeScope();
        var x = torch.tensor(new[] { 3f, -1f, 2f });

        var topk = NotifyingKernel.Wrap<TopKKernel>(TorchSharpKernels.TopK, () => notes++);
        var (values, indices) = topk(x, 2, -1, true);
        var fused = NotifyingKernel.Wrap<FusedAddNormKernel>((input, residual, weight, epsilon) => residual.add_(input, HeldScalars.One), () => notes++);
        var residual = torch.zeros(3);
        fused(x, residual, x, 0);

        Assert.Equal(new[] { 3f, 2f }, values.data<float>().ToArray());
        Assert.Equal(new[] { 0L, 2L }, indices.data<long>().ToArray());
        Assert.Equal(new[] { 3f, -1f, 2f }, residual.data<float>().ToArray());
        Assert.Equal(2, notes);
    }
}
