using System.Collections.Immutable;
using System.Diagnostics.Contracts;
using System.Runtime.CompilerServices;
using LanguageExt;
using LanguageExt.Common;

namespace RnnFunctional;

/// <summary>
/// Reading and writing the safetensors format of Hugging Face (what <c>safetensors.torch.save_file</c> writes): an
/// 8-byte little-endian header length N, N bytes of UTF-8 JSON mapping each tensor name to
/// <c>{"dtype", "shape", "data_offsets": [begin, end]}</c> (plus an optional <c>"__metadata__"</c> object of strings),
/// then the tensors' bytes, row-major and little-endian, the offsets counting from the end of the header.
/// </summary>
/// <remarks>
/// F64, F32, F16 and BF16 tensors are read (converted to double exactly); F64 and F32 are written. Every other dtype
/// is refused. A file is read only when it is well formed: the header fits in the file (and in 100 MB), is UTF-8 and
/// JSON, names each tensor once with exactly the fields dtype, shape and data_offsets; dimensions are integers ≥ 0
/// whose product does not overflow and agrees with the bytes of the offsets; and the offsets tile the data exactly
/// (no overlap, no gap, nothing outside, no trailing bytes). Anything else is an error value listing the problems;
/// nothing is allocated from a declared size before the bytes behind it are known to be present.
/// </remarks>
public static class Safetensors
{
    /// <summary>The file in some bytes, or one error listing every problem found.</summary>
    /// <param name="bytes">The whole content of a safetensors file.</param>
    [Pure]
    public static Fin<SafetensorsFile> Read(ReadOnlySpan<byte> bytes) => SafetensorsFormat.Parse(bytes);

    /// <summary>
    /// The file in the rest of a stream (read to its end), or an error. A seekable stream is read piece by piece,
    /// each tensor's bytes straight into its values; any other is first copied into memory whole.
    /// </summary>
    /// <param name="stream">A readable stream, positioned at the file's first byte; it is not closed.</param>
    public static Fin<SafetensorsFile> Read(Stream stream)
    {
        if (stream is null) return Fin<SafetensorsFile>.Fail(Error.New("expected stream to be a readable stream but got null"));
        try
        {
            if (stream.CanSeek)
            {
                var start = stream.Position;
                var length = stream.Length - start;
                var file = SafetensorsFormat.Parse((offset, destination) =>
                {
                    stream.Position = start + offset;
                    stream.ReadExactly(destination);
                }, length);
                stream.Position = start + length;
                return file;
            }
            using var copy = new MemoryStream();
            stream.CopyTo(copy);
            return SafetensorsFormat.Parse(copy.GetBuffer().AsSpan(0, (int)copy.Length));
        }
        catch (Exception e) when (e is IOException or NotSupportedException or ObjectDisposedException)
        {
            return Fin<SafetensorsFile>.Fail(Error.New($"cannot read safetensors stream: {e.Message}"));
        }
    }

    /// <summary>
    /// Reads a safetensors file piece by piece (the header, then each tensor's bytes straight into its values, no
    /// copy of the whole file in memory); a missing or unreadable file is an error value too.
    /// </summary>
    /// <param name="path">The file.</param>
    [Pure]
    public static Fin<SafetensorsFile> Load(string path)
    {
        if (string.IsNullOrWhiteSpace(path)) return Fin<SafetensorsFile>.Fail(Error.New("expected path to name a safetensors file but it is empty"));
        try
        {
            if (!File.Exists(path)) return Fin<SafetensorsFile>.Fail(Error.New($"safetensors file {path} does not exist"));
            using var handle = File.OpenHandle(path, FileMode.Open, FileAccess.Read, FileShare.Read, FileOptions.RandomAccess);
            return SafetensorsFormat.Parse((offset, destination) =>
            {
                while (destination.Length > 0)
                {
                    var read = RandomAccess.Read(handle, destination, offset);
                    if (read == 0) throw new EndOfStreamException($"the file ended at byte {offset} while it was read");
                    destination = destination[read..];
                    offset += read;
                }
            }, RandomAccess.GetLength(handle));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or NotSupportedException)
        {
            return Fin<SafetensorsFile>.Fail(Error.New($"cannot read safetensors file {path}: {e.Message}"));
        }
    }

    /// <summary>
    /// A parameter tree shaped like <paramref name="template"/> read from a file written with
    /// <see cref="SafetensorsFile.OfTree{T}"/> (<see cref="Load"/> then <see cref="SafetensorsFile.ReadInto{T}"/>).
    /// </summary>
    /// <param name="path">The file.</param>
    /// <param name="template">A tree of the expected structure (its values are ignored).</param>
    [Pure]
    public static Validation<Error, T> LoadInto<T>(string path, T template) where T : IParameterTree<T>
    {
        ArgumentNullException.ThrowIfNull(template);
        return LeavesFromFile(path, template.LeafShapes()).Map(template.FromLeaves);
    }

    /// <summary>
    /// The leaves of a file read against the expected shapes. The file's tensors are not referenced once this returns,
    /// so they can be collected while the tree is built from the leaves (at most two copies of the weights at once).
    /// </summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private static Validation<Error, ImmutableArray<Leaf>> LeavesFromFile(string path, ImmutableArray<LeafShape> expected) =>
        Load(path).Match(file => file.LeavesFor(expected), error => Validation<Error, ImmutableArray<Leaf>>.Fail(LanguageExt.Prelude.Seq1(error)));

    /// <summary>
    /// The bytes of a file: the metadata and the tensors in ordinal name order, the header padded with spaces to a
    /// multiple of 8 bytes; or an error when a tensor's dtype is not written (F16, BF16) or a name is not valid Unicode.
    /// </summary>
    /// <param name="file">Metadata and tensors.</param>
    [Pure]
    public static Fin<byte[]> Serialize(SafetensorsFile file) =>
        file is null ? Fin<byte[]>.Fail(Error.New("expected file to be a SafetensorsFile but got null")) : SafetensorsFormat.Serialize(file);

    /// <summary>
    /// Writes the file <see cref="Serialize"/> makes to a stream, the header then each tensor's values as they are
    /// (F64) or through a small buffer (F32), with no copy of the whole file in memory; nothing is written when the
    /// header cannot be made.
    /// </summary>
    /// <param name="stream">A writable stream; it is not closed.</param>
    /// <param name="file">Metadata and tensors.</param>
    public static Fin<Unit> Write(Stream stream, SafetensorsFile file)
    {
        if (stream is null) return Fin<Unit>.Fail(Error.New("expected stream to be a writable stream but got null"));
        if (file is null) return Fin<Unit>.Fail(Error.New("expected file to be a SafetensorsFile but got null"));
        return SafetensorsFormat.Header(file).Bind(header =>
        {
            try
            {
                stream.Write(header.Prefix);
                SafetensorsFormat.WriteData(stream, file);
                return Fin<Unit>.Succ(Unit.Default);
            }
            catch (Exception e) when (e is IOException or NotSupportedException or ObjectDisposedException)
            {
                return Fin<Unit>.Fail(Error.New($"cannot write safetensors stream: {e.Message}"));
            }
        });
    }

    /// <summary>
    /// Writes a file atomically: to a temporary file in the same directory (streamed as <see cref="Write"/> does),
    /// flushed to disk, then renamed over <paramref name="path"/>. On any failure nothing is left behind and an
    /// existing file at the path is unchanged.
    /// </summary>
    /// <param name="path">Destination file.</param>
    /// <param name="file">Metadata and tensors.</param>
    public static Fin<Unit> Save(string path, SafetensorsFile file) =>
        file is null
            ? Fin<Unit>.Fail(Error.New("expected file to be a SafetensorsFile but got null"))
            : SafetensorsFormat.Header(file).Bind(header => OutputFile.WriteAtomically(path, stream =>
            {
                stream.Write(header.Prefix);
                SafetensorsFormat.WriteData(stream, file);
            }));
}
