using LanguageExt;
using LanguageExt.Common;

namespace RnnFunctional.Cli;

/// <summary>A corpus as read from a file or from the embedded dinosaur names.</summary>
/// <param name="Name">Where it came from, for messages.</param>
/// <param name="Items">Its distinct non-blank lines, held compactly.</param>
internal sealed record CorpusText(string Name, TextItems Items);

/// <summary>
/// Reads a one-item-per-line corpus as a stream (<see cref="TextItems"/>), refusing what is not a regular file, not
/// text, or holds too little.
/// </summary>
internal static class CorpusSource
{
    /// <summary>The name of the embedded corpus.</summary>
    public const string Embedded = "dinosaur names (embedded)";

    /// <summary>The corpus at <paramref name="path"/>, or the embedded dinosaur names when it is null.</summary>
    /// <param name="path">A regular file of UTF-8 text, or null.</param>
    /// <param name="progress">Told the bytes read so far and the file's size, about once per mebibyte.</param>
    public static Fin<CorpusText> Load(string? path, Action<long, long>? progress = null) =>
        (path is null ? ReadEmbedded() : ReadFile(path, progress)).Bind(items => Check(path ?? Embedded, items));

    private static Fin<TextItems> ReadEmbedded()
    {
        using var stream = typeof(CorpusSource).Assembly.GetManifestResourceStream("dinos.txt");
        return stream is null
            ? Fin<TextItems>.Fail(Error.New("the embedded corpus is missing from this build"))
            : TextItems.Read(stream, Embedded);
    }

    private static Fin<TextItems> ReadFile(string path, Action<long, long>? progress)
    {
        long size;
        try
        {
            size = File.Exists(path) ? new FileInfo(path).Length : 0;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or NotSupportedException or ArgumentException)
        {
            size = 0;
        }
        return TextItems.ReadFile(path, progress is null ? null : new Reporter(read => progress(read, size)));
    }

    private static Fin<CorpusText> Check(string name, TextItems items) => items.Count switch
    {
        0 => Fin<CorpusText>.Fail(Error.New($"corpus {name} is empty: it has no non-blank line")),
        1 => Fin<CorpusText>.Fail(Error.New($"corpus {name} has a single distinct item; at least 2 are needed (one to train on, one to hold out)")),
        _ => Fin<CorpusText>.Succ(new CorpusText(name, items)),
    };

    /// <summary>An <see cref="IProgress{T}"/> that reports on the reading thread itself.</summary>
    private sealed class Reporter(Action<long> report) : IProgress<long>
    {
        public void Report(long value) => report(value);
    }
}
