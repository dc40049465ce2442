using System.Collections.Immutable;
using System.Diagnostics.Contracts;

namespace RnnFunctional;

/// <summary>
/// The smoothed character-bigram baseline: P(next | previous) = (c(previous, next) + α) / (c(previous) + α·V), with
/// the same transitions a next-token model is asked for (end → first character, …, last character → end). The
/// counts are sparse, so time and memory grow with V plus the number of distinct transitions seen, never with V².
/// </summary>
/// <param name="VocabularySize">V, the number of tokens.</param>
/// <param name="Alpha">The additive smoothing α &gt; 0.</param>
/// <param name="Counts">
/// V rows of transition counts: <c>Counts[previous]</c> maps each token seen after <c>previous</c> to its count;
/// a token absent from a row was never seen there (count 0).
/// </param>
public sealed record Bigram(int VocabularySize, double Alpha, ImmutableArray<ImmutableDictionary<int, int>> Counts)
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
        var counts = new Dictionary<int, Dictionary<int, int>>();
        foreach (var (previous, next) in Transitions(items, endToken, nameof(items)))
        {
            if ((uint)previous >= (uint)vocabularySize || (uint)next >= (uint)vocabularySize)
                throw new ArgumentException($"expected tokens in [0, V) = [0, {vocabularySize}) but got {((uint)previous >= (uint)vocabularySize ? previous : next)}", nameof(items));
            if (!counts.TryGetValue(previous, out var row)) counts[previous] = row = [];
            row[next] = row.GetValueOrDefault(next) + 1;
        }
        var table = Enumerable.Range(0, vocabularySize)
            .Select(i => counts.TryGetValue(i, out var row) ? row.ToImmutableDictionary() : ImmutableDictionary<int, int>.Empty)
            .ToImmutableArray();
        return new(vocabularySize, alpha ?? LeaveOneOutAlpha(table, vocabularySize), table);
    }

    /// <summary>c(previous, next): how often <paramref name="next"/> followed <paramref name="previous"/>.</summary>
    /// <param name="previous">Token in [0, V).</param>
    /// <param name="next">Token in [0, V).</param>
    [Pure]
    public int Count(int previous, int next) => Counts[previous].GetValueOrDefault(next);

    /// <summary>log P(next | previous).</summary>
    /// <param name="previous">Token in [0, V).</param>
    /// <param name="next">Token in [0, V).</param>
    [Pure]
    public double LogProbability(int previous, int next)
    {
        if ((uint)previous >= (uint)VocabularySize) throw new ArgumentOutOfRangeException(nameof(previous), previous, $"expected previous to be a token in [0, V) = [0, {VocabularySize}) but got {previous}");
        if ((uint)next >= (uint)VocabularySize) throw new ArgumentOutOfRangeException(nameof(next), next, $"expected next to be a token in [0, V) = [0, {VocabularySize}) but got {next}");
        return LogProbability(previous, next, Counts[previous].Values.Sum());
    }

    /// <summary>The summed negative log-likelihood of every transition of the items, and their number.</summary>
    /// <param name="items">Encoded items (without end token), with tokens in [0, V).</param>
    /// <param name="endToken">Token that starts and ends every item.</param>
    [Pure]
    public (double Loss, int Tokens) Evaluate(IEnumerable<ImmutableArray<int>> items, int endToken = Vocabulary.EndToken)
    {
        ArgumentNullException.ThrowIfNull(items);
        var totals = Counts.Select(row => row.Values.Sum()).ToArray();
        var terms = new List<double>();
        foreach (var (previous, next) in Transitions(items, endToken, nameof(items)))
        {
            if ((uint)previous >= (uint)VocabularySize || (uint)next >= (uint)VocabularySize)
                throw new ArgumentException($"expected tokens in [0, V) = [0, {VocabularySize}) but got {((uint)previous >= (uint)VocabularySize ? previous : next)}", nameof(items));
            terms.Add(-LogProbability(previous, next, totals[previous]));
        }
        return (Kernels.Ops.CompensatedSum(terms), terms.Count);
    }

    private double LogProbability(int previous, int next, int total) =>
        Math.Log((Count(previous, next) + Alpha) / (total + Alpha * VocabularySize));

    private static IEnumerable<(int Previous, int Next)> Transitions(IEnumerable<ImmutableArray<int>> items, int endToken, string argument)
    {
        var i = 0;
        foreach (var item in items)
        {
            if (item.IsDefault) throw new ArgumentException($"expected {argument}[{i}] to be a list of tokens but got a default (null) array", argument);
            for (var t = 0; t <= item.Length; t++)
                yield return (t == 0 ? endToken : item[t - 1], t < item.Length ? item[t] : endToken);
            i++;
        }
    }

    private static double LeaveOneOutAlpha(ImmutableArray<ImmutableDictionary<int, int>> counts, int v)
    {
        var rows = counts.Where(row => !row.IsEmpty).Select(row => (Total: row.Values.Sum(), Counts: row.Values.ToArray())).ToArray();
        double LogLikelihood(double alpha) => rows.Sum(row =>
            row.Counts.Sum(c => c * Math.Log((c - 1 + alpha) / (row.Total - 1 + alpha * v))));
        return Enumerable.Range(-60, 81).Select(k => Math.Pow(10, k / 20.0)).MaxBy(LogLikelihood);
    }
}
