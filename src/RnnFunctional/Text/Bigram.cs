using System.Collections.Immutable;
using System.Diagnostics.Contracts;

namespace RnnFunctional;

/// <summary>
/// The smoothed character-bigram baseline: P(next | previous) = (c(previous, next) + α) / (c(previous) + α·V), with
/// the same transitions a next-token model is asked for (end → first character, …, last character → end).
/// </summary>
/// <param name="VocabularySize">V, the number of tokens.</param>
/// <param name="Alpha">The additive smoothing α &gt; 0.</param>
/// <param name="Counts">V×V transition counts, <c>Counts[previous][next]</c>.</param>
public sealed record Bigram(int VocabularySize, double Alpha, ImmutableArray<ImmutableArray<int>> Counts)
{
    /// <summary>
    /// Counts the transitions of the training items and, unless given, picks α on a log grid from 10⁻³ to 10 by
    /// maximising the leave-one-out likelihood of the training transitions (no held-out data is used).
    /// </summary>
    /// <param name="items">Encoded training items (without end token).</param>
    /// <param name="vocabularySize">V ≥ 1.</param>
    /// <param name="alpha">The smoothing; null to choose it by leave-one-out.</param>
    /// <param name="endToken">Token that starts and ends every item.</param>
    [Pure]
    public static Bigram Fit(IEnumerable<ImmutableArray<int>> items, int vocabularySize, double? alpha = null, int endToken = Vocabulary.EndToken)
    {
        ArgumentNullException.ThrowIfNull(items);
        if (vocabularySize < 1) throw new ArgumentOutOfRangeException(nameof(vocabularySize), vocabularySize, $"expected vocabularySize to be at least 1 but got {vocabularySize}");
        if (alpha is { } a && !(a > 0 && double.IsFinite(a))) throw new ArgumentOutOfRangeException(nameof(alpha), a, $"expected alpha to be a finite number > 0 but got {a}");
        var counts = new int[vocabularySize][];
        for (var i = 0; i < vocabularySize; i++) counts[i] = new int[vocabularySize];
        foreach (var (previous, next) in items.SelectMany(s => Transitions(s, endToken)))
        {
            if ((uint)previous >= (uint)vocabularySize || (uint)next >= (uint)vocabularySize)
                throw new ArgumentException($"expected tokens in [0, V) = [0, {vocabularySize}) but got {((uint)previous >= (uint)vocabularySize ? previous : next)}", nameof(items));
            counts[previous][next]++;
        }
        var table = counts.Select(r => r.ToImmutableArray()).ToImmutableArray();
        return new(vocabularySize, alpha ?? LeaveOneOutAlpha(table, vocabularySize), table);
    }

    /// <summary>log P(next | previous).</summary>
    /// <param name="previous">Token in [0, V).</param>
    /// <param name="next">Token in [0, V).</param>
    [Pure]
    public double LogProbability(int previous, int next) =>
        Math.Log((Counts[previous][next] + Alpha) / (Counts[previous].Sum() + Alpha * VocabularySize));

    /// <summary>The summed negative log-likelihood of every transition of the items, and their number.</summary>
    /// <param name="items">Encoded items (without end token).</param>
    /// <param name="endToken">Token that starts and ends every item.</param>
    [Pure]
    public (double Loss, int Tokens) Evaluate(IEnumerable<ImmutableArray<int>> items, int endToken = Vocabulary.EndToken)
    {
        var terms = items.SelectMany(s => Transitions(s, endToken)).Select(p => -LogProbability(p.Previous, p.Next)).ToList();
        return (Kernels.Ops.CompensatedSum(terms), terms.Count);
    }

    private static IEnumerable<(int Previous, int Next)> Transitions(ImmutableArray<int> item, int endToken) =>
        Enumerable.Range(0, item.Length + 1).Select(t => (t == 0 ? endToken : item[t - 1], t < item.Length ? item[t] : endToken));

    private static double LeaveOneOutAlpha(ImmutableArray<ImmutableArray<int>> counts, int v)
    {
        double LogLikelihood(double alpha) => counts.Sum(row =>
        {
            var total = row.Sum();
            return row.Where(c => c > 0).Sum(c => c * Math.Log((c - 1 + alpha) / (total - 1 + alpha * v)));
        });
        return Enumerable.Range(-60, 81).Select(k => Math.Pow(10, k / 20.0)).MaxBy(LogLikelihood);
    }
}
