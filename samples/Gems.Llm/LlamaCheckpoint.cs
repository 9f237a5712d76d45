using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Text.Json;

namespace GemsLlm;

/// <summary>
/// The sample model's weights on disk: a seeded checkpoint in the safetensors layout (names as Hugging Face Llama
/// checkpoints, with vLLM's merged gate/up projection), written once and loaded back with validation.
/// </summary>
public static class LlamaCheckpoint
{
    /// <summary>The metadata key holding the <see cref="LlamaConfig"/> JSON.</summary>
    public const string ConfigKey = "gems.llm.config";

    /// <summary>The metadata key holding the seed the weights were drawn with.</summary>
    public const string SeedKey = "gems.llm.seed";

    /// <summary>The seed of the sample checkpoint.</summary>
    public const int DefaultSeed = 20261128;

    /// <summary>Where the samples keep their checkpoint by default: <c>checkpoints/tiny-llama.safetensors</c> beside the app.</summary>
    public static string DefaultPath => Path.Combine(AppContext.BaseDirectory, "checkpoints", "tiny-llama.safetensors");

    /// <summary>Every tensor the model needs, with its shape.</summary>
    public static IReadOnlyList<(string Name, long[] Shape)> ExpectedTensors(LlamaConfig config)
    {
        ArgumentNullException.ThrowIfNull(config);
        long h = config.HiddenSize, q = config.Heads * config.HeadDim, kv = config.KvHeads * config.HeadDim, i = config.IntermediateSize;
        var tensors = new List<(string, long[])> { ("model.embed_tokens.weight", [config.VocabSize, h]) };
        for (var layer = 0; layer < config.Layers; layer++)
        {
            var prefix = $"model.layers.{layer}.";
            tensors.Add((prefix + "input_layernorm.weight", [h]));
            tensors.Add((prefix + "self_attn.q_proj.weight", [q, h]));
            tensors.Add((prefix + "self_attn.k_proj.weight", [kv, h]));
            tensors.Add((prefix + "self_attn.v_proj.weight", [kv, h]));
            tensors.Add((prefix + "self_attn.o_proj.weight", [h, q]));
            tensors.Add((prefix + "post_attention_layernorm.weight", [h]));
            tensors.Add((prefix + "mlp.gate_up_proj.weight", [2 * i, h]));
            tensors.Add((prefix + "mlp.down_proj.weight", [h, i]));
        }

        tensors.Add(("model.norm.weight", [h]));
        tensors.Add(("lm_head.weight", [config.VocabSize, h]));
        return tensors;
    }

    /// <summary>Draws seeded weights for <paramref name="config"/> (normal, scaled by 1/√fan-in; norms near 1) and writes them to <paramref name="path"/>.</summary>
    public static void Create(string path, LlamaConfig config, int seed = DefaultSeed)
    {
        ArgumentNullException.ThrowIfNull(config);
        config.Validate();
        var random = new Random(seed);
        var tensors = new List<NamedTensor>();
        foreach (var (name, shape) in ExpectedTensors(config))
        {
            var data = new float[shape.Aggregate(1L, (p, d) => p * d)];
            if (shape.Length == 1)
            {
                for (var k = 0; k < data.Length; k++)
                {
                    data[k] = 1f + 0.1f * Normal(random);
                }
            }
            else
            {
                var scale = name.Contains("embed_tokens", StringComparison.Ordinal) ? 1.0 : 1.0 / Math.Sqrt(shape[1]);
                for (var k = 0; k < data.Length; k++)
                {
                    data[k] = (float)(scale * Normal(random));
                }
            }

            tensors.Add(new NamedTensor(name, shape, data));
        }

        Safetensors.Write(path, tensors, new Dictionary<string, string>
        {
            [ConfigKey] = config.ToJson(),
            [SeedKey] = seed.ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["format"] = "pt",
        });
    }

    /// <summary>Writes the sample checkpoint to <paramref name="path"/> unless a readable one is there; returns the path.</summary>
    public static string EnsureCreated(string? path = null, LlamaConfig? config = null, int seed = DefaultSeed)
    {
        path ??= DefaultPath;
        if (File.Exists(path))
        {
            try
            {
                var existing = Load(path);
                if (config is null || existing.Config == config)
                {
                    return path;
                }
            }
            catch (CheckpointException)
            {
                // Rewrite a damaged or stale file below.
            }
        }

        Create(path, config ?? new LlamaConfig(), seed);
        return path;
    }

    /// <summary>Reads <paramref name="path"/> and checks it holds exactly the tensors its configuration needs, with the right shapes.</summary>
    /// <exception cref="CheckpointException">The file is unreadable, has no configuration, or a tensor is missing, extra or misshapen.</exception>
    public static LlamaWeights Load(string path)
    {
        var (tensors, metadata) = Safetensors.Read(path);
        if (!metadata.TryGetValue(ConfigKey, out var configJson))
        {
            throw new CheckpointException(path, null, $"the metadata has no '{ConfigKey}' entry, so the model's shape is unknown.");
        }

        LlamaConfig config;
        try
        {
            config = LlamaConfig.FromJson(configJson);
            config.Validate();
        }
        catch (Exception ex) when (ex is JsonException or ArgumentException)
        {
            throw new CheckpointException(path, null, $"the configuration in '{ConfigKey}' is invalid: {ex.Message}", ex);
        }

        var expected = ExpectedTensors(config);
        foreach (var (name, shape) in expected)
        {
            if (!tensors.TryGetValue(name, out var tensor))
            {
                throw new CheckpointException(path, name, "the tensor is missing.");
            }

            if (!tensor.Shape.SequenceEqual(shape))
            {
                throw new CheckpointException(path, name, $"shape [{string.Join(", ", tensor.Shape)}] does not match [{string.Join(", ", shape)}] that the configuration needs.");
            }

            if (Array.FindIndex(tensor.Data, value => !float.IsFinite(value)) is var bad and >= 0)
            {
                throw new CheckpointException(path, name, $"element {bad} is {tensor.Data[bad]}, not a finite number.");
            }
        }

        var unexpected = tensors.Keys.Except(expected.Select(entry => entry.Name), StringComparer.Ordinal).OrderBy(name => name, StringComparer.Ordinal).FirstOrDefault();
        if (unexpected is not null)
        {
            throw new CheckpointException(path, unexpected, "the tensor is not part of this model (wrong checkpoint for the configuration?).");
        }

        return new LlamaWeights(config, tensors);
    }

    private static float Normal(Random random)
    {
        // Box-Muller: deterministic for a seed on every platform, unlike a library's generator across versions.
        var u1 = 1.0 - random.NextDouble();
        var u2 = random.NextDouble();
        return (float)(Math.Sqrt(-2.0 * Math.Log(u1)) * Math.Cos(2 * Math.PI * u2));
    }
}

/// <summary>A loaded, validated checkpoint: the configuration and the tensors by name.</summary>
public sealed record LlamaWeights(LlamaConfig Config, IReadOnlyDictionary<string, NamedTensor> Tensors);
