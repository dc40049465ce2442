using System.Buffers;
using System.Collections;
using System.Collections.Immutable;
using System.Diagnostics.Contracts;
using System.Text;
using LanguageExt;
using LanguageExt.Common;

namespace RnnFunctional;

/// <summary>
/// The distinct items of a one-item-per-line UTF-8 corpus, read as a stream and held compactly: the items' UTF-8
/// bytes back to back in one array, one offset per item and an open-addressing hash table of item numbers. A corpus
/// of n items and b bytes takes about b + 4n bytes plus a table of at most 8n bytes, instead of a string object per
/// line and per token list; an item becomes a string or a token list only when it is asked for.
/// <para>
/// The items are those of <see cref="Corpus.Items"/>: lines split at \n, surrounding white space (\r included)
/// removed, blank lines dropped and each distinct item kept once, in order of first appearance. A UTF-8 byte-order
/// mark at the start of the stream is skipped. A stream that is not text is refused with the byte offset and line of
/// the first problem: invalid UTF-8 (an encoded surrogate included), a NUL byte, or a control character other than
/// tab, line feed and carriage return.
/// </para>
/// </summary>
public sealed class TextItems : IReadOnlyList<string>
{
    /// <summary>The most UTF-8 bytes the items may hold together (about 2 GiB).</summary>
    public const int MaxBytes = int.MaxValue - 64;

    private readonly byte[] bytes;
    private readonly int[] starts;
    private readonly int[] slots;

    private TextItems(byte[] bytes, int[] starts, int count, int[] slots, string characters) =>
        (this.bytes, this.starts, Count, this.slots, Characters) = (bytes, starts, count, slots, characters);

    /// <summary>Number of distinct items.</summary>
    public int Count { get; }

    /// <summary>Every character (Unicode scalar value) that occurs in an item, once each, in scalar-value order.</summary>
    public string Characters { get; }

    /// <summary>The UTF-8 bytes of all items together.</summary>
    public long Utf8Length => starts[Count];

    /// <summary>Item <paramref name="index"/> as a string.</summary>
    /// <param name="index">In [0, <see cref="Count"/>).</param>
    public string this[int index] => Encoding.UTF8.GetString(Utf8(index));

    /// <summary>The UTF-8 bytes of item <paramref name="index"/>.</summary>
    /// <param name="index">In [0, <see cref="Count"/>).</param>
    [Pure]
    public ReadOnlySpan<byte> Utf8(int index)
    {
        if ((uint)index >= (uint)Count)
            throw new ArgumentOutOfRangeException(nameof(index), index, $"expected index to be in [0, {Count}) but got {index}");
        return bytes.AsSpan(starts[index], starts[index + 1] - starts[index]);
    }

    /// <summary>Whether <paramref name="item"/> is one of the items (compared ordinally).</summary>
    /// <param name="item">Any string; null and malformed text (a lone surrogate) are never items.</param>
    [Pure]
    public bool Contains(string? item)
    {
        if (item is null) return false;
        byte[] utf8;
        try { utf8 = Strict.GetBytes(item); }
        catch (EncoderFallbackException) { return false; }
        return Find(bytes, starts, slots, utf8, Hash(utf8)) >= 0;
    }

    /// <summary>
    /// The items at <paramref name="indices"/> as token lists, each encoded with <paramref name="vocabulary"/> when it
    /// is read (nothing is kept): a list as long as <paramref name="indices"/> that costs no memory per item.
    /// </summary>
    /// <param name="vocabulary">A vocabulary holding every character of the items read.</param>
    /// <param name="indices">Item numbers in [0, <see cref="Count"/>).</param>
    [Pure]
    public IReadOnlyList<ImmutableArray<int>> Encoded(Vocabulary vocabulary, ImmutableArray<int> indices)
    {
        ArgumentNullException.ThrowIfNull(vocabulary);
        Shapes.ThrowIfDefault(indices, nameof(indices), "item numbers");
        foreach (var i in indices)
            if ((uint)i >= (uint)Count) throw new ArgumentOutOfRangeException(nameof(indices), i, $"expected item numbers in [0, {Count}) but got {i}");
        return new EncodedView(this, vocabulary, indices);
    }

    /// <inheritdoc />
    public IEnumerator<string> GetEnumerator()
    {
        for (var i = 0; i < Count; i++) yield return this[i];
    }

    IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();

    /// <summary>
    /// Reads the corpus at <paramref name="path"/>. Only a regular file is read (links followed): a directory, a FIFO
    /// (named pipe), a socket or a device is refused before it is opened, so that reading never waits for a writer
    /// that may not come and always ends.
    /// </summary>
    /// <param name="path">The corpus file.</param>
    /// <param name="progress">Told the number of bytes read so far, about once per mebibyte.</param>
    public static Fin<TextItems> ReadFile(string path, IProgress<long>? progress = null)
    {
        if (string.IsNullOrWhiteSpace(path)) return Fin<TextItems>.Fail(Error.New("expected a corpus path but got an empty one"));
        try
        {
            var kind = FileEntry.Kind(Path.GetFullPath(path));
            if (kind == FileKind.Missing) return Fin<TextItems>.Fail(Error.New($"corpus file {path} does not exist"));
            if (kind == FileKind.Directory) return Fin<TextItems>.Fail(Error.New($"corpus {path} is a directory, not a file"));
            if (kind != FileKind.Regular)
                return Fin<TextItems>.Fail(Error.New($"corpus {path} is {FileEntry.Describe(kind)}, not a regular file; a corpus is read only from a regular file (save the output of a pipe or device to a file first)"));
            using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1, FileOptions.SequentialScan);
            return Read(stream, path, progress);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or NotSupportedException or ArgumentException)
        {
            return Fin<TextItems>.Fail(Error.New($"cannot read corpus {path}: {e.Message}"));
        }
    }

    /// <summary>Reads a corpus from <paramref name="stream"/> to its end; the stream is not closed.</summary>
    /// <param name="stream">A readable stream of UTF-8 text.</param>
    /// <param name="name">The corpus's name in messages (its path).</param>
    /// <param name="progress">Told the number of bytes read so far, about once per mebibyte.</param>
    public static Fin<TextItems> Read(Stream stream, string name, IProgress<long>? progress = null)
    {
        ArgumentNullException.ThrowIfNull(stream);
        ArgumentNullException.ThrowIfNull(name);
        if (!stream.CanRead) throw new ArgumentException("expected a readable stream", nameof(stream));
        var capacity = stream.CanSeek ? (int)Math.Clamp(stream.Length - stream.Position, 256, MaxBytes) : 1 << 16;
        var builder = new Builder(name, capacity);
        var chunk = ArrayPool<byte>.Shared.Rent(1 << 20);
        try
        {
            int n;
            while ((n = stream.Read(chunk, 0, chunk.Length)) > 0)
            {
                var span = chunk.AsSpan(0, n);
                while (true)
                {
                    var k = span.IndexOf((byte)'\n');
                    if (builder.Append(k < 0 ? span : span[..k]) is { } tooLarge) return Fin<TextItems>.Fail(tooLarge);
                    if (k < 0) break;
                    if (builder.EndLine(1) is { } problem) return Fin<TextItems>.Fail(problem);
                    span = span[(k + 1)..];
                }
                progress?.Report(builder.Read);
            }
            return builder.EndLine(0) is { } last ? Fin<TextItems>.Fail(last) : Fin<TextItems>.Succ(builder.Build());
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(chunk);
        }
    }

    private static readonly UTF8Encoding Strict = new(false, true);

    private static int Hash(ReadOnlySpan<byte> item)
    {
        var hash = new HashCode();
        hash.AddBytes(item);
        return hash.ToHashCode() & int.MaxValue;
    }

    /// <summary>The number of the item equal to <paramref name="item"/>, or −1.</summary>
    private static int Find(byte[] bytes, int[] starts, int[] slots, ReadOnlySpan<byte> item, int hash)
    {
        var mask = slots.Length - 1;
        for (var s = hash & mask; slots[s] != 0; s = (s + 1) & mask)
        {
            var i = slots[s] - 1;
            if (bytes.AsSpan(starts[i], starts[i + 1] - starts[i]).SequenceEqual(item)) return i;
        }
        return -1;
    }

    /// <summary>The state of a read: the items so far and the line being read (its raw bytes after the last item).</summary>
    private sealed class Builder(string name, int capacity)
    {
        private byte[] bytes = new byte[capacity];
        private int[] starts = new int[1024];
        private int[] slots = new int[1024];
        private int count;
        private int end;
        private long lineOffset;
        private long line;
        private readonly ulong[] seen = new ulong[0x110000 / 64];

        /// <summary>Bytes of the stream consumed so far.</summary>
        public long Read { get; private set; }

        /// <summary>Adds bytes to the line being read.</summary>
        public Error? Append(ReadOnlySpan<byte> part)
        {
            if ((long)end + part.Length > MaxBytes) return Error.New($"corpus {name} is too large: its lines hold more than {MaxBytes} bytes");
            if (end + part.Length > bytes.Length)
                Array.Resize(ref bytes, (int)Math.Min(MaxBytes, Math.Max((long)bytes.Length * 2, (long)end + part.Length)));
            part.CopyTo(bytes.AsSpan(end));
            end += part.Length;
            Read += part.Length;
            return null;
        }

        /// <summary>Ends the line being read (its newline, of <paramref name="newline"/> bytes, consumed): checks it, trims it and keeps it if it is a new item.</summary>
        public Error? EndLine(int newline)
        {
            var start = starts[count];
            var raw = bytes.AsSpan(start, end - start);
            line++;
            var offset = lineOffset;
            lineOffset += raw.Length + newline;
            Read += newline;
            if (line == 1 && raw.StartsWith((ReadOnlySpan<byte>)[0xEF, 0xBB, 0xBF]))
            {
                raw = raw[3..];
                offset += 3;
            }
            if (Check(raw, offset) is { } problem) return problem;
            var item = Trim(raw);
            end = start;
            if (item.IsEmpty) return null;
            var hash = Hash(item);
            if (Find(bytes, starts, slots, item, hash) >= 0) return null;
            item.CopyTo(bytes.AsSpan(start));
            end = start + item.Length;
            if (count + 2 > starts.Length) Array.Resize(ref starts, (int)Math.Min(Array.MaxLength, (long)starts.Length * 2));
            starts[++count] = end;
            Insert(slots, count - 1, hash);
            if (count > slots.Length / 10 * 7) Grow();
            Mark(bytes.AsSpan(start, item.Length));
            return null;
        }

        /// <summary>The first problem of a line: a NUL byte, invalid UTF-8 or a control character, with its byte offset and line.</summary>
        private Error? Check(ReadOnlySpan<byte> raw, long offset)
        {
            for (var i = 0; i < raw.Length;)
            {
                var b = raw[i];
                if (b < 0x80)
                {
                    if (b == 0) return Error.New($"corpus {name} is not text: it holds a NUL byte at offset {offset + i} (line {line})");
                    if (b < 0x20 && b is not ((byte)'\t' or (byte)'\r'))
                        return Error.New($"corpus {name} is not text: it holds the control character U+{b:X4} at byte {offset + i} (line {line})");
                    i++;
                    continue;
                }
                if (Rune.DecodeFromUtf8(raw[i..], out _, out var used) != OperationStatus.Done)
                    return Error.New($"corpus {name} is not text: invalid UTF-8 at byte {offset + i} (line {line})");
                i += used;
            }
            return null;
        }

        private static ReadOnlySpan<byte> Trim(ReadOnlySpan<byte> text)
        {
            while (!text.IsEmpty && Rune.DecodeFromUtf8(text, out var r, out var used) == OperationStatus.Done && Rune.IsWhiteSpace(r)) text = text[used..];
            while (!text.IsEmpty && Rune.DecodeLastFromUtf8(text, out var r, out var used) == OperationStatus.Done && Rune.IsWhiteSpace(r)) text = text[..^used];
            return text;
        }

        private void Mark(ReadOnlySpan<byte> item)
        {
            while (!item.IsEmpty)
            {
                Rune.DecodeFromUtf8(item, out var r, out var used);
                seen[r.Value >> 6] |= 1UL << (r.Value & 63);
                item = item[used..];
            }
        }

        private static void Insert(int[] table, int item, int hash)
        {
            var mask = table.Length - 1;
            var s = hash & mask;
            while (table[s] != 0) s = (s + 1) & mask;
            table[s] = item + 1;
        }

        private void Grow()
        {
            var grown = new int[slots.Length * 2];
            for (var i = 0; i < count; i++) Insert(grown, i, Hash(bytes.AsSpan(starts[i], starts[i + 1] - starts[i])));
            slots = grown;
        }

        public TextItems Build()
        {
            // Space left by blank lines, repeats and trimmed white space is given back when it is more than a quarter.
            if (bytes.Length - end > bytes.Length / 4) Array.Resize(ref bytes, Math.Max(end, 1));
            if (starts.Length - (count + 1) > starts.Length / 4) Array.Resize(ref starts, count + 1);
            var characters = new StringBuilder();
            for (var w = 0; w < seen.Length; w++)
                for (var word = seen[w]; word != 0; word &= word - 1)
                    characters.Append(new Rune(w * 64 + System.Numerics.BitOperations.TrailingZeroCount(word)).ToString());
            return new TextItems(bytes, starts, count, slots, characters.ToString());
        }
    }

    /// <summary>Items read as token lists, encoded on each read.</summary>
    private sealed class EncodedView(TextItems items, Vocabulary vocabulary, ImmutableArray<int> indices) : IReadOnlyList<ImmutableArray<int>>, ITokenCounts
    {
        public int Count => indices.Length;

        public ImmutableArray<int> this[int index] => vocabulary.EncodeUtf8(items.Utf8(indices[index]));

        public int TokenCount(int index) => Vocabulary.Utf8Characters(items.Utf8(indices[index]));

        public IEnumerator<ImmutableArray<int>> GetEnumerator()
        {
            for (var i = 0; i < indices.Length; i++) yield return this[i];
        }

        IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();
    }
}

/// <summary>A list of token lists that can tell an item's length without making its token list.</summary>
internal interface ITokenCounts
{
    /// <summary>The number of tokens of item <paramref name="index"/>.</summary>
    int TokenCount(int index);
}
