using System;
using System.Collections.Generic;
using System.Globalization;
using System.Linq;
using System.Reflection;
using System.Text.RegularExpressions;
using GemsInjector.Kernels.Ilgpu;
using ILGPU;
using ILGPU.Runtime;
using ILGPU.Runtime.Cuda;
using Xunit;

namespace GemsInjector.Kernels.Ilgpu.Tests;

/// <summary>Every [IlgpuKernel] method compiles to PTX for SM_90 without a GPU.</summary>
public sealed class PtxCompileTests
{
    public static IEnumerable<object[]> Kernels() =>
        KernelMethods().Select(m => new object[] { KernelPrecompiler.DisplayName(m) });

    /// <summary>Every kernel, generic ones once per listed variant (in the listed order): what the precompiler ships.</summary>
    internal static IEnumerable<MethodInfo> KernelMethods() => KernelPrecompiler.KernelMethods();

    [Fact]
    public void EveryGenericKernelListsItsVariants()
    {
        var unlisted = typeof(IlgpuDevice).Assembly.GetTypes()
            .SelectMany(t => t.GetMethods(BindingFlags.Static | BindingFlags.Public | BindingFlags.NonPublic))
            .Where(m => m.GetCustomAttribute<IlgpuKernelAttribute>() is not null && m.IsGenericMethodDefinition)
            .Where(m => !m.GetCustomAttributes<IlgpuKernelVariantAttribute>().Any())
            .Select(m => m.DeclaringType!.Name + "." + m.Name)
            .ToList();
        Assert.True(unlisted.Count == 0, "generic kernels without [IlgpuKernelVariant]: " + string.Join(", ", unlisted));
    }

    [Fact]
    public void KernelsAreFound() => Assert.True(KernelMethods().Count() >= 15);

    /// <summary>Exactly the emulated tensor-core bodies are simulator-only: left out of the PTX checks and the shipped archive.</summary>
    [Fact]
    public void OnlyEmulatedKernelsAreSimulatorOnly()
    {
        var kernels = typeof(IlgpuDevice).Assembly.GetTypes()
            .SelectMany(t => t.GetMethods(BindingFlags.Static | BindingFlags.Public | BindingFlags.NonPublic))
            .Select(m => (Method: m, Attribute: m.GetCustomAttribute<IlgpuKernelAttribute>()))
            .Where(k => k.Attribute is not null)
            .ToList();
        var wrong = kernels
            .Where(k => k.Attribute!.SimulatorOnly != k.Method.Name.EndsWith("Emulated", StringComparison.Ordinal))
            .Select(k => k.Method.DeclaringType!.Name + "." + k.Method.Name)
            .ToList();
        Assert.True(wrong.Count == 0, "SimulatorOnly must mark exactly the *Emulated kernels: " + string.Join(", ", wrong));
        Assert.Contains(kernels, k => k.Attribute!.SimulatorOnly);
        Assert.DoesNotContain(KernelMethods(), m => m.Name.EndsWith("Emulated", StringComparison.Ordinal));
    }

    /// <summary>
    /// A float16 kernel's PTX stays close to its bfloat16 twin's. A conversion that branches on the device (ILGPU keeps
    /// both arms of <c>CudaAsm.IsSupported</c>) made float16 PTX up to 4x larger, and the driver's JIT compiled every
    /// dead arm on each node's first call. Loads now have one form on every device; stores keep theirs (the CPU
    /// accelerator's float → Half truncates, and a branch-free exact rounding would cost every store ten instructions on
    /// the GPU), which is why a store-heavy small kernel's PTX still reaches 2x its twin.
    /// </summary>
    [Fact]
    public void Float16KernelsCarryNoDeadConversionCode()
    {
        var twins = KernelMethods()
            .Where(m => m.IsGenericMethod && m.GetGenericArguments().Contains(typeof(Float16Storage)))
            .Select(m => (Half: m, BFloat: m.GetGenericMethodDefinition().MakeGenericMethod(
                m.GetGenericArguments().Select(t => t == typeof(Float16Storage) ? typeof(BFloat16Storage) : t).ToArray())))
            .ToList();
        Assert.True(twins.Count >= 20, $"only {twins.Count} float16 kernels found");

        // Most twins are shipped variants whose PTX the shared compile already holds (Sm90Ptx); only the others compile here.
        long halfTotal = 0, bfloatTotal = 0;
        var outliers = new List<string>();
        foreach (var (half, bfloat) in twins)
        {
            int halfSize = Sm90Ptx.Of(half).Length, bfloatSize = Sm90Ptx.Of(bfloat).Length;
            halfTotal += halfSize;
            bfloatTotal += bfloatSize;
            if (halfSize > 2.5 * bfloatSize)
            {
                outliers.Add($"{KernelPrecompiler.DisplayName(half)}: {halfSize} vs {bfloatSize} characters");
            }
        }

        Assert.True(outliers.Count == 0, "float16 PTX over 2.5x its bfloat16 twin: " + string.Join("; ", outliers));
        Assert.True(halfTotal <= 1.35 * bfloatTotal, $"float16 PTX {halfTotal} characters against bfloat16 {bfloatTotal}");
    }

    /// <summary>
    /// On CUDA a bfloat16 store rounds with <c>cvt.rn.bf16x2.f32</c>, not the integer rounding the CPU accelerator runs:
    /// the integer form cost the bfloat16 row kernels ~15% against their float16 twins on the H200 (layer_norm 2262 vs
    /// 2682 GB/s). Every row-vector kernel stores its outputs through <c>RowVectors.Pack</c>.
    /// </summary>
    [Fact]
    public void BFloat16RowKernelsRoundWithTheConversionInstruction()
    {
        var kernels = KernelMethods()
            .Where(m => m.DeclaringType == typeof(RowVector16Kernels) && m.IsGenericMethod && m.GetGenericArguments().Contains(typeof(BFloat16Storage)))
            .ToList();
        Assert.True(kernels.Count >= 4, $"only {kernels.Count} bfloat16 row-vector kernels found");
        foreach (var kernel in kernels)
        {
            Assert.True(Sm90Ptx.Of(kernel).Contains("cvt.rn.bf16x2.f32", StringComparison.Ordinal), KernelPrecompiler.DisplayName(kernel));
        }
    }

    /// <summary>
    /// <c>GEMS_PTX_L2_PREFETCH</c> (<see cref="PtxL2Prefetch"/>) reaches every global load and <c>cp.async</c> copy of every
    /// shipped kernel and changes nothing else: each plain <c>ld.global</c> and each copy from global memory carries the
    /// qualifier once, and taking the qualifier out again gives ILGPU's text back, character for character.
    /// </summary>
    [Fact]
    public void L2PrefetchQualifiesEveryGlobalLoadAndNothingElse()
    {
        var loadOrCopy = new Regex(@"\b(?:ld\.global|cp\.async\.c[ag]\.shared\.global)[.\w:]*", RegexOptions.CultureInvariant);
        int loads = 0, copies = 0;
        var missed = new List<string>();
        foreach (var (method, ptx, _) in AllPtx.Value.Where(k => k.Ptx is not null))
        {
            var hinted = PtxL2Prefetch.Apply(ptx!, 256);
            Assert.Equal(ptx, hinted.Replace(".L2::256B", string.Empty, StringComparison.Ordinal));
            foreach (Match m in loadOrCopy.Matches(hinted))
            {
                if (!m.Value.Contains(".L2::256B", StringComparison.Ordinal))
                {
                    missed.Add($"{KernelPrecompiler.DisplayName(method)}: {m.Value}");
                }
                else if (m.Value.StartsWith("ld.", StringComparison.Ordinal))
                {
                    loads++;
                }
                else
                {
                    copies++;
                }
            }
        }

        Assert.True(missed.Count == 0, "left without the qualifier: " + string.Join("; ", missed.Distinct().Take(20)));
        Assert.True(loads > 1000 && copies > 50, $"{loads} loads and {copies} copies qualified");
        Assert.Same(AllPtx.Value[0].Ptx, PtxL2Prefetch.Apply(AllPtx.Value[0].Ptx!, 0));
    }

    [Theory]
    [InlineData(null, 128)]
    [InlineData("", 128)]
    [InlineData("128", 128)]
    [InlineData(" 256B ", 256)]
    [InlineData("64b", 64)]
    [InlineData("512", 128)]
    [InlineData("0", 0)]
    [InlineData(" Off", 0)]
    [InlineData("none", 0)]
    public void L2PrefetchSettingParses(string? setting, int bytes) => Assert.Equal(bytes, PtxL2Prefetch.Parse(setting));

    [Fact]
    public void L2PrefetchQualifiesTheFormsPtxWrites()
    {
        const string ptx = "ld.global.v4.u32 {%r1, %r2, %r3, %r4}, [%rd1];\nld.global.f32 %f1, [%rd2];\nld.global.nc.f32 %f2, [%rd3];\n"
            + "ld.shared.f32 %f3, [%rd4];\ncp.async.cg.shared.global [%r5], [%rd5], 16;\ncp.async.wait_group 0;\n";
        Assert.Equal(
            "ld.global.L2::128B.v4.u32 {%r1, %r2, %r3, %r4}, [%rd1];\nld.global.L2::128B.f32 %f1, [%rd2];\nld.global.nc.f32 %f2, [%rd3];\n"
            + "ld.shared.f32 %f3, [%rd4];\ncp.async.cg.shared.global.L2::128B [%r5], [%rd5], 16;\ncp.async.wait_group 0;\n",
            PtxL2Prefetch.Apply(ptx, 128));
    }

    // Every kernel's PTX (or why it failed), compiled once for the tests that read all of them: about a minute of CPU.
    private static readonly Lazy<IReadOnlyList<(MethodInfo Method, string? Ptx, string? Error)>> AllPtx = new(() =>
    {
        var all = new List<(MethodInfo, string?, string?)>();
        foreach (var method in KernelMethods())
        {
            try
            {
                all.Add((method, Sm90Ptx.Of(method), null));
            }
            catch (Exception ex)
            {
                all.Add((method, null, $"{ex.GetType().Name}: {ex.Message}"));
            }
        }

        return all;
    });

    [Fact]
    public void EveryKernelCompilesToPtxForSm90()
    {
        var failures = AllPtx.Value
            .Where(k => k.Ptx is null || !k.Ptx.Contains(".entry", StringComparison.Ordinal))
            .Select(k => $"{k.Method.DeclaringType!.Name}.{k.Method.Name}: {k.Error ?? "no .entry"}")
            .ToList();
        Assert.True(failures.Count == 0, string.Join(Environment.NewLine, failures));
    }

    /// <summary>
    /// <see cref="DirectCudaLaunch"/> packs a kernel's arguments where ILGPU's PTX entry point declares its parameters: for
    /// every shipped kernel whose parameter types it takes, each offset and the block's size equal the ones the entry's
    /// <c>.param</c> list gives (each parameter at the next multiple of its alignment). The kernels it does not take keep
    /// ILGPU's launcher; they must be few, or the first calls stay slow.
    /// </summary>
    [Fact]
    public void EveryDirectLaunchLayoutMatchesItsPtxEntry()
    {
        int direct = 0;
        var declined = new List<string>();
        var wrong = new List<string>();
        foreach (var (method, ptx, _) in AllPtx.Value.Where(k => k.Ptx is not null))
        {
            var types = method.GetParameters().Select(p => p.ParameterType).ToArray();
            if (!DirectCudaLaunch.TryLayout(types, out var offsets, out int bytes))
            {
                declined.Add(KernelPrecompiler.DisplayName(method));
                continue;
            }

            direct++;
            var (ptxOffsets, ptxBytes) = PtxParameterLayout(ptx!);
            if (!offsets.SequenceEqual(ptxOffsets) || bytes != ptxBytes)
            {
                wrong.Add($"{KernelPrecompiler.DisplayName(method)}: packed at [{string.Join(", ", offsets)}] ({bytes} B), PTX declares [{string.Join(", ", ptxOffsets)}] ({ptxBytes} B)");
            }
        }

        Assert.True(wrong.Count == 0, string.Join(Environment.NewLine, wrong));
        Assert.True(declined.Count * 10 <= direct, $"{declined.Count} kernels keep ILGPU's launcher against {direct} direct: {string.Join(", ", declined)}");
    }

    /// <summary>
    /// The structures that kernels take as parameters are copied into the parameter block byte for byte, so their .NET
    /// layout must be ILGPU's: for each, every (flattened) field's offset, the size and the alignment of ILGPU's structure
    /// type equal .NET's.
    /// </summary>
    [Fact]
    public void DirectlyCopiedStructuresHaveIlgpusLayout()
    {
        var structures = KernelMethods().SelectMany(m => m.GetParameters()).Select(p => p.ParameterType)
            .Where(t => t.IsValueType && !t.IsPrimitive && !t.IsEnum && !t.IsGenericType).Distinct().ToList();
        Assert.True(structures.Count >= 5, $"only {structures.Count} structure parameter types found");

        using var context = Context.Create(b => b.Optimize(OptimizationLevel.O2));
        var typeContext = typeof(Context).GetProperty("TypeContext", BindingFlags.Instance | BindingFlags.NonPublic | BindingFlags.Public)!.GetValue(context)!;
        var createType = typeContext.GetType().GetMethod("CreateType", [typeof(Type)])!;
        var wrong = new List<string>();
        foreach (var type in structures)
        {
            Assert.True(DirectCudaLaunch.TryLayout([type], out _, out int bytes), type.Name);
            var irType = (ILGPU.IR.Types.StructureType)createType.Invoke(typeContext, [type])!;
            var irOffsets = irType.Offsets.Select(field => field.Item2).ToArray(); // (access, offset, size) per flattened field
            var netOffsets = FlattenedOffsets(type, 0).ToArray();
            int netAlignment = FlattenedScalars(type).Max(DirectCudaLaunch.ScalarSize);
            if (!irOffsets.SequenceEqual(netOffsets) || irType.Size != bytes || irType.Alignment != netAlignment)
            {
                wrong.Add($"{type.Name}: ILGPU [{string.Join(", ", irOffsets)}] size {irType.Size} align {irType.Alignment}; .NET [{string.Join(", ", netOffsets)}] size {bytes} align {netAlignment}");
            }
        }

        Assert.True(wrong.Count == 0, string.Join(Environment.NewLine, wrong));
    }

    private static IEnumerable<int> FlattenedOffsets(Type type, int at) =>
        type.GetFields(BindingFlags.Instance | BindingFlags.Public | BindingFlags.NonPublic).SelectMany(f =>
        {
            int offset = at + (int)System.Runtime.InteropServices.Marshal.OffsetOf(type, f.Name);
            return DirectCudaLaunch.ScalarSize(f.FieldType) > 0 ? [offset] : FlattenedOffsets(f.FieldType, offset);
        });

    private static IEnumerable<Type> FlattenedScalars(Type type) =>
        type.GetFields(BindingFlags.Instance | BindingFlags.Public | BindingFlags.NonPublic)
            .SelectMany(f => DirectCudaLaunch.ScalarSize(f.FieldType) > 0 ? [f.FieldType] : FlattenedScalars(f.FieldType));

    private static readonly Regex EntryParameters = new(@"\.entry\s+[\w$]+\s*\(([^)]*)\)", RegexOptions.CultureInvariant);
    private static readonly Regex ParameterLine = new(@"\.param\s+(?:\.align\s+(\d+)\s+)?\.(\w)(\d+)\s+[\w$]+(?:\[(\d+)\])?", RegexOptions.CultureInvariant);

    /// <summary>Offsets and used size of the parameter block a PTX entry point declares.</summary>
    internal static (int[] Offsets, int Bytes) PtxParameterLayout(string ptx)
    {
        var list = EntryParameters.Match(ptx).Groups[1].Value;
        var offsets = new List<int>();
        int bytes = 0;
        foreach (Match parameter in ParameterLine.Matches(list))
        {
            int bits = int.Parse(parameter.Groups[3].Value, CultureInfo.InvariantCulture);
            int elements = parameter.Groups[4].Success ? int.Parse(parameter.Groups[4].Value, CultureInfo.InvariantCulture) : 1;
            int alignment = parameter.Groups[1].Success ? int.Parse(parameter.Groups[1].Value, CultureInfo.InvariantCulture) : bits / 8;
            int offset = (bytes + alignment - 1) / alignment * alignment;
            offsets.Add(offset);
            bytes = offset + elements * bits / 8;
        }

        return (offsets.ToArray(), bytes);
    }
}
