using System.Buffers.Binary;
using System.Collections.Immutable;
using System.Diagnostics.Contracts;
using System.Security.Cryptography;
using System.Text;
using LanguageExt;
using LanguageExt.Common;

namespace RnnFunctional;

/// <summary>
/// What a model file holds: string metadata (cell type, sizes, vocabulary…) and the leaves of a parameter tree, each
/// with its name, shape and exact IEEE-754 values.
/// </summary>
/// <param name="Metadata">Key → value, written in ordinal key order.</param>
/// <param name="Leaves">The parameter leaves, in tree order.</param>
public sealed record ModelDocument(ImmutableSortedDictionary<string, string> Metadata, ImmutableArray<Leaf> Leaves)
{
    /// <summary>A document holding <paramref name="parameters"/>'s leaves.</summary>
    /// <param name="metadata">Key → value.</param>
    /// <param name="parameters">Any parameter tree.</param>
    [Pure]
    public static ModelDocument Of<T>(IEnumerable<KeyValuePair<string, string>> metadata, T parameters) where T : IParameterTree<T> =>
        new(metadata.ToImmutableSortedDictionary(StringComparer.Ordinal), parameters.ToLeaves());

    /// <summary>
    /// The optimizer's state saved with the parameters, so that a run continues from the file to the same bits: the
    /// leaves of its slots, slot s's leaf NAME named <c>s/NAME</c>, slot by slot in tree order (empty for a file of
    /// parameters alone). Its step is the metadata entry <see cref="OptimizerStepKey"/>.
    /// </summary>
    public ImmutableArray<Leaf> OptimizerSlots { get; init; } = [];

    /// <summary>The metadata key of the optimizer's step count (<see cref="OptimizerState{T}.Step"/>).</summary>
    public const string OptimizerStepKey = "optimizer-step";

    /// <summary>This document with <paramref name="state"/> saved: its slots' leaves and its step.</summary>
    /// <param name="state">An optimizer's state.</param>
    [Pure]
    public ModelDocument WithOptimizer<T>(OptimizerState<T> state) where T : IParameterTree<T>
    {
        ArgumentNullException.ThrowIfNull(state);
        if (state.Slots.IsDefault) throw new ArgumentException("expected state.Slots to be a list of trees but got a default (null) array", nameof(state));
        return this with
        {
            Metadata = Metadata.SetItem(OptimizerStepKey, state.Step.ToString(System.Globalization.CultureInfo.InvariantCulture)),
            OptimizerSlots = [.. state.Slots.SelectMany((slot, s) => slot.ToLeaves().Select(leaf => leaf with { Name = $"{s}/{leaf.Name}" }))],
        };
    }

    /// <summary>
    /// The optimizer's state saved in this document, its slots read into trees shaped like <paramref name="template"/>;
    /// an error when the document has no optimizer step, or its slots are not <paramref name="slots"/> trees of the
    /// template's names and shapes.
    /// </summary>
    /// <param name="template">A tree of the parameters' structure (its values are ignored).</param>
    /// <param name="slots">The number of slots the optimizer keeps (its <c>Init</c>'s).</param>
    [Pure]
    public Fin<OptimizerState<T>> ReadOptimizerInto<T>(T template, int slots) where T : IParameterTree<T>
    {
        ArgumentNullException.ThrowIfNull(template);
        if (!Metadata.TryGetValue(OptimizerStepKey, out var text)
            || !int.TryParse(text, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var step))
            return Fin<OptimizerState<T>>.Fail(Error.New($"model file holds no optimizer state (no '{OptimizerStepKey}' entry of a count)"));
        var per = template.LeafShapes().Length;
        var saved = OptimizerSlots.IsDefault ? 0 : OptimizerSlots.Length;
        if (slots < 0 || saved != (long)slots * per)
            return Fin<OptimizerState<T>>.Fail(Error.New($"model file holds {saved} optimizer leaves but the optimizer keeps {slots} slot(s) of {per} leaves"));
        try
        {
            return Fin<OptimizerState<T>>.Succ(new OptimizerState<T>(step, [.. Enumerable.Range(0, slots).Select(s =>
                template.FromLeaves([.. OptimizerSlots.Skip(s * per).Take(per).Select(leaf => Unslotted(leaf, s))]))]));
        }
        catch (ArgumentException e)
        {
            return Fin<OptimizerState<T>>.Fail(Error.New($"model file's optimizer state does not fit its declared model: {e.Message.Split(" (Parameter")[0]}"));
        }
    }

    private static Leaf Unslotted(Leaf leaf, int slot) => leaf.Name.StartsWith($"{slot}/", StringComparison.Ordinal)
        ? leaf with { Name = leaf.Name[$"{slot}/".Length..] }
        : throw new ArgumentException($"expected optimizer leaf {leaf.Name} to be named {slot}/NAME");

    /// <summary>The metadata value of <paramref name="key"/>, or an error naming the missing key.</summary>
    /// <param name="key">The key.</param>
    [Pure]
    public Fin<string> Get(string key) =>
        Metadata.TryGetValue(key, out var value) ? Fin<string>.Succ(value) : Fin<string>.Fail(Error.New($"model file has no '{key}' entry"));

    /// <summary>
    /// The leaves read into a tree shaped like <paramref name="template"/>, or an error when a name or a shape
    /// differs.
    /// </summary>
    /// <param name="template">A tree of the expected structure (its values are ignored).</param>
    [Pure]
    public Fin<T> ReadInto<T>(T template) where T : IParameterTree<T>
    {
        ArgumentNullException.ThrowIfNull(template);
        if (Leaves.IsDefault) return Fin<T>.Fail(Error.New("model document has no leaves (a default array)"));
        try
        {
            return Fin<T>.Succ(template.FromLeaves(Leaves));
        }
        catch (ArgumentException e)
        {
            return Fin<T>.Fail(Error.New($"model file does not fit its declared model: {e.Message.Split(" (Parameter")[0]}"));
        }
    }

    /// <summary>True when both documents hold the same metadata and bit-identical leaves.</summary>
    /// <param name="other">Another document.</param>
    [Pure]
    public bool IdenticalTo(ModelDocument other) =>
        other is not null
        && Metadata.Count == other.Metadata.Count
        && Metadata.All(kv => other.Metadata.TryGetValue(kv.Key, out var v) && v == kv.Value)
        && Leaves.Length == other.Leaves.Length
        && Leaves.Zip(other.Leaves, Same).All(same => same)
        && OptimizerSlots.Length == other.OptimizerSlots.Length
        && OptimizerSlots.Zip(other.OptimizerSlots, Same).All(same => same);

    private static bool Same(Leaf a, Leaf b) =>
        a.Name == b.Name && a.Rows == b.Rows && a.Columns == b.Columns
        && a.Values.Select(BitConverter.DoubleToInt64Bits).SequenceEqual(b.Values.Select(BitConverter.DoubleToInt64Bits));
}

/// <summary>
/// The versioned, checksummed model file format and its atomic writing. Layout (little-endian):
/// the magic <c>RNNFMODL</c>; a 32-bit format version; the 64-bit length of the payload; the payload (metadata
/// count, then key/value strings; leaf count, then for each leaf its name, rows, columns and Rows·Columns doubles,
/// strings being a 32-bit byte count and UTF-8); and the SHA-256 of everything before it. Any truncation or changed
/// byte is detected when reading. Version 2 is version 1 with the optimizer's slots after the leaves (their count,
/// then each as a leaf); a document without them is written as version 1, byte for byte as before version 2.
/// </summary>
public static class ModelFile
{
    /// <summary>The newest format version this build writes and reads (it reads every version from 1).</summary>
    public const int Version = 2;

    private static readonly byte[] Magic = "RNNFMODL"u8.ToArray();
    private const int HeaderLength = 8 + 4 + 8;
    private const int HashLength = 32;
    private static readonly UTF8Encoding Strict = new(false, true);

    /// <summary>The bytes of a document.</summary>
    /// <param name="document">Metadata and leaves.</param>
    [Pure]
    public static byte[] Serialize(ModelDocument document)
    {
        ArgumentNullException.ThrowIfNull(document);
        if (document.Metadata is null) throw new ArgumentException("expected document.Metadata to be a dictionary but got null", nameof(document));
        if (document.Leaves.IsDefault) throw new ArgumentException("expected document.Leaves to be a list of leaves but got a default (null) array", nameof(document));
        if (document.OptimizerSlots.IsDefault) throw new ArgumentException("expected document.OptimizerSlots to be a list of leaves but got a default (null) array", nameof(document));
        for (var i = 0; i < document.Leaves.Length; i++)
            if (!WellFormed(document.Leaves[i]))
                throw new ArgumentException($"expected document.Leaves[{i}] to be a named leaf of Rows×Columns values", nameof(document));
        for (var i = 0; i < document.OptimizerSlots.Length; i++)
            if (!WellFormed(document.OptimizerSlots[i]))
                throw new ArgumentException($"expected document.OptimizerSlots[{i}] to be a named leaf of Rows×Columns values", nameof(document));
        var version = document.OptimizerSlots.IsEmpty ? 1 : 2;
        using var payload = new MemoryStream();
        using (var w = new BinaryWriter(payload, Strict, leaveOpen: true))
        {
            w.Write(document.Metadata.Count);
            foreach (var (key, value) in document.Metadata) { WriteString(w, key); WriteString(w, value); }
            WriteLeaves(w, document.Leaves);
            if (version == 2) WriteLeaves(w, document.OptimizerSlots);
        }
        var body = payload.ToArray();
        var bytes = new byte[HeaderLength + body.Length + HashLength];
        Magic.CopyTo(bytes, 0);
        BinaryPrimitives.WriteInt32LittleEndian(bytes.AsSpan(8), version);
        BinaryPrimitives.WriteInt64LittleEndian(bytes.AsSpan(12), body.Length);
        body.CopyTo(bytes, HeaderLength);
        SHA256.HashData(bytes.AsSpan(0, HeaderLength + body.Length), bytes.AsSpan(HeaderLength + body.Length));
        return bytes;
    }

    /// <summary>The document of some bytes, or one error saying what is wrong with them.</summary>
    /// <param name="bytes">The content of a model file.</param>
    [Pure]
    public static Fin<ModelDocument> Deserialize(ReadOnlySpan<byte> bytes)
    {
        if (bytes.Length < Magic.Length || !bytes[..Magic.Length].SequenceEqual(Magic))
            return Fail("not a model file (it does not start with the RNNFMODL signature)");
        if (bytes.Length < HeaderLength + HashLength)
            return Fail($"model file is truncated: {bytes.Length} bytes is shorter than the smallest model file ({HeaderLength + HashLength} bytes)");
        var version = BinaryPrimitives.ReadInt32LittleEndian(bytes[8..]);
        if (version is < 1 or > Version)
            return Fail($"model file has format version {version} but this build reads versions 1 to {Version}");
        var length = BinaryPrimitives.ReadInt64LittleEndian(bytes[12..]);
        if (length < 0 || length > long.MaxValue - HeaderLength - HashLength)
            return Fail($"model file is corrupted: its header announces a payload of {length} bytes");
        var expected = HeaderLength + length + HashLength;
        if (expected != bytes.Length)
            return Fail(expected > bytes.Length
                ? $"model file is truncated: its header announces {expected} bytes but it has {bytes.Length}"
                : $"model file is corrupted: its header announces {expected} bytes but it has {bytes.Length}");
        Span<byte> hash = stackalloc byte[HashLength];
        SHA256.HashData(bytes[..(HeaderLength + (int)length)], hash);
        if (!hash.SequenceEqual(bytes[(HeaderLength + (int)length)..]))
            return Fail("model file is corrupted: its SHA-256 checksum does not match its content");
        try
        {
            return Fin<ModelDocument>.Succ(ReadPayload(bytes.Slice(HeaderLength, (int)length).ToArray(), version));
        }
        catch (Exception e) when (e is EndOfStreamException or InvalidDataException or DecoderFallbackException or ArgumentException)
        {
            return Fail($"model file is malformed: {e.Message}");
        }
    }

    /// <summary>
    /// Writes a document atomically, under the rules of <see cref="OutputFile"/>: to a temporary file in the same
    /// directory, flushed to disk, then renamed over <paramref name="path"/>. On any failure the temporary file is
    /// removed and an existing file at the path is left as it was.
    /// </summary>
    /// <param name="path">Destination file.</param>
    /// <param name="document">Metadata and leaves, every value finite.</param>
    /// <exception cref="ArgumentException">A parameter is NaN or infinite (the message names each such leaf).</exception>
    public static Fin<Unit> Save(string path, ModelDocument document)
    {
        ArgumentNullException.ThrowIfNull(document);
        if (NonFinite(document) is { } problem) throw new ArgumentException($"expected document to hold finite parameters but {problem}", nameof(document));
        return WriteAtomically(path, Serialize(document));
    }

    /// <summary>
    /// Which leaves of <paramref name="document"/> hold a NaN or an infinity, with the first such entry of each, or
    /// null when every value is finite.
    /// </summary>
    /// <param name="document">Any document.</param>
    [Pure]
    public static string? NonFinite(ModelDocument document)
    {
        ArgumentNullException.ThrowIfNull(document);
        if (document.Leaves.IsDefault) return null;
        var bad = document.Leaves.Concat(document.OptimizerSlots.IsDefault ? [] : document.OptimizerSlots)
            .Select(leaf => (leaf, k: leaf.Values.IsDefault ? -1 : FirstNonFinite(leaf.Values.AsSpan())))
            .Where(p => p.k >= 0)
            .Select(p => string.Create(System.Globalization.CultureInfo.InvariantCulture,
                $"{p.leaf.Name} (entry ({p.k % Math.Max(1, p.leaf.Rows)}, {p.k / Math.Max(1, p.leaf.Rows)}) is {p.leaf.Values[p.k]})"))
            .ToArray();
        return bad.Length == 0 ? null : $"{(bad.Length == 1 ? "leaf" : "leaves")} {string.Join(", ", bad)} {(bad.Length == 1 ? "is" : "are")} not finite";
    }

    private static int FirstNonFinite(ReadOnlySpan<double> values)
    {
        if (System.Numerics.Tensors.TensorPrimitives.IsFiniteAll(values)) return -1;
        for (var i = 0; i < values.Length; i++) if (!double.IsFinite(values[i])) return i;
        return -1;
    }

    /// <summary>Reads and checks a model file; every problem (missing, unreadable, truncated, corrupted, other version) is an error value.</summary>
    /// <param name="path">The file.</param>
    [Pure]
    public static Fin<ModelDocument> Load(string path)
    {
        if (string.IsNullOrWhiteSpace(path)) return Fail("expected a model file path but got an empty one");
        try
        {
            if (!File.Exists(path)) return Fail($"model file {path} does not exist");
            return Deserialize(File.ReadAllBytes(path)).Bind(document => NonFinite(document) is { } problem
                ? Fail($"model file {path} holds parameters that are not numbers: {problem}")
                : Fin<ModelDocument>.Succ(document));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or NotSupportedException)
        {
            return Fail($"cannot read model file {path}: {e.Message}");
        }
    }

    /// <summary>Writes bytes atomically, under the rules of <see cref="OutputFile"/> (see <see cref="OutputFile.WriteAtomically(string, ReadOnlySpan{byte})"/>).</summary>
    /// <param name="path">Destination file.</param>
    /// <param name="bytes">The whole content.</param>
    public static Fin<Unit> WriteAtomically(string path, ReadOnlySpan<byte> bytes) => OutputFile.WriteAtomically(path, bytes);

    private static bool WellFormed(Leaf? leaf) =>
        leaf is { Values.IsDefault: false, Name: not null } && leaf.Values.Length == (long)leaf.Rows * leaf.Columns;

    private static void WriteLeaves(BinaryWriter w, ImmutableArray<Leaf> leaves)
    {
        w.Write(leaves.Length);
        foreach (var leaf in leaves)
        {
            WriteString(w, leaf.Name);
            w.Write(leaf.Rows);
            w.Write(leaf.Columns);
            foreach (var v in leaf.Values) w.Write(v);
        }
    }

    private static ModelDocument ReadPayload(byte[] payload, int version)
    {
        using var r = new BinaryReader(new MemoryStream(payload), Strict);
        // Every declared count and size is bounded by the bytes left to hold it before anything is allocated: a
        // metadata entry takes at least 8 bytes (two string lengths), a leaf at least 12 (name length, rows,
        // columns) and a value 8, so a file of n bytes never makes the reader allocate much more than n bytes.
        var metadataCount = Count(r, 8, "metadata entries");
        var metadata = ImmutableSortedDictionary.CreateBuilder<string, string>(StringComparer.Ordinal);
        for (var i = 0; i < metadataCount; i++)
        {
            var key = ReadString(r);
            if (!metadata.TryAdd(key, ReadString(r))) throw new InvalidDataException($"metadata key '{key}' appears twice");
        }
        var leaves = ReadLeaves(r, payload.Length, "leaves");
        var slots = version >= 2 ? ReadLeaves(r, payload.Length, "optimizer leaves") : [];
        if (r.BaseStream.Position != payload.Length) throw new InvalidDataException("unexpected bytes after the last leaf");
        return new(metadata.ToImmutable(), leaves) { OptimizerSlots = slots };
    }

    private static ImmutableArray<Leaf> ReadLeaves(BinaryReader r, long payloadLength, string what)
    {
        var leafCount = Count(r, 12, what);
        var leaves = ImmutableArray.CreateBuilder<Leaf>(leafCount);
        for (var i = 0; i < leafCount; i++)
        {
            var name = ReadString(r);
            var (rows, columns) = (r.ReadInt32(), r.ReadInt32());
            if (rows < 0 || columns < 0)
                throw new InvalidDataException($"leaf {name} declares a negative size {rows}×{columns}");
            if ((long)rows * columns > (payloadLength - r.BaseStream.Position) / 8)
                throw new InvalidDataException($"leaf {name} declares {rows}×{columns} values, more than the file holds");
            var values = new double[rows * columns];
            for (var k = 0; k < values.Length; k++) values[k] = r.ReadDouble();
            leaves.Add(new Leaf(name, rows, columns, System.Runtime.InteropServices.ImmutableCollectionsMarshal.AsImmutableArray(values)));
        }
        return leaves.MoveToImmutable();
    }

    /// <summary>A count of items of at least <paramref name="bytesEach"/> bytes each, bounded by the bytes left.</summary>
    private static int Count(BinaryReader r, int bytesEach, string what)
    {
        var n = r.ReadInt32();
        var left = r.BaseStream.Length - r.BaseStream.Position;
        return n >= 0 && n <= left / bytesEach
            ? n
            : throw new InvalidDataException($"the number of {what} ({n}) is impossible: {left} bytes are left, room for at most {left / bytesEach}");
    }

    private static void WriteString(BinaryWriter w, string s)
    {
        var bytes = Strict.GetBytes(s);
        w.Write(bytes.Length);
        w.Write(bytes);
    }

    private static string ReadString(BinaryReader r)
    {
        var n = r.ReadInt32();
        if (n < 0 || n > r.BaseStream.Length - r.BaseStream.Position) throw new InvalidDataException($"a string declares {n} bytes, more than the file holds");
        return Strict.GetString(r.ReadBytes(n));
    }

    private static Fin<ModelDocument> Fail(string message) => Fin<ModelDocument>.Fail(Error.New(message));
}
