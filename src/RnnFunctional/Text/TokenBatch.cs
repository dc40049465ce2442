using System.Collections.Immutable;
using System.Diagnostics.Contracts;

namespace RnnFunctional;

/// <summary>
/// A ragged batch of token sequences laid out time-major, one column per example: at step t example j reads
/// <c>Inputs[t][j]</c> and is asked to predict <c>Targets[t][j]</c> while t &lt; <c>Lengths[j]</c>; later steps are
/// padding that neither adds to a loss nor to a gradient.
/// </summary>
public sealed record TokenBatch
{
    /// <summary>A batch; every row has one token per example and every length is in [0, T].</summary>
    /// <param name="inputs">T rows of m input tokens (padding included).</param>
    /// <param name="targets">T rows of m target tokens (padding included).</param>
    /// <param name="lengths">m lengths, each in [0, T].</param>
    public TokenBatch(ImmutableArray<ImmutableArray<int>> inputs, ImmutableArray<ImmutableArray<int>> targets, ImmutableArray<int> lengths)
    {
        Shapes.ThrowIfDefault(lengths, nameof(lengths), "one length per example");
        if (lengths.IsEmpty) throw new ArgumentException("expected lengths to hold at least one example but it is empty", nameof(lengths));
        var (steps, m) = (inputs.IsDefault ? 0 : inputs.Length, lengths.Length);
        Shapes.ThrowIfAny(Shapes.All(
            Shapes.Labels(nameof(inputs), inputs, steps, m, int.MaxValue),
            Shapes.Labels(nameof(targets), targets, steps, m, int.MaxValue)));
        for (var j = 0; j < m; j++)
            if (lengths[j] < 0 || lengths[j] > steps)
                throw new ArgumentException($"expected lengths[{j}] to be in [0, T] = [0, {steps}] but got {lengths[j]}", nameof(lengths));
        (Inputs, Targets, Lengths) = (inputs, targets, lengths);
    }

    /// <summary>T rows of m input tokens.</summary>
    public ImmutableArray<ImmutableArray<int>> Inputs { get; }

    /// <summary>T rows of m target tokens.</summary>
    public ImmutableArray<ImmutableArray<int>> Targets { get; }

    /// <summary>The number of real (unpadded) steps of each example.</summary>
    public ImmutableArray<int> Lengths { get; }

    /// <summary>Number of steps T.</summary>
    public int Steps => Inputs.Length;

    /// <summary>Number of examples m.</summary>
    public int Size => Lengths.Length;

    /// <summary>Number of real target tokens, Σ_j Lengths[j].</summary>
    public int Tokens => Lengths.Sum();

    /// <summary>Which examples are still running at step t (the loss mask of that step).</summary>
    /// <param name="t">Step in [0, T).</param>
    [Pure]
    public ImmutableArray<bool> Mask(int t) => [.. Lengths.Select(n => t < n)];

    /// <summary>
    /// Steps [start, start + count) as a batch of their own, each length cut to the window: the unit of truncated
    /// back-propagation through time.
    /// </summary>
    /// <param name="start">First step, in [0, T).</param>
    /// <param name="count">Number of steps, at least 1; cut at T.</param>
    [Pure]
    public TokenBatch Window(int start, int count)
    {
        if (start < 0 || start >= Steps) throw new ArgumentOutOfRangeException(nameof(start), start, $"expected start to be in [0, T) = [0, {Steps}) but got {start}");
        if (count < 1) throw new ArgumentOutOfRangeException(nameof(count), count, $"expected count to be at least 1 but got {count}");
        var end = Math.Min(Steps, start + count);
        return new(Inputs[start..end], Targets[start..end], [.. Lengths.Select(n => Math.Clamp(n - start, 0, end - start))]);
    }

    /// <summary>
    /// The batch cut into consecutive windows of <paramref name="k"/> steps (the last may be shorter), up to the
    /// longest example; <paramref name="k"/> ≤ 0 or ≥ T gives the whole batch as one window.
    /// </summary>
    /// <param name="k">Window length; 0 for full back-propagation through time.</param>
    [Pure]
    public ImmutableArray<TokenBatch> Windows(int k)
    {
        var used = Math.Max(1, Lengths.Max());
        return k <= 0 || k >= used
            ? [used == Steps ? this : Window(0, used)]
            : [.. Enumerable.Range(0, (used + k - 1) / k).Select(i => Window(i * k, Math.Min(k, used - i * k)))];
    }

    /// <summary>
    /// The batch of a list of items for next-token prediction: item j reads the end token then its tokens, and
    /// must predict its tokens then the end token; shorter items are padded with the end token.
    /// </summary>
    /// <param name="items">The encoded items (without end token), at least one.</param>
    /// <param name="endToken">Token that starts and ends every item.</param>
    [Pure]
    public static TokenBatch ForNextToken(IReadOnlyList<ImmutableArray<int>> items, int endToken = Vocabulary.EndToken)
    {
        ArgumentNullException.ThrowIfNull(items);
        if (items.Count == 0) throw new ArgumentException("expected items to hold at least one item but it is empty", nameof(items));
        for (var j = 0; j < items.Count; j++)
            if (items[j].IsDefault) throw new ArgumentException($"expected items[{j}] to be a list of tokens but got a default (null) array", nameof(items));
        var lengths = items.Select(s => s.Length + 1).ToImmutableArray();
        var steps = lengths.Max();
        int Input(ImmutableArray<int> s, int t) => t == 0 || t > s.Length ? endToken : s[t - 1];
        int Target(ImmutableArray<int> s, int t) => t < s.Length ? s[t] : endToken;
        return new(
            [.. Enumerable.Range(0, steps).Select(t => items.Select(s => Input(s, t)).ToImmutableArray())],
            [.. Enumerable.Range(0, steps).Select(t => items.Select(s => Target(s, t)).ToImmutableArray())],
            lengths);
    }
}
