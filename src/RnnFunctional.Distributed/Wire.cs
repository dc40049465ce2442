using System.Buffers.Binary;
using System.Collections.Immutable;
using System.Diagnostics.Contracts;
using System.Runtime.InteropServices;

namespace RnnFunctional.Distributed;

/// <summary>
/// A parameter or gradient tree on the wire: all its values in one contiguous payload of 8 bytes per value, each an
/// IEEE 754 binary64 in little-endian byte order, the leaves in the order of <see cref="IParameterTree{TSelf}.ToLeaves"/>
/// and each leaf's values column-major as in <see cref="Leaf.Values"/> (the order of <see cref="Tree.Flatten{T}"/>).
/// On the wire the payload is one length-prefixed block, so n values cost 8n bytes and a few bytes of header, copied as
/// a block rather than value by value; a payload received is read into an array that the process reuses from step to
/// step where it can (a coordinator's gradient payloads). Names and shapes are not sent: both ends build the same tree
/// structure from the run's <see cref="ModelSpec"/>, and <see cref="Into{T}"/> refuses a payload of another length.
/// </summary>
/// <param name="Bytes">The payload; not changed once built (the record is <see cref="ImmutableAttribute"/> to Orleans, which does not copy it).</param>
[Immutable]
public sealed record FlatTree(byte[] Bytes)
{
    /// <summary>Bytes per value.</summary>
    public const int BytesPerValue = sizeof(double);

    /// <summary>
    /// Where the array goes back once Orleans has written the payload to the wire (<see cref="FlatTreeCodec"/>), or,
    /// when the payload went by reference to a coordinator in the same process, once that coordinator has summed it:
    /// set for a payload that a worker sends and never reads again (<see cref="PartialSum.ToPayload"/>); taken at most once.
    /// </summary>
    private PayloadBuffers? lender;

    /// <summary>
    /// Whether the array was read off the wire into <see cref="PayloadBuffers.Received"/> (<see cref="FlatTreeCodec"/>),
    /// so that nothing but the payload holds it and a silo may hand it back once read (<see cref="SiloParameters"/>).
    /// </summary>
    internal bool FromWire { get; private init; }

    /// <summary>A payload read off the wire into <paramref name="bytes"/>, an array of <see cref="PayloadBuffers.Received"/>.</summary>
    internal static FlatTree Received(byte[] bytes) => new(bytes) { FromWire = true };

    /// <summary>A payload whose array goes back to <paramref name="lender"/> once written to the wire (or summed by a coordinator that got it by reference); nothing reads it after that.</summary>
    internal static FlatTree Lent(byte[] bytes, PayloadBuffers lender) => new(bytes) { lender = lender };

    /// <summary>The array's lender, taken: the first call, once the payload is written or summed, gets it; later ones get null.</summary>
    internal PayloadBuffers? TakeLender() => Interlocked.Exchange(ref lender, null);

    /// <summary>The same array (payloads compare by reference to their bytes; how the array is kept does not count).</summary>
    /// <param name="other">Another payload.</param>
    public bool Equals(FlatTree? other) => other is not null && ReferenceEquals(Bytes, other.Bytes);

    /// <inheritdoc />
    public override int GetHashCode() => System.Runtime.CompilerServices.RuntimeHelpers.GetHashCode(Bytes);

    /// <summary>Number of whole values held (<see cref="Bytes"/>' length divided by 8; 0 for a payload received without bytes).</summary>
    public long Count => (Bytes?.Length ?? 0) / BytesPerValue;

    /// <summary>The values of a tree in one payload, copied.</summary>
    /// <param name="tree">Any parameter tree.</param>
    [Pure]
    public static FlatTree Of<T>(T tree) where T : IParameterTree<T>
    {
        ArgumentNullException.ThrowIfNull(tree);
        return new(Write(tree, null));
    }

    /// <summary>
    /// The values of <paramref name="tree"/> as a payload's bytes in an array of <paramref name="buffers"/> (a new one
    /// without): on a little-endian machine each leaf is copied once, straight into the array.
    /// </summary>
    internal static byte[] Write<T>(T tree, PayloadBuffers? buffers) where T : IParameterTree<T>
    {
        var count = Tree.Count(tree);
        var length = checked(count * BytesPerValue);
        var bytes = buffers?.Rent(length) ?? GC.AllocateUninitializedArray<byte>(length);
        if (BitConverter.IsLittleEndian)
        {
            var written = Tree.Write(tree, MemoryMarshal.Cast<byte, double>(bytes.AsSpan()));
            if (written != count) throw new InvalidOperationException($"expected {count} values from the tree but it wrote {written}");
            return bytes;
        }
        var offset = 0;
        foreach (var leaf in tree.ToLeaves())
        {
            Encode(leaf.Values.AsSpan(), bytes.AsSpan(offset));
            offset += leaf.Values.Length * BytesPerValue;
        }
        return bytes;
    }

    /// <summary>The values of a payload, decoded into a new array.</summary>
    /// <param name="bytes">8 bytes per value, little-endian; a length that is not a multiple of 8 is refused.</param>
    [Pure]
    public static double[] Decode(ReadOnlySpan<byte> bytes)
    {
        if (bytes.Length % BytesPerValue != 0)
            throw new ArgumentException($"expected a whole number of {BytesPerValue}-byte values but got {bytes.Length} bytes", nameof(bytes));
        var values = new double[bytes.Length / BytesPerValue];
        if (BitConverter.IsLittleEndian) bytes.CopyTo(MemoryMarshal.AsBytes(values.AsSpan()));
        else
            for (var i = 0; i < values.Length; i++) values[i] = BinaryPrimitives.ReadDoubleLittleEndian(bytes[(i * BytesPerValue)..]);
        return values;
    }

    /// <summary>
    /// This payload when it holds exactly <paramref name="count"/> values; otherwise (another length, or no bytes at all
    /// as a deserialized payload may have) an <see cref="InvalidDataException"/> naming <paramref name="what"/>, the
    /// length expected and the length received.
    /// </summary>
    /// <param name="count">The number of values expected.</param>
    /// <param name="what">What the payload is, for the error (e.g. "parameters version 3 for model …").</param>
    [Pure]
    public FlatTree Expect(long count, string what) =>
        Bytes switch
        {
            { } bytes when bytes.Length == count * BytesPerValue => this,
            { } bytes => throw new InvalidDataException(
                $"expected {count} values ({count * BytesPerValue} bytes) of {what} but got {bytes.Length} bytes"
                + (bytes.Length % BytesPerValue == 0 ? $" ({bytes.Length / BytesPerValue} values)" : $" (not a whole number of {BytesPerValue}-byte values)")),
            null => throw new InvalidDataException($"expected {count} values ({count * BytesPerValue} bytes) of {what} but got no bytes"),
        };

    /// <summary>
    /// A tree of <paramref name="like"/>'s structure holding these values; the payload must hold exactly
    /// <see cref="Tree.Count{T}"/>(like) values (<see cref="Expect"/>).
    /// </summary>
    /// <param name="like">A tree of the expected structure.</param>
    /// <param name="what">What the payload is, for the error.</param>
    [Pure]
    public T Into<T>(T like, string what) where T : IParameterTree<T>
    {
        ArgumentNullException.ThrowIfNull(like);
        var bytes = Expect(Tree.Count(like), what).Bytes;
        return Tree.Unflatten(like, BitConverter.IsLittleEndian ? MemoryMarshal.Cast<byte, double>(bytes.AsSpan()) : Decode(bytes));
    }

    /// <summary>Writes <paramref name="values"/> into <paramref name="bytes"/>, 8 little-endian bytes each.</summary>
    private static void Encode(ReadOnlySpan<double> values, Span<byte> bytes)
    {
        if (BitConverter.IsLittleEndian) MemoryMarshal.AsBytes(values).CopyTo(bytes);
        else
            for (var i = 0; i < values.Length; i++) BinaryPrimitives.WriteDoubleLittleEndian(bytes[(i * BytesPerValue)..], values[i]);
    }
}

/// <summary>
/// The model a run trains, as data every worker can build: the cell, its width and depth and the vocabulary size
/// (<see cref="DistributedModels"/> builds the <see cref="SequenceModel{TParams,TState}"/> and a template of its
/// parameter tree).
/// </summary>
/// <param name="Cell">"rnn", "lstm" or "gru".</param>
/// <param name="Vocabulary">V, the number of tokens.</param>
/// <param name="Hidden">Hidden size n_a of each layer.</param>
/// <param name="Layers">Number of layers; more than one is a <see cref="StackParameters"/> stack.</param>
[GenerateSerializer, Immutable]
public sealed record ModelSpec([property: Id(0)] string Cell, [property: Id(1)] int Vocabulary, [property: Id(2)] int Hidden, [property: Id(3)] int Layers);

/// <summary>
/// Where a run's batches come from: a text file of items, one per line (<see cref="Corpus.Items"/>), its vocabulary
/// (<see cref="Vocabulary.FromItems"/>) and the mini-batches of <see cref="Corpus.Epochs(ImmutableArray{ImmutableArray{int}}, int, int, RandomState, int)"/>. Every worker reads the
/// file itself and keeps only its pieces of each batch.
/// </summary>
/// <param name="Path">The corpus file, readable by every worker.</param>
/// <param name="BatchSize">Items per batch.</param>
/// <param name="Epochs">Number of passes.</param>
/// <param name="Seed">Seed of the shuffles.</param>
/// <param name="Digest">The SHA-256 of the file's bytes in lower-case hexadecimal: a worker whose file differs refuses the run.</param>
/// <param name="HeldOut">
/// The fraction of the items held out of training (<see cref="Corpus.Split{T}"/> of the item indices with seed 0, as
/// the command-line tool splits them); 0 trains on every item.
/// </param>
[GenerateSerializer, Immutable]
public sealed record DataSpec([property: Id(0)] string Path, [property: Id(1)] int BatchSize, [property: Id(2)] int Epochs, [property: Id(3)] long Seed,
    [property: Id(4)] string Digest, [property: Id(5)] double HeldOut = 0)
{
    /// <summary>The spec of a corpus file as it is here, its digest computed from its bytes.</summary>
    /// <param name="path">The corpus file.</param>
    /// <param name="batchSize">Items per batch.</param>
    /// <param name="epochs">Number of passes.</param>
    /// <param name="seed">Seed of the shuffles.</param>
    public static DataSpec Of(string path, int batchSize, int epochs, long seed) =>
        new(path, batchSize, epochs, seed, DigestOf(File.ReadAllBytes(path)));

    /// <summary>The SHA-256 of some bytes in lower-case hexadecimal.</summary>
    /// <param name="bytes">The bytes.</param>
    [Pure]
    public static string DigestOf(ReadOnlySpan<byte> bytes) => Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(bytes));
}

/// <summary>What identifies a run to its workers: a worker holding the shard of another run refuses its requests.</summary>
/// <param name="RunId">The run's name.</param>
/// <param name="Model">The model.</param>
/// <param name="Data">The batches.</param>
/// <param name="Pieces">P, the number of pieces of every step (independent of the number of workers).</param>
[GenerateSerializer, Immutable]
public sealed record RunSpec([property: Id(0)] string RunId, [property: Id(1)] ModelSpec Model, [property: Id(2)] DataSpec Data, [property: Id(3)] int Pieces);

/// <summary>One piece of one step, asked of the worker of that piece.</summary>
/// <param name="Run">The run.</param>
/// <param name="Step">The step, from 0: the batch of that index in the run's batch sequence.</param>
/// <param name="Version">The version of the parameters to use: the number of updates applied to them.</param>
/// <param name="Parameters">The parameters, or null when the worker is believed to hold that version already.</param>
[GenerateSerializer, Immutable]
public sealed record PieceRequest([property: Id(0)] RunSpec Run, [property: Id(1)] int Step, [property: Id(2)] int Version, [property: Id(3)] FlatTree? Parameters);

/// <summary>What a worker answers.</summary>
/// <param name="Status">Whether the piece was computed.</param>
/// <param name="Loss">The piece's summed loss.</param>
/// <param name="Tokens">Its number of real target tokens.</param>
/// <param name="Gradients">Its gradients; null unless computed.</param>
/// <param name="Worker">The silo that computed it (for reports).</param>
[GenerateSerializer, Immutable]
public sealed record PieceResult([property: Id(0)] PieceStatus Status, [property: Id(1)] double Loss, [property: Id(2)] int Tokens,
    [property: Id(3)] FlatTree? Gradients, [property: Id(4)] string Worker)
{
    /// <summary>
    /// How long the worker took, from the call of its grain (the request already read off the wire) to this result:
    /// waiting for the parameters when another request brings them and for the silo's turn to compute, reading the
    /// parameters, computing the pieces and summing them (zero when not computed).
    /// </summary>
    [Id(5)]
    public TimeSpan Took { get; init; }
}

/// <summary>The outcome of a <see cref="PieceRequest"/>.</summary>
[GenerateSerializer]
public enum PieceStatus
{
    /// <summary>The loss and gradients of the piece.</summary>
    Computed,

    /// <summary>The piece has no column in this step's batch (the batch has fewer items than pieces).</summary>
    Empty,

    /// <summary>The worker does not hold the requested parameter version: send the request again with the parameters.</summary>
    NeedParameters,
}
