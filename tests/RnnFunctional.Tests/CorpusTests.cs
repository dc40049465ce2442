using System.Collections.Immutable;
using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;

namespace RnnFunctional.Tests;

/// <summary>Vocabulary, batches, windows, the split and the bigram baseline.</summary>
public sealed class CorpusTests
{
    private static readonly ImmutableArray<string> Names = ["Aachenosaurus", "Abelisaurus", "Zuniceratops", "T", "Rex", "Abelisaurus"];

    [Fact]
    public void ItemsAreTheDistinctNonBlankTrimmedLines() =>
        Assert.Equal(["Aachenosaurus", "Abelisaurus", "Zuniceratops", "T", "Rex"], Corpus.Items(string.Join("\r\n", Names) + "\n\n   \n").ToArray());

    [Fact]
    public void VocabularyEncodesAndDecodes()
    {
        var vocabulary = Vocabulary.FromItems(Names);
        Assert.Equal(new System.Text.Rune('\n'), vocabulary.Symbols[0]);
        Assert.Equal(vocabulary.Symbols.Length, vocabulary.Symbols.Distinct().Count());
        Assert.All(Names, n => Assert.Equal(n, vocabulary.Decode(vocabulary.Encode(n))));
        Assert.Equal(vocabulary, Vocabulary.FromSymbols(vocabulary.ToString()).Match(v => v, e => throw new InvalidOperationException(e.Message)));
        Assert.Contains("character 'q' (U+0071) at position 1 is not in the vocabulary", vocabulary.TryEncode("Aq").Match(_ => "", e => e.Message));
        Assert.Equal("text", Assert.Throws<ArgumentException>(() => vocabulary.Encode("Aq")).ParamName);
    }

    [Fact]
    public void TokensAreWholeCharactersEvenOutsideTheBasicMultilingualPlane()
    {
        var vocabulary = Vocabulary.FromItems(["ab😀", "cd😁", "ef", "gh"]);
        Assert.Equal(11, vocabulary.Size);
        Assert.Equal(["\n", "a", "b", "c", "d", "e", "f", "g", "h", "😀", "😁"], vocabulary.Symbols.Select(r => r.ToString()));
        Assert.Equal([1, 2, 9], vocabulary.Encode("ab😀").ToArray());
        Assert.Equal("ab😀", vocabulary.Decode(vocabulary.Encode("ab😀")));
        Assert.Equal("😁😀a", vocabulary.Decode([10, 9, 1]));
        Assert.Equal(vocabulary, Vocabulary.FromSymbols(vocabulary.ToString()).Match(v => v, e => throw new InvalidOperationException(e.Message)));
        Assert.Contains("character '🦕' (U+1F995) at position 1 is not in the vocabulary", vocabulary.TryEncode("a🦕").Match(_ => "", e => e.Message));
    }

    [Fact]
    public void TextWithALoneSurrogateIsRefusedNamingIt()
    {
        var e = Assert.Throws<ArgumentException>(() => Vocabulary.FromItems(["ok", "a\uD83D"]));
        Assert.Equal("items", e.ParamName);
        Assert.Contains("items[1] holds a lone surrogate U+D83D at UTF-16 position 1", e.Message);
        var vocabulary = Vocabulary.FromItems(["ab😀"]);
        Assert.Contains("lone surrogate U+DE00", vocabulary.TryEncode("\uDE00a").Match(_ => "", e => e.Message));
        Assert.True(Vocabulary.FromSymbols("\na\uD83D").IsFail);
    }

    [Fact]
    public void NextTokenBatchShiftsTargetsAndPadsWithTheEndToken()
    {
        var batch = TokenBatch.ForNextToken([[3, 4], [5]]);
        Assert.Equal([[0, 0], [3, 5], [4, 0]], batch.Inputs.Select(r => r.ToArray()));
        Assert.Equal([[3, 5], [4, 0], [0, 0]], batch.Targets.Select(r => r.ToArray()));
        Assert.Equal([3, 2], batch.Lengths.ToArray());
        Assert.Equal(5, batch.Tokens);
        Assert.Equal([true, false], batch.Mask(2).ToArray());
    }

    [Property(MaxTest = 100)]
    public Property WindowsConcatenateToTheBatch(PositiveInt k, PositiveInt seed)
    {
        var random = new Random(seed.Get);
        var items = Enumerable.Range(0, random.Next(1, 6)).Select(_ => Enumerable.Range(0, random.Next(0, 12)).Select(_ => random.Next(1, 9)).ToImmutableArray()).ToArray();
        var batch = TokenBatch.ForNextToken(items);
        var windows = batch.Windows(k.Get);
        var used = batch.Lengths.Max();
        return (windows.SelectMany(w => w.Inputs).SequenceEqual(batch.Inputs.Take(used)) && windows.SelectMany(w => w.Targets).SequenceEqual(batch.Targets.Take(used)))
            .Label("inputs and targets concatenate back")
            .And((windows.Sum(w => w.Tokens) == batch.Tokens).Label("the lengths split the tokens"))
            .And(windows.All(w => w.Steps <= k.Get && w.Tokens > 0).Label("each window has at most k steps and a real token"));
    }

    [Property(MaxTest = 100)]
    public Property SplitIsADeterministicPartition(PositiveInt n, int seed)
    {
        var items = Enumerable.Range(0, 1 + n.Get % 300).ToImmutableArray();
        var (train, held) = Corpus.Split(items, 0.1, seed);
        var again = Corpus.Split(items, 0.1, seed);
        return (train.Concat(held).Order().SequenceEqual(items)).Label("a partition of the items")
            .And((train.SequenceEqual(again.Train) && held.SequenceEqual(again.HeldOut)).Label("the same seed gives the same split"))
            .And((items.Length < 2 || (held.Length >= 1 && train.Length >= 1)).Label("both sides non-empty"))
            .And((Math.Abs(held.Length - items.Length * 0.1) <= 1).Label("about a tenth held out"));
    }

    [Property(MaxTest = 100)]
    public Property AnEpochHoldsEveryItemOnce(PositiveInt n, PositiveInt size, int seed)
    {
        var items = Enumerable.Range(0, 1 + n.Get % 200).Select(i => ImmutableArray.Create(1 + i % 7, 1 + i % 5)[..(1 + i % 2)].Add(100 + i)).ToImmutableArray();
        var batchSize = 1 + size.Get % 17;
        var (batches, _) = Corpus.Epoch(items, batchSize, RandomState.Seeded(seed));
        var seen = batches.SelectMany(b => Enumerable.Range(0, b.Size).Select(j => b.Targets[b.Lengths[j] - 2][j])).Order();
        return seen.SequenceEqual(items.Select(i => i[^1])).Label("every item exactly once")
            .And(batches.All(b => b.Size <= batchSize).Label("no batch larger than the batch size"))
            .And((batches.Length == (items.Length + batchSize - 1) / batchSize).Label("⌈n / batch size⌉ batches"));
    }

    [Fact]
    public void BigramProbabilitiesSumToOneAndMatchTheCounts()
    {
        var vocabulary = Vocabulary.FromItems(["ab", "abb"]);
        var items = ImmutableArray.Create("ab", "abb").Select(vocabulary.Encode).ToArray();
        var bigram = Bigram.Fit(items, vocabulary.Size, alpha: 0.5);
        for (var previous = 0; previous < vocabulary.Size; previous++)
            Assert.Equal(1.0, Enumerable.Range(0, vocabulary.Size).Sum(next => Math.Exp(bigram.LogProbability(previous, next))), 12);
        // Transitions: end→a ×2, a→b ×2, b→end ×2, b→b ×1. V = 3. P(b | a) = (2 + 0.5) / (2 + 1.5).
        Assert.Equal(Math.Log(2.5 / 3.5), bigram.LogProbability(1, 2), 15);
        var (loss, tokens) = bigram.Evaluate(items);
        Assert.Equal(7, tokens);
        var expected = -(2 * Math.Log(2.5 / 3.5) + 2 * Math.Log(2.5 / 3.5) + 2 * Math.Log(2.5 / 4.5) + Math.Log(1.5 / 4.5));
        Assert.Equal(expected, loss, 12);
    }

    [Fact]
    public void BigramChoosesItsSmoothingWithoutHeldOutData()
    {
        var vocabulary = Vocabulary.FromItems(Names);
        var items = Names.Select(vocabulary.Encode).ToArray();
        var bigram = Bigram.Fit(items, vocabulary.Size);
        Assert.InRange(bigram.Alpha, 1e-3, 10);
        Assert.Equal(bigram, Bigram.Fit(items, vocabulary.Size) with { Counts = bigram.Counts });
    }
}
