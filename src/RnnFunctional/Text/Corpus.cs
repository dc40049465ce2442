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
        return Epoch((IReadOnlyList<ImmutableArray<int>>)items, batchSize, random, endToken);
    }

    /// <summary>
    /// <see cref="Epoch(ImmutableArray{ImmutableArray{int}}, int, RandomState, int)"/> over any list of items, for
    /// instance one that encodes each item when it is read (<see cref="TextItems.Encoded"/>): the same batches for the
    /// same items and state.
    /// </summary>
    /// <param name="items">Encoded items (without end token), at least one.</param>
    /// <param name="batchSize">Items per batch, at least 1.</param>
    /// <param name="random">The random state; the next one is returned.</param>
    /// <param name="endToken">Token that starts and ends every item.</param>
    [Pure]
    public static (ImmutableArray<TokenBatch> Batches, RandomState Next) Epoch(IReadOnlyList<ImmutableArray<int>> items, int batchSize,
        RandomState random, int endToken = Vocabulary.EndToken)
    {
        RequireItems(items, batchSize);
        var (plan, next) = Plan(items, batchSize, random);
        return ([.. plan.Select(b => Batch(items, b, endToken))], next);
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
        return Epochs((IReadOnlyList<ImmutableArray<int>>)items, batchSize, epochs, random, endToken);
    }

    /// <summary>
    /// <see cref="Epochs(ImmutableArray{ImmutableArray{int}}, int, int, RandomState, int)"/> over any list of items:
    /// the same batches, and at any time only one epoch's order (one item number per item) and one batch are held.
    /// </summary>
    /// <param name="items">Encoded items, at least one.</param>
    /// <param name="batchSize">Items per batch, at least 1.</param>
    /// <param name="epochs">Number of passes, at least 1.</param>
    /// <param name="random">The random state of the first epoch.</param>
    /// <param name="endToken">Token that starts and ends every item.</param>
    [Pure]
    public static IEnumerable<TokenBatch> Epochs(IReadOnlyList<ImmutableArray<int>> items, int batchSize, int epochs,
        RandomState random, int endToken = Vocabulary.EndToken)
    {
        RequireItems(items, batchSize);
        if (epochs < 1) throw new ArgumentOutOfRangeException(nameof(epochs), epochs, $"expected epochs to be at least 1 but got {epochs}");
        return Iterate(random);

        IEnumerable<TokenBatch> Iterate(RandomState state)
        {
            for (var e = 0; e < epochs; e++)
            {
                (var plan, state) = Plan(items, batchSize, state);
                foreach (var b in plan) yield return Batch(items, b, endToken);
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
        return [.. InOrder((IReadOnlyList<ImmutableArray<int>>)items, batchSize, endToken)];
    }

    /// <summary>
    /// The items in their order, cut into batches of at most <paramref name="batchSize"/>, lazily: each batch is made
    /// when it is enumerated (the batches of
    /// <see cref="InOrder(ImmutableArray{ImmutableArray{int}}, int, int)"/>, without holding them all).
    /// </summary>
    /// <param name="items">Encoded items, at least one.</param>
    /// <param name="batchSize">Items per batch, at least 1.</param>
    /// <param name="endToken">Token that starts and ends every item.</param>
    [Pure]
    public static IEnumerable<TokenBatch> InOrder(IReadOnlyList<ImmutableArray<int>> items, int batchSize, int endToken = Vocabulary.EndToken)
    {
        RequireItems(items, batchSize);
        return Iterate();

        IEnumerable<TokenBatch> Iterate()
        {
            for (var start = 0; start < items.Count; start += batchSize)
                yield return Batch(items, new Range(start, Math.Min(items.Count, start + batchSize)), null, endToken);
        }
    }

    /// <summary>
    /// The batches of one epoch as ranges of one order of the item numbers: the numbers shuffled, each pool of 16
    /// batches sorted stably by item length, cut into batches, and the batches shuffled.
    /// </summary>
    private static (ImmutableArray<(int[] Order, Range Range)> Batches, RandomState Next) Plan(IReadOnlyList<ImmutableArray<int>> items, int batchSize, RandomState random)
    {
        var n = items.Count;
        var (shuffled, next) = random.Shuffle(System.Runtime.InteropServices.ImmutableCollectionsMarshal.AsImmutableArray(Enumerable.Range(0, n).ToArray()));
        // The shuffled array is this method's own (Shuffle made it): it is sorted in place rather than copied.
        var order = System.Runtime.InteropServices.ImmutableCollectionsMarshal.AsArray(shuffled)!;
        var pool = (int)Math.Min(n, (long)batchSize * 16);
        var batches = new List<(int[] Order, Range Range)>((n + batchSize - 1) / batchSize);
        var keys = new long[pool];
        var counts = items as ITokenCounts;
        for (var p = 0; p < n; p += pool)
        {
            var size = Math.Min(pool, n - p);
            // A stable sort by length: the position in the pool breaks ties.
            for (var i = 0; i < size; i++)
            {
                var k = order[p + i];
                keys[i] = ((long)(counts?.TokenCount(k) ?? Length(items, k)) << 32) | (uint)i;
            }
            keys.AsSpan(0, size).Sort(order.AsSpan(p, size));
            for (var b = 0; b < size; b += batchSize) batches.Add((order, new Range(p + b, p + Math.Min(size, b + batchSize))));
        }
        return next.Shuffle([.. batches]);
    }

    private static int Length(IReadOnlyList<ImmutableArray<int>> items, int k)
    {
        var item = items[k];
        return item.IsDefault ? throw new ArgumentException($"expected items[{k}] to be a list of tokens but got a default (null) array", nameof(items)) : item.Length;
    }

    private static TokenBatch Batch(IReadOnlyList<ImmutableArray<int>> items, (int[] Order, Range Range) batch, int endToken) =>
        Batch(items, batch.Range, batch.Order, endToken);

    private static TokenBatch Batch(IReadOnlyList<ImmutableArray<int>> items, Range range, int[]? order, int endToken)
    {
        var (start, length) = range.GetOffsetAndLength(order?.Length ?? items.Count);
        var members = new ImmutableArray<int>[length];
        for (var j = 0; j < length; j++)
        {
            var i = order is null ? start + j : order[start + j];
            members[j] = items[i];
            if (members[j].IsDefault) throw new ArgumentException($"expected items[{i}] to be a list of tokens but got a default (null) array", nameof(items));
        }
        return TokenBatch.ForNextToken(members, endToken);
    }

    private static void RequireItems(ImmutableArray<ImmutableArray<int>> items, int batchSize)
    {
        if (items.IsDefaultOrEmpty) throw new ArgumentException("expected items to hold at least one item but it is empty", nameof(items));
        if (batchSize < 1) throw new ArgumentOutOfRangeException(nameof(batchSize), batchSize, $"expected batchSize to be at least 1 but got {batchSize}");
    }

    private static void RequireItems(IReadOnlyList<ImmutableArray<int>> items, int batchSize)
    {
        ArgumentNullException.ThrowIfNull(items);
        if (items is ImmutableArray<ImmutableArray<int>> { IsDefault: true } || items.Count == 0)
            throw new ArgumentException("expected items to hold at least one item but it is empty", nameof(items));
        if (batchSize < 1) throw new ArgumentOutOfRangeException(nameof(batchSize), batchSize, $"expected batchSize to be at least 1 but got {batchSize}");
    }
}
