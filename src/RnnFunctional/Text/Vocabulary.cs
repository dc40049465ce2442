using System.Collections.Frozen;
using System.Collections.Immutable;
using System.Diagnostics.Contracts;
using LanguageExt;
using LanguageExt.Common;

namespace RnnFunctional;

/// <summary>
/// The characters of a corpus, each with a token index. Token 0 is the end-of-item token (written as a newline),
/// which also starts every item; the other characters follow in ordinal order.
/// </summary>
public sealed class Vocabulary : IEquatable<Vocabulary>
{
    /// <summary>The character that stands for the end-of-item token.</summary>
    public const char End = '\n';

    /// <summary>The token index of <see cref="End"/>.</summary>
    public const int EndToken = 0;

    private readonly FrozenDictionary<char, int> index;

    private Vocabulary(ImmutableArray<char> symbols)
    {
        Symbols = symbols;
        index = symbols.Select((c, i) => (c, i)).ToFrozenDictionary(p => p.c, p => p.i);
    }

    /// <summary>The characters by token index; <c>Symbols[0]</c> is <see cref="End"/>.</summary>
    public ImmutableArray<char> Symbols { get; }

    /// <summary>Number of tokens, the end token included.</summary>
    public int Size => Symbols.Length;

    /// <summary>The vocabulary of a list of items: the end token and every character that occurs, in ordinal order.</summary>
    /// <param name="items">The items (names); they must not contain <see cref="End"/>.</param>
    [Pure]
    public static Vocabulary FromItems(IEnumerable<string> items)
    {
        ArgumentNullException.ThrowIfNull(items);
        var chars = new SortedSet<char>(items.SelectMany(s => s ?? throw new ArgumentException("expected items to hold no null item", nameof(items))), Comparer<char>.Create((a, b) => a.CompareTo(b)));
        if (chars.Contains(End)) throw new ArgumentException("expected items without newlines but one holds a newline", nameof(items));
        return new([End, .. chars]);
    }

    /// <summary>The vocabulary whose symbols are the characters of <paramref name="symbols"/>, in that order (the inverse of <see cref="ToString"/>).</summary>
    /// <param name="symbols">Distinct characters starting with <see cref="End"/>.</param>
    [Pure]
    public static Fin<Vocabulary> FromSymbols(string symbols) =>
        symbols is null || symbols.Length == 0 || symbols[0] != End
            ? Fin<Vocabulary>.Fail(Error.New("expected the vocabulary to start with the end token"))
            : symbols.Distinct().Count() != symbols.Length
                ? Fin<Vocabulary>.Fail(Error.New("expected the vocabulary to hold distinct characters"))
                : Fin<Vocabulary>.Succ(new Vocabulary([.. symbols]));

    /// <summary>The token index of each character of <paramref name="text"/>.</summary>
    /// <param name="text">Text whose every character is in the vocabulary.</param>
    [Pure]
    public ImmutableArray<int> Encode(string text) =>
        TryEncode(text).Match(tokens => tokens, e => throw new ArgumentException(e.Message, nameof(text)));

    /// <summary><see cref="Encode"/> as a value: the tokens, or which character is unknown.</summary>
    /// <param name="text">Any text.</param>
    [Pure]
    public Fin<ImmutableArray<int>> TryEncode(string text)
    {
        if (text is null) return Fin<ImmutableArray<int>>.Fail(Error.New("expected text but got null"));
        var tokens = new int[text.Length];
        for (var i = 0; i < text.Length; i++)
        {
            if (!index.TryGetValue(text[i], out tokens[i]))
                return Fin<ImmutableArray<int>>.Fail(Error.New($"character '{text[i]}' (U+{(int)text[i]:X4}) at position {i} is not in the vocabulary"));
        }
        return Fin<ImmutableArray<int>>.Succ([.. tokens]);
    }

    /// <summary>The characters of the tokens, the end token written as a newline.</summary>
    /// <param name="tokens">Indices in [0, <see cref="Size"/>).</param>
    [Pure]
    public string Decode(IEnumerable<int> tokens) =>
        new([.. tokens.Select(t => t >= 0 && t < Size ? Symbols[t] : throw new ArgumentOutOfRangeException(nameof(tokens), t, $"expected tokens in [0, {Size}) but got {t}"))]);

    /// <summary>The symbols in token order as one string (the end token first).</summary>
    public override string ToString() => new([.. Symbols]);

    /// <inheritdoc />
    public bool Equals(Vocabulary? other) => other is not null && Symbols.SequenceEqual(other.Symbols);

    /// <inheritdoc />
    public override bool Equals(object? obj) => Equals(obj as Vocabulary);

    /// <inheritdoc />
    public override int GetHashCode() => ToString().GetHashCode(StringComparison.Ordinal);
}
