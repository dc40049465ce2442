using System.Collections.Immutable;
using System.Text;
using LanguageExt;
using LanguageExt.Common;

namespace RnnFunctional.Cli;

/// <summary>A corpus as read from a file or from the embedded dinosaur names.</summary>
/// <param name="Name">Where it came from, for messages.</param>
/// <param name="Items">Its distinct non-blank lines.</param>
internal sealed record CorpusText(string Name, ImmutableArray<string> Items);

/// <summary>Reads a one-item-per-line corpus, refusing what is not text or holds too little.</summary>
internal static class CorpusSource
{
    /// <summary>The name of the embedded corpus.</summary>
    public const string Embedded = "dinosaur names (embedded)";

    private static readonly UTF8Encoding Strict = new(false, true);

    /// <summary>The corpus at <paramref name="path"/>, or the embedded dinosaur names when it is null.</summary>
    public static Fin<CorpusText> Load(string? path) =>
        (path is null ? ReadEmbedded() : ReadFile(path)).Bind(bytes => Decode(path ?? Embedded, bytes));

    private static Fin<byte[]> ReadEmbedded()
    {
        using var stream = typeof(CorpusSource).Assembly.GetManifestResourceStream("dinos.txt");
        if (stream is null) return Fin<byte[]>.Fail(Error.New("the embedded corpus is missing from this build"));
        using var copy = new MemoryStream();
        stream.CopyTo(copy);
        return Fin<byte[]>.Succ(copy.ToArray());
    }

    private static Fin<byte[]> ReadFile(string path)
    {
        try
        {
            if (Directory.Exists(path)) return Fin<byte[]>.Fail(Error.New($"corpus {path} is a directory, not a file"));
            return File.Exists(path)
                ? Fin<byte[]>.Succ(File.ReadAllBytes(path))
                : Fin<byte[]>.Fail(Error.New($"corpus file {path} does not exist"));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or NotSupportedException or ArgumentException)
        {
            return Fin<byte[]>.Fail(Error.New($"cannot read corpus {path}: {e.Message}"));
        }
    }

    private static Fin<CorpusText> Decode(string name, byte[] bytes)
    {
        if (Array.IndexOf(bytes, (byte)0) is var nul and >= 0)
            return Fin<CorpusText>.Fail(Error.New($"corpus {name} is not text: it holds a NUL byte at offset {nul}"));
        string text;
        try
        {
            text = Strict.GetString(bytes);
        }
        catch (DecoderFallbackException e)
        {
            return Fin<CorpusText>.Fail(Error.New($"corpus {name} is not text: invalid UTF-8 at byte {e.Index}"));
        }
        if (text.Length > 0 && text[0] == '\uFEFF') text = text[1..];
        if (text.IndexOfAny([.. Enumerable.Range(1, 31).Where(c => c is not ('\t' or '\n' or '\r')).Select(c => (char)c)]) is var control and >= 0)
            return Fin<CorpusText>.Fail(Error.New($"corpus {name} is not text: it holds the control character U+{(int)text[control]:X4} at character {control}"));
        var items = Corpus.Items(text);
        return items.Length switch
        {
            0 => Fin<CorpusText>.Fail(Error.New($"corpus {name} is empty: it has no non-blank line")),
            1 => Fin<CorpusText>.Fail(Error.New($"corpus {name} has a single distinct item; at least 2 are needed (one to train on, one to hold out)")),
            _ => Fin<CorpusText>.Succ(new CorpusText(name, items)),
        };
    }
}
