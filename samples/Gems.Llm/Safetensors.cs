using System;
using System.Buffers.Binary;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json;

namespace GemsLlm;

/// <summary>A checkpoint file that cannot be read; the message names the file and, where it applies, the tensor.</summary>
public sealed class CheckpointException : Exception
{
    /// <summary>Creates the exception.</summary>
    public CheckpointException(string path, string? tensor, string problem, Exception? inner = null)
        : base(tensor is null ? $"Checkpoint '{path}': {problem}" : $"Checkpoint '{path}', tensor '{tensor}': {problem}", inner)
    {
        Path = path;
        Tensor = tensor;
    }

    /// <summary>The file.</summary>
    public string Path { get; }

    /// <summary>The tensor the problem is about, when it is about one.</summary>
    public string? Tensor { get; }
}

/// <summary>One float32 tensor of a checkpoint: its name, shape and values (row-major).</summary>
public sealed record NamedTensor(string Name, long[] Shape, float[] Data)
{
    /// <summary>The number of elements the shape holds.</summary>
    public long ElementCount => Shape.Aggregate(1L, (product, dim) => product * dim);
}

/// <summary>
/// Reads and writes the safetensors layout: an 8-byte little-endian header length, a JSON header mapping each tensor
/// name to <c>{"dtype", "shape", "data_offsets": [begin, end]}</c> (offsets relative to the end of the header), an
/// optional <c>__metadata__</c> map of strings, then the raw little-endian data. Only F32 tensors are written and read.
/// </summary>
public static class Safetensors
{
    private const string MetadataKey = "__metadata__";
    private const long MaxHeaderBytes = 100L * 1024 * 1024;

    /// <summary>Writes <paramref name="tensors"/> (data in name order) and <paramref name="metadata"/> to <paramref name="path"/> atomically.</summary>
    public static void Write(string path, IEnumerable<NamedTensor> tensors, IReadOnlyDictionary<string, string>? metadata = null)
    {
        ArgumentNullException.ThrowIfNull(path);
        ArgumentNullException.ThrowIfNull(tensors);
        if (!BitConverter.IsLittleEndian)
        {
            throw new PlatformNotSupportedException("The safetensors writer expects a little-endian machine.");
        }

        var ordered = tensors.OrderBy(tensor => tensor.Name, StringComparer.Ordinal).ToArray();
        using var headerBuffer = new MemoryStream();
        using (var json = new Utf8JsonWriter(headerBuffer))
        {
            json.WriteStartObject();
            if (metadata is not null)
            {
                json.WriteStartObject(MetadataKey);
                foreach (var (key, value) in metadata)
                {
                    json.WriteString(key, value);
                }

                json.WriteEndObject();
            }

            long offset = 0;
            foreach (var tensor in ordered)
            {
                if (tensor.ElementCount != tensor.Data.Length)
                {
                    throw new ArgumentException($"Tensor '{tensor.Name}' has shape [{string.Join(", ", tensor.Shape)}] but {tensor.Data.Length} values.", nameof(tensors));
                }

                json.WriteStartObject(tensor.Name);
                json.WriteString("dtype", "F32");
                json.WriteStartArray("shape");
                foreach (var dim in tensor.Shape)
                {
                    json.WriteNumberValue(dim);
                }

                json.WriteEndArray();
                json.WriteStartArray("data_offsets");
                json.WriteNumberValue(offset);
                offset += tensor.Data.Length * sizeof(float);
                json.WriteNumberValue(offset);
                json.WriteEndArray();
                json.WriteEndObject();
            }

            json.WriteEndObject();
        }

        // Pad the header with spaces so the data starts 8-byte aligned, as the reference implementation does.
        var header = headerBuffer.ToArray();
        var padded = (header.Length + 7) / 8 * 8;
        var directory = System.IO.Path.GetDirectoryName(System.IO.Path.GetFullPath(path))!;
        Directory.CreateDirectory(directory);
        var temporary = System.IO.Path.Combine(directory, $".{System.IO.Path.GetFileName(path)}.{Environment.ProcessId}.{Guid.NewGuid():N}.tmp");
        try
        {
            using (var file = new FileStream(temporary, FileMode.CreateNew, FileAccess.Write))
            {
                Span<byte> length = stackalloc byte[8];
                BinaryPrimitives.WriteUInt64LittleEndian(length, (ulong)padded);
                file.Write(length);
                file.Write(header);
                for (var i = header.Length; i < padded; i++)
                {
                    file.WriteByte((byte)' ');
                }

                foreach (var tensor in ordered)
                {
                    file.Write(MemoryMarshal.AsBytes(tensor.Data.AsSpan()));
                }
            }

            // Atomic: concurrent writers of the same checkpoint each rename a complete file.
            File.Move(temporary, path, overwrite: true);
        }
        finally
        {
            File.Delete(temporary);
        }
    }

    /// <summary>Reads every tensor and the metadata of <paramref name="path"/>, validating the layout.</summary>
    /// <exception cref="CheckpointException">The file is missing, truncated, or its header is malformed or inconsistent with its data.</exception>
    public static (IReadOnlyDictionary<string, NamedTensor> Tensors, IReadOnlyDictionary<string, string> Metadata) Read(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        byte[] bytes;
        try
        {
            bytes = File.ReadAllBytes(path);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new CheckpointException(path, null, $"cannot be read: {ex.Message}", ex);
        }

        if (bytes.Length < 8)
        {
            throw new CheckpointException(path, null, $"the file has {bytes.Length} bytes, fewer than the 8-byte header length.");
        }

        var headerLength = BinaryPrimitives.ReadUInt64LittleEndian(bytes);
        if (headerLength > MaxHeaderBytes || (long)headerLength > bytes.Length - 8)
        {
            throw new CheckpointException(path, null, $"the header length {headerLength} exceeds the {bytes.Length - 8} bytes after the length field (truncated file, or not a safetensors file).");
        }

        var dataStart = 8 + (int)headerLength;
        var dataLength = bytes.Length - dataStart;
        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(bytes.AsMemory(8, (int)headerLength));
        }
        catch (JsonException ex)
        {
            throw new CheckpointException(path, null, $"the header is not valid JSON: {ex.Message}", ex);
        }

        using (document)
        {
            if (document.RootElement.ValueKind != JsonValueKind.Object)
            {
                throw new CheckpointException(path, null, $"the header is a JSON {document.RootElement.ValueKind}, not an object.");
            }

            var metadata = new Dictionary<string, string>(StringComparer.Ordinal);
            var tensors = new Dictionary<string, NamedTensor>(StringComparer.Ordinal);
            var ranges = new List<(long Begin, long End, string Name)>();
            foreach (var property in document.RootElement.EnumerateObject())
            {
                if (property.Name == MetadataKey)
                {
                    ReadMetadata(path, property.Value, metadata);
                    continue;
                }

                var (tensor, begin, end) = ReadTensor(path, property.Name, property.Value, bytes, dataStart, dataLength);
                tensors.Add(tensor.Name, tensor);
                ranges.Add((begin, end, tensor.Name));
            }

            ranges.Sort((a, b) => a.Begin.CompareTo(b.Begin));
            for (var i = 1; i < ranges.Count; i++)
            {
                if (ranges[i].Begin < ranges[i - 1].End)
                {
                    throw new CheckpointException(path, ranges[i].Name, $"its data [{ranges[i].Begin}, {ranges[i].End}) overlaps that of '{ranges[i - 1].Name}' [{ranges[i - 1].Begin}, {ranges[i - 1].End}).");
                }
            }

            return (tensors, metadata);
        }
    }

    private static void ReadMetadata(string path, JsonElement element, Dictionary<string, string> metadata)
    {
        if (element.ValueKind != JsonValueKind.Object)
        {
            throw new CheckpointException(path, null, $"{MetadataKey} is a JSON {element.ValueKind}, not an object of strings.");
        }

        foreach (var entry in element.EnumerateObject())
        {
            if (entry.Value.ValueKind != JsonValueKind.String)
            {
                throw new CheckpointException(path, null, $"{MetadataKey}.{entry.Name} is a JSON {entry.Value.ValueKind}, not a string.");
            }

            metadata[entry.Name] = entry.Value.GetString()!;
        }
    }

    private static (NamedTensor Tensor, long Begin, long End) ReadTensor(string path, string name, JsonElement element, byte[] bytes, int dataStart, int dataLength)
    {
        if (element.ValueKind != JsonValueKind.Object)
        {
            throw new CheckpointException(path, name, $"its header entry is a JSON {element.ValueKind}, not an object.");
        }

        if (!element.TryGetProperty("dtype", out var dtype) || dtype.ValueKind != JsonValueKind.String)
        {
            throw new CheckpointException(path, name, "its header entry has no string 'dtype'.");
        }

        if (dtype.GetString() != "F32")
        {
            throw new CheckpointException(path, name, $"dtype '{dtype.GetString()}' is not supported; this loader reads F32 only.");
        }

        if (!element.TryGetProperty("shape", out var shapeElement) || shapeElement.ValueKind != JsonValueKind.Array)
        {
            throw new CheckpointException(path, name, "its header entry has no 'shape' array.");
        }

        var shape = new List<long>();
        foreach (var dim in shapeElement.EnumerateArray())
        {
            if (dim.ValueKind != JsonValueKind.Number || !dim.TryGetInt64(out var value) || value < 0)
            {
                throw new CheckpointException(path, name, $"shape {shapeElement.GetRawText()} holds something other than non-negative integers.");
            }

            shape.Add(value);
        }

        if (!element.TryGetProperty("data_offsets", out var offsets) || offsets.ValueKind != JsonValueKind.Array || offsets.GetArrayLength() != 2
            || !offsets[0].TryGetInt64(out var begin) || !offsets[1].TryGetInt64(out var end))
        {
            throw new CheckpointException(path, name, "its header entry has no 'data_offsets' pair of integers.");
        }

        if (begin < 0 || end < begin || end > dataLength)
        {
            throw new CheckpointException(path, name, $"data_offsets [{begin}, {end}) fall outside the {dataLength} data bytes of the file (truncated file?).");
        }

        var elements = shape.Aggregate(1L, (product, dim) => product * dim);
        if (end - begin != elements * sizeof(float))
        {
            throw new CheckpointException(path, name, $"data_offsets [{begin}, {end}) span {end - begin} bytes, but shape [{string.Join(", ", shape)}] of F32 needs {elements * sizeof(float)}.");
        }

        var data = new float[elements];
        bytes.AsSpan(dataStart + (int)begin, (int)(end - begin)).CopyTo(MemoryMarshal.AsBytes(data.AsSpan()));
        if (!BitConverter.IsLittleEndian)
        {
            var words = MemoryMarshal.Cast<float, int>(data.AsSpan());
            BinaryPrimitives.ReverseEndianness(words, words);
        }

        return (new NamedTensor(name, [.. shape], data), begin, end);
    }
}
