using System.Collections.Frozen;
using System.Collections.Immutable;
using System.Diagnostics.Contracts;
using System.Text;
using LanguageExt;
using LanguageExt.Common;

namespace RnnFunctional;

/// <summary>
/// The characters of a corpus, each with a token index. A character is a <b>Unicode scalar value</b> (a
/// <see cref="Rune"/>): a letter outside the Basic Multilingual Plane such as an emoji is one token, never two UTF-16
/// halves. (Grapheme clusters — a letter with combining marks, a flag, a family emoji — are not merged: each of their
/// scalar values is a token of its own, so that every text over the vocabulary can be encoded and decoded exactly.)
/// Token 0 is the end-of-item token (written as a newline), which also starts every item; the other characters
/// follow in the order of their scalar values.
/// </summary>
public sealed class Vocabulary : IEquatable<Vocabulary>
{
    /// <summary>The character that stands for the end-of-item token.</summary>
    public const char End = '\n';

    /// <summary>The token index of <see cref="End"/>.</summary>
    public const int EndToken = 0;

    private readonly FrozenDictionary<Rune, int> index;

    private Vocabulary(ImmutableArray<Rune> symbols)
    {
        Symbols = symbols;
        index = symbols.Select((c, i) => (c, i)).ToFrozenDictionary(p => p.c, p => p.i);
    }

    /// <summary>The characters (Unicode scalar values) by token index; <c>Symbols[0]</c> is <see cref="End"/>.</summary>
    public ImmutableArray<Rune> Symbols { get; }

    /// <summary>Number of tokens, the end token included.</summary>
    public int Size => Symbols.Length;

    /// <summary>
    /// The vocabulary of a list of items: the end token and every character (Unicode scalar value) that occurs, in
    /// scalar-value order.
    /// </summary>
    /// <param name="items">The items (names): well-formed UTF-16 text (no lone surrogate) without <see cref="End"/>.</param>
    [Pure]
    public static Vocabulary FromItems(IEnumerable<string> items)
    {
        ArgumentNullException.ThrowIfNull(items);
        var runes = new SortedSet<Rune>();
        var i = 0;
        foreach (var item in items)
        {
            if (item is null) throw new ArgumentException($"expected items to hold no null item but items[{i}] is null", nameof(items));
            if (Malformed(item) is { } k)
                throw new ArgumentException($"expected items to be well-formed text but items[{i}] holds a lone surrogate U+{(int)item[k]:X4} at UTF-16 position {k}", nameof(items));
            foreach (var rune in item.EnumerateRunes()) runes.Add(rune);
            i++;
        }
        if (runes.Contains(new Rune(End))) throw new ArgumentException("expected items without newlines but one holds a newline", nameof(items));
        return new([new Rune(End), .. runes]);
    }

    /// <summary>
    /// The vocabulary whose symbols are the characters (Unicode scalar values) of <paramref name="symbols"/>, in
    /// that order (the inverse of <see cref="ToString"/>).
    /// </summary>
    /// <param name="symbols">Distinct characters starting with <see cref="End"/>, with no lone surrogate.</param>
    [Pure]
    public static Fin<Vocabulary> FromSymbols(string symbols)
    {
        if (symbols is null || symbols.Length == 0 || symbols[0] != End)
            return Fin<Vocabulary>.Fail(Error.New("expected the vocabulary to start with the end token"));
        if (Malformed(symbols) is { } k)
            return Fin<Vocabulary>.Fail(Error.New($"expected the vocabulary to be well-formed text but it holds a lone surrogate U+{(int)symbols[k]:X4} at UTF-16 position {k}"));
        var runes = symbols.EnumerateRunes().ToImmutableArray();
        return runes.Distinct().Count() != runes.Length
            ? Fin<Vocabulary>.Fail(Error.New("expected the vocabulary to hold distinct characters"))
            : Fin<Vocabulary>.Succ(new Vocabulary(runes));
    }

    /// <summary>The token index of each character (Unicode scalar value) of <paramref name="text"/>.</summary>
    /// <param name="text">Well-formed text whose every character is in the vocabulary.</param>
    [Pure]
    public ImmutableArray<int> Encode(string text) =>
        TryEncode(text).Match(tokens => tokens, e => throw new ArgumentException(e.Message, nameof(text)));

    /// <summary><see cref="Encode"/> as a value: the tokens, or which character is unknown (positions count characters, not UTF-16 units).</summary>
    /// <param name="text">Any text.</param>
    [Pure]
    public Fin<ImmutableArray<int>> TryEncode(string text)
    {
        if (text is null) return Fin<ImmutableArray<int>>.Fail(Error.New("expected text but got null"));
        if (Malformed(text) is { } k)
            return Fin<ImmutableArray<int>>.Fail(Error.New($"expected text to be well-formed but it holds a lone surrogate U+{(int)text[k]:X4} at UTF-16 position {k}"));
        var tokens = ImmutableArray.CreateBuilder<int>(text.Length);
        var position = 0;
        foreach (var rune in text.EnumerateRunes())
        {
            if (!index.TryGetValue(rune, out var token))
                return Fin<ImmutableArray<int>>.Fail(Error.New($"character '{rune}' (U+{rune.Value:X4}) at position {position} is not in the vocabulary"));
            tokens.Add(token);
            position++;
        }
        return Fin<ImmutableArray<int>>.Succ(tokens.ToImmutable());
    }

    /// <summary>
    /// The tokens of well-formed UTF-8 text whose every character is in the vocabulary (what <see cref="Encode"/>
    /// gives for the same text as a string, without making the string).
    /// </summary>
    internal ImmutableArray<int> EncodeUtf8(ReadOnlySpan<byte> utf8)
    {
        var tokens = new int[Utf8Characters(utf8)];
        for (var k = 0; !utf8.IsEmpty; k++)
        {
            if (Rune.DecodeFromUtf8(utf8, out var rune, out var used) != System.Buffers.OperationStatus.Done)
                throw new ArgumentException("expected well-formed UTF-8", nameof(utf8));
            tokens[k] = index.TryGetValue(rune, out var token) ? token
                : throw new ArgumentException($"character '{rune}' (U+{rune.Value:X4}) at position {k} is not in the vocabulary", nameof(utf8));
            utf8 = utf8[used..];
        }
        return System.Runtime.InteropServices.ImmutableCollectionsMarshal.AsImmutableArray(tokens);
    }

    /// <summary>The number of characters (Unicode scalar values) of well-formed UTF-8: its bytes that are not continuation bytes.</summary>
    internal static int Utf8Characters(ReadOnlySpan<byte> utf8)
    {
        var n = 0;
        foreach (var b in utf8) if ((b & 0xC0) != 0x80) n++;
        return n;
    }

    /// <summary>The characters of the tokens, the end token written as a newline.</summary>
    /// <param name="tokens">Indices in [0, <see cref="Size"/>).</param>
    [Pure]
    public string Decode(IEnumerable<int> tokens)
    {
        ArgumentNullException.ThrowIfNull(tokens);
        var text = new StringBuilder();
        foreach (var t in tokens)
            text.Append(t >= 0 && t < Size ? Symbols[t].ToString() : throw new ArgumentOutOfRangeException(nameof(tokens), t, $"expected tokens in [0, {Size}) but got {t}"));
        return text.ToString();
    }

    /// <summary>The symbols in token order as one string (the end token first).</summary>
    public override string ToString() => string.Concat(Symbols.Select(r => r.ToString()));

    /// <inheritdoc />
    public bool Equals(Vocabulary? other) => other is not null && Symbols.SequenceEqual(other.Symbols);

    /// <inheritdoc />
    public override bool Equals(object? obj) => Equals(obj as Vocabulary);

    /// <inheritdoc />
    public override int GetHashCode() => ToString().GetHashCode(StringComparison.Ordinal);

    /// <summary>The UTF-16 position of the first lone surrogate of <paramref name="text"/>, or null when it is well-formed.</summary>
    private static int? Malformed(string text)
    {
        for (var i = 0; i < text.Length; i++)
        {
            if (!char.IsSurrogate(text[i])) continue;
            if (char.IsHighSurrogate(text[i]) && i + 1 < text.Length && char.IsLowSurrogate(text[i + 1])) { i++; continue; }
            return i;
        }
        return null;
    }
}
