using System.Buffers;
using System.Buffers.Binary;
using System.Runtime.InteropServices;
using System.Text.Encodings.Web;
using System.Text.Json;
using LanguageExt;
using LanguageExt.Common;

namespace RnnFunctional;

/// <summary>Writing the safetensors layout: the header, then the data streamed from the tensors' values.</summary>
internal static partial class SafetensorsFormat
{
    /// <summary>
    /// The start of a file: the 8-byte length and the header (metadata first, then the tensors in ordinal name
    /// order, each one's data following the previous one's) padded with spaces to a multiple of 8 bytes; and the
    /// number of data bytes that <see cref="WriteData"/> writes after it.
    /// </summary>
    public static Fin<(byte[] Prefix, long DataLength)> Header(SafetensorsFile file)
    {
        var problems = new List<string>();
        if (file.Metadata is null || file.Tensors is null)
            return Fin<(byte[], long)>.Fail(Error.New("expected file to have metadata and tensors but one of them is null"));
        foreach (var (name, tensor) in file.Tensors)
        {
            if (tensor is null) problems.Add($"expected tensor {name} but got null");
            else if (tensor.DType is not (SafetensorsDType.F64 or SafetensorsDType.F32))
                problems.Add($"tensor {name} has the dtype {tensor.DType}, which is not written (expected F64 or F32)");
            if (name == "__metadata__") problems.Add("a tensor cannot be named __metadata__");
        }
        if (problems.Count > 0) return Fin<(byte[], long)>.Fail(Error.New($"cannot write file: {string.Join("; ", problems)}"));

        var header = new ArrayBufferWriter<byte>();
        var offset = 0L;
        try
        {
            using var json = new Utf8JsonWriter(header, new JsonWriterOptions { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping });
            json.WriteStartObject();
            if (file.Metadata.Count > 0)
            {
                json.WriteStartObject("__metadata__");
                foreach (var (key, value) in file.Metadata) json.WriteString(key, value);
                json.WriteEndObject();
            }
            foreach (var (name, tensor) in file.Tensors)
            {
                var length = (long)tensor.Values.Length * Size(tensor.DType);
                json.WriteStartObject(name);
                json.WriteString("dtype", tensor.DType.ToString());
                json.WriteStartArray("shape");
                foreach (var d in tensor.Shape) json.WriteNumberValue(d);
                json.WriteEndArray();
                json.WriteStartArray("data_offsets");
                json.WriteNumberValue(offset);
                json.WriteNumberValue(offset + length);
                json.WriteEndArray();
                json.WriteEndObject();
                offset += length;
            }
            json.WriteEndObject();
        }
        catch (Exception e) when (e is ArgumentException or InvalidOperationException)
        {
            return Fin<(byte[], long)>.Fail(Error.New($"cannot write file: a name or a metadata value is not valid Unicode ({e.Message})"));
        }
        var padded = (header.WrittenCount + 7) / 8 * 8;
        var prefix = new byte[8 + padded];
        BinaryPrimitives.WriteUInt64LittleEndian(prefix, (ulong)padded);
        header.WrittenSpan.CopyTo(prefix.AsSpan(8));
        prefix.AsSpan(8 + header.WrittenCount).Fill((byte)' ');
        return Fin<(byte[], long)>.Succ((prefix, offset));
    }

    /// <summary>
    /// Writes the tensors' data in the order of <see cref="Header"/>: F64 values as they are in memory (on a
    /// little-endian machine), others converted through a buffer of <see cref="Chunk"/> bytes.
    /// </summary>
    public static void WriteData(Stream stream, SafetensorsFile file)
    {
        var buffer = Array.Empty<byte>();
        try
        {
            foreach (var tensor in file.Tensors.Values)
            {
                var values = tensor.Values.AsSpan();
                if (tensor.DType == SafetensorsDType.F64 && BitConverter.IsLittleEndian)
                {
                    stream.Write(MemoryMarshal.AsBytes(values));
                    continue;
                }
                if (buffer.Length == 0) buffer = ArrayPool<byte>.Shared.Rent(Chunk);
                var size = Size(tensor.DType);
                var each = Chunk / size;
                for (var i = 0; i < values.Length; i += each)
                {
                    var count = Math.Min(each, values.Length - i);
                    for (var j = 0; j < count; j++)
                        if (size == 8) BinaryPrimitives.WriteDoubleLittleEndian(buffer.AsSpan(j * size), values[i + j]);
                        else BinaryPrimitives.WriteSingleLittleEndian(buffer.AsSpan(j * size), (float)values[i + j]);
                    stream.Write(buffer, 0, count * size);
                }
            }
        }
        finally
        {
            if (buffer.Length > 0) ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    /// <summary>The bytes of a whole file, <see cref="Header"/> then <see cref="WriteData"/>, in one array of the file's size.</summary>
    public static Fin<byte[]> Serialize(SafetensorsFile file) => Header(file).Bind(header =>
    {
        var total = header.Prefix.Length + header.DataLength;
        if (total > Array.MaxLength)
            return Fin<byte[]>.Fail(Error.New($"cannot write file: its {total} bytes are more than one array holds"));
        var bytes = new byte[total];
        header.Prefix.CopyTo(bytes, 0);
        using var stream = new MemoryStream(bytes, header.Prefix.Length, (int)header.DataLength, writable: true);
        WriteData(stream, file);
        return Fin<byte[]>.Succ(bytes);
    });
}
