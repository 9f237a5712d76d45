using System;
using System.Buffers.Binary;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Text;
using GemsLlm;
using Xunit;

namespace GemsInjector.Samples.Tests;

/// <summary>The sample checkpoint is written once and read back by real loading code that rejects bad files clearly.</summary>
public sealed class CheckpointTests : IDisposable
{
    private static readonly LlamaConfig Small = new() { VocabSize = 256, HiddenSize = 32, Layers = 2, Heads = 4, KvHeads = 2, HeadDim = 8, IntermediateSize = 48, MaxPositions = 64 };
    private readonly DirectoryInfo _work = Directory.CreateTempSubdirectory("gems-checkpoint-test-");

    public void Dispose() => _work.Delete(recursive: true);

    [Fact]
    public void A_seeded_checkpoint_round_trips_and_the_same_seed_gives_the_same_bytes()
    {
        var first = PathOf("a.safetensors");
        var second = PathOf("b.safetensors");
        LlamaCheckpoint.Create(first, Small, seed: 7);
        LlamaCheckpoint.Create(second, Small, seed: 7);

        var weights = LlamaCheckpoint.Load(first);

        Assert.Equal(Small, weights.Config);
        Assert.Equal(LlamaCheckpoint.ExpectedTensors(Small).Select(t => t.Name).Order(), weights.Tensors.Keys.Order());
        Assert.Equal(File.ReadAllBytes(first), File.ReadAllBytes(second));
        var bytes = File.ReadAllBytes(first);
        Assert.Equal(0UL, (8 + BinaryPrimitives.ReadUInt64LittleEndian(bytes)) % 8);
        var embedding = weights.Tensors["model.embed_tokens.weight"];
        Assert.Equal([256L, 32L], embedding.Shape);
        Assert.Contains(embedding.Data, value => value != 0);
    }

    [Fact]
    public void Arbitrary_tensors_and_metadata_round_trip_through_the_safetensors_layout()
    {
        var path = PathOf("t.safetensors");
        NamedTensor[] tensors = [new("b", [2, 3], [1, 2, 3, 4, 5, float.Epsilon]), new("a", [0], []), new("c", [], [-0.5f])];
        Safetensors.Write(path, tensors, new Dictionary<string, string> { ["k"] = "v" });

        var (read, metadata) = Safetensors.Read(path);

        Assert.Equal("v", metadata["k"]);
        foreach (var tensor in tensors)
        {
            Assert.Equal(tensor.Shape, read[tensor.Name].Shape);
            Assert.Equal(tensor.Data, read[tensor.Name].Data);
        }
    }

    [Fact]
    public void EnsureCreated_keeps_a_valid_file_and_rewrites_a_damaged_one()
    {
        var path = PathOf("ensure.safetensors");
        LlamaCheckpoint.EnsureCreated(path, Small);
        var written = File.GetLastWriteTimeUtc(path);
        LlamaCheckpoint.EnsureCreated(path, Small);
        Assert.Equal(written, File.GetLastWriteTimeUtc(path));

        File.WriteAllBytes(path, [1, 2, 3]);
        LlamaCheckpoint.EnsureCreated(path, Small);
        Assert.Equal(Small, LlamaCheckpoint.Load(path).Config);
    }

    [Fact]
    public void A_missing_file_is_named()
    {
        var path = PathOf("absent.safetensors");
        var error = Assert.Throws<CheckpointException>(() => LlamaCheckpoint.Load(path));
        Assert.StartsWith($"Checkpoint '{path}': cannot be read", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_truncated_file_is_rejected_naming_the_file()
    {
        var path = WriteValid();
        var bytes = File.ReadAllBytes(path);
        File.WriteAllBytes(path, bytes[..(bytes.Length - 100)]);

        var error = Assert.Throws<CheckpointException>(() => LlamaCheckpoint.Load(path));

        Assert.Equal(path, error.Path);
        Assert.Contains("fall outside the", error.Message, StringComparison.Ordinal);
        Assert.Contains("truncated", error.Message, StringComparison.Ordinal);
        Assert.Equal("model.norm.weight", error.Tensor); // the tensor stored last, by name order
    }

    [Theory]
    [InlineData(new byte[] { 1, 2, 3 }, "fewer than the 8-byte header length")]
    [InlineData(new byte[] { 255, 255, 0, 0, 0, 0, 0, 0, (byte)'{', (byte)'}' }, "exceeds the 2 bytes after the length field")]
    [InlineData(new byte[] { 2, 0, 0, 0, 0, 0, 0, 0, (byte)'{', (byte)'x' }, "the header is not valid JSON")]
    [InlineData(new byte[] { 2, 0, 0, 0, 0, 0, 0, 0, (byte)'[', (byte)']' }, "the header is a JSON Array, not an object")]
    [InlineData(new byte[] { 2, 0, 0, 0, 0, 0, 0, 0, (byte)'{', (byte)'}' }, "the metadata has no 'gems.llm.config' entry")]
    public void A_malformed_file_is_rejected_with_what_is_wrong(byte[] content, string expected)
    {
        var path = PathOf("bad.safetensors");
        File.WriteAllBytes(path, content);

        var error = Assert.Throws<CheckpointException>(() => LlamaCheckpoint.Load(path));

        Assert.StartsWith($"Checkpoint '{path}': ", error.Message, StringComparison.Ordinal);
        Assert.Contains(expected, error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_missing_tensor_is_named()
    {
        var error = LoadRewritten(tensors => tensors.Where(t => t.Name != "model.layers.1.mlp.down_proj.weight"));
        Assert.Equal("model.layers.1.mlp.down_proj.weight", error.Tensor);
        Assert.EndsWith("tensor 'model.layers.1.mlp.down_proj.weight': the tensor is missing.", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_misshapen_tensor_is_named_with_both_shapes()
    {
        var error = LoadRewritten(tensors => tensors.Select(t => t.Name == "model.layers.0.self_attn.k_proj.weight" ? t with { Shape = [8, 32], Data = new float[256] } : t));
        Assert.Equal("model.layers.0.self_attn.k_proj.weight", error.Tensor);
        Assert.Contains("shape [8, 32] does not match [16, 32]", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void An_extra_tensor_and_a_non_finite_value_are_named()
    {
        var extra = LoadRewritten(tensors => tensors.Append(new NamedTensor("model.layers.9.input_layernorm.weight", [32], new float[32])));
        var nan = LoadRewritten(tensors => tensors.Select(t => t.Name == "model.norm.weight" ? t with { Data = t.Data.Select((v, i) => i == 5 ? float.NaN : v).ToArray() } : t));

        Assert.Equal("model.layers.9.input_layernorm.weight", extra.Tensor);
        Assert.Contains("not part of this model", extra.Message, StringComparison.Ordinal);
        Assert.Equal("model.norm.weight", nan.Tensor);
        Assert.Contains("element 5 is NaN", nan.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_wrong_dtype_and_bad_offsets_are_named()
    {
        var path = WriteValid();
        var dtype = Assert.Throws<CheckpointException>(() => LlamaCheckpoint.Load(EditHeader(path, "\"model.norm.weight\":{\"dtype\":\"F32\"", "\"model.norm.weight\":{\"dtype\":\"F16\"")));
        Assert.Equal("model.norm.weight", dtype.Tensor);
        Assert.Contains("dtype 'F16' is not supported", dtype.Message, StringComparison.Ordinal);

        var path2 = WriteValid();
        var header = ReadHeader(path2);
        var overlapping = System.Text.RegularExpressions.Regex.Replace(header, "(\"model.norm.weight\":\\{[^}]*\"data_offsets\":\\[)(\\d+),(\\d+)", m => $"{m.Groups[1].Value}0,{32 * 4}");
        var overlap = Assert.Throws<CheckpointException>(() => LlamaCheckpoint.Load(EditHeader(path2, header, overlapping)));
        Assert.Contains("overlaps", overlap.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void An_invalid_configuration_is_rejected()
    {
        var path = WriteValid();
        var error = Assert.Throws<CheckpointException>(() => LlamaCheckpoint.Load(EditHeader(path, "\\u0022KvHeads\\u0022:2", "\\u0022KvHeads\\u0022:3")));
        Assert.Contains("the configuration in 'gems.llm.config' is invalid", error.Message, StringComparison.Ordinal);
        Assert.Contains("do not divide", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void The_tokenizer_is_deterministic_and_round_trips_known_words()
    {
        var tokenizer = new WordTokenizer(512);
        var ids = tokenizer.Encode("The workers of the cluster, start the JOB!");

        Assert.Equal(512, tokenizer.VocabSize);
        Assert.Equal(WordTokenizer.Bos, ids[0]);
        Assert.Equal(ids, new WordTokenizer(512).Encode("the workers of the cluster start the job"));
        Assert.Equal("the workers of the cluster start the job", tokenizer.Decode(ids));
        Assert.Equal("<unk>", tokenizer.Decode(tokenizer.Encode("xylophone")));
        Assert.Throws<ArgumentOutOfRangeException>(() => tokenizer.Decode([512]));
    }

    private string PathOf(string name) => Path.Combine(_work.FullName, name);

    private string WriteValid()
    {
        var path = PathOf($"valid-{Guid.NewGuid():N}.safetensors");
        LlamaCheckpoint.Create(path, Small, seed: 3);
        return path;
    }

    private CheckpointException LoadRewritten(Func<IEnumerable<NamedTensor>, IEnumerable<NamedTensor>> edit)
    {
        var source = WriteValid();
        var (tensors, metadata) = Safetensors.Read(source);
        var path = PathOf($"edited-{Guid.NewGuid():N}.safetensors");
        Safetensors.Write(path, edit(tensors.Values), metadata);
        return Assert.Throws<CheckpointException>(() => LlamaCheckpoint.Load(path));
    }

    private static string ReadHeader(string path)
    {
        var bytes = File.ReadAllBytes(path);
        return Encoding.UTF8.GetString(bytes, 8, (int)BinaryPrimitives.ReadUInt64LittleEndian(bytes));
    }

    /// <summary>Replaces text in the header, keeping its length (padding with spaces) so the data stays where it was.</summary>
    private static string EditHeader(string path, string find, string replace)
    {
        var bytes = File.ReadAllBytes(path);
        var length = (int)BinaryPrimitives.ReadUInt64LittleEndian(bytes);
        var header = Encoding.UTF8.GetString(bytes, 8, length);
        Assert.Contains(find, header, StringComparison.Ordinal);
        var edited = header.Replace(find, replace, StringComparison.Ordinal).TrimEnd();
        Assert.True(edited.Length <= length, "the edit must not grow the header");
        Encoding.UTF8.GetBytes(edited.PadRight(length)).CopyTo(bytes, 8);
        File.WriteAllBytes(path, bytes);
        return path;
    }
}
