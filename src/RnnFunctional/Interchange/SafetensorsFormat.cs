using System.Buffers;
using System.Buffers.Binary;
using System.Collections.Immutable;
using System.Globalization;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json;
using System.Text.Unicode;
using LanguageExt;
using LanguageExt.Common;

namespace RnnFunctional;

/// <summary>
/// The safetensors layout, byte for byte: parsing with every check made before anything is allocated from a number
/// the file declares (here), and serialization (SafetensorsFormat.Write.cs).
/// </summary>
internal static partial class SafetensorsFormat
{
    /// <summary>The largest header read, as the reference implementation (100 MB).</summary>
    public const long MaxHeaderLength = 100_000_000;

    /// <summary>The product of the dimensions, or null when it overflows a 64-bit integer.</summary>
    public static long? Product(IEnumerable<long> dims)
    {
        var all = dims.ToArray();
        if (all.Any(d => d == 0)) return 0;
        var product = 1L;
        foreach (var d in all)
        {
            if (d < 0 || product > long.MaxValue / d) return null;
            product *= d;
        }
        return product;
    }

    public static int Size(SafetensorsDType dtype) => dtype switch
    {
        SafetensorsDType.F64 => 8,
        SafetensorsDType.F32 => 4,
        _ => 2,
    };

    private static readonly ImmutableDictionary<string, SafetensorsDType> DTypes = new Dictionary<string, SafetensorsDType>
    {
        ["F64"] = SafetensorsDType.F64, ["F32"] = SafetensorsDType.F32, ["F16"] = SafetensorsDType.F16, ["BF16"] = SafetensorsDType.BF16,
    }.ToImmutableDictionary(StringComparer.Ordinal);

    /// <summary>A tensor entry of the header, checked on its own.</summary>
    private sealed record Entry(string Name, SafetensorsDType DType, ImmutableArray<int> Shape, long Begin, long End);

    /// <summary>Reads exactly <c>destination.Length</c> bytes at an offset of the file (from its first byte), or throws.</summary>
    internal delegate void ReadAt(long offset, Span<byte> destination);

    /// <summary>The content of a whole file in memory, or one error listing every problem found.</summary>
    public static Fin<SafetensorsFile> Parse(ReadOnlySpan<byte> bytes)
    {
        if (bytes.Length < 8)
            return Fail($"safetensors file is cut short: {bytes.Length} bytes is less than the 8-byte header length");
        var declared = CheckLength(bytes[..8], bytes.Length);
        if (declared.IsFail) return declared.Map(_ => default(SafetensorsFile)!);
        var length = (int)(long)declared;
        var data = bytes[(8 + length)..];
        var parsed = ParseHeader(bytes.Slice(8, length), data.Length);
        if (parsed.IsFail) return parsed.Map(_ => default(SafetensorsFile)!);
        var header = ((ImmutableSortedDictionary<string, string> Metadata, List<Entry> Entries))parsed;
        var tensors = ImmutableSortedDictionary.CreateBuilder<string, SafetensorsTensor>(StringComparer.Ordinal);
        foreach (var e in header.Entries)
        {
            var values = new double[(e.End - e.Begin) / Size(e.DType)];
            DecodeInto(e.DType, data[(int)e.Begin..(int)e.End], values);
            tensors.Add(e.Name, Tensor(e, values));
        }
        return new SafetensorsFile(header.Metadata, tensors.ToImmutable());
    }

    /// <summary>
    /// The content of a file of <paramref name="length"/> bytes read piece by piece through <paramref name="read"/>:
    /// the header, then each tensor's bytes decoded straight into its values (F64 read into them as they are), through
    /// a buffer of at most <see cref="Chunk"/> bytes otherwise. The checks are those of the in-memory parse.
    /// </summary>
    public static Fin<SafetensorsFile> Parse(ReadAt read, long length)
    {
        if (length < 8)
            return Fail($"safetensors file is cut short: {length} bytes is less than the 8-byte header length");
        Span<byte> prefix = stackalloc byte[8];
        read(0, prefix);
        var declared = CheckLength(prefix, length);
        if (declared.IsFail) return declared.Map(_ => default(SafetensorsFile)!);
        var headerLength = (long)declared;
        var headerBytes = new byte[headerLength];
        read(8, headerBytes);
        var start = 8 + headerLength;
        return ParseHeader(headerBytes, length - start).Map(header =>
        {
            var tensors = ImmutableSortedDictionary.CreateBuilder<string, SafetensorsTensor>(StringComparer.Ordinal);
            var buffer = Array.Empty<byte>();
            try
            {
                foreach (var e in header.Entries)
                {
                    var size = Size(e.DType);
                    var values = new double[(e.End - e.Begin) / size];
                    if (e.DType == SafetensorsDType.F64 && BitConverter.IsLittleEndian)
                        read(start + e.Begin, MemoryMarshal.AsBytes(values.AsSpan()));
                    else
                    {
                        if (buffer.Length == 0) buffer = ArrayPool<byte>.Shared.Rent(Chunk);
                        var each = Chunk / size;
                        for (var i = 0; i < values.Length; i += each)
                        {
                            var count = Math.Min(each, values.Length - i);
                            var bytes = buffer.AsSpan(0, count * size);
                            read(start + e.Begin + (long)i * size, bytes);
                            DecodeInto(e.DType, bytes, values.AsSpan(i, count));
                        }
                    }
                    tensors.Add(e.Name, Tensor(e, values));
                }
            }
            finally
            {
                if (buffer.Length > 0) ArrayPool<byte>.Shared.Return(buffer);
            }
            return new SafetensorsFile(header.Metadata, tensors.ToImmutable());
        });
    }

    /// <summary>The bytes of the buffer a file is read or written through, when its values are not copied as they are.</summary>
    public const int Chunk = 1 << 16;

    /// <summary>
    /// The header length the first 8 bytes declare, when it fits in a file of <paramref name="total"/> bytes and in
    /// <see cref="MaxHeaderLength"/>; otherwise an error that also names what the file looks like, when it is one of
    /// the formats of <c>torch.save</c>.
    /// </summary>
    private static Fin<long> CheckLength(ReadOnlySpan<byte> first, long total)
    {
        var declared = BinaryPrimitives.ReadUInt64LittleEndian(first);
        var available = (ulong)total - 8;
        if (declared > available)
            return Fin<long>.Fail(Error.New($"safetensors header length {declared} goes beyond the file: only {available} bytes follow the 8-byte length{Recognize(first)}"));
        if (declared > MaxHeaderLength)
            return Fin<long>.Fail(Error.New($"safetensors header length {declared} is more than the {MaxHeaderLength} bytes allowed{Recognize(first)}"));
        if (declared < 2)
            return Fin<long>.Fail(Error.New($"safetensors header of {declared} bytes is not a JSON object"));
        return Fin<long>.Succ((long)declared);
    }

    /// <summary>What a file that is not safetensors is, from its first bytes, when it is a file of <c>torch.save</c>; else empty.</summary>
    private static string Recognize(ReadOnlySpan<byte> first) =>
        first.StartsWith("PK\u0003\u0004"u8)
            ? " (the file is a zip archive, which is what torch.save and TorchSharp.PyBridge's save_py write for a .pt or .pth file: PyTorch's pickled format is not read; save the state_dict with safetensors.torch.save_file or PyBridge's save_safetensors)"
            : first[0] == 0x80 && first[1] is >= 2 and <= 5
                ? " (the file is a Python pickle, which is what torch.save writes with _use_new_zipfile_serialization=False: it is not read; save the state_dict with safetensors.torch.save_file)"
                : "";

    /// <summary>The metadata and the checked entries of a header followed by <paramref name="dataLength"/> bytes of data.</summary>
    private static Fin<(ImmutableSortedDictionary<string, string> Metadata, List<Entry> Entries)> ParseHeader(ReadOnlySpan<byte> header, long dataLength)
    {
        if (!Utf8.IsValid(header))
            return Fin<(ImmutableSortedDictionary<string, string>, List<Entry>)>.Fail(Error.New("safetensors header is not valid UTF-8"));
        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(header.ToArray(), new JsonDocumentOptions { MaxDepth = 8 });
        }
        catch (JsonException e)
        {
            return Fin<(ImmutableSortedDictionary<string, string>, List<Entry>)>.Fail(Error.New($"safetensors header is not JSON: {e.Message}"));
        }
        using (document)
        {
            var problems = new List<string>();
            var (metadata, entries) = ReadHeader(document.RootElement, problems);
            if (problems.Count == 0) CheckOffsets(entries, dataLength, problems);
            return problems.Count > 0
                ? Fin<(ImmutableSortedDictionary<string, string>, List<Entry>)>.Fail(Error.New($"safetensors file is malformed: {string.Join("; ", problems)}"))
                : Fin<(ImmutableSortedDictionary<string, string>, List<Entry>)>.Succ((metadata, entries));
        }
    }

    private static (ImmutableSortedDictionary<string, string>, List<Entry>) ReadHeader(JsonElement root, List<string> problems)
    {
        var metadata = ImmutableSortedDictionary.CreateBuilder<string, string>(StringComparer.Ordinal);
        var entries = new List<Entry>();
        if (root.ValueKind != JsonValueKind.Object)
        {
            problems.Add($"expected the header to be a JSON object but got {Kind(root)}");
            return (metadata.ToImmutable(), entries);
        }
        var names = new System.Collections.Generic.HashSet<string>(StringComparer.Ordinal);
        foreach (var property in root.EnumerateObject())
        {
            if (!names.Add(property.Name))
            {
                problems.Add($"the name {property.Name} appears twice in the header");
                continue;
            }
            if (property.Name == "__metadata__") ReadMetadata(property.Value, metadata, problems);
            else if (ReadEntry(property.Name, property.Value, problems) is { } entry) entries.Add(entry);
        }
        return (metadata.ToImmutable(), entries);
    }

    private static void ReadMetadata(JsonElement value, ImmutableSortedDictionary<string, string>.Builder metadata, List<string> problems)
    {
        if (value.ValueKind != JsonValueKind.Object)
        {
            problems.Add($"expected __metadata__ to be an object of strings but got {Kind(value)}");
            return;
        }
        foreach (var item in value.EnumerateObject())
        {
            if (item.Value.ValueKind != JsonValueKind.String)
                problems.Add($"expected __metadata__.{item.Name} to be a string but got {Kind(item.Value)}");
            else if (!metadata.TryAdd(item.Name, item.Value.GetString()!))
                problems.Add($"the key __metadata__.{item.Name} appears twice in the header");
        }
    }

    private static Entry? ReadEntry(string name, JsonElement value, List<string> problems)
    {
        if (value.ValueKind != JsonValueKind.Object)
        {
            problems.Add($"expected tensor {name} to be an object {{dtype, shape, data_offsets}} but got {Kind(value)}");
            return null;
        }
        var fields = new Dictionary<string, JsonElement>(StringComparer.Ordinal);
        var before = problems.Count;
        foreach (var field in value.EnumerateObject())
        {
            if (field.Name is not ("dtype" or "shape" or "data_offsets"))
                problems.Add($"tensor {name} has an unknown field {field.Name} (expected dtype, shape and data_offsets)");
            else if (!fields.TryAdd(field.Name, field.Value))
                problems.Add($"tensor {name} has the field {field.Name} twice");
        }
        foreach (var missing in new[] { "dtype", "shape", "data_offsets" }.Where(f => !fields.ContainsKey(f)))
            problems.Add($"tensor {name} has no {missing}");
        if (problems.Count > before) return null;

        SafetensorsDType dtype = default;
        if (fields["dtype"].ValueKind != JsonValueKind.String)
            problems.Add($"expected the dtype of tensor {name} to be a string but got {Kind(fields["dtype"])}");
        else if (!DTypes.TryGetValue(fields["dtype"].GetString()!, out dtype))
            problems.Add($"tensor {name} has the dtype {fields["dtype"].GetString()}, which is not read (expected F64, F32, F16 or BF16)");
        var shape = Integers(fields["shape"], $"the shape of tensor {name}", problems);
        var offsets = Integers(fields["data_offsets"], $"the data_offsets of tensor {name}", problems);
        if (problems.Count > before || shape is null || offsets is null) return null;

        if (offsets.Length != 2)
        {
            problems.Add($"expected the data_offsets of tensor {name} to be [begin, end] but got {offsets.Length} numbers");
            return null;
        }
        if (offsets[1] < offsets[0])
        {
            problems.Add($"expected the data_offsets of tensor {name} to have begin ≤ end but got [{offsets[0]}, {offsets[1]}]");
            return null;
        }
        var count = Product(shape);
        var bytes = count is { } c && c <= long.MaxValue / Size(dtype) ? c * Size(dtype) : (long?)null;
        if (bytes is null)
        {
            problems.Add($"the shape [{string.Join(", ", shape)}] of tensor {name} has a number of elements that overflows");
            return null;
        }
        if (bytes != offsets[1] - offsets[0])
        {
            problems.Add(string.Create(CultureInfo.InvariantCulture,
                $"expected tensor {name} ({dtype}, shape [{string.Join(", ", shape)}]) to take {count} × {Size(dtype)} = {bytes} bytes but its data_offsets [{offsets[0]}, {offsets[1]}] span {offsets[1] - offsets[0]}"));
            return null;
        }
        if (shape.Any(d => d > int.MaxValue))
        {
            problems.Add($"the shape [{string.Join(", ", shape)}] of tensor {name} has a dimension larger than {int.MaxValue}");
            return null;
        }
        if (count > Array.MaxLength)
        {
            problems.Add($"tensor {name} has {count} elements, more than the {Array.MaxLength} an array holds");
            return null;
        }
        return new(name, dtype, [.. shape.Select(d => (int)d)], offsets[0], offsets[1]);
    }

    /// <summary>A JSON array of non-negative 64-bit integers, or null with the problem recorded.</summary>
    private static long[]? Integers(JsonElement value, string what, List<string> problems)
    {
        if (value.ValueKind != JsonValueKind.Array)
        {
            problems.Add($"expected {what} to be an array of integers but got {Kind(value)}");
            return null;
        }
        var result = new List<long>();
        foreach (var item in value.EnumerateArray())
        {
            if (item.ValueKind != JsonValueKind.Number || !item.TryGetInt64(out var n))
            {
                problems.Add($"expected {what} to hold integers but got {item.GetRawText()}");
                return null;
            }
            if (n < 0)
            {
                problems.Add($"expected {what} to hold numbers ≥ 0 but got {n}");
                return null;
            }
            result.Add(n);
        }
        return [.. result];
    }

    /// <summary>The tensors' byte ranges, in order of their begin, must tile the data exactly: no overlap, no gap, nothing outside.</summary>
    private static void CheckOffsets(List<Entry> entries, long dataLength, List<string> problems)
    {
        var end = 0L;
        Entry? previous = null;
        foreach (var e in entries.OrderBy(e => e.Begin).ThenBy(e => e.End))
        {
            if (e.End > dataLength)
                problems.Add($"the data_offsets [{e.Begin}, {e.End}] of tensor {e.Name} lie outside the data ({dataLength} bytes after the header)");
            else if (e.Begin < end)
                problems.Add($"the data_offsets [{e.Begin}, {e.End}] of tensor {e.Name} overlap those of tensor {previous!.Name} [{previous.Begin}, {previous.End}]");
            else if (e.Begin > end)
                problems.Add($"the bytes [{end}, {e.Begin}) of the data belong to no tensor (a gap before tensor {e.Name})");
            if (e.End > end) (end, previous) = (e.End, e);
        }
        if (problems.Count == 0 && end < dataLength)
            problems.Add($"the tensors cover {end} bytes of the data but {dataLength} follow the header (the file has trailing bytes)");
    }

    private static SafetensorsTensor Tensor(Entry e, double[] values) => new(e.DType, e.Shape, ImmutableCollectionsMarshal.AsImmutableArray(values));

    /// <summary>Little-endian values of a dtype converted to doubles (exactly: every dtype read is a subset of double).</summary>
    private static void DecodeInto(SafetensorsDType dtype, ReadOnlySpan<byte> bytes, Span<double> values)
    {
        if (dtype == SafetensorsDType.F64 && BitConverter.IsLittleEndian)
        {
            MemoryMarshal.Cast<byte, double>(bytes).CopyTo(values);
            return;
        }
        var size = Size(dtype);
        for (var i = 0; i < values.Length; i++)
        {
            var at = bytes.Slice(i * size, size);
            values[i] = dtype switch
            {
                SafetensorsDType.F64 => BinaryPrimitives.ReadDoubleLittleEndian(at),
                SafetensorsDType.F32 => BinaryPrimitives.ReadSingleLittleEndian(at),
                SafetensorsDType.F16 => (double)BinaryPrimitives.ReadHalfLittleEndian(at),
                _ => BitConverter.Int32BitsToSingle(BinaryPrimitives.ReadUInt16LittleEndian(at) << 16),
            };
        }
    }

    private static string Kind(JsonElement e) => e.ValueKind switch
    {
        JsonValueKind.Object => "an object",
        JsonValueKind.Array => "an array",
        JsonValueKind.String => "a string",
        JsonValueKind.Number => $"the number {e.GetRawText()}",
        JsonValueKind.True or JsonValueKind.False => e.GetRawText(),
        _ => "null",
    };

    private static Fin<SafetensorsFile> Fail(string message) => Fin<SafetensorsFile>.Fail(Error.New(message));
}
