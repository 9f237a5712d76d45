using System;
using System.IO;
using System.Linq;
using GemsInjector.Kernels.Ilgpu;
using ILGPU;
using ILGPU.Backends.EntryPoints;
using ILGPU.Backends.PTX;
using ILGPU.Runtime;
using ILGPU.Runtime.Cuda;
using Xunit;

namespace GemsInjector.Kernels.Ilgpu.Tests;

/// <summary>
/// The SGEMM kernels' PTX for SM_90 keeps its register tiles out of local memory (no <c>.local</c> state space), and uses
/// 16-byte shared loads. Set GEMS_PTX_DUMP_DIR to keep the PTX for reading.
/// </summary>
public sealed class SgemmPtxTests
{
    public static TheoryData<string> Variants() => new() { "Sgemm8x8F32<16,1>", "Sgemm8x8F32<16,2>", "SgemmWarpF32<16,1,8>", "SgemmWarpF32<16,2,8>", "SgemmWarpF32<16,1,16>", "SgemmWarpF32<16,2,16>", "SgemmWarpF32<16,1,8,flat>" };

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
            "SgemmWarpF32<16,1,16>" => Warp(typeof(Const1), typeof(Const16), typeof(Const16)),
            "SgemmWarpF32<16,2,16>" => Warp(typeof(Const2), typeof(Const16), typeof(Const16)),
            "SgemmWarpF32<16,1,8,flat>" => Warp(typeof(Const1), typeof(Const8), typeof(Const1)),
            _ => throw new ArgumentOutOfRangeException(nameof(variant)),
        };
        using var context = Context.Create(b => b.Optimize(OptimizationLevel.O2));
        using var backend = new PTXBackend(context, new CudaCapabilityContext(CudaArchitecture.SM_90),
            CudaArchitecture.SM_90, CudaInstructionSet.ISA_80, nvvmAPI: null);
        var compiled = (PTXCompiledKernel)backend.Compile(EntryPointDescription.FromExplicitlyGroupedKernel(method), new KernelSpecialization(256, 2));
        string ptx = compiled.PTXAssembly;
        string? dump = Environment.GetEnvironmentVariable("GEMS_PTX_DUMP_DIR");
        if (!string.IsNullOrEmpty(dump))
        {
            Directory.CreateDirectory(dump);
            File.WriteAllText(Path.Combine(dump, variant.Replace('<', '_').Replace('>', '_').Replace(',', '_') + ".ptx"), ptx);
        }

        Assert.DoesNotContain(".local", ptx, StringComparison.Ordinal);
        Assert.Contains("ld.shared.v4.f32", ptx, StringComparison.Ordinal);

        // Static shared memory above 48 KB a group fails when the module loads.
        long sharedBytes = System.Text.RegularExpressions.Regex.Matches(ptx, @"\.shared\s+\.align\s+\d+\s+\.b8\s+\w+\[(\d+)\]")
            .Sum(m => long.Parse(m.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture));
        Assert.InRange(sharedBytes, 1, 48 * 1024);
        if (variant.StartsWith("SgemmWarp", StringComparison.Ordinal))
        {
            Assert.True(ptx.Contains("ld.global.v4.f32", StringComparison.Ordinal) || ptx.Contains("ld.global.v4.b32", StringComparison.Ordinal)
                || ptx.Contains("ld.global.v4.u32", StringComparison.Ordinal), "no 16-byte global load");
        }
    }

    private static System.Reflection.MethodInfo Warp(Type halves, Type bk, Type warpRowsLimit) =>
        typeof(GemmFastKernels).GetMethod(nameof(GemmFastKernels.SgemmWarpF32))!.MakeGenericMethod(typeof(Const16), halves, bk, warpRowsLimit);
}
