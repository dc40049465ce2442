using System.Collections.Immutable;
using System.Text;
using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;

namespace RnnFunctional.Tests;

/// <summary>
/// The corpus reader (<see cref="TextItems"/>) fuzzed with random bytes built from pieces that stress it: invalid
/// UTF-8, byte-order marks (at the start and elsewhere), NUL and other control bytes, CR/LF mixes, encoded surrogates,
/// characters outside the Basic Multilingual Plane, Unicode white space, huge lines and empty input. Every input ends
/// in the items the string-based reading gives (<see cref="Reference"/>) or in a clear error naming the file, never in
/// another exception. The number of cases is 400 in CI (a few seconds); <c>RNNF_FUZZ_CASES=100000 dotnet test
/// tests/RnnFunctional.Tests --filter FullyQualifiedName~CorpusReaderFuzzTests</c> runs a longer fuzz.
/// </summary>
public sealed class CorpusReaderFuzzTests
{
    private const string Name = "fuzz/corpus.txt";

    private static int Cases => int.TryParse(Environment.GetEnvironmentVariable("RNNF_FUZZ_CASES"), out var n) && n > 0 ? n : 400;

    private static readonly byte[][] Pieces =
    [
        "a"u8.ToArray(), "Zb"u8.ToArray(), "saurus"u8.ToArray(), " "u8.ToArray(), "\t"u8.ToArray(), "\n"u8.ToArray(), "\r\n"u8.ToArray(),
        "\r"u8.ToArray(), "\n\n"u8.ToArray(), [0xEF, 0xBB, 0xBF], [0x00], [0x01], [0x1F], [0x7F], [0xFF], [0xC0, 0x80], [0x80],
        [0xC3], [0xED, 0xA0, 0x80], [0xED, 0xBF, 0xBF], [0xF4, 0x90, 0x80, 0x80], [0xF0, 0x9F, 0x98, 0x80], "é"u8.ToArray(),
        "\u00A0"u8.ToArray(), "\u3000"u8.ToArray(), "\u0085"u8.ToArray(), "\u2028"u8.ToArray(), "日本"u8.ToArray(), [0xE2, 0x82],
    ];

    /// <summary>Input <paramref name="seed"/>: empty, a huge line, or a run of pieces (valid ones more often).</summary>
    private static byte[] Input(int seed)
    {
        var random = new Random(seed);
        var kind = random.Next(10);
        if (kind == 0) return [];
        var bytes = new List<byte>();
        if (kind == 1)
        {
            bytes.AddRange(Encoding.UTF8.GetBytes(new string('x', random.Next(1, 300_000)) + "\nAb\n"));
            return [.. bytes];
        }
        var valid = kind < 6;
        for (int i = 0, n = random.Next(1, 60); i < n; i++)
        {
            var piece = Pieces[random.Next(valid ? 10 : Pieces.Length)];
            if (valid && piece is [0xEF, 0xBB, 0xBF] && bytes.Count > 0) continue;
            bytes.AddRange(piece);
        }
        return [.. bytes];
    }

    /// <summary>The string-based reading the stream reader replaces: strict UTF-8, the checks on the text, then <see cref="Corpus.Items"/>.</summary>
    private static bool Reference(byte[] bytes, out ImmutableArray<string> items)
    {
        items = default;
        if (Array.IndexOf(bytes, (byte)0) >= 0) return false;
        string text;
        try { text = new UTF8Encoding(false, true).GetString(bytes); }
        catch (DecoderFallbackException) { return false; }
        if (text.Length > 0 && text[0] == '\uFEFF') text = text[1..];
        if (text.Any(c => c < 32 && c is not ('\t' or '\n' or '\r'))) return false;
        items = Corpus.Items(text);
        return true;
    }

    private static Property Agrees(byte[] bytes)
    {
        LanguageExt.Fin<TextItems> read;
        try
        {
            read = TextItems.Read(new MemoryStream(bytes), Name);
        }
        catch (Exception e)
        {
            return false.Label($"threw {e.GetType().Name}: {e.Message}");
        }
        var accepted = Reference(bytes, out var expected);
        return read.Match(
            items => (accepted && items.SequenceEqual(expected)
                      && items.Characters == string.Concat(expected.SelectMany(s => s.EnumerateRunes()).Distinct().Order().Select(r => r.ToString()))
                      && expected.All(items.Contains) && items.Count == expected.Length)
                .Label($"the items of the string-based reading ({items.Count} read, {(accepted ? expected.Length : -1)} expected)"),
            error => (!accepted && error.Message.StartsWith($"corpus {Name} is not text: ", StringComparison.Ordinal)
                      && (error.Message.Contains(" (line ", StringComparison.Ordinal)))
                .Label($"a clear error naming the file where the string-based reading fails too: {error.Message}"));
    }

    [Fact]
    public void EveryInputEndsInTheReferenceItemsOrAClearError() =>
        Check.One(Config.QuickThrowOnFailure.WithMaxTest(Cases),
            Prop.ForAll(Gen.Choose(0, int.MaxValue).ToArbitrary(), seed => Agrees(Input(seed))));

    [Property(MaxTest = 200)]
    public Property ArbitraryBytesEndInTheReferenceItemsOrAClearError(byte[] bytes) => Agrees(bytes ?? []);

    [Fact]
    public void TheFuzzReachesEveryKindOfOutcome()
    {
        var messages = Enumerable.Range(0, 2000).Select(i => TextItems.Read(new MemoryStream(Input(i)), Name).Match(t => t.Count == 0 ? "(empty)" : "(items)", e => e.Message)).ToArray();
        foreach (var expected in new[] { "(empty)", "(items)", "NUL byte at offset", "invalid UTF-8 at byte", "the control character U+" })
            Assert.True(messages.Any(m => m.Contains(expected, StringComparison.Ordinal)), $"no input of the fuzz gave \"{expected}\"");
    }

    [Theory]
    [InlineData(new byte[] { 0x41, 0x0A, 0xED, 0xA0, 0x80 }, "invalid UTF-8 at byte 2 (line 2)")]
    [InlineData(new byte[] { 0x41, 0x0A, 0x42, 0x00 }, "NUL byte at offset 3 (line 2)")]
    [InlineData(new byte[] { 0xEF, 0xBB, 0xBF, 0x41, 0x07 }, "control character U+0007 at byte 4 (line 1)")]
    public void AnErrorGivesTheByteOffsetAndLine(byte[] bytes, string message) =>
        Assert.Contains(message, TextItems.Read(new MemoryStream(bytes), Name).Match(_ => "", e => e.Message));

    [Fact]
    public void ItemsAreEncodedWhenReadAndEpochsAreTheSameAsOverArrays()
    {
        var items = TextItems.Read(new MemoryStream("Rex\r\n\uFEFFT\nab😀\nRex\n  cd  \n"u8.ToArray()), Name).Match(t => t, e => throw new InvalidOperationException(e.Message));
        Assert.Equal(["Rex", "\uFEFFT", "ab😀", "cd"], items);
        var vocabulary = Vocabulary.FromItems([items.Characters]);
        var all = ImmutableArray.Create(0, 1, 2, 3);
        var lazy = items.Encoded(vocabulary, all);
        ImmutableArray<ImmutableArray<int>> eager = [.. items.Select(vocabulary.Encode)];
        Assert.Equal(eager, lazy);
        var (a, _) = Corpus.Epoch(eager, 2, RandomState.Seeded(3));
        var (b, _) = Corpus.Epoch(lazy, 2, RandomState.Seeded(3));
        Assert.Equal(a.Select(x => (x.Inputs.SelectMany(r => r), x.Targets.SelectMany(r => r), x.Lengths)).Select(x => string.Join(",", x.Item1) + "|" + string.Join(",", x.Item2) + "|" + string.Join(",", x.Lengths)),
                     b.Select(x => string.Join(",", x.Inputs.SelectMany(r => r)) + "|" + string.Join(",", x.Targets.SelectMany(r => r)) + "|" + string.Join(",", x.Lengths)));
    }
}
