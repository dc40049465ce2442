using System.Collections.Immutable;
using System.Globalization;

namespace RnnFunctional.Distributed.Tests;

/// <summary>Small corpora written to temporary files, and bitwise comparison of parameter trees.</summary>
internal static class TestData
{
    private static readonly string[] Words =
        ["ab", "ba", "abc", "cab", "bca", "acab", "bacca", "c", "cc", "abba", "cabbac", "bb", "acb", "bac", "a"];

    /// <summary><paramref name="count"/> items drawn from a small word list by <paramref name="seed"/>.</summary>
    public static ImmutableArray<string> Items(int count, int seed)
    {
        var random = new Random(seed);
        return [.. Enumerable.Range(0, count).Select(_ => Words[random.Next(Words.Length)] + Words[random.Next(Words.Length)])];
    }

    /// <summary>A corpus file of <see cref="Items"/>, one per line.</summary>
    public static string CorpusFile(int count, int seed)
    {
        var path = Path.Combine(Path.GetTempPath(), $"rnnf-dist-{Environment.ProcessId}-{Guid.NewGuid():N}.txt");
        File.WriteAllLines(path, Items(count, seed));
        return path;
    }

    /// <summary>The vocabulary of some items and their batches over <paramref name="epochs"/> epochs, as <see cref="RunData"/> builds them.</summary>
    public static (Vocabulary Vocabulary, ImmutableArray<TokenBatch> Batches) Batches(ImmutableArray<string> items, int batchSize, int epochs, long seed)
    {
        var vocabulary = Vocabulary.FromItems(items);
        ImmutableArray<ImmutableArray<int>> encoded = [.. items.Select(vocabulary.Encode)];
        return (vocabulary, [.. Corpus.Epochs(encoded, batchSize, epochs, RandomState.Seeded(seed))]);
    }

    /// <summary>The bits of every entry of a tree.</summary>
    public static long[] Bits<T>(T tree) where T : IParameterTree<T> =>
        [.. Tree.Flatten(tree).Select(BitConverter.DoubleToInt64Bits)];

    /// <summary>Null when the trees are bitwise equal, else where they first differ.</summary>
    public static string? FirstDifference<T>(T a, T b) where T : IParameterTree<T>
    {
        var (x, y) = (Tree.Flatten(a), Tree.Flatten(b));
        if (x.Length != y.Length) return $"{x.Length} entries against {y.Length}";
        for (var i = 0; i < x.Length; i++)
            if (BitConverter.DoubleToInt64Bits(x[i]) != BitConverter.DoubleToInt64Bits(y[i]))
                return string.Create(CultureInfo.InvariantCulture, $"entry {i}: {x[i]:R} against {y[i]:R}");
        return null;
    }

    /// <summary>The four models of the tests: each cell alone and a stack of two LSTM layers.</summary>
    public static ImmutableArray<(string Cell, int Layers)> Models { get; } = [("lstm", 1), ("rnn", 1), ("gru", 1), ("lstm", 2)];
}
