using System.Collections.Immutable;
using System.Diagnostics.Contracts;

namespace RnnFunctional;

/// <summary>
/// A one-item-per-line corpus: reading the items, a deterministic train/held-out split and the mini-batches of an
/// epoch, all pure and driven by an explicit <see cref="RandomState"/>.
/// </summary>
public static class Corpus
{
    /// <summary>
    /// The items of a text: its lines with surrounding white space removed, empty lines dropped and each distinct
    /// item kept once, in order of first appearance.
    /// </summary>
    /// <param name="text">One item per line (\n or \r\n).</param>
    [Pure]
    public static ImmutableArray<string> Items(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        return [.. text.Split('\n').Select(l => l.Trim()).Where(l => l.Length > 0).Distinct(StringComparer.Ordinal)];
    }

    /// <summary>
    /// A deterministic split: the items are shuffled with <paramref name="seed"/> and the last
    /// round(n·fraction) of them (at least one when n ≥ 2 and fraction &gt; 0) are held out.
    /// </summary>
    /// <param name="items">At least one item.</param>
    /// <param name="heldOutFraction">Fraction in [0, 1) to hold out.</param>
    /// <param name="seed">Seed of the shuffle; the same seed gives the same split.</param>
    [Pure]
    public static (ImmutableArray<T> Train, ImmutableArray<T> HeldOut) Split<T>(ImmutableArray<T> items, double heldOutFraction, long seed)
    {
        if (items.IsDefaultOrEmpty) throw new ArgumentException("expected items to hold at least one item but it is empty", nameof(items));
        if (!(heldOutFraction >= 0 && heldOutFraction < 1))
            throw new ArgumentOutOfRangeException(nameof(heldOutFraction), heldOutFraction, $"expected heldOutFraction to be in [0, 1) but got {heldOutFraction}");
        var held = (int)Math.Round(items.Length * heldOutFraction);
        if (heldOutFraction > 0 && items.Length >= 2) held = Math.Clamp(held, 1, items.Length - 1);
        var (shuffled, _) = RandomState.Seeded(seed).Shuffle(items);
        return (shuffled[..(items.Length - held)], shuffled[(items.Length - held)..]);
    }

    /// <summary>
    /// The mini-batches of one epoch: the items shuffled, grouped in pools of 16 batches sorted by length (so that a
    /// batch holds items of similar length and little padding), cut into batches of at most
    /// <paramref name="batchSize"/> items whose order is shuffled again.
    /// </summary>
    /// <param name="items">Encoded items (without end token), at least one.</param>
    /// <param name="batchSize">Items per batch, at least 1.</param>
    /// <param name="random">The random state; the next one is returned.</param>
    /// <param name="endToken">Token that starts and ends every item.</param>
    [Pure]
    public static (ImmutableArray<TokenBatch> Batches, RandomState Next) Epoch(ImmutableArray<ImmutableArray<int>> items, int batchSize,
        RandomState random, int endToken = Vocabulary.EndToken)
    {
        RequireItems(items, batchSize);
        var (shuffled, next) = random.Shuffle(items);
        var groups = shuffled.Chunk(batchSize * 16)
            .SelectMany(pool => pool.OrderBy(s => s.Length).Chunk(batchSize))
            .Select(b => TokenBatch.ForNextToken(b, endToken))
            .ToImmutableArray();
        return next.Shuffle(groups);
    }

    /// <summary>
    /// The mini-batches of <paramref name="epochs"/> epochs, lazily, each epoch reshuffled with the state left by the
    /// previous one.
    /// </summary>
    /// <param name="items">Encoded items, at least one.</param>
    /// <param name="batchSize">Items per batch, at least 1.</param>
    /// <param name="epochs">Number of passes, at least 1.</param>
    /// <param name="random">The random state of the first epoch.</param>
    /// <param name="endToken">Token that starts and ends every item.</param>
    [Pure]
    public static IEnumerable<TokenBatch> Epochs(ImmutableArray<ImmutableArray<int>> items, int batchSize, int epochs,
        RandomState random, int endToken = Vocabulary.EndToken)
    {
        RequireItems(items, batchSize);
        if (epochs < 1) throw new ArgumentOutOfRangeException(nameof(epochs), epochs, $"expected epochs to be at least 1 but got {epochs}");
        return Iterate(random);

        IEnumerable<TokenBatch> Iterate(RandomState state)
        {
            for (var e = 0; e < epochs; e++)
            {
                (var batches, state) = Epoch(items, batchSize, state, endToken);
                foreach (var b in batches) yield return b;
            }
        }
    }

    /// <summary>The items in their order, cut into batches of at most <paramref name="batchSize"/> (for evaluation).</summary>
    /// <param name="items">Encoded items, at least one.</param>
    /// <param name="batchSize">Items per batch, at least 1.</param>
    /// <param name="endToken">Token that starts and ends every item.</param>
    [Pure]
    public static ImmutableArray<TokenBatch> InOrder(ImmutableArray<ImmutableArray<int>> items, int batchSize, int endToken = Vocabulary.EndToken)
    {
        RequireItems(items, batchSize);
        return [.. items.Chunk(batchSize).Select(b => TokenBatch.ForNextToken(b, endToken))];
    }

    private static void RequireItems(ImmutableArray<ImmutableArray<int>> items, int batchSize)
    {
        if (items.IsDefaultOrEmpty) throw new ArgumentException("expected items to hold at least one item but it is empty", nameof(items));
        if (batchSize < 1) throw new ArgumentOutOfRangeException(nameof(batchSize), batchSize, $"expected batchSize to be at least 1 but got {batchSize}");
    }
}
