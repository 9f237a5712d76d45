using System;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace GemsLlm;

/// <summary>The shape of the decoder. The defaults are tiny, so that greedy generation is fast on two CPU cores.</summary>
public sealed record LlamaConfig
{
    /// <summary>The tokenizer's vocabulary size (rows of the embedding and the LM head).</summary>
    public int VocabSize { get; init; } = 512;

    /// <summary>The model width.</summary>
    public int HiddenSize { get; init; } = 256;

    /// <summary>The number of decoder layers.</summary>
    public int Layers { get; init; } = 4;

    /// <summary>Query heads.</summary>
    public int Heads { get; init; } = 8;

    /// <summary>Key/value heads (grouped-query attention: they divide <see cref="Heads"/>).</summary>
    public int KvHeads { get; init; } = 2;

    /// <summary>The size of one head.</summary>
    public int HeadDim { get; init; } = 32;

    /// <summary>The SwiGLU MLP's inner width.</summary>
    public int IntermediateSize { get; init; } = 688;

    /// <summary>The longest sequence (prompt and generated tokens) the rotary cache and the KV cache hold.</summary>
    public int MaxPositions { get; init; } = 256;

    /// <summary>RMSNorm's epsilon.</summary>
    public double RmsNormEpsilon { get; init; } = 1e-6;

    /// <summary>The rotary embedding's base.</summary>
    public double RopeTheta { get; init; } = 10000;

    /// <summary>Checks the shape is self-consistent.</summary>
    /// <exception cref="ArgumentException">A size is not positive, or the heads do not divide as grouped-query attention needs.</exception>
    public void Validate()
    {
        foreach (var (name, value) in new[] { (nameof(VocabSize), VocabSize), (nameof(HiddenSize), HiddenSize), (nameof(Layers), Layers), (nameof(Heads), Heads), (nameof(KvHeads), KvHeads), (nameof(HeadDim), HeadDim), (nameof(IntermediateSize), IntermediateSize), (nameof(MaxPositions), MaxPositions) })
        {
            if (value <= 0)
            {
                throw new ArgumentException($"LlamaConfig.{name} must be positive, not {value}.");
            }
        }

        if (Heads % KvHeads != 0)
        {
            throw new ArgumentException($"LlamaConfig: {KvHeads} key/value heads do not divide {Heads} query heads.");
        }

        if (HeadDim % 2 != 0)
        {
            throw new ArgumentException($"LlamaConfig.HeadDim must be even for the rotary embedding, not {HeadDim}.");
        }
    }

    /// <summary>The configuration as JSON (stored in the checkpoint's metadata).</summary>
    public string ToJson() => JsonSerializer.Serialize(this, LlamaConfigJson.Default.LlamaConfig);

    /// <summary>Reads <see cref="ToJson"/>'s output.</summary>
    public static LlamaConfig FromJson(string json) =>
        JsonSerializer.Deserialize(json, LlamaConfigJson.Default.LlamaConfig) ?? throw new JsonException("The configuration is null.");
}

[JsonSerializable(typeof(LlamaConfig))]
internal sealed partial class LlamaConfigJson : JsonSerializerContext
{
}
