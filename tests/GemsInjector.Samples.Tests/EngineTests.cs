using System;
using System.IO;
using System.Linq;
using GemsLlm;
using Xunit;

namespace GemsInjector.Samples.Tests;

/// <summary>
/// The engine in this process: its patches and its output on both kernel sets. These tests switch this process's
/// operator table, so they leave it disabled, as they found it when the test host has no guard variable.
/// </summary>
public sealed class EngineTests : IDisposable
{
    private readonly DirectoryInfo _work = Directory.CreateTempSubdirectory("gems-engine-test-");
    private readonly string _checkpoint;

    public EngineTests()
    {
        _checkpoint = Path.Combine(_work.FullName, "tiny.safetensors");
        LlamaCheckpoint.Create(_checkpoint, new LlamaConfig());
        LlamaModelRunner.Start();
        Gems.Disable();
    }

    public void Dispose()
    {
        Gems.Disable();
        _work.Delete(recursive: true);
    }

    [Fact]
    public void ApplyPatches_swaps_the_three_layers_to_the_fused_operators_and_Disable_reverts_them()
    {
        using var runner = new LlamaModelRunner(_checkpoint);
        Assert.False(LlmPatches.AllApplied);

        Gems.Enable();
        var lines = Gems.ApplyPatches(verbose: true);

        Assert.Equal(LlmPatches.Lines, lines);
        Assert.True(RmsNorm.IsPatched && RotaryEmbedding.IsPatched && SiluAndMul.IsPatched);
        Assert.Empty(Gems.ApplyPatches(verbose: true));

        Gems.Disable();
        Assert.False(RmsNorm.IsPatched || RotaryEmbedding.IsPatched || SiluAndMul.IsPatched);
    }

    [Fact]
    public void Greedy_tokens_are_identical_and_logits_close_on_GemsInjector_and_default_kernels()
    {
        using var runner = new LlamaModelRunner(_checkpoint);
        string[] prompts = ["once upon a time there lived a king", "every node must run the fast kernels"];

        var defaults = runner.RunOnKernels(gems: false, prompts, 12, warmUpTokens: 0, out _)!;
        var gems = runner.RunOnKernels(gems: true, prompts, 12, warmUpTokens: 0, out var unavailable);

        Assert.Null(unavailable);
        Assert.NotNull(gems);
        Assert.False(Gems.IsEnabled);
        for (var p = 0; p < prompts.Length; p++)
        {
            Assert.Equal(defaults[p].Tokens, gems[p].Tokens);
            Assert.Equal(12, gems[p].Tokens.Length);
            var difference = gems[p].Logits.Zip(defaults[p].Logits).SelectMany(pair => pair.First.Zip(pair.Second, (a, b) => Math.Abs(a - b))).Max();
            Assert.True(difference < 1e-3, $"max logit difference {difference}");
        }

        // A seeded random model still has to say more than one word.
        Assert.True(defaults[0].Tokens.Distinct().Count() > 3, string.Join(",", defaults[0].Tokens));
    }

    [Fact]
    public void The_composed_layers_match_the_fused_operators_they_are_patched_to()
    {
        using var runner = new LlamaModelRunner(_checkpoint);
        var unpatched = runner.Generate("the river goes to the sea at night", 10, keepLogits: true);

        // Fused operators on the default kernels: only the patches differ from the run above.
        LlmPatches.EnsureRegistered();
        using (Gems.Use())
        {
            Gems.ApplyPatches();
        }

        Assert.True(LlmPatches.AllApplied);
        Assert.False(Gems.IsEnabled);
        var patched = runner.Generate("the river goes to the sea at night", 10, keepLogits: true);
        Gems.Disable();

        Assert.Equal(unpatched.Tokens, patched.Tokens);
        var difference = unpatched.Logits.Zip(patched.Logits).SelectMany(pair => pair.First.Zip(pair.Second, (a, b) => Math.Abs(a - b))).Max();
        Assert.True(difference < 1e-3, $"max logit difference {difference}");
    }

    [Fact]
    public void Generation_checks_its_arguments()
    {
        using var runner = new LlamaModelRunner(_checkpoint);
        Assert.Throws<ArgumentException>(() => runner.Model.Generate([], 4));
        Assert.Throws<ArgumentException>(() => runner.Model.Generate([1, 600], 4));
        Assert.Throws<ArgumentException>(() => runner.Model.Generate([1, 2], 300));
    }
}
